//! Evidence: the store's side of the vault. Metadata of every preserved file
//! (hashes, retention, legal hold, destruction), and every access to its
//! content, logged with a purpose and a reason before the bytes are read.
//!
//! Retention (18 U.S.C. 2258A(h)): an item has no retention clock while its
//! case is open; when the report that includes it is finished, it is kept
//! until `finished_at + retention` (one year by default); when its case is
//! dismissed, until `dismissed_at + dismissed_retention`. A purge destroys
//! exactly the items whose clock has run out, that are not on legal hold and
//! that no pending case (new, in review, confirmed) still refers to, and
//! records each destruction in the audit log.
//!
//! `fileViewedByEsp` must be true only when a person actually viewed the file
//! (API-NOTES.md §3, *United States v. Wilson*): only an access with
//! [`AccessPurpose::View`] counts; uploading to NCMEC, exporting and
//! verifying do not.

use std::collections::BTreeSet;

use childsafe_core::{ContentHashes, EvidenceRef, Md5, Sha256};
use childsafe_vault::{ItemId, ItemMeta, Opened, Vault};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    Store, audit,
    cases::{CaseId, stable_enum},
    clock::{from_micros, to_micros},
    db::{Row, Tx, args},
    error::{Error, Result},
    required,
};

stable_enum!(
    /// Why content is being read from the vault.
    AccessPurpose {
        /// A person looks at it (review). Makes `fileViewedByEsp` true.
        View => "view",
        /// It is sent to NCMEC with a report.
        Upload => "upload",
        /// It is handed to another process or party (e.g. a law enforcement
        /// request), not looked at by us.
        Export => "export",
        /// Its integrity is checked; the content is discarded unseen.
        Verify => "verify",
    }
);

/// Metadata of one preserved file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceItem {
    /// The vault item id.
    pub id: ItemId,
    /// SHA-256 of the original bytes.
    pub sha256: Sha256,
    /// MD5 of the original bytes.
    pub md5: Option<Md5>,
    /// Size in bytes, when known (items registered from a queue learn it on
    /// first verification).
    pub size: Option<u64>,
    /// When the vault stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the store learned of it.
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    /// Kept at least until then; `None` while no retention clock runs.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retain_until: Option<OffsetDateTime>,
    /// On legal hold: never purged while held.
    pub legal_hold: bool,
    /// Why it is held.
    pub hold_reason: Option<String>,
    /// When it was destroyed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub destroyed_at: Option<OffsetDateTime>,
    /// Whether a person has viewed it (NCMEC `fileViewedByEsp`).
    pub viewed: bool,
}

/// One logged access to an item's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceAccess {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub actor: String,
    /// For what.
    pub purpose: AccessPurpose,
    /// Why.
    pub reason: String,
}

/// What [`Store::purge_expired_evidence`] did.
#[derive(Debug, Default, Serialize)]
pub struct PurgeReport {
    /// Items destroyed by this purge (retention run out, not held).
    pub destroyed: Vec<ItemId>,
    /// Items marked destroyed earlier whose files were still in the vault
    /// (a purge interrupted after marking) and are now removed.
    pub swept: Vec<ItemId>,
    /// Items whose file could not be removed, with why; they are marked
    /// destroyed and the next purge retries the removal.
    pub failed: Vec<(ItemId, String)>,
}

fn item_from_row(row: &Row, viewed: bool) -> Result<EvidenceItem> {
    Ok(EvidenceItem {
        id: row.parse("id")?,
        sha256: row.parse("sha256")?,
        md5: row.opt_parse("md5")?,
        size: row.opt_i64("size")?.map(|s| s.max(0) as u64),
        created_at: from_micros(row.i64("created_at")?),
        registered_at: from_micros(row.i64("registered_at")?),
        retain_until: row.opt_i64("retain_until")?.map(from_micros),
        legal_hold: row.bool("legal_hold")?,
        hold_reason: row.opt_text("hold_reason")?,
        destroyed_at: row.opt_i64("destroyed_at")?.map(from_micros),
        viewed,
    })
}

async fn viewed(tx: &mut Tx, id: ItemId) -> Result<bool> {
    Ok(tx
        .fetch_optional(
            "SELECT 1 AS one FROM vault_access WHERE item_id = $1 AND purpose = 'view' LIMIT 1",
            args![id.to_string()],
        )
        .await?
        .is_some())
}

pub(crate) async fn load(tx: &mut Tx, id: ItemId) -> Result<EvidenceItem> {
    let row = tx
        .fetch_optional(
            "SELECT id, sha256, md5, size, created_at, registered_at, retain_until, legal_hold, hold_reason, destroyed_at
             FROM vault_items WHERE id = $1",
            args![id.to_string()],
        )
        .await?
        .ok_or_else(|| Error::not_found("evidence", id))?;
    let viewed = viewed(tx, id).await?;
    item_from_row(&row, viewed)
}

/// Inserts an item's metadata unless present. Returns whether it was new.
/// The caller holds the audit lock.
async fn insert(
    tx: &mut Tx,
    now: i64,
    actor: &str,
    reason: &str,
    meta: &RegisteredMeta,
) -> Result<bool> {
    let inserted = tx
        .execute(
            "INSERT INTO vault_items (id, sha256, md5, size, key_id, created_at, registered_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            args![
                meta.id.to_string(),
                meta.sha256.to_string(),
                meta.md5.map(|m| m.to_string()),
                meta.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                meta.key_id.clone(),
                meta.created_at,
                now
            ],
        )
        .await?
        == 1;
    if inserted {
        audit::append(
            tx,
            now,
            audit::NewAudit {
                actor,
                action: "evidence.register",
                subject: format!("evidence:{}", meta.id),
                reason: Some(reason),
                detail: json!({ "sha256": meta.sha256.to_string(), "size": meta.size }),
            },
        )
        .await?;
    } else {
        let row = tx
            .fetch_one(
                "SELECT sha256 FROM vault_items WHERE id = $1",
                args![meta.id.to_string()],
            )
            .await?;
        let recorded: Sha256 = row.parse("sha256")?;
        if recorded != meta.sha256 {
            return Err(Error::invalid(
                format!("evidence {}", meta.id),
                format!(
                    "registered with sha256 {recorded}, now claimed as {}",
                    meta.sha256
                ),
            ));
        }
    }
    Ok(inserted)
}

struct RegisteredMeta {
    id: ItemId,
    sha256: Sha256,
    md5: Option<Md5>,
    size: Option<u64>,
    key_id: Option<String>,
    created_at: i64,
}

impl From<&ItemMeta> for RegisteredMeta {
    fn from(meta: &ItemMeta) -> RegisteredMeta {
        RegisteredMeta {
            id: meta.id,
            sha256: meta.sha256,
            md5: Some(meta.md5),
            size: Some(meta.size),
            key_id: Some(meta.key_id.to_string()),
            created_at: to_micros(meta.created_at),
        }
    }
}

/// Registers an item the scanner preserved, from its queue entry.
pub(crate) async fn register_from_queue(
    tx: &mut Tx,
    now: i64,
    actor: &str,
    evidence: &EvidenceRef,
    hashes: &ContentHashes,
    found_at: i64,
) -> Result<()> {
    let meta = RegisteredMeta {
        id: evidence.item_id.parse()?,
        sha256: evidence.sha256,
        md5: Some(hashes.md5),
        size: None,
        key_id: None,
        created_at: found_at,
    };
    insert(tx, now, actor, "preserved by the dataset scanner", &meta).await?;
    Ok(())
}

/// Starts the retention clock of every item of a case: `until` if it has no
/// clock yet, or (when `extend`) the later of its clock and `until`.
pub(crate) async fn start_retention(
    tx: &mut Tx,
    case_id: CaseId,
    until: i64,
    extend: bool,
) -> Result<()> {
    let sql = if extend {
        "UPDATE vault_items SET retain_until = CASE WHEN retain_until IS NULL OR retain_until < $1 THEN $1 ELSE retain_until END
         WHERE destroyed_at IS NULL AND id IN (SELECT vault_item FROM case_items WHERE case_id = $2 AND vault_item IS NOT NULL)"
    } else {
        "UPDATE vault_items SET retain_until = $1
         WHERE destroyed_at IS NULL AND retain_until IS NULL
           AND id IN (SELECT vault_item FROM case_items WHERE case_id = $2 AND vault_item IS NOT NULL)"
    };
    tx.execute(sql, args![until, case_id.0]).await?;
    Ok(())
}

/// Runs blocking vault work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> childsafe_vault::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::invalid("vault", format!("vault task failed: {e}")))?
        .map_err(Error::from)
}

impl Store {
    /// Puts content into the vault and records it, in that order: a crash in
    /// between leaves an encrypted item the store does not know (found by
    /// `childsafe vault verify`), never a record without its item.
    ///
    /// # Errors
    /// Vault and database errors.
    pub async fn preserve_evidence(
        &self,
        vault: &Vault,
        content: &[u8],
        actor: &str,
        reason: &str,
    ) -> Result<EvidenceItem> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        let created_at = self.now();
        let vault_for_put = vault.clone();
        // A copy for the blocking task, wiped when it is dropped.
        let content = zeroize::Zeroizing::new(content.to_vec());
        let meta = blocking(move || vault_for_put.put(&content, created_at)).await?;
        self.register_evidence(&meta, &actor, &reason).await
    }

    /// Records an item already in the vault (e.g. put by the scanner).
    /// Idempotent; refuses an id already registered with another hash.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a hash conflict; database errors.
    pub async fn register_evidence(
        &self,
        meta: &ItemMeta,
        actor: &str,
        reason: &str,
    ) -> Result<EvidenceItem> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        let registered = RegisteredMeta::from(meta);
        retry!(self, "register_evidence", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            insert(&mut tx, self.now_micros(), &actor, &reason, &registered).await?;
            let item = load(&mut tx, meta.id).await?;
            tx.commit().await?;
            Ok(item)
        })
    }

    /// Reads an item's content for a stated purpose and reason. The access is
    /// recorded (and audited) and committed *before* the content is read, so
    /// there is no read without its record; a failed read leaves a record of
    /// the attempt. Destroyed items are refused.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown item, [`Error::InvalidTransition`]
    /// for a destroyed one, [`Error::Invalid`] for an empty reason, vault errors.
    pub async fn open_evidence(
        &self,
        vault: &Vault,
        id: ItemId,
        actor: &str,
        purpose: AccessPurpose,
        reason: &str,
    ) -> Result<Opened> {
        self.log_access(id, actor, purpose, reason).await?;
        let vault = vault.clone();
        let opened = blocking(move || vault.get(id)).await?;
        self.check_against_record(id, &opened.meta).await?;
        Ok(opened)
    }

    /// Checks an item's integrity (decrypt in memory, tags and hashes) and
    /// that it matches the store's record, logging the access as `verify`.
    /// Fills in the size and key id if the record lacked them.
    ///
    /// # Errors
    /// As [`Store::open_evidence`]; [`Error::Invalid`] if the vault's hashes
    /// disagree with the record.
    pub async fn verify_evidence(
        &self,
        vault: &Vault,
        id: ItemId,
        actor: &str,
    ) -> Result<EvidenceItem> {
        self.log_access(id, actor, AccessPurpose::Verify, "integrity check")
            .await?;
        let vault = vault.clone();
        let meta = blocking(move || vault.verify(id)).await?;
        self.check_against_record(id, &meta).await?;
        let size = i64::try_from(meta.size).unwrap_or(i64::MAX);
        retry!(self, "verify_evidence", async {
            let mut tx = self.pool().begin().await?;
            tx.execute(
                "UPDATE vault_items SET size = $1, key_id = $2, md5 = COALESCE(md5, $3) WHERE id = $4",
                args![size, meta.key_id.to_string(), meta.md5.to_string(), id.to_string()],
            )
            .await?;
            let item = load(&mut tx, id).await?;
            tx.commit().await?;
            Ok(item)
        })
    }

    async fn check_against_record(&self, id: ItemId, meta: &ItemMeta) -> Result<()> {
        let item = self.evidence_item(id).await?;
        let md5_ok = item.md5.is_none_or(|m| m == meta.md5);
        let size_ok = item.size.is_none_or(|s| s == meta.size);
        if item.sha256 != meta.sha256 || !md5_ok || !size_ok {
            return Err(Error::invalid(
                format!("evidence {id}"),
                format!(
                    "vault item (sha256 {}) does not match the record (sha256 {})",
                    meta.sha256, item.sha256
                ),
            ));
        }
        Ok(())
    }

    async fn log_access(
        &self,
        id: ItemId,
        actor: &str,
        purpose: AccessPurpose,
        reason: &str,
    ) -> Result<()> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "log_access", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let item = load(&mut tx, id).await?;
            if item.destroyed_at.is_some() {
                return Err(Error::InvalidTransition {
                    what: "evidence",
                    id: id.to_string(),
                    action: format!("{purpose}"),
                    state: "destroyed".to_owned(),
                });
            }
            tx.execute(
                "INSERT INTO vault_access (item_id, at, actor, purpose, reason) VALUES ($1, $2, $3, $4, $5)",
                args![id.to_string(), now, actor.as_str(), purpose.as_str(), reason.as_str()],
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: &format!("evidence.{purpose}"),
                    subject: format!("evidence:{id}"),
                    reason: Some(&reason),
                    detail: json!({ "sha256": item.sha256.to_string() }),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// One item's metadata.
    ///
    /// # Errors
    /// [`Error::NotFound`], database errors.
    pub async fn evidence_item(&self, id: ItemId) -> Result<EvidenceItem> {
        retry!(self, "evidence_item", async {
            let mut tx = self.pool().begin_read().await?;
            load(&mut tx, id).await
        })
    }

    /// Whether a person has viewed the item: NCMEC's `fileViewedByEsp`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn file_viewed_by_esp(&self, id: ItemId) -> Result<bool> {
        retry!(self, "file_viewed_by_esp", async {
            let mut tx = self.pool().begin_read().await?;
            viewed(&mut tx, id).await
        })
    }

    /// Every item, oldest first; destroyed ones only when asked.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_evidence(&self, include_destroyed: bool) -> Result<Vec<EvidenceItem>> {
        retry!(self, "list_evidence", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT v.id, v.sha256, v.md5, v.size, v.created_at, v.registered_at, v.retain_until,
                            v.legal_hold, v.hold_reason, v.destroyed_at,
                            EXISTS (SELECT 1 FROM vault_access a WHERE a.item_id = v.id AND a.purpose = 'view') AS viewed
                     FROM vault_items v WHERE $1 OR v.destroyed_at IS NULL ORDER BY v.registered_at, v.id",
                    args![include_destroyed],
                )
                .await?;
            rows.iter()
                .map(|row| item_from_row(row, row.bool("viewed")?))
                .collect()
        })
    }

    /// Every logged access to an item, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn evidence_access(&self, id: ItemId) -> Result<Vec<EvidenceAccess>> {
        retry!(self, "evidence_access", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT at, actor, purpose, reason FROM vault_access WHERE item_id = $1 ORDER BY id",
                    args![id.to_string()],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(EvidenceAccess {
                        at: from_micros(row.i64("at")?),
                        actor: row.text("actor")?,
                        purpose: row.parse("purpose")?,
                        reason: row.text("reason")?,
                    })
                })
                .collect()
        })
    }

    /// Puts an item on legal hold (never purged while held) or releases it.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] for a destroyed item.
    pub async fn set_legal_hold(
        &self,
        id: ItemId,
        hold: bool,
        actor: &str,
        reason: &str,
    ) -> Result<EvidenceItem> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "set_legal_hold", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let item = load(&mut tx, id).await?;
            if item.destroyed_at.is_some() {
                return Err(Error::InvalidTransition {
                    what: "evidence",
                    id: id.to_string(),
                    action: if hold { "hold" } else { "release" }.to_owned(),
                    state: "destroyed".to_owned(),
                });
            }
            tx.execute(
                "UPDATE vault_items SET legal_hold = $1, hold_reason = $2 WHERE id = $3",
                args![hold, hold.then_some(reason.as_str()), id.to_string()],
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: if hold {
                        "evidence.hold"
                    } else {
                        "evidence.release"
                    },
                    subject: format!("evidence:{id}"),
                    reason: Some(&reason),
                    detail: json!({ "was_held": item.legal_hold }),
                },
            )
            .await?;
            let item = load(&mut tx, id).await?;
            tx.commit().await?;
            Ok(item)
        })
    }

    /// Destroys every item whose retention has run out (by the store's
    /// clock), that is not on legal hold and that no pending case refers to.
    /// Each item is first marked destroyed and audited (one transaction,
    /// re-checking the conditions, so a hold placed meanwhile wins), then
    /// removed from the vault. Items marked earlier but still in the vault
    /// are removed too, so an interrupted purge finishes on the next run.
    ///
    /// # Errors
    /// Database errors, or listing the vault failing; per-item vault
    /// failures are in [`PurgeReport::failed`].
    pub async fn purge_expired_evidence(&self, vault: &Vault, actor: &str) -> Result<PurgeReport> {
        let actor = required("actor", actor)?;
        let mut report = PurgeReport::default();
        let now = self.now_micros();
        let candidates: Vec<ItemId> = retry!(self, "purge candidates", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                    .fetch_all(
                        "SELECT v.id FROM vault_items v
                         WHERE v.destroyed_at IS NULL AND v.legal_hold = FALSE
                           AND v.retain_until IS NOT NULL AND v.retain_until <= $1
                           AND NOT EXISTS (
                               SELECT 1 FROM case_items ci JOIN cases c ON c.id = ci.case_id
                               WHERE ci.vault_item = v.id AND c.status IN ('new', 'in_review', 'confirmed'))
                         ORDER BY v.id",
                        args![now],
                    )
                    .await?;
            rows.iter().map(|row| row.parse::<ItemId>("id")).collect()
        })?;
        for id in candidates {
            let marked = retry!(self, "purge mark", async {
                let mut tx = self.pool().begin().await?;
                audit::lock(&mut tx).await?;
                let n = tx
                        .execute(
                            "UPDATE vault_items SET destroyed_at = $1, destroyed_by = $2, destroy_reason = 'retention expired'
                             WHERE id = $3 AND destroyed_at IS NULL AND legal_hold = FALSE
                               AND retain_until IS NOT NULL AND retain_until <= $4",
                            args![now, actor.as_str(), id.to_string(), now],
                        )
                        .await?;
                if n == 1 {
                    let item = load(&mut tx, id).await?;
                    audit::append(
                        &mut tx,
                        now,
                        audit::NewAudit {
                            actor: &actor,
                            action: "evidence.destroy",
                            subject: format!("evidence:{id}"),
                            reason: Some("retention expired"),
                            detail: json!({
                                "sha256": item.sha256.to_string(),
                                "retain_until": item.retain_until.map(to_micros),
                            }),
                        },
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(n == 1)
            })?;
            if marked {
                report.destroyed.push(id);
            }
        }
        // Remove the files of every item marked destroyed (this purge's and
        // any an interrupted purge left behind).
        let listing_vault = vault.clone();
        let in_vault: BTreeSet<ItemId> = blocking(move || listing_vault.list())
            .await?
            .into_iter()
            .collect();
        let destroyed: BTreeSet<ItemId> = retry!(self, "purge destroyed", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id FROM vault_items WHERE destroyed_at IS NOT NULL",
                    args![],
                )
                .await?;
            rows.iter().map(|row| row.parse::<ItemId>("id")).collect()
        })?;
        let just_marked: BTreeSet<ItemId> = report.destroyed.iter().copied().collect();
        for id in destroyed.intersection(&in_vault).copied() {
            let deleting_vault = vault.clone();
            match blocking(move || deleting_vault.delete(id)).await {
                Ok(_) if just_marked.contains(&id) => {}
                Ok(_) => report.swept.push(id),
                Err(e) => report.failed.push((id, e.to_string())),
            }
        }
        self.audit(
            &actor,
            "evidence.purge",
            "evidence",
            None,
            json!({ "destroyed": report.destroyed.len(), "swept": report.swept.len(), "failed": report.failed.len() }),
        )
        .await?;
        tracing::info!(
            destroyed = report.destroyed.len(),
            swept = report.swept.len(),
            failed = report.failed.len(),
            "evidence purge"
        );
        Ok(report)
    }
}
