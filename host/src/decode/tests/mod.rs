//! Decodes every message of the captured Debezium fixtures (`tests/fixtures/debezium/`).
//!
//! The shared helpers are here; each child holds one suite.

use std::sync::Arc;

use serde_json::Value as Json;

use super::{Decoded, Error, decode_json};

pub(super) mod all_types;
mod envelope;
mod errors;
use crate::event::{
    ChangeEvent, Column, Decimal, Op, Position, Row, TableId, Value, to_debezium_key, to_debezium_value,
};

pub(super) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/debezium/");
pub(super) const PG_CUSTOMERS_SCHEMA: &str = "debezium-pg-customers-schema.json";
pub(super) const PG_CUSTOMERS_NOSCHEMA: &str = "debezium-pg-customers-noschema.json";
pub(super) const PG_ALL_TYPES_SCHEMA: &str = "debezium-pg-all_types-schema.json";
pub(super) const PG_ALL_TYPES_NOSCHEMA: &str = "debezium-pg-all_types-noschema.json";
pub(super) const PG_ALL_TYPES_DECIMAL_STRING: &str = "debezium-pg-all_types-noschema-decimal-string.json";
pub(super) const MARIADB_CUSTOMERS: &str = "debezium-mariadb-customers-noschema.json";
pub(super) const MARIADB_SCHEMA_CHANGES: &str = "debezium-mariadb-schema-change-topic-noschema.json";
/// Every JSON fixture (the Avro one belongs to the Avro decoder).
pub(super) const ALL: [&str; 7] = [
    PG_CUSTOMERS_SCHEMA,
    PG_CUSTOMERS_NOSCHEMA,
    PG_ALL_TYPES_SCHEMA,
    PG_ALL_TYPES_NOSCHEMA,
    PG_ALL_TYPES_DECIMAL_STRING,
    MARIADB_CUSTOMERS,
    MARIADB_SCHEMA_CHANGES,
];

/// The messages of a fixture file.
pub(super) fn messages(file: &str) -> Vec<Json> {
    let text = std::fs::read_to_string(format!("{FIXTURES}{file}")).expect("fixture is readable");
    let Json::Array(messages) = serde_json::from_str(&text).expect("fixture is JSON") else {
        panic!("fixture {file} is not a list");
    };
    messages
}

/// The wire bytes of a key or value, as JsonConverter wrote them (`None` for null).
pub(super) fn wire(part: &Json) -> Option<Vec<u8>> {
    (!part.is_null()).then(|| serde_json::to_vec(part).expect("serialisable"))
}

pub(super) fn position(message: &Json) -> Position {
    Position::Kafka {
        topic: Arc::from(message["topic"].as_str().expect("topic")),
        partition: message["partition"].as_i64().and_then(|p| i32::try_from(p).ok()).expect("partition"),
        offset: message["offset"].as_i64().expect("offset"),
    }
}

pub(super) fn decode(message: &Json) -> Result<Decoded, Error> {
    let (key, value) = (wire(&message["key"]), wire(&message["value"]));
    decode_json(key.as_deref(), value.as_deref(), position(message))
}

pub(super) fn change(message: &Json) -> ChangeEvent {
    match decode(message) {
        Ok(Decoded::Change(event)) => event,
        other => panic!("expected a change at offset {}, got {other:?}", message["offset"]),
    }
}

/// The decoded change of the message for row `id` with op `op`.
pub(super) fn find(file: &str, op: &str, id: i64) -> ChangeEvent {
    let messages = messages(file);
    let message = messages
        .iter()
        .find(|m| m["op"] == op && key_id(m) == id)
        .unwrap_or_else(|| panic!("{file} has no {op} for id {id}"));
    change(message)
}

pub(super) fn key_id(message: &Json) -> i64 {
    let key = &message["key"];
    key.get("payload").unwrap_or(key)["id"].as_i64().expect("key id")
}

pub(super) fn id_key(id: i64) -> Option<Row> {
    Some(Row::from(vec![("id".into(), Value::Int(id))]))
}

pub(super) fn dec(text: &str) -> Value {
    Value::Decimal(Decimal::parse(text).expect("decimal literal"))
}

pub(super) fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub(super) fn after(event: &ChangeEvent) -> &Row {
    event.after.as_ref().expect("after row")
}

#[test]
fn every_message_of_every_json_fixture_decodes_to_its_op() {
    let mut decoded = 0;
    for file in ALL {
        for message in messages(file) {
            let offset = &message["offset"];
            let label = message["op"].as_str();
            match (label, decode(&message)) {
                (Some("tombstone"), Ok(Decoded::Tombstone)) => {}
                (None, Ok(Decoded::SchemaChange(change))) => {
                    assert_eq!(change.position, position(&message))
                }
                (Some(code), Ok(Decoded::Change(event))) => {
                    assert_eq!(Some(event.op), Op::from_code(code), "{file} at {offset}");
                    let topic = message["topic"].as_str().expect("topic");
                    let table = topic.rsplit('.').next().expect("table segment");
                    let schema = (!file.contains("mariadb")).then(|| "public".to_owned());
                    let expected =
                        TableId { database: Some("inventory".into()), schema, table: table.into() };
                    assert_eq!(event.table, expected, "{file} at {offset}");
                    assert_eq!(event.key, id_key(key_id(&message)), "{file} at {offset}");
                    assert_eq!(event.columns.is_some(), file.ends_with("-schema.json"), "{file}");
                    assert_eq!(event.source.snapshot, code == "r", "{file} at {offset}");
                    assert_eq!(event.position, position(&message));
                }
                (label, other) => {
                    panic!("{file} at {offset}: label {label:?} decoded to {other:?}")
                }
            }
            decoded += 1;
        }
    }
    assert_eq!(decoded, 10 + 6 + 8 + 7 + 7 + 7 + 9);
}
