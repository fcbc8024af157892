//! Avro in the Confluent wire format (DESIGN §2): magic byte 0, a 4-byte big-endian Schema
//! Registry id, then the Avro binary body written with that schema.
//!
//! [`decode_avro_with`] is the pure core: it takes the schemas from a lookup and never does I/O.
//! [`decode_avro`] fetches the schemas from a [`SchemaRegistry`] first (cached by id) and then
//! calls it. The body is read into the JSON that Kafka Connect's JsonConverter would have written
//! for the same record, and the Avro schema into the Connect schema it stands for, so columns are
//! typed by the same code as [`decode_json`](super::decode_json): the same columns give the same
//! [`Value`](crate::event::Value)s whichever converter Debezium ran with.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::registry::SchemaRegistry;
use super::schema::{self as connect, kind_of};
use super::{Decoded, Error, MessagePart, Path, SchemaChange};
use crate::event::{ChangeEvent, Op, Position, Row, SourceInfo, TableId};

mod binary;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fixture;

pub use schema::{AvroSchema, AvroSchemaError};

/// The first byte of every Confluent-framed message.
const MAGIC: u8 = 0;
/// Magic byte and schema id.
const HEADER_LEN: usize = 5;

/// Splits a Confluent-framed key or value into its schema id and Avro body.
///
/// # Errors
///
/// Returns [`Error::NotConfluentWire`] if the bytes are shorter than the 5-byte header or do not
/// start with the magic byte 0.
pub fn split_confluent(part: MessagePart, bytes: &[u8]) -> Result<(u32, &[u8]), Error> {
    match bytes {
        [MAGIC, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [magic, ..] if *magic != MAGIC => {
            let problem = format!("magic byte is 0x{magic:02x}, expected 0x00");
            Err(Error::NotConfluentWire { part, problem })
        }
        short => {
            let problem = format!("{} bytes is shorter than the {HEADER_LEN}-byte header", short.len());
            Err(Error::NotConfluentWire { part, problem })
        }
    }
}

/// Decodes one Kafka record written by Debezium through Confluent's `AvroConverter`, with its
/// schemas from the Schema Registry.
///
/// Fetches the value's and the key's schema (each at most once per id and registry) and then
/// decodes as [`decode_avro_with`] does.
///
/// # Errors
///
/// As [`decode_avro_with`]; in addition [`Error::Registry`] when the registry cannot be reached
/// or fails, the one error for which [`Error::is_transient`] is true.
pub async fn decode_avro(
    registry: &SchemaRegistry,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    position: Position,
) -> Result<Decoded, Error> {
    let Some(value) = value else {
        return Ok(Decoded::Tombstone);
    };
    let (value_id, _) = split_confluent(MessagePart::Value, value)?;
    let value_schema = registry.schema(value_id).await?;
    let key_schema = match key {
        Some(key) => {
            let (key_id, _) = split_confluent(MessagePart::Key, key)?;
            Some((key_id, registry.schema(key_id).await?))
        }
        None => None,
    };
    let lookup = |id| match &key_schema {
        Some((key_id, schema)) if *key_id == id => Some(schema.clone()),
        _ => (id == value_id).then(|| value_schema.clone()),
    };
    decode_avro_with(lookup, key, Some(value), position)
}

/// Decodes one Kafka record in the Confluent Avro wire format, with schemas from `schemas`.
///
/// `key` and `value` are the record's raw bytes (`None` for a null key or value). A null value
/// is a [`Decoded::Tombstone`] and its key is not read; a record of the schema-change topic is a
/// [`Decoded::SchemaChange`]. `columns` come from the value schema's `after` record.
///
/// # Errors
///
/// Every error is a record error: [`Error::NotConfluentWire`] for a bad header,
/// [`Error::UnknownSchema`] when `schemas` does not know an id, [`Error::AvroBody`] when a body
/// does not match its schema (naming the field and byte), and the errors of
/// [`decode_json`](super::decode_json) for an envelope or value that Debezium would not write.
pub fn decode_avro_with(
    schemas: impl Fn(u32) -> Option<Arc<AvroSchema>>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    position: Position,
) -> Result<Decoded, Error> {
    let Some(value) = value else {
        return Ok(Decoded::Tombstone);
    };
    let (schema, envelope) = read(MessagePart::Value, value, &schemas)?;
    let envelope = match envelope {
        Json::Null => return Ok(Decoded::Tombstone),
        Json::Object(envelope) => envelope,
        other => {
            let problem = format!("expected a record, found {}", kind_of(&other));
            return Err(Error::NotEnvelope { part: MessagePart::Value, problem });
        }
    };
    if !envelope.contains_key("op") && envelope.contains_key("ddl") {
        return schema_change(envelope, position).map(Decoded::SchemaChange);
    }
    let key = match key {
        Some(key) => {
            let (key_schema, key) = read(MessagePart::Key, key, &schemas)?;
            connect::typed_row(Path::Root("key"), key_schema.connect(), key)?
        }
        None => None,
    };
    change(&schema, key, envelope, position).map(Decoded::Change)
}

/// Reads a framed key or value into JSON by the schema its header names.
fn read(
    part: MessagePart,
    bytes: &[u8],
    schemas: &impl Fn(u32) -> Option<Arc<AvroSchema>>,
) -> Result<(Arc<AvroSchema>, Json), Error> {
    let (id, body) = split_confluent(part, bytes)?;
    let schema = schemas(id).ok_or(Error::UnknownSchema { id })?;
    let root = part.to_string();
    let json = binary::read(&schema, body, &root).map_err(|mismatch| Error::AvroBody {
        part,
        schema_id: id,
        path: mismatch.path,
        offset: mismatch.offset + HEADER_LEN,
        problem: mismatch.problem,
    })?;
    Ok((schema, json))
}

fn change(
    schema: &AvroSchema,
    key: Option<Row>,
    mut envelope: Map<String, Json>,
    position: Position,
) -> Result<ChangeEvent, Error> {
    let op = envelope.remove("op").unwrap_or(Json::Null);
    let op = op.as_str().and_then(Op::from_code).ok_or_else(|| {
        let found = match op.as_str() {
            Some(code) if code.len() <= 16 => op.to_string(),
            _ => kind_of(&op).to_owned(),
        };
        Path::Root("op").error(format!("expected one of c, u, d, r, t, found {found}"))
    })?;
    let raw = source_block(envelope.remove("source"))?;
    let table = table_id(&raw)?;
    let source = source_info(raw)?;
    let ts_ms = optional_i64(Path::Root("ts_ms"), envelope.get("ts_ms"))?;
    let row_schema = |name| {
        schema
            .connect()
            .field(name)
            .ok_or_else(|| Path::Root("schema").error(format!("envelope schema has no `{name}` field")))
    };
    let (before_schema, after_schema) = (row_schema("before")?, row_schema("after")?);
    let before = envelope.remove("before").unwrap_or(Json::Null);
    let after = envelope.remove("after").unwrap_or(Json::Null);
    Ok(ChangeEvent {
        op,
        table,
        key,
        before: connect::typed_row(Path::Root("before"), before_schema, before)?,
        after: connect::typed_row(Path::Root("after"), after_schema, after)?,
        source,
        ts_ms,
        columns: Some(after_schema.columns(Path::Root("schema.after"))?),
        position,
    })
}

fn schema_change(mut envelope: Map<String, Json>, position: Position) -> Result<SchemaChange, Error> {
    let source = source_info(source_block(envelope.remove("source"))?)?;
    let ddl = match envelope.remove("ddl") {
        Some(Json::String(ddl)) => ddl,
        other => return Err(unexpected(Path::Root("ddl"), "a string", other.as_ref())),
    };
    let table_changes = match envelope.remove("tableChanges") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(changes)) => changes,
        Some(other) => return Err(unexpected(Path::Root("tableChanges"), "an array", Some(&other))),
    };
    Ok(SchemaChange {
        database: optional_text(Path::Root("databaseName"), envelope.get("databaseName"))?,
        schema: optional_text(Path::Root("schemaName"), envelope.get("schemaName"))?,
        ddl,
        table_changes,
        source,
        ts_ms: optional_i64(Path::Root("ts_ms"), envelope.get("ts_ms"))?,
        position,
    })
}

fn source_block(source: Option<Json>) -> Result<Map<String, Json>, Error> {
    match source {
        Some(Json::Object(source)) => Ok(source),
        other => Err(unexpected(Path::Root("source"), "a record", other.as_ref())),
    }
}

/// The table from the `source` block: PostgreSQL gives db, schema and table; MySQL db and table.
fn table_id(source: &Map<String, Json>) -> Result<TableId, Error> {
    let root = Path::Root("source");
    let text = |name| optional_text(root.field(name), source.get(name));
    let table = text("table")?.ok_or_else(|| unexpected(root.field("table"), "a string", None))?;
    Ok(TableId { database: text("db")?, schema: text("schema")?, table })
}

fn source_info(raw: Map<String, Json>) -> Result<SourceInfo, Error> {
    let root = Path::Root("source");
    let snapshot = match raw.get("snapshot") {
        None | Some(Json::Null | Json::Bool(false)) => false,
        Some(Json::String(s)) => s != "false",
        Some(Json::Bool(true)) => true,
        other => return Err(unexpected(root.field("snapshot"), "a string or boolean", other)),
    };
    Ok(SourceInfo {
        connector: optional_text(root.field("connector"), raw.get("connector"))?,
        commit_ts_ms: optional_i64(root.field("ts_ms"), raw.get("ts_ms"))?,
        snapshot,
        txid: optional_i64(root.field("txId"), raw.get("txId"))?,
        lsn: optional_i64(root.field("lsn"), raw.get("lsn"))?,
        raw,
    })
}

fn optional_text(path: Path<'_>, value: Option<&Json>) -> Result<Option<String>, Error> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        other => Err(unexpected(path, "a string", other)),
    }
}

fn optional_i64(path: Path<'_>, value: Option<&Json>) -> Result<Option<i64>, Error> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        other => Err(unexpected(path, "a 64-bit integer", other)),
    }
}

fn unexpected(path: Path<'_>, expected: &str, found: Option<&Json>) -> Error {
    let found = found.map_or("nothing", kind_of);
    path.error(format!("expected {expected}, found {found}"))
}
