//! `cdc plugin build [--dir PATH] [--debug] [--offline] [--locked]`: checks that the
//! `wasm32-wasip2` target is installed, runs `cargo build --target wasm32-wasip2 --release` in the
//! project (cargo's own diagnostics and progress go to stderr as usual), finds the component
//! through cargo's JSON messages and prints its path, size and sha256. Cargo's environment
//! applies as usual: `CARGO_TARGET_DIR`, `CARGO_NET_OFFLINE`, the project's `rust-toolchain.toml`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{BuildArgs, Failure, Outcome, human_size, sha256_hex};

/// The target every plugin is built for.
const TARGET: &str = "wasm32-wasip2";

pub(super) fn run(args: &BuildArgs) -> Outcome {
    let manifest = args.dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Failure::Usage(format!(
            "{} does not exist: run `cdc plugin build` in a plugin project (see `cdc plugin new`) or pass --dir",
            manifest.display()
        )));
    }
    check_target(&args.dir)?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(&cargo);
    command
        .current_dir(&args.dir)
        .args(["build", "--target", TARGET, "--message-format=json-render-diagnostics"])
        .args(["--manifest-path", "Cargo.toml"]);
    let profile = if args.debug { "dev" } else { "release" };
    if !args.debug {
        command.arg("--release");
    }
    if args.offline {
        command.arg("--offline");
    }
    if args.locked {
        command.arg("--locked");
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let shown = std::fs::canonicalize(&args.dir).unwrap_or_else(|_| args.dir.clone());
    eprintln!("building {} for {TARGET} ({profile} profile)", shown.display());
    let mut child = command.spawn().map_err(|error| {
        Failure::Failed(format!(
            "cannot run {}: {error} (install Rust with rustup: https://rustup.rs)",
            Path::new(&cargo).display()
        ))
    })?;

    let mut wasm = None;
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|error| Failure::Failed(format!("reading cargo's output: {error}")))?;
        if let Some(path) = wasm_artifact(&line) {
            wasm = Some(path);
        }
    }
    let status = child.wait().map_err(|error| Failure::Failed(format!("waiting for cargo: {error}")))?;
    if !status.success() {
        return Err(Failure::Failed(format!("cargo build failed in {} ({status})", args.dir.display())));
    }
    let wasm = wasm.ok_or_else(|| {
        Failure::Failed(format!(
            "cargo built no .wasm in {}: the [lib] of Cargo.toml needs crate-type = [\"cdylib\", \"rlib\"]",
            args.dir.display()
        ))
    })?;
    let bytes = std::fs::read(&wasm)
        .map_err(|error| Failure::Failed(format!("cannot read {}: {error}", wasm.display())))?;
    println!("{}", wasm.display());
    println!("  size    {}", human_size(bytes.len() as u64));
    println!("  sha256  {}", sha256_hex(&bytes));
    Ok(())
}

/// Fails with the `rustup target add` hint when the toolchain that builds in `dir` lacks the
/// wasm32-wasip2 standard library.
fn check_target(dir: &Path) -> Outcome {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| {
            Failure::Failed(format!(
                "cannot run {}: {error} (install Rust with rustup: https://rustup.rs)",
                Path::new(&rustc).display()
            ))
        })?;
    if !output.status.success() {
        return Err(Failure::Failed(format!(
            "`rustc --print sysroot` failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return Err(Failure::Failed(format!(
            "the Rust target {TARGET} is not installed in {}: run `rustup target add {TARGET}`",
            sysroot.display()
        )));
    }
    Ok(())
}

/// The .wasm of a `compiler-artifact` message, if the line is one that produced it.
fn wasm_artifact(line: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let files = message["filenames"].as_array()?;
    files.iter().filter_map(serde_json::Value::as_str).find(|file| file.ends_with(".wasm")).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_is_found_in_cargos_messages() {
        let artifact = r#"{"reason":"compiler-artifact","target":{"kind":["cdylib","rlib"]},"filenames":["/t/wasm32-wasip2/release/demo.wasm","/t/wasm32-wasip2/release/libdemo.rlib"]}"#;
        assert_eq!(wasm_artifact(artifact), Some(PathBuf::from("/t/wasm32-wasip2/release/demo.wasm")));
        let library = r#"{"reason":"compiler-artifact","filenames":["/t/libserde.rlib"]}"#;
        assert_eq!(wasm_artifact(library), None);
        assert_eq!(wasm_artifact(r#"{"reason":"build-finished","success":true}"#), None);
        assert_eq!(wasm_artifact("not json"), None);
    }
}
