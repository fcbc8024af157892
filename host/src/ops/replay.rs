//! `cdc dlq replay`: dead-lettered records sent back through the pipeline's transforms and
//! sinks, once their cause is mended.
//!
//! - Order: each DLQ partition is replayed in order, one record at a time, each made durable
//!   before the next; the first record that fails again stops the replay, and says why.
//! - Progress: a replay goes on where the last one stopped, and moves past each record once the
//!   sinks made it durable, so one run twice sends nothing twice. A DLQ topic keeps it as the
//!   offsets of a consumer group of the replay's own (`<group_id>.dlq-replay`, one per
//!   `--sink`), committed without joining it; a DLQ file of the embedded mode as the next line
//!   to replay, in a file beside it (`<file>.replayed`, one per `--sink`).
//! - Routing: a record a sink refused goes back to that sink only; one that failed before any
//!   sink (decoding, a transform) goes to every sink. `--sink` narrows that to one sink.
//! - Identity: a replayed event's position is the DLQ record's (DLQ topic, partition, offset;
//!   for a file, its name, partition 0 and the line's index).
//!   Sinks that store positions (PostgreSQL, Iceberg) therefore skip a record they already
//!   took from the DLQ, where its original position lies behind what they hold, and webhooks
//!   see the same idempotency id each time the record is replayed.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value as Json;

use crate::config::Config;
use crate::decode::{Decoded, Decoder};
use crate::error::chain;
use crate::event::{ChangeEvent, Position};
use crate::ops::peek::{self, GroupCommitter, Peeked, Start};
use crate::pipeline::dlq::headers;
use crate::plugin::{PluginRuntime, PluginSettings, Transform, TransformPlugin};
use crate::sinks::{self, Sink};

/// Records read from the DLQ at a time.
const CHUNK: usize = 500;
/// How long a read waits for more records before the DLQ counts as replayed.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where the dead-lettered records are.
#[derive(Debug, Clone)]
pub enum DlqStore {
    /// DLQ topics, read with these client properties.
    Kafka(Vec<(String, String)>),
    /// The embedded mode's directory of `<dlq name>.jsonl` files.
    Directory(PathBuf),
}

impl DlqStore {
    /// Up to `limit` records of `dlq` from where the replays of `group` (a topic) or `suffix`
    /// (a file) went.
    async fn read(&self, dlq: &str, group: &str, suffix: &str, limit: usize) -> Result<Vec<Peeked>, String> {
        match self {
            DlqStore::Kafka(properties) => {
                let start = Start::Committed(group.to_owned());
                peek::read(properties, &[dlq.to_owned()], start, limit, READ_WAIT).await
            }
            DlqStore::Directory(directory) => {
                let file = DlqFile::new(directory, dlq, suffix);
                tokio::task::spawn_blocking(move || file.read(limit))
                    .await
                    .map_err(|error| format!("the reader stopped: {error}"))?
            }
        }
    }

    /// Where the replays of `dlq` by `group` (a topic) or `suffix` (a file) record how far they
    /// went.
    fn progress(&self, dlq: &str, group: &str, suffix: &str) -> Result<Progress, String> {
        match self {
            DlqStore::Kafka(properties) => Ok(Progress::Committed(GroupCommitter::new(properties, group)?)),
            DlqStore::Directory(directory) => Ok(Progress::File(DlqFile::new(directory, dlq, suffix))),
        }
    }
}

/// How far the replays of one DLQ went.
enum Progress {
    /// The offsets of the replay's consumer group.
    Committed(GroupCommitter),
    /// A file beside the DLQ file.
    File(DlqFile),
}

impl Progress {
    /// Moves the replays past `record`, durably.
    async fn advance(&self, record: &Peeked) -> Result<(), String> {
        let next = record.offset + 1;
        match self {
            Progress::Committed(committer) => {
                committer.commit(&[(record.topic.clone(), record.partition, next)]).await
            }
            Progress::File(file) => {
                let file = file.clone();
                tokio::task::spawn_blocking(move || file.advance(next))
                    .await
                    .map_err(|error| format!("the writer stopped: {error}"))?
            }
        }
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where the DLQs are.
    pub store: DlqStore,
    /// The DLQs (topic names, or file names without `.jsonl`), in the order to replay them.
    pub dlqs: Vec<String>,
    /// Only this sink (and the records meant for it).
    pub sink: Option<String>,
    /// At most this many records.
    pub limit: Option<usize>,
    /// Decode and transform, print where each record would go (at most one read of 500
    /// records), send and commit nothing.
    pub dry_run: bool,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Report {
    /// Records read from the DLQ and settled: delivered, or with nothing to deliver.
    pub settled: usize,
    /// Events delivered to each sink.
    pub delivered: BTreeMap<String, usize>,
    /// Records left alone: meant for another sink than `--sink`.
    pub passed_over: usize,
    /// Records that decoded to nothing to deliver (a tombstone, a schema change) or that a
    /// transform filtered out.
    pub empty: usize,
    /// Why the replay stopped before the end, naming the record.
    pub stopped: Option<String>,
}

/// The sinks and transforms of a replay, with what tells each record where to go.
struct Replayer {
    decoder: Decoder,
    transforms: Vec<Box<dyn Transform>>,
    sinks: Vec<(String, Box<dyn Sink>)>,
    /// Every enabled sink of the pipeline, replayed to or not.
    pipeline_sinks: Vec<String>,
    only: Option<String>,
    dry_run: bool,
}

/// Replays `request` through the pipeline of `config`; `on_record` is called after each record
/// (for progress).
///
/// # Errors
///
/// When the sinks, transforms or DLQ cannot be set up, or the replay's position cannot be read or
/// committed. A record failing again is not an error: it ends the replay, in [`Report::stopped`].
pub async fn replay(
    config: &Config,
    decoder: Decoder,
    request: &Request,
    mut on_record: impl FnMut(&Report),
) -> Result<Report, String> {
    let mut replayer = Replayer::new(config, decoder, request).await?;
    let suffix = request.sink.as_ref().map(|sink| format!(".{sink}")).unwrap_or_default();
    let group = format!("{}.dlq-replay{suffix}", config.platform.kafka.group_id);
    let mut report = Report::default();
    let mut remaining = request.limit.unwrap_or(usize::MAX);
    'dlqs: for dlq in &request.dlqs {
        // A dry run moves nothing, so it needs no client to commit with.
        let progress =
            (!request.dry_run).then(|| request.store.progress(dlq, &group, &suffix)).transpose()?;
        while remaining > 0 {
            let chunk = remaining.min(CHUNK);
            let records = request.store.read(dlq, &group, &suffix, chunk).await?;
            if records.is_empty() {
                break;
            }
            for record in records {
                if let Err(reason) = replayer.settle(&record, &mut report).await {
                    report.stopped = Some(format!(
                        "{}/{} at offset {}: {reason}",
                        record.topic, record.partition, record.offset
                    ));
                    break 'dlqs;
                }
                remaining -= 1;
                report.settled += 1;
                if let Some(progress) = &progress {
                    progress.advance(&record).await?;
                }
                on_record(&report);
            }
            // A dry run commits nothing, so reading again would show the same records.
            if request.dry_run {
                break;
            }
        }
    }
    replayer.close().await;
    Ok(report)
}

/// A DLQ file of the embedded mode and the file that says how far replays went.
#[derive(Clone)]
struct DlqFile {
    records: PathBuf,
    replayed: PathBuf,
    name: String,
}

impl DlqFile {
    fn new(directory: &Path, name: &str, suffix: &str) -> Self {
        DlqFile {
            records: directory.join(format!("{name}.jsonl")),
            replayed: directory.join(format!("{name}.jsonl.replayed{suffix}")),
            name: name.to_owned(),
        }
    }

    /// The index of the next line to replay.
    fn next(&self) -> Result<usize, String> {
        match std::fs::read_to_string(&self.replayed) {
            Ok(text) => text
                .trim()
                .parse()
                .map_err(|_| format!("{} does not hold a line number: {text:?}", self.replayed.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(format!("cannot read {}: {error}", self.replayed.display())),
        }
    }

    /// Up to `limit` records from the next line on; none when the file does not exist.
    fn read(&self, limit: usize) -> Result<Vec<Peeked>, String> {
        let file = match std::fs::File::open(&self.records) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(format!("cannot read {}: {error}", self.records.display())),
        };
        let mut records = Vec::new();
        for (index, line) in std::io::BufReader::new(file).lines().enumerate().skip(self.next()?).take(limit)
        {
            let at = format!("{} line {}", self.records.display(), index + 1);
            let line = line.map_err(|error| format!("cannot read {at}: {error}"))?;
            let entry: Json = serde_json::from_str(&line).map_err(|error| format!("{at}: {error}"))?;
            let headers = entry["headers"].as_object().into_iter().flatten();
            records.push(Peeked {
                topic: self.name.clone(),
                partition: 0,
                offset: i64::try_from(index).unwrap_or(i64::MAX),
                key: field_bytes(&entry, "key").map_err(|error| format!("{at}: {error}"))?,
                value: field_bytes(&entry, "value").map_err(|error| format!("{at}: {error}"))?,
                headers: headers
                    .map(|(name, value)| (name.clone(), value.as_str().map(|text| text.as_bytes().to_vec())))
                    .collect(),
            });
        }
        Ok(records)
    }

    /// Records durably that replays went up to line index `next` (written aside, then renamed).
    fn advance(&self, next: i64) -> Result<(), String> {
        let cannot = |error: std::io::Error| format!("cannot write {}: {error}", self.replayed.display());
        let aside = self.replayed.with_extension("tmp");
        let mut file = std::fs::File::create(&aside).map_err(cannot)?;
        std::io::Write::write_all(&mut file, format!("{next}\n").as_bytes()).map_err(cannot)?;
        file.sync_all().map_err(cannot)?;
        std::fs::rename(&aside, &self.replayed).map_err(cannot)
    }
}

/// A key or value of a DLQ line: text under its name, other bytes as base64 under `<name>_base64`.
fn field_bytes(entry: &Json, name: &str) -> Result<Option<Vec<u8>>, String> {
    if let Some(text) = entry[name].as_str() {
        return Ok(Some(text.as_bytes().to_vec()));
    }
    match entry[format!("{name}_base64")].as_str() {
        Some(encoded) => BASE64.decode(encoded).map(Some).map_err(|error| format!("{name}_base64: {error}")),
        None => Ok(None),
    }
}

impl Replayer {
    async fn new(config: &Config, decoder: Decoder, request: &Request) -> Result<Self, String> {
        let runtime = PluginRuntime::new().map_err(|error| chain(&error))?;
        let mut transforms: Vec<Box<dyn Transform>> = Vec::new();
        for transform in &config.pipeline.transforms {
            let settings = PluginSettings::from_config(&transform.name, &transform.plugin)
                .map_err(|error| format!("transform `{}`: {error}", transform.name))?;
            let plugin = TransformPlugin::load(&runtime, settings)
                .map_err(|error| format!("transform `{}`: {}", transform.name, chain(&error)))?;
            let instance = tokio::task::block_in_place(|| plugin.instantiate())
                .map_err(|error| format!("transform `{}`: {}", transform.name, chain(&error)))?;
            transforms.push(Box::new(instance));
        }
        let enabled: Vec<_> = config.pipeline.sinks.iter().filter(|sink| sink.enabled).collect();
        if let Some(only) = &request.sink
            && !enabled.iter().any(|sink| &sink.sink_id == only)
        {
            return Err(format!("`{only}` is not an enabled sink of the pipeline"));
        }
        let mut sinks = Vec::new();
        for sink in &enabled {
            if request.sink.as_ref().is_some_and(|only| only != &sink.sink_id) {
                continue;
            }
            let factory = sinks::factory(&config.pipeline.pipeline_id, sink, &runtime)
                .map_err(|error| format!("{error:#}"))?;
            sinks.push((sink.sink_id.clone(), factory.build()));
        }
        if !request.dry_run {
            for (sink_id, sink) in &mut sinks {
                sink.open().await.map_err(|error| format!("sink `{sink_id}`: {}", chain(&error)))?;
            }
        }
        let pipeline_sinks = enabled.iter().map(|sink| sink.sink_id.clone()).collect();
        Ok(Replayer {
            decoder,
            transforms,
            sinks,
            pipeline_sinks,
            only: request.sink.clone(),
            dry_run: request.dry_run,
        })
    }

    /// Decodes, transforms and delivers one DLQ record; `Err` says why it cannot be.
    async fn settle(&mut self, record: &Peeked, report: &mut Report) -> Result<(), String> {
        let header = |name: &str| {
            record.headers.iter().find(|(key, _)| key == name).and_then(|(_, value)| value.as_deref())
        };
        let refused_by = header(headers::SINK_ID).map(|stage| String::from_utf8_lossy(stage).into_owned());
        let known_sink = refused_by.as_ref().filter(|stage| self.is_pipeline_sink(stage));
        // A record another sink refused is that sink's to replay.
        if let (Some(only), Some(stage)) = (&self.only, known_sink)
            && only != stage
        {
            report.passed_over += 1;
            return Ok(());
        }
        let position = Position::Kafka {
            topic: record.topic.as_str().into(),
            partition: record.partition,
            offset: record.offset,
        };
        let decoded = self
            .decoder
            .decode(record.key.as_deref(), record.value.as_deref(), position)
            .await
            .map_err(|error| format!("still does not decode: {}", chain(&error)))?;
        let Decoded::Change(event) = decoded else {
            report.empty += 1;
            return Ok(());
        };
        let events = self.transform(event)?;
        if events.is_empty() {
            report.empty += 1;
            return Ok(());
        }
        let targets: Vec<usize> = (0..self.sinks.len())
            .filter(|&index| known_sink.is_none_or(|stage| &self.sinks[index].0 == stage))
            .collect();
        for index in targets {
            let (sink_id, sink) = &mut self.sinks[index];
            if self.dry_run {
                println!(
                    "would send {}/{}@{} ({} event(s), dead-lettered by {}) to `{sink_id}`",
                    record.topic,
                    record.partition,
                    record.offset,
                    events.len(),
                    refused_by.as_deref().unwrap_or("?")
                );
            } else {
                sink.write(&events).await.map_err(|error| chain(&error))?;
                sink.flush().await.map_err(|error| chain(&error))?;
            }
            *report.delivered.entry(sink_id.clone()).or_default() += events.len();
        }
        Ok(())
    }

    /// The events a record becomes after the pipeline's transforms.
    fn transform(&mut self, event: ChangeEvent) -> Result<Vec<ChangeEvent>, String> {
        let mut events = vec![event];
        for transform in &mut self.transforms {
            if events.is_empty() {
                break;
            }
            let name = transform.name().to_owned();
            let output = tokio::task::block_in_place(|| transform.transform(&events))
                .map_err(|error| format!("transform `{name}`: {}", chain(&error)))?;
            if let Some((_, error)) = output.record_errors.first() {
                return Err(format!("transform `{name}` refused it: {}", chain(error)));
            }
            events = output.events.into_iter().map(|(_, event)| event).collect();
        }
        Ok(events)
    }

    fn is_pipeline_sink(&self, stage: &str) -> bool {
        self.pipeline_sinks.iter().any(|sink_id| sink_id == stage)
    }

    async fn close(&mut self) {
        for (_, sink) in &mut self.sinks {
            sink.close().await;
        }
    }
}
