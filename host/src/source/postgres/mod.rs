//! The embedded source: PostgreSQL logical replication read directly, without Kafka or
//! Debezium (docs/architecture.md, embedded mode).
//!
//! A reader task (`reader`) sets up the publication and the slot, reads the initial snapshot
//! inside the slot's exported snapshot, then streams pgoutput and turns every change into the
//! record Debezium would have written (`envelope`). [`EmbeddedSource`] hands those records to
//! the pipeline as one partition per table (`{topic_prefix}.{schema}.{table}`), each numbered
//! from 0 in stream order, and its committer confirms to the server, as the slot's flush
//! position, the end of the last transaction whose every record is durable in every sink.

pub mod admin;
mod envelope;
mod pgoutput;
mod protocol;
mod reader;
mod values;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

pub use self::protocol::ConnectOptions;
use super::acks::{AckTracker, PartitionKey};
use super::{Committer, Source, SourceEvent, SourceRecord};
use crate::config::{Config, SnapshotMode};
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;

/// Records read ahead of the pipeline.
const READ_AHEAD: usize = 4096;
/// How long a closing source lets its last status update reach the server.
const STATUS_SETTLE: Duration = Duration::from_millis(300);

/// What the embedded source needs, already validated.
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    /// The source database.
    pub connect: ConnectOptions,
    /// Captured tables as `schema.table`; empty means every table of the publication.
    pub tables: Vec<String>,
    /// Publication to stream (created when absent).
    pub publication: String,
    /// Replication slot (created when absent).
    pub slot: String,
    /// When to read the tables' rows before streaming.
    pub snapshot_mode: SnapshotMode,
    /// Debezium's logical server name (`topic_prefix`): the first part of every topic.
    pub server: String,
    /// How often the confirmed position is sent to the server.
    pub status_interval: Duration,
    /// Reconnects after a lost connection before the pipeline halts; 0 means no limit.
    pub max_retries: u32,
}

impl EmbeddedSettings {
    /// The embedded settings of a config.
    pub fn from_config(config: &Config) -> Self {
        let source = &config.pipeline.source;
        EmbeddedSettings {
            connect: ConnectOptions {
                host: source.host.clone(),
                port: source.port,
                database: source.database.clone(),
                user: source.username.clone(),
                password: source.password.clone(),
            },
            tables: source.tables.clone(),
            publication: config.publication_name().to_owned(),
            slot: config.slot_name().to_owned(),
            snapshot_mode: source.snapshot_mode,
            server: config.pipeline.topic_prefix.clone(),
            status_interval: config.platform.wal_reader.status_interval,
            max_retries: config.platform.wal_reader.max_retries,
        }
    }
}

/// What the reader hands to the source, in stream order.
#[derive(Debug)]
enum Item {
    /// A change record.
    Record(SourceRecord),
    /// Everything before this is a whole number of transactions ending at `lsn`: once it is
    /// durable, the slot may move to `lsn`.
    Boundary {
        /// The LSN a restart may resume from.
        lsn: u64,
        /// This boundary ends the initial snapshot.
        ends_snapshot: bool,
    },
}

/// A transaction boundary in the record stream.
#[derive(Debug, Clone)]
struct Boundary {
    /// The tables with records since the previous boundary, each with the offset after its
    /// last record before this one: the boundary is durable once all of those are.
    tables: Vec<(Arc<str>, i64)>,
    lsn: u64,
    ends_snapshot: bool,
}

/// What the source, its committer and the reader share.
#[derive(Debug)]
struct Progress {
    tracker: Arc<AckTracker>,
    /// Boundaries not yet confirmed, oldest first.
    boundaries: Mutex<VecDeque<Boundary>>,
    /// The LSN confirmed as durable: the slot's flush position.
    confirmed: AtomicU64,
    /// Set once the boundary ending the snapshot is durable.
    snapshot_durable: AtomicBool,
    /// Wakes the status sender when `confirmed` moved.
    confirmed_moved: Notify,
    /// Why the reader gave up, once it did.
    failure: Mutex<Option<String>>,
}

impl Progress {
    /// Moves the confirmed position past every transaction durable in every sink, and wakes
    /// the status sender when it moved. Cheap and safe to call at any time.
    fn confirm_durable(&self) {
        let mut boundaries = self.boundaries.lock().expect("progress lock poisoned");
        let mut confirmed = None;
        while let Some(boundary) = boundaries.front() {
            if !self.durable(boundary) {
                break;
            }
            let boundary = boundaries.pop_front().expect("a front boundary");
            confirmed = Some(boundary.lsn);
            if boundary.ends_snapshot {
                self.snapshot_durable.store(true, Ordering::Release);
            }
        }
        drop(boundaries);
        if let Some(lsn) = confirmed {
            let previous = self.confirmed.fetch_max(lsn, Ordering::AcqRel);
            if lsn > previous {
                self.confirmed_moved.notify_one();
            }
        }
    }

    fn new(tracker: Arc<AckTracker>) -> Arc<Self> {
        Arc::new(Progress {
            tracker,
            boundaries: Mutex::new(VecDeque::new()),
            confirmed: AtomicU64::new(0),
            snapshot_durable: AtomicBool::new(false),
            confirmed_moved: Notify::new(),
            failure: Mutex::new(None),
        })
    }

    /// Whether every record before `boundary` is durable in every sink. Earlier boundaries
    /// were confirmed first, so the tables written since the previous one are all to check.
    fn durable(&self, boundary: &Boundary) -> bool {
        boundary.tables.iter().all(|(topic, next_offset)| {
            let acks = self.tracker.get(&(topic.clone(), 0));
            acks.is_some_and(|acks| acks.oldest_in_flight().is_none_or(|oldest| oldest >= *next_offset))
        })
    }
}

/// Confirms to the server the end of the last transaction durable in every sink.
struct EmbeddedCommitter {
    progress: Arc<Progress>,
}

impl Committer for EmbeddedCommitter {
    fn commit(&self) {
        self.progress.confirm_durable();
    }
}

/// PostgreSQL logical replication as a [`Source`].
pub struct EmbeddedSource {
    items: mpsc::Receiver<Item>,
    progress: Arc<Progress>,
    /// Per table: the offset of its next record.
    next_offsets: HashMap<Arc<str>, i64>,
    /// Per table written since the last boundary: the offset after its last record.
    since_boundary: HashMap<Arc<str>, i64>,
    /// A record held back while its partition is announced.
    held: Option<SourceRecord>,
    /// Table partitions whose lanes are full: while any is, the whole stream waits.
    paused: Mutex<HashSet<PartitionKey>>,
    pause: watch::Sender<bool>,
    reader: tokio::task::JoinHandle<()>,
}

impl EmbeddedSource {
    /// Connects, prepares the publication and slot, and starts reading. Fails when the
    /// database cannot be reached or refuses the setup; later failures are retried by the
    /// reader, and halt the pipeline through `health` once `max_retries` is spent.
    pub async fn start(
        settings: EmbeddedSettings,
        tracker: Arc<AckTracker>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let progress = Progress::new(tracker);
        let (sender, items) = mpsc::channel(READ_AHEAD);
        let (pause, paused) = watch::channel(false);
        let prepared = reader::Reader::prepare(settings, progress.clone(), health.clone(), metrics).await?;
        let reader = tokio::spawn(prepared.run(sender, paused));
        Ok(Self::over(items, progress, pause, reader))
    }

    fn over(
        items: mpsc::Receiver<Item>,
        progress: Arc<Progress>,
        pause: watch::Sender<bool>,
        reader: tokio::task::JoinHandle<()>,
    ) -> Self {
        EmbeddedSource {
            items,
            progress,
            next_offsets: HashMap::new(),
            since_boundary: HashMap::new(),
            held: None,
            paused: Mutex::new(HashSet::new()),
            pause,
            reader,
        }
    }

    /// Gives a record the next offset of its table.
    fn number(&mut self, mut record: SourceRecord) -> SourceRecord {
        let next = self.next_offsets.entry(record.topic.clone()).or_insert(0);
        record.offset = *next;
        *next += 1;
        self.since_boundary.insert(record.topic.clone(), *next);
        record
    }
}

impl Source for EmbeddedSource {
    async fn next(&mut self) -> SourceEvent {
        if let Some(record) = self.held.take() {
            return SourceEvent::Record(self.number(record));
        }
        loop {
            let Some(item) = self.items.recv().await else {
                let failure = self.progress.failure.lock().expect("progress lock poisoned").take();
                return SourceEvent::Failed(
                    failure.unwrap_or_else(|| "the replication reader ended unexpectedly".into()),
                );
            };
            match item {
                Item::Record(record) => {
                    if !self.next_offsets.contains_key(&record.topic) {
                        // A table's first record: its partition is announced first.
                        self.next_offsets.insert(record.topic.clone(), 0);
                        let partition = (record.topic.clone(), 0);
                        self.held = Some(record);
                        return SourceEvent::Assigned(vec![partition]);
                    }
                    return SourceEvent::Record(self.number(record));
                }
                Item::Boundary { lsn, ends_snapshot } => {
                    let tables: Vec<_> = self.since_boundary.drain().collect();
                    let mut boundaries = self.progress.boundaries.lock().expect("progress lock poisoned");
                    // Consecutive boundaries with nothing between them: the later one says all.
                    if let Some(last) = boundaries.back_mut()
                        && tables.is_empty()
                        && !last.ends_snapshot
                    {
                        last.lsn = last.lsn.max(lsn);
                        last.ends_snapshot = ends_snapshot;
                        continue;
                    }
                    boundaries.push_back(Boundary { tables, lsn, ends_snapshot });
                }
            }
        }
    }

    fn owns(&self, partition: &PartitionKey) -> bool {
        partition.1 == 0 && self.next_offsets.contains_key(&partition.0)
    }

    /// The stream is one ordered sequence: a full table lane holds the whole stream back.
    fn set_paused(&self, partition: &PartitionKey, paused: bool) {
        let mut set = self.paused.lock().expect("pause lock poisoned");
        if paused {
            set.insert(partition.clone());
        } else {
            set.remove(partition);
        }
        self.pause.send_replace(!set.is_empty());
    }

    fn assigned_partitions(&self) -> usize {
        self.next_offsets.len().max(1)
    }

    fn committer(&self) -> Arc<dyn Committer> {
        Arc::new(EmbeddedCommitter { progress: self.progress.clone() })
    }

    fn tick(&mut self) {}

    /// The final confirmation, then the connection closes. The status task sends a moved
    /// position at once; it gets a moment (within `deadline`) before the reader ends.
    async fn close(self, deadline: Instant) {
        self.progress.confirm_durable();
        let settle = (Instant::now() + STATUS_SETTLE).min(deadline);
        tokio::time::sleep_until(settle).await;
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str) -> Item {
        let wal = crate::event::WalPosition { commit_lsn: 1, index: 0 };
        Item::Record(SourceRecord {
            topic: Arc::from(topic),
            partition: 0,
            offset: -1,
            key: None,
            value: Some(b"{}".to_vec()),
            wal: Some(wal),
            prepared: None,
        })
    }

    async fn next_record(source: &mut EmbeddedSource) -> (String, i64) {
        loop {
            match source.next().await {
                SourceEvent::Record(record) => return (record.topic.to_string(), record.offset),
                SourceEvent::Assigned(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_slot_moves_past_a_transaction_once_its_records_of_every_table_are_durable() {
        let tracker = Arc::new(AckTracker::new(1));
        let progress = Progress::new(tracker.clone());
        let (sender, items) = mpsc::channel(16);
        let (pause, _) = watch::channel(false);
        let mut source = EmbeddedSource::over(items, progress.clone(), pause, tokio::spawn(async {}));
        for item in [record("a"), record("b"), Item::Boundary { lsn: 100, ends_snapshot: false }, record("a")]
        {
            sender.send(item).await.unwrap();
        }
        sender.send(Item::Boundary { lsn: 200, ends_snapshot: false }).await.unwrap();
        // Each table is numbered from 0, in stream order.
        let mut read = Vec::new();
        for _ in 0..3 {
            let (topic, offset) = next_record(&mut source).await;
            tracker.partition(&(Arc::from(topic.as_str()), 0)).dispatched(offset);
            read.push((topic, offset));
        }
        assert_eq!(read, [("a".into(), 0), ("b".into(), 0), ("a".into(), 1)]);
        // The last boundary is taken in when the source looks for more.
        assert!(tokio::time::timeout(Duration::from_millis(50), source.next()).await.is_err());
        let committer = source.committer();
        let (a, b) = (tracker.partition(&(Arc::from("a"), 0)), tracker.partition(&(Arc::from("b"), 0)));

        committer.commit();
        assert_eq!(progress.confirmed.load(Ordering::Acquire), 0, "nothing durable yet");
        a.ack(0, 2);
        committer.commit();
        assert_eq!(
            progress.confirmed.load(Ordering::Acquire),
            0,
            "b's record of the first transaction is not durable"
        );
        b.ack(0, 1);
        committer.commit();
        assert_eq!(progress.confirmed.load(Ordering::Acquire), 200, "both transactions are durable");
    }

    #[tokio::test]
    async fn a_full_table_holds_the_whole_stream() {
        let progress = Progress::new(Arc::new(AckTracker::new(1)));
        let (_sender, items) = mpsc::channel(1);
        let (pause, paused) = watch::channel(false);
        let source = EmbeddedSource::over(items, progress, pause, tokio::spawn(async {}));
        let (a, b) = ((Arc::from("a"), 0), (Arc::from("b"), 0));
        source.set_paused(&a, true);
        source.set_paused(&b, true);
        source.set_paused(&a, false);
        assert!(*paused.borrow(), "b is still full");
        source.set_paused(&b, false);
        assert!(!*paused.borrow());
    }
}
