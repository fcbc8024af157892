//! One event with a value of nearly every type, for the event module's tests.

use std::sync::Arc;

use super::{ChangeEvent, Decimal, Op, Position, Row, SourceInfo, TableId, Value};

/// An update of row 7 whose `after` holds a decimal, an integral float, bytes, a date, a
/// timestamp, an array and an unchanged TOAST column.
pub(crate) fn sample() -> ChangeEvent {
    let row = Row::from(vec![
        ("id".into(), Value::Int(7)),
        ("price".into(), Value::Decimal(Decimal::parse("12.340").unwrap())),
        ("ratio".into(), Value::Float(2.0)),
        ("blob".into(), Value::Bytes(vec![0, 255, 16])),
        ("born".into(), Value::Date(19_000)),
        ("seen".into(), Value::Timestamp(1_700_000_000_123_456)),
        ("tags".into(), Value::Array(vec![Value::Text("a".into()), Value::Null])),
        ("doc".into(), Value::Unavailable),
    ]);
    ChangeEvent {
        op: Op::Update,
        table: TableId { database: Some("db".into()), schema: Some("public".into()), table: "t".into() },
        key: Some(Row::from(vec![("id".into(), Value::Int(7))])),
        before: None,
        after: Some(row),
        source: SourceInfo::default(),
        ts_ms: Some(5),
        columns: None,
        position: Position::Kafka { topic: Arc::from("cdc.public.t"), partition: 0, offset: 9 },
        output_index: 0,
    }
}
