//! `file-sink`: a cdc sink plugin that appends each change event as one JSON line to a file in
//! the directory the pipeline grants it (`plugin.directory`), exactly once: `flush` syncs the
//! file and records the checkpoint of each partition beside it, and a replayed event at or
//! before its partition's checkpoint is skipped. It stops a write at the first event it
//! refuses: the host settles that event (retry or DLQ) and then writes the rest again, so
//! nothing lands before an event it follows.
//!
//! Config: `{"file": "events.jsonl", "refuse_key": <id>?}`. `refuse_key` makes events whose key
//! `id` equals it fail as poison, so that tests can see a record refused on its own.
//!
//! Build: `cargo build --target wasm32-wasip2 --release`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use serde::Deserialize;
use serde_json::Value as Json;

wit_bindgen::generate!({ path: "../../wit", world: "sink" });

use cdc::plugin::host::{self, Level};
use cdc::plugin::types::{Batch, ConfigParam, ErrorClass, PluginError, PluginInfo, RecordError};
use exports::cdc::plugin::writer::Guest;

/// Where a granted directory appears inside the sandbox (the host's default mount).
const MOUNT: &str = "/data";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_file")]
    file: String,
    refuse_key: Option<i64>,
}

fn default_file() -> String {
    "events.jsonl".into()
}

/// The open file and what has been made durable, per `topic/partition`.
struct State {
    config: Config,
    out: BufWriter<File>,
    /// The last flushed position per partition (from the checkpoint file).
    flushed: BTreeMap<String, Position>,
    /// The last written position per partition since the last flush.
    written: BTreeMap<String, Position>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn error(class: ErrorClass, message: impl Into<String>) -> PluginError {
    PluginError { class, message: message.into() }
}

fn checkpoint_path(config: &Config) -> String {
    format!("{MOUNT}/{}.checkpoint", config.file)
}

/// An offset, and which of the events its record yielded (a transform may yield several).
type Position = (i64, u32);

/// Splits an event id `topic/partition/offset`, or `topic/partition/offset/n` for the n-th
/// further event of a record, into `topic/partition` and its position.
fn split_id(id: &str) -> Option<(&str, Position)> {
    let (rest, last) = id.rsplit_once('/')?;
    let last: i64 = last.parse().ok()?;
    if rest.matches('/').count() == 2 {
        let (partition, offset) = rest.rsplit_once('/')?;
        return Some((partition, (offset.parse().ok()?, u32::try_from(last).ok()?)));
    }
    Some((rest, (last, 0)))
}

struct Component;

impl Guest for Component {
    fn describe() -> PluginInfo {
        let param = |name: &str, kind: &str, default: Option<&str>, description: &str| ConfigParam {
            name: name.into(),
            kind: kind.into(),
            required: false,
            default_value: default.map(Into::into),
            secret: false,
            description: description.into(),
        };
        PluginInfo {
            name: "file-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "appends change events as JSON lines to a file in the granted directory".into(),
            config: vec![
                param("file", "string", Some("\"events.jsonl\""), "file name inside the granted directory"),
                param("refuse_key", "integer", None, "refuse events with this key id as poison (for tests)"),
            ],
            capabilities: vec!["files".into()],
        }
    }

    fn open(config: String) -> Result<(), PluginError> {
        let config: Config = serde_json::from_str(&config)
            .map_err(|e| error(ErrorClass::Fatal, format!("bad config: {e}")))?;
        let path = format!("{MOUNT}/{}", config.file);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| {
            error(ErrorClass::Fatal, format!("cannot open {path} (is a directory granted?): {e}"))
        })?;
        let flushed = match std::fs::read_to_string(checkpoint_path(&config)) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| error(ErrorClass::Fatal, format!("unreadable checkpoint: {e}")))?,
            Err(_) => BTreeMap::new(),
        };
        host::log(Level::Info, &format!("file-sink writing to {path}"));
        STATE.with(|state| {
            *state.borrow_mut() =
                Some(State { config, out: BufWriter::new(file), flushed, written: BTreeMap::new() })
        });
        Ok(())
    }

    fn write(records: Batch) -> Result<Vec<RecordError>, PluginError> {
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            let state = state.as_mut().ok_or_else(|| error(ErrorClass::Fatal, "write before open"))?;
            let mut refused = Vec::new();
            let mut start = 0usize;
            for (index, end) in records.ends.iter().enumerate() {
                let end = *end as usize;
                let bytes = records.data.get(start..end).unwrap_or_default();
                start = end;
                let reject = |message: String| RecordError {
                    index: index as u32,
                    error: error(ErrorClass::Poison, message),
                };
                // The first refused event ends the write: the host writes the rest again.
                let event: Json = match serde_json::from_slice(bytes) {
                    Ok(event) => event,
                    Err(e) => {
                        refused.push(reject(format!("not a JSON event: {e}")));
                        break;
                    }
                };
                if state.config.refuse_key.is_some() && event["key"]["id"].as_i64() == state.config.refuse_key
                {
                    refused.push(reject(format!("key {} is refused by configuration", event["key"]["id"])));
                    break;
                }
                let Some((partition, position)) = event["id"].as_str().and_then(split_id) else {
                    refused.push(reject("event has no `topic/partition/offset` id".into()));
                    break;
                };
                // A replay of what is already durable is skipped: delivery is exactly once.
                if state.flushed.get(partition).is_some_and(|flushed| position <= *flushed) {
                    continue;
                }
                state
                    .out
                    .write_all(bytes)
                    .and_then(|()| state.out.write_all(b"\n"))
                    .map_err(|e| error(ErrorClass::Retryable, format!("write failed: {e}")))?;
                state.written.insert(partition.to_owned(), position);
            }
            Ok(refused)
        })
    }

    fn flush(_checkpoint: String) -> Result<(), PluginError> {
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            let state = state.as_mut().ok_or_else(|| error(ErrorClass::Fatal, "flush before open"))?;
            let retryable = |e: std::io::Error| error(ErrorClass::Retryable, format!("flush failed: {e}"));
            state.out.flush().map_err(retryable)?;
            state.out.get_ref().sync_all().map_err(retryable)?;
            let mut flushed = state.flushed.clone();
            flushed.extend(std::mem::take(&mut state.written));
            let text = serde_json::to_string(&flushed).unwrap_or_default();
            // Write then rename, so that a crash leaves the old checkpoint or the new one.
            let path = checkpoint_path(&state.config);
            let staging = format!("{path}.tmp");
            std::fs::write(&staging, text)
                .and_then(|()| std::fs::rename(&staging, &path))
                .map_err(retryable)?;
            state.flushed = flushed;
            Ok(())
        })
    }

    fn health() -> Result<(), String> {
        STATE.with(|state| if state.borrow().is_some() { Ok(()) } else { Err("not open".into()) })
    }

    fn close() {
        STATE.with(|state| {
            if let Some(mut state) = state.borrow_mut().take() {
                let _ = state.out.flush();
            }
        });
    }
}

export!(Component);
