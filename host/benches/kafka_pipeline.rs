//! Kafka → decode → a no-op sink with commits, measured beside a raw rdkafka consumer of the
//! same topic in the same run, then end-to-end latency at a steady produce rate, then resident
//! memory of a pipeline whose sink stalls on 8 partitions (in a fresh process).
//!
//! Needs a broker: `scripts/test-env.sh up`, then `cargo bench -p cdc-host --bench kafka_pipeline`.
//! `CDC_TEST_KAFKA` (default 127.0.0.1:19092) picks the broker, `BENCH_MESSAGES` the backlog size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cdc_host::decode::Decoder;
use cdc_host::event::ChangeEvent;
use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::Metrics;
use cdc_host::pipeline::retry::RetrySettings;
use cdc_host::pipeline::{self, PipelineSettings, SinkSettings};
use cdc_host::sinks::{Sink, SinkError, SinkFactory};
use cdc_host::source::kafka::ConsumerSettings;
use futures::future::BoxFuture;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::Mutex;

// The same allocator as the `cdc` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 8;
const EVENT_BYTES: usize = 1024;
const STALLED_MAX_BUFFERED: usize = 1000;

fn main() {
    let bootstrap = std::env::var("CDC_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:19092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // `kafka_pipeline stalled <topic>`: the memory phase, run in a child process.
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "stalled") {
        let topic = args.get(position + 1).expect("topic after `stalled`");
        runtime.block_on(stalled_memory(&bootstrap, topic));
        return;
    }
    if args.iter().any(|arg| arg == "--list") {
        // `cargo bench -- --list` asks what benchmarks exist.
        println!("kafka_pipeline: bench");
        return;
    }
    let messages: usize =
        std::env::var("BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    runtime.block_on(async {
        let topic = format!("bench-{}", now_ms());
        create_topic(&bootstrap, &topic).await;
        let produce_started = Instant::now();
        produce(&bootstrap, &topic, messages, None);
        println!(
            "produced {messages} × {EVENT_BYTES} B Debezium JSON events on {PARTITIONS} partitions in {:.1} s",
            produce_started.elapsed().as_secs_f64()
        );
        let raw = raw_consumer(&bootstrap, &topic, messages).await;
        let pipeline = pipeline_backlog(&bootstrap, &topic, messages).await;
        println!("raw rdkafka consumer:             {raw:>10.0} msg/s");
        println!("pipeline (decode, no-op sink):    {pipeline:>10.0} msg/s  ({:.0} % of raw)", 100.0 * pipeline / raw);
        steady_latency(&bootstrap).await;
        let child = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(["stalled", &topic])
            .status()
            .expect("memory phase runs");
        assert!(child.success(), "memory phase failed");
    });
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

async fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let new_topic = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    let results = admin.create_topics([&new_topic], &AdminOptions::new()).await.expect("create topic");
    results.into_iter().for_each(|result| {
        result.expect("topic created");
    });
}

/// A Debezium envelope (JsonConverter, no schema) of about `EVENT_BYTES` bytes whose `ts_ms` is
/// the time it was produced.
fn event(id: usize) -> (Vec<u8>, Vec<u8>) {
    let key = format!(r#"{{"id":{id}}}"#).into_bytes();
    let head = format!(
        r#"{{"before":null,"after":{{"id":{id},"name":"customer {id}","email":"c{id}@example.com","balance":"1234.50","note":""#
    );
    let tail = format!(
        r#""}},"source":{{"version":"3.1.1.Final","connector":"postgresql","name":"bench","ts_ms":{now},"snapshot":"false","db":"shop","schema":"public","table":"customers","txId":{id},"lsn":{id}}},"op":"c","ts_ms":{now}}}"#,
        now = now_ms()
    );
    let padding = EVENT_BYTES.saturating_sub(head.len() + tail.len());
    let value = format!("{head}{}{tail}", "x".repeat(padding)).into_bytes();
    (key, value)
}

/// Produces `count` events, as fast as possible or at `rate` per second.
fn produce(bootstrap: &str, topic: &str, count: usize, rate: Option<u64>) {
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
        let (key, value) = event(id);
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
    for partition in 0..PARTITIONS {
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
    PipelineSettings {
        consumer: ConsumerSettings { group_id: group.to_owned(), properties },
        topics: vec![topic.to_owned()],
        decoder: Decoder::Json,
        sinks: vec![SinkSettings { factory: Arc::new(factory), retry }],
        transforms: Vec::new(),
        transform_retry: retry,
        max_buffered_messages: max_buffered,
        batch_size: 500,
        partition_concurrency: 0,
        record_retries: 0,
        commit_interval: Duration::from_secs(1),
        lag_interval: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(10),
    }
}

/// The pipeline over the same backlog; messages per second from the assignment to the last event.
async fn pipeline_backlog(bootstrap: &str, topic: &str, messages: usize) -> f64 {
    let seen = Arc::new(AtomicU64::new(0));
    let factory = CountingFactory { seen: seen.clone(), latency_ms: None, stall: Arc::default() };
    let group = format!("bench-pipeline-{}", now_ms());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = options(bootstrap, topic, &group, factory, 10_000);
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
    create_topic(bootstrap, &topic).await;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicU64::new(0));
    let factory =
        CountingFactory { seen: seen.clone(), latency_ms: Some(latencies.clone()), stall: Arc::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = options(bootstrap, &topic, &format!("bench-steady-{}", now_ms()), factory, 10_000);
    let health = Arc::new(Health::new(["bench".to_owned()]));
    let run = tokio::spawn(pipeline::run(options, None, health, Arc::new(Metrics::default()), async {
        let _ = stopped.await;
    }));
    // Let the consumer join its group before the clock starts.
    produce(bootstrap, &topic, 1, None);
    while seen.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies.lock().await.clear();
    let (count, rate) = (20_000, 2_000);
    let producer_bootstrap = bootstrap.to_owned();
    let producer_topic = topic.clone();
    tokio::task::spawn_blocking(move || produce(&producer_bootstrap, &producer_topic, count, Some(rate)))
        .await
        .expect("producer");
    while (seen.load(Ordering::Relaxed) as usize) < count + 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    run.await.expect("pipeline task").expect("pipeline runs");
    let mut latencies = latencies.lock().await.clone();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "end-to-end latency at {rate} events/s: p50 {} ms, p99 {} ms, max {} ms ({} events)",
        percentile(0.5),
        percentile(0.99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len()
    );
}

/// Resident memory once every partition holds `STALLED_MAX_BUFFERED` records behind a stalled sink.
async fn stalled_memory(bootstrap: &str, topic: &str) {
    let seen = Arc::new(AtomicU64::new(0));
    let factory = CountingFactory { seen, latency_ms: None, stall: Arc::new(AtomicBool::new(true)) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options =
        options(bootstrap, topic, &format!("bench-stalled-{}", now_ms()), factory, STALLED_MAX_BUFFERED);
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
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    println!(
        "stalled sink, {PARTITIONS} partitions × max_buffered_messages {STALLED_MAX_BUFFERED} × {EVENT_BYTES} B: \
         {last} records held, resident memory {:.1} MB",
        rss_kib as f64 / 1024.0
    );
    let _ = stop.send(());
    // The stalled sink never finishes: the drain times out, which is what a stalled sink does.
    let _ = tokio::time::timeout(Duration::from_secs(30), run).await;
}
