//! The database of childsafe: incidents, cases, enforcement, user reports,
//! rollout state, admin tokens, the report outbox, evidence metadata and the
//! append-only, hash-chained audit log, on SQLite (a file, the default) or
//! PostgreSQL (several gateway replicas sharing state), behind one async API.
//!
//! Only this crate knows SQL (STYLE.md, "Only the edge crates know wire
//! formats"). Every query is written once and runs on both backends
//! ([`db`](crate) module); migrations live in `migrations/sqlite` and
//! `migrations/postgres` and are embedded in the binary.
//!
//! Three promises hold throughout:
//! - **Every change is audited in the same transaction.** A state change
//!   that matters (a case opened, assigned, decided; a report step; evidence
//!   preserved, viewed, held or destroyed; an enforcement action; a rollout
//!   transition; a token issued) appends to the audit log inside the
//!   transaction that makes it, so there is never a change without its entry
//!   or an entry without its change.
//! - **No hidden clock.** Every timestamp comes from the [`Clock`] in
//!   [`StoreOptions`], so tests can stand at any instant.
//! - **No content.** The store keeps hashes, ids, categories and findings;
//!   content lives only in the [`childsafe_vault::Vault`], and every access
//!   to it goes through [`Store::open_evidence`], which records who, why and
//!   for what purpose before the bytes are read.
//!
//! When the database is briefly unavailable, operations are retried a few
//! times with backoff; after that they fail with [`Error::Unavailable`], which
//! the gateway treats as "not recorded" and fails closed on.
//!
//! ```no_run
//! # async fn demo() -> childsafe_store::Result<()> {
//! use childsafe_store::{CaseFilter, Store};
//!
//! let store = Store::open("childsafe.db").await?;   // or postgres://...
//! for case in store.list_cases(&CaseFilter::default()).await? {
//!     println!("{} {} {}", case.id, case.status, case.subject);
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

/// Runs one operation (an expression giving a future: usually an `async`
/// block holding a whole transaction) and reruns it while the database is
/// unreachable or busy, up to `retry_attempts` times with doubling backoff.
/// Each run starts a fresh transaction, so a retried operation is never
/// half-applied. Evaluates to the operation's `Result`; after the last
/// attempt a transient error becomes [`Error::Unavailable`].
///
/// A macro rather than a generic function taking a closure: a closure that
/// returns a future borrowing the store makes the caller's future fail the
/// `Send` check (rust-lang/rust#64552), and the gateway's handlers must be
/// `Send`.
macro_rules! retry {
    ($store:expr, $what:expr, $op:expr) => {{
        let store: &$crate::Store = $store;
        let attempts = store.options().retry_attempts.max(1);
        let mut backoff = store.options().retry_backoff;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match $crate::typed($op).await {
                Err(err) if err.is_transient() => {
                    if attempt >= attempts {
                        ::tracing::error!(op = $what, attempts, error = %err, "store unavailable");
                        break Err(err.into_unavailable(attempts));
                    }
                    ::tracing::warn!(op = $what, attempt, error = %err, "store busy or unreachable; retrying");
                    ::tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                other => break other,
            }
        }
    }};
}

/// Pins down the output type of an operation's future for inference (an
/// `async` block using `?` needs to know its error type).
pub(crate) fn typed<T, F: Future<Output = Result<T>>>(op: F) -> F {
    op
}

mod accounts;
mod audit;
mod cases;
mod clock;
mod db;
mod enforcement;
mod error;
mod evidence;
mod incidents;
mod migrate;
mod outbox;
mod reports;
mod rollout;
mod tokens;

use std::{future::Future, str::FromStr, sync::Arc, time::Duration as StdDuration};

use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use time::{Duration, OffsetDateTime};

pub use crate::{
    audit::{AuditEntry, AuditHead, AuditProblem, AuditReport},
    cases::{
        Case, CaseDecision, CaseDetail, CaseEvent, CaseFilter, CaseId, CaseItem, CaseItemKind,
        CaseStatus, FileOrigin, ImportSummary, ItemLocation, Verdict,
    },
    clock::{Clock, ManualClock, SystemClock},
    db::Backend,
    enforcement::{
        ActionKind, Appeal, AppealStatus, EnforcementAction, NewEnforcementAction, NewStrike,
        StrikeRecord,
    },
    error::{Error, Result},
    evidence::{AccessPurpose, EvidenceAccess, EvidenceItem, PurgeReport},
    incidents::{Incident, IncidentFile, IncidentId, NewIncident, SEVERE_CATEGORIES},
    outbox::{Lease, OutboxReport, Receipt, ReportStatus, StoredReceipt},
    reports::{NewUserReport, UserReport},
    rollout::{RolloutState, RolloutStatus, RolloutTransition, StageCounts},
    tokens::{AdminToken, IssuedToken},
};

/// How a store behaves. [`StoreOptions::default`] is what production uses.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Where "now" comes from. Default: the system clock.
    pub clock: Arc<dyn Clock>,
    /// How long evidence is kept after the report that includes it is
    /// finished. Default: 365 days (18 U.S.C. 2258A(h)(1)); operators may
    /// keep it longer ((h)(5)), never shorter.
    pub retention: Duration,
    /// How long evidence of a dismissed case is kept after the dismissal, so
    /// that a mistaken dismissal can be reopened. Default: 30 days.
    pub dismissed_retention: Duration,
    /// Tries per operation when the database is unreachable or busy.
    /// Default: 5 (with backoff 50, 100, 200, 400 ms: under a second in all).
    pub retry_attempts: u32,
    /// The first backoff; it doubles on each retry. Default: 50 ms.
    pub retry_backoff: StdDuration,
    /// Connections in the pool. Default: 8 (PostgreSQL), 4 (SQLite).
    pub max_connections: Option<u32>,
    /// How long to wait for a free connection. Default: 2 s, so that the
    /// gateway fails closed quickly rather than queueing requests.
    pub acquire_timeout: StdDuration,
    /// PostgreSQL only: the schema to use (created if missing, and set as the
    /// search path). Default: the server's default (`public`). Lets several
    /// deployments, or tests, share one database.
    pub postgres_schema: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            clock: Arc::new(SystemClock),
            retention: Duration::days(365),
            dismissed_retention: Duration::days(30),
            retry_attempts: 5,
            retry_backoff: StdDuration::from_millis(50),
            max_connections: None,
            acquire_timeout: StdDuration::from_secs(2),
            postgres_schema: None,
        }
    }
}

/// The store: a connection pool plus options. Cheap to clone (an `Arc`);
/// `Send + Sync`, one per process.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: db::Pool,
    options: StoreOptions,
}

impl Store {
    /// Opens (and migrates) the database at `url` with default options.
    /// See [`Store::open_with`] for the accepted URLs.
    ///
    /// # Errors
    /// [`Error::Url`], [`Error::Unavailable`] if it cannot connect,
    /// [`Error::Migrate`].
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, StoreOptions::default()).await
    }

    /// Opens (and migrates) the database at `url`:
    /// - `postgres://...` or `postgresql://...`: PostgreSQL;
    /// - `sqlite:PATH`, `sqlite://PATH` or a plain path: an SQLite file,
    ///   created if missing (WAL journal, full fsync on commit).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Store> {
        let pool = connect(url, &options).await?;
        let store = Store {
            inner: Arc::new(Inner { pool, options }),
        };
        retry!(&store, "migrate", migrate::run(&store.inner.pool))?;
        Ok(store)
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.pool.backend()
    }

    /// The current time by the store's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.options.clock.now()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Checks that the database answers (for `/readyz`).
    ///
    /// # Errors
    /// [`Error::Unavailable`].
    pub async fn ping(&self) -> Result<()> {
        retry!(self, "ping", self.inner.pool.ping())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &db::Pool {
        &self.inner.pool
    }

    pub(crate) fn now_micros(&self) -> i64 {
        clock::to_micros(self.now())
    }
}

async fn connect(url: &str, options: &StoreOptions) -> Result<db::Pool> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The URL may hold a password: errors name the scheme, never the URL.
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| Error::Url(format!("postgres url: {}", redact(&e.to_string(), url))))?;
        if let Some(schema) = &options.postgres_schema {
            if !is_identifier(schema) {
                return Err(Error::invalid(
                    "postgres schema",
                    format!("expected letters, digits and underscores, got {schema:?}"),
                ));
            }
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool_options = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(8))
            .acquire_timeout(options.acquire_timeout);
        let pool = pool_options.connect_lazy_with(connect);
        if let Some(schema) = &options.postgres_schema {
            // `search_path` names a schema that may not exist yet.
            let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            let create = || async {
                let mut conn = pool.acquire().await?;
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut *conn)
                    .await?;
                Ok::<_, Error>(())
            };
            retry_plain(options, create).await?;
        }
        return Ok(db::Pool::Postgres(pool));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || url.contains("://") && !url.starts_with("sqlite://") {
        let scheme = url.split("://").next().unwrap_or("");
        return Err(Error::Url(format!(
            "expected postgres://..., sqlite:PATH or a file path, got a {scheme:?} url"
        )));
    }
    let memory = path == ":memory:";
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .in_memory(memory)
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(if memory {
            SqliteJournalMode::Memory
        } else {
            SqliteJournalMode::Wal
        })
        // FULL: a committed incident, decision or report step survives power loss.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(StdDuration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        // An in-memory database exists per connection: share one.
        .max_connections(if memory {
            1
        } else {
            options.max_connections.unwrap_or(4)
        })
        .acquire_timeout(options.acquire_timeout)
        .connect_lazy_with(connect);
    Ok(db::Pool::Sqlite(pool))
}

async fn retry_plain<F, Fut>(options: &StoreOptions, mut op: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut backoff = options.retry_backoff;
    let attempts = options.retry_attempts.max(1);
    for attempt in 1..=attempts {
        match op().await {
            Err(err) if err.is_transient() && attempt < attempts => {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            Err(err) if err.is_transient() => {
                let Error::Db { source } = err else {
                    return Err(err);
                };
                return Err(Error::Unavailable { attempts, source });
            }
            other => return other,
        }
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// Removes a URL (which may carry a password) from a driver message.
fn redact(message: &str, url: &str) -> String {
    message.replace(url, "<url>")
}

/// Normalises a free-text field that must be present: trimmed, not empty.
pub(crate) fn required(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(value.to_owned())
}

/// A random token of `bytes` random bytes, in hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::invalid("random", e.to_string()))?;
    Ok(hex::encode(buf))
}
