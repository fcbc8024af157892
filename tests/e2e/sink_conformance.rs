//! One conformance suite for every sink, native or wasm: in-order delivery made durable by
//! `flush`, a record refused on its own reported as a record error at its index while the
//! others are delivered after it, and replays that keep each event's idempotency id (exactly once where
//! the sink stores its position). Runs the built-in webhook sink against a real HTTP endpoint,
//! the built-in PostgreSQL sink against the test database, and the example wasm sink
//! `plugins/file-sink` against a granted directory.

use std::sync::Arc;
use std::time::Duration;

use cdc_host::error::ErrorClass;
use cdc_host::event::ChangeEvent;
use cdc_host::plugin::{
    Capabilities, GrantedDirectory, PluginLimits, PluginRuntime, PluginSettings, SinkPlugin,
};
use cdc_host::sinks::postgres::{PostgresFactory, PostgresSettings, Target};
use cdc_host::sinks::wasm::WasmSinkFactory;
use cdc_host::sinks::webhook::WebhookFactory;
use cdc_host::sinks::{Sink, SinkFactory};
use cdc_tests::build::plugin_wasm;
use cdc_tests::env::{TestEnv, unique_suffix};
use cdc_tests::receiver::WebhookReceiver;

/// The key id every sink under test refuses.
const REFUSED_ID: i64 = 3;

/// A sink under test and a way to read back what it made durable.
struct UnderTest {
    factory: Arc<dyn SinkFactory>,
    /// The idempotency ids of what the destination holds, in the order it got them.
    delivered: Box<dyn Fn() -> Vec<String>>,
    /// Whether a replay of durable events leaves no duplicate.
    exactly_once: bool,
    _keep: Box<dyn std::any::Any>,
}

async fn webhook() -> UnderTest {
    let receiver = WebhookReceiver::start().await;
    receiver.respond_with(|body| if body["key"]["id"] == REFUSED_ID { 422 } else { 200 });
    let options = receiver.settings();
    let factory = Arc::new(WebhookFactory::new("webhook", &options).unwrap());
    let receiver = Arc::new(receiver);
    let reader = receiver.clone();
    UnderTest {
        factory,
        delivered: Box::new(move || {
            reader.deliveries().into_iter().filter_map(|d| d.idempotency_key).collect()
        }),
        exactly_once: false,
        _keep: Box::new(receiver),
    }
}

fn file_sink() -> UnderTest {
    let dir = tempfile::tempdir().unwrap();
    let runtime = PluginRuntime::new().unwrap();
    let spec = PluginSettings {
        name: "file-sink".into(),
        path: plugin_wasm("file-sink"),
        sha256: None,
        config_json: format!(r#"{{"file": "out.jsonl", "refuse_key": {REFUSED_ID}}}"#),
        limits: PluginLimits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(5),
            max_output_bytes: 16 << 20,
        },
        capabilities: Capabilities {
            env: Vec::new(),
            directory: Some(GrantedDirectory {
                host_path: dir.path().to_owned(),
                mount: "/data".into(),
                read_only: false,
            }),
            allowed_hosts: Vec::new(),
        },
    };
    let plugin = SinkPlugin::load(&runtime, spec).unwrap();
    let factory = Arc::new(WasmSinkFactory::new("file-sink", plugin));
    let out = dir.path().join("out.jsonl");
    UnderTest {
        factory,
        delivered: Box::new(move || {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            text.lines()
                .map(|line| {
                    serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        }),
        exactly_once: true,
        _keep: Box::new((dir, runtime)),
    }
}

/// The PostgreSQL sink in event-log mode, into a table made beforehand with a check that
/// refuses one key (the sink takes a table that already exists).
async fn postgres_event_log() -> UnderTest {
    let env = TestEnv::from_env();
    let schema = format!("conformance_{}", unique_suffix());
    let (client, connection) =
        tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.events (\
               source_topic text NOT NULL, source_partition integer NOT NULL, source_offset bigint NOT NULL, \
               output_index integer NOT NULL DEFAULT 0, event_key jsonb, event_value jsonb, \
               written_at timestamptz NOT NULL DEFAULT now(), \
               PRIMARY KEY (source_topic, source_partition, source_offset, output_index), \
               CHECK ((event_key->>'id')::bigint <> {REFUSED_ID}))"
        ))
        .await
        .unwrap();
    let settings = PostgresSettings {
        pipeline_id: "conformance".into(),
        connect: env.postgres_sink_connection(),
        target: Target::EventLog { table: format!("{schema}.events"), upsert: false },
        rows_per_statement: 100,
    };
    let factory = Arc::new(PostgresFactory::new("postgres", &settings).unwrap());
    let client = Arc::new(client);
    let reader = client.clone();
    UnderTest {
        factory,
        delivered: Box::new(move || {
            let query = format!(
                "SELECT source_topic || '/' || source_partition || '/' || source_offset FROM {schema}.events \
                 ORDER BY source_offset"
            );
            let rows = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(reader.query(&query, &[]))
            });
            rows.unwrap().iter().map(|row| row.get(0)).collect()
        }),
        exactly_once: true,
        _keep: Box::new(client),
    }
}

fn event(id: i64) -> ChangeEvent {
    cdc_tests::events::insert("conformance", id)
}

fn ids(events: &[ChangeEvent]) -> Vec<String> {
    events.iter().map(|event| event.idempotency_id()).collect()
}

/// Drives a sink the way a sink lane does: writes, skips the event a write refuses (noting its
/// index and class), halves a write refused as a whole until the refusal names its event,
/// writes the rest, then flushes. Returns the refused events' indices.
async fn deliver(sink: &mut Box<dyn Sink>, events: &[ChangeEvent]) -> Vec<(usize, ErrorClass)> {
    let mut refused = Vec::new();
    let (mut start, mut end) = (0, events.len());
    while start < events.len() {
        match sink.write(&events[start..end]).await {
            Ok(()) => (start, end) = (end, events.len()),
            Err(error) if error.names_event => {
                refused.push((start + error.accepted, error.class));
                (start, end) = (start + error.accepted + 1, events.len());
            }
            Err(error) => {
                assert_eq!(error.class, ErrorClass::Record, "a refusal of the data: {error}");
                start += error.accepted;
                end = start + ((end - start) / 2).max(1);
            }
        }
    }
    sink.flush().await.expect("flush");
    refused
}

async fn conforms(under_test: UnderTest) {
    let mut sink = under_test.factory.build();
    let first: Vec<ChangeEvent> = (1..=5).map(event).collect();

    // A record refused on its own is reported at its index with the record class; the others
    // are delivered, in order.
    let refused = deliver(&mut sink, &first).await;
    assert_eq!(refused, vec![((REFUSED_ID - 1) as usize, ErrorClass::Record)]);
    let expected: Vec<String> =
        ids(&first).into_iter().filter(|id| !id.ends_with(&format!("/{REFUSED_ID}"))).collect();
    assert_eq!((under_test.delivered)(), expected);

    // A replay (a restart from an older offset) keeps every event's id; an exactly-once sink
    // holds no duplicate afterwards.
    let replay: Vec<ChangeEvent> = [1, 2, 4, 5, 6].into_iter().map(event).collect();
    let mut fresh = under_test.factory.build();
    deliver(&mut fresh, &replay).await;
    let delivered = (under_test.delivered)();
    let mut distinct = delivered.clone();
    distinct.sort();
    distinct.dedup();
    let mut wanted = ids(&replay);
    wanted.sort();
    assert_eq!(distinct, wanted, "replays keep their ids and nothing else appears");
    if under_test.exactly_once {
        assert_eq!(delivered.len(), wanted.len(), "an exactly-once sink keeps no duplicate: {delivered:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_sink_conforms() {
    conforms(webhook().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_sink_conforms() {
    conforms(postgres_event_log().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wasm_file_sink_conforms() {
    conforms(file_sink()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_run_delivers_to_a_wasm_sink_in_its_granted_directory() {
    use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario};

    let scenario = Scenario::new(NOTE_TABLE).await;
    let dir = tempfile::tempdir().unwrap();
    let parts = PipelineParts {
        sinks: format!(
            "  - sink_id: files\n    sink_type: wasm\n    plugin:\n      path: {}\n      config: {{file: out.jsonl}}\n      directory: {{path: {}}}\n",
            plugin_wasm("file-sink").display(),
            dir.path().display()
        ),
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    scenario.insert_rows(1..=5).await;
    let out = dir.path().join("out.jsonl");
    let lines = || std::fs::read_to_string(&out).unwrap_or_default().lines().count();
    let arrived = cdc_tests::receiver::eventually(Duration::from_secs(120), || async { lines() == 5 }).await;
    assert!(arrived, "{} lines in the file:\n{}", lines(), cdc.log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    let keys: Vec<i64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["key"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(keys, vec![1, 2, 3, 4, 5]);
    scenario.cleanup().await;
}
