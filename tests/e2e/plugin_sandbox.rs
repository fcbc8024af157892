//! The plugin sandbox (docs/architecture.md, plugins), in-process: an adversarial transform
//! (`tests/fixtures/plugins/evil`) spins, exhausts memory, panics, floods its output and probes
//! files, environment and sockets. Each fault must come back as a classified [`PluginError`]
//! within its limit, the same instance must be callable again (it is rebuilt), and a good
//! plugin in the same runtime must still work: the host keeps serving.
//!
//! The tests take one lock so that timings and the process's memory peak are their own.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cdc_host::error::{Classify, ErrorClass};
use cdc_host::event::{ChangeEvent, Op, Position, Row, SourceInfo, TableId, Value};
use cdc_host::plugin::{
    Capabilities, PluginError, PluginLimits, PluginRuntime, PluginSettings, TransformInstance,
    TransformOutput, TransformPlugin,
};
use cdc_tests::build::{fixture_plugin_wasm, plugin_wasm};
use serde_json::json;

const MEMORY_BYTES: usize = 32 << 20;
const CALL_TIMEOUT: Duration = Duration::from_millis(200);
const LIMITS: PluginLimits =
    PluginLimits { memory_bytes: MEMORY_BYTES, call_timeout: CALL_TIMEOUT, max_output_bytes: 1 << 20 };

/// Serialises the tests of this module; held for a whole test.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wasm(name: &'static str, build: fn(&str) -> PathBuf) -> PathBuf {
    static BUILT: Mutex<Vec<(&str, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, path)) = built.iter().find(|(built_name, _)| *built_name == name) {
        return path.clone();
    }
    let path = build(name);
    built.push((name, path.clone()));
    path
}

fn load(runtime: &PluginRuntime, name: &str, path: PathBuf, config: serde_json::Value) -> TransformInstance {
    let spec = PluginSettings {
        name: name.into(),
        path,
        sha256: None,
        config_json: config.to_string(),
        limits: LIMITS,
        capabilities: Capabilities::default(),
    };
    let plugin = TransformPlugin::load(runtime, spec).expect("the plugin loads");
    plugin.instantiate().expect("the plugin configures")
}

/// The adversarial transform with `config`, in its own runtime.
fn evil(config: serde_json::Value) -> (PluginRuntime, TransformInstance) {
    let runtime = PluginRuntime::new().expect("the runtime starts");
    let instance = load(&runtime, "evil", wasm("evil", fixture_plugin_wasm), config);
    (runtime, instance)
}

fn customer(id: i64) -> ChangeEvent {
    ChangeEvent {
        op: Op::Create,
        table: TableId {
            database: Some("shop".into()),
            schema: Some("public".into()),
            table: "customers".into(),
        },
        key: Some(Row::from(vec![("id".into(), Value::Int(id))])),
        before: None,
        after: Some(Row::from(vec![
            ("id".into(), Value::Int(id)),
            ("email".into(), Value::Text(format!("customer{id}@example.com"))),
        ])),
        source: SourceInfo { connector: Some("postgresql".into()), ..SourceInfo::default() },
        ts_ms: Some(1_700_000_000_000),
        columns: None,
        position: Position::Kafka { topic: "sandbox.public.customers".into(), partition: 0, offset: id },
        output_index: 0,
    }
}

fn batch() -> Vec<ChangeEvent> {
    (1..=3).map(customer).collect()
}

/// A good plugin loaded in the same runtime still transforms an event correctly.
fn assert_host_serves(runtime: &PluginRuntime) {
    let mut good = load(runtime, "filter-mask", wasm("filter-mask", plugin_wasm), json!({"mask": ["email"]}));
    let output = good.transform(&[customer(7)]).expect("filter-mask transforms after the fault");
    assert_eq!(output.events.len(), 1, "{output:?}");
    let (origin, event) = &output.events[0];
    assert_eq!(*origin, 0);
    let after = event.after.as_ref().expect("the event keeps its row");
    assert_eq!(after.get("email"), Some(&Value::Text("***".into())));
    assert_eq!(after.get("id"), Some(&Value::Int(7)));
    assert!(output.record_errors.is_empty(), "{output:?}");
}

/// Calls the instance twice (the second call runs on a rebuilt instance after a trap) and
/// hands each outcome, with its wall time, to `check`.
fn twice(
    instance: &mut TransformInstance,
    mut check: impl FnMut(Result<TransformOutput, PluginError>, Duration),
) {
    let events = batch();
    for _ in 0..2 {
        let started = Instant::now();
        let result = instance.transform(&events);
        check(result, started.elapsed());
    }
}

fn trap_reason(result: Result<TransformOutput, PluginError>) -> String {
    match result {
        Err(PluginError::Trap { call: "transform", reason, .. }) => reason,
        other => panic!("expected a trap in `transform`, got {other:?}"),
    }
}

/// Runs a probing behaviour: every record comes back unchanged with a `poison` record error;
/// returns the messages.
fn probe(config: serde_json::Value) -> Vec<String> {
    let _serial = serial();
    let (runtime, mut instance) = evil(config.clone());
    let events = batch();
    let mut messages = Vec::new();
    twice(&mut instance, |result, _| {
        let output = result.expect("a probe does not fail the call");
        let kept: Vec<_> = output.events.iter().map(|(origin, event)| (*origin, event)).collect();
        assert_eq!(kept, events.iter().enumerate().collect::<Vec<_>>(), "records come back unchanged");
        assert_eq!(output.record_errors.len(), events.len());
        for (index, (origin, error)) in output.record_errors.into_iter().enumerate() {
            assert_eq!(origin, index);
            match error {
                PluginError::Returned { class: ErrorClass::Record, message, .. } => messages.push(message),
                other => panic!("expected a poison record error, got {other:?}"),
            }
        }
    });
    assert_host_serves(&runtime);
    eprintln!("{config}: {}", messages[0]);
    messages
}

#[test]
fn a_spinning_transform_is_interrupted_at_its_deadline() {
    let _serial = serial();
    let (runtime, mut instance) = evil(json!({"behavior": "loop"}));
    twice(&mut instance, |result, elapsed| {
        let reason = trap_reason(result);
        eprintln!("loop: trapped after {elapsed:?} (deadline {CALL_TIMEOUT:?}): {reason}");
        assert!(reason.contains("deadline"), "{reason}");
        assert!(elapsed >= CALL_TIMEOUT - Duration::from_millis(50), "interrupted early: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "interrupted late: {elapsed:?}");
    });
    assert_host_serves(&runtime);
}

#[test]
fn a_transform_that_exhausts_memory_traps_at_its_cap() {
    let _serial = serial();
    let (runtime, mut instance) = evil(json!({"behavior": "oom"}));
    let baseline = reset_peak_rss();
    twice(&mut instance, |result, elapsed| {
        let reason = trap_reason(result);
        eprintln!("oom: trapped after {elapsed:?}: {reason}");
        assert!(reason.starts_with("out of memory"), "{reason}");
        assert!(!reason.contains("wasm function"), "no backtrace in the reason: {reason}");
    });
    let peak = status_kib("VmHWM") << 10;
    let growth = peak.saturating_sub(baseline);
    eprintln!("oom: process peak RSS grew by {} MiB (cap {} MiB)", growth >> 20, MEMORY_BYTES >> 20);
    assert!(growth < MEMORY_BYTES + (32 << 20), "RSS grew by {growth} bytes past a cap of {MEMORY_BYTES}");
    assert_host_serves(&runtime);
}

#[test]
fn a_panicking_transform_traps() {
    let _serial = serial();
    let (runtime, mut instance) = evil(json!({"behavior": "panic"}));
    twice(&mut instance, |result, _| {
        let reason = trap_reason(result);
        eprintln!("panic: trapped: {reason}");
        assert!(reason.contains("unreachable"), "{reason}");
    });
    assert_host_serves(&runtime);
}

#[test]
fn an_output_larger_than_the_limit_is_refused() {
    let _serial = serial();
    // 4 MiB fits in the plugin's 32 MiB of memory but not in the 1 MiB output limit.
    let (runtime, mut instance) = evil(json!({"behavior": "huge_output", "bytes": 4 << 20}));
    twice(&mut instance, |result, _| match result {
        Err(error @ PluginError::OutputTooLarge { call: "transform", limit: 1_048_576, .. }) => {
            eprintln!("huge_output (4 MiB): {error}");
            // The pipeline splits the batch; a record whose output alone is too big goes to the DLQ.
            assert_eq!(error.class(), ErrorClass::Record);
        }
        other => panic!("expected an output over the limit, got {other:?}"),
    });
    assert_host_serves(&runtime);
}

#[test]
fn refusing_a_record_twice_is_a_protocol_error_not_a_crash() {
    let _serial = serial();
    let (runtime, mut instance) = evil(json!({"behavior": "repeated_errors"}));
    twice(&mut instance, |result, _| match result {
        Err(PluginError::Protocol { call: "transform", reason, .. }) => {
            eprintln!("repeated_errors: {reason}");
            assert!(reason.contains("out of order, repeated or out of range"), "{reason}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    });
    assert_host_serves(&runtime);
}

#[test]
fn an_output_larger_than_the_memory_cap_traps_in_the_plugin() {
    let _serial = serial();
    let (runtime, mut instance) = evil(json!({"behavior": "huge_output"}));
    twice(&mut instance, |result, _| {
        let reason = trap_reason(result);
        eprintln!("huge_output (64 MiB): trapped: {reason}");
    });
    assert_host_serves(&runtime);
}

#[test]
fn a_transform_cannot_read_host_files() {
    assert!(std::fs::metadata("/etc/passwd").is_ok(), "the probe needs a host file to miss");
    for message in probe(json!({"behavior": "read_file"})) {
        assert!(message.starts_with("read_file: denied: "), "{message}");
        assert!(message.contains("; read_dir: denied: "), "{message}");
        assert!(!message.contains("READ") && !message.contains("root:"), "{message}");
    }
}

#[test]
fn a_transform_cannot_read_host_environment() {
    assert!(std::env::vars().count() > 0, "the probe needs a host environment to miss");
    for message in probe(json!({"behavior": "read_env"})) {
        assert!(message.starts_with("read_env: HOME denied: "), "{message}");
        assert!(message.ends_with("; vars: 0"), "{message}");
    }
}

#[test]
fn a_transform_cannot_open_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local port");
    listener.set_nonblocking(true).expect("a non-blocking listener");
    let port = listener.local_addr().expect("the port").port();
    for message in probe(json!({"behavior": "socket", "port": port})) {
        assert!(message.starts_with("socket: denied: "), "{message}");
    }
    match listener.accept() {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the plugin reached the listener: {other:?}"),
    }
}

/// Resets the process's peak RSS to its current RSS; returns it, in bytes.
fn reset_peak_rss() -> usize {
    std::fs::write("/proc/self/clear_refs", "5").expect("the peak RSS can be reset");
    status_kib("VmRSS") << 10
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}
