//! Builds the webhook payload of one event: the seed's
//! `{"key": …, "value": <Debezium envelope>, "metadata": {"topic", "partition", "offset"}}`.

use serde_json::{Value as Json, json};

use crate::event::{self, ChangeEvent, Position};

/// The JSON body sent for one event.
pub(super) fn payload(event: &ChangeEvent) -> Json {
    let metadata = match &event.position {
        Position::Kafka { topic, partition, offset } => {
            json!({ "topic": topic.as_ref(), "partition": partition, "offset": offset })
        }
        Position::Lsn(lsn) => json!({ "lsn": lsn }),
    };
    json!({
        "key": event::to_debezium_key(event),
        "value": event::to_debezium_value(event),
        "metadata": metadata,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{Op, Row, SourceInfo, TableId, Value};

    #[test]
    fn payload_carries_key_envelope_and_position() {
        let event = ChangeEvent {
            op: Op::Create,
            table: TableId { database: None, schema: Some("public".into()), table: "t".into() },
            key: Some(Row::from(vec![("id".into(), Value::Int(1))])),
            before: None,
            after: Some(Row::from(vec![
                ("id".into(), Value::Int(1)),
                ("name".into(), Value::Text("a".into())),
            ])),
            source: SourceInfo::default(),
            ts_ms: Some(10),
            columns: None,
            position: Position::Kafka { topic: Arc::from("cdc.public.t"), partition: 2, offset: 41 },
            output_index: 0,
        };
        assert_eq!(
            payload(&event),
            json!({
                "key": {"id": 1},
                "value": {"before": null, "after": {"id": 1, "name": "a"}, "source": {}, "op": "c", "ts_ms": 10},
                "metadata": {"topic": "cdc.public.t", "partition": 2, "offset": 41},
            })
        );
    }
}
