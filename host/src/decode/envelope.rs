//! The Debezium envelope shared by every converter: `op`, `source`, `before`/`after` typed by the
//! envelope's Connect schema (or natively without one), and schema-change records.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::logical;
use super::schema::{self, ConnectSchema, kind_of};
use super::{Error, Path, SchemaChange};
use crate::event::{ChangeEvent, Op, Position, Row, SourceInfo, TableId};

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
    Ok(ChangeEvent { op, table, key, before, after, source, ts_ms, columns, position, output_index: 0 })
}

pub(super) fn schema_change(
    mut envelope: Map<String, Json>,
    position: Position,
) -> Result<SchemaChange, Error> {
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

/// A row without a schema: every column mapped by its JSON type, in the order received.
pub(super) fn native_row(path: Path<'_>, value: Json) -> Result<Option<Row>, Error> {
    match value {
        Json::Null => Ok(None),
        Json::Object(columns) => Ok(Some(Row::from(
            columns.into_iter().map(|(name, value)| (name, logical::native(value))).collect::<Vec<_>>(),
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

pub(super) fn source_info(raw: impl Into<Arc<Map<String, Json>>>) -> Result<SourceInfo, Error> {
    let raw = raw.into();
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
