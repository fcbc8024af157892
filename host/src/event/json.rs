//! The Debezium JSON form of a change event ([`to_debezium_key`], [`to_debezium_value`]): what
//! leaves the host for sinks that take JSON, the envelope `{before, after, source, op, ts_ms}` as
//! Debezium's JsonConverter writes it with `decimal.handling.mode=string`, whatever the event came
//! from. The plugin wire form is in `wire.rs`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value as Json, json};

use super::{ChangeEvent, Row, Value};

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
        "source": Json::Object(event.source.raw.to_map()),
        "op": event.op.code(),
        "ts_ms": event.ts_ms,
    })
}

fn debezium_row(row: &Row) -> Json {
    let columns = row.iter().map(|(name, value)| (name.to_owned(), debezium_value(value)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample::sample;

    #[test]
    fn debezium_form_renders_exact_decimals_and_placeholders() {
        let value = to_debezium_value(&sample());
        assert_eq!(value["op"], "u");
        assert_eq!(value["after"]["price"], "12.340");
        assert_eq!(value["after"]["doc"], UNAVAILABLE_PLACEHOLDER);
        assert_eq!(value["after"]["blob"], "AP8Q");
        assert_eq!(to_debezium_key(&sample()), json!({"id": 7}));
    }
}
