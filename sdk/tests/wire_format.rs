//! The SDK's event in the wire form: each field read and written byte for byte, what a plugin's
//! `Event` requires and what it defaults. The codec's value-by-value cases are the
//! `cdc-event` crate's own tests.

use cdc_sdk::{Decimal, Event, Op, TableId, Value, row};

fn decimal(text: &str) -> Value {
    Value::Decimal(Decimal::parse(text).unwrap())
}

/// One record as the host writes it: every field of the event set.
const RECORD: &str = concat!(
    r#"{"op":"u","table":{"database":"db","schema":"public","table":"t"},"#,
    r#""key":{"id":7},"before":{"id":7,"doc":{"$unavailable":true}},"#,
    r#""after":{"id":7,"price":{"$decimal":"12.340"},"doc":{"$json":"{}"}},"#,
    r#""source":{"connector":"postgresql","lsn":1234},"ts_ms":5,"id":"cdc.public.t/0/9"}"#
);

fn record_event() -> Event {
    Event::update(
        TableId::from("db.public.t"),
        row! {"id" => 7, "price" => decimal("12.340"), "doc" => Value::Json("{}".into())},
    )
    .with_key(row! {"id" => 7})
    .with_before(row! {"id" => 7, "doc" => Value::Unavailable})
    .with_source("connector", "postgresql")
    .with_source("lsn", 1234)
    .with_ts_ms(5)
    .with_id("cdc.public.t/0/9")
}

#[test]
fn a_record_reads_into_every_field_of_the_event() {
    assert_eq!(Event::from_wire(RECORD.as_bytes()).unwrap(), record_event());
}

#[test]
fn an_event_writes_byte_for_byte_as_the_host_does() {
    assert_eq!(String::from_utf8(record_event().to_wire()).unwrap(), RECORD);
}

#[test]
fn decode_then_encode_is_the_identity_on_host_records() {
    let event = Event::from_wire(RECORD.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(event.to_wire()).unwrap(), RECORD);
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
