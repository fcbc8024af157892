//! What a Kafka-mode pipeline provisions, shared by `cdc run` and `cdc deploy`: its topics
//! (the source topics and, with the DLQ on, their DLQ topics) and its Debezium connector,
//! registered and running. Provisioning creates what is missing and never deletes anything.

use std::time::Duration;

use crate::config::Config;
use crate::http;
use crate::ops::connector::ConnectClient;
use crate::ops::{debezium, topics};
use crate::pipeline::dlq::dlq_topic;

/// How long a new connector may take to run (its snapshot starts first).
pub const CONNECTOR_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The topics the pipeline needs: its source topics and, with the DLQ on, their DLQ topics.
pub fn pipeline_topics(config: &Config) -> Vec<String> {
    let source_topics = debezium::source_topics(config);
    let mut all = source_topics.clone();
    if config.platform.dlq.enabled {
        all.extend(source_topics.iter().map(|topic| dlq_topic(topic, &config.platform.dlq.topic_suffix)));
    }
    all
}

/// A client for the pipeline's connector on its Kafka Connect.
///
/// # Errors
///
/// When the HTTP client cannot be built (its CA file, its TLS backend).
pub fn connect_client(config: &Config) -> Result<ConnectClient, http::Error> {
    let connector = &config.platform.connector;
    Ok(ConnectClient::new(
        http::client(connector.timeout, connector.ca_file.as_deref())?,
        &connector.connect_url,
        &debezium::connector_name(config),
        connector.retry_max_attempts,
        connector.retry_wait,
    ))
}

/// Creates the missing topics, registers (or updates) the connector and waits until it runs.
pub async fn provision(config: &Config) -> anyhow::Result<ConnectClient> {
    let kafka = &config.platform.kafka;
    topics::ensure_topics(
        kafka,
        &pipeline_topics(config),
        i32::try_from(kafka.topic_num_partitions).unwrap_or(i32::MAX),
        i32::from(kafka.topic_replication_factor),
    )
    .await?;
    let connect = connect_client(config)?;
    connect.put_config(&debezium::connector_config(config)?).await?;
    connect.wait_running(CONNECTOR_START_TIMEOUT).await?;
    Ok(connect)
}
