//! `childsafe scan` through the binary, on datasets written by Python's own
//! writers (the `webdataset` TarWriter and pyarrow, as img2dataset and
//! Hugging Face `datasets` write them), with the clean copy read back by the
//! `webdataset` and `pyarrow` packages as a data team would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use util::TestDir;

fn python(script: &str, args: &[&Path]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .join(script);
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn bank_with(dir: &TestDir, hashes: &[childsafe_core::Sha256]) -> PathBuf {
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
    banks
}

fn member(tar_path: &Path, name: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == name {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("{name} not in {}", tar_path.display());
}

#[test]
fn webdataset_from_python_is_cleaned_and_reads_back_in_python() {
    let dir = TestDir::new();
    let input = dir.join("in");
    python(
        "scan_make_dataset.py",
        &[&input, Path::new("3"), Path::new("6")],
    );
    let listed =
        childsafe_hash::crypto_hashes(&member(&input.join("00001.tar"), "000010002.jpg")).sha256;
    let banks = bank_with(&dir, &[listed]);
    let urls = dir.write(
        "urls.txt",
        "# a hotline-style list\nimages.example.org/000020005.jpg\n",
    );
    let out = util::run(
        dir.command()
            .arg("--banks")
            .arg(&banks)
            .arg("scan")
            .arg(format!("{}/{{00000..00002}}.tar", input.display()))
            .args(["--out", "out", "--quarantine", "q", "--url-list"])
            .arg(&urls),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("total"), "{}", out.stdout);
    // Nothing of the content on either stream.
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !stream.contains("pattern 2") && !stream.contains("example.org"),
            "{stream}"
        );
    }
    let seen: serde_json::Value =
        serde_json::from_str(&python("scan_readback.py", &[&dir.join("out")])).unwrap();
    let keys = |file: &str| -> Vec<String> {
        seen[file]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let all = |shard: u32| -> Vec<String> { (0..6).map(|i| format!("{shard:05}{i:04}")).collect() };
    assert_eq!(keys("00000.tar"), all(0));
    assert_eq!(
        keys("00001.tar"),
        all(1)
            .into_iter()
            .filter(|k| k != "000010002")
            .collect::<Vec<_>>()
    );
    assert_eq!(
        keys("00002.tar"),
        all(2)
            .into_iter()
            .filter(|k| k != "000020005")
            .collect::<Vec<_>>()
    );
    // The side metadata Parquet lost the same rows, and nothing else.
    assert_eq!(keys("00001.parquet"), keys("00001.tar"));
    assert_eq!(keys("00002.parquet"), keys("00002.tar"));
    assert_eq!(
        seen["00001.parquet"]["columns"],
        seen["00000.parquet"]["columns"]
    );
    assert_eq!(
        std::fs::read(input.join("00000.tar")).unwrap(),
        std::fs::read(dir.join("out/00000.tar")).unwrap()
    );
    assert!(dir.join("out/00001_stats.json").exists());
    // The manifest reads in pyarrow too, with no URL or caption in it.
    let manifest = std::fs::read_to_string(dir.join("q/manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 2);
    assert!(!manifest.contains("example.org") && !manifest.contains("pattern"));
    let queue = std::fs::read_to_string(dir.join("q/report-queue.jsonl")).unwrap();
    assert_eq!(queue.lines().count(), 2);
    assert!(queue.contains("https://images.example.org/000020005.jpg"));
}

#[test]
fn bad_arguments_and_corrupt_shards_are_reported() {
    let dir = TestDir::new();
    let input = dir.join("in");
    python(
        "scan_make_dataset.py",
        &[&input, Path::new("2"), Path::new("4")],
    );
    let bytes = std::fs::read(input.join("00001.tar")).unwrap();
    std::fs::write(input.join("00001.tar"), &bytes[..3000]).unwrap();
    let banks = bank_with(&dir, &[]);
    let out = util::run(
        dir.command()
            .arg("--banks")
            .arg(&banks)
            .arg("scan")
            .arg(&input)
            .args(["--out", "out", "--quarantine", "q"]),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("00001.tar") && out.stderr.contains("truncated"),
        "{}",
        out.stderr
    );
    assert!(dir.join("out/00000.tar").exists() && !dir.join("out/00001.tar").exists());
    let out = util::run(
        dir.command()
            .arg("--banks")
            .arg(&banks)
            .arg("scan")
            .arg("missing/*.tar")
            .args(["--out", "o", "--quarantine", "q2"]),
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("missing/*.tar: matches no file"),
        "{}",
        out.stderr
    );
}
