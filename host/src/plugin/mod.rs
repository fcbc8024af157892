//! Plugin runtime: loads transforms (and, later, sinks) that implement the `cdc:plugin` WIT
//! package and runs them sandboxed in wasmtime (DESIGN §4).
//!
//! The host side sees a [`TransformPlugin`] (compiled once, shared) from which each partition lane
//! builds its own [`TransformInstance`]. Records cross the boundary packed (see `wit/types.wit`).

mod batch;
mod wasm;

pub use batch::PackedBatch;
pub use wasm::{
    PluginError, PluginLimits, PluginRuntime, PluginSpec, TransformInstance, TransformOutput, TransformPlugin,
};
