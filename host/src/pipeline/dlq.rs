//! The dead-letter queue: records that fail on their own go to `<topic>.<suffix>` with their
//! original key and value bytes and headers that say why (Kafka Connect's names): a Kafka
//! topic ([`KafkaDlq`]), or without a broker (embedded mode) a JSON Lines file of that name
//! ([`DirectoryDlq`]) with the headers as fields. A record
//! counts as handled only once the DLQ confirmed the write (docs/architecture.md, delivery).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use futures::future::BoxFuture;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::error::BoxError;
use crate::source::{SourceRecord, kafka};

/// Where failed records go. `write` returns only once the record is durable there.
pub trait DeadLetterQueue: Send + Sync {
    /// Where a record of `source_topic` goes, for logs and `/readyz`.
    fn destination(&self, source_topic: &str) -> String;

    /// Writes one record with why it failed; `Ok` once the DLQ confirmed it.
    fn write<'a>(
        &'a self,
        record: &'a SourceRecord,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// Header names, as Kafka Connect's DLQ writes them.
pub mod headers {
    /// Topic the record came from.
    pub const TOPIC: &str = "__connect.errors.topic";
    /// Partition the record came from.
    pub const PARTITION: &str = "__connect.errors.partition";
    /// Offset of the record.
    pub const OFFSET: &str = "__connect.errors.offset";
    /// The kind of failure.
    pub const EXCEPTION_CLASS: &str = "__connect.errors.exception.class.name";
    /// The failure's message.
    pub const EXCEPTION_MESSAGE: &str = "__connect.errors.exception.message";
    /// The failure with its chain of causes.
    pub const EXCEPTION_STACKTRACE: &str = "__connect.errors.exception.stacktrace";
    /// The sink (or pipeline stage) that failed the record.
    pub const SINK_ID: &str = "dlq.sink_id";
    /// How many attempts were made.
    pub const ATTEMPTS: &str = "dlq.attempts";
    /// When the record was dead-lettered, milliseconds since the epoch.
    pub const TIMESTAMP: &str = "dlq.timestamp_ms";
}

/// Why a record is dead-lettered.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The sink id, or the stage (`decode`, `transform:<name>`) that refused the record.
    pub stage: String,
    /// A short name of the kind of failure (`decode`, `webhook.status`, …).
    pub kind: String,
    /// The message.
    pub message: String,
    /// The message with its causes.
    pub detail: String,
    /// Attempts made.
    pub attempts: u32,
}

/// Settings of the DLQ.
#[derive(Debug, Clone)]
pub struct DlqSettings {
    /// Suffix of DLQ topics.
    pub topic_suffix: String,
    /// Whether to write the failure headers.
    pub include_headers: bool,
    /// How long one write may wait for the broker's confirmation.
    pub write_timeout: Duration,
}

/// Writes failed records to their DLQ topic and waits for the broker's confirmation.
pub struct KafkaDlq {
    producer: FutureProducer,
    settings: DlqSettings,
}

impl KafkaDlq {
    /// Creates the producer; `properties` carry the connection (`bootstrap.servers`, security).
    pub fn new(properties: &[(String, String)], settings: DlqSettings) -> Result<Self, KafkaError> {
        let producer = producer_config(properties, &settings).create()?;
        Ok(KafkaDlq { producer, settings })
    }

    /// The DLQ topic of a source topic.
    pub fn topic_for(&self, source_topic: &str) -> String {
        dlq_topic(source_topic, &self.settings.topic_suffix)
    }

    /// Writes one record and returns once the broker confirmed it.
    async fn send(&self, record: &SourceRecord, failure: &Failure) -> Result<(), KafkaError> {
        let topic = self.topic_for(&record.topic);
        let (key, value) = (record.key_bytes(), record.value_bytes());
        let mut future_record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic);
        if let Some(key) = &key {
            future_record = future_record.key(key.as_ref());
        }
        if let Some(value) = &value {
            future_record = future_record.payload(value.as_ref());
        }
        if self.settings.include_headers {
            future_record = future_record.headers(failure_headers(record, failure));
        }
        self.producer
            .send(future_record, Timeout::After(self.settings.write_timeout))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}

impl DeadLetterQueue for KafkaDlq {
    fn destination(&self, source_topic: &str) -> String {
        self.topic_for(source_topic)
    }

    fn write<'a>(
        &'a self,
        record: &'a SourceRecord,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { self.send(record, failure).await.map_err(BoxError::from) })
    }
}

/// The producer's settings: the connection from `properties`, then what a confirmation needs.
/// A record counts as handled once the DLQ has it, so the write must be acknowledged by every
/// in-sync replica and not duplicated by a retry, whatever `kafka.acks` says for others.
fn producer_config(properties: &[(String, String)], settings: &DlqSettings) -> ClientConfig {
    let mut config = kafka::client_config(properties);
    config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", settings.write_timeout.as_millis().to_string());
    config
}

/// `<source topic>.<suffix>`.
pub fn dlq_topic(source_topic: &str, suffix: &str) -> String {
    format!("{source_topic}.{suffix}")
}

fn failure_headers(record: &SourceRecord, failure: &Failure) -> OwnedHeaders {
    failure_fields(record, failure).into_iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header { key, value: Some(value.as_bytes()) })
    })
}

/// The failure headers' names and values.
fn failure_fields(record: &SourceRecord, failure: &Failure) -> [(&'static str, String); 9] {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    [
        (headers::TOPIC, record.topic.to_string()),
        (headers::PARTITION, record.partition.to_string()),
        (headers::OFFSET, record.offset.to_string()),
        (headers::EXCEPTION_CLASS, failure.kind.clone()),
        (headers::EXCEPTION_MESSAGE, failure.message.clone()),
        (headers::EXCEPTION_STACKTRACE, failure.detail.clone()),
        (headers::SINK_ID, failure.stage.clone()),
        (headers::ATTEMPTS, failure.attempts.to_string()),
        (headers::TIMESTAMP, now_ms.to_string()),
    ]
}

/// Writes failed records as JSON Lines to `<directory>/<topic>.<suffix>.jsonl`, one object per
/// record: `topic`, `partition`, `offset`, the WAL position when there is one, `key` and
/// `value` (as text when they are UTF-8, else `key_base64`/`value_base64`), and `headers`. A
/// write counts once the file is synced.
pub struct DirectoryDlq {
    directory: PathBuf,
    settings: DlqSettings,
    /// One writer at a time, so that lines never interleave.
    lock: tokio::sync::Mutex<()>,
}

impl DirectoryDlq {
    /// Creates the directory when absent.
    pub fn new(directory: PathBuf, settings: DlqSettings) -> std::io::Result<Self> {
        std::fs::create_dir_all(&directory)?;
        Ok(DirectoryDlq { directory, settings, lock: tokio::sync::Mutex::new(()) })
    }

    fn path_for(&self, source_topic: &str) -> PathBuf {
        self.directory.join(format!("{}.jsonl", dlq_topic(source_topic, &self.settings.topic_suffix)))
    }

    fn line(&self, record: &SourceRecord, failure: &Failure) -> Vec<u8> {
        let mut line = serde_json::Map::new();
        line.insert("topic".into(), record.topic.as_ref().into());
        line.insert("partition".into(), record.partition.into());
        line.insert("offset".into(), record.offset.into());
        if let Some(wal) = record.wal {
            line.insert("commit_lsn".into(), wal.commit_lsn.into());
            line.insert("index".into(), wal.index.into());
        }
        for (name, bytes) in [("key", record.key_bytes()), ("value", record.value_bytes())] {
            match bytes.as_deref().map(std::str::from_utf8) {
                None => line.insert(name.into(), serde_json::Value::Null),
                Some(Ok(text)) => line.insert(name.into(), text.into()),
                Some(Err(_)) => line.insert(
                    format!("{name}_base64"),
                    BASE64.encode(bytes.as_deref().unwrap_or_default()).into(),
                ),
            };
        }
        if self.settings.include_headers {
            let fields = failure_fields(record, failure)
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.into()));
            line.insert("headers".into(), serde_json::Value::Object(fields.collect()));
        }
        let mut bytes = serde_json::to_vec(&line).expect("a JSON value always serializes");
        bytes.push(b'\n');
        bytes
    }
}

impl DeadLetterQueue for DirectoryDlq {
    fn destination(&self, source_topic: &str) -> String {
        self.path_for(source_topic).display().to_string()
    }

    fn write<'a>(
        &'a self,
        record: &'a SourceRecord,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let line = self.line(record, failure);
            let path = self.path_for(&record.topic);
            let _guard = self.lock.lock().await;
            tokio::task::spawn_blocking(move || {
                use std::io::Write as _;
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                file.write_all(&line)?;
                file.sync_data()
            })
            .await
            .map_err(BoxError::from)?
            .map_err(BoxError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_waits_for_every_replica_whatever_the_connection_says() {
        let settings = DlqSettings {
            topic_suffix: "dlq".into(),
            include_headers: true,
            write_timeout: Duration::from_secs(3),
        };
        let properties = [
            ("bootstrap.servers".to_owned(), "127.0.0.1:9092".to_owned()),
            ("acks".to_owned(), "0".to_owned()),
            ("enable.idempotence".to_owned(), "false".to_owned()),
        ];
        let config = producer_config(&properties, &settings);
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(config.get("message.timeout.ms"), Some("3000"));
    }
}
