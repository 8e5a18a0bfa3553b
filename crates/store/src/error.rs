//! Errors of the store. [`Error::Unavailable`] is the one a caller on the
//! safety path must treat as "could not record": the gateway fails closed on
//! it (issue 5 §11) rather than serving a request whose incident is lost.
//!
//! Messages carry ids, states and database error text, never content: the
//! store never holds content outside the vault, and vault errors carry none.

/// An error from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database did not answer (connection refused or lost, pool
    /// exhausted, locked) even after the brief retries. Nothing was written.
    #[error("store unavailable after {attempts} attempts: {source}")]
    Unavailable {
        /// How many times the operation was tried.
        attempts: u32,
        /// The last error.
        source: sqlx::Error,
    },
    /// Any other database error (a constraint, a type mismatch, a bug).
    #[error("database: {source}")]
    Db {
        /// The driver's error.
        #[from]
        source: sqlx::Error,
    },
    /// Migrating the schema failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A database URL that names no supported backend.
    #[error("database url: {0}")]
    Url(String),
    /// Something looked up by id does not exist.
    #[error("{what} {id}: not found")]
    NotFound {
        /// What kind of thing, e.g. "case".
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A state change that the lifecycle does not allow, e.g. deciding a
    /// closed case.
    #[error("{what} {id}: cannot {action} when {state}")]
    InvalidTransition {
        /// What kind of thing, e.g. "case".
        what: &'static str,
        /// Its id.
        id: String,
        /// What was attempted, e.g. "confirm".
        action: String,
        /// Its current state.
        state: String,
    },
    /// A report outbox lease that expired or was taken over: another worker
    /// may be driving the report; stop and claim again.
    #[error("report {report}: lease lost (expired or taken over)")]
    LeaseLost {
        /// The outbox report id.
        report: i64,
    },
    /// A request refused by a rate limit.
    #[error("rate limited: {what}: {count} in the window, limit {limit}")]
    RateLimited {
        /// What is limited, e.g. "user reports from reporter".
        what: &'static str,
        /// How many were counted in the window.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// A concurrent update won (optimistic concurrency, e.g. rollout state).
    #[error("{what}: changed concurrently (expected version {expected}, found {found})")]
    Conflict {
        /// What was updated.
        what: String,
        /// The version the caller read.
        expected: i64,
        /// The version in the database.
        found: i64,
    },
    /// Bad input from the caller, naming the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field or argument.
        field: String,
        /// What was expected and what was given.
        reason: String,
    },
    /// A stored value that does not parse: the database was edited by hand
    /// or by a newer version.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Where, e.g. "column status".
        what: String,
        /// Why it does not parse.
        reason: String,
    },
    /// An evidence vault error.
    #[error(transparent)]
    Vault(#[from] childsafe_vault::Error),
}

impl Error {
    /// True when the database could not be reached or was too busy: the
    /// write did not happen and the caller must not assume it did.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Error {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A transient error after the last attempt: [`Error::Unavailable`].
    pub(crate) fn into_unavailable(self, attempts: u32) -> Error {
        match self {
            Error::Db { source } => Error::Unavailable { attempts, source },
            other => other,
        }
    }

    /// Whether retrying the whole operation may succeed: the database was
    /// unreachable, busy, or aborted the transaction for concurrency.
    pub(crate) fn is_transient(&self) -> bool {
        let Error::Db { source } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => true,
            sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => {
                let code = db.code();
                let code = code.as_deref().unwrap_or("");
                matches!(
                    code,
                    // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
                    "5" | "6" | "261" | "517" | "262" |
                    // PostgreSQL: serialization failure, deadlock, shutdown,
                    // cannot connect now, too many connections.
                    "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
                ) || code.starts_with("08")
            }
            _ => false,
        }
    }
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
