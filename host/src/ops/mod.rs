//! Operations: provisioning (Kafka Connect, topics), health and readiness, metrics, and the
//! HTTP server that exposes them.

pub mod connector;
pub mod crash;
pub mod debezium;
pub mod health;
pub mod metrics;
pub mod peek;
pub mod provision;
pub mod replay;
pub mod schema_monitor;
pub mod server;
pub mod telemetry;
pub mod topics;
