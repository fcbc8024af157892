//! Avro: Debezium writes with Confluent's AvroConverter through the test Schema Registry; the
//! host fetches each schema once by id and delivers exact types.

use std::time::Duration;

use cdc_tests::receiver::WebhookReceiver;
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};
use cdc_tests::schema_registry::TestSchemaRegistry;
use serde_json::json;

use crate::delivery::key_id;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_events_decode_with_exact_types_and_cached_schemas() {
    let scenario = Scenario::new(
        "id bigint PRIMARY KEY, price numeric(12,3), ratio numeric, seen timestamp, born date, tag uuid, note text",
    )
    .await;
    let registry = TestSchemaRegistry::start().await.expect("test registry starts");
    let receiver = WebhookReceiver::start().await;
    let parts = PipelineParts {
        sinks: webhook_sink("hook", &receiver.url()),
        kafka: format!("  value_converter: avro\n  schema_registry_url: {}\n", registry.url()),
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let table = &scenario.names.table;
    scenario
        .sql(&format!(
            "INSERT INTO public.{table} VALUES (1, 12.340, 3.14159, '2024-05-06 07:08:09.123456', '2024-05-06', \
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'first')"
        ))
        .await;
    for id in 2..=20 {
        scenario
            .sql(&format!("INSERT INTO public.{table} (id, price, note) VALUES ({id}, {id}.5, 'row {id}')"))
            .await;
    }
    scenario.sql(&format!("UPDATE public.{table} SET price = -0.001 WHERE id = 1")).await;
    scenario.sql(&format!("DELETE FROM public.{table} WHERE id = 2")).await;

    let deliveries = receiver.wait_for(22, Duration::from_secs(150)).await;
    assert_eq!(deliveries.len(), 22, "{}", cdc.log());
    let first = &deliveries[0].body["value"]["after"];
    assert_eq!(key_id(&deliveries[0]), 1);
    assert_eq!(first["price"], "12.340", "decimals keep their scale exactly");
    assert_eq!(first["ratio"], "3.14159", "variable-scale decimals too");
    assert_eq!(first["seen"], json!(1_714_979_289_123_456i64), "microsecond timestamps");
    assert_eq!(first["born"], json!(19_849), "dates as days since the epoch");
    assert_eq!(first["tag"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(first["note"], "first");
    let update = deliveries.iter().find(|d| d.body["value"]["op"] == "u").expect("the update");
    assert_eq!(update.body["value"]["after"]["price"], "-0.001");
    let delete = deliveries.iter().find(|d| d.body["value"]["op"] == "d").expect("the delete");
    assert_eq!(key_id(delete), 2);

    // Twenty-two events under a handful of schemas: the host asks for each id once, so the
    // registry saw far fewer requests than events (Connect's registrations included).
    assert!(registry.request_count() < 22, "{} registry requests", registry.request_count());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_schema_change_halts_the_pipeline_when_asked() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let registry = TestSchemaRegistry::start().await.expect("test registry starts");
    let receiver = WebhookReceiver::start().await;
    let parts = PipelineParts {
        sinks: webhook_sink("hook", &receiver.url()),
        kafka: format!("  value_converter: avro\n  schema_registry_url: {}\n", registry.url()),
        platform: "schema_monitor_interval_seconds: 1\nstop_on_incompatible_schema: true\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, health_port) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    scenario.insert_rows(1..=1).await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(150)).await.len(), 1, "{}", cdc.log());
    // Let the monitor see the first version before the second arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let table = &scenario.names.table;
    scenario.sql(&format!("ALTER TABLE public.{table} DROP COLUMN note")).await;
    scenario.sql(&format!("INSERT INTO public.{table} VALUES (2)")).await;
    let readyz = format!("http://127.0.0.1:{health_port}/readyz");
    let mut status = None;
    for _ in 0..600 {
        if let Some(exit) = cdc.try_status() {
            status = Some(exit);
            break;
        }
        if let Ok(response) = reqwest::get(&readyz).await {
            let body = response.text().await.unwrap_or_default();
            if body.contains("halted") {
                assert!(body.contains("incompatible schema change"), "{body}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = cdc.log();
    let status = status.unwrap_or_else(|| panic!("cdc did not halt:\n{log}"));
    assert_eq!(status.code(), Some(1), "a halt exits 1:\n{log}");
    assert!(log.contains("schema.incompatible") && log.contains("column `note` was removed"), "{log}");
    scenario.cleanup().await;
}
