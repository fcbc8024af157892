//! The records of a batch still to handle, as ranges in source order. A range that fails is
//! retried, halved to find the record at fault, or has its first record set apart to be settled
//! before anything after it; every range counts its own failed attempts.

use std::collections::VecDeque;
use std::ops::Range;

/// Ranges of a batch not yet handled, first to handle first.
#[derive(Debug)]
pub struct Pending {
    parts: VecDeque<Part>,
}

/// A range of records and the failed attempts made at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Indices of the records, in the batch.
    pub range: Range<usize>,
    /// Failed attempts at exactly this range so far.
    pub attempt: u32,
}

impl Pending {
    /// All `len` records of a batch, as one range.
    pub fn new(len: usize) -> Self {
        let parts =
            if len == 0 { VecDeque::new() } else { VecDeque::from([Part { range: 0..len, attempt: 0 }]) };
        Pending { parts }
    }

    /// The range to handle next.
    pub fn front(&self) -> Option<&Part> {
        self.parts.front()
    }

    /// The first `count` records of the front range are handled: progress starts its
    /// attempts afresh.
    pub fn done(&mut self, count: usize) {
        let Some(front) = self.parts.front_mut() else { return };
        front.range.start = (front.range.start + count).min(front.range.end);
        front.attempt = 0;
        if front.range.is_empty() {
            self.parts.pop_front();
        }
    }

    /// Counts a failed attempt at the front range; returns its number (1-based).
    pub fn failed(&mut self) -> u32 {
        let front = self.parts.front_mut().expect("a failure of a pending range");
        front.attempt += 1;
        front.attempt
    }

    /// Halves the front range. With `keep_attempts` each half starts with the attempts already
    /// made, so that a half failing the same way is split again at once, without waiting.
    pub fn split(&mut self, keep_attempts: bool) {
        let Some(front) = self.parts.pop_front() else { return };
        let middle = front.range.start + front.range.len() / 2;
        let attempt = if keep_attempts { front.attempt } else { 0 };
        self.parts.push_front(Part { range: middle..front.range.end, attempt });
        self.parts.push_front(Part { range: front.range.start..middle, attempt });
    }

    /// Sets the first record of the front range apart, as a range of its own that keeps the
    /// attempts made: it is settled before the records after it are handled.
    pub fn isolate_first(&mut self) {
        let Some(front) = self.parts.front_mut() else { return };
        if front.range.len() <= 1 {
            return;
        }
        let first = front.range.start;
        let rest = Part { range: first + 1..front.range.end, attempt: 0 };
        front.range.end = first + 1;
        self.parts.insert(1, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(pending: &Pending) -> Vec<Range<usize>> {
        pending.parts.iter().map(|part| part.range.clone()).collect()
    }

    #[test]
    fn halving_finds_one_record_in_log_n_steps() {
        let mut pending = Pending::new(16);
        let culprit = 11;
        let mut calls = 0;
        while let Some(part) = pending.front().cloned() {
            calls += 1;
            if !part.range.contains(&culprit) {
                pending.done(part.range.len());
            } else if part.range.len() > 1 {
                pending.split(false);
            } else {
                assert_eq!(part.range, culprit..culprit + 1);
                pending.done(1);
            }
        }
        assert!(calls <= 2 * 4 + 1, "{calls} calls");
    }

    #[test]
    fn progress_resets_attempts_and_splits_may_keep_them() {
        let mut pending = Pending::new(8);
        assert_eq!((pending.failed(), pending.failed()), (1, 2));
        pending.split(true);
        assert_eq!(pending.front(), Some(&Part { range: 0..4, attempt: 2 }));
        pending.done(1);
        assert_eq!(pending.front(), Some(&Part { range: 1..4, attempt: 0 }));
        assert_eq!(ranges(&pending), vec![1..4, 4..8]);
    }

    #[test]
    fn a_record_set_apart_comes_before_the_rest() {
        let mut pending = Pending::new(5);
        pending.done(2);
        pending.failed();
        pending.isolate_first();
        assert_eq!(pending.front(), Some(&Part { range: 2..3, attempt: 1 }));
        assert_eq!(ranges(&pending), vec![2..3, 3..5]);
        pending.done(1);
        assert_eq!(ranges(&pending), vec![3..5]);
        pending.done(2);
        assert!(pending.front().is_none());
    }
}
