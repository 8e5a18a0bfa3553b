//! The evidence vault: where content the law asks to preserve is kept, and
//! the only place content may be kept at all (DESIGN invariant 1).
//!
//! US providers must preserve reported material for one year after a report
//! to NCMEC (18 U.S.C. 2258A(h)), unmodified, with access limited to what
//! compliance needs. The vault provides the storage half of that: each item
//! is the original bytes, exactly as given, encrypted with a fresh AES-256-GCM
//! data key, which is itself wrapped by a master key ([`Keyring`]); SHA-256
//! and MD5 are taken at ingest and checked on every read. Items are written
//! through a temporary file, fsynced and renamed; nothing is ever written in
//! the clear, and [`Vault::get`] returns content in memory only
//! ([`Plaintext`], wiped on drop, redacted in `Debug`).
//!
//! What the vault deliberately does not do: it has no database, no notion of
//! cases, retention, legal hold or who looked at what. `childsafe-store`
//! wraps it with that metadata and logs every access with a reason; the
//! dataset scanner uses it directly for `--preserve-evidence`, and the store
//! later registers those items from the report queue.
//!
//! ```
//! use childsafe_vault::{Keyring, MasterKey, Vault};
//!
//! let vault = Vault::in_memory(Keyring::new(MasterKey::generate()?));
//! let meta = vault.put(b"original bytes", time::OffsetDateTime::UNIX_EPOCH)?;
//! let opened = vault.get(meta.id)?;
//! assert_eq!(opened.content.as_bytes(), b"original bytes");
//! assert_eq!(format!("{:?}", opened.content), "Plaintext(<14 bytes redacted>)");
//! # Ok::<(), childsafe_vault::Error>(())
//! ```

#![deny(missing_docs)]

mod backend;
mod error;
mod format;
mod item;
mod key;
mod random;

use std::{path::Path, sync::Arc};

use time::OffsetDateTime;

pub use crate::{
    backend::{Backend, DirBackend, MemoryBackend, STALE_TMP},
    error::{Error, Result},
    item::{ItemId, ItemMeta, Plaintext},
    key::{KEY_LEN, KeyId, Keyring, MasterKey},
};

/// An item's content and its authenticated metadata, as returned by [`Vault::get`].
#[derive(Debug)]
pub struct Opened {
    /// The metadata, authenticated by decryption.
    pub meta: ItemMeta,
    /// The original bytes, in memory only.
    pub content: Plaintext,
}

/// The outcome of [`Vault::rotate`].
#[derive(Debug, Default)]
pub struct RotateReport {
    /// Items whose data key was re-wrapped with the current key.
    pub rewrapped: Vec<ItemId>,
    /// Items already wrapped with the current key.
    pub already_current: usize,
    /// Items that could not be re-wrapped, with why (unknown key, tampered,
    /// I/O). They keep their old wrap; rerunning rotation retries them.
    pub failed: Vec<(ItemId, Error)>,
}

/// The evidence vault: a keyring over a storage backend. Cheap to clone;
/// `Send + Sync`.
#[derive(Clone)]
pub struct Vault {
    backend: Arc<dyn Backend>,
    keys: Keyring,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("keys", &self.keys.ids())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault over any backend.
    pub fn new(backend: Arc<dyn Backend>, keys: Keyring) -> Vault {
        Vault { backend, keys }
    }

    /// A vault in a directory, created (owner-only) if missing.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created or is not a vault.
    pub fn open_dir(dir: &Path, keys: Keyring) -> Result<Vault> {
        Ok(Vault::new(Arc::new(DirBackend::open(dir)?), keys))
    }

    /// A vault in memory, for tests.
    pub fn in_memory(keys: Keyring) -> Vault {
        Vault::new(Arc::new(MemoryBackend::new()), keys)
    }

    /// The same items seen through another keyring (for rotation: the new key
    /// current, the old ones retired).
    pub fn with_keyring(&self, keys: Keyring) -> Vault {
        Vault {
            backend: Arc::clone(&self.backend),
            keys,
        }
    }

    /// The keyring in use.
    pub fn keyring(&self) -> &Keyring {
        &self.keys
    }

    /// Stores `content` unmodified as a new item, wrapped with the current
    /// key. `created_at` is passed in, not read from a clock, so that callers
    /// with an injected clock stay deterministic.
    ///
    /// # Errors
    /// [`Error::TooLarge`] over 64 GiB, [`Error::Random`], I/O errors.
    pub fn put(&self, content: &[u8], created_at: OffsetDateTime) -> Result<ItemMeta> {
        let id = ItemId::random()?;
        let (sealed, meta) = format::seal(&self.keys, id, content, created_at)?;
        self.backend.write_new(id, &sealed)?;
        tracing::debug!(item = %id, size = meta.size, key = %meta.key_id, "vault item stored");
        Ok(meta)
    }

    /// Decrypts an item into memory and checks it: both authentication tags,
    /// then size, SHA-256 and MD5 against the recorded values.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::UnknownKey`], [`Error::Tampered`],
    /// [`Error::HashMismatch`], [`Error::Malformed`], I/O errors.
    pub fn get(&self, id: ItemId) -> Result<Opened> {
        let sealed = self.backend.read(id)?;
        let (content, meta) = format::open(&self.keys, id, &sealed)?;
        tracing::debug!(item = %id, size = meta.size, "vault item opened");
        Ok(Opened { meta, content })
    }

    /// Checks an item as [`Vault::get`] does and drops the content at once.
    ///
    /// # Errors
    /// As [`Vault::get`].
    pub fn verify(&self, id: ItemId) -> Result<ItemMeta> {
        let opened = self.get(id)?;
        Ok(opened.meta)
    }

    /// An item's recorded metadata, read from its cleartext header without
    /// any key. Not authenticated: use [`Vault::verify`] before trusting it.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Malformed`], I/O errors.
    pub fn meta(&self, id: ItemId) -> Result<ItemMeta> {
        format::peek(id, &self.backend.read(id)?)
    }

    /// Re-wraps every item not wrapped with the current key. Content is never
    /// decrypted; each item is replaced atomically, so an interrupted rotation
    /// leaves every item readable with the keyring and a rerun finishes it.
    ///
    /// # Errors
    /// Only listing the items can fail the whole call; per-item failures are
    /// in [`RotateReport::failed`].
    pub fn rotate(&self) -> Result<RotateReport> {
        let mut report = RotateReport::default();
        for id in self.backend.list()? {
            match self.rotate_item(id) {
                Ok(true) => report.rewrapped.push(id),
                Ok(false) => report.already_current += 1,
                Err(e) => report.failed.push((id, e)),
            }
        }
        tracing::info!(
            key = %self.keys.current().id(),
            rewrapped = report.rewrapped.len(),
            already_current = report.already_current,
            failed = report.failed.len(),
            "vault key rotation"
        );
        Ok(report)
    }

    /// Re-wraps one item with the current key; false if it already was.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], [`Error::Tampered`] (the wrapped key), I/O errors.
    pub fn rotate_item(&self, id: ItemId) -> Result<bool> {
        let sealed = self.backend.read(id)?;
        match format::rewrap(&self.keys, id, &sealed)? {
            Some(rewrapped) => {
                self.backend.replace(id, &rewrapped)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Destroys an item: its header (with the wrapped data key) is overwritten
    /// and the file removed. Returns false if there was no such item, so that
    /// a purge interrupted after this call can be rerun.
    ///
    /// # Errors
    /// I/O errors.
    pub fn delete(&self, id: ItemId) -> Result<bool> {
        let header_len = match self.backend.read(id) {
            Ok(sealed) => format::header_span(&sealed).unwrap_or(sealed.len()),
            Err(Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let destroyed = self.backend.destroy(id, header_len)?;
        tracing::debug!(item = %id, destroyed, "vault item destroyed");
        Ok(destroyed)
    }

    /// Every item id, sorted.
    ///
    /// # Errors
    /// I/O errors.
    pub fn list(&self) -> Result<Vec<ItemId>> {
        self.backend.list()
    }
}
