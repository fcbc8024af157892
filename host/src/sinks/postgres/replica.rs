//! Replica mode: one target table per source table holding the source's current rows.
//!
//! A write is reduced first, per table, to the last change per key: an upsert of the newest row
//! (unchanged TOAST columns filled from an earlier change of the same key in the write, else
//! left out so the target keeps them) or a delete; a key change becomes a delete of the old key
//! and an upsert of the new; a truncate drops what came before it. Then each table gets at most
//! a truncate, a bulk delete and one bulk upsert per set of columns present, each column one
//! array parameter (binary where that spares the server parsing, else text; see
//! [`super::binary`]) cast by the server to the column's type. Rows go in key order:
//! PostgreSQL then walks the key's index and the table's pages in order (a batch of 10,000
//! upserts in random order cost it 15–25% more, measured here), and two such statements lock
//! the rows they share in the same order.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::binary::Array;
use super::connection::{BuildError, Connection, Prepare};
use super::literal;
use super::schema::{self, DDL_LOCK, TableName, TargetTable, quote};
use super::statement::Step;
use crate::event::{ChangeEvent, Column, Op, Row, TableId, Value};

/// The statements of a write.
pub(super) struct Statements {
    /// In the order they run.
    pub steps: Vec<Step>,
    /// The event that cannot be written (no key, a type with no PostgreSQL form, …), by its
    /// index in the write, and why; the statements cover the events before it.
    pub refused: Option<(usize, String)>,
}

/// Why an event's target table could not be resolved.
enum Unresolved {
    /// The event cannot be written there.
    Refused(String),
    /// The database failed, or was not to be asked.
    Build(BuildError),
}

impl From<tokio_postgres::Error> for Unresolved {
    fn from(error: tokio_postgres::Error) -> Self {
        Unresolved::Build(BuildError::Database(error))
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

/// A column's value in a change, or not sent (unchanged TOAST, or a column the source row
/// does not have), which leaves the target's value alone.
#[derive(Debug, Clone, Copy)]
enum Cell<'e> {
    Value(&'e Value),
    Unchanged,
}

type Key<'e> = Vec<KeyPart<'e>>;

/// A key column's value: integers by value, so that keys sort as their index does; anything
/// else as its text, sorted by its bytes (close enough to the index's order for locality).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyPart<'e> {
    Int(i64),
    Text(Cow<'e, str>),
}

impl<'e> KeyPart<'e> {
    /// `None` for NULL: a key has no NULL.
    fn of(value: &'e Value) -> Option<Self> {
        match value {
            Value::Int(int) => Some(KeyPart::Int(*int)),
            value => literal::text(value).map(KeyPart::Text),
        }
    }
}

enum Change<'e> {
    Upsert(Vec<Cell<'e>>),
    /// A delete, with the values of the key columns.
    Delete(Vec<&'e Value>),
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

    /// The statements that apply `events`, run inside the caller's transaction; resolving the
    /// tables (DDL included) runs on the connection now, unless `prepare` allows only what was
    /// resolved before. When an event cannot be written, the statements cover the events
    /// before it, and `refused` names it.
    pub async fn build(
        &mut self,
        connection: &mut Connection,
        events: &[ChangeEvent],
        rows_per_statement: usize,
        prepare: Prepare,
    ) -> Result<Statements, BuildError> {
        let mut changes: HashMap<TableName, TableChanges<'_>> = HashMap::new();
        let mut refused = None;
        for (index, event) in events.iter().enumerate() {
            if event.op == Op::Truncate && !self.tables.contains_key(&event.table) {
                if prepare == Prepare::CachedOnly {
                    return Err(BuildError::NeedsDatabase);
                }
                if TargetTable::load(connection.client(), &self.mapping.target(&event.table)).await?.is_none()
                {
                    // Nothing to empty: the table was never written.
                    continue;
                }
            }
            let result = match self.resolve(connection, event, prepare).await {
                Ok(table) => reduce(&mut changes, table, event),
                Err(Unresolved::Refused(reason)) => Err(reason),
                Err(Unresolved::Build(error)) => return Err(error),
            };
            if let Err(reason) = result {
                refused = Some((index, format!("{}: {reason}", event.table)));
                break;
            }
        }
        let mut steps = Vec::new();
        for table_changes in changes.into_values() {
            table_steps(connection, table_changes, rows_per_statement, prepare, &mut steps).await?;
        }
        Ok(Statements { steps, refused })
    }

    /// The target table of an event: read from the catalog, created from the source schema
    /// when absent, and widened by the columns the source gained.
    async fn resolve(
        &mut self,
        connection: &mut Connection,
        event: &ChangeEvent,
        prepare: Prepare,
    ) -> Result<Arc<Resolved>, Unresolved> {
        let refuse = Unresolved::Refused;
        if let Some(resolved) = self.tables.get(&event.table)
            && resolved.covers(event.columns.as_ref())
        {
            return Ok(resolved.clone());
        }
        if prepare == Prepare::CachedOnly {
            return Err(Unresolved::Build(BuildError::NeedsDatabase));
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
        let key = table.key.iter().map(|k| index[k]).collect();
        let resolved = Arc::new(Resolved { table, index, key, schema: event.columns.clone() });
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
            let (key, values) = row_key(&table, row)?;
            entry.changes.insert(key, Change::Delete(values));
        }
        Op::Create | Op::Read | Op::Update => {
            let after = event.after.as_ref().ok_or("a change with no after row")?;
            let mut row = cells(&table, after)?;
            let key = key_of(&table, &row)?;
            if let Some(before) = &event.before
                && let Ok((old_key, old_values)) = row_key(&table, before)
                && old_key != key
            {
                entry.changes.insert(old_key, Change::Delete(old_values));
            }
            if let Some(Change::Upsert(earlier)) = entry.changes.get(&key) {
                for (cell, earlier) in row.iter_mut().zip(earlier) {
                    if matches!(cell, Cell::Unchanged) {
                        *cell = *earlier;
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
            value => Cell::Value(value),
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
            Cell::Value(value) => KeyPart::of(value).ok_or_else(|| no_key_value(table, index)),
            Cell::Unchanged => Err(no_key_value(table, index)),
        })
        .collect()
}

/// The key of a row read from its key columns alone (an old row, or a message key), with the
/// values it was read from.
fn row_key<'e>(table: &Resolved, row: &'e Row) -> Result<(Key<'e>, Vec<&'e Value>), String> {
    let mut key = Vec::with_capacity(table.key.len());
    let mut values = Vec::with_capacity(table.key.len());
    for &index in &table.key {
        let value = row.get(&table.table.columns[index].name).ok_or_else(|| no_key_value(table, index))?;
        key.push(KeyPart::of(value).ok_or_else(|| no_key_value(table, index))?);
        values.push(value);
    }
    Ok((key, values))
}

fn no_key_value(table: &Resolved, index: usize) -> String {
    format!("key column `{}` has no value", table.table.columns[index].name)
}

/// The statements of one table's net changes: truncate, deletes, then upserts by column set.
async fn table_steps(
    connection: &mut Connection,
    changes: TableChanges<'_>,
    rows_per_statement: usize,
    prepare: Prepare,
    steps: &mut Vec<Step>,
) -> Result<(), BuildError> {
    let resolved = &changes.table;
    let table = &resolved.table;
    if changes.truncate {
        steps.push(Step::Sql(format!("TRUNCATE {}", table.name)));
    }
    let mut deletes: Vec<(Key<'_>, Vec<&Value>)> = Vec::new();
    let mut upserts: HashMap<Vec<bool>, Vec<(Key<'_>, Vec<Cell<'_>>)>> = HashMap::new();
    for (key, change) in changes.changes {
        match change {
            Change::Delete(values) => deletes.push((key, values)),
            Change::Upsert(row) => {
                let shape = row.iter().map(|cell| matches!(cell, Cell::Value(_))).collect();
                upserts.entry(shape).or_default().push((key, row));
            }
        }
    }
    deletes.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    for chunk in deletes.chunks(rows_per_statement) {
        let arrays: Vec<Array<'_>> = resolved
            .key
            .iter()
            .enumerate()
            .map(|(k, &column)| {
                let values: Vec<&Value> = chunk.iter().map(|(_, values)| values[k]).collect();
                Array::of(&table.columns[column].sql_type, &values)
            })
            .collect();
        steps.push(prepared(connection, &delete_sql(resolved, &arrays), &arrays, prepare).await?);
    }
    for (shape, mut rows) in upserts {
        rows.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        let present: Vec<usize> = (0..shape.len()).filter(|&i| shape[i]).collect();
        for chunk in rows.chunks(rows_per_statement) {
            let arrays: Vec<Array<'_>> = present
                .iter()
                .map(|&i| {
                    let values: Vec<&Value> = chunk
                        .iter()
                        .map(|(_, row)| match row[i] {
                            Cell::Value(value) => value,
                            Cell::Unchanged => unreachable!("a shape's columns are present in its rows"),
                        })
                        .collect();
                    Array::of(&table.columns[i].sql_type, &values)
                })
                .collect();
            steps.push(
                prepared(connection, &upsert_sql(resolved, &present, &arrays), &arrays, prepare).await?,
            );
        }
    }
    Ok(())
}

/// `sql` prepared, with `arrays` as its parameters.
async fn prepared(
    connection: &mut Connection,
    sql: &str,
    arrays: &[Array<'_>],
    prepare: Prepare,
) -> Result<Step, BuildError> {
    let statement = connection.prepared(sql, prepare).await?;
    Ok(Step::Prepared { statement, params: arrays.iter().map(Array::encode).collect() })
}

/// `unnest($1::bigint[], $2::text[], …) AS u(c0, c1, …)` over the arrays of a statement.
fn unnest(arrays: &[Array<'_>]) -> String {
    let params: Vec<String> =
        arrays.iter().enumerate().map(|(i, array)| format!("${}::{}", i + 1, array.sql_type())).collect();
    let names: Vec<String> = (0..arrays.len()).map(|i| format!("c{i}")).collect();
    format!("unnest({}) AS u({})", params.join(", "), names.join(", "))
}

fn delete_sql(resolved: &Resolved, arrays: &[Array<'_>]) -> String {
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
    format!("DELETE FROM {} AS target USING {} WHERE {}", table.name, unnest(arrays), matches.join(" AND "))
}

fn upsert_sql(resolved: &Resolved, present: &[usize], arrays: &[Array<'_>]) -> String {
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
        unnest(arrays),
        key.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(keys: &[Key<'static>]) -> Vec<Key<'static>> {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys
    }

    fn text(text: &'static str) -> KeyPart<'static> {
        KeyPart::Text(Cow::Borrowed(text))
    }

    #[test]
    fn integer_keys_sort_by_value_and_others_by_their_bytes() {
        let ints = [-3, 100, 9, 0, 10].map(|int| vec![KeyPart::Int(int)]);
        assert_eq!(sorted(&ints), [-3, 0, 9, 10, 100].map(|int| vec![KeyPart::Int(int)]));
        let texts = ["b", "B", "ab"].map(|t| vec![text(t)]);
        assert_eq!(sorted(&texts), ["B", "ab", "b"].map(|t| vec![text(t)]));
        assert_eq!(KeyPart::of(&Value::Int(-3)), Some(KeyPart::Int(-3)));
        assert_eq!(KeyPart::of(&Value::Uuid("0a".into())), Some(text("0a")));
        assert_eq!(KeyPart::of(&Value::Null), None);
    }

    #[test]
    fn composite_keys_sort_by_their_first_differing_column() {
        let keys = [
            vec![text("eu"), KeyPart::Int(12)],
            vec![text("us"), KeyPart::Int(1)],
            vec![text("eu"), KeyPart::Int(2)],
        ];
        let expected = [
            vec![text("eu"), KeyPart::Int(2)],
            vec![text("eu"), KeyPart::Int(12)],
            vec![text("us"), KeyPart::Int(1)],
        ];
        assert_eq!(sorted(&keys), expected);
    }
}
