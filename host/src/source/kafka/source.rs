//! [`KafkaSource`]: the Kafka consumer behind the [`Source`] contract. It turns messages into
//! [`SourceRecord`]s, serves deferred revokes (waits for the revoked partitions' lanes to drain,
//! commits, gives them up) beside the poll loop, reports lag, and leaves the group on close.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::lag::LagMonitor;
use super::{
    Assignment, ConsumerSettings, KafkaConsumer, REVOKE_DRAIN_TIMEOUT, SinkPositions, commit_durable,
    finish_revoke, set_paused, subscribe, wake_fetcher,
};
use crate::ops::metrics::{Metrics, names};
use crate::source::acks::{AckTracker, PartitionKey};
use crate::source::{Committer, Source, SourceEvent, SourceRecord};

/// How long the source waits after a consumer error before polling again: errors such as an
/// unreachable broker repeat at once.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// How often a revoke in progress checks whether its partitions have drained.
const REVOKE_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A subscribed Kafka consumer, as a [`Source`].
pub struct KafkaSource {
    consumer: Arc<KafkaConsumer>,
    tracker: Arc<AckTracker>,
    assignments: mpsc::UnboundedReceiver<Assignment>,
    /// Revokes whose lanes drained (or ran out of time), to be committed and given up.
    drained: mpsc::UnboundedReceiver<Vec<PartitionKey>>,
    drained_sender: mpsc::UnboundedSender<Vec<PartitionKey>>,
    /// Partitions being given up and not yet released: their records are not delivered (the
    /// next owner reads them again) and backpressure does not resume them.
    revoking: HashSet<PartitionKey>,
    /// Topic names shared by every record of a topic, so that a record costs no allocation for it.
    topics: HashSet<Arc<str>>,
    lag: LagMonitor,
    metrics: Arc<Metrics>,
}

impl KafkaSource {
    /// Creates the consumer and subscribes it to `topics`. Commits take their positions from
    /// `tracker`; lag is reported every `lag_interval` (zero: never); each assigned partition
    /// starts no later than the lowest of `sink_positions`.
    ///
    /// # Errors
    /// When librdkafka refuses the settings or the subscription.
    pub fn subscribe(
        settings: &ConsumerSettings,
        topics: &[String],
        tracker: Arc<AckTracker>,
        metrics: Arc<Metrics>,
        lag_interval: Duration,
        sink_positions: Option<SinkPositions>,
    ) -> rdkafka::error::KafkaResult<Self> {
        let commits = metrics.counter(names::COMMITS, "");
        let (consumer, assignments) = subscribe(settings, topics, tracker.clone(), commits, sink_positions)?;
        tracing::info!(topics = ?topics, group = settings.group_id.as_str(), "consumer.subscribed");
        let (drained_sender, drained) = mpsc::unbounded_channel();
        Ok(KafkaSource {
            consumer,
            tracker,
            assignments,
            drained,
            drained_sender,
            revoking: HashSet::new(),
            topics: HashSet::new(),
            lag: LagMonitor::new(lag_interval),
            metrics,
        })
    }

    /// Waits, beside the poll loop, until the lanes of `partitions` hold nothing (bounded by
    /// [`REVOKE_DRAIN_TIMEOUT`]), then hands them back to [`Source::next`] to release.
    fn drain_then_release(&mut self, partitions: Vec<PartitionKey>) {
        self.revoking.extend(partitions.iter().cloned());
        let acks: Vec<_> = partitions.iter().filter_map(|partition| self.tracker.get(partition)).collect();
        let drained = self.drained_sender.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + REVOKE_DRAIN_TIMEOUT;
            while acks.iter().any(|acks| acks.in_flight() > 0) {
                if Instant::now() >= deadline {
                    tracing::warn!(timeout = ?REVOKE_DRAIN_TIMEOUT, "consumer.revoke_drain_timeout");
                    break;
                }
                tokio::time::sleep(REVOKE_POLL_INTERVAL).await;
            }
            let _ = drained.send(partitions);
        });
    }

    /// Completes a revoke: commits what is durable in `partitions`, then gives them up.
    fn release(&mut self, partitions: &[PartitionKey]) {
        // A short blocking call; another worker takes over the runtime meanwhile.
        tokio::task::block_in_place(|| commit(&self.consumer, |partition| partitions.contains(partition)));
        finish_revoke(&self.consumer, partitions);
        for partition in partitions {
            self.revoking.remove(partition);
        }
    }
}

impl Source for KafkaSource {
    async fn next(&mut self) -> SourceEvent {
        loop {
            tokio::select! {
                biased;
                Some(assignment) = self.assignments.recv() => match assignment {
                    Assignment::Assigned(partitions) => return SourceEvent::Assigned(partitions),
                    Assignment::Revoking(partitions) => self.drain_then_release(partitions),
                    Assignment::Revoked(partitions) => return SourceEvent::Revoked(partitions),
                },
                Some(partitions) = self.drained.recv() => {
                    self.release(&partitions);
                    return SourceEvent::Revoked(partitions);
                }
                message = self.consumer.recv() => match message {
                    Ok(message) => {
                        let topic = intern(&mut self.topics, message.topic());
                        if !self.revoking.is_empty() && self.revoking.contains(&(topic.clone(), message.partition())) {
                            // Fetched before the pause took effect: the next owner reads it again.
                            continue;
                        }
                        return SourceEvent::Record(SourceRecord {
                            topic,
                            partition: message.partition(),
                            offset: message.offset(),
                            key: message.key().map(<[u8]>::to_vec),
                            value: message.payload().map(<[u8]>::to_vec),
                            wal: None,
                            prepared: None,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "consumer.error");
                        tokio::time::sleep(ERROR_BACKOFF).await;
                    }
                },
            }
        }
    }

    fn owns(&self, partition: &PartitionKey) -> bool {
        self.consumer.context().owns(partition)
    }

    fn set_paused(&self, partition: &PartitionKey, paused: bool) {
        if !paused && self.revoking.contains(partition) {
            return;
        }
        match set_paused(&self.consumer, partition, paused) {
            Ok(()) if paused => {
                tracing::debug!(topic = %partition.0, partition = partition.1, "consumer.paused")
            }
            Ok(()) => {
                wake_fetcher(&self.consumer, partition);
                tracing::debug!(topic = %partition.0, partition = partition.1, "consumer.resumed");
            }
            Err(error) => tracing::warn!(error = %error, paused, "consumer.pause_failed"),
        }
    }

    fn assigned_partitions(&self) -> usize {
        self.consumer.assignment().map(|list| list.count()).unwrap_or(0)
    }

    fn committer(&self) -> Arc<dyn Committer> {
        Arc::new(KafkaCommitter(self.consumer.clone()))
    }

    fn tick(&mut self) {
        let tracker = &self.tracker;
        self.lag.tick(&self.consumer, &self.metrics, || tracker.committed_positions());
    }

    async fn close(self, deadline: Instant) {
        self.lag.cancel();
        // The final commit happens while the consumer is still a member of the group.
        let consumer = self.consumer.clone();
        let committed = tokio::time::timeout_at(
            deadline,
            tokio::task::spawn_blocking(move || commit(&consumer, |_| true)),
        )
        .await;
        if committed.is_err() {
            tracing::warn!("pipeline.final_commit_timeout");
        }
        self.consumer.context().set_closing();
        let revoking: Vec<PartitionKey> = self.revoking.into_iter().collect();
        if !revoking.is_empty() {
            finish_revoke(&self.consumer, &revoking);
        }
        self.consumer.unsubscribe();
        // Closing leaves the group and may wait on the broker: never past the deadline.
        let consumer = self.consumer;
        let closing = tokio::task::spawn_blocking(move || drop(consumer));
        let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        match tokio::time::timeout(remaining, closing).await {
            Ok(_) => tracing::info!("pipeline.stopped"),
            Err(_) => tracing::warn!("pipeline.close_timeout"),
        }
    }
}

/// The shared name of `topic`, so that a record costs no allocation for it.
fn intern(topics: &mut HashSet<Arc<str>>, topic: &str) -> Arc<str> {
    if let Some(name) = topics.get(topic) {
        return name.clone();
    }
    let name: Arc<str> = Arc::from(topic);
    topics.insert(name.clone());
    name
}

/// Commits from a clone of the consumer handle, beside the poll loop.
struct KafkaCommitter(Arc<KafkaConsumer>);

impl Committer for KafkaCommitter {
    fn commit(&self) {
        commit(&self.0, |_| true);
    }
}

/// Commits what is durable in the partitions `include` selects; blocks until the broker
/// answers. A refused commit is logged and sent again by the next one.
fn commit(consumer: &KafkaConsumer, include: impl Fn(&PartitionKey) -> bool) {
    if let Err(error) = commit_durable(consumer, include) {
        tracing::warn!(error = %error, "consumer.commit_failed");
    }
}
