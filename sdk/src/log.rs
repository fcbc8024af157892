//! The host's `log` and `counter-add` imports. In wasm they go to the host, which tags each line
//! with the plugin's name; natively (in tests) lines go to stderr and both are recorded for
//! [`crate::testing::take_logs`] and [`crate::testing::counter`].
//!
//! ```
//! use cdc_sdk::log;
//!
//! let masked = 3;
//! log::info(format_args!("masked {masked} columns"));
//! log::counter_add("masked_columns", masked);
//! ```

use std::fmt::Display;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes a line to the host's log at `level`.
pub fn log(level: Level, message: impl Display) {
    imp::log(level, &message.to_string());
}

/// Writes a `trace` line.
pub fn trace(message: impl Display) {
    log(Level::Trace, message);
}

/// Writes a `debug` line.
pub fn debug(message: impl Display) {
    log(Level::Debug, message);
}

/// Writes an `info` line.
pub fn info(message: impl Display) {
    log(Level::Info, message);
}

/// Writes a `warn` line.
pub fn warn(message: impl Display) {
    log(Level::Warn, message);
}

/// Writes an `error` line.
pub fn error(message: impl Display) {
    log(Level::Error, message);
}

/// Adds `delta` to the plugin's counter `name`, which the host exports as a metric.
pub fn counter_add(name: &str, delta: u64) {
    imp::counter_add(name, delta);
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::glue::wasm::host;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }

    pub fn counter_add(name: &str, delta: u64) {
        host::counter_add(name, delta);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::Level;

    thread_local! {
        pub(crate) static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
        pub(crate) static COUNTERS: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub fn log(level: Level, message: &str) {
        eprintln!("[{level:?}] {message}");
        LOGS.with_borrow_mut(|logs| logs.push((level, message.to_owned())));
    }

    pub fn counter_add(name: &str, delta: u64) {
        COUNTERS.with_borrow_mut(|counters| *counters.entry(name.to_owned()).or_default() += delta);
    }
}
