//! The running authority: checks passwords, issues and revokes tokens, and tells an
//! actor's open connections to close when they log out.
//!
//! The token key lives in the store (generated on first start), so tokens stay valid across
//! restarts; revoked token ids are stored until they expire.

use super::{Claims, TokenError, TokenKey, new_jti, verify_password};
use crate::sitting::{ActorId, Millis, Role};
use crate::store::{Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown code or wrong password (deliberately not told apart).
    #[error("bad credentials")]
    BadCredentials,
    /// Too many failures for this code recently.
    #[error("too many attempts")]
    TooManyAttempts,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Failed logins per code tolerated within a minute.
const MAX_FAILURES_PER_MINUTE: u32 = 10;

/// A well-formed argon2id hash of a random password: checked against when the code is
/// unknown, so an unknown code costs as much time as a wrong password.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$SqlVijFGiPG+935vDSGEsA";

/// Issues and checks tokens.
pub struct Authority {
    store: Store,
    key: TokenKey,
    ttl: Duration,
    revoked: RwLock<HashSet<String>>,
    checks: Semaphore,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
    kicks: Mutex<HashMap<ActorId, watch::Sender<u64>>>,
}

impl Authority {
    /// Loads (or creates) the token key and the revoked tokens.
    pub async fn load(
        store: Store,
        ttl: Duration,
        concurrency: usize,
        now: Millis,
    ) -> Result<Authority, StoreError> {
        let fresh = TokenKey::generate();
        let stored = store.setting_or_insert("token_key", fresh.bytes()).await?;
        let key = match <[u8; 32]>::try_from(stored.as_slice()) {
            Ok(bytes) => TokenKey::from_bytes(bytes),
            Err(_) => {
                return Err(StoreError::Corrupt {
                    seq: 0,
                    reason: "stored token key is not 32 bytes".into(),
                });
            }
        };
        let revoked = store.revoked_tokens(now).await?.into_iter().collect();
        Ok(Authority {
            store,
            key,
            ttl,
            revoked: RwLock::new(revoked),
            checks: Semaphore::new(concurrency.max(1)),
            failures: Mutex::new(HashMap::new()),
            kicks: Mutex::new(HashMap::new()),
        })
    }

    /// Checks a code and password; returns a signed token and its claims.
    pub async fn login(
        &self,
        code: &str,
        password: &str,
        roles: Vec<Role>,
        now: Millis,
    ) -> Result<(String, Claims), LoginError> {
        if self.recent_failures(code) >= MAX_FAILURES_PER_MINUTE {
            return Err(LoginError::TooManyAttempts);
        }
        let actor = ActorId::new(code);
        let phc = self.store.credential(&actor).await?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_PHC.to_owned());
        let password = password.to_owned();
        let ok = {
            let _permit = self.checks.acquire().await.ok();
            tokio::task::spawn_blocking(move || verify_password(&password, &phc))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(false)
        };
        if !(ok && known) {
            self.note_failure(code);
            return Err(LoginError::BadCredentials);
        }
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: actor,
            roles,
            iat: now,
            exp: Millis(now.0.saturating_add(ttl_ms)),
            jti: new_jti(),
        };
        Ok((self.key.sign(&claims), claims))
    }

    fn recent_failures(&self, code: &str) -> u32 {
        let Ok(map) = self.failures.lock() else {
            return 0;
        };
        match map.get(code) {
            Some((since, n)) if since.elapsed() < Duration::from_secs(60) => *n,
            _ => 0,
        }
    }

    fn note_failure(&self, code: &str) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                map.retain(|_, (since, _)| since.elapsed() < Duration::from_secs(60));
            }
            let entry = map.entry(code.to_owned()).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= Duration::from_secs(60) {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
        }
    }

    /// Checks a token: signature, expiry, revocation.
    pub fn verify(&self, token: &str, now: Millis) -> Result<Claims, TokenError> {
        let claims = self.key.verify(token, now)?;
        let revoked = self
            .revoked
            .read()
            .map(|r| r.contains(&claims.jti))
            .unwrap_or(true);
        if revoked {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Revokes a token and closes its actor's connections.
    pub async fn logout(&self, claims: &Claims) -> Result<(), StoreError> {
        self.store.revoke_token(&claims.jti, claims.exp).await?;
        if let Ok(mut r) = self.revoked.write() {
            r.insert(claims.jti.clone());
        }
        if let Ok(kicks) = self.kicks.lock()
            && let Some(tx) = kicks.get(&claims.sub)
        {
            tx.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// A signal that changes when the actor logs out.
    pub fn kicked(&self, actor: &ActorId) -> watch::Receiver<u64> {
        match self.kicks.lock() {
            Ok(mut kicks) => kicks
                .entry(actor.clone())
                .or_insert_with(|| watch::channel(0).0)
                .subscribe(),
            Err(_) => watch::channel(0).1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_hash_for_unknown_codes_is_valid_and_matches_nothing_guessable() {
        for guess in ["", "demo", "password", "x"] {
            assert_eq!(verify_password(guess, DUMMY_PHC).ok(), Some(false));
        }
    }
}
