//! The test environment's MariaDB, the source of the MySQL pipelines: its address from the
//! variables `scripts/test-env.sh env` prints, SQL through the `mariadb` command-line client (no
//! MySQL driver in the tests' dependencies), and the `source:` block of a pipeline reading it.

use tokio::process::Command;

/// Where the test MariaDB listens, and who logs in.
#[derive(Debug, Clone)]
pub struct MariaDb {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Debezium's user (replication and read privileges only).
    pub user: String,
    /// Its password.
    pub password: String,
    /// The administrator the tests create databases and tables with (no password, TCP).
    pub admin_user: String,
}

impl MariaDb {
    /// Reads the environment; panics with the fix when a variable is missing.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: start the services with `scripts/test-env.sh up` and `eval \"$(scripts/test-env.sh env)\"`")
            })
        };
        MariaDb {
            host: var("CDC_TEST_MARIADB_HOST"),
            port: var("CDC_TEST_MARIADB_PORT").parse().expect("CDC_TEST_MARIADB_PORT is a port number"),
            user: var("CDC_TEST_MARIADB_USER"),
            password: var("CDC_TEST_MARIADB_PASSWORD"),
            admin_user: var("CDC_TEST_MARIADB_ADMIN_USER"),
        }
    }

    /// Runs SQL statements as the administrator, in one client session; returns the rows they
    /// print, each as its tab-separated fields. Panics with the client's error.
    pub async fn sql(&self, statements: &str) -> Vec<Vec<String>> {
        let output = Command::new("mariadb")
            .args(["--no-defaults", "--protocol=TCP", "--batch", "--skip-column-names"])
            .args(["--default-character-set=utf8mb4", "--connect-timeout=10"])
            .args(["-h", &self.host, "-P", &self.port.to_string(), "-u", &self.admin_user])
            .args(["-e", statements])
            .output()
            .await
            .expect("the `mariadb` client runs (apt mariadb-server, installed by scripts/test-env.sh up)");
        assert!(output.status.success(), "{statements}\nfailed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout)
            .expect("UTF-8 output")
            .lines()
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// The `source:` block of a pipeline.yaml (with its key) capturing `tables` (`db.table`)
    /// of `database` as Debezium's user, its binlog client registered under `server_id`.
    pub fn source_yaml(&self, database: &str, tables: &[String], server_id: u32) -> String {
        format!(
            "source:\n  source_type: mysql\n  host: {host}\n  port: {port}\n  database: {database}\n  username: {user}\n  password: '{password}'\n  tables: [{tables}]\n  mysql_server_id: {server_id}\n",
            host = self.host,
            port = self.port,
            user = self.user,
            password = self.password,
            tables = tables.join(", "),
        )
    }
}
