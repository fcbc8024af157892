//! The wire form, checked against records written exactly as the host's `event::json::to_wire`
//! writes them (compact JSON, fields in its order, every tagged type).

use cdc_sdk::{Event, Op, Row, TableId, Value, row};

/// One record as the host writes it, with every tagged type and every plain type.
const EVERY_TYPE: &str = concat!(
    r#"{"op":"u","table":{"database":"db","schema":"public","table":"t"},"#,
    r#""key":{"id":7},"#,
    r#""before":{"id":7,"doc":{"$unavailable":true}},"#,
    r#""after":{"id":7,"flag":true,"nothing":null,"name":"Ada","neg":-3,"#,
    r#""price":{"$decimal":"12.340"},"ratio":{"$float":"2"},"frac":0.25,"#,
    r#""blob":{"$bytes":"AP8Q"},"born":{"$date":19000},"at":{"$time":3600000000},"#,
    r#""seen":{"$timestamp":1700000000123456},"seentz":{"$timestamptz":"2024-01-02T03:04:05.123456Z"},"#,
    r#""doc":{"$json":"{\"a\":[1,2]}"},"uid":{"$uuid":"6f1c8a4e-3f1b-4b8a-9a55-2d6c1f0e9b11"},"#,
    r#""tags":["a",null,3,{"$decimal":"-0.5"}],"toast":{"$unavailable":true}},"#,
    r#""source":{"version":"2.7.0","connector":"postgresql","lsn":1234,"snapshot":"false"},"#,
    r#""ts_ms":5,"id":"cdc.public.t/0/9"}"#
);

fn every_type_event() -> Event {
    let mut event = Event::update(
        TableId { database: Some("db".into()), schema: Some("public".into()), table: "t".into() },
        row! {
            "id" => 7,
            "flag" => true,
            "nothing" => Value::Null,
            "name" => "Ada",
            "neg" => -3,
            "price" => Value::Decimal("12.340".into()),
            "ratio" => 2.0,
            "frac" => 0.25,
            "blob" => Value::Bytes(vec![0, 255, 16]),
            "born" => Value::Date(19_000),
            "at" => Value::Time(3_600_000_000),
            "seen" => Value::Timestamp(1_700_000_000_123_456),
            "seentz" => Value::TimestampTz("2024-01-02T03:04:05.123456Z".into()),
            "doc" => Value::Json(r#"{"a":[1,2]}"#.into()),
            "uid" => Value::Uuid("6f1c8a4e-3f1b-4b8a-9a55-2d6c1f0e9b11".into()),
            "tags" => Value::Array(vec!["a".into(), Value::Null, 3.into(), Value::Decimal("-0.5".into())]),
            "toast" => Value::Unavailable,
        },
    )
    .with_key(row! {"id" => 7})
    .with_before(row! {"id" => 7, "doc" => Value::Unavailable})
    .with_ts_ms(5)
    .with_id("cdc.public.t/0/9");
    for (field, value) in [
        ("version", serde_json::json!("2.7.0")),
        ("connector", serde_json::json!("postgresql")),
        ("lsn", serde_json::json!(1234)),
        ("snapshot", serde_json::json!("false")),
    ] {
        event = event.with_source(field, value);
    }
    event
}

#[test]
fn every_type_decodes_to_its_variant() {
    assert_eq!(Event::from_wire(EVERY_TYPE.as_bytes()).unwrap(), every_type_event());
}

#[test]
fn every_type_encodes_byte_for_byte_as_the_host_does() {
    assert_eq!(String::from_utf8(every_type_event().to_wire()).unwrap(), EVERY_TYPE);
}

#[test]
fn decode_then_encode_is_the_identity_on_host_records() {
    let event = Event::from_wire(EVERY_TYPE.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(event.to_wire()).unwrap(), EVERY_TYPE);
}

/// Wire text of one value, as the host writes it.
fn encode(value: Value) -> String {
    serde_json::to_string(&value).unwrap()
}

fn decode(value: &str) -> Result<Value, String> {
    let record = format!(r#"{{"op":"c","table":{{"table":"t"}},"after":{{"v":{value}}}}}"#);
    let event = Event::from_wire(record.as_bytes()).map_err(|error| error.to_string())?;
    Ok(event.after.unwrap().get("v").unwrap().clone())
}

#[test]
fn each_tagged_type_round_trips_alone() {
    let cases = [
        (r#"{"$decimal":"-0.001"}"#, Value::Decimal("-0.001".into())),
        (r#"{"$decimal":"7"}"#, Value::Decimal("7".into())),
        (r#"{"$float":"1"}"#, Value::Float(1.0)),
        (r#"{"$float":"-0"}"#, Value::Float(-0.0)),
        (r#"{"$float":"inf"}"#, Value::Float(f64::INFINITY)),
        (r#"{"$float":"-inf"}"#, Value::Float(f64::NEG_INFINITY)),
        (r#"{"$float":"100000000000000000000"}"#, Value::Float(1e20)),
        (r#"{"$bytes":""}"#, Value::Bytes(Vec::new())),
        (r#"{"$bytes":"aGk="}"#, Value::Bytes(b"hi".to_vec())),
        (r#"{"$date":-1}"#, Value::Date(-1)),
        (r#"{"$time":0}"#, Value::Time(0)),
        (r#"{"$timestamp":-86400000000}"#, Value::Timestamp(-86_400_000_000)),
        (
            r#"{"$timestamptz":"2024-01-02T03:04:05+02:00"}"#,
            Value::TimestampTz("2024-01-02T03:04:05+02:00".into()),
        ),
        (r#"{"$json":"null"}"#, Value::Json("null".into())),
        (
            r#"{"$uuid":"00000000-0000-0000-0000-000000000000"}"#,
            Value::Uuid("00000000-0000-0000-0000-000000000000".into()),
        ),
        (r#"{"$unavailable":true}"#, Value::Unavailable),
        ("-1.5e-7", Value::Float(-1.5e-7)),
        ("9223372036854775807", Value::Int(i64::MAX)),
        (r#""{\"$decimal\":\"1\"}""#, Value::Text(r#"{"$decimal":"1"}"#.into())),
        ("[[1],[]]", Value::Array(vec![Value::Array(vec![1.into()]), Value::Array(vec![])])),
    ];
    for (wire, value) in cases {
        assert_eq!(decode(wire).as_ref(), Ok(&value), "decoding {wire}");
        assert_eq!(encode(value), wire);
    }
}

#[test]
fn nan_is_a_tagged_float() {
    assert_eq!(encode(Value::Float(f64::NAN)), r#"{"$float":"NaN"}"#);
    assert!(matches!(decode(r#"{"$float":"NaN"}"#), Ok(Value::Float(f)) if f.is_nan()));
}

#[test]
fn numbers_read_as_the_host_reads_them() {
    // Integers beyond i64 are floats, as in the host's `value_from_wire`.
    assert_eq!(decode("18446744073709551615"), Ok(Value::Float(18_446_744_073_709_551_615.0)));
    assert_eq!(decode("1.0"), Ok(Value::Float(1.0)));
}

#[test]
fn bad_values_are_refused_with_their_path() {
    let cases = [
        (r#"{"$money":"1"}"#, "field `after.v`: unknown value tag `$money`"),
        (
            r#"{"$decimal":"1","$json":"2"}"#,
            "field `after.v`: an object value must have exactly one `$type` key",
        ),
        ("{}", "field `after.v`: an object value must have exactly one `$type` key"),
        (r#"{"$decimal":"1e5"}"#, "field `after.v`: not a decimal number"),
        (r#"{"$decimal":1}"#, "field `after.v`: `$decimal` expects a string"),
        (r#"{"$float":"x"}"#, "field `after.v`: not a float"),
        (r#"{"$bytes":"***"}"#, "field `after.v`: not base64"),
        (r#"{"$date":3000000000}"#, "field `after.v`: date out of range"),
        (r#"{"$time":"1"}"#, "field `after.v`: `$time` expects an integer"),
        (r#"[{"$nope":1}]"#, "field `after.v`: unknown value tag `$nope`"),
    ];
    for (wire, message) in cases {
        assert_eq!(decode(wire), Err(message.to_owned()), "decoding {wire}");
    }
}

#[test]
fn bad_records_are_refused_naming_the_field() {
    let cases = [
        ("[]", "field ``: expected an object"),
        (r#"{"op":"x","table":{"table":"t"}}"#, "field `op`: expected one of c, u, d, r, t"),
        (r#"{"op":"c"}"#, "field `table`: expected an object"),
        (r#"{"op":"c","table":{"schema":"s"}}"#, "field `table.table`: expected a string"),
        (r#"{"op":"c","table":{"table":"t","schema":1}}"#, "field `table.schema`: expected a string or null"),
        (r#"{"op":"c","table":{"table":"t"},"after":[]}"#, "field `after`: expected an object or null"),
        (r#"{"op":"c","table":{"table":"t"},"source":1}"#, "field `source`: expected an object"),
        (r#"{"op":"c","table":{"table":"t"},"id":1}"#, "field `id`: expected a string"),
    ];
    for (record, message) in cases {
        let error = Event::from_wire(record.as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), message, "decoding {record}");
    }
    assert!(Event::from_wire(b"{").unwrap_err().to_string().starts_with("record is not valid JSON"));
}

#[test]
fn fields_left_out_read_as_empty() {
    let event = Event::from_wire(br#"{"op":"t","table":{"table":"t"}}"#).unwrap();
    assert_eq!(event, Event::truncate(TableId::new("t")));
    assert_eq!(
        String::from_utf8(event.to_wire()).unwrap(),
        r#"{"op":"t","table":{"database":null,"schema":null,"table":"t"},"key":null,"before":null,"after":null,"source":{},"ts_ms":null,"id":""}"#
    );
}

#[test]
fn column_and_source_order_survive() {
    let record = r#"{"op":"r","table":{"table":"t"},"after":{"z":1,"a":2,"m":3},"source":{"z":1,"a":2}}"#;
    let event = Event::from_wire(record.as_bytes()).unwrap();
    assert_eq!(event.op, Op::Read);
    assert_eq!(event.after.as_ref().unwrap().columns().collect::<Vec<_>>(), ["z", "a", "m"]);
    assert_eq!(event.source.keys().collect::<Vec<_>>(), ["z", "a"]);
    assert!(
        String::from_utf8(event.to_wire())
            .unwrap()
            .contains(r#""after":{"z":1,"a":2,"m":3},"source":{"z":1,"a":2}"#)
    );
}

#[test]
fn serde_reads_and_writes_the_wire_form() {
    let event: Event = serde_json::from_str(EVERY_TYPE).unwrap();
    assert_eq!(serde_json::to_string(&event).unwrap(), EVERY_TYPE);
    let error =
        serde_json::from_str::<Event>(r#"{"op":"c","table":{"table":"t"},"after":{"x":{"$money":1}}}"#);
    assert!(error.unwrap_err().to_string().contains("unknown value tag `$money`"));
}

#[test]
fn validate_finds_decimals_the_host_would_refuse() {
    let bad =
        Event::insert("t", row! {"ok" => Value::Decimal("1.5".into()), "n" => Value::Decimal("1,5".into())});
    assert_eq!(bad.validate().unwrap_err().to_string(), "field `after.n`: `1,5` is not a decimal number");
    let nested =
        Event::insert("t", Row::new()).with_key(row! {"k" => Value::Array(vec![Value::Decimal("".into())])});
    assert_eq!(nested.validate().unwrap_err().to_string(), "field `key.k`: `` is not a decimal number");
    assert!(every_type_event().validate().is_ok());
}
