//! `cdc plugin test PLUGIN.wasm --events FILE.jsonl [--expect FILE.jsonl] [--config JSON]
//! [--kind transform|sink] [--dir PATH]`: runs a component in the real host runtime (the
//! pipeline's default limits, no capabilities but `--dir`) over recorded change events, as one
//! batch, and prints its output on stdout, one JSON value per line:
//!
//! * a transform: each output event in the wire form; record errors go to stderr with their
//!   class;
//! * a sink: `open`, `write`, `flush` at the last event's id, `close`; each refused record as
//!   `{"index", "id", "class", "message"}` (index: the event's place in the batch, from 0).
//!
//! With `--expect`, the output is compared with the file as JSON values, line by line (order
//! matters, key order does not) and the first mismatches are shown field by field. Exit 0 when
//! it ran (and matched), 1 on a mismatch or a plugin error, 2 on a usage error.

use std::path::Path;

use serde_json::{Value as Json, json};

use super::{Failure, Kind, Outcome, TestArgs};
use crate::error::{Classify, ErrorClass};
use crate::event::{self, ChangeEvent, Op, Position, SourceInfo, TableId, WalPosition};
use crate::ops::telemetry::{self, LogFormat};
use crate::plugin::{
    Capabilities, GrantedDirectory, PluginError, PluginLimits, PluginRuntime, PluginSettings, PluginWorld,
    SinkPlugin, TransformPlugin,
};

/// Mismatching lines shown, and differences shown per line.
const SHOWN_LINES: usize = 5;
const SHOWN_DIFFERENCES: usize = 8;

pub(super) fn run(args: &TestArgs) -> Outcome {
    // The plugin's own log lines (cdc_sdk::log) are part of what an author tests.
    telemetry::init(LogFormat::Human, "warn,cdc_host::plugin=info");
    match serde_json::from_str::<Json>(&args.config) {
        Ok(Json::Object(_)) => {}
        Ok(_) => {
            return Err(Failure::Usage(
                "--config must be a JSON object, e.g. '{\"column\": \"status\"}'".into(),
            ));
        }
        Err(error) => return Err(Failure::Usage(format!("--config is not JSON: {error}"))),
    }
    super::inspect::read_plugin(&args.plugin)?;
    let (events, lines) = read_events(&args.events)?;
    let expected = args.expect.as_deref().map(read_expected).transpose()?;

    let kind = match args.kind {
        Some(kind) => kind,
        None => match super::inspect::inspect(&args.plugin)?.world {
            PluginWorld::Transform => Kind::Transform,
            PluginWorld::Sink => Kind::Sink,
        },
    };
    let spec = PluginSettings {
        name: args
            .plugin
            .file_stem()
            .map_or_else(|| "plugin".into(), |stem| stem.to_string_lossy().into_owned()),
        path: args.plugin.clone(),
        sha256: None,
        config_json: args.config.clone(),
        limits: PluginLimits::default(),
        capabilities: Capabilities {
            env: Vec::new(),
            directory: args.dir.as_ref().map(|dir| GrantedDirectory {
                host_path: dir.clone(),
                mount: args.mount.clone(),
                read_only: false,
            }),
            allowed_hosts: Vec::new(),
        },
    };
    let runtime = PluginRuntime::new().map_err(plugin_failure)?;
    let at = |index: usize| {
        format!("{}:{} ({})", args.events.display(), lines[index], events[index].idempotency_id())
    };
    let output = match kind {
        Kind::Transform => run_transform(&runtime, spec, &events, at)?,
        Kind::Sink => run_sink(&runtime, spec, &events, at)?,
    };
    for line in &output {
        println!("{line}");
    }
    match (&args.expect, expected) {
        (Some(file), Some(expected)) => compare(&output, &expected, file),
        _ => Ok(()),
    }
}

fn run_transform(
    runtime: &PluginRuntime,
    spec: PluginSettings,
    events: &[ChangeEvent],
    at: impl Fn(usize) -> String,
) -> Result<Vec<Json>, Failure> {
    let plugin = TransformPlugin::load(runtime, spec).map_err(plugin_failure)?;
    let mut instance = plugin.instantiate().map_err(plugin_failure)?;
    let output = instance.transform(events).map_err(plugin_failure)?;
    for (index, error) in &output.record_errors {
        eprintln!("record error: {}: {}", at(*index), describe(error));
    }
    eprintln!(
        "transform: {} events in, {} out, {} record errors",
        events.len(),
        output.events.len(),
        output.record_errors.len()
    );
    Ok(output.events.iter().map(|(_, event)| event::to_wire(event)).collect())
}

fn run_sink(
    runtime: &PluginRuntime,
    spec: PluginSettings,
    events: &[ChangeEvent],
    at: impl Fn(usize) -> String,
) -> Result<Vec<Json>, Failure> {
    let plugin = SinkPlugin::load(runtime, spec).map_err(plugin_failure)?;
    let mut instance = plugin.instantiate().map_err(plugin_failure)?;
    let refused = instance.write(events).map_err(plugin_failure)?;
    let mut output = Vec::new();
    for (index, error) in &refused {
        eprintln!("refused: {}: {}", at(*index), describe(error));
        let (class, message) = match error {
            PluginError::Returned { class, message, .. } => (wit_class(*class), message.clone()),
            other => (wit_class(other.class()), other.to_string()),
        };
        let id = events[*index].idempotency_id();
        output.push(json!({"index": index, "id": id, "class": class, "message": message}));
    }
    let checkpoint = events.last().map(|event| event.idempotency_id()).unwrap_or_default();
    instance.flush(&checkpoint).map_err(plugin_failure)?;
    if let Err(reason) = instance.health() {
        eprintln!("health: {reason}");
    }
    instance.close();
    eprintln!(
        "sink: {} events written, {} refused, flushed at {:?}",
        events.len(),
        refused.len(),
        checkpoint
    );
    Ok(output)
}

/// The recorded events of `file`, with the line number of each.
fn read_events(file: &Path) -> Result<(Vec<ChangeEvent>, Vec<usize>), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| Failure::Failed(format!("cannot read {}: {error}", file.display())))?;
    let mut events = Vec::new();
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let at = |problem: String| Failure::Failed(format!("{}:{number}: {problem}", file.display()));
        let record: Json = serde_json::from_str(line).map_err(|error| at(format!("not JSON: {error}")))?;
        for field in ["op", "table"] {
            if record.get(field).is_none() {
                return Err(at(format!(
                    "no `{field}`: a recorded event is one change event in the wire form"
                )));
            }
        }
        let position = record.get("id").and_then(Json::as_str).and_then(parse_id).unwrap_or_else(|| {
            Position::Kafka { topic: "recorded".into(), partition: 0, offset: events.len() as i64 }
        });
        let event = event::from_wire(line.as_bytes(), &blank_event(position))
            .map_err(|error| at(error.to_string()))?;
        events.push(event);
        lines.push(number);
    }
    Ok((events, lines))
}

/// The expected output: one JSON value per non-blank line.
fn read_expected(file: &Path) -> Result<Vec<Json>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| Failure::Failed(format!("cannot read {}: {error}", file.display())))?;
    let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    lines
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| {
                Failure::Failed(format!("{}:{}: not JSON: {error}", file.display(), index + 1))
            })
        })
        .collect()
}

/// The position a wire `id` names: `topic/partition/offset` or `lsn/<hex>/<index>` (whose
/// topic the id does not hold).
fn parse_id(id: &str) -> Option<Position> {
    if let Some(wal) = id.strip_prefix("lsn/") {
        let (lsn, index) = wal.split_once('/')?;
        let position =
            WalPosition { commit_lsn: u64::from_str_radix(lsn, 16).ok()?, index: index.parse().ok()? };
        return Some(Position::Wal { topic: "".into(), position });
    }
    let mut parts = id.rsplitn(3, '/');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next().filter(|topic| !topic.is_empty())?;
    Some(Position::Kafka { topic: topic.into(), partition, offset })
}

/// An event with nothing but a position, for `from_wire` to fill in.
fn blank_event(position: Position) -> ChangeEvent {
    ChangeEvent {
        op: Op::Create,
        table: TableId { database: None, schema: None, table: String::new() },
        key: None,
        before: None,
        after: None,
        source: SourceInfo::default(),
        ts_ms: None,
        columns: None,
        position,
        output_index: 0,
    }
}

/// Compares the output with the expected lines; prints the first mismatches on stderr.
fn compare(output: &[Json], expected: &[Json], file: &Path) -> Outcome {
    let mismatches: Vec<usize> = (0..output.len().max(expected.len()))
        .filter(|&index| output.get(index) != expected.get(index))
        .collect();
    if mismatches.is_empty() {
        eprintln!("ok: the output matches {} ({} lines)", file.display(), expected.len());
        return Ok(());
    }
    eprintln!(
        "mismatch: {} of {} lines differ from {} (output: {} lines, expected: {})",
        mismatches.len(),
        output.len().max(expected.len()),
        file.display(),
        output.len(),
        expected.len()
    );
    for &index in mismatches.iter().take(SHOWN_LINES) {
        // After a dropped or added event every later line differs: the ids say so at once.
        let id = |line: Option<&Json>| line.and_then(|line| line.get("id")?.as_str().map(str::to_owned));
        match (id(expected.get(index)), id(output.get(index))) {
            (Some(expected_id), Some(actual_id)) if expected_id != actual_id => {
                eprintln!("line {} (expected the event {expected_id}, got {actual_id}):", index + 1);
            }
            _ => eprintln!("line {}:", index + 1),
        }
        match (expected.get(index), output.get(index)) {
            (Some(expected), Some(actual)) => {
                let mut found = Vec::new();
                differences("", expected, actual, &mut found);
                for difference in found.iter().take(SHOWN_DIFFERENCES) {
                    eprintln!("  {difference}");
                }
                if found.len() > SHOWN_DIFFERENCES {
                    eprintln!("  … and {} more differences", found.len() - SHOWN_DIFFERENCES);
                }
            }
            (Some(expected), None) => eprintln!("  missing from the output; expected {expected}"),
            (None, Some(actual)) => eprintln!("  not expected; the output has {actual}"),
            (None, None) => {}
        }
    }
    if mismatches.len() > SHOWN_LINES {
        eprintln!("… and {} more lines", mismatches.len() - SHOWN_LINES);
    }
    Err(Failure::Reported)
}

/// The paths at which `actual` differs from `expected`, each with both values.
fn differences(path: &str, expected: &Json, actual: &Json, found: &mut Vec<String>) {
    let shown = if path.is_empty() { "the line" } else { path };
    match (expected, actual) {
        (Json::Object(expected), Json::Object(actual)) => {
            for (key, expected_value) in expected {
                let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match actual.get(key) {
                    Some(actual_value) => differences(&inner, expected_value, actual_value, found),
                    None => found.push(format!("{inner}: expected {expected_value}, missing")),
                }
            }
            for (key, actual_value) in actual.iter().filter(|(key, _)| !expected.contains_key(*key)) {
                let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                found.push(format!("{inner}: not expected, got {actual_value}"));
            }
        }
        (Json::Array(expected_items), Json::Array(actual_items))
            if expected_items.len() == actual_items.len() =>
        {
            for (index, (expected, actual)) in expected_items.iter().zip(actual_items).enumerate() {
                differences(&format!("{path}[{index}]"), expected, actual, found);
            }
        }
        _ if expected != actual => found.push(format!("{shown}: expected {expected}, got {actual}")),
        _ => {}
    }
}

/// A plugin error as a failure of the command.
fn plugin_failure(error: PluginError) -> Failure {
    Failure::Failed(error.to_string())
}

/// A record's error for the author: the WIT class and the plugin's message.
fn describe(error: &PluginError) -> String {
    match error {
        PluginError::Returned { class, message, .. } => format!("{}: {message}", wit_class(*class)),
        other => other.to_string(),
    }
}

/// The WIT `error-class` name of a host class, as the author wrote it.
fn wit_class(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Transient { .. } => "retryable",
        ErrorClass::Record => "poison",
        ErrorClass::Fatal => "fatal",
        // Not a class a plugin returns: the host's name for a trap.
        ErrorClass::Fault => "trap",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_positions() {
        let kafka = parse_id("shop.public.orders/0/12").unwrap();
        assert_eq!(kafka.to_string(), "shop.public.orders/0/12");
        assert_eq!(parse_id("a/b/c/1/2").unwrap().to_string(), "a/b/c/1/2");
        assert_eq!(
            parse_id("lsn/1A/3").unwrap(),
            Position::Wal { topic: "".into(), position: WalPosition { commit_lsn: 26, index: 3 } }
        );
        assert_eq!(parse_id("no-offset"), None);
        assert_eq!(parse_id("/0/1"), None);
    }

    #[test]
    fn differences_name_the_field() {
        let expected = json!({"op": "c", "after": {"id": 1, "status": "live"}, "id": "t/0/0"});
        let actual = json!({"op": "c", "after": {"id": 1, "status": "test", "extra": true}, "id": "t/0/0"});
        let mut found = Vec::new();
        differences("", &expected, &actual, &mut found);
        assert_eq!(
            found,
            ["after.status: expected \"live\", got \"test\"", "after.extra: not expected, got true"]
        );
        found.clear();
        differences("", &json!([1, 2]), &json!([1]), &mut found);
        assert_eq!(found, ["the line: expected [1,2], got [1]"]);
    }

    #[test]
    fn key_order_does_not_matter_but_line_order_does() {
        let file = Path::new("expect.jsonl");
        let output = [json!({"a": 1, "b": 2}), json!({"c": 3})];
        assert!(compare(&output, &[json!({"b": 2, "a": 1}), json!({"c": 3})], file).is_ok());
        assert!(compare(&output, &[json!({"c": 3}), json!({"a": 1, "b": 2})], file).is_err());
        assert!(compare(&output, &output[..1], file).is_err());
    }
}
