//! `childsafe policy show|check`: print the effective policy, or validate a file.

use std::path::PathBuf;

use anyhow::Context;
use childsafe_core::Policy;

use crate::{Global, exit};

/// Show or check the decision policy (surfaces, category rules, fail modes).
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: PolicyAction,
}

#[derive(clap::Subcommand)]
enum PolicyAction {
    /// Print the effective policy as TOML: the built-in defaults, with FILE layered on top.
    Show {
        /// A policy file to layer over the defaults.
        file: Option<PathBuf>,
    },
    /// Validate a policy file; exit 2 with the offending key if it is invalid.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    match args.action {
        PolicyAction::Show { file } => {
            let policy = match file {
                Some(path) => load(&path)?,
                None => Policy::default(),
            };
            print!("{}", policy.to_toml()?);
        }
        PolicyAction::Check { file } => {
            load(&file)?;
            println!("{}: ok", file.display());
        }
    }
    Ok(exit::OK)
}

/// Reads and parses a policy file, naming the file in any error.
pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy {}", path.display()))?;
    Policy::from_toml(&text).with_context(|| format!("{}", path.display()))
}
