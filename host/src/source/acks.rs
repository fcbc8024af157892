//! The ack tracker: per partition, each participant's contiguous durable position, and the committable
//! position (the minimum over participants) that offsets may move to (docs/architecture.md, delivery).
//!
//! Participants are the enabled sinks; a pipeline without sinks has one participant, the
//! partition lane itself, so that it still commits. Positions are Kafka "next offsets": the
//! offset after the last record made durable. Lanes hold their partition's [`PartitionAcks`]
//! and update it with atomics, so the hot path takes no lock; a partition that is revoked and
//! later assigned again gets a fresh one, so late acks of its old lanes cannot leak into it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// A topic and partition.
pub type PartitionKey = (Arc<str>, i32);

/// No position yet.
const NONE: i64 = -1;

/// Tracks acks of every partition and answers what may be committed.
#[derive(Debug)]
pub struct AckTracker {
    participant_count: usize,
    partitions: Mutex<HashMap<PartitionKey, Arc<PartitionAcks>>>,
}

/// The positions of one partition.
#[derive(Debug)]
pub struct PartitionAcks {
    /// Per participant: the next offset after its contiguous durable records.
    durable: Box<[AtomicI64]>,
    /// The next offset after the last record handed to the lanes.
    dispatched: AtomicI64,
    /// The offset of the first record handed to the lanes: where counting in-flight starts.
    base: AtomicI64,
    /// The position the broker last accepted.
    committed: AtomicI64,
}

impl AckTracker {
    /// A tracker for `participant_count` participants (at least one).
    pub fn new(participant_count: usize) -> Self {
        AckTracker { participant_count: participant_count.max(1), partitions: Mutex::new(HashMap::new()) }
    }

    /// The positions of a partition, created on first use.
    pub fn partition(&self, partition: &PartitionKey) -> Arc<PartitionAcks> {
        let mut partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        let acks = partitions.entry(partition.clone()).or_insert_with(|| {
            Arc::new(PartitionAcks {
                durable: (0..self.participant_count).map(|_| AtomicI64::new(NONE)).collect(),
                dispatched: AtomicI64::new(NONE),
                base: AtomicI64::new(NONE),
                committed: AtomicI64::new(NONE),
            })
        });
        acks.clone()
    }

    /// The positions of a partition, if it is tracked.
    pub fn get(&self, partition: &PartitionKey) -> Option<Arc<PartitionAcks>> {
        self.partitions.lock().expect("ack tracker lock poisoned").get(partition).cloned()
    }

    /// Positions that moved since the last commit, for the partitions `owned` says we hold.
    pub fn committable(&self, owned: impl Fn(&PartitionKey) -> bool) -> Vec<(PartitionKey, i64)> {
        let partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        partitions
            .iter()
            .filter(|(partition, _)| owned(partition))
            .filter_map(|(partition, acks)| {
                let floor = acks.floor()?;
                (acks.committed.load(Ordering::Acquire) < floor).then(|| (partition.clone(), floor))
            })
            .collect()
    }

    /// Records that the broker accepted a commit of these positions.
    pub fn mark_committed(&self, positions: &[(PartitionKey, i64)]) {
        let partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        for (partition, offset) in positions {
            if let Some(acks) = partitions.get(partition) {
                acks.committed.fetch_max(*offset, Ordering::AcqRel);
            }
        }
    }

    /// Every tracked partition with the position last committed for it, if any.
    pub fn committed_positions(&self) -> Vec<(PartitionKey, Option<i64>)> {
        let partitions = self.partitions.lock().expect("ack tracker lock poisoned");
        partitions.iter().map(|(partition, acks)| (partition.clone(), acks.committed())).collect()
    }

    /// Drops a partition's state (after revoke: a later owner starts from the committed offset).
    pub fn remove(&self, partition: &PartitionKey) {
        self.partitions.lock().expect("ack tracker lock poisoned").remove(partition);
    }
}

impl PartitionAcks {
    /// Records that the record at `offset` was handed to the lanes.
    pub fn dispatched(&self, offset: i64) {
        let _ = self.base.compare_exchange(NONE, offset, Ordering::AcqRel, Ordering::Acquire);
        self.dispatched.fetch_max(offset + 1, Ordering::AcqRel);
    }

    /// Records that `participant` made every record before `next_offset` durable (or handled it
    /// through a confirmed DLQ write). Positions only move forward.
    pub fn ack(&self, participant: usize, next_offset: i64) {
        if let Some(slot) = self.durable.get(participant) {
            slot.fetch_max(next_offset, Ordering::AcqRel);
        }
    }

    /// The position the broker last accepted, if any.
    pub fn committed(&self) -> Option<i64> {
        let committed = self.committed.load(Ordering::Acquire);
        (committed != NONE).then_some(committed)
    }

    /// How many offsets are dispatched but not yet durable everywhere.
    pub fn in_flight(&self) -> i64 {
        let dispatched = self.dispatched.load(Ordering::Acquire);
        if dispatched == NONE {
            return 0;
        }
        // A participant that has acked nothing yet holds everything since the first record.
        let base = self.base.load(Ordering::Acquire);
        let floor =
            self.durable.iter().map(|slot| slot.load(Ordering::Acquire).max(base)).min().unwrap_or(base);
        (dispatched - floor).max(0)
    }

    /// The first offset not yet durable in every participant, while any is in flight.
    pub fn oldest_in_flight(&self) -> Option<i64> {
        let dispatched = self.dispatched.load(Ordering::Acquire);
        let base = self.base.load(Ordering::Acquire);
        let floor =
            self.durable.iter().map(|slot| slot.load(Ordering::Acquire).max(base)).min().unwrap_or(base);
        (dispatched != NONE && floor < dispatched).then_some(floor)
    }

    /// The minimum durable position over participants; `None` until every one has acked.
    fn floor(&self) -> Option<i64> {
        let floor = self.durable.iter().map(|slot| slot.load(Ordering::Acquire)).min()?;
        (floor != NONE).then_some(floor)
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
        let acks = tracker.partition(&p);
        for offset in 0..10 {
            acks.dispatched(offset);
        }
        assert_eq!(acks.in_flight(), 10);
        acks.ack(0, 10);
        assert!(tracker.committable(|_| true).is_empty(), "second sink has acked nothing");
        assert_eq!(acks.in_flight(), 10);
        acks.ack(1, 4);
        assert_eq!(tracker.committable(|_| true), vec![(p.clone(), 4)]);
        assert_eq!(acks.in_flight(), 6);
    }

    #[test]
    fn positions_never_move_backwards_and_accepted_commits_are_not_repeated() {
        let tracker = AckTracker::new(1);
        let p = partition(1);
        let acks = tracker.partition(&p);
        acks.dispatched(5);
        acks.ack(0, 6);
        acks.ack(0, 3);
        let positions = tracker.committable(|_| true);
        assert_eq!(positions, vec![(p.clone(), 6)]);
        assert_eq!(tracker.committable(|_| true), positions, "sent but not accepted yet: sent again");
        tracker.mark_committed(&positions);
        assert!(tracker.committable(|_| true).is_empty());
    }

    #[test]
    fn partitions_not_owned_are_not_committed() {
        let tracker = AckTracker::new(1);
        let (a, b) = (partition(0), partition(1));
        for p in [&a, &b] {
            let acks = tracker.partition(p);
            acks.dispatched(0);
            acks.ack(0, 1);
        }
        assert_eq!(tracker.committable(|p| p.1 == 1), vec![(b, 1)]);
    }

    #[test]
    fn late_acks_of_a_revoked_partition_do_not_reach_its_next_owner() {
        let tracker = AckTracker::new(1);
        let p = partition(2);
        let old = tracker.partition(&p);
        old.dispatched(0);
        tracker.remove(&p);
        let fresh = tracker.partition(&p);
        fresh.dispatched(7);
        old.ack(0, 100);
        assert!(tracker.committable(|_| true).is_empty());
        assert_eq!(fresh.in_flight(), 1);
    }
}
