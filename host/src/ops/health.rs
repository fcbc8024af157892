//! Health and readiness (docs/architecture.md, operations): liveness is "the consume loop ticked recently";
//! readiness needs the connector running, an assignment, every sink healthy and no halt.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

/// How long the consume loop may go without a tick before the process counts as not alive.
pub const LIVENESS_WINDOW: Duration = Duration::from_secs(30);

/// Shared health state, written by the pipeline's parts and read by the HTTP server.
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last_tick: Instant,
    connector: Result<(), String>,
    assigned: bool,
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
                assigned: false,
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

    /// The consume loop is alive.
    pub fn tick(&self) {
        self.with(|state| state.last_tick = Instant::now());
    }

    /// The connector's state: `Ok` when it and all its tasks run.
    pub fn set_connector(&self, status: Result<(), String>) {
        self.with(|state| state.connector = status);
    }

    /// Whether the consumer holds an assignment.
    pub fn set_assigned(&self, assigned: bool) {
        self.with(|state| state.assigned = assigned);
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
            if !state.assigned {
                failing.insert("consumer".into(), json!("no partitions assigned yet"));
            }
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
            (ready, json!({ "status": status, "failing": failing }))
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
        health.set_assigned(true);
        assert_eq!(health.readiness(), (true, json!({"status": "ready", "failing": {}})));
        health.set_sink("hook", Err("503 from endpoint".into()));
        let (ready, body) = health.readiness();
        assert!(!ready);
        assert_eq!(body["failing"]["sink:hook"], "503 from endpoint");
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
