//! Change records in Debezium's form: the key and the value envelope exactly as Debezium's
//! PostgreSQL connector writes them with the JSON converter and schemas, so that an embedded
//! pipeline decodes, transforms, dead-letters and delivers what a Kafka pipeline over the same
//! database would (docs/architecture.md, embedded mode).

use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};

use super::pgoutput::{Cell, Relation, Tuple};
use super::values::{self, ValueError};
use crate::decode::{self, PreparedRecord, PreparedSource, TableSchemas};
use crate::event::Op;

/// Debezium's value for an unchanged TOAST column it could not read.
const UNAVAILABLE: &str = "__debezium_unavailable_value";
/// The same, as base64, for a `bytes` column.
const UNAVAILABLE_BASE64: &str = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==";
/// The connector version this form follows.
const DEBEZIUM_VERSION: &str = "3.1.1.Final";

/// A table's shape and its schemas, serialized once per relation message.
#[derive(Debug)]
pub struct TableShape {
    /// The relation as pgoutput described it.
    pub relation: Relation,
    /// `{topic_prefix}.{schema}.{table}`.
    pub topic: Arc<str>,
    /// Whether each column is declared NOT NULL.
    not_null: Vec<bool>,
    schemas: Arc<TableSchemas>,
    /// The `source` block of the last change, shared by the changes that follow while they
    /// have the same origin (the rest of the transaction).
    last_source: Mutex<Option<(Origin, Arc<PreparedSource>)>>,
}

/// What an event says about its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Commit time of the transaction (snapshot time for reads), microseconds since the epoch.
    pub commit_time_micros: i64,
    /// Transaction id, when streamed.
    pub xid: Option<u32>,
    /// LSN of the change (the commit LSN of its transaction for a snapshot read).
    pub lsn: u64,
    /// The commit LSN of the previous transaction, Debezium's `sequence` start.
    pub last_commit_lsn: Option<u64>,
    /// Snapshot marker: `None` when streamed.
    pub snapshot: Option<SnapshotMark>,
}

/// Where a snapshot read sits in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMark {
    /// Any read but the last.
    Row,
    /// The last read of the snapshot.
    Last,
}

/// A change record that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// A value could not be read as its type.
    #[error("{table}.{column}: {source}")]
    Value {
        /// `schema.table`.
        table: String,
        /// Column name.
        column: String,
        /// Why.
        #[source]
        source: ValueError,
    },
    /// The schemas or the `source` block made for the table do not read back (a bug, named
    /// rather than hidden).
    #[error("{table}: {source}")]
    Schema {
        /// `schema.table`.
        table: String,
        /// Why.
        #[source]
        source: decode::Error,
    },
    /// The tuple does not match the relation.
    #[error("{table}: a row of {found} columns for a table of {expected}")]
    Shape {
        /// `schema.table`.
        table: String,
        /// Columns in the relation.
        expected: usize,
        /// Columns in the row.
        found: usize,
    },
}

/// Builds the records of one database.
#[derive(Debug, Clone)]
pub struct EnvelopeWriter {
    /// Debezium's `topic.prefix`: the logical server name.
    pub server: String,
    /// Database name.
    pub database: String,
}

impl EnvelopeWriter {
    /// The shape of a relation; `not_null` says which columns are declared NOT NULL (pgoutput
    /// does not tell, the catalog does).
    pub fn shape(&self, relation: Relation, not_null: Vec<bool>) -> Result<TableShape, EnvelopeError> {
        let topic: Arc<str> = Arc::from(format!("{}.{}.{}", self.server, relation.schema, relation.table));
        let key_columns: Vec<usize> =
            relation.columns.iter().enumerate().filter(|(_, column)| column.key).map(|(i, _)| i).collect();
        let fields = |columns: &mut dyn Iterator<Item = usize>, force_required: bool| -> Vec<Json> {
            columns
                .map(|i| {
                    let column = &relation.columns[i];
                    let optional = !(force_required || not_null.get(i).copied().unwrap_or(false));
                    values::field_schema(&column.name, column.ty, optional)
                })
                .collect()
        };
        let key_schema = json!({
            "type": "struct",
            "fields": fields(&mut key_columns.iter().copied(), true),
            "optional": false,
            "name": format!("{topic}.Key"),
        });
        let row = json!({
            "type": "struct",
            "fields": fields(&mut (0..relation.columns.len()), false),
            "optional": true,
            "name": format!("{topic}.Value"),
        });
        let mut before = row.clone();
        before["field"] = json!("before");
        let mut after = row;
        after["field"] = json!("after");
        let value_schema = json!({
            "type": "struct",
            "fields": [before, after, source_schema(), transaction_schema(),
                {"type": "string", "optional": false, "field": "op"},
                {"type": "int64", "optional": true, "field": "ts_ms"},
                {"type": "int64", "optional": true, "field": "ts_us"},
                {"type": "int64", "optional": true, "field": "ts_ns"}],
            "optional": false,
            "name": format!("{topic}.Envelope"),
            "version": 2,
        });
        let schemas =
            TableSchemas::new(key_schema.to_string(), value_schema.to_string()).map_err(|source| {
                EnvelopeError::Schema { table: format!("{}.{}", relation.schema, relation.table), source }
            })?;
        Ok(TableShape {
            relation,
            topic,
            not_null,
            schemas: Arc::new(schemas),
            last_source: Mutex::default(),
        })
    }

    /// The record of one change. `before` and `after` are the rows pgoutput sent;
    /// a key-only `before` (`key_only_before`, replica identity default) is completed as
    /// Debezium completes it. A truncate has neither.
    pub fn record(
        &self,
        shape: &TableShape,
        op: Op,
        before: Option<&Tuple>,
        key_only_before: bool,
        after: Option<&Tuple>,
        origin: &Origin,
    ) -> Result<PreparedRecord, EnvelopeError> {
        Ok(PreparedRecord {
            schemas: shape.schemas.clone(),
            op,
            before: before.map(|tuple| self.row(shape, tuple, key_only_before)).transpose()?,
            after: after.map(|tuple| self.row(shape, tuple, false)).transpose()?,
            source: self.source(shape, origin)?,
            ts_us: now_micros(),
        })
    }

    /// The `source` block of a change: built and read once for the changes of one origin.
    fn source(&self, shape: &TableShape, origin: &Origin) -> Result<Arc<PreparedSource>, EnvelopeError> {
        let mut last = shape.last_source.lock().expect("source block cache poisoned");
        if let Some((last_origin, source)) = &*last
            && last_origin == origin
        {
            return Ok(source.clone());
        }
        let Json::Object(block) = self.source_block(shape, origin) else { unreachable!("an object") };
        let source = Arc::new(
            PreparedSource::new(&block)
                .map_err(|source| EnvelopeError::Schema { table: qualified(shape), source })?,
        );
        *last = Some((*origin, source.clone()));
        Ok(source)
    }

    /// A row as Debezium writes it, a value per column. In a key-only old row the columns
    /// outside the key are nulls that pgoutput did not send: Debezium gives a NOT NULL one its
    /// type's empty value.
    fn row(&self, shape: &TableShape, tuple: &Tuple, key_only: bool) -> Result<Vec<Json>, EnvelopeError> {
        let columns = &shape.relation.columns;
        if tuple.len() != columns.len() {
            return Err(EnvelopeError::Shape {
                table: qualified(shape),
                expected: columns.len(),
                found: tuple.len(),
            });
        }
        let mut row = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            let value = if key_only && !column.key && shape.not_null[i] {
                empty_value(column.ty)
            } else {
                self.cell(shape, i, tuple.get(i))?
            };
            row.push(value);
        }
        Ok(row)
    }

    fn cell(&self, shape: &TableShape, i: usize, cell: Option<&Cell>) -> Result<Json, EnvelopeError> {
        let column = &shape.relation.columns[i];
        match cell {
            Some(Cell::Text(text)) => values::field_value(column.ty, text).map_err(|source| {
                EnvelopeError::Value { table: qualified(shape), column: column.name.clone(), source }
            }),
            Some(Cell::UnchangedToast) => Ok(match schema_type(column.ty) {
                Some("bytes") => json!(UNAVAILABLE_BASE64),
                Some("array") => json!([UNAVAILABLE]),
                _ => json!(UNAVAILABLE),
            }),
            Some(Cell::Null) | None => Ok(Json::Null),
        }
    }

    fn source_block(&self, shape: &TableShape, origin: &Origin) -> Json {
        let snapshot = match origin.snapshot {
            None => "false",
            Some(SnapshotMark::Row) => "true",
            Some(SnapshotMark::Last) => "last",
        };
        let sequence = json!([origin.last_commit_lsn.map(|lsn| lsn.to_string()), origin.lsn.to_string()]);
        json!({
            "version": DEBEZIUM_VERSION,
            "connector": "postgresql",
            "name": self.server,
            "ts_ms": origin.commit_time_micros / 1000,
            "snapshot": snapshot,
            "db": self.database,
            "sequence": sequence.to_string(),
            "ts_us": origin.commit_time_micros,
            "ts_ns": origin.commit_time_micros.saturating_mul(1000),
            "schema": shape.relation.schema,
            "table": shape.relation.table,
            "txId": origin.xid,
            "lsn": origin.lsn,
            "xmin": null,
        })
    }
}

/// The Connect type of a column's schema.
fn schema_type(ty: values::PgType) -> Option<&'static str> {
    match values::field_schema("", ty, true).get("type").and_then(Json::as_str) {
        Some("bytes") => Some("bytes"),
        Some("array") => Some("array"),
        Some("string") => Some("string"),
        Some("boolean") => Some("boolean"),
        Some("struct") => Some("struct"),
        Some("float" | "double") => Some("float"),
        Some(_) => Some("integer"),
        None => None,
    }
}

/// The empty value of a type, as Debezium fills a required column it has no value for.
fn empty_value(ty: values::PgType) -> Json {
    match schema_type(ty) {
        Some("string" | "bytes") => json!(""),
        Some("boolean") => json!(false),
        Some("float") => json!(0.0),
        Some("integer") => json!(0),
        Some("array") => json!([]),
        _ => Json::Null,
    }
}

fn qualified(shape: &TableShape) -> String {
    format!("{}.{}", shape.relation.schema, shape.relation.table)
}

/// Now, in microseconds since the Unix epoch.
pub(super) fn now_micros() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

fn source_schema() -> Json {
    let field =
        |name: &str, kind: &str, optional: bool| json!({"type": kind, "optional": optional, "field": name});
    json!({
        "type": "struct",
        "fields": [
            field("version", "string", false), field("connector", "string", false),
            field("name", "string", false), field("ts_ms", "int64", false),
            {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
             "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
             "default": "false", "field": "snapshot"},
            field("db", "string", false), field("sequence", "string", true),
            field("ts_us", "int64", true), field("ts_ns", "int64", true),
            field("schema", "string", false), field("table", "string", false),
            field("txId", "int64", true), field("lsn", "int64", true), field("xmin", "int64", true),
        ],
        "optional": false,
        "name": "io.debezium.connector.postgresql.Source",
        "version": 1,
        "field": "source",
    })
}

fn transaction_schema() -> Json {
    json!({
        "type": "struct",
        "fields": [
            {"type": "string", "optional": false, "field": "id"},
            {"type": "int64", "optional": false, "field": "total_order"},
            {"type": "int64", "optional": false, "field": "data_collection_order"},
        ],
        "optional": true,
        "name": "event.block",
        "version": 1,
        "field": "transaction",
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value as Json;

    use super::*;
    use crate::event::{Position, WalPosition};
    use crate::source::postgres::pgoutput::RelationColumn;
    use crate::source::postgres::values::PgType;

    /// The messages Debezium wrote for the fixture's `all_types` table.
    fn fixture() -> Vec<Json> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/debezium/debezium-pg-all_types-schema.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
    }

    /// `all_types` as pgoutput describes it (numeric(12,3) has typmod (12 << 16 | 3) + 4).
    fn all_types() -> (Relation, Vec<bool>) {
        let numeric = |precision: i32, scale: i32| ((precision << 16) | scale) + 4;
        let columns = [
            ("id", 23, -1),
            ("num_fixed", 1700, numeric(12, 3)),
            ("num_any", 1700, -1),
            ("money_like", 1700, numeric(10, 2)),
            ("ts", 1114, -1),
            ("tstz", 1184, -1),
            ("d", 1082, -1),
            ("t", 1083, -1),
            ("j", 114, -1),
            ("jb", 3802, -1),
            ("u", 2950, -1),
            ("int_arr", 1007, -1),
            ("text_arr", 1009, -1),
            ("b", 16, -1),
            ("by", 17, -1),
            ("f8", 701, -1),
            ("big", 20, -1),
        ];
        let relation = Relation {
            id: 16400,
            schema: "public".into(),
            table: "all_types".into(),
            replica_identity: b'd',
            columns: columns
                .iter()
                .map(|(name, oid, modifier)| RelationColumn {
                    name: (*name).into(),
                    ty: PgType { oid: *oid, modifier: *modifier },
                    key: *name == "id",
                })
                .collect(),
        };
        let not_null = columns.iter().map(|(name, ..)| *name == "id").collect();
        (relation, not_null)
    }

    /// Drops the propagated source-type parameters (the fixture was captured without them),
    /// and a parameters object they leave empty.
    fn without_source_types(mut json: Json) -> Json {
        match &mut json {
            Json::Object(map) => {
                if let Some(Json::Object(parameters)) = map.get_mut("parameters") {
                    parameters.retain(|key, _| !key.starts_with("__debezium.source.column"));
                    if parameters.is_empty() {
                        map.remove("parameters");
                    }
                }
                for value in map.values_mut() {
                    *value = without_source_types(value.take());
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|item| *item = without_source_types(item.take())),
            _ => {}
        }
        json
    }

    /// The value payload of a record, as its bytes carry it.
    fn payload(record: &PreparedRecord) -> Json {
        let value: Json = serde_json::from_slice(&record.value_bytes()).unwrap();
        value["payload"].clone()
    }

    fn writer() -> EnvelopeWriter {
        EnvelopeWriter { server: "pg".into(), database: "inventory".into() }
    }

    fn origin() -> Origin {
        Origin {
            commit_time_micros: 1_795_779_194_139_739,
            xid: Some(751),
            lsn: 26_709_432,
            last_commit_lsn: None,
            snapshot: None,
        }
    }

    #[test]
    fn records_carry_the_key_and_value_schemas_debezium_writes() {
        let fixture = fixture();
        let (relation, not_null) = all_types();
        let shape = writer().shape(relation, not_null).unwrap();
        let nulls: Tuple =
            std::iter::once(Cell::Text("3".into())).chain(std::iter::repeat_n(Cell::Null, 16)).collect();
        let record = writer().record(&shape, Op::Create, None, false, Some(&nulls), &origin()).unwrap();
        let key: Json = serde_json::from_slice(&record.key_bytes().expect("a keyed table has keys")).unwrap();
        let value: Json = serde_json::from_slice(&record.value_bytes()).unwrap();
        let expected = &fixture[2];
        assert_eq!(without_source_types(key), expected["key"]);
        assert_eq!(without_source_types(value["schema"].clone()), expected["value"]["schema"]);
        let (payload, expected) = (&value["payload"], &expected["value"]["payload"]);
        for field in ["before", "after", "op", "transaction"] {
            assert_eq!(payload[field], expected[field], "{field}");
        }
        // Times and positions are the transaction's own.
        for field in ["version", "connector", "name", "snapshot", "db", "schema", "table", "xmin"] {
            assert_eq!(payload["source"][field], expected["source"][field], "source.{field}");
        }
    }

    /// A row of every type of `all_types`, as pgoutput sends it.
    fn all_types_row() -> Tuple {
        [
            "1",
            "12345.678",
            "3.14159265358979",
            "99.95",
            "2024-01-02 03:04:05.123456",
            "2024-01-02 01:04:05.123456+00",
            "2024-01-02",
            "13:14:15.5",
            "{\"a\": 1}",
            "{\"b\": [1, 2]}",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{1,2,3}",
            "{x,\"y z\"}",
            "t",
            "\\xdeadbeef",
            "15000000000",
            "9007199254740993",
        ]
        .into_iter()
        .map(|text| Cell::Text(text.into()))
        .collect()
    }

    #[test]
    fn a_record_decodes_column_by_column_as_its_bytes_decode() {
        let (relation, not_null) = all_types();
        let shape = writer().shape(relation, not_null).unwrap();
        let row = all_types_row();
        let mut toasted = row.clone();
        toasted[9] = Cell::UnchangedToast;
        toasted[14] = Cell::UnchangedToast;
        let key_only: Tuple =
            std::iter::once(Cell::Text("1".into())).chain(std::iter::repeat_n(Cell::Null, 16)).collect();
        let changes = [
            (Op::Create, None, false, Some(&row)),
            (Op::Update, Some(&row), false, Some(&toasted)),
            (Op::Update, None, false, Some(&toasted)),
            (Op::Delete, Some(&key_only), true, None),
            (Op::Delete, Some(&row), false, None),
            (Op::Truncate, None, false, None),
        ];
        for (index, (op, before, key_only, after)) in changes.into_iter().enumerate() {
            let record = writer().record(&shape, op, before, key_only, after, &origin()).unwrap();
            let position = Position::Wal {
                topic: shape.topic.clone(),
                position: WalPosition { commit_lsn: 26_709_432, index: index as u64 },
            };
            assert!(
                record.decode_columns(position.clone()).is_some(),
                "{op:?} #{index} typed column by column"
            );
            let from_columns = record.decode(position.clone()).unwrap();
            let value = record.value_bytes();
            let from_bytes =
                decode::decode_json(record.key_bytes().as_deref(), Some(&value), position).unwrap();
            assert_eq!(from_columns, from_bytes, "{op:?} #{index}");
            let decode::Decoded::Change(event) = from_columns else { panic!("a change") };
            assert_eq!(event.key.is_some(), op != Op::Truncate, "{op:?} #{index}");
        }
    }

    #[test]
    fn the_changes_of_one_transaction_share_their_source_block() {
        let (relation, not_null) = all_types();
        let shape = writer().shape(relation, not_null).unwrap();
        let row = all_types_row();
        let first = writer().record(&shape, Op::Create, None, false, Some(&row), &origin()).unwrap();
        let second = writer().record(&shape, Op::Create, None, false, Some(&row), &origin()).unwrap();
        assert!(Arc::ptr_eq(&first.source, &second.source));
        let next = Origin { lsn: origin().lsn + 100, last_commit_lsn: Some(origin().lsn), ..origin() };
        let third = writer().record(&shape, Op::Create, None, false, Some(&row), &next).unwrap();
        assert_eq!(third.source.block().get("lsn"), Some(json!(next.lsn)));
        assert_eq!(first.source.block().get("lsn"), Some(json!(origin().lsn)));
    }

    #[test]
    fn a_key_only_old_row_is_completed_as_debezium_completes_it() {
        let (mut relation, mut not_null) = all_types();
        relation.columns.truncate(3);
        not_null.truncate(3);
        not_null[1] = true;
        let shape = writer().shape(relation, not_null).unwrap();
        let old: Tuple = vec![Cell::Text("3".into()), Cell::Null, Cell::Null];
        let value = payload(&writer().record(&shape, Op::Delete, Some(&old), true, None, &origin()).unwrap());
        // A NOT NULL decimal gets the empty bytes, a nullable one null.
        assert_eq!(value["before"], serde_json::json!({"id": 3, "num_fixed": "", "num_any": null}));
        assert_eq!(value["op"], "d");
    }

    #[test]
    fn an_unchanged_toast_value_is_debeziums_placeholder() {
        let (relation, not_null) = all_types();
        let shape = writer().shape(relation, not_null).unwrap();
        let mut row: Tuple =
            std::iter::once(Cell::Text("1".into())).chain(std::iter::repeat_n(Cell::Null, 16)).collect();
        row[9] = Cell::UnchangedToast;
        row[14] = Cell::UnchangedToast;
        let value =
            payload(&writer().record(&shape, Op::Update, None, false, Some(&row), &origin()).unwrap());
        assert_eq!(value["after"]["jb"], UNAVAILABLE);
        assert_eq!(value["after"]["by"], UNAVAILABLE_BASE64);
    }
}
