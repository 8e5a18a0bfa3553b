//! Master keys: parsing, checking, identifying and holding them.
//!
//! A master key is 32 random bytes (AES-256). It is written as 64 hex digits
//! or as standard base64 (44 characters with padding, 43 without). A key
//! source (a key file, or an environment variable) holds one or more keys,
//! separated by newlines or commas; blank lines and lines starting with `#`
//! are ignored. The first key is the *current* key: new items are wrapped
//! with it and `rotate` re-wraps every other item to it. Later keys are
//! *retired*: still accepted for reading, so that rotation can run while the
//! service keeps serving.
//!
//! Keys are refused when they do not decode to exactly 32 bytes, when they
//! look like text or a pattern rather than random bytes (all bytes printable
//! ASCII, or fewer than 16 distinct byte values: a random key has about 30),
//! and when a key file can be read by other users. Errors name the source and
//! the key's position and say what is wrong; they never contain the key.
//!
//! A key's id is the first 8 bytes of SHA-256 over a domain tag and the key,
//! in hex. It is recorded in every item, so the vault knows which master key
//! wrapped it, and reveals nothing about the key.

use std::{fmt, path::Path, str::FromStr};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// Fewest distinct byte values a key may have. A uniformly random 32-byte key
/// has about 30; fewer than 16 happens by chance with probability below
/// 10^-15, so a key that has fewer was not drawn at random.
const MIN_DISTINCT_BYTES: usize = 16;

/// The id of a master key: 16 hex digits derived from the key by a one-way hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    fn of(key: &[u8; KEY_LEN]) -> KeyId {
        let mut hasher = Sha256::new();
        hasher.update(b"childsafe-vault key id v1\0");
        hasher.update(key);
        let digest = hasher.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = String;

    fn from_str(s: &str) -> Result<KeyId, String> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(s, &mut id)
            .map_err(|_| format!("key id: expected 16 hex digits, got {:?}", s))?;
        Ok(KeyId(id))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeyId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A 256-bit master key. Wiped from memory on drop; `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl MasterKey {
    /// A fresh key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`Error::Random`] if the generator fails.
    pub fn generate() -> Result<MasterKey> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        crate::random::fill(bytes.as_mut())?;
        Ok(MasterKey::from_array(bytes))
    }

    /// A key from raw bytes, checked as described in the module docs.
    ///
    /// # Errors
    /// [`Error::Key`] if the bytes are not 32 long or do not look random.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey> {
        check_bytes(bytes).map_err(|reason| Error::Key {
            origin: "raw key".to_owned(),
            index: 1,
            reason,
        })?;
        let mut array = Zeroizing::new([0u8; KEY_LEN]);
        array.copy_from_slice(bytes);
        Ok(MasterKey::from_array(array))
    }

    fn from_array(bytes: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let id = KeyId::of(&bytes);
        MasterKey { bytes, id }
    }

    /// The key's id, as recorded in the items it wraps.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// The key in base64, the form `vault keygen` prints and key files hold.
    /// The returned string is wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*self.bytes))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.id)
    }
}

/// The master keys a vault can use: one current key, which wraps new items,
/// and any number of retired keys, which are only used to read.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: MasterKey,
    retired: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring with one key.
    pub fn new(current: MasterKey) -> Keyring {
        Keyring {
            current,
            retired: Vec::new(),
        }
    }

    /// Adds a retired key (readable, never used to wrap). A key equal to one
    /// already in the ring is ignored.
    pub fn with_retired(mut self, key: MasterKey) -> Keyring {
        if self.get(key.id()).is_none() {
            self.retired.push(key);
        }
        self
    }

    /// Makes `key` the current key; the old current key becomes retired.
    /// This is the keyring `rotate` needs: new key first, old ones readable.
    pub fn rotated_to(self, key: MasterKey) -> Keyring {
        let mut ring = Keyring::new(key);
        ring = ring.with_retired(self.current);
        for old in self.retired {
            ring = ring.with_retired(old);
        }
        ring
    }

    /// The key new items are wrapped with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Every key id in the ring, current first.
    pub fn ids(&self) -> Vec<KeyId> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .map(MasterKey::id)
            .collect()
    }

    /// The key with this id, if the ring holds it.
    pub fn get(&self, id: KeyId) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|key| key.id() == id)
    }

    /// Parses key material as described in the module docs. `source` names
    /// where the text came from, for error messages.
    ///
    /// # Errors
    /// [`Error::KeySource`] if there is no key, [`Error::Key`] naming the
    /// first bad key.
    pub fn parse(text: &str, source: &str) -> Result<Keyring> {
        let mut keys = Vec::new();
        let fields = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|field| !field.is_empty());
        for (i, field) in fields.enumerate() {
            let index = i + 1;
            let key = parse_key(field).map_err(|reason| Error::Key {
                origin: source.to_owned(),
                index,
                reason,
            })?;
            if keys.iter().any(|k: &MasterKey| k.id() == key.id()) {
                return Err(Error::Key {
                    origin: source.to_owned(),
                    index,
                    reason: format!("duplicate of an earlier key (id {})", key.id()),
                });
            }
            keys.push(key);
        }
        let mut keys = keys.into_iter();
        let Some(current) = keys.next() else {
            return Err(Error::KeySource {
                origin: source.to_owned(),
                reason: "no key: expected 64 hex digits or base64 of 32 bytes".to_owned(),
            });
        };
        Ok(keys.fold(Keyring::new(current), Keyring::with_retired))
    }

    /// Reads a key file. On Unix the file must not be readable or writable by
    /// other users (as ssh insists for private keys): `chmod 600` it.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::KeySource`] for
    /// unsafe permissions or no key, [`Error::Key`] for a bad key.
    pub fn from_file(path: &Path) -> Result<Keyring> {
        let source = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        check_permissions(&meta, &source)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
        Keyring::parse(&text, &source)
    }

    /// Reads keys from an environment variable.
    ///
    /// # Errors
    /// [`Error::KeySource`] if the variable is unset or not UTF-8, otherwise
    /// as [`Keyring::parse`].
    pub fn from_env(var: &str) -> Result<Keyring> {
        let source = format!("${var}");
        let text = std::env::var(var).map_err(|e| Error::KeySource {
            origin: source.clone(),
            reason: match e {
                std::env::VarError::NotPresent => "not set".to_owned(),
                std::env::VarError::NotUnicode(_) => "not valid UTF-8".to_owned(),
            },
        })?;
        let text = Zeroizing::new(text);
        Keyring::parse(&text, &source)
    }
}

#[cfg(unix)]
fn check_permissions(meta: &std::fs::Metadata, source: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(Error::KeySource {
            origin: source.to_owned(),
            reason: format!(
                "key file is accessible by other users (mode {mode:04o}); chmod 600 it"
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_meta: &std::fs::Metadata, _source: &str) -> Result<()> {
    Ok(())
}

/// Decodes one key field: 64 hex digits, or base64 of 32 bytes.
fn parse_key(field: &str) -> Result<MasterKey, String> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    let is_hex = field.len() == 2 * KEY_LEN && field.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        hex::decode_to_slice(field, bytes.as_mut())
            .map_err(|_| "expected 64 hex digits".to_owned())?;
    } else {
        let engine = if field.ends_with('=') {
            &base64::engine::general_purpose::STANDARD
        } else {
            &base64::engine::general_purpose::STANDARD_NO_PAD
        };
        let mut decoded = Zeroizing::new(Vec::new());
        engine.decode_vec(field, &mut decoded).map_err(|_| {
            format!(
                "expected 64 hex digits or base64 of {KEY_LEN} bytes, got {} characters that are neither",
                field.chars().count()
            )
        })?;
        if decoded.len() != KEY_LEN {
            let len = decoded.len();
            decoded.zeroize();
            return Err(format!(
                "expected {KEY_LEN} bytes (64 hex digits or 44 base64 characters), got base64 of {len} bytes"
            ));
        }
        bytes.copy_from_slice(&decoded);
    }
    check_bytes(bytes.as_ref())?;
    Ok(MasterKey::from_array(bytes))
}

/// Refuses keys of the wrong length and keys that were evidently not drawn at random.
fn check_bytes(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() != KEY_LEN {
        return Err(format!("expected {KEY_LEN} bytes, got {}", bytes.len()));
    }
    let mut seen = [false; 256];
    for &b in bytes {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(format!(
            "weak key: only {distinct} distinct byte values (a random key has about 30); \
             generate one with `childsafe vault keygen`"
        ));
    }
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(
            "weak key: every byte is printable text, so it is a password, not random bytes; \
                    generate one with `childsafe vault keygen`"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "8f1c2e7a9b3d4f5061728394a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9eaf0b1c2d";

    #[test]
    fn hex_and_base64_give_the_same_key() {
        let from_hex = Keyring::parse(HEX, "test").unwrap();
        let bytes = hex::decode(HEX).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let b64_nopad = b64.trim_end_matches('=');
        for text in [b64.as_str(), b64_nopad] {
            let ring = Keyring::parse(text, "test").unwrap();
            assert_eq!(ring.current().id(), from_hex.current().id());
        }
    }

    #[test]
    fn several_keys_first_is_current() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        let text = format!("# vault keys\n{}\n\n{}\n", *a.to_base64(), *b.to_base64());
        let ring = Keyring::parse(&text, "test").unwrap();
        assert_eq!(ring.ids(), vec![a.id(), b.id()]);
        let ring =
            Keyring::parse(&format!("{} , {}", *a.to_base64(), *b.to_base64()), "t").unwrap();
        assert_eq!(ring.ids(), vec![a.id(), b.id()]);
    }

    #[test]
    fn malformed_and_weak_keys_are_refused_without_echoing_them() {
        let password =
            base64::engine::general_purpose::STANDARD.encode(b"The quick brown fox jumps over!!");
        let cases = [
            ("", "no key"),
            ("# only a comment", "no key"),
            ("abcd", "got base64 of 3 bytes"),
            ("not-a-key!", "got 10 characters that are neither"),
            (&"0".repeat(64), "weak key: only 1 distinct"),
            (
                "0001020304050607080900010203040506070809000102030405060708090001",
                "weak key: only 10 distinct",
            ),
            // 32 printable characters, base64-encoded: a password, not a key.
            (password.as_str(), "printable text"),
            // base64 of 16 bytes.
            ("AAECAwQFBgcICQoLDA0ODw==", "got base64 of 16 bytes"),
        ];
        for (text, want) in cases {
            let err = Keyring::parse(text, "$CHILDSAFE_VAULT_KEY")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("$CHILDSAFE_VAULT_KEY: "), "{err}");
            if text.len() > 8 {
                assert!(!err.contains(text), "error echoes the key: {err}");
            }
        }
    }

    #[test]
    fn duplicate_key_is_refused() {
        let err = Keyring::parse(&format!("{HEX}\n{HEX}"), "f")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f: key 2: duplicate"), "{err}");
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let ring = Keyring::parse(HEX, "t").unwrap();
        let debug = format!("{ring:?}");
        assert!(!debug.contains(&HEX[..16]), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn rotated_ring_keeps_old_keys_readable() {
        let old = Keyring::new(MasterKey::generate().unwrap());
        let new = MasterKey::generate().unwrap();
        let ring = old.clone().rotated_to(new.clone());
        assert_eq!(ring.current().id(), new.id());
        assert!(ring.get(old.current().id()).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.key");
        std::fs::write(&path, HEX).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("mode 0644"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Keyring::from_file(&path).unwrap();
    }
}
