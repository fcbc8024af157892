//! Sources: where change records come from, behind one contract, [`Source`], that the pipeline
//! depends on alone (docs/architecture.md, sources). The Kafka consumer over Debezium topics
//! ([`kafka::KafkaSource`]) is one; the embedded PostgreSQL replication reader is to be another.
//!
//! A source delivers [`SourceRecord`]s of the partitions it owns, says when ownership changes,
//! pauses a partition whose lanes are full, and commits the positions the pipeline
//! acknowledged as durable in the [`acks::AckTracker`] the two share. What only one source
//! needs (Kafka's rebalance drain and lag) stays inside it.

pub mod acks;
pub mod kafka;

use std::sync::Arc;

use tokio::time::Instant;

use self::acks::PartitionKey;

/// One record as the source delivered it, before decoding: kept whole so that a record that
/// fails can go to the DLQ byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// What a source has for the pipeline next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// A record of an owned partition.
    Record(SourceRecord),
    /// Partitions this source now owns.
    Assigned(Vec<PartitionKey>),
    /// Partitions that are gone: their lanes end, and what they still hold is delivered again
    /// by the next owner. A source giving partitions up in order first stops delivering their
    /// records, lets their lanes drain and commits, then reports them here.
    Revoked(Vec<PartitionKey>),
}

/// Commits the durable positions of the shared [`acks::AckTracker`]. Blocks until the source
/// confirmed them: run it off the async threads.
pub trait Committer: Send + Sync {
    /// Commits what is durable in every owned partition; a failure is logged, and the next
    /// commit sends the positions again.
    fn commit(&self);
}

/// Where change records come from (see the module documentation).
pub trait Source: Send + 'static {
    /// The next record or change of ownership. Cancellation-safe: the pipeline polls it in a
    /// `select!`, and nothing is lost when another branch wins.
    fn next(&mut self) -> impl Future<Output = SourceEvent> + Send;

    /// Whether this source currently owns `partition`.
    fn owns(&self, partition: &PartitionKey) -> bool;

    /// Pauses (stops fetching) or resumes one partition, for backpressure. A partition being
    /// given up stays paused.
    fn set_paused(&self, partition: &PartitionKey, paused: bool);

    /// How many partitions the source owns (a replica may own none).
    fn assigned_partitions(&self) -> usize;

    /// The committer, for commits beside the poll loop.
    fn committer(&self) -> Arc<dyn Committer>;

    /// Periodic work of the source itself (lag figures), at every housekeeping tick of the loop.
    fn tick(&mut self);

    /// Ends the source after the lanes drained: the final commit, then leaving, by `deadline`.
    fn close(self, deadline: Instant) -> impl Future<Output = ()> + Send;
}
