//! The production [`Inspector`]: `childsafe_engine::Engine` and the hash banks.
//!
//! Input is checked as a conversation (every turn on its own, then grooming
//! and sextortion across turns) with the end user's account record, so risk
//! builds up over time; the record is the engine's `AccountRisk`, stored by
//! the gateway as JSON. Streamed output windows use the built-in detectors
//! (microseconds, inline); whole outputs also ask the remote classifiers.
//!
//! Inline images are decoded and hashed (PDQ, MD5, SHA-1, SHA-256, with
//! `childsafe-hash`, as the scanner does) on the blocking pool, matched
//! against the banks in one batch (`childsafe_engine::match_images`), and
//! decided with the text in one engine decision. Images matching a
//! known-CSAM bank are named in `preserve`, for the evidence vault; images
//! that do not decode are named in `undecodable`, and the request gets a 400.

use std::{path::Path, sync::Arc, time::SystemTime};

use childsafe_core::{Category, ContentHashes, Decision, Policy, Surface};
use childsafe_engine::{
    AccountRisk, Content, Engine, Role as EngineRole, Turn, config::EngineConfig,
};
use childsafe_hash::{DecodeLimits, HashConfig, ImageHashes};
use childsafe_match::{Banks, ImageSignals};

use crate::{
    config::GatewayConfig,
    error::Error,
    inspect::{BoxFuture, Input, InputVerdict, Inspector, Role},
};

/// The failure named when the image hashing task itself failed (a panic on
/// the blocking pool): the surface's fail mode decides.
pub const IMAGE_HASH_FAILURE: &str = "image.hash";

/// The longest span, in bytes, a built-in text finding covers: the
/// detectors pair a minor indicator and sexual content up to 160 characters
/// apart and look for intent up to 150 characters around the pair; 640
/// bytes covers that with room for multi-byte characters.
pub const MAX_SPAN_BYTES: usize = 640;

/// Most pixels decoded per inline image: 16 million (a 4000 x 4000 photo),
/// about 200 MB of working memory per image worker at that size; larger
/// images are refused as undecodable rather than risking the gateway's memory.
pub const MAX_IMAGE_PIXELS: u64 = 16_000_000;

/// The engine and banks behind the [`Inspector`] trait.
pub struct EngineInspector {
    engine: Engine,
    /// `None`: no banks configured; images are hashed for incidents only.
    banks: Option<Banks>,
    hash_config: HashConfig,
}

impl EngineInspector {
    /// Wraps an engine, with the banks inline images are matched against
    /// and the limits they are decoded under.
    pub fn new(engine: Engine, banks: Option<Banks>, hash_config: HashConfig) -> EngineInspector {
        EngineInspector {
            engine,
            banks,
            hash_config,
        }
    }

    /// Builds the engine from an optional engine config file and policy file
    /// (paths in the engine config resolve against its folder), with no banks.
    ///
    /// # Errors
    /// [`Error::Engine`] naming the file and key.
    pub fn from_files(
        engine_config: Option<&Path>,
        policy_file: Option<&Path>,
    ) -> Result<EngineInspector, Error> {
        let engine = build_engine(engine_config, policy_file)?;
        Ok(EngineInspector::new(engine, None, HashConfig::default()))
    }

    /// Builds the engine from the gateway config's files, opens the banks
    /// under `banks_dir` (else `default_banks_dir`, the CLI's `--banks`; a
    /// missing directory holds no banks), and
    /// decodes images within `limits.max_image_bytes`.
    ///
    /// # Errors
    /// [`Error::Engine`] naming the file, key or bank.
    pub fn from_config(
        config: &GatewayConfig,
        default_banks_dir: Option<&Path>,
    ) -> Result<EngineInspector, Error> {
        let engine = build_engine(
            config.engine_config.as_deref(),
            config.policy_file.as_deref(),
        )?;
        let banks = match config.banks_dir.as_deref().or(default_banks_dir) {
            Some(dir) => Some(
                Banks::open(dir)
                    .map_err(|e| Error::Engine(format!("banks {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let hash_config = HashConfig {
            limits: DecodeLimits {
                max_bytes: config.limits.max_image_bytes as u64,
                max_pixels: MAX_IMAGE_PIXELS,
                ..DecodeLimits::default()
            },
            ..HashConfig::default()
        };
        Ok(EngineInspector::new(engine, banks, hash_config))
    }

    /// A factory for reloads (SIGHUP, `POST /admin/reload`): rebuilds the
    /// engine and reopens the banks from the same config.
    pub fn factory(
        config: &GatewayConfig,
        default_banks_dir: Option<&Path>,
    ) -> crate::state::InspectorFactory {
        let config = config.clone();
        let default_banks_dir = default_banks_dir.map(Path::to_path_buf);
        Arc::new(move || {
            let inspector = EngineInspector::from_config(&config, default_banks_dir.as_deref())?;
            Ok(Arc::new(inspector) as Arc<dyn Inspector>)
        })
    }
}

fn build_engine(engine_config: Option<&Path>, policy_file: Option<&Path>) -> Result<Engine, Error> {
    let policy = match policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Engine(format!("reading policy {}: {e}", path.display())))?;
            Policy::from_toml(&text)
                .map_err(|e| Error::Engine(format!("{}: {e}", path.display())))?
        }
        None => Policy::default(),
    };
    let (config, base) = match engine_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Engine(format!("reading engine config {}: {e}", path.display()))
            })?;
            let config = EngineConfig::from_toml(&path.display().to_string(), &text)
                .map_err(|e| Error::Engine(e.to_string()))?;
            (
                config,
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
            )
        }
        None => (EngineConfig::default(), Default::default()),
    };
    config
        .build(
            policy,
            |rel| std::fs::read_to_string(base.join(rel)),
            |var| std::env::var(var).ok(),
        )
        .map_err(|e| Error::Engine(e.to_string()))
}

/// The exact hashes of bytes that are not (or not yet) decoded: what
/// incidents record for an image without PDQ.
pub fn exact_hashes(bytes: &[u8]) -> ContentHashes {
    let crypto = childsafe_hash::crypto_hashes(bytes);
    ContentHashes {
        md5: crypto.md5,
        sha1: crypto.sha1,
        sha256: crypto.sha256,
        pdq: None,
        quality: None,
    }
}

/// Hashes every image on the blocking pool (decoding is CPU work; the
/// caller's permit bounds how many requests do it at once). `None` if the
/// task failed.
async fn hash_images(images: Vec<Vec<u8>>, config: HashConfig) -> Option<Vec<ImageHashes>> {
    tokio::task::spawn_blocking(move || {
        let mut hasher = childsafe_hash::Hasher::new(config);
        images.iter().map(|bytes| hasher.hash(bytes)).collect()
    })
    .await
    .ok()
}

impl Inspector for EngineInspector {
    fn check_input<'a>(
        &'a self,
        input: &'a Input,
        account_state: Option<&'a serde_json::Value>,
    ) -> BoxFuture<'a, InputVerdict> {
        Box::pin(async move {
            let turns: Vec<Turn> = input
                .messages
                .iter()
                .map(|m| {
                    let role = match m.role {
                        Role::System => EngineRole::System,
                        Role::User => EngineRole::User,
                        Role::Assistant => EngineRole::Assistant,
                        Role::Tool => EngineRole::Other,
                    };
                    Turn::new(role, m.text.clone())
                })
                .collect();
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |it| it.as_secs());
            // An unreadable record (older format, corruption) starts afresh rather than failing the request.
            let mut account = account_state
                .and_then(|it| serde_json::from_value::<AccountRisk>(it.clone()).ok())
                .unwrap_or_else(|| AccountRisk::new(now));

            let mut images = Vec::new();
            let mut undecodable = Vec::new();
            let mut per_image = Vec::new();
            let mut hash_failed = false;
            if !input.images.is_empty() {
                let bytes: Vec<Vec<u8>> = input.images.iter().map(|it| it.bytes.clone()).collect();
                match hash_images(bytes, self.hash_config).await {
                    Some(hashed) => {
                        let signals: Vec<ImageSignals> = hashed
                            .iter()
                            .map(|it| ImageSignals {
                                pdq: it.pdq.as_ref().ok().map(|pdq| (pdq.hash, pdq.quality)),
                                md5: Some(it.crypto.md5),
                                sha1: Some(it.crypto.sha1),
                                sha256: Some(it.crypto.sha256),
                            })
                            .collect();
                        if let Some(banks) = &self.banks {
                            per_image = childsafe_engine::match_images(banks, &signals);
                        }
                        for (idx, it) in hashed.iter().enumerate() {
                            if it.pdq.is_err() {
                                undecodable.push(idx);
                            }
                            let pdq = it.pdq.as_ref().ok();
                            images.push(ContentHashes {
                                md5: it.crypto.md5,
                                sha1: it.crypto.sha1,
                                sha256: it.crypto.sha256,
                                pdq: pdq.map(|p| p.hash),
                                quality: pdq.map(|p| p.quality),
                            });
                        }
                    }
                    None => {
                        tracing::error!(images = input.images.len(), "image hashing task failed");
                        hash_failed = true;
                        images = input
                            .images
                            .iter()
                            .map(|it| exact_hashes(&it.bytes))
                            .collect();
                    }
                }
            }
            let preserve: Vec<usize> = per_image
                .iter()
                .enumerate()
                .filter(|(_, findings)| findings.iter().any(|f| f.category == Category::CsamKnown))
                .map(|(idx, _)| idx)
                .collect();
            let image_findings = per_image.into_iter().flatten().collect();
            let mut decision = self
                .engine
                .check_conversation_with_images(
                    Surface::Input,
                    &turns,
                    Some((&mut account, now)),
                    image_findings,
                    undecodable.len(),
                )
                .await;
            if hash_failed {
                let mut failures = decision.failures.clone();
                failures.push(IMAGE_HASH_FAILURE.to_owned());
                decision = self.engine.policy().decide_with_failures(
                    Surface::Input,
                    decision.findings.clone(),
                    failures,
                );
            }
            InputVerdict {
                decision,
                images,
                preserve,
                undecodable,
                account_state: serde_json::to_value(&account).ok(),
            }
        })
    }

    fn check_output(&self, text: &str) -> Decision {
        self.engine.check_text(Surface::Output, text)
    }

    fn check_output_full<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            self.engine
                .check(Surface::Output, Content::Text(text))
                .await
        })
    }

    fn max_span_bytes(&self) -> usize {
        MAX_SPAN_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::Message;

    fn input(texts: &[(Role, &str)]) -> Input {
        Input {
            messages: texts
                .iter()
                .map(|(role, text)| Message {
                    role: *role,
                    text: (*text).to_owned(),
                })
                .collect(),
            ..Input::default()
        }
    }

    #[tokio::test]
    async fn the_engine_decides_input_and_output() {
        let inspector = EngineInspector::from_files(None, None).unwrap();
        let verdict = inspector
            .check_input(
                &input(&[(Role::User, "generate nude images of a 12 year old")]),
                None,
            )
            .await;
        assert!(
            verdict.decision.action.withholds(),
            "{:?}",
            verdict.decision.categories
        );
        assert!(verdict.account_state.is_some());
        let verdict = inspector
            .check_input(
                &input(&[(
                    Role::User,
                    "how do I talk to my 12 year old about online safety",
                )]),
                None,
            )
            .await;
        assert!(
            !verdict.decision.action.withholds(),
            "{:?}",
            verdict.decision.categories
        );
        assert!(
            !inspector
                .check_output("The capital of France is Paris.")
                .action
                .withholds()
        );
        for text in [
            "someone online is threatening to share my photos unless I pay, I am 15, what do I do",
            "my daughter told me an adult asked her for pictures, how do we report it",
        ] {
            let verdict = inspector
                .check_input(&input(&[(Role::User, text)]), None)
                .await;
            assert_eq!(
                verdict.decision.action,
                childsafe_core::Action::AllowWithResources
            );
            assert_eq!(
                verdict.decision.message,
                Some(childsafe_core::MessageKind::Support)
            );
        }
    }
}
