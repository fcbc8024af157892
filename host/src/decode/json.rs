//! The JsonConverter envelope: key and value, each with or without a schema, into a [`Decoded`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::schema::{self, ConnectSchema, kind_of};
use super::{Decoded, Error, MessagePart, Path, envelope, plain};
use crate::event::{Position, Row};

/// Decodes one Kafka record written by Debezium through Kafka Connect's JsonConverter.
///
/// `key` and `value` are the record's raw bytes (`None` for a null key or value); each may carry
/// a schema (`{"schema": …, "payload": …}`) or not, independently. A null value is a
/// [`Decoded::Tombstone`]; a record of the schema-change topic is a [`Decoded::SchemaChange`]; the
/// key of either is not read.
///
/// # Errors
///
/// Returns an [`Error`] naming the part or field at fault when the bytes are not JSON, the value
/// is not a Debezium envelope, the `op` is unknown, or a value does not fit its schema.
pub fn decode_json(key: Option<&[u8]>, value: Option<&[u8]>, position: Position) -> Result<Decoded, Error> {
    let Some(value) = value else {
        return Ok(Decoded::Tombstone);
    };
    if let Some(event) = plain::parse(value) {
        return Ok(Decoded::Change(plain::into_event(event, decode_key(key)?, position)));
    }
    let (schema, payload) = split(MessagePart::Value, value)?;
    let envelope = match payload {
        Json::Null => return Ok(Decoded::Tombstone),
        Json::Object(envelope) => envelope,
        other => {
            let problem = format!("expected an object, found {}", kind_of(&other));
            return Err(Error::NotEnvelope { part: MessagePart::Value, problem });
        }
    };
    if !envelope.contains_key("op") && envelope.contains_key("ddl") {
        return envelope::schema_change(envelope, position).map(Decoded::SchemaChange);
    }
    envelope::change(decode_key(key)?, schema.as_deref(), envelope, position).map(Decoded::Change)
}

/// Parses a key or value and splits off its schema, if it has one. JsonConverter repeats the
/// same schema in every record of a table: a schema is parsed once per thread and shared after.
fn split(part: MessagePart, bytes: &[u8]) -> Result<(Option<Arc<ConnectSchema>>, Json), Error> {
    // An object only: serde would read a struct from a two-element array too.
    let object = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if object && let Ok(enveloped) = serde_json::from_slice::<WithSchema<'_>>(bytes) {
        let payload = serde_json::from_str(enveloped.payload.get())
            .map_err(|source| Error::NotJson { part, source })?;
        let schema = match enveloped.schema.get() {
            "null" => None,
            schema => Some(cached_schema(part, schema)?),
        };
        return Ok((schema, payload));
    }
    // Not exactly `{"schema", "payload"}` (or not JSON: the full parse says where).
    let json: Json = serde_json::from_slice(bytes).map_err(|source| Error::NotJson { part, source })?;
    Ok((None, json))
}

/// A record as JsonConverter writes it with schemas, both parts left unparsed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WithSchema<'a> {
    #[serde(borrow)]
    schema: &'a RawValue,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// How many distinct schemas a thread keeps parsed; past it the cache starts over.
const SCHEMA_CACHE_SIZE: usize = 256;

thread_local! {
    static SCHEMAS: RefCell<HashMap<Box<str>, Arc<ConnectSchema>>> = RefCell::new(HashMap::new());
}

fn cached_schema(part: MessagePart, text: &str) -> Result<Arc<ConnectSchema>, Error> {
    if let Some(schema) = SCHEMAS.with_borrow(|schemas| schemas.get(text).cloned()) {
        return Ok(schema);
    }
    let schema: ConnectSchema =
        serde_json::from_str(text).map_err(|source| Error::InvalidSchema { part, source })?;
    let schema = Arc::new(schema);
    SCHEMAS.with_borrow_mut(|schemas| {
        if schemas.len() >= SCHEMA_CACHE_SIZE {
            schemas.clear();
        }
        schemas.insert(text.into(), schema.clone());
    });
    Ok(schema)
}

fn decode_key(key: Option<&[u8]>) -> Result<Option<Row>, Error> {
    let Some(bytes) = key else {
        return Ok(None);
    };
    let (schema, payload) = split(MessagePart::Key, bytes)?;
    match schema {
        Some(schema) => schema::typed_row(Path::Root("key"), &schema, payload),
        None => envelope::native_row(Path::Root("key"), payload),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::event::Op;

    fn position() -> Position {
        Position::Kafka { topic: Arc::from("t"), partition: 0, offset: 0 }
    }

    #[test]
    fn bytes_that_are_not_json_are_refused_naming_the_part() {
        let error = decode_json(None, Some(b"\xff\x00garbage"), position()).expect_err("not JSON");
        assert_eq!(error.to_string(), "message value is not valid JSON");
        assert!(error.source().is_some());
        let error = decode_json(Some(b"{id: 1}"), Some(br#"{"op":"c","source":{"table":"t"}}"#), position());
        assert_eq!(error.expect_err("bad key").to_string(), "message key is not valid JSON");
    }

    #[test]
    fn json_that_is_not_an_envelope_is_refused() {
        let error = decode_json(None, Some(b"[1, 2]"), position()).expect_err("an array");
        assert_eq!(
            error.to_string(),
            "message value is not a Debezium envelope: expected an object, found an array"
        );
        let error = decode_json(None, Some(br#"{"after": {}}"#), position()).expect_err("no op");
        assert_eq!(error.to_string(), "field `op`: expected one of c, u, d, r, t, found null");
    }

    #[test]
    fn null_values_are_tombstones() {
        assert_eq!(decode_json(Some(br#"{"id":1}"#), None, position()).ok(), Some(Decoded::Tombstone));
        assert_eq!(decode_json(None, Some(b"null"), position()).ok(), Some(Decoded::Tombstone));
        let with_schema = br#"{"schema": null, "payload": null}"#;
        assert_eq!(decode_json(None, Some(with_schema), position()).ok(), Some(Decoded::Tombstone));
    }

    #[test]
    fn a_truncate_has_a_table_and_no_rows() {
        let value = json!({
            "before": null, "after": null, "op": "t", "ts_ms": 7,
            "source": {"connector": "postgresql", "db": "inventory", "schema": "public", "table": "customers", "snapshot": false},
        });
        let value = serde_json::to_vec(&value).expect("bytes");
        let Ok(Decoded::Change(event)) = decode_json(None, Some(&value), position()) else {
            panic!("a truncate decodes");
        };
        assert_eq!((event.op, event.key, event.before, event.after), (Op::Truncate, None, None, None));
        assert_eq!(event.table.to_string(), "public.customers");
        assert!(!event.source.snapshot);
    }
}
