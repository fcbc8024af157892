//! {{name}}: a cdc sink plugin.
//!
//! Buffers each change event as one line of wire-form JSON and delivers the buffer on `flush`,
//! which is when the host counts the records as delivered. This template delivers to the host's
//! log; replace `deliver` with your target.
//!
//! Build: `cargo build --target wasm32-wasip2 --release`
//! (-> target/wasm32-wasip2/release/{{crate_name}}.wasm). Test: `cargo test`.

use cdc_sdk::prelude::*;

/// The open sink; one instance per pipeline lane.
pub struct Plugin {
    /// Lines written since the last flush.
    pending: Vec<String>,
    max_pending: usize,
}

impl Plugin {
    /// The lines waiting for the next flush.
    pub fn pending(&self) -> &[String] {
        &self.pending
    }

    /// Makes `lines` durable at the target. An `Err` makes the host write them again later.
    fn deliver(&mut self, lines: &[String], checkpoint: &str) -> Result<(), Error> {
        for line in lines {
            cdc_sdk::log::info(line);
        }
        cdc_sdk::log::debug(format_args!("delivered up to {checkpoint}"));
        cdc_sdk::log::counter_add("delivered", lines.len() as u64);
        Ok(())
    }
}

impl Sink for Plugin {
    fn open(config: Config) -> Result<Self, Error> {
        config.deny_unknown(&["max_pending"])?;
        Ok(Plugin { pending: Vec::new(), max_pending: config.get_or("max_pending", 10_000)? })
    }

    fn write(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        if self.pending.len() + events.len() > self.max_pending {
            let (waiting, max) = (self.pending.len(), self.max_pending);
            let message = format!("{waiting} lines wait for a flush, {} more exceed {max}", events.len());
            return Err(SinkError::Batch(Error::retryable(message)));
        }
        let mut failed = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            if event.op == Op::Truncate {
                failed.push((index, Error::poison(format!("truncate of {} is not supported", event.table))));
                continue;
            }
            self.pending.push(String::from_utf8_lossy(&event.to_wire()).into_owned());
        }
        if failed.is_empty() { Ok(()) } else { Err(SinkError::Records(failed)) }
    }

    fn flush(&mut self, checkpoint: &str) -> Result<(), Error> {
        let lines = std::mem::take(&mut self.pending);
        self.deliver(&lines, checkpoint).inspect_err(|_| self.pending = lines)
    }

    fn close(&mut self) {
        if !self.pending.is_empty() {
            cdc_sdk::log::warn(format_args!("closing with {} unflushed lines", self.pending.len()));
        }
    }

    fn describe() -> PluginInfo {
        PluginInfo::new().param(
            ConfigParam::integer("max_pending")
                .default_json("10000")
                .doc("Lines buffered between flushes before writes are refused as retryable"),
        )
    }
}

cdc_sdk::export_sink!(Plugin);
