//! Loading: read, parse, substitute `${...}`, deserialize, validate, and collect every error.

use std::collections::HashSet;
use std::path::Path;

use serde::de::DeserializeOwned;

use super::env::{Env, substitute_tree};
use super::error::{Error, ErrorKind, Errors};
use super::node::{self, Node, Value};
use super::pipeline::{PostgresMode, SinkKind, SourceType};
use super::platform::{TransportMode, ValueConverter};
use super::validate::{self, Ctx};
use super::{Config, de, raw};

/// Top-level keys of `platform.yaml`; written in a pipeline file they are misplaced.
const PLATFORM_KEYS: &[&str] = &[
    "transport_mode",
    "kafka",
    "connector",
    "wal_reader",
    "pubsub",
    "kinesis",
    "dlq",
    "retry",
    "max_buffered_messages",
    "partition_concurrency",
    "schema_monitor_interval_seconds",
    "lag_monitor_interval_seconds",
    "stop_on_incompatible_schema",
    "health_port",
    "health_enabled",
    "shutdown_timeout_seconds",
];

/// Loads `pipeline` and, when given, `platform` (over the built-in defaults), substituting
/// `${...}` from the process environment.
///
/// # Errors
/// Every problem found, each with file, line, column and field path where known.
pub fn load(pipeline: &Path, platform: Option<&Path>) -> Result<Config, Errors> {
    load_with_env(pipeline, platform, &|name| std::env::var(name).ok())
}

/// Like [`load`], with variables looked up in `env`.
///
/// # Errors
/// Every problem found, each with file, line, column and field path where known.
pub fn load_with_env(pipeline: &Path, platform: Option<&Path>, env: Env<'_>) -> Result<Config, Errors> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| {
            Errors::from(Error::new(path.display().to_string(), None, "", ErrorKind::Read { source }))
        })
    };
    let pipeline_text = read(pipeline)?;
    let platform_text = platform.map(read).transpose()?;
    let pipeline_name = pipeline.display().to_string();
    let platform_name = platform.map(|p| p.display().to_string());
    let base_dir = pipeline.parent().unwrap_or(Path::new("."));
    load_documents(
        Document { name: &pipeline_name, text: &pipeline_text },
        platform_name.as_deref().zip(platform_text.as_deref()).map(|(name, text)| Document { name, text }),
        base_dir,
        env,
    )
}

/// Loads config from text, named `pipeline.yaml` and `platform.yaml` in errors; relative plugin
/// paths are resolved against `base_dir`.
///
/// # Errors
/// Every problem found, each with file, line, column and field path where known.
pub fn load_str(
    pipeline: &str,
    platform: Option<&str>,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Config, Errors> {
    load_documents(
        Document { name: "pipeline.yaml", text: pipeline },
        platform.map(|text| Document { name: "platform.yaml", text }),
        base_dir,
        env,
    )
}

/// A config file's name (for errors) and text.
#[derive(Clone, Copy)]
struct Document<'a> {
    name: &'a str,
    text: &'a str,
}

fn load_documents(
    pipeline_doc: Document<'_>,
    platform_doc: Option<Document<'_>>,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Config, Errors> {
    let mut platform_errors = Vec::new();
    let platform = match platform_doc {
        Some(doc) => stage::<raw::Platform>(doc, env, &mut platform_errors, |_, _, _| {}),
        None => Some((raw::Platform::default(), Ctx::new("", Default::default()))),
    };
    let platform = platform.map(|(raw, mut ctx)| {
        let spec = validate::platform(raw, &mut ctx);
        platform_errors.extend(ctx.into_errors());
        spec
    });

    let mut pipeline_errors = Vec::new();
    let staged = stage::<raw::Pipeline>(pipeline_doc, env, &mut pipeline_errors, misplaced_keys);
    let pipeline = staged.map(|(raw, mut ctx)| {
        let default_retry = validate::default_retry();
        let retry = platform.as_ref().map_or(&default_retry, |p| &p.retry);
        let spec = validate::pipeline(raw, retry, base_dir, &mut ctx);
        if let Some(p) = &platform
            && p.transport_mode == TransportMode::Embedded
            && spec.source.source_type != SourceType::Postgres
        {
            ctx.invalid(
                "source.source_type",
                "transport_mode `embedded` (platform) needs source_type `postgres`",
            );
        }
        if let Some(p) = &platform
            && p.transport_mode == TransportMode::Kafka
            && p.kafka.value_converter == ValueConverter::Json
            && !p.kafka.schemas_enable
        {
            for (index, sink) in spec.sinks.iter().enumerate() {
                if let SinkKind::Postgres(pg) = &sink.kind
                    && pg.mode == PostgresMode::Replica
                {
                    ctx.invalid(
                        &format!("sinks[{index}].postgres.mode"),
                        "replica mode creates tables from the source schema: set kafka.schemas_enable: true (platform) or value_converter: avro",
                    );
                }
            }
        }
        pipeline_errors.extend(ctx.into_errors());
        spec
    });

    let mut errors = finish(pipeline_errors);
    errors.extend(finish(platform_errors));
    match (pipeline, platform) {
        (Some(pipeline), Some(platform)) if errors.is_empty() => Ok(Config { pipeline, platform }),
        _ => Err(Errors::new(errors)),
    }
}

/// Parses, substitutes and deserializes one file; returns the raw struct and a checking
/// context, or `None` when the file cannot be deserialized.
fn stage<'a, R: DeserializeOwned>(
    doc: Document<'a>,
    env: Env<'_>,
    errors: &mut Vec<Error>,
    prepare: impl FnOnce(&mut Node, &str, &mut Vec<Error>),
) -> Option<(R, Ctx<'a>)> {
    let mut node = match node::parse(doc.text, doc.name) {
        Ok(node) => node,
        Err(error) => {
            errors.push(*error);
            return None;
        }
    };
    prepare(&mut node, doc.name, errors);
    let before = errors.len();
    substitute_tree(&mut node, "", doc.name, env, errors);
    let (raw, de_errors) = de::from_node::<R>(&node, doc.name);
    // A value whose substitution failed is now null; further errors about it are noise.
    let failed: HashSet<String> = errors[before..].iter().map(|e| e.path.clone()).collect();
    errors.extend(de_errors.into_iter().filter(|e| !failed.contains(&e.path)));
    raw.map(|raw| (raw, Ctx::new(doc.name, node::index(&node)).muting(failed)))
}

/// Reports and removes platform keys written in a pipeline file.
fn misplaced_keys(node: &mut Node, file: &str, errors: &mut Vec<Error>) {
    let Value::Map(entries) = &mut node.value else {
        return;
    };
    entries.retain(|(key, _)| {
        let misplaced = PLATFORM_KEYS.contains(&key.name.as_str());
        if misplaced {
            errors.push(Error::new(
                file,
                Some(key.location),
                key.name.clone(),
                ErrorKind::Misplaced { key: key.name.clone() },
            ));
        }
        !misplaced
    });
}

/// Sorts one file's errors by location (those without one last).
fn finish(mut errors: Vec<Error>) -> Vec<Error> {
    errors.sort_by_key(|e| (e.location.is_none(), e.location));
    errors
}
