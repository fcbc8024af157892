//! A transform written in Python (`plugins/python-mask`, built by componentize-py) loads and runs
//! in the host like a Rust one (docs/architecture.md, plugins: other languages target the same WIT).
//!
//! The host path (`TransformPlugin` in a `PluginRuntime`) always sends valid wire JSON, so the
//! parts of the contract the host cannot reach (a record that is not JSON, `describe`, the log
//! line of `configure`, a refused config) are driven through the component's raw exports with a
//! plain wasmtime store.
//!
//! A Python component is ~18 MiB: compiling it takes seconds, so each path compiles it once.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use cdc_host::error::ErrorClass;
use cdc_host::event::{ChangeEvent, Op, Position, Row, SourceInfo, TableId, Value};
use cdc_host::plugin::{
    Capabilities, PluginError, PluginLimits, PluginRuntime, PluginSettings, TransformPlugin,
};
use cdc_tests::build::python_plugin_wasm;
use serde_json::json;

/// Room for CPython: the interpreter starts within 16 MiB, and every record becomes Python objects.
const LIMITS: PluginLimits = PluginLimits {
    memory_bytes: 256 << 20,
    // The first call of a fresh instance pays for Python's lazy imports; keep it generous.
    call_timeout: Duration::from_secs(10),
    max_output_bytes: 1 << 20,
};

fn config() -> serde_json::Value {
    json!({"mask": ["email"], "mask_with": "***"})
}

fn wasm() -> PathBuf {
    python_plugin_wasm("python-mask")
}

fn table() -> TableId {
    TableId { database: Some("shop".into()), schema: Some("public".into()), table: "customers".into() }
}

fn row(columns: &[(&str, Value)]) -> Row {
    columns.iter().map(|(name, value)| (*name, value.clone())).collect()
}

fn event(op: Op, offset: i64, key: Row, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
    ChangeEvent {
        op,
        table: table(),
        key: Some(key),
        before,
        after,
        source: SourceInfo { connector: Some("postgresql".into()), ..SourceInfo::default() },
        ts_ms: Some(1_700_000_000_000 + offset),
        columns: None,
        position: Position::Kafka { topic: "shop.public.customers".into(), partition: 0, offset },
        output_index: 0,
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.into())
}

/// An insert with an email, an update whose email is null (and an unchanged TOAST column), and
/// a delete whose key and before-image carry the email.
fn batch() -> Vec<ChangeEvent> {
    let insert = event(
        Op::Create,
        1,
        row(&[("id", Value::Int(1))]),
        None,
        Some(row(&[("id", Value::Int(1)), ("email", text("ada@example.com")), ("name", text("Ada"))])),
    );
    let update = event(
        Op::Update,
        2,
        row(&[("id", Value::Int(2))]),
        Some(row(&[("id", Value::Int(2)), ("email", Value::Null), ("name", text("Bob"))])),
        Some(row(&[("id", Value::Int(2)), ("email", Value::Null), ("name", Value::Unavailable)])),
    );
    let delete = event(
        Op::Delete,
        3,
        row(&[("id", Value::Int(3)), ("email", text("cy@example.com"))]),
        Some(row(&[("id", Value::Int(3)), ("email", text("cy@example.com"))])),
        None,
    );
    vec![insert, update, delete]
}

/// `event` with every non-null `email` replaced by `***`: what the plugin must return.
fn masked(mut event: ChangeEvent) -> ChangeEvent {
    for row in [&mut event.key, &mut event.before, &mut event.after].into_iter().flatten() {
        if let Some(value) = row.get_mut("email").filter(|value| !matches!(value, Value::Null)) {
            *value = text("***");
        }
    }
    event
}

/// The tests of this module compile the 18 MiB component; one at a time keeps the two shared
/// cores (and the time limits) for the test that runs.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn the_host_runs_the_python_transform() {
    let _serial = serial();
    let runtime = PluginRuntime::new().expect("the runtime starts");
    let spec = PluginSettings {
        name: "python-mask".into(),
        path: wasm(),
        sha256: None,
        config_json: config().to_string(),
        limits: LIMITS,
        capabilities: Capabilities::default(),
    };
    let started = Instant::now();
    let plugin = TransformPlugin::load(&runtime, spec).expect("the Python component loads");
    let loaded = started.elapsed();
    let mut instance = plugin.instantiate().expect("the Python component configures");
    eprintln!("python-mask: load {loaded:?}, instantiate {:?}", started.elapsed() - loaded);

    let events = batch();
    // Twice: the second call runs on the same, already warm instance.
    for call in 0..2 {
        let output = instance.transform(&events).unwrap_or_else(|error| panic!("call {call}: {error}"));
        assert!(output.record_errors.is_empty(), "call {call}: {:?}", output.record_errors);
        let origins: Vec<usize> = output.events.iter().map(|(origin, _)| *origin).collect();
        assert_eq!(origins, [0, 1, 2], "call {call}: every record is kept, in order");
        for ((_, got), input) in output.events.iter().zip(&events) {
            assert_eq!(got, &masked(input.clone()), "call {call}");
        }
    }

    // The masked values, spelled out (the helper above could be wrong the same way as the plugin).
    let output = instance.transform(&events).expect("transforms");
    let after = |index: usize| output.events[index].1.after.clone();
    assert_eq!(after(0).and_then(|row| row.get("email").cloned()), Some(text("***")));
    assert_eq!(after(0).and_then(|row| row.get("name").cloned()), Some(text("Ada")));
    assert_eq!(after(1).and_then(|row| row.get("email").cloned()), Some(Value::Null));
    assert_eq!(after(1).and_then(|row| row.get("name").cloned()), Some(Value::Unavailable));
    let delete = &output.events[2].1;
    assert_eq!(delete.op, Op::Delete);
    assert_eq!(delete.after, None);
    assert_eq!(delete.key.as_ref().and_then(|row| row.get("email")), Some(&text("***")));
    assert_eq!(delete.before.as_ref().and_then(|row| row.get("email")), Some(&text("***")));
    assert_eq!(delete.position, events[2].position, "the host keeps the origin's position");
}

#[test]
fn the_host_refuses_a_bad_config_of_the_python_transform() {
    let _serial = serial();
    let runtime = PluginRuntime::new().expect("the runtime starts");
    let spec = PluginSettings {
        name: "python-mask".into(),
        path: wasm(),
        sha256: None,
        config_json: json!({"mask": "email"}).to_string(),
        limits: LIMITS,
        capabilities: Capabilities::default(),
    };
    let plugin = TransformPlugin::load(&runtime, spec).expect("the Python component loads");
    match plugin.instantiate() {
        Err(PluginError::Returned { call: "configure", class: ErrorClass::Fatal, message, .. }) => {
            assert!(message.contains("`mask`"), "{message}");
        }
        Err(other) => panic!("expected a fatal error from configure, got {other}"),
        Ok(_) => panic!("expected a fatal error from configure, got an instance"),
    }
}

/// The component's own exports, without the host: for what the host never sends.
mod raw {
    use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({ path: "../wit", world: "transform" });

    pub use cdc::plugin::host::Level;
    pub use cdc::plugin::types::{Batch, ErrorClass, PluginError, PluginInfo};
    pub use exports::cdc::plugin::transformer::Transformed;

    pub struct State {
        wasi: WasiCtx,
        table: ResourceTable,
        pub logs: Vec<(Level, String)>,
    }

    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
        }
    }

    impl cdc::plugin::host::Host for State {
        fn log(&mut self, level: Level, message: String) {
            self.logs.push((level, message));
        }
        fn counter_add(&mut self, _: String, _: u64) {}
    }

    impl cdc::plugin::types::Host for State {}

    /// The component, compiled once per process.
    pub struct Plugin {
        engine: Engine,
        pre: TransformPre<State>,
    }

    pub struct Instance {
        pub store: Store<State>,
        bindings: Transform,
    }

    impl Plugin {
        pub fn load(path: &std::path::Path) -> Plugin {
            // Unoptimised code: this engine runs a few calls, and a debug build of cranelift
            // takes minutes to optimise 18 MiB of CPython.
            let mut config = wasmtime::Config::new();
            config.cranelift_opt_level(wasmtime::OptLevel::None);
            let engine = Engine::new(&config).expect("the engine builds");
            let component = compile_cached(&engine, path);
            let mut linker = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI links");
            Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).expect("host links");
            let pre = TransformPre::new(linker.instantiate_pre(&component).expect("the imports resolve"))
                .expect("the component exports the transform world");
            Plugin { engine, pre }
        }

        pub fn instantiate(&self) -> Instance {
            let state =
                State { wasi: WasiCtx::builder().build(), table: ResourceTable::new(), logs: Vec::new() };
            let mut store = Store::new(&self.engine, state);
            let bindings = self.pre.instantiate(&mut store).expect("the component instantiates");
            Instance { store, bindings }
        }
    }

    impl Instance {
        pub fn describe(&mut self) -> PluginInfo {
            self.bindings.cdc_plugin_transformer().call_describe(&mut self.store).expect("no trap")
        }

        pub fn configure(&mut self, config: &str) -> Result<(), PluginError> {
            self.bindings.cdc_plugin_transformer().call_configure(&mut self.store, config).expect("no trap")
        }

        pub fn transform(&mut self, records: &[&[u8]]) -> Result<Transformed, PluginError> {
            let mut batch = Batch { data: Vec::new(), ends: Vec::new() };
            for record in records {
                batch.data.extend_from_slice(record);
                batch.ends.push(u32::try_from(batch.data.len()).expect("a small batch"));
            }
            self.bindings.cdc_plugin_transformer().call_transform(&mut self.store, &batch).expect("no trap")
        }
    }

    /// The component compiled by `engine`, from `<path>.raw-test.cwasm` when that is newer than
    /// `path` (a debug build of cranelift takes a minute or two for CPython), else compiled and
    /// stored there.
    fn compile_cached(engine: &Engine, path: &std::path::Path) -> Component {
        let mut artefact = path.as_os_str().to_owned();
        artefact.push(".raw-test.cwasm");
        let artefact = std::path::PathBuf::from(artefact);
        let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified(&artefact).zip(modified(path)).is_some_and(|(compiled, source)| compiled > source)
            && let Ok(component) =
                std::fs::read(&artefact).map_err(Into::into).and_then(|a| deserialize(engine, &a))
        {
            return component;
        }
        let bytes = std::fs::read(path).expect("the component is readable");
        let compiled = engine.precompile_component(&bytes).expect("the component compiles");
        // Storing is an optimisation: a failed write only means compiling again next time.
        let staging = artefact.with_extension("tmp");
        let _ = std::fs::write(&staging, &compiled).and_then(|()| std::fs::rename(&staging, &artefact));
        deserialize(engine, &compiled).expect("the artefact just compiled loads")
    }

    #[allow(unsafe_code)]
    fn deserialize(engine: &Engine, artefact: &[u8]) -> wasmtime::Result<Component> {
        // SAFETY: `artefact` is `Engine::precompile_component` output, just produced or written
        // by this test beside the component in the build's own target directory; wasmtime
        // refuses artefacts of another wasmtime version or engine configuration.
        unsafe { Component::deserialize(engine, artefact) }
    }

    /// Record `index` of an output batch.
    pub fn record(batch: &Batch, index: usize) -> &[u8] {
        let start = if index == 0 { 0 } else { batch.ends[index - 1] as usize };
        &batch.data[start..batch.ends[index] as usize]
    }
}

fn raw_plugin() -> &'static raw::Plugin {
    static PLUGIN: OnceLock<raw::Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| raw::Plugin::load(Path::new(&wasm())))
}

fn wire(event: &ChangeEvent) -> Vec<u8> {
    serde_json::to_vec(&cdc_host::event::to_wire(event)).expect("JSON")
}

#[test]
fn a_record_that_is_not_json_is_poison_and_the_others_pass() {
    let _serial = serial();
    let mut instance = raw_plugin().instantiate();
    instance.configure(&config().to_string()).expect("configures");
    let events = batch();
    let (first, last) = (wire(&events[0]), wire(&events[2]));
    let garbage: &[&[u8]] =
        &[b"not json at all", b"[1, 2]", b"{\"op\":\"c\",\"after\":\"text\"}", b"\xff\xfe"];
    for bad in garbage {
        let transformed = instance.transform(&[&first, bad, &last]).expect("the batch goes on");
        assert_eq!(transformed.origins, [0, 2], "the bad record is neither kept nor the others lost");
        assert_eq!(transformed.errors.len(), 1, "{:?}", transformed.errors);
        let error = &transformed.errors[0];
        assert_eq!(error.index, 1);
        assert_eq!(error.error.class, raw::ErrorClass::Poison, "{}", error.error.message);
        assert!(error.error.message.starts_with("cannot read input record"), "{}", error.error.message);
        let kept: Vec<serde_json::Value> = (0..2)
            .map(|index| serde_json::from_slice(raw::record(&transformed.records, index)).expect("wire JSON"))
            .collect();
        assert_eq!(kept[0]["after"]["email"], "***");
        assert_eq!(kept[1]["key"]["email"], "***");
        assert_eq!(kept[1]["before"]["email"], "***");
    }
}

#[test]
fn describe_configure_and_log_through_the_host_import() {
    let _serial = serial();
    let mut instance = raw_plugin().instantiate();
    let info = instance.describe();
    assert_eq!((info.name.as_str(), info.version.as_str()), ("python-mask", "0.1.0"));
    let params: Vec<(&str, &str, Option<&str>)> =
        info.config.iter().map(|p| (p.name.as_str(), p.kind.as_str(), p.default_value.as_deref())).collect();
    assert_eq!(params, [("mask", "list", Some("[]")), ("mask_with", "string", Some("\"***\""))]);
    assert!(info.capabilities.is_empty());

    let refused = instance.transform(&[b"{}"]).expect_err("transform before configure fails");
    assert_eq!(refused.class, raw::ErrorClass::Fatal);

    instance.configure(&json!({"mask": ["email"], "mask_with": "<hidden>"}).to_string()).expect("configures");
    let logs = &instance.store.data().logs;
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].0, raw::Level::Info);
    assert!(logs[0].1.contains("email") && logs[0].1.contains("<hidden>"), "{logs:?}");

    for (bad, key) in [
        (json!({"mask": [1]}), "`mask`"),
        (json!({"mask_with": 3}), "`mask_with`"),
        (json!({"colums": []}), "`colums`"),
    ] {
        let error = instance.configure(&bad.to_string()).expect_err("a bad config is refused");
        assert_eq!(error.class, raw::ErrorClass::Fatal);
        assert!(error.message.contains(key), "{bad}: {}", error.message);
    }
    // An empty and a null config mean the defaults: nothing masked.
    for empty in ["{}", "null"] {
        instance.configure(empty).expect("the defaults configure");
        let transformed = instance.transform(&[&wire(&batch()[0])]).expect("transforms");
        let record: serde_json::Value =
            serde_json::from_slice(raw::record(&transformed.records, 0)).expect("wire JSON");
        assert_eq!(record["after"]["email"], "ada@example.com");
    }
}
