//! The errors a plugin reports, classed the way the host handles them (WIT `error-class`).

use std::fmt;

/// How the host handles an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Try again later, with backoff: an outage, a rate limit, a timeout. Never sent to the DLQ
    /// for being transient (the host does, after its retry budget, if the record keeps failing).
    Retryable,
    /// The record itself is bad: it goes to the dead-letter queue and the rest go on.
    Poison,
    /// Nothing can go on (bad config, a broken invariant): the pipeline halts and commits nothing
    /// past this point.
    Fatal,
}

impl ErrorClass {
    /// The class's name as the WIT spells it: `retryable`, `poison` or `fatal`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Poison => "poison",
            ErrorClass::Fatal => "fatal",
        }
    }
}

/// An error a plugin reports: a class and a message for the operator.
///
/// ```
/// use cdc_sdk::{Error, ErrorClass};
///
/// let error = Error::poison("column `amount` is not a decimal");
/// assert_eq!(error.class, ErrorClass::Poison);
/// assert_eq!(error.to_string(), "poison: column `amount` is not a decimal");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// How the host handles it.
    pub class: ErrorClass,
    /// What went wrong, in one sentence.
    pub message: String,
}

impl Error {
    /// An error of the given class.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Error { class, message: message.into() }
    }

    /// A transient error: the host retries later.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Retryable, message)
    }

    /// A bad record: the host sends it to the DLQ.
    pub fn poison(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Poison, message)
    }

    /// An error nothing can go on after: the host halts the pipeline.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Fatal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class.name(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<cdc_event::BatchError> for Error {
    /// A batch that cannot be packed or split: nothing in it can be handled, so fatal.
    fn from(error: cdc_event::BatchError) -> Self {
        Error::fatal(error.to_string())
    }
}
