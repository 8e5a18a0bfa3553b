//! Lexicons: the word and phrase lists behind the built-in detectors, one
//! TOML file per language in `data/`, embedded in the binary and extendable
//! at run time with more files of the same shape (an operator's additions).
//!
//! A file has a `lang` and any of these sections (every list optional):
//!
//! | section | lists | what a hit means |
//! |---|---|---|
//! | `minor` | `strong`, `teen`, `weak`, `modifiers`, `school`, `lang_only` | a reference to a minor, by strength; `modifiers` (little, young) raise a weak noun that follows; `lang_only` entries count only when the text is in the file's language (Dutch `kind`) |
//! | `age` | `numbers` (word = value), `units`, `units_bare`, `months`, `before`, `statement`, `not_age_after`, `time_before`, `time_after`, `grade_before`, `grade_after`, `after_noun`, `compound_units` | the pieces that turn a number into an age or a school grade; `after_noun` joins a child noun to a bare number that is its age (`Mädchen mit 12`, `menina de 12`); `compound_units` are written onto every number word as one word (`zwölfjährige`) |
//! | `adult` | `markers` | adult context: cancels a weak minor noun nearby |
//! | `sexual` | `explicit`, `suggestive`, `anatomy`, `sexualising`, `acts`, `material`, `negated`, `topic`, `lang_only` | sexual content by kind; `material` names abuse material itself (minor and sexual in one); `negated` and `topic` phrases absorb the sexual words inside them (`non sexual`, `sex education`); `lang_only` entries are explicit words that are ordinary words in another language (French `nu` is Dutch for "now") and count unless the text is in another language |
//! | `intent` | `create`, `acquire`, `media`, `trade`, `desire`, `non_request`, `reporting`, `discourse`, `audience` | request framing; `trade` verbs with a media noun and an age range of minors are an offer of abuse material (`trading vids 13-15`); `non_request` right before a verb makes it reported speech (`asked me to send`); `reporting` verbs (`wants her to`, `told my daughter to`, `le pide`) make every request after them in their clause reported speech, unless said by `i`, `we` or `you` or asked of the reader (`can you`); `audience` before a child noun makes the child the one the thing is for (`a story for a 6 year old`), so that clothing and body words are not said of the child |
//! | `context` | `protective`, `education`, `health`, `news`, `research`, `parenting`, `talk`, `about` | benign contexts that dampen scores; `talk` (talk, explain) and `about` (the word that introduces a topic) frame a sexual word as the topic of a conversation with a child, not something said of the child (`talk to my son about pornography`) |
//! | `help` | `question`, `disclosure`, `advice`, `resource`, `takedown` | help-seeking; `takedown` entries ask how to get one's own picture removed (`remove a photo of me`, `une photo de moi envoyée`) and are a specific question about something relevant when a minor and images are named; `advice` entries are the speaker asking what they should do or whether something is wrong (`should i`, `soll ich`, `is that a crime`) and count only in a message of its own, in a sentence that is a question (it ends with `?` or opens with a question word) or, at full weight, at the start of a clause; resource words (`police@0.6`) need a disclosure too; `resource` entries name a helpline or reporting line for children (`kindertelefoon`, `nummer gegen kummer`) and are a help question about something relevant by themselves |
//! | `grooming` | `age_probing`, `trust`, `secrecy`, `secrecy_benign`, `peer_age`, `family_address`, `conceal`, `isolation`, `platform`, `gifts`, `image_request`, `meeting`, `child_context` | grooming stages; `child_context` is what is said to a child (`your parents`, `after school`, `your teacher`): a minor is present, as with a stated age, but only for grooming; `peer_age` (`same`, `moi aussi`) from the one who asked an age makes it children asking each other; `family_address` (`thanks mom`, `hola abuelo`) marks a family chat; `conceal` (`don't mention it`, `no le cuentes`) is secrecy only where the child's parents or school are named |
//! | `sextortion` | `threat`, `reception`, `insinuation`, `demand`, `possession` | sextortion; `reception` (`sees`, `gets them`, `recibirán`) next to an audience (`or your dad sees`) is a distribution, and so is an `insinuation` (`it would be a shame if`), which never pairs with an audience alone |
//! | `stopwords` | `words` | language identification |
//! | `variants` | word or phrase = list of spellings | chat spellings (`your` = [`ur`, `yr`]): every phrase of the language, stopwords aside, is also added with each, up to 16 spellings a phrase |
//! | `letter_variants` | letter = spelling | a letter's spelling without it (`ä` = `ae`), applied like `variants` |
//!
//! Phrases are normalised like the text. A trailing `*` matches any word that
//! starts with the phrase; a trailing `@0.6` sets the entry's weight.

use std::collections::{BTreeMap, HashMap};

use aho_corasick::{
    Anchored, MatchKind, StartKind,
    automaton::{Automaton, StateID},
    dfa::DFA,
};
use serde::Deserialize;

use crate::{error::Error, normalize::normalize};

/// The built-in lexicon files, embedded at compile time.
pub const BUILT_IN: [(&str, &str); 7] = [
    ("en.toml", include_str!("../data/en.toml")),
    ("es.toml", include_str!("../data/es.toml")),
    ("fr.toml", include_str!("../data/fr.toml")),
    ("de.toml", include_str!("../data/de.toml")),
    ("pt.toml", include_str!("../data/pt.toml")),
    ("it.toml", include_str!("../data/it.toml")),
    ("nl.toml", include_str!("../data/nl.toml")),
];

/// What a lexicon hit says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    MinorStrong,
    MinorTeen,
    MinorWeak,
    MinorModifier,
    MinorSchool,
    /// A number word with its value.
    Number(u8),
    AgeUnit,
    AgeUnitBare,
    AgeMonths,
    AgeBefore,
    AgeStatement,
    NotAgeAfter,
    TimeBefore,
    TimeAfter,
    GradeBefore,
    GradeAfter,
    /// Joins a child noun to a bare number, its age (`mit`, `de`, `van`).
    AgeAfterNoun,
    /// A number word and an age unit written as one word (`zwölfjährige`).
    AgeCompound(u8),
    Adult,
    SexExplicit,
    SexSuggestive,
    SexAnatomy,
    Sexualising,
    SexAct,
    Material,
    SexNegated,
    AbuseTopic,
    IntentCreate,
    IntentAcquire,
    IntentMedia,
    /// A verb of trading (`trade`, `troco`, `ruil`): with a media noun and
    /// an age range (`vids 13-15`), an offer of abuse material.
    Trade,
    Desire,
    NonRequest,
    /// A third party's asking verb (`wants her to`, `keeps telling me to`,
    /// `le pide`): a request later in its sentence is what they asked for.
    Reporting,
    /// Before a child noun: the one something is for (`for`, `para`).
    Audience,
    Discourse,
    Protective,
    Education,
    Health,
    News,
    Research,
    Parenting,
    /// A verb of talking or explaining (`talk`, `hablar`, `sprechen`).
    Talk,
    /// The word that introduces a topic (`about`, `sobre`, `über`).
    About,
    HelpQuestion,
    HelpDisclosure,
    /// A first-person advice question, counted only in a question sentence.
    HelpAdvice,
    /// A helpline or reporting line asked for (`kindertelefoon`, `a
    /// helpline for children`): a specific help question, relevant by
    /// itself.
    HelpResource,
    /// Asking how to get one's own picture taken down (`remove a photo of
    /// me`, `une photo de moi envoyée`): a specific help question, relevant
    /// when a minor and images are named (`i sent it when i was 15`).
    HelpTakedown,
    Stage(Stage),
    SecrecyBenign,
    /// Saying one is the same age (`same`, `moi aussi`): with one's own
    /// question about age, children talking to each other.
    PeerAge,
    /// Addressing someone as family (`thanks mom`, `hola abuelo`).
    FamilyAddress,
    /// Keeping something from someone, weaker than a secrecy phrase
    /// (`don't mention it`, `hoeven dat niet te weten`): the secrecy stage
    /// only in a conversation with a child's parents or school in it.
    Conceal,
    /// Said to a child: the addressee's parents, teacher or school (`your
    /// parents`, `after school`); a minor present, for grooming only.
    ChildContext,
    Threat,
    /// An audience receiving or seeing (`sees`, `gets them`, `reçoit`,
    /// `krijgen ze`): next to an audience, a distribution (`or your dad
    /// sees`).
    Reception,
    /// A hint at what others might see (`it would be a shame if`, `ce
    /// serait dommage que`): a distribution that needs the victim's images
    /// named or a demand, never an audience alone.
    Insinuation,
    Demand,
    Possession,
    Stopword,
}

/// A grooming stage (DESIGN.md, "grooming").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Stage {
    AgeProbing,
    Trust,
    Secrecy,
    Isolation,
    Platform,
    Gifts,
    ImageRequest,
    Meeting,
}

impl Kind {
    /// A help-seeking phrase of any kind (question, disclosure, advice
    /// question, helpline).
    pub(crate) fn is_help(self) -> bool {
        matches!(
            self,
            Kind::HelpQuestion
                | Kind::HelpDisclosure
                | Kind::HelpAdvice
                | Kind::HelpResource
                | Kind::HelpTakedown
        )
    }

    /// Core kinds take part in "longest phrase wins": a hit inside a longer
    /// core hit is dropped (`sex` inside `sex education`). Overlay kinds
    /// (context, help, grooming, sextortion, language, media nouns) never
    /// suppress or get suppressed, so `send me a pic` is both an image
    /// request and a request, and `nude pics` both sexual and a media noun.
    pub(crate) fn is_core(self) -> bool {
        !matches!(
            self,
            Kind::Protective
                | Kind::Education
                | Kind::Health
                | Kind::News
                | Kind::Research
                | Kind::Parenting
                | Kind::HelpQuestion
                | Kind::HelpDisclosure
                | Kind::HelpAdvice
                | Kind::HelpResource
                | Kind::HelpTakedown
                | Kind::Reporting
                | Kind::Stage(_)
                | Kind::SecrecyBenign
                | Kind::PeerAge
                | Kind::FamilyAddress
                | Kind::Conceal
                | Kind::ChildContext
                | Kind::Threat
                | Kind::Reception
                | Kind::Insinuation
                | Kind::Demand
                | Kind::Possession
                | Kind::Stopword
                | Kind::Discourse
                | Kind::IntentMedia
                | Kind::Trade
                | Kind::AgeAfterNoun
                | Kind::Talk
                | Kind::About
                | Kind::Audience
        )
    }
}

/// One meaning of a pattern.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    pub(crate) weight: f32,
    /// Index into [`Lexicon::langs`].
    pub(crate) lang: u8,
    /// Matches any word starting with the pattern.
    pub(crate) prefix: bool,
    /// Counts only when the text is in this entry's language.
    pub(crate) lang_only: bool,
    /// A variant with doubled letters collapsed; counts only where the text
    /// had a squashed letter run (`teeeen` is `ten`, which may mean `teen`).
    pub(crate) needs_squash: bool,
}

/// All lexicons, compiled into one Aho-Corasick automaton.
pub struct Lexicon {
    pub(crate) automaton: DFA,
    /// The pattern each automaton state spells, for the walk from word starts.
    pub(crate) own_patterns: OwnPatterns,
    /// The automaton's patterns, by pattern id: for the test that checks
    /// the anchored walk against an unanchored search (analysis.rs).
    #[cfg(test)]
    pub(crate) patterns: Vec<String>,
    /// Per pattern id, its entries (`entries[pattern_entries[id].0..].1`).
    pub(crate) pattern_entries: Vec<(u32, u32)>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) langs: Vec<String>,
}

impl std::fmt::Debug for Lexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lexicon")
            .field("patterns", &self.pattern_entries.len())
            .field("entries", &self.entries.len())
            .field("langs", &self.langs)
            .finish()
    }
}

/// A lexicon file as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LexiconFile {
    lang: String,
    #[serde(default)]
    minor: Minor,
    #[serde(default)]
    age: Age,
    #[serde(default)]
    adult: Adult,
    #[serde(default)]
    sexual: Sexual,
    #[serde(default)]
    intent: Intent,
    #[serde(default)]
    context: Context,
    #[serde(default)]
    help: Help,
    #[serde(default)]
    grooming: Grooming,
    #[serde(default)]
    sextortion: Sextortion,
    #[serde(default)]
    stopwords: Stopwords,
    /// Chat spellings of words (`your` = [`ur`]): every phrase of this
    /// language is also added with them (see [`LexiconBuilder::add_file`]).
    #[serde(default)]
    variants: BTreeMap<String, Vec<String>>,
    /// Spellings of letters (`ä` = `ae`): every phrase containing one is
    /// also added spelt with the replacement.
    #[serde(default)]
    letter_variants: BTreeMap<char, String>,
}

macro_rules! lists {
    ($name:ident { $($field:ident),* $(,)? }) => {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct $name { $(#[serde(default)] $field: Vec<String>,)* }
    };
}

lists!(Minor {
    strong,
    teen,
    weak,
    modifiers,
    school,
    lang_only
});
lists!(Adult { markers });
lists!(Sexual {
    explicit,
    suggestive,
    anatomy,
    sexualising,
    acts,
    material,
    negated,
    topic,
    lang_only
});
lists!(Intent {
    create,
    acquire,
    media,
    trade,
    desire,
    non_request,
    reporting,
    discourse,
    audience
});
lists!(Context {
    protective,
    education,
    health,
    news,
    research,
    parenting,
    talk,
    about
});
lists!(Help {
    question,
    disclosure,
    advice,
    resource,
    takedown
});
lists!(Grooming {
    age_probing,
    trust,
    secrecy,
    secrecy_benign,
    peer_age,
    family_address,
    conceal,
    isolation,
    platform,
    gifts,
    image_request,
    meeting,
    child_context
});
lists!(Sextortion {
    threat,
    reception,
    insinuation,
    demand,
    possession
});
lists!(Stopwords { words });

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Age {
    #[serde(default)]
    numbers: BTreeMap<String, u8>,
    #[serde(default)]
    units: Vec<String>,
    #[serde(default)]
    units_bare: Vec<String>,
    #[serde(default)]
    months: Vec<String>,
    #[serde(default)]
    before: Vec<String>,
    #[serde(default)]
    statement: Vec<String>,
    #[serde(default)]
    not_age_after: Vec<String>,
    #[serde(default)]
    time_before: Vec<String>,
    #[serde(default)]
    time_after: Vec<String>,
    #[serde(default)]
    grade_before: Vec<String>,
    #[serde(default)]
    grade_after: Vec<String>,
    #[serde(default)]
    after_noun: Vec<String>,
    #[serde(default)]
    compound_units: Vec<String>,
}

/// Collects lexicon files, then compiles them.
#[derive(Default)]
pub struct LexiconBuilder {
    /// Normalised pattern to its entries.
    patterns: HashMap<String, Vec<Entry>>,
    langs: Vec<String>,
    /// Per language index, normalised word (or words) to chat spellings.
    variants: Vec<Vec<(String, Vec<String>)>>,
    /// Per language index, letter to its spelling without the letter.
    letter_variants: Vec<Vec<(char, String)>>,
}

/// At most this many spellings of one phrase, the phrase included: enough
/// for three variable words, bounded so that no phrase multiplies the
/// automaton.
const MAX_SPELLINGS: usize = 16;

impl LexiconBuilder {
    /// A builder with the built-in lexicons loaded.
    pub fn with_built_ins() -> Result<LexiconBuilder, Error> {
        let mut res = LexiconBuilder::default();
        for (name, text) in BUILT_IN {
            res.add_file(name, text)?;
        }
        Ok(res)
    }

    /// Adds one lexicon file (TOML, the shape of `data/en.toml`). `name` is
    /// used in errors only.
    ///
    /// # Errors
    /// Invalid TOML, unknown sections or lists, or a bad `@weight`, with the
    /// file name and the TOML location.
    pub fn add_file(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let file: LexiconFile = toml::from_str(text).map_err(|err| Error::Lexicon {
            file: name.to_owned(),
            reason: err.to_string(),
        })?;
        let lang = match self.langs.iter().position(|it| *it == file.lang) {
            Some(idx) => idx,
            None => {
                self.langs.push(file.lang.clone());
                self.langs.len() - 1
            }
        };
        let lang = u8::try_from(lang).map_err(|_| Error::Lexicon {
            file: name.to_owned(),
            reason: "more than 255 languages".to_owned(),
        })?;
        self.add_variants(name, usize::from(lang), &file)?;
        let mut add =
            |list: &str, phrases: &[String], kind: Kind, lang_only: bool| -> Result<(), Error> {
                for phrase in phrases {
                    self.add_phrase(name, list, phrase, kind, lang, lang_only)?;
                }
                Ok(())
            };
        let m = &file.minor;
        add("minor.strong", &m.strong, Kind::MinorStrong, false)?;
        add("minor.teen", &m.teen, Kind::MinorTeen, false)?;
        add("minor.weak", &m.weak, Kind::MinorWeak, false)?;
        add("minor.modifiers", &m.modifiers, Kind::MinorModifier, false)?;
        add("minor.school", &m.school, Kind::MinorSchool, false)?;
        add("minor.lang_only", &m.lang_only, Kind::MinorStrong, true)?;
        let a = &file.age;
        for (word, value) in &a.numbers {
            add(
                "age.numbers",
                std::slice::from_ref(word),
                Kind::Number(*value),
                false,
            )?;
        }
        add("age.units", &a.units, Kind::AgeUnit, false)?;
        add("age.units_bare", &a.units_bare, Kind::AgeUnitBare, false)?;
        add("age.months", &a.months, Kind::AgeMonths, false)?;
        add("age.before", &a.before, Kind::AgeBefore, false)?;
        add("age.statement", &a.statement, Kind::AgeStatement, false)?;
        add(
            "age.not_age_after",
            &a.not_age_after,
            Kind::NotAgeAfter,
            false,
        )?;
        add("age.time_before", &a.time_before, Kind::TimeBefore, false)?;
        add("age.time_after", &a.time_after, Kind::TimeAfter, false)?;
        add(
            "age.grade_before",
            &a.grade_before,
            Kind::GradeBefore,
            false,
        )?;
        add("age.grade_after", &a.grade_after, Kind::GradeAfter, false)?;
        add("age.after_noun", &a.after_noun, Kind::AgeAfterNoun, false)?;
        for unit in &a.compound_units {
            for (word, value) in &a.numbers {
                // Number words that also mean `a` (`ein`, `een`) make no
                // compound worth a hit of its own.
                if *value < 2 {
                    continue;
                }
                add(
                    "age.compound_units",
                    &[format!("{word}{unit}")],
                    Kind::AgeCompound(*value),
                    false,
                )?;
            }
        }
        add("adult.markers", &file.adult.markers, Kind::Adult, false)?;
        let s = &file.sexual;
        add("sexual.explicit", &s.explicit, Kind::SexExplicit, false)?;
        add("sexual.lang_only", &s.lang_only, Kind::SexExplicit, true)?;
        add(
            "sexual.suggestive",
            &s.suggestive,
            Kind::SexSuggestive,
            false,
        )?;
        add("sexual.anatomy", &s.anatomy, Kind::SexAnatomy, false)?;
        add(
            "sexual.sexualising",
            &s.sexualising,
            Kind::Sexualising,
            false,
        )?;
        add("sexual.acts", &s.acts, Kind::SexAct, false)?;
        add("sexual.material", &s.material, Kind::Material, false)?;
        add("sexual.negated", &s.negated, Kind::SexNegated, false)?;
        add("sexual.topic", &s.topic, Kind::AbuseTopic, false)?;
        let i = &file.intent;
        add("intent.create", &i.create, Kind::IntentCreate, false)?;
        add("intent.acquire", &i.acquire, Kind::IntentAcquire, false)?;
        add("intent.media", &i.media, Kind::IntentMedia, false)?;
        add("intent.trade", &i.trade, Kind::Trade, false)?;
        add("intent.desire", &i.desire, Kind::Desire, false)?;
        add(
            "intent.non_request",
            &i.non_request,
            Kind::NonRequest,
            false,
        )?;
        add("intent.reporting", &i.reporting, Kind::Reporting, false)?;
        add("intent.discourse", &i.discourse, Kind::Discourse, false)?;
        add("intent.audience", &i.audience, Kind::Audience, false)?;
        let c = &file.context;
        add("context.protective", &c.protective, Kind::Protective, false)?;
        add("context.education", &c.education, Kind::Education, false)?;
        add("context.health", &c.health, Kind::Health, false)?;
        add("context.news", &c.news, Kind::News, false)?;
        add("context.research", &c.research, Kind::Research, false)?;
        add("context.parenting", &c.parenting, Kind::Parenting, false)?;
        add("context.talk", &c.talk, Kind::Talk, false)?;
        add("context.about", &c.about, Kind::About, false)?;
        add(
            "help.question",
            &file.help.question,
            Kind::HelpQuestion,
            false,
        )?;
        add(
            "help.disclosure",
            &file.help.disclosure,
            Kind::HelpDisclosure,
            false,
        )?;
        add("help.advice", &file.help.advice, Kind::HelpAdvice, false)?;
        add(
            "help.takedown",
            &file.help.takedown,
            Kind::HelpTakedown,
            false,
        )?;
        add(
            "help.resource",
            &file.help.resource,
            Kind::HelpResource,
            false,
        )?;
        let g = &file.grooming;
        add(
            "grooming.age_probing",
            &g.age_probing,
            Kind::Stage(Stage::AgeProbing),
            false,
        )?;
        add("grooming.trust", &g.trust, Kind::Stage(Stage::Trust), false)?;
        add(
            "grooming.secrecy",
            &g.secrecy,
            Kind::Stage(Stage::Secrecy),
            false,
        )?;
        add(
            "grooming.secrecy_benign",
            &g.secrecy_benign,
            Kind::SecrecyBenign,
            false,
        )?;
        add("grooming.peer_age", &g.peer_age, Kind::PeerAge, false)?;
        add(
            "grooming.family_address",
            &g.family_address,
            Kind::FamilyAddress,
            false,
        )?;
        add("grooming.conceal", &g.conceal, Kind::Conceal, false)?;
        add(
            "grooming.isolation",
            &g.isolation,
            Kind::Stage(Stage::Isolation),
            false,
        )?;
        add(
            "grooming.platform",
            &g.platform,
            Kind::Stage(Stage::Platform),
            false,
        )?;
        add("grooming.gifts", &g.gifts, Kind::Stage(Stage::Gifts), false)?;
        add(
            "grooming.image_request",
            &g.image_request,
            Kind::Stage(Stage::ImageRequest),
            false,
        )?;
        add(
            "grooming.meeting",
            &g.meeting,
            Kind::Stage(Stage::Meeting),
            false,
        )?;
        add(
            "grooming.child_context",
            &g.child_context,
            Kind::ChildContext,
            false,
        )?;
        let x = &file.sextortion;
        add("sextortion.threat", &x.threat, Kind::Threat, false)?;
        add("sextortion.reception", &x.reception, Kind::Reception, false)?;
        add(
            "sextortion.insinuation",
            &x.insinuation,
            Kind::Insinuation,
            false,
        )?;
        add("sextortion.demand", &x.demand, Kind::Demand, false)?;
        add(
            "sextortion.possession",
            &x.possession,
            Kind::Possession,
            false,
        )?;
        add(
            "stopwords.words",
            &file.stopwords.words,
            Kind::Stopword,
            false,
        )?;
        Ok(())
    }

    /// Keeps `file`'s variants for every later phrase of language `lang`,
    /// this file's included.
    fn add_variants(&mut self, name: &str, lang: usize, file: &LexiconFile) -> Result<(), Error> {
        if self.variants.len() <= lang {
            self.variants.resize_with(lang + 1, Vec::new);
            self.letter_variants.resize_with(lang + 1, Vec::new);
        }
        let bad = |reason: String| Error::Lexicon {
            file: name.to_owned(),
            reason,
        };
        for (word, spellings) in &file.variants {
            let word = normalize(word).as_str().trim().to_owned();
            if word.is_empty() {
                return Err(bad("variants: an empty word".to_owned()));
            }
            let spellings: Vec<String> = spellings
                .iter()
                .map(|it| normalize(it).as_str().trim().to_owned())
                .filter(|it| !it.is_empty() && *it != word)
                .collect();
            self.variants[lang].push((word, spellings));
        }
        for (letter, spelling) in &file.letter_variants {
            if spelling.is_empty() {
                return Err(bad(format!(
                    "letter_variants: an empty spelling of {letter:?}"
                )));
            }
            self.letter_variants[lang].push((*letter, spelling.clone()));
        }
        Ok(())
    }

    /// `phrase` (as written) and its other spellings in language `lang`,
    /// normalised: letter variants first, then word variants, each
    /// replacing every whole-word occurrence; at most [`MAX_SPELLINGS`].
    fn spellings(&self, phrase: &str, lang: usize) -> Vec<String> {
        let mut raw = vec![phrase.to_owned()];
        for (letter, spelling) in self.letter_variants.get(lang).into_iter().flatten() {
            if phrase.contains(*letter) {
                raw.push(phrase.replace(*letter, spelling));
            }
        }
        let mut res: Vec<String> = Vec::new();
        for it in &raw {
            let pattern = pattern_of(it);
            if !res.contains(&pattern) {
                res.push(pattern);
            }
        }
        for (word, alternatives) in self.variants.get(lang).into_iter().flatten() {
            let count = res.len();
            for idx in 0..count {
                for alternative in alternatives {
                    if res.len() >= MAX_SPELLINGS {
                        return res;
                    }
                    if let Some(other) = replace_words(&res[idx], word, alternative)
                        && !res.contains(&other)
                    {
                        res.push(other);
                    }
                }
            }
        }
        res
    }

    fn add_phrase(
        &mut self,
        file: &str,
        list: &str,
        phrase: &str,
        kind: Kind,
        lang: u8,
        lang_only: bool,
    ) -> Result<(), Error> {
        let (phrase, weight) = match phrase.rsplit_once('@') {
            Some((head, tail)) if !head.is_empty() => {
                let weight: f32 = tail.trim().parse().map_err(|_| Error::Lexicon {
                    file: file.to_owned(),
                    reason: format!(
                        "{list}: expected a weight like @0.6 after a phrase, got @{tail}"
                    ),
                })?;
                if !(0.0..=1.0).contains(&weight) {
                    return Err(Error::Lexicon {
                        file: file.to_owned(),
                        reason: format!("{list}: expected a weight from 0 to 1, got {weight}"),
                    });
                }
                (head, weight)
            }
            // Disclosures are generic (`he asked me`) unless marked strong.
            _ if kind == Kind::HelpDisclosure => (phrase, 0.5),
            _ => (phrase, 1.0),
        };
        let (phrase, prefix) = match phrase.strip_suffix('*') {
            Some(head) => (head, true),
            None => (phrase, false),
        };
        let entry = Entry {
            kind,
            weight,
            lang,
            prefix,
            lang_only,
            needs_squash: false,
        };
        // Stopwords vote for a language as written; a chat spelling
        // (`q` for `que`) is no evidence of one.
        let spellings = if kind == Kind::Stopword {
            vec![pattern_of(phrase)]
        } else {
            self.spellings(phrase, usize::from(lang))
        };
        for pattern in spellings {
            if pattern.is_empty() {
                continue;
            }
            let collapsed = collapse_doubles(&pattern);
            let squashed = collapsed != pattern;
            self.patterns.entry(pattern).or_default().push(entry);
            if squashed {
                self.patterns.entry(collapsed).or_default().push(Entry {
                    needs_squash: true,
                    ..entry
                });
            }
        }
        Ok(())
    }

    /// Compiles the automaton.
    ///
    /// # Errors
    /// Only if the automaton cannot be built (too many patterns).
    pub fn build(self) -> Result<Lexicon, Error> {
        let mut patterns: Vec<(String, Vec<Entry>)> = self.patterns.into_iter().collect();
        patterns.sort_by(|a, b| a.0.cmp(&b.0));
        let mut pattern_entries = Vec::with_capacity(patterns.len());
        let mut entries = Vec::new();
        let mut strings = Vec::with_capacity(patterns.len());
        for (pattern, list) in patterns {
            let start = entries.len() as u32;
            entries.extend(list);
            pattern_entries.push((start, entries.len() as u32));
            strings.push(pattern);
        }
        let automaton = aho_corasick::dfa::Builder::new()
            .match_kind(MatchKind::Standard)
            // Walked from word starts only (analysis.rs).
            .start_kind(StartKind::Anchored)
            .build(&strings)
            .map_err(|err| Error::Lexicon {
                file: "(all lexicons)".to_owned(),
                reason: err.to_string(),
            })?;
        let own_patterns = OwnPatterns::new(&automaton, &strings);
        Ok(Lexicon {
            automaton,
            own_patterns,
            #[cfg(test)]
            patterns: strings,
            pattern_entries,
            entries,
            langs: self.langs,
        })
    }
}

/// For the states of an anchored automaton, the pattern each state spells
/// in full, if it is one.
///
/// Walked from a word start, the automaton is in the state of the trie node
/// for the bytes read so far; that state's matches are the pattern spelled
/// by those bytes (if it is a pattern) plus every pattern that is a suffix of
/// them (`en` at the end of `children`), and only the first starts at the
/// word start. Looking it up here costs one load from a table of 8 bytes per
/// state, where going through the state's match list cost two dependent
/// loads per match, mostly cache misses on a large lexicon (one-letter
/// stopwords are a suffix of most states).
pub(crate) struct OwnPatterns {
    /// State ids are multiples of `1 << shift`.
    shift: u32,
    /// At `state id >> shift`: that state id and its pattern, or `u32::MAX`
    /// for a state that spells no pattern.
    slots: Vec<(u32, u32)>,
}

impl OwnPatterns {
    fn new(dfa: &DFA, patterns: &[String]) -> OwnPatterns {
        let mut found = Vec::with_capacity(patterns.len());
        if let Ok(start) = dfa.start_state(Anchored::Yes) {
            for (id, pattern) in patterns.iter().enumerate() {
                if pattern.is_empty() {
                    continue;
                }
                let mut sid = start;
                for &byte in pattern.as_bytes() {
                    sid = dfa.next_state(Anchored::Yes, sid, byte);
                }
                found.push((sid.as_u32(), id as u32));
            }
        }
        // State ids are a state index times the (power of two) stride; the
        // shift only needs to keep these states apart, and lookups compare
        // the whole id.
        let shift = found
            .iter()
            .map(|(sid, _)| sid.trailing_zeros())
            .min()
            .unwrap_or(0)
            .min(31);
        let len = found
            .iter()
            .map(|(sid, _)| (sid >> shift) as usize + 1)
            .max()
            .unwrap_or(0);
        let mut slots = vec![(u32::MAX, 0); len];
        for (sid, id) in found {
            slots[(sid >> shift) as usize] = (sid, id);
        }
        OwnPatterns { shift, slots }
    }

    /// The pattern that state `sid` spells, if any.
    #[inline]
    pub(crate) fn get(&self, sid: StateID) -> Option<usize> {
        let sid = sid.as_u32();
        match self.slots.get((sid >> self.shift) as usize) {
            Some(&(at, id)) if at == sid => Some(id as usize),
            _ => None,
        }
    }
}

/// A phrase as the automaton matches it: normalised like the text, without
/// leading or trailing spaces and dots.
fn pattern_of(phrase: &str) -> String {
    normalize(phrase)
        .as_str()
        .trim_matches(|c| c == ' ' || c == '.')
        .to_owned()
}

/// `pattern` with every whole-word occurrence of `word` (one word or
/// several) replaced by `by`, or `None` if it has none.
fn replace_words(pattern: &str, word: &str, by: &str) -> Option<String> {
    let padded = format!(" {pattern} ");
    let needle = format!(" {word} ");
    if !padded.contains(&needle) {
        return None;
    }
    // Replacing twice catches occurrences that share a space (`you you`).
    let once = padded.replace(&needle, &format!(" {by} "));
    let twice = once.replace(&needle, &format!(" {by} "));
    Some(twice.trim().to_owned())
}

/// `teen` to `ten`: every run of a repeated letter collapsed to one.
fn collapse_doubles(pattern: &str) -> String {
    let mut res = String::with_capacity(pattern.len());
    let mut prev = None;
    for ch in pattern.chars() {
        if Some(ch) == prev && ch.is_alphabetic() {
            continue;
        }
        res.push(ch);
        prev = Some(ch);
    }
    res
}

impl Lexicon {
    /// The built-in lexicons.
    ///
    /// # Errors
    /// Never for the files shipped with the crate (a unit test builds them).
    pub fn built_in() -> Result<Lexicon, Error> {
        LexiconBuilder::with_built_ins()?.build()
    }

    /// The entries of pattern `id`.
    pub(crate) fn entries(&self, id: usize) -> &[Entry] {
        let (start, end) = self.pattern_entries[id];
        &self.entries[start as usize..end as usize]
    }

    /// Number of distinct patterns.
    pub fn pattern_count(&self) -> usize {
        self.pattern_entries.len()
    }

    /// The languages the lexicon knows, in load order.
    pub fn langs(&self) -> &[String] {
        &self.langs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_lexicons_compile() {
        let lexicon = Lexicon::built_in().unwrap();
        assert_eq!(lexicon.langs(), ["en", "es", "fr", "de", "pt", "it", "nl"]);
        assert!(
            lexicon.pattern_count() > 1000,
            "{}",
            lexicon.pattern_count()
        );
    }

    #[test]
    fn bad_files_name_the_file_and_list() {
        let mut builder = LexiconBuilder::default();
        let err = builder
            .add_file("extra.toml", "lang = \"en\"\n[minor]\nstrnog = []\n")
            .unwrap_err();
        assert!(err.to_string().contains("extra.toml"), "{err}");
        assert!(err.to_string().contains("unknown field `strnog`"), "{err}");
        let err = builder
            .add_file(
                "extra.toml",
                "lang = \"en\"\n[minor]\nstrong = [\"kid@x\"]\n",
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "extra.toml: minor.strong: expected a weight like @0.6 after a phrase, got @x"
        );
    }

    #[test]
    fn chat_and_letter_spellings_are_added() {
        let mut builder = LexiconBuilder::default();
        builder
            .add_file(
                "en.toml",
                concat!(
                    "lang = \"en\"\n",
                    "[variants]\n\"your\" = [\"ur\", \"yr\"]\n\"pics\" = [\"pix\"]\n",
                    "[grooming]\nimage_request = [\"Send your pics\"]\n",
                    "[stopwords]\nwords = [\"your\"]\n",
                ),
            )
            .unwrap();
        builder
            .add_file(
                "de.toml",
                "lang = \"de\"\n[letter_variants]\n\"ä\" = \"ae\"\n[minor]\nweak = [\"Mädchen\"]\n",
            )
            .unwrap();
        let lexicon = builder.build().unwrap();
        let mut patterns = lexicon.patterns.clone();
        patterns.sort();
        assert_eq!(
            patterns,
            [
                "madchen",
                "maedchen",
                "send ur pics",
                "send ur pix",
                "send your pics",
                "send your pix",
                "send yr pics",
                "send yr pix",
                // Stopwords vote as written: no `ur`.
                "your",
            ]
        );
    }

    #[test]
    fn replace_words_replaces_whole_words_only() {
        assert_eq!(
            replace_words("you and your you", "you", "u").as_deref(),
            Some("u and your u")
        );
        assert_eq!(replace_words("youth", "you", "u"), None);
        assert_eq!(
            replace_words("i will send", "i will", "ill").as_deref(),
            Some("ill send")
        );
    }

    #[test]
    fn collapse_doubles_collapses_letter_runs() {
        assert_eq!(collapse_doubles("teen"), "ten");
        assert_eq!(collapse_doubles("little"), "litle");
        assert_eq!(collapse_doubles("18+"), "18+");
    }
}
