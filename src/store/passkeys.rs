//! Passkeys in the store: each account's registered WebAuthn credentials (public key and
//! signature counter, as JSON), added at registration and updated after each use.

use super::{Backend, Store, StoreError};
use crate::sitting::{ActorId, Millis};

/// One registered passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id (base64url), unique across all accounts.
    pub credential_id: String,
    /// Whose it is.
    pub actor: ActorId,
    /// When it was registered.
    pub created_at: Millis,
    /// The credential as the WebAuthn library serializes it.
    pub passkey: String,
}

impl Store {
    /// Adds a passkey; `false` (nothing written) if its credential id is already registered,
    /// to this account or another.
    pub async fn add_passkey(&self, p: &StoredPasskey) -> Result<bool, StoreError> {
        let inserted = with_pool!(self, pool => sqlx::query(
            "INSERT INTO passkeys (credential_id, actor, created_at_ms, passkey) VALUES ($1, $2, $3, $4) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(&p.credential_id)
        .bind(p.actor.as_str())
        .bind(p.created_at.0)
        .bind(&p.passkey)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(inserted == 1)
    }

    /// The passkeys of one account, oldest first.
    pub async fn passkeys_of(&self, actor: &ActorId) -> Result<Vec<StoredPasskey>, StoreError> {
        let rows: Vec<(String, i64, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT credential_id, created_at_ms, passkey FROM passkeys WHERE actor = $1 ORDER BY created_at_ms, credential_id",
        )
        .bind(actor.as_str())
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(credential_id, at, passkey)| StoredPasskey {
                credential_id,
                actor: actor.clone(),
                created_at: Millis(at),
                passkey,
            })
            .collect())
    }

    /// Replaces a stored credential (its counter moved on after a use).
    pub async fn update_passkey(
        &self,
        credential_id: &str,
        passkey: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE passkeys SET passkey = $1 WHERE credential_id = $2",
        )
        .bind(passkey)
        .bind(credential_id)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }
}
