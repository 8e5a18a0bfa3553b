//! The append-only, hash-chained audit log.
//!
//! Each row carries `hash = SHA-256(domain, seq, at, actor, action, subject,
//! reason, detail, prev_hash)` over length-prefixed fields, where `prev_hash`
//! is the previous row's hash (64 zeros for row 1). Rows are numbered 1, 2,
//! 3, ... without gaps, and the `audit_head` row holds the last seq and hash,
//! updated in the same transaction as every append.
//!
//! [`Store::verify_audit`] walks the chain and reports the first bad row:
//! - an edited row (any column) fails its hash, or, if the attacker also
//!   recomputed that hash, breaks the next row's `prev_hash` link;
//! - a deleted row leaves a gap in the numbering and a broken link;
//! - reordered rows fail their hashes (the seq is hashed) and links;
//! - rows cut off the end disagree with the head row;
//! - appended rows that bypassed the store disagree with the head row.
//!
//! What it cannot detect on its own: someone with write access who rewrites
//! the chain from some row onward *and* recomputes every later hash *and*
//! the head (there is no secret in the hash). To catch that, record the head
//! elsewhere now and then (`childsafe audit head`, e.g. into a ticket or a
//! write-once bucket) and check it later with
//! `childsafe audit verify --checkpoint SEQ:HASH`: a rewritten history no
//! longer has that hash at that seq. Triggers refuse UPDATE and DELETE on
//! the table, which stops accidents, not an administrator.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    Store,
    clock::from_micros,
    db::{Backend, Tx, args},
    error::{Error, Result},
};

/// The `prev_hash` of row 1.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit log row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who: a reviewer, an admin token name, or a component ("gateway", "scan-import").
    pub actor: String,
    /// What, as `area.verb`, e.g. `case.confirm`.
    pub action: String,
    /// What it was done to, e.g. `case:12`, `evidence:<id>`.
    pub subject: String,
    /// Why, when a person decided.
    pub reason: Option<String>,
    /// Structured detail (ids, states, hashes; never content).
    pub detail: serde_json::Value,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// The chain head: the last row's seq and hash. Seq 0 is the empty chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditHead {
    /// The last row's seq.
    pub seq: i64,
    /// The last row's hash.
    pub hash: String,
}

impl fmt::Display for AuditHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for AuditHead {
    type Err = Error;

    /// Parses `SEQ:HASH`, as printed by `childsafe audit head`.
    fn from_str(s: &str) -> Result<AuditHead> {
        let bad = || {
            Error::invalid(
                "checkpoint",
                format!("expected SEQ:HASH (64 hex digits), got {s:?}"),
            )
        };
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq = seq.parse::<i64>().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(AuditHead {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// The first thing wrong with the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// The row where the chain first goes wrong (for a truncation, the first
    /// missing row).
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit row {}: {}", self.seq, self.reason)
    }
}

/// The result of [`Store::verify_audit`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Rows read.
    pub rows: u64,
    /// The head as recorded in the database.
    pub head: AuditHead,
    /// The first problem, or `None` when the chain is intact.
    pub problem: Option<AuditProblem>,
}

impl AuditReport {
    /// True when the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// The fields that go into a new row.
pub(crate) struct NewAudit<'a> {
    pub(crate) actor: &'a str,
    pub(crate) action: &'a str,
    pub(crate) subject: String,
    pub(crate) reason: Option<&'a str>,
    pub(crate) detail: serde_json::Value,
}

/// Length-prefixed, so no two different rows hash the same bytes.
fn push(hasher: &mut Sha256, field: &[u8]) {
    hasher.update((field.len() as u64).to_le_bytes());
    hasher.update(field);
}

#[allow(clippy::too_many_arguments)]
fn row_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    reason: Option<&str>,
    detail: &str,
    prev_hash: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"childsafe audit v1\0");
    push(&mut hasher, seq.to_string().as_bytes());
    push(&mut hasher, at.to_string().as_bytes());
    push(&mut hasher, actor.as_bytes());
    push(&mut hasher, action.as_bytes());
    push(&mut hasher, subject.as_bytes());
    match reason {
        None => hasher.update([0u8]),
        Some(reason) => {
            hasher.update([1u8]);
            push(&mut hasher, reason.as_bytes());
        }
    }
    push(&mut hasher, detail.as_bytes());
    push(&mut hasher, prev_hash.as_bytes());
    hex::encode(hasher.finalize())
}

/// Takes the audit head lock. On PostgreSQL this serialises every audited
/// transaction (row lock on `audit_head`); on SQLite, `BEGIN IMMEDIATE` has
/// already serialised all writers. Called first in every audited
/// transaction, so the rest of it runs without racing another audited write.
pub(crate) async fn lock(tx: &mut Tx) -> Result<AuditHead> {
    let sql = match tx.backend() {
        Backend::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
        Backend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
    };
    let row = tx.fetch_one(sql, args![]).await?;
    Ok(AuditHead {
        seq: row.i64("seq")?,
        hash: row.text("hash")?,
    })
}

/// Appends one row inside `tx` (which must have called [`lock`]). Returns its seq.
pub(crate) async fn append(tx: &mut Tx, at: i64, entry: NewAudit<'_>) -> Result<i64> {
    let head = lock(tx).await?;
    let seq = head.seq + 1;
    let detail = serde_json::to_string(&entry.detail)
        .map_err(|e| Error::invalid("audit detail", e.to_string()))?;
    let hash = row_hash(
        seq,
        at,
        entry.actor,
        entry.action,
        &entry.subject,
        entry.reason,
        &detail,
        &head.hash,
    );
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, action, subject, reason, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            seq,
            at,
            entry.actor,
            entry.action,
            entry.subject,
            entry.reason,
            detail,
            head.hash,
            hash.as_str()
        ],
    )
    .await?;
    tx.execute(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        args![seq, hash],
    )
    .await?;
    Ok(seq)
}

/// Rows read per query while verifying.
const PAGE: i64 = 1000;

impl Store {
    /// Appends an entry for something done outside the store's own
    /// operations (e.g. a vault key rotation, a configuration reload).
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::Db`].
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        reason: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<i64> {
        retry!(self, "audit", async {
            let mut tx = self.pool().begin().await?;
            lock(&mut tx).await?;
            let seq = append(
                &mut tx,
                self.now_micros(),
                NewAudit {
                    actor,
                    action,
                    subject: subject.to_owned(),
                    reason,
                    detail: detail.clone(),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    /// Entries with `seq > after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::Db`], [`Error::Corrupt`].
    pub async fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        retry!(self, "audit_entries", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT seq, at, actor, action, subject, reason, detail, prev_hash, hash
                     FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                    args![after, i64::from(limit)],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(AuditEntry {
                        seq: row.i64("seq")?,
                        at: from_micros(row.i64("at")?),
                        actor: row.text("actor")?,
                        action: row.text("action")?,
                        subject: row.text("subject")?,
                        reason: row.opt_text("reason")?,
                        detail: row.json("detail")?,
                        prev_hash: row.text("prev_hash")?,
                        hash: row.text("hash")?,
                    })
                })
                .collect()
        })
    }

    /// The chain head as recorded: print it and keep it elsewhere to detect
    /// a rewritten history later (see the module docs).
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::Db`].
    pub async fn audit_head(&self) -> Result<AuditHead> {
        retry!(self, "audit_head", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_one("SELECT seq, hash FROM audit_head WHERE id = 1", args![])
                .await?;
            Ok(AuditHead {
                seq: row.i64("seq")?,
                hash: row.text("hash")?,
            })
        })
    }

    /// Walks the whole chain in one snapshot and reports the first problem.
    /// With a `checkpoint` (a head recorded earlier), also checks that the
    /// row at that seq still has that hash.
    ///
    /// # Errors
    /// Only for a database that cannot be read; a broken chain is an
    /// [`AuditReport`] with a problem, not an error.
    pub async fn verify_audit(&self, checkpoint: Option<&AuditHead>) -> Result<AuditReport> {
        retry!(self, "verify_audit", self.verify_audit_once(checkpoint))
    }

    async fn verify_audit_once(&self, checkpoint: Option<&AuditHead>) -> Result<AuditReport> {
        let mut tx = self.pool().begin_read().await?;
        let head_row = tx
            .fetch_one("SELECT seq, hash FROM audit_head WHERE id = 1", args![])
            .await?;
        let head = AuditHead {
            seq: head_row.i64("seq")?,
            hash: head_row.text("hash")?,
        };
        let mut rows = 0u64;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS.to_owned();
        let mut checkpoint_seen = checkpoint.is_none_or(|c| c.seq == 0 && c.hash == GENESIS);
        let report = |rows, problem: Option<AuditProblem>| AuditReport {
            rows,
            head: head.clone(),
            problem,
        };
        let mut after = 0i64;
        loop {
            let page = tx
                .fetch_all(
                    "SELECT seq, at, actor, action, subject, reason, detail, prev_hash, hash
                     FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                    args![after, PAGE],
                )
                .await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                rows += 1;
                let seq = row.i64("seq")?;
                after = seq;
                let problem = |reason: String| AuditProblem { seq, reason };
                if seq != expected_seq {
                    let reason = if seq > expected_seq {
                        format!("rows {expected_seq}..{} are missing (deleted)", seq - 1)
                    } else {
                        "out of order".to_owned()
                    };
                    return Ok(report(
                        rows,
                        Some(AuditProblem {
                            seq: expected_seq,
                            reason,
                        }),
                    ));
                }
                let stored_prev = row.text("prev_hash")?;
                if stored_prev != prev_hash {
                    return Ok(report(
                        rows,
                        Some(problem(
                            "does not link to the previous row (a row before it was edited, deleted or reordered)"
                                .to_owned(),
                        )),
                    ));
                }
                let hash = row_hash(
                    seq,
                    row.i64("at")?,
                    &row.text("actor")?,
                    &row.text("action")?,
                    &row.text("subject")?,
                    row.opt_text("reason")?.as_deref(),
                    &row.text("detail")?,
                    &stored_prev,
                );
                let stored_hash = row.text("hash")?;
                if hash != stored_hash {
                    return Ok(report(
                        rows,
                        Some(problem(
                            "content does not match its hash (edited)".to_owned(),
                        )),
                    ));
                }
                if let Some(c) = checkpoint
                    && c.seq == seq
                {
                    if c.hash != stored_hash {
                        return Ok(report(
                            rows,
                            Some(problem(format!(
                                "checkpoint hash {} does not match: history up to here was rewritten",
                                c.hash
                            ))),
                        ));
                    }
                    checkpoint_seen = true;
                }
                prev_hash = stored_hash;
                expected_seq += 1;
            }
        }
        let last = expected_seq - 1;
        if head.seq > last {
            return Ok(report(
                rows,
                Some(AuditProblem {
                    seq: last + 1,
                    reason: format!(
                        "rows {}..{} are missing (truncated; the head is at {})",
                        last + 1,
                        head.seq,
                        head.seq
                    ),
                }),
            ));
        }
        if head.seq < last || head.hash != prev_hash {
            return Ok(report(
                rows,
                Some(AuditProblem {
                    seq: last.max(1),
                    reason: format!(
                        "the head ({}) does not match the last row ({last}:{prev_hash}): rows were added or changed behind the store",
                        head
                    ),
                }),
            ));
        }
        if !checkpoint_seen && let Some(c) = checkpoint {
            return Ok(report(
                rows,
                Some(AuditProblem {
                    seq: c.seq,
                    reason: format!(
                        "checkpoint row {} is beyond the end of the log ({last})",
                        c.seq
                    ),
                }),
            ));
        }
        Ok(report(rows, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field() {
        let base = row_hash(1, 10, "a", "b", "c", Some("r"), "{}", GENESIS);
        let variants = [
            row_hash(2, 10, "a", "b", "c", Some("r"), "{}", GENESIS),
            row_hash(1, 11, "a", "b", "c", Some("r"), "{}", GENESIS),
            row_hash(1, 10, "x", "b", "c", Some("r"), "{}", GENESIS),
            row_hash(1, 10, "a", "x", "c", Some("r"), "{}", GENESIS),
            row_hash(1, 10, "a", "b", "x", Some("r"), "{}", GENESIS),
            row_hash(1, 10, "a", "b", "c", None, "{}", GENESIS),
            row_hash(1, 10, "a", "b", "c", Some(""), "{}", GENESIS),
            row_hash(1, 10, "a", "b", "c", Some("r"), "{ }", GENESIS),
            row_hash(1, 10, "a", "b", "c", Some("r"), "{}", &"1".repeat(64)),
            // Moving a byte between adjacent fields changes the hash too.
            row_hash(1, 10, "ab", "", "c", Some("r"), "{}", GENESIS),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }

    #[test]
    fn checkpoint_parses_what_head_prints() {
        let head = AuditHead {
            seq: 42,
            hash: "ab".repeat(32),
        };
        assert_eq!(head.to_string().parse::<AuditHead>().unwrap(), head);
        assert!("42".parse::<AuditHead>().is_err());
        assert!("x:abc".parse::<AuditHead>().is_err());
    }
}
