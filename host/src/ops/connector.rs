//! Kafka Connect provisioning: registers the pipeline's Debezium connector (idempotent
//! `PUT /connectors/{name}/config`), waits until it and its tasks run, and watches it after.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::chain;

/// How often the connector's status is polled while waiting for it and afterwards.
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why the connector is not running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kafka Connect could not be reached (after the configured retries).
    #[error("kafka connect at {url} is unreachable: {reason}")]
    Unreachable {
        /// Kafka Connect's URL.
        url: String,
        /// The cause.
        reason: String,
    },
    /// Kafka Connect refused the request.
    #[error("kafka connect refused `{request}` with {status}: {body}")]
    Refused {
        /// What was asked.
        request: String,
        /// HTTP status.
        status: u16,
        /// Its explanation.
        body: String,
    },
    /// The connector or one of its tasks failed.
    #[error("connector `{name}` failed: {trace}")]
    Failed {
        /// Connector name.
        name: String,
        /// Kafka Connect's trace of the failure.
        trace: String,
    },
    /// The connector did not reach RUNNING in time.
    #[error("connector `{name}` is not running after {waited:?} (last state: {state})")]
    Timeout {
        /// Connector name.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// The last state seen.
        state: String,
    },
}

/// A Kafka Connect REST client for one connector.
pub struct ConnectClient {
    http: reqwest::Client,
    base_url: String,
    name: String,
    retry_attempts: u32,
    retry_wait: Duration,
}

#[derive(Debug, Deserialize)]
struct Status {
    connector: StateInfo,
    #[serde(default)]
    tasks: Vec<StateInfo>,
}

#[derive(Debug, Deserialize)]
struct StateInfo {
    state: String,
    #[serde(default)]
    trace: Option<String>,
}

impl ConnectClient {
    /// A client for connector `name` at `base_url`, whose requests go through `http`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        name: &str,
        retry_attempts: u32,
        retry_wait: Duration,
    ) -> Self {
        ConnectClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            name: name.to_owned(),
            retry_attempts: retry_attempts.max(1),
            retry_wait,
        }
    }

    /// The connector's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates or updates the connector's config. An unchanged config is left alone, so that a
    /// restart or a second replica does not restart the connector. The config holds secrets:
    /// it is never logged.
    pub async fn put_config(&self, config: &BTreeMap<String, String>) -> Result<(), Error> {
        let url = format!("{}/connectors/{}/config", self.base_url, self.name);
        let current = self.with_retries(|| self.http.get(&url).send()).await?;
        if current.status().is_success() {
            let mut current: BTreeMap<String, String> = current.json().await.unwrap_or_default();
            current.remove("name");
            if &current == config {
                tracing::info!(connector = self.name.as_str(), "provision.connector_unchanged");
                return Ok(());
            }
        }
        let response = self.with_retries(|| self.http.put(&url).json(config).send()).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(Error::Refused { request: format!("PUT {url}"), status: status.as_u16(), body });
        }
        tracing::info!(connector = self.name.as_str(), "provision.connector_registered");
        Ok(())
    }

    /// Waits until the connector and all its tasks are RUNNING; fails at once on FAILED.
    pub async fn wait_running(&self, timeout: Duration) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let state = match self.check().await {
                Ok(()) => return Ok(()),
                Err(error @ (Error::Failed { .. } | Error::Unreachable { .. })) => return Err(error),
                Err(Error::Timeout { state, .. }) => state,
                Err(Error::Refused { status: 404, .. }) => "not yet created".to_owned(),
                Err(error) => return Err(error),
            };
            if started.elapsed() >= timeout {
                return Err(Error::Timeout { name: self.name.clone(), waited: timeout, state });
            }
            tokio::time::sleep(STATUS_POLL_INTERVAL).await;
        }
    }

    /// One status check: `Ok` when running, `Failed` with the trace, or `Timeout` carrying
    /// the current state when it is still starting.
    pub async fn check(&self) -> Result<(), Error> {
        let url = format!("{}/connectors/{}/status", self.base_url, self.name);
        let response = self.with_retries(|| self.http.get(&url).send()).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(Error::Refused { request: format!("GET {url}"), status: status.as_u16(), body });
        }
        let body: Status = response.json().await.map_err(|error| Error::Unreachable {
            url: self.base_url.clone(),
            reason: format!("unreadable status: {}", chain(&error)),
        })?;
        let failed = std::iter::once(&body.connector).chain(&body.tasks).find(|info| info.state == "FAILED");
        if let Some(info) = failed {
            let trace =
                info.trace.as_deref().unwrap_or("no trace").lines().take(3).collect::<Vec<_>>().join(" | ");
            return Err(Error::Failed { name: self.name.clone(), trace });
        }
        let running = body.connector.state == "RUNNING"
            && !body.tasks.is_empty()
            && body.tasks.iter().all(|task| task.state == "RUNNING");
        if running {
            return Ok(());
        }
        let tasks: Vec<&str> = body.tasks.iter().map(|task| task.state.as_str()).collect();
        let state = format!("connector {}, tasks {tasks:?}", body.connector.state);
        Err(Error::Timeout { name: self.name.clone(), waited: Duration::ZERO, state })
    }

    /// Restarts the connector and those of its tasks that failed (Kafka Connect 3.0's
    /// `onlyFailed`); a task that keeps running is left alone.
    pub async fn restart_failed(&self) -> Result<(), Error> {
        let url =
            format!("{}/connectors/{}/restart?includeTasks=true&onlyFailed=true", self.base_url, self.name);
        let response = self.with_retries(|| self.http.post(&url).send()).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(Error::Refused { request: format!("POST {url}"), status: status.as_u16(), body });
        }
        Ok(())
    }

    /// Removes the connector; `false` when there was none. Its topics, offsets and the source's
    /// slot stay.
    pub async fn delete(&self) -> Result<bool, Error> {
        let url = format!("{}/connectors/{}", self.base_url, self.name);
        let response = self.with_retries(|| self.http.delete(&url).send()).await?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => {
                let body = response.text().await.unwrap_or_default();
                Err(Error::Refused { request: format!("DELETE {url}"), status, body })
            }
        }
    }

    /// Kafka Connect's version, or why it does not answer.
    pub async fn version(&self) -> Result<String, Error> {
        let response = self.with_retries(|| self.http.get(&self.base_url).send()).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(Error::Refused {
                request: format!("GET {}", self.base_url),
                status: status.as_u16(),
                body,
            });
        }
        let info: serde_json::Value = response.json().await.unwrap_or_default();
        Ok(info.get("version").and_then(|version| version.as_str()).unwrap_or("unknown").to_owned())
    }

    async fn with_retries<F, Fut>(&self, request: F) -> Result<reqwest::Response, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let mut attempt = 1;
        loop {
            match request().await {
                Ok(response) => return Ok(response),
                Err(error) if attempt >= self.retry_attempts => {
                    return Err(Error::Unreachable {
                        url: self.base_url.clone(),
                        reason: chain(&error.without_url()),
                    });
                }
                Err(error) => {
                    tracing::warn!(attempt, error = %chain(&error.without_url()), "provision.connect_retry");
                    attempt += 1;
                    tokio::time::sleep(self.retry_wait).await;
                }
            }
        }
    }
}
