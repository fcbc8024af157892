//! The catalog the sink writes through: an SQL catalog (SQLite or PostgreSQL) over local or S3
//! storage, chosen by `catalog_uri` and `warehouse`. Tables are created, loaded and listed
//! through iceberg's SQL catalog; commits swap the metadata location in its table directly
//! ([`super::commit`]), since the crate keeps its own commit types private.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use iceberg::io::{LocalFsStorageFactory, StorageFactory};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableIdent};
use iceberg_catalog_sql::{SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlCatalog, SqlCatalogBuilder};
use sqlx::AnyPool;

use crate::config::{IcebergSinkConfig, Secret};

/// Where the catalog and the table files are, validated.
#[derive(Clone)]
pub struct CatalogSettings {
    /// The catalog's name (rows of the SQL catalog are per catalog name).
    pub name: String,
    /// The SQL connection string, SQLite opened read-write-create.
    pub uri: String,
    /// The warehouse as a URL (`file:///…` or `s3://…`).
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
            .field("uri", &describe_uri(&self.uri))
            .field("warehouse", &self.warehouse)
            .finish_non_exhaustive()
    }
}

impl CatalogSettings {
    /// Settings from the sink's config; an unsupported catalog or warehouse is an error.
    pub fn from_config(config: &IcebergSinkConfig) -> Result<Self, String> {
        let uri = config.catalog_uri.trim();
        let uri = if let Some(path) = uri.strip_prefix("sqlite:") {
            sqlite_uri(path)?
        } else if uri.starts_with("postgresql:") || uri.starts_with("postgres:") {
            uri.to_owned()
        } else if uri.starts_with("http:") || uri.starts_with("https:") {
            return Err(format!(
                "catalog_uri `{uri}`: REST catalogs are not available in this build yet; use an SQL \
                 catalog (`sqlite:PATH` or `postgresql://…`)"
            ));
        } else {
            return Err(format!("catalog_uri `{uri}`: expected `sqlite:PATH` or `postgresql://…`"));
        };
        let warehouse = config.warehouse.trim().trim_end_matches('/');
        let s3 = warehouse.starts_with("s3://") || warehouse.starts_with("s3a://");
        let warehouse = if s3 || warehouse.starts_with("file://") {
            warehouse.to_owned()
        } else if warehouse.contains("://") {
            return Err(format!("warehouse `{warehouse}`: expected a local path, `file://…` or `s3://…`"));
        } else {
            format!("file://{}", absolute(warehouse)?)
        };
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
        Ok(CatalogSettings { name: config.catalog_name.clone(), uri, warehouse, storage, s3 })
    }

    /// Where the catalog is, without credentials, for messages.
    pub fn describe(&self) -> String {
        describe_uri(&self.uri)
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

/// An open catalog: iceberg's SQL catalog, and a pool of our own on the same database for the
/// compare-and-swap of a commit.
pub struct Lakehouse {
    pub catalog: SqlCatalog,
    pub pool: AnyPool,
    pub settings: CatalogSettings,
}

impl Lakehouse {
    /// Connects (creating the catalog's tables when absent).
    pub async fn open(settings: &CatalogSettings) -> Result<Self, String> {
        let where_ = settings.describe();
        let factory: Arc<dyn StorageFactory> = if settings.s3 {
            Arc::new(iceberg_storage_opendal::OpenDalStorageFactory::S3 { customized_credential_load: None })
        } else {
            Arc::new(LocalFsStorageFactory)
        };
        let mut properties = settings.storage.clone();
        properties.insert(SQL_CATALOG_PROP_URI.to_owned(), settings.uri.clone());
        properties.insert(SQL_CATALOG_PROP_WAREHOUSE.to_owned(), settings.warehouse.clone());
        let catalog = SqlCatalogBuilder::default()
            .with_storage_factory(factory)
            .load(&settings.name, properties)
            .await
            .map_err(|error| format!("cannot open the catalog at {where_}: {}", super::describe(&error)))?;
        // The catalog installed sqlx's drivers.
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&settings.uri)
            .await
            .map_err(|error| format!("cannot connect to the catalog at {where_}: {error}"))?;
        Ok(Lakehouse { catalog, pool, settings: settings.clone() })
    }

    /// Creates the namespace when absent.
    pub async fn ensure_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        if !self.catalog.namespace_exists(namespace).await? {
            match self.catalog.create_namespace(namespace, HashMap::new()).await {
                Ok(_) => {}
                // Another lane created it meanwhile.
                Err(error) if error.kind() == iceberg::ErrorKind::NamespaceAlreadyExists => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Every table of a namespace; none when the namespace does not exist.
    pub async fn tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        if !self.catalog.namespace_exists(namespace).await? {
            return Ok(Vec::new());
        }
        self.catalog.list_tables(namespace).await
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
