//! Luminance images: the one pixel format PDQ reads.
//!
//! Decoders convert straight into luminance, never into an intermediate RGB
//! float buffer (PDQ is decode-bound; DESIGN.md "Where the time goes"). The
//! conversion is the reference's `fillFloatLumaFromRGB`: `f32` coefficients
//! 0.299, 0.587, 0.114, each product rounded to `f32` and summed left to
//! right. The three products are looked up in tables of 256 entries, which
//! gives the same `f32` values as multiplying. Greyscale input is taken as
//! is (`fillFloatLumaFromGrey`), not run through the RGB formula, whose
//! rounding would change some values.

use std::{fmt, sync::LazyLock};

use crate::pdq::Dihedral;

/// A luminance image: `width` x `height` `f32` values in 0..=255, row-major.
///
/// `Debug` shows the size only: the pixels are image content.
#[derive(Clone, PartialEq)]
pub struct LumaImage {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

impl fmt::Debug for LumaImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LumaImage({}x{})", self.width, self.height)
    }
}

/// What a decoder produced, before hashing. `Debug` shows sizes only.
#[derive(Debug)]
pub(crate) enum Plane {
    /// Full-resolution luminance.
    Pixels(LumaImage),
    /// The means of the 8x8 blocks of a `width` x `height` luminance plane
    /// (the JPEG DC fast path); the last block of a row or column may cover
    /// fewer than 8 pixels.
    BlockMeans {
        means: LumaImage,
        width: usize,
        height: usize,
    },
}

/// A decoded image: its luminance and the transform that displays it
/// ([`Dihedral::Original`] unless EXIF orientation was asked for and found).
pub struct Decoded {
    pub(crate) plane: Plane,
    pub(crate) orientation: Dihedral,
}

impl fmt::Debug for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Decoded({}x{}, {:?})",
            self.width(),
            self.height(),
            self.orientation
        )
    }
}

impl Decoded {
    /// Width of the image as stored (before orientation), in pixels.
    pub fn width(&self) -> usize {
        match &self.plane {
            Plane::Pixels(luma) => luma.width,
            Plane::BlockMeans { width, .. } => *width,
        }
    }

    /// Height of the image as stored (before orientation), in pixels.
    pub fn height(&self) -> usize {
        match &self.plane {
            Plane::Pixels(luma) => luma.height,
            Plane::BlockMeans { height, .. } => *height,
        }
    }

    /// Whether the decoder took the DCT-domain fast path (8x8 block means
    /// rather than pixels).
    pub fn is_block_means(&self) -> bool {
        matches!(self.plane, Plane::BlockMeans { .. })
    }
}

/// The reference's coefficients, as `f32` (`const float luma_from_R_coeff = 0.299;`).
const LUMA_R: f32 = 0.299;
const LUMA_G: f32 = 0.587;
const LUMA_B: f32 = 0.114;

/// `coefficient * v` for every 8-bit `v`, per channel.
static LUMA_TABLES: LazyLock<[[f32; 256]; 3]> = LazyLock::new(|| {
    [LUMA_R, LUMA_G, LUMA_B].map(|coeff| std::array::from_fn(|v| coeff * v as f32))
});

/// The reference's luminance of one 8-bit RGB pixel.
#[inline]
pub(crate) fn luma_of(tables: &[[f32; 256]; 3], r: u8, g: u8, b: u8) -> f32 {
    tables[0][usize::from(r)] + tables[1][usize::from(g)] + tables[2][usize::from(b)]
}

/// The luminance tables, for decoders that convert row by row.
pub(crate) fn luma_tables() -> &'static [[f32; 256]; 3] {
    &LUMA_TABLES
}

impl LumaImage {
    /// An image from raw luminance values (row-major, `width * height` of them).
    /// Returns `None` if the length does not match.
    pub fn from_luma(width: usize, height: usize, pixels: Vec<f32>) -> Option<LumaImage> {
        (width.checked_mul(height) == Some(pixels.len())).then_some(LumaImage {
            width,
            height,
            pixels,
        })
    }

    /// The luminance of interleaved 8-bit samples with `channels` per pixel:
    /// 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA). Alpha is ignored, as
    /// the reference ignores it (its decoder path drops the alpha channel).
    /// Returns `None` on a length mismatch or another channel count.
    pub fn from_interleaved8(
        width: usize,
        height: usize,
        channels: usize,
        samples: &[u8],
    ) -> Option<LumaImage> {
        if width.checked_mul(height)?.checked_mul(channels)? != samples.len() {
            return None;
        }
        let mut pixels = Vec::with_capacity(width * height);
        push_luma8(&mut pixels, channels, samples)?;
        Some(LumaImage {
            width,
            height,
            pixels,
        })
    }

    /// An image with no pixels (hashes to zero, as anything below 5x5 does).
    pub(crate) fn empty() -> LumaImage {
        LumaImage {
            width: 0,
            height: 0,
            pixels: Vec::new(),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The luminance values, row-major.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    pub(crate) fn pixels_mut(&mut self) -> &mut [f32] {
        &mut self.pixels
    }

    /// The image rotated or reflected.
    pub fn transformed(&self, transform: Dihedral) -> LumaImage {
        if transform == Dihedral::Original {
            return self.clone();
        }
        let (w, h) = if transform.transposes() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        };
        let mut pixels = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = transform.source_of(x, y, self.width, self.height);
                pixels.push(self.pixels[sy * self.width + sx]);
            }
        }
        LumaImage {
            width: w,
            height: h,
            pixels,
        }
    }
}

/// Appends the luminance of interleaved 8-bit samples; `None` for a channel
/// count other than 1 to 4.
pub(crate) fn push_luma8(out: &mut Vec<f32>, channels: usize, samples: &[u8]) -> Option<()> {
    let tables = luma_tables();
    match channels {
        1 => out.extend(samples.iter().map(|&v| f32::from(v))),
        2 => out.extend(samples.chunks_exact(2).map(|p| f32::from(p[0]))),
        3 => out.extend(
            samples
                .chunks_exact(3)
                .map(|p| luma_of(tables, p[0], p[1], p[2])),
        ),
        4 => out.extend(
            samples
                .chunks_exact(4)
                .map(|p| luma_of(tables, p[0], p[1], p[2])),
        ),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_equal_the_reference_products() {
        let tables = luma_tables();
        for r in [0u8, 1, 77, 128, 255] {
            for g in [0u8, 3, 128, 254] {
                for b in [0u8, 9, 200] {
                    let direct =
                        LUMA_R * f32::from(r) + LUMA_G * f32::from(g) + LUMA_B * f32::from(b);
                    assert_eq!(luma_of(tables, r, g, b).to_bits(), direct.to_bits());
                }
            }
        }
    }

    #[test]
    fn grey_is_not_run_through_the_rgb_formula() {
        // 0.299 + 0.587 + 0.114 is not exactly 1 in f32; greyscale must stay exact.
        let grey = LumaImage::from_interleaved8(1, 1, 1, &[201]).unwrap();
        assert_eq!(grey.pixels(), &[201.0]);
    }

    #[test]
    fn transforms_move_pixels_where_their_names_say() {
        // 3 wide, 2 high:  0 1 2 / 3 4 5
        let img = LumaImage::from_luma(3, 2, (0..6).map(|v| v as f32).collect()).unwrap();
        let check = |t: Dihedral, w: usize, want: &[f32]| {
            let out = img.transformed(t);
            assert_eq!((out.width(), out.pixels()), (w, want), "{t:?}");
        };
        check(Dihedral::Rotate90, 2, &[2., 5., 1., 4., 0., 3.]);
        check(Dihedral::Rotate180, 3, &[5., 4., 3., 2., 1., 0.]);
        check(Dihedral::Rotate270, 2, &[3., 0., 4., 1., 5., 2.]);
        check(Dihedral::FlipX, 3, &[3., 4., 5., 0., 1., 2.]);
        check(Dihedral::FlipY, 3, &[2., 1., 0., 5., 4., 3.]);
        check(Dihedral::FlipPlus1, 2, &[0., 3., 1., 4., 2., 5.]);
        check(Dihedral::FlipMinus1, 2, &[5., 2., 4., 1., 3., 0.]);
    }
}
