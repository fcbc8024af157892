//! Checks `pipeline.yaml`: source, sinks (with the platform retry merged in) and transforms.

use std::collections::HashSet;
use std::path::Path;

use super::platform::{non_empty, retry};
use super::{Ctx, is_qualified};
use crate::config::Secret;
use crate::config::defaults as d;
use crate::config::pipeline::{
    IcebergSinkConfig, MaintenanceConfig, PipelineConfig, PluginConfig, PluginDirectory, PluginLimits,
    PostgresMode, PostgresSinkConfig, SinkConfig, SinkKind, SinkType, SourceConfig, TransformConfig,
    WebhookSinkConfig, signing_key,
};
use crate::config::platform::RetryConfig;
use crate::config::raw;

/// Builds the pipeline spec from `raw`; sinks inherit `platform_retry`, plugin paths are
/// resolved against `base_dir`.
pub(in crate::config) fn pipeline(
    raw: raw::Pipeline,
    platform_retry: &RetryConfig,
    base_dir: &Path,
    ctx: &mut Ctx<'_>,
) -> PipelineConfig {
    let pipeline_id = ctx.required_str(raw.pipeline_id, "pipeline_id");
    let topic_prefix = raw.topic_prefix.unwrap_or_else(|| d::TOPIC_PREFIX.into());
    if !is_topic_prefix(&topic_prefix) {
        ctx.invalid("topic_prefix", "must match ^[a-zA-Z][a-zA-Z0-9._-]*$");
    }
    let source = ctx.required(raw.source, "source").unwrap_or_default();
    let source = self::source(source, &pipeline_id, ctx);

    let mut ids = HashSet::new();
    let sinks = raw.sinks.unwrap_or_default();
    let sinks = (sinks.into_iter().enumerate())
        .filter_map(|(i, s)| sink(s, &format!("sinks[{i}]"), platform_retry, base_dir, &mut ids, ctx))
        .collect();

    let mut names = HashSet::new();
    let transforms = raw.transforms.unwrap_or_default();
    let transforms = (transforms.into_iter().enumerate())
        .filter_map(|(i, t)| {
            let path = format!("transforms[{i}]");
            let name = ctx.required_str(t.name, &format!("{path}.name"));
            if !name.is_empty() && !names.insert(name.clone()) {
                ctx.invalid(&format!("{path}.name"), format!("duplicate transform name `{name}`"));
            }
            let plugin = ctx.required(t.plugin, &format!("{path}.plugin"))?;
            Some(TransformConfig {
                name,
                plugin: self::plugin(plugin, &format!("{path}.plugin"), base_dir, ctx),
            })
        })
        .collect();

    PipelineConfig { pipeline_id, topic_prefix, source, transforms, sinks }
}

fn is_topic_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn source(raw: raw::Source, pipeline_id: &str, ctx: &mut Ctx<'_>) -> SourceConfig {
    let tables = raw.tables.unwrap_or_default();
    for (i, table) in tables.iter().enumerate() {
        if !is_qualified(table) {
            ctx.invalid(
                &format!("source.tables[{i}]"),
                format!("table `{table}` must be schema-qualified (e.g. `public.customers`)"),
            );
        }
    }
    SourceConfig {
        source_type: raw.source_type.unwrap_or_default(),
        host: non_empty(raw.host, d::SOURCE_HOST, "source.host", ctx),
        port: ctx.port(raw.port, d::SOURCE_PORT, "source.port"),
        database: ctx.required_str(raw.database, "source.database"),
        username: raw.username.unwrap_or_else(|| d::SOURCE_USERNAME.into()),
        password: raw.password.unwrap_or_else(|| Secret::new(d::SOURCE_PASSWORD)),
        tables,
        snapshot_mode: raw.snapshot_mode.unwrap_or_default(),
        slot_name: non_empty(raw.slot_name, d::SLOT_NAME, "source.slot_name", ctx),
        publication_name: non_empty(
            raw.publication_name,
            d::PUBLICATION_NAME,
            "source.publication_name",
            ctx,
        ),
        mysql_server_id: ctx.int(
            raw.mysql_server_id,
            d::mysql_server_id(pipeline_id),
            1..=i64::from(u32::MAX),
            "source.mysql_server_id",
        ),
        replica_set_name: raw.replica_set_name,
        auth_source: raw.auth_source.unwrap_or_else(|| d::AUTH_SOURCE.into()),
    }
}

fn sink(
    raw: raw::Sink,
    path: &str,
    platform_retry: &RetryConfig,
    base_dir: &Path,
    ids: &mut HashSet<String>,
    ctx: &mut Ctx<'_>,
) -> Option<SinkConfig> {
    let at = |field: &str| format!("{path}.{field}");
    let sink_id = ctx.required_str(raw.sink_id, &at("sink_id"));
    if !sink_id.is_empty() && !ids.insert(sink_id.clone()) {
        ctx.invalid(&at("sink_id"), format!("duplicate sink_id `{sink_id}`"));
    }
    let retry = retry(&raw.retry.unwrap_or_default(), platform_retry, &at("retry"), ctx);
    let sink_type = ctx.required(raw.sink_type, &at("sink_type"))?;
    // Each block other than the one `sink_type` names would be ignored, so it is an error.
    let blocks = [
        (SinkType::Webhook, raw.webhook.is_some()),
        (SinkType::Postgres, raw.postgres.is_some()),
        (SinkType::Iceberg, raw.iceberg.is_some()),
        (SinkType::Wasm, raw.plugin.is_some()),
    ];
    for (other, present) in blocks {
        if present && other != sink_type {
            ctx.invalid(
                &at(block_name(other)),
                format!("`{}` block is set but sink_type is `{}`", block_name(other), sink_type.as_str()),
            );
        }
    }
    let block = block_name(sink_type);
    let missing = || format!("`{block}` block is required when sink_type is `{}`", sink_type.as_str());
    let kind = match sink_type {
        SinkType::Webhook => raw.webhook.map(|w| SinkKind::Webhook(webhook(w, &at(block), base_dir, ctx))),
        SinkType::Postgres => {
            raw.postgres.map(|p| SinkKind::Postgres(postgres(p, &at(block), base_dir, ctx)))
        }
        SinkType::Iceberg => raw.iceberg.map(|i| SinkKind::Iceberg(iceberg(i, &at(block), base_dir, ctx))),
        SinkType::Wasm => raw.plugin.map(|p| SinkKind::Wasm(plugin(p, &at(block), base_dir, ctx))),
    };
    let Some(kind) = kind else {
        ctx.invalid(&at(block), missing());
        return None;
    };
    Some(SinkConfig { sink_id, enabled: raw.enabled.unwrap_or(d::SINK_ENABLED), retry, kind })
}

const fn block_name(sink_type: SinkType) -> &'static str {
    match sink_type {
        SinkType::Wasm => "plugin",
        other => other.as_str(),
    }
}

/// `signing_secret`, or `signing_secrets` while secrets rotate: each `whsec_` and base64.
fn signing_secrets(
    one: Option<Secret>,
    several: Option<Vec<Secret>>,
    path: &str,
    ctx: &mut Ctx<'_>,
) -> Vec<Secret> {
    let secrets = match (one, several) {
        (Some(_), Some(_)) => {
            ctx.invalid(
                &format!("{path}.signing_secrets"),
                "set `signing_secret` or `signing_secrets`, not both",
            );
            return Vec::new();
        }
        (Some(secret), None) => vec![secret],
        (None, several) => several.unwrap_or_default(),
    };
    for (index, secret) in secrets.iter().enumerate() {
        if signing_key(secret.expose()).is_none() {
            let field = if secrets.len() == 1 {
                "signing_secret".to_owned()
            } else {
                format!("signing_secrets[{index}]")
            };
            ctx.invalid(
                &format!("{path}.{field}"),
                "must be a Standard Webhooks secret: `whsec_` followed by base64",
            );
        }
    }
    secrets
}

fn webhook(raw: raw::Webhook, path: &str, base_dir: &Path, ctx: &mut Ctx<'_>) -> WebhookSinkConfig {
    let at = |field: &str| format!("{path}.{field}");
    let url = ctx.required_str(raw.url, &at("url"));
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        ctx.invalid(&at("url"), "must start with http:// or https://");
    }
    let method = raw.method.unwrap_or_else(|| d::WEBHOOK_METHOD.into()).to_ascii_uppercase();
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        ctx.invalid(&at("method"), "must be one of `POST`, `PUT`, `PATCH`");
    }
    let signing_secrets = signing_secrets(raw.signing_secret, raw.signing_secrets, path, ctx);
    WebhookSinkConfig {
        url,
        method,
        batch_size: ctx.int(
            raw.batch_size,
            d::WEBHOOK_BATCH_SIZE,
            1..=d::WEBHOOK_MAX_BATCH_SIZE,
            &at("batch_size"),
        ),
        batch_timeout: ctx.millis(
            raw.batch_timeout_ms,
            d::WEBHOOK_BATCH_TIMEOUT_MS,
            0..=d::WEBHOOK_MAX_BATCH_TIMEOUT_MS,
            &at("batch_timeout_ms"),
        ),
        max_in_flight: ctx.int(
            raw.max_in_flight,
            d::WEBHOOK_MAX_IN_FLIGHT,
            1..=d::WEBHOOK_MAX_MAX_IN_FLIGHT,
            &at("max_in_flight"),
        ),
        signing_secrets,
        compression: raw.compression.unwrap_or_default(),
        headers: raw.headers.unwrap_or_default(),
        timeout: ctx.seconds(raw.timeout_seconds, d::WEBHOOK_TIMEOUT_SECONDS, false, &at("timeout_seconds")),
        auth_token: raw.auth_token,
        ca_file: ctx.ca_file(raw.ca_file, base_dir, &at("ca_file")),
        status_classes: raw
            .status_classes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(status, class)| match status.trim().parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Some((code, class)),
                _ => {
                    ctx.invalid(
                        &at("status_classes"),
                        format!("`{status}` is not an HTTP status (100..=599)"),
                    );
                    None
                }
            })
            .collect(),
    }
}

fn postgres(raw: raw::PostgresSink, path: &str, base_dir: &Path, ctx: &mut Ctx<'_>) -> PostgresSinkConfig {
    let at = |field: &str| format!("{path}.{field}");
    let mode = raw.mode.unwrap_or_default();
    let target_table = match mode {
        PostgresMode::EventLog => ctx.required_str(raw.target_table, &at("target_table")),
        PostgresMode::Replica => raw.target_table.unwrap_or_default(),
    };
    if !target_table.is_empty() && !is_qualified(&target_table) {
        ctx.invalid(
            &at("target_table"),
            format!("target_table `{target_table}` must be schema-qualified (e.g. `public.cdc_events`)"),
        );
    }
    let table_map = raw.table_map.unwrap_or_default();
    for (source, target) in &table_map {
        for (side, name) in [("source", source), ("target", target)] {
            if !is_qualified(name) {
                let message = format!("{side} table `{name}` must be schema-qualified (`schema.table`)");
                ctx.invalid(&at(&format!("table_map.{source}")), message);
            }
        }
    }
    PostgresSinkConfig {
        host: non_empty(raw.host, d::SOURCE_HOST, &at("host"), ctx),
        port: ctx.port(raw.port, d::SOURCE_PORT, &at("port")),
        database: ctx.required_str(raw.database, &at("database")),
        username: raw.username.unwrap_or_else(|| d::SOURCE_USERNAME.into()),
        password: raw.password.unwrap_or_else(|| Secret::new(d::SOURCE_PASSWORD)),
        sslmode: raw.sslmode.unwrap_or_default(),
        sslrootcert: raw.sslrootcert.map(|file| base_dir.join(file)),
        mode,
        target_table,
        target_schema: non_empty(raw.target_schema, d::POSTGRES_TARGET_SCHEMA, &at("target_schema"), ctx),
        table_map,
        batch_size: ctx.positive_count(raw.batch_size, d::POSTGRES_BATCH_SIZE, &at("batch_size")),
        upsert: raw.upsert.unwrap_or(d::POSTGRES_UPSERT),
    }
}

fn iceberg(raw: raw::Iceberg, path: &str, base_dir: &Path, ctx: &mut Ctx<'_>) -> IcebergSinkConfig {
    let at = |field: &str| format!("{path}.{field}");
    let m = raw.maintenance.unwrap_or_default();
    let mp = |field: &str| format!("{path}.maintenance.{field}");
    let maintenance = MaintenanceConfig {
        enabled: m.enabled.unwrap_or(d::MAINTENANCE_ENABLED),
        expire_snapshots_interval: ctx.seconds(
            m.expire_snapshots_interval_seconds,
            d::EXPIRE_SNAPSHOTS_INTERVAL_SECONDS,
            false,
            &mp("expire_snapshots_interval_seconds"),
        ),
        expire_snapshots_older_than: ctx.seconds(
            m.expire_snapshots_older_than_seconds,
            d::EXPIRE_SNAPSHOTS_OLDER_THAN_SECONDS,
            false,
            &mp("expire_snapshots_older_than_seconds"),
        ),
        compaction_interval: ctx.seconds(
            m.compaction_interval_seconds,
            d::COMPACTION_INTERVAL_SECONDS,
            false,
            &mp("compaction_interval_seconds"),
        ),
        compaction_file_threshold: ctx.positive_count(
            m.compaction_file_threshold,
            d::COMPACTION_FILE_THRESHOLD,
            &mp("compaction_file_threshold"),
        ),
        compaction_max_rows_per_batch: ctx.positive_count(
            m.compaction_max_rows_per_batch,
            d::COMPACTION_MAX_ROWS_PER_BATCH,
            &mp("compaction_max_rows_per_batch"),
        ),
        orphan_files_older_than: ctx.seconds(
            m.orphan_files_older_than_seconds,
            d::ORPHAN_FILES_OLDER_THAN_SECONDS,
            false,
            &mp("orphan_files_older_than_seconds"),
        ),
    };
    IcebergSinkConfig {
        catalog_name: non_empty(raw.catalog_name, d::ICEBERG_CATALOG_NAME, &at("catalog_name"), ctx),
        catalog_uri: ctx.required_str(raw.catalog_uri, &at("catalog_uri")),
        warehouse: ctx.required_str(raw.warehouse, &at("warehouse")),
        table_namespace: non_empty(
            raw.table_namespace,
            d::ICEBERG_TABLE_NAMESPACE,
            &at("table_namespace"),
            ctx,
        ),
        table_name: ctx.required_str(raw.table_name, &at("table_name")),
        write_mode: raw.write_mode.unwrap_or_default(),
        batch_size: ctx.positive_count(raw.batch_size, d::ICEBERG_BATCH_SIZE, &at("batch_size")),
        auto_create_table: raw.auto_create_table.unwrap_or(d::ICEBERG_AUTO_CREATE_TABLE),
        partition_by: raw.partition_by.unwrap_or_default(),
        catalog_token: raw.catalog_token,
        catalog_ca_file: ctx.ca_file(raw.catalog_ca_file, base_dir, &at("catalog_ca_file")),
        catalog_properties: raw.catalog_properties.unwrap_or_default(),
        s3_endpoint: raw.s3_endpoint,
        s3_access_key_id: raw.s3_access_key_id,
        s3_secret_access_key: raw.s3_secret_access_key,
        s3_region: non_empty(raw.s3_region, d::ICEBERG_S3_REGION, &at("s3_region"), ctx),
        maintenance,
        flush_interval: ctx.seconds(
            raw.flush_interval_seconds,
            d::ICEBERG_FLUSH_INTERVAL_SECONDS,
            true,
            &at("flush_interval_seconds"),
        ),
        write_executor_threads: ctx.count(
            raw.write_executor_threads,
            d::ICEBERG_WRITE_EXECUTOR_THREADS,
            &at("write_executor_threads"),
        ),
    }
}

fn plugin(raw: raw::Plugin, path: &str, base_dir: &Path, ctx: &mut Ctx<'_>) -> PluginConfig {
    let at = |field: &str| format!("{path}.{field}");
    let file = ctx.required_str(raw.path, &at("path"));
    let sha256 = raw.sha256.map(|s| s.to_ascii_lowercase());
    if let Some(sha) = &sha256
        && !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        ctx.invalid(&at("sha256"), "must be 64 hexadecimal digits");
    }
    let config = raw.config.unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    if !config.is_object() {
        ctx.invalid(&at("config"), "must be a mapping");
    }
    let allowed_hosts = raw.allowed_hosts.unwrap_or_default();
    for (i, host) in allowed_hosts.iter().enumerate() {
        let name = host.rsplit_once(':').map_or(host.as_str(), |(name, port)| {
            if port.parse::<u16>().is_ok() { name } else { host.as_str() }
        });
        let bracketed_ipv6 = name.starts_with('[') && name.ends_with(']');
        let valid = !name.is_empty() && !host.contains('/') && (bracketed_ipv6 || !name.contains(':'));
        if !valid {
            ctx.invalid(
                &format!("{path}.allowed_hosts[{i}]"),
                "must be `host` or `host:port`, without a scheme or path",
            );
        }
    }
    let env = raw.env.unwrap_or_default();
    for (i, name) in env.iter().enumerate() {
        let valid = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            ctx.invalid(&format!("{path}.env[{i}]"), "must be an environment variable name");
        }
    }
    let directory = raw.directory.map(|directory| {
        let host = ctx.required_str(directory.path, &at("directory.path"));
        let mount = directory.mount.unwrap_or_else(|| d::PLUGIN_DIRECTORY_MOUNT.to_owned());
        if !mount.starts_with('/') {
            ctx.invalid(&at("directory.mount"), "must be an absolute path");
        }
        PluginDirectory { path: base_dir.join(host), mount, read_only: directory.read_only.unwrap_or(false) }
    });
    let limits = raw.limits.unwrap_or_default();
    let lp = |field: &str| format!("{path}.limits.{field}");
    PluginConfig {
        path: base_dir.join(file),
        sha256,
        config,
        allowed_hosts,
        env,
        directory,
        limits: PluginLimits {
            memory_mb: ctx.int(limits.memory_mb, d::PLUGIN_MEMORY_MB, 1..=4096, &lp("memory_mb")),
            call_timeout: ctx.millis(
                limits.call_timeout_ms,
                d::PLUGIN_CALL_TIMEOUT_MS,
                1..=600_000,
                &lp("call_timeout_ms"),
            ),
            max_output_bytes: ctx.int(
                limits.max_output_bytes,
                d::PLUGIN_MAX_OUTPUT_BYTES,
                1..=i64::MAX,
                &lp("max_output_bytes"),
            ),
        },
    }
}
