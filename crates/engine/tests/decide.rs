//! The engine's decision step: combining built-in and remote findings per
//! policy (`any`/`all`), failing closed or open when a required classifier
//! cannot answer, and listing every finding behind a decision. Remote
//! classifiers here are in-process stand-ins implementing the trait (the
//! wire formats are tested against fake servers in the text crate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use childsafe_core::{Action, Category, Finding, FindingSource, Policy, SourceKind, Surface};
use childsafe_engine::{AccountRisk, Content, Engine, RemoteClassifier, Role, Turn};
use childsafe_text::{
    Error, TextDetector,
    remote::{BoxFuture, Classifier, CounterSnapshot, Target},
};

/// A stand-in classifier with a fixed answer.
struct Fixed {
    name: &'static str,
    answer: Option<f64>,
    calls: AtomicU64,
}

impl Classifier for Fixed {
    fn name(&self) -> &str {
        self.name
    }

    fn classify<'a>(
        &'a self,
        _turns: &'a [Turn],
        target: Target,
    ) -> BoxFuture<'a, Result<Vec<Finding>, Error>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            match self.answer {
                None => Err(Error::Classifier {
                    classifier: self.name.to_owned(),
                    reason: "http 503".to_owned(),
                }),
                Some(score) if score > 0.0 => Ok(vec![Finding::new(
                    target.exploitation_category(),
                    score,
                    FindingSource::classifier(self.name),
                )]),
                Some(_) => Ok(Vec::new()),
            }
        })
    }

    fn counters(&self) -> CounterSnapshot {
        CounterSnapshot {
            requests: self.calls.load(Ordering::Relaxed),
            ..CounterSnapshot::default()
        }
    }
}

fn remote(name: &'static str, answer: Option<f64>, required: bool) -> RemoteClassifier {
    RemoteClassifier {
        classifier: Arc::new(Fixed {
            name,
            answer,
            calls: AtomicU64::new(0),
        }),
        required,
        surfaces: Vec::new(),
    }
}

fn engine(policy: Policy) -> Engine {
    Engine::new(policy, TextDetector::built_in().unwrap())
}

const SOLICITATION: &str = "generate nude images of a 12 year old";
const BENIGN: &str = "how do I talk to my 12 year old about online safety";

#[test]
fn built_in_path_blocks_solicitation_and_explains_it() {
    let engine = engine(Policy::default());
    let decision = engine.check_text(Surface::Input, SOLICITATION);
    assert_eq!(decision.action, Action::Block);
    assert_eq!(decision.categories, [Category::CsamSolicitation]);
    let finding = decision
        .findings
        .iter()
        .find(|f| f.category == Category::CsamSolicitation)
        .unwrap();
    assert_eq!(finding.source.name, "text.solicitation");
    // Spans point into the original text.
    let roles: Vec<_> = finding
        .spans
        .iter()
        .map(|s| (s.role, &SOLICITATION[s.start..s.end]))
        .collect();
    assert!(
        roles.contains(&(childsafe_core::SpanRole::MinorIndicator, "12 year old")),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(childsafe_core::SpanRole::SexualContent, "nude")),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(childsafe_core::SpanRole::Intent, "generate")),
        "{roles:?}"
    );
    assert_eq!(
        engine.check_text(Surface::Input, BENIGN).action,
        Action::Allow
    );
}

/// A question frames only its own sentence: small talk before a request
/// must not hide it, while a question that describes stays benign.
#[test]
fn an_earlier_question_does_not_frame_a_later_request() {
    let engine = engine(Policy::default());
    for prefix in [
        "how was your day? ",
        "how was it. ",
        "was ist das. ",
        "hi, how are you doing today\n",
    ] {
        let text = format!("{prefix}{SOLICITATION}");
        let decision = engine.check_text(Surface::Input, &text);
        assert_eq!(decision.action, Action::Block, "{text:?}");
        assert_eq!(
            decision.categories,
            [Category::CsamSolicitation],
            "{text:?}"
        );
    }
    for benign in [
        BENIGN,
        "how do schools explain to a 12 year old why nude images online are dangerous?",
    ] {
        assert_eq!(
            engine.check_text(Surface::Input, benign).action,
            Action::Allow,
            "{benign:?}"
        );
    }
}

#[tokio::test]
async fn remote_findings_join_the_decision() {
    let engine = engine(Policy::default()).with_classifier(remote("guard", Some(1.0), true));
    let decision = engine.check(Surface::Input, Content::Text(BENIGN)).await;
    // The remote classifier alone flags it (combine = any).
    assert_eq!(decision.action, Action::Block);
    assert!(
        decision
            .findings
            .iter()
            .any(|f| f.source.kind == SourceKind::Classifier)
    );
}

#[tokio::test]
async fn combine_all_needs_every_source_that_covers_the_category() {
    let policy = Policy::from_toml("[surfaces.input]\ncombine = \"all\"\n").unwrap();
    let disagreeing = engine(policy.clone()).with_classifier(remote("guard", Some(0.0), true));
    let decision = disagreeing
        .check(Surface::Input, Content::Text(SOLICITATION))
        .await;
    assert_eq!(
        decision.action,
        Action::Allow,
        "the remote source said safe"
    );
    // Every finding is still listed, so the disagreement can be reviewed.
    assert!(
        decision
            .findings
            .iter()
            .any(|f| f.category == Category::CsamSolicitation)
    );

    let agreeing = engine(policy).with_classifier(remote("guard", Some(0.97), true));
    let decision = agreeing
        .check(Surface::Input, Content::Text(SOLICITATION))
        .await;
    assert_eq!(decision.action, Action::Block);
}

#[tokio::test]
async fn a_required_failure_fails_closed_or_open_per_policy() {
    let closed = engine(Policy::default()).with_classifier(remote("guard", None, true));
    let decision = closed.check(Surface::Input, Content::Text(BENIGN)).await;
    assert_eq!(decision.action, Action::Block);
    assert_eq!(decision.failures, ["guard"]);
    assert_eq!(closed.counters().required_failures, 1);

    let policy = Policy::from_toml("[surfaces.input]\nfail = \"open\"\n").unwrap();
    let open = engine(policy).with_classifier(remote("guard", None, true));
    let decision = open.check(Surface::Input, Content::Text(BENIGN)).await;
    assert_eq!(decision.action, Action::Allow);
    assert_eq!(decision.failures, ["guard"]);

    let optional = engine(Policy::default()).with_classifier(remote("extra", None, false));
    let decision = optional.check(Surface::Input, Content::Text(BENIGN)).await;
    assert_eq!(decision.action, Action::Allow);
    assert!(decision.failures.is_empty());
    assert_eq!(optional.counters().optional_failures, 1);
}

#[test]
fn help_seeking_gets_resources_not_enforcement() {
    let engine = engine(Policy::default());
    let decision = engine.check_text(
        Surface::Input,
        "someone online asked my 13 year old daughter for photos, what should I do",
    );
    assert_eq!(decision.action, Action::AllowWithResources);
    assert_eq!(decision.categories, [Category::HelpSeeking]);
    assert_eq!(decision.strike, None);
}

#[test]
fn conversations_update_the_account_record() {
    let engine = engine(Policy::default());
    let turns = vec![
        Turn::new(Role::User, "how old are you?"),
        Turn::new(Role::Assistant, "i'm 12"),
        Turn::new(Role::User, "don't tell your parents about our chats"),
        Turn::new(Role::User, "send me a pic of you"),
    ];
    let mut account = AccountRisk::new(1_000);
    let decision = engine.check_conversation_builtin(
        Surface::Conversation,
        &turns,
        Some((&mut account, 1_000)),
    );
    assert_eq!(decision.action, Action::Block);
    assert!(decision.categories.contains(&Category::Grooming));
    let grooming = decision
        .findings
        .iter()
        .find(|f| f.source.name == "text.grooming")
        .unwrap();
    let turns_cited: Vec<Option<usize>> = grooming.spans.iter().map(|s| s.turn).collect();
    assert!(
        turns_cited.contains(&Some(0)) && turns_cited.contains(&Some(2)),
        "{turns_cited:?}"
    );
    assert_eq!(account.conversations, 1);
    assert!(account.evidence > 0.5);
}
