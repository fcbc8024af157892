//! Runs the plugin natively over recorded change events (`events.jsonl`, the wire form the host
//! sends), through the same glue as the wasm component.

use cdc_sdk::prelude::*;
use cdc_sdk::testing::{configure, parse_jsonl, run_transform, transform_batch};
use {{crate_name}}::Plugin;

const RECORDED: &str = include_str!("../events.jsonl");

#[test]
fn drops_test_rows_and_keeps_the_rest() {
    let events = parse_jsonl(RECORDED);
    let outcomes = run_transform::<Plugin>(json!({}), events.clone());
    // The insert of the test order and its delete are dropped; the others pass unchanged.
    assert_eq!(
        outcomes,
        [Outcome::Keep(events[0].clone()), Outcome::Drop, Outcome::Keep(events[2].clone()), Outcome::Drop]
    );
}

#[test]
fn a_batch_comes_out_with_its_origins() {
    let events = parse_jsonl(RECORDED);
    let output = transform_batch::<Plugin>(json!({"column": "status", "value": "shipped"}), &events).unwrap();
    let origins: Vec<usize> = output.events.iter().map(|(origin, _)| *origin).collect();
    assert_eq!(origins, [0, 1, 3]);
    assert!(output.errors.is_empty());
}

#[test]
fn unknown_config_keys_are_refused() {
    let error = configure::<Plugin>(json!({"colum": "status"})).err().expect("configure must fail");
    assert_eq!(error.class, ErrorClass::Fatal);
}
