//! Topic provisioning: the source topics exist before the consumer subscribes, so that a
//! subscription never races Debezium's own topic creation. Also the operator's side: whether
//! the broker answers, and removing a pipeline's topics.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::source::kafka::{client_config, connection_properties};

/// Why topics could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The admin client could not be created or the request failed.
    #[error("cannot manage topics on {bootstrap}")]
    Admin {
        /// Broker list.
        bootstrap: String,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The broker refused a topic.
    #[error("cannot create topic `{topic}`: {code}")]
    Topic {
        /// Topic name.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// The broker refused to delete a topic.
    #[error("cannot delete topic `{topic}`: {code}")]
    Delete {
        /// Topic name.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// Creates each topic that does not exist yet, with `partitions` partitions and
/// `replication` replicas.
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    topics: &[String],
    partitions: i32,
    replication: i32,
) -> Result<(), Error> {
    let admin_error = |source| Error::Admin { bootstrap: kafka.bootstrap_servers.clone(), source };
    let admin = admin(kafka).map_err(admin_error)?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics(&new_topics, &options).await.map_err(admin_error)?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, partitions, "provision.topic_created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(Error::Topic { topic, code }),
        }
    }
    Ok(())
}

/// Deletes the topics that exist; returns those deleted.
pub async fn delete_topics(kafka: &KafkaConfig, topics: &[String]) -> Result<Vec<String>, Error> {
    let admin_error = |source| Error::Admin { bootstrap: kafka.bootstrap_servers.clone(), source };
    let admin = admin(kafka).map_err(admin_error)?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.delete_topics(&names, &options).await.map_err(admin_error)?;
    let mut deleted = Vec::new();
    for result in results {
        match result {
            Ok(topic) => deleted.push(topic),
            Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(Error::Delete { topic, code }),
        }
    }
    Ok(deleted)
}

/// How many brokers the cluster has, or why it does not answer within `timeout`.
pub async fn broker_count(kafka: &KafkaConfig, timeout: Duration) -> Result<usize, String> {
    let admin = admin(kafka).map_err(|error| error.to_string())?;
    // librdkafka's metadata call blocks.
    tokio::task::spawn_blocking(move || {
        let metadata = admin.inner().fetch_metadata(None, timeout).map_err(|error| error.to_string())?;
        Ok(metadata.brokers().len())
    })
    .await
    .map_err(|error| error.to_string())?
}

/// An admin client with the pipeline's connection and security settings.
fn admin(kafka: &KafkaConfig) -> rdkafka::error::KafkaResult<AdminClient<DefaultClientContext>> {
    client_config(&connection_properties(kafka)).create()
}
