//! Drives the sink natively with recorded change events (`events.jsonl`, the wire form the host
//! sends), through the same glue as the wasm component.

use cdc_sdk::prelude::*;
use cdc_sdk::testing::{self, SinkHarness, parse_jsonl};
use {{crate_name}}::Plugin;

const RECORDED: &str = include_str!("../events.jsonl");

#[test]
fn writes_then_delivers_on_flush() {
    let events = parse_jsonl(RECORDED);
    let mut sink = SinkHarness::<Plugin>::open(json!({})).unwrap();
    assert_eq!(sink.write(events.clone()).unwrap(), []);
    assert_eq!(sink.sink().pending().len(), events.len());

    testing::take_logs();
    sink.flush("shop.public.orders/0/4").unwrap();
    assert!(sink.sink().pending().is_empty());
    let logged = testing::take_logs();
    assert!(logged[0].1.contains(r#""id":"shop.public.orders/0/0""#), "{logged:?}");
    assert_eq!(sink.health(), Ok(()));
    sink.close();
}

#[test]
fn truncates_fail_alone() {
    let mut events = parse_jsonl(RECORDED);
    events.insert(1, Event::truncate("shop.public.orders"));
    let mut sink = SinkHarness::<Plugin>::open(json!({})).unwrap();
    let errors = sink.write(events).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].0, errors[0].1.class), (1, ErrorClass::Poison));
    assert_eq!(sink.sink().pending().len(), 4);
}

#[test]
fn a_full_buffer_is_retryable() {
    let events = parse_jsonl(RECORDED);
    let mut sink = SinkHarness::<Plugin>::open(json!({"max_pending": 3})).unwrap();
    let error = sink.write(events).unwrap_err();
    assert_eq!(error.class, ErrorClass::Retryable);
}
