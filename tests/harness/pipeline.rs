//! Pipelines run in process, against librdkafka's mock cluster or the test broker: the settings
//! every such suite starts from, and a pipeline into one webhook sink with a DLQ topic.

use std::sync::Arc;
use std::time::Duration;

use cdc_host::decode::Decoder;
use cdc_host::ops::health::Health;
use cdc_host::ops::metrics::Metrics;
use cdc_host::pipeline::dlq::{DlqSettings, KafkaDlq};
use cdc_host::pipeline::retry::RetrySettings;
use cdc_host::pipeline::{self, Outcome, PipelineSettings, SinkSettings};
use cdc_host::sinks::webhook::{WebhookFactory, WebhookSettings};
use cdc_host::source::kafka::ConsumerSettings;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// Sets how many messages the pipeline buffers, and sizes the consumer's prefetch to it as
/// `cdc run` does (the last value of a property wins).
pub fn set_max_buffered(settings: &mut PipelineSettings, max_buffered_messages: usize) {
    settings.max_buffered_messages = max_buffered_messages;
    settings.consumer.properties.extend(cdc_host::source::kafka::consumer_tuning(max_buffered_messages));
}

/// A JSON pipeline on `topic` in `group`, reading from the earliest offset, committing at every
/// housekeeping tick, with `sinks`.
pub fn pipeline_settings(
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
    let mut settings = PipelineSettings {
        consumer: ConsumerSettings { group_id: group.into(), properties },
        topics: vec![topic.into()],
        decoder: Decoder::Json,
        sinks,
        transforms: Vec::new(),
        transform_retry: quick_retry(),
        max_buffered_messages: 0,
        batch_size: 100,
        partition_concurrency: 0,
        record_retries: 0,
        commit_interval: Duration::ZERO,
        lag_interval: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(10),
    };
    set_max_buffered(&mut settings, 100);
    settings
}

/// A pipeline on `topic` into one webhook sink, `hook`, dead-lettering into `<topic>.dlq`,
/// running until [`WebhookPipeline::stop`].
pub struct WebhookPipeline {
    /// The pipeline's health, as `/readyz` shows it.
    pub health: Arc<Health>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Outcome, pipeline::Error>>,
}

impl WebhookPipeline {
    /// Starts it; DLQ writes time out after `dlq_write_timeout`.
    pub fn spawn(
        bootstrap: &str,
        group: &str,
        topic: &str,
        webhook: &WebhookSettings,
        dlq_write_timeout: Duration,
    ) -> Self {
        let factory = Arc::new(WebhookFactory::new("hook", webhook).expect("valid webhook settings"));
        let dlq_settings = DlqSettings {
            topic_suffix: "dlq".into(),
            include_headers: true,
            write_timeout: dlq_write_timeout,
        };
        let dlq = KafkaDlq::new(&[("bootstrap.servers".to_owned(), bootstrap.to_owned())], dlq_settings)
            .expect("the DLQ producer starts");
        let options =
            pipeline_settings(bootstrap, group, topic, vec![SinkSettings { factory, retry: quick_retry() }]);
        let health = Arc::new(Health::new(["hook".to_owned()]));
        health.set_connector(Ok(()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(pipeline::run(
            options,
            Some(Arc::new(dlq)),
            health.clone(),
            Arc::new(Metrics::default()),
            async {
                let _ = stopped.await;
            },
        ));
        WebhookPipeline { health, stop, task }
    }

    /// Stops it and returns how it ended.
    pub async fn stop(self) -> Outcome {
        let _ = self.stop.send(());
        self.task.await.expect("the pipeline task ends").expect("the pipeline started")
    }
}
