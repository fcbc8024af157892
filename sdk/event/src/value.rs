//! The parts of a change event: what happened ([`Op`]), to which table ([`TableId`]), and the
//! rows ([`Row`]) of typed, exact values ([`Value`], [`Decimal`]).
//!
//! Values are exact: decimals stay decimal text, times stay integers, and an unchanged TOAST
//! column is [`Value::Unavailable`], never null.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use smol_str::SmolStr;

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A row was inserted (`c`).
    Create,
    /// A row was updated (`u`).
    Update,
    /// A row was deleted (`d`).
    Delete,
    /// A row was read by a snapshot (`r`).
    Read,
    /// The table was truncated (`t`).
    Truncate,
}

impl Op {
    /// The one-letter code of the wire form and of Debezium's envelope.
    pub const fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }

    /// Parses a one-letter code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            "t" => Op::Truncate,
            _ => return None,
        })
    }
}

/// The table a change belongs to.
///
/// Built from dotted text in tests and builders: `"users"`, `"public.users"` (schema and table)
/// or `"shop.public.users"` (database, schema and table).
///
/// ```
/// use cdc_event::TableId;
///
/// let table = TableId::from("shop.public.users");
/// assert_eq!(table.database.as_deref(), Some("shop"));
/// assert_eq!(table.to_string(), "public.users");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TableId {
    /// Database (catalog) name, when the source reports it.
    pub database: Option<String>,
    /// Schema name (PostgreSQL); `None` for MySQL, where the database plays that role.
    pub schema: Option<String>,
    /// Table name.
    pub table: String,
}

impl TableId {
    /// A table with only a name.
    pub fn new(table: impl Into<String>) -> Self {
        TableId { database: None, schema: None, table: table.into() }
    }
}

impl From<&str> for TableId {
    fn from(dotted: &str) -> Self {
        let parts: Vec<&str> = dotted.splitn(3, '.').collect();
        let owned = |part: &str| Some(part.to_owned());
        match parts[..] {
            [database, schema, table] => {
                TableId { database: owned(database), schema: owned(schema), table: table.to_owned() }
            }
            [schema, table] => TableId { database: None, schema: owned(schema), table: table.to_owned() },
            _ => TableId::new(dotted),
        }
    }
}

impl fmt::Display for TableId {
    /// `schema.table`, else `database.table`, else `table` (as the host prints it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.schema, &self.database) {
            (Some(schema), _) => write!(f, "{schema}.{}", self.table),
            (None, Some(database)) => write!(f, "{database}.{}", self.table),
            (None, None) => f.write_str(&self.table),
        }
    }
}

/// An exact decimal number kept as its canonical text (`-12.340`, `7`): an optional `-`,
/// digits, and at most one `.` followed by digits. Never converted to a float.
///
/// ```
/// use cdc_event::Decimal;
///
/// assert_eq!(Decimal::parse("-12.340").unwrap().as_str(), "-12.340");
/// assert!(Decimal::parse("1,5").is_none());
/// assert_eq!(Decimal::from_unscaled("-12345", 2).unwrap().as_str(), "-123.45");
/// assert_eq!(Decimal::from_unscaled("5", 3).unwrap().as_str(), "0.005");
/// assert_eq!(Decimal::from_unscaled("-12", 2).unwrap().as_str(), "-0.12");
/// assert_eq!(Decimal::from_unscaled("120", 0).unwrap().as_str(), "120");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// Parses decimal text; `None` when it is not decimal text.
    pub fn parse(text: &str) -> Option<Self> {
        is_decimal(text).then(|| Decimal(text.to_owned()))
    }

    /// The decimal `unscaled × 10^-scale`, from the unscaled integer's decimal digits (with an
    /// optional `-`): the encoding of Kafka Connect's `Decimal` once its bytes are an integer.
    pub fn from_unscaled(unscaled: &str, scale: u32) -> Option<Self> {
        let (sign, digits) = match unscaled.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", unscaled),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let scale = scale as usize;
        // One allocation: decoders make a decimal for every numeric value they read.
        let mut text = String::with_capacity(sign.len() + digits.len().max(scale + 1) + 1);
        text.push_str(sign);
        if scale == 0 {
            text.push_str(digits);
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            text.extend([int, ".", frac]);
        } else {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', scale - digits.len()));
            text.push_str(digits);
        }
        Some(Decimal(text))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `text` is decimal text: `-`? digits (`.` digits*)?
fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Text that is not a decimal number, refused by [`Decimal`]'s `FromStr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotADecimal(pub String);

impl fmt::Display for NotADecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a decimal number", self.0)
    }
}

impl std::error::Error for NotADecimal {}

impl FromStr for Decimal {
    type Err = NotADecimal;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Decimal::parse(text).ok_or_else(|| NotADecimal(text.to_owned()))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A typed column value.
///
/// Exact types stay exact: decimals are decimal text, times are integers, and an unchanged
/// TOAST column is [`Value::Unavailable`], which is not null and must not be written as a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer type up to 64 bits.
    Int(i64),
    /// A float (`real`, `double precision`); never used for decimals.
    Float(f64),
    /// An exact decimal.
    Decimal(Decimal),
    /// Text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A date, as days since 1970-01-01.
    Date(i32),
    /// A time of day, as microseconds since midnight.
    Time(i64),
    /// A timestamp without zone, as microseconds since 1970-01-01T00:00:00.
    Timestamp(i64),
    /// A timestamp with zone, as ISO-8601 text (`2024-01-02T03:04:05.123456Z`).
    TimestampTz(String),
    /// A JSON document, as its text.
    Json(String),
    /// A UUID, as its canonical text.
    Uuid(String),
    /// An array.
    Array(Vec<Value>),
    /// An unchanged TOAST column: the source did not send it.
    Unavailable,
}

impl Value {
    /// The text of a [`Value::Text`]; `None` for every other variant.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The integer of a [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number of a [`Value::Float`] or [`Value::Int`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The boolean of a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this is an unchanged TOAST column.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Value::Unavailable)
    }

    /// The variant's name in lower case (`text`, `decimal`, `timestamptz`, …), for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Json(_) => "json",
            Value::Uuid(_) => "uuid",
            Value::Array(_) => "array",
            Value::Unavailable => "unavailable",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<Decimal> for Value {
    fn from(decimal: Decimal) -> Self {
        Value::Decimal(decimal)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is [`Value::Null`].
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// A column's name.
///
/// Every row carries the names of its columns, so a name must be cheap to make and to drop:
/// names of up to 23 bytes (nearly all) are held inline, with no allocation, and longer ones
/// are shared by their clones.
///
/// ```
/// use cdc_event::ColumnName;
///
/// let name = ColumnName::from("email");
/// assert_eq!(name, "email");
/// assert_eq!(name.len(), 5);
/// assert_eq!(String::from(name), "email");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ColumnName(SmolStr);

impl ColumnName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for ColumnName {
    type Target = str;

    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for ColumnName {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<str> for ColumnName {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for ColumnName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ColumnName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<'de> serde::Deserialize<'de> for ColumnName {
    /// Reads a name from a string without allocating a `String` for it first.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = ColumnName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column name")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<ColumnName, E> {
                Ok(ColumnName::from(name))
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

impl From<&str> for ColumnName {
    fn from(name: &str) -> Self {
        ColumnName(SmolStr::new(name))
    }
}

impl From<&String> for ColumnName {
    fn from(name: &String) -> Self {
        ColumnName(SmolStr::new(name))
    }
}

impl From<String> for ColumnName {
    fn from(name: String) -> Self {
        ColumnName(SmolStr::from(name))
    }
}

impl From<&ColumnName> for ColumnName {
    fn from(name: &ColumnName) -> Self {
        name.clone()
    }
}

impl From<ColumnName> for String {
    fn from(name: ColumnName) -> Self {
        name.0.into()
    }
}

impl PartialEq<str> for ColumnName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ColumnName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<ColumnName> for &str {
    fn eq(&self, other: &ColumnName) -> bool {
        *self == other.as_str()
    }
}

/// A row: column names and values in the source's column order.
///
/// ```
/// use cdc_event::{Row, Value, row};
///
/// let mut row = row! {"id" => 7, "email" => "a@example.com"};
/// row.set("email", Value::Null);
/// row.set("status", "active");
/// assert_eq!(row.get("status").and_then(Value::as_text), Some("active"));
/// assert_eq!(row.remove("id"), Some(Value::Int(7)));
/// assert_eq!(row.columns().collect::<Vec<_>>(), ["email", "status"]);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(Vec<(ColumnName, Value)>);

impl Row {
    /// An empty row.
    pub fn new() -> Self {
        Row(Vec::new())
    }

    /// The row with `column` set to `value` (builder form of [`Row::set`]).
    pub fn with(mut self, column: impl Into<ColumnName>, value: impl Into<Value>) -> Self {
        self.set(column, value);
        self
    }

    /// The value of a column, if the row has it.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.iter().find(|(name, _)| name.as_str() == column).map(|(_, value)| value)
    }

    /// A mutable reference to a column's value, if the row has it.
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(name, _)| name.as_str() == column).map(|(_, value)| value)
    }

    /// Sets a column in place, or appends it if the row does not have it. Returns the old value.
    pub fn set(&mut self, column: impl Into<ColumnName>, value: impl Into<Value>) -> Option<Value> {
        let column = column.into();
        let value = value.into();
        match self.get_mut(&column) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.0.push((column, value));
                None
            }
        }
    }

    /// Removes a column, keeping the order of the others. Returns its value.
    pub fn remove(&mut self, column: &str) -> Option<Value> {
        let index = self.0.iter().position(|(name, _)| name.as_str() == column)?;
        Some(self.0.remove(index).1)
    }

    /// Whether the row has the column.
    pub fn contains(&self, column: &str) -> bool {
        self.get(column).is_some()
    }

    /// The column names, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }

    /// The columns and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// The columns and mutable values, in order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value)> {
        self.0.iter_mut().map(|(name, value)| (name.as_str(), value))
    }

    /// Keeps only the columns for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value) -> bool) {
        self.0.retain_mut(|(name, value)| keep(name, value));
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An empty row with room for `columns` columns.
    pub fn with_capacity(columns: usize) -> Self {
        Row(Vec::with_capacity(columns))
    }

    /// Appends a column without looking for an existing one (decoders build rows this way).
    pub fn push(&mut self, column: impl Into<ColumnName>, value: Value) {
        self.0.push((column.into(), value));
    }
}

impl<K: Into<ColumnName>, V: Into<Value>> FromIterator<(K, V)> for Row {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(columns: I) -> Self {
        let mut row = Row::new();
        for (column, value) in columns {
            row.set(column, value);
        }
        row
    }
}

impl<'a> IntoIterator for &'a Row {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (ColumnName, Value)>,
        fn(&'a (ColumnName, Value)) -> (&'a str, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }
}

impl From<Vec<(ColumnName, Value)>> for Row {
    /// The columns as they are, in order (no check for repeated names).
    fn from(columns: Vec<(ColumnName, Value)>) -> Self {
        Row(columns)
    }
}

impl IntoIterator for Row {
    type Item = (ColumnName, Value);
    type IntoIter = std::vec::IntoIter<(ColumnName, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Builds a [`Row`] from `column => value` pairs; values go through `Into<Value>`.
///
/// ```
/// use cdc_event::{Decimal, Value, row};
///
/// let row = row! {"id" => 1, "price" => Decimal::parse("9.90").unwrap(), "note" => None::<&str>};
/// assert_eq!(row.get("note"), Some(&Value::Null));
/// ```
#[macro_export]
macro_rules! row {
    ($($column:expr => $value:expr),* $(,)?) => {
        $crate::Row::new()$(.with($column, $value))*
    };
}
