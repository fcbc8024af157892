//! A failed Debezium task: when the source database cannot be reached, Debezium's retries run
//! out and its task turns FAILED; `/readyz` names the connector while it is, the host restarts
//! the failed task once the database is back, and readiness and delivery come back without an
//! operator.

use std::time::Duration;

use cdc_tests::proxy::TcpProxy;
use cdc_tests::receiver::{WebhookReceiver, eventually};
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};

use crate::delivery::key_id;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connector_makes_the_pipeline_unready_until_its_restart_recovers_it() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let receiver = WebhookReceiver::start().await;
    // Debezium reaches PostgreSQL through a proxy the test can cut, and gives up after one
    // retry, so that its task fails within seconds of the outage.
    let database = TcpProxy::start(format!("{}:{}", scenario.env.pg_host, scenario.env.pg_port)).await;
    let parts = PipelineParts {
        sinks: webhook_sink("hook", &receiver.url()),
        source_port: Some(database.port()),
        connector: format!("  connect_url: {}\n  task_max_retries: 1\n", scenario.env.connect_url),
        ..PipelineParts::default()
    };
    let (mut cdc, health_port) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    scenario.wait_ready(health_port, &cdc, Duration::from_secs(90)).await;
    scenario.insert_rows(1..=1).await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(90)).await.len(), 1, "{}", cdc.log());

    database.cut();
    scenario.insert_rows(2..=2).await;
    let readyz = format!("http://127.0.0.1:{health_port}/readyz");
    let unready = eventually(Duration::from_secs(90), || async {
        match reqwest::get(&readyz).await {
            Ok(response) if response.status() == 503 => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                body["failing"]["connector"].as_str().is_some_and(|reason| reason.contains("failed"))
            }
            _ => false,
        }
    })
    .await;
    assert!(unready, "/readyz never named the failed connector\n{}", cdc.log());

    // The database is back: the host's restart of the failed task brings streaming back, and
    // the change made during the outage arrives with the ones after it.
    database.restore();
    scenario.wait_ready(health_port, &cdc, Duration::from_secs(90)).await;
    assert!(cdc.log().contains("connector.restart"), "{}", cdc.log());
    scenario.insert_rows(3..=3).await;
    let recovered = eventually(Duration::from_secs(90), || async {
        let ids: Vec<i64> = receiver.deliveries().iter().map(key_id).collect();
        ids.contains(&2) && ids.contains(&3)
    })
    .await;
    assert!(
        recovered,
        "not every change arrived after the restart: {:?}\n{}",
        receiver.deliveries(),
        cdc.log()
    );
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}
