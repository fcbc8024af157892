//! Orphan files: files under a table's location that no snapshot and no metadata file
//! references, left by a crash between writing files and committing them (or by another
//! writer's). They are deleted once older than an age far beyond any write's wait for its
//! commit, so that files a commit is about to reference are never touched. Local tables are
//! listed on disk, tables in S3 through an S3 listing with the sink's `s3.*` properties.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use iceberg::table::Table;
use opendal::Operator;

use super::commit::CommitError;
use super::maintenance::FileSet;

/// Deletes the files under the table's location that nothing references and that are older
/// than `age`; returns how many.
pub(super) async fn remove(
    table: &Table,
    storage: &HashMap<String, String>,
    age: Duration,
) -> Result<usize, CommitError> {
    let metadata = table.metadata();
    let Some(store) = Store::of(metadata.location(), storage)? else { return Ok(0) };
    let mut referenced = HashSet::new();
    let mut files = FileSet::new(table);
    for snapshot in metadata.snapshots() {
        files.collect(snapshot, &mut referenced).await?;
    }
    referenced.extend(table.metadata_location().map(str::to_owned));
    referenced.extend(metadata.metadata_log().iter().map(|log| log.metadata_file.clone()));
    let referenced: HashSet<String> = referenced.iter().map(|location| normalize(location)).collect();
    let cutoff = SystemTime::now() - age;
    let mut deleted = 0;
    for (location, modified) in store.list().await? {
        if modified.is_some_and(|modified| modified < cutoff) && !referenced.contains(&normalize(&location)) {
            match store.delete(&location).await {
                Ok(()) => deleted += 1,
                Err(error) => tracing::warn!(file = location, error = %error, "iceberg.delete_failed"),
            }
        }
    }
    Ok(deleted)
}

/// A location as the listing names it: local paths without `file://`, S3 with `s3://`.
fn normalize(location: &str) -> String {
    match location.strip_prefix("file://") {
        Some(path) => path.to_owned(),
        None => location.replacen("s3a://", "s3://", 1),
    }
}

/// Where a table's files are.
enum Store {
    Local(PathBuf),
    S3 { operator: Operator, bucket: String, prefix: String },
}

impl Store {
    /// The store of a table location; `None` for schemes this sink does not list.
    fn of(location: &str, storage: &HashMap<String, String>) -> Result<Option<Self>, CommitError> {
        if let Some(path) = location.strip_prefix("file://") {
            return Ok(Some(Store::Local(PathBuf::from(path))));
        }
        if location.starts_with('/') {
            return Ok(Some(Store::Local(PathBuf::from(location))));
        }
        let Some(rest) = location.strip_prefix("s3://").or_else(|| location.strip_prefix("s3a://")) else {
            return Ok(None);
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let property = |key: &str| storage.get(key).map(String::as_str);
        let mut builder = opendal::services::S3::default()
            .bucket(bucket)
            .root("/")
            .region(property("s3.region").unwrap_or("us-east-1"))
            .disable_config_load()
            .disable_ec2_metadata();
        if let Some(endpoint) = property("s3.endpoint") {
            builder = builder.endpoint(endpoint);
        }
        if let (Some(key), Some(secret)) = (property("s3.access-key-id"), property("s3.secret-access-key")) {
            builder = builder.access_key_id(key).secret_access_key(secret);
        }
        let operator = Operator::new(builder)
            .map_err(|error| CommitError::Failed(format!("cannot list {location}: {error}")))?
            .finish();
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        Ok(Some(Store::S3 { operator, bucket: bucket.to_owned(), prefix }))
    }

    /// Every file under the table's location, with when it was last written.
    async fn list(&self) -> Result<Vec<(String, Option<SystemTime>)>, CommitError> {
        match self {
            Store::Local(root) => Ok(local_files(root)
                .into_iter()
                .map(|path| {
                    let modified = std::fs::metadata(&path).and_then(|meta| meta.modified()).ok();
                    (path.display().to_string(), modified)
                })
                .collect()),
            Store::S3 { operator, bucket, prefix } => {
                let entries = operator.list_with(prefix).recursive(true).await.map_err(|error| {
                    CommitError::Failed(format!("cannot list s3://{bucket}/{prefix}: {error}"))
                })?;
                Ok(entries
                    .into_iter()
                    .filter(|entry| entry.metadata().is_file())
                    .map(|entry| {
                        let modified = entry.metadata().last_modified().map(SystemTime::from);
                        (format!("s3://{bucket}/{}", entry.path()), modified)
                    })
                    .collect())
            }
        }
    }

    async fn delete(&self, location: &str) -> Result<(), String> {
        match self {
            Store::Local(_) => std::fs::remove_file(location).map_err(|error| error.to_string()),
            Store::S3 { operator, bucket, .. } => {
                let key = location.strip_prefix(&format!("s3://{bucket}/")).unwrap_or(location);
                operator.delete(key).await.map_err(|error| error.to_string())
            }
        }
    }
}

/// Every file under `root`, recursively.
fn local_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
