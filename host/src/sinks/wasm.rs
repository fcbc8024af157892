//! The wasm sink adapter: a `.wasm` component of the `sink` world behind the same [`Sink`]
//! contract as the native sinks. Each lane gets its own instance; calls run under the plugin's
//! deadline, and a trap is a fault after which the instance is rebuilt.
//!
//! The sink world's `write` refuses records by index after writing the others; the `Sink`
//! contract stops at the first refused event. So a refusal is reported at its index, and the
//! events after it, which the plugin wrote already, are written again after it is settled:
//! nothing of a key lands before an earlier change of it.

use futures::future::BoxFuture;

use crate::config::PluginConfig;
use crate::error::{Classify, ErrorClass};
use crate::event::ChangeEvent;
use crate::plugin::{PluginError, PluginRuntime, PluginSettings, SinkInstance, SinkPlugin};
use crate::sinks::{Sink, SinkError, SinkFactory};

/// Builds one wasm sink instance per lane.
pub struct WasmSinkFactory {
    sink_id: String,
    plugin: SinkPlugin,
}

impl WasmSinkFactory {
    /// A factory for a loaded sink plugin.
    pub fn new(sink_id: &str, plugin: SinkPlugin) -> Self {
        WasmSinkFactory { sink_id: sink_id.to_owned(), plugin }
    }

    /// Loads the sink plugin of `config` and opens (and closes) one instance, so that a plugin
    /// refusing its config fails the start.
    pub fn load(sink_id: &str, config: &PluginConfig, runtime: &PluginRuntime) -> anyhow::Result<Self> {
        let plugin = SinkPlugin::load(runtime, PluginSettings::from_config(sink_id, config)?)?;
        // Opening may do blocking WASI I/O (a granted directory).
        tokio::task::block_in_place(|| plugin.instantiate().map(|mut instance| instance.close()))?;
        tracing::info!(sink_id, "plugin.loaded");
        Ok(Self::new(sink_id, plugin))
    }
}

impl SinkFactory for WasmSinkFactory {
    fn sink_id(&self) -> &str {
        &self.sink_id
    }

    fn build(&self) -> Box<dyn Sink> {
        Box::new(WasmSink {
            sink_id: self.sink_id.clone(),
            plugin: self.plugin.clone(),
            instance: None,
            checkpoint: None,
            lost_writes: false,
        })
    }
}

/// A wasm sink of one lane: instantiated (and opened) on first use.
struct WasmSink {
    sink_id: String,
    plugin: SinkPlugin,
    instance: Option<SinkInstance>,
    /// The idempotency id of the last event written since the last flush.
    checkpoint: Option<String>,
    /// A trap dropped an instance that held unflushed writes: the next flush must fail so that
    /// the pipeline writes them again.
    lost_writes: bool,
}

impl WasmSink {
    /// Notes a failed call: after a trap the instance is gone, and with it what it had not
    /// flushed.
    fn failed(&mut self, error: PluginError) -> SinkError {
        if matches!(error, PluginError::Trap { .. }) {
            self.instance = None;
            self.lost_writes |= self.checkpoint.take().is_some();
        }
        SinkError::batch(&self.sink_id, error.class(), error)
    }

    /// Runs `call` on the instance, instantiated (and opened) on first use. Wasm calls are
    /// synchronous, bounded by the plugin's deadline, and may block on WASI file I/O: they run
    /// where blocking is allowed.
    fn call<R>(
        &mut self,
        call: impl FnOnce(&mut SinkInstance) -> Result<R, PluginError>,
    ) -> Result<R, PluginError> {
        let (plugin, slot) = (&self.plugin, &mut self.instance);
        tokio::task::block_in_place(|| {
            if slot.is_none() {
                *slot = Some(plugin.instantiate()?);
            }
            call(slot.as_mut().expect("instance was just set"))
        })
    }
}

impl Sink for WasmSink {
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let refused = self.call(|instance| instance.write(events)).map_err(|error| self.failed(error))?;
            let first_refused = refused.into_iter().next();
            let accepted = first_refused.as_ref().map_or(events.len(), |(index, _)| *index);
            if let Some(last) = events[..accepted].last() {
                self.checkpoint = Some(last.idempotency_id());
            }
            match first_refused {
                None => Ok(()),
                Some((index, error)) => Err(SinkError::event(&self.sink_id, index, error.class(), error)),
            }
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if std::mem::take(&mut self.lost_writes) {
                let message = "the plugin trapped with unflushed writes; they are written again";
                return Err(SinkError::batch(&self.sink_id, ErrorClass::TRANSIENT, message));
            }
            let Some(checkpoint) = self.checkpoint.clone() else { return Ok(()) };
            self.call(|instance| instance.flush(&checkpoint)).map_err(|error| self.failed(error))?;
            self.checkpoint = None;
            Ok(())
        })
    }

    fn open(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move { self.call(|_| Ok(())).map_err(|error| self.failed(error)) })
    }

    fn health(&mut self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match &mut self.instance {
                // Asking may run the plugin: under its deadline, where blocking is allowed.
                Some(instance) => tokio::task::block_in_place(|| instance.health()),
                None => Err("no live instance (the last one trapped)".to_owned()),
            }
        })
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(mut instance) = self.instance.take() {
                // Closing runs under the plugin's deadline and may do blocking WASI I/O.
                tokio::task::block_in_place(|| instance.close());
            }
        })
    }
}
