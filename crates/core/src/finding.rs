//! A finding: one matcher's or detector's statement about one content item.
//!
//! This is the shape DESIGN.md fixes for every front end, in JSON and in the
//! store. A finding carries ids, scores, distances and byte offsets, never the
//! content itself (DESIGN invariant 1), so it may be logged and stored freely.

use serde::{Deserialize, Serialize};

use crate::{category::Category, signal::SignalKind};

/// One statement about a content item: what it is, how sure, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What the content is said to be.
    pub category: Category,
    /// Confidence in 0.0..=1.0; 1.0 for hash and list matches.
    pub score: f64,
    /// Which matcher or detector said so, with its evidence.
    pub source: FindingSource,
    /// Byte ranges of the original text that caused the finding (empty for images).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
}

impl Finding {
    /// A finding with no spans.
    pub fn new(category: Category, score: f64, source: FindingSource) -> Finding {
        Finding {
            category,
            score,
            source,
            spans: Vec::new(),
        }
    }
}

/// Where a finding came from: the matcher or detector, and its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingSource {
    /// The kind of matcher or detector.
    pub kind: SourceKind,
    /// Its name: a bank or list name, or a detector name such as `text.solicitation`.
    pub name: String,
    /// The signal that matched, for bank and list matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalKind>,
    /// The matching entry's id, for bank and list matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// Hamming distance in bits, for PDQ matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u32>,
}

impl FindingSource {
    /// A built-in detector, e.g. `text.solicitation`.
    pub fn detector(name: impl Into<String>) -> FindingSource {
        FindingSource {
            kind: SourceKind::Detector,
            name: name.into(),
            signal: None,
            entry_id: None,
            distance: None,
        }
    }

    /// A remote classifier, e.g. `llama_guard`.
    pub fn classifier(name: impl Into<String>) -> FindingSource {
        FindingSource {
            kind: SourceKind::Classifier,
            ..FindingSource::detector(name)
        }
    }

    /// A hash bank entry that matched.
    pub fn bank(
        bank: impl Into<String>,
        signal: SignalKind,
        entry_id: impl Into<String>,
        distance: Option<u32>,
    ) -> FindingSource {
        FindingSource {
            kind: SourceKind::Bank,
            name: bank.into(),
            signal: Some(signal),
            entry_id: Some(entry_id.into()),
            distance,
        }
    }
}

/// The kind of matcher or detector behind a finding. Stable names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceKind {
    /// A hash bank (PDQ near-match or exact cryptographic hash).
    Bank,
    /// A URL or domain list.
    UrlList,
    /// An operator term list, matched after normalisation.
    TermList,
    /// A built-in detector.
    Detector,
    /// A remote classifier (Llama Guard, OpenAI moderation).
    Classifier,
    /// The engine itself, e.g. a required detector that failed (fail closed).
    Engine,
}

impl SourceKind {
    /// The stable name, as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Bank => "bank",
            SourceKind::UrlList => "url_list",
            SourceKind::TermList => "term_list",
            SourceKind::Detector => "detector",
            SourceKind::Classifier => "classifier",
            SourceKind::Engine => "engine",
        }
    }
}

/// A byte range of the original text, and the part it played.
///
/// Offsets are into the ORIGINAL text as received (not the normalised form),
/// so evidence can be located without re-running anything. `end` is exclusive
/// and both offsets fall on UTF-8 character boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Start byte offset, inclusive.
    pub start: usize,
    /// End byte offset, exclusive.
    pub end: usize,
    /// What this span contributed.
    pub role: SpanRole,
    /// For conversations: the index of the turn (message) the offsets refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
}

/// What a span contributed to a finding. Stable names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SpanRole {
    /// A reference to a minor.
    MinorIndicator,
    /// Sexual content or intent.
    SexualContent,
    /// A request framing: write, generate, draw, find, send, trade.
    Intent,
    /// A disclosure or a request for help.
    HelpSeeking,
    /// An operator term list hit.
    Term,
    /// Grooming: asking the other person's age.
    AgeProbing,
    /// Grooming: flattery and trust building.
    TrustBuilding,
    /// Grooming: asking to keep the conversation secret.
    Secrecy,
    /// Grooming: isolating the child from parents or friends.
    Isolation,
    /// Grooming: moving to another platform or a private channel.
    PlatformMove,
    /// Grooming: offering gifts, money or game currency.
    Gift,
    /// Grooming or sextortion: asking for images.
    ImageRequest,
    /// Grooming: asking to meet in person.
    MeetingRequest,
    /// Sextortion: a threat to share images.
    Threat,
    /// Sextortion: a demand for payment or more images.
    Demand,
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn json_shape_matches_design() {
        let bank = Finding::new(
            Category::CsamKnown,
            1.0,
            FindingSource::bank("ncmec-industry", SignalKind::Pdq, "e-1042", Some(12)),
        );
        expect![[r#"{"category":"csam_known","score":1.0,"source":{"kind":"bank","name":"ncmec-industry","signal":"pdq","entry_id":"e-1042","distance":12}}"#]]
            .assert_eq(&serde_json::to_string(&bank).unwrap());

        let mut text = Finding::new(
            Category::CsamSolicitation,
            0.97,
            FindingSource::detector("text.solicitation"),
        );
        text.spans.push(Span {
            start: 9,
            end: 14,
            role: SpanRole::MinorIndicator,
            turn: None,
        });
        expect![[r#"{"category":"csam_solicitation","score":0.97,"source":{"kind":"detector","name":"text.solicitation"},"spans":[{"start":9,"end":14,"role":"minor_indicator"}]}"#]]
            .assert_eq(&serde_json::to_string(&text).unwrap());
        let back: Finding = serde_json::from_str(&serde_json::to_string(&text).unwrap()).unwrap();
        assert_eq!(back, text);
    }
}
