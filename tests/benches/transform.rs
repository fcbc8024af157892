//! Per-record cost of one transform natively and as wasm in the host (docs/architecture.md, plugins).
//!
//! The transform is `tests/fixtures/plugins/bench-mask` (the SDK's `mask_columns` example,
//! masking `email`), one source compiled twice:
//!
//! * **wasm**: the crate built for `wasm32-wasip2` and run by the host as a pipeline runs it,
//!   `TransformInstance::transform` in a `PluginRuntime` (epoch interruption on, deadline armed
//!   per call, pooling allocator, memory limiter): pack the events, copy them in, the guest's
//!   SDK glue (decode, transform, encode), copy out, read the output back into events.
//! * **native**: the same `src/lib.rs` compiled into this binary and called through the SDK glue
//!   function the component's export calls (`cdc_sdk::__private::transform`), wrapped in the
//!   same host-side packing and reading as the wasm call, so both sides do identical work and
//!   the ratio is the price of the sandbox.
//! * **glue**: the glue call alone, natively, on a batch packed beforehand: the plugin's share of
//!   the work. **guest** = wasm - (native - glue): the same share inside the sandbox (copies in
//!   and out of linear memory, the call under its deadline, the glue compiled to wasm).
//! * **pack** and **read**: the host's share, measured alone: packing the events into the wire
//!   batch, and reading the plugin's output records back into events (both through the shared
//!   `cdc-event` codec). The baselines of the same run: **serde write**, `serde_json` writing
//!   the same records from ready JSON trees, and **serde parse**, `serde_json` parsing the
//!   output records into JSON trees (what the host did before, and only part of its cost then).
//!
//! Each figure is the median of several samples of ~80 ms. Run it in release:
//! `cargo bench -p cdc-tests --bench transform`. `CDC_BENCH_PYTHON=1` adds the Python plugin
//! (`plugins/python-mask`, needs componentize-py 0.25.1); its 18 MiB component takes a while to
//! compile.

#[path = "../fixtures/plugins/bench-mask/src/lib.rs"]
mod bench_mask;

// The allocator of the `cdc` binary: packing and reading allocate per batch and per value.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bench_mask::BenchMask;
use cdc_host::event::{self, ChangeEvent, Op, Position, Row, SourceBlock, SourceInfo, TableId, Value};
use cdc_host::plugin::{
    Capabilities, PackedBatch, PluginLimits, PluginRuntime, PluginSettings, TransformPlugin,
};
use cdc_sdk::__private as glue;
use cdc_tests::build::{fixture_plugin_wasm, python_plugin_wasm};

const BATCH_SIZES: [usize; 3] = [1, 100, 1000];
const EVENT_SIZES: [usize; 3] = [200, 1000, 2000];
/// Wall time of one sample, and samples per figure (the median is reported).
const SAMPLE: Duration = Duration::from_millis(80);
const SAMPLES: usize = 9;

const LIMITS: PluginLimits =
    PluginLimits { memory_bytes: 64 << 20, call_timeout: Duration::from_secs(1), max_output_bytes: 16 << 20 };

fn main() {
    // Tuned as the `cdc` binary tunes it.
    cdc_host::allocator::tune();
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == LOAD_TIMES_ARG) {
        load_times(args.get(at + 1).map_or("?", String::as_str));
        return;
    }
    let started = Instant::now();
    let wasm = fixture_plugin_wasm("bench-mask");
    let config = serde_json::json!({"columns": ["email"]}).to_string();
    let runtime = PluginRuntime::new().expect("the plugin runtime starts");
    let plugin = TransformPlugin::load(&runtime, spec("bench-mask", wasm.clone(), config.clone(), LIMITS))
        .expect("the plugin loads");
    let mut instance = plugin.instantiate().expect("the plugin configures");
    let mut native = None;
    glue::configure::<BenchMask>(&mut native, &config).expect("the native transform configures");

    println!("bench-mask: {} ({} KiB)", wasm.display(), file_kib(&wasm));
    println!();
    println!(
        "{:>6} {:>10} {:>14} {:>14} {:>8} {:>12} {:>12} {:>11} {:>12} {:>12} {:>12} {:>12}",
        "batch",
        "event",
        "native ns/rec",
        "wasm ns/rec",
        "ratio",
        "glue ns/rec",
        "guest ns/rec",
        "guest/glue",
        "pack ns/rec",
        "serde write",
        "read ns/rec",
        "serde parse"
    );
    for size in EVENT_SIZES {
        for batch_size in BATCH_SIZES {
            let events = events(batch_size, size);
            let wire_bytes = event::pack(&events).expect("a batch fits").data.len() / batch_size;

            // Both sides must produce the same events before their speed means anything.
            let expected = native_call(&mut native, &events);
            let got = instance.transform(&events).expect("the wasm transform runs");
            assert!(got.record_errors.is_empty(), "{:?}", got.record_errors);
            assert_eq!(got.events, expected, "wasm and native disagree");
            assert_eq!(masked_emails(&got.events), batch_size, "every email is masked");

            let native_ns = per_record(batch_size, || {
                black_box(native_call(&mut native, black_box(&events)));
            });
            let wasm_ns = per_record(batch_size, || {
                black_box(instance.transform(black_box(&events)).expect("the wasm transform runs"));
            });
            let packed = event::pack(&events).expect("a batch fits");
            let glue_ns = per_record(batch_size, || {
                black_box(
                    glue::transform(&mut native, black_box(&packed.data), &packed.ends).expect("transforms"),
                );
            });
            // The host's share (packing, reading back) is the same on both sides; what is left
            // of the wasm figure is the guest's share: copies in and out, the call, the glue in wasm.
            let guest_ns = wasm_ns - (native_ns - glue_ns);
            let pack_ns = per_record(batch_size, || {
                black_box(event::pack(black_box(&events)).expect("a batch fits"));
            });
            let trees: Vec<serde_json::Value> = events.iter().map(event::to_wire).collect();
            let serde_write_ns = per_record(batch_size, || {
                let mut data = Vec::with_capacity(events.len() * 512);
                for tree in black_box(&trees) {
                    serde_json::to_writer(&mut data, tree).expect("JSON");
                }
                black_box(data);
            });
            let output = glue::transform(&mut native, &packed.data, &packed.ends).expect("transforms");
            let records = PackedBatch { data: output.records.data, ends: output.records.ends };
            let read_ns = per_record(batch_size, || {
                for (index, &origin) in output.origins.iter().enumerate() {
                    let bytes = records.record(index).expect("a record per origin");
                    black_box(
                        event::from_wire(black_box(bytes), &events[origin as usize]).expect("wire JSON"),
                    );
                }
            });
            let serde_parse_ns = per_record(batch_size, || {
                for index in 0..records.len() {
                    let bytes = records.record(index).expect("a record per origin");
                    black_box(serde_json::from_slice::<serde_json::Value>(black_box(bytes)).expect("JSON"));
                }
            });
            println!(
                "{:>6} {:>8} B {:>14.0} {:>14.0} {:>7.2}x {:>12.0} {:>12.0} {:>10.2}x {:>12.0} {:>12.0} {:>12.0} {:>12.0}",
                batch_size,
                wire_bytes,
                native_ns,
                wasm_ns,
                wasm_ns / native_ns,
                glue_ns,
                guest_ns,
                guest_ns / glue_ns,
                pack_ns,
                serde_write_ns,
                read_ns,
                serde_parse_ns
            );
        }
    }

    // Load and instantiate times, in child processes: the host caches compiled components
    // (`CDC_PLUGIN_CACHE_DIR`), so one child runs with the cache off (every load compiles) and
    // one with an empty cache (the first load compiles and stores, the next ones read it back).
    let python = std::env::var_os("CDC_BENCH_PYTHON").is_some_and(|value| value != "0");
    let cache = tempfile::tempdir().expect("a temporary cache directory");
    println!();
    println!(
        "{:<12} {:<6} {:>12} {:>14} {:>14} {:>18}",
        "plugin", "cache", "first load", "load (median)", "1st instance", "instantiate (med)"
    );
    for (label, dir) in [("off", PathBuf::from("/dev/null/cdc-no-cache")), ("empty", cache.path().to_owned())]
    {
        let status = std::process::Command::new(std::env::current_exe().expect("the bench's own path"))
            .args([LOAD_TIMES_ARG, label])
            .env("CDC_PLUGIN_CACHE_DIR", dir)
            .status()
            .expect("the load-time child runs");
        assert!(status.success(), "the load-time child failed: {status}");
    }
    if python {
        python_per_record(&runtime);
    }
    println!();
    println!("total {:.1?}", started.elapsed());
}

const LOAD_TIMES_ARG: &str = "--load-times";

/// In a child process (with `CDC_PLUGIN_CACHE_DIR` set by the parent): load and instantiate
/// times of bench-mask, and of python-mask with `CDC_BENCH_PYTHON`. Load = read, sha256, compile
/// or read from the cache, link; instantiate = a fresh instance from `InstancePre` + configure.
fn load_times(cache: &str) {
    let runtime = PluginRuntime::new().expect("the plugin runtime starts");
    let config = serde_json::json!({"columns": ["email"]}).to_string();
    let spec = spec("bench-mask", fixture_plugin_wasm("bench-mask"), config, LIMITS);
    print_load_times(&runtime, &spec, cache, 7, 201);
    if std::env::var_os("CDC_BENCH_PYTHON").is_some_and(|value| value != "0") {
        print_load_times(&runtime, &python_spec(), cache, 1, 5);
    }
}

fn print_load_times(
    runtime: &PluginRuntime,
    spec: &PluginSettings,
    cache: &str,
    loads: usize,
    instances: usize,
) {
    let load = || {
        let started = Instant::now();
        let plugin = TransformPlugin::load(runtime, spec.clone()).expect("the plugin loads");
        (plugin, started.elapsed())
    };
    let (plugin, first_load) = load();
    let median_load = median_of(loads, || black_box(load()).1);
    let started = Instant::now();
    drop(black_box(plugin.instantiate().expect("the plugin configures")));
    let first_instance = started.elapsed();
    let instantiate = median_of(instances, || {
        let started = Instant::now();
        black_box(plugin.instantiate().expect("the plugin configures"));
        started.elapsed()
    });
    println!(
        "{:<12} {:<6} {:>12} {:>14} {:>14} {:>18}",
        spec.name,
        cache,
        format!("{first_load:.2?}"),
        format!("{median_load:.2?}"),
        format!("{first_instance:.2?}"),
        format!("{instantiate:.2?}")
    );
}

fn spec(name: &str, path: PathBuf, config_json: String, limits: PluginLimits) -> PluginSettings {
    PluginSettings {
        name: name.into(),
        path,
        sha256: None,
        config_json,
        limits,
        capabilities: Capabilities::default(),
    }
}

fn python_spec() -> PluginSettings {
    let config = serde_json::json!({"mask": ["email"], "mask_with": "***"}).to_string();
    // CPython needs more memory than the default, and its first calls are slow.
    let limits = PluginLimits { memory_bytes: 256 << 20, call_timeout: Duration::from_secs(10), ..LIMITS };
    spec("python-mask", python_plugin_wasm("python-mask"), config, limits)
}

/// What the host does around a wasm call, with the plugin's glue called natively in between:
/// pack the events, run the glue, read each output record back against its origin.
fn native_call(slot: &mut Option<BenchMask>, events: &[ChangeEvent]) -> Vec<(usize, ChangeEvent)> {
    let input = event::pack(events).expect("a batch fits");
    let output = glue::transform(slot, &input.data, &input.ends).expect("the native transform runs");
    assert!(output.errors.is_empty(), "{:?}", output.errors);
    let records = PackedBatch { data: output.records.data, ends: output.records.ends };
    output
        .origins
        .iter()
        .enumerate()
        .map(|(index, &origin)| {
            let origin = origin as usize;
            let bytes = records.record(index).expect("a record per origin");
            (origin, event::from_wire(bytes, &events[origin]).expect("the output is wire JSON"))
        })
        .collect()
}

/// The Python plugin's per-record cost at batches of 1 and 1000 events of 200 B.
fn python_per_record(runtime: &PluginRuntime) {
    let spec = python_spec();
    let plugin = TransformPlugin::load(runtime, spec.clone()).expect("the Python plugin loads");
    let mut instance = plugin.instantiate().expect("the Python plugin configures");
    println!();
    println!("python-mask: {} ({} KiB)", spec.path.display(), file_kib(&spec.path));
    for batch_size in [1, 1000] {
        let events = events(batch_size, 200);
        assert_eq!(masked_emails(&instance.transform(&events).expect("runs").events), batch_size);
        let ns = per_record(batch_size, || {
            black_box(instance.transform(black_box(&events)).expect("the Python transform runs"));
        });
        println!("python-mask batch {batch_size:>4}, 200 B events: {ns:>10.0} ns/record");
    }
}

/// `count` change events whose wire form is about `size` bytes: an insert into `public.users`
/// with an email, a name, and (for larger sizes) columns of mixed types; the last text column
/// pads the record to `size`.
fn events(count: usize, size: usize) -> Vec<ChangeEvent> {
    let first = event(1, size, 0);
    let pad = size.saturating_sub(wire_len(&first));
    (1..=count as i64).map(|id| event(id, size, pad)).collect()
}

fn event(id: i64, size: usize, pad: usize) -> ChangeEvent {
    let mut after =
        vec![("id".to_owned(), Value::Int(id)), ("email".to_owned(), text(&format!("u{id}@example.com")))];
    let mut source = serde_json::Map::new();
    if size > 500 {
        for column in 0..12 {
            after.push((
                format!("note_{column}"),
                text(&"lorem ipsum dolor sit amet, consectetur ".repeat(2)),
            ));
            after.push((format!("count_{column}"), Value::Int(1_000_000 + column)));
        }
        after
            .push(("price".to_owned(), Value::Decimal(event::Decimal::parse("1234.50").expect("a decimal"))));
        after.push(("updated_at".to_owned(), Value::Timestamp(1_700_000_000_123_456)));
        after.push(("active".to_owned(), Value::Bool(true)));
        source.insert("connector".into(), "postgresql".into());
        source.insert("db".into(), "shop".into());
        source.insert("lsn".into(), 23_600_000.into());
        source.insert("txId".into(), 772.into());
    }
    after.push(("name".to_owned(), text(&"n".repeat(pad))));
    ChangeEvent {
        op: Op::Create,
        table: TableId { database: None, schema: Some("public".into()), table: "users".into() },
        key: Some(Row::from(vec![("id".into(), Value::Int(id))])),
        before: None,
        after: Some(after.into_iter().collect()),
        source: SourceInfo { raw: SourceBlock::from_map(&source), ..SourceInfo::default() },
        ts_ms: Some(1_700_000_000_000),
        columns: None,
        position: Position::Kafka { topic: "t".into(), partition: 0, offset: id },
        output_index: 0,
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn wire_len(event: &ChangeEvent) -> usize {
    event::pack(std::slice::from_ref(event)).expect("a batch fits").data.len()
}

fn masked_emails(events: &[(usize, ChangeEvent)]) -> usize {
    let masked = Value::Text("***".into());
    events
        .iter()
        .filter(|(_, event)| event.after.as_ref().and_then(|row| row.get("email")) == Some(&masked))
        .count()
}

/// Nanoseconds per record of `call`, which handles `batch_size` records: the median of
/// [`SAMPLES`] samples of about [`SAMPLE`] each, after a warm-up.
fn per_record(batch_size: usize, mut call: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut warm_up_calls = 0u32;
    while started.elapsed() < SAMPLE / 2 || warm_up_calls < 3 {
        call();
        warm_up_calls += 1;
    }
    let per_call = started.elapsed() / warm_up_calls;
    let calls = (SAMPLE.as_nanos() / per_call.as_nanos().max(1)).max(1) as u32;
    let sample = median_of(SAMPLES, || {
        let started = Instant::now();
        for _ in 0..calls {
            call();
        }
        started.elapsed() / calls
    });
    sample.as_nanos() as f64 / batch_size as f64
}

fn median_of(samples: usize, mut sample: impl FnMut() -> Duration) -> Duration {
    let mut durations: Vec<Duration> = (0..samples).map(|_| sample()).collect();
    durations.sort();
    durations[samples / 2]
}

fn file_kib(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len() / 1024)
}
