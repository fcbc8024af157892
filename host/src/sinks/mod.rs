//! Sinks: the contract every sink implements (native or, later, wasm) and the one list of
//! built-in sinks.

pub mod wasm;
pub mod webhook;

use std::fmt;

use futures::future::BoxFuture;

use crate::error::{Classify, ErrorClass};
use crate::event::ChangeEvent;

/// A destination for change events.
///
/// Contract: the pipeline gives each sink lane (one per source partition) its own `Sink`, and
/// calls it from one task at a time. `write` receives the lane's events in source order; a sink
/// may write different keys in parallel but never one key out of order. Events count as
/// delivered only once `flush` has returned `Ok`: then, and only then, may offsets move past
/// them. After an error the pipeline may call `write` again with the events not yet accepted.
pub trait Sink: Send {
    /// Writes events in order. `Ok` lists the events refused on their own (by index in
    /// `events`, ascending), every other one was accepted; the pipeline retries or
    /// dead-letters the refused ones alone. On `Err`, `SinkError::accepted` tells how many
    /// leading events were written before the failure; the rest were not.
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<Vec<Refused>, SinkError>>;

    /// Makes every accepted event durable.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>>;
}

/// An event a sink refused on its own while accepting the others of the same write.
#[derive(Debug)]
pub struct Refused {
    /// Index of the event in the write.
    pub index: usize,
    /// Why, with its class (`accepted` is 0).
    pub error: SinkError,
}

/// A sink's failure, with its class and how far the write got.
#[derive(Debug, thiserror::Error)]
#[error("sink `{sink_id}`: {message}")]
pub struct SinkError {
    /// The sink's id in the pipeline.
    pub sink_id: String,
    /// How the pipeline should handle it.
    pub class: ErrorClass,
    /// What went wrong, with its causes.
    pub message: String,
    /// How many leading events of the write were accepted before the failure.
    pub accepted: usize,
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
}

impl fmt::Debug for dyn SinkFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SinkFactory({})", self.sink_id())
    }
}
