//! Change events built in memory, for suites that drive plugins and sinks without a source.

use std::sync::Arc;

use cdc_host::event::{ChangeEvent, Op, Position, Row, SourceInfo, TableId, Value};

/// An insert of row `(id, 'row <id>')` into `shop.public.t`, at offset `id` of partition 0 of
/// `topic`.
pub fn insert(topic: &str, id: i64) -> ChangeEvent {
    let row = Row(vec![("id".into(), Value::Int(id)), ("note".into(), Value::Text(format!("row {id}")))]);
    ChangeEvent {
        op: Op::Create,
        table: TableId { database: Some("shop".into()), schema: Some("public".into()), table: "t".into() },
        key: Some(Row(vec![("id".into(), Value::Int(id))])),
        before: None,
        after: Some(row),
        source: SourceInfo::default(),
        ts_ms: Some(1),
        columns: None,
        position: Position::Kafka { topic: Arc::from(topic), partition: 0, offset: id },
    }
}
