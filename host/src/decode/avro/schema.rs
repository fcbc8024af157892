//! Avro schemas as the Schema Registry holds them, parsed with the Kafka Connect annotations that
//! Confluent's `AvroConverter` adds (`connect.name`, `connect.type`, `connect.parameters`).
//!
//! General-purpose Avro libraries drop custom attributes on primitive types, and those are where
//! Debezium's logical names live (`{"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}`),
//! so the schema is parsed here into a small arena of nodes. Each schema is also translated once
//! into the Kafka Connect schema it stands for, so that values are typed by the same code as the
//! JsonConverter path.

use std::collections::HashMap;

use serde::Deserialize as _;
use serde_json::{Map, Value as Json};

use super::super::schema::ConnectSchema;
use super::plan::Plan;
use super::translate;

/// The deepest nesting of schema definitions accepted.
pub(super) const MAX_SCHEMA_DEPTH: usize = 64;

/// Why a schema text is not a usable Avro schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid avro schema: {0}")]
pub struct AvroSchemaError(pub(in crate::decode) String);

/// A parsed Avro writer schema: what one Schema Registry id stands for.
///
/// Cheap to share behind an `Arc`; immutable once parsed.
#[derive(Debug)]
pub struct AvroSchema {
    nodes: Vec<Node>,
    root: NodeId,
    connect: ConnectSchema,
    plan: Plan,
}

/// The index of a node in an [`AvroSchema`]'s arena.
pub(super) type NodeId = usize;

/// One Avro type.
#[derive(Debug)]
pub(super) enum Kind {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Vec<String>),
    Array(NodeId),
    Map(NodeId),
    Union(Vec<NodeId>),
    Record(Vec<(String, NodeId)>),
}

/// A type with what the schema says about it besides its shape.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) kind: Kind,
    /// The full name of a record, enum or fixed.
    pub(super) full_name: Option<String>,
    /// The JSON attributes that matter to Connect: `connect.*`, `logicalType`, `scale`, `precision`.
    pub(super) attributes: Map<String, Json>,
}

/// How a union maps to Connect.
pub(super) enum UnionShape {
    /// `["null", T]` (either order) or `[T]`: an optional `T`.
    Optional(NodeId),
    /// Several non-null branches: a Connect struct with one field per branch.
    General,
}

impl AvroSchema {
    /// Parses schema text, as the registry returns it in `{"schema": "…"}`.
    ///
    /// # Errors
    ///
    /// Returns an [`AvroSchemaError`] if the text is not JSON or not a valid Avro schema.
    pub fn parse(text: &str) -> Result<Self, AvroSchemaError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|error| AvroSchemaError(format!("schema is not JSON: {error}")))?;
        Self::from_json(&json)
    }

    /// Parses a schema already read as JSON.
    ///
    /// # Errors
    ///
    /// Returns an [`AvroSchemaError`] if the JSON is not a valid Avro schema.
    pub fn from_json(json: &Json) -> Result<Self, AvroSchemaError> {
        let mut parser = Parser { nodes: Vec::new(), names: HashMap::new() };
        let root = parser.parse(json, None, 0)?;
        let nodes = parser.nodes;
        let connect = ConnectSchema::deserialize(translate::connect_schema(&nodes, root)?)
            .map_err(|error| AvroSchemaError(format!("no kafka connect equivalent: {error}")))?;
        let plan = Plan::build(&nodes, root, &connect);
        Ok(AvroSchema { nodes, root, connect, plan })
    }

    /// The node a decode starts from.
    pub(super) fn root(&self) -> NodeId {
        self.root
    }

    /// A node by id; ids come from this schema, so it exists.
    pub(super) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The Kafka Connect schema the whole Avro schema stands for.
    pub(super) fn connect(&self) -> &ConnectSchema {
        &self.connect
    }

    /// How this schema's bodies are read straight into typed values.
    pub(super) fn plan(&self) -> &Plan {
        &self.plan
    }

    /// How a union's branches map to Connect.
    pub(super) fn union_shape(&self, branches: &[NodeId]) -> UnionShape {
        union_shape(&self.nodes, branches)
    }

    /// The field name `AvroData` gives a branch of a general union: the simple name of a named
    /// type, the type name otherwise.
    pub(super) fn branch_name(&self, id: NodeId) -> &str {
        branch_name(self.node(id))
    }
}

/// How a union of these branches maps to Connect.
pub(super) fn union_shape(nodes: &[Node], branches: &[NodeId]) -> UnionShape {
    let mut others = branches.iter().filter(|&&id| !matches!(nodes[id].kind, Kind::Null));
    match (others.next(), others.next()) {
        (Some(&only), None) => UnionShape::Optional(only),
        _ => UnionShape::General,
    }
}

/// The simple name of a named type, the type name otherwise.
pub(super) fn branch_name(node: &Node) -> &str {
    match &node.full_name {
        Some(full) => full.rsplit('.').next().unwrap_or(full),
        None => type_name(&node.kind),
    }
}

/// The Avro name of a type.
fn type_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Null => "null",
        Kind::Boolean => "boolean",
        Kind::Int => "int",
        Kind::Long => "long",
        Kind::Float => "float",
        Kind::Double => "double",
        Kind::Bytes => "bytes",
        Kind::String => "string",
        Kind::Fixed(_) => "fixed",
        Kind::Enum(_) => "enum",
        Kind::Array(_) => "array",
        Kind::Map(_) => "map",
        Kind::Union(_) => "union",
        Kind::Record(_) => "record",
    }
}

/// A schema error.
pub(super) fn invalid(problem: impl Into<String>) -> AvroSchemaError {
    AvroSchemaError(problem.into())
}

/// Reads schema JSON into nodes, resolving named-type references as it goes.
struct Parser {
    nodes: Vec<Node>,
    names: HashMap<String, NodeId>,
}

impl Parser {
    fn push(&mut self, kind: Kind, full_name: Option<String>, attributes: Map<String, Json>) -> NodeId {
        self.nodes.push(Node { kind, full_name, attributes });
        self.nodes.len() - 1
    }

    fn parse(
        &mut self,
        json: &Json,
        namespace: Option<&str>,
        depth: usize,
    ) -> Result<NodeId, AvroSchemaError> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(invalid(format!("schema is nested deeper than {MAX_SCHEMA_DEPTH} levels")));
        }
        match json {
            Json::String(name) => match primitive(name) {
                Some(kind) => Ok(self.push(kind, None, Map::new())),
                None => self.resolve(name, namespace),
            },
            Json::Array(branches) => {
                let mut ids = Vec::with_capacity(branches.len());
                for branch in branches {
                    let id = self.parse(branch, namespace, depth + 1)?;
                    if matches!(self.nodes[id].kind, Kind::Union(_)) {
                        return Err(invalid("a union may not directly contain a union"));
                    }
                    ids.push(id);
                }
                if ids.is_empty() {
                    return Err(invalid("a union needs at least one branch"));
                }
                Ok(self.push(Kind::Union(ids), None, Map::new()))
            }
            Json::Object(object) => self.complex(object, namespace, depth),
            other => Err(invalid(format!("expected a schema, found {other}"))),
        }
    }

    fn resolve(&self, name: &str, namespace: Option<&str>) -> Result<NodeId, AvroSchemaError> {
        let qualified = full_name(name, namespace);
        self.names
            .get(&qualified)
            .or_else(|| self.names.get(name))
            .copied()
            .ok_or_else(|| invalid(format!("unknown type `{qualified}`")))
    }

    fn complex(
        &mut self,
        object: &Map<String, Json>,
        namespace: Option<&str>,
        depth: usize,
    ) -> Result<NodeId, AvroSchemaError> {
        let attributes: Map<String, Json> = object
            .iter()
            .filter(|(key, _)| {
                key.starts_with("connect.") || matches!(key.as_str(), "logicalType" | "scale" | "precision")
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let kind = match object.get("type") {
            Some(Json::String(kind)) => kind.as_str(),
            // `{"type": {…}}` or `{"type": [...]}`: the attribute holds the schema itself.
            Some(inner @ (Json::Object(_) | Json::Array(_))) => {
                return self.parse(inner, namespace, depth + 1);
            }
            _ => return Err(invalid("a schema object needs a string `type`")),
        };
        if let Some(kind) = primitive(kind) {
            return Ok(self.push(kind, None, attributes));
        }
        match kind {
            "array" => {
                let items = object.get("items").ok_or_else(|| invalid("an array schema needs `items`"))?;
                let items = self.parse(items, namespace, depth + 1)?;
                Ok(self.push(Kind::Array(items), None, attributes))
            }
            "map" => {
                let values = object.get("values").ok_or_else(|| invalid("a map schema needs `values`"))?;
                let values = self.parse(values, namespace, depth + 1)?;
                Ok(self.push(Kind::Map(values), None, attributes))
            }
            "record" | "error" | "enum" | "fixed" => self.named(kind, object, attributes, namespace, depth),
            other => self.resolve(other, namespace),
        }
    }

    fn named(
        &mut self,
        kind: &str,
        object: &Map<String, Json>,
        attributes: Map<String, Json>,
        namespace: Option<&str>,
        depth: usize,
    ) -> Result<NodeId, AvroSchemaError> {
        let name = object
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("a named type needs a `name`"))?;
        let namespace = match (name.rsplit_once('.'), object.get("namespace").and_then(Json::as_str)) {
            (Some((space, _)), _) => Some(space),
            (None, Some(space)) => Some(space),
            (None, None) => namespace,
        };
        let full = full_name(name, namespace);
        if self.names.contains_key(&full) || primitive(&full).is_some() {
            return Err(invalid(format!("type `{full}` is defined twice")));
        }
        let placeholder = Kind::Record(Vec::new());
        let id = self.push(placeholder, Some(full.clone()), attributes);
        // Registered before its fields are read, so that a record may refer to itself.
        self.names.insert(full.clone(), id);
        let kind = match kind {
            "enum" => {
                let symbols = object.get("symbols").and_then(Json::as_array);
                let symbols = symbols.ok_or_else(|| invalid(format!("enum `{full}` needs `symbols`")))?;
                let symbols = symbols.iter().map(|s| s.as_str().map(str::to_owned)).collect::<Option<_>>();
                Kind::Enum(symbols.ok_or_else(|| invalid(format!("enum `{full}` has a non-string symbol")))?)
            }
            "fixed" => {
                let size = object.get("size").and_then(Json::as_u64).and_then(|s| usize::try_from(s).ok());
                Kind::Fixed(size.ok_or_else(|| invalid(format!("fixed `{full}` needs an integer `size`")))?)
            }
            _ => {
                let fields = object.get("fields").and_then(Json::as_array);
                let fields = fields.ok_or_else(|| invalid(format!("record `{full}` needs `fields`")))?;
                let mut parsed = Vec::with_capacity(fields.len());
                for field in fields {
                    let field_name = field.get("name").and_then(Json::as_str);
                    let field_name =
                        field_name.ok_or_else(|| invalid(format!("a field of `{full}` has no name")))?;
                    let schema = field
                        .get("type")
                        .ok_or_else(|| invalid(format!("field `{full}.{field_name}` has no type")))?;
                    parsed.push((field_name.to_owned(), self.parse(schema, namespace, depth + 1)?));
                }
                Kind::Record(parsed)
            }
        };
        self.nodes[id].kind = kind;
        Ok(id)
    }
}

fn primitive(name: &str) -> Option<Kind> {
    Some(match name {
        "null" => Kind::Null,
        "boolean" => Kind::Boolean,
        "int" => Kind::Int,
        "long" => Kind::Long,
        "float" => Kind::Float,
        "double" => Kind::Double,
        "bytes" => Kind::Bytes,
        "string" => Kind::String,
        _ => return None,
    })
}

fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(space) if !space.is_empty() && !name.contains('.') => format!("{space}.{name}"),
        _ => name.to_owned(),
    }
}
