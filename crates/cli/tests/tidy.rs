//! Tidy rules, run as tests (after rust-analyzer's `xtask/src/tidy.rs`): every
//! Rust file opens with a `//!` comment saying what it is for, no test hides
//! behind `#[should_panic]` or `#[ignore]`, and no line has trailing whitespace.

use std::path::{Path, PathBuf};

#[test]
fn every_rust_file_is_tidy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates", "fuzz/fuzz_targets"] {
        collect_rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    let mut problems = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let shown = path.strip_prefix(&root).unwrap_or(path).display();
        if !text.starts_with("//!") {
            problems.push(format!("{shown}: does not start with a //! comment"));
        }
        for (line_idx, line) in text.lines().enumerate() {
            let line_no = line_idx + 1;
            if line != line.trim_end() {
                problems.push(format!("{shown}:{line_no}: trailing whitespace"));
            }
            let code = line.trim_start();
            // Spelled in two pieces so this file does not trip its own rule.
            for banned in [concat!("#[should", "_panic"), concat!("#[ig", "nore")] {
                if code.starts_with(banned) {
                    problems.push(format!(
                        "{shown}:{line_no}: {banned}] (assert on the Err instead)"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "tidy problems:\n{}",
        problems.join("\n")
    );
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}
