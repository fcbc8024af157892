//! The Kafka source: a consumer over Debezium topics with manual commits only, offsets taken
//! from what the pipeline acknowledged, rebalances reported through a channel
//! ([`KafkaSource`] puts it behind the [`Source`](super::Source) contract).
//!
//! A revoke is not served inside the rebalance callback, which runs on the poll loop's task:
//! the callback pauses the partitions and reports them as `Assignment::Revoking`; the source
//! lets their lanes drain (bounded) without blocking the loop, commits, and only then gives the
//! partitions up with `finish_revoke`. librdkafka keeps the rebalance open until then.
//!
//! Commits are synchronous (`commit_durable`, run off the async threads): librdkafka reports
//! the result of a manual async commit to no one, and a position counts as committed only once
//! the broker accepted it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::acks::{AckTracker, PartitionKey};
use crate::config::{AuthMechanism, AutoOffsetReset, KafkaConfig};
use crate::ops::metrics::Counter;

mod lag;
mod source;

pub use source::KafkaSource;

/// The consumer type the pipeline drives.
pub type KafkaConsumer = StreamConsumer<SourceContext>;

/// A change of assignment, reported by the rebalance callback.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Assignment {
    /// Partitions were assigned to this consumer.
    Assigned(Vec<PartitionKey>),
    /// Partitions are to be given up: they are paused, their lanes should drain, then the
    /// source commits and calls [`finish_revoke`].
    Revoking(Vec<PartitionKey>),
    /// Partitions are gone already (lost, or the consumer is closing): their lanes must stop.
    Revoked(Vec<PartitionKey>),
}

/// How long a revoke waits for the lanes of the revoked partitions to make what they hold
/// durable before it commits and lets the partitions go; what is not durable by then is
/// delivered again by the next owner (at least once, never lost).
const REVOKE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Consumer callbacks: report assignment changes to the source and defer revokes to it;
/// ownership and commits.
pub struct SourceContext {
    tracker: Arc<AckTracker>,
    /// Commits the broker accepted.
    commits: Counter,
    /// Held through a commit: commits go one at a time, each with positions taken under it, so
    /// that an offset never moves back.
    commit_lock: Mutex<()>,
    assignments: mpsc::UnboundedSender<Assignment>,
    owned: Mutex<HashSet<PartitionKey>>,
    closing: AtomicBool,
    /// Where sinks that store their position stand, asked at every assignment.
    sink_positions: Option<SinkPositions>,
}

/// The lowest next offset the sinks that store their position need, per partition (partitions
/// they never wrote to are left out). Called from the rebalance callback: it may block.
pub type SinkPositions = Arc<dyn Fn(&[PartitionKey]) -> HashMap<PartitionKey, i64> + Send + Sync>;

/// How long an assignment waits for the group's committed offsets.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

impl SourceContext {
    /// Whether this consumer currently owns a partition.
    pub fn owns(&self, partition: &PartitionKey) -> bool {
        self.owned.lock().expect("ownership lock poisoned").contains(partition)
    }

    /// The pipeline has drained and made its final commit: revokes from now on (the consumer
    /// leaving the group) are served at once.
    fn set_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    fn committed(&self, positions: &[(PartitionKey, i64)]) {
        self.tracker.mark_committed(positions);
        self.commits.add(1);
    }

    fn disown(&self, partitions: &[PartitionKey]) {
        let mut owned = self.owned.lock().expect("ownership lock poisoned");
        for partition in partitions {
            owned.remove(partition);
            self.tracker.remove(partition);
        }
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, list: &mut TopicPartitionList) {
        self.start_where_sinks_need(consumer, list);
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(list),
            _ => consumer.assign(list),
        };
        if let Err(error) = result {
            tracing::error!(error = %error, "consumer.assign_failed");
            return;
        }
        // A partition paused by backpressure keeps librdkafka's pause flag through a revoke;
        // assigned again to this consumer, it must flow.
        if let Err(error) = consumer.resume(list) {
            tracing::warn!(error = %error, "consumer.resume_failed");
        }
        let assigned = partition_keys(list);
        self.owned.lock().expect("ownership lock poisoned").extend(assigned.iter().cloned());
        tracing::info!(partitions = %describe(&assigned), "consumer.assigned");
        let _ = self.assignments.send(Assignment::Assigned(assigned));
    }

    /// Starts each assigned partition at the lowest position its sinks need: a sink that stores
    /// its position below the group's committed offset (its target restored from an older
    /// backup) gets what it lost again; the others skip nothing they need, and a sink that
    /// stores its position skips what it holds.
    fn start_where_sinks_need(&self, consumer: &BaseConsumer<Self>, list: &mut TopicPartitionList) {
        let Some(sink_positions) = &self.sink_positions else { return };
        let stored = sink_positions(&partition_keys(list));
        if stored.is_empty() {
            return;
        }
        let committed = match consumer.committed_offsets(list.clone(), COMMITTED_TIMEOUT) {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(error = %error, "consumer.committed_offsets_failed");
                return;
            }
        };
        for ((topic, partition), next) in stored {
            let committed = committed.find_partition(&topic, partition).map(|element| element.offset());
            let behind = match committed {
                Some(Offset::Offset(committed)) => next < committed,
                // No commit yet: start where the sinks stand rather than by auto.offset.reset.
                _ => true,
            };
            if behind && list.set_partition_offset(&topic, partition, Offset::Offset(next)).is_ok() {
                tracing::info!(topic = %topic, partition, offset = next, committed = ?committed, "consumer.start_at_sink_position");
            }
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, list: &TopicPartitionList) {
        let revoked = partition_keys(list);
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let closing = self.closing.load(Ordering::Acquire);
        if cooperative && !closing && !consumer.assignment_lost() {
            tracing::info!(partitions = %describe(&revoked), "consumer.revoking");
            if let Err(error) = consumer.pause(list) {
                tracing::warn!(error = %error, "consumer.pause_failed");
            }
            let _ = self.assignments.send(Assignment::Revoking(revoked));
            return;
        }
        // Lost, closing or eager: the partitions go now; what was not committed is delivered
        // again by their next owner.
        tracing::info!(partitions = %describe(&revoked), lost = consumer.assignment_lost(), "consumer.revoked");
        self.disown(&revoked);
        let result = if cooperative { consumer.incremental_unassign(list) } else { consumer.unassign() };
        if let Err(error) = result {
            tracing::warn!(error = %error, "consumer.unassign_failed");
        }
        let _ = self.assignments.send(Assignment::Revoked(revoked));
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
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, list: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, list),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, list),
            other => {
                tracing::error!(error = ?other, "consumer.rebalance_error");
                // librdkafka asks for the assignment to be cleared on a rebalance error.
                let _ = consumer.unassign();
                let revoked: Vec<PartitionKey> =
                    self.owned.lock().expect("ownership lock poisoned").drain().collect();
                for partition in &revoked {
                    self.tracker.remove(partition);
                }
                let _ = self.assignments.send(Assignment::Revoked(revoked));
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

impl ConsumerSettings {
    /// The consumer of a pipeline: the connection, then `kafka:`'s consumer tuning and the
    /// prefetch bound of [`consumer_tuning`].
    pub fn from_config(kafka: &KafkaConfig, max_buffered_messages: usize) -> Self {
        let mut properties = connection_properties(kafka);
        let auto_offset_reset = match kafka.auto_offset_reset {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
        };
        properties.extend([
            ("auto.offset.reset".to_owned(), auto_offset_reset.to_owned()),
            ("session.timeout.ms".to_owned(), kafka.session_timeout.as_millis().to_string()),
            ("max.poll.interval.ms".to_owned(), kafka.max_poll_interval.as_millis().to_string()),
            ("fetch.min.bytes".to_owned(), kafka.fetch_min_bytes.to_string()),
            ("fetch.wait.max.ms".to_owned(), kafka.fetch_max_wait.as_millis().to_string()),
        ]);
        properties.extend(consumer_tuning(max_buffered_messages));
        ConsumerSettings { group_id: kafka.group_id.clone(), properties }
    }
}

/// librdkafka consumer settings the host always applies, for a pipeline that holds at most
/// `max_buffered_messages` records per partition.
///
/// - librdkafka prefetches per partition up to `queued.min.messages` (100,000) and
///   `queued.max.messages.kbytes` (64 MB) by default, far more than a partition lane may hold:
///   the pipeline pauses a partition at `max_buffered_messages` (and a pause discards what
///   librdkafka prefetched). The prefetch only has to bridge the time between two fetches, so
///   it follows a quarter of that bound at an estimated 1 KB per record, 1 to 64 MB.
/// - A partition paused for backpressure keeps its fetch queue full; librdkafka then waits
///   `fetch.queue.backoff.ms` (1 s by default) before fetching again once resumed, stalling a
///   busy pipeline at every pause: fetch again as soon as the lanes drained.
pub fn consumer_tuning(max_buffered_messages: usize) -> Vec<(String, String)> {
    let queued_kbytes = (max_buffered_messages / 4).clamp(MIN_QUEUED_KBYTES, MAX_QUEUED_KBYTES);
    vec![
        ("queued.min.messages".to_owned(), max_buffered_messages.max(1).to_string()),
        ("queued.max.messages.kbytes".to_owned(), queued_kbytes.to_string()),
        ("fetch.queue.backoff.ms".to_owned(), "10".to_owned()),
    ]
}

/// The bounds of a partition's prefetch queue, in KiB.
const MIN_QUEUED_KBYTES: usize = 1024;
const MAX_QUEUED_KBYTES: usize = 64 * 1024;

/// librdkafka properties every Kafka client of a pipeline shares (consumer, DLQ producer):
/// brokers and security.
pub fn connection_properties(kafka: &KafkaConfig) -> Vec<(String, String)> {
    let mut properties = vec![
        ("bootstrap.servers".to_owned(), kafka.bootstrap_servers.clone()),
        ("security.protocol".to_owned(), kafka.security_protocol.as_str().to_owned()),
    ];
    let mechanism = match kafka.auth_mechanism {
        AuthMechanism::None | AuthMechanism::SaslIam => None,
        AuthMechanism::SaslPlain => Some("PLAIN"),
        AuthMechanism::SaslScram256 => Some("SCRAM-SHA-256"),
        AuthMechanism::SaslScram512 => Some("SCRAM-SHA-512"),
        AuthMechanism::SaslOauthbearer => Some("OAUTHBEARER"),
    };
    if let Some(mechanism) = mechanism {
        properties.push(("sasl.mechanism".into(), mechanism.into()));
    }
    if let Some(username) = &kafka.sasl_username {
        properties.push(("sasl.username".into(), username.clone()));
    }
    if let Some(password) = &kafka.sasl_password {
        properties.push(("sasl.password".into(), password.expose().to_owned()));
    }
    for (key, value) in [
        ("ssl.ca.location", &kafka.ssl_ca_location),
        ("ssl.certificate.location", &kafka.ssl_certificate_location),
        ("ssl.key.location", &kafka.ssl_key_location),
    ] {
        if let Some(value) = value {
            properties.push((key.into(), value.clone()));
        }
    }
    properties
}

/// A librdkafka configuration holding `properties` (for example [`connection_properties`]).
pub fn client_config(properties: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        config.set(key, value);
    }
    config
}

/// Creates the consumer and subscribes it to `topics`.
fn subscribe(
    settings: &ConsumerSettings,
    topics: &[String],
    tracker: Arc<AckTracker>,
    commits: Counter,
    sink_positions: Option<SinkPositions>,
) -> KafkaResult<(Arc<KafkaConsumer>, mpsc::UnboundedReceiver<Assignment>)> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let context = SourceContext {
        tracker,
        commits,
        commit_lock: Mutex::new(()),
        assignments: sender,
        owned: Mutex::default(),
        closing: AtomicBool::new(false),
        sink_positions,
    };
    let consumer: KafkaConsumer = client_config(&settings.properties)
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

/// Commits what the sinks made durable in the owned partitions that `include` selects, and
/// returns how many positions moved. Blocks until the broker answers: call it where blocking is
/// allowed. Only an accepted commit marks positions as committed; a refused one is sent again
/// by the next call.
fn commit_durable(consumer: &KafkaConsumer, include: impl Fn(&PartitionKey) -> bool) -> KafkaResult<usize> {
    let context = consumer.context();
    let _one_at_a_time = context.commit_lock.lock().expect("commit lock poisoned");
    let positions = context.tracker.committable(|partition| include(partition) && context.owns(partition));
    if positions.is_empty() {
        return Ok(0);
    }
    consumer.commit(&offsets_list(&positions), CommitMode::Sync)?;
    context.committed(&positions);
    tracing::debug!(positions = ?positions, "consumer.committed");
    Ok(positions.len())
}

/// Gives up partitions whose revoke the source has served (drained and committed).
fn finish_revoke(consumer: &KafkaConsumer, partitions: &[PartitionKey]) {
    consumer.context().disown(partitions);
    match consumer.incremental_unassign(&partitions_list(partitions)) {
        Ok(()) => tracing::info!(partitions = %describe(partitions), "consumer.revoked"),
        Err(error) => tracing::warn!(error = %error, "consumer.unassign_failed"),
    }
}

/// Asks the broker thread that fetches `partition` to look at it again now.
///
/// librdkafka serves a resume on its main thread and does not wake the broker thread, which
/// sleeps up to a second when every partition it fetches was paused: each pause then cost the
/// partition about a second of fetching. A watermark query is a request on that same broker
/// thread (the partition's leader), so it wakes it; its answer is not needed.
fn wake_fetcher(consumer: &Arc<KafkaConsumer>, partition: &PartitionKey) {
    let (consumer, (topic, partition)) = (consumer.clone(), partition.clone());
    tokio::task::spawn_blocking(move || {
        let _ = consumer.fetch_watermarks(&topic, partition, WAKE_TIMEOUT);
    });
}

/// How long a wake-up query may wait for its (unused) answer.
const WAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Pauses or resumes one partition.
fn set_paused(consumer: &KafkaConsumer, partition: &PartitionKey, paused: bool) -> KafkaResult<()> {
    let list = partitions_list(std::slice::from_ref(partition));
    if paused { consumer.pause(&list) } else { consumer.resume(&list) }
}

fn partitions_list(partitions: &[PartitionKey]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    list
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
