//! Phased rollout of a candidate upstream, halted automatically when its
//! abuse rate crosses a threshold.
//!
//! Each end user falls in a fixed bucket in [0, 100) from a hash of the
//! rollout name and the user id, so the same user always gets the same
//! answer on every replica. Stage `k` sends users with a bucket below
//! `stages[k].percent` to the candidate; the users stage `k` added (buckets
//! from `stages[k-1].percent` up) form its cohort. Requests and incidents
//! are counted per cohort in one-minute buckets in the store, shared by all
//! replicas; every `sync_secs` each replica flushes its counts, reloads the
//! state, and halts the current stage if its rate (incidents per 1,000
//! requests over `window_secs`, by category, and `any` for their sum)
//! crosses a threshold once `min_requests` are in. A halted stage's cohort
//! goes back to the baseline upstream, or gets 503 (`on_halt`). Promote,
//! halt and resume are admin actions; every transition is audited and
//! versioned in the store so two replicas cannot both apply one.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, RwLock},
};

use childsafe_core::Category;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    config::{OnHalt, RolloutConfig, RolloutProtocol},
    enforcement::audit,
    error::Protocol,
    ledger::{RolloutState, StageCounts},
    metrics::ROLLOUT_TRANSITIONS,
    state::AppState,
};

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The route's usual upstream.
    Baseline,
    /// The candidate, counted under the cohort `stage`.
    Candidate {
        /// The candidate upstream's name.
        upstream: String,
        /// The cohort's stage name.
        stage: String,
    },
    /// 503: the user's stage is halted and `on_halt = "unavailable"`.
    Unavailable,
}

/// The rollout: config, the cached shared state, and local counts not yet flushed.
pub struct Rollout {
    config: RolloutConfig,
    state: RwLock<RolloutState>,
    counts: Mutex<HashMap<String, StageCounts>>,
}

impl Rollout {
    /// A rollout at stage 0 until the store says otherwise.
    pub fn new(config: RolloutConfig) -> Rollout {
        Rollout {
            config,
            state: RwLock::new(RolloutState::default()),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the rollout covers this protocol's route.
    pub fn applies_to(&self, protocol: Protocol) -> bool {
        matches!(
            (self.config.protocol, protocol),
            (RolloutProtocol::Openai, Protocol::OpenAi)
                | (RolloutProtocol::Anthropic, Protocol::Anthropic)
        )
    }

    /// The user's bucket in [0, 100).
    pub fn bucket(&self, user: &str) -> f64 {
        let digest = Sha256::digest(format!("{}:{user}", self.config.name).as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }

    /// Where this user's request goes now.
    pub fn route(&self, user: &str) -> Route {
        let state = self.current();
        let bucket = self.bucket(user);
        let stages = &self.config.stages;
        let current = state.stage.min(stages.len().saturating_sub(1));
        let Some(cohort) = stages.iter().position(|it| bucket < it.percent) else {
            return Route::Baseline;
        };
        if cohort > current {
            return Route::Baseline;
        }
        if cohort == current && state.halted {
            return match self.config.on_halt {
                OnHalt::Previous => Route::Baseline,
                OnHalt::Unavailable => Route::Unavailable,
            };
        }
        Route::Candidate {
            upstream: self.config.candidate_upstream.clone(),
            stage: stages[cohort].name.clone(),
        }
    }

    /// Counts a request served in a cohort.
    pub fn count_request(&self, stage: &str) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.entry(stage.to_owned()).or_default().0 += 1;
    }

    /// Counts an incident in a cohort (abuse categories only).
    pub fn count_incident(&self, stage: &str, categories: &[Category]) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = counts.entry(stage.to_owned()).or_default();
        for category in categories {
            *entry.1.entry(*category).or_default() += 1;
        }
    }

    /// The cached state.
    pub fn current(&self) -> RolloutState {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How often to sync.
    pub fn sync_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.sync_secs.max(1))
    }

    /// Flushes local counts, reloads the shared state, and halts the current
    /// stage if its rate crossed a threshold.
    pub async fn sync(&self, app: &AppState) {
        let minute = OffsetDateTime::now_utc().unix_timestamp() / 60;
        let pending: Vec<(String, StageCounts)> = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .collect();
        for (stage, (requests, incidents)) in pending {
            if let Err(e) = app
                .ledger
                .add_rollout_counts(
                    &self.config.name,
                    &stage,
                    minute,
                    requests,
                    incidents.clone(),
                )
                .await
            {
                tracing::warn!(error = %e, "rollout counts not flushed; keeping them for the next sync");
                let mut counts = self
                    .counts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let entry = counts.entry(stage).or_default();
                entry.0 += requests;
                for (category, n) in incidents {
                    *entry.1.entry(category).or_default() += n;
                }
            }
        }
        let Ok(state) = app.ledger.rollout_state(&self.config.name).await else {
            return;
        };
        *self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state.clone();
        if state.halted {
            return;
        }
        let Some(stage) = self.config.stages.get(state.stage) else {
            return;
        };
        let (requests, rates) = match self.rates(app, &stage.name).await {
            Some(it) => it,
            None => return,
        };
        if requests < self.config.min_requests {
            return;
        }
        for (name, threshold) in &self.config.thresholds {
            let rate = rates.get(name.as_str()).copied().unwrap_or(0.0);
            if rate > *threshold {
                let reason = format!(
                    "{name} rate {rate:.2} per 1000 requests over {threshold} ({requests} requests)"
                );
                let _ = self
                    .transition(app, "system", Transition::Halt, Some(reason))
                    .await;
                return;
            }
        }
    }

    /// Requests and rates (per 1,000, by category name and `any`) for a stage's window.
    async fn rates(&self, app: &AppState, stage: &str) -> Option<(u64, BTreeMap<String, f64>)> {
        let since =
            (OffsetDateTime::now_utc().unix_timestamp() - self.config.window_secs as i64) / 60;
        let (requests, incidents) = app
            .ledger
            .rollout_counts(&self.config.name, stage, since)
            .await
            .ok()?;
        let mut rates = BTreeMap::new();
        let per_thousand = |n: u64| {
            if requests == 0 {
                0.0
            } else {
                n as f64 * 1000.0 / requests as f64
            }
        };
        let mut any = 0;
        for (category, n) in incidents {
            any += n;
            rates.insert(category.as_str().to_owned(), per_thousand(n));
        }
        rates.insert("any".to_owned(), per_thousand(any));
        Some((requests, rates))
    }

    /// Applies a transition (promote, halt, resume) through the store's
    /// versioned state; audits it.
    ///
    /// # Errors
    /// A message for the admin API when the transition does not apply.
    pub async fn transition(
        &self,
        app: &AppState,
        actor: &str,
        transition: Transition,
        reason: Option<String>,
    ) -> Result<RolloutState, String> {
        for _ in 0..3 {
            let current = app
                .ledger
                .rollout_state(&self.config.name)
                .await
                .map_err(|e| e.to_string())?;
            let mut next = current.clone();
            match transition {
                Transition::Promote => {
                    if current.halted {
                        return Err("the current stage is halted: resume it first".to_owned());
                    }
                    if current.stage + 1 >= self.config.stages.len() {
                        return Err("already at the last stage".to_owned());
                    }
                    next.stage += 1;
                }
                Transition::Halt => {
                    if current.halted {
                        return Err("already halted".to_owned());
                    }
                    next.halted = true;
                    next.reason = reason.clone();
                }
                Transition::Resume => {
                    if !current.halted {
                        return Err("not halted".to_owned());
                    }
                    next.halted = false;
                    next.reason = None;
                }
            }
            next.version = current.version + 1;
            let note = reason.as_deref().unwrap_or(transition.as_str());
            if app
                .ledger
                .set_rollout_state(
                    &self.config.name,
                    current.version,
                    next.clone(),
                    actor,
                    note,
                )
                .await
                .map_err(|e| e.to_string())?
            {
                *self
                    .state
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = next.clone();
                let stage = self.config.stages.get(next.stage).map(|it| it.name.clone());
                metrics::counter!(ROLLOUT_TRANSITIONS, "transition" => transition.as_str())
                    .increment(1);
                tracing::warn!(rollout = %self.config.name, transition = transition.as_str(), stage = ?stage, "rollout transition");
                audit(
                    app,
                    actor,
                    &format!("rollout.{}", transition.as_str()),
                    &format!("rollout:{}", self.config.name),
                    json!({"from_stage": current.stage, "to_stage": next.stage, "stage": stage, "halted": next.halted, "reason": reason}),
                )
                .await;
                return Ok(next);
            }
        }
        Err("the rollout changed concurrently; retry".to_owned())
    }

    /// The rollout's status for the admin API.
    pub async fn status(&self, app: &AppState) -> Value {
        let state = app
            .ledger
            .rollout_state(&self.config.name)
            .await
            .unwrap_or_else(|_| self.current());
        let mut stages = Vec::new();
        for (idx, stage) in self.config.stages.iter().enumerate() {
            let (requests, rates) = self.rates(app, &stage.name).await.unwrap_or_default();
            stages.push(json!({"name": stage.name, "percent": stage.percent, "current": idx == state.stage, "requests": requests, "rates_per_1000": rates}));
        }
        json!({
            "name": self.config.name,
            "stage": state.stage,
            "halted": state.halted,
            "reason": state.reason,
            "version": state.version,
            "thresholds": self.config.thresholds,
            "stages": stages,
        })
    }
}

/// A rollout transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Next stage.
    Promote,
    /// Stop the current stage's cohort.
    Halt,
    /// Undo a halt.
    Resume,
}

impl Transition {
    /// Stable name (audit action suffix, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Promote => "promote",
            Transition::Halt => "halt",
            Transition::Resume => "resume",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StageConfig;

    fn rollout(on_halt: OnHalt) -> Rollout {
        Rollout::new(RolloutConfig {
            name: "r".to_owned(),
            protocol: RolloutProtocol::Openai,
            candidate_upstream: "new".to_owned(),
            stages: vec![
                StageConfig {
                    name: "canary".to_owned(),
                    percent: 10.0,
                },
                StageConfig {
                    name: "half".to_owned(),
                    percent: 50.0,
                },
            ],
            window_secs: 3600,
            min_requests: 10,
            thresholds: BTreeMap::from([("any".to_owned(), 5.0)]),
            on_halt,
            sync_secs: 5,
        })
    }

    #[test]
    fn buckets_are_deterministic_and_spread() {
        let r = rollout(OnHalt::Previous);
        assert_eq!(r.bucket("alice"), r.bucket("alice"));
        let below_ten = (0..10_000)
            .filter(|i| r.bucket(&format!("user-{i}")) < 10.0)
            .count();
        assert!(
            (800..1200).contains(&below_ten),
            "{below_ten} of 10000 users under 10%"
        );
    }

    #[test]
    fn stages_route_cohorts_and_halts_send_the_newest_back() {
        let r = rollout(OnHalt::Unavailable);
        let users: Vec<String> = (0..2000).map(|i| format!("u{i}")).collect();
        let canary = users.iter().find(|u| r.bucket(u) < 10.0).unwrap();
        let half = users
            .iter()
            .find(|u| (10.0..50.0).contains(&r.bucket(u)))
            .unwrap();
        let rest = users.iter().find(|u| r.bucket(u) >= 50.0).unwrap();
        assert_eq!(
            r.route(canary),
            Route::Candidate {
                upstream: "new".to_owned(),
                stage: "canary".to_owned()
            }
        );
        assert_eq!(r.route(half), Route::Baseline);
        *r.state.write().unwrap() = RolloutState {
            stage: 1,
            halted: false,
            reason: None,
            version: 1,
        };
        assert_eq!(
            r.route(half),
            Route::Candidate {
                upstream: "new".to_owned(),
                stage: "half".to_owned()
            }
        );
        assert_eq!(r.route(rest), Route::Baseline);
        *r.state.write().unwrap() = RolloutState {
            stage: 1,
            halted: true,
            reason: None,
            version: 2,
        };
        assert_eq!(r.route(half), Route::Unavailable);
        // Earlier cohorts keep the candidate they were vetted on.
        assert_eq!(
            r.route(canary),
            Route::Candidate {
                upstream: "new".to_owned(),
                stage: "canary".to_owned()
            }
        );
        let r = rollout(OnHalt::Previous);
        *r.state.write().unwrap() = RolloutState {
            stage: 0,
            halted: true,
            reason: None,
            version: 1,
        };
        assert_eq!(r.route(canary), Route::Baseline);
    }
}
