//! The exact PDQ index over one immutable segment: every code within the
//! threshold, never approximate (a missed match is a missed child).
//!
//! Layout (FORMAT.md, "PDQ index"): codes sorted as 256-bit big-endian
//! integers and split into two arrays of 128-bit halves (`lo`, `hi`), the
//! entry index of each row, and for each indexed partition of the plan
//! ([`plan`]) a directory plus a table of `u32` entries `row << rem | key
//! bits below the directory`. The primary partition (bits at the start of
//! the code) needs no table: the sorted code array is its table.
//!
//! Queries probe every indexed partition with every key within its radius
//! (precomputed masks, [`probe`]), filter table entries on the stored key
//! bits before touching the code array, then verify candidates against the
//! full code. A threshold the plan does not cover is answered by a scan. The
//! batch path puts the probes of thousands of queries in bucket order
//! ([`probe::BucketedProbes`]), merges them with each partition's directory
//! and table in one sequential pass ([`merge`], 16 entries per step with
//! AVX-512), and verifies that partition's candidates at once, fetching the
//! codes ahead.
//!
//! Nothing here does I/O: the segment is already mapped; all access to it is
//! checked (a corrupt file gives fewer results or an error at open, never a
//! panic). Tombstones and disabled entries are the caller's business.

mod code;
mod join;
mod merge;
pub(crate) mod plan;
mod probe;
mod sort;

use std::{ops::Range, sync::Arc};

pub(crate) use crate::pdq::code::{Code, code_of, distance, hash_of};
use crate::{
    error::Error,
    pdq::{
        code::{Half, half_distance, join, window},
        merge::{Candidates, MergeShape, merge_primary, merge_table},
        plan::{Part, Plan, row_bits_for},
        probe::{BucketedProbes, masks},
    },
    segment::{Kind, Segment, SegmentBuilder},
};

/// One code within the threshold of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Hit {
    /// Row in the segment's sorted code array.
    pub(crate) row: u32,
    /// Hamming distance to the query.
    pub(crate) distance: u32,
}

/// Queries answered by one pass of the scan-join (bounds its probe sets to
/// a few tens of MB).
const JOIN_CHUNK: usize = 16384;

/// Probes generated together by the batch path: enough queries that every
/// cache line of a directory and table serves several probes in one pass,
/// few enough that the probe buffers stay at tens of MB.
const BATCH_PROBES: usize = 8 << 20;

/// Batches smaller than this are answered one query at a time.
const SMALL_BATCH: usize = 8;

/// Writes the PDQ sections of a segment for `items` (code, entry index),
/// following `plan`. `items` is sorted in place.
pub(crate) fn build_sections(builder: &mut SegmentBuilder, items: &mut [(Code, u32)], plan: &Plan) {
    items.sort_unstable();
    let n_rows = items.len();
    let lo: Vec<Half> = items.iter().map(|(code, _)| [code[0], code[1]]).collect();
    let hi: Vec<Half> = items.iter().map(|(code, _)| [code[2], code[3]]).collect();
    let rows: Vec<u32> = items.iter().map(|(_, entry)| *entry).collect();

    let mut meta = Vec::new();
    meta.extend_from_slice(&(n_rows as u64).to_le_bytes());
    meta.extend_from_slice(&plan.max_threshold.to_le_bytes());
    meta.extend_from_slice(&(plan.parts.len() as u32).to_le_bytes());
    for part in &plan.parts {
        meta.extend_from_slice(&part.start.to_le_bytes());
        meta.push(part.len);
        meta.push(part.dir_bits);
        meta.push(part.radius as u8);
        meta.extend_from_slice(&[0, 0, 0]);
    }
    builder.add_bytes(Kind::PdqMeta, 0, meta);
    builder.add_halves(Kind::PdqLo, 0, &lo);
    builder.add_halves(Kind::PdqHi, 0, &hi);
    builder.add_u32s(Kind::PdqRows, 0, &rows);

    let row_bits = row_bits_for(n_rows);
    for (part_idx, part) in plan.parts.iter().enumerate() {
        if part.radius < 0 && part_idx > 0 {
            continue;
        }
        let dir_bits = u32::from(part.dir_bits);
        let rem_bits = part.rem_bits();
        let mut counts = vec![0u32; (1usize << dir_bits) + 1];
        let keys: Vec<u32> = items
            .iter()
            .map(|(code, _)| window(code, u32::from(part.start), u32::from(part.len)))
            .collect();
        for key in &keys {
            counts[(key >> rem_bits) as usize + 1] += 1;
        }
        for bucket in 1..counts.len() {
            counts[bucket] += counts[bucket - 1];
        }
        if part_idx > 0 {
            debug_assert!(rem_bits + row_bits <= 32);
            let rem_mask = low_mask(rem_bits);
            let mut entries = vec![0u32; n_rows];
            let mut next = counts.clone();
            for (row, key) in keys.iter().enumerate() {
                let bucket = (key >> rem_bits) as usize;
                entries[next[bucket] as usize] = ((row as u32) << rem_bits) | (key & rem_mask);
                next[bucket] += 1;
            }
            builder.add_u32s(Kind::PdqTable, part_idx as u32, &entries);
        }
        builder.add_u32s(Kind::PdqDir, part_idx as u32, &counts);
    }
}

/// The `bits` lowest bits set.
pub(crate) fn low_mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

/// The PDQ index of one segment.
pub(crate) struct PdqIndex {
    segment: Arc<Segment>,
    plan: Plan,
    n_rows: usize,
    lo: Range<usize>,
    hi: Range<usize>,
    rows: Range<usize>,
    /// Directory and table byte ranges per partition (empty if not indexed).
    tables: Vec<(Range<usize>, Range<usize>)>,
}

impl std::fmt::Debug for PdqIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdqIndex")
            .field("rows", &self.n_rows)
            .field("plan", &self.plan)
            .finish()
    }
}

impl PdqIndex {
    /// Opens the PDQ sections of a segment, checking their sizes.
    pub(crate) fn open(segment: Arc<Segment>) -> Result<PdqIndex, Error> {
        let corrupt = |what: String| Error::Corrupt {
            path: segment.path().map(ToOwned::to_owned).unwrap_or_default(),
            what,
        };
        let meta = segment.bytes(Kind::PdqMeta, 0);
        if meta.is_empty() {
            return Ok(PdqIndex {
                plan: Plan::scan(),
                n_rows: 0,
                lo: 0..0,
                hi: 0..0,
                rows: 0..0,
                tables: Vec::new(),
                segment,
            });
        }
        let word = |at: usize, len: usize| meta.get(at..at + len);
        let (Some(n_rows), Some(n_parts)) = (word(0, 8), word(12, 4)) else {
            return Err(corrupt("pdq meta: too short".into()));
        };
        let n_rows = u64::from_le_bytes(n_rows.try_into().unwrap_or_default()) as usize;
        let n_parts = u32::from_le_bytes(n_parts.try_into().unwrap_or_default()) as usize;
        let mut parts = Vec::new();
        for part_idx in 0..n_parts.min(256) {
            let Some(raw) = word(16 + part_idx * 8, 8) else {
                return Err(corrupt("pdq meta: partitions truncated".into()));
            };
            parts.push(Part {
                start: u16::from_le_bytes([raw[0], raw[1]]),
                len: raw[2],
                dir_bits: raw[3],
                radius: raw[4] as i8,
            });
        }
        let plan = Plan::from_parts(parts, row_bits_for(n_rows))
            .ok_or_else(|| corrupt("pdq meta: partitions do not tile 256 bits".into()))?;
        let lo = segment.range(Kind::PdqLo, 0);
        let hi = segment.range(Kind::PdqHi, 0);
        let rows = segment.range(Kind::PdqRows, 0);
        let (halves, ids) = (n_rows.saturating_mul(16), n_rows.saturating_mul(4));
        if lo.len() != halves || hi.len() != halves || rows.len() != ids {
            return Err(corrupt(format!(
                "pdq arrays: expected {n_rows} rows, got {}/{}/{} bytes",
                lo.len(),
                hi.len(),
                rows.len()
            )));
        }
        let mut tables = Vec::new();
        for (part_idx, part) in plan.parts.iter().enumerate() {
            let indexed = part_idx == 0 || part.radius >= 0;
            if !indexed {
                tables.push((0..0, 0..0));
                continue;
            }
            let dir = segment.range(Kind::PdqDir, part_idx as u32);
            let table = segment.range(Kind::PdqTable, part_idx as u32);
            let dir_len = ((1usize << part.dir_bits) + 1) * 4;
            let table_len = if part_idx == 0 { 0 } else { ids };
            if dir.len() != dir_len || table.len() != table_len {
                return Err(corrupt(format!(
                    "pdq partition {part_idx}: wrong table sizes"
                )));
            }
            tables.push((dir, table));
        }
        Ok(PdqIndex {
            segment,
            plan,
            n_rows,
            lo,
            hi,
            rows,
            tables,
        })
    }

    /// Number of codes.
    pub(crate) fn len(&self) -> usize {
        self.n_rows
    }

    /// The plan the index was built with.
    #[cfg(test)]
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Largest threshold answered through the tables (larger ones scan).
    pub(crate) fn indexed_threshold(&self) -> Option<u32> {
        (!self.plan.is_scan()).then_some(self.plan.max_threshold)
    }

    /// The entry index of a row.
    pub(crate) fn entry_of(&self, row: u32) -> Option<u32> {
        self.segment.u32s_at(&self.rows).get(row as usize).copied()
    }

    /// The code of a row.
    pub(crate) fn code(&self, row: u32) -> Option<Code> {
        let lo = self.segment.halves_at(&self.lo).get(row as usize)?;
        let hi = self.segment.halves_at(&self.hi).get(row as usize)?;
        Some(join(lo, hi))
    }

    /// Bytes of index data per code (codes, directories, tables; not rows).
    pub(crate) fn bytes_per_code(&self) -> f64 {
        if self.n_rows == 0 {
            return 0.0;
        }
        let tables: usize = self
            .tables
            .iter()
            .map(|(dir, table)| dir.len() + table.len())
            .sum();
        (self.lo.len() + self.hi.len() + tables) as f64 / self.n_rows as f64
    }

    /// Appends every row within `threshold` of `query` to `out`, sorted by row.
    pub(crate) fn search(&self, query: &Code, threshold: u32, out: &mut Vec<Hit>) {
        let start = out.len();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has popcnt (checked just above).
            unsafe { self.search_popcnt(query, threshold, out) };
            finish(&mut out[start..]);
            dedup_from(out, start);
            return;
        }
        self.search_impl(query, threshold, out);
        finish(&mut out[start..]);
        dedup_from(out, start);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn search_popcnt(&self, query: &Code, threshold: u32, out: &mut Vec<Hit>) {
        self.search_impl(query, threshold, out);
    }

    #[inline(always)]
    fn search_impl(&self, query: &Code, threshold: u32, out: &mut Vec<Hit>) {
        let lo = self.segment.halves_at(&self.lo);
        let hi = self.segment.halves_at(&self.hi);
        let Some(radii) = self.plan.radii_for(threshold, self.n_rows) else {
            scan(lo, hi, query, threshold, 0, out);
            return;
        };
        let qlo = [query[0], query[1]];
        let qhi = [query[2], query[3]];
        // Taken out of the thread-local (not borrowed in a closure) so that
        // this body stays inside the caller's `target_feature` function.
        let mut scratch = SCRATCH.take();
        let Scratch { probes, candidates } = &mut scratch;
        probes.clear();
        candidates.clear();
        // Probes are software-pipelined: the directory slot of probe `i + 2d`
        // is prefetched, the bucket of probe `i + d` located (its slot is in
        // cache by now) and prefetched, and probe `i` scanned, so that about
        // 2d cache misses are in flight instead of one.
        let mut dirs: [&[u32]; 64] = [&[]; 64];
        let mut tables: [&[u32]; 64] = [&[]; 64];
        for (part_idx, (part, radius)) in self.plan.parts.iter().zip(&radii).enumerate() {
            if *radius < 0 || part_idx >= 64 {
                continue;
            }
            dirs[part_idx] = self.segment.u32s_at(&self.tables[part_idx].0);
            tables[part_idx] = self.segment.u32s_at(&self.tables[part_idx].1);
            let key = window(query, u32::from(part.start), u32::from(part.len));
            let prefix = key >> part.rem_bits();
            for mask in masks(u32::from(part.dir_bits), *radius as u32) {
                probes.push(Probe {
                    part: part_idx as u32,
                    bucket: prefix ^ mask.bits,
                    budget: *radius as u32 - mask.weight,
                    start: 0,
                    end: 0,
                });
            }
        }
        const AHEAD: usize = 32;
        let locate = |probe: &mut Probe| {
            let part_idx = probe.part as usize;
            if let Some(range) = bucket_range(dirs[part_idx], probe.bucket as usize) {
                if part_idx == 0 {
                    prefetch(lo, range.start);
                } else {
                    prefetch(tables[part_idx], range.start);
                }
                probe.start = range.start as u32;
                probe.end = range.end as u32;
            }
        };
        for probe in probes.iter().take(2 * AHEAD) {
            prefetch(dirs[probe.part as usize], probe.bucket as usize);
        }
        for probe_idx in 0..probes.len().min(AHEAD) {
            locate(&mut probes[probe_idx]);
        }
        let mut part_idx = usize::MAX;
        let (mut table, mut rem, mut rem_bits, mut rem_mask, mut len) = (&[][..], 0, 0, 0, 0);
        for probe_idx in 0..probes.len() {
            if let Some(ahead) = probes.get(probe_idx + 2 * AHEAD) {
                prefetch(dirs[ahead.part as usize], ahead.bucket as usize);
            }
            if let Some(ahead) = probes.get_mut(probe_idx + AHEAD) {
                locate(ahead);
            }
            let probe = probes[probe_idx];
            if probe.part as usize != part_idx {
                part_idx = probe.part as usize;
                let part = &self.plan.parts[part_idx];
                len = u32::from(part.len);
                rem_bits = part.rem_bits();
                rem_mask = low_mask(rem_bits);
                rem = window(query, u32::from(part.start), len) & rem_mask;
                table = self.segment.u32s_at(&self.tables[part_idx].1);
            }
            let range = probe.start as usize..probe.end as usize;
            if part_idx == 0 {
                for row in range {
                    let Some(code_lo) = lo.get(row) else { break };
                    let row_key = window(&join(code_lo, &[0, 0]), 0, len);
                    if ((row_key ^ rem) & rem_mask).count_ones() > probe.budget {
                        continue;
                    }
                    let near = half_distance(code_lo, &qlo);
                    if near > threshold {
                        continue;
                    }
                    if let Some(code_hi) = hi.get(row) {
                        let dist = near + half_distance(code_hi, &qhi);
                        if dist <= threshold {
                            out.push(Hit {
                                row: row as u32,
                                distance: dist,
                            });
                        }
                    }
                }
                continue;
            }
            let Some(entries) = table.get(range) else {
                continue;
            };
            for &entry in entries {
                if ((entry ^ rem) & rem_mask).count_ones() <= probe.budget {
                    candidates.push(entry >> rem_bits);
                }
            }
        }
        for (cand_idx, &row) in candidates.iter().enumerate() {
            if let Some(&ahead) = candidates.get(cand_idx + 16) {
                prefetch(lo, ahead as usize);
            }
            let Some(code_lo) = lo.get(row as usize) else {
                continue;
            };
            let near = half_distance(code_lo, &qlo);
            if near > threshold {
                continue;
            }
            if let Some(code_hi) = hi.get(row as usize) {
                let dist = near + half_distance(code_hi, &qhi);
                if dist <= threshold {
                    out.push(Hit {
                        row,
                        distance: dist,
                    });
                }
            }
        }
        SCRATCH.set(scratch);
    }

    /// Appends `(query index, hit)` for every query of `queries` and every
    /// row within `threshold` of it, sorted by query then row.
    pub(crate) fn search_batch(&self, queries: &[Code], threshold: u32, out: &mut Vec<(u32, Hit)>) {
        let start = out.len();
        if queries.len() < SMALL_BATCH {
            // Too few queries to share a pass over the tables (a gateway
            // request with one image): the single path, without the batch
            // path's fixed cost of digit histograms and group walks.
            let mut hits = Vec::new();
            for (query_idx, query) in queries.iter().enumerate() {
                hits.clear();
                self.search(query, threshold, &mut hits);
                out.extend(hits.iter().map(|hit| (query_idx as u32, *hit)));
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has popcnt (checked just above).
            unsafe { self.search_batch_popcnt(queries, threshold, out) };
            out[start..].sort_unstable();
            dedup_pairs_from(out, start);
            return;
        }
        self.search_batch_impl(queries, threshold, out);
        out[start..].sort_unstable();
        dedup_pairs_from(out, start);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn search_batch_popcnt(
        &self,
        queries: &[Code],
        threshold: u32,
        out: &mut Vec<(u32, Hit)>,
    ) {
        self.search_batch_impl(queries, threshold, out);
    }

    #[inline(always)]
    fn search_batch_impl(&self, queries: &[Code], threshold: u32, out: &mut Vec<(u32, Hit)>) {
        let lo = self.segment.halves_at(&self.lo);
        let hi = self.segment.halves_at(&self.hi);
        let Some(radii) = self.plan.radii_for(threshold, self.n_rows) else {
            // No tables for this threshold: a scan-join answers each chunk of
            // queries in one pass over the codes, when that is cheaper than a
            // scan per query.
            let mut hits = Vec::new();
            for (chunk_idx, chunk) in queries.chunks(JOIN_CHUNK).enumerate() {
                let base = (chunk_idx * JOIN_CHUNK) as u32;
                if join::scan_join(lo, hi, chunk, threshold, base, out) {
                    continue;
                }
                for (query_idx, query) in chunk.iter().enumerate() {
                    hits.clear();
                    scan(lo, hi, query, threshold, 0, &mut hits);
                    out.extend(hits.iter().map(|hit| (base + query_idx as u32, *hit)));
                }
            }
            return;
        };
        let max_masks = self
            .plan
            .parts
            .iter()
            .zip(&radii)
            .filter(|(_, radius)| **radius >= 0)
            .map(|(part, radius)| masks(u32::from(part.dir_bits), *radius as u32).len())
            .max()
            .unwrap_or(1);
        let chunk_len = (BATCH_PROBES / max_masks).clamp(16, BucketedProbes::MAX_QUERIES);
        let mut probes = BucketedProbes::default();
        let mut prefixes = Vec::new();
        let mut candidates = Candidates::default();
        let mut query_keys = Vec::new();
        for (chunk_idx, chunk) in queries.chunks(chunk_len).enumerate() {
            let base = (chunk_idx * chunk_len) as u32;
            let query_bits = row_bits_for(chunk.len());
            for (part_idx, (part, radius)) in self.plan.parts.iter().zip(&radii).enumerate() {
                if *radius < 0 {
                    continue;
                }
                let radius = *radius as u32;
                let len = u32::from(part.len);
                let dir_bits = u32::from(part.dir_bits);
                let rem_bits = part.rem_bits();
                query_keys.clear();
                query_keys.extend(chunk.iter().map(|q| window(q, u32::from(part.start), len)));
                prefixes.clear();
                prefixes.extend(query_keys.iter().map(|key| key >> rem_bits));
                probes.fill(&prefixes, masks(dir_bits, radius), dir_bits);
                let (dir, table) = &self.tables[part_idx];
                let dir = self.segment.u32s_at(dir);
                let shape = MergeShape {
                    rem_bits,
                    radius,
                    query_bits,
                };
                candidates.len = 0;
                if part_idx == 0 {
                    merge_primary(&probes, dir, lo, len, &query_keys, shape, &mut candidates);
                } else {
                    let table = self.segment.u32s_at(table);
                    merge_table(&probes, dir, table, &query_keys, shape, &mut candidates);
                }
                verify(
                    lo,
                    hi,
                    chunk,
                    candidates.as_slice(),
                    query_bits,
                    threshold,
                    |query_idx, hit| {
                        out.push((base + query_idx as u32, hit));
                    },
                );
            }
        }
    }
}

/// Checks `(row, query)` candidates (`row << query_bits | query`) against the
/// full codes and reports those within `threshold`. Each partition's
/// candidates are checked as soon as its merge is done, while they are in
/// the cache; the codes are fetched ahead, since the rows are in no order.
#[inline(always)]
fn verify(
    lo: &[Half],
    hi: &[Half],
    queries: &[Code],
    candidates: &[u64],
    query_bits: u32,
    threshold: u32,
    mut report: impl FnMut(usize, Hit),
) {
    const AHEAD: usize = 16;
    let query_mask = (1u64 << query_bits) - 1;
    for (cand_idx, candidate) in candidates.iter().enumerate() {
        if let Some(ahead) = candidates.get(cand_idx + AHEAD) {
            prefetch(lo, (ahead >> query_bits) as usize);
        }
        let row = (candidate >> query_bits) as usize;
        let query_idx = (candidate & query_mask) as usize;
        let (Some(code_lo), Some(query)) = (lo.get(row), queries.get(query_idx)) else {
            continue;
        };
        let near = half_distance(code_lo, &[query[0], query[1]]);
        if near > threshold {
            continue;
        }
        if let Some(code_hi) = hi.get(row) {
            let dist = near + half_distance(code_hi, &[query[2], query[3]]);
            if dist <= threshold {
                report(
                    query_idx,
                    Hit {
                        row: row as u32,
                        distance: dist,
                    },
                );
            }
        }
    }
}

/// One directory probe of a single query: which bucket, how many bits of the
/// radius are left for the bits below the directory, and the bucket's range.
#[derive(Clone, Copy, Debug, Default)]
struct Probe {
    part: u32,
    bucket: u32,
    budget: u32,
    start: u32,
    end: u32,
}

/// Per-thread buffers of the single-query path, reused across queries.
#[derive(Default)]
struct Scratch {
    probes: Vec<Probe>,
    candidates: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// The rows (or entries) of directory bucket `bucket`, if the directory is sane.
#[inline(always)]
fn bucket_range(dir: &[u32], bucket: usize) -> Option<Range<usize>> {
    let start = *dir.get(bucket)? as usize;
    let end = *dir.get(bucket + 1)? as usize;
    (start <= end).then_some(start..end)
}

/// Appends every row of `lo`/`hi` within `threshold` of `query`; row numbers
/// are offset by `first_row`.
#[inline(always)]
pub(crate) fn scan(
    lo: &[Half],
    hi: &[Half],
    query: &Code,
    threshold: u32,
    first_row: u32,
    out: &mut Vec<Hit>,
) {
    let qlo = [query[0], query[1]];
    let qhi = [query[2], query[3]];
    for (row, code_lo) in lo.iter().enumerate() {
        let near = half_distance(code_lo, &qlo);
        if near > threshold {
            continue;
        }
        if let Some(code_hi) = hi.get(row) {
            let dist = near + half_distance(code_hi, &qhi);
            if dist <= threshold {
                out.push(Hit {
                    row: first_row + row as u32,
                    distance: dist,
                });
            }
        }
    }
}

/// Hints the CPU to fetch `items[at]` into the cache.
#[inline(always)]
pub(crate) fn prefetch<T>(items: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = items.get(at) {
        // SAFETY: prefetching is a hint; it never faults, and the pointer is
        // to a live element.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (item as *const T).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (items, at);
}

fn finish(hits: &mut [Hit]) {
    hits.sort_unstable();
}

fn dedup_from(out: &mut Vec<Hit>, start: usize) {
    let mut tail = out.split_off(start);
    tail.dedup_by_key(|hit| hit.row);
    out.append(&mut tail);
}

fn dedup_pairs_from(out: &mut Vec<(u32, Hit)>, start: usize) {
    let mut tail = out.split_off(start);
    tail.dedup_by_key(|(query, hit)| (*query, hit.row));
    out.append(&mut tail);
}

#[cfg(test)]
mod tests;
