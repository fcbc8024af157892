//! Overlapped deliveries: each one runs in its own transaction on a task of its own, so that
//! the lane reduces and builds the next delivery while the database runs this one (delivery
//! after delivery, the database had nothing to run about a third of the time; overlapped, the
//! bench writes about 10% more rows/s through Kafka). Deliveries run one after another, in the
//! order sent, on the lane's connection; one starts only once the one before committed, so
//! that a failure fails everything sent after it, none of it committed. While they run, the
//! lane sends nothing of its own on the connection (see `Prepare::CachedOnly`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;
use tokio_postgres::Client;

use super::connection::classify;
use super::describe;
use super::statement::Step;
use crate::error::ErrorClass;
use crate::sinks::{Receipt, SinkError};

/// The deliveries of one connection running in the background.
#[derive(Default)]
pub(super) struct Overlap {
    /// Tells whether the last delivery sent committed.
    last: Option<oneshot::Receiver<bool>>,
    /// Set by the first delivery that fails.
    failed: Arc<AtomicBool>,
}

impl Overlap {
    /// Whether a delivery failed: its connection's state (an open transaction, prepared
    /// statements, what was read through it) is then not to be trusted.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Runs `steps` in a transaction of their own once the delivery sent before committed.
    pub fn send(&mut self, sink_id: &str, client: Arc<Client>, steps: Vec<Step>) -> Receipt {
        let (committed, next_waits) = oneshot::channel();
        let previous = self.last.replace(next_waits);
        let failed = self.failed.clone();
        let sink_id: Arc<str> = Arc::from(sink_id);
        let task_sink_id = sink_id.clone();
        let delivery = tokio::spawn(async move {
            let sink_id = task_sink_id;
            // A delivery that panicked drops its sender: it did not commit.
            let previous_committed = match previous {
                Some(previous) => previous.await.unwrap_or(false),
                None => true,
            };
            let result = if previous_committed {
                run(&client, &steps).await.map_err(|error| {
                    SinkError::batch(
                        &sink_id,
                        classify(&error),
                        format!("overlapped delivery: {}", describe(&error)),
                    )
                })
            } else {
                let reason = "not written: a delivery sent before it failed";
                Err(SinkError::batch(&sink_id, ErrorClass::Transient { retry_after: None }, reason))
            };
            if result.is_err() {
                failed.store(true, Ordering::Release);
            }
            let _ = committed.send(result.is_ok());
            result
        });
        Box::pin(async move {
            delivery.await.unwrap_or_else(|panic| {
                let reason = format!("overlapped delivery: {panic}");
                Err(SinkError::batch(&sink_id, ErrorClass::Fatal, reason))
            })
        })
    }
}

/// Runs `steps` in a transaction: all sent at once, then `COMMIT` once every one succeeded,
/// else `ROLLBACK`. A step that fails before it is sent (an encoding error) thus never lets
/// the transaction commit without it.
async fn run(client: &Client, steps: &[Step]) -> Result<(), tokio_postgres::Error> {
    let sent = futures::future::try_join(client.batch_execute("BEGIN"), Step::run_together(steps, client));
    match sent.await {
        Ok(_) => client.batch_execute("COMMIT").await,
        Err(error) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}
