//! End-to-end tests of `childsafe bank` through the built binary: creating,
//! importing (atomically, with `file:line: field:` errors), exporting,
//! listing, changing and deleting banks. Lists are hashes of the benign PDQ
//! fixture images standing in for a real list.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use serde_json::Value;
use util::{TestDir, fixtures, run};

const BRIDGE: &str = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22";

fn reference_csv() -> std::path::PathBuf {
    fixtures().join("pdq/expected/cpp-reference-pdq.csv")
}

fn bank(dir: &TestDir, args: &[&str]) -> util::Output {
    run(dir
        .command()
        .arg("--banks")
        .arg(dir.join("banks"))
        .arg("bank")
        .args(args))
}

fn stats(dir: &TestDir, name: &str) -> Value {
    let out = bank(dir, &["stats", name, "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn create_import_stats_and_list() {
    let dir = TestDir::new();
    let out = bank(
        &dir,
        &[
            "create",
            "standin",
            "--threshold",
            "24",
            "--quality-floor",
            "60",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(dir.join("banks"))
        .args(["bank", "import", "standin"])
        .arg(reference_csv()));
    assert_eq!(out.code, 0, "{out:?}");
    // 49 rows, but the bridge edits share hashes: duplicates are skipped.
    assert!(out.stderr.contains("(csv):"), "{}", out.stderr);
    assert!(out.stderr.contains("already present"), "{}", out.stderr);
    let stats = stats(&dir, "standin");
    assert_eq!(stats["threshold"], 24);
    assert_eq!(stats["quality_floor"], 60);
    assert_eq!(stats["kind"], "normal");
    assert_eq!(stats["by_signal"]["pdq"], stats["entries"]);
    let unique: std::collections::BTreeSet<String> = std::fs::read_to_string(reference_csv())
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(stats["entries"], unique.len());

    let out = bank(&dir, &["list", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let listed: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(listed["name"], "standin");
    let out = bank(&dir, &["list"]);
    assert!(
        out.stdout.starts_with("standin\tnormal\tenabled\t"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_malformed_line_fails_the_whole_import_and_names_file_line_and_field() {
    let dir = TestDir::new();
    assert_eq!(bank(&dir, &["create", "b"]).code, 0);
    let list = dir.write(
        "list.txt",
        format!("# stand-in list\n{BRIDGE}\n{}\n", &BRIDGE[..63]),
    );
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(dir.join("banks"))
        .args(["bank", "import", "b"])
        .arg(&list));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{}:3: hash: expected 32 (md5), 40 (sha1) or 64 (pdq) hex chars, got 63",
            list.display()
        )),
        "{}",
        out.stderr
    );
    assert_eq!(
        stats(&dir, "b")["entries"],
        0,
        "nothing of the file was applied"
    );

    let bad_csv = dir.write(
        "bad.csv",
        format!("hash,category\n{BRIDGE},csam_known\n{BRIDGE},not_a_category\n"),
    );
    let out = run(dir
        .command()
        .arg("--banks")
        .arg(dir.join("banks"))
        .args(["bank", "import", "b"])
        .arg(&bad_csv));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("bad.csv:3: category: expected a category such as csam_known"),
        "{}",
        out.stderr
    );
    assert_eq!(stats(&dir, "b")["entries"], 0);
}

#[test]
fn export_round_trips_through_import_in_every_format() {
    let dir = TestDir::new();
    assert_eq!(bank(&dir, &["create", "a"]).code, 0);
    let list = dir.write(
        "mixed.csv",
        format!(
            "hash,signal,id,category,source,enabled\n{BRIDGE},pdq,e-1,csam_known,\"list, one\",true\nd41d8cd98f00b204e9800998ecf8427e,md5,e-2,csam_known,list two,false\n{BRIDGE},sha256,e-3,csam_known,list two,true\n"
        ),
    );
    let banks = dir.join("banks");
    assert_eq!(
        run(dir
            .command()
            .arg("--banks")
            .arg(&banks)
            .args(["bank", "import", "a"])
            .arg(&list))
        .code,
        0
    );
    let exported = bank(&dir, &["export", "a"]);
    assert_eq!(exported.code, 0, "{exported:?}");
    assert_eq!(exported.stdout.lines().count(), 4);
    for format in ["csv", "hma", "hex"] {
        let name = format!("copy-{format}");
        assert_eq!(bank(&dir, &["create", &name]).code, 0);
        let file = dir.join(&format!("export.{format}"));
        let out = bank(
            &dir,
            &[
                "export",
                "a",
                "--format",
                format,
                "--output",
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(out.code, 0, "{out:?}");
        let out = run(dir
            .command()
            .arg("--banks")
            .arg(&banks)
            .args(["bank", "import", &name, "--format", format])
            .arg(&file));
        assert_eq!(out.code, 0, "{format}: {out:?}");
        let copy = bank(&dir, &["export", &name, "--format", "hex"]);
        let original = bank(&dir, &["export", "a", "--format", "hex"]);
        assert_eq!(copy.stdout, original.stdout, "{format}");
    }
    // The csv format carries every field.
    let copy = bank(&dir, &["export", "copy-csv"]);
    let strip_added = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.rsplitn(3, ',').collect();
                format!("{} {}", fields[2], fields[0])
            })
            .collect()
    };
    assert_eq!(strip_added(&copy.stdout), strip_added(&exported.stdout));
}

#[test]
fn add_remove_enable_disable_and_settings() {
    let dir = TestDir::new();
    assert_eq!(bank(&dir, &["create", "b", "--index", "fast"]).code, 0);
    let out = bank(&dir, &["add", "b", BRIDGE, "--id", "e-1"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("added pdq"), "{}", out.stderr);
    assert_eq!(
        bank(
            &dir,
            &[
                "add",
                "b",
                "d41d8cd98f00b204e9800998ecf8427e",
                "--id",
                "e-2"
            ]
        )
        .code,
        0
    );
    assert_eq!(stats(&dir, "b")["entries"], 2);

    assert_eq!(bank(&dir, &["disable", "b", "--entry", "e-1"]).code, 0);
    assert_eq!(stats(&dir, "b")["disabled_entries"], 1);
    assert_eq!(bank(&dir, &["enable", "b", "--entry", "e-1"]).code, 0);
    assert_eq!(bank(&dir, &["disable", "b"]).code, 0);
    assert_eq!(stats(&dir, "b")["enabled"], false);

    let out = bank(
        &dir,
        &["set", "b", "--threshold", "12", "--kind", "suppression"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let now = stats(&dir, "b");
    assert_eq!(now["threshold"], 12);
    assert_eq!(now["kind"], "suppression");
    assert_eq!(now["index"], "fast");

    let out = bank(
        &dir,
        &["remove", "b", "--hash", "d41d8cd98f00b204e9800998ecf8427e"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = bank(&dir, &["remove", "b", "--id", "nope"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(r#"bank "b": no entry with id "nope""#),
        "{}",
        out.stderr
    );
    assert_eq!(bank(&dir, &["compact", "b"]).code, 0);
    assert_eq!(bank(&dir, &["verify", "b"]).code, 0);
    assert_eq!(stats(&dir, "b")["entries"], 1);
    assert_eq!(stats(&dir, "b")["pending_changes"], 0);

    let out = bank(&dir, &["set", "b", "--threshold", "300"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("threshold: expected 0 to 256 bits, got 300"),
        "{}",
        out.stderr
    );
    assert_eq!(bank(&dir, &["delete", "b"]).code, 0);
    let out = bank(&dir, &["stats", "b"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(r#"no bank named "b""#),
        "{}",
        out.stderr
    );
}

#[test]
fn hma_collaboration_csv_imports_from_stdin() {
    let dir = TestDir::new();
    assert_eq!(bank(&dir, &["create", "tx"]).code, 0);
    let csv = format!(
        "collab,signal_type,signal_str,category,tags\r\nSample,pdq,{BRIDGE},POSITIVE_CLASS,a b\r\nSample,raw_text,hello,POSITIVE_CLASS,\r\n"
    );
    let mut child = dir
        .command()
        .arg("--banks")
        .arg(dir.join("banks"))
        .args(["bank", "import", "tx", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(csv.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("(hma): 1 added, 0 already present, 1 skipped"),
        "{stderr}"
    );
    let exported = bank(&dir, &["export", "tx", "--format", "hma"]);
    assert_eq!(
        exported.stdout,
        format!(
            "collab,signal_type,signal_str,category,tags\r\nSample,pdq,{BRIDGE},POSITIVE_CLASS,\r\n"
        )
    );
}

#[test]
fn bad_names_and_values_are_clear_errors() {
    let dir = TestDir::new();
    let out = bank(&dir, &["create", "../escape"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("bank name \"../escape\": expected"),
        "{}",
        out.stderr
    );
    let out = bank(&dir, &["add", "missing", "zz"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("hash: expected 32 (md5), 40 (sha1) or 64 (pdq) hex chars, got 2"),
        "{}",
        out.stderr
    );
    let out = bank(&dir, &["create", "x", "--index", "huge"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("expected compact or fast"),
        "{}",
        out.stderr
    );
}
