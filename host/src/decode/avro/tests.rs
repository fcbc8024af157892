//! The Avro decoder on hand-encoded messages: every logical type, the TOAST placeholder, unions,
//! and malformed or hostile input (which must give a record error, never a panic).

use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::{AvroSchema, decode_avro_with, decode_checked, split_confluent};
use crate::decode::tests::{dec, text};
use crate::decode::{Decoded, Error, MessagePart};
use crate::event::{ChangeEvent, Column, Position, Row, Value};
use crate::testing::avro::{bytes, long, some, string};

const PLACEHOLDER: &str = "__debezium_unavailable_value";

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    [vec![0], id.to_be_bytes().to_vec(), body.to_vec()].concat()
}

fn position() -> Position {
    Position::Kafka { topic: Arc::from("t"), partition: 0, offset: 0 }
}

/// A Debezium envelope schema whose rows have these nullable columns.
fn envelope(columns: &[(&str, Json)]) -> Json {
    let fields: Vec<Json> = columns
        .iter()
        .map(|(name, ty)| match ty {
            Json::Array(_) => json!({"name": name, "type": ty}),
            _ => json!({"name": name, "type": ["null", ty], "default": null}),
        })
        .collect();
    json!({
        "type": "record", "name": "Envelope", "namespace": "srv.public.t",
        "fields": [
            {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": fields}]},
            {"name": "after", "type": ["null", "Value"]},
            {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium", "fields": [
                {"name": "connector", "type": "string"},
                {"name": "db", "type": "string"},
                {"name": "schema", "type": "string"},
                {"name": "table", "type": "string"},
                {"name": "snapshot", "type": [{"type": "string", "connect.name": "io.debezium.data.Enum"}, "null"]},
                {"name": "txId", "type": ["null", "long"]},
            ]}},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"]},
        ],
    })
}

/// The body of a create whose after row is `row` (already encoded).
fn create_body(row: &[u8]) -> Vec<u8> {
    let source = [
        string("postgresql"),
        string("db"),
        string("public"),
        string("t"),
        vec![0],
        string("false"),
        some(long(7)),
    ];
    [vec![0], some(row.to_vec()), source.concat(), string("c"), some(long(5))].concat()
}

/// Decodes by the general path, checked against the plan ([`decode_checked`]).
fn decode(schema: &Json, body: &[u8]) -> Result<Decoded, Error> {
    decode_planned(schema, body).0
}

/// The decoded record and whether the plan decoded it.
fn decode_planned(schema: &Json, body: &[u8]) -> (Result<Decoded, Error>, bool) {
    let schema = Arc::new(AvroSchema::from_json(schema).expect("a valid schema"));
    decode_checked(|id| (id == 9).then(|| schema.clone()), None, Some(&framed(9, body)), position())
}

/// The change a create of `row` decodes to; the plan must have decoded it too.
fn created(columns: &[(&str, Json)], row: &[u8]) -> ChangeEvent {
    match decode_planned(&envelope(columns), &create_body(row)) {
        (Ok(Decoded::Change(event)), true) => event,
        (Ok(Decoded::Change(_)), false) => panic!("the plan did not decode a Debezium create"),
        (other, _) => panic!("expected a change, got {other:?}"),
    }
}

fn connect(name: &str, ty: &str) -> Json {
    json!({"type": ty, "connect.version": 1, "connect.name": name})
}

#[test]
fn every_logical_type_decodes_as_on_the_json_path() {
    let vsd = json!({"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
        "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
        "connect.name": "io.debezium.data.VariableScaleDecimal"});
    let columns = [
        (
            "dec",
            json!({"type": "bytes", "scale": 2, "precision": 10, "logicalType": "decimal",
            "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"},
            "connect.name": "org.apache.kafka.connect.data.Decimal"}),
        ),
        ("avro_dec", json!({"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 3})),
        ("vsd", vsd),
        ("ts", connect("io.debezium.time.MicroTimestamp", "long")),
        ("ts_ms", connect("io.debezium.time.Timestamp", "long")),
        ("ts_ns", connect("io.debezium.time.NanoTimestamp", "long")),
        ("d", connect("io.debezium.time.Date", "int")),
        ("t", connect("io.debezium.time.MicroTime", "long")),
        ("t_ms", connect("io.debezium.time.Time", "int")),
        ("tz", connect("io.debezium.time.ZonedTimestamp", "string")),
        ("j", connect("io.debezium.data.Json", "string")),
        ("u", connect("io.debezium.data.Uuid", "string")),
        ("avro_ts", json!({"type": "long", "logicalType": "timestamp-micros"})),
        ("avro_date", json!({"type": "int", "logicalType": "date"})),
        ("small", json!({"type": "int", "connect.type": "int16"})),
        ("f4", json!("float")),
        ("arr", json!({"type": "array", "items": ["null", "int"]})),
        ("by", json!("bytes")),
        ("flag", json!("boolean")),
        ("missing", json!("string")),
    ];
    let row = [
        some(bytes(&[0x27, 0x0b])),
        some(bytes(&[0xff])),
        some([long(1), bytes(&[42])].concat()),
        some(long(1_704_164_645_123_456)),
        some(long(1_500)),
        some(long(1_999)),
        some(long(19_724)),
        some(long(47_655_500_000)),
        some(long(1_000)),
        some(string("2024-01-02T01:04:05.123456Z")),
        some(string(r#"{"a": 1}"#)),
        some(string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
        some(long(-1)),
        some(long(-1)),
        some(long(-300)),
        some(0.1f32.to_le_bytes().to_vec()),
        some([long(3), vec![2], long(1), vec![0], vec![2], long(-2), long(0)].concat()),
        some(bytes(&[0xde, 0xad])),
        some(vec![1]),
        vec![0],
    ];
    let event = created(&columns, &row.concat());
    let expected = Row::from(vec![
        ("dec".into(), dec("99.95")),
        ("avro_dec".into(), dec("-0.001")),
        ("vsd".into(), dec("4.2")),
        ("ts".into(), Value::Timestamp(1_704_164_645_123_456)),
        ("ts_ms".into(), Value::Timestamp(1_500_000)),
        ("ts_ns".into(), Value::Timestamp(1)),
        ("d".into(), Value::Date(19_724)),
        ("t".into(), Value::Time(47_655_500_000)),
        ("t_ms".into(), Value::Time(1_000_000)),
        ("tz".into(), Value::TimestampTz("2024-01-02T01:04:05.123456Z".into())),
        ("j".into(), Value::Json(r#"{"a": 1}"#.into())),
        ("u".into(), Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())),
        ("avro_ts".into(), Value::Timestamp(-1)),
        ("avro_date".into(), Value::Date(-1)),
        ("small".into(), Value::Int(-300)),
        // As JsonConverter writes a float32: its shortest text, not 0.10000000149011612.
        ("f4".into(), Value::Float(0.1)),
        ("arr".into(), Value::Array(vec![Value::Int(1), Value::Null, Value::Int(-2)])),
        ("by".into(), Value::Bytes(vec![0xde, 0xad])),
        ("flag".into(), Value::Bool(true)),
        ("missing".into(), Value::Null),
    ]);
    assert_eq!(event.after, Some(expected));
    assert_eq!((event.ts_ms, event.source.txid, event.source.snapshot), (Some(5), Some(7), false));
    let columns = event.columns.expect("columns");
    let column = |name: &str| columns.iter().find(|c| c.name == name).expect("column").clone();
    let expected = |name: &str, connect: &str, logical: Option<&str>| Column {
        name: name.into(),
        connect_type: connect.into(),
        logical_type: logical.map(str::to_owned),
        optional: true,
        ..Column::default()
    };
    let decimal = expected("dec", "bytes", Some("org.apache.kafka.connect.data.Decimal"));
    assert_eq!(column("dec"), Column { precision: Some(10), scale: Some(2), ..decimal });
    let plain_avro = expected("avro_dec", "bytes", Some("org.apache.kafka.connect.data.Decimal"));
    assert_eq!(column("avro_dec"), Column { precision: Some(5), scale: Some(3), ..plain_avro });
    assert_eq!(column("vsd"), expected("vsd", "struct", Some("io.debezium.data.VariableScaleDecimal")));
    assert_eq!(column("small"), expected("small", "int16", None));
    assert_eq!(column("f4"), expected("f4", "float32", None));
    assert_eq!(
        column("avro_date"),
        expected("avro_date", "int32", Some("org.apache.kafka.connect.data.Date"))
    );
}

#[test]
fn the_unchanged_toast_placeholder_is_unavailable_in_every_form() {
    let columns = [
        ("s", json!("string")),
        ("j", connect("io.debezium.data.Json", "string")),
        ("b", json!("bytes")),
        ("a", json!({"type": "array", "items": ["null", "string"]})),
        ("i", json!({"type": "array", "items": ["null", "int"]})),
    ];
    let ints: Vec<u8> = PLACEHOLDER.bytes().flat_map(|b| [vec![2], long(b.into())].concat()).collect();
    let row = [
        some(string(PLACEHOLDER)),
        some(string(PLACEHOLDER)),
        some(bytes(PLACEHOLDER.as_bytes())),
        some([long(1), some(string(PLACEHOLDER)), long(0)].concat()),
        some([long(PLACEHOLDER.len() as i64), ints, long(0)].concat()),
    ];
    let event = created(&columns, &row.concat());
    for (name, value) in &event.after.expect("after") {
        assert_eq!(value, &Value::Unavailable, "{name}");
    }
}

#[test]
fn non_finite_floats_enums_maps_and_general_unions_have_a_home() {
    let columns = [
        ("f8", json!("double")),
        ("e", json!({"type": "enum", "name": "Mood", "symbols": ["sad", "happy"]})),
        ("m", json!({"type": "map", "values": "long"})),
        ("un", json!(["null", "int", "string"])),
    ];
    let map = [long(1), string("k"), long(4), long(0)].concat();
    let row =
        [some(f64::NAN.to_le_bytes().to_vec()), some(long(1)), some(map), [long(2), string("x")].concat()];
    let row = created(&columns, &row.concat()).after.expect("after");
    assert!(matches!(row.get("f8"), Some(Value::Float(f)) if f.is_nan()));
    assert_eq!(row.get("e"), Some(&text("happy")));
    assert_eq!(row.get("m"), Some(&Value::Json(r#"{"k":4}"#.into())));
    assert_eq!(row.get("un"), Some(&Value::Json(r#"{"string":"x"}"#.into())));
}

#[test]
fn null_values_are_tombstones() {
    let schema = Arc::new(AvroSchema::from_json(&json!(["null", envelope(&[])])).expect("schema"));
    let lookup = |_| Some(schema.clone());
    assert!(matches!(decode_avro_with(lookup, Some(b"\x00"), None, position()), Ok(Decoded::Tombstone)));
    let null = framed(1, &[0]);
    assert!(matches!(decode_avro_with(lookup, None, Some(&null), position()), Ok(Decoded::Tombstone)));
}

#[test]
fn a_schema_change_event_is_recognised() {
    let schema = json!({"type": "record", "name": "SchemaChangeValue", "fields": [
        {"name": "source", "type": {"type": "record", "name": "Source", "fields": [{"name": "table", "type": ["null", "string"]}]}},
        {"name": "databaseName", "type": ["null", "string"]},
        {"name": "ddl", "type": ["null", "string"]},
        {"name": "tableChanges", "type": {"type": "array", "items": {"type": "record", "name": "Change", "fields": [{"name": "id", "type": "string"}]}}},
    ]});
    let body =
        [vec![0], some(string("inventory")), some(string("DROP TABLE x")), long(1), string("x"), long(0)]
            .concat();
    let Ok(Decoded::SchemaChange(change)) = decode(&schema, &body) else { panic!("a schema change") };
    assert_eq!((change.database.as_deref(), change.ddl.as_str()), (Some("inventory"), "DROP TABLE x"));
    assert_eq!(change.table_changes, vec![json!({"id": "x"})]);
}

#[test]
fn bad_headers_are_record_errors_naming_the_part() {
    let error = split_confluent(MessagePart::Key, b"\x01\x00\x00\x00\x01").expect_err("magic");
    assert_eq!(
        error.to_string(),
        "message key is not in the confluent wire format: magic byte is 0x01, expected 0x00"
    );
    let error = split_confluent(MessagePart::Value, b"\x00\x00").expect_err("short");
    assert_eq!(
        error.to_string(),
        "message value is not in the confluent wire format: 2 bytes is shorter than the 5-byte header"
    );
    assert!(split_confluent(MessagePart::Value, b"").is_err());
    assert_eq!(split_confluent(MessagePart::Value, b"\x00\x00\x00\x01\x02").expect("framed"), (258, &[][..]));
    let error = decode_avro_with(|_| None, None, Some(&framed(77, &[])), position()).expect_err("unknown");
    assert_eq!(error.to_string(), "schema id 77 is not registered");
    assert!(!error.is_transient());
}

#[test]
fn bodies_that_do_not_match_their_schema_name_the_field_and_byte() {
    let columns =
        [("n", json!("int")), ("s", json!("string")), ("a", json!({"type": "array", "items": "long"}))];
    let schema = envelope(&columns);
    let body = |row: Vec<u8>| create_body(&row);
    let valid =
        body([some(long(1)), some(string("ok")), some([long(1), long(5), long(0)].concat())].concat());
    assert!(matches!(decode(&schema, &valid), Ok(Decoded::Change(_))));
    let cases = [
        (valid[..8].to_vec(), "after.a", "unexpected end of input"),
        (valid[..10].to_vec(), "after.a[0]", "unexpected end of input"),
        (body([some(long(1 << 40))].concat()), "after.n", "1099511627776 is out of range for an avro int"),
        (body([some(long(1)), some(vec![2, 0xff])].concat()), "after.s", "string is not valid utf-8"),
        (body([some(long(1)), some(long(-3))].concat()), "after.s", "length -3 is negative"),
        (body([some(long(1)), some(long(1_000))].concat()), "after.s", "length 1000 is more than the"),
        (body([vec![6]].concat()), "after.n", "union branch 3 is out of range (2 branches)"),
        (body([some(long(1)), some(string("")), some(long(i64::MAX))].concat()), "after.a", "block of"),
        (
            body(
                [some(long(1)), some(string("")), some([long(1), vec![0xff; 10], vec![1]].concat())].concat(),
            ),
            "after.a[0]",
            "varint is longer than 64 bits",
        ),
        ([body(vec![0, 0, 0]), vec![0]].concat(), "value", "1 bytes left over after the value"),
    ];
    for (body, path, problem) in cases {
        match decode(&schema, &body) {
            Err(Error::AvroBody {
                part: MessagePart::Value,
                schema_id: 9,
                path: p,
                offset,
                problem: found,
            }) => {
                assert_eq!(p, path, "{found}");
                assert!(found.starts_with(problem), "{found}");
                assert!(offset >= 5 && offset <= body.len() + 5, "{offset}");
            }
            other => panic!("{path}: expected a body error, got {other:?}"),
        }
    }
    let error = decode(&schema, &body(vec![4])).expect_err("bad union");
    assert_eq!(
        error.to_string(),
        "message value does not match avro schema 9 at `after.n`, byte 7: union branch 2 is out of range (2 branches)"
    );
}

#[test]
fn values_out_of_their_types_range_are_refused_naming_the_field() {
    let columns = [
        ("small", json!({"type": "int", "connect.type": "int16"})),
        ("ts_ms", connect("io.debezium.time.Timestamp", "long")),
        (
            "dec",
            json!({"type": "bytes", "connect.parameters": {"scale": "99999"},
            "connect.name": "org.apache.kafka.connect.data.Decimal"}),
        ),
    ];
    let schema = envelope(&columns);
    let row = |small: i64, ts: i64| [some(long(small)), some(long(ts)), some(bytes(&[1]))].concat();
    let cases = [
        (row(40_000, 0), "field `after.small`: 40000 is out of range for int16"),
        (row(0, i64::MAX), "field `after.ts_ms`: time out of range"),
        (row(0, 0), "field `after.dec`: decimal scale 99999 is out of range"),
    ];
    for (row, expected) in cases {
        // `decode` also checks that the plan refused what the general path refuses.
        let error = decode(&schema, &create_body(&row)).expect_err(expected);
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn hostile_schemas_and_bodies_fail_without_panicking() {
    // A record that must contain itself: reading it never consumes a byte.
    let endless = json!({"type": "record", "name": "Loop", "fields": [{"name": "next", "type": "Loop"}]});
    let error = decode(&endless, &[]).expect_err("endless");
    assert!(error.to_string().contains("nested deeper than 64 levels"), "{error}");
    // An array of a billion nulls in one byte each way.
    let nulls = json!({"type": "record", "name": "R", "fields": [{"name": "a", "type": {"type": "array", "items": "null"}}]});
    let error = decode(&nulls, &[long(1_000_000_000), long(0)].concat()).expect_err("too many");
    assert!(error.to_string().contains("block of 1000000000 elements"), "{error}");
    for body in [vec![], vec![0xff; 64], vec![0x80; 3], vec![1, 2, 3]] {
        assert!(decode(&envelope(&[("x", json!("string"))]), &body).is_err());
    }
}

#[test]
fn invalid_schemas_are_refused_with_a_reason() {
    for (schema, problem) in [
        ("{", "schema is not JSON"),
        (r#""Nope""#, "unknown type `Nope`"),
        (r#"[["int"]]"#, "a union may not directly contain a union"),
        (
            r#"{"type": "record", "name": "A", "fields": [{"name": "a", "type": {"type": "record", "name": "A", "fields": []}}]}"#,
            "type `A` is defined twice",
        ),
        (r#"{"type": "fixed", "name": "F"}"#, "fixed `F` needs an integer `size`"),
        (r#"{"type": "array"}"#, "an array schema needs `items`"),
        ("[]", "a union needs at least one branch"),
    ] {
        let error = AvroSchema::parse(schema).expect_err(schema);
        assert!(error.to_string().starts_with(&format!("invalid avro schema: {problem}")), "{error}");
    }
    // Each level uses the next twice: 2^20 Connect types from a few kilobytes of schema.
    let mut schema = json!({"type": "record", "name": "R20", "fields": []});
    for level in (0..20).rev() {
        let next = format!("R{}", level + 1);
        schema = json!({"type": "record", "name": format!("R{level}"),
            "fields": [{"name": "x", "type": schema}, {"name": "y", "type": next}]});
    }
    let error = AvroSchema::from_json(&schema).expect_err("too big");
    assert_eq!(error.to_string(), "invalid avro schema: schema expands to too many kafka connect types");
    // Names resolve through the enclosing namespace, and a full name works anywhere.
    let schema = r#"{"type": "record", "name": "a.b.R", "fields": [
        {"name": "x", "type": {"type": "fixed", "name": "F", "size": 2}},
        {"name": "y", "type": "F"}, {"name": "z", "type": "a.b.F"}]}"#;
    assert!(AvroSchema::parse(schema).is_ok());
}
