//! Enforcement: the strike ladder per end user and per tenant, sanctions
//! (suspension, ban) checked on every request, and incident recording with
//! retries.
//!
//! Sanctions live in the store so every replica sees them; each replica keeps
//! a cache, updated at once for its own decisions and reloaded from the store
//! every `enforcement.refresh_secs` for the others'. Strikes older than
//! `decay_days` no longer count toward the ladder.

use std::{collections::HashMap, sync::RwLock, time::Duration};

use childsafe_core::{Category, Strike};
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    config::{EnforcementConfig, LadderAction, LadderStep},
    error::{AppError, ErrorKind},
    ledger::{AuditEntry, Incident, RecordedIncident, Sanction, Subject},
    metrics::{RECORD_WRITES, SANCTIONED},
    state::AppState,
};

/// The sanctions cache and the ladders.
pub struct Enforcement {
    config: EnforcementConfig,
    cache: RwLock<HashMap<Subject, Sanction>>,
}

impl Enforcement {
    /// An empty cache with the configured ladders.
    pub fn new(config: EnforcementConfig) -> Enforcement {
        Enforcement {
            config,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Refuses a request from a suspended or banned tenant or user with 403,
    /// saying until when and how to appeal.
    ///
    /// # Errors
    /// `Permission` while a suspension or ban is active.
    pub fn check(&self, tenant: &str, user: Option<&str>, appeal: &str) -> Result<(), AppError> {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.is_empty() {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let mut subjects = vec![Subject::Tenant(tenant.to_owned())];
        if let Some(user) = user {
            subjects.push(Subject::User {
                tenant: tenant.to_owned(),
                user: user.to_owned(),
            });
        }
        for subject in subjects {
            let Some(sanction) = cache.get(&subject) else {
                continue;
            };
            if sanction.action == LadderAction::Warn
                || sanction.until.is_some_and(|until| until <= now)
            {
                continue;
            }
            metrics::counter!(SANCTIONED, "action" => sanction.action.as_str()).increment(1);
            let who = match subject {
                Subject::Tenant(_) => "This application's access",
                Subject::User { .. } => "Your access",
            };
            let when = match sanction.until {
                Some(until) => format!(
                    "is suspended until {}",
                    until
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
                None => "has been permanently blocked".to_owned(),
            };
            return Err(AppError::new(
                ErrorKind::Permission,
                format!(
                    "{who} {when} because of repeated requests that violate the child safety policy. {appeal}"
                ),
            ));
        }
        Ok(())
    }

    /// Applies a decision's strike to the user (and counts it for the tenant),
    /// moving up the ladders; every change goes to the audit log. Failures are
    /// logged: the request was already refused.
    pub async fn strike(
        &self,
        state: &AppState,
        tenant: &str,
        user: Option<&str>,
        strike: Strike,
        categories: &[Category],
        request_id: &str,
    ) {
        let now = OffsetDateTime::now_utc();
        let since = now - Duration::from_secs(u64::from(self.config.decay_days) * 86_400);
        let category = categories
            .first()
            .copied()
            .unwrap_or(Category::CsamSolicitation);
        let reason = categories
            .iter()
            .map(|it| it.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut subjects = Vec::new();
        if let Some(user) = user {
            subjects.push((
                Subject::User {
                    tenant: tenant.to_owned(),
                    user: user.to_owned(),
                },
                &self.config.user_ladder,
            ));
        }
        subjects.push((
            Subject::Tenant(tenant.to_owned()),
            &self.config.tenant_ladder,
        ));
        for (subject, ladder) in subjects {
            let is_user = matches!(subject, Subject::User { .. });
            let count = match state
                .ledger
                .add_strike(subject.clone(), strike, category, request_id, since)
                .await
            {
                Ok(count) => count,
                Err(e) => {
                    tracing::error!(request_id, error = %e, "strike not recorded");
                    continue;
                }
            };
            // An immediate ban applies to the user; the tenant only counts the strike.
            let step = if strike == Strike::Ban && is_user {
                Some(LadderStep {
                    strikes: count,
                    action: LadderAction::Ban,
                    hours: 0,
                })
            } else if strike == Strike::Warn {
                Some(LadderStep {
                    strikes: count,
                    action: LadderAction::Warn,
                    hours: 0,
                })
            } else {
                ladder_step(ladder, count)
            };
            let Some(step) = step else { continue };
            let until = match step.action {
                LadderAction::Suspend => {
                    Some(now + Duration::from_secs(u64::from(step.hours) * 3600))
                }
                LadderAction::Warn | LadderAction::Ban => None,
            };
            let sanction = Sanction {
                subject: subject.clone(),
                action: step.action,
                until,
                reason: format!(
                    "{count} strike(s) within {} days: {reason}",
                    self.config.decay_days
                ),
            };
            if let Err(e) = state.ledger.set_sanction(sanction.clone()).await {
                tracing::error!(request_id, error = %e, "sanction not recorded");
                continue;
            }
            audit(
                state,
                "system",
                "sanction.apply",
                &subject.key(),
                json!({"action": step.action.as_str(), "strikes": count, "request_id": request_id, "categories": reason}),
            )
            .await;
            self.cache
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(subject, sanction);
        }
    }

    /// Lifts a sanction (admin action or granted appeal).
    pub fn forget(&self, subject: &Subject) {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(subject);
    }

    /// Reloads active sanctions from the store (other replicas' decisions).
    pub async fn refresh(&self, state: &AppState) {
        match state
            .ledger
            .active_sanctions(OffsetDateTime::now_utc())
            .await
        {
            Ok(sanctions) => {
                let fresh: HashMap<Subject, Sanction> = sanctions
                    .into_iter()
                    .map(|it| (it.subject.clone(), it))
                    .collect();
                *self
                    .cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
            }
            Err(e) => tracing::warn!(error = %e, "sanctions not refreshed; keeping the cache"),
        }
    }

    /// The refresh period.
    pub fn refresh_every(&self) -> Duration {
        Duration::from_secs(self.config.refresh_secs.max(1))
    }
}

/// The highest step whose threshold `count` reaches.
pub fn ladder_step(ladder: &[LadderStep], count: u32) -> Option<LadderStep> {
    ladder
        .iter()
        .rev()
        .find(|step| count >= step.strikes)
        .cloned()
}

/// Records an incident, retrying with backoff; fails closed (500) if the
/// store cannot take it, so no incident is silently lost.
///
/// # Errors
/// `Internal` after `store.record_attempts` failed attempts.
pub async fn record_incident(
    state: &AppState,
    incident: Incident,
) -> Result<RecordedIncident, AppError> {
    let attempts = state.config.store.record_attempts.max(1);
    let mut delay = Duration::from_millis(20);
    for attempt in 1..=attempts {
        match state.ledger.record_incident(incident.clone()).await {
            Ok(id) => {
                if attempt > 1 {
                    metrics::counter!(RECORD_WRITES, "outcome" => "retried").increment(1);
                }
                return Ok(id);
            }
            Err(e) => {
                tracing::warn!(request_id = %incident.request_id, attempt, error = %e, "incident not recorded yet");
                if attempt < attempts {
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
            }
        }
    }
    metrics::counter!(RECORD_WRITES, "outcome" => "failed").increment(1);
    tracing::error!(request_id = %incident.request_id, "incident could not be recorded; failing closed");
    Err(AppError::new(
        ErrorKind::Internal,
        "this request could not be processed; retry later",
    ))
}

/// Appends to the audit log; a failure is logged loudly (the action itself
/// already happened).
pub async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) {
    let entry = AuditEntry {
        at: OffsetDateTime::now_utc(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        details,
    };
    if let Err(e) = state.ledger.audit(entry).await {
        tracing::error!(error = %e, action, "audit entry not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_takes_the_highest_step_reached() {
        let ladder = crate::config::EnforcementConfig::default().user_ladder;
        assert_eq!(ladder_step(&ladder, 0), None);
        assert_eq!(
            ladder_step(&ladder, 1).map(|it| it.action),
            Some(LadderAction::Warn)
        );
        assert_eq!(
            ladder_step(&ladder, 2).map(|it| it.action),
            Some(LadderAction::Suspend)
        );
        assert_eq!(
            ladder_step(&ladder, 7).map(|it| it.action),
            Some(LadderAction::Ban)
        );
    }
}
