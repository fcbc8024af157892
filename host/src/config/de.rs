//! A serde deserializer over a [`Node`] tree that knows each value's path and location.
//!
//! It fills the [`super::raw`] structs. Strings are parsed into numbers and booleans where the
//! field needs one (so `port: ${PORT}` works), every unknown key of a struct is collected rather
//! than stopping at the first, and type errors never quote the value.

use std::cell::RefCell;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::error::{DeError, Error, ErrorKind};
use super::node::{Node, Scalar, Value, join, kind_name};

/// Deserializes `T` from `node`; unknown keys do not stop it and are returned as errors too.
pub(super) fn from_node<T: DeserializeOwned>(node: &Node, file: &str) -> (Option<T>, Vec<Error>) {
    let unknown = RefCell::new(Vec::new());
    let result = T::deserialize(NodeDe { node, path: String::new(), unknown: &unknown });
    let mut errors: Vec<Error> = unknown.into_inner().into_iter().map(|e| e.into_error(file)).collect();
    match result {
        Ok(value) => (Some(value), errors),
        Err(error) => {
            errors.push(error.into_error(file));
            (None, errors)
        }
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    unknown: &'a RefCell<Vec<DeError>>,
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node, path: String) -> Self {
        Self { node, path, unknown: self.unknown }
    }

    fn type_error(&self, expected: &str) -> DeError {
        DeError::kind(ErrorKind::InvalidType { expected: expected.to_owned(), found: kind_name(self.node) })
            .at(&self.path, self.node.location)
    }

    fn located<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|e| e.at(&self.path, self.node.location))
    }

    /// The node as an integer: YAML integers, whole floats, and strings that parse as one.
    fn integer(&self) -> Result<i128, DeError> {
        let parsed = match &self.node.value {
            Value::Scalar(Scalar::Int(v)) => Some(i128::from(*v)),
            Value::Scalar(Scalar::UInt(v)) => Some(i128::from(*v)),
            Value::Scalar(Scalar::Str(s)) => s.trim().replace('_', "").parse().ok(),
            // Plain `0123` is a float to YAML 1.2 but an integer to the seed (YAML 1.1).
            Value::Scalar(Scalar::Float(_)) => {
                self.node.text.as_ref().and_then(|t| t.replace('_', "").parse().ok())
            }
            _ => None,
        };
        parsed.ok_or_else(|| self.type_error("an integer"))
    }

    fn float(&self) -> Result<f64, DeError> {
        let parsed = match &self.node.value {
            Value::Scalar(Scalar::Float(v)) => Some(*v),
            Value::Scalar(Scalar::Int(v)) => Some(*v as f64),
            Value::Scalar(Scalar::UInt(v)) => Some(*v as f64),
            Value::Scalar(Scalar::Str(s)) => s.trim().replace('_', "").parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| self.type_error("a number"))
    }
}

macro_rules! integer_methods {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let value = self.integer()?;
            let value = <$ty>::try_from(value)
                .map_err(|_| self.type_error(concat!("an integer that fits ", stringify!($ty))))?;
            self.located(visitor.$visit(value))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Scalar(Scalar::Null) => visitor.visit_unit(),
            Value::Scalar(Scalar::Bool(v)) => visitor.visit_bool(*v),
            Value::Scalar(Scalar::Int(v)) => visitor.visit_i64(*v),
            Value::Scalar(Scalar::UInt(v)) => visitor.visit_u64(*v),
            Value::Scalar(Scalar::Float(v)) => visitor.visit_f64(*v),
            Value::Scalar(Scalar::Str(v)) => visitor.visit_str(v),
            Value::Seq(_) => return self.deserialize_seq(visitor),
            Value::Map(_) => return self.deserialize_map(visitor),
        };
        self.located(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = match &self.node.value {
            Value::Scalar(Scalar::Bool(v)) => Some(*v),
            Value::Scalar(Scalar::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Some(true),
                "false" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        let value = value.ok_or_else(|| self.type_error("a boolean"))?;
        self.located(visitor.visit_bool(value))
    }

    integer_methods! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = self.float()?;
        self.located(visitor.visit_f64(value))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match (&self.node.value, &self.node.text) {
            (Value::Scalar(Scalar::Str(s)), _) => visitor.visit_str(s),
            (Value::Scalar(Scalar::Null), _) => return Err(self.type_error("a string")),
            (Value::Scalar(_), Some(text)) => visitor.visit_str(text),
            _ => return Err(self.type_error("a string")),
        };
        self.located(result)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if matches!(self.node.value, Value::Scalar(Scalar::Null)) {
            self.located(visitor.visit_none())
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.located(visitor.visit_unit())
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Value::Seq(items) = &self.node.value else {
            return Err(self.type_error("a sequence"));
        };
        let access = SeqDe { parent: &self, items: items.iter().enumerate() };
        self.located(visitor.visit_seq(access))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let Value::Map(entries) = &self.node.value else {
            return Err(self.type_error("a mapping"));
        };
        // A struct's unknown keys are collected here and skipped, so one run lists them all.
        let mut known = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if fields.is_empty() || fields.contains(&key.name.as_str()) {
                known.push((key, value));
            } else {
                let error = <DeError as de::Error>::unknown_field(&key.name, fields);
                let path = join(&self.path, &key.name);
                self.unknown.borrow_mut().push(error.at(&path, key.location));
            }
        }
        let access = MapDe { parent: &self, entries: known.into_iter(), value: None };
        self.located(visitor.visit_map(access))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let Value::Scalar(Scalar::Str(name)) = &self.node.value else {
            return Err(self.type_error("one of the listed names"));
        };
        self.located(visitor.visit_enum(UnitVariant(name)))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit_struct tuple tuple_struct
    }
}

struct SeqDe<'p, 'a> {
    parent: &'p NodeDe<'a>,
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((i, item)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.parent.path);
        let child = self.parent.child(item, path.clone());
        seed.deserialize(child).map(Some).map_err(|e| e.at(&path, item.location))
    }
}

struct MapDe<'p, 'a> {
    parent: &'p NodeDe<'a>,
    entries: std::vec::IntoIter<(&'a super::node::Key, &'a Node)>,
    value: Option<(&'a super::node::Key, &'a Node)>,
}

impl<'de> MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        let path = join(&self.parent.path, &key.name);
        seed.deserialize(key.name.as_str().into_deserializer())
            .map(Some)
            .map_err(|e: DeError| e.at(&path, key.location))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        let path = join(&self.parent.path, &key.name);
        let child = self.parent.child(value, path.clone());
        seed.deserialize(child).map_err(|e| e.at(&path, value.location))
    }
}

/// An enum written as its variant's name; only unit variants are used in the config.
struct UnitVariant<'a>(&'a str);

impl<'de> EnumAccess<'de> for UnitVariant<'_> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let value = seed.deserialize(self.0.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(de::Error::custom("expected a name, not a value with data"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a name, not a value with data"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a name, not a value with data"))
    }
}
