//! How the `cdc` process ends when things around it break: a closed log pipe (`cdc run … |
//! head -n 1`, or a `tee` ended by Ctrl-C) neither crashes it nor hangs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cdc_tests::build::cdc_binary;

/// A pipeline that validates, logs that it starts, then fails to load its transform (the file
/// is not a component): a start failure, exit code 1.
fn failing_pipeline(dir: &std::path::Path) -> std::path::PathBuf {
    let wasm = dir.join("not-a-component.wasm");
    std::fs::write(&wasm, b"this is not wasm").unwrap();
    let pipeline = dir.join("pipeline.yaml");
    let yaml = format!(
        "pipeline_id: exit-test\nsource:\n  source_type: postgres\n  database: db\n  tables: [public.t]\n\
         transforms:\n  - name: broken\n    plugin:\n      path: {}\nsinks:\n  - sink_id: hook\n    sink_type: webhook\n    webhook:\n      url: http://127.0.0.1:9/\n",
        wasm.display()
    );
    std::fs::write(&pipeline, yaml).unwrap();
    let platform = dir.join("platform.yaml");
    std::fs::write(&platform, "health_enabled: false\n").unwrap();
    pipeline
}

#[test]
fn a_closed_log_pipe_neither_crashes_nor_hangs_cdc_run() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = failing_pipeline(dir.path());
    let platform = dir.path().join("platform.yaml");
    let args = ["run", pipeline.to_str().unwrap(), "--platform-config", platform.to_str().unwrap()];

    // With stderr open, the failure is reported there.
    let open = Command::new(cdc_binary()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&open.stderr);
    assert_eq!(open.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pipeline.starting") && stderr.contains("broken"), "{stderr}");

    // With the reading end of stderr gone, every write fails with EPIPE: the same exit code.
    let mut child =
        Command::new(cdc_binary()).args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("cdc run hung with a closed stderr");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "a closed stderr must not turn a failure into a panic (101)");
}
