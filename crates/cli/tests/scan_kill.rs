//! Kill -9 at any moment, rerun the same command, and the outputs are byte
//! for byte those of an uninterrupted run (issue 4, "Scale and robustness").
//!
//! The dataset is a WebDataset written by the Python `webdataset` package
//! (as img2dataset writes it), with planted list entries. One uninterrupted
//! scan is the reference. Then the same command is started into a second
//! output directory and SIGKILLed after pseudo-random delays (seeded, so a
//! failure can be replayed) until a run completes on its own; a final rerun
//! must change nothing. Crash points abort the process exactly between the
//! rename steps of the protocol, where a random kill rarely lands. Every
//! file under --out and --quarantine is compared, except `timing.json`
//! (wall-clock figures, by design apart from the outputs) and the
//! `found_at` values of the report queue (the time each shard was scanned,
//! which differs between two separate runs by definition).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use util::TestDir;

fn python_dataset(dir: &TestDir, n_shards: u32, per_shard: u32) -> PathBuf {
    let out = dir.join("in");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/scan_make_dataset.py");
    let status = Command::new("python3")
        .arg(script)
        .arg(&out)
        .arg(n_shards.to_string())
        .arg(per_shard.to_string())
        .status()
        .expect("python3 runs (pip install -r tests/requirements.txt)");
    assert!(status.success(), "scan_make_dataset.py failed");
    out
}

/// Plants the SHA-256 of two samples' images in a bank, and one URL in a list.
fn plant(dir: &TestDir, input: &Path) -> (PathBuf, PathBuf) {
    let mut hashes = Vec::new();
    for (shard, key) in [("00001.tar", "000010003"), ("00003.tar", "000030007")] {
        let mut archive = tar::Archive::new(std::fs::File::open(input.join(shard)).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_string_lossy() == format!("{key}.jpg") {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
                hashes.push(childsafe_hash::crypto_hashes(&bytes).sha256);
            }
        }
    }
    assert_eq!(hashes.len(), 2);
    let banks = dir.join("banks");
    let mut opened = childsafe_match::Banks::open(&banks).unwrap();
    opened
        .create("standin", childsafe_match::BankSettings::default())
        .unwrap();
    let entries = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            childsafe_match::entry_from_hash(
                childsafe_match::Signal::Sha256(*h),
                Some(&format!("e-{i}")),
                "test",
                childsafe_core::Category::CsamKnown,
            )
        })
        .collect();
    opened.add("standin", entries).unwrap();
    let urls = dir.write("urls.txt", "https://images.example.org/000020004.jpg\n");
    (banks, urls)
}

fn scan_command(dir: &TestDir, banks: &Path, urls: &Path, input: &Path, name: &str) -> Command {
    let mut cmd = dir.command();
    cmd.arg("--banks")
        .arg(banks)
        .arg("scan")
        .arg(input)
        .arg("--out")
        .arg(dir.join(name).join("out"))
        .arg("--quarantine")
        .arg(dir.join(name).join("q"))
        .arg("--url-list")
        .arg(urls)
        .arg("--jobs")
        .arg("2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Every file (relative path to bytes), minus timing files, `found_at` masked.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut res = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("timing.json") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let bytes = if name.ends_with(".jsonl") || name.ends_with(".json") {
                mask_found_at(&bytes)
            } else {
                bytes
            };
            res.insert(path.strip_prefix(root).unwrap().to_owned(), bytes);
        }
    }
    res
}

fn mask_found_at(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut res = String::with_capacity(text.len());
    let mut rest: &str = &text;
    let marker = "\"found_at\":\"";
    while let Some(at) = rest.find(marker) {
        let start = at + marker.len();
        res.push_str(&rest[..start]);
        res.push_str("MASKED");
        let end = rest[start..].find('"').map_or(rest.len(), |e| start + e);
        rest = &rest[end..];
    }
    res.push_str(rest);
    res.into_bytes()
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (a, b) = (tree(a), tree(b));
    let names_a: Vec<_> = a.keys().collect();
    let names_b: Vec<_> = b.keys().collect();
    assert_eq!(names_a, names_b, "same files");
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{} differs", name.display());
    }
}

#[test]
fn kill_nine_at_random_points_then_rerun_gives_the_same_bytes() {
    let dir = TestDir::new();
    let input = python_dataset(&dir, 8, 150);
    let (banks, urls) = plant(&dir, &input);

    let timer = Instant::now();
    let reference = util::run(&mut scan_command(&dir, &banks, &urls, &input, "reference"));
    let full_run = timer.elapsed();
    assert_eq!(reference.code, 1, "{}", reference.stderr);
    let manifest = std::fs::read_to_string(dir.join("reference/q/manifest.jsonl")).unwrap();
    // The generated patterns repeat across shards, so a listed hash can
    // match more than the planted sample; the planted ones must be there.
    for key in ["000010003", "000030007", "000020004"] {
        assert!(
            manifest.contains(&format!("\"key\":\"{key}\"")),
            "{key} not removed"
        );
    }

    // Kill at seeded pseudo-random points of a run (5% to 70% of an
    // uninterrupted one, so kills land inside runs on a fast machine and a
    // slow one alike) until a run finishes by itself.
    let mut seed: u64 = 0x5eed_0004;
    let mut kills = 0;
    let started = Instant::now();
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = full_run.mul_f64(0.05 + (seed % 650) as f64 / 1000.0);
        let mut child = scan_command(&dir, &banks, &urls, &input, "killed")
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        match child.try_wait().unwrap() {
            Some(status) => {
                assert_eq!(status.code(), Some(1), "run after {kills} kills");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no run finished after {kills} kills"
        );
    }
    assert!(
        kills >= 2,
        "the delays never interrupted a run ({kills} kills)"
    );
    let again = util::run(&mut scan_command(&dir, &banks, &urls, &input, "killed"));
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert_same_tree(&dir.join("reference"), &dir.join("killed"));
}

#[test]
fn crash_between_rename_steps_then_rerun_gives_the_same_bytes() {
    let dir = TestDir::new();
    let input = python_dataset(&dir, 4, 10);
    let (banks, urls) = plant(&dir, &input);
    let reference = util::run(&mut scan_command(&dir, &banks, &urls, &input, "reference"));
    assert_eq!(reference.code, 1, "{}", reference.stderr);
    for (i, point) in [
        "clean-renamed:2",
        "parts-renamed:3",
        "record-written:1",
        "merge-jsonl-written:1",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("crash{i}");
        let mut cmd = scan_command(&dir, &banks, &urls, &input, &name);
        cmd.env(childsafe_scan::CRASH_ENV, point);
        let crashed = util::run(&mut cmd);
        assert_ne!(crashed.code, 0, "{point}: the crash point was not reached");
        assert_ne!(crashed.code, 1, "{point}: the crash point was not reached");
        let rerun = util::run(&mut scan_command(&dir, &banks, &urls, &input, &name));
        assert_eq!(rerun.code, 1, "{point}: {}", rerun.stderr);
        assert_same_tree(&dir.join("reference"), &dir.join(&name));
    }
}
