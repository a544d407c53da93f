//! The sitting's state and `apply`, which folds one event into it.
//!
//! `apply` trusts its events (they were decided and stored); it never fails and never panics,
//! so replaying a log always yields a state.

use super::event::{Access, Acknowledgement, Event, FloorEndReason, OnBehalf};
use super::ids::{ActorId, DocumentId, ItemId, Location, Millis, RequestId, SittingId, VoteId};
use super::roster::Roster;
use super::rules::{Rules, SpeechKind};
use super::vote::{Choice, Method, PassRule, Tally, VoteResult};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where the sitting is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not created yet (an empty log).
    #[default]
    Uncreated,
    /// Created, not yet opened.
    Scheduled,
    /// In session.
    Open,
    /// In recess.
    Suspended,
    /// Over.
    Closed,
}

/// One agenda item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaItem {
    /// Id.
    pub id: ItemId,
    /// Title.
    pub title: String,
}

/// A pending request to speak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeechRequest {
    /// Who asked.
    pub deputy: ActorId,
    /// Kind.
    pub kind: SpeechKind,
}

/// Who has the floor and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Speaker.
    pub deputy: ActorId,
    /// Kind of speech.
    pub kind: SpeechKind,
    /// The request granted, if any.
    pub request: Option<RequestId>,
    /// When it was given.
    pub granted_at: Millis,
    /// When it runs out.
    pub deadline: Millis,
}

/// A record of one finished speech, for the minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speech {
    /// Speaker.
    pub deputy: ActorId,
    /// Kind.
    pub kind: SpeechKind,
    /// Agenda item at the time.
    pub item: Option<ItemId>,
    /// Start.
    pub from: Millis,
    /// End.
    pub to: Millis,
    /// Why it ended.
    pub ended: FloorEndReason,
}

/// A named ballot as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedBallot {
    /// Choice.
    pub choice: Choice,
    /// Set when a clerk recorded it.
    pub on_behalf: Option<OnBehalf>,
    /// How many times the ballot was changed.
    pub changes: u32,
}

/// Where a vote is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VoteStatus {
    /// Ballots are accepted.
    Open,
    /// Closed with a result.
    Closed {
        /// The result.
        result: VoteResult,
    },
    /// Voided by the chair.
    Voided {
        /// Reason.
        reason: String,
        /// The result it had, if it had closed.
        result: Option<VoteResult>,
    },
}

/// One vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteState {
    /// Agenda item.
    pub item: ItemId,
    /// Question.
    pub question: String,
    /// Named or secret.
    pub method: Method,
    /// Pass rule.
    pub rule: PassRule,
    /// When it opened.
    pub opened_at: Millis,
    /// When it closes by itself.
    pub deadline: Millis,
    /// Whether named ballots may change.
    pub allow_change: bool,
    /// Whether each ballot needs a passkey confirmation.
    #[serde(default)]
    pub step_up: bool,
    /// The vote it re-runs.
    pub rerun_of: Option<VoteId>,
    /// Status.
    pub status: VoteStatus,
    /// Named ballots by deputy. Always empty for secret votes.
    pub ballots: BTreeMap<ActorId, NamedBallot>,
    /// Who took part.
    pub participants: BTreeSet<ActorId>,
    /// Counts by choice.
    pub tally: Tally,
}

impl VoteState {
    /// Whether ballots are still accepted.
    pub fn is_open(&self) -> bool {
        matches!(self.status, VoteStatus::Open)
    }
}

/// One version of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentVersion {
    /// Title.
    pub title: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 hex.
    pub sha256: String,
    /// The file's name as uploaded, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// A document with its versions and acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentState {
    /// Agenda item.
    pub item: ItemId,
    /// Who may read it.
    pub access: Access,
    /// Versions; version n is at index n-1.
    pub versions: Vec<DocumentVersion>,
    /// Acknowledgements by deputy, then by version.
    pub acks: BTreeMap<ActorId, BTreeMap<u32, Acknowledgement>>,
}

impl DocumentState {
    /// The latest version number.
    pub fn latest(&self) -> u32 {
        u32::try_from(self.versions.len()).unwrap_or(u32::MAX)
    }
}

/// Everything the procedure core knows about one sitting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SittingState {
    /// Sitting id (empty before creation).
    pub sitting: Option<SittingId>,
    /// Title.
    pub title: String,
    /// Roster.
    pub roster: Roster,
    /// Rules.
    pub rules: Rules,
    /// Phase.
    pub phase: Phase,
    /// Present deputies, with the clerk who checked them in if not themselves.
    pub present: BTreeMap<ActorId, Option<ActorId>>,
    /// Where present deputies said they sit.
    pub locations: BTreeMap<ActorId, Location>,
    /// Agenda in order.
    pub agenda: Vec<AgendaItem>,
    /// Current item.
    pub current_item: Option<ItemId>,
    /// Pending requests by id.
    pub requests: BTreeMap<RequestId, SpeechRequest>,
    /// Pending requests in queue order.
    pub queue: Vec<RequestId>,
    /// Who has the floor.
    pub floor: Option<Floor>,
    /// Finished speeches.
    pub speeches: Vec<Speech>,
    /// Votes by id.
    pub votes: BTreeMap<VoteId, VoteState>,
    /// The vote accepting ballots, if any.
    pub open_vote: Option<VoteId>,
    /// Documents by id.
    pub documents: BTreeMap<DocumentId, DocumentState>,
    /// Last ids handed out.
    pub last_ids: LastIds,
}

/// The last id of each kind handed out, so new ids are deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastIds {
    /// Agenda items.
    pub item: u32,
    /// Requests.
    pub request: u32,
    /// Votes.
    pub vote: u32,
    /// Documents.
    pub document: u32,
}

impl SittingState {
    /// Deputies present.
    pub fn present_count(&self) -> u32 {
        u32::try_from(self.present.len()).unwrap_or(u32::MAX)
    }
    /// Whether the quorum is met now.
    pub fn quorum_met(&self) -> bool {
        self.rules
            .quorum
            .met(self.present_count(), self.roster.members())
    }
    /// Whether this deputy is present.
    pub fn is_present(&self, deputy: &ActorId) -> bool {
        self.present.contains_key(deputy)
    }
    /// The pending request of this deputy, if any.
    pub fn pending_request_of(&self, deputy: &ActorId) -> Option<RequestId> {
        self.queue
            .iter()
            .copied()
            .find(|r| self.requests.get(r).is_some_and(|q| &q.deputy == deputy))
    }
}

/// Folds one event into the state.
pub fn apply(state: &mut SittingState, event: &Event) {
    match event {
        Event::SittingCreated {
            sitting,
            title,
            roster,
            rules,
            agenda,
        } => {
            state.sitting = Some(sitting.clone());
            state.title = title.clone();
            state.roster = roster.clone();
            state.rules = rules.clone();
            state.phase = Phase::Scheduled;
            for item in agenda {
                state.agenda.push(AgendaItem {
                    id: item.item,
                    title: item.title.clone(),
                });
                state.last_ids.item = state.last_ids.item.max(item.item.0);
            }
        }
        Event::SittingOpened | Event::SittingResumed => state.phase = Phase::Open,
        Event::SittingSuspended { .. } => state.phase = Phase::Suspended,
        Event::SittingClosed => state.phase = Phase::Closed,
        Event::CheckedIn {
            deputy,
            by_clerk,
            location,
        } => {
            state.present.insert(deputy.clone(), by_clerk.clone());
            match location {
                Some(l) => state.locations.insert(deputy.clone(), *l),
                None => state.locations.remove(deputy),
            };
        }
        Event::CheckedOut { deputy, .. } => {
            state.present.remove(deputy);
            state.locations.remove(deputy);
        }
        Event::AgendaItemAdded {
            item,
            title,
            position,
        } => {
            let at = (*position as usize).min(state.agenda.len());
            state.agenda.insert(
                at,
                AgendaItem {
                    id: *item,
                    title: title.clone(),
                },
            );
            state.last_ids.item = state.last_ids.item.max(item.0);
        }
        Event::AgendaReordered { order } => {
            let mut items: BTreeMap<ItemId, AgendaItem> =
                state.agenda.drain(..).map(|i| (i.id, i)).collect();
            for id in order {
                if let Some(item) = items.remove(id) {
                    state.agenda.push(item);
                }
            }
            // Anything the order left out keeps its relative place at the end.
            state.agenda.extend(items.into_values());
        }
        Event::CurrentItemSet { item } => state.current_item = Some(*item),
        Event::FloorRequested {
            request,
            deputy,
            kind,
            position,
        } => {
            state.requests.insert(
                *request,
                SpeechRequest {
                    deputy: deputy.clone(),
                    kind: *kind,
                },
            );
            let at = (*position as usize).min(state.queue.len());
            state.queue.insert(at, *request);
            state.last_ids.request = state.last_ids.request.max(request.0);
        }
        Event::FloorRequestWithdrawn { request, .. } => remove_request(state, *request),
        Event::QueueReordered { order } => {
            let mut rest: Vec<RequestId> = state
                .queue
                .iter()
                .copied()
                .filter(|r| !order.contains(r))
                .collect();
            state.queue = order
                .iter()
                .copied()
                .filter(|r| state.requests.contains_key(r))
                .collect();
            state.queue.append(&mut rest);
        }
        Event::FloorGranted {
            deputy,
            kind,
            request,
            granted_at,
            deadline,
        } => {
            if let Some(r) = request {
                remove_request(state, *r);
            }
            state.floor = Some(Floor {
                deputy: deputy.clone(),
                kind: *kind,
                request: *request,
                granted_at: *granted_at,
                deadline: *deadline,
            });
        }
        Event::FloorExtended { deadline } => {
            if let Some(floor) = state.floor.as_mut() {
                floor.deadline = *deadline;
            }
        }
        Event::FloorEnded { reason, at, .. } => {
            if let Some(floor) = state.floor.take() {
                state.speeches.push(Speech {
                    deputy: floor.deputy,
                    kind: floor.kind,
                    item: state.current_item,
                    from: floor.granted_at,
                    to: *at,
                    ended: *reason,
                });
            }
        }
        Event::VoteOpened {
            vote,
            item,
            question,
            method,
            rule,
            opened_at,
            deadline,
            allow_change,
            rerun_of,
            step_up,
        } => {
            state.votes.insert(
                *vote,
                VoteState {
                    item: *item,
                    question: question.clone(),
                    method: *method,
                    rule: *rule,
                    opened_at: *opened_at,
                    deadline: *deadline,
                    allow_change: *allow_change,
                    step_up: *step_up,
                    rerun_of: *rerun_of,
                    status: VoteStatus::Open,
                    ballots: BTreeMap::new(),
                    participants: BTreeSet::new(),
                    tally: Tally::default(),
                },
            );
            state.open_vote = Some(*vote);
            state.last_ids.vote = state.last_ids.vote.max(vote.0);
        }
        Event::BallotCast {
            vote,
            deputy,
            choice,
            on_behalf,
            ..
        } => {
            if let Some(v) = state.votes.get_mut(vote) {
                let changes = match v.ballots.get(deputy) {
                    Some(old) => {
                        v.tally.remove(old.choice);
                        old.changes + 1
                    }
                    None => 0,
                };
                v.tally.add(*choice);
                v.participants.insert(deputy.clone());
                v.ballots.insert(
                    deputy.clone(),
                    NamedBallot {
                        choice: *choice,
                        on_behalf: on_behalf.clone(),
                        changes,
                    },
                );
            }
        }
        Event::SecretBallotTaken { vote, deputy, .. } => {
            if let Some(v) = state.votes.get_mut(vote) {
                v.participants.insert(deputy.clone());
            }
        }
        Event::SecretChoice { vote, choice } => {
            if let Some(v) = state.votes.get_mut(vote) {
                v.tally.add(*choice);
            }
        }
        Event::VoteClosed { vote, result, .. } => {
            if let Some(v) = state.votes.get_mut(vote) {
                v.status = VoteStatus::Closed {
                    result: result.clone(),
                };
            }
            if state.open_vote == Some(*vote) {
                state.open_vote = None;
            }
        }
        Event::VoteVoided { vote, reason } => {
            if let Some(v) = state.votes.get_mut(vote) {
                let result = match &v.status {
                    VoteStatus::Closed { result } => Some(result.clone()),
                    _ => None,
                };
                v.status = VoteStatus::Voided {
                    reason: reason.clone(),
                    result,
                };
            }
            if state.open_vote == Some(*vote) {
                state.open_vote = None;
            }
        }
        Event::DocumentPublished {
            document,
            version,
            item,
            title,
            media_type,
            size,
            sha256,
            file_name,
            access,
        } => {
            let doc = state
                .documents
                .entry(*document)
                .or_insert_with(|| DocumentState {
                    item: *item,
                    access: access.clone(),
                    versions: Vec::new(),
                    acks: BTreeMap::new(),
                });
            doc.access = access.clone();
            if *version as usize == doc.versions.len() + 1 {
                doc.versions.push(DocumentVersion {
                    title: title.clone(),
                    media_type: media_type.clone(),
                    size: *size,
                    sha256: sha256.clone(),
                    file_name: file_name.clone(),
                });
            }
            state.last_ids.document = state.last_ids.document.max(document.0);
        }
        Event::DocumentAcknowledged {
            document,
            version,
            deputy,
            ack,
        } => {
            if let Some(doc) = state.documents.get_mut(document) {
                let entry = doc
                    .acks
                    .entry(deputy.clone())
                    .or_default()
                    .entry(*version)
                    .or_insert(*ack);
                *entry = (*entry).max(*ack);
            }
        }
    }
}

fn remove_request(state: &mut SittingState, request: RequestId) {
    state.requests.remove(&request);
    state.queue.retain(|r| *r != request);
}
