//! The pipeline run in-process against librdkafka's mock cluster (INFRA.md: real protocol,
//! commits and groups), for what the test broker (tansu) cannot show: a DLQ that refuses writes
//! (its topic is led by a second broker the test takes down and brings back), and commits of a
//! pipeline without sinks.

use std::sync::Arc;
use std::time::Duration;

use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::Metrics;
use cdc_host::pipeline::{self, Outcome};
use cdc_tests::kafka::{committed_offsets, produce, read_topic};
use cdc_tests::pipeline::{WebhookPipeline, pipeline_settings};
use cdc_tests::receiver::{WebhookReceiver, eventually};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use serde_json::json;

use crate::delivery::key_id;

const TOPIC: &str = "mock.public.customers";
const DLQ_TOPIC: &str = "mock.public.customers.dlq";
const GROUP: &str = "cdc-dlq-outage";

/// A Debezium insert of customer `id`: its key and value.
pub(crate) fn envelope(id: i64) -> (Vec<u8>, Vec<u8>) {
    let key = json!({"id": id}).to_string().into_bytes();
    let value = json!({
        "before": null,
        "after": {"id": id, "name": format!("customer {id}")},
        "source": {"connector": "postgresql", "db": "shop", "schema": "public", "table": "customers", "snapshot": "false"},
        "op": "c",
        "ts_ms": 1_700_000_000_000i64,
    });
    (key, value.to_string().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_dlq_holds_the_partition_and_nothing_is_committed_past_it() {
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    cluster.create_topic(DLQ_TOPIC, 1, 1).unwrap();
    cluster.partition_leader(TOPIC, 0, Some(1)).unwrap();
    cluster.partition_leader(DLQ_TOPIC, 0, Some(2)).unwrap();
    cluster.coordinator(MockCoordinator::Group(GROUP.into()), 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();

    for id in 1..=2 {
        let (key, value) = envelope(id);
        produce(&bootstrap, TOPIC, 0, Some(&key), &value).await;
    }
    let poison_offset = produce(&bootstrap, TOPIC, 0, Some(b"poison"), b"{this is not json").await;
    for id in 3..=4 {
        let (key, value) = envelope(id);
        produce(&bootstrap, TOPIC, 0, Some(&key), &value).await;
    }
    cluster.broker_down(2).unwrap();

    let receiver = WebhookReceiver::start().await;
    let pipeline =
        WebhookPipeline::spawn(&bootstrap, GROUP, TOPIC, &receiver.settings(), Duration::from_secs(2));
    let health = pipeline.health.clone();

    // The records before the poison are delivered and committed; the poison cannot be
    // dead-lettered, so the partition holds.
    let before = receiver.wait_for(2, Duration::from_secs(60)).await;
    assert_eq!(before.iter().map(key_id).collect::<Vec<_>>(), vec![1, 2]);
    let dlq_reported = eventually(Duration::from_secs(30), || async {
        health.readiness().1["failing"].get("dlq").is_some()
    })
    .await;
    assert!(dlq_reported, "readyz does not name the DLQ: {}", health.readiness().1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.deliveries().len(),
        2,
        "records after the poison were delivered while the DLQ was down"
    );
    let committed = committed_offsets(&bootstrap, GROUP, TOPIC)[&0];
    assert_eq!(committed, poison_offset, "the commit must stop at the record the DLQ could not take");

    // The DLQ comes back: the poison is dead-lettered and the rest follows.
    cluster.broker_up(2).unwrap();
    let after = receiver.wait_for(4, Duration::from_secs(60)).await;
    assert_eq!(after.iter().map(key_id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let end = poison_offset + 3;
    let caught_up = eventually(Duration::from_secs(20), || async {
        committed_offsets(&bootstrap, GROUP, TOPIC)[&0] == end
    })
    .await;
    assert!(caught_up, "commit did not reach {end}");
    assert!(health.readiness().1["failing"].get("dlq").is_none(), "{}", health.readiness().1);
    let dead = read_topic(&bootstrap, DLQ_TOPIC, 1, Duration::from_secs(10));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some(&b"{this is not json"[..]));
    assert_eq!(dead[0].headers["__connect.errors.offset"], poison_offset.to_string());

    assert_eq!(pipeline.stop().await, Outcome::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_without_sinks_still_commits_what_it_consumed() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let mut last = 0;
    for id in 1..=5 {
        let (key, value) = envelope(id);
        last = produce(&bootstrap, TOPIC, 0, Some(&key), &value).await;
    }
    // An empty value is not JSON: with the DLQ off it halts the pipeline, so it goes last and
    // the commit must stop right before it.
    produce(&bootstrap, TOPIC, 0, Some(b"k"), b"").await;
    let group = "cdc-no-sinks";
    let health = Arc::new(Health::new([]));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let outcome = pipeline::run(
        pipeline_settings(&bootstrap, group, TOPIC, Vec::new()),
        None,
        health.clone(),
        Arc::new(Metrics::default()),
        async {
            let _ = stopped.await;
        },
    )
    .await
    .unwrap();
    let Outcome::Halted(reason) = outcome else { panic!("an undecodable record without a DLQ must halt") };
    assert!(reason.contains("DLQ is disabled"), "{reason}");
    assert!(health.readiness().1["failing"]["pipeline"].as_str().unwrap().contains("halted"));
    assert_eq!(
        committed_offsets(&bootstrap, group, TOPIC)[&0],
        last + 1,
        "everything before the bad record is committed"
    );
}
