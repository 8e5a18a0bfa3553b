//! Time, injected: every timestamp the store writes comes from a [`Clock`]
//! given at open, never from a hidden `now()`, so that retention, leases,
//! rate limits and decay can be tested at any instant.
//!
//! Stored times are `i64` microseconds since the Unix epoch, UTC.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to: for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: OffsetDateTime) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    /// Sets the time.
    pub fn set(&self, at: OffsetDateTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A time as stored: microseconds since the Unix epoch. Saturates far outside
/// any real date rather than failing.
pub(crate) fn to_micros(at: OffsetDateTime) -> i64 {
    let micros = at.unix_timestamp_nanos() / 1_000;
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// A stored time back as a date. Stored values always came from
/// [`to_micros`]; one out of range is clamped to the representable range.
pub(crate) fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap_or(if micros < 0 {
        OffsetDateTime::UNIX_EPOCH - Duration::days(365 * 9000)
    } else {
        OffsetDateTime::UNIX_EPOCH + Duration::days(365 * 7000)
    })
}

/// A duration in microseconds, saturating.
pub(crate) fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.whole_microseconds()).unwrap_or(if d.is_negative() {
        i64::MIN
    } else {
        i64::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_750_000_000_123_456_000).unwrap();
        assert_eq!(from_micros(to_micros(at)), at);
        assert_eq!(to_micros(OffsetDateTime::UNIX_EPOCH), 0);
    }
}
