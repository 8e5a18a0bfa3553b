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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdq::plan::ball;

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
