//! The `childsafe` binary: flags plus glue.
//!
//! Each subcommand lives in `cmd/<name>.rs` with its clap `Args` and one `run`
//! function that builds library config, calls one library entry point and maps
//! the result to an exit code. Loops over content belong in the libraries,
//! not here (STYLE.md, "Thin binary").

// The binary's job is to print; the lint guards the libraries.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cmd;
mod exit;
mod progress;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Child-safety infrastructure for generative AI: hash and match images,
/// detect exploitation in text, scan datasets, guard models, report to NCMEC.
#[derive(Parser)]
#[command(name = "childsafe", version, about, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand understands.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Global {
    /// Directory holding the hash banks. Default: ./banks.
    #[arg(
        long,
        global = true,
        env = "CHILDSAFE_BANKS",
        value_name = "DIR",
        default_value = "banks"
    )]
    pub(crate) banks: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    Audit(cmd::audit::Args),
    Bank(cmd::bank::Args),
    Case(cmd::case::Args),
    Classify(cmd::classify::Args),
    Dev(cmd::dev::Args),
    Eval(cmd::eval::Args),
    Hash(cmd::hash::Args),
    Match(cmd::match_::Args),
    Policy(cmd::policy::Args),
    Report(cmd::report::Args),
    Scan(cmd::scan::Args),
    Serve(cmd::serve::Args),
    Vault(cmd::vault::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Audit(args) => cmd::audit::run(&cli.global, args),
        Command::Bank(args) => cmd::bank::run(&cli.global, args),
        Command::Case(args) => cmd::case::run(&cli.global, args),
        Command::Classify(args) => cmd::classify::run(&cli.global, args),
        Command::Dev(args) => cmd::dev::run(&cli.global, args),
        Command::Eval(args) => cmd::eval::run(&cli.global, args),
        Command::Hash(args) => cmd::hash::run(&cli.global, args),
        Command::Match(args) => cmd::match_::run(&cli.global, args),
        Command::Policy(args) => cmd::policy::run(&cli.global, args),
        Command::Report(args) => cmd::report::run(&cli.global, args),
        Command::Scan(args) => cmd::scan::run(&cli.global, args),
        Command::Serve(args) => cmd::serve::run(&cli.global, args),
        Command::Vault(args) => cmd::vault::run(&cli.global, args),
    };
    exit::report(res)
}
