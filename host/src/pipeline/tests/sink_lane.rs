use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Harness, TOPIC, glacial_retry, partition, quick_retry};
use crate::error::ErrorClass;
use crate::event::ChangeEvent;
use crate::pipeline::lane::SinkBatch;
use crate::pipeline::retry::RetrySettings;
use crate::pipeline::{SinkLane, SinkSettings};
use crate::sinks::Batching;
use crate::testing::{self, Fault, ScriptedSinkFactory};

/// Events of keys `1..=count` at offsets `0..count` of partition 0.
fn events(count: i64) -> Vec<ChangeEvent> {
    (0..count).map(|offset| testing::event(TOPIC, 0, offset, offset + 1)).collect()
}

fn batch(events: Vec<ChangeEvent>) -> SinkBatch {
    let records: Vec<_> = events
        .iter()
        .map(|event| {
            let (offset, id) = (offset_of(event), testing::key_id(event));
            Arc::new(testing::record(TOPIC, 0, offset, id))
        })
        .collect();
    let next_offset = events.last().map_or(0, |event| offset_of(event) + 1);
    SinkBatch { events: events.into(), records: records.into(), next_offset }
}

fn offset_of(event: &ChangeEvent) -> i64 {
    match &event.position {
        crate::event::Position::Kafka { offset, .. } => *offset,
        crate::event::Position::Wal { .. } => unreachable!("test events are Kafka events"),
    }
}

/// Runs one sink lane over `batches` until it acked them all (or `limit` passes).
async fn deliver(
    harness: &Harness,
    factory: &ScriptedSinkFactory,
    retry: RetrySettings,
    record_retries: u32,
    batches: Vec<SinkBatch>,
) -> tokio::task::JoinHandle<()> {
    let offsets = batches.iter().flat_map(|batch| batch.records.iter().map(|record| record.offset));
    let (sender, lane) = start_lane(harness, factory, retry, record_retries, offsets.collect());
    for batch in batches {
        sender.send(batch).unwrap();
    }
    lane
}

/// Starts one sink lane for records at `offsets` (dispatched to it); it runs until the
/// returned sender is dropped.
fn start_lane(
    harness: &Harness,
    factory: &ScriptedSinkFactory,
    retry: RetrySettings,
    record_retries: u32,
    offsets: Vec<i64>,
) -> (mpsc::UnboundedSender<SinkBatch>, tokio::task::JoinHandle<()>) {
    let acks = harness.context.tracker.partition(&partition(0));
    offsets.into_iter().for_each(|offset| acks.dispatched(offset));
    let spec = SinkSettings { factory: Arc::new(factory.clone()), retry };
    let lane = SinkLane::new(0, &spec, acks, record_retries, harness.context.clone());
    let (sender, receiver) = mpsc::unbounded_channel();
    (sender, tokio::spawn(lane.run(receiver, MAX_EVENTS)))
}

/// The most events the lane delivers together.
const MAX_EVENTS: usize = 100;

fn id(offset: i64) -> String {
    format!("{TOPIC}/0/{offset}")
}

#[tokio::test]
async fn a_record_error_without_a_culprit_is_found_by_halving_without_waiting() {
    let harness = Harness::new(1, None);
    // The sink fails whole writes that hold key 37, without saying which event is at fault.
    let factory = ScriptedSinkFactory::scripted("sink", |event, _| {
        (testing::key_id(event) == 37).then_some(Fault { class: ErrorClass::Record, names_event: false })
    });
    let lane = deliver(&harness, &factory, glacial_retry(), 0, vec![batch(events(64))]).await;
    tokio::time::timeout(Duration::from_secs(10), lane).await.expect("no waits for record errors").unwrap();

    assert_eq!(harness.dlq.offsets(), vec![36]);
    let log = factory.log();
    let expected: Vec<String> = (0..64).filter(|offset| *offset != 36).map(id).collect();
    assert_eq!(log.durable, expected, "everything else is delivered, in order");
    assert!(log.writes.len() <= 2 * 6 + 2, "O(log n) writes, not one per event: {:?}", log.writes);
    assert_eq!(harness.committable(0), Some(64));
}

#[tokio::test]
async fn a_refused_event_is_settled_before_anything_after_it_even_when_the_sink_wrote_past_it() {
    let harness = Harness::new(1, None);
    // Like a wasm sink: writes every other event, then reports key 3 refused, once.
    let factory = ScriptedSinkFactory::scripted("sink", |event, seen| {
        (testing::key_id(event) == 3 && seen == 1)
            .then_some(Fault { class: ErrorClass::Record, names_event: true })
    })
    .writing_past_refusal();
    let lane = deliver(&harness, &factory, quick_retry(), 1, vec![batch(events(6))]).await;
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    assert!(harness.dlq.offsets().is_empty(), "accepted on its retry");
    let log = factory.log();
    let last_write = |offset: i64| log.written.iter().rposition(|written| *written == id(offset)).unwrap();
    for later in 3..6 {
        assert!(
            last_write(2) < last_write(later),
            "offset {later} is written again after offset 2: {:?}",
            log.written
        );
    }
    assert_eq!(harness.committable(0), Some(6));
}

#[tokio::test]
async fn a_record_refused_alone_is_retried_then_dead_lettered() {
    let harness = Harness::new(1, None);
    let factory = ScriptedSinkFactory::scripted("sink", |event, _| {
        (testing::key_id(event) == 2).then_some(Fault { class: ErrorClass::Record, names_event: true })
    });
    let lane = deliver(&harness, &factory, quick_retry(), 2, vec![batch(events(4))]).await;
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    assert_eq!(harness.dlq.offsets(), vec![1]);
    assert_eq!(harness.dlq.failures()[0].attempts, 3, "one attempt and two retries");
    assert_eq!(factory.log().durable, vec![id(0), id(2), id(3)]);
    assert_eq!(harness.committable(0), Some(4));
}

#[tokio::test]
async fn a_trapping_record_is_retried_per_policy_then_dead_lettered_not_forever() {
    let harness = Harness::new(1, None);
    let factory = ScriptedSinkFactory::scripted("sink", |event, _| {
        (testing::key_id(event) == 5).then_some(Fault { class: ErrorClass::Fault, names_event: false })
    });
    let lane = deliver(&harness, &factory, quick_retry(), 0, vec![batch(events(8))]).await;
    tokio::time::timeout(Duration::from_secs(10), lane)
        .await
        .expect("a trap is not retried forever")
        .unwrap();

    assert_eq!(harness.dlq.offsets(), vec![4]);
    assert_eq!(factory.log().durable.len(), 7);
    assert_eq!(harness.committable(0), Some(8));
}

#[tokio::test]
async fn a_transient_failure_holds_the_partition_and_never_dead_letters() {
    let harness = Harness::new(1, None);
    let factory = ScriptedSinkFactory::scripted("sink", |event, _| {
        (testing::key_id(event) == 2).then_some(Fault { class: ErrorClass::TRANSIENT, names_event: true })
    });
    let lane = deliver(&harness, &factory, quick_retry(), 0, vec![batch(events(4))]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(!lane.is_finished(), "still retrying");
    assert!(harness.dlq.offsets().is_empty());
    assert_eq!(harness.committable(0), None, "nothing acked past the held record");
    assert!(factory.log().writes.len() > 10, "retried: {:?}", factory.log().writes.len());
    let readiness = harness.context.health.readiness().1.to_string();
    assert!(readiness.contains("the sink says: failing as its script says"), "{readiness}");
    lane.abort();
}

#[tokio::test]
async fn a_fatal_error_halts_and_acks_nothing() {
    let harness = Harness::new(1, None);
    let factory = ScriptedSinkFactory::scripted("sink", |event, _| {
        (testing::key_id(event) == 2).then_some(Fault { class: ErrorClass::Fatal, names_event: true })
    });
    let lane = deliver(&harness, &factory, quick_retry(), 3, vec![batch(events(4))]).await;
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    assert!(
        harness.halt_reason().is_some_and(|reason| reason.contains("refused")),
        "{:?}",
        harness.halt_reason()
    );
    assert_eq!(harness.committable(0), None);
    assert!(harness.dlq.offsets().is_empty());
    assert_eq!(factory.log().closed, 1, "the sink is closed when its lane ends");
}

#[tokio::test]
async fn a_failed_flush_writes_the_batch_again_and_the_sink_is_closed_at_the_end() {
    let harness = Harness::new(1, None);
    let factory = ScriptedSinkFactory::reliable("sink");
    factory.fail_flushes(2);
    let lane = deliver(&harness, &factory, quick_retry(), 0, vec![batch(events(3))]).await;
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    let log = factory.log();
    assert_eq!(log.failed_flushes, 2);
    assert_eq!(log.durable, vec![id(0), id(1), id(2)]);
    assert_eq!(log.writes, vec![3, 3, 3]);
    assert_eq!((log.opened, log.closed), (1, 1), "opened before the first write, closed last");
    assert_eq!(harness.committable(0), Some(3));
}

#[tokio::test]
async fn batches_that_queued_behind_a_busy_sink_are_delivered_together_up_to_the_limit() {
    let harness = Harness::new(1, None);
    let factory = ScriptedSinkFactory::reliable("sink");
    let all = events(250);
    let batches = all.chunks(40).map(|chunk| batch(chunk.to_vec())).collect();
    let lane = deliver(&harness, &factory, quick_retry(), 0, batches).await;
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    let log = factory.log();
    // Batches of 40 queued: two fit under 100 together, a third would not; the last 10 do.
    assert_eq!(log.writes, vec![80, 80, 90]);
    assert_eq!(log.durable, (0..250).map(id).collect::<Vec<_>>(), "in order, each once");
    assert_eq!(harness.committable(0), Some(250));
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_lingers_gets_what_arrives_meanwhile_in_one_write() {
    let harness = Harness::new(1, None);
    let batching = Batching { max_events: 0, linger: Duration::from_millis(200) };
    let factory = ScriptedSinkFactory::reliable("sink").with_batching(batching);
    let all = events(30);
    let (sender, lane) = start_lane(&harness, &factory, quick_retry(), 0, (0..30).collect());
    sender.send(batch(all[..10].to_vec())).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    sender.send(batch(all[10..20].to_vec())).unwrap();
    // Past the linger: a write of its own.
    tokio::time::sleep(Duration::from_millis(400)).await;
    sender.send(batch(all[20..].to_vec())).unwrap();
    drop(sender);
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    let log = factory.log();
    assert_eq!(log.writes, vec![20, 10], "the two batches 50 ms apart went together");
    assert_eq!(harness.committable(0), Some(30));
}

#[tokio::test]
async fn a_sink_that_overlaps_deliveries_gets_them_in_order_and_one_that_failed_is_written_again() {
    let harness = Harness::new(1, None);
    // Key 37 (offset 36) is refused: its delivery fails, and so does the one sent after it.
    let factory = ScriptedSinkFactory::scripted("sink", |event, _| {
        (testing::key_id(event) == 37).then_some(Fault { class: ErrorClass::Record, names_event: true })
    })
    .overlapping();
    let all = events(250);
    let batches = all.chunks(40).map(|chunk| batch(chunk.to_vec())).collect();
    let lane = deliver(&harness, &factory, quick_retry(), 0, batches).await;
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();

    let log = factory.log();
    assert_eq!(log.submits, vec![80, 80, 90], "the next delivery is sent before the last is settled");
    let wanted: Vec<String> = (0..250).filter(|&offset| offset != 36).map(id).collect();
    assert_eq!(log.durable, wanted, "in order, each once, the failed deliveries written again");
    assert_eq!(harness.dlq.offsets(), vec![36]);
    assert_eq!(harness.committable(0), Some(250));
}

#[tokio::test]
async fn a_delivery_in_flight_is_acked_while_the_lane_waits_for_more() {
    let harness = Harness::new(1, None);
    let factory = ScriptedSinkFactory::reliable("sink").overlapping();
    let (sender, lane) = start_lane(&harness, &factory, quick_retry(), 0, (0..10).collect());
    sender.send(batch(events(10))).unwrap();
    let acked = async {
        while harness.committable(0) != Some(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), acked).await.expect("acked with the channel still open");
    assert_eq!(factory.log().submits, vec![10]);
    drop(sender);
    tokio::time::timeout(Duration::from_secs(10), lane).await.unwrap().unwrap();
}
