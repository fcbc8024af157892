//! The first whole path: PostgreSQL → Debezium → Kafka → `cdc run` with the example wasm
//! transform → a webhook, then SIGTERM, and the group's committed offsets checked.

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_tests::build::plugin_wasm;
use cdc_tests::kafka::committed_offsets;
use cdc_tests::receiver::{Delivery, WebhookReceiver, eventually};
use cdc_tests::scenario::{PipelineParts, Scenario};
use serde_json::{Value as Json, json};

use crate::delivery::key_id;

/// Joining a consumer group and Debezium's start take a while on the test stack.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
const AUTH_TOKEN: &str = "e2e-secret-token";

/// Per key: the ops and `after` rows delivered, in arrival order.
fn by_key(deliveries: &[Delivery]) -> BTreeMap<i64, Vec<(String, Json)>> {
    let mut keys: BTreeMap<i64, Vec<(String, Json)>> = BTreeMap::new();
    for delivery in deliveries {
        let op = delivery.body["value"]["op"].as_str().expect("value.op").to_owned();
        keys.entry(key_id(delivery)).or_default().push((op, delivery.body["value"]["after"].clone()));
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_flow_through_the_wasm_transform_to_the_webhook_and_are_committed() {
    let scenario =
        Scenario::new("id bigint PRIMARY KEY, customer text NOT NULL, email text, status text NOT NULL")
            .await;
    let receiver = WebhookReceiver::start().await;
    let plugin = plugin_wasm("filter-mask");
    let parts = PipelineParts {
        transforms: format!(
            "  - name: drop-test-and-mask-email\n    plugin:\n      path: {}\n      config:\n        drop_where: {{column: status, equals: test}}\n        mask: [email]\n",
            plugin.display()
        ),
        sinks: format!(
            "  - sink_id: hook\n    sink_type: webhook\n    webhook:\n      url: {}\n      auth_token: ${{E2E_AUTH_TOKEN}}\n      timeout_seconds: 5\n",
            receiver.url()
        ),
        platform: "lag_monitor_interval_seconds: 1\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, health_port) = scenario.start(&parts, &[("E2E_AUTH_TOKEN", AUTH_TOKEN)]);
    scenario.wait_streaming(&cdc).await;

    let table = &scenario.names.table;
    scenario.sql(&format!("INSERT INTO public.{table} VALUES (1, 'ada', 'ada@example.com', 'new')")).await;
    scenario.sql(&format!("INSERT INTO public.{table} VALUES (2, 'bob', 'bob@example.com', 'test')")).await;
    scenario.sql(&format!("INSERT INTO public.{table} VALUES (3, 'cy', 'cy@example.com', 'new')")).await;
    scenario.sql(&format!("UPDATE public.{table} SET status = 'shipped' WHERE id = 1")).await;
    scenario.sql(&format!("DELETE FROM public.{table} WHERE id = 3")).await;
    scenario.sql(&format!("UPDATE public.{table} SET status = 'new' WHERE id = 2")).await;

    let deliveries = receiver.wait_for(5, DELIVERY_TIMEOUT).await;
    assert_eq!(deliveries.len(), 5, "deliveries: {deliveries:#?}\ncdc log:\n{}", cdc.log());
    let masked = |id: i64, customer: &str, status: &str| json!({"id": id, "customer": customer, "email": "***", "status": status});
    let expected: BTreeMap<i64, Vec<(String, Json)>> = BTreeMap::from([
        (1, vec![("c".into(), masked(1, "ada", "new")), ("u".into(), masked(1, "ada", "shipped"))]),
        // The insert with status 'test' was dropped by the transform; the later update is kept.
        (2, vec![("u".into(), masked(2, "bob", "new"))]),
        (3, vec![("c".into(), masked(3, "cy", "new")), ("d".into(), Json::Null)]),
    ]);
    assert_eq!(by_key(&deliveries), expected);

    let topic = scenario.topic();
    for delivery in &deliveries {
        let metadata = &delivery.body["metadata"];
        assert_eq!(metadata["topic"], topic.as_str());
        let id = format!("{}/{}/{}", topic, metadata["partition"], metadata["offset"]);
        assert_eq!(delivery.idempotency_key.as_deref(), Some(id.as_str()));
        assert_eq!(delivery.authorization.as_deref(), Some(format!("Bearer {AUTH_TOKEN}").as_str()));
        assert_eq!(delivery.body["value"]["source"]["table"], table.as_str());
    }

    let ready = reqwest::get(format!("http://127.0.0.1:{health_port}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "readyz: {}", ready.text().await.unwrap_or_default());
    let metrics_url = format!("http://127.0.0.1:{health_port}/metrics");
    let lag_reported = eventually(Duration::from_secs(10), || async {
        reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains(&format!("cdc_consumer_lag{{id=\"{}", scenario.topic()))
    })
    .await;
    let metrics = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    assert!(lag_reported, "no lag gauge in /metrics:\n{metrics}");
    assert!(metrics.contains("cdc_sink_events_delivered_total{id=\"hook\"} 5"), "{metrics}");
    assert!(
        metrics.contains("cdc_transform_events_dropped_total{id=\"drop-test-and-mask-email\"} 1"),
        "{metrics}"
    );

    let status = cdc.terminate(Duration::from_secs(60));
    let log = cdc.log();
    assert!(status.success(), "cdc exited with {status} after SIGTERM:\n{log}");
    assert!(!log.contains(AUTH_TOKEN), "the auth token leaked into the log:\n{log}");

    // Every delivered change is covered by the group's committed offsets.
    let highest = deliveries.iter().map(|d| d.body["metadata"]["offset"].as_i64().unwrap()).max().unwrap();
    let committed = committed_offsets(&scenario.env.kafka, &scenario.names.group, &topic);
    assert!(
        committed.values().any(|offset| *offset > highest),
        "committed {committed:?} does not cover {highest}:\n{log}"
    );
    scenario.cleanup().await;
}
