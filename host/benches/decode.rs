//! Decoding alone, on one thread: the same PostgreSQL rows captured from real Debezium with
//! JsonConverter (with and without schemas) and with Confluent's AvroConverter, decoded into
//! change events again and again. Prints events/s and ns per event per format, with Avro beside
//! JSON with schemas (the format that carries the same information).
//!
//! Needs nothing running: `cargo bench -p cdc-host --bench decode`. `BENCH_SECONDS` (default 2)
//! is the time spent on each format.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_host::decode::{AvroSchema, decode_avro_with, decode_json};
use cdc_host::event::Position;
use serde_json::Value as Json;

// The same allocator as the `cdc` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/debezium/");

/// A Kafka record's raw key and value.
type Record = (Option<Vec<u8>>, Option<Vec<u8>>);
/// Avro schemas by registry id.
type Schemas = HashMap<u32, Arc<AvroSchema>>;

fn main() {
    // Tuned as the `cdc` binary tunes it.
    cdc_host::allocator::tune();
    if std::env::args().any(|arg| arg == "--list") {
        println!("decode: bench");
        return;
    }
    let seconds = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let budget = Duration::from_secs_f64(seconds);
    let (schemas, avro) = avro_records();
    let lookup = |id| schemas.get(&id).cloned();

    println!("decoding real Debezium PostgreSQL events (customers and all_types rows), one thread");
    for (table, filter) in [("customers", "customers"), ("all_types", "all_types")] {
        let json = json_records(&format!("debezium-pg-{filter}-schema.json"));
        let plain = json_records(&format!("debezium-pg-{filter}-noschema.json"));
        let avro: Vec<_> = avro.iter().filter(|(topic, _)| topic.ends_with(filter)).map(|(_, r)| r).collect();
        let with_schema = measure(budget, &json, |(key, value)| {
            decode_json(key.as_deref(), value.as_deref(), position()).is_ok()
        });
        let without = measure(budget, &plain, |(key, value)| {
            decode_json(key.as_deref(), value.as_deref(), position()).is_ok()
        });
        let avro = measure(budget, &avro, |(key, value)| {
            decode_avro_with(lookup, key.as_deref(), value.as_deref(), position()).is_ok()
        });
        println!("{table}:");
        for (name, rate) in [("json, schemas", with_schema), ("json, no schemas", without), ("avro", avro)] {
            println!(
                "  {name:<18} {rate:>10.0} events/s  {:>7.0} ns/event  ({:.2}× json with schemas)",
                1e9 / rate,
                rate / with_schema
            );
        }
    }
}

/// Decodes `records` round after round for `budget`; events per second. Every record must decode.
fn measure<R>(budget: Duration, records: &[R], decode: impl Fn(&R) -> bool) -> f64 {
    assert!(!records.is_empty(), "no records to decode");
    let started = Instant::now();
    let mut events = 0u64;
    while started.elapsed() < budget {
        for record in records {
            assert!(black_box(decode(record)), "a fixture record failed to decode");
        }
        events += records.len() as u64;
    }
    events as f64 / started.elapsed().as_secs_f64()
}

fn position() -> Position {
    Position::Kafka { topic: Arc::from("bench"), partition: 0, offset: 0 }
}

fn read_fixture(file: &str) -> Json {
    let text = std::fs::read_to_string(format!("{FIXTURES}{file}")).expect("fixture is readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The records of a JsonConverter fixture (delete tombstones left out), as the bytes Kafka held.
fn json_records(file: &str) -> Vec<Record> {
    let Json::Array(messages) = read_fixture(file) else { panic!("{file} is a list") };
    messages
        .into_iter()
        .filter(|message| !message["value"].is_null())
        .map(|message| {
            let bytes = |part: &Json| (!part.is_null()).then(|| part.to_string().into_bytes());
            (bytes(&message["key"]), bytes(&message["value"]))
        })
        .collect()
}

/// The Avro fixture's schemas by id and its records by topic, tombstones left out.
fn avro_records() -> (Schemas, Vec<(String, Record)>) {
    let fixture = read_fixture("debezium-pg-avro.json");
    let schemas = fixture["registered_schemas_by_id"]
        .as_object()
        .expect("schemas by id")
        .iter()
        .map(|(id, schema)| {
            (id.parse().expect("numeric id"), Arc::new(AvroSchema::from_json(schema).expect("schema")))
        })
        .collect();
    let hex = |text: &str| -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
    };
    let records = fixture["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["value_raw_hex"].is_string())
        .map(|event| {
            let topic = event["topic"].as_str().expect("topic").to_owned();
            (topic, (event["key_raw_hex"].as_str().map(hex), event["value_raw_hex"].as_str().map(hex)))
        })
        .collect();
    (schemas, records)
}
