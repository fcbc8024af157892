//! What the pipeline asks of Debezium: the connector's name and config, and the topics it
//! writes (`{topic_prefix}.{schema}.{table}` for PostgreSQL, `{topic_prefix}.{db}.{table}` for
//! MySQL).

use std::collections::BTreeMap;

use crate::config::{AuthMechanism, Config, KafkaConfig, SnapshotMode, SourceType, ValueConverter};

/// The connector's name: `{topic_prefix}-{pipeline_id}`.
pub fn connector_name(config: &Config) -> String {
    format!("{}-{}", config.pipeline.topic_prefix, config.pipeline.pipeline_id)
}

/// The Kafka topics the connector writes, one per source table.
pub fn source_topics(config: &Config) -> Vec<String> {
    let prefix = &config.pipeline.topic_prefix;
    config.pipeline.source.tables.iter().map(|table| format!("{prefix}.{table}")).collect()
}

/// The connector config. It holds the source password (and, with a secured broker or
/// registry, their credentials): never log it.
///
/// # Errors
///
/// When a certificate or key file of `kafka:` that a MySQL connector's schema history needs
/// cannot be read.
pub fn connector_config(config: &Config) -> Result<BTreeMap<String, String>, FileError> {
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
    // A retriable error (the database unreachable) is retried this many times, then the task
    // fails where `/readyz` and the host's restarts see it.
    set("errors.max.retries", config.platform.connector.task_max_retries.to_string());
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
            // The schema history is read and written by Kafka clients inside the connector,
            // which need the pipeline's broker security too.
            for (key, value) in java_client_security(kafka)? {
                for client in ["producer", "consumer"] {
                    set(&format!("schema.history.internal.{client}.{key}"), value.clone());
                }
            }
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
                // The registry as the Connect workers reach it, with the host's credentials.
                let url = config.platform.connector.schema_registry_url.as_ref();
                let url = url.unwrap_or(&kafka.schema_registry.url);
                set(&format!("{side}.converter.schema.registry.url"), url.clone());
                if let Some(auth) = &kafka.schema_registry.basic_auth {
                    set(&format!("{side}.converter.basic.auth.credentials.source"), "USER_INFO".into());
                    let user_info = format!("{}:{}", auth.username, auth.password.expose());
                    set(&format!("{side}.converter.basic.auth.user.info"), user_info);
                }
            }
        }
    }
    set("topic.creation.default.partitions", kafka.topic_num_partitions.to_string());
    set("topic.creation.default.replication.factor", kafka.topic_replication_factor.to_string());
    Ok(map)
}

/// A file of the Kafka security settings that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path} (kafka.{field}) for the connector's schema history")]
pub struct FileError {
    /// The file.
    pub path: String,
    /// The `kafka:` field naming it.
    pub field: &'static str,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// The pipeline's broker security as Java Kafka client properties. Certificates and keys are
/// passed inline in PEM form: the files named in `platform.yaml` are on the host, not on the
/// Connect workers.
fn java_client_security(kafka: &KafkaConfig) -> Result<Vec<(String, String)>, FileError> {
    let read = |path: &String, field| {
        std::fs::read_to_string(path).map_err(|source| FileError { path: path.clone(), field, source })
    };
    let mut properties = vec![("security.protocol".to_owned(), kafka.security_protocol.as_str().to_owned())];
    let login_module = match kafka.auth_mechanism {
        AuthMechanism::SaslPlain => {
            Some(("PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule"))
        }
        AuthMechanism::SaslScram256 => {
            Some(("SCRAM-SHA-256", "org.apache.kafka.common.security.scram.ScramLoginModule"))
        }
        AuthMechanism::SaslScram512 => {
            Some(("SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule"))
        }
        // Refused by the config's validation.
        AuthMechanism::None | AuthMechanism::SaslIam | AuthMechanism::SaslOauthbearer => None,
    };
    if let (Some((mechanism, module)), Some(username), Some(password)) =
        (login_module, &kafka.sasl_username, &kafka.sasl_password)
    {
        let quoted = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
        let jaas = format!(
            "{module} required username={} password={};",
            quoted(username),
            quoted(password.expose())
        );
        properties.push(("sasl.mechanism".to_owned(), mechanism.to_owned()));
        properties.push(("sasl.jaas.config".to_owned(), jaas));
    }
    if let Some(ca) = &kafka.ssl_ca_location {
        properties.push(("ssl.truststore.type".to_owned(), "PEM".to_owned()));
        properties.push(("ssl.truststore.certificates".to_owned(), read(ca, "ssl_ca_location")?));
    }
    if let (Some(certificate), Some(key)) = (&kafka.ssl_certificate_location, &kafka.ssl_key_location) {
        properties.push(("ssl.keystore.type".to_owned(), "PEM".to_owned()));
        properties.push((
            "ssl.keystore.certificate.chain".to_owned(),
            read(certificate, "ssl_certificate_location")?,
        ));
        properties.push(("ssl.keystore.key".to_owned(), read(key, "ssl_key_location")?));
    }
    Ok(properties)
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
        let map = connector_config(&config()).unwrap();
        assert_eq!(map["connector.class"], "io.debezium.connector.postgresql.PostgresConnector");
        assert_eq!(map["plugin.name"], "pgoutput");
        assert_eq!(map["table.include.list"], "public.orders,public.items");
        assert_eq!(map["slot.name"], "cdc_slot");
        assert_eq!(map["value.converter"], "org.apache.kafka.connect.json.JsonConverter");
        assert_eq!(map["value.converter.schemas.enable"], "false");
        assert_eq!(map["database.password"], "s3cret");
    }

    #[test]
    fn a_mysql_schema_history_and_avro_converters_get_the_platforms_security() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let pipeline = "pipeline_id: orders\nsource:\n  source_type: mysql\n  database: shop\n  password: s3cret\n  tables: [shop.orders]\n";
        let platform = format!(
            "kafka:\n  security_protocol: sasl_ssl\n  auth_mechanism: sasl_scram512\n  sasl_username: cdc\n  sasl_password: 'pa\"ss'\n  ssl_ca_location: {}\n  value_converter: avro\n  schema_registry_url: https://registry.example:8081\n  schema_registry_username: reg\n  schema_registry_password: regpw\nconnector:\n  schema_registry_url: http://registry.internal:8081\n",
            ca.display()
        );
        let env = |_: &str| None;
        let config =
            crate::config::load_str(pipeline, Some(&platform), Path::new("."), &env).expect("valid config");
        let map = connector_config(&config).unwrap();
        for client in ["producer", "consumer"] {
            let key = |name: &str| format!("schema.history.internal.{client}.{name}");
            assert_eq!(map[&key("security.protocol")], "SASL_SSL");
            assert_eq!(map[&key("sasl.mechanism")], "SCRAM-SHA-512");
            assert_eq!(
                map[&key("sasl.jaas.config")],
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="cdc" password="pa\"ss";"#
            );
            assert_eq!(map[&key("ssl.truststore.type")], "PEM");
            assert!(map[&key("ssl.truststore.certificates")].starts_with("-----BEGIN CERTIFICATE-----"));
        }
        assert_eq!(map["value.converter.schema.registry.url"], "http://registry.internal:8081");
        assert_eq!(map["value.converter.basic.auth.credentials.source"], "USER_INFO");
        assert_eq!(map["key.converter.basic.auth.user.info"], "reg:regpw");
    }
}
