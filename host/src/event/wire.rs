//! The wire form of a host event: how it crosses the plugin boundary (`wit/types.wit`), through
//! the codec of the `cdc-event` crate that plugins use too. The host adds what only it knows:
//! the id built from the position, and the origin event whose fields a plugin's output may
//! leave out.

use cdc_event::wire::{RecordRef, SourceRef, WireError, read_record, write_record};
use cdc_event::{BatchError, PackedBatch};
use serde_json::Value as Json;

use super::{ChangeEvent, SourceBlock, SourceInfo};

/// Appends the wire form of `event` to `out`.
pub fn write_wire(event: &ChangeEvent, out: &mut Vec<u8>) {
    let id = event.id();
    let record = RecordRef {
        op: event.op,
        table: &event.table,
        key: event.key.as_ref(),
        before: event.before.as_ref(),
        after: event.after.as_ref(),
        source: SourceRef::Text(event.source.raw.as_json_text()),
        ts_ms: event.ts_ms,
        id: &id,
    };
    write_record(&record, out);
}

/// Packs events in their wire form into one batch.
///
/// # Errors
/// When the batch outgrows the 4 GiB a packed batch can address.
pub fn pack(events: &[ChangeEvent]) -> Result<PackedBatch, BatchError> {
    PackedBatch::pack(events, write_wire)
}

/// The wire form of an event as a JSON value (for tools and tests; the hot path uses
/// [`write_wire`]).
pub fn to_wire(event: &ChangeEvent) -> Json {
    let mut bytes = Vec::new();
    write_wire(event, &mut bytes);
    serde_json::from_slice(&bytes).expect("the wire form is JSON")
}

/// Reads a wire record produced by a plugin back into an event.
///
/// Fields the record leaves out keep the values of `origin`, the input event it was derived
/// from; the position is always the origin's, since the host owns offsets.
pub fn from_wire(bytes: &[u8], origin: &ChangeEvent) -> Result<ChangeEvent, WireError> {
    let record = read_record(bytes)?;
    // Only what the record leaves out is copied from the origin: rows it sends are not cloned.
    let source = match record.source {
        Some(raw) => SourceInfo {
            connector: origin.source.connector.clone(),
            commit_ts_ms: origin.source.commit_ts_ms,
            snapshot: origin.source.snapshot,
            txid: origin.source.txid,
            lsn: origin.source.lsn,
            raw: SourceBlock::from_map(&raw),
        },
        None => origin.source.clone(),
    };
    Ok(ChangeEvent {
        op: record.op.unwrap_or(origin.op),
        table: record.table.unwrap_or_else(|| origin.table.clone()),
        key: record.key.unwrap_or_else(|| origin.key.clone()),
        before: record.before.unwrap_or_else(|| origin.before.clone()),
        after: record.after.unwrap_or_else(|| origin.after.clone()),
        source,
        ts_ms: record.ts_ms.unwrap_or(origin.ts_ms),
        columns: origin.columns.clone(),
        position: origin.position.clone(),
        output_index: origin.output_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample::sample;
    use crate::event::{Row, Value};

    #[test]
    fn wire_form_round_trips_every_type() {
        let event = sample();
        let mut bytes = Vec::new();
        write_wire(&event, &mut bytes);
        assert_eq!(from_wire(&bytes, &event).unwrap(), event);
    }

    #[test]
    fn wire_fields_left_out_keep_the_origin() {
        let event = sample();
        let changed = from_wire(br#"{"after": {"id": 8}}"#, &event).unwrap();
        assert_eq!(changed.after, Some(Row::from(vec![("id".into(), Value::Int(8))])));
        assert_eq!(changed.key, event.key);
        assert_eq!(changed.position, event.position);
    }

    #[test]
    fn a_new_source_block_keeps_what_the_host_decoded_from_the_old_one() {
        let mut event = sample();
        event.source.txid = Some(42);
        let changed = from_wire(br#"{"source": {"note": "rewritten"}}"#, &event).unwrap();
        assert_eq!(changed.source.txid, Some(42));
        assert_eq!(changed.source.raw.get("note"), Some(Json::from("rewritten")));
    }

    #[test]
    fn wire_rejects_unknown_tags_with_the_path() {
        let error = from_wire(br#"{"after": {"x": {"$money": "1"}}}"#, &sample()).unwrap_err();
        assert_eq!(error.to_string(), "field `after.x`: unknown value tag `$money`");
    }

    #[test]
    fn the_wire_form_is_pinned() {
        let mut bytes = Vec::new();
        write_wire(&sample(), &mut bytes);
        let expected = concat!(
            r#"{"op":"u","table":{"database":"db","schema":"public","table":"t"},"key":{"id":7},"before":null,"#,
            r#""after":{"id":7,"price":{"$decimal":"12.340"},"ratio":{"$float":"2"},"blob":{"$bytes":"AP8Q"},"#,
            r#""born":{"$date":19000},"seen":{"$timestamp":1700000000123456},"tags":["a",null],"#,
            r#""doc":{"$unavailable":true}},"source":{},"ts_ms":5,"id":"cdc.public.t/0/9"}"#
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn the_id_names_further_events_of_one_record() {
        let mut event = sample();
        event.output_index = 2;
        assert_eq!(to_wire(&event)["id"], "cdc.public.t/0/9/2");
    }

    #[test]
    fn packed_events_end_where_each_record_ends() {
        let events = [sample(), sample()];
        let batch = pack(&events).unwrap();
        let first = batch.record(0).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.record(1).unwrap(), first);
        assert_eq!(from_wire(first, &events[0]).unwrap(), events[0]);
    }
}
