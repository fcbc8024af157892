//! What the pipeline asks of Debezium: the connector's name and config, and the topics it
//! writes (`{topic_prefix}.{schema}.{table}` for PostgreSQL, `{topic_prefix}.{db}.{table}` for
//! MySQL).

use std::collections::BTreeMap;

use crate::config::{Config, SnapshotMode, SourceType, ValueConverter};

/// The connector's name: `{topic_prefix}-{pipeline_id}`.
pub fn connector_name(config: &Config) -> String {
    format!("{}-{}", config.pipeline.topic_prefix, config.pipeline.pipeline_id)
}

/// The Kafka topics the connector writes, one per source table.
pub fn source_topics(config: &Config) -> Vec<String> {
    let prefix = &config.pipeline.topic_prefix;
    config.pipeline.source.tables.iter().map(|table| format!("{prefix}.{table}")).collect()
}

/// The connector config. It holds the source password: never log it.
pub fn connector_config(config: &Config) -> BTreeMap<String, String> {
    let source = &config.pipeline.source;
    let kafka = &config.platform.kafka;
    let mut map = BTreeMap::new();
    let mut set = |key: &str, value: String| {
        map.insert(key.to_owned(), value);
    };
    set("topic.prefix", config.pipeline.topic_prefix.clone());
    set("database.hostname", source.host.clone());
    set("database.port", source.port.to_string());
    set("database.user", source.username.clone());
    set("database.password", source.password.expose().to_owned());
    set("table.include.list", source.tables.join(","));
    set("tasks.max", "1".into());
    // Each column's schema names its database type (`JSONB`, `VARCHAR` and its length), so
    // that a sink creating tables maps types faithfully.
    set("column.propagate.source.type", ".*".into());
    // Truncates are changes too: a replica applies them (Debezium skips them by default).
    set("skipped.operations", "none".into());
    let snapshot_mode = match source.snapshot_mode {
        SnapshotMode::Initial => "initial",
        // Debezium 3 calls "never" `no_data`.
        SnapshotMode::Never | SnapshotMode::NoData => "no_data",
        SnapshotMode::WhenNeeded => "when_needed",
    };
    set("snapshot.mode", snapshot_mode.into());
    match source.source_type {
        SourceType::Postgres => {
            set("connector.class", "io.debezium.connector.postgresql.PostgresConnector".into());
            set("plugin.name", "pgoutput".into());
            set("database.dbname", source.database.clone());
            set("slot.name", source.slot_name.clone());
            set("publication.name", source.publication_name.clone());
            set("publication.autocreate.mode", "filtered".into());
        }
        SourceType::Mysql => {
            set("connector.class", "io.debezium.connector.mysql.MySqlConnector".into());
            set("database.server.id", source.mysql_server_id.to_string());
            set("database.include.list", source.database.clone());
            set("schema.history.internal.kafka.bootstrap.servers", kafka.bootstrap_servers.clone());
            set(
                "schema.history.internal.kafka.topic",
                format!("{}.schema-history.{}", config.pipeline.topic_prefix, config.pipeline.pipeline_id),
            );
        }
        SourceType::Mongodb | SourceType::Sqlserver => {}
    }
    let converter = match kafka.value_converter {
        ValueConverter::Json => "org.apache.kafka.connect.json.JsonConverter",
        ValueConverter::Avro => "io.confluent.connect.avro.AvroConverter",
    };
    for side in ["key", "value"] {
        set(&format!("{side}.converter"), converter.into());
        match kafka.value_converter {
            ValueConverter::Json => {
                set(&format!("{side}.converter.schemas.enable"), kafka.schemas_enable.to_string())
            }
            ValueConverter::Avro => {
                set(&format!("{side}.converter.schema.registry.url"), kafka.schema_registry_url.clone())
            }
        }
    }
    set("topic.creation.default.partitions", kafka.topic_num_partitions.to_string());
    set("topic.creation.default.replication.factor", kafka.topic_replication_factor.to_string());
    map
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config() -> Config {
        let pipeline = "pipeline_id: orders\nsource:\n  database: shop\n  password: s3cret\n  tables: [public.orders, public.items]\n";
        let env = |_: &str| None;
        crate::config::load_str(pipeline, None, Path::new("."), &env).expect("valid config")
    }

    #[test]
    fn names_and_topics_follow_the_prefix() {
        let config = config();
        assert_eq!(connector_name(&config), "cdc-orders");
        assert_eq!(source_topics(&config), vec!["cdc.public.orders", "cdc.public.items"]);
    }

    #[test]
    fn postgres_connector_uses_pgoutput_and_json_without_schemas() {
        let map = connector_config(&config());
        assert_eq!(map["connector.class"], "io.debezium.connector.postgresql.PostgresConnector");
        assert_eq!(map["plugin.name"], "pgoutput");
        assert_eq!(map["table.include.list"], "public.orders,public.items");
        assert_eq!(map["slot.name"], "cdc_slot");
        assert_eq!(map["value.converter"], "org.apache.kafka.connect.json.JsonConverter");
        assert_eq!(map["value.converter.schemas.enable"], "false");
        assert_eq!(map["database.password"], "s3cret");
    }
}
