//! The audit log: any edit of any column of any row, any deletion, any
//! reordering and any truncation is detected and the first bad row named;
//! a fully rewritten chain is detected only against a checkpoint, as
//! documented.

use childsafe_store::{AuditHead, Backend};
use serde_json::json;

use crate::common::{TestDb, both};

/// Writes `n` audit rows with varied fields (some with a reason, some without).
async fn write_rows(db: &TestDb, n: usize, tag: &str) {
    for i in 0..n {
        let reason = (i % 2 == 0).then_some("because");
        db.store
            .audit(
                "tester",
                &format!("test.{tag}"),
                &format!("thing:{i}"),
                reason,
                json!({ "i": i, "tag": tag }),
            )
            .await
            .unwrap();
    }
}

async fn first_problem(db: &TestDb) -> Option<i64> {
    db.store
        .verify_audit(None)
        .await
        .unwrap()
        .problem
        .map(|p| p.seq)
}

/// What a raw SELECT of one column of one row gives, as SQL text to put it back.
async fn column_literal(db: &TestDb, seq: i64, column: &str) -> String {
    let is_int = matches!(column, "at" | "seq");
    if is_int {
        return db
            .scalar(&format!("SELECT {column} FROM audit_log WHERE seq = {seq}"))
            .await
            .to_string();
    }
    let null = db.scalar(&format!("SELECT CAST(CASE WHEN {column} IS NULL THEN 1 ELSE 0 END AS BIGINT) FROM audit_log WHERE seq = {seq}")).await;
    if null == 1 {
        return "NULL".to_owned();
    }
    // Copy through a scratch row of the same table is overkill: read the text.
    let text = db
        .text(&format!("SELECT {column} FROM audit_log WHERE seq = {seq}"))
        .await;
    format!("'{}'", text.replace('\'', "''"))
}

const ROWS: i64 = 6;

both!(editing_any_column_of_any_row_is_detected, |db| async move {
    write_rows(&db, ROWS as usize, "edit").await;
    assert_eq!(first_problem(&db).await, None);
    db.drop_audit_triggers().await;
    for seq in 1..=ROWS {
        for (column, tampered) in [
            ("at", "at + 1"),
            ("actor", "actor || 'x'"),
            ("action", "'case.dismiss'"),
            ("subject", "subject || 'x'"),
            ("reason", "CASE WHEN reason IS NULL THEN 'x' ELSE NULL END"),
            ("detail", "'{\"i\":999}'"),
            ("prev_hash", "'ab' || substr(prev_hash, 3)"),
            ("hash", "'ab' || substr(hash, 3)"),
        ] {
            let original = column_literal(&db, seq, column).await;
            db.exec(&format!(
                "UPDATE audit_log SET {column} = {tampered} WHERE seq = {seq}"
            ))
            .await;
            let report = db.store.verify_audit(None).await.unwrap();
            let problem = report
                .problem
                .unwrap_or_else(|| panic!("edit of {column} in row {seq} went unnoticed"));
            assert_eq!(problem.seq, seq, "{column} of row {seq}: {problem}");
            db.exec(&format!(
                "UPDATE audit_log SET {column} = {original} WHERE seq = {seq}"
            ))
            .await;
            assert_eq!(
                first_problem(&db).await,
                None,
                "restoring {column} of row {seq}"
            );
        }
    }
});

both!(
    deleting_reordering_and_truncating_are_detected,
    |db| async move {
        write_rows(&db, ROWS as usize, "del").await;
        db.drop_audit_triggers().await;
        db.exec("CREATE TABLE scratch AS SELECT * FROM audit_log")
            .await;
        let restore = async |db: &TestDb| {
            db.exec("DELETE FROM audit_log").await;
            db.exec("INSERT INTO audit_log SELECT * FROM scratch").await;
            assert_eq!(first_problem(db).await, None);
        };
        // Deleting any one row.
        for seq in 1..=ROWS {
            db.exec(&format!("DELETE FROM audit_log WHERE seq = {seq}"))
                .await;
            let problem = db.store.verify_audit(None).await.unwrap().problem.unwrap();
            assert_eq!(problem.seq, seq, "{problem}");
            assert!(problem.reason.contains("missing"), "{problem}");
            restore(&db).await;
        }
        // Swapping any two rows (content moves, numbering stays).
        for a in 1..ROWS {
            let b = a + 1;
            db.exec(&format!("UPDATE audit_log SET seq = -1 WHERE seq = {a}"))
                .await;
            db.exec(&format!("UPDATE audit_log SET seq = {a} WHERE seq = {b}"))
                .await;
            db.exec(&format!("UPDATE audit_log SET seq = {b} WHERE seq = -1"))
                .await;
            let problem = db.store.verify_audit(None).await.unwrap().problem.unwrap();
            assert_eq!(problem.seq, a, "{problem}");
            restore(&db).await;
        }
        // Cutting rows off the end: the head row remembers.
        for keep in 0..ROWS {
            db.exec(&format!("DELETE FROM audit_log WHERE seq > {keep}"))
                .await;
            let problem = db.store.verify_audit(None).await.unwrap().problem.unwrap();
            assert_eq!(problem.seq, keep + 1, "{problem}");
            assert!(problem.reason.contains("truncated"), "{problem}");
            restore(&db).await;
        }
        // A row appended behind the store's back (the head is not updated).
        db.exec(
        "INSERT INTO audit_log (seq, at, actor, action, subject, reason, detail, prev_hash, hash)
         SELECT seq + 100, at, actor, action, subject, reason, detail, prev_hash, hash FROM audit_log WHERE seq = 1",
    )
    .await;
        assert!(first_problem(&db).await.is_some());
    }
);

both!(the_log_refuses_edits_through_sql, |db| async move {
    write_rows(&db, 2, "trig").await;
    for sql in [
        "UPDATE audit_log SET actor = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
    ] {
        let err = db.try_exec(sql).await.unwrap_err();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
});

/// Copies one database's whole audit log (rows and head) over another's: an
/// attacker substituting a self-consistent history.
async fn substitute_log(from: &TestDb, to: &TestDb) {
    let rows = from.audit_rows().await;
    to.drop_audit_triggers().await;
    to.exec("DELETE FROM audit_log").await;
    for row in rows {
        to.exec(&row).await;
    }
    let head = from.store.audit_head().await.unwrap();
    to.exec(&format!(
        "UPDATE audit_head SET seq = {}, hash = '{}' WHERE id = 1",
        head.seq, head.hash
    ))
    .await;
}

both!(
    a_rewritten_history_is_caught_by_a_checkpoint,
    |db| async move {
        write_rows(&db, 4, "real").await;
        let checkpoint: AuditHead = db
            .store
            .audit_head()
            .await
            .unwrap()
            .to_string()
            .parse()
            .unwrap();
        assert!(
            db.store
                .verify_audit(Some(&checkpoint))
                .await
                .unwrap()
                .is_intact()
        );

        // A forger builds a different, internally consistent history elsewhere.
        let forged = match db.backend {
            Backend::Sqlite => crate::common::sqlite().await,
            Backend::Postgres => crate::common::postgres().await,
        };
        write_rows(&forged, 5, "forged").await;
        substitute_log(&forged, &db).await;
        forged.cleanup().await;

        // Without a checkpoint the forgery is consistent: the documented limit.
        assert!(db.store.verify_audit(None).await.unwrap().is_intact());
        // With the recorded checkpoint it is caught at the checkpoint's row.
        let problem = db
            .store
            .verify_audit(Some(&checkpoint))
            .await
            .unwrap()
            .problem
            .unwrap();
        assert_eq!(problem.seq, checkpoint.seq);
        assert!(problem.reason.contains("rewritten"), "{problem}");
        // A checkpoint past the end of the log is a problem too.
        let beyond = AuditHead {
            seq: 99,
            hash: checkpoint.hash.clone(),
        };
        assert!(
            db.store
                .verify_audit(Some(&beyond))
                .await
                .unwrap()
                .problem
                .is_some()
        );
    }
);

both!(concurrent_appends_keep_one_chain, |db| async move {
    let replica = db.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            replica.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .audit(
                    "worker",
                    "test.concurrent",
                    &format!("n:{i}"),
                    None,
                    json!({}),
                )
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=16).collect::<Vec<i64>>());
    let report = db.store.verify_audit(None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    assert_eq!(report.rows, 16);
    replica.close().await;
});
