//! Sinks: the contract every sink implements, native or wasm, and the built-in sinks.

pub mod iceberg;
mod positions;
pub mod postgres;
pub mod wasm;
pub mod webhook;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::{SinkConfig, SinkKind};
use crate::error::{BoxError, Classify, ErrorClass};
use crate::event::ChangeEvent;
use crate::plugin::PluginRuntime;
use crate::source::acks::PartitionKey;

/// The registry of sink kinds: the factory of an enabled sink, from its validated config. A new
/// sink is a folder beside this file and one arm here. A kind this build cannot run yet is an
/// error naming the sink.
pub fn factory(
    pipeline_id: &str,
    sink: &SinkConfig,
    plugins: &PluginRuntime,
) -> anyhow::Result<Arc<dyn SinkFactory>> {
    let id = sink.sink_id.as_str();
    let factory: Arc<dyn SinkFactory> = match &sink.kind {
        SinkKind::Webhook(config) => Arc::new(
            webhook::WebhookFactory::new(id, &webhook::WebhookSettings::from_config(config))
                .map_err(|reason| anyhow::anyhow!("sink `{id}`: {reason}"))?,
        ),
        SinkKind::Wasm(config) => Arc::new(wasm::WasmSinkFactory::load(id, config, plugins)?),
        SinkKind::Postgres(config) => Arc::new(
            postgres::PostgresFactory::new(id, &postgres::PostgresSettings::from_config(pipeline_id, config))
                .map_err(|reason| anyhow::anyhow!("sink `{id}`: {reason}"))?,
        ),
        SinkKind::Iceberg(config) => Arc::new(iceberg::IcebergFactory::new(
            id,
            &iceberg::IcebergSettings::from_config(pipeline_id, config)
                .map_err(|reason| anyhow::anyhow!("sink `{id}`: {reason}"))?,
        )),
    };
    Ok(factory)
}

/// A destination for change events.
///
/// Contract: the pipeline gives each sink lane (one per source partition) its own `Sink`, and
/// calls it from one task at a time. `write` receives the lane's events in source order; a sink
/// may write different keys in parallel but never one key out of order. Events count as
/// delivered only once `flush` has returned `Ok` (or the receipt of [`Sink::submit`] has):
/// then, and only then, may offsets move past them. After an error the pipeline calls `write`
/// again with the events not yet accepted, after settling the one the error names (retried or
/// dead-lettered), so that nothing is written before an event it follows. The lane calls
/// `open` once before the first write, `health` while a failure persists (its answer goes to
/// `/readyz`), and `close` once, last.
pub trait Sink: Send {
    /// Connects or prepares; an error is settled like a failed flush (retried when transient,
    /// halting when fatal).
    fn open(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    /// Writes events in order. On `Err`, [`SinkError::accepted`] tells how many leading events
    /// were accepted before the failure; no event after them was written (a sink that cannot
    /// take back later writes gets them again, after the failed one).
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Makes every accepted event durable.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>>;

    /// Sends `events` as one delivery to be made durable in the background, so that the lane
    /// can gather and send the next one meanwhile; the receipt resolves once it is durable.
    /// Deliveries become durable in the order sent. When one fails, so does every delivery
    /// sent after it, and nothing of them is durable: the lane then writes and flushes them
    /// again, in order. `None` (the default) when the sink does not overlap deliveries, or
    /// not these events: the lane then settles what it sent before, and writes and flushes
    /// them. Never called while a write awaits its flush; deliveries sent before may still be
    /// in flight.
    fn submit<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Option<Receipt>> {
        let _ = events;
        Box::pin(async { None })
    }

    /// The sink's own view of whether it can deliver now; `Err` says why not.
    fn health(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Releases what the sink holds (connections, a plugin instance); called once, last.
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Whether a delivery sent by [`Sink::submit`] was made durable.
pub type Receipt = BoxFuture<'static, Result<(), SinkError>>;

/// A sink's failure, with its class, how far the write got and what it blames.
#[derive(Debug, thiserror::Error)]
#[error("sink `{sink_id}`: {source}")]
pub struct SinkError {
    /// The sink's id in the pipeline.
    pub sink_id: String,
    /// How the pipeline should handle it.
    pub class: ErrorClass,
    /// How many leading events of the write were accepted before the failure.
    pub accepted: usize,
    /// Whether the failure concerns the event at `accepted` alone (a sink that writes events
    /// one at a time knows which one failed; a batch that failed as a whole does not).
    pub names_event: bool,
    /// What went wrong.
    #[source]
    pub source: BoxError,
}

impl SinkError {
    /// A failure of the whole write (or of a flush), before any event was accepted.
    pub fn batch(sink_id: &str, class: ErrorClass, source: impl Into<BoxError>) -> Self {
        SinkError {
            sink_id: sink_id.to_owned(),
            class,
            accepted: 0,
            names_event: false,
            source: source.into(),
        }
    }

    /// The events from number `accepted` of the write on failed together (one request carried
    /// them); the events before them were accepted.
    pub fn from_event(
        sink_id: &str,
        accepted: usize,
        class: ErrorClass,
        source: impl Into<BoxError>,
    ) -> Self {
        SinkError { accepted, ..SinkError::batch(sink_id, class, source) }
    }

    /// A failure of event number `index` of the write; the events before it were accepted.
    pub fn event(sink_id: &str, index: usize, class: ErrorClass, source: impl Into<BoxError>) -> Self {
        SinkError {
            sink_id: sink_id.to_owned(),
            class,
            accepted: index,
            names_event: true,
            source: source.into(),
        }
    }
}

impl Classify for SinkError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// Builds one [`Sink`] per lane from a sink's validated config.
pub trait SinkFactory: Send + Sync {
    /// The sink's id in the pipeline.
    fn sink_id(&self) -> &str;

    /// A new sink for one lane.
    fn build(&self) -> Box<dyn Sink>;

    /// How the sink's lanes gather events into a write (by default: what has queued, up to
    /// the pipeline's batch size, without waiting).
    fn batching(&self) -> Batching {
        Batching::default()
    }

    /// Whether the sink stores its position with its data ([`SinkFactory::stored_positions`]).
    fn stores_positions(&self) -> bool {
        false
    }

    /// For a sink that stores its position with its data: the next offset it needs in each of
    /// `partitions` it ever wrote to. The source starts a partition no later than that.
    fn stored_positions<'a>(
        &'a self,
        partitions: &'a [PartitionKey],
    ) -> BoxFuture<'a, Result<HashMap<PartitionKey, i64>, String>> {
        let _ = partitions;
        Box::pin(async { Ok(HashMap::new()) })
    }
}

/// How a sink lane gathers the batches that queued for it into one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batching {
    /// The most events of one write, when above the pipeline's batch size.
    pub max_events: usize,
    /// How long the lane waits for more events once it has some (zero: it writes at once).
    pub linger: std::time::Duration,
}

impl fmt::Debug for dyn SinkFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SinkFactory({})", self.sink_id())
    }
}
