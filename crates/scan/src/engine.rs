//! The engine as the scanner's [`Checker`]: each batch of samples goes to
//! [`Engine::check_samples`] on the `ingest` surface, with the banks and URL
//! lists of the scan. This file only converts the scanner's signals into the
//! engine's; every decision is the engine's.

use childsafe_core::{Decision, SignalKind, Surface};
use childsafe_engine::{Engine, IngestSample};
use childsafe_match::{Banks, ImageSignals, UrlList};

use crate::check::{Checker, SampleSignals};

/// The engine, with the banks and URL lists a scan matches against.
pub struct EngineChecker<'a> {
    /// Policy and text detectors.
    pub engine: &'a Engine,
    /// The hash banks.
    pub banks: &'a Banks,
    /// URL and domain lists.
    pub url_lists: &'a [UrlList],
}

impl std::fmt::Debug for EngineChecker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineChecker")
            .field("url_lists", &self.url_lists.len())
            .finish_non_exhaustive()
    }
}

impl Checker for EngineChecker<'_> {
    fn check_batch(&self, samples: &[SampleSignals<'_>]) -> Vec<Decision> {
        let converted: Vec<(Vec<ImageSignals>, usize, Vec<String>)> = samples
            .iter()
            .map(|sample| {
                let images = sample
                    .images
                    .iter()
                    .map(|image| ImageSignals {
                        pdq: image.pdq.as_ref().ok().map(|pdq| (pdq.hash, pdq.quality)),
                        md5: image.md5,
                        sha1: image.sha1,
                        sha256: image.sha256,
                    })
                    .collect();
                let undecodable = sample
                    .images
                    .iter()
                    .filter(|image| image.pdq.is_err())
                    .count();
                let failures = sample
                    .problems
                    .iter()
                    .map(|p| format!("read.{}", p.what))
                    .collect();
                (images, undecodable, failures)
            })
            .collect();
        let ingest: Vec<IngestSample<'_>> = samples
            .iter()
            .zip(&converted)
            .map(|(sample, (images, undecodable, failures))| IngestSample {
                images,
                undecodable: *undecodable,
                url: sample.url,
                texts: sample.texts,
                failures,
            })
            .collect();
        self.engine
            .check_samples(Surface::Ingest, self.banks, self.url_lists, &ingest)
    }

    fn matches_digest(&self, kind: SignalKind) -> bool {
        self.banks.matches_exact(kind)
    }
}
