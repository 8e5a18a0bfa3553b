//! `childsafe classify`: judge text (arguments, or lines on stdin: plain
//! text, or JSON with `text` or `messages`) and print one decision per input.
//! Output carries categories, scores, offsets and decisions, never the input
//! text (DESIGN invariant 1).

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use childsafe_core::{Category, Decision, Finding, Surface};
use childsafe_engine::{
    Engine,
    config::{EngineConfig, TermListConfig},
    stream::{LineOutcome, classify_stream},
};
use childsafe_text::input::{InputContent, InputItem};
use serde_json::json;

use crate::{Global, exit};

/// Classify text for child sexual exploitation: solicitation, sexualisation
/// of minors, grooming, sextortion, and help-seeking. Exit 1 if any input is
/// withheld, 2 if any input could not be read.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// One JSON object per input: categories (with scores and byte offsets)
    /// and the decision.
    #[arg(long)]
    json: bool,
    /// A policy file layered over the built-in defaults.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// An engine config file (extra lexicons, term lists, remote classifiers).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An operator term list, one term per line, as [CATEGORY=]FILE
    /// (default category csam_solicitation). Repeatable.
    #[arg(long, value_name = "[CATEGORY=]FILE")]
    terms: Vec<String>,
    /// The surface whose policy applies to text inputs (conversations use
    /// `conversation` unless this is set to something else than `input`).
    #[arg(long, default_value = "input", value_parser = parse_surface)]
    surface: Surface,
    /// Longest accepted input line in bytes; longer lines are reported and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_line_bytes: usize,
    /// Text to classify (all arguments form one text). Without it, lines are
    /// read from stdin.
    text: Vec<String>,
}

fn parse_surface(s: &str) -> Result<Surface, String> {
    s.parse()
        .map_err(|err: childsafe_core::Error| err.to_string())
}

/// Builds the engine from `--policy`, `--config` and `--terms`.
pub(crate) fn build_engine(
    policy: Option<&PathBuf>,
    config: Option<&PathBuf>,
    terms: &[String],
) -> anyhow::Result<Engine> {
    let policy = match policy {
        Some(path) => crate::cmd::policy::load(path)?,
        None => childsafe_core::Policy::default(),
    };
    let mut engine_config = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            let mut parsed = EngineConfig::from_toml(&path.display().to_string(), &text)?;
            // Paths in a config file are relative to the file.
            let base = path.parent().map(PathBuf::from).unwrap_or_default();
            let resolve = |p: &str| base.join(p).display().to_string();
            for lexicon in &mut parsed.text.lexicons {
                *lexicon = resolve(lexicon);
            }
            for list in &mut parsed.text.term_lists {
                list.path = resolve(&list.path);
            }
            parsed
        }
        None => EngineConfig::default(),
    };
    for spec in terms {
        let (category, path) = match spec.split_once('=') {
            Some((category, path)) => {
                let category: Category = category.parse().with_context(|| {
                    format!("--terms {spec}: expected CATEGORY=FILE with a category name")
                })?;
                (Some(category), path)
            }
            None => (None, spec.as_str()),
        };
        engine_config.text.term_lists.push(TermListConfig {
            path: path.to_owned(),
            name: None,
            category,
            score: None,
        });
    }
    let read = |path: &std::path::Path| std::fs::read_to_string(path);
    Ok(engine_config.build(policy, read, |var| std::env::var(var).ok())?)
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    let engine = build_engine(args.policy.as_ref(), args.config.as_ref(), &args.terms)?;
    let runtime = if engine.classifiers().is_empty() {
        None
    } else {
        Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        )
    };
    let surface = args.surface;
    let judge = |item: &InputItem| -> Decision {
        let surface = match (&item.content, surface) {
            (InputContent::Conversation(_), Surface::Input) => Surface::Conversation,
            (_, surface) => surface,
        };
        match &runtime {
            Some(runtime) => runtime.block_on(engine.check_item_remote(surface, item)),
            None => engine.check_item(surface, item),
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let json = args.json;
    let mut sink =
        |outcome: LineOutcome| -> std::io::Result<()> { print_outcome(&mut out, &outcome, json) };
    let summary = if args.text.is_empty() {
        let stdin = std::io::stdin();
        let summary = classify_stream(stdin.lock(), args.max_line_bytes, judge, &mut sink)?;
        if summary.judged + summary.errors == 0 {
            anyhow::bail!(
                "stdin: expected TEXT arguments or input lines, got {}",
                if summary.blank > 0 {
                    "only blank lines"
                } else {
                    "nothing"
                }
            );
        }
        summary
    } else {
        let text = args.text.join(" ");
        classify_stream(text.as_bytes(), usize::MAX, judge, &mut sink)?
    };
    out.flush()?;
    Ok(if summary.errors > 0 {
        exit::ERROR
    } else if summary.withheld > 0 {
        exit::FOUND
    } else {
        exit::OK
    })
}

/// The best finding per harm category, strongest first.
fn categories(findings: &[Finding]) -> Vec<&Finding> {
    let mut best: Vec<&Finding> = Vec::new();
    for finding in findings.iter().filter(|f| !f.category.is_context()) {
        match best.iter_mut().find(|it| it.category == finding.category) {
            Some(slot) if slot.score < finding.score => *slot = finding,
            Some(_) => {}
            None => best.push(finding),
        }
    }
    best.sort_by(|a, b| b.score.total_cmp(&a.score));
    best
}

fn print_outcome(out: &mut impl Write, outcome: &LineOutcome, json: bool) -> std::io::Result<()> {
    if outcome.lossy {
        eprintln!(
            "stdin:{}: invalid utf-8, decoded lossily (invalid bytes replaced)",
            outcome.line
        );
    }
    match &outcome.result {
        Err(reason) => {
            eprintln!("stdin:{}: {reason}", outcome.line);
            if json {
                let mut line = json!({"line": outcome.line, "error": reason});
                if outcome.lossy {
                    line["lossy_utf8"] = json!(true);
                }
                writeln!(out, "{line}")?;
            }
        }
        Ok(decision) => {
            let best = categories(&decision.findings);
            if json {
                let cats: Vec<serde_json::Value> = best
                    .iter()
                    .map(|f| json!({"category": f.category, "score": f.score, "spans": f.spans}))
                    .collect();
                let mut line =
                    json!({"line": outcome.line, "categories": cats, "decision": decision});
                if let Some(id) = &outcome.id {
                    line["id"] = json!(id);
                }
                if outcome.lossy {
                    line["lossy_utf8"] = json!(true);
                }
                writeln!(out, "{line}")?;
            } else {
                let cats: Vec<String> = best
                    .iter()
                    .map(|f| format!("{}={:.2}", f.category, f.score))
                    .collect();
                let label = outcome
                    .id
                    .clone()
                    .unwrap_or_else(|| outcome.line.to_string());
                writeln!(
                    out,
                    "{label}\t{}\t{}",
                    decision.action,
                    if cats.is_empty() {
                        "-".to_owned()
                    } else {
                        cats.join(" ")
                    }
                )?;
            }
        }
    }
    Ok(())
}
