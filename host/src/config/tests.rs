//! Whole-config tests: defaults pinned to the seed, fixture files, merging and redaction.
//!
//! Fixtures live in `tests/fixtures/config/`: `valid/*.yaml` must load, and each
//! `invalid/<case>.yaml` must fail with exactly the text of `invalid/<case>.err` (file names
//! relative to `invalid/`). An `invalid/platform_<case>.yaml` is loaded as the platform file
//! beside `valid/minimal.yaml`. Set `CDC_BLESS_CONFIG=1` to rewrite the `.err` files.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const SECRETS: &[&str] = &["pg-pass#: 'x'\n2", "s3-secret-key", "AKIA-test-id"];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config")
}

fn test_env(name: &str) -> Option<String> {
    let vars = HashMap::from([
        ("CDC_SOURCE_HOST", "db.internal"),
        ("CDC_SOURCE_DB", "orders"),
        ("CDC_SOURCE_USER", "cdc"),
        ("CDC_SOURCE_PASSWORD", SECRETS[0]),
        ("ICEBERG_CATALOG_URI", "http://catalog:8181"),
        ("ICEBERG_WAREHOUSE", "s3://warehouse"),
        ("S3_ENDPOINT", "http://minio:9000"),
        ("S3_ACCESS_KEY_ID", SECRETS[2]),
        ("S3_SECRET_ACCESS_KEY", SECRETS[1]),
    ]);
    vars.get(name).map(|v| (*v).to_owned())
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load_text(pipeline: &str, platform: Option<&str>) -> Result<Config, Errors> {
    load_str(pipeline, platform, Path::new("/etc/cdc"), &test_env)
}

const MINIMAL: &str = "pipeline_id: p\nsource:\n  database: app\n";

#[test]
fn defaults_match_the_seed() {
    let config = load_text(MINIMAL, None).unwrap();
    let (p, s) = (&config.pipeline, &config.pipeline.source);
    assert_eq!(p.topic_prefix, "cdc");
    assert!(p.sinks.is_empty() && p.transforms.is_empty());
    assert_eq!(s.source_type, SourceType::Postgres);
    assert_eq!((s.host.as_str(), s.port, s.username.as_str()), ("localhost", 5432, "cdc_user"));
    assert_eq!(s.password.expose(), "cdc_password");
    assert!(s.tables.is_empty());
    assert_eq!((s.slot_name.as_str(), s.publication_name.as_str()), ("cdc_slot", "cdc_publication"));
    assert_eq!(s.snapshot_mode, SnapshotMode::Initial);
    // Not the seed's 1: derived from the pipeline id (see the test below).
    assert_eq!(
        (s.mysql_server_id, s.replica_set_name.as_deref(), s.auth_source.as_str()),
        (6143, None, "admin")
    );

    let f = &config.platform;
    assert_eq!(f.transport_mode, TransportMode::Kafka);
    let k = &f.kafka;
    assert_eq!(k.bootstrap_servers, "localhost:9092");
    assert_eq!(k.schema_registry.url, "http://localhost:8081");
    assert!(k.schema_registry.basic_auth.is_none() && k.schema_registry.ca_file.is_none());
    assert_eq!(k.group_id, "cdc-platform");
    assert_eq!(k.auto_offset_reset, AutoOffsetReset::Earliest);
    assert!(k.enable_idempotence);
    assert_eq!(k.acks, "all");
    assert_eq!((k.topic_num_partitions, k.topic_replication_factor), (1, 1));
    assert_eq!(k.session_timeout, Duration::from_millis(45_000));
    assert_eq!(k.max_poll_interval, Duration::from_millis(300_000));
    assert_eq!((k.fetch_min_bytes, k.fetch_max_wait), (1, Duration::from_millis(500)));
    assert_eq!((k.poll_batch_size, k.deser_pool_size, k.commit_interval), (1, 1, Duration::ZERO));
    assert_eq!((k.security_protocol, k.auth_mechanism), (SecurityProtocol::Plaintext, AuthMechanism::None));
    assert!(k.sasl_username.is_none() && k.sasl_password.is_none() && k.aws_region.is_none());
    assert!(k.ssl_ca_location.is_none() && k.ssl_certificate_location.is_none());
    assert!(k.ssl_key_location.is_none() && k.gcp_project_id.is_none());
    assert_eq!((k.value_converter, k.schemas_enable), (ValueConverter::Json, false));
    let c = &f.connector;
    assert_eq!(c.connect_url, "http://localhost:8083");
    assert_eq!(
        (c.timeout, c.retry_max_attempts, c.retry_wait),
        (Duration::from_secs(30), 5, Duration::from_secs(2))
    );
    let w = &f.wal_reader;
    assert_eq!((config.slot_name(), config.publication_name()), ("cdc_slot", "cdc_publication"));
    assert_eq!((w.status_interval, w.batch_size), (Duration::from_secs(10), 100));
    assert_eq!((w.batch_timeout, w.max_retries), (Duration::from_secs(1), 0));
    let q = &f.dlq;
    assert_eq!((q.enabled, q.topic_suffix.as_str(), q.max_retries), (true, "dlq", 3));
    assert_eq!((q.include_headers, q.flush_interval), (true, Duration::ZERO));
    assert_eq!(f.retry, seed_retry());
    assert_eq!((f.max_buffered_messages, f.partition_concurrency), (1000, 0));
    assert_eq!(f.schema_monitor_interval, Duration::from_secs(30));
    assert_eq!(f.lag_monitor_interval, Duration::from_secs(15));
    assert!(!f.stop_on_incompatible_schema);
    assert_eq!((f.health_port, f.health_enabled), (8080, true));
    assert_eq!(f.shutdown_timeout, Duration::from_secs(25));
}

fn seed_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 5,
        initial_wait: Duration::from_secs(1),
        max_wait: Duration::from_secs(60),
        multiplier: 2.0,
        jitter: true,
    }
}

#[test]
fn sink_defaults_match_the_seed() {
    let pipeline = format!(
        "{MINIMAL}sinks:\n  - {{sink_id: w, sink_type: webhook, webhook: {{url: 'http://h'}}}}\n  \
         - {{sink_id: p, sink_type: postgres, postgres: {{database: d, target_table: s.t}}}}\n  \
         - {{sink_id: i, sink_type: iceberg, iceberg: {{catalog_uri: c, warehouse: w, table_name: t}}}}\n\
         transforms:\n  - {{name: t, plugin: {{path: t.wasm}}}}\n"
    );
    let config = load_text(&pipeline, None).unwrap();
    let sinks = &config.pipeline.sinks;
    assert!(sinks.iter().all(|s| s.enabled && s.retry == seed_retry()));
    let SinkKind::Webhook(w) = &sinks[0].kind else { panic!() };
    assert_eq!((w.method.as_str(), w.timeout), ("POST", Duration::from_secs(30)));
    assert!(w.headers.is_empty() && w.auth_token.is_none());
    let SinkKind::Postgres(p) = &sinks[1].kind else { panic!() };
    assert_eq!((p.host.as_str(), p.port, p.username.as_str()), ("localhost", 5432, "cdc_user"));
    assert_eq!((p.password.expose(), p.batch_size, p.upsert), ("cdc_password", 100, false));
    let SinkKind::Iceberg(i) = &sinks[2].kind else { panic!() };
    assert_eq!((i.catalog_name.as_str(), i.table_namespace.as_str()), ("default", "default"));
    assert_eq!((i.write_mode, i.batch_size, i.auto_create_table), (WriteMode::Append, 10_000, true));
    assert!(i.partition_by.is_empty() && i.s3_endpoint.is_none() && i.s3_access_key_id.is_none());
    assert!(i.s3_secret_access_key.is_none());
    assert_eq!(
        (i.s3_region.as_str(), i.flush_interval, i.write_executor_threads),
        ("us-east-1", Duration::from_secs(10), 0)
    );
    let m = &i.maintenance;
    assert!(!m.enabled);
    assert_eq!(m.expire_snapshots_interval, Duration::from_secs(3600));
    assert_eq!(m.expire_snapshots_older_than, Duration::from_secs(86400));
    assert_eq!(m.compaction_interval, Duration::from_secs(7200));
    assert_eq!((m.compaction_file_threshold, m.compaction_max_rows_per_batch), (10, 500_000));
    let plugin = &config.pipeline.transforms[0].plugin;
    assert_eq!(plugin.path, Path::new("/etc/cdc/t.wasm"));
    assert_eq!(plugin.config, serde_json::json!({}));
    assert_eq!(plugin.limits.memory_mb, 64);
    assert_eq!(plugin.limits.call_timeout, Duration::from_millis(1000));
    assert_eq!(plugin.limits.max_output_bytes, 16 * 1024 * 1024);
}

#[test]
fn valid_fixtures_load() {
    let dir = fixtures().join("valid");
    let mut count = 0;
    for path in yaml_files(&dir) {
        if let Err(errors) = load_with_env(&path, None, &test_env) {
            panic!("{}:\n{errors}", path.display());
        }
        count += 1;
    }
    assert!(count >= 3, "only {count} valid fixtures");
}

#[test]
fn invalid_fixtures_fail_as_recorded() {
    let dir = fixtures().join("invalid");
    let bless = std::env::var_os("CDC_BLESS_CONFIG").is_some();
    let mut failures = Vec::new();
    let mut count = 0;
    for path in yaml_files(&dir) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let result = if name.starts_with("platform_") {
            load_with_env(&fixtures().join("valid/minimal.yaml"), Some(&path), &no_env)
        } else {
            load_with_env(&path, None, &no_env)
        };
        let actual = match result {
            Ok(_) => "loaded without error".to_owned(),
            Err(errors) => errors.to_string(),
        };
        let prefix = format!("{}/", dir.display());
        let actual = actual.replace(&prefix, "") + "\n";
        let err_path = path.with_extension("err");
        if bless {
            std::fs::write(&err_path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&err_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!("{name}:\n--- expected\n{expected}--- actual\n{actual}"));
        }
        count += 1;
    }
    assert!(count >= 7, "only {count} invalid fixtures");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn orders_example_loads_with_its_variables() {
    let config = load_with_env(&fixtures().join("valid/orders_iceberg.yaml"), None, &test_env).unwrap();
    let source = &config.pipeline.source;
    assert_eq!((source.host.as_str(), source.database.as_str()), ("db.internal", "orders"));
    assert_eq!(source.password.expose(), SECRETS[0]);
    assert_eq!(source.tables, ["public.orders", "public.order_items"]);
    let SinkKind::Iceberg(iceberg) = &config.pipeline.sinks[0].kind else { panic!() };
    assert_eq!(iceberg.write_mode, WriteMode::Upsert);
    assert_eq!(iceberg.s3_secret_access_key.as_ref().map(Secret::expose), Some(SECRETS[1]));
    assert!(iceberg.maintenance.enabled);
    assert_eq!(iceberg.maintenance.compaction_interval, Duration::from_secs(3600));
    assert_eq!(iceberg.maintenance.expire_snapshots_interval, Duration::from_secs(3600));
}

#[test]
fn debug_and_summary_never_show_secrets() {
    let config = load_with_env(&fixtures().join("valid/orders_iceberg.yaml"), None, &test_env).unwrap();
    let debug = format!("{config:?}");
    let summary = config.summary();
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{secret} in debug");
        assert!(!summary.contains(secret), "{secret} in summary");
    }
    assert!(debug.contains("***"));
    assert!(summary.contains("iceberg-lake: iceberg enabled"), "{summary}");
    assert!(summary.contains("health: port 8080"), "{summary}");
}

#[test]
fn plugin_config_values_stay_out_of_debug() {
    let pipeline = format!(
        "{MINIMAL}transforms:\n  - name: t\n    plugin:\n      path: t.wasm\n      config:\n        key: ${{S3_SECRET_ACCESS_KEY}}\n"
    );
    let config = load_text(&pipeline, None).unwrap();
    assert_eq!(config.pipeline.transforms[0].plugin.config["key"], SECRETS[1]);
    assert!(!format!("{config:?}").contains(SECRETS[1]));
}

#[test]
fn platform_file_is_merged_over_the_defaults() {
    let config = load_text(MINIMAL, Some("kafka:\n  bootstrap_servers: broker:29092\n")).unwrap();
    let kafka = &config.platform.kafka;
    assert_eq!(kafka.bootstrap_servers, "broker:29092");
    assert_eq!((kafka.group_id.as_str(), kafka.acks.as_str()), ("cdc-platform", "all"));
    assert_eq!(config.platform.retry, seed_retry());
    assert_eq!(config.platform.health_port, 8080);
}

#[test]
fn sink_retry_is_merged_over_the_platform_retry() {
    let pipeline = format!(
        "{MINIMAL}sinks:\n  - sink_id: w\n    sink_type: webhook\n    retry: {{max_attempts: 9}}\n    webhook: {{url: 'http://h'}}\n"
    );
    let platform = "retry:\n  max_wait_seconds: 30\n  jitter: false\n";
    let config = load_text(&pipeline, Some(platform)).unwrap();
    let retry = &config.pipeline.sinks[0].retry;
    assert_eq!(retry.max_attempts, 9);
    assert_eq!((retry.max_wait, retry.jitter), (Duration::from_secs(30), false));
    assert_eq!(retry.initial_wait, Duration::from_secs(1));
}

#[test]
fn integers_and_secrets_come_through_variables() {
    let env = |name: &str| match name {
        "PORT" => Some("6543".to_owned()),
        "PW" => Some("a#b: 'c\" d\n  e: f".to_owned()),
        _ => None,
    };
    let pipeline = "pipeline_id: p\nsource:\n  database: app\n  port: ${PORT}\n  password: ${PW}\n";
    let config = load_str(pipeline, Some("health_port: ${PORT}\n"), Path::new("."), &env).unwrap();
    assert_eq!(config.pipeline.source.port, 6543);
    assert_eq!(config.platform.health_port, 6543);
    assert_eq!(config.pipeline.source.password.expose(), "a#b: 'c\" d\n  e: f");
}

#[test]
fn an_unset_mysql_server_id_is_derived_from_the_pipeline_id_and_a_set_one_is_kept() {
    let server_id = |pipeline: &str| load_text(pipeline, None).unwrap().pipeline.source.mysql_server_id;
    let mysql = |id: &str| format!("pipeline_id: {id}\nsource:\n  source_type: mysql\n  database: app\n");
    // Pinned: a pipeline keeps its id across releases, so its binlog client does too.
    assert_eq!((server_id(&mysql("p")), server_id(&mysql("orders"))), (6143, 6220));
    let ids: HashSet<u32> = (0..200).map(|n| server_id(&mysql(&format!("pipeline-{n}")))).collect();
    assert!(ids.iter().all(|id| (5400..6400).contains(id)), "{ids:?}");
    assert!(ids.len() > 150, "200 pipelines share {} ids", ids.len());
    assert_eq!(server_id(&format!("{}  mysql_server_id: 42\n", mysql("p"))), 42);
}

#[test]
fn embedded_transport_needs_a_postgres_source() {
    let pipeline = "pipeline_id: p\nsource:\n  source_type: mysql\n  database: app\n";
    let errors = load_text(pipeline, Some("transport_mode: embedded\n")).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "pipeline.yaml:3:16: source.source_type: transport_mode `embedded` (platform) needs source_type `postgres`"
    );
}

#[test]
fn missing_file_is_a_read_error() {
    let errors = load(Path::new("/nonexistent/pipeline.yaml"), None).unwrap_err();
    assert!(matches!(errors.iter().next().map(|e| &e.kind), Some(ErrorKind::Read { .. })));
    assert!(errors.to_string().starts_with("/nonexistent/pipeline.yaml: cannot read the file: "));
}

#[test]
fn summary_lists_the_parts() {
    let path = fixtures().join("valid/all_sinks_and_transforms.yaml");
    let config = load_with_env(&path, None, &test_env).unwrap();
    let dir = fixtures().join("valid");
    let summary = config.summary().replace(&format!("{}/", dir.display()), "");
    assert_eq!(
        summary,
        "pipeline fan-out (topic prefix prod.cdc)\n\
         source: postgres db.internal:5432/shop as cdc_user, public.customers\n\
         transport: kafka localhost:9092 (json values)\n\
         transforms:\n  mask-email: plugins/mask.wasm\n  drop-test-rows: /opt/cdc/plugins/filter.wasm\n\
         sinks:\n  hook: webhook enabled, POST https://hooks.example.com/cdc\n  \
         replica: postgres disabled, replica.internal:5432/analytics table public.cdc_events\n  \
         custom: wasm enabled, plugins/sink.wasm\n\
         health: port 8080"
    );
}

#[test]
fn type_errors_do_not_echo_values() {
    let pipeline = "pipeline_id: p\nsource:\n  database: app\n  port: hunter2-port\n";
    let errors = load_text(pipeline, None).unwrap_err().to_string();
    assert_eq!(errors, "pipeline.yaml:4:9: source.port: invalid type: expected an integer, found a string");
    let pipeline = "pipeline_id: p\nsource:\n  database: app\n  password: [hunter2-pw]\n";
    let errors = load_text(pipeline, None).unwrap_err().to_string();
    assert!(!errors.contains("hunter2"), "{errors}");
    assert!(errors.contains("source.password: invalid type"), "{errors}");
}

#[test]
fn unknown_fields_at_every_depth_are_all_reported() {
    let pipeline = "pipeline_id: p\nsourc: {}\nsource:\n  database: app\n  tabels: []\nsinks:\n  - \
                    sink_id: s\n    sink_type: webhook\n    webhook: {url: 'http://h', timeout: 1}\n";
    let errors = load_text(pipeline, None).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["sourc", "source.tabels", "sinks[0].webhook.timeout"]);
}

#[test]
fn allowed_hosts_are_hosts_not_urls() {
    let pipeline = |hosts: &str| {
        format!(
            "pipeline_id: p\nsource:\n  database: d\nsinks:\n  - sink_id: s\n    sink_type: wasm\n    plugin:\n      path: s.wasm\n      allowed_hosts: {hosts}\n"
        )
    };
    let config = load_text(&pipeline("[api.example.com, \"127.0.0.1:8080\", \"[::1]:80\"]"), None).unwrap();
    let crate::config::SinkKind::Wasm(plugin) = &config.pipeline.sinks[0].kind else { panic!("a wasm sink") };
    assert_eq!(plugin.allowed_hosts, ["api.example.com", "127.0.0.1:8080", "[::1]:80"]);
    let errors = load_text(&pipeline("[\"https://api.example.com/x\"]"), None).unwrap_err().to_string();
    assert!(errors.contains("sinks[0].plugin.allowed_hosts[0]: must be `host` or `host:port`"), "{errors}");
}

#[test]
fn webhook_status_classes_override_the_defaults_and_must_be_statuses() {
    use crate::config::{SinkKind, WebhookStatusClass};
    let sinks = "sinks:\n  - sink_id: w\n    sink_type: webhook\n    webhook:\n      url: 'http://h'\n      status_classes: {409: delivered, 404: record}\n";
    let config = load_text(&format!("{MINIMAL}{sinks}"), None).unwrap();
    let SinkKind::Webhook(webhook) = &config.pipeline.sinks[0].kind else { panic!("a webhook sink") };
    assert_eq!(
        webhook.status_classes.iter().map(|(status, class)| (*status, *class)).collect::<Vec<_>>(),
        vec![(404, WebhookStatusClass::Record), (409, WebhookStatusClass::Delivered)]
    );

    let bad = sinks.replace("409: delivered", "700: delivered").replace("404: record", "404: maybe");
    let errors = load_text(&format!("{MINIMAL}{bad}"), None).unwrap_err().to_string();
    assert!(errors.contains("status_classes"), "{errors}");
    let out_of_range = sinks.replace("404: record", "99: record");
    let errors = load_text(&format!("{MINIMAL}{out_of_range}"), None).unwrap_err().to_string();
    assert!(errors.contains("`99` is not an HTTP status"), "{errors}");
}

#[test]
fn shutdown_timeout_is_a_positive_number_of_seconds() {
    let config = load_text(MINIMAL, Some("shutdown_timeout_seconds: 12\n")).unwrap();
    assert_eq!(config.platform.shutdown_timeout, Duration::from_secs(12));
    let errors = load_text(MINIMAL, Some("shutdown_timeout_seconds: 0\n")).unwrap_err().to_string();
    assert!(errors.contains("shutdown_timeout_seconds"), "{errors}");
}

#[test]
fn kafka_security_settings_that_cannot_work_are_refused() {
    let refused = |platform: &str| load_text(MINIMAL, Some(platform)).unwrap_err().to_string();
    let errors = refused("kafka:\n  auth_mechanism: sasl_iam\n  security_protocol: sasl_ssl\n");
    assert!(errors.contains("kafka.auth_mechanism: not available in this build"), "{errors}");
    let errors = refused("kafka:\n  auth_mechanism: sasl_oauthbearer\n  security_protocol: sasl_ssl\n");
    assert!(errors.contains("not available in this build"), "{errors}");
    let errors = refused("kafka:\n  security_protocol: sasl_ssl\n");
    assert!(errors.contains("security_protocol SASL_SSL needs an auth_mechanism"), "{errors}");
    let errors = refused(
        "kafka:\n  auth_mechanism: sasl_scram512\n  sasl_username: u\n  sasl_password: p\n  security_protocol: ssl\n",
    );
    assert!(
        errors.contains("kafka.security_protocol: an auth_mechanism needs security_protocol sasl_ssl"),
        "{errors}"
    );
    let errors = refused("kafka:\n  sasl_username: u\n  sasl_password: p\n");
    assert!(errors.contains("SASL credentials need an auth_mechanism"), "{errors}");
    let errors = refused("kafka:\n  ssl_ca_location: /etc/hostname\n");
    assert!(
        errors.contains("kafka.ssl_ca_location: used only with security_protocol ssl or sasl_ssl"),
        "{errors}"
    );
    let errors = refused("kafka:\n  security_protocol: ssl\n  ssl_ca_location: /nonexistent/ca.pem\n");
    assert!(errors.contains("no such file: /nonexistent/ca.pem"), "{errors}");
    let errors = refused("kafka:\n  security_protocol: ssl\n  ssl_certificate_location: /etc/hostname\n");
    assert!(errors.contains("needs both ssl_certificate_location and ssl_key_location"), "{errors}");

    let accepted = load_text(
        MINIMAL,
        Some("kafka:\n  security_protocol: sasl_ssl\n  auth_mechanism: sasl_scram256\n  sasl_username: cdc\n  sasl_password: s3cret\n  ssl_ca_location: /etc/hostname\n"),
    )
    .unwrap();
    assert_eq!(accepted.platform.kafka.security_protocol, SecurityProtocol::SaslSsl);
    assert_eq!(accepted.platform.kafka.auth_mechanism, AuthMechanism::SaslScram256);
}

#[test]
fn ca_files_must_hold_certificates_and_registry_credentials_come_together() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let platform = format!("connector:\n  ca_file: {}\n", not_pem.display());
    let errors = load_text(MINIMAL, Some(&platform)).unwrap_err().to_string();
    assert!(
        errors.contains("connector.ca_file: the CA file") && errors.contains("no PEM certificate"),
        "{errors}"
    );
    let errors =
        load_text(MINIMAL, Some("kafka:\n  schema_registry_username: cdc\n")).unwrap_err().to_string();
    assert!(
        errors.contains("schema_registry_username and schema_registry_password come together"),
        "{errors}"
    );
    let sink = "sinks:\n  - sink_id: hook\n    sink_type: webhook\n    webhook:\n      url: https://example.com/\n      ca_file: missing-ca.pem\n";
    let errors = load_text(&format!("{MINIMAL}{sink}"), None).unwrap_err().to_string();
    assert!(
        errors.contains("sinks[0].webhook.ca_file: cannot read the CA file /etc/cdc/missing-ca.pem"),
        "{errors}"
    );
    let config = load_text(
        MINIMAL,
        Some("kafka:\n  schema_registry_url: https://registry:8081\n  schema_registry_username: cdc\n  schema_registry_password: pw\n"),
    )
    .unwrap();
    let auth = config.platform.kafka.schema_registry.basic_auth.expect("basic auth");
    assert_eq!((auth.username.as_str(), auth.password.expose()), ("cdc", "pw"));
}
