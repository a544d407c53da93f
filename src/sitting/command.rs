//! Commands: what an actor asks the sitting to do. `decide` turns one into events or a rejection.

use super::event::{Access, Acknowledgement};
use super::ids::{ActorId, DocumentId, ItemId, Location, RequestId, SittingId, VoteId};
use super::roster::Roster;
use super::rules::{Rules, SpeechKind};
use super::vote::{Choice, Method, PassRule};
use serde::{Deserialize, Serialize};

/// A command to the sitting. The actor issuing it is passed beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Create the sitting (system only, on an empty state: `POST /api/sittings` makes one).
    CreateSitting {
        /// Sitting id.
        sitting: SittingId,
        /// Title.
        title: String,
        /// Roster.
        #[schema(value_type = Object)]
        roster: Roster,
        /// Rules.
        #[schema(value_type = Object)]
        rules: Rules,
        /// Initial agenda titles.
        agenda: Vec<String>,
    },
    /// Chair: open the sitting.
    OpenSitting,
    /// Chair: suspend (recess).
    SuspendSitting {
        /// Reason shown to users.
        reason: String,
    },
    /// Chair: resume after a suspension.
    ResumeSitting,
    /// Chair: close the sitting.
    CloseSitting,
    /// Deputy (self) or clerk (on behalf): record presence.
    CheckIn {
        /// The deputy; a deputy may name only themself.
        deputy: ActorId,
        /// Where they sit, if said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    /// Deputy (self) or clerk: record departure.
    CheckOut {
        /// The deputy.
        deputy: ActorId,
    },
    /// Chair: add an agenda item.
    AddAgendaItem {
        /// Title.
        title: String,
        /// Position from 0; at the end if absent.
        position: Option<u32>,
    },
    /// Chair: reorder the agenda (must list every item once).
    ReorderAgenda {
        /// New order.
        order: Vec<ItemId>,
    },
    /// Chair: move to an agenda item.
    SetCurrentItem {
        /// The item.
        item: ItemId,
    },
    /// Deputy: ask to speak.
    RequestFloor {
        /// Kind of request.
        kind: SpeechKind,
    },
    /// Deputy (own request) or chair: withdraw a request.
    WithdrawRequest {
        /// The request.
        request: RequestId,
    },
    /// Chair: reorder the queue (must list every pending request once).
    ReorderQueue {
        /// New order.
        order: Vec<RequestId>,
    },
    /// Chair: give the floor to a queued request.
    GrantFloor {
        /// The request.
        request: RequestId,
    },
    /// Chair: give the floor to a present deputy directly.
    GiveFloor {
        /// The deputy.
        deputy: ActorId,
        /// Kind of speech (sets the time limit).
        kind: SpeechKind,
    },
    /// Chair: extend the current speaker's time.
    ExtendFloor {
        /// Seconds to add.
        secs: u32,
    },
    /// Chair: take the floor back.
    RevokeFloor,
    /// Speaker: finish speaking.
    YieldFloor,
    /// Chair: open a vote on the current agenda item.
    OpenVote {
        /// The question put.
        question: String,
        /// Named or secret.
        method: Method,
        /// Pass rule; the rules' default if absent.
        rule: Option<PassRule>,
        /// Window in seconds; the rules' default if absent.
        window_secs: Option<u32>,
        /// Whether named ballots may be changed; the rules' default if absent.
        allow_change: Option<bool>,
        /// The voided vote this re-runs.
        rerun_of: Option<VoteId>,
        /// Whether each ballot needs a passkey confirmation; the rules' default if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_up: Option<bool>,
    },
    /// Deputy: cast (or change) one's own ballot.
    CastBallot {
        /// Vote.
        vote: VoteId,
        /// Choice.
        choice: Choice,
    },
    /// Clerk: record a named ballot for a deputy, with a reason.
    RecordBallot {
        /// Vote.
        vote: VoteId,
        /// Deputy.
        deputy: ActorId,
        /// Choice.
        choice: Choice,
        /// Why it is recorded on the deputy's behalf.
        reason: String,
    },
    /// Chair: close the vote now.
    CloseVote {
        /// Vote.
        vote: VoteId,
    },
    /// Chair: void a vote, giving a reason.
    VoidVote {
        /// Vote.
        vote: VoteId,
        /// Reason.
        reason: String,
    },
    /// Clerk: publish a document for an agenda item.
    PublishDocument {
        /// Agenda item.
        item: ItemId,
        /// Title.
        title: String,
        /// Media type.
        media_type: String,
        /// Size in bytes.
        size: u64,
        /// SHA-256, hex.
        sha256: String,
        /// The file's name as uploaded (for saving it again), if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_name: Option<String>,
        /// Who may read it: `{"level": "public"}`, `{"level": "deputies"}` or
        /// `{"level": "restricted", "roles": ["chair", …]}`.
        #[schema(value_type = Object)]
        access: Access,
    },
    /// Clerk: publish a new version of a document.
    SupersedeDocument {
        /// Document.
        document: DocumentId,
        /// Title of the new version.
        title: String,
        /// Media type.
        media_type: String,
        /// Size in bytes.
        size: u64,
        /// SHA-256, hex.
        sha256: String,
        /// The file's name as uploaded (for saving it again), if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_name: Option<String>,
    },
    /// Deputy: acknowledge a document version.
    AcknowledgeDocument {
        /// Document.
        document: DocumentId,
        /// Version.
        version: u32,
        /// Received or read.
        ack: Acknowledgement,
    },
    /// The clock: close what has run out at `now`.
    Tick,
}

impl Command {
    /// The command's wire name (its `command` tag).
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CreateSitting { .. } => "create_sitting",
            Command::OpenSitting => "open_sitting",
            Command::SuspendSitting { .. } => "suspend_sitting",
            Command::ResumeSitting => "resume_sitting",
            Command::CloseSitting => "close_sitting",
            Command::CheckIn { .. } => "check_in",
            Command::CheckOut { .. } => "check_out",
            Command::AddAgendaItem { .. } => "add_agenda_item",
            Command::ReorderAgenda { .. } => "reorder_agenda",
            Command::SetCurrentItem { .. } => "set_current_item",
            Command::RequestFloor { .. } => "request_floor",
            Command::WithdrawRequest { .. } => "withdraw_request",
            Command::ReorderQueue { .. } => "reorder_queue",
            Command::GrantFloor { .. } => "grant_floor",
            Command::GiveFloor { .. } => "give_floor",
            Command::ExtendFloor { .. } => "extend_floor",
            Command::RevokeFloor => "revoke_floor",
            Command::YieldFloor => "yield_floor",
            Command::OpenVote { .. } => "open_vote",
            Command::CastBallot { .. } => "cast_ballot",
            Command::RecordBallot { .. } => "record_ballot",
            Command::CloseVote { .. } => "close_vote",
            Command::VoidVote { .. } => "void_vote",
            Command::PublishDocument { .. } => "publish_document",
            Command::SupersedeDocument { .. } => "supersede_document",
            Command::AcknowledgeDocument { .. } => "acknowledge_document",
            Command::Tick => "tick",
        }
    }
}
