//! The Kafka consumer: manual commits only, offsets stored by the pipeline, rebalances reported
//! to the pipeline through a channel and revoked partitions committed before release.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::pipeline::acks::{AckTracker, PartitionKey};

/// The consumer type the pipeline drives.
pub type KafkaConsumer = StreamConsumer<SourceContext>;

/// A change of assignment, reported to the poll loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// Partitions were assigned to this consumer.
    Assigned(Vec<PartitionKey>),
    /// Partitions are being taken away; their lanes must stop.
    Revoked(Vec<PartitionKey>),
}

/// How long a revoke waits for the lanes of the revoked partitions to make what they hold
/// durable before it commits and lets the partitions go; what is not durable by then is
/// delivered again by the next owner (at least once, never lost).
pub const REVOKE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Consumer callbacks: on revoke, lets in-flight writes finish (bounded) and commits before the
/// partitions are released; reports assignment changes to the poll loop.
pub struct SourceContext {
    tracker: Arc<AckTracker>,
    assignments: mpsc::UnboundedSender<Assignment>,
    owned: Mutex<HashSet<PartitionKey>>,
    closing: AtomicBool,
}

impl SourceContext {
    /// Whether this consumer currently owns a partition.
    pub fn owns(&self, partition: &PartitionKey) -> bool {
        self.owned.lock().expect("ownership lock poisoned").contains(partition)
    }

    /// The pipeline has drained and made its final commit: revokes from now on (the consumer
    /// leaving the group) need not wait for lanes.
    pub fn set_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Waits until the revoked partitions hold nothing in flight, or the drain timeout passes.
    fn drain(&self, partitions: &[PartitionKey]) {
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        let acks: Vec<_> = partitions.iter().filter_map(|partition| self.tracker.get(partition)).collect();
        let started = Instant::now();
        while acks.iter().any(|acks| acks.in_flight() > 0) {
            if started.elapsed() >= REVOKE_DRAIN_TIMEOUT {
                tracing::warn!(timeout = ?REVOKE_DRAIN_TIMEOUT, "consumer.revoke_drain_timeout");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(facility = fac, "kafka.client: {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "kafka.client: {log_message}"),
            _ => tracing::debug!(facility = fac, "kafka.client: {log_message}"),
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let revoked = partition_keys(list);
            tracing::info!(partitions = %describe(&revoked), "consumer.revoking");
            // Let in-flight writes finish, then commit before the partitions go to another consumer.
            self.drain(&revoked);
            let positions = self.tracker.committable(|partition| revoked.contains(partition));
            if !positions.is_empty() {
                match consumer.commit(&offsets_list(&positions), CommitMode::Sync) {
                    Ok(()) => tracing::info!(partitions = positions.len(), "consumer.revoke_commit"),
                    Err(error) => tracing::warn!(error = %error, "consumer.revoke_commit_failed"),
                }
            }
            let mut owned = self.owned.lock().expect("ownership lock poisoned");
            for partition in &revoked {
                owned.remove(partition);
                self.tracker.remove(partition);
            }
            let _ = self.assignments.send(Assignment::Revoked(revoked));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let assigned = partition_keys(list);
            let mut owned = self.owned.lock().expect("ownership lock poisoned");
            owned.extend(assigned.iter().cloned());
            tracing::info!(partitions = %describe(&assigned), "consumer.assigned");
            let _ = self.assignments.send(Assignment::Assigned(assigned));
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::warn!(error = %error, "consumer.commit_failed");
            for partition in partition_keys(offsets) {
                self.tracker.forget_commit(&partition);
            }
        }
    }
}

/// Settings of the consumer, from the platform config.
#[derive(Clone)]
pub struct ConsumerSettings {
    /// Consumer group id.
    pub group_id: String,
    /// librdkafka properties (`bootstrap.servers`, security, timeouts, …); may hold secrets.
    pub properties: Vec<(String, String)>,
}

impl std::fmt::Debug for ConsumerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.properties.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("ConsumerSettings")
            .field("group_id", &self.group_id)
            .field("properties", &keys)
            .finish()
    }
}

/// Creates the consumer and subscribes it to `topics`.
pub fn subscribe(
    settings: &ConsumerSettings,
    topics: &[String],
    tracker: Arc<AckTracker>,
) -> KafkaResult<(Arc<KafkaConsumer>, mpsc::UnboundedReceiver<Assignment>)> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let context = SourceContext {
        tracker,
        assignments: sender,
        owned: Mutex::default(),
        closing: AtomicBool::new(false),
    };
    let mut client_config = ClientConfig::new();
    for (key, value) in &settings.properties {
        client_config.set(key, value);
    }
    let consumer: KafkaConsumer = client_config
        .set("group.id", &settings.group_id)
        // Partitions move between replicas one at a time, the others keep flowing.
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Offsets move only through the pipeline's commits, after sinks made data durable.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set_log_level(RDKafkaLogLevel::Warning)
        .create_with_context(context)?;
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    Ok((Arc::new(consumer), receiver))
}

/// Commits positions (next offsets) in the given mode.
pub fn commit(
    consumer: &KafkaConsumer,
    positions: &[(PartitionKey, i64)],
    mode: CommitMode,
) -> KafkaResult<()> {
    if positions.is_empty() {
        return Ok(());
    }
    consumer.commit(&offsets_list(positions), mode)
}

/// Pauses or resumes one partition.
pub fn set_paused(consumer: &KafkaConsumer, partition: &PartitionKey, paused: bool) -> KafkaResult<()> {
    let mut list = TopicPartitionList::new();
    list.add_partition(&partition.0, partition.1);
    if paused { consumer.pause(&list) } else { consumer.resume(&list) }
}

fn offsets_list(positions: &[(PartitionKey, i64)]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in positions {
        // Adding a partition to a fresh list cannot fail for a valid offset.
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    list
}

fn describe(partitions: &[PartitionKey]) -> String {
    partitions.iter().map(|(topic, partition)| format!("{topic}[{partition}]")).collect::<Vec<_>>().join(", ")
}

fn partition_keys(list: &TopicPartitionList) -> Vec<PartitionKey> {
    list.elements().iter().map(|element| (Arc::from(element.topic()), element.partition())).collect()
}
