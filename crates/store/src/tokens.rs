//! Admin API tokens, stored hashed.
//!
//! A token is `csat_<id>_<secret>`: a 16-hex-digit id, which is stored in
//! the clear and used to find the row, and a 64-hex-digit random secret, of
//! which only the SHA-256 is stored. Verification hashes the presented
//! secret and compares it with the stored hash in constant time. The whole
//! token is returned once, at issue, and never again.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::{
    Store, audit,
    clock::from_micros,
    db::{Row, Tx, args},
    error::{Error, Result},
    random_hex, required,
};

const PREFIX: &str = "csat_";

/// An admin token's record (no secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdminToken {
    /// The token id (the part after `csat_`).
    pub id: String,
    /// What it is for, e.g. "review console", "oncall".
    pub name: String,
    /// When issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who issued it.
    pub created_by: String,
    /// When revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A freshly issued token: the only time the secret is available.
pub struct IssuedToken {
    /// Its record.
    pub token: AdminToken,
    /// The bearer token to hand to its holder.
    pub secret: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn token_from_row(row: &Row) -> Result<AdminToken> {
    Ok(AdminToken {
        id: row.text("id")?,
        name: row.text("name")?,
        created_at: from_micros(row.i64("created_at")?),
        created_by: row.text("created_by")?,
        revoked_at: row.opt_i64("revoked_at")?.map(from_micros),
    })
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

async fn load(tx: &mut Tx, id: &str) -> Result<Option<(AdminToken, String)>> {
    match tx
        .fetch_optional(
            "SELECT id, name, token_hash, created_at, created_by, revoked_at FROM admin_tokens WHERE id = $1",
            args![id],
        )
        .await?
    {
        Some(row) => Ok(Some((token_from_row(&row)?, row.text("token_hash")?))),
        None => Ok(None),
    }
}

impl Store {
    /// Issues a token (audited). The returned secret is shown once.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty name; database errors.
    pub async fn issue_admin_token(&self, name: &str, actor: &str) -> Result<IssuedToken> {
        let name = required("name", name)?;
        let actor = required("actor", actor)?;
        retry!(self, "issue_admin_token", async {
            let id = random_hex(8)?;
            let secret = random_hex(32)?;
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            tx.execute(
                "INSERT INTO admin_tokens (id, name, token_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
                args![id.as_str(), name.as_str(), hash_secret(&secret), now, actor.as_str()],
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "token.issue",
                    subject: format!("token:{id}"),
                    reason: None,
                    detail: json!({ "name": name }),
                },
            )
            .await?;
            let (token, _) = load(&mut tx, &id)
                .await?
                .ok_or_else(|| Error::not_found("admin token", &id))?;
            tx.commit().await?;
            Ok(IssuedToken {
                token,
                secret: format!("{PREFIX}{id}_{secret}"),
            })
        })
    }

    /// The token's record if `presented` is a valid, unrevoked token.
    /// Malformed, unknown, wrong and revoked tokens all give `None`.
    ///
    /// # Errors
    /// Database errors only.
    pub async fn verify_admin_token(&self, presented: &str) -> Result<Option<AdminToken>> {
        let Some((id, secret)) = presented
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let found = retry!(self, "verify_admin_token", async {
            let mut tx = self.pool().begin_read().await?;
            load(&mut tx, id).await
        })?;
        let Some((token, stored)) = found else {
            return Ok(None);
        };
        let presented_hash = hash_secret(secret);
        let equal: bool = presented_hash.as_bytes().ct_eq(stored.as_bytes()).into();
        Ok((equal && token.revoked_at.is_none()).then_some(token))
    }

    /// Revokes a token (audited).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidTransition`] if already revoked.
    pub async fn revoke_admin_token(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<AdminToken> {
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        retry!(self, "revoke_admin_token", async {
            let mut tx = self.pool().begin().await?;
            audit::lock(&mut tx).await?;
            let now = self.now_micros();
            let (token, _) = load(&mut tx, id)
                .await?
                .ok_or_else(|| Error::not_found("admin token", id))?;
            if token.revoked_at.is_some() {
                return Err(Error::InvalidTransition {
                    what: "admin token",
                    id: id.to_owned(),
                    action: "revoke".to_owned(),
                    state: "revoked".to_owned(),
                });
            }
            tx.execute(
                "UPDATE admin_tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3",
                args![now, actor.as_str(), id],
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                audit::NewAudit {
                    actor: &actor,
                    action: "token.revoke",
                    subject: format!("token:{id}"),
                    reason: Some(&reason),
                    detail: json!({ "name": token.name }),
                },
            )
            .await?;
            let (token, _) = load(&mut tx, id)
                .await?
                .ok_or_else(|| Error::not_found("admin token", id))?;
            tx.commit().await?;
            Ok(token)
        })
    }

    /// Every token's record, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
        retry!(self, "list_admin_tokens", async {
            let mut tx = self.pool().begin_read().await?;
            let rows = tx
                .fetch_all(
                    "SELECT id, name, token_hash, created_at, created_by, revoked_at FROM admin_tokens ORDER BY created_at, id",
                    args![],
                )
                .await?;
            rows.iter().map(token_from_row).collect()
        })
    }
}
