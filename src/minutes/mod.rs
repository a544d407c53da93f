//! The minutes (biên bản) of a sitting, made from its log: when it opened, was suspended and
//! closed; who attended, where and on whose entry; each agenda item with its speeches; each
//! vote with its question, rule, counts against the whole membership and result, and the
//! roll call of a named vote with the entries made on a deputy's behalf; the documents with
//! their versions; and the chain head with its signed checkpoints.
//!
//! Pure: events in, a [`Minutes`] out, no clock (the generation stamp is passed in) and no
//! I/O. The same log gives the same minutes, and [`render`] the same bytes.

pub mod load;
pub mod pdf;
pub mod render;

use crate::checkpoint::Checkpoint;
use crate::sitting::{
    Access, ActorId, Choice, DocumentId, Event, FloorEndReason, ItemId, Location, Method, Millis,
    OnBehalf, PassRule, Roster, SpeechKind, VoteId, VoteResult,
};
use crate::store::StoredEvent;
use serde::Serialize;
use std::collections::BTreeMap;

/// Someone as the minutes name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Account code.
    pub id: ActorId,
    /// Name on the roster.
    pub name: String,
    /// Delegation name, if any.
    pub delegation: Option<String>,
}

/// A suspension of the sitting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspension {
    /// When.
    pub at: Millis,
    /// Why.
    pub reason: String,
    /// When it resumed (none if it never did).
    pub resumed_at: Option<Millis>,
}

/// One check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attendance {
    /// Who.
    pub deputy: Person,
    /// When they checked in.
    pub checked_in_at: Millis,
    /// Where they sat, if said.
    pub location: Option<Location>,
    /// The clerk who entered it on their behalf.
    pub by_clerk: Option<ActorId>,
    /// When they checked out, if they did.
    pub checked_out_at: Option<Millis>,
}

/// One speech.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Speech {
    /// Who spoke.
    pub deputy: Person,
    /// Kind of speech.
    pub kind: SpeechKind,
    /// When the floor was given.
    pub started_at: Millis,
    /// How long, in seconds (to the end, or to the close of the log).
    pub duration_secs: u64,
    /// Times the chair extended it.
    pub extensions: u32,
    /// How it ended (none if the log ends with the speaker on the floor).
    pub ended: Option<FloorEndReason>,
}

/// One agenda item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Id.
    pub item: ItemId,
    /// Title.
    pub title: String,
    /// Its speeches in order.
    pub speeches: Vec<Speech>,
    /// Its votes, by id.
    pub votes: Vec<VoteId>,
}

/// One line of a named vote's roll call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollCall {
    /// Whose ballot.
    pub deputy: Person,
    /// The last choice recorded.
    pub choice: Choice,
    /// How many times it was changed.
    pub changes: u32,
    /// Set when a clerk entered it (the last time), with the reason.
    pub on_behalf: Option<OnBehalf>,
    /// The last entry was confirmed with a passkey.
    pub step_up: bool,
}

/// How a vote ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VoteOutcome {
    /// Still open when the log ends.
    Open,
    /// Closed with this result.
    Closed {
        /// When.
        at: Millis,
        /// The result.
        result: VoteResult,
    },
    /// Voided, with the reason.
    Voided {
        /// Why.
        reason: String,
    },
}

/// One vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vote {
    /// Id.
    pub vote: VoteId,
    /// Agenda item.
    pub item: ItemId,
    /// The question put.
    pub question: String,
    /// Named or secret.
    pub method: Method,
    /// Pass rule.
    pub rule: PassRule,
    /// When it opened.
    pub opened_at: Millis,
    /// Ballots needed a passkey.
    pub step_up: bool,
    /// The voided vote it re-ran.
    pub rerun_of: Option<VoteId>,
    /// How it ended.
    pub outcome: VoteOutcome,
    /// Named votes: each deputy's ballot, by deputy code. Secret votes: empty.
    pub roll_call: Vec<RollCall>,
    /// Secret votes: who took part (never what they chose). Named votes: empty.
    pub took_part: Vec<Person>,
}

/// One version of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentVersion {
    /// Version, from 1.
    pub version: u32,
    /// Title.
    pub title: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// When it was published.
    pub published_at: Millis,
}

/// One document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// Id.
    pub document: DocumentId,
    /// Agenda item.
    pub item: ItemId,
    /// Who may read it.
    pub access: Access,
    /// Its versions, oldest first.
    pub versions: Vec<DocumentVersion>,
}

/// The end of the log the minutes were made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Sequence number of the last event.
    pub seq: u64,
    /// Its chain hash, hex.
    pub hash: String,
}

/// The minutes of one sitting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minutes {
    /// Sitting id.
    pub sitting: String,
    /// Title.
    pub title: String,
    /// The log's epoch.
    pub epoch: String,
    /// Total membership (deputies on the roster).
    pub members: u32,
    /// When it opened.
    pub opened_at: Option<Millis>,
    /// Its suspensions.
    pub suspensions: Vec<Suspension>,
    /// When it closed.
    pub closed_at: Option<Millis>,
    /// Every check-in, in order.
    pub attendance: Vec<Attendance>,
    /// Deputies present at the end of the log.
    pub present_at_end: u32,
    /// The agenda, in its final order, with speeches and votes.
    pub items: Vec<Item>,
    /// Every vote, in order.
    pub votes: Vec<Vote>,
    /// Every document.
    pub documents: Vec<Document>,
    /// The chain head.
    pub head: Head,
    /// The signed checkpoints of this log.
    pub checkpoints: Vec<Checkpoint>,
    /// When these minutes were made (the only part that differs between two exports of the
    /// same log).
    pub generated_at: Millis,
}

/// Why minutes could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MinutesError {
    /// The log does not start with the sitting's creation.
    #[error("the log does not start with the sitting's creation")]
    NotCreated,
}

/// A named ballot as the roll call is built.
struct Ballot {
    choice: Choice,
    changes: u32,
    on_behalf: Option<OnBehalf>,
    step_up: bool,
}

fn person(roster: &Roster, id: &ActorId) -> Person {
    let actor = roster.actor(id);
    Person {
        id: id.clone(),
        name: actor
            .map(|a| a.name.clone())
            .unwrap_or_else(|| id.to_string()),
        delegation: actor
            .and_then(|a| a.delegation.as_ref())
            .and_then(|d| roster.delegations.get(d))
            .map(|d| d.name.clone()),
    }
}

/// Builds the minutes from a sitting's whole log (in order), its epoch, the chain head and
/// its checkpoints.
pub fn build(
    epoch: &str,
    events: &[StoredEvent],
    head: Head,
    checkpoints: Vec<Checkpoint>,
    generated_at: Millis,
) -> Result<Minutes, MinutesError> {
    let Some(Event::SittingCreated {
        sitting,
        title,
        roster,
        agenda,
        ..
    }) = events.first().map(|e| &e.event)
    else {
        return Err(MinutesError::NotCreated);
    };
    let end = events.last().map(|e| e.at).unwrap_or(Millis(0));
    let mut m = Minutes {
        sitting: sitting.to_string(),
        title: title.clone(),
        epoch: epoch.to_owned(),
        members: roster.members(),
        opened_at: None,
        suspensions: Vec::new(),
        closed_at: None,
        attendance: Vec::new(),
        present_at_end: 0,
        items: Vec::new(),
        votes: Vec::new(),
        documents: Vec::new(),
        head,
        checkpoints,
        generated_at,
    };
    let mut items: BTreeMap<ItemId, Item> = BTreeMap::new();
    let mut order: Vec<ItemId> = Vec::new();
    for i in agenda {
        order.push(i.item);
        items.insert(
            i.item,
            Item {
                item: i.item,
                title: i.title.clone(),
                speeches: Vec::new(),
                votes: Vec::new(),
            },
        );
    }
    let mut current: Option<ItemId> = None;
    // Index into m.attendance of each deputy's open check-in.
    let mut checked_in: BTreeMap<ActorId, usize> = BTreeMap::new();
    // The item and index of the speech under way.
    let mut speaking: Option<(ItemId, usize)> = None;
    let mut votes: BTreeMap<VoteId, (Vote, BTreeMap<ActorId, Ballot>)> = BTreeMap::new();
    let mut documents: BTreeMap<DocumentId, Document> = BTreeMap::new();
    for record in events.iter().skip(1) {
        let at = record.at;
        match &record.event {
            Event::SittingCreated { .. } => {}
            Event::SittingOpened => m.opened_at = m.opened_at.or(Some(at)),
            Event::SittingSuspended { reason } => m.suspensions.push(Suspension {
                at,
                reason: reason.clone(),
                resumed_at: None,
            }),
            Event::SittingResumed => {
                if let Some(s) = m.suspensions.last_mut() {
                    s.resumed_at = s.resumed_at.or(Some(at));
                }
            }
            Event::SittingClosed => m.closed_at = Some(at),
            Event::CheckedIn {
                deputy,
                by_clerk,
                location,
            } => {
                checked_in.insert(deputy.clone(), m.attendance.len());
                m.attendance.push(Attendance {
                    deputy: person(roster, deputy),
                    checked_in_at: at,
                    location: *location,
                    by_clerk: by_clerk.clone(),
                    checked_out_at: None,
                });
            }
            Event::CheckedOut { deputy, .. } => {
                if let Some(i) = checked_in.remove(deputy)
                    && let Some(a) = m.attendance.get_mut(i)
                {
                    a.checked_out_at = Some(at);
                }
            }
            Event::AgendaItemAdded {
                item,
                title,
                position,
            } => {
                let pos = usize::try_from(*position).unwrap_or(usize::MAX);
                order.insert(pos.min(order.len()), *item);
                items.insert(
                    *item,
                    Item {
                        item: *item,
                        title: title.clone(),
                        speeches: Vec::new(),
                        votes: Vec::new(),
                    },
                );
            }
            Event::AgendaReordered { order: new } => order = new.clone(),
            Event::CurrentItemSet { item } => current = Some(*item),
            Event::FloorGranted {
                deputy,
                kind,
                granted_at,
                ..
            } => {
                if let Some(item) = current.and_then(|c| items.get_mut(&c)) {
                    speaking = Some((item.item, item.speeches.len()));
                    item.speeches.push(Speech {
                        deputy: person(roster, deputy),
                        kind: *kind,
                        started_at: *granted_at,
                        duration_secs: 0,
                        extensions: 0,
                        ended: None,
                    });
                }
            }
            Event::FloorExtended { .. } => {
                if let Some(s) = speech(&mut items, speaking) {
                    s.extensions += 1;
                }
            }
            Event::FloorEnded { reason, at, .. } => {
                if let Some(s) = speech(&mut items, speaking.take()) {
                    s.ended = Some(*reason);
                    s.duration_secs = secs_between(s.started_at, *at);
                }
            }
            Event::VoteOpened {
                vote,
                item,
                question,
                method,
                rule,
                opened_at,
                rerun_of,
                step_up,
                ..
            } => {
                if let Some(i) = items.get_mut(item) {
                    i.votes.push(*vote);
                }
                votes.insert(
                    *vote,
                    (
                        Vote {
                            vote: *vote,
                            item: *item,
                            question: question.clone(),
                            method: *method,
                            rule: *rule,
                            opened_at: *opened_at,
                            step_up: *step_up,
                            rerun_of: *rerun_of,
                            outcome: VoteOutcome::Open,
                            roll_call: Vec::new(),
                            took_part: Vec::new(),
                        },
                        BTreeMap::new(),
                    ),
                );
            }
            Event::BallotCast {
                vote,
                deputy,
                choice,
                on_behalf,
                step_up,
            } => {
                if let Some((_, ballots)) = votes.get_mut(vote) {
                    let changes = ballots.get(deputy).map_or(0, |b| b.changes + 1);
                    ballots.insert(
                        deputy.clone(),
                        Ballot {
                            choice: *choice,
                            changes,
                            on_behalf: on_behalf.clone(),
                            step_up: *step_up,
                        },
                    );
                }
            }
            Event::SecretBallotTaken { vote, deputy, .. } => {
                if let Some((v, _)) = votes.get_mut(vote) {
                    v.took_part.push(person(roster, deputy));
                }
            }
            Event::VoteClosed { vote, at, result } => {
                if let Some((v, _)) = votes.get_mut(vote) {
                    v.outcome = VoteOutcome::Closed {
                        at: *at,
                        result: result.clone(),
                    };
                }
            }
            Event::VoteVoided { vote, reason } => {
                if let Some((v, _)) = votes.get_mut(vote) {
                    v.outcome = VoteOutcome::Voided {
                        reason: reason.clone(),
                    };
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
                access,
                ..
            } => {
                let d = documents.entry(*document).or_insert_with(|| Document {
                    document: *document,
                    item: *item,
                    access: access.clone(),
                    versions: Vec::new(),
                });
                d.versions.push(DocumentVersion {
                    version: *version,
                    title: title.clone(),
                    media_type: media_type.clone(),
                    size: *size,
                    sha256: sha256.clone(),
                    published_at: at,
                });
            }
            Event::FloorRequested { .. }
            | Event::FloorRequestWithdrawn { .. }
            | Event::QueueReordered { .. }
            | Event::SecretChoice { .. }
            | Event::DocumentAcknowledged { .. } => {}
        }
    }
    // A speech still under way when the log ends lasts until then.
    if let Some(s) = speech(&mut items, speaking) {
        s.duration_secs = secs_between(s.started_at, end);
    }
    m.present_at_end = u32::try_from(checked_in.len()).unwrap_or(u32::MAX);
    m.items = order.iter().filter_map(|i| items.remove(i)).collect();
    m.votes = votes
        .into_values()
        .map(|(mut v, ballots)| {
            v.roll_call = ballots
                .into_iter()
                .map(|(deputy, b)| RollCall {
                    deputy: person(roster, &deputy),
                    choice: b.choice,
                    changes: b.changes,
                    on_behalf: b.on_behalf,
                    step_up: b.step_up,
                })
                .collect();
            v
        })
        .collect();
    m.documents = documents.into_values().collect();
    Ok(m)
}

fn speech(items: &mut BTreeMap<ItemId, Item>, at: Option<(ItemId, usize)>) -> Option<&mut Speech> {
    let (item, i) = at?;
    items.get_mut(&item)?.speeches.get_mut(i)
}

fn secs_between(from: Millis, to: Millis) -> u64 {
    u64::try_from((to.0 - from.0).max(0) / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests;
