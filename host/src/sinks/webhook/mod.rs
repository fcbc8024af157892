//! The webhook sink: POSTs each change event as JSON to an HTTP endpoint, in order, with a
//! stable idempotency id (at-least-once delivery). `sink` keeps the order and the acks,
//! `client` makes the requests and classes the answers, `request` builds the payload.

mod client;
mod request;
mod sink;

pub use client::{
    IDEMPOTENCY_HEADER, StatusClass, StatusClasses, WebhookClient, WebhookError, WebhookSettings,
};
pub use sink::WebhookFactory;
