//! The vocabulary of sinks that store their position with their data (PostgreSQL, Iceberg):
//! the stream a change belongs to and its place in it, so that a sink can skip what it already
//! holds and say where each stream resumes.

use crate::event::Position;

/// A place in a stream, ordered: a Kafka offset (and 0), or a commit LSN and an index.
pub(crate) type Mark = (i64, i64);

/// The partition under which the WAL changes of a table are kept: never a Kafka partition,
/// so that a pipeline moved between transports cannot mistake one kind of position for the
/// other.
pub(crate) const WAL_PARTITION: i32 = -1;

/// The stream and place of a position: a Kafka partition and its offset, or a table's WAL
/// changes (its topic, partition -1) and their WAL position.
pub(crate) fn stream_of(position: &Position) -> ((&str, i32), Mark) {
    match position {
        Position::Kafka { topic, partition, offset } => ((topic, *partition), (*offset, 0)),
        // LSNs fit an i64 for the next few million terabytes of WAL.
        Position::Wal { topic, position } => (
            (topic, WAL_PARTITION),
            (
                i64::try_from(position.commit_lsn).unwrap_or(i64::MAX),
                i64::try_from(position.index).unwrap_or(i64::MAX),
            ),
        ),
    }
}

/// The mark right after `mark` in a stream of `partition`: the next offset of a Kafka
/// partition, the next index of a transaction in the WAL.
pub(crate) fn after(partition: i32, mark: Mark) -> Mark {
    if partition == WAL_PARTITION {
        (mark.0, mark.1.saturating_add(1))
    } else {
        (mark.0.saturating_add(1), 0)
    }
}
