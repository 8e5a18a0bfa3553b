//! The engine: the one place where findings become decisions
//! (DESIGN.md, "One engine, many front ends").
//!
//! An [`Engine`] is built once from a [`childsafe_core::Policy`], a
//! [`childsafe_text::TextDetector`] (built-in lexicons and operator term
//! lists) and optional remote classifiers, each marked required or not.
//! Front ends hand it [`Content`] and a [`Surface`] and get a
//! [`Decision`] that lists every finding behind it (DESIGN invariant 6):
//!
//! - built-in and remote findings are combined per the surface's
//!   `combine` rule (`any`: a category counts if any source flags it; `all`:
//!   only if every answering source that covers it agrees), then the
//!   policy's per-category `min_score` and actions apply;
//! - a required classifier that cannot answer is named in
//!   `Decision.failures`, counted, and the surface fails closed or open as
//!   its policy says (DESIGN invariant 3).
//!
//! [`Engine::check_text`] and [`Engine::check_conversation_builtin`] are
//! synchronous and use the built-in detectors only (the dataset scanner's
//! path); [`Engine::check`] also asks the remote classifiers.
//!
//! More signal kinds (images with hash banks, URLs) plug in as more
//! [`Content`] variants; the decision step stays here.
#![deny(missing_docs)]

pub mod config;
mod error;
pub mod eval;
mod ingest;
pub mod stream;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use childsafe_core::{Category, Combine, Decision, Finding, Policy, Surface};
pub use childsafe_text::{AccountPolicy, AccountRisk, Role, TextDetector, Turn};
use childsafe_text::{
    ConversationReport,
    remote::{Classifier, CounterSnapshot, Target},
};

pub use crate::error::Error;
pub use crate::ingest::{IngestSample, UNDECODABLE_FAILURE, match_images};

/// What is being checked.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Content<'a> {
    /// One message (a prompt, an output, a caption).
    Text(&'a str),
    /// A conversation.
    Conversation(&'a [Turn]),
}

/// A remote classifier and how the engine uses it.
#[derive(Clone)]
pub struct RemoteClassifier {
    /// The classifier.
    pub classifier: Arc<dyn Classifier>,
    /// If true, a failure to answer fails the surface closed or open per
    /// policy; if false, a failure is counted and ignored.
    pub required: bool,
    /// The surfaces it is asked on (empty: all).
    pub surfaces: Vec<Surface>,
}

impl std::fmt::Debug for RemoteClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClassifier")
            .field("name", &self.classifier.name())
            .field("required", &self.required)
            .field("surfaces", &self.surfaces)
            .finish()
    }
}

/// Counters of the engine itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineCounters {
    /// Checks made.
    pub checks: u64,
    /// Checks whose decision withheld the content.
    pub withheld: u64,
    /// Required classifier failures (each one listed in a decision).
    pub required_failures: u64,
    /// Optional classifier failures (ignored for the decision).
    pub optional_failures: u64,
}

#[derive(Default)]
struct Counters {
    checks: AtomicU64,
    withheld: AtomicU64,
    required_failures: AtomicU64,
    optional_failures: AtomicU64,
}

/// The engine. Cheap to share (`Arc<Engine>`); build once.
pub struct Engine {
    policy: Policy,
    detector: TextDetector,
    classifiers: Vec<RemoteClassifier>,
    account_policy: AccountPolicy,
    counters: Counters,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("detector", &self.detector)
            .field("classifiers", &self.classifiers)
            .finish_non_exhaustive()
    }
}

/// Findings from one source, for combining.
struct SourceFindings {
    covers: Vec<Category>,
    findings: Vec<Finding>,
}

impl Engine {
    /// An engine with built-in detectors only.
    pub fn new(policy: Policy, detector: TextDetector) -> Engine {
        Engine {
            policy,
            detector,
            classifiers: Vec::new(),
            account_policy: AccountPolicy::default(),
            counters: Counters::default(),
        }
    }

    /// Adds a remote classifier.
    pub fn with_classifier(mut self, classifier: RemoteClassifier) -> Engine {
        self.classifiers.push(classifier);
        self
    }

    /// Sets how account risk accumulates.
    pub fn with_account_policy(mut self, account_policy: AccountPolicy) -> Engine {
        self.account_policy = account_policy;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The built-in detector.
    pub fn detector(&self) -> &TextDetector {
        &self.detector
    }

    /// The remote classifiers.
    pub fn classifiers(&self) -> &[RemoteClassifier] {
        &self.classifiers
    }

    /// Engine counters.
    pub fn counters(&self) -> EngineCounters {
        let c = &self.counters;
        EngineCounters {
            checks: c.checks.load(Ordering::Relaxed),
            withheld: c.withheld.load(Ordering::Relaxed),
            required_failures: c.required_failures.load(Ordering::Relaxed),
            optional_failures: c.optional_failures.load(Ordering::Relaxed),
        }
    }

    /// Each remote classifier's counters, by name.
    pub fn classifier_counters(&self) -> Vec<(String, CounterSnapshot)> {
        self.classifiers
            .iter()
            .map(|it| (it.classifier.name().to_owned(), it.classifier.counters()))
            .collect()
    }

    /// Checks one message with the built-in detectors (no I/O, synchronous).
    pub fn check_text(&self, surface: Surface, text: &str) -> Decision {
        let findings = self.detector.detect(text);
        self.decide(surface, vec![builtin(findings)], Vec::new())
    }

    /// Checks a conversation with the built-in detectors. With an account
    /// record, the conversation is added to it at `now` (Unix seconds) and
    /// the account's own grooming finding joins the decision.
    pub fn check_conversation_builtin(
        &self,
        surface: Surface,
        turns: &[Turn],
        account: Option<(&mut AccountRisk, u64)>,
    ) -> Decision {
        let report = self.detector.analyze_conversation(turns);
        let findings = self.with_account(report, account);
        self.decide(surface, vec![builtin(findings)], Vec::new())
    }

    /// Checks content with the built-in detectors and the remote classifiers
    /// configured for `surface`, asked concurrently.
    pub async fn check(&self, surface: Surface, content: Content<'_>) -> Decision {
        self.check_with_account(surface, content, None, Vec::new(), Vec::new())
            .await
    }

    /// Like [`Engine::check`], for a conversation with an account record.
    pub async fn check_conversation(
        &self,
        surface: Surface,
        turns: &[Turn],
        account: Option<(&mut AccountRisk, u64)>,
    ) -> Decision {
        self.check_with_account(
            surface,
            Content::Conversation(turns),
            account,
            Vec::new(),
            Vec::new(),
        )
        .await
    }

    /// Like [`Engine::check_conversation`], for a request that also carries
    /// inline images: their bank matches (from [`match_images`]) join the
    /// built-in findings, and each image that did not decode is a failure
    /// ([`UNDECODABLE_FAILURE`]) for the surface's fail mode. One decision
    /// for the whole request, so policy sees text and images together.
    pub async fn check_conversation_with_images(
        &self,
        surface: Surface,
        turns: &[Turn],
        account: Option<(&mut AccountRisk, u64)>,
        image_findings: Vec<Finding>,
        undecodable: usize,
    ) -> Decision {
        let failures = vec![UNDECODABLE_FAILURE.to_owned(); undecodable];
        self.check_with_account(
            surface,
            Content::Conversation(turns),
            account,
            image_findings,
            failures,
        )
        .await
    }

    async fn check_with_account(
        &self,
        surface: Surface,
        content: Content<'_>,
        account: Option<(&mut AccountRisk, u64)>,
        image_findings: Vec<Finding>,
        image_failures: Vec<String>,
    ) -> Decision {
        let single;
        let (turns, mut builtin_findings) = match content {
            Content::Text(text) => {
                single = [Turn::new(Role::User, text)];
                (&single[..], self.detector.detect(text))
            }
            Content::Conversation(turns) => {
                let report = self.detector.analyze_conversation(turns);
                (turns, self.with_account(report, account))
            }
        };
        let target = match surface {
            Surface::Output => Target::Agent,
            _ => Target::User,
        };
        let asked: Vec<&RemoteClassifier> = self
            .classifiers
            .iter()
            .filter(|it| it.surfaces.is_empty() || it.surfaces.contains(&surface))
            .collect();
        let results = join_all(asked.iter().map(|it| it.classifier.classify(turns, target))).await;
        // Bank matches are built-in findings: the engine's own matcher.
        builtin_findings.extend(image_findings);
        let mut sources = vec![builtin(builtin_findings)];
        let mut failures = image_failures;
        for (remote, result) in asked.iter().zip(results) {
            match result {
                Ok(findings) => sources.push(SourceFindings {
                    covers: remote.classifier.covers().to_vec(),
                    findings,
                }),
                Err(err) => {
                    // Names and reasons only; never content (invariant 1).
                    tracing::warn!(classifier = remote.classifier.name(), required = remote.required, error = %err, "classifier failed");
                    if remote.required {
                        self.counters
                            .required_failures
                            .fetch_add(1, Ordering::Relaxed);
                        failures.push(remote.classifier.name().to_owned());
                    } else {
                        self.counters
                            .optional_failures
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.decide(surface, sources, failures)
    }

    fn with_account(
        &self,
        report: ConversationReport,
        account: Option<(&mut AccountRisk, u64)>,
    ) -> Vec<Finding> {
        let mut findings = report.findings;
        if let Some((account, now)) = account {
            account.update(now, &report.scores, &self.account_policy);
            if let Some(finding) = account.finding(now, &self.account_policy) {
                findings.push(finding);
            }
        }
        findings
    }

    /// Combines sources per the surface's `combine` rule and applies the
    /// policy. Every finding of every source is kept in the decision.
    fn decide(
        &self,
        surface: Surface,
        sources: Vec<SourceFindings>,
        failures: Vec<String>,
    ) -> Decision {
        let rules = self.policy.surface(surface);
        let all: Vec<Finding> = sources
            .iter()
            .flat_map(|s| s.findings.iter().cloned())
            .collect();
        let effective: Vec<Finding> = match rules.combine {
            Combine::Any => all.clone(),
            Combine::All => {
                let min_score = |category: Category| {
                    rules
                        .categories
                        .get(&category)
                        .map_or(0.5, |rule| rule.min_score)
                };
                // A coarse source (a remote classifier with one verdict for
                // child exploitation) agrees on any category it covers when
                // it flags any of them.
                let agrees = |source: &SourceFindings, category: Category| {
                    let coarse = source.covers.len() < Category::HARMS.len();
                    source.findings.iter().any(|f| {
                        f.score >= min_score(f.category)
                            && (f.category == category
                                || (coarse && source.covers.contains(&f.category)))
                    })
                };
                all.iter()
                    .filter(|finding| {
                        finding.category.is_context()
                            || sources
                                .iter()
                                .filter(|source| source.covers.contains(&finding.category))
                                .all(|source| agrees(source, finding.category))
                    })
                    .cloned()
                    .collect()
            }
        };
        let mut decision = self
            .policy
            .decide_with_failures(surface, effective, failures);
        decision.findings = all;
        self.counters.checks.fetch_add(1, Ordering::Relaxed);
        if decision.action.withholds() {
            self.counters.withheld.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }
}

fn builtin(findings: Vec<Finding>) -> SourceFindings {
    SourceFindings {
        covers: Category::HARMS.to_vec(),
        findings,
    }
}

/// Runs futures concurrently and collects their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let futures: Vec<F> = futures.collect();
    let mut set = Vec::with_capacity(futures.len());
    // Poll all futures together: tokio::join! needs a fixed count, so pin
    // them and drive them with a small select loop.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (idx, future) in pinned.iter_mut().enumerate() {
            if outputs[idx].is_some() {
                continue;
            }
            match future.as_mut().poll(cx) {
                std::task::Poll::Ready(output) => outputs[idx] = Some(output),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for output in outputs.into_iter().flatten() {
        set.push(output);
    }
    set
}
