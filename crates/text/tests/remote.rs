//! Remote classifiers against local fake servers that speak the vendors'
//! wire formats: an OpenAI-compatible chat/completions server answering as
//! Llama Guard 3 does, and the OpenAI moderation endpoint. Requests are
//! checked (path, model, messages or prompt, auth header); faults are
//! injected (5xx, timeouts, garbage) to exercise retries and counters.
//! Texts are benign stand-ins: the fake decides by a marker word.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router, extract::State, http::HeaderMap, http::StatusCode, response::IntoResponse,
    routing::post,
};
use childsafe_core::{Category, SourceKind};
use childsafe_text::{
    Role, Turn,
    remote::{Classifier, LlamaGuard, LlamaGuardTemplate, OpenAiModeration, RemoteConfig, Target},
};
use serde_json::{Value, json};

/// What the fake server does on each request, in order; the last repeats.
#[derive(Clone, Copy)]
enum Fault {
    Ok,
    Status(u16),
    Sleep(u64),
    Garbage,
}

#[derive(Clone)]
struct Fake {
    faults: Arc<Vec<Fault>>,
    calls: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl Fake {
    fn new(faults: Vec<Fault>) -> Fake {
        Fake {
            faults: Arc::new(faults),
            calls: Arc::default(),
            requests: Arc::default(),
        }
    }

    async fn next(&self, headers: HeaderMap, body: Value) -> Option<axum::response::Response> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        self.requests.lock().unwrap().push((headers, body));
        match self.faults[call.min(self.faults.len() - 1)] {
            Fault::Ok => None,
            Fault::Status(code) => {
                Some((StatusCode::from_u16(code).unwrap(), "upstream trouble").into_response())
            }
            Fault::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                None
            }
            Fault::Garbage => Some((StatusCode::OK, "<html>not json</html>").into_response()),
        }
    }
}

/// The verdict a Llama Guard model would give: unsafe S4 when the judged
/// text holds the stand-in marker `MARKER`.
fn verdict(text: &str) -> &'static str {
    if text.contains("MARKER") {
        "unsafe\nS4"
    } else {
        "safe"
    }
}

async fn chat(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if let Some(fault) = fake.next(headers, body.clone()).await {
        return fault;
    }
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": verdict(last)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    }))
    .into_response()
}

async fn completions(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if let Some(fault) = fake.next(headers, body.clone()).await {
        return fault;
    }
    let prompt = body["prompt"].as_str().unwrap_or("");
    let conversation = prompt.split("<BEGIN CONVERSATION>").nth(1).unwrap_or("");
    Json(json!({
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "text": verdict(conversation), "finish_reason": "stop"}]
    }))
    .into_response()
}

async fn moderations(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if let Some(fault) = fake.next(headers, body.clone()).await {
        return fault;
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let results: Vec<Value> = inputs
        .iter()
        .map(|text| {
            let minors = if text.contains("MARKER") { 0.93 } else { 0.0004 };
            json!({
                "flagged": minors > 0.5,
                "categories": {"harassment": false, "harassment/threatening": false, "hate": false, "hate/threatening": false,
                    "illicit": false, "illicit/violent": false, "self-harm": false, "self-harm/instructions": false,
                    "self-harm/intent": false, "sexual": minors > 0.5, "sexual/minors": minors > 0.5, "violence": false, "violence/graphic": false},
                "category_scores": {"harassment": 0.0001, "harassment/threatening": 0.0001, "hate": 0.0001, "hate/threatening": 0.0001,
                    "illicit": 0.0001, "illicit/violent": 0.0001, "self-harm": 0.0001, "self-harm/instructions": 0.0001,
                    "self-harm/intent": 0.0001, "sexual": minors, "sexual/minors": minors, "violence": 0.0001, "violence/graphic": 0.0001},
                "category_applied_input_types": {"sexual": ["text"], "sexual/minors": ["text"]}
            })
        })
        .collect();
    Json(json!({"id": "modr-1", "model": body["model"], "results": results})).into_response()
}

async fn serve(fake: Fake) -> String {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/moderations", post(moderations))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn config(name: &str, url: &str) -> RemoteConfig {
    let mut config = RemoteConfig::new(name, url, "meta-llama/Llama-Guard-3-8B");
    config.api_key = Some("test-key".to_owned());
    config.timeout = Duration::from_millis(300);
    config.backoff = Duration::from_millis(5);
    config.retries = 2;
    config
}

fn conversation(last: &str) -> Vec<Turn> {
    vec![
        Turn::new(Role::System, "be helpful"),
        Turn::new(Role::User, "hello there"),
        Turn::new(Role::Assistant, "hi"),
        Turn::new(Role::User, last),
    ]
}

#[tokio::test]
async fn llama_guard_server_template_sends_the_chat_and_parses_s4() {
    let fake = Fake::new(vec![Fault::Ok]);
    let url = serve(fake.clone()).await;
    let guard = LlamaGuard::new(config("llama_guard", &url), LlamaGuardTemplate::Server).unwrap();
    let findings = guard
        .classify(&conversation("a MARKER request"), Target::User)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].category, Category::CsamSolicitation);
    assert_eq!(findings[0].score, 1.0);
    assert_eq!(findings[0].source.kind, SourceKind::Classifier);
    assert_eq!(findings[0].source.name, "llama_guard");
    assert_eq!(findings[0].source.entry_id.as_deref(), Some("S4"));
    assert_eq!(findings[0].spans[0].turn, Some(3));

    {
        let requests = fake.requests.lock().unwrap();
        let (headers, body) = &requests[0];
        assert_eq!(headers["authorization"], "Bearer test-key");
        assert_eq!(body["model"], "meta-llama/Llama-Guard-3-8B");
        assert_eq!(body["temperature"], 0);
        // System turns are dropped; roles and order are kept.
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(body["messages"][2]["content"], "a MARKER request");
    }

    let findings = guard
        .classify(&conversation("a plain question"), Target::User)
        .await
        .unwrap();
    assert!(findings.is_empty());
    assert_eq!(guard.counters().requests, 2);
    assert_eq!(guard.counters().failures, 0);
}

#[tokio::test]
async fn llama_guard_client_template_sends_the_llama_guard_3_prompt() {
    let fake = Fake::new(vec![Fault::Ok]);
    let url = serve(fake.clone()).await;
    let guard = LlamaGuard::new(config("lg_raw", &url), LlamaGuardTemplate::Client).unwrap();
    let turns = vec![
        Turn::new(Role::User, "please write MARKER"),
        Turn::new(Role::Assistant, "here it is"),
    ];
    let findings = guard.classify(&turns, Target::Agent).await.unwrap();
    assert_eq!(findings.len(), 1);
    // The model wrote it: sexualisation, not solicitation.
    assert_eq!(findings[0].category, Category::MinorSexualization);

    let requests = fake.requests.lock().unwrap();
    let prompt = requests[0].1["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"));
    assert!(prompt.contains("Check if there is unsafe content in 'Agent' messages"));
    assert!(prompt.contains("S4: Child Sexual Exploitation.\n"));
    assert!(prompt.contains("S14: Code Interpreter Abuse.\n"));
    assert!(
        prompt.contains("User: please write MARKER\n\nAgent: here it is\n\n<END CONVERSATION>")
    );
    assert!(prompt.contains("ONLY THE LAST Agent message"));
    assert!(prompt.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
}

#[tokio::test]
async fn openai_moderation_reads_sexual_minors_per_turn() {
    let fake = Fake::new(vec![Fault::Ok]);
    let url = serve(fake.clone()).await;
    let mut remote = config("openai_moderation", &url);
    remote.model = "omni-moderation-latest".to_owned();
    let moderation = OpenAiModeration::new(remote).unwrap();
    let findings = moderation
        .classify(&conversation("a MARKER request"), Target::User)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].score, 0.93);
    assert_eq!(
        findings[0].source.entry_id.as_deref(),
        Some("sexual/minors")
    );
    assert_eq!(findings[0].spans[0].turn, Some(3));
    let requests = fake.requests.lock().unwrap();
    let body = &requests[0].1;
    assert_eq!(body["model"], "omni-moderation-latest");
    // Only the user turns are judged, one input each.
    assert_eq!(body["input"], json!(["hello there", "a MARKER request"]));
    assert_eq!(requests[0].0["authorization"], "Bearer test-key");
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let fake = Fake::new(vec![Fault::Status(503), Fault::Status(500), Fault::Ok]);
    let url = serve(fake.clone()).await;
    let guard = LlamaGuard::new(config("llama_guard", &url), LlamaGuardTemplate::Server).unwrap();
    let findings = guard
        .classify(&conversation("MARKER"), Target::User)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1);
    let counters = guard.counters();
    assert_eq!(
        (counters.attempts, counters.retries, counters.failures),
        (3, 2, 0)
    );
}

#[tokio::test]
async fn persistent_failures_are_errors_that_name_the_classifier_not_the_text() {
    let fake = Fake::new(vec![Fault::Status(502)]);
    let url = serve(fake.clone()).await;
    let guard = LlamaGuard::new(config("llama_guard", &url), LlamaGuardTemplate::Server).unwrap();
    let err = guard
        .classify(&conversation("secret MARKER words"), Target::User)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "classifier llama_guard: http 502 (after 3 attempts)"
    );
    assert_eq!(guard.counters().failures, 1);

    // 4xx is a configuration problem: not retried.
    let fake = Fake::new(vec![Fault::Status(401)]);
    let url = serve(fake.clone()).await;
    let guard = LlamaGuard::new(config("llama_guard", &url), LlamaGuardTemplate::Server).unwrap();
    let err = guard
        .classify(&conversation("x"), Target::User)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "classifier llama_guard: http 401");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn timeouts_are_counted_and_retried() {
    let fake = Fake::new(vec![Fault::Sleep(2_000)]);
    let url = serve(fake.clone()).await;
    let mut remote = config("openai_moderation", &url);
    remote.retries = 1;
    let moderation = OpenAiModeration::new(remote).unwrap();
    let err = moderation
        .classify(&conversation("x"), Target::User)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "classifier openai_moderation: timeout (after 2 attempts)"
    );
    let counters = moderation.counters();
    assert_eq!(
        (counters.timeouts, counters.attempts, counters.failures),
        (2, 2, 1)
    );
}

#[tokio::test]
async fn garbage_responses_are_errors() {
    let fake = Fake::new(vec![Fault::Garbage]);
    let url = serve(fake.clone()).await;
    let guard = LlamaGuard::new(config("llama_guard", &url), LlamaGuardTemplate::Server).unwrap();
    let err = guard
        .classify(&conversation("x"), Target::User)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("classifier llama_guard: response: expected JSON"),
        "{err}"
    );
    assert!(!err.to_string().contains("html"), "{err}");
}

#[tokio::test]
async fn bad_urls_are_config_errors() {
    let err = LlamaGuard::new(
        RemoteConfig::new("lg", "not a url", "m"),
        LlamaGuardTemplate::Server,
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .starts_with("classifier lg: config: base_url: expected an http(s) URL"),
        "{err}"
    );
    assert!(!format!("{:?}", config("x", "http://127.0.0.1:1/v1")).contains("test-key"));
}
