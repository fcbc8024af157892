//! The sink lane: delivers one partition's batches to one sink, in order; settles what fails
//! through the one failure policy ([`FailurePolicy::decide`]); acks a batch only once the sink
//! made it durable.
//!
//! A write that fails is retried after a wait, or halved to find the event at fault (a record
//! error costs O(log n) writes and no waits). An event the sink names is set apart and settled
//! (retried, then dead-lettered) before anything after it is written, so that no later change
//! of a key lands before it. A transient failure alone never drops or dead-letters anything:
//! the lane keeps retrying and the partition holds. A flush that fails transiently gets the
//! batch written again, since the sink may have lost what it buffered.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::SinkSettings;
use super::context::{Halted, LaneContext, WorkPermit};
use super::dlq::Failure;
use super::lane::SinkBatch;
use super::pending::Pending;
use super::retry::{FailurePolicy, Verdict};
use crate::error::chain;
use crate::event::ChangeEvent;
use crate::ops::metrics::{Counter, names};
use crate::sinks::{Batching, Receipt, Sink, SinkError};
use crate::source::SourceRecord;
use crate::source::acks::PartitionAcks;

/// Batches gathered into one delivery.
struct Gathered {
    events: Vec<ChangeEvent>,
    records: Vec<Arc<SourceRecord>>,
    next_offset: i64,
}

/// The next delivery: `held` (a batch that did not fit the last one) or the next batch, then
/// what queued behind it, up to `max_events`, waiting up to `linger` for more. `None` once the
/// channel is closed and empty. A batch this lane holds alone is taken without copying.
async fn gather(
    batches: &mut mpsc::UnboundedReceiver<SinkBatch>,
    held: &mut Option<SinkBatch>,
    max_events: usize,
    linger: Duration,
) -> Option<Gathered> {
    let first = match held.take() {
        Some(batch) => batch,
        None => batches.recv().await?,
    };
    let mut gathered = Gathered {
        events: Arc::unwrap_or_clone(first.events),
        records: Arc::unwrap_or_clone(first.records),
        next_offset: first.next_offset,
    };
    let deadline = tokio::time::Instant::now() + linger;
    while gathered.events.len() < max_events {
        let batch = match batches.try_recv() {
            Ok(batch) => batch,
            Err(_) if linger.is_zero() => break,
            // Closed (what is gathered is still delivered) or waited long enough: deliver.
            Err(_) => match tokio::time::timeout_at(deadline, batches.recv()).await {
                Ok(Some(batch)) => batch,
                Ok(None) | Err(_) => break,
            },
        };
        if gathered.events.len() + batch.events.len() > max_events {
            *held = Some(batch);
            break;
        }
        gathered.events.extend(Arc::unwrap_or_clone(batch.events));
        gathered.records.extend(Arc::unwrap_or_clone(batch.records));
        gathered.next_offset = batch.next_offset;
    }
    Some(gathered)
}

/// A delivery sent with [`Sink::submit`], not yet known to be durable.
struct InFlight {
    receipt: Receipt,
    gathered: Gathered,
}

/// One sink's lane for one partition.
pub struct SinkLane {
    participant: usize,
    sink_id: String,
    sink: Box<dyn Sink>,
    batching: Batching,
    acks: Arc<PartitionAcks>,
    policy: FailurePolicy,
    delivered: Counter,
    retries: Counter,
    context: Arc<LaneContext>,
}

impl SinkLane {
    /// A lane for sink number `participant` of the pipeline.
    pub fn new(
        participant: usize,
        spec: &SinkSettings,
        acks: Arc<PartitionAcks>,
        record_retries: u32,
        context: Arc<LaneContext>,
    ) -> Self {
        let sink_id = spec.factory.sink_id().to_owned();
        SinkLane {
            participant,
            sink: spec.factory.build(),
            batching: spec.factory.batching(),
            acks,
            policy: FailurePolicy { backoff: spec.retry, record_retries },
            delivered: context.metrics.counter(names::EVENTS_DELIVERED, &sink_id),
            retries: context.metrics.counter(names::SINK_RETRIES, &sink_id),
            sink_id,
            context,
        }
    }

    /// Opens the sink, runs until the batch channel closes or the pipeline halts, then closes
    /// the sink. Batches that queued while the sink was busy are delivered together, up to
    /// `max_events` events (or the sink's own [`Batching::max_events`], if larger): one write
    /// and one flush (one transaction, one request) for what a slow sink fell behind on,
    /// instead of one each. A sink that asks for it ([`Batching::linger`]) gets a moment for
    /// more events to arrive before a write that is not full.
    ///
    /// A sink that overlaps deliveries ([`Sink::submit`]) gets the next one while the last is
    /// still being made durable; the lane acks each once its receipt says it is, in order.
    pub async fn run(mut self, mut batches: mpsc::UnboundedReceiver<SinkBatch>, max_events: usize) {
        if self.open().await.is_err() {
            self.sink.close().await;
            return;
        }
        let Batching { max_events: sink_max, linger } = self.batching;
        let max_events = max_events.max(sink_max);
        let mut held = None;
        let mut in_flight: Option<InFlight> = None;
        let _: Result<(), Halted> = async {
            loop {
                // Nothing queued: wait for the next batch or for what is in flight, whichever
                // comes first, so that a delivery is neither left unacked while the lane waits
                // nor waited for while the next one could be sent.
                if held.is_none()
                    && batches.is_empty()
                    && let Some(flight) = &mut in_flight
                {
                    tokio::select! {
                        outcome = &mut flight.receipt => {
                            let flight = in_flight.take().expect("matched above");
                            self.settled(flight.gathered, outcome).await?;
                        }
                        // When the channel closed, the gather below says so.
                        batch = batches.recv() => held = batch,
                    }
                }
                let Some(gathered) = gather(&mut batches, &mut held, max_events, linger).await else {
                    return self.settle(in_flight.take()).await;
                };
                match self.sink.submit(&gathered.events).await {
                    Some(receipt) => {
                        let previous = in_flight.replace(InFlight { receipt, gathered });
                        self.settle(previous).await?;
                    }
                    None => {
                        self.settle(in_flight.take()).await?;
                        self.deliver(gathered.events, gathered.records).await?;
                        self.acks.ack(self.participant, gathered.next_offset);
                    }
                }
            }
        }
        .await;
        self.sink.close().await;
    }

    /// Waits for a delivery sent with [`Sink::submit`], then settles it ([`SinkLane::settled`]).
    async fn settle(&mut self, in_flight: Option<InFlight>) -> Result<(), Halted> {
        let Some(InFlight { receipt, gathered }) = in_flight else { return Ok(()) };
        let outcome = receipt.await;
        self.settled(gathered, outcome).await
    }

    /// Acks a delivery sent with [`Sink::submit`] once its receipt resolved. When it failed
    /// (and with it everything sent after it), it is first delivered again by write and flush,
    /// where each failure is settled by the policy.
    async fn settled(&mut self, gathered: Gathered, outcome: Result<(), SinkError>) -> Result<(), Halted> {
        match outcome {
            Ok(()) => {
                self.delivered.add(gathered.events.len() as u64);
                self.context.health.set_sink(&self.sink_id, Ok(()));
            }
            Err(error) => {
                tracing::warn!(
                    sink_id = self.sink_id.as_str(),
                    events = gathered.events.len(),
                    class = error.class.name(),
                    error = %chain(&error),
                    "pipeline.overlapped_delivery_failed"
                );
                self.deliver(gathered.events, gathered.records).await?;
            }
        }
        self.acks.ack(self.participant, gathered.next_offset);
        Ok(())
    }

    /// Opens the sink, retrying by the policy like a flush.
    async fn open(&mut self) -> Result<(), Halted> {
        let mut attempt = 0;
        while let Err(error) = self.sink.open().await {
            attempt += 1;
            self.settle_unblamed(&error, attempt).await?;
        }
        Ok(())
    }

    /// Settles a failure that no event can be blamed for (open, flush): waits before the
    /// next attempt, or halts.
    async fn settle_unblamed(&mut self, error: &SinkError, attempt: u32) -> Result<(), Halted> {
        match self.policy.decide(error.class, attempt, 0) {
            Verdict::Retry(wait) => {
                self.note_failure(error, attempt).await;
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Verdict::Halt | Verdict::Split | Verdict::DeadLetter => Err(self.halt(error)),
        }
    }

    /// Delivers a batch: writes it, then flushes. A flush that fails transiently may have lost
    /// what the sink buffered, so the batch is written again (less what went to the DLQ).
    async fn deliver(
        &mut self,
        mut events: Vec<ChangeEvent>,
        mut records: Vec<Arc<SourceRecord>>,
    ) -> Result<(), Halted> {
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
            // A flush covers many records: none of them can be blamed alone.
            self.settle_unblamed(&error, attempt).await?;
        }
        self.context.health.set_sink(&self.sink_id, Ok(()));
        Ok(())
    }

    /// Writes every event, settling failures by the policy; returns the indices of the events
    /// that went to the DLQ.
    async fn write_all(
        &mut self,
        events: &[ChangeEvent],
        records: &[Arc<SourceRecord>],
    ) -> Result<Vec<usize>, Halted> {
        let mut dead = Vec::new();
        let mut pending = Pending::new(events.len());
        while let Some(part) = pending.front() {
            let range = part.range.clone();
            let error = match self.sink.write(&events[range.clone()]).await {
                Ok(()) => {
                    self.delivered.add(range.len() as u64);
                    pending.done(range.len());
                    continue;
                }
                Err(error) => error,
            };
            let accepted = error.accepted.min(range.len());
            if accepted > 0 {
                self.delivered.add(accepted as u64);
                pending.done(accepted);
            }
            if accepted == range.len() {
                continue;
            }
            if error.names_event {
                pending.isolate_first();
            }
            let attempt = pending.failed();
            let part = pending.front().expect("the failed range is still pending").range.clone();
            match self.policy.decide(error.class, attempt, part.len()) {
                Verdict::Retry(wait) => {
                    self.note_failure(&error, attempt).await;
                    tokio::time::sleep(wait).await;
                }
                Verdict::Split => {
                    tracing::warn!(
                        sink_id = self.sink_id.as_str(),
                        events = part.len(),
                        class = error.class.name(),
                        error = %chain(&error),
                        "pipeline.batch_split"
                    );
                    pending.split(FailurePolicy::split_keeps_attempts(error.class));
                }
                Verdict::DeadLetter => {
                    let failure = Failure {
                        stage: self.sink_id.clone(),
                        kind: format!("sink.{}", error.class.name()),
                        message: error.source.to_string(),
                        detail: chain(&error),
                        attempts: attempt,
                    };
                    self.context
                        .dead_letter(&records[part.start], failure, &mut WorkPermit::unlimited())
                        .await?;
                    dead.push(part.start);
                    pending.done(1);
                }
                Verdict::Halt => return Err(self.halt(&error)),
            }
        }
        Ok(dead)
    }

    fn halt(&self, error: &SinkError) -> Halted {
        self.context.health.set_sink(&self.sink_id, Err(chain(error.source.as_ref())));
        self.context.halt(chain(error));
        Halted
    }

    /// Counts a retry; once the policy's attempts are spent the sink reports unhealthy on
    /// `/readyz`, with its own view of its health, while delivery goes on retrying.
    async fn note_failure(&mut self, error: &SinkError, attempt: u32) {
        self.retries.add(1);
        tracing::warn!(
            sink_id = self.sink_id.as_str(),
            attempt,
            class = error.class.name(),
            error = %chain(error.source.as_ref()),
            "pipeline.sink_write_error"
        );
        if attempt >= self.policy.backoff.max_attempts {
            let mut reason = chain(error.source.as_ref());
            if let Err(health) = self.sink.health().await {
                reason = format!("{reason} (the sink says: {health})");
            }
            self.context.health.set_sink(&self.sink_id, Err(reason));
        }
    }
}
