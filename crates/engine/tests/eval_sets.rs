//! The project's own evaluation sets, run through the engine with the
//! built-in detectors: the goals of issue 3 must hold on the dev set, and the
//! held-out set must not fall below the figures recorded in README.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use childsafe_core::{Category, Policy};
use childsafe_engine::{
    Engine,
    eval::{EvalItem, EvalReport, evaluate, parse_items},
};
use childsafe_text::{TextDetector, input::InputContent};

fn run(file: &str) -> EvalReport {
    let path = format!("{}/../text/eval/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let items = parse_items(&text).unwrap();
    let engine = Engine::new(Policy::default(), TextDetector::built_in().unwrap());
    let report = evaluate(&engine, &items);
    println!("{file}\n{}", report.to_table());
    // Per-item results only for the dev set: the held-out set is read as
    // aggregates, so that nobody tunes on its items.
    if file.contains("heldout") {
        return report;
    }
    for miss in &report.misses {
        println!(
            "miss {} {} labels={:?} predicted={:?}",
            miss.id, miss.lang, miss.labels, miss.predicted
        );
    }
    report
}

#[test]
fn dev_set_meets_the_goals() {
    let report = run("text-dev.jsonl");
    assert!(report.items >= 400, "{}", report.items);
    let hard = report.label_counts.get("benign").copied().unwrap_or(0)
        + report
            .label_counts
            .get("help_seeking")
            .copied()
            .unwrap_or(0);
    assert!(
        hard * 10 >= report.items * 4,
        "hard negatives below 40%: {hard} of {}",
        report.items
    );
    assert!(report.goals_met, "goals not met on the dev set");
}

#[test]
fn held_out_set_does_not_regress() {
    // Three blind sets, run only as aggregates: `ho2-*` (every category),
    // `ho5-*` (help-seeking and hard negatives), both of 2026-12-07, and
    // `ho10A-*` / `ho10B-*` (casual and written wording, every category but
    // sexualisation, of 2026-12-07 too), written from the issue and
    // DESIGN.md by sessions that never saw the code, the lexicons or the dev
    // set. The floors are their figures at commit time (README.md, "Text
    // detection"); they guard against regressions and are below the goals,
    // which these sets show the built-in detectors do not yet meet on
    // phrasing they were not built from. Help-seeking read as solicitation
    // is 5 (it must reach 0); the benign false-positive rate is 5 of 395 (it
    // must reach 1%).
    let report = run("text-heldout.jsonl");
    let recall = |name: &str| {
        report
            .categories
            .iter()
            .find(|c| c.category == name)
            .map_or(0.0, |c| c.recall)
    };
    for (name, floor) in [
        ("csam_solicitation", 0.83),
        ("minor_sexualization", 0.62),
        ("grooming", 0.75),
        ("sextortion", 0.75),
        ("help_seeking", 0.67),
    ] {
        assert!(
            recall(name) >= floor,
            "held-out {name} recall fell to {}",
            recall(name)
        );
    }
    let solicitation = &report.categories[0];
    assert_eq!(solicitation.category, "csam_solicitation");
    assert!(
        solicitation.precision >= 0.95,
        "held-out solicitation precision fell to {}",
        solicitation.precision
    );
    assert!(
        report.benign_false_positive_rate <= 0.013,
        "held-out benign fp rose to {}",
        report.benign_false_positive_rate
    );
    assert!(
        report.help_seeking_as_solicitation <= 5,
        "held-out help-seeking read as solicitation rose to {}",
        report.help_seeking_as_solicitation
    );
}

/// The dev set's solicitation requests, each rewritten the way people hide
/// words from filters, must still be caught: the normaliser's job (issue 3,
/// section 1). Only the requests caught as written count, so that what a
/// rewrite loses is the normaliser's. The rewrites are mechanical and
/// deterministic; the floors are just below the figures measured on
/// 2026-12-07 (860 requests), so a change that loses robustness fails here.
/// (Leetspeak fell from 0.964 of 691 to 0.958 of 860 with the fifth round's
/// vocabulary probes, whose ages leet rewrites too, `10y0`; of the 691
/// earlier requests the fifth round loses 24, the code before it 25.)
#[test]
fn obfuscated_solicitations_are_still_caught() {
    let path = format!("{}/../text/eval/text-dev.jsonl", env!("CARGO_MANIFEST_DIR"));
    let items = parse_items(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let requests: Vec<(&EvalItem, &str)> = items
        .iter()
        .filter(|item| item.labels == [Category::CsamSolicitation])
        .filter_map(|item| match &item.content {
            InputContent::Text(text) => Some((item, text.as_str())),
            InputContent::Conversation(_) => None,
        })
        .collect();
    let engine = Engine::new(Policy::default(), TextDetector::built_in().unwrap());
    // Only requests caught as written: what a rewrite loses is the
    // normaliser's doing, not the lexicons'.
    let requests: Vec<(&EvalItem, &str)> = requests
        .into_iter()
        .filter(|(item, _)| {
            let report = evaluate(&engine, std::slice::from_ref(*item));
            report.categories[0].recall >= 1.0
        })
        .collect();
    type Rewrite = fn(&str) -> String;
    let rewrites: [(&str, Rewrite, f64); 7] = [
        (
            "leetspeak in the two longest words",
            |text| on_longest(text, 2, leet),
            0.955,
        ),
        (
            "Cyrillic look-alike letters",
            |text| text.chars().map(cyrillic).collect(),
            0.99,
        ),
        (
            "longest word spaced out",
            |text| on_longest(text, 1, |word| spread(word, " ")),
            0.97,
        ),
        (
            "longest word dotted",
            |text| on_longest(text, 1, |word| spread(word, ".")),
            0.97,
        ),
        (
            "fullwidth forms",
            |text| text.chars().map(fullwidth).collect(),
            0.99,
        ),
        (
            "zero-width spaces between letters",
            |text| spread(text, "\u{200b}"),
            0.99,
        ),
        (
            "vowels repeated in the longest word",
            |text| on_longest(text, 1, stretch),
            0.99,
        ),
    ];
    let mut failures = Vec::new();
    for (name, rewrite, floor) in rewrites {
        let rewritten: Vec<EvalItem> = requests
            .iter()
            .map(|(item, text)| EvalItem {
                content: InputContent::Text(rewrite(text)),
                ..(*item).clone()
            })
            .collect();
        let report = evaluate(&engine, &rewritten);
        let recall = report.categories[0].recall;
        println!(
            "{name}: solicitation recall {recall:.3} of {}",
            rewritten.len()
        );
        if recall < floor {
            failures.push(format!("{name}: {recall:.3} < {floor}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// `text` with `rewrite` applied to its `count` longest words.
fn on_longest(text: &str, count: usize, rewrite: impl Fn(&str) -> String) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut order: Vec<usize> = (0..words.len()).collect();
    order.sort_by_key(|&idx| std::cmp::Reverse(words[idx].chars().count()));
    order.truncate(count);
    let rewritten: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(idx, word)| {
            if order.contains(&idx) {
                rewrite(word)
            } else {
                (*word).to_owned()
            }
        })
        .collect();
    rewritten.join(" ")
}

fn leet(word: &str) -> String {
    word.chars()
        .map(|ch| match ch {
            'a' => '4',
            'e' => '3',
            'i' => '1',
            'o' => '0',
            's' => '5',
            't' => '7',
            other => other,
        })
        .collect()
}

fn cyrillic(ch: char) -> char {
    match ch {
        'a' => '\u{430}',
        'e' => '\u{435}',
        'o' => '\u{43e}',
        'p' => '\u{440}',
        'c' => '\u{441}',
        'x' => '\u{445}',
        'i' => '\u{456}',
        'y' => '\u{443}',
        other => other,
    }
}

fn fullwidth(ch: char) -> char {
    if ('!'..='~').contains(&ch) {
        char::from_u32(ch as u32 + 0xFEE0).unwrap_or(ch)
    } else {
        ch
    }
}

fn spread(word: &str, between: &str) -> String {
    let chars: Vec<String> = word.chars().map(String::from).collect();
    chars.join(between)
}

fn stretch(word: &str) -> String {
    word.chars()
        .flat_map(|ch| {
            let times = if "aeiou".contains(ch) { 3 } else { 1 };
            std::iter::repeat_n(ch, times)
        })
        .collect()
}
