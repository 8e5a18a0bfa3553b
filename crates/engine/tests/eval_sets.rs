//! The project's own evaluation sets, run through the engine with the
//! built-in detectors: the goals of issue 3 must hold on the dev set, and the
//! held-out set must not fall below the figures recorded in README.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use childsafe_core::Policy;
use childsafe_engine::{
    Engine,
    eval::{EvalReport, evaluate, parse_items},
};
use childsafe_text::TextDetector;

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
    // Two blind sets, run only as aggregates: `ho2-*` (2026-12-07, every
    // category) and `ho5-*` (2026-12-07, help-seeking and hard negatives),
    // each written from the issue and DESIGN.md by someone who never saw the
    // code, the lexicons or the dev set. The floors are their figures after
    // the help-seeking rework (README.md, "Text detection"); they guard
    // against regressions and are below the goals, which these sets show the
    // built-in detectors do not yet meet on phrasing they were not built
    // from. Solicitation recall is 0.789: the rework moved one blind request
    // to help-seeking while it moved help-seeking read as solicitation from
    // 13 to 4 (which must reach 0).
    let report = run("text-heldout.jsonl");
    let recall = |name: &str| {
        report
            .categories
            .iter()
            .find(|c| c.category == name)
            .map_or(0.0, |c| c.recall)
    };
    for (name, floor) in [
        ("csam_solicitation", 0.78),
        ("minor_sexualization", 0.6),
        ("sextortion", 0.71),
        ("help_seeking", 0.57),
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
        solicitation.precision >= 0.94,
        "held-out solicitation precision fell to {}",
        solicitation.precision
    );
    assert!(
        report.benign_false_positive_rate <= 0.004,
        "held-out benign fp rose to {}",
        report.benign_false_positive_rate
    );
    assert!(
        report.help_seeking_as_solicitation <= 4,
        "held-out help-seeking read as solicitation rose to {}",
        report.help_seeking_as_solicitation
    );
}
