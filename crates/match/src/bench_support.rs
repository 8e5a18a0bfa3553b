//! Hooks for the benchmarks (criterion and `bench/index.sh`) and the fuzz
//! targets: build and query a bare PDQ index over raw codes without bank
//! metadata, and open a segment from untrusted bytes. Not a stable API.

use std::{path::Path, sync::Arc};

use crate::{
    entry::Signal,
    error::Error,
    pdq::{self, Hit, PdqIndex, plan},
    segment::{Segment, SegmentBuilder, write_words_atomic},
    store::SegmentData,
};

/// Opens `bytes` as a bank segment and, if that works, decodes entries and
/// runs exact and PDQ lookups against it. Must never panic (fuzz target).
pub fn open_and_query_segment(bytes: &[u8]) {
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(buf);
    }
    let Ok(segment) = Segment::from_words(words) else {
        return;
    };
    let _ = segment.verify();
    let Ok(data) = SegmentData::open(Arc::new(segment)) else {
        return;
    };
    for entry_idx in 0..data.len().min(64) as u32 {
        let _ = data.entry(entry_idx);
        let _ = data.id(entry_idx);
        let _ = data.enabled(entry_idx);
        let _ = data.category(entry_idx);
    }
    let mut found = Vec::new();
    let probe = childsafe_core::PdqHash([0x5a; 32]);
    data.find_exact(&Signal::Pdq(probe), &mut found);
    data.find_exact(&Signal::Md5(childsafe_core::Md5([0; 16])), &mut found);
    data.find_exact(
        &Signal::Sha256(childsafe_core::Sha256([0xff; 32])),
        &mut found,
    );
    let mut hits = Vec::new();
    for threshold in [0, 8, 31, 64] {
        data.pdq.search(&probe.lanes(), threshold, &mut hits);
    }
    let mut pairs = Vec::new();
    data.pdq
        .search_batch(&[probe.lanes(), [0; 4], [u64::MAX; 4]], 31, &mut pairs);
    for (_, hit) in &pairs {
        let _ = data.pdq.entry_of(hit.row);
        let _ = data.pdq.code(hit.row);
    }
}

/// A bare index over codes given as four big-endian lanes each; entry `i`
/// is the `i`-th code given to [`BareIndex::build`].
pub struct BareIndex(PdqIndex);

impl BareIndex {
    /// Builds an index planned for `max_threshold` within `max_bytes_per_hash`,
    /// in memory.
    ///
    /// # Errors
    /// Never in practice (the bytes are built here); kept for symmetry.
    pub fn build(
        codes: &[[u64; 4]],
        max_threshold: u32,
        max_bytes_per_hash: u32,
    ) -> Result<BareIndex, Error> {
        let words = build_words(codes, max_threshold, max_bytes_per_hash);
        Ok(BareIndex(PdqIndex::open(Arc::new(Segment::from_words(
            words,
        )?))?))
    }

    /// Builds an index and writes it as a segment file (temp, fsync, rename).
    ///
    /// # Errors
    /// I/O.
    pub fn build_to_file(
        codes: &[[u64; 4]],
        max_threshold: u32,
        max_bytes_per_hash: u32,
        path: &Path,
    ) -> Result<(), Error> {
        let words = build_words(codes, max_threshold, max_bytes_per_hash);
        write_words_atomic(path, &words)
    }

    /// Maps a segment file written by [`BareIndex::build_to_file`].
    ///
    /// # Errors
    /// I/O or a corrupt file.
    pub fn open(path: &Path) -> Result<BareIndex, Error> {
        Ok(BareIndex(PdqIndex::open(Arc::new(Segment::open(path)?))?))
    }

    /// Describes the plan.
    pub fn describe(&self) -> String {
        format!("{:?}", self.0)
    }

    /// Index bytes per code (codes, directories, tables).
    pub fn bytes_per_code(&self) -> f64 {
        self.0.bytes_per_code()
    }

    /// Entry indexes within `threshold` of `query`.
    pub fn search(&self, query: &[u64; 4], threshold: u32, out: &mut Vec<u32>) {
        let mut hits: Vec<Hit> = Vec::new();
        self.0.search(query, threshold, &mut hits);
        out.extend(hits.iter().filter_map(|hit| self.0.entry_of(hit.row)));
    }

    /// `(query, entry)` pairs within `threshold`, sorted by query.
    pub fn search_batch(&self, queries: &[[u64; 4]], threshold: u32, out: &mut Vec<(u32, u32)>) {
        let mut hits = Vec::new();
        self.0.search_batch(queries, threshold, &mut hits);
        out.extend(
            hits.iter()
                .filter_map(|(query, hit)| Some((*query, self.0.entry_of(hit.row)?))),
        );
    }
}

fn build_words(codes: &[[u64; 4]], max_threshold: u32, max_bytes_per_hash: u32) -> Vec<u64> {
    let planned = plan::plan(codes.len(), max_threshold, max_bytes_per_hash);
    let mut items: Vec<([u64; 4], u32)> = codes
        .iter()
        .enumerate()
        .map(|(entry, code)| (*code, entry as u32))
        .collect();
    let mut builder = SegmentBuilder::default();
    pdq::build_sections(&mut builder, &mut items, &planned);
    drop(items);
    builder.into_words()
}
