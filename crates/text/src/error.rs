//! Errors of the text crate: bad lexicon or term-list files, remote
//! classifier failures. Messages carry file names, line numbers, list names,
//! HTTP statuses and classifier names, never the text being judged.

/// An error from loading detector data or from a remote classifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A lexicon file that does not parse or has a bad entry.
    #[error("{file}: {reason}")]
    Lexicon {
        /// The file name as given.
        file: String,
        /// What was wrong, with the TOML location or list name.
        reason: String,
    },
    /// A term list file with a bad line.
    #[error("{file}:{line}: {reason}")]
    TermList {
        /// The list's file name as given.
        file: String,
        /// 1-based line number (0 for the whole file).
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A remote classifier could not answer: connection, timeout, HTTP
    /// status or a response that does not parse.
    #[error("classifier {classifier}: {reason}")]
    Classifier {
        /// The classifier's configured name.
        classifier: String,
        /// What went wrong (status code, timeout, parse error position).
        reason: String,
    },
    /// Invalid classifier configuration (a URL that does not parse).
    #[error("classifier {classifier}: config: {reason}")]
    Config {
        /// The classifier's configured name.
        classifier: String,
        /// What was wrong.
        reason: String,
    },
}
