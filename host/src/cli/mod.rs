//! The `cdc` command line: one file per subcommand. Exit codes: 0 ok, 1 failure, 2 usage.

mod lakehouse;
mod plugin;
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
    }
}
