//! Records a source builds in process (the embedded source) in Debezium's JsonConverter form:
//! the key and value payloads as JSON trees beside their table's schemas, parsed once per
//! table. They decode by the same code as records read from Kafka, without writing and parsing
//! the schema (several kilobytes) of every record; their bytes are written only when a record
//! has to leave as it came, to the DLQ.

use std::sync::Arc;

use serde_json::Value as Json;

use super::schema::{self, ConnectSchema};
use super::{Decoded, Error, MessagePart, Path, envelope, schemaful};
use crate::event::Position;

/// A table's key and value schemas, as text and parsed.
#[derive(Debug)]
pub struct TableSchemas {
    key_text: String,
    value_text: String,
    key: ConnectSchema,
    value: ConnectSchema,
}

impl TableSchemas {
    /// Parses a table's key and value schemas (JsonConverter's `schema` parts).
    ///
    /// # Errors
    /// When either is not a Connect schema.
    pub fn new(key_text: String, value_text: String) -> Result<Self, Error> {
        let key = serde_json::from_str(&key_text)
            .map_err(|source| Error::InvalidSchema { part: MessagePart::Key, source })?;
        let value = serde_json::from_str(&value_text)
            .map_err(|source| Error::InvalidSchema { part: MessagePart::Value, source })?;
        Ok(TableSchemas { key_text, value_text, key, value })
    }
}

/// One record built in process: its key and value payloads and its table's schemas.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    /// The table's schemas, shared by its records.
    pub schemas: Arc<TableSchemas>,
    /// The key payload; `None` for a record without a key (a truncate).
    pub key: Option<Json>,
    /// The value payload: the Debezium envelope.
    pub value: Json,
}

impl PartialEq for PreparedRecord {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.value == other.value
            && self.schemas.key_text == other.schemas.key_text
            && self.schemas.value_text == other.schemas.value_text
    }
}

impl Eq for PreparedRecord {}

impl PreparedRecord {
    /// Decodes the record as [`decode_json`](super::decode_json) decodes its bytes.
    ///
    /// # Errors
    /// As `decode_json`, for a payload that does not fit its schema.
    pub fn decode(&self, position: Position) -> Result<Decoded, Error> {
        // Typed straight from the trees; the general path below copies them and words errors.
        let key = match &self.key {
            Some(key) => schemaful::key_tree(&self.schemas.key, key),
            None => Some(None),
        };
        let planned = key
            .and_then(|key| schemaful::parse_tree(&self.schemas.value, &self.value, key, position.clone()));
        if let Some(event) = planned {
            return Ok(Decoded::Change(event));
        }
        self.decode_general(position)
    }

    /// Decodes through owned copies of the trees, as `decode_json` does without its fast paths.
    fn decode_general(&self, position: Position) -> Result<Decoded, Error> {
        let key = match &self.key {
            Some(key) => schema::typed_row(Path::Root("key"), &self.schemas.key, key.clone())?,
            None => None,
        };
        let Json::Object(envelope) = self.value.clone() else {
            let problem = format!("expected an object, found {}", schema::kind_of(&self.value));
            return Err(Error::NotEnvelope { part: MessagePart::Value, problem });
        };
        envelope::change(key, Some(&self.schemas.value), envelope, position).map(Decoded::Change)
    }

    /// The key's bytes as JsonConverter writes them, if there is a key.
    pub fn key_bytes(&self) -> Option<Vec<u8>> {
        self.key.as_ref().map(|key| with_schema(&self.schemas.key_text, key))
    }

    /// The value's bytes as JsonConverter writes them.
    pub fn value_bytes(&self) -> Vec<u8> {
        with_schema(&self.schemas.value_text, &self.value)
    }
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
        PreparedRecord {
            schemas: Arc::new(schemas),
            key: Some(json!({"id": 7})),
            value: json!({"before": null, "after": {"id": 7, "price": "Cg=="},
                "source": {"db": "shop", "schema": "public", "table": "items"}, "op": "c"}),
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
        let Decoded::Change(event) = from_parts else { panic!("a change") };
        let price = crate::event::Decimal::parse("0.10").unwrap();
        assert_eq!(event.after.unwrap().get("price"), Some(&crate::event::Value::Decimal(price)));
    }

    #[test]
    fn a_payload_that_does_not_fit_its_schema_is_an_error_naming_the_field() {
        let mut record = record();
        record.value["after"]["id"] = json!("seven");
        let error = record.decode(position()).unwrap_err();
        assert!(error.to_string().contains("after.id"), "{error}");
    }
}
