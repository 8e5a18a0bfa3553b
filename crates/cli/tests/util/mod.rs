//! Shared helpers for the end-to-end tests through the built binary (after
//! ripgrep's `tests/util.rs`): a fresh temporary directory per test, a
//! `Command` for `childsafe` that runs in it, and the captured output.
//!
//! Use from a test file with `mod util;`. Not every test file uses every
//! helper, hence the `dead_code` allowance; `expect` names the failed
//! setup step, which is all a test helper can do.

#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A temporary directory for one test, removed when dropped.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    /// A fresh, empty directory.
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` (creating parent directories) and returns the path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, bytes).expect("write test file");
        path
    }

    /// A command for the built `childsafe` binary, run in this directory,
    /// with no `CHILDSAFE_*` settings inherited from the caller's environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_childsafe"));
        cmd.current_dir(self.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CHILDSAFE_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`-1` if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cmd` to completion with no standard input and captures its output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the childsafe binary");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The shared fixtures (`../shared/fixtures` next to the repository root).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}
