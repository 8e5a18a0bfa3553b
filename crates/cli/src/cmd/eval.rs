//! `childsafe eval text`: measure the detectors on a labelled JSON-lines set.

use std::path::PathBuf;

use anyhow::Context;
use childsafe_engine::eval::{evaluate, parse_items};

use crate::{Global, exit};

/// Evaluate detection on a labelled set.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: EvalWhat,
}

#[derive(clap::Subcommand)]
enum EvalWhat {
    /// Text detection: precision, recall and F1 per category, false-positive
    /// rate on benign items, confusion matrix, per-language figures.
    Text {
        /// The labelled set: JSON lines with `text` or `messages`, `labels`
        /// (category names or "benign"), optional `id`, `lang`, `tags`.
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// A policy file layered over the built-in defaults.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// An engine config file (extra lexicons, term lists).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Exit 1 unless the goals hold (solicitation recall >= 0.95, benign
        /// false-positive rate <= 1%, no help-seeking read as solicitation).
        #[arg(long)]
        check_goals: bool,
    },
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    let EvalWhat::Text {
        data,
        json,
        policy,
        config,
        check_goals,
    } = args.what;
    let engine = crate::cmd::classify::build_engine(policy.as_ref(), config.as_ref(), &[])?;
    let text =
        std::fs::read_to_string(&data).with_context(|| format!("reading {}", data.display()))?;
    let items = parse_items(&text).map_err(|err| anyhow::anyhow!("{}:{err}", data.display()))?;
    let report = evaluate(&engine, &items);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(if check_goals && !report.goals_met {
        exit::FOUND
    } else {
        exit::OK
    })
}
