//! `cdc lakehouse`: the tables a pipeline's Iceberg sink wrote: their snapshots, their rows now
//! or at an earlier snapshot or time, and a rollback to an earlier snapshot.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::Subcommand;

use super::ConfigArgs;
use crate::config::{Config, IcebergSinkConfig, SinkKind, TransportMode};
use crate::sinks::iceberg::lakehouse::{At, Lake, SnapshotInfo};

#[derive(Debug, Subcommand)]
pub(super) enum LakehouseCommand {
    /// Lists the snapshots of the sink's tables, oldest first, with the positions each stores.
    Snapshots(TableArgs),
    /// Prints a table's rows, now or as of an earlier snapshot or time.
    Query {
        #[command(flatten)]
        table: TableArgs,
        #[command(flatten)]
        at: AtArgs,
        /// The most rows to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Makes an earlier snapshot a table's current one. Its stored positions come back with it:
    /// a Kafka pipeline started afterwards writes again what came after it. Asks first unless
    /// `--yes`; refused while the pipeline answers on its health port, and in embedded mode
    /// (the WAL after the snapshot was released).
    Rollback {
        #[command(flatten)]
        table: TableArgs,
        #[command(flatten)]
        at: AtArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct TableArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The Iceberg sink (needed when the pipeline has several).
    #[arg(long)]
    sink_id: Option<String>,
    /// The table (needed when the sink wrote several).
    #[arg(long)]
    table: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(super) struct AtArgs {
    /// A snapshot id.
    #[arg(long, conflicts_with = "as_of")]
    snapshot_id: Option<i64>,
    /// A time (RFC 3339, e.g. `2026-11-30T12:00:00Z`, or milliseconds since the epoch): the
    /// snapshot that was current then.
    #[arg(long)]
    as_of: Option<String>,
}

impl AtArgs {
    fn at(&self) -> Result<At, String> {
        match (&self.snapshot_id, &self.as_of) {
            (Some(id), _) => Ok(At::Snapshot(*id)),
            (None, Some(time)) => parse_time(time).map(At::Time),
            (None, None) => Ok(At::Current),
        }
    }
}

fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|error| format!("--as-of `{text}`: not an RFC 3339 time nor milliseconds ({error})"))
}

pub(super) fn run(command: LakehouseCommand) -> ExitCode {
    super::run_async(execute(command))
}

async fn execute(command: LakehouseCommand) -> Result<(), String> {
    match command {
        LakehouseCommand::Snapshots(args) => {
            let (lake, tables) = open(&args).await?;
            for table in tables {
                println!("{table}:");
                println!(
                    "  {:<20} {:<24} {:<10} {:>10} {:>12}  positions",
                    "snapshot", "committed", "operation", "added", "total rows"
                );
                for snapshot in lake.snapshots(&table).await? {
                    print_snapshot(&snapshot);
                }
            }
            Ok(())
        }
        LakehouseCommand::Query { table, at, limit } => {
            let (lake, tables) = open(&table).await?;
            let name = one_table(tables)?;
            let (columns, rows) = lake.query(&name, at.at()?, limit).await?;
            println!("{}", columns.join("\t"));
            for row in &rows {
                println!("{}", row.join("\t"));
            }
            eprintln!("({} rows of {name})", rows.len());
            Ok(())
        }
        LakehouseCommand::Rollback { table, at, yes } => {
            let config = super::load(&table.config)?;
            if config.platform.transport_mode == TransportMode::Embedded {
                return Err(
                    "rollback is refused in embedded mode: the slot released the WAL after that snapshot, \
                            so the pipeline could not write those changes again"
                        .to_owned(),
                );
            }
            if super::answers_on_health_port(&config).await {
                return Err(format!(
                    "the pipeline answers on its health port {}: stop it before a rollback",
                    config.platform.health_port
                ));
            }
            let (lake, tables) = open(&table).await?;
            let name = one_table(tables)?;
            let at = at.at()?;
            if at == At::Current {
                return Err("say which snapshot: --snapshot-id or --as-of".to_owned());
            }
            if !yes
                && !confirm(&format!(
                    "Roll {name} back? Changes committed after the snapshot leave the table, and the pipeline writes them again from the positions it stores."
                ))?
            {
                return Err("not confirmed".to_owned());
            }
            let snapshot = lake.rollback(&name, at).await?;
            println!("{name} rolled back to snapshot {}:", snapshot.snapshot_id);
            print_snapshot(&snapshot);
            Ok(())
        }
    }
}

/// The sink's lake and the tables to work on (the one asked for, or all).
async fn open(args: &TableArgs) -> Result<(Lake, Vec<String>), String> {
    let config = super::load(&args.config)?;
    let (sink_id, iceberg) = iceberg_sink(&config, args.sink_id.as_deref())?;
    let lake = Lake::open(&config.pipeline.pipeline_id, &sink_id, &iceberg).await?;
    let tables = match &args.table {
        Some(table) => vec![table.clone()],
        None => lake.tables().await?,
    };
    if tables.is_empty() {
        return Err(format!("sink `{sink_id}` has written no table yet"));
    }
    Ok((lake, tables))
}

fn iceberg_sink(config: &Config, sink_id: Option<&str>) -> Result<(String, IcebergSinkConfig), String> {
    let sinks: Vec<(String, IcebergSinkConfig)> = config
        .pipeline
        .sinks
        .iter()
        .filter_map(|sink| match &sink.kind {
            SinkKind::Iceberg(iceberg) => Some((sink.sink_id.clone(), iceberg.clone())),
            _ => None,
        })
        .collect();
    let names = || sinks.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ");
    match sink_id {
        Some(wanted) => sinks
            .iter()
            .find(|(id, _)| id == wanted)
            .cloned()
            .ok_or_else(|| format!("the pipeline has no Iceberg sink `{wanted}` (it has: {})", names())),
        None => match sinks.len() {
            0 => Err("the pipeline has no Iceberg sink".to_owned()),
            1 => Ok(sinks[0].clone()),
            _ => Err(format!(
                "the pipeline has several Iceberg sinks: choose one with --sink-id ({})",
                names()
            )),
        },
    }
}

fn one_table(tables: Vec<String>) -> Result<String, String> {
    match <[String; 1]>::try_from(tables) {
        Ok([table]) => Ok(table),
        Err(tables) => {
            Err(format!("the sink wrote several tables: choose one with --table ({})", tables.join(", ")))
        }
    }
}

fn print_snapshot(snapshot: &SnapshotInfo) {
    let committed = chrono::DateTime::from_timestamp_millis(snapshot.timestamp_ms)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    println!(
        "{} {:<20} {:<24} {:<10} {:>10} {:>12}  {}",
        if snapshot.current { "*" } else { " " },
        snapshot.snapshot_id,
        committed,
        snapshot.operation,
        snapshot.added_records,
        snapshot.total_records,
        snapshot.positions.as_deref().unwrap_or("-"),
    );
}

fn confirm(question: &str) -> Result<bool, String> {
    print!("{question} [y/N] ");
    std::io::stdout().flush().map_err(|error| error.to_string())?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|error| error.to_string())?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
