//! The public summary of a sitting, as the status page and `GET /api/sittings` show it.
//! It carries counts, never a secret ballot, and no ballot of a named vote either (those
//! belong to the authenticated control plane).

use crate::sitting::{
    ItemId, Location, Method, Millis, Phase, SittingState, SpeechKind, Tally, VoteId, VoteStatus,
};
use serde::Serialize;

/// A snapshot of what the hall screens show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Sitting id.
    pub sitting: String,
    /// Title.
    pub title: String,
    /// Phase.
    pub phase: Phase,
    /// Last sequence number.
    pub seq: u64,
    /// Total membership.
    pub members: u32,
    /// Deputies present.
    pub present: u32,
    /// Whether the quorum is met.
    pub quorum_met: bool,
    /// Agenda (id, title) in order.
    pub agenda: Vec<(ItemId, String)>,
    /// Current item.
    pub current_item: Option<ItemId>,
    /// Requests waiting.
    pub queue_len: usize,
    /// The speaker.
    pub floor: Option<FloorSummary>,
    /// The open vote.
    pub open_vote: Option<VoteSummary>,
    /// Votes closed so far (not voided).
    pub votes_closed: usize,
    /// Documents published that everyone may read.
    pub documents: usize,
}

/// The speaker.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FloorSummary {
    /// Speaker's id.
    pub deputy: String,
    /// Speaker's name.
    pub name: String,
    /// Kind.
    pub kind: SpeechKind,
    /// Deadline.
    pub deadline: Millis,
    /// Where the speaker said they sit, if they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// The open vote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VoteSummary {
    /// Id.
    pub vote: VoteId,
    /// Question.
    pub question: String,
    /// Method.
    pub method: Method,
    /// Deadline.
    pub deadline: Millis,
    /// Ballots so far.
    pub participants: usize,
    /// Live counts: named votes only.
    pub tally: Option<Tally>,
}

impl Summary {
    /// Summarises a state at a sequence number.
    pub fn of(state: &SittingState, seq: u64) -> Summary {
        Summary {
            sitting: state
                .sitting
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_default(),
            title: state.title.clone(),
            phase: state.phase,
            seq,
            members: state.roster.members(),
            present: state.present_count(),
            quorum_met: state.quorum_met(),
            agenda: state
                .agenda
                .iter()
                .map(|i| (i.id, i.title.clone()))
                .collect(),
            current_item: state.current_item,
            queue_len: state.queue.len(),
            floor: state.floor.as_ref().map(|f| FloorSummary {
                deputy: f.deputy.0.clone(),
                name: state
                    .roster
                    .actor(&f.deputy)
                    .map(|a| a.name.clone())
                    .unwrap_or_default(),
                kind: f.kind,
                deadline: f.deadline,
                location: state.locations.get(&f.deputy).copied(),
            }),
            open_vote: state
                .open_vote
                .and_then(|id| state.votes.get(&id).map(|v| (id, v)))
                .map(|(id, v)| VoteSummary {
                    vote: id,
                    question: v.question.clone(),
                    method: v.method,
                    deadline: v.deadline,
                    participants: v.participants.len(),
                    tally: (v.method == Method::Named).then_some(v.tally),
                }),
            votes_closed: state
                .votes
                .values()
                .filter(|v| matches!(v.status, VoteStatus::Closed { .. }))
                .count(),
            documents: state
                .documents
                .values()
                .filter(|d| d.access == crate::sitting::Access::Public)
                .count(),
        }
    }
}
