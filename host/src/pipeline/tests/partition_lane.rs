use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Harness, TOPIC, eventually, partition, quick_retry};
use crate::error::ErrorClass;
use crate::event::ChangeEvent;
use crate::pipeline::lane::SinkBatch;
use crate::pipeline::{PartitionLane, spawn_contained};
use crate::plugin::Transform;
use crate::source::SourceRecord;
use crate::testing::{self, NativeTransform, Step};

/// A partition lane over `transforms` feeding one sink channel, with `records` queued.
fn start(
    harness: &Harness,
    number: i32,
    transforms: Vec<Box<dyn Transform>>,
    records: Vec<SourceRecord>,
) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<SinkBatch>, mpsc::UnboundedSender<SourceRecord>) {
    start_batched(harness, number, transforms, records, 100)
}

/// As [`start`], taking up to `batch_size` records at once.
fn start_batched(
    harness: &Harness,
    number: i32,
    transforms: Vec<Box<dyn Transform>>,
    records: Vec<SourceRecord>,
    batch_size: usize,
) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<SinkBatch>, mpsc::UnboundedSender<SourceRecord>) {
    let acks = harness.context.tracker.partition(&partition(number));
    let (sink, batches) = mpsc::unbounded_channel();
    let lane = PartitionLane {
        transforms,
        sinks: vec![sink],
        acks: acks.clone(),
        retry: quick_retry(),
        batch_size,
        context: harness.context.clone(),
    };
    let (sender, receiver) = mpsc::unbounded_channel();
    for record in records {
        acks.dispatched(record.offset);
        sender.send(record).unwrap();
    }
    (tokio::spawn(lane.run(receiver)), batches, sender)
}

fn records(number: i32, count: i64) -> Vec<SourceRecord> {
    (0..count).map(|offset| testing::record(TOPIC, number, offset, offset + 1)).collect()
}

/// The events of every batch that arrives within `limit`, until `count` have.
async fn collect(
    batches: &mut mpsc::UnboundedReceiver<SinkBatch>,
    count: usize,
    limit: Duration,
) -> Vec<ChangeEvent> {
    let mut events = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        while events.len() < count {
            match batches.recv().await {
                Some(batch) => events.extend(batch.events.iter().cloned()),
                None => return,
            }
        }
    })
    .await;
    events
}

fn ids(events: &[ChangeEvent]) -> Vec<String> {
    events.iter().map(ChangeEvent::idempotency_id).collect()
}

fn fan_out() -> NativeTransform {
    NativeTransform::new("fan-out", |event| Step::Emit(vec![event.clone(), event.clone(), event.clone()]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_a_record_yields_has_its_own_id_and_keeps_it_on_replay() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let harness = Harness::new(1, None);
        let (_lane, mut batches, _records) = start(&harness, 0, vec![Box::new(fan_out())], records(0, 2));
        runs.push(ids(&collect(&mut batches, 6, Duration::from_secs(10)).await));
    }
    let expected = ["0", "0/1", "0/2", "1", "1/1", "1/2"].map(|suffix| format!("{TOPIC}/0/{suffix}"));
    assert_eq!(runs[0], expected);
    assert_eq!(runs[1], runs[0], "ids are stable across replays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_decoded_across_cores_keeps_its_order_and_dead_letters_in_place() {
    let harness = Harness::new(1, None);
    // Large enough to be decoded in chunks on the blocking pool, with a bad record in the middle.
    let mut batch = records(0, 600);
    batch[300] = testing::garbage(TOPIC, 0, 300);
    let (_lane, mut batches, _records) = start_batched(&harness, 0, Vec::new(), batch, 1000);
    let events = collect(&mut batches, 599, Duration::from_secs(10)).await;

    let keys: Vec<i64> = events.iter().map(testing::key_id).collect();
    let expected: Vec<i64> = (1..=600).filter(|&key| key != 301).collect();
    assert_eq!(keys, expected, "every good record, in order");
    assert_eq!(harness.dlq.offsets(), vec![300], "the bad record went to the DLQ");
    assert!(harness.halt_reason().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transforms_verdicts_are_honoured_retryable_held_poison_dead_lettered() {
    let harness = Harness::new(1, None);
    let retryable_calls = Arc::new(Mutex::new(0));
    let calls = retryable_calls.clone();
    let transform = NativeTransform::new("classes", move |event| match testing::key_id(event) {
        2 => Step::Refuse(ErrorClass::Record),
        4 => {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            if *calls < 4 { Step::Refuse(ErrorClass::TRANSIENT) } else { Step::Emit(vec![event.clone()]) }
        }
        _ => Step::Emit(vec![event.clone()]),
    });
    let (_lane, mut batches, _records) = start(&harness, 0, vec![Box::new(transform)], records(0, 6));
    let events = collect(&mut batches, 5, Duration::from_secs(10)).await;

    let keys: Vec<i64> = events.iter().map(testing::key_id).collect();
    assert_eq!(keys, vec![1, 3, 4, 5, 6], "the retryable record is held until it passes, in order");
    assert_eq!(harness.dlq.offsets(), vec![1], "only the poison record goes to the DLQ");
    assert_eq!(*retryable_calls.lock().unwrap(), 4);
    assert!(harness.halt_reason().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_verdict_halts_without_dead_lettering() {
    let harness = Harness::new(1, None);
    let transform = NativeTransform::new("fatal", |event| match testing::key_id(event) {
        3 => Step::Refuse(ErrorClass::Fatal),
        _ => Step::Emit(vec![event.clone()]),
    });
    let (lane, mut batches, records) = start(&harness, 0, vec![Box::new(transform)], records(0, 5));
    drop(records);
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    assert!(
        harness.halt_reason().is_some_and(|reason| reason.contains("fatal")),
        "{:?}",
        harness.halt_reason()
    );
    assert!(harness.dlq.offsets().is_empty());
    assert!(batches.try_recv().is_err(), "nothing delivered past the fatal record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_over_the_limit_splits_the_batch_and_dead_letters_only_a_record_too_big_alone() {
    let harness = Harness::new(1, None);
    // Each record yields two events, key 3 yields five; at most four fit in one call's output.
    let mut transform = NativeTransform::new("wide", |event| {
        let copies = if testing::key_id(event) == 3 { 5 } else { 2 };
        Step::Emit(vec![event.clone(); copies])
    });
    transform.max_output = 4;
    let (_lane, mut batches, _records) = start(&harness, 0, vec![Box::new(transform)], records(0, 6));
    let events = collect(&mut batches, 10, Duration::from_secs(10)).await;

    let keys: Vec<i64> = events.iter().map(testing::key_id).collect();
    assert_eq!(keys, vec![1, 1, 2, 2, 4, 4, 5, 5, 6, 6]);
    assert_eq!(harness.dlq.offsets(), vec![2]);
    assert!(harness.halt_reason().is_none(), "{:?}", harness.halt_reason());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_retried_then_split_down_to_the_record_that_traps() {
    let harness = Harness::new(1, None);
    let transform = NativeTransform::new("trap", |event| match testing::key_id(event) {
        7 => Step::Trap,
        _ => Step::Emit(vec![event.clone()]),
    });
    let (_lane, mut batches, _records) = start(&harness, 0, vec![Box::new(transform)], records(0, 10));
    let events = collect(&mut batches, 9, Duration::from_secs(10)).await;

    assert_eq!(events.len(), 9);
    assert_eq!(harness.dlq.offsets(), vec![6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_waiting_on_the_dlq_gives_its_permit_to_the_others() {
    let harness = Harness::new(1, Some(1));
    harness.dlq.set_unavailable(true);
    let garbage = vec![testing::garbage(TOPIC, 0, 0)];
    let (_stuck, _stuck_batches, _a) = start(&harness, 0, Vec::new(), garbage);
    assert!(eventually(Duration::from_secs(5), || harness.dlq.attempts() > 0).await, "the DLQ was tried");

    let (_healthy, mut batches, _b) = start(&harness, 1, Vec::new(), records(1, 3));
    let events = collect(&mut batches, 3, Duration::from_secs(5)).await;
    assert_eq!(events.len(), 3, "the healthy partition went on while the other waits for the DLQ");

    harness.dlq.set_unavailable(false);
    assert!(eventually(Duration::from_secs(5), || harness.dlq.offsets() == vec![0]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_that_panics_halts_the_pipeline_with_its_name() {
    let harness = Harness::new(1, None);
    let mut tasks = tokio::task::JoinSet::new();
    spawn_contained(&mut tasks, &harness.context, "the partition lane of t[0]".into(), async {
        panic!("index out of bounds");
    });
    while tasks.join_next().await.is_some() {}
    let reason = harness.halt_reason().expect("halted");
    assert!(
        reason.contains("the partition lane of t[0] panicked") && reason.contains("index out of bounds"),
        "{reason}"
    );
}
