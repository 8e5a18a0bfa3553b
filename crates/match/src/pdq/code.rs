//! 256-bit PDQ codes as four big-endian 64-bit lanes, Hamming distance, and
//! bit windows (the keys of the multi-index partitions).
//!
//! Bit `i` (0..256) is bit `63 - i % 64` of lane `i / 64`, i.e. bit 0 is the
//! first bit of the hex string. Lane order follows `PdqHash::lanes`, so
//! sorting codes as `[u64; 4]` sorts them like their hex strings.

use childsafe_core::PdqHash;

/// A PDQ hash as four big-endian lanes (`PdqHash::lanes`).
pub(crate) type Code = [u64; 4];

/// Half a code: lanes 0-1 (`lo`) or lanes 2-3 (`hi`). Stored separately so
/// that a scan reads only the first half of every code and rejects almost all
/// of them there (a random code is within 31 bits of the query's first 128
/// bits with probability about 1e-9).
pub(crate) type Half = [u64; 2];

/// Converts a hash into lanes.
pub(crate) fn code_of(hash: &PdqHash) -> Code {
    hash.lanes()
}

/// Converts lanes back into a hash.
pub(crate) fn hash_of(code: &Code) -> PdqHash {
    PdqHash::from_lanes(*code)
}

/// Hamming distance of two halves.
#[inline(always)]
pub(crate) fn half_distance(a: &Half, b: &Half) -> u32 {
    (a[0] ^ b[0]).count_ones() + (a[1] ^ b[1]).count_ones()
}

/// Hamming distance of two codes.
#[inline(always)]
pub(crate) fn distance(a: &Code, b: &Code) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// Bits `start..start + len` of the code as an integer (first bit most
/// significant). `len` is at most 32 and the window lies inside the code.
#[inline(always)]
pub(crate) fn window(code: &Code, start: u32, len: u32) -> u32 {
    debug_assert!((1..=32).contains(&len) && start + len <= 256);
    let lane = (start / 64) as usize;
    let offset = start % 64;
    let high = u128::from(code[lane]);
    let low = if lane + 1 < 4 {
        u128::from(code[lane + 1])
    } else {
        0
    };
    let joined = (high << 64) | low;
    ((joined << offset) >> (128 - len)) as u32
}

/// Joins two halves into a code.
#[inline(always)]
pub(crate) fn join(lo: &Half, hi: &Half) -> Code {
    [lo[0], lo[1], hi[0], hi[1]]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bit(code: &Code, k: u32) -> u32 {
        ((code[(k / 64) as usize] >> (63 - k % 64)) & 1) as u32
    }

    proptest! {
        #[test]
        fn window_reads_the_bits_in_order(code in any::<[u64; 4]>(), start in 0u32..256, len in 1u32..=32) {
            prop_assume!(start + len <= 256);
            let expected = (start..start + len).fold(0u32, |acc, k| (acc << 1) | bit(&code, k));
            prop_assert_eq!(window(&code, start, len), expected);
        }

        #[test]
        fn lanes_sort_like_hex(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (ha, hb) = (PdqHash(a), PdqHash(b));
            prop_assert_eq!(code_of(&ha).cmp(&code_of(&hb)), ha.to_string().cmp(&hb.to_string()));
            prop_assert_eq!(hash_of(&code_of(&ha)), ha);
            prop_assert_eq!(distance(&code_of(&ha), &code_of(&hb)), ha.distance(&hb));
        }
    }
}
