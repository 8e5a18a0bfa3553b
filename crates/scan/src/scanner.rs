//! The scanner: shards in parallel, samples in bounded batches, decisions
//! from the engine, and the resumable bookkeeping that makes a killed scan
//! finish with the same bytes when rerun.
//!
//! This file names no format: it drives any [`Source`] and [`Sink`] pair
//! handed to it by `formats.rs`.
//!
//! Memory is bounded by `jobs` shards in flight, each with at most three
//! batches (one being read, one queued, one being checked and written) of
//! at most `batch_samples` samples and `batch_bytes` bytes of content.
//!
//! The resumability protocol (also in ARCHITECTURE.md):
//! 1. The state directory (`OUT/.childsafe-scan/<worker>/`) holds `run.json`,
//!    a fingerprint of the command (shard list with sizes and modification
//!    times, options, and the caller's identity of policy, banks and lists).
//!    A rerun with a different fingerprint is refused (or `restart` clears
//!    the state).
//! 2. A shard's outputs are written under temporary names: the clean copy
//!    beside its final name, the manifest and queue parts in `tmp/`.
//! 3. When the shard ends, the clean copy is synced and renamed into place,
//!    then the parts are synced and renamed into `shards/`, and only then
//!    is the shard's record `shards/NNNNN.json` written (temp, sync,
//!    rename). A shard is done only when its record exists.
//! 4. Shards without a record are scanned again from the start on a rerun;
//!    stale temporary files are removed first.
//! 5. When every shard has a record, the parts are merged in shard order
//!    into the quarantine directory, each output through temp, sync, rename.
//!    The merge is pure (same records, same bytes), so a kill during it is
//!    repaired by running it again.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufWriter, Write},
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Instant, SystemTime},
};

use childsafe_core::{
    ContentHashes, Decision, EvidenceRef, QUEUE_FORMAT_VERSION, QueueEntry, SampleLocation,
    SignalKind, SourceKind,
};
use childsafe_hash::{HashConfig, Hasher, crypto_hashes, md5_of, sha1_of, sha256_of};
use childsafe_vault::Vault;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::{
    ReadConfig,
    check::{Checker, SampleSignals, ScannedImage},
    error::{Error, Result},
    formats, fsutil,
    input::{self, Kind, Shard},
    manifest::{self, ManifestRow, Reason},
    sample::Sample,
    sink::Sink,
    source::Source,
    summary::{SUMMARY_FORMAT_VERSION, ShardCounts, ShardSummary, Summary},
};

/// The state format version; a state written by another version is refused.
const STATE_FORMAT_VERSION: u32 = 1;

/// What to scan and how.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    /// Inputs as given: files, directories, globs, brace patterns, `@FILE`.
    pub inputs: Vec<String>,
    /// Force every input to one kind. Default: told by name (see `input`).
    pub kind: Option<Kind>,
    /// Where the clean copy (and the state) goes.
    pub out: PathBuf,
    /// Where manifests, the report queue and the summary go.
    pub quarantine: PathBuf,
    /// Field and column names, member size limit.
    pub read: ReadConfig,
    /// How images are decoded and hashed.
    pub hash: HashConfig,
    /// Everything but the clean copy.
    pub dry_run: bool,
    /// This worker's index, `0..shard_count`.
    pub shard_index: u32,
    /// Workers sharing the shard list (contiguous blocks in list order).
    pub shard_count: u32,
    /// Shards scanned at once. Default: the number of CPUs.
    pub jobs: usize,
    /// Samples per checked batch. Default: 256.
    pub batch_samples: usize,
    /// Content bytes per checked batch. Default: 32 MiB.
    pub batch_bytes: usize,
    /// Where reportable samples' original bytes are preserved, encrypted.
    pub evidence: Option<Vault>,
    /// The caller's identity of everything else that decides (policy,
    /// banks, URL lists): part of the state fingerprint.
    pub identity: String,
    /// Throw away the state of an earlier, different command.
    pub restart: bool,
}

impl ScanConfig {
    /// A configuration with the documented defaults.
    pub fn new(inputs: Vec<String>, out: PathBuf, quarantine: PathBuf) -> ScanConfig {
        ScanConfig {
            inputs,
            kind: None,
            out,
            quarantine,
            read: ReadConfig::default(),
            hash: HashConfig::default(),
            dry_run: false,
            shard_index: 0,
            shard_count: 1,
            jobs: std::thread::available_parallelism().map_or(1, usize::from),
            batch_samples: 256,
            batch_bytes: 32 << 20,
            evidence: None,
            identity: String::new(),
            restart: false,
        }
    }
}

/// Progress as the scan goes: increments since the last call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Samples checked.
    pub samples: u64,
    /// Content bytes checked.
    pub bytes: u64,
    /// Shards finished (done or failed).
    pub shards: u64,
}

/// What the scan did.
#[derive(Debug)]
pub struct ScanOutcome {
    /// The summary (as written to `summary.json`).
    pub summary: Summary,
    /// Wall-clock figures of this invocation (as written to `timing.json`).
    pub timing: Timing,
    /// The files written to the quarantine directory.
    pub outputs: Vec<PathBuf>,
    /// Total input bytes and shards, known before scanning (for progress).
    pub planned: Plan,
}

/// The shard list's size, known before scanning.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Shards this worker owns.
    pub shards: u64,
    /// Shards already done in an earlier run.
    pub already_done: u64,
    /// Input bytes of the shards still to scan.
    pub bytes_to_scan: u64,
}

/// Wall-clock figures, kept apart from the deterministic outputs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds this invocation took.
    pub elapsed_seconds: f64,
    /// Samples checked by this invocation.
    pub samples: u64,
    /// Samples per second (this invocation).
    pub samples_per_second: f64,
    /// Input bytes per second (this invocation).
    pub bytes_per_second: f64,
    /// Worker threads used for checking.
    pub threads: usize,
}

/// Scans every shard, resuming from the state in `config.out`.
///
/// `plan` is called once with the shard list's size before any shard is
/// scanned; `progress` with increments as samples are checked.
///
/// # Errors
/// Inputs that name nothing, a state from a different command, or failing
/// to write the merged outputs. A shard that fails does not fail the scan:
/// it is listed in the summary (`failed`), and its clean copy is absent.
pub fn scan(
    config: &ScanConfig,
    checker: &dyn Checker,
    plan: &mut dyn FnMut(Plan),
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ScanOutcome> {
    let started = Instant::now();
    let all = input::expand(&config.inputs, config.kind)?;
    let shards = worker_share(&all, config.shard_index, config.shard_count);
    let worker =
        (config.shard_count > 1).then(|| format!("{}/{}", config.shard_index, config.shard_count));
    let state = State::open(config, &shards)?;

    let mut pending = Vec::new();
    let mut planned = Plan {
        shards: shards.len() as u64,
        ..Plan::default()
    };
    for (shard_idx, shard) in shards.iter().enumerate() {
        if state.record(shard_idx)?.is_some() {
            planned.already_done += 1;
        } else {
            planned.bytes_to_scan += shard_bytes(shard);
            pending.push(shard_idx);
        }
    }
    plan(planned);

    let threads = config.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("childsafe-scan-{i}"))
        .build()
        .map_err(|e| Error::Input {
            input: "jobs".to_owned(),
            reason: format!("cannot start worker threads: {e}"),
        })?;
    let journal = EvidenceJournal::open(&state.dir.join("evidence.jsonl"))?;
    let next = AtomicUsize::new(0);
    let samples_done = std::sync::atomic::AtomicU64::new(0);
    let bytes_done = std::sync::atomic::AtomicU64::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    // Asked once: a bank's answer looks through its unmerged additions.
    let digests = Digests::wanted_by(checker);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(pending.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&shard_idx) = pending.get(i) else {
                        break;
                    };
                    let shard = &shards[shard_idx];
                    let ctx = ShardCtx {
                        shard_name: shard.name(),
                        out: &config.out,
                        read: &config.read,
                        hash: &config.hash,
                        digests,
                        dry_run: config.dry_run,
                        batch_samples: config.batch_samples.max(1),
                        batch_bytes: config.batch_bytes.max(1),
                        checker,
                        pool: &pool,
                        evidence: config.evidence.as_ref().map(|vault| (vault, &journal)),
                        tmp_dir: state.dir.join("tmp"),
                        shard_idx,
                        found_at: now_rfc3339(),
                        progress: &|update: Progress| {
                            samples_done.fetch_add(update.samples, Ordering::Relaxed);
                            bytes_done.fetch_add(update.bytes, Ordering::Relaxed);
                            progress(update);
                        },
                    };
                    if let Err(e) = scan_and_record(&ctx, &state, shard) {
                        let mut slot = first_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        slot.get_or_insert(e);
                    }
                    progress(Progress {
                        shards: 1,
                        ..Progress::default()
                    });
                }
            });
        }
    });
    if let Some(e) = first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }

    let (summary, outputs) = merge(config, &state, &shards, worker)?;
    let elapsed = started.elapsed().as_secs_f64();
    let samples = samples_done.into_inner();
    let timing = Timing {
        elapsed_seconds: elapsed,
        samples,
        samples_per_second: samples as f64 / elapsed.max(1e-9),
        bytes_per_second: bytes_done.into_inner() as f64 / elapsed.max(1e-9),
        threads,
    };
    let timing_path = config
        .quarantine
        .join(output_name("timing", "json", config));
    let timing_json = serde_json::to_vec_pretty(&timing).unwrap_or_default();
    fsutil::write_atomic(&timing_path, &timing_json)?;
    Ok(ScanOutcome {
        summary,
        timing,
        outputs,
        planned,
    })
}

/// The contiguous block of shards that worker `index` of `count` owns:
/// concatenating the workers' outputs in worker order gives the outputs of
/// one scan of the whole list.
pub fn worker_share(shards: &[Shard], index: u32, count: u32) -> Vec<Shard> {
    let count = count.max(1) as usize;
    let index = (index as usize).min(count - 1);
    let n = shards.len();
    let start = n * index / count;
    let end = n * (index + 1) / count;
    shards[start..end].to_vec()
}

fn shard_bytes(shard: &Shard) -> u64 {
    if shard.kind == Kind::Images {
        return std::fs::read_dir(&shard.path)
            .map(|it| {
                it.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
    }
    std::fs::metadata(&shard.path).map_or(0, |m| m.len())
}

/// What one shard's scan needs.
pub(crate) struct ShardCtx<'a> {
    pub(crate) shard_name: String,
    pub(crate) out: &'a Path,
    pub(crate) read: &'a ReadConfig,
    hash: &'a HashConfig,
    /// The digests computed for every image (those the checker matches).
    digests: Digests,
    pub(crate) dry_run: bool,
    batch_samples: usize,
    batch_bytes: usize,
    checker: &'a dyn Checker,
    pool: &'a rayon::ThreadPool,
    evidence: Option<(&'a Vault, &'a EvidenceJournal)>,
    tmp_dir: PathBuf,
    shard_idx: usize,
    found_at: String,
    progress: &'a (dyn Fn(Progress) + Sync),
}

/// What one shard's scan produced.
pub(crate) struct ShardOutcome {
    counts: ShardCounts,
    error: Option<Error>,
    manifest_tmp: PathBuf,
    queue_tmp: PathBuf,
    seconds: f64,
}

/// A shard's terminal record.
#[derive(Serialize, Deserialize)]
struct ShardRecord {
    version: u32,
    summary: ShardSummary,
    found_at: String,
}

/// Scans one shard and records it (protocol steps 2 and 3).
fn scan_and_record(ctx: &ShardCtx<'_>, state: &State, shard: &Shard) -> Result<()> {
    let shard_idx = ctx.shard_idx;
    let bytes = shard_bytes(shard);
    let res = std::panic::catch_unwind(AssertUnwindSafe(|| formats::scan_shard(ctx, shard)));
    let outcome = match res {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(open_error)) => ShardOutcome {
            counts: ShardCounts::default(),
            error: Some(open_error),
            manifest_tmp: PathBuf::new(),
            queue_tmp: PathBuf::new(),
            seconds: 0.0,
        },
        Err(_) => ShardOutcome {
            counts: ShardCounts::default(),
            error: Some(Error::Input {
                input: shard.path.display().to_string(),
                reason: "internal error while scanning (a bug: please report it with the shard's hashes)".to_owned(),
            }),
            manifest_tmp: PathBuf::new(),
            queue_tmp: PathBuf::new(),
            seconds: 0.0,
        },
    };
    let mut counts = outcome.counts;
    counts.bytes = bytes;
    let failed = outcome.error.is_some();
    if failed {
        formats::remove_clean_copy(ctx, shard);
    }
    crate::failpoint::crash_point("clean-renamed");
    let shards_dir = state.dir.join("shards");
    fsutil::create_dir_all(&shards_dir)?;
    for (tmp, part) in [
        (&outcome.manifest_tmp, "manifest.jsonl"),
        (&outcome.queue_tmp, "queue.jsonl"),
    ] {
        let target = shards_dir.join(format!("{shard_idx:06}.{part}"));
        if tmp.as_os_str().is_empty() || !tmp.exists() {
            fsutil::write_atomic(&target, b"")?;
        } else {
            let file = File::open(tmp).map_err(|e| Error::io(tmp, e))?;
            file.sync_all().map_err(|e| Error::io(tmp, e))?;
            fsutil::rename_durable(tmp, &target)?;
        }
    }
    crate::failpoint::crash_point("parts-renamed");
    let record = ShardRecord {
        version: STATE_FORMAT_VERSION,
        summary: ShardSummary {
            shard: shard.name(),
            kind: shard.kind.as_str().to_owned(),
            status: if failed { "failed" } else { "done" }.to_owned(),
            error: outcome.error.map(|e| e.to_string()),
            counts,
        },
        found_at: ctx.found_at.clone(),
    };
    let timing = serde_json::json!({"seconds": outcome.seconds, "bytes": bytes});
    fsutil::write_atomic(
        &shards_dir.join(format!("{shard_idx:06}.timing.json")),
        timing.to_string().as_bytes(),
    )?;
    let json = serde_json::to_vec(&record).map_err(|e| Error::State {
        path: shards_dir.clone(),
        reason: e.to_string(),
    })?;
    fsutil::write_atomic(&state.record_path(shard_idx), &json)?;
    crate::failpoint::crash_point("record-written");
    Ok(())
}

/// The format-blind shard loop: read batches on one thread, check them on
/// the pool, write them in order.
pub(crate) fn run_shard<S, K>(
    ctx: &ShardCtx<'_>,
    mut source: S,
    sink: Option<Box<K>>,
) -> ShardOutcome
where
    S: Source,
    K: Sink<Record = S::Record>,
{
    let started = Instant::now();
    let manifest_tmp = ctx
        .tmp_dir
        .join(format!("{:06}.manifest.jsonl", ctx.shard_idx));
    let queue_tmp = ctx
        .tmp_dir
        .join(format!("{:06}.queue.jsonl", ctx.shard_idx));
    let mut writer = match ShardWriter::create(ctx, sink, &manifest_tmp, &queue_tmp) {
        Ok(writer) => writer,
        Err(e) => {
            return ShardOutcome {
                counts: ShardCounts::default(),
                error: Some(e),
                manifest_tmp,
                queue_tmp,
                seconds: 0.0,
            };
        }
    };
    let (batch_samples, batch_bytes) = (ctx.batch_samples, ctx.batch_bytes);
    let mut read_error = None;
    let mut write_error = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<Sample<S::Record>>>(1);
        let reader = scope.spawn(move || -> Option<Error> {
            loop {
                let mut batch = Vec::with_capacity(batch_samples.min(1024));
                let mut bytes = 0;
                let mut end = None;
                while batch.len() < batch_samples && bytes < batch_bytes {
                    match source.next_sample() {
                        Ok(Some(sample)) => {
                            bytes += sample.content_bytes();
                            batch.push(sample);
                        }
                        Ok(None) => {
                            end = Some(None);
                            break;
                        }
                        Err(e) => {
                            end = Some(Some(e));
                            break;
                        }
                    }
                }
                if !batch.is_empty() && tx.send(batch).is_err() {
                    return None;
                }
                if let Some(end) = end {
                    return end;
                }
            }
        });
        for batch in rx {
            if write_error.is_some() {
                continue; // drain so the reader can finish
            }
            if let Err(e) = writer.process(ctx, batch) {
                write_error = Some(e);
            }
        }
        read_error = reader.join().unwrap_or_else(|_| {
            Some(Error::Input {
                input: ctx.shard_name.clone(),
                reason: "internal error while reading (a bug: please report it)".to_owned(),
            })
        });
    });
    let error = write_error.or(read_error);
    let counts = writer.counts.clone();
    let finish = writer.finish(error.is_none());
    ShardOutcome {
        counts,
        error: error.or(finish.err()),
        manifest_tmp,
        queue_tmp,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Writes one shard's outputs as batches are decided.
struct ShardWriter<K> {
    sink: Option<Box<K>>,
    manifest: BufWriter<File>,
    manifest_path: PathBuf,
    queue: BufWriter<File>,
    queue_path: PathBuf,
    counts: ShardCounts,
}

impl<K: Sink> ShardWriter<K> {
    fn create(
        ctx: &ShardCtx<'_>,
        sink: Option<Box<K>>,
        manifest_path: &Path,
        queue_path: &Path,
    ) -> Result<Self> {
        fsutil::create_dir_all(&ctx.tmp_dir)?;
        let manifest = File::create(manifest_path).map_err(|e| Error::io(manifest_path, e))?;
        let queue = File::create(queue_path).map_err(|e| Error::io(queue_path, e))?;
        Ok(ShardWriter {
            sink,
            manifest: BufWriter::new(manifest),
            manifest_path: manifest_path.to_owned(),
            queue: BufWriter::new(queue),
            queue_path: queue_path.to_owned(),
            counts: ShardCounts::default(),
        })
    }

    /// Checks a batch and writes it, in order.
    fn process(&mut self, ctx: &ShardCtx<'_>, batch: Vec<Sample<K::Record>>) -> Result<()> {
        let digests = ctx.digests;
        let hashes: Vec<Vec<ScannedImage>> = ctx.pool.install(|| {
            batch
                .par_iter()
                .map(|sample| {
                    sample
                        .images
                        .iter()
                        .map(|image| hash_image(ctx.hash, digests, image))
                        .collect()
                })
                .collect()
        });
        let signals: Vec<SampleSignals<'_>> = batch
            .iter()
            .zip(&hashes)
            .filter(|(sample, _)| !sample.passthrough)
            .map(|(sample, images)| SampleSignals {
                images,
                texts: &sample.texts,
                url: sample.url.as_deref(),
                problems: &sample.problems,
            })
            .collect();
        let decisions = ctx.pool.install(|| ctx.checker.check_batch(&signals));
        if decisions.len() != signals.len() {
            return Err(Error::Input {
                input: ctx.shard_name.clone(),
                reason: format!(
                    "checker answered {} of {} samples",
                    decisions.len(),
                    signals.len()
                ),
            });
        }
        let mut decisions = decisions.into_iter();
        let mut n_samples = 0;
        let mut n_bytes = 0;
        for (sample, images) in batch.iter().zip(&hashes) {
            n_bytes += sample.content_bytes() as u64;
            if sample.passthrough {
                if let Some(sink) = self.sink.as_mut() {
                    sink.keep(sample)?;
                }
                continue;
            }
            n_samples += 1;
            let Some(decision) = decisions.next() else {
                break;
            };
            self.counts.samples += 1;
            *self
                .counts
                .actions
                .entry(decision.action.as_str().to_owned())
                .or_default() += 1;
            if decision.action.withholds() {
                self.counts.removed += 1;
                if let Some(sink) = self.sink.as_mut() {
                    sink.remove(sample)?;
                }
                self.record_removed(ctx, sample, images, decision)?;
            } else {
                self.counts.kept += 1;
                if let Some(sink) = self.sink.as_mut() {
                    sink.keep(sample)?;
                }
            }
        }
        (ctx.progress)(Progress {
            samples: n_samples,
            bytes: n_bytes,
            shards: 0,
        });
        Ok(())
    }

    fn record_removed(
        &mut self,
        ctx: &ShardCtx<'_>,
        sample: &Sample<K::Record>,
        images: &[ScannedImage],
        decision: Decision,
    ) -> Result<()> {
        let undecodable = images.iter().any(|it| it.pdq.is_err());
        let reason = if !decision.categories.is_empty() {
            Reason::Match
        } else if undecodable {
            Reason::Undecodable
        } else {
            Reason::Unreadable
        };
        match reason {
            Reason::Undecodable => self.counts.undecodable += 1,
            Reason::Unreadable => self.counts.unreadable += 1,
            Reason::Match => {}
        }
        for category in &decision.categories {
            *self
                .counts
                .categories
                .entry(category.as_str().to_owned())
                .or_default() += 1;
        }
        // The first finding of a category that drove the decision explains it.
        let lead = decision
            .findings
            .iter()
            .find(|f| decision.categories.contains(&f.category))
            .or_else(|| decision.findings.first());
        // All three digests, whichever the lists needed: a removed sample's
        // row is what a reporter files from.
        let (crypto, pdq) = match (sample.images.first(), images.first()) {
            (Some(bytes), Some(first)) => (Some(crypto_hashes(bytes)), first.pdq.as_ref().ok()),
            _ => (
                sample
                    .texts
                    .first()
                    .map(|text| crypto_hashes(text.as_bytes())),
                None,
            ),
        };
        let mut problems: Vec<String> = sample
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.what, p.reason))
            .collect();
        for (image_idx, image) in images.iter().enumerate() {
            if let Err(e) = &image.pdq {
                problems.push(format!("image {image_idx}: {e}"));
            }
        }
        let row = ManifestRow {
            shard: ctx.shard_name.clone(),
            key: sample.location.key.clone(),
            row: sample.location.row,
            offset: sample.location.offset,
            action: decision.action,
            report: decision.report,
            categories: decision.categories.clone(),
            reason,
            matcher: lead.map(|f| f.source.kind),
            list: lead.map(|f| f.source.name.clone()),
            entry_id: lead.and_then(|f| f.source.entry_id.clone()),
            signal: lead.and_then(|f| f.source.signal),
            distance: lead.and_then(|f| f.source.distance),
            score: lead.map(|f| f.score),
            md5: crypto.map(|c| c.md5),
            sha1: crypto.map(|c| c.sha1),
            sha256: crypto.map(|c| c.sha256),
            pdq: pdq.map(|p| p.hash),
            pdq_quality: pdq.map(|p| p.quality),
            problems,
            findings: decision.findings.clone(),
        };
        let line = serde_json::to_string(&row).map_err(|e| Error::Manifest {
            path: self.manifest_path.clone(),
            reason: e.to_string(),
        })?;
        writeln!(self.manifest, "{line}").map_err(|e| Error::io(&self.manifest_path, e))?;

        if decision.report {
            self.counts.reported += 1;
            let Some(crypto) = crypto else {
                return Ok(());
            };
            let place = sample
                .location
                .key
                .clone()
                .or_else(|| sample.location.row.map(|r| r.to_string()))
                .unwrap_or_default();
            let id = {
                let mut hasher = sha2::Sha256::new();
                for part in [
                    "childsafe-scan-v1",
                    &ctx.shard_name,
                    &place,
                    &crypto.sha256.to_string(),
                ] {
                    hasher.update(part.as_bytes());
                    hasher.update([0u8]);
                }
                hex_lower(&hasher.finalize()[..16])
            };
            let evidence = match ctx.evidence {
                Some((vault, journal)) => {
                    let content: &[u8] = match sample.images.first() {
                        Some(image) => image,
                        None => sample
                            .texts
                            .first()
                            .map(String::as_bytes)
                            .unwrap_or_default(),
                    };
                    Some(journal.preserve(vault, &id, content)?)
                }
                None => None,
            };
            let entry = QueueEntry {
                version: QUEUE_FORMAT_VERSION,
                id,
                found_at: ctx.found_at.clone(),
                location: SampleLocation {
                    shard: ctx.shard_name.clone(),
                    key: sample.location.key.clone(),
                    row: sample.location.row,
                    offset: sample.location.offset,
                    url: sample.url.clone(),
                },
                hashes: ContentHashes {
                    md5: crypto.md5,
                    sha1: crypto.sha1,
                    sha256: crypto.sha256,
                    pdq: pdq.map(|p| p.hash),
                    quality: pdq.map(|p| p.quality),
                },
                findings: decision
                    .findings
                    .into_iter()
                    .filter(|f| {
                        f.source.kind != SourceKind::Engine
                            || decision.categories.contains(&f.category)
                    })
                    .collect(),
                evidence,
            };
            let line = serde_json::to_string(&entry).map_err(|e| Error::Manifest {
                path: self.queue_path.clone(),
                reason: e.to_string(),
            })?;
            writeln!(self.queue, "{line}").map_err(|e| Error::io(&self.queue_path, e))?;
        }
        Ok(())
    }

    /// Flushes the parts, and commits the clean copy if the shard succeeded.
    fn finish(self, succeeded: bool) -> Result<()> {
        let ShardWriter {
            sink,
            manifest,
            manifest_path,
            queue,
            queue_path,
            ..
        } = self;
        manifest
            .into_inner()
            .map_err(|e| Error::io(&manifest_path, e.into_error()))?;
        queue
            .into_inner()
            .map_err(|e| Error::io(&queue_path, e.into_error()))?;
        if succeeded && let Some(sink) = sink {
            sink.commit()?;
        }
        Ok(())
    }
}

/// The digests a scan computes for every image: those the checker matches.
#[derive(Clone, Copy, Debug)]
struct Digests {
    md5: bool,
    sha1: bool,
    sha256: bool,
}

impl Digests {
    fn wanted_by(checker: &dyn Checker) -> Digests {
        Digests {
            md5: checker.matches_digest(SignalKind::Md5),
            sha1: checker.matches_digest(SignalKind::Sha1),
            sha256: checker.matches_digest(SignalKind::Sha256),
        }
    }
}

fn hash_image(config: &HashConfig, digests: Digests, image: &[u8]) -> ScannedImage {
    thread_local! {
        static HASHER: std::cell::RefCell<Option<Hasher>> = const { std::cell::RefCell::new(None) };
    }
    HASHER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let hasher = match slot.as_mut() {
            Some(hasher) if hasher.config() == config => hasher,
            _ => slot.insert(Hasher::new(*config)),
        };
        ScannedImage {
            pdq: hasher.pdq(image),
            md5: digests.md5.then(|| md5_of(image)),
            sha1: digests.sha1.then(|| sha1_of(image)),
            sha256: digests.sha256.then(|| sha256_of(image)),
        }
    })
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::from(SystemTime::now())
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The state directory of one worker's run.
struct State {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct RunFingerprint {
    version: u32,
    fingerprint: String,
}

impl State {
    /// Opens (or starts) the state, checking it belongs to this command, and
    /// clears temporary files of interrupted shards (protocol steps 1 and 4).
    fn open(config: &ScanConfig, shards: &[Shard]) -> Result<State> {
        let worker = format!(
            "worker-{:05}-of-{:05}",
            config.shard_index,
            config.shard_count.max(1)
        );
        let dir = config.out.join(".childsafe-scan").join(worker);
        let run_path = dir.join("run.json");
        let fingerprint = RunFingerprint {
            version: STATE_FORMAT_VERSION,
            fingerprint: fingerprint(config, shards),
        };
        if config.restart && dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        match std::fs::read(&run_path) {
            Ok(bytes) => {
                let existing: RunFingerprint =
                    serde_json::from_slice(&bytes).map_err(|e| Error::State {
                        path: run_path.clone(),
                        reason: format!("expected a scan state, got invalid JSON ({e})"),
                    })?;
                if existing != fingerprint {
                    return Err(Error::State {
                        path: run_path,
                        reason: "written by a scan with other inputs or options (inputs changed, or a different policy, banks, lists or flags): rerun the same command, use another --out, or pass --restart".to_owned(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fsutil::create_dir_all(&dir)?;
                let json = serde_json::to_vec(&fingerprint).map_err(|e| Error::State {
                    path: run_path.clone(),
                    reason: e.to_string(),
                })?;
                fsutil::write_atomic(&run_path, &json)?;
            }
            Err(e) => return Err(Error::io(&run_path, e)),
        }
        let tmp = dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fsutil::create_dir_all(&tmp)?;
        Ok(State { dir })
    }

    fn record_path(&self, shard_idx: usize) -> PathBuf {
        self.dir.join("shards").join(format!("{shard_idx:06}.json"))
    }

    fn record(&self, shard_idx: usize) -> Result<Option<ShardRecord>> {
        let path = self.record_path(shard_idx);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let record: ShardRecord =
                    serde_json::from_slice(&bytes).map_err(|e| Error::State {
                        path: path.clone(),
                        reason: format!("expected a shard record, got invalid JSON ({e})"),
                    })?;
                // A failed shard is retried by the next run.
                Ok((record.summary.status == "done").then_some(record))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn any_record(&self, shard_idx: usize) -> Result<Option<ShardRecord>> {
        let path = self.record_path(shard_idx);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

/// A fingerprint of everything that decides the outputs.
fn fingerprint(config: &ScanConfig, shards: &[Shard]) -> String {
    let mut hasher = sha2::Sha256::new();
    let mut add = |part: &str| {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    };
    add(&format!("state v{STATE_FORMAT_VERSION}"));
    for shard in shards {
        let (len, modified) = std::fs::metadata(&shard.path)
            .map(|m| {
                (
                    m.len(),
                    m.modified()
                        .ok()
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()),
                )
            })
            .unwrap_or((0, None));
        add(&format!(
            "{}|{}|{}|{}|{:?}",
            shard.kind,
            shard.path.display(),
            shard.name(),
            len,
            modified.map(|d| d.as_nanos())
        ));
    }
    add(&format!("{:?}", config.read));
    add(&format!("{:?}", config.hash));
    add(&format!(
        "dry_run={} evidence={}",
        config.dry_run,
        config.evidence.is_some()
    ));
    add(&config.identity);
    hex_lower(&hasher.finalize())
}

/// The name of a quarantine output, with the worker in it when the shard
/// list is split (`manifest-00003-of-00010.jsonl`).
fn output_name(stem: &str, ext: &str, config: &ScanConfig) -> String {
    if config.shard_count > 1 {
        format!(
            "{stem}-{:05}-of-{:05}.{ext}",
            config.shard_index, config.shard_count
        )
    } else {
        format!("{stem}.{ext}")
    }
}

/// Merges the per-shard parts in shard order (protocol step 5).
fn merge(
    config: &ScanConfig,
    state: &State,
    shards: &[Shard],
    worker: Option<String>,
) -> Result<(Summary, Vec<PathBuf>)> {
    fsutil::create_dir_all(&config.quarantine)?;
    let manifest_path = config
        .quarantine
        .join(output_name("manifest", "jsonl", config));
    let queue_path = config
        .quarantine
        .join(output_name("report-queue", "jsonl", config));
    let mut summary = Summary {
        version: SUMMARY_FORMAT_VERSION,
        dry_run: config.dry_run,
        worker,
        shards: Vec::new(),
        total: ShardCounts::default(),
        failed: Vec::new(),
    };
    for (target, part) in [
        (&manifest_path, "manifest.jsonl"),
        (&queue_path, "queue.jsonl"),
    ] {
        let (tmp, file) = fsutil::create_tmp(target)?;
        let mut out = BufWriter::new(file);
        for shard_idx in 0..shards.len() {
            let part_path = state
                .dir
                .join("shards")
                .join(format!("{shard_idx:06}.{part}"));
            if state.any_record(shard_idx)?.is_none() {
                continue;
            }
            let mut input = File::open(&part_path).map_err(|e| Error::io(&part_path, e))?;
            std::io::copy(&mut input, &mut out).map_err(|e| Error::io(&tmp, e))?;
        }
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        fsutil::commit_tmp(file, &tmp, target)?;
    }
    for (shard_idx, shard) in shards.iter().enumerate() {
        let shard_summary = match state.any_record(shard_idx)? {
            Some(record) => record.summary,
            None => ShardSummary {
                shard: shard.name(),
                kind: shard.kind.as_str().to_owned(),
                status: "failed".to_owned(),
                error: Some("not scanned".to_owned()),
                counts: ShardCounts::default(),
            },
        };
        if shard_summary.status != "done" {
            summary.failed.push(shard_summary.shard.clone());
        }
        summary.total.add(&shard_summary.counts);
        summary.shards.push(shard_summary);
    }
    crate::failpoint::crash_point("merge-jsonl-written");
    let parquet_path = config
        .quarantine
        .join(output_name("manifest", "parquet", config));
    manifest::write_parquet(&manifest_path, &parquet_path)?;
    let summary_path = config
        .quarantine
        .join(output_name("summary", "json", config));
    let mut json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Manifest {
        path: summary_path.clone(),
        reason: e.to_string(),
    })?;
    json.push(b'\n');
    fsutil::write_atomic(&summary_path, &json)?;
    let table_path = config
        .quarantine
        .join(output_name("summary", "txt", config));
    fsutil::write_atomic(&table_path, summary.table().as_bytes())?;
    Ok((
        summary,
        vec![
            manifest_path,
            parquet_path,
            queue_path,
            summary_path,
            table_path,
        ],
    ))
}

/// Maps report-queue ids to vault items, so a rerun after a kill reuses the
/// item it preserved rather than preserving the sample twice. An item is
/// journaled right after the vault stores it; a kill between the two leaves
/// one unreferenced item (never a missing one).
pub(crate) struct EvidenceJournal {
    path: PathBuf,
    items: Mutex<(HashMap<String, EvidenceRef>, Option<File>)>,
}

#[derive(Serialize, Deserialize)]
struct JournalLine {
    id: String,
    evidence: EvidenceRef,
}

impl EvidenceJournal {
    fn open(path: &Path) -> Result<EvidenceJournal> {
        let mut items = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(path) {
            // A torn last line (killed mid-append) is ignored: its item is
            // simply preserved again.
            for line in text.lines() {
                if let Ok(entry) = serde_json::from_str::<JournalLine>(line) {
                    items.insert(entry.id, entry.evidence);
                }
            }
        }
        Ok(EvidenceJournal {
            path: path.to_owned(),
            items: Mutex::new((items, None)),
        })
    }

    fn preserve(&self, vault: &Vault, id: &str, content: &[u8]) -> Result<EvidenceRef> {
        let mut guard = self
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (items, file) = &mut *guard;
        if let Some(existing) = items.get(id)
            && let Ok(item_id) = existing.item_id.parse()
            && vault
                .meta(item_id)
                .is_ok_and(|meta| meta.sha256 == existing.sha256)
        {
            return Ok(existing.clone());
        }
        let meta = vault.put(content, time::OffsetDateTime::now_utc())?;
        let evidence = EvidenceRef {
            item_id: meta.id.to_string(),
            sha256: meta.sha256,
        };
        if file.is_none() {
            let handle = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| Error::io(&self.path, e))?;
            *file = Some(handle);
        }
        if let Some(handle) = file.as_mut() {
            let line = serde_json::to_string(&JournalLine {
                id: id.to_owned(),
                evidence: evidence.clone(),
            })
            .unwrap_or_default();
            writeln!(handle, "{line}").map_err(|e| Error::io(&self.path, e))?;
            handle.sync_data().map_err(|e| Error::io(&self.path, e))?;
        }
        items.insert(id.to_owned(), evidence.clone());
        Ok(evidence)
    }
}
