//! Image hashing for childsafe: safe decoding under limits, PDQ perceptual
//! hashes (with the eight dihedral variants), and MD5, SHA-1 and SHA-256 of
//! the original bytes.
//!
//! This crate turns bytes into signals and nothing else: it knows nothing
//! of banks, matching, policy or output formats (that is `childsafe-match`,
//! the engine and the binary). Its one piece of I/O is the file walker in
//! [`walk`], which reads files for `childsafe hash` and `childsafe match`.
//!
//! - Decoding ([`hash_image`], [`Hasher`]): JPEG, PNG, GIF (first frame),
//!   WebP, BMP and TIFF, with limits on bytes, width, height and pixels that
//!   are checked against the header before pixel memory is allocated
//!   ([`DecodeLimits`]). Large JPEGs are decoded at 1/8 scale in the DCT
//!   domain, and PDQ filters in one weighted step, unless
//!   [`HashConfig::full_decode`] asks for the reference's computation.
//! - PDQ ([`pdq`]): bit-exact with the C++ reference on the same pixels
//!   under [`HashConfig::full_decode`]; by default one weighted filter step
//!   that agrees with it to `f32` rounding.
//! - Cryptographic hashes ([`crypto_hashes`]): always computed, even when
//!   the image does not decode.
//!
//! ```
//! use childsafe_hash::{HashConfig, hash_image};
//!
//! let bytes = std::fs::read(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../../../shared/fixtures/pdq/images/pixel-exact/bridge-64x64.png"
//! ))
//! .unwrap();
//! let hashes = hash_image(&bytes, &HashConfig::default());
//! let pdq = hashes.pdq.unwrap();
//! assert_eq!(pdq.quality, 100);
//! assert_eq!(
//!     pdq.hash.to_string(),
//!     "58f870cee0f4e84f06370a32038f67f0b36e2ed596621e1d33e6b39c4e9c9b22"
//! );
//! ```

#![deny(missing_docs)]

mod crypto;
mod decode;
mod error;
mod jpeg;
mod jpeg_dc;
mod luma;
pub mod pdq;
pub mod walk;

pub use crate::{
    crypto::{CryptoHashes, crypto_hashes, md5_of, sha1_of, sha256_of},
    error::Error,
    luma::{Decoded, LumaImage},
    pdq::{Dihedral, Pdq, PdqHasher},
};

/// Limits that protect the hasher from hostile files. Every one is checked
/// against the file size or the image header before memory is allocated for
/// the file's content or its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest file read, in bytes. Default: 64 MiB.
    pub max_bytes: u64,
    /// Widest image decoded, in pixels. Default: 32768.
    pub max_width: u32,
    /// Tallest image decoded, in pixels. Default: 32768.
    pub max_height: u32,
    /// Most pixels (width x height) decoded. Default: 64 million, enough for
    /// a 50-megapixel camera, and about 800 MB of working memory per worker
    /// at that size (decoded samples plus two `f32` planes).
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> DecodeLimits {
        DecodeLimits {
            max_bytes: 64 << 20,
            max_width: 32_768,
            max_height: 32_768,
            max_pixels: 64_000_000,
        }
    }
}

/// How images are decoded and hashed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashConfig {
    /// Limits on file size and image dimensions.
    pub limits: DecodeLimits,
    /// Apply the EXIF orientation before hashing, so that a photo hashes as
    /// it is displayed. Default: off, as in the PDQ reference and the hash
    /// lists built with it (a bank built from unrotated pixels would
    /// otherwise miss).
    pub exif_orientation: bool,
    /// Compute exactly what the reference computes: every JPEG decoded at
    /// full resolution through its RGB conversion, and the PDQ filter run
    /// as the reference's four box passes, bit for bit. Default: off, which
    /// allows the DCT-domain 1/8 scale decode of large JPEGs, the Y plane of
    /// the others, and the one-step weighted decimation
    /// ([`PdqHasher::hash_fast`]): several times faster, within the
    /// reference tolerance (and bit-exact on the pixel-exact fixtures).
    pub full_decode: bool,
    /// Also compute the hashes of the seven other rotations and reflections.
    /// Default: off.
    pub dihedral: bool,
}

/// Everything hashed from one file: the cryptographic hashes always, PDQ if
/// the image decoded.
#[derive(Debug)]
pub struct ImageHashes {
    /// MD5, SHA-1 and SHA-256 of the bytes.
    pub crypto: CryptoHashes,
    /// PDQ, or why the image could not be decoded.
    pub pdq: Result<Pdq, Error>,
}

/// A reusable hasher: holds the decode buffer and the PDQ working memory,
/// which grow to the largest image seen. Keep one per worker thread.
#[derive(Debug, Default)]
pub struct Hasher {
    config: HashConfig,
    pdq: PdqHasher,
    scratch: decode::DecodeScratch,
}

impl std::fmt::Debug for decode::DecodeScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the pixels.
        write!(
            f,
            "DecodeScratch({} bytes reserved)",
            self.pixels.capacity()
        )
    }
}

impl Hasher {
    /// A hasher for `config`.
    pub fn new(config: HashConfig) -> Hasher {
        Hasher {
            config,
            ..Hasher::default()
        }
    }

    /// The configuration this hasher applies.
    pub fn config(&self) -> &HashConfig {
        &self.config
    }

    /// Hashes one file's bytes.
    pub fn hash(&mut self, bytes: &[u8]) -> ImageHashes {
        ImageHashes {
            crypto: crypto_hashes(bytes),
            pdq: self.pdq(bytes),
        }
    }

    /// Decodes and PDQ-hashes `bytes`, without the cryptographic hashes.
    pub fn pdq(&mut self, bytes: &[u8]) -> Result<Pdq, Error> {
        let decoded = self.decode(bytes)?;
        Ok(self.pdq_of(decoded))
    }

    /// Decodes `bytes` to the luminance PDQ hashes, without hashing it
    /// (decoding and hashing are benchmarked separately).
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Decoded, Error> {
        decode::decode_luma(bytes, &self.config, &mut self.scratch)
    }

    /// PDQ-hashes an image from [`Hasher::decode`].
    pub fn pdq_of(&mut self, decoded: Decoded) -> Pdq {
        self.pdq
            .hash_decoded(decoded, self.config.dihedral, self.config.full_decode)
    }
}

/// Hashes one image with a fresh [`Hasher`]. To hash many, keep a
/// [`Hasher`] per thread (or use [`walk`]) so buffers are reused.
pub fn hash_image(bytes: &[u8], config: &HashConfig) -> ImageHashes {
    Hasher::new(*config).hash(bytes)
}
