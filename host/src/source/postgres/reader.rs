//! The reader task of the embedded source: prepares the publication and the slot, reads the
//! initial snapshot inside the slot's exported snapshot, then streams the slot, reconnecting
//! after a lost connection where it left off. A status task beside it reports the confirmed
//! position to the server.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, pin_mut};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::envelope::{EnvelopeWriter, Origin, SnapshotMark, TableShape, now_micros};
use super::pgoutput::{self, Cell, Message, Relation, RelationColumn, Tuple};
use super::protocol::{
    ReplicationConnection, ReplicationStream, SESSION_OPTIONS, StreamWriter, format_lsn, parse_lsn,
    quote_identifier,
};
use super::values::PgType;
use super::{EmbeddedSettings, Item, Progress};
use crate::config::SnapshotMode;
use crate::decode::PreparedRecord;
use crate::event::{Op, WalPosition};
use crate::ops::health::Health;
use crate::ops::metrics::{Gauge, Metrics, names};
use crate::source::SourceRecord;

/// The table in the source database that remembers which slots finished their snapshot.
pub(super) const STATE_TABLE: &str = "public.cdc_embedded_state";
/// Waits between reconnects, doubling up to the last.
const RECONNECT_BACKOFF: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];
/// How often the slot's lag in bytes is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(10);

/// A reader with its setup done, ready to run.
pub(super) struct Reader {
    settings: EmbeddedSettings,
    progress: Arc<Progress>,
    health: Arc<Health>,
    lag: Gauge,
    client: Arc<Client>,
    writer: EnvelopeWriter,
    /// The snapshot to read first: the slot's exported snapshot and consistent point.
    snapshot: Option<(ReplicationConnection, String, u64)>,
    shapes: HashMap<u32, TableShape>,
    /// The end of the last whole transaction handed on: where a reconnect resumes.
    resume_from: u64,
    /// The commit LSN of the last transaction, Debezium's `sequence` start.
    last_commit: Option<u64>,
    /// The transaction being handed on (its commit LSN) and how many of its changes were: when
    /// the connection is lost in the middle of it, those are skipped when it comes again.
    partly_sent: Option<(u64, u64)>,
}

/// The transaction being read.
struct Transaction {
    final_lsn: u64,
    commit_time_micros: i64,
    xid: u32,
    /// Changes read so far.
    index: u64,
    /// Changes handed on before a reconnect: they are skipped when the transaction comes again.
    already_sent: u64,
}

impl Reader {
    /// Connects, creates the publication and the slot when absent, and decides about the
    /// snapshot.
    pub async fn prepare(
        settings: EmbeddedSettings,
        progress: Arc<Progress>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let describe =
            format!("{}:{}/{}", settings.connect.host, settings.connect.port, settings.connect.database);
        let client = Arc::new(
            query_client(&settings)
                .await
                .with_context(|| format!("cannot connect to the source database {describe}"))?,
        );
        ensure_publication(&client, &settings).await?;
        // Under a lock until the statement's transaction ends: `CREATE … IF NOT EXISTS` is not
        // safe against a concurrent create, and two pipelines starting at once on a database
        // without the table failed on a duplicate catalog entry.
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_xact_lock(hashtext('cdc.embedded.state')); \
                 CREATE TABLE IF NOT EXISTS {STATE_TABLE} (slot_name text PRIMARY KEY, \
                 snapshot_lsn pg_lsn NOT NULL, completed_at timestamptz NOT NULL DEFAULT now())"
            ))
            .await
            .context("cannot create the embedded source's state table")?;
        let slot_row = client
            .query_opt(
                "SELECT confirmed_flush_lsn::text, plugin, database = current_database() \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&settings.slot],
            )
            .await?;
        let finished = client
            .query_opt(&format!("SELECT 1 FROM {STATE_TABLE} WHERE slot_name = $1"), &[&settings.slot])
            .await?
            .is_some();
        let wants_snapshot =
            matches!(settings.snapshot_mode, SnapshotMode::Initial | SnapshotMode::WhenNeeded);
        let mut resume_from = 0;
        let mut snapshot = None;
        let slot_usable = match &slot_row {
            Some(row) => {
                let (plugin, same_database): (Option<String>, Option<bool>) = (row.get(1), row.get(2));
                if plugin.as_deref() != Some("pgoutput") || same_database != Some(true) {
                    bail!(
                        "replication slot `{}` exists but is not a pgoutput slot of database `{}`",
                        settings.slot,
                        settings.connect.database
                    );
                }
                // A slot whose snapshot never finished is started over: what was read of it
                // counts for nothing.
                if wants_snapshot && !finished {
                    tracing::warn!(slot = settings.slot, "embedded.snapshot_unfinished_restarting");
                    client.execute("SELECT pg_drop_replication_slot($1)", &[&settings.slot]).await?;
                    false
                } else {
                    resume_from = row.get::<_, Option<String>>(0).as_deref().and_then(parse_lsn).unwrap_or(0);
                    true
                }
            }
            None => false,
        };
        if !slot_usable {
            let mut replication = ReplicationConnection::connect(&settings.connect)
                .await
                .with_context(|| format!("cannot open a replication connection to {describe}"))?;
            let mode = if wants_snapshot { "export" } else { "nothing" };
            let rows = replication
                .query(&format!(
                    "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT '{mode}')",
                    quote_identifier(&settings.slot)
                ))
                .await
                .with_context(|| format!("cannot create replication slot `{}`", settings.slot))?;
            let row = rows.into_iter().next().context("CREATE_REPLICATION_SLOT returned no row")?;
            let consistent_point = row
                .get(1)
                .cloned()
                .flatten()
                .as_deref()
                .and_then(parse_lsn)
                .context("no consistent point")?;
            tracing::info!(slot = settings.slot, lsn = format_lsn(consistent_point), "embedded.slot_created");
            resume_from = consistent_point;
            match row.get(2).cloned().flatten() {
                Some(snapshot_name) if wants_snapshot => {
                    snapshot = Some((replication, snapshot_name, consistent_point));
                }
                _ => mark_snapshot_done(&client, &settings.slot, consistent_point).await?,
            }
        }
        progress.confirmed.store(resume_from, Ordering::Release);
        let writer =
            EnvelopeWriter { server: settings.server.clone(), database: settings.connect.database.clone() };
        let lag = metrics.gauge(names::REPLICATION_LAG_BYTES, &settings.slot);
        Ok(Reader {
            settings,
            progress,
            health,
            lag,
            client,
            writer,
            snapshot,
            shapes: HashMap::new(),
            resume_from,
            last_commit: None,
            partly_sent: None,
        })
    }

    /// Reads the snapshot, then streams until the source is dropped; a failure that outlasts
    /// the retries halts the pipeline with the reason.
    pub async fn run(mut self, items: mpsc::Sender<Item>, mut paused: watch::Receiver<bool>) {
        let _lag_task =
            Companion::spawn(measure_lag(self.client.clone(), self.settings.slot.clone(), self.lag.clone()));
        let mut _snapshot_recorder = None;
        if let Some((replication, name, consistent_point)) = self.snapshot.take() {
            let read = self.read_snapshot(&name, consistent_point, &items, &mut paused).await;
            // The exported snapshot lives as long as the connection that exported it.
            drop(replication);
            if let Err(error) = read {
                self.fail(format!("the initial snapshot failed: {error:#}"));
                return;
            }
            _snapshot_recorder = Some(Companion::spawn(record_snapshot_when_durable(
                self.client.clone(),
                self.settings.slot.clone(),
                consistent_point,
                self.progress.clone(),
            )));
        }
        let mut failures = 0u32;
        loop {
            match self.stream(&items, &mut paused, &mut failures).await {
                Ok(()) => break,
                Err(error) => {
                    failures += 1;
                    let reason = format!("replication stream of slot `{}`: {error:#}", self.settings.slot);
                    self.health.set_connector(Err(reason.clone()));
                    if self.settings.max_retries > 0 && failures > self.settings.max_retries {
                        self.fail(format!("{reason} (gave up after {} reconnects)", failures - 1));
                        break;
                    }
                    let wait = RECONNECT_BACKOFF[(failures as usize - 1).min(RECONNECT_BACKOFF.len() - 1)];
                    tracing::warn!(reason, wait = ?wait, "embedded.stream_lost");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Gives up: the source reports `reason` to the pipeline, which halts with it.
    fn fail(&self, reason: String) {
        tracing::error!(reason = reason.as_str(), "embedded.reader_failed");
        *self.progress.failure.lock().expect("progress lock poisoned") = Some(reason);
    }

    /// Reads every captured table inside the exported snapshot, as reads (`r`), then hands on
    /// the boundary that ends the snapshot at the slot's consistent point.
    async fn read_snapshot(
        &mut self,
        snapshot_name: &str,
        consistent_point: u64,
        items: &mpsc::Sender<Item>,
        paused: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let client = query_client(&self.settings).await?;
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                snapshot_name.replace('\'', "''")
            ))
            .await
            .context("cannot import the slot's snapshot")?;
        let started = now_micros();
        let tables = published_tables(&client, &self.settings.publication).await?;
        tracing::info!(tables = tables.len(), "embedded.snapshot_started");
        let mut index = 0u64;
        // One read is held back, so that the last one can say it is the last.
        let mut held: Option<(u32, Tuple)> = None;
        for (oid, schema, table) in &tables {
            let (relation, not_null) = catalog_relation(&client, *oid, schema, table).await?;
            let shape = self.writer.shape(relation, not_null)?;
            let columns = (shape.relation.columns.iter())
                .map(|column| quote_identifier(&column.name))
                .collect::<Vec<_>>()
                .join(", ");
            let sql =
                format!("SELECT {columns} FROM {}.{}", quote_identifier(schema), quote_identifier(table));
            self.shapes.insert(*oid, shape);
            // The simple protocol returns each value in its type's text output, as pgoutput
            // sends it (a cast to text would not: `true` for `t`, a `char(n)` unpadded).
            let rows = client.simple_query_raw(&sql).await?;
            pin_mut!(rows);
            let mut count = 0u64;
            while let Some(message) = rows.next().await {
                let SimpleQueryMessage::Row(row) = message? else { continue };
                let tuple: Tuple = (0..row.len())
                    .map(|i| row.get(i).map_or(Cell::Null, |text| Cell::Text(text.to_owned())))
                    .collect();
                if let Some((held_oid, held_tuple)) = held.replace((*oid, tuple)) {
                    self.send_read(
                        items,
                        paused,
                        held_oid,
                        &held_tuple,
                        consistent_point,
                        index,
                        started,
                        false,
                    )
                    .await?;
                    index += 1;
                }
                count += 1;
            }
            tracing::info!(schema, table, rows = count, "embedded.snapshot_table_read");
        }
        let mut rows = index;
        if let Some((oid, tuple)) = held {
            self.send_read(items, paused, oid, &tuple, consistent_point, index, started, true).await?;
            rows += 1;
        }
        client.batch_execute("COMMIT").await?;
        send(items, paused, Item::Boundary { lsn: consistent_point, ends_snapshot: true }).await?;
        tracing::info!(rows, "embedded.snapshot_read");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_read(
        &self,
        items: &mpsc::Sender<Item>,
        paused: &mut watch::Receiver<bool>,
        oid: u32,
        tuple: &Tuple,
        consistent_point: u64,
        index: u64,
        started: i64,
        last: bool,
    ) -> anyhow::Result<()> {
        let shape = &self.shapes[&oid];
        let origin = Origin {
            commit_time_micros: started,
            xid: None,
            lsn: consistent_point,
            last_commit_lsn: None,
            snapshot: Some(if last { SnapshotMark::Last } else { SnapshotMark::Row }),
        };
        let prepared = self.writer.record(shape, Op::Read, None, false, Some(tuple), &origin)?;
        let record = record(shape, prepared, WalPosition { commit_lsn: consistent_point, index });
        send(items, paused, Item::Record(record)).await
    }

    /// Streams the slot from where the last whole transaction ended. `Ok` when the source is
    /// gone; an error when the connection failed.
    async fn stream(
        &mut self,
        items: &mpsc::Sender<Item>,
        paused: &mut watch::Receiver<bool>,
        failures: &mut u32,
    ) -> anyhow::Result<()> {
        let connection = ReplicationConnection::connect(&self.settings.connect).await?;
        let (mut stream, status_writer) = connection
            .start_replication(&self.settings.slot, self.resume_from, &self.settings.publication)
            .await?;
        self.health.set_connector(Ok(()));
        tracing::info!(slot = self.settings.slot, from = format_lsn(self.resume_from), "embedded.streaming");
        let received = Arc::new(AtomicU64::new(self.resume_from));
        let reply_now = Arc::new(tokio::sync::Notify::new());
        let _status = Companion::spawn(send_status(
            status_writer,
            self.progress.clone(),
            received.clone(),
            reply_now.clone(),
            self.settings.status_interval,
        ));
        self.read_stream(&mut stream, items, paused, &received, &reply_now, failures).await
    }

    async fn read_stream(
        &mut self,
        stream: &mut ReplicationStream,
        items: &mpsc::Sender<Item>,
        paused: &mut watch::Receiver<bool>,
        received: &AtomicU64,
        reply_now: &tokio::sync::Notify,
        failures: &mut u32,
    ) -> anyhow::Result<()> {
        let mut transaction: Option<Transaction> = None;
        loop {
            let message = match stream.next().await {
                Ok(message) => message,
                Err(error) if items.is_closed() => {
                    tracing::debug!(error = %error, "embedded.stream_closed");
                    return Ok(());
                }
                Err(error) => return Err(error.into()),
            };
            match message {
                super::protocol::StreamMessage::Keepalive { wal_end, reply_requested } => {
                    received.fetch_max(wal_end, Ordering::AcqRel);
                    if reply_requested {
                        reply_now.notify_one();
                    }
                    // Between transactions everything up to the server's end of WAL was
                    // sent: the slot may move there once what came before is durable, so
                    // that WAL of tables not captured does not pile up.
                    if transaction.is_none() && wal_end > self.resume_from {
                        self.resume_from = wal_end;
                        send(items, paused, Item::Boundary { lsn: wal_end, ends_snapshot: false }).await?;
                    }
                }
                super::protocol::StreamMessage::XLogData { wal_start, data } => {
                    received.fetch_max(wal_start, Ordering::AcqRel);
                    let message = pgoutput::parse(data)?;
                    self.handle(message, &mut transaction, items, paused).await?;
                    *failures = 0;
                }
            }
        }
    }

    async fn handle(
        &mut self,
        message: Message,
        transaction: &mut Option<Transaction>,
        items: &mpsc::Sender<Item>,
        paused: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        match message {
            Message::Begin { final_lsn, commit_time_micros, xid } => {
                let already_sent =
                    self.partly_sent.filter(|(lsn, _)| *lsn == final_lsn).map_or(0, |(_, sent)| sent);
                *transaction =
                    Some(Transaction { final_lsn, commit_time_micros, xid, index: 0, already_sent });
            }
            Message::Commit { commit_lsn, end_lsn } => {
                *transaction = None;
                self.partly_sent = None;
                self.last_commit = Some(commit_lsn);
                self.resume_from = end_lsn;
                send(items, paused, Item::Boundary { lsn: end_lsn, ends_snapshot: false }).await?;
            }
            Message::Relation(relation) => {
                let not_null = not_null_columns(&self.client, relation.id, &relation).await?;
                let shape = self.writer.shape(relation, not_null)?;
                self.shapes.insert(shape.relation.id, shape);
            }
            Message::Insert { relation, new } => {
                self.change(transaction, items, paused, relation, Op::Create, None, Some(new)).await?;
            }
            Message::Update { relation, old, new } => {
                let shape = self.shape(relation)?;
                let key_changed = old.as_ref().is_some_and(|old| {
                    shape
                        .relation
                        .columns
                        .iter()
                        .enumerate()
                        .any(|(i, column)| column.key && old.get(i) != new.get(i))
                });
                if key_changed {
                    // A key change is a delete of the old key and a create of the new one.
                    self.change(transaction, items, paused, relation, Op::Delete, old, None).await?;
                    self.change(transaction, items, paused, relation, Op::Create, None, Some(new)).await?;
                } else {
                    let before = old.filter(|_| shape.relation.replica_identity == b'f');
                    self.change(transaction, items, paused, relation, Op::Update, before, Some(new)).await?;
                }
            }
            Message::Delete { relation, old } => {
                self.change(transaction, items, paused, relation, Op::Delete, Some(old), None).await?;
            }
            Message::Truncate { relations } => {
                for relation in relations {
                    self.change(transaction, items, paused, relation, Op::Truncate, None, None).await?;
                }
            }
            Message::Other => {}
        }
        Ok(())
    }

    fn shape(&self, relation: u32) -> anyhow::Result<&TableShape> {
        self.shapes
            .get(&relation)
            .with_context(|| format!("a change of relation {relation} before its description"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn change(
        &mut self,
        transaction: &mut Option<Transaction>,
        items: &mpsc::Sender<Item>,
        paused: &mut watch::Receiver<bool>,
        relation: u32,
        op: Op,
        before: Option<Tuple>,
        after: Option<Tuple>,
    ) -> anyhow::Result<()> {
        let transaction = transaction.as_mut().context("a change outside a transaction")?;
        let index = transaction.index;
        transaction.index += 1;
        if index < transaction.already_sent {
            return Ok(());
        }
        self.partly_sent = Some((transaction.final_lsn, transaction.index));
        let shape = self.shape(relation)?;
        let origin = Origin {
            commit_time_micros: transaction.commit_time_micros,
            xid: Some(transaction.xid),
            lsn: transaction.final_lsn,
            last_commit_lsn: self.last_commit,
            snapshot: None,
        };
        let position = WalPosition { commit_lsn: transaction.final_lsn, index };
        let key_only = shape.relation.replica_identity != b'f';
        let prepared = self.writer.record(shape, op, before.as_ref(), key_only, after.as_ref(), &origin)?;
        let record = record(shape, prepared, position);
        send(items, paused, Item::Record(record)).await
    }
}

/// The record of a table's change: built in process, its bytes are written only if needed.
fn record(shape: &TableShape, prepared: PreparedRecord, wal: WalPosition) -> SourceRecord {
    SourceRecord {
        topic: shape.topic.clone(),
        partition: 0,
        offset: 0,
        key: None,
        value: None,
        wal: Some(wal),
        prepared: Some(Arc::new(prepared)),
    }
}

/// A task that runs beside the reader and ends with it: when the source closes it aborts the
/// reader, and a status sender left running would hold the replication connection (and the
/// slot) open for as long as the process lives.
struct Companion(tokio::task::JoinHandle<()>);

impl Companion {
    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Companion(tokio::spawn(task))
    }
}

impl Drop for Companion {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Hands an item on, waiting while the pipeline holds the stream back.
async fn send(
    items: &mpsc::Sender<Item>,
    paused: &mut watch::Receiver<bool>,
    item: Item,
) -> anyhow::Result<()> {
    if *paused.borrow() {
        let _ = paused.wait_for(|paused| !paused).await;
    }
    items.send(item).await.map_err(|_| anyhow::anyhow!("the pipeline stopped taking records"))
}

/// Reports the received and confirmed positions every `interval`, at once when the
/// confirmed position moved or the server asks, and a last time when the source closes.
async fn send_status(
    mut writer: StreamWriter,
    progress: Arc<Progress>,
    received: Arc<AtomicU64>,
    reply_now: Arc<tokio::sync::Notify>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = progress.confirmed_moved.notified() => {}
            () = reply_now.notified() => {}
        }
        let confirmed = progress.confirmed.load(Ordering::Acquire);
        let written = received.load(Ordering::Acquire).max(confirmed);
        if let Err(error) = writer.send_status(written, confirmed).await {
            tracing::debug!(error = %error, "embedded.status_failed");
            return;
        }
        tracing::trace!(confirmed = format_lsn(confirmed), "embedded.status_sent");
    }
}

/// Records the snapshot as finished once every read of it is durable in every sink, so that
/// a restart streams on instead of reading the tables again. Until the record is written a
/// crash reads the snapshot again (a replica takes it again unchanged), so a failure to write
/// it is retried, not fatal.
async fn record_snapshot_when_durable(
    client: Arc<Client>,
    slot: String,
    consistent_point: u64,
    progress: Arc<Progress>,
) {
    // Looked at more often than commits happen: a crash between the snapshot's end and the
    // record of it would read the whole snapshot again.
    while !progress.snapshot_durable.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.confirm_durable();
    }
    loop {
        match mark_snapshot_done(&client, &slot, consistent_point).await {
            Ok(()) => {
                tracing::info!(slot, "embedded.snapshot_durable");
                return;
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "embedded.snapshot_record_failed"),
        }
        tokio::time::sleep(RECONNECT_BACKOFF[RECONNECT_BACKOFF.len() - 1]).await;
    }
}

/// Measures how many bytes of WAL the slot holds back (the server's current position minus
/// the slot's confirmed flush position).
async fn measure_lag(client: Arc<Client>, slot: String, gauge: Gauge) {
    loop {
        let lag = client
            .query_opt(
                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await;
        match lag {
            Ok(Some(row)) => gauge.set(row.get::<_, Option<i64>>(0).unwrap_or(0)),
            Ok(None) => {}
            Err(error) => tracing::debug!(error = %error, "embedded.lag_unknown"),
        }
        tokio::time::sleep(LAG_INTERVAL).await;
    }
}

/// A plain connection for catalog queries, the state table and the snapshot, with the
/// session settings that make values' text forms what the converter reads.
pub(super) async fn query_client(settings: &EmbeddedSettings) -> anyhow::Result<Client> {
    let connect = &settings.connect;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&connect.host)
        .port(connect.port)
        .dbname(&connect.database)
        .user(&connect.user)
        .password(connect.password.expose())
        .application_name("cdc")
        .connect_timeout(Duration::from_secs(10))
        .options(SESSION_OPTIONS);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "embedded.query_connection_closed");
        }
    });
    Ok(client)
}

/// Creates the publication over the configured tables when absent, and keeps its table list
/// to the configured one.
pub(super) async fn ensure_publication(client: &Client, settings: &EmbeddedSettings) -> anyhow::Result<()> {
    let publication = quote_identifier(&settings.publication);
    let tables = (settings.tables.iter())
        .map(|table| match table.split_once('.') {
            Some((schema, name)) => format!("{}.{}", quote_identifier(schema), quote_identifier(name)),
            None => quote_identifier(table),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let existing = client
        .query_opt("SELECT puballtables FROM pg_publication WHERE pubname = $1", &[&settings.publication])
        .await?;
    let sql = match (existing, tables.is_empty()) {
        (None, true) => format!("CREATE PUBLICATION {publication} FOR ALL TABLES"),
        (None, false) => format!("CREATE PUBLICATION {publication} FOR TABLE {tables}"),
        (Some(row), false) if !row.get::<_, bool>(0) => {
            format!("ALTER PUBLICATION {publication} SET TABLE {tables}")
        }
        (Some(_), _) => return Ok(()),
    };
    client
        .batch_execute(&sql)
        .await
        .with_context(|| format!("cannot prepare publication `{}`", settings.publication))?;
    tracing::info!(publication = settings.publication, "embedded.publication_ready");
    Ok(())
}

/// The tables of a publication: oid, schema, name.
async fn published_tables(client: &Client, publication: &str) -> anyhow::Result<Vec<(u32, String, String)>> {
    let rows = client
        .query(
            "SELECT format('%I.%I', schemaname, tablename)::regclass::oid, schemaname::text, tablename::text \
             FROM pg_publication_tables WHERE pubname = $1 ORDER BY 2, 3",
            &[&publication],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect())
}

/// A table as pgoutput would describe it, from the catalog: the columns pgoutput sends
/// (not dropped, not generated) and the replica identity's key; and which columns are NOT NULL.
async fn catalog_relation(
    client: &Client,
    oid: u32,
    schema: &str,
    table: &str,
) -> anyhow::Result<(Relation, Vec<bool>)> {
    let identity: i8 =
        client.query_one("SELECT relreplident FROM pg_class WHERE oid = $1", &[&oid]).await?.get(0);
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, \
                    coalesce(a.attnum = ANY(i.indkey::int2[]), false), a.attnotnull \
             FROM pg_attribute a \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
             ORDER BY a.attnum",
            &[&oid],
        )
        .await?;
    let columns = rows
        .iter()
        .map(|row| RelationColumn {
            name: row.get(0),
            ty: PgType { oid: row.get(1), modifier: row.get(2) },
            key: row.get(3),
        })
        .collect();
    let not_null = rows.iter().map(|row| row.get(4)).collect();
    let relation = Relation {
        id: oid,
        schema: schema.to_owned(),
        table: table.to_owned(),
        replica_identity: identity as u8,
        columns,
    };
    Ok((relation, not_null))
}

/// Which of a relation's columns are declared NOT NULL.
async fn not_null_columns(client: &Client, oid: u32, relation: &Relation) -> anyhow::Result<Vec<bool>> {
    let rows = client
        .query(
            "SELECT attname::text, attnotnull FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped",
            &[&oid],
        )
        .await?;
    let declared: HashMap<String, bool> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    Ok(relation.columns.iter().map(|column| declared.get(&column.name).copied().unwrap_or(false)).collect())
}

/// Records that the slot's snapshot is complete (or was not wanted).
pub(super) async fn mark_snapshot_done(client: &Client, slot: &str, lsn: u64) -> anyhow::Result<()> {
    client
        .execute(
            &format!(
                "INSERT INTO {STATE_TABLE} (slot_name, snapshot_lsn) VALUES ($1, $2::text::pg_lsn) \
                 ON CONFLICT (slot_name) DO UPDATE SET snapshot_lsn = EXCLUDED.snapshot_lsn, completed_at = now()"
            ),
            &[&slot, &format_lsn(lsn)],
        )
        .await
        .context("cannot record the finished snapshot")?;
    Ok(())
}
