//! What every plugin instance shares, whatever its world: a store with the plugin's limits and
//! capabilities, call deadlines, and the classification of traps and returned errors.

use wasmtime::{Engine, Store};

use super::bindings::types;
use super::engine::EPOCH_TICK;
use super::state::InstanceState;
use super::{PluginError, PluginLimits, PluginSettings};
use crate::error::ErrorClass;
use crate::event::{self, ChangeEvent};

/// A fresh store for one instance of `spec`, with a deadline far enough away for instantiation.
pub(super) fn new_store(engine: &Engine, spec: &PluginSettings) -> Result<Store<InstanceState>, PluginError> {
    let state = InstanceState::new(spec).map_err(|reason| PluginError::Load {
        plugin: spec.name.clone(),
        path: spec.path.display().to_string(),
        reason,
    })?;
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    // A short deadline set before instantiation would interrupt the instantiation itself.
    store.set_epoch_deadline(u64::MAX / 2);
    Ok(store)
}

/// Sets the store's deadline to the plugin's call timeout, in epoch ticks (at least one).
pub(super) fn arm_deadline(store: &mut Store<InstanceState>, limits: &PluginLimits) {
    let ticks = limits.call_timeout.as_nanos() / EPOCH_TICK.as_nanos();
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
}

/// A trap, deadline or memory fault of a call: a fault of the plugin, described in the trap's
/// own words, without the wasm backtrace that would flood logs and DLQ headers.
pub(super) fn trap(spec: &PluginSettings, call: &'static str, trap: &wasmtime::Error) -> PluginError {
    let reason = match trap.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!("deadline of {:?} exceeded", spec.limits.call_timeout),
        Some(code) => code.to_string(),
        None => {
            let root = trap.root_cause().to_string();
            if root.contains("growing memory") {
                format!("out of memory: {root} (limit {} bytes)", spec.limits.memory_bytes)
            } else {
                root
            }
        }
    };
    PluginError::Trap { plugin: spec.name.clone(), call, reason }
}

/// An error the plugin returned, with the class it gave.
pub(super) fn returned(spec: &PluginSettings, call: &'static str, error: types::PluginError) -> PluginError {
    PluginError::Returned {
        plugin: spec.name.clone(),
        call,
        class: class(error.class),
        message: error.message,
    }
}

/// A broken promise of the protocol (bad offsets, output too large, unreadable records).
pub(super) fn protocol(spec: &PluginSettings, call: &'static str, reason: String) -> PluginError {
    PluginError::Protocol { plugin: spec.name.clone(), call, reason }
}

/// Packs the events of one call, or says why they do not fit.
pub(super) fn pack(
    spec: &PluginSettings,
    call: &'static str,
    events: &[ChangeEvent],
) -> Result<types::Batch, PluginError> {
    let packed = event::pack(events).map_err(|error| PluginError::InputTooLarge {
        plugin: spec.name.clone(),
        call,
        reason: error.to_string(),
    })?;
    Ok(types::Batch { data: packed.data, ends: packed.ends })
}

/// The host's class for a WIT error class.
pub(super) fn class(class: types::ErrorClass) -> ErrorClass {
    match class {
        types::ErrorClass::Retryable => ErrorClass::TRANSIENT,
        types::ErrorClass::Poison => ErrorClass::Record,
        types::ErrorClass::Fatal => ErrorClass::Fatal,
    }
}
