//! The plugin's logic, free of WIT bindings so `cargo test` runs it natively.
//!
//! Each record is parsed once, in a single streaming pass, with borrowed [`RawValue`]s for the
//! column values. Nothing is re-serialized: the output record is the input bytes with each
//! masked value's byte range replaced by the pre-encoded mask, written straight into the one
//! output buffer of the batch. Everything the plugin does not touch (field order, whitespace,
//! `source`, unknown fields) stays byte-for-byte as the host sent it.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// The mask used when the config has no `mask_with`.
pub const DEFAULT_MASK: &str = "***";

/// How the host handles an error (mirrors the WIT `error-class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later.
    Retryable,
    /// The record itself is bad.
    Poison,
    /// Nothing can go on.
    Fatal,
}

/// An error the plugin reports (mirrors the WIT `plugin-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub class: ErrorClass,
    pub message: String,
}

impl Error {
    fn fatal(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Fatal, message: message.into() }
    }

    fn poison(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Poison, message: message.into() }
    }
}

/// An error tied to one input record (mirrors the WIT `record-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub index: u32,
    pub error: Error,
}

/// One config parameter as `describe` reports it (mirrors the WIT `config-param`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigParam {
    pub name: &'static str,
    pub kind: &'static str,
    pub required: bool,
    pub default_value: Option<&'static str>,
    pub secret: bool,
    pub description: &'static str,
}

/// What the plugin says about itself (mirrors the WIT `plugin-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub config: Vec<ConfigParam>,
    pub capabilities: Vec<&'static str>,
}

/// The plugin's self-description.
pub fn describe() -> Info {
    Info {
        name: "filter-mask",
        version: env!("CARGO_PKG_VERSION"),
        description: "Drops change events whose `after` row has a given column value, and replaces \
                      the values of chosen columns in key/before/after with a mask string.",
        config: vec![
            ConfigParam {
                name: "drop_where",
                kind: "object",
                required: false,
                default_value: Some("null"),
                secret: false,
                description: "{\"column\": name, \"equals\": JSON value}: drop events whose `after` \
                              row has this column equal to the value (null or absent: drop nothing).",
            },
            ConfigParam {
                name: "mask",
                kind: "list",
                required: false,
                default_value: Some("[]"),
                secret: false,
                description: "Columns whose non-null values are replaced by `mask_with` in key, \
                              before and after (unchanged TOAST values stay as they are).",
            },
            ConfigParam {
                name: "mask_with",
                kind: "string",
                required: false,
                default_value: Some("\"***\""),
                secret: false,
                description: "The text that replaces a masked value.",
            },
        ],
        capabilities: Vec::new(),
    }
}

/// Which events to drop.
#[derive(Debug, Clone, PartialEq)]
pub struct DropWhere {
    pub column: String,
    pub equals: Value,
}

/// The plugin's config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub drop_where: Option<DropWhere>,
    pub mask: Vec<String>,
    pub mask_with: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { drop_where: None, mask: Vec::new(), mask_with: DEFAULT_MASK.to_owned() }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn bad_type(key: &str, expected: &str, got: &Value) -> Error {
    Error::fatal(format!("config key `{key}` must be {expected}, got {}", kind_of(got)))
}

impl Config {
    /// Parses the config JSON text. Empty text and `null` mean all defaults; a key set to
    /// `null` means its default. Unknown keys and wrong types are `fatal`, naming the key.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut config = Self::default();
        if text.trim().is_empty() {
            return Ok(config);
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::fatal(format!("config is not valid JSON: {e}")))?;
        let entries = match value {
            Value::Null => return Ok(config),
            Value::Object(entries) => entries,
            other => {
                return Err(Error::fatal(format!("config must be a JSON object, got {}", kind_of(&other))));
            }
        };
        for (key, value) in entries {
            match key.as_str() {
                "drop_where" => config.drop_where = parse_drop_where(value)?,
                "mask" => config.mask = parse_mask(value)?,
                "mask_with" => match value {
                    Value::Null => {}
                    Value::String(text) => config.mask_with = text,
                    other => return Err(bad_type("mask_with", "a string", &other)),
                },
                _ => {
                    return Err(Error::fatal(format!(
                        "unknown config key `{key}` (known: drop_where, mask, mask_with)"
                    )));
                }
            }
        }
        Ok(config)
    }

    /// One line saying what the plugin will drop and mask.
    pub fn summary(&self) -> String {
        let drop = match &self.drop_where {
            Some(DropWhere { column, equals }) => {
                format!("dropping events whose after.{column} == {equals}")
            }
            None => "dropping nothing".to_owned(),
        };
        let mask = if self.mask.is_empty() {
            "masking nothing".to_owned()
        } else {
            format!(
                "masking {} in key/before/after with {}",
                Value::from(self.mask.clone()),
                Value::from(self.mask_with.as_str())
            )
        };
        format!("{drop}; {mask}")
    }
}

fn parse_drop_where(value: Value) -> Result<Option<DropWhere>, Error> {
    let entries = match value {
        Value::Null => return Ok(None),
        Value::Object(entries) => entries,
        other => {
            return Err(bad_type("drop_where", "an object {\"column\", \"equals\"}", &other));
        }
    };
    let mut column = None;
    let mut equals = None;
    for (key, value) in entries {
        match key.as_str() {
            "column" => match value {
                Value::String(name) if !name.is_empty() => column = Some(name),
                Value::String(_) => {
                    return Err(Error::fatal("config key `drop_where.column` must not be empty"));
                }
                other => return Err(bad_type("drop_where.column", "a string", &other)),
            },
            "equals" => equals = Some(value),
            _ => {
                return Err(Error::fatal(format!(
                    "unknown config key `drop_where.{key}` (known: column, equals)"
                )));
            }
        }
    }
    let missing = |key: &str| Error::fatal(format!("config key `drop_where.{key}` is required"));
    Ok(Some(DropWhere {
        column: column.ok_or_else(|| missing("column"))?,
        equals: equals.ok_or_else(|| missing("equals"))?,
    }))
}

fn parse_mask(value: Value) -> Result<Vec<String>, Error> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(bad_type("mask", "a list of column names", &other)),
    };
    let mut columns = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::String(name) => {
                if !columns.contains(&name) {
                    columns.push(name);
                }
            }
            other => return Err(bad_type(&format!("mask[{i}]"), "a string", &other)),
        }
    }
    Ok(columns)
}

/// The result of one batch, laid out as the WIT `transformed` record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub data: Vec<u8>,
    pub ends: Vec<u32>,
    pub origins: Vec<u32>,
    pub errors: Vec<RecordError>,
}

impl Output {
    /// Output record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }
}

/// A configured filter-mask transform.
#[derive(Debug, Clone)]
pub struct Filter {
    config: Config,
    /// `mask_with` encoded as a JSON string, written in place of each masked value.
    mask_json: Vec<u8>,
}

impl Filter {
    pub fn new(config: Config) -> Self {
        let mask_json = serde_json::to_vec(&config.mask_with).expect("a string always encodes");
        Self { config, mask_json }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Transforms one packed batch. Bad records become `poison` errors; only a malformed batch
    /// layout fails the whole call.
    pub fn transform(&self, data: &[u8], ends: &[u32]) -> Result<Output, Error> {
        // Masking rarely changes the size much: one allocation for the whole batch, usually.
        let mut out = Output {
            data: Vec::with_capacity(data.len() + data.len() / 8),
            ends: Vec::with_capacity(ends.len()),
            origins: Vec::with_capacity(ends.len()),
            errors: Vec::new(),
        };
        let mut start = 0usize;
        for (i, &end) in ends.iter().enumerate() {
            let end = end as usize;
            if end < start || end > data.len() {
                return Err(Error::fatal(format!(
                    "malformed batch: ends[{i}] = {end} after {start}, data is {} bytes",
                    data.len()
                )));
            }
            let record = &data[start..end];
            start = end;
            let index = i as u32;
            let mark = out.data.len();
            match self.record(record, &mut out.data) {
                Ok(Outcome::Keep) => {
                    let len = u32::try_from(out.data.len())
                        .map_err(|_| Error::fatal("output batch exceeds 4 GiB; send smaller batches"))?;
                    out.ends.push(len);
                    out.origins.push(index);
                }
                Ok(Outcome::Drop) => out.data.truncate(mark),
                Err(message) => {
                    out.data.truncate(mark);
                    out.errors.push(RecordError { index, error: Error::poison(message) });
                }
            }
        }
        Ok(out)
    }

    /// Appends the (masked) record to `out`, or says to drop it. On `Drop` or `Err` the caller
    /// truncates whatever was appended.
    fn record(&self, record: &[u8], out: &mut Vec<u8>) -> Result<Outcome, String> {
        let mut state = Record { filter: self, record, copied: 0, out, drop: false };
        // One fast UTF-8 check up front; then the parser's str reader skips per-string checks
        // (and unlike skipping a field from a byte slice, nothing escapes validation).
        let text = std::str::from_utf8(record)
            .map_err(|e| format!("record is not valid wire JSON: not UTF-8: {e}"))?;
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = EventSeed(&mut state).deserialize(&mut de).and_then(|()| de.end());
        parsed.map_err(|e| format!("record is not valid wire JSON: {e}"))?;
        if state.drop {
            return Ok(Outcome::Drop);
        }
        state.out.extend_from_slice(&record[state.copied..]);
        Ok(Outcome::Keep)
    }
}

enum Outcome {
    Keep,
    Drop,
}

/// The state of one record while it streams through the parser.
struct Record<'f, 'a, 'o> {
    filter: &'f Filter,
    record: &'a [u8],
    /// How much of `record` has been copied to `out`.
    copied: usize,
    out: &'o mut Vec<u8>,
    drop: bool,
}

impl<'a> Record<'_, 'a, '_> {
    /// Copies the record up to `value`, then the mask instead of `value`.
    fn mask(&mut self, value: &'a RawValue) -> Result<(), String> {
        let text = value.get().as_bytes();
        // `value` borrows from `record` (serde_json's str reader hands out sub-slices).
        let start = (text.as_ptr() as usize)
            .checked_sub(self.record.as_ptr() as usize)
            .filter(|&start| start >= self.copied && start + text.len() <= self.record.len())
            .ok_or("internal error: value outside its record")?;
        self.out.extend_from_slice(&self.record[self.copied..start]);
        self.out.extend_from_slice(&self.filter.mask_json);
        self.copied = start + text.len();
        Ok(())
    }

    fn column(&mut self, row: Row, name: &str, value: &'a RawValue) -> Result<(), String> {
        let config = &self.filter.config;
        if row == Row::After
            && let Some(drop) = &config.drop_where
            && drop.column == name
            && json_equals(value, &drop.equals)
        {
            self.drop = true;
        }
        if config.mask.iter().any(|column| column == name) && should_mask(value) {
            self.mask(value)?;
        }
        Ok(())
    }
}

/// Whether a column value gets masked: everything but null and `{"$unavailable": ...}`.
fn should_mask(value: &RawValue) -> bool {
    let text = value.get();
    if text == "null" {
        return false;
    }
    !(text.starts_with('{') && is_unavailable(text))
}

/// Whether an object value is the one-key `{"$unavailable": ...}` tag (the host reads any object
/// whose only key is `$unavailable` as an unchanged column).
fn is_unavailable(text: &str) -> bool {
    struct Check;
    impl<'de> Visitor<'de> for Check {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut keys = 0;
            let mut tagged = false;
            while let Some(key) = map.next_key::<Key>()? {
                keys += 1;
                tagged = key.0 == "$unavailable";
                map.next_value::<IgnoredAny>()?;
            }
            Ok(keys == 1 && tagged)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(Check).unwrap_or(false)
}

/// Whether a column value equals the configured JSON value. Numbers compare by value
/// (`1` equals `1.0`); everything else compares structurally.
fn json_equals(value: &RawValue, want: &Value) -> bool {
    let text = value.get();
    match want {
        Value::Null => text == "null",
        Value::Bool(b) => text == if *b { "true" } else { "false" },
        Value::String(want) => {
            text.starts_with('"') && serde_json::from_str::<Key>(text).is_ok_and(|k| k.0 == *want)
        }
        Value::Number(want) => {
            serde_json::from_str::<Number>(text).is_ok_and(|got| numbers_equal(&got, want))
        }
        Value::Array(_) | Value::Object(_) => {
            serde_json::from_str::<Value>(text).is_ok_and(|got| values_equal(&got, want))
        }
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return a == b;
    }
    matches!((a.as_f64(), b.as_f64()), (Some(a), Some(b)) if a == b)
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(a), Value::Object(b)) => objects_equal(a, b),
        _ => a == b,
    }
}

fn objects_equal(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| values_equal(v, w)))
}

/// A JSON string, borrowed from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The three row fields of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Key,
    Before,
    After,
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Key => "key",
            Row::Before => "before",
            Row::After => "after",
        }
    }
}

/// Parses the top-level event object.
struct EventSeed<'s, 'f, 'a, 'o>(&'s mut Record<'f, 'a, 'o>);

impl<'a> DeserializeSeed<'a> for EventSeed<'_, '_, 'a, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for EventSeed<'_, '_, 'a, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change event object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'a>>()? {
            let row = match &*key.0 {
                "key" => Row::Key,
                "before" => Row::Before,
                "after" => Row::After,
                "op" => {
                    let op = map.next_value::<&'a RawValue>()?;
                    let valid = serde_json::from_str::<Key>(op.get())
                        .is_ok_and(|op| matches!(&*op.0, "c" | "u" | "d" | "r" | "t"));
                    if !valid {
                        return Err(de::Error::custom(format_args!(
                            "field `op`: expected one of \"c\", \"u\", \"d\", \"r\", \"t\", got {}",
                            op.get()
                        )));
                    }
                    continue;
                }
                field @ ("table" | "source") => {
                    let value = map.next_value::<&'a RawValue>()?;
                    if !value.get().starts_with('{') {
                        return Err(de::Error::custom(format_args!(
                            "field `{field}`: expected an object, got {}",
                            value.get()
                        )));
                    }
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            map.next_value_seed(RowSeed { record: &mut *self.0, row })?;
        }
        Ok(())
    }
}

/// Parses one row (`key`, `before` or `after`): an object of columns, or null.
struct RowSeed<'s, 'f, 'a, 'o> {
    record: &'s mut Record<'f, 'a, 'o>,
    row: Row,
}

impl<'a> DeserializeSeed<'a> for RowSeed<'_, '_, 'a, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for RowSeed<'_, '_, 'a, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "field `{}` to be a row object or null", self.row.name())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(column) = map.next_key::<Key<'a>>()? {
            let value = map.next_value::<&'a RawValue>()?;
            self.record.column(self.row, &column.0, value).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
