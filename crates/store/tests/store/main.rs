//! The store's tests: one body per behaviour, each run on SQLite and on
//! PostgreSQL (`both!`). PostgreSQL comes from `CHILDSAFE_TEST_POSTGRES_URL`,
//! which CI sets; without it the PostgreSQL half fails, saying so.

// Test code may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fixtures;

mod audit;
mod cases;
mod evidence;
mod gateway;
mod outbox;
mod resilience;

mod smoke {
    use crate::common::both;

    both!(opens_and_migrates_twice, |db| async move {
        let again = db.reopen().await;
        assert!(again.audit_head().await.unwrap().seq == 0);
        db.store.ping().await.unwrap();
    });
}
