//! Debezium logical types (decimals, dates, times, timestamps, JSON, UUID), the unchanged-TOAST
//! placeholder, and the native mapping used when a message has no schema.
//!
//! Shared by every envelope decoder, JSON and Avro.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigInt;
use serde_json::{Map, Value as Json};

use super::schema::{self, ConnectSchema, integer, kind_of, text};
use super::{Error, Path};
use crate::event::{Decimal, Value};

/// What Debezium writes in place of an unchanged TOAST column (its default placeholder).
const PLACEHOLDER: &str = "__debezium_unavailable_value";
/// The placeholder as base64, how it appears in a `bytes` column.
const PLACEHOLDER_BASE64: &str = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==";
/// Set by `column.propagate.source.type`; lets a string-mode decimal be recognised.
const SOURCE_COLUMN_TYPE: &str = "__debezium.source.column.type";
/// The largest decimal scale accepted, so that a hostile scale cannot make a huge string.
const MAX_SCALE: i64 = 32_767;

/// A logical type the decoder knows, by the schema name that announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Logical {
    /// `org.apache.kafka.connect.data.Decimal`: base64 unscaled bytes, `scale` parameter.
    Decimal,
    /// `io.debezium.data.VariableScaleDecimal`: `{"scale": int32, "value": base64}`.
    VariableScaleDecimal,
    /// `io.debezium.time.Date`, `org.apache.kafka.connect.data.Date`: days since the epoch.
    Date,
    /// `io.debezium.time.Time`, `org.apache.kafka.connect.data.Time`: milliseconds of the day.
    TimeMillis,
    /// `io.debezium.time.MicroTime`.
    TimeMicros,
    /// `io.debezium.time.NanoTime`.
    TimeNanos,
    /// `io.debezium.time.Timestamp`, `org.apache.kafka.connect.data.Timestamp`: milliseconds.
    TimestampMillis,
    /// `io.debezium.time.MicroTimestamp`.
    TimestampMicros,
    /// `io.debezium.time.NanoTimestamp`.
    TimestampNanos,
    /// `io.debezium.time.ZonedTimestamp`: ISO-8601 text with offset.
    ZonedTimestamp,
    /// `io.debezium.data.Json`: the document as text.
    Json,
    /// `io.debezium.data.Uuid`: canonical text.
    Uuid,
}

impl Logical {
    /// The logical type a schema name announces, if the decoder knows it.
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "org.apache.kafka.connect.data.Decimal" => Logical::Decimal,
            "io.debezium.data.VariableScaleDecimal" => Logical::VariableScaleDecimal,
            "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => Logical::Date,
            "io.debezium.time.Time" | "org.apache.kafka.connect.data.Time" => Logical::TimeMillis,
            "io.debezium.time.MicroTime" => Logical::TimeMicros,
            "io.debezium.time.NanoTime" => Logical::TimeNanos,
            "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp" => {
                Logical::TimestampMillis
            }
            "io.debezium.time.MicroTimestamp" => Logical::TimestampMicros,
            "io.debezium.time.NanoTimestamp" => Logical::TimestampNanos,
            "io.debezium.time.ZonedTimestamp" => Logical::ZonedTimestamp,
            "io.debezium.data.Json" => Logical::Json,
            "io.debezium.data.Uuid" => Logical::Uuid,
            _ => return None,
        })
    }

    /// Types a non-null value of this logical type; `schema` supplies parameters such as `scale`.
    pub(super) fn decode(self, path: Path<'_>, schema: &ConnectSchema, value: Json) -> Result<Value, Error> {
        match self {
            Logical::Decimal => Ok(Value::Decimal(fixed_decimal(path, schema, value)?)),
            Logical::VariableScaleDecimal => Ok(Value::Decimal(variable_decimal(path, value)?)),
            _ if self.is_integer() => self.type_integer(path, integer(path, &value)?),
            _ => self.type_text(path, text(path, value)?),
        }
    }

    /// Whether values of this type are integers: dates, times and timestamps.
    pub(super) fn is_integer(self) -> bool {
        matches!(
            self,
            Logical::Date
                | Logical::TimeMillis
                | Logical::TimeMicros
                | Logical::TimeNanos
                | Logical::TimestampMillis
                | Logical::TimestampMicros
                | Logical::TimestampNanos
        )
    }

    /// Whether values of this type are text: zoned timestamps, JSON and UUIDs.
    pub(super) fn is_text(self) -> bool {
        matches!(self, Logical::ZonedTimestamp | Logical::Json | Logical::Uuid)
    }

    /// Types an integer of a date, time or timestamp type ([`Logical::is_integer`]).
    pub(super) fn type_integer(self, path: Path<'_>, value: i64) -> Result<Value, Error> {
        let micros =
            |per_unit: i64| value.checked_mul(per_unit).ok_or_else(|| path.error("time out of range"));
        Ok(match self {
            Logical::Date => Value::Date(i32::try_from(value).map_err(|_| path.error("date out of range"))?),
            Logical::TimeMillis => Value::Time(micros(1000)?),
            Logical::TimeMicros => Value::Time(micros(1)?),
            Logical::TimeNanos => Value::Time(value.div_euclid(1000)),
            Logical::TimestampMillis => Value::Timestamp(micros(1000)?),
            Logical::TimestampMicros => Value::Timestamp(micros(1)?),
            Logical::TimestampNanos => Value::Timestamp(value.div_euclid(1000)),
            _ => return Err(path.error(format!("expected a {self:?} value, found an integer"))),
        })
    }

    /// Types the text of a zoned timestamp, JSON or UUID ([`Logical::is_text`]).
    pub(super) fn type_text(self, path: Path<'_>, value: String) -> Result<Value, Error> {
        Ok(match self {
            Logical::ZonedTimestamp => Value::TimestampTz(value),
            Logical::Json => Value::Json(value),
            Logical::Uuid => Value::Uuid(value),
            _ => return Err(path.error(format!("expected a {self:?} value, found a string"))),
        })
    }
}

/// A plain `string` column: text, or a decimal sent with `decimal.handling.mode=string` when the
/// schema says the source column is numeric (only with `column.propagate.source.type`).
pub(super) fn string(numeric: bool, text: String) -> Value {
    // `NaN` and the infinities of a PostgreSQL numeric have no decimal form: they stay text.
    match Decimal::parse(&text) {
        Some(decimal) if numeric => Value::Decimal(decimal),
        _ => Value::Text(text),
    }
}

/// Whether a schema says its source column is numeric (only with `column.propagate.source.type`).
pub(super) fn is_numeric_source(schema: &ConnectSchema) -> bool {
    schema.parameter(SOURCE_COLUMN_TYPE).and_then(Json::as_str).is_some_and(|ty| {
        let ty = ty.to_ascii_uppercase();
        ty.starts_with("NUMERIC") || ty.starts_with("DECIMAL")
    })
}

/// Whether text is the unchanged-TOAST placeholder, as text or as its bytes in base64.
pub(super) fn is_placeholder_text(text: &str) -> bool {
    matches!(text, PLACEHOLDER | PLACEHOLDER_BASE64)
}

/// Whether bytes are the unchanged-TOAST placeholder (a `bytes` column's form of it).
pub(super) fn is_placeholder_bytes(bytes: &[u8]) -> bool {
    bytes == PLACEHOLDER.as_bytes()
}

/// Maps a value whose type is unknown (no schema): JSON types as they are.
///
/// Integers beyond `i64` become decimals so that they stay exact; an object with exactly an
/// integer `scale` and a base64 `value` is a `VariableScaleDecimal`; any other object is kept as
/// JSON text.
pub(super) fn native(value: Json) -> Value {
    if is_unavailable(&value) {
        return Value::Unavailable;
    }
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => {
                Value::Decimal(Decimal::from_unscaled(&u.to_string(), 0).expect("digits are a decimal"))
            }
            (None, None) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s),
        Json::Array(items) => Value::Array(items.into_iter().map(native).collect()),
        Json::Object(object) => variable_decimal_shape(&object)
            .map_or_else(|| Value::Json(Json::Object(object).to_string()), Value::Decimal),
    }
}

/// Whether a value is one of the forms of the unchanged-TOAST placeholder that Debezium's
/// PostgreSQL connector sends: the text, its bytes as base64, a one-element text or bytes array
/// of it, an integer array of its bytes (int and bigint arrays), or an hstore map of it to itself.
pub(super) fn is_unavailable(value: &Json) -> bool {
    let is_text = |v: &Json| v.as_str().is_some_and(is_placeholder_text);
    match value {
        Json::String(_) => is_text(value),
        Json::Array(items) => match items.as_slice() {
            [single] => is_text(single),
            items => {
                items.len() == PLACEHOLDER.len()
                    && items.iter().zip(PLACEHOLDER.bytes()).all(|(v, b)| v.as_u64() == Some(b.into()))
            }
        },
        Json::Object(object) => {
            object.len() == 1 && object.get(PLACEHOLDER).and_then(Json::as_str) == Some(PLACEHOLDER)
        }
        _ => false,
    }
}

/// A Connect `Decimal`: base64 of the unscaled big-endian integer, scale in the parameters.
fn fixed_decimal(path: Path<'_>, schema: &ConnectSchema, value: Json) -> Result<Decimal, Error> {
    if value.is_number() {
        // JsonConverter's decimal.format=NUMERIC: serde_json would read it through f64.
        return Err(path.error(
            "decimal sent as a JSON number would lose precision; \
             expected base64 bytes (decimal.format=BASE64)",
        ));
    }
    let scale = schema
        .decimal_scale()
        .ok_or_else(|| path.error("decimal schema has no integer `scale` parameter"))?;
    let bytes = schema::base64(path, "decimal bytes", value)?;
    decimal(path, &bytes, scale)
}

/// A Debezium `VariableScaleDecimal`: `{"scale": int32, "value": base64}`.
fn variable_decimal(path: Path<'_>, value: Json) -> Result<Decimal, Error> {
    let Json::Object(mut object) = value else {
        let found = kind_of(&value);
        return Err(path.error(format!("expected a {{scale, value}} object, found {found}")));
    };
    let scale = integer(path.field("scale"), object.get("scale").unwrap_or(&Json::Null))?;
    let value = object.remove("value").unwrap_or(Json::Null);
    let bytes = schema::base64(path.field("value"), "decimal bytes", value)?;
    decimal(path, &bytes, scale)
}

/// The `VariableScaleDecimal` shape seen without a schema, if `object` has it.
fn variable_decimal_shape(object: &Map<String, Json>) -> Option<Decimal> {
    let scale = object.get("scale")?.as_i64()?;
    let bytes = BASE64.decode(object.get("value")?.as_str()?).ok()?;
    (object.len() == 2).then(|| decimal(Path::Root(""), &bytes, scale).ok()).flatten()
}

/// A decimal from a big-endian two's-complement unscaled integer and a scale, the encoding of
/// Kafka Connect's `Decimal` and Debezium's `VariableScaleDecimal`.
pub(crate) fn decimal_from_unscaled_bytes(bytes: &[u8], scale: u32) -> Decimal {
    let mut buffer = itoa::Buffer::new();
    let big;
    let unscaled = match small_unscaled(bytes) {
        Some(unscaled) => buffer.format(unscaled),
        None => {
            big = BigInt::from_signed_bytes_be(bytes).to_string();
            &big
        }
    };
    Decimal::from_unscaled(unscaled, scale).expect("an integer's text is a decimal")
}

/// An unscaled integer of 1 to 16 bytes (every `numeric` of up to 38 digits) as an `i128`,
/// which needs no big-integer arithmetic to write.
fn small_unscaled(bytes: &[u8]) -> Option<i128> {
    let first = *bytes.first()?;
    let start = 16usize.checked_sub(bytes.len())?;
    // Two's complement: a negative number is extended with ones.
    let mut extended = [if first & 0x80 == 0 { 0 } else { 0xff }; 16];
    extended[start..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(extended))
}

/// A decimal from its unscaled bytes and a scale of either sign, refusing a hostile scale.
pub(super) fn decimal(path: Path<'_>, unscaled: &[u8], scale: i64) -> Result<Decimal, Error> {
    if !(-MAX_SCALE..=MAX_SCALE).contains(&scale) {
        return Err(path.error(format!("decimal scale {scale} is out of range")));
    }
    match u32::try_from(scale) {
        Ok(scale) => Ok(decimal_from_unscaled_bytes(unscaled, scale)),
        // A negative scale multiplies by a power of ten: append zeros (zero stays `0`).
        Err(_) => {
            let unscaled = BigInt::from_signed_bytes_be(unscaled).to_string();
            let zeros = if unscaled == "0" { 0 } else { scale.unsigned_abs() as usize };
            Decimal::parse(&format!("{unscaled}{}", "0".repeat(zeros)))
                .ok_or_else(|| path.error("not a decimal number"))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::schema::tests::{schema, typed_as};
    use super::*;
    use crate::decode::schema::typed;

    #[test]
    fn decimals_from_unscaled_bytes_keep_scale_and_sign() {
        assert_eq!(decimal_from_unscaled_bytes(&[0x30, 0x39], 3).as_str(), "12.345");
        assert_eq!(decimal_from_unscaled_bytes(&[0xCF, 0xC7], 2).as_str(), "-123.45");
        assert_eq!(decimal_from_unscaled_bytes(&[0x05], 3).as_str(), "0.005");
        assert_eq!(decimal_from_unscaled_bytes(&[0x05], 0).as_str(), "5");
        assert!(Decimal::parse("1.2.3").is_none());
    }

    #[test]
    fn small_and_big_unscaled_integers_read_alike() {
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            i128::MIN.to_be_bytes().to_vec(),
            i128::MAX.to_be_bytes().to_vec(),
            vec![0x00, 0x80],
            vec![0xff, 0x7f],
        ];
        // Lengths on both sides of 16 bytes, positive and negative.
        for length in 1..=18 {
            cases.push((0..length).map(|i| (i * 37 + 11) as u8).collect());
            cases.push((0..length).map(|i| (i * 53 + 200) as u8).collect());
        }
        for bytes in cases {
            let expected = BigInt::from_signed_bytes_be(&bytes).to_string();
            for scale in [0, 2, 40] {
                let wanted = Decimal::from_unscaled(&expected, scale).expect("a decimal");
                assert_eq!(decimal_from_unscaled_bytes(&bytes, scale), wanted, "{bytes:02x?} scale {scale}");
            }
        }
    }

    fn ok(kind: &str, name: &str, value: Json) -> Value {
        typed_as(kind, Some(name), value).expect("fits")
    }

    fn dec(text: &str) -> Value {
        Value::Decimal(Decimal::parse(text).expect("a decimal literal"))
    }

    #[test]
    fn time_units_become_micros() {
        let cases = [
            ("int64", "io.debezium.time.Timestamp", 1_500, Value::Timestamp(1_500_000)),
            ("int64", "org.apache.kafka.connect.data.Timestamp", -1, Value::Timestamp(-1_000)),
            ("int64", "io.debezium.time.NanoTimestamp", -1, Value::Timestamp(-1)),
            ("int64", "io.debezium.time.NanoTimestamp", 1_999, Value::Timestamp(1)),
            ("int32", "io.debezium.time.Time", 1_000, Value::Time(1_000_000)),
            ("int64", "io.debezium.time.NanoTime", 5_000, Value::Time(5)),
            ("int32", "org.apache.kafka.connect.data.Date", -1, Value::Date(-1)),
        ];
        for (kind, name, value, expected) in cases {
            assert_eq!(ok(kind, name, json!(value)), expected, "{name} {value}");
        }
        assert!(typed_as("int64", Some("io.debezium.time.Timestamp"), json!(i64::MAX)).is_err());
        assert!(typed_as("int32", Some("io.debezium.time.Date"), json!(i64::MAX)).is_err());
    }

    #[test]
    fn every_placeholder_form_is_unavailable() {
        let bytes: Vec<_> = PLACEHOLDER.bytes().collect();
        assert_eq!(BASE64.encode(&bytes), PLACEHOLDER_BASE64);
        for (kind, value) in [
            ("string", json!(PLACEHOLDER)),
            ("bytes", json!(PLACEHOLDER_BASE64)),
            ("array", json!([PLACEHOLDER])),
            ("array", json!([PLACEHOLDER_BASE64])),
            ("array", json!(bytes)),
            ("map", json!({PLACEHOLDER: PLACEHOLDER})),
        ] {
            let schema = schema(json!({"type": kind, "items": {"type": "int32"}}));
            let typed = typed(Path::Root("c"), &schema, value.clone()).expect("fits");
            assert_eq!(typed, Value::Unavailable, "{kind} {value}");
            assert_eq!(native(value), Value::Unavailable);
        }
        assert_eq!(ok("string", "io.debezium.data.Json", json!(PLACEHOLDER)), Value::Unavailable);
        let partial = native(json!([PLACEHOLDER, "x"]));
        assert_eq!(partial, Value::Array(vec![Value::Unavailable, Value::Text("x".into())]));
    }

    #[test]
    fn decimals_stay_exact_in_every_encoding() {
        let fixed = |scale: Json, value: &str| {
            let schema = schema(json!({
                "type": "bytes",
                "name": "org.apache.kafka.connect.data.Decimal",
                "parameters": {"scale": scale},
            }));
            typed(Path::Root("c"), &schema, json!(value))
        };
        assert_eq!(fixed(json!("2"), "Jws=").expect("fits"), dec("99.95"));
        assert_eq!(fixed(json!(-2), "BQ==").expect("fits"), dec("500"));
        assert_eq!(fixed(json!(-2), "AA==").expect("fits"), dec("0"));
        let error = fixed(json!("2147483647"), "BQ==").expect_err("hostile scale");
        assert_eq!(error.to_string(), "field `c`: decimal scale 2147483647 is out of range");
        let error = fixed(json!("x"), "BQ==").expect_err("bad scale");
        assert_eq!(error.to_string(), "field `c`: decimal schema has no integer `scale` parameter");

        let numeric = schema(json!({"type": "string", "parameters": {SOURCE_COLUMN_TYPE: "NUMERIC"}}));
        let string_mode = |value| typed(Path::Root("c"), &numeric, json!(value)).expect("fits");
        assert_eq!(string_mode("-0.001"), dec("-0.001"));
        assert_eq!(string_mode("NaN"), Value::Text("NaN".into()));
        assert_eq!(typed_as("string", None, json!("1.5")).expect("fits"), Value::Text("1.5".into()));
    }

    #[test]
    fn native_values_keep_their_json_type() {
        assert_eq!(native(json!(u64::MAX)), dec("18446744073709551615"));
        assert_eq!(native(json!(-2.5)), Value::Float(-2.5));
        let point = native(json!({"x": 1.0, "y": 2.0}));
        assert_eq!(point, Value::Json(r#"{"x":1.0,"y":2.0}"#.into()));
        assert_eq!(native(json!({"scale": 1, "value": "Kg=="})), dec("4.2"));
        let not_a_decimal = native(json!({"scale": 1, "value": "Kg==", "z": 0}));
        assert_eq!(not_a_decimal, Value::Json(r#"{"scale":1,"value":"Kg==","z":0}"#.into()));
    }
}
