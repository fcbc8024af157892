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
    pub fn new(url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(Self::with_client(url, client))
    }

    /// A client for the registry at `url` that sends its requests through `client`.
    pub fn with_client(url: &str, client: reqwest::Client) -> Self {
        let base = url.trim_end_matches('/').to_owned();
        SchemaRegistry { base, client, cache: RwLock::new(HashMap::new()) }
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
        let response = self
            .client
            .get(url)
            .header(ACCEPT, ACCEPT_SCHEMA_REGISTRY)
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
