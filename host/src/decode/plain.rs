//! The fast path for the most common record: a schemaless JsonConverter envelope of a row
//! change. Rows are read straight into [`Row`]s, without building a JSON tree for them first;
//! anything unusual (a schema, a DDL record, a field of the wrong shape) returns `None` and takes
//! the general path, which also words the errors.

use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::envelope::source_from_text;
use super::logical;
use crate::event::{ChangeEvent, ColumnName, Op, Position, Row, Value};

/// The envelope as Debezium writes it without a schema; unknown fields are skipped.
#[derive(Deserialize)]
struct PlainEnvelope<'a> {
    #[serde(default)]
    before: Option<NativeRow>,
    #[serde(default)]
    after: Option<NativeRow>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    op: Option<&'a str>,
    ts_ms: Option<i64>,
}

/// Reads a schemaless row change, or returns `None` for the general path to handle. The key is
/// decoded separately, so the event is finished by [`into_event`].
pub(super) fn parse(value: &[u8]) -> Option<ChangeEvent> {
    let envelope: PlainEnvelope<'_> = serde_json::from_slice(value).ok()?;
    let op = Op::from_code(envelope.op?)?;
    let (table, source) = source_from_text(envelope.source?.get())?;
    Some(ChangeEvent {
        op,
        table,
        key: None,
        before: envelope.before.map(|row| row.0),
        after: envelope.after.map(|row| row.0),
        source,
        ts_ms: envelope.ts_ms,
        columns: None,
        position: Position::Kafka { topic: "".into(), partition: 0, offset: 0 },
        output_index: 0,
    })
}

/// Completes an event from [`parse`] with its key and position.
pub(super) fn into_event(mut event: ChangeEvent, key: Option<Row>, position: Position) -> ChangeEvent {
    event.key = key;
    event.position = position;
    event
}

/// A row typed natively, as [`logical::native`] does, read without an intermediate tree.
struct NativeRow(Row);

impl<'de> Deserialize<'de> for NativeRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = NativeRow;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NativeRow, A::Error> {
                let mut columns = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((name, NativeValue(value))) = map.next_entry::<ColumnName, NativeValue>()? {
                    columns.push((name, value));
                }
                Ok(NativeRow(Row::from(columns)))
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

/// One column value: scalars are typed here; arrays and objects go through JSON and
/// [`logical::native`], which knows their special forms.
struct NativeValue(Value);

impl<'de> Deserialize<'de> for NativeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = NativeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NativeValue, E> {
        Ok(NativeValue(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<NativeValue, E> {
        Ok(NativeValue(Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<NativeValue, E> {
        Ok(NativeValue(Value::Int(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<NativeValue, E> {
        Ok(NativeValue(logical::native(Json::from(value))))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<NativeValue, E> {
        Ok(NativeValue(logical::native(serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number))))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<NativeValue, E> {
        self.visit_string(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<NativeValue, E> {
        Ok(NativeValue(logical::native(Json::String(value))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NativeValue, A::Error> {
        let json = Json::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(NativeValue(logical::native(json)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NativeValue, A::Error> {
        let json = Json::deserialize(MapAccessDeserializer::new(map))?;
        Ok(NativeValue(logical::native(json)))
    }
}
