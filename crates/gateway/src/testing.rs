//! Test support, also used by `childsafe serve --demo`: a local fake model
//! API that speaks both protocols faithfully (including their streaming event
//! sequences), and a phrase inspector whose findings a test controls.
//!
//! The fake upstream answers `POST /v1/chat/completions` and
//! `POST /v1/messages`. Without instructions it echoes the last user text
//! (`echo: ...`). Tests steer it with headers the gateway forwards:
//! `x-fake-reply` (base64 of the reply text, so the gateway's input check
//! never sees it), `x-fake-chunk` (characters per streamed delta, default 4),
//! and `x-fake-fault`: `500` (a 500 error), `hang` (no answer),
//! `reset` (the stream breaks after two events), `stall` (the stream stops
//! sending), `truncate` (the stream ends without its final event).
//! Every request body it receives is kept, so tests can check that unknown
//! fields passed through untouched.

use std::{
    collections::HashSet,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use bytes::Bytes;
use childsafe_core::{Category, Decision, Finding, FindingSource, Policy, SignalKind, Surface};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    inspect::{BoxFuture, Input, InputVerdict, Inspector, Role},
    sse::write_event,
};

/// The fake model API.
///
/// By default it keeps every body it receives, for tests to assert on;
/// [`FakeUpstream::not_recording`] keeps nothing, for load that would
/// otherwise grow its memory without bound (the benchmark).
#[derive(Clone)]
pub struct FakeUpstream {
    /// `None`: not recording.
    received: Option<Arc<Mutex<Received>>>,
}

/// Bodies received, with their paths.
type Received = Vec<(String, Value)>;

impl Default for FakeUpstream {
    fn default() -> FakeUpstream {
        FakeUpstream {
            received: Some(Arc::default()),
        }
    }
}

impl FakeUpstream {
    /// A fake that keeps nothing of what it receives.
    pub fn not_recording() -> FakeUpstream {
        FakeUpstream { received: None }
    }

    fn record(&self, path: &str, body: impl FnOnce() -> Value) {
        if let Some(received) = &self.received {
            received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((path.to_owned(), body()));
        }
    }

    /// Its routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .route("/v1/models", get(models))
            .with_state(self.clone())
    }

    /// Bodies received so far, with their paths (none if not recording).
    pub fn received(&self) -> Vec<(String, Value)> {
        self.received.as_ref().map_or_else(Vec::new, |received| {
            received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}

/// How a test asked the fake to behave.
struct Script {
    reply: Option<String>,
    chunk: usize,
    fault: Option<String>,
}

fn script(headers: &HeaderMap) -> Script {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|it| it.to_str().ok())
            .map(str::to_owned)
    };
    let reply = get("x-fake-reply")
        .and_then(|it| base64::engine::general_purpose::STANDARD.decode(it).ok())
        .and_then(|it| String::from_utf8(it).ok());
    Script {
        reply,
        chunk: get("x-fake-chunk")
            .and_then(|it| it.parse().ok())
            .unwrap_or(4)
            .max(1),
        fault: get("x-fake-fault"),
    }
}

fn last_user_text(body: &Value) -> String {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for message in messages.iter().rev() {
        if message.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        match message.get("content") {
            Some(Value::String(text)) => return text.clone(),
            Some(Value::Array(parts)) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                return texts.join(" ");
            }
            _ => {}
        }
    }
    String::new()
}

fn pieces(text: &str, chunk: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(chunk).map(|it| it.iter().collect()).collect()
}

async fn models(State(fake): State<FakeUpstream>) -> Json<Value> {
    fake.record("/v1/models", || Value::Null);
    Json(
        json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]}),
    )
}

async fn fault_before_head(fault: Option<&str>) -> Option<Response> {
    match fault {
        Some("500") => Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "fake failure", "type": "server_error"}})),
            )
                .into_response(),
        ),
        Some("hang") => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
        _ => None,
    }
}

fn sse_response(events: Vec<Bytes>, fault: Option<&str>) -> Response {
    let fault = fault.map(str::to_owned);
    let total = events.len();
    let stream =
        futures_util::stream::unfold((events.into_iter(), 0usize), move |(mut it, idx)| {
            let fault = fault.clone();
            async move {
                match fault.as_deref() {
                    Some("reset") if idx == 2 => {
                        return Some((Err(std::io::Error::other("reset")), (it, idx + 1)));
                    }
                    Some("reset") if idx > 2 => return None,
                    Some("stall") if idx == 2 => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Some("truncate") if idx + 1 == total => return None,
                    _ => {}
                }
                let next = it.next()?;
                // A small pause between events, as a real model streams.
                tokio::task::yield_now().await;
                Some((Ok::<Bytes, std::io::Error>(next), (it, idx + 1)))
            }
        });
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    res
}

async fn openai(
    State(fake): State<FakeUpstream>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    fake.record("/v1/chat/completions", || body.clone());
    let script = script(&headers);
    if let Some(res) = fault_before_head(script.fault.as_deref()).await {
        return res;
    }
    let reply = script
        .reply
        .unwrap_or_else(|| format!("echo: {}", last_user_text(&body)));
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let id = "chatcmpl-fake0001";
    let created = 1_700_000_000;
    let usage = json!({"prompt_tokens": 9, "completion_tokens": reply.len() / 4 + 1, "total_tokens": 9 + reply.len() / 4 + 1});
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": null, "annotations": []},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": usage, "service_tier": "default", "system_fingerprint": "fp_fake",
        }))
        .into_response();
    }
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let chunk = |delta: Value, finish: Value| {
        let mut res = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            res["usage"] = Value::Null;
        }
        write_event(None, &res.to_string())
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    for piece in pieces(&reply, script.chunk) {
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        let usage_chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_fake", "choices": [], "usage": usage,
        });
        events.push(write_event(None, &usage_chunk.to_string()));
    }
    events.push(write_event(None, "[DONE]"));
    sse_response(events, script.fault.as_deref())
}

async fn anthropic(
    State(fake): State<FakeUpstream>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    fake.record("/v1/messages", || body.clone());
    let script = script(&headers);
    if let Some(res) = fault_before_head(script.fault.as_deref()).await {
        return res;
    }
    let reply = script
        .reply
        .unwrap_or_else(|| format!("echo: {}", last_user_text(&body)));
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let id = "msg_fake0001";
    let output_tokens = reply.len() / 4 + 1;
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": reply}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 9, "output_tokens": output_tokens},
        }))
        .into_response();
    }
    let event = |name: &str, value: Value| write_event(Some(name), &value.to_string());
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    for piece in pieces(&reply, script.chunk) {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse_response(events, script.fault.as_deref())
}

/// An inspector whose findings come from a list of phrases (case-insensitive
/// substrings), decided by the built-in policy. It stands in for the engine
/// where a test must control exactly what fires; it is not a detector.
#[derive(Clone, Default)]
pub struct PhraseInspector {
    phrases: Vec<(String, Category)>,
    known_image_sha256: HashSet<String>,
    /// When set, a required detector "fails" on every input check.
    pub fail_input: bool,
    policy: Policy,
}

impl PhraseInspector {
    /// Flags text containing any phrase with its category.
    pub fn new(phrases: &[(&str, Category)]) -> PhraseInspector {
        PhraseInspector {
            phrases: phrases
                .iter()
                .map(|(p, c)| (p.to_lowercase(), *c))
                .collect(),
            ..PhraseInspector::default()
        }
    }

    /// Treats images with these SHA-256 hashes as known-CSAM bank matches
    /// (tests use hashes of benign images standing in for a list).
    pub fn with_known_images(mut self, sha256: &[String]) -> PhraseInspector {
        self.known_image_sha256 = sha256.iter().cloned().collect();
        self
    }

    fn findings(&self, text: &str, turn: Option<usize>) -> Vec<Finding> {
        let lower = text.to_lowercase();
        let mut res = Vec::new();
        for (phrase, category) in &self.phrases {
            if let Some(start) = lower.find(phrase.as_str()) {
                let mut finding =
                    Finding::new(*category, 0.95, FindingSource::detector("test.phrase"));
                finding.spans.push(childsafe_core::Span {
                    start,
                    end: start + phrase.len(),
                    role: childsafe_core::SpanRole::Intent,
                    turn,
                });
                res.push(finding);
            }
        }
        res
    }
}

impl Inspector for PhraseInspector {
    fn check_input<'a>(
        &'a self,
        input: &'a Input,
        account_state: Option<&'a Value>,
    ) -> BoxFuture<'a, InputVerdict> {
        Box::pin(async move {
            let mut findings = Vec::new();
            for (idx, message) in input.messages.iter().enumerate() {
                // Only what users and tools send is checked here: earlier model
                // turns were checked as output when they were produced.
                if matches!(message.role, Role::User | Role::Tool | Role::System) {
                    findings.extend(self.findings(&message.text, Some(idx)));
                }
            }
            let mut images = Vec::new();
            let mut preserve = Vec::new();
            for (idx, image) in input.images.iter().enumerate() {
                let sha256 = hex::encode(Sha256::digest(&image.bytes));
                if self.known_image_sha256.contains(&sha256) {
                    findings.push(Finding::new(
                        Category::CsamKnown,
                        1.0,
                        FindingSource::bank(
                            "test-bank",
                            SignalKind::Sha256,
                            format!("e-{idx}"),
                            None,
                        ),
                    ));
                    preserve.push(idx);
                }
                images.push(crate::engine::exact_hashes(&image.bytes));
            }
            let failures = if self.fail_input {
                vec!["test.remote".to_owned()]
            } else {
                Vec::new()
            };
            let decision = self
                .policy
                .decide_with_failures(Surface::Input, findings, failures);
            let seen = account_state
                .and_then(|it| it.get("requests"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            InputVerdict {
                decision,
                images,
                preserve,
                undecodable: Vec::new(),
                account_state: Some(json!({"requests": seen + 1})),
            }
        })
    }

    fn check_output(&self, text: &str) -> Decision {
        self.policy
            .decide(Surface::Output, self.findings(text, None))
    }

    fn max_span_bytes(&self) -> usize {
        self.phrases.iter().map(|(p, _)| p.len()).max().unwrap_or(0)
    }
}

/// A response body as a stream of already-encoded events, for tests that
/// feed a rewriter by hand.
pub fn events_body(events: Vec<Bytes>) -> Body {
    Body::from_stream(futures_util::stream::iter(
        events.into_iter().map(Ok::<Bytes, Infallible>),
    ))
}
