//! Embedded mode end to end: `cdc run` reads PostgreSQL logical replication itself (no broker,
//! no Connect) into real sinks. Every change and type reaches a replica; the initial snapshot
//! under concurrent writes gives every row once; kill -9 under load, repeated, writes every
//! change exactly once; the slot moves on while the captured table is idle and the rest of the
//! database writes; a record no sink can take lands in the DLQ directory; a pipeline stopped
//! in process lets go of its slot.

use std::sync::Arc;
use std::time::Duration;

use cdc_host::config::SnapshotMode;
use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::Metrics;
use cdc_host::pipeline;
use cdc_host::source::postgres::EmbeddedSettings;
use cdc_tests::pipeline::pipeline_settings;
use cdc_tests::receiver::eventually;
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, postgres_replica_sink};

use crate::postgres_replica::{
    CONVERGE_TIMEOUT, EventLogShape, FirstRows, assert_converges, count, count_log_attempts, event_log_sink,
    kill_9_under_load, replica_follows_every_change,
};

/// platform.yaml lines of an embedded pipeline.
const EMBEDDED: &str = "transport_mode: embedded\n";

fn embedded(sinks: String) -> PipelineParts {
    PipelineParts { sinks, platform: EMBEDDED.into(), ..PipelineParts::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_replica_equals_its_source_through_every_change_and_type() {
    replica_follows_every_change(embedded(String::new()), FirstRows::Streamed, ()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_read_by_the_initial_snapshot_reaches_the_replica_as_it_is() {
    replica_follows_every_change(embedded(String::new()), FirstRows::Snapshot, ()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_snapshot_under_concurrent_writes_gives_every_row_once() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let table = format!("public.{}", scenario.names.table);
    scenario
        .sql(&format!("INSERT INTO {table} SELECT i, 'row ' || i FROM generate_series(1, 20000) i"))
        .await;
    let schema = format!("snap_{}", scenario.names.table);
    count_log_attempts(&scenario, &schema, EventLogShape::Current).await;
    let sinks = format!(
        "{}{}",
        postgres_replica_sink("replica", &scenario.env, &schema),
        event_log_sink(&scenario, &schema)
    );
    let (mut cdc, _) = scenario.start(&embedded(sinks.clone()), &[]);
    // Writes while the snapshot is read: new rows, and updates of rows it reads.
    let writes = async {
        for id in 20001..=20300 {
            scenario
                .sql(&format!(
                    "INSERT INTO {table} VALUES ({id}, 'new'); UPDATE {table} SET note = 'touched' WHERE id = {}",
                    id - 20000
                ))
                .await;
        }
    };
    writes.await;
    let replica = format!("{schema}.{}", scenario.names.table);
    assert_converges(&scenario, &table, &replica, || cdc.log()).await;
    // Every row is either read by the snapshot or created after it, never both.
    let reads = format!("SELECT count(*) FROM {schema}.events WHERE event_value->>'op' = 'r'");
    let reads_and_creates =
        format!("SELECT count(*) FROM {schema}.events WHERE event_value->>'op' IN ('r', 'c')");
    let all_logged =
        eventually(CONVERGE_TIMEOUT, || async { count(&scenario, &reads_and_creates).await == 20300 }).await;
    assert!(
        all_logged,
        "{} reads and creates of 20300\n{}",
        count(&scenario, &reads_and_creates).await,
        cdc.log()
    );
    let doubled = format!(
        "SELECT count(*) FROM (SELECT event_key->>'id' FROM {schema}.events \
         GROUP BY 1 HAVING count(*) FILTER (WHERE event_value->>'op' = 'r') > 0 \
            AND count(*) FILTER (WHERE event_value->>'op' = 'c') > 0) doubled"
    );
    assert_eq!(count(&scenario, &doubled).await, 0, "a row was both read and created\n{}", cdc.log());
    let attempts = format!("SELECT count(*) FROM {schema}.attempts WHERE n > 1");
    assert_eq!(count(&scenario, &attempts).await, 0, "a change was written twice\n{}", cdc.log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    // A restart streams on: the snapshot is not read again.
    let reads_before = count(&scenario, &reads).await;
    let (mut cdc, _) = scenario.start(&embedded(sinks), &[]);
    scenario.sql(&format!("INSERT INTO {table} VALUES (30000, 'after restart')")).await;
    assert_converges(&scenario, &table, &replica, || cdc.log()).await;
    assert_eq!(count(&scenario, &reads).await, reads_before, "the snapshot was read again\n{}", cdc.log());
    assert_eq!(count(&scenario, &attempts).await, 0, "a change was written twice\n{}", cdc.log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {schema} CASCADE")).await;
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_in_embedded_mode_writes_every_change_exactly_once() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let schema = format!("ekill_{}", scenario.names.table);
    count_log_attempts(&scenario, &schema, EventLogShape::Current).await;
    let sinks = format!(
        "{}{}",
        postgres_replica_sink("replica", &scenario.env, &schema),
        event_log_sink(&scenario, &schema)
    );
    // Rare confirmations: every restart streams again what the sinks already hold.
    let parts = PipelineParts { kafka: "  commit_interval_seconds: 5\n".into(), ..embedded(sinks) };
    kill_9_under_load(&scenario, &schema, &parts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slot_moves_on_while_the_captured_table_is_idle() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let schema = format!("idle_{}", scenario.names.table);
    let parts = PipelineParts {
        kafka: "  commit_interval_seconds: 0.5\n".into(),
        platform: format!("{EMBEDDED}wal_reader:\n  status_interval_seconds: 1\n"),
        ..embedded(postgres_replica_sink("replica", &scenario.env, &schema))
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let other = format!("other_{}", scenario.names.table);
    scenario
        .sql(&format!(
            "CREATE TABLE {other} (id bigint PRIMARY KEY, payload text); \
             INSERT INTO {other} SELECT i, repeat('x', 200) FROM generate_series(1, 20000) i"
        ))
        .await;
    let written: String =
        scenario.pg.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    let advanced = eventually(Duration::from_secs(60), || async {
        scenario
            .pg
            .query_one(
                "SELECT confirmed_flush_lsn >= $2::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
                &[&scenario.names.slot, &written],
            )
            .await
            .map(|row| row.get::<_, bool>(0))
            .unwrap_or(false)
    })
    .await;
    assert!(advanced, "the slot stayed behind {written}\n{}", cdc.log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP TABLE {other}; DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_transaction_streams_through_in_bounded_memory() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let schema = format!("big_{}", scenario.names.table);
    let parts = PipelineParts {
        kafka: "  poll_batch_size: 2000\n".into(),
        platform: format!("{EMBEDDED}max_buffered_messages: 20000\n"),
        ..embedded(postgres_replica_sink("replica", &scenario.env, &schema))
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let rows: i64 = 1_000_000;
    let table = format!("public.{}", scenario.names.table);
    scenario
        .sql(&format!("INSERT INTO {table} SELECT i, 'row ' || i FROM generate_series(1, {rows}) i"))
        .await;
    let replica = format!("{schema}.{}", scenario.names.table);
    let copied = eventually(Duration::from_secs(900), || async {
        count(&scenario, &format!("SELECT count(*) FROM {replica}")).await == rows
    })
    .await;
    assert!(
        copied,
        "{} of {rows} rows arrived\n{}",
        count(&scenario, &format!("SELECT count(*) FROM {replica}")).await,
        cdc.log()
    );
    let peak_mib = cdc.peak_rss_kib().expect("the process's memory") / 1024;
    // The transaction is ~100 MB of WAL and ~1 GB as Debezium records: neither is ever held whole.
    assert!(peak_mib < 400, "peak resident memory {peak_mib} MiB");
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {schema} CASCADE")).await;
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_no_sink_can_take_lands_in_the_dlq_directory_and_a_replay_delivers_it() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let schema = format!("dlq_{}", scenario.names.table);
    // The target's column is narrower than the source's: a long note is refused by the target.
    scenario
        .sql(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.{} (id bigint PRIMARY KEY, note varchar(8))",
            scenario.names.table
        ))
        .await;
    let dlq_dir = tempfile::tempdir().unwrap();
    let parts = PipelineParts {
        platform: format!("{EMBEDDED}dlq:\n  directory: {}\n  max_retries: 1\n", dlq_dir.path().display()),
        ..embedded(postgres_replica_sink("replica", &scenario.env, &schema))
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let table = format!("public.{}", scenario.names.table);
    scenario
        .sql(&format!(
            "INSERT INTO {table} VALUES (1, 'short'); INSERT INTO {table} VALUES (2, 'far too long for it'); \
             INSERT INTO {table} VALUES (3, 'fine')"
        ))
        .await;
    let replica = format!("{schema}.{}", scenario.names.table);
    let others = eventually(CONVERGE_TIMEOUT, || async {
        count(&scenario, &format!("SELECT count(*) FROM {replica} WHERE id IN (1, 3)")).await == 2
    })
    .await;
    assert!(others, "the other changes did not arrive\n{}", cdc.log());
    let file = dlq_dir.path().join(format!("{}.dlq.jsonl", scenario.topic()));
    let lines = std::fs::read_to_string(&file)
        .unwrap_or_else(|error| panic!("{}: {error}\n{}", file.display(), cdc.log()));
    let lines: Vec<serde_json::Value> =
        lines.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let entry = &lines[0];
    assert_eq!(entry["topic"], scenario.topic());
    let value: serde_json::Value = serde_json::from_str(entry["value"].as_str().unwrap()).unwrap();
    assert_eq!(value["payload"]["after"]["id"], 2);
    assert_eq!(entry["headers"]["dlq.sink_id"], "replica");
    assert!(entry["commit_lsn"].as_u64().is_some() && entry["index"].as_u64() == Some(1), "{entry}");
    let (ok, list) = scenario.cli(&parts, &["dlq", "list"], &[]);
    assert!(ok && list.lines().any(|line| line.starts_with("1 ") && line.ends_with(".dlq.jsonl")), "{list}");
    let (ok, shown) = scenario.cli(&parts, &["dlq", "show"], &[]);
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).unwrap_or_else(|_| panic!("{shown}"));
    assert!(ok && shown == *entry, "{shown}");
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());

    // The target is mended; a replay sends the change to the sink that refused it, once.
    scenario.sql(&format!("ALTER TABLE {replica} ALTER COLUMN note TYPE text")).await;
    let (ok, said) = scenario.cli(&parts, &["dlq", "replay"], &[]);
    assert!(
        ok && said.contains("replayed 1 record(s)") && said.contains("1 event(s) to `replica`"),
        "{said}"
    );
    let note = scenario.pg.query_one(&format!("SELECT note FROM {replica} WHERE id = 2"), &[]).await.unwrap();
    assert_eq!(note.get::<_, String>(0), "far too long for it");
    let (ok, said) = scenario.cli(&parts, &["dlq", "replay"], &[]);
    assert!(ok && said.contains("replayed 0 record(s)"), "{said}");
    scenario.sql(&format!("DROP SCHEMA {schema} CASCADE")).await;
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_replication_connection_resumes_where_it_left_off() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let schema = format!("lost_{}", scenario.names.table);
    count_log_attempts(&scenario, &schema, EventLogShape::Current).await;
    let sinks = format!(
        "{}{}",
        postgres_replica_sink("replica", &scenario.env, &schema),
        event_log_sink(&scenario, &schema)
    );
    let (mut cdc, health_port) = scenario.start(&embedded(sinks), &[]);
    scenario.wait_streaming(&cdc).await;
    let total: i64 = 200;
    let load = scenario.spawn_load(total, Duration::from_millis(20), None);
    let logged = format!("SELECT count(*) FROM {schema}.events");
    for round in 0..2 {
        let seen = count(&scenario, &logged).await;
        let progressed =
            eventually(CONVERGE_TIMEOUT, || async { count(&scenario, &logged).await >= seen + 20 }).await;
        assert!(progressed, "no progress in round {round}\n{}", cdc.log());
        // The server ends the walsender, as a failover or a network cut would.
        scenario
            .sql(&format!(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{}'",
                scenario.names.slot
            ))
            .await;
    }
    load.await.unwrap();
    let all_logged =
        eventually(CONVERGE_TIMEOUT, || async { count(&scenario, &logged).await == total }).await;
    assert!(all_logged, "{} of {total} changes logged\n{}", count(&scenario, &logged).await, cdc.log());
    let attempts = format!("SELECT count(*) FROM {schema}.attempts WHERE n > 1");
    assert_eq!(count(&scenario, &attempts).await, 0, "a change was written twice\n{}", cdc.log());
    assert!(cdc.log().contains("embedded.stream_lost"), "{}", cdc.log());
    scenario.wait_ready(health_port, &cdc, Duration::from_secs(30)).await;
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {schema} CASCADE")).await;
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_embedded_pipeline_lets_go_of_its_slot_in_process() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let env = &scenario.env;
    let embedded = EmbeddedSettings {
        connect: env.embedded_source_connection(),
        tables: vec![format!("public.{}", scenario.names.table)],
        publication: scenario.names.publication.clone(),
        slot: scenario.names.slot.clone(),
        snapshot_mode: SnapshotMode::Never,
        server: scenario.names.topic_prefix.clone(),
        status_interval: Duration::from_millis(200),
        max_retries: 3,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let settings = pipeline_settings("unused", "unused", "unused", Vec::new());
    let health = Arc::new(Health::new(Vec::<String>::new()));
    let running = tokio::spawn(pipeline::run_embedded(
        settings,
        embedded,
        None,
        health,
        Arc::new(Metrics::default()),
        shutdown,
    ));
    assert!(eventually(Duration::from_secs(60), || scenario.slot_active()).await, "the slot never streamed");
    scenario.sql(&format!("INSERT INTO public.{} VALUES (1, 'one')", scenario.names.table)).await;

    let _ = stop.send(());
    let outcome = running.await.unwrap().expect("the embedded source started");
    assert_eq!(outcome, pipeline::Outcome::Stopped);
    // The process lives on (a host embedding the pipeline, a test): the replication connection
    // must close with the pipeline, or the slot stays in use and holds WAL.
    let released = eventually(Duration::from_secs(5), || async { !scenario.slot_active().await }).await;
    assert!(released, "the slot is still in use after the pipeline stopped");
    scenario.cleanup().await;
}
