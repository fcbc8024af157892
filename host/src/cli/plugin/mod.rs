//! `cdc plugin`: the author's loop (docs/architecture.md, plugins): `new` renders a project from the SDK and
//! the template this binary carries, `build` compiles it to a component, `test` runs a component in the real
//! host against recorded change events, `inspect` shows what a component says about itself. One file per
//! subcommand.

mod build;
mod inspect;
mod new;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

/// The guest SDK and the WIT package, embedded by `host/build.rs`.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_sdk.rs"));
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum PluginCommand {
    /// Writes a new plugin project: Cargo.toml, src/lib.rs, recorded events, a native test, a
    /// README, and a copy of the SDK in sdk/ (it builds without network or this repository).
    New(NewArgs),
    /// Builds the plugin project in the current directory (or --dir) into a component:
    /// `cargo build --target wasm32-wasip2 --release`; prints the .wasm's path and size.
    Build(BuildArgs),
    /// Runs a component in the real host runtime against recorded change events (one wire-form
    /// event per line) and prints its output; with --expect, compares it and shows the mismatches.
    Test(TestArgs),
    /// Shows what a component is: its world, name, version, description, config parameters,
    /// capabilities, imports, size and sha256.
    Inspect(InspectArgs),
}

/// The kinds of plugin, one per `cdc:plugin` world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Kind {
    /// A transform: one outcome per change event (keep, drop, many, error).
    Transform,
    /// A sink: open, write batches, flush with the checkpoint, close.
    Sink,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Transform => "transform",
            Kind::Sink => "sink",
        }
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct NewArgs {
    /// The plugin's package name: kebab-case ASCII (`mask-pii`); the crate and the .wasm are
    /// named with `_` (`mask_pii`).
    name: String,
    /// Which world the plugin implements.
    #[arg(long, value_enum)]
    kind: Kind,
    /// The directory to create the project in (as `DIR/NAME`).
    #[arg(long, value_name = "PATH", default_value = ".")]
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(super) struct BuildArgs {
    /// The plugin project (the directory of its Cargo.toml).
    #[arg(long, value_name = "PATH", default_value = ".")]
    dir: PathBuf,
    /// Builds with the dev profile instead of --release (bigger and slower, quicker to build).
    #[arg(long)]
    debug: bool,
    /// Passes --offline to cargo: only crates already in the local cache are used
    /// (CARGO_NET_OFFLINE=true does the same).
    #[arg(long)]
    offline: bool,
    /// Passes --locked to cargo: fails instead of changing Cargo.lock.
    #[arg(long)]
    locked: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct TestArgs {
    /// The component (.wasm).
    plugin: PathBuf,
    /// Recorded change events: one event in the wire form per line (blank lines are skipped).
    #[arg(long, value_name = "FILE.jsonl")]
    events: PathBuf,
    /// The expected output, compared as JSON values line by line (order matters): for a
    /// transform, the output events in the wire form; for a sink, its refused records as
    /// {"index", "id", "class", "message"}.
    #[arg(long, value_name = "FILE.jsonl")]
    expect: Option<PathBuf>,
    /// The plugin's config, a JSON object (as `plugin.config` in pipeline.yaml).
    #[arg(long, value_name = "JSON", default_value = "{}")]
    config: String,
    /// The plugin's world; by default the one the component exports.
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// A host directory granted to the plugin (read-write), as `plugin.directory` does.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// Where the plugin sees --dir.
    #[arg(long, value_name = "PATH", default_value = crate::config::defaults::PLUGIN_DIRECTORY_MOUNT, requires = "dir")]
    mount: String,
}

#[derive(Debug, clap::Args)]
pub(super) struct InspectArgs {
    /// The component (.wasm).
    plugin: PathBuf,
    /// Prints one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Why a subcommand did not succeed.
#[derive(Debug)]
enum Failure {
    /// The arguments are wrong (exit 2).
    Usage(String),
    /// The command failed (exit 1).
    Failed(String),
    /// The command failed and has said why already (exit 1).
    Reported,
}

type Outcome = Result<(), Failure>;

/// Runs a `cdc plugin` subcommand.
pub(super) fn run(command: PluginCommand) -> ExitCode {
    let outcome = match command {
        PluginCommand::New(args) => new::run(&args),
        PluginCommand::Build(args) => build::run(&args),
        PluginCommand::Test(args) => test::run(&args),
        PluginCommand::Inspect(args) => inspect::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
    }
}

/// A size in bytes, with KiB or MiB for a reader.
fn human_size(bytes: u64) -> String {
    let value = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{bytes} bytes ({:.1} KiB)", value / 1024.0),
        _ => format!("{bytes} bytes ({:.1} MiB)", value / 1_048_576.0),
    }
}

/// The lowercase hex sha256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}
