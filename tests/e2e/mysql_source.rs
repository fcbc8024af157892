//! A MySQL source for real: MariaDB 10.11 → Debezium's MySqlConnector on Kafka Connect →
//! Kafka → `cdc run` → a webhook. The snapshot, inserts, updates, deletes and a column added
//! mid-stream arrive exactly; the connector's schema history lives in the topic the host
//! configures; a restart of `cdc run` resumes where it stopped, without loss or duplicates.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cdc_tests::build::cdc_binary;
use cdc_tests::env::{TestEnv, unique_suffix};
use cdc_tests::kafka::read_topic;
use cdc_tests::mariadb::MariaDb;
use cdc_tests::process::CdcProcess;
use cdc_tests::receiver::{Delivery, WebhookReceiver, eventually};
use cdc_tests::scenario::{free_port, webhook_sink};
use serde_json::{Value as Json, json};

/// Joining a consumer group and the connector's start (snapshot included) take a while on the
/// test stack.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(150);

/// One expected change: op, key id, `before` and `after`.
type Change = (&'static str, i64, Json, Json);

/// What a delivery says, in the shape of [`Change`].
fn change_of(delivery: &Delivery) -> (String, i64, Json, Json) {
    let value = &delivery.body["value"];
    (
        value["op"].as_str().unwrap_or("<no op>").to_owned(),
        delivery.body["key"]["id"].as_i64().unwrap_or(i64::MIN),
        value["before"].clone(),
        value["after"].clone(),
    )
}

fn assert_changes(deliveries: &[Delivery], expected: &[Change], log: &str) {
    let got: Vec<_> = deliveries.iter().map(change_of).collect();
    let want: Vec<_> = expected
        .iter()
        .map(|(op, id, before, after)| ((*op).to_owned(), *id, before.clone(), after.clone()))
        .collect();
    assert_eq!(
        got, want,
        "deliveries (op, key, before, after) differ from the source's changes\ncdc log:\n{log}"
    );
}

/// A row of the captured table before the column was added.
fn row(id: i64, name: &str, qty: i64) -> Json {
    json!({"id": id, "name": name, "qty": qty})
}

/// A row after `ALTER TABLE … ADD COLUMN color`.
fn row_with_color(id: i64, name: &str, qty: i64, color: &str) -> Json {
    json!({"id": id, "name": name, "qty": qty, "color": color})
}

/// The pipeline's names and config files.
struct MysqlPipeline {
    pipeline_id: String,
    topic_prefix: String,
    database: String,
    dir: tempfile::TempDir,
    pipeline: PathBuf,
    platform: PathBuf,
    health_port: u16,
    runs: usize,
}

impl MysqlPipeline {
    fn new(env: &TestEnv, mariadb: &MariaDb, sink_url: &str) -> Self {
        let suffix = unique_suffix();
        let (pipeline_id, topic_prefix) = (format!("e2e-my-{suffix}"), format!("cdc_my_{suffix}"));
        let (database, group) = (format!("shop_{suffix}"), format!("cdc-e2e-my-{suffix}"));
        // The binlog client's id must differ from the server's (1) and from any other
        // connector's on the same server, which MariaDB would disconnect.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let server_id = 10_000 + u32::try_from(nanos % 1_000_000).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let health_port = free_port();
        let pipeline = format!(
            "pipeline_id: {pipeline_id}\ntopic_prefix: {topic_prefix}\n{source}sinks:\n{sink}",
            source = mariadb.source_yaml(&database, &[format!("{database}.items")], server_id),
            sink = webhook_sink("hook", sink_url),
        );
        // A short session timeout makes the test broker answer group joins in seconds.
        let platform = format!(
            "kafka:\n  bootstrap_servers: {kafka}\n  group_id: {group}\n  session_timeout_ms: 6000\n  topic_num_partitions: 1\nconnector:\n  connect_url: {connect}\nhealth_port: {health_port}\n",
            kafka = env.kafka,
            connect = env.connect_url,
        );
        let (pipeline_path, platform_path) =
            (dir.path().join("pipeline.yaml"), dir.path().join("platform.yaml"));
        std::fs::write(&pipeline_path, pipeline).unwrap();
        std::fs::write(&platform_path, platform).unwrap();
        MysqlPipeline {
            pipeline_id,
            topic_prefix,
            database,
            dir,
            pipeline: pipeline_path,
            platform: platform_path,
            health_port,
            runs: 0,
        }
    }

    fn topic(&self) -> String {
        format!("{}.{}.items", self.topic_prefix, self.database)
    }

    fn history_topic(&self) -> String {
        format!("{}.schema-history.{}", self.topic_prefix, self.pipeline_id)
    }

    fn connector_url(&self, env: &TestEnv) -> String {
        format!("{}/connectors/{}-{}", env.connect_url, self.topic_prefix, self.pipeline_id)
    }

    fn start(&mut self) -> CdcProcess {
        self.runs += 1;
        let log = self.dir.path().join(format!("cdc-{}.log", self.runs));
        let args = ["run", path_str(&self.pipeline), "--platform-config", path_str(&self.platform)];
        CdcProcess::start(cdc_binary(), &args, &[], log)
    }

    async fn wait_ready(&self, cdc: &CdcProcess) {
        let url = format!("http://127.0.0.1:{}/readyz", self.health_port);
        let ready = eventually(Duration::from_secs(150), || async {
            reqwest::get(&url).await.is_ok_and(|response| response.status() == 200)
        })
        .await;
        assert!(ready, "cdc never became ready:\n{}", cdc.log());
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The connector's and its task's states as Kafka Connect reports them.
async fn connector_states(url: &str) -> (String, Vec<String>) {
    let Ok(response) = reqwest::get(format!("{url}/status")).await else { return Default::default() };
    let status: Json = response.json().await.unwrap_or_default();
    let state = |value: &Json| value["state"].as_str().unwrap_or_default().to_owned();
    let tasks = status["tasks"].as_array().map(|tasks| tasks.iter().map(state).collect()).unwrap_or_default();
    (state(&status["connector"]), tasks)
}

async fn wait_connector_running(url: &str) {
    let running = eventually(Duration::from_secs(90), || async {
        let (connector, tasks) = connector_states(url).await;
        connector == "RUNNING" && !tasks.is_empty() && tasks.iter().all(|task| task == "RUNNING")
    })
    .await;
    let status = reqwest::get(format!("{url}/status")).await.unwrap().text().await.unwrap();
    assert!(running, "the connector does not run: {status}");
}

/// A pipeline over a new database with `items` (id, name, qty) holding rows 1 and 2, started;
/// returns once both rows arrived as the snapshot's reads.
async fn start_with_snapshot(
    env: &TestEnv,
    mariadb: &MariaDb,
    receiver: &WebhookReceiver,
) -> (MysqlPipeline, CdcProcess, Vec<Change>) {
    let mut pipeline = MysqlPipeline::new(env, mariadb, &receiver.url());
    let db = &pipeline.database;
    mariadb
        .sql(&format!(
            "CREATE DATABASE {db}; \
             CREATE TABLE {db}.items (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INT NOT NULL); \
             INSERT INTO {db}.items VALUES (1, 'alpha', 10), (2, 'beta', 20);"
        ))
        .await;
    // `cdc run` provisions the topic and the connector; the rows already there arrive as the
    // snapshot's reads. Changes made after they arrived are streamed from the binlog.
    let cdc = pipeline.start();
    pipeline.wait_ready(&cdc).await;
    let snapshot = receiver.wait_for(2, DELIVERY_TIMEOUT).await;
    let expected: Vec<Change> =
        vec![("r", 1, Json::Null, row(1, "alpha", 10)), ("r", 2, Json::Null, row(2, "beta", 20))];
    assert_changes(&snapshot, &expected, &cdc.log());
    (pipeline, cdc, expected)
}

/// Stops `cdc`, removes the connector and drops the database.
async fn clean_up(mut cdc: CdcProcess, pipeline: &MysqlPipeline, env: &TestEnv, mariadb: &MariaDb) {
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    let _ = reqwest::Client::new().delete(pipeline.connector_url(env)).send().await;
    mariadb.sql(&format!("DROP DATABASE {};", pipeline.database)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_changes_and_a_new_column_arrive_exactly_and_a_restart_resumes() {
    let env = TestEnv::from_env();
    let mariadb = MariaDb::from_env();
    let receiver = WebhookReceiver::start().await;
    let (mut pipeline, mut cdc, mut expected) = start_with_snapshot(&env, &mariadb, &receiver).await;
    let db = pipeline.database.clone();
    let connector = pipeline.connector_url(&env);

    // Streamed changes, and a column added between them.
    mariadb
        .sql(&format!(
            "INSERT INTO {db}.items VALUES (3, 'gamma', 30); \
             UPDATE {db}.items SET qty = 11 WHERE id = 1; \
             DELETE FROM {db}.items WHERE id = 2; \
             ALTER TABLE {db}.items ADD COLUMN color VARCHAR(16) NOT NULL DEFAULT 'plain'; \
             INSERT INTO {db}.items VALUES (4, 'delta', 40, 'blue'); \
             UPDATE {db}.items SET color = 'red' WHERE id = 3;"
        ))
        .await;
    expected.extend([
        ("c", 3, Json::Null, row(3, "gamma", 30)),
        ("u", 1, row(1, "alpha", 10), row(1, "alpha", 11)),
        ("d", 2, row(2, "beta", 20), Json::Null),
        ("c", 4, Json::Null, row_with_color(4, "delta", 40, "blue")),
        ("u", 3, row_with_color(3, "gamma", 30, "plain"), row_with_color(3, "gamma", 30, "red")),
    ]);
    let deliveries = receiver.wait_for(expected.len(), DELIVERY_TIMEOUT).await;
    assert_changes(&deliveries, &expected, &cdc.log());
    let topic = pipeline.topic();
    for delivery in &deliveries {
        let source = &delivery.body["value"]["source"];
        assert_eq!(source["connector"], "mysql", "{source}");
        assert_eq!(source["db"], db.as_str(), "{source}");
        assert_eq!(source["table"], "items", "{source}");
        assert_eq!(delivery.body["metadata"]["topic"], topic.as_str());
    }

    // The connector runs with the schema history the host configured: on the pipeline's broker,
    // in the pipeline's own topic, which holds the table's DDL including the ALTER.
    wait_connector_running(&connector).await;
    let config: Json = reqwest::get(format!("{connector}/config")).await.unwrap().json().await.unwrap();
    assert_eq!(config["connector.class"], "io.debezium.connector.mysql.MySqlConnector");
    assert_eq!(config["schema.history.internal.kafka.topic"], pipeline.history_topic().as_str());
    assert_eq!(config["schema.history.internal.kafka.bootstrap.servers"], env.kafka.as_str());
    let history_topic = pipeline.history_topic();
    let kafka = env.kafka.clone();
    let history =
        tokio::task::spawn_blocking(move || read_topic(&kafka, &history_topic, 1000, Duration::from_secs(5)))
            .await
            .unwrap();
    // Entries name the session's database (the snapshot's) or none (our client's statements).
    let entries: Vec<(String, String)> = history
        .iter()
        .filter_map(|record| serde_json::from_slice::<Json>(record.value.as_deref()?).ok())
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            (field("databaseName"), field("ddl"))
        })
        .collect();
    assert!(
        entries.iter().any(|(database, ddl)| database == &db && ddl.contains("CREATE TABLE `items`")),
        "no CREATE TABLE of the captured table in the schema history: {entries:#?}"
    );
    let alter = format!("ALTER TABLE {db}.items ADD COLUMN color");
    assert!(
        entries.iter().any(|(_, ddl)| ddl.contains(&alter)),
        "no `{alter}` in the schema history: {entries:#?}"
    );

    // Stop `cdc run` and change rows meanwhile: the next run delivers exactly those changes.
    let status = cdc.terminate(Duration::from_secs(60));
    let first_log = cdc.log();
    assert!(status.success(), "exit {status}:\n{first_log}");
    mariadb
        .sql(&format!(
            "INSERT INTO {db}.items VALUES (5, 'epsilon', 50, 'green'); \
             UPDATE {db}.items SET qty = 41 WHERE id = 4; \
             DELETE FROM {db}.items WHERE id = 1;"
        ))
        .await;
    let cdc = pipeline.start();
    pipeline.wait_ready(&cdc).await;
    expected.extend([
        ("c", 5, Json::Null, row_with_color(5, "epsilon", 50, "green")),
        ("u", 4, row_with_color(4, "delta", 40, "blue"), row_with_color(4, "delta", 41, "blue")),
        ("d", 1, row_with_color(1, "alpha", 11, "plain"), Json::Null),
    ]);
    receiver.wait_for(expected.len(), DELIVERY_TIMEOUT).await;
    // Give a redelivery, if there were one, time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deliveries = receiver.deliveries();
    let log = format!("--- first run ---\n{first_log}\n--- second run ---\n{}", cdc.log());
    let ids: BTreeSet<_> = deliveries.iter().map(|d| d.body["metadata"]["id"].to_string()).collect();
    assert_eq!(ids.len(), deliveries.len(), "an event was delivered twice: {ids:#?}\n{log}");
    assert_changes(&deliveries, &expected, &log);
    clean_up(cdc, &pipeline, &env, &mariadb).await;
}

/// A restart of the connector's task (a Connect rebalance, a worker restart, a connector config
/// update, or `cdc run` restarting a failed task) rebuilds the table's schema from the history
/// topic and resumes from the stored binlog offset without losing a row.
///
/// Fails on MariaDB: Debezium 3.1's MySqlConnector does not take MariaDB's GTID event for the
/// start of a transaction, so the offset it stores with a row is the position *after* that row's
/// event with `row=1` (here `{file=binlog.000001, pos=<the insert's Xid event>, row=1}`). On
/// restart it resumes there, logs "Skip 1 rows on streaming start" and skips the first row of
/// the next rows event: the update of row 3 never reaches the topic (the insert after it, with
/// the column added before the restart, does). Debezium's MariaDbConnector handles MariaDB's
/// GTID events; it is not in the test Connect. Run alone: a write of another test to the same
/// server between the restart and the update takes the skip instead and hides the loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Debezium's MySqlConnector skips the next row after a task restart on MariaDB (see above)"]
async fn a_connector_task_restart_recovers_the_schema_and_loses_no_row() {
    let env = TestEnv::from_env();
    let mariadb = MariaDb::from_env();
    let receiver = WebhookReceiver::start().await;
    let (pipeline, cdc, mut expected) = start_with_snapshot(&env, &mariadb, &receiver).await;
    let db = pipeline.database.clone();
    let connector = pipeline.connector_url(&env);
    mariadb
        .sql(&format!(
            "ALTER TABLE {db}.items ADD COLUMN color VARCHAR(16) NOT NULL DEFAULT 'plain'; \
             INSERT INTO {db}.items VALUES (3, 'gamma', 30, 'blue');"
        ))
        .await;
    expected.push(("c", 3, Json::Null, row_with_color(3, "gamma", 30, "blue")));
    let deliveries = receiver.wait_for(expected.len(), DELIVERY_TIMEOUT).await;
    assert_changes(&deliveries, &expected, &cdc.log());
    // Let Connect commit the task's offsets, as it does every second, then restart the task.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart = reqwest::Client::new()
        .post(format!("{connector}/restart?includeTasks=true&onlyFailed=false"))
        .send()
        .await
        .unwrap();
    assert!(restart.status().is_success(), "connector restart refused: {}", restart.status());
    // The restart is asynchronous: let the task go down before waiting for it to run again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_connector_running(&connector).await;
    mariadb
        .sql(&format!(
            "UPDATE {db}.items SET color = 'red' WHERE id = 3; \
             INSERT INTO {db}.items VALUES (4, 'delta', 40, 'green');"
        ))
        .await;
    expected.extend([
        ("u", 3, row_with_color(3, "gamma", 30, "blue"), row_with_color(3, "gamma", 30, "red")),
        ("c", 4, Json::Null, row_with_color(4, "delta", 40, "green")),
    ]);
    receiver.wait_for(expected.len(), Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_changes(&receiver.deliveries(), &expected, &cdc.log());
    clean_up(cdc, &pipeline, &env, &mariadb).await;
}
