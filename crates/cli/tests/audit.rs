//! End-to-end tests of `childsafe audit` through the built binary: an
//! intact log verifies (exit 0); an edited, deleted or truncated row is
//! named (exit 1); a recorded head works as a checkpoint; on SQLite and
//! PostgreSQL.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod store_util;
mod util;

use std::str::FromStr;

use store_util::{Db, queue_line};
use util::{TestDir, run};

/// Runs SQL straight against the test database, as an attacker would.
fn tamper(dir: &TestDir, db: &Db, statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if db.args[1].starts_with("postgres") {
            let schema = &db.args[3];
            let options = sqlx::postgres::PgConnectOptions::from_str(&db.args[1])
                .unwrap()
                .options([("search_path", schema.as_str())]);
            let pool = sqlx::PgPool::connect_with(options).await.unwrap();
            for sql in statements {
                sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        } else {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("cases.db"));
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            for sql in statements {
                sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
    });
}

fn drop_triggers(dir: &TestDir, db: &Db) {
    if db.args[1].starts_with("postgres") {
        tamper(
            dir,
            db,
            &[
                "DROP TRIGGER audit_log_no_update ON audit_log",
                "DROP TRIGGER audit_log_no_truncate ON audit_log",
            ],
        );
    } else {
        tamper(
            dir,
            db,
            &[
                "DROP TRIGGER audit_log_no_update",
                "DROP TRIGGER audit_log_no_delete",
            ],
        );
    }
}

fn verify(dir: &TestDir, db: &Db, extra: &[&str]) -> util::Output {
    run(dir
        .command()
        .args(["audit", "verify"])
        .args(extra)
        .args(&db.args))
}

fn tampering_is_detected(dir: &TestDir, db: &Db) {
    let queue = dir.write(
        "q.jsonl",
        [
            queue_line("a", None, 1),
            queue_line("b", Some("x.example"), 2),
        ]
        .join("\n"),
    );
    let out = run(dir
        .command()
        .args(["case", "import-queue"])
        .arg(&queue)
        .args(&db.args));
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(dir
        .command()
        .args([
            "case", "decide", "1", "confirm", "--reason", "checked", "--by", "r",
        ])
        .args(&db.args));
    assert_eq!(out.code, 0, "{out:?}");

    let out = verify(dir, db, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows: i64 = out
        .stdout
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(rows >= 5, "{}", out.stdout);

    let head = run(dir.command().args(["audit", "head"]).args(&db.args))
        .stdout
        .trim()
        .to_owned();
    assert!(head.starts_with(&format!("{rows}:")), "{head}");
    let out = verify(dir, db, &["--checkpoint", &head]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = verify(
        dir,
        db,
        &["--checkpoint", &format!("{rows}:{}", "ab".repeat(32))],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("audit row {rows}: checkpoint hash")),
        "{}",
        out.stderr
    );

    drop_triggers(dir, db);
    // An edited decision reason.
    tamper(
        dir,
        db,
        &["UPDATE audit_log SET reason = 'rubber-stamped' WHERE action = 'case.confirm'"],
    );
    let out = verify(dir, db, &["--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("content does not match its hash (edited)"),
        "{}",
        out.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let bad = report["problem"]["seq"].as_i64().unwrap();
    assert!(
        out.stderr.contains(&format!("audit row {bad}:")),
        "{}",
        out.stderr
    );

    // Deleting the tail instead.
    tamper(
        dir,
        db,
        &["UPDATE audit_log SET reason = 'checked' WHERE action = 'case.confirm'"],
    );
    assert_eq!(verify(dir, db, &[]).code, 0);
    tamper(
        dir,
        db,
        &[&format!("DELETE FROM audit_log WHERE seq >= {}", rows - 1)],
    );
    let out = verify(dir, db, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "audit row {}: rows {}..{rows} are missing (truncated",
            rows - 1,
            rows - 1
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn tampering_is_detected_on_sqlite() {
    let dir = TestDir::new();
    let db = Db::sqlite(&dir);
    tampering_is_detected(&dir, &db);
}

#[test]
fn tampering_is_detected_on_postgres() {
    let dir = TestDir::new();
    let db = Db::postgres();
    tampering_is_detected(&dir, &db);
}

#[test]
fn log_prints_entries_as_json_lines() {
    let dir = TestDir::new();
    let db = Db::sqlite(&dir);
    let queue = dir.write("q.jsonl", queue_line("a", None, 1));
    run(dir
        .command()
        .args(["case", "import-queue"])
        .arg(&queue)
        .args(&db.args));
    let out = run(dir
        .command()
        .args(["audit", "log", "--json"])
        .args(&db.args));
    assert_eq!(out.code, 0, "{out:?}");
    let actions: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["case.open", "case.item_add"]);
}
