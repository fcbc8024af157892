//! Replica mode: one target table per source table holding the source's current rows.
//!
//! A write is reduced first, per table, to the last change per key: an upsert of the newest row
//! (unchanged TOAST columns filled from an earlier change of the same key in the write, else
//! left out so the target keeps them) or a delete; a key change becomes a delete of the old key
//! and an upsert of the new; a truncate drops what came before it. Then each table gets at most
//! a truncate, a bulk delete and one bulk upsert per set of columns present, every value
//! passed as text in an array parameter and cast by the server to the column's type. Rows go
//! in key order: PostgreSQL then walks the key's index and the table's pages in order (a batch
//! of 10,000 upserts in random order cost it 15–25% more, measured here), and two such
//! statements lock the rows they share in the same order.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use tokio_postgres::types::ToSql;

use super::connection::Connection;
use super::literal;
use super::schema::{self, DDL_LOCK, TableName, TargetTable, quote};
use crate::event::{ChangeEvent, Column, Op, Row, TableId, Value};

/// Why a write could not be applied.
#[derive(Debug)]
pub(super) enum ApplyError {
    /// Event number `index` of the write cannot be written (no key, a type with no PostgreSQL
    /// form, …); nothing of the write was applied.
    Event { index: usize, reason: String },
    /// The database refused a statement.
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for ApplyError {
    fn from(error: tokio_postgres::Error) -> Self {
        ApplyError::Database(error)
    }
}

/// Where source tables go.
#[derive(Debug, Clone)]
pub(super) struct TableMapping {
    /// Schema of the tables the map does not name.
    pub target_schema: String,
    /// `schema.table` of the source → target.
    pub table_map: HashMap<String, TableName>,
}

impl TableMapping {
    fn target(&self, source: &TableId) -> TableName {
        self.table_map
            .get(&source.to_string())
            .cloned()
            .unwrap_or_else(|| TableName { schema: self.target_schema.clone(), table: source.table.clone() })
    }
}

/// A target table with its columns by name.
struct Resolved {
    table: TargetTable,
    index: HashMap<String, usize>,
    /// Positions of the key columns in `table.columns`.
    key: Vec<usize>,
    /// How each key column sorts.
    key_order: Vec<KeyOrder>,
    /// The source schema the table was resolved for.
    schema: Option<Arc<[Column]>>,
}

impl Resolved {
    /// Whether the table has every column of a source schema. Events of one schema share its
    /// columns, so the check is by identity for all but the first of them.
    fn covers(&self, columns: Option<&Arc<[Column]>>) -> bool {
        let Some(columns) = columns else { return true };
        self.schema.as_ref().is_some_and(|schema| Arc::ptr_eq(schema, columns))
            || columns.iter().all(|column| self.index.contains_key(&column.name))
    }
}

/// The replica writer of one lane: the target tables it resolved.
pub(super) struct Replica {
    mapping: TableMapping,
    tables: HashMap<TableId, Arc<Resolved>>,
}

/// A column's value in a change: text (`None` for NULL; lent by the event where it holds
/// text already), or not sent (unchanged TOAST, or a column the source row does not have),
/// which leaves the target's value alone.
#[derive(Debug, Clone, PartialEq)]
enum Cell<'e> {
    Value(Option<Cow<'e, str>>),
    Unchanged,
}

type Key<'e> = Vec<Cow<'e, str>>;

/// How a key column's text sorts, close enough to its index's order for locality: integers by
/// value, anything else by its bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyOrder {
    Integer,
    Bytes,
}

impl KeyOrder {
    fn of(sql_type: &str) -> Self {
        match sql_type {
            "smallint" | "integer" | "bigint" => KeyOrder::Integer,
            _ => KeyOrder::Bytes,
        }
    }

    fn compare(self, a: &str, b: &str) -> Ordering {
        if self == KeyOrder::Integer
            && let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>())
        {
            return a.cmp(&b);
        }
        a.cmp(b)
    }
}

/// `a` against `b` in the order of the table's key columns.
fn compare_keys(order: &[KeyOrder], a: &Key<'_>, b: &Key<'_>) -> Ordering {
    order
        .iter()
        .zip(a.iter().zip(b))
        .map(|(order, (a, b))| order.compare(a, b))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

enum Change<'e> {
    Upsert(Vec<Cell<'e>>),
    Delete,
}

/// One table's net changes in a write. The maps of a write hold thousands of keys and are
/// hashed once per event: a fast hasher, seeded per process.
struct TableChanges<'e> {
    table: Arc<Resolved>,
    truncate: bool,
    changes: HashMap<Key<'e>, Change<'e>, RandomState>,
}

impl Replica {
    pub fn new(mapping: TableMapping) -> Self {
        Replica { mapping, tables: HashMap::new() }
    }

    /// Forgets resolved tables: after a rollback, DDL of the transaction is undone.
    pub fn forget_tables(&mut self) {
        self.tables.clear();
    }

    /// Applies `events` inside the caller's transaction. When an event cannot be written, the
    /// events before it are applied and the error names it.
    pub async fn apply(
        &mut self,
        connection: &mut Connection,
        events: &[ChangeEvent],
        rows_per_statement: usize,
    ) -> Result<(), ApplyError> {
        let mut changes: HashMap<TableName, TableChanges<'_>> = HashMap::new();
        let mut refused = None;
        for (index, event) in events.iter().enumerate() {
            if event.op == Op::Truncate
                && !self.tables.contains_key(&event.table)
                && TargetTable::load(connection.client(), &self.mapping.target(&event.table)).await?.is_none()
            {
                // Nothing to empty: the table was never written.
                continue;
            }
            let result = match self.resolve(connection, event).await {
                Ok(table) => reduce(&mut changes, table, event),
                Err(ApplyError::Event { reason, .. }) => Err(reason),
                Err(error) => return Err(error),
            };
            if let Err(reason) = result {
                refused = Some(ApplyError::Event { index, reason: format!("{}: {reason}", event.table) });
                break;
            }
        }
        for table_changes in changes.into_values() {
            write_table(connection, table_changes, rows_per_statement).await?;
        }
        refused.map_or(Ok(()), Err)
    }

    /// The target table of an event: read from the catalog, created from the source schema
    /// when absent, and widened by the columns the source gained.
    async fn resolve(
        &mut self,
        connection: &mut Connection,
        event: &ChangeEvent,
    ) -> Result<Arc<Resolved>, ApplyError> {
        let refuse = |reason: String| ApplyError::Event { index: 0, reason };
        if let Some(resolved) = self.tables.get(&event.table)
            && resolved.covers(event.columns.as_ref())
        {
            return Ok(resolved.clone());
        }
        let name = self.mapping.target(&event.table);
        let columns = event.columns.as_deref().unwrap_or_default();
        let table = match TargetTable::load(connection.client(), &name).await? {
            None if columns.is_empty() => {
                let reason = format!(
                    "target table {name} does not exist and the event has no source schema to create it from"
                );
                return Err(refuse(reason));
            }
            None => {
                let key = key_columns(event).ok_or_else(|| {
                    refuse("the source table has no primary key: replica mode needs one (or use mode: event_log)".into())
                })?;
                let create = schema::create_table(&name, columns, &key).map_err(refuse)?;
                let sql =
                    format!("{DDL_LOCK}; CREATE SCHEMA IF NOT EXISTS {}; {create}", quote(&name.schema));
                connection.client().batch_execute(&sql).await?;
                tracing::info!(table = %name, "postgres.table_created");
                connection.forget_statements();
                TargetTable::load(connection.client(), &name).await?
            }
            Some(existing) => {
                let added: Vec<&Column> =
                    columns.iter().filter(|c| existing.column(&c.name).is_none()).collect();
                if added.is_empty() {
                    Some(existing)
                } else {
                    connection.client().batch_execute(DDL_LOCK).await?;
                    for column in added {
                        let sql = schema::add_column(&name, column).map_err(refuse)?;
                        connection.client().batch_execute(&sql).await?;
                        tracing::info!(table = %name, column = column.name.as_str(), "postgres.column_added");
                    }
                    connection.forget_statements();
                    TargetTable::load(connection.client(), &name).await?
                }
            }
        };
        let table =
            table.ok_or_else(|| refuse(format!("target table {name} vanished while it was created")))?;
        if table.key.is_empty() {
            return Err(refuse(format!(
                "target table {name} has no primary key: replica mode upserts by it"
            )));
        }
        let index: HashMap<String, usize> =
            table.columns.iter().enumerate().map(|(i, column)| (column.name.clone(), i)).collect();
        let key: Vec<usize> = table.key.iter().map(|k| index[k]).collect();
        let key_order = key.iter().map(|&i| KeyOrder::of(&table.columns[i].sql_type)).collect();
        let resolved = Arc::new(Resolved { table, index, key, key_order, schema: event.columns.clone() });
        self.tables.insert(event.table.clone(), resolved.clone());
        Ok(resolved)
    }
}

/// The key columns the source names: those of the message key.
fn key_columns(event: &ChangeEvent) -> Option<Vec<String>> {
    let key = event.key.as_ref()?;
    let columns: Vec<String> = key.columns().map(str::to_owned).collect();
    (!columns.is_empty()).then_some(columns)
}

/// Folds one event into the write's net changes.
fn reduce<'e>(
    changes: &mut HashMap<TableName, TableChanges<'e>>,
    table: Arc<Resolved>,
    event: &'e ChangeEvent,
) -> Result<(), String> {
    if !changes.contains_key(&table.table.name) {
        let empty = TableChanges { table: table.clone(), truncate: false, changes: HashMap::default() };
        changes.insert(table.table.name.clone(), empty);
    }
    let entry = changes.get_mut(&table.table.name).expect("inserted above");
    match event.op {
        Op::Truncate => {
            entry.truncate = true;
            entry.changes.clear();
        }
        Op::Delete => {
            let row = event
                .key
                .as_ref()
                .or(event.before.as_ref())
                .ok_or("a delete with neither key nor before row")?;
            entry.changes.insert(row_key(&table, row)?, Change::Delete);
        }
        Op::Create | Op::Read | Op::Update => {
            let after = event.after.as_ref().ok_or("a change with no after row")?;
            let mut row = cells(&table, after)?;
            let key = key_of(&table, &row)?;
            if let Some(before) = &event.before
                && let Ok(old_key) = row_key(&table, before)
                && old_key != key
            {
                entry.changes.insert(old_key, Change::Delete);
            }
            if let Some(Change::Upsert(earlier)) = entry.changes.get(&key) {
                for (cell, earlier) in row.iter_mut().zip(earlier) {
                    if *cell == Cell::Unchanged {
                        *cell = earlier.clone();
                    }
                }
            }
            entry.changes.insert(key, Change::Upsert(row));
        }
    }
    Ok(())
}

/// A row's cells in the target's column order.
fn cells<'e>(table: &Resolved, row: &'e Row) -> Result<Vec<Cell<'e>>, String> {
    let columns = &table.table.columns;
    let mut cells = vec![Cell::Unchanged; columns.len()];
    let mut next = 0;
    for (name, value) in row.iter() {
        // A table made from the source schema has the source's column order: try the column
        // after the previous one before the map.
        let index = match columns.get(next) {
            Some(column) if column.name == name => next,
            _ => *table.index.get(name).ok_or_else(|| {
                format!(
                    "column `{name}` is not in target table {} and the event has no schema to add it from",
                    table.table.name
                )
            })?,
        };
        next = index + 1;
        cells[index] = match value {
            Value::Unavailable => Cell::Unchanged,
            value => Cell::Value(literal::text(value)),
        };
    }
    Ok(cells)
}

/// The key of a row's cells.
fn key_of<'e>(table: &Resolved, cells: &[Cell<'e>]) -> Result<Key<'e>, String> {
    table
        .key
        .iter()
        .map(|&index| match &cells[index] {
            Cell::Value(Some(text)) => Ok(text.clone()),
            _ => Err(no_key_value(table, index)),
        })
        .collect()
}

/// The key of a row read from its key columns alone (an old row, or a message key).
fn row_key<'e>(table: &Resolved, row: &'e Row) -> Result<Key<'e>, String> {
    table
        .key
        .iter()
        .map(|&index| {
            row.get(&table.table.columns[index].name)
                .and_then(literal::text)
                .ok_or_else(|| no_key_value(table, index))
        })
        .collect()
}

fn no_key_value(table: &Resolved, index: usize) -> String {
    format!("key column `{}` has no value", table.table.columns[index].name)
}

/// Writes one table's net changes: truncate, deletes, then upserts by column set.
async fn write_table(
    connection: &mut Connection,
    changes: TableChanges<'_>,
    rows_per_statement: usize,
) -> Result<(), ApplyError> {
    let resolved = &changes.table;
    let table = &resolved.table;
    if changes.truncate {
        connection.client().batch_execute(&format!("TRUNCATE {}", table.name)).await?;
    }
    let mut deletes: Vec<Key<'_>> = Vec::new();
    let mut upserts: HashMap<Vec<bool>, Vec<(Key<'_>, Vec<Cell<'_>>)>> = HashMap::new();
    for (key, change) in changes.changes {
        match change {
            Change::Delete => deletes.push(key),
            Change::Upsert(row) => {
                let shape = row.iter().map(|cell| *cell != Cell::Unchanged).collect();
                upserts.entry(shape).or_default().push((key, row));
            }
        }
    }
    let order = &resolved.key_order;
    deletes.sort_unstable_by(|a, b| compare_keys(order, a, b));
    if !deletes.is_empty() {
        let sql = delete_sql(resolved);
        for chunk in deletes.chunks(rows_per_statement) {
            let columns: Vec<Vec<Option<&str>>> = (0..resolved.key.len())
                .map(|k| chunk.iter().map(|key| Some(key[k].as_ref())).collect())
                .collect();
            execute(connection, &sql, &columns).await?;
        }
    }
    for (shape, mut rows) in upserts {
        rows.sort_unstable_by(|(a, _), (b, _)| compare_keys(order, a, b));
        let present: Vec<usize> = (0..shape.len()).filter(|&i| shape[i]).collect();
        let sql = upsert_sql(resolved, &present);
        for chunk in rows.chunks(rows_per_statement) {
            let columns: Vec<Vec<Option<&str>>> = present
                .iter()
                .map(|&i| {
                    chunk
                        .iter()
                        .map(|(_, row)| match &row[i] {
                            Cell::Value(text) => text.as_deref(),
                            Cell::Unchanged => None,
                        })
                        .collect()
                })
                .collect();
            execute(connection, &sql, &columns).await?;
        }
    }
    Ok(())
}

async fn execute(
    connection: &mut Connection,
    sql: &str,
    columns: &[Vec<Option<&str>>],
) -> Result<(), tokio_postgres::Error> {
    let params: Vec<&(dyn ToSql + Sync)> =
        columns.iter().map(|column| column as &(dyn ToSql + Sync)).collect();
    connection.execute(sql, &params).await.map(drop)
}

/// `unnest($1::text[], …) AS u(c0, …)` over `count` columns.
fn unnest(count: usize) -> String {
    let arrays: Vec<String> = (1..=count).map(|i| format!("${i}::text[]")).collect();
    let names: Vec<String> = (0..count).map(|i| format!("c{i}")).collect();
    format!("unnest({}) AS u({})", arrays.join(", "), names.join(", "))
}

fn delete_sql(resolved: &Resolved) -> String {
    let table = &resolved.table;
    let matches: Vec<String> = resolved
        .key
        .iter()
        .enumerate()
        .map(|(i, &column)| {
            let column = &table.columns[column];
            format!("target.{} = u.c{i}::{}", quote(&column.name), column.sql_type)
        })
        .collect();
    format!(
        "DELETE FROM {} AS target USING {} WHERE {}",
        table.name,
        unnest(resolved.key.len()),
        matches.join(" AND ")
    )
}

fn upsert_sql(resolved: &Resolved, present: &[usize]) -> String {
    let table = &resolved.table;
    let names: Vec<String> = present.iter().map(|&i| quote(&table.columns[i].name)).collect();
    let casts: Vec<String> =
        present.iter().enumerate().map(|(n, &i)| format!("u.c{n}::{}", table.columns[i].sql_type)).collect();
    let key: Vec<String> = table.key.iter().map(|k| quote(k)).collect();
    let updates: Vec<String> = present
        .iter()
        .filter(|i| !resolved.key.contains(i))
        .map(|&i| {
            let name = quote(&table.columns[i].name);
            format!("{name} = EXCLUDED.{name}")
        })
        .collect();
    let on_conflict = if updates.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {on_conflict}",
        table.name,
        names.join(", "),
        casts.join(", "),
        unnest(present.len()),
        key.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(order: &[KeyOrder], keys: &[&[&str]]) -> Vec<Vec<String>> {
        let mut keys: Vec<Key<'_>> =
            keys.iter().map(|key| key.iter().map(|part| Cow::Borrowed(*part)).collect()).collect();
        keys.sort_unstable_by(|a, b| compare_keys(order, a, b));
        keys.into_iter().map(|key| key.into_iter().map(Cow::into_owned).collect()).collect()
    }

    #[test]
    fn integer_keys_sort_by_value_and_others_by_their_bytes() {
        assert_eq!(KeyOrder::of("bigint"), KeyOrder::Integer);
        assert_eq!(KeyOrder::of("numeric"), KeyOrder::Bytes);
        assert_eq!(
            sorted(&[KeyOrder::Integer], &[&["10"], &["-3"], &["9"], &["100"], &["0"]]),
            [["-3"], ["0"], ["9"], ["10"], ["100"]]
        );
        assert_eq!(sorted(&[KeyOrder::Bytes], &[&["b"], &["B"], &["ab"]]), [["B"], ["ab"], ["b"]]);
    }

    #[test]
    fn composite_keys_sort_by_their_first_differing_column() {
        let order = [KeyOrder::Bytes, KeyOrder::Integer];
        assert_eq!(
            sorted(&order, &[&["eu", "12"], &["us", "1"], &["eu", "2"]]),
            [["eu", "2"], ["eu", "12"], ["us", "1"]]
        );
    }
}
