//! The PostgreSQL sink driven directly, as a sink lane drives it, against the test database:
//! the net effect of a write (last change per key, key changes, unchanged TOAST values,
//! truncates), overlapped deliveries, a connection lost mid-transaction, what it refuses, and
//! TLS with a private CA.

use std::sync::Arc;

use cdc_host::config::PostgresSslMode;
use cdc_host::error::ErrorClass;
use cdc_host::event::{ChangeEvent, Column, Op, Position, Row, SourceInfo, TableId, Value};
use cdc_host::sinks::postgres::{ConnectSettings, PostgresFactory, PostgresSettings, Target};
use cdc_host::sinks::{Sink, SinkFactory};
use cdc_tests::env::{TestEnv, unique_suffix};
use cdc_tests::proxy::TcpProxy;

struct TargetDb {
    client: tokio_postgres::Client,
    schema: String,
    env: TestEnv,
}

impl TargetDb {
    async fn new() -> Self {
        let env = TestEnv::from_env();
        let (client, connection) =
            tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        TargetDb { client, schema: format!("sink_{}", unique_suffix()), env }
    }

    fn settings(&self, port: u16, target: Target) -> PostgresSettings {
        PostgresSettings {
            pipeline_id: "sink-suite".into(),
            connect: ConnectSettings { port, ..self.env.postgres_sink_connection() },
            target,
            rows_per_statement: 2,
        }
    }

    fn replica(&self) -> Arc<dyn SinkFactory> {
        let target = Target::Replica { target_schema: self.schema.clone(), table_map: Vec::new() };
        Arc::new(PostgresFactory::new("replica", &self.settings(self.env.pg_port, target)).unwrap())
    }

    /// `(id, note, big = the large text)` of `table`, by id.
    async fn rows(&self, table: &str) -> Vec<(i64, Option<String>, bool)> {
        let sql = format!("SELECT id, note, big = $1 FROM {}.{table} ORDER BY id", self.schema);
        let rows = self.client.query(&sql, &[&big()]).await.unwrap();
        rows.iter()
            .map(|row| (row.get(0), row.get(1), row.get::<_, Option<bool>>(2).unwrap_or(false)))
            .collect()
    }
}

fn big() -> String {
    "large ".repeat(1000)
}

fn columns() -> Vec<Column> {
    let column = |name: &str, connect: &str, optional| Column {
        name: name.into(),
        connect_type: connect.into(),
        optional,
        ..Column::default()
    };
    vec![column("id", "int64", false), column("note", "string", true), column("big", "string", true)]
}

fn row(id: i64, note: &str, big: Value) -> Row {
    Row::from(vec![
        ("id".into(), Value::Int(id)),
        ("note".into(), Value::Text(note.into())),
        ("big".into(), big),
    ])
}

fn key(id: i64) -> Row {
    Row::from(vec![("id".into(), Value::Int(id))])
}

/// A change of `table` at `offset`.
fn change(
    table: &str,
    offset: i64,
    op: Op,
    key_row: Option<Row>,
    before: Option<Row>,
    after: Option<Row>,
) -> ChangeEvent {
    ChangeEvent {
        op,
        table: TableId { database: Some("shop".into()), schema: Some("public".into()), table: table.into() },
        key: key_row,
        before,
        after,
        source: SourceInfo::default(),
        ts_ms: Some(1),
        columns: Some(columns().into()),
        position: Position::Kafka { topic: Arc::from(format!("shop.public.{table}")), partition: 0, offset },
        output_index: 0,
    }
}

fn upsert(table: &str, offset: i64, id: i64, note: &str, big: Value) -> ChangeEvent {
    let op = if matches!(big, Value::Unavailable) { Op::Update } else { Op::Create };
    change(table, offset, op, Some(key(id)), None, Some(row(id, note, big)))
}

fn delete(table: &str, offset: i64, id: i64) -> ChangeEvent {
    change(table, offset, Op::Delete, Some(key(id)), Some(key(id)), None)
}

async fn deliver(sink: &mut Box<dyn Sink>, events: &[ChangeEvent]) {
    sink.write(events).await.expect("write");
    sink.flush().await.expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_keeps_the_last_change_per_key_with_key_changes_toast_and_truncates() {
    let target = TargetDb::new().await;
    let mut sink = target.replica().build();
    sink.open().await.expect("open");
    let t = "items";
    let renamed_key = change(
        t,
        6,
        Op::Update,
        Some(key(30)),
        Some(row(3, "d", Value::Null)),
        Some(row(30, "e", Value::Null)),
    );
    deliver(
        &mut sink,
        &[
            upsert(t, 1, 1, "a", Value::Text(big())),
            upsert(t, 2, 1, "b", Value::Unavailable),
            upsert(t, 3, 2, "c", Value::Null),
            delete(t, 4, 2),
            upsert(t, 5, 3, "d", Value::Null),
            renamed_key,
            upsert(t, 7, 4, "f", Value::Null),
        ],
    )
    .await;
    let expected =
        vec![(1, Some("b".into()), true), (4, Some("f".into()), false), (30, Some("e".into()), false)];
    assert_eq!(target.rows(t).await, expected, "the unchanged TOAST value came from the insert before it");

    // Across writes, an unchanged TOAST column is left as the target has it.
    deliver(&mut sink, &[upsert(t, 8, 1, "z", Value::Unavailable)]).await;
    assert_eq!(target.rows(t).await[0], (1, Some("z".into()), true));

    // A truncate drops what came before it in the write, and what the table held.
    let truncate = change(t, 9, Op::Truncate, None, None, None);
    deliver(
        &mut sink,
        &[upsert(t, 9, 9, "gone", Value::Null), truncate, upsert(t, 10, 5, "after", Value::Null)],
    )
    .await;
    assert_eq!(target.rows(t).await, vec![(5, Some("after".into()), false)]);

    // A new lane skips what the target already holds: replaying the first write changes nothing.
    let mut replay = target.replica().build();
    deliver(&mut replay, &[upsert(t, 1, 1, "a", Value::Text(big())), upsert(t, 7, 4, "f", Value::Null)])
        .await;
    assert_eq!(target.rows(t).await, vec![(5, Some("after".into()), false)]);
    sink.close().await;
    replay.close().await;
    target.client.batch_execute(&format!("DROP SCHEMA {} CASCADE", target.schema)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapped_deliveries_land_in_order_and_a_failed_one_fails_those_after_it() {
    let target = TargetDb::new().await;
    let t = "checked";
    // The sink takes a table that exists; this one refuses a note `bad`.
    target
        .client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.{t} (id bigint PRIMARY KEY, \
             note text CHECK (note <> 'bad'), big text)",
            schema = target.schema
        ))
        .await
        .unwrap();
    let mut sink = target.replica().build();
    let first = [upsert(t, 1, 1, "a", Value::Null)];
    assert!(sink.submit(&first).await.is_none(), "a fresh session first writes, resolving the table");
    deliver(&mut sink, &first).await;

    let (second, bad, fourth) = (
        [upsert(t, 2, 2, "b", Value::Null)],
        [upsert(t, 3, 3, "bad", Value::Null)],
        [upsert(t, 4, 4, "d", Value::Null)],
    );
    let mut receipts = Vec::new();
    for events in [&second[..], &bad, &fourth] {
        receipts.push(sink.submit(events).await.expect("a known table's rows are sent in the background"));
    }
    let outcomes = futures::future::join_all(receipts).await;
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    let refused = outcomes[1].as_ref().expect_err("the check refuses the row");
    assert!(refused.source.to_string().contains("check"), "{refused}");
    let after = outcomes[2].as_ref().expect_err("sent after a failed delivery");
    assert!(after.source.to_string().contains("a delivery sent before it failed"), "{after}");
    let ids = |rows: Vec<(i64, Option<String>, bool)>| rows.into_iter().map(|row| row.0).collect::<Vec<_>>();
    assert_eq!(ids(target.rows(t).await), [1, 2], "nothing of the failed delivery or the one after it");
    let stored = format!("SELECT next_offset FROM {}.cdc_sink_positions", target.schema);
    let next =
        |rows: Vec<tokio_postgres::Row>| rows.iter().map(|row| row.get::<_, i64>(0)).collect::<Vec<_>>();
    assert_eq!(next(target.client.query(&stored, &[]).await.unwrap()), [3]);

    // Written again as a lane writes them: the refused row is named, the next one lands once.
    let error = sink.write(&bad).await.expect_err("the check refuses the row");
    assert_eq!((error.accepted, error.names_event, error.class), (0, true, ErrorClass::Record));
    deliver(&mut sink, &fourth).await;
    // Rows of another shape need a statement not prepared yet: the lane writes them, so that
    // nothing of its own runs on the connection while deliveries do.
    let toast = [upsert(t, 5, 5, "e", Value::Unavailable)];
    assert!(sink.submit(&toast).await.is_none(), "a statement to prepare first");
    deliver(&mut sink, &toast).await;
    let sixth = [upsert(t, 6, 6, "f", Value::Null)];
    let receipt = sink.submit(&sixth).await.expect("sent in the background again");
    receipt.await.expect("written");
    assert_eq!(ids(target.rows(t).await), [1, 2, 4, 5, 6]);
    assert_eq!(next(target.client.query(&stored, &[]).await.unwrap()), [7]);
    sink.close().await;
    target.client.batch_execute(&format!("DROP SCHEMA {} CASCADE", target.schema)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_primary_key_is_refused_naming_it() {
    let target = TargetDb::new().await;
    let mut sink = target.replica().build();
    let events = [
        upsert("keyed", 1, 1, "a", Value::Null),
        change("keyless", 2, Op::Create, None, None, Some(row(1, "a", Value::Null))),
    ];
    let error = sink.write(&events).await.expect_err("the keyless table is refused");
    assert_eq!((error.accepted, error.names_event, error.class), (1, true, ErrorClass::Record));
    let message = error.source.to_string();
    assert!(message.contains("public.keyless") && message.contains("no primary key"), "{message}");
    sink.flush().await.expect("the event before it is written");
    assert_eq!(target.rows("keyed").await, vec![(1, Some("a".into()), false)]);
    target.client.batch_execute(&format!("DROP SCHEMA {} CASCADE", target.schema)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_transaction_fails_the_flush_and_the_batch_lands_once_when_written_again() {
    let target = TargetDb::new().await;
    let proxy = TcpProxy::start(format!("{}:{}", target.env.pg_host, target.env.pg_port)).await;
    let table = format!("{}.events", target.schema);
    let settings = target.settings(proxy.port(), Target::EventLog { table: table.clone(), upsert: false });
    let factory = PostgresFactory::new("log", &settings).unwrap();
    let mut sink = factory.build();
    let events: Vec<ChangeEvent> = (1..=6).map(|id| upsert("t", id, id, "n", Value::Null)).collect();
    deliver(&mut sink, &events[..3]).await;

    sink.write(&events[3..]).await.expect("written, not committed");
    proxy.cut();
    let error = sink.flush().await.expect_err("the commit cannot reach the target");
    assert!(matches!(error.class, ErrorClass::Transient { .. }), "{error}");
    let error = sink.write(&events[3..]).await.expect_err("the target is unreachable");
    assert!(matches!(error.class, ErrorClass::Transient { .. }), "{error}");
    let health = sink.health().await.expect_err("the sink says it is down");
    assert!(health.contains(&format!("127.0.0.1:{}", proxy.port())), "{health}");

    proxy.restore();
    deliver(&mut sink, &events[3..]).await;
    let offsets =
        |rows: Vec<tokio_postgres::Row>| rows.iter().map(|row| row.get::<_, i64>(0)).collect::<Vec<_>>();
    let query = format!("SELECT source_offset FROM {table} ORDER BY source_offset");
    assert_eq!(offsets(target.client.query(&query, &[]).await.unwrap()), (1..=6).collect::<Vec<_>>());
    let stored =
        format!("SELECT next_offset FROM {}.cdc_sink_positions WHERE sink_id = 'log'", target.schema);
    assert_eq!(
        offsets(target.client.query(&stored, &[]).await.unwrap()),
        vec![7],
        "the next position, stored"
    );
    sink.close().await;
    target.client.batch_execute(&format!("DROP SCHEMA {} CASCADE", target.schema)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_writes_over_tls_to_a_server_of_a_private_ca_and_refuses_an_unknown_one() {
    let target = TargetDb::new().await;
    let replica = Target::Replica { target_schema: target.schema.clone(), table_map: Vec::new() };
    let mut settings = target.settings(target.env.pg_port, replica);
    settings.connect.sslmode = PostgresSslMode::VerifyFull;

    // The system's roots alone do not know the test CA.
    let mut sink = PostgresFactory::new("tls", &settings).unwrap().build();
    let error = sink.open().await.expect_err("an unknown CA is refused");
    assert!(error.source.to_string().contains("certificate"), "{error}");

    settings.connect.sslrootcert = Some(target.env.pg_ca.clone().into());
    let mut sink = PostgresFactory::new("tls", &settings).unwrap().build();
    deliver(&mut sink, &[upsert("secure", 1, 1, "over tls", Value::Null)]).await;
    assert_eq!(target.rows("secure").await, vec![(1, Some("over tls".into()), false)]);
    let encrypted = "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
                     WHERE application_name = 'cdc' AND ssl";
    let sessions: i64 = target.client.query_one(encrypted, &[]).await.unwrap().get(0);
    assert!(sessions >= 1, "the sink's session is encrypted");
    sink.close().await;
    target.client.batch_execute(&format!("DROP SCHEMA {} CASCADE", target.schema)).await.unwrap();
}
