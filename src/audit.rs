//! The audit trail: who logged in, who failed to, who logged out, which commands were
//! refused as not permitted, every entry a clerk made, passkeys registered and every ballot's
//! passkey confirmation checked, and who asked for a checkpoint.
//!
//! Kept apart from every sitting's chain (a sitting's log is the record of the sitting; this
//! is the record of access to it), hash-chained the same way so that `verify` catches an
//! edited row, and never holding a password, a token or a ticket. Entries are handed to one
//! task that appends them in order, a batch per transaction; recording never waits for the
//! database, so a flood of failed log-ins cannot slow the sitting (past 10,000 entries
//! waiting, new ones are counted as dropped and logged).

use crate::sitting::{ActorId, Millis, SittingId};
use crate::store::{Head, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};

/// Entries waiting to be written before new ones are dropped.
const QUEUE: usize = 10_000;
/// Most entries written in one transaction.
const BATCH: usize = 256;
/// Longest login code kept for a failed log-in (what was typed may be anything).
const MAX_CODE_CHARS: usize = 64;

/// One audited happening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEntry {
    /// A log-in succeeded.
    LoggedIn {
        /// Who.
        actor: ActorId,
    },
    /// A log-in failed: wrong code or password.
    LoginFailed {
        /// The code typed (cut to 64 characters).
        code: String,
    },
    /// A log-in was refused: too many failures.
    LoginThrottled {
        /// The code typed (cut to 64 characters).
        code: String,
    },
    /// A token was revoked by logging out.
    LoggedOut {
        /// Whose.
        actor: ActorId,
    },
    /// A command was refused because the actor may not give it.
    Refused {
        /// Who.
        actor: ActorId,
        /// Where.
        sitting: SittingId,
        /// The command (its wire name).
        command: String,
        /// The refusal's code.
        code: String,
    },
    /// A clerk's command was accepted (a check-in or ballot on someone's behalf, a document).
    ClerkEntry {
        /// The clerk.
        actor: ActorId,
        /// Where.
        sitting: SittingId,
        /// The command (its wire name).
        command: String,
        /// The sequence number of its last event in the sitting's log.
        seq: u64,
    },
    /// A passkey was registered.
    PasskeyRegistered {
        /// Whose.
        actor: ActorId,
        /// Its credential id (public).
        credential: String,
    },
    /// A ballot's passkey confirmation was checked: `outcome` is `given`, `retry`, or the
    /// code it was refused with. Never the choice or the assertion.
    StepUp {
        /// Who confirmed (the deputy, or the clerk entering a ballot for one).
        actor: ActorId,
        /// Where.
        sitting: SittingId,
        /// The vote.
        vote: u32,
        /// Whose ballot it was for.
        deputy: ActorId,
        /// What came of it.
        outcome: String,
        /// The passkey (credential id) that gave it, when it was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
    },
    /// A checkpoint was asked for.
    CheckpointAsked {
        /// Who.
        actor: ActorId,
        /// Where.
        sitting: SittingId,
        /// The head it signed.
        seq: u64,
    },
    /// A sitting was created while the server ran.
    SittingCreated {
        /// Who.
        actor: ActorId,
        /// Which.
        sitting: SittingId,
    },
    /// A range of a sitting's log was asked to be delivered to a webhook again.
    WebhookReplay {
        /// Who.
        actor: ActorId,
        /// The endpoint.
        endpoint: String,
        /// Where.
        sitting: SittingId,
        /// The first sequence number.
        first: u64,
        /// The last.
        last: u64,
    },
}

impl AuditEntry {
    /// A failed log-in for what was typed as the code.
    pub fn login_failed(code: &str) -> AuditEntry {
        AuditEntry::LoginFailed {
            code: code.chars().take(MAX_CODE_CHARS).collect(),
        }
    }

    /// A throttled log-in for what was typed as the code.
    pub fn login_throttled(code: &str) -> AuditEntry {
        AuditEntry::LoginThrottled {
            code: code.chars().take(MAX_CODE_CHARS).collect(),
        }
    }
}

/// An entry as stored: its place in the audit chain and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Sequence number in the audit chain, from 1.
    pub seq: u64,
    /// When.
    pub at: Millis,
    /// What.
    pub entry: AuditEntry,
}

/// Where entries are handed in.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<(Millis, AuditEntry)>,
    dropped: Arc<AtomicU64>,
}

impl Auditor {
    /// Starts the task that appends to the audit chain of `store`; it drains what is queued
    /// and stops when `stop` turns true.
    pub async fn start(
        store: Store,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(Auditor, tokio::task::JoinHandle<()>), crate::store::StoreError> {
        let mut head = store.audit_head().await?;
        let (tx, mut rx) = mpsc::channel::<(Millis, AuditEntry)>(QUEUE);
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                tokio::select! {
                    biased;
                    n = rx.recv_many(&mut batch, BATCH) => {
                        if n == 0 {
                            break;
                        }
                    }
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            rx.close();
                            while rx.recv_many(&mut batch, BATCH).await > 0 {
                                head = write(&store, head, &mut batch).await;
                            }
                            break;
                        }
                        continue;
                    }
                }
                head = write(&store, head, &mut batch).await;
            }
        });
        Ok((
            Auditor {
                tx,
                dropped: Arc::default(),
            },
            task,
        ))
    }

    /// Records an entry at `at`, without waiting.
    pub fn record(&self, at: Millis, entry: AuditEntry) {
        if self.tx.try_send((at, entry)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "audit entries dropped: the audit log cannot keep up"
                );
            }
        }
    }
}

/// Appends `batch` (then empties it); on failure reads the head again and tries once more,
/// then logs what was lost.
async fn write(store: &Store, head: Head, batch: &mut Vec<(Millis, AuditEntry)>) -> Head {
    let result = match store.append_audit(&head, batch).await {
        Ok(h) => Ok(h),
        Err(first) => {
            tracing::warn!(error = %first, "audit append failed; retrying");
            match store.audit_head().await {
                Ok(fresh) => store.append_audit(&fresh, batch).await,
                Err(e) => Err(e),
            }
        }
    };
    let n = batch.len();
    batch.clear();
    match result {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, lost = n, "audit entries could not be written");
            store.audit_head().await.unwrap_or(head)
        }
    }
}
