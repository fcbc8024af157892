//! Independence: a sink that stalls on one partition holds back that partition's commit, but
//! neither the other partition of the same sink nor another sink.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cdc_tests::kafka::committed_offsets;
use cdc_tests::receiver::{WebhookReceiver, eventually};
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};

use crate::delivery::{created_ids, position};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_partition_delays_neither_other_partitions_nor_other_sinks() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let stalled = Arc::new(AtomicBool::new(true));
    let slow = WebhookReceiver::start().await;
    {
        let stalled = stalled.clone();
        slow.respond_with(move |body| {
            if stalled.load(Ordering::Relaxed) && body["metadata"]["partition"] == 0 { 503 } else { 200 }
        });
    }
    let fast = WebhookReceiver::start().await;
    let parts = PipelineParts {
        sinks: format!("{}{}", webhook_sink("slow", &slow.url()), webhook_sink("fast", &fast.url())),
        partitions: 2,
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let rows: i64 = 40;
    scenario.insert_rows(1..=rows).await;

    // The other sink gets everything while partition 0 of the slow sink is stalled.
    let everything = fast.wait_for(rows as usize, Duration::from_secs(120)).await;
    assert_eq!(created_ids(&everything), (1..=rows).collect(), "{}", cdc.log());
    let on_partition = |partition: i64| -> BTreeSet<i64> {
        everything.iter().filter(|d| position(d).0 == partition).map(|d| position(d).1).collect()
    };
    let (stalled_offsets, free_offsets) = (on_partition(0), on_partition(1));
    assert!(!stalled_offsets.is_empty() && !free_offsets.is_empty(), "keys must spread over both partitions");

    // The slow sink's other partition flows too.
    let free_delivered = eventually(Duration::from_secs(30), || async {
        slow.deliveries().iter().filter(|d| position(d).0 == 1).count() == free_offsets.len()
    })
    .await;
    assert!(free_delivered, "partition 1 of the slow sink was held back:\n{}", cdc.log());
    assert!(slow.deliveries().iter().all(|d| position(d).0 == 1));
    assert!(slow.attempts() > slow.deliveries().len(), "partition 0 was tried and refused");

    // Partition 0 commits nothing past what the slow sink has not delivered; partition 1 commits all.
    let group = &scenario.names.group;
    let topic = scenario.topic();
    let free_end = free_offsets.last().unwrap() + 1;
    let partition_one_committed = eventually(Duration::from_secs(20), || async {
        committed_offsets(&scenario.env.kafka, group, &topic).get(&1) == Some(&free_end)
    })
    .await;
    assert!(partition_one_committed, "{:?}", committed_offsets(&scenario.env.kafka, group, &topic));
    let first_stalled = *stalled_offsets.first().unwrap();
    let committed_zero = committed_offsets(&scenario.env.kafka, group, &topic)[&0];
    assert!(
        committed_zero <= first_stalled,
        "partition 0 committed {committed_zero} past undelivered {first_stalled}"
    );

    // Once the endpoint recovers, everything arrives and is committed.
    stalled.store(false, Ordering::Relaxed);
    let all = slow.wait_for(rows as usize, Duration::from_secs(60)).await;
    assert_eq!(created_ids(&all), (1..=rows).collect(), "{}", cdc.log());
    let stalled_end = stalled_offsets.last().unwrap() + 1;
    let caught_up = eventually(Duration::from_secs(20), || async {
        committed_offsets(&scenario.env.kafka, group, &topic).get(&0) == Some(&stalled_end)
    })
    .await;
    assert!(caught_up, "{:?}", committed_offsets(&scenario.env.kafka, group, &topic));
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}
