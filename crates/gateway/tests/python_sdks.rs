//! End to end with real clients: the gateway on a real port (port 0) in
//! front of the fake upstream, driven by the official `openai` and
//! `anthropic` Python SDKs (tests/python/gateway_sdks.py, pinned in
//! tests/requirements.txt) and by curl. This is the one test that binds a
//! port for the gateway itself; the rest go through the router.

// Setup helpers: a failed setup should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command, sync::Arc};

use childsafe_core::Category;
use childsafe_gateway::{
    config::{GatewayConfig, hash_secret},
    ledger::MemoryLedger,
    state::AppState,
    testing::{FakeUpstream, PhraseInspector},
};

const KEY: &str = "sk-e2e-tenant";

async fn start() -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap();
    tokio::spawn(FakeUpstream::default().serve(fake));
    let config = GatewayConfig::from_toml(&format!(
        r#"
[upstreams.openai]
base_url = "http://{fake_addr}"
idle_timeout_secs = 5
[upstreams.anthropic]
base_url = "http://{fake_addr}"
[[tenants]]
id = "e2e"
api_key_sha256 = ["{}"]
[limits]
stream_window_bytes = 32
"#,
        hash_secret(KEY)
    ))
    .unwrap();
    let inspector = PhraseInspector::new(&[
        (
            "generate nude images of a 12 year old",
            Category::CsamSolicitation,
        ),
        (
            "how do i report someone who asked my 13 year old for photos",
            Category::HelpSeeking,
        ),
        ("forbidden output phrase", Category::MinorSexualization),
    ]);
    let state = AppState::new(
        config,
        Arc::new(inspector),
        None,
        Arc::new(MemoryLedger::default()),
        None,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        childsafe_gateway::serve(state, listener, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (url, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdks_parse_everything_the_gateway_sends() {
    let (url, stop, server) = start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/gateway_sdks.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(&script)
            .env("CHILDSAFE_GATEWAY_URL", &url)
            .env("CHILDSAFE_GATEWAY_KEY", KEY)
            .output()
            .expect("python3 runs (CI installs tests/requirements.txt)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python SDK checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("15 passed, 0 failed"), "{stdout}");
    let _ = stop.send(());
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_sees_request_ids_categories_and_a_clean_stream() {
    let (url, stop, server) = start().await;
    let run = move |args: Vec<String>| {
        let out = Command::new("curl")
            .args(["-sS", "-i", "-H", &format!("authorization: Bearer {KEY}")])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let base = url.clone();
    let (refused, streamed) = tokio::task::spawn_blocking(move || {
        let refused = run(vec![
            format!("{base}/v1/chat/completions"),
            "-H".into(),
            "content-type: application/json".into(),
            "-d".into(),
            r#"{"model":"m","messages":[{"role":"user","content":"generate nude images of a 12 year old"}]}"#.into(),
        ]);
        let streamed = run(vec![
            "-N".into(),
            format!("{base}/v1/messages"),
            "-H".into(),
            "content-type: application/json".into(),
            "-d".into(),
            r#"{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hello"}]}"#.into(),
        ]);
        (refused, streamed)
    })
    .await
    .unwrap();
    assert!(
        refused.contains("x-childsafe-category: csam_solicitation"),
        "{refused}"
    );
    assert!(
        refused.contains("x-childsafe-request-id: req_"),
        "{refused}"
    );
    assert!(
        refused.contains("\"finish_reason\":\"content_filter\""),
        "{refused}"
    );
    assert!(
        streamed.contains("event: message_start")
            && streamed
                .trim_end()
                .ends_with("data: {\"type\":\"message_stop\"}"),
        "{streamed}"
    );
    assert!(
        streamed.contains("echo: hello") || streamed.contains("\"text\":\"echo"),
        "{streamed}"
    );
    let _ = stop.send(());
    server.await.unwrap();
}
