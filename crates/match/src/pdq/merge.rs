//! The inner loop of the batch path: merging the bucket-ordered probes of a
//! batch with one partition's directory and table, keeping the entries whose
//! key bits below the directory are within each probe's remaining radius.
//!
//! With AVX-512 (and its popcount), a probe checks up to 16 entries of its
//! bucket in a few instructions and without a branch on the data, which
//! makes bigger buckets (smaller directories, fewer probes) cheap; the scalar
//! loop is the reference and the fallback.

use crate::pdq::{code::Half, low_mask, probe::BucketedProbes};

/// Candidate `(row, query)` keys, `row << query_bits | query`: a buffer kept
/// longer than its contents and a count, so that the merge can store
/// unconditionally and advance by a condition.
#[derive(Default)]
pub(crate) struct Candidates {
    pub(crate) buf: Vec<u64>,
    pub(crate) len: usize,
}

impl Candidates {
    /// Makes room for `extra` stores beyond `len`.
    #[inline(always)]
    fn reserve(&mut self, extra: usize) {
        if self.len + extra > self.buf.len() {
            let want = (self.len + extra).max(self.buf.len() * 2).max(4096);
            self.buf.resize(want, 0);
        }
    }

    /// Stores `value` at `len` and keeps it if `keep`.
    #[inline(always)]
    fn push_if(&mut self, value: u64, keep: bool) {
        self.reserve(1);
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = value;
        }
        self.len += usize::from(keep);
    }

    /// The candidates stored so far.
    pub(crate) fn as_slice(&self) -> &[u64] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// What the merge needs to know about a partition and a batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MergeShape {
    /// Key bits stored in each table entry below the directory bits.
    pub(crate) rem_bits: u32,
    /// The radius the partition is probed with.
    pub(crate) radius: u32,
    /// Bits of the query index in a candidate key.
    pub(crate) query_bits: u32,
}

/// Appends to `candidates` every `(row, query)` pair of the partition whose
/// table is `dir`/`table` that one of `probes` reaches; `query_keys` are the
/// queries' partition keys.
#[inline(always)]
pub(crate) fn merge_table(
    probes: &BucketedProbes,
    dir: &[u32],
    table: &[u32],
    query_keys: &[u32],
    shape: MergeShape,
    candidates: &mut Candidates,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has the features the function enables (checked).
        unsafe { merge_avx512(probes, dir, table, query_keys, shape, candidates) };
        return;
    }
    merge_scalar(probes, dir, table, query_keys, shape, candidates);
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
}

/// The rows of directory bucket `bucket` (empty if the directory is not sane).
#[inline(always)]
fn bucket(dir: &[u32], bucket: usize) -> std::ops::Range<usize> {
    match (dir.get(bucket), dir.get(bucket + 1)) {
        (Some(&start), Some(&end)) if start <= end => start as usize..end as usize,
        _ => 0..0,
    }
}

/// Every probe in bucket order, decoded: the range of its bucket, the
/// partition key of its query, the query index and the radius left for the
/// bits below the directory.
#[inline(always)]
fn bucket_probes<'a>(
    probes: &'a BucketedProbes,
    dir: &'a [u32],
    query_keys: &'a [u32],
    radius: u32,
) -> impl Iterator<Item = (std::ops::Range<usize>, u32, usize, u32)> + 'a {
    (0..probes.groups()).flat_map(move |group| {
        probes.group(group).iter().map(move |&item| {
            let (bucket_idx, query_idx, weight) = probes.decode(group, item);
            let key = query_keys.get(query_idx).copied().unwrap_or_default();
            (
                bucket(dir, bucket_idx),
                key,
                query_idx,
                radius.saturating_sub(weight),
            )
        })
    })
}

/// The merge for the primary partition, whose table is the sorted code array
/// itself: a bucket's rows are consecutive, and the key bits below the
/// directory are the top `len` bits of each code.
#[inline(always)]
pub(crate) fn merge_primary(
    probes: &BucketedProbes,
    dir: &[u32],
    lo: &[Half],
    len: u32,
    query_keys: &[u32],
    shape: MergeShape,
    candidates: &mut Candidates,
) {
    let MergeShape {
        rem_bits,
        radius,
        query_bits,
    } = shape;
    let rem_mask = low_mask(rem_bits);
    let shift = 64 - len.clamp(1, 32);
    for (range, key, query_idx, budget) in bucket_probes(probes, dir, query_keys, radius) {
        for (row, code) in range.clone().zip(lo.get(range).unwrap_or_default()) {
            let row_key = (code[0] >> shift) as u32;
            let keep = ((row_key ^ key) & rem_mask).count_ones() <= budget;
            candidates.push_if(((row as u64) << query_bits) | query_idx as u64, keep);
        }
    }
}

/// The reference merge, one entry at a time.
#[inline(always)]
fn merge_scalar(
    probes: &BucketedProbes,
    dir: &[u32],
    table: &[u32],
    query_keys: &[u32],
    shape: MergeShape,
    candidates: &mut Candidates,
) {
    let MergeShape {
        rem_bits,
        radius,
        query_bits,
    } = shape;
    let rem_mask = low_mask(rem_bits);
    for (range, key, query_idx, budget) in bucket_probes(probes, dir, query_keys, radius) {
        for &entry in table.get(range).unwrap_or_default() {
            let keep = ((entry ^ key) & rem_mask).count_ones() <= budget;
            candidates.push_if(
                (u64::from(entry >> rem_bits) << query_bits) | query_idx as u64,
                keep,
            );
        }
    }
}

/// The merge with AVX-512: 16 entries of a bucket per step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn merge_avx512(
    probes: &BucketedProbes,
    dir: &[u32],
    table: &[u32],
    query_keys: &[u32],
    shape: MergeShape,
    candidates: &mut Candidates,
) {
    use std::arch::x86_64::{
        _mm_cvtsi32_si128, _mm512_and_si512, _mm512_castsi512_si256, _mm512_cmple_epu32_mask,
        _mm512_cvtepu32_epi64, _mm512_extracti64x4_epi64, _mm512_loadu_si512,
        _mm512_maskz_compress_epi32, _mm512_or_si512, _mm512_popcnt_epi32, _mm512_set1_epi32,
        _mm512_set1_epi64, _mm512_sll_epi64, _mm512_srl_epi32, _mm512_storeu_si512,
        _mm512_xor_si512,
    };

    let MergeShape {
        rem_bits,
        radius,
        query_bits,
    } = shape;
    let rem_mask = low_mask(rem_bits);
    let rem_mask_v = _mm512_set1_epi32(rem_mask as i32);
    let rem_shift = _mm_cvtsi32_si128(rem_bits as i32);
    let query_shift = _mm_cvtsi32_si128(query_bits as i32);
    for (range, key, query_idx, budget) in bucket_probes(probes, dir, query_keys, radius) {
        let key_v = _mm512_set1_epi32(key as i32);
        let budget_v = _mm512_set1_epi32(budget as i32);
        let query_v = _mm512_set1_epi64(query_idx as i64);
        let mut at = range.start;
        while at < range.end {
            let Some(lanes) = table.get(at..at + 16) else {
                // The last entries of the table: one at a time.
                for &entry in table.get(at..range.end).unwrap_or_default() {
                    let keep = ((entry ^ key) & rem_mask).count_ones() <= budget;
                    candidates.push_if(
                        (u64::from(entry >> rem_bits) << query_bits) | query_idx as u64,
                        keep,
                    );
                }
                break;
            };
            let valid = (1u32 << (range.end - at).min(16)).wrapping_sub(1) as u16;
            // SAFETY: `lanes` is 16 in-bounds u32s; unaligned loads are allowed.
            let entries = unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) };
            let near = _mm512_and_si512(_mm512_xor_si512(entries, key_v), rem_mask_v);
            let keep = _mm512_cmple_epu32_mask(_mm512_popcnt_epi32(near), budget_v) & valid;
            if keep != 0 {
                let rows = _mm512_maskz_compress_epi32(keep, _mm512_srl_epi32(entries, rem_shift));
                candidates.reserve(16);
                let len = candidates.len;
                if let Some(out) = candidates.buf.get_mut(len..len + 16) {
                    let (first, second) = out.split_at_mut(8);
                    let first_v = _mm512_or_si512(
                        _mm512_sll_epi64(
                            _mm512_cvtepu32_epi64(_mm512_castsi512_si256(rows)),
                            query_shift,
                        ),
                        query_v,
                    );
                    // SAFETY: each half is 8 in-bounds u64s.
                    unsafe { _mm512_storeu_si512(first.as_mut_ptr().cast(), first_v) };
                    if keep.count_ones() > 8 {
                        let second_v = _mm512_or_si512(
                            _mm512_sll_epi64(
                                _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(rows)),
                                query_shift,
                            ),
                            query_v,
                        );
                        // SAFETY: as above.
                        unsafe { _mm512_storeu_si512(second.as_mut_ptr().cast(), second_v) };
                    }
                    candidates.len += keep.count_ones() as usize;
                }
            }
            at += 16;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::pdq::probe::masks;

    /// A directory of `2^dir_bits` buckets over `sizes` and a table of
    /// random entries.
    fn table_of(sizes: &[u8], seed: u64) -> (Vec<u32>, Vec<u32>) {
        let mut dir = vec![0u32];
        for size in sizes {
            dir.push(dir.last().copied().unwrap_or_default() + u32::from(*size));
        }
        let mut state = seed;
        let table = (0..dir.last().copied().unwrap_or_default())
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 32) as u32
            })
            .collect();
        (dir, table)
    }

    proptest! {
        #[test]
        fn every_merge_keeps_what_the_scalar_merge_keeps(
            dir_bits in 2u32..8,
            radius in 0u32..4,
            rem_bits in 0u32..8,
            query_keys in proptest::collection::vec(any::<u32>(), 1..40),
            bucket_sizes in proptest::collection::vec(0u8..40, 256),
            seed in any::<u64>(),
        ) {
            let len_bits = dir_bits + rem_bits;
            let query_keys: Vec<u32> = query_keys.iter().map(|key| key & low_mask(len_bits)).collect();
            let prefixes: Vec<u32> = query_keys.iter().map(|key| key >> rem_bits).collect();
            let mut probes = BucketedProbes::default();
            probes.fill(&prefixes, masks(dir_bits, radius), dir_bits);
            let (dir, table) = table_of(&bucket_sizes[..(1 << dir_bits)], seed);
            let shape = MergeShape { rem_bits, radius, query_bits: 6 };

            let mut expected = Candidates::default();
            merge_scalar(&probes, &dir, &table, &query_keys, shape, &mut expected);
            // The definition, entry by entry, for the scalar merge itself.
            let mut direct = Vec::new();
            for (query_idx, key) in query_keys.iter().enumerate() {
                for bucket in 0..(1usize << dir_bits) {
                    let weight = ((bucket as u32) ^ (key >> rem_bits)).count_ones();
                    if weight > radius {
                        continue;
                    }
                    for &entry in &table[dir[bucket] as usize..dir[bucket + 1] as usize] {
                        if ((entry ^ key) & low_mask(rem_bits)).count_ones() + weight <= radius {
                            direct.push((u64::from(entry >> rem_bits) << 6) | query_idx as u64);
                        }
                    }
                }
            }
            let mut got = expected.as_slice().to_vec();
            got.sort_unstable();
            direct.sort_unstable();
            prop_assert_eq!(&got, &direct);

            #[cfg(target_arch = "x86_64")]
            if has_avx512() {
                let mut simd = Candidates::default();
                // SAFETY: the CPU has the features (checked just above).
                unsafe { merge_avx512(&probes, &dir, &table, &query_keys, shape, &mut simd) };
                let mut simd = simd.as_slice().to_vec();
                simd.sort_unstable();
                prop_assert_eq!(simd, direct);
            }
        }
    }
}
