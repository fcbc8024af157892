//! Pipelines run in process against librdkafka's mock cluster: the options every such suite
//! starts from.

use std::time::Duration;

use cdc_host::decode::Decoder;
use cdc_host::pipeline::retry::RetrySettings;
use cdc_host::pipeline::{PipelineSettings, SinkSettings};
use cdc_host::source::kafka::ConsumerSettings;

/// A short backoff: three attempts, 100 ms to 500 ms.
pub fn quick_retry() -> RetrySettings {
    RetrySettings {
        max_attempts: 3,
        initial_wait: Duration::from_millis(100),
        max_wait: Duration::from_millis(500),
        multiplier: 2.0,
        jitter: false,
    }
}

/// A JSON pipeline on `topic` in `group`, reading from the earliest offset, committing at every
/// housekeeping tick, with `sinks`.
pub fn mock_pipeline(
    bootstrap: &str,
    group: &str,
    topic: &str,
    sinks: Vec<SinkSettings>,
) -> PipelineSettings {
    let properties = vec![
        ("bootstrap.servers".to_owned(), bootstrap.to_owned()),
        ("auto.offset.reset".to_owned(), "earliest".to_owned()),
        ("session.timeout.ms".to_owned(), "6000".to_owned()),
        ("heartbeat.interval.ms".to_owned(), "300".to_owned()),
    ];
    PipelineSettings {
        consumer: ConsumerSettings { group_id: group.into(), properties },
        topics: vec![topic.into()],
        decoder: Decoder::Json,
        sinks,
        transforms: Vec::new(),
        transform_retry: quick_retry(),
        max_buffered_messages: 100,
        batch_size: 100,
        partition_concurrency: 0,
        record_retries: 0,
        commit_interval: Duration::ZERO,
        lag_interval: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(10),
    }
}
