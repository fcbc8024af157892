//! A supervised `cdc` process: started with its output in a log file, stopped with SIGTERM,
//! killed if a test forgets it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `cdc` command.
pub struct CdcProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl CdcProcess {
    /// Starts `cdc` with `args` and extra environment variables, logging to `log`.
    pub fn start(binary: &Path, args: &[&str], env: &[(&str, &str)], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("create the log file");
        let child = Command::new(binary)
            .args(args)
            .env("CDC_LOG", "info,cdc_host=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().expect("clone log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("cdc starts");
        CdcProcess { child: Some(child), log }
    }

    /// The process's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The most resident memory the process has used so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether it has exited, and how.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|child| child.try_wait().expect("poll child"))
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL sent");
            child.wait().expect("child reaped");
        }
    }

    /// Sends SIGTERM and waits for the exit, up to `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("process was started");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM could not be sent to {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("poll child") {
                self.child = None;
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "cdc did not exit within {timeout:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for CdcProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
