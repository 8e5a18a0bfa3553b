//! The one place that talks to a database driver: a pool, a transaction and
//! a row over either SQLite or PostgreSQL, with one small set of argument
//! types, so that every query in this crate is written once.
//!
//! Queries use `$1, $2, ...` placeholders, which both SQLite (as numbered
//! parameters) and PostgreSQL understand. Times are `i64` microseconds since
//! the Unix epoch (UTC), booleans are `bool`, JSON is text: the same values on
//! both backends, so that hashes over stored rows (the audit chain) agree.
//! Where the dialects differ (locking, DDL), the caller picks the text with
//! [`Tx::backend`].

use sqlx::{
    Connection, PgPool, Row as _, SqlitePool, Transaction,
    postgres::{PgRow, Postgres},
    sqlite::{Sqlite, SqliteRow},
};

use crate::error::{Error, Result};

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the default; one machine).
    Sqlite,
    /// PostgreSQL (several gateway replicas sharing state).
    Postgres,
}

impl Backend {
    /// "sqlite" or "postgres".
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A query argument. Deliberately few types: everything the store keeps maps
/// onto these on both backends.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    I64(Option<i64>),
    Text(Option<String>),
    Bool(bool),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::I64(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::I64(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}

/// Builds a `Vec<Arg>` from values that convert into [`Arg`].
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::db::Arg::from($value)),*]
    };
}
pub(crate) use args;

/// Binds arguments to a query of either backend (the body is the same text
/// for both; the compiler instantiates it per database).
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::I64(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
            };
        }
        query
    }};
}

/// A connection pool over either backend.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which
    /// takes the write lock up front: a deferred transaction that reads and
    /// then writes can fail with SQLITE_BUSY when another writer got there
    /// first, and cannot be retried from inside.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Starts a read-only snapshot, so that a read of several tables sees
    /// one state (deferred on SQLite, so readers never wait for the write
    /// lock; repeatable read on PostgreSQL).
    pub(crate) async fn begin_read(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// Checks that the database answers.
    pub(crate) async fn ping(&self) -> Result<()> {
        match self {
            Pool::Sqlite(pool) => pool.acquire().await?.ping().await?,
            Pool::Postgres(pool) => pool.acquire().await?.ping().await?,
        }
        Ok(())
    }
}

/// A transaction over either backend. Dropped without [`Tx::commit`], it
/// rolls back.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement; returns the number of rows affected.
    pub(crate) async fn execute(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<u64> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Tx::Postgres(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<Vec<Row>> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_all!(sqlx::query(sql), args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Tx::Postgres(tx) => bind_all!(sqlx::query(sql), args)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<Option<Row>> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
            Tx::Postgres(tx) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
        })
    }

    pub(crate) async fn fetch_one(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<Row> {
        self.fetch_optional(sql, args).await?.ok_or(Error::Db {
            source: sqlx::Error::RowNotFound,
        })
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A result row of either backend, read by column name.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

macro_rules! get {
    ($row:expr, $col:expr, $ty:ty) => {
        match $row {
            Row::Sqlite(row) => row.try_get::<$ty, _>($col),
            Row::Postgres(row) => row.try_get::<$ty, _>($col),
        }
        .map_err(Error::from)
    };
}

impl Row {
    pub(crate) fn i64(&self, col: &str) -> Result<i64> {
        get!(self, col, i64)
    }

    pub(crate) fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        get!(self, col, Option<i64>)
    }

    pub(crate) fn text(&self, col: &str) -> Result<String> {
        get!(self, col, String)
    }

    pub(crate) fn opt_text(&self, col: &str) -> Result<Option<String>> {
        get!(self, col, Option<String>)
    }

    pub(crate) fn bool(&self, col: &str) -> Result<bool> {
        get!(self, col, bool)
    }

    /// A text column parsed with `FromStr`; a stored value that no longer
    /// parses is corruption, reported with the column.
    pub(crate) fn parse<T>(&self, col: &str) -> Result<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.text(col)?;
        text.parse::<T>().map_err(|e| Error::Corrupt {
            what: format!("column {col}"),
            reason: e.to_string(),
        })
    }

    pub(crate) fn opt_parse<T>(&self, col: &str) -> Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.opt_text(col)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|e: T::Err| Error::Corrupt {
                what: format!("column {col}"),
                reason: e.to_string(),
            }),
        }
    }

    /// A JSON text column.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T> {
        let text = self.text(col)?;
        serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            what: format!("column {col}"),
            reason: e.to_string(),
        })
    }

    pub(crate) fn opt_json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<Option<T>> {
        match self.opt_text(col)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    what: format!("column {col}"),
                    reason: e.to_string(),
                }),
        }
    }
}
