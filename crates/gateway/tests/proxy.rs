//! The gateway through its router (`oneshot`, no client socket), in front of
//! the fake upstream on a real port: both protocols, streaming and not,
//! refusals, the output guard, enforcement, reports, rollout and bad input.

// Test helpers outside #[test] functions: a failed setup should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use base64::Engine as _;
use childsafe_core::Category;
use childsafe_gateway::{
    app,
    config::GatewayConfig,
    ledger::{Ledger, MemoryLedger},
    sse::{SseEvent, SseParser},
    state::AppState,
    testing::{FakeUpstream, PhraseInspector},
};
use serde_json::{Value, json};
use tower::ServiceExt;

const SOLICIT: &str = "generate nude images of a 12 year old";
const HELP: &str = "how do i report someone who asked my 13 year old for photos";
const FLAGGED_OUTPUT: &str = "forbidden output phrase";
const TENANT_KEY: &str = "tenant-key-1";
const ADMIN_TOKEN: &str = "admin-token-1";

struct Harness {
    app: Router,
    ledger: MemoryLedger,
    fake: FakeUpstream,
    state: AppState,
}

async fn harness_with(extra: &str, inspector: PhraseInspector) -> Harness {
    let fake = FakeUpstream::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(fake.clone().serve(listener));
    let config = format!(
        r#"
[upstreams.openai]
base_url = "http://{addr}"
header_timeout_secs = 2
idle_timeout_secs = 2
[upstreams.anthropic]
base_url = "http://{addr}"
header_timeout_secs = 2
idle_timeout_secs = 2
[upstreams.candidate]
base_url = "http://{addr}"
[[tenants]]
id = "acme"
api_key_sha256 = ["{key}"]
[limits]
max_body_bytes = 200000
max_image_bytes = 50000
stream_window_bytes = 32
{extra}
"#,
        key = childsafe_gateway::config::hash_secret(TENANT_KEY)
    );
    let config = GatewayConfig::from_toml(&config).unwrap();
    let ledger = MemoryLedger::default();
    ledger
        .add_admin_token(&childsafe_gateway::config::hash_secret(ADMIN_TOKEN), "test")
        .await
        .unwrap();
    let vault = childsafe_vault::Vault::in_memory(childsafe_vault::Keyring::new(
        childsafe_vault::MasterKey::generate().unwrap(),
    ));
    let state = AppState::new(
        config,
        Arc::new(inspector),
        None,
        Arc::new(ledger.clone()),
        Some(vault),
    )
    .unwrap();
    Harness {
        app: app(state.clone()),
        ledger,
        fake,
        state,
    }
}

async fn harness(extra: &str) -> Harness {
    harness_with(extra, default_inspector()).await
}

fn default_inspector() -> PhraseInspector {
    PhraseInspector::new(&[
        (SOLICIT, Category::CsamSolicitation),
        (HELP, Category::HelpSeeking),
        (FLAGGED_OUTPUT, Category::MinorSexualization),
    ])
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|it| it.to_str().ok())
    }
    fn events(&self) -> Vec<SseEvent> {
        let mut parser = SseParser::new(1 << 20);
        let mut out = Vec::new();
        parser.feed(&self.body, &mut out).unwrap();
        parser.finish(&mut out);
        out
    }
}

async fn send(app: &Router, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    send_raw(app, path, body.to_string().into_bytes(), headers).await
}

async fn send_raw(app: &Router, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    let mut has_auth = false;
    for (name, value) in headers {
        has_auth |= *name == "authorization" || *name == "x-api-key";
        request = request.header(*name, *value);
    }
    if !has_auth {
        request = request.header("authorization", format!("Bearer {TENANT_KEY}"));
    }
    let res = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, path: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let res = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn openai_body(text: &str, stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": text}], "x_unknown": {"kept": [1, 2]}})
}

fn anthropic_body(text: &str, stream: bool) -> Value {
    json!({"model": "claude-test", "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": text}], "x_unknown": true})
}

fn reply_header(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The text an OpenAI stream delivered, and its final finish_reason.
fn openai_stream_text(reply: &Reply) -> (String, Option<String>, Vec<Value>) {
    let mut text = String::new();
    let mut finish = None;
    let mut chunks = Vec::new();
    let events = reply.events();
    assert_eq!(
        events.last().map(|e| e.data.as_str()),
        Some("[DONE]"),
        "stream must end with [DONE]"
    );
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        for choice in chunk["choices"].as_array().unwrap() {
            if let Some(it) = choice.pointer("/delta/content").and_then(Value::as_str) {
                text.push_str(it);
            }
            if let Some(it) = choice["finish_reason"].as_str() {
                finish = Some(it.to_owned());
            }
        }
        chunks.push(chunk);
    }
    (text, finish, chunks)
}

/// The text an Anthropic stream delivered and its stop_reason, checking the event grammar.
fn anthropic_stream_text(reply: &Reply) -> (String, Option<String>, Vec<Value>) {
    let events = reply.events();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.event.as_deref().expect("every event is named"))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    let mut open: Option<u64> = None;
    let mut text = String::new();
    let mut stop = None;
    let mut values = Vec::new();
    for event in &events {
        let value: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(
            value["type"].as_str(),
            event.event.as_deref(),
            "type matches the event name"
        );
        match event.event.as_deref().unwrap() {
            "content_block_start" => {
                assert!(
                    open.is_none(),
                    "block started while another is open: {names:?}"
                );
                open = value["index"].as_u64();
            }
            "content_block_delta" => {
                assert_eq!(open, value["index"].as_u64(), "delta outside its block");
                if let Some(it) = value.pointer("/delta/text").and_then(Value::as_str) {
                    text.push_str(it);
                }
            }
            "content_block_stop" => {
                assert_eq!(open, value["index"].as_u64());
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta with a block open");
                stop = value
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            _ => {}
        }
        values.push(value);
    }
    (text, stop, values)
}

#[tokio::test]
async fn allowed_requests_pass_through_untouched_in_both_protocols() {
    let h = harness("").await;
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("hello there", false),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("x-childsafe-request-id")
            .unwrap()
            .starts_with("req_")
    );
    let body = reply.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: hello there"
    );
    assert_eq!(
        body["system_fingerprint"], "fp_fake",
        "upstream fields kept"
    );
    assert!(body.get("childsafe").is_none());

    let reply = send(&h.app, "/v1/messages", anthropic_body("hi", false), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["content"][0]["text"], "echo: hi");

    // Unknown fields reached the upstream exactly as sent.
    let received = h.fake.received();
    assert_eq!(received[0].1["x_unknown"], json!({"kept": [1, 2]}));
    assert_eq!(received[1].1["x_unknown"], json!(true));
    assert!(h.ledger.incidents().is_empty());
}

#[tokio::test]
async fn allowed_streams_deliver_every_byte_in_order() {
    let h = harness("").await;
    let long = "a calm and ordinary answer about gardening, repeated. ".repeat(5);
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "q"}]}),
        &[("x-fake-reply", &reply_header(&long)), ("x-fake-chunk", "3")],
    )
    .await;
    let (text, finish, chunks) = openai_stream_text(&reply);
    assert_eq!(text, long);
    assert_eq!(finish.as_deref(), Some("stop"));
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .is_some(),
        "usage chunk kept"
    );

    let reply = send(
        &h.app,
        "/v1/messages",
        anthropic_body("q", true),
        &[("x-fake-reply", &reply_header(&long))],
    )
    .await;
    let (text, stop, _) = anthropic_stream_text(&reply);
    assert_eq!(text, long);
    assert_eq!(stop.as_deref(), Some("end_turn"));
}

#[tokio::test]
async fn solicitation_is_refused_with_prevention_message_in_protocol_shape() {
    let h = harness("").await;
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body(SOLICIT, false),
        &[("x-childsafe-user", "u1")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("x-childsafe-category"),
        Some("csam_solicitation")
    );
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.contains("illegal") && text.contains("Stop It Now"),
        "{text}"
    );
    assert_eq!(body["childsafe"]["category"], "csam_solicitation");
    assert_eq!(body["childsafe"]["message"], "prevention");
    assert_eq!(
        body["childsafe"]["request_id"],
        reply.header("x-childsafe-request-id").unwrap()
    );
    assert!(
        h.fake.received().is_empty(),
        "refused input never reaches the model"
    );

    // Anthropic, streaming, in German.
    let reply = send(
        &h.app,
        "/v1/messages",
        anthropic_body(SOLICIT, true),
        &[("accept-language", "de-DE,de;q=0.9")],
    )
    .await;
    assert_eq!(
        reply.header("x-childsafe-category"),
        Some("csam_solicitation")
    );
    let (text, stop, values) = anthropic_stream_text(&reply);
    assert_eq!(stop.as_deref(), Some("refusal"));
    assert!(text.contains("Kein Täter werden"), "{text}");
    let delta = values
        .iter()
        .find(|v| v["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["childsafe"]["category"], "csam_solicitation");

    let incidents = h.ledger.incidents();
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0].categories, [Category::CsamSolicitation]);
    assert_eq!(incidents[0].user.as_deref(), Some("u1"));
    assert!(
        incidents[0]
            .text_sha256
            .as_ref()
            .is_some_and(|it| it.len() == 64)
    );
    // Incidents never carry the text.
    assert!(!serde_json::to_string(&incidents).unwrap().contains("nude"));
}

#[tokio::test]
async fn flagged_streamed_output_is_never_delivered() {
    for chunk in ["1", "2", "5", "13"] {
        let h = harness("").await;
        let before = "Here is a perfectly fine beginning of an answer that goes on for a while. ";
        let reply_text = format!("{before}{FLAGGED_OUTPUT} and more text after it");
        let reply = send(
            &h.app,
            "/v1/chat/completions",
            openai_body("tell me a story", true),
            &[
                ("x-fake-reply", &reply_header(&reply_text)),
                ("x-fake-chunk", chunk),
            ],
        )
        .await;
        let (text, finish, chunks) = openai_stream_text(&reply);
        assert!(
            !text.contains("forbidden"),
            "chunk {chunk}: flagged text delivered: {text}"
        );
        assert!(
            before.starts_with(text.split("\n\n").next().unwrap()),
            "chunk {chunk}"
        );
        assert_eq!(finish.as_deref(), Some("content_filter"));
        let last = chunks
            .iter()
            .rev()
            .find(|c| c.get("childsafe").is_some())
            .unwrap();
        assert_eq!(last["childsafe"]["surface"], "output");
        let incidents = h.ledger.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].surface, childsafe_core::Surface::Output);

        let reply = send(
            &h.app,
            "/v1/messages",
            anthropic_body("tell me a story", true),
            &[
                ("x-fake-reply", &reply_header(&reply_text)),
                ("x-fake-chunk", chunk),
            ],
        )
        .await;
        let (text, stop, _) = anthropic_stream_text(&reply);
        assert!(
            !text.contains("forbidden"),
            "chunk {chunk}: flagged text delivered: {text}"
        );
        assert_eq!(stop.as_deref(), Some("refusal"));
    }
}

#[tokio::test]
async fn flagged_whole_output_is_replaced() {
    let h = harness("").await;
    let reply = send(
        &h.app,
        "/v1/messages",
        anthropic_body("q", false),
        &[("x-fake-reply", &reply_header(FLAGGED_OUTPUT))],
    )
    .await;
    let body = reply.json();
    assert_eq!(body["stop_reason"], "refusal");
    assert_eq!(body["id"], "msg_fake0001", "id kept from the upstream");
    assert!(!reply.body.windows(9).any(|w| w == b"forbidden"));
    assert_eq!(
        reply.header("x-childsafe-category"),
        Some("minor_sexualization")
    );
}

#[tokio::test]
async fn help_seeking_is_answered_with_resources() {
    let h = harness("").await;
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body(HELP, false),
        &[("x-childsafe-user", "parent")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-childsafe-resources"), Some("support"));
    let body = reply.json();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("echo: "), "the model still answers");
    assert!(
        text.contains("CyberTipline") && text.contains("Take It Down"),
        "{text}"
    );
    assert_eq!(body["childsafe"]["message"], "support");

    let reply = send(&h.app, "/v1/messages", anthropic_body(HELP, true), &[]).await;
    let (text, stop, _) = anthropic_stream_text(&reply);
    assert_eq!(stop.as_deref(), Some("end_turn"));
    assert!(text.contains("Childhelp"), "{text}");
    // Help-seeking is never punished: no incident, no strike.
    assert!(h.ledger.incidents().is_empty());
    assert!(
        h.ledger
            .active_sanctions(time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn strike_ladder_suspends_then_appeal_and_admin_lift_it() {
    let h = harness("").await;
    let user = [("x-childsafe-user", "repeat")];
    for _ in 0..2 {
        let reply = send(
            &h.app,
            "/v1/chat/completions",
            openai_body(SOLICIT, false),
            &user,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    // Two strikes: suspended for 24 h.
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("hello", false),
        &user,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("suspended until") && message.contains("/v1/appeals"),
        "{message}"
    );
    let reply = send(
        &h.app,
        "/v1/messages",
        anthropic_body("hello", false),
        &user,
    )
    .await;
    assert_eq!(reply.json()["error"]["type"], "permission_error");

    let reply = send(
        &h.app,
        "/v1/appeals",
        json!({"statement": "this was a mistake"}),
        &user,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let appeal_id = reply.json()["appeal_id"].as_str().unwrap().to_owned();

    assert_eq!(
        get(&h.app, "/admin/appeals", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&h.app, "/admin/appeals", Some("wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let list = get(&h.app, "/admin/appeals?status=pending", Some(ADMIN_TOKEN))
        .await
        .json();
    assert_eq!(list["appeals"][0]["id"], appeal_id.as_str());
    let reply = send(
        &h.app,
        &format!("/admin/appeals/{appeal_id}/decide"),
        json!({"decision": "grant", "note": "first offence"}),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await;
    assert_eq!(reply.json()["lifted"], true);
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("hello", false),
        &user,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    let audit = get(&h.app, "/admin/audit", Some(ADMIN_TOKEN)).await.json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"sanction.apply")
            && actions.contains(&"appeal.file")
            && actions.contains(&"appeal.granted"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn known_image_is_preserved_banned_and_opens_a_case() {
    let image = b"\x89PNG benign stand-in for a listed image".to_vec();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&image));
    let h = harness_with(
        "",
        default_inspector().with_known_images(std::slice::from_ref(&sha)),
    )
    .await;
    let data = base64::engine::general_purpose::STANDARD.encode(&image);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}}
    ]}]});
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        body,
        &[("x-childsafe-user", "u-img")],
    )
    .await;
    assert_eq!(reply.header("x-childsafe-category"), Some("csam_known"));
    let incident = &h.ledger.incidents()[0];
    assert_eq!(incident.images[0].hashes.sha256.to_string(), sha);
    assert!(
        incident.images[0].preserved.is_some(),
        "preserved in the vault"
    );
    let vault = h.state.vault.as_ref().unwrap();
    assert_eq!(vault.list().unwrap().len(), 1);
    assert_eq!(h.ledger.cases()[0].categories, [Category::CsamKnown]);
    // Immediate ban.
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("hello", false),
        &[("x-childsafe-user", "u-img")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("permanently")
    );
}

#[tokio::test]
async fn bad_input_gets_protocol_shaped_errors() {
    let h = harness("").await;
    let reply = send_raw(
        &h.app,
        "/v1/chat/completions",
        b"{\"messages\": [".to_vec(),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("body:1:14: expected JSON")
    );
    let reply = send_raw(&h.app, "/v1/messages", b"nope".to_vec(), &[]).await;
    assert_eq!(reply.json()["type"], "error");
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    assert!(
        reply.json()["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );

    let reply = send_raw(&h.app, "/v1/chat/completions", vec![b' '; 300_000], &[]).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%%"}}]}]});
    let reply = send(&h.app, "/v1/messages", body, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messages[0].content[0].source.data: expected base64")
    );

    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("x", false),
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"]["code"], "invalid_api_key");

    let reply = send(&h.app, "/v1/embeddings", json!({}), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn upstream_failures_become_clear_errors() {
    let h = harness("").await;
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("x", false),
        &[("x-fake-fault", "500")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        reply.json()["error"]["message"],
        "the model API failed with status 500"
    );

    let reply = send(
        &h.app,
        "/v1/messages",
        anthropic_body("x", false),
        &[("x-fake-fault", "hang")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.json()["error"]["type"], "timeout_error");

    // A stream that breaks: an error event the SDKs raise.
    let reply = send(
        &h.app,
        "/v1/messages",
        anthropic_body("x", true),
        &[("x-fake-fault", "reset")],
    )
    .await;
    let events = reply.events();
    assert_eq!(events.last().unwrap().event.as_deref(), Some("error"));
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("x", true),
        &[("x-fake-fault", "truncate")],
    )
    .await;
    let events = reply.events();
    let last: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(last["error"]["type"], "server_error");
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("x", true),
        &[("x-fake-fault", "stall")],
    )
    .await;
    let last: Value = serde_json::from_str(&reply.events().last().unwrap().data).unwrap();
    assert_eq!(last["error"]["message"], "the model API stopped sending");
}

#[tokio::test]
async fn incidents_survive_a_brief_store_outage_and_fail_closed_otherwise() {
    let h = harness("").await;
    h.ledger.fail_next_writes(2);
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body(SOLICIT, false),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        h.ledger.incidents().len(),
        1,
        "recorded on the third attempt"
    );

    h.ledger.fail_next_writes(10);
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body(SOLICIT, false),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(h.fake.received().is_empty(), "never forwarded");
}

#[tokio::test]
async fn a_failed_required_detector_fails_closed() {
    let mut inspector = default_inspector();
    inspector.fail_input = true;
    let h = harness_with("", inspector).await;
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("hello", false),
        &[],
    )
    .await;
    assert_eq!(
        reply.json()["choices"][0]["finish_reason"],
        "content_filter"
    );
    assert!(h.fake.received().is_empty());
    let metrics = get(&h.app, "/metrics", None).await;
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("childsafe_gateway_detector_failures_total"),
        "{text}"
    );
    assert!(!text.contains("acme"), "no tenant ids in metric labels");
}

#[tokio::test]
async fn reports_open_cases_and_are_rate_limited() {
    let h = harness("[reports]\nper_reporter_per_hour = 2\n").await;
    let refused = send(
        &h.app,
        "/v1/chat/completions",
        openai_body(SOLICIT, false),
        &[],
    )
    .await;
    let request_id = refused.header("x-childsafe-request-id").unwrap().to_owned();
    let reporter = [("x-childsafe-user", "reporter-1")];
    let reply = send(&h.app, "/v1/reports", json!({"request_id": request_id, "reason": "csam_solicitation", "comment": "this looked wrong"}), &reporter).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert!(body["report_id"].as_str().unwrap().starts_with("rep_"));
    let reply = send(
        &h.app,
        "/v1/reports",
        json!({"content": format!("it said: {SOLICIT}"), "reason": "other"}),
        &reporter,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["categories"], json!(["csam_solicitation"]));
    let reply = send(
        &h.app,
        "/v1/reports",
        json!({"content": "x", "reason": "other"}),
        &reporter,
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);

    let reports = h.ledger.reports();
    assert_eq!(reports[0].comment.as_deref(), Some("this looked wrong"));
    assert!(reports[1].content_hashes.is_some());
    assert!(
        !serde_json::to_string(&reports).unwrap().contains("nude"),
        "pasted content is never stored"
    );
    assert!(h.ledger.cases().iter().any(|c| c.origin == "user_report"));

    let reply = send(
        &h.app,
        "/v1/reports",
        json!({"reason": "weird"}),
        &[("x-childsafe-user", "r2")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rollout_halts_on_abuse_rate_and_admin_can_promote_and_resume() {
    let rollout = r#"
[rollout]
protocol = "openai"
candidate_upstream = "candidate"
stages = [{ name = "canary", percent = 100.0 }, { name = "all", percent = 100.0 }]
min_requests = 4
thresholds = { any = 100.0 }
on_halt = "unavailable"
"#;
    let h = harness(rollout).await;
    for idx in 0..4 {
        let text = if idx == 0 { SOLICIT } else { "hello" };
        send(
            &h.app,
            "/v1/chat/completions",
            openai_body(text, false),
            &[("x-childsafe-user", &format!("u{idx}"))],
        )
        .await;
    }
    let rollout = h.state.rollout.as_ref().unwrap();
    rollout.sync(&h.state).await;
    // 1 incident in 4 requests = 250 per 1000 > 100: halted.
    assert!(rollout.current().halted);
    let reply = send(
        &h.app,
        "/v1/chat/completions",
        openai_body("hello", false),
        &[("x-childsafe-user", "u9")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // Anthropic is not part of this rollout.
    let reply = send(
        &h.app,
        "/v1/messages",
        anthropic_body("hello", false),
        &[("x-childsafe-user", "u9")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    let admin = [("authorization", &*format!("Bearer {ADMIN_TOKEN}"))];
    let reply = send(&h.app, "/admin/rollout/promote", json!({}), &admin).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "cannot promote a halted stage"
    );
    let reply = send(&h.app, "/admin/rollout/resume", json!({}), &admin).await;
    assert_eq!(reply.json()["state"]["halted"], false);
    let reply = send(&h.app, "/admin/rollout/promote", json!({}), &admin).await;
    assert_eq!(reply.json()["state"]["stage"], 1);
    let status = get(&h.app, "/admin/rollout", Some(ADMIN_TOKEN))
        .await
        .json();
    assert_eq!(status["stages"][0]["requests"], 4);
    let audit = h.ledger.audit_log().await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.starts_with(&["rollout.halt"]) || actions.contains(&"rollout.halt"),
        "{actions:?}"
    );
    assert!(actions.contains(&"rollout.resume") && actions.contains(&"rollout.promote"));
}

#[tokio::test]
async fn health_readiness_and_other_paths() {
    let h = harness("[proxy]\nother_paths = \"pass\"\n").await;
    assert_eq!(get(&h.app, "/healthz", None).await.status, StatusCode::OK);
    assert_eq!(get(&h.app, "/readyz", None).await.status, StatusCode::OK);
    let mut request = Request::builder()
        .uri("/v1/models")
        .header("authorization", format!("Bearer {TENANT_KEY}"));
    request = request.method("GET");
    let res = h
        .app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("fake-model"));
}
