//! Health and readiness (docs/architecture.md, operations): liveness is "the process made
//! progress recently": the consume loop ticks, and so does provisioning while it runs
//! ([`Health::alive_during`]), which may legitimately take minutes. Readiness needs the
//! connector running, membership of the consumer group (with or without partitions: a replica
//! beyond the partition count is ready and says so), every sink healthy and no halt.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::time::Instant;

/// How long the process may go without a tick before it counts as not alive.
pub const LIVENESS_WINDOW: Duration = Duration::from_secs(30);
/// How often work that is progress by itself (provisioning) ticks liveness.
const PROGRESS_TICK: Duration = Duration::from_secs(1);

/// Shared health state, written by the pipeline's parts and read by the HTTP server.
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last_tick: Instant,
    connector: Result<(), String>,
    /// Partitions the consumer owns, once it joined its group.
    partitions: Option<usize>,
    sinks: BTreeMap<String, Result<(), String>>,
    dlq: Result<(), String>,
    halted: Option<String>,
    stopping: bool,
}

impl Health {
    /// A state that is alive but not yet ready.
    pub fn new(sink_ids: impl IntoIterator<Item = String>) -> Self {
        Health {
            state: Mutex::new(State {
                last_tick: Instant::now(),
                connector: Err("not yet checked".into()),
                partitions: None,
                sinks: sink_ids.into_iter().map(|id| (id, Ok(()))).collect(),
                dlq: Ok(()),
                halted: None,
                stopping: false,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().expect("health lock poisoned"))
    }

    /// The process made progress.
    pub fn tick(&self) {
        self.with(|state| state.last_tick = Instant::now());
    }

    /// Runs `work`, ticking liveness while it runs: it is progress of its own (provisioning
    /// topics and the connector), however long it takes within its own timeouts.
    pub async fn alive_during<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        let mut ticker = tokio::time::interval(PROGRESS_TICK);
        loop {
            tokio::select! {
                output = &mut work => return output,
                _ = ticker.tick() => self.tick(),
            }
        }
    }

    /// The connector's state: `Ok` when it and all its tasks run.
    pub fn set_connector(&self, status: Result<(), String>) {
        self.with(|state| state.connector = status);
    }

    /// The consumer is a member of its group and owns `partitions` partitions (maybe none).
    pub fn set_partitions(&self, partitions: usize) {
        self.with(|state| state.partitions = Some(partitions));
    }

    /// A sink's health.
    pub fn set_sink(&self, sink_id: &str, status: Result<(), String>) {
        self.with(|state| {
            state.sinks.insert(sink_id.to_owned(), status);
        });
    }

    /// The DLQ's health.
    pub fn set_dlq(&self, status: Result<(), String>) {
        self.with(|state| state.dlq = status);
    }

    /// The pipeline halted for good; keeps the first reason.
    pub fn halt(&self, reason: String) {
        self.with(|state| {
            state.halted.get_or_insert(reason);
        });
    }

    /// The reason the pipeline halted, if it did.
    pub fn halted(&self) -> Option<String> {
        self.with(|state| state.halted.clone())
    }

    /// Shutdown began: readiness goes false at once.
    pub fn set_stopping(&self) {
        self.with(|state| state.stopping = true);
    }

    /// Whether the consume loop ticked within [`LIVENESS_WINDOW`].
    pub fn alive(&self) -> bool {
        self.with(|state| state.last_tick.elapsed() < LIVENESS_WINDOW)
    }

    /// Readiness and a JSON body naming each failing part.
    pub fn readiness(&self) -> (bool, Json) {
        self.with(|state| {
            let mut failing = serde_json::Map::new();
            // A halt says why; it outranks the shutdown that follows it.
            if let Some(reason) = &state.halted {
                failing.insert("pipeline".into(), json!(format!("halted: {reason}")));
            } else if state.stopping {
                failing.insert("pipeline".into(), json!("shutting down"));
            }
            if let Err(reason) = &state.connector {
                failing.insert("connector".into(), json!(reason));
            }
            let consumer = match state.partitions {
                None => {
                    failing.insert("consumer".into(), json!("joining the consumer group"));
                    json!({"member": false})
                }
                Some(0) => json!({
                    "member": true,
                    "partitions": 0,
                    "note": "a member of the group without partitions: more replicas than partitions, or a rebalance in progress",
                }),
                Some(partitions) => json!({"member": true, "partitions": partitions}),
            };
            if let Err(reason) = &state.dlq {
                failing.insert("dlq".into(), json!(reason));
            }
            for (sink_id, status) in &state.sinks {
                if let Err(reason) = status {
                    failing.insert(format!("sink:{sink_id}"), json!(reason));
                }
            }
            let ready = failing.is_empty();
            let status = if ready { "ready" } else { "not ready" };
            (ready, json!({ "status": status, "failing": failing, "consumer": consumer }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_part_is() {
        let health = Health::new(["hook".to_owned()]);
        assert!(!health.readiness().0);
        health.set_connector(Ok(()));
        assert_eq!(health.readiness().1["failing"]["consumer"], "joining the consumer group");
        health.set_partitions(3);
        assert_eq!(
            health.readiness(),
            (true, json!({"status": "ready", "failing": {}, "consumer": {"member": true, "partitions": 3}}))
        );
        health.set_sink("hook", Err("503 from endpoint".into()));
        let (ready, body) = health.readiness();
        assert!(!ready);
        assert_eq!(body["failing"]["sink:hook"], "503 from endpoint");
    }

    #[test]
    fn a_member_without_partitions_is_ready_and_says_so() {
        let health = Health::new([]);
        health.set_connector(Ok(()));
        health.set_partitions(0);
        let (ready, body) = health.readiness();
        assert!(ready, "{body}");
        assert_eq!(body["consumer"]["partitions"], 0);
        assert!(body["consumer"]["note"].as_str().unwrap().contains("more replicas than partitions"));
    }

    #[tokio::test(start_paused = true)]
    async fn provisioning_keeps_the_process_alive_however_long_it_takes() {
        let health = Health::new([]);
        let slow = health.alive_during(async {
            tokio::time::sleep(LIVENESS_WINDOW * 3).await;
            health.alive()
        });
        assert!(slow.await, "alive at the end of a provisioning three liveness windows long");
        tokio::time::sleep(LIVENESS_WINDOW + Duration::from_secs(1)).await;
        assert!(!health.alive(), "without ticks the process is not alive");
    }

    #[test]
    fn a_halt_keeps_its_first_reason() {
        let health = Health::new([]);
        health.halt("first".into());
        health.halt("second".into());
        health.set_stopping();
        assert_eq!(health.halted().as_deref(), Some("first"));
        assert_eq!(health.readiness().1["failing"]["pipeline"], "halted: first");
    }
}
