//! The fast path for a JsonConverter envelope with a schema: the payload's rows are typed while
//! they are read, column by column by their Connect schema, without building a JSON tree for the
//! envelope and its rows first. Every value is typed by [`schema::typed`], as on the general
//! path, so both give the same values; anything unusual (a DDL record, a field not in the schema,
//! a value that does not fit) returns `None` and takes the general path, which words the error.

use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::envelope::source_from_text;
use super::schema::{self, ConnectSchema};
use super::{Path, envelope};
use crate::event::{ChangeEvent, Op, Position, Row, Value};

/// Reads a row change whose envelope schema is `schema` from its payload text, or returns
/// `None` for the general path. The key is decoded separately and given as `key`.
pub(super) fn parse(
    schema: &ConnectSchema,
    payload: &str,
    key: Option<Row>,
    position: Position,
) -> Option<ChangeEvent> {
    let mut payload = serde_json::Deserializer::from_str(payload);
    let event = parse_from(schema, &mut payload, key, position)?;
    // The payload may be a slice that was not checked to hold one JSON value and no more.
    payload.end().ok()?;
    Some(event)
}

/// Reads a row (an object, or null) typed by its struct schema `schema` from its text, or
/// returns `None` for the general path: a key's payload.
pub(super) fn parse_row(schema: &ConnectSchema, text: &str) -> Option<Option<Row>> {
    let mut payload = serde_json::Deserializer::from_str(text);
    let row = RowSeed(schema).deserialize(&mut payload).ok()?;
    payload.end().ok()?;
    Some(row)
}

fn parse_from<'de, D: Deserializer<'de>>(
    schema: &ConnectSchema,
    payload: D,
    key: Option<Row>,
    position: Position,
) -> Option<ChangeEvent> {
    let (before, after) = (schema.field("before")?, schema.field("after")?);
    let parts = EnvelopeSeed { before, after }.deserialize(payload).ok()?;
    let (table, source) = source_from_text(parts.source?.get())?;
    Some(ChangeEvent {
        op: Op::from_code(parts.op?)?,
        table,
        key,
        before: parts.before,
        after: parts.after,
        source,
        ts_ms: envelope::optional_i64(Path::Root("ts_ms"), parts.ts_ms.as_ref()).ok()?,
        columns: Some(after.columns(Path::Root("schema.after")).ok()?),
        position,
        output_index: 0,
    })
}

/// The envelope's fields that make an event; others are skipped, as the general path ignores
/// them. Text is borrowed from the payload: an `op` with escapes in it takes the general path.
#[derive(Default)]
struct EnvelopeParts<'de> {
    op: Option<&'de str>,
    source: Option<&'de RawValue>,
    ts_ms: Option<Json>,
    before: Option<Row>,
    after: Option<Row>,
}

/// Reads an envelope whose rows have these schemas.
struct EnvelopeSeed<'s> {
    before: &'s ConnectSchema,
    after: &'s ConnectSchema,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = EnvelopeParts<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EnvelopeParts<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = EnvelopeParts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Debezium envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvelopeParts<'de>, A::Error> {
        let mut parts = EnvelopeParts::default();
        while let Some(field) = map.next_key_seed(EnvelopeKey)? {
            match field {
                EnvelopeField::Before => parts.before = map.next_value_seed(RowSeed(self.before))?,
                EnvelopeField::After => parts.after = map.next_value_seed(RowSeed(self.after))?,
                EnvelopeField::Source => parts.source = map.next_value()?,
                EnvelopeField::Op => parts.op = map.next_value()?,
                EnvelopeField::TsMs => parts.ts_ms = Some(map.next_value()?),
                EnvelopeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }
}

/// The envelope fields an event is made of.
enum EnvelopeField {
    Before,
    After,
    Source,
    Op,
    TsMs,
    Other,
}

/// Reads an envelope field name without allocating it.
struct EnvelopeKey;

impl<'de> DeserializeSeed<'de> for EnvelopeKey {
    type Value = EnvelopeField;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EnvelopeField, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for EnvelopeKey {
    type Value = EnvelopeField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<EnvelopeField, E> {
        Ok(match name {
            "before" => EnvelopeField::Before,
            "after" => EnvelopeField::After,
            "source" => EnvelopeField::Source,
            "op" => EnvelopeField::Op,
            "ts_ms" => EnvelopeField::TsMs,
            _ => EnvelopeField::Other,
        })
    }
}

/// Reads a row (an object, or null) typed by its struct schema, in the schema's column order;
/// a column the object leaves out is null, as on the general path.
struct RowSeed<'s>(&'s ConnectSchema);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Option<Row>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Row>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Option<Row>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Row>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Row>, A::Error> {
        let fields = self.0.row_fields(Path::Root("")).map_err(de::Error::custom)?;
        // Every column starts null: one the object leaves out stays so.
        let mut row: Vec<_> = fields.iter().map(|field| (field.column_name(), Value::Null)).collect();
        let mut next = 0;
        while let Some(index) = map.next_key_seed(ColumnKey { fields, next })? {
            row[index].1 = map.next_value_seed(ValueSeed(&fields[index]))?;
            next = index + 1;
        }
        Ok(Some(Row::from(row)))
    }
}

/// Reads a column name into its index among `fields`, without allocating it; a name not in the
/// schema is an error.
struct ColumnKey<'f> {
    fields: &'f [ConnectSchema],
    /// Where the column after the previous one is: Debezium writes them in the schema's order.
    next: usize,
}

impl<'de> DeserializeSeed<'de> for ColumnKey<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for ColumnKey<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        match self.fields.get(self.next) {
            Some(expected) if expected.field_name() == name => Ok(self.next),
            _ => self
                .fields
                .iter()
                .position(|field| field.field_name() == name)
                .ok_or_else(|| de::Error::custom("a field is not in the schema")),
        }
    }
}

/// Reads one value and types it by its schema through [`schema::typed`]; a scalar never becomes
/// a JSON tree, an array or object does, as the general path would read it.
struct ValueSeed<'s>(&'s ConnectSchema);

impl ValueSeed<'_> {
    fn typed<E: de::Error>(&self, json: Json) -> Result<Value, E> {
        schema::typed(Path::Root(""), self.0, json).map_err(de::Error::custom)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        self.typed(Json::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        self.typed(Json::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        self.typed(Json::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        let number = serde_json::Number::from_f64(value).ok_or_else(|| de::Error::custom("not a number"))?;
        self.typed(Json::Number(number))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        self.typed(Json::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        self.typed(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        self.typed(Json::deserialize(SeqAccessDeserializer::new(seq))?)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        self.typed(Json::deserialize(MapAccessDeserializer::new(map))?)
    }
}
