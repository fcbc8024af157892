//! The poll loop against librdkafka's mock cluster (real protocol, groups and commits):
//! rebalances that take partitions away and give them back, commits that count only once the
//! broker accepted them, and a shutdown that is bounded whatever the sinks do. In process, with
//! the lanes' test sinks (`cdc_host::testing`), since what is checked is the loop itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::{Metrics, names};
use cdc_host::pipeline::{self, Outcome, PipelineSettings, SinkSettings};
use cdc_host::testing::ScriptedSinkFactory;
use cdc_tests::kafka::{committed_offsets, produce};
use cdc_tests::pipeline::{pipeline_settings, quick_retry};
use cdc_tests::receiver::eventually;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message};
use serde_json::json;
use tokio::sync::oneshot;

const TOPIC: &str = "mock.public.orders";

async fn produce_orders(bootstrap: &str, partition: i32, ids: std::ops::Range<i64>) {
    for id in ids {
        let key = json!({"id": id}).to_string();
        let value = json!({
            "before": null,
            "after": {"id": id},
            "source": {"connector": "postgresql", "db": "shop", "schema": "public", "table": "orders"},
            "op": "c",
            "ts_ms": 1,
        })
        .to_string();
        produce(bootstrap, TOPIC, partition, Some(key.as_bytes()), value.as_bytes()).await;
    }
}

fn cluster(partitions: i32, group: &str) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, partitions, 1).unwrap();
    cluster.coordinator(MockCoordinator::Group(group.into()), 1).unwrap();
    cluster
}

fn options(
    bootstrap: &str,
    group: &str,
    sink: &ScriptedSinkFactory,
    max_buffered: usize,
) -> PipelineSettings {
    let sinks = vec![SinkSettings { factory: Arc::new(sink.clone()), retry: quick_retry() }];
    PipelineSettings {
        max_buffered_messages: max_buffered,
        ..pipeline_settings(bootstrap, group, TOPIC, sinks)
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<Outcome, pipeline::Error>>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

fn start(options: PipelineSettings) -> Running {
    let health = Arc::new(Health::new(["sink".to_owned()]));
    health.set_connector(Ok(()));
    let metrics = Arc::new(Metrics::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(pipeline::run(options, None, health.clone(), metrics.clone(), async {
        let _ = stopped.await;
    }));
    Running { stop, task, metrics, health }
}

/// A second member of the group, polled on its own thread; `assigned` counts its partitions.
struct Member {
    assigned: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn join(bootstrap: &str, group: &str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "300")
            .create()
            .unwrap();
        consumer.subscribe(&[TOPIC]).unwrap();
        let (assigned, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, stopping) = (assigned.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                // It reads nothing for good: what it polls is neither processed nor committed.
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                    let _ = message.offset();
                }
                count.store(consumer.assignment().map_or(0, |list| list.count()), Ordering::Release);
            }
            consumer.unsubscribe();
            drop(consumer);
        });
        Member { assigned, stop, thread: Some(thread) }
    }

    fn assigned(&self) -> usize {
        self.assigned.load(Ordering::Acquire)
    }

    fn leave(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// Produces to both partitions, about 400 records a second, until `running` is cleared.
fn steady_producer(bootstrap: &str, running: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "1").create().unwrap();
    std::thread::spawn(move || {
        let mut id = 0i64;
        while running.load(Ordering::Acquire) {
            for partition in 0..2 {
                let key = json!({"id": id}).to_string();
                let value = json!({"before": null, "after": {"id": id}, "op": "c", "ts_ms": 1,
                    "source": {"connector": "postgresql", "db": "shop", "schema": "public", "table": "orders"}})
                .to_string();
                let record = BaseRecord::<str, str>::to(TOPIC).partition(partition).key(&key).payload(&value);
                let _ = producer.send(record);
                id += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = rdkafka::producer::Producer::flush(&producer, Duration::from_secs(5));
    })
}

fn delivered_keys(sink: &ScriptedSinkFactory) -> usize {
    let mut ids = sink.log().durable.clone();
    ids.sort();
    ids.dedup();
    ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_paused_then_revoked_then_assigned_back_flows_again() {
    let group = "cdc-paused-revoked";
    let cluster = cluster(2, group);
    let bootstrap = cluster.bootstrap_servers();
    produce_orders(&bootstrap, 0, 0..5).await;
    produce_orders(&bootstrap, 1, 100..105).await;
    let sink = ScriptedSinkFactory::reliable("sink");
    sink.set_stalled(true);
    let running = start(options(&bootstrap, group, &sink, 2));
    // Both partitions fill up and pause behind the stalled sink.
    let consumed = running.metrics.counter(names::RECORDS_CONSUMED, "");
    assert!(eventually(Duration::from_secs(30), || async { consumed.get() >= 4 }).await, "records consumed");

    // A second member takes one partition away, then leaves: it comes back.
    let member = Member::join(&bootstrap, group);
    assert!(
        eventually(Duration::from_secs(60), || async { member.assigned() == 1 }).await,
        "the member got a partition"
    );
    member.leave();
    tokio::time::sleep(Duration::from_secs(1)).await;

    sink.set_stalled(false);
    produce_orders(&bootstrap, 0, 5..8).await;
    produce_orders(&bootstrap, 1, 105..108).await;
    let all = eventually(Duration::from_secs(60), || async { delivered_keys(&sink) == 16 }).await;
    assert!(all, "{} of 16 events delivered: a partition assigned back stayed paused", delivered_keys(&sink));
    running.stop.send(()).unwrap();
    assert_eq!(running.task.await.unwrap().unwrap(), Outcome::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_revoke_drains_without_blocking_the_runtime_on_one_worker_thread() {
    let group = "cdc-one-worker";
    let cluster = cluster(2, group);
    let bootstrap = cluster.bootstrap_servers();
    // Records keep coming, so that some are in flight when the revoke comes.
    let producing = Arc::new(AtomicBool::new(true));
    let producer = steady_producer(&bootstrap, producing.clone());
    let sink = ScriptedSinkFactory::reliable("sink").with_write_delay(Duration::from_millis(50));
    let running = start(options(&bootstrap, group, &sink, 50));
    assert!(eventually(Duration::from_secs(30), || async { delivered_keys(&sink) > 0 }).await);

    // A task on the same single worker notes the longest gap between its 10 ms ticks: a
    // revoke that blocks the runtime shows as a gap of seconds.
    let longest_gap = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let gap = longest_gap.clone();
    let ticker = tokio::spawn(async move {
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut longest = gap.lock().unwrap();
            *longest = (*longest).max(last.elapsed());
            last = Instant::now();
        }
    });
    let member = Member::join(&bootstrap, group);
    let moved = eventually(Duration::from_secs(60), || async { member.assigned() == 1 }).await;
    assert!(moved, "the partition never moved");
    ticker.abort();
    let longest = *longest_gap.lock().unwrap();
    assert!(longest < Duration::from_secs(1), "the runtime was blocked for {longest:?} during the revoke");
    let before = delivered_keys(&sink);
    assert!(
        eventually(Duration::from_secs(30), || async { delivered_keys(&sink) > before }).await,
        "the partition kept flows on"
    );
    producing.store(false, Ordering::Release);
    producer.join().unwrap();
    member.leave();
    running.stop.send(()).unwrap();
    assert_eq!(running.task.await.unwrap().unwrap(), Outcome::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_counts_only_once_the_broker_accepted_it() {
    let group = "cdc-commit-accepted";
    let cluster = cluster(1, group);
    let bootstrap = cluster.bootstrap_servers();
    produce_orders(&bootstrap, 0, 0..3).await;
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 500],
    );
    let sink = ScriptedSinkFactory::reliable("sink");
    let running = start(options(&bootstrap, group, &sink, 100));
    assert!(eventually(Duration::from_secs(30), || async { sink.log().durable.len() == 3 }).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let commits = running.metrics.counter(names::COMMITS, "");
    assert_eq!(commits.get(), 0, "commits the broker refused were counted");

    cluster.clear_request_errors(RDKafkaApiKey::OffsetCommit);
    let committed = eventually(Duration::from_secs(30), || async {
        committed_offsets(&bootstrap, group, TOPIC)[&0] == 3
    })
    .await;
    assert!(committed, "the refused position was not sent again");
    assert!(commits.get() > 0);
    running.stop.send(()).unwrap();
    assert_eq!(running.task.await.unwrap().unwrap(), Outcome::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_even_with_a_stuck_sink_and_closes_the_sinks_that_finish() {
    let group = "cdc-bounded-shutdown";
    let cluster = cluster(2, group);
    let bootstrap = cluster.bootstrap_servers();
    produce_orders(&bootstrap, 0, 0..2).await;
    produce_orders(&bootstrap, 1, 100..102).await;

    // A healthy pipeline: every sink lane closes its sink at shutdown.
    let sink = ScriptedSinkFactory::reliable("sink");
    let running = start(options(&bootstrap, group, &sink, 100));
    assert!(eventually(Duration::from_secs(30), || async { sink.log().durable.len() == 4 }).await);
    running.stop.send(()).unwrap();
    assert_eq!(running.task.await.unwrap().unwrap(), Outcome::Stopped);
    assert_eq!(sink.log().closed, 2, "one sink per partition lane, each closed");

    // A stuck sink: the shutdown still ends within its timeout.
    produce_orders(&bootstrap, 0, 2..4).await;
    let stuck = ScriptedSinkFactory::reliable("sink");
    stuck.set_stalled(true);
    let mut options = options(&bootstrap, group, &stuck, 100);
    options.shutdown_timeout = Duration::from_secs(3);
    let running = start(options);
    let consumed = running.metrics.counter(names::RECORDS_CONSUMED, "");
    assert!(eventually(Duration::from_secs(30), || async { consumed.get() >= 2 }).await);
    let stopping = Instant::now();
    running.stop.send(()).unwrap();
    assert_eq!(running.task.await.unwrap().unwrap(), Outcome::Stopped);
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(5), "the shutdown took {took:?} for a timeout of 3 s");
    assert_eq!(committed_offsets(&bootstrap, group, TOPIC)[&0], 2, "nothing stuck was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_partitions_is_ready_and_says_so() {
    // One partition, two replicas: the second gets nothing, and must not hold a rollout back.
    let group = "cdc-spare-replica";
    let cluster = cluster(1, group);
    let bootstrap = cluster.bootstrap_servers();
    let sink = ScriptedSinkFactory::reliable("sink");
    let first = start(options(&bootstrap, group, &sink, 100));
    let second = start(options(&bootstrap, group, &sink, 100));
    let partitions = |running: &Running| running.health.readiness().1["consumer"]["partitions"].as_u64();
    let settled = eventually(Duration::from_secs(60), || async {
        let mut owned = [partitions(&first), partitions(&second)];
        owned.sort();
        first.health.readiness().0 && second.health.readiness().0 && owned == [Some(0), Some(1)]
    })
    .await;
    assert!(
        settled,
        "both replicas should be ready, one with the partition: {} / {}",
        first.health.readiness().1,
        second.health.readiness().1
    );
    for running in [first, second] {
        running.stop.send(()).unwrap();
        assert_eq!(running.task.await.unwrap().unwrap(), Outcome::Stopped);
    }
}
