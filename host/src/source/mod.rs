//! Sources: where change records come from, behind one contract, [`Source`], that the pipeline
//! depends on alone (docs/architecture.md, sources). The Kafka consumer over Debezium topics
//! ([`kafka::KafkaSource`]) is one; the embedded PostgreSQL replication reader ([`postgres::EmbeddedSource`]) is the other.
//!
//! A source delivers [`SourceRecord`]s of the partitions it owns, says when ownership changes,
//! pauses a partition whose lanes are full, and commits the positions the pipeline
//! acknowledged as durable in the [`acks::AckTracker`] the two share. What only one source
//! needs (Kafka's rebalance drain and lag) stays inside it.

pub mod acks;
pub mod kafka;
pub mod postgres;

use std::borrow::Cow;
use std::sync::Arc;

use tokio::time::Instant;

use self::acks::PartitionKey;
use crate::decode::PreparedRecord;
use crate::event::WalPosition;

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
    /// Where the change sits in PostgreSQL's WAL, for a record of the embedded source (its
    /// `offset` is then only its place in this run's stream).
    pub wal: Option<WalPosition>,
    /// A record the source built in process (the embedded source), in place of `key` and
    /// `value`: decoded without its bytes, which are written only when it has to leave whole.
    pub prepared: Option<Arc<PreparedRecord>>,
}

impl SourceRecord {
    /// The key's bytes, if any.
    pub fn key_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match &self.prepared {
            Some(prepared) => prepared.key_bytes().map(Cow::Owned),
            None => self.key.as_deref().map(Cow::Borrowed),
        }
    }

    /// The value's bytes; `None` for a tombstone.
    pub fn value_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match &self.prepared {
            Some(prepared) => Some(Cow::Owned(prepared.value_bytes())),
            None => self.value.as_deref().map(Cow::Borrowed),
        }
    }
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
    /// The source cannot go on (its retries are spent, its setup was refused): the pipeline
    /// halts with this reason, committed up to what is durable.
    Failed(String),
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
