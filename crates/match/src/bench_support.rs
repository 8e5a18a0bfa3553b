//! Hooks for the benchmarks (criterion and `bench/index.sh`): build and query
//! a bare PDQ index over raw codes without bank metadata. Not a stable API.

use std::sync::Arc;

use crate::{
    pdq::{self, Hit, PdqIndex, plan},
    segment::{Segment, SegmentBuilder},
};

/// A bare index over codes given as four big-endian lanes each.
pub struct BareIndex(PdqIndex);

impl BareIndex {
    /// Builds an index planned for `max_threshold` within `max_bytes_per_hash`.
    pub fn build(codes: &[[u64; 4]], max_threshold: u32, max_bytes_per_hash: u32) -> BareIndex {
        let planned = plan::plan(codes.len(), max_threshold, max_bytes_per_hash);
        let mut items: Vec<([u64; 4], u32)> = codes
            .iter()
            .enumerate()
            .map(|(entry, code)| (*code, entry as u32))
            .collect();
        let mut builder = SegmentBuilder::default();
        pdq::build_sections(&mut builder, &mut items, &planned);
        let segment = Segment::from_words(builder.into_words()).unwrap_or_else(|_| unreachable!());
        BareIndex(PdqIndex::open(Arc::new(segment)).unwrap_or_else(|_| unreachable!()))
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

    /// `(query, entry)` pairs within `threshold`.
    pub fn search_batch(&self, queries: &[[u64; 4]], threshold: u32, out: &mut Vec<(u32, u32)>) {
        let mut hits = Vec::new();
        self.0.search_batch(queries, threshold, &mut hits);
        out.extend(
            hits.iter()
                .filter_map(|(query, hit)| Some((*query, self.0.entry_of(hit.row)?))),
        );
    }
}
