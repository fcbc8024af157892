//! Every default of `pipeline.yaml` and `platform.yaml`, equal to the seed's (`cdc_platform`)
//! except `source.mysql_server_id` ([`mysql_server_id`]).
//!
//! Durations are in the seed's units (seconds or milliseconds, as the field name says).

/// `topic_prefix`.
pub const TOPIC_PREFIX: &str = "cdc";

/// `source.host`, and `sinks[].postgres.host`.
pub const SOURCE_HOST: &str = "localhost";
/// `source.port`, and `sinks[].postgres.port`.
pub const SOURCE_PORT: u16 = 5432;
/// `source.username`, and `sinks[].postgres.username`.
pub const SOURCE_USERNAME: &str = "cdc_user";
/// `source.password`, and `sinks[].postgres.password`.
pub const SOURCE_PASSWORD: &str = "cdc_password";
/// `source.slot_name`, and `wal_reader.slot_name`.
pub const SLOT_NAME: &str = "cdc_slot";
/// `source.publication_name`, and `wal_reader.publication_name`.
pub const PUBLICATION_NAME: &str = "cdc_publication";
/// `source.mysql_server_id` when unset: a number in Debezium's own default range, 5400–6399,
/// derived from the pipeline id. The seed's default, 1, is the id MySQL and MariaDB servers
/// start with, and every pipeline left at it shared it, while two binlog clients registered
/// under one id on a server disconnect each other. A derived id stays the same across restarts
/// and differs between pipelines (set it where ids must be unique for certain).
pub fn mysql_server_id(pipeline_id: &str) -> u32 {
    // FNV-1a: the same on every build and platform, unlike the standard library's hashers.
    let hash = pipeline_id
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    5400 + hash % 1000
}
/// `source.auth_source`.
pub const AUTH_SOURCE: &str = "admin";

/// `sinks[].enabled`.
pub const SINK_ENABLED: bool = true;
/// `sinks[].webhook.method`.
pub const WEBHOOK_METHOD: &str = "POST";
/// `sinks[].webhook.batch_size`: one event per request, the seed's payload.
pub const WEBHOOK_BATCH_SIZE: usize = 1;
/// The largest `sinks[].webhook.batch_size`.
pub const WEBHOOK_MAX_BATCH_SIZE: i64 = 10_000;
/// `sinks[].webhook.batch_timeout_ms`: send what a lane has, without waiting for more.
pub const WEBHOOK_BATCH_TIMEOUT_MS: u64 = 0;
/// The largest `sinks[].webhook.batch_timeout_ms`.
pub const WEBHOOK_MAX_BATCH_TIMEOUT_MS: i64 = 60_000;
/// `sinks[].webhook.max_in_flight`: one request at a time per lane.
pub const WEBHOOK_MAX_IN_FLIGHT: usize = 1;
/// The largest `sinks[].webhook.max_in_flight`.
pub const WEBHOOK_MAX_MAX_IN_FLIGHT: i64 = 64;
/// `sinks[].webhook.timeout_seconds`.
pub const WEBHOOK_TIMEOUT_SECONDS: f64 = 30.0;
/// `sinks[].postgres.batch_size`.
pub const POSTGRES_BATCH_SIZE: usize = 100;
/// `sinks[].postgres.target_schema` (replica mode).
pub const POSTGRES_TARGET_SCHEMA: &str = "public";
/// `sinks[].postgres.upsert`.
pub const POSTGRES_UPSERT: bool = false;
/// `sinks[].iceberg.catalog_name`.
pub const ICEBERG_CATALOG_NAME: &str = "default";
/// `sinks[].iceberg.table_namespace`.
pub const ICEBERG_TABLE_NAMESPACE: &str = "default";
/// `sinks[].iceberg.batch_size`: rows per commit. Every commit is a snapshot and commit cost
/// grows with their number, so commits are large.
pub const ICEBERG_BATCH_SIZE: usize = 10_000;
/// `sinks[].iceberg.auto_create_table`.
pub const ICEBERG_AUTO_CREATE_TABLE: bool = true;
/// `sinks[].iceberg.s3_region`.
pub const ICEBERG_S3_REGION: &str = "us-east-1";
/// `sinks[].iceberg.flush_interval_seconds`: how long a commit waits for `batch_size` rows
/// (0: it commits what has arrived at once).
pub const ICEBERG_FLUSH_INTERVAL_SECONDS: f64 = 10.0;
/// `sinks[].iceberg.write_executor_threads` (0: automatic).
pub const ICEBERG_WRITE_EXECUTOR_THREADS: usize = 0;
/// `sinks[].iceberg.maintenance.enabled`.
pub const MAINTENANCE_ENABLED: bool = false;
/// `sinks[].iceberg.maintenance.expire_snapshots_interval_seconds`.
pub const EXPIRE_SNAPSHOTS_INTERVAL_SECONDS: f64 = 3600.0;
/// `sinks[].iceberg.maintenance.expire_snapshots_older_than_seconds`.
pub const EXPIRE_SNAPSHOTS_OLDER_THAN_SECONDS: f64 = 86400.0;
/// `sinks[].iceberg.maintenance.orphan_files_older_than_seconds`: far longer than any write
/// waits for its commit.
pub const ORPHAN_FILES_OLDER_THAN_SECONDS: f64 = 86400.0;
/// `sinks[].iceberg.maintenance.compaction_interval_seconds`.
pub const COMPACTION_INTERVAL_SECONDS: f64 = 7200.0;
/// `sinks[].iceberg.maintenance.compaction_file_threshold`.
pub const COMPACTION_FILE_THRESHOLD: usize = 10;
/// `sinks[].iceberg.maintenance.compaction_max_rows_per_batch`.
pub const COMPACTION_MAX_ROWS_PER_BATCH: usize = 500_000;

/// `…plugin.limits.memory_mb` (new in this product).
pub const PLUGIN_MEMORY_MB: u32 = 64;
/// `…plugin.limits.call_timeout_ms` (new in this product).
pub const PLUGIN_CALL_TIMEOUT_MS: u64 = 1000;
/// `…plugin.limits.max_output_bytes` (new in this product): 16 MiB.
pub const PLUGIN_MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;

/// `kafka.bootstrap_servers`.
pub const KAFKA_BOOTSTRAP_SERVERS: &str = "localhost:9092";
/// `kafka.schema_registry_url`.
pub const KAFKA_SCHEMA_REGISTRY_URL: &str = "http://localhost:8081";
/// `kafka.group_id`.
pub const KAFKA_GROUP_ID: &str = "cdc-platform";
/// `kafka.enable_idempotence`.
pub const KAFKA_ENABLE_IDEMPOTENCE: bool = true;
/// `kafka.acks`.
pub const KAFKA_ACKS: &str = "all";
/// `kafka.topic_num_partitions`.
pub const KAFKA_TOPIC_NUM_PARTITIONS: u32 = 1;
/// `kafka.topic_replication_factor`.
pub const KAFKA_TOPIC_REPLICATION_FACTOR: u16 = 1;
/// `kafka.session_timeout_ms`.
pub const KAFKA_SESSION_TIMEOUT_MS: u64 = 45_000;
/// `kafka.max_poll_interval_ms`.
pub const KAFKA_MAX_POLL_INTERVAL_MS: u64 = 300_000;
/// `kafka.fetch_min_bytes`.
pub const KAFKA_FETCH_MIN_BYTES: u32 = 1;
/// `kafka.fetch_max_wait_ms`.
pub const KAFKA_FETCH_MAX_WAIT_MS: u64 = 500;
/// `kafka.poll_batch_size`.
pub const KAFKA_POLL_BATCH_SIZE: usize = 1;
/// `kafka.deser_pool_size`.
pub const KAFKA_DESER_POOL_SIZE: usize = 1;
/// `kafka.commit_interval_seconds` (0: commit as acks arrive).
pub const KAFKA_COMMIT_INTERVAL_SECONDS: f64 = 0.0;
/// `kafka.schemas_enable` (new in this product).
pub const KAFKA_SCHEMAS_ENABLE: bool = false;

/// `connector.connect_url`.
pub const CONNECT_URL: &str = "http://localhost:8083";
/// `connector.timeout_seconds`.
pub const CONNECT_TIMEOUT_SECONDS: f64 = 30.0;
/// `connector.retry_max_attempts`.
pub const CONNECT_RETRY_MAX_ATTEMPTS: u32 = 5;
/// `connector.task_max_retries`: Debezium retries a retriable error every 10 s, so a task
/// turns FAILED after about a minute of an outage instead of retrying silently forever
/// (Debezium's own default), and the host's restarts (3) give it about four minutes in all.
pub const CONNECTOR_TASK_MAX_RETRIES: u32 = 6;
/// `connector.retry_wait_seconds`.
pub const CONNECT_RETRY_WAIT_SECONDS: f64 = 2.0;

/// `wal_reader.status_interval_seconds`.
pub const WAL_STATUS_INTERVAL_SECONDS: f64 = 10.0;
/// `wal_reader.batch_size`.
pub const WAL_BATCH_SIZE: usize = 100;
/// `wal_reader.batch_timeout_seconds`.
pub const WAL_BATCH_TIMEOUT_SECONDS: f64 = 1.0;
/// `wal_reader.max_retries` (0: unlimited).
pub const WAL_MAX_RETRIES: u32 = 0;

/// `dlq.enabled`.
pub const DLQ_ENABLED: bool = true;
/// `dlq.topic_suffix`.
pub const DLQ_TOPIC_SUFFIX: &str = "dlq";
/// Where the DLQ files of an embedded pipeline go.
pub const DLQ_DIRECTORY: &str = "dlq";
/// `dlq.max_retries`.
pub const DLQ_MAX_RETRIES: u32 = 3;
/// `dlq.include_headers`.
pub const DLQ_INCLUDE_HEADERS: bool = true;
/// `dlq.flush_interval_seconds` (0: flush each write).
pub const DLQ_FLUSH_INTERVAL_SECONDS: f64 = 0.0;

/// `retry.max_attempts`.
pub const RETRY_MAX_ATTEMPTS: u32 = 5;
/// `retry.initial_wait_seconds`.
pub const RETRY_INITIAL_WAIT_SECONDS: f64 = 1.0;
/// `retry.max_wait_seconds`.
pub const RETRY_MAX_WAIT_SECONDS: f64 = 60.0;
/// `retry.multiplier`.
pub const RETRY_MULTIPLIER: f64 = 2.0;
/// `retry.jitter`.
pub const RETRY_JITTER: bool = true;

/// `max_buffered_messages`.
pub const MAX_BUFFERED_MESSAGES: usize = 1000;
/// `partition_concurrency` (0: one task per assigned partition).
pub const PARTITION_CONCURRENCY: usize = 0;
/// `schema_monitor_interval_seconds`.
pub const SCHEMA_MONITOR_INTERVAL_SECONDS: f64 = 30.0;
/// `lag_monitor_interval_seconds`.
pub const LAG_MONITOR_INTERVAL_SECONDS: f64 = 15.0;
/// `stop_on_incompatible_schema`.
pub const STOP_ON_INCOMPATIBLE_SCHEMA: bool = false;
/// `health_port`.
pub const HEALTH_PORT: u16 = 8080;
/// `health_enabled`.
pub const HEALTH_ENABLED: bool = true;
/// `shutdown_timeout_seconds`: below Kubernetes' default grace period of 30 s, so that a pod
/// stops on its own before it is killed.
pub const SHUTDOWN_TIMEOUT_SECONDS: f64 = 25.0;

/// `…plugin.directory.mount`: where a granted directory appears to the plugin.
pub const PLUGIN_DIRECTORY_MOUNT: &str = "/data";
