//! Failing closed: a database that does not answer gives
//! `Error::Unavailable` quickly (nothing recorded, the gateway refuses), and
//! every public operation's future is `Send` (the gateway runs them in axum
//! handlers).

use std::{sync::Arc, time::Duration as StdDuration};

use childsafe_store::{Error, ManualClock, Store, StoreOptions};

use crate::common::t0;

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_hang() {
    let options = StoreOptions {
        clock: Arc::new(ManualClock::new(t0())),
        retry_attempts: 3,
        retry_backoff: StdDuration::from_millis(10),
        acquire_timeout: StdDuration::from_millis(500),
        ..StoreOptions::default()
    };
    let started = std::time::Instant::now();
    // Port 1 on loopback: nothing listens there.
    let err = Store::open_with("postgres://postgres@127.0.0.1:1/test", options)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        matches!(err, Error::Unavailable { attempts: 3, .. }),
        "{err}"
    );
    assert!(
        started.elapsed() < StdDuration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        retry_attempts: 2,
        retry_backoff: StdDuration::from_millis(1),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&dir.path().join("x.db").display().to_string(), options)
        .await
        .unwrap();
    store.close().await;
    let err = store
        .record_incident(&crate::fixtures::incident(
            "u1",
            childsafe_core::Category::CsamKnown,
            childsafe_core::Surface::Input,
        ))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn urls_that_name_no_backend_are_refused_without_echoing_secrets() {
    let err = Store::open("mysql://user:hunter2@db/x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"mysql\" url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

fn assert_send<T: Send>(_: &T) {}

/// Compile-time: the futures of the gateway's and the driver's calls are
/// `Send` (a regression here breaks the gateway's build, not just a test).
#[test]
fn public_futures_are_send() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(Store::open(&dir.path().join("x.db").display().to_string()))
        .unwrap();
    let incident = crate::fixtures::incident(
        "u",
        childsafe_core::Category::CsamKnown,
        childsafe_core::Surface::Input,
    );
    assert_send(&Store::open("x"));
    assert_send(&store.record_incident(&incident));
    assert_send(&store.active_actions("t", Some("u")));
    assert_send(&store.verify_admin_token("x"));
    assert_send(&store.rollout_state("r"));
    assert_send(&store.claim_due_report("w", StdDuration::from_secs(1)));
    assert_send(&store.case_detail(childsafe_store::CaseId(1)));
    assert_send(&store.verify_audit(None));
    assert_send(&store.import_queue_entries(&[], "x"));
}
