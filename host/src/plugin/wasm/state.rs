//! The per-instance store state: WASI with no capabilities granted, memory limits, and the host
//! imports every plugin world shares (`cdc:plugin/host`).

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::PluginLimits;

/// Data owned by one plugin instance's store.
pub(super) struct InstanceState {
    plugin: String,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
}

impl InstanceState {
    /// A state that grants nothing: no files, no env, no network, no args; stdio discarded.
    pub(super) fn new(plugin: &str, limits: &PluginLimits) -> Self {
        InstanceState {
            plugin: plugin.to_owned(),
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(64)
                .trap_on_grow_failure(true)
                .build(),
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl super::transform::bindings::cdc::plugin::host::Host for InstanceState {
    fn log(&mut self, level: super::transform::bindings::cdc::plugin::host::Level, message: String) {
        use super::transform::bindings::cdc::plugin::host::Level;
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        tracing::trace!(plugin = self.plugin.as_str(), counter = name.as_str(), delta, "plugin.counter");
    }
}

impl super::transform::bindings::cdc::plugin::types::Host for InstanceState {}
