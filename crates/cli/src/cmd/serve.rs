//! `childsafe serve`: run the safety gateway, from a config file or on the
//! embedded demo defaults (`--demo`: an in-process echo upstream that speaks
//! both protocols and records in an SQLite file in the temp directory, so
//! the README's first command shows it working with no setup).
//!
//! Records (incidents, cases, strikes, sanctions, reports, appeals, rollout
//! state, the audit log) go to the store at `[store] url`: an SQLite file,
//! or PostgreSQL shared by several replicas.

use std::{io::Read, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use childsafe_gateway::{
    config::{GatewayConfig, hash_secret},
    engine::EngineInspector,
    ledger::Ledger,
    state::AppState,
    store_ledger::StoreLedger,
    testing::FakeUpstream,
};

use crate::{Global, exit};

/// Run the safety gateway in front of OpenAI- and Anthropic-style model APIs.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Gateway config file (TOML; every key is documented in examples/gateway.toml).
    #[arg(long, value_name = "FILE", conflicts_with = "demo", required_unless_present_any = ["demo", "hash_key"])]
    config: Option<PathBuf>,
    /// Start on embedded defaults: the built-in detectors, the banks under --banks, an in-process echo model, records in childsafe-demo.db in the temp directory, open access.
    #[arg(long)]
    demo: bool,
    /// Address to listen on, overriding the config. Default: 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Log format: text or json. Default: text.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Print the SHA-256 of a key or token read from stdin (for `api_key_sha256`) and exit.
    #[arg(long)]
    hash_key: bool,
}

pub(crate) fn run(global: &Global, args: Args) -> anyhow::Result<u8> {
    if args.hash_key {
        let mut secret = String::new();
        std::io::stdin()
            .read_to_string(&mut secret)
            .context("reading the key from stdin")?;
        println!("{}", hash_secret(secret.trim_end_matches(['\n', '\r'])));
        return Ok(exit::OK);
    }
    init_logging(&args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, &global.banks))?;
    Ok(exit::OK)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHILDSAFE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: Args, banks_dir: &std::path::Path) -> anyhow::Result<()> {
    let (mut config, demo_token) = if args.demo {
        let fake = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the demo echo upstream")?;
        let fake_addr = fake.local_addr().context("demo echo upstream address")?;
        tokio::spawn(FakeUpstream::not_recording().serve(fake));
        let db = std::env::temp_dir().join("childsafe-demo.db");
        let config = GatewayConfig::from_toml(&format!(
            "[upstreams.openai]\nbase_url = \"http://{fake_addr}\"\n[upstreams.anthropic]\nbase_url = \"http://{fake_addr}\"\n[store]\nurl = {:?}\n",
            format!("sqlite://{}", db.display())
        ))?;
        eprintln!(
            "childsafe: demo mode: echo model at http://{fake_addr}, records in {}, no API key needed",
            db.display()
        );
        (config, Some(hex_token()))
    } else {
        let path = args
            .config
            .clone()
            .context("--config FILE or --demo is required")?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading gateway config {}", path.display()))?;
        let config = GatewayConfig::from_toml(&text).with_context(|| path.display().to_string())?;
        (config, None)
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let listen = config.listen;
    // The URL may hold a password: errors and logs name the backend, never the URL.
    let store = childsafe_store::Store::open(&config.store.url)
        .await
        .context("opening the store ([store] url)")?;
    eprintln!("childsafe: records in the {:?} store", store.backend());
    let ledger = StoreLedger::new(store);
    if let Some(token) = &demo_token {
        ledger
            .add_admin_token(&hash_secret(token), "demo")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!("childsafe: demo admin token (this run only): {token}");
    } else if let Ok(token) = std::env::var(&config.admin.token_env)
        && !token.is_empty()
    {
        ledger
            .add_admin_token(&hash_secret(&token), "env")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let inspector = EngineInspector::from_config(&config, Some(banks_dir))?;
    let factory = EngineInspector::factory(&config, Some(banks_dir));
    let vault = open_vault(&config)?;
    let state = AppState::new(
        config,
        Arc::new(inspector),
        Some(factory),
        Arc::new(ledger),
        vault,
    )?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!(
        "childsafe: gateway listening on http://{}",
        listener.local_addr().context("local address")?
    );
    spawn_reload_on_sighup(state.clone());
    childsafe_gateway::serve(state, listener, shutdown_signal()).await?;
    eprintln!("childsafe: gateway stopped");
    Ok(())
}

/// The evidence vault named in config, if any; its master key comes from
/// `vault.key_file` or the `vault.key_env` variable (default `CHILDSAFE_VAULT_KEY`).
fn open_vault(config: &GatewayConfig) -> anyhow::Result<Option<childsafe_vault::Vault>> {
    let Some(dir) = &config.vault.dir else {
        return Ok(None);
    };
    let keys = match &config.vault.key_file {
        Some(path) => childsafe_vault::Keyring::from_file(path)
            .with_context(|| format!("vault key {}", path.display()))?,
        None => {
            let var = config
                .vault
                .key_env
                .as_deref()
                .unwrap_or("CHILDSAFE_VAULT_KEY");
            childsafe_vault::Keyring::from_env(var)
                .with_context(|| format!("vault key from ${var}"))?
        }
    };
    let vault = childsafe_vault::Vault::open_dir(dir, keys)
        .with_context(|| format!("opening vault {}", dir.display()))?;
    Ok(Some(vault))
}

/// A random admin token for the demo: 32 hex characters.
fn hex_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests and streams in flight");
}

fn spawn_reload_on_sighup(state: AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangup.recv().await.is_some() {
            match state.reload() {
                Ok(true) => tracing::info!("reloaded banks and lists"),
                Ok(false) => tracing::info!("nothing to reload"),
                Err(e) => {
                    tracing::error!(error = %e, "reload failed; keeping the current banks and lists")
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = state;
}
