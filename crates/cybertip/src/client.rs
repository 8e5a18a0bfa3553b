//! The CyberTipline Reporting API client: status, submit, upload, fileinfo,
//! finish and retract, over HTTPS with Basic credentials.
//!
//! Every call reads both the HTTP status and the XML `responseCode`
//! (NCMEC has answered HTTP 200 with a failure code and HTTP 401 with code
//! 1000), stores the `Request-ID` header, and classifies failures in the
//! error type ([`Error::Retry`], [`Error::Rejected`], [`Error::Permanent`]).
//!
//! Retries, with exponential backoff and full jitter, happen only for:
//! - the retryable codes 1100 (save failed), 1110 (upload failed),
//!   1111 (file upload failed), 1300 (update failed), and 1000 (server
//!   error) unless it comes with HTTP 401 (NCMEC's old "authentication
//!   required");
//! - HTTP 5xx and 429 without a readable body, timeouts and connection errors
//!   (of these, only 503, 429 and a connection never made say for certain
//!   that the server did not act).
//!
//! All other codes are final (`Rejected { code }`): 2000/3xxx (credentials),
//! 4xxx (our document is wrong; retrying sends the same document), 5001,
//! 5002, 5101, 5102 (the report's state), and any code not in NCMEC's list.
//!
//! What may be retried *here* depends on the call. `status`, `finish` and
//! `retract` are safe to repeat (a repeated finish answers 5102, which the
//! driver counts as done). `submit` is repeated too: a lost submit leaves an
//! unfinished report that NCMEC deletes after 24 hours, never a second
//! finished one. `upload` and `fileinfo` are repeated only when the server
//! certainly did not act (it answered with a failure code, or the connection
//! was never made); otherwise the error says `server_may_have_acted` and the
//! outbox driver, which knows the report's state, decides.

// One error per HTTP call, on a path dominated by network time: boxing the
// error to shrink the `Result` buys nothing measurable.
#![allow(clippy::result_large_err)]

use std::{fmt, time::Duration};

use childsafe_core::Md5;
use md5::Digest as _;
use rand::Rng as _;
use reqwest::{StatusCode, multipart};

use crate::{
    error::Error,
    model::{ReportDoneResponse, ReportResponse},
    xml,
};

/// NCMEC's production base URL.
pub const PRODUCTION_URL: &str = "https://report.cybertip.org/ispws";
/// NCMEC's test base URL.
pub const TEST_URL: &str = "https://exttest.cybertip.org/ispws";
/// Environment variable holding the API user name.
pub const USER_ENV: &str = "CHILDSAFE_NCMEC_USER";
/// Environment variable holding the API password.
pub const PASSWORD_ENV: &str = "CHILDSAFE_NCMEC_PASSWORD";

/// `responseCode`s that mean "the server failed; try again".
pub const RETRYABLE_CODES: [i32; 5] = [1000, 1100, 1110, 1111, 1300];

/// Which NCMEC environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Environment {
    /// `https://exttest.cybertip.org/ispws`: reports are not acted on.
    Test,
    /// `https://report.cybertip.org/ispws`: real reports.
    Production,
}

impl Environment {
    /// The stable name: `test` or `production`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }

    /// The documented base URL.
    pub const fn base_url(self) -> &'static str {
        match self {
            Environment::Test => TEST_URL,
            Environment::Production => PRODUCTION_URL,
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = Error;

    fn from_str(s: &str) -> Result<Environment, Error> {
        match s {
            "test" => Ok(Environment::Test),
            "production" => Ok(Environment::Production),
            other => Err(Error::UnknownValue {
                kind: "environment (test or production)",
                value: other.to_owned(),
            }),
        }
    }
}

/// HTTP Basic credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name NCMEC issued.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Reads `CHILDSAFE_NCMEC_USER` and `CHILDSAFE_NCMEC_PASSWORD`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing variable.
    pub fn from_env() -> Result<Credentials, Error> {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|it| !it.is_empty())
                .ok_or_else(|| Error::Config {
                    source_name: name.to_owned(),
                    message: "expected NCMEC API credentials in the environment, got nothing"
                        .to_owned(),
                })
        };
        Ok(Credentials {
            user: read(USER_ENV)?,
            password: read(PASSWORD_ENV)?,
        })
    }
}

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, including the first. Default: 5.
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt, with full jitter. Default: 1 s.
    pub base_delay: Duration,
    /// The longest backoff. Default: 60 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (1-based `attempt`): a
    /// uniformly random duration up to `base * 2^(attempt-1)`, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_delay);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL without a trailing slash: [`Environment::base_url`], or the fake's.
    pub base_url: String,
    /// Basic credentials.
    pub credentials: Credentials,
    /// Connect timeout. Default: 10 s.
    pub connect_timeout: Duration,
    /// Whole-call timeout for XML calls; uploads get this plus one second
    /// per 256 KiB. Default: 60 s.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Defaults for `base_url` and `credentials`.
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            credentials,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// One HTTP exchange, successful or not, for the record (receipts, support).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Exchange {
    /// The call: `status`, `submit`, `upload`, `fileinfo`, `finish`, `retract`.
    pub step: &'static str,
    /// HTTP status, if a response came.
    pub http_status: Option<u16>,
    /// `responseCode`, if the body was readable.
    pub response_code: Option<i32>,
    /// The `Request-ID` header.
    pub request_id: Option<String>,
    /// The response body as received (XML; never content we sent).
    pub body: String,
    /// What went wrong, for failed attempts.
    pub error: Option<String>,
}

/// A successful answer, with the failed attempts that preceded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<T> {
    /// The parsed response.
    pub response: T,
    /// The successful exchange.
    pub exchange: Exchange,
    /// Earlier attempts of this call that failed and were retried.
    pub retried: Vec<Exchange>,
}

/// The client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
}

/// Whether a call may be sent again after an outcome we cannot see.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Repeating is harmless (status, finish, retract) or leaves only an
    /// unfinished orphan (submit).
    Always,
    /// Only if the server certainly did not act (upload, fileinfo).
    IfNotActed,
}

impl Client {
    /// Builds a client (rustls with the ring provider, system roots).
    ///
    /// # Errors
    /// [`Error::Permanent`] if the TLS stack cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        // Ignore the error: another part of the process may have installed it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("childsafe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Permanent {
                step: "client",
                reason: format!("cannot set up HTTPS: {err}"),
                request_id: None,
            })?;
        Ok(Client { http, config })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `GET /status`: checks credentials and connectivity.
    ///
    /// # Errors
    /// Classified as the module docs say.
    pub async fn status(&self) -> Result<Answer<ReportResponse>, Error> {
        self.with_retry("status", Repeat::Always, || async {
            let request = self.http.get(self.url("status"));
            self.send_report_response("status", request, self.config.timeout)
                .await
        })
        .await
    }

    /// `POST /submit` with a `<report>` document; the answer carries the new `reportId`.
    ///
    /// # Errors
    /// Classified as the module docs say; [`Error::Permanent`] if a success
    /// carries no `reportId`.
    pub async fn submit(&self, report_xml: &str) -> Result<Answer<ReportResponse>, Error> {
        let answer = self
            .with_retry("submit", Repeat::Always, || async {
                let request = self
                    .http
                    .post(self.url("submit"))
                    .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .body(report_xml.to_owned());
                self.send_report_response("submit", request, self.config.timeout)
                    .await
            })
            .await?;
        if answer.response.report_id.is_none() {
            return Err(Error::Permanent {
                step: "submit",
                reason: "success without a reportId".to_owned(),
                request_id: answer.exchange.request_id,
            });
        }
        Ok(answer)
    }

    /// `POST /upload` (multipart: `id`, `file`). Checks the bytes against
    /// `expected_md5` before sending and NCMEC's returned MD5 after.
    ///
    /// # Errors
    /// [`Error::Permanent`] if the bytes do not match `expected_md5` (nothing
    /// is sent); [`Error::Retry`] with `server_may_have_acted` if NCMEC
    /// received different bytes (the report then holds a bad file); the rest
    /// as the module docs say.
    pub async fn upload(
        &self,
        report_id: i64,
        file_name: &str,
        bytes: &[u8],
        expected_md5: &Md5,
    ) -> Result<Answer<ReportResponse>, Error> {
        let local = Md5(md5::Md5::digest(bytes).into());
        if local != *expected_md5 {
            return Err(Error::Permanent {
                step: "upload",
                reason: format!(
                    "the bytes read for upload have MD5 {local}, but the vault recorded {expected_md5} at ingest: refusing to upload a modified file"
                ),
                request_id: None,
            });
        }
        let per_256k = u64::try_from(bytes.len() / (256 * 1024)).unwrap_or(u64::MAX);
        let timeout = self
            .config
            .timeout
            .saturating_add(Duration::from_secs(per_256k));
        let answer = self
            .with_retry("upload", Repeat::IfNotActed, || async {
                let part = multipart::Part::bytes(bytes.to_vec())
                    .file_name(file_name.to_owned())
                    .mime_str("application/octet-stream")
                    .map_err(|err| AttemptError {
                        error: Error::Permanent {
                            step: "upload",
                            reason: format!("building the form: {err}"),
                            request_id: None,
                        },
                        exchange: Exchange::default(),
                    })?;
                let form = multipart::Form::new()
                    .text("id", report_id.to_string())
                    .part("file", part);
                let request = self.http.post(self.url("upload")).multipart(form);
                self.send_report_response("upload", request, timeout).await
            })
            .await?;
        let request_id = answer.exchange.request_id.clone();
        let Some(file_id) = answer
            .response
            .file_id
            .as_deref()
            .filter(|it| !it.is_empty())
        else {
            return Err(Error::Retry {
                step: "upload",
                reason: "success without a fileId".to_owned(),
                server_may_have_acted: true,
                request_id,
            });
        };
        match answer.response.hash.as_deref().map(str::parse::<Md5>) {
            Some(Ok(remote)) if remote == local => Ok(answer),
            Some(Ok(remote)) => Err(Error::Retry {
                step: "upload",
                reason: format!(
                    "file {file_id}: NCMEC received bytes with MD5 {remote}, expected {local}"
                ),
                server_may_have_acted: true,
                request_id,
            }),
            Some(Err(_)) | None => Err(Error::Retry {
                step: "upload",
                reason: format!(
                    "file {file_id}: NCMEC returned no readable MD5 to check the upload against"
                ),
                server_may_have_acted: true,
                request_id,
            }),
        }
    }

    /// `POST /fileinfo` with a `<fileDetails>` document (at most once per file).
    ///
    /// # Errors
    /// Classified as the module docs say.
    pub async fn fileinfo(&self, details_xml: &str) -> Result<Answer<ReportResponse>, Error> {
        self.with_retry("fileinfo", Repeat::IfNotActed, || async {
            let request = self
                .http
                .post(self.url("fileinfo"))
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(details_xml.to_owned());
            self.send_report_response("fileinfo", request, self.config.timeout)
                .await
        })
        .await
    }

    /// `POST /finish` (form field `id`): the report becomes final; the answer
    /// is the receipt.
    ///
    /// # Errors
    /// Classified as the module docs say; a repeated finish gives
    /// `Rejected { code: 5102 }`.
    pub async fn finish(&self, report_id: i64) -> Result<Answer<ReportDoneResponse>, Error> {
        self.with_retry("finish", Repeat::Always, || async {
            let form = multipart::Form::new().text("id", report_id.to_string());
            let request = self.http.post(self.url("finish")).multipart(form);
            let (exchange, body) = self.send("finish", request, self.config.timeout).await?;
            let root = xml::root_name(&body).unwrap_or_default();
            if root == "reportDoneResponse" {
                let response = xml::report_done_response_from_xml(&body)
                    .map_err(|err| unreadable(&exchange, &err))?;
                let exchange = Exchange {
                    response_code: Some(response.response_code),
                    ..exchange
                };
                check_code(&exchange, response.response_code, "")?;
                return Ok((response, exchange));
            }
            // Failures come back as <reportResponse>.
            let (failure, exchange) = self.report_response(exchange, &body)?;
            Err(unexpected_success(&exchange, &failure))
        })
        .await
    }

    /// `POST /retract` (form field `id`): withdraws an unfinished report.
    ///
    /// # Errors
    /// Classified as the module docs say (5101: already retracted; 5102: finished).
    pub async fn retract(&self, report_id: i64) -> Result<Answer<ReportResponse>, Error> {
        self.with_retry("retract", Repeat::Always, || async {
            let form = multipart::Form::new().text("id", report_id.to_string());
            let request = self.http.post(self.url("retract")).multipart(form);
            self.send_report_response("retract", request, self.config.timeout)
                .await
        })
        .await
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}", self.config.base_url)
    }

    async fn with_retry<T, F, Fut>(
        &self,
        step: &'static str,
        repeat: Repeat,
        mut call: F,
    ) -> Result<Answer<T>, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(T, Exchange), AttemptError>>,
    {
        let policy = self.config.retry;
        let mut retried = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await {
                Ok((response, exchange)) => {
                    return Ok(Answer {
                        response,
                        exchange,
                        retried,
                    });
                }
                Err(AttemptError { error, exchange }) => {
                    let may_repeat = match &error {
                        Error::Retry {
                            server_may_have_acted,
                            ..
                        } => repeat == Repeat::Always || !server_may_have_acted,
                        _ => false,
                    };
                    if !may_repeat || attempt >= policy.max_attempts.max(1) {
                        return Err(error);
                    }
                    let delay = policy.delay(attempt);
                    tracing::warn!(
                        step,
                        attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %error,
                        "ncmec call failed; retrying"
                    );
                    retried.push(Exchange {
                        error: Some(error.to_string()),
                        ..exchange
                    });
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Sends one request and returns the response body, classifying
    /// transport failures.
    async fn send(
        &self,
        step: &'static str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(Exchange, Vec<u8>), AttemptError> {
        let credentials = &self.config.credentials;
        let response = request
            .basic_auth(&credentials.user, Some(&credentials.password))
            .timeout(timeout)
            .send()
            .await
            .map_err(|err| transport_error(step, &err, None))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("Request-ID")
            .and_then(|it| it.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|err| transport_error(step, &err, request_id.clone()))?;
        let exchange = Exchange {
            step,
            http_status: Some(status.as_u16()),
            response_code: None,
            request_id,
            body: String::from_utf8_lossy(&body).into_owned(),
            error: None,
        };
        Ok((exchange, body.to_vec()))
    }

    async fn send_report_response(
        &self,
        step: &'static str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(ReportResponse, Exchange), AttemptError> {
        let (exchange, body) = self.send(step, request, timeout).await?;
        let (response, exchange) = self.report_response(exchange, &body)?;
        check_code(
            &exchange,
            response.response_code,
            &response.response_description,
        )?;
        Ok((response, exchange))
    }

    fn report_response(
        &self,
        exchange: Exchange,
        body: &[u8],
    ) -> Result<(ReportResponse, Exchange), AttemptError> {
        let response =
            xml::report_response_from_xml(body).map_err(|err| unreadable(&exchange, &err))?;
        let exchange = Exchange {
            response_code: Some(response.response_code),
            ..exchange
        };
        Ok((response, exchange))
    }
}

/// A failed attempt and the exchange it came from.
struct AttemptError {
    error: Error,
    exchange: Exchange,
}

fn transport_error(
    step: &'static str,
    err: &reqwest::Error,
    request_id: Option<String>,
) -> AttemptError {
    // A connection that was never made cannot have reached the server; a
    // timeout or a reset after sending may have.
    let server_may_have_acted = !err.is_connect();
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    let mut reason = format!("{kind}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    let error = if err.is_builder() {
        Error::Permanent {
            step,
            reason,
            request_id: request_id.clone(),
        }
    } else {
        Error::Retry {
            step,
            reason,
            server_may_have_acted,
            request_id: request_id.clone(),
        }
    };
    AttemptError {
        exchange: Exchange {
            step,
            request_id,
            error: Some(error.to_string()),
            ..Exchange::default()
        },
        error,
    }
}

/// A body that is not the expected XML.
fn unreadable(exchange: &Exchange, err: &Error) -> AttemptError {
    let status = exchange.http_status.unwrap_or(0);
    let reason = format!("HTTP {status} with an unreadable body ({err})");
    let error = match StatusCode::from_u16(status) {
        Ok(code) if code.is_server_error() || code == StatusCode::TOO_MANY_REQUESTS => {
            Error::Retry {
                step: exchange.step,
                reason,
                // 503 and 429 refuse a request before handling it; a 500,
                // or a proxy's 502/504, says nothing about whether NCMEC acted.
                server_may_have_acted: !matches!(
                    code,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ),
                request_id: exchange.request_id.clone(),
            }
        }
        _ => Error::Permanent {
            step: exchange.step,
            reason,
            request_id: exchange.request_id.clone(),
        },
    };
    AttemptError {
        error,
        exchange: exchange.clone(),
    }
}

/// Classifies a readable answer by HTTP status and `responseCode`.
fn check_code(exchange: &Exchange, code: i32, description: &str) -> Result<(), AttemptError> {
    let status = exchange.http_status.unwrap_or(0);
    let fail = |error: Error| {
        Err(AttemptError {
            error,
            exchange: exchange.clone(),
        })
    };
    let auth_failed = status == 401 || status == 403;
    if code == 0 && (200..300).contains(&status) {
        return Ok(());
    }
    if code == 0 {
        return fail(Error::Permanent {
            step: exchange.step,
            reason: format!("HTTP {status} with responseCode 0"),
            request_id: exchange.request_id.clone(),
        });
    }
    if RETRYABLE_CODES.contains(&code) && !auth_failed {
        return fail(Error::Retry {
            step: exchange.step,
            reason: format!("responseCode {code} ({description}), HTTP {status}"),
            // 1000 "server error" is generic: it may come after the work was
            // done. The others name the operation that failed.
            server_may_have_acted: code == 1000,
            request_id: exchange.request_id.clone(),
        });
    }
    fail(Error::Rejected {
        step: exchange.step,
        code,
        description: description.to_owned(),
        http_status: status,
        request_id: exchange.request_id.clone(),
    })
}

fn unexpected_success(exchange: &Exchange, failure: &ReportResponse) -> AttemptError {
    match check_code(
        exchange,
        failure.response_code,
        &failure.response_description,
    ) {
        Err(err) => err,
        Ok(()) => AttemptError {
            error: Error::Permanent {
                step: exchange.step,
                reason: "success without a reportDoneResponse receipt".to_owned(),
                request_id: exchange.request_id.clone(),
            },
            exchange: exchange.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(status: u16) -> Exchange {
        Exchange {
            step: "upload",
            http_status: Some(status),
            ..Exchange::default()
        }
    }

    #[test]
    fn codes_are_classified_by_status_and_code() {
        let classify = |status, code| {
            check_code(&exchange(status), code, "d")
                .err()
                .map(|it| it.error)
        };
        assert!(classify(200, 0).is_none());
        for code in [1100, 1110, 1111, 1300] {
            assert!(
                matches!(
                    classify(200, code),
                    Some(Error::Retry {
                        server_may_have_acted: false,
                        ..
                    })
                ),
                "{code}"
            );
            assert!(
                matches!(classify(500, code), Some(Error::Retry { .. })),
                "{code}"
            );
        }
        assert!(matches!(
            classify(500, 1000),
            Some(Error::Retry {
                server_may_have_acted: true,
                ..
            })
        ));
        // NCMEC's 2016 "Authentication Required" was 1000 with HTTP 401: not retryable.
        assert!(matches!(
            classify(401, 1000),
            Some(Error::Rejected { code: 1000, .. })
        ));
        for code in [2000, 3000, 4000, 4100, 4110, 5001, 5101, 5102, 1001, 9999] {
            assert!(
                matches!(classify(400, code), Some(Error::Rejected { code: c, .. }) if c == code),
                "{code}"
            );
            assert!(
                matches!(classify(200, code), Some(Error::Rejected { .. })),
                "{code}"
            );
        }
        assert!(matches!(classify(500, 0), Some(Error::Permanent { .. })));
    }

    #[test]
    fn unreadable_bodies_retry_only_on_server_errors() {
        let err = Error::Build("x".into());
        assert!(matches!(
            unreadable(&exchange(502), &err).error,
            Error::Retry {
                server_may_have_acted: true,
                ..
            }
        ));
        assert!(matches!(
            unreadable(&exchange(429), &err).error,
            Error::Retry {
                server_may_have_acted: false,
                ..
            }
        ));
        assert!(matches!(
            unreadable(&exchange(503), &err).error,
            Error::Retry {
                server_may_have_acted: false,
                ..
            }
        ));
        assert!(matches!(
            unreadable(&exchange(500), &err).error,
            Error::Retry {
                server_may_have_acted: true,
                ..
            }
        ));
        assert!(matches!(
            unreadable(&exchange(200), &err).error,
            Error::Permanent { .. }
        ));
        assert!(matches!(
            unreadable(&exchange(401), &err).error,
            Error::Permanent { .. }
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..200 {
            assert!(policy.delay(1) <= Duration::from_millis(100));
            assert!(policy.delay(3) <= Duration::from_millis(400));
            assert!(policy.delay(30) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let creds = Credentials {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
