//! What every lane of a pipeline shares: the ack tracker, the DLQ, health, metrics and the halt
//! signal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::acks::AckTracker;
use super::dlq::{Dlq, Failure};
use crate::decode::Decoder;
use crate::ops::health::Health;
use crate::ops::metrics::{Metrics, names};
use crate::source::SourceRecord;

/// Wait between attempts to write to an unavailable DLQ.
const DLQ_RETRY_WAIT: Duration = Duration::from_secs(2);

/// Shared state of one running pipeline.
pub struct LaneContext {
    /// Acks and committable positions.
    pub tracker: Arc<AckTracker>,
    /// How records are decoded (the converter Debezium writes with).
    pub decoder: Decoder,
    /// The DLQ, when enabled.
    pub dlq: Option<Dlq>,
    /// Health and readiness.
    pub health: Arc<Health>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Limits how many partitions process a batch at once (`partition_concurrency`).
    pub concurrency: Option<Arc<Semaphore>>,
    halt: watch::Sender<Option<String>>,
}

/// The DLQ is disabled and a record failed: the pipeline must halt.
#[derive(Debug)]
pub struct Halted;

impl LaneContext {
    /// A context; `halt_receiver` of the returned pair tells the poll loop to stop.
    pub fn new(
        tracker: Arc<AckTracker>,
        decoder: Decoder,
        dlq: Option<Dlq>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        concurrency: Option<Arc<Semaphore>>,
    ) -> (Arc<Self>, watch::Receiver<Option<String>>) {
        let (halt, halt_receiver) = watch::channel(None);
        (Arc::new(LaneContext { tracker, decoder, dlq, health, metrics, concurrency, halt }), halt_receiver)
    }

    /// Halts the pipeline: nothing past this point is committed, `/readyz` says why.
    pub fn halt(&self, reason: String) {
        tracing::error!(reason = reason.as_str(), "pipeline.halted");
        self.health.halt(reason.clone());
        self.halt.send_if_modified(|current| {
            let first = current.is_none();
            current.get_or_insert(reason);
            first
        });
    }

    /// Sends a record to the DLQ and returns once the broker confirmed it, retrying as long as
    /// the DLQ is unavailable (the partition does not advance meanwhile). Without a DLQ the
    /// pipeline halts instead: a failed record is never skipped silently.
    pub async fn dead_letter(&self, record: &SourceRecord, failure: Failure) -> Result<(), Halted> {
        let Some(dlq) = &self.dlq else {
            self.halt(format!(
                "{} refused {}[{}]@{} and the DLQ is disabled: {}",
                failure.stage, record.topic, record.partition, record.offset, failure.message
            ));
            return Err(Halted);
        };
        loop {
            match dlq.write(record, &failure).await {
                Ok(()) => {
                    tracing::warn!(
                        stage = failure.stage.as_str(),
                        topic = %record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        dlq_topic = dlq.topic_for(&record.topic),
                        error = failure.message.as_str(),
                        "pipeline.dead_lettered"
                    );
                    self.metrics.counter(names::DLQ_RECORDS, &failure.stage).add(1);
                    self.health.set_dlq(Ok(()));
                    return Ok(());
                }
                Err(error) => {
                    let reason = format!("cannot write to {}: {error}", dlq.topic_for(&record.topic));
                    tracing::error!(error = reason.as_str(), "pipeline.dlq_write_error");
                    self.health.set_dlq(Err(reason));
                    tokio::time::sleep(DLQ_RETRY_WAIT).await;
                }
            }
        }
    }
}
