//! The webhook's HTTP client: one request per event or per batch of events, signed when the
//! sink has secrets, each answer classed by its status (see [`StatusClasses`]): 2xx delivered;
//! 400, 413, 415 and 422 refuse this payload (a record error); 401 and 403 refuse the
//! credentials (fatal); every other status, and connection, TLS and timeout errors, are
//! transient, retried after the peer's `Retry-After`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use super::request;
use super::signing::SigningKeys;
pub use crate::config::WebhookStatusClass as StatusClass;
use crate::config::{WebhookCompression, WebhookSinkConfig};
use crate::error::{ErrorClass, chain};
use crate::event::ChangeEvent;

/// The header that carries the stable id of the request's events, the same on every redelivery.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Standard Webhooks headers, sent when the sink signs its requests.
const WEBHOOK_ID: &str = "webhook-id";
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The class of every status: the defaults, with a sink's own overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusClasses {
    /// Statuses the endpoint uses its own way.
    pub overrides: BTreeMap<u16, StatusClass>,
}

impl StatusClasses {
    /// The class of `status`.
    pub fn of(&self, status: StatusCode) -> StatusClass {
        if let Some(class) = self.overrides.get(&status.as_u16()) {
            return *class;
        }
        match status.as_u16() {
            200..=299 => StatusClass::Delivered,
            // Only these say that the payload itself is unacceptable.
            400 | 413 | 415 | 422 => StatusClass::Record,
            // Refused credentials fail every record alike: halt rather than fill the DLQ.
            401 | 403 => StatusClass::Fatal,
            // 404 during a deploy, 409 on a replay, 5xx, 408, 429, …: try again.
            _ => StatusClass::Transient,
        }
    }
}

/// Settings of a webhook sink, taken from its validated config.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Endpoint URL.
    pub url: String,
    /// HTTP method (POST, PUT or PATCH).
    pub method: String,
    /// Static headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Bearer token, sent as `Authorization: Bearer …`.
    pub auth_token: Option<String>,
    /// PEM file of CA certificates trusted beyond the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How answers are classed.
    pub status_classes: StatusClasses,
    /// Events per request: 1 sends the event as the body, more send `{"events": [...]}`.
    pub batch_size: usize,
    /// How long a lane waits for more events to fill a request.
    pub batch_timeout: Duration,
    /// Requests in flight at once per lane, each for its own keys.
    pub max_in_flight: usize,
    /// Standard Webhooks secrets (`whsec_…`) every request is signed with.
    pub signing_secrets: Vec<String>,
    /// Whether bodies are gzipped (signatures cover the JSON before compression).
    pub compression: WebhookCompression,
}

impl WebhookSettings {
    /// The settings of a `webhook:` block.
    pub fn from_config(config: &WebhookSinkConfig) -> Self {
        WebhookSettings {
            url: config.url.clone(),
            method: config.method.clone(),
            headers: config
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().to_owned()))
                .collect(),
            timeout: config.timeout,
            auth_token: config.auth_token.as_ref().map(|token| token.expose().to_owned()),
            ca_file: config.ca_file.clone(),
            status_classes: StatusClasses { overrides: config.status_classes.clone() },
            batch_size: config.batch_size.max(1),
            batch_timeout: config.batch_timeout,
            max_in_flight: config.max_in_flight.max(1),
            signing_secrets: config.signing_secrets.iter().map(|secret| secret.expose().to_owned()).collect(),
            compression: config.compression,
        }
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("status_classes", &self.status_classes)
            .field("batch_size", &self.batch_size)
            .field("batch_timeout", &self.batch_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("signing_secrets", &self.signing_secrets.len())
            .field("compression", &self.compression)
            .finish()
    }
}

/// Why one request did not deliver its event.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No answer: connection, TLS or timeout.
    #[error("request to {url} failed")]
    Request {
        /// The endpoint.
        url: String,
        /// The cause (without the URL, which may carry credentials).
        #[source]
        source: reqwest::Error,
    },
    /// An answer that does not deliver the event.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the answer's body.
        body: String,
    },
}

/// The HTTP side of a webhook sink, shared by its lanes.
pub struct WebhookClient {
    client: reqwest::Client,
    method: Method,
    url: String,
    headers: HeaderMap,
    status_classes: StatusClasses,
    batch_size: usize,
    signing: SigningKeys,
    compression: WebhookCompression,
}

impl WebhookClient {
    /// Validates the settings and builds the HTTP client.
    pub fn new(settings: &WebhookSettings) -> Result<Self, String> {
        let method = Method::from_bytes(settings.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", settings.method))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header `{name}` is not valid"))?;
            headers.insert(name, value);
        }
        if let Some(token) = &settings.auth_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "auth_token holds characters not allowed in a header".to_owned())?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let client = crate::http::client(settings.timeout, settings.ca_file.as_deref())
            .map_err(|error| format!("cannot build the HTTP client: {}", chain(&error)))?;
        let signing = SigningKeys::parse(settings.signing_secrets.iter().map(String::as_str))?;
        Ok(WebhookClient {
            client,
            method,
            url: settings.url.clone(),
            headers,
            status_classes: settings.status_classes.clone(),
            batch_size: settings.batch_size.max(1),
            signing,
            compression: settings.compression,
        })
    }

    /// Events per request.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sends events (at most [`WebhookClient::batch_size`]) in one request; `Err` with the
    /// class of the failure unless its status delivers them.
    pub async fn send(&self, events: &[&ChangeEvent]) -> Result<(), (ErrorClass, WebhookError)> {
        let (id, body) = request::body(events, self.batch_size);
        let mut request = self
            .client
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone())
            .header(IDEMPOTENCY_HEADER, &id);
        let timestamp =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        if let Some(signature) = self.signing.signature(&id, timestamp, &body) {
            request = request
                .header(WEBHOOK_ID, &id)
                .header(WEBHOOK_TIMESTAMP, timestamp)
                .header(WEBHOOK_SIGNATURE, signature);
        }
        let body = match self.compression {
            WebhookCompression::None => body,
            WebhookCompression::Gzip => {
                request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
                gzip(&body)
            }
        };
        let response = request.body(body).send().await.map_err(|error| {
            let error = WebhookError::Request { url: self.url.clone(), source: error.without_url() };
            (ErrorClass::TRANSIENT, error)
        })?;
        let status = response.status();
        let class = match self.status_classes.of(status) {
            StatusClass::Delivered => return Ok(()),
            StatusClass::Transient => {
                let retry_after = response.headers().get(RETRY_AFTER).and_then(|value| value.to_str().ok());
                ErrorClass::Transient {
                    retry_after: retry_after.and_then(|value| parse_retry_after(value, SystemTime::now())),
                }
            }
            StatusClass::Record => ErrorClass::Record,
            StatusClass::Fatal => ErrorClass::Fatal,
        };
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        Err((class, WebhookError::Status { url: self.url.clone(), status, body }))
    }
}

/// `body` gzipped; fast compression, since JSON of change events shrinks well at any level.
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    encoder.write_all(body).expect("compressing into memory cannot fail");
    encoder.finish().expect("compressing into memory cannot fail")
}

/// A `Retry-After` value, in seconds or as an HTTP date, as a wait from `now`.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_statuses_that_refuse_the_payload_are_record_errors() {
        let classes = StatusClasses::default();
        let class = |status: u16| classes.of(StatusCode::from_u16(status).unwrap());
        for status in [400, 413, 415, 422] {
            assert_eq!(class(status), StatusClass::Record, "{status}");
        }
        for status in [401, 403] {
            assert_eq!(class(status), StatusClass::Fatal, "{status}");
        }
        for status in [404, 405, 408, 409, 410, 429, 500, 502, 503, 504, 301] {
            assert_eq!(class(status), StatusClass::Transient, "{status}");
        }
        assert_eq!(class(200), StatusClass::Delivered);
        assert_eq!(class(204), StatusClass::Delivered);
    }

    #[test]
    fn a_sink_overrides_the_class_of_a_status() {
        let overrides = BTreeMap::from([(409, StatusClass::Delivered), (404, StatusClass::Record)]);
        let classes = StatusClasses { overrides };
        assert_eq!(classes.of(StatusCode::CONFLICT), StatusClass::Delivered);
        assert_eq!(classes.of(StatusCode::NOT_FOUND), StatusClass::Record);
        assert_eq!(classes.of(StatusCode::BAD_REQUEST), StatusClass::Record);
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_as_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn gzip_bodies_read_back_whole() {
        let body = br#"{"events":[{"id":1},{"id":2}]}"#.repeat(50);
        let compressed = gzip(&body);
        assert!(compressed.len() < body.len() / 4, "{} of {}", compressed.len(), body.len());
        let mut restored = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut restored)
            .unwrap();
        assert_eq!(restored, body);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let options = WebhookSettings {
            url: "http://127.0.0.1:1/hook".into(),
            method: "POST".into(),
            headers: vec![("x-api-key".into(), "header-secret".into())],
            timeout: Duration::from_secs(1),
            auth_token: Some("token-secret".into()),
            ca_file: None,
            status_classes: StatusClasses::default(),
            batch_size: 1,
            batch_timeout: Duration::ZERO,
            max_in_flight: 1,
            signing_secrets: vec!["whsec_c2VjcmV0".into()],
            compression: WebhookCompression::None,
        };
        let debug = format!("{options:?}");
        assert!(!debug.contains("token-secret") && !debug.contains("header-secret"), "{debug}");
        assert!(!debug.contains("whsec_c2VjcmV0"), "{debug}");
    }
}
