//! Event-log mode: every change as one row of `target_table`, keyed by its position (a Kafka
//! topic, partition and offset; for a change read from the WAL its table's topic, partition
//! -1, the commit LSN as offset and its index in the transaction), with the Debezium key and
//! value as `jsonb`. A record written again (after a crash between the rows
//! and the commit of offsets) lands on its own row: replaced with `upsert`, else left as it was.

use super::connection::{BuildError, Connection, Prepare};
use super::schema::{DDL_LOCK, TableName, quote};
use super::statement::{Param, Step};
use crate::event::{ChangeEvent, to_debezium_key, to_debezium_value};
use crate::sinks::positions::stream_of;

/// Creates the schema and the table when absent. A table from before `source_index` gets the
/// column, and its key is widened to it.
pub(super) async fn ensure(connection: &Connection, table: &TableName) -> Result<(), tokio_postgres::Error> {
    let key = "source_topic, source_partition, source_offset, source_index, output_index";
    let sql = format!(
        "BEGIN; {DDL_LOCK}; CREATE SCHEMA IF NOT EXISTS {schema}; \
         CREATE TABLE IF NOT EXISTS {table} (\
           source_topic text NOT NULL, source_partition integer NOT NULL, source_offset bigint NOT NULL, \
           source_index bigint NOT NULL DEFAULT 0, output_index integer NOT NULL DEFAULT 0, \
           event_key jsonb, event_value jsonb, \
           written_at timestamptz NOT NULL DEFAULT now(), \
           PRIMARY KEY ({key})); COMMIT",
        schema = quote(&table.schema),
    );
    connection.client().batch_execute(&sql).await?;
    let widened = connection
        .client()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::text::regclass \
             AND attname = 'source_index' AND NOT attisdropped)",
            &[&table.to_string()],
        )
        .await?
        .get::<_, bool>(0);
    if !widened {
        let constraint: String = connection
            .client()
            .query_one(
                "SELECT conname::text FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype = 'p'",
                &[&table.to_string()],
            )
            .await?
            .get(0);
        let sql = format!(
            "BEGIN; {DDL_LOCK}; ALTER TABLE {table} ADD COLUMN IF NOT EXISTS source_index bigint NOT NULL DEFAULT 0, \
             DROP CONSTRAINT {constraint}, ADD PRIMARY KEY ({key}); COMMIT",
            constraint = quote(&constraint),
        );
        connection.client().batch_execute(&sql).await?;
    }
    Ok(())
}

/// The statements that append `events`, `rows_per_statement` at a time.
pub(super) async fn append(
    connection: &mut Connection,
    table: &TableName,
    events: &[ChangeEvent],
    upsert: bool,
    rows_per_statement: usize,
    prepare: Prepare,
) -> Result<Vec<Step>, BuildError> {
    let on_conflict = if upsert {
        "DO UPDATE SET event_key = EXCLUDED.event_key, event_value = EXCLUDED.event_value, written_at = now()"
    } else {
        "DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO {table} (source_topic, source_partition, source_offset, source_index, output_index, \
           event_key, event_value) \
         SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::integer[], $6::jsonb[], \
           $7::jsonb[]) \
         ON CONFLICT (source_topic, source_partition, source_offset, source_index, output_index) {on_conflict}"
    );
    let statement = connection.prepared(&sql, prepare).await?;
    let mut steps = Vec::new();
    for chunk in events.chunks(rows_per_statement) {
        let mut topics = Vec::with_capacity(chunk.len());
        let mut partitions = Vec::with_capacity(chunk.len());
        let mut offsets = Vec::with_capacity(chunk.len());
        let mut source_indexes = Vec::with_capacity(chunk.len());
        let mut indexes = Vec::with_capacity(chunk.len());
        let mut keys = Vec::with_capacity(chunk.len());
        let mut values = Vec::with_capacity(chunk.len());
        for event in chunk {
            let ((topic, partition), (offset, source_index)) = stream_of(&event.position);
            topics.push(topic.to_owned());
            partitions.push(partition);
            offsets.push(offset);
            source_indexes.push(source_index);
            indexes.push(event.output_index as i32);
            keys.push(event.key.as_ref().map(|_| to_debezium_key(event)));
            values.push(to_debezium_value(event));
        }
        let params: Vec<Param> = vec![
            Box::new(topics),
            Box::new(partitions),
            Box::new(offsets),
            Box::new(source_indexes),
            Box::new(indexes),
            Box::new(keys),
            Box::new(values),
        ];
        steps.push(Step::Prepared { statement: statement.clone(), params });
    }
    Ok(steps)
}
