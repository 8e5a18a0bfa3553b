//! End-to-end tests of `childsafe vault` through the built binary: keys
//! (made owner-only, weak or exposed ones refused), preserving a file,
//! reading it back only into a pipe with a purpose and reason, detecting a
//! damaged item, rotating the master key, holds and purges; on SQLite and
//! PostgreSQL. No output but `get`'s pipe ever carries the content.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod store_util;
mod util;

use std::process::Stdio;

use serde_json::Value;
use sha2::{Digest, Sha256};
use store_util::{Db, keygen};
use util::{TestDir, run};

/// Benign bytes standing in for preserved material, easy to search for.
const MARKER: &str = "CHILDSAFE-CLI-VAULT-MARKER-0b7e";

fn vault(dir: &TestDir, db: &Db, key: &std::path::Path, args: &[&str]) -> util::Output {
    run(dir
        .command()
        .arg("vault")
        .args(args)
        .args(&db.args)
        .arg("--vault-dir")
        .arg(dir.join("vault"))
        .arg("--vault-key-file")
        .arg(key)
        .env("CHILDSAFE_ACTOR", "ops"))
}

fn no_marker(out: &util::Output) {
    assert!(
        !out.stdout.contains(MARKER) && !out.stderr.contains(MARKER),
        "content leaked: {out:?}"
    );
}

fn every_file_under(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(every_file_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn preserve_read_verify_rotate(db: &Db) {
    let dir = TestDir::new();
    let key = keygen(&dir, "vault.key");
    let content = MARKER.repeat(16);
    let file = dir.write("evidence.bin", &content);

    let out = vault(
        &dir,
        db,
        &key,
        &[
            "put",
            file.to_str().unwrap(),
            "--reason",
            "known hash match",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    no_marker(&out);
    let item: Value = serde_json::from_str(&out.stdout).unwrap();
    let id = item["id"].as_str().unwrap().to_owned();
    assert_eq!(
        item["sha256"],
        hex::encode(Sha256::digest(content.as_bytes()))
    );
    assert_eq!(item["viewed"], false);
    std::fs::remove_file(&file).unwrap();

    // Nothing under the vault directory holds the content.
    for path in every_file_under(&dir.join("vault")) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(16).any(|w| w == &MARKER.as_bytes()[..16]),
            "{} holds plaintext",
            path.display()
        );
    }

    // Read back into a pipe, for a stated purpose.
    let out = vault(
        &dir,
        db,
        &key,
        &["get", &id, "--purpose", "view", "--reason", "case review"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, content);
    assert!(!out.stderr.contains(MARKER));

    // Never into a file.
    let sink = dir.join("copy.bin");
    let status = dir
        .command()
        .args(["vault", "get", &id, "--purpose", "export", "--reason", "x"])
        .args(&db.args)
        .arg("--vault-dir")
        .arg(dir.join("vault"))
        .arg("--vault-key-file")
        .arg(&key)
        .env("CHILDSAFE_ACTOR", "ops")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&sink).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&status.stderr).contains("standard output is a file"));
    assert_eq!(std::fs::read(&sink).unwrap(), b"");

    // Viewing was logged with its reason.
    let out = run(dir
        .command()
        .args(["audit", "log", "--json"])
        .args(&db.args));
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("\"evidence.view\"") && l.contains("case review")),
        "{}",
        out.stdout
    );

    let out = vault(&dir, db, &key, &["verify"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&format!("{id}: ok")), "{}", out.stdout);

    // Rotate to a new key: the new key alone then opens the item, the old one does not.
    let new_key = keygen(&dir, "vault-new.key");
    let out = vault(
        &dir,
        db,
        &key,
        &["rotate-key", "--new-key-file", new_key.to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("re-wrapped 1 items"), "{}", out.stdout);
    let out = vault(
        &dir,
        db,
        &new_key,
        &[
            "get",
            &id,
            "--purpose",
            "export",
            "--reason",
            "after rotation",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, content);
    let out = vault(
        &dir,
        db,
        &key,
        &["get", &id, "--purpose", "export", "--reason", "old key"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("not in the keyring"), "{}", out.stderr);
    no_marker(&out);

    // Damage the item on disk: verify names it and exits 1.
    let name = &id;
    let path = dir.join("vault/items").join(&name[..2]).join(name);
    let mut sealed = std::fs::read(&path).unwrap();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    std::fs::write(&path, sealed).unwrap();
    let out = vault(&dir, db, &new_key, &["verify"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(&format!("{id}: FAILED"))
            && out.stdout.contains("authentication failed"),
        "{}",
        out.stdout
    );
    no_marker(&out);

    // Hold and release; a purge with nothing expired destroys nothing.
    // (hold needs only the database.)
    let out = run(dir
        .command()
        .args([
            "vault",
            "hold",
            &id,
            "--reason",
            "preservation request",
            "--by",
            "ops",
        ])
        .args(&db.args));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("legal hold on"), "{}", out.stdout);
    let out = vault(&dir, db, &new_key, &["purge", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let purge: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(purge["destroyed"].as_array().unwrap().len(), 0);

    let out = run(dir.command().args(["audit", "verify"]).args(&db.args));
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn preserve_read_verify_rotate_on_sqlite() {
    let dir = TestDir::new();
    preserve_read_verify_rotate(&Db::sqlite(&dir));
}

#[test]
fn preserve_read_verify_rotate_on_postgres() {
    preserve_read_verify_rotate(&Db::postgres());
}

#[test]
fn get_requires_a_reason_and_a_purpose() {
    let dir = TestDir::new();
    let db = Db::sqlite(&dir);
    let key = keygen(&dir, "k");
    let id = "00112233445566778899aabbccddeeff";
    let out = vault(&dir, &db, &key, &["get", id, "--purpose", "view"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--reason"), "{}", out.stderr);
    let out = vault(&dir, &db, &key, &["get", id, "--reason", "x"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--purpose"), "{}", out.stderr);
    let out = vault(
        &dir,
        &db,
        &key,
        &[
            "get",
            "../../etc/passwd",
            "--purpose",
            "view",
            "--reason",
            "x",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("expected 32 hex digits"),
        "{}",
        out.stderr
    );
}

#[test]
fn weak_malformed_exposed_and_missing_keys_are_refused_without_echo() {
    let dir = TestDir::new();
    let db = Db::sqlite(&dir);
    let file = dir.write("e.bin", "benign");
    let put = |env: &[(&str, &str)], key_file: Option<&std::path::Path>| {
        let mut cmd = dir.command();
        cmd.args([
            "vault",
            "put",
            file.to_str().unwrap(),
            "--reason",
            "r",
            "--by",
            "ops",
        ])
        .args(&db.args)
        .arg("--vault-dir")
        .arg(dir.join("vault"));
        if let Some(k) = key_file {
            cmd.arg("--vault-key-file").arg(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let out = put(&[], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no vault key"), "{}", out.stderr);

    let weak = "00".repeat(32);
    let out = put(&[("CHILDSAFE_VAULT_KEY", &weak)], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("$CHILDSAFE_VAULT_KEY: key 1: weak key"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&weak));

    let out = put(&[("CHILDSAFE_VAULT_KEY", "hunter2-is-my-password")], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("expected 64 hex digits or base64 of 32 bytes"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = keygen(&dir, "exposed.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = put(&[], Some(&key));
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
        // keygen made it owner-only, and refuses to overwrite.
        let fresh = keygen(&dir, "fresh.key");
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let out = run(dir.command().args(["vault", "keygen", "--out"]).arg(&fresh));
        assert_eq!(out.code, 2, "{out:?}");
    }

    // A key from the environment works.
    let out = run(dir.command().args(["vault", "keygen"]));
    let key = out.stdout.trim().to_owned();
    let out = put(&[("CHILDSAFE_VAULT_KEY", &key)], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains(&key) && !out.stdout.contains(&key));
}
