//! The shared application state: built once from config, cheap to clone
//! (one `Arc`), passed to every handler with `State`.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use childsafe_vault::Vault;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use crate::{
    config::{GatewayConfig, hash_secret},
    enforcement::Enforcement,
    error::Error,
    inspect::Inspector,
    ledger::Ledger,
    messages::Messages,
    rollout::Rollout,
    upstream::Upstream,
};

/// Builds a fresh inspector (engine) from config: called at startup and on reload.
pub type InspectorFactory = Arc<dyn Fn() -> Result<Arc<dyn Inspector>, Error> + Send + Sync>;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The parts of [`AppState`].
pub struct Inner {
    /// The configuration.
    pub config: GatewayConfig,
    inspector: RwLock<Arc<dyn Inspector>>,
    factory: Option<InspectorFactory>,
    /// The records.
    pub ledger: Arc<dyn Ledger>,
    /// The evidence vault, when configured.
    pub vault: Option<Vault>,
    /// Prevention, support and refusal texts.
    pub messages: Messages,
    /// HTTP clients per upstream name.
    pub upstreams: HashMap<String, Upstream>,
    /// API key hash -> tenant id.
    pub tenants: HashMap<String, String>,
    /// Sanctions cache and strike ladder.
    pub enforcement: Enforcement,
    /// The phased rollout, when configured.
    pub rollout: Option<Rollout>,
    /// The Prometheus handle for `/metrics`.
    pub metrics: PrometheusHandle,
    /// Image decodes and hashes in flight (bounded queue for the blocking pool).
    pub image_permits: Semaphore,
}

impl AppState {
    /// Builds the state. `factory` rebuilds the inspector on reload (`None`: reload keeps the current one).
    ///
    /// # Errors
    /// Upstream clients that cannot be built.
    pub fn new(
        config: GatewayConfig,
        inspector: Arc<dyn Inspector>,
        factory: Option<InspectorFactory>,
        ledger: Arc<dyn Ledger>,
        vault: Option<Vault>,
    ) -> Result<AppState, Error> {
        let mut upstreams = HashMap::new();
        for (name, upstream) in &config.upstreams {
            upstreams.insert(name.clone(), Upstream::new(name, upstream)?);
        }
        let mut tenants = HashMap::new();
        for tenant in &config.tenants {
            for key in &tenant.api_key_sha256 {
                tenants.insert(key.to_ascii_lowercase(), tenant.id.clone());
            }
        }
        let messages = Messages::with_overrides(
            &config.messages.prevention,
            &config.messages.support,
            &config.messages.refusal,
        );
        let enforcement = Enforcement::new(config.enforcement.clone());
        let rollout = config.rollout.clone().map(Rollout::new);
        let image_permits = Semaphore::new(config.limits.image_workers);
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                inspector: RwLock::new(inspector),
                factory,
                ledger,
                vault,
                messages,
                upstreams,
                tenants,
                enforcement,
                rollout,
                metrics: crate::metrics::install(),
                image_permits,
            }),
        })
    }

    /// The current inspector (a cheap `Arc` clone; a reload swaps it).
    pub fn inspector(&self) -> Arc<dyn Inspector> {
        self.inner
            .inspector
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Rebuilds the inspector (banks, lists, policy) and swaps it in.
    /// Requests in flight finish with the one they started with.
    ///
    /// # Errors
    /// The factory's error; the current inspector stays.
    pub fn reload(&self) -> Result<bool, Error> {
        let Some(factory) = &self.inner.factory else {
            return Ok(false);
        };
        let fresh = factory()?;
        *self
            .inner
            .inspector
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(true)
    }

    /// The streaming window: the configured one, raised to the detectors' longest span.
    pub fn window_bytes(&self) -> usize {
        self.inner
            .config
            .limits
            .stream_window_bytes
            .max(self.inspector().max_span_bytes())
    }

    /// The tenant an API key belongs to. With no tenants configured every
    /// request belongs to the tenant `default` (open mode, for local use).
    pub fn tenant_for_key(&self, key: Option<&str>) -> Option<String> {
        if self.inner.tenants.is_empty() {
            return Some("default".to_owned());
        }
        let hash = hash_secret(key?);
        self.inner.tenants.get(&hash).cloned()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}
