//! `childsafe scan INPUT... --out DIR --quarantine DIR`: scan a training
//! dataset at ingestion, write a clean copy, quarantine manifests, a report
//! queue and a summary. The work is `childsafe_scan::scan`; this file turns
//! flags into its config, builds the engine, renders progress and maps the
//! outcome to an exit code.

use std::{
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use anyhow::Context;
use childsafe_core::Category;
use childsafe_engine::{Engine, TextDetector};
use childsafe_match::{Banks, UrlList};
use childsafe_scan::{EngineChecker, ScanConfig, input::Kind};

use crate::{Global, exit, progress::Progress};

/// Scan datasets before training: every sample's image hashes against the
/// banks (PDQ near-match, exact MD5/SHA-1/SHA-256), its URL against URL
/// lists, its captions through the text detectors, decided by the `ingest`
/// policy. Writes a clean copy in the same format to --out, and manifests,
/// the report queue and a summary to --quarantine. Rerunning the same
/// command after an interruption (even kill -9) finishes the job, with the
/// same bytes as an uninterrupted run.
///
/// Exit status: 0 nothing removed, 1 samples removed, 2 a shard failed or
/// the scan could not run (failures are listed).
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Inputs: WebDataset .tar shards, .parquet files, .jsonl corpora,
    /// directories (walked), globs (`data/*.tar`), brace ranges
    /// (`shard-{00000..00099}.tar`), or @FILE listing inputs one per line.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Where the clean copy goes (same layout as the inputs), and the
    /// resumable state (`.childsafe-scan/`).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Where the manifests (manifest.jsonl, manifest.parquet), the report
    /// queue (report-queue.jsonl), the summary (summary.json, summary.txt)
    /// and timing.json go.
    #[arg(long, value_name = "DIR")]
    quarantine: PathBuf,
    /// A policy file layered over the built-in defaults (surface `ingest`).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// A URL or domain list, one per line (repeatable).
    #[arg(long = "url-list", value_name = "FILE")]
    url_lists: Vec<PathBuf>,
    /// Treat every input as this kind instead of telling by name:
    /// webdataset, parquet, images or jsonl.
    #[arg(long, value_name = "KIND")]
    input_kind: Option<Kind>,
    /// Everything but the clean copy.
    #[arg(long)]
    dry_run: bool,
    /// Preserve the original bytes of reportable samples, encrypted, in the
    /// evidence vault at DIR (AES-256-GCM, a fresh key and nonce per item;
    /// master key from --evidence-key-file, $CHILDSAFE_VAULT_KEY_FILE or
    /// $CHILDSAFE_VAULT_KEY). Use the case system's --vault-dir so that
    /// `case import-queue` finds the items.
    #[arg(long, value_name = "DIR")]
    preserve_evidence: Option<PathBuf>,
    /// The vault master key file (64 hex digits or base64 of 32 bytes;
    /// must not be readable by other users).
    #[arg(long, value_name = "FILE", env = "CHILDSAFE_VAULT_KEY_FILE")]
    evidence_key_file: Option<PathBuf>,
    /// This worker's index when N workers share the shard list (0-based).
    /// Default: 0.
    #[arg(
        long,
        value_name = "I",
        default_value_t = 0,
        env = "CHILDSAFE_SHARD_INDEX"
    )]
    shard_index: u32,
    /// Workers sharing the shard list; each takes a contiguous block.
    /// Default: 1.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        env = "CHILDSAFE_SHARD_COUNT"
    )]
    shard_count: u32,
    /// Shards scanned at once and checking threads. Default: the number of CPUs.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// JSON field / Parquet column with the sample URL. Default: url.
    #[arg(long, value_name = "NAME", default_value = "url")]
    url_field: String,
    /// JSON fields / Parquet columns with text to check (repeatable).
    /// Default: caption, txt, text, TEXT.
    #[arg(long = "text-field", value_name = "NAME")]
    text_fields: Vec<String>,
    /// Parquet column with image bytes (binary, or a struct with `bytes`).
    /// Default: the first of jpg, png, webp, image, img.
    #[arg(long, value_name = "NAME")]
    image_column: Option<String>,
    /// Largest member, file, row image or line held in memory, in bytes.
    /// Default: 64 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    max_member_bytes: u64,
    /// Discard the state of an earlier scan with different inputs or options
    /// in --out and start over.
    #[arg(long)]
    restart: bool,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(global: &Global, args: Args) -> anyhow::Result<u8> {
    if args.shard_count == 0 || args.shard_index >= args.shard_count {
        anyhow::bail!(
            "--shard-index: expected 0 to {}, got {}",
            args.shard_count.saturating_sub(1),
            args.shard_index
        );
    }
    let policy = match &args.policy {
        Some(path) => crate::cmd::policy::load(path)?,
        None => childsafe_core::Policy::default(),
    };
    let engine = Engine::new(
        policy,
        TextDetector::built_in().context("loading the built-in text detectors")?,
    );
    let banks = Banks::open(&global.banks)
        .with_context(|| format!("opening banks in {}", global.banks.display()))?;
    let mut url_lists = Vec::new();
    for path in &args.url_lists {
        let list = UrlList::load(path, Category::CsamKnown)
            .with_context(|| format!("reading URL list {}", path.display()))?;
        url_lists.push(list);
    }
    let identity = identity(&engine, &banks, &args.url_lists)?;
    let checker = EngineChecker {
        engine: &engine,
        banks: &banks,
        url_lists: &url_lists,
    };
    let mut config = ScanConfig::new(args.inputs, args.out, args.quarantine);
    config.kind = args.input_kind;
    config.dry_run = args.dry_run;
    config.shard_index = args.shard_index;
    config.shard_count = args.shard_count;
    if let Some(jobs) = args.jobs {
        config.jobs = jobs.max(1);
    }
    config.read.url_field = args.url_field;
    if !args.text_fields.is_empty() {
        config.read.text_fields = args.text_fields;
    }
    config.read.image_column = args.image_column;
    config.read.max_member_bytes = args.max_member_bytes;
    config.hash.limits.max_bytes = args.max_member_bytes;
    config.identity = identity;
    config.restart = args.restart;
    if let Some(dir) = &args.preserve_evidence {
        let keys = match &args.evidence_key_file {
            Some(path) => childsafe_vault::Keyring::from_file(path),
            None => childsafe_vault::Keyring::from_env("CHILDSAFE_VAULT_KEY"),
        }
        .context("evidence key")?;
        let vault = childsafe_vault::Vault::open_dir(dir, keys)
            .with_context(|| format!("opening the evidence vault {}", dir.display()))?;
        config.evidence = Some(vault);
    }

    let progress: Mutex<Option<Progress>> = Mutex::new(None);
    let samples_done = AtomicU64::new(0);
    let started = Instant::now();
    let outcome = childsafe_scan::scan(
        &config,
        &checker,
        &mut |plan| {
            let bar = Progress::new("scan", "bytes", Some(plan.bytes_to_scan));
            if let Ok(mut slot) = progress.lock() {
                *slot = Some(bar);
            }
        },
        &|update| {
            let samples =
                samples_done.fetch_add(update.samples, Ordering::Relaxed) + update.samples;
            if let Ok(slot) = progress.lock()
                && let Some(bar) = slot.as_ref()
            {
                let rate = samples as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_note(format!("{samples} samples, {rate:.1} samples/s"));
                bar.inc(update.bytes);
            }
        },
    )?;
    if let Ok(slot) = progress.lock()
        && let Some(bar) = slot.as_ref()
    {
        bar.finish();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
    } else {
        print!("{}", outcome.summary.table());
        println!(
            "\n{} samples in {:.1}s: {:.1} samples/s, {:.1} MB/s ({} threads)",
            outcome.timing.samples,
            outcome.timing.elapsed_seconds,
            outcome.timing.samples_per_second,
            outcome.timing.bytes_per_second / 1e6,
            outcome.timing.threads
        );
    }
    if !outcome.summary.failed.is_empty() {
        for shard in outcome.summary.shards.iter().filter(|s| s.status != "done") {
            eprintln!(
                "childsafe: scan: {}: {}",
                shard.shard,
                shard.error.as_deref().unwrap_or("failed")
            );
        }
        return Ok(exit::ERROR);
    }
    Ok(if outcome.summary.total.removed > 0 {
        exit::FOUND
    } else {
        exit::OK
    })
}

/// What else decides the outputs besides the inputs and flags: the effective
/// policy, each bank's generation and size, and each URL list's bytes. A
/// rerun into the same --out with any of these changed is refused.
fn identity(engine: &Engine, banks: &Banks, url_lists: &[PathBuf]) -> anyhow::Result<String> {
    let mut material = engine.policy().to_toml()?.into_bytes();
    for bank in banks.banks() {
        let stats = banks.stats(bank.name())?;
        material.extend_from_slice(
            format!(
                "\0bank {} {} {}",
                stats.name, stats.generation, stats.entries
            )
            .as_bytes(),
        );
    }
    for path in url_lists {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading URL list {}", path.display()))?;
        material.extend_from_slice(b"\0url-list ");
        material.extend_from_slice(&bytes);
    }
    Ok(childsafe_hash::crypto_hashes(&material).sha256.to_string())
}
