//! Event-log mode: every change as one row of `target_table`, keyed by its position, with the
//! Debezium key and value as `jsonb`. A record written again (after a crash between the rows
//! and the commit of offsets) lands on its own row: replaced with `upsert`, else left as it was.

use tokio_postgres::types::ToSql;

use super::connection::Connection;
use super::positions::stream_of;
use super::schema::{DDL_LOCK, TableName, quote};
use crate::event::{ChangeEvent, to_debezium_key, to_debezium_value};

/// Creates the schema and the table when absent.
pub(super) async fn ensure(connection: &Connection, table: &TableName) -> Result<(), tokio_postgres::Error> {
    let sql = format!(
        "BEGIN; {DDL_LOCK}; CREATE SCHEMA IF NOT EXISTS {schema}; \
         CREATE TABLE IF NOT EXISTS {table} (\
           source_topic text NOT NULL, source_partition integer NOT NULL, source_offset bigint NOT NULL, \
           output_index integer NOT NULL DEFAULT 0, \
           event_key jsonb, event_value jsonb, \
           written_at timestamptz NOT NULL DEFAULT now(), \
           PRIMARY KEY (source_topic, source_partition, source_offset, output_index)); COMMIT",
        schema = quote(&table.schema),
    );
    connection.client().batch_execute(&sql).await
}

/// Appends `events`, `rows_per_statement` at a time.
pub(super) async fn append(
    connection: &mut Connection,
    table: &TableName,
    events: &[ChangeEvent],
    upsert: bool,
    rows_per_statement: usize,
) -> Result<(), tokio_postgres::Error> {
    let on_conflict = if upsert {
        "DO UPDATE SET event_key = EXCLUDED.event_key, event_value = EXCLUDED.event_value, written_at = now()"
    } else {
        "DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO {table} (source_topic, source_partition, source_offset, output_index, event_key, event_value) \
         SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::integer[], $5::jsonb[], $6::jsonb[]) \
         ON CONFLICT (source_topic, source_partition, source_offset, output_index) {on_conflict}"
    );
    for chunk in events.chunks(rows_per_statement) {
        let mut topics = Vec::with_capacity(chunk.len());
        let mut partitions = Vec::with_capacity(chunk.len());
        let mut offsets = Vec::with_capacity(chunk.len());
        let mut indexes = Vec::with_capacity(chunk.len());
        let mut keys = Vec::with_capacity(chunk.len());
        let mut values = Vec::with_capacity(chunk.len());
        for event in chunk {
            let ((topic, partition), offset) = stream_of(&event.position);
            topics.push(topic.to_owned());
            partitions.push(partition);
            offsets.push(offset);
            indexes.push(event.output_index as i32);
            keys.push(event.key.as_ref().map(|_| to_debezium_key(event)));
            values.push(to_debezium_value(event));
        }
        let params: [&(dyn ToSql + Sync); 6] = [&topics, &partitions, &offsets, &indexes, &keys, &values];
        connection.execute(&sql, &params).await?;
    }
    Ok(())
}
