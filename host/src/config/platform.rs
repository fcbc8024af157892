//! The validated `platform.yaml`: transport, Kafka, Kafka Connect, DLQ, retry and tuning.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// Infrastructure shared by the pipelines of one deployment.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Where change events come from.
    pub transport_mode: TransportMode,
    /// Kafka brokers and client settings.
    pub kafka: KafkaConfig,
    /// Kafka Connect REST API, used by `cdc deploy` to manage Debezium connectors.
    pub connector: ConnectorConfig,
    /// The embedded PostgreSQL replication reader (`transport_mode: embedded`).
    pub wal_reader: WalReaderConfig,
    /// Dead letter queue.
    pub dlq: DlqConfig,
    /// Default retry policy of every sink.
    pub retry: RetryConfig,
    /// Events buffered per sink lane before the partition is paused (≥ 1).
    pub max_buffered_messages: usize,
    /// Partitions processed at once; 0 means one task per assigned partition.
    pub partition_concurrency: usize,
    /// How often the schema monitor checks the registry (> 0).
    pub schema_monitor_interval: Duration,
    /// How often consumer lag is measured (> 0).
    pub lag_monitor_interval: Duration,
    /// Halt the pipeline on a backward-incompatible schema change.
    pub stop_on_incompatible_schema: bool,
    /// Port of `/healthz`, `/readyz` and `/metrics` (1..=65535).
    pub health_port: u16,
    /// Run the health server.
    pub health_enabled: bool,
    /// Longest a shutdown may take, from SIGTERM (or a halt) to the process's exit (> 0).
    pub shutdown_timeout: Duration,
}

/// Where change events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportMode {
    /// Debezium topics in Kafka.
    #[default]
    Kafka,
    /// The embedded PostgreSQL logical replication reader; needs `source_type: postgres`.
    Embedded,
}

/// Where a consumer group without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoOffsetReset {
    /// The oldest retained message.
    #[default]
    Earliest,
    /// Only new messages.
    Latest,
}

/// Kafka `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    #[serde(alias = "plaintext")]
    Plaintext,
    /// TLS.
    #[serde(alias = "ssl")]
    Ssl,
    /// SASL without TLS.
    #[serde(alias = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL over TLS.
    #[serde(alias = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
}

/// Kafka SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMechanism {
    /// No SASL.
    #[default]
    None,
    /// SASL/PLAIN; needs `sasl_username` and `sasl_password`.
    SaslPlain,
    /// SCRAM-SHA-256; needs `sasl_username` and `sasl_password`.
    SaslScram256,
    /// SCRAM-SHA-512; needs `sasl_username` and `sasl_password`.
    SaslScram512,
    /// AWS MSK IAM; needs `aws_region`.
    SaslIam,
    /// OAUTHBEARER (e.g. Google Managed Kafka with `gcp_project_id`).
    SaslOauthbearer,
}

/// Format of the Debezium topics' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueConverter {
    /// Kafka Connect `JsonConverter`; see [`KafkaConfig::schemas_enable`].
    #[default]
    Json,
    /// Confluent Avro via `schema_registry_url` (magic byte 0 + schema id).
    Avro,
}

impl ValueConverter {
    /// The name used in the YAML.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Avro => "avro",
        }
    }
}

/// Kafka brokers and client settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`, comma separated `host:port`.
    pub bootstrap_servers: String,
    /// Confluent Schema Registry, used with `value_converter: avro`.
    pub schema_registry: HttpEndpoint,
    /// Consumer group id.
    pub group_id: String,
    /// Where the group starts without a committed offset.
    pub auto_offset_reset: AutoOffsetReset,
    /// Idempotent producer (DLQ writes).
    pub enable_idempotence: bool,
    /// Producer `acks`: `all`, `-1`, `0` or `1`.
    pub acks: String,
    /// Partitions of topics the host creates (≥ 1).
    pub topic_num_partitions: u32,
    /// Replication factor of topics the host creates (1..=32767).
    pub topic_replication_factor: u16,
    /// Consumer `session.timeout.ms` (≥ 1 s).
    pub session_timeout: Duration,
    /// Consumer `max.poll.interval.ms` (≥ 1 s).
    pub max_poll_interval: Duration,
    /// Consumer `fetch.min.bytes` (≥ 1).
    pub fetch_min_bytes: u32,
    /// Consumer `fetch.wait.max.ms`.
    pub fetch_max_wait: Duration,
    /// Messages taken per poll (≥ 1).
    pub poll_batch_size: usize,
    /// Decoder workers (≥ 1).
    pub deser_pool_size: usize,
    /// Commit at most this often; zero commits as acknowledgements arrive.
    pub commit_interval: Duration,
    /// `security.protocol`.
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism.
    pub auth_mechanism: AuthMechanism,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<Secret>,
    /// `ssl.ca.location`.
    pub ssl_ca_location: Option<String>,
    /// `ssl.certificate.location`.
    pub ssl_certificate_location: Option<String>,
    /// `ssl.key.location`.
    pub ssl_key_location: Option<String>,
    /// AWS region, for `sasl_iam`.
    pub aws_region: Option<String>,
    /// GCP project, for Google Managed Kafka.
    pub gcp_project_id: Option<String>,
    /// Format of the topics' values.
    pub value_converter: ValueConverter,
    /// With `json`: values carry `{schema, payload}` (JsonConverter `schemas.enable`).
    pub schemas_enable: bool,
}

/// An HTTP(S) service the host calls.
#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    /// Base URL.
    pub url: String,
    /// PEM file of CA certificates trusted beyond the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Credentials sent as HTTP basic auth.
    pub basic_auth: Option<BasicAuth>,
}

/// HTTP basic auth credentials.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// Kafka Connect REST API.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Base URL.
    pub connect_url: String,
    /// PEM file of CA certificates trusted for `connect_url` beyond the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The Schema Registry as the Connect workers reach it, for the connector's Avro
    /// converters; `None` means `kafka.schema_registry_url`.
    pub schema_registry_url: Option<String>,
    /// Debezium's retries of a retriable error (the database unreachable, …) before its task
    /// turns FAILED, which `/readyz` reports and the host restarts a few times.
    pub task_max_retries: u32,
    /// Timeout of one request (> 0).
    pub timeout: Duration,
    /// Tries per request, the first included (≥ 1).
    pub retry_max_attempts: u32,
    /// Wait between tries (> 0).
    pub retry_wait: Duration,
}

/// The embedded PostgreSQL replication reader.
#[derive(Debug, Clone)]
pub struct WalReaderConfig {
    /// Publication to stream; when `None`, `source.publication_name`.
    pub publication_name: Option<String>,
    /// Replication slot; when `None`, `source.slot_name`.
    pub slot_name: Option<String>,
    /// How often standby status is sent (> 0).
    pub status_interval: Duration,
    /// Events per batch (≥ 1).
    pub batch_size: usize,
    /// Longest wait to fill a batch (> 0).
    pub batch_timeout: Duration,
    /// Reconnect tries after a lost connection; 0 means unlimited.
    pub max_retries: u32,
}

/// Dead letter queue: `<source topic>.<topic_suffix>`.
#[derive(Debug, Clone)]
pub struct DlqConfig {
    /// Send poison records to the DLQ; when off, a poison record halts the pipeline.
    pub enabled: bool,
    /// Suffix of DLQ topic names (not empty).
    pub topic_suffix: String,
    /// Tries of a record before it goes to the DLQ.
    pub max_retries: u32,
    /// Add the Kafka Connect error headers.
    pub include_headers: bool,
    /// Flush the DLQ producer at most this often; zero flushes each write.
    pub flush_interval: Duration,
    /// Where the DLQ's files go in embedded mode (no broker): one JSON Lines file per topic.
    pub directory: std::path::PathBuf,
}

/// Exponential backoff with optional jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Tries in all, the first included (≥ 1).
    pub max_attempts: u32,
    /// First wait (> 0, ≤ `max_wait`).
    pub initial_wait: Duration,
    /// Longest wait (> 0).
    pub max_wait: Duration,
    /// Growth of the wait per try (≥ 1).
    pub multiplier: f64,
    /// Randomise each wait.
    pub jitter: bool,
}
