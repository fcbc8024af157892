//! Native test helpers: run a [`Transform`] or a [`Sink`] without wasm, through the same wire
//! form and batch glue the component uses, and read recorded events from JSON Lines.
//!
//! ```
//! use cdc_sdk::prelude::*;
//! use cdc_sdk::testing;
//!
//! struct Upper;
//! impl Transform for Upper {
//!     fn configure(_: Config) -> Result<Self, Error> {
//!         Ok(Upper)
//!     }
//!     fn transform(&mut self, mut event: Event) -> Outcome {
//!         for row in event.rows_mut() {
//!             for (_, value) in row.iter_mut() {
//!                 if let Value::Text(text) = value {
//!                     *text = text.to_uppercase();
//!                 }
//!             }
//!         }
//!         Outcome::Keep(event)
//!     }
//! }
//!
//! let events = testing::parse_jsonl(r#"
//! {"op":"c","table":{"database":null,"schema":"public","table":"t"},"key":null,"before":null,"after":{"name":"ada"},"source":{},"ts_ms":1,"id":"t/0/1"}
//! "#);
//! let output = testing::transform_batch::<Upper>(json!({}), &events).unwrap();
//! assert_eq!(output.events[0].1.column("name"), Some(&Value::from("ADA")));
//! ```

use crate::log::Level;
use crate::wire;
use crate::{Config, Error, Event, Outcome, Sink, Transform, glue};

/// Configures a transform as the host would, from a JSON config.
///
/// # Errors
/// What [`Transform::configure`] returns.
pub fn configure<T: Transform>(config: serde_json::Value) -> Result<T, Error> {
    T::configure(Config::from(config))
}

/// Configures `T` and runs it over `events`, one [`Outcome`] per event.
///
/// Each input goes through the wire form first, so the plugin sees what it would see in wasm.
///
/// # Panics
/// When `configure` fails (use [`configure`] to test config errors), or when the plugin panics.
pub fn run_transform<T: Transform>(config: serde_json::Value, events: Vec<Event>) -> Vec<Outcome> {
    let mut plugin = configure::<T>(config).unwrap_or_else(|error| panic!("configure failed: {error}"));
    events.into_iter().map(|event| plugin.transform(wire_round_trip(&event))).collect()
}

/// What one batch through the transform glue produced, read back as the host reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutput {
    /// Output events, each with the index of the input it came from.
    pub events: Vec<(usize, Event)>,
    /// Inputs that failed alone (poison), by index.
    pub errors: Vec<(usize, Error)>,
}

/// Configures `T` and runs one packed batch through the exact glue of the component: unpacking,
/// per-record dispatch, packing with origins, error classes.
///
/// # Errors
/// A failed `configure`, or an error that fails the whole batch (a retryable or fatal outcome).
pub fn transform_batch<T: Transform>(
    config: serde_json::Value,
    events: &[Event],
) -> Result<BatchOutput, Error> {
    let mut slot = None;
    glue::configure::<T>(&mut slot, &config.to_string())?;
    let input = wire::pack(events)?;
    let output = glue::transform(&mut slot, &input.data, &input.ends)?;
    let records = output.records.records()?;
    let events = output
        .origins
        .iter()
        .zip(records)
        .map(|(origin, bytes)| {
            let event =
                Event::from_wire(bytes).unwrap_or_else(|error| panic!("output is not wire JSON: {error}"));
            (*origin as usize, event)
        })
        .collect();
    let errors = output.errors.into_iter().map(|(index, error)| (index as usize, error)).collect();
    Ok(BatchOutput { events, errors })
}

/// A sink driven natively through the same glue as the component.
///
/// ```
/// use cdc_sdk::prelude::*;
/// use cdc_sdk::testing::SinkHarness;
///
/// struct RejectDeletes;
/// impl Sink for RejectDeletes {
///     fn open(_: Config) -> Result<Self, Error> {
///         Ok(RejectDeletes)
///     }
///     fn write(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
///         let failed: Vec<_> = (0..events.len())
///             .filter(|i| events[*i].op == Op::Delete)
///             .map(|i| (i, Error::poison("deletes are not supported")))
///             .collect();
///         if failed.is_empty() { Ok(()) } else { Err(SinkError::Records(failed)) }
///     }
/// }
///
/// let mut sink = SinkHarness::<RejectDeletes>::open(json!({})).unwrap();
/// let errors = sink.write(vec![Event::insert("t", row! {"id" => 1}), Event::delete("t", row! {"id" => 1})]);
/// assert_eq!(errors.unwrap(), [(1, Error::poison("deletes are not supported"))]);
/// sink.flush("topic/0/2").unwrap();
/// sink.close();
/// ```
pub struct SinkHarness<S> {
    slot: Option<S>,
}

impl<S: Sink> SinkHarness<S> {
    /// Opens the sink with a JSON config, as the host's `open` does.
    ///
    /// # Errors
    /// What [`Sink::open`] returns.
    pub fn open(config: serde_json::Value) -> Result<Self, Error> {
        let mut slot = None;
        glue::open::<S>(&mut slot, &config.to_string())?;
        Ok(SinkHarness { slot })
    }

    /// Writes a batch through the packed form. Returns the records that failed alone.
    ///
    /// # Errors
    /// An error of the whole batch.
    pub fn write(&mut self, events: Vec<Event>) -> Result<Vec<(usize, Error)>, Error> {
        let input = wire::pack(&events)?;
        let errors = glue::write(&mut self.slot, &input.data, &input.ends)?;
        Ok(errors.into_iter().map(|(index, error)| (index as usize, error)).collect())
    }

    /// Flushes.
    ///
    /// # Errors
    /// What [`Sink::flush`] returns.
    pub fn flush(&mut self, checkpoint: &str) -> Result<(), Error> {
        glue::flush(&mut self.slot, checkpoint)
    }

    /// Asks for health.
    ///
    /// # Errors
    /// What [`Sink::health`] returns.
    pub fn health(&mut self) -> Result<(), String> {
        glue::health(&mut self.slot)
    }

    /// Closes the sink; [`SinkHarness::sink`] panics afterwards.
    pub fn close(&mut self) {
        glue::close(&mut self.slot);
    }

    /// The sink, to inspect its state.
    ///
    /// # Panics
    /// After [`SinkHarness::close`].
    pub fn sink(&self) -> &S {
        self.slot.as_ref().expect("the sink is closed")
    }

    /// The sink, mutably.
    ///
    /// # Panics
    /// After [`SinkHarness::close`].
    pub fn sink_mut(&mut self) -> &mut S {
        self.slot.as_mut().expect("the sink is closed")
    }
}

/// The event as a plugin receives it after the trip through the wire form.
///
/// # Panics
/// When the event does not survive the trip (a bad decimal).
pub fn wire_round_trip(event: &Event) -> Event {
    Event::from_wire(&event.to_wire())
        .unwrap_or_else(|error| panic!("event does not survive the wire: {error}"))
}

/// Reads events from JSON Lines in the wire form, e.g. `include_str!("../events.jsonl")`.
/// Blank lines and lines starting with `#` or `//` are skipped.
///
/// # Panics
/// On a line that is not a wire record, naming the line.
pub fn parse_jsonl(text: &str) -> Vec<Event> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#') && !line.starts_with("//")
        })
        .map(|(number, line)| {
            Event::from_wire(line.as_bytes()).unwrap_or_else(|error| panic!("line {}: {error}", number + 1))
        })
        .collect()
}

/// Takes the lines logged on this thread so far through [`crate::log`].
pub fn take_logs() -> Vec<(Level, String)> {
    crate::log::imp::LOGS.with_borrow_mut(std::mem::take)
}

/// The value of a counter on this thread (0 if never added to).
pub fn counter(name: &str) -> u64 {
    crate::log::imp::COUNTERS.with_borrow(|counters| counters.get(name).copied().unwrap_or(0))
}
