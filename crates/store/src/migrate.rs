//! The schema migrations, embedded in the binary: one folder per backend
//! (`migrations/sqlite`, `migrations/postgres`), the same versions and
//! meanings in both, applied with sqlx's migrator (which records applied
//! versions and their checksums, and takes a lock so that replicas starting
//! together do not race).
//!
//! To add a migration, add `NNNN_name.sql` to BOTH folders and a line to
//! both lists below; a test checks that the lists match the folders.

use std::{borrow::Cow, future::Future, pin::Pin};

use sqlx::{
    SqlSafeStr,
    migrate::{Migration, MigrationType, Migrator},
};

use crate::{db::Pool, error::Result};

/// (version, description, SQL) for SQLite.
pub(crate) const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "gateway_state",
        include_str!("../migrations/sqlite/0002_gateway_state.sql"),
    ),
    (
        3,
        "text_hashes_and_report_findings",
        include_str!("../migrations/sqlite/0003_text_hashes_and_report_findings.sql"),
    ),
];

/// (version, description, SQL) for PostgreSQL.
pub(crate) const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "gateway_state",
        include_str!("../migrations/postgres/0002_gateway_state.sql"),
    ),
    (
        3,
        "text_hashes_and_report_findings",
        include_str!("../migrations/postgres/0003_text_hashes_and_report_findings.sql"),
    ),
];

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Brings the schema up to date. A connection is taken first, so that an
/// unreachable database surfaces as a (retryable) connection error.
///
/// Boxed as a `Send` future: sqlx's `Migrator::run` is generic over
/// `Acquire<'a>`, and left unboxed it makes every caller's future fail the
/// `Send` check (rust-lang/rust#64552).
pub(crate) fn run(pool: &Pool) -> Pin<Box<dyn Future<Output = Result<()>> + Send + '_>> {
    Box::pin(async move {
        match pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                migrator(SQLITE).run_direct(None, &mut *conn, false).await?;
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                migrator(POSTGRES)
                    .run_direct(None, &mut *conn, false)
                    .await?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn embedded_lists_match_the_folders_and_each_other() {
        let listed = |list: &[(i64, &str, &str)]| -> Vec<String> {
            list.iter()
                .map(|(v, d, _)| format!("{v:04}_{d}.sql"))
                .collect()
        };
        assert_eq!(listed(SQLITE), files("sqlite"));
        assert_eq!(listed(POSTGRES), files("postgres"));
        assert_eq!(
            files("sqlite"),
            files("postgres"),
            "both backends need the same migrations"
        );
    }
}
