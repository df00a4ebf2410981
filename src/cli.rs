//! The command line: parsing and dispatch. Bad input ends with a message saying what to do and
//! exit status 2. The commands are `run.rs`, `load/` and `commands/`; what they are given is
//! `args.rs`.

use crate::args::{Cli, Command, UsageError};
use crate::catalogue::Catalogue;
use crate::commands;
use clap::Parser;
use std::process::ExitCode;

/// The command line's entry point: the catalogue crate's cases, run by this harness.
pub fn main(catalogue: Catalogue) -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List(args) => commands::list::list(&args, &catalogue),
        Command::Run(args) => crate::run::run(*args, &catalogue),
        Command::Load(args) => crate::load::load(*args),
        Command::Report(args) => commands::report::report(&args),
        Command::Diff(args) => commands::diff::diff(&args),
        Command::Cleanup(args) => commands::cleanup::cleanup(&args),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
