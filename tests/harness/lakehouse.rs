//! Iceberg sinks in a test's own directory (an SQLite catalog and a local warehouse, a
//! warehouse in an S3 bucket of a moto server on loopback, or a REST catalog: lakana-server on
//! loopback), and their tables read back by independent readers: DuckDB with its Iceberg
//! extension (which applies equality deletes) and pyiceberg, from `iceberg_reader.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The catalog name the sinks of [`Lakehouse::sink`] use.
pub const CATALOG: &str = "cdc";

/// Who reads a table back.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    /// DuckDB's `iceberg_scan`: append and merge-on-read tables.
    DuckDb,
    /// pyiceberg's scan: append tables (it refuses equality deletes).
    PyIceberg,
}

/// A lakehouse directory: the catalog database and the warehouse (local, or in S3).
pub struct Lakehouse {
    dir: tempfile::TempDir,
    s3: Option<S3Server>,
    rest: Option<RestCatalogServer>,
}

impl Default for Lakehouse {
    fn default() -> Self {
        Lakehouse { dir: tempfile::tempdir().unwrap(), s3: None, rest: None }
    }
}

impl Lakehouse {
    /// The SQLite file of the catalog.
    pub fn catalog_db(&self) -> PathBuf {
        self.dir.path().join("catalog.db")
    }

    /// A lakehouse whose warehouse is in a bucket of a moto S3 server of its own.
    pub async fn on_s3() -> Self {
        Lakehouse { dir: tempfile::tempdir().unwrap(), s3: Some(S3Server::start().await), rest: None }
    }

    /// A lakehouse behind a REST catalog of its own, which keeps the files in the directory.
    pub async fn on_rest() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rest = RestCatalogServer::start(dir.path()).await;
        Lakehouse { dir, s3: None, rest: Some(rest) }
    }

    /// The warehouse: a directory, or `s3://` in the moto bucket.
    pub fn warehouse(&self) -> String {
        match &self.s3 {
            Some(_) => format!("s3://{BUCKET}/warehouse"),
            None => self.dir.path().join("warehouse").display().to_string(),
        }
    }

    /// Writes an object into the S3 bucket (as a stray file a crash leaves behind).
    pub async fn s3_put(&self, key: &str, body: &'static [u8]) {
        let s3 = self.s3.as_ref().expect("an S3 lakehouse");
        let url = format!("{}/{BUCKET}/{key}", s3.endpoint());
        let response = reqwest::Client::new().put(&url).body(body).send().await.unwrap();
        assert!(response.status().is_success(), "PUT {url}: {}", response.status());
    }

    /// Whether the S3 bucket holds `key`.
    pub async fn s3_exists(&self, key: &str) -> bool {
        let s3 = self.s3.as_ref().expect("an S3 lakehouse");
        let url = format!("{}/{BUCKET}/{key}", s3.endpoint());
        reqwest::Client::new().head(&url).send().await.unwrap().status().is_success()
    }

    /// The sink's `s3_*` lines for an S3 warehouse.
    fn s3_lines(&self) -> String {
        match &self.s3 {
            Some(s3) => format!(
                "      s3_endpoint: {}\n      s3_access_key_id: {KEY}\n      s3_secret_access_key: {KEY}\n      s3_region: us-east-1\n",
                s3.endpoint()
            ),
            None => String::new(),
        }
    }

    /// An Iceberg sink item for `PipelineParts::sinks`: tables named after their source table
    /// in `namespace`, committing every 0.2 s.
    pub fn sink(&self, sink_id: &str, namespace: &str, write_mode: &str) -> String {
        self.sink_with(sink_id, namespace, write_mode, "")
    }

    /// [`sink`](Self::sink) with more lines of its `iceberg:` block (indented by six spaces).
    pub fn sink_with(&self, sink_id: &str, namespace: &str, write_mode: &str, extra: &str) -> String {
        format!(
            "  - sink_id: {sink_id}\n    sink_type: iceberg\n    retry: {{initial_wait_seconds: 0.2, max_wait_seconds: 2, max_attempts: 3}}\n    iceberg:\n      catalog_name: {CATALOG}\n{catalog}      warehouse: {warehouse}\n      table_namespace: {namespace}\n      table_name: \"{{table}}\"\n      write_mode: {write_mode}\n      batch_size: 5000\n      flush_interval_seconds: 0.2\n{s3}{extra}",
            catalog = self.catalog_lines(),
            warehouse = self.warehouse(),
            s3 = self.s3_lines(),
        )
    }

    /// The sink's `catalog_*` lines.
    fn catalog_lines(&self) -> String {
        match &self.rest {
            Some(rest) => format!(
                "      catalog_uri: {}\n      catalog_token: {}\n      catalog_properties: {{prefix: {REST_PREFIX}}}\n",
                rest.uri(),
                rest_token()
            ),
            None => format!("      catalog_uri: sqlite:{}\n", self.catalog_db().display()),
        }
    }

    /// Appends a row to `namespace.table` with pyiceberg, as another writer: `values` is a JSON
    /// object of column values, the other columns are null.
    pub fn append_as_another_writer(&self, namespace: &str, table: &str, values: &serde_json::Value) {
        let mut command = self.reader_command();
        command.args(["append", namespace, table, &values.to_string()]);
        let output = command.output().expect("python3 runs");
        assert!(
            output.status.success(),
            "pyiceberg could not append to {namespace}.{table}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `iceberg_reader.py` with the environment that names this lakehouse's catalog.
    fn reader_command(&self) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/iceberg_reader.py");
        let mut command = Command::new("python3");
        command.arg(script).env("PYTHONPATH", python_path());
        match &self.rest {
            Some(rest) => command
                .env("CDC_TEST_REST_URI", rest.uri())
                .env("CDC_TEST_REST_PREFIX", REST_PREFIX)
                .env("CDC_TEST_REST_TOKEN", rest_token()),
            None => {
                command.env("CDC_TEST_CATALOG_DB", self.catalog_db()).env("CDC_TEST_CATALOG_NAME", CATALOG)
            }
        };
        if let Some(s3) = &self.s3 {
            command.env("CDC_TEST_S3_ENDPOINT", s3.endpoint());
        }
        command
    }

    /// The rows of `namespace.table` as `reader` reads them: the `columns`, as text, sorted;
    /// `None` while the table, or one of the columns, does not exist yet.
    pub fn read(
        &self,
        reader: Reader,
        namespace: &str,
        table: &str,
        columns: &[&str],
    ) -> Option<Vec<Vec<Option<String>>>> {
        let reader = match reader {
            Reader::DuckDb => "duckdb",
            Reader::PyIceberg => "pyiceberg",
        };
        let mut command = self.reader_command();
        command.args([reader, namespace, table, &columns.join(",")]);
        let output = command.output().expect("python3 runs");
        match output.status.code() {
            Some(0) => {}
            Some(NOT_YET) => return None,
            _ => panic!(
                "{reader} could not read {namespace}.{table}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
        let rows = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Vec<Option<String>>>(line).unwrap())
            .collect();
        Some(rows)
    }
}

/// The reader's exit status for a table or column that does not exist yet.
const NOT_YET: i32 = 3;

fn python_path() -> String {
    std::env::var("CDC_TEST_PYTHONPATH").unwrap_or_else(|_| {
        panic!(
            "CDC_TEST_PYTHONPATH is not set: start the services with `scripts/test-env.sh up` and \
             `eval \"$(scripts/test-env.sh env)\"`"
        )
    })
}

/// The bucket of the S3 warehouse.
const BUCKET: &str = "lake";
/// moto takes any credentials.
const KEY: &str = "test";

/// A moto S3 server on a free loopback port, with the bucket created; stopped on drop.
struct S3Server {
    child: std::process::Child,
    port: u16,
}

impl S3Server {
    async fn start() -> Self {
        let port = crate::scenario::free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONPATH", python_path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto starts");
        let server = S3Server { child, port };
        let bucket = format!("{}/{BUCKET}", server.endpoint());
        let created = crate::receiver::eventually(std::time::Duration::from_secs(30), || async {
            reqwest::Client::new()
                .put(&bucket)
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
        })
        .await;
        assert!(created, "moto never created bucket {BUCKET} at {}", server.endpoint());
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The REST catalog's environment, which is its REST prefix.
const REST_PREFIX: &str = "cdc";
/// The key id and secret of the token lakana-server makes for its first admin.
const REST_KEY_ID: &str = "cdctest0001";
const REST_SECRET: &str = "cdctestsecret";

fn rest_token() -> String {
    format!("lakana_pat_{REST_KEY_ID}_{REST_SECRET}")
}

/// lakana-server, a real Iceberg REST catalog, on a free loopback port and a database of its own
/// on the tests' PostgreSQL, with one environment whose files are under `root`; stopped, and
/// its database dropped, on drop.
struct RestCatalogServer {
    child: std::process::Child,
    port: u16,
    database: String,
}

impl RestCatalogServer {
    async fn start(root: &Path) -> Self {
        let env = crate::env::TestEnv::from_env();
        let database = format!("lakana_{}", crate::env::unique_suffix());
        let (pg, connection) =
            tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        pg.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
        let port = crate::scenario::free_port();
        let lakana = std::env::var("CDC_TEST_LAKANA_PYTHONPATH").unwrap_or_else(|_| {
            panic!("CDC_TEST_LAKANA_PYTHONPATH is not set: `eval \"$(scripts/test-env.sh env)\"`")
        });
        let server = |arguments: &[&str]| {
            let mut command = Command::new("python3");
            command
                .args(["-m", "lakana_server"])
                .args(arguments)
                .env("PYTHONPATH", &lakana)
                .env(
                    "LAKANA_DATABASE__URL",
                    format!("postgresql+pg8000://{}@{}:{}/{database}", env.pg_user, env.pg_host, env.pg_port),
                )
                .env("LAKANA_BOOTSTRAP_PAT_KEY_ID", REST_KEY_ID)
                .env("LAKANA_BOOTSTRAP_PAT_SECRET", REST_SECRET)
                .env("LAKANA_HOST", "127.0.0.1")
                .env("LAKANA_PORT", port.to_string())
                .env("LAKANA_LOG__ACCESS", "false");
            command
        };
        let migrated = server(&["migrate"]).output().expect("lakana-server runs");
        assert!(
            migrated.status.success(),
            "lakana-server migrate:\n{}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        let log = std::fs::File::create(root.join("lakana.log")).unwrap();
        let child =
            server(&[]).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("lakana-server starts");
        let catalog = RestCatalogServer { child, port, database };
        let client = reqwest::Client::new();
        let health = format!("{}/healthz", catalog.uri());
        let up = crate::receiver::eventually(std::time::Duration::from_secs(60), || async {
            client.get(&health).send().await.is_ok_and(|response| response.status().is_success())
        })
        .await;
        let log = || std::fs::read_to_string(root.join("lakana.log")).unwrap_or_default();
        assert!(up, "lakana-server never answered {health}\n{}", log());
        let environment = serde_json::json!({
            "name": REST_PREFIX,
            "storage": {"scheme": "file", "root": format!("file://{}", root.join("lake").display())},
        });
        let created = client
            .post(format!("{}/api/v1/environments", catalog.uri()))
            .bearer_auth(rest_token())
            .json(&environment)
            .send()
            .await
            .unwrap();
        assert!(
            created.status().is_success(),
            "lakana-server refused the environment: {}",
            created.text().await.unwrap()
        );
        catalog
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for RestCatalogServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // On a thread of its own: drop may run inside the test's runtime.
        let database = self.database.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let env = crate::env::TestEnv::from_env();
                if let Ok((pg, connection)) =
                    tokio_postgres::connect(&env.pg_config(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ =
                        pg.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}
