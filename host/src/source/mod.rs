//! Sources: where change records come from. Today the Kafka consumer over Debezium topics; the
//! embedded PostgreSQL replication reader will yield the same [`SourceRecord`]s.

pub mod kafka;

use std::sync::Arc;

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
