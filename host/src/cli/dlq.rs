//! `cdc dlq list|show`: the records a pipeline dead-lettered, with the headers that say why.
//! Kafka mode reads the DLQ topics outside any consumer group; embedded mode reads the JSON
//! Lines files of the DLQ directory.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use serde_json::{Map, Value as Json};

use super::ConfigArgs;
use super::progress::Progress;
use crate::config::{Config, TransportMode};
use crate::ops::peek::{self, Start};
use crate::ops::{debezium, replay};
use crate::pipeline::dlq::dlq_topic;
use crate::source::kafka;

/// How long `show` waits for more records of a DLQ topic.
const READ_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Subcommand)]
pub(super) enum DlqCommand {
    /// Counts the dead-lettered records of each source topic.
    List(ConfigArgs),
    /// Prints dead-lettered records, oldest first: where each came from, why it failed, its key
    /// and value.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// The source topic whose records to show (default: every one).
        #[arg(long)]
        topic: Option<String>,
        /// The most records to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Sends dead-lettered records back through the pipeline's transforms and sinks, in order,
    /// from where the last replay stopped: a record a sink refused goes back to that sink, one
    /// that failed before any sink to every sink. Stops at the first record that fails again.
    Replay {
        #[command(flatten)]
        config: ConfigArgs,
        /// The source topic whose records to replay (default: every one).
        #[arg(long)]
        topic: Option<String>,
        /// Replay to this sink only (with its own replay position).
        #[arg(long)]
        sink: Option<String>,
        /// The most records to replay.
        #[arg(long)]
        limit: Option<usize>,
        /// Show where the next records would go; send and commit nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

impl DlqCommand {
    pub(super) fn config(&self) -> &ConfigArgs {
        match self {
            DlqCommand::List(config)
            | DlqCommand::Show { config, .. }
            | DlqCommand::Replay { config, .. } => config,
        }
    }
}

pub(super) async fn dlq(config: &Config, command: &DlqCommand) -> Result<(), String> {
    if !config.platform.dlq.enabled {
        return Err("the pipeline's DLQ is off (`dlq.enabled: false`)".into());
    }
    let suffix = &config.platform.dlq.topic_suffix;
    let source_topics = debezium::source_topics(config);
    let embedded = config.platform.transport_mode == TransportMode::Embedded;
    let file =
        |topic: &str| config.platform.dlq.directory.join(format!("{}.jsonl", dlq_topic(topic, suffix)));
    match command {
        DlqCommand::List(_) => {
            println!("{:<10} destination", "records");
            if embedded {
                for topic in &source_topics {
                    let path = file(topic);
                    let count = lines(&path)?.map_or("none".to_owned(), |lines| lines.len().to_string());
                    println!("{count:<10} {}", path.display());
                }
            } else {
                let topics: Vec<String> =
                    source_topics.iter().map(|topic| dlq_topic(topic, suffix)).collect();
                let properties = kafka::connection_properties(&config.platform.kafka);
                for (topic, count) in peek::record_counts(&properties, &topics).await? {
                    let count = count.map_or("none".to_owned(), |count| count.to_string());
                    println!("{count:<10} {topic}");
                }
            }
        }
        DlqCommand::Replay { topic, sink, limit, dry_run, .. } => {
            let dlqs = chosen_topics(&source_topics, topic.as_ref())?
                .into_iter()
                .map(|topic| dlq_topic(topic, suffix))
                .collect();
            let store = if embedded {
                replay::DlqStore::Directory(config.platform.dlq.directory.clone())
            } else {
                replay::DlqStore::Kafka(kafka::connection_properties(&config.platform.kafka))
            };
            let request =
                replay::Request { store, dlqs, sink: sink.clone(), limit: *limit, dry_run: *dry_run };
            replay(config, &request).await?;
        }
        DlqCommand::Show { topic, limit, .. } => {
            let chosen = chosen_topics(&source_topics, topic.as_ref())?;
            if embedded {
                let mut printed = 0;
                for topic in chosen {
                    for line in lines(&file(topic))?.unwrap_or_default() {
                        if printed == *limit {
                            return Ok(());
                        }
                        println!("{line}");
                        printed += 1;
                    }
                }
            } else {
                let topics: Vec<String> = chosen.iter().map(|topic| dlq_topic(topic, suffix)).collect();
                let properties = kafka::connection_properties(&config.platform.kafka);
                for record in peek::read(&properties, &topics, Start::Beginning, *limit, READ_WAIT).await? {
                    let mut line = Map::new();
                    line.insert("dlq_topic".into(), record.topic.into());
                    line.insert("dlq_offset".into(), record.offset.into());
                    let headers =
                        record.headers.into_iter().map(|(name, value)| (name, text(value.as_deref())));
                    line.insert("headers".into(), Json::Object(headers.collect()));
                    for (name, bytes) in [("key", record.key), ("value", record.value)] {
                        line.insert(name.into(), text(bytes.as_deref()));
                    }
                    println!("{}", Json::Object(line));
                }
            }
        }
    }
    Ok(())
}

/// The source topic named, or every one of the pipeline.
fn chosen_topics<'a>(source_topics: &'a [String], topic: Option<&String>) -> Result<Vec<&'a String>, String> {
    match topic {
        Some(topic) => {
            let found = source_topics.iter().find(|source| *source == topic);
            Ok(vec![found.ok_or_else(|| format!("`{topic}` is not a source topic of the pipeline"))?])
        }
        None => Ok(source_topics.iter().collect()),
    }
}

/// Runs a replay with a progress line on a terminal, then prints what it did; `Err` when it
/// stopped at a record that failed again.
async fn replay(config: &Config, request: &replay::Request) -> Result<(), String> {
    let decoder = super::decoder(config)?;
    let progress = Progress::start("replaying");
    let report = replay::replay(config, decoder, request, |report| {
        progress.set(format!("replayed {} record(s)", report.settled));
    })
    .await;
    drop(progress);
    let report = report?;
    let verb = if request.dry_run { "would replay" } else { "replayed" };
    println!("{verb} {} record(s) from {}", report.settled, request.dlqs.join(", "));
    for (sink_id, events) in &report.delivered {
        println!("  {events} event(s) to `{sink_id}`");
    }
    if report.empty > 0 {
        println!(
            "  {} record(s) with nothing to deliver (tombstones, schema changes, filtered out)",
            report.empty
        );
    }
    if report.passed_over > 0 {
        println!("  {} record(s) left for the sinks that refused them", report.passed_over);
    }
    match report.stopped {
        Some(reason) => Err(format!("stopped at {reason}; the next replay starts at this record")),
        None => Ok(()),
    }
}

/// Bytes as text when they are UTF-8, else `base64:…`.
fn text(bytes: Option<&[u8]>) -> Json {
    match bytes {
        None => Json::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => text.into(),
            Err(_) => format!("base64:{}", BASE64.encode(bytes)).into(),
        },
    }
}

/// The lines of a DLQ file; `None` when it does not exist.
fn lines(path: &PathBuf) -> Result<Option<Vec<String>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let lines = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    Ok(Some(lines))
}
