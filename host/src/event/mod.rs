//! The change event: the vocabulary every part of the host shares (docs/architecture.md, the change event).
//!
//! A [`ChangeEvent`] is what a source yields after decoding, what transforms see and what sinks
//! write. Its parts ([`Op`], [`TableId`], [`Row`], [`Value`], [`Decimal`]) come from the
//! `cdc-event` crate that plugins use too; positions, decoding metadata and the ids built from
//! them are the host's own.

use std::fmt;
use std::sync::Arc;

pub use cdc_event::{ColumnName, Decimal, Op, Row, TableId, Value};

/// A column's declared type, where the source tells it (Debezium with schemas, Avro).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// The Kafka Connect type (`int32`, `string`, `bytes`, …).
    pub connect_type: String,
    /// The Debezium logical type name (`io.debezium.time.MicroTimestamp`, …), if any.
    pub logical_type: Option<String>,
    /// Whether the column may be null.
    pub optional: bool,
    /// A decimal's precision and scale, where the schema gives them.
    pub precision: Option<u32>,
    /// See [`Column::precision`].
    pub scale: Option<u32>,
    /// The Connect type of an array's elements.
    pub items: Option<String>,
    /// The column's type in the source database (`JSONB`, `VARCHAR`, `_INT4`), when the
    /// connector propagates it (`column.propagate.source.type`).
    pub source_type: Option<String>,
    /// The source type's length (`VARCHAR(n)`), when propagated.
    pub source_length: Option<u32>,
}

/// Where an event sits in its source: what the host acknowledges and commits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Position {
    /// A Kafka record.
    Kafka {
        /// Topic name.
        topic: Arc<str>,
        /// Partition number.
        partition: i32,
        /// Offset within the partition.
        offset: i64,
    },
    /// A change read from PostgreSQL's WAL (embedded mode).
    Wal {
        /// The table's topic name (`{topic_prefix}.{schema}.{table}`), as Debezium would name it.
        topic: Arc<str>,
        /// Where in the WAL.
        position: WalPosition,
    },
}

/// Where a change sits in PostgreSQL's WAL: its transaction's commit LSN and its place in the
/// transaction. Transactions arrive in commit order, so these order the changes as they were
/// read, and stay the same when they are read again after a restart. Snapshot reads carry the
/// slot's consistent point and their place in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WalPosition {
    /// The commit LSN of the change's transaction.
    pub commit_lsn: u64,
    /// The change's index within its transaction, from 0.
    pub index: u64,
}

impl fmt::Display for Position {
    /// `topic/partition/offset`, or `lsn/<commit LSN, hex>/<index>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Kafka { topic, partition, offset } => write!(f, "{topic}/{partition}/{offset}"),
            Position::Wal { position, .. } => write!(f, "lsn/{:X}/{}", position.commit_lsn, position.index),
        }
    }
}

/// Metadata about the change at its origin: the Debezium `source` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceInfo {
    /// Connector kind (`postgresql`, `mysql`).
    pub connector: Option<String>,
    /// Commit time at the source database, milliseconds since the epoch.
    pub commit_ts_ms: Option<i64>,
    /// Whether the event comes from a snapshot (`true`, `last`, `first`, … all count).
    pub snapshot: bool,
    /// Transaction id, when the source reports one.
    pub txid: Option<i64>,
    /// PostgreSQL LSN of the change.
    pub lsn: Option<i64>,
    /// The whole `source` block as received, so that it leaves the host unchanged.
    pub raw: SourceBlock,
}

/// A Debezium `source` block, kept as the JSON text of an object and read only where it is
/// asked for: the fields the host uses are in [`SourceInfo`], and a block of a dozen fields
/// made into a map for every event would cost more than the rest of the event. Clones share
/// the text (the changes of one transaction and table share one block in embedded mode).
#[derive(Clone)]
pub struct SourceBlock(Arc<str>);

impl SourceBlock {
    /// The block of these fields.
    pub fn from_map(fields: &serde_json::Map<String, serde_json::Value>) -> Self {
        SourceBlock(serde_json::to_string(fields).expect("a JSON map always serializes").into())
    }

    /// The block whose JSON text is `text`, which the caller has read as an object.
    pub(crate) fn from_object_text(text: &str) -> Self {
        SourceBlock(text.into())
    }

    /// The block's JSON text: an object.
    pub fn as_json_text(&self) -> &str {
        &self.0
    }

    /// The block's fields.
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.0).expect("a source block is the text of a JSON object")
    }

    /// One field of the block, if it has it (the block is read for it).
    pub fn get(&self, field: &str) -> Option<serde_json::Value> {
        self.to_map().remove(field)
    }
}

impl Default for SourceBlock {
    /// An empty block.
    fn default() -> Self {
        SourceBlock("{}".into())
    }
}

impl PartialEq for SourceBlock {
    /// Blocks are equal when their fields are, however their text is spaced.
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.to_map() == other.to_map()
    }
}

impl fmt::Debug for SourceBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One change to one row (or one table, for a truncate).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// What happened.
    pub op: Op,
    /// Which table.
    pub table: TableId,
    /// Primary-key columns, from the message key.
    pub key: Option<Row>,
    /// The row before the change (updates with full replica identity, deletes).
    pub before: Option<Row>,
    /// The row after the change (creates, updates, snapshot reads).
    pub after: Option<Row>,
    /// Origin metadata.
    pub source: SourceInfo,
    /// When the connector processed the change, milliseconds since the epoch.
    pub ts_ms: Option<i64>,
    /// The column types of the row, where known; shared by the events of one schema.
    pub columns: Option<Arc<[Column]>>,
    /// Where the event sits in its source.
    pub position: Position,
    /// Which of the events its source record yielded this is, from 0: a transform may turn one
    /// record into several, and each needs an id of its own.
    pub output_index: u32,
}

impl ChangeEvent {
    /// A stable id for this change, the same on every redelivery and unique per event:
    /// the position (`topic/partition/offset`, `lsn/<hex>/<index>`) for the first event of a source
    /// record, followed by `/<n>` for its n-th further event (`orders/0/12/1`). Kafka topic
    /// names cannot hold `/`, so the id is unambiguous.
    pub fn idempotency_id(&self) -> String {
        self.id().to_string()
    }

    /// The idempotency id as something to write, without building the string first.
    pub fn id(&self) -> EventId<'_> {
        EventId(self)
    }
}

/// An event's idempotency id, written by its `Display` (see [`ChangeEvent::idempotency_id`]).
pub struct EventId<'a>(&'a ChangeEvent);

impl fmt::Display for EventId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.output_index {
            0 => write!(f, "{}", self.0.position),
            index => write!(f, "{}/{index}", self.0.position),
        }
    }
}

mod json;
#[cfg(test)]
mod sample;
mod wire;

pub use cdc_event::wire::WireError;
pub use json::{to_debezium_key, to_debezium_value};
pub use wire::{from_wire, pack, to_wire, write_wire};
