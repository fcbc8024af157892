//! The [`Transform`] trait a transform plugin implements, and the [`Outcome`] of one event.

use crate::{Config, Error, Event, PluginInfo};

/// A transform: called once per change event, in order, with one [`Outcome`] per event.
///
/// The host builds one instance per pipeline lane: [`Transform::configure`] once, then
/// [`Transform::transform`] for every event of that lane. Instances are rebuilt after a trap and
/// batches may be retried, so an event can be seen more than once: keep the logic a function
/// of the event and the config.
///
/// A panic traps the instance; the host retries the batch on a fresh instance and then sends
/// the records that keep failing to the DLQ. Prefer returning [`Outcome::Error`].
///
/// ```
/// use cdc_sdk::prelude::*;
///
/// struct DropTest;
///
/// impl Transform for DropTest {
///     fn configure(_: Config) -> Result<Self, Error> {
///         Ok(DropTest)
///     }
///     fn transform(&mut self, event: Event) -> Outcome {
///         match event.column("status").and_then(Value::as_text) {
///             Some("test") => Outcome::Drop,
///             _ => Outcome::Keep(event),
///         }
///     }
/// }
/// cdc_sdk::export_transform!(DropTest);
///
/// let test = Event::insert("public.users", row! {"id" => 1, "status" => "test"});
/// let real = Event::insert("public.users", row! {"id" => 2, "status" => "live"});
/// let outcomes = cdc_sdk::testing::run_transform::<DropTest>(json!({}), vec![test, real.clone()]);
/// assert_eq!(outcomes, [Outcome::Drop, Outcome::Keep(real)]);
/// ```
pub trait Transform: Sized {
    /// Builds the transform from the pipeline's config for it.
    ///
    /// # Errors
    /// Refuse a bad config with [`Error::fatal`]: the pipeline does not start.
    fn configure(config: Config) -> Result<Self, Error>;

    /// Transforms one event.
    fn transform(&mut self, event: Event) -> Outcome;

    /// Describes the plugin; the default has no parameters and takes the rest from Cargo.
    fn describe() -> PluginInfo {
        PluginInfo::default()
    }
}

/// What became of one input event.
///
/// How the host handles an [`Outcome::Error`] depends on its class:
/// [`Poison`](crate::ErrorClass::Poison) sends this record to the DLQ and the rest of the batch
/// goes on; [`Retryable`](crate::ErrorClass::Retryable) fails the whole batch, which the host
/// retries with backoff; [`Fatal`](crate::ErrorClass::Fatal) fails the whole batch and halts the
/// pipeline.
// `Keep(Event)` is the common case and moves the event through unboxed; boxing it would cost an
// allocation per event and an awkward `Outcome::Keep(Box::new(event))` for authors.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Keep the event, possibly modified.
    Keep(Event),
    /// Drop it: nothing goes downstream and its offset still moves on.
    Drop,
    /// Replace it by these events, in order (none is the same as [`Outcome::Drop`]).
    Many(Vec<Event>),
    /// Fail it.
    Error(Error),
}

impl Outcome {
    /// The events this outcome sends downstream.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Outcome::Keep(event) => vec![event],
            Outcome::Many(events) => events,
            Outcome::Drop | Outcome::Error(_) => Vec::new(),
        }
    }
}

impl From<Error> for Outcome {
    fn from(error: Error) -> Self {
        Outcome::Error(error)
    }
}

impl From<Result<Event, Error>> for Outcome {
    /// `Ok` keeps the event, `Err` fails it.
    fn from(result: Result<Event, Error>) -> Self {
        result.map_or_else(Outcome::Error, Outcome::Keep)
    }
}
