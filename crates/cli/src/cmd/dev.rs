//! `childsafe dev fake-cybertip`: tools for trying childsafe without outside
//! services. The fake CyberTipline itself is `childsafe_cybertip::fake`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use childsafe_cybertip::{
    client::{Credentials, PASSWORD_ENV, USER_ENV},
    fake::{FakeConfig, FakeServer},
    schema::Schema,
};

use crate::{Global, cmd::case::block_on, exit};

/// Development tools: local stand-ins for outside services.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(clap::Subcommand)]
enum DevCommand {
    /// Run a local fake of NCMEC's CyberTipline Reporting API: the documented
    /// endpoints and codes, XSD validation, the 24 h / 1 h expiry, and fault
    /// injection (POST JSON rules to /_fake/faults; GET /_fake/state).
    /// Point `childsafe report submit --base-url` at the URL it prints.
    FakeCybertip {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8765", value_name = "ADDR")]
        listen: SocketAddr,
        /// The account it accepts. Default: $CHILDSAFE_NCMEC_USER, else "esp".
        #[arg(long)]
        user: Option<String>,
        /// NCMEC's XSD. Default: $CHILDSAFE_NCMEC_XSD, else the shared fixtures copy.
        #[arg(long, value_name = "FILE")]
        xsd: Option<PathBuf>,
        /// Delay before every answer, in milliseconds.
        #[arg(long, default_value_t = 0, value_name = "MS")]
        latency_ms: u64,
    },
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    match args.command {
        DevCommand::FakeCybertip {
            listen,
            user,
            xsd,
            latency_ms,
        } => {
            let path = Schema::locate(xsd.as_deref()).context(
                "no XSD: pass --xsd FILE or set $CHILDSAFE_NCMEC_XSD (NCMEC serves it at GET /xsd)",
            )?;
            let schema = Schema::load(&path)?;
            let user = user
                .or_else(|| std::env::var(USER_ENV).ok())
                .unwrap_or_else(|| "esp".to_owned());
            // The password is never a flag (flags show in the process list).
            let password = std::env::var(PASSWORD_ENV).unwrap_or_else(|_| "esp".to_owned());
            let mut config = FakeConfig::new(
                Credentials {
                    user: user.clone(),
                    password,
                },
                schema,
            );
            config.latency = Duration::from_millis(latency_ms);
            block_on(async move {
                let server = FakeServer::start(config, listen).await?;
                println!(
                    "fake CyberTipline listening on {} (user {user}; password from ${PASSWORD_ENV}, default \"esp\")",
                    server.base_url()
                );
                println!(
                    "  admin: GET http://{}/_fake/state, POST /_fake/faults, POST /_fake/clock/advance?seconds=N",
                    server.addr()
                );
                tokio::select! {
                    () = server.wait() => {}
                    signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
                }
                Ok(exit::OK)
            })
        }
    }
}
