//! The one error type of the cybertip crate.
//!
//! Errors from NCMEC calls are classified in the type, as STYLE.md asks
//! ("Outbound errors are classified in their type"): [`Error::Retry`] is worth
//! trying again, [`Error::Rejected`] carries a non-zero `responseCode` that is
//! not retryable, and [`Error::Permanent`] is anything else that retrying
//! cannot fix. No message ever carries file bytes or other vault content: the
//! only things that reach an error are field names, ids, codes and NCMEC's own
//! descriptions.

use std::{fmt, path::PathBuf};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value that is not one of an XSD enumeration's values.
    #[error("unknown {kind}: {value:?}")]
    UnknownValue {
        /// What was being parsed, e.g. "incident type".
        kind: &'static str,
        /// The value as given.
        value: String,
    },
    /// An XML document that cannot be read into the model.
    #[error("line {line}: {path}: {message}")]
    Xml {
        /// 1-based line of the offending element (0 when unknown).
        line: u64,
        /// Element path, e.g. `fileDetails/fileAnnotations/generativeAi`.
        path: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A document that breaks NCMEC's documented rules (the ones the XSD lacks).
    #[error("{0}")]
    Rules(Violations),
    /// A document that is not valid against the XSD.
    #[error("not valid against the CyberTipline XSD:\n{}", .errors.join("\n"))]
    Schema {
        /// The validator's messages, each with its element path and line.
        errors: Vec<String>,
    },
    /// The XSD itself could not be read or compiled.
    #[error("{}: {message}", .path.display())]
    SchemaLoad {
        /// Where the XSD was looked for.
        path: PathBuf,
        /// Why it failed.
        message: String,
    },
    /// A report cannot be built from the case as given.
    #[error("{0}")]
    Build(String),
    /// Invalid configuration (reporter details, credentials, base URL).
    #[error("{source_name}: {message}")]
    Config {
        /// The file or environment variable the value came from.
        source_name: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A temporary failure worth retrying: a retryable `responseCode`, an HTTP
    /// 5xx, a timeout or a connection error.
    #[error("{step}: temporary failure: {reason}{}", request_id_suffix(.request_id))]
    Retry {
        /// The API call, e.g. `upload`.
        step: &'static str,
        /// What happened.
        reason: String,
        /// False only when we know the server did not act on the request (it
        /// answered with a failure code, or the connection was never made).
        server_may_have_acted: bool,
        /// The `Request-ID` response header, when there was a response.
        request_id: Option<String>,
    },
    /// NCMEC answered with a non-zero `responseCode` that retrying will not change.
    #[error(
        "{step}: rejected with responseCode {code} ({description}), HTTP {http_status}{}",
        request_id_suffix(.request_id)
    )]
    Rejected {
        /// The API call.
        step: &'static str,
        /// The `responseCode`.
        code: i32,
        /// The `responseDescription`.
        description: String,
        /// The HTTP status.
        http_status: u16,
        /// The `Request-ID` response header.
        request_id: Option<String>,
    },
    /// A failure that retrying cannot fix and that carries no response code:
    /// bad credentials configuration, an unreadable response, an MD5 mismatch
    /// that keeps recurring, a TLS setup failure.
    #[error("{step}: {reason}{}", request_id_suffix(.request_id))]
    Permanent {
        /// The API call or driver step.
        step: &'static str,
        /// What happened.
        reason: String,
        /// The `Request-ID` response header, when there was a response.
        request_id: Option<String>,
    },
    /// The outbox storage failed.
    #[error("outbox: {0}")]
    Outbox(String),
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    match request_id {
        Some(id) => format!(" [Request-ID {id}]"),
        None => String::new(),
    }
}

impl Error {
    /// The NCMEC `responseCode`, if this error carries one.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            Error::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for [`Error::Retry`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Retry { .. })
    }
}

/// One broken documented rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field, as an element path: `report/personOrUserReported[1]/espIdentifier`.
    pub field: String,
    /// What was expected and what was found.
    pub message: String,
}

/// Every broken rule of one document, in document order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// Records a violation of `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            message: message.into(),
        });
    }

    /// True if no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` if empty, else [`Error::Rules`].
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Rules(self))
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, violation) in self.0.iter().enumerate() {
            if idx > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {}", violation.field, violation.message)?;
        }
        Ok(())
    }
}
