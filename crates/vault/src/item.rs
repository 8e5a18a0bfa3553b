//! What the vault hands out: item ids, item metadata, and decrypted content
//! that is wiped on drop and never printed.

use std::{fmt, str::FromStr};

use childsafe_core::{Md5, Sha256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{
    error::{Error, Result},
    key::KeyId,
};

/// An item's id: 16 random bytes, written as 32 lowercase hex digits. Ids are
/// random rather than content hashes so that two cases preserving the same
/// file keep two items with their own retention, and so that a file name
/// says nothing about the content.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId([u8; 16]);

impl ItemId {
    pub(crate) fn random() -> Result<ItemId> {
        let mut id = [0u8; 16];
        crate::random::fill(&mut id)?;
        Ok(ItemId(id))
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemId({self})")
    }
}

impl FromStr for ItemId {
    type Err = Error;

    /// Accepts exactly 32 hex digits, so that an id can never name a path
    /// outside the vault.
    fn from_str(s: &str) -> Result<ItemId> {
        let mut id = [0u8; 16];
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadItemId { len: s.len() });
        }
        hex::decode_to_slice(s, &mut id).map_err(|_| Error::BadItemId { len: s.len() })?;
        Ok(ItemId(id))
    }
}

impl Serialize for ItemId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ItemId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ItemId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What is known about an item without decrypting it. Hashes are of the
/// original bytes exactly as given to `put` (NCMEC's `originalFileHash` is
/// the hash before any modification).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemMeta {
    /// The item's id.
    pub id: ItemId,
    /// SHA-256 of the original bytes.
    pub sha256: Sha256,
    /// MD5 of the original bytes (NCMEC checks uploads by MD5).
    pub md5: Md5,
    /// Size of the original bytes.
    pub size: u64,
    /// When the item was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The master key that currently wraps the item's data key.
    pub key_id: KeyId,
}

/// Decrypted content, held only in memory and wiped when dropped. `Debug`
/// shows the length only; there is no `Display`.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    pub(crate) fn new(bytes: Zeroizing<Vec<u8>>) -> Plaintext {
        Plaintext(bytes)
    }

    /// The original bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty item.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_reject_anything_but_32_hex_digits() {
        for bad in [
            "",
            "../../etc/passwd",
            &"g".repeat(32),
            &"a".repeat(31),
            &"a".repeat(33),
        ] {
            assert!(bad.parse::<ItemId>().is_err(), "{bad:?}");
        }
        let id = ItemId::random().unwrap();
        assert_eq!(id.to_string().parse::<ItemId>().unwrap(), id);
    }

    #[test]
    fn plaintext_debug_is_redacted() {
        let p = Plaintext::new(Zeroizing::new(b"MARKER-CONTENT".to_vec()));
        assert_eq!(format!("{p:?}"), "Plaintext(<14 bytes redacted>)");
    }
}
