//! Checks `platform.yaml` and applies its defaults (a key left out keeps its default).

use std::path::Path;

use super::Ctx;
use crate::config::Secret;
use crate::config::defaults as d;
use crate::config::platform::{
    AuthMechanism, BasicAuth, ConnectorConfig, DlqConfig, HttpEndpoint, KafkaConfig, PlatformConfig,
    RetryConfig, SecurityProtocol, WalReaderConfig,
};
use crate::config::raw;

/// Builds the platform spec from `raw`, recording every broken rule in `ctx`.
pub(in crate::config) fn platform(raw: raw::Platform, ctx: &mut Ctx<'_>) -> PlatformConfig {
    if raw.pubsub.is_some() {
        ctx.invalid("pubsub", "the pubsub transport is not supported by this host (use kafka or embedded)");
    }
    if raw.kinesis.is_some() {
        ctx.invalid("kinesis", "the kinesis transport is not supported by this host (use kafka or embedded)");
    }
    PlatformConfig {
        transport_mode: raw.transport_mode.unwrap_or_default(),
        kafka: kafka(raw.kafka.unwrap_or_default(), ctx),
        connector: connector(raw.connector.unwrap_or_default(), ctx),
        wal_reader: wal_reader(raw.wal_reader.unwrap_or_default(), ctx),
        dlq: dlq(raw.dlq.unwrap_or_default(), ctx),
        retry: retry(&raw.retry.unwrap_or_default(), &default_retry(), "retry", ctx),
        max_buffered_messages: ctx.positive_count(
            raw.max_buffered_messages,
            d::MAX_BUFFERED_MESSAGES,
            "max_buffered_messages",
        ),
        partition_concurrency: ctx.count(
            raw.partition_concurrency,
            d::PARTITION_CONCURRENCY,
            "partition_concurrency",
        ),
        schema_monitor_interval: ctx.seconds(
            raw.schema_monitor_interval_seconds,
            d::SCHEMA_MONITOR_INTERVAL_SECONDS,
            false,
            "schema_monitor_interval_seconds",
        ),
        lag_monitor_interval: ctx.seconds(
            raw.lag_monitor_interval_seconds,
            d::LAG_MONITOR_INTERVAL_SECONDS,
            false,
            "lag_monitor_interval_seconds",
        ),
        stop_on_incompatible_schema: raw
            .stop_on_incompatible_schema
            .unwrap_or(d::STOP_ON_INCOMPATIBLE_SCHEMA),
        health_port: ctx.port(raw.health_port, d::HEALTH_PORT, "health_port"),
        health_enabled: raw.health_enabled.unwrap_or(d::HEALTH_ENABLED),
        shutdown_timeout: ctx.seconds(
            raw.shutdown_timeout_seconds,
            d::SHUTDOWN_TIMEOUT_SECONDS,
            false,
            "shutdown_timeout_seconds",
        ),
    }
}

/// The retry policy with every field at its default.
pub(in crate::config) fn default_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: d::RETRY_MAX_ATTEMPTS,
        initial_wait: std::time::Duration::from_secs_f64(d::RETRY_INITIAL_WAIT_SECONDS),
        max_wait: std::time::Duration::from_secs_f64(d::RETRY_MAX_WAIT_SECONDS),
        multiplier: d::RETRY_MULTIPLIER,
        jitter: d::RETRY_JITTER,
    }
}

/// Builds a retry policy: fields set in `raw` over those of `base` (deep merge).
pub(super) fn retry(raw: &raw::Retry, base: &RetryConfig, path: &str, ctx: &mut Ctx<'_>) -> RetryConfig {
    let at = |field: &str| format!("{path}.{field}");
    let max_attempts =
        ctx.int(raw.max_attempts, base.max_attempts, 1..=i64::from(u32::MAX), &at("max_attempts"));
    let initial_wait = match raw.initial_wait_seconds {
        Some(_) => ctx.seconds(raw.initial_wait_seconds, 0.0, false, &at("initial_wait_seconds")),
        None => base.initial_wait,
    };
    let max_wait = match raw.max_wait_seconds {
        Some(_) => ctx.seconds(raw.max_wait_seconds, 0.0, false, &at("max_wait_seconds")),
        None => base.max_wait,
    };
    let multiplier = match raw.multiplier {
        Some(m) if !(m.is_finite() && m >= 1.0) => {
            ctx.invalid(&at("multiplier"), "must be a number of at least 1");
            base.multiplier
        }
        Some(m) => m,
        None => base.multiplier,
    };
    if initial_wait > max_wait && !max_wait.is_zero() {
        let field =
            if raw.initial_wait_seconds.is_some() { "initial_wait_seconds" } else { "max_wait_seconds" };
        ctx.invalid(&at(field), "initial_wait_seconds must not exceed max_wait_seconds");
    }
    RetryConfig {
        max_attempts,
        initial_wait,
        max_wait,
        multiplier,
        jitter: raw.jitter.unwrap_or(base.jitter),
    }
}

/// Security settings that librdkafka would reject when the client is created, or silently
/// ignore, are refused here, so that `cdc validate` catches them.
fn kafka_security(raw: &raw::Kafka, protocol: SecurityProtocol, mechanism: AuthMechanism, ctx: &mut Ctx<'_>) {
    let sasl = matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl);
    let tls = matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl);
    match mechanism {
        AuthMechanism::None if sasl => ctx.invalid(
            "kafka.auth_mechanism",
            format!("security_protocol {} needs an auth_mechanism", protocol.as_str()),
        ),
        AuthMechanism::None => {
            if raw.sasl_username.is_some() || raw.sasl_password.is_some() {
                ctx.invalid("kafka.sasl_username", "SASL credentials need an auth_mechanism; none is set");
            }
        }
        AuthMechanism::SaslIam | AuthMechanism::SaslOauthbearer => ctx.invalid(
            "kafka.auth_mechanism",
            "not available in this build: it supports sasl_plain, sasl_scram256 and sasl_scram512",
        ),
        AuthMechanism::SaslPlain | AuthMechanism::SaslScram256 | AuthMechanism::SaslScram512 => {
            if !sasl {
                ctx.invalid(
                    "kafka.security_protocol",
                    "an auth_mechanism needs security_protocol sasl_ssl (or sasl_plaintext)",
                );
            }
            if raw.sasl_username.is_none() || raw.sasl_password.is_none() {
                ctx.invalid(
                    "kafka.auth_mechanism",
                    "sasl_username and sasl_password are required with this auth_mechanism",
                );
            }
        }
    }
    let files = [
        ("ssl_ca_location", &raw.ssl_ca_location),
        ("ssl_certificate_location", &raw.ssl_certificate_location),
        ("ssl_key_location", &raw.ssl_key_location),
    ];
    for (field, file) in files {
        let Some(file) = file else { continue };
        let path = format!("kafka.{field}");
        if !tls {
            ctx.invalid(&path, "used only with security_protocol ssl or sasl_ssl");
        } else if !std::path::Path::new(file).is_file() {
            ctx.invalid(&path, format!("no such file: {file}"));
        }
    }
    if raw.ssl_certificate_location.is_some() != raw.ssl_key_location.is_some() {
        ctx.invalid(
            "kafka.ssl_certificate_location",
            "a client certificate needs both ssl_certificate_location and ssl_key_location",
        );
    }
}

/// Basic auth from a user name and a password, which come together.
fn basic_auth(username: Option<String>, password: Option<Secret>, ctx: &mut Ctx<'_>) -> Option<BasicAuth> {
    match (username, password) {
        (Some(username), Some(password)) => Some(BasicAuth { username, password }),
        (None, None) => None,
        _ => {
            ctx.invalid(
                "kafka.schema_registry_username",
                "schema_registry_username and schema_registry_password come together",
            );
            None
        }
    }
}

fn kafka(raw: raw::Kafka, ctx: &mut Ctx<'_>) -> KafkaConfig {
    let security_protocol = raw.security_protocol.unwrap_or_default();
    let auth_mechanism = raw.auth_mechanism.unwrap_or_default();
    kafka_security(&raw, security_protocol, auth_mechanism, ctx);
    let acks = raw.acks.unwrap_or_else(|| d::KAFKA_ACKS.into());
    if !matches!(acks.as_str(), "all" | "-1" | "0" | "1") {
        ctx.invalid("kafka.acks", "must be one of `all`, `-1`, `0`, `1`");
    }
    KafkaConfig {
        bootstrap_servers: non_empty(
            raw.bootstrap_servers,
            d::KAFKA_BOOTSTRAP_SERVERS,
            "kafka.bootstrap_servers",
            ctx,
        ),
        schema_registry: HttpEndpoint {
            url: raw.schema_registry_url.unwrap_or_else(|| d::KAFKA_SCHEMA_REGISTRY_URL.into()),
            ca_file: ctx.ca_file(raw.schema_registry_ca_file, Path::new(""), "kafka.schema_registry_ca_file"),
            basic_auth: basic_auth(raw.schema_registry_username, raw.schema_registry_password, ctx),
        },
        group_id: non_empty(raw.group_id, d::KAFKA_GROUP_ID, "kafka.group_id", ctx),
        auto_offset_reset: raw.auto_offset_reset.unwrap_or_default(),
        enable_idempotence: raw.enable_idempotence.unwrap_or(d::KAFKA_ENABLE_IDEMPOTENCE),
        acks,
        topic_num_partitions: ctx.int(
            raw.topic_num_partitions,
            d::KAFKA_TOPIC_NUM_PARTITIONS,
            1..=i64::from(i32::MAX),
            "kafka.topic_num_partitions",
        ),
        topic_replication_factor: ctx.int(
            raw.topic_replication_factor,
            d::KAFKA_TOPIC_REPLICATION_FACTOR,
            1..=i64::from(i16::MAX),
            "kafka.topic_replication_factor",
        ),
        session_timeout: ctx.millis(
            raw.session_timeout_ms,
            d::KAFKA_SESSION_TIMEOUT_MS,
            1000..=i64::MAX,
            "kafka.session_timeout_ms",
        ),
        max_poll_interval: ctx.millis(
            raw.max_poll_interval_ms,
            d::KAFKA_MAX_POLL_INTERVAL_MS,
            1000..=i64::MAX,
            "kafka.max_poll_interval_ms",
        ),
        fetch_min_bytes: ctx.int(
            raw.fetch_min_bytes,
            d::KAFKA_FETCH_MIN_BYTES,
            1..=i64::from(i32::MAX),
            "kafka.fetch_min_bytes",
        ),
        fetch_max_wait: ctx.millis(
            raw.fetch_max_wait_ms,
            d::KAFKA_FETCH_MAX_WAIT_MS,
            0..=i64::MAX,
            "kafka.fetch_max_wait_ms",
        ),
        poll_batch_size: ctx.positive_count(
            raw.poll_batch_size,
            d::KAFKA_POLL_BATCH_SIZE,
            "kafka.poll_batch_size",
        ),
        deser_pool_size: ctx.positive_count(
            raw.deser_pool_size,
            d::KAFKA_DESER_POOL_SIZE,
            "kafka.deser_pool_size",
        ),
        commit_interval: ctx.seconds(
            raw.commit_interval_seconds,
            d::KAFKA_COMMIT_INTERVAL_SECONDS,
            true,
            "kafka.commit_interval_seconds",
        ),
        security_protocol,
        auth_mechanism,
        sasl_username: raw.sasl_username,
        sasl_password: raw.sasl_password,
        ssl_ca_location: raw.ssl_ca_location,
        ssl_certificate_location: raw.ssl_certificate_location,
        ssl_key_location: raw.ssl_key_location,
        aws_region: raw.aws_region,
        gcp_project_id: raw.gcp_project_id,
        value_converter: raw.value_converter.unwrap_or_default(),
        schemas_enable: raw.schemas_enable.unwrap_or(d::KAFKA_SCHEMAS_ENABLE),
    }
}

fn connector(raw: raw::Connector, ctx: &mut Ctx<'_>) -> ConnectorConfig {
    ConnectorConfig {
        connect_url: non_empty(raw.connect_url, d::CONNECT_URL, "connector.connect_url", ctx),
        ca_file: ctx.ca_file(raw.ca_file, Path::new(""), "connector.ca_file"),
        schema_registry_url: raw.schema_registry_url,
        task_max_retries: ctx.int(
            raw.task_max_retries,
            d::CONNECTOR_TASK_MAX_RETRIES,
            0..=i64::from(u32::MAX),
            "connector.task_max_retries",
        ),
        timeout: ctx.seconds(
            raw.timeout_seconds,
            d::CONNECT_TIMEOUT_SECONDS,
            false,
            "connector.timeout_seconds",
        ),
        retry_max_attempts: ctx.int(
            raw.retry_max_attempts,
            d::CONNECT_RETRY_MAX_ATTEMPTS,
            1..=i64::from(u32::MAX),
            "connector.retry_max_attempts",
        ),
        retry_wait: ctx.seconds(
            raw.retry_wait_seconds,
            d::CONNECT_RETRY_WAIT_SECONDS,
            false,
            "connector.retry_wait_seconds",
        ),
    }
}

fn wal_reader(raw: raw::WalReader, ctx: &mut Ctx<'_>) -> WalReaderConfig {
    WalReaderConfig {
        publication_name: raw.publication_name,
        slot_name: raw.slot_name,
        status_interval: ctx.seconds(
            raw.status_interval_seconds,
            d::WAL_STATUS_INTERVAL_SECONDS,
            false,
            "wal_reader.status_interval_seconds",
        ),
        batch_size: ctx.positive_count(raw.batch_size, d::WAL_BATCH_SIZE, "wal_reader.batch_size"),
        batch_timeout: ctx.seconds(
            raw.batch_timeout_seconds,
            d::WAL_BATCH_TIMEOUT_SECONDS,
            false,
            "wal_reader.batch_timeout_seconds",
        ),
        max_retries: ctx.int(
            raw.max_retries,
            d::WAL_MAX_RETRIES,
            0..=i64::from(u32::MAX),
            "wal_reader.max_retries",
        ),
    }
}

fn dlq(raw: raw::Dlq, ctx: &mut Ctx<'_>) -> DlqConfig {
    DlqConfig {
        enabled: raw.enabled.unwrap_or(d::DLQ_ENABLED),
        topic_suffix: non_empty(raw.topic_suffix, d::DLQ_TOPIC_SUFFIX, "dlq.topic_suffix", ctx),
        max_retries: ctx.int(raw.max_retries, d::DLQ_MAX_RETRIES, 0..=i64::from(u32::MAX), "dlq.max_retries"),
        include_headers: raw.include_headers.unwrap_or(d::DLQ_INCLUDE_HEADERS),
        flush_interval: ctx.seconds(
            raw.flush_interval_seconds,
            d::DLQ_FLUSH_INTERVAL_SECONDS,
            true,
            "dlq.flush_interval_seconds",
        ),
        directory: std::path::PathBuf::from(non_empty(raw.directory, d::DLQ_DIRECTORY, "dlq.directory", ctx)),
    }
}

/// The value, or the default when absent; an empty value is an error.
pub(super) fn non_empty(value: Option<String>, default: &str, path: &str, ctx: &mut Ctx<'_>) -> String {
    match value {
        Some(v) if v.trim().is_empty() => {
            ctx.invalid(path, "must not be empty");
            v
        }
        Some(v) => v,
        None => default.to_owned(),
    }
}
