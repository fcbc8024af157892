//! `cdc run`: validates the config, loads the plugins, serves health, provisions topics and the
//! connector, then runs the pipeline until SIGTERM/SIGINT (exit 0) or a halt (exit 1).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::RunArgs;
use crate::config::{Config, SourceType, TransportMode, ValueConverter};
use crate::ops::connector::{ConnectClient, Error as ConnectError};
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::ops::schema_monitor::{Change, SchemaMonitor};
use crate::ops::telemetry::report;
use crate::ops::{debezium, provision, server, telemetry};
use crate::pipeline::dlq::{DeadLetterQueue, DirectoryDlq, DlqSettings, KafkaDlq};
use crate::pipeline::retry::RetrySettings;
use crate::pipeline::{self, Outcome, PipelineSettings, SinkSettings};
use crate::plugin::{PluginRuntime, PluginSettings, TransformPlugin};
use crate::sinks;
use crate::source::kafka::{self, ConsumerSettings};
use crate::source::postgres::EmbeddedSettings;

/// How often the connector's status is checked for `/readyz` while the pipeline runs.
const CONNECTOR_WATCH_INTERVAL: Duration = Duration::from_secs(10);
/// Restarts of a failed connector before the failure is left to an operator.
const MAX_CONNECTOR_RESTARTS: u32 = 3;
/// How long a restarted connector must have been up before its restarts are earned back.
const CONNECTOR_RESTARTS_FORGIVEN_AFTER: Duration = Duration::from_secs(300);
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
    options: PipelineSettings,
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
    let outcome = match config.platform.transport_mode {
        TransportMode::Kafka => pipeline::run(options, dlq, health.clone(), metrics, shutdown).await?,
        TransportMode::Embedded => {
            let embedded = EmbeddedSettings::from_config(&config);
            pipeline::run_embedded(options, embedded, dlq, health.clone(), metrics, shutdown).await?
        }
    };
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
            let settings = PluginSettings::from_config(&transform.name, &transform.plugin)?;
            let plugin = TransformPlugin::load(&plugin_runtime, settings)?;
            // Instantiate once now so that a plugin refusing its config fails the start.
            tokio::task::block_in_place(|| plugin.instantiate())?;
            tracing::info!(transform = transform.name.as_str(), "plugin.loaded");
            Ok(plugin)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sinks = config
        .pipeline
        .sinks
        .iter()
        .filter(|sink| sink.enabled)
        .map(|sink| {
            let factory = sinks::factory(&config.pipeline.pipeline_id, sink, &plugin_runtime)?;
            Ok(SinkSettings { factory, retry: RetrySettings::from(&sink.retry) })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

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
    let source_topics = debezium::source_topics(config);
    let dlq_settings = DlqSettings {
        topic_suffix: config.platform.dlq.topic_suffix.clone(),
        include_headers: config.platform.dlq.include_headers,
        write_timeout: DLQ_WRITE_TIMEOUT,
    };
    let (mut companions, dlq): (_, Option<Arc<dyn DeadLetterQueue>>) = match config.platform.transport_mode {
        TransportMode::Kafka => {
            let companions = vec![provision_kafka(config, &health).await?];
            let dlq = if config.platform.dlq.enabled {
                let connection = kafka::connection_properties(kafka);
                // The DLQ producer always waits for every in-sync replica (see `KafkaDlq`).
                let dlq =
                    KafkaDlq::new(&connection, dlq_settings).context("cannot create the DLQ producer")?;
                Some(Arc::new(dlq) as Arc<dyn DeadLetterQueue>)
            } else {
                None
            };
            (companions, dlq)
        }
        // No broker: the source reads the database itself, and the DLQ is a directory.
        TransportMode::Embedded => {
            let dlq = if config.platform.dlq.enabled {
                let directory = &config.platform.dlq.directory;
                let dlq = DirectoryDlq::new(directory.clone(), dlq_settings)
                    .with_context(|| format!("cannot create the DLQ directory {}", directory.display()))?;
                Some(Arc::new(dlq) as Arc<dyn DeadLetterQueue>)
            } else {
                None
            };
            (Vec::new(), dlq)
        }
    };

    let decoder = super::decoder(config).map_err(anyhow::Error::msg)?;
    // The schema monitor can stop the pipeline too (`stop_on_incompatible_schema`).
    let (schema_halt, schema_halted) = tokio::sync::oneshot::channel::<()>();
    companions.extend(start_schema_monitor(config, &source_topics, health.clone(), schema_halt)?);
    let options = PipelineSettings {
        consumer: ConsumerSettings::from_config(kafka, config.platform.max_buffered_messages),
        topics: source_topics,
        decoder,
        sinks,
        transforms,
        transform_retry: RetrySettings::from(&config.platform.retry),
        max_buffered_messages: config.platform.max_buffered_messages,
        batch_size: match config.platform.transport_mode {
            TransportMode::Kafka => kafka.poll_batch_size,
            TransportMode::Embedded => config.platform.wal_reader.batch_size,
        },
        partition_concurrency: config.platform.partition_concurrency,
        record_retries: config.platform.dlq.max_retries,
        commit_interval: kafka.commit_interval,
        lag_interval: config.platform.lag_monitor_interval,
        shutdown_timeout: config.platform.shutdown_timeout,
    };
    Ok(Prepared { options, dlq, health, metrics, companions, schema_halted, stop_server })
}

/// Provisions the topics and the connector, and returns the task that keeps `/readyz` honest
/// about the connector.
async fn provision_kafka(
    config: &Config,
    health: &Arc<Health>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    // Provisioning may take minutes (topics, the connector's snapshot start): it is progress,
    // so `/healthz` stays alive through it.
    let connect = health.alive_during(provision::provision(config)).await?;
    health.set_connector(Ok(()));
    tracing::info!(connector = connect.name(), "provision.connector_running");
    Ok(tokio::spawn(watch_connector(connect, health.clone())))
}

/// Refuses, with a clear message, what this build cannot run yet: nothing is accepted and
/// then ignored. (Sinks are refused by [`sinks::factory`], also before anything is
/// provisioned.)
fn check_supported(config: &Config) -> anyhow::Result<()> {
    if !matches!(config.pipeline.source.source_type, SourceType::Postgres | SourceType::Mysql) {
        bail!("source_type {:?} is not available in this build yet", config.pipeline.source.source_type);
    }
    Ok(())
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

/// Keeps `/readyz` honest about the connector while the pipeline runs, and restarts a failed
/// connector or task (the source database came back, a transient error) up to
/// `MAX_CONNECTOR_RESTARTS` times; they are earned back once the connector has run for
/// `CONNECTOR_RESTARTS_FORGIVEN_AFTER` since the last restart (a task retrying shows RUNNING
/// between failures, so one running check proves nothing). Past that, the failure stays on
/// `/readyz` for an operator.
async fn watch_connector(connect: ConnectClient, health: Arc<Health>) {
    let mut restarts = 0;
    let mut last_restart: Option<Instant> = None;
    loop {
        tokio::time::sleep(CONNECTOR_WATCH_INTERVAL).await;
        let status = match connect.check().await {
            Ok(()) => {
                if last_restart.is_some_and(|at| at.elapsed() >= CONNECTOR_RESTARTS_FORGIVEN_AFTER) {
                    (restarts, last_restart) = (0, None);
                }
                Ok(())
            }
            Err(error @ ConnectError::Failed { .. }) if restarts < MAX_CONNECTOR_RESTARTS => {
                restarts += 1;
                last_restart = Some(Instant::now());
                let reason = error.to_string();
                tracing::warn!(
                    connector = connect.name(),
                    restarts,
                    reason = reason.as_str(),
                    "connector.restart"
                );
                if let Err(error) = connect.restart_failed().await {
                    tracing::warn!(connector = connect.name(), error = %error, "connector.restart_failed");
                }
                Err(reason)
            }
            Err(error @ ConnectError::Failed { .. }) => {
                let reason = format!("{error} (still failed after {restarts} restarts)");
                tracing::error!(
                    connector = connect.name(),
                    reason = reason.as_str(),
                    "connector.restarts_exhausted"
                );
                Err(reason)
            }
            Err(error) => {
                let reason = error.to_string();
                tracing::warn!(connector = connect.name(), reason = reason.as_str(), "connector.not_running");
                Err(reason)
            }
        };
        health.set_connector(status);
    }
}

/// Starts the schema monitor where it can work: with Avro, whose schemas live in the registry.
fn start_schema_monitor(
    config: &Config,
    topics: &[String],
    health: Arc<Health>,
    halt: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let platform = &config.platform;
    let interval = platform.schema_monitor_interval;
    if platform.kafka.value_converter != ValueConverter::Avro || interval.is_zero() {
        tracing::info!(reason = "needs value_converter avro and an interval", "schema.monitor_inactive");
        return Ok(None);
    }
    let mut monitor = SchemaMonitor::new(&platform.kafka.schema_registry, topics, SCHEMA_REGISTRY_TIMEOUT)
        .context("cannot create the schema monitor's registry client")?;
    let stop_on_incompatible = platform.stop_on_incompatible_schema;
    Ok(Some(tokio::spawn(async move {
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
    })))
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
