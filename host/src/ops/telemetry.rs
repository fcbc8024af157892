//! Logging setup: `tracing` to stderr, human or JSON, level from `CDC_LOG` (or `RUST_LOG`).
//! Logging never fails the process: a log line that cannot be written (stderr closed, a pipe
//! whose reader is gone) is dropped.

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; `default_level` applies when no env filter is set.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = std::env::var("CDC_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| format!("{default_level},rdkafka=warn,wasmtime=warn,cranelift=warn"));
    // Colours only on a terminal: files and log collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| LossyStderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Standard error that reports every write as done. tracing-subscriber reports a failed write
/// with `eprintln!`, which panics when stderr is closed: a log line is not worth the process.
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes a line to stderr for the person at the terminal, ignoring a closed stderr (unlike
/// `eprintln!`, which panics then).
pub fn report(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
