//! Signal values: the hashes and other features computed once per content item.
//!
//! Every hash is a newtype so that an MD5 can never be compared with a SHA-256
//! by mistake. Text forms are lowercase hex, as in the PDQ reference and HMA;
//! parsing accepts either case and rejects anything else with a message that
//! says what was expected.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The kind of a signal. Stable names: stored in banks, manifests and findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignalKind {
    /// PDQ perceptual image hash, 256 bits.
    Pdq,
    /// MD5 of the original bytes.
    Md5,
    /// SHA-1 of the original bytes.
    Sha1,
    /// SHA-256 of the original bytes.
    Sha256,
    /// A URL or domain, normalised.
    Url,
    /// Normalised text.
    Text,
}

impl SignalKind {
    /// Every signal kind, in declaration order.
    pub const ALL: [SignalKind; 6] = [
        SignalKind::Pdq,
        SignalKind::Md5,
        SignalKind::Sha1,
        SignalKind::Sha256,
        SignalKind::Url,
        SignalKind::Text,
    ];

    /// The stable name, as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignalKind::Pdq => "pdq",
            SignalKind::Md5 => "md5",
            SignalKind::Sha1 => "sha1",
            SignalKind::Sha256 => "sha256",
            SignalKind::Url => "url",
            SignalKind::Text => "text",
        }
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignalKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<SignalKind, Error> {
        SignalKind::ALL
            .into_iter()
            .find(|it| it.as_str() == s)
            .ok_or_else(|| Error::UnknownName {
                kind: "signal type",
                name: s.to_owned(),
            })
    }
}

macro_rules! hex_digest {
    ($(#[$doc:meta])* $name:ident, $len:expr, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;
            /// The signal kind this value belongs to.
            pub const KIND: SignalKind = $kind;

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<$name, Error> {
                let mut res = [0u8; $len];
                parse_hex(s, &mut res, $kind)?;
                Ok($name(res))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_digest!(
    /// A 256-bit PDQ hash.
    ///
    /// Bytes are in the order of the reference hex string: byte 0 holds the
    /// first two hex digits. The reference (C++ `Hash256`) keeps sixteen
    /// 16-bit words `w[0..16]` and prints `w[15]` first; bit `k` of the hash is
    /// bit `k % 16` of `w[k / 16]`. [`PdqHash::from_words`] and
    /// [`PdqHash::bit`] speak in those terms.
    PdqHash,
    32,
    SignalKind::Pdq
);
hex_digest!(
    /// An MD5 digest of the original bytes.
    Md5,
    16,
    SignalKind::Md5
);
hex_digest!(
    /// A SHA-1 digest of the original bytes.
    Sha1,
    20,
    SignalKind::Sha1
);
hex_digest!(
    /// A SHA-256 digest of the original bytes.
    Sha256,
    32,
    SignalKind::Sha256
);

impl PdqHash {
    /// Number of bits in a PDQ hash.
    pub const BITS: u32 = 256;

    /// Builds a hash from the reference's sixteen words (`w[0]` is least significant).
    pub fn from_words(words: [u16; 16]) -> PdqHash {
        let mut res = [0u8; 32];
        for (word_idx, word) in words.iter().enumerate() {
            let at = (15 - word_idx) * 2;
            res[at..at + 2].copy_from_slice(&word.to_be_bytes());
        }
        PdqHash(res)
    }

    /// The reference's sixteen words (`w[0]` is least significant).
    pub fn words(&self) -> [u16; 16] {
        let mut res = [0u16; 16];
        for (word_idx, word) in res.iter_mut().enumerate() {
            let at = (15 - word_idx) * 2;
            *word = u16::from_be_bytes([self.0[at], self.0[at + 1]]);
        }
        res
    }

    /// Bit `k` (0..256) in the reference's numbering.
    pub fn bit(&self, k: usize) -> bool {
        let word_idx = k / 16;
        let at = (15 - word_idx) * 2;
        let word = u16::from_be_bytes([self.0[at], self.0[at + 1]]);
        (word >> (k % 16)) & 1 == 1
    }

    /// The hash as four big-endian 64-bit lanes, in hex-string order.
    pub fn lanes(&self) -> [u64; 4] {
        let mut res = [0u64; 4];
        for (lane_idx, lane) in res.iter_mut().enumerate() {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&self.0[lane_idx * 8..lane_idx * 8 + 8]);
            *lane = u64::from_be_bytes(bytes);
        }
        res
    }

    /// Builds a hash from four big-endian 64-bit lanes (the inverse of [`PdqHash::lanes`]).
    pub fn from_lanes(lanes: [u64; 4]) -> PdqHash {
        let mut res = [0u8; 32];
        for (lane_idx, lane) in lanes.iter().enumerate() {
            res[lane_idx * 8..lane_idx * 8 + 8].copy_from_slice(&lane.to_be_bytes());
        }
        PdqHash(res)
    }

    /// Hamming distance in bits, 0..=256.
    pub fn distance(&self, other: &PdqHash) -> u32 {
        let a = self.lanes();
        let b = other.lanes();
        (0..4).map(|i| (a[i] ^ b[i]).count_ones()).sum()
    }
}

/// Writes bytes as lowercase hex.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        for (byte_idx, byte) in chunk.iter().enumerate() {
            buf[byte_idx * 2] = DIGITS[usize::from(byte >> 4)];
            buf[byte_idx * 2 + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        // Only ASCII hex digits were written.
        let text = std::str::from_utf8(&buf[..chunk.len() * 2]).map_err(|_| fmt::Error)?;
        f.write_str(text)?;
    }
    Ok(())
}

/// Parses exactly `out.len() * 2` hex digits (either case) into `out`.
fn parse_hex(s: &str, out: &mut [u8], kind: SignalKind) -> Result<(), Error> {
    let want = out.len() * 2;
    let bytes = s.as_bytes();
    if bytes.len() != want {
        return Err(Error::BadSignal {
            kind,
            reason: format!("expected {want} hex chars, got {}", s.chars().count()),
        });
    }
    for (byte_idx, pair) in bytes.chunks_exact(2).enumerate() {
        let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
            let bad = if hex_value(pair[0]).is_none() {
                byte_idx * 2
            } else {
                byte_idx * 2 + 1
            };
            return Err(Error::BadSignal {
                kind,
                reason: format!("expected hex digit at char {}", bad + 1),
            });
        };
        out[byte_idx] = (hi << 4) | lo;
    }
    Ok(())
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const BRIDGE: &str = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22";

    #[test]
    fn pdq_words_follow_the_reference_layout() {
        let hash: PdqHash = BRIDGE.parse().unwrap();
        let words = hash.words();
        // C++ Hash256::format prints w[15] first.
        assert_eq!(words[15], 0xd8f8);
        assert_eq!(words[0], 0x9b22);
        assert_eq!(PdqHash::from_words(words), hash);
        // Bit 0 is the lowest bit of w[0] = 0x9b22.
        assert!(!hash.bit(0));
        assert!(hash.bit(1));
        assert!(hash.bit(255));
    }

    #[test]
    fn bad_hex_names_the_problem() {
        let err = "abc".parse::<PdqHash>().unwrap_err();
        assert_eq!(err.to_string(), "pdq: expected 64 hex chars, got 3");
        let err = "zz".repeat(16).parse::<Md5>().unwrap_err();
        assert_eq!(err.to_string(), "md5: expected hex digit at char 1");
    }

    #[test]
    fn uppercase_is_accepted_and_lowercase_written() {
        let hash: PdqHash = BRIDGE.to_uppercase().parse().unwrap();
        assert_eq!(hash.to_string(), BRIDGE);
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 32]>()) {
            let hash = PdqHash(bytes);
            prop_assert_eq!(hash.to_string().parse::<PdqHash>().unwrap(), hash);
            let json = serde_json::to_string(&hash).unwrap();
            prop_assert_eq!(serde_json::from_str::<PdqHash>(&json).unwrap(), hash);
        }

        #[test]
        fn distance_is_a_metric(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (a, b) = (PdqHash(a), PdqHash(b));
            prop_assert_eq!(a.distance(&b), b.distance(&a));
            prop_assert!(a.distance(&b) <= 256);
            prop_assert_eq!(a.distance(&a), 0);
            let bits = (0..256).filter(|&k| a.bit(k) != b.bit(k)).count() as u32;
            prop_assert_eq!(a.distance(&b), bits);
        }

        #[test]
        fn lanes_round_trip(bytes in any::<[u8; 32]>()) {
            let hash = PdqHash(bytes);
            prop_assert_eq!(PdqHash::from_lanes(hash.lanes()), hash);
        }
    }
}
