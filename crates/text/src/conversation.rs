//! Conversations over turns, and accounts over time.
//!
//! Grooming is a process, not a sentence: a conversation is scored by the
//! distinct grooming stages it shows (age probing, flattery and trust,
//! secrecy, isolation, moving to another platform, gifts, requests for
//! images, requests to meet, sexual talk), weighted, combined, and raised
//! when a minor is present (a stated age, a grade, age probing). Sextortion
//! is a threat to share images with a demand or a claim of possession.
//! Turns that are help-seeking (someone describing what happened to them)
//! do not count as the behaviour they describe.
//!
//! Like Roblox's Sentinel, which looks at a user's conversations over time
//! rather than one at a time, [`AccountRisk`] accumulates conversation risk
//! per account with exponential decay. It is a plain serialisable value (the
//! gateway keeps it in its store) and every update takes the current time as
//! an argument: there is no hidden clock.

use std::{collections::BTreeMap, fmt};

use childsafe_core::{Category, Finding, Span, SpanRole};
use serde::{Deserialize, Serialize};

use crate::{
    analysis::{Analysis, Hit},
    lexicon::{Kind, Stage},
    normalize::Normalized,
    score::{REPORT_FLOOR, finding},
};

/// Who wrote a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The end user (or, in a user-to-user chat, one participant).
    User,
    /// The model (or the other participant).
    Assistant,
    /// A system prompt.
    System,
    /// Anything else (tool output, a third participant).
    Other,
}

impl Role {
    /// Parses an OpenAI-style role name; unknown names are `Other`.
    pub fn from_name(name: &str) -> Role {
        match name {
            "user" | "human" => Role::User,
            "assistant" | "model" | "bot" => Role::Assistant,
            "system" | "developer" => Role::System,
            _ => Role::Other,
        }
    }

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Other => "other",
        }
    }
}

/// One message of a conversation. `Debug` shows the role and the text's
/// length, never the text (DESIGN invariant 1).
#[derive(Clone, PartialEq, Eq)]
pub struct Turn {
    /// Who wrote it.
    pub role: Role,
    /// What was written.
    pub text: String,
}

impl Turn {
    /// A turn.
    pub fn new(role: Role, text: impl Into<String>) -> Turn {
        Turn {
            role,
            text: text.into(),
        }
    }
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Turn")
            .field("role", &self.role)
            .field("text_len", &self.text.len())
            .finish()
    }
}

/// Stage weights: how much one stage adds to the grooming score.
const fn stage_weight(stage: Stage) -> f64 {
    match stage {
        Stage::AgeProbing => 0.25,
        Stage::Trust => 0.2,
        Stage::Secrecy => 0.45,
        Stage::Isolation => 0.35,
        Stage::Platform => 0.2,
        Stage::Gifts => 0.3,
        Stage::ImageRequest => 0.45,
        Stage::Meeting => 0.4,
    }
}

const fn stage_role(stage: Stage) -> SpanRole {
    match stage {
        Stage::AgeProbing => SpanRole::AgeProbing,
        Stage::Trust => SpanRole::TrustBuilding,
        Stage::Secrecy => SpanRole::Secrecy,
        Stage::Isolation => SpanRole::Isolation,
        Stage::Platform => SpanRole::PlatformMove,
        Stage::Gifts => SpanRole::Gift,
        Stage::ImageRequest => SpanRole::ImageRequest,
        Stage::Meeting => SpanRole::MeetingRequest,
    }
}

/// Stable stage names, as kept in [`AccountRisk::stages`].
const fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::AgeProbing => "age_probing",
        Stage::Trust => "trust_building",
        Stage::Secrecy => "secrecy",
        Stage::Isolation => "isolation",
        Stage::Platform => "platform_move",
        Stage::Gifts => "gift",
        Stage::ImageRequest => "image_request",
        Stage::Meeting => "meeting_request",
    }
}

/// Weight of sexual talk in a conversation, as a grooming stage.
const SEXUAL_TALK_WEIGHT: f64 = 0.5;

/// One turn, analysed, with its message-level help-seeking score.
pub(crate) struct TurnView<'a> {
    pub(crate) analysis: &'a Analysis,
    pub(crate) norm: &'a Normalized,
    /// True if this turn's author is asking for help: what they write
    /// describes what happened to them, not what they do.
    pub(crate) help: bool,
}

/// The result of scoring a conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConversationScores {
    /// Grooming score, 0..=1.
    pub grooming: f64,
    /// Sextortion score, 0..=1.
    pub sextortion: f64,
    /// Names of the grooming stages seen (stable names, see [`AccountRisk`]).
    pub stages: Vec<&'static str>,
}

impl ConversationScores {
    /// The conversation's risk: the larger of grooming and sextortion.
    pub fn risk(&self) -> f64 {
        self.grooming.max(self.sextortion)
    }
}

/// Scores grooming and sextortion over turns; pushes findings.
pub(crate) fn score_turns(
    turns: &[TurnView<'_>],
    single: bool,
    findings: &mut Vec<Finding>,
) -> ConversationScores {
    let turn_of = |idx: usize| (!single).then_some(idx);
    let span = |idx: usize, hit: &Hit, role: SpanRole| {
        let range = turns[idx]
            .norm
            .original_range(hit.start as usize..hit.end as usize);
        Span {
            start: range.start,
            end: range.end,
            role,
            turn: turn_of(idx),
        }
    };
    // First occurrence of each stage, skipping help-seeking turns and
    // secrecy in turns about a surprise or a present.
    let mut first: BTreeMap<Stage, (usize, Hit)> = BTreeMap::new();
    let mut sexual_talk: Option<(usize, u32, u32)> = None;
    let mut minor_context: f64 = 0.0;
    let mut threat: Option<(usize, Hit)> = None;
    let mut demand: Option<(usize, Hit)> = None;
    let mut possession: Option<(usize, Hit)> = None;
    for (idx, view) in turns.iter().enumerate() {
        let analysis = view.analysis;
        minor_context = minor_context.max(
            analysis
                .minors
                .iter()
                .map(|m| f64::from(m.strength))
                .fold(0.0, f64::max),
        );
        if view.help {
            continue;
        }
        let benign_secret = analysis.has(Kind::SecrecyBenign);
        for (stage, hit) in analysis.stages() {
            if stage == Stage::Secrecy && benign_secret {
                continue;
            }
            first.entry(stage).or_insert((idx, *hit));
        }
        if sexual_talk.is_none()
            && let Some(sex) = analysis.sexual.iter().find(|s| s.weight >= 0.9)
        {
            sexual_talk = Some((idx, sex.start, sex.end));
        }
        for hit in &analysis.hits {
            let slot = match hit.kind {
                Kind::Threat => &mut threat,
                Kind::Demand => &mut demand,
                Kind::Possession => &mut possession,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some((idx, *hit));
            }
        }
    }
    if first.contains_key(&Stage::AgeProbing) {
        minor_context = minor_context.max(0.5);
    }

    // Grooming.
    let mut keep = 1.0;
    let mut distinct = 0;
    for stage in first.keys() {
        keep *= 1.0 - stage_weight(*stage);
        distinct += 1;
    }
    if sexual_talk.is_some() {
        keep *= 1.0 - SEXUAL_TALK_WEIGHT;
        distinct += 1;
    }
    let mut grooming = 1.0 - keep;
    if distinct < 2 {
        grooming *= 0.5;
    }
    if minor_context < 0.5 {
        grooming *= 0.6;
    } else if minor_context >= 0.9 {
        grooming = (grooming * 1.25).min(1.0);
    }
    // A single message needs two behavioural stages (not counting sexual
    // talk, which is the message-level detectors' business) and a minor to
    // be grooming on its own; grooming is mostly caught across turns.
    if single && (first.len() < 2 || minor_context < 0.5) {
        grooming = 0.0;
    }
    if grooming >= REPORT_FLOOR {
        let mut spans: Vec<Span> = first
            .iter()
            .map(|(stage, (idx, hit))| span(*idx, hit, stage_role(*stage)))
            .collect();
        if let Some((idx, start, end)) = sexual_talk {
            let range = turns[idx].norm.original_range(start as usize..end as usize);
            spans.push(Span {
                start: range.start,
                end: range.end,
                role: SpanRole::SexualContent,
                turn: turn_of(idx),
            });
        }
        findings.push(finding(
            Category::Grooming,
            grooming,
            "text.grooming",
            spans,
        ));
    }

    // Sextortion.
    let sextortion = match (&threat, &demand, &possession) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => 0.9,
        (Some(_), None, None) => 0.6,
        (None, Some(_), Some(_)) => 0.75,
        _ => 0.0,
    };
    if sextortion >= REPORT_FLOOR {
        let mut spans = Vec::new();
        for (slot, role) in [
            (&threat, SpanRole::Threat),
            (&demand, SpanRole::Demand),
            (&possession, SpanRole::ImageRequest),
        ] {
            if let Some((idx, hit)) = slot {
                spans.push(span(*idx, hit, role));
            }
        }
        findings.push(finding(
            Category::Sextortion,
            sextortion,
            "text.sextortion",
            spans,
        ));
    }
    ConversationScores {
        grooming: (grooming * 1000.0).round() / 1000.0,
        sextortion,
        stages: first.keys().map(|stage| stage_name(*stage)).collect(),
    }
}

/// How account risk accumulates and decays.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountPolicy {
    /// Evidence halves after this many seconds. Default: 14 days.
    pub half_life_secs: u64,
    /// Evidence at which the account score reaches 1 - 1/e (about 0.63).
    /// Default: 1.0, so three conversations at 0.35 give about 0.65.
    pub scale: f64,
    /// Conversations below this risk add nothing. Default: 0.1.
    pub min_conversation_risk: f64,
}

impl Default for AccountPolicy {
    fn default() -> AccountPolicy {
        AccountPolicy {
            half_life_secs: 14 * 24 * 3600,
            scale: 1.0,
            min_conversation_risk: 0.1,
        }
    }
}

/// Per-account risk over time (Sentinel-like): decayed evidence from every
/// conversation of one account. Serialisable so a store can keep it; times
/// are Unix seconds passed in by the caller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountRisk {
    /// Format version of this record.
    pub version: u32,
    /// When the evidence was last decayed (Unix seconds).
    pub updated_at: u64,
    /// Decayed sum of conversation risks.
    pub evidence: f64,
    /// Conversations seen.
    pub conversations: u64,
    /// Conversations whose own risk reached 0.5.
    pub flagged_conversations: u64,
    /// Decayed count of conversations showing each grooming stage, by stable
    /// stage name (`age_probing`, `secrecy`, ...).
    pub stages: BTreeMap<String, f64>,
}

impl AccountRisk {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// A fresh record.
    pub fn new(now: u64) -> AccountRisk {
        AccountRisk {
            version: AccountRisk::VERSION,
            updated_at: now,
            ..AccountRisk::default()
        }
    }

    fn decay(&mut self, now: u64, policy: &AccountPolicy) {
        if now <= self.updated_at || policy.half_life_secs == 0 {
            self.updated_at = self.updated_at.max(now);
            return;
        }
        let elapsed = (now - self.updated_at) as f64;
        let factor = 0.5f64.powf(elapsed / policy.half_life_secs as f64);
        self.evidence *= factor;
        for value in self.stages.values_mut() {
            *value *= factor;
        }
        self.stages.retain(|_, value| *value >= 0.01);
        self.updated_at = now;
    }

    /// The account's score at `now`, 0..=1, without changing the record.
    pub fn score(&self, now: u64, policy: &AccountPolicy) -> f64 {
        let mut copy = self.clone();
        copy.decay(now, policy);
        copy.current_score(policy)
    }

    fn current_score(&self, policy: &AccountPolicy) -> f64 {
        let scale = if policy.scale > 0.0 {
            policy.scale
        } else {
            1.0
        };
        // Breadth: many distinct stages across conversations add evidence.
        let breadth = self.stages.values().filter(|v| **v >= 0.5).count() as f64;
        let evidence = self.evidence + 0.1 * (breadth - 2.0).max(0.0);
        let score = 1.0 - (-evidence / scale).exp();
        (score * 1000.0).round() / 1000.0
    }

    /// Adds one conversation's scores at `now` and returns the account score.
    pub fn update(&mut self, now: u64, scores: &ConversationScores, policy: &AccountPolicy) -> f64 {
        if self.version == 0 {
            self.version = AccountRisk::VERSION;
        }
        self.decay(now, policy);
        self.conversations += 1;
        let risk = scores.risk();
        if risk >= 0.5 {
            self.flagged_conversations += 1;
        }
        if risk >= policy.min_conversation_risk {
            self.evidence += risk;
            for stage in &scores.stages {
                *self.stages.entry((*stage).to_owned()).or_insert(0.0) += 1.0;
            }
        }
        self.current_score(policy)
    }

    /// A finding for the account, if its score is worth reporting.
    pub fn finding(&self, now: u64, policy: &AccountPolicy) -> Option<Finding> {
        let score = self.score(now, policy);
        (score >= REPORT_FLOOR)
            .then(|| finding(Category::Grooming, score, "text.account", Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(grooming: f64, stages: &[&'static str]) -> ConversationScores {
        ConversationScores {
            grooming,
            sextortion: 0.0,
            stages: stages.to_vec(),
        }
    }

    #[test]
    fn account_risk_accumulates_and_decays() {
        let policy = AccountPolicy::default();
        let mut account = AccountRisk::new(1_000);
        let day = 24 * 3600;
        let one = account.update(
            1_000,
            &scores(0.35, &["age_probing", "platform_move"]),
            &policy,
        );
        let two = account.update(
            1_000 + day,
            &scores(0.35, &["age_probing", "gift"]),
            &policy,
        );
        let three = account.update(
            1_000 + 2 * day,
            &scores(0.35, &["age_probing", "secrecy"]),
            &policy,
        );
        assert!(
            one < 0.5 && two > one && three >= 0.5,
            "{one} {two} {three}"
        );
        // Sixty days of silence: well below the threshold again.
        let later = account.score(1_000 + 62 * day, &policy);
        assert!(later < 0.2, "{later}");
        // The record round-trips through JSON (the store keeps it so).
        let json = serde_json::to_string(&account).unwrap();
        assert_eq!(serde_json::from_str::<AccountRisk>(&json).unwrap(), account);
    }

    #[test]
    fn a_clock_going_backwards_does_not_grow_evidence() {
        let policy = AccountPolicy::default();
        let mut account = AccountRisk::new(5_000);
        account.update(5_000, &scores(0.6, &[]), &policy);
        let before = account.evidence;
        account.decay(1_000, &policy);
        assert_eq!(account.evidence, before);
        assert_eq!(account.updated_at, 5_000);
    }

    #[test]
    fn turn_debug_hides_text() {
        let turn = Turn::new(Role::User, "private words");
        assert!(!format!("{turn:?}").contains("private"));
    }
}
