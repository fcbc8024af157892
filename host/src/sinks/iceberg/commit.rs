//! The commit layer: a snapshot that adds data files and equality-delete files together (a row
//! delta), or replaces everything the table holds (a truncate), and schema changes, committed by
//! an atomic swap of the table's metadata location in the SQL catalog, or by a commit request
//! with requirements to a REST catalog ([`super::rest`]).
//!
//! iceberg 0.10 commits appends only and keeps its commit types private, so the snapshot is
//! built here from the crate's public spec writers: manifests for the new files, a manifest
//! list that carries the parent's manifests forward, new table metadata, and then
//! `UPDATE … WHERE metadata_location = <the one this commit read>`. A writer that committed in
//! between makes the swap change no row (a REST catalog answers 409): that is a
//! [`CommitError::Conflict`], never an overwrite.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use iceberg::spec::{
    DataFile, MAIN_BRANCH, ManifestFile, ManifestListWriter, ManifestWriterBuilder, Operation, Schema,
    Snapshot, SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary, TableMetadata,
    TableMetadataBuildResult, TableMetadataBuilder,
};
use iceberg::table::Table;
use iceberg::{MetadataLocation, Runtime};

use sqlx::AnyPool;

use super::catalog::{Commits, Lakehouse};

/// What one snapshot does.
#[derive(Default)]
pub(super) struct Changes {
    /// Data files to add.
    pub data_files: Vec<DataFile>,
    /// Equality-delete files to add: they remove the rows of earlier snapshots with equal keys.
    pub delete_files: Vec<DataFile>,
    /// Drop every file the table holds first.
    pub replace_all: bool,
    /// The new files hold the same rows as those dropped (a compaction).
    pub rewrite: bool,
    /// Summary properties of the snapshot (the sink's positions).
    pub properties: HashMap<String, String>,
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub(super) enum CommitError {
    /// Another writer committed since the table was read: read it again and retry.
    #[error("another writer committed to {0} first")]
    Conflict(String),
    /// Files, metadata or the catalog failed.
    #[error("{0}")]
    Failed(String),
}

fn failed(context: &str) -> impl FnOnce(iceberg::Error) -> CommitError + '_ {
    move |error| CommitError::Failed(format!("{context}: {}", super::describe(&error)))
}

/// Commits one snapshot of `changes` on top of `table` as read; returns the table after it.
pub(super) async fn commit(
    lakehouse: &Lakehouse,
    table: &Table,
    changes: Changes,
) -> Result<Table, CommitError> {
    let metadata = table.metadata();
    let io = table.file_io();
    let snapshot_id = new_snapshot_id(metadata);
    let sequence_number = metadata.next_sequence_number();
    let parent = metadata.current_snapshot();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().clone();
    let commit_id = uuid::Uuid::now_v7();
    let metadata_dir = format!("{}/metadata", metadata.location());

    let mut summary = SnapshotSummaryCollector::default();
    let mut manifests: Vec<ManifestFile> = Vec::new();
    for (number, files, deletes) in [(0, &changes.data_files, false), (1, &changes.delete_files, true)] {
        if files.is_empty() {
            continue;
        }
        let output = io
            .new_output(format!("{metadata_dir}/{commit_id}-m{number}.avro"))
            .map_err(failed("cannot create a manifest"))?;
        let builder = ManifestWriterBuilder::new(output, Some(snapshot_id), schema.clone(), (*spec).clone());
        let mut writer = if deletes { builder.build_v2_deletes() } else { builder.build_v2_data() };
        for file in files {
            summary.add_file(file, schema.clone(), spec.clone());
            // A negative sequence number: the entry inherits the snapshot's.
            writer.add_file(file.clone(), -1).map_err(failed("cannot write a manifest"))?;
        }
        manifests.push(writer.write_manifest_file().await.map_err(failed("cannot write a manifest"))?);
    }
    if let Some(parent) = parent
        && !changes.replace_all
    {
        let list = table
            .manifest_list_reader(parent)
            .load()
            .await
            .map_err(failed("cannot read the manifest list"))?;
        manifests.extend(list.entries().iter().cloned());
    }

    let list_path = format!("{metadata_dir}/snap-{snapshot_id}-1-{commit_id}.avro");
    let output = io.new_output(&list_path).map_err(failed("cannot create the manifest list"))?;
    let mut list = ManifestListWriter::v2(
        output.writer().await.map_err(failed("cannot create the manifest list"))?,
        snapshot_id,
        parent.map(|parent| parent.snapshot_id()),
        sequence_number,
    );
    list.add_manifests(manifests.into_iter()).map_err(failed("cannot write the manifest list"))?;
    list.close().await.map_err(failed("cannot write the manifest list"))?;

    let previous = if changes.replace_all { None } else { parent.map(|parent| parent.summary()) };
    let mut properties = totals(summary.build(), previous);
    properties.extend(changes.properties);
    let operation = if changes.rewrite {
        Operation::Replace
    } else if changes.replace_all || !changes.delete_files.is_empty() {
        Operation::Overwrite
    } else {
        Operation::Append
    };
    let snapshot = Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(parent.map(|parent| parent.snapshot_id()))
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(now_ms())
        .with_manifest_list(list_path)
        .with_schema_id(metadata.current_schema_id())
        .with_summary(Summary { operation, additional_properties: properties })
        .build();
    update(lakehouse, table, |builder| builder.set_branch_snapshot(snapshot, MAIN_BRANCH)).await
}

/// Makes `schema` the table's current schema.
pub(super) async fn set_schema(
    lakehouse: &Lakehouse,
    table: &Table,
    schema: Schema,
) -> Result<Table, CommitError> {
    update(lakehouse, table, |builder| builder.add_current_schema(schema)).await
}

/// Removes snapshots from the table's metadata (their files stay: see `maintenance`).
pub(super) async fn remove_snapshots(
    lakehouse: &Lakehouse,
    table: &Table,
    expired: &[i64],
) -> Result<Table, CommitError> {
    update(lakehouse, table, |builder| Ok(builder.remove_snapshots(expired))).await
}

/// Makes an earlier snapshot the table's current one (a rollback).
pub(super) async fn set_current_snapshot(
    lakehouse: &Lakehouse,
    table: &Table,
    snapshot_id: i64,
) -> Result<Table, CommitError> {
    let reference = SnapshotReference::new(snapshot_id, SnapshotRetention::branch(None, None, None));
    update(lakehouse, table, |builder| builder.set_ref(MAIN_BRANCH, reference)).await
}

/// Applies `change` to the table's metadata as read and commits the result.
async fn update(
    lakehouse: &Lakehouse,
    table: &Table,
    change: impl FnOnce(TableMetadataBuilder) -> iceberg::Result<TableMetadataBuilder>,
) -> Result<Table, CommitError> {
    let location = table.metadata_location_result().map_err(failed("the table has no metadata location"))?;
    let builder = table.metadata().clone().into_builder(Some(location.to_owned()));
    let updated = change(builder)
        .and_then(TableMetadataBuilder::build)
        .map_err(failed("cannot build the table metadata"))?;
    swap(lakehouse, table, updated).await
}

/// Makes `updated` the table's metadata if the catalog still holds the table as `table` was
/// read: a compare-and-swap of the metadata location in an SQL catalog, a commit request with
/// requirements to a REST catalog.
async fn swap(
    lakehouse: &Lakehouse,
    table: &Table,
    updated: TableMetadataBuildResult,
) -> Result<Table, CommitError> {
    match &lakehouse.commits {
        Commits::Sql(pool) => swap_sql(lakehouse, pool, table, updated.metadata).await,
        Commits::Rest(rest) => rest.commit(table, updated.changes).await,
    }
}

/// Writes `updated` as the table's next metadata file and swaps the SQL catalog's pointer to
/// it, if the pointer is still the one `table` was read at.
async fn swap_sql(
    lakehouse: &Lakehouse,
    pool: &AnyPool,
    table: &Table,
    updated: TableMetadata,
) -> Result<Table, CommitError> {
    let io = table.file_io();
    let current = table.metadata_location_result().map_err(failed("the table has no metadata location"))?;
    let next = MetadataLocation::from_str(current)
        .map_err(failed("cannot name the next metadata file"))?
        .with_next_version()
        .with_new_metadata(&updated);
    let next = next.to_string();
    let location = MetadataLocation::from_str(&next).map_err(failed("cannot name the next metadata file"))?;
    updated.write_to(io, &location).await.map_err(failed("cannot write the table metadata"))?;

    let ident = table.identifier();
    let swapped = sqlx::query(
        "UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2 \
         WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 \
           AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = $2",
    )
    .bind(&next)
    .bind(current)
    .bind(&lakehouse.settings.name)
    .bind(ident.namespace().join("."))
    .bind(ident.name())
    .execute(pool)
    .await
    .map_err(|error| {
        CommitError::Failed(format!("cannot swap the metadata of {ident} in the catalog: {error}"))
    })?;
    if swapped.rows_affected() == 0 {
        // Nothing points at the file written above.
        let _ = io.delete(&next).await;
        return Err(CommitError::Conflict(ident.to_string()));
    }
    let runtime = Runtime::try_current().map_err(failed("no runtime"))?;
    Table::builder()
        .file_io(io.clone())
        .metadata(Arc::new(updated))
        .metadata_location(next)
        .identifier(ident.clone())
        .runtime(runtime)
        .build()
        .map_err(failed("cannot open the committed table"))
}

/// A snapshot id no snapshot of the table has: positive and random, as Iceberg's own writers
/// make them.
fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((high ^ low) & (i64::MAX as u64)) as i64;
        if id != 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// The snapshot's `total-*` figures: the previous snapshot's plus what this one added (from
/// nothing after a truncate).
fn totals(mut added: HashMap<String, String>, previous: Option<&Summary>) -> HashMap<String, String> {
    const TOTALS: [(&str, &str); 6] = [
        ("total-records", "added-records"),
        ("total-data-files", "added-data-files"),
        ("total-delete-files", "added-delete-files"),
        ("total-equality-deletes", "added-equality-deletes"),
        ("total-position-deletes", "added-position-deletes"),
        ("total-files-size", "added-files-size"),
    ];
    let figure = |map: &HashMap<String, String>, key: &str| {
        map.get(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    for (total, add) in TOTALS {
        let before = previous.map_or(0, |summary| figure(&summary.additional_properties, total));
        let value = before + figure(&added, add);
        added.insert(total.to_owned(), value.to_string());
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_to_the_previous_snapshot_and_restart_after_a_truncate() {
        let added = HashMap::from([
            ("added-records".to_owned(), "5".to_owned()),
            ("added-data-files".to_owned(), "1".to_owned()),
        ]);
        let previous = Summary {
            operation: Operation::Append,
            additional_properties: HashMap::from([
                ("total-records".to_owned(), "10".to_owned()),
                ("total-data-files".to_owned(), "2".to_owned()),
            ]),
        };
        let after = totals(added.clone(), Some(&previous));
        assert_eq!(after["total-records"], "15");
        assert_eq!(after["total-data-files"], "3");
        assert_eq!(after["total-delete-files"], "0");
        assert_eq!(totals(added, None)["total-records"], "5");
    }
}
