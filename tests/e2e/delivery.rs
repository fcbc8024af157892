//! Checks over what a webhook receiver got: per-key order, completeness, stable idempotency ids.

use std::collections::{BTreeMap, BTreeSet};

use cdc_tests::receiver::Delivery;
use serde_json::Value as Json;

/// The `id` key column of a delivery.
pub fn key_id(delivery: &Delivery) -> i64 {
    delivery.body["key"]["id"].as_i64().expect("key.id is an integer")
}

/// The distinct row ids created (op `c`) among the deliveries.
pub fn created_ids(deliveries: &[Delivery]) -> BTreeSet<i64> {
    deliveries.iter().filter(|d| d.body["value"]["op"] == "c").map(key_id).collect()
}

/// A change's identity at the source: its LSN, op and key. The same change delivered twice
/// must carry the same idempotency id, and two changes never share one.
pub fn assert_stable_idempotency_ids(deliveries: &[Delivery]) {
    let mut ids_of_change: BTreeMap<(String, String, i64), BTreeSet<String>> = BTreeMap::new();
    let mut bodies_of_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for delivery in deliveries {
        let value = &delivery.body["value"];
        let change = (value["source"]["lsn"].to_string(), value["op"].to_string(), key_id(delivery));
        let id = delivery.idempotency_key.clone().expect("every delivery carries an idempotency id");
        ids_of_change.entry(change).or_default().insert(id.clone());
        bodies_of_id.entry(id).or_default().insert(delivery.body["value"].to_string());
    }
    for (change, ids) in &ids_of_change {
        assert_eq!(ids.len(), 1, "change {change:?} arrived under several ids: {ids:?}");
    }
    for (id, bodies) in &bodies_of_id {
        assert_eq!(bodies.len(), 1, "id {id} was used for different changes: {bodies:?}");
    }
}

/// Asserts that, per key, the deliveries keep source order: offsets never go backwards except
/// where a change is redelivered (then the whole sequence since is repeated in order).
pub fn assert_per_key_order(deliveries: &[Delivery]) {
    let mut last_offset: BTreeMap<i64, i64> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for delivery in deliveries {
        let offset = delivery.body["metadata"]["offset"].as_i64().expect("metadata.offset");
        let id = delivery.idempotency_key.clone().unwrap_or_default();
        let first_time = seen.insert(id);
        let key = key_id(delivery);
        if let Some(previous) = last_offset.get(&key) {
            assert!(
                offset > *previous || !first_time,
                "key {key}: offset {offset} after {previous} on first delivery"
            );
        }
        last_offset.insert(key, offset);
    }
}

/// The `metadata` of a delivery as (partition, offset).
pub fn position(delivery: &Delivery) -> (i64, i64) {
    let metadata: &Json = &delivery.body["metadata"];
    (metadata["partition"].as_i64().unwrap(), metadata["offset"].as_i64().unwrap())
}
