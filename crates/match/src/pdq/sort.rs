//! LSD radix sort of `u64` keys on a bit range, for the batch path (probe
//! keys and candidate pairs): linear time and sequential memory access, where
//! a comparison sort of tens of millions of keys would dominate the batch.

const DIGIT_BITS: u32 = 11;

/// Sorts `keys` by bits `lo..hi` (stable), using `scratch` as the buffer.
pub(crate) fn radix_sort(keys: &mut Vec<u64>, scratch: &mut Vec<u64>, lo: u32, hi: u32) {
    if keys.len() < 64 {
        let mask = bit_mask(lo, hi);
        keys.sort_by_key(|it| (it & mask) >> lo);
        return;
    }
    scratch.clear();
    scratch.resize(keys.len(), 0);
    let mut shift = lo;
    while shift < hi {
        let width = DIGIT_BITS.min(hi - shift);
        let digit_mask = (1u64 << width) - 1;
        let mut counts = vec![0usize; 1 << width];
        for key in keys.iter() {
            counts[((key >> shift) & digit_mask) as usize] += 1;
        }
        let mut sum = 0;
        for count in counts.iter_mut() {
            let here = *count;
            *count = sum;
            sum += here;
        }
        for key in keys.iter() {
            let digit = ((key >> shift) & digit_mask) as usize;
            scratch[counts[digit]] = *key;
            counts[digit] += 1;
        }
        std::mem::swap(keys, scratch);
        shift += width;
    }
}

fn bit_mask(lo: u32, hi: u32) -> u64 {
    let width = hi - lo;
    if width >= 64 {
        u64::MAX
    } else {
        ((1u64 << width) - 1) << lo
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn sorts_like_a_stable_sort(mut keys in proptest::collection::vec(any::<u64>(), 0..500), lo in 0u32..40, width in 1u32..24) {
            let hi = lo + width;
            let mut expected = keys.clone();
            let mask = bit_mask(lo, hi);
            expected.sort_by_key(|it| (it & mask) >> lo);
            radix_sort(&mut keys, &mut Vec::new(), lo, hi);
            prop_assert_eq!(keys, expected);
        }
    }
}
