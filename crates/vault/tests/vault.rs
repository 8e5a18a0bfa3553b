//! The vault's promises, each checked against both backends: content comes
//! back byte for byte, any change to a stored item is detected, the wrong key
//! opens nothing, rotation re-wraps without touching content, and no byte of
//! content ever reaches the disk, a log line or an error message.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{io::Write, path::Path, sync::Arc};

use childsafe_vault::{Error, ItemId, Keyring, MasterKey, MemoryBackend, Vault};
use proptest::prelude::*;
use time::OffsetDateTime;

/// Content that stands in for preserved material: a recognisable pattern that
/// a scan of the disk or the logs can search for.
const MARKER: &[u8] = b"CHILDSAFE-TEST-PLAINTEXT-MARKER-7f3a";

fn marked_content(n: usize) -> Vec<u8> {
    let mut content = Vec::new();
    for i in 0..n {
        content.extend_from_slice(MARKER);
        content.extend_from_slice(format!("#{i:04}|").as_bytes());
    }
    content
}

fn keys() -> Keyring {
    Keyring::new(MasterKey::generate().unwrap())
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
}

/// A vault of each kind, plus the directory (kept alive) for the on-disk one.
struct Fixture {
    name: &'static str,
    vault: Vault,
    dir: Option<tempfile::TempDir>,
}

fn fixtures(keys: &Keyring) -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let on_disk = Vault::open_dir(&dir.path().join("vault"), keys.clone()).unwrap();
    vec![
        Fixture {
            name: "memory",
            vault: Vault::in_memory(keys.clone()),
            dir: None,
        },
        Fixture {
            name: "dir",
            vault: on_disk,
            dir: Some(dir),
        },
    ]
}

/// Replaces an item's stored bytes, whatever the backend.
fn overwrite(fixture: &Fixture, id: ItemId, sealed: Vec<u8>) {
    match &fixture.dir {
        Some(dir) => {
            let name = id.to_string();
            let path = dir.path().join("vault/items").join(&name[..2]).join(&name);
            std::fs::write(path, sealed).unwrap();
        }
        None => unreachable!("memory fixtures use a MemoryBackend handle"),
    }
}

/// `sealed` with the first occurrence of `from` replaced by `to` (same length).
fn replace_once(sealed: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = sealed
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("field present in the header");
    let mut out = sealed.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

fn read_sealed(fixture: &Fixture, id: ItemId) -> Vec<u8> {
    let dir = fixture.dir.as_ref().unwrap();
    let name = id.to_string();
    std::fs::read(dir.path().join("vault/items").join(&name[..2]).join(&name)).unwrap()
}

#[test]
fn round_trip_keeps_bytes_and_hashes() {
    let keys = keys();
    for f in fixtures(&keys) {
        let content = marked_content(3);
        let meta = f.vault.put(&content, t0()).unwrap();
        assert_eq!(meta.size, content.len() as u64, "{}", f.name);
        assert_eq!(meta.key_id, keys.current().id());
        assert_eq!(meta.created_at, t0());
        let opened = f.vault.get(meta.id).unwrap();
        assert_eq!(opened.content.as_bytes(), content.as_slice(), "{}", f.name);
        assert_eq!(opened.meta, meta);
        assert_eq!(f.vault.meta(meta.id).unwrap(), meta);
        assert_eq!(f.vault.verify(meta.id).unwrap(), meta);
        assert_eq!(f.vault.list().unwrap(), vec![meta.id]);

        let empty = f.vault.put(b"", t0()).unwrap();
        assert!(f.vault.get(empty.id).unwrap().content.is_empty());
    }
}

#[test]
fn hashes_are_those_of_the_original_bytes() {
    let vault = Vault::in_memory(keys());
    let meta = vault.put(b"abc", t0()).unwrap();
    assert_eq!(
        meta.sha256.to_string(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(meta.md5.to_string(), "900150983cd24fb0d6963f7d28e17f72");
}

#[test]
fn wrong_key_opens_nothing() {
    let keys = keys();
    for f in fixtures(&keys) {
        let meta = f.vault.put(&marked_content(1), t0()).unwrap();
        let stranger = f.vault.with_keyring(self::keys());
        let err = stranger.get(meta.id).unwrap_err();
        assert!(matches!(err, Error::UnknownKey { .. }), "{}: {err}", f.name);
        assert!(err.to_string().contains(&meta.key_id.to_string()));
    }
}

#[test]
fn a_key_id_pointed_at_another_key_fails_authentication() {
    // An attacker edits the header to claim the item is wrapped by another
    // key the victim holds: the wrapped key then fails to authenticate.
    let keys_a = keys();
    let key_b = MasterKey::generate().unwrap();
    let ring = keys_a.clone().with_retired(key_b.clone());
    let f = fixtures(&ring).remove(1);
    let meta = f.vault.put(&marked_content(1), t0()).unwrap();
    let sealed = read_sealed(&f, meta.id);
    let forged = replace_once(&sealed, &meta.key_id.to_string(), &key_b.id().to_string());
    overwrite(&f, meta.id, forged);
    let err = f.vault.get(meta.id).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tampered {
                part: "data key",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn edited_metadata_is_detected() {
    let f = fixtures(&keys()).remove(1);
    let content = marked_content(1);
    let meta = f.vault.put(&content, t0()).unwrap();
    let sealed = read_sealed(&f, meta.id);
    // A forged hash (say, to make the item match a different report).
    let forged = replace_once(&sealed, &meta.sha256.to_string(), &"ab".repeat(32));
    overwrite(&f, meta.id, forged);
    let err = f.vault.verify(meta.id).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tampered {
                part: "content",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn items_cannot_be_swapped_between_ids() {
    let f = fixtures(&keys()).remove(1);
    let a = f.vault.put(b"first item", t0()).unwrap();
    let b = f.vault.put(b"second item", t0()).unwrap();
    overwrite(&f, a.id, read_sealed(&f, b.id));
    let err = f.vault.get(a.id).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn rotation_rewraps_without_touching_content() {
    let old = keys();
    for f in fixtures(&old) {
        let metas: Vec<_> = (0..4)
            .map(|i| f.vault.put(&marked_content(i), t0()).unwrap())
            .collect();
        let bodies_before: Vec<Vec<u8>> = match f.dir {
            Some(_) => metas.iter().map(|m| read_sealed(&f, m.id)).collect(),
            None => Vec::new(),
        };

        let new_key = MasterKey::generate().unwrap();
        let rotating = f
            .vault
            .with_keyring(old.clone().rotated_to(new_key.clone()));
        let report = rotating.rotate().unwrap();
        assert_eq!(report.rewrapped.len(), 4, "{}", f.name);
        assert!(report.failed.is_empty());
        // Idempotent: a rerun (say, after a crash) finds nothing to do.
        let again = rotating.rotate().unwrap();
        assert_eq!((again.rewrapped.len(), again.already_current), (0, 4));

        // The new key alone now opens everything; the old key alone nothing.
        let new_only = f.vault.with_keyring(Keyring::new(new_key.clone()));
        for (i, meta) in metas.iter().enumerate() {
            let opened = new_only.get(meta.id).unwrap();
            assert_eq!(opened.content.as_bytes(), marked_content(i).as_slice());
            assert_eq!(opened.meta.key_id, new_key.id());
            assert_eq!(opened.meta.sha256, meta.sha256);
            assert!(matches!(
                f.vault.get(meta.id),
                Err(Error::UnknownKey { .. })
            ));
        }

        // The content ciphertext (everything after the header) is unchanged.
        for (meta, before) in metas.iter().zip(&bodies_before) {
            let after = read_sealed(&f, meta.id);
            let tail = meta.size as usize + 16;
            assert_eq!(&after[after.len() - tail..], &before[before.len() - tail..]);
            assert_ne!(&after[..after.len() - tail], &before[..before.len() - tail]);
        }
    }
}

#[test]
fn rotation_reports_items_it_cannot_unwrap() {
    let f = fixtures(&keys()).remove(0);
    let meta = f.vault.put(b"x", t0()).unwrap();
    // A keyring that lost the old key: the item is reported, not skipped silently.
    let report = f.vault.with_keyring(keys()).rotate().unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, meta.id);
}

#[test]
fn delete_destroys_and_is_idempotent() {
    for f in fixtures(&keys()) {
        let meta = f.vault.put(&marked_content(2), t0()).unwrap();
        assert!(f.vault.delete(meta.id).unwrap());
        assert!(
            matches!(f.vault.get(meta.id), Err(Error::NotFound(_))),
            "{}",
            f.name
        );
        assert!(!f.vault.delete(meta.id).unwrap());
        assert!(f.vault.list().unwrap().is_empty());
    }
}

/// Every file under `root`, recursively.
fn all_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_plaintext_ever_reaches_the_disk() {
    let keys = keys();
    let f = fixtures(&keys).remove(1);
    let root = f.dir.as_ref().unwrap().path().join("vault");
    let mut ids = Vec::new();
    for i in 1..20 {
        ids.push(f.vault.put(&marked_content(i), t0()).unwrap().id);
    }
    f.vault.get(ids[0]).unwrap();
    f.vault.verify(ids[1]).unwrap();
    f.vault.delete(ids[2]).unwrap();
    f.vault
        .with_keyring(keys.rotated_to(MasterKey::generate().unwrap()))
        .rotate()
        .unwrap();
    let files = all_files(&root);
    assert!(
        files.len() >= 18,
        "expected the items on disk, found {files:?}"
    );
    // Any 12-byte window of the marker would betray plaintext.
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for window in MARKER.windows(12) {
            assert!(
                !contains(&bytes, window),
                "{} holds plaintext",
                path.display()
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixtures(&keys()).remove(1);
    f.vault.put(b"x", t0()).unwrap();
    for path in all_files(&f.dir.as_ref().unwrap().path().join("vault")) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
    }
}

#[test]
fn stale_temporary_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("vault");
    Vault::open_dir(&root, keys()).unwrap();
    let stale = root.join("tmp/0011223344556677.tmp");
    let fresh = root.join("tmp/8899aabbccddeeff.tmp");
    for path in [&stale, &fresh] {
        std::fs::File::create(path)
            .unwrap()
            .write_all(b"sealed")
            .unwrap();
    }
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    Vault::open_dir(&root, keys()).unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists(), "a write in progress must not be removed");
}

#[test]
fn a_non_vault_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "unrelated").unwrap();
    let err = Vault::open_dir(dir.path(), keys()).unwrap_err().to_string();
    assert!(err.contains("not a vault"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_content_round_trips(content in proptest::collection::vec(any::<u8>(), 0..4096)) {
        for f in fixtures(&keys()) {
            let meta = f.vault.put(&content, t0()).unwrap();
            let opened = f.vault.get(meta.id).unwrap();
            prop_assert_eq!(opened.content.as_bytes(), content.as_slice());
        }
    }

    /// Flipping any bits of any byte of a stored item either fails the read
    /// or (for an equivalent encoding, such as the case of a hex digit in the
    /// header) yields exactly the original content: never different bytes.
    #[test]
    fn any_change_is_detected(
        content in proptest::collection::vec(any::<u8>(), 1..512),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let backend = Arc::new(MemoryBackend::new());
        let vault = Vault::new(backend.clone(), keys());
        let meta = vault.put(&content, t0()).unwrap();
        let mut sealed = read_memory(&backend, meta.id);
        let i = position.index(sealed.len());
        sealed[i] ^= flip;
        backend.tamper(meta.id, sealed);
        match vault.get(meta.id) {
            Ok(opened) => prop_assert_eq!(opened.content.as_bytes(), content.as_slice()),
            Err(e) => prop_assert!(matches!(
                e,
                Error::Tampered { .. } | Error::Malformed { .. } | Error::UnknownKey { .. } | Error::HashMismatch { .. }
            ), "unexpected error {}", e),
        }
    }

    #[test]
    fn truncation_is_detected(content in proptest::collection::vec(any::<u8>(), 1..512), cut in any::<prop::sample::Index>()) {
        let backend = Arc::new(MemoryBackend::new());
        let vault = Vault::new(backend.clone(), keys());
        let meta = vault.put(&content, t0()).unwrap();
        let mut sealed = read_memory(&backend, meta.id);
        let keep = cut.index(sealed.len());
        sealed.truncate(keep);
        backend.tamper(meta.id, sealed);
        prop_assert!(vault.get(meta.id).is_err());
    }
}

fn read_memory(backend: &MemoryBackend, id: ItemId) -> Vec<u8> {
    use childsafe_vault::Backend;
    backend.read(id).unwrap()
}
