//! What each audience may see of a sitting: documents by their access level.
//!
//! An audience is the set of roles a connection holds (empty for the public). A document it
//! may not read is withheld from it entirely: its events (publication, new versions, the
//! deputies' acknowledgements) and its entry in the state, so neither its title nor its hash
//! nor its existence reaches a screen that may not show it. Everything else is the same for
//! everyone. Pure: the server applies these rules to the snapshot, the live events and the
//! events read back from the log.

use super::event::{Access, Event};
use super::ids::DocumentId;
use super::roster::Role;
use super::state::SittingState;
use std::collections::BTreeMap;

/// Whether holders of `roles` may read a document with this access level: `Public` for
/// everyone (the public too), `Deputies` for anyone with a role other than observer,
/// `Restricted` for the roles it names.
pub fn readable(access: &Access, roles: &[Role]) -> bool {
    match access {
        Access::Public => true,
        Access::Deputies => roles.iter().any(|r| *r != Role::Observer),
        Access::Restricted(allowed) => roles.iter().any(|r| allowed.contains(r)),
    }
}

/// The access level an event falls under, if any: a document's publication names its own;
/// an acknowledgement falls under its document's, looked up in `access` (every document
/// published so far).
pub fn access_of<'a>(
    event: &'a Event,
    access: &'a BTreeMap<DocumentId, Access>,
) -> Option<&'a Access> {
    match event {
        Event::DocumentPublished { access, .. } => Some(access),
        Event::DocumentAcknowledged { document, .. } => access.get(document),
        _ => None,
    }
}

/// Every document's access level, from the state.
pub fn document_access(state: &SittingState) -> BTreeMap<DocumentId, Access> {
    state
        .documents
        .iter()
        .map(|(id, d)| (*id, d.access.clone()))
        .collect()
}

/// Whether `roles` may see `event`. An acknowledgement of a document not (yet) in `access`
/// is held back: when in doubt, say less.
pub fn visible(event: &Event, roles: &[Role], access: &BTreeMap<DocumentId, Access>) -> bool {
    if let Event::DocumentAcknowledged { document, .. } = event
        && !access.contains_key(document)
    {
        return false;
    }
    access_of(event, access).is_none_or(|a| readable(a, roles))
}

/// The ids of the documents in `state` that `roles` may not read.
pub fn withheld_documents(state: &SittingState, roles: &[Role]) -> Vec<DocumentId> {
    state
        .documents
        .iter()
        .filter(|(_, d)| !readable(&d.access, roles))
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sitting::{ActorId, DocumentId, ItemId};
    use std::collections::BTreeSet;

    fn published(id: u32, access: Access) -> Event {
        Event::DocumentPublished {
            document: DocumentId(id),
            version: 1,
            item: ItemId(1),
            title: format!("Tài liệu {id}"),
            media_type: "application/pdf".into(),
            size: 10,
            sha256: "ab".repeat(32),
            file_name: None,
            access,
        }
    }

    /// Every access level against every audience.
    #[test]
    fn each_access_level_against_each_audience() {
        let clerks_only = Access::Restricted(BTreeSet::from([Role::Clerk]));
        let chair_and_clerks = Access::Restricted(BTreeSet::from([Role::Chair, Role::Clerk]));
        // (audience, public, deputies, clerks only, chair and clerks)
        let table: [(&[Role], [bool; 4]); 7] = [
            (&[], [true, false, false, false]),
            (&[Role::Observer], [true, false, false, false]),
            (&[Role::Deputy], [true, true, false, false]),
            (&[Role::SiteOperator], [true, true, false, false]),
            (&[Role::Clerk], [true, true, true, true]),
            (&[Role::Chair, Role::Deputy], [true, true, false, true]),
            (&[Role::ViceChair, Role::Deputy], [true, true, false, false]),
        ];
        let levels = [
            Access::Public,
            Access::Deputies,
            clerks_only,
            chair_and_clerks,
        ];
        for (roles, expected) in table {
            for (level, want) in levels.iter().zip(expected) {
                assert_eq!(readable(level, roles), want, "{roles:?} reading {level:?}");
            }
        }
    }

    #[test]
    fn an_acknowledgement_falls_under_its_documents_level_and_other_events_are_for_all() {
        let restricted = Access::Restricted(BTreeSet::from([Role::Clerk]));
        let access = BTreeMap::from([(DocumentId(1), restricted.clone())]);
        let ack = Event::DocumentAcknowledged {
            document: DocumentId(1),
            version: 1,
            deputy: ActorId::new("DB001"),
            ack: crate::sitting::Acknowledgement::Read,
        };
        assert!(!visible(&ack, &[Role::Deputy], &access));
        assert!(visible(&ack, &[Role::Clerk], &access));
        // An acknowledgement of a document the map does not know yet is held back.
        assert!(!visible(&ack, &[Role::Clerk], &BTreeMap::new()));
        assert!(!visible(
            &published(1, restricted),
            &[Role::Observer],
            &access
        ));
        assert!(visible(&published(2, Access::Public), &[], &access));
        let other = Event::SittingOpened;
        assert!(visible(&other, &[], &access));
    }
}
