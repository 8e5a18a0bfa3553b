//! The one error type of the match crate. Messages say where: a path, a
//! `file:line: field:` prefix for list files, never the content of an input.

use std::path::{Path, PathBuf};

/// An error from banks, list files, the index or URL lists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A bank file exists but is not valid (bad magic, wrong version,
    /// truncated, checksum mismatch, unreadable settings).
    #[error("{}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A line of a list file (import, URL list, hash list) is malformed.
    /// Displays as `file:line: field: expected X, got Y`.
    #[error("{file}:{line}: {field}: {reason}")]
    Parse {
        /// The file as the user named it (or `-` for stdin).
        file: String,
        /// 1-based line number.
        line: usize,
        /// The field (column) at fault, e.g. `pdq`, `category`, `header`.
        field: String,
        /// What was expected and what was found (never the whole line).
        reason: String,
    },
    /// No bank of that name under the banks directory.
    #[error("no bank named {0:?}")]
    NoSuchBank(String),
    /// A bank of that name already exists.
    #[error("bank {0:?} already exists")]
    BankExists(String),
    /// A bank name that cannot be a directory name.
    #[error(
        "bank name {0:?}: expected 1 to 64 characters of a-z, A-Z, 0-9, '-', '_' or '.', not starting with '.'"
    )]
    BadBankName(String),
    /// A setting out of range, e.g. a threshold above 256.
    #[error("{field}: {reason}")]
    BadSetting {
        /// The setting.
        field: &'static str,
        /// What was expected and what was given.
        reason: String,
    },
    /// No entry with that id (or hash) in the bank.
    #[error("bank {bank:?}: no entry {what}")]
    NoSuchEntry {
        /// The bank.
        bank: String,
        /// The id or hash that was not found.
        what: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn parse(
        file: &str,
        line: usize,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Parse {
            file: file.to_owned(),
            line,
            field: field.into(),
            reason: reason.into(),
        }
    }
}
