//! Malformed and hostile messages: each error names the field, and nothing panics.

use serde_json::{Value as Json, json};

use super::*;

fn nowhere() -> Position {
    Position::Kafka { topic: Arc::from("t"), partition: 0, offset: 0 }
}

/// The message at `index` of a fixture, with `edit` applied to it.
fn edited(file: &str, index: usize, edit: impl FnOnce(&mut Json)) -> Json {
    let mut message = messages(file).swap_remove(index);
    edit(&mut message);
    message
}

fn error(message: &Json) -> String {
    decode(message).expect_err("decoding fails").to_string()
}

/// The `c` event of row 2 in the all_types fixture with schemas, with its `after` edited.
fn all_types_with(column: &str, value: Json) -> Json {
    edited("debezium-pg-all_types-schema.json", 1, |m| m["value"]["payload"]["after"][column] = value)
}

#[test]
fn an_unknown_op_is_refused_naming_it() {
    let message = edited("debezium-pg-customers-noschema.json", 2, |m| m["value"]["op"] = json!("x"));
    assert_eq!(error(&message), r#"field `op`: expected one of c, u, d, r, t, found "x""#);
}

#[test]
fn a_decimal_that_is_not_base64_is_refused_naming_the_field() {
    let message = all_types_with("num_fixed", json!("not base64!"));
    assert_eq!(error(&message), "field `after.num_fixed`: decimal bytes are not valid base64");
    let message = all_types_with("num_any", json!({"scale": 2, "value": "@@"}));
    assert_eq!(error(&message), "field `after.num_any.value`: decimal bytes are not valid base64");
    let message = all_types_with("money_like", json!(12.5));
    assert!(error(&message).starts_with("field `after.money_like`: decimal sent as a JSON number"));
}

#[test]
fn values_that_do_not_fit_their_schema_are_refused() {
    let cases = [
        ("id", json!(3_000_000_000_i64), "field `after.id`: 3000000000 is out of range for int32"),
        ("int_arr", json!([1, "x"]), "field `after.int_arr[1]`: expected an integer, found a string"),
        ("b", json!("yes"), "field `after.b`: expected a boolean, found a string"),
        ("ts", json!(1.5), "field `after.ts`: expected a 64-bit integer, found 1.5"),
        ("tstz", json!(5), "field `after.tstz`: expected a string, found a number"),
        ("extra", json!(1), "field `after.extra`: field is not in the schema"),
    ];
    for (column, value, expected) in cases {
        assert_eq!(error(&all_types_with(column, value)), expected);
    }
    let message = edited("debezium-pg-all_types-schema.json", 1, |m| m["key"]["payload"]["id"] = json!("2"));
    assert_eq!(error(&message), "field `key.id`: expected an integer, found a string");
    let message =
        edited("debezium-pg-all_types-schema.json", 1, |m| m["value"]["schema"]["type"] = json!("int128"));
    assert_eq!(error(&message), "message value has an invalid Connect schema");
}

#[test]
fn a_malformed_source_block_is_refused() {
    let message = edited("debezium-pg-customers-noschema.json", 2, |m| m["value"]["source"] = json!(null));
    assert_eq!(error(&message), "field `source`: expected an object, found null");
    let message =
        edited("debezium-pg-customers-noschema.json", 2, |m| m["value"]["source"]["txId"] = json!("758"));
    assert_eq!(error(&message), "field `source.txId`: expected a 64-bit integer, found a string");
    let message = edited("debezium-pg-customers-noschema.json", 2, |m| {
        let _ = m["value"]["source"].as_object_mut().map(|source| source.remove("table"));
    });
    assert_eq!(error(&message), "field `source.table`: expected a string, found nothing");
}

#[test]
fn hostile_input_never_panics() {
    for file in ["debezium-pg-customers-schema.json", "debezium-pg-all_types-noschema.json"] {
        let message = messages(file).swap_remove(2);
        let value = wire(&message["value"]).expect("bytes");
        for end in 0..value.len() {
            let _ = decode_json(None, value.get(..end), nowhere());
        }
    }
    let kinds =
        [json!(null), json!(true), json!(-1), json!(1e300), json!("x"), json!([[]]), json!({"a": {}})];
    for column in ["id", "num_fixed", "num_any", "ts", "d", "j", "u", "int_arr", "by", "f8"] {
        for kind in &kinds {
            let _ = decode(&all_types_with(column, kind.clone()));
        }
    }
    for kind in &kinds {
        let message =
            edited("debezium-pg-all_types-schema.json", 1, |m| m["value"]["payload"] = kind.clone());
        let _ = decode(&message);
        let message =
            edited("debezium-pg-all_types-schema.json", 1, |m| m["value"]["schema"]["fields"] = kind.clone());
        let _ = decode(&message);
    }
}
