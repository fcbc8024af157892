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
