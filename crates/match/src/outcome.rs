//! What a lookup takes and returns: an image's signals in, its matches (and
//! the matches a suppression bank cancelled, with the reason) out.

use childsafe_core::{Category, Finding, FindingSource, Md5, PdqHash, Sha1, Sha256, SignalKind};

/// The signals of one input, as computed by `childsafe-hash` (or supplied by
/// a user who already holds hashes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageSignals {
    /// PDQ hash and its quality (0-100). A hash supplied without its quality
    /// should be given quality 100: the bank's quality floor then does not
    /// apply (the caller vouches for the hash).
    pub pdq: Option<(PdqHash, u8)>,
    /// MD5 of the original bytes.
    pub md5: Option<Md5>,
    /// SHA-1 of the original bytes.
    pub sha1: Option<Sha1>,
    /// SHA-256 of the original bytes.
    pub sha256: Option<Sha256>,
}

/// One bank entry that matched an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankMatch {
    /// The bank's name.
    pub bank: String,
    /// Which signal matched.
    pub signal: SignalKind,
    /// The entry's id.
    pub entry_id: String,
    /// The entry's category.
    pub category: Category,
    /// Hamming distance for PDQ matches; `None` for exact matches.
    pub distance: Option<u32>,
    /// Set when this entry has matched at least the bank's flood threshold
    /// of distinct inputs: the estimated number of distinct inputs. Such an
    /// entry is a likely false-positive source (a near-blank image, a logo).
    pub flood: Option<u32>,
}

impl BankMatch {
    /// The match as a finding (score 1.0: a list match is certain evidence
    /// that the input is on the list).
    pub fn to_finding(&self) -> Finding {
        Finding::new(
            self.category,
            1.0,
            FindingSource::bank(
                self.bank.clone(),
                self.signal,
                self.entry_id.clone(),
                self.distance,
            ),
        )
    }

    /// True for cryptographic (exact) matches.
    pub fn is_exact(&self) -> bool {
        self.distance.is_none()
    }
}

/// A match cancelled by a suppression bank, and the match that cancelled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    /// The cancelled match (in a normal bank).
    pub cancelled: BankMatch,
    /// The suppression-bank match that cancelled it.
    pub by: BankMatch,
}

/// The result of looking up one input in every enabled bank.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchOutcome {
    /// Matches in normal banks that stand, ordered by bank, then distance
    /// (exact first), then entry id.
    pub matches: Vec<BankMatch>,
    /// Matches cancelled by a suppression bank. A suppression match on an
    /// exact hash cancels every match of the input; a suppression match on
    /// PDQ cancels only PDQ matches (an exact hit on a known list is stronger
    /// evidence than a perceptual look-alike).
    pub suppressed: Vec<Suppressed>,
}

impl MatchOutcome {
    /// True if any match stands.
    pub fn is_match(&self) -> bool {
        !self.matches.is_empty()
    }

    /// The standing matches as findings.
    pub fn findings(&self) -> Vec<Finding> {
        self.matches.iter().map(BankMatch::to_finding).collect()
    }
}

/// Splits matches of one input into standing and suppressed.
pub(crate) fn apply_suppression(normal: Vec<BankMatch>, suppression: &[BankMatch]) -> MatchOutcome {
    let exact_by = suppression.iter().find(|it| it.is_exact());
    let pdq_by = suppression
        .iter()
        .filter(|it| !it.is_exact())
        .min_by_key(|it| it.distance);
    let mut res = MatchOutcome::default();
    for found in normal {
        let by = match (exact_by, pdq_by) {
            (Some(by), _) => Some(by),
            (None, Some(by)) if !found.is_exact() => Some(by),
            _ => None,
        };
        match by {
            Some(by) => res.suppressed.push(Suppressed {
                cancelled: found,
                by: by.clone(),
            }),
            None => res.matches.push(found),
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(bank: &str, signal: SignalKind, distance: Option<u32>) -> BankMatch {
        BankMatch {
            bank: bank.into(),
            signal,
            entry_id: "e".into(),
            category: Category::CsamKnown,
            distance,
            flood: None,
        }
    }

    #[test]
    fn pdq_suppression_spares_exact_matches() {
        let normal = vec![
            hit("a", SignalKind::Pdq, Some(3)),
            hit("a", SignalKind::Sha256, None),
        ];
        let out = apply_suppression(normal, &[hit("benign", SignalKind::Pdq, Some(5))]);
        assert_eq!(out.matches, vec![hit("a", SignalKind::Sha256, None)]);
        assert_eq!(out.suppressed.len(), 1);
        assert_eq!(out.suppressed[0].by.bank, "benign");
    }

    #[test]
    fn exact_suppression_cancels_everything() {
        let normal = vec![
            hit("a", SignalKind::Pdq, Some(3)),
            hit("a", SignalKind::Md5, None),
        ];
        let out = apply_suppression(normal, &[hit("benign", SignalKind::Md5, None)]);
        assert!(out.matches.is_empty());
        assert_eq!(out.suppressed.len(), 2);
    }

    #[test]
    fn finding_has_the_design_shape() {
        let finding = hit("ncmec", SignalKind::Pdq, Some(12)).to_finding();
        assert_eq!(
            serde_json::to_string(&finding).unwrap(),
            r#"{"category":"csam_known","score":1.0,"source":{"kind":"bank","name":"ncmec","signal":"pdq","entry_id":"e","distance":12}}"#
        );
    }
}
