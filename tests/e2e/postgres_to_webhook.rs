//! The first whole path: PostgreSQL → Debezium → Kafka → `cdc run` with the example wasm
//! transform → a webhook, then SIGTERM, and the group's committed offsets checked.

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_tests::build::{cdc_binary, plugin_wasm};
use cdc_tests::env::{TestEnv, unique_suffix};
use cdc_tests::process::CdcProcess;
use cdc_tests::receiver::{Delivery, WebhookReceiver, eventually};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value as Json, json};

/// Joining a consumer group takes ~23 s on the test broker; Debezium needs a few more.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(150);
const AUTH_TOKEN: &str = "e2e-secret-token";

struct Names {
    pipeline_id: String,
    table: String,
    slot: String,
    publication: String,
    group: String,
}

impl Names {
    fn new() -> Self {
        let suffix = unique_suffix();
        Names {
            pipeline_id: format!("e2e-{suffix}"),
            table: format!("orders_{suffix}"),
            slot: format!("slot_{suffix}"),
            publication: format!("pub_{suffix}"),
            group: format!("cdc-e2e-{suffix}"),
        }
    }

    fn topic(&self) -> String {
        format!("cdc.public.{}", self.table)
    }

    fn connector(&self) -> String {
        format!("cdc-{}", self.pipeline_id)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_configs(
    dir: &std::path::Path,
    env: &TestEnv,
    names: &Names,
    hook_url: &str,
    health_port: u16,
) -> (String, String) {
    let plugin = plugin_wasm("filter-mask");
    let pipeline = format!(
        r#"pipeline_id: {pipeline_id}
topic_prefix: cdc
source:
  source_type: postgres
  host: {pg_host}
  port: {pg_port}
  database: {pg_db}
  username: {pg_user}
  password: ${{E2E_PG_PASSWORD:-unused}}
  tables: [public.{table}]
  slot_name: {slot}
  publication_name: {publication}
  snapshot_mode: initial
transforms:
  - name: drop-test-and-mask-email
    plugin:
      path: {plugin}
      config:
        drop_where: {{column: status, equals: test}}
        mask: [email]
sinks:
  - sink_id: hook
    sink_type: webhook
    webhook:
      url: {hook_url}
      auth_token: ${{E2E_AUTH_TOKEN}}
      timeout_seconds: 5
"#,
        pipeline_id = names.pipeline_id,
        pg_host = env.pg_host,
        pg_port = env.pg_port,
        pg_db = env.pg_db,
        pg_user = env.pg_user,
        table = names.table,
        slot = names.slot,
        publication = names.publication,
        plugin = plugin.display(),
    );
    let platform = format!(
        r#"kafka:
  bootstrap_servers: {kafka}
  group_id: {group}
connector:
  connect_url: {connect}
health_port: {health_port}
"#,
        kafka = env.kafka,
        group = names.group,
        connect = env.connect_url,
    );
    let pipeline_path = dir.join("pipeline.yaml");
    let platform_path = dir.join("platform.yaml");
    std::fs::write(&pipeline_path, pipeline).unwrap();
    std::fs::write(&platform_path, platform).unwrap();
    (pipeline_path.display().to_string(), platform_path.display().to_string())
}

async fn sql(client: &tokio_postgres::Client, statements: &str) {
    client.batch_execute(statements).await.unwrap_or_else(|error| panic!("{statements}: {error}"));
}

async fn slot_active(client: &tokio_postgres::Client, slot: &str) -> bool {
    let rows =
        client.query("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot]).await.unwrap();
    rows.first().is_some_and(|row| row.get::<_, bool>(0))
}

/// Per key (the `id` of the row): the ops and `after` rows delivered, in arrival order.
fn by_key(deliveries: &[Delivery]) -> BTreeMap<i64, Vec<(String, Json)>> {
    let mut keys: BTreeMap<i64, Vec<(String, Json)>> = BTreeMap::new();
    for delivery in deliveries {
        let body = &delivery.body;
        let id = body["key"]["id"].as_i64().expect("key.id is an integer");
        let op = body["value"]["op"].as_str().expect("value.op").to_owned();
        keys.entry(id).or_default().push((op, body["value"]["after"].clone()));
    }
    keys
}

fn committed_offsets(env: &TestEnv, group: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut list = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        list.add_partition(topic, partition.id());
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).unwrap();
    committed
        .elements()
        .iter()
        .map(|element| match element.offset() {
            Offset::Offset(offset) => offset,
            _ => -1,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_flow_through_the_wasm_transform_to_the_webhook_and_are_committed() {
    let env = TestEnv::from_env();
    let names = Names::new();
    let (client, connection) =
        tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    sql(
        &client,
        &format!(
            "CREATE TABLE public.{table} (id bigint PRIMARY KEY, customer text NOT NULL, email text, status text NOT NULL)",
            table = names.table
        ),
    )
    .await;

    let receiver = WebhookReceiver::start().await;
    let health_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, platform) = write_configs(dir.path(), &env, &names, &receiver.url(), health_port);
    let mut cdc = CdcProcess::start(
        cdc_binary(),
        &["run", &pipeline, "--platform-config", &platform],
        &[("E2E_AUTH_TOKEN", AUTH_TOKEN)],
        dir.path().join("cdc.log"),
    );

    // Changes are made once the slot streams, so that none is folded into the snapshot.
    let streaming = eventually(Duration::from_secs(90), || slot_active(&client, &names.slot)).await;
    assert!(streaming, "replication slot never became active:\n{}", cdc.log());

    let table = &names.table;
    sql(&client, &format!("INSERT INTO public.{table} VALUES (1, 'ada', 'ada@example.com', 'new')")).await;
    sql(&client, &format!("INSERT INTO public.{table} VALUES (2, 'bob', 'bob@example.com', 'test')")).await;
    sql(&client, &format!("INSERT INTO public.{table} VALUES (3, 'cy', 'cy@example.com', 'new')")).await;
    sql(&client, &format!("UPDATE public.{table} SET status = 'shipped' WHERE id = 1")).await;
    sql(&client, &format!("DELETE FROM public.{table} WHERE id = 3")).await;
    sql(&client, &format!("UPDATE public.{table} SET status = 'new' WHERE id = 2")).await;

    let expected_count = 5;
    let deliveries = receiver.wait_for(expected_count, DELIVERY_TIMEOUT).await;
    assert_eq!(deliveries.len(), expected_count, "deliveries: {deliveries:#?}\ncdc log:\n{}", cdc.log());

    let masked = |id: i64, customer: &str, status: &str| json!({"id": id, "customer": customer, "email": "***", "status": status});
    let expected: BTreeMap<i64, Vec<(String, Json)>> = BTreeMap::from([
        (1, vec![("c".into(), masked(1, "ada", "new")), ("u".into(), masked(1, "ada", "shipped"))]),
        // The insert with status 'test' was dropped by the transform; the later update is kept.
        (2, vec![("u".into(), masked(2, "bob", "new"))]),
        (3, vec![("c".into(), masked(3, "cy", "new")), ("d".into(), Json::Null)]),
    ]);
    assert_eq!(by_key(&deliveries), expected);

    let topic = names.topic();
    for delivery in &deliveries {
        let metadata = &delivery.body["metadata"];
        assert_eq!(metadata["topic"], topic.as_str());
        let id = format!("{}/{}/{}", topic, metadata["partition"], metadata["offset"]);
        assert_eq!(delivery.idempotency_key.as_deref(), Some(id.as_str()));
        assert_eq!(delivery.authorization.as_deref(), Some(format!("Bearer {AUTH_TOKEN}").as_str()));
        assert_eq!(delivery.body["value"]["source"]["table"], names.table.as_str());
    }

    let ready = reqwest::get(format!("http://127.0.0.1:{health_port}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "readyz: {}", ready.text().await.unwrap_or_default());

    let status = cdc.terminate(Duration::from_secs(60));
    let log = cdc.log();
    assert!(status.success(), "cdc exited with {status} after SIGTERM:\n{log}");
    assert!(!log.contains(AUTH_TOKEN), "the auth token leaked into the log:\n{log}");

    // Every delivered change is covered by the group's committed offsets.
    let highest = deliveries.iter().map(|d| d.body["metadata"]["offset"].as_i64().unwrap()).max().unwrap();
    let committed = committed_offsets(&env, &names.group, &topic);
    assert!(
        committed.iter().any(|offset| *offset > highest),
        "committed {committed:?} does not cover offset {highest}:\n{log}"
    );

    // Leave nothing running behind in Kafka Connect or PostgreSQL.
    let connector_url = format!("{}/connectors/{}", env.connect_url, names.connector());
    let _ = reqwest::Client::new().delete(connector_url).send().await;
    let _ = eventually(Duration::from_secs(30), || async { !slot_active(&client, &names.slot).await }).await;
    let _ = client.execute("SELECT pg_drop_replication_slot($1)", &[&names.slot]).await;
}
