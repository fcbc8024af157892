//! A statement's columns as array parameters, in PostgreSQL's binary form where reading text
//! costs the server most: integers, exact numerics, dates and timestamps. A column goes as text
//! (cast by the server, see [`super::literal`]) when any of its values is not of the kind its
//! target type reads, or a timestamp's text is not the ISO form Debezium writes: the server's
//! own parser then judges it, as it judges every other type.

use std::borrow::Cow;
use std::error::Error;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type, accepts, to_sql_checked};

use super::literal::{self, MICROS_PER_DAY, civil_from_days, days_from_civil};
use super::statement::{Encoded, Param};
use crate::event::Value;

/// Days from 1970-01-01, the events' epoch, to 2000-01-01, PostgreSQL's.
const EPOCH_DAYS: i64 = 10_957;
const EPOCH_MICROS: i64 = EPOCH_DAYS * MICROS_PER_DAY;

/// One column of a statement's rows: one array parameter.
#[derive(Debug)]
pub(super) enum Array<'e> {
    Text(Vec<Option<Cow<'e, str>>>),
    Int8(Vec<Option<i64>>),
    Numeric(Vec<Option<Numeric<'e>>>),
    Date(Vec<Option<Date>>),
    Timestamp(Vec<Option<Timestamp>>),
    TimestampTz(Vec<Option<Timestamp>>),
}

impl<'e> Array<'e> {
    /// A column of `values` bound for a target column of `sql_type` (as `format_type` spells it).
    pub fn of(sql_type: &str, values: &[&'e Value]) -> Self {
        let binary = match sql_type {
            "smallint" | "integer" | "bigint" => all(values, |value| match value {
                Value::Int(int) => Some(*int),
                _ => None,
            })
            .map(Array::Int8),
            "numeric" => all(values, |value| match value {
                Value::Decimal(decimal) => Numeric::parse(decimal.as_str()),
                _ => None,
            })
            .map(Array::Numeric),
            "date" => all(values, |value| match value {
                Value::Date(days) => i32::try_from(i64::from(*days) - EPOCH_DAYS).ok().map(Date),
                _ => None,
            })
            .map(Array::Date),
            "timestamp without time zone" => all(values, |value| match value {
                Value::Timestamp(micros) => micros.checked_sub(EPOCH_MICROS).map(Timestamp),
                _ => None,
            })
            .map(Array::Timestamp),
            "timestamp with time zone" => all(values, |value| match value {
                Value::TimestampTz(text) => parse_timestamptz(text).map(Timestamp),
                _ => None,
            })
            .map(Array::TimestampTz),
            _ => None,
        };
        binary.unwrap_or_else(|| Array::Text(values.iter().map(|value| literal::text(value)).collect()))
    }

    /// The parameter's array type, for its cast in the statement.
    pub fn sql_type(&self) -> &'static str {
        match self {
            Array::Text(_) => "text[]",
            Array::Int8(_) => "bigint[]",
            Array::Numeric(_) => "numeric[]",
            Array::Date(_) => "date[]",
            Array::Timestamp(_) => "timestamp[]",
            Array::TimestampTz(_) => "timestamptz[]",
        }
    }

    /// The parameter, encoded: the statement owns it and no longer borrows the events.
    pub fn encode(&self) -> Param {
        let (value, ty): (&(dyn ToSql + Sync), Type) = match self {
            Array::Text(values) => (values, Type::TEXT_ARRAY),
            Array::Int8(values) => (values, Type::INT8_ARRAY),
            Array::Numeric(values) => (values, Type::NUMERIC_ARRAY),
            Array::Date(values) => (values, Type::DATE_ARRAY),
            Array::Timestamp(values) => (values, Type::TIMESTAMP_ARRAY),
            Array::TimestampTz(values) => (values, Type::TIMESTAMPTZ_ARRAY),
        };
        let encoded = Encoded::new(value, ty).expect("each array kind encodes as its own type");
        Box::new(encoded)
    }
}

/// Every value read by `read` (NULL as `None`), or `None` when one cannot be.
fn all<'e, T>(values: &[&'e Value], read: impl Fn(&'e Value) -> Option<T>) -> Option<Vec<Option<T>>> {
    values
        .iter()
        .map(|&value| match value {
            Value::Null | Value::Unavailable => Some(None),
            value => read(value).map(Some),
        })
        .collect()
}

/// A date as PostgreSQL sends it: days since 2000-01-01.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Date(i32);

impl ToSql for Date {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_i32(self.0);
        Ok(IsNull::No)
    }

    accepts!(DATE);
    to_sql_checked!();
}

/// A timestamp as PostgreSQL sends it: microseconds since 2000-01-01 00:00 (UTC for a
/// `timestamptz`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Timestamp(i64);

impl ToSql for Timestamp {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_i64(self.0);
        Ok(IsNull::No)
    }

    accepts!(TIMESTAMP, TIMESTAMPTZ);
    to_sql_checked!();
}

/// Decimal text, checked to be `-`? digits (`.` digits*)? and written in PostgreSQL's binary
/// `numeric` form: base-10,000 digits around the decimal point, with the text's scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Numeric<'e> {
    negative: bool,
    /// Integer digits without leading zeros.
    int: &'e [u8],
    /// Fraction digits, as many as the text has: they are the value's scale.
    fraction: &'e [u8],
}

/// More digits than this go as text, well inside what the binary form can say.
const MAX_NUMERIC_DIGITS: usize = 1000;

impl<'e> Numeric<'e> {
    fn parse(text: &'e str) -> Option<Self> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let well_formed = !int.is_empty()
            && int.len() + fraction.len() <= MAX_NUMERIC_DIGITS
            && int.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit());
        if !well_formed {
            return None;
        }
        let int = int.trim_start_matches('0').as_bytes();
        let zero = int.is_empty() && fraction.bytes().all(|b| b == b'0');
        Some(Numeric { negative: negative && !zero, int, fraction: fraction.as_bytes() })
    }

    /// The base-10,000 digit covering decimal places `start..start + 4` of the integer part
    /// padded on the left (`start` may be negative) or of the fraction padded on the right.
    fn group(digits: &[u8], start: isize) -> i16 {
        (start..start + 4).fold(0, |group, at| {
            let digit = usize::try_from(at).ok().and_then(|at| digits.get(at)).map_or(0, |d| d - b'0');
            group * 10 + i16::from(digit)
        })
    }
}

impl ToSql for Numeric<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let int_groups = self.int.len().div_ceil(4);
        let fraction_groups = self.fraction.len().div_ceil(4);
        // Bounded by MAX_NUMERIC_DIGITS: every count fits its 16-bit field.
        out.put_i16((int_groups + fraction_groups) as i16);
        out.put_i16(int_groups as i16 - 1);
        out.put_u16(if self.negative { 0x4000 } else { 0 });
        out.put_u16(self.fraction.len() as u16);
        let padding = (int_groups * 4 - self.int.len()) as isize;
        for group in 0..int_groups as isize {
            out.put_i16(Self::group(self.int, group * 4 - padding));
        }
        for group in 0..fraction_groups as isize {
            out.put_i16(Self::group(self.fraction, group * 4));
        }
        Ok(IsNull::No)
    }

    accepts!(NUMERIC);
    to_sql_checked!();
}

/// Microseconds since 2000-01-01 00:00 UTC of `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`, the
/// form Debezium writes; `None` for anything else (PostgreSQL then reads the text).
fn parse_timestamptz(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = bytes.get(range)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(at, separator)| bytes.get(at) == Some(&separator)) {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut at = 19;
    let mut micros = 0;
    if bytes.get(at) == Some(&b'.') {
        let digits = bytes[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=6).contains(&digits) {
            return None;
        }
        micros = number(at + 1..at + 1 + digits)? * 10_i64.pow(6 - digits as u32);
        at += 1 + digits;
    }
    let offset_minutes = match (bytes.get(at), bytes.len() - at) {
        (Some(b'Z'), 1) => 0,
        (Some(sign @ (b'+' | b'-')), 6) if bytes[at + 3] == b':' => {
            let (hours, minutes) = (number(at + 1..at + 3)?, number(at + 4..at + 6)?);
            if hours > 15 || minutes > 59 {
                return None;
            }
            let minutes = hours * 60 + minutes;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    // A month or day the calendar does not have (2023-02-29, 2024-13-01) counts on into
    // another date, which does not come back.
    let days = days_from_civil(year, month, day);
    let valid = (1..=9999).contains(&year)
        && civil_from_days(days) == (year, month as u32, day as u32)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    if !valid {
        return None;
    }
    let days = days - EPOCH_DAYS;
    let seconds = ((hour * 60 + minute - offset_minutes) * 60) + second;
    Some(days * MICROS_PER_DAY + seconds * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decimal;

    fn numeric_bytes(text: &str) -> Vec<i16> {
        let mut out = BytesMut::new();
        Numeric::parse(text).unwrap().to_sql(&Type::NUMERIC, &mut out).unwrap();
        out.chunks(2).map(|pair| i16::from_be_bytes([pair[0], pair[1]])).collect()
    }

    #[test]
    fn numerics_take_postgres_binary_form() {
        // ndigits, weight, sign, dscale, then base-10,000 digits.
        assert_eq!(numeric_bytes("-123.45"), [2, 0, 0x4000, 2, 123, 4500]);
        assert_eq!(numeric_bytes("12345678.9"), [3, 1, 0, 1, 1234, 5678, 9000]);
        assert_eq!(numeric_bytes("0.0001"), [1, -1, 0, 4, 1]);
        assert_eq!(numeric_bytes("10000"), [2, 1, 0, 0, 1, 0]);
        assert_eq!(numeric_bytes("007"), [1, 0, 0, 0, 7]);
        assert_eq!(numeric_bytes("-0.00"), [1, -1, 0, 2, 0]);
        assert_eq!(numeric_bytes("0"), [0, -1, 0, 0]);
        for text in ["", "-", ".5", "1e5", "NaN", "1.2.3", "+1"] {
            assert_eq!(Numeric::parse(text), None, "{text}");
        }
        assert_eq!(Numeric::parse(&"9".repeat(MAX_NUMERIC_DIGITS + 1)), None);
    }

    #[test]
    fn debezium_timestamps_read_as_microseconds_since_2000() {
        let micros = |text: &str| parse_timestamptz(text);
        assert_eq!(micros("2000-01-01T00:00:00Z"), Some(0));
        assert_eq!(micros("1999-12-31T23:59:59.999999Z"), Some(-1));
        assert_eq!(micros("2000-01-01T02:00:00.5+02:00"), Some(500_000));
        assert_eq!(micros("2000-01-01T00:00:00-00:30"), Some(1_800_000_000));
        assert_eq!(micros("2024-02-29T12:34:56.123456Z"), Some(762_525_296_123_456));
        assert_eq!(micros("0001-01-01T00:00:00Z"), Some(-63_082_281_600_000_000));
        for text in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.1234567Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00+16:00",
            "infinity",
            "12024-01-01T00:00:00Z",
        ] {
            assert_eq!(micros(text), None, "{text}");
        }
    }

    #[test]
    fn a_column_goes_as_text_when_one_value_does_not_fit_its_type() {
        let int = Value::Int(7);
        let text = Value::Text("8".into());
        let null = Value::Null;
        assert!(matches!(Array::of("bigint", &[&int, &null]), Array::Int8(v) if v == [Some(7), None]));
        assert!(matches!(Array::of("integer", &[&int, &text]), Array::Text(v) if v.len() == 2));
        assert!(matches!(Array::of("text", &[&int]), Array::Text(_)));
        let decimal = Value::Decimal(Decimal::parse("1.50").unwrap());
        assert_eq!(Array::of("numeric", &[&decimal]).sql_type(), "numeric[]");
        let zoned = Value::TimestampTz("2024-01-01T00:00:00Z".into());
        let odd = Value::TimestampTz("2024-01-01 00:00:00+00".into());
        assert_eq!(Array::of("timestamp with time zone", &[&zoned]).sql_type(), "timestamptz[]");
        assert_eq!(Array::of("timestamp with time zone", &[&zoned, &odd]).sql_type(), "text[]");
        let date = Value::Date(0);
        assert!(matches!(Array::of("date", &[&date]), Array::Date(v) if v == [Some(Date(-10_957))]));
        let timestamp = Value::Timestamp(EPOCH_MICROS + 1);
        assert!(
            matches!(Array::of("timestamp without time zone", &[&timestamp]), Array::Timestamp(v) if v == [Some(Timestamp(1))])
        );
    }
}
