//! The sink lane: delivers one partition's batches to one sink, in order, with retries; sends
//! records that fail alone to the DLQ; acks a batch only once the sink made it durable.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::acks::PartitionKey;
use super::context::{Halted, LaneContext};
use super::dlq::Failure;
use super::lane::SinkBatch;
use super::retry::RetryPolicy;
use crate::error::ErrorClass;
use crate::ops::metrics::names;
use crate::sinks::{Sink, SinkError};

/// One sink's lane for one partition.
pub struct SinkLane {
    /// The sink's index among the pipeline's enabled sinks: its participant number for acks.
    pub participant: usize,
    /// The sink's id.
    pub sink_id: String,
    /// Which partition.
    pub partition: PartitionKey,
    /// The sink instance this lane owns.
    pub sink: Box<dyn Sink>,
    /// Backoff for transient failures.
    pub retry: RetryPolicy,
    /// Shared state.
    pub context: Arc<LaneContext>,
}

impl SinkLane {
    /// Runs until the batch channel closes or the pipeline halts.
    pub async fn run(mut self, mut batches: mpsc::UnboundedReceiver<SinkBatch>) {
        while let Some(batch) = batches.recv().await {
            if self.deliver(&batch).await.is_err() {
                return;
            }
            self.context.tracker.ack(self.participant, &self.partition, batch.next_offset);
        }
    }

    async fn deliver(&mut self, batch: &SinkBatch) -> Result<(), Halted> {
        let mut start = 0;
        let mut attempt = 0;
        while start < batch.events.len() {
            let Err(error) = self.sink.write(&batch.events[start..]).await else {
                self.context.metrics.add(
                    names::EVENTS_DELIVERED,
                    &self.sink_id,
                    (batch.events.len() - start) as u64,
                );
                break;
            };
            self.context.metrics.add(names::EVENTS_DELIVERED, &self.sink_id, error.accepted as u64);
            start += error.accepted;
            attempt = if error.accepted > 0 { 1 } else { attempt + 1 };
            match error.class {
                ErrorClass::Transient { retry_after } => {
                    self.note_transient(&error, attempt);
                    tokio::time::sleep(self.retry.wait(attempt, retry_after)).await;
                }
                ErrorClass::Record => {
                    let failure = Failure {
                        stage: self.sink_id.clone(),
                        kind: "sink.record".into(),
                        message: error.message.clone(),
                        detail: error.to_string(),
                        attempts: attempt,
                    };
                    self.context.dead_letter(&batch.records[start], failure).await?;
                    start += 1;
                    attempt = 0;
                }
                ErrorClass::Fatal => {
                    self.context.health.set_sink(&self.sink_id, Err(error.message.clone()));
                    self.context.halt(error.to_string());
                    return Err(Halted);
                }
            }
        }
        self.flush().await?;
        self.context.health.set_sink(&self.sink_id, Ok(()));
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Halted> {
        let mut attempt = 0;
        loop {
            let Err(error) = self.sink.flush().await else { return Ok(()) };
            attempt += 1;
            match error.class {
                ErrorClass::Transient { retry_after } => {
                    self.note_transient(&error, attempt);
                    tokio::time::sleep(self.retry.wait(attempt, retry_after)).await;
                }
                // A flush covers many records: none of them can be blamed alone.
                ErrorClass::Record | ErrorClass::Fatal => {
                    self.context.health.set_sink(&self.sink_id, Err(error.message.clone()));
                    self.context.halt(error.to_string());
                    return Err(Halted);
                }
            }
        }
    }

    /// Counts a retry; once the attempts are spent the sink reports unhealthy, and delivery
    /// keeps retrying: a transient failure never drops or dead-letters a record.
    fn note_transient(&self, error: &SinkError, attempt: u32) {
        self.context.metrics.add(names::SINK_RETRIES, &self.sink_id, 1);
        tracing::warn!(
            sink_id = self.sink_id.as_str(),
            attempt,
            error = error.message.as_str(),
            "pipeline.sink_write_error"
        );
        if attempt >= self.retry.max_attempts {
            self.context.health.set_sink(&self.sink_id, Err(error.message.clone()));
        }
    }
}
