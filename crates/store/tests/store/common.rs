//! The test harness: every test body runs against both backends, SQLite in a
//! temporary file and PostgreSQL in a schema of its own (so tests run in
//! parallel and leave nothing behind), with a manual clock and raw SQL access
//! for the tests that play the attacker.

use std::{future::Future, str::FromStr, sync::Arc};

use childsafe_store::{Backend, ManualClock, Store, StoreOptions};
use sqlx::{
    AssertSqlSafe, PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::SqliteConnectOptions,
};
use time::OffsetDateTime;

pub(crate) const PG_ENV: &str = "CHILDSAFE_TEST_POSTGRES_URL";

/// A store under test, with what a test needs to poke at it.
pub(crate) struct TestDb {
    pub(crate) store: Store,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) backend: Backend,
    raw: Raw,
    url: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The instant every test starts at.
pub(crate) fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap() // 2026-01-01
}

impl TestDb {
    /// Runs a statement directly, bypassing the store (and its rules).
    pub(crate) async fn exec(&self, sql: &str) {
        let text = AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query(text).execute(pool).await.map(|_| ()),
            Raw::Postgres(pool) => sqlx::query(text).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql:?}: {e}"));
    }

    /// Runs a statement directly and returns the database's error text.
    pub(crate) async fn try_exec(&self, sql: &str) -> Result<(), String> {
        let text = AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query(text).execute(pool).await.map(|_| ()),
            Raw::Postgres(pool) => sqlx::query(text).execute(pool).await.map(|_| ()),
        }
        .map_err(|e| e.to_string())
    }

    /// Runs a query that returns one text value.
    pub(crate) async fn text(&self, sql: &str) -> String {
        let text = AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query_scalar::<_, String>(text).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar::<_, String>(text).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql:?}: {e}"))
    }

    /// Every audit row as an INSERT statement (for copying a log elsewhere).
    pub(crate) async fn audit_rows(&self) -> Vec<String> {
        let entries = self.store.audit_entries(0, 10_000).await.unwrap();
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut rows = Vec::new();
        for e in &entries {
            let at = self
                .scalar(&format!("SELECT at FROM audit_log WHERE seq = {}", e.seq))
                .await;
            let detail = self
                .text(&format!(
                    "SELECT detail FROM audit_log WHERE seq = {}",
                    e.seq
                ))
                .await;
            rows.push(format!(
                "INSERT INTO audit_log (seq, at, actor, action, subject, reason, detail, prev_hash, hash) \
                 VALUES ({}, {at}, {}, {}, {}, {}, {}, {}, {})",
                e.seq,
                quote(&e.actor),
                quote(&e.action),
                quote(&e.subject),
                e.reason.as_deref().map_or("NULL".to_owned(), quote),
                quote(&detail),
                quote(&e.prev_hash),
                quote(&e.hash),
            ));
        }
        rows
    }

    /// Runs a query that returns one i64.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        let sql = AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
        }
        .unwrap()
    }

    /// Drops the audit log's append-only triggers, as an attacker with
    /// database access would before editing rows.
    pub(crate) async fn drop_audit_triggers(&self) {
        match self.backend {
            Backend::Sqlite => {
                self.exec("DROP TRIGGER audit_log_no_update").await;
                self.exec("DROP TRIGGER audit_log_no_delete").await;
            }
            Backend::Postgres => {
                self.exec("DROP TRIGGER audit_log_no_update ON audit_log")
                    .await;
                self.exec("DROP TRIGGER audit_log_no_truncate ON audit_log")
                    .await;
            }
        }
    }

    /// A second store over the same database (another process or replica).
    pub(crate) async fn reopen(&self) -> Store {
        Store::open_with(&self.url, self.options()).await.unwrap()
    }

    pub(crate) fn options(&self) -> StoreOptions {
        StoreOptions {
            clock: self.clock.clone(),
            postgres_schema: self.schema.clone(),
            ..StoreOptions::default()
        }
    }

    pub(crate) async fn cleanup(&self) {
        self.store.close().await;
        if let (Raw::Postgres(pool), Some(schema)) = (&self.raw, &self.schema) {
            let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::query(AssertSqlSafe(drop))
                .execute(pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

pub(crate) async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("childsafe.db");
    let url = format!("sqlite:{}", path.display());
    let clock = Arc::new(ManualClock::new(t0()));
    let options = StoreOptions {
        clock: clock.clone(),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&url, options).await.unwrap();
    let raw = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    TestDb {
        store,
        clock,
        backend: Backend::Sqlite,
        raw: Raw::Sqlite(raw),
        url,
        schema: None,
        _dir: Some(dir),
    }
}

pub(crate) async fn postgres() -> TestDb {
    let url = std::env::var(PG_ENV).unwrap_or_else(|_| {
        panic!(
            "{PG_ENV} is not set: the store's tests run against PostgreSQL as well as SQLite. \
             CI sets it (.ci/run); locally: export {PG_ENV}=postgres://postgres@127.0.0.1:5432/test"
        )
    });
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).unwrap();
    let schema = format!("t_{}", hex::encode(suffix));
    let clock = Arc::new(ManualClock::new(t0()));
    let options = StoreOptions {
        clock: clock.clone(),
        postgres_schema: Some(schema.clone()),
        max_connections: Some(4),
        ..StoreOptions::default()
    };
    let store = Store::open_with(&url, options)
        .await
        .unwrap_or_else(|e| panic!("{PG_ENV}: cannot open the test database: {e}"));
    let connect = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let raw = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(connect)
        .await
        .unwrap();
    TestDb {
        store,
        clock,
        backend: Backend::Postgres,
        raw: Raw::Postgres(raw),
        url,
        schema: Some(schema),
        _dir: None,
    }
}

/// Runs `body` against a fresh database of `backend`, and cleans up even
/// when the body panics (the panic is then re-raised).
pub(crate) async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<TestDb>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(match backend {
        Backend::Sqlite => sqlite().await,
        Backend::Postgres => postgres().await,
    });
    let outcome = tokio::spawn(body(db.clone())).await;
    db.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Instantiates one test body for each backend:
/// `both!(name, |db| async move { ... })` makes `name::sqlite` and `name::postgres`.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run(childsafe_store::Backend::Sqlite, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run(childsafe_store::Backend::Postgres, $body).await;
            }
        }
    };
}
pub(crate) use both;
