//! The `cdc` command line: one file per subcommand. Exit codes: 0 ok, 1 failure, 2 usage.

mod consume;
mod deploy;
mod dlq;
mod health;
mod lakehouse;
mod plugin;
mod progress;
mod run;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::ops::telemetry::LogFormat;

/// cdc: change-data-capture pipelines from Debezium to sinks, through sandboxed plugins.
#[derive(Debug, Parser)]
#[command(name = "cdc", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a pipeline: registers its connector, consumes its topics and delivers to its sinks
    /// until SIGTERM or SIGINT.
    Run(RunArgs),
    /// Checks a pipeline's config and prints a summary, or every error found.
    Validate(ConfigArgs),
    /// Writes, builds, tests and inspects plugins (WebAssembly components).
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Inspects the tables of a pipeline's Iceberg sink: snapshots, rows, rollback.
    #[command(subcommand)]
    Lakehouse(lakehouse::LakehouseCommand),
    /// Shows whether everything the pipeline depends on is up: broker, registry, Kafka Connect,
    /// the connector, the source's replication slot. Exits 1 when something is down.
    Health(ConfigArgs),
    /// Provisions a pipeline without running it: its topics and a running connector (Kafka
    /// mode), its publication (embedded mode). Creates what is missing, deletes nothing.
    Deploy(ConfigArgs),
    /// Removes a pipeline's connector and, when asked, its topics and the source's replication
    /// slot and publication.
    Undeploy(UndeployArgs),
    /// Prints a pipeline's change events as it decodes them, read outside its consumer group.
    Consume(consume::ConsumeArgs),
    /// Lists and shows the records a pipeline dead-lettered, with why.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
}

#[derive(Debug, clap::Args)]
struct UndeployArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also delete the pipeline's topics (source and DLQ topics) and the data in them.
    #[arg(long)]
    delete_topics: bool,
    /// Also drop the source's replication slot and publication (the server then releases
    /// the WAL it kept for them; a later run starts over with its snapshot mode).
    #[arg(long)]
    drop_slot: bool,
}

/// The config files of a pipeline.
#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The pipeline's config (`pipeline.yaml`).
    pipeline: PathBuf,
    /// The platform's config (`platform.yaml`); built-in defaults apply to what it leaves out.
    #[arg(long, value_name = "FILE")]
    platform_config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Log line format.
    #[arg(long, value_enum, default_value = "human", env = "CDC_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log level when neither CDC_LOG nor RUST_LOG is set.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// Parses the arguments (exiting with 2 on a usage error) and runs the command.
pub fn main() -> ExitCode {
    crate::ops::crash::install_hook();
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Plugin(command) => plugin::run(command),
        Command::Lakehouse(command) => lakehouse::run(command),
        Command::Health(args) => run_async(async move { health::health(&load(&args)?).await }),
        Command::Deploy(args) => run_async(async move { deploy::deploy(&load(&args)?).await }),
        Command::Undeploy(args) => run_async(async move {
            let removal = deploy::Removal { delete_topics: args.delete_topics, drop_slot: args.drop_slot };
            deploy::undeploy(&load(&args.config)?, removal).await
        }),
        Command::Consume(args) => {
            run_async(async move { consume::consume(&load(&args.config)?, &args).await })
        }
        Command::Dlq(command) => run_async(async move { dlq::dlq(&load(command.config())?, &command).await }),
    }
}

/// Runs an operator command on a small runtime: exit 0, or 1 with its error.
fn run_async(command: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the pipeline runs on this machine: something answers on its health port.
async fn answers_on_health_port(config: &crate::config::Config) -> bool {
    let connect =
        tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, config.platform.health_port));
    tokio::time::timeout(std::time::Duration::from_secs(1), connect)
        .await
        .is_ok_and(|connected| connected.is_ok())
}

/// How long one request to the schema registry may take.
const REGISTRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The decoder of the pipeline's records: Avro with a registry client when the topics hold
/// Avro, else JSON (the embedded source's records, and its DLQ's, are JSON whatever the
/// converter says).
fn decoder(config: &crate::config::Config) -> Result<crate::decode::Decoder, String> {
    use crate::config::{TransportMode, ValueConverter};
    use crate::decode::{Decoder, SchemaRegistry};
    let kafka = &config.platform.kafka;
    if config.platform.transport_mode == TransportMode::Embedded
        || kafka.value_converter == ValueConverter::Json
    {
        return Ok(Decoder::Json);
    }
    let registry =
        SchemaRegistry::for_endpoint(&kafka.schema_registry, REGISTRY_TIMEOUT).map_err(|error| {
            format!("cannot create the schema registry client: {}", crate::error::chain(&error))
        })?;
    Ok(Decoder::Avro(std::sync::Arc::new(registry)))
}

/// A pipeline's config, or every error in it.
fn load(args: &ConfigArgs) -> Result<crate::config::Config, String> {
    crate::config::load(&args.pipeline, args.platform_config.as_deref()).map_err(|errors| errors.to_string())
}
