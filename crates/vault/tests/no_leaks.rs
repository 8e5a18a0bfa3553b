//! No log line, error message or `Debug` output carries vault content
//! (DESIGN invariant 1). Its own test binary, so that the process-wide log
//! capture sees every event and nothing else runs beside it.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use childsafe_vault::{Keyring, MasterKey, Vault};
use time::OffsetDateTime;

const MARKER: &[u8] = b"CHILDSAFE-TEST-PLAINTEXT-MARKER-7f3a";

/// A `tracing` writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn keys() -> Keyring {
    Keyring::new(MasterKey::generate().unwrap())
}

#[test]
fn logs_errors_and_debug_output_never_carry_content() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .init();

    let content: Vec<u8> = MARKER.repeat(8);
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let vaults = [
        Vault::in_memory(keys.clone()),
        Vault::open_dir(&dir.path().join("vault"), keys.clone()).unwrap(),
    ];
    let mut messages = Vec::new();
    for vault in &vaults {
        let meta = vault.put(&content, OffsetDateTime::UNIX_EPOCH).unwrap();
        let opened = vault.get(meta.id).unwrap();
        messages.push(format!("{opened:?} {vault:?} {:?}", vault.keyring()));
        vault.verify(meta.id).unwrap();
        vault
            .with_keyring(keys.clone().rotated_to(MasterKey::generate().unwrap()))
            .rotate()
            .unwrap();
        let err = vault.with_keyring(self::keys()).get(meta.id).unwrap_err();
        messages.push(format!("{err} {err:?}"));
        vault.delete(meta.id).unwrap();
    }
    // A damaged item on disk: the error names it and never shows it.
    let vault = &vaults[1];
    let meta = vault.put(&content, OffsetDateTime::UNIX_EPOCH).unwrap();
    let name = meta.id.to_string();
    let path = dir.path().join("vault/items").join(&name[..2]).join(&name);
    let mut sealed = std::fs::read(&path).unwrap();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    std::fs::write(&path, sealed).unwrap();
    let err = vault.get(meta.id).unwrap_err();
    assert!(err.to_string().contains(&name), "{err}");
    messages.push(format!("{err} {err:?}"));

    let logs = captured.0.lock().unwrap().clone();
    assert!(
        contains(&logs, b"vault item stored"),
        "the capture saw nothing"
    );
    assert!(contains(&logs, b"vault key rotation"));
    assert!(
        !contains(&logs, &MARKER[..12]),
        "a log line carries content"
    );
    let marker = std::str::from_utf8(&MARKER[..12]).unwrap();
    for message in messages {
        assert!(!message.contains(marker), "{message}");
    }
}
