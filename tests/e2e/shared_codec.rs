//! The event crate the host and plugins share (`sdk/event`, `cdc-event`) holds the wire codec
//! on both sides of the plugin boundary: its own tests pass natively (`scripts/test.sh` runs
//! them with the SDK's) and, here, built for `wasm32-wasip2` and run as WASI commands in
//! wasmtime, where plugins run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command as WasiCommand;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use cdc_tests::build::repo_root;

#[test]
fn the_shared_codec_passes_its_own_tests_as_wasm() {
    let tests = wasm_test_binaries(&repo_root().join("sdk/event/Cargo.toml"));
    assert!(tests.len() >= 2, "expected the unit and codec test binaries, built {tests:?}");
    for test in tests {
        let (passed, output) = run_command(&test);
        assert!(passed, "{} failed on wasm32-wasip2:\n{output}", test.display());
        assert!(output.contains("test result: ok."), "{}: no test ran:\n{output}", test.display());
        assert!(!output.contains(" 0 passed"), "{}: no test ran:\n{output}", test.display());
    }
}

/// The test binaries of a crate, built for wasm32-wasip2.
fn wasm_test_binaries(manifest: &Path) -> Vec<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["test", "--no-run", "--offline", "--target", "wasm32-wasip2", "--message-format=json"])
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the wasm tests failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["profile"]["test"] == true)
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .collect()
}

struct CommandState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for CommandState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// Runs a WASI command component with no grants; returns whether it exited 0, and its output.
fn run_command(wasm: &Path) -> (bool, String) {
    let engine = Engine::default();
    let component = Component::from_file(&engine, wasm).expect("the test binary is a component");
    let mut linker = Linker::<CommandState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI links");
    let output = MemoryOutputPipe::new(1 << 20);
    let ctx = WasiCtx::builder().stdout(output.clone()).stderr(output.clone()).build();
    let mut store = Store::new(&engine, CommandState { ctx, table: ResourceTable::new() });
    let command =
        WasiCommand::instantiate(&mut store, &component, &linker).expect("the command instantiates");
    let exit = command.wasi_cli_run().call_run(&mut store);
    let text = String::from_utf8_lossy(&output.contents()).into_owned();
    (matches!(exit, Ok(Ok(()))), text)
}
