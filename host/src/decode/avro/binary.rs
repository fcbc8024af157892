//! The Avro binary encoding, read by its writer schema into JSON as Kafka Connect's JsonConverter
//! would have written the same data: bytes as base64 text, non-finite floats as `"NaN"`,
//! `"Infinity"`, `"-Infinity"`, an optional union as its value, a general union as a one-field
//! object named after its branch. The JSON is then typed by the Connect schema, as on the JSON path.
//!
//! Every length and count is checked against the bytes left before anything is allocated.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value as Json};

use super::super::Path;
use super::schema::{AvroSchema, Kind, NodeId, UnionShape};

/// The deepest nesting of values read (records, arrays, maps, unions).
const MAX_DEPTH: usize = 64;
/// How many array or map elements that take no bytes (nulls, empty records) one message may hold.
const MAX_EMPTY_ELEMENTS: usize = 65_536;

/// Where and why a body does not match its schema.
#[derive(Debug)]
pub(super) struct Mismatch {
    /// The path of the field being read.
    pub(super) path: String,
    /// The offset in the body where reading failed.
    pub(super) offset: usize,
    /// What was wrong.
    pub(super) problem: String,
}

/// Reads a whole body by `schema`; `root` names the value when the schema is not a record.
pub(super) fn read(schema: &AvroSchema, body: &[u8], root: &str) -> Result<Json, Mismatch> {
    let mut reader = Reader::new(schema, body);
    let value = match &schema.node(schema.root()).kind {
        Kind::Record(fields) => reader.record(fields, None, 0)?,
        _ => reader.value(schema.root(), &Path::Root(root), 0)?,
    };
    match body.len() - reader.offset {
        0 => Ok(value),
        left => Err(Mismatch {
            path: root.to_owned(),
            offset: reader.offset,
            problem: format!("{left} bytes left over after the value"),
        }),
    }
}

/// Reads values of one schema from one body, front to back.
pub(super) struct Reader<'s, 'b> {
    schema: &'s AvroSchema,
    bytes: &'b [u8],
    offset: usize,
    /// Array and map elements still allowed.
    elements: usize,
}

impl<'s, 'b> Reader<'s, 'b> {
    pub(super) fn new(schema: &'s AvroSchema, body: &'b [u8]) -> Self {
        Reader { schema, bytes: body, offset: 0, elements: body.len() + MAX_EMPTY_ELEMENTS }
    }

    /// Whether the whole body has been read.
    pub(super) fn at_end(&self) -> bool {
        self.offset == self.bytes.len()
    }

    /// An error at the current offset.
    fn fail<T>(&self, path: &Path<'_>, problem: impl Into<String>) -> Result<T, Mismatch> {
        Self::fail_at(self.offset, path, problem)
    }

    /// An error about the value that starts at `offset`.
    fn fail_at<T>(offset: usize, path: &Path<'_>, problem: impl Into<String>) -> Result<T, Mismatch> {
        Err(Mismatch { path: path.to_string(), offset, problem: problem.into() })
    }

    /// Reads a value of any type into the JSON JsonConverter would have written for it.
    pub(super) fn value(&mut self, id: NodeId, path: &Path<'_>, depth: usize) -> Result<Json, Mismatch> {
        if depth > MAX_DEPTH {
            return self.fail(path, format!("value is nested deeper than {MAX_DEPTH} levels"));
        }
        let (schema, start) = (self.schema, self.offset);
        Ok(match &schema.node(id).kind {
            Kind::Null => Json::Null,
            Kind::Boolean => match self.take(path, 1)? {
                [0] => Json::Bool(false),
                [1] => Json::Bool(true),
                other => {
                    return Self::fail_at(start, path, format!("boolean byte is {other:?}, expected 0 or 1"));
                }
            },
            Kind::Int => {
                let value = self.long(path)?;
                if i32::try_from(value).is_err() {
                    return Self::fail_at(start, path, format!("{value} is out of range for an avro int"));
                }
                Json::from(value)
            }
            Kind::Long => Json::from(self.long(path)?),
            Kind::Float => {
                let value = f32::from_le_bytes(self.take(path, 4)?.try_into().unwrap_or_default());
                // Through its shortest text, as JsonConverter writes a float32: 0.1f32 stays 0.1.
                float(value.to_string().parse().unwrap_or(f64::from(value)))
            }
            Kind::Double => float(f64::from_le_bytes(self.take(path, 8)?.try_into().unwrap_or_default())),
            Kind::Bytes => {
                let len = self.len(path)?;
                Json::String(BASE64.encode(self.take(path, len)?))
            }
            Kind::Fixed(size) => Json::String(BASE64.encode(self.take(path, *size)?)),
            Kind::String => {
                let len = self.len(path)?;
                match std::str::from_utf8(self.take(path, len)?) {
                    Ok(text) => Json::String(text.to_owned()),
                    Err(_) => return Self::fail_at(start, path, "string is not valid utf-8"),
                }
            }
            Kind::Enum(symbols) => {
                let index = self.long(path)?;
                match usize::try_from(index).ok().and_then(|i| symbols.get(i)) {
                    Some(symbol) => Json::String(symbol.clone()),
                    None => {
                        let count = symbols.len();
                        return Self::fail_at(
                            start,
                            path,
                            format!("enum index {index} is out of range ({count} symbols)"),
                        );
                    }
                }
            }
            Kind::Array(items) => {
                let mut values = Vec::new();
                while let Some(count) = self.block(path)? {
                    values.reserve(count.min(1024));
                    for _ in 0..count {
                        let index = values.len();
                        values.push(self.value(*items, &path.index(index), depth + 1)?);
                    }
                }
                Json::Array(values)
            }
            Kind::Map(values) => {
                let mut map = Map::new();
                while let Some(count) = self.block(path)? {
                    for _ in 0..count {
                        let len = self.len(path)?;
                        let key = match std::str::from_utf8(self.take(path, len)?) {
                            Ok(key) => key.to_owned(),
                            Err(_) => return Self::fail_at(start, path, "map key is not valid utf-8"),
                        };
                        let value = self.value(*values, &path.field(&key), depth + 1)?;
                        map.insert(key, value);
                    }
                }
                Json::Object(map)
            }
            Kind::Union(branches) => {
                let index = self.long(path)?;
                let Some(&branch) = usize::try_from(index).ok().and_then(|i| branches.get(i)) else {
                    let count = branches.len();
                    return Self::fail_at(
                        start,
                        path,
                        format!("union branch {index} is out of range ({count} branches)"),
                    );
                };
                let value = self.value(branch, path, depth + 1)?;
                match schema.union_shape(branches) {
                    UnionShape::Optional(_) => value,
                    UnionShape::General if value.is_null() => Json::Null,
                    UnionShape::General => {
                        let mut object = Map::new();
                        object.insert(schema.branch_name(branch).to_owned(), value);
                        Json::Object(object)
                    }
                }
            }
            Kind::Record(fields) => self.record(fields, Some(path), depth)?,
        })
    }

    /// A record's fields in order; fields of the top-level record have paths of their own name.
    fn record(
        &mut self,
        fields: &[(String, NodeId)],
        parent: Option<&Path<'_>>,
        depth: usize,
    ) -> Result<Json, Mismatch> {
        let mut object = Map::new();
        for (name, field) in fields {
            let path = match parent {
                Some(parent) => parent.field(name),
                None => Path::Root(name),
            };
            let value = self.value(*field, &path, depth + 1)?;
            object.insert(name.clone(), value);
        }
        Ok(Json::Object(object))
    }

    /// The element count of the next array or map block; `None` at the end marker.
    fn block(&mut self, path: &Path<'_>) -> Result<Option<usize>, Mismatch> {
        let count = self.long(path)?;
        if count == 0 {
            return Ok(None);
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes, which is not needed.
            self.long(path)?;
        }
        match usize::try_from(count.unsigned_abs()) {
            Ok(count) if count <= self.elements => {
                self.elements -= count;
                Ok(Some(count))
            }
            _ => self.fail(
                path,
                format!("block of {} elements is more than the message can hold", count.unsigned_abs()),
            ),
        }
    }

    /// A zig-zag varint of at most 64 bits.
    pub(super) fn long(&mut self, path: &Path<'_>) -> Result<i64, Mismatch> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let [byte] = *self.take(path, 1)? else {
                return self.fail(path, "unexpected end of input");
            };
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if shift == 63 && byte > 1 {
                    break;
                }
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        self.fail(path, "varint is longer than 64 bits")
    }

    /// A non-negative length that fits in the bytes left.
    pub(super) fn len(&mut self, path: &Path<'_>) -> Result<usize, Mismatch> {
        let len = self.long(path)?;
        match usize::try_from(len) {
            Ok(len) if len <= self.bytes.len() - self.offset => Ok(len),
            Ok(len) => {
                let left = self.bytes.len() - self.offset;
                self.fail(path, format!("length {len} is more than the {left} bytes left"))
            }
            Err(_) => self.fail(path, format!("length {len} is negative")),
        }
    }

    pub(super) fn take(&mut self, path: &Path<'_>, count: usize) -> Result<&'b [u8], Mismatch> {
        match self.bytes.get(self.offset..).and_then(|rest| rest.get(..count)) {
            Some(bytes) => {
                self.offset += count;
                Ok(bytes)
            }
            None => self.fail(path, "unexpected end of input"),
        }
    }
}

/// A float as JsonConverter writes it: a number, or text for the values JSON cannot hold.
fn float(value: f64) -> Json {
    match Number::from_f64(value) {
        Some(number) => Json::Number(number),
        None if value.is_nan() => Json::String("NaN".into()),
        None if value > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}
