//! Errors of the core crate: unknown names, malformed signals, invalid policy.

use crate::signal::SignalKind;

/// An error from parsing a name, a signal or a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stable name (category, signal type, surface, action) that is not known.
    #[error("unknown {kind}: {name:?}")]
    UnknownName {
        /// What kind of name was expected, e.g. "category".
        kind: &'static str,
        /// The name as given.
        name: String,
    },
    /// A signal value that does not parse, e.g. a PDQ hash of the wrong length.
    #[error("{kind}: {reason}")]
    BadSignal {
        /// The signal kind being parsed.
        kind: SignalKind,
        /// What was expected and what was found.
        reason: String,
    },
    /// A policy file that is not valid TOML or not a valid policy.
    #[error("policy: {0}")]
    Policy(String),
}
