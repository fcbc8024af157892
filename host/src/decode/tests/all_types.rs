//! The all_types fixtures: every column type, with and without schemas and in string mode.

use super::*;

#[test]
fn schema_all_types_create_types_every_column() {
    let event = find(PG_ALL_TYPES_SCHEMA, "c", 2);
    let expected = all_types_row_2();
    assert_eq!(event.after, Some(expected));
    assert_eq!(event.before, None);
    assert_eq!(event.table.to_string(), "public.all_types");
    assert_eq!((event.source.txid, event.source.lsn), (Some(751), Some(26_709_432)));
    assert_eq!(event.source.commit_ts_ms, Some(1_795_779_194_139));
    assert_eq!(event.ts_ms, Some(1_795_779_194_791));
}

#[test]
fn schema_all_types_other_rows_keep_exact_values() {
    let snapshot = find(PG_ALL_TYPES_SCHEMA, "r", 1);
    let row = after(&snapshot);
    assert_eq!(row.get("num_fixed"), Some(&dec("12345.678")));
    assert_eq!(row.get("num_any"), Some(&dec("3.14159265358979")));
    assert_eq!(row.get("money_like"), Some(&dec("99.95")));
    assert_eq!(row.get("ts"), Some(&Value::Timestamp(1_704_164_645_123_456)));
    assert_eq!(row.get("d"), Some(&Value::Date(19_724)));
    assert_eq!(row.get("t"), Some(&Value::Time(47_655_500_000)));
    assert_eq!(row.get("jb"), Some(&Value::Json(r#"{"k": "v", "n": null}"#.into())));
    assert_eq!(row.get("int_arr"), Some(&Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)])));
    assert_eq!(row.get("text_arr"), Some(&Value::Array(vec![text("x"), text("y z")])));
    assert_eq!(row.get("b"), Some(&Value::Bool(true)));
    assert_eq!(row.get("by"), Some(&Value::Bytes(vec![0xDE, 0xAD, 0xBE, 0xEF])));
    assert_eq!(row.get("f8"), Some(&Value::Float(15_000_000_000.0)));
    // 2^53 + 1: an integer a float could not hold.
    assert_eq!(row.get("big"), Some(&Value::Int(9_007_199_254_740_993)));

    let create = find(PG_ALL_TYPES_SCHEMA, "c", 4);
    let row = after(&create);
    assert_eq!(row.get("num_fixed"), Some(&dec("7.250")));
    assert_eq!(row.get("num_any"), Some(&dec("0.000000000001")));
    assert_eq!(row.get("money_like"), Some(&dec("1234.56")));
    assert_eq!(row.get("t"), Some(&Value::Time(86_399_999_999)));
    assert_eq!(row.get("tstz"), Some(&Value::TimestampTz("2038-01-18T21:44:08.000000Z".into())));
    assert_eq!(row.get("jb"), Some(&Value::Json(r#"{"s": "quote\"d"}"#.into())));
    assert_eq!(row.get("int_arr"), Some(&Value::Array(vec![Value::Int(10), Value::Int(-20)])));
    assert_eq!(row.get("text_arr"), Some(&Value::Array(vec![text("α"), text("β")])));
    let update = find(PG_ALL_TYPES_SCHEMA, "u", 4);
    assert_eq!(after(&update).get("num_any"), Some(&dec("42")));
}

#[test]
fn schema_all_types_null_row_is_null_everywhere() {
    for event in [find(PG_ALL_TYPES_SCHEMA, "c", 3), find(PG_ALL_TYPES_SCHEMA, "d", 3)] {
        let row = event.after.as_ref().or(event.before.as_ref()).expect("a row");
        assert_eq!(row.len(), 17);
        for (name, value) in row {
            let expected = if name == "id" { Value::Int(3) } else { Value::Null };
            assert_eq!(value, &expected, "column {name}");
        }
    }
}

#[test]
fn schema_columns_come_from_the_connect_schema() {
    let event = find(PG_ALL_TYPES_SCHEMA, "c", 2);
    let columns = event.columns.expect("columns");
    let names: Vec<_> = columns.iter().map(|c| c.name.as_str()).collect();
    let row_names: Vec<_> = after(&find(PG_ALL_TYPES_SCHEMA, "c", 2)).columns().map(str::to_owned).collect();
    assert_eq!(names, row_names);
    let column = |name: &str| columns.iter().find(|c| c.name == name).expect("column");
    let expect = |connect: &str, logical: Option<&str>, optional| Column {
        name: String::new(),
        connect_type: connect.into(),
        logical_type: logical.map(str::to_owned),
        optional,
        ..Column::default()
    };
    for (name, connect, logical, optional) in [
        ("id", "int32", None, false),
        ("num_fixed", "bytes", Some("org.apache.kafka.connect.data.Decimal"), true),
        ("num_any", "struct", Some("io.debezium.data.VariableScaleDecimal"), true),
        ("ts", "int64", Some("io.debezium.time.MicroTimestamp"), true),
        ("tstz", "string", Some("io.debezium.time.ZonedTimestamp"), true),
        ("f8", "float64", None, true),
        ("int_arr", "array", None, true),
    ] {
        let decimal = name == "num_fixed";
        let expected = Column {
            name: name.into(),
            items: (connect == "array").then(|| "int32".into()),
            precision: decimal.then_some(12),
            scale: decimal.then_some(3),
            ..expect(connect, logical, optional)
        };
        assert_eq!(column(name), &expected);
    }
    // Decimals keep their precision and scale.
    assert_eq!((column("money_like").precision, column("money_like").scale), (Some(10), Some(2)));
    assert_eq!((column("num_any").precision, column("num_any").scale), (None, None));
}

#[test]
fn schema_and_noschema_give_the_same_key_op_and_table() {
    for (schema_file, noschema_files) in [
        (PG_CUSTOMERS_SCHEMA, &[PG_CUSTOMERS_NOSCHEMA][..]),
        (PG_ALL_TYPES_SCHEMA, &[PG_ALL_TYPES_NOSCHEMA, PG_ALL_TYPES_DECIMAL_STRING][..]),
    ] {
        let typed: Vec<_> =
            messages(schema_file).iter().map(decode).collect::<Result<_, _>>().expect("decodes");
        let mut compared = 0;
        for file in noschema_files {
            for message in messages(file) {
                let Decoded::Change(plain) = decode(&message).expect("decodes") else {
                    continue;
                };
                // The same database transaction was captured by both connectors.
                let twin = typed.iter().find_map(|decoded| match decoded {
                    Decoded::Change(event) if event.source.txid == plain.source.txid => Some(event),
                    _ => None,
                });
                let Some(twin) = twin else { continue };
                assert_eq!((twin.op, &twin.key, &twin.table), (plain.op, &plain.key, &plain.table));
                if schema_file == PG_CUSTOMERS_SCHEMA {
                    assert_eq!((&twin.before, &twin.after), (&plain.before, &plain.after));
                }
                compared += 1;
            }
        }
        assert!(compared >= 3, "{schema_file}: only {compared} twins");
    }
}

#[test]
fn decimal_string_fixture_keeps_decimals_exact_as_text() {
    let expected = [
        (2, ["-0.001", "123456789012345678901234567890.123456789", "0.10"]),
        (1, ["1.500", "3.14159265358979", "99.95"]),
        (4, ["7.250", "0.000000000001", "1234.56"]),
    ];
    for (id, decimals) in expected {
        let op = if id == 4 { "c" } else { "r" };
        let event = find(PG_ALL_TYPES_DECIMAL_STRING, op, id);
        for (column, decimal) in ["num_fixed", "num_any", "money_like"].into_iter().zip(decimals) {
            // Without a schema a string is text; the text is the exact decimal.
            assert_eq!(after(&event).get(column), Some(&text(decimal)), "id {id} {column}");
            let schema_event = find(PG_ALL_TYPES_SCHEMA, if id == 1 { "u" } else { "c" }, id);
            assert_eq!(after(&schema_event).get(column), Some(&dec(decimal)), "id {id} {column}");
        }
    }
    let noschema = find(PG_ALL_TYPES_NOSCHEMA, "r", 2);
    assert_eq!(after(&noschema).get("num_any"), Some(&dec("123456789012345678901234567890.123456789")));
    assert_eq!(after(&noschema).get("num_fixed"), Some(&text("/w==")));
}

/// The `after` row of the all_types create with id 2, as every converter must decode it.
pub(crate) fn all_types_row_2() -> Row {
    Row::from(vec![
        ("id".into(), Value::Int(2)),
        ("num_fixed".into(), dec("-0.001")),
        ("num_any".into(), dec("123456789012345678901234567890.123456789")),
        ("money_like".into(), dec("0.10")),
        ("ts".into(), Value::Timestamp(946_684_799_000_000)),
        ("tstz".into(), Value::TimestampTz("1999-12-31T23:59:59.999999Z".into())),
        ("d".into(), Value::Date(0)),
        ("t".into(), Value::Time(0)),
        ("j".into(), Value::Json(r#"[1, "two", {"three": 3}]"#.into())),
        ("jb".into(), Value::Json("[]".into())),
        ("u".into(), Value::Uuid("00000000-0000-0000-0000-000000000000".into())),
        ("int_arr".into(), Value::Array(vec![])),
        ("text_arr".into(), Value::Array(vec![Value::Null, text("a")])),
        ("b".into(), Value::Bool(false)),
        ("by".into(), Value::Bytes(vec![0])),
        ("f8".into(), Value::Float(-0.5)),
        ("big".into(), Value::Int(-1)),
    ])
}
