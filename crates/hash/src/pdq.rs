//! PDQ, Meta's 256-bit perceptual image hash, computed from a luminance
//! buffer exactly as the C++ reference (`facebook/ThreatExchange`,
//! `pdq/cpp/hashing/pdqhashing.cpp` and `pdq/cpp/downscaling/downscaling.cpp`)
//! computes it.
//!
//! "Exactly" is meant bit for bit: the same `f32` operations in the same
//! order (the Jarosz box filter's running sums, the decimation indices
//! computed in `f64`, the DCT matrix built in `f64` and rounded to `f32`,
//! the sequential `f32` dot products of the DCT, the integer quality metric,
//! Torben's median). Given the same pixels as the reference, the hash and the
//! quality are identical (tests/reference.rs checks this on every
//! pixel-exact fixture). The loops are reorganised for speed (rows swept
//! together so the compiler vectorises across columns, divisions batched,
//! the last filter pass computed only where the decimation samples it), but
//! every output value is produced by the same sequence of operations.
//!
//! [`PdqHasher::hash_fast`] is the exception, by choice: it applies the
//! same linear filter-and-decimate map as one weighted sum per sample, so
//! its values agree with the reference's to `f32` rounding, not bit for bit
//! (it is what the default, non-`full_decode` configuration uses).
//!
//! This module does no decoding and no I/O: it takes luminance and returns
//! bits. Decoding and the reference's luminance conversion live in
//! `decode.rs` and `luma.rs`.

use std::sync::LazyLock;

use childsafe_core::PdqHash;

use crate::luma::{Decoded, LumaImage, Plane};

/// The smallest width and height the reference hashes; anything smaller gets
/// the all-zero hash with quality 0, as in the reference.
pub const MIN_HASHABLE_DIM: usize = 5;

/// Side of the decimated image the DCT runs on.
const DOWNSAMPLE: usize = 64;
/// Side of the DCT output kept for the hash.
const DCT_SIDE: usize = 16;
/// Two horizontal and two vertical box passes make the reference's tent filter.
const JAROSZ_PASSES: usize = 2;

/// A PDQ hash with its quality, and optionally the hashes of the image's
/// seven other dihedral transforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pdq {
    /// The hash of the image as decoded.
    pub hash: PdqHash,
    /// The reference's quality metric, 0..=100; below 50 the hash is
    /// usually too unreliable to match on.
    pub quality: u8,
    /// The hashes of the eight dihedral transforms, in [`Dihedral::ALL`]
    /// order (the first equals `hash`), when they were asked for.
    pub dihedral: Option<[PdqHash; 8]>,
}

/// One of the eight rotations and reflections of a rectangle, named and
/// ordered as in the reference (`pdq-photo-hasher --pdqdih`) and in
/// `cpp-reference-pdq-dihedral.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dihedral {
    /// The image as it is.
    Original,
    /// Rotated 90 degrees counter-clockwise.
    Rotate90,
    /// Rotated 180 degrees.
    Rotate180,
    /// Rotated 270 degrees counter-clockwise (90 clockwise).
    Rotate270,
    /// Mirrored top to bottom (reflected across the horizontal axis).
    FlipX,
    /// Mirrored left to right (reflected across the vertical axis).
    FlipY,
    /// Transposed (reflected across the main diagonal).
    FlipPlus1,
    /// Anti-transposed (reflected across the anti-diagonal).
    FlipMinus1,
}

impl Dihedral {
    /// All eight, in the reference's output order.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// The stable name, as in the reference CSV header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dihedral::Original => "orig",
            Dihedral::Rotate90 => "rot90",
            Dihedral::Rotate180 => "rot180",
            Dihedral::Rotate270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flipplus1",
            Dihedral::FlipMinus1 => "flipminus1",
        }
    }

    /// Whether the transform swaps width and height.
    pub const fn transposes(self) -> bool {
        matches!(
            self,
            Dihedral::Rotate90 | Dihedral::Rotate270 | Dihedral::FlipPlus1 | Dihedral::FlipMinus1
        )
    }

    /// Where the output pixel at column `x`, row `y` of the transformed
    /// image comes from in a source of `width` x `height`.
    pub(crate) fn source_of(
        self,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) -> (usize, usize) {
        match self {
            Dihedral::Original => (x, y),
            // Counter-clockwise: the output's top row is the source's right column.
            Dihedral::Rotate90 => (width - 1 - y, x),
            Dihedral::Rotate180 => (width - 1 - x, height - 1 - y),
            Dihedral::Rotate270 => (y, height - 1 - x),
            Dihedral::FlipX => (x, height - 1 - y),
            Dihedral::FlipY => (width - 1 - x, y),
            Dihedral::FlipPlus1 => (y, x),
            Dihedral::FlipMinus1 => (width - 1 - y, height - 1 - x),
        }
    }

    /// Turns the DCT of the original into the DCT of this transform: a
    /// transpose and sign flips of odd frequencies, as the reference's
    /// `dct16OriginalTo*` functions do.
    fn apply_to_dct(self, a: &[[f32; DCT_SIDE]; DCT_SIDE]) -> [[f32; DCT_SIDE]; DCT_SIDE] {
        let mut b = [[0f32; DCT_SIDE]; DCT_SIDE];
        for (i, row) in a.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                // Index i is frequency i + 1, so an even index is an odd
                // frequency: the one a reflection negates.
                let (negate, transpose) = match self {
                    Dihedral::Original => (false, false),
                    Dihedral::Rotate90 => (j & 1 == 0, true),
                    Dihedral::Rotate180 => ((i + j) & 1 == 1, false),
                    Dihedral::Rotate270 => (i & 1 == 0, true),
                    Dihedral::FlipX => (i & 1 == 0, false),
                    Dihedral::FlipY => (j & 1 == 0, false),
                    Dihedral::FlipPlus1 => (false, true),
                    Dihedral::FlipMinus1 => ((i + j) & 1 == 1, true),
                };
                let v = if negate { -v } else { v };
                if transpose {
                    b[j][i] = v;
                } else {
                    b[i][j] = v;
                }
            }
        }
        b
    }
}

/// Reusable working memory for [`PdqHasher`]: one full-size float buffer
/// and the column sums. Keep one per worker thread (STYLE.md §7).
#[derive(Default)]
pub struct PdqHasher {
    scratch: Vec<f32>,
    sums: Vec<f32>,
    divisors: Vec<f32>,
}

impl std::fmt::Debug for PdqHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print buffer contents: they are (a blurred copy of) the image.
        f.debug_struct("PdqHasher")
            .field("capacity", &self.scratch.capacity())
            .finish()
    }
}

impl PdqHasher {
    /// A hasher with empty buffers; they grow to the largest image seen.
    pub fn new() -> PdqHasher {
        PdqHasher::default()
    }

    /// Hashes a luminance image. The image's buffer is used as working
    /// memory (the reference filters in place too), so it is consumed.
    ///
    /// With `dihedral`, the eight transform hashes are derived from the one
    /// DCT, and the computation follows the reference's dihedral entry point
    /// (`pdqDihedralHash256esFromFloatLuma`), which, unlike the plain one,
    /// filters a 64x64 input as well; the two can differ by float rounding
    /// on exactly-64x64 images, so each matches its own reference output.
    pub fn hash(&mut self, mut image: LumaImage, dihedral: bool) -> Pdq {
        let (cols, rows) = (image.width(), image.height());
        if rows < MIN_HASHABLE_DIM || cols < MIN_HASHABLE_DIM {
            let zero = PdqHash([0; 32]);
            return Pdq {
                hash: zero,
                quality: 0,
                dihedral: dihedral.then_some([zero; 8]),
            };
        }
        let luma = image.pixels_mut();
        let mut block = [[0f32; DOWNSAMPLE]; DOWNSAMPLE];
        if rows == DOWNSAMPLE && cols == DOWNSAMPLE && !dihedral {
            // The reference's shortcut for pre-downsampled input (video frames).
            for (dst, src) in block.iter_mut().zip(luma.chunks_exact(DOWNSAMPLE)) {
                dst.copy_from_slice(src);
            }
        } else {
            self.jarosz_and_decimate(luma, rows, cols, &mut block);
        }
        finish(&block, dihedral)
    }

    /// Hashes a luminance image like [`PdqHasher::hash`], but filters and
    /// decimates in one step: each of the 64x64 samples is a weighted sum of
    /// the pixels under it, with the weights of the reference's two box
    /// passes (edges included) computed in `f64`. The same linear map as the
    /// reference's four passes, summed in another order, so values agree to
    /// `f32` rounding and a hash bit differs only where a coefficient sits
    /// on the median (tests/reference.rs measures it). About one
    /// multiply-add per pixel, vectorised, instead of four serial passes.
    pub fn hash_fast(&mut self, image: LumaImage, dihedral: bool) -> Pdq {
        let (cols, rows) = (image.width(), image.height());
        if rows < MIN_HASHABLE_DIM || cols < MIN_HASHABLE_DIM {
            return self.hash(image, dihedral);
        }
        let mut block = [[0f32; DOWNSAMPLE]; DOWNSAMPLE];
        if rows == DOWNSAMPLE && cols == DOWNSAMPLE && !dihedral {
            for (dst, src) in block
                .iter_mut()
                .zip(image.pixels().chunks_exact(DOWNSAMPLE))
            {
                dst.copy_from_slice(src);
            }
        } else {
            self.weighted_decimate(image.pixels(), rows, cols, &mut block);
        }
        finish(&block, dihedral)
    }

    /// Hashes a decoded image, applying its display orientation: to the
    /// pixels when they are full resolution (exact), to the 64x64 block when
    /// the decoder produced 8x8 block means (that path is approximate anyway).
    /// `exact` chooses the reference's filter passes ([`PdqHasher::hash`])
    /// over the one-step weighted decimation ([`PdqHasher::hash_fast`]).
    pub(crate) fn hash_decoded(&mut self, decoded: Decoded, dihedral: bool, exact: bool) -> Pdq {
        let mut hash_pixels = |luma: LumaImage| {
            if exact {
                self.hash(luma, dihedral)
            } else {
                self.hash_fast(luma, dihedral)
            }
        };
        match decoded.plane {
            Plane::Pixels(luma) if decoded.orientation == Dihedral::Original => hash_pixels(luma),
            Plane::Pixels(luma) => hash_pixels(luma.transformed(decoded.orientation)),
            Plane::BlockMeans {
                means,
                width,
                height,
            } => {
                if width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM {
                    return self.hash(LumaImage::empty(), dihedral);
                }
                let mut block = block_means_to_64(&means, width, height, 8);
                if decoded.orientation != Dihedral::Original {
                    let flat: Vec<f32> = block.iter().flatten().copied().collect();
                    if let Some(square) = LumaImage::from_luma(DOWNSAMPLE, DOWNSAMPLE, flat) {
                        let turned = square.transformed(decoded.orientation);
                        for (dst, src) in block
                            .iter_mut()
                            .zip(turned.pixels().chunks_exact(DOWNSAMPLE))
                        {
                            dst.copy_from_slice(src);
                        }
                    }
                }
                finish(&block, dihedral)
            }
        }
    }

    /// Two passes of horizontal then vertical box filters (the reference's
    /// `jaroszFilterFloat`), then the 64x64 decimation (`decimateFloat`).
    ///
    /// The reference filters the whole image four times and then samples
    /// 64x64 points. The running sums must still run over every pixel, but
    /// the last two passes only need to *write* where the next step reads:
    /// the second horizontal pass at the 64 sampled columns, the second
    /// vertical pass at the 64 sampled rows of those columns.
    fn jarosz_and_decimate(
        &mut self,
        luma: &mut [f32],
        rows: usize,
        cols: usize,
        out: &mut [[f32; DOWNSAMPLE]; DOWNSAMPLE],
    ) {
        let window_along_rows = jarosz_window(cols, DOWNSAMPLE);
        let window_along_cols = jarosz_window(rows, DOWNSAMPLE);
        let sample_rows = decimation_indices(rows);
        let sample_cols = decimation_indices(cols);
        // Every pass writes every value it later reads, so the buffer only
        // grows and is never cleared (zeroing it costs a pass over memory).
        if self.scratch.len() < rows * cols {
            self.scratch.resize(rows * cols, 0.0);
        }
        let scratch = &mut self.scratch[..rows * cols];

        debug_assert_eq!(JAROSZ_PASSES, 2);
        // Pass 1: rows luma -> scratch, columns scratch -> luma.
        box_along_rows(
            luma,
            scratch,
            rows,
            cols,
            window_along_rows,
            &mut self.divisors,
        );
        box_along_cols(scratch, luma, rows, cols, window_along_cols, &mut self.sums);
        // Pass 2: rows luma -> scratch (only the sampled columns are read
        // later), then columns of scratch at the sampled columns only.
        box_along_rows(
            luma,
            scratch,
            rows,
            cols,
            window_along_rows,
            &mut self.divisors,
        );
        let mut column = vec![0f32; rows];
        let mut filtered = vec![0f32; rows];
        for (out_j, &col) in sample_cols.iter().enumerate() {
            for (r, v) in column.iter_mut().enumerate() {
                *v = scratch[r * cols + col];
            }
            box_1d(&column, &mut filtered, window_along_cols);
            for (out_i, &row) in sample_rows.iter().enumerate() {
                out[out_i][out_j] = filtered[row];
            }
        }
    }
}

impl PdqHasher {
    /// `block = Wy · luma · Wxᵀ`: first the 64 weighted sums of rows (each
    /// an `axpy` over contiguous rows, vectorised across columns), then the
    /// 64 weighted sums along each of those 64 rows.
    fn weighted_decimate(
        &mut self,
        luma: &[f32],
        rows: usize,
        cols: usize,
        out: &mut [[f32; DOWNSAMPLE]; DOWNSAMPLE],
    ) {
        let down = jarosz_weights(rows);
        let across = jarosz_weights(cols);
        let sampled = &mut self.scratch;
        sampled.clear();
        sampled.resize(DOWNSAMPLE * cols, 0.0);
        for (acc, (start, weights)) in sampled.chunks_exact_mut(cols).zip(&down) {
            for (w, row) in weights.iter().zip(luma[start * cols..].chunks_exact(cols)) {
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += w * v;
                }
            }
        }
        for (out_row, row) in out.iter_mut().zip(sampled.chunks_exact(cols)) {
            for (o, (start, weights)) in out_row.iter_mut().zip(&across) {
                *o = dot(weights, &row[*start..*start + weights.len()]);
            }
        }
    }
}

/// A dot product in eight independent lanes, so it vectorises (a single
/// running `f32` sum is a serial chain the compiler must keep in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// For each of the 64 samples along an axis of `len` pixels: the first
/// pixel it reads and its weights, those of the reference's two box passes
/// (`box1DFloat` twice, each averaging over the part of its window inside
/// the image) followed by the decimation at [`decimation_indices`].
fn jarosz_weights(len: usize) -> Vec<(usize, Vec<f32>)> {
    let window = jarosz_window(len, DOWNSAMPLE);
    let half = (window + 2) / 2;
    // One pass writes output o as the mean of inputs lo(o)..=hi(o).
    let span = |o: usize| {
        let lo = (o + half).saturating_sub(window);
        let hi = (o + half - 1).min(len - 1);
        (lo, hi)
    };
    decimation_indices(len)
        .iter()
        .map(|&centre| {
            let (lo, hi) = span(centre);
            let first = span(lo).0;
            let last = span(hi).1;
            let mut weights = vec![0f64; last - first + 1];
            let outer = 1.0 / (hi - lo + 1) as f64;
            for k in lo..=hi {
                let (a, b) = span(k);
                let inner = outer / (b - a + 1) as f64;
                for w in &mut weights[a - first..=b - first] {
                    *w += inner;
                }
            }
            (first, weights.into_iter().map(|w| w as f32).collect())
        })
        .collect()
}

/// The common tail: quality from the 64x64 block, the DCT, the bits, and
/// the dihedral variants from the same DCT.
pub(crate) fn finish(block: &[[f32; DOWNSAMPLE]; DOWNSAMPLE], dihedral: bool) -> Pdq {
    let quality = quality_metric(block);
    let dct = dct64_to_16(block);
    let hash = dct_to_hash(&dct);
    let dihedral = dihedral.then(|| {
        Dihedral::ALL.map(|t| match t {
            Dihedral::Original => hash,
            _ => dct_to_hash(&t.apply_to_dct(&dct)),
        })
    });
    Pdq {
        hash,
        quality,
        dihedral,
    }
}

/// The 64x64 block from 8x8 block means (the JPEG DC fast path), as close
/// as block means allow to what the reference's filter and decimation make
/// of the full image.
///
/// The reference's output sample j along an axis of `n` pixels is the
/// two-pass box filter (window `w`, a discrete tent) centred on pixel
/// `p_j`. Knowing only each block's mean, the best estimate weights every
/// block by the sum of the tent over that block's pixels; edges renormalise
/// over the pixels that exist. Plain decimation of the block means would
/// sample a 1/8-scale image with almost no low-pass left, and alias
/// (measured: 12 to 14 bits from the full decode on the bridge photos,
/// against 0 to 4 this way).
pub(crate) fn block_means_to_64(
    means: &LumaImage,
    width: usize,
    height: usize,
    block: usize,
) -> [[f32; DOWNSAMPLE]; DOWNSAMPLE] {
    let across = tent_weights(width, means.width(), block);
    let down = tent_weights(height, means.height(), block);
    // Horizontal: 64 values per block row.
    let mut rows = vec![[0f32; DOWNSAMPLE]; means.height()];
    for (row, src) in rows
        .iter_mut()
        .zip(means.pixels().chunks_exact(means.width()))
    {
        for (out, (start, weights)) in row.iter_mut().zip(&across) {
            *out = weights.iter().zip(&src[*start..]).map(|(w, v)| w * v).sum();
        }
    }
    let mut block = [[0f32; DOWNSAMPLE]; DOWNSAMPLE];
    for (out_row, (start, weights)) in block.iter_mut().zip(&down) {
        for (w, row) in weights.iter().zip(&rows[*start..]) {
            for (o, v) in out_row.iter_mut().zip(row.iter()) {
                *o += w * v;
            }
        }
    }
    block
}

/// For each of the 64 output samples along an axis of `pixels` pixels
/// covered by `blocks` blocks of 8: the first block and the normalised
/// weights of the blocks it reads.
fn tent_weights(pixels: usize, blocks: usize, block: usize) -> Vec<(usize, Vec<f32>)> {
    let window = jarosz_window(pixels, DOWNSAMPLE);
    // One box pass (box1DFloat) writes output i from inputs
    // i - (window - half) ..= i + (half - 1).
    let half = (window + 2) / 2;
    let (lo, hi) = (-((window - half) as isize), half as isize - 1);
    // Two passes: the box convolved with itself.
    let mut tent = vec![0f64; (2 * (hi - lo) + 1) as usize];
    for a in lo..=hi {
        for b in lo..=hi {
            tent[(a + b - 2 * lo) as usize] += 1.0;
        }
    }
    decimation_indices(pixels)
        .iter()
        .map(|&centre| {
            let mut weights = vec![0f64; blocks];
            for (t, &k) in tent.iter().enumerate() {
                let pixel = centre as isize + 2 * lo + t as isize;
                if (0..pixels as isize).contains(&pixel) {
                    // The pixel's value estimated by linear interpolation
                    // between the two nearest block centres.
                    let pos = (pixel as f64 + 0.5) / block as f64 - 0.5;
                    let below = pos.floor();
                    let frac = pos - below;
                    let clamp = |i: f64| (i.max(0.0) as usize).min(blocks - 1);
                    weights[clamp(below)] += k * (1.0 - frac);
                    weights[clamp(below + 1.0)] += k * frac;
                }
            }
            let first = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
            let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(first);
            let total: f64 = weights[first..=last].iter().sum();
            let norm = if total > 0.0 { total } else { 1.0 };
            (
                first,
                weights[first..=last]
                    .iter()
                    .map(|w| (w / norm) as f32)
                    .collect(),
            )
        })
        .collect()
}

/// The reference's `computeJaroszFilterWindowSize`: half a decimated pixel,
/// rounded up, because two passes are made.
fn jarosz_window(old_dimension: usize, new_dimension: usize) -> usize {
    old_dimension.div_ceil(2 * new_dimension)
}

/// The reference's `decimateFloat` indices: the centre of each of 64 cells,
/// computed in `f64` and truncated.
fn decimation_indices(n: usize) -> [usize; DOWNSAMPLE] {
    std::array::from_fn(|out| (((out as f64 + 0.5) * n as f64) / DOWNSAMPLE as f64) as usize)
}

/// The four phases of the reference's `box1DFloat` for a vector of `len`:
/// (first sums without output, outputs while the window grows, outputs with
/// the full window, outputs while the window shrinks).
struct BoxPhases {
    grow_silent: usize,
    grow: usize,
    full: usize,
    shrink: usize,
}

fn box_phases(len: usize, window: usize) -> BoxPhases {
    let half = (window + 2) / 2;
    BoxPhases {
        grow_silent: half - 1,
        grow: window - half + 1,
        full: len - window,
        shrink: half - 1,
    }
}

/// The divisor the reference uses for each output position
/// (`sum / current_window_size`), as `f32`.
fn fill_divisors(divisors: &mut Vec<f32>, len: usize, window: usize) {
    let p = box_phases(len, window);
    divisors.clear();
    divisors.extend((0..p.grow).map(|t| (p.grow_silent + t + 1) as f32));
    divisors.extend((0..p.full).map(|_| window as f32));
    divisors.extend((0..p.shrink).map(|t| (window - 1 - t) as f32));
}

/// The reference's `box1DFloat` on one contiguous vector.
fn box_1d(input: &[f32], output: &mut [f32], window: usize) {
    let p = box_phases(input.len(), window);
    let mut sum = 0f32;
    let mut size = 0usize;
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    for _ in 0..p.grow_silent {
        sum += input[ri];
        size += 1;
        ri += 1;
    }
    for _ in 0..p.grow {
        sum += input[ri];
        size += 1;
        output[oi] = sum / size as f32;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p.full {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / size as f32;
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p.shrink {
        sum -= input[li];
        size -= 1;
        output[oi] = sum / size as f32;
        li += 1;
        oi += 1;
    }
}

/// Rows filtered in an interleaved group, so the running sums of different
/// rows overlap in the pipeline instead of waiting on one another.
const ROW_GROUP: usize = 8;

/// The reference's `boxAlongRowsFloat`. Each row's running sum is a serial
/// chain of additions, so eight rows are advanced together; the sums are
/// stored first and divided afterwards in a vectorised pass (`x / d` on the
/// same `x` and `d` is the same operation whenever it happens).
fn box_along_rows(
    input: &[f32],
    output: &mut [f32],
    rows: usize,
    cols: usize,
    window: usize,
    divisors: &mut Vec<f32>,
) {
    fill_divisors(divisors, cols, window);
    let p = box_phases(cols, window);
    let mut r0 = 0;
    while r0 < rows {
        let group = ROW_GROUP.min(rows - r0);
        let base = r0 * cols;
        let mut sums = [0f32; ROW_GROUP];
        let at = |k: usize, c: usize| base + k * cols + c;
        for c in 0..p.grow_silent {
            for k in 0..group {
                sums[k] += input[at(k, c)];
            }
        }
        for t in 0..p.grow {
            let c = p.grow_silent + t;
            for k in 0..group {
                sums[k] += input[at(k, c)];
                output[at(k, t)] = sums[k];
            }
        }
        for t in 0..p.full {
            let (ri, li, oi) = (window + t, t, p.grow + t);
            for k in 0..group {
                sums[k] += input[at(k, ri)];
                sums[k] -= input[at(k, li)];
                output[at(k, oi)] = sums[k];
            }
        }
        for t in 0..p.shrink {
            let (li, oi) = (p.full + t, p.grow + p.full + t);
            for k in 0..group {
                sums[k] -= input[at(k, li)];
                output[at(k, oi)] = sums[k];
            }
        }
        for row in output[base..base + group * cols].chunks_exact_mut(cols) {
            for (v, d) in row.iter_mut().zip(divisors.iter()) {
                *v /= *d;
            }
        }
        r0 += group;
    }
}

/// The reference's `boxAlongColsFloat`, swept row by row so that every
/// column's running sum advances in one vectorised step.
fn box_along_cols(
    input: &[f32],
    output: &mut [f32],
    rows: usize,
    cols: usize,
    window: usize,
    sums: &mut Vec<f32>,
) {
    let p = box_phases(rows, window);
    sums.clear();
    sums.resize(cols, 0.0);
    let row = |r: usize| r * cols..(r + 1) * cols;
    for r in 0..p.grow_silent {
        for (s, v) in sums.iter_mut().zip(&input[row(r)]) {
            *s += *v;
        }
    }
    for t in 0..p.grow {
        let size = (p.grow_silent + t + 1) as f32;
        let add = &input[row(p.grow_silent + t)];
        let out = &mut output[row(t)];
        for ((s, v), o) in sums.iter_mut().zip(add).zip(out.iter_mut()) {
            *s += *v;
            *o = *s / size;
        }
    }
    let size = window as f32;
    for t in 0..p.full {
        let add = &input[row(window + t)];
        let sub = &input[row(t)];
        let out = &mut output[row(p.grow + t)];
        for (((s, a), d), o) in sums.iter_mut().zip(add).zip(sub).zip(out.iter_mut()) {
            *s += *a;
            *s -= *d;
            *o = *s / size;
        }
    }
    for t in 0..p.shrink {
        let size = (window - 1 - t) as f32;
        let sub = &input[row(p.full + t)];
        let out = &mut output[row(p.grow + p.full + t)];
        for ((s, d), o) in sums.iter_mut().zip(sub).zip(out.iter_mut()) {
            *s -= *d;
            *o = *s / size;
        }
    }
}

/// The reference's `pdqImageDomainQualityMetric`: the sum of significant
/// vertical and horizontal gradients of the 64x64 image, in integer steps
/// of 1% of the luminance range, scaled by 1/90 and capped at 100.
fn quality_metric(block: &[[f32; DOWNSAMPLE]; DOWNSAMPLE]) -> u8 {
    // Each step is float arithmetic truncated to int, as `int d = ((u - v) * 100) / 255;`.
    let step = |u: f32, v: f32| (((u - v) * 100.0f32) / 255.0f32) as i32;
    let mut gradient_sum: i64 = 0;
    for (upper, lower) in block.iter().zip(block.iter().skip(1)) {
        for (&u, &v) in upper.iter().zip(lower.iter()) {
            gradient_sum += i64::from(step(u, v).unsigned_abs());
        }
    }
    for row in block {
        for j in 0..DOWNSAMPLE - 1 {
            gradient_sum += i64::from(step(row[j], row[j + 1]).unsigned_abs());
        }
    }
    // Luminance is 0..=255, so each step is at most 100 and the sum fits an
    // i32 as in the reference; the cap makes the conversion infallible.
    u8::try_from((gradient_sum / 90).min(100)).unwrap_or(100)
}

/// The 16x64 DCT matrix of the reference: row i is the cosine of frequency
/// i + 1, built in `f64` from an `f32` scale factor and rounded to `f32`.
static DCT_MATRIX: LazyLock<[[f32; DOWNSAMPLE]; DCT_SIDE]> = LazyLock::new(|| {
    const PI: f64 = std::f64::consts::PI;
    let scale = (2.0f64 / DOWNSAMPLE as f64).sqrt() as f32;
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            let angle = (PI / 2.0 / DOWNSAMPLE as f64) * (i + 1) as f64 * (2 * j + 1) as f64;
            (f64::from(scale) * angle.cos()) as f32
        })
    })
});

/// The reference's `dct64To16`: B = D A Dᵀ, every dot product summed in
/// `f32` from k = 0 to 63. The loops run over k outermost so the compiler
/// can vectorise across the output index; each output still sees its terms
/// in the reference's order.
fn dct64_to_16(a: &[[f32; DOWNSAMPLE]; DOWNSAMPLE]) -> [[f32; DCT_SIDE]; DCT_SIDE] {
    let d = &*DCT_MATRIX;
    // T = D A, 16 x 64.
    let mut t = [[0f32; DOWNSAMPLE]; DCT_SIDE];
    for (t_row, d_row) in t.iter_mut().zip(d.iter()) {
        for (a_row, &dk) in a.iter().zip(d_row.iter()) {
            for (tv, &av) in t_row.iter_mut().zip(a_row.iter()) {
                *tv += dk * av;
            }
        }
    }
    // B = T Dᵀ, 16 x 16: B[i][j] = sum over k of T[i][k] * D[j][k].
    let mut b = [[0f32; DCT_SIDE]; DCT_SIDE];
    for (b_row, t_row) in b.iter_mut().zip(t.iter()) {
        for (k, &tk) in t_row.iter().enumerate() {
            for (bv, d_row) in b_row.iter_mut().zip(d.iter()) {
                *bv += tk * d_row[k];
            }
        }
    }
    b
}

/// The reference's `pdqBuffer16x16ToBits`: bit `i * 16 + j` is set when
/// coefficient (i, j) is above the median.
fn dct_to_hash(dct: &[[f32; DCT_SIDE]; DCT_SIDE]) -> PdqHash {
    let mut flat = [0f32; DCT_SIDE * DCT_SIDE];
    for (dst, row) in flat.chunks_exact_mut(DCT_SIDE).zip(dct.iter()) {
        dst.copy_from_slice(row);
    }
    let median = torben_median(&flat);
    let mut words = [0u16; 16];
    for (word, row) in words.iter_mut().zip(dct.iter()) {
        for (j, &v) in row.iter().enumerate() {
            if v > median {
                *word |= 1 << j;
            }
        }
    }
    PdqHash::from_words(words)
}

/// Torben Mogensen's median, as implemented by N. Devillard and used by the
/// reference (`pdq/cpp/hashing/torben.cpp`): the same guesses in the same
/// `f32` arithmetic, so ties and even-length inputs resolve identically.
fn torben_median(m: &[f32]) -> f32 {
    let n = m.len();
    let half = n.div_ceil(2);
    let (mut min, mut max) = (m[0], m[0]);
    for &v in &m[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    // Every round narrows [min, max] to values present in `m`, so it ends
    // within `n` rounds for finite input. The bound only guards against a
    // NaN, which finite luminance cannot produce.
    let (mut less, mut equal, mut guess, mut max_lt_guess, mut min_gt_guess);
    let mut rounds = 0;
    loop {
        guess = (min + max) / 2.0;
        less = 0;
        let mut greater = 0;
        equal = 0;
        max_lt_guess = min;
        min_gt_guess = max;
        for &v in m {
            if v < guess {
                less += 1;
                if v > max_lt_guess {
                    max_lt_guess = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_gt_guess {
                    min_gt_guess = v;
                }
            } else {
                equal += 1;
            }
        }
        rounds += 1;
        if (less <= half && greater <= half) || rounds > 2 * n + 64 {
            break;
        } else if less > greater {
            max = max_lt_guess;
        } else {
            min = min_gt_guess;
        }
    }
    if less >= half {
        max_lt_guess
    } else if less + equal >= half {
        guess
    } else {
        min_gt_guess
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_1d_matches_the_reference_comment() {
        // downscaling.cpp's worked example: window 7 over 0..16.
        let input: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut out = vec![0f32; 16];
        box_1d(&input, &mut out, 7);
        let sums = [
            6, 10, 15, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 75, 65, 54,
        ];
        let sizes = [4, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 5, 4];
        for ((o, s), n) in out.iter().zip(sums).zip(sizes) {
            assert_eq!(*o, s as f32 / n as f32);
        }
        // And window 8.
        box_1d(&input, &mut out, 8);
        let sums = [
            10, 15, 21, 28, 36, 44, 52, 60, 68, 76, 84, 92, 84, 75, 65, 54,
        ];
        let sizes = [5, 6, 7, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7, 6, 5, 4];
        for ((o, s), n) in out.iter().zip(sums).zip(sizes) {
            assert_eq!(*o, s as f32 / n as f32);
        }
    }

    #[test]
    fn interleaved_filters_equal_the_plain_one() {
        let (rows, cols) = (37, 53);
        let input: Vec<f32> = (0..rows * cols)
            .map(|v| ((v * 7919) % 256) as f32 * 0.37)
            .collect();
        for window in [1, 2, 3, 7, 8] {
            let mut fast = vec![0f32; rows * cols];
            box_along_rows(&input, &mut fast, rows, cols, window, &mut Vec::new());
            let mut plain = vec![0f32; cols];
            for r in 0..rows {
                box_1d(&input[r * cols..(r + 1) * cols], &mut plain, window);
                assert_eq!(&fast[r * cols..(r + 1) * cols], &plain[..]);
            }
            box_along_cols(&input, &mut fast, rows, cols, window, &mut Vec::new());
            let mut column = vec![0f32; rows];
            let mut plain = vec![0f32; rows];
            for c in 0..cols {
                for r in 0..rows {
                    column[r] = input[r * cols + c];
                }
                box_1d(&column, &mut plain, window);
                for r in 0..rows {
                    assert_eq!(fast[r * cols + c], plain[r]);
                }
            }
        }
    }

    #[test]
    fn jarosz_weights_equal_the_box_passes_on_impulses() {
        // The weights are the two passes applied to each unit impulse, read
        // at the decimation indices: check that on a few lengths.
        for len in [5, 64, 100, 129, 333, 1000] {
            let window = jarosz_window(len, DOWNSAMPLE);
            let weights = jarosz_weights(len);
            let centres = decimation_indices(len);
            for x in 0..len {
                let mut impulse = vec![0f32; len];
                impulse[x] = 1.0;
                let mut once = vec![0f32; len];
                let mut twice = vec![0f32; len];
                box_1d(&impulse, &mut once, window);
                box_1d(&once, &mut twice, window);
                for ((start, w), &centre) in weights.iter().zip(&centres) {
                    let got = x
                        .checked_sub(*start)
                        .and_then(|i| w.get(i))
                        .copied()
                        .unwrap_or(0.0);
                    assert!(
                        (got - twice[centre]).abs() < 1e-6,
                        "len {len} pixel {x} centre {centre}: {got} vs {}",
                        twice[centre]
                    );
                }
            }
        }
    }

    #[test]
    fn torben_is_the_lower_median_on_distinct_values() {
        let values: Vec<f32> = (0..256).map(|v| ((v * 37) % 256) as f32).collect();
        assert_eq!(torben_median(&values), 127.0);
        assert_eq!(torben_median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(torben_median(&[5.0; 256]), 5.0);
    }

    #[test]
    fn jarosz_windows_are_the_reference_sizes() {
        assert_eq!(jarosz_window(64, 64), 1);
        assert_eq!(jarosz_window(128, 64), 1);
        assert_eq!(jarosz_window(129, 64), 2);
        assert_eq!(jarosz_window(1024, 64), 8);
        assert_eq!(jarosz_window(5, 64), 1);
    }
}
