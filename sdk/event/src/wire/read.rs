//! Reads the wire form straight from the bytes into rows and values: no JSON tree on the way.
//!
//! The visitors report a problem by leaving a [`WireError`] (with the field's path) in the
//! [`Reader`] and failing the parse; [`read_record`] returns that error rather than the parser's.

use std::cell::RefCell;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use super::{WireError, WireRecord};
use crate::{ColumnName, Decimal, Op, Row, TableId, Value};

/// Reads one wire record. Fields it leaves out are `None` in the [`WireRecord`]; unknown fields
/// are ignored.
///
/// # Errors
/// When the bytes are not one JSON object, a field has the wrong shape, or a value has an
/// unknown tag or a payload of the wrong type.
pub fn read_record(bytes: &[u8]) -> Result<WireRecord, WireError> {
    let reader = Reader::default();
    let mut parser = serde_json::Deserializer::from_slice(bytes);
    let parsed =
        parser.deserialize_any(RecordVisitor(&reader)).and_then(|record| parser.end().map(|()| record));
    parsed.map_err(|error| reader.failure.take().unwrap_or(WireError::Json(error)))
}

/// Where the visitors leave the first problem they find.
#[derive(Default)]
struct Reader {
    failure: RefCell<Option<WireError>>,
}

impl Reader {
    fn fail<E: de::Error>(&self, field: impl Into<String>, problem: impl Into<String>) -> E {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(WireError::field(field, problem));
        }
        E::custom("invalid wire record")
    }
}

/// The path of a value: the row's field and the column, joined only when an error names it.
#[derive(Clone, Copy)]
struct Path<'a> {
    field: &'a str,
    column: &'a str,
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.field, self.column)
    }
}

struct RecordVisitor<'r>(&'r Reader);

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = WireRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a wire record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireRecord, A::Error> {
        let reader = self.0;
        let mut record = WireRecord::default();
        while let Some(Name(field)) = map.next_key::<Name>()? {
            match field.as_str() {
                "op" => {
                    let code = map.next_value::<Json>()?;
                    let op = code.as_str().and_then(Op::from_code);
                    record.op = Some(op.ok_or_else(|| reader.fail("op", "expected one of c, u, d, r, t"))?);
                }
                "table" => record.table = Some(table(reader, map.next_value::<Json>()?)?),
                "key" => record.key = Some(map.next_value_seed(OptionalRow { reader, field: "key" })?),
                "before" => {
                    record.before = Some(map.next_value_seed(OptionalRow { reader, field: "before" })?)
                }
                "after" => record.after = Some(map.next_value_seed(OptionalRow { reader, field: "after" })?),
                "source" => {
                    record.source = Some(match map.next_value::<Json>()? {
                        Json::Null => Map::new(),
                        Json::Object(source) => source,
                        _ => return Err(reader.fail("source", "expected an object")),
                    });
                }
                "ts_ms" => record.ts_ms = Some(map.next_value::<Json>()?.as_i64()),
                "id" => {
                    record.id = match map.next_value::<Json>()? {
                        Json::Null => None,
                        Json::String(id) => Some(id),
                        _ => return Err(reader.fail("id", "expected a string")),
                    };
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(record)
    }

    fn visit_unit<E: de::Error>(self) -> Result<WireRecord, E> {
        Err(self.0.fail("", "expected an object"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<WireRecord, E> {
        Err(self.0.fail("", "expected an object"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<WireRecord, E> {
        Err(self.0.fail("", "expected an object"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<WireRecord, E> {
        Err(self.0.fail("", "expected an object"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<WireRecord, E> {
        Err(self.0.fail("", "expected an object"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<WireRecord, E> {
        Err(self.0.fail("", "expected an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<WireRecord, A::Error> {
        Err(self.0.fail("", "expected an object"))
    }
}

fn table<E: de::Error>(reader: &Reader, table: Json) -> Result<TableId, E> {
    let Json::Object(mut table) = table else {
        return Err(reader.fail("table", "expected an object"));
    };
    let mut text = |field: &str| match table.remove(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => Ok(Some(text)),
        Some(_) => Err(reader.fail(format!("table.{field}"), "expected a string or null")),
    };
    let database = text("database")?;
    let schema = text("schema")?;
    let table = text("table")?.ok_or_else(|| reader.fail("table.table", "expected a string"))?;
    Ok(TableId { database, schema, table })
}

/// `key`, `before` or `after`: a row object or `null`.
struct OptionalRow<'r> {
    reader: &'r Reader,
    field: &'static str,
}

impl<'de> DeserializeSeed<'de> for OptionalRow<'_> {
    type Value = Option<Row>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Option<Row>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OptionalRow<'_> {
    type Value = Option<Row>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Row>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Row>, A::Error> {
        let mut row = Row::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(column) = map.next_key::<ColumnName>()? {
            let path = Path { field: self.field, column: &column };
            let value = map.next_value_seed(ValueSeed { reader: self.reader, path })?;
            row.push(column, value);
        }
        Ok(Some(row))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Row>, E> {
        Err(self.not_a_row())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Row>, E> {
        Err(self.not_a_row())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Row>, E> {
        Err(self.not_a_row())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Row>, E> {
        Err(self.not_a_row())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<Row>, E> {
        Err(self.not_a_row())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Option<Row>, A::Error> {
        Err(self.not_a_row())
    }
}

impl OptionalRow<'_> {
    fn not_a_row<E: de::Error>(&self) -> E {
        self.reader.fail(self.field, "expected an object or null")
    }
}

/// One column value; arrays hold values of the same path.
#[derive(Clone, Copy)]
struct ValueSeed<'r, 'p> {
    reader: &'r Reader,
    path: Path<'p>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a wire value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    /// Integers beyond `i64` are floats, as JSON readers take them.
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        Ok(Value::Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Value, E> {
        Ok(Value::Text(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let one_key = "an object value must have exactly one `$type` key";
        let Some(Name(tag)) = map.next_key::<Name>()? else {
            return Err(self.reader.fail(self.path.to_string(), one_key));
        };
        let payload = map.next_value::<Json>()?;
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(self.reader.fail(self.path.to_string(), one_key));
        }
        tagged(tag.as_str(), payload).map_err(|problem| self.reader.fail(self.path.to_string(), problem))
    }
}

/// A field name or value tag, borrowed from the input when it has no escapes: most are.
struct Name<'de>(NameText<'de>);

enum NameText<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl NameText<'_> {
    fn as_str(&self) -> &str {
        match self {
            NameText::Borrowed(text) => text,
            NameText::Owned(text) => text,
        }
    }
}

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(NameText::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Name<'de>, E> {
                Ok(Name(NameText::Owned(text.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// The value of a one-key `{"$tag": payload}` object, or what is wrong with it.
fn tagged(tag: &str, payload: Json) -> Result<Value, String> {
    let text = |payload: Json| match payload {
        Json::String(text) => Ok(text),
        _ => Err(format!("`{tag}` expects a string")),
    };
    let int = |payload: &Json| payload.as_i64().ok_or_else(|| format!("`{tag}` expects an integer"));
    Ok(match tag {
        "$decimal" => Value::Decimal(Decimal::parse(&text(payload)?).ok_or("not a decimal number")?),
        "$float" => Value::Float(text(payload)?.parse().map_err(|_| "not a float")?),
        "$bytes" => Value::Bytes(BASE64.decode(text(payload)?).map_err(|_| "not base64")?),
        "$date" => Value::Date(i32::try_from(int(&payload)?).map_err(|_| "date out of range")?),
        "$time" => Value::Time(int(&payload)?),
        "$timestamp" => Value::Timestamp(int(&payload)?),
        "$timestamptz" => Value::TimestampTz(text(payload)?),
        "$json" => Value::Json(text(payload)?),
        "$uuid" => Value::Uuid(text(payload)?),
        "$unavailable" => Value::Unavailable,
        other => return Err(format!("unknown value tag `{other}`")),
    })
}
