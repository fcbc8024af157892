//! Avro in the Confluent wire format (docs/architecture.md, the change event): magic byte 0, a 4-byte
//! big-endian Schema Registry id, then the Avro binary body written with that schema.
//!
//! [`decode_avro_with`] is the pure core: it takes the schemas from a lookup and never does I/O.
//! [`decode_avro`] fetches the schemas from a [`SchemaRegistry`] first (cached by id) and then
//! calls it. The body is read into the JSON that Kafka Connect's JsonConverter would have written
//! for the same record, and the Avro schema into the Connect schema it stands for, so columns are
//! typed by the same code as [`decode_json`](super::decode_json): the same columns give the same
//! [`Value`](crate::event::Value)s whichever converter Debezium ran with.

use std::sync::Arc;

use serde_json::Value as Json;

use super::registry::SchemaRegistry;
use super::schema::{self as connect, kind_of};
use super::{Decoded, Error, MessagePart, Path, envelope};
use crate::event::{ChangeEvent, Position};

mod binary;
mod plan;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fixture;
mod translate;

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
    if let Some(event) = planned(&schemas, key, value, &position) {
        return Ok(Decoded::Change(event));
    }
    decode_general(&schemas, key, value, position)
}

/// Decodes a change by the plans of its schemas ([`plan`]), straight from the bytes into typed
/// values. `None` when a schema has no plan or the record does not fit it: the general path
/// then decodes it, or says what is wrong.
fn planned(
    schemas: &impl Fn(u32) -> Option<Arc<AvroSchema>>,
    key: Option<&[u8]>,
    value: &[u8],
    position: &Position,
) -> Option<ChangeEvent> {
    let (value_id, body) = split_confluent(MessagePart::Value, value).ok()?;
    let schema = schemas(value_id)?;
    let parts = schema.plan().envelope.as_ref()?.read(&mut binary::Reader::new(&schema, body))?;
    let key = match key {
        Some(key) => {
            let (key_id, body) = split_confluent(MessagePart::Key, key).ok()?;
            let key_schema = schemas(key_id)?;
            let plan = key_schema.plan().row.as_ref()?;
            Some(plan.read_whole(&mut binary::Reader::new(&key_schema, body))?)
        }
        None => None,
    };
    let table = envelope::table_id(&parts.source).ok()?;
    let source = envelope::source_info(&parts.source).ok()?;
    let columns = schema.connect().field("after")?.columns(Path::Root("schema.after")).ok()?;
    Some(ChangeEvent {
        op: parts.op,
        table,
        key,
        before: parts.before,
        after: parts.after,
        source,
        ts_ms: parts.ts_ms,
        columns: Some(columns),
        position: position.clone(),
        output_index: 0,
    })
}

/// Decodes as [`decode_avro_with`] does, by the general path, and holds the plan to it: where
/// the plan decodes a record, it must give what the general path gives. Returns the general
/// path's result and whether the plan decoded the record.
#[cfg(test)]
pub(super) fn decode_checked(
    schemas: impl Fn(u32) -> Option<Arc<AvroSchema>>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    position: Position,
) -> (Result<Decoded, Error>, bool) {
    let Some(value) = value else {
        return (Ok(Decoded::Tombstone), false);
    };
    let planned = planned(&schemas, key, value, &position);
    let general = decode_general(&schemas, key, value, position);
    // Compared as debug text, where a NaN equals itself.
    match (&general, &planned) {
        (Ok(Decoded::Change(event)), Some(planned)) => {
            assert_eq!(format!("{planned:?}"), format!("{event:?}"), "the plan and the general path differ");
        }
        (other, Some(planned)) => {
            panic!("the plan decoded {planned:?} where the general path gave {other:?}")
        }
        _ => {}
    }
    (general, planned.is_some())
}

/// Decodes a record through JSON typed by the Connect schemas, as JsonConverter's records are.
fn decode_general(
    schemas: &impl Fn(u32) -> Option<Arc<AvroSchema>>,
    key: Option<&[u8]>,
    value: &[u8],
    position: Position,
) -> Result<Decoded, Error> {
    let (schema, envelope) = read(MessagePart::Value, value, schemas)?;
    let envelope = match envelope {
        Json::Null => return Ok(Decoded::Tombstone),
        Json::Object(envelope) => envelope,
        other => {
            let problem = format!("expected a record, found {}", kind_of(&other));
            return Err(Error::NotEnvelope { part: MessagePart::Value, problem });
        }
    };
    if !envelope.contains_key("op") && envelope.contains_key("ddl") {
        return envelope::schema_change(envelope, position).map(Decoded::SchemaChange);
    }
    let key = match key {
        Some(key) => {
            let (key_schema, key) = read(MessagePart::Key, key, schemas)?;
            connect::typed_row(Path::Root("key"), key_schema.connect(), key)?
        }
        None => None,
    };
    envelope::change(key, Some(schema.connect()), envelope, position).map(Decoded::Change)
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
