//! The engine config file (TOML): extra lexicons, operator term lists,
//! remote classifiers and account-risk settings. The policy is a separate
//! file (`childsafe_core::Policy`). Every key is optional; an empty file is
//! the built-in detectors alone.
//!
//! ```toml
//! [text]
//! lexicons = ["lexicon-extra.toml"]      # same shape as crates/text/data/en.toml
//!
//! [[text.term_lists]]
//! path = "/etc/childsafe/hotline-terms.txt"  # one term per line, never committed
//! name = "hotline"                       # default: the file name without extension
//! category = "csam_solicitation"         # default
//! score = 0.9                            # default
//!
//! [[classifiers]]
//! kind = "llama_guard"                   # or "openai_moderation"
//! name = "llama_guard"                   # default: the kind
//! base_url = "http://127.0.0.1:8000/v1"
//! model = "meta-llama/Llama-Guard-3-8B"
//! api_key_env = "LLAMA_GUARD_API_KEY"    # read from the environment, never from the file
//! template = "server"                    # llama_guard: "server" (chat template) or "client"
//! required = true                        # a failure fails the surface closed or open per policy
//! surfaces = ["input", "output"]         # default: all
//! timeout_ms = 5000
//! max_concurrency = 16
//! retries = 2
//! backoff_ms = 200
//!
//! [account]
//! half_life_days = 14.0
//! scale = 1.0
//! ```
//!
//! Files named here are read through a function the caller passes in, so the
//! engine does no I/O of its own.

use std::{path::Path, sync::Arc, time::Duration};

use childsafe_core::{Category, Policy, Surface};
use childsafe_text::{
    LexiconBuilder, TermList, TextDetector,
    remote::{LlamaGuard, LlamaGuardTemplate, OpenAiModeration, RemoteConfig},
};
use serde::Deserialize;

use crate::{AccountPolicy, Engine, RemoteClassifier, error::Error};

/// The engine config as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Text detector settings.
    #[serde(default)]
    pub text: TextConfig,
    /// Remote classifiers.
    #[serde(default)]
    pub classifiers: Vec<ClassifierConfig>,
    /// Account risk settings.
    #[serde(default)]
    pub account: Option<AccountConfig>,
}

/// `[text]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// Extra lexicon files layered over the built-in ones.
    #[serde(default)]
    pub lexicons: Vec<String>,
    /// Operator term lists.
    #[serde(default)]
    pub term_lists: Vec<TermListConfig>,
}

/// `[[text.term_lists]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermListConfig {
    /// The list file.
    pub path: String,
    /// Name in findings. Default: the file name without extension.
    pub name: Option<String>,
    /// Category of its findings. Default: `csam_solicitation`.
    pub category: Option<Category>,
    /// Score of its findings. Default: 0.9.
    pub score: Option<f64>,
}

/// Which remote classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierKind {
    /// A Llama Guard model on an OpenAI-compatible endpoint.
    LlamaGuard,
    /// The OpenAI moderation API.
    OpenaiModeration,
}

/// `[[classifiers]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Which classifier.
    pub kind: ClassifierKind,
    /// Name in findings and failures. Default: the kind's name.
    pub name: Option<String>,
    /// Base URL up to `/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Llama Guard only: who applies the prompt template. Default: server.
    pub template: Option<String>,
    /// Whether a failure counts against the surface. Default: true.
    pub required: Option<bool>,
    /// Surfaces to ask it on. Default: all.
    #[serde(default)]
    pub surfaces: Vec<Surface>,
    /// Per-attempt timeout. Default: 5000.
    pub timeout_ms: Option<u64>,
    /// Requests in flight. Default: 16.
    pub max_concurrency: Option<usize>,
    /// Retries. Default: 2.
    pub retries: Option<u32>,
    /// First backoff. Default: 200.
    pub backoff_ms: Option<u64>,
}

/// `[account]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Evidence half-life in days. Default: 14.
    pub half_life_days: Option<f64>,
    /// Evidence scale. Default: 1.0.
    pub scale: Option<f64>,
}

impl EngineConfig {
    /// Parses a config file; `file` names it in errors.
    ///
    /// # Errors
    /// TOML syntax errors and unknown keys, with the key.
    pub fn from_toml(file: &str, text: &str) -> Result<EngineConfig, Error> {
        toml::from_str(text).map_err(|err| Error::Config {
            file: file.to_owned(),
            reason: err.to_string(),
        })
    }

    /// Builds the engine. `read` reads a file named in the config (relative
    /// paths as the caller resolves them); `env` looks up API key variables.
    ///
    /// # Errors
    /// Unreadable or invalid lexicon and term-list files, invalid classifier
    /// settings, a missing API key variable.
    pub fn build(
        &self,
        policy: Policy,
        mut read: impl FnMut(&Path) -> std::io::Result<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Engine, Error> {
        let mut lexicon = LexiconBuilder::with_built_ins()?;
        for path in &self.text.lexicons {
            let text = read(Path::new(path)).map_err(|err| Error::Read {
                path: path.clone(),
                reason: err.to_string(),
            })?;
            lexicon.add_file(path, &text)?;
        }
        let mut detector = TextDetector::new(lexicon.build()?);
        for list in &self.text.term_lists {
            let text = read(Path::new(&list.path)).map_err(|err| Error::Read {
                path: list.path.clone(),
                reason: err.to_string(),
            })?;
            let name = list.name.clone().unwrap_or_else(|| {
                Path::new(&list.path).file_stem().map_or_else(
                    || list.path.clone(),
                    |stem| stem.to_string_lossy().into_owned(),
                )
            });
            let score = list.score.unwrap_or(0.9);
            if !(0.0..=1.0).contains(&score) {
                return Err(Error::Config {
                    file: list.path.clone(),
                    reason: format!("text.term_lists.score: expected 0.0 to 1.0, got {score}"),
                });
            }
            let category = list.category.unwrap_or(Category::CsamSolicitation);
            detector.add_term_list(TermList::parse(&list.path, &name, category, score, &text)?);
        }
        let mut engine = Engine::new(policy, detector);
        for config in &self.classifiers {
            let default_name = match config.kind {
                ClassifierKind::LlamaGuard => "llama_guard",
                ClassifierKind::OpenaiModeration => "openai_moderation",
            };
            let name = config
                .name
                .clone()
                .unwrap_or_else(|| default_name.to_owned());
            let mut remote = RemoteConfig::new(&name, &config.base_url, &config.model);
            if let Some(var) = &config.api_key_env {
                remote.api_key = Some(env(var).ok_or_else(|| Error::Config {
                    file: name.clone(),
                    reason: format!("classifiers.api_key_env: expected the variable {var} to be set, got nothing"),
                })?);
            }
            if let Some(ms) = config.timeout_ms {
                remote.timeout = Duration::from_millis(ms);
            }
            if let Some(max) = config.max_concurrency {
                remote.max_concurrency = max;
            }
            if let Some(retries) = config.retries {
                remote.retries = retries;
            }
            if let Some(ms) = config.backoff_ms {
                remote.backoff = Duration::from_millis(ms);
            }
            let classifier: Arc<dyn childsafe_text::remote::Classifier> = match config.kind {
                ClassifierKind::LlamaGuard => {
                    let template = match config.template.as_deref() {
                        None | Some("server") => LlamaGuardTemplate::Server,
                        Some("client") => LlamaGuardTemplate::Client,
                        Some(other) => {
                            return Err(Error::Config {
                                file: name,
                                reason: format!(
                                    "classifiers.template: expected \"server\" or \"client\", got {other:?}"
                                ),
                            });
                        }
                    };
                    Arc::new(LlamaGuard::new(remote, template)?)
                }
                ClassifierKind::OpenaiModeration => Arc::new(OpenAiModeration::new(remote)?),
            };
            engine = engine.with_classifier(RemoteClassifier {
                classifier,
                required: config.required.unwrap_or(true),
                surfaces: config.surfaces.clone(),
            });
        }
        if let Some(account) = &self.account {
            let mut policy = AccountPolicy::default();
            if let Some(days) = account.half_life_days {
                policy.half_life_secs = (days * 86_400.0).max(0.0) as u64;
            }
            if let Some(scale) = account.scale {
                policy.scale = scale;
            }
            engine = engine.with_account_policy(policy);
        }
        Ok(engine)
    }
}
