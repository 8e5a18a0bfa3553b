//! Every bank under a banks directory: create, import, export, change, and
//! look inputs up in all of them at once.
//!
//! A `Banks` is a snapshot: lookups see the banks as of `open` (plus the
//! changes made through this value). Share one behind an `Arc` across
//! threads (it is `Send + Sync`); to pick up other processes' changes, open
//! a fresh one and swap the `Arc`. Mutations take the bank's writer lock,
//! reload it from disk, change it, and replace it in this snapshot.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
};

use childsafe_core::{Category, SignalKind};

use crate::{
    bank::{Bank, BankSettings, COMPACT_AFTER_OPS, DeltaOp, EntryHit, lock},
    entry::{Entry, Signal},
    error::Error,
    flood::{FloodKey, FloodTable, fingerprint},
    formats::{ListFormat, ParsedList, write_list},
    outcome::{BankMatch, ImageSignals, MatchOutcome, apply_suppression},
    pdq::code_of,
};

/// Every bank under a directory.
pub struct Banks {
    dir: PathBuf,
    banks: Vec<Bank>,
    flood: Mutex<HashMap<String, FloodTable>>,
}

impl std::fmt::Debug for Banks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Banks")
            .field("dir", &self.dir)
            .field("banks", &self.banks)
            .finish()
    }
}

/// What an import or add did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Entries added.
    pub added: usize,
    /// Entries skipped because the bank already held the same signal and id.
    pub duplicates: usize,
    /// Rows skipped because the bank cannot hold their signal type.
    pub skipped_unsupported: usize,
    /// True if the bank was compacted into a new segment.
    pub compacted: bool,
}

/// Counts and settings of one bank.
#[derive(Clone, Debug, PartialEq)]
pub struct BankStats {
    /// The bank's name.
    pub name: String,
    /// Its settings.
    pub settings: BankSettings,
    /// Segment generation (0: no segment yet).
    pub generation: u64,
    /// Live entries.
    pub entries: usize,
    /// Live entries that are disabled.
    pub disabled: usize,
    /// Live entries per signal kind.
    pub by_signal: Vec<(SignalKind, usize)>,
    /// Delta operations not yet compacted into the segment.
    pub delta_ops: usize,
    /// PDQ codes in the segment.
    pub pdq_rows: usize,
    /// Index bytes per PDQ code (codes, directories, tables).
    pub pdq_bytes_per_hash: f64,
    /// Largest threshold answered through the multi-index (`None`: queries
    /// scan, see [`crate::IndexLayout::Compact`]).
    pub pdq_indexed_threshold: Option<u32>,
    /// Tracked entries with the most distinct inputs, most first (at most 20).
    pub flood: Vec<FloodStat>,
}

/// Flood counts of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodStat {
    /// The entry's signal.
    pub signal: Signal,
    /// The entry's id.
    pub entry_id: String,
    /// Estimated distinct inputs it matched.
    pub distinct_inputs: u32,
    /// True if at or over the bank's flood threshold.
    pub flagged: bool,
}

/// Checks a bank name: it becomes a directory name.
fn check_bank_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|it| it.is_ascii_alphanumeric() || matches!(it, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadBankName(name.chars().take(80).collect()))
    }
}

impl Banks {
    /// Opens every bank under `dir`. A missing directory holds no banks (it
    /// is created by the first [`Banks::create`]).
    ///
    /// # Errors
    /// An unreadable directory or a corrupt bank (named).
    pub fn open(dir: &Path) -> Result<Banks, Error> {
        let mut banks = Vec::new();
        let mut flood = HashMap::new();
        match std::fs::read_dir(dir) {
            Ok(read) => {
                for item in read {
                    let item = item.map_err(|source| Error::io(dir, source))?;
                    let path = item.path();
                    if !path.join("bank.json").is_file() {
                        continue;
                    }
                    let bank = Bank::open(&path)?;
                    flood.insert(bank.name().to_owned(), FloodTable::load(&path)?);
                    banks.push(bank);
                }
            }
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::io(dir, source)),
        }
        banks.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(Banks {
            dir: dir.to_owned(),
            banks,
            flood: Mutex::new(flood),
        })
    }

    /// The banks directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every bank, by name.
    pub fn banks(&self) -> &[Bank] {
        &self.banks
    }

    /// A bank by name.
    ///
    /// # Errors
    /// [`Error::NoSuchBank`].
    pub fn get(&self, name: &str) -> Result<&Bank, Error> {
        self.banks
            .iter()
            .find(|it| it.name() == name)
            .ok_or_else(|| Error::NoSuchBank(name.to_owned()))
    }

    fn position(&self, name: &str) -> Result<usize, Error> {
        self.banks
            .iter()
            .position(|it| it.name() == name)
            .ok_or_else(|| Error::NoSuchBank(name.to_owned()))
    }

    /// Runs `change` on a freshly reloaded bank under its writer lock and
    /// replaces it in this snapshot.
    fn change<T>(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut Bank) -> Result<T, Error>,
    ) -> Result<T, Error> {
        check_bank_name(name)?;
        let dir = self.dir.join(name);
        if !dir.join("bank.json").is_file() {
            return Err(Error::NoSuchBank(name.to_owned()));
        }
        let _lock = lock(&dir)?;
        let mut bank = Bank::open(&dir)?;
        let res = change(&mut bank)?;
        match self.banks.iter().position(|it| it.name() == name) {
            Some(at) => self.banks[at] = bank,
            None => {
                self.banks.push(bank);
                self.banks.sort_by(|a, b| a.name().cmp(b.name()));
            }
        }
        Ok(res)
    }

    /// Creates an empty bank.
    ///
    /// # Errors
    /// [`Error::BadBankName`], [`Error::BankExists`], bad settings, I/O.
    pub fn create(&mut self, name: &str, settings: BankSettings) -> Result<(), Error> {
        check_bank_name(name)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::io(&self.dir, source))?;
        let bank = Bank::create(&self.dir.join(name), name, settings)?;
        self.banks.push(bank);
        self.banks.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(())
    }

    /// Deletes a bank and its files.
    ///
    /// # Errors
    /// [`Error::NoSuchBank`], I/O.
    pub fn delete(&mut self, name: &str) -> Result<(), Error> {
        check_bank_name(name)?;
        let at = self.position(name)?;
        let dir = self.dir.join(name);
        // Rename first so that readers never see a half-deleted bank.
        let doomed = self
            .dir
            .join(format!(".deleted-{name}-{}", std::process::id()));
        std::fs::rename(&dir, &doomed).map_err(|source| Error::io(&dir, source))?;
        std::fs::remove_dir_all(&doomed).map_err(|source| Error::io(&doomed, source))?;
        self.banks.remove(at);
        Ok(())
    }

    /// Changes a bank's settings (rebuilding its index if the threshold or
    /// layout changed).
    ///
    /// # Errors
    /// [`Error::NoSuchBank`], bad settings, I/O.
    pub fn configure(
        &mut self,
        name: &str,
        update: impl FnOnce(&mut BankSettings),
    ) -> Result<(), Error> {
        self.change(name, |bank| {
            let mut settings = bank.settings().clone();
            update(&mut settings);
            bank.set_settings(settings)
        })
    }

    /// Adds the entries of a parsed list (all or nothing). Entries the bank
    /// already holds (same signal and id) are skipped, so re-importing a list
    /// is harmless. Small imports go to the delta; large ones (and imports
    /// that push the delta past its limit) compact the bank.
    ///
    /// # Errors
    /// [`Error::NoSuchBank`], an invalid entry (named), I/O.
    pub fn import(&mut self, name: &str, list: ParsedList) -> Result<ImportReport, Error> {
        let mut report = self.add(name, list.entries)?;
        report.skipped_unsupported = list.skipped_unsupported;
        Ok(report)
    }

    /// Adds entries (see [`Banks::import`]).
    ///
    /// # Errors
    /// As [`Banks::import`].
    pub fn add(&mut self, name: &str, entries: Vec<Entry>) -> Result<ImportReport, Error> {
        for entry in &entries {
            entry.validate()?;
        }
        self.change(name, |bank| {
            let mut report = ImportReport::default();
            let mut seen = std::collections::HashSet::new();
            let mut fresh = Vec::new();
            for entry in entries {
                if bank.contains(&entry) || !seen.insert((entry.signal, entry.id.clone())) {
                    report.duplicates += 1;
                } else {
                    fresh.push(entry);
                }
            }
            report.added = fresh.len();
            if fresh.is_empty() {
                return Ok(report);
            }
            if bank.delta_ops() + fresh.len() > COMPACT_AFTER_OPS {
                bank.compact_with(fresh)?;
                report.compacted = true;
            } else {
                let ops: Vec<DeltaOp> = fresh.iter().map(DeltaOp::add).collect();
                bank.commit(&ops)?;
            }
            Ok(report)
        })
    }

    fn commit_op(&mut self, name: &str, op: DeltaOp) -> Result<usize, Error> {
        self.change(name, |bank| {
            let touched = bank.commit(std::slice::from_ref(&op))?;
            if bank.delta_ops() > COMPACT_AFTER_OPS {
                bank.compact_with(Vec::new())?;
            }
            Ok(touched.first().copied().unwrap_or(0))
        })
    }

    /// Removes every entry with this id; returns how many.
    ///
    /// # Errors
    /// [`Error::NoSuchEntry`] if none, [`Error::NoSuchBank`], I/O.
    pub fn remove_id(&mut self, name: &str, id: &str) -> Result<usize, Error> {
        let removed = self.commit_op(name, DeltaOp::Remove { id: id.to_owned() })?;
        if removed == 0 {
            return Err(Error::NoSuchEntry {
                bank: name.to_owned(),
                what: format!("with id {id:?}"),
            });
        }
        Ok(removed)
    }

    /// Removes every entry with exactly this hash; returns how many.
    ///
    /// # Errors
    /// As [`Banks::remove_id`].
    pub fn remove_signal(&mut self, name: &str, signal: &Signal) -> Result<usize, Error> {
        let op = DeltaOp::RemoveHash {
            signal: signal.kind(),
            hash: signal.to_string(),
        };
        let removed = self.commit_op(name, op)?;
        if removed == 0 {
            return Err(Error::NoSuchEntry {
                bank: name.to_owned(),
                what: format!("with {} {signal}", signal.kind()),
            });
        }
        Ok(removed)
    }

    /// Enables or disables every entry with this id; returns how many.
    ///
    /// # Errors
    /// As [`Banks::remove_id`].
    pub fn set_entry_enabled(
        &mut self,
        name: &str,
        id: &str,
        enabled: bool,
    ) -> Result<usize, Error> {
        let op = DeltaOp::SetEnabled {
            id: id.to_owned(),
            enabled,
        };
        let touched = self.commit_op(name, op)?;
        if touched == 0 {
            return Err(Error::NoSuchEntry {
                bank: name.to_owned(),
                what: format!("with id {id:?}"),
            });
        }
        Ok(touched)
    }

    /// Folds the delta into a new segment now (otherwise writes do it when
    /// the delta passes 4096 operations).
    ///
    /// # Errors
    /// [`Error::NoSuchBank`], I/O.
    pub fn compact(&mut self, name: &str) -> Result<(), Error> {
        self.change(name, |bank| bank.compact_with(Vec::new()))
    }

    /// Re-reads every byte of the bank's segment and checks its checksum.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file, [`Error::NoSuchBank`].
    pub fn verify(&self, name: &str) -> Result<(), Error> {
        match self.get(name)?.segment_data() {
            Some(seg) => seg.segment().verify(),
            None => Ok(()),
        }
    }

    /// Writes a bank's live entries in a list format.
    ///
    /// # Errors
    /// [`Error::NoSuchBank`], errors of the writer.
    pub fn export(&self, name: &str, format: ListFormat, out: &mut dyn Write) -> Result<(), Error> {
        let bank = self.get(name)?;
        write_list(format, bank.entries(), out).map_err(|source| Error::io(Path::new("-"), source))
    }

    /// Counts and settings of a bank.
    ///
    /// # Errors
    /// [`Error::NoSuchBank`].
    pub fn stats(&self, name: &str) -> Result<BankStats, Error> {
        let bank = self.get(name)?;
        let mut entries = 0;
        let mut disabled = 0;
        let mut by_signal: HashMap<SignalKind, usize> = HashMap::new();
        for entry in bank.entries() {
            entries += 1;
            if !entry.enabled {
                disabled += 1;
            }
            *by_signal.entry(entry.signal.kind()).or_default() += 1;
        }
        let mut by_signal: Vec<(SignalKind, usize)> = by_signal.into_iter().collect();
        by_signal.sort();
        let (pdq_rows, pdq_bytes_per_hash, pdq_indexed_threshold) = match bank.segment_data() {
            Some(seg) => (
                seg.pdq.len(),
                seg.pdq.bytes_per_code(),
                seg.pdq.indexed_threshold(),
            ),
            None => (0, 0.0, None),
        };
        let flood_threshold = bank.settings().flood_threshold;
        let mut flood: Vec<FloodStat> = self
            .flood
            .lock()
            .map(|tables| {
                tables
                    .get(name)
                    .map(|table| {
                        table
                            .entries
                            .iter()
                            .map(|(key, sketch)| {
                                let distinct_inputs = sketch.estimate();
                                FloodStat {
                                    signal: key.signal,
                                    entry_id: key.id.clone(),
                                    distinct_inputs,
                                    flagged: distinct_inputs >= flood_threshold,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        flood.sort_by(|a, b| {
            b.distinct_inputs
                .cmp(&a.distinct_inputs)
                .then_with(|| a.entry_id.cmp(&b.entry_id))
        });
        flood.truncate(20);
        Ok(BankStats {
            name: bank.name().to_owned(),
            settings: bank.settings().clone(),
            generation: bank.generation(),
            entries,
            disabled,
            by_signal,
            delta_ops: bank.delta_ops(),
            pdq_rows,
            pdq_bytes_per_hash,
            pdq_indexed_threshold,
            flood,
        })
    }

    /// Looks one input up in every enabled bank.
    pub fn lookup(&self, signals: &ImageSignals) -> MatchOutcome {
        self.lookup_batch(std::slice::from_ref(signals))
            .pop()
            .unwrap_or_default()
    }

    /// Whether any enabled bank holds hashes of this exact kind (MD5, SHA-1
    /// or SHA-256). A caller hashing many inputs computes only the digests
    /// that can match: an MD5 of every file costs more than its PDQ lookup.
    pub fn matches_exact(&self, kind: SignalKind) -> bool {
        self.banks
            .iter()
            .any(|bank| bank.settings().enabled && bank.holds_exact(kind))
    }

    /// Looks many inputs up together: PDQ hashes go through each index's
    /// batch path (sorted probes merged with the tables), which is several
    /// times faster per input than one lookup at a time.
    pub fn lookup_batch(&self, inputs: &[ImageSignals]) -> Vec<MatchOutcome> {
        let mut per_input: Vec<(Vec<BankMatch>, Vec<BankMatch>)> =
            vec![(Vec::new(), Vec::new()); inputs.len()];
        let mut flood_tables = self.flood.lock().ok();
        for bank in &self.banks {
            let settings = bank.settings();
            if !settings.enabled {
                continue;
            }
            let suppression = settings.kind == crate::bank::BankKind::Suppression;
            let mut hits: Vec<(u32, SignalKind, EntryHit)> = Vec::new();
            let mut queries = Vec::new();
            let mut query_inputs = Vec::new();
            for (input_idx, input) in inputs.iter().enumerate() {
                if let Some((hash, quality)) = &input.pdq
                    && *quality >= settings.quality_floor
                {
                    queries.push(code_of(hash));
                    query_inputs.push(input_idx as u32);
                }
            }
            match queries.len() {
                0 => {}
                1 => {
                    let mut found = Vec::new();
                    bank.lookup_pdq(&queries[0], settings.threshold, &mut found);
                    hits.extend(
                        found
                            .into_iter()
                            .map(|hit| (query_inputs[0], SignalKind::Pdq, hit)),
                    );
                }
                _ => {
                    let mut found = Vec::new();
                    bank.lookup_pdq_batch(&queries, settings.threshold, &mut found);
                    hits.extend(
                        found.into_iter().map(|(query, hit)| {
                            (query_inputs[query as usize], SignalKind::Pdq, hit)
                        }),
                    );
                }
            }
            for (input_idx, input) in inputs.iter().enumerate() {
                let exact = [
                    input.md5.map(Signal::Md5),
                    input.sha1.map(Signal::Sha1),
                    input.sha256.map(Signal::Sha256),
                ];
                for signal in exact.into_iter().flatten() {
                    let mut found = Vec::new();
                    bank.lookup_exact(&signal, &mut found);
                    hits.extend(
                        found
                            .into_iter()
                            .map(|hit| (input_idx as u32, signal.kind(), hit)),
                    );
                }
            }
            for (input_idx, kind, hit) in hits {
                let Some(entry_id) = bank.entry_id(hit.entry) else {
                    continue;
                };
                let input = &inputs[input_idx as usize];
                let mut found = BankMatch {
                    bank: bank.name().to_owned(),
                    signal: kind,
                    entry_id: entry_id.to_owned(),
                    category: bank.entry_category(hit.entry),
                    distance: hit.distance,
                    flood: None,
                };
                if !suppression
                    && let (Some(tables), Some(print), Some(signal)) = (
                        flood_tables.as_mut(),
                        fingerprint(input),
                        entry_signal(bank, hit.entry),
                    )
                {
                    let key = FloodKey {
                        signal,
                        id: found.entry_id.clone(),
                    };
                    let estimate = tables
                        .entry(bank.name().to_owned())
                        .or_default()
                        .record(key, print);
                    if estimate >= settings.flood_threshold {
                        found.flood = Some(estimate);
                    }
                }
                let slot = &mut per_input[input_idx as usize];
                if suppression {
                    slot.1.push(found);
                } else {
                    slot.0.push(found);
                }
            }
        }
        drop(flood_tables);
        per_input
            .into_iter()
            .map(|(mut normal, suppression)| {
                normal.sort_by(|a, b| {
                    (
                        &a.bank,
                        a.distance.map_or(0, |it| it + 1),
                        &a.entry_id,
                        a.signal,
                    )
                        .cmp(&(
                            &b.bank,
                            b.distance.map_or(0, |it| it + 1),
                            &b.entry_id,
                            b.signal,
                        ))
                });
                normal.dedup();
                apply_suppression(normal, &suppression)
            })
            .collect()
    }

    /// Persists the flood counts recorded by lookups (merged with what other
    /// processes saved). Call at the end of a run.
    ///
    /// # Errors
    /// I/O on a bank's `flood.jsonl`.
    pub fn save_flood(&self) -> Result<(), Error> {
        let Ok(mut tables) = self.flood.lock() else {
            return Ok(());
        };
        for (name, table) in tables.iter_mut() {
            if !table.dirty {
                continue;
            }
            let dir = self.dir.join(name);
            if !dir.join("bank.json").is_file() {
                continue;
            }
            let _lock = lock(&dir)?;
            table.save_merged(&dir)?;
            table.dirty = false;
        }
        Ok(())
    }
}

/// The signal of an entry (for flood keys), without decoding its strings.
fn entry_signal(bank: &Bank, entry_idx: u32) -> Option<Signal> {
    bank.entry(entry_idx).map(|it| it.signal)
}

/// Builds entries for [`Banks::add`] from hashes typed by a user.
pub fn entry_from_hash(
    signal: Signal,
    id: Option<&str>,
    source: &str,
    category: Category,
) -> Entry {
    Entry {
        id: id.map_or_else(|| signal.to_string(), str::to_owned),
        signal,
        source: source.to_owned(),
        category,
        added: crate::entry::now_unix(),
        enabled: true,
    }
}
