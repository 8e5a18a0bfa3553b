//! End-to-end tests of `childsafe match` through the built binary: images and
//! hash files against stand-in banks built from the benign PDQ fixtures,
//! JSON output, suppression, exit statuses, and bad input (one error per
//! file, the run goes on, a summary, exit 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::PathBuf;

use childsafe_core::PdqHash;
use serde_json::Value;
use util::{TestDir, fixtures, run};

fn banks_arg(dir: &TestDir) -> PathBuf {
    dir.join("banks")
}

fn childsafe(dir: &TestDir, args: &[&str]) -> util::Output {
    run(dir.command().arg("--banks").arg(banks_arg(dir)).args(args))
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A bank of the C++ reference hashes of every fixture image.
fn reference_bank(dir: &TestDir, name: &str, extra: &[&str]) {
    let mut args = vec!["bank", "create", name];
    args.extend_from_slice(extra);
    assert_eq!(childsafe(dir, &args).code, 0);
    let csv = fixtures().join("pdq/expected/cpp-reference-pdq.csv");
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(dir))
        .args(["bank", "import", name])
        .arg(csv));
    assert_eq!(out.code, 0, "{out:?}");
}

fn image(rel: &str) -> PathBuf {
    fixtures().join("pdq/images").join(rel)
}

#[test]
fn images_match_their_reference_hashes() {
    let dir = TestDir::new();
    reference_bank(&dir, "standin", &[]);
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .args(["match", "--json"])
        .arg(image("pdq-data/bridge-mods")));
    assert_eq!(out.code, 1, "{out:?}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 12);
    for line in &lines {
        assert!(
            line["path"].as_str().unwrap().contains("bridge-mods"),
            "{line}"
        );
        assert!(line["quality"].as_u64().unwrap() >= 50, "{line}");
        let matches = line["matches"].as_array().unwrap();
        assert!(
            !matches.is_empty(),
            "every edit of the bridge matches: {line}"
        );
        for found in matches {
            assert_eq!(found["bank"], "standin");
            assert_eq!(found["signal"], "pdq");
            assert_eq!(found["category"], "csam_known");
            assert!(found["distance"].as_u64().unwrap() <= 31);
            assert_eq!(found["entry_id"].as_str().unwrap().len(), 64);
        }
    }
    assert!(
        out.stderr
            .contains("match: 12 inputs: 12 matched, 0 with suppressed matches, 0 errors"),
        "{}",
        out.stderr
    );
    // Text output: one line per match, naming the file.
    let out = childsafe(
        &dir,
        &[
            "match",
            image("pdq-data/bridge-mods/aaa-orig.jpg").to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .lines()
            .all(|line| line.contains("aaa-orig.jpg: standin pdq ")),
        "{}",
        out.stdout
    );
}

#[test]
fn no_match_exits_zero() {
    let dir = TestDir::new();
    assert_eq!(childsafe(&dir, &["bank", "create", "other"]).code, 0);
    // A hash far from every fixture image.
    assert_eq!(
        childsafe(&dir, &["bank", "add", "other", &"0f".repeat(32)]).code,
        0
    );
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .args(["match", "--json"])
        .arg(image("pdq-data/bridge-mods/aaa-orig.jpg")));
    assert_eq!(out.code, 0, "{out:?}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["matches"], Value::Array(Vec::new()));
}

/// The haystack/needles lists of the PDQ fixtures: every needle's matches
/// are exactly what a brute-force scan finds.
#[test]
fn pdq_hash_files_match_exactly_what_a_scan_finds() {
    let dir = TestDir::new();
    for layout in ["compact", "fast"] {
        assert_eq!(
            childsafe(&dir, &["bank", "create", layout, "--index", layout]).code,
            0
        );
        let out = run(dir
            .command()
            .arg("--banks")
            .arg(banks_arg(&dir))
            .args(["bank", "import", layout])
            .arg(fixtures().join("pdq/hash-lists/haystack.txt")));
        assert_eq!(out.code, 0, "{out:?}");
    }
    let haystack: Vec<PdqHash> =
        std::fs::read_to_string(fixtures().join("pdq/hash-lists/haystack.txt"))
            .unwrap()
            .lines()
            .map(|it| it.trim().parse().unwrap())
            .collect();
    let needles_path = fixtures().join("pdq/hash-lists/needles.txt");
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .args(["match", "--json", "--batch", "7", "--pdq-hashes"])
        .arg(&needles_path));
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let lines = json_lines(&out.stdout);
    let needles: Vec<PdqHash> = std::fs::read_to_string(&needles_path)
        .unwrap()
        .lines()
        .map(|it| it.trim().parse().unwrap())
        .collect();
    assert_eq!(lines.len(), needles.len());
    let mut total = 0;
    for (line, needle) in lines.iter().zip(&needles) {
        assert_eq!(line["hash"], needle.to_string());
        assert!(
            line.get("quality").is_none(),
            "no quality was given: {line}"
        );
        for layout in ["compact", "fast"] {
            let mut expected: Vec<(String, u64)> = haystack
                .iter()
                .filter(|hay| hay.distance(needle) <= 31)
                .map(|hay| (hay.to_string(), u64::from(hay.distance(needle))))
                .collect();
            expected.sort();
            expected.dedup();
            let mut got: Vec<(String, u64)> = line["matches"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|it| it["bank"] == layout)
                .map(|it| {
                    (
                        it["entry_id"].as_str().unwrap().to_owned(),
                        it["distance"].as_u64().unwrap(),
                    )
                })
                .collect();
            got.sort();
            total += got.len();
            assert_eq!(got, expected, "{layout}: needle {needle}");
        }
    }
    assert!(total > 0, "the fixture needles do have near matches");
}

#[test]
fn suppression_banks_cancel_and_say_so() {
    let dir = TestDir::new();
    reference_bank(&dir, "list", &[]);
    reference_bank(&dir, "benign", &["--suppression"]);
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .args(["match", "--json"])
        .arg(image("pdq-data/bridge-mods/aaa-orig.jpg")));
    assert_eq!(out.code, 0, "all matches were suppressed: {out:?}");
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(line["matches"], Value::Array(Vec::new()));
    let suppressed = line["suppressed"].as_array().unwrap();
    assert!(!suppressed.is_empty());
    assert_eq!(suppressed[0]["bank"], "list");
    assert_eq!(suppressed[0]["suppressed_by"]["bank"], "benign");
    assert!(
        out.stderr.contains("0 matched, 1 with suppressed matches"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_inputs_are_reported_one_per_file_and_the_run_goes_on() {
    let dir = TestDir::new();
    reference_bank(&dir, "standin", &[]);
    let empty = dir.write("inputs/empty.jpg", b"");
    let text = dir.write("inputs/notes.txt", b"not an image");
    let truncated = {
        let bytes = std::fs::read(image("pdq-data/bridge-mods/aaa-orig.jpg")).unwrap();
        dir.write("inputs/truncated.jpg", &bytes[..bytes.len() / 3])
    };
    let good = image("pdq-data/misc-images/wee.jpg");
    let missing = dir.join("inputs/missing.png");
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .arg("match")
        .args([&empty, &text, &truncated, &good, &missing]));
    assert_eq!(out.code, 2, "{out:?}");
    for path in [&empty, &text, &missing] {
        let name = path.display().to_string();
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|line| line.contains(&name))
            .collect();
        assert_eq!(lines.len(), 1, "one error line for {name}: {}", out.stderr);
        assert!(lines[0].starts_with("childsafe: match: "), "{}", lines[0]);
    }
    assert!(out.stderr.contains("match: 5 inputs:"), "{}", out.stderr);
    assert!(out.stderr.contains("errors"), "{}", out.stderr);
    // The text of a non-image never appears in any output.
    assert!(!out.stderr.contains("not an image") && !out.stdout.contains("not an image"));
}

#[test]
fn undecodable_files_still_match_on_their_bytes() {
    let dir = TestDir::new();
    assert_eq!(childsafe(&dir, &["bank", "create", "exact"]).code, 0);
    let file = dir.write("inputs/blob.bin", b"benign stand-in bytes, not an image");
    // MD5 of the file, computed here so the bank holds it.
    let hashed = run(dir.command().args(["hash", "--json"]).arg(&file));
    let md5 = json_lines(&hashed.stdout)[0]["md5"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        childsafe(&dir, &["bank", "add", "exact", &md5, "--id", "blob"]).code,
        0
    );
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .args(["match", "--json"])
        .arg(&file));
    assert_eq!(out.code, 2, "a decode error is still an error: {out:?}");
    let line = &json_lines(&out.stdout)[0];
    assert!(line["error"].is_string(), "{line}");
    assert_eq!(line["matches"][0]["entry_id"], "blob");
    assert_eq!(line["matches"][0]["signal"], "md5");
    assert_eq!(line["matches"][0]["distance"], Value::Null);
}

#[test]
fn bad_hash_lines_name_file_and_line() {
    let dir = TestDir::new();
    reference_bank(&dir, "standin", &[]);
    let hashes = dir.write(
        "hashes.txt",
        "# from the reference hasher\nd8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22,100,a.jpg\nnot-a-hash\nd8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22,900\n",
    );
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .args(["match", "--json", "--pdq-hashes"])
        .arg(&hashes));
    assert_eq!(out.code, 2, "{out:?}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["quality"], 100);
    assert!(!lines[0]["matches"].as_array().unwrap().is_empty());
    let shown = hashes.display().to_string();
    assert_eq!(
        lines[1]["error"],
        format!("{shown}:3: pdq: expected 64 hex chars, got 10")
    );
    assert_eq!(
        lines[2]["error"],
        format!("{shown}:4: quality: expected 0 to 100, got \"900\"")
    );
    assert!(
        out.stderr
            .contains("match: 3 inputs: 1 matched, 0 with suppressed matches, 2 errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn flood_counts_reach_bank_stats() {
    let dir = TestDir::new();
    reference_bank(&dir, "standin", &["--flood-threshold", "3"]);
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(banks_arg(&dir))
        .args(["match", "--json"])
        .arg(image("pdq-data/bridge-mods")));
    assert_eq!(out.code, 1);
    let flagged = json_lines(&out.stdout)
        .iter()
        .flat_map(|line| line["matches"].as_array().cloned().unwrap_or_default())
        .filter(|found| found["flood"]["likely_false_positive"] == true)
        .count();
    assert!(
        flagged > 0,
        "12 distinct edits of one photo flood its entries"
    );
    let stats = childsafe(&dir, &["bank", "stats", "standin", "--json"]);
    let stats: Value = serde_json::from_str(&stats.stdout).unwrap();
    let flood = stats["flood"].as_array().unwrap();
    assert!(!flood.is_empty());
    assert_eq!(flood[0]["likely_false_positive"], true);
    assert!(flood[0]["distinct_inputs"].as_u64().unwrap() >= 3);
}
