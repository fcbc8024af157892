//! The wire form: how an [`Event`] crosses the plugin boundary (documented in `wit/types.wit`,
//! written by the host's `event::json::to_wire`), and the packed batches that carry it.
//!
//! A record is one JSON object:
//!
//! ```text
//! {"op": "c"|"u"|"d"|"r"|"t",
//!  "table": {"database": string|null, "schema": string|null, "table": string},
//!  "key": row|null, "before": row|null, "after": row|null,
//!  "source": {...}, "ts_ms": int|null, "id": "topic/partition/offset"}
//! ```
//!
//! A row is an object of column name to value. Null, booleans, integers, non-integral floats and
//! text are plain JSON; every other type is a one-key object: `{"$decimal": "12.30"}`,
//! `{"$float": "1"}` (an integral or non-finite float), `{"$bytes": "<base64>"}`,
//! `{"$date": days}`, `{"$time": micros}`, `{"$timestamp": micros}`,
//! `{"$timestamptz": "<iso-8601>"}`, `{"$json": "<text>"}`, `{"$uuid": "<text>"}`,
//! `{"$unavailable": true}`; arrays are arrays.
//!
//! ```
//! use cdc_sdk::{Event, Value, row};
//!
//! let event = Event::insert("public.t", row! {"price" => Value::Decimal("12.30".into()), "n" => 2.0});
//! let bytes = event.to_wire();
//! assert!(String::from_utf8_lossy(&bytes).contains(r#""after":{"price":{"$decimal":"12.30"},"n":{"$float":"2"}}"#));
//! assert_eq!(Event::from_wire(&bytes).unwrap(), event);
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json};

use crate::event::{Event, Op, Row, TableId, Value};

/// Why a wire record could not be read (or, for decimals, written).
#[derive(Debug)]
pub enum WireError {
    /// The record is not JSON.
    Json(serde_json::Error),
    /// A field is missing or has the wrong shape.
    Field {
        /// The path of the offending field, such as `after.price`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Json(error) => write!(f, "record is not valid JSON: {error}"),
            WireError::Field { field, problem } => write!(f, "field `{field}`: {problem}"),
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::Json(error) => Some(error),
            WireError::Field { .. } => None,
        }
    }
}

fn field_error(field: &str, problem: impl Into<String>) -> WireError {
    WireError::Field { field: field.to_owned(), problem: problem.into() }
}

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
        let record: Json = serde_json::from_slice(bytes).map_err(WireError::Json)?;
        Event::from_wire_json(record)
    }

    /// Reads one wire record that is already parsed as JSON. See [`Event::from_wire`].
    ///
    /// # Errors
    /// As [`Event::from_wire`].
    pub fn from_wire_json(record: Json) -> Result<Event, WireError> {
        let Json::Object(mut record) = record else {
            return Err(field_error("", "expected an object"));
        };
        let op = record
            .remove("op")
            .as_ref()
            .and_then(Json::as_str)
            .and_then(Op::from_code)
            .ok_or_else(|| field_error("op", "expected one of c, u, d, r, t"))?;
        let table = wire_table(record.remove("table").unwrap_or(Json::Null))?;
        let mut event = Event::new(op, table);
        for (name, slot) in
            [("key", &mut event.key), ("before", &mut event.before), ("after", &mut event.after)]
        {
            if let Some(row) = record.remove(name) {
                *slot = row_from_wire(name, row)?;
            }
        }
        match record.remove("source") {
            None | Some(Json::Null) => {}
            Some(Json::Object(source)) => event.source = source,
            Some(_) => return Err(field_error("source", "expected an object")),
        }
        event.ts_ms = record.remove("ts_ms").as_ref().and_then(Json::as_i64);
        match record.remove("id") {
            None | Some(Json::Null) => {}
            Some(Json::String(id)) => event.id = id,
            Some(_) => return Err(field_error("id", "expected a string")),
        }
        Ok(event)
    }

    /// The event's wire record.
    ///
    /// This never fails; a [`Value::Decimal`] that is not decimal text is written as it is and
    /// refused by the host, so check with [`Event::validate`] first (the export glue does).
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_wire(&mut out);
        out
    }

    /// Appends the event's wire record to `out`.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("serializing an event into memory cannot fail");
    }

    /// Checks that the host will read this event back: every [`Value::Decimal`] must be decimal
    /// text (`-12.340`, `7`).
    ///
    /// # Errors
    /// Names the first offending field, such as `after.price`.
    pub fn validate(&self) -> Result<(), WireError> {
        for (name, row) in [("key", &self.key), ("before", &self.before), ("after", &self.after)] {
            for (column, value) in row.iter().flat_map(Row::iter) {
                validate_value(value).map_err(|problem| field_error(&format!("{name}.{column}"), problem))?;
            }
        }
        Ok(())
    }
}

fn validate_value(value: &Value) -> Result<(), String> {
    match value {
        Value::Decimal(text) if !is_decimal(text) => Err(format!("`{text}` is not a decimal number")),
        Value::Array(items) => items.iter().try_for_each(validate_value),
        _ => Ok(()),
    }
}

/// Whether `text` is decimal text as the host accepts it: `-`? digits (`.` digits*)?
pub(crate) fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())
}

fn wire_table(table: Json) -> Result<TableId, WireError> {
    let Json::Object(mut table) = table else {
        return Err(field_error("table", "expected an object"));
    };
    let mut text = |field: &str| match table.remove(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => Ok(Some(text)),
        Some(_) => Err(field_error(&format!("table.{field}"), "expected a string or null")),
    };
    let database = text("database")?;
    let schema = text("schema")?;
    let table = text("table")?.ok_or_else(|| field_error("table.table", "expected a string"))?;
    Ok(TableId { database, schema, table })
}

fn row_from_wire(field: &str, row: Json) -> Result<Option<Row>, WireError> {
    match row {
        Json::Null => Ok(None),
        Json::Object(columns) => {
            let mut row = Row::new();
            for (name, value) in columns {
                let value = value_from_wire(&format!("{field}.{name}"), value)?;
                row.push(name, value);
            }
            Ok(Some(row))
        }
        _ => Err(field_error(field, "expected an object or null")),
    }
}

/// Reads one column value of the wire form; `path` names it in errors.
///
/// # Errors
/// On an object that is not a known one-key tag with a payload of the right type.
pub fn value_from_wire(path: &str, value: Json) -> Result<Value, WireError> {
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
    let text = || match &inner {
        Json::String(text) => Ok(text.clone()),
        _ => Err(bad(&format!("`{tag}` expects a string"))),
    };
    let int = || inner.as_i64().ok_or_else(|| bad(&format!("`{tag}` expects an integer")));
    Ok(match tag.as_str() {
        "$decimal" => {
            let text = text()?;
            if !is_decimal(&text) {
                return Err(bad("not a decimal number"));
            }
            Value::Decimal(text)
        }
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

impl Serialize for Event {
    /// Writes the wire form, field for field as the host's `to_wire` does.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Table<'a>(&'a TableId);
        impl Serialize for Table<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("database", &self.0.database)?;
                map.serialize_entry("schema", &self.0.schema)?;
                map.serialize_entry("table", &self.0.table)?;
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(8))?;
        map.serialize_entry("op", self.op.code())?;
        map.serialize_entry("table", &Table(&self.table))?;
        map.serialize_entry("key", &self.key)?;
        map.serialize_entry("before", &self.before)?;
        map.serialize_entry("after", &self.after)?;
        map.serialize_entry("source", &self.source)?;
        map.serialize_entry("ts_ms", &self.ts_ms)?;
        map.serialize_entry("id", &self.id)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads the wire form (see [`Event::from_wire`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = Json::deserialize(deserializer)?;
        Event::from_wire_json(record).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Row {
    /// Writes the row as an object of wire values, in column order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (column, value) in self.iter() {
            map.serialize_entry(column, value)?;
        }
        map.end()
    }
}

impl Serialize for Value {
    /// Writes the wire value: plain JSON or a one-key `{"$tag": payload}` object.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn tagged<S: Serializer, T: Serialize + ?Sized>(
            serializer: S,
            tag: &str,
            payload: &T,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(tag, payload)?;
            map.end()
        }
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            // Integral floats get an explicit tag so they do not come back as integers, and
            // non-finite ones have no JSON number.
            Value::Float(f) if f.is_finite() && f.fract() != 0.0 => serializer.serialize_f64(*f),
            Value::Float(f) => tagged(serializer, "$float", &f.to_string()),
            Value::Text(s) => serializer.serialize_str(s),
            Value::Decimal(d) => tagged(serializer, "$decimal", d),
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
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Unavailable => tagged(serializer, "$unavailable", &true),
        }
    }
}

/// Records packed into one buffer, as in the WIT `batch`: record i is `data[ends[i-1]..ends[i]]`.
///
/// Plugins never need this; the export glue packs and unpacks for them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackedBatch {
    /// Concatenated records.
    pub data: Vec<u8>,
    /// End offset of each record in `data`.
    pub ends: Vec<u32>,
}

impl PackedBatch {
    /// Packs events in their wire form.
    ///
    /// # Panics
    /// When the batch outgrows 4 GiB, which no host limit allows.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut batch = PackedBatch::default();
        for event in events {
            batch.push(event).expect("a packed batch fits in 4 GiB");
        }
        batch
    }

    /// Appends one event.
    ///
    /// # Errors
    /// When the buffer would outgrow the 4 GiB that `u32` offsets can address.
    pub fn push(&mut self, event: &Event) -> Result<(), crate::Error> {
        event.write_wire(&mut self.data);
        let end = u32::try_from(self.data.len()).map_err(|_| {
            crate::Error::fatal("output batch exceeds 4 GiB; the host should send smaller batches")
        })?;
        self.ends.push(end);
        Ok(())
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The records' bytes, in order.
    ///
    /// # Errors
    /// A fatal error when an end lies before the previous one or past the buffer.
    pub fn records(&self) -> Result<Vec<&[u8]>, crate::Error> {
        split(&self.data, &self.ends)
    }
}

/// Splits a packed buffer into its records.
pub(crate) fn split<'a>(data: &'a [u8], ends: &[u32]) -> Result<Vec<&'a [u8]>, crate::Error> {
    let mut start = 0;
    let mut records = Vec::with_capacity(ends.len());
    for (index, &end) in ends.iter().enumerate() {
        let end = end as usize;
        let record = data.get(start..end).ok_or_else(|| {
            crate::Error::fatal(format!(
                "malformed batch: record {index} ends at {end}, after {start}, in {} bytes",
                data.len()
            ))
        })?;
        records.push(record);
        start = end;
    }
    Ok(records)
}
