//! Direct access to the broker for tests and benches: create and delete topics, produce raw
//! records, read a topic back with headers, read a group's committed offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers as text.
    pub headers: BTreeMap<String, String>,
}

/// Creates `topic` with `partitions` partitions and one replica.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for result in
        admin(bootstrap).create_topics([&new_topic], &AdminOptions::new()).await.expect("create topic")
    {
        result.expect("topic created");
    }
}

/// Deletes `topic`. The test broker keeps topics in memory: a bench producing hundreds of MB
/// a run deletes what it made, or runs pile up until the broker runs out of memory.
pub async fn delete_topic(bootstrap: &str, topic: &str) {
    for result in admin(bootstrap).delete_topics(&[topic], &AdminOptions::new()).await.expect("delete topic")
    {
        result.expect("topic deleted");
    }
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client")
}

/// Produces one record and waits for the broker's acknowledgement; returns its offset.
pub async fn produce(bootstrap: &str, topic: &str, partition: i32, key: Option<&[u8]>, value: &[u8]) -> i64 {
    produce_compressed(bootstrap, topic, partition, key, value, "none").await
}

/// [`produce`] in a batch compressed with `codec` (librdkafka's `compression.type`).
pub async fn produce_compressed(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    key: Option<&[u8]>,
    value: &[u8],
    codec: &str,
) -> i64 {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "10000")
        .set("compression.type", codec)
        .create()
        .unwrap();
    let mut record = FutureRecord::<[u8], [u8]>::to(topic).partition(partition).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    let delivery = producer.send(record, Duration::from_secs(10)).await.expect("record produced");
    delivery.offset
}

/// The partitions of a topic.
pub fn partitions(bootstrap: &str, topic: &str) -> Vec<i32> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    metadata.topics()[0].partitions().iter().map(|partition| partition.id()).collect()
}

/// Reads every record of a topic that arrives within `timeout`, stopping early once `expected`
/// records were read. Uses `assign`, so it starts at once.
pub fn read_topic(bootstrap: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cdc-tests-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in partitions(bootstrap, topic) {
        list.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let started = Instant::now();
    let mut records = Vec::new();
    while records.len() < expected && started.elapsed() < timeout {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let Ok(message) = message else { continue };
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        let value =
                            header.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                        (header.key.to_owned(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        });
    }
    records
}

/// The committed offset of each partition of `topic` for `group` (-1 where none).
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in partitions(bootstrap, topic) {
        list.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).unwrap();
    committed
        .elements()
        .iter()
        .map(|element| {
            let offset = match element.offset() {
                Offset::Offset(offset) => offset,
                _ => -1,
            };
            (element.partition(), offset)
        })
        .collect()
}
