//! A **test double** of the Confluent Schema Registry, for tests that need one.
//!
//! No real Schema Registry can be installed here (no Confluent, Karapace or Apicurio package in
//! the reachable registries; see `INFRA.md`), so this small server implements the subset of the
//! Confluent REST API that Confluent's `AvroConverter` and the `cdc` host use, with Confluent's
//! response shapes, error codes and media type:
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /subjects/{s}/versions` `{"schema", "schemaType"?}` | `{"id"}`: ids are global and increasing, the same schema text gets the same id |
//! | `POST /subjects/{s}` `{"schema"}` | `{"subject", "version", "id", "schema"}` of that schema under `s` |
//! | `GET /schemas/ids/{id}` | `{"schema"}`, or 404 `{"error_code": 40403, "message": "Schema not found"}` |
//! | `GET /subjects`, `GET /subjects/{s}/versions` | the names, the version numbers |
//! | `GET /subjects/{s}/versions/{latest or n}` | `{"subject", "version", "id", "schema"}` |
//! | `POST /compatibility/subjects/{s}/versions/{latest or n}` | `{"is_compatible": true}` (no check is made) |
//! | `GET /config[/{s}]`, `PUT /config[/{s}]` `{"compatibility"}` | `{"compatibilityLevel"}`, `{"compatibility"}` |
//!
//! Schemas are compared as parsed JSON (whitespace does not matter) but are not validated beyond
//! that, and no compatibility rule is enforced.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// The media type of every answer.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// The compatibility levels Confluent accepts.
const LEVELS: [&str; 7] =
    ["NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"];

/// The Schema Registry test double: listens on 127.0.0.1 on a free port until dropped.
pub struct TestSchemaRegistry {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    state: Mutex<Registry>,
    requests: AtomicUsize,
    /// The `Authorization` header every request must carry, when the registry asks for one.
    authorization: Option<String>,
    /// Requests turned away for want of it.
    unauthorized: AtomicUsize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Registry {
    /// Schema id `n` is at index `n - 1`.
    schemas: Vec<Stored>,
    /// The schema id of each version of each subject, version 1 first.
    subjects: BTreeMap<String, Vec<u32>>,
    /// The global compatibility level.
    level: String,
    /// Subject-level compatibility overrides.
    subject_levels: BTreeMap<String, String>,
}

struct Stored {
    /// The text as registered, returned as is.
    text: String,
    /// `AVRO` (the default), `JSON` or `PROTOBUF`.
    schema_type: String,
    /// What identifies the schema: its JSON re-serialised, or its text if it is not JSON.
    canonical: String,
}

/// The body of a registration or lookup.
#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

/// The body of a compatibility change.
#[derive(Deserialize)]
struct ConfigBody {
    compatibility: String,
}

impl TestSchemaRegistry {
    /// Starts the registry with no schemas and global compatibility `BACKWARD`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts a registry that answers 401 to every request without HTTP basic auth as
    /// `username` with `password`, as a registry behind authentication does.
    pub async fn start_with_basic_auth(username: &str, password: &str) -> anyhow::Result<Self> {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Self::start_with(Some(format!("Basic {token}"))).await
    }

    async fn start_with(authorization: Option<String>) -> anyhow::Result<Self> {
        let registry = Registry {
            schemas: Vec::new(),
            subjects: BTreeMap::new(),
            level: "BACKWARD".to_owned(),
            subject_levels: BTreeMap::new(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(registry),
            requests: AtomicUsize::new(0),
            authorization,
            unauthorized: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/subjects", get(subjects))
            .route("/subjects/{subject}", post(lookup))
            .route("/subjects/{subject}/versions", get(versions).post(register))
            .route("/subjects/{subject}/versions/{version}", get(version))
            .route("/compatibility/subjects/{subject}/versions/{version}", post(compatibility))
            .route("/schemas/ids/{id}", get(schema_by_id))
            .route("/config", get(global_config).put(set_global_config))
            .route("/config/{subject}", get(subject_config).put(set_subject_config))
            .fallback(|| async {
                reply(StatusCode::NOT_FOUND, json!({"error_code": 404, "message": "HTTP 404 Not Found"}))
            })
            .layer(middleware::from_fn_with_state(shared.clone(), count))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // The server only stops when the double is dropped, which aborts this task.
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestSchemaRegistry { address, shared, server })
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`: the `schema_registry_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many HTTP requests the registry has received, whatever their route or outcome.
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many requests were answered 401 for want of the right credentials.
    pub fn unauthorized_count(&self) -> usize {
        self.shared.unauthorized.load(Ordering::SeqCst)
    }

    /// Registers an Avro schema under `subject` without going through HTTP (not counted as a
    /// request) and returns its id, as `POST /subjects/{subject}/versions` would.
    pub fn register(&self, subject: &str, schema: &str) -> u32 {
        self.shared.state().register(subject, schema, "AVRO")
    }
}

impl Drop for TestSchemaRegistry {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Registry {
    fn register(&mut self, subject: &str, text: &str, schema_type: &str) -> u32 {
        let canonical = canonical(text);
        let existing =
            self.schemas.iter().position(|s| s.canonical == canonical && s.schema_type == schema_type);
        let id = match existing {
            Some(index) => id_of(index),
            None => {
                let stored = Stored { text: text.to_owned(), schema_type: schema_type.to_owned(), canonical };
                self.schemas.push(stored);
                id_of(self.schemas.len() - 1)
            }
        };
        let versions = self.subjects.entry(subject.to_owned()).or_default();
        if !versions.contains(&id) {
            versions.push(id);
        }
        id
    }

    fn schema(&self, id: u32) -> Option<&Stored> {
        self.schemas.get(usize::try_from(id).ok()?.checked_sub(1)?)
    }

    /// The `{"subject", "version", "id", "schema"}` answer for one version of a subject.
    fn version(&self, subject: &str, version: &str) -> Response {
        let Some(versions) = self.subjects.get(subject) else {
            return subject_not_found(subject);
        };
        let number = match version {
            "latest" | "-1" => versions.len(),
            number => match number.parse::<usize>() {
                Ok(number) if number >= 1 && number <= i32::MAX as usize => number,
                _ => {
                    let message = format!(
                        "The specified version '{version}' is not a valid version id. \
                         Allowed values are between [1, 2^31-1] and the string \"latest\""
                    );
                    return reply(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({"error_code": 42202, "message": message}),
                    );
                }
            },
        };
        match versions.get(number.wrapping_sub(1)).and_then(|&id| Some((id, self.schema(id)?))) {
            Some((id, stored)) => reply(StatusCode::OK, described(subject, number, id, stored)),
            None => {
                let message = format!("Version {version} not found.");
                reply(StatusCode::NOT_FOUND, json!({"error_code": 40402, "message": message}))
            }
        }
    }
}

fn id_of(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn canonical(text: &str) -> String {
    serde_json::from_str::<Json>(text).map_or_else(|_| text.to_owned(), |json| json.to_string())
}

/// A schema as Confluent describes it; `schemaType` only when it is not Avro.
fn described(subject: &str, version: usize, id: u32, stored: &Stored) -> Json {
    let mut body = json!({"subject": subject, "version": version, "id": id, "schema": stored.text});
    if stored.schema_type != "AVRO" {
        body["schemaType"] = json!(stored.schema_type);
    }
    body
}

fn reply(status: StatusCode, body: Json) -> Response {
    (status, [(header::CONTENT_TYPE, MEDIA_TYPE)], body.to_string()).into_response()
}

fn subject_not_found(subject: &str) -> Response {
    let message = format!("Subject '{subject}' not found.");
    reply(StatusCode::NOT_FOUND, json!({"error_code": 40401, "message": message}))
}

/// A request body Confluent would refuse with 422: its error code and message.
struct Unprocessable(u32, &'static str);

impl IntoResponse for Unprocessable {
    fn into_response(self) -> Response {
        reply(StatusCode::UNPROCESSABLE_ENTITY, json!({"error_code": self.0, "message": self.1}))
    }
}

/// Reads a registration body: the schema text and its type.
fn schema_body(body: &[u8]) -> Result<(String, String), Unprocessable> {
    let invalid = |message| Unprocessable(42201, message);
    let body: SchemaBody = serde_json::from_slice(body).map_err(|_| invalid("Invalid schema"))?;
    let schema_type = body.schema_type.unwrap_or_else(|| "AVRO".to_owned()).to_ascii_uppercase();
    if !["AVRO", "JSON", "PROTOBUF"].contains(&schema_type.as_str()) {
        return Err(invalid("Invalid schema type"));
    }
    if schema_type != "PROTOBUF" && serde_json::from_str::<Json>(&body.schema).is_err() {
        return Err(invalid("Invalid schema"));
    }
    Ok((body.schema, schema_type))
}

async fn count(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(expected) = &shared.authorization {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        if given != Some(expected.as_str()) {
            shared.unauthorized.fetch_add(1, Ordering::SeqCst);
            return reply(StatusCode::UNAUTHORIZED, json!({"error_code": 401, "message": "Unauthorized"}));
        }
    }
    next.run(request).await
}

async fn register(State(shared): State<Arc<Shared>>, Path(subject): Path<String>, body: Bytes) -> Response {
    match schema_body(&body) {
        Ok((schema, schema_type)) => {
            let id = shared.state().register(&subject, &schema, &schema_type);
            reply(StatusCode::OK, json!({"id": id}))
        }
        Err(invalid) => invalid.into_response(),
    }
}

async fn lookup(State(shared): State<Arc<Shared>>, Path(subject): Path<String>, body: Bytes) -> Response {
    let (schema, schema_type) = match schema_body(&body) {
        Ok(body) => body,
        Err(invalid) => return invalid.into_response(),
    };
    let state = shared.state();
    let Some(versions) = state.subjects.get(&subject) else {
        return subject_not_found(&subject);
    };
    let canonical = canonical(&schema);
    let found = versions.iter().enumerate().find_map(|(index, &id)| {
        let stored = state.schema(id)?;
        (stored.canonical == canonical && stored.schema_type == schema_type).then_some((
            index + 1,
            id,
            stored,
        ))
    });
    match found {
        Some((version, id, stored)) => reply(StatusCode::OK, described(&subject, version, id, stored)),
        None => reply(StatusCode::NOT_FOUND, json!({"error_code": 40403, "message": "Schema not found"})),
    }
}

async fn schema_by_id(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match id.parse().ok().and_then(|id| state.schema(id)) {
        Some(stored) if stored.schema_type == "AVRO" => reply(StatusCode::OK, json!({"schema": stored.text})),
        Some(stored) => {
            reply(StatusCode::OK, json!({"schema": stored.text, "schemaType": stored.schema_type}))
        }
        None => reply(StatusCode::NOT_FOUND, json!({"error_code": 40403, "message": "Schema not found"})),
    }
}

async fn subjects(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, json!(shared.state().subjects.keys().collect::<Vec<_>>()))
}

async fn versions(State(shared): State<Arc<Shared>>, Path(subject): Path<String>) -> Response {
    match shared.state().subjects.get(&subject) {
        Some(versions) => reply(StatusCode::OK, json!((1..=versions.len()).collect::<Vec<_>>())),
        None => subject_not_found(&subject),
    }
}

async fn version(
    State(shared): State<Arc<Shared>>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    shared.state().version(&subject, &version)
}

async fn compatibility(
    State(shared): State<Arc<Shared>>,
    Path((subject, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(invalid) = schema_body(&body) {
        return invalid.into_response();
    }
    let existing = shared.state().version(&subject, &version);
    if existing.status() != StatusCode::OK {
        return existing;
    }
    reply(StatusCode::OK, json!({"is_compatible": true}))
}

async fn global_config(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, json!({"compatibilityLevel": shared.state().level}))
}

async fn subject_config(State(shared): State<Arc<Shared>>, Path(subject): Path<String>) -> Response {
    let state = shared.state();
    let level = state.subject_levels.get(&subject).unwrap_or(&state.level);
    reply(StatusCode::OK, json!({"compatibilityLevel": level}))
}

/// Reads a compatibility change: the new level.
fn level(body: &[u8]) -> Result<String, Unprocessable> {
    let level =
        serde_json::from_slice::<ConfigBody>(body).map(|body| body.compatibility.to_ascii_uppercase());
    match level {
        Ok(level) if LEVELS.contains(&level.as_str()) => Ok(level),
        _ => {
            let message = "Invalid compatibility level. Valid values are none, backward, forward, full, \
                           backward_transitive, forward_transitive, and full_transitive";
            Err(Unprocessable(42203, message))
        }
    }
}

async fn set_global_config(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match level(&body) {
        Ok(level) => {
            shared.state().level.clone_from(&level);
            reply(StatusCode::OK, json!({"compatibility": level}))
        }
        Err(invalid) => invalid.into_response(),
    }
}

async fn set_subject_config(
    State(shared): State<Arc<Shared>>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Response {
    match level(&body) {
        Ok(level) => {
            shared.state().subject_levels.insert(subject, level.clone());
            reply(StatusCode::OK, json!({"compatibility": level}))
        }
        Err(invalid) => invalid.into_response(),
    }
}
