//! The shared codec against records pinned byte for byte: every value type, written and read
//! back, and each kind of malformed record refused with the path of what is wrong.

use cdc_event::wire::{RecordRef, SourceRef, WireError, WireRecord, read_record, write_record};
use cdc_event::{Decimal, Op, Row, TableId, Value, row};
use serde_json::{Map, json};

/// One record with every tagged type and every plain type, exactly as the codec writes it.
const EVERY_TYPE: &str = concat!(
    r#"{"op":"u","table":{"database":"db","schema":"public","table":"t"},"#,
    r#""key":{"id":7},"#,
    r#""before":{"id":7,"doc":{"$unavailable":true}},"#,
    r#""after":{"id":7,"flag":true,"nothing":null,"name":"Ada \"Lovelace\"\n","neg":-3,"#,
    r#""price":{"$decimal":"12.340"},"ratio":{"$float":"2"},"nan":{"$float":"NaN"},"frac":0.25,"#,
    r#""blob":{"$bytes":"AP8Q"},"born":{"$date":19000},"at":{"$time":3600000000},"#,
    r#""seen":{"$timestamp":1700000000123456},"seentz":{"$timestamptz":"2024-01-02T03:04:05.123456Z"},"#,
    r#""doc":{"$json":"{\"a\":[1,2]}"},"uid":{"$uuid":"6f1c8a4e-3f1b-4b8a-9a55-2d6c1f0e9b11"},"#,
    r#""tags":["a",null,3,{"$decimal":"-0.5"}],"toast":{"$unavailable":true}},"#,
    r#""source":{"version":"2.7.0","connector":"postgresql","lsn":1234,"snapshot":"false"},"#,
    r#""ts_ms":5,"id":"cdc.public.t/0/9"}"#
);

fn decimal(text: &str) -> Value {
    Value::Decimal(Decimal::parse(text).unwrap())
}

fn every_type() -> (TableId, Row, Row, Row, Map<String, serde_json::Value>) {
    let table = TableId { database: Some("db".into()), schema: Some("public".into()), table: "t".into() };
    let key = row! {"id" => 7};
    let before = row! {"id" => 7, "doc" => Value::Unavailable};
    let after = row! {
        "id" => 7,
        "flag" => true,
        "nothing" => Value::Null,
        "name" => "Ada \"Lovelace\"\n",
        "neg" => -3,
        "price" => decimal("12.340"),
        "ratio" => 2.0,
        "nan" => f64::NAN,
        "frac" => 0.25,
        "blob" => Value::Bytes(vec![0, 255, 16]),
        "born" => Value::Date(19_000),
        "at" => Value::Time(3_600_000_000),
        "seen" => Value::Timestamp(1_700_000_000_123_456),
        "seentz" => Value::TimestampTz("2024-01-02T03:04:05.123456Z".into()),
        "doc" => Value::Json(r#"{"a":[1,2]}"#.into()),
        "uid" => Value::Uuid("6f1c8a4e-3f1b-4b8a-9a55-2d6c1f0e9b11".into()),
        "tags" => Value::Array(vec!["a".into(), Value::Null, 3.into(), decimal("-0.5")]),
        "toast" => Value::Unavailable,
    };
    let source = json!({"version": "2.7.0", "connector": "postgresql", "lsn": 1234, "snapshot": "false"});
    (table, key, before, after, source.as_object().unwrap().clone())
}

#[test]
fn every_type_is_written_byte_for_byte() {
    let (table, key, before, after, source) = every_type();
    let mut out = Vec::new();
    write_record(
        &RecordRef {
            op: Op::Update,
            table: &table,
            key: Some(&key),
            before: Some(&before),
            after: Some(&after),
            source: SourceRef::Map(&source),
            ts_ms: Some(5),
            id: &"cdc.public.t/0/9",
        },
        &mut out,
    );
    assert_eq!(String::from_utf8(out).unwrap(), EVERY_TYPE);
}

#[test]
fn every_type_reads_back_as_written() {
    let (table, key, before, after, source) = every_type();
    let record = read_record(EVERY_TYPE.as_bytes()).unwrap();
    assert_eq!(record.op, Some(Op::Update));
    assert_eq!(record.table, Some(table));
    assert_eq!(record.key, Some(Some(key)));
    assert_eq!(record.before, Some(Some(before)));
    assert_eq!(record.source, Some(source));
    assert_eq!(record.ts_ms, Some(Some(5)));
    assert_eq!(record.id.as_deref(), Some("cdc.public.t/0/9"));
    // NaN is not equal to itself: compare the rest, then NaN on its own.
    let mut read = record.after.unwrap().unwrap();
    let mut expected = after;
    assert!(matches!(read.remove("nan"), Some(Value::Float(f)) if f.is_nan()));
    expected.remove("nan");
    assert_eq!(read, expected);
}

#[test]
fn the_codec_agrees_with_a_generic_json_reader() {
    // What the codec writes is plain JSON that any reader takes, with the same content.
    let parsed: serde_json::Value = serde_json::from_str(EVERY_TYPE).unwrap();
    assert_eq!(parsed["after"]["name"], "Ada \"Lovelace\"\n");
    assert_eq!(serde_json::to_string(&parsed).unwrap(), EVERY_TYPE);
}

#[test]
fn fields_left_out_are_absent_and_null_ones_are_present() {
    let record = read_record(br#"{"after": {"id": 8}, "key": null, "extra": [1, {"x": 2}]}"#).unwrap();
    assert_eq!(
        record,
        WireRecord { after: Some(Some(row! {"id" => 8})), key: Some(None), ..WireRecord::default() }
    );
    let record = read_record(br#"{"source": null, "ts_ms": "soon", "id": null}"#).unwrap();
    assert_eq!(record.source, Some(Map::new()));
    assert_eq!(record.ts_ms, Some(None));
    assert_eq!(record.id, None);
}

/// Wire text of one value: the `after` row of a written record holds it as `{"v":<value>}`.
fn encode(value: Value) -> String {
    let (table, source) = (TableId::new("t"), Map::new());
    let after = row! {"v" => value};
    let mut out = Vec::new();
    let record = RecordRef {
        op: Op::Create,
        table: &table,
        key: None,
        before: None,
        after: Some(&after),
        source: SourceRef::Map(&source),
        ts_ms: None,
        id: &"",
    };
    write_record(&record, &mut out);
    let text = String::from_utf8(out).unwrap();
    let start = text.find(r#""after":{"v":"#).unwrap() + r#""after":{"v":"#.len();
    let end = text.find(r#"},"source""#).unwrap();
    text[start..end].to_owned()
}

fn decode(value: &str) -> Result<Value, String> {
    let record = format!(r#"{{"after":{{"v":{value}}}}}"#);
    let record = read_record(record.as_bytes()).map_err(|error| error.to_string())?;
    Ok(record.after.unwrap().unwrap().get("v").unwrap().clone())
}

#[test]
fn each_tagged_type_round_trips_alone() {
    let cases = [
        (r#"{"$decimal":"-0.001"}"#, decimal("-0.001")),
        (r#"{"$decimal":"7"}"#, decimal("7")),
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
fn a_json_number_with_a_point_is_a_float() {
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
fn plain_json_numbers_read_as_the_types_json_readers_give() {
    let record = read_record(br#"{"after": {"big": 18446744073709551615, "neg": -1, "half": 0.5}}"#).unwrap();
    let after = record.after.unwrap().unwrap();
    assert_eq!(after.get("big"), Some(&Value::Float(18_446_744_073_709_551_615.0)));
    assert_eq!(after.get("neg"), Some(&Value::Int(-1)));
    assert_eq!(after.get("half"), Some(&Value::Float(0.5)));
}

fn problem(record: &str) -> String {
    match read_record(record.as_bytes()).unwrap_err() {
        error @ WireError::Field { .. } => error.to_string(),
        WireError::Json(error) => panic!("{record}: expected a field error, got {error}"),
    }
}

#[test]
fn malformed_records_name_the_field_and_the_problem() {
    let cases = [
        (r#"[1]"#, "field ``: expected an object"),
        (r#"{"op": "x"}"#, "field `op`: expected one of c, u, d, r, t"),
        (r#"{"table": "t"}"#, "field `table`: expected an object"),
        (r#"{"table": {"schema": 1, "table": "t"}}"#, "field `table.schema`: expected a string or null"),
        (r#"{"table": {}}"#, "field `table.table`: expected a string"),
        (r#"{"after": [1]}"#, "field `after`: expected an object or null"),
        (r#"{"before": {"x": {"$money": "1"}}}"#, "field `before.x`: unknown value tag `$money`"),
        (r#"{"after": {"x": {}}}"#, "field `after.x`: an object value must have exactly one `$type` key"),
        (
            r#"{"after": {"x": {"$date": 1, "$time": 2}}}"#,
            "field `after.x`: an object value must have exactly one `$type` key",
        ),
        (r#"{"key": {"k": [{"$decimal": "1,5"}]}}"#, "field `key.k`: not a decimal number"),
        (r#"{"after": {"d": {"$date": 99999999999}}}"#, "field `after.d`: date out of range"),
        (r#"{"after": {"b": {"$bytes": "***"}}}"#, "field `after.b`: not base64"),
        (r#"{"after": {"t": {"$time": "noon"}}}"#, "field `after.t`: `$time` expects an integer"),
        (r#"{"after": {"u": {"$uuid": 1}}}"#, "field `after.u`: `$uuid` expects a string"),
        (r#"{"source": 1}"#, "field `source`: expected an object"),
        (r#"{"id": 1}"#, "field `id`: expected a string"),
    ];
    for (record, expected) in cases {
        assert_eq!(problem(record), expected, "{record}");
    }
}

#[test]
fn bytes_that_are_not_one_json_object_are_a_json_error() {
    for record in ["", "{", r#"{"op":"c"} trailing"#, "{\"after\": {\"x\": \"\u{0}\"}}"] {
        assert!(matches!(read_record(record.as_bytes()), Err(WireError::Json(_))), "{record:?}");
    }
}
