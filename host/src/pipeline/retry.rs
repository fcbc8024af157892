//! Retry policy: exponential backoff with jitter for transient errors (DESIGN §3), honouring
//! a peer's `Retry-After`.

use std::time::Duration;

/// Backoff settings, from a sink's `retry` block (the platform's `retry` block by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
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

impl RetryPolicy {
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

    fn policy(jitter: bool) -> RetryPolicy {
        RetryPolicy {
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
}
