//! Who takes part in a sitting: delegations, actors, and their roles.
//!
//! The roster is configuration turned into data at sitting creation; it travels inside the
//! `SittingCreated` event so that replaying the log alone rebuilds who may do what.

use super::ids::{ActorId, DelegationCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A role an actor holds in a sitting. An actor may hold several (the chair is also a deputy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Chairperson: runs the sitting, the floor and the votes.
    Chair,
    /// Vice-chair: may run the floor and votes when presiding.
    ViceChair,
    /// Clerk / secretariat: keeps the record, checks in and records ballots on behalf.
    Clerk,
    /// Deputy: a member; checks in, speaks, votes.
    Deputy,
    /// Operator of a delegation site's meeting room.
    SiteOperator,
    /// Observer: may follow the sitting, may not act on it.
    Observer,
}

impl Role {
    /// Every role, for exhaustive checks.
    pub const ALL: [Role; 6] = [
        Role::Chair,
        Role::ViceChair,
        Role::Clerk,
        Role::Deputy,
        Role::SiteOperator,
        Role::Observer,
    ];
}

/// What kind of place a delegation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationKind {
    /// The main chamber (the Diên Hồng hall).
    Chamber,
    /// A province's delegation.
    Province,
    /// A centrally-run municipality's delegation.
    Municipality,
}

/// A delegation and its site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// Statistics office code (two digits) or the chamber's code.
    pub code: DelegationCode,
    /// Name in Vietnamese (NFC).
    pub name: String,
    /// Chamber, province or municipality.
    pub kind: DelegationKind,
    /// Socio-economic region, empty for the chamber.
    pub region: String,
}

/// A person (or room) that may act in the sitting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Login code.
    pub id: ActorId,
    /// Display name.
    pub name: String,
    /// The delegation a deputy belongs to, or the site an operator runs.
    pub delegation: Option<DelegationCode>,
    /// Roles held.
    pub roles: BTreeSet<Role>,
}

impl Actor {
    /// Whether the actor holds this role.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    /// Whether the actor presides (chair or vice-chair).
    pub fn presides(&self) -> bool {
        self.has(Role::Chair) || self.has(Role::ViceChair)
    }
}

/// Every delegation and actor of a sitting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Delegations by code.
    pub delegations: BTreeMap<DelegationCode, Delegation>,
    /// Actors by id.
    pub actors: BTreeMap<ActorId, Actor>,
}

/// Why a roster is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// Two delegations or actors share an id.
    #[error("duplicate id {0}")]
    Duplicate(String),
    /// A deputy has no delegation, or names one that does not exist.
    #[error("actor {0} refers to unknown delegation {1:?}")]
    UnknownDelegation(String, Option<String>),
    /// An actor holds no role.
    #[error("actor {0} has no role")]
    NoRole(String),
    /// An id is empty, too long, or the reserved "system".
    #[error("invalid id {0:?}")]
    InvalidId(String),
    /// There is no deputy at all.
    #[error("the roster has no deputies")]
    NoDeputies,
}

impl Roster {
    /// Builds a roster, checking ids, delegations and roles.
    pub fn new(delegations: Vec<Delegation>, actors: Vec<Actor>) -> Result<Roster, RosterError> {
        let mut roster = Roster::default();
        for d in delegations {
            if !valid_id(d.code.as_str()) {
                return Err(RosterError::InvalidId(d.code.0));
            }
            if roster.delegations.contains_key(&d.code) {
                return Err(RosterError::Duplicate(d.code.0));
            }
            roster.delegations.insert(d.code.clone(), d);
        }
        for a in actors {
            if !valid_id(a.id.as_str()) || a.id.is_system() {
                return Err(RosterError::InvalidId(a.id.0));
            }
            if a.roles.is_empty() {
                return Err(RosterError::NoRole(a.id.0));
            }
            let needs_delegation = a.has(Role::Deputy) || a.has(Role::SiteOperator);
            match &a.delegation {
                Some(code) if roster.delegations.contains_key(code) => {}
                None if !needs_delegation => {}
                other => {
                    return Err(RosterError::UnknownDelegation(
                        a.id.0,
                        other.as_ref().map(|c| c.0.clone()),
                    ));
                }
            }
            if roster.actors.contains_key(&a.id) {
                return Err(RosterError::Duplicate(a.id.0));
            }
            roster.actors.insert(a.id.clone(), a);
        }
        if roster.members() == 0 {
            return Err(RosterError::NoDeputies);
        }
        Ok(roster)
    }

    /// Total membership: the number of actors holding the deputy role.
    pub fn members(&self) -> u32 {
        u32::try_from(self.actors.values().filter(|a| a.has(Role::Deputy)).count())
            .unwrap_or(u32::MAX)
    }

    /// The actor with this id.
    pub fn actor(&self, id: &ActorId) -> Option<&Actor> {
        self.actors.get(id)
    }

    /// Whether this id is a deputy.
    pub fn is_deputy(&self, id: &ActorId) -> bool {
        self.actor(id).is_some_and(|a| a.has(Role::Deputy))
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}
