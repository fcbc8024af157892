//! Plugin runtime: loads transforms and sinks that implement the `cdc:plugin` WIT package and
//! runs them sandboxed in wasmtime (docs/architecture.md, plugins).
//!
//! The host side sees a [`TransformPlugin`] or [`SinkPlugin`] (compiled once, shared) from which
//! each lane builds its own instance. Records cross the boundary packed (see `wit/types.wit`).

mod wasm;

pub use cdc_event::PackedBatch;
pub use wasm::{
    Capabilities, ConfigParam, GrantedDirectory, Inspection, PluginError, PluginInfo, PluginLimits,
    PluginRuntime, PluginSettings, PluginWorld, SinkInstance, SinkPlugin, TransformInstance, TransformOutput,
    TransformPlugin, inspect,
};

use crate::event::ChangeEvent;

/// A transform as a partition lane drives it: a wasm [`TransformInstance`], or a native one in
/// tests.
pub trait Transform: Send {
    /// The name the pipeline gave it.
    fn name(&self) -> &str;

    /// Runs the transform over a batch of events.
    fn transform(&mut self, events: &[ChangeEvent]) -> Result<TransformOutput, PluginError>;
}

impl Transform for TransformInstance {
    fn name(&self) -> &str {
        TransformInstance::name(self)
    }

    fn transform(&mut self, events: &[ChangeEvent]) -> Result<TransformOutput, PluginError> {
        TransformInstance::transform(self, events)
    }
}
