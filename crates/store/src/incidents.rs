//! Incidents: what the gateway saw and did, one row per flagged request or
//! response. Hashes, categories and findings only, never the content.
//!
//! Recording an incident whose categories include a severe one
//! ([`SEVERE_CATEGORIES`]) or that policy marked for reporting opens (or
//! joins) the end user's case in the same transaction, with one case item
//! per file (or one without a file for text), so that no reportable incident
//! exists without its case.

use std::collections::BTreeMap;

use childsafe_core::{Action, Category, ContentHashes, Finding, Sha256, Surface};
use childsafe_vault::ItemId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    Store, audit,
    cases::{CaseId, CaseItemKind, FileOrigin, ItemLocation, NewItem, Subject, add_item},
    clock::{from_micros, to_micros},
    db::{Row, args},
    error::{Error, Result},
};

/// Categories that always open a case, whatever the policy's `report` flag.
pub const SEVERE_CATEGORIES: [Category; 4] = [
    Category::CsamKnown,
    Category::CsamSuspected,
    Category::Sextortion,
    Category::Grooming,
];

/// An incident number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub i64);

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A file involved in an incident (an image in the request or response).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFile {
    /// Hashes of the original bytes.
    pub hashes: ContentHashes,
    /// The preserved copy, when the law asks for one (see
    /// [`Store::preserve_evidence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_item: Option<ItemId>,
}

/// An incident to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewIncident {
    /// The tenant (from the API key).
    pub tenant: String,
    /// The end user, when identified.
    pub end_user: Option<String>,
    /// Input, output or conversation.
    pub surface: Surface,
    /// What the gateway did.
    pub action: Action,
    /// The decision's categories.
    pub categories: Vec<Category>,
    /// The decision's findings.
    pub findings: Vec<Finding>,
    /// Files involved, with their hashes.
    pub files: Vec<IncidentFile>,
    /// SHA-256 of the checked text, so that repeats of one text can be found
    /// without keeping it; `None` when no text was checked.
    pub text_sha256: Option<Sha256>,
    /// The gateway's request id.
    pub request_id: Option<String>,
    /// The rollout stage that served the request.
    pub stage: Option<String>,
    /// Whether policy says to report it (the decision's `report`).
    pub report: bool,
}

/// A recorded incident.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// The incident number.
    pub id: IncidentId,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The tenant.
    pub tenant: String,
    /// The end user.
    pub end_user: Option<String>,
    /// The surface.
    pub surface: Surface,
    /// What the gateway did.
    pub action: Action,
    /// Categories.
    pub categories: Vec<Category>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// Files with their hashes.
    pub files: Vec<IncidentFile>,
    /// SHA-256 of the checked text; `None` when no text was checked, and on
    /// incidents recorded before schema 3.
    pub text_sha256: Option<Sha256>,
    /// The gateway's request id.
    pub request_id: Option<String>,
    /// The rollout stage.
    pub stage: Option<String>,
    /// The case it opened or joined.
    pub case_id: Option<CaseId>,
}

fn incident_from_row(row: &Row) -> Result<Incident> {
    Ok(Incident {
        id: IncidentId(row.i64("id")?),
        at: from_micros(row.i64("at")?),
        tenant: row.text("tenant")?,
        end_user: row.opt_text("end_user")?,
        surface: row.parse("surface")?,
        action: row.parse("action")?,
        categories: row.json("categories")?,
        findings: row.json("findings")?,
        files: row.json("content_hashes")?,
        text_sha256: row.opt_parse("text_sha256")?,
        request_id: row.opt_text("request_id")?,
        stage: row.opt_text("stage")?,
        case_id: row.opt_i64("case_id")?.map(CaseId),
    })
}

fn json<T: Serialize>(field: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::invalid(field, e.to_string()))
}

impl NewIncident {
    /// Whether recording this incident opens (or joins) a case.
    pub fn opens_case(&self) -> bool {
        self.report
            || self
                .categories
                .iter()
                .any(|c| SEVERE_CATEGORIES.contains(c))
    }
}

impl Store {
    /// Records an incident, and opens or joins the end user's case when
    /// [`NewIncident::opens_case`]. Retried while the database is briefly
    /// unavailable; [`Error::Unavailable`] means it was NOT recorded, and the
    /// gateway must fail closed.
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::Invalid`] for an empty tenant.
    pub async fn record_incident(&self, incident: &NewIncident) -> Result<Incident> {
        let tenant = crate::required("tenant", &incident.tenant)?;
        let categories = json("categories", &incident.categories)?;
        let findings = json("findings", &incident.findings)?;
        let files = json("files", &incident.files)?;
        retry!(self, "record_incident", async {
            let mut tx = self.pool().begin().await?;
            let opens_case = incident.opens_case();
            if opens_case {
                audit::lock(&mut tx).await?;
            }
            let now = self.now_micros();
            let row = tx
                .fetch_one(
                    "INSERT INTO incidents (at, tenant, end_user, surface, action, categories, findings, content_hashes, text_sha256, request_id, stage)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                    args![
                        now,
                        tenant.as_str(),
                        incident.end_user.clone(),
                        incident.surface.as_str(),
                        incident.action.as_str(),
                        categories.as_str(),
                        findings.as_str(),
                        files.as_str(),
                        incident.text_sha256.map(|it| it.to_string()),
                        incident.request_id.clone(),
                        incident.stage.clone()
                    ],
                )
                .await?;
            let id = IncidentId(row.i64("id")?);
            let mut case_id = None;
            if opens_case {
                let subject = Subject::end_user(&tenant, incident.end_user.as_deref());
                let origin = match incident.surface {
                    Surface::Output => FileOrigin::ModelOutput,
                    _ => FileOrigin::UserInput,
                };
                let location = ItemLocation::Gateway {
                    request_id: incident.request_id.clone(),
                    surface: incident.surface,
                };
                let files: Vec<Option<&IncidentFile>> = if incident.files.is_empty() {
                    vec![None]
                } else {
                    incident.files.iter().map(Some).collect()
                };
                for (n, file) in files.into_iter().enumerate() {
                    let item = NewItem {
                        key: format!("incident:{id}:{n}"),
                        kind: CaseItemKind::Incident,
                        source_ref: id.to_string(),
                        found_at: now,
                        categories: incident.categories.clone(),
                        findings: incident.findings.clone(),
                        vault_item: file.and_then(|f| f.vault_item),
                        hashes: file.map(|f| f.hashes.clone()),
                        origin,
                        generative_ai: origin.generative_ai_default(),
                        location: Some(location.clone()),
                    };
                    let added = add_item(&mut tx, now, "gateway", &subject, &item).await?;
                    case_id = Some(added.case_id);
                }
                if let Some(case_id) = case_id {
                    tx.execute(
                        "UPDATE incidents SET case_id = $1 WHERE id = $2",
                        args![case_id.0, id.0],
                    )
                    .await?;
                }
            }
            let row = tx
                .fetch_one(
                    "SELECT id, at, tenant, end_user, surface, action, categories, findings, content_hashes, text_sha256, request_id, stage, case_id
                     FROM incidents WHERE id = $1",
                    args![id.0],
                )
                .await?;
            let recorded = incident_from_row(&row)?;
            tx.commit().await?;
            Ok(recorded)
        })
    }

    /// Incidents of a tenant (and end user, if given) since a time, newest
    /// first, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn incidents_since(
        &self,
        tenant: &str,
        end_user: Option<&str>,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Incident>> {
        retry!(self, "incidents_since", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, at, tenant, end_user, surface, action, categories, findings, content_hashes, text_sha256, request_id, stage, case_id
                     FROM incidents WHERE tenant = $1 AND ($2 IS NULL OR end_user = $2) AND at >= $3
                     ORDER BY at DESC, id DESC LIMIT $4",
                    args![tenant, end_user, to_micros(since), i64::from(limit)],
                )
                .await?;
            rows.iter().map(incident_from_row).collect()
        })
    }

    /// One incident.
    ///
    /// # Errors
    /// [`Error::NotFound`], database errors.
    pub async fn incident(&self, id: IncidentId) -> Result<Incident> {
        retry!(self, "incident", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_optional(
                    "SELECT id, at, tenant, end_user, surface, action, categories, findings, content_hashes, text_sha256, request_id, stage, case_id
                     FROM incidents WHERE id = $1",
                    args![id.0],
                )
                .await?
                .ok_or_else(|| Error::not_found("incident", id))?;
            incident_from_row(&row)
        })
    }

    /// Incidents per category since a time (all tenants), optionally only
    /// those served by one rollout stage: the numerator of the abuse rate.
    ///
    /// # Errors
    /// Database errors.
    pub async fn incident_counts_since(
        &self,
        since: OffsetDateTime,
        stage: Option<&str>,
    ) -> Result<BTreeMap<Category, u64>> {
        retry!(self, "incident_counts_since", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT categories FROM incidents WHERE at >= $1 AND ($2 IS NULL OR stage = $2)",
                    args![to_micros(since), stage],
                )
                .await?;
            let mut counts = BTreeMap::new();
            for row in &rows {
                for category in row.json::<Vec<Category>>("categories")? {
                    *counts.entry(category).or_insert(0) += 1;
                }
            }
            Ok(counts)
        })
    }
}

impl Store {
    /// The first incident recorded for a gateway request id, if any (a user
    /// report names the response it reports by request id).
    ///
    /// # Errors
    /// Database errors.
    pub async fn incident_for_request(&self, request_id: &str) -> Result<Option<Incident>> {
        retry!(self, "incident_for_request", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_optional(
                    "SELECT id, at, tenant, end_user, surface, action, categories, findings, content_hashes, text_sha256, request_id, stage, case_id
                     FROM incidents WHERE request_id = $1 ORDER BY id LIMIT 1",
                    args![request_id],
                )
                .await?;
            row.as_ref().map(incident_from_row).transpose()
        })
    }
}
