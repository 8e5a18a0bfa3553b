//! The scanner's one error type. Messages say where (`file: field: expected
//! X, got Y`, or `file:offset: ...`), lowercase, no final period, and never
//! quote content.

use std::{io, path::PathBuf};

/// An error from reading inputs, writing outputs or keeping the run state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A tar shard is malformed or truncated at `offset`.
    #[error("{}:{offset}: {reason}", path.display())]
    Tar {
        /// The shard.
        path: PathBuf,
        /// Byte offset of the bad block.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A Parquet file is malformed or has an unsupported schema.
    #[error("{}: {reason}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// An input argument names nothing, or names something that cannot be scanned.
    #[error("{input}: {reason}")]
    Input {
        /// The argument or list-file line, as given.
        input: String,
        /// What was wrong.
        reason: String,
    },
    /// The state in the output directory belongs to a different command.
    #[error("{}: {reason}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The evidence vault refused an item.
    #[error("evidence vault: {0}")]
    Vault(#[from] childsafe_vault::Error),
    /// Writing a manifest failed.
    #[error("{}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, reason: impl ToString) -> Error {
        Error::Parquet {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
