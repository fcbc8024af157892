//! The two JSON forms of a change event.
//!
//! * The **Debezium form** ([`to_debezium_key`], [`to_debezium_value`]) is what leaves the host
//!   for sinks that take JSON: the envelope `{before, after, source, op, ts_ms}` as Debezium's
//!   JsonConverter writes it with `decimal.handling.mode=string`, whatever the event came from.
//! * The **wire form** ([`to_wire`], [`from_wire`]) is how an event crosses the plugin boundary.
//!   It is lossless: JSON-native values stay native, every other type is a one-key object
//!   (`{"$decimal":"1.50"}`), so a transform's output comes back with its types intact.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value as Json, json};

use super::{ChangeEvent, Decimal, Op, Row, SourceInfo, TableId, Value};

/// What Debezium writes in place of an unchanged TOAST column.
pub const UNAVAILABLE_PLACEHOLDER: &str = "__debezium_unavailable_value";

/// The Debezium form of the event's key: an object of the key columns, or null.
pub fn to_debezium_key(event: &ChangeEvent) -> Json {
    event.key.as_ref().map_or(Json::Null, debezium_row)
}

/// The Debezium form of the event's value: the envelope without a schema.
pub fn to_debezium_value(event: &ChangeEvent) -> Json {
    json!({
        "before": event.before.as_ref().map_or(Json::Null, debezium_row),
        "after": event.after.as_ref().map_or(Json::Null, debezium_row),
        "source": Json::Object(event.source.raw.clone()),
        "op": event.op.code(),
        "ts_ms": event.ts_ms,
    })
}

fn debezium_row(row: &Row) -> Json {
    let columns = row.0.iter().map(|(name, value)| (name.clone(), debezium_value(value)));
    Json::Object(columns.collect())
}

fn debezium_value(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => json!(i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Decimal(d) => Json::String(d.as_str().to_owned()),
        Value::Text(s) | Value::TimestampTz(s) | Value::Json(s) | Value::Uuid(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(BASE64.encode(b)),
        Value::Date(days) => json!(days),
        Value::Time(micros) | Value::Timestamp(micros) => json!(micros),
        Value::Array(items) => Json::Array(items.iter().map(debezium_value).collect()),
        Value::Unavailable => Json::String(UNAVAILABLE_PLACEHOLDER.to_owned()),
    }
}

/// The wire form of an event, as plugins receive it.
pub fn to_wire(event: &ChangeEvent) -> Json {
    json!({
        "op": event.op.code(),
        "table": {
            "database": event.table.database,
            "schema": event.table.schema,
            "table": event.table.table,
        },
        "key": event.key.as_ref().map_or(Json::Null, wire_row),
        "before": event.before.as_ref().map_or(Json::Null, wire_row),
        "after": event.after.as_ref().map_or(Json::Null, wire_row),
        "source": Json::Object(event.source.raw.clone()),
        "ts_ms": event.ts_ms,
        "id": event.idempotency_id(),
    })
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
    let mut event = origin.clone();
    if let Some(op) = record.remove("op") {
        event.op = op
            .as_str()
            .and_then(Op::from_code)
            .ok_or_else(|| field_error("op", "expected one of c, u, d, r, t"))?;
    }
    if let Some(table) = record.remove("table") {
        event.table = wire_table(table)?;
    }
    for (name, slot) in [("key", &mut event.key), ("before", &mut event.before), ("after", &mut event.after)]
    {
        if let Some(row) = record.remove(name) {
            *slot = wire_optional_row(name, row)?;
        }
    }
    if let Some(source) = record.remove("source") {
        let Json::Object(raw) = source else {
            return Err(field_error("source", "expected an object"));
        };
        event.source = SourceInfo { raw, ..event.source };
    }
    if let Some(ts_ms) = record.remove("ts_ms") {
        event.ts_ms = ts_ms.as_i64();
    }
    Ok(event)
}

fn field_error(field: &str, problem: &str) -> WireError {
    WireError::Field { field: field.to_owned(), problem: problem.to_owned() }
}

fn wire_table(table: Json) -> Result<TableId, WireError> {
    let text = |value: Option<&Json>| value.and_then(Json::as_str).map(str::to_owned);
    let name = text(table.get("table")).ok_or_else(|| field_error("table.table", "expected a string"))?;
    Ok(TableId { database: text(table.get("database")), schema: text(table.get("schema")), table: name })
}

fn wire_row(row: &Row) -> Json {
    let columns = row.0.iter().map(|(name, value)| (name.clone(), wire_value(value)));
    Json::Object(columns.collect())
}

fn tagged(tag: &str, value: Json) -> Json {
    let mut object = Map::with_capacity(1);
    object.insert(tag.to_owned(), value);
    Json::Object(object)
}

fn wire_value(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => json!(i),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            // Integral floats get an explicit tag so they do not come back as integers.
            Some(number) if f.fract() != 0.0 => Json::Number(number),
            _ => tagged("$float", Json::String(f.to_string())),
        },
        Value::Text(s) => Json::String(s.clone()),
        Value::Decimal(d) => tagged("$decimal", Json::String(d.as_str().to_owned())),
        Value::Bytes(b) => tagged("$bytes", Json::String(BASE64.encode(b))),
        Value::Date(days) => tagged("$date", json!(days)),
        Value::Time(micros) => tagged("$time", json!(micros)),
        Value::Timestamp(micros) => tagged("$timestamp", json!(micros)),
        Value::TimestampTz(s) => tagged("$timestamptz", Json::String(s.clone())),
        Value::Json(s) => tagged("$json", Json::String(s.clone())),
        Value::Uuid(s) => tagged("$uuid", Json::String(s.clone())),
        Value::Array(items) => Json::Array(items.iter().map(wire_value).collect()),
        Value::Unavailable => tagged("$unavailable", Json::Bool(true)),
    }
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
    use std::sync::Arc;

    use super::*;
    use crate::event::Position;

    fn sample() -> ChangeEvent {
        let row = Row(vec![
            ("id".into(), Value::Int(7)),
            ("price".into(), Value::Decimal(Decimal::parse("12.340").unwrap())),
            ("ratio".into(), Value::Float(2.0)),
            ("blob".into(), Value::Bytes(vec![0, 255, 16])),
            ("born".into(), Value::Date(19_000)),
            ("seen".into(), Value::Timestamp(1_700_000_000_123_456)),
            ("tags".into(), Value::Array(vec![Value::Text("a".into()), Value::Null])),
            ("doc".into(), Value::Unavailable),
        ]);
        ChangeEvent {
            op: Op::Update,
            table: TableId { database: Some("db".into()), schema: Some("public".into()), table: "t".into() },
            key: Some(Row(vec![("id".into(), Value::Int(7))])),
            before: None,
            after: Some(row),
            source: SourceInfo::default(),
            ts_ms: Some(5),
            columns: None,
            position: Position::Kafka { topic: Arc::from("cdc.public.t"), partition: 0, offset: 9 },
            output_index: 0,
        }
    }

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
    fn debezium_form_renders_exact_decimals_and_placeholders() {
        let value = to_debezium_value(&sample());
        assert_eq!(value["op"], "u");
        assert_eq!(value["after"]["price"], "12.340");
        assert_eq!(value["after"]["doc"], UNAVAILABLE_PLACEHOLDER);
        assert_eq!(value["after"]["blob"], "AP8Q");
        assert_eq!(to_debezium_key(&sample()), json!({"id": 7}));
    }

    #[test]
    fn decimals_from_unscaled_bytes_keep_scale_and_sign() {
        assert_eq!(Decimal::from_unscaled_bytes(&[0x30, 0x39], 3).as_str(), "12.345");
        assert_eq!(Decimal::from_unscaled_bytes(&[0xCF, 0xC7], 2).as_str(), "-123.45");
        assert_eq!(Decimal::from_unscaled_bytes(&[0x05], 3).as_str(), "0.005");
        assert_eq!(Decimal::from_unscaled_bytes(&[0x05], 0).as_str(), "5");
        assert!(Decimal::parse("1.2.3").is_none());
    }
}
