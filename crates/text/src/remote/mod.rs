//! Remote classifiers behind one trait: a Llama Guard style model on an
//! OpenAI-compatible endpoint (vLLM, llama.cpp, ollama), and the OpenAI
//! moderation API. Both go through [`http::HttpClient`]: per-attempt
//! timeouts, bounded concurrency (a semaphore), retries with exponential
//! backoff and jitter on connection errors, timeouts, 429 and 5xx, and
//! counters for requests, retries and failures. Whether a failure refuses the
//! content (fail closed) or lets it through (fail open) is the engine's
//! decision, from the policy.
//!
//! Errors and counters carry the classifier's name, HTTP statuses and
//! timings, never the text sent or the body received.

pub mod http;
pub mod llama_guard;
pub mod openai;

use std::{future::Future, pin::Pin};

use childsafe_core::{Category, Finding};

pub use self::{
    http::{CounterSnapshot, RemoteConfig},
    llama_guard::{LlamaGuard, LlamaGuardTemplate},
    openai::OpenAiModeration,
};
use crate::{conversation::Turn, error::Error};

/// A boxed future, so that classifiers can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which side of the conversation is being judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The last user message (model input).
    User,
    /// The last assistant message (model output).
    Agent,
}

impl Target {
    /// The category a generic "child sexual exploitation" verdict maps to:
    /// a user asking is solicitation; a model writing is sexualisation.
    pub fn exploitation_category(self) -> Category {
        match self {
            Target::User => Category::CsamSolicitation,
            Target::Agent => Category::MinorSexualization,
        }
    }
}

/// The categories a remote child-exploitation verdict speaks to (used when
/// policy combines sources with `all`).
pub const EXPLOITATION_CATEGORIES: [Category; 3] = [
    Category::CsamSolicitation,
    Category::MinorSexualization,
    Category::Grooming,
];

/// A remote classifier.
pub trait Classifier: Send + Sync {
    /// The configured name, used in findings, failures and counters.
    fn name(&self) -> &str;

    /// The categories this classifier can speak to.
    fn covers(&self) -> &[Category] {
        &EXPLOITATION_CATEGORIES
    }

    /// Classifies a conversation (a single message is one user turn).
    fn classify<'a>(
        &'a self,
        turns: &'a [Turn],
        target: Target,
    ) -> BoxFuture<'a, Result<Vec<Finding>, Error>>;

    /// Request, retry and failure counts so far.
    fn counters(&self) -> CounterSnapshot;
}

/// Installs ring as rustls' process-wide crypto provider, once. Safe to call
/// from anywhere, any number of times; a provider installed earlier by the
/// application is kept.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
