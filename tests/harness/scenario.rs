//! A scenario: one PostgreSQL table captured by Debezium into Kafka and a `cdc` pipeline over it,
//! with unique names so that runs never collide, and the plumbing every suite repeats.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::build::cdc_binary;
use crate::env::{TestEnv, unique_suffix};
use crate::process::CdcProcess;
use crate::receiver::eventually;

/// Names of a scenario's objects.
#[derive(Debug, Clone)]
pub struct Names {
    /// `pipeline_id`.
    pub pipeline_id: String,
    /// `topic_prefix`: Debezium names its metrics by it, and a Connect worker running two
    /// connectors of one prefix holds the second back for a minute.
    pub topic_prefix: String,
    /// Table name (in schema `public`).
    pub table: String,
    /// Replication slot.
    pub slot: String,
    /// Publication.
    pub publication: String,
    /// Consumer group.
    pub group: String,
}

impl Names {
    fn new() -> Self {
        let suffix = unique_suffix();
        Names {
            pipeline_id: format!("e2e-{suffix}"),
            topic_prefix: format!("cdc_{suffix}"),
            table: format!("t_{suffix}"),
            slot: format!("slot_{suffix}"),
            publication: format!("pub_{suffix}"),
            group: format!("cdc-e2e-{suffix}"),
        }
    }
}

/// The columns of the table most suites use: a key and a note.
pub const NOTE_TABLE: &str = "id bigint PRIMARY KEY, note text";

/// What a scenario's pipeline is made of, as YAML fragments.
#[derive(Debug, Clone)]
pub struct PipelineParts {
    /// The `transforms:` list items (YAML, indented by two spaces), or empty.
    pub transforms: String,
    /// The `sinks:` list items (YAML, indented by two spaces).
    pub sinks: String,
    /// Extra top-level lines of platform.yaml.
    pub platform: String,
    /// Extra lines under `kafka:` in platform.yaml (indented by two spaces).
    pub kafka: String,
    /// Partitions of the source topic.
    pub partitions: u32,
    /// The source database's port (on the test host) when Debezium must not reach it directly,
    /// for example through a [`TcpProxy`](crate::proxy::TcpProxy).
    pub source_port: Option<u16>,
    /// `kafka.bootstrap_servers` when not the test broker's plain listener.
    pub bootstrap_servers: Option<String>,
    /// Lines under `connector:` (indented by two spaces), the test Connect's URL when empty.
    pub connector: String,
}

impl Default for PipelineParts {
    fn default() -> Self {
        PipelineParts {
            transforms: String::new(),
            sinks: String::new(),
            platform: String::new(),
            kafka: String::new(),
            partitions: 1,
            source_port: None,
            bootstrap_servers: None,
            connector: String::new(),
        }
    }
}

/// A webhook sink item for [`PipelineParts::sinks`].
pub fn webhook_sink(sink_id: &str, url: &str) -> String {
    format!(
        "  - sink_id: {sink_id}\n    sink_type: webhook\n    retry: {{initial_wait_seconds: 0.2, max_wait_seconds: 1, max_attempts: 3}}\n    webhook:\n      url: {url}\n      timeout_seconds: 5\n"
    )
}

/// A PostgreSQL sink item for [`PipelineParts::sinks`], writing to the test database: replica
/// tables in schema `target_schema`.
pub fn postgres_replica_sink(sink_id: &str, env: &TestEnv, target_schema: &str) -> String {
    format!(
        "  - sink_id: {sink_id}\n    sink_type: postgres\n    retry: {{initial_wait_seconds: 0.2, max_wait_seconds: 2, max_attempts: 3}}\n    postgres:\n      mode: replica\n      host: {host}\n      port: {port}\n      database: {db}\n      username: {user}\n      target_schema: {target_schema}\n      batch_size: 1000\n",
        host = env.pg_host,
        port = env.pg_port,
        db = env.pg_db,
        user = env.pg_user,
    )
}

/// A running scenario.
pub struct Scenario {
    /// The services.
    pub env: TestEnv,
    /// Object names.
    pub names: Names,
    /// A PostgreSQL session.
    pub pg: tokio_postgres::Client,
    dir: tempfile::TempDir,
    health_ports: std::cell::Cell<u16>,
}

impl Scenario {
    /// Creates the table `public.<table> (<columns>)`.
    pub async fn new(columns: &str) -> Self {
        let env = TestEnv::from_env();
        let names = Names::new();
        let (pg, connection) =
            tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let scenario = Scenario {
            env,
            names,
            pg,
            dir: tempfile::tempdir().unwrap(),
            health_ports: std::cell::Cell::new(0),
        };
        scenario.sql(&format!("CREATE TABLE public.{} ({columns})", scenario.names.table)).await;
        scenario
    }

    /// The source topic.
    pub fn topic(&self) -> String {
        format!("{}.public.{}", self.names.topic_prefix, self.names.table)
    }

    /// The DLQ topic of the source topic.
    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.topic())
    }

    /// Runs SQL statements.
    pub async fn sql(&self, statements: &str) {
        self.pg.batch_execute(statements).await.unwrap_or_else(|error| panic!("{statements}: {error}"));
    }

    /// Inserts rows `(id, 'row <id>')` one statement each, into a table made with
    /// [`NOTE_TABLE`].
    pub async fn insert_rows(&self, ids: std::ops::RangeInclusive<i64>) {
        for id in ids {
            self.sql(&format!("INSERT INTO public.{} VALUES ({id}, 'row {id}')", self.names.table)).await;
        }
    }

    /// Starts a load on its own connection: `rows` inserts as [`insert_rows`](Self::insert_rows)
    /// makes them, a pause after each, and with `update_every = Some(n)` an update of the
    /// previous row after every n-th insert.
    pub fn spawn_load(
        &self,
        rows: i64,
        pause: Duration,
        update_every: Option<i64>,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_load_of(1..=rows, pause, update_every)
    }

    /// [`spawn_load`](Self::spawn_load) of the rows `ids` only.
    pub fn spawn_load_of(
        &self,
        ids: std::ops::RangeInclusive<i64>,
        pause: Duration,
        update_every: Option<i64>,
    ) -> tokio::task::JoinHandle<()> {
        let config = self.env.pg_config();
        let table = self.names.table.clone();
        tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            for id in ids {
                client
                    .batch_execute(&format!("INSERT INTO public.{table} VALUES ({id}, 'row {id}')"))
                    .await
                    .unwrap();
                if update_every.is_some_and(|every| id % every == 0) {
                    let update =
                        format!("UPDATE public.{table} SET note = 'updated {id}' WHERE id = {}", id - 1);
                    client.batch_execute(&update).await.unwrap();
                }
                tokio::time::sleep(pause).await;
            }
        })
    }

    /// Runs an operator command to its end: `cdc <command…> PIPELINE --platform-config
    /// PLATFORM <extra…>` with the config of `parts`; whether it succeeded, and what it printed
    /// (stdout, then stderr).
    pub fn cli(&self, parts: &PipelineParts, command: &[&str], extra: &[&str]) -> (bool, String) {
        let (pipeline, platform, _) = self.write_config(parts);
        self.cli_on(&pipeline, &platform, command, extra)
    }

    /// [`cli`](Self::cli) on config files already written (those of a running pipeline).
    pub fn cli_on(
        &self,
        pipeline: &Path,
        platform: &Path,
        command: &[&str],
        extra: &[&str],
    ) -> (bool, String) {
        let output = std::process::Command::new(cdc_binary())
            .args(command)
            .args([pipeline.to_str().unwrap(), "--platform-config", platform.to_str().unwrap()])
            .args(extra)
            .output()
            .expect("cdc runs");
        let said =
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), said)
    }

    /// Writes pipeline.yaml and platform.yaml for a replica listening for health on a free
    /// port; returns (pipeline, platform, health port).
    pub fn write_config(&self, parts: &PipelineParts) -> (PathBuf, PathBuf, u16) {
        let (env, names) = (&self.env, &self.names);
        let transforms = if parts.transforms.is_empty() {
            String::new()
        } else {
            format!("transforms:\n{}", parts.transforms)
        };
        let pipeline = format!(
            "pipeline_id: {pipeline_id}\ntopic_prefix: {topic_prefix}\nsource:\n  source_type: postgres\n  host: {host}\n  port: {port}\n  database: {db}\n  username: {user}\n  tables: [public.{table}]\n  slot_name: {slot}\n  publication_name: {publication}\n{transforms}sinks:\n{sinks}",
            pipeline_id = names.pipeline_id,
            topic_prefix = names.topic_prefix,
            host = env.pg_host,
            port = parts.source_port.unwrap_or(env.pg_port),
            db = env.pg_db,
            user = env.pg_user,
            table = names.table,
            slot = names.slot,
            publication = names.publication,
            sinks = parts.sinks,
        );
        let health_port = free_port();
        // A short session timeout makes the test broker answer group joins in seconds.
        let platform = format!(
            "kafka:\n  bootstrap_servers: {kafka}\n  group_id: {group}\n  session_timeout_ms: 6000\n  topic_num_partitions: {partitions}\n{kafka_extra}connector:\n{connector}health_port: {health_port}\n{platform}",
            kafka = parts.bootstrap_servers.as_ref().unwrap_or(&env.kafka),
            group = names.group,
            partitions = parts.partitions,
            kafka_extra = parts.kafka,
            connector = if parts.connector.is_empty() {
                format!("  connect_url: {}\n", env.connect_url)
            } else {
                parts.connector.clone()
            },
            platform = parts.platform,
        );
        let index = self.health_ports.get();
        self.health_ports.set(index + 1);
        let pipeline_path = self.dir.path().join(format!("pipeline-{index}.yaml"));
        let platform_path = self.dir.path().join(format!("platform-{index}.yaml"));
        std::fs::write(&pipeline_path, pipeline).unwrap();
        std::fs::write(&platform_path, platform).unwrap();
        (pipeline_path, platform_path, health_port)
    }

    /// Starts `cdc run` with a config written from `parts`; returns the process and its health port.
    pub fn start(&self, parts: &PipelineParts, env: &[(&str, &str)]) -> (CdcProcess, u16) {
        let (pipeline, platform, health_port) = self.write_config(parts);
        (self.start_on(&pipeline, &platform, env), health_port)
    }

    /// Starts `cdc run` on config files already written.
    pub fn start_on(&self, pipeline: &Path, platform: &Path, env: &[(&str, &str)]) -> CdcProcess {
        let log = self.dir.path().join(format!("cdc-{}.log", self.health_ports.get()));
        self.health_ports.set(self.health_ports.get() + 1);
        let args = ["run", pipeline.to_str().unwrap(), "--platform-config", platform.to_str().unwrap()];
        CdcProcess::start(cdc_binary(), &args, env, log)
    }

    /// Waits until the replication slot streams, so that later changes are not folded into the
    /// snapshot.
    pub async fn wait_streaming(&self, cdc: &CdcProcess) {
        let active = eventually(Duration::from_secs(90), || self.slot_active()).await;
        assert!(active, "replication slot never became active:\n{}", cdc.log());
    }

    /// Whether the scenario's slot is in use.
    pub async fn slot_active(&self) -> bool {
        let query = "SELECT active FROM pg_replication_slots WHERE slot_name = $1";
        let rows = self.pg.query(query, &[&self.names.slot]).await.unwrap();
        rows.first().is_some_and(|row| row.get::<_, bool>(0))
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, health_port: u16, cdc: &CdcProcess, timeout: Duration) {
        let url = format!("http://127.0.0.1:{health_port}/readyz");
        let ready = eventually(timeout, || async {
            reqwest::get(&url).await.map(|response| response.status() == 200).unwrap_or(false)
        })
        .await;
        assert!(ready, "cdc never became ready:\n{}", cdc.log());
    }

    /// Removes the connector and the slot, so that nothing keeps running for this scenario.
    pub async fn cleanup(&self) {
        let url = format!(
            "{}/connectors/{}-{}",
            self.env.connect_url, self.names.topic_prefix, self.names.pipeline_id
        );
        let _ = reqwest::Client::new().delete(url).send().await;
        let _ = eventually(Duration::from_secs(30), || async { !self.slot_active().await }).await;
        let _ = self.pg.execute("SELECT pg_drop_replication_slot($1)", &[&self.names.slot]).await;
        let _ = self
            .pg
            .batch_execute(&format!("DROP PUBLICATION IF EXISTS \"{}\"", self.names.publication))
            .await;
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
