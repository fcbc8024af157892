//! Kafka → decode → a no-op sink with commits, for JSON and for Avro, each measured beside a raw
//! rdkafka consumer of the same topic in the same run; then end-to-end latency at a steady
//! produce rate; then resident memory of a pipeline whose sink stalls on 8 partitions. Every
//! consumer runs in a process of its own, so that each peak RSS is its own.
//!
//! Needs a broker: `scripts/test-env.sh up`, then `cargo bench -p cdc-tests --bench kafka_pipeline`.
//! `CDC_TEST_KAFKA` (default 127.0.0.1:19092) picks the broker, `BENCH_MESSAGES` the backlog size.
//! Avro records are framed for a Schema Registry test double on loopback (no real registry can
//! be installed here): the pipeline fetches their schemas from it as from a real one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cdc_host::decode::{Decoder, SchemaRegistry};
use cdc_host::event::ChangeEvent;
use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::Metrics;
use cdc_host::pipeline::retry::RetrySettings;
use cdc_host::pipeline::{self, PipelineSettings, SinkSettings};
use cdc_host::sinks::{Sink, SinkError, SinkFactory};
use cdc_host::source::kafka::{ConsumerSettings, consumer_tuning};
use cdc_host::testing::avro::{bytes, long, some, string};
use cdc_tests::kafka::{create_topic, delete_topic};
use cdc_tests::schema_registry::TestSchemaRegistry;
use futures::future::BoxFuture;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::Mutex;

// The same allocator as the `cdc` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Partitions of the backlog and latency topics (as in the throughput issue's measurement;
/// `BENCH_PARTITIONS` changes it).
const PARTITIONS: i32 = 4;
/// Partitions of the stalled-sink topic, each holding `STALLED_MAX_BUFFERED` records.
const STALLED_PARTITIONS: i32 = 8;
const EVENT_BYTES: usize = 1024;
/// The pipeline's `max_buffered_messages` in the backlog phases (`BENCH_MAX_BUFFERED`), and the
/// lane batch size.
const MAX_BUFFERED: usize = 10_000;
const BATCH_SIZE: usize = 500;
const STALLED_MAX_BUFFERED: usize = 1000;
/// What a child process prints before its measurement: `<prefix> <events/s> <peak RSS KiB>`.
const RESULT: &str = "bench-result";

/// The value schema of the Avro events: a Debezium PostgreSQL envelope as AvroConverter
/// registers it, with the columns of the JSON events.
const AVRO_VALUE_SCHEMA: &str = r#"{"type": "record", "name": "Envelope", "namespace": "bench.public.customers",
  "connect.name": "bench.public.customers.Envelope", "fields": [
  {"name": "before", "default": null, "type": ["null", {"type": "record", "name": "Value",
    "connect.name": "bench.public.customers.Value", "fields": [
    {"name": "id", "type": "int"},
    {"name": "name", "default": null, "type": ["null", "string"]},
    {"name": "email", "default": null, "type": ["null", "string"]},
    {"name": "balance", "default": null, "type": ["null", {"type": "bytes", "scale": 2, "precision": 10,
      "connect.version": 1, "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"},
      "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"}]},
    {"name": "note", "default": null, "type": ["null", "string"]}]}]},
  {"name": "after", "default": null, "type": ["null", "Value"]},
  {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
    "connect.name": "io.debezium.connector.postgresql.Source", "fields": [
    {"name": "version", "type": "string"}, {"name": "connector", "type": "string"},
    {"name": "name", "type": "string"}, {"name": "ts_ms", "type": "long"},
    {"name": "snapshot", "default": "false", "type": [{"type": "string", "connect.version": 1,
      "connect.parameters": {"allowed": "true,last,false,incremental"}, "connect.default": "false",
      "connect.name": "io.debezium.data.Enum"}, "null"]},
    {"name": "db", "type": "string"}, {"name": "schema", "type": "string"}, {"name": "table", "type": "string"},
    {"name": "txId", "default": null, "type": ["null", "long"]},
    {"name": "lsn", "default": null, "type": ["null", "long"]}]}},
  {"name": "op", "type": "string"},
  {"name": "ts_ms", "default": null, "type": ["null", "long"]}]}"#;
const AVRO_KEY_SCHEMA: &str = r#"{"type": "record", "name": "Key", "namespace": "bench.public.customers",
  "connect.name": "bench.public.customers.Key", "fields": [{"name": "id", "type": "int"}]}"#;

/// How the benchmark's events are encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// JsonConverter without schemas.
    Json,
    /// AvroConverter: Confluent framing with these key and value schema ids.
    Avro { key_id: u32, value_id: u32 },
}

fn main() {
    // Tuned as the `cdc` binary tunes it.
    cdc_host::allocator::tune();
    let bootstrap = std::env::var("CDC_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:19092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--list") {
        // `cargo bench -- --list` asks what benchmarks exist.
        println!("kafka_pipeline: bench");
        return;
    }
    // The phases that run in a child process: `raw <topic> <n>`, `pipeline <topic> <n> [registry]`,
    // `latency`, `stalled <topic>`.
    let phases = ["raw", "pipeline", "latency", "stalled"];
    if let Some(phase) = args.iter().position(|arg| phases.contains(&arg.as_str())) {
        let arg = |n: usize| args.get(phase + n).cloned().unwrap_or_default();
        let messages = arg(2).parse().unwrap_or(0);
        runtime.block_on(async {
            match args[phase].as_str() {
                "raw" => report(raw_consumer(&bootstrap, &arg(1), messages).await),
                "pipeline" => {
                    let registry = args.get(phase + 3).map(String::as_str);
                    report(pipeline_backlog(&bootstrap, &arg(1), messages, registry).await);
                }
                "latency" => steady_latency(&bootstrap).await,
                _ => stalled_memory(&bootstrap, &arg(1)).await,
            }
        });
        return;
    }
    let messages: usize =
        std::env::var("BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    runtime.block_on(async {
        let registry = TestSchemaRegistry::start().await.expect("schema registry double starts");
        let avro = Format::Avro {
            key_id: registry.register("bench.public.customers-key", AVRO_KEY_SCHEMA),
            value_id: registry.register("bench.public.customers-value", AVRO_VALUE_SCHEMA),
        };
        let stamp = now_ms();
        let mut rows = Vec::new();
        for (name, format) in [("json", Format::Json), ("avro", avro)] {
            let topic = format!("bench-{name}-{stamp}");
            create_topic(&bootstrap, &topic, partitions()).await;
            let produce_started = Instant::now();
            let producer_topic = topic.clone();
            let (producer_bootstrap, count) = (bootstrap.clone(), messages);
            tokio::task::spawn_blocking(move || {
                produce(&producer_bootstrap, &producer_topic, count, None, format);
            })
            .await
            .expect("producer");
            println!(
                "produced {messages} × ~{EVENT_BYTES} B Debezium {name} events on {} partitions in {:.1} s",
                partitions(),
                produce_started.elapsed().as_secs_f64()
            );
            let raw = child(&["raw", &topic, &messages.to_string()]).await;
            let mut pipeline_args = vec!["pipeline".to_owned(), topic.clone(), messages.to_string()];
            if format != Format::Json {
                pipeline_args.push(registry.url());
            }
            let pipeline = child(&pipeline_args.iter().map(String::as_str).collect::<Vec<_>>()).await;
            delete_topic(&bootstrap, &topic).await;
            rows.push((name, raw, pipeline));
        }
        println!(
            "\nbacklog of {messages} events, max_buffered_messages {}, batches of {BATCH_SIZE}:",
            max_buffered()
        );
        println!("{:<28} {:>12} {:>10} {:>14}", "consumer", "events/s", "× raw", "peak RSS MB");
        for (name, (raw, raw_rss), (pipeline, rss)) in rows {
            println!(
                "{:<28} {raw:>12.0} {:>10} {:>14.1}",
                format!("raw rdkafka, {name} topic"),
                "1.00",
                raw_rss
            );
            println!(
                "{:<28} {pipeline:>12.0} {:>10.2} {rss:>14.1}",
                format!("pipeline, {name}"),
                pipeline / raw
            );
        }
        println!();
        child(&["latency"]).await;
        let stalled_topic = format!("bench-stalled-{stamp}");
        create_topic(&bootstrap, &stalled_topic, STALLED_PARTITIONS).await;
        let records = 2 * STALLED_MAX_BUFFERED * STALLED_PARTITIONS as usize;
        let producer_bootstrap = bootstrap.clone();
        let producer_topic = stalled_topic.clone();
        tokio::task::spawn_blocking(move || {
            produce(&producer_bootstrap, &producer_topic, records, None, Format::Json);
        })
        .await
        .expect("producer");
        child(&["stalled", &stalled_topic]).await;
        delete_topic(&bootstrap, &stalled_topic).await;
    });
}

fn partitions() -> i32 {
    std::env::var("BENCH_PARTITIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(PARTITIONS)
}

fn max_buffered() -> usize {
    std::env::var("BENCH_MAX_BUFFERED").ok().and_then(|n| n.parse().ok()).unwrap_or(MAX_BUFFERED)
}

/// Runs a phase in a fresh process of this benchmark; its events/s and peak RSS in MB.
async fn child(args: &[&str]) -> (f64, f64) {
    let program = std::env::current_exe().expect("own path");
    let args: Vec<String> = args.iter().map(|&arg| arg.to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program).args(&args).stderr(std::process::Stdio::inherit()).output()
    })
    .await
    .expect("child task")
    .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "phase failed: {stdout}");
    let result = stdout.lines().find_map(|line| line.strip_prefix(RESULT));
    let Some(result) = result else {
        print!("{stdout}");
        return (0.0, 0.0);
    };
    let mut numbers = result.split_whitespace().map(|n| n.parse::<f64>().expect("a number"));
    let (rate, rss_kib) = (numbers.next().unwrap_or(0.0), numbers.next().unwrap_or(0.0));
    (rate, rss_kib / 1024.0)
}

/// Prints a phase's events/s with this process's peak RSS, for the parent to read.
fn report(rate: f64) {
    println!("{RESULT} {rate} {}", status_kib("VmHWM:"));
}

/// A memory figure of this process from `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with(field))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// A Debezium change of about `EVENT_BYTES` bytes in `format`, whose `ts_ms` is the time it was
/// produced.
fn event(id: usize, format: Format) -> (Vec<u8>, Vec<u8>) {
    let now = now_ms();
    match format {
        Format::Json => json_event(id, now),
        Format::Avro { key_id, value_id } => avro_event(id, now, key_id, value_id),
    }
}

fn json_event(id: usize, now: i64) -> (Vec<u8>, Vec<u8>) {
    let key = format!(r#"{{"id":{id}}}"#).into_bytes();
    let head = format!(
        r#"{{"before":null,"after":{{"id":{id},"name":"customer {id}","email":"c{id}@example.com","balance":"1234.50","note":""#
    );
    let tail = format!(
        r#""}},"source":{{"version":"3.1.1.Final","connector":"postgresql","name":"bench","ts_ms":{now},"snapshot":"false","db":"shop","schema":"public","table":"customers","txId":{id},"lsn":{id}}},"op":"c","ts_ms":{now}}}"#
    );
    let padding = EVENT_BYTES.saturating_sub(head.len() + tail.len());
    (key, format!("{head}{}{tail}", "x".repeat(padding)).into_bytes())
}

/// The same change as [`json_event`] in the Avro binary encoding of [`AVRO_VALUE_SCHEMA`], with
/// the note padded so that the record is as large.
fn avro_event(id: usize, now: i64, key_id: u32, value_id: u32) -> (Vec<u8>, Vec<u8>) {
    let id = i64::try_from(id).expect("id fits");
    let framed = |schema_id: u32| [vec![0], schema_id.to_be_bytes().to_vec()].concat();
    let key = [framed(key_id), long(id)].concat();
    let head = [
        framed(value_id),
        long(0), // before: null
        long(1), // after: the row
        long(id),
        some(string(&format!("customer {id}"))),
        some(string(&format!("c{id}@example.com"))),
        some(bytes(&[0x01, 0xe2, 0x3a])), // 1234.50
    ]
    .concat();
    let source = [
        string("3.1.1.Final"),
        string("postgresql"),
        string("bench"),
        long(now),
        [long(0), string("false")].concat(),
        string("shop"),
        string("public"),
        string("customers"),
        some(long(id)),
        some(long(id)),
    ]
    .concat();
    let tail = [source, string("c"), some(long(now))].concat();
    // The note's length prefix takes two bytes at these sizes.
    let padding = EVENT_BYTES.saturating_sub(head.len() + tail.len() + 3);
    let value = [head, some(string(&"x".repeat(padding))), tail].concat();
    (key, value)
}

/// Produces `count` events, as fast as possible or at `rate` per second.
fn produce(bootstrap: &str, topic: &str, count: usize, rate: Option<u64>, format: Format) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", if rate.is_some() { "0" } else { "20" })
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let started = Instant::now();
    for id in 0..count {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(id as f64 / rate as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let (key, value) = event(id, format);
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000");
    config
}

/// The baseline: a raw rdkafka consumer reading the same backlog; messages per second.
async fn raw_consumer(bootstrap: &str, topic: &str, messages: usize) -> f64 {
    let consumer: StreamConsumer = consumer_config(bootstrap, "bench-raw").create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions() {
        list.add_partition_offset(topic, partition, Offset::Beginning).expect("partition");
    }
    consumer.assign(&list).expect("assign");
    // Both consumers are timed from the moment they own the partitions.
    let started = Instant::now();
    let mut seen = 0usize;
    let mut bytes = 0usize;
    while seen < messages {
        let message = consumer.recv().await.expect("message");
        bytes += message.payload().map_or(0, <[u8]>::len);
        seen += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(bytes >= messages * (EVENT_BYTES - 64));
    seen as f64 / elapsed
}

/// Counts what it is given; can stall forever to fill the lanes.
struct CountingSink {
    seen: Arc<AtomicU64>,
    latency_ms: Option<Arc<Mutex<Vec<i64>>>>,
    stall: Arc<AtomicBool>,
}

impl Sink for CountingSink {
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if self.stall.load(Ordering::Relaxed) {
                futures::future::pending::<()>().await;
            }
            if let Some(latencies) = &self.latency_ms {
                let now = now_ms();
                latencies
                    .lock()
                    .await
                    .extend(events.iter().filter_map(|event| event.ts_ms).map(|ts| now - ts));
            }
            self.seen.fetch_add(events.len() as u64, Ordering::Relaxed);
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}

struct CountingFactory {
    seen: Arc<AtomicU64>,
    latency_ms: Option<Arc<Mutex<Vec<i64>>>>,
    stall: Arc<AtomicBool>,
}

impl SinkFactory for CountingFactory {
    fn sink_id(&self) -> &str {
        "bench"
    }

    fn build(&self) -> Box<dyn Sink> {
        Box::new(CountingSink {
            seen: self.seen.clone(),
            latency_ms: self.latency_ms.clone(),
            stall: self.stall.clone(),
        })
    }
}

fn options(
    bootstrap: &str,
    topic: &str,
    group: &str,
    factory: CountingFactory,
    max_buffered: usize,
    decoder: Decoder,
) -> PipelineSettings {
    let retry = RetrySettings {
        max_attempts: 3,
        initial_wait: Duration::from_millis(100),
        max_wait: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: true,
    };
    let mut properties = vec![
        ("bootstrap.servers".to_owned(), bootstrap.to_owned()),
        ("auto.offset.reset".to_owned(), "earliest".to_owned()),
        ("session.timeout.ms".to_owned(), "6000".to_owned()),
    ];
    properties.push(("fetch.wait.max.ms".to_owned(), "100".to_owned()));
    // What `cdc run` applies to every consumer.
    properties.extend(consumer_tuning(max_buffered));
    PipelineSettings {
        consumer: ConsumerSettings { group_id: group.to_owned(), properties },
        topics: vec![topic.to_owned()],
        decoder,
        sinks: vec![SinkSettings { factory: Arc::new(factory), retry }],
        transforms: Vec::new(),
        transform_retry: retry,
        max_buffered_messages: max_buffered,
        batch_size: BATCH_SIZE,
        partition_concurrency: 0,
        record_retries: 0,
        commit_interval: Duration::from_secs(1),
        lag_interval: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(10),
    }
}

/// The pipeline over the same backlog; messages per second from the assignment to the last event.
async fn pipeline_backlog(bootstrap: &str, topic: &str, messages: usize, registry: Option<&str>) -> f64 {
    let seen = Arc::new(AtomicU64::new(0));
    let factory = CountingFactory { seen: seen.clone(), latency_ms: None, stall: Arc::default() };
    let group = format!("bench-pipeline-{}", now_ms());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let decoder = match registry {
        Some(url) => {
            let registry = SchemaRegistry::new(url, Duration::from_secs(10)).expect("registry client");
            Decoder::Avro(Arc::new(registry))
        }
        None => Decoder::Json,
    };
    let options = options(bootstrap, topic, &group, factory, max_buffered(), decoder);
    let health = Arc::new(Health::new(["bench".to_owned()]));
    let run =
        tokio::spawn(pipeline::run(options, None, health.clone(), Arc::new(Metrics::default()), async {
            let _ = stopped.await;
        }));
    // Joining the group takes seconds on the test broker: the clock starts at the assignment.
    while health.readiness().1["failing"].get("consumer").is_some() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    while (seen.load(Ordering::Relaxed) as usize) < messages {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    run.await.expect("pipeline task").expect("pipeline runs");
    rate
}

/// End-to-end latency (produce → sink) at a steady rate of 2,000 events per second.
async fn steady_latency(bootstrap: &str) {
    let topic = format!("bench-steady-{}", now_ms());
    create_topic(bootstrap, &topic, partitions()).await;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicU64::new(0));
    let factory =
        CountingFactory { seen: seen.clone(), latency_ms: Some(latencies.clone()), stall: Arc::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let group = format!("bench-steady-{}", now_ms());
    let options = options(bootstrap, &topic, &group, factory, MAX_BUFFERED, Decoder::Json);
    let health = Arc::new(Health::new(["bench".to_owned()]));
    let run = tokio::spawn(pipeline::run(options, None, health, Arc::new(Metrics::default()), async {
        let _ = stopped.await;
    }));
    // Let the consumer join its group before the clock starts.
    produce(bootstrap, &topic, 1, None, Format::Json);
    while seen.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies.lock().await.clear();
    let (count, rate) = (20_000, 2_000);
    // A raw consumer beside the pipeline, with the same librdkafka settings: the latency that
    // the broker and librdkafka alone add.
    let raw = tokio::spawn(raw_latencies(bootstrap.to_owned(), topic.clone(), count + 1));
    let producer_bootstrap = bootstrap.to_owned();
    let producer_topic = topic.clone();
    tokio::task::spawn_blocking(move || {
        produce(&producer_bootstrap, &producer_topic, count, Some(rate), Format::Json)
    })
    .await
    .expect("producer");
    while (seen.load(Ordering::Relaxed) as usize) < count + 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    run.await.expect("pipeline task").expect("pipeline runs");
    let pipeline = latencies.lock().await.clone();
    let raw = raw.await.expect("raw consumer");
    delete_topic(bootstrap, &topic).await;
    for (name, mut latencies) in [("raw rdkafka consumer", raw), ("pipeline", pipeline)] {
        latencies.sort_unstable();
        let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        println!(
            "end-to-end latency at {rate} events/s, {name}: p50 {} ms, p99 {} ms, max {} ms ({} events)",
            percentile(0.5),
            percentile(0.99),
            latencies.last().copied().unwrap_or_default(),
            latencies.len()
        );
    }
}

/// Produce-to-receive latencies of a raw consumer of `topic` (from its start) with the pipeline's
/// librdkafka settings, in milliseconds, for the last `count` events it reads.
async fn raw_latencies(bootstrap: String, topic: String, count: usize) -> Vec<i64> {
    let mut config = consumer_config(&bootstrap, "bench-steady-raw");
    config.set("fetch.wait.max.ms", "100");
    for (key, value) in consumer_tuning(MAX_BUFFERED) {
        config.set(key, value);
    }
    let consumer: StreamConsumer = config.create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions() {
        list.add_partition_offset(&topic, partition, Offset::Beginning).expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let mut latencies = Vec::with_capacity(count);
    while latencies.len() < count {
        let message = consumer.recv().await.expect("message");
        let payload = std::str::from_utf8(message.payload().unwrap_or_default()).unwrap_or_default();
        // The envelope's last field is its `ts_ms`, the produce time.
        let produced = payload
            .rsplit("\"ts_ms\":")
            .next()
            .and_then(|rest| rest.trim_end_matches('}').parse::<i64>().ok());
        latencies.push(now_ms() - produced.expect("a ts_ms"));
    }
    // The first event was produced before the clock started.
    latencies.remove(0);
    latencies
}

/// Resident memory once every partition holds `STALLED_MAX_BUFFERED` records behind a stalled sink.
async fn stalled_memory(bootstrap: &str, topic: &str) {
    let seen = Arc::new(AtomicU64::new(0));
    let factory = CountingFactory { seen, latency_ms: None, stall: Arc::new(AtomicBool::new(true)) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let group = format!("bench-stalled-{}", now_ms());
    let options = options(bootstrap, topic, &group, factory, STALLED_MAX_BUFFERED, Decoder::Json);
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(["bench".to_owned()]));
    let consumed = metrics.counter(cdc_host::ops::metrics::names::RECORDS_CONSUMED, "");
    let run = tokio::spawn(pipeline::run(options, None, health, metrics, async {
        let _ = stopped.await;
    }));
    // Wait until consumption stops growing: every partition is paused.
    let mut last = 0;
    let mut stable_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = consumed.get();
        if now != last || now == 0 {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let rss_kib = status_kib("VmRSS:");
    println!(
        "stalled sink, {STALLED_PARTITIONS} partitions × max_buffered_messages {STALLED_MAX_BUFFERED} × {EVENT_BYTES} B: \
         {last} records held, resident memory {:.1} MB",
        rss_kib as f64 / 1024.0
    );
    let _ = stop.send(());
    // The stalled sink never finishes: the drain times out, which is what a stalled sink does.
    let _ = tokio::time::timeout(Duration::from_secs(30), run).await;
}
