//! Errors of the engine crate: invalid engine configuration, and what the
//! text crate reports while loading lexicons, term lists and classifiers.

/// An error from building an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine config file is invalid (TOML syntax, unknown keys, bad values).
    #[error("{file}: {reason}")]
    Config {
        /// The config file as named by the caller.
        file: String,
        /// What is wrong, with the key.
        reason: String,
    },
    /// A file named by the config could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The path as written in the config.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// A lexicon, term list or classifier failed to load.
    #[error(transparent)]
    Text(#[from] childsafe_text::Error),
}
