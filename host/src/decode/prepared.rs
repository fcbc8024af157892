//! Records a source builds in process (the embedded source): the column values of a change in
//! Debezium's JsonConverter form, one per column in the table's row order, beside their table's
//! schemas, parsed once per table. They are typed column by column, by the same code that types
//! records read from Kafka, without building a JSON tree per row and per `source` block or
//! writing and parsing the schemas (several kilobytes) of every record. Their bytes are written
//! only when a record has to leave as it came, to the DLQ.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::schema::{self, ConnectSchema};
use super::{Decoded, Error, MessagePart, Path, envelope};
use crate::event::{ChangeEvent, Op, Position, Row, SourceBlock, SourceInfo, TableId};

/// A table's key and value schemas, as text and parsed.
#[derive(Debug)]
pub struct TableSchemas {
    key_text: String,
    value_text: String,
    key: ConnectSchema,
    value: ConnectSchema,
    /// Where each field of the key sits in the row.
    key_columns: Vec<usize>,
}

impl TableSchemas {
    /// Parses a table's key and value schemas (JsonConverter's `schema` parts).
    ///
    /// # Errors
    /// When either is not a Connect schema, the value has no `after` row, or the key names a
    /// column the row does not have.
    pub fn new(key_text: String, value_text: String) -> Result<Self, Error> {
        let key: ConnectSchema = serde_json::from_str(&key_text)
            .map_err(|source| Error::InvalidSchema { part: MessagePart::Key, source })?;
        let value: ConnectSchema = serde_json::from_str(&value_text)
            .map_err(|source| Error::InvalidSchema { part: MessagePart::Value, source })?;
        let row_path = Path::Root("schema.after");
        let row = value.field("after").ok_or_else(|| row_path.error("the envelope has no `after` row"))?;
        let columns: Vec<&str> = row.struct_fields(row_path)?.map(|(name, _)| name.as_str()).collect();
        let key_path = Path::Root("key.schema");
        let key_columns = key
            .struct_fields(key_path)?
            .map(|(name, _)| {
                columns
                    .iter()
                    .position(|column| *column == name.as_str())
                    .ok_or_else(|| key_path.field(name).error("a key column the row does not have"))
            })
            .collect::<Result<_, Error>>()?;
        Ok(TableSchemas { key_text, value_text, key, value, key_columns })
    }

    fn row(&self) -> &ConnectSchema {
        self.value.field("after").expect("checked when the schemas were parsed")
    }
}

/// One change built in process: its column values and its table's schemas.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    /// The table's schemas, shared by its records.
    pub schemas: Arc<TableSchemas>,
    /// What happened.
    pub op: Op,
    /// The row before the change, a value per column of the row schema (Connect JSON form).
    pub before: Option<Vec<Json>>,
    /// The row after the change, as `before`.
    pub after: Option<Vec<Json>>,
    /// The `source` block, shared by the changes of one transaction and table.
    pub source: Arc<PreparedSource>,
    /// When the change was read, microseconds since the epoch (the envelope's `ts_*`).
    pub ts_us: i64,
}

impl PartialEq for PreparedRecord {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op
            && self.before == other.before
            && self.after == other.after
            && self.source == other.source
            && self.ts_us == other.ts_us
            && self.schemas.key_text == other.schemas.key_text
            && self.schemas.value_text == other.schemas.value_text
    }
}

impl Eq for PreparedRecord {}

impl PreparedRecord {
    /// Decodes the record as [`decode_json`](super::decode_json) decodes its bytes.
    ///
    /// # Errors
    /// As `decode_json`, for a value that does not fit its column's schema.
    pub fn decode(&self, position: Position) -> Result<Decoded, Error> {
        match self.decode_columns(position.clone()) {
            Some(event) => Ok(Decoded::Change(event)),
            // The general path words the error.
            None => self.decode_general(position),
        }
    }

    /// Types each column value by its field schema; `None` when one does not fit.
    pub(crate) fn decode_columns(&self, position: Position) -> Option<ChangeEvent> {
        let row_schema = self.schemas.row();
        let typed_row = |values: &Vec<Json>| typed_columns(row_schema, values.iter());
        let before = match &self.before {
            Some(values) => Some(typed_row(values)?),
            None => None,
        };
        let after = match &self.after {
            Some(values) => Some(typed_row(values)?),
            None => None,
        };
        let key = match self.key_values() {
            Some(values) => Some(typed_columns(&self.schemas.key, values)?),
            None => None,
        };
        Some(ChangeEvent {
            op: self.op,
            table: self.source.table.clone(),
            key,
            before,
            after,
            source: self.source.info.clone(),
            ts_ms: Some(self.ts_us.div_euclid(1000)),
            columns: Some(row_schema.columns(Path::Root("schema.after")).ok()?),
            position,
            output_index: 0,
        })
    }

    /// The key columns' values, from the row after the change or else before it; `None` for a
    /// table without a key and for a truncate.
    fn key_values(&self) -> Option<impl Iterator<Item = &Json>> {
        let row = self.after.as_ref().or(self.before.as_ref())?;
        let key_columns = &self.schemas.key_columns;
        (!key_columns.is_empty()).then(|| key_columns.iter().map(|&i| &row[i]))
    }

    /// Decodes the record's JSON trees as `decode_json` does without its fast paths.
    fn decode_general(&self, position: Position) -> Result<Decoded, Error> {
        let key = match self.key_tree() {
            Some(key) => schema::typed_row(Path::Root("key"), &self.schemas.key, key)?,
            None => None,
        };
        let Json::Object(envelope) = self.value_tree() else { unreachable!("an envelope is an object") };
        envelope::change(key, Some(&self.schemas.value), envelope, position).map(Decoded::Change)
    }

    /// The key payload as JsonConverter writes it: an object of the key columns.
    fn key_tree(&self) -> Option<Json> {
        let values = self.key_values()?;
        let names = self.schemas.key.struct_fields(Path::Root("key")).ok()?.map(|(name, _)| name.to_string());
        Some(Json::Object(names.zip(values.cloned()).collect()))
    }

    /// The value payload as JsonConverter writes it: Debezium's envelope.
    fn value_tree(&self) -> Json {
        let row = |values: &Option<Vec<Json>>| match values {
            Some(values) => {
                let fields = self.schemas.row().struct_fields(Path::Root("after"));
                let names = fields.into_iter().flatten().map(|(name, _)| name.to_string());
                Json::Object(names.zip(values.iter().cloned()).collect())
            }
            None => Json::Null,
        };
        let mut envelope = Map::with_capacity(8);
        envelope.insert("before".into(), row(&self.before));
        envelope.insert("after".into(), row(&self.after));
        envelope.insert("source".into(), Json::Object(self.source.block().to_map()));
        envelope.insert("transaction".into(), Json::Null);
        envelope.insert("op".into(), Json::from(self.op.code()));
        envelope.insert("ts_ms".into(), Json::from(self.ts_us.div_euclid(1000)));
        envelope.insert("ts_us".into(), Json::from(self.ts_us));
        envelope.insert("ts_ns".into(), Json::from(self.ts_us.saturating_mul(1000)));
        Json::Object(envelope)
    }

    /// The key's bytes as JsonConverter writes them, if there is a key.
    pub fn key_bytes(&self) -> Option<Vec<u8>> {
        self.key_tree().map(|key| with_schema(&self.schemas.key_text, &key))
    }

    /// The value's bytes as JsonConverter writes them.
    pub fn value_bytes(&self) -> Vec<u8> {
        with_schema(&self.schemas.value_text, &self.value_tree())
    }
}

/// A `source` block with the table and origin fields read from it once, for every change of
/// its transaction and table.
#[derive(Debug, PartialEq)]
pub struct PreparedSource {
    table: TableId,
    info: SourceInfo,
}

impl PreparedSource {
    /// Reads the table and origin fields of `block`.
    ///
    /// # Errors
    /// Where `decode_json` would refuse the block (a table that is not text, …).
    pub fn new(block: &Map<String, Json>) -> Result<Self, Error> {
        Ok(PreparedSource { table: envelope::table_id(block)?, info: envelope::source_info(block)? })
    }

    /// The block as it leaves the host.
    pub fn block(&self) -> &SourceBlock {
        &self.info.raw
    }
}

/// A row of values typed, in order, by the fields of the struct schema `schema`; `None` when
/// there are more or fewer values than fields, or a value does not fit its field.
fn typed_columns<'v>(schema: &ConnectSchema, values: impl Iterator<Item = &'v Json>) -> Option<Row> {
    let mut fields = schema.struct_fields(Path::Root("")).ok()?;
    let mut row = Vec::with_capacity(values.size_hint().0);
    for value in values {
        let (name, field) = fields.next()?;
        row.push((name.clone(), schema::typed(Path::Root(name), field, value.clone()).ok()?));
    }
    fields.next().is_none().then(|| Row::from(row))
}

/// `{"schema": <schema>, "payload": <payload>}`, with the schema text as it is.
fn with_schema(schema: &str, payload: &Json) -> Vec<u8> {
    let payload = payload.to_string();
    let mut out = Vec::with_capacity(schema.len() + payload.len() + 24);
    out.extend_from_slice(b"{\"schema\":");
    out.extend_from_slice(schema.as_bytes());
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(payload.as_bytes());
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record() -> PreparedRecord {
        let key_schema = json!({"type": "struct", "optional": false, "fields": [
            {"type": "int32", "optional": false, "field": "id"}]});
        let row = json!({"type": "struct", "optional": true, "fields": [
            {"type": "int32", "optional": false, "field": "id"},
            {"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal",
             "parameters": {"scale": "2"}, "field": "price"}]});
        let mut before = row.clone();
        before["field"] = json!("before");
        let mut after = row;
        after["field"] = json!("after");
        let value_schema = json!({"type": "struct", "optional": false, "fields": [before, after,
            {"type": "struct", "optional": false, "field": "source", "fields": [
                {"type": "string", "optional": false, "field": "db"},
                {"type": "string", "optional": false, "field": "schema"},
                {"type": "string", "optional": false, "field": "table"}]},
            {"type": "string", "optional": false, "field": "op"}]});
        let schemas = TableSchemas::new(key_schema.to_string(), value_schema.to_string()).unwrap();
        let source = json!({"db": "shop", "schema": "public", "table": "items"});
        PreparedRecord {
            schemas: Arc::new(schemas),
            op: Op::Create,
            before: None,
            after: Some(vec![json!(7), json!("Cg==")]),
            source: Arc::new(PreparedSource::new(source.as_object().unwrap()).unwrap()),
            ts_us: 1_700_000_000_123_456,
        }
    }

    fn position() -> Position {
        Position::Kafka { topic: Arc::from("t"), partition: 0, offset: 0 }
    }

    #[test]
    fn a_prepared_record_decodes_as_its_bytes_do() {
        let record = record();
        let from_parts = record.decode(position()).unwrap();
        let value = record.value_bytes();
        let from_bytes =
            super::super::decode_json(record.key_bytes().as_deref(), Some(&value), position()).unwrap();
        assert_eq!(from_parts, from_bytes);
        assert_eq!(from_parts, record.decode_general(position()).unwrap(), "the fast path differs");
        assert!(record.decode_columns(position()).is_some(), "typed column by column");
        let Decoded::Change(event) = from_parts else { panic!("a change") };
        let price = crate::event::Decimal::parse("0.10").unwrap();
        assert_eq!(event.after.unwrap().get("price"), Some(&crate::event::Value::Decimal(price)));
        assert_eq!(event.key.unwrap().get("id"), Some(&crate::event::Value::Int(7)));
        assert_eq!(event.ts_ms, Some(1_700_000_000_123));
    }

    #[test]
    fn a_key_column_the_row_does_not_have_is_refused() {
        let key_schema = json!({"type": "struct", "optional": false, "fields": [
            {"type": "int32", "optional": false, "field": "code"}]});
        let value_schema = json!({"type": "struct", "optional": false, "fields": [
            {"type": "struct", "optional": true, "field": "after", "fields": [
                {"type": "int32", "optional": false, "field": "id"}]}]});
        let error = TableSchemas::new(key_schema.to_string(), value_schema.to_string()).unwrap_err();
        assert!(error.to_string().contains("key.schema.code"), "{error}");
    }

    #[test]
    fn a_payload_that_does_not_fit_its_schema_is_an_error_naming_the_field() {
        let mut record = record();
        record.after.as_mut().unwrap()[1] = json!(12);
        let error = record.decode(position()).unwrap_err();
        assert!(error.to_string().contains("after.price"), "{error}");
    }
}
