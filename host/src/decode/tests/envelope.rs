//! Envelope-level behaviour: MariaDB, the schema-change topic, deletes, re-encoding.

use super::*;

#[test]
fn mariadb_events_have_no_schema_and_pick_up_the_added_column() {
    let event = find(MARIADB_CUSTOMERS, "c", 4);
    let expected = Row::from(vec![
        ("id".into(), Value::Int(4)),
        ("name".into(), text("Erin")),
        ("email".into(), text("erin@example.com")),
        ("phone".into(), text("555")),
    ]);
    assert_eq!(event.after, Some(expected));
    assert_eq!(event.table.to_string(), "inventory.customers");
    assert_eq!(event.source.connector.as_deref(), Some("mysql"));
    assert_eq!((event.source.txid, event.source.lsn), (None, None));
    assert_eq!(event.source.raw.get("pos"), Some(Json::from(4681)));
    let delete = find(MARIADB_CUSTOMERS, "d", 2);
    assert_eq!(delete.before.as_ref().and_then(|row| row.get("name")), Some(&text("Bob")));
}

#[test]
fn mariadb_schema_change_topic_yields_ddl() {
    let changes: Vec<_> = messages(MARIADB_SCHEMA_CHANGES)
        .iter()
        .map(|message| match decode(message) {
            Ok(Decoded::SchemaChange(change)) => change,
            other => panic!("expected a schema change, got {other:?}"),
        })
        .collect();
    assert_eq!(changes.len(), 9);
    assert_eq!(changes[0].database.as_deref(), Some(""));
    assert!(changes[0].table_changes.is_empty());
    let alter = changes.last().expect("the alter");
    assert_eq!(alter.ddl, "ALTER TABLE customers ADD COLUMN phone VARCHAR(20)");
    assert_eq!((alter.database.as_deref(), alter.schema.as_deref()), (Some("inventory"), None));
    assert_eq!(alter.table_changes.len(), 1);
    assert_eq!(alter.table_changes[0]["type"], "ALTER");
    assert!(!alter.source.snapshot && changes[0].source.snapshot);
    assert_eq!(alter.ts_ms, Some(1_795_779_351_838));
}

#[test]
fn delete_under_default_replica_identity_is_decoded_as_given() {
    for file in [PG_CUSTOMERS_SCHEMA, PG_CUSTOMERS_NOSCHEMA] {
        let event = find(file, "d", 4);
        let expected = Row::from(vec![
            ("id".into(), Value::Int(4)),
            ("name".into(), text("")),
            ("email".into(), Value::Null),
        ]);
        assert_eq!((event.before, event.after), (Some(expected), None), "{file}");
    }
}

#[test]
fn noschema_customers_re_encode_to_the_original_envelope() {
    for message in messages(PG_CUSTOMERS_NOSCHEMA) {
        let Ok(Decoded::Change(event)) = decode(&message) else {
            continue;
        };
        let original = message["value"].as_object().expect("envelope");
        let encoded = to_debezium_value(&event);
        let encoded = encoded.as_object().expect("envelope");
        for (field, value) in encoded {
            assert_eq!(Some(value), original.get(field), "field {field} at {}", message["offset"]);
        }
        // The event has no place for these three, so the re-encoding leaves them out.
        let dropped: Vec<_> = original.keys().filter(|k| !encoded.contains_key(*k)).collect();
        assert_eq!(dropped, ["transaction", "ts_us", "ts_ns"]);
        assert_eq!(to_debezium_key(&event), message["key"]);
    }
}
