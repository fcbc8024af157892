//! What a batch of change events writes to a table, and the Arrow record batches that carry it.
//!
//! Append mode writes every change as a row. Upsert mode keeps the last change per key: each
//! key the batch touches gets an equality delete (removing the row the table held), and a key
//! whose last change is not a delete gets its new row. A truncate in upsert mode empties the
//! table before the batch's later changes apply.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::types::{Date32Type, Time64MicrosecondType, TimestampMicrosecondType};
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, FixedSizeBinaryArray, Float32Array, Float64Array, Int32Array,
    Int64Array, LargeBinaryArray, ListArray, PrimitiveArray, RecordBatch, StringArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, TimeUnit};

use super::schema::{CDC_COMMIT_TS, CDC_OP, CDC_POSITION};
use crate::config::WriteMode;
use crate::event::{ChangeEvent, Op, Row, Value};

/// A change that cannot be written, and the event it comes from.
#[derive(Debug)]
pub(super) struct RowError {
    /// The event's index in the batch.
    pub index: usize,
    pub message: String,
}

/// One row to write: its values and the change that carries it.
pub(super) struct DataRow<'a> {
    pub index: usize,
    pub event: &'a ChangeEvent,
    pub values: Row,
}

/// What a batch writes to one table.
#[derive(Default)]
pub(super) struct Changes<'a> {
    /// Rows to add, in order.
    pub rows: Vec<DataRow<'a>>,
    /// Keys whose rows in the table are replaced or deleted (upsert), with their event's index.
    pub deleted_keys: Vec<(usize, &'a Row)>,
    /// Upsert: the table is emptied first (a truncate in the batch).
    pub truncate: bool,
}

impl<'a> Changes<'a> {
    /// The changes `events` make, by the write mode; indices are into `events`.
    pub fn of(events: &[&'a ChangeEvent], mode: WriteMode) -> Result<Self, RowError> {
        match mode {
            WriteMode::Append => Ok(Changes {
                rows: events
                    .iter()
                    .enumerate()
                    .map(|(index, &event)| DataRow { index, event, values: changed_row(event) })
                    .collect(),
                ..Changes::default()
            }),
            WriteMode::Upsert => Self::upserts(events),
        }
    }

    fn upserts(events: &[&'a ChangeEvent]) -> Result<Self, RowError> {
        // Per key, the last change of the batch.
        let mut last: HashMap<String, usize> = HashMap::new();
        let mut order: Vec<(String, usize)> = Vec::new();
        let mut truncate = false;
        let mut encoded = String::new();
        for (index, event) in events.iter().enumerate() {
            if event.op == Op::Truncate {
                truncate = true;
                last.clear();
                order.clear();
                continue;
            }
            let key = event.key.as_ref().filter(|key| !key.is_empty()).ok_or_else(|| RowError {
                index,
                message: format!(
                    "table {} has no primary key: upsert needs one (or use write_mode: append)",
                    event.table
                ),
            })?;
            encoded.clear();
            encode_key(key, &mut encoded);
            match last.get_mut(&encoded) {
                Some(slot) => *slot = index,
                None => {
                    last.insert(encoded.clone(), index);
                    order.push((encoded.clone(), index));
                }
            }
        }
        let mut changes = Changes { truncate, ..Changes::default() };
        for (key, _) in order {
            let index = last[&key];
            let event = events[index];
            changes.deleted_keys.push((index, event.key.as_ref().expect("checked above")));
            if event.op != Op::Delete {
                let values = whole_row(event).map_err(|message| RowError { index, message })?;
                changes.rows.push(DataRow { index, event, values });
            }
        }
        // Rows in the order their changes arrived.
        changes.rows.sort_by_key(|row| row.index);
        Ok(changes)
    }
}

/// A key's values as text that equals another key's exactly when the values do.
fn encode_key(key: &Row, out: &mut String) {
    for (column, value) in key.iter() {
        let _ = write!(out, "{column}\u{1f}{value:?}\u{1e}");
    }
}

/// The row a change shows in append mode: the new row, or the old one for a delete (its key
/// when the source sent no old row); unchanged TOAST values the change did not carry are taken
/// from the old row where it has them, and are null otherwise.
fn changed_row(event: &ChangeEvent) -> Row {
    let mut row = match (&event.after, &event.before, &event.key) {
        (Some(after), _, _) if event.op != Op::Delete => after.clone(),
        (_, Some(before), _) => before.clone(),
        (_, _, Some(key)) => key.clone(),
        _ => Row::new(),
    };
    fill_unavailable(&mut row, event.before.as_ref());
    for (_, value) in row.iter_mut() {
        if value.is_unavailable() {
            *value = Value::Null;
        }
    }
    row
}

/// The whole new row of an upsert. An unchanged TOAST value is taken from the old row; without
/// one the row cannot be written whole, which would lose the value the table holds.
fn whole_row(event: &ChangeEvent) -> Result<Row, String> {
    let mut row = event.after.clone().unwrap_or_default();
    fill_unavailable(&mut row, event.before.as_ref());
    if let Some((column, _)) = row.iter().find(|(_, value)| value.is_unavailable()) {
        return Err(format!(
            "column `{column}` of {} is an unchanged TOAST value the change did not carry: \
             an upsert replaces the whole row, so the source table needs REPLICA IDENTITY FULL",
            event.table
        ));
    }
    Ok(row)
}

fn fill_unavailable(row: &mut Row, before: Option<&Row>) {
    let Some(before) = before else { return };
    for (column, value) in row.iter_mut() {
        if value.is_unavailable()
            && let Some(old) = before.get(column).filter(|old| !old.is_unavailable())
        {
            *value = old.clone();
        }
    }
}

/// The record batch of `rows` in the table's Arrow schema: each column by name from the row
/// (null where the row has none), the CDC columns from the change.
pub(super) fn data_batch(schema: &Arc<ArrowSchema>, rows: &[DataRow<'_>]) -> Result<RecordBatch, RowError> {
    let positions: Vec<String> = rows.iter().map(|row| row.event.id().to_string()).collect();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let array = match field.name().as_str() {
            CDC_OP => Arc::new(StringArray::from_iter_values(rows.iter().map(|row| op_code(row.event.op))))
                as ArrayRef,
            CDC_COMMIT_TS => Arc::new(
                rows.iter()
                    .map(|row| row.event.source.commit_ts_ms.map(|ms| ms.saturating_mul(1000)))
                    .collect::<PrimitiveArray<TimestampMicrosecondType>>()
                    .with_timezone_opt(timezone(field.data_type())),
            ),
            CDC_POSITION => Arc::new(StringArray::from_iter_values(positions.iter())),
            name => {
                let values: Vec<&Value> =
                    rows.iter().map(|row| row.values.get(name).unwrap_or(&Value::Null)).collect();
                column(field, &values).map_err(|(at, message)| RowError { index: rows[at].index, message })?
            }
        };
        columns.push(array);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|error| RowError {
        index: rows.first().map_or(0, |row| row.index),
        message: error.to_string(),
    })
}

fn op_code(op: Op) -> &'static str {
    match op {
        Op::Create => "c",
        Op::Update => "u",
        Op::Delete => "d",
        Op::Read => "r",
        Op::Truncate => "t",
    }
}

fn timezone(data_type: &DataType) -> Option<Arc<str>> {
    match data_type {
        DataType::Timestamp(_, zone) => zone.clone(),
        _ => None,
    }
}

/// A column's values as an Arrow array of the field's type. An error gives the index of the
/// value at fault and names the column.
fn column(field: &Field, values: &[&Value]) -> Result<ArrayRef, (usize, String)> {
    let name = field.name();
    if !field.is_nullable()
        && let Some(at) = values.iter().position(|value| value.is_null())
    {
        return Err((at, format!("column `{name}` is required but the change has no value for it")));
    }
    array(field.data_type(), values).map_err(|(at, reason)| (at, format!("column `{name}`: {reason}")))
}

type Fault = (usize, String);

/// Converts each value with `convert` (nulls stay null); an error names the value's position.
fn each<'v, T>(
    values: &[&'v Value],
    mut convert: impl FnMut(&'v Value) -> Option<T>,
    expected: &str,
) -> Result<Vec<Option<T>>, Fault> {
    values
        .iter()
        .enumerate()
        .map(|(at, value)| match value {
            Value::Null => Ok(None),
            value => convert(value)
                .map(Some)
                .ok_or_else(|| (at, format!("{} value does not fit {expected}", value.type_name()))),
        })
        .collect()
}

fn array<'v>(data_type: &DataType, values: &[&'v Value]) -> Result<ArrayRef, Fault> {
    Ok(match data_type {
        DataType::Boolean => Arc::new(BooleanArray::from(each(values, Value::as_bool, "a boolean")?)),
        DataType::Int32 => Arc::new(Int32Array::from(each(
            values,
            |value| value.as_i64().and_then(|int| i32::try_from(int).ok()),
            "an int",
        )?)),
        DataType::Int64 => Arc::new(Int64Array::from(each(values, Value::as_i64, "a long")?)),
        DataType::Float32 => Arc::new(Float32Array::from(each(
            values,
            // Narrowing a float source column (real) back to its own width.
            |value| value.as_f64().map(|float| float as f32),
            "a float",
        )?)),
        DataType::Float64 => Arc::new(Float64Array::from(each(values, Value::as_f64, "a double")?)),
        DataType::Decimal128(precision, scale) => {
            let unscaled = each(
                values,
                |value| match value {
                    Value::Decimal(decimal) => unscaled(decimal.as_str(), *precision, *scale),
                    Value::Int(int) => unscaled(&int.to_string(), *precision, *scale),
                    _ => None,
                },
                &format!("decimal({precision}, {scale})"),
            )?;
            Arc::new(
                Decimal128Array::from(unscaled)
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|error| (0, error.to_string()))?,
            )
        }
        DataType::Date32 => Arc::new(PrimitiveArray::<Date32Type>::from(each(
            values,
            |value| match value {
                Value::Date(days) => Some(*days),
                _ => None,
            },
            "a date",
        )?)) as ArrayRef,
        DataType::Time64(TimeUnit::Microsecond) => {
            Arc::new(PrimitiveArray::<Time64MicrosecondType>::from(each(
                values,
                |value| match value {
                    Value::Time(micros) => Some(*micros),
                    _ => None,
                },
                "a time",
            )?))
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let micros = each(
                values,
                |value| match (value, zone) {
                    (Value::Timestamp(micros), None) => Some(*micros),
                    (Value::TimestampTz(text), Some(_)) => zoned_micros(text),
                    _ => None,
                },
                if zone.is_some() { "a timestamp with time zone" } else { "a timestamp" },
            )?;
            Arc::new(PrimitiveArray::<TimestampMicrosecondType>::from(micros).with_timezone_opt(zone.clone()))
        }
        DataType::Utf8 => Arc::new(StringArray::from(each(values, text, "a string")?)),
        DataType::LargeBinary => Arc::new(LargeBinaryArray::from(each(
            values,
            |value: &'v Value| match value {
                Value::Bytes(bytes) => Some(bytes.as_slice()),
                _ => None,
            },
            "binary",
        )?)),
        DataType::FixedSizeBinary(16) => {
            let uuids = each(
                values,
                |value| match value {
                    Value::Uuid(text) | Value::Text(text) => {
                        uuid::Uuid::parse_str(text).ok().map(|u| *u.as_bytes())
                    }
                    _ => None,
                },
                "a uuid",
            )?;
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(uuids.into_iter(), 16)
                    .map_err(|error| (0, error.to_string()))?,
            )
        }
        DataType::List(element) => {
            let mut lengths = Vec::with_capacity(values.len());
            let mut items: Vec<&Value> = Vec::new();
            for (at, value) in values.iter().enumerate() {
                match value {
                    Value::Null => lengths.push(0),
                    Value::Array(array) => {
                        lengths.push(array.len());
                        items.extend(array.iter());
                    }
                    other => return Err((at, format!("{} value does not fit a list", other.type_name()))),
                }
            }
            // An element's fault is reported against the first row; the message names it.
            let children = array(element.data_type(), &items)
                .map_err(|(_, reason)| (0, format!("an element: {reason}")))?;
            let nulls = values.iter().map(|value| !value.is_null()).collect::<Vec<bool>>();
            Arc::new(
                ListArray::try_new(
                    element.clone(),
                    OffsetBuffer::<i32>::from_lengths(lengths),
                    children,
                    Some(NullBuffer::from(nulls)),
                )
                .map_err(|error| (0, error.to_string()))?,
            )
        }
        other => return Err((0, format!("Arrow type {other} is not written by this sink"))),
    })
}

/// A value as the text of a string column: text, JSON, a UUID, or a decimal's exact text.
fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Text(text) | Value::Json(text) | Value::Uuid(text) => Some(text),
        Value::Decimal(decimal) => Some(decimal.as_str()),
        _ => None,
    }
}

/// A timestamp with zone (ISO-8601 with an offset) as microseconds since the epoch, UTC.
fn zoned_micros(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|time| time.timestamp_micros())
}

/// A decimal's text as its unscaled value at `scale`, when it has no more fractional digits
/// than that and no more digits in all than `precision`.
fn unscaled(text: &str, precision: u8, scale: i8) -> Option<i128> {
    let scale = usize::try_from(scale).ok()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale || whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() + scale > usize::from(precision) {
        return None;
    }
    let mut value: i128 = 0;
    for digit in whole.chars().chain(fraction.chars()).chain(std::iter::repeat_n('0', scale - fraction.len()))
    {
        value = value.checked_mul(10)?.checked_add(i128::from(digit.to_digit(10)?))?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_every_digit_or_are_refused() {
        assert_eq!(unscaled("12.34", 10, 2), Some(1234));
        assert_eq!(unscaled("-0.5", 10, 3), Some(-500));
        assert_eq!(unscaled("7", 5, 2), Some(700));
        assert_eq!(unscaled("1.2300", 5, 2), Some(123));
        // A digit the scale cannot hold, or more digits than the precision.
        assert_eq!(unscaled("1.234", 10, 2), None);
        assert_eq!(unscaled("123456", 5, 0), None);
        assert_eq!(unscaled("1e5", 10, 0), None);
        assert_eq!(unscaled("", 10, 0), None);
    }

    #[test]
    fn zoned_timestamps_are_read_as_utc_microseconds() {
        assert_eq!(zoned_micros("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(zoned_micros("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(zoned_micros("yesterday"), None);
    }
}
