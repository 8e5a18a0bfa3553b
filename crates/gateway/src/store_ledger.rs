//! The production [`Ledger`]: `childsafe_store::Store`, an SQLite file or a
//! PostgreSQL database shared by every replica, so incidents, cases,
//! strikes, sanctions, reports, appeals, rollout state and account risk
//! survive restarts and one replica's decision holds on all of them.
//!
//! This file only translates: every rule that matters lives in the store
//! (a case opened in the incident's transaction, every change audited in
//! its own transaction, retries while the database is briefly unavailable).
//! Nothing here holds content; images reach the store as hashes and vault
//! item ids, after the gateway put the bytes in the vault.
//!
//! Admin tokens come from two places: tokens issued by the store (verified
//! there) and tokens handed to this process (the environment variable, the
//! demo), whose hashes are kept in memory: each replica reads its own
//! environment.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use childsafe_core::{Category, Sha256, Strike};
use childsafe_store::{
    ActionKind, AppealStatus, EnforcementAction, Error as StoreError, IncidentFile,
    NewEnforcementAction, NewIncident, NewStrike, NewUserReport, RolloutStatus, Store,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    config::{LadderAction, hash_secret},
    inspect::BoxFuture,
    ledger::{
        AUDIT_LOG_LIMIT, Appeal, AuditEntry, FiledReport, Incident, IncidentRef, Ledger,
        LedgerError, LedgerResult, NewReport, RecordedIncident, RolloutState, Sanction,
        StageCounts, Subject,
    },
};

/// Who the gateway's own writes are by, in the audit log.
pub const GATEWAY_ACTOR: &str = "gateway";

/// The [`Ledger`] over the store.
#[derive(Clone)]
pub struct StoreLedger {
    store: Store,
    /// SHA-256 -> token id, for tokens handed to this process.
    local_tokens: Arc<Mutex<HashMap<String, String>>>,
}

impl StoreLedger {
    /// Wraps an open (migrated) store.
    pub fn new(store: Store) -> StoreLedger {
        StoreLedger {
            store,
            local_tokens: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The store, for callers that need more than the trait (tests, the CLI).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn err(e: StoreError) -> LedgerError {
    LedgerError(e.to_string())
}

/// A hex SHA-256 the gateway computed, as the store's type. The gateway
/// writes these itself, so one that does not parse is a bug: the write is
/// refused (and the caller fails closed) rather than stored without it.
fn sha256_of(field: &str, hex: &str) -> LedgerResult<Sha256> {
    hex.parse()
        .map_err(|e| LedgerError(format!("{field}: {e}")))
}

impl Ledger for StoreLedger {
    fn record_incident(&self, incident: Incident) -> BoxFuture<'_, LedgerResult<RecordedIncident>> {
        Box::pin(async move {
            let mut files = Vec::with_capacity(incident.images.len());
            for image in &incident.images {
                let vault_item = match &image.preserved {
                    Some(meta) => {
                        // Registering is idempotent, so a retried incident registers once.
                        self.store
                            .register_evidence(
                                meta,
                                GATEWAY_ACTOR,
                                &format!("preserved from request {}", incident.request_id),
                            )
                            .await
                            .map_err(err)?;
                        Some(meta.id)
                    }
                    None => None,
                };
                files.push(IncidentFile {
                    hashes: image.hashes.clone(),
                    vault_item,
                });
            }
            let new = NewIncident {
                tenant: incident.tenant.clone(),
                end_user: incident.user.clone(),
                surface: incident.surface,
                action: incident.action,
                categories: incident.categories.clone(),
                findings: incident.findings.clone(),
                files,
                text_sha256: incident
                    .text_sha256
                    .as_deref()
                    .map(|it| sha256_of("text_sha256", it))
                    .transpose()?,
                request_id: Some(incident.request_id.clone()),
                stage: incident.rollout_stage.clone(),
                report: incident.report,
            };
            let recorded = self.store.record_incident(&new).await.map_err(err)?;
            Ok(RecordedIncident {
                id: recorded.id.to_string(),
                case_id: recorded.case_id.map(|it| it.0.to_string()),
            })
        })
    }

    fn open_cases(&self) -> BoxFuture<'_, LedgerResult<u64>> {
        Box::pin(async move { self.store.count_open_cases().await.map_err(err) })
    }

    fn add_strike(
        &self,
        subject: Subject,
        kind: Strike,
        category: Category,
        request_id: &str,
        since: OffsetDateTime,
    ) -> BoxFuture<'_, LedgerResult<u32>> {
        let reason = format!("request {request_id}");
        Box::pin(async move {
            let (tenant, user) = subject.parts();
            let strike = NewStrike {
                tenant: tenant.to_owned(),
                end_user: user.map(str::to_owned),
                kind,
                category: Some(category),
                incident_id: None,
                reason: Some(reason),
            };
            self.store
                .record_strike(&strike, GATEWAY_ACTOR)
                .await
                .map_err(err)?;
            let since = match self.store.last_lift(tenant, user).await.map_err(err)? {
                Some(lifted) => since.max(lifted),
                None => since,
            };
            let strikes = match user {
                Some(user) => self
                    .store
                    .strikes_for_user(tenant, user, since)
                    .await
                    .map_err(err)?,
                // The tenant's ledger holds its users' strikes too; its own ladder counts its own.
                None => self
                    .store
                    .strikes_for_tenant(tenant, since)
                    .await
                    .map_err(err)?
                    .into_iter()
                    .filter(|it| it.end_user.is_none())
                    .collect(),
            };
            Ok(u32::try_from(strikes.len()).unwrap_or(u32::MAX))
        })
    }

    fn set_sanction(&self, sanction: Sanction) -> BoxFuture<'_, LedgerResult<()>> {
        Box::pin(async move {
            let kind = match sanction.action {
                // A warning is the strike itself, already recorded (and audited).
                LadderAction::Warn => return Ok(()),
                LadderAction::Suspend => ActionKind::Suspend,
                LadderAction::Ban => ActionKind::Ban,
            };
            let (tenant, user) = sanction.subject.parts();
            let action = NewEnforcementAction {
                tenant: tenant.to_owned(),
                end_user: user.map(str::to_owned),
                kind,
                until: sanction.until,
                reason: sanction.reason.clone(),
            };
            self.store
                .impose_action(&action, GATEWAY_ACTOR)
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn lift_sanction(
        &self,
        subject: &Subject,
        actor: &str,
        reason: &str,
    ) -> BoxFuture<'_, LedgerResult<bool>> {
        let subject = subject.clone();
        let (actor, reason) = (actor.to_owned(), reason.to_owned());
        Box::pin(async move {
            let mut lifted = false;
            for action in self.exact_actions(&subject).await? {
                match self.store.lift_action(action.id, &actor, &reason).await {
                    Ok(_) => lifted = true,
                    // Lifted meanwhile by another replica or an appeal: the goal is reached.
                    Err(StoreError::InvalidTransition { .. }) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Ok(lifted)
        })
    }

    fn active_sanctions(&self, now: OffsetDateTime) -> BoxFuture<'_, LedgerResult<Vec<Sanction>>> {
        Box::pin(async move {
            let actions = self.store.all_active_actions().await.map_err(err)?;
            let mut strongest: BTreeMap<Subject, Sanction> = BTreeMap::new();
            for action in actions {
                let sanction = sanction_of(&action);
                if sanction.until.is_some_and(|until| until <= now) {
                    continue;
                }
                let keep = match strongest.get(&sanction.subject) {
                    Some(held) => outranks(&sanction, held),
                    None => true,
                };
                if keep {
                    strongest.insert(sanction.subject.clone(), sanction);
                }
            }
            Ok(strongest.into_values().collect())
        })
    }

    fn add_report(&self, report: NewReport) -> BoxFuture<'_, LedgerResult<FiledReport>> {
        Box::pin(async move {
            // The store files a report under one category: the reporter's
            // reason, else the most severe one found; a report of "other"
            // with nothing found is filed as suspected, for a person to look at.
            let reason = report
                .reason
                .parse::<Category>()
                .ok()
                .or_else(|| report.categories.iter().copied().find(|it| it.is_abuse()))
                .unwrap_or(Category::CsamSuspected);
            let new = NewUserReport {
                reporter: report.reporter.clone(),
                tenant: Some(report.tenant.clone()),
                response_id: report.request_id.clone(),
                reason,
                categories: report.categories.clone(),
                findings: report.findings.clone(),
                comment: report.comment.clone(),
                comment_sha256: report
                    .comment_sha256
                    .as_deref()
                    .map(|it| sha256_of("comment_sha256", it))
                    .transpose()?,
                subject_end_user: None,
                vault_item: None,
                content_hashes: report.content_hashes.clone(),
                generated: report.request_id.is_some(),
            };
            let filed = self
                .store
                .submit_user_report(&new, None)
                .await
                .map_err(err)?;
            let case_id = filed
                .case_id
                .ok_or_else(|| LedgerError(format!("report {}: no case", filed.id)))?;
            Ok(FiledReport {
                id: filed.id.to_string(),
                case_id: case_id.0.to_string(),
            })
        })
    }

    fn count_reports(
        &self,
        reporter: &str,
        since: OffsetDateTime,
    ) -> BoxFuture<'_, LedgerResult<u32>> {
        let reporter = reporter.to_owned();
        Box::pin(async move {
            let n = self
                .store
                .count_user_reports_since(&reporter, since)
                .await
                .map_err(err)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
    }

    fn incident_for_request(
        &self,
        request_id: &str,
    ) -> BoxFuture<'_, LedgerResult<Option<IncidentRef>>> {
        let request_id = request_id.to_owned();
        Box::pin(async move {
            let found = self
                .store
                .incident_for_request(&request_id)
                .await
                .map_err(err)?;
            Ok(found.map(|it| (it.id.to_string(), it.categories)))
        })
    }

    fn file_appeal(
        &self,
        subject: Subject,
        statement: String,
    ) -> BoxFuture<'_, LedgerResult<Appeal>> {
        Box::pin(async move {
            let Subject::User { tenant, user } = &subject else {
                return Err(LedgerError("appeals come from end users".to_owned()));
            };
            // The appeal names the action it appeals, so granting it lifts that action.
            let action_id = self.exact_actions(&subject).await?.last().map(|it| it.id);
            let filed = self
                .store
                .file_appeal(tenant, user, action_id, Some(&statement))
                .await
                .map_err(err)?;
            Ok(appeal_of(filed))
        })
    }

    fn appeals(&self, status: Option<&str>) -> BoxFuture<'_, LedgerResult<Vec<Appeal>>> {
        let status = status.map(appeal_status);
        Box::pin(async move {
            let Some(status) = status else {
                let all = self.store.list_appeals(None, 1000).await.map_err(err)?;
                return Ok(all.into_iter().map(appeal_of).collect());
            };
            let Some(status) = status else {
                return Ok(Vec::new());
            };
            let some = self
                .store
                .list_appeals(Some(status), 1000)
                .await
                .map_err(err)?;
            Ok(some.into_iter().map(appeal_of).collect())
        })
    }

    fn decide_appeal(
        &self,
        id: &str,
        grant: bool,
        actor: &str,
        note: Option<String>,
    ) -> BoxFuture<'_, LedgerResult<Option<Appeal>>> {
        let id = id.parse::<i64>().ok();
        let actor = actor.to_owned();
        Box::pin(async move {
            let Some(id) = id else { return Ok(None) };
            let reason = note
                .as_deref()
                .unwrap_or(if grant { "granted" } else { "denied" });
            match self.store.decide_appeal(id, grant, &actor, reason).await {
                Ok(appeal) => Ok(Some(appeal_of(appeal))),
                Err(StoreError::NotFound { .. } | StoreError::InvalidTransition { .. }) => Ok(None),
                Err(e) => Err(err(e)),
            }
        })
    }

    fn rollout_state(&self, name: &str) -> BoxFuture<'_, LedgerResult<RolloutState>> {
        let name = name.to_owned();
        Box::pin(async move {
            let state = self.store.rollout_state(&name).await.map_err(err)?;
            Ok(match state {
                Some(state) => RolloutState {
                    stage: state.stage as usize,
                    halted: state.status == RolloutStatus::Halted,
                    reason: state
                        .detail
                        .get("reason")
                        .and_then(|it| it.as_str())
                        .map(str::to_owned),
                    version: u64::try_from(state.version).unwrap_or(0),
                },
                None => RolloutState::default(),
            })
        })
    }

    fn set_rollout_state(
        &self,
        name: &str,
        expected_version: u64,
        state: RolloutState,
        actor: &str,
        reason: &str,
    ) -> BoxFuture<'_, LedgerResult<bool>> {
        let (name, actor, reason) = (name.to_owned(), actor.to_owned(), reason.to_owned());
        Box::pin(async move {
            // Version 0 is "never moved": the store creates the row (at version 1).
            let expected = match expected_version {
                0 => None,
                it => Some(i64::try_from(it).map_err(|_| LedgerError("version".to_owned()))?),
            };
            let status = if state.halted {
                RolloutStatus::Halted
            } else {
                RolloutStatus::Active
            };
            let stage = u32::try_from(state.stage).map_err(|_| LedgerError("stage".to_owned()))?;
            let res = self
                .store
                .set_rollout_state(
                    &name,
                    expected,
                    stage,
                    status,
                    &json!({"reason": state.reason}),
                    &actor,
                    &reason,
                )
                .await;
            match res {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict { .. }) => Ok(false),
                Err(e) => Err(err(e)),
            }
        })
    }

    fn add_rollout_counts(
        &self,
        name: &str,
        stage: &str,
        minute: i64,
        requests: u64,
        incidents: BTreeMap<Category, u64>,
    ) -> BoxFuture<'_, LedgerResult<()>> {
        let (name, stage) = (name.to_owned(), stage.to_owned());
        Box::pin(async move {
            let counts = childsafe_store::StageCounts {
                requests,
                incidents,
            };
            self.store
                .add_rollout_counts(&name, &stage, minute, &counts)
                .await
                .map_err(err)
        })
    }

    fn rollout_counts(
        &self,
        name: &str,
        stage: &str,
        since_minute: i64,
    ) -> BoxFuture<'_, LedgerResult<StageCounts>> {
        let (name, stage) = (name.to_owned(), stage.to_owned());
        Box::pin(async move {
            let counts = self
                .store
                .rollout_counts(&name, &stage, since_minute)
                .await
                .map_err(err)?;
            Ok((counts.requests, counts.incidents))
        })
    }

    fn add_admin_token(
        &self,
        token_sha256: &str,
        label: &str,
    ) -> BoxFuture<'_, LedgerResult<String>> {
        let id = format!("local:{label}");
        self.local_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token_sha256.to_ascii_lowercase(), id.clone());
        Box::pin(async move { Ok(id) })
    }

    fn admin_token(&self, presented: &str) -> BoxFuture<'_, LedgerResult<Option<String>>> {
        let local = self
            .local_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash_secret(presented))
            .cloned();
        let presented = presented.to_owned();
        Box::pin(async move {
            if local.is_some() {
                return Ok(local);
            }
            let token = self
                .store
                .verify_admin_token(&presented)
                .await
                .map_err(err)?;
            Ok(token.map(|it| format!("token:{}", it.id)))
        })
    }

    fn audit(&self, entry: AuditEntry) -> BoxFuture<'_, LedgerResult<()>> {
        Box::pin(async move {
            self.store
                .audit(
                    &entry.actor,
                    &entry.action,
                    &entry.subject,
                    None,
                    entry.details,
                )
                .await
                .map_err(err)?;
            Ok(())
        })
    }

    fn audit_log(&self) -> BoxFuture<'_, LedgerResult<Vec<AuditEntry>>> {
        Box::pin(async move {
            let head = self.store.audit_head().await.map_err(err)?;
            let after = head.seq.saturating_sub(i64::from(AUDIT_LOG_LIMIT)).max(0);
            let entries = self
                .store
                .audit_entries(after, AUDIT_LOG_LIMIT)
                .await
                .map_err(err)?;
            Ok(entries
                .into_iter()
                .map(|it| AuditEntry {
                    at: it.at,
                    actor: it.actor,
                    action: it.action,
                    subject: it.subject,
                    details: it.detail,
                })
                .collect())
        })
    }

    fn account_state(
        &self,
        subject: &Subject,
    ) -> BoxFuture<'_, LedgerResult<Option<serde_json::Value>>> {
        let subject = subject.clone();
        Box::pin(async move {
            match &subject {
                Subject::User { tenant, user } => {
                    self.store.account_risk(tenant, user).await.map_err(err)
                }
                Subject::Tenant(_) => Ok(None),
            }
        })
    }

    fn set_account_state(
        &self,
        subject: &Subject,
        state: serde_json::Value,
    ) -> BoxFuture<'_, LedgerResult<()>> {
        let subject = subject.clone();
        Box::pin(async move {
            match &subject {
                Subject::User { tenant, user } => self
                    .store
                    .set_account_risk(tenant, user, &state)
                    .await
                    .map_err(err),
                Subject::Tenant(_) => Ok(()),
            }
        })
    }

    fn ping(&self) -> BoxFuture<'_, LedgerResult<()>> {
        Box::pin(async move { self.store.ping().await.map_err(err) })
    }
}

impl StoreLedger {
    /// Active actions against exactly this subject (for a user, not the
    /// tenant-wide ones), oldest first.
    async fn exact_actions(&self, subject: &Subject) -> LedgerResult<Vec<EnforcementAction>> {
        let (tenant, user) = subject.parts();
        let actions = self.store.active_actions(tenant, user).await.map_err(err)?;
        Ok(actions
            .into_iter()
            .filter(|it| it.end_user.as_deref() == user)
            .collect())
    }
}

fn sanction_of(action: &EnforcementAction) -> Sanction {
    let subject = match &action.end_user {
        Some(user) => Subject::User {
            tenant: action.tenant.clone(),
            user: user.clone(),
        },
        None => Subject::Tenant(action.tenant.clone()),
    };
    Sanction {
        subject,
        action: match action.kind {
            ActionKind::Suspend => LadderAction::Suspend,
            ActionKind::Ban => LadderAction::Ban,
        },
        until: action.until,
        reason: action.reason.clone(),
    }
}

/// Whether `a` should be enforced over `b` on the same subject: a ban over
/// a suspension, a longer suspension over a shorter one.
fn outranks(a: &Sanction, b: &Sanction) -> bool {
    match (a.until, b.until) {
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x > y,
        (None, None) => a.action == LadderAction::Ban && b.action != LadderAction::Ban,
    }
}

/// The store's status for the gateway's name; `Some(None)` for a name no
/// appeal can have.
fn appeal_status(name: &str) -> Option<AppealStatus> {
    match name {
        "pending" => Some(AppealStatus::Open),
        "granted" => Some(AppealStatus::Granted),
        "denied" => Some(AppealStatus::Denied),
        _ => None,
    }
}

fn appeal_of(appeal: childsafe_store::Appeal) -> Appeal {
    Appeal {
        id: appeal.id.to_string(),
        subject: Subject::User {
            tenant: appeal.tenant,
            user: appeal.end_user,
        },
        statement: appeal.statement.unwrap_or_default(),
        status: match appeal.status {
            AppealStatus::Open => "pending",
            AppealStatus::Granted => "granted",
            AppealStatus::Denied => "denied",
        }
        .to_owned(),
        at: appeal.filed_at,
        note: appeal.decision_reason,
    }
}
