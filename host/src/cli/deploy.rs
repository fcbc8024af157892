//! `cdc deploy` and `cdc undeploy`: a pipeline's provisioning without running it, and its
//! removal. Deploying creates what is missing (topics and a running connector in Kafka mode,
//! the publication in embedded mode) and never deletes anything. Undeploying removes the
//! connector and, only when asked, the topics (`--delete-topics`) and the source's slot and
//! publication (`--drop-slot`).

use std::time::{Duration, Instant};

use super::progress::Progress;
use crate::config::{Config, TransportMode};
use crate::ops::{provision, topics};
use crate::source::postgres::EmbeddedSettings;
use crate::source::postgres::admin;

/// How long a slot may stay in use after its connector was removed (the task stops).
const SLOT_RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// What `cdc undeploy` removes beyond the connector.
#[derive(Debug, Clone, Copy)]
pub(super) struct Removal {
    pub delete_topics: bool,
    pub drop_slot: bool,
}

pub(super) async fn deploy(config: &Config) -> Result<(), String> {
    match config.platform.transport_mode {
        TransportMode::Kafka => {
            let progress =
                Progress::start("creating topics, registering the connector, waiting until it runs");
            let connect = provision::provision(config).await.map_err(|error| format!("{error:#}"))?;
            drop(progress);
            for topic in provision::pipeline_topics(config) {
                println!("topic      {topic}");
            }
            println!("connector  {} RUNNING", connect.name());
        }
        TransportMode::Embedded => {
            let settings = EmbeddedSettings::from_config(config);
            admin::create_publication(&settings).await.map_err(|error| format!("{error:#}"))?;
            println!("publication {}", settings.publication);
            println!("slot        {} (created by the first `cdc run`, with its snapshot)", settings.slot);
        }
    }
    Ok(())
}

pub(super) async fn undeploy(config: &Config, removal: Removal) -> Result<(), String> {
    // What cannot be done is refused before anything is removed.
    let settings = admin::source_slot(config);
    if removal.drop_slot && settings.is_none() {
        return Err(format!(
            "--drop-slot: a {:?} source has no replication slot",
            config.pipeline.source.source_type
        ));
    }
    if removal.delete_topics && config.platform.transport_mode == TransportMode::Embedded {
        return Err("--delete-topics: an embedded pipeline has no topics".to_owned());
    }
    // A running embedded pipeline holds its slot, but not at every instant (between the slot's
    // creation and streaming, while reconnecting): its health port says it runs.
    if removal.drop_slot
        && config.platform.transport_mode == TransportMode::Embedded
        && super::answers_on_health_port(config).await
    {
        return Err(format!(
            "--drop-slot: the pipeline answers on its health port {}: the slot is in use; stop the pipeline first",
            config.platform.health_port
        ));
    }
    // An embedded pipeline has no connector.
    if config.platform.transport_mode == TransportMode::Kafka {
        let connect = provision::connect_client(config).map_err(|error| crate::error::chain(&error))?;
        let removed = connect.delete().await.map_err(|error| error.to_string())?;
        println!("connector  {} {}", connect.name(), if removed { "removed" } else { "absent" });
        if removal.delete_topics {
            let topics = provision::pipeline_topics(config);
            let deleted = topics::delete_topics(&config.platform.kafka, &topics)
                .await
                .map_err(|error| crate::error::chain(&error))?;
            for topic in &topics {
                println!("topic      {topic} {}", if deleted.contains(topic) { "deleted" } else { "absent" });
            }
        }
    }
    if let Some(settings) = settings.filter(|_| removal.drop_slot) {
        if config.platform.transport_mode == TransportMode::Kafka {
            wait_released(&settings).await?;
        }
        let dropped =
            admin::drop_slot_and_publication(&settings).await.map_err(|error| format!("{error:#}"))?;
        println!("slot       {} {}", settings.slot, if dropped.slot { "dropped" } else { "absent" });
        println!(
            "publication {} {}",
            settings.publication,
            if dropped.publication { "dropped" } else { "absent" }
        );
    }
    Ok(())
}

/// Waits until nothing streams from the slot: the task of a connector just removed lets go
/// of it within seconds. If it does not, the drop that follows is refused.
async fn wait_released(settings: &EmbeddedSettings) -> Result<(), String> {
    let started = Instant::now();
    let _progress = Progress::start(format!("waiting until the slot {} is released", settings.slot));
    while started.elapsed() < SLOT_RELEASE_TIMEOUT {
        match admin::slot_state(settings).await.map_err(|error| format!("{error:#}"))? {
            Some(state) if state.active => tokio::time::sleep(Duration::from_millis(500)).await,
            _ => return Ok(()),
        }
    }
    Ok(())
}
