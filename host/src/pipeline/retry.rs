//! What happens after a failure, decided in one place: [`FailurePolicy::decide`] maps an error's
//! class, the attempt and how many records the failed call covered to retry-after-a-wait, split,
//! dead-letter or halt. Every stage (decode, transforms, sinks, flushes) asks it. Waits are
//! exponential backoff with jitter, honouring a peer's `Retry-After`.

use std::time::Duration;

use crate::config::RetryConfig;
use crate::error::ErrorClass;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try the same records again after this wait.
    Retry(Duration),
    /// Halve the records and try each half on its own, at once: the culprit is among them.
    Split,
    /// The one record failed on its own for good: send it to the DLQ and go on.
    DeadLetter,
    /// Stop the pipeline; nothing past this point is committed.
    Halt,
}

/// How a stage handles failures: its backoff and how often a record refused on its own is
/// retried before it goes to the DLQ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailurePolicy {
    /// Backoff, and the attempts after which a failing batch is split.
    pub backoff: RetrySettings,
    /// Retries of a record refused alone (a record error) before it is dead-lettered.
    pub record_retries: u32,
}

impl FailurePolicy {
    /// Whether the halves of a split start with the attempts already made: after a transient
    /// failure or a fault they do, so that a half failing the same way is split again at once,
    /// without waiting; after a record error they start afresh.
    pub fn split_keeps_attempts(class: ErrorClass) -> bool {
        matches!(class, ErrorClass::Transient { .. } | ErrorClass::Fault)
    }

    /// The verdict after failed attempt number `attempt` (1-based, counted per set of records)
    /// of a call that covered `records` records; `records` is 0 for a failure that no record
    /// can be blamed for, such as a flush.
    ///
    /// - fatal: halt;
    /// - transient: retry with backoff, never dead-letter; a batch is split once the attempts
    ///   are spent, so that records that fail alone are found;
    /// - record: a batch is split at once (no wait: halving finds the culprit in O(log n)
    ///   calls), a record alone is retried `record_retries` times, then dead-lettered; a record
    ///   error that names no record halts;
    /// - fault: retried with backoff up to the attempts, then a batch is split and a record
    ///   alone is dead-lettered; with no record to blame it keeps retrying.
    pub fn decide(&self, class: ErrorClass, attempt: u32, records: usize) -> Verdict {
        let spent = attempt >= self.backoff.max_attempts;
        match class {
            ErrorClass::Fatal => Verdict::Halt,
            ErrorClass::Transient { retry_after } => {
                if records > 1 && spent {
                    Verdict::Split
                } else {
                    Verdict::Retry(self.backoff.wait(attempt, retry_after))
                }
            }
            ErrorClass::Record => match records {
                0 => Verdict::Halt,
                1 if attempt <= self.record_retries => Verdict::Retry(self.backoff.wait(attempt, None)),
                1 => Verdict::DeadLetter,
                _ => Verdict::Split,
            },
            ErrorClass::Fault => match records {
                _ if !spent => Verdict::Retry(self.backoff.wait(attempt, None)),
                0 => Verdict::Retry(self.backoff.wait(attempt, None)),
                1 => Verdict::DeadLetter,
                _ => Verdict::Split,
            },
        }
    }
}

/// Backoff settings, from a sink's `retry` block (the platform's `retry` block by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySettings {
    /// Attempts before a failure is reported as persistent (it is still retried, never dropped).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_wait: Duration,
    /// Longest wait between attempts.
    pub max_wait: Duration,
    /// Base of the exponent: wait = initial_wait × multiplier^(attempt-1).
    pub multiplier: f64,
    /// Whether to spread waits randomly over [wait/2, wait].
    pub jitter: bool,
}

impl RetrySettings {
    /// The wait after failed attempt number `attempt` (1-based), at least the peer's hint.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial_wait.as_secs_f64() * self.multiplier.powi(exponent);
        let mut wait = base.min(self.max_wait.as_secs_f64());
        if self.jitter {
            wait *= 0.5 + 0.5 * jitter_fraction();
        }
        let wait = Duration::from_secs_f64(wait.max(0.0));
        retry_after.map_or(wait, |hint| wait.max(hint))
    }
}

impl From<&RetryConfig> for RetrySettings {
    fn from(retry: &RetryConfig) -> Self {
        RetrySettings {
            max_attempts: retry.max_attempts,
            initial_wait: retry.initial_wait,
            max_wait: retry.max_wait,
            multiplier: retry.multiplier,
            jitter: retry.jitter,
        }
    }
}

/// A cheap pseudo-random fraction in [0, 1): jitter only needs to decorrelate replicas.
fn jitter_fraction() -> f64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: bool) -> RetrySettings {
        RetrySettings {
            max_attempts: 5,
            initial_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(10),
            multiplier: 2.0,
            jitter,
        }
    }

    #[test]
    fn waits_grow_exponentially_up_to_the_cap() {
        let waits: Vec<_> = (1..=6).map(|attempt| policy(false).wait(attempt, None).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn jitter_stays_within_half_and_full_wait() {
        for _ in 0..100 {
            let wait = policy(true).wait(3, None);
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4), "{wait:?}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(policy(false).wait(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
    }

    fn failures(record_retries: u32) -> FailurePolicy {
        FailurePolicy { backoff: policy(false), record_retries }
    }

    #[test]
    fn fatal_halts_whatever_the_scope() {
        for records in [0, 1, 10] {
            assert_eq!(failures(3).decide(ErrorClass::Fatal, 1, records), Verdict::Halt);
        }
    }

    #[test]
    fn transient_never_dead_letters_and_splits_a_batch_once_attempts_are_spent() {
        let policy = failures(0);
        for attempt in 1..=20 {
            assert!(matches!(policy.decide(ErrorClass::TRANSIENT, attempt, 1), Verdict::Retry(_)));
            assert!(matches!(policy.decide(ErrorClass::TRANSIENT, attempt, 0), Verdict::Retry(_)));
        }
        assert_eq!(policy.decide(ErrorClass::TRANSIENT, 4, 8), Verdict::Retry(Duration::from_secs(8)));
        assert_eq!(policy.decide(ErrorClass::TRANSIENT, 5, 8), Verdict::Split);
        let hinted = ErrorClass::Transient { retry_after: Some(Duration::from_secs(30)) };
        assert_eq!(policy.decide(hinted, 1, 1), Verdict::Retry(Duration::from_secs(30)));
    }

    #[test]
    fn a_record_error_splits_at_once_and_dead_letters_after_its_retries() {
        let policy = failures(2);
        assert_eq!(policy.decide(ErrorClass::Record, 1, 2), Verdict::Split);
        assert_eq!(policy.decide(ErrorClass::Record, 1, 1), Verdict::Retry(Duration::from_secs(1)));
        assert_eq!(policy.decide(ErrorClass::Record, 2, 1), Verdict::Retry(Duration::from_secs(2)));
        assert_eq!(policy.decide(ErrorClass::Record, 3, 1), Verdict::DeadLetter);
        assert_eq!(failures(0).decide(ErrorClass::Record, 1, 1), Verdict::DeadLetter);
        assert_eq!(
            policy.decide(ErrorClass::Record, 1, 0),
            Verdict::Halt,
            "a record error must name a record"
        );
    }

    #[test]
    fn a_fault_is_retried_then_split_then_dead_lettered() {
        let policy = failures(0);
        assert!(matches!(policy.decide(ErrorClass::Fault, 4, 1), Verdict::Retry(_)));
        assert_eq!(policy.decide(ErrorClass::Fault, 5, 6), Verdict::Split);
        assert_eq!(policy.decide(ErrorClass::Fault, 5, 1), Verdict::DeadLetter);
        assert!(matches!(policy.decide(ErrorClass::Fault, 50, 0), Verdict::Retry(_)));
    }
}
