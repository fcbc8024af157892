//! The wasmtime side of the plugin runtime: one engine, components compiled once, one store per
//! instance with memory capped and every call under an epoch deadline.

mod bindings;
mod cache;
mod engine;
mod inspect;
mod instance;
mod sink;
mod state;
mod transform;

use std::time::Duration;

pub use engine::PluginRuntime;
pub use inspect::{ConfigParam, Inspection, PluginInfo, PluginWorld, inspect};
pub use sink::{SinkInstance, SinkPlugin};
pub use transform::{TransformInstance, TransformOutput, TransformPlugin};

use crate::error::{Classify, ErrorClass};

/// Limits that apply to one plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Largest linear memory the instance may grow to.
    pub memory_bytes: usize,
    /// Longest one call may run before it is interrupted.
    pub call_timeout: Duration,
    /// Largest output one call may return.
    pub max_output_bytes: usize,
}

impl Default for PluginLimits {
    /// The limits a pipeline gets when it sets none (`config::defaults`).
    fn default() -> Self {
        use crate::config::defaults as d;
        PluginLimits {
            memory_bytes: d::PLUGIN_MEMORY_MB as usize * 1024 * 1024,
            call_timeout: Duration::from_millis(d::PLUGIN_CALL_TIMEOUT_MS),
            max_output_bytes: usize::try_from(d::PLUGIN_MAX_OUTPUT_BYTES).unwrap_or(usize::MAX),
        }
    }
}

/// What the host needs to load a plugin.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// The name the pipeline gives the plugin (used in logs, metrics and errors).
    pub name: String,
    /// Path of the `.wasm` component.
    pub path: std::path::PathBuf,
    /// Expected sha256 of the file, as lowercase hex, when the pipeline pins it.
    pub sha256: Option<String>,
    /// The plugin's own config, as JSON text.
    pub config_json: String,
    /// Resource limits.
    pub limits: PluginLimits,
    /// What the plugin may reach beyond its sandbox; nothing by default.
    pub capabilities: Capabilities,
}

impl PluginSettings {
    /// The settings of the plugin a pipeline names `name`, from its `plugin:` block.
    pub fn from_config(name: &str, plugin: &crate::config::PluginConfig) -> Result<Self, serde_json::Error> {
        let directory = plugin.directory.as_ref().map(|directory| GrantedDirectory {
            host_path: directory.path.clone(),
            mount: directory.mount.clone(),
            read_only: directory.read_only,
        });
        Ok(PluginSettings {
            name: name.to_owned(),
            path: plugin.path.clone(),
            sha256: plugin.sha256.clone(),
            config_json: serde_json::to_string(&plugin.config)?,
            limits: PluginLimits {
                memory_bytes: usize::try_from(plugin.limits.memory_bytes()).unwrap_or(usize::MAX),
                call_timeout: plugin.limits.call_timeout,
                max_output_bytes: usize::try_from(plugin.limits.max_output_bytes).unwrap_or(usize::MAX),
            },
            capabilities: Capabilities {
                env: plugin.env.clone(),
                directory,
                allowed_hosts: plugin.allowed_hosts.clone(),
            },
        })
    }
}

/// Capabilities granted to a plugin by the pipeline. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Host environment variables the plugin may read (their values at instantiation).
    pub env: Vec<String>,
    /// A host directory the plugin may use.
    pub directory: Option<GrantedDirectory>,
    /// Hosts the plugin may send HTTP requests to (wasi:http), as `host` (any port) or
    /// `host:port`. Empty: every request is denied.
    pub allowed_hosts: Vec<String>,
}

/// A host directory granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedDirectory {
    /// The directory on the host.
    pub host_path: std::path::PathBuf,
    /// Where the plugin sees it.
    pub mount: String,
    /// Whether the plugin may only read it.
    pub read_only: bool,
}

/// A failure of a plugin, classed for the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The component could not be read, verified, compiled or linked.
    #[error("plugin `{plugin}`: cannot load {path}: {reason}")]
    Load {
        /// Plugin name.
        plugin: String,
        /// Component path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The instance trapped, ran out of its deadline or memory: a fault of the plugin.
    #[error("plugin `{plugin}` trapped in `{call}`: {reason}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The export that was called.
        call: &'static str,
        /// The trap, e.g. "deadline exceeded" or "out of memory".
        reason: String,
    },
    /// The plugin returned an error of its own.
    #[error("plugin `{plugin}` failed in `{call}` ({}): {message}", class.name())]
    Returned {
        /// Plugin name.
        plugin: String,
        /// The export that was called.
        call: &'static str,
        /// The class the plugin gave.
        class: ErrorClass,
        /// The plugin's message.
        message: String,
    },
    /// One call's output was larger than the plugin may return: the batch is split, and a
    /// record whose output alone is too large goes to the DLQ.
    #[error("plugin `{plugin}`: output of {bytes} bytes in `{call}` exceeds the limit of {limit}")]
    OutputTooLarge {
        /// Plugin name.
        plugin: String,
        /// The export that was called.
        call: &'static str,
        /// Size of the output.
        bytes: usize,
        /// The plugin's `max_output_bytes`.
        limit: usize,
    },
    /// The events of one call do not fit in a packed batch: the batch is split, and a record
    /// that alone does not fit goes to the DLQ.
    #[error("plugin `{plugin}`: cannot pack the input of `{call}`: {reason}")]
    InputTooLarge {
        /// Plugin name.
        plugin: String,
        /// The export that was called.
        call: &'static str,
        /// Why it does not fit.
        reason: String,
    },
    /// The plugin broke the protocol (bad origins or indices, unreadable records).
    #[error("plugin `{plugin}` broke the protocol in `{call}`: {reason}")]
    Protocol {
        /// Plugin name.
        plugin: String,
        /// The export that was called.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl Classify for PluginError {
    fn class(&self) -> ErrorClass {
        match self {
            PluginError::Load { .. } => ErrorClass::Fatal,
            // A trap may come from one record (a panic on bad input) or from the plugin's state:
            // the instance is rebuilt and the batch retried, then split down to the record.
            PluginError::Trap { .. } => ErrorClass::Fault,
            PluginError::Returned { class, .. } => *class,
            PluginError::OutputTooLarge { .. } | PluginError::InputTooLarge { .. } => ErrorClass::Record,
            PluginError::Protocol { .. } => ErrorClass::Fatal,
        }
    }
}
