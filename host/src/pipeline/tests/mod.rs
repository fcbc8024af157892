//! Unit tests of the lanes with in-memory doubles (`crate::testing`): retries, splits, order,
//! classes, the DLQ and permits, without a broker.

mod partition_lane;
mod sink_lane;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::LaneContext;
use super::dlq::DeadLetterQueue;
use super::retry::RetrySettings;
use crate::decode::Decoder;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::source::acks::{AckTracker, PartitionKey};
use crate::testing::MemoryDlq;

const TOPIC: &str = "shop.public.t";

fn partition(number: i32) -> PartitionKey {
    (Arc::from(TOPIC), number)
}

/// Backoff short enough for tests that retry.
fn quick_retry() -> RetrySettings {
    RetrySettings {
        max_attempts: 3,
        initial_wait: Duration::from_millis(1),
        max_wait: Duration::from_millis(5),
        multiplier: 2.0,
        jitter: false,
    }
}

/// Backoff so long that a test finishing in time proves nothing waited.
fn glacial_retry() -> RetrySettings {
    RetrySettings {
        initial_wait: Duration::from_secs(600),
        max_wait: Duration::from_secs(600),
        ..quick_retry()
    }
}

struct Harness {
    context: Arc<LaneContext>,
    halt: watch::Receiver<Option<String>>,
    tracker: Arc<AckTracker>,
    dlq: Arc<MemoryDlq>,
}

impl Harness {
    fn new(participants: usize, concurrency: Option<usize>) -> Self {
        let tracker = Arc::new(AckTracker::new(participants));
        let dlq = Arc::new(MemoryDlq::default());
        let (context, halt) = LaneContext::new(
            tracker.clone(),
            Decoder::Json,
            Some(dlq.clone() as Arc<dyn DeadLetterQueue>),
            Arc::new(Health::new(["sink".to_owned()])),
            Arc::new(Metrics::default()),
            concurrency.map(|permits| Arc::new(Semaphore::new(permits))),
        );
        let context = context.with_dlq_retry_wait(Duration::from_millis(5));
        Harness { context, halt, tracker, dlq }
    }

    /// The committable position of a partition, if every participant acked something.
    fn committable(&self, number: i32) -> Option<i64> {
        let wanted = partition(number);
        self.tracker.committable(|p| *p == wanted).into_iter().map(|(_, offset)| offset).next()
    }

    fn halt_reason(&self) -> Option<String> {
        self.halt.borrow().clone()
    }
}

/// Waits until `condition` holds, for at most `limit`.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    condition()
}
