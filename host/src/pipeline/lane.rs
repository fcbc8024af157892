//! The partition lane: takes one partition's records in order, decodes them, runs the
//! transforms and hands each batch to every sink lane of the partition. Records that fail on
//! their own go to the DLQ before the batch moves on, so acks stay contiguous.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::acks::PartitionAcks;
use super::context::{Halted, LaneContext};
use super::dlq::Failure;
use super::retry::RetryPolicy;
use crate::decode::{self, Decoded};
use crate::error::{Classify, ErrorClass, chain};
use crate::event::{ChangeEvent, Position};
use crate::ops::metrics::{Counter, names};
use crate::plugin::{PluginError, TransformInstance, TransformOutput};
use crate::source::SourceRecord;

/// Events bound for the sinks, with the records they came from.
#[derive(Debug, Clone)]
pub struct SinkBatch {
    /// Events in source order.
    pub events: Arc<[ChangeEvent]>,
    /// `records[i]` is the source record of `events[i]` (for the DLQ).
    pub records: Arc<[Arc<SourceRecord>]>,
    /// The offset after the last source record this batch covers.
    pub next_offset: i64,
}

/// Counters of one transform (DESIGN §8: calls, records in/out/dropped/errored, latency, traps).
struct TransformCounters {
    calls: Counter,
    call_micros: Counter,
    records_in: Counter,
    records_out: Counter,
    dropped: Counter,
    errored: Counter,
    traps: Counter,
}

impl TransformCounters {
    fn new(metrics: &crate::ops::metrics::Metrics, name: &str) -> Self {
        let counter = |metric| metrics.counter(metric, name);
        TransformCounters {
            calls: counter(names::PLUGIN_CALLS),
            call_micros: counter(names::PLUGIN_CALL_MICROS),
            records_in: counter(names::PLUGIN_RECORDS_IN),
            records_out: counter(names::PLUGIN_RECORDS_OUT),
            dropped: counter(names::TRANSFORM_DROPPED),
            errored: counter(names::PLUGIN_RECORDS_ERRORED),
            traps: counter(names::PLUGIN_TRAPS),
        }
    }
}

/// One partition's lane.
pub struct PartitionLane {
    /// Transforms, in pipeline order, each with its own instance.
    pub transforms: Vec<TransformInstance>,
    /// One sender per sink lane; empty when the pipeline has no enabled sink.
    pub sinks: Vec<mpsc::UnboundedSender<SinkBatch>>,
    /// The partition's positions (acked here directly when there is no sink).
    pub acks: Arc<PartitionAcks>,
    /// Backoff for transforms that fail transiently.
    pub retry: RetryPolicy,
    /// Most records taken into one batch.
    pub batch_size: usize,
    /// Shared state.
    pub context: Arc<LaneContext>,
}

impl PartitionLane {
    /// Runs until the record channel closes (shutdown or revoke) or the pipeline halts.
    pub async fn run(mut self, mut records: mpsc::UnboundedReceiver<SourceRecord>) {
        let counters: Vec<TransformCounters> = self
            .transforms
            .iter()
            .map(|transform| TransformCounters::new(&self.context.metrics, transform.name()))
            .collect();
        let mut batch = Vec::with_capacity(self.batch_size);
        while records.recv_many(&mut batch, self.batch_size).await > 0 {
            let next_offset = batch.last().map_or(0, |record: &SourceRecord| record.offset + 1);
            let records: Vec<Arc<SourceRecord>> = batch.drain(..).map(Arc::new).collect();
            let context = self.context.clone();
            let _permit = match &context.concurrency {
                Some(semaphore) => Some(semaphore.acquire().await.expect("the semaphore is never closed")),
                None => None,
            };
            if self.process(records, next_offset, &counters).await.is_err() {
                return;
            }
        }
    }

    /// Decodes a batch and delivers it in segments: a record that cannot be decoded closes the
    /// segment before it (delivered first, so a DLQ outage holds back nothing before the
    /// record), then goes to the DLQ; the records after it form the next segment.
    async fn process(
        &mut self,
        records: Vec<Arc<SourceRecord>>,
        next_offset: i64,
        counters: &[TransformCounters],
    ) -> Result<(), Halted> {
        let mut segment = Vec::with_capacity(records.len());
        for record in records {
            match decode_record(&self.context, &self.retry, &record).await {
                Ok(Decoded::Change(event)) => segment.push((event, record)),
                // Tombstones and schema changes are acknowledged with the segment, not delivered.
                Ok(_) => {}
                Err(error) => {
                    self.deliver(std::mem::take(&mut segment), record.offset, counters).await?;
                    let failure = Failure {
                        stage: "decode".into(),
                        kind: "decode".into(),
                        message: error.to_string(),
                        detail: chain(&error),
                        attempts: 1,
                    };
                    self.context.dead_letter(&record, failure).await?;
                }
            }
        }
        self.deliver(segment, next_offset, counters).await
    }

    /// Runs the transforms over a segment and hands it to every sink lane; the batch covers the
    /// source records up to `next_offset`, delivered or not, so that sinks ack past them.
    async fn deliver(
        &mut self,
        items: Vec<(ChangeEvent, Arc<SourceRecord>)>,
        next_offset: i64,
        counters: &[TransformCounters],
    ) -> Result<(), Halted> {
        let mut items = items;
        for (index, counters) in counters.iter().enumerate() {
            items = self.transform(index, items, counters).await?;
        }
        let (events, records): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        if self.sinks.is_empty() {
            self.acks.ack(0, next_offset);
            return Ok(());
        }
        let batch = SinkBatch { events: events.into(), records: records.into(), next_offset };
        for sink in &self.sinks {
            // A closed sink lane has halted the pipeline; its batch is simply never acked.
            let _ = sink.send(batch.clone());
        }
        Ok(())
    }

    async fn transform(
        &mut self,
        index: usize,
        items: Vec<(ChangeEvent, Arc<SourceRecord>)>,
        counters: &TransformCounters,
    ) -> Result<Vec<(ChangeEvent, Arc<SourceRecord>)>, Halted> {
        if items.is_empty() {
            return Ok(items);
        }
        let (events, records): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let mut attempt = 0;
        let output = loop {
            match self.call(index, &events, counters) {
                Ok(output) => break output,
                Err(error) => match error.class() {
                    ErrorClass::Transient { retry_after } => {
                        attempt += 1;
                        if attempt >= self.retry.max_attempts {
                            // The batch keeps failing: find the records that fail alone.
                            return self.transform_one_by_one(index, events, records, counters).await;
                        }
                        tracing::warn!(attempt, error = %error, "pipeline.transform_retry");
                        tokio::time::sleep(self.retry.wait(attempt, retry_after)).await;
                    }
                    ErrorClass::Record => {
                        return self.transform_one_by_one(index, events, records, counters).await;
                    }
                    ErrorClass::Fatal => {
                        self.context.halt(error.to_string());
                        return Err(Halted);
                    }
                },
            }
        };
        let mut kept_origins: Vec<usize> = output.events.iter().map(|(origin, _)| *origin).collect();
        kept_origins.dedup();
        let dropped = events.len().saturating_sub(kept_origins.len() + output.record_errors.len());
        counters.dropped.add(dropped as u64);
        for (origin, error) in &output.record_errors {
            self.dead_letter_transform(index, &records[*origin], error, attempt + 1).await?;
        }
        Ok(output.events.into_iter().map(|(origin, event)| (event, records[origin].clone())).collect())
    }

    /// Runs the transform on each event alone, so that only the records that fail alone go to
    /// the DLQ: a trap or a poison verdict dead-letters the record; a retryable verdict from the
    /// plugin holds the partition and retries, since a transient failure never dead-letters.
    async fn transform_one_by_one(
        &mut self,
        index: usize,
        events: Vec<ChangeEvent>,
        records: Vec<Arc<SourceRecord>>,
        counters: &TransformCounters,
    ) -> Result<Vec<(ChangeEvent, Arc<SourceRecord>)>, Halted> {
        let mut kept = Vec::with_capacity(events.len());
        for (event, record) in events.into_iter().zip(records) {
            let mut attempt = 0;
            loop {
                match self.call(index, std::slice::from_ref(&event), counters) {
                    Ok(output) => {
                        for (_, error) in &output.record_errors {
                            self.dead_letter_transform(index, &record, error, attempt + 1).await?;
                        }
                        kept.extend(output.events.into_iter().map(|(_, event)| (event, record.clone())));
                    }
                    Err(error) if error.class() == ErrorClass::Fatal => {
                        self.context.halt(error.to_string());
                        return Err(Halted);
                    }
                    Err(
                        error @ PluginError::Returned { class: ErrorClass::Transient { retry_after }, .. },
                    ) => {
                        attempt += 1;
                        tracing::warn!(attempt, error = %error, "pipeline.transform_retry");
                        tokio::time::sleep(self.retry.wait(attempt, retry_after)).await;
                        continue;
                    }
                    Err(error) => {
                        let attempts = self.retry.max_attempts.max(attempt + 1);
                        self.dead_letter_transform(index, &record, &error, attempts).await?;
                    }
                }
                break;
            }
        }
        Ok(kept)
    }

    /// One call of transform `index`, timed and counted. Wasm calls are synchronous and bounded
    /// by the plugin's deadline.
    fn call(
        &mut self,
        index: usize,
        events: &[ChangeEvent],
        counters: &TransformCounters,
    ) -> Result<TransformOutput, PluginError> {
        let started = std::time::Instant::now();
        let instance = &mut self.transforms[index];
        let result = tokio::task::block_in_place(|| instance.transform(events));
        counters.calls.add(1);
        counters.call_micros.add(started.elapsed().as_micros() as u64);
        counters.records_in.add(events.len() as u64);
        match &result {
            Ok(output) => {
                counters.records_out.add(output.events.len() as u64);
                counters.errored.add(output.record_errors.len() as u64);
            }
            Err(PluginError::Trap { .. }) => counters.traps.add(1),
            Err(_) => {}
        }
        result
    }

    async fn dead_letter_transform(
        &mut self,
        index: usize,
        record: &SourceRecord,
        error: &PluginError,
        attempts: u32,
    ) -> Result<(), Halted> {
        let failure = Failure {
            stage: format!("transform:{}", self.transforms[index].name()),
            kind: format!("plugin.{}", error.class().name()),
            message: error.to_string(),
            detail: chain(error),
            attempts,
        };
        self.context.dead_letter(record, failure).await
    }
}

/// Decodes one record; a transient failure (the schema registry is unreachable) is retried
/// until it passes, so it never sends a record to the DLQ.
async fn decode_record(
    context: &LaneContext,
    retry: &RetryPolicy,
    record: &SourceRecord,
) -> Result<Decoded, decode::Error> {
    let mut attempt = 0;
    loop {
        let position = Position::Kafka {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
        };
        match context.decoder.decode(record.key.as_deref(), record.value.as_deref(), position).await {
            Err(error) if error.is_transient() => {
                attempt += 1;
                tracing::warn!(attempt, error = %chain(&error), "pipeline.decode_retry");
                tokio::time::sleep(retry.wait(attempt, None)).await;
            }
            result => return result,
        }
    }
}
