//! What `cdc lakehouse` does with the tables an Iceberg sink wrote: list their snapshots, read a
//! table as of a snapshot or a time, and roll a table back to an earlier snapshot. The
//! positions a snapshot stores roll back with it, so a pipeline that starts again writes what
//! came after that snapshot again (from Kafka: the source starts where the table stands when
//! that is below the group's committed offset).

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableIdent};

use super::catalog::{CatalogSettings, Lakehouse};
use super::{commit, describe, positions};
use crate::config::IcebergSinkConfig;

/// Which state of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The current snapshot.
    Current,
    /// A snapshot by id.
    Snapshot(i64),
    /// The snapshot that was current at this time (milliseconds since the epoch).
    Time(i64),
}

/// One snapshot of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its id.
    pub snapshot_id: i64,
    /// The snapshot it was built on.
    pub parent_id: Option<i64>,
    /// When it was committed, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// `append`, `overwrite`, `replace` or `delete`.
    pub operation: String,
    /// Rows its data files added.
    pub added_records: u64,
    /// Rows in the table's data files after it.
    pub total_records: u64,
    /// Whether it is the table's current snapshot.
    pub current: bool,
    /// The positions the sink stored with it (`topic/partition` → next position), as JSON.
    pub positions: Option<String>,
}

/// The tables of one Iceberg sink.
pub struct Lake {
    lakehouse: Lakehouse,
    namespace: NamespaceIdent,
    property: String,
}

impl Lake {
    /// Opens the catalog of sink `sink_id` of pipeline `pipeline_id`.
    pub async fn open(pipeline_id: &str, sink_id: &str, config: &IcebergSinkConfig) -> Result<Self, String> {
        let settings = CatalogSettings::from_config(config)?;
        let lakehouse = Lakehouse::open(&settings).await?;
        let namespace = NamespaceIdent::from_strs(config.table_namespace.split('.'))
            .map_err(|error| format!("namespace `{}`: {}", config.table_namespace, describe(&error)))?;
        Ok(Lake { lakehouse, namespace, property: positions::property(pipeline_id, sink_id) })
    }

    /// The names of the tables in the sink's namespace.
    pub async fn tables(&self) -> Result<Vec<String>, String> {
        let tables = self
            .lakehouse
            .tables(&self.namespace)
            .await
            .map_err(|error| format!("cannot list the tables: {}", describe(&error)))?;
        let mut names: Vec<String> = tables.into_iter().map(|ident| ident.name().to_owned()).collect();
        names.sort();
        Ok(names)
    }

    async fn load(&self, table: &str) -> Result<Table, String> {
        let ident = TableIdent::new(self.namespace.clone(), table.to_owned());
        self.lakehouse
            .catalog
            .load_table(&ident)
            .await
            .map_err(|error| format!("cannot read {ident}: {}", describe(&error)))
    }

    /// The table's snapshots, oldest first.
    pub async fn snapshots(&self, table: &str) -> Result<Vec<SnapshotInfo>, String> {
        let table = self.load(table).await?;
        let metadata = table.metadata();
        let current = metadata.current_snapshot_id();
        let mut snapshots: Vec<SnapshotInfo> = metadata
            .snapshots()
            .map(|snapshot| {
                let summary = snapshot.summary();
                let figure = |key: &str| {
                    summary.additional_properties.get(key).and_then(|value| value.parse().ok()).unwrap_or(0)
                };
                SnapshotInfo {
                    snapshot_id: snapshot.snapshot_id(),
                    parent_id: snapshot.parent_snapshot_id(),
                    timestamp_ms: snapshot.timestamp_ms(),
                    operation: summary.operation.as_str().to_owned(),
                    added_records: figure("added-records"),
                    total_records: figure("total-records"),
                    current: Some(snapshot.snapshot_id()) == current,
                    positions: summary.additional_properties.get(&self.property).cloned(),
                }
            })
            .collect();
        snapshots.sort_by_key(|snapshot| (snapshot.timestamp_ms, snapshot.snapshot_id));
        Ok(snapshots)
    }

    /// The snapshot `at` names; `None` for a table without snapshots (or none at that time).
    fn snapshot_at(table: &Table, at: At) -> Result<Option<i64>, String> {
        let metadata = table.metadata();
        match at {
            At::Current => Ok(metadata.current_snapshot_id()),
            At::Snapshot(id) => match metadata.snapshot_by_id(id) {
                Some(_) => Ok(Some(id)),
                None => Err(format!("{} has no snapshot {id}", table.identifier())),
            },
            // The snapshot log says which snapshot was current when.
            At::Time(ms) => Ok(metadata
                .history()
                .iter()
                .rev()
                .find(|log| log.timestamp_ms <= ms)
                .map(|log| log.snapshot_id)),
        }
    }

    /// Up to `limit` rows of the table as it was `at`: the column names, then each row's values
    /// as text (`NULL` for null).
    pub async fn query(
        &self,
        table: &str,
        at: At,
        limit: usize,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
        let table = self.load(table).await?;
        let ident = table.identifier().clone();
        let columns: Vec<String> = table
            .metadata()
            .current_schema()
            .as_struct()
            .fields()
            .iter()
            .map(|field| field.name.clone())
            .collect();
        let Some(snapshot) = Self::snapshot_at(&table, at)? else { return Ok((columns, Vec::new())) };
        let scan = table.scan().snapshot_id(snapshot).select_all().build();
        let scan = scan.map_err(|error| format!("cannot read {ident}: {}", describe(&error)))?;
        let mut batches =
            scan.to_arrow().await.map_err(|error| format!("cannot read {ident}: {}", describe(&error)))?;
        let mut rows = Vec::new();
        let mut header = None;
        while rows.len() < limit
            && let Some(batch) = batches
                .try_next()
                .await
                .map_err(|error| format!("cannot read {ident}: {}", describe(&error)))?
        {
            header.get_or_insert_with(|| {
                batch.schema().fields().iter().map(|field| field.name().clone()).collect()
            });
            rows.extend(text_rows(&batch, limit - rows.len())?);
        }
        Ok((header.unwrap_or(columns), rows))
    }

    /// Makes an earlier snapshot the table's current one; returns it.
    pub async fn rollback(&self, table: &str, at: At) -> Result<SnapshotInfo, String> {
        let loaded = self.load(table).await?;
        let ident = loaded.identifier().clone();
        let Some(target) = Self::snapshot_at(&loaded, at)? else {
            return Err(format!("{ident} has no snapshot at that time"));
        };
        if loaded.metadata().current_snapshot_id() == Some(target) {
            return Err(format!("snapshot {target} is already the current snapshot of {ident}"));
        }
        commit::set_current_snapshot(&self.lakehouse, &loaded, target)
            .await
            .map_err(|error| format!("cannot roll {ident} back: {error}"))?;
        let snapshots = self.snapshots(table).await?;
        snapshots
            .into_iter()
            .find(|snapshot| snapshot.snapshot_id == target)
            .ok_or_else(|| format!("snapshot {target} of {ident} vanished"))
    }
}

/// Up to `limit` rows of a batch as text.
fn text_rows(batch: &RecordBatch, limit: usize) -> Result<Vec<Vec<String>>, String> {
    let options = arrow_cast::display::FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|column| arrow_cast::display::ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("cannot format a value: {error}"))?;
    Ok((0..batch.num_rows().min(limit))
        .map(|row| formatters.iter().map(|formatter| formatter.value(row).to_string()).collect())
        .collect())
}
