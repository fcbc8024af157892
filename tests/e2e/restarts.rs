//! Stops and crashes: SIGTERM drains and commits so that a restart delivers nothing twice; kill -9
//! under load, repeatedly, loses nothing, and a change delivered twice keeps its idempotency id.

use std::collections::BTreeSet;
use std::time::Duration;

use cdc_tests::receiver::WebhookReceiver;
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};

use crate::delivery::{assert_per_key_order, assert_stable_idempotency_ids, created_ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_commits_so_a_restart_delivers_nothing_twice() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let receiver = WebhookReceiver::start().await;
    let parts = PipelineParts { sinks: webhook_sink("hook", &receiver.url()), ..PipelineParts::default() };

    let (mut first, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&first).await;
    scenario.insert_rows(1..=20).await;
    assert_eq!(receiver.wait_for(20, Duration::from_secs(120)).await.len(), 20, "{}", first.log());
    let status = first.terminate(Duration::from_secs(60));
    assert!(status.success(), "exit {status}:\n{}", first.log());

    let (mut second, health_port) = scenario.start(&parts, &[]);
    scenario.insert_rows(21..=30).await;
    let deliveries = receiver.wait_for(30, Duration::from_secs(120)).await;
    assert_eq!(deliveries.len(), 30, "{}", second.log());
    // Give a redelivery, if there were one, time to show up.
    scenario.wait_ready(health_port, &second, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deliveries = receiver.deliveries();
    let ids: BTreeSet<String> = deliveries.iter().filter_map(|d| d.idempotency_key.clone()).collect();
    assert_eq!(deliveries.len(), 30, "a change was delivered twice:\n{}", second.log());
    assert_eq!(ids.len(), 30);
    assert_eq!(created_ids(&deliveries), (1..=30).collect());
    assert!(second.terminate(Duration::from_secs(60)).success(), "{}", second.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_and_keeps_ids_stable() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let receiver = WebhookReceiver::start().await;
    let parts = PipelineParts {
        sinks: webhook_sink("hook", &receiver.url()),
        kafka: "  commit_interval_seconds: 0.5\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;

    let total: i64 = 300;
    let load = scenario.spawn_load(total, Duration::from_millis(40), Some(3));

    let mut logs = String::new();
    for round in 0..3 {
        // Let some deliveries happen, then crash in the middle of the stream.
        let seen = receiver.deliveries().len();
        receiver.wait_for(seen + 20, Duration::from_secs(120)).await;
        cdc.kill();
        logs.push_str(&format!("--- run {round} ---\n{}", cdc.log()));
        cdc = scenario.start(&parts, &[]).0;
    }
    load.await.unwrap();

    let expected_deliveries = (total + total / 3) as usize;
    let deliveries = receiver.wait_for(expected_deliveries, Duration::from_secs(180)).await;
    let mut complete = created_ids(&deliveries) == (1..=total).collect();
    for _ in 0..60 {
        if complete {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        complete = created_ids(&receiver.deliveries()) == (1..=total).collect();
    }
    let deliveries = receiver.deliveries();
    let missing: Vec<i64> = (1..=total).filter(|id| !created_ids(&deliveries).contains(id)).collect();
    assert!(missing.is_empty(), "missing inserts {missing:?}\n{logs}\n--- last ---\n{}", cdc.log());
    let updates = deliveries
        .iter()
        .filter(|d| d.body["value"]["op"] == "u")
        .map(|d| d.idempotency_key.clone())
        .collect::<BTreeSet<_>>();
    assert_eq!(updates.len(), (total / 3) as usize, "every update arrives");
    assert_stable_idempotency_ids(&deliveries);
    assert_per_key_order(&deliveries);
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}
