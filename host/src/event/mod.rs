//! The change event: the vocabulary every part of the host shares (docs/architecture.md, the change event).
//!
//! A [`ChangeEvent`] is what a source yields after decoding, what transforms see and what sinks
//! write. Values are typed and exact: decimals stay decimal strings, timestamps stay integers, and
//! an unchanged TOAST column is [`Value::Unavailable`], never null.

use std::fmt;
use std::sync::Arc;

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A row was inserted (`c`).
    Create,
    /// A row was updated (`u`).
    Update,
    /// A row was deleted (`d`).
    Delete,
    /// A row was read by a snapshot (`r`).
    Read,
    /// The table was truncated (`t`).
    Truncate,
}

impl Op {
    /// The one-letter code Debezium uses in the envelope's `op` field.
    pub const fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }

    /// Parses a Debezium `op` code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            "t" => Op::Truncate,
            _ => return None,
        })
    }
}

/// The table a change belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TableId {
    /// Database (catalog) name, when the source reports it.
    pub database: Option<String>,
    /// Schema name (PostgreSQL); `None` for MySQL, where the database plays that role.
    pub schema: Option<String>,
    /// Table name.
    pub table: String,
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => match &self.database {
                Some(database) => write!(f, "{database}.{}", self.table),
                None => f.write_str(&self.table),
            },
        }
    }
}

/// An exact decimal number kept as its canonical text (`-12.340`): never converted to float.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// Builds a decimal from a big-endian two's-complement unscaled integer and a scale, the
    /// encoding of Kafka Connect's `Decimal` and Debezium's `VariableScaleDecimal`.
    pub fn from_unscaled_bytes(bytes: &[u8], scale: u32) -> Self {
        let unscaled = num_bigint::BigInt::from_signed_bytes_be(bytes);
        Self::from_unscaled_text(&unscaled.to_string(), scale)
    }

    /// Parses decimal text such as `-12.340` or `7`, as sent with `decimal.handling.mode=string`.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let valid = !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Decimal(text.to_owned()))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_unscaled_text(unscaled: &str, scale: u32) -> Self {
        let (sign, digits) = match unscaled.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", unscaled),
        };
        let scale = scale as usize;
        if scale == 0 {
            return Decimal(format!("{sign}{digits}"));
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        Decimal(format!("{sign}{int}.{frac}"))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A typed column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer type up to 64 bits.
    Int(i64),
    /// A float (`real`, `double precision`); never used for decimals.
    Float(f64),
    /// An exact decimal.
    Decimal(Decimal),
    /// Text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A date, as days since 1970-01-01.
    Date(i32),
    /// A time of day, as microseconds since midnight.
    Time(i64),
    /// A timestamp without zone, as microseconds since 1970-01-01T00:00:00.
    Timestamp(i64),
    /// A timestamp with zone, as the ISO-8601 text the source gave (`2024-01-02T03:04:05.123456Z`).
    TimestampTz(String),
    /// A JSON document, as its text.
    Json(String),
    /// A UUID, as its canonical text.
    Uuid(String),
    /// An array.
    Array(Vec<Value>),
    /// An unchanged TOAST column: the source did not send it; it is not null and never written.
    Unavailable,
}

/// A row: column names and values in the source's column order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(pub Vec<(String, Value)>);

impl Row {
    /// The value of a column, if the row has it.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.iter().find(|(name, _)| name == column).map(|(_, value)| value)
    }

    /// A mutable reference to a column's value, if the row has it.
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(name, _)| name == column).map(|(_, value)| value)
    }
}

/// A column's declared type, where the source tells it (Debezium with schemas, Avro).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// The Kafka Connect type (`int32`, `string`, `bytes`, …).
    pub connect_type: String,
    /// The Debezium logical type name (`io.debezium.time.MicroTimestamp`, …), if any.
    pub logical_type: Option<String>,
    /// Whether the column may be null.
    pub optional: bool,
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
    /// A PostgreSQL WAL position (embedded mode).
    Lsn(u64),
}

impl fmt::Display for Position {
    /// `topic/partition/offset`, or `lsn/<hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Kafka { topic, partition, offset } => write!(f, "{topic}/{partition}/{offset}"),
            Position::Lsn(lsn) => write!(f, "lsn/{lsn:X}"),
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
    pub raw: serde_json::Map<String, serde_json::Value>,
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
    /// The column types of the row, where known.
    pub columns: Option<Vec<Column>>,
    /// Where the event sits in its source.
    pub position: Position,
    /// Which of the events its source record yielded this is, from 0: a transform may turn one
    /// record into several, and each needs an id of its own.
    pub output_index: u32,
}

impl ChangeEvent {
    /// A stable id for this change, the same on every redelivery and unique per event:
    /// the position (`topic/partition/offset`, `lsn/<hex>`) for the first event of a source
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

pub use json::{to_debezium_key, to_debezium_value};
pub use wire::{WireError, from_wire, to_wire, write_wire};
