//! Conversations over turns, and accounts over time.
//!
//! Grooming is a process, not a sentence: a conversation is scored by the
//! distinct grooming stages it shows (age probing, flattery and trust,
//! secrecy, isolation, moving to another platform, gifts, requests for
//! images, requests to meet, sexual talk), weighted, combined, and raised
//! when a minor is present (a stated age, a grade, age probing). Sextortion
//! is a threat to share images with a demand or a claim of possession.
//!
//! Sextortion evidence comes in tiers, set by the lexicon entry's weight, so
//! that phrasings the lists do not hold whole still count when their pieces
//! meet:
//! - a threat (weight 0.9 and up) is complete on its own (`i'll leak`,
//!   `everyone will see`); a *distribution* (0.5 to 0.9, `i'll send them`,
//!   `i'm going to post`) becomes one in the same turn as an *audience*
//!   (below 0.5, `your parents`, `all your followers`), and otherwise needs
//!   a demand or a claim of possession; an audience receiving (`or your
//!   dad sees`, `ta classe reçoit tes photos`, lexicon list `reception`) is
//!   a distribution too, and so is a hint (`it would be a shame if`, list
//!   `insinuation`), which never pairs with an audience alone;
//! - a demand (0.9 and up) asks for money or more images; a *condition*
//!   (below 0.9, `or else`, `if you block me`, `by tonight`) is pressure
//!   without saying for what;
//! - a claim of possession (0.9 and up, `i have your pics`, `i hacked your
//!   account`) or a weaker reference to the victim's images (`your nudes`).
//!
//! The evidence is counted per author: a threat and a demand are one
//! person's. An audience, a condition or a weak reference alone is never
//! sextortion:
//! `send the photos to your parents` and `pay me back by tonight` are
//! ordinary.
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
    /// Who wrote the turn (a single message is the user's).
    pub(crate) role: Role,
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
    let mut child_context = false;
    // Sextortion evidence per author: a threat is one person's, with their
    // own demand (a child asking a cousin for game currency is no payment
    // demanded by the one who mentions sending something).
    let mut evidence: Vec<(Role, Sextortion)> = Vec::new();
    let mut ages = AgeAnswers::default();
    // Someone addressed as family (`hola abuelo`, `thanks mom`).
    let mut family = false;
    // Separate secrecy phrases (`don't tell your parents`, `it's our
    // secret`, `delete the chat`): insisting on secrecy is more than one
    // mention of it.
    let mut secrecy_phrases = 0;
    // Weaker secrecy (`don't mention it`), and whether a parent is named
    // anywhere for it to be kept from (besides what is said to a child,
    // `child_context`, which names parents or school).
    let mut concealed: Option<(usize, Hit)> = None;
    let mut conceal_phrases = 0;
    let mut parent_named = false;
    for (idx, view) in turns.iter().enumerate() {
        let analysis = view.analysis;
        ages.add_turn(view);
        family |= analysis.has(Kind::FamilyAddress);
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
        child_context |= analysis.has(Kind::ChildContext);
        parent_named |= analysis.has(Kind::Parenting);
        let benign_secret = analysis.has(Kind::SecrecyBenign);
        if !benign_secret
            && let Some(hit) = analysis.hits.iter().find(|hit| hit.kind == Kind::Conceal)
        {
            conceal_phrases += 1;
            concealed.get_or_insert((idx, *hit));
        }
        let mut secrecy_end = 0;
        for (stage, hit) in analysis.stages() {
            if stage == Stage::Secrecy && benign_secret {
                continue;
            }
            if stage == Stage::Secrecy && hit.start >= secrecy_end {
                secrecy_phrases += 1;
                secrecy_end = hit.end;
            }
            first.entry(stage).or_insert((idx, *hit));
        }
        if sexual_talk.is_none()
            && let Some(sex) = analysis.sexual.iter().find(|s| s.weight >= 0.9)
        {
            sexual_talk = Some((idx, sex.start, sex.end));
        }
        let author = match evidence.iter().position(|(role, _)| *role == view.role) {
            Some(at) => at,
            None => {
                evidence.push((view.role, Sextortion::default()));
                evidence.len() - 1
            }
        };
        evidence[author]
            .1
            .add_turn(idx, analysis, view.norm.as_str().as_bytes());
    }
    // Children of one age keeping a call from a parent (`pareil! ... dis
    // rien à ta mère`) are no adult's secret; a secrecy phrase still is.
    if let Some(hit) = concealed
        && (child_context || parent_named)
        && !ages.peers()
    {
        first.entry(Stage::Secrecy).or_insert(hit);
        secrecy_phrases += conceal_phrases;
    }
    // Asking an adult's age (`28 e vc?`), or children asking each other's,
    // is no grooming stage at all.
    if ages.adult_answered() || ages.peers() {
        first.remove(&Stage::AgeProbing);
    }
    // Asking a child's age, or speaking to a child (`your parents`, `after
    // school`), puts a minor in the conversation; a child's age given in
    // answer by the other side (`wie alt bist du?` / `12`) is as good as a
    // stated age.
    let probed = first.contains_key(&Stage::AgeProbing);
    if probed && ages.answered_by_other(&ages.minor_answers) {
        minor_context = minor_context.max(0.9);
    }
    if probed || child_context {
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
    let insists_on_secrecy = secrecy_phrases >= 2 && minor_context >= 0.5;
    if distinct < 2 && !insists_on_secrecy {
        grooming *= 0.5;
    }
    // A family chat (a grandparent's gift and `don't tell your cousin`) is
    // not the enticement between strangers this scorer looks for; abuse in
    // a family comes to it as help-seeking.
    if family {
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
    let (sextortion, threat, demand, possession) = evidence
        .iter()
        .map(|(_, author)| author.score())
        .fold((0.0, None, None, None), |best, next| {
            if next.0 > best.0 { next } else { best }
        });
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

/// Lexicon weights at or above this are whole threats, demands or claims of
/// possession; below it, pieces (see the module docs).
const WHOLE: f32 = 0.9;
/// Threat entries below this weight name an audience; from it up to
/// [`WHOLE`], a distribution (`i'll send them`).
const DISTRIBUTION: f32 = 0.5;
/// How far apart (bytes of normalised text) a distribution and an audience
/// may be to make one threat.
const THREAT_WINDOW: u32 = 80;

/// The first hit of each tier of sextortion evidence, with its turn.
#[derive(Default)]
struct Sextortion {
    /// A whole threat.
    threat: Option<(usize, Hit)>,
    /// A distribution and an audience in one turn.
    composed: Option<(usize, Hit)>,
    /// A distribution without its audience.
    distribution: Option<(usize, Hit)>,
    /// An audience alone (kept only for the spans).
    audience: Option<(usize, Hit)>,
    demand: Option<(usize, Hit)>,
    condition: Option<(usize, Hit)>,
    possession: Option<(usize, Hit)>,
    reference: Option<(usize, Hit)>,
    /// A claim that could be ordinary (`i have your photos`).
    generic: Option<(usize, Hit)>,
}

impl Sextortion {
    fn add_turn(&mut self, idx: usize, analysis: &Analysis, text: &[u8]) {
        let keep = |slot: &mut Option<(usize, Hit)>, hit: &Hit| {
            if slot.is_none() {
                *slot = Some((idx, *hit));
            }
        };
        let audiences: Vec<&Hit> = analysis
            .hits
            .iter()
            .filter(|hit| hit.kind == Kind::Threat && hit.weight < DISTRIBUTION)
            .collect();
        let close = |hit: &Hit, it: &Hit| {
            crate::analysis::gap(hit.start, hit.end, it.start, it.end) <= THREAT_WINDOW
        };
        let near = |hit: &Hit, others: &[&Hit]| others.iter().any(|it| close(hit, it));
        // Images and who sees them in one sentence: `ask your mom first.
        // and send me a picture` names no audience for the picture.
        let near_in_sentence = |hit: &Hit, others: &[&Hit]| {
            others
                .iter()
                .any(|it| close(hit, it) && !analysis.break_between(hit.start, it.start))
        };
        let media: Vec<&Hit> = analysis
            .hits
            .iter()
            .filter(|hit| hit.kind == Kind::IntentMedia)
            .collect();
        // A gift card given (`a gift card for you`) is a present, not a
        // payment asked for. Looked up only for the few demand hits.
        let given = |hit: &Hit| {
            analysis.hits.iter().any(|gift| {
                gift.kind == Kind::Stage(Stage::Gifts)
                    && gift.start <= hit.start
                    && hit.end < gift.end
            })
        };
        for hit in &analysis.hits {
            match hit.kind {
                Kind::Threat if hit.weight >= WHOLE => keep(&mut self.threat, hit),
                Kind::Threat if hit.weight >= DISTRIBUTION => {
                    if near(hit, &audiences) {
                        keep(&mut self.composed, hit);
                    } else {
                        keep(&mut self.distribution, hit);
                    }
                }
                // An audience next to images (`or your family gets the
                // video`) names who will see them.
                Kind::Threat if near_in_sentence(hit, &media) => keep(&mut self.composed, hit),
                Kind::Threat => keep(&mut self.audience, hit),
                // An audience receiving (`or your dad sees`, `ta classe
                // reçoit`) is a distribution, which still needs a demand or
                // a claim: `your mom will see you at six` is ordinary.
                Kind::Reception
                    if near_in_sentence(hit, &audiences) && !sees_the_person(hit, text) =>
                {
                    keep(&mut self.distribution, hit);
                }
                // `it would be a shame if your friends ...` names no images:
                // it needs them named (`... saw what you sent`) or a demand.
                Kind::Insinuation => keep(&mut self.distribution, hit),
                Kind::Demand if given(hit) => {}
                Kind::Demand if hit.weight >= WHOLE => keep(&mut self.demand, hit),
                Kind::Demand => keep(&mut self.condition, hit),
                Kind::Possession if hit.weight >= WHOLE => keep(&mut self.possession, hit),
                Kind::Possession if hit.weight >= DISTRIBUTION => keep(&mut self.reference, hit),
                Kind::Possession => keep(&mut self.generic, hit),
                _ => {}
            }
        }
    }

    /// The score and the evidence behind it (threat, demand, possession).
    #[allow(clippy::type_complexity)]
    fn score(
        &self,
    ) -> (
        f64,
        Option<(usize, Hit)>,
        Option<(usize, Hit)>,
        Option<(usize, Hit)>,
    ) {
        let threat = self.threat.or(self.composed).or(self.distribution);
        let demand = self.demand.or(self.condition);
        let possession = self.possession.or(self.reference).or(self.generic);
        let strong = self.demand.is_some() || self.possession.is_some();
        let weak = self.condition.is_some() || self.reference.is_some();
        let generic = self.generic.is_some();
        // A distribution with an audience and nothing else (`i'll send the
        // photos to your mum`) is reported but not acted on, and so is one
        // with only a condition (`i'll post them tomorrow, or else i forget`)
        // or an ordinary claim (`i have your photos from the play, i'll send
        // them to your dad`).
        let score = if self.threat.is_some() {
            if strong {
                0.9
            } else if weak || generic {
                0.85
            } else {
                0.6
            }
        } else if self.composed.is_some() {
            if strong {
                0.9
            } else if weak {
                0.85
            } else {
                0.45
            }
        } else if self.distribution.is_some() {
            if strong {
                0.8
            } else if self.reference.is_some() {
                0.6
            } else if weak || generic {
                0.45
            } else {
                0.3
            }
        } else if self.demand.is_some() && self.possession.is_some() {
            0.75
        } else if self.possession.is_some() && self.condition.is_some() {
            0.6
        } else if self.demand.is_some() && (self.reference.is_some() || generic) {
            0.45
        } else {
            0.0
        };
        (score, threat.or(self.audience), demand, possession)
    }
}

/// Words for the one spoken to, as the object of a verb of seeing (`your
/// mom will see you at six`): the person is seen, not the images.
const SEEN_PERSON: [&[u8]; 10] = [
    b"you", b"u", b"ya", b"te", b"je", b"jou", b"dich", b"di", b"toi", b"ti",
];

/// True if a reception verb is followed by the person spoken to (`sees
/// you`, `ziet je`).
fn sees_the_person(hit: &Hit, text: &[u8]) -> bool {
    text.get(hit.end as usize..)
        .unwrap_or(b"")
        .split(|b| !b.is_ascii_alphanumeric())
        .find(|word| !word.is_empty())
        .is_some_and(|word| SEEN_PERSON.contains(&word))
}

/// Who asked an age in a conversation and who answered it, by role.
#[derive(Default)]
struct AgeAnswers {
    /// Roles that asked an age.
    probing: Vec<Role>,
    /// Roles that named a minor (a child noun, an age with its unit).
    naming_minor: Vec<Role>,
    /// Roles that gave an adult's age as an answer (`28 e vc?`).
    adult_answers: Vec<Role>,
    /// Roles that gave a bare minor's age as an answer (`12`, `13 y tu?`).
    minor_answers: Vec<Role>,
    /// Roles that said they are the same age (`same lol`, `moi aussi`).
    same_age: Vec<Role>,
}

impl AgeAnswers {
    fn add_turn(&mut self, view: &TurnView<'_>) {
        let analysis = view.analysis;
        let role = view.role;
        // `same` answers only at the start of a turn (`pareil mdr, t'es en
        // quelle classe`) or as a short one; `auch` mid-sentence says nothing.
        let short = view.norm.as_str().len() <= AGE_ANSWER_LEN;
        if analysis
            .hits
            .iter()
            .any(|hit| hit.kind == Kind::PeerAge && (short || hit.start == 0))
        {
            self.same_age.push(role);
        }
        let names_minor = analysis.minors.iter().any(|m| m.strength >= 0.5);
        if names_minor {
            self.naming_minor.push(role);
        }
        // A guess in the question (`quanti anni hai, 12?`) is no answer.
        let probes = analysis.has(Kind::Stage(Stage::AgeProbing));
        if probes {
            self.probing.push(role);
        }
        match stated_age(view).filter(|_| !probes) {
            Some(age) if age >= 18 && !names_minor => self.adult_answers.push(role),
            Some(age) if (5..18).contains(&age) => self.minor_answers.push(role),
            _ => {}
        }
    }

    /// Whether one of `roles` asked no age: an answer from the other side.
    fn answered_by_other(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| !self.probing.contains(role))
    }

    /// An adult's age from someone who asked none and named no minor.
    fn adult_answered(&self) -> bool {
        self.adult_answers
            .iter()
            .any(|role| !self.probing.contains(role) && !self.naming_minor.contains(role))
    }

    /// Children asking each other: a child answers, and the asker gives a
    /// child's age too or says `same`.
    fn peers(&self) -> bool {
        (self.answered_by_other(&self.naming_minor) || self.answered_by_other(&self.minor_answers))
            && self
                .probing
                .iter()
                .any(|role| self.minor_answers.contains(role) || self.same_age.contains(role))
    }
}

/// The longest turn read as an answer giving an age (`28 e vc?`).
const AGE_ANSWER_LEN: usize = 24;

/// The age a turn gives as an answer: a number up to 99 in a short turn
/// (`12`, `28 e vc?`), or the number a turn opens with (`33. on se voit
/// jeudi?`). Numbers in words count (`doce`); the caller checks that the
/// turn names no minor otherwise.
fn stated_age(view: &TurnView<'_>) -> Option<u8> {
    let number = |hit: &Hit| match hit.kind {
        Kind::Number(value) if value < 100 => Some(value),
        _ => None,
    };
    let text = view.norm.as_str();
    if text.len() <= AGE_ANSWER_LEN {
        return view.analysis.hits.iter().find_map(number);
    }
    view.analysis
        .hits
        .iter()
        .find(|hit| hit.start == 0)
        .and_then(number)
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
    fn sextortion_needs_more_than_an_audience() {
        let detector = crate::TextDetector::built_in().unwrap();
        let score = |text: &str| {
            detector
                .detect(text)
                .iter()
                .filter(|f| f.category == Category::Sextortion)
                .map(|f| f.score)
                .fold(0.0, f64::max)
        };
        // Pieces that are ordinary on their own.
        assert!(score("i'll send the photos from the party to your mom tomorrow") < 0.5);
        assert!(score("your parents will see your report card on friday") < 0.5);
        assert!(
            score("i have your pictures from the school play, i'll send them to your dad") < 0.5
        );
        assert!(score("pay me back for the tickets by tonight or i'll be mad") < 0.5);
        // The same pieces with a demand or a claim of possession.
        assert!(score("pay me 300 by tonight or the video goes to your parents") >= 0.5);
        assert!(score("i recorded our video call. i'll send it to your mom unless you pay") >= 0.5);
        assert!(score("envoie 200 euros ou toute ta famille va recevoir la vidéo") >= 0.5);
    }

    /// Speaking to a child (`your parents`, `home alone`) puts a minor in
    /// the conversation, as a stated age does; the same stages between
    /// adults are not grooming.
    #[test]
    fn child_context_counts_as_a_minor() {
        let grooming = |turns: &[&str]| {
            let turns: Vec<(Role, &str)> = turns.iter().map(|t| (Role::User, *t)).collect();
            grooming(&turns)
        };
        assert!(
            grooming(&[
                "are you home alone right now?",
                "i live close to you",
                "we could meet on saturday, your parents don't need to know",
            ]) >= 0.5
        );
        assert!(
            grooming(&[
                "are you free on saturday?",
                "we could meet for coffee near the station",
                "bring the report, the team wants to see it",
            ]) < 0.5
        );
    }

    /// The grooming score of a conversation of `(role, text)` turns.
    fn grooming(turns: &[(Role, &str)]) -> f64 {
        conversation_score(turns, Category::Grooming)
    }

    fn sextortion(turns: &[(Role, &str)]) -> f64 {
        conversation_score(turns, Category::Sextortion)
    }

    fn conversation_score(turns: &[(Role, &str)], category: Category) -> f64 {
        let detector = crate::TextDetector::built_in().unwrap();
        let turns: Vec<Turn> = turns.iter().map(|(r, t)| Turn::new(*r, *t)).collect();
        detector
            .detect_conversation(&turns)
            .iter()
            .filter(|f| f.category == category)
            .map(|f| f.score)
            .fold(0.0, f64::max)
    }

    /// An audience receiving (`or your dad sees`), and a hint at what
    /// others might see (`it would be a shame if`), count as a
    /// distribution: with a demand or the victim's images named, a threat;
    /// with nothing else, or when the person is seen (`sees you`), not.
    #[test]
    fn an_audience_receiving_is_a_distribution() {
        let (u, a) = (Role::User, Role::Assistant);
        let one = |text: &str| sextortion(&[(u, text)]);
        assert!(one("send one more or your whole class sees it") >= 0.5);
        assert!(one("100 euros en bizum o tus padres las reciben esta noche") >= 0.5);
        assert!(
            one("ik heb je fotos nog. stuur er nog een, anders ziet heel je school het") >= 0.5
        );
        assert!(one("ce serait dommage que tes potes tombent sur ce que tu m'as envoyé") >= 0.5);
        // Without a demand or the images named, or seeing the person.
        assert!(one("otherwise your whole class sees the results on monday") < 0.5);
        assert!(one("your mom will see you at six, pay me back the 20 tomorrow") < 0.5);
        assert!(
            one(
                "ce serait dommage que tes potes ratent la fête, tu sais ce qu'il te reste à faire"
            ) < 0.5
        );
        // A threat and a demand are one author's: a child asking a cousin
        // for game currency is no payment asked by the one who sends.
        assert!(
            sextortion(&[
                (u, "primo me regalas pavos pal cumple? mandame el codigo"),
                (
                    a,
                    "vale, pregunta a tu madre primero y le mando a ella el codigo"
                ),
            ]) < 0.5
        );
        assert!(
            sextortion(&[
                (u, "mandame el codigo de la tarjeta"),
                (a, "no tengo"),
                (u, "pues le mando a tu madre las fotos"),
            ]) >= 0.5
        );
        // A gift card given is a present, not a payment asked for.
        assert!(
            sextortion(&[
                (u, "happy birthday! i put 25 on a gift card for you"),
                (a, "thank u!!"),
                (u, "ask your mom first. and send me a picture of your cake"),
            ]) < 0.5
        );
    }

    /// Weaker secrecy (`don't mention it`, `hoeven dat niet te weten`) is
    /// the secrecy stage only where the child's parents are named.
    #[test]
    fn keeping_it_from_parents_is_secrecy() {
        let (u, a) = (Role::User, Role::Assistant);
        let with = grooming(&[
            (u, "how old r u btw"),
            (a, "12 why"),
            (u, "no reason. just dont mention me to ur parents ok?"),
        ]);
        let without = grooming(&[
            (u, "how old r u btw"),
            (a, "12 why"),
            (u, "no reason. just dont mention it ok?"),
        ]);
        assert!(with >= 0.5, "{with}");
        assert!(without < 0.5, "{without}");
    }

    #[test]
    fn an_adult_age_answer_is_no_age_probing() {
        let (u, a) = (Role::User, Role::Assistant);
        // Two adults on a dating app.
        assert!(
            grooming(&[
                (u, "how old are you? your profile doesn't say"),
                (a, "28, you?"),
                (u, "30. send me a pic of you"),
            ]) < 0.5
        );
        // A child's answer, or the asker's own adult age, changes nothing.
        assert!(
            grooming(&[
                (u, "how old are you? your profile doesn't say"),
                (a, "13, you?"),
                (u, "30. send me a pic of you"),
            ]) >= 0.5
        );
        assert!(
            grooming(&[
                (u, "how old are you?"),
                (u, "im 24"),
                (u, "send me a pic of you"),
            ]) >= 0.5
        );
    }

    #[test]
    fn who_answers_an_age_question_matters() {
        let (u, a) = (Role::User, Role::Assistant);
        // A bare child's age in answer is a minor present.
        assert!(
            grooming(&[
                (u, "wie alt bist du?"),
                (a, "12"),
                (u, "schreib mir lieber privat auf telegram"),
            ]) >= 0.5
        );
        // Children asking each other: the asker is a child too.
        for asker in [
            "12. add me on discord so we can play after school",
            "same lol. add me on discord so we can play after school",
        ] {
            assert!(
                grooming(&[(u, "how old r u"), (a, "12 u?"), (u, asker)]) < 0.5,
                "{asker}"
            );
        }
        // Insisting on secrecy with a child is grooming on its own.
        assert!(
            grooming(&[
                (u, "tes parents regardent ton tel?"),
                (a, "parfois"),
                (u, "alors efface nos messages, c'est notre petit secret"),
            ]) >= 0.5
        );
        // A grandparent's gift and a secret from a cousin is a family chat.
        assert!(
            grooming(&[
                (u, "hola abuelo, me ves?"),
                (a, "cuantos años tienes ya, 10?"),
                (u, "11 abuelo!!"),
                (
                    a,
                    "te mando un bizum para que te compres algo, no se lo digas a tu primo"
                ),
            ]) < 0.5
        );
    }

    #[test]
    fn turn_debug_hides_text() {
        let turn = Turn::new(Role::User, "private words");
        assert!(!format!("{turn:?}").contains("private"));
    }
}
