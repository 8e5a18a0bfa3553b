//! Rollout state: for each named rollout, the current stage and whether it
//! is active or halted, shared by every gateway replica, with every
//! transition recorded (and audited).
//!
//! The stages themselves (percentages, upstreams, thresholds) are gateway
//! configuration; the store keeps where the rollout stands. Updates are
//! optimistic: the caller passes the version it read, and a replica that
//! lost a race gets [`Error::Conflict`] and re-reads, so two replicas that
//! both see a threshold crossed cannot both move the stage.

use std::collections::BTreeMap;

use childsafe_core::Category;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    Store, audit,
    cases::stable_enum,
    clock::from_micros,
    db::{Row, Tx, args},
    error::{Error, Result},
    required,
};

stable_enum!(
    /// Whether a rollout is proceeding.
    RolloutStatus {
        /// Serving its current stage.
        Active => "active",
        /// Stopped (automatically on a threshold, or by an admin).
        Halted => "halted",
    }
);

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RolloutState {
    /// The rollout's name.
    pub name: String,
    /// The current stage index (0-based, into the gateway's configured stages).
    pub stage: u32,
    /// Active or halted.
    pub status: RolloutStatus,
    /// Incremented on every change; pass it back to update.
    pub version: i64,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Gateway-defined detail (e.g. the rates that caused a halt).
    pub detail: serde_json::Value,
}

/// One recorded transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RolloutTransition {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who ("gateway" for an automatic halt, or an admin).
    pub actor: String,
    /// Stage before (`None` when the rollout was created).
    pub from_stage: Option<u32>,
    /// Stage after.
    pub to_stage: u32,
    /// Status before.
    pub from_status: Option<RolloutStatus>,
    /// Status after.
    pub to_status: RolloutStatus,
    /// Why.
    pub reason: String,
}

fn state_from_row(row: &Row) -> Result<RolloutState> {
    Ok(RolloutState {
        name: row.text("name")?,
        stage: u32::try_from(row.i64("stage")?).unwrap_or(0),
        status: row.parse("status")?,
        version: row.i64("version")?,
        updated_at: from_micros(row.i64("updated_at")?),
        detail: row.json("detail")?,
    })
}

async fn load(tx: &mut Tx, name: &str) -> Result<Option<RolloutState>> {
    tx.fetch_optional(
        "SELECT name, stage, status, version, updated_at, detail FROM rollouts WHERE name = $1",
        args![name],
    )
    .await?
    .as_ref()
    .map(state_from_row)
    .transpose()
}

impl Store {
    /// Where a rollout stands, if it exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn rollout_state(&self, name: &str) -> Result<Option<RolloutState>> {
        retry!(self, "rollout_state", async {
            let mut tx = self.pool().begin_read().await?;
            load(&mut tx, name).await
        })
    }

    /// Moves a rollout to `stage` / `status`. `expected_version` is the
    /// version the caller read (`None` to create the rollout). Records the
    /// transition and audits it.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the rollout changed since it was read (or
    /// already exists, when creating); [`Error::NotFound`] when updating one
    /// that does not exist.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_rollout_state(
        &self,
        name: &str,
        expected_version: Option<i64>,
        stage: u32,
        status: RolloutStatus,
        detail: &serde_json::Value,
        actor: &str,
        reason: &str,
    ) -> Result<RolloutState> {
        let name = required("rollout", name)?;
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        let detail_text =
            serde_json::to_string(detail).map_err(|e| Error::invalid("detail", e.to_string()))?;
        retry!(self, "set_rollout_state", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let current = load(&mut tx, &name).await?;
            match (&current, expected_version) {
                (None, None) => {
                    tx.execute(
                        "INSERT INTO rollouts (name, stage, status, version, updated_at, detail) VALUES ($1, $2, $3, 1, $4, $5)",
                        args![name.as_str(), i64::from(stage), status.as_str(), now, detail_text.as_str()],
                    )
                    .await?;
                }
                (Some(current), Some(expected)) if current.version == expected => {
                    tx.execute(
                        "UPDATE rollouts SET stage = $1, status = $2, version = version + 1, updated_at = $3, detail = $4
                         WHERE name = $5 AND version = $6",
                        args![i64::from(stage), status.as_str(), now, detail_text.as_str(), name.as_str(), expected],
                    )
                    .await?;
                }
                (Some(current), expected) => {
                    return Err(Error::Conflict {
                        what: format!("rollout {name}"),
                        expected: expected.unwrap_or(0),
                        found: current.version,
                    });
                }
                (None, Some(_)) => return Err(Error::not_found("rollout", &name)),
            }
            tx.execute(
                "INSERT INTO rollout_transitions (name, at, actor, from_stage, to_stage, from_status, to_status, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                args![
                    name.as_str(),
                    now,
                    actor.as_str(),
                    current.as_ref().map(|c| i64::from(c.stage)),
                    i64::from(stage),
                    current.as_ref().map(|c| c.status.as_str()),
                    status.as_str(),
                    reason.as_str()
                ],
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "rollout.transition",
                    subject: format!("rollout:{name}"),
                    reason: Some(&reason),
                    detail: json!({
                        "from_stage": current.as_ref().map(|c| c.stage),
                        "to_stage": stage,
                        "from_status": current.as_ref().map(|c| c.status.as_str()),
                        "to_status": status.as_str(),
                    }),
                },
            )
            .await?;
            let state = load(&mut tx, &name)
                .await?
                .ok_or_else(|| Error::not_found("rollout", &name))?;
            tx.commit().await?;
            Ok(state)
        })
    }

    /// A rollout's transitions, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn rollout_transitions(&self, name: &str) -> Result<Vec<RolloutTransition>> {
        retry!(self, "rollout_transitions", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT at, actor, from_stage, to_stage, from_status, to_status, reason
                     FROM rollout_transitions WHERE name = $1 ORDER BY id",
                    args![name],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(RolloutTransition {
                        at: from_micros(row.i64("at")?),
                        actor: row.text("actor")?,
                        from_stage: row
                            .opt_i64("from_stage")?
                            .map(|s| u32::try_from(s).unwrap_or(0)),
                        to_stage: u32::try_from(row.i64("to_stage")?).unwrap_or(0),
                        from_status: row.opt_parse("from_status")?,
                        to_status: row.parse("to_status")?,
                        reason: row.text("reason")?,
                    })
                })
                .collect()
        })
    }
}

/// Requests and incidents per category that one rollout stage served,
/// summed over a span of minutes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StageCounts {
    /// Requests served.
    pub requests: u64,
    /// Incidents, by category.
    pub incidents: BTreeMap<Category, u64>,
}

impl Store {
    /// Adds a replica's counts for one rollout stage to a minute bucket
    /// (`minute` is Unix time / 60), in one transaction. Replicas add their
    /// own deltas, so the shared totals are the sum over every replica.
    ///
    /// # Errors
    /// Database errors.
    pub async fn add_rollout_counts(
        &self,
        name: &str,
        stage: &str,
        minute: i64,
        counts: &StageCounts,
    ) -> Result<()> {
        let requests = i64::try_from(counts.requests)
            .map_err(|_| Error::invalid("requests", "expected at most 2^63 - 1"))?;
        retry!(self, "add_rollout_counts", async {
            let mut tx = self.pool().begin().await?;
            tx.execute(
                "INSERT INTO rollout_requests (name, stage, minute, requests) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name, stage, minute) DO UPDATE SET requests = rollout_requests.requests + excluded.requests",
                args![name, stage, minute, requests],
            )
            .await?;
            for (category, n) in &counts.incidents {
                let n = i64::try_from(*n).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO rollout_incidents (name, stage, minute, category, incidents) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (name, stage, minute, category) DO UPDATE SET incidents = rollout_incidents.incidents + excluded.incidents",
                    args![name, stage, minute, category.as_str(), n],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A stage's counts summed over minutes at or after `since_minute`, from
    /// every replica.
    ///
    /// # Errors
    /// Database errors.
    pub async fn rollout_counts(
        &self,
        name: &str,
        stage: &str,
        since_minute: i64,
    ) -> Result<StageCounts> {
        retry!(self, "rollout_counts", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_one(
                    "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS n FROM rollout_requests
                     WHERE name = $1 AND stage = $2 AND minute >= $3",
                    args![name, stage, since_minute],
                )
                .await?;
            let requests = row.i64("n")?.max(0) as u64;
            let rows = tx
                .fetch_all(
                    "SELECT category, CAST(SUM(incidents) AS BIGINT) AS n FROM rollout_incidents
                     WHERE name = $1 AND stage = $2 AND minute >= $3 GROUP BY category",
                    args![name, stage, since_minute],
                )
                .await?;
            let mut incidents = BTreeMap::new();
            for row in &rows {
                let category: Category = row.parse("category")?;
                incidents.insert(category, row.i64("n")?.max(0) as u64);
            }
            Ok(StageCounts {
                requests,
                incidents,
            })
        })
    }
}
