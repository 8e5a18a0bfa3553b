//! What the scanner asks of the engine: a decision per sample, for a batch
//! of samples at once, on the `ingest` surface.
//!
//! The scanner computes each image's signals once (PDQ of the decoded
//! pixels, and those of MD5, SHA-1 and SHA-256 of the original bytes that
//! the checker can match, with `childsafe-hash`, in parallel) and hands a
//! whole batch to a [`Checker`], so that bank lookups can be batched. The engine implements it (see
//! `childsafe_engine`); the scanner never applies policy itself (the engine
//! is the one place findings become decisions).

use childsafe_core::{Decision, Md5, Sha1, Sha256, SignalKind};
use childsafe_hash::Pdq;

use crate::sample::Problem;

/// One image's signals, as the scanner computed them.
#[derive(Debug)]
pub struct ScannedImage {
    /// PDQ, or why the image could not be decoded.
    pub pdq: Result<Pdq, childsafe_hash::Error>,
    /// MD5 of the bytes, if the checker matches MD5 ([`Checker::matches_digest`]).
    pub md5: Option<Md5>,
    /// SHA-1 of the bytes, if the checker matches SHA-1.
    pub sha1: Option<Sha1>,
    /// SHA-256 of the bytes, if the checker matches SHA-256.
    pub sha256: Option<Sha256>,
}

/// One sample's signals, as the checker sees them. Holds text content (the
/// captions are checked), so `Debug` is by hand and shows lengths only.
pub struct SampleSignals<'a> {
    /// Signals of each image (PDQ is an error when the image does not decode).
    pub images: &'a [ScannedImage],
    /// Captions and text fields.
    pub texts: &'a [String],
    /// The sample's URL, if recorded.
    pub url: Option<&'a str>,
    /// Parts of the sample that could not be read: the policy's fail mode
    /// decides (as for a detector that could not answer).
    pub problems: &'a [Problem],
}

impl std::fmt::Debug for SampleSignals<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleSignals")
            .field("images", &self.images.len())
            .field(
                "text_bytes",
                &self.texts.iter().map(String::len).collect::<Vec<_>>(),
            )
            .field("has_url", &self.url.is_some())
            .field("problems", &self.problems)
            .finish()
    }
}

/// Decides samples on the `ingest` surface.
pub trait Checker: Send + Sync {
    /// One decision per sample, in order. Implementations batch their
    /// lookups (e.g. every PDQ hash of the batch against the banks at once).
    fn check_batch(&self, samples: &[SampleSignals<'_>]) -> Vec<Decision>;

    /// Whether a digest of this kind (MD5, SHA-1 or SHA-256) can change a
    /// decision. The scanner skips the digests that cannot, which are most
    /// of its hashing time when no list carries them; a removed sample's
    /// manifest row still gets all three. Default: every digest counts.
    fn matches_digest(&self, kind: SignalKind) -> bool {
        let _ = kind;
        true
    }
}
