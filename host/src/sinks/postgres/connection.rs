//! One connection to the target database: connecting (with TLS when asked), statements
//! prepared once per connection, and how a database error is handled by the pipeline.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, Statement};

use crate::config::{PostgresSinkConfig, PostgresSslMode, Secret};
use crate::error::ErrorClass;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive, so that a target that vanished without closing the connection is noticed.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Login user.
    pub username: String,
    /// Login password.
    pub password: Secret,
    /// TLS mode.
    pub sslmode: PostgresSslMode,
    /// Further trusted CA certificates (PEM), for `verify-full`.
    pub sslrootcert: Option<PathBuf>,
}

impl ConnectSettings {
    /// The connection part of the sink's config.
    pub fn from_config(config: &PostgresSinkConfig) -> Self {
        ConnectSettings {
            host: config.host.clone(),
            port: config.port,
            database: config.database.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            sslmode: config.sslmode,
            sslrootcert: config.sslrootcert.clone(),
        }
    }

    /// `host:port/database`, for messages (never the password).
    pub fn describe(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.database)
            .user(&self.username)
            .password(self.password.expose())
            .application_name("cdc")
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE);
        config
    }

    /// The TLS connector for `verify-full`: the system's trust store and `sslrootcert`.
    pub fn tls(&self) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, String> {
        if self.sslmode == PostgresSslMode::Disable {
            return Ok(None);
        }
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(file) = &self.sslrootcert {
            let pem = std::fs::read(file)
                .map_err(|error| format!("cannot read sslrootcert {}: {error}", file.display()))?;
            let mut added = 0;
            for certificate in rustls_pemfile_certs(&pem, file)? {
                roots.add(certificate).map_err(|error| format!("sslrootcert {}: {error}", file.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("sslrootcert {} holds no certificate", file.display()));
            }
        }
        if roots.is_empty() {
            return Err(
                "sslmode verify-full: no trusted CA certificates (system store empty, no sslrootcert)".into(),
            );
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(tokio_postgres_rustls::MakeRustlsConnect::new(config)))
    }
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(
    pem: &[u8],
    file: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("sslrootcert {}: {error}", file.display()))
}

/// Whether building a write's statements may use the connection (prepare a statement,
/// resolve a table, read a position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prepare {
    AsNeeded,
    /// Only what the session prepared and read before: while deliveries run on the
    /// connection in the background, a statement of the lane's own would land inside their
    /// transactions, and one that failed would abort them.
    CachedOnly,
}

/// Why a write's statements could not be built.
#[derive(Debug)]
pub(super) enum BuildError {
    Database(tokio_postgres::Error),
    /// Building needs the database ([`Prepare::CachedOnly`]): a statement not prepared yet, a
    /// table not resolved yet, a position not read yet.
    NeedsDatabase,
}

impl BuildError {
    /// The database's error, where the build could use the database.
    pub fn into_database(self) -> tokio_postgres::Error {
        match self {
            BuildError::Database(error) => error,
            BuildError::NeedsDatabase => unreachable!("a build that may use the database never needs it"),
        }
    }
}

impl From<tokio_postgres::Error> for BuildError {
    fn from(error: tokio_postgres::Error) -> Self {
        BuildError::Database(error)
    }
}

/// An open connection and the statements prepared on it.
pub(super) struct Connection {
    client: Arc<Client>,
    statements: HashMap<String, Statement>,
}

impl Connection {
    /// Connects; the connection's I/O runs on a task of its own until the client is dropped.
    pub async fn open(
        settings: &ConnectSettings,
        tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
    ) -> Result<Self, tokio_postgres::Error> {
        let config = settings.config();
        let client = match tls {
            None => {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
            }
            Some(tls) => {
                let mut config = config;
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let (client, connection) = config.connect(tls.clone()).await?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(Connection { client: Arc::new(client), statements: HashMap::new() })
    }

    /// The client, for one-off statements.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client, for statements run from another task.
    pub fn shared_client(&self) -> Arc<Client> {
        self.client.clone()
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// `sql` as a statement prepared once per connection, or, with [`Prepare::CachedOnly`],
    /// prepared before.
    pub async fn prepared(&mut self, sql: &str, prepare: Prepare) -> Result<Statement, BuildError> {
        match prepare {
            Prepare::AsNeeded => Ok(self.statement(sql).await?),
            Prepare::CachedOnly => self.statements.get(sql).cloned().ok_or(BuildError::NeedsDatabase),
        }
    }

    /// `sql` as a statement prepared once per connection.
    async fn statement(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Forgets prepared statements (after DDL changed a table they name).
    pub fn forget_statements(&mut self) {
        self.statements.clear();
    }
}

/// How the pipeline handles a database error, by its SQLSTATE class: a row the target refuses
/// (data and integrity errors) is the record's fault; lost connections, conflicts and a busy
/// server pass; a missing table or column is re-resolved and retried; bad credentials, a
/// missing database, privileges and everything unforeseen halt.
pub(super) fn classify(error: &tokio_postgres::Error) -> ErrorClass {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection failed or closed.
        return ErrorClass::Transient { retry_after: None };
    };
    let code = code.code();
    match &code[..2] {
        "22" | "23" => ErrorClass::Record,
        "08" | "40" | "53" | "55" | "57" => ErrorClass::Transient { retry_after: None },
        _ if code == "42P01" || code == "42703" => ErrorClass::Transient { retry_after: None },
        _ => ErrorClass::Fatal,
    }
}

/// Whether the error means the session is gone (so is any open transaction).
pub(super) fn session_lost(error: &tokio_postgres::Error, connection: &Connection) -> bool {
    connection.is_closed()
        || error.code().is_none_or(|code| code.code().starts_with("08") || code.code().starts_with("57P"))
}
