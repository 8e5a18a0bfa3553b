//! Analysis of one message: lexicon hits over the normalised text, resolved
//! into evidence (minors with a strength, sexual terms, request framing,
//! contexts, help-seeking, grooming and sextortion cues), all with positions
//! in the normalised text. The scorers in `score.rs` and `conversation.rs`
//! turn evidence into findings.
//!
//! Everything here is linear in the number of hits: hits are sorted once, and
//! every rule looks at the hits adjacent to one hit or inside a bounded
//! window, found by binary search.

use std::ops::Range;

use aho_corasick::{Anchored, automaton::Automaton};

use crate::{
    lexicon::{Entry, Kind, Lexicon, Stage},
    normalize::{JOINED, Normalized, SQUASHED},
};

/// One lexicon or number hit, in normalised byte offsets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub(crate) kind: Kind,
    pub(crate) weight: f32,
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) lang: u8,
    /// Counts only if the text is in `lang` (see `minor.lang_only`).
    pub(crate) lang_only: bool,
}

/// A reference to a minor, resolved from hits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minor {
    pub(crate) strength: f32,
    pub(crate) start: u32,
    pub(crate) end: u32,
    /// From an explicit age or grade, which adult context never cancels.
    pub(crate) explicit: bool,
}

/// Sexual evidence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum SexKind {
    Explicit,
    Suggestive,
    Anatomy,
    Sexualising,
    Act,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Sexual {
    pub(crate) kind: SexKind,
    pub(crate) weight: f32,
    pub(crate) start: u32,
    pub(crate) end: u32,
    /// The topic of a talk with a child (`talk to my son about porn`):
    /// said to the child, not of it, so it pairs with no minor.
    pub(crate) topic: bool,
}

/// Everything the scorers need about one message.
pub(crate) struct Analysis {
    pub(crate) hits: Vec<Hit>,
    pub(crate) minors: Vec<Minor>,
    pub(crate) adults: Vec<(u32, u32)>,
    pub(crate) sexual: Vec<Sexual>,
    /// Sentence breaks (`.` positions) in the normalised text, sorted.
    pub(crate) breaks: Vec<u32>,
    /// Stopword hits per language index.
    pub(crate) lang_votes: Vec<u32>,
}

/// How far before a sexual word its `about` may end (`about the`).
const TOPIC_GAP: u32 = 12;
/// How far from a topic its talk verb and framing words may be.
const TOPIC_WINDOW: u32 = 100;

/// Ordinal suffixes after a grade number (`7th`, `6e`, `5ème`, `7º`).
const ORDINALS: [&str; 14] = [
    "st", "nd", "rd", "th", "e", "er", "ere", "eme", "o", "a", "te", "ste", "de", "ieme",
];

/// The order of hits: by start, longest first, then by kind, heaviest first.
fn hit_order(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    a.start
        .cmp(&b.start)
        .then(b.end.cmp(&a.end))
        .then(a.kind.cmp(&b.kind))
        .then(b.weight.total_cmp(&a.weight))
}

fn is_word_byte(b: u8) -> bool {
    WORD_BYTES[usize::from(b)]
}

/// [`is_word_byte`] per byte value: ASCII letters and digits, and every
/// byte of a non-ASCII char. One load where the test is run on every byte.
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut idx = 0;
    while idx < 256 {
        let b = idx as u8;
        table[idx] = b.is_ascii_alphanumeric() || b >= 0x80;
        idx += 1;
    }
    table
};

impl Analysis {
    pub(crate) fn new(lexicon: &Lexicon, norm: &Normalized) -> Analysis {
        let text = norm.as_str().as_bytes();
        let mut hits = Vec::new();
        let mut lang_votes = vec![0u32; lexicon.langs.len()];
        collect_lexicon_hits(lexicon, norm, &mut hits, &mut lang_votes);
        collect_numbers(text, &mut hits);
        hits.sort_by(hit_order);
        // The same phrase in several languages' lists: one hit, the heaviest.
        // (Stopwords and language-bound entries keep one hit per language.)
        hits.dedup_by(|later, kept| {
            later.kind == kept.kind
                && later.start == kept.start
                && later.end == kept.end
                && ((later.kind != Kind::Stopword && !later.lang_only && !kept.lang_only)
                    || later.lang == kept.lang)
        });
        suppress_contained(&mut hits);
        let breaks = text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'.')
            .map(|(idx, _)| idx as u32)
            .collect();
        let mut res = Analysis {
            hits,
            minors: Vec::new(),
            adults: Vec::new(),
            sexual: Vec::new(),
            breaks,
            lang_votes,
        };
        res.resolve(text);
        res
    }

    /// True if `lang` is among the most likely languages (ties count).
    fn is_top_lang(&self, lang: u8) -> bool {
        let max = self.lang_votes.iter().copied().max().unwrap_or(0);
        max > 0 && self.lang_votes.get(usize::from(lang)).copied() == Some(max)
    }

    /// True if the text's stopwords vote for some language clearly (by two
    /// or more) more than for `lang`: short texts share many stopwords
    /// (`un`, `de`), so a one-vote lead says little.
    fn other_lang_on_top(&self, lang: u8) -> bool {
        let max = self.lang_votes.iter().copied().max().unwrap_or(0);
        let own = self.lang_votes.get(usize::from(lang)).copied().unwrap_or(0);
        max >= own + 2
    }

    /// Index of the first hit starting at or after `pos`.
    pub(crate) fn first_at(&self, pos: u32) -> usize {
        self.hits.partition_point(|hit| hit.start < pos)
    }

    /// Hits starting exactly at `pos`.
    fn starting_at(&self, pos: u32) -> &[Hit] {
        let lo = self.first_at(pos);
        let hi = self.hits[lo..].partition_point(|hit| hit.start == pos) + lo;
        &self.hits[lo..hi]
    }

    /// Hits ending exactly at `pos` (linear in the few hits that start
    /// within the longest phrase length before `pos`).
    fn ending_at(&self, pos: u32) -> impl Iterator<Item = &Hit> {
        let lo = self.first_at(pos.saturating_sub(96));
        let hi = self.first_at(pos);
        self.hits[lo..hi].iter().filter(move |hit| hit.end == pos)
    }

    /// True if a sentence break lies between two positions.
    pub(crate) fn break_between(&self, a: u32, b: u32) -> bool {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let idx = self.breaks.partition_point(|at| *at < lo);
        idx < self.breaks.len() && self.breaks[idx] < hi
    }

    /// Hits of `kind`-class (by predicate) within `window` bytes of `lo..hi`.
    pub(crate) fn near<'a>(
        &'a self,
        lo: u32,
        hi: u32,
        window: u32,
        pred: impl Fn(Kind) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Hit> + 'a {
        let from = self.first_at(lo.saturating_sub(window + 96));
        let until = hi.saturating_add(window);
        self.hits[from..]
            .iter()
            .take_while(move |hit| hit.start <= until)
            .filter(move |hit| hit.end + window >= lo && pred(hit.kind))
    }

    fn resolve(&mut self, text: &[u8]) {
        let mut minors = Vec::new();
        let mut adults = Vec::new();
        let mut sexual = Vec::new();
        for (idx, hit) in self.hits.iter().enumerate() {
            match hit.kind {
                Kind::Number(value) => {
                    if let Some(age) = self.resolve_number(text, idx, value) {
                        match age {
                            Resolved::Minor(minor) => minors.push(minor),
                            Resolved::Adult(start, end) => adults.push((start, end)),
                        }
                    }
                }
                Kind::MinorStrong | Kind::MinorTeen | Kind::MinorWeak | Kind::MinorSchool => {
                    if hit.lang_only && !self.is_top_lang(hit.lang) {
                        continue;
                    }
                    let mut strength = match hit.kind {
                        Kind::MinorStrong => 0.95,
                        Kind::MinorSchool => 0.7,
                        Kind::MinorTeen => 0.6,
                        _ => 0.3,
                    } * hit.weight;
                    let mut start = hit.start;
                    // A modifier right before a weak or teen noun (`little girl`).
                    if matches!(hit.kind, Kind::MinorWeak | Kind::MinorTeen)
                        && let Some(modifier) = self
                            .ending_at(hit.start.saturating_sub(1))
                            .find(|it| it.kind == Kind::MinorModifier)
                    {
                        strength = strength.max(0.85);
                        start = modifier.start;
                    }
                    minors.push(Minor {
                        strength,
                        start,
                        end: hit.end,
                        explicit: false,
                    });
                }
                Kind::AgeCompound(value) => {
                    if value < 18 {
                        minors.push(Minor {
                            strength: 1.0,
                            start: hit.start,
                            end: hit.end,
                            explicit: true,
                        });
                    } else {
                        adults.push((hit.start, hit.end));
                    }
                }
                Kind::Adult => adults.push((hit.start, hit.end)),
                Kind::SexExplicit if !(hit.lang_only && self.other_lang_on_top(hit.lang)) => {
                    sexual.push(self.sex(hit, SexKind::Explicit, 1.0));
                }
                Kind::SexSuggestive => sexual.push(self.sex(hit, SexKind::Suggestive, 0.6)),
                Kind::SexAnatomy => sexual.push(self.sex(hit, SexKind::Anatomy, 0.6)),
                Kind::Sexualising => sexual.push(self.sex(hit, SexKind::Sexualising, 0.9)),
                Kind::SexAct => sexual.push(self.sex(hit, SexKind::Act, 1.0)),
                _ => {}
            }
        }
        // Adult context cancels weak and teen nouns nearby, and an explicit
        // adult age right before any noun (`my 25 year old daughter`).
        minors.retain(|minor| {
            if minor.explicit {
                return true;
            }
            !adults.iter().any(|&(start, end)| {
                let gap = gap(start, end, minor.start, minor.end);
                (minor.strength < 0.9 && gap <= 40 && !self.break_between(start, minor.start))
                    || (end <= minor.start
                        && minor.start - end <= 12
                        && self.is_age_span(start, end))
            })
        });
        // Negations cancel suggestive and anatomical words in the same
        // sentence, and explicit ones close by (`fully clothed, not nude`).
        let negations: Vec<(u32, u32)> = self
            .hits
            .iter()
            .filter(|hit| hit.kind == Kind::SexNegated)
            .map(|hit| (hit.start, hit.end))
            .collect();
        if !negations.is_empty() {
            sexual.retain(|sex| {
                !negations.iter().any(|&(start, end)| {
                    let gap = gap(start, end, sex.start, sex.end);
                    match sex.kind {
                        SexKind::Suggestive | SexKind::Anatomy => {
                            gap <= 80 && !self.break_between(start, sex.start)
                        }
                        _ => gap <= 30,
                    }
                })
            });
        }
        for sex in &mut sexual {
            sex.topic = self.is_talk_topic(sex.start);
        }
        self.minors = minors;
        self.adults = adults;
        self.sexual = sexual;
    }

    /// A sexual word at `at` introduced as the topic of a talk: right after
    /// `about` (a short word such as an article may come between), with a
    /// verb of talking or explaining and a parent's, teacher's or
    /// protective word in the same sentence (`i need to talk to my son
    /// about pornography`, `ik moet met mijn zoon over porno praten`).
    /// Without that framing (`talk to a 12 year old about sex` as a
    /// role-play) the word stays said of the child.
    fn is_talk_topic(&self, at: u32) -> bool {
        let about = self
            .near(at.saturating_sub(TOPIC_GAP), at, 0, |kind| {
                kind == Kind::About
            })
            .any(|it| it.end < at && at - it.end <= TOPIC_GAP && !self.break_between(it.end, at));
        if !about {
            return false;
        }
        let in_sentence = |pred: fn(Kind) -> bool| {
            self.near(at, at, TOPIC_WINDOW, pred).any(|it| {
                gap(it.start, it.end, at, at) <= TOPIC_WINDOW && !self.break_between(it.start, at)
            })
        };
        in_sentence(|kind| kind == Kind::Talk)
            && in_sentence(|kind| {
                matches!(kind, Kind::Parenting | Kind::Education | Kind::Protective)
            })
    }

    fn is_age_span(&self, start: u32, end: u32) -> bool {
        // An adult marker made from a number spans digits and a unit.
        end > start + 2
            && self
                .starting_at(start)
                .iter()
                .any(|hit| matches!(hit.kind, Kind::Number(_)))
    }

    fn sex(&self, hit: &Hit, kind: SexKind, base: f32) -> Sexual {
        Sexual {
            kind,
            weight: base * hit.weight,
            start: hit.start,
            end: hit.end,
            topic: false,
        }
    }

    /// A bare number right after a child noun, or joined to it by a word
    /// such as `mit`, `de`, `van`, `of` (`Mädchen mit 12`, `menina de 12`,
    /// `my son, 12`): the child's age. Only digits, or number words from
    /// ten (`filho de um amigo` is someone's son), and not when a noun of
    /// something counted or timed follows (`Kinder mit 12 Euro`).
    fn age_after_noun(&self, text: &[u8], idx: usize, value: u32, start: u32) -> Option<Resolved> {
        let hit = self.hits[idx];
        let digits = text.get(hit.start as usize).is_some_and(u8::is_ascii_digit);
        if value == 0 || (!digits && value < 10) || start == 0 {
            return None;
        }
        let next = if text.get(hit.end as usize) == Some(&b' ') {
            self.starting_at(hit.end + 1)
        } else {
            &[]
        };
        // A media noun that is also a sexual word (`12 nudes`) describes
        // the child rather than counting pictures.
        let sexual_next = next.iter().any(|it| {
            matches!(
                it.kind,
                Kind::SexExplicit | Kind::SexSuggestive | Kind::Sexualising
            )
        });
        let counted = next.iter().any(|it| {
            (it.kind == Kind::IntentMedia && !sexual_next)
                || matches!(
                    it.kind,
                    Kind::NotAgeAfter
                        | Kind::TimeAfter
                        | Kind::AgeUnitBare
                        | Kind::MinorStrong
                        | Kind::MinorTeen
                        | Kind::MinorWeak
                        | Kind::MinorSchool
                        | Kind::Adult
                )
        });
        if counted {
            return None;
        }
        let is_noun = |it: &Hit| {
            matches!(
                it.kind,
                Kind::MinorStrong | Kind::MinorTeen | Kind::MinorWeak | Kind::MinorSchool
            ) && (!it.lang_only || self.is_top_lang(it.lang))
        };
        let noun_ending = |pos: u32| self.ending_at(pos).find(|it| is_noun(it)).copied();
        let before = start - 1;
        let noun = noun_ending(before).or_else(|| {
            self.ending_at(before)
                .filter(|it| it.kind == Kind::AgeAfterNoun && it.start >= 1)
                .find_map(|it| noun_ending(it.start - 1))
        })?;
        Some(if value < 18 {
            Resolved::Minor(Minor {
                strength: 1.0,
                start: noun.start,
                end: hit.end,
                explicit: true,
            })
        } else {
            Resolved::Adult(start, hit.end)
        })
    }

    /// Turns a number into an age or a grade, from the words around it.
    fn resolve_number(&self, text: &[u8], idx: usize, value: u8) -> Option<Resolved> {
        let hit = self.hits[idx];
        // Tens followed by a unit digit (`twenty five`, `treinta y cinco`)
        // belong to the compound; the unit handles it.
        let next_small = self.hits[idx + 1..]
            .iter()
            .take_while(|next| next.start <= hit.end + 4)
            .any(|next| matches!(next.kind, Kind::Number(v) if v < 10) && next.start > hit.end);
        if value >= 20 && value.is_multiple_of(10) && next_small {
            return None;
        }
        let mut value = u32::from(value);
        let mut start = hit.start;
        if value < 10
            && let Some(tens) = self.hits[self.first_at(hit.start.saturating_sub(12))..idx]
                .iter()
                .rev()
                .find(|prev| {
                    matches!(prev.kind, Kind::Number(v) if v >= 20 && v.is_multiple_of(10))
                        && prev.end < hit.start
                        && hit.start - prev.end <= 4
                })
            && let Kind::Number(tens_value) = tens.kind
        {
            value += u32::from(tens_value);
            start = tens.start;
        }
        let after = hit.end + 1;
        // A space, or the dot of a German or Scandinavian ordinal (`6. Klasse`).
        let next_is_space = text
            .get(hit.end as usize)
            .is_some_and(|b| *b == b' ' || *b == b'.');
        let age = |end: u32| -> Resolved {
            if value < 18 {
                Resolved::Minor(Minor {
                    strength: 1.0,
                    start,
                    end,
                    explicit: true,
                })
            } else {
                Resolved::Adult(start, end)
            }
        };
        if next_is_space {
            let next = self.starting_at(after);
            if let Some(unit) = next.iter().find(|it| it.kind == Kind::AgeUnit) {
                return Some(age(unit.end));
            }
            if let Some(unit) = next.iter().find(|it| it.kind == Kind::AgeMonths) {
                return Some(Resolved::Minor(Minor {
                    strength: 1.0,
                    start,
                    end: unit.end,
                    explicit: true,
                }));
            }
            if let Some(unit) = next.iter().find(|it| it.kind == Kind::AgeUnitBare) {
                let ago_before = self
                    .ending_at(hit.start.saturating_sub(1))
                    .chain(self.ending_at(start.saturating_sub(1)))
                    .any(|it| it.kind == Kind::TimeBefore && it.lang == unit.lang);
                let ago_after = self
                    .starting_at(unit.end + 1)
                    .iter()
                    .any(|it| it.kind == Kind::TimeAfter && it.lang == unit.lang);
                if !ago_before && !ago_after {
                    return Some(age(unit.end));
                }
                return None;
            }
            // `7th grade`, `6e année`.
            let grade_word = |pos: u32| {
                self.starting_at(pos)
                    .iter()
                    .find(|it| it.kind == Kind::GradeAfter)
                    .copied()
            };
            let mut grade_at = after;
            if let Some(token_len) = ordinal_len(text, after as usize) {
                grade_at = after + token_len as u32 + 1;
            }
            if value <= 13
                && let Some(word) = grade_word(grade_at)
            {
                return Some(Resolved::Minor(Minor {
                    strength: 0.85,
                    start,
                    end: word.end,
                    explicit: true,
                }));
            }
        }
        // Words before the number.
        if start >= 1 {
            let before: Vec<Hit> = self.ending_at(start - 1).copied().collect();
            if before.iter().any(|it| it.kind == Kind::AgeBefore) {
                let from = before.iter().map(|it| it.start).min().unwrap_or(start);
                return Some(match age(hit.end) {
                    Resolved::Minor(minor) => Resolved::Minor(Minor {
                        start: from,
                        ..minor
                    }),
                    Resolved::Adult(_, end) => Resolved::Adult(from, end),
                });
            }
            if before.iter().any(|it| it.kind == Kind::GradeBefore) && value <= 13 {
                let from = before.iter().map(|it| it.start).min().unwrap_or(start);
                return Some(Resolved::Minor(Minor {
                    strength: 0.85,
                    start: from,
                    end: hit.end,
                    explicit: true,
                }));
            }
            if before.iter().any(|it| it.kind == Kind::AgeStatement) && (1..=99).contains(&value) {
                let not_age = next_is_space
                    && self
                        .starting_at(after)
                        .iter()
                        .any(|it| matches!(it.kind, Kind::NotAgeAfter | Kind::AgeUnitBare));
                if !not_age {
                    return Some(match age(hit.end) {
                        Resolved::Minor(minor) => Resolved::Minor(Minor {
                            strength: 0.9,
                            ..minor
                        }),
                        adult => adult,
                    });
                }
            }
        }
        self.age_after_noun(text, idx, value, start)
    }

    /// Hits of a grooming stage, with their positions.
    pub(crate) fn stages(&self) -> impl Iterator<Item = (Stage, &Hit)> {
        self.hits.iter().filter_map(|hit| match hit.kind {
            Kind::Stage(stage) => Some((stage, hit)),
            _ => None,
        })
    }

    /// True if any hit of `kind` exists.
    pub(crate) fn has(&self, kind: Kind) -> bool {
        self.hits.iter().any(|hit| hit.kind == kind)
    }
}

enum Resolved {
    Minor(Minor),
    Adult(u32, u32),
}

/// Length of an ordinal suffix token at `at`, if there is one.
fn ordinal_len(text: &[u8], at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    let len = rest.iter().take_while(|b| b.is_ascii_lowercase()).count();
    let token = std::str::from_utf8(&rest[..len]).ok()?;
    (ORDINALS.contains(&token) && rest.get(len) == Some(&b' ')).then_some(len)
}

/// Distance in bytes between two spans (0 if they touch or overlap).
pub(crate) fn gap(a_start: u32, a_end: u32, b_start: u32, b_end: u32) -> u32 {
    if a_end <= b_start {
        b_start - a_end
    } else {
        a_start.saturating_sub(b_end)
    }
}

fn collect_lexicon_hits(
    lexicon: &Lexicon,
    norm: &Normalized,
    hits: &mut Vec<Hit>,
    lang_votes: &mut [u32],
) {
    let text = norm.as_str().as_bytes();
    let joined = |idx: usize| norm.flags(idx) & JOINED != 0;
    let dfa = &lexicon.automaton;
    // The automaton is built for anchored searches only (lexicon.rs), so
    // this cannot fail; if it did, no lexicon phrase would be found.
    let Ok(start_sid) = dfa.start_state(Anchored::Yes) else {
        return;
    };
    // Whether the byte before `start` is a word byte, carried along rather
    // than looked up again; the flags are read only inside words of texts
    // that have joined tokens.
    let any_joined = norm.has_joined();
    let mut prev_word = false;
    for (start, &byte) in text.iter().enumerate() {
        let after_word = prev_word;
        prev_word = is_word_byte(byte);
        // A phrase starts a word, or anywhere inside a joined token.
        let left_ok = !after_word || (any_joined && joined(start - 1) && joined(start));
        if !left_ok || byte == b' ' {
            continue;
        }
        // Hits are kept sorted as `Analysis::new` sorts them: by start (this
        // loop), then within one start (sorted below), so that sort finds
        // them in order. A stable sort keeps equal hits in the order found.
        let first_hit = hits.len();
        // Every phrase starting here, by walking the automaton from its
        // anchored start state until it dies: the hits an unanchored search
        // would find and then drop for starting mid-word cost nothing
        // (one-letter stopwords such as `a` and `e` match most letters).
        let mut sid = start_sid;
        for (at, &byte) in text.iter().enumerate().skip(start) {
            sid = dfa.next_state(Anchored::Yes, sid, byte);
            if !dfa.is_special(sid) {
                continue;
            }
            if dfa.is_dead(sid) {
                break;
            }
            // Of the state's matches, only the phrase spelled from `start`
            // counts (not its suffixes, `en` at the end of `children`).
            if let Some(pattern) = lexicon.own_patterns.get(sid) {
                let entries = lexicon.entries(pattern);
                push_entries(norm, entries, start..at + 1, hits, lang_votes);
            }
        }
        if hits.len() - first_hit > 1 {
            hits[first_hit..].sort_by(hit_order);
        }
    }
}

/// The hits of one lexicon phrase found at `found` in the normalised text.
fn push_entries(
    norm: &Normalized,
    entries: &[Entry],
    found: Range<usize>,
    hits: &mut Vec<Hit>,
    lang_votes: &mut [u32],
) {
    let text = norm.as_str().as_bytes();
    let len = text.len();
    let (start, end) = (found.start, found.end);
    let joined = |idx: usize| norm.flags(idx) & JOINED != 0;
    let right_word = end < len && is_word_byte(text[end]);
    let right_joined = end < len && joined(end - 1) && joined(end);
    // Stopwords only vote for a language: counted here, once per language
    // per occurrence, rather than stored and sorted as hits.
    let mut voted = 0u64;
    for entry in entries {
        if right_word && !entry.prefix && !right_joined {
            continue;
        }
        if entry.needs_squash && !(start..end).any(|idx| norm.flags(idx) & SQUASHED != 0) {
            continue;
        }
        if entry.kind == Kind::Stopword {
            // Only whole words vote: the pieces of a joined token (`a`, `en`
            // and `es` in `i m a g e n e s`) would vote for whatever
            // languages they spell.
            if right_word || (start > 0 && is_word_byte(text[start - 1])) {
                continue;
            }
            // Two spellings of one word (`à`, `a`) are one pattern with two
            // entries: one vote. (Past 64 languages, every entry votes.)
            let lang = usize::from(entry.lang);
            let bit = 1u64.checked_shl(lang as u32).unwrap_or(0);
            if voted & bit == 0
                && let Some(votes) = lang_votes.get_mut(lang)
            {
                voted |= bit;
                *votes += 1;
            }
            continue;
        }
        let mut end = end;
        if entry.prefix {
            // Extend a prefix match to the end of its word.
            while end < len && is_word_byte(text[end]) {
                end += 1;
            }
        }
        hits.push(Hit {
            kind: entry.kind,
            weight: entry.weight,
            start: start as u32,
            end: end as u32,
            lang: entry.lang,
            lang_only: entry.lang_only,
        });
    }
}

/// Digit runs standing alone as numbers, and `N+` as an adult marker for N >= 18.
fn collect_numbers(text: &[u8], hits: &mut Vec<Hit>) {
    let mut idx = 0;
    while idx < text.len() {
        if !text[idx].is_ascii_digit() {
            // Most text has no digits: find the next one in one scan.
            match text[idx..].iter().position(u8::is_ascii_digit) {
                Some(skip) => idx += skip,
                None => break,
            }
        }
        if idx > 0 && is_word_byte(text[idx - 1]) {
            idx += 1;
            continue;
        }
        let start = idx;
        let mut value: u32 = 0;
        while idx < text.len() && text[idx].is_ascii_digit() {
            value = (value * 10 + u32::from(text[idx] - b'0')).min(1000);
            idx += 1;
        }
        let plus = text.get(idx) == Some(&b'+');
        let end = if plus { idx + 1 } else { idx };
        if end < text.len() && is_word_byte(text[end]) {
            continue;
        }
        let value = value.min(255) as u8;
        hits.push(Hit {
            kind: Kind::Number(value),
            weight: 1.0,
            start: start as u32,
            end: idx as u32,
            lang: 0,
            lang_only: false,
        });
        if plus && value >= 18 {
            hits.push(Hit {
                kind: Kind::Adult,
                weight: 1.0,
                start: start as u32,
                end: end as u32,
                lang: 0,
                lang_only: false,
            });
        }
    }
}

/// Drops core hits strictly inside a longer core hit (`sex` inside
/// `sex education`, `girl` inside `little girl`). `hits` is sorted by start,
/// then by end descending.
fn suppress_contained(hits: &mut Vec<Hit>) {
    let mut cover: Option<(u32, u32)> = None;
    hits.retain(|hit| {
        if !hit.kind.is_core() {
            return true;
        }
        if let Some((start, end)) = cover
            && start <= hit.start
            && end >= hit.end
            && (start < hit.start || end > hit.end)
        {
            return false;
        }
        match cover {
            Some((_, end)) if end >= hit.end => {}
            _ => cover = Some((hit.start, hit.end)),
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn analyze(text: &str) -> (Analysis, String) {
        let lexicon = Lexicon::built_in().unwrap();
        let norm = normalize(text);
        (Analysis::new(&lexicon, &norm), norm.as_str().to_owned())
    }

    fn minor_strengths(text: &str) -> Vec<f32> {
        let mut res: Vec<f32> = analyze(text).0.minors.iter().map(|m| m.strength).collect();
        res.sort_by(|a, b| b.total_cmp(a));
        res
    }

    #[test]
    fn ages_in_digits_and_words() {
        assert_eq!(minor_strengths("a 12yo"), [1.0]);
        assert_eq!(minor_strengths("12 y/o"), [1.0]);
        assert_eq!(minor_strengths("twelve-year-old"), [1.0]);
        assert_eq!(minor_strengths("niña de 12 años"), [1.0, 0.95]);
        assert_eq!(minor_strengths("ein 12-jähriges"), [1.0]);
        assert_eq!(minor_strengths("une fille de 13 ans"), [1.0, 0.3]);
        assert!(minor_strengths("hace 12 años").is_empty());
        assert!(minor_strengths("il y a 12 ans").is_empty());
        assert!(minor_strengths("12 anni fa").is_empty());
        assert!(minor_strengths("for 12 years").is_empty());
        assert!(minor_strengths("twenty five year old").is_empty());
        assert!(minor_strengths("a 25 year old").is_empty());
    }

    #[test]
    fn bare_ages_after_child_nouns() {
        assert_eq!(minor_strengths("menina de 12"), [1.0, 0.3]);
        assert_eq!(minor_strengths("ein Mädchen mit 12"), [1.0, 0.3]);
        assert_eq!(minor_strengths("zoon van 12"), [1.0, 0.3]);
        assert_eq!(minor_strengths("my son, 12, and me"), [1.0, 0.3]);
        assert_eq!(minor_strengths("una alumna de 13"), [1.0, 0.7]);
        // A number word meaning `a` is not an age; counts and times are not.
        assert_eq!(minor_strengths("o filho de um amigo"), [0.3]);
        assert_eq!(minor_strengths("Mädchen mit 12 Euro"), [0.3]);
        assert_eq!(minor_strengths("chicos de 12 horas"), [0.3]);
        assert_eq!(minor_strengths("meninas de 12 fotos"), [0.3]);
        // A sexual media word after the number describes the child.
        assert_eq!(minor_strengths("girls 12 nudes"), [1.0, 0.3]);
        // An adult age cancels the weak noun it follows.
        assert!(minor_strengths("meine Tochter mit 25").is_empty());
        assert!(minor_strengths("a girl of 20").is_empty());
    }

    #[test]
    fn ages_written_onto_number_words() {
        assert_eq!(minor_strengths("eine Zwölfjährige"), [1.0]);
        assert_eq!(minor_strengths("een twaalfjarige"), [1.0]);
        assert!(minor_strengths("eine Dreißigjährige").is_empty());
    }

    #[test]
    fn sexual_topics_of_a_talk_with_a_child() {
        let topics =
            |text: &str| -> Vec<bool> { analyze(text).0.sexual.iter().map(|s| s.topic).collect() };
        assert_eq!(topics("i need to talk to my son about porn"), [true]);
        assert_eq!(
            topics("necesito hablar con mi hijo de 12 años sobre la pornografía"),
            [true]
        );
        assert_eq!(
            topics("ik moet met mijn zoon van 12 over porno praten"),
            [true]
        );
        // No parent, teacher or protection: the words stay said of the child.
        assert_eq!(
            topics("write a story where an adult talks to a 12 year old about sex"),
            [false]
        );
        assert_eq!(topics("generate nude images of my son"), [false]);
    }

    #[test]
    fn grades_and_statements() {
        assert_eq!(minor_strengths("in 7th grade"), [0.85]);
        assert_eq!(minor_strengths("grade 6"), [0.85]);
        assert_eq!(minor_strengths("i'm 13"), [0.9]);
        assert!(minor_strengths("i'm 12 minutes away").is_empty());
    }

    #[test]
    fn adult_context_cancels_weak_nouns() {
        assert!(minor_strengths("18 year old girl").is_empty());
        assert!(minor_strengths("my 25 year old daughter").is_empty());
        assert_eq!(minor_strengths("little girl"), [0.95]);
        assert_eq!(minor_strengths("small girls"), [0.85]);
        assert_eq!(minor_strengths("adults and children"), [0.95]);
    }

    #[test]
    fn longer_phrases_absorb_shorter() {
        let (analysis, _) = analyze("sex education for kids");
        assert!(analysis.sexual.is_empty());
        let (analysis, _) = analyze("non-sexual drawing");
        assert!(analysis.sexual.is_empty());
    }

    #[test]
    fn lang_only_entries_need_their_language() {
        assert!(minor_strengths("what kind of images").is_empty());
        assert_eq!(
            minor_strengths("het kind is ziek en de dokter komt"),
            [0.95]
        );
    }

    /// The pieces of a spaced-out word (`a`, `en`, `es` in `i m a g e n e
    /// s`) are no stopwords: they would outvote the text's language and
    /// drop its language-bound words (Spanish `niña`).
    #[test]
    fn only_whole_words_vote_for_a_language() {
        assert!(!minor_strengths("crea i m a g e n e s de una niña de 12").is_empty());
        let (analysis, _) = analyze("crea i m a g e n e s de una niña de 12");
        let (plain, _) = analyze("crea imagenes de una niña de 12");
        assert_eq!(analysis.lang_votes, plain.lang_votes);
    }

    /// The anchored walk from word starts finds exactly what an unanchored
    /// overlapping search finds once matches starting mid-word are dropped
    /// (how hits were collected before): same hits, same votes.
    mod word_start_walk {
        use aho_corasick::AhoCorasick;
        use proptest::prelude::*;

        use super::super::*;
        use crate::normalize::normalize;

        /// The built-in lexicon and an unanchored searcher over its patterns
        /// (built once: building them is most of a case's time).
        fn lexicon() -> &'static (Lexicon, AhoCorasick) {
            static BUILT: std::sync::OnceLock<(Lexicon, AhoCorasick)> = std::sync::OnceLock::new();
            BUILT.get_or_init(|| {
                let lexicon = Lexicon::built_in().unwrap();
                let searcher = AhoCorasick::new(&lexicon.patterns).unwrap();
                (lexicon, searcher)
            })
        }

        fn reference(
            lexicon: &Lexicon,
            searcher: &AhoCorasick,
            norm: &Normalized,
        ) -> (Vec<Hit>, Vec<u32>) {
            let text = norm.as_str().as_bytes();
            let joined = |idx: usize| norm.flags(idx) & JOINED != 0;
            let (mut hits, mut votes) = (Vec::new(), vec![0; lexicon.langs.len()]);
            for found in searcher.find_overlapping_iter(text) {
                let start = found.start();
                if start == 0
                    || !is_word_byte(text[start - 1])
                    || (joined(start - 1) && joined(start))
                {
                    let entries = lexicon.entries(found.pattern().as_usize());
                    push_entries(norm, entries, found.range(), &mut hits, &mut votes);
                }
            }
            (hits, votes)
        }

        fn key(hits: &[Hit]) -> Vec<(u32, u32, String, u8)> {
            let mut res: Vec<_> = hits
                .iter()
                .map(|hit| (hit.start, hit.end, format!("{:?}", hit.kind), hit.lang))
                .collect();
            res.sort();
            res
        }

        /// Words from every lexicon kind, fragments, and spaced-out letters.
        const WORDS: [&str; 24] = [
            "a", "e", "the", "and", "children", "child", "year", "old", "12", "yo", "de", "años",
            "niña", "send", "pics", "k i d", "s.e.x", "draw", "school", "grade", "7th", "en",
            "secret", "don't",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn same_hits_as_an_unanchored_search(
                words in proptest::collection::vec((0..WORDS.len(), "[ .,!?x]{0,2}"), 0..30)
            ) {
                let text: String = words.iter().map(|(idx, sep)| format!("{}{sep}", WORDS[*idx])).collect();
                let (lexicon, searcher) = lexicon();
                let norm = normalize(&text);
                let (mut hits, mut votes) = (Vec::new(), vec![0; lexicon.langs.len()]);
                collect_lexicon_hits(lexicon, &norm, &mut hits, &mut votes);
                let (want_hits, want_votes) = reference(lexicon, searcher, &norm);
                prop_assert_eq!(key(&hits), key(&want_hits));
                prop_assert_eq!(votes, want_votes);
            }
        }
    }
}
