//! What every lane of a pipeline shares: the ack tracker, the DLQ, health, metrics, the halt
//! signal and the `partition_concurrency` permits.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::dlq::{DeadLetterQueue, Failure};
use crate::decode::Decoder;
use crate::ops::health::Health;
use crate::ops::metrics::{Metrics, names};
use crate::source::SourceRecord;
use crate::source::acks::AckTracker;

/// Wait between attempts to write to an unavailable DLQ.
const DLQ_RETRY_WAIT: Duration = Duration::from_secs(2);

/// Shared state of one running pipeline.
pub struct LaneContext {
    /// Acks and committable positions.
    pub tracker: Arc<AckTracker>,
    /// How records are decoded (the converter Debezium writes with).
    pub decoder: Decoder,
    /// The DLQ, when enabled.
    pub dlq: Option<Arc<dyn DeadLetterQueue>>,
    /// Health and readiness.
    pub health: Arc<Health>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Limits how many partitions process a batch at once (`partition_concurrency`).
    pub concurrency: Option<Arc<Semaphore>>,
    halt: watch::Sender<Option<String>>,
    dlq_retry_wait: Duration,
}

/// The pipeline halted (a fatal error, or a failed record without a DLQ): the lane stops.
#[derive(Debug)]
pub struct Halted;

impl LaneContext {
    /// A context; `halt_receiver` of the returned pair tells the poll loop to stop.
    pub fn new(
        tracker: Arc<AckTracker>,
        decoder: Decoder,
        dlq: Option<Arc<dyn DeadLetterQueue>>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        concurrency: Option<Arc<Semaphore>>,
    ) -> (Arc<Self>, watch::Receiver<Option<String>>) {
        let (halt, halt_receiver) = watch::channel(None);
        let context = LaneContext {
            tracker,
            decoder,
            dlq,
            health,
            metrics,
            concurrency,
            halt,
            dlq_retry_wait: DLQ_RETRY_WAIT,
        };
        (Arc::new(context), halt_receiver)
    }

    /// The same context with a shorter wait between DLQ attempts (tests).
    #[cfg(any(test, feature = "test-util"))]
    pub fn with_dlq_retry_wait(mut self: Arc<Self>, wait: Duration) -> Arc<Self> {
        Arc::get_mut(&mut self).expect("set before the context is shared").dlq_retry_wait = wait;
        self
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

    /// Whether the pipeline has halted.
    pub fn halted(&self) -> bool {
        self.halt.borrow().is_some()
    }

    /// A permit of this pipeline's `partition_concurrency`, not yet taken.
    pub fn permit(&self) -> WorkPermit {
        WorkPermit { semaphore: self.concurrency.clone(), held: None }
    }

    /// Sends a record to the DLQ and returns once the DLQ confirmed it, retrying as long as
    /// the DLQ is unavailable (the partition does not advance meanwhile, and gives its permit
    /// back while it waits). Without a DLQ the pipeline halts instead: a failed record is
    /// never skipped silently.
    pub async fn dead_letter(
        &self,
        record: &SourceRecord,
        failure: Failure,
        permit: &mut WorkPermit,
    ) -> Result<(), Halted> {
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
                        dlq = dlq.destination(&record.topic),
                        error = failure.message.as_str(),
                        "pipeline.dead_lettered"
                    );
                    self.metrics.counter(names::DLQ_RECORDS, &failure.stage).add(1);
                    self.health.set_dlq(Ok(()));
                    return Ok(());
                }
                Err(error) => {
                    let reason = format!(
                        "cannot write to {}: {}",
                        dlq.destination(&record.topic),
                        crate::error::chain(error.as_ref())
                    );
                    tracing::error!(error = reason.as_str(), "pipeline.dlq_write_error");
                    self.health.set_dlq(Err(reason));
                    if self.halted() {
                        return Err(Halted);
                    }
                    permit.wait(self.dlq_retry_wait).await;
                }
            }
        }
    }
}

/// A partition lane's share of `partition_concurrency`: held while the lane works on a batch,
/// given back while it waits (a backoff, an unavailable DLQ or registry) so that healthy
/// partitions go on meanwhile.
pub struct WorkPermit {
    semaphore: Option<Arc<Semaphore>>,
    held: Option<OwnedSemaphorePermit>,
}

impl WorkPermit {
    /// A permit that limits nothing (sink lanes, pipelines without a limit).
    pub fn unlimited() -> Self {
        WorkPermit { semaphore: None, held: None }
    }

    /// Takes a permit, waiting for one if all are taken.
    pub async fn acquire(&mut self) {
        if let (Some(semaphore), None) = (&self.semaphore, &self.held) {
            self.held = Some(semaphore.clone().acquire_owned().await.expect("the semaphore is never closed"));
        }
    }

    /// Gives the permit back.
    pub fn release(&mut self) {
        self.held = None;
    }

    /// Sleeps without holding the permit, then takes it again.
    pub async fn wait(&mut self, duration: Duration) {
        let held = self.held.take().is_some();
        tokio::time::sleep(duration).await;
        if held {
            self.acquire().await;
        }
    }
}
