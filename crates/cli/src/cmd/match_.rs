//! `childsafe match`: hash images (or read PDQ hashes) and look them up in
//! every enabled bank under `--banks DIR`.
//!
//! Hashing and walking are `childsafe_hash::walk`, matching is
//! `childsafe_match::Banks::lookup_batch` (inputs are matched in batches, which
//! the index answers several times faster than one by one); this file only
//! glues them, formats one result per input and counts.

use std::{
    io::{BufWriter, Read, Write},
    ops::ControlFlow,
    path::PathBuf,
};

use anyhow::Context;
use childsafe_core::PdqHash;
use childsafe_hash::{DecodeLimits, HashConfig, ImageHashes, walk};
use childsafe_match::{BankMatch, Banks, ImageSignals, MatchOutcome};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use crate::{Global, exit, progress::Progress};

/// Match images, or PDQ hashes you already hold, against the banks.
///
/// Prints one result per input. Exit status: 0 if nothing matched, 1 if
/// anything matched, 2 if any input could not be read or parsed (errors are
/// reported one line each, naming the file, and the run goes on).
#[derive(clap::Args)]
pub(crate) struct Args {
    /// One JSON object per input: path (or hash), quality, matches (bank,
    /// signal, entry_id, category, distance), and suppressed or error when
    /// there are any.
    #[arg(long)]
    json: bool,
    /// Read PDQ hashes from FILE (`-` for standard input) instead of images:
    /// one hex hash per line, optionally followed by `,quality` (as the PDQ
    /// reference hasher prints). Without a quality the bank's quality floor
    /// does not apply.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    pdq_hashes: Option<PathBuf>,
    /// Inputs looked up together. Default: 4096.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    batch: usize,
    /// Decode every JPEG at full resolution (see `childsafe hash --help`).
    #[arg(long)]
    full_decode: bool,
    /// Rotate or flip by the EXIF orientation before hashing. Default: off.
    #[arg(long)]
    exif_orientation: bool,
    /// Largest file read, in bytes. Default: 64 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = DecodeLimits::default().max_bytes)]
    max_bytes: u64,
    /// Most pixels (width x height) decoded. Default: 64 million.
    #[arg(long, value_name = "PIXELS", default_value_t = DecodeLimits::default().max_pixels)]
    max_pixels: u64,
    /// Image files or directories (recursive, sorted by name).
    #[arg(required_unless_present = "pdq_hashes", value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Counts for the summary line and the exit status.
#[derive(Default)]
struct Tally {
    inputs: u64,
    matched: u64,
    suppressed: u64,
    errors: u64,
}

impl Tally {
    fn exit_code(&self) -> u8 {
        if self.errors > 0 {
            exit::ERROR
        } else if self.matched > 0 {
            exit::FOUND
        } else {
            exit::OK
        }
    }

    fn count(&mut self, outcome: &MatchOutcome) {
        self.inputs += 1;
        if outcome.is_match() {
            self.matched += 1;
        }
        if !outcome.suppressed.is_empty() {
            self.suppressed += 1;
        }
    }
}

/// One input and what became of it.
struct Item {
    /// `path` or `hash` in the output.
    label: (&'static str, String),
    quality: Option<u8>,
    signals: ImageSignals,
    error: Option<String>,
}

pub(crate) fn run(global: &Global, args: Args) -> anyhow::Result<u8> {
    let banks = Banks::open(&global.banks)
        .with_context(|| format!("opening banks in {}", global.banks.display()))?;
    if banks.banks().is_empty() {
        eprintln!(
            "childsafe: match: no banks in {} (create one with `childsafe bank create`)",
            global.banks.display()
        );
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    let batch = args.batch.max(1);
    match &args.pdq_hashes {
        Some(file) => match_hash_file(&banks, file, &args, batch, &mut out, &mut tally)?,
        None => match_images(&banks, &args, batch, &mut out, &mut tally)?,
    }
    out.flush()?;
    banks.save_flood().context("saving flood counts")?;
    eprintln!(
        "match: {} inputs: {} matched, {} with suppressed matches, {} errors",
        tally.inputs + tally.errors,
        tally.matched,
        tally.suppressed,
        tally.errors
    );
    Ok(tally.exit_code())
}

fn match_images(
    banks: &Banks,
    args: &Args,
    batch: usize,
    out: &mut dyn Write,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let config = HashConfig {
        limits: DecodeLimits {
            max_bytes: args.max_bytes,
            max_pixels: args.max_pixels,
            ..DecodeLimits::default()
        },
        exif_orientation: args.exif_orientation,
        full_decode: args.full_decode,
        dihedral: false,
    };
    let list = walk::collect(&args.paths);
    let progress = Progress::new("match", "files", Some(list.len() as u64));
    let mut pending: Vec<Item> = Vec::with_capacity(batch);
    let mut failure = None;
    walk::hash_files(&list, &config, |result| {
        progress.inc(1);
        let path = result.path.display().to_string();
        let item = match result.outcome {
            Ok(ImageHashes { crypto, pdq }) => {
                let (pdq, quality, error) = match pdq {
                    Ok(pdq) => (Some((pdq.hash, pdq.quality)), Some(pdq.quality), None),
                    Err(err) => (None, None, Some(err.reason())),
                };
                Item {
                    label: ("path", path),
                    quality,
                    signals: ImageSignals {
                        pdq,
                        md5: Some(crypto.md5),
                        sha1: Some(crypto.sha1),
                        sha256: Some(crypto.sha256),
                    },
                    error,
                }
            }
            Err(err) => Item {
                label: ("path", path),
                quality: None,
                signals: ImageSignals::default(),
                error: Some(err.reason()),
            },
        };
        pending.push(item);
        if pending.len() < batch {
            return ControlFlow::Continue(());
        }
        match flush(banks, &mut pending, args.json, out, tally, &progress) {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                failure = Some(err);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(err) = failure {
        return Err(err);
    }
    flush(banks, &mut pending, args.json, out, tally, &progress)?;
    progress.finish();
    Ok(())
}

/// Reads a hash file and matches it batch by batch, the batches in parallel.
fn match_hash_file(
    banks: &Banks,
    file: &std::path::Path,
    args: &Args,
    batch: usize,
    out: &mut dyn Write,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let (shown, text) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        ("-".to_owned(), text)
    } else {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|err| anyhow::anyhow!("{}: expected UTF-8 ({err})", file.display()))?;
        (file.display().to_string(), text)
    };
    let mut items = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        items.push(parse_hash_line(&shown, line_idx + 1, line));
    }
    let progress = Progress::new("match", "hashes", Some(items.len() as u64));
    // Each worker answers whole batches; printing stays in input order.
    for group in items.chunks_mut(batch * rayon::current_num_threads().max(1)) {
        let outcomes: Vec<Vec<MatchOutcome>> = group
            .par_chunks(batch)
            .map(|chunk| {
                let signals: Vec<ImageSignals> = chunk.iter().map(|it| it.signals).collect();
                let res = banks.lookup_batch(&signals);
                progress.inc(chunk.len() as u64);
                res
            })
            .collect();
        for (item, outcome) in group.iter().zip(outcomes.into_iter().flatten()) {
            emit(item, &outcome, args.json, out, tally, &progress)?;
        }
    }
    progress.finish();
    Ok(())
}

/// `hash` or `hash,quality` (a third field, such as the reference hasher's
/// file name, is ignored). A bad line becomes an error item naming it.
fn parse_hash_line(file: &str, line_no: usize, line: &str) -> Item {
    let mut fields = line.split([',', ' ', '\t']).filter(|it| !it.is_empty());
    let hex = fields.next().unwrap_or_default();
    let quality_text = fields.next();
    let label = ("hash", hex.chars().take(64).collect::<String>());
    let fail = |reason: String| Item {
        label: ("hash", label.1.clone()),
        quality: None,
        signals: ImageSignals::default(),
        error: Some(format!("{file}:{line_no}: {reason}")),
    };
    let hash: PdqHash = match hex.parse() {
        Ok(hash) => hash,
        Err(err) => return fail(err.to_string()),
    };
    let quality = match quality_text.map(str::parse::<u8>) {
        None => None,
        Some(Ok(quality)) if quality <= 100 => Some(quality),
        Some(_) => {
            return fail(format!(
                "quality: expected 0 to 100, got {:?}",
                quality_text
                    .unwrap_or_default()
                    .chars()
                    .take(8)
                    .collect::<String>()
            ));
        }
    };
    Item {
        label,
        quality,
        signals: ImageSignals {
            pdq: Some((hash, quality.unwrap_or(100))),
            ..ImageSignals::default()
        },
        error: None,
    }
}

fn flush(
    banks: &Banks,
    pending: &mut Vec<Item>,
    json: bool,
    out: &mut dyn Write,
    tally: &mut Tally,
    progress: &Progress,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let signals: Vec<ImageSignals> = pending.iter().map(|it| it.signals).collect();
    let outcomes = banks.lookup_batch(&signals);
    for (item, outcome) in pending.iter().zip(&outcomes) {
        emit(item, outcome, json, out, tally, progress)?;
    }
    pending.clear();
    Ok(())
}

fn match_json(found: &BankMatch) -> Value {
    let mut object = Map::new();
    object.insert("bank".into(), json!(found.bank));
    object.insert("signal".into(), json!(found.signal));
    object.insert("entry_id".into(), json!(found.entry_id));
    object.insert("category".into(), json!(found.category));
    object.insert("distance".into(), json!(found.distance));
    if let Some(distinct_inputs) = found.flood {
        object.insert(
            "flood".into(),
            json!({"likely_false_positive": true, "distinct_inputs": distinct_inputs}),
        );
    }
    Value::Object(object)
}

fn describe(found: &BankMatch) -> String {
    let distance = match found.distance {
        Some(distance) => format!("distance {distance}"),
        None => "exact".to_owned(),
    };
    let flood = match found.flood {
        Some(n) => format!(" (likely false positive: {n} distinct inputs)"),
        None => String::new(),
    };
    format!(
        "{} {} {} {} {distance}{flood}",
        found.bank, found.signal, found.entry_id, found.category
    )
}

/// Prints one input's result and counts it.
fn emit(
    item: &Item,
    outcome: &MatchOutcome,
    json: bool,
    out: &mut dyn Write,
    tally: &mut Tally,
    progress: &Progress,
) -> anyhow::Result<()> {
    match &item.error {
        Some(error) => {
            tally.errors += 1;
            // A file that does not decode may still match on its bytes.
            if outcome.is_match() {
                tally.matched += 1;
            }
            if !json {
                progress.suspend(|| eprintln!("childsafe: match: {}: {error}", item.label.1));
            }
        }
        None => tally.count(outcome),
    }
    if json {
        let mut object = Map::new();
        object.insert(item.label.0.into(), json!(item.label.1));
        if let Some(quality) = item.quality {
            object.insert("quality".into(), json!(quality));
        }
        object.insert(
            "matches".into(),
            Value::Array(outcome.matches.iter().map(match_json).collect()),
        );
        if !outcome.suppressed.is_empty() {
            let suppressed = outcome
                .suppressed
                .iter()
                .map(|it| {
                    let mut cancelled = match_json(&it.cancelled);
                    cancelled["suppressed_by"] = match_json(&it.by);
                    cancelled
                })
                .collect();
            object.insert("suppressed".into(), Value::Array(suppressed));
        }
        if let Some(error) = &item.error {
            object.insert("error".into(), json!(error));
        }
        writeln!(out, "{}", Value::Object(object))?;
        return Ok(());
    }
    for found in &outcome.matches {
        writeln!(out, "{}: {}", item.label.1, describe(found))?;
    }
    for it in &outcome.suppressed {
        writeln!(
            out,
            "{}: suppressed {} by {}",
            item.label.1,
            describe(&it.cancelled),
            describe(&it.by)
        )?;
    }
    Ok(())
}
