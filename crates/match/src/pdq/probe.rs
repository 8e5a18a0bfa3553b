//! Probe masks: every XOR mask of weight 0..=r over n bits, computed once per
//! (n, r) and shared, so a probe loop is a walk over a flat array.

use std::sync::OnceLock;

/// Largest radius with cached masks.
pub(crate) const MAX_MASK_RADIUS: usize = 4;
const MAX_MASK_BITS: usize = 32;

/// A probe mask and its weight (the distance it adds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mask {
    pub(crate) bits: u32,
    pub(crate) weight: u32,
}

static MASKS: [[OnceLock<Box<[Mask]>>; MAX_MASK_RADIUS + 1]; MAX_MASK_BITS + 1] =
    [const { [const { OnceLock::new() }; MAX_MASK_RADIUS + 1] }; MAX_MASK_BITS + 1];

/// Every mask over `bits` bits with weight at most `radius`, lightest first.
/// `radius` above [`MAX_MASK_RADIUS`] is clamped (plans never exceed it).
pub(crate) fn masks(bits: u32, radius: u32) -> &'static [Mask] {
    let bits = (bits as usize).min(MAX_MASK_BITS);
    let radius = (radius as usize).min(MAX_MASK_RADIUS);
    MASKS[bits][radius].get_or_init(|| build(bits as u32, radius as u32))
}

fn build(bits: u32, radius: u32) -> Box<[Mask]> {
    let mut res = Vec::new();
    for weight in 0..=radius.min(bits) {
        if weight == 0 {
            res.push(Mask { bits: 0, weight: 0 });
            continue;
        }
        // Gosper's hack: every `bits`-bit word with `weight` ones, in order.
        let mut word: u64 = (1u64 << weight) - 1;
        let end = 1u64 << bits;
        while word < end {
            res.push(Mask {
                bits: word as u32,
                weight,
            });
            let lowest = word & word.wrapping_neg();
            let ripple = word + lowest;
            word = (((ripple ^ word) >> 2) / lowest) | ripple;
        }
    }
    res.into_boxed_slice()
}

/// The probes of a batch of queries on one partition, grouped by directory
/// bucket, which is the order the batch path merges them with the directory in.
///
/// A probe is a (bucket, query, mask weight) triple. Sorting them as `u64`
/// keys (one pass to generate, two radix passes of 8-byte items) took half of
/// a batch at 10M codes. Here both digit histograms are computed from the
/// masks' own digits without generating the probes, the probes are generated
/// straight into their low-digit groups, and scattered once more by the high
/// digit: two passes of 4-byte items, each item's other digit implied by the
/// group it sits in.
#[derive(Default)]
pub(crate) struct BucketedProbes {
    /// After [`BucketedProbes::fill`]: items grouped by the high bucket bits,
    /// each `low bucket bits << payload | query << 3 | weight`.
    items: Vec<u32>,
    /// Items grouped by the low bucket bits, `high bits << payload | ...`.
    stage: Vec<u32>,
    /// Start of each high-bits group in `items`, plus the end.
    hi_starts: Vec<u32>,
    lo_next: Vec<u32>,
    hi_next: Vec<u32>,
    /// Distinct low and high digits of the masks, with their counts.
    lo_digits: Vec<(u32, u32)>,
    hi_digits: Vec<(u32, u32)>,
    lo_bits: u32,
    payload_bits: u32,
}

/// Bits of an item that hold the mask weight (radius <= [`MAX_MASK_RADIUS`]).
const WEIGHT_BITS: u32 = 3;

impl BucketedProbes {
    /// Most queries one fill can hold: 16 bits of query index beside 11 bits
    /// of bucket (directories have at most 22 bits) and the weight.
    pub(crate) const MAX_QUERIES: usize = 1 << 16;

    /// Generates the probes `prefix ^ mask` of every query prefix (the key
    /// bits above the rem bits) with every mask, grouped by bucket.
    /// `dir_bits` is at most 22 and `prefixes` at most [`Self::MAX_QUERIES`].
    pub(crate) fn fill(&mut self, prefixes: &[u32], masks: &[Mask], dir_bits: u32) {
        debug_assert!(dir_bits <= 22 && prefixes.len() <= Self::MAX_QUERIES);
        let lo_bits = dir_bits / 2;
        let hi_bits = dir_bits - lo_bits;
        let lo_mask = (1u32 << lo_bits) - 1;
        let payload_bits = 16 + WEIGHT_BITS;
        self.lo_bits = lo_bits;
        self.payload_bits = payload_bits;
        let n_probes = prefixes.len() * masks.len();

        // Count both digits without generating the probes: the digit of
        // `prefix ^ mask` is `digit(prefix) ^ digit(mask)`, and the masks
        // have few distinct digits (56 low digits for 211 masks of weight 2
        // over 20 bits), so each query adds the masks' digit histogram.
        let mut lo_counts = std::mem::take(&mut self.lo_next);
        let mut hi_counts = std::mem::take(&mut self.hi_next);
        digit_histogram(
            masks.iter().map(|mask| mask.bits & lo_mask),
            lo_bits,
            &mut self.lo_digits,
        );
        digit_histogram(
            masks.iter().map(|mask| mask.bits >> lo_bits),
            hi_bits,
            &mut self.hi_digits,
        );
        lo_counts.clear();
        lo_counts.resize((1 << lo_bits) + 1, 0);
        hi_counts.clear();
        hi_counts.resize((1 << hi_bits) + 1, 0);
        let hi_mask = (1u32 << hi_bits) - 1;
        for &prefix in prefixes {
            let (lo, hi) = (prefix & lo_mask, (prefix >> lo_bits) & hi_mask);
            for &(digit, count) in &self.lo_digits {
                if let Some(slot) = lo_counts.get_mut(((lo ^ digit) + 1) as usize) {
                    *slot += count;
                }
            }
            for &(digit, count) in &self.hi_digits {
                if let Some(slot) = hi_counts.get_mut(((hi ^ digit) + 1) as usize) {
                    *slot += count;
                }
            }
        }
        prefix_sums(&mut lo_counts);
        prefix_sums(&mut hi_counts);
        self.hi_starts.clear();
        self.hi_starts.extend_from_slice(&hi_counts);

        // Scatter by the low bits, keeping the high bits in the item.
        self.stage.clear();
        self.stage.resize(n_probes, 0);
        let lo_starts = lo_counts.clone();
        for (query_idx, &prefix) in prefixes.iter().enumerate() {
            let tail = ((query_idx as u32) << WEIGHT_BITS) & low_bits_mask(payload_bits);
            for mask in masks {
                let bucket = (prefix ^ mask.bits) & ((1 << dir_bits) - 1);
                let slot = &mut lo_counts[(bucket & lo_mask) as usize];
                if let Some(item) = self.stage.get_mut(*slot as usize) {
                    *item = ((bucket >> lo_bits) << payload_bits) | tail | mask.weight;
                }
                *slot += 1;
            }
        }

        // Scatter by the high bits, putting the low bits (the group) in.
        self.items.clear();
        self.items.resize(n_probes, 0);
        for lo in 0..(1usize << lo_bits) {
            let range = lo_starts[lo] as usize..lo_starts[lo + 1] as usize;
            for &item in self.stage.get(range).unwrap_or_default() {
                let slot = &mut hi_counts[(item >> payload_bits) as usize];
                if let Some(out) = self.items.get_mut(*slot as usize) {
                    *out = ((lo as u32) << payload_bits) | (item & low_bits_mask(payload_bits));
                }
                *slot += 1;
            }
        }
        self.lo_next = lo_counts;
        self.hi_next = hi_counts;
    }

    /// Number of groups of high bucket bits.
    pub(crate) fn groups(&self) -> usize {
        self.hi_starts.len().saturating_sub(1)
    }

    /// The items of group `hi`, in bucket order.
    #[inline(always)]
    pub(crate) fn group(&self, hi: usize) -> &[u32] {
        match (self.hi_starts.get(hi), self.hi_starts.get(hi + 1)) {
            (Some(&start), Some(&end)) => self
                .items
                .get(start as usize..end as usize)
                .unwrap_or_default(),
            _ => &[],
        }
    }

    /// `(bucket, query index, mask weight)` of an item of group `hi`.
    #[inline(always)]
    pub(crate) fn decode(&self, hi: usize, item: u32) -> (usize, usize, u32) {
        let bucket = ((hi as u32) << self.lo_bits) | (item >> self.payload_bits);
        let query_idx = (item & low_bits_mask(self.payload_bits)) >> WEIGHT_BITS;
        (
            bucket as usize,
            query_idx as usize,
            item & low_bits_mask(WEIGHT_BITS),
        )
    }
}

/// The distinct values of `digits` (each below `2^bits`) and how often each occurs.
fn digit_histogram(digits: impl Iterator<Item = u32>, bits: u32, out: &mut Vec<(u32, u32)>) {
    let mut counts = vec![0u32; 1 << bits];
    for digit in digits {
        if let Some(count) = counts.get_mut(digit as usize) {
            *count += 1;
        }
    }
    out.clear();
    out.extend(
        counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(digit, count)| (digit as u32, *count)),
    );
}

/// Turns counts shifted by one (`counts[d + 1]` for digit `d`) into starts.
fn prefix_sums(counts: &mut [u32]) {
    for idx in 1..counts.len() {
        counts[idx] += counts[idx - 1];
    }
}

#[inline(always)]
fn low_bits_mask(bits: u32) -> u32 {
    (1u32 << bits) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdq::plan::ball;

    proptest::proptest! {
        #[test]
        fn probes_come_in_bucket_order_and_all_of_them(
            dir_bits in 1u32..=22,
            radius in 0u32..=3,
            prefixes in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..50),
        ) {
            let prefixes: Vec<u32> = prefixes.iter().map(|p| p & low_bits_mask(dir_bits)).collect();
            let masks = masks(dir_bits, radius);
            let mut probes = BucketedProbes::default();
            probes.fill(&prefixes, masks, dir_bits);
            let mut got = Vec::new();
            for group in 0..probes.groups() {
                for &item in probes.group(group) {
                    got.push(probes.decode(group, item));
                }
            }
            proptest::prop_assert!(got.windows(2).all(|pair| pair[0].0 <= pair[1].0));
            let mut expected: Vec<(usize, usize, u32)> = prefixes
                .iter()
                .enumerate()
                .flat_map(|(query_idx, prefix)| {
                    masks.iter().map(move |mask| ((prefix ^ mask.bits) as usize, query_idx, mask.weight))
                })
                .collect();
            expected.sort_unstable();
            got.sort_unstable();
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn masks_are_the_ball() {
        for bits in [1u32, 5, 16, 21] {
            for radius in 0..=3u32 {
                let got = masks(bits, radius);
                assert_eq!(got.len() as f64, ball(bits, radius as i32));
                for mask in got {
                    assert_eq!(mask.bits.count_ones(), mask.weight);
                    assert!(u64::from(mask.bits) < (1u64 << bits));
                }
                let mut unique: Vec<u32> = got.iter().map(|it| it.bits).collect();
                unique.sort_unstable();
                unique.dedup();
                assert_eq!(unique.len(), got.len());
            }
        }
    }
}
