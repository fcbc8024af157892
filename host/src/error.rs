//! Classes of error (docs/architecture.md, delivery): the class, not the type, decides how the pipeline
//! handles it.

use std::time::Duration;

/// How the pipeline handles an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again with backoff; `retry_after` is the peer's hint (`Retry-After`), if it gave one.
    Transient {
        /// The earliest time worth retrying, as the peer asked.
        retry_after: Option<Duration>,
    },
    /// The record itself cannot be handled: it goes to the DLQ, the rest go on.
    Record,
    /// A plugin failed abnormally (trap, deadline, memory): the record may be the cause, or the
    /// plugin's state. Retried with backoff like a transient error; once the attempts are spent,
    /// a batch is split and a record that still fails alone goes to the DLQ.
    Fault,
    /// Nothing can go on: halt, report it in `/readyz`, commit nothing past it.
    Fatal,
}

impl ErrorClass {
    /// A transient class without a hint.
    pub const TRANSIENT: ErrorClass = ErrorClass::Transient { retry_after: None };

    /// A short lowercase name for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorClass::Transient { .. } => "transient",
            ErrorClass::Record => "record",
            ErrorClass::Fault => "fault",
            ErrorClass::Fatal => "fatal",
        }
    }
}

/// An error that knows its class; implemented by every error the pipeline sees.
pub trait Classify: std::error::Error {
    /// The class that decides handling.
    fn class(&self) -> ErrorClass;
}

/// An error of any type, kept as the cause of another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Formats an error with its chain of causes, `outer: inner: root`, for logs and reports.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
