//! The messages of PostgreSQL's `pgoutput` plugin, protocol version 1: what one transaction
//! of the replication stream is made of.

use bytes::{Buf, Bytes};

use super::values::PgType;

/// A malformed pgoutput message.
#[derive(Debug, thiserror::Error)]
#[error("malformed pgoutput message: {0}")]
pub struct MalformedMessage(String);

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A transaction starts; its commit will be at `final_lsn`.
    Begin {
        /// The commit record's LSN.
        final_lsn: u64,
        /// Commit time, microseconds since the Unix epoch.
        commit_time_micros: i64,
        /// Transaction id.
        xid: u32,
    },
    /// The transaction committed; the stream continues after `end_lsn`.
    Commit {
        /// The commit record's LSN.
        commit_lsn: u64,
        /// The LSN after the commit record: where a restart resumes.
        end_lsn: u64,
    },
    /// A table's shape, sent before its first change and after every change of it.
    Relation(Relation),
    /// A row inserted.
    Insert {
        /// Relation id.
        relation: u32,
        /// The new row.
        new: Tuple,
    },
    /// A row updated: `old` holds the key ('K') or the whole old row ('O') when the replica
    /// identity says so and the key changed or identity is full.
    Update {
        /// Relation id.
        relation: u32,
        /// The old key or row, when sent.
        old: Option<Tuple>,
        /// The new row.
        new: Tuple,
    },
    /// A row deleted: `old` holds the key, or the whole row under replica identity full.
    Delete {
        /// Relation id.
        relation: u32,
        /// The old key or row.
        old: Tuple,
    },
    /// Tables truncated.
    Truncate {
        /// Relation ids.
        relations: Vec<u32>,
    },
    /// Anything the host does not act on (origin, type, logical message).
    Other,
}

/// A table as pgoutput describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// Relation id (the table's oid).
    pub id: u32,
    /// Schema.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// Columns in table order.
    pub columns: Vec<RelationColumn>,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq)]
pub struct RelationColumn {
    /// Name.
    pub name: String,
    /// Type and modifier.
    pub ty: PgType,
    /// Part of the replica identity (the primary key by default).
    pub key: bool,
}

/// A row's columns.
pub type Tuple = Vec<Cell>;

/// One column's value in a [`Tuple`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A TOASTed value that did not change and was not sent.
    UnchangedToast,
    /// The value's text form.
    Text(String),
}

/// Decodes one message.
pub fn parse(mut data: Bytes) -> Result<Message, MalformedMessage> {
    if data.is_empty() {
        return Err(MalformedMessage("empty".into()));
    }
    let tag = data.get_u8();
    let reader = &mut Reader(data);
    let message = match tag {
        b'B' => Message::Begin {
            final_lsn: reader.u64()?,
            commit_time_micros: pg_time_to_unix_micros(reader.i64()?),
            xid: reader.u32()?,
        },
        b'C' => {
            let _flags = reader.u8()?;
            let commit_lsn = reader.u64()?;
            let end_lsn = reader.u64()?;
            let _commit_time = reader.i64()?;
            Message::Commit { commit_lsn, end_lsn }
        }
        b'R' => {
            let id = reader.u32()?;
            let schema = reader.cstring()?;
            let table = reader.cstring()?;
            let replica_identity = reader.u8()?;
            let count = reader.u16()?;
            let mut columns = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let flags = reader.u8()?;
                let name = reader.cstring()?;
                let oid = reader.u32()?;
                let modifier = reader.i32()?;
                columns.push(RelationColumn { name, ty: PgType { oid, modifier }, key: flags & 1 == 1 });
            }
            Message::Relation(Relation { id, schema, table, replica_identity, columns })
        }
        b'I' => {
            let relation = reader.u32()?;
            reader.expect(b'N')?;
            Message::Insert { relation, new: reader.tuple()? }
        }
        b'U' => {
            let relation = reader.u32()?;
            let old = match reader.u8()? {
                b'K' | b'O' => {
                    let old = reader.tuple()?;
                    reader.expect(b'N')?;
                    Some(old)
                }
                b'N' => None,
                other => return Err(MalformedMessage(format!("update with tuple kind '{}'", other as char))),
            };
            Message::Update { relation, old, new: reader.tuple()? }
        }
        b'D' => {
            let relation = reader.u32()?;
            match reader.u8()? {
                b'K' | b'O' => Message::Delete { relation, old: reader.tuple()? },
                other => return Err(MalformedMessage(format!("delete with tuple kind '{}'", other as char))),
            }
        }
        b'T' => {
            let count = reader.u32()?;
            let _options = reader.u8()?;
            let relations = (0..count).map(|_| reader.u32()).collect::<Result<_, _>>()?;
            Message::Truncate { relations }
        }
        b'O' | b'Y' | b'M' => Message::Other,
        other => return Err(MalformedMessage(format!("unknown message '{}'", other as char))),
    };
    Ok(message)
}

/// PostgreSQL counts time from 2000-01-01.
fn pg_time_to_unix_micros(micros: i64) -> i64 {
    micros.saturating_add(946_684_800_000_000)
}

struct Reader(Bytes);

impl Reader {
    fn need(&self, bytes: usize) -> Result<(), MalformedMessage> {
        if self.0.remaining() < bytes {
            return Err(MalformedMessage("truncated".into()));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, MalformedMessage> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }

    fn u16(&mut self) -> Result<u16, MalformedMessage> {
        self.need(2)?;
        Ok(self.0.get_u16())
    }

    fn u32(&mut self) -> Result<u32, MalformedMessage> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }

    fn i32(&mut self) -> Result<i32, MalformedMessage> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }

    fn u64(&mut self) -> Result<u64, MalformedMessage> {
        self.need(8)?;
        Ok(self.0.get_u64())
    }

    fn i64(&mut self) -> Result<i64, MalformedMessage> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }

    fn expect(&mut self, tag: u8) -> Result<(), MalformedMessage> {
        match self.u8()? {
            found if found == tag => Ok(()),
            found => Err(MalformedMessage(format!("expected '{}', found '{}'", tag as char, found as char))),
        }
    }

    fn cstring(&mut self) -> Result<String, MalformedMessage> {
        let end = (self.0.iter().position(|byte| *byte == 0))
            .ok_or_else(|| MalformedMessage("unterminated string".into()))?;
        let text = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0.advance(end + 1);
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Tuple, MalformedMessage> {
        let count = self.u16()?;
        let mut cells = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let cell = match self.u8()? {
                b'n' => Cell::Null,
                b'u' => Cell::UnchangedToast,
                b't' => {
                    let length = self.u32()? as usize;
                    self.need(length)?;
                    let text = self.0.split_to(length);
                    Cell::Text(
                        String::from_utf8(text.to_vec())
                            .map_err(|_| MalformedMessage("a text value is not UTF-8".into()))?,
                    )
                }
                other => {
                    return Err(MalformedMessage(format!(
                        "column kind '{}' (binary is never asked for)",
                        other as char
                    )));
                }
            };
            cells.push(cell);
        }
        Ok(cells)
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::*;

    fn tuple(cells: &[Option<&str>], out: &mut BytesMut) {
        out.put_u16(cells.len() as u16);
        for cell in cells {
            match cell {
                None => out.put_u8(b'n'),
                Some("\u{0}toast") => out.put_u8(b'u'),
                Some(text) => {
                    out.put_u8(b't');
                    out.put_u32(text.len() as u32);
                    out.put_slice(text.as_bytes());
                }
            }
        }
    }

    #[test]
    fn a_relation_names_its_key_columns_and_types() {
        let mut data = BytesMut::new();
        data.put_u8(b'R');
        data.put_u32(16385);
        data.put_slice(b"public\0customers\0");
        data.put_u8(b'd');
        data.put_u16(2);
        data.put_u8(1);
        data.put_slice(b"id\0");
        data.put_u32(23);
        data.put_i32(-1);
        data.put_u8(0);
        data.put_slice(b"email\0");
        data.put_u32(1043);
        data.put_i32(259);
        let Message::Relation(relation) = parse(data.freeze()).unwrap() else { panic!("not a relation") };
        assert_eq!((relation.schema.as_str(), relation.table.as_str()), ("public", "customers"));
        assert!(relation.columns[0].key && !relation.columns[1].key);
        assert_eq!(relation.columns[1].ty, PgType { oid: 1043, modifier: 259 });
    }

    #[test]
    fn an_update_carries_the_old_key_nulls_and_unchanged_toast() {
        let mut data = BytesMut::new();
        data.put_u8(b'U');
        data.put_u32(7);
        data.put_u8(b'K');
        tuple(&[Some("1"), None], &mut data);
        data.put_u8(b'N');
        tuple(&[Some("2"), Some("\u{0}toast")], &mut data);
        let message = parse(data.freeze()).unwrap();
        assert_eq!(
            message,
            Message::Update {
                relation: 7,
                old: Some(vec![Cell::Text("1".into()), Cell::Null]),
                new: vec![Cell::Text("2".into()), Cell::UnchangedToast],
            }
        );
    }

    #[test]
    fn begin_and_commit_give_the_positions_of_the_transaction() {
        let mut data = BytesMut::new();
        data.put_u8(b'B');
        data.put_u64(0x100);
        data.put_i64(0);
        data.put_u32(42);
        assert_eq!(
            parse(data.freeze()).unwrap(),
            Message::Begin { final_lsn: 0x100, commit_time_micros: 946_684_800_000_000, xid: 42 }
        );
        let mut data = BytesMut::new();
        data.put_u8(b'C');
        data.put_u8(0);
        data.put_u64(0x100);
        data.put_u64(0x128);
        data.put_i64(0);
        assert_eq!(parse(data.freeze()).unwrap(), Message::Commit { commit_lsn: 0x100, end_lsn: 0x128 });
    }

    #[test]
    fn truncated_messages_are_refused() {
        assert!(parse(Bytes::from_static(b"I\0\0")).is_err());
        assert!(parse(Bytes::from_static(b"Z")).is_err());
    }
}
