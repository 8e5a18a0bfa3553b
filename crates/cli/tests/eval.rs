//! End-to-end tests of `childsafe eval text` through the built binary: the
//! project's dev set meets the goals of issue 3 (a regression fails CI), the
//! JSON report has its documented shape, and a bad eval file names its line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use serde_json::Value;
use util::TestDir;

fn dev_set() -> String {
    format!("{}/../text/eval/text-dev.jsonl", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_dev_set_meets_the_goals() {
    let dir = TestDir::new();
    let out = util::run(dir.command().args([
        "eval",
        "text",
        "--json",
        "--check-goals",
        "--data",
        &dev_set(),
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(report["items"].as_u64().unwrap() >= 400);
    assert_eq!(report["goals_met"], true);
    assert_eq!(report["help_seeking_as_solicitation"], 0);
    let solicitation = &report["categories"][0];
    assert_eq!(solicitation["category"], "csam_solicitation");
    assert!(solicitation["recall"].as_f64().unwrap() >= 0.95);
    assert!(report["benign_false_positive_rate"].as_f64().unwrap() <= 0.01);
    let langs: Vec<&str> = report["languages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lang"].as_str().unwrap())
        .collect();
    assert!(langs.len() >= 5, "{langs:?}");
    assert!(report["confusion"]["benign"]["benign"].as_u64().unwrap() > 100);

    let out = util::run(dir.command().args(["eval", "text", "--data", &dev_set()]));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("csam_solicitation"));
    assert!(out.stdout.contains("goals (solicitation recall >= 0.95"));
}

#[test]
fn a_bad_eval_line_is_named() {
    let dir = TestDir::new();
    dir.write("set.jsonl", "{\"text\": \"hello\", \"labels\": [\"benign\"]}\n{\"text\": \"x\", \"labels\": [\"cuteness\"]}\n");
    let out = util::run(dir.command().args(["eval", "text", "--data", "set.jsonl"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("set.jsonl:2: labels: expected a category name or \"benign\", got an unknown label \"cuteness\""),
        "{}",
        out.stderr
    );
}
