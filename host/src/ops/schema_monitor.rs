//! The schema monitor: watches the latest value schema of each source topic in the Schema
//! Registry, logs `schema.version_changed`, and reports a backward-incompatible change (a column
//! removed, a type narrowed or changed) as `schema.incompatible`; with
//! `stop_on_incompatible_schema` that halts the pipeline.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::HttpEndpoint;
use crate::http;

/// What the monitor concluded about one subject in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new version that old readers of the rows can still read.
    Compatible {
        /// The subject.
        subject: String,
        /// The previous and the new version.
        versions: (i64, i64),
    },
    /// A new version that breaks readers of the rows.
    Incompatible {
        /// The subject.
        subject: String,
        /// The previous and the new version.
        versions: (i64, i64),
        /// What broke, one line each.
        problems: Vec<String>,
    },
}

/// Watches subjects of the registry.
pub struct SchemaMonitor {
    http: reqwest::Client,
    /// The registry; its URL without a trailing slash.
    registry: HttpEndpoint,
    subjects: Vec<String>,
    latest: HashMap<String, (i64, Json)>,
}

#[derive(Deserialize)]
struct Latest {
    version: i64,
    schema: String,
}

impl SchemaMonitor {
    /// A monitor of the value subjects (`<topic>-value`, Confluent's default naming) of `topics`.
    ///
    /// # Errors
    ///
    /// As [`HttpEndpoint::client`].
    pub fn new(
        registry: &HttpEndpoint,
        topics: &[String],
        request_timeout: Duration,
    ) -> Result<Self, http::Error> {
        let url = registry.url.trim_end_matches('/').to_owned();
        Ok(SchemaMonitor {
            http: registry.client(request_timeout)?,
            registry: HttpEndpoint { url, ..registry.clone() },
            subjects: topics.iter().map(|topic| format!("{topic}-value")).collect(),
            latest: HashMap::new(),
        })
    }

    /// One round: fetches each subject's latest version and compares it with the last one seen.
    /// Subjects not registered yet, and registry errors, are skipped (logged) until next round.
    pub async fn check(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for subject in self.subjects.clone() {
            let url = format!("{}/subjects/{subject}/versions/latest", self.registry.url);
            let latest = match self.registry.authorize(self.http.get(&url)).send().await {
                Ok(response) if response.status().is_success() => response.json::<Latest>().await,
                Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => continue,
                Ok(response) => {
                    tracing::warn!(subject, status = response.status().as_u16(), "schema.monitor_failed");
                    continue;
                }
                Err(error) => Err(error),
            };
            let Ok(latest) = latest else {
                tracing::warn!(subject, "schema.monitor_failed");
                continue;
            };
            let Ok(schema) = serde_json::from_str::<Json>(&latest.schema) else {
                tracing::warn!(subject, version = latest.version, "schema.unreadable");
                continue;
            };
            if let Some((version, previous)) = self.latest.get(&subject)
                && *version != latest.version
            {
                let versions = (*version, latest.version);
                let problems = incompatibilities(previous, &schema);
                changes.push(if problems.is_empty() {
                    Change::Compatible { subject: subject.clone(), versions }
                } else {
                    Change::Incompatible { subject: subject.clone(), versions, problems }
                });
            }
            self.latest.insert(subject, (latest.version, schema));
        }
        changes
    }
}

/// Why `new` cannot be read where `old` was: for the row record of a Debezium envelope, each
/// column removed and each type changed other than widened.
pub fn incompatibilities(old: &Json, new: &Json) -> Vec<String> {
    let (Some(old), Some(new)) = (row_columns(old), row_columns(new)) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for (name, old_type) in &old {
        match new.get(name) {
            None => problems.push(format!("column `{name}` was removed")),
            Some(new_type) if new_type != old_type && !widens(old_type, new_type) => {
                problems.push(format!("column `{name}` changed from {old_type} to {new_type}"));
            }
            Some(_) => {}
        }
    }
    problems
}

/// The columns of the row record (`before`/`after`) with a name for each type.
fn row_columns(envelope: &Json) -> Option<BTreeMap<String, String>> {
    let fields = envelope.get("fields")?.as_array()?;
    let record = fields
        .iter()
        .filter(|field| matches!(field.get("name").and_then(Json::as_str), Some("before" | "after")))
        .find_map(|field| {
            non_null(field.get("type")?).filter(|member| member.get("type") == Some(&"record".into()))
        })?;
    let columns = record.get("fields")?.as_array()?;
    Some(
        columns
            .iter()
            .filter_map(|column| {
                let name = column.get("name")?.as_str()?.to_owned();
                Some((name, type_name(non_null(column.get("type")?)?)))
            })
            .collect(),
    )
}

/// The member of a `["null", T]` union that is not null, or the type itself.
fn non_null(schema: &Json) -> Option<&Json> {
    match schema {
        Json::Array(members) => members.iter().find(|member| member.as_str() != Some("null")),
        other => Some(other),
    }
}

/// A type's name for comparison: the Connect or logical name if any, else the Avro type.
fn type_name(schema: &Json) -> String {
    match schema {
        Json::String(name) => name.clone(),
        Json::Object(object) => ["connect.name", "logicalType", "type"]
            .iter()
            .find_map(|key| object.get(*key).and_then(Json::as_str))
            .unwrap_or("unknown")
            .to_owned(),
        other => other.to_string(),
    }
}

/// Whether a reader of `old` can read `new` (Avro's numeric promotions).
fn widens(old: &str, new: &str) -> bool {
    matches!(
        (old, new),
        ("int", "long" | "float" | "double") | ("long", "float" | "double") | ("float", "double")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(columns: Json) -> Json {
        json!({
            "type": "record", "name": "Envelope",
            "fields": [
                {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": columns}]},
                {"name": "after", "type": ["null", "Value"]},
                {"name": "op", "type": "string"}
            ]
        })
    }

    #[test]
    fn added_columns_and_widened_types_are_compatible() {
        let old =
            envelope(json!([{"name": "id", "type": "int"}, {"name": "note", "type": ["null", "string"]}]));
        let new = envelope(json!([
            {"name": "id", "type": "long"},
            {"name": "note", "type": ["null", "string"]},
            {"name": "phone", "type": ["null", "string"]}
        ]));
        assert!(incompatibilities(&old, &new).is_empty());
    }

    #[test]
    fn removed_columns_and_changed_types_are_named() {
        let old = envelope(json!([
            {"name": "id", "type": "long"},
            {"name": "note", "type": ["null", "string"]},
            {"name": "seen", "type": {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}}
        ]));
        let new = envelope(json!([{"name": "id", "type": "string"}, {"name": "seen", "type": "long"}]));
        assert_eq!(
            incompatibilities(&old, &new),
            vec![
                "column `id` changed from long to string".to_owned(),
                "column `note` was removed".to_owned(),
                "column `seen` changed from io.debezium.time.MicroTimestamp to long".to_owned(),
            ]
        );
    }

    #[test]
    fn schemas_that_are_not_envelopes_are_not_judged() {
        assert!(incompatibilities(&json!("string"), &json!("int")).is_empty());
    }
}
