//! `childsafe bank`: create, import, export, list, inspect and change the hash
//! banks under `--banks DIR`.
//!
//! All the work is `childsafe_match::Banks`; this file parses flags, reads
//! the list file (or stdin), and prints results and stats.

use std::{
    io::{Read, Write},
    path::PathBuf,
};

use anyhow::Context;
use childsafe_core::{Category, SignalKind};
use childsafe_match::{
    BankKind, BankSettings, Banks, ImportOptions, IndexLayout, ListFormat, Signal, entry_from_hash,
    parse_list,
};
use serde_json::json;

use crate::{Global, exit};

/// Manage hash banks: named lists of PDQ, MD5, SHA-1 and SHA-256 hashes.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: BankCommand,
}

#[derive(clap::Subcommand)]
enum BankCommand {
    /// Create an empty bank.
    Create {
        /// Bank name: 1 to 64 of a-z, A-Z, 0-9, '-', '_', '.'.
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
        /// A suppression bank (known benign look-alikes): its matches cancel
        /// other banks' matches of the same input. Default: normal.
        #[arg(long)]
        suppression: bool,
        /// Create the bank disabled (it matches nothing until enabled).
        #[arg(long)]
        disabled: bool,
    },
    /// Import a list file into a bank, all or nothing.
    Import {
        /// Bank name.
        name: String,
        /// The list file, or `-` for standard input.
        file: PathBuf,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Write a bank's entries to standard output (or a file).
    Export {
        /// Bank name.
        name: String,
        /// Output format: csv (every field), hex or hma. Default: csv.
        #[arg(long, default_value = "csv", value_parser = parse_export_format)]
        format: ListFormat,
        /// Write to this file (atomically) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// List the banks.
    List {
        /// One JSON object per bank.
        #[arg(long)]
        json: bool,
    },
    /// Show a bank's counts, index and flood statistics.
    Stats {
        /// Bank name.
        name: String,
        /// As a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Add one hash to a bank.
    Add {
        /// Bank name.
        name: String,
        /// The hash in hex.
        hash: String,
        /// Signal type: pdq, md5, sha1 or sha256. Default: by length (64 hex
        /// digits is PDQ).
        #[arg(long, value_parser = parse_signal_kind)]
        signal: Option<SignalKind>,
        /// Entry id. Default: the hash.
        #[arg(long)]
        id: Option<String>,
        /// Category. Default: csam_known.
        #[arg(long, default_value = "csam_known", value_parser = parse_category)]
        category: Category,
        /// Source list name. Default: manual.
        #[arg(long, default_value = "manual")]
        source: String,
    },
    /// Remove entries by id or by hash.
    Remove {
        /// Bank name.
        name: String,
        /// Remove every entry with this id.
        #[arg(long, conflicts_with = "hash", required_unless_present = "hash")]
        id: Option<String>,
        /// Remove every entry with exactly this hash.
        #[arg(long)]
        hash: Option<String>,
        /// Signal type of --hash. Default: by length.
        #[arg(long, value_parser = parse_signal_kind)]
        signal: Option<SignalKind>,
    },
    /// Enable a bank, or one entry with --entry.
    Enable {
        /// Bank name.
        name: String,
        /// Enable the entries with this id instead of the bank.
        #[arg(long)]
        entry: Option<String>,
    },
    /// Disable a bank, or one entry with --entry.
    Disable {
        /// Bank name.
        name: String,
        /// Disable the entries with this id instead of the bank.
        #[arg(long)]
        entry: Option<String>,
    },
    /// Change a bank's settings.
    Set {
        /// Bank name.
        name: String,
        /// PDQ distance threshold in bits (0-256).
        #[arg(long)]
        threshold: Option<u32>,
        /// Lowest PDQ quality that matches (0-100).
        #[arg(long)]
        quality_floor: Option<u8>,
        /// normal or suppression.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<BankKind>,
        /// PDQ index layout: compact (at most 1.5x the raw hashes) or fast.
        #[arg(long, value_parser = parse_layout)]
        index: Option<IndexLayout>,
        /// Distinct inputs after which an entry is flagged as a likely
        /// false-positive source.
        #[arg(long)]
        flood_threshold: Option<u32>,
    },
    /// Fold the bank's pending changes into a new index segment.
    Compact {
        /// Bank name.
        name: String,
    },
    /// Re-read the bank's segment and check its checksum.
    Verify {
        /// Bank name.
        name: String,
    },
    /// Delete a bank and its files.
    Delete {
        /// Bank name.
        name: String,
    },
}

/// Settings for `bank create`.
#[derive(clap::Args)]
struct SettingsArgs {
    /// PDQ distance threshold in bits (0-256). Default: 31.
    #[arg(long, default_value_t = 31)]
    threshold: u32,
    /// Lowest PDQ quality that matches (0-100). Default: 50.
    #[arg(long, default_value_t = 50)]
    quality_floor: u8,
    /// PDQ index layout: compact (at most 1.5x the raw 32 bytes per hash;
    /// threshold-31 queries scan, batches are joined) or fast (a full
    /// multi-index, about 2.4x). Default: compact.
    #[arg(long, default_value = "compact", value_parser = parse_layout)]
    index: IndexLayout,
    /// Distinct inputs after which an entry is flagged as a likely
    /// false-positive source. Default: 20.
    #[arg(long, default_value_t = 20)]
    flood_threshold: u32,
}

/// How to read a list file.
#[derive(clap::Args)]
struct ListArgs {
    /// auto, hex (one hash per line), csv (with a header) or hma
    /// (python-threatexchange collaboration CSV). Default: auto.
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    format: ListFormat,
    /// Category of rows that carry none. Default: csam_known.
    #[arg(long, default_value = "csam_known", value_parser = parse_category)]
    category: Category,
    /// Source list name of rows that carry none. Default: the file name.
    #[arg(long)]
    source: Option<String>,
    /// Signal type of hex lines without a type (needed for SHA-256 lists,
    /// which have PDQ's length). Default: by length.
    #[arg(long, value_parser = parse_signal_kind)]
    signal: Option<SignalKind>,
}

fn parse_format(text: &str) -> Result<ListFormat, String> {
    text.parse()
}

fn parse_export_format(text: &str) -> Result<ListFormat, String> {
    match text.parse()? {
        ListFormat::Auto => Err("expected csv, hex or hma, got \"auto\"".into()),
        other => Ok(other),
    }
}

fn parse_category(text: &str) -> Result<Category, String> {
    text.parse()
        .map_err(|err: childsafe_core::Error| err.to_string())
}

fn parse_signal_kind(text: &str) -> Result<SignalKind, String> {
    match text.parse::<SignalKind>() {
        Ok(kind @ (SignalKind::Pdq | SignalKind::Md5 | SignalKind::Sha1 | SignalKind::Sha256)) => {
            Ok(kind)
        }
        _ => Err(format!("expected pdq, md5, sha1 or sha256, got {text:?}")),
    }
}

fn parse_kind(text: &str) -> Result<BankKind, String> {
    match text {
        "normal" => Ok(BankKind::Normal),
        "suppression" => Ok(BankKind::Suppression),
        other => Err(format!("expected normal or suppression, got {other:?}")),
    }
}

fn parse_layout(text: &str) -> Result<IndexLayout, String> {
    match text {
        "compact" => Ok(IndexLayout::Compact),
        "fast" => Ok(IndexLayout::Fast),
        other => Err(format!("expected compact or fast, got {other:?}")),
    }
}

fn parse_signal(kind: Option<SignalKind>, hex: &str) -> anyhow::Result<Signal> {
    let signal = match kind {
        Some(kind) => Signal::parse(kind, hex),
        None => Signal::parse_guess(hex),
    };
    signal.map_err(|reason| anyhow::anyhow!("hash: {reason}"))
}

pub(crate) fn run(global: &Global, args: Args) -> anyhow::Result<u8> {
    let dir = &global.banks;
    let mut banks =
        Banks::open(dir).with_context(|| format!("opening banks in {}", dir.display()))?;
    match args.command {
        BankCommand::Create {
            name,
            settings,
            suppression,
            disabled,
        } => {
            let settings = BankSettings {
                threshold: settings.threshold,
                quality_floor: settings.quality_floor,
                enabled: !disabled,
                kind: if suppression {
                    BankKind::Suppression
                } else {
                    BankKind::Normal
                },
                index: settings.index,
                flood_threshold: settings.flood_threshold,
            };
            banks.create(&name, settings)?;
            eprintln!("bank: created {name}");
        }
        BankCommand::Import { name, file, list } => {
            let (shown, bytes) = read_input(&file)?;
            let source = list.source.unwrap_or_else(|| {
                file.file_stem().map_or_else(
                    || "stdin".to_owned(),
                    |it| it.to_string_lossy().into_owned(),
                )
            });
            let options = ImportOptions {
                format: list.format,
                category: list.category,
                signal: list.signal,
                ..ImportOptions::new(source)
            };
            // Parse errors already say `file:line: field: ...`.
            let parsed = parse_list(&shown, &bytes, &options)?;
            let format = parsed.format;
            let report = banks.import(&name, parsed)?;
            eprintln!(
                "bank: {name}: imported {shown} ({}): {} added, {} already present, {} skipped (signal type a bank cannot hold){}",
                format.as_str(),
                report.added,
                report.duplicates,
                report.skipped_unsupported,
                if report.compacted { ", compacted" } else { "" }
            );
        }
        BankCommand::Export {
            name,
            format,
            output,
        } => match output {
            Some(path) => {
                let mut buf = Vec::new();
                banks.export(&name, format, &mut buf)?;
                write_file_atomic(&path, &buf)?;
            }
            None => {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                banks.export(&name, format, &mut out)?;
                out.flush()?;
            }
        },
        BankCommand::List { json } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for bank in banks.banks() {
                let stats = banks.stats(bank.name())?;
                let settings = &stats.settings;
                if json {
                    writeln!(out, "{}", stats_json(&stats, false))?;
                } else {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{} entries\tthreshold {}\tquality floor {}\tindex {}",
                        stats.name,
                        settings.kind.as_str(),
                        if settings.enabled {
                            "enabled"
                        } else {
                            "disabled"
                        },
                        stats.entries,
                        settings.threshold,
                        settings.quality_floor,
                        settings.index.as_str()
                    )?;
                }
            }
        }
        BankCommand::Stats { name, json } => {
            let stats = banks.stats(&name)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if json {
                writeln!(out, "{}", stats_json(&stats, true))?;
            } else {
                print_stats(&mut out, &stats)?;
            }
        }
        BankCommand::Add {
            name,
            hash,
            signal,
            id,
            category,
            source,
        } => {
            let signal = parse_signal(signal, &hash)?;
            let entry = entry_from_hash(signal, id.as_deref(), &source, category);
            let report = banks.add(&name, vec![entry])?;
            if report.added == 0 {
                eprintln!("bank: {name}: already present");
            } else {
                eprintln!("bank: {name}: added {} {signal}", signal.kind());
            }
        }
        BankCommand::Remove {
            name,
            id,
            hash,
            signal,
        } => {
            let removed = match (id, hash) {
                (Some(id), _) => banks.remove_id(&name, &id)?,
                (None, Some(hash)) => banks.remove_signal(&name, &parse_signal(signal, &hash)?)?,
                (None, None) => anyhow::bail!("give --id or --hash"),
            };
            eprintln!("bank: {name}: removed {removed} entries");
        }
        BankCommand::Enable { name, entry } => set_enabled(&mut banks, &name, entry, true)?,
        BankCommand::Disable { name, entry } => set_enabled(&mut banks, &name, entry, false)?,
        BankCommand::Set {
            name,
            threshold,
            quality_floor,
            kind,
            index,
            flood_threshold,
        } => {
            banks.configure(&name, |settings| {
                if let Some(it) = threshold {
                    settings.threshold = it;
                }
                if let Some(it) = quality_floor {
                    settings.quality_floor = it;
                }
                if let Some(it) = kind {
                    settings.kind = it;
                }
                if let Some(it) = index {
                    settings.index = it;
                }
                if let Some(it) = flood_threshold {
                    settings.flood_threshold = it;
                }
            })?;
            eprintln!("bank: {name}: settings changed");
        }
        BankCommand::Compact { name } => {
            banks.compact(&name)?;
            eprintln!("bank: {name}: compacted");
        }
        BankCommand::Verify { name } => {
            banks.verify(&name)?;
            eprintln!("bank: {name}: ok");
        }
        BankCommand::Delete { name } => {
            banks.delete(&name)?;
            eprintln!("bank: deleted {name}");
        }
    }
    Ok(exit::OK)
}

fn set_enabled(
    banks: &mut Banks,
    name: &str,
    entry: Option<String>,
    enabled: bool,
) -> anyhow::Result<()> {
    let verb = if enabled { "enabled" } else { "disabled" };
    match entry {
        Some(id) => {
            let touched = banks.set_entry_enabled(name, &id, enabled)?;
            eprintln!("bank: {name}: {verb} {touched} entries");
        }
        None => {
            banks.configure(name, |settings| settings.enabled = enabled)?;
            eprintln!("bank: {name}: {verb}");
        }
    }
    Ok(())
}

/// Reads a list file or stdin (`-`); returns the name to show and the bytes.
fn read_input(file: &std::path::Path) -> anyhow::Result<(String, Vec<u8>)> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        return Ok(("-".into(), bytes));
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Ok((file.display().to_string(), bytes))
}

/// Writes a file through a temp file, fsync and rename, so that an export
/// never leaves a half-written file looking complete.
fn write_file_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|it| !it.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|it| it.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("writing {}", path.display()))
}

fn stats_json(stats: &childsafe_match::BankStats, full: bool) -> serde_json::Value {
    let settings = &stats.settings;
    let mut value = json!({
        "name": stats.name,
        "kind": settings.kind.as_str(),
        "enabled": settings.enabled,
        "threshold": settings.threshold,
        "quality_floor": settings.quality_floor,
        "index": settings.index.as_str(),
        "flood_threshold": settings.flood_threshold,
        "entries": stats.entries,
        "disabled_entries": stats.disabled,
    });
    if full {
        value["generation"] = json!(stats.generation);
        value["pending_changes"] = json!(stats.delta_ops);
        value["by_signal"] = stats
            .by_signal
            .iter()
            .map(|(kind, count)| (kind.as_str().to_owned(), json!(count)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        value["pdq_index"] = json!({
            "rows": stats.pdq_rows,
            "bytes_per_hash": (stats.pdq_bytes_per_hash * 10.0).round() / 10.0,
            "indexed_threshold": stats.pdq_indexed_threshold,
        });
        value["flood"] = stats
            .flood
            .iter()
            .map(|it| {
                json!({
                    "signal": it.signal.kind(),
                    "entry_id": it.entry_id,
                    "distinct_inputs": it.distinct_inputs,
                    "likely_false_positive": it.flagged,
                })
            })
            .collect::<Vec<_>>()
            .into();
    }
    value
}

fn print_stats(out: &mut dyn Write, stats: &childsafe_match::BankStats) -> std::io::Result<()> {
    let settings = &stats.settings;
    writeln!(out, "bank:              {}", stats.name)?;
    writeln!(
        out,
        "kind:              {} ({})",
        settings.kind.as_str(),
        if settings.enabled {
            "enabled"
        } else {
            "disabled"
        }
    )?;
    writeln!(out, "threshold:         {} bits", settings.threshold)?;
    writeln!(out, "quality floor:     {}", settings.quality_floor)?;
    writeln!(
        out,
        "entries:           {} ({} disabled)",
        stats.entries, stats.disabled
    )?;
    for (kind, count) in &stats.by_signal {
        writeln!(out, "  {:<16} {count}", kind.as_str())?;
    }
    writeln!(
        out,
        "pending changes:   {} (generation {})",
        stats.delta_ops, stats.generation
    )?;
    let indexed = match stats.pdq_indexed_threshold {
        Some(threshold) => format!("multi-index up to {threshold} bits"),
        None => "scan".to_owned(),
    };
    writeln!(
        out,
        "pdq index:         {} ({} rows, {:.1} bytes per hash, {indexed})",
        settings.index.as_str(),
        stats.pdq_rows,
        stats.pdq_bytes_per_hash
    )?;
    writeln!(
        out,
        "flood threshold:   {} distinct inputs",
        settings.flood_threshold
    )?;
    if stats.flood.is_empty() {
        writeln!(out, "flood:             no matches recorded")?;
    }
    for it in &stats.flood {
        writeln!(
            out,
            "  {} {} {:>8} distinct inputs{}",
            it.signal.kind(),
            it.entry_id,
            it.distinct_inputs,
            if it.flagged {
                "  likely false positive"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}
