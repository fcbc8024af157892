//! The validated `pipeline.yaml`: the source, the sinks and the transforms of one pipeline.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use super::platform::RetryConfig;

/// One pipeline: where changes come from and where they go.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Unique name of the pipeline; names the consumer offsets and checkpoints.
    pub pipeline_id: String,
    /// Prefix of the Debezium topic names (`<prefix>.<schema>.<table>`);
    /// matches `^[a-zA-Z][a-zA-Z0-9._-]*$`.
    pub topic_prefix: String,
    /// The source database.
    pub source: SourceConfig,
    /// Plugins applied in this order to every batch before the sinks.
    pub transforms: Vec<TransformConfig>,
    /// Where events are delivered; each sink has its own lane.
    pub sinks: Vec<SinkConfig>,
}

/// Kind of source database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceType {
    /// PostgreSQL (Debezium or the embedded replication reader).
    #[default]
    Postgres,
    /// MySQL (Debezium).
    Mysql,
    /// MongoDB (Debezium).
    Mongodb,
    /// SQL Server (Debezium; CDC must be enabled on the database).
    Sqlserver,
}

impl SourceType {
    /// The name used in the YAML.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Mongodb => "mongodb",
            Self::Sqlserver => "sqlserver",
        }
    }
}

/// Debezium snapshot mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Snapshot the tables once, then stream.
    #[default]
    Initial,
    /// Never snapshot; stream from now.
    Never,
    /// Snapshot when no usable position is stored.
    WhenNeeded,
    /// Capture the schema only, then stream.
    NoData,
}

/// The database changes are captured from.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Kind of database.
    pub source_type: SourceType,
    /// Host name or address.
    pub host: String,
    /// Port (1..=65535).
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Login user.
    pub username: String,
    /// Login password.
    pub password: Secret,
    /// Captured tables as `schema.table` (for MongoDB `db.collection`); empty means all.
    pub tables: Vec<String>,
    /// Debezium snapshot mode.
    pub snapshot_mode: SnapshotMode,
    /// PostgreSQL logical replication slot.
    pub slot_name: String,
    /// PostgreSQL publication.
    pub publication_name: String,
    /// MySQL server id, unique in the replication topology (≥ 1).
    pub mysql_server_id: u32,
    /// MongoDB replica set name; `None` for standalone or when the URI names it.
    pub replica_set_name: Option<String>,
    /// MongoDB database that authenticates the user.
    pub auth_source: String,
}

/// Kind of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    /// HTTP POST of batches.
    Webhook,
    /// PostgreSQL table.
    Postgres,
    /// Apache Iceberg table.
    Iceberg,
    /// A `.wasm` sink plugin.
    Wasm,
}

impl SinkType {
    /// The name used in the YAML.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Postgres => "postgres",
            Self::Iceberg => "iceberg",
            Self::Wasm => "wasm",
        }
    }
}

/// One destination.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Unique name of the sink in the pipeline.
    pub sink_id: String,
    /// Whether events are delivered to it; a disabled sink does not hold back commits.
    pub enabled: bool,
    /// Retry policy: the sink's `retry:` fields over the platform's `retry:`.
    pub retry: RetryConfig,
    /// The sink's own settings, matching `sink_type`.
    pub kind: SinkKind,
}

impl SinkConfig {
    /// The sink's `sink_type`.
    pub const fn sink_type(&self) -> SinkType {
        match self.kind {
            SinkKind::Webhook(_) => SinkType::Webhook,
            SinkKind::Postgres(_) => SinkType::Postgres,
            SinkKind::Iceberg(_) => SinkType::Iceberg,
            SinkKind::Wasm(_) => SinkType::Wasm,
        }
    }
}

/// A sink's settings, by `sink_type`.
#[derive(Debug, Clone)]
pub enum SinkKind {
    /// `sink_type: webhook` with its `webhook:` block.
    Webhook(WebhookSinkConfig),
    /// `sink_type: postgres` with its `postgres:` block.
    Postgres(PostgresSinkConfig),
    /// `sink_type: iceberg` with its `iceberg:` block.
    Iceberg(IcebergSinkConfig),
    /// `sink_type: wasm` with its `plugin:` block.
    Wasm(PluginConfig),
}

/// HTTP delivery of batches.
#[derive(Debug, Clone)]
pub struct WebhookSinkConfig {
    /// Endpoint URL (`http://` or `https://`).
    pub url: String,
    /// HTTP method, upper case: `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// Static headers; values are secrets since they often carry credentials.
    pub headers: BTreeMap<String, Secret>,
    /// Timeout of one request (> 0).
    pub timeout: Duration,
    /// Bearer token sent as `Authorization: Bearer <token>`.
    pub auth_token: Option<Secret>,
    /// PEM file of CA certificates trusted for `url` beyond the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Statuses the endpoint uses its own way, with the class they get (`delivered`,
    /// `transient`, `record`, `fatal`); every other status keeps its default class.
    pub status_classes: BTreeMap<u16, WebhookStatusClass>,
    /// Events per request: 1 sends each event as the body; more send `{"events": [...]}`.
    pub batch_size: usize,
    /// How long a lane waits for more events to fill a request (zero: sends what it has).
    pub batch_timeout: Duration,
    /// Requests in flight at once per lane, each for its own keys (1: one at a time).
    pub max_in_flight: usize,
    /// Standard Webhooks secrets (`whsec_…`, checked): every request is signed with each.
    pub signing_secrets: Vec<Secret>,
    /// How request bodies are compressed.
    pub compression: WebhookCompression,
}

/// The HMAC key of a Standard Webhooks secret: the base64 after `whsec_`; `None` when the
/// secret is not one.
pub fn signing_key(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let encoded = secret.strip_prefix("whsec_")?;
    base64::engine::general_purpose::STANDARD.decode(encoded).ok().filter(|key| !key.is_empty())
}

/// How the webhook sink compresses request bodies (`webhook.compression`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookCompression {
    /// Sent as they are.
    #[default]
    None,
    /// `Content-Encoding: gzip`.
    Gzip,
}

/// How the webhook sink treats an HTTP status (`webhook.status_classes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatusClass {
    /// The event arrived (for example a 409 that means "already have it").
    Delivered,
    /// Try again later; never dead-letters.
    Transient,
    /// This payload is refused: retried `dlq.max_retries` times, then dead-lettered.
    Record,
    /// Nothing can get through (bad credentials): the pipeline halts.
    Fatal,
}

/// Writes to PostgreSQL: a replica of each source table, or one event-log table.
#[derive(Debug, Clone)]
pub struct PostgresSinkConfig {
    /// Host name or address.
    pub host: String,
    /// Port (1..=65535).
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Login user.
    pub username: String,
    /// Login password.
    pub password: Secret,
    /// TLS to the target.
    pub sslmode: PostgresSslMode,
    /// A PEM file of further trusted CA certificates, for `verify-full`.
    pub sslrootcert: Option<PathBuf>,
    /// Replica tables or an event log.
    pub mode: PostgresMode,
    /// Event-log mode: the table, as `schema.table`.
    pub target_table: String,
    /// Replica mode: the schema of tables the map does not name.
    pub target_schema: String,
    /// Replica mode: `source_schema.table` → `target_schema.table`.
    pub table_map: BTreeMap<String, String>,
    /// Most rows per statement (≥ 1).
    pub batch_size: usize,
    /// Event-log mode: a record written again replaces its row (else the first write stays).
    pub upsert: bool,
}

/// What the PostgreSQL sink writes (`postgres.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostgresMode {
    /// One row per change in `target_table` (the seed's behaviour).
    #[default]
    EventLog,
    /// One target table per source table holding its current rows.
    Replica,
}

/// TLS to the target database (`postgres.sslmode`), named as libpq names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PostgresSslMode {
    /// Plain TCP (the seed's behaviour).
    #[default]
    Disable,
    /// TLS, with the server's certificate checked against the system's trust store (and
    /// `sslrootcert`, when given) and its name against `host`.
    VerifyFull,
}

/// How rows are written to Iceberg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Every change is a new row (changelog).
    #[default]
    Append,
    /// Equality deletes plus data: the table holds the latest row per key.
    Upsert,
}

impl WriteMode {
    /// The name used in the YAML.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Upsert => "upsert",
        }
    }
}

/// Writes to an Apache Iceberg table.
#[derive(Debug, Clone)]
pub struct IcebergSinkConfig {
    /// Catalog name.
    pub catalog_name: String,
    /// Catalog URI (REST URL or SQL connection string).
    pub catalog_uri: String,
    /// Warehouse location (`s3://…` or a path).
    pub warehouse: String,
    /// Namespace of the table.
    pub table_namespace: String,
    /// Table name.
    pub table_name: String,
    /// Append or upsert.
    pub write_mode: WriteMode,
    /// Rows per commit (≥ 1).
    pub batch_size: usize,
    /// Create the table from the source schema when absent.
    pub auto_create_table: bool,
    /// Partition columns.
    pub partition_by: Vec<String>,
    /// Bearer token of a REST catalog, sent as `Authorization: Bearer …`.
    pub catalog_token: Option<Secret>,
    /// PEM file of CA certificates trusted for a REST catalog beyond the system's roots.
    pub catalog_ca_file: Option<PathBuf>,
    /// More properties of a REST catalog: `prefix` when the server's `/v1/config` names none,
    /// `header.NAME` for extra headers.
    pub catalog_properties: BTreeMap<String, String>,
    /// S3 endpoint, for S3-compatible stores.
    pub s3_endpoint: Option<String>,
    /// S3 access key id.
    pub s3_access_key_id: Option<Secret>,
    /// S3 secret access key.
    pub s3_secret_access_key: Option<Secret>,
    /// S3 region.
    pub s3_region: String,
    /// Snapshot expiry and compaction.
    pub maintenance: MaintenanceConfig,
    /// How long a commit waits for `batch_size` rows; zero commits what has arrived at once.
    pub flush_interval: Duration,
    /// Writer threads; 0 picks automatically.
    pub write_executor_threads: usize,
}

/// Iceberg table maintenance, run in the sink's process between commits.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceConfig {
    /// Run maintenance.
    pub enabled: bool,
    /// How often to expire snapshots (> 0).
    pub expire_snapshots_interval: Duration,
    /// Snapshots older than this expire (> 0).
    pub expire_snapshots_older_than: Duration,
    /// How often to compact (> 0).
    pub compaction_interval: Duration,
    /// Compact once a partition has this many small files (≥ 1).
    pub compaction_file_threshold: usize,
    /// Rows per compaction batch (≥ 1).
    pub compaction_max_rows_per_batch: usize,
    /// Files no snapshot references are deleted once this old (> 0), with snapshot expiry.
    pub orphan_files_older_than: Duration,
}

/// One transform step.
#[derive(Debug, Clone)]
pub struct TransformConfig {
    /// Unique name of the step.
    pub name: String,
    /// The plugin that runs it.
    pub plugin: PluginConfig,
}

/// A `.wasm` component and how it runs.
#[derive(Clone)]
pub struct PluginConfig {
    /// Component file, resolved against the pipeline file's directory.
    pub path: PathBuf,
    /// Expected sha256 of the file, lower-case hex; loading fails on mismatch.
    pub sha256: Option<String>,
    /// The plugin's own settings, passed to it as JSON (a JSON object).
    pub config: serde_json::Value,
    /// Hosts (`host` or `host:port`) the plugin may reach over HTTP; empty means none.
    pub allowed_hosts: Vec<String>,
    /// Names of host environment variables the plugin may read (their values at start).
    pub env: Vec<String>,
    /// A host directory the plugin may use; none by default.
    pub directory: Option<PluginDirectory>,
    /// Resource limits.
    pub limits: PluginLimits,
}

/// A host directory granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDirectory {
    /// Host path, resolved against the pipeline file's directory.
    pub path: PathBuf,
    /// The path the plugin sees (default `/data`).
    pub mount: String,
    /// Whether the plugin may only read it (default false).
    pub read_only: bool,
}

impl fmt::Debug for PluginConfig {
    /// Prints the keys of `config` only, since its values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&String> = self.config.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        f.debug_struct("PluginConfig")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("config_keys", &keys)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("env", &self.env)
            .field("directory", &self.directory)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Resource limits of one plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory cap in MiB (1..=4096).
    pub memory_mb: u32,
    /// Deadline of one call (1 ms..=600 s).
    pub call_timeout: Duration,
    /// Output cap of one call in bytes (≥ 1).
    pub max_output_bytes: u64,
}

impl PluginLimits {
    /// The memory cap in bytes.
    pub const fn memory_bytes(&self) -> u64 {
        self.memory_mb as u64 * 1024 * 1024
    }
}
