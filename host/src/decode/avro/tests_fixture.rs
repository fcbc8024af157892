//! Every event of `debezium-pg-avro.json`, decoded from its wire bytes with the schemas the
//! fixture registered: against the values the fixture shows decoded, and against the
//! JsonConverter-with-schema fixtures where the same rows were captured.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value as Json, json};

use super::{AvroSchema, decode_checked};
use crate::decode::tests::all_types::all_types_row_2;
use crate::decode::tests::{FIXTURES, PG_ALL_TYPES_SCHEMA, PG_CUSTOMERS_SCHEMA, dec, find, text};
use crate::decode::{Decoded, Error};
use crate::event::{ChangeEvent, Op, Position, Row, TableId, Value};

const PG_AVRO: &str = "debezium-pg-avro.json";

struct Fixture {
    schemas: HashMap<u32, Arc<AvroSchema>>,
    events: Vec<Json>,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(format!("{FIXTURES}{PG_AVRO}")).expect("fixture is readable");
    let mut fixture: Json = serde_json::from_str(&text).expect("fixture is JSON");
    let registered = fixture["registered_schemas_by_id"].as_object().expect("schemas by id");
    let schemas = registered
        .iter()
        .map(|(id, schema)| {
            let schema = AvroSchema::from_json(schema).unwrap_or_else(|e| panic!("schema {id}: {e}"));
            (id.parse().expect("numeric id"), Arc::new(schema))
        })
        .collect();
    let Json::Array(events) = fixture["events"].take() else { panic!("events is a list") };
    Fixture { schemas, events }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn position(event: &Json) -> Position {
    let partition = event["partition"].as_i64().unwrap_or(0);
    Position::Kafka {
        topic: Arc::from(event["topic"].as_str().expect("topic")),
        partition: i32::try_from(partition).expect("partition"),
        offset: event["offset"].as_i64().expect("offset"),
    }
}

impl Fixture {
    fn decode(&self, event: &Json) -> Result<Decoded, Error> {
        let key = event["key_raw_hex"].as_str().map(hex);
        let value = event["value_raw_hex"].as_str().map(hex);
        let lookup = |id| self.schemas.get(&id).cloned();
        let (decoded, planned) = decode_checked(lookup, key.as_deref(), value.as_deref(), position(event));
        // Every change Debezium wrote here is one the plan reads straight from its bytes.
        if let Ok(Decoded::Change(_)) = &decoded {
            assert!(planned, "the plan did not decode offset {}", event["offset"]);
        }
        decoded
    }

    fn change(&self, event: &Json) -> ChangeEvent {
        match self.decode(event) {
            Ok(Decoded::Change(change)) => change,
            other => panic!("offset {}: expected a change, got {other:?}", event["offset"]),
        }
    }

    fn find(&self, table: &str, id: i64) -> ChangeEvent {
        let event = self
            .events
            .iter()
            .find(|e| e["topic"].as_str().is_some_and(|t| t.ends_with(table)) && e["key"]["id"] == id);
        self.change(event.unwrap_or_else(|| panic!("no {table} event for id {id}")))
    }
}

/// A typed value in the fixture's notation of decoded values.
fn notation(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) | Value::Time(i) | Value::Timestamp(i) => json!(i),
        Value::Date(days) => json!(days),
        Value::Float(f) => json!(f),
        Value::Decimal(d) => json!({"$decimal": d.as_str()}),
        Value::Text(s) | Value::TimestampTz(s) | Value::Json(s) | Value::Uuid(s) => json!(s),
        Value::Bytes(b) => json!({"$bytes_b64": BASE64.encode(b)}),
        Value::Array(items) => Json::Array(items.iter().map(notation).collect()),
        Value::Unavailable => json!("__debezium_unavailable_value"),
    }
}

fn row_notation(row: Option<&Row>) -> Json {
    row.map_or(Json::Null, |row| row.iter().map(|(name, value)| (name.to_owned(), notation(value))).collect())
}

/// The fixture's decoded row, with each `VariableScaleDecimal` struct as the decimal it stands for.
fn normalised(row: &Json) -> Json {
    let Json::Object(row) = row else { return row.clone() };
    let column = |value: &Json| match (value["scale"].as_u64(), value["value"]["$bytes_b64"].as_str()) {
        (Some(scale), Some(bytes)) => {
            let bytes = BASE64.decode(bytes).expect("base64");
            let scale = u32::try_from(scale).expect("scale");
            json!({"$decimal": crate::decode::logical::decimal_from_unscaled_bytes(&bytes, scale).as_str()})
        }
        _ => value.clone(),
    };
    row.iter().map(|(name, value)| (name.clone(), column(value))).collect()
}

#[test]
fn every_event_decodes_to_the_values_the_fixture_shows() {
    let fixture = fixture();
    let mut changes = 0;
    for event in &fixture.events {
        let offset = format!("{} at {}", event["topic"], event["offset"]);
        let value = &event["value"];
        if value.is_null() {
            assert!(matches!(fixture.decode(event), Ok(Decoded::Tombstone)), "{offset}");
            continue;
        }
        let change = fixture.change(event);
        assert_eq!(Some(change.op), value["op"].as_str().and_then(Op::from_code), "{offset}");
        assert_eq!(row_notation(change.key.as_ref()), event["key"], "{offset}");
        assert_eq!(row_notation(change.before.as_ref()), normalised(&value["before"]), "{offset}");
        assert_eq!(row_notation(change.after.as_ref()), normalised(&value["after"]), "{offset}");
        assert_eq!(Json::Object(change.source.raw.to_map()), value["source"], "{offset}");
        assert_eq!(change.source.snapshot, change.op == Op::Read, "{offset}");
        assert_eq!(change.source.txid, value["source"]["txId"].as_i64(), "{offset}");
        assert_eq!(change.source.lsn, value["source"]["lsn"].as_i64(), "{offset}");
        assert_eq!(change.source.commit_ts_ms, value["source"]["ts_ms"].as_i64(), "{offset}");
        assert_eq!(change.ts_ms, value["ts_ms"].as_i64(), "{offset}");
        let table = value["source"]["table"].as_str().expect("table");
        let expected = TableId {
            database: Some("inventory".into()),
            schema: Some("public".into()),
            table: table.into(),
        };
        assert_eq!(change.table, expected, "{offset}");
        assert_eq!(change.position, position(event), "{offset}");
        let columns = change.columns.expect("columns from the avro schema");
        let expected = if table == "customers" { 3 } else { 17 };
        assert_eq!(columns.len(), expected, "{offset}");
        changes += 1;
    }
    assert_eq!((changes, fixture.events.len()), (11, 12));
}

#[test]
fn all_types_columns_are_typed_exactly() {
    let event = fixture().find("all_types", 2);
    let expected = all_types_row_2();
    assert_eq!(event.after, Some(expected));
    let row = fixture().find("all_types", 1).after.expect("after");
    // 2^53 + 1: an integer a float could not hold.
    assert_eq!(row.get("big"), Some(&Value::Int(9_007_199_254_740_993)));
    assert_eq!(row.get("num_any"), Some(&dec("3.14159265358979")));
}

#[test]
fn a_delete_under_default_replica_identity_has_the_key_only() {
    let fixture = fixture();
    let event = fixture.events.iter().find(|e| e["value"]["op"] == "d").expect("a delete");
    let change = fixture.change(event);
    let before = Row::from(vec![
        ("id".into(), Value::Int(8)),
        ("name".into(), text("")),
        ("email".into(), Value::Null),
    ]);
    assert_eq!((change.op, change.before, change.after), (Op::Delete, Some(before), None));
}

#[test]
fn rows_captured_by_both_converters_decode_to_the_same_values_and_columns() {
    let fixture = fixture();
    // The JsonConverter capture's last change of each row that the Avro capture shows in the
    // same state (the two captures are separate runs of the same script).
    let twins = [
        (PG_ALL_TYPES_SCHEMA, "all_types", 2, "c"),
        (PG_ALL_TYPES_SCHEMA, "all_types", 1, "u"),
        (PG_ALL_TYPES_SCHEMA, "all_types", 4, "u"),
        (PG_CUSTOMERS_SCHEMA, "customers", 1, "u"),
        (PG_CUSTOMERS_SCHEMA, "customers", 3, "u"),
    ];
    for (json_file, table, id, op) in twins {
        let twin = find(json_file, op, id);
        let avro = fixture.find(table, id);
        assert_eq!((avro.op, &avro.key, &avro.table), (Op::Read, &twin.key, &twin.table));
        assert_eq!(avro.columns, twin.columns, "{table} columns");
        let (avro_row, twin_row) = (avro.after.expect("avro after"), twin.after.expect("json after"));
        assert_eq!(avro_row.len(), twin_row.len(), "{table} {id}");
        for (name, value) in &avro_row {
            assert_eq!(Some(value), twin_row.get(name), "{table} {id} {name}");
        }
    }
}
