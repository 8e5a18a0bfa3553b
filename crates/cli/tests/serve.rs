//! `childsafe serve --demo` through the binary: the README's first run. It
//! starts, answers the three curl examples (allowed, refused, help-seeking)
//! as documented, never logs the prompts, and stops cleanly on SIGTERM.

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
