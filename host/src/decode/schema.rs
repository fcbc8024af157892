//! Kafka Connect schemas as JsonConverter writes them, and typing a JSON value by one.
//!
//! A field's Debezium logical name is tried first ([`super::logical`]); otherwise its Connect
//! type decides the [`Value`] variant. A value that does not fit its schema is an error.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::logical::{self, Logical};
use super::{Error, Path};
use crate::event::{Column, ColumnName, Row, Value};

/// The parameter holding a column's source database type, when the connector propagates it.
const SOURCE_TYPE: &str = "__debezium.source.column.type";
/// The parameter holding its length.
const SOURCE_LENGTH: &str = "__debezium.source.column.length";

/// A Kafka Connect schema (`{"type", "optional", "name", "fields", …}`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct ConnectSchema {
    #[serde(rename = "type")]
    kind: ConnectType,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    name: Option<String>,
    /// The field name, when this schema is a field of a struct: the column name of a row's
    /// field, which every row of the schema shares.
    #[serde(default)]
    field: Option<ColumnName>,
    #[serde(default)]
    fields: Vec<ConnectSchema>,
    #[serde(default)]
    items: Option<Box<ConnectSchema>>,
    #[serde(default)]
    parameters: Map<String, Json>,
    /// The columns of this (row) schema, once computed: events of one schema share them.
    #[serde(skip)]
    columns: OnceLock<Arc<[Column]>>,
}

/// The Connect schema types; JsonConverter spells `float32`/`float64` as `float`/`double`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ConnectType {
    Int8,
    Int16,
    Int32,
    Int64,
    #[serde(alias = "float")]
    Float32,
    #[serde(alias = "double")]
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl ConnectType {
    /// The range of an integer type.
    fn bounds(self) -> Option<(i64, i64)> {
        Some(match self {
            ConnectType::Int8 => (i8::MIN.into(), i8::MAX.into()),
            ConnectType::Int16 => (i16::MIN.into(), i16::MAX.into()),
            ConnectType::Int32 => (i32::MIN.into(), i32::MAX.into()),
            ConnectType::Int64 => (i64::MIN, i64::MAX),
            _ => return None,
        })
    }

    /// The Connect name of the type, as recorded in [`Column::connect_type`].
    const fn name(self) -> &'static str {
        match self {
            ConnectType::Int8 => "int8",
            ConnectType::Int16 => "int16",
            ConnectType::Int32 => "int32",
            ConnectType::Int64 => "int64",
            ConnectType::Float32 => "float32",
            ConnectType::Float64 => "float64",
            ConnectType::Boolean => "boolean",
            ConnectType::String => "string",
            ConnectType::Bytes => "bytes",
            ConnectType::Array => "array",
            ConnectType::Map => "map",
            ConnectType::Struct => "struct",
        }
    }
}

impl ConnectSchema {
    /// The schema of the struct field named `name`, if this is a struct that has one.
    pub(super) fn field(&self, name: &str) -> Option<&ConnectSchema> {
        self.fields.iter().find(|field| field.field.as_deref() == Some(name))
    }

    /// A schema parameter (`scale`, `__debezium.source.column.type`, …).
    pub(super) fn parameter(&self, name: &str) -> Option<&Json> {
        self.parameters.get(name)
    }

    /// A parameter holding a number (Connect writes them as text).
    fn numeric_parameter(&self, name: &str) -> Option<u32> {
        match self.parameter(name)? {
            Json::String(text) => text.parse().ok(),
            Json::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        }
    }

    /// How [`typed`] types a scalar of this schema, decided once so that a decoder that reads
    /// scalars itself (the Avro plan) types them the same way; `None` for arrays, maps and
    /// structs.
    pub(super) fn scalar_typing(&self) -> Option<ScalarTyping> {
        if let Some(logical) = self.name.as_deref().and_then(Logical::from_name) {
            return Some(ScalarTyping::Logical(logical));
        }
        Some(match self.kind {
            ConnectType::Boolean => ScalarTyping::Bool,
            ConnectType::Float32 | ConnectType::Float64 => ScalarTyping::Float,
            ConnectType::String => ScalarTyping::Text { numeric: logical::is_numeric_source(self) },
            ConnectType::Bytes => ScalarTyping::Bytes,
            ConnectType::Array | ConnectType::Map | ConnectType::Struct => return None,
            int => {
                let (min, max) = int.bounds()?;
                ScalarTyping::Int { min, max, kind: int.name() }
            }
        })
    }

    /// The `scale` parameter of a decimal, as text or a number.
    pub(super) fn decimal_scale(&self) -> Option<i64> {
        match self.parameter("scale") {
            Some(Json::String(s)) => s.parse::<i64>().ok(),
            Some(Json::Number(n)) => n.as_i64(),
            _ => None,
        }
    }

    /// The columns of a row schema (a struct), in order.
    pub(super) fn columns(&self, path: Path<'_>) -> Result<Arc<[Column]>, Error> {
        if let Some(columns) = self.columns.get() {
            return Ok(columns.clone());
        }
        let columns: Arc<[Column]> = self
            .struct_fields(path)?
            .map(|(name, field)| {
                Ok(Column {
                    name: name.to_string(),
                    connect_type: field.kind.name().to_owned(),
                    logical_type: field.name.clone(),
                    optional: field.optional,
                    precision: field.numeric_parameter("connect.decimal.precision"),
                    scale: field.numeric_parameter("scale"),
                    items: field.items.as_ref().map(|items| items.kind.name().to_owned()),
                    source_type: field.parameter(SOURCE_TYPE).and_then(Json::as_str).map(str::to_owned),
                    source_length: field.numeric_parameter(SOURCE_LENGTH),
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(self.columns.get_or_init(|| columns).clone())
    }

    /// The named fields of a struct schema; errors if this is not a struct or a field has no name.
    pub(super) fn struct_fields<'s>(
        &'s self,
        path: Path<'_>,
    ) -> Result<impl Iterator<Item = (&'s ColumnName, &'s ConnectSchema)>, Error> {
        let fields = self.row_fields(path)?;
        Ok(fields.iter().filter_map(|field| Some((field.field.as_ref()?, field))))
    }

    /// The fields of a struct schema, each of which has a name ([`ConnectSchema::field_name`]);
    /// errors if this is not a struct or a field has no name.
    pub(super) fn row_fields(&self, path: Path<'_>) -> Result<&[ConnectSchema], Error> {
        if self.kind != ConnectType::Struct {
            let kind = self.kind.name();
            return Err(path.error(format!("schema is {kind}, expected a struct")));
        }
        if let Some(index) = self.fields.iter().position(|field| field.field.is_none()) {
            return Err(path.error(format!("schema field {index} has no name")));
        }
        Ok(&self.fields)
    }

    /// The name of this schema as a field of a struct; empty when it is not one.
    pub(super) fn field_name(&self) -> &str {
        self.field.as_deref().unwrap_or_default()
    }

    /// [`ConnectSchema::field_name`] as a column name for a row.
    pub(super) fn column_name(&self) -> ColumnName {
        self.field.clone().unwrap_or_default()
    }
}

/// How a scalar schema types its values (see [`ConnectSchema::scalar_typing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScalarTyping {
    /// A Debezium logical type: [`Logical::decode`].
    Logical(Logical),
    /// `boolean`.
    Bool,
    /// An integer type, refused outside its range.
    Int {
        /// The smallest value of the type.
        min: i64,
        /// The largest.
        max: i64,
        /// The Connect name of the type, for errors.
        kind: &'static str,
    },
    /// `float32` or `float64`.
    Float,
    /// `string`: text, or a decimal when the source column is numeric ([`logical::string`]).
    Text {
        /// Whether the source column is numeric.
        numeric: bool,
    },
    /// `bytes`.
    Bytes,
}

/// An integer checked against the range of its Connect type.
pub(super) fn bounded_int(
    path: Path<'_>,
    value: i64,
    (min, max): (i64, i64),
    kind: &str,
) -> Result<Value, Error> {
    if (min..=max).contains(&value) {
        Ok(Value::Int(value))
    } else {
        Err(path.error(format!("{value} is out of range for {kind}")))
    }
}

/// Types a row (a JSON object or null) by its struct schema, in the schema's column order.
pub(super) fn typed_row(path: Path<'_>, schema: &ConnectSchema, value: Json) -> Result<Option<Row>, Error> {
    let mut object = match value {
        Json::Null => return Ok(None),
        Json::Object(object) => object,
        other => return Err(path.error(format!("expected an object, found {}", kind_of(&other)))),
    };
    let mut row = Vec::with_capacity(schema.fields.len());
    for (name, field) in schema.struct_fields(path)? {
        // JsonConverter writes every field; one left out can only be null.
        let value = object.remove(name.as_str()).unwrap_or(Json::Null);
        row.push((name.clone(), typed(path.field(name), field, value)?));
    }
    if let Some(extra) = object.keys().next() {
        return Err(path.field(extra).error("field is not in the schema"));
    }
    Ok(Some(Row::from(row)))
}

/// Types one value by its schema: the logical name first, then the Connect type.
pub(super) fn typed(path: Path<'_>, schema: &ConnectSchema, value: Json) -> Result<Value, Error> {
    // A null in a required field cannot come from JsonConverter; it is kept as null, not refused.
    if value.is_null() {
        return Ok(Value::Null);
    }
    if logical::is_unavailable(&value) {
        return Ok(Value::Unavailable);
    }
    match schema.name.as_deref().and_then(Logical::from_name) {
        Some(logical) => logical.decode(path, schema, value),
        None => by_connect_type(path, schema, value),
    }
}

fn by_connect_type(path: Path<'_>, schema: &ConnectSchema, value: Json) -> Result<Value, Error> {
    match schema.kind {
        int @ (ConnectType::Int8 | ConnectType::Int16 | ConnectType::Int32 | ConnectType::Int64) => {
            let bounds = int.bounds().expect("an integer type has bounds");
            bounded_int(path, integer(path, &value)?, bounds, int.name())
        }
        ConnectType::Float32 | ConnectType::Float64 => float(path, &value).map(Value::Float),
        ConnectType::Boolean => match value {
            Json::Bool(b) => Ok(Value::Bool(b)),
            other => Err(path.error(format!("expected a boolean, found {}", kind_of(&other)))),
        },
        ConnectType::String => Ok(logical::string(logical::is_numeric_source(schema), text(path, value)?)),
        ConnectType::Bytes => base64(path, "bytes", value).map(Value::Bytes),
        ConnectType::Array => {
            let items_schema =
                schema.items.as_deref().ok_or_else(|| path.error("array schema has no `items`"))?;
            let Json::Array(items) = value else {
                return Err(path.error(format!("expected an array, found {}", kind_of(&value))));
            };
            let mut values = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                values.push(typed(path.index(index), items_schema, item)?);
            }
            Ok(Value::Array(values))
        }
        // Neither has a variant of its own; both are kept whole as JSON text.
        ConnectType::Map | ConnectType::Struct => Ok(Value::Json(value.to_string())),
    }
}

/// Bytes sent as base64 text, as JsonConverter writes `bytes`.
pub(super) fn base64(path: Path<'_>, what: &'static str, value: Json) -> Result<Vec<u8>, Error> {
    let text = text(path, value)?;
    BASE64.decode(text).map_err(|source| Error::Base64 { path: path.to_string(), what, source })
}

/// A JSON string.
pub(super) fn text(path: Path<'_>, value: Json) -> Result<String, Error> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(path.error(format!("expected a string, found {}", kind_of(&other)))),
    }
}

/// A JSON integer that fits `i64`.
pub(super) fn integer(path: Path<'_>, value: &Json) -> Result<i64, Error> {
    match value {
        Json::Number(n) => {
            n.as_i64().ok_or_else(|| path.error(format!("expected a 64-bit integer, found {n}")))
        }
        other => Err(path.error(format!("expected an integer, found {}", kind_of(other)))),
    }
}

/// A float: a JSON number, or the text JsonConverter uses for the values JSON cannot hold.
fn float(path: Path<'_>, value: &Json) -> Result<f64, Error> {
    match value {
        Json::Number(n) => n.as_f64().ok_or_else(|| path.error("expected a float")),
        Json::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(path.error("expected a float, found a string")),
        },
        other => Err(path.error(format!("expected a float, found {}", kind_of(other)))),
    }
}

/// The JSON type of a value, for error messages.
pub(super) fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;

    /// A schema from its JSON form.
    pub(in crate::decode) fn schema(schema: Json) -> ConnectSchema {
        serde_json::from_value(schema).expect("a Connect schema")
    }

    /// Types `value` by a schema of type `kind` and logical name `name`.
    pub(in crate::decode) fn typed_as(kind: &str, name: Option<&str>, value: Json) -> Result<Value, Error> {
        typed(Path::Root("c"), &schema(json!({"type": kind, "optional": true, "name": name})), value)
    }

    #[test]
    fn integers_are_bounded_by_their_connect_type() {
        assert_eq!(typed_as("int8", None, json!(-128)).expect("fits"), Value::Int(-128));
        let error = typed_as("int16", None, json!(40_000)).expect_err("too big");
        assert_eq!(error.to_string(), "field `c`: 40000 is out of range for int16");
        let error = typed_as("int64", None, json!(u64::MAX)).expect_err("too big");
        assert_eq!(error.to_string(), "field `c`: expected a 64-bit integer, found 18446744073709551615");
    }

    #[test]
    fn floats_maps_and_structs_have_a_home() {
        assert!(matches!(typed_as("double", None, json!("NaN")), Ok(Value::Float(f)) if f.is_nan()));
        assert_eq!(typed_as("float", None, json!(1)).expect("fits"), Value::Float(1.0));
        let map = typed_as("map", None, json!({"a": "b"})).expect("fits");
        assert_eq!(map, Value::Json(r#"{"a":"b"}"#.into()));
        let point = schema(json!({"type": "struct", "fields": [{"type": "double", "field": "x"}]}));
        let value = typed(Path::Root("c"), &point, json!({"x": 1.5})).expect("fits");
        assert_eq!(value, Value::Json(r#"{"x":1.5}"#.into()));
        let no_items = typed_as("array", None, json!([1])).expect_err("no items");
        assert_eq!(no_items.to_string(), "field `c`: array schema has no `items`");
    }

    #[test]
    fn row_schemas_must_be_structs_of_named_fields() {
        let error = typed_row(Path::Root("key"), &schema(json!({"type": "int32"})), json!({}));
        assert_eq!(
            error.expect_err("not a struct").to_string(),
            "field `key`: schema is int32, expected a struct"
        );
        let unnamed = schema(json!({"type": "struct", "fields": [{"type": "int32"}]}));
        let error = unnamed.columns(Path::Root("schema")).expect_err("unnamed");
        assert_eq!(error.to_string(), "field `schema`: schema field 0 has no name");
    }
}
