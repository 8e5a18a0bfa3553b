//! Crash points for the kill tests (after tantivy's `fail_point!`): when
//! `CHILDSAFE_SCAN_CRASH=name:n` is set, the process aborts (no cleanup, as
//! with kill -9) the n-th time it passes the point `name`. The points sit
//! between the rename steps of the resumability protocol, where a random
//! kill rarely lands. Unset, a point costs one relaxed atomic load.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

/// The environment variable naming the crash point.
pub const CRASH_ENV: &str = "CHILDSAFE_SCAN_CRASH";

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// Aborts the process if `name` is the configured crash point and this is
/// its n-th pass.
pub(crate) fn crash_point(name: &str) {
    let target = TARGET.get_or_init(|| {
        let value = std::env::var(CRASH_ENV).ok()?;
        let (point, n) = value.split_once(':').unwrap_or((&value, "1"));
        Some((point.to_owned(), n.parse().unwrap_or(1)))
    });
    if let Some((point, n)) = target
        && point == name
        && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n
    {
        std::process::abort();
    }
}
