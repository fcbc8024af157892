//! The JsonConverter envelope: key and value, each with or without a schema, into a [`Decoded`].

use serde::Deserialize as _;
use serde_json::Value as Json;

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
    envelope::change(decode_key(key)?, schema.as_ref(), envelope, position).map(Decoded::Change)
}

/// Parses a key or value and splits off its schema, if it has one.
fn split(part: MessagePart, bytes: &[u8]) -> Result<(Option<ConnectSchema>, Json), Error> {
    let json: Json = serde_json::from_slice(bytes).map_err(|source| Error::NotJson { part, source })?;
    match json {
        Json::Object(mut object)
            if object.len() == 2 && object.contains_key("schema") && object.contains_key("payload") =>
        {
            let payload = object.remove("payload").unwrap_or(Json::Null);
            let schema = match object.remove("schema") {
                None | Some(Json::Null) => None,
                Some(schema) => Some(
                    ConnectSchema::deserialize(schema)
                        .map_err(|source| Error::InvalidSchema { part, source })?,
                ),
            };
            Ok((schema, payload))
        }
        other => Ok((None, other)),
    }
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
