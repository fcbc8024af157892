//! The source database's replication objects seen by an operator: the publication created
//! ahead of a run (`cdc deploy`), how the pipeline's slot stands (`cdc health`), and removing
//! the slot and the publication (`cdc undeploy --drop-slot`). Debezium's slot and the embedded
//! reader's are the same kind of object.

use anyhow::{Context, bail};

use crate::config::{Config, SourceType, TransportMode};

use super::EmbeddedSettings;
use super::protocol::quote_identifier;
use super::reader::{STATE_TABLE, ensure_publication, query_client};

/// The slot and publication of a PostgreSQL source: Debezium's in Kafka mode, the embedded
/// reader's otherwise.
pub fn source_slot(config: &Config) -> Option<EmbeddedSettings> {
    if config.pipeline.source.source_type != SourceType::Postgres {
        return None;
    }
    let mut settings = EmbeddedSettings::from_config(config);
    if config.platform.transport_mode == TransportMode::Kafka {
        settings.slot = config.pipeline.source.slot_name.clone();
        settings.publication = config.pipeline.source.publication_name.clone();
    }
    Some(settings)
}

/// Creates the publication over the configured tables when absent. The slot is left to the
/// first run: it is created with the snapshot that run reads.
pub async fn create_publication(settings: &EmbeddedSettings) -> anyhow::Result<()> {
    let client = query_client(settings).await.with_context(|| describe(settings))?;
    ensure_publication(&client, settings).await
}

/// How the pipeline's slot stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    /// Whether a connection streams from it now.
    pub active: bool,
    /// WAL the server keeps for it: the current WAL position less what the slot confirmed.
    pub retained_bytes: i64,
}

/// The slot of `settings`, or `None` when it does not exist.
pub async fn slot_state(settings: &EmbeddedSettings) -> anyhow::Result<Option<SlotState>> {
    let client = query_client(settings).await.with_context(|| describe(settings))?;
    let row = client
        .query_opt(
            "SELECT active, COALESCE((pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, 0) \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&settings.slot],
        )
        .await
        .with_context(|| format!("cannot read the slot `{}`", settings.slot))?;
    Ok(row.map(|row| SlotState { active: row.get(0), retained_bytes: row.get(1) }))
}

/// What [`drop_slot_and_publication`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The slot existed and was dropped.
    pub slot: bool,
    /// The publication existed and was dropped.
    pub publication: bool,
}

/// Drops the slot and the publication of `settings` (and the embedded reader's note that the
/// slot's snapshot was read). A slot in use is refused: the pipeline must stop first.
pub async fn drop_slot_and_publication(settings: &EmbeddedSettings) -> anyhow::Result<Dropped> {
    let client = query_client(settings).await.with_context(|| describe(settings))?;
    let slot = &settings.slot;
    let holder: Option<Option<i32>> = client
        .query_opt("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", &[slot])
        .await
        .with_context(|| format!("cannot read the slot `{slot}`"))?
        .map(|row| row.get(0));
    if let Some(Some(pid)) = holder {
        bail!("the slot `{slot}` is in use (by server process {pid}): stop the pipeline first");
    }
    let mut dropped = Dropped::default();
    if holder.is_some() {
        client
            .execute("SELECT pg_drop_replication_slot($1)", &[slot])
            .await
            .with_context(|| format!("cannot drop the slot `{slot}`"))?;
        dropped.slot = true;
    }
    let publication = &settings.publication;
    let exists = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[publication])
        .await
        .with_context(|| format!("cannot read the publication `{publication}`"))?
        .is_some();
    if exists {
        client
            .batch_execute(&format!("DROP PUBLICATION {}", quote_identifier(publication)))
            .await
            .with_context(|| format!("cannot drop the publication `{publication}`"))?;
        dropped.publication = true;
    }
    let state_table = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&STATE_TABLE])
        .await
        .context("cannot look for the embedded state table")?;
    if state_table.get::<_, bool>(0) {
        client
            .execute(&format!("DELETE FROM {STATE_TABLE} WHERE slot_name = $1"), &[slot])
            .await
            .context("cannot clear the embedded state of the slot")?;
    }
    Ok(dropped)
}

fn describe(settings: &EmbeddedSettings) -> String {
    let connect = &settings.connect;
    format!("cannot connect to the source database {}:{}/{}", connect.host, connect.port, connect.database)
}
