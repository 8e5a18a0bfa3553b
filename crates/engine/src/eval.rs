//! Evaluation of the engine on a labelled JSON-lines set (`childsafe eval
//! text`): precision, recall and F1 per category, the false-positive rate on
//! items labelled benign, a confusion matrix and a per-language breakdown.
//!
//! An item is `{"id", "text" | "messages", "labels": [...], "lang", "tags"}`;
//! labels are category names or `benign`. Text items are judged on the
//! `input` surface, conversations on `conversation`; an item's predicted
//! categories are the harm categories its decision acted on (so thresholds
//! are the policy's). Reports carry ids, labels and counts, never text.

use std::{collections::BTreeMap, fmt::Write as _};

use childsafe_core::{Category, Surface};
use childsafe_text::input::{InputContent, parse_line};
use serde::Serialize;

use crate::Engine;

/// The label for items that should not be flagged at all.
pub const BENIGN: &str = "benign";

/// The categories evaluated, in report order.
pub const EVAL_CATEGORIES: [Category; 5] = [
    Category::CsamSolicitation,
    Category::MinorSexualization,
    Category::Grooming,
    Category::Sextortion,
    Category::HelpSeeking,
];

/// Goals from the issue: recall on solicitation, false positives on benign
/// items, and help-seeking never read as solicitation.
pub const GOAL_SOLICITATION_RECALL: f64 = 0.95;
/// Maximum false-positive rate on benign items.
pub const GOAL_BENIGN_FPR: f64 = 0.01;

/// One labelled item.
#[derive(Clone, Debug)]
pub struct EvalItem {
    /// The item's id (its line number if the file gives none).
    pub id: String,
    /// What to judge.
    pub content: InputContent,
    /// Expected categories; empty for benign.
    pub labels: Vec<Category>,
    /// Language code (`und` if not given).
    pub lang: String,
    /// Free-form tags (kind of hard negative and so on).
    pub tags: Vec<String>,
}

/// An eval file line that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {reason}")]
pub struct EvalLineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (field, expected, got).
    pub reason: String,
}

/// Parses an eval set; blank lines are skipped. Any bad line is an error:
/// an eval set must be clean to mean anything.
///
/// # Errors
/// The first bad line, with its number.
pub fn parse_items(text: &str) -> Result<Vec<EvalItem>, EvalLineError> {
    let mut items = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| EvalLineError {
            line: idx + 1,
            reason,
        };
        let item = parse_line(line).map_err(|e| err(e.to_string()))?;
        if item.labels.is_empty() {
            return Err(err(
                "labels: expected at least one label, got none".to_owned()
            ));
        }
        let mut labels = Vec::new();
        for label in &item.labels {
            if label == BENIGN {
                continue;
            }
            let category: Category = label.parse().map_err(|_| {
                err(format!(
                    "labels: expected a category name or \"benign\", got an unknown label {label:?}"
                ))
            })?;
            if !EVAL_CATEGORIES.contains(&category) {
                return Err(err(format!(
                    "labels: expected one of the evaluated categories, got {category}"
                )));
            }
            labels.push(category);
        }
        items.push(EvalItem {
            id: item.id.unwrap_or_else(|| format!("line-{}", idx + 1)),
            content: item.content,
            labels,
            lang: item.lang.unwrap_or_else(|| "und".to_owned()),
            tags: item.tags,
        });
    }
    Ok(items)
}

/// Precision, recall and F1 for one category.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CategoryMetrics {
    /// The category.
    pub category: String,
    /// Items labelled with it.
    pub support: usize,
    /// Labelled and predicted.
    pub true_positives: usize,
    /// Predicted, not labelled.
    pub false_positives: usize,
    /// Labelled, not predicted.
    pub false_negatives: usize,
    /// tp / (tp + fp), 1 when nothing was predicted.
    pub precision: f64,
    /// tp / (tp + fn), 1 when nothing was labelled.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

/// Figures for one language.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LanguageMetrics {
    /// Language code.
    pub lang: String,
    /// Items.
    pub items: usize,
    /// Items whose predicted set equals the labelled set.
    pub exact: usize,
    /// exact / items.
    pub accuracy: f64,
    /// Items labelled solicitation.
    pub solicitation: usize,
    /// Recall on those.
    pub solicitation_recall: f64,
    /// Items labelled benign.
    pub benign: usize,
    /// Benign items flagged with an abuse category.
    pub benign_flagged: usize,
}

/// An item the engine got wrong: ids and categories only.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Miss {
    /// Item id.
    pub id: String,
    /// Language.
    pub lang: String,
    /// Expected labels (`benign` if none).
    pub labels: Vec<String>,
    /// Predicted categories.
    pub predicted: Vec<String>,
}

/// The whole report; `Serialize` gives the `--json` output.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvalReport {
    /// Items evaluated.
    pub items: usize,
    /// Items per label.
    pub label_counts: BTreeMap<String, usize>,
    /// Per-category metrics, in [`EVAL_CATEGORIES`] order.
    pub categories: Vec<CategoryMetrics>,
    /// Items labelled benign.
    pub benign: usize,
    /// Benign items flagged with an abuse category (help-seeking is not abuse).
    pub benign_flagged: usize,
    /// benign_flagged / benign.
    pub benign_false_positive_rate: f64,
    /// Items labelled help_seeking that were predicted as solicitation.
    pub help_seeking_as_solicitation: usize,
    /// Confusion matrix: `confusion[true][predicted]`, by primary label
    /// (an item counts as its true label when that label was predicted).
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// Per-language figures.
    pub languages: Vec<LanguageMetrics>,
    /// Whether the goals hold.
    pub goals_met: bool,
    /// The items the engine got wrong.
    pub misses: Vec<Miss>,
}

/// Evaluates `engine` (built-in detectors) on `items`.
pub fn evaluate(engine: &Engine, items: &[EvalItem]) -> EvalReport {
    let predictions: Vec<Vec<Category>> = items
        .iter()
        .map(|item| {
            let decision = match &item.content {
                InputContent::Text(text) => engine.check_text(Surface::Input, text),
                InputContent::Conversation(turns) => {
                    engine.check_conversation_builtin(Surface::Conversation, turns, None)
                }
            };
            decision
                .categories
                .into_iter()
                .filter(|c| EVAL_CATEGORIES.contains(c))
                .collect()
        })
        .collect();
    report(items, &predictions)
}

/// Builds the report from items and their predicted categories.
pub fn report(items: &[EvalItem], predictions: &[Vec<Category>]) -> EvalReport {
    let mut res = EvalReport {
        items: items.len(),
        ..EvalReport::default()
    };
    let name = |labels: &[Category]| -> Vec<String> {
        if labels.is_empty() {
            vec![BENIGN.to_owned()]
        } else {
            labels.iter().map(|c| c.as_str().to_owned()).collect()
        }
    };
    for item in items {
        for label in name(&item.labels) {
            *res.label_counts.entry(label).or_default() += 1;
        }
    }
    for category in EVAL_CATEGORIES {
        let mut metrics = CategoryMetrics {
            category: category.as_str().to_owned(),
            ..CategoryMetrics::default()
        };
        for (item, predicted) in items.iter().zip(predictions) {
            let labelled = item.labels.contains(&category);
            let flagged = predicted.contains(&category);
            metrics.support += usize::from(labelled);
            match (labelled, flagged) {
                (true, true) => metrics.true_positives += 1,
                (false, true) => metrics.false_positives += 1,
                (true, false) => metrics.false_negatives += 1,
                (false, false) => {}
            }
        }
        let (tp, fp, fne) = (
            metrics.true_positives as f64,
            metrics.false_positives as f64,
            metrics.false_negatives as f64,
        );
        metrics.precision = if tp + fp == 0.0 { 1.0 } else { tp / (tp + fp) };
        metrics.recall = if tp + fne == 0.0 {
            1.0
        } else {
            tp / (tp + fne)
        };
        metrics.f1 = if metrics.precision + metrics.recall == 0.0 {
            0.0
        } else {
            2.0 * metrics.precision * metrics.recall / (metrics.precision + metrics.recall)
        };
        res.categories.push(metrics);
    }
    let mut languages: BTreeMap<String, LanguageMetrics> = BTreeMap::new();
    for (item, predicted) in items.iter().zip(predictions) {
        let abuse = predicted.iter().any(|c| c.is_abuse());
        let benign = item.labels.is_empty();
        if benign {
            res.benign += 1;
            res.benign_flagged += usize::from(abuse);
        }
        if item.labels.contains(&Category::HelpSeeking)
            && predicted.contains(&Category::CsamSolicitation)
        {
            res.help_seeking_as_solicitation += 1;
        }
        let truth = item.labels.first().map_or(BENIGN, |c| c.as_str());
        let primary = if item.labels.iter().any(|l| predicted.contains(l)) {
            truth.to_owned()
        } else {
            predicted.first().map_or(BENIGN, |c| c.as_str()).to_owned()
        };
        *res.confusion
            .entry(truth.to_owned())
            .or_default()
            .entry(primary)
            .or_default() += 1;
        let mut sorted_labels = item.labels.clone();
        sorted_labels.sort();
        let exact = sorted_labels == *predicted;
        let lang = languages
            .entry(item.lang.clone())
            .or_insert_with(|| LanguageMetrics {
                lang: item.lang.clone(),
                ..LanguageMetrics::default()
            });
        lang.items += 1;
        lang.exact += usize::from(exact);
        if item.labels.contains(&Category::CsamSolicitation) {
            lang.solicitation += 1;
            lang.solicitation_recall +=
                f64::from(u8::from(predicted.contains(&Category::CsamSolicitation)));
        }
        if benign {
            lang.benign += 1;
            lang.benign_flagged += usize::from(abuse);
        }
        if !exact {
            res.misses.push(Miss {
                id: item.id.clone(),
                lang: item.lang.clone(),
                labels: name(&item.labels),
                predicted: predicted.iter().map(|c| c.as_str().to_owned()).collect(),
            });
        }
    }
    for lang in languages.values_mut() {
        lang.accuracy = ratio(lang.exact, lang.items);
        lang.solicitation_recall = if lang.solicitation == 0 {
            1.0
        } else {
            lang.solicitation_recall / lang.solicitation as f64
        };
    }
    res.languages = languages.into_values().collect();
    res.benign_false_positive_rate = ratio(res.benign_flagged, res.benign);
    let recall = res
        .categories
        .iter()
        .find(|m| m.category == Category::CsamSolicitation.as_str())
        .map_or(1.0, |m| m.recall);
    res.goals_met = recall >= GOAL_SOLICITATION_RECALL
        && res.benign_false_positive_rate <= GOAL_BENIGN_FPR
        && res.help_seeking_as_solicitation == 0;
    res
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl EvalReport {
    /// The report as a readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "items: {}  ({})",
            self.items,
            self.label_counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<22} {:>7} {:>5} {:>5} {:>5} {:>9} {:>7} {:>6}",
            "category", "support", "tp", "fp", "fn", "precision", "recall", "f1"
        );
        for m in &self.categories {
            let _ = writeln!(
                out,
                "{:<22} {:>7} {:>5} {:>5} {:>5} {:>9.3} {:>7.3} {:>6.3}",
                m.category,
                m.support,
                m.true_positives,
                m.false_positives,
                m.false_negatives,
                m.precision,
                m.recall,
                m.f1
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "benign false-positive rate: {:.4} ({} of {})",
            self.benign_false_positive_rate, self.benign_flagged, self.benign
        );
        let _ = writeln!(
            out,
            "help-seeking read as solicitation: {}",
            self.help_seeking_as_solicitation
        );
        let _ = writeln!(out);
        let names: Vec<&str> = EVAL_CATEGORIES
            .iter()
            .map(|c| c.as_str())
            .chain([BENIGN])
            .collect();
        let short = |name: &str| -> String {
            name.split('_')
                .map(|w| &w[..w.len().min(4)])
                .collect::<Vec<_>>()
                .join("_")
        };
        let _ = write!(
            out,
            "confusion (rows: labelled, columns: predicted)\n{:<22}",
            ""
        );
        for name in &names {
            let _ = write!(out, " {:>9}", short(name));
        }
        let _ = writeln!(out);
        for truth in &names {
            let Some(row) = self.confusion.get(*truth) else {
                continue;
            };
            let _ = write!(out, "{truth:<22}");
            for name in &names {
                let _ = write!(out, " {:>9}", row.get(*name).copied().unwrap_or(0));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<6} {:>6} {:>9} {:>12} {:>14}",
            "lang", "items", "accuracy", "solicit rec", "benign fp"
        );
        for lang in &self.languages {
            let _ = writeln!(
                out,
                "{:<6} {:>6} {:>9.3} {:>12.3} {:>8} of {:<3}",
                lang.lang,
                lang.items,
                lang.accuracy,
                lang.solicitation_recall,
                lang.benign_flagged,
                lang.benign
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "goals (solicitation recall >= {GOAL_SOLICITATION_RECALL}, benign fp rate <= {GOAL_BENIGN_FPR}, no help-seeking as solicitation): {}",
            if self.goals_met { "met" } else { "NOT met" }
        );
        out
    }
}
