//! The partition lane: takes one partition's records in order, decodes them, runs the
//! transforms and hands each batch to every sink lane of the partition. Records that fail on
//! their own go to the DLQ before the batch moves on, so acks stay contiguous; every failure is
//! settled by the one failure policy ([`FailurePolicy::decide`]).

use std::sync::{Arc, LazyLock};

use tokio::sync::{Semaphore, mpsc};

use super::context::{Halted, LaneContext, WorkPermit};
use super::dlq::Failure;
use super::pending::Pending;
use super::retry::{FailurePolicy, Verdict};
use crate::decode::{self, Decoded, Decoder};
use crate::error::{Classify, chain};
use crate::event::{ChangeEvent, Position};
use crate::ops::metrics::{Counter, Metrics, names};
use crate::plugin::{PluginError, Transform, TransformOutput};
use crate::source::SourceRecord;
use crate::source::acks::PartitionAcks;

/// The fewest records a batch needs before its decoding is spread over the cores.
const PARALLEL_DECODE_MIN: usize = 256;

/// Decoding chunks running at once, across every lane: one per core. More would only queue for
/// the cores, and each would take a blocking-pool thread of its own, whose allocator heap keeps
/// the memory of the events it decoded (with 4 busy partitions, 30–40 MB of peak RSS).
static DECODE_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(*CORES)));

/// The cores this process may use, read once: on Linux the standard library reads the cgroup
/// files to tell, which is I/O a batch should not repeat.
static CORES: LazyLock<usize> = LazyLock::new(|| std::thread::available_parallelism().map_or(1, usize::from));

/// Decodes a large batch in chunks on the blocking pool, one chunk per core, so that a single
/// busy partition uses every core; `None` for each record of a small batch, and for one that
/// cannot be decoded without I/O (an Avro schema not fetched yet): [`Worker::decode`] decodes
/// those itself. Only first attempts are made here; failures are settled in order by the lane.
async fn first_attempts(
    decoder: &Decoder,
    records: &[Arc<SourceRecord>],
) -> Vec<Option<Result<Decoded, decode::Error>>> {
    let cores = *CORES;
    if cores < 2 || records.len() < PARALLEL_DECODE_MIN {
        return std::iter::repeat_with(|| None).take(records.len()).collect();
    }
    let mut chunks = Vec::with_capacity(cores);
    for chunk in records.chunks(records.len().div_ceil(cores)) {
        let slot = DECODE_SLOTS.clone().acquire_owned().await.expect("the decode slots are never closed");
        let (chunk, decoder) = (chunk.to_vec(), decoder.clone());
        let len = chunk.len();
        let decoding = tokio::task::spawn_blocking(move || {
            let decoded = chunk.iter().map(|record| decode_now(&decoder, record)).collect::<Vec<_>>();
            drop(slot);
            decoded
        });
        chunks.push((len, decoding));
    }
    let mut decoded = Vec::with_capacity(records.len());
    for (len, decoding) in chunks {
        match decoding.await {
            Ok(chunk) => decoded.extend(chunk),
            // A decoder that panicked does so again in the lane, where the panic is contained.
            Err(_) => decoded.extend(std::iter::repeat_with(|| None).take(len)),
        }
    }
    decoded
}

/// One record decoded without waiting on I/O, if it can be.
fn decode_now(decoder: &Decoder, record: &SourceRecord) -> Option<Result<Decoded, decode::Error>> {
    match &record.prepared {
        Some(prepared) => Some(prepared.decode(position(record))),
        None => decoder.decode_now(record.key.as_deref(), record.value.as_deref(), position(record)),
    }
}

/// Where a record sits: its WAL position (embedded source) or its Kafka offset.
fn position(record: &SourceRecord) -> Position {
    match record.wal {
        Some(position) => Position::Wal { topic: record.topic.clone(), position },
        None => Position::Kafka {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
        },
    }
}

/// Events bound for the sinks, with the records they came from.
#[derive(Debug, Clone)]
pub struct SinkBatch {
    /// Events in source order (shared by the sinks; the last sink lane to take them owns them).
    pub events: Arc<Vec<ChangeEvent>>,
    /// `records[i]` is the source record of `events[i]` (for the DLQ).
    pub records: Arc<Vec<Arc<SourceRecord>>>,
    /// The offset after the last source record this batch covers.
    pub next_offset: i64,
}

/// Events with the source records they came from.
type Items = Vec<(ChangeEvent, Arc<SourceRecord>)>;

/// Counters of one transform: calls, records in/out/dropped/errored, latency, traps.
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
    fn new(metrics: &Metrics, name: &str) -> Self {
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
    pub transforms: Vec<Box<dyn Transform>>,
    /// One sender per sink lane; empty when the pipeline has no enabled sink.
    pub sinks: Vec<mpsc::UnboundedSender<SinkBatch>>,
    /// The partition's positions (acked here directly when there is no sink).
    pub acks: Arc<PartitionAcks>,
    /// Backoff for decoding and transforms. A plugin's poison verdict and a record that cannot
    /// be decoded are final: they go to the DLQ without retries.
    pub retry: super::retry::RetrySettings,
    /// Most records taken into one batch.
    pub batch_size: usize,
    /// Shared state.
    pub context: Arc<LaneContext>,
}

impl PartitionLane {
    /// Runs until the record channel closes (shutdown or revoke) or the pipeline halts.
    pub async fn run(self, mut records: mpsc::UnboundedReceiver<SourceRecord>) {
        let counters: Vec<TransformCounters> = self
            .transforms
            .iter()
            .map(|transform| TransformCounters::new(&self.context.metrics, transform.name()))
            .collect();
        let mut worker = Worker { permit: self.context.permit(), counters, lane: self };
        let mut batch = Vec::with_capacity(worker.lane.batch_size);
        while records.recv_many(&mut batch, worker.lane.batch_size).await > 0 {
            let next_offset = batch.last().map_or(0, |record: &SourceRecord| record.offset + 1);
            let records: Vec<Arc<SourceRecord>> = batch.drain(..).map(Arc::new).collect();
            worker.permit.acquire().await;
            let processed = worker.process(records, next_offset).await;
            worker.permit.release();
            if processed.is_err() {
                return;
            }
        }
    }
}

/// A lane at work: its permit and counters beside it.
struct Worker {
    lane: PartitionLane,
    permit: WorkPermit,
    counters: Vec<TransformCounters>,
}

impl Worker {
    fn policy(&self) -> FailurePolicy {
        FailurePolicy { backoff: self.lane.retry, record_retries: 0 }
    }

    /// Decodes a batch and delivers it in segments: a record that cannot be decoded closes the
    /// segment before it (delivered first, so a DLQ outage holds back nothing before the
    /// record), then goes to the DLQ; the records after it form the next segment.
    async fn process(&mut self, records: Vec<Arc<SourceRecord>>, next_offset: i64) -> Result<(), Halted> {
        let first_attempts = first_attempts(&self.lane.context.decoder, &records).await;
        let mut segment = Vec::with_capacity(records.len());
        for (record, first_attempt) in records.into_iter().zip(first_attempts) {
            match self.decode(&record, first_attempt).await? {
                Ok(Decoded::Change(event)) => segment.push((event, record)),
                // Tombstones and schema changes are acknowledged with the segment, not delivered.
                Ok(_) => {}
                Err(failure) => {
                    self.deliver(std::mem::take(&mut segment), record.offset).await?;
                    self.dead_letter(&record, failure).await?;
                }
            }
        }
        self.deliver(segment, next_offset).await
    }

    /// Decodes one record, starting from `first_attempt` when [`first_attempts`] made it; `Err`
    /// with why, when it is for the DLQ. A transient failure (the schema registry is
    /// unreachable) is retried until it passes, so it never dead-letters.
    async fn decode(
        &mut self,
        record: &SourceRecord,
        mut first_attempt: Option<Result<Decoded, decode::Error>>,
    ) -> Result<Result<Decoded, Failure>, Halted> {
        let mut attempt = 0;
        loop {
            let decoded = match (first_attempt.take(), &record.prepared) {
                (Some(decoded), _) => decoded,
                (None, Some(prepared)) => prepared.decode(position(record)),
                (None, None) => {
                    let decoder = &self.lane.context.decoder;
                    decoder.decode(record.key.as_deref(), record.value.as_deref(), position(record)).await
                }
            };
            let error = match decoded {
                Ok(decoded) => return Ok(Ok(decoded)),
                Err(error) => error,
            };
            attempt += 1;
            match self.policy().decide(error.class(), attempt, 1) {
                Verdict::Retry(wait) => {
                    tracing::warn!(attempt, error = %chain(&error), "pipeline.decode_retry");
                    self.permit.wait(wait).await;
                }
                Verdict::DeadLetter | Verdict::Split => {
                    return Ok(Err(Failure {
                        stage: "decode".into(),
                        kind: "decode".into(),
                        message: error.to_string(),
                        detail: chain(&error),
                        attempts: attempt,
                    }));
                }
                Verdict::Halt => {
                    self.lane.context.halt(format!("decoding {}: {}", describe(record), chain(&error)));
                    return Err(Halted);
                }
            }
        }
    }

    /// Runs the transforms over a segment, numbers each record's outputs and hands the result
    /// to every sink lane; the batch covers the source records up to `next_offset`, delivered
    /// or not, so that sinks ack past them.
    async fn deliver(&mut self, items: Items, next_offset: i64) -> Result<(), Halted> {
        let mut items = items;
        for index in 0..self.lane.transforms.len() {
            items = self.transform(index, items).await?;
        }
        number_outputs(&mut items);
        let (events, records): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        if self.lane.sinks.is_empty() {
            self.lane.acks.ack(0, next_offset);
            return Ok(());
        }
        let batch = SinkBatch { events: events.into(), records: records.into(), next_offset };
        // Clones for all sinks but the last, which gets the batch itself: a lone sink lane then
        // owns its events.
        let copies = std::iter::repeat_n(batch, self.lane.sinks.len());
        for (sink, batch) in self.lane.sinks.iter().zip(copies) {
            if sink.send(batch).is_err() {
                // A sink lane ends early only when the pipeline halts (or its task failed).
                if !self.lane.context.halted() {
                    let reason = format!("a sink lane ended unexpectedly (batch up to offset {next_offset})");
                    self.lane.context.halt(reason);
                }
                return Err(Halted);
            }
        }
        Ok(())
    }

    /// Runs transform `index` over the items: a failed call is retried, halved or settled by
    /// the policy; a record the plugin refuses is dead-lettered (poison), held and retried
    /// (retryable) or halts the pipeline (fatal), each before anything after it moves on.
    async fn transform(&mut self, index: usize, items: Items) -> Result<Items, Halted> {
        if items.is_empty() {
            return Ok(items);
        }
        let (events, records): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let mut kept = Vec::with_capacity(events.len());
        let mut pending = Pending::new(events.len());
        while let Some(part) = pending.front() {
            let range = part.range.clone();
            let output = match self.call(index, &events[range.clone()]) {
                Ok(output) => output,
                Err(error) => {
                    let attempt = pending.failed();
                    match self.settle_call(index, &error, attempt, range.len(), &records[range.start]).await?
                    {
                        Verdict::Split => pending.split(FailurePolicy::split_keeps_attempts(error.class())),
                        Verdict::DeadLetter => pending.done(1),
                        Verdict::Retry(_) | Verdict::Halt => {}
                    }
                    continue;
                }
            };
            // Records the plugin refused alone; the first one that is not dead-lettered at once
            // is settled alone before the records after it are transformed again.
            let mut stop = None;
            for (origin, error) in &output.record_errors {
                match self.policy().decide(error.class(), 1, 1) {
                    Verdict::DeadLetter => {
                        let record = &records[range.start + origin];
                        self.dead_letter(record, self.failure(index, error, 1)).await?;
                    }
                    _ => {
                        stop = Some((*origin, error));
                        break;
                    }
                }
            }
            let handled = stop.map_or(range.len(), |(origin, _)| origin);
            let produced: Vec<_> =
                output.events.into_iter().filter(|(origin, _)| *origin < handled).collect();
            let origins_with_output = count_distinct_origins(&produced);
            let refused = output.record_errors.iter().filter(|(origin, _)| *origin < handled).count();
            self.counters[index].dropped.add(handled.saturating_sub(origins_with_output + refused) as u64);
            kept.extend(
                produced.into_iter().map(|(origin, event)| (event, records[range.start + origin].clone())),
            );
            if handled > 0 {
                pending.done(handled);
            }
            if let Some((_, error)) = stop {
                // The refused record, alone: its verdict comes from the same policy.
                pending.isolate_first();
                let attempt = pending.failed();
                if self.settle_call(index, error, attempt, 1, &records[range.start + handled]).await?
                    == Verdict::DeadLetter
                {
                    pending.done(1);
                }
            }
        }
        Ok(kept)
    }

    /// Acts on the verdict for a failed call covering `count` records starting with `first`:
    /// waits (without the permit) before a retry, dead-letters a record alone, or halts.
    /// Returns the verdict, for the caller to move on.
    async fn settle_call(
        &mut self,
        index: usize,
        error: &PluginError,
        attempt: u32,
        count: usize,
        first: &Arc<SourceRecord>,
    ) -> Result<Verdict, Halted> {
        let verdict = self.policy().decide(error.class(), attempt, count);
        match verdict {
            Verdict::Retry(wait) => {
                tracing::warn!(
                    transform = self.lane.transforms[index].name(),
                    attempt,
                    records = count,
                    error = %error,
                    "pipeline.transform_retry"
                );
                self.permit.wait(wait).await;
            }
            Verdict::Split => {
                let transform = self.lane.transforms[index].name();
                tracing::warn!(transform, records = count, error = %error, "pipeline.transform_split");
            }
            Verdict::DeadLetter => {
                let failure = self.failure(index, error, attempt);
                self.dead_letter(first, failure).await?;
            }
            Verdict::Halt => {
                self.lane.context.halt(format!("{error} (at {})", describe(first)));
                return Err(Halted);
            }
        }
        Ok(verdict)
    }

    /// One call of transform `index`, timed and counted. Wasm calls are synchronous and bounded
    /// by the plugin's deadline.
    fn call(&mut self, index: usize, events: &[ChangeEvent]) -> Result<TransformOutput, PluginError> {
        let started = std::time::Instant::now();
        let instance = &mut self.lane.transforms[index];
        let result = tokio::task::block_in_place(|| instance.transform(events));
        let counters = &self.counters[index];
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

    fn failure(&self, index: usize, error: &PluginError, attempts: u32) -> Failure {
        Failure {
            stage: format!("transform:{}", self.lane.transforms[index].name()),
            kind: format!("plugin.{}", error.class().name()),
            message: error.to_string(),
            detail: chain(error),
            attempts,
        }
    }

    async fn dead_letter(&mut self, record: &SourceRecord, failure: Failure) -> Result<(), Halted> {
        self.lane.context.dead_letter(record, failure, &mut self.permit).await
    }
}

/// Numbers the events each source record yielded, 0, 1, …, so that every event has its own
/// idempotency id (a record's events are adjacent: transforms keep source order).
fn number_outputs(items: &mut Items) {
    let mut previous: Option<&Arc<SourceRecord>> = None;
    let mut next_index = 0;
    for (event, record) in items.iter_mut() {
        if !previous.is_some_and(|previous| Arc::ptr_eq(previous, record)) {
            next_index = 0;
        }
        event.output_index = next_index;
        next_index += 1;
        previous = Some(record);
    }
}

fn count_distinct_origins(produced: &[(usize, ChangeEvent)]) -> usize {
    let mut origins: Vec<usize> = produced.iter().map(|(origin, _)| *origin).collect();
    origins.dedup();
    origins.len()
}

/// `topic[partition]@offset`, for messages.
fn describe(record: &SourceRecord) -> String {
    format!("{}[{}]@{}", record.topic, record.partition, record.offset)
}
