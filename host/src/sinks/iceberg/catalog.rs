//! The catalog the sink writes through, chosen by `catalog_uri`: an SQL catalog (SQLite or
//! PostgreSQL) or a REST catalog, over local or S3 storage. Tables are created, loaded and
//! listed through iceberg's catalogs; commits go around them ([`super::commit`]), since the
//! crate keeps its own commit types private: an SQL catalog's metadata location is swapped in
//! its table directly, a REST catalog gets the spec's commit request ([`super::rest`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use iceberg::io::{LocalFsStorageFactory, StorageFactory};
use iceberg::{Catalog, CatalogBuilder, ErrorKind, NamespaceIdent, TableIdent};
use iceberg_catalog_rest::{REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE, RestCatalogBuilder};
use iceberg_catalog_sql::{SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlCatalogBuilder};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;
use sqlx::AnyPool;

use super::rest::RestCommits;
use crate::config::{IcebergSinkConfig, Secret};

/// How long one request to a REST catalog may take.
const REST_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the catalog and the table files are, validated.
#[derive(Clone)]
pub struct CatalogSettings {
    /// The catalog's name (rows of the SQL catalog are per catalog name).
    pub name: String,
    /// Which catalog, and where.
    pub kind: CatalogKind,
    /// The warehouse: a URL (`file:///…` or `s3://…`) for an SQL catalog, as given for a REST
    /// catalog (which may name a warehouse it knows).
    pub warehouse: String,
    /// Storage properties (S3 endpoint, region and keys).
    pub storage: HashMap<String, String>,
    s3: bool,
}

impl std::fmt::Debug for CatalogSettings {
    /// Without the storage properties: they hold the S3 secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSettings")
            .field("name", &self.name)
            .field("catalog", &self.describe())
            .field("warehouse", &self.warehouse)
            .finish_non_exhaustive()
    }
}

/// The kinds of catalog.
#[derive(Clone)]
pub enum CatalogKind {
    /// An SQL catalog: its connection string, SQLite opened read-write-create.
    Sql { uri: String },
    /// A REST catalog: its base URI, extra properties (`prefix`, `header.NAME`, …), token and
    /// the CA file trusted beyond the system's roots.
    Rest { uri: String, properties: HashMap<String, String>, token: Option<Secret>, ca_file: Option<PathBuf> },
}

impl CatalogSettings {
    /// Settings from the sink's config; an unsupported catalog or warehouse is an error.
    pub fn from_config(config: &IcebergSinkConfig) -> Result<Self, String> {
        let uri = config.catalog_uri.trim();
        let kind = if let Some(path) = uri.strip_prefix("sqlite:") {
            CatalogKind::Sql { uri: sqlite_uri(path)? }
        } else if uri.starts_with("postgresql:") || uri.starts_with("postgres:") {
            CatalogKind::Sql { uri: uri.to_owned() }
        } else if uri.starts_with("http:") || uri.starts_with("https:") {
            let properties = config.catalog_properties.clone().into_iter().collect();
            CatalogKind::Rest {
                uri: uri.trim_end_matches('/').to_owned(),
                properties,
                token: config.catalog_token.clone(),
                ca_file: config.catalog_ca_file.clone(),
            }
        } else {
            return Err(format!(
                "catalog_uri `{uri}`: expected `sqlite:PATH`, `postgresql://…` or a REST catalog's `http(s)://…`"
            ));
        };
        let rest = matches!(kind, CatalogKind::Rest { .. });
        let warehouse = config.warehouse.trim().trim_end_matches('/');
        let s3 = warehouse.starts_with("s3://") || warehouse.starts_with("s3a://");
        let warehouse = if rest || s3 || warehouse.starts_with("file://") {
            warehouse.to_owned()
        } else if warehouse.contains("://") {
            return Err(format!("warehouse `{warehouse}`: expected a local path, `file://…` or `s3://…`"));
        } else {
            format!("file://{}", absolute(warehouse)?)
        };
        // A REST catalog places tables itself, perhaps in S3 whatever the warehouse's name.
        let s3 = s3 || (rest && config.s3_endpoint.is_some());
        let mut storage = HashMap::new();
        if s3 {
            storage.insert("s3.region".to_owned(), config.s3_region.clone());
            if let Some(endpoint) = &config.s3_endpoint {
                storage.insert("s3.endpoint".to_owned(), endpoint.clone());
                // S3-compatible stores on an endpoint of their own address buckets by path.
                storage.insert("s3.path-style-access".to_owned(), "true".to_owned());
            }
            let secret = |secret: &Option<Secret>| secret.as_ref().map(|s| s.expose().to_owned());
            if let Some(key) = secret(&config.s3_access_key_id) {
                storage.insert("s3.access-key-id".to_owned(), key);
            }
            if let Some(key) = secret(&config.s3_secret_access_key) {
                storage.insert("s3.secret-access-key".to_owned(), key);
            }
        }
        Ok(CatalogSettings { name: config.catalog_name.clone(), kind, warehouse, storage, s3 })
    }

    /// Where the catalog is, without credentials, for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            CatalogKind::Sql { uri } => describe_uri(uri),
            CatalogKind::Rest { uri, .. } => format!("REST catalog {}", describe_uri(uri)),
        }
    }
}

/// An SQLite catalog's connection string: the database file is created when absent (with its
/// directory).
fn sqlite_uri(path: &str) -> Result<String, String> {
    let (file, options) = path.split_once('?').unwrap_or((path, ""));
    let file = file.trim_start_matches("//");
    if file.is_empty() || file.starts_with(":memory:") {
        return Err("catalog_uri: an SQLite catalog needs a file (`sqlite:/path/catalog.db`)".to_owned());
    }
    let file = absolute(file)?;
    if let Some(directory) = Path::new(&file).parent() {
        std::fs::create_dir_all(directory)
            .map_err(|error| format!("catalog_uri: cannot create {}: {error}", directory.display()))?;
    }
    let mut options: Vec<&str> = options.split('&').filter(|o| !o.is_empty()).collect();
    if !options.iter().any(|option| option.starts_with("mode=")) {
        options.push("mode=rwc");
    }
    Ok(format!("sqlite:{file}?{}", options.join("&")))
}

fn absolute(path: &str) -> Result<String, String> {
    std::path::absolute(path)
        .map(|path| path.to_string_lossy().into_owned())
        .map_err(|error| format!("cannot resolve the path `{path}`: {error}"))
}

/// A connection string without its password.
fn describe_uri(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &uri[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &uri[..scheme + 3], &uri[at + 1..])
        }
        _ => uri.to_owned(),
    }
}

/// An open catalog: iceberg's SQL or REST catalog for reading and creating tables, and what
/// commits go through.
pub struct Lakehouse {
    pub catalog: Box<dyn Catalog>,
    pub commits: Commits,
    pub settings: CatalogSettings,
}

/// How a commit reaches the catalog.
pub enum Commits {
    /// A pool of our own on the SQL catalog's database, for the compare-and-swap.
    Sql(AnyPool),
    /// The REST catalog's commit endpoint.
    Rest(RestCommits),
}

impl Lakehouse {
    /// Connects (creating an SQL catalog's tables when absent).
    pub async fn open(settings: &CatalogSettings) -> Result<Self, String> {
        let where_ = settings.describe();
        let cannot_open = |error: iceberg::Error| {
            format!("cannot open the catalog at {where_}: {}", super::describe(&error))
        };
        let mut properties = settings.storage.clone();
        let (catalog, commits): (Box<dyn Catalog>, Commits) = match &settings.kind {
            CatalogKind::Sql { uri } => {
                let factory: Arc<dyn StorageFactory> = if settings.s3 {
                    Arc::new(iceberg_storage_opendal::OpenDalStorageFactory::S3 {
                        customized_credential_load: None,
                    })
                } else {
                    Arc::new(LocalFsStorageFactory)
                };
                properties.insert(SQL_CATALOG_PROP_URI.to_owned(), uri.clone());
                properties.insert(SQL_CATALOG_PROP_WAREHOUSE.to_owned(), settings.warehouse.clone());
                let catalog = SqlCatalogBuilder::default()
                    .with_storage_factory(factory)
                    .load(&settings.name, properties)
                    .await
                    .map_err(cannot_open)?;
                // The catalog installed sqlx's drivers.
                let pool = sqlx::any::AnyPoolOptions::new()
                    .max_connections(2)
                    .connect(uri)
                    .await
                    .map_err(|error| format!("cannot connect to the catalog at {where_}: {error}"))?;
                (Box::new(catalog), Commits::Sql(pool))
            }
            CatalogKind::Rest { uri, properties: extra, token, ca_file } => {
                let client = crate::http::client(REST_REQUEST_TIMEOUT, ca_file.as_deref())
                    .map_err(|error| format!("REST catalog {uri}: {}", crate::error::chain(&error)))?;
                properties.extend(extra.clone());
                properties.insert(REST_CATALOG_PROP_URI.to_owned(), uri.clone());
                properties.insert(REST_CATALOG_PROP_WAREHOUSE.to_owned(), settings.warehouse.clone());
                if let Some(token) = token {
                    properties.insert("token".to_owned(), token.expose().to_owned());
                }
                // Tables may be anywhere the catalog puts them: storage follows each path's scheme.
                let catalog = RestCatalogBuilder::default()
                    .with_client(client.clone())
                    .with_storage_factory(Arc::new(OpenDalResolvingStorageFactory::new()))
                    .load(&settings.name, properties)
                    .await
                    .map_err(cannot_open)?;
                let commits =
                    RestCommits::open(client, uri, &settings.warehouse, extra, token.clone()).await?;
                (Box::new(catalog), Commits::Rest(commits))
            }
        };
        Ok(Lakehouse { catalog, commits, settings: settings.clone() })
    }

    /// Creates the namespace when absent.
    pub async fn ensure_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        if self.namespace_exists(namespace).await? {
            return Ok(());
        }
        match self.catalog.create_namespace(namespace, HashMap::new()).await {
            Ok(_) => Ok(()),
            // Another lane created it meanwhile.
            Err(error) if error.kind() == ErrorKind::NamespaceAlreadyExists => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Every table of a namespace; none when the namespace does not exist.
    pub async fn tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        if !self.namespace_exists(namespace).await? {
            return Ok(Vec::new());
        }
        self.catalog.list_tables(namespace).await
    }

    /// The table, or `None` when it does not exist. A load rather than an existence check:
    /// some REST catalogs serve no `HEAD`.
    pub async fn load_table(&self, ident: &TableIdent) -> iceberg::Result<Option<iceberg::table::Table>> {
        match self.catalog.load_table(ident).await {
            Ok(table) => Ok(Some(table)),
            Err(error) if matches!(error.kind(), ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound) => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether the namespace exists, by reading it (some REST catalogs serve no `HEAD`).
    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        match self.catalog.get_namespace(namespace).await {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == ErrorKind::NamespaceNotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_catalogs_are_created_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/catalog.db");
        let uri = sqlite_uri(file.to_str().unwrap()).unwrap();
        assert_eq!(uri, format!("sqlite:{}?mode=rwc", file.display()));
        assert!(file.parent().unwrap().is_dir());
        let kept = sqlite_uri(&format!("{}?mode=rw", file.display())).unwrap();
        assert!(kept.ends_with("?mode=rw"), "{kept}");
        assert!(sqlite_uri(":memory:").is_err());
    }

    #[test]
    fn connection_strings_are_described_without_their_password() {
        assert_eq!(describe_uri("postgresql://cdc:s3cret@db:5432/lake"), "postgresql://cdc@db:5432/lake");
        assert_eq!(
            describe_uri("sqlite:/var/lake/catalog.db?mode=rwc"),
            "sqlite:/var/lake/catalog.db?mode=rwc"
        );
    }
}
