//! The wire form of a change event: how it crosses the plugin boundary (`wit/types.wit`). It is
//! lossless: JSON-native values stay native, every other type is a one-key object
//! (`{"$decimal":"1.50"}`), so a transform's output comes back with its types intact.
//!
//! [`write_wire`] serializes straight into the batch buffer, with no JSON value built on the
//! way: packing is on every plugin call's path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value as Json};

use super::{ChangeEvent, Decimal, EventId, Op, Row, SourceInfo, TableId, Value};

/// Appends the wire form of `event` to `out`.
pub fn write_wire(event: &ChangeEvent, out: &mut Vec<u8>) {
    serde_json::to_writer(out, &Wire(event)).expect("serializing into memory cannot fail");
}

/// The wire form of an event as a JSON value (for tools and tests; the hot path uses
/// [`write_wire`]).
pub fn to_wire(event: &ChangeEvent) -> Json {
    serde_json::to_value(Wire(event)).expect("an event always serializes")
}

struct Wire<'a>(&'a ChangeEvent);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = serializer.serialize_map(Some(8))?;
        map.serialize_entry("op", event.op.code())?;
        map.serialize_entry("table", &WireTable(&event.table))?;
        map.serialize_entry("key", &event.key.as_ref().map(WireRow))?;
        map.serialize_entry("before", &event.before.as_ref().map(WireRow))?;
        map.serialize_entry("after", &event.after.as_ref().map(WireRow))?;
        map.serialize_entry("source", &event.source.raw)?;
        map.serialize_entry("ts_ms", &event.ts_ms)?;
        map.serialize_entry("id", &IdText(event.id()))?;
        map.end()
    }
}

struct WireTable<'a>(&'a TableId);

impl Serialize for WireTable<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("database", &self.0.database)?;
        map.serialize_entry("schema", &self.0.schema)?;
        map.serialize_entry("table", &self.0.table)?;
        map.end()
    }
}

/// Serializes the id through its `Display`, without a `String` on the way.
struct IdText<'a>(EventId<'a>);

impl Serialize for IdText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

struct WireRow<'a>(&'a Row);

impl Serialize for WireRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.0.len()))?;
        for (name, value) in &self.0.0 {
            map.serialize_entry(name, &WireValue(value))?;
        }
        map.end()
    }
}

struct WireValue<'a>(&'a Value);

impl Serialize for WireValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn tagged<S: Serializer, T: Serialize + ?Sized>(
            serializer: S,
            tag: &str,
            value: &T,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(tag, value)?;
            map.end()
        }
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            // Integral floats get an explicit tag so they do not come back as integers; so do
            // NaN and the infinities, which JSON numbers cannot hold.
            Value::Float(f) if f.is_finite() && f.fract() != 0.0 => serializer.serialize_f64(*f),
            Value::Float(f) => tagged(serializer, "$float", &f.to_string()),
            Value::Text(s) => serializer.serialize_str(s),
            Value::Decimal(d) => tagged(serializer, "$decimal", d.as_str()),
            Value::Bytes(b) => tagged(serializer, "$bytes", &BASE64.encode(b)),
            Value::Date(days) => tagged(serializer, "$date", days),
            Value::Time(micros) => tagged(serializer, "$time", micros),
            Value::Timestamp(micros) => tagged(serializer, "$timestamp", micros),
            Value::TimestampTz(s) => tagged(serializer, "$timestamptz", s),
            Value::Json(s) => tagged(serializer, "$json", s),
            Value::Uuid(s) => tagged(serializer, "$uuid", s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&WireValue(item))?;
                }
                seq.end()
            }
            Value::Unavailable => tagged(serializer, "$unavailable", &true),
        }
    }
}

/// Why a wire record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The record is not JSON.
    #[error("record is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// A field is missing or has the wrong shape.
    #[error("field `{field}`: {problem}")]
    Field {
        /// The path of the offending field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Reads a wire record produced by a plugin back into an event.
///
/// Fields the record leaves out keep the values of `origin`, the input event it was derived
/// from; the position is always the origin's, since the host owns offsets.
pub fn from_wire(bytes: &[u8], origin: &ChangeEvent) -> Result<ChangeEvent, WireError> {
    let record: Json = serde_json::from_slice(bytes).map_err(WireError::Json)?;
    let Json::Object(mut record) = record else {
        return Err(field_error("", "expected an object"));
    };
    // Only what the record leaves out is copied from the origin: rows it sends are not cloned.
    let op = match record.remove("op") {
        Some(op) => op
            .as_str()
            .and_then(Op::from_code)
            .ok_or_else(|| field_error("op", "expected one of c, u, d, r, t"))?,
        None => origin.op,
    };
    let table = match record.remove("table") {
        Some(table) => wire_table(table)?,
        None => origin.table.clone(),
    };
    let mut row = |name: &str, original: &Option<Row>| match record.remove(name) {
        Some(row) => wire_optional_row(name, row),
        None => Ok(original.clone()),
    };
    let (key, before, after) =
        (row("key", &origin.key)?, row("before", &origin.before)?, row("after", &origin.after)?);
    let source = match record.remove("source") {
        Some(Json::Object(raw)) => SourceInfo {
            connector: origin.source.connector.clone(),
            commit_ts_ms: origin.source.commit_ts_ms,
            snapshot: origin.source.snapshot,
            txid: origin.source.txid,
            lsn: origin.source.lsn,
            raw,
        },
        Some(_) => return Err(field_error("source", "expected an object")),
        None => origin.source.clone(),
    };
    let ts_ms = match record.remove("ts_ms") {
        Some(ts_ms) => ts_ms.as_i64(),
        None => origin.ts_ms,
    };
    Ok(ChangeEvent {
        op,
        table,
        key,
        before,
        after,
        source,
        ts_ms,
        columns: origin.columns.clone(),
        position: origin.position.clone(),
        output_index: origin.output_index,
    })
}

fn field_error(field: &str, problem: &str) -> WireError {
    WireError::Field { field: field.to_owned(), problem: problem.to_owned() }
}

fn wire_table(table: Json) -> Result<TableId, WireError> {
    let text = |value: Option<&Json>| value.and_then(Json::as_str).map(str::to_owned);
    let name = text(table.get("table")).ok_or_else(|| field_error("table.table", "expected a string"))?;
    Ok(TableId { database: text(table.get("database")), schema: text(table.get("schema")), table: name })
}

fn wire_optional_row(field: &str, row: Json) -> Result<Option<Row>, WireError> {
    match row {
        Json::Null => Ok(None),
        Json::Object(columns) => {
            let mut values = Vec::with_capacity(columns.len());
            for (name, value) in columns {
                let path = format!("{field}.{name}");
                values.push((name, value_from_wire(&path, value)?));
            }
            Ok(Some(Row(values)))
        }
        _ => Err(field_error(field, "expected an object or null")),
    }
}

fn value_from_wire(path: &str, value: Json) -> Result<Value, WireError> {
    Ok(match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s),
        Json::Array(items) => {
            Value::Array(items.into_iter().map(|item| value_from_wire(path, item)).collect::<Result<_, _>>()?)
        }
        Json::Object(object) => tagged_from_wire(path, object)?,
    })
}

fn tagged_from_wire(path: &str, object: Map<String, Json>) -> Result<Value, WireError> {
    let bad = |problem: &str| field_error(path, problem);
    let mut entries = object.into_iter();
    let (Some((tag, inner)), None) = (entries.next(), entries.next()) else {
        return Err(bad("an object value must have exactly one `$type` key"));
    };
    let text = || inner.as_str().map(str::to_owned).ok_or_else(|| bad(&format!("`{tag}` expects a string")));
    let int = || inner.as_i64().ok_or_else(|| bad(&format!("`{tag}` expects an integer")));
    Ok(match tag.as_str() {
        "$decimal" => Value::Decimal(Decimal::parse(&text()?).ok_or_else(|| bad("not a decimal number"))?),
        "$float" => Value::Float(text()?.parse().map_err(|_| bad("not a float"))?),
        "$bytes" => Value::Bytes(BASE64.decode(text()?).map_err(|_| bad("not base64"))?),
        "$date" => Value::Date(i32::try_from(int()?).map_err(|_| bad("date out of range"))?),
        "$time" => Value::Time(int()?),
        "$timestamp" => Value::Timestamp(int()?),
        "$timestamptz" => Value::TimestampTz(text()?),
        "$json" => Value::Json(text()?),
        "$uuid" => Value::Uuid(text()?),
        "$unavailable" => Value::Unavailable,
        other => return Err(bad(&format!("unknown value tag `{other}`"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample::sample;

    #[test]
    fn wire_form_round_trips_every_type() {
        let event = sample();
        let bytes = serde_json::to_vec(&to_wire(&event)).unwrap();
        assert_eq!(from_wire(&bytes, &event).unwrap(), event);
    }

    #[test]
    fn wire_fields_left_out_keep_the_origin() {
        let event = sample();
        let changed = from_wire(br#"{"after": {"id": 8}}"#, &event).unwrap();
        assert_eq!(changed.after, Some(Row(vec![("id".into(), Value::Int(8))])));
        assert_eq!(changed.key, event.key);
        assert_eq!(changed.position, event.position);
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
    fn floats_that_json_cannot_hold_as_numbers_are_tagged() {
        let mut event = sample();
        event.after = Some(Row(vec![
            ("half".into(), Value::Float(0.5)),
            ("nan".into(), Value::Float(f64::NAN)),
            ("big".into(), Value::Float(1e300)),
        ]));
        event.output_index = 2;
        let wire = to_wire(&event);
        assert_eq!(wire["after"]["half"], 0.5);
        assert_eq!(wire["after"]["nan"]["$float"], "NaN");
        assert_eq!(wire["id"], "cdc.public.t/0/9/2");
        let back = from_wire(&serde_json::to_vec(&wire).unwrap(), &event).unwrap();
        assert!(matches!(back.after.unwrap().get("nan"), Some(Value::Float(f)) if f.is_nan()));
    }
}
