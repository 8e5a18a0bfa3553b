//! No log line, error message or `Debug` output of the store carries vault
//! content or users' free text (DESIGN invariant 1), on either backend. Its
//! own test binary, so that the process-wide log capture sees every event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    str::FromStr,
    sync::{Arc, Mutex},
};

use childsafe_core::Category;
use childsafe_store::{AccessPurpose, NewUserReport, Store, StoreOptions};
use childsafe_vault::{Keyring, MasterKey, Vault};
use time::Duration;

const MARKER: &str = "CHILDSAFE-STORE-TEST-MARKER-51c9";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn exercise(store: &Store, messages: &mut Vec<String>) {
    let vault = Vault::in_memory(Keyring::new(MasterKey::generate().unwrap()));
    let content = MARKER.repeat(4);
    let item = store
        .preserve_evidence(&vault, content.as_bytes(), "gateway", "test")
        .await
        .unwrap();
    let opened = store
        .open_evidence(&vault, item.id, "reviewer", AccessPurpose::View, "review")
        .await
        .unwrap();
    messages.push(format!("{opened:?} {item:?}"));
    store.verify_evidence(&vault, item.id, "ops").await.unwrap();
    let report = NewUserReport {
        reporter: "r1".to_owned(),
        tenant: Some("acme".to_owned()),
        response_id: None,
        reason: Category::CsamSolicitation,
        categories: vec![Category::CsamSolicitation],
        findings: Vec::new(),
        comment: Some(format!("they wrote {MARKER}")),
        comment_sha256: None,
        subject_end_user: Some("u1".to_owned()),
        vault_item: Some(item.id),
        content_hashes: None,
        generated: false,
    };
    messages.push(format!("{report:?}"));
    let recorded = store
        .submit_user_report(&report, Some((1, Duration::hours(1))))
        .await
        .unwrap();
    messages.push(format!("{recorded:?}"));
    let err = store
        .submit_user_report(&report, Some((1, Duration::hours(1))))
        .await
        .unwrap_err();
    messages.push(format!("{err} {err:?}"));
    let appeal = store
        .file_appeal("acme", "u1", None, Some(MARKER))
        .await
        .unwrap();
    messages.push(format!("{appeal:?}"));
    // A damaged vault item: the error names it, never shows it.
    let other = Vault::in_memory(Keyring::new(MasterKey::generate().unwrap()));
    let err = store
        .open_evidence(&other, item.id, "reviewer", AccessPurpose::View, "review")
        .await
        .unwrap_err();
    messages.push(format!("{err} {err:?}"));
    let detail = store.case_detail(recorded.case_id.unwrap()).await.unwrap();
    messages.push(format!("{detail:?}"));
    let _ = serde_json::to_string(&detail.items).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_errors_and_debug_output_never_carry_content() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .init();

    let mut messages = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("db.sqlite").display().to_string())
        .await
        .unwrap();
    exercise(&sqlite, &mut messages).await;

    let url = std::env::var("CHILDSAFE_TEST_POSTGRES_URL")
        .expect("CHILDSAFE_TEST_POSTGRES_URL is not set: the store's tests need PostgreSQL too (CI sets it)");
    let schema = format!("t_leaks_{}", std::process::id());
    let options = StoreOptions {
        postgres_schema: Some(schema.clone()),
        ..StoreOptions::default()
    };
    let postgres = Store::open_with(&url, options).await.unwrap();
    exercise(&postgres, &mut messages).await;
    postgres.close().await;
    let admin =
        sqlx::PgPool::connect_with(sqlx::postgres::PgConnectOptions::from_str(&url).unwrap())
            .await
            .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await
    .unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("vault item stored"),
        "the capture saw nothing"
    );
    assert!(!logs.contains(MARKER), "a log line carries content");
    for message in messages {
        assert!(!message.contains(MARKER), "{message}");
    }
}
