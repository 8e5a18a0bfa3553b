//! Upstream model APIs: one pooled HTTP client per configured upstream, with
//! connect and header timeouts, and failures classified for errors and metrics.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use bytes::Bytes;

use crate::{
    config::UpstreamConfig,
    error::{AppError, Error, ErrorKind, Protocol},
    metrics::UPSTREAM_ERRORS,
};

/// Headers never forwarded in either direction (hop-by-hop, or ours).
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// One upstream.
#[derive(Clone)]
pub struct Upstream {
    name: String,
    base_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
    header_timeout: Duration,
    /// Longest pause between two body chunks.
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key is a secret: never shown.
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Builds the client; reads the API key from its environment variable.
    ///
    /// # Errors
    /// [`Error::Client`] if the TLS stack cannot start.
    pub fn new(name: &str, config: &UpstreamConfig) -> Result<Upstream, Error> {
        // reqwest is built with `rustls-no-provider`: install ring once (DEPENDENCIES.md).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(Upstream {
            name: name.to_owned(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config
                .api_key_env
                .as_ref()
                .and_then(|var| std::env::var(var).ok())
                .filter(|it| !it.is_empty()),
            client,
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        })
    }

    /// The upstream's name in config (a metric label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a request and waits for the response head.
    ///
    /// `headers` are the client's; hop-by-hop headers, the client's own
    /// credentials and `accept-encoding` (the gateway must read the body)
    /// are dropped, and the upstream key is added in the protocol's way.
    ///
    /// # Errors
    /// `UpstreamTimeout` or `Upstream` (connect failure, reset), counted.
    pub async fn send(
        &self,
        protocol: Protocol,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        drop_header: &str,
        body: Bytes,
    ) -> Result<reqwest::Response, AppError> {
        let mut out = HeaderMap::with_capacity(headers.len() + 1);
        for (name, value) in headers {
            let lower = name.as_str();
            if HOP_BY_HOP.contains(&lower)
                || lower == "authorization"
                || lower == "x-api-key"
                || lower == "accept-encoding"
                || lower.eq_ignore_ascii_case(drop_header)
            {
                continue;
            }
            out.append(name.clone(), value.clone());
        }
        if let Some(key) = &self.api_key {
            let (name, value) = match protocol {
                Protocol::OpenAi => (
                    HeaderName::from_static("authorization"),
                    format!("Bearer {key}"),
                ),
                Protocol::Anthropic => (HeaderName::from_static("x-api-key"), key.clone()),
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                out.insert(name, value);
            }
        }
        let url = format!("{}{}", self.base_url, path_and_query);
        let request = self
            .client
            .request(method, url)
            .headers(out)
            .body(body)
            .send();
        match tokio::time::timeout(self.header_timeout, request).await {
            Err(_) => Err(self.count(
                ErrorKind::UpstreamTimeout,
                "timeout",
                "the model API did not answer in time",
            )),
            Ok(Err(e)) if e.is_timeout() => Err(self.count(
                ErrorKind::UpstreamTimeout,
                "timeout",
                "the model API did not answer in time",
            )),
            Ok(Err(e)) if e.is_connect() => Err(self.count(
                ErrorKind::Upstream,
                "connect",
                "the model API could not be reached",
            )),
            Ok(Err(_)) => Err(self.count(
                ErrorKind::Upstream,
                "reset",
                "the connection to the model API failed",
            )),
            Ok(Ok(res)) => Ok(res),
        }
    }

    /// Counts an upstream failure and makes its client-facing error.
    pub fn count(&self, kind: ErrorKind, label: &'static str, message: &str) -> AppError {
        metrics::counter!(UPSTREAM_ERRORS, "upstream" => self.name.clone(), "kind" => label)
            .increment(1);
        tracing::warn!(upstream = %self.name, kind = label, "upstream failure");
        AppError::new(kind, message)
    }
}

/// Copies response headers worth keeping from the upstream.
pub fn copy_response_headers(
    from: &reqwest::header::HeaderMap,
    to: &mut HeaderMap,
    keep_length: bool,
) {
    for (name, value) in from {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower) && !(keep_length && lower == "content-length") {
            continue;
        }
        if lower == "content-encoding" {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}
