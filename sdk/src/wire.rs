//! The wire form: how an [`Event`] crosses the plugin boundary, through the codec of the
//! `cdc-event` crate the host uses too ([`cdc_event::wire`] documents the form).
//!
//! ```
//! use cdc_sdk::{Decimal, Event, Value, row};
//!
//! let price = Decimal::parse("12.30").unwrap();
//! let event = Event::insert("public.t", row! {"price" => price, "n" => 2.0});
//! let bytes = event.to_wire();
//! assert!(String::from_utf8_lossy(&bytes).contains(r#""after":{"price":{"$decimal":"12.30"},"n":{"$float":"2"}}"#));
//! assert_eq!(Event::from_wire(&bytes).unwrap(), event);
//! ```

use cdc_event::wire::{RecordRef, SourceRef, read_record, write_record};
pub use cdc_event::wire::{WireError, write_value};
pub use cdc_event::{BatchError, PackedBatch};

use crate::event::Event;

impl Event {
    /// Reads one wire record.
    ///
    /// `op` and `table` are required; a missing `key`, `before`, `after` or `ts_ms` reads as
    /// null, a missing `source` as `{}` and a missing `id` as `""`.
    ///
    /// # Errors
    /// When the bytes are not JSON, a field has the wrong shape, a tagged value has an unknown
    /// tag or a payload of the wrong type, or a decimal is not decimal text.
    pub fn from_wire(bytes: &[u8]) -> Result<Event, WireError> {
        let record = read_record(bytes)?;
        let missing =
            |field: &str, problem: &str| WireError::Field { field: field.into(), problem: problem.into() };
        let op = record.op.ok_or_else(|| missing("op", "expected one of c, u, d, r, t"))?;
        let table = record.table.ok_or_else(|| missing("table", "expected an object"))?;
        Ok(Event {
            op,
            table,
            key: record.key.flatten(),
            before: record.before.flatten(),
            after: record.after.flatten(),
            source: record.source.unwrap_or_default(),
            ts_ms: record.ts_ms.flatten(),
            id: record.id.unwrap_or_default(),
        })
    }

    /// The event's wire record.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_wire(&mut out);
        out
    }

    /// Appends the event's wire record to `out`.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        let record = RecordRef {
            op: self.op,
            table: &self.table,
            key: self.key.as_ref(),
            before: self.before.as_ref(),
            after: self.after.as_ref(),
            source: SourceRef::Map(&self.source),
            ts_ms: self.ts_ms,
            id: &self.id,
        };
        write_record(&record, out);
    }
}

/// Packs events in their wire form (the export glue does this for plugins).
///
/// # Errors
/// When the batch outgrows the 4 GiB a packed batch can address.
pub fn pack(events: &[Event]) -> Result<PackedBatch, BatchError> {
    PackedBatch::pack(events, Event::write_wire)
}
