//! End-to-end suites: real PostgreSQL, Debezium on Kafka Connect, a Kafka broker, HTTP and the
//! `cdc` binary. Start the services with `scripts/test-env.sh up` first.

mod avro;
mod connector_recovery;
mod delivery;
mod embedded;
mod iceberg;
mod in_process;
mod independence;
mod mysql_source;
mod operator_cli;
mod packaging;
mod plugin_cli;
mod plugin_http;
mod plugin_sandbox;
mod poison;
mod postgres_replica;
mod postgres_sink;
mod postgres_to_webhook;
mod process_exit;
mod python_plugin;
mod rebalance;
mod replicas;
mod restarts;
mod secure_connections;
mod shared_codec;
mod sink_conformance;
mod webhook_batches;
