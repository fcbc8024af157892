//! What the export macros expand to call: plugin state, batch unpacking, per-record dispatch,
//! packing with origins and record errors. Plain Rust, so it is tested natively; only the
//! conversion to the generated WIT types ([`wasm`]) is wasm32-only. Not a public API.

use crate::{Config, Error, ErrorClass, Event, Outcome, PluginInfo, Sink, SinkError, Transform};
use cdc_event::{PackedBatch, split};

#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// The outcome of one transform call, laid out as the WIT `transformed` record.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Transformed {
    /// The output records.
    pub records: PackedBatch,
    /// Output record i came from input record `origins[i]`; ascending.
    pub origins: Vec<u32>,
    /// Input records that failed alone (always [`ErrorClass::Poison`]).
    pub errors: Vec<(u32, Error)>,
}

/// The plugin's description, with empty fields filled from Cargo metadata.
pub fn describe(info: PluginInfo, name: &str, version: &str, description: &str) -> PluginInfo {
    info.with_package_defaults(name, version, description)
}

/// `configure`: builds the transform from the config text, replacing any previous one.
pub fn configure<T: Transform>(slot: &mut Option<T>, config: &str) -> Result<(), Error> {
    *slot = None;
    *slot = Some(T::configure(Config::from_json_text(config)?)?);
    Ok(())
}

/// `transform`: runs the transform over a packed batch.
///
/// A record the SDK cannot read and a poison outcome become record errors; a retryable or fatal
/// outcome fails the whole batch with its class.
pub fn transform<T: Transform>(
    slot: &mut Option<T>,
    data: &[u8],
    ends: &[u32],
) -> Result<Transformed, Error> {
    let plugin = slot.as_mut().ok_or_else(|| Error::fatal("transform called before configure"))?;
    let records = split(data, ends)?;
    let mut out = Transformed {
        records: PackedBatch { data: Vec::with_capacity(data.len()), ends: Vec::with_capacity(ends.len()) },
        origins: Vec::with_capacity(ends.len()),
        errors: Vec::new(),
    };
    for (index, bytes) in (0u32..).zip(records) {
        let outcome = match Event::from_wire(bytes) {
            Ok(event) => plugin.transform(event),
            Err(error) => Outcome::Error(Error::poison(format!("cannot read input record: {error}"))),
        };
        match outcome {
            Outcome::Keep(event) => {
                out.records.push_with(|out| event.write_wire(out))?;
                out.origins.push(index);
            }
            Outcome::Many(events) => {
                for event in &events {
                    out.records.push_with(|out| event.write_wire(out))?;
                    out.origins.push(index);
                }
            }
            Outcome::Drop => {}
            Outcome::Error(error) if error.class == ErrorClass::Poison => out.errors.push((index, error)),
            Outcome::Error(error) => return Err(error),
        }
    }
    Ok(out)
}

/// `open`: builds the sink from the config text, replacing any previous one.
pub fn open<S: Sink>(slot: &mut Option<S>, config: &str) -> Result<(), Error> {
    if let Some(mut previous) = slot.take() {
        previous.close();
    }
    *slot = Some(S::open(Config::from_json_text(config)?)?);
    Ok(())
}

/// `write`: hands a packed batch to the sink. Returns the records that failed alone, by their
/// index in the batch: those the SDK could not read (poison) and those the sink refused.
pub fn write<S: Sink>(slot: &mut Option<S>, data: &[u8], ends: &[u32]) -> Result<Vec<(u32, Error)>, Error> {
    let sink = opened(slot, "write")?;
    let mut errors = Vec::new();
    let mut events = Vec::with_capacity(ends.len());
    let mut indexes = Vec::with_capacity(ends.len());
    for (index, bytes) in (0u32..).zip(split(data, ends)?) {
        match Event::from_wire(bytes) {
            Ok(event) => {
                events.push(event);
                indexes.push(index);
            }
            Err(error) => errors.push((index, Error::poison(format!("cannot read input record: {error}")))),
        }
    }
    if events.is_empty() {
        return Ok(errors);
    }
    match sink.write(events) {
        Ok(()) => {}
        Err(SinkError::Batch(error)) => return Err(error),
        Err(SinkError::Records(failed)) => {
            for (position, error) in failed {
                let index = indexes.get(position).ok_or_else(|| {
                    Error::fatal(format!(
                        "the sink reported an error for record {position} of a batch of {}",
                        indexes.len()
                    ))
                })?;
                errors.push((*index, error));
            }
            errors.sort_by_key(|(index, _)| *index);
        }
    }
    Ok(errors)
}

/// `flush`.
pub fn flush<S: Sink>(slot: &mut Option<S>, checkpoint: &str) -> Result<(), Error> {
    opened(slot, "flush")?.flush(checkpoint)
}

/// `health`.
pub fn health<S: Sink>(slot: &mut Option<S>) -> Result<(), String> {
    slot.as_mut().ok_or_else(|| "the sink is not open".to_owned())?.health()
}

/// `close`: closes and drops the sink.
pub fn close<S: Sink>(slot: &mut Option<S>) {
    if let Some(mut sink) = slot.take() {
        sink.close();
    }
}

fn opened<'a, S: Sink>(slot: &'a mut Option<S>, call: &str) -> Result<&'a mut S, Error> {
    slot.as_mut().ok_or_else(|| Error::fatal(format!("{call} called while the sink is not open")))
}
