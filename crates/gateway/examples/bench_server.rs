//! The benchmark's servers, one per process so that the gateway's resident
//! memory and CPU are its own:
//!
//! - `bench_server upstream PORT`: the fake model API (not recording what
//!   it receives, so its memory stays flat under load);
//! - `bench_server gateway UPSTREAM_PORT PORT`: the gateway with the real
//!   engine (built-in detectors) in front of it, records in the in-memory
//!   ledger, logs off so the numbers measure the proxy;
//! - `bench_server load URL BODY_FILE CONNECTIONS RATE SECONDS`: an
//!   open-loop load at a fixed rate (requests per second) over at most
//!   CONNECTIONS connections, POSTing the JSON in BODY_FILE; prints one JSON
//!   line with the latency percentiles. A request sent late because its
//!   connection was still waiting for the previous answer counts from when
//!   it was due, so a stalled server cannot hide its queueing (what wrk2
//!   calls coordinated omission). wrk measures the
//!   saturated rate; this measures latency at a rate both paths sustain.
//!
//! Every address is 127.0.0.1. `bench/gateway.sh` starts all three.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use childsafe_gateway::{
    config::GatewayConfig, engine::EngineInspector, ledger::MemoryLedger, state::AppState,
    testing::FakeUpstream,
};

const USAGE: &str = "usage: bench_server upstream PORT | bench_server gateway UPSTREAM_PORT PORT \
                     | bench_server load URL BODY_FILE CONNECTIONS RATE SECONDS";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = |i: usize| -> Result<u16, Box<dyn std::error::Error>> {
        Ok(args.get(i).ok_or(USAGE)?.parse()?)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("upstream") => {
            let port = port(1)?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
                FakeUpstream::not_recording().serve(listener).await?;
                Ok(())
            })
        }
        Some("gateway") => {
            let (upstream_port, port) = (port(1)?, port(2)?);
            runtime.block_on(gateway(upstream_port, port))
        }
        Some("load") => {
            let arg = |i: usize| args.get(i).ok_or(USAGE);
            let body = std::fs::read(arg(2)?)?;
            let load = Load {
                url: arg(1)?.clone(),
                body: body.into(),
                connections: arg(3)?.parse()?,
                rate: arg(4)?.parse()?,
                duration: std::time::Duration::from_secs_f64(arg(5)?.parse()?),
            };
            let report = runtime.block_on(load.run())?;
            println!("{report}");
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

/// An open-loop load.
struct Load {
    url: String,
    body: bytes::Bytes,
    connections: usize,
    /// Requests per second.
    rate: f64,
    duration: std::time::Duration,
}

impl Load {
    async fn run(self) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        use std::sync::atomic::{AtomicU64, Ordering};
        // reqwest is built without a default TLS provider (DEPENDENCIES.md).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(self.connections)
            .build()?;
        let total = (self.rate * self.duration.as_secs_f64()) as u64;
        let next = Arc::new(AtomicU64::new(0));
        let start = tokio::time::Instant::now();
        let interval = std::time::Duration::from_secs_f64(1.0 / self.rate);
        let load = Arc::new(self);
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..load.connections {
            let (client, next, load) = (client.clone(), next.clone(), load.clone());
            workers.spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let due = start + interval.mul_f64(i as f64);
                    // On schedule: count from the send (the timer's
                    // millisecond lateness is ours, not the server's).
                    // Behind schedule, because this connection was still
                    // waiting for its last answer: count from when it was due.
                    let sent = if tokio::time::Instant::now() < due {
                        tokio::time::sleep_until(due).await;
                        tokio::time::Instant::now()
                    } else {
                        due
                    };
                    let res = client
                        .post(&load.url)
                        .header("content-type", "application/json")
                        .body(load.body.clone())
                        .send()
                        .await;
                    let ok = match res {
                        Ok(res) => res.status().is_success() && res.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(sent.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            });
        }
        let (mut latencies, mut errors) = (Vec::new(), 0);
        while let Some(done) = workers.join_next().await {
            let (l, e) = done?;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = start.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return f64::NAN;
            }
            let idx = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[idx] as f64 / 1000.0
        };
        Ok(serde_json::json!({
            "url": load.url,
            "connections": load.connections,
            "rate": load.rate,
            "ok": latencies.len(),
            "errors": errors,
            "achieved_rps": latencies.len() as f64 / elapsed,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": pct(1.0),
        }))
    }
}

async fn gateway(upstream_port: u16, port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let config = GatewayConfig::from_toml(&format!(
        "[upstreams.openai]\nbase_url = \"http://127.0.0.1:{upstream_port}\"\n\
         [upstreams.anthropic]\nbase_url = \"http://127.0.0.1:{upstream_port}\"\n"
    ))?;
    let inspector = EngineInspector::from_files(None, None)?;
    let state = AppState::new(
        config,
        Arc::new(inspector),
        None,
        Arc::new(MemoryLedger::default()),
        None,
    )?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    childsafe_gateway::serve(state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
