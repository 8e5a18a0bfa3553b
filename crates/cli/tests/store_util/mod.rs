//! Helpers for the end-to-end tests of the store commands (`case`, `vault`,
//! `audit`): a queue file of benign entries, a vault key file, and a
//! database per backend (SQLite in the test directory; PostgreSQL in a schema
//! of its own when `CHILDSAFE_TEST_POSTGRES_URL` is set, dropped afterwards).
//!
//! Use from a test file with `mod store_util;` after `mod util;`.

#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

use serde_json::json;

use crate::util::TestDir;

/// One queue entry line, as `childsafe scan` writes it, for a benign sample.
pub fn queue_line(id: &str, host: Option<&str>, sha256_byte: u8) -> String {
    let hex = |byte: u8, n: usize| format!("{byte:02x}").repeat(n);
    let mut location = json!({ "shard": "shards/00001.tar", "key": format!("sample-{id}") });
    if let Some(host) = host {
        location["url"] = json!(format!("https://{host}/img/{id}.jpg"));
    }
    json!({
        "version": 1,
        "id": id,
        "found_at": "2025-12-31T12:00:00Z",
        "location": location,
        "hashes": { "md5": hex(sha256_byte, 16), "sha1": hex(sha256_byte, 20), "sha256": hex(sha256_byte, 32) },
        "findings": [{
            "category": "csam_known", "score": 1.0,
            "source": { "kind": "bank", "name": "test-bank", "signal": "md5", "entry_id": format!("e-{id}") }
        }]
    })
    .to_string()
}

/// Where a test's store lives, as `--db` (and `--db-schema`) arguments.
pub struct Db {
    pub args: Vec<String>,
    url: Option<String>,
    schema: Option<String>,
}

impl Db {
    /// An SQLite file in the test directory.
    pub fn sqlite(dir: &TestDir) -> Db {
        Db {
            args: vec![
                "--db".to_owned(),
                dir.join("cases.db").display().to_string(),
            ],
            url: None,
            schema: None,
        }
    }

    /// A schema of its own in the test PostgreSQL. Fails, saying why, when
    /// `CHILDSAFE_TEST_POSTGRES_URL` is unset (CI sets it).
    pub fn postgres() -> Db {
        let url = std::env::var("CHILDSAFE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "CHILDSAFE_TEST_POSTGRES_URL is not set: the store commands are tested on PostgreSQL too. \
                 CI sets it (.ci/run); locally: export CHILDSAFE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
            )
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!("cli_{}_{nanos}", std::process::id());
        Db {
            args: vec![
                "--db".to_owned(),
                url.clone(),
                "--db-schema".to_owned(),
                schema.clone(),
            ],
            url: Some(url),
            schema: Some(schema),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let (Some(url), Some(schema)) = (&self.url, &self.schema) {
            // Best effort: a leftover schema costs space, not correctness.
            let _ = Command::new("psql")
                .arg(url)
                .args([
                    "-qc",
                    &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
                ])
                .output();
        }
    }
}

/// Writes a fresh vault key file (0600) with `childsafe vault keygen`.
pub fn keygen(dir: &TestDir, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let out = crate::util::run(dir.command().args(["vault", "keygen", "--out"]).arg(&path));
    assert_eq!(out.code, 0, "{out:?}");
    path
}
