//! Failpoints for crash tests (STYLE.md, "Crash tests with failpoints").
//!
//! `CHILDSAFE_FAILPOINT=NAME` makes the process abort the first time the
//! outbox driver passes the point `NAME`; `NAME:N` on the N-th time. The
//! points are `<call>.before` (intent recorded, call not made),
//! `<call>.after` (the server answered, nothing recorded yet) and
//! `<call>.recorded` (the answer committed), for `submit`, `upload`,
//! `fileinfo`, `finish` and `retract`. `abort()` runs no destructors and
//! flushes nothing, like a kill. Without the variable, [`hit`] does nothing.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

/// The environment variable naming the failpoint.
pub const FAILPOINT_ENV: &str = "CHILDSAFE_FAILPOINT";

struct Armed {
    name: String,
    nth: u64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var(FAILPOINT_ENV).ok()?;
            let (name, nth) = match value.split_once(':') {
                Some((name, nth)) => (name, nth.parse().ok()?),
                None => (value.as_str(), 1),
            };
            Some(Armed {
                name: name.to_owned(),
                nth,
            })
        })
        .as_ref()
}

/// Passes the point `name`: aborts the process if it is the armed failpoint
/// and this is the armed pass.
pub fn hit(name: &str) {
    let Some(armed) = armed() else { return };
    if armed.name != name {
        return;
    }
    static COUNTS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    let mut counts = COUNTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let count = counts.entry(name.to_owned()).or_insert(0);
    *count += 1;
    if *count == armed.nth {
        tracing::error!(failpoint = name, pass = *count, "failpoint: aborting");
        std::process::abort();
    }
}
