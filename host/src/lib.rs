//! The `cdc` host: runs change-data-capture pipelines.
//!
//! The data path, one module each (docs/architecture.md):
//!
//! ```text
//! source ─▶ decode ─▶ partition lanes ─▶ transforms ─▶ sink lanes ─▶ sinks
//!                          ▲                                  │
//!                          └──── offsets committed ◀── acks ──┘
//! ```
//!
//! * [`config`]: `pipeline.yaml` and `platform.yaml`, validated into typed specs.
//! * [`source`]: the Kafka consumer over Debezium topics.
//! * [`decode`]: Debezium envelopes into [`event::ChangeEvent`]s.
//! * [`pipeline`]: lanes, transforms, acks, commits, retries and shutdown.
//! * [`plugin`]: the wasmtime runtime for `cdc:plugin` components.
//! * [`sinks`]: the sink contract and the built-in sinks.
//! * [`ops`]: connector provisioning, health and metrics.
//! * [`cli`]: the `cdc` commands.
//! * [`allocator`]: mimalloc's tuning.
//! * `testing` (feature `test-util`): test doubles for the lanes.

pub mod allocator;
pub mod cli;
pub mod config;
pub mod decode;
pub mod error;
pub mod event;
pub mod http;
pub mod ops;
pub mod pipeline;
pub mod plugin;
pub mod sinks;
pub mod source;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
