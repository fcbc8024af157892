//! Reads topics outside any consumer group, for the operator's commands (`cdc consume`,
//! `cdc dlq`): partitions are assigned directly and nothing is committed, so the pipeline's
//! group never sees this reader. A replay commits its own group's positions
//! ([`GroupCommitter`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::source::kafka;

/// Where reading starts in each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The oldest record kept.
    Beginning,
    /// Only records written from now on.
    End,
    /// Where this consumer group committed, else the oldest record kept. The group is only
    /// read, never joined.
    Committed(String),
}

/// One record as read.
#[derive(Debug, Clone)]
pub struct Peeked {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// How long metadata and watermark requests may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A consumer of its own, never joining a group: of `group` (whose commits it reads or makes),
/// else of a throwaway group id. Nothing is committed on its own.
fn consumer(properties: &[(String, String)], group: Option<&str>) -> Result<BaseConsumer, String> {
    let mut config = kafka::client_config(properties);
    let group = group.map_or_else(
        || {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            format!("cdc-peek-{}-{nanos}", std::process::id())
        },
        str::to_owned,
    );
    config.set("group.id", group).set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
    config.create().map_err(|error| format!("cannot create a consumer: {error}"))
}

/// The partitions of each topic that exists; topics the broker does not know are left out.
fn partitions(consumer: &BaseConsumer, topics: &[String]) -> Result<Vec<(String, Vec<i32>)>, String> {
    let mut found = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(|error| format!("cannot read the metadata of `{topic}`: {error}"))?;
        for entry in metadata.topics() {
            if entry.error().is_none() && !entry.partitions().is_empty() {
                found.push((topic.clone(), entry.partitions().iter().map(|p| p.id()).collect()));
            }
        }
    }
    Ok(found)
}

/// How many records each existing topic holds (high less low watermark over its partitions);
/// `None` for a topic that does not exist.
pub async fn record_counts(
    properties: &[(String, String)],
    topics: &[String],
) -> Result<Vec<(String, Option<i64>)>, String> {
    let properties = properties.to_vec();
    let topics = topics.to_vec();
    blocking(move || {
        let consumer = consumer(&properties, None)?;
        let existing = partitions(&consumer, &topics)?;
        let mut counts = Vec::new();
        for topic in &topics {
            let Some((_, ids)) = existing.iter().find(|(name, _)| name == topic) else {
                counts.push((topic.clone(), None));
                continue;
            };
            let mut total = 0;
            for &partition in ids {
                let (low, high) = consumer
                    .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                    .map_err(|error| format!("cannot read the offsets of `{topic}`/{partition}: {error}"))?;
                total += high - low;
            }
            counts.push((topic.clone(), Some(total)));
        }
        Ok(counts)
    })
    .await
}

/// Up to `limit` records of `topics` from `start`, in each partition's order; stops earlier once
/// no record came for `wait`.
pub async fn read(
    properties: &[(String, String)],
    topics: &[String],
    start: Start,
    limit: usize,
    wait: Duration,
) -> Result<Vec<Peeked>, String> {
    let properties = properties.to_vec();
    let topics = topics.to_vec();
    blocking(move || {
        let group = match &start {
            Start::Committed(group) => Some(group.as_str()),
            Start::Beginning | Start::End => None,
        };
        let consumer = consumer(&properties, group)?;
        let mut assignment = TopicPartitionList::new();
        for (topic, ids) in partitions(&consumer, &topics)? {
            for partition in ids {
                assignment
                    .add_partition_offset(&topic, partition, Offset::Beginning)
                    .map_err(|error| format!("cannot assign `{topic}`/{partition}: {error}"))?;
            }
        }
        match &start {
            Start::Beginning => {}
            Start::End => assignment
                .set_all_offsets(Offset::End)
                .map_err(|error| format!("cannot start at the end: {error}"))?,
            Start::Committed(group) => {
                let committed = consumer
                    .committed_offsets(assignment.clone(), METADATA_TIMEOUT)
                    .map_err(|error| format!("cannot read the offsets group `{group}` committed: {error}"))?;
                for element in committed.elements() {
                    if let Offset::Offset(offset) = element.offset() {
                        assignment
                            .set_partition_offset(
                                element.topic(),
                                element.partition(),
                                Offset::Offset(offset),
                            )
                            .map_err(|error| format!("cannot start at {offset}: {error}"))?;
                    }
                }
            }
        }
        if assignment.count() == 0 {
            return Ok(Vec::new());
        }
        consumer.assign(&assignment).map_err(|error| format!("cannot assign the partitions: {error}"))?;
        let mut records = Vec::new();
        let mut last = Instant::now();
        while records.len() < limit && last.elapsed() < wait {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    last = Instant::now();
                    let headers = message
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default();
                    records.push(Peeked {
                        topic: message.topic().to_owned(),
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                        headers,
                    });
                }
                Some(Err(error)) => return Err(format!("cannot read: {error}")),
                None => {}
            }
        }
        Ok(records)
    })
    .await
}

/// Commits positions as a consumer group's, without joining it, on one client kept for every
/// commit: a client of its own per commit found the group's coordinator again (and, on a
/// secured broker, authenticated again) for each one.
pub struct GroupCommitter {
    consumer: Arc<BaseConsumer>,
    group: String,
}

impl GroupCommitter {
    /// A committer for `group`; it connects at its first commit.
    pub fn new(properties: &[(String, String)], group: &str) -> Result<Self, String> {
        let consumer = Arc::new(consumer(properties, Some(group))?);
        Ok(GroupCommitter { consumer, group: group.to_owned() })
    }

    /// Commits `positions` (topic, partition, next offset) once the broker confirms them.
    pub async fn commit(&self, positions: &[(String, i32, i64)]) -> Result<(), String> {
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, next) in positions {
            offsets
                .add_partition_offset(topic, *partition, Offset::Offset(*next))
                .map_err(|error| format!("cannot commit `{topic}`/{partition}: {error}"))?;
        }
        let (consumer, group) = (self.consumer.clone(), self.group.clone());
        blocking(move || {
            consumer
                .commit(&offsets, CommitMode::Sync)
                .map_err(|error| format!("cannot commit the positions of group `{group}`: {error}"))
        })
        .await
    }
}

/// librdkafka's calls block: they run on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work).await.map_err(|error| format!("the reader stopped: {error}"))?
}
