//! `cdc consume`: a pipeline's change events as the pipeline decodes them, one JSON object per
//! line (`topic`, `partition`, `offset`, `table`, and Debezium's `key` and `value`), read
//! outside its consumer group: nothing is committed, the pipeline's offsets never move.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::ConfigArgs;
use crate::config::{Config, TransportMode};
use crate::decode::{Decoded, Decoder};
use crate::event::{self, Position};
use crate::ops::debezium;
use crate::ops::peek::{self, Peeked, Start};
use crate::source::kafka;

#[derive(Debug, clap::Args)]
pub(super) struct ConsumeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Read this topic only (repeatable); by default every source topic of the pipeline.
    #[arg(long)]
    topic: Vec<String>,
    /// Start at the oldest record kept, not at the records written from now on.
    #[arg(long)]
    from_beginning: bool,
    /// The most events to print.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Stop once no record came for this many seconds.
    #[arg(long, default_value_t = 5.0)]
    wait_seconds: f64,
}

pub(super) async fn consume(config: &Config, args: &ConsumeArgs) -> Result<(), String> {
    if config.platform.transport_mode == TransportMode::Embedded {
        return Err(
            "an embedded pipeline has no topics: its changes are read from the source database".into()
        );
    }
    let kafka_config = &config.platform.kafka;
    let decoder = super::decoder(config)?;
    let topics = if args.topic.is_empty() { debezium::source_topics(config) } else { args.topic.clone() };
    let start = if args.from_beginning { Start::Beginning } else { Start::End };
    let wait = Duration::try_from_secs_f64(args.wait_seconds)
        .map_err(|_| format!("--wait-seconds {}: not a duration", args.wait_seconds))?;
    let records =
        peek::read(&kafka::connection_properties(kafka_config), &topics, start, args.limit, wait).await?;
    for record in &records {
        println!("{}", line(&decoder, record).await);
    }
    Ok(())
}

/// One record as printed: the decoded event, or why it did not decode.
async fn line(decoder: &Decoder, record: &Peeked) -> Json {
    let position = Position::Kafka {
        topic: Arc::from(record.topic.as_str()),
        partition: record.partition,
        offset: record.offset,
    };
    let mut line = json!({ "topic": record.topic, "partition": record.partition, "offset": record.offset });
    let fields = match decoder.decode(record.key.as_deref(), record.value.as_deref(), position).await {
        Ok(Decoded::Change(event)) => json!({
            "table": event.table.to_string(),
            "key": event::to_debezium_key(&event),
            "value": event::to_debezium_value(&event),
        }),
        Ok(Decoded::Tombstone) => json!({ "tombstone": true }),
        Ok(Decoded::SchemaChange(change)) => json!({ "schema_change": change.ddl }),
        Err(error) => json!({ "error": error.to_string() }),
    };
    if let (Json::Object(line), Json::Object(fields)) = (&mut line, fields) {
        line.extend(fields);
    }
    line
}
