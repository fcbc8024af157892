//! Wasm sinks: a [`SinkPlugin`] is compiled and linked once; each lane instantiates its own
//! [`SinkInstance`], opened with the sink's config and rebuilt (and reopened) after a trap.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::sink::{self as bindings, Sink};
use super::engine::PluginRuntime;
use super::instance::{self, arm_deadline};
use super::state::InstanceState;
use super::{PluginError, PluginSettings};
use crate::event::ChangeEvent;

/// A sink component, compiled and linked, ready to instantiate.
#[derive(Clone)]
pub struct SinkPlugin {
    shared: Arc<Shared>,
}

struct Shared {
    spec: PluginSettings,
    pre: bindings::SinkPre<InstanceState>,
    engine: wasmtime::Engine,
}

/// One live instance of a sink, owned by one lane.
pub struct SinkInstance {
    plugin: SinkPlugin,
    live: Option<Live>,
}

struct Live {
    store: Store<InstanceState>,
    bindings: Sink,
}

impl SinkPlugin {
    /// Compiles and links a sink component.
    pub fn load(runtime: &PluginRuntime, spec: PluginSettings) -> Result<Self, PluginError> {
        let (_, pre) = runtime.link(&spec)?;
        let pre = bindings::SinkPre::new(pre).map_err(|error| PluginError::Load {
            plugin: spec.name.clone(),
            path: spec.path.display().to_string(),
            reason: format!("not a sink: {error:#}"),
        })?;
        let engine = runtime.engine().clone();
        Ok(SinkPlugin { shared: Arc::new(Shared { spec, pre, engine }) })
    }

    /// The name the pipeline gave this sink.
    pub fn name(&self) -> &str {
        &self.shared.spec.name
    }

    /// Creates an instance and opens it. Fails when the plugin refuses its config.
    pub fn instantiate(&self) -> Result<SinkInstance, PluginError> {
        let mut instance = SinkInstance { plugin: self.clone(), live: None };
        instance.ensure_live()?;
        Ok(instance)
    }
}

impl SinkInstance {
    /// Writes events in order; returns the records the plugin refused alone (by index,
    /// ascending: anything else is a protocol error of the plugin). A trap
    /// drops the instance: the next call builds and opens a fresh one, and nothing written
    /// since the last flush counts as delivered.
    pub fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<(usize, PluginError)>, PluginError> {
        let batch = instance::pack(&self.plugin.shared.spec, "write", events)?;
        let refused =
            self.call("write", |bindings, store| bindings.cdc_plugin_writer().call_write(store, &batch))?;
        let spec = &self.plugin.shared.spec;
        let refused = refused.map_err(|error| instance::returned(spec, "write", error))?;
        let mut previous = None;
        refused
            .into_iter()
            .map(|record| {
                let index = record.index as usize;
                if index >= events.len() || previous.is_some_and(|previous| index <= previous) {
                    return Err(instance::protocol(
                        spec,
                        "write",
                        format!(
                            "refused record {index} of {} is out of order, repeated or out of range",
                            events.len()
                        ),
                    ));
                }
                previous = Some(index);
                Ok((index, instance::returned(spec, "write", record.error)))
            })
            .collect()
    }

    /// Makes every accepted record durable; `checkpoint` names the position after the last one.
    pub fn flush(&mut self, checkpoint: &str) -> Result<(), PluginError> {
        let flushed =
            self.call("flush", |bindings, store| bindings.cdc_plugin_writer().call_flush(store, checkpoint))?;
        flushed.map_err(|error| instance::returned(&self.plugin.shared.spec, "flush", error))
    }

    /// The plugin's view of its own health.
    pub fn health(&mut self) -> Result<(), String> {
        match self.call("health", |bindings, store| bindings.cdc_plugin_writer().call_health(store)) {
            Ok(health) => health,
            Err(error) => Err(error.to_string()),
        }
    }

    /// Closes the instance, if one is live.
    pub fn close(&mut self) {
        if let Some(mut live) = self.live.take() {
            arm_deadline(&mut live.store, &self.plugin.shared.spec.limits);
            let _ = live.bindings.cdc_plugin_writer().call_close(&mut live.store);
        }
    }

    /// Calls an export under the deadline; a trap drops the instance.
    fn call<R>(
        &mut self,
        name: &'static str,
        call: impl FnOnce(&Sink, &mut Store<InstanceState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let limits = self.plugin.shared.spec.limits;
        let live = self.ensure_live()?;
        arm_deadline(&mut live.store, &limits);
        match call(&live.bindings, &mut live.store) {
            Ok(result) => Ok(result),
            Err(trap) => {
                self.live = None;
                Err(instance::trap(&self.plugin.shared.spec, name, &trap))
            }
        }
    }

    fn ensure_live(&mut self) -> Result<&mut Live, PluginError> {
        if self.live.is_none() {
            self.live = Some(self.build()?);
        }
        Ok(self.live.as_mut().expect("instance was just built"))
    }

    fn build(&self) -> Result<Live, PluginError> {
        let shared = &self.plugin.shared;
        let mut store = instance::new_store(&shared.engine, &shared.spec)?;
        let bindings = shared
            .pre
            .instantiate(&mut store)
            .map_err(|trap| instance::trap(&shared.spec, "instantiate", &trap))?;
        arm_deadline(&mut store, &shared.spec.limits);
        let opened = bindings
            .cdc_plugin_writer()
            .call_open(&mut store, &shared.spec.config_json)
            .map_err(|trap| instance::trap(&shared.spec, "open", &trap))?;
        opened.map_err(|error| instance::returned(&shared.spec, "open", error))?;
        Ok(Live { store, bindings })
    }
}
