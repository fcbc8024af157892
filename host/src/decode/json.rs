//! The JsonConverter envelope: key and value, each with or without a schema, into a [`Decoded`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::schema::{self, ConnectSchema, kind_of};
use super::{Decoded, Error, MessagePart, Path, envelope, plain, schemaful};
use crate::event::{Position, Row};

/// Decodes one Kafka record written by Debezium through Kafka Connect's JsonConverter.
///
/// `key` and `value` are the record's raw bytes (`None` for a null key or value); each may carry
/// a schema (`{"schema": …, "payload": …}`) or not, independently. A null value is a
/// [`Decoded::Tombstone`]; a record of the schema-change topic is a [`Decoded::SchemaChange`]; the
/// key of either is not read.
///
/// # Errors
///
/// Returns an [`Error`] naming the part or field at fault when the bytes are not JSON, the value
/// is not a Debezium envelope, the `op` is unknown, or a value does not fit its schema.
pub fn decode_json(key: Option<&[u8]>, value: Option<&[u8]>, position: Position) -> Result<Decoded, Error> {
    let Some(value) = value else {
        return Ok(Decoded::Tombstone);
    };
    if !starts_with_schema(value)
        && let Some(event) = plain::parse(value)
    {
        return Ok(Decoded::Change(plain::into_event(event, decode_key(key)?, position)));
    }
    if let Some((schema, payload)) = split_as_last(MessagePart::Value, value)
        && let Ok(key) = decode_key(key)
        && let Some(event) = schemaful::parse(&schema, payload, key, position.clone())
    {
        return Ok(Decoded::Change(event));
    }
    let (schema, payload) = match split_raw(MessagePart::Value, value)? {
        Split::WithSchema { schema: Some(schema), payload } => {
            // A key that does not decode is the general path's to report (or to skip, for DDL).
            let key = decode_key(key).ok();
            if let Some(event) = key.and_then(|key| schemaful::parse(&schema, payload, key, position.clone()))
            {
                return Ok(Decoded::Change(event));
            }
            (Some(schema), parse_payload(MessagePart::Value, payload)?)
        }
        Split::WithSchema { schema: None, payload } => (None, parse_payload(MessagePart::Value, payload)?),
        Split::Plain(json) => (None, json),
    };
    let envelope = match payload {
        Json::Null => return Ok(Decoded::Tombstone),
        Json::Object(envelope) => envelope,
        other => {
            let problem = format!("expected an object, found {}", kind_of(&other));
            return Err(Error::NotEnvelope { part: MessagePart::Value, problem });
        }
    };
    if !envelope.contains_key("op") && envelope.contains_key("ddl") {
        return envelope::schema_change(envelope, position).map(Decoded::SchemaChange);
    }
    envelope::change(decode_key(key)?, schema.as_deref(), envelope, position).map(Decoded::Change)
}

/// Whether a record starts as JsonConverter writes one with a schema, `{"schema":`: the
/// schemaless fast path would read all of it for nothing.
fn starts_with_schema(bytes: &[u8]) -> bool {
    let mut rest = bytes.iter().skip_while(|byte| byte.is_ascii_whitespace());
    rest.next() == Some(&b'{') && rest.skip_while(|byte| byte.is_ascii_whitespace()).take(8).eq(b"\"schema\"")
}

/// Parses a key or value and splits off its schema, if it has one.
fn split(part: MessagePart, bytes: &[u8]) -> Result<(Option<Arc<ConnectSchema>>, Json), Error> {
    match split_raw(part, bytes)? {
        Split::WithSchema { schema, payload } => Ok((schema, parse_payload(part, payload)?)),
        Split::Plain(json) => Ok((None, json)),
    }
}

/// A key or value with its schema split off and its payload still unparsed, or one without.
enum Split<'a> {
    /// `{"schema": …, "payload": …}`; a `null` schema is `None`.
    WithSchema { schema: Option<Arc<ConnectSchema>>, payload: &'a str },
    /// Anything else, parsed.
    Plain(Json),
}

/// Splits a record written as `{"schema":<the schema text of the last record>,"payload":…}`
/// without reading the schema: JsonConverter writes a table's schema byte for byte the same in
/// every record, and comparing bytes is many times cheaper than scanning them as JSON. The
/// payload is not checked here: a caller that cannot parse it takes [`split_raw`], which words
/// the error for the whole record.
fn split_as_last(part: MessagePart, bytes: &[u8]) -> Option<(Arc<ConnectSchema>, &str)> {
    let rest = bytes.strip_prefix(b"{\"schema\":")?;
    LAST_SCHEMAS.with_borrow(|last| {
        let (text, schema) = last[slot(part)].as_ref()?;
        let payload =
            rest.strip_prefix(text.as_bytes())?.strip_prefix(b",\"payload\":")?.strip_suffix(b"}")?;
        Some((schema.clone(), std::str::from_utf8(payload).ok()?))
    })
}

/// Splits a key or value. JsonConverter repeats the same schema in every record of a table: a
/// schema is parsed once per thread and shared after.
fn split_raw(part: MessagePart, bytes: &[u8]) -> Result<Split<'_>, Error> {
    // An object only: serde would read a struct from a two-element array too.
    let object = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if object && let Ok(enveloped) = serde_json::from_slice::<WithSchema<'_>>(bytes) {
        let schema = match enveloped.schema.get() {
            "null" => None,
            schema => Some(cached_schema(part, schema)?),
        };
        return Ok(Split::WithSchema { schema, payload: enveloped.payload.get() });
    }
    // Not exactly `{"schema", "payload"}` (or not JSON: the full parse says where).
    let json: Json = serde_json::from_slice(bytes).map_err(|source| Error::NotJson { part, source })?;
    Ok(Split::Plain(json))
}

fn parse_payload(part: MessagePart, payload: &str) -> Result<Json, Error> {
    serde_json::from_str(payload).map_err(|source| Error::NotJson { part, source })
}

/// A record as JsonConverter writes it with schemas, both parts left unparsed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WithSchema<'a> {
    #[serde(borrow)]
    schema: &'a RawValue,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// How many distinct schemas a thread keeps parsed; past it the cache starts over.
const SCHEMA_CACHE_SIZE: usize = 256;

thread_local! {
    static SCHEMAS: RefCell<HashMap<Box<str>, Arc<ConnectSchema>>> = RefCell::new(HashMap::new());
    /// The schema used last, by key and value ([`slot`]): records of one table come in runs,
    /// and comparing a schema's text with the last one is much cheaper than hashing it.
    static LAST_SCHEMAS: RefCell<[Option<KnownSchema>; 2]> = const { RefCell::new([None, None]) };
}

/// A schema's text, and the schema parsed from it.
type KnownSchema = (Box<str>, Arc<ConnectSchema>);

/// A part's slot in [`LAST_SCHEMAS`]: a record's key and value alternate, and one slot for
/// both would miss every time.
fn slot(part: MessagePart) -> usize {
    match part {
        MessagePart::Key => 0,
        MessagePart::Value => 1,
    }
}

fn cached_schema(part: MessagePart, text: &str) -> Result<Arc<ConnectSchema>, Error> {
    let last = LAST_SCHEMAS.with_borrow(|last| {
        let (last_text, schema) = last[slot(part)].as_ref()?;
        (**last_text == *text).then(|| schema.clone())
    });
    if let Some(schema) = last {
        return Ok(schema);
    }
    let schema = schema_by_text(part, text)?;
    LAST_SCHEMAS.with_borrow_mut(|last| last[slot(part)] = Some((text.into(), schema.clone())));
    Ok(schema)
}

fn schema_by_text(part: MessagePart, text: &str) -> Result<Arc<ConnectSchema>, Error> {
    if let Some(schema) = SCHEMAS.with_borrow(|schemas| schemas.get(text).cloned()) {
        return Ok(schema);
    }
    let schema: ConnectSchema =
        serde_json::from_str(text).map_err(|source| Error::InvalidSchema { part, source })?;
    let schema = Arc::new(schema);
    SCHEMAS.with_borrow_mut(|schemas| {
        if schemas.len() >= SCHEMA_CACHE_SIZE {
            schemas.clear();
        }
        schemas.insert(text.into(), schema.clone());
    });
    Ok(schema)
}

fn decode_key(key: Option<&[u8]>) -> Result<Option<Row>, Error> {
    let Some(bytes) = key else {
        return Ok(None);
    };
    if let Some((schema, payload)) = split_as_last(MessagePart::Key, bytes)
        && let Some(row) = schemaful::parse_row(&schema, payload)
    {
        return Ok(row);
    }
    let (schema, payload) = split(MessagePart::Key, bytes)?;
    match schema {
        Some(schema) => schema::typed_row(Path::Root("key"), &schema, payload),
        None => envelope::native_row(Path::Root("key"), payload),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::event::Op;

    fn position() -> Position {
        Position::Kafka { topic: Arc::from("t"), partition: 0, offset: 0 }
    }

    #[test]
    fn bytes_that_are_not_json_are_refused_naming_the_part() {
        let error = decode_json(None, Some(b"\xff\x00garbage"), position()).expect_err("not JSON");
        assert_eq!(error.to_string(), "message value is not valid JSON");
        assert!(error.source().is_some());
        let error = decode_json(Some(b"{id: 1}"), Some(br#"{"op":"c","source":{"table":"t"}}"#), position());
        assert_eq!(error.expect_err("bad key").to_string(), "message key is not valid JSON");
    }

    #[test]
    fn json_that_is_not_an_envelope_is_refused() {
        let error = decode_json(None, Some(b"[1, 2]"), position()).expect_err("an array");
        assert_eq!(
            error.to_string(),
            "message value is not a Debezium envelope: expected an object, found an array"
        );
        let error = decode_json(None, Some(br#"{"after": {}}"#), position()).expect_err("no op");
        assert_eq!(error.to_string(), "field `op`: expected one of c, u, d, r, t, found null");
    }

    #[test]
    fn null_values_are_tombstones() {
        assert_eq!(decode_json(Some(br#"{"id":1}"#), None, position()).ok(), Some(Decoded::Tombstone));
        assert_eq!(decode_json(None, Some(b"null"), position()).ok(), Some(Decoded::Tombstone));
        let with_schema = br#"{"schema": null, "payload": null}"#;
        assert_eq!(decode_json(None, Some(with_schema), position()).ok(), Some(Decoded::Tombstone));
    }

    /// Every record with a schema in the fixtures, through the fast path and the general path.
    #[test]
    fn the_schemaful_fast_path_gives_what_the_general_path_gives() {
        use crate::decode::tests::{ALL, FIXTURES};
        let mut compared = 0;
        for file in ALL {
            let text = std::fs::read_to_string(format!("{FIXTURES}{file}")).expect("fixture");
            let messages: Vec<Json> = serde_json::from_str(&text).expect("fixture is JSON");
            for message in messages {
                let value = serde_json::to_vec(&message["value"]).expect("bytes");
                let Ok(Split::WithSchema { schema: Some(schema), payload }) =
                    split_raw(MessagePart::Value, &value)
                else {
                    continue;
                };
                let key =
                    (!message["key"].is_null()).then(|| serde_json::to_vec(&message["key"]).expect("bytes"));
                let key = decode_key(key.as_deref()).expect("key decodes");
                let Json::Object(envelope) = parse_payload(MessagePart::Value, payload).expect("payload")
                else {
                    continue;
                };
                if !envelope.contains_key("op") {
                    continue;
                }
                let general =
                    envelope::change(key.clone(), Some(&schema), envelope, position()).expect("decodes");
                let fast =
                    schemaful::parse(&schema, payload, key, position()).expect("the fast path decodes it");
                assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{file}");
                compared += 1;
            }
        }
        assert!(compared >= 10, "only {compared} records with schemas compared");
    }

    /// A record decoded on a thread that has seen no schema yet: the long way, every time.
    fn decoded_afresh(key: &[u8], value: &[u8]) -> String {
        let (key, value) = (key.to_vec(), value.to_vec());
        let decoded = std::thread::spawn(move || decode_json(Some(&key), Some(&value), position()));
        describe(&decoded.join().expect("decodes without a panic"))
    }

    fn describe(decoded: &Result<Decoded, Error>) -> String {
        match decoded {
            Ok(decoded) => format!("{decoded:?}"),
            Err(error) => format!("{}: {:?}", error, error.source().map(ToString::to_string)),
        }
    }

    /// Records after the first of a table skip its schema by comparing bytes; whatever follows
    /// the schema must come out as it does on a thread that read the whole record.
    #[test]
    fn a_schema_seen_before_gives_what_reading_it_gives() {
        let key_schema =
            json!({"type": "struct", "fields": [{"field": "id", "type": "int32", "optional": false}]});
        let row = json!({"type": "struct", "optional": true, "fields": [
            {"field": "id", "type": "int32", "optional": false},
            {"field": "name", "type": "string", "optional": true},
        ]});
        let schema = json!({"type": "struct", "fields": [
            {"field": "before", "type": "struct", "optional": true, "fields": row["fields"]},
            {"field": "after", "type": "struct", "optional": true, "fields": row["fields"]},
            {"field": "source", "type": "struct", "fields": [{"field": "table", "type": "string"}]},
            {"field": "op", "type": "string"},
        ]});
        let key = serde_json::to_vec(&json!({"schema": key_schema, "payload": {"id": 1}})).expect("bytes");
        let record = |payload: &str| format!(r#"{{"schema":{schema},"payload":{payload}}}"#).into_bytes();
        let change =
            r#"{"before":null,"after":{"id":1,"name":"a"},"source":{"schema":"s","table":"t"},"op":"c"}"#;
        let first = decode_json(Some(&key), Some(&record(change)), position());
        assert!(matches!(first, Ok(Decoded::Change(_))), "{first:?}");
        let followers = [
            record(change),
            record(&change.replace(r#""a""#, r#""b""#)),
            // Not one JSON value after the schema, or not the payload a row change needs.
            record(&format!("{change}}}")),
            record(&format!("{change},\"extra\":1")),
            record(r#"{"before":null,"after":{"id":"one"},"source":{"table":"t"},"op":"c"}"#),
            record(r#"{"before":null,"after":{"id":1,"#),
            record("null"),
            format!(r#"{{"schema":{schema},"payload":{change}}} "#).into_bytes(),
        ];
        for value in followers {
            let again = decode_json(Some(&key), Some(&value), position());
            assert_eq!(describe(&again), decoded_afresh(&key, &value), "{}", String::from_utf8_lossy(&value));
        }
    }

    #[test]
    fn a_truncate_has_a_table_and_no_rows() {
        let value = json!({
            "before": null, "after": null, "op": "t", "ts_ms": 7,
            "source": {"connector": "postgresql", "db": "inventory", "schema": "public", "table": "customers", "snapshot": false},
        });
        let value = serde_json::to_vec(&value).expect("bytes");
        let Ok(Decoded::Change(event)) = decode_json(None, Some(&value), position()) else {
            panic!("a truncate decodes");
        };
        assert_eq!((event.op, event.key, event.before, event.after), (Op::Truncate, None, None, None));
        assert_eq!(event.table.to_string(), "public.customers");
        assert!(!event.source.snapshot);
    }
}
