//! The YAML files as written: one struct per block, every field optional, no defaults applied.
//!
//! Only [`super::validate`] reads these; it applies the defaults and rules and builds the spec
//! types. Integers are `i64` so an out-of-range value is a collected rule error with bounds,
//! not a parse failure. The field docs are on the spec types of the same name.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Secret;
use super::pipeline::{
    PostgresMode, PostgresSslMode, SinkType, SnapshotMode, SourceType, WebhookCompression,
    WebhookStatusClass, WriteMode,
};
use super::platform::{AuthMechanism, AutoOffsetReset, SecurityProtocol, TransportMode, ValueConverter};

/// `pipeline.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Pipeline {
    /// Unique pipeline name (required).
    pub pipeline_id: Option<String>,
    /// Prefix of Debezium topic names.
    pub topic_prefix: Option<String>,
    /// The source database (required).
    pub source: Option<Source>,
    /// Where events go.
    pub sinks: Option<Vec<Sink>>,
    /// Plugins applied to every event, in order, before the sinks.
    pub transforms: Option<Vec<Transform>>,
}

/// `source:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Source {
    /// Database kind.
    pub source_type: Option<SourceType>,
    /// Database host.
    pub host: Option<String>,
    /// Database port.
    pub port: Option<i64>,
    /// Database name (required).
    pub database: Option<String>,
    /// Login user.
    pub username: Option<String>,
    /// Login password.
    pub password: Option<Secret>,
    /// Captured tables, `schema.table`.
    pub tables: Option<Vec<String>>,
    /// Debezium snapshot mode.
    pub snapshot_mode: Option<SnapshotMode>,
    /// PostgreSQL replication slot.
    pub slot_name: Option<String>,
    /// PostgreSQL publication.
    pub publication_name: Option<String>,
    /// MySQL server id.
    pub mysql_server_id: Option<i64>,
    /// MongoDB replica set.
    pub replica_set_name: Option<String>,
    /// MongoDB authentication database.
    pub auth_source: Option<String>,
}

/// `retry:` (platform) and `sinks[].retry:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Retry {
    /// Tries in all, the first included.
    pub max_attempts: Option<i64>,
    /// First backoff wait.
    pub initial_wait_seconds: Option<f64>,
    /// Longest backoff wait.
    pub max_wait_seconds: Option<f64>,
    /// Backoff growth factor.
    pub multiplier: Option<f64>,
    /// Randomise the waits.
    pub jitter: Option<bool>,
}

/// `sinks[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Sink {
    /// Unique sink name (required).
    pub sink_id: Option<String>,
    /// Which sink (required).
    pub sink_type: Option<SinkType>,
    /// Whether events are delivered to it.
    pub enabled: Option<bool>,
    /// Overrides of the platform retry policy.
    pub retry: Option<Retry>,
    /// Settings when `sink_type: webhook`.
    pub webhook: Option<Webhook>,
    /// Settings when `sink_type: postgres`.
    pub postgres: Option<PostgresSink>,
    /// Settings when `sink_type: iceberg`.
    pub iceberg: Option<Iceberg>,
    /// Settings when `sink_type: wasm`.
    pub plugin: Option<Plugin>,
}

/// `sinks[].webhook:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Webhook {
    /// Endpoint (required).
    pub url: Option<String>,
    /// HTTP method.
    pub method: Option<String>,
    /// Static headers.
    pub headers: Option<BTreeMap<String, Secret>>,
    /// Request timeout.
    pub timeout_seconds: Option<f64>,
    /// Bearer token.
    pub auth_token: Option<Secret>,
    /// CA certificates (PEM) trusted for `url`.
    pub ca_file: Option<String>,
    /// HTTP status → how it is handled, where the endpoint differs from the defaults.
    pub status_classes: Option<BTreeMap<String, WebhookStatusClass>>,
    /// Events per request.
    pub batch_size: Option<i64>,
    /// Longest wait to fill a request, in milliseconds.
    pub batch_timeout_ms: Option<i64>,
    /// Concurrent requests per lane.
    pub max_in_flight: Option<i64>,
    /// Standard Webhooks secret (`whsec_…`).
    pub signing_secret: Option<Secret>,
    /// Several secrets, while they rotate.
    pub signing_secrets: Option<Vec<Secret>>,
    /// Body compression.
    pub compression: Option<WebhookCompression>,
}

/// `sinks[].postgres:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostgresSink {
    /// Target host.
    pub host: Option<String>,
    /// Target port.
    pub port: Option<i64>,
    /// Target database (required).
    pub database: Option<String>,
    /// Login user.
    pub username: Option<String>,
    /// Login password.
    pub password: Option<Secret>,
    /// TLS to the target.
    pub sslmode: Option<PostgresSslMode>,
    /// Further trusted CA certificates (PEM).
    pub sslrootcert: Option<String>,
    /// Replica tables or an event log.
    pub mode: Option<PostgresMode>,
    /// `schema.table` (required in event-log mode).
    pub target_table: Option<String>,
    /// Replica mode: schema of the target tables.
    pub target_schema: Option<String>,
    /// Replica mode: source table → target table.
    pub table_map: Option<BTreeMap<String, String>>,
    /// Rows per write.
    pub batch_size: Option<i64>,
    /// Upsert by key instead of insert.
    pub upsert: Option<bool>,
}

/// `sinks[].iceberg:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Iceberg {
    /// Catalog name.
    pub catalog_name: Option<String>,
    /// Catalog URI (required).
    pub catalog_uri: Option<String>,
    /// Warehouse location (required).
    pub warehouse: Option<String>,
    /// Namespace of the table.
    pub table_namespace: Option<String>,
    /// Table name (required).
    pub table_name: Option<String>,
    /// Append or upsert.
    pub write_mode: Option<WriteMode>,
    /// Rows per write.
    pub batch_size: Option<i64>,
    /// Create the table when absent.
    pub auto_create_table: Option<bool>,
    /// Partition columns.
    pub partition_by: Option<Vec<String>>,
    /// Bearer token of a REST catalog.
    pub catalog_token: Option<Secret>,
    /// CA certificates (PEM) trusted for a REST catalog.
    pub catalog_ca_file: Option<String>,
    /// More properties of a REST catalog (`prefix`, `header.NAME`, …).
    pub catalog_properties: Option<BTreeMap<String, String>>,
    /// S3 endpoint.
    pub s3_endpoint: Option<String>,
    /// S3 access key id.
    pub s3_access_key_id: Option<Secret>,
    /// S3 secret key.
    pub s3_secret_access_key: Option<Secret>,
    /// S3 region.
    pub s3_region: Option<String>,
    /// Table maintenance.
    pub maintenance: Option<Maintenance>,
    /// Commit interval.
    pub flush_interval_seconds: Option<f64>,
    /// Writer threads.
    pub write_executor_threads: Option<i64>,
}

/// `sinks[].iceberg.maintenance:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Maintenance {
    /// Run maintenance.
    pub enabled: Option<bool>,
    /// How often to expire snapshots.
    pub expire_snapshots_interval_seconds: Option<f64>,
    /// Age past which snapshots expire.
    pub expire_snapshots_older_than_seconds: Option<f64>,
    /// How often to compact.
    pub compaction_interval_seconds: Option<f64>,
    /// Small files that trigger compaction.
    pub compaction_file_threshold: Option<i64>,
    /// Rows per compaction batch.
    pub compaction_max_rows_per_batch: Option<i64>,
    /// Age past which files no snapshot references are deleted.
    pub orphan_files_older_than_seconds: Option<f64>,
}

/// `transforms[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Transform {
    /// Unique transform name (required).
    pub name: Option<String>,
    /// The plugin (required).
    pub plugin: Option<Plugin>,
}

/// `transforms[].plugin:` and `sinks[].plugin:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Plugin {
    /// `.wasm` component file (required).
    pub path: Option<String>,
    /// Expected sha256 of the file.
    pub sha256: Option<String>,
    /// The plugin's own settings.
    pub config: Option<serde_json::Value>,
    /// Hosts the plugin may call over HTTP.
    pub allowed_hosts: Option<Vec<String>>,
    /// Names of the host's environment variables the plugin may read.
    pub env: Option<Vec<String>>,
    /// A host directory the plugin may use.
    pub directory: Option<Directory>,
    /// Resource limits.
    pub limits: Option<Limits>,
}

/// `…plugin.directory:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Directory {
    /// Host path (required).
    pub path: Option<String>,
    /// Where the plugin sees it.
    pub mount: Option<String>,
    /// Whether the plugin may only read it.
    pub read_only: Option<bool>,
}

/// `…plugin.limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Limits {
    /// Linear memory cap.
    pub memory_mb: Option<i64>,
    /// Deadline per call.
    pub call_timeout_ms: Option<i64>,
    /// Output cap per call.
    pub max_output_bytes: Option<i64>,
}

/// `platform.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Platform {
    /// Where events come from.
    pub transport_mode: Option<TransportMode>,
    /// Kafka settings.
    pub kafka: Option<Kafka>,
    /// Kafka Connect settings.
    pub connector: Option<Connector>,
    /// Embedded replication reader settings.
    pub wal_reader: Option<WalReader>,
    /// The seed's Pub/Sub transport: accepted only to say it is not supported.
    pub pubsub: Option<IgnoredAny>,
    /// The seed's Kinesis transport: accepted only to say it is not supported.
    pub kinesis: Option<IgnoredAny>,
    /// Dead letter queue.
    pub dlq: Option<Dlq>,
    /// Default retry policy.
    pub retry: Option<Retry>,
    /// Events buffered per lane.
    pub max_buffered_messages: Option<i64>,
    /// Partitions processed at once.
    pub partition_concurrency: Option<i64>,
    /// Schema monitor period.
    pub schema_monitor_interval_seconds: Option<f64>,
    /// Lag monitor period.
    pub lag_monitor_interval_seconds: Option<f64>,
    /// Halt on incompatible schema change.
    pub stop_on_incompatible_schema: Option<bool>,
    /// Health server port.
    pub health_port: Option<i64>,
    /// Run the health server.
    pub health_enabled: Option<bool>,
    /// Longest shutdown.
    pub shutdown_timeout_seconds: Option<f64>,
}

/// `kafka:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Kafka {
    /// Brokers.
    pub bootstrap_servers: Option<String>,
    /// Schema Registry.
    pub schema_registry_url: Option<String>,
    /// Schema Registry basic auth user.
    pub schema_registry_username: Option<String>,
    /// Schema Registry basic auth password.
    pub schema_registry_password: Option<Secret>,
    /// CA certificates (PEM) trusted for the Schema Registry.
    pub schema_registry_ca_file: Option<String>,
    /// Consumer group.
    pub group_id: Option<String>,
    /// Where to start without a committed offset.
    pub auto_offset_reset: Option<AutoOffsetReset>,
    /// Idempotent producer.
    pub enable_idempotence: Option<bool>,
    /// Producer acks.
    pub acks: Option<String>,
    /// Partitions of created topics.
    pub topic_num_partitions: Option<i64>,
    /// Replication of created topics.
    pub topic_replication_factor: Option<i64>,
    /// Consumer session timeout.
    pub session_timeout_ms: Option<i64>,
    /// Consumer max poll interval.
    pub max_poll_interval_ms: Option<i64>,
    /// Fetch minimum.
    pub fetch_min_bytes: Option<i64>,
    /// Fetch wait.
    pub fetch_max_wait_ms: Option<i64>,
    /// Messages per poll.
    pub poll_batch_size: Option<i64>,
    /// Decoder workers.
    pub deser_pool_size: Option<i64>,
    /// Commit period.
    pub commit_interval_seconds: Option<f64>,
    /// Security protocol.
    pub security_protocol: Option<SecurityProtocol>,
    /// SASL mechanism.
    pub auth_mechanism: Option<AuthMechanism>,
    /// SASL user.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<Secret>,
    /// CA file.
    pub ssl_ca_location: Option<String>,
    /// Client certificate file.
    pub ssl_certificate_location: Option<String>,
    /// Client key file.
    pub ssl_key_location: Option<String>,
    /// AWS region for IAM auth.
    pub aws_region: Option<String>,
    /// GCP project for OAuth.
    pub gcp_project_id: Option<String>,
    /// Value format of the topics.
    pub value_converter: Option<ValueConverter>,
    /// JSON values carry a schema.
    pub schemas_enable: Option<bool>,
}

/// `connector:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Connector {
    /// Kafka Connect REST URL.
    pub connect_url: Option<String>,
    /// CA certificates (PEM) trusted for Kafka Connect.
    pub ca_file: Option<String>,
    /// The Schema Registry as Connect's workers reach it.
    pub schema_registry_url: Option<String>,
    /// Debezium's retries of a retriable error before its task fails.
    pub task_max_retries: Option<i64>,
    /// Request timeout.
    pub timeout_seconds: Option<f64>,
    /// Tries per request.
    pub retry_max_attempts: Option<i64>,
    /// Wait between tries.
    pub retry_wait_seconds: Option<f64>,
}

/// `wal_reader:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WalReader {
    /// Publication.
    pub publication_name: Option<String>,
    /// Replication slot.
    pub slot_name: Option<String>,
    /// Standby status period.
    pub status_interval_seconds: Option<f64>,
    /// Events per batch.
    pub batch_size: Option<i64>,
    /// Batch wait.
    pub batch_timeout_seconds: Option<f64>,
    /// Reconnect tries.
    pub max_retries: Option<i64>,
}

/// `dlq:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Dlq {
    /// Use the DLQ.
    pub enabled: Option<bool>,
    /// Topic suffix.
    pub topic_suffix: Option<String>,
    /// Tries before the DLQ.
    pub max_retries: Option<i64>,
    /// Error headers.
    pub include_headers: Option<bool>,
    /// Producer flush period.
    pub flush_interval_seconds: Option<f64>,
    /// Directory of the DLQ files (embedded mode).
    pub directory: Option<String>,
}
