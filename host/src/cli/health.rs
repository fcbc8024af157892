//! `cdc health`: the state of everything a pipeline depends on, as a table. Kafka mode: the
//! broker, the Schema Registry (Avro), Kafka Connect, the pipeline's connector and, for a
//! PostgreSQL source, its replication slot; embedded mode: the source database and the slot.
//! Exits 1 when any is down; an inactive slot that holds WAL is a warning.

use std::time::Duration;

use crate::config::{Config, HttpEndpoint, TransportMode, ValueConverter};
use crate::ops::connector::Error as ConnectError;
use crate::ops::{provision, topics};
use crate::source::postgres::EmbeddedSettings;
use crate::source::postgres::admin::{self, SlotState};

/// How long each check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How one dependency stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    Warn,
    Down,
}

struct Check {
    component: &'static str,
    state: State,
    detail: String,
}

impl Check {
    fn new(component: &'static str, state: State, detail: impl Into<String>) -> Self {
        Check { component, state, detail: detail.into() }
    }
}

/// Runs every check, prints the table; `Err` (exit 1) when something is down.
pub(super) async fn health(config: &Config) -> Result<(), String> {
    let mut checks = Vec::new();
    match config.platform.transport_mode {
        TransportMode::Kafka => {
            let bootstrap = &config.platform.kafka.bootstrap_servers;
            checks.push(match topics::broker_count(&config.platform.kafka, CHECK_TIMEOUT).await {
                Ok(brokers) => Check::new("broker", State::Up, format!("{bootstrap}: {brokers} broker(s)")),
                Err(error) => Check::new("broker", State::Down, format!("{bootstrap}: {error}")),
            });
            if config.platform.kafka.value_converter == ValueConverter::Avro {
                checks.push(registry(&config.platform.kafka.schema_registry).await);
            }
            let connect = provision::connect_client(config).map_err(|error| crate::error::chain(&error))?;
            let url = &config.platform.connector.connect_url;
            checks.push(match connect.version().await {
                Ok(version) => Check::new("connect", State::Up, format!("{url}: Kafka Connect {version}")),
                Err(error) => Check::new("connect", State::Down, error.to_string()),
            });
            let name = connect.name().to_owned();
            checks.push(match connect.check().await {
                Ok(()) => Check::new("connector", State::Up, format!("{name}: RUNNING")),
                Err(ConnectError::Timeout { state, .. }) => {
                    Check::new("connector", State::Warn, format!("{name}: {state}"))
                }
                Err(ConnectError::Refused { status: 404, .. }) => Check::new(
                    "connector",
                    State::Down,
                    format!("{name}: not registered (`cdc deploy` registers it)"),
                ),
                Err(error) => Check::new("connector", State::Down, error.to_string()),
            });
            if let Some(settings) = admin::source_slot(config) {
                checks.push(slot(&settings, "the connector creates it").await);
            }
        }
        TransportMode::Embedded => {
            if let Some(settings) = admin::source_slot(config) {
                checks.push(slot(&settings, "the first `cdc run` creates it").await);
            }
        }
    }
    print(&checks);
    match checks.iter().filter(|check| check.state == State::Down).count() {
        0 => Ok(()),
        down => Err(format!("{down} of {} checks down", checks.len())),
    }
}

async fn registry(registry: &HttpEndpoint) -> Check {
    let url = &registry.url;
    let client = match registry.client(CHECK_TIMEOUT) {
        Ok(client) => client,
        Err(error) => {
            return Check::new("registry", State::Down, format!("{url}: {}", crate::error::chain(&error)));
        }
    };
    let subjects = format!("{}/subjects", url.trim_end_matches('/'));
    match registry.authorize(client.get(&subjects)).send().await {
        Ok(response) if response.status().is_success() => Check::new("registry", State::Up, url),
        Ok(response) => Check::new("registry", State::Down, format!("{subjects}: {}", response.status())),
        Err(error) => Check::new("registry", State::Down, format!("{url}: {}", crate::error::chain(&error))),
    }
}

/// The source database and the slot: down when the database does not answer, a warning when
/// the slot is missing or inactive (nothing reads it, and the server keeps its WAL).
async fn slot(settings: &EmbeddedSettings, who_creates_it: &str) -> Check {
    let name = &settings.slot;
    match admin::slot_state(settings).await {
        Ok(Some(SlotState { active: true, retained_bytes })) => {
            Check::new("slot", State::Up, format!("{name}: active, {} behind", bytes(retained_bytes)))
        }
        Ok(Some(SlotState { active: false, retained_bytes })) => Check::new(
            "slot",
            State::Warn,
            format!(
                "{name}: inactive, holds {} of WAL (nothing reads it: run the pipeline or `cdc undeploy --drop-slot`)",
                bytes(retained_bytes)
            ),
        ),
        Ok(None) => Check::new("slot", State::Warn, format!("{name}: absent ({who_creates_it})")),
        Err(error) => Check::new("slot", State::Down, format!("{error:#}")),
    }
}

fn bytes(count: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{count} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn print(checks: &[Check]) {
    println!("{:<10} {:<5} detail", "component", "state");
    for check in checks {
        let state = match check.state {
            State::Up => "up",
            State::Warn => "warn",
            State::Down => "DOWN",
        };
        println!("{:<10} {:<5} {}", check.component, state, check.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
