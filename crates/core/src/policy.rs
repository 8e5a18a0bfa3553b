//! Policy: from findings to a decision, per surface.
//!
//! A policy is a TOML file layered over safe built-in defaults: a file names
//! only what it changes, and every category rule it gives replaces the default
//! rule for that category on that surface. The defaults are documented in
//! [`Policy::default`] and printed by `childsafe policy show`.
//!
//! ```toml
//! [surfaces.input]
//! fail = "closed"      # a required detector that cannot answer refuses the request
//!
//! [surfaces.input.categories]
//! csam_known        = { action = "block", report = true, strike = "ban" }
//! csam_solicitation = { action = "block", message = "prevention", strike = "strike", min_score = 0.8 }
//! help_seeking      = { action = "allow_with_resources", message = "support" }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    category::Category,
    decision::{Action, Decision, MessageKind, Strike, Surface},
    error::Error,
    finding::Finding,
};

/// The whole policy: one [`SurfacePolicy`] per surface.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    /// Per-surface rules. Every surface is present.
    pub surfaces: BTreeMap<Surface, SurfacePolicy>,
}

/// How one surface treats findings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfacePolicy {
    /// What to do when a required detector cannot answer. Default: closed.
    pub fail: FailMode,
    /// How findings from built-in detectors and remote classifiers combine for
    /// text categories. Default: any (the engine applies this before deciding).
    pub combine: Combine,
    /// Action for content that could not be decoded (an image that does not
    /// decode cannot be perceptually matched). Default: quarantine on ingest,
    /// block elsewhere; fail closed.
    pub undecodable: Action,
    /// Rules per category; categories without a rule are allowed.
    pub categories: BTreeMap<Category, CategoryRule>,
}

/// What one category leads to on one surface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    /// What happens to the content.
    pub action: Action,
    /// The message to show. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageKind>,
    /// Whether to report. Default: false.
    #[serde(default)]
    pub report: bool,
    /// Enforcement against the end user. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strike: Option<Strike>,
    /// Findings scoring below this do not trigger the rule (they are still
    /// listed in the decision). Default: 0.5.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
}

/// What to do when a required detector cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Hold or refuse the content (DESIGN invariant 3).
    Closed,
    /// Let it through; the failure is still counted and logged.
    Open,
}

/// How built-in and remote text findings combine for one category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// A category counts if any source flags it.
    Any,
    /// A category counts only if every text source that answered flags it.
    All,
}

fn default_min_score() -> f64 {
    0.5
}

impl Default for Policy {
    /// The built-in policy.
    ///
    /// - `ingest`: every harm category quarantines; `csam_known` is also reported;
    ///   help-seeking text is kept; undecodable images are quarantined.
    /// - `input`: `csam_known` blocks, reports and bans; solicitation and
    ///   sexualisation block with the prevention message and a strike; grooming
    ///   and sextortion block with a strike; `csam_suspected` escalates;
    ///   help-seeking is answered with support resources.
    /// - `output`: every harm category blocks; `csam_known` is reported; no
    ///   strikes (the model wrote it, not the user).
    /// - `conversation`: as `input`, for grooming and sextortion across turns.
    ///
    /// All surfaces fail closed.
    fn default() -> Policy {
        let rule = |action, message, report, strike, min_score| CategoryRule {
            action,
            message,
            report,
            strike,
            min_score,
        };
        let prevention = Some(MessageKind::Prevention);
        let support = Some(MessageKind::Support);
        let mut surfaces = BTreeMap::new();

        let mut ingest = BTreeMap::new();
        ingest.insert(
            Category::CsamKnown,
            rule(Action::Quarantine, None, true, None, 0.0),
        );
        for category in [
            Category::CsamSuspected,
            Category::CsamSolicitation,
            Category::MinorSexualization,
            Category::Grooming,
            Category::Sextortion,
        ] {
            ingest.insert(category, rule(Action::Quarantine, None, false, None, 0.5));
        }
        ingest.insert(
            Category::HelpSeeking,
            rule(Action::Allow, None, false, None, 0.5),
        );
        surfaces.insert(Surface::Ingest, surface(Action::Quarantine, ingest));

        let mut input = BTreeMap::new();
        input.insert(
            Category::CsamKnown,
            rule(Action::Block, prevention, true, Some(Strike::Ban), 0.0),
        );
        input.insert(
            Category::CsamSuspected,
            rule(Action::Escalate, None, false, None, 0.5),
        );
        for category in [Category::CsamSolicitation, Category::MinorSexualization] {
            input.insert(
                category,
                rule(Action::Block, prevention, false, Some(Strike::Strike), 0.5),
            );
        }
        for category in [Category::Grooming, Category::Sextortion] {
            input.insert(
                category,
                rule(Action::Block, prevention, false, Some(Strike::Strike), 0.5),
            );
        }
        input.insert(
            Category::HelpSeeking,
            rule(Action::AllowWithResources, support, false, None, 0.5),
        );
        surfaces.insert(Surface::Input, surface(Action::Block, input.clone()));
        surfaces.insert(Surface::Conversation, surface(Action::Block, input));

        let mut output = BTreeMap::new();
        output.insert(
            Category::CsamKnown,
            rule(Action::Block, None, true, None, 0.0),
        );
        for category in [
            Category::CsamSuspected,
            Category::CsamSolicitation,
            Category::MinorSexualization,
            Category::Grooming,
            Category::Sextortion,
        ] {
            output.insert(category, rule(Action::Block, None, false, None, 0.5));
        }
        output.insert(
            Category::HelpSeeking,
            rule(Action::AllowWithResources, support, false, None, 0.5),
        );
        surfaces.insert(Surface::Output, surface(Action::Block, output));

        return Policy { surfaces };

        fn surface(
            undecodable: Action,
            categories: BTreeMap<Category, CategoryRule>,
        ) -> SurfacePolicy {
            SurfacePolicy {
                fail: FailMode::Closed,
                combine: Combine::Any,
                undecodable,
                categories,
            }
        }
    }
}

impl Policy {
    /// Parses a policy file and layers it over the built-in defaults.
    ///
    /// # Errors
    /// Invalid TOML, unknown keys, unknown surface, category or action names,
    /// and scores outside 0..=1, each with the offending key.
    pub fn from_toml(text: &str) -> Result<Policy, Error> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| Error::Policy(e.to_string()))?;
        let mut res = Policy::default();
        for (surface, layer) in file.surfaces {
            let target = res.surface_mut(surface);
            if let Some(fail) = layer.fail {
                target.fail = fail;
            }
            if let Some(combine) = layer.combine {
                target.combine = combine;
            }
            if let Some(undecodable) = layer.undecodable {
                target.undecodable = undecodable;
            }
            for (category, rule) in layer.categories {
                if !(0.0..=1.0).contains(&rule.min_score) {
                    return Err(Error::Policy(format!(
                        "surfaces.{surface}.categories.{category}.min_score: expected 0.0 to 1.0, got {}",
                        rule.min_score
                    )));
                }
                target.categories.insert(category, rule);
            }
        }
        Ok(res)
    }

    /// The policy as TOML, defaults included (what `childsafe policy show` prints).
    ///
    /// # Errors
    /// Never in practice; serialisation of these types cannot fail.
    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string(self).map_err(|e| Error::Policy(e.to_string()))
    }

    /// The rules for one surface.
    pub fn surface(&self, surface: Surface) -> &SurfacePolicy {
        // Every constructor fills every surface; see `surface_mut`.
        &self.surfaces[&surface]
    }

    fn surface_mut(&mut self, surface: Surface) -> &mut SurfacePolicy {
        self.surfaces
            .entry(surface)
            .or_insert_with(|| Policy::default().surfaces[&surface].clone())
    }

    /// Decides what to do with content on `surface`, given its findings.
    ///
    /// The action is the most restrictive of the triggered rules; `report` is
    /// true if any triggered rule reports; the strike is the most severe; the
    /// message is the one of the most restrictive rule that has one. All
    /// findings stay in the decision, triggered or not.
    pub fn decide(&self, surface: Surface, findings: Vec<Finding>) -> Decision {
        self.decide_with_failures(surface, findings, Vec::new())
    }

    /// Like [`Policy::decide`], when some required detectors could not answer:
    /// with `fail = "closed"` the content is withheld as for undecodable content.
    pub fn decide_with_failures(
        &self,
        surface: Surface,
        findings: Vec<Finding>,
        failures: Vec<String>,
    ) -> Decision {
        let rules = self.surface(surface);
        let mut res = Decision::allow(surface);
        let mut message_action = Action::Allow;
        for finding in &findings {
            let Some(rule) = rules.categories.get(&finding.category) else {
                continue;
            };
            if finding.score < rule.min_score {
                continue;
            }
            if !res.categories.contains(&finding.category) {
                res.categories.push(finding.category);
            }
            res.action = res.action.max(rule.action);
            res.report |= rule.report;
            res.strike = res.strike.max(rule.strike);
            if let Some(message) = rule.message
                && (res.message.is_none() || rule.action > message_action)
            {
                res.message = Some(message);
                message_action = rule.action;
            }
        }
        if !failures.is_empty() && rules.fail == FailMode::Closed {
            res.action = res.action.max(rules.undecodable);
        }
        res.categories.sort();
        res.findings = findings;
        res.failures = failures;
        res
    }
}

/// A policy file as written: every field optional, layered over the defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    surfaces: BTreeMap<Surface, SurfaceLayer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SurfaceLayer {
    fail: Option<FailMode>,
    combine: Option<Combine>,
    undecodable: Option<Action>,
    #[serde(default)]
    categories: BTreeMap<Category, CategoryRule>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::FindingSource;

    fn finding(category: Category, score: f64) -> Finding {
        Finding::new(category, score, FindingSource::detector("test"))
    }

    #[test]
    fn defaults_block_solicitation_and_answer_help_seeking() {
        let policy = Policy::default();
        let decision = policy.decide(
            Surface::Input,
            vec![finding(Category::CsamSolicitation, 0.9)],
        );
        assert_eq!(decision.action, Action::Block);
        assert_eq!(decision.message, Some(MessageKind::Prevention));
        assert_eq!(decision.strike, Some(Strike::Strike));
        assert!(!decision.report);

        let decision = policy.decide(Surface::Input, vec![finding(Category::HelpSeeking, 0.9)]);
        assert_eq!(decision.action, Action::AllowWithResources);
        assert_eq!(decision.message, Some(MessageKind::Support));
        assert_eq!(decision.strike, None);
    }

    #[test]
    fn known_csam_is_reported_on_every_surface() {
        let policy = Policy::default();
        for surface in Surface::ALL {
            let decision = policy.decide(surface, vec![finding(Category::CsamKnown, 1.0)]);
            assert!(decision.report, "{surface}");
            assert!(decision.action.withholds(), "{surface}");
        }
    }

    #[test]
    fn below_threshold_findings_are_kept_but_do_not_act() {
        let policy = Policy::default();
        let decision = policy.decide(
            Surface::Input,
            vec![finding(Category::CsamSolicitation, 0.2)],
        );
        assert_eq!(decision.action, Action::Allow);
        assert!(decision.categories.is_empty());
        assert_eq!(decision.findings.len(), 1);
    }

    #[test]
    fn fail_closed_withholds_and_fail_open_does_not() {
        let mut policy = Policy::default();
        let decision =
            policy.decide_with_failures(Surface::Input, vec![], vec!["llama_guard".into()]);
        assert_eq!(decision.action, Action::Block);
        assert_eq!(decision.failures, ["llama_guard"]);
        policy.surfaces.get_mut(&Surface::Input).unwrap().fail = FailMode::Open;
        let decision =
            policy.decide_with_failures(Surface::Input, vec![], vec!["llama_guard".into()]);
        assert_eq!(decision.action, Action::Allow);
    }

    #[test]
    fn file_layers_over_defaults() {
        let policy = Policy::from_toml(
            r#"
[surfaces.input.categories]
csam_solicitation = { action = "escalate", min_score = 0.8 }
"#,
        )
        .unwrap();
        let rules = &policy.surface(Surface::Input).categories;
        assert_eq!(rules[&Category::CsamSolicitation].action, Action::Escalate);
        assert_eq!(rules[&Category::CsamSolicitation].min_score, 0.8);
        // Untouched rules keep their defaults.
        assert_eq!(rules[&Category::CsamKnown].strike, Some(Strike::Ban));
        let round_trip = Policy::from_toml(&policy.to_toml().unwrap()).unwrap();
        assert_eq!(round_trip, policy);
    }

    #[test]
    fn bad_policy_files_name_the_key() {
        let check = |text: &str, want: &str| {
            let err = Policy::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        };
        check("[surfaces.inptu]\n", "unknown variant `inptu`");
        check(
            "[surfaces.input.categories]\ncsam_solicitation = { action = \"nuke\" }\n",
            "unknown variant `nuke`",
        );
        check(
            "[surfaces.input.categories]\ngrooming = { action = \"block\", min_score = 2.0 }\n",
            "surfaces.input.categories.grooming.min_score: expected 0.0 to 1.0, got 2",
        );
        check(
            "[surfaces.input]\nfial = \"open\"\n",
            "unknown field `fial`",
        );
    }
}
