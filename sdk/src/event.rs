//! The change event a plugin sees: [`Event`], with the [`Op`], [`TableId`], [`Row`]s and typed
//! [`Value`]s of the `cdc-event` crate the host uses too (docs/architecture.md, the change
//! event). The wire form it crosses the boundary in lives in [`crate::wire`].

pub use cdc_event::{Decimal, NotADecimal, Op, Row, TableId, Value};

/// One change to one row (or to one table, for a truncate), as a plugin sees it.
///
/// ```
/// use cdc_sdk::{Event, Op, Value, row};
///
/// let event = Event::update("public.users", row! {"id" => 7, "status" => "test"})
///     .with_key(row! {"id" => 7})
///     .with_id("cdc.public.users/0/42");
/// assert_eq!(event.op, Op::Update);
/// assert_eq!(event.column("status").and_then(Value::as_text), Some("test"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub op: Op,
    /// Which table.
    pub table: TableId,
    /// Primary-key columns, from the message key.
    pub key: Option<Row>,
    /// The row before the change (updates with full replica identity, deletes; a delete under
    /// default replica identity has only the key columns here).
    pub before: Option<Row>,
    /// The row after the change (creates, updates, snapshot reads).
    pub after: Option<Row>,
    /// The Debezium `source` block as received (connector, LSN, txId, ts_ms, snapshot, …).
    pub source: serde_json::Map<String, serde_json::Value>,
    /// When the connector processed the change, milliseconds since the epoch.
    pub ts_ms: Option<i64>,
    /// A stable id of the change, the same on every redelivery and unique per event
    /// (`topic/partition/offset`, then `topic/partition/offset/n` for the n-th further event a
    /// transform made of one record): use it as an idempotency key. The host owns positions, so
    /// changing it has no effect.
    pub id: String,
}

impl Event {
    /// An event with no rows, an empty source, no timestamp and an empty id.
    pub fn new(op: Op, table: impl Into<TableId>) -> Self {
        Event {
            op,
            table: table.into(),
            key: None,
            before: None,
            after: None,
            source: serde_json::Map::new(),
            ts_ms: None,
            id: String::new(),
        }
    }

    /// An insert (`c`) of `after`.
    pub fn insert(table: impl Into<TableId>, after: Row) -> Self {
        Event::new(Op::Create, table).with_after(after)
    }

    /// An update (`u`) to `after`; add the old row with [`Event::with_before`].
    pub fn update(table: impl Into<TableId>, after: Row) -> Self {
        Event::new(Op::Update, table).with_after(after)
    }

    /// A delete (`d`) of `before`.
    pub fn delete(table: impl Into<TableId>, before: Row) -> Self {
        Event::new(Op::Delete, table).with_before(before)
    }

    /// A snapshot read (`r`) of `after`.
    pub fn read(table: impl Into<TableId>, after: Row) -> Self {
        Event::new(Op::Read, table).with_after(after)
    }

    /// A truncate (`t`) of the table.
    pub fn truncate(table: impl Into<TableId>) -> Self {
        Event::new(Op::Truncate, table)
    }

    /// The event with `key` set.
    pub fn with_key(mut self, key: Row) -> Self {
        self.key = Some(key);
        self
    }

    /// The event with `before` set.
    pub fn with_before(mut self, before: Row) -> Self {
        self.before = Some(before);
        self
    }

    /// The event with `after` set.
    pub fn with_after(mut self, after: Row) -> Self {
        self.after = Some(after);
        self
    }

    /// The event with `id` set.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The event with `ts_ms` set.
    pub fn with_ts_ms(mut self, ts_ms: i64) -> Self {
        self.ts_ms = Some(ts_ms);
        self
    }

    /// The event with one `source` field set.
    pub fn with_source(mut self, field: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.source.insert(field.into(), value.into());
        self
    }

    /// The row as it is now: `after`, or `before` for a delete.
    pub fn row(&self) -> Option<&Row> {
        self.after.as_ref().or(self.before.as_ref())
    }

    /// A column of [`Event::row`]: the value after the change, or before it for a delete.
    pub fn column(&self, name: &str) -> Option<&Value> {
        self.row()?.get(name)
    }

    /// The rows present among `key`, `before` and `after`, in that order.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        [&self.key, &self.before, &self.after].into_iter().flatten()
    }

    /// Mutable references to the rows present among `key`, `before` and `after`, e.g. to mask a
    /// column everywhere it appears.
    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut Row> {
        [&mut self.key, &mut self.before, &mut self.after].into_iter().flatten()
    }
}
