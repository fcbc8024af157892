//! `file-sink`: a cdc sink plugin, written with `cdc-sdk`, that appends each change event as one
//! JSON line (its wire form) to a file in the directory the pipeline grants it
//! (`plugin.directory`), exactly once: `flush` syncs the file and records the position of each
//! partition beside it, and a replayed event at or before its partition's flushed position is
//! skipped. It stops a write at the first event it refuses: the host settles that event (retry
//! or DLQ) and then writes the rest again, so nothing lands before an event it follows.
//!
//! Config: `{"file": "events.jsonl", "refuse_key": <id>?}`. `refuse_key` makes events whose key
//! `id` equals it fail as poison, so that tests can see a record refused on its own.
//!
//! Build: `cargo build --target wasm32-wasip2 --release`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

use cdc_sdk::prelude::*;

/// Where a granted directory appears inside the sandbox (the host's default mount).
const MOUNT: &str = "/data";

/// An offset, and which of the events its record yielded (a transform may yield several).
type Position = (i64, u32);

/// The open file and what has been made durable, per `topic/partition`.
pub struct FileSink {
    checkpoint_path: String,
    refuse_key: Option<i64>,
    out: BufWriter<File>,
    /// The last flushed position per partition (from the checkpoint file).
    flushed: BTreeMap<String, Position>,
    /// The last written position per partition since the last flush.
    written: BTreeMap<String, Position>,
}

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

impl FileSink {
    /// Appends one event unless it is already durable. `Ok(Some(error))` refuses it alone;
    /// `Err` fails the whole write.
    fn append(&mut self, event: &Event) -> Result<Option<Error>, Error> {
        let key_id = event.key.as_ref().and_then(|key| key.get("id")).and_then(Value::as_i64);
        if let Some(refused) = key_id.filter(|id| Some(*id) == self.refuse_key) {
            return Ok(Some(Error::poison(format!("key {refused} is refused by configuration"))));
        }
        let Some((partition, position)) = split_id(&event.id) else {
            return Ok(Some(Error::poison("event has no `topic/partition/offset` id")));
        };
        // A replay of what is already durable is skipped: delivery is exactly once.
        if self.flushed.get(partition).is_some_and(|flushed| position <= *flushed) {
            return Ok(None);
        }
        let mut line = event.to_wire();
        line.push(b'\n');
        self.out.write_all(&line).map_err(|e| Error::retryable(format!("write failed: {e}")))?;
        self.written.insert(partition.to_owned(), position);
        Ok(None)
    }
}

impl Sink for FileSink {
    fn open(config: Config) -> Result<Self, Error> {
        config.deny_unknown(&["file", "refuse_key"])?;
        let file: String = config.get_or("file", "events.jsonl".to_owned())?;
        let path = format!("{MOUNT}/{file}");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::fatal(format!("cannot open {path} (is a directory granted?): {e}")))?;
        let checkpoint_path = format!("{path}.checkpoint");
        let flushed = match std::fs::read_to_string(&checkpoint_path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Error::fatal(format!("unreadable checkpoint: {e}")))?,
            Err(_) => BTreeMap::new(),
        };
        cdc_sdk::log::info(format_args!("file-sink writing to {path}"));
        Ok(FileSink {
            checkpoint_path,
            refuse_key: config.get_opt("refuse_key")?,
            out: BufWriter::new(out),
            flushed,
            written: BTreeMap::new(),
        })
    }

    fn write(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        for (index, event) in events.iter().enumerate() {
            // The first refused event ends the write: the host writes the rest again.
            if let Some(refused) = self.append(event)? {
                return Err(SinkError::Records(vec![(index, refused)]));
            }
        }
        Ok(())
    }

    fn flush(&mut self, _checkpoint: &str) -> Result<(), Error> {
        let retryable = |e: std::io::Error| Error::retryable(format!("flush failed: {e}"));
        self.out.flush().map_err(retryable)?;
        self.out.get_ref().sync_all().map_err(retryable)?;
        let mut flushed = self.flushed.clone();
        flushed.extend(std::mem::take(&mut self.written));
        let text = serde_json::to_string(&flushed).unwrap_or_default();
        // Write then rename, so that a crash leaves the old checkpoint or the new one.
        let staging = format!("{}.tmp", self.checkpoint_path);
        std::fs::write(&staging, text)
            .and_then(|()| std::fs::rename(&staging, &self.checkpoint_path))
            .map_err(retryable)?;
        self.flushed = flushed;
        Ok(())
    }

    fn close(&mut self) {
        let _ = self.out.flush();
    }

    fn describe() -> PluginInfo {
        PluginInfo::new()
            .description("appends change events as JSON lines to a file in the granted directory")
            .param(
                ConfigParam::string("file")
                    .default_json("\"events.jsonl\"")
                    .doc("file name inside the granted directory"),
            )
            .param(
                ConfigParam::integer("refuse_key")
                    .doc("refuse events with this key id as poison (for tests)"),
            )
            .capability("files")
    }
}

cdc_sdk::export_sink!(FileSink);
