//! The webhook sink: POSTs each change event as JSON to an HTTP endpoint, in order, with a
//! stable idempotency id (at-least-once delivery).

mod client;
mod request;

pub use client::{
    IDEMPOTENCY_HEADER, StatusClass, StatusClasses, WebhookError, WebhookFactory, WebhookOptions,
};
