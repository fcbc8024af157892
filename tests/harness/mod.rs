//! Harness for the end-to-end tests: the test environment's addresses, the binaries under
//! test, a webhook receiver and a supervised `cdc` process.
//!
//! The services come from `scripts/test-env.sh up`; its `env` command prints the variables read
//! here. A test that finds them unset fails: a suite that silently skips proves nothing.

pub mod allocations;
pub mod build;
pub mod env;
pub mod events;
pub mod kafka;
pub mod lakehouse;
pub mod mariadb;
pub mod pipeline;
pub mod process;
pub mod proxy;
pub mod receiver;
pub mod scenario;
pub mod schema_registry;
pub mod tls;
