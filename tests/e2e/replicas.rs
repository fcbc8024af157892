//! Scale-out: a second replica of the same pipeline joins the consumer group under load and
//! leaves again; the partitions move between them and no change is lost.

use std::time::Duration;

use cdc_tests::receiver::WebhookReceiver;
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};

use crate::delivery::{assert_stable_idempotency_ids, created_ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joining_and_leaving_under_load_loses_nothing() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let receiver = WebhookReceiver::start().await;
    let parts = PipelineParts {
        sinks: webhook_sink("hook", &receiver.url()),
        partitions: 4,
        kafka: "  commit_interval_seconds: 0.5\n".into(),
        ..PipelineParts::default()
    };
    let (mut first, first_port) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&first).await;
    scenario.wait_ready(first_port, &first, Duration::from_secs(90)).await;

    let total: i64 = 240;
    let load = scenario.spawn_load(total, Duration::from_millis(80), None);

    receiver.wait_for(30, Duration::from_secs(60)).await;
    let (mut second, second_port) = scenario.start(&parts, &[]);
    scenario.wait_ready(second_port, &second, Duration::from_secs(90)).await;
    let before_leave = receiver.deliveries().len();
    receiver.wait_for(before_leave + 30, Duration::from_secs(60)).await;
    let second_status = second.terminate(Duration::from_secs(60));
    let second_log = second.log();
    assert!(second_status.success(), "second replica exited {second_status}:\n{second_log}");
    assert!(
        second_log.contains(&format!("consumer.assigned partitions={}", scenario.topic())),
        "the second replica never got partitions:\n{second_log}"
    );
    load.await.unwrap();

    let deliveries = receiver.wait_for(total as usize, Duration::from_secs(120)).await;
    let missing: Vec<i64> = (1..=total).filter(|id| !created_ids(&deliveries).contains(id)).collect();
    assert!(missing.is_empty(), "missing {missing:?}\nfirst:\n{}\nsecond:\n{second_log}", first.log());
    assert_stable_idempotency_ids(&receiver.deliveries());
    assert!(first.terminate(Duration::from_secs(60)).success(), "{}", first.log());
    scenario.cleanup().await;
}
