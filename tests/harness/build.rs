//! Builds what the tests run: the `cdc` binary, the example and fixture plugins (Rust, and Python
//! through componentize-py), each once per test process, located through cargo's JSON messages
//! (so any `CARGO_TARGET_DIR` works).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

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

/// The component of the Python example plugin `plugins/<name>` (componentize-py, see its
/// `build.sh`): `plugins/<name>/target/<name with `_` for `-`>.wasm`. `build.sh` runs at most
/// once per process, and not at all when the component is newer than `app.py`, `build.sh` and
/// the WIT files.
pub fn python_plugin_wasm(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, wasm)) = built.iter().find(|(built_name, _)| built_name == name) {
        return wasm.clone();
    }
    let plugin_dir = repo_root().join("plugins").join(name);
    let wasm = plugin_dir.join("target").join(format!("{}.wasm", name.replace('-', "_")));
    let mut sources = vec![plugin_dir.join("app.py"), plugin_dir.join("build.sh")];
    let wit_files = std::fs::read_dir(repo_root().join("wit")).expect("wit/ is readable");
    sources.extend(wit_files.map(|entry| entry.expect("wit/ is readable").path()));
    if !newer_than_all(&wasm, &sources) {
        let output = Command::new("bash").arg(plugin_dir.join("build.sh")).output().expect("bash runs");
        assert!(
            output.status.success(),
            "{}/build.sh failed (is componentize-py 0.25.1 installed? scripts/setup-build.sh):\n{}{}",
            plugin_dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(wasm.is_file(), "{}/build.sh wrote no {}", plugin_dir.display(), wasm.display());
    }
    built.push((name.to_owned(), wasm.clone()));
    wasm
}

fn newer_than_all(target: &Path, sources: &[PathBuf]) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok();
    let Some(built) = modified(target) else { return false };
    sources.iter().all(|source| modified(source).is_some_and(|changed| changed < built))
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
