//! A client for the Confluent Schema Registry: Avro writer schemas by id, cached forever.
//!
//! Schema ids are immutable, so a schema is fetched once (`GET {url}/schemas/ids/{id}`) and kept
//! for the life of the client. A failure is not cached. A registry that cannot be reached, times
//! out or answers with an error is a transient [`Error::Registry`]; an id the registry does not
//! have (404 with error code 40403) or a schema that is not usable Avro is a record error.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::Deserialize;

use super::Error;
use super::avro::{AvroSchema, AvroSchemaError};
use crate::config::{BasicAuth, HttpEndpoint};
use crate::http;

/// The media types a Confluent client accepts, in its order of preference.
const ACCEPT_SCHEMA_REGISTRY: &str = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";
/// Confluent's error code for an id it has no schema for.
const SCHEMA_NOT_FOUND: i64 = 40403;
/// How much of an error body is quoted in an error message.
const MAX_QUOTED: usize = 200;

/// A Schema Registry client with a cache of parsed schemas by id.
#[derive(Debug)]
pub struct SchemaRegistry {
    /// The base URL without a trailing slash.
    base: String,
    client: reqwest::Client,
    basic_auth: Option<BasicAuth>,
    cache: RwLock<HashMap<u32, Arc<AvroSchema>>>,
}

/// The body of `GET /schemas/ids/{id}`.
#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
    /// Absent for Avro; `JSON` or `PROTOBUF` otherwise.
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

/// A Confluent error body, `{"error_code": 40403, "message": "Schema not found"}`.
#[derive(Deserialize)]
struct ErrorResponse {
    error_code: Option<i64>,
    message: Option<String>,
}

impl SchemaRegistry {
    /// A client for the registry at `url` (e.g. `http://localhost:8081`; credentials in the URL
    /// are sent as basic auth) whose requests each time out after `timeout`.
    ///
    /// # Errors
    ///
    /// Returns the HTTP client's error if it cannot be built (its TLS backend fails to start).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, http::Error> {
        Ok(Self::with_client(url, http::client(timeout, None)?))
    }

    /// A client for `registry`: its URL, trusted CA file and credentials.
    ///
    /// # Errors
    ///
    /// As [`HttpEndpoint::client`].
    pub fn for_endpoint(registry: &HttpEndpoint, timeout: Duration) -> Result<Self, http::Error> {
        let mut this = Self::with_client(&registry.url, registry.client(timeout)?);
        this.basic_auth.clone_from(&registry.basic_auth);
        Ok(this)
    }

    /// A client for the registry at `url` that sends its requests through `client`.
    pub fn with_client(url: &str, client: reqwest::Client) -> Self {
        let base = url.trim_end_matches('/').to_owned();
        SchemaRegistry { base, client, basic_auth: None, cache: RwLock::new(HashMap::new()) }
    }

    /// The schema with this id if it has already been fetched; never does I/O.
    pub fn cached(&self, id: u32) -> Option<Arc<AvroSchema>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }

    /// The schema with this id: from the cache, or fetched from the registry and cached.
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] (transient) when the registry cannot be reached, times out or answers
    /// with an unexpected status or body; [`Error::UnknownSchema`] when it has no schema with this
    /// id; [`Error::InvalidAvroSchema`] when the schema is not Avro or not valid.
    pub async fn schema(&self, id: u32) -> Result<Arc<AvroSchema>, Error> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let schema = Arc::new(self.fetch(id).await?);
        // Two tasks may fetch the same id at once; both get the same schema, the first is kept.
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.entry(id).or_insert(schema).clone())
    }

    async fn fetch(&self, id: u32) -> Result<AvroSchema, Error> {
        let transient = |problem: String| Error::Registry { id, problem };
        let url = format!("{}/schemas/ids/{id}", self.base);
        let request = self.client.get(url).header(ACCEPT, ACCEPT_SCHEMA_REGISTRY);
        let response = http::with_basic_auth(request, self.basic_auth.as_ref())
            .send()
            .await
            .map_err(|error| transient(describe(error)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|error| transient(describe(error)))?;
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorResponse>(&body).ok();
            let code = error.as_ref().and_then(|error| error.error_code);
            if status == StatusCode::NOT_FOUND && code == Some(SCHEMA_NOT_FOUND) {
                return Err(Error::UnknownSchema { id });
            }
            let message = match error.and_then(|error| error.message) {
                Some(message) => quote(&message),
                None => quote(&String::from_utf8_lossy(&body)),
            };
            return Err(transient(format!("http status {status}: {message}")));
        }
        let response: SchemaResponse = serde_json::from_slice(&body)
            .map_err(|error| transient(format!("response is not a schema: {error}")))?;
        match response.schema_type.as_deref() {
            None | Some("AVRO") => {}
            Some(other) => {
                let source = AvroSchemaError(format!("schema type is {}, not AVRO", quote(other)));
                return Err(Error::InvalidAvroSchema { id, source });
            }
        }
        AvroSchema::parse(&response.schema).map_err(|source| Error::InvalidAvroSchema { id, source })
    }
}

/// An HTTP error with its causes, without the URL (which may hold credentials).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Text from the other side, cut to a length fit for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::{Value as Json, json};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::decode::tests::FIXTURES;
    use crate::decode::{Decoded, decode_avro};
    use crate::event::Position;

    /// A stand-in registry over raw HTTP/1.1: answers each path from `routes` (404 otherwise,
    /// no answer at all for `/hang`) and counts the requests.
    async fn serve(routes: Vec<(String, u16, Json)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    if path.starts_with("/hang") {
                        return tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    let not_found = (404, json!({"error_code": 40403, "message": "Schema not found"}));
                    let (status, body) = routes
                        .iter()
                        .find(|(route, _, _)| *route == path)
                        .map_or(not_found, |(_, status, body)| (*status, body.clone()));
                    let body = body.to_string();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        (url, count)
    }

    fn registry(url: &str) -> SchemaRegistry {
        SchemaRegistry::new(url, Duration::from_millis(500)).expect("a client")
    }

    #[tokio::test]
    async fn a_schema_is_fetched_once_per_id() {
        let text = std::fs::read_to_string(format!("{FIXTURES}debezium-pg-avro.json")).expect("fixture");
        let fixture: Json = serde_json::from_str(&text).expect("JSON");
        let schemas = &fixture["registered_schemas_by_id"];
        let routes = ["2", "3"]
            .map(|id| (format!("/schemas/ids/{id}"), 200, json!({"schema": schemas[id].to_string()})));
        let (url, requests) = serve(routes.to_vec()).await;
        let registry = registry(&format!("{url}/"));
        let event = &fixture["events"][3];
        let hex = |field: &str| {
            let text = event[field].as_str().expect("hex");
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
                .collect()
        };
        let (key, value): (Vec<u8>, Vec<u8>) = (hex("key_raw_hex"), hex("value_raw_hex"));
        for _ in 0..3 {
            let position = Position::Kafka { topic: "t".into(), partition: 0, offset: 1 };
            let decoded = decode_avro(&registry, Some(&key), Some(&value), position).await;
            assert!(matches!(decoded, Ok(Decoded::Change(_))), "{decoded:?}");
            assert_eq!(requests.load(Ordering::SeqCst), 2, "one request per schema id");
        }
        assert!(registry.cached(2).is_some() && registry.cached(4).is_none());
        let tombstone = decode_avro(
            &registry,
            Some(&key),
            None,
            Position::Kafka { topic: "t".into(), partition: 0, offset: 2 },
        )
        .await;
        assert!(matches!(tombstone, Ok(Decoded::Tombstone)));
    }

    #[tokio::test]
    async fn an_unknown_id_or_an_unusable_schema_is_the_records_fault() {
        let routes = vec![
            (
                "/schemas/ids/5".to_owned(),
                200,
                json!({"schema": "syntax=\"proto3\";", "schemaType": "PROTOBUF"}),
            ),
            ("/schemas/ids/6".to_owned(), 200, json!({"schema": "{\"type\": \"nope\"}"})),
        ];
        let (url, requests) = serve(routes).await;
        let registry = registry(&url);
        let error = registry.schema(4).await.expect_err("unknown");
        assert!(matches!(error, Error::UnknownSchema { id: 4 }) && !error.is_transient(), "{error}");
        let error = registry.schema(5).await.expect_err("protobuf");
        assert_eq!(
            std::error::Error::source(&error).map(ToString::to_string).as_deref(),
            Some("invalid avro schema: schema type is PROTOBUF, not AVRO")
        );
        assert!(!error.is_transient());
        let error = registry.schema(6).await.expect_err("not avro");
        assert!(matches!(error, Error::InvalidAvroSchema { id: 6, .. }) && !error.is_transient(), "{error}");
        // Failures are not cached.
        assert!(registry.schema(4).await.is_err());
        assert_eq!(requests.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn an_unreachable_or_failing_registry_is_transient() {
        let routes = vec![
            (
                "/schemas/ids/1".to_owned(),
                500,
                json!({"error_code": 50001, "message": "Error in the backend data store"}),
            ),
            ("/schemas/ids/2".to_owned(), 404, json!({"error_code": 404, "message": "HTTP 404 Not Found"})),
            ("/schemas/ids/3".to_owned(), 200, json!({"unexpected": true})),
        ];
        let (url, _) = serve(routes).await;
        let registry = registry(&url);
        let error = registry.schema(1).await.expect_err("500");
        assert_eq!(
            error.to_string(),
            "schema registry: fetching schema 1 failed: http status 500 Internal Server Error: \
             Error in the backend data store"
        );
        assert!(error.is_transient());
        // A 404 that is not Confluent's "schema not found" is a misconfigured URL, not a bad record.
        assert!(registry.schema(2).await.expect_err("404").is_transient());
        assert!(registry.schema(3).await.expect_err("no schema").is_transient());
        let hanging =
            SchemaRegistry::new(&format!("{url}/hang"), Duration::from_millis(200)).expect("client");
        let error = hanging.schema(1).await.expect_err("timeout");
        assert!(error.is_transient(), "{error}");
        // Nothing listens on port 9 of localhost: connection refused.
        let error = registry_at_closed_port().schema(1).await.expect_err("refused");
        assert!(error.is_transient() && !error.to_string().contains("secret"), "{error}");
        let value = [0, 0, 0, 0, 1, 0];
        let error = decode_avro(
            &registry,
            None,
            Some(&value),
            Position::Kafka { topic: "t".into(), partition: 0, offset: 1 },
        )
        .await
        .expect_err("500");
        assert!(error.is_transient());
    }

    fn registry_at_closed_port() -> SchemaRegistry {
        registry("http://user:secret@127.0.0.1:9")
    }
}
