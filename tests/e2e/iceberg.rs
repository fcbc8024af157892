//! The Iceberg sink end to end: changes read from PostgreSQL in embedded mode land in an upsert
//! table and an append table of a real SQLite catalog on local disk, and independent readers
//! read them back: DuckDB (which applies the equality deletes) and pyiceberg. kill -9 under
//! load, repeated, leaves both exact: the upsert table equals the source, the append table holds
//! every change once.

use std::time::Duration;

use cdc_tests::lakehouse::{Lakehouse, Reader};
use cdc_tests::receiver::eventually;
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario};

use crate::postgres_replica::CONVERGE_TIMEOUT;

fn embedded(sinks: String) -> PipelineParts {
    PipelineParts { sinks, platform: "transport_mode: embedded\n".into(), ..PipelineParts::default() }
}

/// The source table's rows, the columns as text, in key order.
async fn source_rows(scenario: &Scenario, columns: &[&str]) -> Vec<Vec<Option<String>>> {
    let selected: Vec<String> = columns.iter().map(|column| format!("{column}::text")).collect();
    let query =
        format!("SELECT {} FROM public.{} ORDER BY id::text", selected.join(", "), scenario.names.table);
    scenario
        .pg
        .query(&query, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (0..columns.len()).map(|i| row.get::<_, Option<String>>(i)).collect())
        .collect()
}

/// Waits until `reader` reads `namespace.table` (the `columns`) as `expected`.
async fn assert_reads(
    lake: &Lakehouse,
    reader: Reader,
    namespace: &str,
    table: &str,
    columns: &[&str],
    expected: &[Vec<Option<String>>],
    log: impl Fn() -> String,
) {
    let converged = eventually(CONVERGE_TIMEOUT, || async {
        lake.read(reader, namespace, table, columns).as_deref() == Some(expected)
    })
    .await;
    assert!(
        converged,
        "{reader:?} never read {namespace}.{table} as expected\nexpected: {expected:?}\nread: {:?}\n{}",
        lake.read(reader, namespace, table, columns),
        log()
    );
}

fn text(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|value| (*value != "NULL").then(|| (*value).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_land_in_iceberg_tables_that_duckdb_and_pyiceberg_read() {
    let scenario = Scenario::new(
        "id bigint PRIMARY KEY, note text, amount numeric(12,3), seen timestamptz, day date, flag boolean",
    )
    .await;
    let lake = Lakehouse::default();
    let parts = embedded(format!(
        "{}{}",
        lake.sink("current", "current", "upsert"),
        lake.sink("history", "history", "append")
    ));
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let table = format!("public.{}", scenario.names.table);
    scenario
        .sql(&format!(
            "INSERT INTO {table} SELECT i, 'row ' || i, i * 1.5, '2024-05-06 07:08:09.5+02', '2024-05-06', i % 2 = 0 \
               FROM generate_series(1, 5) i;
             UPDATE {table} SET note = 'updated', amount = -0.001 WHERE id = 2;
             DELETE FROM {table} WHERE id = 3;
             UPDATE {table} SET id = 40 WHERE id = 4;
             INSERT INTO {table} (id) VALUES (6);"
        ))
        .await;

    let columns = ["id", "note", "amount", "day", "flag"];
    let expected = source_rows(&scenario, &columns).await;
    assert_eq!(expected.len(), 5);
    let name = scenario.names.table.as_str();
    assert_reads(&lake, Reader::DuckDb, "current", name, &columns, &expected, || cdc.log()).await;

    // Every change as a row: the key change is a delete and a create.
    let changes: Vec<Vec<Option<String>>> = [
        ["1", "c"],
        ["2", "c"],
        ["2", "u"],
        ["3", "c"],
        ["3", "d"],
        ["4", "c"],
        ["4", "d"],
        ["40", "c"],
        ["5", "c"],
        ["6", "c"],
    ]
    .iter()
    .map(|row| text(row))
    .collect();
    let mut sorted = changes.clone();
    sorted.sort_by_key(|row| row.iter().map(|v| v.clone().unwrap_or_default()).collect::<Vec<_>>());
    for reader in [Reader::DuckDb, Reader::PyIceberg] {
        assert_reads(&lake, reader, "history", name, &["id", "_cdc_op"], &sorted, || cdc.log()).await;
    }
    // Typed as the source declares them: the decimal keeps its scale, the timestamp its instant.
    let read = lake.read(Reader::DuckDb, "history", name, &["id", "amount", "seen"]).unwrap();
    let update =
        read.iter().find(|row| row[0].as_deref() == Some("2") && row[1].as_deref() == Some("-0.001"));
    assert!(update.is_some(), "{read:?}");
    assert!(
        read.iter()
            .any(|row| row[2].as_deref().is_some_and(|seen| seen.starts_with("2024-05-06 05:08:09.5"))),
        "{read:?}"
    );

    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_leaves_iceberg_tables_exact() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let lake = Lakehouse::default();
    let parts = embedded(format!(
        "{}{}",
        lake.sink("current", "current", "upsert"),
        lake.sink("history", "history", "append")
    ));
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;

    let total: i64 = 300;
    let load = scenario.spawn_load(total, Duration::from_millis(30), Some(3));
    let name = scenario.names.table.clone();
    let appended =
        || lake.read(Reader::DuckDb, "history", &name, &["_cdc_position"]).map_or(0, |rows| rows.len());
    let mut logs = String::new();
    for round in 0..3 {
        let seen = appended();
        let progressed = eventually(CONVERGE_TIMEOUT, || async { appended() >= seen + 20 }).await;
        assert!(progressed, "no progress in round {round}:\n{logs}\n{}", cdc.log());
        cdc.kill();
        logs.push_str(&format!("--- run {round} ---\n{}", cdc.log()));
        cdc = scenario.start(&parts, &[]).0;
    }
    load.await.unwrap();

    let expected = source_rows(&scenario, &["id", "note"]).await;
    assert_eq!(expected.len(), total as usize);
    let log = || format!("{logs}\n--- last ---\n{}", cdc.log());
    assert_reads(&lake, Reader::DuckDb, "current", &name, &["id", "note"], &expected, log).await;
    // Every change once: as many rows as changes, each position once.
    let changes = (total + total / 3) as usize;
    let all = eventually(CONVERGE_TIMEOUT, || async { appended() >= changes }).await;
    let positions = lake.read(Reader::DuckDb, "history", &name, &["_cdc_position"]).unwrap();
    let mut distinct = positions.clone();
    distinct.dedup();
    assert!(all && positions.len() == changes, "{} rows for {changes} changes\n{}", positions.len(), log());
    assert_eq!(distinct.len(), positions.len(), "a change was written twice\n{}", log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}
