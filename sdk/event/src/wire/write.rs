//! Writes the wire form straight into the caller's buffer: no JSON tree and no serializer
//! state machine on the way. Text is checked for characters to escape eight bytes at a time
//! and, as it nearly always has none, copied whole.

use std::fmt;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{RecordRef, SourceRef};
use crate::{Row, TableId, Value};

/// Appends the wire form of `record` to `out`.
pub fn write_record(record: &RecordRef<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"op\":\"");
    out.extend_from_slice(record.op.code().as_bytes());
    out.extend_from_slice(b"\",\"table\":");
    write_table(record.table, out);
    for (name, row) in
        [(&b",\"key\":"[..], record.key), (b",\"before\":", record.before), (b",\"after\":", record.after)]
    {
        out.extend_from_slice(name);
        match row {
            Some(row) => write_row(row, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"source\":");
    match record.source {
        SourceRef::Map(fields) => {
            serde_json::to_writer(&mut *out, fields).expect("writing JSON into memory cannot fail")
        }
        SourceRef::Text(text) => out.extend_from_slice(text.as_bytes()),
    }
    out.extend_from_slice(b",\"ts_ms\":");
    match record.ts_ms {
        Some(ts_ms) => write_int(ts_ms, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"id\":");
    write_display(record.id, out);
    out.push(b'}');
}

fn write_table(table: &TableId, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"database\":");
    write_optional_str(table.database.as_deref(), out);
    out.extend_from_slice(b",\"schema\":");
    write_optional_str(table.schema.as_deref(), out);
    out.extend_from_slice(b",\"table\":");
    write_str(&table.table, out);
    out.push(b'}');
}

fn write_row(row: &Row, out: &mut Vec<u8>) {
    out.push(b'{');
    for (index, (column, value)) in row.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(column, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

/// Appends the wire form of one column value to `out` (for plugins that compare or show values).
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_int(*i, out),
        // Integral floats get a tag so that they do not come back as integers; so do NaN and
        // the infinities, which JSON numbers cannot hold.
        Value::Float(f) if f.is_finite() && f.fract() != 0.0 => {
            serde_json::to_writer(&mut *out, f).expect("writing JSON into memory cannot fail");
        }
        Value::Float(f) => tagged(out, "$float", |out| write_display(f, out)),
        Value::Text(text) => write_str(text, out),
        Value::Decimal(decimal) => tagged(out, "$decimal", |out| write_str(decimal.as_str(), out)),
        Value::Bytes(bytes) => tagged(out, "$bytes", |out| write_base64(bytes, out)),
        Value::Date(days) => tagged(out, "$date", |out| write_int(i64::from(*days), out)),
        Value::Time(micros) => tagged(out, "$time", |out| write_int(*micros, out)),
        Value::Timestamp(micros) => tagged(out, "$timestamp", |out| write_int(*micros, out)),
        Value::TimestampTz(text) => tagged(out, "$timestamptz", |out| write_str(text, out)),
        Value::Json(text) => tagged(out, "$json", |out| write_str(text, out)),
        Value::Uuid(text) => tagged(out, "$uuid", |out| write_str(text, out)),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Unavailable => out.extend_from_slice(b"{\"$unavailable\":true}"),
    }
}

/// `{"<tag>":<payload>}`; tags are plain ASCII and need no escaping.
fn tagged(out: &mut Vec<u8>, tag: &str, payload: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b"\":");
    payload(out);
    out.push(b'}');
}

fn write_int(value: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn write_optional_str(text: Option<&str>, out: &mut Vec<u8>) {
    match text {
        Some(text) => write_str(text, out),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    // Base64 has no character JSON escapes.
    out.push(b'"');
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).expect("a batch fits in memory"), 0);
    BASE64.encode_slice(bytes, &mut out[start..]).expect("the buffer was sized for the encoding");
    out.push(b'"');
}

/// Writes `value`'s `Display` as a JSON string: straight into `out`, escaped afterwards only in
/// the rare case that it wrote a character JSON escapes.
fn write_display(value: &dyn fmt::Display, out: &mut Vec<u8>) {
    let start = out.len();
    write!(out, "\"{value}\"").expect("writing into memory cannot fail");
    let written = &out[start + 1..out.len() - 1];
    if written.iter().any(|&byte| escape(byte).is_some()) {
        let text = String::from_utf8(written.to_vec()).expect("Display writes UTF-8");
        out.truncate(start);
        write_str(&text, out);
    }
}

/// Writes `text` as a JSON string, escaped exactly as `serde_json` does.
pub(crate) fn write_str(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    // Most text has nothing to escape: find that out a word at a time, then copy it whole.
    let first_dirty_word = (0..bytes.len()).step_by(8).find(|&at| word_needs_escape(load_word(bytes, at)));
    out.push(b'"');
    match first_dirty_word {
        None => out.extend_from_slice(bytes),
        Some(at) => {
            out.extend_from_slice(&bytes[..at]);
            write_escaped(&bytes[at..], out);
        }
    }
    out.push(b'"');
}

/// Writes bytes of a text that has something to escape, byte by byte.
fn write_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    let mut run_start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if let Some(escaped) = escape(byte) {
            out.extend_from_slice(&bytes[run_start..at]);
            escaped.write(out);
            run_start = at + 1;
        }
    }
    out.extend_from_slice(&bytes[run_start..]);
}

/// A word holding the bytes of `bytes` from `at` to its end (at most eight), in registers: the
/// next eight bytes; for the tail of a longer text, its last eight bytes (those before `at`
/// were found clean already); for a text shorter than a word, its bytes padded with spaces,
/// which need no escape.
fn load_word(bytes: &[u8], at: usize) -> u64 {
    let word = |slice: &[u8]| u64::from_le_bytes(slice.try_into().expect("eight bytes"));
    if let Some(next) = bytes.get(at..at + 8) {
        return word(next);
    }
    if bytes.len() >= 8 {
        return word(&bytes[bytes.len() - 8..]);
    }
    let mut padded = ONES * u64::from(b' ');
    for (lane, &byte) in bytes[at..].iter().enumerate() {
        let shift = 8 * lane;
        padded = (padded & !(0xFF << shift)) | (u64::from(byte) << shift);
    }
    padded
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `word` is a control character, `"` or `\`.
fn word_needs_escape(word: u64) -> bool {
    let has_zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH_BITS != 0;
    let has_control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS != 0;
    has_control
        || has_zero_byte(word ^ (ONES * u64::from(b'"')))
        || has_zero_byte(word ^ (ONES * u64::from(b'\\')))
}

/// How JSON writes a byte that must be escaped.
#[derive(Clone, Copy)]
enum Escape {
    /// `\n`, `\"`, …
    Short(u8),
    /// `\u00XX`, for the other control characters.
    Unicode(u8),
}

impl Escape {
    fn write(self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        match self {
            Escape::Short(letter) => out.extend_from_slice(&[b'\\', letter]),
            Escape::Unicode(byte) => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ]),
        }
    }
}

fn escape(byte: u8) -> Option<Escape> {
    Some(match byte {
        b'"' => Escape::Short(b'"'),
        b'\\' => Escape::Short(b'\\'),
        b'\n' => Escape::Short(b'n'),
        b'\r' => Escape::Short(b'r'),
        b'\t' => Escape::Short(b't'),
        0x08 => Escape::Short(b'b'),
        0x0C => Escape::Short(b'f'),
        0x00..=0x1F => Escape::Unicode(byte),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut samples: Vec<String> =
            (0u8..=0x7F).map(|byte| format!("ab{}cdefghij", byte as char)).collect();
        samples.extend(
            ["", "\"", "\\", "plain text longer than eight", "ünïcødé \u{1F600} \u{7F}"].map(String::from),
        );
        samples.push("x\"y\\z\n".repeat(5));
        for text in samples {
            let mut ours = Vec::new();
            write_str(&text, &mut ours);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn a_character_to_escape_is_found_at_every_position_of_every_length() {
        for len in 1..=24 {
            for at in 0..len {
                for special in ['"', '\\', '\n', '\u{1}'] {
                    let mut text: Vec<char> = "abcdefghijklmnopqrstuvwx"[..len].chars().collect();
                    text[at] = special;
                    let text: String = text.into_iter().collect();
                    let mut ours = Vec::new();
                    write_str(&text, &mut ours);
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        serde_json::to_string(&text).unwrap(),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_word_check_finds_every_byte_that_needs_escaping_in_every_lane() {
        for lane in 0..8 {
            for byte in 0u8..=0xFF {
                let mut word = [b'a'; 8];
                word[lane] = byte;
                let needs = word_needs_escape(u64::from_le_bytes(word));
                assert_eq!(needs, escape(byte).is_some(), "byte {byte:#x} in lane {lane}");
            }
        }
    }

    #[test]
    fn a_display_with_characters_to_escape_is_escaped() {
        let mut out = Vec::new();
        write_display(&"a\"b", &mut out);
        assert_eq!(out, br#""a\"b""#);
    }
}
