//! TLS in front of the test environment's services, through real TLS software: stunnel
//! terminates TLS (optionally demanding a client certificate signed by the tests' CA) and
//! forwards to a plain port. For Kafka, tansu's proxy sits between stunnel and the shared
//! broker and advertises the TLS port in its metadata, so that a client reaches every broker
//! through TLS while Debezium keeps writing to the plain listener.
//!
//! The certificates are made by `scripts/test-env.sh up` in `CDC_TEST_TLS_DIR`: `ca.crt`, a
//! server pair for 127.0.0.1 (`server.crt`, `server.key`) and a client pair (`client.crt`,
//! `client.key`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::scenario::free_port;

/// The tests' CA and the certificates it signed.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    dir: PathBuf,
}

impl TlsFiles {
    /// The files of `CDC_TEST_TLS_DIR`.
    pub fn from_env() -> Self {
        let dir = PathBuf::from(env_var("CDC_TEST_TLS_DIR"));
        assert!(
            dir.join("ca.crt").is_file(),
            "{} has no ca.crt: run `scripts/test-env.sh up`",
            dir.display()
        );
        TlsFiles { dir }
    }

    /// A file of the directory, e.g. `ca.crt`.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A stunnel process accepting TLS on a port of its own and forwarding to `127.0.0.1:<target>`.
pub struct TlsTerminator {
    port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsTerminator {
    /// Starts terminating TLS for `127.0.0.1:<target>`; with `client_certificates`, a client
    /// must present a certificate signed by the tests' CA.
    pub fn start(target: u16, client_certificates: bool) -> Self {
        let files = TlsFiles::from_env();
        let dir = tempfile::tempdir().expect("a directory for stunnel");
        let port = free_port();
        let verify = if client_certificates {
            format!("CAfile = {}\nverifyChain = yes\nrequireCert = yes\n", files.path("ca.crt"))
        } else {
            String::new()
        };
        let config = format!(
            "foreground = yes\npid =\n[service]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{target}\ncert = {}\nkey = {}\n{verify}",
            files.path("server.crt"),
            files.path("server.key"),
        );
        let config_path = dir.path().join("stunnel.conf");
        std::fs::write(&config_path, config).expect("write stunnel.conf");
        let log = dir.path().join("stunnel.log");
        let child = spawn(&env_var("CDC_TEST_STUNNEL"), &[config_path.to_str().unwrap()], &log);
        let terminator = TlsTerminator { port, child, log, _dir: dir };
        wait_listening(port, &terminator.log);
        terminator
    }

    /// Starts terminating TLS for the service at `url` (`http://127.0.0.1:<port>`), without
    /// client certificates.
    pub fn in_front_of(url: &str) -> Self {
        let port = url.trim_end_matches('/').rsplit(':').next().and_then(|port| port.parse().ok());
        Self::start(port.unwrap_or_else(|| panic!("no port in {url}")), false)
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared broker reached over TLS only: stunnel → tansu's proxy → the broker.
pub struct TlsKafka {
    terminator: TlsTerminator,
    proxy: Child,
    _dir: tempfile::TempDir,
}

impl TlsKafka {
    /// Puts TLS (with client certificates when asked) in front of the broker at `origin`
    /// (`host:port`).
    pub fn start(origin: &str, client_certificates: bool) -> Self {
        let dir = tempfile::tempdir().expect("a directory for the proxy");
        let proxy_port = free_port();
        let terminator = TlsTerminator::start(proxy_port, client_certificates);
        let log = dir.path().join("proxy.log");
        let proxy = spawn(
            &env_var("CDC_TEST_TANSU"),
            &[
                "proxy",
                "--listener-url",
                &format!("tcp://127.0.0.1:{proxy_port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{}", terminator.port()),
                "--origin-url",
                &format!("tcp://{origin}"),
            ],
            &log,
        );
        wait_listening(proxy_port, &log);
        TlsKafka { terminator, proxy, _dir: dir }
    }

    /// The TLS bootstrap address, `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.terminator.port())
    }
}

impl Drop for TlsKafka {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `scripts/test-env.sh up` and `eval \"$(scripts/test-env.sh env)\"`")
    })
}

fn spawn(program: &str, args: &[&str], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("create a log file");
    let err = out.try_clone().expect("clone the log file");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {program}: {error}"))
}

fn wait_listening(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
