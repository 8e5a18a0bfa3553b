//! End-to-end tests of `childsafe case` through the built binary, on SQLite
//! and on PostgreSQL: importing the scanner's queue (idempotently, with
//! `file:line` errors), listing, showing, assigning and deciding, with every
//! decision's who and why recorded.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod store_util;
mod util;

use serde_json::Value;
use store_util::{Db, queue_line};
use util::{TestDir, run};

fn case(dir: &TestDir, db: &Db, args: &[&str]) -> util::Output {
    run(dir
        .command()
        .arg("case")
        .args(args)
        .args(&db.args)
        .env("CHILDSAFE_ACTOR", "reviewer-a"))
}

fn review_flow(db: &Db) {
    let dir = TestDir::new();
    let queue = dir.write(
        "queue.jsonl",
        [
            queue_line("a1", Some("img.example.org"), 0x11),
            String::new(),
            queue_line("a2", Some("img.example.org"), 0x22),
            queue_line("b1", None, 0x33),
        ]
        .join("\n"),
    );
    let out = case(
        &dir,
        db,
        &["import-queue", queue.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (summary["read"].as_u64(), summary["imported"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(summary["cases_opened"].as_array().unwrap().len(), 2);

    // Importing again adds nothing.
    let out = case(&dir, db, &["import-queue", queue.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("0 imported, 3 already present"),
        "{}",
        out.stdout
    );

    let out = case(&dir, db, &["list", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let cases: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cases.len(), 2);
    let grouped = cases
        .iter()
        .find(|c| c["subject"] == "source:img.example.org")
        .unwrap();
    let id = grouped["id"].as_i64().unwrap().to_string();
    assert_eq!(grouped["status"], "new");

    let out = case(&dir, db, &["show", &id, "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let detail: Value = serde_json::from_str(&out.stdout).unwrap();
    let items = detail["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i["origin"] == "training_data" && i["generative_ai"] == false)
    );
    assert_eq!(items[0]["hashes"]["sha256"], "11".repeat(32));

    let out = case(&dir, db, &["assign", &id, "--to", "reviewer-a"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("in_review"), "{}", out.stdout);

    // A decision needs --reason.
    let out = case(&dir, db, &["decide", &id, "confirm"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--reason"), "{}", out.stderr);

    let out = case(
        &dir,
        db,
        &[
            "decide",
            &id,
            "confirm",
            "--reason",
            "matches a known list entry",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("confirmed"), "{}", out.stdout);
    let out = case(
        &dir,
        db,
        &["decide", &id, "dismiss", "--reason", "second thoughts"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("case {id}: cannot dismiss when confirmed")),
        "{}",
        out.stderr
    );

    let out = case(&dir, db, &["show", &id]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("decision: confirm by reviewer-a"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("in_review -> confirmed: matches a known list entry"),
        "{}",
        out.stdout
    );

    let out = case(&dir, db, &["list", "--status", "confirmed"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.lines().count(),
        2,
        "header and one case: {}",
        out.stdout
    );

    let out = run(dir.command().args(["audit", "verify"]).args(&db.args));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("audit log intact"), "{}", out.stdout);
}

#[test]
fn review_flow_on_sqlite() {
    let dir = TestDir::new();
    review_flow(&Db::sqlite(&dir));
}

#[test]
fn review_flow_on_postgres() {
    review_flow(&Db::postgres());
}

#[test]
fn the_default_database_is_childsafe_db_in_the_current_directory() {
    let dir = TestDir::new();
    dir.write("q.jsonl", queue_line("x1", None, 0x44));
    let out = run(dir.command().args(["case", "import-queue", "q.jsonl"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(dir.join("childsafe.db").exists());
}

#[test]
fn a_bad_queue_line_is_named_and_nothing_is_imported() {
    let dir = TestDir::new();
    let db = Db::sqlite(&dir);
    let queue = dir.write(
        "queue.jsonl",
        format!(
            "{}\n{{\"version\": 1, \"id\": 7}}\n",
            queue_line("a1", None, 0x11)
        ),
    );
    let out = case(&dir, &db, &["import-queue", queue.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("queue.jsonl:2: "), "{}", out.stderr);
    let out = case(&dir, &db, &["list", "--json"]);
    assert_eq!(out.stdout, "", "nothing imported");

    let newer = queue_line("n1", None, 0x55).replace("\"version\":1", "\"version\":9");
    let queue = dir.write("newer.jsonl", newer);
    let out = case(&dir, &db, &["import-queue", queue.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("queue entry n1: version: expected at most 1, got 9"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_cases_and_states_are_clear_errors() {
    let dir = TestDir::new();
    let db = Db::sqlite(&dir);
    let out = case(&dir, &db, &["show", "42"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("case 42: not found"), "{}", out.stderr);
    let out = case(&dir, &db, &["list", "--status", "pending"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("expected one of new, in_review"),
        "{}",
        out.stderr
    );
}
