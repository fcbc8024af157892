//! Builds the webhook body and its id. One event is the seed's payload:
//! `{"key": …, "value": <Debezium envelope>, "metadata": {"topic", "partition", "offset"}}`;
//! with `batch_size` above 1, a request carries `{"events": [<payload>, …]}`.

use serde_json::{Value as Json, json};

use crate::event::{self, ChangeEvent, Position};

/// The id and the body of one request carrying `events` (at least one). The id is the event's
/// id, or `<first id>..<last id>` for several: the same whenever the same events are sent again.
pub(super) fn body(events: &[&ChangeEvent], batch_size: usize) -> (String, Vec<u8>) {
    let first = events.first().expect("a request carries at least one event");
    let id = match events.last() {
        Some(last) if events.len() > 1 => format!("{}..{}", first.id(), last.id()),
        _ => first.idempotency_id(),
    };
    let body = if batch_size == 1 {
        payload(first)
    } else {
        json!({ "events": events.iter().map(|event| payload(event)).collect::<Vec<_>>() })
    };
    (id, serde_json::to_vec(&body).expect("a JSON value always serializes"))
}

/// The payload of one event.
pub(super) fn payload(event: &ChangeEvent) -> Json {
    let id = event.idempotency_id();
    let metadata = match &event.position {
        Position::Kafka { topic, partition, offset } => {
            json!({ "topic": topic.as_ref(), "partition": partition, "offset": offset, "id": id })
        }
        Position::Wal { topic, position } => json!({
            "topic": topic.as_ref(),
            "commit_lsn": position.commit_lsn,
            "index": position.index,
            "id": id,
        }),
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

    fn event(offset: i64) -> ChangeEvent {
        ChangeEvent {
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
            position: Position::Kafka { topic: Arc::from("cdc.public.t"), partition: 2, offset },
            output_index: 0,
        }
    }

    #[test]
    fn payload_carries_key_envelope_position_and_id() {
        assert_eq!(
            payload(&event(41)),
            json!({
                "key": {"id": 1},
                "value": {"before": null, "after": {"id": 1, "name": "a"}, "source": {}, "op": "c", "ts_ms": 10},
                "metadata": {"topic": "cdc.public.t", "partition": 2, "offset": 41, "id": "cdc.public.t/2/41"},
            })
        );
    }

    #[test]
    fn one_event_is_its_payload_and_several_are_a_list_under_one_stable_id() {
        let owned: Vec<ChangeEvent> = (7..=9).map(event).collect();
        let events: Vec<&ChangeEvent> = owned.iter().collect();
        let (id, single) = body(&events[..1], 1);
        assert_eq!(id, "cdc.public.t/2/7");
        assert_eq!(serde_json::from_slice::<Json>(&single).unwrap(), payload(events[0]));

        let (id, batch) = body(&events, 10);
        assert_eq!(id, "cdc.public.t/2/7..cdc.public.t/2/9");
        let batch: Json = serde_json::from_slice(&batch).unwrap();
        let ids: Vec<&str> = batch["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["metadata"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["cdc.public.t/2/7", "cdc.public.t/2/8", "cdc.public.t/2/9"]);
        assert_eq!(body(&events[..1], 10).0, "cdc.public.t/2/7", "a batch of one keeps the event's id");
    }
}
