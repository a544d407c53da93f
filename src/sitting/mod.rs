//! The procedure core: pure, deterministic rules of a sitting.
//!
//! `decide(&state, actor, &command, now)` checks a command against the state and the actor's
//! roles and returns the events it causes, or a [`Rejection`] with a stable code;
//! `apply(&mut state, &event)` folds an event into the state. Nothing here does I/O or reads
//! a clock: time comes in as `now`, and running out of time is a `Tick` command. The store
//! persists the events; replaying them through `apply` rebuilds the state exactly.
//!
//! Secret ballots: `decide` emits a `SecretBallotTaken` (who took part) and a sealed
//! `SecretChoice` (what was chosen, with no actor). The state keeps only participants and
//! counts for a secret vote, never a deputy's choice.

mod budget;
mod command;
mod decide;
mod event;
mod ids;
mod rejection;
mod roster;
mod rules;
mod state;
mod visibility;
mod vote;

#[cfg(test)]
mod rule_tests;

pub use budget::{left_ms as budget_left_ms, spoken_ms};
pub use command::Command;
pub use decide::{
    Assurance, MAX_DOCUMENT_BYTES, MAX_QUESTION_CHARS, MAX_REASON_CHARS, MAX_TITLE_CHARS,
    MAX_VOTE_WINDOW_SECS, command_name, decide, decide_assured, may_read, role_permits,
};
pub use event::{Access, Acknowledgement, Event, FloorEndReason, NewItem, OnBehalf};
pub use ids::{
    ActorId, DelegationCode, DocumentId, ItemId, Location, Millis, RequestId, SittingId, VoteId,
};
pub use rejection::{Code, Rejection};
pub use roster::{Actor, Delegation, DelegationKind, Role, Roster, RosterError};
pub use rules::{Quorum, Rules, SpeakingLimits, SpeechKind};
pub use state::{
    AgendaItem, DocumentState, DocumentVersion, Floor, LastIds, NamedBallot, Phase, SittingState,
    Speech, SpeechRequest, VoteState, VoteStatus, apply,
};
pub use visibility::{access_of, document_access, readable, visible, withheld_documents};
pub use vote::{Choice, Method, PassRule, Tally, VoteResult, basis_points, passes};

/// Decides a command and, if accepted, applies its events to the state.
pub fn execute(
    state: &mut SittingState,
    actor: &ActorId,
    command: &Command,
    now: Millis,
) -> Result<Vec<Event>, Rejection> {
    let events = decide(state, actor, command, now)?;
    for e in &events {
        apply(state, e);
    }
    Ok(events)
}
