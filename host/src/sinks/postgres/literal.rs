//! Values as PostgreSQL's text input form. A column that does not go in binary (see
//! [`super::binary`]) travels as text in a `text[]` parameter and is cast to its target
//! column's type by the server, so one encoding serves every type, and nothing is ever spliced
//! into SQL.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::event::Value;

/// Microseconds in a day.
pub(super) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The text PostgreSQL reads `value` from; `None` for NULL. An unchanged TOAST column has no
/// text: the caller leaves such a column out of the statement. Values held as text already
/// (strings, decimals, timestamps with a zone, JSON, UUIDs) are lent, not copied.
pub(super) fn text(value: &Value) -> Option<Cow<'_, str>> {
    let mut out = String::new();
    match value {
        Value::Null | Value::Unavailable => return None,
        Value::Text(text) | Value::Json(text) | Value::Uuid(text) | Value::TimestampTz(text) => {
            return Some(Cow::Borrowed(text));
        }
        Value::Decimal(decimal) => return Some(Cow::Borrowed(decimal.as_str())),
        Value::Array(items) => write_array(&mut out, items),
        scalar => write_scalar(&mut out, scalar),
    }
    Some(Cow::Owned(out))
}

fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Null | Value::Unavailable => out.push_str("NULL"),
        Value::Bool(b) => out.push_str(if *b { "t" } else { "f" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Decimal(decimal) => out.push_str(decimal.as_str()),
        Value::Text(text) | Value::Json(text) | Value::Uuid(text) | Value::TimestampTz(text) => {
            out.push_str(text);
        }
        Value::Bytes(bytes) => {
            out.push_str("\\x");
            for byte in bytes {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Value::Date(days) => write_date(out, i64::from(*days)),
        Value::Time(micros) => write_time(out, *micros),
        Value::Timestamp(micros) => {
            write_date(out, micros.div_euclid(MICROS_PER_DAY));
            out.push(' ');
            write_time(out, micros.rem_euclid(MICROS_PER_DAY));
        }
        Value::Array(items) => write_array(out, items),
    }
}

/// Floats keep every bit: Rust prints the shortest text that reads back to the same value, and
/// PostgreSQL spells the non-finite ones as words.
fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let _ = write!(out, "{f:?}");
    }
}

/// An array literal: `{1,NULL,"a \"b\""}`; every element quoted but NULL, so that text holding
/// commas, braces or spaces reads back as it was.
fn write_array(out: &mut String, items: &[Value]) {
    out.push('{');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        match item {
            Value::Null | Value::Unavailable => out.push_str("NULL"),
            Value::Array(inner) => write_array(out, inner),
            scalar => {
                let mut element = String::new();
                write_scalar(&mut element, scalar);
                out.push('"');
                for c in element.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
}

/// `days` since 1970-01-01 as an ISO date (proleptic Gregorian, `BC` before year 1).
fn write_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    if year <= 0 {
        let _ = write!(out, "{:04}-{month:02}-{day:02} BC", 1 - year);
    } else {
        let _ = write!(out, "{year:04}-{month:02}-{day:02}");
    }
}

/// Microseconds since midnight as `HH:MM:SS.ffffff`; 24:00:00 is a valid PostgreSQL time.
fn write_time(out: &mut String, micros: i64) {
    let (seconds, fraction) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let _ = write!(out, "{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
    if fraction > 0 {
        let _ = write!(out, ".{fraction:06}");
    }
}

/// The Gregorian (year, month, day) of a day count from 1970-01-01, by 400-year eras of
/// 146,097 days with years starting in March (so the leap day ends a year): exact for every
/// `i32` day count.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to a Gregorian date, by the same eras: the inverse of
/// [`civil_from_days`] (a day past its month's end counts on into the next month).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decimal;

    #[test]
    fn scalars_take_postgres_input_form() {
        let cases = [
            (Value::Bool(true), "t"),
            (Value::Int(-42), "-42"),
            (Value::Float(0.1), "0.1"),
            (Value::Float(1e300), "1e300"),
            (Value::Float(f64::NEG_INFINITY), "-Infinity"),
            (Value::Decimal(Decimal::parse("-12.340").unwrap()), "-12.340"),
            (Value::Bytes(vec![0, 0xab, 0x10]), "\\x00ab10"),
            (Value::Date(0), "1970-01-01"),
            (Value::Date(19_723), "2024-01-01"),
            (Value::Date(-719_163), "0001-12-31 BC"),
            (Value::Date(-719_162), "0001-01-01"),
            (Value::Time(0), "00:00:00"),
            (Value::Time(45_296_000_001), "12:34:56.000001"),
            (Value::Time(86_400_000_000), "24:00:00"),
            (Value::Timestamp(1_704_067_199_999_999), "2023-12-31 23:59:59.999999"),
            (Value::Timestamp(-1), "1969-12-31 23:59:59.999999"),
        ];
        for (value, expected) in cases {
            assert_eq!(text(&value).as_deref(), Some(expected), "{value:?}");
        }
    }

    #[test]
    fn null_and_unchanged_toast_have_no_text() {
        assert_eq!(text(&Value::Null), None);
        assert_eq!(text(&Value::Unavailable), None);
    }

    #[test]
    fn array_elements_are_quoted_and_escaped() {
        let array = Value::Array(vec![
            Value::Text("a,b".into()),
            Value::Null,
            Value::Text("say \"hi\" \\ {}".into()),
        ]);
        assert_eq!(text(&array).unwrap(), r#"{"a,b",NULL,"say \"hi\" \\ {}"}"#);
        let nested = Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Int(2)])]);
        assert_eq!(text(&nested).unwrap(), r#"{{"1","2"}}"#);
    }

    #[test]
    fn day_counts_invert_the_calendar() {
        for days in (-800_000..800_000).step_by(7) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, i64::from(month), i64::from(day)), days);
        }
    }

    #[test]
    fn every_day_count_matches_a_day_by_day_walk() {
        // Walk the calendar from 1970-01-01 forward and back over four centuries.
        let (mut y, mut m, mut d) = (1970_i64, 1_u32, 1_u32);
        let days_in = |y: i64, m: u32| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > days_in(y, m) {
                (d, m) = (1, m + 1);
                if m > 12 {
                    (m, y) = (1, y + 1);
                }
            }
        }
        let (mut y, mut m, mut d) = (1970_i64, 1_u32, 1_u32);
        for days in (-146_097..=0).rev() {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            if d == 1 {
                if m == 1 {
                    (m, y) = (12, y - 1);
                } else {
                    m -= 1;
                }
                d = days_in(y, m);
            } else {
                d -= 1;
            }
        }
    }
}
