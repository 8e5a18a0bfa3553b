//! MD5, SHA-1 and SHA-256 of the original bytes: the exact-match signals
//! that hash lists (NCMEC, industry lists) carry besides PDQ.
//!
//! Computed for every file that could be read, whether or not it decodes:
//! an exact match does not need the image to be valid.

use childsafe_core::{Md5, Sha1, Sha256};
use md5::Digest as _;

/// The three cryptographic digests of a file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CryptoHashes {
    /// MD5.
    pub md5: Md5,
    /// SHA-1.
    pub sha1: Sha1,
    /// SHA-256.
    pub sha256: Sha256,
}

/// Computes MD5, SHA-1 and SHA-256 of `bytes`.
///
/// One pass per digest over the same buffer: the bytes are already in
/// memory and each digest streams at memory speed (SHA-1 and SHA-256 use
/// the CPU's SHA extensions where present).
pub fn crypto_hashes(bytes: &[u8]) -> CryptoHashes {
    CryptoHashes {
        md5: md5_of(bytes),
        sha1: sha1_of(bytes),
        sha256: sha256_of(bytes),
    }
}

/// MD5 of `bytes` alone, for callers that need only some digests (MD5 is
/// the slowest of the three: no CPU has instructions for it).
pub fn md5_of(bytes: &[u8]) -> Md5 {
    Md5(md5::Md5::digest(bytes).into())
}

/// SHA-1 of `bytes` alone.
pub fn sha1_of(bytes: &[u8]) -> Sha1 {
    Sha1(sha1::Sha1::digest(bytes).into())
}

/// SHA-256 of `bytes` alone.
pub fn sha256_of(bytes: &[u8]) -> Sha256 {
    Sha256(sha2::Sha256::digest(bytes).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        let hashes = crypto_hashes(b"abc");
        assert_eq!(hashes.md5.to_string(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hashes.sha1.to_string(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hashes.sha256.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
