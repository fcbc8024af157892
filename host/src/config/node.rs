//! The parsed YAML as a tree whose every node and key knows its line and column.
//!
//! The tree sits between the text and the [`super::raw`] structs: `${...}` is substituted on its
//! string scalars, and its locations give every later error a line and column.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::error::{Error, ErrorKind, Location};

/// One YAML node and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    /// Where the node starts (for an alias: where the alias is used).
    pub location: Location,
    /// The node's content.
    pub value: Value,
    /// The source text of a plain scalar that YAML typed as null, bool or number, so a string
    /// field gets `0123` rather than `123`.
    pub text: Option<String>,
}

/// A node's content.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Key, Node)>),
}

/// A scalar as YAML typed it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

/// A mapping key and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key is.
    pub location: Location,
}

impl Node {
    /// An empty mapping at line 1, column 1 (an empty file).
    pub fn empty_map() -> Self {
        Self { location: Location { line: 1, column: 1 }, value: Value::Map(Vec::new()), text: None }
    }
}

/// Parses `text` (named `file` in errors) into a tree; an empty document is an empty mapping.
pub(super) fn parse(text: &str, file: &str) -> Result<Node, Box<Error>> {
    let tree: Spanned<Tree> = serde_saphyr::from_str(text).map_err(|error| {
        let location = error.location().map(to_location);
        let mut message = error.without_snippet().to_string();
        if let Some(Location { line, column }) = location {
            let suffix = format!(" at line {line}, column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        Box::new(Error::new(file, location, "", ErrorKind::Syntax { message }))
    })?;
    let node = convert(tree, text);
    match node.value {
        Value::Scalar(Scalar::Null) => Ok(Node::empty_map()),
        Value::Map(_) => Ok(node),
        _ => Err(Box::new(Error::new(
            file,
            Some(node.location),
            "",
            ErrorKind::InvalidType { expected: "a mapping at the top level".into(), found: kind_name(&node) },
        ))),
    }
}

/// Maps each field path to the location of its value, for errors found after deserialization.
pub(super) fn index(node: &Node) -> HashMap<String, Location> {
    fn walk(node: &Node, path: String, out: &mut HashMap<String, Location>) {
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{path}[{i}]"), out);
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    walk(value, join(&path, &key.name), out);
                }
            }
            Value::Scalar(_) => {}
        }
        out.insert(path, node.location);
    }
    let mut out = HashMap::new();
    walk(node, String::new(), &mut out);
    out
}

/// Appends a key to a field path: `a` + `b` is `a.b`, `` + `b` is `b`.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// Names a node's kind for type errors, never its value.
pub(super) fn kind_name(node: &Node) -> &'static str {
    match &node.value {
        Value::Scalar(Scalar::Null) => "null",
        Value::Scalar(Scalar::Bool(_)) => "a boolean",
        Value::Scalar(Scalar::Int(_) | Scalar::UInt(_)) => "an integer",
        Value::Scalar(Scalar::Float(_)) => "a float",
        Value::Scalar(Scalar::Str(_)) => "a string",
        Value::Seq(_) => "a sequence",
        Value::Map(_) => "a mapping",
    }
}

fn to_location(location: serde_saphyr::Location) -> Location {
    Location { line: location.line(), column: location.column() }
}

/// The source text a span covers, when it is known.
fn source_text(location: &serde_saphyr::Location, text: &str) -> Option<String> {
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    text.get(start..start.checked_add(len)?).map(str::to_owned)
}

fn convert(tree: Spanned<Tree>, text: &str) -> Node {
    let location = to_location(tree.referenced);
    let (value, typed) = match tree.value {
        Tree::Scalar(scalar) => {
            let typed = !matches!(scalar, Scalar::Str(_));
            (Value::Scalar(scalar), typed)
        }
        Tree::Seq(items) => (Value::Seq(items.into_iter().map(|i| convert(i, text)).collect()), false),
        Tree::Map(entries) => (
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let key = Key { name: k.value, location: to_location(k.referenced) };
                        (key, convert(v, text))
                    })
                    .collect(),
            ),
            false,
        ),
    };
    // An alias's own span holds `*name`, so the text comes from where the value is defined.
    let text = if typed { source_text(&tree.defined, text).map(|t| t.trim().to_owned()) } else { None };
    Node { location, value, text }
}

/// The shape serde-saphyr fills in; [`convert`] turns it into a [`Node`].
enum Tree {
    Scalar(Scalar),
    Seq(Vec<Spanned<Tree>>),
    Map(Vec<(Spanned<String>, Spanned<Tree>)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any yaml value")
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Null))
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar(if v < 0 { Scalar::Int(v) } else { Scalar::UInt(v.unsigned_abs()) }))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::UInt(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Str(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Str(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Tree::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_locations_and_plain_text() {
        let node = parse("a:\n  port: 0123\n  b: [x, 'y']\n", "f").unwrap();
        let index = index(&node);
        assert_eq!(index["a.port"], Location { line: 2, column: 9 });
        assert_eq!(index["a.b[1]"], Location { line: 3, column: 10 });
        let Value::Map(top) = &node.value else { panic!() };
        let Value::Map(a) = &top[0].1.value else { panic!() };
        assert_eq!(a[0].1.text.as_deref(), Some("0123"));
        assert_eq!(a[0].0.location, Location { line: 2, column: 3 });
    }

    #[test]
    fn syntax_error_has_location() {
        let error = parse("a: [1, 2\nb: 3\n", "f.yaml").unwrap_err();
        assert_eq!(error.to_string(), "f.yaml:2:2: invalid yaml: illegal placement of ':' indicator");
    }

    #[test]
    fn empty_file_is_an_empty_mapping() {
        assert_eq!(parse("# nothing\n", "f").unwrap().value, Value::Map(Vec::new()));
        assert!(parse("- 1\n", "f").is_err());
    }
}
