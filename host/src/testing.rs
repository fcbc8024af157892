//! Test doubles for the pipeline's lanes (feature `test-util`): an in-memory sink that can be
//! scripted to fail, an in-memory DLQ that can be made unavailable, a native transform, and
//! builders for source records and events, and an Avro binary writer for hand-made records. Not real components: they stand in only where a
//! test looks at the lanes' own logic (retry, split, order, acks), never for a destination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use crate::error::{BoxError, ErrorClass};
use crate::event::{ChangeEvent, Op, Position, Row, SourceInfo, TableId, Value};
use crate::pipeline::dlq::{DeadLetterQueue, Failure};
use crate::plugin::{PluginError, Transform, TransformOutput};
use crate::sinks::{Batching, Receipt, Sink, SinkError, SinkFactory};
use crate::source::SourceRecord;

/// The key id of a test event (its `id` column).
pub fn key_id(event: &ChangeEvent) -> i64 {
    match event.key.as_ref().and_then(|key| key.get("id")) {
        Some(Value::Int(id)) => *id,
        _ => panic!("test events have an integer `id` key"),
    }
}

/// An insert of row `id` into `shop.public.t`, at `offset` of `topic[partition]`.
pub fn event(topic: &str, partition: i32, offset: i64, id: i64) -> ChangeEvent {
    let row =
        Row::from(vec![("id".into(), Value::Int(id)), ("note".into(), Value::Text(format!("row {id}")))]);
    ChangeEvent {
        op: Op::Create,
        table: TableId { database: Some("shop".into()), schema: Some("public".into()), table: "t".into() },
        key: Some(Row::from(vec![("id".into(), Value::Int(id))])),
        before: None,
        after: Some(row),
        source: SourceInfo::default(),
        ts_ms: Some(1),
        columns: None,
        position: Position::Kafka { topic: Arc::from(topic), partition, offset },
        output_index: 0,
    }
}

/// A Debezium JSON record (no schema) of an insert of row `id`, at `offset` of
/// `topic[partition]`.
pub fn record(topic: &str, partition: i32, offset: i64, id: i64) -> SourceRecord {
    let value = json!({
        "before": null,
        "after": {"id": id, "note": format!("row {id}")},
        "source": {"connector": "postgresql", "db": "shop", "schema": "public", "table": "t"},
        "op": "c",
        "ts_ms": 1,
    });
    SourceRecord {
        topic: Arc::from(topic),
        partition,
        offset,
        key: Some(json!({"id": id}).to_string().into_bytes()),
        value: Some(value.to_string().into_bytes()),
        wal: None,
        prepared: None,
    }
}

/// A record that cannot be decoded, at `offset` of `topic[partition]`.
pub fn garbage(topic: &str, partition: i32, offset: i64) -> SourceRecord {
    SourceRecord {
        topic: Arc::from(topic),
        partition,
        offset,
        key: None,
        value: Some(b"{not json".to_vec()),
        wal: None,
        prepared: None,
    }
}

/// How a [`ScriptedSink`] fails on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The class of the failure.
    pub class: ErrorClass,
    /// Whether the sink names the event (`SinkError::names_event`) or fails the whole write.
    pub names_event: bool,
}

/// Decides, for an event and how often the sink has seen its id so far (1 the first time),
/// whether it fails.
pub type Script = dyn Fn(&ChangeEvent, u32) -> Option<Fault> + Send + Sync;

/// What a [`ScriptedSink`] saw, shared by every sink its factory built.
#[derive(Debug, Default)]
pub struct SinkLog {
    /// Ids of the events accepted by writes, in the order they were written.
    pub written: Vec<String>,
    /// Ids made durable by flushes, in order.
    pub durable: Vec<String>,
    /// Size of every write call.
    pub writes: Vec<usize>,
    /// Size of every delivery sent by `submit`.
    pub submits: Vec<usize>,
    /// How many flushes failed on purpose.
    pub failed_flushes: u32,
    /// How many sinks were opened.
    pub opened: u32,
    /// How many sinks were closed.
    pub closed: u32,
}

/// A sink in memory that fails as its script says: a write stops at the first event the
/// script fails (or, like a wasm plugin, writes the others first when `writes_past_refusal`).
pub struct ScriptedSink {
    settings: ScriptedSinkFactory,
    /// How often each event id was given to a write.
    seen: HashMap<String, u32>,
    /// Ids written since the last flush.
    pending: Vec<String>,
    /// Whether a delivery sent by `submit` failed since the last write.
    submit_failed: bool,
}

/// Builds [`ScriptedSink`]s that share one [`SinkLog`] and one script.
#[derive(Clone)]
pub struct ScriptedSinkFactory {
    sink_id: String,
    script: Arc<Script>,
    writes_past_refusal: bool,
    /// Whether it overlaps deliveries (`submit`).
    overlapping: bool,
    flush_failures: Arc<Mutex<u32>>,
    /// While set, writes wait (a stalled destination).
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    /// How long every write takes.
    write_delay: Duration,
    batching: Batching,
    log: Arc<Mutex<SinkLog>>,
}

impl ScriptedSinkFactory {
    /// A sink that accepts everything.
    pub fn reliable(sink_id: &str) -> Self {
        Self::scripted(sink_id, |_, _| None)
    }

    /// A sink that fails as `script` says.
    pub fn scripted(
        sink_id: &str,
        script: impl Fn(&ChangeEvent, u32) -> Option<Fault> + Send + Sync + 'static,
    ) -> Self {
        ScriptedSinkFactory {
            sink_id: sink_id.to_owned(),
            script: Arc::new(script),
            writes_past_refusal: false,
            overlapping: false,
            flush_failures: Arc::default(),
            gate: Arc::new(tokio::sync::watch::channel(false).0),
            write_delay: Duration::ZERO,
            batching: Batching::default(),
            log: Arc::default(),
        }
    }

    /// Lanes gather events for this sink as `batching` says.
    pub fn with_batching(mut self, batching: Batching) -> Self {
        self.batching = batching;
        self
    }

    /// Writes the events after a refused one before reporting the refusal, as the sink world's
    /// `write` does.
    pub fn writing_past_refusal(mut self) -> Self {
        self.writes_past_refusal = true;
        self
    }

    /// Takes deliveries by `submit`: one with an event the script fails fails, and so does
    /// every one sent after it until the next write; the others are durable once their
    /// receipt is awaited.
    pub fn overlapping(mut self) -> Self {
        self.overlapping = true;
        self
    }

    /// Every write takes `delay`.
    pub fn with_write_delay(mut self, delay: Duration) -> Self {
        self.write_delay = delay;
        self
    }

    /// The next `count` flushes fail transiently (and lose what was written since the last one).
    pub fn fail_flushes(&self, count: u32) {
        *self.flush_failures.lock().expect("flush failures") = count;
    }

    /// Stalls (true) or releases (false) every write.
    pub fn set_stalled(&self, stalled: bool) {
        self.gate.send_replace(stalled);
    }

    /// What the sinks saw.
    pub fn log(&self) -> MutexGuard<'_, SinkLog> {
        self.log.lock().expect("sink log")
    }
}

impl SinkFactory for ScriptedSinkFactory {
    fn sink_id(&self) -> &str {
        &self.sink_id
    }

    fn build(&self) -> Box<dyn Sink> {
        Box::new(ScriptedSink {
            settings: self.clone(),
            seen: HashMap::new(),
            pending: Vec::new(),
            submit_failed: false,
        })
    }

    fn batching(&self) -> Batching {
        self.batching
    }
}

impl Sink for ScriptedSink {
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let mut gate = self.settings.gate.subscribe();
            let _ = gate.wait_for(|stalled| !stalled).await;
            if !self.settings.write_delay.is_zero() {
                tokio::time::sleep(self.settings.write_delay).await;
            }
            self.settings.log().writes.push(events.len());
            self.submit_failed = false;
            let mut refusal = None;
            let mut accepted = Vec::new();
            for (index, event) in events.iter().enumerate() {
                let id = event.idempotency_id();
                let seen = self.seen.entry(id.clone()).or_default();
                *seen += 1;
                match (refusal.is_some(), (self.settings.script)(event, *seen)) {
                    (false, Some(fault)) if !fault.names_event => {
                        let error: BoxError = format!("the batch failed at {id}").into();
                        return Err(SinkError::batch(&self.settings.sink_id, fault.class, error));
                    }
                    (false, Some(fault)) => {
                        refusal = Some((index, fault.class, id));
                        if !self.settings.writes_past_refusal {
                            break;
                        }
                    }
                    (true, Some(_)) => {}
                    (_, None) => accepted.push(id),
                }
            }
            self.settings.log().written.extend(accepted.iter().cloned());
            self.pending.extend(accepted);
            match refusal {
                None => Ok(()),
                Some((index, class, id)) => {
                    Err(SinkError::event(&self.settings.sink_id, index, class, format!("refused {id}")))
                }
            }
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let mut failures = self.settings.flush_failures.lock().expect("flush failures");
            if *failures > 0 {
                *failures -= 1;
                self.pending.clear();
                self.settings.log().failed_flushes += 1;
                return Err(SinkError::batch(
                    &self.settings.sink_id,
                    ErrorClass::TRANSIENT,
                    "the flush failed",
                ));
            }
            drop(failures);
            let flushed = std::mem::take(&mut self.pending);
            self.settings.log().durable.extend(flushed);
            Ok(())
        })
    }

    fn submit<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Option<Receipt>> {
        Box::pin(async move {
            if !self.settings.overlapping {
                return None;
            }
            self.settings.log().submits.push(events.len());
            let mut ids = Vec::with_capacity(events.len());
            for event in events {
                let id = event.idempotency_id();
                let seen = self.seen.entry(id.clone()).or_default();
                *seen += 1;
                self.submit_failed |= (self.settings.script)(event, *seen).is_some();
                ids.push(id);
            }
            let (failed, log, sink_id) =
                (self.submit_failed, self.settings.log.clone(), self.settings.sink_id.clone());
            let receipt: Receipt = Box::pin(async move {
                if failed {
                    return Err(SinkError::batch(&sink_id, ErrorClass::TRANSIENT, "the delivery failed"));
                }
                log.lock().expect("sink log").durable.extend(ids);
                Ok(())
            });
            Some(receipt)
        })
    }

    fn open(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            self.settings.log().opened += 1;
            Ok(())
        })
    }

    fn health(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { Err("failing as its script says".to_owned()) })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.settings.log().closed += 1;
        })
    }
}

/// A DLQ in memory; it can be made unavailable.
#[derive(Default)]
pub struct MemoryDlq {
    records: Mutex<Vec<(SourceRecord, Failure)>>,
    unavailable: std::sync::atomic::AtomicBool,
    attempts: std::sync::atomic::AtomicU32,
}

impl MemoryDlq {
    /// Refuses (true) or accepts (false) writes.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, std::sync::atomic::Ordering::Release);
    }

    /// The offsets of the records it holds, in the order they came.
    pub fn offsets(&self) -> Vec<i64> {
        self.records.lock().expect("dlq").iter().map(|(record, _)| record.offset).collect()
    }

    /// The failures it holds, in order.
    pub fn failures(&self) -> Vec<Failure> {
        self.records.lock().expect("dlq").iter().map(|(_, failure)| failure.clone()).collect()
    }

    /// How many writes were tried, refused ones included.
    pub fn attempts(&self) -> u32 {
        self.attempts.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl DeadLetterQueue for MemoryDlq {
    fn destination(&self, source_topic: &str) -> String {
        format!("memory:{source_topic}.dlq")
    }

    fn write<'a>(
        &'a self,
        record: &'a SourceRecord,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            if self.unavailable.load(std::sync::atomic::Ordering::Acquire) {
                return Err("the DLQ is unavailable".into());
            }
            self.records.lock().expect("dlq").push((record.clone(), failure.clone()));
            Ok(())
        })
    }
}

/// What a [`NativeTransform`] does with one event.
#[derive(Debug, Clone)]
pub enum Step {
    /// Emits these events (none: drops it).
    Emit(Vec<ChangeEvent>),
    /// Refuses it with this class (`poison`, `retryable`, `fatal` in WIT terms).
    Refuse(ErrorClass),
    /// Traps the whole call.
    Trap,
}

/// A transform in plain Rust, with a per-event step and an output limit like a plugin's.
pub struct NativeTransform {
    name: String,
    step: Box<dyn FnMut(&ChangeEvent) -> Step + Send>,
    /// Most output events one call may return (`max_output_bytes`, counted in events).
    pub max_output: usize,
    /// Size of every call.
    pub calls: Arc<Mutex<Vec<usize>>>,
}

impl NativeTransform {
    /// A transform named `name` that applies `step` to each event.
    pub fn new(name: &str, step: impl FnMut(&ChangeEvent) -> Step + Send + 'static) -> Self {
        NativeTransform {
            name: name.to_owned(),
            step: Box::new(step),
            max_output: usize::MAX,
            calls: Arc::default(),
        }
    }
}

impl Transform for NativeTransform {
    fn name(&self) -> &str {
        &self.name
    }

    fn transform(&mut self, events: &[ChangeEvent]) -> Result<TransformOutput, PluginError> {
        self.calls.lock().expect("calls").push(events.len());
        let mut output = TransformOutput::default();
        for (origin, event) in events.iter().enumerate() {
            match (self.step)(event) {
                Step::Emit(emitted) => output.events.extend(emitted.into_iter().map(|event| (origin, event))),
                Step::Refuse(class) => output.record_errors.push((
                    origin,
                    PluginError::Returned {
                        plugin: self.name.clone(),
                        call: "transform",
                        class,
                        message: format!("refused offset {}", event.position),
                    },
                )),
                Step::Trap => {
                    return Err(PluginError::Trap {
                        plugin: self.name.clone(),
                        call: "transform",
                        reason: "unreachable executed".into(),
                    });
                }
            }
        }
        if output.events.len() > self.max_output {
            return Err(PluginError::OutputTooLarge {
                plugin: self.name.clone(),
                call: "transform",
                bytes: output.events.len(),
                limit: self.max_output,
            });
        }
        Ok(output)
    }
}

/// The Avro binary encoding, for building records by hand (decoder tests, benchmarks).
pub mod avro {
    /// A zig-zag varint: an `int`, a `long`, a length, a union branch.
    pub fn long(value: i64) -> Vec<u8> {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        let mut out = Vec::new();
        loop {
            let byte = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// `bytes`: the length, then the bytes.
    pub fn bytes(data: &[u8]) -> Vec<u8> {
        [long(data.len() as i64), data.to_vec()].concat()
    }

    /// A `string`.
    pub fn string(text: &str) -> Vec<u8> {
        bytes(text.as_bytes())
    }

    /// Branch 1 of a `["null", T]` union holding `encoded`.
    pub fn some(encoded: Vec<u8>) -> Vec<u8> {
        [long(1), encoded].concat()
    }
}
