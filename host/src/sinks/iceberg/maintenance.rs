//! Table maintenance in the sink's process, run by a lane right after it committed to a table
//! and under the table's lock, so serialised with every writer of the sink:
//!
//! - **compaction** rewrites the table's live rows (equality deletes applied) into new files in
//!   one `replace` snapshot that carries the positions forward, once the table has
//!   `compaction_file_threshold` data and delete files;
//! - **snapshot expiry** removes the snapshots older than `expire_snapshots_older_than` (never
//!   the current one), then deletes the files that only they referenced: their manifest lists,
//!   manifests, data and delete files;
//! - with it, **orphan removal** ([`super::orphans`]) deletes the files no snapshot and no
//!   metadata file references once they are `orphan_files_older_than` old.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use iceberg::spec::{DataContentType, ManifestFile};
use iceberg::table::Table;

use super::catalog::Lakehouse;
use super::commit::{self, CommitError};
use super::orphans;
use crate::config::MaintenanceConfig;

/// When each task is next due, per table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    next_compaction: Instant,
    next_expiry: Instant,
}

impl Schedule {
    /// Both tasks due one interval from now.
    pub fn new(config: &MaintenanceConfig) -> Self {
        let now = Instant::now();
        Schedule {
            next_compaction: now + config.compaction_interval,
            next_expiry: now + config.expire_snapshots_interval,
        }
    }
}

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Report {
    /// Files replaced by a compaction (data and delete files), and the files written for them.
    pub compacted: Option<(usize, usize)>,
    /// Snapshots expired, and files deleted with them.
    pub expired: Option<(usize, usize)>,
    /// Orphan files deleted.
    pub orphans: usize,
}

/// Runs the tasks that are due on `table`; returns the table after them.
pub(super) async fn run_due(
    lakehouse: &Lakehouse,
    table: Table,
    schedule: &mut Schedule,
    config: &MaintenanceConfig,
) -> Result<(Table, Report), CommitError> {
    let mut table = table;
    let mut report = Report::default();
    let now = Instant::now();
    if now >= schedule.next_compaction {
        schedule.next_compaction = now + config.compaction_interval;
        if let Some((compacted, replaced, written)) = compact(lakehouse, &table, config).await? {
            table = compacted;
            report.compacted = Some((replaced, written));
        }
    }
    if now >= schedule.next_expiry {
        schedule.next_expiry = now + config.expire_snapshots_interval;
        let cutoff = commit::now_ms()
            - i64::try_from(config.expire_snapshots_older_than.as_millis()).unwrap_or(i64::MAX);
        if let Some((expired, snapshots, files)) = expire(lakehouse, &table, cutoff).await? {
            table = expired;
            report.expired = Some((snapshots, files));
        }
        let storage = &lakehouse.settings.storage;
        report.orphans = orphans::remove(&table, storage, config.orphan_files_older_than).await?;
    }
    Ok((table, report))
}

fn failed(context: &str) -> impl FnOnce(iceberg::Error) -> CommitError + '_ {
    move |error| CommitError::Failed(format!("{context}: {}", super::describe(&error)))
}

/// The current snapshot's manifests.
async fn live_manifests(table: &Table) -> Result<Vec<ManifestFile>, CommitError> {
    let Some(current) = table.metadata().current_snapshot() else { return Ok(Vec::new()) };
    let list =
        table.manifest_list_reader(current).load().await.map_err(failed("cannot read the manifest list"))?;
    Ok(list.entries().to_vec())
}

/// Rewrites the live rows into new files when the table has `compaction_file_threshold` files
/// or more; returns the table, the files replaced and the files written.
pub(super) async fn compact(
    lakehouse: &Lakehouse,
    table: &Table,
    config: &MaintenanceConfig,
) -> Result<Option<(Table, usize, usize)>, CommitError> {
    let io = table.file_io();
    let mut live = 0;
    let mut deletes = 0;
    for manifest in live_manifests(table).await? {
        let manifest = manifest.load_manifest(io).await.map_err(failed("cannot read a manifest"))?;
        for entry in manifest.entries().iter().filter(|entry| entry.is_alive()) {
            live += 1;
            if entry.content_type() != DataContentType::Data {
                deletes += 1;
            }
        }
    }
    if live < config.compaction_file_threshold.max(2) && deletes == 0 || live <= 1 {
        return Ok(None);
    }
    let arrow = super::arrow_schema(table).map_err(CommitError::Failed)?;
    let scan = table.scan().select_all().build().map_err(failed("cannot scan the table"))?;
    let mut batches = scan.to_arrow().await.map_err(failed("cannot scan the table"))?;
    // One writer per partition, open until the scan ends: one file each (or more, past the
    // target size).
    let mut writers: HashMap<String, super::DataWriter> = HashMap::new();
    let chunk = config.compaction_max_rows_per_batch.max(1);
    while let Some(batch) = batches.try_next().await.map_err(failed("cannot read the table"))? {
        // The scan's batches in the table's own Arrow schema (with its field ids).
        let batch = arrow_array::RecordBatch::try_new(arrow.clone(), batch.columns().to_vec())
            .map_err(|error| CommitError::Failed(format!("cannot rewrite a batch: {error}")))?;
        for (partition, part) in
            super::partition::split(table, batch).map_err(failed("cannot split by partition"))?
        {
            let path = partition.as_ref().map(|key| key.to_path()).unwrap_or_default();
            let writer = match writers.entry(path) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => entry.insert(
                    super::DataWriter::open(table, partition).await.map_err(failed("cannot write files"))?,
                ),
            };
            let mut offset = 0;
            while offset < part.num_rows() {
                let length = chunk.min(part.num_rows() - offset);
                writer.write(part.slice(offset, length)).await.map_err(failed("cannot write files"))?;
                offset += length;
            }
        }
    }
    let mut files = Vec::new();
    for writer in writers.into_values() {
        files.extend(writer.close().await.map_err(failed("cannot write files"))?);
    }
    let written = files.len();
    let changes = commit::Changes {
        data_files: files,
        replace_all: true,
        rewrite: true,
        properties: carried_properties(table),
        ..commit::Changes::default()
    };
    let compacted = commit::commit(lakehouse, table, changes).await?;
    Ok(Some((compacted, live, written)))
}

/// The sink's properties of the current snapshot (every pipeline's and sink's positions), for a
/// snapshot that changes no row.
fn carried_properties(table: &Table) -> HashMap<String, String> {
    table
        .metadata()
        .current_snapshot()
        .map(|snapshot| {
            snapshot
                .summary()
                .additional_properties
                .iter()
                .filter(|(key, _)| key.starts_with("cdc."))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the snapshots taken before `cutoff_ms` (never the current one) and deletes the files
/// no remaining snapshot references; returns the table, the snapshots and the files removed.
pub(super) async fn expire(
    lakehouse: &Lakehouse,
    table: &Table,
    cutoff_ms: i64,
) -> Result<Option<(Table, usize, usize)>, CommitError> {
    let metadata = table.metadata();
    let current = metadata.current_snapshot_id();
    let (expired, kept): (Vec<_>, Vec<_>) = metadata
        .snapshots()
        .partition(|snapshot| Some(snapshot.snapshot_id()) != current && snapshot.timestamp_ms() < cutoff_ms);
    if expired.is_empty() {
        return Ok(None);
    }
    let mut files = FileSet::new(table);
    let mut keep = HashSet::new();
    for snapshot in &kept {
        files.collect(snapshot, &mut keep).await?;
    }
    let mut candidates = HashSet::new();
    for snapshot in &expired {
        files.collect(snapshot, &mut candidates).await?;
    }
    let ids: Vec<i64> = expired.iter().map(|snapshot| snapshot.snapshot_id()).collect();
    let updated = commit::remove_snapshots(lakehouse, table, &ids).await?;
    // Only once no snapshot of the committed metadata points at them.
    let io = table.file_io();
    let mut deleted = 0;
    for path in candidates.difference(&keep) {
        match io.delete(path).await {
            Ok(()) => deleted += 1,
            Err(error) => {
                tracing::warn!(file = path.as_str(), error = %super::describe(&error), "iceberg.delete_failed")
            }
        }
    }
    Ok(Some((updated, ids.len(), deleted)))
}

/// The files snapshots reference, reading each manifest once.
pub(super) struct FileSet<'a> {
    table: &'a Table,
    manifests: HashMap<String, Arc<Vec<String>>>,
}

impl<'a> FileSet<'a> {
    pub(super) fn new(table: &'a Table) -> Self {
        FileSet { table, manifests: HashMap::new() }
    }

    /// Adds a snapshot's manifest list, manifests and the files they list to `into`.
    pub(super) async fn collect(
        &mut self,
        snapshot: &iceberg::spec::SnapshotRef,
        into: &mut HashSet<String>,
    ) -> Result<(), CommitError> {
        into.insert(snapshot.manifest_list().to_owned());
        let list = self
            .table
            .manifest_list_reader(snapshot)
            .load()
            .await
            .map_err(failed("cannot read a manifest list"))?;
        for manifest in list.entries() {
            into.insert(manifest.manifest_path.clone());
            let listed = match self.manifests.get(&manifest.manifest_path) {
                Some(listed) => listed.clone(),
                None => {
                    let loaded = manifest
                        .load_manifest(self.table.file_io())
                        .await
                        .map_err(failed("cannot read a manifest"))?;
                    let listed: Arc<Vec<String>> =
                        Arc::new(loaded.entries().iter().map(|entry| entry.file_path().to_owned()).collect());
                    self.manifests.insert(manifest.manifest_path.clone(), listed.clone());
                    listed
                }
            };
            into.extend(listed.iter().cloned());
        }
        Ok(())
    }
}
