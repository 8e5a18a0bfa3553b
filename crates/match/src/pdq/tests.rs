//! One expectation, every strategy: the index returns exactly what a flat
//! scan returns, for random and clustered codes, random partition plans,
//! thresholds (including queries at exactly the threshold and one past it),
//! through the in-memory, memory-mapped, single and batch paths.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::pdq::plan::{dir_bits_for, plan};

/// A small deterministic generator (splitmix64), so that a failing proptest
/// case is reproduced from its seed alone.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(crate) fn code(&mut self) -> Code {
        [self.next(), self.next(), self.next(), self.next()]
    }

    /// `code` with exactly `flips` distinct bits flipped.
    pub(crate) fn flip(&mut self, code: &Code, flips: u32) -> Code {
        let mut res = *code;
        let mut done = 0;
        while done < flips.min(256) {
            let bit = self.below(256) as usize;
            let before = res;
            res[bit / 64] ^= 1 << (bit % 64);
            if distance(&res, code) > distance(&before, code) {
                done += 1;
            } else {
                res = before;
            }
        }
        res
    }
}

pub(crate) fn build(codes: &[Code], plan: &Plan) -> PdqIndex {
    let mut items: Vec<(Code, u32)> = codes
        .iter()
        .enumerate()
        .map(|(entry, code)| (*code, entry as u32))
        .collect();
    let mut builder = SegmentBuilder::default();
    build_sections(&mut builder, &mut items, plan);
    let segment = Segment::from_words(builder.into_words()).unwrap();
    PdqIndex::open(Arc::new(segment)).unwrap()
}

fn brute_force(codes: &[Code], query: &Code, threshold: u32) -> Vec<(u32, u32)> {
    let mut res: Vec<(u32, u32)> = codes
        .iter()
        .enumerate()
        .filter_map(|(entry, code)| {
            let dist = distance(code, query);
            (dist <= threshold).then_some((entry as u32, dist))
        })
        .collect();
    res.sort_unstable();
    res
}

fn as_entries(index: &PdqIndex, hits: &[Hit]) -> Vec<(u32, u32)> {
    let mut res: Vec<(u32, u32)> = hits
        .iter()
        .map(|hit| (index.entry_of(hit.row).unwrap(), hit.distance))
        .collect();
    res.sort_unstable();
    res
}

/// A random plan that tiles 256 bits and fits rows of `row_bits`.
fn random_plan(rng: &mut Rng, n_rows: usize) -> Plan {
    let row_bits = row_bits_for(n_rows);
    let dir_cap = dir_bits_for(n_rows).max(1);
    loop {
        let mut parts = Vec::new();
        let mut start = 0u32;
        while start < 256 {
            let len = (1 + rng.below(32) as u32).min(256 - start);
            let dir_bits = (1 + rng.below(u64::from(len.min(dir_cap)))) as u32;
            let radius = rng.below(5) as i8 - 1;
            parts.push(Part {
                start: start as u16,
                len: len as u8,
                dir_bits: dir_bits as u8,
                radius,
            });
            start += len;
        }
        // Table partitions must fit `row << rem | rem` in 32 bits.
        for part in parts.iter_mut().skip(1) {
            while part.rem_bits() + row_bits > 32 {
                part.dir_bits += 1;
            }
            if u32::from(part.dir_bits) > dir_cap.max(22) {
                part.radius = -1;
            }
        }
        if let Some(plan) = Plan::from_parts(parts, row_bits) {
            return plan;
        }
    }
}

fn codes_for(rng: &mut Rng, n_rows: usize, clustered: bool) -> Vec<Code> {
    if !clustered {
        return (0..n_rows).map(|_| rng.code()).collect();
    }
    let centers: Vec<Code> = (0..1 + n_rows / 20).map(|_| rng.code()).collect();
    (0..n_rows)
        .map(|_| {
            let center = &centers[rng.below(centers.len() as u64) as usize];
            let flips = rng.below(40) as u32;
            rng.flip(center, flips)
        })
        .collect()
}

fn queries_for(rng: &mut Rng, codes: &[Code], threshold: u32) -> Vec<Code> {
    let mut res = Vec::new();
    for query_idx in 0..24 {
        if codes.is_empty() || query_idx % 4 == 3 {
            res.push(rng.code());
            continue;
        }
        let base = codes[rng.below(codes.len() as u64) as usize];
        let flips = match query_idx % 4 {
            0 => threshold,
            1 => threshold + 1,
            _ => rng.below(u64::from(threshold) + 6) as u32,
        };
        res.push(rng.flip(&base, flips));
    }
    res
}

/// The check every case goes through: single and batch agree with brute force.
fn check(index: &PdqIndex, codes: &[Code], queries: &[Code], threshold: u32) {
    let mut batch = Vec::new();
    index.search_batch(queries, threshold, &mut batch);
    for (query_idx, query) in queries.iter().enumerate() {
        let expected = brute_force(codes, query, threshold);
        let mut hits = Vec::new();
        index.search(query, threshold, &mut hits);
        assert_eq!(
            as_entries(index, &hits),
            expected,
            "single query {query_idx} at threshold {threshold}, plan {:?}",
            index.plan()
        );
        let batch_hits: Vec<Hit> = batch
            .iter()
            .filter(|(it, _)| *it == query_idx as u32)
            .map(|(_, hit)| *hit)
            .collect();
        assert_eq!(
            as_entries(index, &batch_hits),
            expected,
            "batch query {query_idx} at threshold {threshold}, plan {:?}",
            index.plan()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_plans_agree_with_brute_force(seed in any::<u64>(), n_rows in 0usize..700, clustered in any::<bool>()) {
        let mut rng = Rng(seed);
        let codes = codes_for(&mut rng, n_rows, clustered);
        let plan = random_plan(&mut rng, n_rows);
        let index = build(&codes, &plan);
        for threshold in [0, plan.max_threshold / 2, plan.max_threshold, plan.max_threshold + 1, 31] {
            let queries = queries_for(&mut rng, &codes, threshold);
            check(&index, &codes, &queries, threshold);
        }
    }

    #[test]
    fn planned_indexes_agree_with_brute_force(seed in any::<u64>(), clustered in any::<bool>(), budget in prop_oneof![Just(48u32), Just(128u32)]) {
        let mut rng = Rng(seed);
        let n_rows = 2_000 + rng.below(3_000) as usize;
        let codes = codes_for(&mut rng, n_rows, clustered);
        let planned = plan(n_rows, 31, budget);
        let index = build(&codes, &planned);
        for threshold in [31, 30, 12, 0] {
            let queries = queries_for(&mut rng, &codes, threshold);
            check(&index, &codes, &queries, threshold);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The scan-join (batch path of tableless plans) against a flat scan,
    /// for every partition width and radius it may pick.
    #[test]
    fn scan_join_agrees_with_brute_force(seed in any::<u64>(), n_rows in 0usize..400, clustered in any::<bool>(), width in 8u32..=24, radius in 0u32..=3, threshold in 0u32..=40) {
        prop_assume!((threshold + 1).div_ceil(radius + 1) * width <= 256);
        let mut rng = Rng(seed);
        let codes = codes_for(&mut rng, n_rows, clustered);
        let lo: Vec<Half> = codes.iter().map(|it| [it[0], it[1]]).collect();
        let hi: Vec<Half> = codes.iter().map(|it| [it[2], it[3]]).collect();
        let queries = queries_for(&mut rng, &codes, threshold);
        let mut found = Vec::new();
        join::join_for_test(width, radius, &lo, &hi, &queries, threshold, &mut found);
        found.sort_unstable();
        found.dedup();
        for (query_idx, query) in queries.iter().enumerate() {
            let got: Vec<(u32, u32)> = found
                .iter()
                .filter(|(it, _)| *it == query_idx as u32)
                .map(|(_, hit)| (hit.row, hit.distance))
                .collect();
            prop_assert_eq!(got, brute_force(&codes, query, threshold), "query {}", query_idx);
        }
    }
}

#[test]
fn duplicates_and_empty_indexes() {
    let mut rng = Rng(7);
    let code = rng.code();
    let codes = vec![code, code, rng.flip(&code, 31), rng.flip(&code, 32)];
    let index = build(&codes, &plan(10_000, 31, 128));
    check(&index, &codes, &[code], 31);
    let empty = build(&[], &Plan::scan());
    let mut hits = Vec::new();
    empty.search(&code, 31, &mut hits);
    assert!(hits.is_empty());
}

#[test]
fn memory_mapped_index_answers_like_the_built_one() {
    let mut rng = Rng(99);
    let codes = codes_for(&mut rng, 3_000, true);
    let plan = plan(3_000, 31, 128);
    let mut items: Vec<(Code, u32)> = codes
        .iter()
        .enumerate()
        .map(|(entry, code)| (*code, entry as u32))
        .collect();
    let mut builder = SegmentBuilder::default();
    build_sections(&mut builder, &mut items, &plan);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    crate::segment::write_words_atomic(&path, &builder.into_words()).unwrap();
    let index = PdqIndex::open(Arc::new(Segment::open(&path).unwrap())).unwrap();
    assert_eq!(index.len(), 3_000);
    let queries = queries_for(&mut rng, &codes, 31);
    check(&index, &codes, &queries, 31);
}
