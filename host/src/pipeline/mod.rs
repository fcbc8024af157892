//! The pipeline (DESIGN §3): the poll loop feeds one lane per partition; each partition lane
//! decodes and transforms, then feeds one lane per sink; sink lanes ack what is durable, and
//! the loop commits the minimum over sinks. A full partition is paused, never the poll loop.

pub mod acks;
mod context;
pub mod dlq;
mod lane;
pub mod retry;
mod sink_lane;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use self::acks::{AckTracker, PartitionAcks, PartitionKey};
use self::context::LaneContext;
use self::dlq::Dlq;
use self::lane::PartitionLane;
use self::retry::RetryPolicy;
use self::sink_lane::SinkLane;
use crate::decode::Decoder;
use crate::ops::health::Health;
use crate::ops::lag::LagMonitor;
use crate::ops::metrics::{Metrics, names};
use crate::plugin::TransformPlugin;
use crate::sinks::SinkFactory;
use crate::source::SourceRecord;
use crate::source::kafka::{self, Assignment, ConsumerSettings, KafkaConsumer};

/// How often the loop reconsiders paused partitions, reports liveness and checks whether a
/// commit is due.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// Everything a pipeline needs to run, already validated.
pub struct PipelineOptions {
    /// Consumer settings.
    pub consumer: ConsumerSettings,
    /// Source topics to subscribe to (never DLQ topics).
    pub topics: Vec<String>,
    /// How records are decoded.
    pub decoder: Decoder,
    /// Enabled sinks with their retry policies, in config order.
    pub sinks: Vec<SinkSpec>,
    /// Transforms in pipeline order.
    pub transforms: Vec<TransformPlugin>,
    /// Backoff for transforms (the platform's retry block).
    pub transform_retry: RetryPolicy,
    /// Records per partition that may be dispatched and not yet durable before it pauses.
    pub max_buffered_messages: usize,
    /// Most records a partition lane takes into one batch.
    pub batch_size: usize,
    /// How many partitions may process a batch at the same time (zero: no limit).
    pub partition_concurrency: usize,
    /// How often a record a sink refuses is retried before it goes to the DLQ.
    pub record_retries: u32,
    /// How often durable positions are committed (zero: at every housekeeping tick).
    pub commit_interval: Duration,
    /// How often consumer lag is measured and reported (zero: never).
    pub lag_interval: Duration,
    /// Longest wait for lanes to drain at shutdown.
    pub drain_timeout: Duration,
}

/// An enabled sink: builds one sink per lane, and the backoff its lanes use.
#[derive(Clone)]
pub struct SinkSpec {
    /// Builds the sink of each lane.
    pub factory: Arc<dyn SinkFactory>,
    /// Backoff for transient failures (the sink's `retry` block).
    pub retry: RetryPolicy,
}

/// Why the pipeline stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop; drained and committed.
    Stopped,
    /// A fatal error halted it; committed up to the last durable position before it.
    Halted(String),
}

/// The pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The consumer could not be created or subscribed.
    #[error("cannot subscribe to {topics:?}")]
    Subscribe {
        /// Topics asked for.
        topics: Vec<String>,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// The lanes of one partition.
struct PartitionLanes {
    sender: mpsc::UnboundedSender<SourceRecord>,
    acks: Arc<PartitionAcks>,
    tasks: Vec<AbortHandle>,
}

struct Lanes {
    partitions: HashMap<PartitionKey, PartitionLanes>,
    tasks: JoinSet<()>,
    paused: HashSet<PartitionKey>,
    /// Topic names shared by every record of a topic, so that a record costs no allocation for it.
    topics: HashSet<Arc<str>>,
}

impl Lanes {
    fn topic_name(&mut self, topic: &str) -> Arc<str> {
        if let Some(name) = self.topics.get(topic) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(topic);
        self.topics.insert(name.clone());
        name
    }
}

/// Runs the pipeline until `shutdown` resolves or a fatal error halts it, then drains the
/// lanes (bounded), makes the final commit and only then closes the consumer.
pub async fn run(
    options: PipelineOptions,
    dlq: Option<Dlq>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, Error> {
    let tracker = Arc::new(AckTracker::new(options.sinks.len()));
    let (consumer, mut assignments) =
        kafka::subscribe(&options.consumer, &options.topics, tracker.clone())
            .map_err(|source| Error::Subscribe { topics: options.topics.clone(), source })?;
    tracing::info!(topics = ?options.topics, group = options.consumer.group_id.as_str(), "consumer.subscribed");
    let concurrency =
        (options.partition_concurrency > 0).then(|| Arc::new(Semaphore::new(options.partition_concurrency)));
    let (context, mut halt) = LaneContext::new(
        tracker.clone(),
        options.decoder.clone(),
        dlq,
        health.clone(),
        metrics.clone(),
        concurrency,
    );
    let consumed = metrics.counter(names::RECORDS_CONSUMED, "");
    let mut lanes = Lanes {
        partitions: HashMap::new(),
        tasks: JoinSet::new(),
        paused: HashSet::new(),
        topics: HashSet::new(),
    };
    let mut ticker = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    let mut last_commit = tokio::time::Instant::now();
    let mut lag = LagMonitor::new(options.lag_interval);
    tokio::pin!(shutdown);

    let outcome = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Outcome::Stopped,
            Ok(()) = halt.changed() => {
                let reason = halt.borrow().clone().unwrap_or_default();
                break Outcome::Halted(reason);
            }
            Some(assignment) = assignments.recv() => on_assignment(&consumer, &mut lanes, &health, assignment),
            _ = ticker.tick() => {
                health.tick();
                if last_commit.elapsed() >= options.commit_interval {
                    commit(&consumer, &tracker, &metrics, CommitMode::Async);
                    last_commit = tokio::time::Instant::now();
                }
                resume_drained(&consumer, &mut lanes, options.max_buffered_messages);
                lag.tick(&consumer, &metrics, || {
                    lanes.partitions.iter().map(|(partition, lanes)| (partition.clone(), lanes.acks.committed())).collect()
                });
                while lanes.tasks.try_join_next().is_some() {}
            }
            message = consumer.recv() => match message {
                Ok(message) => {
                    let topic = lanes.topic_name(message.topic());
                    let record = SourceRecord {
                        topic,
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                    };
                    drop(message);
                    consumed.add(1);
                    dispatch(&options, &consumer, &context, &mut lanes, record);
                }
                Err(error) => {
                    tracing::warn!(error = %error, "consumer.error");
                    // Errors such as an unreachable broker repeat at once; do not spin on them.
                    tokio::time::sleep(HOUSEKEEPING_INTERVAL).await;
                }
            },
        }
    };

    health.set_stopping();
    tracing::info!(outcome = ?outcome, "pipeline.draining");
    lanes.partitions.clear();
    if tokio::time::timeout(options.drain_timeout, async { while lanes.tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?options.drain_timeout, "pipeline.drain_timeout");
        lanes.tasks.abort_all();
    }
    // A lag round holds the consumer: let it end so that the consumer closes below, not later.
    lag.finish(options.drain_timeout).await;
    // The final commit happens while the consumer is still a member of the group.
    commit(&consumer, &tracker, &metrics, CommitMode::Sync);
    consumer.context().set_closing();
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!("pipeline.stopped");
    Ok(outcome)
}

fn dispatch(
    options: &PipelineOptions,
    consumer: &KafkaConsumer,
    context: &Arc<LaneContext>,
    lanes: &mut Lanes,
    record: SourceRecord,
) {
    let partition: PartitionKey = (record.topic.clone(), record.partition);
    // Lanes exist only for partitions this consumer owns (a revoke removes them at the loop's
    // next turn; a record dispatched just before is delivered again by the next owner, at least
    // once), so ownership is checked only when a partition's first record arrives.
    if !lanes.partitions.contains_key(&partition) {
        if !consumer.context().owns(&partition) {
            // A record fetched before a revoke completed: its new owner will read it again.
            return;
        }
        let started = start_lanes(options, context, &mut lanes.tasks, &partition);
        lanes.partitions.insert(partition.clone(), started);
    }
    let partition_lanes = lanes.partitions.get_mut(&partition).expect("lanes were just ensured");
    partition_lanes.acks.dispatched(record.offset);
    // A closed lane has halted the pipeline; the record stays uncommitted.
    let _ = partition_lanes.sender.send(record);
    if partition_lanes.acks.in_flight() >= options.max_buffered_messages as i64
        && lanes.paused.insert(partition.clone())
    {
        match kafka::set_paused(consumer, &partition, true) {
            Ok(()) => tracing::debug!(topic = %partition.0, partition = partition.1, "consumer.paused"),
            Err(error) => tracing::warn!(error = %error, "consumer.pause_failed"),
        }
    }
}

/// Spawns the partition lane and its sink lanes.
fn start_lanes(
    options: &PipelineOptions,
    context: &Arc<LaneContext>,
    tasks: &mut JoinSet<()>,
    partition: &PartitionKey,
) -> PartitionLanes {
    let (sender, record_receiver) = mpsc::unbounded_channel();
    let acks = context.tracker.partition(partition);
    let mut handles = Vec::with_capacity(options.sinks.len() + 1);
    let mut transforms = Vec::with_capacity(options.transforms.len());
    for plugin in &options.transforms {
        // Instantiating may do blocking WASI I/O (a granted directory).
        match tokio::task::block_in_place(|| plugin.instantiate()) {
            Ok(instance) => transforms.push(instance),
            Err(error) => {
                context.halt(error.to_string());
                return PartitionLanes { sender, acks, tasks: handles };
            }
        }
    }
    let mut sink_senders = Vec::with_capacity(options.sinks.len());
    for (participant, sink) in options.sinks.iter().enumerate() {
        let (sink_sender, receiver) = mpsc::unbounded_channel();
        sink_senders.push(sink_sender);
        let lane = SinkLane::new(participant, sink, acks.clone(), options.record_retries, context.clone());
        handles.push(tasks.spawn(lane.run(receiver)));
    }
    let lane = PartitionLane {
        transforms,
        sinks: sink_senders,
        acks: acks.clone(),
        retry: options.transform_retry,
        batch_size: options.batch_size.max(1),
        context: context.clone(),
    };
    handles.push(tasks.spawn(lane.run(record_receiver)));
    PartitionLanes { sender, acks, tasks: handles }
}

fn on_assignment(consumer: &KafkaConsumer, lanes: &mut Lanes, health: &Health, assignment: Assignment) {
    if let Assignment::Revoked(partitions) = assignment {
        for partition in &partitions {
            // The revoke already waited for in-flight writes and committed: what the lanes
            // still hold belongs to the next owner now.
            if let Some(revoked) = lanes.partitions.remove(partition) {
                revoked.tasks.iter().for_each(AbortHandle::abort);
            }
            lanes.paused.remove(partition);
        }
    }
    let assigned = consumer.assignment().map(|list| list.count() > 0).unwrap_or(false);
    health.set_assigned(assigned);
}

fn commit(consumer: &KafkaConsumer, tracker: &AckTracker, metrics: &Metrics, mode: CommitMode) {
    let positions = tracker.committable(|partition| consumer.context().owns(partition));
    if positions.is_empty() {
        return;
    }
    match kafka::commit(consumer, &positions, mode) {
        Ok(()) => {
            tracker.mark_committed(&positions);
            metrics.counter(names::COMMITS, "").add(1);
            tracing::debug!(positions = ?positions, "consumer.committed");
        }
        Err(error) => tracing::warn!(error = %error, "consumer.commit_failed"),
    }
}

fn resume_drained(consumer: &KafkaConsumer, lanes: &mut Lanes, max_buffered: usize) {
    let partitions = &lanes.partitions;
    lanes.paused.retain(|partition| {
        let in_flight = partitions.get(partition).map_or(0, |lanes| lanes.acks.in_flight());
        if in_flight > (max_buffered / 2) as i64 {
            return true;
        }
        if let Err(error) = kafka::set_paused(consumer, partition, false) {
            tracing::warn!(error = %error, "consumer.resume_failed");
            return true;
        }
        tracing::debug!(topic = %partition.0, partition = partition.1, "consumer.resumed");
        false
    });
}
