//! The sink lane: delivers one partition's batches to one sink, in order, with retries; sends
//! records that fail alone to the DLQ; acks a batch only once the sink made it durable.
//!
//! A batch that keeps failing transiently is split after the retry policy's attempts: from then
//! on its events go one at a time, so that a record that fails on its own is found, retried
//! `dlq.max_retries` times and dead-lettered, while the others are delivered. A transient
//! failure alone never drops or dead-letters anything: the lane keeps retrying and the
//! partition holds. A flush that fails transiently gets the batch written again, since the
//! sink may have lost what it buffered.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::SinkSpec;
use super::acks::PartitionAcks;
use super::context::{Halted, LaneContext};
use super::dlq::Failure;
use super::lane::SinkBatch;
use super::retry::RetryPolicy;
use crate::error::ErrorClass;
use crate::event::ChangeEvent;
use crate::ops::metrics::{Counter, names};
use crate::sinks::{Refused, Sink, SinkError};
use crate::source::SourceRecord;

/// One sink's lane for one partition.
pub struct SinkLane {
    participant: usize,
    sink_id: String,
    sink: Box<dyn Sink>,
    acks: Arc<PartitionAcks>,
    retry: RetryPolicy,
    record_retries: u32,
    delivered: Counter,
    retries: Counter,
    context: Arc<LaneContext>,
}

impl SinkLane {
    /// A lane for sink number `participant` of the pipeline.
    pub fn new(
        participant: usize,
        spec: &SinkSpec,
        acks: Arc<PartitionAcks>,
        record_retries: u32,
        context: Arc<LaneContext>,
    ) -> Self {
        let sink_id = spec.factory.sink_id().to_owned();
        SinkLane {
            participant,
            sink: spec.factory.build(),
            acks,
            retry: spec.retry,
            record_retries,
            delivered: context.metrics.counter(names::EVENTS_DELIVERED, &sink_id),
            retries: context.metrics.counter(names::SINK_RETRIES, &sink_id),
            sink_id,
            context,
        }
    }

    /// Runs until the batch channel closes or the pipeline halts.
    pub async fn run(mut self, mut batches: mpsc::UnboundedReceiver<SinkBatch>) {
        while let Some(batch) = batches.recv().await {
            if self.deliver(&batch).await.is_err() {
                return;
            }
            self.acks.ack(self.participant, batch.next_offset);
        }
    }

    /// Delivers a batch: writes it, then flushes. A flush that fails transiently may have lost
    /// what the sink buffered, so the batch is written again (less what went to the DLQ).
    async fn deliver(&mut self, batch: &SinkBatch) -> Result<(), Halted> {
        let mut events = batch.events.to_vec();
        let mut records = batch.records.to_vec();
        let mut attempt = 0;
        loop {
            let dead = self.write_all(&events, &records).await?;
            if !dead.is_empty() {
                let keep = |index: &usize| !dead.contains(index);
                events = events.into_iter().enumerate().filter(|(i, _)| keep(i)).map(|(_, e)| e).collect();
                records = records.into_iter().enumerate().filter(|(i, _)| keep(i)).map(|(_, r)| r).collect();
            }
            let Err(error) = self.sink.flush().await else { break };
            attempt += 1;
            match error.class {
                ErrorClass::Transient { retry_after } => {
                    self.note_failure(&error, attempt);
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
        self.context.health.set_sink(&self.sink_id, Ok(()));
        Ok(())
    }

    /// Writes every event, retrying and splitting as needed; returns the indices of the events
    /// that went to the DLQ.
    async fn write_all(
        &mut self,
        events: &[ChangeEvent],
        records: &[Arc<SourceRecord>],
    ) -> Result<Vec<usize>, Halted> {
        let mut dead = Vec::new();
        let mut start = 0;
        // Failed attempts at the current window, and whether the batch is split into single events.
        let mut attempt = 0;
        let mut split = false;
        while start < events.len() {
            let end = if split { start + 1 } else { events.len() };
            let error = match self.sink.write(&events[start..end]).await {
                Ok(refused) => {
                    self.delivered.add((end - start - refused.len()) as u64);
                    for Refused { index, error } in refused {
                        if self.settle_alone(&events[start + index], &records[start + index], error).await? {
                            dead.push(start + index);
                        }
                    }
                    start = end;
                    attempt = 0;
                    continue;
                }
                Err(error) => error,
            };
            self.delivered.add(error.accepted as u64);
            if error.accepted > 0 {
                start += error.accepted;
                attempt = 0;
            }
            attempt += 1;
            match error.class {
                ErrorClass::Transient { retry_after } => {
                    self.note_failure(&error, attempt);
                    if attempt >= self.retry.max_attempts && end - start > 1 && !split {
                        tracing::warn!(
                            sink_id = self.sink_id.as_str(),
                            events = end - start,
                            "pipeline.batch_split"
                        );
                        split = true;
                        attempt = 0;
                        continue;
                    }
                    tokio::time::sleep(self.retry.wait(attempt, retry_after)).await;
                }
                ErrorClass::Record | ErrorClass::Fatal => {
                    if self.settle_alone(&events[start], &records[start], error).await? {
                        dead.push(start);
                    }
                    start += 1;
                    attempt = 0;
                }
            }
        }
        Ok(dead)
    }

    /// Settles an event the sink refused alone: retried while the refusal is transient, up to
    /// `dlq.max_retries` times while it is a record error, then dead-lettered. Returns whether
    /// it went to the DLQ.
    async fn settle_alone(
        &mut self,
        event: &ChangeEvent,
        record: &SourceRecord,
        mut error: SinkError,
    ) -> Result<bool, Halted> {
        let mut attempt = 1;
        loop {
            match error.class {
                ErrorClass::Fatal => {
                    self.context.health.set_sink(&self.sink_id, Err(error.message.clone()));
                    self.context.halt(error.to_string());
                    return Err(Halted);
                }
                ErrorClass::Record if attempt > self.record_retries => {
                    let failure = Failure {
                        stage: self.sink_id.clone(),
                        kind: "sink.record".into(),
                        message: error.message.clone(),
                        detail: error.to_string(),
                        attempts: attempt,
                    };
                    self.context.dead_letter(record, failure).await?;
                    return Ok(true);
                }
                ErrorClass::Record | ErrorClass::Transient { .. } => {
                    self.note_failure(&error, attempt);
                    let retry_after = match error.class {
                        ErrorClass::Transient { retry_after } => retry_after,
                        _ => None,
                    };
                    tokio::time::sleep(self.retry.wait(attempt, retry_after)).await;
                }
            }
            error = match self.sink.write(std::slice::from_ref(event)).await {
                Ok(refused) => match refused.into_iter().next() {
                    None => {
                        self.delivered.add(1);
                        return Ok(false);
                    }
                    Some(refused) => refused.error,
                },
                Err(error) => error,
            };
            attempt += 1;
        }
    }

    /// Counts a retry; once the policy's attempts are spent the sink reports unhealthy on
    /// `/readyz` while delivery goes on retrying.
    fn note_failure(&self, error: &SinkError, attempt: u32) {
        self.retries.add(1);
        tracing::warn!(
            sink_id = self.sink_id.as_str(),
            attempt,
            class = error.class.name(),
            error = error.message.as_str(),
            "pipeline.sink_write_error"
        );
        if attempt >= self.retry.max_attempts {
            self.context.health.set_sink(&self.sink_id, Err(error.message.clone()));
        }
    }
}
