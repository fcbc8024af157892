//! The Iceberg sink end to end: changes read from PostgreSQL in embedded mode land in an upsert
//! table and an append table (partitioned by day) of a real SQLite catalog on local disk, and
//! independent readers read them back: DuckDB (which applies the equality deletes) and
//! pyiceberg. Compaction and snapshot expiry leave the rows as they were; `cdc lakehouse` lists
//! snapshots and reads rows. kill -9 under load, repeated, leaves both exact: the upsert table
//! (partitioned by its key) equals the source, the append table holds every change once.

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
    // Maintenance as often as it can run: compaction once two files are live, expiry of every
    // snapshot but the current one. The append table is partitioned by day.
    let maintenance = "      maintenance: {enabled: true, compaction_interval_seconds: 1, compaction_file_threshold: 2, \
                       expire_snapshots_interval_seconds: 1, expire_snapshots_older_than_seconds: 1}\n";
    let parts = embedded(format!(
        "{}{}",
        lake.sink_with("current", "current", "upsert", maintenance),
        lake.sink_with("history", "history", "append", "      partition_by: [\"day(seen)\"]\n")
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

    // More commits, one statement at a time: compaction folds them, DuckDB reads the same rows.
    for round in 0..4 {
        scenario.sql(&format!("UPDATE {table} SET note = 'round {round}' WHERE id = 1")).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let expected = source_rows(&scenario, &columns).await;
    assert_reads(&lake, Reader::DuckDb, "current", name, &columns, &expected, || cdc.log()).await;
    let compacted = eventually(CONVERGE_TIMEOUT, || async {
        scenario.sql(&format!("UPDATE {table} SET flag = NOT flag WHERE id = 5")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        cdc.log().contains("iceberg.compacted") && cdc.log().contains("iceberg.snapshots_expired")
    })
    .await;
    assert!(compacted, "no compaction and expiry\n{}", cdc.log());
    let expected = source_rows(&scenario, &columns).await;
    assert_reads(&lake, Reader::DuckDb, "current", name, &columns, &expected, || cdc.log()).await;

    // A column added at the source appears in the table; the rows before it have none.
    scenario
        .sql(&format!(
            "ALTER TABLE {table} ADD COLUMN extra text; INSERT INTO {table} (id, extra) VALUES (7, 'added')"
        ))
        .await;
    let grown = ["id", "note", "extra"];
    let expected = source_rows(&scenario, &grown).await;
    assert_reads(&lake, Reader::DuckDb, "current", name, &grown, &expected, || cdc.log()).await;

    // The operator's view: snapshots, rows, and no rollback in embedded mode.
    let (pipeline, platform, _) = scenario.write_config(&parts);
    let lakehouse = |args: &[&str]| {
        let output = std::process::Command::new(cdc_tests::build::cdc_binary())
            .arg("lakehouse")
            .args(args)
            .args([pipeline.to_str().unwrap(), "--platform-config", platform.to_str().unwrap()])
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, snapshots) = lakehouse(&["snapshots", "--sink-id", "current"]);
    assert!(ok && snapshots.contains(name) && snapshots.contains("replace"), "{snapshots}");
    let (ok, rows) = lakehouse(&["query", "--sink-id", "history", "--limit", "3"]);
    assert!(ok && rows.starts_with("id\tnote\tamount") && rows.contains("(3 rows of"), "{rows}");
    let (ok, refused) = lakehouse(&["rollback", "--sink-id", "history", "--as-of", "0", "--yes"]);
    assert!(!ok && refused.contains("embedded mode"), "{refused}");

    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_leaves_iceberg_tables_exact() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let lake = Lakehouse::default();
    // The upsert table partitioned by its key: deletes land in the partition of their row.
    let partitioned = "      partition_by: [\"bucket(4, id)\"]\n";
    let parts = embedded(format!(
        "{}{}",
        lake.sink_with("current", "current", "upsert", partitioned),
        lake.sink("history", "history", "append")
    ));
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;

    let total: i64 = 300;
    let load = scenario.spawn_load(total, Duration::from_millis(30), Some(3));
    let name = scenario.names.table.clone();
    let appended =
        || lake.read(Reader::DuckDb, "history", &name, &["_cdc_position"]).map_or(0, |rows| rows.len());
    let changes = (total + total / 3) as usize;
    let mut logs = String::new();
    for round in 0..3 {
        // Twenty more changes, or all of them once the load is near its end.
        let seen = appended();
        let wanted = (seen + 20).min(changes);
        let progressed = eventually(CONVERGE_TIMEOUT, || async { appended() >= wanted }).await;
        assert!(progressed, "{} of {wanted} changes in round {round}:\n{logs}\n{}", appended(), cdc.log());
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
    let all = eventually(CONVERGE_TIMEOUT, || async { appended() >= changes }).await;
    let positions = lake.read(Reader::DuckDb, "history", &name, &["_cdc_position"]).unwrap();
    let mut distinct = positions.clone();
    distinct.dedup();
    assert!(all && positions.len() == changes, "{} rows for {changes} changes\n{}", positions.len(), log());
    assert_eq!(distinct.len(), positions.len(), "a change was written twice\n{}", log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_change_iceberg_cannot_apply_halts_the_pipeline_naming_the_column() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let lake = Lakehouse::default();
    let (mut cdc, _) = scenario.start(&embedded(lake.sink("current", "current", "upsert")), &[]);
    scenario.wait_streaming(&cdc).await;
    let table = format!("public.{}", scenario.names.table);
    scenario.sql(&format!("INSERT INTO {table} VALUES (1, 'one')")).await;
    let name = scenario.names.table.clone();
    let one = vec![vec![Some("1".to_owned()), Some("one".to_owned())]];
    assert_reads(&lake, Reader::DuckDb, "current", &name, &["id", "note"], &one, || cdc.log()).await;

    scenario
        .sql(&format!(
            "ALTER TABLE {table} ALTER COLUMN note TYPE integer USING length(note); INSERT INTO {table} VALUES (2, 5)"
        ))
        .await;
    let deadline = std::time::Instant::now() + CONVERGE_TIMEOUT;
    let status = loop {
        if let Some(status) = cdc.try_status() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pipeline went on after an incompatible change\n{}",
            cdc.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = cdc.log();
    assert!(!status.success(), "{log}");
    assert!(log.contains("column `note` changed from string to int"), "{log}");
    // Nothing of the change reached the table.
    assert_eq!(lake.read(Reader::DuckDb, "current", &name, &["id", "note"]).unwrap(), one);
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_in_an_s3_warehouse_are_read_back_by_pyiceberg() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let lake = Lakehouse::on_s3().await;
    let maintenance = "      maintenance: {enabled: true, compaction_interval_seconds: 1, compaction_file_threshold: 2, \
                       expire_snapshots_interval_seconds: 1, expire_snapshots_older_than_seconds: 1, \
                       orphan_files_older_than_seconds: 2}\n";
    let parts = embedded(format!(
        "{}{}",
        lake.sink_with("current", "current", "upsert", maintenance),
        lake.sink("history", "history", "append")
    ));
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let table = format!("public.{}", scenario.names.table);
    scenario
        .sql(&format!(
            "INSERT INTO {table} SELECT i, 'row ' || i FROM generate_series(1, 20) i;
             UPDATE {table} SET note = 'five' WHERE id = 5;
             DELETE FROM {table} WHERE id = 7;"
        ))
        .await;
    let name = scenario.names.table.clone();
    let mut changes: Vec<Vec<Option<String>>> = (1..=20)
        .map(|id| text(&[&id.to_string(), "c"]))
        .chain([text(&["5", "u"]), text(&["7", "d"])])
        .collect();
    changes.sort();
    assert_reads(&lake, Reader::PyIceberg, "history", &name, &["id", "_cdc_op"], &changes, || cdc.log())
        .await;

    // pyiceberg reads no equality deletes: once compaction folded them, it reads the upsert
    // table too. A last change commits after the compaction interval, and compaction follows.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let compactions = || cdc.log().matches("iceberg.compacted sink_id=\"current\"").count();
    let before = compactions();
    scenario.sql(&format!("UPDATE {table} SET note = 'last' WHERE id = 1")).await;
    let compacted = eventually(CONVERGE_TIMEOUT, || async { compactions() > before }).await;
    assert!(compacted, "no compaction after the last change\n{}", cdc.log());
    let expected = source_rows(&scenario, &["id", "note"]).await;
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(
        lake.read(Reader::PyIceberg, "current", &name, &["id", "note"]).unwrap(),
        sorted,
        "{}",
        cdc.log()
    );

    // A file nothing references (what a crash between writing and committing leaves) is
    // deleted by the maintenance after a later commit once older than the configured age;
    // the table's own files stay: after one more change and compaction it reads the same.
    let stray = format!("warehouse/current/{name}/data/stray-orphan.parquet");
    lake.s3_put(&stray, b"PAR1").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = compactions();
    scenario.sql(&format!("UPDATE {table} SET note = 'later' WHERE id = 2")).await;
    let removed =
        eventually(CONVERGE_TIMEOUT, || async { cdc.log().contains("iceberg.orphans_removed") }).await;
    assert!(removed && !lake.s3_exists(&stray).await, "the stray file stays\n{}", cdc.log());
    let compacted = eventually(CONVERGE_TIMEOUT, || async { compactions() > before }).await;
    assert!(compacted, "no compaction after the change\n{}", cdc.log());
    let mut expected = source_rows(&scenario, &["id", "note"]).await;
    expected.sort();
    assert_eq!(
        lake.read(Reader::PyIceberg, "current", &name, &["id", "note"]).unwrap(),
        expected,
        "{}",
        cdc.log()
    );
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_behind_a_rest_catalog_evolve_and_resume_exactly_once() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    // lakana-server takes tables under `bronze`, `silver` and `gold` only.
    let lake = Lakehouse::on_rest().await;
    let compaction =
        "      maintenance: {enabled: true, compaction_interval_seconds: 1, compaction_file_threshold: 2}\n";
    let parts = embedded(format!(
        "{}{}",
        lake.sink_with("current", "silver", "upsert", compaction),
        lake.sink("history", "bronze", "append")
    ));
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let table = format!("public.{}", scenario.names.table);
    scenario
        .sql(&format!(
            "INSERT INTO {table} SELECT i, 'row ' || i FROM generate_series(1, 10) i;
             UPDATE {table} SET note = 'five' WHERE id = 5;
             DELETE FROM {table} WHERE id = 7;"
        ))
        .await;
    let name = scenario.names.table.clone();
    let expected = source_rows(&scenario, &["id", "note"]).await;
    assert_reads(&lake, Reader::DuckDb, "silver", &name, &["id", "note"], &expected, || cdc.log()).await;

    // A column added at the source: a schema change through the catalog's commit endpoint.
    scenario
        .sql(&format!(
            "ALTER TABLE {table} ADD COLUMN extra text; INSERT INTO {table} VALUES (11, 'eleven', 'x')"
        ))
        .await;
    let grown = ["id", "note", "extra"];
    let expected = source_rows(&scenario, &grown).await;
    assert_reads(&lake, Reader::DuckDb, "silver", &name, &grown, &expected, || cdc.log()).await;

    // Another writer commits to the append table: the sink's next commit there is refused (409),
    // reads the table again and commits on top, keeping the other writer's row.
    let foreign = serde_json::json!({"id": 1000, "_cdc_op": "x", "_cdc_position": "another writer"});
    lake.append_as_another_writer("bronze", &name, &foreign);
    scenario.sql(&format!("INSERT INTO {table} VALUES (12, 'twelve', 'z')")).await;
    let expected = source_rows(&scenario, &grown).await;
    assert_reads(&lake, Reader::DuckDb, "silver", &name, &grown, &expected, || cdc.log()).await;

    // Stopped, changes made meanwhile, started again: it resumes from the positions the
    // catalog's snapshots hold, and pyiceberg reads every change of the append table once.
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    let first = cdc.log();
    scenario
        .sql(&format!("UPDATE {table} SET extra = 'y' WHERE id <= 3; DELETE FROM {table} WHERE id = 10"))
        .await;
    cdc = scenario.start(&parts, &[]).0;
    let log = || format!("{first}\n--- restarted ---\n{}", cdc.log());
    let expected = source_rows(&scenario, &grown).await;
    assert_reads(&lake, Reader::DuckDb, "silver", &name, &grown, &expected, log).await;
    let mut changes: Vec<Vec<Option<String>>> = (1..=12)
        .map(|id| text(&[&id.to_string(), "c"]))
        .chain([text(&["5", "u"]), text(&["7", "d"]), text(&["10", "d"]), text(&["1000", "x"])])
        .chain((1..=3).map(|id| text(&[&id.to_string(), "u"])))
        .collect();
    changes.sort();
    assert_reads(&lake, Reader::PyIceberg, "bronze", &name, &["id", "_cdc_op"], &changes, log).await;
    let compacted =
        cdc.log().contains("iceberg.compacted sink_id=\"current\"") || first.contains("iceberg.compacted");
    assert!(compacted, "no compaction through the REST catalog\n{}", log());
    let status = cdc.terminate(Duration::from_secs(60));
    assert!(status.success(), "{first}\n--- restarted ---\n{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_rewinds_table_and_positions_and_the_kafka_pipeline_replays_from_there() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let lake = Lakehouse::default();
    let parts = PipelineParts {
        sinks: lake.sink("history", "history", "append"),
        kafka: "  schemas_enable: true\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let name = scenario.names.table.clone();
    // Rows inserted while Debezium's snapshot runs arrive as reads (`r`), later ones as
    // creates: the rows are compared by id, each once.
    let creates = |ids: std::ops::RangeInclusive<i64>| -> Vec<Vec<Option<String>>> {
        let mut rows: Vec<_> = ids.map(|id| text(&[&id.to_string()])).collect();
        rows.sort();
        rows
    };
    scenario.insert_rows(1..=5).await;
    assert_reads(&lake, Reader::DuckDb, "history", &name, &["id"], &creates(1..=5), || cdc.log()).await;
    let between = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    tokio::time::sleep(Duration::from_millis(50)).await;
    scenario.insert_rows(6..=10).await;
    assert_reads(&lake, Reader::DuckDb, "history", &name, &["id"], &creates(1..=10), || cdc.log()).await;
    // A clean stop: the consumer group's offsets stand past all ten rows.
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    let first = cdc.log();

    let (pipeline, platform, _) = scenario.write_config(&parts);
    let output = std::process::Command::new(cdc_tests::build::cdc_binary())
        .args(["lakehouse", "rollback", pipeline.to_str().unwrap(), "--platform-config"])
        .args([platform.to_str().unwrap(), "--sink-id", "history", "--as-of", &between.to_string(), "--yes"])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert_eq!(lake.read(Reader::DuckDb, "history", &name, &["id"]).unwrap(), creates(1..=5), "{said}");

    // Started again, the pipeline seeks to the positions of the snapshot rolled back to and
    // writes rows 6..=10 again, once each, with the rows that came meanwhile.
    scenario.insert_rows(11..=12).await;
    let (mut cdc, _) = scenario.start(&parts, &[]);
    let log = || format!("{first}\n--- after the rollback ---\n{}", cdc.log());
    assert_reads(&lake, Reader::DuckDb, "history", &name, &["id"], &creates(1..=12), log).await;
    assert!(cdc.log().contains("consumer.start_at_sink_position"), "{}", log());
    let status = cdc.terminate(Duration::from_secs(60));
    assert!(status.success(), "{first}\n--- after the rollback ---\n{}", cdc.log());
    scenario.cleanup().await;
}
