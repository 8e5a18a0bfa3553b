//! The HTTP plumbing shared by remote classifiers.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::Error;

/// Connection settings for one remote classifier.
#[derive(Clone)]
pub struct RemoteConfig {
    /// Name in findings, failures and counters (e.g. `llama_guard`).
    pub name: String,
    /// Base URL of the API, up to and including `/v1`.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<String>,
    /// Timeout of one attempt. Default: 5 s.
    pub timeout: Duration,
    /// Requests in flight at once. Default: 16.
    pub max_concurrency: usize,
    /// Retries after the first attempt. Default: 2.
    pub retries: u32,
    /// Backoff before the first retry; doubles each time, plus jitter of up
    /// to the same amount. Default: 200 ms.
    pub backoff: Duration,
}

impl std::fmt::Debug for RemoteConfig {
    // The API key is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("max_concurrency", &self.max_concurrency)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl RemoteConfig {
    /// A config with the documented defaults.
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> RemoteConfig {
        RemoteConfig {
            name: name.into(),
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(5),
            max_concurrency: 16,
            retries: 2,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Counts for one classifier, since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// Calls to `classify`.
    pub requests: u64,
    /// HTTP attempts, including retries.
    pub attempts: u64,
    /// Retries.
    pub retries: u64,
    /// Calls that failed after all retries.
    pub failures: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
}

/// A JSON-over-HTTP client with timeouts, bounded concurrency and retries.
pub struct HttpClient {
    client: reqwest::Client,
    semaphore: Semaphore,
    config: RemoteConfig,
    counters: Counters,
}

impl HttpClient {
    /// Builds the client.
    ///
    /// # Errors
    /// A base URL that does not parse, or a TLS setup failure.
    pub fn new(config: RemoteConfig) -> Result<HttpClient, Error> {
        super::install_crypto_provider();
        let parsed = reqwest::Url::parse(&config.base_url).map_err(|err| Error::Config {
            classifier: config.name.clone(),
            reason: format!(
                "base_url: expected an http(s) URL, got a value that does not parse ({err})"
            ),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Config {
                classifier: config.name.clone(),
                reason: format!("base_url: expected http or https, got {}", parsed.scheme()),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|err| Error::Config {
                classifier: config.name.clone(),
                reason: err.to_string(),
            })?;
        Ok(HttpClient {
            client,
            semaphore: Semaphore::new(config.max_concurrency.max(1)),
            config,
            counters: Counters::default(),
        })
    }

    /// The config.
    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.counters;
        CounterSnapshot {
            requests: c.requests.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
        }
    }

    /// Counts a failure found after a successful HTTP exchange (a response
    /// that does not parse).
    pub(crate) fn count_failure(&self) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Classifier {
            classifier: self.config.name.clone(),
            reason: reason.into(),
        }
    }

    /// POSTs `body` as JSON to `{base_url}/{path}` and returns the response
    /// body parsed as JSON, retrying what is worth retrying.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let res = self.post_json_inner(path, body).await;
        if res.is_err() {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    async fn post_json_inner(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        let url = format!("{}/{}", self.config.base_url.trim_end_matches('/'), path);
        let _permit = self
            .semaphore
            .acquire()
            .await
            .map_err(|_| self.error("shutting down"))?;
        let mut attempt = 0u32;
        loop {
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            let mut request = self.client.post(&url).json(body);
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        let bytes = response.bytes().await.map_err(|err| {
                            if err.is_timeout() {
                                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                            }
                            self.error(format!("reading the response: {}", describe(&err)))
                        });
                        match bytes {
                            Ok(bytes) => {
                                return serde_json::from_slice(&bytes).map_err(|err| {
                                    self.error(format!("response: expected JSON ({err})"))
                                });
                            }
                            Err(err) => Retry::Yes(err),
                        }
                    } else if status.as_u16() == 429 || status.is_server_error() {
                        Retry::Yes(self.error(format!("http {}", status.as_u16())))
                    } else {
                        Retry::No(self.error(format!("http {}", status.as_u16())))
                    }
                }
                Err(err) => {
                    if err.is_timeout() {
                        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Retry::Yes(self.error(describe(&err)))
                }
            };
            match outcome {
                Retry::No(err) => return Err(err),
                Retry::Yes(err) if attempt >= self.config.retries => {
                    let Error::Classifier { reason, .. } = err else {
                        return Err(err);
                    };
                    return Err(self.error(format!("{reason} (after {} attempts)", attempt + 1)));
                }
                Retry::Yes(_) => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    let base = self.config.backoff.saturating_mul(1 << attempt.min(10));
                    let jitter = base.mul_f64(rand::random::<f64>());
                    tokio::time::sleep(base + jitter).await;
                    attempt += 1;
                }
            }
        }
    }
}

enum Retry {
    Yes(Error),
    No(Error),
}

/// A reqwest error without its URL (which is config, but keep it short).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else if err.is_body() || err.is_decode() {
        "bad response body".to_owned()
    } else {
        "request failed".to_owned()
    }
}
