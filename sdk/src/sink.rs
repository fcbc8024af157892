//! The [`Sink`] trait a sink plugin implements, and the [`SinkError`] of one write.

use crate::{Config, Error, Event, PluginInfo};

/// A sink: writes batches of change events somewhere durable.
///
/// The host calls [`Sink::open`] once, then [`Sink::write`] for each batch of one lane in order,
/// then [`Sink::flush`] to make everything written so far durable. Only after `flush` returns
/// `Ok` does the host count those records as delivered and move offsets past them, so delivery
/// is at least once: use [`Event::id`] as an idempotency key where the target supports one.
///
/// Only `open` and `write` are required.
///
/// ```
/// use cdc_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Count(usize);
///
/// impl Sink for Count {
///     fn open(_: Config) -> Result<Self, Error> {
///         Ok(Count::default())
///     }
///     fn write(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
///         self.0 += events.len();
///         Ok(())
///     }
/// }
/// cdc_sdk::export_sink!(Count);
///
/// let mut sink = cdc_sdk::testing::SinkHarness::<Count>::open(json!({})).unwrap();
/// sink.write(vec![Event::truncate("t")]).unwrap();
/// assert_eq!(sink.sink().0, 1);
/// ```
pub trait Sink: Sized {
    /// Builds the sink from the pipeline's config for it.
    ///
    /// # Errors
    /// Refuse a bad config with [`Error::fatal`]; report an unreachable target as
    /// [`Error::retryable`].
    fn open(config: Config) -> Result<Self, Error>;

    /// Writes a batch, in order.
    ///
    /// # Errors
    /// [`SinkError::Batch`] when the whole batch failed; [`SinkError::Records`] when some
    /// records were refused. The host settles the first refused record (retry, then DLQ)
    /// before anything after it, then writes the records after it again: a sink may stop at
    /// the first record it refuses.
    fn write(&mut self, events: Vec<Event>) -> Result<(), SinkError>;

    /// Makes every accepted record durable. `checkpoint` is the host's position after the last
    /// written record (e.g. `topic/partition/offset`), for sinks that store it with the data.
    ///
    /// # Errors
    /// [`Error::retryable`]: the host writes the batch again and flushes again. Poison and fatal
    /// halt the pipeline, since a flush covers many records.
    fn flush(&mut self, checkpoint: &str) -> Result<(), Error> {
        let _ = checkpoint;
        Ok(())
    }

    /// Whether the sink can deliver now; `Err` says why not.
    ///
    /// # Errors
    /// When it cannot deliver.
    fn health(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Releases resources; no call follows.
    fn close(&mut self) {}

    /// Describes the plugin; the default has no parameters and takes the rest from Cargo.
    fn describe() -> PluginInfo {
        PluginInfo::default()
    }
}

/// Why a [`Sink::write`] failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkError {
    /// The whole batch failed; nothing of it counts as written.
    Batch(Error),
    /// These records failed alone, by their index in the `events` given to `write`, ascending
    /// and each once; the records before the first were accepted, the ones after it are written
    /// again. The classes go to the host as they are.
    Records(Vec<(usize, Error)>),
}

impl From<Error> for SinkError {
    fn from(error: Error) -> Self {
        SinkError::Batch(error)
    }
}
