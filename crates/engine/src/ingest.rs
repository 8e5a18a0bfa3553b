//! Ingest checks: a dataset sample's images, URL and captions, decided
//! together, for whole batches of samples at once (the dataset scanner's
//! path, issue 4).
//!
//! Image signals are matched against the hash banks in one
//! [`Banks::lookup_batch`] call per batch (sorted probes answer far faster
//! together than one by one); the URL against every URL list; each caption
//! through the built-in text detectors. Images that did not decode, and
//! parts of the sample that could not be read, are failures: the surface's
//! fail mode decides (`undecodable` action when it fails closed). The
//! decision step is the engine's own, as for every other surface.
//!
//! Banks and URL lists are passed in rather than held, so one engine serves
//! scans with different lists; the engine holds policy and detectors.

use childsafe_core::{Decision, Finding, Surface};
use childsafe_match::{Banks, ImageSignals, UrlList};

use crate::{Engine, builtin};

/// One dataset sample's signals. Holds caption text, so `Debug` shows
/// lengths only.
pub struct IngestSample<'a> {
    /// Signals of each image that decoded or was at least hashed (exact
    /// hashes are always present; PDQ only when the image decoded).
    pub images: &'a [ImageSignals],
    /// Images that did not decode (a failure each: `image.undecodable`).
    pub undecodable: usize,
    /// The sample's source URL.
    pub url: Option<&'a str>,
    /// Captions and text fields.
    pub texts: &'a [String],
    /// Other parts that could not be read, by name (`read.json`, ...).
    pub failures: &'a [String],
}

impl std::fmt::Debug for IngestSample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestSample")
            .field("images", &self.images.len())
            .field("undecodable", &self.undecodable)
            .field("has_url", &self.url.is_some())
            .field(
                "text_bytes",
                &self.texts.iter().map(String::len).collect::<Vec<_>>(),
            )
            .field("failures", &self.failures)
            .finish()
    }
}

/// The failure name recorded for an image that did not decode.
pub const UNDECODABLE_FAILURE: &str = "image.undecodable";

/// Matches one request's images against the banks in one
/// [`Banks::lookup_batch`] call: the findings of each image, in order (the
/// gateway's input surface, with [`Engine::check_conversation_with_images`]).
pub fn match_images(banks: &Banks, images: &[ImageSignals]) -> Vec<Vec<Finding>> {
    banks
        .lookup_batch(images)
        .into_iter()
        .map(|outcome| outcome.matches.iter().map(|m| m.to_finding()).collect())
        .collect()
}

impl Engine {
    /// Decides a batch of dataset samples on `surface` (normally
    /// [`Surface::Ingest`]): one decision per sample, in order, each
    /// listing every finding behind it.
    pub fn check_samples(
        &self,
        surface: Surface,
        banks: &Banks,
        url_lists: &[UrlList],
        samples: &[IngestSample<'_>],
    ) -> Vec<Decision> {
        let probes: Vec<ImageSignals> = samples
            .iter()
            .flat_map(|s| s.images.iter().copied())
            .collect();
        let mut outcomes = banks.lookup_batch(&probes).into_iter();
        samples
            .iter()
            .map(|sample| {
                let mut findings: Vec<Finding> = Vec::new();
                for _ in sample.images {
                    if let Some(outcome) = outcomes.next() {
                        findings.extend(outcome.matches.iter().map(|m| m.to_finding()));
                    }
                }
                if let Some(url) = sample.url {
                    for list in url_lists {
                        if let Some(hit) = list.matches(url) {
                            findings.push(hit.to_finding());
                        }
                    }
                }
                for text in sample.texts {
                    findings.extend(self.detector.detect(text));
                }
                let mut failures: Vec<String> = sample.failures.to_vec();
                failures.extend(std::iter::repeat_n(
                    UNDECODABLE_FAILURE.to_owned(),
                    sample.undecodable,
                ));
                self.decide(surface, vec![builtin(findings)], failures)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use childsafe_core::{Action, Category, Policy, Sha256};
    use childsafe_match::{BankSettings, Signal, entry_from_hash};

    use super::*;
    use crate::TextDetector;

    fn check(banks: &Banks, lists: &[UrlList], samples: &[IngestSample<'_>]) -> Vec<Decision> {
        let engine = Engine::new(Policy::default(), TextDetector::built_in().unwrap());
        engine.check_samples(Surface::Ingest, banks, lists, samples)
    }

    #[test]
    fn images_urls_texts_and_failures_decide_per_sample() {
        let dir = tempfile::tempdir().unwrap();
        let mut banks = Banks::open(dir.path()).unwrap();
        banks.create("standin", BankSettings::default()).unwrap();
        let listed = Sha256([7; 32]);
        banks
            .add(
                "standin",
                vec![entry_from_hash(
                    Signal::Sha256(listed),
                    Some("e-1"),
                    "test",
                    Category::CsamKnown,
                )],
            )
            .unwrap();
        let lists = [UrlList::parse(
            "urls",
            "urls.txt",
            b"listed.example.com\n",
            Category::CsamKnown,
        )
        .unwrap()];
        let hit = [ImageSignals {
            sha256: Some(listed),
            ..ImageSignals::default()
        }];
        let miss = [ImageSignals {
            sha256: Some(Sha256([8; 32])),
            ..ImageSignals::default()
        }];
        let texts = ["a photo of a lighthouse at dusk".to_owned()];
        let sample = |images, undecodable, url| IngestSample {
            images,
            undecodable,
            url,
            texts: &texts,
            failures: &[],
        };
        let decisions = check(
            &banks,
            &lists,
            &[
                sample(&hit, 0, None),
                sample(&miss, 0, Some("https://LISTED.example.com:443/a/b/")),
                sample(&miss, 0, Some("https://example.org/")),
                sample(&[], 1, None),
            ],
        );
        assert_eq!(decisions[0].action, Action::Quarantine);
        assert!(decisions[0].report);
        assert_eq!(
            decisions[0].findings[0].source.entry_id.as_deref(),
            Some("e-1")
        );
        assert_eq!(decisions[1].categories, [Category::CsamKnown]);
        assert_eq!(decisions[2].action, Action::Allow);
        assert_eq!(decisions[3].action, Action::Quarantine);
        assert_eq!(decisions[3].failures, [UNDECODABLE_FAILURE]);
    }
}
