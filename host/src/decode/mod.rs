//! Decoding of Debezium messages into typed [`ChangeEvent`]s (docs/architecture.md, the change event).
//!
//! [`decode_json`] reads what Kafka Connect's JsonConverter writes, with or without schemas (each
//! of key and value is detected on its own). [`decode_avro`] reads what Confluent's AvroConverter
//! writes (magic byte 0, 4-byte schema id, Avro body) with schemas from a [`SchemaRegistry`], and
//! [`decode_avro_with`] does the same with schemas from any lookup; both type columns by the same
//! code as the JSON path, so a column gives the same value whichever converter wrote it.
//!
//! With a schema, every column is typed from its Connect type and Debezium logical name, so
//! decimals, dates and timestamps come out exact. Without one the types are unknown and JSON maps
//! natively: numbers to `Int`/`Float`, strings to `Text`, and so on. A decimal is then exact only
//! as text (`decimal.handling.mode=string` sends `"12.340"`, kept as `Text`); the default base64
//! form of a fixed-scale decimal stays an opaque `Text` since its scale is not in the message. Two
//! things are still recognised without a schema: Debezium's unchanged-TOAST placeholder, which
//! becomes [`Value::Unavailable`], and the `{"scale", "value"}` struct of a
//! `VariableScaleDecimal`, which carries its own scale and becomes a [`Value::Decimal`].
//!
//! [`Value::Unavailable`]: crate::event::Value::Unavailable
//! [`Value::Decimal`]: crate::event::Value::Decimal

use std::fmt;
use std::sync::Arc;

use crate::error::{Classify, ErrorClass};
use crate::event::{ChangeEvent, Position, SourceInfo};

mod avro;
mod envelope;
mod json;
mod logical;
mod plain;
mod prepared;
mod registry;
mod schema;
mod schemaful;
#[cfg(test)]
mod tests;

pub use avro::{AvroSchema, AvroSchemaError, decode_avro, decode_avro_with, split_confluent};
pub use json::decode_json;
pub use prepared::{PreparedRecord, PreparedSource, TableSchemas};
pub use registry::SchemaRegistry;

/// How a pipeline's records are encoded: what Debezium's converter wrote.
#[derive(Clone)]
pub enum Decoder {
    /// Kafka Connect's JsonConverter, with or without schemas.
    Json,
    /// Confluent's AvroConverter, with schemas from the registry.
    Avro(Arc<SchemaRegistry>),
}

impl Decoder {
    /// Decodes one record.
    ///
    /// # Errors
    ///
    /// As [`decode_json`] or [`decode_avro`]; [`Error::is_transient`] tells a registry outage
    /// from a bad record.
    pub async fn decode(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        position: Position,
    ) -> Result<Decoded, Error> {
        match self {
            Decoder::Json => decode_json(key, value, position),
            Decoder::Avro(registry) => decode_avro(registry, key, value, position).await,
        }
    }

    /// Decodes one record without waiting on I/O, as [`Decoder::decode`] would; `None` when it
    /// cannot: an Avro record whose schemas have not been fetched yet.
    pub fn decode_now(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        position: Position,
    ) -> Option<Result<Decoded, Error>> {
        match self {
            Decoder::Json => Some(decode_json(key, value, position)),
            Decoder::Avro(registry) => match decode_avro_with(|id| registry.cached(id), key, value, position)
            {
                Err(Error::UnknownSchema { .. }) => None,
                decoded => Some(decoded),
            },
        }
    }
}

/// What one Kafka record decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A row change (or a truncate).
    Change(ChangeEvent),
    /// A null value after a delete: a compaction artefact, acknowledged but not delivered.
    Tombstone,
    /// A DDL event from the connector's schema-change topic (MySQL and MariaDB).
    SchemaChange(SchemaChange),
}

/// A DDL statement the connector saw, as published on its `<topic.prefix>` schema-change topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    /// The database the statement ran in (`databaseName`), possibly empty for server-wide ones.
    pub database: Option<String>,
    /// The schema name (`schemaName`), when the source has one.
    pub schema: Option<String>,
    /// The DDL text.
    pub ddl: String,
    /// Debezium's description of each table the statement changed (`tableChanges`), as received.
    pub table_changes: Vec<serde_json::Value>,
    /// Origin metadata.
    pub source: SourceInfo,
    /// When the connector processed the statement, milliseconds since the epoch.
    pub ts_ms: Option<i64>,
    /// Where the record sits in its topic.
    pub position: Position,
}

/// The two parts of a Kafka record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePart {
    /// The record key.
    Key,
    /// The record value.
    Value,
}

impl fmt::Display for MessagePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessagePart::Key => "key",
            MessagePart::Value => "value",
        })
    }
}

/// Why a message could not be decoded. Every case is a fault of the record, except
/// [`Error::Registry`]: see [`Error::is_transient`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key or value bytes are not JSON.
    #[error("message {part} is not valid JSON")]
    NotJson {
        /// Which part of the record.
        part: MessagePart,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The key or value is JSON but not a Debezium envelope.
    #[error("message {part} is not a Debezium envelope: {problem}")]
    NotEnvelope {
        /// Which part of the record.
        part: MessagePart,
        /// What is wrong with it.
        problem: String,
    },
    /// The key or value has a `schema` that is not a Kafka Connect schema.
    #[error("message {part} has an invalid Connect schema")]
    InvalidSchema {
        /// Which part of the record.
        part: MessagePart,
        /// What the schema parser found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A field is missing, has the wrong shape, or does not fit its schema.
    #[error("field `{path}`: {problem}")]
    Field {
        /// Path of the field, e.g. `after.price`, `key.id`, `after.int_arr[1]`.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A field that should hold base64 does not.
    #[error("field `{path}`: {what} are not valid base64")]
    Base64 {
        /// Path of the field.
        path: String,
        /// What the bytes were meant to be (`bytes`, `decimal bytes`).
        what: &'static str,
        /// The decoder's complaint.
        #[source]
        source: base64::DecodeError,
    },
    /// The key or value is not in the Confluent wire format (magic byte 0, 4-byte schema id).
    #[error("message {part} is not in the confluent wire format: {problem}")]
    NotConfluentWire {
        /// Which part of the record.
        part: MessagePart,
        /// What is wrong with its header.
        problem: String,
    },
    /// An Avro body does not match the schema its header names.
    #[error("message {part} does not match avro schema {schema_id} at `{path}`, byte {offset}: {problem}")]
    AvroBody {
        /// Which part of the record.
        part: MessagePart,
        /// The schema id in the header.
        schema_id: u32,
        /// Path of the field being read, e.g. `after.num_fixed`, `after.int_arr[1]`.
        path: String,
        /// Offset in the message (header included) where reading failed.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// The schema id in a header is not registered (or not known to the lookup).
    #[error("schema id {id} is not registered")]
    UnknownSchema {
        /// The schema id.
        id: u32,
    },
    /// The schema registered under an id is not a usable Avro schema.
    #[error("schema {id} is not a usable avro schema")]
    InvalidAvroSchema {
        /// The schema id.
        id: u32,
        /// What is wrong with it.
        #[source]
        source: AvroSchemaError,
    },
    /// The Schema Registry could not be reached, timed out or failed: a transient error, not
    /// the record's fault.
    #[error("schema registry: fetching schema {id} failed: {problem}")]
    Registry {
        /// The schema id being fetched.
        id: u32,
        /// What went wrong.
        problem: String,
    },
}

impl Error {
    /// Whether the error is transient (retry the same record later) rather than the record's
    /// fault (send it to the DLQ). Only [`Error::Registry`] is.
    pub fn is_transient(&self) -> bool {
        matches!(self.class(), ErrorClass::Transient { .. })
    }
}

impl Classify for Error {
    /// A registry outage is transient; everything else is the record's fault.
    fn class(&self) -> ErrorClass {
        match self {
            Error::Registry { .. } => ErrorClass::TRANSIENT,
            _ => ErrorClass::Record,
        }
    }
}

/// A field path built lazily: segments are borrowed and only rendered when an error needs them.
#[derive(Clone, Copy)]
enum Path<'a> {
    /// A top-level field of the key or value.
    Root(&'a str),
    /// A named field inside `parent`.
    Field(&'a Path<'a>, &'a str),
    /// An array element inside `parent`.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of a named child.
    fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The path of an array element.
    fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// An error about this field.
    fn error(&self, problem: impl Into<String>) -> Error {
        Error::Field { path: self.to_string(), problem: problem.into() }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}
