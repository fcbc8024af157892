//! The Iceberg sink against a real SQLite catalog and real Parquet files on local disk, read
//! back through iceberg's own scan (which applies equality deletes). The end-to-end tests read
//! the same tables with DuckDB and pyiceberg.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Int32Array, RecordBatch, StringArray};
use futures::TryStreamExt;

use super::*;
use crate::config::{MaintenanceConfig, Secret};
use crate::event::{Decimal, Op, Position, Row, SourceInfo, Value};

fn config(dir: &std::path::Path, mode: WriteMode) -> IcebergSinkConfig {
    IcebergSinkConfig {
        catalog_name: "cdc".into(),
        catalog_uri: format!("sqlite:{}", dir.join("catalog.db").display()),
        warehouse: dir.join("warehouse").display().to_string(),
        table_namespace: "lake".into(),
        table_name: "{schema}_{table}".into(),
        write_mode: mode,
        batch_size: 100,
        auto_create_table: true,
        partition_by: Vec::new(),
        catalog_token: None,
        catalog_ca_file: None,
        catalog_properties: Default::default(),
        s3_endpoint: None,
        s3_access_key_id: None,
        s3_secret_access_key: None::<Secret>,
        s3_region: "us-east-1".into(),
        maintenance: MaintenanceConfig {
            enabled: false,
            expire_snapshots_interval: Duration::from_secs(3600),
            expire_snapshots_older_than: Duration::from_secs(3600),
            compaction_interval: Duration::from_secs(3600),
            compaction_file_threshold: 10,
            compaction_max_rows_per_batch: 1000,
            orphan_files_older_than: Duration::from_secs(86400),
        },
        flush_interval: Duration::ZERO,
        write_executor_threads: 0,
    }
}

fn factory(dir: &std::path::Path, mode: WriteMode) -> IcebergFactory {
    let settings = IcebergSettings::from_config("orders-pipeline", &config(dir, mode)).unwrap();
    IcebergFactory::new("lake", &settings)
}

fn columns(extra: bool) -> Arc<[Column]> {
    let column = |name: &str, connect: &str, logical: Option<&str>, optional| Column {
        name: name.into(),
        connect_type: connect.into(),
        logical_type: logical.map(str::to_owned),
        optional,
        ..Column::default()
    };
    let mut columns = vec![
        column("id", "int32", None, false),
        column("name", "string", None, true),
        Column {
            precision: Some(10),
            scale: Some(2),
            ..column("price", "bytes", Some("org.apache.kafka.connect.data.Decimal"), true)
        },
    ];
    if extra {
        columns.push(column("note", "string", None, true));
    }
    columns.into()
}

/// A change to row `id` of `shop.public.orders` at `offset` of partition 0.
fn change(op: Op, offset: i64, id: i64, name: &str, columns: &Arc<[Column]>) -> ChangeEvent {
    let mut row = Row::new()
        .with("id", Value::Int(id))
        .with("name", Value::Text(name.into()))
        .with("price", Value::Decimal(Decimal::parse("12.50").unwrap()));
    if columns.len() > 3 {
        row.set("note", Value::Text(format!("note {id}")));
    }
    let (before, after) = match op {
        Op::Delete => (Some(row), None),
        _ => (None, Some(row)),
    };
    ChangeEvent {
        op,
        table: TableId {
            database: Some("shop".into()),
            schema: Some("public".into()),
            table: "orders".into(),
        },
        key: Some(Row::new().with("id", Value::Int(id))),
        before,
        after,
        source: SourceInfo { commit_ts_ms: Some(1_700_000_000_000), ..SourceInfo::default() },
        ts_ms: Some(1),
        columns: Some(columns.clone()),
        position: Position::Kafka { topic: Arc::from("shop.public.orders"), partition: 0, offset },
        output_index: 0,
    }
}

async fn deliver(sink: &mut Box<dyn Sink>, events: &[ChangeEvent]) {
    sink.write(events).await.unwrap();
    sink.flush().await.unwrap();
}

async fn read_table(dir: &std::path::Path, name: &str) -> (Table, Vec<RecordBatch>) {
    let settings = CatalogSettings::from_config(&config(dir, WriteMode::Append)).unwrap();
    let lakehouse = Lakehouse::open(&settings).await.unwrap();
    let ident = TableIdent::new(NamespaceIdent::new("lake".into()), name.into());
    let table = lakehouse.catalog.load_table(&ident).await.unwrap();
    let batches =
        table.scan().select_all().build().unwrap().to_arrow().await.unwrap().try_collect().await.unwrap();
    (table, batches)
}

/// `(id, name, op)` of every row, sorted.
fn rows(batches: &[RecordBatch]) -> Vec<(i32, String, String)> {
    let mut rows = Vec::new();
    for batch in batches {
        let ids = batch.column_by_name("id").unwrap().as_any().downcast_ref::<Int32Array>().unwrap();
        let names = batch.column_by_name("name").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let ops =
            batch.column_by_name(schema::CDC_OP).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        for row in 0..batch.num_rows() {
            rows.push((ids.value(row), names.value(row).to_owned(), ops.value(row).to_owned()));
        }
    }
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn append_writes_every_change_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let columns = columns(false);
    let events = [
        change(Op::Create, 0, 1, "a", &columns),
        change(Op::Update, 1, 1, "b", &columns),
        change(Op::Create, 2, 2, "c", &columns),
        change(Op::Delete, 3, 1, "b", &columns),
    ];
    let factory = factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    deliver(&mut sink, &events[..3]).await;

    // A restart (a new lane) gets the batch again, with one more change: only that is new.
    let factory = self::factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    deliver(&mut sink, &events).await;

    let (table, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(
        rows(&batches),
        [
            (1, "a".into(), "c".into()),
            (1, "b".into(), "d".into()),
            (1, "b".into(), "u".into()),
            (2, "c".into(), "c".into())
        ]
    );
    assert_eq!(table.metadata().snapshots().count(), 2);
    let partition: PartitionKey = (Arc::from("shop.public.orders"), 0);
    let stored = factory.stored_positions(std::slice::from_ref(&partition)).await.unwrap();
    assert_eq!(stored, HashMap::from([(partition, 4)]));
    // The CDC columns: the position and the commit time.
    let positions = batches[0].column_by_name(schema::CDC_POSITION).unwrap();
    assert!(
        positions
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .starts_with("shop.public.orders/0/")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_keeps_the_last_row_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let columns = columns(false);
    let factory = factory(dir.path(), WriteMode::Upsert);
    let mut sink = factory.build();
    deliver(
        &mut sink,
        &[
            change(Op::Create, 0, 1, "a", &columns),
            change(Op::Create, 1, 2, "b", &columns),
            change(Op::Create, 2, 3, "c", &columns),
            change(Op::Update, 3, 1, "a2", &columns),
        ],
    )
    .await;
    deliver(
        &mut sink,
        &[
            change(Op::Delete, 4, 2, "b", &columns),
            change(Op::Update, 5, 1, "a3", &columns),
            change(Op::Create, 6, 2, "b2", &columns),
        ],
    )
    .await;
    let (table, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(
        rows(&batches),
        [(1, "a3".into(), "u".into()), (2, "b2".into(), "c".into()), (3, "c".into(), "c".into())]
    );
    let current = table.metadata().current_snapshot().unwrap();
    assert_eq!(current.summary().operation, iceberg::spec::Operation::Overwrite);
    // Data rows in live files: 3, then 2 more (equality deletes hide the replaced ones).
    assert_eq!(current.summary().additional_properties["total-records"], "5");

    // A truncate empties the table; what follows it in the batch stays.
    deliver(&mut sink, &[truncate(7, &columns), change(Op::Create, 8, 9, "z", &columns)]).await;
    let (_, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(rows(&batches), [(9, "z".into(), "c".into())]);
}

fn truncate(offset: i64, columns: &Arc<[Column]>) -> ChangeEvent {
    ChangeEvent {
        op: Op::Truncate,
        key: None,
        before: None,
        after: None,
        ..change(Op::Create, offset, 0, "", columns)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_the_source_gains_is_added_to_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let factory = factory(dir.path(), WriteMode::Upsert);
    let mut sink = factory.build();
    deliver(&mut sink, &[change(Op::Create, 0, 1, "a", &columns(false))]).await;
    deliver(&mut sink, &[change(Op::Create, 1, 2, "b", &columns(true))]).await;
    let (table, batches) = read_table(dir.path(), "public_orders").await;
    assert!(table.metadata().current_schema().field_by_name("note").is_some());
    let mut notes: Vec<Option<String>> = batches
        .iter()
        .flat_map(|batch| {
            let notes =
                batch.column_by_name("note").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..notes.len()).map(move |row| notes.is_valid(row).then(|| notes.value(row).to_owned()))
        })
        .collect();
    notes.sort();
    assert_eq!(notes, [None, Some("note 2".to_owned())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_the_column_cannot_hold_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let columns = columns(false);
    let mut bad = change(Op::Create, 1, 2, "b", &columns);
    bad.after.as_mut().unwrap().set("price", Value::Decimal(Decimal::parse("1.234").unwrap()));
    let events = [change(Op::Create, 0, 1, "a", &columns), bad, change(Op::Create, 2, 3, "c", &columns)];
    let factory = factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    let error = sink.write(&events).await.unwrap_err();
    assert_eq!((error.accepted, error.names_event, error.class), (1, true, ErrorClass::Record));
    assert!(error.source.to_string().contains("`price`"), "{error}");
    sink.write(&events[2..]).await.unwrap();
    sink.flush().await.unwrap();
    let (_, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(rows(&batches), [(1, "a".into(), "c".into()), (3, "c".into(), "c".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_without_a_schema_cannot_create_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut event = change(Op::Create, 0, 1, "a", &columns(false));
    event.columns = None;
    let factory = factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    let error = sink.write(&[event]).await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Fatal);
    assert!(error.source.to_string().contains("no schema"), "{error}");
    assert!(sink.health().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_over_a_table_another_writer_moved_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let factory = factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    deliver(&mut sink, &[change(Op::Create, 0, 1, "a", &columns(false))]).await;
    let (stale, _) = read_table(dir.path(), "public_orders").await;
    deliver(&mut sink, &[change(Op::Create, 1, 2, "b", &columns(false))]).await;

    let settings = CatalogSettings::from_config(&config(dir.path(), WriteMode::Append)).unwrap();
    let lakehouse = Lakehouse::open(&settings).await.unwrap();
    let error = commit::commit(&lakehouse, &stale, commit::Changes::default()).await.unwrap_err();
    assert!(matches!(error, CommitError::Conflict(_)), "{error}");
    let (table, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(table.metadata().snapshots().count(), 2);
    assert_eq!(rows(&batches).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_writers_snapshot_between_commits_is_kept_and_the_positions_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let factory = factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    deliver(&mut sink, &[change(Op::Create, 0, 1, "a", &columns(false))]).await;

    // Another engine commits (a snapshot without this sink's positions) behind the sink's back.
    let settings = CatalogSettings::from_config(&config(dir.path(), WriteMode::Append)).unwrap();
    let lakehouse = Lakehouse::open(&settings).await.unwrap();
    let (table, _) = read_table(dir.path(), "public_orders").await;
    let foreign = commit::Changes {
        properties: HashMap::from([("engine".into(), "other".into())]),
        ..Default::default()
    };
    let foreign = commit::commit(&lakehouse, &table, foreign).await.unwrap();
    let foreign_id = foreign.metadata().current_snapshot_id();
    // The positions are those of the sink's last snapshot before it.
    let partition: PartitionKey = (Arc::from("shop.public.orders"), 0);
    let stored = factory.stored_positions(std::slice::from_ref(&partition)).await.unwrap();
    assert_eq!(stored, HashMap::from([(partition.clone(), 1)]));

    // The sink's next commit finds the table moved, reads it again and commits on top.
    deliver(&mut sink, &[change(Op::Create, 1, 2, "b", &columns(false))]).await;
    let (table, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(rows(&batches).len(), 2);
    let current = table.metadata().current_snapshot().unwrap();
    assert_eq!(current.parent_snapshot_id(), foreign_id);
    let stored = factory.stored_positions(std::slice::from_ref(&partition)).await.unwrap();
    assert_eq!(stored, HashMap::from([(partition, 2)]));
}

fn parquet_files(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            count += parquet_files(&path);
        } else if path.extension().is_some_and(|extension| extension == "parquet") {
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_keeps_the_rows_in_fewer_files_and_expiry_deletes_what_only_old_snapshots_held() {
    let dir = tempfile::tempdir().unwrap();
    let columns = columns(false);
    let factory = factory(dir.path(), WriteMode::Upsert);
    let mut sink = factory.build();
    for round in 0..4 {
        let offset = round * 3;
        deliver(
            &mut sink,
            &[
                change(Op::Create, offset, round, &format!("new {round}"), &columns),
                change(Op::Update, offset + 1, 100, &format!("shared {round}"), &columns),
                change(Op::Delete, offset + 2, round - 1, "", &columns),
            ],
        )
        .await;
    }
    let (table, before) = read_table(dir.path(), "public_orders").await;
    let expected = rows(&before);
    assert_eq!(expected.len(), 2, "{expected:?}");
    let settings = CatalogSettings::from_config(&config(dir.path(), WriteMode::Upsert)).unwrap();
    let lakehouse = Lakehouse::open(&settings).await.unwrap();
    let maintenance = MaintenanceConfig {
        compaction_file_threshold: 2,
        ..config(dir.path(), WriteMode::Upsert).maintenance
    };

    let (compacted, replaced, written) =
        maintenance::compact(&lakehouse, &table, &maintenance).await.unwrap().unwrap();
    assert_eq!((replaced, written), (8, 1), "4 data and 4 delete files became one");
    let (read, after) = read_table(dir.path(), "public_orders").await;
    assert_eq!(rows(&after), expected);
    assert_eq!(
        read.metadata().current_snapshot().unwrap().summary().operation,
        iceberg::spec::Operation::Replace
    );
    // The positions stay: a restart still skips what the table holds.
    let partition: PartitionKey = (Arc::from("shop.public.orders"), 0);
    let stored = factory.stored_positions(std::slice::from_ref(&partition)).await.unwrap();
    assert_eq!(stored, HashMap::from([(partition, 12)]));
    // Nothing to compact a second time.
    assert!(maintenance::compact(&lakehouse, &compacted, &maintenance).await.unwrap().is_none());

    let (expired, snapshots, deleted) =
        maintenance::expire(&lakehouse, &compacted, commit::now_ms() + 1).await.unwrap().unwrap();
    assert_eq!((snapshots, expired.metadata().snapshots().count()), (4, 1));
    assert!(deleted >= 8, "{deleted} files deleted");
    assert_eq!(parquet_files(&dir.path().join("warehouse")), 1);
    let (_, last) = read_table(dir.path(), "public_orders").await;
    assert_eq!(rows(&last), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lakehouse_lists_snapshots_reads_the_past_and_rolls_back_with_the_positions() {
    use super::lakehouse::{At, Lake};

    let dir = tempfile::tempdir().unwrap();
    let columns = columns(false);
    let factory = factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    for offset in 0..3 {
        deliver(&mut sink, &[change(Op::Create, offset, offset, &format!("row {offset}"), &columns)]).await;
        // Snapshots a millisecond apart at least, for the reads by time.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lake = Lake::open("orders-pipeline", "lake", &config(dir.path(), WriteMode::Append)).await.unwrap();
    assert_eq!(lake.tables().await.unwrap(), ["public_orders"]);
    let snapshots = lake.snapshots("public_orders").await.unwrap();
    assert_eq!(snapshots.len(), 3);
    assert!(snapshots[2].current && !snapshots[0].current);
    assert_eq!(snapshots[0].positions.as_deref(), Some(r#"{"shop.public.orders/0":[1,0]}"#));
    assert_eq!((snapshots[1].added_records, snapshots[1].total_records), (1, 2));

    let (header, now) = lake.query("public_orders", At::Current, 10).await.unwrap();
    assert_eq!(&header[..2], ["id", "name"]);
    assert_eq!(now.len(), 3);
    let (_, first) = lake.query("public_orders", At::Snapshot(snapshots[0].snapshot_id), 10).await.unwrap();
    assert_eq!(first.iter().map(|row| row[1].as_str()).collect::<Vec<_>>(), ["row 0"]);
    let (_, then) = lake.query("public_orders", At::Time(snapshots[1].timestamp_ms), 10).await.unwrap();
    assert_eq!(then.len(), 2);
    let (_, limited) = lake.query("public_orders", At::Current, 2).await.unwrap();
    assert_eq!(limited.len(), 2);

    let back = lake.rollback("public_orders", At::Snapshot(snapshots[0].snapshot_id)).await.unwrap();
    assert!(back.current);
    let (_, rolled) = lake.query("public_orders", At::Current, 10).await.unwrap();
    assert_eq!(rolled.len(), 1);
    // The pipeline starts the partition again where that snapshot stood.
    let partition: PartitionKey = (Arc::from("shop.public.orders"), 0);
    let stored = factory.stored_positions(std::slice::from_ref(&partition)).await.unwrap();
    assert_eq!(stored, HashMap::from([(partition, 1)]));
    let error = lake.rollback("public_orders", At::Snapshot(snapshots[0].snapshot_id)).await.unwrap_err();
    assert!(error.contains("already the current"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioned_tables_put_rows_and_deletes_in_their_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let columns = columns(false);
    let mut config = config(dir.path(), WriteMode::Upsert);
    config.partition_by = vec!["bucket(4, id)".into()];
    let settings = IcebergSettings::from_config("orders-pipeline", &config).unwrap();
    let factory = IcebergFactory::new("lake", &settings);
    let mut sink = factory.build();
    deliver(&mut sink, &(0..8).map(|id| change(Op::Create, id, id, "a", &columns)).collect::<Vec<_>>()).await;
    deliver(&mut sink, &[change(Op::Update, 8, 3, "b", &columns), change(Op::Delete, 9, 5, "", &columns)])
        .await;
    let (table, batches) = read_table(dir.path(), "public_orders").await;
    let spec = table.metadata().default_partition_spec();
    assert_eq!(spec.fields().len(), 1);
    let read = rows(&batches);
    assert_eq!(read.len(), 7);
    assert!(read.contains(&(3, "b".into(), "u".into())) && !read.iter().any(|row| row.0 == 5), "{read:?}");
    // Several partitions, each with its own files.
    let files = parquet_files(&dir.path().join("warehouse"));
    assert!(files > 3, "{files} files");

    // A partition column outside the key cannot work with upsert deletes.
    let dir = tempfile::tempdir().unwrap();
    let mut config = self::config(dir.path(), WriteMode::Upsert);
    config.partition_by = vec!["name".into()];
    let settings = IcebergSettings::from_config("orders-pipeline", &config).unwrap();
    let mut sink = IcebergFactory::new("lake", &settings).build();
    let error = sink.write(&[change(Op::Create, 0, 1, "a", &columns)]).await.unwrap_err();
    assert_eq!(error.class, ErrorClass::Fatal);
    assert!(error.source.to_string().contains("`name` is not a key column"), "{error}");
    config.partition_by = vec!["week(x)".into()];
    assert!(IcebergSettings::from_config("orders-pipeline", &config).unwrap_err().contains("week(x)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_with_maintenance_compacts_and_expires_after_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let columns = columns(false);
    let mut config = config(dir.path(), WriteMode::Upsert);
    config.maintenance = MaintenanceConfig {
        enabled: true,
        compaction_interval: Duration::from_millis(1),
        expire_snapshots_interval: Duration::from_millis(1),
        expire_snapshots_older_than: Duration::from_millis(1),
        compaction_file_threshold: 2,
        ..config.maintenance
    };
    let settings = IcebergSettings::from_config("orders-pipeline", &config).unwrap();
    let mut sink = IcebergFactory::new("lake", &settings).build();
    for offset in 0..3 {
        deliver(&mut sink, &[change(Op::Create, offset, offset % 2, &format!("v{offset}"), &columns)]).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (table, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(rows(&batches), [(0, "v2".into(), "c".into()), (1, "v1".into(), "c".into())]);
    let current = table.metadata().current_snapshot().unwrap();
    assert_eq!(current.summary().operation, iceberg::spec::Operation::Replace);
    assert_eq!(table.metadata().snapshots().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_no_snapshot_references_are_removed_once_old() {
    let dir = tempfile::tempdir().unwrap();
    let factory = factory(dir.path(), WriteMode::Append);
    let mut sink = factory.build();
    deliver(&mut sink, &[change(Op::Create, 0, 1, "a", &columns(false))]).await;
    let (table, _) = read_table(dir.path(), "public_orders").await;
    let data = dir.path().join("warehouse/lake/public_orders/data");
    // What a crash between writing and committing leaves, long ago and just now.
    let old = data.join("data-crashed-00000.parquet");
    let recent = data.join("data-in-flight-00000.parquet");
    for file in [&old, &recent] {
        std::fs::write(file, b"PAR1").unwrap();
    }
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_days_ago).unwrap();
    // The table's own files are as old: referenced, they stay.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(two_days_ago).unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&recent)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();

    let removed = orphans::remove(&table, &HashMap::new(), Duration::from_secs(24 * 3600)).await.unwrap();
    assert_eq!(removed, 1);
    assert!(!old.exists() && recent.exists());
    let (_, batches) = read_table(dir.path(), "public_orders").await;
    assert_eq!(rows(&batches).len(), 1);
}

#[test]
fn rest_catalogs_keep_their_warehouse_name_and_hide_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), WriteMode::Append);
    config.catalog_uri = "https://catalog.example/api/".into();
    config.catalog_token = Some(Secret::new("s3cret-token"));
    config.catalog_properties = [("prefix".to_owned(), "dev".to_owned())].into();
    config.warehouse = "analytics".into();
    let settings = CatalogSettings::from_config(&config).unwrap();
    assert_eq!(settings.warehouse, "analytics");
    let catalog::CatalogKind::Rest { uri, properties, token, .. } = &settings.kind else {
        panic!("not REST")
    };
    assert_eq!(uri, "https://catalog.example/api");
    assert_eq!(properties.get("prefix").map(String::as_str), Some("dev"));
    assert_eq!(token.as_ref().map(Secret::expose), Some("s3cret-token"));
    assert!(!format!("{settings:?}").contains("s3cret"), "{settings:?}");
}
