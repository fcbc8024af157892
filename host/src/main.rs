//! The `cdc` binary: parses arguments and runs the command (see `cdc --help`).

fn main() -> std::process::ExitCode {
    cdc_host::cli::main()
}
