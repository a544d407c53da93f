//! The sittings the server runs: one writer handle per sitting, found by id, with sittings
//! added while the server runs. What follows the list (the media plane, the search index,
//! webhooks, the collection of unused uploads) reads it when it changes.

use crate::sitting::SittingId;
use crate::writer::SittingHandle;
use std::collections::BTreeMap;
use std::sync::RwLock;
use tokio::sync::watch;

/// Every sitting's handle.
pub struct Sittings {
    map: RwLock<BTreeMap<SittingId, SittingHandle>>,
    /// Counts the sittings added, for those that follow the list.
    changed: watch::Sender<u64>,
}

impl Sittings {
    /// The sittings replayed at start.
    pub fn new(map: BTreeMap<SittingId, SittingHandle>) -> Sittings {
        Sittings {
            map: RwLock::new(map),
            changed: watch::channel(0).0,
        }
    }

    /// The handle of a sitting.
    pub fn get(&self, id: &SittingId) -> Option<SittingHandle> {
        self.map.read().ok().and_then(|m| m.get(id).cloned())
    }

    /// Every sitting, by id.
    pub fn all(&self) -> Vec<SittingHandle> {
        self.map
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether a sitting with this id runs.
    pub fn contains(&self, id: &SittingId) -> bool {
        self.map.read().is_ok_and(|m| m.contains_key(id))
    }

    /// Adds a sitting that started; `false` (and nothing changed) if its id is taken.
    pub(super) fn insert(&self, handle: SittingHandle) -> bool {
        let added = match self.map.write() {
            Ok(mut m) if !m.contains_key(handle.id()) => {
                m.insert(handle.id().clone(), handle);
                true
            }
            _ => false,
        };
        if added {
            self.changed.send_modify(|n| *n += 1);
        }
        added
    }

    /// Resolves (`changed().await`) each time a sitting is added.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
