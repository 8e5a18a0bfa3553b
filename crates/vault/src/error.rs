//! Errors of the vault: bad keys, missing or damaged items, I/O.
//!
//! No variant carries content or key material: only item ids, key ids, file
//! paths, sizes and what was expected (DESIGN invariant 1). A test
//! (`tests/no_leaks.rs`) holds every message to that.

use std::path::PathBuf;

use crate::{item::ItemId, key::KeyId};

/// An error from the evidence vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Master key material that cannot be used. `origin` names where it came
    /// from (a file path or an environment variable), `index` which key (1 is
    /// the current key), and `reason` what is wrong; the key itself is never
    /// part of the message.
    #[error("{origin}: key {index}: {reason}")]
    Key {
        /// Where the key came from, e.g. `/etc/childsafe/vault.key` or `$CHILDSAFE_VAULT_KEY`.
        origin: String,
        /// 1-based position of the key in its source.
        index: usize,
        /// What was expected and what was found (lengths and classes, never bytes).
        reason: String,
    },
    /// A key source that holds no key at all, or a key file with unsafe permissions.
    #[error("{origin}: {reason}")]
    KeySource {
        /// Where the keys were read from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// An item id that is not 32 lowercase hex digits.
    #[error("vault item id: expected 32 hex digits, got {len} characters")]
    BadItemId {
        /// Length of what was given.
        len: usize,
    },
    /// No item with this id.
    #[error("vault item {0}: not found")]
    NotFound(ItemId),
    /// An item file that is not in the vault format (truncated, wrong magic,
    /// malformed header).
    #[error("vault item {id}: malformed: {reason}")]
    Malformed {
        /// The item.
        id: ItemId,
        /// What is wrong, e.g. "header length 9000 exceeds file size 120".
        reason: String,
    },
    /// The item is wrapped with a master key that this keyring does not hold.
    #[error("vault item {id}: wrapped with key {key_id}, which is not in the keyring")]
    UnknownKey {
        /// The item.
        id: ItemId,
        /// The key id recorded in the item.
        key_id: KeyId,
    },
    /// Authenticated decryption failed: the item was modified, its metadata
    /// was edited, or the master key with this id is not the one that wrapped it.
    #[error("vault item {id}: authentication failed ({part}): tampered or wrong key")]
    Tampered {
        /// The item.
        id: ItemId,
        /// Which layer failed: "data key" or "content".
        part: &'static str,
    },
    /// The content decrypted but does not hash to the recorded value.
    #[error("vault item {id}: {which} mismatch: recorded {recorded}, computed {computed}")]
    HashMismatch {
        /// The item.
        id: ItemId,
        /// "sha256", "md5" or "size".
        which: &'static str,
        /// The recorded value.
        recorded: String,
        /// The value computed from the decrypted bytes.
        computed: String,
    },
    /// The content is larger than AES-GCM can encrypt under one nonce (64 GiB).
    #[error("vault: item of {size} bytes exceeds the AES-GCM limit")]
    TooLarge {
        /// Size of the item.
        size: u64,
    },
    /// The operating system's random number generator failed.
    #[error("vault: random number generator failed: {0}")]
    Random(String),
    /// A filesystem operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The vault's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
