//! The PostgreSQL sink in replica mode, end to end: PostgreSQL → Debezium → Kafka → `cdc run` →
//! replica tables in the same database, compared with the source row for row and type for type,
//! in JSON and Avro, through inserts, updates (a key change and an unchanged TOAST value among
//! them), deletes and a truncate; kill -9 under load, repeated, writes every change once; a
//! target unreachable for 30 s loses nothing.

use std::time::Duration;

use cdc_tests::env::TestEnv;
use cdc_tests::proxy::TcpProxy;
use cdc_tests::receiver::eventually;
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, postgres_replica_sink};
use cdc_tests::schema_registry::TestSchemaRegistry;

/// Every type of the Debezium all-types fixture, and a few more.
pub(crate) const ALL_TYPES: &str = "id integer PRIMARY KEY, num_fixed numeric(12,3), num_any numeric, \
    money_like decimal(10,2), ts timestamp, tstz timestamptz, d date, t time, j json, jb jsonb, u uuid, \
    int_arr int[], text_arr text[], b boolean, by bytea, f8 float8, f4 real, small smallint, big bigint, \
    v varchar(20), big_text text";

/// Text too large and too random to stay inline: PostgreSQL TOASTs it, and Debezium does not
/// send it again in an update that leaves it alone.
pub(crate) const LARGE_TEXT: &str = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)";

pub(crate) const CONVERGE_TIMEOUT: Duration = Duration::from_secs(150);

/// Rows of a table as JSON text in key order, or `None` when it does not exist yet.
pub(crate) async fn rows(scenario: &Scenario, table: &str) -> Option<Vec<String>> {
    let sql = format!("SELECT row_to_json(r)::text FROM {table} r ORDER BY id");
    let rows = scenario.pg.query(&sql, &[]).await.ok()?;
    Some(rows.iter().map(|row| row.get(0)).collect())
}

/// `(column, type)` of a table, in order.
async fn column_types(scenario: &Scenario, table: &str) -> Vec<(String, String)> {
    let sql = "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
               WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum";
    let rows = scenario.pg.query(sql, &[&table]).await.unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// Waits until the replica holds exactly the source's rows; panics with both and the log.
pub(crate) async fn assert_converges(
    scenario: &Scenario,
    source: &str,
    replica: &str,
    log: impl Fn() -> String,
) {
    let converged = eventually(CONVERGE_TIMEOUT, || async {
        let expected = rows(scenario, source).await;
        expected.is_some() && rows(scenario, replica).await == expected
    })
    .await;
    if !converged {
        let (expected, found) = (rows(scenario, source).await, rows(scenario, replica).await);
        panic!("the replica never matched the source\nsource: {expected:#?}\nreplica: {found:#?}\n{}", log());
    }
}

/// When the first rows of [`replica_follows_every_change`] are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstRows {
    /// Before the pipeline starts: its initial snapshot reads them.
    Snapshot,
    /// Once it streams.
    Streamed,
}

/// Every kind of change and every type, through the transport `transport` sets up (its
/// `kafka` and `platform` lines), into a replica; `keep` lives as long as the test.
pub(crate) async fn replica_follows_every_change(
    transport: PipelineParts,
    first_rows: FirstRows,
    keep: impl Sized,
) {
    let scenario = Scenario::new(ALL_TYPES).await;
    let target_schema = format!("replica_{}", scenario.names.table);
    let parts =
        PipelineParts { sinks: postgres_replica_sink("replica", &scenario.env, &target_schema), ..transport };
    let source = format!("public.{}", scenario.names.table);
    let replica = format!("{target_schema}.{}", scenario.names.table);
    let first_rows_sql = format!(
            "INSERT INTO {source} VALUES (1, 12.340, 3.14159265358979, 99.95, '2024-05-06 07:08:09.123456', \
               '2024-05-06 07:08:09.5+02', '2024-05-06', '12:34:56.789', '{{\"b\": 1,  \"a\": [1, 2]}}', \
               '{{\"z\": null, \"a\": \"x\"}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{1,NULL,3}}', \
               '{{\"a,b\",NULL,\"say \\\"hi\\\"\"}}', true, '\\x00ff10', 1.5e300, 0.1, -32768, -9223372036854775808, \
               'varchar ü', {LARGE_TEXT});
             INSERT INTO {source} VALUES (2, -0.001, -1e-20, 0, '1969-12-31 23:59:59.999999', '1970-01-01 00:00:00Z', \
               '0001-01-01', '00:00:00', '[]', '[]', '00000000-0000-0000-0000-000000000000', '{{}}', '{{}}', false, \
               '\\x', -2.5, 3.25, 32767, 9223372036854775807, '', 'short');
             INSERT INTO {source} (id) VALUES (3);"
    );
    let insert_first_rows = scenario.sql(&first_rows_sql);
    let mut cdc = if first_rows == FirstRows::Snapshot {
        insert_first_rows.await;
        scenario.start(&parts, &[]).0
    } else {
        let (cdc, _) = scenario.start(&parts, &[]);
        scenario.wait_streaming(&cdc).await;
        insert_first_rows.await;
        cdc
    };
    // An update that leaves the TOASTed text alone, a key change, a delete.
    scenario
        .sql(&format!(
            "UPDATE {source} SET num_fixed = 1.000, v = 'updated' WHERE id = 1;
             UPDATE {source} SET id = 20 WHERE id = 2;
             DELETE FROM {source} WHERE id = 3;
             INSERT INTO {source} (id, big_text) VALUES (4, {LARGE_TEXT}), (5, 'five');
             UPDATE {source} SET small = 4 WHERE id = 4;"
        ))
        .await;
    assert_converges(&scenario, &source, &replica, || cdc.log()).await;
    let types = column_types(&scenario, &source).await;
    assert_eq!(column_types(&scenario, &replica).await, types, "the replica's columns and types");
    let toasted: bool = scenario
        .pg
        .query_one(&format!("SELECT big_text = {LARGE_TEXT} FROM {replica} WHERE id = 4"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(toasted, "an unchanged TOAST value stays in the replica");

    // A truncate empties the replica; what follows it lands.
    scenario
        .sql(&format!("TRUNCATE {source}; INSERT INTO {source} (id, v) VALUES (9, 'nine'), (10, 'ten');"))
        .await;
    assert_converges(&scenario, &source, &replica, || cdc.log()).await;

    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {target_schema} CASCADE")).await;
    scenario.cleanup().await;
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_equals_its_source_through_every_change_and_type_in_json() {
    let transport = PipelineParts { kafka: "  schemas_enable: true\n".into(), ..PipelineParts::default() };
    replica_follows_every_change(transport, FirstRows::Streamed, ()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_equals_its_source_through_every_change_and_type_in_avro() {
    let registry = TestSchemaRegistry::start().await.expect("test registry starts");
    let kafka = format!("  value_converter: avro\n  schema_registry_url: {}\n", registry.url());
    replica_follows_every_change(
        PipelineParts { kafka, ..PipelineParts::default() },
        FirstRows::Streamed,
        registry,
    )
    .await;
}

/// The shape of the event-log table a test creates before the sink first connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventLogShape {
    /// As versions before `source_index` made it: the sink widens its key on first use.
    BeforeSourceIndex,
    /// As the sink makes it now.
    Current,
}

/// Creates `<schema>.events` in `shape`, with a trigger that counts, per position, the rows the
/// target committed into it: it sees every row an insert proposes, even one its `ON CONFLICT`
/// then drops, so a record written twice counts twice (in `<schema>.attempts`).
pub(crate) async fn count_log_attempts(scenario: &Scenario, schema: &str, shape: EventLogShape) {
    let (source_index, key) = match shape {
        EventLogShape::BeforeSourceIndex => {
            ("", "source_topic, source_partition, source_offset, output_index")
        }
        EventLogShape::Current => (
            "source_index bigint NOT NULL DEFAULT 0, ",
            "source_topic, source_partition, source_offset, source_index, output_index",
        ),
    };
    scenario
        .sql(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.events (source_topic text NOT NULL, source_partition integer NOT NULL, \
               source_offset bigint NOT NULL, {source_index}output_index integer NOT NULL DEFAULT 0, \
               event_key jsonb, event_value jsonb, written_at timestamptz NOT NULL DEFAULT now(), \
               PRIMARY KEY ({key}));
             CREATE TABLE {schema}.attempts (source_offset bigint, source_index bigint, n integer NOT NULL, \
               PRIMARY KEY (source_offset, source_index));
             CREATE FUNCTION {schema}.count_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               INSERT INTO {schema}.attempts VALUES (NEW.source_offset, NEW.source_index, 1)
                 ON CONFLICT (source_offset, source_index) DO UPDATE SET n = {schema}.attempts.n + 1;
               RETURN NEW;
             END $$;
             CREATE TRIGGER count_attempt BEFORE INSERT ON {schema}.events
               FOR EACH ROW EXECUTE FUNCTION {schema}.count_attempt();"
        ))
        .await;
}

pub(crate) async fn count(scenario: &Scenario, sql: &str) -> i64 {
    scenario.pg.query_one(sql, &[]).await.map(|row| row.get(0)).unwrap_or(-1)
}

/// An event-log sink item writing to `<schema>.events`.
pub(crate) fn event_log_sink(scenario: &Scenario, schema: &str) -> String {
    let env = &scenario.env;
    format!(
        "  - sink_id: log\n    sink_type: postgres\n    postgres:\n      host: {}\n      port: {}\n      database: {}\n      username: {}\n      target_table: {schema}.events\n",
        env.pg_host, env.pg_port, env.pg_db, env.pg_user
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_leaves_the_replica_equal_and_every_change_written_once() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let schema = format!("kill_{}", scenario.names.table);
    // The event log of a version before `source_index`: the sink widens its key.
    count_log_attempts(&scenario, &schema, EventLogShape::BeforeSourceIndex).await;
    let parts = PipelineParts {
        sinks: format!(
            "{}{}",
            postgres_replica_sink("replica", &scenario.env, &schema),
            event_log_sink(&scenario, &schema)
        ),
        // Rare commits: every restart reads again records the sinks already hold.
        kafka: "  schemas_enable: true\n  commit_interval_seconds: 5\n".into(),
        ..PipelineParts::default()
    };
    kill_9_under_load(&scenario, &schema, &parts).await;
}

/// Runs `parts` (a replica and an event log in `schema`, whose attempts a trigger counts)
/// under a load of inserts and updates, kills it with SIGKILL three times, and checks that the
/// replica equals the source and that the log holds every change exactly once.
pub(crate) async fn kill_9_under_load(scenario: &Scenario, schema: &str, parts: &PipelineParts) {
    let (mut cdc, _) = scenario.start(parts, &[]);
    scenario.wait_streaming(&cdc).await;

    let total: i64 = 300;
    // The load comes in one slice per run, each started as its run starts: a run that rejoins
    // the consumer group waits out the killed member's session first, seconds in which one
    // load for all runs would end, and a run that found nothing new to write could not be
    // killed while writing. A slice is a multiple of 3 rows, so each update's row is in it.
    let slice = total / 4;
    let slice_of = |run: i64| {
        scenario.spawn_load_of(run * slice + 1..=(run + 1) * slice, Duration::from_millis(30), Some(3))
    };
    let mut loads = Vec::new();
    let logged = format!("SELECT count(*) FROM {schema}.events");
    let mut logs = String::new();
    for round in 0..3 {
        loads.push(slice_of(round));
        let seen = count(scenario, &logged).await;
        let progressed =
            eventually(CONVERGE_TIMEOUT, || async { count(scenario, &logged).await >= seen + 20 }).await;
        assert!(progressed, "no progress in round {round}:\n{logs}\n{}", cdc.log());
        cdc.kill();
        logs.push_str(&format!("--- run {round} ---\n{}", cdc.log()));
        cdc = scenario.start(parts, &[]).0;
    }
    loads.push(slice_of(3));
    for load in loads {
        load.await.unwrap();
    }

    let source = format!("public.{}", scenario.names.table);
    let replica = format!("{schema}.{}", scenario.names.table);
    assert_converges(scenario, &source, &replica, || format!("{logs}\n--- last ---\n{}", cdc.log())).await;
    let changes = total + total / 3;
    let all_logged =
        eventually(CONVERGE_TIMEOUT, || async { count(scenario, &logged).await == changes }).await;
    assert!(all_logged, "{} of {changes} changes logged\n{}", count(scenario, &logged).await, cdc.log());
    let attempts = format!("SELECT count(*) FROM {schema}.attempts WHERE n > 1");
    assert_eq!(count(scenario, &attempts).await, 0, "a change was written twice\n{logs}\n{}", cdc.log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {schema} CASCADE")).await;
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_unreachable_for_30_seconds_under_load_loses_nothing() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let proxy = TcpProxy::start(format!("{}:{}", scenario.env.pg_host, scenario.env.pg_port)).await;
    let schema = format!("outage_{}", scenario.names.table);
    let through_proxy = TestEnv { pg_port: proxy.port(), ..scenario.env.clone() };
    let parts = PipelineParts {
        sinks: postgres_replica_sink("replica", &through_proxy, &schema),
        kafka: "  schemas_enable: true\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, health_port) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let load = scenario.spawn_load(600, Duration::from_millis(80), Some(5));
    let replica = format!("{schema}.{}", scenario.names.table);
    let replicated = format!("SELECT count(*) FROM {replica}");
    let started = eventually(CONVERGE_TIMEOUT, || async { count(&scenario, &replicated).await >= 20 }).await;
    assert!(started, "nothing replicated:\n{}", cdc.log());

    proxy.cut();
    let readyz = format!("http://127.0.0.1:{health_port}/readyz");
    let named = eventually(Duration::from_secs(20), || async {
        let Ok(response) = reqwest::get(&readyz).await else { return false };
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        status == 503
            && body["failing"]["sink:replica"].as_str().is_some_and(|reason| reason.contains("not connected"))
    })
    .await;
    assert!(named, "/readyz never named the unreachable sink:\n{}", cdc.log());
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.restore();

    load.await.unwrap();
    let source = format!("public.{}", scenario.names.table);
    assert_converges(&scenario, &source, &replica, || cdc.log()).await;
    scenario.wait_ready(health_port, &cdc, Duration::from_secs(60)).await;
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {schema} CASCADE")).await;
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restored_to_an_older_state_is_filled_again_from_its_own_position() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let schema = format!("restored_{}", scenario.names.table);
    let parts = PipelineParts {
        sinks: postgres_replica_sink("replica", &scenario.env, &schema),
        kafka: "  schemas_enable: true\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    scenario.insert_rows(1..=20).await;
    let source = format!("public.{}", scenario.names.table);
    let replica = format!("{schema}.{}", scenario.names.table);
    assert_converges(&scenario, &source, &replica, || cdc.log()).await;
    // A clean stop commits every offset: the group stands past all twenty rows.
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());

    // The target comes back from a backup taken before any of them: empty, position 0.
    scenario
        .sql(&format!("TRUNCATE {replica}; UPDATE {schema}.cdc_sink_positions SET next_offset = 0"))
        .await;
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.insert_rows(21..=25).await;
    assert_converges(&scenario, &source, &replica, || cdc.log()).await;
    assert!(cdc.log().contains("consumer.start_at_sink_position"), "{}", cdc.log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {schema} CASCADE")).await;
    scenario.cleanup().await;
}
