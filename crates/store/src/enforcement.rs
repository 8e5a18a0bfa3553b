//! Enforcement facts: strikes (a ledger per end user and per tenant),
//! enforcement actions (suspensions and bans, with lifting) and appeals.
//!
//! The store keeps facts with their times and nothing else: the gateway
//! computes its ladder (warn, suspend, ban) and decay from
//! [`Store::strikes_for_user`] / [`Store::strikes_for_tenant`] over the
//! window it is configured with, and records the resulting action with
//! [`Store::impose_action`]. Every action, lift and appeal decision is in the
//! audit log.

use childsafe_core::{Category, Strike};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    Store, audit,
    cases::stable_enum,
    clock::{from_micros, to_micros},
    db::{Row, Tx, args},
    error::{Error, Result},
    incidents::IncidentId,
    required,
};

stable_enum!(
    /// An enforcement action against an end user (or a whole tenant).
    ActionKind {
        /// Refused until a time.
        Suspend => "suspend",
        /// Refused for good (until lifted).
        Ban => "ban",
    }
);

stable_enum!(
    /// Where an appeal is.
    AppealStatus {
        /// Waiting for a decision.
        Open => "open",
        /// Granted: the action it appeals is lifted.
        Granted => "granted",
        /// Denied.
        Denied => "denied",
    }
);

fn strike_name(kind: Strike) -> &'static str {
    match kind {
        Strike::Warn => "warn",
        Strike::Strike => "strike",
        Strike::Ban => "ban",
    }
}

fn parse_strike(text: &str) -> Result<Strike> {
    match text {
        "warn" => Ok(Strike::Warn),
        "strike" => Ok(Strike::Strike),
        "ban" => Ok(Strike::Ban),
        other => Err(Error::Corrupt {
            what: "column kind".to_owned(),
            reason: format!("unknown strike kind {other:?}"),
        }),
    }
}

/// A strike to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStrike {
    /// The tenant.
    pub tenant: String,
    /// The end user; `None` for a strike against the tenant itself.
    pub end_user: Option<String>,
    /// Warn, strike or ban, as policy said.
    pub kind: Strike,
    /// The category behind it.
    pub category: Option<Category>,
    /// The incident behind it.
    pub incident_id: Option<IncidentId>,
    /// Why, in words (optional).
    pub reason: Option<String>,
}

/// A recorded strike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StrikeRecord {
    /// Row id.
    pub id: i64,
    /// When (decay is computed from this).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The tenant.
    pub tenant: String,
    /// The end user.
    pub end_user: Option<String>,
    /// Warn, strike or ban.
    pub kind: Strike,
    /// The category behind it.
    pub category: Option<Category>,
    /// The incident behind it.
    pub incident_id: Option<IncidentId>,
    /// Why.
    pub reason: Option<String>,
}

/// An action to impose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEnforcementAction {
    /// The tenant.
    pub tenant: String,
    /// The end user; `None` acts against the whole tenant.
    pub end_user: Option<String>,
    /// Suspend or ban.
    pub kind: ActionKind,
    /// Until when; `None` is permanent.
    pub until: Option<OffsetDateTime>,
    /// Why (shown to admins, not to the user).
    pub reason: String,
}

/// An enforcement action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnforcementAction {
    /// Row id (the appeal refers to it).
    pub id: i64,
    /// The tenant.
    pub tenant: String,
    /// The end user (`None`: the whole tenant).
    pub end_user: Option<String>,
    /// Suspend or ban.
    pub kind: ActionKind,
    /// When imposed.
    #[serde(with = "time::serde::rfc3339")]
    pub imposed_at: OffsetDateTime,
    /// Until when (`None`: permanent).
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Who imposed it.
    pub imposed_by: String,
    /// Why.
    pub reason: String,
    /// When lifted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub lifted_at: Option<OffsetDateTime>,
    /// Who lifted it.
    pub lifted_by: Option<String>,
    /// Why it was lifted.
    pub lift_reason: Option<String>,
}

/// An appeal against an action. `Debug` leaves out the user's statement.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Appeal {
    /// Row id.
    pub id: i64,
    /// The tenant.
    pub tenant: String,
    /// The end user appealing.
    pub end_user: String,
    /// The action appealed, if named.
    pub action_id: Option<i64>,
    /// When filed.
    #[serde(with = "time::serde::rfc3339")]
    pub filed_at: OffsetDateTime,
    /// The user's statement.
    pub statement: Option<String>,
    /// Open, granted or denied.
    pub status: AppealStatus,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Why.
    pub decision_reason: Option<String>,
}

impl std::fmt::Debug for Appeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appeal")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("end_user", &self.end_user)
            .field("action_id", &self.action_id)
            .field("filed_at", &self.filed_at)
            .field("statement", &self.statement.as_ref().map(|_| "<redacted>"))
            .field("status", &self.status)
            .field("decided_by", &self.decided_by)
            .field("decided_at", &self.decided_at)
            .field("decision_reason", &self.decision_reason)
            .finish()
    }
}

fn strike_from_row(row: &Row) -> Result<StrikeRecord> {
    Ok(StrikeRecord {
        id: row.i64("id")?,
        at: from_micros(row.i64("at")?),
        tenant: row.text("tenant")?,
        end_user: row.opt_text("end_user")?,
        kind: parse_strike(&row.text("kind")?)?,
        category: row.opt_parse("category")?,
        incident_id: row.opt_i64("incident_id")?.map(IncidentId),
        reason: row.opt_text("reason")?,
    })
}

fn action_from_row(row: &Row) -> Result<EnforcementAction> {
    Ok(EnforcementAction {
        id: row.i64("id")?,
        tenant: row.text("tenant")?,
        end_user: row.opt_text("end_user")?,
        kind: row.parse("action")?,
        imposed_at: from_micros(row.i64("imposed_at")?),
        until: row.opt_i64("until")?.map(from_micros),
        imposed_by: row.text("imposed_by")?,
        reason: row.text("reason")?,
        lifted_at: row.opt_i64("lifted_at")?.map(from_micros),
        lifted_by: row.opt_text("lifted_by")?,
        lift_reason: row.opt_text("lift_reason")?,
    })
}

fn appeal_from_row(row: &Row) -> Result<Appeal> {
    Ok(Appeal {
        id: row.i64("id")?,
        tenant: row.text("tenant")?,
        end_user: row.text("end_user")?,
        action_id: row.opt_i64("action_id")?,
        filed_at: from_micros(row.i64("filed_at")?),
        statement: row.opt_text("statement")?,
        status: row.parse("status")?,
        decided_by: row.opt_text("decided_by")?,
        decided_at: row.opt_i64("decided_at")?.map(from_micros),
        decision_reason: row.opt_text("decision_reason")?,
    })
}

async fn load_action(tx: &mut Tx, id: i64) -> Result<EnforcementAction> {
    let row = tx
        .fetch_optional(
            "SELECT id, tenant, end_user, action, imposed_at, until, imposed_by, reason, lifted_at, lifted_by, lift_reason
             FROM enforcement_actions WHERE id = $1",
            args![id],
        )
        .await?
        .ok_or_else(|| Error::not_found("enforcement action", id))?;
    action_from_row(&row)
}

async fn load_appeal(tx: &mut Tx, id: i64) -> Result<Appeal> {
    let row = tx
        .fetch_optional(
            "SELECT id, tenant, end_user, action_id, filed_at, statement, status, decided_by, decided_at, decision_reason
             FROM appeals WHERE id = $1",
            args![id],
        )
        .await?
        .ok_or_else(|| Error::not_found("appeal", id))?;
    appeal_from_row(&row)
}

/// Lifts an action inside a transaction holding the audit lock.
async fn lift(
    tx: &mut Tx,
    now: i64,
    id: i64,
    actor: &str,
    reason: &str,
) -> Result<EnforcementAction> {
    let action = load_action(tx, id).await?;
    if action.lifted_at.is_some() {
        return Err(Error::InvalidTransition {
            what: "enforcement action",
            id: id.to_string(),
            action: "lift".to_owned(),
            state: "lifted".to_owned(),
        });
    }
    tx.execute(
        "UPDATE enforcement_actions SET lifted_at = $1, lifted_by = $2, lift_reason = $3 WHERE id = $4",
        args![now, actor, reason, id],
    )
    .await?;
    audit::append(
        tx,
        now,
        audit::NewAudit {
            actor,
            action: "enforcement.lift",
            subject: subject(&action.tenant, action.end_user.as_deref()),
            reason: Some(reason),
            detail: json!({ "action": id, "kind": action.kind.as_str() }),
        },
    )
    .await?;
    load_action(tx, id).await
}

fn subject(tenant: &str, end_user: Option<&str>) -> String {
    match end_user {
        Some(user) => format!("user:{tenant}/{user}"),
        None => format!("tenant:{tenant}"),
    }
}

impl Store {
    /// Records a strike (audited).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty tenant; database errors.
    pub async fn record_strike(&self, strike: &NewStrike, actor: &str) -> Result<StrikeRecord> {
        let tenant = required("tenant", &strike.tenant)?;
        let actor = required("actor", actor)?;
        retry!(self, "record_strike", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let row = tx
                .fetch_one(
                    "INSERT INTO strikes (at, tenant, end_user, kind, category, incident_id, reason)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     RETURNING id, at, tenant, end_user, kind, category, incident_id, reason",
                    args![
                        now,
                        tenant.as_str(),
                        strike.end_user.clone(),
                        strike_name(strike.kind),
                        strike.category.map(|c| c.as_str()),
                        strike.incident_id.map(|i| i.0),
                        strike.reason.clone()
                    ],
                )
                .await?;
            let record = strike_from_row(&row)?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "enforcement.strike",
                    subject: subject(&tenant, strike.end_user.as_deref()),
                    reason: strike.reason.as_deref(),
                    detail: json!({
                        "strike": record.id,
                        "kind": strike_name(strike.kind),
                        "category": strike.category,
                        "incident": strike.incident_id,
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(record)
        })
    }

    /// An end user's strikes at or after `since`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn strikes_for_user(
        &self,
        tenant: &str,
        end_user: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<StrikeRecord>> {
        retry!(self, "strikes_for_user", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, at, tenant, end_user, kind, category, incident_id, reason FROM strikes
                     WHERE tenant = $1 AND end_user = $2 AND at >= $3 ORDER BY at, id",
                    args![tenant, end_user, to_micros(since)],
                )
                .await?;
            rows.iter().map(strike_from_row).collect()
        })
    }

    /// Every strike in a tenant (its users' and its own) at or after
    /// `since`, oldest first: the tenant's ledger.
    ///
    /// # Errors
    /// Database errors.
    pub async fn strikes_for_tenant(
        &self,
        tenant: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<StrikeRecord>> {
        retry!(self, "strikes_for_tenant", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, at, tenant, end_user, kind, category, incident_id, reason FROM strikes
                     WHERE tenant = $1 AND at >= $2 ORDER BY at, id",
                    args![tenant, to_micros(since)],
                )
                .await?;
            rows.iter().map(strike_from_row).collect()
        })
    }

    /// Imposes a suspension or ban (audited).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty tenant or reason, or an end time not
    /// after now; database errors.
    pub async fn impose_action(
        &self,
        action: &NewEnforcementAction,
        actor: &str,
    ) -> Result<EnforcementAction> {
        let tenant = required("tenant", &action.tenant)?;
        let reason = required("reason", &action.reason)?;
        let actor = required("actor", actor)?;
        retry!(self, "impose_action", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let until = action.until.map(to_micros);
            if until.is_some_and(|u| u <= now) {
                return Err(Error::invalid("until", "must be in the future"));
            }
            let row = tx
                .fetch_one(
                    "INSERT INTO enforcement_actions (tenant, end_user, action, imposed_at, until, imposed_by, reason)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    args![
                        tenant.as_str(),
                        action.end_user.clone(),
                        action.kind.as_str(),
                        now,
                        until,
                        actor.as_str(),
                        reason.as_str()
                    ],
                )
                .await?;
            let id = row.i64("id")?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: &format!("enforcement.{}", action.kind),
                    subject: subject(&tenant, action.end_user.as_deref()),
                    reason: Some(&reason),
                    detail: json!({ "action": id, "until": until }),
                },
            )
            .await?;
            let imposed = load_action(&mut tx, id).await?;
            tx.commit().await?;
            Ok(imposed)
        })
    }

    /// Actions in force now against this end user, including those against
    /// the whole tenant; with `end_user` `None`, only tenant-wide ones.
    /// The gateway refuses (403) while this is non-empty.
    ///
    /// # Errors
    /// Database errors.
    pub async fn active_actions(
        &self,
        tenant: &str,
        end_user: Option<&str>,
    ) -> Result<Vec<EnforcementAction>> {
        retry!(self, "active_actions", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, tenant, end_user, action, imposed_at, until, imposed_by, reason, lifted_at, lifted_by, lift_reason
                     FROM enforcement_actions
                     WHERE tenant = $1 AND (end_user IS NULL OR end_user = $2)
                       AND lifted_at IS NULL AND (until IS NULL OR until > $3)
                     ORDER BY id",
                    args![tenant, end_user, self.now_micros()],
                )
                .await?;
            rows.iter().map(action_from_row).collect()
        })
    }

    /// Lifts an action (audited).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] if already lifted.
    pub async fn lift_action(
        &self,
        id: i64,
        actor: &str,
        reason: &str,
    ) -> Result<EnforcementAction> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "lift_action", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let lifted = lift(&mut tx, self.now_micros(), id, &actor, &reason).await?;
            tx.commit().await?;
            Ok(lifted)
        })
    }

    /// Files an appeal (audited).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown action; [`Error::Invalid`] for an
    /// action against someone else.
    pub async fn file_appeal(
        &self,
        tenant: &str,
        end_user: &str,
        action_id: Option<i64>,
        statement: Option<&str>,
    ) -> Result<Appeal> {
        let tenant = required("tenant", tenant)?;
        let end_user = required("end_user", end_user)?;
        retry!(self, "file_appeal", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            if let Some(action_id) = action_id {
                let action = load_action(&mut tx, action_id).await?;
                let theirs = action.tenant == tenant
                    && action.end_user.as_deref().is_none_or(|u| u == end_user);
                if !theirs {
                    return Err(Error::invalid(
                        "action",
                        format!("action {action_id} is not against this user"),
                    ));
                }
            }
            let row = tx
                .fetch_one(
                    "INSERT INTO appeals (tenant, end_user, action_id, filed_at, statement, status)
                     VALUES ($1, $2, $3, $4, $5, 'open') RETURNING id",
                    args![
                        tenant.as_str(),
                        end_user.as_str(),
                        action_id,
                        now,
                        statement
                    ],
                )
                .await?;
            let id = row.i64("id")?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &format!("user:{tenant}/{end_user}"),
                    action: "appeal.file",
                    subject: format!("appeal:{id}"),
                    reason: None,
                    detail: json!({ "action": action_id }),
                },
            )
            .await?;
            let appeal = load_appeal(&mut tx, id).await?;
            tx.commit().await?;
            Ok(appeal)
        })
    }

    /// Appeals, oldest first, optionally only those in one state.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_appeals(
        &self,
        status: Option<AppealStatus>,
        limit: u32,
    ) -> Result<Vec<Appeal>> {
        retry!(self, "list_appeals", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, tenant, end_user, action_id, filed_at, statement, status, decided_by, decided_at, decision_reason
                     FROM appeals WHERE ($1 IS NULL OR status = $1) ORDER BY id LIMIT $2",
                    args![status.map(|s| s.as_str()), i64::from(limit)],
                )
                .await?;
            rows.iter().map(appeal_from_row).collect()
        })
    }

    /// Decides an open appeal; granting lifts the action it names, in the
    /// same transaction (both audited).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] if already decided.
    pub async fn decide_appeal(
        &self,
        id: i64,
        grant: bool,
        actor: &str,
        reason: &str,
    ) -> Result<Appeal> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "decide_appeal", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let appeal = load_appeal(&mut tx, id).await?;
            if appeal.status != AppealStatus::Open {
                return Err(Error::InvalidTransition {
                    what: "appeal",
                    id: id.to_string(),
                    action: "decide".to_owned(),
                    state: appeal.status.to_string(),
                });
            }
            let status = if grant {
                AppealStatus::Granted
            } else {
                AppealStatus::Denied
            };
            tx.execute(
                "UPDATE appeals SET status = $1, decided_by = $2, decided_at = $3, decision_reason = $4 WHERE id = $5",
                args![status.as_str(), actor.as_str(), now, reason.as_str(), id],
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: &format!("appeal.{status}"),
                    subject: format!("appeal:{id}"),
                    reason: Some(&reason),
                    detail: json!({ "action": appeal.action_id }),
                },
            )
            .await?;
            if grant && let Some(action_id) = appeal.action_id {
                let action = load_action(&mut tx, action_id).await?;
                if action.lifted_at.is_none() {
                    lift(
                        &mut tx,
                        now,
                        action_id,
                        &actor,
                        &format!("appeal {id} granted: {reason}"),
                    )
                    .await?;
                }
            }
            let appeal = load_appeal(&mut tx, id).await?;
            tx.commit().await?;
            Ok(appeal)
        })
    }
}

impl Store {
    /// Every action in force now, in every tenant, oldest first: what each
    /// gateway replica loads into its sanctions cache.
    ///
    /// # Errors
    /// Database errors.
    pub async fn all_active_actions(&self) -> Result<Vec<EnforcementAction>> {
        retry!(self, "all_active_actions", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, tenant, end_user, action, imposed_at, until, imposed_by, reason, lifted_at, lifted_by, lift_reason
                     FROM enforcement_actions
                     WHERE lifted_at IS NULL AND (until IS NULL OR until > $1)
                     ORDER BY id",
                    args![self.now_micros()],
                )
                .await?;
            rows.iter().map(action_from_row).collect()
        })
    }

    /// When the last action against exactly this subject (the end user, or
    /// with `end_user` `None` the tenant itself) was lifted, if ever: a
    /// lifted sanction wipes the slate, so the gateway counts strikes for
    /// its ladder only from then on.
    ///
    /// # Errors
    /// Database errors.
    pub async fn last_lift(
        &self,
        tenant: &str,
        end_user: Option<&str>,
    ) -> Result<Option<OffsetDateTime>> {
        retry!(self, "last_lift", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_one(
                    "SELECT MAX(lifted_at) AS lifted FROM enforcement_actions
                     WHERE tenant = $1 AND (($2 IS NULL AND end_user IS NULL) OR end_user = $2)",
                    args![tenant, end_user],
                )
                .await?;
            Ok(row.opt_i64("lifted")?.map(from_micros))
        })
    }
}
