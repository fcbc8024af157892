//! The Debezium envelope shared by every converter: `op`, `source`, `before`/`after` typed by the
//! envelope's Connect schema (or natively without one), and schema-change records.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::logical;
use super::schema::{self, ConnectSchema, kind_of};
use super::{Error, Path, SchemaChange};
use crate::event::{ChangeEvent, Op, Position, Row, SourceBlock, SourceInfo, TableId};

pub(super) fn change(
    key: Option<Row>,
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
    let source = source_info(&raw)?;
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
    Ok(ChangeEvent { op, table, key, before, after, source, ts_ms, columns, position, output_index: 0 })
}

pub(super) fn schema_change(
    mut envelope: Map<String, Json>,
    position: Position,
) -> Result<SchemaChange, Error> {
    let source = source_info(&source_block(envelope.remove("source"))?)?;
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

/// A row without a schema: every column mapped by its JSON type, in the order received.
pub(super) fn native_row(path: Path<'_>, value: Json) -> Result<Option<Row>, Error> {
    match value {
        Json::Null => Ok(None),
        Json::Object(columns) => Ok(Some(Row::from(
            columns
                .into_iter()
                .map(|(name, value)| (name.into(), logical::native(value)))
                .collect::<Vec<_>>(),
        ))),
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
pub(super) fn table_id(source: &Map<String, Json>) -> Result<TableId, Error> {
    let root = Path::Root("source");
    let text = |name| optional_text(root.field(name), source.get(name));
    let table = text("table")?.ok_or_else(|| unexpected(root.field("table"), "a string", None))?;
    Ok(TableId { database: text("db")?, schema: text("schema")?, table })
}

pub(super) fn source_info(raw: &Map<String, Json>) -> Result<SourceInfo, Error> {
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
        raw: SourceBlock::from_map(raw),
    })
}

/// The table and origin metadata of a `source` block given as the JSON text of an object, read
/// without building a map; `None` for a block the general path ([`table_id`], [`source_info`])
/// would refuse, so that it words the error.
pub(super) fn source_from_text(text: &str) -> Option<(TableId, SourceInfo)> {
    if !text.starts_with('{') {
        return None;
    }
    let fields: SourceFields<'_> = serde_json::from_str(text).ok()?;
    let table = TableId {
        database: fields.db.map(Cow::into_owned),
        schema: fields.schema.map(Cow::into_owned),
        table: fields.table.into_owned(),
    };
    let source = SourceInfo {
        connector: fields.connector.map(Cow::into_owned),
        commit_ts_ms: fields.ts_ms,
        snapshot: fields.snapshot.is_some_and(|snapshot| snapshot.0),
        txid: fields.tx_id,
        lsn: fields.lsn,
        raw: SourceBlock::from_object_text(text),
    };
    Some((table, source))
}

/// The fields of a `source` block the host reads, typed as [`table_id`] and [`source_info`]
/// type them: whatever they refuse fails to deserialize here too.
#[derive(Deserialize)]
struct SourceFields<'a> {
    #[serde(borrow)]
    db: Option<Cow<'a, str>>,
    #[serde(borrow)]
    schema: Option<Cow<'a, str>>,
    #[serde(borrow)]
    table: Cow<'a, str>,
    #[serde(borrow)]
    connector: Option<Cow<'a, str>>,
    ts_ms: Option<i64>,
    #[serde(rename = "txId")]
    tx_id: Option<i64>,
    lsn: Option<i64>,
    snapshot: Option<Snapshot>,
}

/// Whether a change comes from a snapshot: Debezium writes a boolean, or text where anything
/// but `false` (`true`, `last`, `incremental`, …) means yes.
struct Snapshot(bool);

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SnapshotVisitor;

        impl serde::de::Visitor<'_> for SnapshotVisitor {
            type Value = Snapshot;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or boolean")
            }

            fn visit_bool<E: serde::de::Error>(self, snapshot: bool) -> Result<Snapshot, E> {
                Ok(Snapshot(snapshot))
            }

            fn visit_str<E: serde::de::Error>(self, snapshot: &str) -> Result<Snapshot, E> {
                Ok(Snapshot(snapshot != "false"))
            }
        }

        deserializer.deserialize_any(SnapshotVisitor)
    }
}

fn optional_text(path: Path<'_>, value: Option<&Json>) -> Result<Option<String>, Error> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        other => Err(unexpected(path, "a string", other)),
    }
}

pub(super) fn optional_i64(path: Path<'_>, value: Option<&Json>) -> Result<Option<i64>, Error> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        other => Err(unexpected(path, "a 64-bit integer", other)),
    }
}

pub(super) fn unexpected(path: Path<'_>, expected: &str, found: Option<&Json>) -> Error {
    let found = found.map_or("nothing", kind_of);
    path.error(format!("expected {expected}, found {found}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What the general path makes of a `source` block, or its error.
    fn general(block: &Json) -> Result<(TableId, SourceInfo), String> {
        let Json::Object(fields) = block else { return Err("not an object".into()) };
        let table = table_id(fields).map_err(|error| error.to_string())?;
        Ok((table, source_info(fields).map_err(|error| error.to_string())?))
    }

    #[test]
    fn a_source_block_read_from_its_text_gives_what_the_general_path_gives() {
        let blocks = [
            json!({"version": "3.1.1.Final", "connector": "postgresql", "name": "shop", "ts_ms": 1_700_000_000_000_i64,
                   "snapshot": "false", "db": "shop", "sequence": "[null,\"2\"]", "schema": "public",
                   "table": "orders", "txId": 772, "lsn": 23_600_000, "xmin": null}),
            json!({"connector": "mysql", "db": "inventory", "table": "customers", "snapshot": true, "pos": 4681}),
            json!({"db": "d", "table": "t", "snapshot": "last"}),
            json!({"db": "d", "table": "t", "snapshot": null, "schema": null}),
            json!({"table": "a \"quoted\" \u{e9} name"}),
            json!({"table": "t", "snapshot": 1}),
            json!({"table": "t", "ts_ms": "soon"}),
            json!({"table": "t", "txId": 1.5}),
            json!({"table": "t", "lsn": u64::MAX}),
            json!({"table": null}),
            json!({"db": "no table"}),
            json!(["t"]),
        ];
        for block in blocks {
            let text = block.to_string();
            match (source_from_text(&text), general(&block)) {
                (Some(fast), Ok(general)) => {
                    assert_eq!(fast, general, "{text}");
                    assert_eq!(fast.1.raw.as_json_text(), text, "the text is kept as it came");
                }
                (None, Err(_)) => {}
                (fast, general) => panic!("{text}: read from text {fast:?}, by the general path {general:?}"),
            }
        }
    }
}
