//! Plugin runtime: loads transforms (and, later, sinks) that implement the `cdc:plugin` WIT
//! package and runs them sandboxed in wasmtime (DESIGN §4).
//!
//! The host side sees a [`TransformPlugin`] or [`SinkPlugin`] (compiled once, shared) from which
//! each lane builds its own instance. Records cross the boundary packed (see `wit/types.wit`).

mod batch;
mod wasm;

pub use batch::PackedBatch;
pub use wasm::{
    Capabilities, ConfigParam, GrantedDirectory, Inspection, PluginError, PluginInfo, PluginLimits,
    PluginRuntime, PluginSpec, PluginWorld, SinkInstance, SinkPlugin, TransformInstance, TransformOutput,
    TransformPlugin, inspect,
};
