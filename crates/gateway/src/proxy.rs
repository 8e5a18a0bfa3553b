//! The model proxy: authenticate, identify the end user, enforce, route
//! (rollout), check the input, forward, check the output (whole, or through
//! the streaming guard), and carry out the decision's effects.
//!
//! Protocol details live in `openai.rs` and `anthropic.rs`; this module only
//! sequences them. The request body is forwarded as received (unknown
//! fields untouched); a non-streamed response that passes is returned as the
//! upstream's bytes.

use std::{collections::VecDeque, convert::Infallible, pin::Pin, sync::Arc, time::Instant};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, post},
};
use bytes::Bytes;
use childsafe_core::{Action, Category, ContentHashes, Decision, MessageKind, Surface};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    CATEGORY_HEADER, REQUEST_ID_HEADER, RESOURCES_HEADER, anthropic,
    config::{HelpSeeking, OtherPaths, RemoteImages},
    content::ImageLimits,
    error::{AppError, ErrorKind, Protocol},
    inspect::{Input, Inspector},
    ledger::{Incident, IncidentImage, Subject},
    metrics::{
        CHECK_LATENCY, DECISIONS, DETECTOR_FAILURES, LATENCY, REQUESTS, STREAMS_BLOCKED,
        UNCHECKED_IMAGE_URLS,
    },
    openai,
    rollout::Route,
    sse::{SseEvent, SseParser},
    state::AppState,
    upstream::{Upstream, copy_response_headers},
};

/// What the proxy needs from a request body, whatever the protocol.
#[derive(Debug)]
pub struct ParsedRequest {
    /// The requested model (echoed in refusals).
    pub model: String,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// The end user named in the body.
    pub user: Option<String>,
    /// The content to check.
    pub input: Input,
}

/// A refusal to render in the caller's protocol.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The request id.
    pub request_id: String,
    /// The message shown (prevention, support or plain refusal).
    pub text: String,
    /// The categories behind it.
    pub categories: Vec<Category>,
    /// The action.
    pub action: Action,
    /// Which message kind the text is.
    pub message: Option<MessageKind>,
    /// The surface that refused.
    pub surface: Surface,
}

impl Refusal {
    /// The machine-readable `childsafe` body field.
    pub fn meta(&self) -> Value {
        json!({
            "request_id": self.request_id,
            "category": self.categories.first().map(|it| it.as_str()),
            "categories": self.categories.iter().map(|it| it.as_str()).collect::<Vec<_>>(),
            "action": self.action.as_str(),
            "surface": self.surface.as_str(),
            "message": self.message.map(|it| match it {
                MessageKind::Prevention => "prevention",
                MessageKind::Support => "support",
            }),
        })
    }

    /// The `x-childsafe-category` header value (comma-separated, taxonomy order).
    pub fn header(&self) -> String {
        category_header(&self.categories)
    }
}

fn category_header(categories: &[Category]) -> String {
    if categories.is_empty() {
        return "none".to_owned();
    }
    categories
        .iter()
        .map(|it| it.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What a stream rewriter says after an event.
#[derive(Debug)]
pub enum Step {
    /// Keep going.
    Continue,
    /// The stream ended properly.
    Done,
    /// The guard fired: stop forwarding, record, refuse.
    Blocked(Box<Decision>),
    /// The upstream stream is broken (reason for logs; no content).
    Failed(&'static str),
}

/// The output check used by stream rewriters.
pub struct StreamCheck {
    inspector: Arc<dyn Inspector>,
}

impl StreamCheck {
    /// Checks a window of output text.
    pub fn check(&self, text: &str) -> Decision {
        self.inspector.check_output(text)
    }
}

/// A protocol's stream rewriting, driven by [`guarded_stream`].
pub trait StreamRewriter: Send {
    /// Handles one upstream event, pushing what to send to `out`.
    fn event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Step;
    /// The upstream closed the stream.
    fn end(&mut self, out: &mut Vec<Bytes>) -> Step;
    /// Writes the refusal and the protocol's proper ending.
    fn refuse(&mut self, refusal: &Refusal, out: &mut Vec<Bytes>);
    /// Writes a protocol error event (upstream failed mid-stream).
    fn fail(&mut self, err: &AppError, out: &mut Vec<Bytes>);
}

/// The proxy routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/{*rest}", any(other_path))
}

async fn chat_completions(State(state): State<AppState>, request: Request) -> Response {
    handle(state, Protocol::OpenAi, request).await
}

async fn messages(State(state): State<AppState>, request: Request) -> Response {
    handle(state, Protocol::Anthropic, request).await
}

/// A new request id: `req_` and 24 hex digits from the OS-seeded thread RNG.
pub fn new_request_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("req_{}", hex::encode(bytes))
}

/// Per-request facts the effects need.
struct Ctx {
    state: AppState,
    protocol: Protocol,
    request_id: String,
    tenant: String,
    user: Option<String>,
    lang: String,
    model: String,
    stage: Option<String>,
}

async fn handle(state: AppState, protocol: Protocol, request: Request) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let route = match protocol {
        Protocol::OpenAi => "chat_completions",
        Protocol::Anthropic => "messages",
    };
    let mut res = match handle_inner(&state, protocol, &request_id, request).await {
        Ok(res) => res,
        Err(err) => err.with(protocol, &request_id).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = res.status().as_u16();
    let class = match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(REQUESTS, "route" => route, "status" => class).increment(1);
    metrics::histogram!(LATENCY, "route" => route).record(started.elapsed().as_secs_f64());
    tracing::info!(request_id = %request_id, route, status, elapsed_ms = started.elapsed().as_millis() as u64, "request");
    res
}

async fn handle_inner(
    state: &AppState,
    protocol: Protocol,
    request_id: &str,
    request: Request,
) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    let key = api_key(&parts.headers);
    let Some(tenant) = state.tenant_for_key(key) else {
        let mut err = AppError::new(ErrorKind::Authentication, "missing or unknown API key");
        err.code = Some("invalid_api_key");
        return Err(err);
    };
    let body = axum::body::to_bytes(body, state.config.limits.max_body_bytes)
        .await
        .map_err(|_| {
            AppError::new(
                ErrorKind::TooLarge,
                format!(
                    "body: expected at most {} bytes, got more",
                    state.config.limits.max_body_bytes
                ),
            )
        })?;
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        AppError::new(
            ErrorKind::InvalidRequest,
            format!(
                "body:{}:{}: expected JSON, got a syntax error ({})",
                e.line(),
                e.column(),
                classify_json(&e)
            ),
        )
    })?;
    let limits = ImageLimits {
        max_bytes: state.config.limits.max_image_bytes,
        max_images: state.config.limits.max_images,
    };
    let parsed = match protocol {
        Protocol::OpenAi => openai::parse_request(&json, limits)?,
        Protocol::Anthropic => anthropic::parse_request(&json, limits)?,
    };
    let header_user = parts
        .headers
        .get(state.config.user_header.as_str())
        .and_then(|it| it.to_str().ok())
        .filter(|it| !it.is_empty())
        .map(str::to_owned);
    let user = header_user.or_else(|| parsed.user.clone());
    let lang = state.messages.language(
        parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|it| it.to_str().ok()),
    );

    // Sanctions first: a banned user's content is not even checked.
    state.enforcement.check(
        &tenant,
        user.as_deref(),
        &state.config.enforcement.appeal_instructions,
    )?;

    // Which upstream (a rollout may send this user to the candidate).
    let route = match &state.rollout {
        Some(rollout) if rollout.applies_to(protocol) => {
            rollout.route(user.as_deref().unwrap_or(&tenant))
        }
        _ => Route::Baseline,
    };
    let (upstream_name, stage) = match &route {
        Route::Baseline => (default_upstream(state, protocol), None),
        Route::Candidate { upstream, stage } => (upstream.clone(), Some(stage.clone())),
        Route::Unavailable => {
            return Err(AppError::new(
                ErrorKind::Unavailable,
                "this model is temporarily unavailable; retry later",
            ));
        }
    };
    let Some(upstream) = state.upstreams.get(&upstream_name).cloned() else {
        return Err(AppError::new(
            ErrorKind::Internal,
            "no upstream configured for this route",
        ));
    };
    if let (Some(rollout), Some(stage)) = (&state.rollout, &stage) {
        rollout.count_request(stage);
    }

    let ctx = Ctx {
        state: state.clone(),
        protocol,
        request_id: request_id.to_owned(),
        tenant,
        user,
        lang,
        model: parsed.model.clone(),
        stage,
    };

    // Input check.
    if !parsed.input.image_urls.is_empty() {
        match state.config.proxy.remote_images {
            RemoteImages::Pass => {
                metrics::counter!(UNCHECKED_IMAGE_URLS)
                    .increment(parsed.input.image_urls.len() as u64);
            }
            RemoteImages::Refuse | RemoteImages::Allowlisted => {
                let allowed =
                    state.config.proxy.remote_images == RemoteImages::Allowlisted
                        && parsed.input.image_urls.iter().all(|url| {
                            host_allowed(url, &state.config.proxy.remote_image_allowlist)
                        });
                if !allowed {
                    return Err(AppError::new(
                        ErrorKind::InvalidRequest,
                        "image URLs are not accepted here: send images inline as base64",
                    ));
                }
            }
        }
    }
    let subject = ctx.user.as_ref().map(|user| Subject::User {
        tenant: ctx.tenant.clone(),
        user: user.clone(),
    });
    let account_state = match &subject {
        Some(subject) => state.ledger.account_state(subject).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "account state unavailable; checking this request alone");
            None
        }),
        None => None,
    };
    let inspector = state.inspector();
    let check_started = Instant::now();
    let verdict = {
        // Images are decoded on the blocking pool by the inspector; the permit bounds how many at once.
        let _permit = if parsed.input.images.is_empty() {
            None
        } else {
            Some(
                state
                    .image_permits
                    .acquire()
                    .await
                    .map_err(|_| AppError::new(ErrorKind::Unavailable, "shutting down"))?,
            )
        };
        inspector
            .check_input(&parsed.input, account_state.as_ref())
            .await
    };
    metrics::histogram!(CHECK_LATENCY, "surface" => "input")
        .record(check_started.elapsed().as_secs_f64());
    // An image that does not decode is the caller's error (400), unless an
    // exact hash of its bytes is listed: then it is refused, recorded and
    // preserved like any other match.
    let listed = verdict.decision.categories.iter().any(|it| it.is_abuse());
    if let Some(&idx) = verdict.undecodable.first()
        && !listed
    {
        let image = parsed.input.images.get(idx);
        return Err(AppError::new(
            ErrorKind::InvalidRequest,
            format!(
                "image {idx} (message {}): expected a decodable image (JPEG, PNG, GIF, WebP, BMP, TIFF), got {} bytes that do not decode",
                image.map_or(0, |it| it.message_idx),
                image.map_or(0, |it| it.bytes.len()),
            ),
        ));
    }
    if let (Some(subject), Some(new_state)) = (&subject, verdict.account_state.clone())
        && let Err(e) = state.ledger.set_account_state(subject, new_state).await
    {
        tracing::warn!(error = %e, "account state not saved");
    }
    let input_text_hash = text_hash(parsed.input.messages.iter().map(|m| m.text.as_str()));
    let preserve: Vec<(usize, &[u8])> = verdict
        .preserve
        .iter()
        .filter_map(|idx| Some((*idx, parsed.input.images.get(*idx)?.bytes.as_slice())))
        .collect();
    let input_refusal = effects(
        &ctx,
        &verdict.decision,
        Some(input_text_hash),
        verdict.images.clone(),
        &preserve,
    )
    .await?;
    if let Some(refusal) = input_refusal {
        return Ok(refusal_response(
            &ctx,
            &refusal,
            parsed.stream,
            parsed.include_usage,
        ));
    }
    let support = (verdict.decision.action == Action::AllowWithResources
        && verdict.decision.message == Some(MessageKind::Support))
    .then(|| support_parts(&ctx, &verdict.decision));

    // Forward.
    let path = match protocol {
        Protocol::OpenAi => "/v1/chat/completions",
        Protocol::Anthropic => "/v1/messages",
    };
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let upstream_res = upstream
        .send(
            protocol,
            Method::POST,
            &path_and_query,
            &parts.headers,
            &state.config.user_header,
            body,
        )
        .await?;
    let status = upstream_res.status();
    if status.is_server_error() {
        return Err(upstream.count(
            ErrorKind::Upstream,
            "status_5xx",
            &format!("the model API failed with status {}", status.as_u16()),
        ));
    }
    if !status.is_success() {
        // The vendor's own error (already in its protocol's shape): passed as is.
        return passthrough(
            &upstream,
            upstream_res,
            state.config.limits.max_response_bytes,
        )
        .await;
    }
    let is_sse = upstream_res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|it| it.to_str().ok())
        .is_some_and(|it| it.starts_with("text/event-stream"));
    if is_sse {
        return Ok(stream_response(ctx, upstream, upstream_res, support));
    }
    whole_response(&ctx, &upstream, upstream_res, support).await
}

/// Carries out a decision's effects; returns the refusal if it withholds.
///
/// Records the incident (retried; if it cannot be recorded the request fails
/// closed), preserves known-CSAM images in the vault, opens a case for severe
/// findings, adds strikes, and counts it for the rollout stage.
async fn effects(
    ctx: &Ctx,
    decision: &Decision,
    text_sha256: Option<String>,
    images: Vec<ContentHashes>,
    preserve: &[(usize, &[u8])],
) -> Result<Option<Refusal>, AppError> {
    let state = &ctx.state;
    let surface = decision.surface.as_str();
    if decision.categories.is_empty() {
        metrics::counter!(DECISIONS, "surface" => surface, "action" => decision.action.as_str(), "category" => "none").increment(1);
    }
    for category in &decision.categories {
        metrics::counter!(DECISIONS, "surface" => surface, "action" => decision.action.as_str(), "category" => category.as_str()).increment(1);
    }
    if !decision.failures.is_empty() {
        metrics::counter!(DETECTOR_FAILURES, "surface" => surface)
            .increment(decision.failures.len() as u64);
        tracing::warn!(request_id = %ctx.request_id, surface, failures = ?decision.failures, "required detector failed");
    }
    let abusive: Vec<Category> = decision
        .categories
        .iter()
        .copied()
        .filter(|it| it.is_abuse())
        .collect();
    let record = decision.action.withholds()
        || decision.report
        || decision.strike.is_some()
        || !abusive.is_empty();
    if record {
        let mut images: Vec<IncidentImage> = images
            .into_iter()
            .map(|hashes| IncidentImage {
                hashes,
                preserved: None,
            })
            .collect();
        for &(idx, bytes) in preserve {
            let Some(vault) = &state.vault else {
                tracing::error!(request_id = %ctx.request_id, "known-CSAM input must be preserved but no vault is configured");
                return Err(AppError::new(
                    ErrorKind::Internal,
                    "this request could not be processed",
                ));
            };
            let meta = match put_evidence(vault, bytes).await {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::error!(request_id = %ctx.request_id, error = %e, "evidence not preserved; failing closed");
                    return Err(AppError::new(
                        ErrorKind::Internal,
                        "this request could not be processed",
                    ));
                }
            };
            if let Some(image) = images.get_mut(idx) {
                image.preserved = Some(meta);
            }
        }
        let incident = Incident {
            request_id: ctx.request_id.clone(),
            tenant: ctx.tenant.clone(),
            user: ctx.user.clone(),
            surface: decision.surface,
            action: decision.action,
            categories: decision.categories.clone(),
            findings: decision.findings.clone(),
            report: decision.report,
            text_sha256,
            images,
            rollout_stage: ctx.stage.clone(),
        };
        // The ledger opens the case (severe or reportable) with the incident, in one step.
        let recorded = crate::enforcement::record_incident(state, incident).await?;
        tracing::info!(request_id = %ctx.request_id, incident = %recorded.id, case = ?recorded.case_id, surface, action = decision.action.as_str(), categories = %category_header(&decision.categories), "incident");
        if let (Some(rollout), Some(stage)) = (&state.rollout, &ctx.stage) {
            rollout.count_incident(stage, &abusive);
        }
        if let Some(strike) = decision.strike {
            state
                .enforcement
                .strike(
                    state,
                    &ctx.tenant,
                    ctx.user.as_deref(),
                    strike,
                    &decision.categories,
                    &ctx.request_id,
                )
                .await;
        }
    }
    if !decision.action.withholds() {
        return Ok(None);
    }
    let text = state.messages.text(decision.message, &ctx.lang).to_owned();
    Ok(Some(Refusal {
        request_id: ctx.request_id.clone(),
        text,
        categories: decision.categories.clone(),
        action: decision.action,
        message: decision.message,
        surface: decision.surface,
    }))
}

/// Puts an image into the evidence vault on the blocking pool (encryption
/// and fsync are blocking work).
async fn put_evidence(
    vault: &childsafe_vault::Vault,
    bytes: &[u8],
) -> Result<childsafe_vault::ItemMeta, String> {
    let vault = vault.clone();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || vault.put(&bytes, OffsetDateTime::now_utc()))
        .await
        .map_err(|e| format!("vault task failed: {e}"))?
        .map_err(|e| e.to_string())
}

fn support_parts(ctx: &Ctx, decision: &Decision) -> (String, Value) {
    let text = ctx
        .state
        .messages
        .text(Some(MessageKind::Support), &ctx.lang)
        .to_owned();
    let meta = json!({
        "request_id": ctx.request_id,
        "category": decision.categories.first().map(|it| it.as_str()),
        "categories": decision.categories.iter().map(|it| it.as_str()).collect::<Vec<_>>(),
        "action": decision.action.as_str(),
        "message": "support",
        "resources": text,
    });
    (text, meta)
}

fn refusal_response(ctx: &Ctx, refusal: &Refusal, stream: bool, include_usage: bool) -> Response {
    let created = OffsetDateTime::now_utc().unix_timestamp();
    let mut res = if stream {
        let events = match ctx.protocol {
            Protocol::OpenAi => openai::refusal_stream(&ctx.model, refusal, created, include_usage),
            Protocol::Anthropic => anthropic::refusal_stream(&ctx.model, refusal),
        };
        let body = Body::from_stream(futures_util::stream::iter(
            events.into_iter().map(Ok::<Bytes, Infallible>),
        ));
        let mut res = Response::new(body);
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        res
    } else {
        let body = match ctx.protocol {
            Protocol::OpenAi => openai::refusal_body(&ctx.model, refusal, created),
            Protocol::Anthropic => anthropic::refusal_body(&ctx.model, refusal),
        };
        axum::Json(body).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&refusal.header()) {
        res.headers_mut().insert(CATEGORY_HEADER, value);
    }
    res
}

async fn passthrough(
    upstream: &Upstream,
    res: reqwest::Response,
    max_bytes: usize,
) -> Result<Response, AppError> {
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = res.headers().clone();
    let body = read_body(upstream, res, max_bytes).await?;
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    copy_response_headers(&headers, out.headers_mut(), false);
    Ok(out)
}

async fn read_body(
    upstream: &Upstream,
    res: reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, AppError> {
    let mut stream = res.bytes_stream();
    let mut buf = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(upstream.idle_timeout, stream.next()).await {
            Err(_) => {
                return Err(upstream.count(
                    ErrorKind::UpstreamTimeout,
                    "timeout",
                    "the model API stopped sending",
                ));
            }
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(_))) => {
                return Err(upstream.count(
                    ErrorKind::Upstream,
                    "reset",
                    "the connection to the model API failed",
                ));
            }
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > max_bytes {
                    return Err(upstream.count(
                        ErrorKind::Upstream,
                        "too_large",
                        "the model API's response was too large",
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

async fn whole_response(
    ctx: &Ctx,
    upstream: &Upstream,
    res: reqwest::Response,
    support: Option<(String, Value)>,
) -> Result<Response, AppError> {
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::OK);
    let headers = res.headers().clone();
    let body = read_body(upstream, res, ctx.state.config.limits.max_response_bytes).await?;
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        return Err(upstream.count(
            ErrorKind::Upstream,
            "malformed",
            "the model API sent a response that is not JSON",
        ));
    };
    let text = match ctx.protocol {
        Protocol::OpenAi => openai::output_text(&json),
        Protocol::Anthropic => anthropic::output_text(&json),
    };
    let check_started = Instant::now();
    let decision = ctx.state.inspector().check_output_full(&text).await;
    metrics::histogram!(CHECK_LATENCY, "surface" => "output")
        .record(check_started.elapsed().as_secs_f64());
    let refusal = effects(
        ctx,
        &decision,
        Some(text_hash([text.as_str()].into_iter())),
        Vec::new(),
        &[],
    )
    .await?;
    let mut out_headers = HeaderMap::new();
    copy_response_headers(&headers, &mut out_headers, false);
    let body = if let Some(refusal) = &refusal {
        match ctx.protocol {
            Protocol::OpenAi => openai::replace_with_refusal(&mut json, refusal),
            Protocol::Anthropic => anthropic::replace_with_refusal(&mut json, refusal),
        }
        if let Ok(value) = HeaderValue::from_str(&refusal.header()) {
            out_headers.insert(CATEGORY_HEADER, value);
        }
        Bytes::from(json.to_string())
    } else if let Some((text, meta)) = support {
        out_headers.insert(RESOURCES_HEADER, HeaderValue::from_static("support"));
        if let Some(category) = meta.get("category").and_then(Value::as_str)
            && let Ok(value) = HeaderValue::from_str(category)
        {
            out_headers.insert(CATEGORY_HEADER, value);
        }
        match (ctx.state.config.proxy.help_seeking, ctx.protocol) {
            (HelpSeeking::Append, Protocol::OpenAi) => {
                openai::append_support(&mut json, &text, meta)
            }
            (HelpSeeking::Append, Protocol::Anthropic) => {
                anthropic::append_support(&mut json, &text, meta)
            }
            (HelpSeeking::Header, _) => json["childsafe"] = meta,
        }
        Bytes::from(json.to_string())
    } else {
        body
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    *res.headers_mut() = out_headers;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

fn stream_response(
    ctx: Ctx,
    upstream: Upstream,
    res: reqwest::Response,
    support: Option<(String, Value)>,
) -> Response {
    let mut headers = HeaderMap::new();
    copy_response_headers(res.headers(), &mut headers, false);
    if support.is_some() {
        headers.insert(RESOURCES_HEADER, HeaderValue::from_static("support"));
    }
    let window = ctx.state.window_bytes();
    let check = StreamCheck {
        inspector: ctx.state.inspector(),
    };
    let rewriter: Box<dyn StreamRewriter> = match ctx.protocol {
        Protocol::OpenAi => Box::new(openai::OpenAiStream::new(check, window, support)),
        Protocol::Anthropic => Box::new(anthropic::AnthropicStream::new(check, window, support)),
    };
    let body = guarded_stream(ctx, upstream, Box::pin(res.bytes_stream()), rewriter);
    let mut out = Response::new(Body::from_stream(body));
    *out.headers_mut() = headers;
    out
}

type UpstreamBytes = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct StreamState {
    ctx: Ctx,
    upstream: Upstream,
    body: Option<UpstreamBytes>,
    parser: SseParser,
    rewriter: Box<dyn StreamRewriter>,
    queue: VecDeque<Bytes>,
    done: bool,
}

/// Drives a rewriter over the upstream stream: events in, rewritten events
/// out, with the idle timeout, the event size limit, and, when the guard
/// fires, the incident recorded before the refusal is written.
fn guarded_stream(
    ctx: Ctx,
    upstream: Upstream,
    body: UpstreamBytes,
    rewriter: Box<dyn StreamRewriter>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let parser = SseParser::new(ctx.state.config.limits.max_sse_event_bytes);
    let state = StreamState {
        ctx,
        upstream,
        body: Some(body),
        parser,
        rewriter,
        queue: VecDeque::new(),
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(bytes) = st.queue.pop_front() {
                return Some((Ok(bytes), st));
            }
            if st.done {
                return None;
            }
            let body = st.body.as_mut()?;
            let mut events = Vec::new();
            let mut out = Vec::new();
            let mut ended = false;
            match tokio::time::timeout(st.upstream.idle_timeout, body.next()).await {
                Err(_) => {
                    let err = st.upstream.count(
                        ErrorKind::UpstreamTimeout,
                        "timeout",
                        "the model API stopped sending",
                    );
                    st.fail(err, &mut out);
                }
                Ok(None) => {
                    st.parser.finish(&mut events);
                    ended = true;
                }
                Ok(Some(Err(_))) => {
                    let err = st.upstream.count(
                        ErrorKind::Upstream,
                        "reset",
                        "the connection to the model API failed",
                    );
                    st.fail(err, &mut out);
                }
                Ok(Some(Ok(chunk))) => {
                    if st.parser.feed(&chunk, &mut events).is_err() {
                        let err = st.upstream.count(
                            ErrorKind::Upstream,
                            "stream",
                            "the model API sent an oversized stream event",
                        );
                        st.fail(err, &mut out);
                    }
                }
            }
            for event in events {
                if st.done {
                    break;
                }
                let step = st.rewriter.event(event, &mut out);
                st.step(step, &mut out).await;
            }
            if ended && !st.done {
                let step = st.rewriter.end(&mut out);
                st.step(step, &mut out).await;
                st.done = true;
            }
            if st.done {
                // Dropping the upstream body closes its connection: nothing more is read.
                st.body = None;
            }
            st.queue.extend(out);
        }
    })
}

impl StreamState {
    fn fail(&mut self, err: AppError, out: &mut Vec<Bytes>) {
        let err = err.with(self.ctx.protocol, &self.ctx.request_id);
        self.rewriter.fail(&err, out);
        self.done = true;
    }

    async fn step(&mut self, step: Step, out: &mut Vec<Bytes>) {
        match step {
            Step::Continue => {}
            Step::Done => self.done = true,
            Step::Failed(reason) => {
                tracing::warn!(request_id = %self.ctx.request_id, reason, "upstream stream broken");
                let err = self.upstream.count(
                    ErrorKind::Upstream,
                    "stream",
                    "the model API's stream broke off",
                );
                self.fail(err, out);
            }
            Step::Blocked(decision) => {
                metrics::counter!(STREAMS_BLOCKED).increment(1);
                // The text that fired is withheld whatever happens next; the
                // incident is recorded before the refusal goes out.
                let refusal = match effects(&self.ctx, &decision, None, Vec::new(), &[]).await {
                    Ok(Some(refusal)) => refusal,
                    Ok(None) | Err(_) => Refusal {
                        request_id: self.ctx.request_id.clone(),
                        text: self
                            .ctx
                            .state
                            .messages
                            .text(None, &self.ctx.lang)
                            .to_owned(),
                        categories: decision.categories.clone(),
                        action: Action::Block,
                        message: None,
                        surface: Surface::Output,
                    },
                };
                self.rewriter.refuse(&refusal, out);
                self.done = true;
            }
        }
    }
}

async fn other_path(State(state): State<AppState>, request: Request) -> Response {
    let request_id = new_request_id();
    let res = match state.config.proxy.other_paths {
        OtherPaths::Refuse => Err(AppError::new(
            ErrorKind::NotFound,
            format!("{}: no such route on this gateway", request.uri().path()),
        )),
        OtherPaths::Pass => pass_other(&state, request).await,
    };
    let mut res = res.unwrap_or_else(|err| err.with(Protocol::OpenAi, &request_id).into_response());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    res
}

async fn pass_other(state: &AppState, request: Request) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    if state.tenant_for_key(api_key(&parts.headers)).is_none() {
        let mut err = AppError::new(ErrorKind::Authentication, "missing or unknown API key");
        err.code = Some("invalid_api_key");
        return Err(err);
    }
    let name = state
        .config
        .proxy
        .other_upstream
        .clone()
        .unwrap_or_else(|| state.config.proxy.openai_upstream.clone());
    let Some(upstream) = state.upstreams.get(&name) else {
        return Err(AppError::new(
            ErrorKind::Internal,
            "no upstream configured for other paths",
        ));
    };
    let body = axum::body::to_bytes(body, state.config.limits.max_body_bytes)
        .await
        .map_err(|_| AppError::new(ErrorKind::TooLarge, "body: over the size limit"))?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |it| it.as_str())
        .to_owned();
    let res = upstream
        .send(
            Protocol::OpenAi,
            parts.method,
            &path_and_query,
            &parts.headers,
            &state.config.user_header,
            body,
        )
        .await?;
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    copy_response_headers(res.headers(), &mut headers, false);
    let mut out = Response::new(Body::from_stream(res.bytes_stream()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

fn default_upstream(state: &AppState, protocol: Protocol) -> String {
    match protocol {
        Protocol::OpenAi => state.config.proxy.openai_upstream.clone(),
        Protocol::Anthropic => state.config.proxy.anthropic_upstream.clone(),
    }
}

/// The client's API key: `Authorization: Bearer KEY` or `x-api-key: KEY`.
pub fn api_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|it| it.to_str().ok())
        && let Some(key) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
    {
        return Some(key.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|it| it.to_str().ok())
        .map(str::trim)
}

fn host_allowed(url: &str, allowlist: &[String]) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    allowlist
        .iter()
        .any(|allowed| host.eq_ignore_ascii_case(allowed))
}

fn text_hash<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for text in texts {
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

fn classify_json(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "invalid syntax",
        serde_json::error::Category::Data => "invalid data",
        serde_json::error::Category::Io => "read error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_come_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-1"),
        );
        assert_eq!(api_key(&headers), Some("sk-1"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("sk-2"));
        assert_eq!(api_key(&headers), Some("sk-2"));
        assert_eq!(api_key(&HeaderMap::new()), None);
    }

    #[test]
    fn only_allowlisted_https_hosts_may_be_fetched() {
        let allow = vec!["images.example.com".to_owned()];
        assert!(host_allowed("https://images.example.com/a.png", &allow));
        assert!(!host_allowed("http://images.example.com/a.png", &allow));
        assert!(!host_allowed(
            "https://images.example.com.evil.test/a.png",
            &allow
        ));
        assert!(!host_allowed("https://127.0.0.1/a.png", &allow));
        assert!(host_allowed(
            "https://user@images.example.com/a.png",
            &allow
        ));
    }

    #[test]
    fn request_ids_are_unique_and_well_formed() {
        let a = new_request_id();
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("req_"));
        assert_ne!(a, new_request_id());
    }
}
