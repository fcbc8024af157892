//! PostgreSQL replica throughput: upserts/s of Debezium changes (JSON with schemas) from Kafka
//! through `cdc`'s pipeline into a replica table, in lane batches of 10,000, beside a raw bulk
//! upsert of the same rows on one connection (typed `unnest` arrays, one transaction per
//! 10,000 rows: what a hand-written loader does), decoding alone, and the sink alone on
//! decoded events, all in the same run, with the heap allocations per event of decoding and
//! of the sink, and the CPU time and page faults of this process per row in the Kafka phases
//! (less sensitive than the rates to what else the machine runs). The pipeline's clock starts
//! at its first commit, so that joining the consumer group is not counted. The raw rate swings
//! by a third from one run to the next on a shared machine, so it is measured three times,
//! spread over the run, and every path is compared with the median of the three.
//!
//! Needs the test services: `scripts/test-env.sh up`, `eval "$(scripts/test-env.sh env)"`, then
//! `cargo bench -p cdc-tests --bench postgres`. `BENCH_ROWS` sets the number of changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cdc_host::decode::Decoded;
use cdc_host::event::{ChangeEvent, Position};
use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::Metrics;
use cdc_host::pipeline::{self, SinkSettings};
use cdc_host::sinks::SinkFactory;
use cdc_host::sinks::postgres::{PostgresFactory, PostgresSettings, Target};
use cdc_tests::allocations::{CountingAllocator, start_counting, stop_counting};
use cdc_tests::env::{TestEnv, unique_suffix};
use cdc_tests::kafka::{create_topic, delete_topic};
use cdc_tests::pipeline::{pipeline_settings, quick_retry, set_max_buffered};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::json;

// The allocator of the `cdc` binary, counted in the phases that report allocations per event.
#[global_allocator]
static ALLOCATOR: CountingAllocator<mimalloc::MiMalloc> = CountingAllocator(mimalloc::MiMalloc);

const BATCH: usize = 10_000;
/// Distinct keys: every key changes `rows / KEYS` times over the run, never twice in a batch.
const KEYS: usize = 50_000;

fn field(name: &str, kind: &str, logical: Option<&str>, parameters: serde_json::Value) -> serde_json::Value {
    let mut field = json!({"field": name, "type": kind, "optional": name != "id"});
    if let Some(logical) = logical {
        field["name"] = json!(logical);
    }
    if !parameters.is_null() {
        field["parameters"] = parameters;
    }
    field
}

/// A Debezium change of row `i % KEYS` (JsonConverter with schemas), about 2 KB.
fn record(i: usize) -> (Vec<u8>, Vec<u8>) {
    let id = (i % KEYS) as i64;
    let row_schema = json!({"type": "struct", "optional": true, "fields": [
        field("id", "int64", None, json!(null)),
        field("name", "string", None, json!(null)),
        field("amount", "bytes", Some("org.apache.kafka.connect.data.Decimal"), json!({"scale": "2", "connect.decimal.precision": "12"})),
        field("updated_at", "string", Some("io.debezium.time.ZonedTimestamp"), json!(null)),
        field("note", "string", None, json!(null)),
    ]});
    let source_schema = json!({"type": "struct", "optional": false, "fields": [
        field("db", "string", None, json!(null)), field("schema", "string", None, json!(null)),
        field("table", "string", None, json!(null)), field("connector", "string", None, json!(null)),
    ]});
    let schema = json!({"type": "struct", "optional": false, "fields": [
        named("before", &row_schema),
        named("after", &row_schema),
        named("source", &source_schema),
        field("op", "string", None, json!(null)),
        field("ts_ms", "int64", None, json!(null)),
    ]});
    let cents = (i as i64 * 7919) % 100_000_000 - 50_000_000;
    let after = json!({
        "id": id,
        "name": format!("customer {id}"),
        "amount": base64::engine::general_purpose::STANDARD.encode(unscaled_bytes(cents)),
        "updated_at": format!("2024-05-06T07:{:02}:{:02}.{:06}Z", i / 60 % 60, i % 60, i % 1_000_000),
        "note": format!("change {i} of customer {id}: {}", "lorem ipsum ".repeat(8)),
    });
    let op = if i < KEYS { "c" } else { "u" };
    let value = json!({"schema": schema, "payload": {
        "before": null, "after": after, "op": op, "ts_ms": 1,
        "source": {"db": "shop", "schema": "public", "table": "accounts", "connector": "postgresql"},
    }});
    let key = json!({"schema": {"type": "struct", "fields": [field("id", "int64", None, json!(null))]}, "payload": {"id": id}});
    (serde_json::to_vec(&key).unwrap(), serde_json::to_vec(&value).unwrap())
}

/// `schema` as the struct field `name`.
fn named(name: &str, schema: &serde_json::Value) -> serde_json::Value {
    let mut field = schema.clone();
    field["field"] = json!(name);
    field
}

/// A decimal's unscaled value as Connect writes it: big-endian two's complement, shortest form.
fn unscaled_bytes(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let redundant =
        |pair: &[u8]| (pair[0] == 0 && pair[1] & 0x80 == 0) || (pair[0] == 0xff && pair[1] & 0x80 != 0);
    let skip = bytes.windows(2).take_while(|pair| redundant(pair)).count();
    bytes[skip..].to_vec()
}

fn main() {
    // Tuned as the `cdc` binary tunes it.
    cdc_host::allocator::tune();
    if std::env::args().any(|arg| arg == "--list") {
        println!("postgres: bench");
        return;
    }
    let rows: usize = std::env::var("BENCH_ROWS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let env = TestEnv::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let records: Vec<(Vec<u8>, Vec<u8>)> = (0..rows).map(record).collect();
        let average = records.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() / rows;
        println!(
            "{rows} changes of {KEYS} keys, {average} B each (Debezium JSON with schemas), batches of {BATCH}"
        );
        start_counting();
        let decode_started = Instant::now();
        let decoded: Vec<ChangeEvent> = records
            .iter()
            .enumerate()
            .map(|(offset, (key, value))| {
                let position =
                    Position::Kafka { topic: Arc::from("bench"), partition: 0, offset: offset as i64 };
                match cdc_host::decode::decode_json(Some(key), Some(value), position) {
                    Ok(Decoded::Change(event)) => event,
                    other => panic!("record {offset} decodes to a change: {other:?}"),
                }
            })
            .collect();
        let decode_rate = rows as f64 / decode_started.elapsed().as_secs_f64();
        let decode_allocations = stop_counting() as f64 / rows as f64;

        let raw_schema = format!("bench_raw_{}", unique_suffix());
        let mut raw_rates = vec![raw_bulk_upsert(&client, &raw_schema, &decoded).await];
        let mut paths = vec![("decoding alone (one thread, no database)".to_owned(), decode_rate)];
        let mut kafka_costs = Vec::new();

        let sink_schema = format!("bench_sink_{}", unique_suffix());
        let factory = factory(&env, &sink_schema, "sink-only");
        let mut sink = factory.build();
        start_counting();
        let started = Instant::now();
        for batch in decoded.chunks(BATCH) {
            sink.write(batch).await.expect("write");
            sink.flush().await.expect("flush");
        }
        let sink_rate = rows as f64 / started.elapsed().as_secs_f64();
        let sink_allocations = stop_counting() as f64 / rows as f64;
        sink.close().await;
        paths.push(("PostgreSQL sink alone (decoded events)".to_owned(), sink_rate));
        assert_same_rows(&client, &raw_schema, &sink_schema).await;

        // With a buffer of a few batches the partition pauses for backpressure; with a large
        // one it never does (librdkafka drops what it prefetched at every pause and fetches
        // it again on resume).
        for max_buffered in [4 * BATCH, 40 * BATCH] {
            let kafka_schema = format!("bench_kafka_{}", unique_suffix());
            let (kafka_rate, cost) = through_kafka(&env, &client, &kafka_schema, &records, max_buffered).await;
            paths.push((format!("Kafka → cdc → replica, max_buffered {max_buffered}"), kafka_rate));
            kafka_costs.push((max_buffered, cost));
            assert_same_rows(&client, &raw_schema, &kafka_schema).await;
            let again = format!("bench_raw_{}", unique_suffix());
            raw_rates.push(raw_bulk_upsert(&client, &again, &decoded).await);
            for schema in [kafka_schema, again] {
                client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
            }
        }
        let raw = median(&raw_rates);
        let runs: Vec<String> = raw_rates.iter().map(|rate| format!("{rate:.0}")).collect();
        println!("{:<44} {:>12} {:>10}", "path", "upserts/s", "vs raw");
        println!("{:<44} {raw:>12.0} {:>10}", "raw bulk upsert (typed unnest), median", "1.00");
        for (path, rate) in paths {
            println!("{path:<44} {rate:>12.0} {:>10.2}", rate / raw);
        }
        println!("raw bulk upsert runs: {}", runs.join(", "));
        println!(
            "heap allocations per event: decoding {decode_allocations:.1}, sink (with its client) {sink_allocations:.1}"
        );
        for (max_buffered, cost) in kafka_costs {
            println!(
                "cdc per row, Kafka phase with max_buffered {max_buffered}: {:.1} µs of CPU, {:.2} page faults",
                cost.cpu_micros, cost.page_faults
            );
        }
        for schema in [raw_schema, sink_schema] {
            client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
        }
    });
}

fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn factory(env: &TestEnv, schema: &str, sink_id: &str) -> Arc<dyn SinkFactory> {
    let settings = PostgresSettings {
        pipeline_id: "bench".into(),
        connect: env.postgres_sink_connection(),
        target: Target::Replica { target_schema: schema.into(), table_map: Vec::new() },
        rows_per_statement: BATCH,
    };
    Arc::new(PostgresFactory::new(sink_id, &settings).unwrap())
}

/// The baseline: the rows of each batch as typed arrays, one upsert per batch in a transaction.
async fn raw_bulk_upsert(client: &tokio_postgres::Client, schema: &str, events: &[ChangeEvent]) -> f64 {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.accounts (id bigint PRIMARY KEY, name text, \
             amount numeric(12, 2), updated_at timestamptz, note text)"
        ))
        .await
        .unwrap();
    let upsert = client
        .prepare(&format!(
            "INSERT INTO {schema}.accounts SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]::numeric[], \
             $4::text[]::timestamptz[], $5::text[]) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
             amount = EXCLUDED.amount, updated_at = EXCLUDED.updated_at, note = EXCLUDED.note"
        ))
        .await
        .unwrap();
    // Typed values are ready before the clock starts: the baseline measures the database alone.
    let batches: Vec<_> = events
        .chunks(BATCH)
        .map(|batch| {
            let text = |event: &ChangeEvent, column: &str| match event
                .after
                .as_ref()
                .unwrap()
                .get(column)
                .unwrap()
            {
                cdc_host::event::Value::Text(text) | cdc_host::event::Value::TimestampTz(text) => {
                    text.clone()
                }
                cdc_host::event::Value::Decimal(decimal) => decimal.as_str().to_owned(),
                other => panic!("{other:?}"),
            };
            let ids: Vec<i64> = batch
                .iter()
                .map(|e| e.after.as_ref().unwrap().get("id").unwrap().as_i64().unwrap())
                .collect();
            let names: Vec<String> = batch.iter().map(|e| text(e, "name")).collect();
            let amounts: Vec<String> = batch.iter().map(|e| text(e, "amount")).collect();
            let times: Vec<String> = batch.iter().map(|e| text(e, "updated_at")).collect();
            let notes: Vec<String> = batch.iter().map(|e| text(e, "note")).collect();
            (ids, names, amounts, times, notes)
        })
        .collect();
    let started = Instant::now();
    for (ids, names, amounts, times, notes) in &batches {
        client.batch_execute("BEGIN").await.unwrap();
        // numeric and timestamptz go as text: no Rust type here maps them.
        client.execute(&upsert, &[ids, names, amounts, times, notes]).await.unwrap();
        client.batch_execute("COMMIT").await.unwrap();
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

/// What this process spent per row while the pipeline ran.
struct RowCost {
    cpu_micros: f64,
    page_faults: f64,
}

/// This process's CPU time (user and system) and minor page faults so far, from
/// `/proc/self/stat` (clock ticks of 10 ms: a phase of seconds is measured to a few percent).
fn process_usage() -> (Duration, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which may hold spaces, start at its closing parenthesis.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..].split(' ').collect();
    let number = |index: usize| fields[index].parse::<u64>().expect("a number");
    // minflt, utime and stime are fields 10, 14 and 15 of proc(5), counted from the pid.
    let ticks = number(11) + number(12);
    (Duration::from_millis(ticks * 10), number(7))
}

/// Produces the records to a fresh topic and runs the pipeline into a replica sink until the
/// positions it stored cover them all: the rows per second, and what they cost this process.
async fn through_kafka(
    env: &TestEnv,
    client: &tokio_postgres::Client,
    schema: &str,
    records: &[(Vec<u8>, Vec<u8>)],
    max_buffered: usize,
) -> (f64, RowCost) {
    let topic = format!("bench-pg-{}", unique_suffix());
    create_topic(&env.kafka, &topic, 1).await;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for (key, value) in records {
        let mut record = BaseRecord::to(&topic).key(key).payload(value);
        while let Err((_, returned)) = producer.send(record) {
            record = returned;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();

    let factory = factory(env, schema, "replica");
    let mut settings = pipeline_settings(
        &env.kafka,
        &format!("bench-{topic}"),
        &topic,
        vec![SinkSettings { factory, retry: quick_retry() }],
    );
    // One partition fetched 1 MB at a time cannot feed 10,000-row batches: fetch as much as a
    // batch holds, as a replica pipeline would be tuned.
    settings.consumer.properties.push(("max.partition.fetch.bytes".into(), (32 << 20).to_string()));
    settings.batch_size = BATCH;
    set_max_buffered(&mut settings, max_buffered);
    let health = Arc::new(Health::new(["replica".to_owned()]));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pipeline = tokio::spawn(pipeline::run(settings, None, health, Arc::new(Metrics::default()), async {
        let _ = stopped.await;
    }));
    // The clock runs from the first batch the sink committed to the last, so that joining the
    // consumer group (seconds on the test broker) is not counted as throughput.
    let query = format!("SELECT coalesce(max(next_offset), 0) FROM {schema}.cdc_sink_positions");
    let next = || async { client.query_one(&query, &[]).await.map_or(0, |row| row.get::<_, i64>(0)) };
    // Polled every 20 ms: often enough for a run of seconds, rarely enough that the queries
    // take next to nothing from the database being measured.
    let poll = Duration::from_millis(20);
    let mut first = 0;
    while first == 0 {
        tokio::time::sleep(poll).await;
        first = next().await;
    }
    let clock = Instant::now();
    let (cpu_before, faults_before) = process_usage();
    let wanted = records.len() as i64;
    while next().await < wanted {
        tokio::time::sleep(poll).await;
    }
    let rows = (wanted - first) as f64;
    let rate = rows / clock.elapsed().as_secs_f64();
    let (cpu_after, faults_after) = process_usage();
    let cost = RowCost {
        cpu_micros: (cpu_after - cpu_before).as_secs_f64() * 1e6 / rows,
        page_faults: (faults_after - faults_before) as f64 / rows,
    };
    let _ = stop.send(());
    pipeline.await.unwrap().unwrap();
    delete_topic(&env.kafka, &topic).await;
    (rate, cost)
}

async fn assert_same_rows(client: &tokio_postgres::Client, expected: &str, found: &str) {
    let differing = format!(
        "SELECT count(*) FROM ((SELECT * FROM {expected}.accounts EXCEPT SELECT * FROM {found}.accounts) \
         UNION ALL (SELECT * FROM {found}.accounts EXCEPT SELECT * FROM {expected}.accounts)) d"
    );
    let count: i64 = client.query_one(&differing, &[]).await.unwrap().get(0);
    assert_eq!(count, 0, "{found} holds other rows than {expected}");
}
