//! The batch path of an index without tables (the `compact` layout at large
//! thresholds): one pass over the codes answers a whole batch of queries.
//!
//! The pigeonhole argument of [`super::plan`] works from the other side too:
//! split the code into `m` partitions of `w` bits probed with radius `r`,
//! `m (r + 1) > t`. The probe keys of all queries (every key within `r` of
//! each query's key) go into a bitmap per partition, with a rank directory
//! from each set bit to the queries that probed it. Then every code is read
//! once: its `m` keys are looked up in the bitmaps, and only codes that hit
//! are verified against the queries behind the hit. A batch of a few
//! thousand queries costs about one scan plus the verifications, instead of
//! one scan per query. Exactness is the same argument as for the index.

use crate::pdq::{
    Hit,
    code::{Code, Half, distance, join, window},
    plan::ball,
    prefetch,
    probe::masks,
    sort::radix_sort,
};

/// Widest partition (a 2 MiB bitmap).
const MAX_WIDTH: u32 = 24;
/// Largest radius per partition.
const MAX_RADIUS: u32 = 3;
/// Largest memory for the probe lists of one batch (4 bytes per probe).
const MAX_PROBE_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

/// A choice of partitions for one batch.
#[derive(Clone, Copy, Debug, PartialEq)]
struct JoinPlan {
    width: u32,
    radius: u32,
    parts: u32,
}

/// Per-code and per-probe costs in nanoseconds (reference machine).
const TEST_NS: f64 = 2.0;
const HIT_NS: f64 = 25.0;
const PROBE_NS: f64 = 6.0;
const SCAN_NS: f64 = 1.0;

/// Picks partitions for `n_queries` queries over `n_rows` codes, or `None`
/// if scanning once per query is cheaper.
fn choose(n_rows: usize, n_queries: usize, threshold: u32) -> Option<JoinPlan> {
    let (rows, queries) = (n_rows as f64, n_queries as f64);
    let mut best: Option<(f64, JoinPlan)> = None;
    for width in 8..=MAX_WIDTH {
        for radius in 0..=MAX_RADIUS {
            let parts = (threshold + 1).div_ceil(radius + 1);
            if parts * width > 256 {
                continue;
            }
            let probes = ball(width, radius as i32) * queries;
            if probes * f64::from(parts) * 4.0 > MAX_PROBE_BYTES {
                continue;
            }
            let density = (probes / 2f64.powi(width as i32)).min(1.0);
            let cost = rows * f64::from(parts) * (TEST_NS + density * HIT_NS)
                + f64::from(parts) * probes * PROBE_NS;
            if best.is_none_or(|(best_cost, _)| cost < best_cost) {
                best = Some((
                    cost,
                    JoinPlan {
                        width,
                        radius,
                        parts,
                    },
                ));
            }
        }
    }
    let (cost, plan) = best?;
    (cost < rows * queries * SCAN_NS).then_some(plan)
}

/// One partition's probe set: a bitmap of probed keys, the rank of each
/// bitmap word, and for each distinct probed key the range of its probes.
struct ProbeSet {
    start: u32,
    bitmap: Vec<u64>,
    rank: Vec<u32>,
    starts: Vec<u32>,
    /// `query << 3 | weight`, grouped by key.
    probes: Vec<u32>,
}

impl ProbeSet {
    fn build(queries: &[Code], start: u32, plan: JoinPlan, scratch: &mut Vec<u64>) -> ProbeSet {
        let masks = masks(plan.width, plan.radius);
        let mut keyed: Vec<u64> = Vec::with_capacity(queries.len() * masks.len());
        for (query_idx, query) in queries.iter().enumerate() {
            let key = window(query, start, plan.width);
            for mask in masks {
                keyed.push(
                    (u64::from(key ^ mask.bits) << 32)
                        | ((query_idx as u64) << 3)
                        | u64::from(mask.weight),
                );
            }
        }
        radix_sort(&mut keyed, scratch, 32, 32 + plan.width);
        let words = (1usize << plan.width).div_ceil(64);
        let mut bitmap = vec![0u64; words];
        let mut starts = Vec::new();
        let mut probes = Vec::with_capacity(keyed.len());
        let mut last = u64::MAX;
        for probe in &keyed {
            let key = probe >> 32;
            if key != last {
                starts.push(probes.len() as u32);
                bitmap[(key / 64) as usize] |= 1 << (key % 64);
                last = key;
            }
            probes.push(*probe as u32);
        }
        starts.push(probes.len() as u32);
        let mut rank = Vec::with_capacity(words);
        let mut acc = 0u32;
        for word in &bitmap {
            rank.push(acc);
            acc += word.count_ones();
        }
        ProbeSet {
            start,
            bitmap,
            rank,
            starts,
            probes,
        }
    }

    /// The rank of `key` among the probed keys, if any query probed it.
    #[inline(always)]
    fn rank_of(&self, key: u32) -> Option<u32> {
        let word_idx = (key / 64) as usize;
        let word = *self.bitmap.get(word_idx)?;
        let bit = 1u64 << (key % 64);
        if word & bit == 0 {
            return None;
        }
        Some(self.rank.get(word_idx)? + (word & (bit - 1)).count_ones())
    }

    /// The probes (`query << 3 | weight`) of the key of rank `rank`.
    #[inline(always)]
    fn probes_of(&self, rank: u32) -> &[u32] {
        let rank = rank as usize;
        match (self.starts.get(rank), self.starts.get(rank + 1)) {
            (Some(&from), Some(&to)) => self.probes.get(from as usize..to as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Appends `(base + query, hit)` for every code of `lo`/`hi` within
/// `threshold` of a query (unsorted, possibly with duplicates). Returns
/// false, doing nothing, if scanning once per query would be cheaper.
#[inline(always)]
pub(crate) fn scan_join(
    lo: &[Half],
    hi: &[Half],
    queries: &[Code],
    threshold: u32,
    base: u32,
    out: &mut Vec<(u32, Hit)>,
) -> bool {
    let Some(plan) = choose(lo.len(), queries.len(), threshold) else {
        return false;
    };
    join_with(plan, lo, hi, queries, threshold, base, out);
    true
}

#[inline(always)]
fn join_with(
    plan: JoinPlan,
    lo: &[Half],
    hi: &[Half],
    queries: &[Code],
    threshold: u32,
    base: u32,
    out: &mut Vec<(u32, Hit)>,
) {
    debug_assert!(plan.parts * (plan.radius + 1) > threshold && plan.parts * plan.width <= 256);
    let mut scratch = Vec::new();
    let sets: Vec<ProbeSet> = (0..plan.parts)
        .map(|part| ProbeSet::build(queries, part * plan.width, plan, &mut scratch))
        .collect();
    drop(scratch);
    // Rows go in blocks, in three passes, so that the random bitmap and
    // probe-list accesses of a block overlap instead of waiting on each
    // other: compute every key and prefetch its bitmap word, then test the
    // bits and prefetch the probe ranges of the hits, then verify.
    const BLOCK: usize = 64;
    let mut keys: Vec<u32> = vec![0; BLOCK * sets.len()];
    let mut hits: Vec<(u32, u32, u32)> = Vec::new();
    let mut block_start = 0;
    while block_start < lo.len() {
        let block_end = (block_start + BLOCK).min(lo.len());
        for row in block_start..block_end {
            let (Some(code_lo), Some(code_hi)) = (lo.get(row), hi.get(row)) else {
                break;
            };
            let code = join(code_lo, code_hi);
            for (part, set) in sets.iter().enumerate() {
                let key = window(&code, set.start, plan.width);
                keys[(row - block_start) * sets.len() + part] = key;
                prefetch(&set.bitmap, (key / 64) as usize);
            }
        }
        hits.clear();
        for row in block_start..block_end {
            for (part, set) in sets.iter().enumerate() {
                let key = keys[(row - block_start) * sets.len() + part];
                if let Some(rank) = set.rank_of(key) {
                    prefetch(&set.starts, rank as usize);
                    hits.push((row as u32, part as u32, rank));
                }
            }
        }
        for &(row, part, rank) in &hits {
            let (Some(code_lo), Some(code_hi), Some(set)) = (
                lo.get(row as usize),
                hi.get(row as usize),
                sets.get(part as usize),
            ) else {
                continue;
            };
            let code = join(code_lo, code_hi);
            for probe in set.probes_of(rank) {
                let query_idx = (probe >> 3) as usize;
                let Some(query) = queries.get(query_idx) else {
                    continue;
                };
                let dist = distance(&code, query);
                if dist <= threshold {
                    out.push((
                        base + query_idx as u32,
                        Hit {
                            row,
                            distance: dist,
                        },
                    ));
                }
            }
        }
        block_start = block_end;
    }
}

/// Runs the join with given partitions (tests cover plans the chooser
/// would not pick for small inputs).
#[cfg(test)]
pub(crate) fn join_for_test(
    width: u32,
    radius: u32,
    lo: &[Half],
    hi: &[Half],
    queries: &[Code],
    threshold: u32,
    out: &mut Vec<(u32, Hit)>,
) {
    let plan = JoinPlan {
        width,
        radius,
        parts: (threshold + 1).div_ceil(radius + 1),
    };
    join_with(plan, lo, hi, queries, threshold, 0, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_only_when_cheaper_than_scanning() {
        assert_eq!(choose(10_000_000, 1, 31), None);
        let plan = choose(10_000_000, 4096, 31).unwrap();
        assert!(plan.parts * (plan.radius + 1) > 31, "{plan:?}");
        assert!(plan.parts * plan.width <= 256);
    }
}
