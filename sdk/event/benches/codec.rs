//! The shared codec's own speed, per record and per KiB of wire form, against `serde_json`
//! doing the same job on the same bytes in the same run (writing a ready JSON tree; parsing
//! into a JSON tree). Records are Debezium-like inserts of about 200 B, 1 KiB and 2 KiB.
//!
//! `cargo bench --manifest-path sdk/event/Cargo.toml` (release). The host-side packing of
//! whole events, with positions and ids, is in `cargo bench -p cdc-tests --bench transform`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cdc_event::wire::{RecordRef, SourceRef, read_record, write_record};
use cdc_event::{Decimal, PackedBatch, Row, TableId, Value};
use serde_json::{Map, Value as Json, json};

const RECORDS: usize = 1000;
const SAMPLES: usize = 15;

struct Record {
    table: TableId,
    key: Row,
    after: Row,
    source: Map<String, Json>,
    id: String,
}

/// A record of about `size` bytes: an insert with an email, and for larger sizes text, integer,
/// decimal, timestamp and boolean columns; the last text column pads it to `size`.
fn record(id: i64, size: usize) -> Record {
    let mut after = Row::new().with("id", id).with("email", format!("u{id}@example.com"));
    let columns = size / 160;
    for column in 0..columns {
        after.push(
            format!("note_{column}"),
            Value::Text("lorem ipsum dolor sit amet, consectetur ".repeat(2)),
        );
        after.push(format!("count_{column}"), Value::Int(1_000_000 + column as i64));
    }
    after.push("price", Value::Decimal(Decimal::parse("1234.50").expect("a decimal")));
    after.push("updated_at", Value::Timestamp(1_700_000_000_123_456));
    after.push("active", Value::Bool(true));
    let source = json!({"connector": "postgresql", "db": "shop", "lsn": 23_600_000, "txId": 772});
    let mut record = Record {
        table: TableId { database: None, schema: Some("public".into()), table: "users".into() },
        key: Row::new().with("id", id),
        after,
        source: source.as_object().expect("an object").clone(),
        id: format!("shop.public.users/0/{id}"),
    };
    let pad = size.saturating_sub(written(&record).len());
    record.after.push("name", Value::Text("n".repeat(pad)));
    record
}

fn write(record: &Record, out: &mut Vec<u8>) {
    let reference = RecordRef {
        op: cdc_event::Op::Create,
        table: &record.table,
        key: Some(&record.key),
        before: None,
        after: Some(&record.after),
        source: SourceRef::Map(&record.source),
        ts_ms: Some(1_700_000_000_000),
        id: &record.id,
    };
    write_record(&reference, out);
}

fn written(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    write(record, &mut out);
    out
}

/// The median over samples of the time `batch` takes, per record.
fn per_record(mut batch: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            batch();
            start.elapsed() / RECORDS as u32
        })
        .collect();
    samples.sort();
    samples[SAMPLES / 2]
}

fn main() {
    println!(
        "{:>7} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "record", "write ns", "ns/KiB", "serde write", "read ns", "ns/KiB", "serde parse"
    );
    for size in [200, 1024, 2048] {
        let records: Vec<Record> = (0..RECORDS as i64).map(|id| record(id, size)).collect();
        let mut packed = PackedBatch::default();
        for record in &records {
            packed.push_with(|out| write(record, out)).expect("fits");
        }
        let bytes = packed.data.len() / RECORDS;
        let trees: Vec<Json> =
            (0..RECORDS).map(|i| serde_json::from_slice(packed.record(i).unwrap()).unwrap()).collect();

        // One buffer reused from batch to batch, as the host reuses it per plugin instance.
        let mut batch = PackedBatch::with_capacity(RECORDS, bytes);
        let write_ns = per_record(|| {
            batch.clear();
            for record in black_box(&records) {
                batch.push_with(|out| write(record, out)).expect("fits");
            }
            black_box(&batch);
        });
        let mut data = Vec::with_capacity(RECORDS * bytes);
        let serde_write_ns = per_record(|| {
            data.clear();
            for tree in black_box(&trees) {
                serde_json::to_writer(&mut data, tree).expect("JSON");
            }
            black_box(&data);
        });
        let read_ns = per_record(|| {
            for index in 0..RECORDS {
                black_box(read_record(black_box(packed.record(index).unwrap())).expect("reads"));
            }
        });
        let serde_parse_ns = per_record(|| {
            for index in 0..RECORDS {
                black_box(
                    serde_json::from_slice::<Json>(black_box(packed.record(index).unwrap())).expect("JSON"),
                );
            }
        });
        let per_kib = |time: Duration| time.as_nanos() as f64 * 1024.0 / bytes as f64;
        println!(
            "{:>5} B {:>12} {:>12.0} {:>12} {:>12} {:>12.0} {:>12}",
            bytes,
            write_ns.as_nanos(),
            per_kib(write_ns),
            serde_write_ns.as_nanos(),
            read_ns.as_nanos(),
            per_kib(read_ns),
            serde_parse_ns.as_nanos()
        );
    }
}
