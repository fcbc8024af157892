//! Commits through a REST catalog: `POST /v1/{prefix}/namespaces/{namespace}/tables/{table}` with
//! requirements (the table as this commit read it) and the metadata updates. The catalog applies
//! them atomically or answers 409; it writes the metadata file itself.
//!
//! iceberg-catalog-rest reads, creates and lists tables; it commits only the crate's own
//! transactions (their commit type cannot be built outside the crate), so this module sends the
//! spec's commit request itself, with the catalog's prefix and token.

use std::collections::HashMap;

use iceberg::spec::{MAIN_BRANCH, TableMetadata};
use iceberg::table::Table;
use iceberg::{Runtime, TableIdent, TableRequirement, TableUpdate};
use iceberg_catalog_rest::{CommitTableRequest, CommitTableResponse};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::commit::CommitError;
use crate::config::Secret;

/// The commit endpoint of a REST catalog.
pub struct RestCommits {
    client: reqwest::Client,
    /// `{uri}/v1[/{prefix}]`, under which the tables are.
    base: Url,
    token: Option<Secret>,
}

impl RestCommits {
    /// Reads the catalog's `/v1/config` through `client` to learn its prefix (the server's overrides win over
    /// `properties`, which win over its defaults, as for every REST client).
    pub async fn open(
        client: reqwest::Client,
        uri: &str,
        warehouse: &str,
        properties: &HashMap<String, String>,
        token: Option<Secret>,
    ) -> Result<Self, String> {
        let config_url = format!("{}/v1/config", uri.trim_end_matches('/'));
        let mut request = client.get(&config_url).query(&[("warehouse", warehouse)]);
        if let Some(token) = &token {
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("cannot reach the REST catalog at {uri}: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "the REST catalog at {uri} answered {status} to {config_url}: {}",
                brief(&body)
            ));
        }
        let config: ServerConfig = response.json().await.map_err(|error| {
            format!("the REST catalog at {uri} sent a config this sink cannot read: {error}")
        })?;
        let root = config.overrides.get("uri").map_or(uri, String::as_str).trim_end_matches('/');
        let prefix = config
            .overrides
            .get("prefix")
            .or_else(|| properties.get("prefix"))
            .or_else(|| config.defaults.get("prefix"));
        let base = match prefix {
            Some(prefix) => format!("{root}/v1/{prefix}"),
            None => format!("{root}/v1"),
        };
        let base = Url::parse(&base).map_err(|error| format!("catalog_uri `{uri}`: {error}"))?;
        Ok(RestCommits { client, base, token })
    }

    /// Applies `updates` to `table` if the catalog still holds it as read; returns the table
    /// after them.
    pub async fn commit(&self, table: &Table, updates: Vec<TableUpdate>) -> Result<Table, CommitError> {
        let ident = table.identifier();
        let request = CommitTableRequest {
            identifier: Some(ident.clone()),
            requirements: requirements(table.metadata()),
            updates,
        };
        let mut post = self.client.post(self.table_url(ident)).json(&request);
        if let Some(token) = &self.token {
            post = post.bearer_auth(token.expose());
        }
        let failed = |message: String| CommitError::Failed(format!("cannot commit to {ident}: {message}"));
        let response = post.send().await.map_err(|error| failed(format!("the REST catalog: {error}")))?;
        let status = response.status();
        if status == StatusCode::CONFLICT {
            return Err(CommitError::Conflict(ident.to_string()));
        }
        if !status.is_success() {
            // A 5xx leaves the commit's outcome unknown: the caller reads the table again.
            let body = response.text().await.unwrap_or_default();
            return Err(failed(format!("the REST catalog answered {status}: {}", brief(&body))));
        }
        let committed: CommitTableResponse =
            response.json().await.map_err(|error| failed(format!("unreadable answer: {error}")))?;
        let runtime = Runtime::try_current().map_err(|error| failed(super::describe(&error)))?;
        Table::builder()
            .file_io(table.file_io().clone())
            .metadata(committed.metadata)
            .metadata_location(committed.metadata_location)
            .identifier(ident.clone())
            .runtime(runtime)
            .build()
            .map_err(|error| failed(format!("cannot open the committed table: {}", super::describe(&error))))
    }

    fn table_url(&self, ident: &TableIdent) -> Url {
        let mut url = self.base.clone();
        // The spec joins namespace levels with the unit separator; each segment is
        // percent-encoded here.
        let namespace = ident.namespace().join("\u{1f}");
        url.path_segments_mut().expect("an http(s) URL has path segments").extend([
            "namespaces",
            &namespace,
            "tables",
            ident.name(),
        ]);
        url
    }
}

/// The answer to `GET /v1/config`.
#[derive(Deserialize)]
struct ServerConfig {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

/// What the commit assumes about the table: the same table, and the branch, schema and
/// partitioning it was built on. Any of them changed is a 409 from the catalog.
fn requirements(metadata: &TableMetadata) -> Vec<TableRequirement> {
    vec![
        TableRequirement::UuidMatch { uuid: metadata.uuid() },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: MAIN_BRANCH.to_owned(),
            snapshot_id: metadata.current_snapshot_id(),
        },
        TableRequirement::CurrentSchemaIdMatch { current_schema_id: metadata.current_schema_id() },
        TableRequirement::LastAssignedFieldIdMatch { last_assigned_field_id: metadata.last_column_id() },
        TableRequirement::DefaultSpecIdMatch { default_spec_id: metadata.default_partition_spec_id() },
    ]
}

/// A response body for an error message: the spec's `error.message` when there is one.
fn brief(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_urls_encode_namespace_levels_and_names() {
        let commits = RestCommits {
            client: reqwest::Client::new(),
            base: Url::parse("http://catalog:8181/v1/dev").unwrap(),
            token: None,
        };
        let ident = TableIdent::from_strs(["bronze", "cdc", "orders 2024"]).unwrap();
        assert_eq!(
            commits.table_url(&ident).as_str(),
            "http://catalog:8181/v1/dev/namespaces/bronze%1Fcdc/tables/orders%202024"
        );
    }

    #[test]
    fn error_bodies_are_reduced_to_their_message() {
        let body = r#"{"error":{"message":"branch main has changed","type":"ConflictError","code":409}}"#;
        assert_eq!(brief(body), "branch main has changed");
        assert_eq!(brief("gateway timeout"), "gateway timeout");
    }
}
