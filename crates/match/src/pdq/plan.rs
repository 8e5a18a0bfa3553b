//! Choosing how to split the 256 bits into multi-index partitions, from the
//! number of codes, the threshold and the memory budget.
//!
//! The generalised pigeonhole principle makes the index exact: split the code
//! into disjoint bit ranges (partitions) and give each a radius `r_j` (-1 for
//! a range that is not indexed at all). If `sum(r_j + 1) > threshold`, any
//! code within `threshold` bits of the query is within `r_j` bits of it on at
//! least one partition `j`, so probing every partition's table with every key
//! within `r_j` of the query's key finds it. Verification against the full
//! code then removes the candidates that are further away.
//!
//! Partition 0 is the primary: codes are stored sorted, so its table is the
//! code array itself plus a directory. Every other indexed partition costs a
//! table of `u32` entries (row id and the key bits below the directory) and a
//! directory. The planner minimises a per-query cost model (random directory
//! probes, sequential entry checks, random candidate fetches) over all
//! partitionings that fit the memory budget, and compares it with a flat scan.
//! Under a tight budget no partitioning reaches a large threshold and the plan
//! is a scan: that is still exact, only slower (see FORMAT.md, "Index").

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

/// Widest partition key, in bits.
pub(crate) const MAX_PART_BITS: u32 = 32;
/// Largest radius the planner gives a partition (the ball grows as `len^r`).
const MAX_RADIUS: i32 = 4;
/// Below this many codes a scan is always cheapest.
const SCAN_BELOW: usize = 256;
/// Largest directory, in bits (16 MiB of offsets).
const MAX_DIR_BITS: u32 = 22;

/// One partition: a bit range of the code and the radius it is probed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// First bit (0 is the first bit of the hex string).
    pub(crate) start: u16,
    /// Width in bits, 1..=32.
    pub(crate) len: u8,
    /// Bits of the key resolved by the directory; the rest are stored in the
    /// table entries (or, for the primary, read from the code).
    pub(crate) dir_bits: u8,
    /// Radius the index was planned for; -1 means no table.
    pub(crate) radius: i8,
}

impl Part {
    /// Key bits stored in table entries below the directory.
    pub(crate) fn rem_bits(&self) -> u32 {
        u32::from(self.len) - u32::from(self.dir_bits)
    }
}

/// A partitioning of the 256 bits. Empty means "scan".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Partitions in bit order; `parts[0]` starts at bit 0 and is the primary.
    pub(crate) parts: Vec<Part>,
    /// Largest threshold the partitions cover: `sum(radius + 1) - 1`.
    pub(crate) max_threshold: u32,
}

impl Plan {
    /// The plan that indexes nothing: every query scans.
    pub(crate) fn scan() -> Plan {
        Plan {
            parts: Vec::new(),
            max_threshold: 0,
        }
    }

    /// True if queries scan every code.
    pub(crate) fn is_scan(&self) -> bool {
        self.parts.is_empty()
    }

    /// Builds a plan from partitions, checking that they tile 256 bits and
    /// that table entries can hold a row id of `row_bits` bits.
    pub(crate) fn from_parts(parts: Vec<Part>, row_bits: u32) -> Option<Plan> {
        if parts.is_empty() {
            return Some(Plan::scan());
        }
        let mut next = 0u32;
        let mut credits = 0i32;
        for (part_idx, part) in parts.iter().enumerate() {
            let len = u32::from(part.len);
            if u32::from(part.start) != next
                || len == 0
                || len > MAX_PART_BITS
                || part.dir_bits == 0
                || part.dir_bits > part.len
                || u32::from(part.dir_bits) > MAX_DIR_BITS
                || part.radius < -1
                || i32::from(part.radius) > MAX_RADIUS
            {
                return None;
            }
            if part_idx > 0 && part.radius >= 0 && part.rem_bits() + row_bits > 32 {
                return None;
            }
            next += len;
            credits += i32::from(part.radius) + 1;
        }
        if next != 256 || credits < 1 {
            return None;
        }
        Some(Plan {
            parts,
            max_threshold: (credits - 1) as u32,
        })
    }

    /// Radii to probe with for `threshold`, or `None` if the partitions do
    /// not cover it (the caller scans). Radii are lowered from the planned
    /// ones, most expensive first, while `sum(r + 1) > threshold` still holds.
    pub(crate) fn radii_for(&self, threshold: u32, n_rows: usize) -> Option<Vec<i8>> {
        if self.is_scan() || threshold > self.max_threshold {
            return None;
        }
        let mut radii: Vec<i8> = self.parts.iter().map(|part| part.radius).collect();
        let mut credits: i32 = radii.iter().map(|&r| i32::from(r) + 1).sum();
        let need = threshold as i32 + 1;
        let model = CostModel::default();
        while credits > need {
            let cheapest_cut = radii
                .iter()
                .enumerate()
                .filter(|(_, r)| **r >= 0)
                .max_by(|(a_idx, a_r), (b_idx, b_r)| {
                    let saving = |idx: usize, radius: i8| {
                        let part = &self.parts[idx];
                        model.part_cost(part, idx == 0, i32::from(radius), n_rows)
                            - model.part_cost(part, idx == 0, i32::from(radius) - 1, n_rows)
                    };
                    saving(*a_idx, **a_r).total_cmp(&saving(*b_idx, **b_r))
                })
                .map(|(idx, _)| idx)?;
            radii[cheapest_cut] -= 1;
            credits -= 1;
        }
        Some(radii)
    }
}

/// The number of directory bits for `n_rows` codes: about `n / 8` buckets.
#[cfg(test)]
pub(crate) fn dir_bits_for(n_rows: usize) -> u32 {
    row_bits_for(n_rows)
        .saturating_sub(3)
        .clamp(1, MAX_DIR_BITS)
}

/// Bits needed for a row id of `n_rows` rows.
pub(crate) fn row_bits_for(n_rows: usize) -> u32 {
    (usize::BITS - n_rows.saturating_sub(1).leading_zeros()).max(1)
}

/// Per-query cost of the operations of a query, in nanoseconds, measured on
/// the reference machine with the batch path (README, "Index"): a probe is
/// generated, put in bucket order and its directory slot read; a step checks
/// up to 16 entries of a bucket at once (one AVX-512 compare, so a bucket of
/// 2 entries costs as much as one of 16); a primary row check reads 16
/// bytes of a code; a candidate is a prefetched fetch of a code; and a scan
/// reads 16 bytes of every code at memory bandwidth.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CostModel {
    pub(crate) probe: f64,
    pub(crate) step: f64,
    pub(crate) row: f64,
    pub(crate) candidate: f64,
    pub(crate) scan_row: f64,
}

impl Default for CostModel {
    fn default() -> CostModel {
        CostModel {
            probe: 8.0,
            step: 8.0,
            row: 1.5,
            candidate: 16.0,
            scan_row: 1.0,
        }
    }
}

impl CostModel {
    fn part_cost(&self, part: &Part, primary: bool, radius: i32, n_rows: usize) -> f64 {
        self.cost(
            u32::from(part.len),
            u32::from(part.dir_bits),
            radius,
            primary,
            n_rows,
        )
    }

    fn cost(&self, len: u32, dir_bits: u32, radius: i32, primary: bool, n_rows: usize) -> f64 {
        if radius < 0 {
            return 0.0;
        }
        let n = n_rows as f64;
        let probes = ball(dir_bits, radius);
        let per_bucket = n / 2f64.powi(dir_bits as i32);
        let candidates = ball(len, radius) * n / 2f64.powi(len as i32);
        let check = if primary {
            per_bucket * self.row
        } else {
            // Expected 16-entry steps over a bucket of Poisson(per_bucket)
            // entries: at least one if the bucket is not empty.
            let nonempty = 1.0 - (-per_bucket).exp();
            (per_bucket / 16.0 + 0.5 * nonempty).max(nonempty) * self.step
        };
        probes * (self.probe + check) + candidates * self.candidate
    }
}

/// Number of keys within `radius` of a `bits`-bit key.
pub(crate) fn ball(bits: u32, radius: i32) -> f64 {
    let mut acc = 0.0;
    let mut term = 1.0;
    for k in 0..=radius.min(bits as i32) {
        if k > 0 {
            term = term * f64::from(bits - (k as u32) + 1) / f64::from(k as u32);
        }
        acc += term;
    }
    acc
}

/// Plans an index of `n_rows` codes for thresholds up to `max_threshold`
/// within `max_bytes_per_hash` bytes per code (codes, directories and tables;
/// the row-to-entry ids are not counted).
pub(crate) fn plan(n_rows: usize, max_threshold: u32, max_bytes_per_hash: u32) -> Plan {
    if n_rows < SCAN_BELOW || max_threshold >= 256 {
        return Plan::scan();
    }
    let row_bits = row_bits_for(n_rows);
    let key = (row_bits, max_threshold, max_bytes_per_hash);
    type PlanCache = Mutex<HashMap<(u32, u32, u32), Plan>>;
    static CACHE: OnceLock<PlanCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(plan) = cache.lock().ok().and_then(|it| it.get(&key).cloned()) {
        return plan;
    }
    // Plan for the power of two above n: plans change with the row bits only.
    let res = plan_uncached(1usize << row_bits, max_threshold, max_bytes_per_hash);
    if let Ok(mut it) = cache.lock() {
        it.insert(key, res.clone());
    }
    res
}

fn plan_uncached(n_rows: usize, max_threshold: u32, max_bytes_per_hash: u32) -> Plan {
    plan_with_model(
        CostModel::default(),
        n_rows,
        max_threshold,
        max_bytes_per_hash,
    )
}

fn plan_with_model(
    model: CostModel,
    n_rows: usize,
    max_threshold: u32,
    max_bytes_per_hash: u32,
) -> Plan {
    // Bigger buckets mean fewer random probes but more sequential entry
    // checks; try directories of n/32 to n/4 buckets and keep the cheapest.
    let row_bits = row_bits_for(n_rows);
    let scan_cost = n_rows as f64 * model.scan_row;
    (2..=5)
        .map(|shift| row_bits.saturating_sub(shift).clamp(1, MAX_DIR_BITS))
        .filter_map(|dir_bits| {
            plan_with_dir(model, n_rows, max_threshold, max_bytes_per_hash, dir_bits)
        })
        .filter(|(_, cost)| *cost < scan_cost)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or_else(Plan::scan, |(plan, _)| plan)
}

/// The cheapest plan with directories of `dir_bits` bits, and its cost.
fn plan_with_dir(
    model: CostModel,
    n_rows: usize,
    max_threshold: u32,
    max_bytes_per_hash: u32,
    dir_bits: u32,
) -> Option<(Plan, f64)> {
    let row_bits = row_bits_for(n_rows);
    let n = n_rows as f64;
    let dir_bytes_per_row = 4.0 * (2f64.powi(dir_bits as i32) + 1.0) / n;
    let table_bytes_per_row = 4.0 + dir_bytes_per_row;
    let spare = f64::from(max_bytes_per_hash) - 32.0 - dir_bytes_per_row;
    if spare < 0.0 {
        return None;
    }
    let max_tables = ((spare / table_bytes_per_row).floor() as usize).min(24);
    let need = max_threshold as usize + 1;
    let max_len_table = (dir_bits + 32 - row_bits).min(MAX_PART_BITS);

    // best[pos][credits][tables] = (cost, choice) for covering bits 0..pos.
    const NONE: (f64, u16, u8, i8) = (f64::INFINITY, 0, 0, 0);
    let states = 257 * (need + 1) * (max_tables + 1);
    let idx = |pos: usize, credits: usize, tables: usize| {
        (pos * (need + 1) + credits) * (max_tables + 1) + tables
    };
    // (cost, previous position, len, radius); credits/tables recomputed on walk-back.
    let mut best = vec![NONE; states];
    best[idx(0, 0, 0)] = (0.0, 0, 0, 0);
    for pos in 0..256usize {
        for credits in 0..=need {
            for tables in 0..=max_tables {
                let (cost, ..) = best[idx(pos, credits, tables)];
                if !cost.is_finite() {
                    continue;
                }
                let primary = pos == 0;
                let max_len = if primary {
                    MAX_PART_BITS
                } else {
                    max_len_table
                };
                for len in 1..=max_len.min(256 - pos as u32) {
                    for radius in -1..=MAX_RADIUS {
                        let uses_table = !primary && radius >= 0;
                        let new_tables = tables + usize::from(uses_table);
                        if new_tables > max_tables {
                            continue;
                        }
                        let dir = len.min(dir_bits);
                        let new_cost = cost + model.cost(len, dir, radius, primary, n_rows);
                        let new_credits = (credits + (radius + 1) as usize).min(need);
                        let new_pos = pos + len as usize;
                        let slot = &mut best[idx(new_pos, new_credits, new_tables)];
                        if new_cost < slot.0 {
                            *slot = (new_cost, pos as u16, len as u8, radius as i8);
                        }
                    }
                }
            }
        }
    }
    let (tables, cost) = (0..=max_tables)
        .map(|tables| (tables, best[idx(256, need, tables)].0))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    if !cost.is_finite() {
        return None;
    }
    // Walk back. Credits are not stored per step, so search the predecessor
    // state whose cost plus this step matches.
    let mut parts = Vec::new();
    let (mut pos, mut credits, mut tables) = (256usize, need, tables);
    while pos > 0 {
        let (cost_here, prev_pos, len, radius) = best[idx(pos, credits, tables)];
        let primary = prev_pos == 0;
        let uses_table = !primary && radius >= 0;
        let prev_tables = tables - usize::from(uses_table);
        let step = model.cost(
            u32::from(len),
            u32::from(len).min(dir_bits),
            i32::from(radius),
            primary,
            n_rows,
        );
        let gained = (i32::from(radius) + 1) as usize;
        let prev_credits = (0..=credits)
            .filter(|&c| (c + gained).min(need) == credits)
            .find(|&c| {
                let prev = best[idx(prev_pos as usize, c, prev_tables)].0;
                (prev + step - cost_here).abs() <= 1e-9 * cost_here.max(1.0)
            });
        let Some(prev_credits) = prev_credits else {
            debug_assert!(false, "plan walk-back lost its way");
            return None;
        };
        parts.push(Part {
            start: prev_pos,
            len,
            dir_bits: u32::from(len).min(dir_bits) as u8,
            radius,
        });
        pos = prev_pos as usize;
        credits = prev_credits;
        tables = prev_tables;
    }
    parts.reverse();
    Some((Plan::from_parts(parts, row_bits)?, cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ball_counts_keys() {
        assert_eq!(ball(16, 1), 17.0);
        assert_eq!(ball(24, 2), 301.0);
        assert_eq!(ball(3, 5), 8.0);
        assert_eq!(ball(8, -1), 0.0);
    }

    #[test]
    fn plans_cover_the_threshold_and_tile_the_code() {
        for n_rows in [1_000, 100_000, 1_000_000, 10_000_000] {
            for threshold in [0, 8, 31] {
                for budget in [48, 128] {
                    let plan = plan(n_rows, threshold, budget);
                    if plan.is_scan() {
                        continue;
                    }
                    let bits: u32 = plan.parts.iter().map(|it| u32::from(it.len)).sum();
                    assert_eq!(bits, 256);
                    assert!(plan.max_threshold >= threshold, "{plan:?}");
                    assert!(plan.radii_for(threshold, n_rows).is_some());
                }
            }
        }
    }

    #[test]
    fn the_fast_budget_indexes_ten_million_at_31() {
        let plan = plan(10_000_000, 31, 128);
        assert!(!plan.is_scan(), "{plan:?}");
        let tables = plan.parts[1..].iter().filter(|it| it.radius >= 0).count();
        let bytes = 32.0 + tables as f64 * (4.0 + 4.0 * 2f64.powi(21) / 1e7);
        assert!(bytes <= 128.0, "{tables} tables");
    }

    #[test]
    fn radii_shrink_for_smaller_thresholds() {
        let plan = plan(1_000_000, 31, 128);
        let radii = plan.radii_for(10, 1_000_000).unwrap();
        let credits: i32 = radii.iter().map(|&r| i32::from(r) + 1).sum();
        assert_eq!(credits, 11);
        assert!(plan.radii_for(plan.max_threshold + 1, 1_000_000).is_none());
    }
}
