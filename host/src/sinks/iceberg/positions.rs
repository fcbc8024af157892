//! The positions a table holds, kept in its snapshots' summaries: per (pipeline, sink) one
//! property listing, for each stream the sink wrote to the table, the next position not yet in
//! it. A commit writes rows and positions in one snapshot, so a crash leaves both or neither;
//! every commit carries the positions of the snapshot it replaces forward, so the current
//! snapshot always has them all.

use std::collections::{BTreeMap, HashMap};

use crate::sinks::positions::Mark;

/// A stream: a topic and a Kafka partition, or a table's WAL changes (partition -1).
pub(super) type Stream = (String, i32);

/// The summary property holding one sink's positions.
pub(super) fn property(pipeline_id: &str, sink_id: &str) -> String {
    format!("cdc.positions.{pipeline_id}.{sink_id}")
}

/// The next position per stream, as a summary property stores it: a JSON object from
/// `topic/partition` to `[offset, index]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Positions(BTreeMap<Stream, Mark>);

impl Positions {
    /// The positions in a snapshot summary's properties; none when the sink never committed.
    pub fn read(properties: &HashMap<String, String>, property: &str) -> Result<Self, String> {
        let Some(text) = properties.get(property) else { return Ok(Positions::default()) };
        let stored: BTreeMap<String, (i64, i64)> = serde_json::from_str(text)
            .map_err(|error| format!("the snapshot's `{property}` is not a positions object: {error}"))?;
        let mut positions = BTreeMap::new();
        for (stream, mark) in stored {
            let (topic, partition) = stream
                .rsplit_once('/')
                .and_then(|(topic, partition)| Some((topic.to_owned(), partition.parse().ok()?)))
                .ok_or_else(|| {
                    format!("the snapshot's `{property}` names a stream `{stream}` without a partition")
                })?;
            positions.insert((topic, partition), mark);
        }
        Ok(Positions(positions))
    }

    /// The next position of a stream, when the table holds any of it.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Mark> {
        self.0.get(&(topic.to_owned(), partition)).copied()
    }

    /// Every stream and its next position.
    pub fn iter(&self) -> impl Iterator<Item = (&Stream, &Mark)> {
        self.0.iter()
    }

    /// Moves each stream in `written` forward to its mark (never back).
    pub fn advance(&mut self, written: &HashMap<Stream, Mark>) {
        for (stream, mark) in written {
            let held = self.0.entry(stream.clone()).or_insert(*mark);
            *held = (*held).max(*mark);
        }
    }

    /// The property's value.
    pub fn encode(&self) -> String {
        let stored: BTreeMap<String, Mark> =
            self.0.iter().map(|((topic, partition), mark)| (format!("{topic}/{partition}"), *mark)).collect();
        serde_json::to_string(&stored).expect("positions serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_a_summary_and_only_move_forward() {
        let key = property("orders-pipeline", "lake");
        let mut positions = Positions::default();
        positions.advance(&HashMap::from([(("db.public.orders".to_owned(), 0), (41, 0))]));
        positions.advance(&HashMap::from([
            (("db.public.orders".to_owned(), 0), (12, 0)),
            (("db.public.items".to_owned(), -1), (0x16B3748, 3)),
        ]));
        let summary = HashMap::from([(key.clone(), positions.encode())]);
        let read = Positions::read(&summary, &key).unwrap();
        assert_eq!(read, positions);
        assert_eq!(read.get("db.public.orders", 0), Some((41, 0)));
        assert_eq!(read.get("db.public.items", -1), Some((0x16B3748, 3)));
        assert_eq!(Positions::read(&HashMap::new(), &key).unwrap(), Positions::default());

        let broken = HashMap::from([(key.clone(), "{\"no-partition\": [1, 0]}".to_owned())]);
        assert!(Positions::read(&broken, &key).unwrap_err().contains("no-partition"));
    }
}
