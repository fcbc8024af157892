//! Builds what the tests run: the `cdc` binary, the example and fixture plugins, each once per test
//! process, located through cargo's JSON messages (so any `CARGO_TARGET_DIR` works).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_owned()
}

/// The `cdc` binary, built if needed.
pub fn cdc_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let manifest = repo_root().join("Cargo.toml");
        cargo_artifact(&["build", "-p", "cdc-host", "--bin", "cdc"], &manifest, "executable")
    })
}

/// The component of the example plugin `plugins/<name>`, built for wasm32-wasip2 if needed.
pub fn plugin_wasm(name: &str) -> PathBuf {
    component_wasm(&repo_root().join("plugins").join(name))
}

/// The component of the test fixture plugin `tests/fixtures/plugins/<name>`, built like
/// [`plugin_wasm`].
pub fn fixture_plugin_wasm(name: &str) -> PathBuf {
    component_wasm(&repo_root().join("tests/fixtures/plugins").join(name))
}

fn component_wasm(crate_dir: &Path) -> PathBuf {
    let manifest = crate_dir.join("Cargo.toml");
    cargo_artifact(&["build", "--release", "--target", "wasm32-wasip2"], &manifest, "filenames")
}

fn cargo_artifact(args: &[&str], manifest: &Path, field: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--message-format=json-render-diagnostics")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {} failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let candidate = match field {
            "executable" => message["executable"].as_str().map(PathBuf::from),
            _ => message["filenames"]
                .as_array()
                .and_then(|files| {
                    files.iter().filter_map(|file| file.as_str()).find(|file| file.ends_with(".wasm"))
                })
                .map(PathBuf::from),
        };
        if candidate.is_some() {
            found = candidate;
        }
    }
    found.unwrap_or_else(|| panic!("cargo built no {field} for {}", manifest.display()))
}
