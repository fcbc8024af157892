//! Packing of change events into the `batch` record of `wit/types.wit`: one buffer, one end
//! offset per record.

use crate::event::{self, ChangeEvent};

/// Records packed into one buffer, as they cross the plugin boundary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackedBatch {
    /// Concatenated record bytes.
    pub data: Vec<u8>,
    /// End offset of each record in `data`.
    pub ends: Vec<u32>,
}

impl PackedBatch {
    /// Packs events in their wire form.
    pub fn from_events(events: &[ChangeEvent]) -> Self {
        let mut batch = PackedBatch {
            data: Vec::with_capacity(events.len() * 256),
            ends: Vec::with_capacity(events.len()),
        };
        for event in events {
            event::write_wire(event, &mut batch.data);
            batch.ends.push(batch.data.len() as u32);
        }
        batch
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of record `index`, or `None` when the offsets are out of bounds.
    pub fn record(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => *self.ends.get(index - 1)? as usize,
        };
        self.data.get(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_sliced_by_their_ends() {
        let batch = PackedBatch { data: b"abcdef".to_vec(), ends: vec![2, 2, 6] };
        assert_eq!(batch.record(0), Some(&b"ab"[..]));
        assert_eq!(batch.record(1), Some(&b""[..]));
        assert_eq!(batch.record(2), Some(&b"cdef"[..]));
        assert_eq!(batch.record(3), None);
    }

    #[test]
    fn ends_out_of_bounds_are_refused_not_panicked_on() {
        let batch = PackedBatch { data: b"ab".to_vec(), ends: vec![5, 1] };
        assert_eq!(batch.record(0), None);
        assert_eq!(batch.record(1), None);
    }
}
