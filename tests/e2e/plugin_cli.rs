//! The author's loop with nothing but the `cdc` binary (docs/architecture.md, plugins, CI renders and builds
//! the template so it never rots): in a temporary directory outside the repository, `cdc plugin new` a
//! transform and a sink, `cdc plugin build` each with `--offline --locked`, `cdc plugin test` the transform
//! against the project's recorded events and the output its example logic must give, `cdc plugin inspect
//! --json` both.
//!
//! No network: the project carries the SDK and the WIT (from the binary) and a Cargo.lock, and
//! every cargo run inside it is `--offline --locked`, so the crates must already be in the local
//! cargo cache. They get there as on any machine that built a plugin once: this test first runs
//! `cargo fetch --locked` on the repository's `sdk/` (the same lock the project gets), a no-op
//! when the cache holds them. In `scripts/test.sh` the SDK's and the example plugins' native
//! tests run before the workspace, but native builds do not fetch `wit-bindgen` (a wasm32-only
//! dependency) and the e2e tests that build plugins for wasm32 run in parallel with this one, so
//! the fetch is what makes the order irrelevant; on a cold cache it is the one step that needs
//! the network, as every plugin build of this suite does.
//!
//! Both projects share one cargo target directory (in the temporary directory), so the second
//! build reuses the registry crates of the first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cdc_tests::build::{cdc_binary, repo_root};
use serde_json::Value as Json;

/// Runs `cdc` in `dir` with the projects' shared target directory.
fn cdc(dir: &Path, target_dir: &Path, args: &[&str]) -> Output {
    Command::new(cdc_binary())
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("CARGO_NET_OFFLINE")
        .output()
        .expect("cdc runs")
}

/// Runs `cdc` and returns its stdout, failing with its whole output unless it exits 0.
fn cdc_ok(dir: &Path, target_dir: &Path, args: &[&str]) -> String {
    let output = cdc(dir, target_dir, args);
    assert!(
        output.status.success(),
        "cdc {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cdc prints UTF-8")
}

/// Puts the SDK's locked crates in the local cargo cache (see the module's header).
fn fetch_sdk_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["fetch", "--locked", "--manifest-path"])
        .arg(repo_root().join("sdk/Cargo.toml"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo fetch of sdk/ failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `cdc plugin new NAME --kind KIND` then `cdc plugin build --offline --locked` in it; returns
/// the project and its component.
fn new_and_build(work: &Path, target_dir: &Path, name: &str, kind: &str) -> (PathBuf, PathBuf) {
    let created = cdc_ok(work, target_dir, &["plugin", "new", name, "--kind", kind]);
    assert!(created.contains(&format!("Created the {kind} plugin `{name}`")), "{created}");
    let project = work.join(name);
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs", "tests/recorded.rs", "events.jsonl", "README.md"] {
        assert!(project.join(file).is_file(), "`cdc plugin new` wrote no {file}");
    }
    for file in [
        "sdk/Cargo.toml",
        "sdk/Cargo.lock",
        "sdk/src/lib.rs",
        "sdk/README.md",
        "sdk/event/Cargo.toml",
        "sdk/event/src/lib.rs",
        "wit/transform.wit",
        "wit/sink.wit",
    ] {
        assert!(project.join(file).is_file(), "`cdc plugin new` wrote no {file}");
    }
    assert_no_reference_to(&project, &repo_root());

    let built = cdc_ok(&project, target_dir, &["plugin", "build", "--offline", "--locked"]);
    let wasm = PathBuf::from(built.lines().next().expect("`cdc plugin build` prints the component's path"));
    assert!(wasm.is_file(), "{} does not exist:\n{built}", wasm.display());
    assert_eq!(wasm.file_name().unwrap(), format!("{}.wasm", name.replace('-', "_")).as_str());
    assert!(wasm.starts_with(target_dir), "{} is not under CARGO_TARGET_DIR", wasm.display());
    assert!(built.contains("sha256"), "{built}");
    (project, wasm)
}

/// No rendered file names the repository: the project stands on its own.
fn assert_no_reference_to(dir: &Path, repo: &Path) {
    let repo = repo.to_string_lossy().into_owned();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_reference_to(&path, Path::new(&repo));
        } else {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.contains(&repo), "{} names the repository {repo}", path.display());
        }
    }
}

/// `cdc plugin inspect --json`, parsed.
fn inspect(dir: &Path, target_dir: &Path, wasm: &Path) -> Json {
    let printed = cdc_ok(dir, target_dir, &["plugin", "inspect", wasm.to_str().unwrap(), "--json"]);
    serde_json::from_str(&printed)
        .unwrap_or_else(|error| panic!("inspect --json printed no JSON ({error}):\n{printed}"))
}

/// The template's transform drops the events whose `status` (in `after`, or `before` for a
/// delete) is "test" and keeps the rest unchanged.
fn kept_by_the_template(events: &str) -> Vec<&str> {
    events
        .lines()
        .filter(|line| {
            let event: Json = serde_json::from_str(line).unwrap();
            let row = if event["op"] == "d" { &event["before"] } else { &event["after"] };
            row["status"] != "test"
        })
        .collect()
}

#[test]
fn a_project_made_by_cdc_builds_offline_and_runs_in_the_host() {
    fetch_sdk_crates();
    let work = tempfile::tempdir().expect("a temporary directory");
    let target_dir = work.path().join("cargo-target");
    let work = work.path();

    // A transform: new, build, test against the recorded events, inspect.
    let (project, wasm) = new_and_build(work, &target_dir, "demo", "transform");
    let events = std::fs::read_to_string(project.join("events.jsonl")).unwrap();
    let kept = kept_by_the_template(&events);
    assert_eq!(kept.len(), 2, "the template's events.jsonl has two events to keep:\n{events}");
    let expect = work.join("expected.jsonl");
    std::fs::write(&expect, kept.join("\n") + "\n").unwrap();
    let tested = cdc_ok(
        &project,
        &target_dir,
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--events",
            "events.jsonl",
            "--expect",
            expect.to_str().unwrap(),
        ],
    );
    assert_eq!(tested.lines().count(), 2, "{tested}");

    // The same run against the wrong expectation fails (1) and says where.
    let output = cdc(
        &project,
        &target_dir,
        &["plugin", "test", wasm.to_str().unwrap(), "--events", "events.jsonl", "--expect", "events.jsonl"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mismatch") && stderr.contains("line 2"), "{stderr}");

    let inspected = inspect(&project, &target_dir, &wasm);
    assert_eq!(inspected["world"], "transform", "{inspected:#}");
    assert_eq!(inspected["name"], "demo", "{inspected:#}");
    assert_eq!(inspected["version"], "0.1.0", "{inspected:#}");
    let params: Vec<&str> =
        inspected["config"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["column", "value"], "{inspected:#}");
    assert_eq!(inspected["size"].as_u64(), Some(std::fs::metadata(&wasm).unwrap().len()));

    // A sink: new, build, inspect, and a truncate it refuses as poison.
    let (sink, sink_wasm) = new_and_build(work, &target_dir, "demo-sink", "sink");
    let inspected = inspect(&sink, &target_dir, &sink_wasm);
    assert_eq!(inspected["world"], "sink", "{inspected:#}");
    assert_eq!(inspected["name"], "demo-sink", "{inspected:#}");
    let mut events = std::fs::read_to_string(sink.join("events.jsonl")).unwrap();
    let count = events.lines().count();
    events.push_str(&format!(
        "{{\"op\":\"t\",\"table\":{{\"database\":\"shop\",\"schema\":\"public\",\"table\":\"orders\"}},\
         \"key\":null,\"before\":null,\"after\":null,\"source\":{{\"connector\":\"postgresql\"}},\
         \"ts_ms\":1700000004000,\"id\":\"shop.public.orders/0/{count}\"}}\n"
    ));
    std::fs::write(work.join("with-truncate.jsonl"), events).unwrap();
    let events_file = work.join("with-truncate.jsonl");
    let refused = cdc_ok(
        &sink,
        &target_dir,
        &["plugin", "test", sink_wasm.to_str().unwrap(), "--events", events_file.to_str().unwrap()],
    );
    let refused: Vec<Json> = refused.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["index"], count, "{refused:?}");
    assert_eq!(refused[0]["id"], format!("shop.public.orders/0/{count}"), "{refused:?}");
    assert_eq!(refused[0]["class"], "poison", "{refused:?}");

    // `new` leaves an existing project alone (1) and refuses a name cargo would not take (2).
    assert_eq!(cdc(work, &target_dir, &["plugin", "new", "demo", "--kind", "sink"]).status.code(), Some(1));
    assert_eq!(cdc(work, &target_dir, &["plugin", "new", "Demo", "--kind", "sink"]).status.code(), Some(2));
}
