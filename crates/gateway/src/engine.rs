//! The production [`Inspector`]: `childsafe_engine::Engine`.
//!
//! Input is checked as a conversation (every turn on its own, then grooming
//! and sextortion across turns) with the end user's account record, so risk
//! builds up over time; the record is the engine's `AccountRisk`, stored by
//! the gateway as JSON. Streamed output windows use the built-in detectors
//! (microseconds, inline); whole outputs also ask the remote classifiers.
//!
//! Images are hashed here (SHA-256 and MD5, for incidents) but not yet
//! matched: bank matching for the input surface joins the engine's decision
//! step when the engine grows it (the ingest path has it for the scanner).
//! Until then the gateway reports `image.unmatched` as a failure when an
//! inline image arrives, so the surface's fail mode applies (closed by
//! default) rather than letting an unchecked image through silently.

use std::{path::Path, sync::Arc, time::SystemTime};

use childsafe_core::{Decision, Policy, Surface};
use childsafe_engine::{
    AccountRisk, Content, Engine, Role as EngineRole, Turn, config::EngineConfig,
};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::{
    error::Error,
    inspect::{BoxFuture, ImageHashes, Input, InputVerdict, Inspector, Role},
};

/// The failure named when inline images cannot be matched against banks.
pub const IMAGE_UNMATCHED: &str = "image.unmatched";

/// The longest span, in bytes, a built-in text finding covers: the
/// detectors pair a minor indicator and sexual content up to 160 characters
/// apart and look for intent up to 150 characters around the pair; 640
/// bytes covers that with room for multi-byte characters.
pub const MAX_SPAN_BYTES: usize = 640;

/// The engine behind the [`Inspector`] trait.
pub struct EngineInspector {
    engine: Engine,
    /// Whether inline images are allowed through unmatched (`false`: they
    /// count as a failed required detector).
    pub images_unmatched_ok: bool,
}

impl EngineInspector {
    /// Wraps an engine.
    pub fn new(engine: Engine) -> EngineInspector {
        EngineInspector {
            engine,
            images_unmatched_ok: false,
        }
    }

    /// Builds the engine from an optional engine config file and policy file
    /// (paths in the engine config resolve against its folder).
    ///
    /// # Errors
    /// [`Error::Engine`] naming the file and key.
    pub fn from_files(
        engine_config: Option<&Path>,
        policy_file: Option<&Path>,
    ) -> Result<EngineInspector, Error> {
        let policy = match policy_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Engine(format!("reading policy {}: {e}", path.display()))
                })?;
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
        let engine = config
            .build(
                policy,
                |rel| std::fs::read_to_string(base.join(rel)),
                |var| std::env::var(var).ok(),
            )
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(EngineInspector::new(engine))
    }

    /// A factory for reloads (SIGHUP, `POST /admin/reload`): rebuilds from the same files.
    pub fn factory(
        engine_config: Option<&Path>,
        policy_file: Option<&Path>,
        images_unmatched_ok: bool,
    ) -> crate::state::InspectorFactory {
        let engine_config = engine_config.map(Path::to_path_buf);
        let policy_file = policy_file.map(Path::to_path_buf);
        Arc::new(move || {
            let mut inspector =
                EngineInspector::from_files(engine_config.as_deref(), policy_file.as_deref())?;
            inspector.images_unmatched_ok = images_unmatched_ok;
            Ok(Arc::new(inspector) as Arc<dyn Inspector>)
        })
    }
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
            let mut decision = self
                .engine
                .check_conversation(Surface::Input, &turns, Some((&mut account, now)))
                .await;
            let images: Vec<ImageHashes> = input
                .images
                .iter()
                .map(|image| ImageHashes {
                    sha256: hex::encode(Sha256::digest(&image.bytes)),
                    md5: hex::encode(Md5::digest(&image.bytes)),
                    pdq: None,
                })
                .collect();
            if !images.is_empty() && !self.images_unmatched_ok {
                let mut failures = decision.failures.clone();
                failures.push(IMAGE_UNMATCHED.to_owned());
                decision = self.engine.policy().decide_with_failures(
                    Surface::Input,
                    decision.findings.clone(),
                    failures,
                );
            }
            InputVerdict {
                decision,
                images,
                preserve: Vec::new(),
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
