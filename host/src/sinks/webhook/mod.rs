//! The webhook sink: POSTs change events as JSON to an HTTP endpoint, in order, one per request
//! or `batch_size` per request, with a stable id (at-least-once delivery) and, given secrets,
//! Standard Webhooks signatures. `sink` keeps the order and the acks, `client` makes the
//! requests and classes the answers, `request` builds the payload, `signing` signs it.

mod client;
mod request;
mod signing;
mod sink;

pub use client::{
    IDEMPOTENCY_HEADER, StatusClass, StatusClasses, WebhookClient, WebhookError, WebhookSettings,
};
pub use signing::SigningKeys;
pub use sink::WebhookFactory;
