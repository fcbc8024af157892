//! Addresses of the test environment's services, from the variables `scripts/test-env.sh env`
//! prints.

use cdc_host::config::{PostgresSslMode, Secret};
use cdc_host::sinks::postgres::ConnectSettings;
use cdc_host::source::postgres::ConnectOptions;

/// Where the real services of the test environment listen.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Kafka bootstrap servers (`host:port`).
    pub kafka: String,
    /// Kafka Connect REST URL.
    pub connect_url: String,
    /// PostgreSQL host.
    pub pg_host: String,
    /// PostgreSQL port.
    pub pg_port: u16,
    /// PostgreSQL user (trusted, no password).
    pub pg_user: String,
    /// PostgreSQL database.
    pub pg_db: String,
    /// The private CA (PEM) that signed the test server's TLS certificate.
    pub pg_ca: String,
}

impl TestEnv {
    /// Reads the environment; panics with the fix when a variable is missing.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: start the services with `scripts/test-env.sh up` and `eval \"$(scripts/test-env.sh env)\"`")
            })
        };
        TestEnv {
            kafka: var("CDC_TEST_KAFKA"),
            connect_url: var("CDC_TEST_CONNECT_URL"),
            pg_host: var("CDC_TEST_PG_HOST"),
            pg_port: var("CDC_TEST_PG_PORT").parse().expect("CDC_TEST_PG_PORT is a port number"),
            pg_user: var("CDC_TEST_PG_USER"),
            pg_db: var("CDC_TEST_PG_DB"),
            pg_ca: var("CDC_TEST_PG_CA"),
        }
    }

    /// How the PostgreSQL sink reaches the test database (trusted: no password, no TLS).
    pub fn postgres_sink_connection(&self) -> ConnectSettings {
        ConnectSettings {
            host: self.pg_host.clone(),
            port: self.pg_port,
            database: self.pg_db.clone(),
            username: self.pg_user.clone(),
            password: Secret::new(""),
            sslmode: PostgresSslMode::Disable,
            sslrootcert: None,
        }
    }

    /// How the embedded source reaches the test database (trusted: no password).
    pub fn embedded_source_connection(&self) -> ConnectOptions {
        ConnectOptions {
            host: self.pg_host.clone(),
            port: self.pg_port,
            database: self.pg_db.clone(),
            user: self.pg_user.clone(),
            password: Secret::new(""),
        }
    }

    /// A libpq-style connection string for tokio-postgres.
    pub fn pg_config(&self) -> String {
        format!("host={} port={} user={} dbname={}", self.pg_host, self.pg_port, self.pg_user, self.pg_db)
    }
}

/// A suffix unique to this test run, so that tables, slots and groups never collide.
pub fn unique_suffix() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{:x}{:x}", std::process::id(), nanos % 0xffff_ffff)
}
