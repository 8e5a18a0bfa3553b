//! The normaliser as it was before the speed work (a frozen copy of its
//! tokenising, joining and writing steps), kept as the oracle for the
//! property tests in `normalize.rs`: the fast code must give exactly this
//! text, these original ranges and these flags. If normalisation is changed
//! on purpose, change this copy the same way (or retire it with a reason).

// `process_word` is shared: the speed work left it unchanged.
use super::{
    Class, Item, JOINED, SQUASHED, Unit, cap_len, fold_non_ascii, is_elision, process_word,
};

/// The old output: text, and per byte its original start, end and flags.
pub(super) struct Reference {
    pub(super) text: String,
    pub(super) starts: Vec<u32>,
    pub(super) ends: Vec<u32>,
    pub(super) flags: Vec<u8>,
}

/// Normalises `text` the old way.
pub(super) fn normalize(text: &str) -> Reference {
    let text = cap_len(text);
    let mut out = Reference {
        text: String::new(),
        starts: Vec::new(),
        ends: Vec::new(),
        flags: Vec::new(),
    };
    let mut units = Vec::new();
    let mut items = Vec::new();
    fold_chars(text, &mut units);
    tokenize(&mut units, &mut items);
    join_spaced_letters(&mut items);
    emit(&units, &items, &mut out);
    out
}

fn classify_ascii(b: u8) -> Class {
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

/// Step 1: characters to folded units.
fn fold_chars(text: &str, units: &mut Vec<Unit>) {
    units.reserve(text.len());
    let bytes = text.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        let b = bytes[idx];
        if b < 0x80 {
            // ASCII fast path.
            let start = idx as u32;
            idx += 1;
            if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
                continue;
            }
            let lower = b.to_ascii_lowercase();
            units.push(Unit {
                ch: lower as char,
                start,
                end: idx as u32,
                class: classify_ascii(lower),
            });
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

/// Step 2: rewrites `units` into tokens and separator runs (in `items`),
/// applying leetspeak, digit/letter splitting and squashing inside tokens.
/// Units are rewritten in place: a token's units are compacted to its final
/// characters, so the unit array may shrink.
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
        while raw_end < len {
            let unit = units[raw_end];
            let inside = match unit.class {
                Class::Letter | Class::Digit => true,
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
            raw_end += 1;
        }
        read = raw_end;
        process_word(units, raw_start, raw_end, &mut write, items);
    }
    units.truncate(write);
}

/// Step 3: joins runs of three or more single-letter tokens (`k i d`).
/// The separators between them are dropped when the joined token is written
/// (and its letters squashed again, `s s s e x`).
fn join_spaced_letters(items: &mut Vec<Item>) {
    let mut idx = 0;
    let mut out: Vec<Item> = Vec::new();
    let mut changed = false;
    while idx < items.len() {
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
            if probe + 2 < items.len()
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
                changed = true;
                out.push(Item::Token {
                    start,
                    end,
                    chars: count,
                    single_letter: false,
                    digits: false,
                    squashed: false,
                    joined: true,
                });
                idx = probe + 1;
            }
            _ => {
                out.push(items[idx]);
                idx += 1;
            }
        }
    }
    if changed {
        *items = out;
    }
}

/// Writes tokens and separators to the output with their original ranges.
fn emit(units: &[Unit], items: &[Item], out: &mut Reference) {
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
                let mut written = chars;
                if joined {
                    // Only the letters of the run are written; separators
                    // between them are dropped. Runs of three or more
                    // identical letters are squashed again.
                    written = 0;
                    let letters: Vec<Unit> = units[start..end]
                        .iter()
                        .filter(|unit| unit.class == Class::Letter)
                        .copied()
                        .collect();
                    let mut idx = 0;
                    while idx < letters.len() {
                        let unit = letters[idx];
                        let mut run_end = idx + 1;
                        while run_end < letters.len() && letters[run_end].ch == unit.ch {
                            run_end += 1;
                        }
                        if run_end - idx >= 3 {
                            push_char(
                                out,
                                unit.ch,
                                unit.start,
                                letters[run_end - 1].end,
                                JOINED | SQUASHED,
                            );
                            written += 1;
                        } else {
                            for one in &letters[idx..run_end] {
                                push_char(out, one.ch, one.start, one.end, JOINED);
                                written += 1;
                            }
                        }
                        idx = run_end;
                    }
                } else {
                    for unit in &units[start..end] {
                        let flags = if squashed { SQUASHED } else { 0 };
                        push_char(out, unit.ch, unit.start, unit.end, flags);
                    }
                }
                prev_long_token = digits || written >= 2;
            }
        }
    }
}

fn push_char(out: &mut Reference, ch: char, start: u32, end: u32, flags: u8) {
    let mut buf = [0u8; 4];
    let encoded = ch.encode_utf8(&mut buf);
    out.text.push_str(encoded);
    for _ in 0..encoded.len() {
        out.starts.push(start);
        out.ends.push(end);
        out.flags.push(flags);
    }
}
