//! User reports: a reporter flags a response (by id) or pasted content with a
//! reason; every report becomes (or joins) a case, and reports are rate
//! limited per reporter.
//!
//! Pasted content is not stored here: the gateway preserves it in the vault
//! when the law asks ([`crate::Store::preserve_evidence`]) and passes the item
//! id and hashes. The reporter's comment is kept for reviewers and never
//! logged or audited; when the gateway withholds it (the engine found abuse
//! in it), only its SHA-256 is kept. The categories and findings the gateway
//! found are kept with the report and on its case item.

use childsafe_core::{Category, ContentHashes, Finding, Sha256};
use childsafe_vault::ItemId;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{
    Store, audit,
    cases::{CaseId, CaseItemKind, FileOrigin, ItemLocation, NewItem, Subject, add_item, to_json},
    clock::{from_micros, micros_of, to_micros},
    db::{Row, Tx, args},
    error::{Error, Result},
    required,
};

/// A user report to record. `Debug` leaves out the comment, which is the
/// reporter's free text and may quote what they report.
#[derive(Clone, PartialEq)]
pub struct NewUserReport {
    /// Who reports (an end user id, or "anonymous:<ip hash>"): the rate-limit key.
    pub reporter: String,
    /// The tenant whose traffic is reported, if known.
    pub tenant: Option<String>,
    /// The response reported (the gateway's response id), if any.
    pub response_id: Option<String>,
    /// The reporter's reason category.
    pub reason: Category,
    /// Every category found for the report: the reason's, the engine's on
    /// pasted content and the comment, and the reported response's
    /// incident's. The case item gets these and `reason`.
    pub categories: Vec<Category>,
    /// The engine's findings on pasted content and the comment (ids,
    /// scores, spans: no content). The case item gets these.
    pub findings: Vec<Finding>,
    /// The reporter's comment, for reviewers.
    pub comment: Option<String>,
    /// SHA-256 of the comment, when the comment itself is not kept.
    pub comment_sha256: Option<Sha256>,
    /// The end user who produced the reported content, if known: the case subject.
    pub subject_end_user: Option<String>,
    /// The preserved content, if any.
    pub vault_item: Option<ItemId>,
    /// Hashes of the reported content, if it is a file.
    pub content_hashes: Option<ContentHashes>,
    /// Whether the reported content is a model generation (then it is
    /// annotated as AI-generated in a report).
    pub generated: bool,
}

/// A recorded user report. `Debug` leaves out the comment.
#[derive(Clone, PartialEq, Serialize)]
pub struct UserReport {
    /// The report id (acknowledged to the reporter).
    pub id: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who reported.
    pub reporter: String,
    /// The tenant.
    pub tenant: Option<String>,
    /// The response reported.
    pub response_id: Option<String>,
    /// The reason category.
    pub reason: Category,
    /// Every category found for the report (see
    /// [`NewUserReport::categories`]); empty on reports recorded before
    /// schema 3.
    pub categories: Vec<Category>,
    /// The engine's findings on pasted content and the comment; empty on
    /// reports recorded before schema 3.
    pub findings: Vec<Finding>,
    /// The comment.
    pub comment: Option<String>,
    /// SHA-256 of the comment, when the comment itself was not kept.
    pub comment_sha256: Option<Sha256>,
    /// The reported end user.
    pub subject_end_user: Option<String>,
    /// The preserved content.
    pub vault_item: Option<ItemId>,
    /// Hashes of the reported content.
    pub content_hashes: Option<ContentHashes>,
    /// The case it became part of.
    pub case_id: Option<CaseId>,
}

impl std::fmt::Debug for NewUserReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserReport")
            .field("reporter", &self.reporter)
            .field("tenant", &self.tenant)
            .field("response_id", &self.response_id)
            .field("reason", &self.reason)
            .field("categories", &self.categories)
            .field("findings", &self.findings)
            .field("comment", &self.comment.as_ref().map(|_| "<redacted>"))
            .field("comment_sha256", &self.comment_sha256)
            .field("subject_end_user", &self.subject_end_user)
            .field("vault_item", &self.vault_item)
            .field("content_hashes", &self.content_hashes)
            .field("generated", &self.generated)
            .finish()
    }
}

impl std::fmt::Debug for UserReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserReport")
            .field("id", &self.id)
            .field("at", &self.at)
            .field("reporter", &self.reporter)
            .field("tenant", &self.tenant)
            .field("response_id", &self.response_id)
            .field("reason", &self.reason)
            .field("categories", &self.categories)
            .field("findings", &self.findings)
            .field("comment", &self.comment.as_ref().map(|_| "<redacted>"))
            .field("comment_sha256", &self.comment_sha256)
            .field("subject_end_user", &self.subject_end_user)
            .field("vault_item", &self.vault_item)
            .field("content_hashes", &self.content_hashes)
            .field("case_id", &self.case_id)
            .finish()
    }
}

fn report_from_row(row: &Row) -> Result<UserReport> {
    Ok(UserReport {
        id: row.i64("id")?,
        at: from_micros(row.i64("at")?),
        reporter: row.text("reporter")?,
        tenant: row.opt_text("tenant")?,
        response_id: row.opt_text("response_id")?,
        reason: row.parse("reason")?,
        categories: row.json("categories")?,
        findings: row.json("findings")?,
        comment: row.opt_text("comment")?,
        comment_sha256: row.opt_parse("comment_sha256")?,
        subject_end_user: row.opt_text("subject_end_user")?,
        vault_item: row.opt_parse("vault_item")?,
        content_hashes: row.json::<Option<ContentHashes>>("content_hashes")?,
        case_id: row.opt_i64("case_id")?.map(CaseId),
    })
}

async fn count_since(tx: &mut Tx, reporter: &str, since: i64) -> Result<u64> {
    let row = tx
        .fetch_one(
            "SELECT COUNT(*) AS n FROM user_reports WHERE reporter = $1 AND at >= $2",
            args![reporter, since],
        )
        .await?;
    Ok(row.i64("n")?.max(0) as u64)
}

impl Store {
    /// Records a user report and adds it to a case: the reported end user's
    /// open case when known, else a case of its own. With `limit`
    /// (`(count, window)`), refuses the report if the reporter already made
    /// `count` in the last `window`, checked in the same transaction so that
    /// concurrent reports cannot slip past it.
    ///
    /// # Errors
    /// [`Error::RateLimited`]; [`Error::Invalid`] for an empty reporter.
    pub async fn submit_user_report(
        &self,
        report: &NewUserReport,
        limit: Option<(u64, Duration)>,
    ) -> Result<UserReport> {
        let reporter = required("reporter", &report.reporter)?;
        let hashes = report
            .content_hashes
            .as_ref()
            .map(|h| {
                serde_json::to_string(h)
                    .map_err(|e| Error::invalid("content_hashes", e.to_string()))
            })
            .transpose()?;
        let categories = to_json("categories", &report.categories)?;
        let findings = to_json("findings", &report.findings)?;
        // The case item carries the reason too, even when the gateway left it
        // out of `categories` (a reason of "other" filed under a category).
        let mut item_categories = report.categories.clone();
        item_categories.push(report.reason);
        item_categories.sort();
        item_categories.dedup();
        retry!(self, "submit_user_report", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            if let Some((max, window)) = limit {
                let count =
                    count_since(&mut tx, &reporter, now.saturating_sub(micros_of(window))).await?;
                if count >= max {
                    return Err(Error::RateLimited {
                        what: "user reports from this reporter",
                        count,
                        limit: max,
                    });
                }
            }
            let row = tx
                .fetch_one(
                    "INSERT INTO user_reports (at, reporter, tenant, response_id, reason, categories, findings, comment, comment_sha256, subject_end_user, vault_item, content_hashes)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                    args![
                        now,
                        reporter.as_str(),
                        report.tenant.clone(),
                        report.response_id.clone(),
                        report.reason.as_str(),
                        categories.as_str(),
                        findings.as_str(),
                        report.comment.clone(),
                        report.comment_sha256.map(|it| it.to_string()),
                        report.subject_end_user.clone(),
                        report.vault_item.map(|i| i.to_string()),
                        hashes.clone().unwrap_or_else(|| "null".to_owned())
                    ],
                )
                .await?;
            let id = row.i64("id")?;
            let subject = match (&report.tenant, &report.subject_end_user) {
                (Some(tenant), Some(user)) => Subject::end_user(tenant, Some(user)),
                _ => Subject {
                    key: format!("report:{id}"),
                    tenant: report.tenant.clone(),
                    end_user: report.subject_end_user.clone(),
                },
            };
            let origin = if report.generated {
                FileOrigin::ModelOutput
            } else {
                FileOrigin::UserReport
            };
            let item = NewItem {
                key: format!("report:{id}"),
                kind: CaseItemKind::UserReport,
                source_ref: id.to_string(),
                found_at: now,
                categories: item_categories.clone(),
                findings: report.findings.clone(),
                vault_item: report.vault_item,
                hashes: report.content_hashes.clone(),
                origin,
                generative_ai: origin.generative_ai_default(),
                location: Some(ItemLocation::UserReport {
                    response_id: report.response_id.clone(),
                }),
            };
            let added = add_item(&mut tx, now, "user-report", &subject, &item).await?;
            tx.execute(
                "UPDATE user_reports SET case_id = $1 WHERE id = $2",
                args![added.case_id.0, id],
            )
            .await?;
            let row = tx
                .fetch_one(
                    "SELECT id, at, reporter, tenant, response_id, reason, categories, findings, comment, comment_sha256, subject_end_user, vault_item, content_hashes, case_id
                     FROM user_reports WHERE id = $1",
                    args![id],
                )
                .await?;
            let recorded = report_from_row(&row)?;
            tx.commit().await?;
            Ok(recorded)
        })
    }

    /// How many reports a reporter made at or after `since`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_user_reports_since(
        &self,
        reporter: &str,
        since: OffsetDateTime,
    ) -> Result<u64> {
        retry!(self, "count_user_reports_since", async {
            let mut tx = self.pool().begin_read().await?;
            count_since(&mut tx, reporter, to_micros(since)).await
        })
    }

    /// One user report.
    ///
    /// # Errors
    /// [`Error::NotFound`], database errors.
    pub async fn user_report(&self, id: i64) -> Result<UserReport> {
        retry!(self, "user_report", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_optional(
                    "SELECT id, at, reporter, tenant, response_id, reason, categories, findings, comment, comment_sha256, subject_end_user, vault_item, content_hashes, case_id
                     FROM user_reports WHERE id = $1",
                    args![id],
                )
                .await?
                .ok_or_else(|| Error::not_found("user report", id))?;
            report_from_row(&row)
        })
    }
}
