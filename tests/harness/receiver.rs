//! A real HTTP endpoint that records what a webhook sink delivers, and can be told to answer
//! with other statuses (to play a failing or stalled endpoint).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cdc_host::sinks::webhook::WebhookSettings;
use serde_json::Value as Json;
use tokio::sync::Notify;

/// One request the receiver accepted.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The JSON body.
    pub body: Json,
    /// The `idempotency-key` header.
    pub idempotency_key: Option<String>,
    /// The `authorization` header.
    pub authorization: Option<String>,
    /// The body as it arrived, decompressed, for checking signatures over it.
    pub raw_body: Vec<u8>,
    /// The `content-encoding` header.
    pub content_encoding: Option<String>,
    /// The Standard Webhooks headers: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub webhook_id: Option<String>,
    /// See `webhook_id`.
    pub webhook_timestamp: Option<String>,
    /// See `webhook_id`.
    pub webhook_signature: Option<String>,
}

/// Decides the status of each request from its body; 2xx requests count as delivered.
pub type Responder = Arc<dyn Fn(&Json) -> u16 + Send + Sync>;

struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    attempts: Mutex<usize>,
    responder: Mutex<Responder>,
    arrived: Notify,
}

/// The receiver: listens on 127.0.0.1 on a free port until dropped.
pub struct WebhookReceiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts the receiver.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            deliveries: Mutex::default(),
            attempts: Mutex::default(),
            responder: Mutex::new(Arc::new(|_: &Json| 200)),
            arrived: Notify::new(),
        });
        let app = Router::new().route("/hook", post(accept)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let address = listener.local_addr().expect("bound address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        WebhookReceiver { address, shared, server }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The URL the sink should call.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Settings of a webhook sink calling this receiver: one unsigned event per request.
    pub fn settings(&self) -> WebhookSettings {
        WebhookSettings {
            url: self.url(),
            method: "POST".into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            auth_token: None,
            ca_file: None,
            status_classes: Default::default(),
            batch_size: 1,
            batch_timeout: Duration::ZERO,
            max_in_flight: 1,
            signing_secrets: Vec::new(),
            compression: Default::default(),
        }
    }

    /// Answers each request with the status `responder` picks.
    pub fn respond_with(&self, responder: impl Fn(&Json) -> u16 + Send + Sync + 'static) {
        *self.shared.responder.lock().unwrap() = Arc::new(responder);
    }

    /// How many requests arrived, accepted or not.
    pub fn attempts(&self) -> usize {
        *self.shared.attempts.lock().unwrap()
    }

    /// Everything accepted so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// Waits until `count` deliveries arrived; returns what arrived when the time ran out.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            let deliveries = self.deliveries();
            if deliveries.len() >= count {
                return deliveries;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.deliveries();
            }
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let content_encoding = header("content-encoding");
    let raw_body = match content_encoding.as_deref() {
        Some("gzip") => {
            let mut plain = Vec::new();
            if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain).is_err() {
                return StatusCode::BAD_REQUEST;
            }
            plain
        }
        _ => body.to_vec(),
    };
    let Ok(body) = serde_json::from_slice::<Json>(&raw_body) else {
        return StatusCode::BAD_REQUEST;
    };
    *shared.attempts.lock().unwrap() += 1;
    let responder = shared.responder.lock().unwrap().clone();
    let status = StatusCode::from_u16(responder(&body)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !status.is_success() {
        return status;
    }
    let delivery = Delivery {
        body,
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
        raw_body,
        content_encoding,
        webhook_id: header("webhook-id"),
        webhook_timestamp: header("webhook-timestamp"),
        webhook_signature: header("webhook-signature"),
    };
    shared.deliveries.lock().unwrap().push(delivery);
    shared.arrived.notify_waiters();
    status
}

/// Waits for `condition` to hold, checking every 200 ms, up to `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    condition().await
}
