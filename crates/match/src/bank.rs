//! One bank on disk: its settings (`bank.json`), its current immutable
//! segment (`seg-NNNNNN.csb`, memory-mapped), and the delta of changes made
//! since (`delta-NNNNNN/*.jsonl`, one file per atomic batch). See FORMAT.md.
//!
//! Readers never lock: `bank.json` and every segment and delta file are
//! written to a temp file, fsynced and renamed into place, so a reader sees
//! either the old or the new state. Writers take an exclusive lock on
//! `.lock` and reload before changing anything. Compaction writes a new
//! segment from the live entries, points `bank.json` at it, then deletes the
//! old segment and delta files.

use std::{
    collections::HashMap,
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use childsafe_core::{Category, SignalKind};
use serde::{Deserialize, Serialize};

use crate::{
    entry::{Entry, Signal, now_unix},
    error::Error,
    pdq::{Code, code_of, distance, plan},
    segment::{Segment, write_atomic, write_words_atomic},
    store::{SegmentData, write_segment},
};

/// Version of `bank.json` and of the delta files.
pub(crate) const BANK_FORMAT: u32 = 1;
/// Delta operations after which a write compacts the bank (the delta is
/// scanned linearly by every query, so it must stay small).
pub(crate) const COMPACT_AFTER_OPS: usize = 4096;

/// Whether a bank's matches are reported or cancel other matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BankKind {
    /// Matches are findings.
    #[default]
    Normal,
    /// Known benign look-alikes: a match cancels the matches of the same
    /// input in normal banks (see [`crate::MatchOutcome`]).
    Suppression,
}

impl BankKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            BankKind::Normal => "normal",
            BankKind::Suppression => "suppression",
        }
    }
}

/// How much memory the PDQ index may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexLayout {
    /// At most 48 bytes per hash (1.5x the raw 32): codes plus directories,
    /// and tables only where they fit. At threshold 31 no exact multi-index
    /// fits (FORMAT.md, "Index"), so single queries scan and batches are
    /// answered by a scan-join.
    #[default]
    Compact,
    /// At most 128 bytes per hash: a full multi-index (about 76 bytes per
    /// hash at 10M hashes), thousands of queries per second per core.
    Fast,
}

impl IndexLayout {
    /// Bytes per hash for codes, directories and tables.
    pub fn max_bytes_per_hash(self) -> u32 {
        match self {
            IndexLayout::Compact => 48,
            IndexLayout::Fast => 128,
        }
    }

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexLayout::Compact => "compact",
            IndexLayout::Fast => "fast",
        }
    }
}

/// Per-bank settings. Every default is documented on its field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankSettings {
    /// PDQ matches are at most this many bits apart. Default 31.
    pub threshold: u32,
    /// PDQ hashes of lower quality (0-100) do not match. Default 50.
    pub quality_floor: u8,
    /// A disabled bank matches nothing. Default true.
    pub enabled: bool,
    /// Normal or suppression. Default normal.
    pub kind: BankKind,
    /// Memory layout of the PDQ index. Default compact.
    #[serde(default)]
    pub index: IndexLayout,
    /// An entry matched by at least this many distinct inputs is reported as
    /// a likely false-positive source. Default 20.
    #[serde(default = "default_flood_threshold")]
    pub flood_threshold: u32,
}

fn default_flood_threshold() -> u32 {
    20
}

impl Default for BankSettings {
    fn default() -> BankSettings {
        BankSettings {
            threshold: 31,
            quality_floor: 50,
            enabled: true,
            kind: BankKind::Normal,
            index: IndexLayout::Compact,
            flood_threshold: default_flood_threshold(),
        }
    }
}

impl BankSettings {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::BadSetting`] naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        if self.threshold > 256 {
            return Err(Error::BadSetting {
                field: "threshold",
                reason: format!("expected 0 to 256 bits, got {}", self.threshold),
            });
        }
        if self.quality_floor > 100 {
            return Err(Error::BadSetting {
                field: "quality_floor",
                reason: format!("expected 0 to 100, got {}", self.quality_floor),
            });
        }
        if self.flood_threshold == 0 {
            return Err(Error::BadSetting {
                field: "flood_threshold",
                reason: "expected at least 1".into(),
            });
        }
        Ok(())
    }
}

/// `bank.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BankFile {
    pub(crate) format: u32,
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) created: i64,
    pub(crate) settings: BankSettings,
}

/// One line of a delta file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum DeltaOp {
    /// A new entry.
    Add {
        signal: SignalKind,
        hash: String,
        id: String,
        source: String,
        category: Category,
        added: i64,
        enabled: bool,
    },
    /// Removes every entry with this id.
    Remove { id: String },
    /// Removes every entry with this exact hash.
    RemoveHash { signal: SignalKind, hash: String },
    /// Enables or disables every entry with this id.
    SetEnabled { id: String, enabled: bool },
}

impl DeltaOp {
    pub(crate) fn add(entry: &Entry) -> DeltaOp {
        DeltaOp::Add {
            signal: entry.signal.kind(),
            hash: entry.signal.to_string(),
            id: entry.id.clone(),
            source: entry.source.clone(),
            category: entry.category,
            added: entry.added,
            enabled: entry.enabled,
        }
    }
}

/// Changes since the segment, applied in memory.
#[derive(Default)]
struct Delta {
    added: Vec<Entry>,
    /// PDQ codes of `added`, with their global entry index.
    added_pdq: Vec<(Code, u32)>,
    /// Exact hashes of `added` (all kinds), with their global entry index.
    added_exact: HashMap<Signal, Vec<u32>>,
    /// Removed global entry indexes (a bitset).
    removed: Vec<u64>,
    /// Enabled flags changed since the segment.
    enabled: HashMap<u32, bool>,
    n_ops: usize,
    next_seq: u64,
}

/// One bank, as of when it was opened.
pub struct Bank {
    dir: PathBuf,
    file: BankFile,
    seg: Option<SegmentData>,
    delta: Delta,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("name", &self.file.name)
            .field("generation", &self.file.generation)
            .field("settings", &self.file.settings)
            .field("segment", &self.seg)
            .field("delta_ops", &self.delta.n_ops)
            .finish()
    }
}

/// A PDQ or exact match of one query in one bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EntryHit {
    pub(crate) entry: u32,
    pub(crate) distance: Option<u32>,
}

impl Bank {
    /// Creates a bank directory with settings and no entries.
    pub(crate) fn create(dir: &Path, name: &str, settings: BankSettings) -> Result<Bank, Error> {
        settings.validate()?;
        std::fs::create_dir(dir).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                Error::BankExists(name.to_owned())
            } else {
                Error::io(dir, source)
            }
        })?;
        let file = BankFile {
            format: BANK_FORMAT,
            name: name.to_owned(),
            generation: 0,
            created: now_unix(),
            settings,
        };
        write_bank_file(dir, &file)?;
        Bank::open(dir)
    }

    /// Opens a bank: settings, segment and delta. Retries if a concurrent
    /// compaction replaced the files between reading `bank.json` and them.
    pub(crate) fn open(dir: &Path) -> Result<Bank, Error> {
        let mut attempt = 0;
        loop {
            match Bank::open_once(dir) {
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempt < 5 =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                res => return res,
            }
        }
    }

    fn open_once(dir: &Path) -> Result<Bank, Error> {
        let path = dir.join("bank.json");
        let text = std::fs::read(&path).map_err(|source| Error::io(&path, source))?;
        let file: BankFile = serde_json::from_slice(&text).map_err(|err| Error::Corrupt {
            path: path.clone(),
            what: err.to_string(),
        })?;
        if file.format != BANK_FORMAT {
            return Err(Error::Corrupt {
                path,
                what: format!("format: expected {BANK_FORMAT}, got {}", file.format),
            });
        }
        let seg = if file.generation == 0 {
            None
        } else {
            let seg_path = dir.join(segment_name(file.generation));
            Some(SegmentData::open(Arc::new(Segment::open(&seg_path)?))?)
        };
        let mut bank = Bank {
            dir: dir.to_owned(),
            file,
            seg,
            delta: Delta::default(),
        };
        let delta_dir = dir.join(delta_name(bank.file.generation));
        let mut batches: Vec<(u64, PathBuf)> = Vec::new();
        match std::fs::read_dir(&delta_dir) {
            Ok(read) => {
                for item in read {
                    let item = item.map_err(|source| Error::io(&delta_dir, source))?;
                    let name = item.file_name().to_string_lossy().into_owned();
                    if let Some(seq) = name.strip_suffix(".jsonl").and_then(|it| it.parse().ok()) {
                        batches.push((seq, item.path()));
                    }
                }
            }
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::io(&delta_dir, source)),
        }
        batches.sort();
        for (seq, path) in batches {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::io(&path, source))?;
            for (line_idx, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let op: DeltaOp = serde_json::from_str(line).map_err(|err| Error::Corrupt {
                    path: path.clone(),
                    what: format!("line {}: {err}", line_idx + 1),
                })?;
                bank.apply_in_memory(&op).map_err(|what| Error::Corrupt {
                    path: path.clone(),
                    what: format!("line {}: {what}", line_idx + 1),
                })?;
            }
            bank.delta.next_seq = seq + 1;
        }
        Ok(bank)
    }

    /// The bank's name.
    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// The bank's settings.
    pub fn settings(&self) -> &BankSettings {
        &self.file.settings
    }

    pub(crate) fn generation(&self) -> u64 {
        self.file.generation
    }

    pub(crate) fn delta_ops(&self) -> usize {
        self.delta.n_ops
    }

    pub(crate) fn segment_data(&self) -> Option<&SegmentData> {
        self.seg.as_ref()
    }

    fn n_seg(&self) -> u32 {
        self.seg.as_ref().map_or(0, |it| it.len() as u32)
    }

    /// Number of entry slots (live or removed).
    pub(crate) fn n_slots(&self) -> u32 {
        self.n_seg() + self.delta.added.len() as u32
    }

    fn is_removed(&self, entry_idx: u32) -> bool {
        self.delta
            .removed
            .get(entry_idx as usize / 64)
            .is_some_and(|word| word & (1 << (entry_idx % 64)) != 0)
    }

    fn mark_removed(&mut self, entry_idx: u32) {
        let word = entry_idx as usize / 64;
        if self.delta.removed.len() <= word {
            self.delta.removed.resize(word + 1, 0);
        }
        self.delta.removed[word] |= 1 << (entry_idx % 64);
    }

    /// True if the entry exists, is not removed and is enabled.
    pub(crate) fn matches_enabled(&self, entry_idx: u32) -> bool {
        if self.is_removed(entry_idx) || entry_idx >= self.n_slots() {
            return false;
        }
        if let Some(&enabled) = self.delta.enabled.get(&entry_idx) {
            return enabled;
        }
        let n_seg = self.n_seg();
        if entry_idx < n_seg {
            return self.seg.as_ref().is_some_and(|seg| seg.enabled(entry_idx));
        }
        self.delta
            .added
            .get((entry_idx - n_seg) as usize)
            .is_some_and(|it| it.enabled)
    }

    /// The id of an entry (cheaper than decoding it).
    pub(crate) fn entry_id(&self, entry_idx: u32) -> Option<&str> {
        let n_seg = self.n_seg();
        if entry_idx < n_seg {
            return self.seg.as_ref()?.id(entry_idx);
        }
        self.delta
            .added
            .get((entry_idx - n_seg) as usize)
            .map(|it| it.id.as_str())
    }

    /// The category of an entry.
    pub(crate) fn entry_category(&self, entry_idx: u32) -> Category {
        let n_seg = self.n_seg();
        if entry_idx < n_seg {
            return self
                .seg
                .as_ref()
                .map_or(Category::CsamKnown, |seg| seg.category(entry_idx));
        }
        self.delta
            .added
            .get((entry_idx - n_seg) as usize)
            .map_or(Category::CsamKnown, |it| it.category)
    }

    /// A live (not removed) entry, with its current enabled flag.
    pub(crate) fn entry(&self, entry_idx: u32) -> Option<Entry> {
        if self.is_removed(entry_idx) {
            return None;
        }
        let n_seg = self.n_seg();
        let mut entry = if entry_idx < n_seg {
            self.seg.as_ref()?.entry(entry_idx)?
        } else {
            self.delta.added.get((entry_idx - n_seg) as usize)?.clone()
        };
        if let Some(&enabled) = self.delta.enabled.get(&entry_idx) {
            entry.enabled = enabled;
        }
        Some(entry)
    }

    /// Every live entry in entry order.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.n_slots()).filter_map(|entry_idx| self.entry(entry_idx))
    }

    /// Whether any entry (live or not) holds a hash of this exact kind:
    /// when none does, callers can skip computing that digest.
    pub(crate) fn holds_exact(&self, kind: SignalKind) -> bool {
        self.seg.as_ref().is_some_and(|seg| seg.holds_exact(kind))
            || self
                .delta
                .added_exact
                .keys()
                .any(|signal| signal.kind() == kind)
    }

    /// Entry indexes (live or not) holding exactly `signal`.
    fn find_exact(&self, signal: &Signal, out: &mut Vec<u32>) {
        if let Some(seg) = &self.seg {
            seg.find_exact(signal, out);
        }
        if let Some(found) = self.delta.added_exact.get(signal) {
            out.extend(found);
        }
    }

    /// Entry indexes (live or not) with this id.
    fn find_id(&self, id: &str) -> Vec<u32> {
        (0..self.n_slots())
            .filter(|&entry_idx| self.entry_id(entry_idx) == Some(id))
            .collect()
    }

    /// Applies one delta operation to the in-memory state.
    fn apply_in_memory(&mut self, op: &DeltaOp) -> Result<usize, String> {
        self.delta.n_ops += 1;
        match op {
            DeltaOp::Add {
                signal,
                hash,
                id,
                source,
                category,
                added,
                enabled,
            } => {
                let signal = Signal::parse(*signal, hash)?;
                let entry_idx = self.n_slots();
                if let Signal::Pdq(hash) = &signal {
                    self.delta.added_pdq.push((code_of(hash), entry_idx));
                }
                self.delta
                    .added_exact
                    .entry(signal)
                    .or_default()
                    .push(entry_idx);
                self.delta.added.push(Entry {
                    signal,
                    id: id.clone(),
                    source: source.clone(),
                    category: *category,
                    added: *added,
                    enabled: *enabled,
                });
                Ok(1)
            }
            DeltaOp::Remove { id } => {
                let found = self.find_id(id);
                let mut n_removed = 0;
                for entry_idx in found {
                    if !self.is_removed(entry_idx) {
                        self.mark_removed(entry_idx);
                        n_removed += 1;
                    }
                }
                Ok(n_removed)
            }
            DeltaOp::RemoveHash { signal, hash } => {
                let signal = Signal::parse(*signal, hash)?;
                let mut found = Vec::new();
                self.find_exact(&signal, &mut found);
                let mut n_removed = 0;
                for entry_idx in found {
                    if !self.is_removed(entry_idx) {
                        self.mark_removed(entry_idx);
                        n_removed += 1;
                    }
                }
                Ok(n_removed)
            }
            DeltaOp::SetEnabled { id, enabled } => {
                let found: Vec<u32> = self
                    .find_id(id)
                    .into_iter()
                    .filter(|&it| !self.is_removed(it))
                    .collect();
                for &entry_idx in &found {
                    self.delta.enabled.insert(entry_idx, *enabled);
                }
                Ok(found.len())
            }
        }
    }

    /// True if a live entry has the same signal and id (re-imports are idempotent).
    pub(crate) fn contains(&self, entry: &Entry) -> bool {
        let mut found = Vec::new();
        self.find_exact(&entry.signal, &mut found);
        found
            .into_iter()
            .any(|idx| !self.is_removed(idx) && self.entry_id(idx) == Some(entry.id.as_str()))
    }

    /// Writes `ops` as one atomic delta batch and applies them; returns how
    /// many entries each op touched. The caller holds the lock.
    pub(crate) fn commit(&mut self, ops: &[DeltaOp]) -> Result<Vec<usize>, Error> {
        let delta_dir = self.dir.join(delta_name(self.file.generation));
        std::fs::create_dir_all(&delta_dir).map_err(|source| Error::io(&delta_dir, source))?;
        let path = delta_dir.join(format!("{:06}.jsonl", self.delta.next_seq));
        write_atomic(&path, |file| {
            let mut buf = Vec::new();
            for op in ops {
                serde_json::to_writer(&mut buf, op).map_err(std::io::Error::other)?;
                buf.push(b'\n');
            }
            file.write_all(&buf)
        })?;
        self.delta.next_seq += 1;
        let mut res = Vec::with_capacity(ops.len());
        for op in ops {
            let touched = self.apply_in_memory(op).map_err(|what| Error::Corrupt {
                path: path.clone(),
                what,
            })?;
            res.push(touched);
        }
        Ok(res)
    }

    /// Writes a new segment holding the live entries plus `extra`, points
    /// `bank.json` at it and removes the old files. The caller holds the lock.
    pub(crate) fn compact_with(&mut self, extra: Vec<Entry>) -> Result<(), Error> {
        let mut entries: Vec<Entry> = self.entries().collect();
        entries.extend(extra);
        self.rewrite(entries, self.file.settings.clone())
    }

    /// Writes a new generation from `entries` and `settings`.
    pub(crate) fn rewrite(
        &mut self,
        entries: Vec<Entry>,
        settings: BankSettings,
    ) -> Result<(), Error> {
        let n_pdq = entries
            .iter()
            .filter(|it| matches!(it.signal, Signal::Pdq(_)))
            .count();
        let planned = plan::plan(
            n_pdq,
            settings.threshold,
            settings.index.max_bytes_per_hash(),
        );
        let words = write_segment(&entries, &planned);
        drop(entries);
        let old_generation = self.file.generation;
        let generation = old_generation + 1;
        write_words_atomic(&self.dir.join(segment_name(generation)), &words)?;
        drop(words);
        let mut file = self.file.clone();
        file.generation = generation;
        file.settings = settings;
        write_bank_file(&self.dir, &file)?;
        *self = Bank::open(&self.dir)?;
        self.remove_stale_files();
        Ok(())
    }

    /// Rewrites `bank.json` with new settings, rebuilding the index when the
    /// threshold or layout changes its plan.
    pub(crate) fn set_settings(&mut self, settings: BankSettings) -> Result<(), Error> {
        settings.validate()?;
        let old = &self.file.settings;
        let replan = old.threshold != settings.threshold || old.index != settings.index;
        if replan && self.n_slots() > 0 {
            let entries: Vec<Entry> = self.entries().collect();
            return self.rewrite(entries, settings);
        }
        let mut file = self.file.clone();
        file.settings = settings;
        write_bank_file(&self.dir, &file)?;
        self.file = file;
        Ok(())
    }

    /// Deletes segments and delta directories of other generations (left by
    /// a compaction that crashed or by readers' races).
    fn remove_stale_files(&self) {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let keep_seg = segment_name(self.file.generation);
        let keep_delta = delta_name(self.file.generation);
        for item in read.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.starts_with("seg-") && name != keep_seg {
                let _ = std::fs::remove_file(item.path());
            } else if name.starts_with("delta-") && name != keep_delta {
                let _ = std::fs::remove_dir_all(item.path());
            }
        }
    }

    /// PDQ entries within `threshold` of `code` (live and enabled only).
    pub(crate) fn lookup_pdq(&self, code: &Code, threshold: u32, out: &mut Vec<EntryHit>) {
        if let Some(seg) = &self.seg {
            let mut hits = Vec::new();
            seg.pdq.search(code, threshold, &mut hits);
            for hit in hits {
                if let Some(entry) = seg.pdq.entry_of(hit.row)
                    && self.matches_enabled(entry)
                {
                    out.push(EntryHit {
                        entry,
                        distance: Some(hit.distance),
                    });
                }
            }
        }
        for (added, entry) in &self.delta.added_pdq {
            let dist = distance(added, code);
            if dist <= threshold && self.matches_enabled(*entry) {
                out.push(EntryHit {
                    entry: *entry,
                    distance: Some(dist),
                });
            }
        }
    }

    /// PDQ entries within `threshold` of each code: `(query, hit)` pairs.
    pub(crate) fn lookup_pdq_batch(
        &self,
        codes: &[Code],
        threshold: u32,
        out: &mut Vec<(u32, EntryHit)>,
    ) {
        if let Some(seg) = &self.seg {
            let mut hits = Vec::new();
            seg.pdq.search_batch(codes, threshold, &mut hits);
            for (query, hit) in hits {
                if let Some(entry) = seg.pdq.entry_of(hit.row)
                    && self.matches_enabled(entry)
                {
                    out.push((
                        query,
                        EntryHit {
                            entry,
                            distance: Some(hit.distance),
                        },
                    ));
                }
            }
        }
        if !self.delta.added_pdq.is_empty() {
            for (query, code) in codes.iter().enumerate() {
                for (added, entry) in &self.delta.added_pdq {
                    let dist = distance(added, code);
                    if dist <= threshold && self.matches_enabled(*entry) {
                        out.push((
                            query as u32,
                            EntryHit {
                                entry: *entry,
                                distance: Some(dist),
                            },
                        ));
                    }
                }
            }
        }
    }

    /// Exact entries for a cryptographic hash (live and enabled only).
    pub(crate) fn lookup_exact(&self, signal: &Signal, out: &mut Vec<EntryHit>) {
        let mut found = Vec::new();
        self.find_exact(signal, &mut found);
        for entry in found {
            if self.matches_enabled(entry) {
                out.push(EntryHit {
                    entry,
                    distance: None,
                });
            }
        }
    }
}

/// Takes the writer lock of a bank directory (blocking).
pub(crate) fn lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::io(&path, source))?;
    file.lock().map_err(|source| Error::io(&path, source))?;
    Ok(file)
}

fn write_bank_file(dir: &Path, file: &BankFile) -> Result<(), Error> {
    let path = dir.join("bank.json");
    let mut text = serde_json::to_vec_pretty(file).map_err(|err| Error::Corrupt {
        path: path.clone(),
        what: err.to_string(),
    })?;
    text.push(b'\n');
    write_atomic(&path, |out| out.write_all(&text))
}

pub(crate) fn segment_name(generation: u64) -> String {
    format!("seg-{generation:06}.csb")
}

fn delta_name(generation: u64) -> String {
    format!("delta-{generation:06}")
}
