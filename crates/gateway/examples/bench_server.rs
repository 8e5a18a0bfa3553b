//! The benchmark's server: the fake upstream and, in front of it, the
//! gateway with the real engine (built-in detectors), in one process, so
//! `bench/gateway.sh` can load both in the same run and compare.
//!
//! Usage: `bench_server UPSTREAM_PORT GATEWAY_PORT` (127.0.0.1). Records go
//! to the in-memory ledger; logs are off so the numbers measure the proxy.

use std::sync::Arc;

use childsafe_gateway::{
    config::GatewayConfig, engine::EngineInspector, ledger::MemoryLedger, state::AppState,
    testing::FakeUpstream,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let upstream_port: u16 = args
        .next()
        .ok_or("usage: bench_server UPSTREAM_PORT GATEWAY_PORT")?
        .parse()?;
    let gateway_port: u16 = args
        .next()
        .ok_or("usage: bench_server UPSTREAM_PORT GATEWAY_PORT")?
        .parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let upstream = tokio::net::TcpListener::bind(("127.0.0.1", upstream_port)).await?;
        tokio::spawn(FakeUpstream::default().serve(upstream));
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
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", gateway_port)).await?;
        childsafe_gateway::serve(state, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
