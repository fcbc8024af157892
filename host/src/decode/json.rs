//! The JsonConverter envelope: key and value, each with or without a schema, into a [`Decoded`].

use serde::Deserialize as _;
use serde_json::{Map, Value as Json};

use super::logical;
use super::schema::{self, ConnectSchema, kind_of};
use super::{Decoded, Error, MessagePart, Path, SchemaChange};
use crate::event::{ChangeEvent, Op, Position, Row, SourceInfo, TableId};

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
        return schema_change(envelope, position).map(Decoded::SchemaChange);
    }
    change(key, schema.as_ref(), envelope, position).map(Decoded::Change)
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

fn change(
    key: Option<&[u8]>,
    schema: Option<&ConnectSchema>,
    mut envelope: Map<String, Json>,
    position: Position,
) -> Result<ChangeEvent, Error> {
    let op = envelope.remove("op").unwrap_or(Json::Null);
    let op = op.as_str().and_then(Op::from_code).ok_or_else(|| {
        // Quote a short op as sent; a long one could be anything, so only its kind is named.
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
    let before = envelope.remove("before").unwrap_or(Json::Null);
    let after = envelope.remove("after").unwrap_or(Json::Null);
    let (before, after, columns) = match schema {
        Some(schema) => {
            let row_schema = |name| {
                schema.field(name).ok_or_else(|| {
                    Path::Root("schema").error(format!("envelope schema has no `{name}` field"))
                })
            };
            let (before_schema, after_schema) = (row_schema("before")?, row_schema("after")?);
            (
                schema::typed_row(Path::Root("before"), before_schema, before)?,
                schema::typed_row(Path::Root("after"), after_schema, after)?,
                Some(after_schema.columns(Path::Root("schema.after"))?),
            )
        }
        None => (native_row(Path::Root("before"), before)?, native_row(Path::Root("after"), after)?, None),
    };
    Ok(ChangeEvent { op, table, key: decode_key(key)?, before, after, source, ts_ms, columns, position })
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
        Some(other) => {
            return Err(unexpected(Path::Root("tableChanges"), "an array", Some(&other)));
        }
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

fn decode_key(key: Option<&[u8]>) -> Result<Option<Row>, Error> {
    let Some(bytes) = key else {
        return Ok(None);
    };
    let (schema, payload) = split(MessagePart::Key, bytes)?;
    match schema {
        Some(schema) => schema::typed_row(Path::Root("key"), &schema, payload),
        None => native_row(Path::Root("key"), payload),
    }
}

/// A row without a schema: every column mapped by its JSON type, in the order received.
fn native_row(path: Path<'_>, value: Json) -> Result<Option<Row>, Error> {
    match value {
        Json::Null => Ok(None),
        Json::Object(columns) => {
            Ok(Some(Row(columns.into_iter().map(|(name, value)| (name, logical::native(value))).collect())))
        }
        other => Err(unexpected(path, "an object or null", Some(&other))),
    }
}

fn source_block(source: Option<Json>) -> Result<Map<String, Json>, Error> {
    match source {
        Some(Json::Object(source)) => Ok(source),
        other => Err(unexpected(Path::Root("source"), "an object", other.as_ref())),
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
        other => {
            return Err(unexpected(root.field("snapshot"), "a string or boolean", other));
        }
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

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
