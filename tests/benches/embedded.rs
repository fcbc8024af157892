//! Embedded mode: PostgreSQL → `cdc` (logical replication read in process) → PostgreSQL replica.
//!
//! - **Throughput**: rows/s of inserts committed at the source, 10,000 per transaction, until
//!   the replica holds them all, beside the same run's raw baseline: the database copying the
//!   same rows from one table into another with `INSERT … SELECT` (no replication at all).
//! - **Latency** at a steady rate (5,000 rows/s by default, in transactions of 50 every 10 ms):
//!   source commit → row written at the replica, by the database's own clock on both ends (a
//!   column of the replica table defaults to `clock_timestamp()`), p50 and p99. The sink's
//!   write commits with its flush, so what the replica holds is durable.
//!
//! Needs PostgreSQL with logical replication: `scripts/test-env.sh pg-up` (or `up`),
//! `eval "$(scripts/test-env.sh env)"`, then `cargo bench -p cdc-tests --bench embedded`.
//! `BENCH_ROWS` (default 200,000) and `BENCH_RATE` (default 5,000) change the figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_host::config::SnapshotMode;
use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::Metrics;
use cdc_host::pipeline::{self, SinkSettings};
use cdc_host::sinks::postgres::{PostgresFactory, PostgresSettings, Target};
use cdc_host::source::postgres::EmbeddedSettings;
use cdc_tests::env::{TestEnv, unique_suffix};
use cdc_tests::pipeline::{pipeline_settings, quick_retry};
use tokio_postgres::Client;

// The allocator of the `cdc` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRANSACTION: i64 = 10_000;
const COLUMNS: &str =
    "id bigint PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz, note text";

fn main() {
    // Tuned as the `cdc` binary tunes it.
    cdc_host::allocator::tune();
    if std::env::args().any(|arg| arg == "--list") {
        println!("embedded: bench");
        return;
    }
    let rows: i64 = std::env::var("BENCH_ROWS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let rate: i64 = std::env::var("BENCH_RATE").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let env = TestEnv::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = connect(&env).await;
        let suffix = unique_suffix();
        let (source, schema) = (format!("bench_src_{suffix}"), format!("bench_replica_{suffix}"));
        client.batch_execute(&format!("CREATE TABLE public.{source} ({COLUMNS})")).await.unwrap();
        // The replica table exists beforehand, with a column of its own stamping each row's arrival.
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; CREATE TABLE {schema}.{source} ({COLUMNS}, \
                 arrived_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ))
            .await
            .unwrap();

        let raw = raw_copy(&client, &suffix, rows).await;
        println!("{rows} inserts, {TRANSACTION} per transaction; latency at {rate} rows/s");
        println!("{:<52} {:>10} {:>8}", "path", "rows/s", "vs raw");
        println!("{:<52} {:>10.0} {:>8}", "raw: INSERT … SELECT inside the database", raw, "1.00");

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let pipeline = tokio::spawn(run_pipeline(env.clone(), source.clone(), schema.clone(), stopped));
        wait_streaming(&client, &format!("bench_{suffix}")).await;

        let started = Instant::now();
        for first in (1..=rows).step_by(TRANSACTION as usize) {
            let last = (first + TRANSACTION - 1).min(rows);
            client.batch_execute(&insert_rows(&source, first, last)).await.unwrap();
        }
        wait_for_rows(&client, &format!("{schema}.{source}"), rows).await;
        let embedded = rows as f64 / started.elapsed().as_secs_f64();
        println!("{:<52} {:>10.0} {:>8.2}", "source → cdc embedded → replica (one table)", embedded, embedded / raw);

        let (p50, p99, sent) = steady_latency(&client, &source, &schema, rows, rate).await;
        println!(
            "latency at {rate} rows/s over {sent} rows (source commit → written at the replica): p50 {p50:.1} ms, p99 {p99:.1} ms"
        );

        let _ = stop.send(());
        let outcome = pipeline.await.unwrap();
        assert_eq!(outcome, pipeline::Outcome::Stopped);
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE; DROP TABLE public.{source}")).await.unwrap();
        drop_slot(&client, &format!("bench_{suffix}")).await;
        client.batch_execute(&format!("DROP PUBLICATION bench_{suffix}")).await.unwrap();
    });
}

/// Drops the bench's slot, so that runs do not pile up slots holding WAL (and reach
/// `max_replication_slots`); the stopped pipeline's walsender may take a moment to let go.
async fn drop_slot(client: &Client, slot: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    // The slot's name is the bench's own (`bench_` and hex digits).
    while let Err(error) = client.batch_execute(&format!("SELECT pg_drop_replication_slot('{slot}')")).await {
        assert!(Instant::now() < deadline, "the slot {slot} could not be dropped: {error:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(env: &TestEnv) -> Client {
    let (client, connection) =
        tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

fn insert_rows(table: &str, first: i64, last: i64) -> String {
    format!(
        "INSERT INTO public.{table} SELECT i, 'customer ' || i, (i * 7.31) % 100000, \
         '2024-05-06 07:08:09.123456+00'::timestamptz + i * interval '1 second', \
         'change of customer ' || i || ': ' || repeat('lorem ipsum ', 8) FROM generate_series({first}, {last}) i"
    )
}

/// The baseline: the same rows copied by the database itself, no replication involved.
async fn raw_copy(client: &Client, suffix: &str, rows: i64) -> f64 {
    let (from, to) = (format!("bench_raw_from_{suffix}"), format!("bench_raw_to_{suffix}"));
    client
        .batch_execute(&format!("CREATE TABLE {from} ({COLUMNS}); CREATE TABLE {to} ({COLUMNS})"))
        .await
        .unwrap();
    for first in (1..=rows).step_by(TRANSACTION as usize) {
        client.batch_execute(&insert_rows(&from, first, (first + TRANSACTION - 1).min(rows))).await.unwrap();
    }
    let started = Instant::now();
    for first in (1..=rows).step_by(TRANSACTION as usize) {
        let last = (first + TRANSACTION - 1).min(rows);
        client
            .batch_execute(&format!(
                "INSERT INTO {to} SELECT * FROM {from} WHERE id BETWEEN {first} AND {last} \
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, amount = EXCLUDED.amount, \
                 updated_at = EXCLUDED.updated_at, note = EXCLUDED.note"
            ))
            .await
            .unwrap();
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    client.batch_execute(&format!("DROP TABLE {from}; DROP TABLE {to}")).await.unwrap();
    rate
}

async fn run_pipeline(
    env: TestEnv,
    source: String,
    schema: String,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> pipeline::Outcome {
    let suffix = source.trim_start_matches("bench_src_").to_owned();
    let settings = PostgresSettings {
        pipeline_id: "bench".into(),
        connect: env.postgres_sink_connection(),
        target: Target::Replica { target_schema: schema, table_map: Vec::new() },
        rows_per_statement: TRANSACTION as usize,
    };
    let factory = Arc::new(PostgresFactory::new("replica", &settings).unwrap());
    let mut options =
        pipeline_settings("unused", "unused", "unused", vec![SinkSettings { factory, retry: quick_retry() }]);
    options.batch_size = 10_000;
    options.max_buffered_messages = 40_000;
    options.commit_interval = Duration::from_millis(200);
    let embedded = EmbeddedSettings {
        connect: env.embedded_source_connection(),
        tables: vec![format!("public.{source}")],
        publication: format!("bench_{suffix}"),
        slot: format!("bench_{suffix}"),
        snapshot_mode: SnapshotMode::Never,
        server: "bench".into(),
        status_interval: Duration::from_secs(1),
        max_retries: 3,
    };
    let health = Arc::new(Health::new(["replica".to_owned()]));
    let shutdown = async {
        let _ = stopped.await;
    };
    pipeline::run_embedded(options, embedded, None, health, Arc::new(Metrics::default()), shutdown)
        .await
        .expect("the embedded source starts")
}

async fn wait_streaming(client: &Client, slot: &str) {
    for _ in 0..600 {
        let active = client
            .query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
            .await
            .unwrap()
            .is_some_and(|row| row.get::<_, bool>(0));
        if active {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the slot {slot} never became active");
}

/// Waits until the replica holds rows 1..=`rows`. The sink applies one table's changes in
/// order, so the last row's arrival is looked up by its key (a `count(*)` every poll would scan
/// the growing table and take the CPU the pipeline is measured on); the count is checked once.
async fn wait_for_rows(client: &Client, table: &str, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let last_arrived = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)");
    while !client.query_one(&last_arrived, &[&rows]).await.unwrap().get::<_, bool>(0) {
        assert!(Instant::now() < deadline, "row {rows} not at the replica after 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let count: i64 = client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
    assert_eq!(count, rows, "rows at the replica once the last arrived");
}

/// Inserts at `rate` rows/s for 10 s, each row stamped with `clock_timestamp()` as it is
/// inserted (`updated_at`; its small transaction commits right after), and reads the arrival
/// times at the replica back.
async fn steady_latency(
    client: &Client,
    source: &str,
    schema: &str,
    first_id: i64,
    rate: i64,
) -> (f64, f64, i64) {
    let per_tick: i64 = (rate / 100).max(1);
    let ticks: i64 = 1000;
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next = first_id + 1;
    for _ in 0..ticks {
        interval.tick().await;
        client
            .batch_execute(&format!(
                "INSERT INTO public.{source} SELECT i, 'steady', 1, clock_timestamp(), 'x' \
                 FROM generate_series({next}, {}) i",
                next + per_tick - 1
            ))
            .await
            .unwrap();
        next += per_tick;
    }
    let sent = next - first_id - 1;
    wait_for_rows(client, &format!("{schema}.{source}"), first_id + sent).await;
    let row = client
        .query_one(
            &format!(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) \
                 FROM (SELECT extract(epoch FROM arrived_at - updated_at) * 1000 AS ms FROM {schema}.{source} \
                 WHERE id > {first_id}) latencies"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), sent)
}
