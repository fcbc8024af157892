//! The pipeline (docs/architecture.md): the poll loop takes records from a [`Source`] and feeds
//! one lane per partition; each partition lane decodes and transforms, then feeds one lane per
//! sink; sink lanes ack what is durable, and the source commits the minimum over sinks. A full
//! partition is paused, never the poll loop, and nothing the loop does blocks it. The loop
//! depends on the source contract alone; [`run`] drives it with the Kafka source,
//! [`run_embedded`] with the embedded PostgreSQL source.

mod context;
pub mod dlq;
mod lane;
mod pending;
pub mod retry;
mod sink_lane;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

pub use self::context::{Halted, LaneContext, WorkPermit};
use self::dlq::DeadLetterQueue;
pub use self::lane::{PartitionLane, SinkBatch};
use self::retry::RetrySettings;
pub use self::sink_lane::SinkLane;
use crate::decode::Decoder;
use crate::ops::crash;
use crate::ops::health::Health;
use crate::ops::metrics::{Metrics, names};
use crate::plugin::{Transform, TransformPlugin};
use crate::sinks::SinkFactory;
use crate::source::acks::{AckTracker, PartitionAcks, PartitionKey};
use crate::source::kafka::{ConsumerSettings, KafkaSource, SinkPositions};
use crate::source::postgres::{EmbeddedSettings, EmbeddedSource};
use crate::source::{Source, SourceEvent, SourceRecord};

/// How often the loop reconsiders paused partitions, reports liveness and checks whether a
/// commit is due.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// Everything a pipeline needs to run, already validated.
pub struct PipelineSettings {
    /// Consumer settings.
    pub consumer: ConsumerSettings,
    /// Source topics to subscribe to (never DLQ topics).
    pub topics: Vec<String>,
    /// How records are decoded.
    pub decoder: Decoder,
    /// Enabled sinks with their retry policies, in config order.
    pub sinks: Vec<SinkSettings>,
    /// Transforms in pipeline order.
    pub transforms: Vec<TransformPlugin>,
    /// Backoff for transforms (the platform's retry block).
    pub transform_retry: RetrySettings,
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
    /// Longest a shutdown may take, from the stop to the consumer closed: lanes drain within
    /// it, then the final commit and the close get what is left.
    pub shutdown_timeout: Duration,
}

/// An enabled sink: builds one sink per lane, and the backoff its lanes use.
#[derive(Clone)]
pub struct SinkSettings {
    /// Builds the sink of each lane.
    pub factory: Arc<dyn SinkFactory>,
    /// Backoff for transient failures (the sink's `retry` block).
    pub retry: RetrySettings,
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
}

impl Lanes {
    /// Ends a partition's lanes: idle lanes finish (closing their sinks); lanes that still
    /// hold records are aborted, since what they hold belongs to the next owner now.
    fn end(&mut self, partition: &PartitionKey) {
        if let Some(lanes) = self.partitions.remove(partition)
            && lanes.acks.in_flight() > 0
        {
            lanes.tasks.iter().for_each(AbortHandle::abort);
        }
        self.paused.remove(partition);
    }
}

/// Runs the pipeline over the Kafka source of `settings` until `shutdown` resolves or a fatal
/// error halts it (see [`drive`]).
pub async fn run(
    settings: PipelineSettings,
    dlq: Option<Arc<dyn DeadLetterQueue>>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, Error> {
    let tracker = Arc::new(AckTracker::new(settings.sinks.len()));
    let source = KafkaSource::subscribe(
        &settings.consumer,
        &settings.topics,
        tracker.clone(),
        metrics.clone(),
        settings.lag_interval,
        sink_positions(&settings.sinks),
    )
    .map_err(|source| Error::Subscribe { topics: settings.topics.clone(), source })?;
    Ok(drive(source, tracker, settings, dlq, health, metrics, shutdown).await)
}

/// Runs the pipeline over the embedded PostgreSQL source (see [`drive`]); fails when the
/// source cannot set up its publication and slot.
pub async fn run_embedded(
    settings: PipelineSettings,
    embedded: EmbeddedSettings,
    dlq: Option<Arc<dyn DeadLetterQueue>>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Outcome> {
    let tracker = Arc::new(AckTracker::new(settings.sinks.len()));
    let source = EmbeddedSource::start(embedded, tracker.clone(), health.clone(), metrics.clone()).await?;
    health.set_connector(Ok(()));
    Ok(drive(source, tracker, settings, dlq, health, metrics, shutdown).await)
}

/// Where the sinks that store their position stand, for the source to start each assigned
/// partition at the lowest of them; `None` when no sink stores its position.
fn sink_positions(sinks: &[SinkSettings]) -> Option<SinkPositions> {
    let storing: Vec<Arc<dyn SinkFactory>> = sinks
        .iter()
        .filter(|sink| sink.factory.stores_positions())
        .map(|sink| sink.factory.clone())
        .collect();
    if storing.is_empty() {
        return None;
    }
    Some(Arc::new(move |partitions: &[PartitionKey]| {
        // Asked from the rebalance callback, on a thread of the runtime: wait for the answers here.
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => runtime,
            _ => {
                tracing::warn!("pipeline.stored_positions_need_a_multi_thread_runtime");
                return HashMap::new();
            }
        };
        let answers = tokio::task::block_in_place(|| {
            runtime.block_on(futures::future::join_all(
                storing.iter().map(|sink| sink.stored_positions(partitions)),
            ))
        });
        let mut lowest: HashMap<PartitionKey, i64> = HashMap::new();
        for (sink, answer) in storing.iter().zip(answers) {
            match answer {
                Ok(stored) => {
                    for (partition, next) in stored {
                        let entry = lowest.entry(partition).or_insert(next);
                        *entry = (*entry).min(next);
                    }
                }
                // Without its answer the partition starts at the committed offset, as for any sink.
                Err(error) => {
                    tracing::warn!(sink_id = sink.sink_id(), error = %error, "pipeline.stored_positions_unknown")
                }
            }
        }
        lowest
    }))
}

/// Runs the pipeline over `source` until `shutdown` resolves or a fatal error halts it, then
/// drains the lanes, and closes the source (its final commit) only then, all within
/// `shutdown_timeout`. `tracker` is the one the source commits from.
pub async fn drive(
    mut source: impl Source,
    tracker: Arc<AckTracker>,
    settings: PipelineSettings,
    dlq: Option<Arc<dyn DeadLetterQueue>>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let concurrency = (settings.partition_concurrency > 0)
        .then(|| Arc::new(Semaphore::new(settings.partition_concurrency)));
    let (context, mut halt) = LaneContext::new(
        tracker,
        settings.decoder.clone(),
        dlq,
        health.clone(),
        metrics.clone(),
        concurrency,
    );
    let consumed = metrics.counter(names::RECORDS_CONSUMED, "");
    let mut lanes = Lanes { partitions: HashMap::new(), tasks: JoinSet::new(), paused: HashSet::new() };
    let committer = source.committer();
    let mut ticker = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    let mut last_commit = Instant::now();
    let mut committing: Option<tokio::task::JoinHandle<()>> = None;
    tokio::pin!(shutdown);

    let outcome = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Outcome::Stopped,
            Ok(()) = halt.changed() => {
                let reason = halt.borrow().clone().unwrap_or_default();
                break Outcome::Halted(reason);
            }
            _ = ticker.tick() => {
                health.tick();
                let idle = committing.as_ref().is_none_or(tokio::task::JoinHandle::is_finished);
                if idle && last_commit.elapsed() >= settings.commit_interval {
                    // Commits wait for the source to confirm: one at a time, beside the loop.
                    let committer = committer.clone();
                    committing = Some(tokio::task::spawn_blocking(move || committer.commit()));
                    last_commit = Instant::now();
                }
                resume_drained(&source, &mut lanes, settings.max_buffered_messages);
                source.tick();
                reap(&mut lanes.tasks, &context);
            }
            event = source.next() => match event {
                SourceEvent::Record(record) => {
                    consumed.add(1);
                    dispatch(&settings, &source, &context, &mut lanes, record);
                }
                SourceEvent::Assigned(_) => health.set_partitions(source.assigned_partitions()),
                SourceEvent::Failed(reason) => {
                    context.halt(reason.clone());
                    break Outcome::Halted(reason);
                }
                SourceEvent::Revoked(partitions) => {
                    for partition in &partitions {
                        lanes.end(partition);
                    }
                    health.set_partitions(source.assigned_partitions());
                }
            },
        }
    };
    stop(source, lanes, &health, &outcome, settings.shutdown_timeout).await;
    outcome
}

/// The shutdown: drain the lanes, then close the source (final commit, leave), within
/// `timeout` as a whole.
async fn stop(source: impl Source, mut lanes: Lanes, health: &Health, outcome: &Outcome, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    // The final commit and the close get a share of the budget the drain cannot take.
    let reserve = (timeout / 4).min(Duration::from_secs(5));
    health.set_stopping();
    tracing::info!(outcome = ?outcome, timeout = ?timeout, "pipeline.draining");
    // Dropping the senders lets each lane finish what it holds, close its sinks and end.
    lanes.partitions.clear();
    let drained = tokio::time::timeout_at(deadline - reserve, async {
        while lanes.tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(timeout = ?timeout, "pipeline.drain_timeout");
        lanes.tasks.abort_all();
    }
    source.close(deadline).await;
}

fn dispatch(
    settings: &PipelineSettings,
    source: &impl Source,
    context: &Arc<LaneContext>,
    lanes: &mut Lanes,
    record: SourceRecord,
) {
    let partition: PartitionKey = (record.topic.clone(), record.partition);
    // Lanes exist only for partitions this consumer owns (a revoke removes them; a record
    // dispatched just before is delivered again by the next owner, at least once), so
    // ownership is checked only when a partition's first record arrives.
    if !lanes.partitions.contains_key(&partition) {
        if !source.owns(&partition) {
            // A record fetched before a revoke completed: its new owner will read it again.
            return;
        }
        let started = start_lanes(settings, context, &mut lanes.tasks, &partition);
        lanes.partitions.insert(partition.clone(), started);
    }
    let partition_lanes = lanes.partitions.get_mut(&partition).expect("lanes were just ensured");
    partition_lanes.acks.dispatched(record.offset);
    if partition_lanes.sender.send(record).is_err() {
        // The lane is gone: it halted the pipeline, or its task ended without saying why.
        if !context.halted() {
            context.halt(format!("the lane of {}[{}] ended unexpectedly", partition.0, partition.1));
        }
        return;
    }
    if partition_lanes.acks.in_flight() >= settings.max_buffered_messages as i64
        && lanes.paused.insert(partition.clone())
    {
        source.set_paused(&partition, true);
    }
}

/// Spawns the partition lane and its sink lanes, each contained: a panic halts the pipeline
/// with the lane named.
fn start_lanes(
    settings: &PipelineSettings,
    context: &Arc<LaneContext>,
    tasks: &mut JoinSet<()>,
    partition: &PartitionKey,
) -> PartitionLanes {
    let (sender, record_receiver) = mpsc::unbounded_channel();
    let acks = context.tracker.partition(partition);
    let mut handles = Vec::with_capacity(settings.sinks.len() + 1);
    let mut transforms: Vec<Box<dyn Transform>> = Vec::with_capacity(settings.transforms.len());
    for plugin in &settings.transforms {
        // Instantiating may do blocking WASI I/O (a granted directory).
        match tokio::task::block_in_place(|| plugin.instantiate()) {
            Ok(instance) => transforms.push(Box::new(instance)),
            Err(error) => {
                context.halt(error.to_string());
                return PartitionLanes { sender, acks, tasks: handles };
            }
        }
    }
    let where_ = format!("{}[{}]", partition.0, partition.1);
    let mut sink_senders = Vec::with_capacity(settings.sinks.len());
    for (participant, sink) in settings.sinks.iter().enumerate() {
        let (sink_sender, receiver) = mpsc::unbounded_channel();
        sink_senders.push(sink_sender);
        let lane = SinkLane::new(participant, sink, acks.clone(), settings.record_retries, context.clone());
        let name = format!("the `{}` sink lane of {where_}", sink.factory.sink_id());
        handles.push(spawn_contained(tasks, context, name, lane.run(receiver, settings.batch_size.max(1))));
    }
    let lane = PartitionLane {
        transforms,
        sinks: sink_senders,
        acks: acks.clone(),
        retry: settings.transform_retry,
        batch_size: settings.batch_size.max(1),
        context: context.clone(),
    };
    let name = format!("the partition lane of {where_}");
    handles.push(spawn_contained(tasks, context, name, lane.run(record_receiver)));
    PartitionLanes { sender, acks, tasks: handles }
}

fn spawn_contained(
    tasks: &mut JoinSet<()>,
    context: &Arc<LaneContext>,
    name: String,
    lane: impl Future<Output = ()> + Send + 'static,
) -> AbortHandle {
    let context = context.clone();
    tasks.spawn(async move {
        if let Err(panic) = crash::contain(lane).await {
            context.halt(format!("{name} panicked: {panic}"));
        }
    })
}

/// Collects ended lane tasks; one that failed outside its containment halts the pipeline.
fn reap(tasks: &mut JoinSet<()>, context: &LaneContext) {
    while let Some(result) = tasks.try_join_next() {
        if let Err(error) = result
            && error.is_panic()
        {
            context.halt(format!("a lane task panicked: {error}"));
        }
    }
}

fn resume_drained(source: &impl Source, lanes: &mut Lanes, max_buffered: usize) {
    let partitions = &lanes.partitions;
    lanes.paused.retain(|partition| {
        let in_flight = partitions.get(partition).map_or(0, |lanes| lanes.acks.in_flight());
        if in_flight > (max_buffered / 2) as i64 {
            return true;
        }
        source.set_paused(partition, false);
        false
    });
}
