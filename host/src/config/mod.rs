//! Configuration: `pipeline.yaml` and `platform.yaml` in, a checked [`Config`] out.
//!
//! The fields and defaults are the seed's (`cdc_platform`), plus `transforms:`, wasm sinks and
//! `kafka.value_converter`/`schemas_enable`. Loading parses the YAML into a located tree
//! (`node`), substitutes `${VAR}` in its string values (`env`), fills the serde mirror of the
//! files (`raw`, via `de`), then checks it into the spec types here (`validate`). All errors
//! found are returned together, each as `<file>:<line>:<col>: <path>: <message>`.

mod de;
pub mod defaults;
mod env;
mod error;
mod load;
mod node;
mod pipeline;
mod platform;
mod raw;
mod secret;
mod validate;

use std::fmt::Write as _;

pub use self::env::Env;
pub use self::error::{Error, ErrorKind, Errors, Location};
pub use self::load::{load, load_str, load_with_env};
pub use self::pipeline::{
    IcebergSinkConfig, MaintenanceConfig, PipelineConfig, PluginConfig, PluginDirectory, PluginLimits,
    PostgresMode, PostgresSinkConfig, PostgresSslMode, SinkConfig, SinkKind, SinkType, SnapshotMode,
    SourceConfig, SourceType, TransformConfig, WebhookCompression, WebhookSinkConfig, WebhookStatusClass,
    WriteMode, signing_key,
};
pub use self::platform::{
    AuthMechanism, AutoOffsetReset, BasicAuth, ConnectorConfig, DlqConfig, HttpEndpoint, KafkaConfig,
    PlatformConfig, RetryConfig, SecurityProtocol, TransportMode, ValueConverter, WalReaderConfig,
};
pub use self::secret::{REDACTED, Secret};

/// A checked configuration: one pipeline and the platform it runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// `pipeline.yaml`.
    pub pipeline: PipelineConfig,
    /// `platform.yaml` over the built-in defaults.
    pub platform: PlatformConfig,
}

impl Config {
    /// The replication slot the embedded reader uses: `wal_reader.slot_name`, else the source's.
    pub fn slot_name(&self) -> &str {
        (self.platform.wal_reader.slot_name.as_deref()).unwrap_or(&self.pipeline.source.slot_name)
    }

    /// The publication the embedded reader uses: `wal_reader.publication_name`, else the source's.
    pub fn publication_name(&self) -> &str {
        (self.platform.wal_reader.publication_name.as_deref())
            .unwrap_or(&self.pipeline.source.publication_name)
    }

    /// A short human summary for `cdc validate`; secrets are never shown.
    pub fn summary(&self) -> String {
        let (p, s, k) = (&self.pipeline, &self.pipeline.source, &self.platform.kafka);
        let mut out = String::new();
        let _ = writeln!(out, "pipeline {} (topic prefix {})", p.pipeline_id, p.topic_prefix);
        let tables = if s.tables.is_empty() { "all tables".to_owned() } else { s.tables.join(", ") };
        let _ = writeln!(
            out,
            "source: {} {}:{}/{} as {}, {tables}",
            s.source_type.as_str(),
            s.host,
            s.port,
            s.database,
            s.username
        );
        match self.platform.transport_mode {
            TransportMode::Kafka => {
                let _ = writeln!(
                    out,
                    "transport: kafka {} ({} values)",
                    k.bootstrap_servers,
                    k.value_converter.as_str()
                );
            }
            TransportMode::Embedded => {
                let _ = writeln!(
                    out,
                    "transport: embedded (slot {}, publication {})",
                    self.slot_name(),
                    self.publication_name()
                );
            }
        }
        let _ = writeln!(out, "transforms:{}", if p.transforms.is_empty() { " none" } else { "" });
        for t in &p.transforms {
            let _ = writeln!(out, "  {}: {}", t.name, t.plugin.path.display());
        }
        let _ = writeln!(out, "sinks:{}", if p.sinks.is_empty() { " none" } else { "" });
        for sink in &p.sinks {
            let state = if sink.enabled { "enabled" } else { "disabled" };
            let target = match &sink.kind {
                SinkKind::Webhook(w) => format!("{} {}", w.method, w.url),
                SinkKind::Postgres(pg) => match pg.mode {
                    PostgresMode::EventLog => {
                        format!("{}:{}/{} table {}", pg.host, pg.port, pg.database, pg.target_table)
                    }
                    PostgresMode::Replica => {
                        format!("{}:{}/{} replica in {}", pg.host, pg.port, pg.database, pg.target_schema)
                    }
                },
                SinkKind::Iceberg(i) => {
                    format!(
                        "{}.{} in {} ({})",
                        i.table_namespace,
                        i.table_name,
                        i.warehouse,
                        i.write_mode.as_str()
                    )
                }
                SinkKind::Wasm(plugin) => plugin.path.display().to_string(),
            };
            let _ = writeln!(out, "  {}: {} {state}, {target}", sink.sink_id, sink.sink_type().as_str());
        }
        if self.platform.health_enabled {
            let _ = write!(out, "health: port {}", self.platform.health_port);
        } else {
            let _ = write!(out, "health: disabled");
        }
        out
    }
}

#[cfg(test)]
mod tests;
