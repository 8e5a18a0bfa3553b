//! Normalisation: one linear pass from raw text to the form the lexicons are
//! matched against, with a map from every normalised byte back to the byte
//! range of the ORIGINAL text it came from.
//!
//! What it undoes, in order:
//! 1. per character: zero-width, bidi, control and combining characters are
//!    dropped (Zalgo text, invisible separators); common emoji substitutes
//!    become words (`data/emoji.toml`); everything else is decomposed with
//!    Unicode compatibility decomposition (the K of NFKC: fullwidth forms,
//!    ligatures, mathematical letters) and folded with decancer (Cyrillic and
//!    Greek look-alikes, small capitals, enclosed letters), then lowercased.
//!    Accents are removed with the combining marks, so `niña` and `nina`
//!    meet. ASCII digits are never folded into letters here ("12" stays "12").
//! 2. per token (a run of letters, digits and leet symbols): leetspeak digits
//!    and symbols that sit between letters become letters (`s3x`, `k!d`,
//!    `n00dz`), while numbers that stand apart or lead a token stay numbers
//!    (`12yo` is `12 yo`, an age); digits and letters are split apart;
//!    runs of three or more identical letters are squashed to one.
//! 3. across tokens: runs of three or more single letters separated only by
//!    spaces or punctuation are joined (`s.e.x`, `k i d`); separator runs
//!    become one space, or one `.` where a sentence ends.
//!
//! The pass is linear in the input (every step looks at a bounded window) and
//! uses memory proportional to the input; no regex is involved. Normalising
//! normalised text gives the same text (a property test checks it).

use std::{collections::HashMap, fmt, ops::Range, sync::OnceLock};

/// Normalised text, and where each of its bytes came from in the original.
pub struct Normalized {
    text: String,
    /// Per normalised byte, where it came from.
    origins: Vec<Origin>,
    /// Some byte has the [`JOINED`] flag (most texts have none, and the
    /// lexicon search then skips looking).
    has_joined: bool,
}

/// Where one normalised byte came from: the original bytes `start..end`,
/// and its [`JOINED`] and [`SQUASHED`] bits. One vector of these rather
/// than three of fields: one allocation and one capacity check per byte.
#[derive(Clone, Copy)]
struct Origin {
    start: u32,
    end: u32,
    flags: u8,
}

/// Flag: the byte belongs to a token joined from spaced-out letters, so a
/// lexicon word may start or end inside it (`a k i d` is `akid`).
pub(crate) const JOINED: u8 = 1;
/// Flag: the byte stands for a run of three or more identical letters.
pub(crate) const SQUASHED: u8 = 2;

impl fmt::Debug for Normalized {
    // Text is content (DESIGN invariant 1): show its size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Normalized")
            .field("len", &self.text.len())
            .finish_non_exhaustive()
    }
}

impl Normalized {
    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Length of the normalised text in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// True if normalisation left nothing (empty or invisible-only input).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The byte range of the original text that produced the normalised
    /// bytes `range`. Both ends fall on character boundaries of the original.
    /// An empty or out-of-range request gives an empty range at the nearest
    /// known position.
    pub fn original_range(&self, range: Range<usize>) -> Range<usize> {
        let end = range.end.min(self.text.len());
        let start = range.start.min(end);
        if start == end {
            let at = match self.origins.get(start) {
                Some(origin) => origin.start,
                None => self.origins.last().map_or(0, |origin| origin.end),
            } as usize;
            return at..at;
        }
        let mut lo = u32::MAX;
        let mut hi = 0;
        for origin in &self.origins[start..end] {
            lo = lo.min(origin.start);
            hi = hi.max(origin.end);
        }
        lo as usize..hi as usize
    }

    /// True if any byte has the [`JOINED`] flag.
    pub(crate) fn has_joined(&self) -> bool {
        self.has_joined
    }

    /// The flags of normalised byte `idx` (0 past the end).
    pub(crate) fn flags(&self, idx: usize) -> u8 {
        self.origins.get(idx).map_or(0, |origin| origin.flags)
    }
}

/// Normalises `text` with the built-in emoji table.
///
/// Inputs longer than 4 GiB are cut at the last character boundary below
/// 4 GiB (offsets are kept as `u32`); callers bound line length well below.
pub fn normalize(text: &str) -> Normalized {
    let mut out = Normalized {
        text: String::new(),
        origins: Vec::new(),
        has_joined: false,
    };
    // The per-character working buffers are kept per thread: a gateway or
    // scanner thread normalises message after message, and allocating them
    // afresh each time cost more than some of the passes.
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            normalize_into(text, &mut scratch, &mut out);
            // Bound what a thread keeps after one huge input.
            if scratch.units.capacity() > MAX_KEPT_UNITS {
                *scratch = Scratch::default();
            }
        }
        // Re-entered on this thread (cannot happen today): fresh buffers.
        Err(_) => normalize_into(text, &mut Scratch::default(), &mut out),
    });
    out
}

/// Most units a thread's scratch keeps between calls (1 MiB of units).
const MAX_KEPT_UNITS: usize = 1 << 16;

/// Reusable buffers for [`normalize_into`], so that a hot loop allocates
/// nothing per message once the buffers have grown.
#[derive(Default)]
pub(crate) struct Scratch {
    units: Vec<Unit>,
    items: Vec<Item>,
}

/// Normalises `text` into `out`, reusing `scratch` and `out`'s buffers.
pub(crate) fn normalize_into(text: &str, scratch: &mut Scratch, out: &mut Normalized) {
    let text = cap_len(text);
    out.text.clear();
    out.origins.clear();
    out.has_joined = false;
    out.text.reserve(text.len());
    out.origins.reserve(text.len());
    scratch.units.clear();
    scratch.items.clear();
    // The steps stay separate functions (`inline(never)`): inlined into
    // one, the compiler kept less in registers, and callgrind counted ~2%
    // more instructions per detect call.
    fold_chars(text, &mut scratch.units);
    tokenize(&mut scratch.units, &mut scratch.items);
    join_spaced_letters(&mut scratch.items);
    emit(&scratch.units, &scratch.items, out);
}

fn cap_len(text: &str) -> &str {
    const MAX: usize = u32::MAX as usize - 8;
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One folded character and the original bytes it stands for.
#[derive(Clone, Copy)]
struct Unit {
    ch: char,
    start: u32,
    end: u32,
    class: Class,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Letter,
    Digit,
    /// `'` and its look-alikes: inside words, dropped or an elision break.
    Apostrophe,
    /// `@ $ ! | €`: letters in leetspeak when inside a word.
    Leet,
    /// `. ! ? ;` and newlines: may end a sentence.
    Terminator,
    /// `+` right after a number (`18+`).
    Plus,
    /// Anything else: spaces, punctuation, symbols.
    Separator,
}

const fn classify_ascii(b: u8) -> Class {
    match b {
        b'a'..=b'z' => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        b'\'' | b'`' => Class::Apostrophe,
        b'@' | b'$' | b'|' => Class::Leet,
        b'!' => Class::Leet,
        b'.' | b'?' | b';' | b'\n' => Class::Terminator,
        b'+' => Class::Plus,
        _ => Class::Separator,
    }
}

/// Per ASCII byte: its lowercase form and class, or `(0, _)` for the
/// controls that are dropped (all but newline and tab). A table lookup per
/// byte instead of a test, a case fold and a match.
const ASCII_FOLD: [(u8, Class); 128] = {
    let mut table = [(0u8, Class::Separator); 128];
    let mut idx = 0;
    while idx < 128 {
        let b = idx as u8;
        let dropped = (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f;
        if !dropped {
            let lower = b.to_ascii_lowercase();
            table[idx] = (lower, classify_ascii(lower));
        }
        idx += 1;
    }
    table
};

/// The built-in emoji substitutes: emoji to a lexicon word.
fn emoji_table() -> &'static HashMap<char, &'static str> {
    static TABLE: OnceLock<HashMap<char, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut res = HashMap::new();
        // The data file is part of the crate; a parse failure is a build bug
        // caught by the unit test `emoji_table_parses`.
        if let Ok(file) = toml::from_str::<EmojiFile>(include_str!("../data/emoji.toml")) {
            for (emoji, word) in file.emoji {
                let mut chars = emoji.chars();
                if let (Some(ch), None) = (chars.next(), chars.next()) {
                    res.insert(ch, &*Box::leak(word.into_boxed_str()));
                }
            }
        }
        res
    })
}

#[derive(serde::Deserialize)]
struct EmojiFile {
    emoji: HashMap<String, String>,
}

/// True for characters that carry no visible letter: controls (but newline
/// and tab), format characters (zero-width, bidi), combining marks, variation
/// selectors, emoji modifiers and tags.
fn is_ignorable(ch: char) -> bool {
    let cp = ch as u32;
    if ch == '\n' || ch == '\t' {
        return false;
    }
    ch.is_control()
        || matches!(cp,
            0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5
            | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E
            | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0
            | 0xFFF0..=0xFFFB | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0x1F3FB..=0x1F3FF | 0xE0000..=0xE0FFF)
        || unicode_normalization::char::is_combining_mark(ch)
}

fn is_apostrophe(ch: char) -> bool {
    matches!(
        ch,
        '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{02BC}' | '\u{00B4}' | '\u{FF07}' | '\u{2032}'
    )
}

/// Step 1: characters to folded units.
#[inline(never)]
fn fold_chars(text: &str, units: &mut Vec<Unit>) {
    units.reserve(text.len());
    let bytes = text.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        let b = bytes[idx];
        if b < 0x80 {
            // ASCII fast path: no decomposition or look-alike tables.
            let (lower, class) = ASCII_FOLD[usize::from(b)];
            if lower != 0 {
                units.push(Unit {
                    ch: char::from(lower),
                    start: idx as u32,
                    end: idx as u32 + 1,
                    class,
                });
            }
            idx += 1;
            continue;
        }
        // Non-ASCII: decode one char. `idx` is always on a boundary.
        let Some(ch) = text[idx..].chars().next() else {
            break;
        };
        let start = idx as u32;
        idx += ch.len_utf8();
        let end = idx as u32;
        fold_non_ascii(ch, start, end, units);
    }
}

fn fold_non_ascii(ch: char, start: u32, end: u32, units: &mut Vec<Unit>) {
    if is_ignorable(ch) {
        return;
    }
    if is_apostrophe(ch) {
        units.push(Unit {
            ch: '\'',
            start,
            end,
            class: Class::Apostrophe,
        });
        return;
    }
    if let Some(word) = emoji_table().get(&ch) {
        push_sep(' ', start, end, units);
        for letter in word.chars() {
            units.push(Unit {
                ch: letter,
                start,
                end,
                class: Class::Letter,
            });
        }
        push_sep(' ', start, end, units);
        return;
    }
    match ch {
        // Sentence ends in other scripts, the ellipsis, and the euro sign
        // (a leet `e`); handled before decancer, which would drop or alter them.
        '\u{2026}' | '\u{3002}' | '\u{FF0E}' | '\u{FF01}' | '\u{FF1F}' | '\u{037E}'
        | '\u{0589}' | '\u{061F}' | '\u{06D4}' | '\u{0964}' => {
            units.push(Unit {
                ch: '.',
                start,
                end,
                class: Class::Terminator,
            });
            return;
        }
        '\u{2028}' | '\u{2029}' | '\u{0085}' => {
            units.push(Unit {
                ch: '\n',
                start,
                end,
                class: Class::Terminator,
            });
            return;
        }
        '\u{20AC}' => {
            units.push(Unit {
                ch: '\u{20AC}',
                start,
                end,
                class: Class::Leet,
            });
            return;
        }
        'ß' | 'ẞ' => {
            units.push(Unit {
                ch: 's',
                start,
                end,
                class: Class::Letter,
            });
            units.push(Unit {
                ch: 's',
                start,
                end,
                class: Class::Letter,
            });
            return;
        }
        _ => {}
    }
    if ch.is_whitespace() {
        push_sep(' ', start, end, units);
        return;
    }
    let push_folded = |c: char, units: &mut Vec<Unit>| {
        if c.is_ascii() {
            let lower = (c as u8).to_ascii_lowercase();
            if lower < 0x20 || lower == 0x7f {
                return;
            }
            units.push(Unit {
                ch: lower as char,
                start,
                end,
                class: classify_ascii(lower),
            });
        } else if is_ignorable(c) {
        } else if c.is_whitespace() {
            push_sep(' ', start, end, units);
        } else {
            for lower in c.to_lowercase() {
                let class = if lower.is_alphabetic() {
                    Class::Letter
                } else if lower.is_numeric() {
                    // Numbers in other scripts (e.g. superscripts that did not
                    // decompose) are kept but do not take part in ages.
                    Class::Letter
                } else {
                    Class::Separator
                };
                let lower = if class == Class::Separator {
                    ' '
                } else {
                    lower
                };
                units.push(Unit {
                    ch: lower,
                    start,
                    end,
                    class,
                });
            }
        }
    };
    unicode_normalization::char::decompose_compatible(ch, |part| {
        if part.is_ascii() || is_ignorable(part) {
            push_folded(part, units);
            return;
        }
        // decancer folds look-alikes to their Latin reading; applied twice at
        // most so that its own output is stable (normalising is idempotent).
        match decancer::cure_char(part, decancer::Options::default()) {
            decancer::Translation::Character(cured) => {
                if cured.is_ascii() {
                    push_folded(cured, units);
                } else {
                    match decancer::cure_char(cured, decancer::Options::default()) {
                        decancer::Translation::Character(again) => push_folded(again, units),
                        decancer::Translation::String(again) => {
                            for c in again.chars() {
                                push_folded(c, units);
                            }
                        }
                        decancer::Translation::None => {}
                    }
                }
            }
            decancer::Translation::String(cured) => {
                for c in cured.chars() {
                    push_folded(c, units);
                }
            }
            decancer::Translation::None => {}
        }
    });
}

fn push_sep(ch: char, start: u32, end: u32, units: &mut Vec<Unit>) {
    units.push(Unit {
        ch,
        start,
        end,
        class: Class::Separator,
    });
}

/// A token (word) or a separator run, as ranges into the unit array after
/// tokenisation rewrote the units in place.
#[derive(Clone, Copy, Debug)]
enum Item {
    /// Units `range` form one word; `letters` is its char count.
    Token {
        start: u32,
        end: u32,
        chars: u32,
        single_letter: bool,
        digits: bool,
        squashed: bool,
        joined: bool,
    },
    /// Units `range` are separators; `terminator` if any ends a sentence.
    Sep {
        start: u32,
        end: u32,
        terminator: bool,
    },
}

/// Letters that a leet digit or symbol stands for.
fn leet_letter(ch: char) -> Option<char> {
    Some(match ch {
        '0' => 'o',
        '1' => 'i',
        '2' => 'z',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '6' => 'g',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        '@' => 'a',
        '$' => 's',
        '!' => 'i',
        '|' => 'i',
        '\u{20AC}' => 'e',
        _ => return None,
    })
}

/// Words after which an apostrophe marks an elision (French and Italian
/// `l'enfant`, `dell'età`): a word break, not a dropped mark. English `i'm`
/// is not one: it becomes `im`, which keeps `i'm a` from reading as the
/// spaced-out letters `i m a`.
const ELISIONS: [&str; 16] = [
    "l", "d", "j", "m", "n", "s", "t", "c", "qu", "dell", "all", "nell", "dall", "sull", "un",
    "quest",
];

/// Step 2: rewrites `units` into tokens and separator runs (in `items`),
/// applying leetspeak, digit/letter splitting and squashing inside tokens.
/// Units are rewritten in place: a token's units are compacted to its final
/// characters, so the unit array may shrink.
#[inline(never)]
fn tokenize(units: &mut Vec<Unit>, items: &mut Vec<Item>) {
    let len = units.len();
    let mut read = 0;
    let mut write = 0;
    while read < len {
        let class = units[read].class;
        let is_word_start = match class {
            Class::Letter | Class::Digit => true,
            // `$ex`: a leading dollar before two letters.
            Class::Leet => {
                units[read].ch == '$'
                    && read + 2 < len
                    && units[read + 1].class == Class::Letter
                    && units[read + 2].class == Class::Letter
            }
            _ => false,
        };
        if !is_word_start {
            // A separator run: everything up to the next word start.
            let sep_start = write;
            let mut terminator = false;
            while read < len {
                let unit = units[read];
                let starts_word = match unit.class {
                    Class::Letter | Class::Digit => true,
                    Class::Leet => {
                        unit.ch == '$'
                            && read + 2 < len
                            && units[read + 1].class == Class::Letter
                            && units[read + 2].class == Class::Letter
                    }
                    _ => false,
                };
                if starts_word {
                    break;
                }
                terminator |= matches!(unit.class, Class::Terminator)
                    || (unit.class == Class::Leet && unit.ch == '!');
                units[write] = unit;
                write += 1;
                read += 1;
            }
            items.push(Item::Sep {
                start: sep_start as u32,
                end: write as u32,
                terminator,
            });
            continue;
        }
        // A word: find its raw extent first.
        let raw_start = read;
        let mut raw_end = read;
        // Most words are letters only: they skip the apostrophe, leetspeak
        // and digit steps of `process_word`.
        let mut plain = true;
        while raw_end < len {
            let unit = units[raw_end];
            let inside = match unit.class {
                Class::Letter => true,
                Class::Digit => {
                    plain = false;
                    true
                }
                Class::Leet => {
                    // Between word characters, or a leading `$`. `!` and `|`
                    // only before a short letter run (`k!d`), so that a
                    // missing space after `!` (`wow!great`) stays a break.
                    let prev_word = raw_end > raw_start;
                    let next_letter =
                        raw_end + 1 < len && units[raw_end + 1].class == Class::Letter;
                    let short_tail = || {
                        let tail = units[raw_end + 1..]
                            .iter()
                            .take(4)
                            .take_while(|unit| unit.class == Class::Letter)
                            .count();
                        tail <= 3
                    };
                    (prev_word && next_letter && (!matches!(unit.ch, '!' | '|') || short_tail()))
                        || (raw_end == raw_start && unit.ch == '$')
                }
                Class::Plus => raw_end > raw_start && units[raw_end - 1].class == Class::Digit,
                Class::Apostrophe => {
                    // Inside a word: between two letters, and not an elision.
                    let next_letter =
                        raw_end + 1 < len && units[raw_end + 1].class == Class::Letter;
                    let prev_letter =
                        raw_end > raw_start && units[raw_end - 1].class == Class::Letter;
                    next_letter && prev_letter && !is_elision(&units[raw_start..raw_end])
                }
                _ => false,
            };
            if !inside {
                break;
            }
            plain &= unit.class == Class::Letter;
            raw_end += 1;
        }
        read = raw_end;
        if plain {
            process_plain_word(units, raw_start, raw_end, &mut write, items);
        } else {
            process_word(units, raw_start, raw_end, &mut write, items);
        }
    }
    units.truncate(write);
}

fn is_elision(word: &[Unit]) -> bool {
    // The letters since the last non-letter (the current sub-word).
    let tail_start = word
        .iter()
        .rposition(|unit| unit.class != Class::Letter)
        .map_or(0, |at| at + 1);
    let tail = &word[tail_start..];
    if tail.len() > 5 {
        return false;
    }
    let mut buf = [0u8; 8];
    for (idx, unit) in tail.iter().enumerate() {
        if !unit.ch.is_ascii() {
            return false;
        }
        buf[idx] = unit.ch as u8;
    }
    let Ok(tail) = std::str::from_utf8(&buf[..tail.len()]) else {
        return false;
    };
    ELISIONS.contains(&tail)
}

/// [`process_word`] for a word of letters only: one token, with runs of
/// three or more identical letters squashed.
fn process_plain_word(
    units: &mut [Unit],
    raw_start: usize,
    raw_end: usize,
    write: &mut usize,
    items: &mut Vec<Item>,
) {
    let sub_start = *write;
    let word = &units[raw_start..raw_end];
    let has_run = word
        .windows(3)
        .any(|three| three[0].ch == three[1].ch && three[1].ch == three[2].ch);
    if !has_run {
        // Nothing to squash: the word stays as it is, moved down only if
        // earlier words shrank.
        if *write != raw_start {
            units.copy_within(raw_start..raw_end, *write);
        }
        *write += raw_end - raw_start;
        let chars = (raw_end - raw_start) as u32;
        items.push(Item::Token {
            start: sub_start as u32,
            end: *write as u32,
            chars,
            single_letter: chars == 1,
            digits: false,
            squashed: false,
            joined: false,
        });
        return;
    }
    let mut squashed = false;
    let mut idx = raw_start;
    while idx < raw_end {
        let unit = units[idx];
        let mut run_end = idx + 1;
        while run_end < raw_end && units[run_end].ch == unit.ch {
            run_end += 1;
        }
        if run_end - idx >= 3 {
            let mut merged = unit;
            merged.end = units[run_end - 1].end;
            units[*write] = merged;
            *write += 1;
            squashed = true;
        } else {
            for at in idx..run_end {
                units[*write] = units[at];
                *write += 1;
            }
        }
        idx = run_end;
    }
    let chars = (*write - sub_start) as u32;
    items.push(Item::Token {
        start: sub_start as u32,
        end: *write as u32,
        chars,
        single_letter: chars == 1,
        digits: false,
        squashed,
        joined: false,
    });
}

/// Turns the raw word `units[raw_start..raw_end]` into one or more tokens
/// written at `*write` (which never passes `raw_start`, so the rewrite is in
/// place and safe).
fn process_word(
    units: &mut [Unit],
    raw_start: usize,
    raw_end: usize,
    write: &mut usize,
    items: &mut Vec<Item>,
) {
    // Drop in-word apostrophes (`don't` is `dont`).
    let mut kept_end = raw_start;
    for idx in raw_start..raw_end {
        if units[idx].class != Class::Apostrophe {
            units[kept_end] = units[idx];
            kept_end += 1;
        } else if kept_end > raw_start {
            // Fold the mark's bytes into the previous unit so offsets cover it.
            units[kept_end - 1].end = units[idx].end;
        }
    }
    let word = raw_start..kept_end;
    // Leetspeak: digit runs and symbols with letters on both sides become
    // letters; a trailing digit run too, if the word already had one inside.
    // A leading digit run is leet too in a word with another digit run
    // after its letters (`53xu4l`, `1m4g35`, `70pl355`), unless it reads as
    // an age on a leet unit: a letter that starts one follows (`12y3ar`,
    // `5y0`, `13an0s`, `12j4ar`), it has two digits with a 1 (`13`), or a
    // digit that leetspeak rarely starts a word with.
    let leading_leet = {
        let digits = |idx: usize| units[idx].class == Class::Digit;
        let lead_end = (word.start..word.end)
            .find(|&idx| !digits(idx))
            .unwrap_or(word.end);
        let lead = &units[word.start..lead_end];
        lead_end > word.start
            && lead_end < word.end
            && units[lead_end].class == Class::Letter
            && !matches!(units[lead_end].ch, 'y' | 'j' | 'a' | 'e')
            && (lead_end..word.end).any(digits)
            && lead
                .iter()
                .all(|unit| matches!(unit.ch, '0' | '1' | '3' | '4' | '5' | '7'))
            && (lead.len() == 1 || !lead.iter().any(|unit| unit.ch == '1'))
    };
    let mut had_inner_leet = false;
    let mut idx = word.start;
    while idx < word.end {
        let class = units[idx].class;
        if class == Class::Leet {
            if let Some(letter) = leet_letter(units[idx].ch) {
                units[idx].ch = letter;
                units[idx].class = Class::Letter;
                had_inner_leet = true;
            }
            idx += 1;
            continue;
        }
        if class != Class::Digit {
            idx += 1;
            continue;
        }
        let run_start = idx;
        while idx < word.end && units[idx].class == Class::Digit {
            idx += 1;
        }
        let letter_before = run_start > word.start && units[run_start - 1].class == Class::Letter;
        let letter_after = idx < word.end && units[idx].class == Class::Letter;
        // A single trailing digit after two letters is leet too (`nud3`),
        // and a longer trailing run of the digits that stand for o, e, a, s
        // and t (`nud35`, `ph0705`); numbers with other digits are not
        // (`covid19`, `win10`, and ages from 10 to 19 after a noun, `boy13`).
        let trailing_leet = idx == word.end
            && run_start >= word.start + 2
            && units[run_start - 2].class == Class::Letter
            && if idx - run_start == 1 {
                matches!(units[run_start].ch, '0' | '1' | '3' | '4' | '5')
            } else {
                units[run_start..idx]
                    .iter()
                    .all(|unit| matches!(unit.ch, '0' | '3' | '4' | '5' | '7'))
            };
        let convert = (leading_leet && run_start == word.start)
            || (letter_before
                && (letter_after || (idx == word.end && (had_inner_leet || trailing_leet))));
        if convert {
            for unit in &mut units[run_start..idx] {
                if let Some(letter) = leet_letter(unit.ch) {
                    unit.ch = letter;
                    unit.class = Class::Letter;
                }
            }
            if letter_after {
                had_inner_leet = true;
            }
        }
    }
    // Split where digits meet letters, squash letter runs, write out.
    let mut idx = word.start;
    while idx < word.end {
        let digits = units[idx].class != Class::Letter;
        let sub_start = *write;
        let mut chars = 0u32;
        let mut squashed = false;
        while idx < word.end && (units[idx].class != Class::Letter) == digits {
            let unit = units[idx];
            if !digits && unit.class == Class::Letter {
                // Squash runs of three or more identical letters to one.
                let mut run_end = idx + 1;
                while run_end < word.end
                    && units[run_end].ch == unit.ch
                    && units[run_end].class == Class::Letter
                {
                    run_end += 1;
                }
                if run_end - idx >= 3 {
                    let mut merged = unit;
                    merged.end = units[run_end - 1].end;
                    units[*write] = merged;
                    *write += 1;
                    chars += 1;
                    squashed = true;
                    idx = run_end;
                    continue;
                }
            }
            units[*write] = unit;
            *write += 1;
            chars += 1;
            idx += 1;
        }
        items.push(Item::Token {
            start: sub_start as u32,
            end: *write as u32,
            chars,
            single_letter: !digits && chars == 1,
            digits,
            squashed,
            joined: false,
        });
    }
}

/// Step 3: joins runs of three or more single-letter tokens (`k i d`).
/// The separators between them are dropped when the joined token is written
/// (and its letters squashed again, `s s s e x`). Rewrites `items` in place:
/// a joined run of items becomes one item, so writing never passes reading.
fn join_spaced_letters(items: &mut Vec<Item>) {
    let len = items.len();
    let mut idx = 0;
    let mut write = 0;
    while idx < len {
        // Single-letter tokens alternating with separators from here.
        let mut count = 0;
        let mut probe = idx;
        let mut run = None;
        while let Item::Token {
            single_letter: true,
            start,
            end,
            ..
        } = items[probe]
        {
            count += 1;
            let first = run.map_or(start, |(first, _)| first);
            run = Some((first, end));
            if probe + 2 < len
                && matches!(items[probe + 1], Item::Sep { .. })
                && matches!(
                    items[probe + 2],
                    Item::Token {
                        single_letter: true,
                        ..
                    }
                )
            {
                probe += 2;
            } else {
                break;
            }
        }
        match run {
            Some((start, end)) if count >= 3 => {
                items[write] = Item::Token {
                    start,
                    end,
                    chars: count,
                    single_letter: false,
                    digits: false,
                    squashed: false,
                    joined: true,
                };
                idx = probe + 1;
            }
            _ => {
                items[write] = items[idx];
                idx += 1;
            }
        }
        write += 1;
    }
    items.truncate(write);
}

/// Writes tokens and separators to the output with their original ranges.
#[inline(never)]
fn emit(units: &[Unit], items: &[Item], out: &mut Normalized) {
    let mut prev_long_token = false;
    for item in items {
        match *item {
            Item::Sep {
                start,
                end,
                terminator,
            } => {
                let (start, end) = (start as usize, end as usize);
                if start == end {
                    continue;
                }
                let ch = if terminator && prev_long_token {
                    '.'
                } else {
                    ' '
                };
                // A separator maps to the whole original run.
                let orig_start = units[start].start;
                let orig_end = units[end - 1].end;
                push_char(out, ch, orig_start, orig_end, 0);
                prev_long_token = false;
            }
            Item::Token {
                start,
                end,
                chars,
                digits,
                squashed,
                joined,
                ..
            } => {
                let (start, end) = (start as usize, end as usize);
                // Tokens that follow each other directly (digit/letter splits)
                // get a space between them, mapped to an empty original range.
                if let Some(last) = out.text.as_bytes().last()
                    && *last != b' '
                    && *last != b'.'
                {
                    let at = units[start].start;
                    push_char(out, ' ', at, at, 0);
                }
                let written = if joined {
                    emit_joined(&units[start..end], out)
                } else {
                    let flags = if squashed { SQUASHED } else { 0 };
                    for unit in &units[start..end] {
                        push_char(out, unit.ch, unit.start, unit.end, flags);
                    }
                    chars
                };
                prev_long_token = digits || written >= 2;
            }
        }
    }
}

/// Writes a joined token: only the letters of the run, without the
/// separators between them, with runs of three or more identical letters
/// squashed again. Returns the number of chars written.
fn emit_joined(units: &[Unit], out: &mut Normalized) -> u32 {
    out.has_joined = true;
    let mut written = 0;
    let mut letters = units
        .iter()
        .filter(|unit| unit.class == Class::Letter)
        .peekable();
    while let Some(&first) = letters.next() {
        // The run of letters equal to `first`: its second and last.
        let mut second = None;
        let mut last = first;
        let mut count = 1;
        while let Some(&next) = letters.next_if(|unit| unit.ch == first.ch) {
            if count == 1 {
                second = Some(next);
            }
            last = next;
            count += 1;
        }
        if count >= 3 {
            push_char(out, first.ch, first.start, last.end, JOINED | SQUASHED);
            written += 1;
        } else {
            push_char(out, first.ch, first.start, first.end, JOINED);
            written += 1;
            if let Some(second) = second {
                push_char(out, second.ch, second.start, second.end, JOINED);
                written += 1;
            }
        }
    }
    written
}

#[inline]
fn push_char(out: &mut Normalized, ch: char, start: u32, end: u32, flags: u8) {
    let origin = Origin { start, end, flags };
    // `String::push` writes an ASCII char as one byte, without encoding.
    out.text.push(ch);
    if ch.is_ascii() {
        out.origins.push(origin);
    } else {
        for _ in 0..ch.len_utf8() {
            out.origins.push(origin);
        }
    }
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn norm(text: &str) -> String {
        normalize(text).as_str().to_owned()
    }

    #[test]
    fn emoji_table_parses() {
        assert_eq!(emoji_table().get(&'👧'), Some(&"girl"));
    }

    #[test]
    fn folds_case_width_and_look_alikes() {
        assert_eq!(norm("HELLO World"), "hello world");
        assert_eq!(norm("ｆｕｌｌｗｉｄｔｈ"), "fullwidth");
        // Cyrillic а, е, о and Greek ο inside Latin words.
        assert_eq!(norm("s\u{0435}x"), "sex");
        assert_eq!(norm("ph\u{03bf}t\u{043e}"), "photo");
        assert_eq!(norm("𝐟𝐨𝐫𝐛𝐢𝐝𝐝𝐞𝐧"), "forbidden");
        assert_eq!(norm("niña años Mädchen"), "nina anos madchen");
        assert_eq!(norm("Straße"), "strasse");
    }

    #[test]
    fn digits_survive_folding() {
        assert_eq!(norm("12"), "12");
        assert_eq!(norm("１２ year old"), "12 year old");
        assert_eq!(norm("12yo"), "12 yo");
        assert_eq!(norm("12-year-old"), "12 year old");
        assert_eq!(norm("12 y/o"), "12 y o");
        assert_eq!(norm("grade7"), "grade 7");
        assert_eq!(norm("18+"), "18+");
    }

    #[test]
    fn leetspeak_inside_words_only() {
        assert_eq!(norm("s3x"), "sex");
        assert_eq!(norm("k1d5"), "kids");
        assert_eq!(norm("n00dz"), "noodz");
        assert_eq!(norm("pr0n"), "pron");
        assert_eq!(norm("k!d"), "kid");
        assert_eq!(norm("$exy"), "sexy");
        assert_eq!(norm("covid19"), "covid 19");
        assert_eq!(norm("wow!great"), "wow.great");
        assert_eq!(norm("he is 13"), "he is 13");
    }

    /// Whole words in leetspeak, leading and trailing digits included, and
    /// the ages that look like them kept as numbers.
    #[test]
    fn leetspeak_throughout_a_word_but_not_ages() {
        for (text, want) in [
            ("53xu4l", "sexual"),
            ("3xpl1c17", "explicit"),
            ("1m4g35", "images"),
            ("70pl355", "topless"),
            ("nud35", "nudes"),
            ("ph0705", "photos"),
            ("12yo", "12 yo"),
            ("12y3ar", "12 year"),
            ("5y0", "5 y 0"),
            ("13an0s", "13 anos"),
            ("boy13", "boy 13"),
            ("girl15", "girl 15"),
            ("win10", "win 10"),
            ("7th", "7 th"),
        ] {
            assert_eq!(norm(text), want, "{text}");
        }
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(norm("s\u{200b}e\u{200d}x"), "sex");
        assert_eq!(norm("k\u{0301}i\u{0336}d"), "kid");
        assert_eq!(norm("a\u{0000}b"), "ab");
    }

    #[test]
    fn spaced_letters_are_joined_and_runs_squashed() {
        assert_eq!(norm("s.e.x"), "sex");
        assert_eq!(norm("k i d"), "kid");
        assert_eq!(norm("s e x y pics"), "sexy pics");
        assert_eq!(norm("a b"), "a b");
        assert_eq!(norm("seeeexxxy"), "sexy");
        assert_eq!(norm("good"), "good");
        assert_eq!(norm("s s s e x"), "sex");
    }

    #[test]
    fn separators_and_sentences() {
        assert_eq!(norm("Hi there. How are you?"), "hi there.how are you.");
        assert_eq!(norm("don't tell"), "dont tell");
        assert_eq!(norm("l'enfant"), "l enfant");
        assert_eq!(norm("I’m 13"), "im 13");
        assert_eq!(norm("I'm a"), "im a");
        assert_eq!(norm("12 y.o. girl"), "12 y o girl");
    }

    #[test]
    fn emoji_become_words() {
        assert_eq!(norm("send 🌽"), "send porn ");
        assert_eq!(norm("👧🏽 pics"), " girl pics");
    }

    #[test]
    fn offsets_point_into_the_original() {
        let text = "Send ｎｕｄｅｓ of the k i d";
        let normalized = normalize(text);
        let at = normalized.as_str().find("nudes").unwrap();
        let range = normalized.original_range(at..at + 5);
        assert_eq!(&text[range], "ｎｕｄｅｓ");
        let at = normalized.as_str().find("kid").unwrap();
        let range = normalized.original_range(at..at + 3);
        assert_eq!(&text[range], "k i d");
        let text = "s3xy 12yo";
        let normalized = normalize(text);
        let at = normalized.as_str().find("12").unwrap();
        assert_eq!(&text[normalized.original_range(at..at + 2)], "12");
    }

    #[test]
    fn debug_does_not_show_text() {
        let debug = format!("{:?}", normalize("secret words"));
        assert!(!debug.contains("secret"), "{debug}");
    }

    /// Asserts that `normalize` gives exactly what the reference (the
    /// normaliser before the speed work) gives: text, ranges and flags.
    fn same_as_reference(text: &str) -> Result<(), TestCaseError> {
        let got = normalize(text);
        let want = reference::normalize(text);
        prop_assert_eq!(got.as_str(), want.text.as_str());
        prop_assert_eq!(got.origins.len(), want.text.len());
        for (idx, origin) in got.origins.iter().enumerate() {
            prop_assert_eq!(
                (origin.start, origin.end, origin.flags),
                (want.starts[idx], want.ends[idx], want.flags[idx]),
                "byte {}",
                idx
            );
        }
        Ok(())
    }

    /// Pieces that exercise every step: words, spaced and repeated letters,
    /// leetspeak, digits and ages, apostrophes and elisions, sentence ends,
    /// controls, and non-ASCII look-alikes, emoji and invisible characters.
    const PIECES: [&str; 40] = [
        "hello",
        "World",
        "a",
        "I",
        "k",
        "e",
        "x",
        "s",
        "12",
        "7",
        "0",
        "yo",
        "s3x",
        "n00dz",
        "k!d",
        "$ex",
        "|",
        "@",
        "!",
        "'",
        "`",
        "+",
        "don't",
        "l'enfant",
        "i'm",
        "...",
        "?",
        ";",
        "\n",
        "\t",
        "\u{0}",
        "\u{7f}",
        "seeeex",
        "aaa",
        "\u{200b}",
        "\u{0435}",
        "ｎ",
        "\u{1F33D}",
        "niña",
        "\u{2019}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn same_as_reference_on_ascii(text in "[ -~\n\t\r\u{0}\u{7f}]{0,80}") {
            same_as_reference(&text)?;
        }

        #[test]
        fn same_as_reference_on_ascii_soup(text in "[a-eA-E0-5 .,!?$@|'`+;\n-]{0,80}") {
            same_as_reference(&text)?;
        }

        #[test]
        fn same_as_reference_on_pieces(
            pieces in proptest::collection::vec((0..PIECES.len(), "[ .,!-]{0,2}"), 0..30)
        ) {
            let text: String = pieces
                .iter()
                .map(|(idx, sep)| format!("{}{sep}", PIECES[*idx]))
                .collect();
            same_as_reference(&text)?;
        }

        #[test]
        fn same_as_reference_on_any_text(text in "\\PC{0,60}") {
            same_as_reference(&text)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn normalising_twice_equals_once(text in ".{0,40}") {
            let once = norm(&text);
            prop_assert_eq!(norm(&once), once.clone());
        }

        #[test]
        fn normalising_twice_equals_once_ascii_soup(text in "[a-e0-5 .!$@|'+\n]{0,40}") {
            let once = norm(&text);
            prop_assert_eq!(norm(&once), once.clone());
        }

        #[test]
        fn offsets_are_char_boundaries_inside_the_original(text in "\\PC{0,40}", lo in 0usize..64, len in 0usize..64) {
            let normalized = normalize(&text);
            let n = normalized.len();
            let range = normalized.original_range(lo.min(n)..(lo + len).min(n));
            prop_assert!(range.start <= range.end);
            prop_assert!(range.end <= text.len());
            prop_assert!(text.is_char_boundary(range.start));
            prop_assert!(text.is_char_boundary(range.end));
        }
    }
}
