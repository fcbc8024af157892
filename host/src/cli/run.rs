//! `cdc run`: validates the config, loads the plugins, serves health, provisions topics and the
//! connector, then runs the pipeline until SIGTERM/SIGINT (exit 0) or a halt (exit 1).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::RunArgs;
use crate::config::{
    AuthMechanism, Config, KafkaConfig, PluginConfig, RetryConfig, SinkKind, SourceType, TransportMode,
    ValueConverter,
};
use crate::decode::{Decoder, SchemaRegistry};
use crate::ops::connector::ConnectClient;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::ops::schema_monitor::{Change, SchemaMonitor};
use crate::ops::telemetry::report;
use crate::ops::{debezium, server, telemetry, topics};
use crate::pipeline::dlq::{DeadLetterQueue, DlqSettings, KafkaDlq, dlq_topic};
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::{self, Outcome, PipelineOptions, SinkSpec};
use crate::plugin::{
    Capabilities, GrantedDirectory, PluginLimits, PluginRuntime, PluginSpec, SinkPlugin, TransformPlugin,
};
use crate::sinks::SinkFactory;
use crate::sinks::wasm::WasmSinkFactory;
use crate::sinks::webhook::{StatusClasses, WebhookFactory, WebhookOptions};
use crate::source::kafka::ConsumerSettings;

/// How long the connector may take to reach RUNNING.
const CONNECTOR_START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the connector's status is checked for `/readyz` while the pipeline runs.
const CONNECTOR_WATCH_INTERVAL: Duration = Duration::from_secs(10);
/// Beyond `shutdown_timeout`, how long the watchdog lets a shutdown overrun before it ends the
/// process.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long a DLQ write may wait for the broker.
const DLQ_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one schema registry request may take.
const SCHEMA_REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn run(args: &RunArgs) -> ExitCode {
    telemetry::init(args.log_format, &args.log_level);
    let config = match crate::config::load(&args.config.pipeline, args.config.platform_config.as_deref()) {
        Ok(config) => config,
        Err(errors) => {
            report(format_args!("{errors}"));
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            report(format_args!("error: cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run_pipeline(config));
    // A blocking call still stuck on a broker must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(Outcome::Stopped) => ExitCode::SUCCESS,
        Ok(Outcome::Halted(reason)) => {
            report(format_args!("error: the pipeline halted: {reason}"));
            ExitCode::FAILURE
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "pipeline.start_failed");
            report(format_args!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Everything started before the pipeline runs.
struct Prepared {
    options: PipelineOptions,
    dlq: Option<Arc<dyn DeadLetterQueue>>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    /// Tasks beside the pipeline (connector watch, schema monitor), stopped after it.
    companions: Vec<tokio::task::JoinHandle<()>>,
    /// Resolves when the schema monitor halts the pipeline.
    schema_halted: tokio::sync::oneshot::Receiver<()>,
    stop_server: tokio::sync::oneshot::Sender<()>,
}

async fn run_pipeline(config: Config) -> anyhow::Result<Outcome> {
    check_supported(&config)?;
    let pipeline_id = config.pipeline.pipeline_id.clone();
    tracing::info!(pipeline_id, "pipeline.starting");
    // Signals are heard from the start: a stop during provisioning is a clean exit too.
    let mut signals = Signals::new()?;
    let prepared = tokio::select! {
        () = signals.wait() => {
            tracing::info!(pipeline_id, "pipeline.stopped_before_start");
            return Ok(Outcome::Stopped);
        }
        prepared = prepare(&config) => prepared?,
    };
    let Prepared { options, dlq, health, metrics, companions, schema_halted, stop_server } = prepared;
    let shutdown_timeout = options.shutdown_timeout;
    let shutdown = async move {
        tokio::select! {
            () = signals.wait() => {}
            Ok(()) = schema_halted => {}
        }
        arm_watchdog(shutdown_timeout);
        // A second signal means now.
        tokio::spawn(async move {
            signals.wait().await;
            tracing::warn!("pipeline.shutdown_forced");
            std::process::exit(1);
        });
    };
    let outcome = pipeline::run(options, dlq, health.clone(), metrics, shutdown).await?;
    if let Outcome::Halted(_) = &outcome {
        arm_watchdog(shutdown_timeout);
    }
    // A halt raised beside the pipeline (by the schema monitor) is still a halt.
    let outcome = match (outcome, health.halted()) {
        (Outcome::Stopped, Some(reason)) => Outcome::Halted(reason),
        (outcome, _) => outcome,
    };
    companions.iter().for_each(tokio::task::JoinHandle::abort);
    let _ = stop_server.send(());
    tracing::info!(pipeline_id, outcome = ?outcome, "pipeline.exited");
    Ok(outcome)
}

/// Loads the plugins, serves health, provisions topics and the connector, and builds the
/// pipeline's options.
async fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    let plugin_runtime = PluginRuntime::new()?;
    let transforms = config
        .pipeline
        .transforms
        .iter()
        .map(|transform| {
            let spec = plugin_spec(&transform.name, &transform.plugin)?;
            let plugin = TransformPlugin::load(&plugin_runtime, spec)?;
            // Instantiate once now so that a plugin refusing its config fails the start.
            tokio::task::block_in_place(|| plugin.instantiate())?;
            tracing::info!(transform = transform.name.as_str(), "plugin.loaded");
            Ok(plugin)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sinks = sink_specs(config, &plugin_runtime)?;

    let health = Arc::new(Health::new(sinks.iter().map(|sink| sink.factory.sink_id().to_owned())));
    let metrics = Arc::new(Metrics::default());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    if config.platform.health_enabled {
        let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.platform.health_port));
        server::serve(address, health.clone(), metrics.clone(), async {
            let _ = server_stopped.await;
        })
        .await
        .with_context(|| format!("cannot serve health on {address}"))?;
    }

    let kafka = &config.platform.kafka;
    let connection = kafka_connection(kafka);
    let source_topics = debezium::source_topics(config);
    let mut provisioned = source_topics.clone();
    if config.platform.dlq.enabled {
        provisioned
            .extend(source_topics.iter().map(|topic| dlq_topic(topic, &config.platform.dlq.topic_suffix)));
    }
    topics::ensure_topics(
        &kafka.bootstrap_servers,
        &provisioned,
        i32::try_from(kafka.topic_num_partitions).unwrap_or(i32::MAX),
        i32::from(kafka.topic_replication_factor),
    )
    .await?;

    let connect = ConnectClient::new(
        &config.platform.connector.connect_url,
        &debezium::connector_name(config),
        config.platform.connector.timeout,
        config.platform.connector.retry_max_attempts,
        config.platform.connector.retry_wait,
    );
    connect.put_config(&debezium::connector_config(config)).await?;
    connect.wait_running(CONNECTOR_START_TIMEOUT).await?;
    health.set_connector(Ok(()));
    tracing::info!(connector = connect.name(), "provision.connector_running");
    let mut companions = vec![tokio::spawn(watch_connector(connect, health.clone()))];

    let dlq: Option<Arc<dyn DeadLetterQueue>> = if config.platform.dlq.enabled {
        let settings = DlqSettings {
            topic_suffix: config.platform.dlq.topic_suffix.clone(),
            include_headers: config.platform.dlq.include_headers,
            write_timeout: DLQ_WRITE_TIMEOUT,
        };
        // The DLQ producer always waits for every in-sync replica (see `KafkaDlq`).
        Some(Arc::new(KafkaDlq::new(&connection, settings).context("cannot create the DLQ producer")?))
    } else {
        None
    };

    let decoder = match kafka.value_converter {
        ValueConverter::Json => Decoder::Json,
        ValueConverter::Avro => {
            let registry = SchemaRegistry::new(&kafka.schema_registry_url, SCHEMA_REGISTRY_TIMEOUT)
                .context("cannot create the schema registry client")?;
            Decoder::Avro(Arc::new(registry))
        }
    };
    // The schema monitor can stop the pipeline too (`stop_on_incompatible_schema`).
    let (schema_halt, schema_halted) = tokio::sync::oneshot::channel::<()>();
    companions.extend(start_schema_monitor(config, &source_topics, health.clone(), schema_halt));
    let options = PipelineOptions {
        consumer: consumer_settings(kafka, connection),
        topics: source_topics,
        decoder,
        sinks,
        transforms,
        transform_retry: retry_policy(&config.platform.retry),
        max_buffered_messages: config.platform.max_buffered_messages,
        batch_size: kafka.poll_batch_size,
        partition_concurrency: config.platform.partition_concurrency,
        record_retries: config.platform.dlq.max_retries,
        commit_interval: kafka.commit_interval,
        lag_interval: config.platform.lag_monitor_interval,
        shutdown_timeout: config.platform.shutdown_timeout,
    };
    Ok(Prepared { options, dlq, health, metrics, companions, schema_halted, stop_server })
}

/// Refuses, with a clear message, what this build cannot run yet: nothing is accepted and
/// then ignored.
fn check_supported(config: &Config) -> anyhow::Result<()> {
    if config.platform.transport_mode == TransportMode::Embedded {
        bail!("transport_mode `embedded` is not available in this build yet; use `kafka`");
    }
    if !matches!(config.pipeline.source.source_type, SourceType::Postgres | SourceType::Mysql) {
        bail!("source_type {:?} is not available in this build yet", config.pipeline.source.source_type);
    }
    if config.platform.kafka.auth_mechanism == AuthMechanism::SaslIam {
        bail!("kafka.auth_mechanism `sasl_iam` is not available in this build yet");
    }
    for sink in config.pipeline.sinks.iter().filter(|sink| sink.enabled) {
        if !matches!(sink.kind, SinkKind::Webhook(_) | SinkKind::Wasm(_)) {
            bail!(
                "sink `{}`: sink_type `{}` is not available in this build yet",
                sink.sink_id,
                sink.sink_type().as_str()
            );
        }
    }
    Ok(())
}

fn sink_specs(config: &Config, plugins: &PluginRuntime) -> anyhow::Result<Vec<SinkSpec>> {
    let mut specs = Vec::new();
    for sink in config.pipeline.sinks.iter().filter(|sink| sink.enabled) {
        let factory: Arc<dyn SinkFactory> = match &sink.kind {
            SinkKind::Webhook(webhook) => {
                let options = WebhookOptions {
                    url: webhook.url.clone(),
                    method: webhook.method.clone(),
                    headers: webhook
                        .headers
                        .iter()
                        .map(|(name, value)| (name.clone(), value.expose().to_owned()))
                        .collect(),
                    timeout: webhook.timeout,
                    auth_token: webhook.auth_token.as_ref().map(|token| token.expose().to_owned()),
                    status_classes: StatusClasses { overrides: webhook.status_classes.clone() },
                };
                let factory = WebhookFactory::new(&sink.sink_id, &options)
                    .map_err(|reason| anyhow::anyhow!("sink `{}`: {reason}", sink.sink_id))?;
                Arc::new(factory)
            }
            SinkKind::Wasm(plugin) => {
                let plugin = SinkPlugin::load(plugins, plugin_spec(&sink.sink_id, plugin)?)?;
                // Open (and close) one instance now so that a plugin refusing its config fails the
                // start; opening may do blocking WASI I/O.
                tokio::task::block_in_place(|| plugin.instantiate().map(|mut instance| instance.close()))?;
                tracing::info!(sink_id = sink.sink_id.as_str(), "plugin.loaded");
                Arc::new(WasmSinkFactory::new(&sink.sink_id, plugin))
            }
            _ => bail!(
                "sink `{}`: sink_type `{}` is not available yet",
                sink.sink_id,
                sink.sink_type().as_str()
            ),
        };
        specs.push(SinkSpec { factory, retry: retry_policy(&sink.retry) });
    }
    Ok(specs)
}

fn plugin_spec(name: &str, plugin: &PluginConfig) -> anyhow::Result<PluginSpec> {
    let directory = plugin.directory.as_ref().map(|directory| GrantedDirectory {
        host_path: directory.path.clone(),
        mount: directory.mount.clone(),
        read_only: directory.read_only,
    });
    Ok(PluginSpec {
        name: name.to_owned(),
        path: plugin.path.clone(),
        sha256: plugin.sha256.clone(),
        config_json: serde_json::to_string(&plugin.config)?,
        limits: PluginLimits {
            memory_bytes: usize::try_from(plugin.limits.memory_bytes()).unwrap_or(usize::MAX),
            call_timeout: plugin.limits.call_timeout,
            max_output_bytes: usize::try_from(plugin.limits.max_output_bytes).unwrap_or(usize::MAX),
        },
        capabilities: Capabilities {
            env: plugin.env.clone(),
            directory,
            allowed_hosts: plugin.allowed_hosts.clone(),
        },
    })
}

fn retry_policy(retry: &RetryConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: retry.max_attempts,
        initial_wait: retry.initial_wait,
        max_wait: retry.max_wait,
        multiplier: retry.multiplier,
        jitter: retry.jitter,
    }
}

/// librdkafka properties every client of the pipeline shares: brokers and security.
fn kafka_connection(kafka: &KafkaConfig) -> Vec<(String, String)> {
    let mut properties = vec![
        ("bootstrap.servers".to_owned(), kafka.bootstrap_servers.clone()),
        ("security.protocol".to_owned(), kafka.security_protocol.as_str().to_owned()),
    ];
    let mechanism = match kafka.auth_mechanism {
        AuthMechanism::None | AuthMechanism::SaslIam => None,
        AuthMechanism::SaslPlain => Some("PLAIN"),
        AuthMechanism::SaslScram256 => Some("SCRAM-SHA-256"),
        AuthMechanism::SaslScram512 => Some("SCRAM-SHA-512"),
        AuthMechanism::SaslOauthbearer => Some("OAUTHBEARER"),
    };
    if let Some(mechanism) = mechanism {
        properties.push(("sasl.mechanism".into(), mechanism.into()));
    }
    if let Some(username) = &kafka.sasl_username {
        properties.push(("sasl.username".into(), username.clone()));
    }
    if let Some(password) = &kafka.sasl_password {
        properties.push(("sasl.password".into(), password.expose().to_owned()));
    }
    for (key, value) in [
        ("ssl.ca.location", &kafka.ssl_ca_location),
        ("ssl.certificate.location", &kafka.ssl_certificate_location),
        ("ssl.key.location", &kafka.ssl_key_location),
    ] {
        if let Some(value) = value {
            properties.push((key.into(), value.clone()));
        }
    }
    properties
}

fn consumer_settings(kafka: &KafkaConfig, mut properties: Vec<(String, String)>) -> ConsumerSettings {
    let auto_offset_reset = match kafka.auto_offset_reset {
        crate::config::AutoOffsetReset::Earliest => "earliest",
        crate::config::AutoOffsetReset::Latest => "latest",
    };
    properties.extend([
        ("auto.offset.reset".to_owned(), auto_offset_reset.to_owned()),
        ("session.timeout.ms".to_owned(), kafka.session_timeout.as_millis().to_string()),
        ("max.poll.interval.ms".to_owned(), kafka.max_poll_interval.as_millis().to_string()),
        ("fetch.min.bytes".to_owned(), kafka.fetch_min_bytes.to_string()),
        ("fetch.wait.max.ms".to_owned(), kafka.fetch_max_wait.as_millis().to_string()),
    ]);
    ConsumerSettings { group_id: kafka.group_id.clone(), properties }
}

/// Ends the process if the shutdown overruns its budget: whatever hangs (a broker that does
/// not answer the group leave, a stuck plugin), the process exits, with code 1.
fn arm_watchdog(timeout: Duration) {
    let limit = timeout + SHUTDOWN_GRACE;
    let spawned = std::thread::Builder::new().name("shutdown-watchdog".into()).spawn(move || {
        std::thread::sleep(limit);
        tracing::error!(limit = ?limit, "pipeline.shutdown_overrun");
        report(format_args!("error: shutdown took longer than {limit:?}; exiting"));
        std::process::exit(1);
    });
    if let Err(error) = spawned {
        tracing::warn!(error = %error, "pipeline.watchdog_unavailable");
    }
}

/// Keeps `/readyz` honest about the connector while the pipeline runs.
async fn watch_connector(connect: ConnectClient, health: Arc<Health>) {
    loop {
        tokio::time::sleep(CONNECTOR_WATCH_INTERVAL).await;
        let status = connect.check().await.map_err(|error| error.to_string());
        if let Err(reason) = &status {
            tracing::warn!(connector = connect.name(), reason = reason.as_str(), "connector.not_running");
        }
        health.set_connector(status);
    }
}

/// Starts the schema monitor where it can work: with Avro, whose schemas live in the registry.
fn start_schema_monitor(
    config: &Config,
    topics: &[String],
    health: Arc<Health>,
    halt: tokio::sync::oneshot::Sender<()>,
) -> Option<tokio::task::JoinHandle<()>> {
    let platform = &config.platform;
    let interval = platform.schema_monitor_interval;
    if platform.kafka.value_converter != ValueConverter::Avro || interval.is_zero() {
        tracing::info!(reason = "needs value_converter avro and an interval", "schema.monitor_inactive");
        return None;
    }
    let mut monitor =
        SchemaMonitor::new(&platform.kafka.schema_registry_url, topics, SCHEMA_REGISTRY_TIMEOUT);
    let stop_on_incompatible = platform.stop_on_incompatible_schema;
    Some(tokio::spawn(async move {
        loop {
            for change in monitor.check().await {
                match change {
                    Change::Compatible { subject, versions: (from, to) } => {
                        tracing::info!(subject, from, to, "schema.version_changed");
                    }
                    Change::Incompatible { subject, versions: (from, to), problems } => {
                        let problems = problems.join("; ");
                        tracing::warn!(subject, from, to, problems, "schema.incompatible");
                        if stop_on_incompatible {
                            health.halt(format!(
                                "incompatible schema change in {subject} v{from} → v{to}: {problems}"
                            ));
                            let _ = halt.send(());
                            return;
                        }
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    }))
}

/// SIGTERM and SIGINT, listened to for the whole run so that none is missed between phases.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        Ok(Signals { terminate, interrupt })
    }

    /// Resolves on the next SIGTERM or SIGINT.
    async fn wait(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!(signal = "SIGTERM", "pipeline.shutdown_requested"),
            _ = self.interrupt.recv() => tracing::info!(signal = "SIGINT", "pipeline.shutdown_requested"),
        }
    }
}
