//! Bank entries: one signal (PDQ, MD5, SHA-1 or SHA-256) with its metadata.
//!
//! An entry carries hashes and ids only, never content (DESIGN invariant 1),
//! so entries and matches may be printed and logged freely.

use std::fmt;

use childsafe_core::{Category, Md5, PdqHash, Sha1, Sha256, SignalKind};

use crate::error::Error;

/// Longest entry id or source name, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// A hash held by a bank.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// A PDQ perceptual hash, matched within the bank's threshold.
    Pdq(PdqHash),
    /// An MD5 of the original bytes, matched exactly.
    Md5(Md5),
    /// A SHA-1 of the original bytes, matched exactly.
    Sha1(Sha1),
    /// A SHA-256 of the original bytes, matched exactly.
    Sha256(Sha256),
}

impl Signal {
    /// The kind of signal.
    pub fn kind(&self) -> SignalKind {
        match self {
            Signal::Pdq(_) => SignalKind::Pdq,
            Signal::Md5(_) => SignalKind::Md5,
            Signal::Sha1(_) => SignalKind::Sha1,
            Signal::Sha256(_) => SignalKind::Sha256,
        }
    }

    /// Parses a hash of a given kind from hex (either case).
    ///
    /// # Errors
    /// A message naming what was expected, e.g. `expected 64 hex chars, got 63`,
    /// or that the kind cannot be held by a bank (`url`, `text`).
    pub fn parse(kind: SignalKind, hex: &str) -> Result<Signal, String> {
        let res = match kind {
            SignalKind::Pdq => hex.parse().map(Signal::Pdq),
            SignalKind::Md5 => hex.parse().map(Signal::Md5),
            SignalKind::Sha1 => hex.parse().map(Signal::Sha1),
            SignalKind::Sha256 => hex.parse().map(Signal::Sha256),
            other => return Err(format!("expected pdq, md5, sha1 or sha256, got {other}")),
        };
        res.map_err(|err| match err {
            childsafe_core::Error::BadSignal { reason, .. } => reason,
            other => other.to_string(),
        })
    }

    /// Guesses the kind from the length of a hex string: 32 is MD5, 40 SHA-1,
    /// 64 PDQ (a SHA-256 list must say so, since both are 64 hex digits).
    pub fn parse_guess(hex: &str) -> Result<Signal, String> {
        let kind = match hex.len() {
            32 => SignalKind::Md5,
            40 => SignalKind::Sha1,
            64 => SignalKind::Pdq,
            other => {
                return Err(format!(
                    "expected 32 (md5), 40 (sha1) or 64 (pdq) hex chars, got {other}"
                ));
            }
        };
        Signal::parse(kind, hex)
    }
}

impl fmt::Display for Signal {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::Pdq(it) => it.fmt(f),
            Signal::Md5(it) => it.fmt(f),
            Signal::Sha1(it) => it.fmt(f),
            Signal::Sha256(it) => it.fmt(f),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{self}", self.kind())
    }
}

/// One entry of a bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The hash.
    pub signal: Signal,
    /// The entry's id in its source list (not necessarily unique: a content
    /// item may have several signals under one id).
    pub id: String,
    /// The list the entry came from, e.g. `ncmec-industry`.
    pub source: String,
    /// What matching content is (from the shared taxonomy).
    pub category: Category,
    /// When the entry was added, in seconds since the Unix epoch.
    pub added: i64,
    /// Disabled entries never match.
    pub enabled: bool,
}

/// Checks an entry id or source name: 1 to 256 bytes, no control characters
/// (they would break the line formats and terminal output).
pub(crate) fn check_name(what: &str, text: &str) -> Result<(), String> {
    if text.len() > MAX_ID_BYTES {
        return Err(format!(
            "expected at most {MAX_ID_BYTES} bytes, got {}",
            text.len()
        ));
    }
    if let Some(bad) = text.chars().find(|it| it.is_control()) {
        return Err(format!(
            "expected no control characters in the {what}, got U+{:04X}",
            u32::from(bad)
        ));
    }
    Ok(())
}

impl Entry {
    /// Checks the id and source (see [`MAX_ID_BYTES`]).
    ///
    /// # Errors
    /// [`Error::BadSetting`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        check_name("id", &self.id).map_err(|reason| Error::BadSetting {
            field: "id",
            reason,
        })?;
        if self.id.is_empty() {
            return Err(Error::BadSetting {
                field: "id",
                reason: "expected a non-empty id".into(),
            });
        }
        check_name("source", &self.source).map_err(|reason| Error::BadSetting {
            field: "source",
            reason,
        })
    }
}

/// The current time in seconds since the Unix epoch.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|it| it.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_kind_from_length_and_names_bad_input() {
        assert_eq!(
            Signal::parse_guess(&"a".repeat(32)).unwrap().kind(),
            SignalKind::Md5
        );
        assert_eq!(
            Signal::parse_guess(&"a".repeat(40)).unwrap().kind(),
            SignalKind::Sha1
        );
        assert_eq!(
            Signal::parse_guess(&"A".repeat(64)).unwrap().kind(),
            SignalKind::Pdq
        );
        assert_eq!(
            Signal::parse_guess("abc").unwrap_err(),
            "expected 32 (md5), 40 (sha1) or 64 (pdq) hex chars, got 3"
        );
        assert_eq!(
            Signal::parse(SignalKind::Sha256, &"g".repeat(64)).unwrap_err(),
            "expected hex digit at char 1"
        );
        assert!(Signal::parse(SignalKind::Url, "x").is_err());
    }

    #[test]
    fn names_reject_control_characters() {
        assert!(check_name("id", "e-1042").is_ok());
        assert_eq!(
            check_name("id", "a\nb").unwrap_err(),
            "expected no control characters in the id, got U+000A"
        );
    }
}
