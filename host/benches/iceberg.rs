//! The Iceberg sink alone, on local files with an SQLite catalog: rows/s in append mode and in
//! upsert mode (every commit replaces rows of earlier ones) at `BENCH_ROWS_PER_COMMIT` rows per
//! commit (default 10,000), and how commit latency grows with the number of snapshots over
//! `BENCH_GROWTH_COMMITS` small commits (default 1000).
//!
//! Needs nothing running: `cargo bench -p cdc-host --bench iceberg`. `BENCH_COMMITS` (default
//! 20) is the number of large commits per mode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_host::config::{IcebergSinkConfig, MaintenanceConfig, WriteMode};
use cdc_host::event::{ChangeEvent, Column, Decimal, Op, Position, Row, SourceInfo, TableId, Value};
use cdc_host::sinks::SinkFactory;
use cdc_host::sinks::iceberg::{IcebergFactory, IcebergSettings};

// The same allocator as the `cdc` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    cdc_host::allocator::tune();
    if std::env::args().any(|arg| arg == "--list") {
        println!("iceberg: bench");
        return;
    }
    let knob =
        |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let rows_per_commit = knob("BENCH_ROWS_PER_COMMIT", 10_000);
    let commits = knob("BENCH_COMMITS", 20);
    let growth_commits = knob("BENCH_GROWTH_COMMITS", 1000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        println!("Iceberg sink, local files, SQLite catalog, {rows_per_commit} rows per commit, 8 columns");
        for mode in [WriteMode::Append, WriteMode::Upsert] {
            let dir = tempfile::tempdir().unwrap();
            // Upsert keys cycle over five commits' worth: from the sixth commit on, every row
            // replaces one.
            let keys = (rows_per_commit * 5) as i64;
            let latencies = run(dir.path(), mode, commits, rows_per_commit, keys).await;
            let total: Duration = latencies.iter().sum();
            let rows = (commits * rows_per_commit) as f64;
            println!(
                "  {:<7} {:>9.0} rows/s  commit (write + flush) p50 {:>6.1} ms, max {:>6.1} ms",
                mode.as_str(),
                rows / total.as_secs_f64(),
                millis(percentile(&latencies, 0.5)),
                millis(percentile(&latencies, 1.0)),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let latencies = run(dir.path(), WriteMode::Append, growth_commits, 100, i64::MAX).await;
        let window = (growth_commits / 10).max(1);
        let first = &latencies[..window];
        let last = &latencies[latencies.len() - window..];
        println!(
            "commit latency growth over {growth_commits} commits of 100 rows: first {window} p50 {:.1} ms, last {window} p50 {:.1} ms",
            millis(percentile(first, 0.5)),
            millis(percentile(last, 0.5)),
        );
    });
}

/// Writes and commits `commits` batches of `rows` changes; returns each commit's time.
async fn run(
    dir: &std::path::Path,
    mode: WriteMode,
    commits: usize,
    rows: usize,
    keys: i64,
) -> Vec<Duration> {
    let settings = IcebergSettings::from_config("bench", &config(dir, mode, rows)).unwrap();
    let factory = IcebergFactory::new("lake", &settings);
    let mut sink = factory.build();
    let columns = columns();
    let mut latencies = Vec::with_capacity(commits);
    let mut offset = 0i64;
    for _ in 0..commits {
        let events: Vec<ChangeEvent> = (0..rows)
            .map(|_| {
                offset += 1;
                event(offset, offset % keys, &columns)
            })
            .collect();
        let started = Instant::now();
        sink.write(&events).await.unwrap();
        sink.flush().await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies
}

fn config(dir: &std::path::Path, mode: WriteMode, batch_size: usize) -> IcebergSinkConfig {
    IcebergSinkConfig {
        catalog_name: "bench".into(),
        catalog_uri: format!("sqlite:{}", dir.join("catalog.db").display()),
        warehouse: dir.join("warehouse").display().to_string(),
        table_namespace: "bench".into(),
        table_name: "{table}".into(),
        write_mode: mode,
        batch_size,
        auto_create_table: true,
        partition_by: Vec::new(),
        catalog_token: None,
        catalog_ca_file: None,
        catalog_properties: Default::default(),
        s3_endpoint: None,
        s3_access_key_id: None,
        s3_secret_access_key: None,
        s3_region: "us-east-1".into(),
        maintenance: MaintenanceConfig {
            enabled: false,
            expire_snapshots_interval: Duration::from_secs(3600),
            expire_snapshots_older_than: Duration::from_secs(3600),
            compaction_interval: Duration::from_secs(3600),
            compaction_file_threshold: 10,
            compaction_max_rows_per_batch: 1000,
            orphan_files_older_than: Duration::from_secs(86400),
        },
        flush_interval: Duration::ZERO,
        write_executor_threads: 0,
    }
}

fn columns() -> Arc<[Column]> {
    let column = |name: &str, connect: &str, logical: Option<&str>| Column {
        name: name.into(),
        connect_type: connect.into(),
        logical_type: logical.map(str::to_owned),
        optional: name != "id",
        ..Column::default()
    };
    vec![
        column("id", "int64", None),
        column("customer", "string", None),
        Column {
            precision: Some(12),
            scale: Some(2),
            ..column("amount", "bytes", Some("org.apache.kafka.connect.data.Decimal"))
        },
        column("created_at", "int64", Some("io.debezium.time.MicroTimestamp")),
        column("status", "string", None),
        column("quantity", "int32", None),
        column("paid", "boolean", None),
        column("note", "string", None),
    ]
    .into()
}

fn event(offset: i64, id: i64, columns: &Arc<[Column]>) -> ChangeEvent {
    let row = Row::new()
        .with("id", Value::Int(id))
        .with("customer", Value::Text(format!("customer-{}", id % 977)))
        .with("amount", Value::Decimal(Decimal::parse(&format!("{}.{:02}", id % 10_000, id % 100)).unwrap()))
        .with("created_at", Value::Timestamp(1_700_000_000_000_000 + id * 1_000))
        .with("status", Value::Text(["new", "paid", "shipped"][(id % 3) as usize].into()))
        .with("quantity", Value::Int(id % 50))
        .with("paid", Value::Bool(id % 2 == 0))
        .with("note", Value::Text("a short note about the order, about forty bytes".into()));
    ChangeEvent {
        op: if offset == id { Op::Create } else { Op::Update },
        table: TableId {
            database: Some("shop".into()),
            schema: Some("public".into()),
            table: "orders".into(),
        },
        key: Some(Row::new().with("id", Value::Int(id))),
        before: None,
        after: Some(row),
        source: SourceInfo { commit_ts_ms: Some(1_700_000_000_000), ..SourceInfo::default() },
        ts_ms: Some(1),
        columns: Some(columns.clone()),
        position: Position::Kafka { topic: Arc::from("shop.public.orders"), partition: 0, offset },
        output_index: 0,
    }
}

fn percentile(values: &[Duration], quantile: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * quantile).round() as usize]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
