//! Passkeys (WebAuthn, through webauthn-rs): an account registers its authenticators, and a
//! vote that asks for a step-up takes each ballot only with a fresh passkey assertion made
//! for that ballot.
//!
//! A step-up challenge is issued for one purpose (a sitting, a vote, a deputy and a choice)
//! to one account, and may be answered once, within `trust.step_up_secs`. The control plane
//! checks the proof here before the ballot reaches the writer; the writer's rules only learn
//! that it was given ([`crate::sitting::Assurance`]). A proof for another vote, choice,
//! deputy or account is a `step_up_mismatch`; one used already is a `step_up_used`, unless it
//! is the same command sent again (a retry after a lost connection), which the writer then
//! answers with its first outcome.
//!
//! An account that has a passkey adds another only with a step-up of an existing one (the
//! purpose [`Purpose::Enrol`]), so a stolen log-in alone cannot enrol the thief's passkey.
//!
//! Ceremonies under way live in memory only, under one lock (a check is a few signature
//! verifications' work, so two copies of one command can never both pass): a restart drops
//! them, and the user asks again. Each account has at most a few under way.

use crate::sitting::{ActorId, Choice, Code, Millis, Rejection, SittingId, VoteId};
use crate::store::{Store, StoreError, StoredPasskey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

/// Most ceremonies (registrations, or step-up challenges) under way at once.
const MAX_PENDING: usize = 20_000;
/// Most step-up challenges (and registrations) one account has under way; asking for more
/// drops its oldest.
const MAX_PENDING_PER_ACCOUNT: usize = 4;
/// Most passkeys one account may register.
pub const MAX_PER_ACCOUNT: usize = 10;

/// Why a passkey request failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The relying party settings are unusable.
    #[error("the passkey settings are invalid: {0}")]
    Config(String),
    /// The account has no passkey to answer a challenge with.
    #[error("no passkey is registered for this account")]
    NoPasskey,
    /// No such registration under way (never started, another account's, or it ran out).
    #[error("no such passkey registration, or it ran out")]
    UnknownRegistration,
    /// The authenticator's answer did not verify (the detail is logged, not told).
    #[error("the passkey did not verify")]
    Invalid,
    /// Adding a passkey to an account that has one needs a step-up of an existing one.
    #[error("confirm with a passkey this account already has")]
    StepUpNeeded,
    /// That step-up was refused.
    #[error("the passkey confirmation was refused: {}", .0.as_str())]
    StepUp(Code),
    /// The credential is registered already.
    #[error("this passkey is already registered")]
    AlreadyRegistered,
    /// The account has as many passkeys as it may.
    #[error("this account has {MAX_PER_ACCOUNT} passkeys already")]
    TooMany,
    /// Too many ceremonies are under way.
    #[error("too many passkey requests are under way; try again shortly")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a step-up is for: one ballot, entered by the account that asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BallotPurpose {
    /// The sitting.
    pub sitting: SittingId,
    /// The vote.
    pub vote: VoteId,
    /// Whose ballot (the account itself, or the deputy a clerk enters it for).
    pub deputy: ActorId,
    /// The choice.
    pub choice: Choice,
}

/// What a step-up challenge is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// One ballot.
    Ballot(BallotPurpose),
    /// Adding a passkey to an account that has one.
    Enrol,
}

/// The proof a ballot carries: the challenge it answers and the authenticator's assertion.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpProof {
    /// The challenge id, as issued.
    pub challenge: String,
    /// The assertion (`navigator.credentials.get`), in WebAuthn's JSON form.
    pub credential: PublicKeyCredential,
}

impl PartialEq for StepUpProof {
    fn eq(&self, other: &Self) -> bool {
        self.challenge == other.challenge
            && serde_json::to_string(&self.credential).ok()
                == serde_json::to_string(&other.credential).ok()
    }
}

impl Eq for StepUpProof {}

/// A proof that checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Answered now, for the first time.
    Fresh,
    /// The same command sent again with the proof it was first sent with.
    Retry,
}

/// A registered passkey as shown to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasskeyInfo {
    /// The credential id (base64url).
    pub id: String,
    /// When it was registered.
    pub created_at: Millis,
}

struct Registration {
    actor: ActorId,
    state: PasskeyRegistration,
    expires: Millis,
}

struct Challenge {
    actor: ActorId,
    purpose: Purpose,
    state: PasskeyAuthentication,
    expires: Millis,
}

/// A challenge answered: by whom, for what, in which command, with which proof.
struct Used {
    actor: ActorId,
    purpose: Purpose,
    command_id: String,
    proof: [u8; 32],
    expires: Millis,
}

/// Everything under way, under one lock.
#[derive(Default)]
struct Ceremonies {
    registrations: HashMap<String, Registration>,
    challenges: HashMap<String, Challenge>,
    used: HashMap<String, Used>,
}

impl Ceremonies {
    fn prune(&mut self, now: Millis) {
        self.registrations.retain(|_, r| r.expires > now);
        self.challenges.retain(|_, c| c.expires > now);
        self.used.retain(|_, u| u.expires > now);
    }
}

/// The passkey ceremonies of one server.
pub struct Passkeys {
    webauthn: Webauthn,
    store: Store,
    ttl_ms: i64,
    ceremonies: Mutex<Ceremonies>,
}

/// A digest of a proof's assertion, to tell the same proof sent again from another.
fn digest(proof: &StepUpProof) -> [u8; 32] {
    let bytes = serde_json::to_vec(&proof.credential).unwrap_or_default();
    Sha256::digest(bytes).into()
}

/// Drops `actor`'s oldest entries of `map` until it has room for one more.
fn make_room<V>(
    map: &mut HashMap<String, V>,
    actor: &ActorId,
    of: impl Fn(&V) -> (&ActorId, Millis),
) {
    loop {
        let mine: Vec<(String, Millis)> = map
            .iter()
            .filter(|(_, v)| of(v).0 == actor)
            .map(|(k, v)| (k.clone(), of(v).1))
            .collect();
        if mine.len() < MAX_PENDING_PER_ACCOUNT {
            return;
        }
        if let Some((oldest, _)) = mine.into_iter().min_by_key(|(_, expires)| *expires) {
            map.remove(&oldest);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// The WebAuthn user handle of an account: stable, and not the login code itself.
fn user_handle(actor: &ActorId) -> Uuid {
    let digest = Sha256::digest(format!("dienhong passkey user\0{}", actor.as_str()));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// The origins passkeys are accepted from: those given (exactly), or else `https://` of the
/// rp id on any port (and `http://localhost`, a secure context, for a server tried locally).
pub fn origins_for(rp_id: &str, given: &[String]) -> (Vec<String>, bool) {
    if !given.is_empty() {
        return (given.to_vec(), false);
    }
    let mut origins = vec![format!("https://{rp_id}")];
    if rp_id == "localhost" {
        origins.push("http://localhost".to_owned());
    }
    (origins, true)
}

fn decode(stored: &StoredPasskey) -> Option<Passkey> {
    serde_json::from_str(&stored.passkey)
        .inspect_err(|e| {
            tracing::warn!(credential = %stored.credential_id, error = %e, "a stored passkey does not parse; skipped");
        })
        .ok()
}

fn refuse(code: Code, detail: impl Into<String>) -> Rejection {
    Rejection::new(code, detail)
}

impl Passkeys {
    /// Passkeys bound to `rp_id`, accepted from `origins` (any port), with challenges that
    /// may be answered for `ttl_ms`.
    pub fn new(
        store: Store,
        rp_id: &str,
        origins: &[String],
        ttl_ms: i64,
    ) -> Result<Passkeys, PasskeyError> {
        let (origins, any_port) = origins_for(rp_id, origins);
        let urls = origins
            .iter()
            .map(|o| Url::parse(o).map_err(|e| PasskeyError::Config(format!("origin {o}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let (first, rest) = urls
            .split_first()
            .ok_or_else(|| PasskeyError::Config("no origin".into()))?;
        let mut builder = WebauthnBuilder::new(rp_id, first)
            .map_err(|e| PasskeyError::Config(e.to_string()))?
            .rp_name("dienhong")
            .allow_any_port(any_port);
        for url in rest {
            builder = builder.append_allowed_origin(url);
        }
        let webauthn = builder
            .build()
            .map_err(|e| PasskeyError::Config(e.to_string()))?;
        Ok(Passkeys {
            webauthn,
            store,
            ttl_ms,
            ceremonies: Mutex::new(Ceremonies::default()),
        })
    }

    /// An account's passkeys.
    pub async fn list(&self, actor: &ActorId) -> Result<Vec<PasskeyInfo>, PasskeyError> {
        Ok(self
            .store
            .passkeys_of(actor)
            .await?
            .into_iter()
            .map(|p| PasskeyInfo {
                id: p.credential_id,
                created_at: p.created_at,
            })
            .collect())
    }

    async fn keys_of(&self, actor: &ActorId) -> Result<Vec<Passkey>, PasskeyError> {
        Ok(self
            .store
            .passkeys_of(actor)
            .await?
            .iter()
            .filter_map(decode)
            .collect())
    }

    /// Starts registering a passkey for `actor` (shown to the authenticator as `name`):
    /// the registration id and the options for `navigator.credentials.create`. An account
    /// that has a passkey must prove it with `enrol`, a step-up for [`Purpose::Enrol`].
    pub async fn start_registration(
        &self,
        actor: &ActorId,
        name: &str,
        enrol: Option<&StepUpProof>,
        now: Millis,
    ) -> Result<(String, CreationChallengeResponse), PasskeyError> {
        let existing = self.keys_of(actor).await?;
        if existing.len() >= MAX_PER_ACCOUNT {
            return Err(PasskeyError::TooMany);
        }
        if !existing.is_empty() {
            let proof = enrol.ok_or(PasskeyError::StepUpNeeded)?;
            self.check(actor, &Purpose::Enrol, proof, "", now)
                .await
                .map_err(|r| PasskeyError::StepUp(r.code))?;
        }
        let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_handle(actor), actor.as_str(), name, Some(exclude))
            .map_err(|e| {
                tracing::warn!(error = %e, "starting a passkey registration");
                PasskeyError::Invalid
            })?;
        let id = new_id();
        let mut c = lock(&self.ceremonies);
        c.prune(now);
        if c.registrations.len() >= MAX_PENDING {
            return Err(PasskeyError::Busy);
        }
        make_room(&mut c.registrations, actor, |r| (&r.actor, r.expires));
        c.registrations.insert(
            id.clone(),
            Registration {
                actor: actor.clone(),
                state,
                expires: Millis(now.0 + self.ttl_ms),
            },
        );
        Ok((id, options))
    }

    /// Finishes a registration with the authenticator's answer and stores the passkey.
    pub async fn finish_registration(
        &self,
        actor: &ActorId,
        registration: &str,
        credential: &RegisterPublicKeyCredential,
        now: Millis,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let pending = {
            let mut c = lock(&self.ceremonies);
            // Another account's registration stays for its owner.
            match c.registrations.get(registration) {
                Some(r) if &r.actor == actor && r.expires > now => {}
                _ => return Err(PasskeyError::UnknownRegistration),
            }
            c.registrations
                .remove(registration)
                .ok_or(PasskeyError::UnknownRegistration)?
        };
        let passkey = self
            .webauthn
            .finish_passkey_registration(credential, &pending.state)
            .map_err(|e| {
                tracing::info!(%actor, error = %e, "a passkey registration did not verify");
                PasskeyError::Invalid
            })?;
        let stored = StoredPasskey {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            actor: actor.clone(),
            created_at: now,
            passkey: serde_json::to_string(&passkey).map_err(StoreError::from)?,
        };
        if !self.store.add_passkey(&stored).await? {
            return Err(PasskeyError::AlreadyRegistered);
        }
        Ok(PasskeyInfo {
            id: stored.credential_id,
            created_at: now,
        })
    }

    /// Issues a step-up challenge to `actor` for `purpose`: its id and the options for
    /// `navigator.credentials.get`. Asking again for the same purpose replaces the earlier
    /// challenge; past a few under way, the account's oldest goes.
    pub async fn challenge(
        &self,
        actor: &ActorId,
        purpose: Purpose,
        now: Millis,
    ) -> Result<(String, RequestChallengeResponse), PasskeyError> {
        let keys = self.keys_of(actor).await?;
        if keys.is_empty() {
            return Err(PasskeyError::NoPasskey);
        }
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(|e| {
                tracing::warn!(error = %e, "starting a passkey step-up");
                PasskeyError::Invalid
            })?;
        let id = new_id();
        let mut c = lock(&self.ceremonies);
        c.prune(now);
        c.challenges
            .retain(|_, ch| !(&ch.actor == actor && ch.purpose == purpose));
        if c.challenges.len() >= MAX_PENDING {
            return Err(PasskeyError::Busy);
        }
        make_room(&mut c.challenges, actor, |ch| (&ch.actor, ch.expires));
        c.challenges.insert(
            id.clone(),
            Challenge {
                actor: actor.clone(),
                purpose,
                state,
                expires: Millis(now.0 + self.ttl_ms),
            },
        );
        Ok((id, options))
    }

    /// How long a challenge may be answered, in milliseconds.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// Checks the proof a ballot came with, for the command `command_id` of `actor` that
    /// enters `purpose`. Refusals carry the code the client is answered with.
    pub async fn verify(
        &self,
        actor: &ActorId,
        purpose: &BallotPurpose,
        proof: &StepUpProof,
        command_id: &str,
        now: Millis,
    ) -> Result<Verified, Rejection> {
        self.check(
            actor,
            &Purpose::Ballot(purpose.clone()),
            proof,
            command_id,
            now,
        )
        .await
    }

    /// Checks `proof` for `purpose`. All under one lock: two copies of one command never
    /// both pass as fresh, and a challenge is tried once.
    async fn check(
        &self,
        actor: &ActorId,
        purpose: &Purpose,
        proof: &StepUpProof,
        command_id: &str,
        now: Millis,
    ) -> Result<Verified, Rejection> {
        let seen = digest(proof);
        let result = {
            let mut c = lock(&self.ceremonies);
            if let Some(u) = c.used.get(&proof.challenge).filter(|u| u.expires > now) {
                let same = &u.actor == actor
                    && &u.purpose == purpose
                    && !command_id.is_empty()
                    && u.command_id == command_id
                    && u.proof == seen;
                return if same {
                    Ok(Verified::Retry)
                } else {
                    Err(refuse(
                        Code::StepUpUsed,
                        "this passkey confirmation was used already; ask for a new one",
                    ))
                };
            }
            let expired = || {
                refuse(
                    Code::StepUpExpired,
                    "no such passkey challenge, or it ran out; ask for a new one",
                )
            };
            match c.challenges.get(&proof.challenge) {
                Some(ch) if ch.expires > now => {
                    if &ch.actor != actor {
                        // Another account's challenge stays for its owner.
                        return Err(refuse(
                            Code::StepUpMismatch,
                            "this passkey confirmation was given for another account",
                        ));
                    }
                }
                _ => return Err(expired()),
            }
            // A challenge is tried once: whatever the outcome, it is gone.
            let challenge = c.challenges.remove(&proof.challenge).ok_or_else(expired)?;
            if &challenge.purpose != purpose {
                return Err(refuse(
                    Code::StepUpMismatch,
                    "this passkey confirmation was given for another ballot",
                ));
            }
            let result = self
                .webauthn
                .finish_passkey_authentication(&proof.credential, &challenge.state)
                .map_err(|e| {
                    tracing::info!(%actor, error = %e, "a passkey assertion did not verify");
                    refuse(Code::StepUpInvalid, "the passkey did not verify")
                })?;
            c.used.insert(
                proof.challenge.clone(),
                Used {
                    actor: actor.clone(),
                    purpose: purpose.clone(),
                    command_id: command_id.to_owned(),
                    proof: seen,
                    expires: challenge.expires,
                },
            );
            result
        };
        if result.needs_update() {
            self.record_use(actor, &result).await;
        }
        Ok(Verified::Fresh)
    }

    /// Stores a passkey's new counter after a use; a failure is logged (the assertion itself
    /// verified, and the single-use challenge already stops a replay).
    async fn record_use(
        &self,
        actor: &ActorId,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) {
        let stored = match self.store.passkeys_of(actor).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not read passkeys to update a counter");
                return;
            }
        };
        for s in stored {
            let Some(mut key) = decode(&s) else { continue };
            if key.update_credential(result) == Some(true) {
                let json = match serde_json::to_string(&key) {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not serialize a passkey");
                        return;
                    }
                };
                if let Err(e) = self.store.update_passkey(&s.credential_id, &json).await {
                    tracing::warn!(error = %e, "could not store a passkey's new counter");
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_handle_is_stable_per_account_and_differs_between_accounts() {
        let a = user_handle(&ActorId::new("DB001"));
        assert_eq!(a, user_handle(&ActorId::new("DB001")));
        assert_ne!(a, user_handle(&ActorId::new("DB002")));
    }

    #[test]
    fn origins_default_to_https_of_the_rp_id_on_any_port_and_given_ones_are_exact() {
        assert_eq!(
            origins_for("dienhong.test", &[]),
            (vec!["https://dienhong.test".to_owned()], true)
        );
        assert_eq!(
            origins_for("localhost", &[]),
            (
                vec![
                    "https://localhost".to_owned(),
                    "http://localhost".to_owned()
                ],
                true
            )
        );
        let given = vec!["https://qh.example".to_owned()];
        assert_eq!(origins_for("qh.example", &given), (given.clone(), false));
    }
}
