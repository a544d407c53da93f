//! Reads what the minutes are made of from the store: the sitting's epoch, its whole log up
//! to one head (read first, so the events and the head agree), and its checkpoints.

use super::{Head, Minutes, MinutesError, build};
use crate::sitting::{Millis, SittingId};
use crate::store::{Store, StoreError, StoredEvent};

/// Events read per query.
const PAGE: u32 = 5000;

/// Why minutes could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No such sitting.
    #[error("no sitting {0}")]
    NoSuchSitting(SittingId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log cannot make minutes.
    #[error(transparent)]
    Minutes(#[from] MinutesError),
}

/// The minutes of `sitting` as its log stands now, stamped `now`.
pub async fn load(store: &Store, sitting: &SittingId, now: Millis) -> Result<Minutes, LoadError> {
    let meta = store
        .sittings()
        .await?
        .into_iter()
        .find(|m| &m.sitting == sitting)
        .ok_or_else(|| LoadError::NoSuchSitting(sitting.clone()))?;
    let head = store.head(sitting).await?;
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut after = 0;
    while after < head.seq {
        let page = store.events_after(sitting, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        events.extend(page.into_iter().filter(|e| e.seq <= head.seq));
    }
    let checkpoints = store
        .checkpoints(sitting)
        .await?
        .into_iter()
        .filter(|c| c.epoch == meta.epoch && c.seq <= head.seq)
        .collect();
    Ok(build(
        &meta.epoch,
        &events,
        Head {
            seq: head.seq,
            hash: hex::encode(head.hash),
        },
        checkpoints,
        now,
    )?)
}
