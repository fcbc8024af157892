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
use serde_json::{Map, Value as Json, json};

use super::super::schema::ConnectSchema;

/// The deepest nesting of schema definitions accepted.
const MAX_SCHEMA_DEPTH: usize = 64;
/// The most Connect schema nodes one Avro schema may expand to (named types can be reused, so a
/// small hostile schema could otherwise expand exponentially).
const MAX_CONNECT_NODES: usize = 100_000;
/// The Connect name `AvroData` gives a union of several non-null branches.
const UNION_NAME: &str = "io.confluent.connect.avro.Union";

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
}

/// The index of a node in [`AvroSchema::nodes`].
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
    full_name: Option<String>,
    /// The JSON attributes that matter to Connect: `connect.*`, `logicalType`, `scale`.
    attributes: Map<String, Json>,
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
        let mut budget = MAX_CONNECT_NODES;
        let connect_json =
            Translator { nodes: &nodes, stack: Vec::new(), budget: &mut budget }.connect(root, false, 0)?;
        let connect = ConnectSchema::deserialize(connect_json)
            .map_err(|error| AvroSchemaError(format!("no kafka connect equivalent: {error}")))?;
        Ok(AvroSchema { nodes, root, connect })
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

fn union_shape(nodes: &[Node], branches: &[NodeId]) -> UnionShape {
    let mut others = branches.iter().filter(|&&id| !matches!(nodes[id].kind, Kind::Null));
    match (others.next(), others.next()) {
        (Some(&only), None) => UnionShape::Optional(only),
        _ => UnionShape::General,
    }
}

fn branch_name(node: &Node) -> &str {
    match &node.full_name {
        Some(full) => full.rsplit('.').next().unwrap_or(full),
        None => type_name(&node.kind),
    }
}

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

fn invalid(problem: impl Into<String>) -> AvroSchemaError {
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
            .filter(|(key, _)| key.starts_with("connect.") || matches!(key.as_str(), "logicalType" | "scale"))
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

/// Writes the Kafka Connect schema (as JsonConverter spells it) that an Avro type stands for,
/// the way Confluent's `AvroData` maps them.
struct Translator<'a> {
    nodes: &'a [Node],
    /// Records being translated, to cut recursive types.
    stack: Vec<NodeId>,
    budget: &'a mut usize,
}

impl Translator<'_> {
    fn connect(&mut self, id: NodeId, optional: bool, depth: usize) -> Result<Json, AvroSchemaError> {
        if *self.budget == 0 || depth > MAX_SCHEMA_DEPTH {
            return Err(invalid("schema expands to too many kafka connect types"));
        }
        *self.budget -= 1;
        let node = &self.nodes[id];
        let connect_type = |default: &'static str| {
            node.attributes.get("connect.type").and_then(Json::as_str).unwrap_or(default).to_owned()
        };
        let mut schema = Map::new();
        let kind = match &node.kind {
            Kind::Union(branches) => return self.union(branches, optional, depth),
            // Connect has no null type; a field that can only be null is an optional anything.
            Kind::Null => return Ok(json!({"type": "string", "optional": true})),
            Kind::Boolean => "boolean".to_owned(),
            Kind::Int => connect_type("int32"),
            Kind::Long => connect_type("int64"),
            Kind::Float => "float".to_owned(),
            Kind::Double => "double".to_owned(),
            Kind::Bytes | Kind::Fixed(_) => "bytes".to_owned(),
            Kind::String | Kind::Enum(_) => "string".to_owned(),
            Kind::Array(items) => {
                schema.insert("items".into(), self.connect(*items, false, depth + 1)?);
                "array".to_owned()
            }
            Kind::Map(values) => {
                schema.insert("values".into(), self.connect(*values, false, depth + 1)?);
                "map".to_owned()
            }
            Kind::Record(fields) => {
                let mut connect_fields = Vec::with_capacity(fields.len());
                if !self.stack.contains(&id) {
                    self.stack.push(id);
                    for (name, field) in fields {
                        let mut field = self.connect(*field, false, depth + 1)?;
                        if let Json::Object(field) = &mut field {
                            field.insert("field".into(), Json::String(name.clone()));
                        }
                        connect_fields.push(field);
                    }
                    self.stack.pop();
                }
                schema.insert("fields".into(), Json::Array(connect_fields));
                "struct".to_owned()
            }
        };
        schema.insert("type".into(), Json::String(kind));
        schema.insert("optional".into(), Json::Bool(optional));
        let (name, parameters) = logical_name(node);
        if let Some(name) = name {
            schema.insert("name".into(), Json::String(name));
        }
        if !parameters.is_empty() {
            schema.insert("parameters".into(), Json::Object(parameters));
        }
        Ok(Json::Object(schema))
    }

    fn union(&mut self, branches: &[NodeId], optional: bool, depth: usize) -> Result<Json, AvroSchemaError> {
        let nullable = optional || branches.iter().any(|&id| matches!(self.nodes[id].kind, Kind::Null));
        if let UnionShape::Optional(only) = union_shape(self.nodes, branches) {
            return self.connect(only, nullable, depth + 1);
        }
        let mut fields = Vec::new();
        for &branch in branches.iter().filter(|&&id| !matches!(self.nodes[id].kind, Kind::Null)) {
            let mut field = self.connect(branch, true, depth + 1)?;
            if let Json::Object(field) = &mut field {
                field.insert("field".into(), Json::String(branch_name(&self.nodes[branch]).to_owned()));
            }
            fields.push(field);
        }
        Ok(json!({"type": "struct", "optional": nullable, "name": UNION_NAME, "fields": fields}))
    }
}

/// The Connect schema name and parameters of a node: `connect.name` and `connect.parameters`
/// when `AvroConverter` wrote them, else the Connect or Debezium name of a plain Avro logical type.
fn logical_name(node: &Node) -> (Option<String>, Map<String, Json>) {
    let attribute = |key: &str| node.attributes.get(key);
    let mut parameters = match attribute("connect.parameters") {
        Some(Json::Object(parameters)) => parameters.clone(),
        _ => Map::new(),
    };
    let logical = attribute("logicalType").and_then(Json::as_str);
    let name = attribute("connect.name").and_then(Json::as_str).map(str::to_owned).or_else(|| {
        let name = match (logical?, &node.kind) {
            ("decimal", Kind::Bytes | Kind::Fixed(_)) => "org.apache.kafka.connect.data.Decimal",
            ("date", Kind::Int) => "org.apache.kafka.connect.data.Date",
            ("time-millis", Kind::Int) => "org.apache.kafka.connect.data.Time",
            ("time-micros", Kind::Long) => "io.debezium.time.MicroTime",
            ("timestamp-millis", Kind::Long) => "org.apache.kafka.connect.data.Timestamp",
            ("timestamp-micros", Kind::Long) => "io.debezium.time.MicroTimestamp",
            ("uuid", Kind::String) => "io.debezium.data.Uuid",
            _ => return None,
        };
        Some(name.to_owned())
    });
    let name = name.or_else(|| node.full_name.clone().filter(|_| matches!(node.kind, Kind::Record(_))));
    if logical == Some("decimal") && !parameters.contains_key("scale") {
        // Avro's own decimal: `scale` is an integer attribute, 0 when absent.
        let scale = attribute("scale").and_then(Json::as_i64).unwrap_or(0);
        parameters.insert("scale".into(), Json::String(scale.to_string()));
    }
    (name, parameters)
}
