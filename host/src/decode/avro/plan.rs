//! A decoding plan per Avro writer schema: what each field of a Debezium envelope or key turns
//! into, worked out once when the schema is parsed, so that a body is read straight into typed
//! [`Value`]s instead of the JSON tree the general path builds and then types.
//!
//! The plan reads directly what Debezium writes for columns: scalars and optional scalars with
//! their logical types, and `VariableScaleDecimal`. Any other column (arrays, maps, structs,
//! general unions, enums, a logical name on a type it does not fit) is read column by column
//! through the general path. A body the plan cannot decode is given to the general path whole,
//! which names the problem: the plan must be right for good records, its errors are never shown.
//! The decoder's tests hold both paths to the same values.

use serde_json::{Map, Value as Json};

use super::super::logical::{self, Logical};
use super::super::schema::{ConnectSchema, ScalarTyping, bounded_int};
use super::super::{Path, envelope};
use super::binary::Reader;
use super::schema::{Kind, Node, NodeId, UnionShape, union_shape};
use crate::event::{ColumnName, Op, Row, Value};

/// The nesting depth the general path is told a column value starts at (envelope, row, column).
const COLUMN_DEPTH: usize = 2;

/// How to read one schema as a record value (a change envelope) and as a record key.
#[derive(Debug)]
pub(super) struct Plan {
    /// Set when the schema is a Debezium change envelope of plannable rows.
    pub(super) envelope: Option<EnvelopePlan>,
    /// Set when the schema is a record of plannable columns (a key, a row).
    pub(super) row: Option<RowPlan>,
}

impl Plan {
    pub(super) fn build(nodes: &[Node], root: NodeId, connect: &ConnectSchema) -> Self {
        Plan {
            envelope: EnvelopePlan::build(nodes, root, connect),
            row: RowPlan::build(nodes, root, connect),
        }
    }
}

/// The fields of a change envelope, in the order they are written.
#[derive(Debug)]
pub(super) struct EnvelopePlan {
    fields: Vec<EnvelopeField>,
}

#[derive(Debug)]
enum EnvelopeField {
    Op(NodeId),
    Source(NodeId),
    TsMs(NodeId),
    Before(OptionalRow),
    After(OptionalRow),
    /// Read and dropped, as the general path ignores it (`transaction`, `ts_us`, …).
    Other(NodeId),
}

/// A row that may be null: `["null", record]` or a record.
#[derive(Debug)]
struct OptionalRow {
    branches: Option<Branches>,
    row: RowPlan,
}

/// The branch indices of an optional union.
#[derive(Debug, Clone, Copy)]
struct Branches {
    null: Option<i64>,
    value: i64,
}

/// What a change envelope holds, read by its plan.
pub(super) struct EnvelopeParts {
    pub(super) op: Op,
    pub(super) source: Map<String, Json>,
    pub(super) ts_ms: Option<i64>,
    pub(super) before: Option<Row>,
    pub(super) after: Option<Row>,
}

impl EnvelopePlan {
    fn build(nodes: &[Node], root: NodeId, connect: &ConnectSchema) -> Option<Self> {
        let Kind::Record(fields) = &nodes[root].kind else { return None };
        let row = |name: &str, node: NodeId| -> Option<OptionalRow> {
            let (branches, record) = optional(nodes, node)?;
            Some(OptionalRow { branches, row: RowPlan::build(nodes, record, connect.field(name)?)? })
        };
        let fields = fields
            .iter()
            .map(|(name, node)| {
                Some(match name.as_str() {
                    "op" => EnvelopeField::Op(*node),
                    "source" => EnvelopeField::Source(*node),
                    "ts_ms" => EnvelopeField::TsMs(*node),
                    "before" => EnvelopeField::Before(row(name, *node)?),
                    "after" => EnvelopeField::After(row(name, *node)?),
                    _ => EnvelopeField::Other(*node),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let has = |wanted: fn(&EnvelopeField) -> bool| fields.iter().any(wanted);
        let complete = has(|f| matches!(f, EnvelopeField::Op(_)))
            && has(|f| matches!(f, EnvelopeField::Source(_)))
            && has(|f| matches!(f, EnvelopeField::Before(_)))
            && has(|f| matches!(f, EnvelopeField::After(_)));
        complete.then_some(EnvelopePlan { fields })
    }

    /// Reads a whole body; `None` if anything does not fit, for the general path to explain.
    pub(super) fn read(&self, reader: &mut Reader<'_, '_>) -> Option<EnvelopeParts> {
        let (mut op, mut source, mut ts_ms, mut before, mut after) = (None, None, None, None, None);
        for field in &self.fields {
            match field {
                EnvelopeField::Op(node) => {
                    op = Some(Op::from_code(reader.value(*node, &Path::Root("op"), 1).ok()?.as_str()?)?);
                }
                EnvelopeField::Source(node) => match reader.value(*node, &Path::Root("source"), 1).ok()? {
                    Json::Object(block) => source = Some(block),
                    _ => return None,
                },
                EnvelopeField::TsMs(node) => {
                    let value = reader.value(*node, &Path::Root("ts_ms"), 1).ok()?;
                    ts_ms = envelope::optional_i64(Path::Root("ts_ms"), Some(&value)).ok()?;
                }
                EnvelopeField::Before(row) => before = row.read(reader, "before")?,
                EnvelopeField::After(row) => after = row.read(reader, "after")?,
                EnvelopeField::Other(node) => {
                    reader.value(*node, &Path::Root("other"), 1).ok()?;
                }
            }
        }
        reader.at_end().then_some(())?;
        Some(EnvelopeParts { op: op?, source: source?, ts_ms, before, after })
    }
}

impl OptionalRow {
    /// `Some(None)` for a null row, `None` when the body does not fit.
    fn read(&self, reader: &mut Reader<'_, '_>, name: &str) -> Option<Option<Row>> {
        if let Some(branches) = self.branches {
            let branch = reader.long(&Path::Root(name)).ok()?;
            if Some(branch) == branches.null {
                return Some(None);
            }
            (branch == branches.value).then_some(())?;
        }
        self.row.read(reader, name).map(Some)
    }
}

/// The columns of a record, in the order they are written.
#[derive(Debug)]
pub(super) struct RowPlan {
    columns: Vec<ColumnPlan>,
}

#[derive(Debug)]
struct ColumnPlan {
    /// The column's name, shared by every row read by the plan.
    name: ColumnName,
    node: NodeId,
    read: ColumnRead,
}

#[derive(Debug)]
enum ColumnRead {
    /// Read and typed straight from the body.
    Direct { branches: Option<Branches>, direct: Direct },
    /// Read as JSON and typed by its Connect schema, as the general path does.
    General(Box<ConnectSchema>),
}

/// A value the plan types itself, by its Avro type and its Connect typing together.
#[derive(Debug, Clone, Copy)]
enum Direct {
    Null,
    Bool,
    /// An Avro int (`long: false`, checked to 32 bits) or long, within its Connect type's range.
    Int {
        long: bool,
        min: i64,
        max: i64,
        kind: &'static str,
    },
    /// An Avro int or long of a date, time or timestamp type.
    Time {
        long: bool,
        logical: Logical,
    },
    Float,
    Double,
    Text {
        numeric: bool,
    },
    /// Text of a zoned timestamp, JSON or UUID.
    TextAs(Logical),
    /// Avro bytes (`size: None`) or fixed.
    Bytes {
        size: Option<usize>,
    },
    Decimal {
        size: Option<usize>,
        scale: i64,
    },
    /// A `{scale: int, value: bytes}` record.
    VariableDecimal,
}

impl RowPlan {
    fn build(nodes: &[Node], record: NodeId, connect: &ConnectSchema) -> Option<Self> {
        let Kind::Record(fields) = &nodes[record].kind else { return None };
        let connect_fields: Vec<_> = connect.struct_fields(Path::Root("")).ok()?.collect();
        if connect_fields.len() != fields.len() {
            return None;
        }
        let columns = fields
            .iter()
            .zip(connect_fields)
            .map(|((name, node), (connect_name, schema))| {
                (name == connect_name.as_str()).then(|| ColumnPlan {
                    name: connect_name.clone(),
                    node: *node,
                    read: column_read(nodes, *node, schema),
                })
            })
            .collect::<Option<_>>()?;
        Some(RowPlan { columns })
    }

    /// Reads a record with nothing after it (a key).
    pub(super) fn read_whole(&self, reader: &mut Reader<'_, '_>) -> Option<Row> {
        let row = self.read(reader, "key")?;
        reader.at_end().then_some(row)
    }

    fn read(&self, reader: &mut Reader<'_, '_>, root: &str) -> Option<Row> {
        let parent = Path::Root(root);
        let mut row = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let path = parent.field(&column.name);
            let value = match &column.read {
                ColumnRead::Direct { branches, direct } => read_direct(reader, *branches, *direct)?,
                ColumnRead::General(schema) => {
                    let json = reader.value(column.node, &path, COLUMN_DEPTH).ok()?;
                    super::super::schema::typed(path, schema, json).ok()?
                }
            };
            row.push((column.name.clone(), value));
        }
        Some(Row::from(row))
    }
}

/// How a column is read: directly when its Avro type and Connect typing pair up as Debezium
/// writes them, otherwise through the general path.
fn column_read(nodes: &[Node], node: NodeId, schema: &ConnectSchema) -> ColumnRead {
    let general = || ColumnRead::General(Box::new(schema.clone()));
    let Some((branches, value)) = optional(nodes, node) else { return general() };
    let direct = match (&nodes[value].kind, schema.scalar_typing()) {
        (Kind::Null, _) => Direct::Null,
        (Kind::Boolean, Some(ScalarTyping::Bool)) => Direct::Bool,
        (Kind::Int | Kind::Long, Some(ScalarTyping::Int { min, max, kind })) => {
            Direct::Int { long: matches!(nodes[value].kind, Kind::Long), min, max, kind }
        }
        (Kind::Int | Kind::Long, Some(ScalarTyping::Logical(logical))) if logical.is_integer() => {
            Direct::Time { long: matches!(nodes[value].kind, Kind::Long), logical }
        }
        (Kind::Float, Some(ScalarTyping::Float)) => Direct::Float,
        (Kind::Double, Some(ScalarTyping::Float)) => Direct::Double,
        (Kind::String, Some(ScalarTyping::Text { numeric })) => Direct::Text { numeric },
        (Kind::String, Some(ScalarTyping::Logical(logical))) if logical.is_text() => Direct::TextAs(logical),
        (Kind::Bytes, Some(ScalarTyping::Bytes)) => Direct::Bytes { size: None },
        (Kind::Fixed(size), Some(ScalarTyping::Bytes)) => Direct::Bytes { size: Some(*size) },
        (kind @ (Kind::Bytes | Kind::Fixed(_)), Some(ScalarTyping::Logical(Logical::Decimal))) => {
            let Some(scale) = schema.decimal_scale() else { return general() };
            let size = if let Kind::Fixed(size) = kind { Some(*size) } else { None };
            Direct::Decimal { size, scale }
        }
        (Kind::Record(fields), Some(ScalarTyping::Logical(Logical::VariableScaleDecimal)))
            if matches!(
                fields.as_slice(),
                [(scale, s), (digits, d)] if scale == "scale" && digits == "value"
                    && matches!(nodes[*s].kind, Kind::Int) && matches!(nodes[*d].kind, Kind::Bytes)
            ) =>
        {
            Direct::VariableDecimal
        }
        _ => return general(),
    };
    ColumnRead::Direct { branches, direct }
}

/// A type that may be null: the branches of `["null", T]` (either order) or `[T]`, and `T`; a
/// plain `T` has no branches. `None` for a union of several non-null types.
fn optional(nodes: &[Node], node: NodeId) -> Option<(Option<Branches>, NodeId)> {
    let Kind::Union(members) = &nodes[node].kind else { return Some((None, node)) };
    let UnionShape::Optional(value) = union_shape(nodes, members) else { return None };
    let index =
        |wanted: NodeId| members.iter().position(|&m| m == wanted).and_then(|i| i64::try_from(i).ok());
    let null = members.iter().position(|&m| matches!(nodes[m].kind, Kind::Null));
    Some((Some(Branches { null: null.and_then(|i| i64::try_from(i).ok()), value: index(value)? }), value))
}

/// Reads one column value the plan types itself; `None` when the body does not fit.
fn read_direct(reader: &mut Reader<'_, '_>, branches: Option<Branches>, direct: Direct) -> Option<Value> {
    // Paths are only rendered for errors, which the plan never shows.
    let path = Path::Root("");
    if let Some(branches) = branches {
        let branch = reader.long(&path).ok()?;
        if Some(branch) == branches.null {
            return Some(Value::Null);
        }
        (branch == branches.value).then_some(())?;
    }
    Some(match direct {
        Direct::Null => Value::Null,
        Direct::Bool => match reader.take(&path, 1).ok()? {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return None,
        },
        Direct::Int { long, min, max, kind } => {
            bounded_int(path, integer(reader, long)?, (min, max), kind).ok()?
        }
        Direct::Time { long, logical } => logical.type_integer(path, integer(reader, long)?).ok()?,
        Direct::Float => {
            let value = f32::from_le_bytes(reader.take(&path, 4).ok()?.try_into().ok()?);
            // Through its shortest text, as the general path (and JsonConverter) reads a float32.
            Value::Float(value.to_string().parse().unwrap_or(f64::from(value)))
        }
        Direct::Double => Value::Float(f64::from_le_bytes(reader.take(&path, 8).ok()?.try_into().ok()?)),
        Direct::Text { numeric } => match text(reader)? {
            text if logical::is_placeholder_text(&text) => Value::Unavailable,
            text => logical::string(numeric, text),
        },
        Direct::TextAs(logical) => match text(reader)? {
            text if logical::is_placeholder_text(&text) => Value::Unavailable,
            text => logical.type_text(path, text).ok()?,
        },
        Direct::Bytes { size } => match bytes(reader, size)? {
            bytes if logical::is_placeholder_bytes(bytes) => Value::Unavailable,
            bytes => Value::Bytes(bytes.to_vec()),
        },
        Direct::Decimal { size, scale } => match bytes(reader, size)? {
            bytes if logical::is_placeholder_bytes(bytes) => Value::Unavailable,
            bytes => Value::Decimal(logical::decimal(path, bytes, scale).ok()?),
        },
        Direct::VariableDecimal => {
            let scale = integer(reader, false)?;
            Value::Decimal(logical::decimal(path, bytes(reader, None)?, scale).ok()?)
        }
    })
}

/// An Avro long, or an int checked to 32 bits.
fn integer(reader: &mut Reader<'_, '_>, long: bool) -> Option<i64> {
    let value = reader.long(&Path::Root("")).ok()?;
    (long || i32::try_from(value).is_ok()).then_some(value)
}

/// Avro bytes, or a fixed of `size` bytes.
fn bytes<'b>(reader: &mut Reader<'_, 'b>, size: Option<usize>) -> Option<&'b [u8]> {
    let path = Path::Root("");
    let len = match size {
        Some(size) => size,
        None => reader.len(&path).ok()?,
    };
    reader.take(&path, len).ok()
}

/// An Avro string.
fn text(reader: &mut Reader<'_, '_>) -> Option<String> {
    let path = Path::Root("");
    let len = reader.len(&path).ok()?;
    std::str::from_utf8(reader.take(&path, len).ok()?).ok().map(str::to_owned)
}
