//! The transform natively, through the SDK's test harness (each event goes through the wire
//! form, as in wasm).

use cdc_sdk::testing::{configure, run_transform};
use serde_json::json;

use super::*;

fn customer(id: i64, status: &str) -> Event {
    Event::update("public.customers", row! {"id" => id, "email" => "a@example.com", "status" => status})
        .with_key(row! {"id" => id})
        .with_before(row! {"id" => id, "email" => "old@example.com", "doc" => Value::Unavailable})
}

fn decimal(text: &str) -> Value {
    Value::Decimal(Decimal::parse(text).unwrap())
}

#[test]
fn events_whose_after_column_equals_the_value_are_dropped() {
    let config = json!({"drop_where": {"column": "status", "equals": "test"}});
    let outcomes = run_transform::<FilterMask>(config, vec![customer(1, "test"), customer(2, "live")]);
    assert_eq!(outcomes, [Outcome::Drop, Outcome::Keep(customer(2, "live"))]);
}

#[test]
fn values_compare_as_json_numbers_by_value_tags_exactly() {
    let event = |value: Value| Event::insert("t", row! {"v" => value});
    let drops = |equals: Json, value: Value| {
        let config = json!({"drop_where": {"column": "v", "equals": equals}});
        run_transform::<FilterMask>(config, vec![event(value)]) == [Outcome::Drop]
    };
    assert!(drops(json!(5), Value::Int(5)));
    assert!(drops(json!(5.0), Value::Int(5)));
    assert!(drops(json!(0.5), Value::Float(0.5)));
    assert!(drops(json!({"$decimal": "1.50"}), decimal("1.50")));
    assert!(!drops(json!({"$decimal": "1.5"}), decimal("1.50")));
    assert!(!drops(json!("5"), Value::Int(5)));
    assert!(drops(json!(null), Value::Null));
    assert!(drops(json!(true), Value::Bool(true)));
}

#[test]
fn deletes_and_rows_without_the_column_are_kept() {
    let config = json!({"drop_where": {"column": "status", "equals": "test"}});
    let delete = Event::delete("public.customers", row! {"id" => 1, "status" => "test"});
    let other = Event::insert("public.other", row! {"id" => 2});
    let outcomes = run_transform::<FilterMask>(config, vec![delete.clone(), other.clone()]);
    assert_eq!(outcomes, [Outcome::Keep(delete), Outcome::Keep(other)]);
}

#[test]
fn masked_columns_are_replaced_in_key_before_and_after_but_not_nulls_or_toast() {
    let config = json!({"mask": ["email", "id", "doc"], "mask_with": "#"});
    let mut event = customer(7, "live");
    event.after.as_mut().unwrap().set("email", Value::Null);
    let outcomes = run_transform::<FilterMask>(config, vec![event]);
    let [Outcome::Keep(masked)] = &outcomes[..] else { panic!("{outcomes:?}") };
    assert_eq!(masked.key, Some(row! {"id" => "#"}));
    assert_eq!(masked.before, Some(row! {"id" => "#", "email" => "#", "doc" => Value::Unavailable}));
    assert_eq!(masked.after, Some(row! {"id" => "#", "email" => Value::Null, "status" => "live"}));
}

#[test]
fn the_defaults_mask_with_stars_and_drop_nothing() {
    for config in [json!({}), json!(null), json!({"drop_where": null, "mask": null, "mask_with": null})] {
        let filter = configure::<FilterMask>(config).unwrap();
        assert_eq!(filter, FilterMask { drop_where: None, mask: Vec::new(), mask_with: DEFAULT_MASK.into() });
    }
    let filter = configure::<FilterMask>(json!({"mask": ["email", "email"]})).unwrap();
    assert_eq!(filter.summary(), r#"dropping nothing; masking ["email"] in key/before/after with "***""#);
}

#[test]
fn bad_config_is_fatal_and_names_the_key() {
    let cases = [
        (json!({"masks": []}), "unknown config key `masks` (known: drop_where, mask, mask_with)"),
        (json!({"mask": "email"}), "config key `mask` must be a list of column names, got a string"),
        (json!({"mask": [1]}), "config key `mask[0]` must be a string, got a number"),
        (json!({"mask_with": 1}), "config key `mask_with` must be a string, got a number"),
        (
            json!({"drop_where": []}),
            "config key `drop_where` must be an object {\"column\", \"equals\"}, got a list",
        ),
        (json!({"drop_where": {"column": "status"}}), "config key `drop_where.equals` is required"),
        (json!({"drop_where": {"equals": 1}}), "config key `drop_where.column` is required"),
        (
            json!({"drop_where": {"column": "", "equals": 1}}),
            "config key `drop_where.column` must not be empty",
        ),
        (
            json!({"drop_where": {"column": "a", "equals": 1, "x": 2}}),
            "unknown config key `drop_where.x` (known: column, equals)",
        ),
    ];
    for (config, message) in cases {
        let error = configure::<FilterMask>(config.clone()).unwrap_err();
        assert_eq!((error.class, error.message.as_str()), (ErrorClass::Fatal, message), "{config}");
    }
}

#[test]
fn describe_lists_every_key_with_its_default() {
    let info = FilterMask::describe();
    let params: Vec<(&str, Option<&str>)> =
        info.config.iter().map(|param| (param.name.as_str(), param.default_value.as_deref())).collect();
    assert_eq!(params, [("drop_where", Some("null")), ("mask", Some("[]")), ("mask_with", Some("\"***\""))]);
}
