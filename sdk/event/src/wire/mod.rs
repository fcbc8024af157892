//! The wire form: how one change event crosses the plugin boundary (`wit/types.wit`).
//!
//! A record is one JSON object:
//!
//! ```text
//! {"op": "c"|"u"|"d"|"r"|"t",
//!  "table": {"database": string|null, "schema": string|null, "table": string},
//!  "key": row|null, "before": row|null, "after": row|null,
//!  "source": {...}, "ts_ms": int|null, "id": "topic/partition/offset"}
//! ```
//!
//! A row is an object of column name to value. Null, booleans, integers, non-integral floats and
//! text are plain JSON; every other type is a one-key object: `{"$decimal": "12.30"}`,
//! `{"$float": "1"}` (an integral or non-finite float), `{"$bytes": "<base64>"}`,
//! `{"$date": days}`, `{"$time": micros}`, `{"$timestamp": micros}`,
//! `{"$timestamptz": "<iso-8601>"}`, `{"$json": "<text>"}`, `{"$uuid": "<text>"}`,
//! `{"$unavailable": true}`; arrays are arrays. The form is lossless: a plugin's output comes
//! back with its types intact.
//!
//! [`write_record`] writes straight into the batch buffer and [`read_record`] reads without a
//! JSON tree on the way: both are on every plugin call's path, on the host and in the guest.

mod read;
mod write;

use std::fmt;

use serde_json::{Map, Value as Json};

use crate::{Op, Row, TableId};

pub use read::read_record;
pub use write::{write_record, write_value};

/// One record to write, borrowed from whichever event type holds it.
pub struct RecordRef<'a> {
    /// What happened.
    pub op: Op,
    /// Which table.
    pub table: &'a TableId,
    /// Primary-key columns.
    pub key: Option<&'a Row>,
    /// The row before the change.
    pub before: Option<&'a Row>,
    /// The row after the change.
    pub after: Option<&'a Row>,
    /// The Debezium `source` block.
    pub source: SourceRef<'a>,
    /// When the connector processed the change, milliseconds since the epoch.
    pub ts_ms: Option<i64>,
    /// The event's stable id, written through its `Display` (no string built first).
    pub id: &'a dyn fmt::Display,
}

/// A `source` block to write, as a map or as the JSON text of one.
#[derive(Debug, Clone, Copy)]
pub enum SourceRef<'a> {
    /// The block's fields.
    Map(&'a Map<String, Json>),
    /// The JSON text of an object, written as it is.
    Text(&'a str),
}

/// One record as read: each field is `None` when the record leaves it out, so that the reader
/// decides what an absent field means (the host keeps the origin event's, the SDK a default).
/// A field sent as `null` is `Some(None)`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WireRecord {
    /// `op`.
    pub op: Option<Op>,
    /// `table`.
    pub table: Option<TableId>,
    /// `key`.
    pub key: Option<Option<Row>>,
    /// `before`.
    pub before: Option<Option<Row>>,
    /// `after`.
    pub after: Option<Option<Row>>,
    /// `source` (`null` reads as an empty object).
    pub source: Option<Map<String, Json>>,
    /// `ts_ms` (anything but an integer reads as `null`).
    pub ts_ms: Option<Option<i64>>,
    /// `id` (`null` reads as absent).
    pub id: Option<String>,
}

/// Why a wire record could not be read.
#[derive(Debug)]
pub enum WireError {
    /// The record is not JSON.
    Json(serde_json::Error),
    /// A field is missing or has the wrong shape.
    Field {
        /// The path of the offending field, such as `after.price`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl WireError {
    pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        WireError::Field { field: field.into(), problem: problem.into() }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Json(error) => write!(f, "record is not valid JSON: {error}"),
            WireError::Field { field, problem } => write!(f, "field `{field}`: {problem}"),
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::Json(error) => Some(error),
            WireError::Field { .. } => None,
        }
    }
}
