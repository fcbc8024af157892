//! `cdc validate`: loads the config and prints a summary, or every error with its location.

use std::process::ExitCode;

use super::ConfigArgs;
use crate::config;

pub(super) fn run(args: &ConfigArgs) -> ExitCode {
    match config::load(&args.pipeline, args.platform_config.as_deref()) {
        Ok(config) => {
            println!("{} is valid", args.pipeline.display());
            println!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}
