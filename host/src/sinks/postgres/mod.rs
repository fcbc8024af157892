//! The PostgreSQL sink: a replica of each source table (upsert by primary key, deletes,
//! truncates, tables created and widened from the source schema) or the seed's event log,
//! exactly-once either way.
//!
//! Each lane has its own connection. A lane's writes go into one transaction, each inside a
//! savepoint, so that a row the target refuses costs only its write (the lane then halves it
//! to find the row); `flush` stores the next position of each stream in
//! `positions::TABLE` and commits, rows and position together. A record below the stored
//! position is already in the target and is skipped, so a restart after a crash writes
//! nothing twice. A lost connection loses the open transaction: the next flush says so and
//! the lane writes the batch again, on a new connection.
//!
//! Once the session knows a delivery's tables, positions and statements, the lane overlaps
//! deliveries (`submit`, `overlap`): each runs in a transaction of its own while the lane
//! builds the next. One that fails fails the session; the lane then writes it again as above.

mod binary;
mod connection;
mod event_log;
mod literal;
mod overlap;
mod positions;
mod replica;
mod schema;
mod statement;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use self::connection::ConnectSettings;
use self::connection::{BuildError, Connection, Prepare, classify, session_lost};
use self::overlap::Overlap;
use self::positions::PositionTable;
use self::replica::{Replica, Statements, TableMapping};
use self::schema::TableName;
use crate::config::{PostgresMode, PostgresSinkConfig};
use crate::error::ErrorClass;
use crate::event::ChangeEvent;
use crate::sinks::positions::{Mark, after, stream_of};
use crate::sinks::{Batching, Receipt, Sink, SinkError, SinkFactory};
use crate::source::acks::PartitionKey;

/// What the sink writes.
#[derive(Debug, Clone)]
pub enum Target {
    /// One row per change in this table (`schema.table`); `upsert` replaces a row written again.
    EventLog {
        /// The table.
        table: String,
        /// Replace a row written again.
        upsert: bool,
    },
    /// Replica tables.
    Replica {
        /// Schema of the tables `table_map` does not name.
        target_schema: String,
        /// `schema.table` of a source table → `schema.table` of its target.
        table_map: Vec<(String, String)>,
    },
}

/// Everything the sink needs, validated.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// The pipeline's id: positions are stored per pipeline and sink.
    pub pipeline_id: String,
    /// Where to connect.
    pub connect: ConnectSettings,
    /// What to write.
    pub target: Target,
    /// Most rows per statement.
    pub rows_per_statement: usize,
}

impl PostgresSettings {
    /// Settings from the sink's config block.
    pub fn from_config(pipeline_id: &str, config: &PostgresSinkConfig) -> Self {
        let target = match config.mode {
            PostgresMode::EventLog => {
                Target::EventLog { table: config.target_table.clone(), upsert: config.upsert }
            }
            PostgresMode::Replica => Target::Replica {
                target_schema: config.target_schema.clone(),
                table_map: config.table_map.clone().into_iter().collect(),
            },
        };
        PostgresSettings {
            pipeline_id: pipeline_id.to_owned(),
            connect: ConnectSettings::from_config(config),
            target,
            rows_per_statement: config.batch_size.max(1),
        }
    }
}

/// What the lanes of one sink share.
struct Shared {
    sink_id: String,
    connect: ConnectSettings,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    writer: Writer,
    positions: PositionTable,
    rows_per_statement: usize,
}

enum Writer {
    EventLog { table: TableName, upsert: bool },
    Replica(TableMapping),
}

/// Builds PostgreSQL sinks, one connection per lane.
pub struct PostgresFactory {
    shared: Arc<Shared>,
}

impl PostgresFactory {
    /// Checks the settings (TLS roots) without connecting.
    pub fn new(sink_id: &str, settings: &PostgresSettings) -> Result<Self, String> {
        let tls = settings.connect.tls()?;
        let (writer, schema) = match &settings.target {
            Target::EventLog { table, upsert } => {
                let table = TableName::parse(table);
                let schema = table.schema.clone();
                (Writer::EventLog { table, upsert: *upsert }, schema)
            }
            Target::Replica { target_schema, table_map } => {
                let table_map = table_map
                    .iter()
                    .map(|(source, target)| (source.clone(), TableName::parse(target)))
                    .collect();
                (
                    Writer::Replica(TableMapping { target_schema: target_schema.clone(), table_map }),
                    target_schema.clone(),
                )
            }
        };
        let shared = Shared {
            sink_id: sink_id.to_owned(),
            connect: settings.connect.clone(),
            tls,
            writer,
            positions: PositionTable::new(&schema, &settings.pipeline_id, sink_id),
            rows_per_statement: settings.rows_per_statement,
        };
        Ok(PostgresFactory { shared: Arc::new(shared) })
    }
}

impl SinkFactory for PostgresFactory {
    fn sink_id(&self) -> &str {
        &self.shared.sink_id
    }

    /// Batches that queued while the lane wrote are written together up to `batch_size` rows:
    /// one transaction (one commit, one position update) instead of one per lane batch. A
    /// lane under load takes its records a fetch at a time (about 1,000 records of 2 KB), far
    /// below a `batch_size` of 10,000.
    fn batching(&self) -> Batching {
        Batching { max_events: self.shared.rows_per_statement, ..Batching::default() }
    }

    fn stores_positions(&self) -> bool {
        true
    }

    fn stored_positions<'a>(
        &'a self,
        partitions: &'a [PartitionKey],
    ) -> BoxFuture<'a, Result<HashMap<PartitionKey, i64>, String>> {
        Box::pin(async move {
            let shared = &self.shared;
            let where_ = shared.connect.describe();
            let connection = Connection::open(&shared.connect, shared.tls.as_ref())
                .await
                .map_err(|error| format!("cannot connect to {where_}: {}", describe(&error)))?;
            let stored = shared.positions.load_all(connection.client()).await.map_err(|error| {
                format!("cannot read the positions stored in {where_}: {}", describe(&error))
            })?;
            Ok(stored
                .into_iter()
                .map(|((topic, partition), next)| ((Arc::from(topic.as_str()), partition), next))
                .filter(|(partition, _)| partitions.contains(partition))
                .collect())
        })
    }

    fn build(&self) -> Box<dyn Sink> {
        let replica = match &self.shared.writer {
            Writer::Replica(mapping) => Some(Replica::new(mapping.clone())),
            Writer::EventLog { .. } => None,
        };
        Box::new(PostgresSink {
            shared: self.shared.clone(),
            connection: None,
            replica,
            held: HashMap::new(),
            written: HashMap::new(),
            in_transaction: false,
            lost: false,
            last_error: None,
            overlap: Overlap::default(),
        })
    }
}

type Stream = (String, i32);

/// The sink of one lane.
struct PostgresSink {
    shared: Arc<Shared>,
    connection: Option<Connection>,
    replica: Option<Replica>,
    /// The next position the target holds per stream, as last read or committed.
    held: HashMap<Stream, Mark>,
    /// The next position per stream written in the open transaction.
    written: HashMap<Stream, Mark>,
    in_transaction: bool,
    /// Writes accepted in a transaction that was lost with its connection.
    lost: bool,
    last_error: Option<String>,
    /// Deliveries sent by `submit`, running on the connection.
    overlap: Overlap,
}

impl PostgresSink {
    fn error(&self, accepted: usize, class: ErrorClass, message: String) -> SinkError {
        SinkError::from_event(&self.shared.sink_id, accepted, class, message)
    }

    /// The connection, opened (and the tables ensured) when there is none.
    async fn connect(&mut self) -> Result<&mut Connection, SinkError> {
        if self.connection.as_ref().is_some_and(Connection::is_closed) || self.overlap.failed() {
            self.drop_session();
        }
        if self.connection.is_none() {
            let where_ = self.shared.connect.describe();
            let connection = Connection::open(&self.shared.connect, self.shared.tls.as_ref())
                .await
                .map_err(|error| self.db_error(0, &format!("cannot connect to {where_}"), &error))?;
            self.shared.positions.ensure(connection.client()).await.map_err(|error| {
                self.db_error(0, &format!("cannot create the positions table in {where_}"), &error)
            })?;
            if let Writer::EventLog { table, .. } = &self.shared.writer {
                event_log::ensure(&connection, table)
                    .await
                    .map_err(|error| self.db_error(0, &format!("cannot create {table}"), &error))?;
            }
            tracing::info!(
                sink_id = self.shared.sink_id.as_str(),
                target = where_.as_str(),
                "postgres.connected"
            );
            self.connection = Some(connection);
            self.last_error = None;
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    /// Forgets the session: the connection, its transaction and what was read through it.
    fn drop_session(&mut self) {
        if self.in_transaction && !self.written.is_empty() {
            self.lost = true;
        }
        self.connection = None;
        self.in_transaction = false;
        self.written.clear();
        self.held.clear();
        self.overlap = Overlap::default();
        if let Some(replica) = &mut self.replica {
            replica.forget_tables();
        }
    }

    fn db_error(&self, accepted: usize, context: &str, error: &tokio_postgres::Error) -> SinkError {
        self.error(accepted, classify(error), format!("{context}: {}", describe(error)))
    }

    /// How many leading events the target already holds.
    async fn held_prefix(&mut self, events: &[ChangeEvent], prepare: Prepare) -> Result<usize, BuildError> {
        let mut skipped = 0;
        let mut current: Option<((&str, i32), Mark)> = None;
        for event in events {
            let (stream, mark) = stream_of(&event.position);
            let next = match current {
                // A lane's events are of one stream: the lookup is done once.
                Some((held_stream, next)) if held_stream == stream => next,
                _ => {
                    let next = self.held_position(stream, prepare).await?;
                    current = Some((stream, next));
                    next
                }
            };
            if mark >= next {
                break;
            }
            skipped += 1;
        }
        Ok(skipped)
    }

    /// The next position the target holds for a stream, read once per session.
    async fn held_position(&mut self, stream: (&str, i32), prepare: Prepare) -> Result<Mark, BuildError> {
        let key = (stream.0.to_owned(), stream.1);
        if let Some(next) = self.held.get(&key) {
            return Ok(*next);
        }
        if prepare == Prepare::CachedOnly {
            return Err(BuildError::NeedsDatabase);
        }
        let connection = self.connection.as_mut().expect("connected before");
        let next = self.shared.positions.load(connection, stream).await?.unwrap_or((i64::MIN, i64::MIN));
        self.held.insert(key, next);
        Ok(next)
    }

    /// The statements that write `events`; DDL a replica table needs runs now, when `prepare`
    /// allows it.
    async fn build(&mut self, events: &[ChangeEvent], prepare: Prepare) -> Result<Statements, BuildError> {
        let connection = self.connection.as_mut().expect("connected before");
        let rows_per_statement = self.shared.rows_per_statement;
        match (&self.shared.writer, &mut self.replica) {
            (Writer::Replica(_), Some(replica)) => {
                replica.build(connection, events, rows_per_statement, prepare).await
            }
            (Writer::EventLog { table, upsert }, _) => {
                let steps =
                    event_log::append(connection, table, events, *upsert, rows_per_statement, prepare)
                        .await?;
                Ok(Statements { steps, refused: None })
            }
            (Writer::Replica(_), None) => unreachable!("a replica sink has a replica writer"),
        }
    }

    /// Builds and runs, one after another, the statements that write `events`; returns how
    /// many leading events they wrote and, when an event cannot be written, why.
    async fn apply(
        &mut self,
        events: &[ChangeEvent],
    ) -> Result<(usize, Option<String>), tokio_postgres::Error> {
        let Statements { steps, refused } =
            self.build(events, Prepare::AsNeeded).await.map_err(BuildError::into_database)?;
        let client = self.connection.as_ref().expect("connected before").client();
        for step in &steps {
            step.run(client).await?;
        }
        Ok(match refused {
            Some((index, reason)) => (index, Some(reason)),
            None => (events.len(), None),
        })
    }

    /// Sends `events` to be written in a transaction of their own in the background; `None`
    /// when they need more than statements built from what the session knows (the lane then
    /// writes them): no session, a write not yet flushed, a delivery that failed, a table to
    /// resolve (DDL runs in the transaction of the write that needs it), a statement to
    /// prepare or a position to read (the connection is not the lane's while deliveries run
    /// on it), or an event to refuse (the lane's write names it).
    async fn submit_events(&mut self, events: &[ChangeEvent]) -> Option<Receipt> {
        if self.overlap.failed() {
            self.drop_session();
            return None;
        }
        let usable = self.connection.as_ref().is_some_and(|connection| !connection.is_closed());
        if !usable || self.in_transaction || self.lost {
            return None;
        }
        let skipped = self.held_prefix(events, Prepare::CachedOnly).await.ok()?;
        let events = &events[skipped..];
        if events.is_empty() {
            return Some(Box::pin(async { Ok(()) }));
        }
        let Statements { mut steps, refused: None } = self.build(events, Prepare::CachedOnly).await.ok()?
        else {
            return None;
        };
        let positions = next_positions(events);
        let connection = self.connection.as_mut().expect("usable above");
        let stores = positions.iter().map(|((topic, partition), next)| ((topic.as_str(), *partition), *next));
        steps.extend(self.shared.positions.stores(connection, stores, Prepare::CachedOnly).await.ok()?);
        // Taken as held now: a delivery that fails fails the session (`Overlap::failed`), and
        // with it what the session read and assumed.
        self.held.extend(positions);
        Some(self.overlap.send(&self.shared.sink_id, connection.shared_client(), steps))
    }

    async fn write_events(&mut self, events: &[ChangeEvent]) -> Result<(), SinkError> {
        self.connect().await?;
        let skipped =
            match self.held_prefix(events, Prepare::AsNeeded).await.map_err(BuildError::into_database) {
                Ok(skipped) => skipped,
                Err(error) => return Err(self.session_error(0, "cannot read stored positions", &error)),
            };
        let events = &events[skipped..];
        if events.is_empty() {
            return Ok(());
        }
        // The savepoint of the last write is released here rather than after it (or by the
        // COMMIT): one round trip less for every write.
        let begin = if self.in_transaction {
            "RELEASE SAVEPOINT write; SAVEPOINT write"
        } else {
            "BEGIN; SAVEPOINT write"
        };
        let connection = self.connection.as_mut().expect("connected above");
        if let Err(error) = connection.client().batch_execute(begin).await {
            return Err(self.session_error(skipped, "cannot begin", &error));
        }
        self.in_transaction = true;
        let (applied, refused) = match self.apply(events).await {
            Ok(applied) => applied,
            Err(error) => {
                let mut error = self.session_error(skipped, "write failed", &error);
                // A statement fails as a whole; alone, the event is the one at fault.
                error.names_event = events.len() == 1;
                if let Some(connection) = &self.connection
                    && let Err(rollback) =
                        connection.client().batch_execute("ROLLBACK TO SAVEPOINT write").await
                {
                    tracing::warn!(error = %describe(&rollback), "postgres.rollback_failed");
                    self.drop_session();
                }
                if let Some(replica) = &mut self.replica {
                    replica.forget_tables();
                }
                return Err(error);
            }
        };
        for (stream, next) in next_positions(&events[..applied]) {
            let written = self.written.entry(stream).or_insert((i64::MIN, i64::MIN));
            *written = (*written).max(next);
        }
        match refused {
            None => Ok(()),
            Some(reason) => {
                Err(SinkError::event(&self.shared.sink_id, skipped + applied, ErrorClass::Record, reason))
            }
        }
    }

    /// A database error during a write: the session is dropped when it is gone.
    fn session_error(&mut self, accepted: usize, context: &str, error: &tokio_postgres::Error) -> SinkError {
        let sink_error = self.db_error(accepted, context, error);
        self.last_error = Some(sink_error.source.to_string());
        if self.connection.as_ref().is_none_or(|connection| session_lost(error, connection)) {
            self.drop_session();
        }
        sink_error
    }

    async fn commit(&mut self) -> Result<(), SinkError> {
        if self.lost {
            self.lost = false;
            let message = format!(
                "the connection to {} was lost with uncommitted writes: they are written again",
                self.shared.connect.describe()
            );
            return Err(self.error(0, ErrorClass::Transient { retry_after: None }, message));
        }
        if !self.in_transaction {
            return Ok(());
        }
        let written = std::mem::take(&mut self.written);
        let connection = self.connection.as_mut().expect("a transaction has a connection");
        let positions =
            written.iter().map(|((topic, partition), next)| ((topic.as_str(), *partition), *next));
        let result = self.shared.positions.store_and_commit(connection, positions).await;
        self.in_transaction = false;
        match result {
            Ok(()) => {
                self.held.extend(written);
                Ok(())
            }
            Err(error) => {
                // Whether a failed COMMIT took effect is unknown: start over from what the
                // database says.
                let error = self.db_error(0, "commit failed", &error);
                self.last_error = Some(error.source.to_string());
                self.drop_session();
                self.lost = false;
                Err(error)
            }
        }
    }
}

impl Sink for PostgresSink {
    fn open(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move { self.connect().await.map(drop) })
    }

    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.write_events(events))
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(self.commit())
    }

    fn submit<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Option<Receipt>> {
        Box::pin(self.submit_events(events))
    }

    fn health(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let where_ = self.shared.connect.describe();
            match (&self.connection, &self.last_error) {
                (Some(connection), _) if !connection.is_closed() => Ok(()),
                (_, Some(error)) => Err(format!("not connected to {where_}: {error}")),
                _ => Err(format!("not connected to {where_}")),
            }
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.in_transaction
                && let Some(connection) = &self.connection
            {
                let _ = connection.client().batch_execute("ROLLBACK").await;
            }
            self.connection = None;
        })
    }
}

/// The next position of each stream of `events`.
fn next_positions(events: &[ChangeEvent]) -> HashMap<Stream, Mark> {
    let mut next: HashMap<Stream, Mark> = HashMap::new();
    let mut runs = events.iter().map(|event| stream_of(&event.position)).peekable();
    while let Some((stream, mark)) = runs.next() {
        let mut last = mark;
        while let Some((_, mark)) = runs.next_if(|(next_stream, _)| *next_stream == stream) {
            last = last.max(mark);
        }
        let entry = next.entry((stream.0.to_owned(), stream.1)).or_insert((i64::MIN, i64::MIN));
        *entry = (*entry).max(after(stream.1, last));
    }
    next
}

/// A database error as one line: the server's message with its code, detail and the object it
/// names, or the client's error.
fn describe(error: &tokio_postgres::Error) -> String {
    let Some(db) = error.as_db_error() else {
        // The client's error says little alone ("error performing TLS handshake"): add its causes.
        return crate::error::chain(error);
    };
    let mut text = format!("{} ({})", db.message(), db.code().code());
    for (label, part) in [
        ("detail", db.detail()),
        ("table", db.table()),
        ("column", db.column()),
        ("constraint", db.constraint()),
    ] {
        if let Some(part) = part {
            text.push_str(&format!("; {label}: {part}"));
        }
    }
    text
}
