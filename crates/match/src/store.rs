//! The contents of one bank segment: entry records, their strings, the PDQ
//! index and the sorted exact-hash sets, written together and read back from
//! a memory map (FORMAT.md, "Segment file").

use std::{collections::HashMap, ops::Range, sync::Arc};

use childsafe_core::{Category, SignalKind};

use crate::{
    entry::{Entry, Signal},
    error::Error,
    pdq::{self, Code, PdqIndex, code_of, hash_of, plan::Plan},
    segment::{Kind, Segment, SegmentBuilder},
};

const RECORD_BYTES: usize = 32;
const FLAG_ENABLED: u8 = 1;

/// Stable signal numbers in entry records.
fn signal_code(kind: SignalKind) -> u8 {
    match kind {
        SignalKind::Pdq => 0,
        SignalKind::Md5 => 1,
        SignalKind::Sha1 => 2,
        _ => 3,
    }
}

/// Category numbers in records: the index in `Category::ALL` (variants are
/// only ever appended there, so indexes are stable).
fn category_code(category: Category) -> u8 {
    Category::ALL
        .iter()
        .position(|it| *it == category)
        .unwrap_or(0) as u8
}

/// Builds the bytes of a segment holding `entries` (entry index = position).
pub(crate) fn write_segment(entries: &[Entry], plan: &Plan) -> Vec<u64> {
    let mut builder = SegmentBuilder::default();
    let mut pdq_items: Vec<(Code, u32)> = Vec::new();
    let mut md5: Vec<([u8; 16], u32)> = Vec::new();
    let mut sha1: Vec<([u8; 20], u32)> = Vec::new();
    let mut sha256: Vec<([u8; 32], u32)> = Vec::new();
    for (entry_idx, entry) in entries.iter().enumerate() {
        let entry_idx = entry_idx as u32;
        match &entry.signal {
            Signal::Pdq(hash) => pdq_items.push((code_of(hash), entry_idx)),
            Signal::Md5(hash) => md5.push((hash.0, entry_idx)),
            Signal::Sha1(hash) => sha1.push((hash.0, entry_idx)),
            Signal::Sha256(hash) => sha256.push((hash.0, entry_idx)),
        }
    }
    pdq::build_sections(&mut builder, &mut pdq_items, plan);
    let mut value_idx = vec![0u32; entries.len()];
    for (row, (_, entry_idx)) in pdq_items.iter().enumerate() {
        value_idx[*entry_idx as usize] = row as u32;
    }
    add_exact(
        &mut builder,
        Kind::Md5Values,
        Kind::Md5Rows,
        &mut md5,
        &mut value_idx,
    );
    add_exact(
        &mut builder,
        Kind::Sha1Values,
        Kind::Sha1Rows,
        &mut sha1,
        &mut value_idx,
    );
    add_exact(
        &mut builder,
        Kind::Sha256Values,
        Kind::Sha256Rows,
        &mut sha256,
        &mut value_idx,
    );

    let mut sources: Vec<String> = Vec::new();
    let mut source_idx: HashMap<&str, u32> = HashMap::new();
    let mut strings = Vec::new();
    let mut records = Vec::with_capacity(entries.len() * RECORD_BYTES);
    for (entry_idx, entry) in entries.iter().enumerate() {
        let source = *source_idx.entry(entry.source.as_str()).or_insert_with(|| {
            sources.push(entry.source.clone());
            (sources.len() - 1) as u32
        });
        let id_off = strings.len() as u64;
        strings.extend_from_slice(entry.id.as_bytes());
        records.push(signal_code(entry.signal.kind()));
        records.push(category_code(entry.category));
        records.push(if entry.enabled { FLAG_ENABLED } else { 0 });
        records.push(0);
        records.extend_from_slice(&value_idx[entry_idx].to_le_bytes());
        records.extend_from_slice(&source.to_le_bytes());
        records.extend_from_slice(&(entry.id.len() as u32).to_le_bytes());
        records.extend_from_slice(&id_off.to_le_bytes());
        records.extend_from_slice(&entry.added.to_le_bytes());
    }
    builder.add_bytes(Kind::Entries, 0, records);
    builder.add_bytes(Kind::Strings, 0, strings);
    builder.add_bytes(
        Kind::Sources,
        0,
        serde_json::to_vec(&sources).unwrap_or_default(),
    );
    builder.into_words()
}

fn add_exact<const N: usize>(
    builder: &mut SegmentBuilder,
    values_kind: Kind,
    rows_kind: Kind,
    items: &mut [([u8; N], u32)],
    value_idx: &mut [u32],
) {
    items.sort_unstable();
    let mut values = Vec::with_capacity(items.len() * N);
    let mut rows = Vec::with_capacity(items.len());
    for (row, (value, entry_idx)) in items.iter().enumerate() {
        values.extend_from_slice(value);
        rows.push(*entry_idx);
        value_idx[*entry_idx as usize] = row as u32;
    }
    builder.add_bytes(values_kind, 0, values);
    builder.add_u32s(rows_kind, 0, &rows);
}

/// A sorted set of fixed-width hashes and the entry of each.
struct ExactSet {
    width: usize,
    values: Range<usize>,
    rows: Range<usize>,
}

impl ExactSet {
    fn open(segment: &Segment, width: usize, values: Kind, rows: Kind) -> Result<ExactSet, Error> {
        let set = ExactSet {
            width,
            values: segment.range(values, 0),
            rows: segment.range(rows, 0),
        };
        if !set.values.len().is_multiple_of(width) || set.values.len() / width * 4 != set.rows.len()
        {
            return Err(Error::Corrupt {
                path: segment.path().map(ToOwned::to_owned).unwrap_or_default(),
                what: format!("exact set {values:?}: sizes disagree"),
            });
        }
        Ok(set)
    }

    fn len(&self) -> usize {
        self.values.len() / self.width
    }

    fn value<'a>(&self, segment: &'a Segment, idx: usize) -> Option<&'a [u8]> {
        let start = self.values.start + idx * self.width;
        segment_bytes(segment, start..start + self.width)
    }

    /// Entry indexes holding `value`.
    fn find(&self, segment: &Segment, value: &[u8], out: &mut Vec<u32>) {
        let rows = segment.u32s_at(&self.rows);
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.value(segment, mid) {
                Some(here) if here < value => lo = mid + 1,
                _ => hi = mid,
            }
        }
        while let Some(here) = self.value(segment, lo) {
            if here != value {
                break;
            }
            if let Some(&entry_idx) = rows.get(lo) {
                out.push(entry_idx);
            }
            lo += 1;
        }
    }
}

fn segment_bytes(segment: &Segment, range: Range<usize>) -> Option<&[u8]> {
    segment.whole().get(range)
}

/// A mapped segment: entries, the PDQ index and the exact sets.
pub(crate) struct SegmentData {
    segment: Arc<Segment>,
    pub(crate) pdq: PdqIndex,
    md5: ExactSet,
    sha1: ExactSet,
    sha256: ExactSet,
    records: Range<usize>,
    strings: Range<usize>,
    sources: Vec<String>,
    n_entries: usize,
}

impl std::fmt::Debug for SegmentData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentData")
            .field("entries", &self.n_entries)
            .field("pdq", &self.pdq)
            .finish()
    }
}

impl SegmentData {
    /// Reads the sections of an open segment.
    pub(crate) fn open(segment: Arc<Segment>) -> Result<SegmentData, Error> {
        let corrupt = |what: String| Error::Corrupt {
            path: segment.path().map(ToOwned::to_owned).unwrap_or_default(),
            what,
        };
        let records = segment.range(Kind::Entries, 0);
        if !records.len().is_multiple_of(RECORD_BYTES) {
            return Err(corrupt("entries: not a whole number of records".into()));
        }
        let sources: Vec<String> = serde_json::from_slice(segment.bytes(Kind::Sources, 0))
            .map_err(|err| corrupt(format!("sources: {err}")))?;
        let pdq = PdqIndex::open(segment.clone())?;
        let md5 = ExactSet::open(&segment, 16, Kind::Md5Values, Kind::Md5Rows)?;
        let sha1 = ExactSet::open(&segment, 20, Kind::Sha1Values, Kind::Sha1Rows)?;
        let sha256 = ExactSet::open(&segment, 32, Kind::Sha256Values, Kind::Sha256Rows)?;
        Ok(SegmentData {
            n_entries: records.len() / RECORD_BYTES,
            strings: segment.range(Kind::Strings, 0),
            records,
            sources,
            pdq,
            md5,
            sha1,
            sha256,
            segment,
        })
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.n_entries
    }

    /// The segment (for verification).
    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }

    fn record(&self, entry_idx: u32) -> Option<&[u8]> {
        let start = self.records.start + entry_idx as usize * RECORD_BYTES;
        if entry_idx as usize >= self.n_entries {
            return None;
        }
        segment_bytes(&self.segment, start..start + RECORD_BYTES)
    }

    /// The id of an entry, without decoding the rest.
    pub(crate) fn id(&self, entry_idx: u32) -> Option<&str> {
        let record = self.record(entry_idx)?;
        let len = u32::from_le_bytes(record[12..16].try_into().ok()?) as usize;
        let off = u64::from_le_bytes(record[16..24].try_into().ok()?) as usize;
        let start = self.strings.start.checked_add(off)?;
        let end = start.checked_add(len)?;
        if end > self.strings.end {
            return None;
        }
        std::str::from_utf8(segment_bytes(&self.segment, start..end)?).ok()
    }

    /// Whether an entry is enabled in the segment.
    pub(crate) fn enabled(&self, entry_idx: u32) -> bool {
        self.record(entry_idx)
            .is_some_and(|record| record[2] & FLAG_ENABLED != 0)
    }

    /// The category of an entry.
    pub(crate) fn category(&self, entry_idx: u32) -> Category {
        self.record(entry_idx)
            .and_then(|record| Category::ALL.get(usize::from(record[1])).copied())
            .unwrap_or(Category::CsamKnown)
    }

    /// Decodes an entry; `None` if the record is damaged.
    pub(crate) fn entry(&self, entry_idx: u32) -> Option<Entry> {
        let record = self.record(entry_idx)?;
        let value_idx = u32::from_le_bytes(record[4..8].try_into().ok()?);
        let source_idx = u32::from_le_bytes(record[8..12].try_into().ok()?) as usize;
        let added = i64::from_le_bytes(record[24..32].try_into().ok()?);
        let signal = match record[0] {
            0 => Signal::Pdq(hash_of(&self.pdq.code(value_idx)?)),
            1 => Signal::Md5(childsafe_core::Md5(
                self.md5
                    .value(&self.segment, value_idx as usize)?
                    .try_into()
                    .ok()?,
            )),
            2 => Signal::Sha1(childsafe_core::Sha1(
                self.sha1
                    .value(&self.segment, value_idx as usize)?
                    .try_into()
                    .ok()?,
            )),
            3 => Signal::Sha256(childsafe_core::Sha256(
                self.sha256
                    .value(&self.segment, value_idx as usize)?
                    .try_into()
                    .ok()?,
            )),
            _ => return None,
        };
        Some(Entry {
            signal,
            id: self.id(entry_idx)?.to_owned(),
            source: self.sources.get(source_idx)?.clone(),
            category: Category::ALL.get(usize::from(record[1])).copied()?,
            added,
            enabled: record[2] & FLAG_ENABLED != 0,
        })
    }

    /// Entry indexes whose exact hash equals `signal` (PDQ: distance 0).
    /// Whether the segment holds any hash of this exact kind (MD5, SHA-1 or
    /// SHA-256; `false` for the others).
    pub(crate) fn holds_exact(&self, kind: SignalKind) -> bool {
        match kind {
            SignalKind::Md5 => self.md5.len() > 0,
            SignalKind::Sha1 => self.sha1.len() > 0,
            SignalKind::Sha256 => self.sha256.len() > 0,
            _ => false,
        }
    }

    pub(crate) fn find_exact(&self, signal: &Signal, out: &mut Vec<u32>) {
        match signal {
            Signal::Pdq(hash) => {
                let mut hits = Vec::new();
                self.pdq.search(&code_of(hash), 0, &mut hits);
                out.extend(hits.iter().filter_map(|hit| self.pdq.entry_of(hit.row)));
            }
            Signal::Md5(hash) => self.md5.find(&self.segment, &hash.0, out),
            Signal::Sha1(hash) => self.sha1.find(&self.segment, &hash.0, out),
            Signal::Sha256(hash) => self.sha256.find(&self.segment, &hash.0, out),
        }
    }
}
