//! The childsafe safety gateway: an HTTP service between an application and
//! a model API that checks what goes in and what comes out.
//!
//! It speaks OpenAI Chat Completions (`POST /v1/chat/completions`) and
//! Anthropic Messages (`POST /v1/messages`), streaming and not; refuses in
//! each protocol's own shape with a prevention message (solicitation) or
//! answers with support resources (help-seeking); holds back a window of
//! streamed output so flagged text is never delivered; records incidents,
//! opens cases, applies a strike ladder, takes user reports and appeals,
//! and halts a phased rollout when its abuse rate crosses a threshold.
//!
//! Layout: [`app`] builds the router from an [`AppState`]; each area is a
//! `routes()` function (`proxy`, `reports`, `admin`, `ops`). Detection is the
//! engine's job, reached through the [`inspect::Inspector`] trait; records go
//! through the [`ledger::Ledger`] trait (the store in production).
//!
//! What this crate deliberately does not do: decide what content is (the
//! engine does), or keep content (incidents hold hashes and findings; the
//! evidence vault holds preserved images, encrypted). Logs carry request
//! ids, categories and lengths, never text.
//!
//! ```no_run
//! # async fn run() -> Result<(), childsafe_gateway::error::Error> {
//! use std::sync::Arc;
//! use childsafe_gateway::{app, config::GatewayConfig, ledger::MemoryLedger, state::AppState, testing::PhraseInspector};
//!
//! let config = GatewayConfig::from_toml("[upstreams.openai]\nbase_url = \"http://127.0.0.1:9000\"\n[upstreams.anthropic]\nbase_url = \"http://127.0.0.1:9001\"\n")?;
//! let state = AppState::new(config, Arc::new(PhraseInspector::default()), None, Arc::new(MemoryLedger::default()), None)?;
//! let router = app(state);
//! # let _ = router; Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod admin;
pub mod anthropic;
pub mod config;
pub mod content;
pub mod enforcement;
pub mod engine;
pub mod error;
pub mod inspect;
pub mod ledger;
pub mod messages;
pub mod metrics;
pub mod openai;
pub mod ops;
pub mod proxy;
pub mod reports;
pub mod rollout;
pub mod sse;
pub mod state;
pub mod store_ledger;
pub mod stream_guard;
pub mod testing;
pub mod upstream;

use std::{future::Future, time::Duration};

use axum::{
    Router,
    error_handling::HandleErrorLayer,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    error::{AppError, Error, ErrorKind},
    state::AppState,
};

/// Response header carrying the request id (every response has one).
pub const REQUEST_ID_HEADER: &str = "x-childsafe-request-id";
/// Response header carrying the categories behind a refusal or resources.
pub const CATEGORY_HEADER: &str = "x-childsafe-category";
/// Response header set when support resources were added (`support`).
pub const RESOURCES_HEADER: &str = "x-childsafe-resources";

/// The whole router: proxy, reports and appeals, admin (token layer), ops;
/// with panic catching, load shedding, a concurrency limit and a timeout to
/// the response head in front.
pub fn app(state: AppState) -> Router {
    let limits = &state.config.limits;
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    let concurrency = limits.max_concurrency;
    let guarded = Router::new()
        .merge(proxy::routes())
        .merge(reports::routes())
        .merge(admin::routes(state.clone()))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(concurrency)
                .timeout(timeout),
        );
    Router::new()
        .merge(guarded)
        .merge(ops::routes())
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

async fn overloaded(err: tower::BoxError) -> Response {
    let request_id = proxy::new_request_id();
    if err.is::<tower::timeout::error::Elapsed>() {
        return AppError::new(ErrorKind::UpstreamTimeout, "the request took too long")
            .with(error::Protocol::OpenAi, &request_id)
            .into_response();
    }
    ::metrics::counter!(metrics::SHED).increment(1);
    AppError::new(
        ErrorKind::Unavailable,
        "the gateway is overloaded; retry shortly",
    )
    .with(error::Protocol::OpenAi, &request_id)
    .into_response()
}

fn panicked(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The payload may quote content: it is not logged, only counted.
    let request_id = proxy::new_request_id();
    tracing::error!(request_id = %request_id, "handler panicked");
    let mut res = AppError::new(ErrorKind::Internal, "internal error")
        .with(error::Protocol::OpenAi, &request_id)
        .into_response();
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    res
}

/// Runs the gateway on `listener` until `shutdown` resolves, then stops
/// accepting and lets in-flight requests and streams finish.
///
/// Background tasks: sanctions refresh, rollout sync, the open-cases gauge.
///
/// # Errors
/// [`Error::Io`] if serving fails.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let background = spawn_background(state.clone());
    // Sanctions in force before the first request.
    state.enforcement.refresh(&state).await;
    let addr = listener
        .local_addr()
        .map(|it| it.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %addr, "gateway listening");
    let res = axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    background.abort();
    // Counts not yet flushed go to the store before exit.
    if let Some(rollout) = &state.rollout {
        rollout.sync(&state).await;
    }
    res.map_err(|source| Error::Io {
        context: format!("serving on {addr}"),
        source,
    })
}

fn spawn_background(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sanctions = tokio::time::interval(state.enforcement.refresh_every());
        let mut rollout = tokio::time::interval(
            state
                .rollout
                .as_ref()
                .map_or(Duration::from_secs(3600), |it| it.sync_every()),
        );
        let mut cases = tokio::time::interval(Duration::from_secs(30));
        let mut upkeep = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = sanctions.tick() => state.enforcement.refresh(&state).await,
                _ = rollout.tick() => {
                    if let Some(it) = &state.rollout {
                        it.sync(&state).await;
                    }
                }
                _ = upkeep.tick() => {
                    // The recorder keeps raw histogram samples until upkeep
                    // folds them; without this, memory grows with every request
                    // between scrapes (seen in bench/gateway.sh's soak).
                    state.metrics.run_upkeep();
                }
                _ = cases.tick() => {
                    if let Ok(n) = state.ledger.open_cases().await {
                        ::metrics::gauge!(metrics::OPEN_CASES).set(n as f64);
                    }
                }
            }
        }
    })
}
