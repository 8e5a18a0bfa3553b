//! Errors: the library's [`Error`] enum, and [`AppError`], the HTTP error
//! that renders itself in the shape of the caller's protocol.
//!
//! Following axum's error-handling example: bad input gets a message that
//! says what was wrong (a field path, never the field's content); internal
//! failures get a generic message and the request id, and the detail goes to
//! the log through the request's span, never to the client.

use axum::{
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::REQUEST_ID_HEADER;

/// An error of the gateway library (startup, config, store, vault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid configuration; the message names the key.
    #[error("config: {0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `binding 127.0.0.1:8080`.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// The evidence vault failed.
    #[error("vault: {0}")]
    Vault(String),
    /// The detection engine could not be built or reloaded.
    #[error("engine: {0}")]
    Engine(String),
}

/// Which wire shape an error (or refusal) takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI: `{"error": {"message", "type", "param", "code"}}`. Also used by
    /// the gateway's own endpoints (reports, appeals, admin).
    OpenAi,
    /// Anthropic: `{"type": "error", "error": {"type", "message"}, "request_id"}`.
    Anthropic,
}

/// What went wrong, which decides the status and the error type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed JSON, a missing or wrong field, bad base64, an undecodable image.
    InvalidRequest,
    /// Missing or unknown API key.
    Authentication,
    /// A suspended or banned user or tenant.
    Permission,
    /// No such route or object.
    NotFound,
    /// The body is over the limit.
    TooLarge,
    /// Too many requests (reports per reporter, load shedding by client).
    RateLimited,
    /// The gateway is overloaded or a rollout stage is halted.
    Unavailable,
    /// The upstream timed out.
    UpstreamTimeout,
    /// The upstream failed (connection reset, 5xx, malformed stream).
    Upstream,
    /// A failure inside the gateway (store down, detector failed closed).
    Internal,
}

impl ErrorKind {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::Permission => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Metric label: stable, low-cardinality.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Internal => "internal",
        }
    }

    fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::TooLarge | ErrorKind::NotFound => {
                "invalid_request_error"
            }
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Unavailable => "service_unavailable",
            ErrorKind::UpstreamTimeout | ErrorKind::Upstream | ErrorKind::Internal => {
                "server_error"
            }
        }
    }

    /// Anthropic's documented error types.
    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::TooLarge => "request_too_large",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Unavailable => "overloaded_error",
            ErrorKind::UpstreamTimeout => "timeout_error",
            ErrorKind::Upstream | ErrorKind::Internal => "api_error",
        }
    }
}

/// An HTTP error in the caller's protocol.
#[derive(Debug)]
pub struct AppError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The client-facing message: field paths and limits, never content.
    pub message: String,
    /// The shape to render.
    pub protocol: Protocol,
    /// The request id, echoed in the body and the header.
    pub request_id: String,
    /// An OpenAI `code` (e.g. `invalid_api_key`), when one applies.
    pub code: Option<&'static str>,
}

impl AppError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AppError {
        AppError {
            kind,
            message: message.into(),
            protocol: Protocol::OpenAi,
            request_id: String::new(),
            code: None,
        }
    }

    /// Sets the protocol and request id (done once the handler knows them).
    pub fn with(mut self, protocol: Protocol, request_id: &str) -> AppError {
        self.protocol = protocol;
        request_id.clone_into(&mut self.request_id);
        self
    }

    /// The body, as JSON.
    pub fn body(&self) -> serde_json::Value {
        match self.protocol {
            Protocol::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.kind.openai_type(),
                    "param": null,
                    "code": self.code,
                    "request_id": self.request_id,
                }
            }),
            Protocol::Anthropic => json!({
                "type": "error",
                "error": {"type": self.kind.anthropic_type(), "message": self.message},
                "request_id": self.request_id,
            }),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        metrics::counter!(crate::metrics::ERRORS, "kind" => self.kind.as_str()).increment(1);
        let mut res = (self.kind.status(), axum::Json(self.body())).into_response();
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            res.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        if self.kind == ErrorKind::Unavailable {
            res.headers_mut()
                .insert("retry-after", HeaderValue::from_static("5"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_carry_type_message_and_request_id() {
        let err = AppError::new(
            ErrorKind::InvalidRequest,
            "messages[0].content: expected string or array, got number",
        )
        .with(Protocol::OpenAi, "req_1");
        expect_test::expect![[r#"{"error":{"code":null,"message":"messages[0].content: expected string or array, got number","param":null,"request_id":"req_1","type":"invalid_request_error"}}"#]]
            .assert_eq(&err.body().to_string());
        let err =
            AppError::new(ErrorKind::Permission, "suspended").with(Protocol::Anthropic, "req_2");
        expect_test::expect![[r#"{"error":{"message":"suspended","type":"permission_error"},"request_id":"req_2","type":"error"}"#]]
            .assert_eq(&err.body().to_string());
        assert_eq!(ErrorKind::TooLarge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
