//! Cases: the findings about one subject, reviewed by a person and, when
//! confirmed, reported to NCMEC once.
//!
//! A case is about one *subject*, and new findings about a subject join its
//! open case (status `new` or `in_review`) rather than opening another,
//! because NCMEC prefers one report per user:
//! - gateway incidents and user reports: `user:<tenant>/<end user>`
//!   (`tenant:<tenant>` when the end user is unknown);
//! - dataset finds from the scanner's queue: `source:<host>` of the sample's
//!   URL (the site that served it, which is what law enforcement can act
//!   on), or `shard:<shard>` when the dataset records no URL.
//!
//! Lifecycle: `new` → `in_review` (on assignment) → `confirmed` or
//! `dismissed` (a decision with who, when and why) → `reported` (set by the
//! outbox when NCMEC's finish succeeds) → `closed`. A dismissed case may be
//! closed directly. Every change is a case event and an audit log entry in
//! the same transaction.
//!
//! Each case item records where its file came from ([`FileOrigin`]) and
//! whether it is believed to be AI-generated (`generative_ai`), which the
//! report builder turns into NCMEC's `<generativeAi/>` file annotation: true
//! by default for model output, false for training data, whose origin goes
//! into `locationOfFile` instead (API-NOTES.md §2.4, §3).

use std::{collections::BTreeSet, fmt, str::FromStr};

use childsafe_core::{
    Category, ContentHashes, Finding, QUEUE_FORMAT_VERSION, QueueEntry, SampleLocation, Surface,
};
use childsafe_vault::ItemId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    Store, audit,
    clock::{from_micros, to_micros},
    db::{Row, Tx, args},
    error::{Error, Result},
    evidence::EvidenceItem,
    outbox::OutboxReport,
    required,
};

/// A case number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(pub i64);

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for CaseId {
    type Err = Error;

    fn from_str(s: &str) -> Result<CaseId> {
        s.trim()
            .trim_start_matches('#')
            .parse::<i64>()
            .ok()
            .filter(|&n| n > 0)
            .map(CaseId)
            .ok_or_else(|| {
                Error::invalid("case id", format!("expected a positive number, got {s:?}"))
            })
    }
}

macro_rules! stable_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in lifecycle order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name, as stored and printed.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::Error;

            fn from_str(s: &str) -> $crate::error::Result<$name> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::error::Error::invalid(
                        stringify!($name),
                        format!(
                            "expected one of {}, got {s:?}",
                            $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ))
            }
        }
    };
}
pub(crate) use stable_enum;

stable_enum!(
    /// Where a case is in its lifecycle.
    CaseStatus {
        /// Opened automatically; nobody has looked yet.
        New => "new",
        /// Assigned to a reviewer.
        InReview => "in_review",
        /// A reviewer confirmed it is reportable; the report is to be filed.
        Confirmed => "confirmed",
        /// A reviewer decided it is not reportable.
        Dismissed => "dismissed",
        /// The report to NCMEC is finished.
        Reported => "reported",
        /// Nothing more to do.
        Closed => "closed",
    }
);

stable_enum!(
    /// A reviewer's decision.
    Verdict {
        /// Reportable.
        Confirm => "confirm",
        /// Not reportable.
        Dismiss => "dismiss",
    }
);

stable_enum!(
    /// Where a case item's file came from. Decides the default of
    /// `generative_ai` and what the report says about the file's origin.
    FileOrigin {
        /// Generated by the model behind the gateway (an output), or a
        /// generation a user reported: believed AI-generated.
        ModelOutput => "model_output",
        /// Sent by an end user to the gateway (an input).
        UserInput => "user_input",
        /// Found in a training dataset by the scanner: never annotated as
        /// AI-generated; its origin is the dataset location.
        TrainingData => "training_data",
        /// Pasted or uploaded by a user report, origin unknown.
        UserReport => "user_report",
    }
);

impl FileOrigin {
    /// Whether a file of this origin is believed AI-generated unless a
    /// reviewer says otherwise.
    pub const fn generative_ai_default(self) -> bool {
        matches!(self, FileOrigin::ModelOutput)
    }
}

stable_enum!(
    /// What a case item came from.
    CaseItemKind {
        /// A gateway incident.
        Incident => "incident",
        /// An entry of the scanner's report queue.
        QueueEntry => "queue_entry",
        /// A user report.
        UserReport => "user_report",
    }
);

/// Where a case item was found, for the report's `locationOfFile` and
/// `additionalInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ItemLocation {
    /// In a dataset.
    Dataset(SampleLocation),
    /// In traffic through the gateway.
    Gateway {
        /// The gateway's request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// Input or output.
        surface: Surface,
    },
    /// Attached to a user report.
    UserReport {
        /// The response the reporter flagged, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_id: Option<String>,
    },
}

/// A reviewer's recorded decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseDecision {
    /// Confirm or dismiss.
    pub verdict: Verdict,
    /// Who decided.
    pub by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why.
    pub reason: String,
}

/// A case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Case {
    /// The case number.
    pub id: CaseId,
    /// Who or what it is about (see the module docs).
    pub subject: String,
    /// The tenant, for gateway cases.
    pub tenant: Option<String>,
    /// The end user, for gateway cases.
    pub end_user: Option<String>,
    /// Lifecycle state.
    pub status: CaseStatus,
    /// Every category among its items, in taxonomy order.
    pub categories: Vec<Category>,
    /// When it was opened.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The reviewer it is assigned to.
    pub assignee: Option<String>,
    /// The decision, once made.
    pub decision: Option<CaseDecision>,
    /// When it was closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

/// One finding (with its file, if any) in a case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseItem {
    /// Row id.
    pub id: i64,
    /// The case.
    pub case_id: CaseId,
    /// Idempotency key: `queue:<entry id>`, `incident:<id>:<n>`, `report:<id>`.
    pub key: String,
    /// What it came from.
    pub kind: CaseItemKind,
    /// The id of what it came from (incident id, queue entry id, report id).
    pub source_ref: String,
    /// When it was added to the case.
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
    /// When the content was found or received.
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    /// Categories of its findings.
    pub categories: Vec<Category>,
    /// The findings.
    pub findings: Vec<Finding>,
    /// The preserved file, if any.
    pub vault_item: Option<ItemId>,
    /// Hashes of the file, if there is one.
    pub hashes: Option<ContentHashes>,
    /// Where the file came from.
    pub origin: FileOrigin,
    /// Whether the file is believed AI-generated (NCMEC `generativeAi`).
    pub generative_ai: bool,
    /// Where it was found.
    pub location: Option<ItemLocation>,
}

/// One entry of a case's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseEvent {
    /// Row id.
    pub id: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub actor: String,
    /// What: opened, item_added, assigned, confirmed, dismissed, reported,
    /// closed, generative_ai_set.
    pub kind: String,
    /// Status before, for transitions.
    pub from_status: Option<CaseStatus>,
    /// Status after, for transitions.
    pub to_status: Option<CaseStatus>,
    /// Why, when a person decided.
    pub reason: Option<String>,
}

/// Everything about one case, read in one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct CaseDetail {
    /// The case.
    pub case: Case,
    /// Its items, oldest first.
    pub items: Vec<CaseItem>,
    /// Its history, oldest first.
    pub events: Vec<CaseEvent>,
    /// Metadata of the preserved files its items refer to (with whether
    /// anyone has viewed each: NCMEC `fileViewedByEsp`).
    pub evidence: Vec<EvidenceItem>,
    /// Its report, once one is queued.
    pub report: Option<OutboxReport>,
}

/// Which cases [`Store::list_cases`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only cases in this state.
    pub status: Option<CaseStatus>,
    /// Only cases assigned to this reviewer.
    pub assignee: Option<String>,
    /// At most this many, newest first. Default 100.
    pub limit: u32,
}

impl Default for CaseFilter {
    fn default() -> CaseFilter {
        CaseFilter {
            status: None,
            assignee: None,
            limit: 100,
        }
    }
}

/// What [`Store::import_queue_entries`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Entries given.
    pub read: u64,
    /// Entries added to a case.
    pub imported: u64,
    /// Entries already imported earlier (same id): skipped.
    pub already_present: u64,
    /// Cases opened by this import.
    pub cases_opened: Vec<CaseId>,
    /// Every case that received an entry.
    pub cases_touched: Vec<CaseId>,
}

/// The subject of a case.
pub(crate) struct Subject {
    pub(crate) key: String,
    pub(crate) tenant: Option<String>,
    pub(crate) end_user: Option<String>,
}

impl Subject {
    pub(crate) fn end_user(tenant: &str, end_user: Option<&str>) -> Subject {
        let key = match end_user {
            Some(user) => format!("user:{tenant}/{user}"),
            None => format!("tenant:{tenant}"),
        };
        Subject {
            key,
            tenant: Some(tenant.to_owned()),
            end_user: end_user.map(str::to_owned),
        }
    }

    pub(crate) fn dataset(location: &SampleLocation) -> Subject {
        let key = match location.url.as_deref().and_then(url_host) {
            Some(host) => format!("source:{host}"),
            None => format!("shard:{}", location.shard),
        };
        Subject {
            key,
            tenant: None,
            end_user: None,
        }
    }
}

/// The host of a URL, lowercased, without credentials or port.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host.starts_with('[') {
        host.split_once(']').map(|(h, _)| &h[1..])?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A new case item, before it has a case.
pub(crate) struct NewItem {
    pub(crate) key: String,
    pub(crate) kind: CaseItemKind,
    pub(crate) source_ref: String,
    pub(crate) found_at: i64,
    pub(crate) categories: Vec<Category>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) vault_item: Option<ItemId>,
    pub(crate) hashes: Option<ContentHashes>,
    pub(crate) origin: FileOrigin,
    pub(crate) generative_ai: bool,
    pub(crate) location: Option<ItemLocation>,
}

/// What [`add_item`] did.
pub(crate) struct Added {
    pub(crate) case_id: CaseId,
    pub(crate) case_opened: bool,
    pub(crate) inserted: bool,
}

pub(crate) fn categories_of(findings: &[Finding]) -> Vec<Category> {
    findings
        .iter()
        .map(|f| f.category)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

pub(crate) fn to_json<T: Serialize>(field: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::invalid(field, e.to_string()))
}

macro_rules! case_columns {
    () => {
        "id, subject, tenant, end_user, status, categories, opened_at, updated_at, assignee, \
         verdict, decided_by, decided_at, decision_reason, closed_at"
    };
}

macro_rules! item_columns {
    () => {
        "id, case_id, item_key, kind, source_ref, added_at, found_at, categories, findings, \
         vault_item, hashes, origin, generative_ai, location"
    };
}

fn case_from_row(row: &Row) -> Result<Case> {
    let decision = match row.opt_parse::<Verdict>("verdict")? {
        Some(verdict) => Some(CaseDecision {
            verdict,
            by: row.opt_text("decided_by")?.unwrap_or_default(),
            at: from_micros(row.opt_i64("decided_at")?.unwrap_or_default()),
            reason: row.opt_text("decision_reason")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Case {
        id: CaseId(row.i64("id")?),
        subject: row.text("subject")?,
        tenant: row.opt_text("tenant")?,
        end_user: row.opt_text("end_user")?,
        status: row.parse("status")?,
        categories: row.json("categories")?,
        opened_at: from_micros(row.i64("opened_at")?),
        updated_at: from_micros(row.i64("updated_at")?),
        assignee: row.opt_text("assignee")?,
        decision,
        closed_at: row.opt_i64("closed_at")?.map(from_micros),
    })
}

fn item_from_row(row: &Row) -> Result<CaseItem> {
    Ok(CaseItem {
        id: row.i64("id")?,
        case_id: CaseId(row.i64("case_id")?),
        key: row.text("item_key")?,
        kind: row.parse("kind")?,
        source_ref: row.text("source_ref")?,
        added_at: from_micros(row.i64("added_at")?),
        found_at: from_micros(row.i64("found_at")?),
        categories: row.json("categories")?,
        findings: row.json("findings")?,
        vault_item: row.opt_parse("vault_item")?,
        hashes: row.opt_json("hashes")?,
        origin: row.parse("origin")?,
        generative_ai: row.bool("generative_ai")?,
        location: row.opt_json("location")?,
    })
}

pub(crate) async fn load_case(tx: &mut Tx, id: CaseId) -> Result<Case> {
    let row = tx
        .fetch_optional(
            concat!("SELECT ", case_columns!(), " FROM cases WHERE id = $1"),
            args![id.0],
        )
        .await?
        .ok_or_else(|| Error::not_found("case", id))?;
    case_from_row(&row)
}

pub(crate) async fn record_event(
    tx: &mut Tx,
    case_id: CaseId,
    at: i64,
    actor: &str,
    kind: &str,
    transition: Option<(CaseStatus, CaseStatus)>,
    reason: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO case_events (case_id, at, actor, kind, from_status, to_status, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            case_id.0,
            at,
            actor,
            kind,
            transition.map(|(from, _)| from.as_str()),
            transition.map(|(_, to)| to.as_str()),
            reason
        ],
    )
    .await?;
    Ok(())
}

/// Adds an item to the open case of `subject`, opening one if there is none.
/// Idempotent by the item's key. The caller holds the audit lock.
pub(crate) async fn add_item(
    tx: &mut Tx,
    now: i64,
    actor: &str,
    subject: &Subject,
    item: &NewItem,
) -> Result<Added> {
    if let Some(row) = tx
        .fetch_optional(
            "SELECT case_id FROM case_items WHERE item_key = $1",
            args![item.key.as_str()],
        )
        .await?
    {
        return Ok(Added {
            case_id: CaseId(row.i64("case_id")?),
            case_opened: false,
            inserted: false,
        });
    }
    let open = tx
        .fetch_optional(
            "SELECT id, categories FROM cases WHERE subject = $1 AND status IN ('new', 'in_review')",
            args![subject.key.as_str()],
        )
        .await?;
    let (case_id, case_opened, mut categories) = match open {
        Some(row) => (
            CaseId(row.i64("id")?),
            false,
            row.json::<Vec<Category>>("categories")?,
        ),
        None => {
            let row = tx
                .fetch_one(
                    "INSERT INTO cases (subject, tenant, end_user, status, categories, opened_at, updated_at)
                     VALUES ($1, $2, $3, 'new', '[]', $4, $4) RETURNING id",
                    args![subject.key.as_str(), subject.tenant.clone(), subject.end_user.clone(), now],
                )
                .await?;
            let case_id = CaseId(row.i64("id")?);
            record_event(tx, case_id, now, actor, "opened", None, None).await?;
            audit::append(
                tx,
                now,
                audit::NewAudit {
                    actor,
                    action: "case.open",
                    subject: format!("case:{case_id}"),
                    reason: None,
                    detail: json!({ "subject": subject.key }),
                },
            )
            .await?;
            (case_id, true, Vec::new())
        }
    };
    tx.execute(
        concat!(
            "INSERT INTO case_items (",
            "case_id, item_key, kind, source_ref, added_at, found_at, categories, findings, \
             vault_item, hashes, origin, generative_ai, location",
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ),
        args![
            case_id.0,
            item.key.as_str(),
            item.kind.as_str(),
            item.source_ref.as_str(),
            now,
            item.found_at,
            to_json("categories", &item.categories)?,
            to_json("findings", &item.findings)?,
            item.vault_item.map(|id| id.to_string()),
            item.hashes
                .as_ref()
                .map(|h| to_json("hashes", h))
                .transpose()?,
            item.origin.as_str(),
            item.generative_ai,
            item.location
                .as_ref()
                .map(|l| to_json("location", l))
                .transpose()?,
        ],
    )
    .await?;
    categories.extend(item.categories.iter().copied());
    let categories: BTreeSet<Category> = categories.into_iter().collect();
    let categories: Vec<Category> = categories.into_iter().collect();
    tx.execute(
        "UPDATE cases SET categories = $1, updated_at = $2 WHERE id = $3",
        args![to_json("categories", &categories)?, now, case_id.0],
    )
    .await?;
    record_event(tx, case_id, now, actor, "item_added", None, None).await?;
    audit::append(
        tx,
        now,
        audit::NewAudit {
            actor,
            action: "case.item_add",
            subject: format!("case:{case_id}"),
            reason: None,
            detail: json!({
                "item": item.key,
                "kind": item.kind.as_str(),
                "categories": item.categories,
                "vault_item": item.vault_item.map(|id| id.to_string()),
                "sha256": item.hashes.as_ref().map(|h| h.sha256.to_string()),
                "origin": item.origin.as_str(),
                "generative_ai": item.generative_ai,
            }),
        },
    )
    .await?;
    Ok(Added {
        case_id,
        case_opened,
        inserted: true,
    })
}

/// Moves a case from one of `from` to `to`, recording the event and the
/// audit entry. Returns the case as it was before.
#[allow(clippy::too_many_arguments)]
async fn transition(
    tx: &mut Tx,
    now: i64,
    id: CaseId,
    action: &str,
    from: &[CaseStatus],
    to: CaseStatus,
    actor: &str,
    reason: Option<&str>,
) -> Result<Case> {
    let case = load_case(tx, id).await?;
    if !from.contains(&case.status) {
        return Err(Error::InvalidTransition {
            what: "case",
            id: id.to_string(),
            action: action.to_owned(),
            state: case.status.to_string(),
        });
    }
    tx.execute(
        "UPDATE cases SET status = $1, updated_at = $2 WHERE id = $3",
        args![to.as_str(), now, id.0],
    )
    .await?;
    let kind = to.as_str();
    record_event(tx, id, now, actor, kind, Some((case.status, to)), reason).await?;
    audit::append(
        tx,
        now,
        audit::NewAudit {
            actor,
            action: &format!("case.{action}"),
            subject: format!("case:{id}"),
            reason,
            detail: json!({ "from": case.status.as_str(), "to": to.as_str() }),
        },
    )
    .await?;
    Ok(case)
}

/// Marks a confirmed case reported (called by the outbox when the report
/// is finished, inside its transaction).
pub(crate) async fn mark_reported(tx: &mut Tx, now: i64, id: CaseId, actor: &str) -> Result<()> {
    transition(
        tx,
        now,
        id,
        "report",
        &[CaseStatus::Confirmed],
        CaseStatus::Reported,
        actor,
        None,
    )
    .await?;
    Ok(())
}

fn parse_time(field: &str, text: &str) -> Result<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(to_micros)
        .map_err(|_| Error::invalid(field, format!("expected an RFC 3339 time, got {text:?}")))
}

/// Rows per transaction when importing: large enough to amortise the
/// commit's fsync, small enough to keep the write lock briefly.
const IMPORT_BATCH: usize = 256;

impl Store {
    /// Imports entries of the scanner's report queue (`childsafe scan`'s JSON
    /// lines), each into the open case of its source. Idempotent by entry id:
    /// importing the same file twice adds nothing the second time. Entries
    /// with preserved evidence register their vault item (metadata only).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the entry for a newer format version, a bad
    /// time or evidence whose hash disagrees with the entry; nothing of that
    /// batch is written. Database errors.
    pub async fn import_queue_entries(
        &self,
        entries: &[QueueEntry],
        actor: &str,
    ) -> Result<ImportSummary> {
        let actor = required("actor", actor)?;
        for entry in entries {
            validate_entry(entry)?;
        }
        let mut summary = ImportSummary {
            read: entries.len() as u64,
            ..ImportSummary::default()
        };
        let mut touched = BTreeSet::new();
        for batch in entries.chunks(IMPORT_BATCH) {
            let (added, opened, touched_now) = retry!(
                self,
                "import_queue_entries",
                self.import_batch(batch, &actor)
            )?;
            summary.imported += added;
            summary.already_present += batch.len() as u64 - added;
            summary.cases_opened.extend(opened);
            touched.extend(touched_now);
        }
        summary.cases_touched = touched.into_iter().collect();
        tracing::info!(
            read = summary.read,
            imported = summary.imported,
            already_present = summary.already_present,
            cases_opened = summary.cases_opened.len(),
            "report queue imported"
        );
        Ok(summary)
    }

    async fn import_batch(
        &self,
        batch: &[QueueEntry],
        actor: &str,
    ) -> Result<(u64, Vec<CaseId>, Vec<CaseId>)> {
        let mut tx = self.pool().begin().await?;
        audit::lock(&mut tx).await?;
        let now = self.now_micros();
        let mut added = 0;
        let mut opened = Vec::new();
        let mut touched = Vec::new();
        for entry in batch {
            let found_at = parse_time(
                &format!("queue entry {}: found_at", entry.id),
                &entry.found_at,
            )?;
            if let Some(evidence) = &entry.evidence {
                crate::evidence::register_from_queue(
                    &mut tx,
                    now,
                    actor,
                    evidence,
                    &entry.hashes,
                    found_at,
                )
                .await?;
            }
            let item = NewItem {
                key: format!("queue:{}", entry.id),
                kind: CaseItemKind::QueueEntry,
                source_ref: entry.id.clone(),
                found_at,
                categories: categories_of(&entry.findings),
                findings: entry.findings.clone(),
                vault_item: entry
                    .evidence
                    .as_ref()
                    .map(|e| e.item_id.parse())
                    .transpose()?,
                hashes: Some(entry.hashes.clone()),
                origin: FileOrigin::TrainingData,
                generative_ai: FileOrigin::TrainingData.generative_ai_default(),
                location: Some(ItemLocation::Dataset(entry.location.clone())),
            };
            let outcome = add_item(
                &mut tx,
                now,
                actor,
                &Subject::dataset(&entry.location),
                &item,
            )
            .await?;
            if outcome.inserted {
                added += 1;
                touched.push(outcome.case_id);
            }
            if outcome.case_opened {
                opened.push(outcome.case_id);
            }
        }
        tx.commit().await?;
        Ok((added, opened, touched))
    }

    /// Cases matching `filter`, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<Case>> {
        retry!(self, "list_cases", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    concat!(
                        "SELECT ",
                        case_columns!(),
                        " FROM cases WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR assignee = $2)
                         ORDER BY id DESC LIMIT $3"
                    ),
                    args![
                        filter.status.map(|s| s.as_str()),
                        filter.assignee.clone(),
                        i64::from(filter.limit)
                    ],
                )
                .await?;
            rows.iter().map(case_from_row).collect()
        })
    }

    /// One case.
    ///
    /// # Errors
    /// [`Error::NotFound`], database errors.
    pub async fn case(&self, id: CaseId) -> Result<Case> {
        retry!(self, "case", async {
            let mut tx = self.pool().begin_read().await?;
            load_case(&mut tx, id).await
        })
    }

    /// A case with its items, history, evidence and report, in one snapshot.
    /// This is what the report builder reads.
    ///
    /// # Errors
    /// [`Error::NotFound`], database errors.
    pub async fn case_detail(&self, id: CaseId) -> Result<CaseDetail> {
        retry!(self, "case_detail", async {
            let mut tx = self.pool().begin_read().await?;
            let case = load_case(&mut tx, id).await?;
            let items = tx
                .fetch_all(
                    concat!(
                        "SELECT ",
                        item_columns!(),
                        " FROM case_items WHERE case_id = $1 ORDER BY id"
                    ),
                    args![id.0],
                )
                .await?
                .iter()
                .map(item_from_row)
                .collect::<Result<Vec<_>>>()?;
            let events = tx
                .fetch_all(
                    "SELECT id, at, actor, kind, from_status, to_status, reason
                     FROM case_events WHERE case_id = $1 ORDER BY id",
                    args![id.0],
                )
                .await?
                .iter()
                .map(|row| {
                    Ok(CaseEvent {
                        id: row.i64("id")?,
                        at: from_micros(row.i64("at")?),
                        actor: row.text("actor")?,
                        kind: row.text("kind")?,
                        from_status: row.opt_parse("from_status")?,
                        to_status: row.opt_parse("to_status")?,
                        reason: row.opt_text("reason")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let mut evidence = Vec::new();
            let ids: BTreeSet<ItemId> = items.iter().filter_map(|i| i.vault_item).collect();
            for item_id in ids {
                evidence.push(crate::evidence::load(&mut tx, item_id).await?);
            }
            let report = crate::outbox::load_for_case(&mut tx, id).await?;
            Ok(CaseDetail {
                case,
                items,
                events,
                evidence,
                report,
            })
        })
    }

    /// Assigns a case to a reviewer; a `new` case moves to `in_review`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] for a closed case.
    pub async fn assign_case(
        &self,
        id: CaseId,
        assignee: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Case> {
        let assignee = required("assignee", assignee)?;
        let actor = required("actor", actor)?;
        retry!(self, "assign_case", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let case = load_case(&mut tx, id).await?;
            if case.status == CaseStatus::Closed {
                return Err(Error::InvalidTransition {
                    what: "case",
                    id: id.to_string(),
                    action: "assign".to_owned(),
                    state: case.status.to_string(),
                });
            }
            let to = if case.status == CaseStatus::New {
                CaseStatus::InReview
            } else {
                case.status
            };
            tx.execute(
                "UPDATE cases SET assignee = $1, status = $2, updated_at = $3 WHERE id = $4",
                args![assignee.as_str(), to.as_str(), now, id.0],
            )
            .await?;
            let transition = (to != case.status).then_some((case.status, to));
            record_event(&mut tx, id, now, &actor, "assigned", transition, reason).await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "case.assign",
                    subject: format!("case:{id}"),
                    reason,
                    detail: json!({ "assignee": assignee, "from": case.status.as_str(), "to": to.as_str() }),
                },
            )
            .await?;
            let case = load_case(&mut tx, id).await?;
            tx.commit().await?;
            Ok(case)
        })
    }

    /// Records a reviewer's decision: `new` or `in_review` to `confirmed` or
    /// `dismissed`, with who, when and why. Dismissing starts the retention
    /// clock of the case's evidence ([`crate::StoreOptions::dismissed_retention`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty reason; [`Error::NotFound`];
    /// [`Error::InvalidTransition`] if the case was already decided.
    pub async fn decide_case(
        &self,
        id: CaseId,
        verdict: Verdict,
        actor: &str,
        reason: &str,
    ) -> Result<Case> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "decide_case", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let to = match verdict {
                Verdict::Confirm => CaseStatus::Confirmed,
                Verdict::Dismiss => CaseStatus::Dismissed,
            };
            transition(
                &mut tx,
                now,
                id,
                verdict.as_str(),
                &[CaseStatus::New, CaseStatus::InReview],
                to,
                &actor,
                Some(&reason),
            )
            .await?;
            tx.execute(
                "UPDATE cases SET verdict = $1, decided_by = $2, decided_at = $3, decision_reason = $4 WHERE id = $5",
                args![verdict.as_str(), actor.as_str(), now, reason.as_str(), id.0],
            )
            .await?;
            if verdict == Verdict::Dismiss {
                let until =
                    now.saturating_add(crate::clock::micros_of(self.options().dismissed_retention));
                crate::evidence::start_retention(&mut tx, id, until, false).await?;
            }
            let case = load_case(&mut tx, id).await?;
            tx.commit().await?;
            Ok(case)
        })
    }

    /// Closes a reported or dismissed case.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] from any other state.
    pub async fn close_case(&self, id: CaseId, actor: &str, reason: &str) -> Result<Case> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "close_case", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            transition(
                &mut tx,
                now,
                id,
                "close",
                &[CaseStatus::Reported, CaseStatus::Dismissed],
                CaseStatus::Closed,
                &actor,
                Some(&reason),
            )
            .await?;
            tx.execute(
                "UPDATE cases SET closed_at = $1 WHERE id = $2",
                args![now, id.0],
            )
            .await?;
            let case = load_case(&mut tx, id).await?;
            tx.commit().await?;
            Ok(case)
        })
    }

    /// Sets whether a case item's file is believed AI-generated (a reviewer
    /// overriding the default of its origin). Not allowed once the case is
    /// reported: the report is final.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] for a reported or closed case.
    pub async fn set_item_generative_ai(
        &self,
        item_id: i64,
        generative_ai: bool,
        actor: &str,
        reason: &str,
    ) -> Result<CaseItem> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "set_item_generative_ai", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let row = tx
                .fetch_optional(
                    concat!("SELECT ", item_columns!(), " FROM case_items WHERE id = $1"),
                    args![item_id],
                )
                .await?
                .ok_or_else(|| Error::not_found("case item", item_id))?;
            let item = item_from_row(&row)?;
            let case = load_case(&mut tx, item.case_id).await?;
            if matches!(case.status, CaseStatus::Reported | CaseStatus::Closed) {
                return Err(Error::InvalidTransition {
                    what: "case",
                    id: case.id.to_string(),
                    action: "change an item".to_owned(),
                    state: case.status.to_string(),
                });
            }
            tx.execute(
                "UPDATE case_items SET generative_ai = $1 WHERE id = $2",
                args![generative_ai, item_id],
            )
            .await?;
            record_event(
                &mut tx,
                case.id,
                now,
                &actor,
                "generative_ai_set",
                None,
                Some(&reason),
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "case.item_generative_ai",
                    subject: format!("case:{}", case.id),
                    reason: Some(&reason),
                    detail: json!({ "item": item.key, "from": item.generative_ai, "to": generative_ai }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(CaseItem {
                generative_ai,
                ..item
            })
        })
    }
}

fn validate_entry(entry: &QueueEntry) -> Result<()> {
    let field = |name: &str| format!("queue entry {}: {name}", entry.id);
    if entry.id.trim().is_empty() {
        return Err(Error::invalid("queue entry: id", "must not be empty"));
    }
    if entry.version > QUEUE_FORMAT_VERSION {
        return Err(Error::invalid(
            field("version"),
            format!(
                "expected at most {QUEUE_FORMAT_VERSION}, got {} (written by a newer build)",
                entry.version
            ),
        ));
    }
    parse_time(&field("found_at"), &entry.found_at)?;
    if entry.findings.is_empty() {
        return Err(Error::invalid(
            field("findings"),
            "expected at least one finding, got none",
        ));
    }
    if let Some(evidence) = &entry.evidence {
        evidence
            .item_id
            .parse::<ItemId>()
            .map_err(|e| Error::invalid(field("evidence.item_id"), e.to_string()))?;
        if evidence.sha256 != entry.hashes.sha256 {
            return Err(Error::invalid(
                field("evidence.sha256"),
                format!(
                    "expected the entry's sha256 {}, got {}",
                    entry.hashes.sha256, evidence.sha256
                ),
            ));
        }
    }
    Ok(())
}

impl Store {
    /// How many cases still await review or a report (new, in review or
    /// confirmed): the gateway's open-cases gauge.
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_open_cases(&self) -> Result<u64> {
        retry!(self, "count_open_cases", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_one(
                    "SELECT COUNT(*) AS n FROM cases WHERE status IN ('new', 'in_review', 'confirmed')",
                    args![],
                )
                .await?;
            Ok(row.i64("n")?.max(0) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        let loc = |url: Option<&str>| SampleLocation {
            shard: "shard-00001.tar".to_owned(),
            url: url.map(str::to_owned),
            ..SampleLocation::default()
        };
        assert_eq!(
            Subject::dataset(&loc(Some("https://User:pw@Example.COM:8443/a/b.jpg?x"))).key,
            "source:example.com"
        );
        assert_eq!(
            Subject::dataset(&loc(Some("http://[::1]:80/x"))).key,
            "source:::1"
        );
        assert_eq!(Subject::dataset(&loc(None)).key, "shard:shard-00001.tar");
        assert_eq!(Subject::end_user("acme", Some("u1")).key, "user:acme/u1");
        assert_eq!(Subject::end_user("acme", None).key, "tenant:acme");
    }

    #[test]
    fn case_ids_parse_with_or_without_hash() {
        assert_eq!("#12".parse::<CaseId>().unwrap(), CaseId(12));
        assert_eq!("12".parse::<CaseId>().unwrap(), CaseId(12));
        assert!("0".parse::<CaseId>().is_err());
        assert!("x".parse::<CaseId>().is_err());
    }

    #[test]
    fn only_model_output_defaults_to_generative_ai() {
        for origin in FileOrigin::ALL {
            assert_eq!(
                origin.generative_ai_default(),
                *origin == FileOrigin::ModelOutput
            );
        }
    }
}
