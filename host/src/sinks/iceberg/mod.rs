//! The Iceberg sink: one Iceberg table per source table, created from the source schema and
//! evolved with it, written in append mode (every change a row) or upsert mode (equality
//! deletes and the new rows in one snapshot), exactly-once.
//!
//! A lane writes Parquet files as events arrive and commits them in `flush`: one snapshot per
//! table, whose summary also stores the next position of each stream the sink wrote to the
//! table (`positions`). A change below the stored position is already in the table and is
//! skipped, so a restart after a crash writes nothing twice. Lanes writing one table commit one
//! after the other; a commit that finds another writer's commit first is never applied over it
//! (`commit`).

mod catalog;
mod commit;
pub mod lakehouse;
mod maintenance;
mod orphans;
mod partition;
mod positions;
mod rest;
mod rows;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::base_writer::equality_delete_writer::{
    EqualityDeleteFileWriterBuilder, EqualityDeleteWriterConfig,
};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{NamespaceIdent, TableCreation, TableIdent};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tokio::sync::{Mutex, OnceCell};

pub use self::catalog::CatalogSettings;
use self::catalog::Lakehouse;
use self::commit::CommitError;
use self::positions::{Positions, Stream};
use self::rows::{Changes, DataRow, RowError};
use crate::config::{IcebergSinkConfig, MaintenanceConfig, WriteMode};
use crate::error::ErrorClass;
use crate::event::{ChangeEvent, Column, TableId};
use crate::sinks::positions::{Mark, after, stream_of};
use crate::sinks::{Batching, Sink, SinkError, SinkFactory};
use crate::source::acks::PartitionKey;

/// Everything the sink needs, validated.
#[derive(Debug, Clone)]
pub struct IcebergSettings {
    /// The pipeline's id: positions are stored per pipeline and sink.
    pub pipeline_id: String,
    /// Catalog and storage.
    pub catalog: CatalogSettings,
    /// The tables' namespace.
    pub namespace: String,
    /// The table name, with `{table}`, `{schema}` and `{database}` replaced by the source
    /// table's.
    pub table_name: String,
    /// Append or upsert.
    pub mode: WriteMode,
    /// Rows per commit.
    pub batch_size: usize,
    /// How long a commit waits for `batch_size` rows.
    pub flush_interval: Duration,
    /// Create absent tables from the source schema.
    pub auto_create: bool,
    /// Compaction and snapshot expiry, when enabled.
    pub maintenance: Option<MaintenanceConfig>,
    /// The partition spec of the tables the sink creates.
    partitions: Vec<partition::PartitionField>,
}

impl IcebergSettings {
    /// Settings from the sink's config block; what this build cannot do yet is an error.
    pub fn from_config(pipeline_id: &str, config: &IcebergSinkConfig) -> Result<Self, String> {
        Ok(IcebergSettings {
            pipeline_id: pipeline_id.to_owned(),
            catalog: CatalogSettings::from_config(config)?,
            namespace: config.table_namespace.clone(),
            table_name: config.table_name.clone(),
            mode: config.write_mode,
            batch_size: config.batch_size.max(1),
            flush_interval: config.flush_interval,
            auto_create: config.auto_create_table,
            maintenance: config.maintenance.enabled.then(|| config.maintenance.clone()),
            partitions: partition::parse_all(&config.partition_by)?,
        })
    }

    /// The Iceberg table a source table's changes go to.
    fn table_for(&self, source: &TableId) -> String {
        self.table_name
            .replace("{table}", &source.table)
            .replace("{schema}", source.schema.as_deref().unwrap_or_default())
            .replace("{database}", source.database.as_deref().unwrap_or_default())
    }
}

/// One target table as the sink's lanes share it.
struct TableState {
    /// The table as last read or committed; `None` until read (again).
    table: Option<Table>,
    /// The source table mapped to it.
    source: TableId,
    /// The column list last checked against the table's schema (events of one source schema
    /// share it).
    checked: Option<Arc<[Column]>>,
    /// When maintenance is next due, if enabled.
    schedule: Option<maintenance::Schedule>,
}

/// What the lanes of one sink share.
struct Shared {
    sink_id: String,
    settings: IcebergSettings,
    property: String,
    lakehouse: OnceCell<Arc<Lakehouse>>,
    tables: Mutex<HashMap<String, Arc<Mutex<TableState>>>>,
}

impl Shared {
    /// The catalog, opened on first use.
    async fn lakehouse(&self) -> Result<&Arc<Lakehouse>, String> {
        self.lakehouse
            .get_or_try_init(|| async { Lakehouse::open(&self.settings.catalog).await.map(Arc::new) })
            .await
    }

    fn namespace(&self) -> Result<NamespaceIdent, String> {
        NamespaceIdent::from_strs(self.settings.namespace.split('.'))
            .map_err(|error| format!("namespace `{}`: {}", self.settings.namespace, describe(&error)))
    }

    /// The shared state of the table `name`, which `source` maps to. Two source tables mapped
    /// to one Iceberg table would mix their rows: that is refused.
    async fn table_state(&self, name: &str, source: &TableId) -> Result<Arc<Mutex<TableState>>, String> {
        let mut tables = self.tables.lock().await;
        let state = tables
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(TableState {
                    table: None,
                    source: source.clone(),
                    checked: None,
                    schedule: self.settings.maintenance.as_ref().map(maintenance::Schedule::new),
                }))
            })
            .clone();
        drop(tables);
        let mapped = state.lock().await.source.clone();
        if &mapped != source {
            return Err(format!(
                "source tables {mapped} and {source} both map to the Iceberg table `{name}`: put `{{table}}` \
                 (or `{{schema}}`) in table_name"
            ));
        }
        Ok(state)
    }
}

/// Builds Iceberg sinks; the lanes share the catalog and the tables.
pub struct IcebergFactory {
    shared: Arc<Shared>,
}

impl IcebergFactory {
    /// A factory for the validated settings; connects on first use.
    pub fn new(sink_id: &str, settings: &IcebergSettings) -> Self {
        IcebergFactory {
            shared: Arc::new(Shared {
                sink_id: sink_id.to_owned(),
                property: positions::property(&settings.pipeline_id, sink_id),
                settings: settings.clone(),
                lakehouse: OnceCell::new(),
                tables: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl SinkFactory for IcebergFactory {
    fn sink_id(&self) -> &str {
        &self.shared.sink_id
    }

    fn build(&self) -> Box<dyn Sink> {
        Box::new(IcebergSink {
            shared: self.shared.clone(),
            pending: HashMap::new(),
            held: HashMap::new(),
            last_error: None,
        })
    }

    fn batching(&self) -> Batching {
        Batching { max_events: self.shared.settings.batch_size, linger: self.shared.settings.flush_interval }
    }

    fn stores_positions(&self) -> bool {
        true
    }

    /// The lowest next position over the tables of the namespace that hold the partition.
    fn stored_positions<'a>(
        &'a self,
        partitions: &'a [PartitionKey],
    ) -> BoxFuture<'a, Result<HashMap<PartitionKey, i64>, String>> {
        Box::pin(async move {
            let shared = &self.shared;
            let lakehouse = shared.lakehouse().await?;
            let namespace = shared.namespace()?;
            let tables = lakehouse.tables(&namespace).await.map_err(|error| {
                format!("cannot list the tables of `{namespace:?}`: {}", describe(&error))
            })?;
            let mut lowest: HashMap<PartitionKey, i64> = HashMap::new();
            for ident in tables {
                let table = lakehouse
                    .catalog
                    .load_table(&ident)
                    .await
                    .map_err(|error| format!("cannot read {ident}: {}", describe(&error)))?;
                for ((topic, partition), (next, _)) in held_positions(&table, &shared.property)?.iter() {
                    let Some(key) = partitions.iter().find(|(t, p)| **t == **topic && p == partition) else {
                        continue;
                    };
                    let entry = lowest.entry(key.clone()).or_insert(*next);
                    *entry = (*entry).min(*next);
                }
            }
            Ok(lowest)
        })
    }
}

/// The positions this sink last stored in the table: those of the newest snapshot of the
/// current line that carries them. Another writer's snapshots (an append, a compaction by
/// another engine) carry none, and must not make the sink forget what it holds.
fn held_positions(table: &Table, property: &str) -> Result<Positions, String> {
    let metadata = table.metadata();
    let mut snapshot = metadata.current_snapshot();
    while let Some(current) = snapshot {
        let properties = &current.summary().additional_properties;
        if properties.contains_key(property) {
            return Positions::read(properties, property);
        }
        snapshot = current.parent_snapshot_id().and_then(|parent| metadata.snapshot_by_id(parent));
    }
    Ok(Positions::default())
}

/// Files written for one table and not yet committed.
#[derive(Default)]
struct Pending {
    data_files: Vec<DataFile>,
    delete_files: Vec<DataFile>,
    truncate: bool,
    /// The next position per stream once these files are committed.
    written: HashMap<Stream, Mark>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.data_files.is_empty()
            && self.delete_files.is_empty()
            && !self.truncate
            && self.written.is_empty()
    }
}

/// The sink of one lane.
struct IcebergSink {
    shared: Arc<Shared>,
    /// Per target table, what awaits the next commit.
    pending: HashMap<String, Pending>,
    /// Per target table, the next position it holds per stream, as read or committed.
    held: HashMap<String, Positions>,
    last_error: Option<String>,
}

/// The record batches of one table's share of a write.
struct Batches {
    /// Rows to add.
    data: Option<RecordBatch>,
    /// Keys to delete (upsert), in the table's full layout.
    deletes: Option<RecordBatch>,
    /// Upsert: the table is emptied first.
    truncate: bool,
}

/// The events of one write that go to one table, with their indices in the write.
struct TableWrite {
    name: String,
    source: TableId,
    indices: Vec<usize>,
}

impl IcebergSink {
    fn fail(&mut self, accepted: usize, class: ErrorClass, message: String) -> SinkError {
        self.last_error = Some(message.clone());
        SinkError::from_event(&self.shared.sink_id, accepted, class, message)
    }

    async fn write_events(&mut self, events: &[ChangeEvent]) -> Result<(), SinkError> {
        let mut groups: Vec<TableWrite> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let name = self.shared.settings.table_for(&event.table);
            match groups.iter_mut().find(|group| group.name == name) {
                Some(group) => group.indices.push(index),
                None => groups.push(TableWrite { name, source: event.table.clone(), indices: vec![index] }),
            }
        }
        let mut tables = Vec::with_capacity(groups.len());
        for group in &groups {
            tables.push(self.prepare_table(group, events).await?);
        }
        // The rows of every table, up to the first event no table can take: everything before
        // it is written, nothing after.
        let mut limit = events.len();
        let mut refused: Option<RowError> = None;
        let planned = loop {
            let mut planned = Vec::with_capacity(groups.len());
            let mut first_error: Option<RowError> = None;
            for (group, table) in groups.iter().zip(&tables) {
                let fresh: Vec<usize> = group
                    .indices
                    .iter()
                    .copied()
                    .filter(|&index| index < limit && !self.holds(&group.name, &events[index]))
                    .collect();
                if fresh.is_empty() {
                    continue;
                }
                match self.batches(table, events, &fresh) {
                    Ok(batches) => planned.push((group, batches, fresh)),
                    Err(error) if first_error.as_ref().is_none_or(|first| error.index < first.index) => {
                        first_error = Some(error);
                    }
                    Err(_) => {}
                }
            }
            match first_error {
                None => break planned,
                Some(error) => {
                    limit = error.index;
                    refused = Some(error);
                }
            }
        };
        for (group, batches, fresh) in planned {
            self.write_table(group, events, &fresh, batches).await?;
        }
        match refused {
            None => Ok(()),
            Some(error) => {
                Err(SinkError::event(&self.shared.sink_id, error.index, ErrorClass::Record, error.message))
            }
        }
    }

    /// Whether the table already holds the event (a commit stored a position past it).
    fn holds(&self, table: &str, event: &ChangeEvent) -> bool {
        let ((topic, partition), mark) = stream_of(&event.position);
        self.held.get(table).and_then(|held| held.get(topic, partition)).is_some_and(|next| mark < next)
    }

    /// The table for a group of events, created or evolved to take their columns; reads the
    /// positions it holds the first time this lane meets it.
    async fn prepare_table(
        &mut self,
        group: &TableWrite,
        events: &[ChangeEvent],
    ) -> Result<Table, SinkError> {
        let state = self
            .shared
            .table_state(&group.name, &group.source)
            .await
            .map_err(|message| self.fail(0, ErrorClass::Fatal, message))?;
        let mut state = state.lock().await;
        let first = &events[group.indices[0]];
        let table = match state.table.take() {
            Some(table) => table,
            None => self.load_or_create(&group.name, first).await?,
        };
        state.table = Some(table);
        // Each distinct column list of the batch (events of one schema share one).
        for &index in &group.indices {
            let Some(columns) = &events[index].columns else { continue };
            if state.checked.as_ref().is_some_and(|checked| Arc::ptr_eq(checked, columns)) {
                continue;
            }
            let table = state.table.take().expect("set above");
            let evolved = self.evolve(table, columns, &events[index].table).await;
            match evolved {
                Ok(table) => {
                    state.table = Some(table);
                    state.checked = Some(columns.clone());
                }
                Err(error) => return Err(error),
            }
        }
        let table = state.table.clone().expect("set above");
        drop(state);
        if !self.held.contains_key(&group.name) {
            let positions = held_positions(&table, &self.shared.property)
                .map_err(|message| self.fail(0, ErrorClass::Fatal, message))?;
            self.held.insert(group.name.clone(), positions);
        }
        Ok(table)
    }

    /// Reads the table, or creates it from the event's schema.
    async fn load_or_create(&mut self, name: &str, event: &ChangeEvent) -> Result<Table, SinkError> {
        let shared = self.shared.clone();
        let lakehouse =
            shared.lakehouse().await.map_err(|message| self.fail(0, ErrorClass::TRANSIENT, message))?;
        let namespace = shared.namespace().map_err(|message| self.fail(0, ErrorClass::Fatal, message))?;
        let ident = TableIdent::new(namespace.clone(), name.to_owned());
        let transient = |this: &mut Self, context: String, error: iceberg::Error| {
            this.fail(0, ErrorClass::TRANSIENT, format!("{context}: {}", describe(&error)))
        };
        match lakehouse.load_table(&ident).await {
            Ok(Some(table)) => return Ok(table),
            Ok(None) => {}
            Err(error) => return Err(transient(self, format!("cannot read {ident}"), error)),
        }
        if !shared.settings.auto_create {
            let message = format!("table {ident} does not exist and auto_create_table is off");
            return Err(self.fail(0, ErrorClass::Fatal, message));
        }
        let Some(columns) = &event.columns else {
            let message = format!(
                "cannot create {ident}: the changes of {} carry no schema (use JSON with schemas or Avro)",
                event.table
            );
            return Err(self.fail(0, ErrorClass::Fatal, message));
        };
        let key: Vec<String> =
            event.key.as_ref().map(|key| key.columns().map(str::to_owned).collect()).unwrap_or_default();
        if shared.settings.mode == WriteMode::Upsert && key.is_empty() {
            let message =
                format!("cannot create {ident}: {} has no primary key, which upsert needs", event.table);
            return Err(self.fail(0, ErrorClass::Fatal, message));
        }
        let schema = schema::table_schema(columns, &key, shared.settings.mode).map_err(|reason| {
            self.fail(0, ErrorClass::Fatal, format!("cannot create {ident} for {}: {reason}", event.table))
        })?;
        lakehouse
            .ensure_namespace(&namespace)
            .await
            .map_err(|error| transient(self, format!("cannot create namespace {namespace:?}"), error))?;
        let spec = partition::spec(&shared.settings.partitions, &schema, &key, shared.settings.mode)
            .map_err(|reason| self.fail(0, ErrorClass::Fatal, format!("cannot create {ident}: {reason}")))?;
        let creation =
            TableCreation::builder().name(name.to_owned()).schema(schema).partition_spec_opt(spec).build();
        match lakehouse.catalog.create_table(&namespace, creation).await {
            Ok(table) => {
                tracing::info!(sink_id = shared.sink_id.as_str(), table = %ident, source = %event.table, "iceberg.table_created");
                Ok(table)
            }
            // Another writer created it meanwhile.
            Err(error) if error.kind() == iceberg::ErrorKind::TableAlreadyExists => lakehouse
                .catalog
                .load_table(&ident)
                .await
                .map_err(|error| transient(self, format!("cannot read {ident}"), error)),
            Err(error) => Err(transient(self, format!("cannot create {ident}"), error)),
        }
    }

    /// The table with a schema that takes `columns`: new columns added, widened types widened.
    async fn evolve(
        &mut self,
        table: Table,
        columns: &[Column],
        source: &TableId,
    ) -> Result<Table, SinkError> {
        let ident = table.identifier().clone();
        let evolved = schema::evolve(table.metadata().current_schema(), columns).map_err(|reason| {
            self.fail(0, ErrorClass::Fatal, format!("{ident} cannot follow the schema of {source}: {reason}"))
        })?;
        let Some(evolved) = evolved else { return Ok(table) };
        // Files written for the old schema commit first.
        let pending = self.pending.remove(ident.name()).unwrap_or_default();
        let table =
            if pending.is_empty() { table } else { self.commit_table(ident.name(), table, pending).await? };
        let shared = self.shared.clone();
        let lakehouse =
            shared.lakehouse().await.map_err(|message| self.fail(0, ErrorClass::TRANSIENT, message))?;
        let table = commit::set_schema(lakehouse, &table, evolved)
            .await
            .map_err(|error| self.commit_failed(&ident, error))?;
        tracing::info!(sink_id = shared.sink_id.as_str(), table = %ident, source = %source, "iceberg.schema_evolved");
        Ok(table)
    }

    /// The record batches of the events at `indices`: the rows to add and, in upsert mode, the
    /// keys to delete; errors name the event's index in the write.
    fn batches(&self, table: &Table, events: &[ChangeEvent], indices: &[usize]) -> Result<Batches, RowError> {
        let group: Vec<&ChangeEvent> = indices.iter().map(|&index| &events[index]).collect();
        let changes = Changes::of(&group, self.shared.settings.mode)
            .map_err(|error| RowError { index: indices[error.index], ..error })?;
        let arrow = arrow_schema(table).map_err(|message| RowError { index: indices[0], message })?;
        let at = |error: RowError| RowError { index: indices[error.index], ..error };
        let data = if changes.rows.is_empty() {
            None
        } else {
            Some(rows::data_batch(&arrow, &changes.rows).map_err(at)?)
        };
        let deletes = if changes.deleted_keys.is_empty() {
            None
        } else {
            let keys: Vec<DataRow<'_>> = changes
                .deleted_keys
                .iter()
                .map(|(index, key)| DataRow { index: *index, event: group[*index], values: (*key).clone() })
                .collect();
            Some(rows::data_batch(&arrow, &keys).map_err(at)?)
        };
        Ok(Batches { data, deletes, truncate: changes.truncate })
    }

    /// Writes the files of the events at `indices` and notes their positions.
    async fn write_table(
        &mut self,
        group: &TableWrite,
        events: &[ChangeEvent],
        indices: &[usize],
        batches: Batches,
    ) -> Result<(), SinkError> {
        let name = group.name.as_str();
        let state = self
            .shared
            .table_state(name, &group.source)
            .await
            .map_err(|message| self.fail(0, ErrorClass::Fatal, message))?;
        let mut state = state.lock().await;
        let mut table = state.table.clone().expect("prepared before");
        // Upsert: a key written twice before one commit would keep both rows (an equality delete
        // never applies to its own snapshot), so what is pending commits first.
        if self.shared.settings.mode == WriteMode::Upsert
            && let Some(pending) = self.pending.remove(name).filter(|pending| !pending.is_empty())
        {
            state.table = None;
            table = self.commit_table(name, table, pending).await?;
            state.table = Some(table.clone());
        }
        drop(state);
        let Batches { data, deletes, truncate } = batches;
        let io_error = |this: &mut Self, error: iceberg::Error| {
            this.fail(
                0,
                ErrorClass::TRANSIENT,
                format!("cannot write files of {}: {}", table.identifier(), describe(&error)),
            )
        };
        let data_files = match data {
            Some(batch) => write_data(&table, batch).await.map_err(|error| io_error(self, error))?,
            None => Vec::new(),
        };
        let delete_files = match deletes {
            Some(batch) => write_deletes(&table, batch).await.map_err(|error| io_error(self, error))?,
            None => Vec::new(),
        };
        let pending = self.pending.entry(name.to_owned()).or_default();
        pending.data_files.extend(data_files);
        pending.delete_files.extend(delete_files);
        if truncate {
            // Rows of earlier writes that the truncate removes were not written: see `Changes`.
            pending.truncate = true;
        }
        for &index in indices {
            let ((topic, partition), mark) = stream_of(&events[index].position);
            let next = after(partition, mark);
            let held = pending.written.entry((topic.to_owned(), partition)).or_insert(next);
            *held = (*held).max(next);
        }
        Ok(())
    }

    /// Commits what is pending for one table, on `table` as last read: one snapshot with the
    /// files and the positions. On a conflict the table is read again and the commit retried.
    async fn commit_table(
        &mut self,
        name: &str,
        mut table: Table,
        pending: Pending,
    ) -> Result<Table, SinkError> {
        let shared = self.shared.clone();
        let lakehouse =
            shared.lakehouse().await.map_err(|message| self.fail(0, ErrorClass::TRANSIENT, message))?;
        let ident = table.identifier().clone();
        for _ in 0..3 {
            let mut positions = held_positions(&table, &shared.property)
                .map_err(|message| self.fail(0, ErrorClass::Fatal, message))?;
            positions.advance(&pending.written);
            let encoded = positions.encode();
            let changes = commit::Changes {
                data_files: pending.data_files.clone(),
                delete_files: pending.delete_files.clone(),
                replace_all: pending.truncate,
                rewrite: false,
                properties: HashMap::from([(shared.property.clone(), encoded)]),
            };
            match commit::commit(lakehouse, &table, changes).await {
                Ok(committed) => {
                    self.held.insert(name.to_owned(), positions);
                    self.last_error = None;
                    return Ok(committed);
                }
                Err(CommitError::Conflict(_)) => {
                    table = lakehouse.catalog.load_table(&ident).await.map_err(|error| {
                        self.fail(
                            0,
                            ErrorClass::TRANSIENT,
                            format!("cannot read {ident} again: {}", describe(&error)),
                        )
                    })?;
                }
                Err(error) => return Err(self.commit_failed(&ident, error)),
            }
        }
        Err(self.commit_failed(&ident, CommitError::Conflict(ident.to_string())))
    }

    /// A failed commit: whether it took effect is unknown, so what is pending is dropped and
    /// the positions are read again (the table too: its state was left empty); the lane then
    /// writes its batch again, less what the table turns out to hold.
    fn commit_failed(&mut self, ident: &TableIdent, error: CommitError) -> SinkError {
        self.held.clear();
        self.pending.clear();
        self.fail(0, ErrorClass::TRANSIENT, format!("cannot commit to {ident}: {error}"))
    }

    async fn commit_all(&mut self) -> Result<(), SinkError> {
        let names: Vec<String> = self.pending.keys().cloned().collect();
        for name in names {
            let Some(pending) = self.pending.remove(&name) else { continue };
            if pending.is_empty() {
                continue;
            }
            let state = self.shared.tables.lock().await.get(&name).cloned();
            let Some(state) = state else {
                return Err(self.fail(
                    0,
                    ErrorClass::TRANSIENT,
                    format!("table `{name}` was forgotten before its commit"),
                ));
            };
            let mut state = state.lock().await;
            let Some(table) = state.table.take() else {
                return Err(self.fail(
                    0,
                    ErrorClass::TRANSIENT,
                    format!("table `{name}` was forgotten before its commit"),
                ));
            };
            match self.commit_table(&name, table, pending).await {
                Ok(committed) => state.table = self.maintain(committed, &mut state).await,
                Err(error) => {
                    self.pending.clear();
                    return Err(error);
                }
            }
        }
        Ok(())
    }
}

impl IcebergSink {
    /// Runs the maintenance due on a table just committed to; the table after it, or `None`
    /// (read it again) when maintenance failed. A failure is logged: the commit stands.
    async fn maintain(&self, table: Table, state: &mut TableState) -> Option<Table> {
        let (Some(config), Some(schedule)) = (&self.shared.settings.maintenance, state.schedule.as_mut())
        else {
            return Some(table);
        };
        let lakehouse = self.shared.lakehouse().await.ok()?;
        let ident = table.identifier().clone();
        match maintenance::run_due(lakehouse, table, schedule, config).await {
            Ok((table, report)) => {
                if let Some((replaced, written)) = report.compacted {
                    tracing::info!(sink_id = self.shared.sink_id.as_str(), table = %ident, replaced, written, "iceberg.compacted");
                }
                if report.orphans > 0 {
                    tracing::info!(sink_id = self.shared.sink_id.as_str(), table = %ident, files = report.orphans, "iceberg.orphans_removed");
                }
                if let Some((snapshots, files)) = report.expired {
                    tracing::info!(sink_id = self.shared.sink_id.as_str(), table = %ident, snapshots, files, "iceberg.snapshots_expired");
                }
                Some(table)
            }
            Err(error) => {
                tracing::warn!(sink_id = self.shared.sink_id.as_str(), table = %ident, error = %error, "iceberg.maintenance_failed");
                None
            }
        }
    }
}

impl Sink for IcebergSink {
    fn open(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let shared = self.shared.clone();
            shared.lakehouse().await.map(drop).map_err(|message| self.fail(0, ErrorClass::TRANSIENT, message))
        })
    }

    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.write_events(events))
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(self.commit_all())
    }

    fn health(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match &self.last_error {
                Some(error) => Err(error.clone()),
                None => Ok(()),
            }
        })
    }
}

/// The table's current schema in Arrow, with Iceberg's field ids.
fn arrow_schema(table: &Table) -> Result<Arc<arrow_schema::Schema>, String> {
    iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema()).map(Arc::new).map_err(|error| {
        format!("cannot map the schema of {} to Arrow: {}", table.identifier(), describe(&error))
    })
}

fn parquet_properties() -> WriterProperties {
    WriterProperties::builder().set_compression(Compression::SNAPPY).build()
}

/// A unique file-name prefix: each writer numbers its files from 0.
fn file_prefix(kind: &str) -> String {
    format!("{kind}-{}", uuid::Uuid::now_v7())
}

/// Writes data files in the table's current schema, for one partition.
struct DataWriter {
    inner: DataFileWriter<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>,
}

impl DataWriter {
    async fn open(table: &Table, partition: Option<iceberg::spec::PartitionKey>) -> iceberg::Result<Self> {
        let metadata = table.metadata();
        let parquet = ParquetWriterBuilder::new(parquet_properties(), metadata.current_schema().clone());
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            parquet,
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata)?,
            DefaultFileNameGenerator::new(file_prefix("data"), None, DataFileFormat::Parquet),
        );
        Ok(DataWriter { inner: DataFileWriterBuilder::new(rolling).build(partition).await? })
    }

    async fn write(&mut self, batch: RecordBatch) -> iceberg::Result<()> {
        self.inner.write(batch).await
    }

    async fn close(mut self) -> iceberg::Result<Vec<DataFile>> {
        self.inner.close().await
    }
}

/// Writes rows (in the table's full layout) into data files, one or more per partition.
async fn write_data(table: &Table, batch: RecordBatch) -> iceberg::Result<Vec<DataFile>> {
    let mut files = Vec::new();
    for (partition, part) in partition::split(table, batch)? {
        let mut writer = DataWriter::open(table, partition).await?;
        writer.write(part).await?;
        files.extend(writer.close().await?);
    }
    Ok(files)
}

/// Writes equality deletes on the identifier fields, per partition; `batch` has the table's
/// full layout.
async fn write_deletes(table: &Table, batch: RecordBatch) -> iceberg::Result<Vec<DataFile>> {
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let mut ids: Vec<i32> = schema.identifier_field_ids().collect();
    ids.sort_unstable();
    let projected = EqualityDeleteWriterConfig::new(ids.clone(), schema.clone())?;
    let delete_schema =
        Arc::new(iceberg::arrow::arrow_schema_to_schema(projected.projected_arrow_schema_ref())?);
    let mut files = Vec::new();
    for (partition, part) in partition::split(table, batch)? {
        let config = EqualityDeleteWriterConfig::new(ids.clone(), schema.clone())?;
        let rolling = RollingFileWriterBuilder::new_with_default_file_size(
            ParquetWriterBuilder::new(parquet_properties(), delete_schema.clone()),
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata)?,
            DefaultFileNameGenerator::new(file_prefix("delete"), None, DataFileFormat::Parquet),
        );
        let mut writer = EqualityDeleteFileWriterBuilder::new(rolling, config).build(partition).await?;
        writer.write(part).await?;
        files.extend(writer.close().await?);
    }
    Ok(files)
}

/// An iceberg error as one line, with its cause.
fn describe(error: &iceberg::Error) -> String {
    crate::error::chain(error)
}
