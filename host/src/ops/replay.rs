//! `cdc dlq replay`: dead-lettered records sent back through the pipeline's transforms and
//! sinks, once their cause is mended.
//!
//! - Order: each DLQ partition is replayed in order, one record at a time, each made durable
//!   before the next; the first record that fails again stops the replay, and says why.
//! - Progress: a replay reads where its consumer group (`<group_id>.dlq-replay`, one per
//!   `--sink`) committed, and commits past each record the sinks made durable, so a replay
//!   that stopped goes on from there, and one run twice sends nothing twice.
//! - Routing: a record a sink refused goes back to that sink only; one that failed before any
//!   sink (decoding, a transform) goes to every sink. `--sink` narrows that to one sink.
//! - Identity: a replayed event's position is the DLQ record's (DLQ topic, partition, offset).
//!   Sinks that store positions (PostgreSQL, Iceberg) therefore skip a record they already
//!   took from the DLQ, where its original position lies behind what they hold, and webhooks
//!   see the same idempotency id each time the record is replayed.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::decode::{Decoded, Decoder};
use crate::error::chain;
use crate::event::{ChangeEvent, Position};
use crate::ops::peek::{self, Peeked, Start};
use crate::pipeline::dlq::headers;
use crate::plugin::{PluginRuntime, PluginSettings, Transform, TransformPlugin};
use crate::sinks::{self, Sink};

/// Records read from the DLQ at a time.
const CHUNK: usize = 500;
/// How long a read waits for more records before the DLQ counts as replayed.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// What to replay.
#[derive(Debug, Clone)]
pub struct Request {
    /// The DLQ topics, in the order to replay them.
    pub dlq_topics: Vec<String>,
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
    let properties = crate::source::kafka::connection_properties(&config.platform.kafka);
    let group = match &request.sink {
        Some(sink) => format!("{}.dlq-replay.{sink}", config.platform.kafka.group_id),
        None => format!("{}.dlq-replay", config.platform.kafka.group_id),
    };
    let mut report = Report::default();
    let mut remaining = request.limit.unwrap_or(usize::MAX);
    'topics: for topic in &request.dlq_topics {
        while remaining > 0 {
            let start = Start::Committed(group.clone());
            let chunk = remaining.min(CHUNK);
            let records =
                peek::read(&properties, std::slice::from_ref(topic), start, chunk, READ_WAIT).await?;
            if records.is_empty() {
                break;
            }
            for record in records {
                if let Err(reason) = replayer.settle(&record, &mut report).await {
                    report.stopped = Some(format!(
                        "{}/{} at offset {}: {reason}",
                        record.topic, record.partition, record.offset
                    ));
                    break 'topics;
                }
                remaining -= 1;
                report.settled += 1;
                if !request.dry_run {
                    let position = [(record.topic.clone(), record.partition, record.offset + 1)];
                    peek::commit(&properties, &group, &position).await?;
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
