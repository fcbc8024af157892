//! The one wasmtime engine of the process: epoch interruption for call deadlines, the pooling
//! allocator for cheap instantiation, and a ticker thread that advances the epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::transform::Transform;
use super::cache::ComponentCache;
use super::state::InstanceState;
use super::{PluginError, PluginSettings};

/// How often the epoch advances; call deadlines are counted in these ticks.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The largest linear memory any plugin may be configured with.
const MAX_PLUGIN_MEMORY_BYTES: usize = 4 << 30;

/// The plugin runtime: owns the engine and its epoch ticker.
pub struct PluginRuntime {
    engine: Engine,
    cache: Option<ComponentCache>,
    ticker: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl PluginRuntime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new() -> Result<Self, PluginError> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling.max_memory_size(MAX_PLUGIN_MEMORY_BYTES);
        let mut config = Config::new();
        config.epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config).map_err(|error| PluginError::Load {
            plugin: "<runtime>".into(),
            path: String::new(),
            reason: format!("cannot build the wasm engine: {error:#}"),
        })?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("cdc-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|error| PluginError::Load {
                    plugin: "<runtime>".into(),
                    path: String::new(),
                    reason: format!("cannot start the epoch ticker: {error}"),
                })?
        };
        let cache = ComponentCache::open(&engine);
        Ok(PluginRuntime { engine, cache, ticker: Some((stop, ticker)) })
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a component and links what both plugin worlds import: WASI (with only what the
    /// instance state grants), wasi:http (requests only to the granted hosts) and
    /// `cdc:plugin/host`. The result is shared by all instances.
    pub(super) fn link(
        &self,
        spec: &PluginSettings,
    ) -> Result<(Component, InstancePre<InstanceState>), PluginError> {
        let component = self.compile(spec)?;
        let link_error = |error: wasmtime::Error| PluginError::Load {
            plugin: spec.name.clone(),
            path: spec.path.display().to_string(),
            reason: format!("{error:#}"),
        };
        let mut linker = Linker::<InstanceState>::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).map_err(link_error)?;
        // The sink world reuses the transform world's `host` interface: one set of imports serves both.
        Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(link_error)?;
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;
        Ok((component, pre))
    }

    /// Reads, verifies (sha256 pin) and compiles a component.
    pub(super) fn compile(&self, spec: &PluginSettings) -> Result<Component, PluginError> {
        let load_error = |reason: String| PluginError::Load {
            plugin: spec.name.clone(),
            path: spec.path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(&spec.path).map_err(|error| load_error(error.to_string()))?;
        let actual = sha256_hex(&bytes);
        if let Some(expected) = &spec.sha256
            && !actual.eq_ignore_ascii_case(expected)
        {
            return Err(load_error(format!("sha256 is {actual}, the pipeline pins {expected}")));
        }
        let compiled = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, &bytes, &actual),
            None => Component::new(&self.engine, &bytes),
        };
        compiled.map_err(|error| load_error(format!("{error:#}")))
    }
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// The lowercase hex sha256 of a file's bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}
