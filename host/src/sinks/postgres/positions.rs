//! The positions the sink holds: per (pipeline, sink, topic, partition) the next position not
//! yet written (a Kafka offset; for a change read from the WAL, the commit LSN of its
//! transaction and its index in it), stored in the target database in the same transaction as the rows. A record
//! below it is already in the target and is skipped, which makes delivery exactly-once: a crash
//! at any moment leaves rows and position either both written or both not.

use tokio_postgres::Client;

use super::connection::{BuildError, Connection, Prepare};
use super::schema::{DDL_LOCK, TableName, quote};
use super::statement::{Param, Step};
use crate::sinks::positions::Mark;

/// The table holding positions, in the sink's schema.
pub(super) const TABLE: &str = "cdc_sink_positions";

/// The positions table of one sink of one pipeline.
#[derive(Debug, Clone)]
pub(super) struct PositionTable {
    name: TableName,
    pipeline_id: String,
    sink_id: String,
}

impl PositionTable {
    pub fn new(schema: &str, pipeline_id: &str, sink_id: &str) -> Self {
        PositionTable {
            name: TableName { schema: schema.to_owned(), table: TABLE.to_owned() },
            pipeline_id: pipeline_id.to_owned(),
            sink_id: sink_id.to_owned(),
        }
    }

    /// Creates the schema and the table when absent.
    pub async fn ensure(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        let sql = format!(
            "BEGIN; {DDL_LOCK}; CREATE SCHEMA IF NOT EXISTS {schema}; \
             CREATE TABLE IF NOT EXISTS {name} (\
               pipeline_id text NOT NULL, sink_id text NOT NULL, topic text NOT NULL, \
               partition integer NOT NULL, next_offset bigint NOT NULL, \
               updated_at timestamptz NOT NULL DEFAULT now(), \
               PRIMARY KEY (pipeline_id, sink_id, topic, partition)); \
             ALTER TABLE {name} ADD COLUMN IF NOT EXISTS next_index bigint NOT NULL DEFAULT 0; COMMIT",
            schema = quote(&self.name.schema),
            name = self.name,
        );
        client.batch_execute(&sql).await
    }

    /// The next position held for a stream; `None` when the sink never wrote to it.
    pub async fn load(
        &self,
        connection: &mut Connection,
        stream: (&str, i32),
    ) -> Result<Option<Mark>, tokio_postgres::Error> {
        let sql = format!(
            "SELECT next_offset, next_index FROM {} \
             WHERE pipeline_id = $1 AND sink_id = $2 AND topic = $3 AND partition = $4",
            self.name
        );
        let rows = connection
            .client()
            .query(&sql, &[&self.pipeline_id, &self.sink_id, &stream.0, &stream.1])
            .await?;
        Ok(rows.first().map(|row| (row.get(0), row.get(1))))
    }

    /// The next position of every Kafka partition the sink wrote to; none when the table does
    /// not exist yet.
    pub async fn load_all(
        &self,
        client: &Client,
    ) -> Result<Vec<((String, i32), i64)>, tokio_postgres::Error> {
        let sql = format!(
            "SELECT topic, partition, next_offset FROM {} WHERE pipeline_id = $1 AND sink_id = $2 AND partition >= 0",
            self.name
        );
        match client.query(&sql, &[&self.pipeline_id, &self.sink_id]).await {
            Ok(rows) => Ok(rows.iter().map(|row| ((row.get(0), row.get(1)), row.get(2))).collect()),
            Err(error) if error.code().is_some_and(|code| code.code() == "42P01") => Ok(Vec::new()),
            Err(error) => Err(error),
        }
    }

    /// The statements that store the next position of each stream.
    pub async fn stores(
        &self,
        connection: &mut Connection,
        positions: impl IntoIterator<Item = ((&str, i32), Mark)>,
        prepare: Prepare,
    ) -> Result<Vec<Step>, BuildError> {
        let sql = format!(
            "INSERT INTO {} (pipeline_id, sink_id, topic, partition, next_offset, next_index) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (pipeline_id, sink_id, topic, partition) \
             DO UPDATE SET next_offset = EXCLUDED.next_offset, next_index = EXCLUDED.next_index, updated_at = now()",
            self.name
        );
        let statement = connection.prepared(&sql, prepare).await?;
        let stores = positions.into_iter().map(|((topic, partition), (offset, index))| {
            let params: Vec<Param> = vec![
                Box::new(self.pipeline_id.clone()),
                Box::new(self.sink_id.clone()),
                Box::new(topic.to_owned()),
                Box::new(partition),
                Box::new(offset),
                Box::new(index),
            ];
            Step::Prepared { statement: statement.clone(), params }
        });
        Ok(stores.collect())
    }

    /// Stores the next position of each stream in the caller's transaction and commits it.
    ///
    /// The statements and the `COMMIT` are sent together, in one round trip: a store that
    /// fails aborts the transaction, and PostgreSQL then ends it at the `COMMIT` without
    /// committing anything.
    pub async fn store_and_commit(
        &self,
        connection: &mut Connection,
        positions: impl IntoIterator<Item = ((&str, i32), Mark)>,
    ) -> Result<(), tokio_postgres::Error> {
        let stores =
            self.stores(connection, positions, Prepare::AsNeeded).await.map_err(BuildError::into_database)?;
        let client = connection.client();
        futures::future::try_join(Step::run_together(&stores, client), client.batch_execute("COMMIT"))
            .await
            .map(drop)
    }
}
