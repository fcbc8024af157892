//! The operator's commands against the real services: `cdc deploy` provisions a Kafka-mode
//! pipeline without running it (a running connector, the slot it made), `cdc health` reports
//! every dependency (exit 1 while something is down, a warning for an inactive slot holding
//! WAL), and `cdc undeploy` removes the connector and, when asked, topics, slot and publication.

use std::time::Duration;

use cdc_tests::lakehouse::Lakehouse;
use cdc_tests::receiver::eventually;
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};

/// The line of `component` in `cdc health`'s table.
fn line<'a>(table: &'a str, component: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(component))
        .unwrap_or_else(|| panic!("no `{component}` line in:\n{table}"))
}

async fn slot_exists(scenario: &Scenario) -> bool {
    let query = "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1";
    !scenario.pg.query(query, &[&scenario.names.slot]).await.unwrap().is_empty()
}

async fn publication_exists(scenario: &Scenario) -> bool {
    let query = "SELECT 1 FROM pg_publication WHERE pubname = $1";
    !scenario.pg.query(query, &[&scenario.names.publication]).await.unwrap().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_health_and_undeploy_manage_a_kafka_pipeline_without_running_it() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let parts = PipelineParts {
        sinks: webhook_sink("hook", "http://127.0.0.1:9/"),
        kafka: "  schemas_enable: true\n".into(),
        ..PipelineParts::default()
    };

    let (ok, table) = scenario.cli(&parts, &["health"], &[]);
    assert!(!ok, "health passed without a connector:\n{table}");
    assert!(line(&table, "broker").contains(" up "), "{table}");
    assert!(line(&table, "connect").contains(" up "), "{table}");
    assert!(line(&table, "connector").contains("not registered"), "{table}");

    let (ok, said) = scenario.cli(&parts, &["deploy"], &[]);
    assert!(ok, "{said}");
    assert!(said.contains("RUNNING") && said.contains(&scenario.topic()), "{said}");
    // The connector made its slot; deploying again changes nothing.
    assert!(eventually(Duration::from_secs(30), || slot_exists(&scenario)).await, "{said}");
    let (ok, again) = scenario.cli(&parts, &["deploy"], &[]);
    assert!(ok, "{again}");

    // The connector captures changes while no pipeline runs; `cdc consume` shows them decoded.
    scenario.insert_rows(1..=2).await;
    let (ok, events) =
        scenario.cli(&parts, &["consume"], &["--from-beginning", "--limit", "2", "--wait-seconds", "30"]);
    assert!(ok, "{events}");
    let events: Vec<serde_json::Value> =
        events.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let ids: Vec<&serde_json::Value> = events.iter().map(|event| &event["value"]["after"]["id"]).collect();
    assert_eq!(ids, [1, 2], "{events:#?}");
    assert_eq!(events[0]["table"], format!("public.{}", scenario.names.table));
    assert_eq!(events[0]["value"]["op"], "c");

    let (ok, table) = scenario.cli(&parts, &["health"], &[]);
    assert!(ok, "{table}");
    assert!(line(&table, "connector").contains("RUNNING"), "{table}");
    assert!(line(&table, "slot").contains(&scenario.names.slot), "{table}");

    let (ok, said) = scenario.cli(&parts, &["undeploy"], &["--drop-slot", "--delete-topics"]);
    assert!(ok, "{said}");
    assert!(said.contains("removed") && said.contains("dropped"), "{said}");
    assert!(!slot_exists(&scenario).await && !publication_exists(&scenario).await, "{said}");
    // Kafka Connect forgets a deleted connector once its workers rebalance.
    let status = format!(
        "{}/connectors/{}-{}/status",
        scenario.env.connect_url, scenario.names.topic_prefix, scenario.names.pipeline_id
    );
    let gone = eventually(Duration::from_secs(30), || async {
        reqwest::get(&status).await.is_ok_and(|response| response.status() == 404)
    })
    .await;
    assert!(gone, "the connector is still registered\n{said}");
    let (ok, table) = scenario.cli(&parts, &["health"], &[]);
    assert!(!ok && line(&table, "connector").contains("not registered"), "{table}");
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_warns_about_an_inactive_slot_and_undeploy_drops_it_once_the_pipeline_stops() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let lake = Lakehouse::default();
    let parts = PipelineParts {
        sinks: lake.sink("lake", "lake", "append"),
        platform: "transport_mode: embedded\n".into(),
        ..PipelineParts::default()
    };
    // The operator's commands read the files the running pipeline was started with.
    let (pipeline, platform, _) = scenario.write_config(&parts);
    let mut cdc_process = scenario.start_on(&pipeline, &platform, &[]);
    scenario.wait_streaming(&cdc_process).await;

    // The reader holds its slot while it streams (not in the instants between its commands).
    let streaming = || {
        let (ok, table) = scenario.cli_on(&pipeline, &platform, &["health"], &[]);
        ok && line(&table, "slot").contains(" up ") && line(&table, "slot").contains("active")
    };
    let reported = eventually(Duration::from_secs(30), || async { streaming() }).await;
    assert!(reported, "{}", scenario.cli_on(&pipeline, &platform, &["health"], &[]).1);
    // A slot in use is not dropped.
    let (ok, said) = scenario.cli_on(&pipeline, &platform, &["undeploy"], &["--drop-slot"]);
    assert!(!ok && said.contains("in use"), "{said}");
    assert!(slot_exists(&scenario).await);

    assert!(cdc_process.terminate(Duration::from_secs(60)).success(), "{}", cdc_process.log());
    // The server notices the closed connection a moment later.
    let released = eventually(Duration::from_secs(30), || async { !scenario.slot_active().await }).await;
    assert!(released, "the slot stays active after the pipeline stopped");
    // Changes made while nothing reads the slot: the server keeps their WAL for it.
    scenario
        .sql(&format!(
            "INSERT INTO public.{} SELECT i, repeat('x', 1000) FROM generate_series(1, 2000) i",
            scenario.names.table
        ))
        .await;
    let (ok, table) = scenario.cli_on(&pipeline, &platform, &["health"], &[]);
    let slot = line(&table, "slot");
    assert!(ok && slot.contains("warn") && slot.contains("inactive, holds"), "{table}");

    let (ok, said) = scenario.cli_on(&pipeline, &platform, &["undeploy"], &["--drop-slot"]);
    assert!(ok && said.contains("dropped"), "{said}");
    assert!(!slot_exists(&scenario).await && !publication_exists(&scenario).await, "{said}");
    let (ok, table) = scenario.cli_on(&pipeline, &platform, &["health"], &[]);
    assert!(ok && line(&table, "slot").contains("absent"), "{table}");
    scenario.cleanup().await;
}
