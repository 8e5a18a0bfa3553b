//! The one error type of this crate. Messages say what was wrong and never
//! carry image content (DESIGN invariant 1): sizes, formats and reasons only.

use std::{io, path::PathBuf};

/// Why an image could not be hashed, or a file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file has no bytes at all.
    #[error("empty file")]
    Empty,
    /// The file is larger than [`DecodeLimits::max_bytes`](crate::DecodeLimits::max_bytes).
    #[error("file too large: {size} bytes, limit {limit}")]
    TooManyBytes {
        /// Size of the file in bytes.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The bytes are not one of the supported image formats.
    #[error("not a supported image: expected jpeg, png, gif, webp, bmp or tiff")]
    UnknownFormat,
    /// The format was recognised but this kind of it is not supported
    /// (for example a 12-bit arithmetic-coded JPEG or an exotic TIFF).
    #[error("{format}: unsupported: {reason}")]
    Unsupported {
        /// The image format.
        format: &'static str,
        /// What is unsupported.
        reason: String,
    },
    /// The header announces an image beyond the limits: refused before any
    /// pixel memory is allocated (decompression bombs).
    #[error("{format}: image too large: {width}x{height}: {reason}")]
    TooLarge {
        /// The image format.
        format: &'static str,
        /// Width from the header.
        width: u64,
        /// Height from the header.
        height: u64,
        /// Which limit was exceeded, with its value.
        reason: String,
    },
    /// The image is corrupt or truncated.
    #[error("{format}: corrupt or truncated image: {reason}")]
    Decode {
        /// The image format.
        format: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A path given to the walker is neither a regular file nor a directory.
    #[error("{}: not a regular file or directory", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
}

impl Error {
    /// The message without the path, for output that prints the path in a
    /// field of its own (`{"path": .., "error": ..}`).
    pub fn reason(&self) -> String {
        match self {
            Error::Io { source, .. } => source.to_string(),
            Error::NotAFile { .. } => "not a regular file or directory".to_owned(),
            other => other.to_string(),
        }
    }

    /// A short stable name for the kind of error, for summaries and metrics
    /// (never a label with content).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Empty => "empty",
            Error::TooManyBytes { .. } => "too_many_bytes",
            Error::UnknownFormat => "unknown_format",
            Error::Unsupported { .. } => "unsupported",
            Error::TooLarge { .. } => "too_large",
            Error::Decode { .. } => "decode",
            Error::Io { .. } => "io",
            Error::NotAFile { .. } => "not_a_file",
        }
    }
}
