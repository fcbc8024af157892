//! The lag monitor: per owned partition, the high watermark minus the committed position,
//! logged as `consumer.lag` and exported as the `cdc_consumer_lag` gauge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::KafkaConsumer;
use crate::ops::metrics::{Metrics, names};
use crate::source::acks::PartitionKey;

/// How long one watermark request may take.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// Schedules lag rounds: one at a time, every `interval` (never when it is zero).
pub(super) struct LagMonitor {
    interval: Duration,
    last: Instant,
    round: Option<JoinHandle<()>>,
    cancelled: Arc<AtomicBool>,
}

impl LagMonitor {
    /// A monitor that reports every `interval`.
    pub(super) fn new(interval: Duration) -> Self {
        LagMonitor { interval, last: Instant::now(), round: None, cancelled: Arc::default() }
    }

    /// Starts a round if one is due and none is running. `partitions` is called only then.
    pub(super) fn tick(
        &mut self,
        consumer: &Arc<KafkaConsumer>,
        metrics: &Arc<Metrics>,
        partitions: impl FnOnce() -> Vec<(PartitionKey, Option<i64>)>,
    ) {
        let idle = self.round.as_ref().is_none_or(JoinHandle::is_finished);
        if self.interval.is_zero() || self.last.elapsed() < self.interval || !idle {
            return;
        }
        self.last = Instant::now();
        let (consumer, metrics, partitions) = (consumer.clone(), metrics.clone(), partitions());
        let cancelled = self.cancelled.clone();
        // Watermark requests block: the round runs beside the poll loop.
        self.round =
            Some(tokio::task::spawn_blocking(move || report(&consumer, &partitions, &metrics, &cancelled)));
    }

    /// Stops a running round after its current request, without waiting for it: a shutdown
    /// does not wait for lag figures.
    pub(super) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
}

/// Measures and reports the lag of `partitions`, each with its committed position (`None`:
/// nothing committed yet, so the whole partition counts). Blocking: call it off the async
/// threads. Stops early once `cancelled` is set.
fn report(
    consumer: &KafkaConsumer,
    partitions: &[(PartitionKey, Option<i64>)],
    metrics: &Metrics,
    cancelled: &AtomicBool,
) {
    let mut total = 0;
    for ((topic, partition), committed) in partitions {
        if cancelled.load(Ordering::Acquire) {
            return;
        }
        let (low, high) = match consumer.fetch_watermarks(topic, *partition, WATERMARK_TIMEOUT) {
            Ok(watermarks) => watermarks,
            Err(error) => {
                tracing::warn!(topic = %topic, partition, error = %error, "consumer.lag_unavailable");
                continue;
            }
        };
        let lag = (high - committed.unwrap_or(low)).max(0);
        total += lag;
        metrics.gauge(names::CONSUMER_LAG, &format!("{topic}[{partition}]")).set(lag);
        tracing::debug!(topic = %topic, partition, lag, "consumer.partition_lag");
    }
    tracing::info!(partitions = partitions.len(), lag = total, "consumer.lag");
}
