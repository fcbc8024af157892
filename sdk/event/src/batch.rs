//! Records packed into one buffer, as in the WIT `batch`: record `i` is
//! `data[ends[i-1]..ends[i]]`, with `ends[-1] = 0`.

use std::fmt;

/// Records packed into one buffer with the end offset of each.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackedBatch {
    /// Concatenated records.
    pub data: Vec<u8>,
    /// End offset of each record in `data`.
    pub ends: Vec<u32>,
}

/// Why a batch could not be packed or split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The buffer outgrew what `u32` offsets address.
    TooLarge {
        /// The size it reached, in bytes.
        bytes: usize,
    },
    /// An end offset lies before the previous one or past the buffer.
    Malformed {
        /// The record whose end is wrong.
        index: usize,
        /// Its end offset.
        end: usize,
        /// Where it should start.
        start: usize,
        /// The buffer's size.
        len: usize,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::TooLarge { bytes } => {
                write!(f, "batch of {bytes} bytes exceeds the 4 GiB a packed batch can address")
            }
            BatchError::Malformed { index, end, start, len } => {
                write!(f, "malformed batch: record {index} ends at {end}, after {start}, in {len} bytes")
            }
        }
    }
}

impl std::error::Error for BatchError {}

impl PackedBatch {
    /// An empty batch with room for `records` records of about `record_bytes` each.
    pub fn with_capacity(records: usize, record_bytes: usize) -> Self {
        PackedBatch { data: Vec::with_capacity(records * record_bytes), ends: Vec::with_capacity(records) }
    }

    /// Packs `items`, each written by `write`. The buffer is sized from the first record, so that
    /// a batch of similar records is allocated about once.
    ///
    /// # Errors
    /// When the buffer outgrows the 4 GiB that `u32` offsets address.
    pub fn pack<T>(items: &[T], mut write: impl FnMut(&T, &mut Vec<u8>)) -> Result<Self, BatchError> {
        let mut batch = PackedBatch::with_capacity(items.len(), 0);
        let Some((first, rest)) = items.split_first() else { return Ok(batch) };
        batch.push_with(|out| write(first, out))?;
        // Room for the rest at the first record's size, plus an eighth for variation.
        let estimate = batch.data.len() + batch.data.len() / 8;
        batch.data.reserve(estimate.saturating_mul(rest.len()));
        for item in rest {
            batch.push_with(|out| write(item, out))?;
        }
        Ok(batch)
    }

    /// Appends one record, written by `write` at the end of the buffer.
    ///
    /// # Errors
    /// When the buffer outgrows the 4 GiB that `u32` offsets address; the record is not added.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), BatchError> {
        let start = self.data.len();
        write(&mut self.data);
        match u32::try_from(self.data.len()) {
            Ok(end) => {
                self.ends.push(end);
                Ok(())
            }
            Err(_) => {
                let bytes = self.data.len();
                self.data.truncate(start);
                Err(BatchError::TooLarge { bytes })
            }
        }
    }

    /// Empties the batch, keeping its buffers for the next one.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of record `index`, or `None` when it does not exist or its offsets are out of
    /// bounds.
    pub fn record(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => *self.ends.get(index - 1)? as usize,
        };
        self.data.get(start..end)
    }

    /// The records' bytes, in order.
    ///
    /// # Errors
    /// When an end lies before the previous one or past the buffer.
    pub fn records(&self) -> Result<Vec<&[u8]>, BatchError> {
        split(&self.data, &self.ends)
    }
}

/// Splits a packed buffer, given as its parts, into its records.
///
/// # Errors
/// When an end lies before the previous one or past the buffer.
pub fn split<'a>(data: &'a [u8], ends: &[u32]) -> Result<Vec<&'a [u8]>, BatchError> {
    let mut start = 0;
    let mut records = Vec::with_capacity(ends.len());
    for (index, &end) in ends.iter().enumerate() {
        let end = end as usize;
        let record =
            data.get(start..end).ok_or(BatchError::Malformed { index, end, start, len: data.len() })?;
        records.push(record);
        start = end;
    }
    Ok(records)
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
        assert_eq!(batch.records().unwrap(), [&b"ab"[..], b"", b"cdef"]);
    }

    #[test]
    fn ends_out_of_bounds_are_refused_not_panicked_on() {
        let batch = PackedBatch { data: b"ab".to_vec(), ends: vec![5, 1] };
        assert_eq!(batch.record(0), None);
        assert_eq!(batch.record(1), None);
        assert_eq!(
            batch.records().unwrap_err().to_string(),
            "malformed batch: record 0 ends at 5, after 0, in 2 bytes"
        );
    }

    #[test]
    fn packed_items_end_where_each_was_written() {
        let batch =
            PackedBatch::pack(&["a", "", "bcd"], |item, out| out.extend_from_slice(item.as_bytes())).unwrap();
        assert_eq!((batch.data.as_slice(), batch.ends.as_slice()), (&b"abcd"[..], &[1, 1, 4][..]));
        assert!(PackedBatch::pack(&[] as &[&str], |_, _| ()).unwrap().is_empty());
    }

    #[test]
    fn pushed_records_end_where_they_were_written() {
        let mut batch = PackedBatch::with_capacity(2, 8);
        batch.push_with(|out| out.extend_from_slice(b"one")).unwrap();
        batch.push_with(|out| out.extend_from_slice(b"three")).unwrap();
        assert_eq!(batch.ends, [3, 8]);
        assert_eq!(batch.record(1), Some(&b"three"[..]));
    }
}
