//! Events: the facts the log records. `apply` folds them into the state.
//!
//! Events are serialized as JSON with a `type` tag; struct fields serialize in declaration
//! order and maps are ordered, so the bytes are canonical and can be hashed.

use super::ids::{ActorId, DocumentId, ItemId, Location, Millis, RequestId, SittingId, VoteId};
use super::roster::{Role, Roster};
use super::rules::{Rules, SpeechKind};
use super::vote::{Choice, Method, PassRule, VoteResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Why the floor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FloorEndReason {
    /// The chair took the floor back.
    Revoked,
    /// The speaker finished.
    Yielded,
    /// The time ran out.
    Expired,
    /// The chair gave the floor to someone else.
    Superseded,
    /// The sitting was suspended or closed.
    SittingInterrupted,
}

/// Who may read a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "level", content = "roles")]
pub enum Access {
    /// Everyone, including observers and the public display.
    Public,
    /// Deputies and staff.
    Deputies,
    /// Only these roles.
    Restricted(BTreeSet<Role>),
}

/// How far a deputy has got with a document.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledgement {
    /// The device received it.
    Received,
    /// The deputy opened it.
    Read,
}

/// A ballot recorded by a clerk on a deputy's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnBehalf {
    /// The clerk who recorded it.
    pub clerk: ActorId,
    /// Why (e.g. the deputy's device failed).
    pub reason: String,
}

/// One agenda item as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewItem {
    /// Its id.
    pub item: ItemId,
    /// Its title.
    pub title: String,
}

/// A fact in the sitting's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The sitting exists, with its roster, rules and initial agenda.
    SittingCreated {
        /// Sitting id.
        sitting: SittingId,
        /// Title shown to users.
        title: String,
        /// Who takes part.
        roster: Roster,
        /// Procedure rules.
        rules: Rules,
        /// Initial agenda.
        agenda: Vec<NewItem>,
    },
    /// The chair opened the sitting.
    SittingOpened,
    /// The chair suspended the sitting.
    SittingSuspended {
        /// Reason given.
        reason: String,
    },
    /// The chair resumed the sitting.
    SittingResumed,
    /// The chair closed the sitting.
    SittingClosed,
    /// A deputy is present.
    CheckedIn {
        /// The deputy.
        deputy: ActorId,
        /// A clerk who checked the deputy in, if not the deputy.
        by_clerk: Option<ActorId>,
        /// Where they sit, if said (absent from events recorded before it was asked, which
        /// keep their bytes and hashes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    /// A deputy left.
    CheckedOut {
        /// The deputy.
        deputy: ActorId,
        /// A clerk who checked the deputy out, if not the deputy.
        by_clerk: Option<ActorId>,
    },
    /// An agenda item was added.
    AgendaItemAdded {
        /// Its id.
        item: ItemId,
        /// Title.
        title: String,
        /// Position in the agenda, from 0.
        position: u32,
    },
    /// The agenda has a new order.
    AgendaReordered {
        /// Every item, in the new order.
        order: Vec<ItemId>,
    },
    /// The sitting moved to an agenda item.
    CurrentItemSet {
        /// The item.
        item: ItemId,
    },
    /// A deputy asked to speak.
    FloorRequested {
        /// Request id.
        request: RequestId,
        /// Who asked.
        deputy: ActorId,
        /// Kind of request.
        kind: SpeechKind,
        /// Position in the queue, from 0.
        position: u32,
    },
    /// A request left the queue without being granted.
    FloorRequestWithdrawn {
        /// The request.
        request: RequestId,
        /// The chair, if the chair removed it.
        by_chair: Option<ActorId>,
    },
    /// The chair reordered the queue.
    QueueReordered {
        /// Every pending request, in the new order.
        order: Vec<RequestId>,
    },
    /// A deputy has the floor.
    FloorGranted {
        /// The speaker.
        deputy: ActorId,
        /// Kind of speech.
        kind: SpeechKind,
        /// The request granted, if from the queue.
        request: Option<RequestId>,
        /// When the floor was given.
        granted_at: Millis,
        /// When the time runs out.
        deadline: Millis,
    },
    /// The chair extended the speaking time.
    FloorExtended {
        /// The new deadline.
        deadline: Millis,
    },
    /// The floor ended.
    FloorEnded {
        /// Who had it.
        deputy: ActorId,
        /// Why it ended.
        reason: FloorEndReason,
        /// When.
        at: Millis,
    },
    /// A vote opened.
    VoteOpened {
        /// Vote id.
        vote: VoteId,
        /// Agenda item it belongs to.
        item: ItemId,
        /// The question put.
        question: String,
        /// Named or secret.
        method: Method,
        /// What is needed to pass.
        rule: PassRule,
        /// When it opened.
        opened_at: Millis,
        /// When it closes by itself.
        deadline: Millis,
        /// Whether named ballots may be changed before the close.
        allow_change: bool,
        /// The voided vote this one re-runs.
        rerun_of: Option<VoteId>,
        /// Each ballot needs a passkey confirmation (a step-up) of whoever enters it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        step_up: bool,
    },
    /// A named ballot (new or changed).
    BallotCast {
        /// Vote.
        vote: VoteId,
        /// Deputy.
        deputy: ActorId,
        /// Choice.
        choice: Choice,
        /// Set when a clerk recorded it for the deputy.
        on_behalf: Option<OnBehalf>,
        /// Whoever entered it (the deputy, or the clerk on their behalf) confirmed it with a
        /// passkey, for this vote and this choice.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        step_up: bool,
    },
    /// A deputy took part in a secret vote; the choice is recorded apart, without the deputy.
    SecretBallotTaken {
        /// Vote.
        vote: VoteId,
        /// Deputy.
        deputy: ActorId,
        /// The deputy confirmed the ballot with a passkey.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        step_up: bool,
    },
    /// A secret choice. Sealed: the store keeps it apart from the ordered log, with no actor,
    /// time or sequence number, and it is never sent to clients one by one.
    SecretChoice {
        /// Vote.
        vote: VoteId,
        /// Choice.
        choice: Choice,
    },
    /// A vote closed with its result.
    VoteClosed {
        /// Vote.
        vote: VoteId,
        /// When.
        at: Millis,
        /// The result.
        result: VoteResult,
    },
    /// The chair voided a vote.
    VoteVoided {
        /// Vote.
        vote: VoteId,
        /// Reason given.
        reason: String,
    },
    /// A document or a new version of it was published.
    DocumentPublished {
        /// Document id (versions share it).
        document: DocumentId,
        /// Version, from 1.
        version: u32,
        /// Agenda item.
        item: ItemId,
        /// Title.
        title: String,
        /// Media type, e.g. application/pdf.
        media_type: String,
        /// Size in bytes.
        size: u64,
        /// SHA-256 of the content, lowercase hex.
        sha256: String,
        /// The file's name as uploaded (for saving it again), if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_name: Option<String>,
        /// Who may read it.
        access: Access,
    },
    /// A deputy acknowledged a document version.
    DocumentAcknowledged {
        /// Document.
        document: DocumentId,
        /// Version.
        version: u32,
        /// Deputy.
        deputy: ActorId,
        /// Received or read.
        ack: Acknowledgement,
    },
}

impl Event {
    /// Whether this event must be kept apart from the ordered log (a secret choice).
    pub fn is_sealed(&self) -> bool {
        matches!(self, Event::SecretChoice { .. })
    }

    /// The event's type tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SittingCreated { .. } => "sitting_created",
            Event::SittingOpened => "sitting_opened",
            Event::SittingSuspended { .. } => "sitting_suspended",
            Event::SittingResumed => "sitting_resumed",
            Event::SittingClosed => "sitting_closed",
            Event::CheckedIn { .. } => "checked_in",
            Event::CheckedOut { .. } => "checked_out",
            Event::AgendaItemAdded { .. } => "agenda_item_added",
            Event::AgendaReordered { .. } => "agenda_reordered",
            Event::CurrentItemSet { .. } => "current_item_set",
            Event::FloorRequested { .. } => "floor_requested",
            Event::FloorRequestWithdrawn { .. } => "floor_request_withdrawn",
            Event::QueueReordered { .. } => "queue_reordered",
            Event::FloorGranted { .. } => "floor_granted",
            Event::FloorExtended { .. } => "floor_extended",
            Event::FloorEnded { .. } => "floor_ended",
            Event::VoteOpened { .. } => "vote_opened",
            Event::BallotCast { .. } => "ballot_cast",
            Event::SecretBallotTaken { .. } => "secret_ballot_taken",
            Event::SecretChoice { .. } => "secret_choice",
            Event::VoteClosed { .. } => "vote_closed",
            Event::VoteVoided { .. } => "vote_voided",
            Event::DocumentPublished { .. } => "document_published",
            Event::DocumentAcknowledged { .. } => "document_acknowledged",
        }
    }
}
