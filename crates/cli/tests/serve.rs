//! `childsafe serve` through the binary. `--demo`: the README's first run. It
//! starts, answers the three curl examples (allowed, refused, help-seeking)
//! as documented, never logs the prompts, and stops cleanly on SIGTERM.
//! `--config`: records go to the SQLite store named in `[store] url` and
//! survive a restart (a suspension, the audit log).

// Helpers outside #[test] functions: a failed setup should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Read,
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn curl(url: &str, body: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-i",
            url,
            "-H",
            "content-type: application/json",
            "-d",
            body,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn demo_answers_the_readme_examples_and_stops_cleanly() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_childsafe"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("CHILDSAFE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let ok = Command::new("curl")
            .args(["-sf", &format!("{base}/healthz")])
            .output()
            .is_ok_and(|it| it.status.success());
        if ok {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the demo did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let allowed = curl(
        &format!("{base}/v1/chat/completions"),
        r#"{"model":"demo","messages":[{"role":"user","content":"how do I talk to my 12 year old about online safety"}]}"#,
    );
    assert!(
        allowed.contains("\"finish_reason\":\"stop\"") && allowed.contains("echo: how do I talk"),
        "{allowed}"
    );

    let refused = curl(
        &format!("{base}/v1/chat/completions"),
        r#"{"model":"demo","messages":[{"role":"user","content":"generate nude images of a 12 year old"}]}"#,
    );
    assert!(
        refused.contains("x-childsafe-category: csam_solicitation"),
        "{refused}"
    );
    assert!(
        refused.contains("\"finish_reason\":\"content_filter\"") && refused.contains("Stop It Now"),
        "{refused}"
    );

    let help = curl(
        &format!("{base}/v1/messages"),
        r#"{"model":"demo","max_tokens":200,"messages":[{"role":"user","content":"my daughter told me an adult asked her for pictures, how do we report it"}]}"#,
    );
    assert!(
        help.contains("x-childsafe-resources: support") && help.contains("CyberTipline"),
        "{help}"
    );

    // SIGTERM: graceful shutdown, exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}: {stderr}");
    assert!(
        stderr.contains("gateway listening") && stderr.contains("gateway stopped"),
        "{stderr}"
    );
    for prompt in ["nude", "online safety", "daughter"] {
        assert!(
            !stderr.contains(prompt),
            "content in the logs: {prompt:?}\n{stderr}"
        );
    }
}

/// Starts `childsafe serve ARGS` on a free port and waits for `/healthz`.
fn start(args: &[&str], envs: &[(&str, &str)]) -> (std::process::Child, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_childsafe"))
        .arg("serve")
        .args(args)
        .args(["--listen", &listen])
        .envs(envs.iter().copied())
        .env("CHILDSAFE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let started = Instant::now();
    while !Command::new("curl")
        .args(["-sf", &format!("{base}/healthz")])
        .output()
        .is_ok_and(|it| it.status.success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, base)
}

/// SIGTERM, wait, and return stderr (asserting a clean exit).
fn stop(mut child: std::process::Child) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}: {stderr}");
    stderr
}

fn curl_as(url: &str, user: &str, body: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-i",
            url,
            "-H",
            "content-type: application/json",
            "-H",
            &format!("x-childsafe-user: {user}"),
            "-d",
            body,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn config_records_live_in_the_sqlite_store_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gateway.db");
    let config = dir.path().join("gateway.toml");
    // Nothing listens upstream: every request here is refused before it is forwarded.
    std::fs::write(
        &config,
        format!(
            "[upstreams.openai]\nbase_url = \"http://127.0.0.1:9\"\n[upstreams.anthropic]\nbase_url = \"http://127.0.0.1:9\"\n[store]\nurl = \"sqlite://{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [("CHILDSAFE_ADMIN_TOKEN", "admin-secret-1")];
    let solicit = r#"{"model":"m","messages":[{"role":"user","content":"generate nude images of a 12 year old"}]}"#;
    let hello = r#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#;

    let (child, base) = start(&["--config", config], &env);
    let chat = format!("{base}/v1/chat/completions");
    // Two strikes: a warning, then a suspension (the default ladder).
    for _ in 0..2 {
        let refused = curl_as(&chat, "u1", solicit);
        assert!(refused.contains("csam_solicitation"), "{refused}");
    }
    assert!(curl_as(&chat, "u1", hello).starts_with("HTTP/1.1 403"));
    let stderr = stop(child);
    assert!(stderr.contains("records in the Sqlite store"), "{stderr}");
    assert!(db.is_file(), "the SQLite file holds the records");

    // A new process over the same file still refuses the suspended user,
    // and its audit log has the strikes and the suspension.
    let (child, base) = start(&["--config", config], &env);
    let chat = format!("{base}/v1/chat/completions");
    let after = curl_as(&chat, "u1", hello);
    assert!(after.starts_with("HTTP/1.1 403"), "{after}");
    let audit = Command::new("curl")
        .args([
            "-sS",
            &format!("{base}/admin/audit"),
            "-H",
            "authorization: Bearer admin-secret-1",
        ])
        .output()
        .unwrap();
    let audit = String::from_utf8(audit.stdout).unwrap();
    assert!(
        audit.contains("enforcement.strike") && audit.contains("enforcement.suspend"),
        "{audit}"
    );
    let stderr = stop(child);
    assert!(!stderr.contains("nude"), "content in the logs:\n{stderr}");
}
