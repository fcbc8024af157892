//! The webhook's HTTP side: one request per event, status codes classed per DESIGN §5
//! (2xx delivered, 408/429/5xx transient with `Retry-After`, 401/403 fatal, other 4xx a bad
//! record).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use super::request;
use crate::error::{ErrorClass, chain};
use crate::event::ChangeEvent;
use crate::sinks::{Refused, Sink, SinkError, SinkFactory};

/// The header that carries the event's stable id, the same on every redelivery.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Settings of a webhook sink, taken from its validated config.
#[derive(Clone)]
pub struct WebhookOptions {
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
}

impl fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Builds webhook sinks that share one HTTP client.
pub struct WebhookFactory {
    sink_id: String,
    shared: Arc<Shared>,
}

struct Shared {
    client: reqwest::Client,
    method: Method,
    url: String,
    headers: HeaderMap,
}

/// A webhook sink for one lane.
struct WebhookSink {
    sink_id: String,
    shared: Arc<Shared>,
}

impl WebhookFactory {
    /// Validates the options and builds the HTTP client.
    pub fn new(sink_id: &str, options: &WebhookOptions) -> Result<Self, String> {
        let method = Method::from_bytes(options.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", options.method))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header `{name}` is not valid"))?;
            headers.insert(name, value);
        }
        if let Some(token) = &options.auth_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "auth_token holds characters not allowed in a header".to_owned())?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {}", chain(&error)))?;
        Ok(WebhookFactory {
            sink_id: sink_id.to_owned(),
            shared: Arc::new(Shared { client, method, url: options.url.clone(), headers }),
        })
    }
}

impl SinkFactory for WebhookFactory {
    fn sink_id(&self) -> &str {
        &self.sink_id
    }

    fn build(&self) -> Box<dyn Sink> {
        Box::new(WebhookSink { sink_id: self.sink_id.clone(), shared: self.shared.clone() })
    }
}

impl Sink for WebhookSink {
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<Vec<Refused>, SinkError>> {
        Box::pin(async move {
            // One request at a time keeps per-key order; the first failure stops the write.
            for (index, event) in events.iter().enumerate() {
                self.send(event).await.map_err(|(class, message)| SinkError {
                    sink_id: self.sink_id.clone(),
                    class,
                    message,
                    accepted: index,
                })?;
            }
            Ok(Vec::new())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        // Every accepted request was answered with 2xx: nothing is buffered.
        Box::pin(async { Ok(()) })
    }
}

impl WebhookSink {
    async fn send(&self, event: &ChangeEvent) -> Result<(), (ErrorClass, String)> {
        let shared = &self.shared;
        let response = shared
            .client
            .request(shared.method.clone(), &shared.url)
            .headers(shared.headers.clone())
            .header(IDEMPOTENCY_HEADER, event.position.idempotency_id())
            .json(&request::payload(event))
            .send()
            .await
            .map_err(|error| {
                let message = format!("request to {} failed: {}", shared.url, chain(&error.without_url()));
                (ErrorClass::TRANSIENT, message)
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        let message = format!("{} answered {status}: {body}", shared.url);
        Err((classify_status(status, retry_after), message))
    }
}

/// The class of a non-2xx answer.
fn classify_status(status: StatusCode, retry_after: Option<Duration>) -> ErrorClass {
    match status.as_u16() {
        408 | 429 | 500..=599 => ErrorClass::Transient { retry_after },
        // Refused credentials fail every record alike: halt and say so rather than fill the DLQ.
        401 | 403 => ErrorClass::Fatal,
        400..=499 => ErrorClass::Record,
        // 1xx and 3xx (redirects are followed) should not end here; retrying is the safe choice.
        _ => ErrorClass::Transient { retry_after },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classed_as_designed() {
        let hint = Some(Duration::from_secs(3));
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, hint),
            ErrorClass::Transient { retry_after: hint }
        );
        assert_eq!(classify_status(StatusCode::REQUEST_TIMEOUT, None), ErrorClass::TRANSIENT);
        assert_eq!(classify_status(StatusCode::BAD_GATEWAY, None), ErrorClass::TRANSIENT);
        assert_eq!(classify_status(StatusCode::UNPROCESSABLE_ENTITY, None), ErrorClass::Record);
        assert_eq!(classify_status(StatusCode::NOT_FOUND, None), ErrorClass::Record);
        assert_eq!(classify_status(StatusCode::UNAUTHORIZED, None), ErrorClass::Fatal);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let options = WebhookOptions {
            url: "http://127.0.0.1:1/hook".into(),
            method: "POST".into(),
            headers: vec![("x-api-key".into(), "header-secret".into())],
            timeout: Duration::from_secs(1),
            auth_token: Some("token-secret".into()),
        };
        let debug = format!("{options:?}");
        assert!(!debug.contains("token-secret") && !debug.contains("header-secret"), "{debug}");
    }
}
