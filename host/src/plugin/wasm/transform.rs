//! Wasm transforms: a [`TransformPlugin`] is compiled and linked once; each lane instantiates
//! its own [`TransformInstance`], which is rebuilt after a trap.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::transform::{self as bindings, Transform};
use super::bindings::types;
use super::engine::PluginRuntime;
use super::instance::{self, arm_deadline};
use super::state::InstanceState;
use super::{PluginError, PluginSettings};
use crate::event::{self, ChangeEvent};

use bindings::exports::cdc::plugin::transformer;

/// A transform component, compiled and linked, ready to instantiate.
#[derive(Clone)]
pub struct TransformPlugin {
    shared: Arc<Shared>,
}

struct Shared {
    spec: PluginSettings,
    pre: bindings::TransformPre<InstanceState>,
    engine: wasmtime::Engine,
}

/// What one call of a transform produced.
#[derive(Debug, Default)]
pub struct TransformOutput {
    /// Output events with the index of the input event each came from, in order.
    pub events: Vec<(usize, ChangeEvent)>,
    /// Input records the plugin refused, with the plugin's class and message.
    pub record_errors: Vec<(usize, PluginError)>,
}

/// One live instance of a transform, owned by one lane.
pub struct TransformInstance {
    plugin: TransformPlugin,
    live: Option<Live>,
}

struct Live {
    store: Store<InstanceState>,
    bindings: Transform,
}

impl TransformPlugin {
    /// Compiles and links a transform component.
    pub fn load(runtime: &PluginRuntime, spec: PluginSettings) -> Result<Self, PluginError> {
        let (_, pre) = runtime.link(&spec)?;
        let pre = bindings::TransformPre::new(pre).map_err(|error| PluginError::Load {
            plugin: spec.name.clone(),
            path: spec.path.display().to_string(),
            reason: format!("not a transform: {error:#}"),
        })?;
        let engine = runtime.engine().clone();
        Ok(TransformPlugin { shared: Arc::new(Shared { spec, pre, engine }) })
    }

    /// The name the pipeline gave this transform.
    pub fn name(&self) -> &str {
        &self.shared.spec.name
    }

    /// Creates an instance and configures it. Fails when the plugin refuses its config.
    pub fn instantiate(&self) -> Result<TransformInstance, PluginError> {
        let mut instance = TransformInstance { plugin: self.clone(), live: None };
        instance.ensure_live()?;
        Ok(instance)
    }
}

impl TransformInstance {
    /// The name the pipeline gave this transform.
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// Runs the transform over a batch of events.
    ///
    /// A trap, deadline or memory fault drops the instance; the next call builds a fresh one.
    pub fn transform(&mut self, events: &[ChangeEvent]) -> Result<TransformOutput, PluginError> {
        let call = "transform";
        let batch = instance::pack(&self.plugin.shared.spec, call, events)?;
        let limits = self.plugin.shared.spec.limits;
        let live = self.ensure_live()?;
        arm_deadline(&mut live.store, &limits);
        let result = live.bindings.cdc_plugin_transformer().call_transform(&mut live.store, &batch);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(trap) => {
                self.live = None;
                return Err(self.trap(call, &trap));
            }
        };
        let transformed = outcome.map_err(|error| self.returned(call, error))?;
        self.read_output(events, transformed)
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
        let bindings = shared.pre.instantiate(&mut store).map_err(|trap| self.trap("instantiate", &trap))?;
        arm_deadline(&mut store, &shared.spec.limits);
        let configured = bindings
            .cdc_plugin_transformer()
            .call_configure(&mut store, &shared.spec.config_json)
            .map_err(|trap| self.trap("configure", &trap))?;
        configured.map_err(|error| self.returned("configure", error))?;
        Ok(Live { store, bindings })
    }

    fn read_output(
        &self,
        events: &[ChangeEvent],
        transformed: transformer::Transformed,
    ) -> Result<TransformOutput, PluginError> {
        let call = "transform";
        let records =
            cdc_event::PackedBatch { data: transformed.records.data, ends: transformed.records.ends };
        let limit = self.plugin.shared.spec.limits.max_output_bytes;
        if records.data.len() > limit {
            let plugin = self.plugin.name().to_owned();
            return Err(PluginError::OutputTooLarge { plugin, call, bytes: records.data.len(), limit });
        }
        if records.len() != transformed.origins.len() {
            return Err(self.protocol(
                call,
                format!("{} records but {} origins", records.len(), transformed.origins.len()),
            ));
        }
        let mut output = TransformOutput::default();
        let mut previous_origin = 0;
        for (index, origin) in transformed.origins.iter().enumerate() {
            let origin = *origin as usize;
            let Some(source_event) = events.get(origin).filter(|_| origin >= previous_origin) else {
                return Err(self
                    .protocol(call, format!("origin {origin} of record {index} is out of order or range")));
            };
            previous_origin = origin;
            let bytes = records
                .record(index)
                .ok_or_else(|| self.protocol(call, format!("record {index} ends outside the buffer")))?;
            let event = event::from_wire(bytes, source_event)
                .map_err(|error| self.protocol(call, format!("record {index}: {error}")))?;
            output.events.push((origin, event));
        }
        let mut previous_index = None;
        for record_error in transformed.errors {
            let index = record_error.index as usize;
            if index >= events.len() || previous_index.is_some_and(|previous| index <= previous) {
                return Err(self.protocol(
                    call,
                    format!(
                        "error for record {index} of {} is out of order, repeated or out of range",
                        events.len()
                    ),
                ));
            }
            previous_index = Some(index);
            output.record_errors.push((index, self.returned(call, record_error.error)));
        }
        Ok(output)
    }

    fn trap(&self, call: &'static str, trap: &wasmtime::Error) -> PluginError {
        instance::trap(&self.plugin.shared.spec, call, trap)
    }

    fn returned(&self, call: &'static str, error: types::PluginError) -> PluginError {
        instance::returned(&self.plugin.shared.spec, call, error)
    }

    fn protocol(&self, call: &'static str, reason: String) -> PluginError {
        instance::protocol(&self.plugin.shared.spec, call, reason)
    }
}
