//! The report outbox: one row per case report to NCMEC, a persistent state
//! machine that a driver (`childsafe-cybertip`) walks through the API one
//! step at a time, so that a crash or kill at any point resumes where it
//! stopped, with no lost file and no duplicate report.
//!
//! The store owns the row and its guarantees; the driver owns the meaning of
//! `step` and `state` (opaque text and JSON here):
//! - **One report per case.** [`Store::enqueue_report`] is idempotent: the
//!   `case_id` column is unique, and a second call returns the existing row.
//!   Only a confirmed case can be enqueued.
//! - **One driver at a time.** A driver must hold a [`Lease`] to change a
//!   report. [`Store::claim_due_report`] picks the next due report and
//!   leases it (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never
//!   block on or double-claim a row; SQLite: inside one write transaction).
//!   Every change checks the lease token and expiry in its `UPDATE`, so a
//!   driver whose lease expired (it stalled, another took over) gets
//!   [`Error::LeaseLost`] and must stop: it can never overwrite newer progress.
//! - **Durable progress.** [`Store::save_report_step`] commits the new step,
//!   state and the receipt of the call that got there (NCMEC response body,
//!   HTTP status, responseCode, Request-ID) in one transaction, audited.
//!   Call it after every API call that changed something at NCMEC and
//!   before the next one.
//! - **Finish is the preservation clock.** [`Store::finish_report`] marks the
//!   report finished, the case `reported`, and starts the one-year retention
//!   of the case's evidence from that instant, in one transaction.
//!
//! A driver's loop, in outline:
//!
//! ```no_run
//! # async fn drive(store: &childsafe_store::Store) -> childsafe_store::Result<()> {
//! use std::time::Duration;
//! let Some(mut lease) = store.claim_due_report("worker-1", Duration::from_secs(300)).await? else {
//!     return Ok(()); // nothing due
//! };
//! let report = lease.report().clone();
//! match report.step.as_str() {
//!     "new" => {
//!         // POST /submit, then, before anything else:
//!         let receipt = childsafe_store::Receipt::new("submit", "<reportResponse>...</reportResponse>");
//!         store.save_report_step(&mut lease, "submitted", &serde_json::json!({"report_id": "123"}), Some(&receipt)).await?;
//!     }
//!     // ... upload, fileinfo, one step per call ...
//!     _ => {}
//! }
//! # Ok(()) }
//! ```

use std::time::Duration as StdDuration;

use serde::Serialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::{
    Store, audit,
    cases::{CaseId, CaseStatus, load_case, mark_reported, stable_enum},
    clock::{from_micros, micros_of},
    db::{Backend, Row, Tx, args},
    error::{Error, Result},
    random_hex, required,
};

stable_enum!(
    /// Where a report is, as far as the store is concerned.
    ReportStatus {
        /// Being driven (or waiting for its next attempt).
        Pending => "pending",
        /// Finished at NCMEC: final.
        Finished => "finished",
        /// Stopped on a permanent error: needs a person
        /// ([`Store::requeue_report`] after fixing the cause).
        Failed => "failed",
    }
);

/// A report in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxReport {
    /// Outbox row id.
    pub id: i64,
    /// The case it reports.
    pub case_id: CaseId,
    /// Which NCMEC environment: "test" or "production".
    pub environment: String,
    /// Pending, finished or failed.
    pub status: ReportStatus,
    /// The driver's step name (starts as "new").
    pub step: String,
    /// The driver's state (starts as `{}`).
    pub state: serde_json::Value,
    /// Failed attempts at the current step.
    pub attempts: u32,
    /// When the driver may try again.
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// Who holds the lease, if anyone.
    pub lease_owner: Option<String>,
    /// Until when.
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    /// The last error, for people.
    pub last_error: Option<String>,
    /// NCMEC's report id, once finished.
    pub ncmec_report_id: Option<String>,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When NCMEC's finish succeeded: the start of the preservation clock.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// The record of one API call: what NCMEC answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The call, e.g. "submit", "upload", "fileinfo", "finish".
    pub step: String,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// The XML `responseCode`.
    pub response_code: Option<i64>,
    /// The `Request-ID` response header (quote it to NCMEC support).
    pub request_id: Option<String>,
    /// The response body (XML; NCMEC's receipt for the finish call serves as
    /// the notification under 18 U.S.C. 2258A). Never content.
    pub body: String,
}

impl Receipt {
    /// A receipt with just the step and body.
    pub fn new(step: &str, body: &str) -> Receipt {
        Receipt {
            step: step.to_owned(),
            http_status: None,
            response_code: None,
            request_id: None,
            body: body.to_owned(),
        }
    }
}

/// A stored receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredReceipt {
    /// Row id.
    pub id: i64,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The receipt.
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// The right to drive one report for a while. Obtained from a claim; every
/// change to the report goes through it, and fails with
/// [`Error::LeaseLost`] once it has expired or been taken over.
#[derive(Debug)]
pub struct Lease {
    report: OutboxReport,
    token: String,
    owner: String,
    length: Duration,
}

impl Lease {
    /// The report as of the last change made through this lease.
    pub fn report(&self) -> &OutboxReport {
        &self.report
    }

    /// Who holds it.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

macro_rules! report_columns {
    () => {
        "id, case_id, environment, status, step, state, attempts, next_attempt_at, lease_owner, lease_until, \
         last_error, ncmec_report_id, created_at, updated_at, finished_at"
    };
}

fn report_from_row(row: &Row) -> Result<OutboxReport> {
    Ok(OutboxReport {
        id: row.i64("id")?,
        case_id: CaseId(row.i64("case_id")?),
        environment: row.text("environment")?,
        status: row.parse("status")?,
        step: row.text("step")?,
        state: row.json("state")?,
        attempts: u32::try_from(row.i64("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: from_micros(row.i64("next_attempt_at")?),
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_i64("lease_until")?.map(from_micros),
        last_error: row.opt_text("last_error")?,
        ncmec_report_id: row.opt_text("ncmec_report_id")?,
        created_at: from_micros(row.i64("created_at")?),
        updated_at: from_micros(row.i64("updated_at")?),
        finished_at: row.opt_i64("finished_at")?.map(from_micros),
    })
}

pub(crate) async fn load_for_case(tx: &mut Tx, case_id: CaseId) -> Result<Option<OutboxReport>> {
    tx.fetch_optional(
        concat!(
            "SELECT ",
            report_columns!(),
            " FROM report_outbox WHERE case_id = $1"
        ),
        args![case_id.0],
    )
    .await?
    .as_ref()
    .map(report_from_row)
    .transpose()
}

async fn load(tx: &mut Tx, id: i64) -> Result<OutboxReport> {
    let row = tx
        .fetch_optional(
            concat!(
                "SELECT ",
                report_columns!(),
                " FROM report_outbox WHERE id = $1"
            ),
            args![id],
        )
        .await?
        .ok_or_else(|| Error::not_found("report", id))?;
    report_from_row(&row)
}

async fn insert_receipt(tx: &mut Tx, report_id: i64, now: i64, receipt: &Receipt) -> Result<()> {
    tx.execute(
        "INSERT INTO report_receipts (report_id, at, step, http_status, response_code, request_id, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            report_id,
            now,
            receipt.step.as_str(),
            receipt.http_status.map(i64::from),
            receipt.response_code,
            receipt.request_id.clone(),
            receipt.body.as_str()
        ],
    )
    .await?;
    Ok(())
}

fn std_to_time(d: StdDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::MAX)
}

impl Store {
    /// Queues the report of a confirmed case, once: if the case already has
    /// a report (in any state), that one is returned and nothing changes.
    /// Returns the report and whether it was created by this call.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] unless the case is confirmed (or already
    /// has its report); [`Error::Invalid`] for another environment than the
    /// existing report's.
    pub async fn enqueue_report(
        &self,
        case_id: CaseId,
        environment: &str,
        actor: &str,
    ) -> Result<(OutboxReport, bool)> {
        let actor = required("actor", actor)?;
        let environment = required("environment", environment)?;
        retry!(self, "enqueue_report", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            if let Some(existing) = load_for_case(&mut tx, case_id).await? {
                if existing.environment != environment {
                    return Err(Error::invalid(
                        "environment",
                        format!(
                            "case {case_id} already has a {} report, got {environment}",
                            existing.environment
                        ),
                    ));
                }
                return Ok((existing, false));
            }
            let case = load_case(&mut tx, case_id).await?;
            if case.status != CaseStatus::Confirmed {
                return Err(Error::InvalidTransition {
                    what: "case",
                    id: case_id.to_string(),
                    action: "report".to_owned(),
                    state: case.status.to_string(),
                });
            }
            let row = tx
                .fetch_one(
                    "INSERT INTO report_outbox (case_id, environment, status, step, state, attempts, next_attempt_at, created_at, updated_at)
                     VALUES ($1, $2, 'pending', 'new', '{}', 0, $3, $3, $3) RETURNING id",
                    args![case_id.0, environment.as_str(), now],
                )
                .await?;
            let id = row.i64("id")?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "report.enqueue",
                    subject: format!("case:{case_id}"),
                    reason: None,
                    detail: json!({ "report": id, "environment": environment }),
                },
            )
            .await?;
            let report = load(&mut tx, id).await?;
            tx.commit().await?;
            Ok((report, true))
        })
    }

    /// Leases the pending report that is due soonest (its next attempt time
    /// has come and nobody holds a live lease on it), or returns `None`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_due_report(
        &self,
        owner: &str,
        lease_for: StdDuration,
    ) -> Result<Option<Lease>> {
        self.claim(None, owner, lease_for).await
    }

    /// Leases a specific pending report now, whatever its next attempt time
    /// (for `childsafe report submit CASE`). `None` if it is finished,
    /// failed, or leased by someone else.
    ///
    /// # Errors
    /// [`Error::NotFound`], database errors.
    pub async fn claim_report(
        &self,
        report_id: i64,
        owner: &str,
        lease_for: StdDuration,
    ) -> Result<Option<Lease>> {
        self.claim(Some(report_id), owner, lease_for).await
    }

    async fn claim(
        &self,
        report_id: Option<i64>,
        owner: &str,
        lease_for: StdDuration,
    ) -> Result<Option<Lease>> {
        let owner = required("owner", owner)?;
        let length = std_to_time(lease_for);
        if !length.is_positive() {
            return Err(Error::invalid("lease", "must be longer than zero"));
        }
        retry!(self, "claim_report", async {
            let mut tx = self.pool().begin().await?;
            let now = self.now_micros();
            let id = match report_id {
                Some(id) => {
                    let report = load(&mut tx, id).await?;
                    let free = report
                        .lease_until
                        .is_none_or(|until| crate::clock::to_micros(until) <= now);
                    (report.status == ReportStatus::Pending && free).then_some(id)
                }
                None => {
                    let sql = match tx.backend() {
                        Backend::Sqlite => {
                            "SELECT id FROM report_outbox
                             WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
                             ORDER BY next_attempt_at, id LIMIT 1"
                        }
                        Backend::Postgres => {
                            "SELECT id FROM report_outbox
                             WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
                             ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                        }
                    };
                    match tx.fetch_optional(sql, args![now]).await? {
                        Some(row) => Some(row.i64("id")?),
                        None => None,
                    }
                }
            };
            let Some(id) = id else {
                return Ok(None);
            };
            let token = random_hex(16)?;
            let until = now.saturating_add(micros_of(length));
            // The condition repeats the claim's, so that of two claimers that
            // both saw the row free, exactly one wins.
            let n = tx
                .execute(
                    "UPDATE report_outbox SET lease_token = $1, lease_owner = $2, lease_until = $3
                     WHERE id = $4 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $5)",
                    args![token.as_str(), owner.as_str(), until, id, now],
                )
                .await?;
            if n != 1 {
                return Ok(None);
            }
            let report = load(&mut tx, id).await?;
            tx.commit().await?;
            tracing::debug!(report = id, case = %report.case_id, owner = %owner, "report leased");
            Ok(Some(Lease {
                report,
                token,
                owner: owner.clone(),
                length,
            }))
        })
    }

    /// Updates a leased report inside `tx`: checks the lease (token, not
    /// expired, still pending) and applies `set` (an UPDATE with `$1` = id,
    /// `$2` = token, `$3` = now, then the caller's arguments).
    async fn lease_update(
        &self,
        tx: &mut Tx,
        lease: &Lease,
        sql: &'static str,
        extra: Vec<crate::db::Arg>,
    ) -> Result<()> {
        let now = self.now_micros();
        let mut all = args![lease.report.id, lease.token.as_str(), now];
        all.extend(extra);
        let n = tx.execute(sql, all).await?;
        if n != 1 {
            return Err(Error::LeaseLost {
                report: lease.report.id,
            });
        }
        Ok(())
    }

    /// Records progress: the new step and state, and the receipt of the call
    /// that got there, in one audited transaction. Resets the attempt count
    /// and extends the lease.
    ///
    /// # Errors
    /// [`Error::LeaseLost`]: stop driving this report.
    pub async fn save_report_step(
        &self,
        lease: &mut Lease,
        step: &str,
        state: &serde_json::Value,
        receipt: Option<&Receipt>,
    ) -> Result<()> {
        let step = required("step", step)?;
        let state_text =
            serde_json::to_string(state).map_err(|e| Error::invalid("state", e.to_string()))?;
        let report = retry!(self, "save_report_step", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let until = now.saturating_add(micros_of(lease.length));
            self.lease_update(
                    &mut tx,
                    lease,
                    "UPDATE report_outbox SET step = $4, state = $5, attempts = 0, last_error = NULL,
                            next_attempt_at = $3, updated_at = $3, lease_until = $6
                     WHERE id = $1 AND lease_token = $2 AND lease_until > $3 AND status = 'pending'",
                    args![step.as_str(), state_text.as_str(), until],
                )
                .await?;
            if let Some(receipt) = receipt {
                insert_receipt(&mut tx, lease.report.id, now, receipt).await?;
            }
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &lease.owner,
                    action: "report.step",
                    subject: format!("case:{}", lease.report.case_id),
                    reason: None,
                    detail: json!({
                        "report": lease.report.id,
                        "from": lease.report.step,
                        "to": step,
                        "request_id": receipt.and_then(|r| r.request_id.clone()),
                        "response_code": receipt.and_then(|r| r.response_code),
                    }),
                },
            )
            .await?;
            let report = load(&mut tx, lease.report.id).await?;
            tx.commit().await?;
            Ok(report)
        })?;
        lease.report = report;
        Ok(())
    }

    /// Records a receipt without changing the step (e.g. the response of a
    /// failed attempt, kept for NCMEC support).
    ///
    /// # Errors
    /// [`Error::LeaseLost`].
    pub async fn record_receipt(&self, lease: &Lease, receipt: &Receipt) -> Result<()> {
        retry!(self, "record_receipt", async {
            let mut tx = self.pool().begin().await?;
            let now = self.now_micros();
            self.lease_update(
                &mut tx,
                lease,
                "UPDATE report_outbox SET updated_at = $3 WHERE id = $1 AND lease_token = $2 AND lease_until > $3 AND status = 'pending'",
                Vec::new(),
            )
            .await?;
            insert_receipt(&mut tx, lease.report.id, now, receipt).await?;
            tx.commit().await
        })
    }

    /// A retryable failure: counts the attempt, records the error, schedules
    /// the next attempt `retry_in` from now, and gives up the lease.
    ///
    /// # Errors
    /// [`Error::LeaseLost`].
    pub async fn retry_report_later(
        &self,
        lease: Lease,
        error: &str,
        retry_in: StdDuration,
        receipt: Option<&Receipt>,
    ) -> Result<OutboxReport> {
        let delay = micros_of(std_to_time(retry_in));
        retry!(self, "retry_report_later", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            self.lease_update(
                &mut tx,
                &lease,
                "UPDATE report_outbox SET attempts = attempts + 1, last_error = $4, next_attempt_at = $5, updated_at = $3,
                        lease_token = NULL, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND lease_until > $3 AND status = 'pending'",
                args![error, now.saturating_add(delay)],
            )
            .await?;
            if let Some(receipt) = receipt {
                insert_receipt(&mut tx, lease.report.id, now, receipt).await?;
            }
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &lease.owner,
                    action: "report.retry",
                    subject: format!("case:{}", lease.report.case_id),
                    reason: None,
                    detail: json!({ "report": lease.report.id, "step": lease.report.step, "error": error }),
                },
            )
            .await?;
            let report = load(&mut tx, lease.report.id).await?;
            tx.commit().await?;
            Ok(report)
        })
    }

    /// NCMEC's finish succeeded (or answered "already finished"): marks the
    /// report finished and the case reported, stores the receipt, and starts
    /// the retention clock of the case's evidence at this instant (kept until
    /// now + [`crate::StoreOptions::retention`]), all in one transaction.
    ///
    /// # Errors
    /// [`Error::LeaseLost`].
    pub async fn finish_report(
        &self,
        lease: Lease,
        ncmec_report_id: &str,
        state: &serde_json::Value,
        receipt: &Receipt,
    ) -> Result<OutboxReport> {
        let ncmec_report_id = required("ncmec report id", ncmec_report_id)?;
        let state_text =
            serde_json::to_string(state).map_err(|e| Error::invalid("state", e.to_string()))?;
        retry!(self, "finish_report", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            self.lease_update(
                &mut tx,
                &lease,
                "UPDATE report_outbox SET status = 'finished', step = 'finished', state = $4, ncmec_report_id = $5,
                        finished_at = $3, updated_at = $3, last_error = NULL,
                        lease_token = NULL, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND lease_until > $3 AND status = 'pending'",
                args![state_text.as_str(), ncmec_report_id.as_str()],
            )
            .await?;
            insert_receipt(&mut tx, lease.report.id, now, receipt).await?;
            mark_reported(&mut tx, now, lease.report.case_id, &lease.owner).await?;
            let until = now.saturating_add(micros_of(self.options().retention));
            crate::evidence::start_retention(&mut tx, lease.report.case_id, until, true).await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &lease.owner,
                    action: "report.finish",
                    subject: format!("case:{}", lease.report.case_id),
                    reason: None,
                    detail: json!({
                        "report": lease.report.id,
                        "ncmec_report_id": ncmec_report_id,
                        "request_id": receipt.request_id,
                        "retain_until": until,
                    }),
                },
            )
            .await?;
            let report = load(&mut tx, lease.report.id).await?;
            tx.commit().await?;
            Ok(report)
        })
    }

    /// A permanent failure (e.g. NCMEC rejected the report as invalid):
    /// stops the report for a person to look at.
    ///
    /// # Errors
    /// [`Error::LeaseLost`].
    pub async fn fail_report(
        &self,
        lease: Lease,
        error: &str,
        state: &serde_json::Value,
        receipt: Option<&Receipt>,
    ) -> Result<OutboxReport> {
        let state_text =
            serde_json::to_string(state).map_err(|e| Error::invalid("state", e.to_string()))?;
        retry!(self, "fail_report", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            self.lease_update(
                &mut tx,
                &lease,
                "UPDATE report_outbox SET status = 'failed', state = $4, last_error = $5, updated_at = $3,
                        lease_token = NULL, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND lease_until > $3 AND status = 'pending'",
                args![state_text.as_str(), error],
            )
            .await?;
            if let Some(receipt) = receipt {
                insert_receipt(&mut tx, lease.report.id, now, receipt).await?;
            }
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &lease.owner,
                    action: "report.fail",
                    subject: format!("case:{}", lease.report.case_id),
                    reason: None,
                    detail: json!({ "report": lease.report.id, "step": lease.report.step, "error": error }),
                },
            )
            .await?;
            let report = load(&mut tx, lease.report.id).await?;
            tx.commit().await?;
            Ok(report)
        })
    }

    /// Gives up a lease without changing anything else.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] if it had already expired.
    pub async fn release_report(&self, lease: Lease) -> Result<()> {
        retry!(self, "release_report", async {
            let mut tx = self.pool().begin().await?;
            self.lease_update(
                &mut tx,
                &lease,
                "UPDATE report_outbox SET lease_token = NULL, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND lease_until > $3",
                Vec::new(),
            )
            .await?;
            tx.commit().await
        })
    }

    /// Puts a failed report back to pending (after a person fixed the cause),
    /// keeping its step and state so the driver resumes where it stopped.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] unless failed.
    pub async fn requeue_report(
        &self,
        report_id: i64,
        actor: &str,
        reason: &str,
    ) -> Result<OutboxReport> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "requeue_report", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let report = load(&mut tx, report_id).await?;
            if report.status != ReportStatus::Failed {
                return Err(Error::InvalidTransition {
                    what: "report",
                    id: report_id.to_string(),
                    action: "requeue".to_owned(),
                    state: report.status.to_string(),
                });
            }
            tx.execute(
                "UPDATE report_outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 WHERE id = $2",
                args![now, report_id],
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "report.requeue",
                    subject: format!("case:{}", report.case_id),
                    reason: Some(&reason),
                    detail: json!({ "report": report_id, "step": report.step }),
                },
            )
            .await?;
            let report = load(&mut tx, report_id).await?;
            tx.commit().await?;
            Ok(report)
        })
    }

    /// One report.
    ///
    /// # Errors
    /// [`Error::NotFound`], database errors.
    pub async fn report(&self, report_id: i64) -> Result<OutboxReport> {
        retry!(self, "report", async {
            let mut tx = self.pool().begin_read().await?;
            load(&mut tx, report_id).await
        })
    }

    /// The report of a case, if one was queued.
    ///
    /// # Errors
    /// Database errors.
    pub async fn report_for_case(&self, case_id: CaseId) -> Result<Option<OutboxReport>> {
        retry!(self, "report_for_case", async {
            let mut tx = self.pool().begin_read().await?;
            load_for_case(&mut tx, case_id).await
        })
    }

    /// Reports, newest first, optionally only those in one state.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_reports(
        &self,
        status: Option<ReportStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxReport>> {
        retry!(self, "list_reports", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    concat!(
                        "SELECT ",
                        report_columns!(),
                        " FROM report_outbox WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2"
                    ),
                    args![status.map(|s| s.as_str()), i64::from(limit)],
                )
                .await?;
            rows.iter().map(report_from_row).collect()
        })
    }

    /// Every receipt of a report, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn report_receipts(&self, report_id: i64) -> Result<Vec<StoredReceipt>> {
        retry!(self, "report_receipts", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, at, step, http_status, response_code, request_id, body
                     FROM report_receipts WHERE report_id = $1 ORDER BY id",
                    args![report_id],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(StoredReceipt {
                        id: row.i64("id")?,
                        at: from_micros(row.i64("at")?),
                        receipt: Receipt {
                            step: row.text("step")?,
                            http_status: row
                                .opt_i64("http_status")?
                                .and_then(|s| u16::try_from(s).ok()),
                            response_code: row.opt_i64("response_code")?,
                            request_id: row.opt_text("request_id")?,
                            body: row.text("body")?,
                        },
                    })
                })
                .collect()
        })
    }
}
