//! The per-instance store state: WASI with only the capabilities the pipeline granted, memory
//! limits, and the host imports every plugin world shares (`cdc:plugin/host`).

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::PluginSpec;
use super::bindings::{host, types};

/// Data owned by one plugin instance's store.
pub(super) struct InstanceState {
    plugin: String,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
}

impl InstanceState {
    /// A state that grants only what `spec` names: the values of its env vars and its
    /// directory. No network, no args, no other files; stdio is discarded.
    pub(super) fn new(spec: &PluginSpec) -> Result<Self, String> {
        let mut wasi = WasiCtx::builder();
        for name in &spec.capabilities.env {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        if let Some(directory) = &spec.capabilities.directory {
            let perms = if directory.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
            wasi.preopened_dir(&directory.host_path, &directory.mount, perms)
                .map_err(|error| format!("cannot grant {}: {error}", directory.host_path.display()))?;
        }
        Ok(InstanceState {
            plugin: spec.name.clone(),
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(spec.limits.memory_bytes)
                .instances(64)
                .trap_on_grow_failure(true)
                .build(),
        })
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl host::Host for InstanceState {
    fn log(&mut self, level: host::Level, message: String) {
        use host::Level;
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

impl types::Host for InstanceState {}
