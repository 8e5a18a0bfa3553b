//! Each end user's conversation-risk record: the engine's `AccountRisk`
//! (scores and times, never text) kept as JSON, so that risk built up over
//! a user's conversations survives restarts and is shared by replicas.
//!
//! Not audited: it changes on every checked request and records no
//! decision; the decisions it leads to are incidents and strikes, which are.

use crate::{
    Store,
    db::args,
    error::{Error, Result},
    required,
};

impl Store {
    /// An end user's conversation-risk record, if one was saved.
    ///
    /// # Errors
    /// Database errors; [`Error::Corrupt`] for a record that is not JSON.
    pub async fn account_risk(
        &self,
        tenant: &str,
        end_user: &str,
    ) -> Result<Option<serde_json::Value>> {
        retry!(self, "account_risk", async {
            let mut tx = self.pool().begin_read().await?;
            let row = tx
                .fetch_optional(
                    "SELECT state FROM account_risk WHERE tenant = $1 AND end_user = $2",
                    args![tenant, end_user],
                )
                .await?;
            row.map(|row| row.json::<serde_json::Value>("state"))
                .transpose()
        })
    }

    /// Saves (replaces) an end user's conversation-risk record.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty tenant or end user; database errors.
    pub async fn set_account_risk(
        &self,
        tenant: &str,
        end_user: &str,
        state: &serde_json::Value,
    ) -> Result<()> {
        let tenant = required("tenant", tenant)?;
        let end_user = required("end_user", end_user)?;
        let text =
            serde_json::to_string(state).map_err(|e| Error::invalid("state", e.to_string()))?;
        retry!(self, "set_account_risk", async {
            let mut tx = self.pool().begin().await?;
            tx.execute(
                "INSERT INTO account_risk (tenant, end_user, state, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, end_user) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                args![tenant.as_str(), end_user.as_str(), text.as_str(), self.now_micros()],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
