//! The Kafka Connect schema an Avro schema stands for, as Confluent's `AvroData` maps them and
//! as JsonConverter spells it, so that the JSON path's code can type Avro values.

use serde_json::{Map, Value as Json, json};

use super::schema::{
    AvroSchemaError, Kind, MAX_SCHEMA_DEPTH, Node, NodeId, UnionShape, branch_name, invalid, union_shape,
};

/// The most Connect schema nodes one Avro schema may expand to (named types can be reused, so a
/// small hostile schema could otherwise expand exponentially).
const MAX_CONNECT_NODES: usize = 100_000;
/// The Connect name `AvroData` gives a union of several non-null branches.
const UNION_NAME: &str = "io.confluent.connect.avro.Union";

/// The Connect schema (as JSON) of the type at `root`.
pub(super) fn connect_schema(nodes: &[Node], root: NodeId) -> Result<Json, AvroSchemaError> {
    Translator { nodes, stack: Vec::new(), budget: MAX_CONNECT_NODES }.connect(root, false, 0)
}

/// Writes the Kafka Connect schema (as JsonConverter spells it) that an Avro type stands for,
/// the way Confluent's `AvroData` maps them.
struct Translator<'a> {
    nodes: &'a [Node],
    /// Records being translated, to cut recursive types.
    stack: Vec<NodeId>,
    /// Connect schema nodes still allowed.
    budget: usize,
}

impl Translator<'_> {
    fn connect(&mut self, id: NodeId, optional: bool, depth: usize) -> Result<Json, AvroSchemaError> {
        if self.budget == 0 || depth > MAX_SCHEMA_DEPTH {
            return Err(invalid("schema expands to too many kafka connect types"));
        }
        self.budget -= 1;
        let node = &self.nodes[id];
        // `AvroData` writes `connect.type` for the Connect integers Avro lacks.
        let int_type = node.attributes.get("connect.type").and_then(Json::as_str);
        let int_type = int_type.filter(|ty| matches!(*ty, "int8" | "int16")).unwrap_or("int32");
        let mut schema = Map::new();
        let kind = match &node.kind {
            Kind::Union(branches) => return self.union(branches, optional, depth),
            // Connect has no null type; a field that can only be null is an optional anything.
            Kind::Null => return Ok(json!({"type": "string", "optional": true})),
            Kind::Boolean => "boolean".to_owned(),
            Kind::Int => int_type.to_owned(),
            Kind::Long => "int64".to_owned(),
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
    if logical == Some("decimal")
        && !parameters.contains_key("connect.decimal.precision")
        && let Some(precision) = attribute("precision").and_then(Json::as_i64)
    {
        parameters.insert("connect.decimal.precision".into(), Json::String(precision.to_string()));
    }
    (name, parameters)
}
