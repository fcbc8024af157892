//! The ack tracker: per partition, each participant's contiguous durable position, and the
//! committable position (the minimum over participants) that offsets may move to (DESIGN §3).
//!
//! Participants are the enabled sinks; a pipeline without sinks has one participant, the
//! partition lane itself, so that it still commits. Positions are Kafka "next offsets": the
//! offset after the last record made durable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A topic and partition.
pub type PartitionKey = (Arc<str>, i32);

/// Tracks acks and answers what may be committed.
#[derive(Debug)]
pub struct AckTracker {
    participant_count: usize,
    partitions: Mutex<HashMap<PartitionKey, PartitionAcks>>,
}

#[derive(Debug)]
struct PartitionAcks {
    /// Per participant: the next offset after its contiguous durable records.
    durable: Vec<Option<i64>>,
    /// The next offset after the last record handed to the lanes.
    dispatched: Option<i64>,
    /// The position last sent to the broker.
    committed: Option<i64>,
}

impl AckTracker {
    /// A tracker for `participant_count` participants (at least one).
    pub fn new(participant_count: usize) -> Self {
        AckTracker { participant_count: participant_count.max(1), partitions: Mutex::new(HashMap::new()) }
    }

    /// Records that the record at `offset` was handed to the lanes.
    pub fn dispatched(&self, partition: &PartitionKey, offset: i64) {
        let mut partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        let acks = partitions.entry(partition.clone()).or_insert_with(|| PartitionAcks {
            durable: vec![None; self.participant_count],
            dispatched: None,
            committed: None,
        });
        acks.dispatched = Some(acks.dispatched.map_or(offset + 1, |next| next.max(offset + 1)));
    }

    /// Records that `participant` made every record before `next_offset` durable (or handled it
    /// through a confirmed DLQ write). Positions only move forward.
    pub fn ack(&self, participant: usize, partition: &PartitionKey, next_offset: i64) {
        let mut partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        if let Some(slot) = partitions.get_mut(partition).and_then(|acks| acks.durable.get_mut(participant)) {
            *slot = Some(slot.map_or(next_offset, |current| current.max(next_offset)));
        }
    }

    /// How many offsets of a partition are dispatched but not yet durable everywhere.
    pub fn in_flight(&self, partition: &PartitionKey) -> i64 {
        let partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        let Some(acks) = partitions.get(partition) else { return 0 };
        match (acks.dispatched, acks.floor()) {
            (Some(dispatched), Some(floor)) => dispatched - floor,
            (Some(_), None) => i64::MAX,
            _ => 0,
        }
    }

    /// Positions that moved since the last commit, for the partitions `owned` says we hold.
    pub fn committable(&self, owned: impl Fn(&PartitionKey) -> bool) -> Vec<(PartitionKey, i64)> {
        let partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        partitions
            .iter()
            .filter(|(partition, _)| owned(partition))
            .filter_map(|(partition, acks)| {
                let floor = acks.floor()?;
                (acks.committed < Some(floor)).then(|| (partition.clone(), floor))
            })
            .collect()
    }

    /// Records that positions were sent to the broker.
    pub fn mark_committed(&self, positions: &[(PartitionKey, i64)]) {
        let mut partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        for (partition, offset) in positions {
            if let Some(acks) = partitions.get_mut(partition) {
                acks.committed = Some(*offset);
            }
        }
    }

    /// Forgets the last commit of a partition so that its position is sent again (the commit
    /// failed).
    pub fn forget_commit(&self, partition: &PartitionKey) {
        if let Some(acks) = self.partitions.lock().expect("ack tracker lock poisoned").get_mut(partition) {
            acks.committed = None;
        }
    }

    /// Drops a partition's state (after revoke: a later owner starts from the committed offset).
    pub fn remove(&self, partition: &PartitionKey) {
        self.partitions.lock().expect("ack tracker lock poisoned").remove(partition);
    }
}

impl PartitionAcks {
    /// The minimum durable position over participants; `None` until every one has acked.
    fn floor(&self) -> Option<i64> {
        self.durable.iter().copied().min().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(n: i32) -> PartitionKey {
        (Arc::from("cdc.public.t"), n)
    }

    #[test]
    fn commit_is_the_minimum_over_participants() {
        let tracker = AckTracker::new(2);
        let p = partition(0);
        for offset in 0..10 {
            tracker.dispatched(&p, offset);
        }
        tracker.ack(0, &p, 10);
        assert!(tracker.committable(|_| true).is_empty(), "second sink has acked nothing");
        tracker.ack(1, &p, 4);
        assert_eq!(tracker.committable(|_| true), vec![(p.clone(), 4)]);
        assert_eq!(tracker.in_flight(&p), 6);
    }

    #[test]
    fn positions_never_move_backwards_and_commits_are_not_repeated() {
        let tracker = AckTracker::new(1);
        let p = partition(1);
        tracker.dispatched(&p, 5);
        tracker.ack(0, &p, 6);
        tracker.ack(0, &p, 3);
        let positions = tracker.committable(|_| true);
        assert_eq!(positions, vec![(p.clone(), 6)]);
        tracker.mark_committed(&positions);
        assert!(tracker.committable(|_| true).is_empty());
        tracker.forget_commit(&p);
        assert_eq!(tracker.committable(|_| true), vec![(p, 6)]);
    }

    #[test]
    fn partitions_not_owned_are_not_committed() {
        let tracker = AckTracker::new(1);
        let (a, b) = (partition(0), partition(1));
        for p in [&a, &b] {
            tracker.dispatched(p, 0);
            tracker.ack(0, p, 1);
        }
        assert_eq!(tracker.committable(|p| p.1 == 1), vec![(b, 1)]);
    }
}
