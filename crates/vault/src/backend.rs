//! Where sealed items live: a directory (production) or memory (tests).
//!
//! A backend stores opaque sealed bytes by item id and knows nothing about
//! keys or content: encryption happens before bytes reach it, which is what
//! makes "never plaintext on disk" hold for every backend by construction.
//!
//! The directory layout is
//!
//! ```text
//! DIR/VAULT             marker file: format line, so a wrong --vault-dir is noticed
//! DIR/items/ab/<id>     one sealed item per file, fanned out by the first two hex digits
//! DIR/tmp/              temporary files while writing (sealed bytes only)
//! ```
//!
//! Every write goes to a temporary file in `DIR/tmp`, is flushed with fsync,
//! renamed into place and the directory fsynced, so a crash leaves either the
//! old item or the new one, never a torn one. Files and directories are
//! created owner-only (0600 / 0700).

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use crate::{
    error::{Error, Result},
    item::ItemId,
};

/// Storage for sealed items. Implementations must make `write_new` and
/// `replace` atomic (all or nothing) and durable before they return.
pub trait Backend: Send + Sync {
    /// Stores a new item. Fails if an item with this id exists.
    ///
    /// # Errors
    /// I/O errors, or [`Error::Malformed`] if the id is taken.
    fn write_new(&self, id: ItemId, sealed: &[u8]) -> Result<()>;
    /// Atomically replaces an existing item (used by key rotation).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such item; I/O errors.
    fn replace(&self, id: ItemId, sealed: &[u8]) -> Result<()>;
    /// Reads an item's sealed bytes.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such item; I/O errors.
    fn read(&self, id: ItemId) -> Result<Vec<u8>>;
    /// Destroys an item; `header_len` bytes at the start (the wrapped data
    /// key) are overwritten first where the medium allows. Returns false if
    /// there was no such item, so destroying twice is not an error.
    ///
    /// # Errors
    /// I/O errors.
    fn destroy(&self, id: ItemId, header_len: usize) -> Result<bool>;
    /// Every item id, sorted.
    ///
    /// # Errors
    /// I/O errors.
    fn list(&self) -> Result<Vec<ItemId>>;
}

/// Items in memory, for tests and for callers that want no files at all.
#[derive(Default)]
pub struct MemoryBackend {
    items: Mutex<BTreeMap<ItemId, Vec<u8>>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    fn items(&self) -> std::sync::MutexGuard<'_, BTreeMap<ItemId, Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-written entry
        // (every mutation is one map operation), so a poisoned map is usable.
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Overwrites an item's stored bytes, bypassing every check: a test hook
    /// for tamper detection.
    pub fn tamper(&self, id: ItemId, sealed: Vec<u8>) {
        self.items().insert(id, sealed);
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryBackend({} items)", self.items().len())
    }
}

impl Backend for MemoryBackend {
    fn write_new(&self, id: ItemId, sealed: &[u8]) -> Result<()> {
        let mut items = self.items();
        if items.contains_key(&id) {
            return Err(Error::Malformed {
                id,
                reason: "an item with this id exists".to_owned(),
            });
        }
        items.insert(id, sealed.to_vec());
        Ok(())
    }

    fn replace(&self, id: ItemId, sealed: &[u8]) -> Result<()> {
        match self.items().get_mut(&id) {
            Some(slot) => {
                *slot = sealed.to_vec();
                Ok(())
            }
            None => Err(Error::NotFound(id)),
        }
    }

    fn read(&self, id: ItemId) -> Result<Vec<u8>> {
        self.items().get(&id).cloned().ok_or(Error::NotFound(id))
    }

    fn destroy(&self, id: ItemId, _header_len: usize) -> Result<bool> {
        Ok(self.items().remove(&id).is_some())
    }

    fn list(&self) -> Result<Vec<ItemId>> {
        Ok(self.items().keys().copied().collect())
    }
}

/// Items as files under a directory (see the module docs for the layout).
#[derive(Debug)]
pub struct DirBackend {
    root: PathBuf,
}

/// Age after which a temporary file is a crash leftover, not a write in
/// progress: a write takes milliseconds; ten minutes leaves a wide margin for
/// a slow disk and another process sharing the vault.
pub const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(600);

const MARKER: &str = "VAULT";
const MARKER_TEXT: &str = "childsafe evidence vault, format 1\n";

impl DirBackend {
    /// Opens the vault directory, creating it (owner-only) if it does not
    /// exist. A non-empty directory that is not a vault is refused, so a
    /// mistyped path never scatters items into an unrelated folder.
    ///
    /// Temporary files older than [`STALE_TMP`] are left over from a crash;
    /// they hold sealed bytes only, but a leftover copy of an item would
    /// outlive its purge, so they are removed here.
    ///
    /// # Errors
    /// [`Error::Io`], naming the path.
    pub fn open(root: &Path) -> Result<DirBackend> {
        create_private_dir(root)?;
        let marker = root.join(MARKER);
        match fs::read_to_string(&marker) {
            Ok(text) if text == MARKER_TEXT => {}
            Ok(_) => {
                return Err(Error::io(
                    &marker,
                    io::Error::new(io::ErrorKind::InvalidData, "not a childsafe vault marker"),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut entries = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
                if entries.next().is_some() {
                    return Err(Error::io(
                        root,
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "directory is not empty and not a vault (no VAULT marker)",
                        ),
                    ));
                }
                write_atomic(root, &root.join("tmp"), &marker, MARKER_TEXT.as_bytes())?;
            }
            Err(e) => return Err(Error::io(&marker, e)),
        }
        create_private_dir(&root.join("items"))?;
        create_private_dir(&root.join("tmp"))?;
        remove_stale_tmp(&root.join("tmp"))?;
        Ok(DirBackend {
            root: root.to_owned(),
        })
    }

    /// The vault directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding an item (whether or not it exists).
    pub fn item_path(&self, id: ItemId) -> PathBuf {
        let name = id.to_string();
        self.root.join("items").join(&name[..2]).join(name)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

impl Backend for DirBackend {
    fn write_new(&self, id: ItemId, sealed: &[u8]) -> Result<()> {
        let path = self.item_path(id);
        if path.exists() {
            return Err(Error::Malformed {
                id,
                reason: "an item with this id exists".to_owned(),
            });
        }
        let parent = path.parent().unwrap_or(&self.root);
        create_private_dir(parent)?;
        write_atomic(parent, &self.tmp_dir(), &path, sealed)
    }

    fn replace(&self, id: ItemId, sealed: &[u8]) -> Result<()> {
        let path = self.item_path(id);
        if !path.exists() {
            return Err(Error::NotFound(id));
        }
        let parent = path.parent().unwrap_or(&self.root);
        write_atomic(parent, &self.tmp_dir(), &path, sealed)
    }

    fn read(&self, id: ItemId) -> Result<Vec<u8>> {
        let path = self.item_path(id);
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(id),
            _ => Error::io(&path, e),
        })
    }

    fn destroy(&self, id: ItemId, header_len: usize) -> Result<bool> {
        let path = self.item_path(id);
        let mut file = match OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&path, e)),
        };
        // Overwrite the header, which holds the wrapped data key: without it
        // the content ciphertext cannot be decrypted even with the master key.
        // On SSDs and copy-on-write filesystems the old blocks may survive;
        // this is best effort, the unlink below is the real deletion.
        let zeros = vec![0u8; header_len];
        file.write_all(&zeros)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        drop(file);
        fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        Ok(true)
    }

    fn list(&self) -> Result<Vec<ItemId>> {
        let items = self.root.join("items");
        let mut ids = Vec::new();
        for fan in fs::read_dir(&items).map_err(|e| Error::io(&items, e))? {
            let fan = fan.map_err(|e| Error::io(&items, e))?;
            if !fan
                .file_type()
                .map_err(|e| Error::io(fan.path(), e))?
                .is_dir()
            {
                continue;
            }
            let fan_path = fan.path();
            for entry in fs::read_dir(&fan_path).map_err(|e| Error::io(&fan_path, e))? {
                let entry = entry.map_err(|e| Error::io(&fan_path, e))?;
                // Anything that is not an item id (editor droppings, stray
                // files) is not an item; `verify` reports ids, not strays.
                if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

fn remove_stale_tmp(tmp: &Path) -> Result<()> {
    for entry in fs::read_dir(tmp).map_err(|e| Error::io(tmp, e))? {
        let entry = entry.map_err(|e| Error::io(tmp, e))?;
        let path = entry.path();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TMP);
        if stale {
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `dest` through a temporary file in `tmp`: create
/// exclusively (owner-only), write, fsync, rename, fsync the directory.
fn write_atomic(dest_dir: &Path, tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    create_private_dir(tmp)?;
    let mut suffix = [0u8; 8];
    crate::random::fill(&mut suffix)?;
    let tmp_path = tmp.join(format!("{}.tmp", hex::encode(suffix)));
    let res = (|| {
        let mut file = create_private_file(&tmp_path)?;
        file.write_all(bytes).map_err(|e| Error::io(&tmp_path, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp_path, e))?;
        drop(file);
        fs::rename(&tmp_path, dest).map_err(|e| Error::io(dest, e))?;
        sync_dir(dest_dir)
    })();
    if res.is_err() {
        // Sealed bytes only, but do not leave litter behind.
        let _ = fs::remove_file(&tmp_path);
    }
    res
}

fn create_private_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| Error::io(path, e))
}

fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(|e| Error::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Directories can be fsynced on Unix; elsewhere the rename is what we have.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
