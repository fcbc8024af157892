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
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::acks::{AckTracker, PartitionKey};
use self::context::LaneContext;
use self::dlq::Dlq;
use self::lane::PartitionLane;
use self::retry::RetryPolicy;
use self::sink_lane::SinkLane;
use crate::ops::health::Health;
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
    /// Enabled sinks with their retry policies, in config order.
    pub sinks: Vec<(Arc<dyn SinkFactory>, RetryPolicy)>,
    /// Transforms in pipeline order.
    pub transforms: Vec<TransformPlugin>,
    /// Backoff for transforms (the platform's retry block).
    pub transform_retry: RetryPolicy,
    /// Records per partition that may be dispatched and not yet durable before it pauses.
    pub max_buffered_messages: usize,
    /// Most records a partition lane takes into one batch.
    pub batch_size: usize,
    /// How often durable positions are committed (zero: at every housekeeping tick).
    pub commit_interval: Duration,
    /// Longest wait for lanes to drain at shutdown.
    pub drain_timeout: Duration,
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

struct Lanes {
    senders: HashMap<PartitionKey, mpsc::UnboundedSender<SourceRecord>>,
    tasks: JoinSet<()>,
    paused: HashSet<PartitionKey>,
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
    let (context, mut halt) = LaneContext::new(tracker.clone(), dlq, health.clone(), metrics.clone());
    let mut lanes = Lanes { senders: HashMap::new(), tasks: JoinSet::new(), paused: HashSet::new() };
    let mut ticker = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    let mut last_commit = tokio::time::Instant::now();
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
                resume_drained(&consumer, &tracker, &mut lanes, options.max_buffered_messages);
            }
            message = consumer.recv() => match message {
                Ok(message) => {
                    let record = SourceRecord {
                        topic: Arc::from(message.topic()),
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                    };
                    drop(message);
                    dispatch(&options, &consumer, &context, &mut lanes, record);
                }
                Err(error) => tracing::warn!(error = %error, "consumer.error"),
            },
        }
    };

    health.set_stopping();
    tracing::info!(outcome = ?outcome, "pipeline.draining");
    lanes.senders.clear();
    if tokio::time::timeout(options.drain_timeout, async { while lanes.tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?options.drain_timeout, "pipeline.drain_timeout");
        lanes.tasks.abort_all();
    }
    // The final commit happens while the consumer is still a member of the group.
    commit(&consumer, &tracker, &metrics, CommitMode::Sync);
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
    if !consumer.context().owns(&partition) {
        // A record fetched before a revoke completed: its new owner will read it again.
        return;
    }
    context.metrics.add(names::RECORDS_CONSUMED, "", 1);
    context.tracker.dispatched(&partition, record.offset);
    let sender = lanes
        .senders
        .entry(partition.clone())
        .or_insert_with(|| start_lanes(options, context, &mut lanes.tasks, &partition));
    // A closed lane has halted the pipeline; the record stays uncommitted.
    let _ = sender.send(record);
    if context.tracker.in_flight(&partition) >= options.max_buffered_messages as i64
        && lanes.paused.insert(partition.clone())
    {
        match kafka::set_paused(consumer, &partition, true) {
            Ok(()) => tracing::debug!(topic = %partition.0, partition = partition.1, "consumer.paused"),
            Err(error) => tracing::warn!(error = %error, "consumer.pause_failed"),
        }
    }
}

/// Spawns the partition lane and its sink lanes; returns the partition lane's sender.
fn start_lanes(
    options: &PipelineOptions,
    context: &Arc<LaneContext>,
    tasks: &mut JoinSet<()>,
    partition: &PartitionKey,
) -> mpsc::UnboundedSender<SourceRecord> {
    let (record_sender, record_receiver) = mpsc::unbounded_channel();
    let mut transforms = Vec::with_capacity(options.transforms.len());
    for plugin in &options.transforms {
        match plugin.instantiate() {
            Ok(instance) => transforms.push(instance),
            Err(error) => {
                context.halt(error.to_string());
                return record_sender;
            }
        }
    }
    let mut sink_senders = Vec::with_capacity(options.sinks.len());
    for (participant, (factory, retry)) in options.sinks.iter().enumerate() {
        let (sender, receiver) = mpsc::unbounded_channel();
        sink_senders.push(sender);
        let lane = SinkLane {
            participant,
            sink_id: factory.sink_id().to_owned(),
            partition: partition.clone(),
            sink: factory.build(),
            retry: *retry,
            context: context.clone(),
        };
        tasks.spawn(lane.run(receiver));
    }
    let lane = PartitionLane {
        partition: partition.clone(),
        transforms,
        sinks: sink_senders,
        retry: options.transform_retry,
        batch_size: options.batch_size.max(1),
        context: context.clone(),
    };
    tasks.spawn(lane.run(record_receiver));
    record_sender
}

fn on_assignment(consumer: &KafkaConsumer, lanes: &mut Lanes, health: &Health, assignment: Assignment) {
    if let Assignment::Revoked(partitions) = assignment {
        for partition in &partitions {
            // Dropping the sender lets the lane finish what it holds and stop.
            lanes.senders.remove(partition);
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
            metrics.add(names::COMMITS, "", 1);
            tracing::debug!(positions = ?positions, "consumer.committed");
        }
        Err(error) => tracing::warn!(error = %error, "consumer.commit_failed"),
    }
}

fn resume_drained(consumer: &KafkaConsumer, tracker: &AckTracker, lanes: &mut Lanes, max_buffered: usize) {
    lanes.paused.retain(|partition| {
        if tracker.in_flight(partition) > (max_buffered / 2) as i64 {
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
