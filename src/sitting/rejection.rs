//! Why a command was refused: a stable machine code and a human detail.

use serde::{Deserialize, Serialize};

/// Stable rejection codes. Clients switch on these; the detail is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The actor's role does not allow this command.
    NotPermitted,
    /// The actor is not in the roster.
    UnknownActor,
    /// The deputy must be checked in.
    NotPresent,
    /// The deputy is already checked in.
    AlreadyPresent,
    /// The sitting is not in a phase that allows this.
    WrongPhase,
    /// The sitting already exists.
    AlreadyCreated,
    /// The sitting has not been created.
    NotCreated,
    /// No such agenda item.
    NoSuchItem,
    /// No current agenda item.
    NoCurrentItem,
    /// No such request to speak.
    NoSuchRequest,
    /// The deputy already has a pending request.
    AlreadyRequested,
    /// Nobody has the floor.
    NoFloor,
    /// No such vote.
    NoSuchVote,
    /// Another vote is open.
    VoteInProgress,
    /// The vote is closed (or past its deadline).
    VoteClosed,
    /// The ballot was already cast and may not be changed.
    BallotFinal,
    /// The vote is still open.
    VoteOpen,
    /// The vote is not voided (for a re-run) or already voided.
    NotVoided,
    /// Already voided.
    AlreadyVoided,
    /// No such document or version.
    NoSuchDocument,
    /// The actor may not read this document.
    NoAccess,
    /// Already acknowledged at that level.
    AlreadyAcknowledged,
    /// A field is invalid; the detail says which.
    Invalid,
    /// The vote asks each ballot for a passkey confirmation and none came with it.
    StepUpRequired,
    /// The passkey confirmation was given for another vote, choice, deputy or account.
    StepUpMismatch,
    /// The passkey confirmation was already used for another ballot.
    StepUpUsed,
    /// No such passkey challenge: never issued, or it ran out.
    StepUpExpired,
    /// The passkey's answer did not verify (signature, origin, or user verification).
    StepUpInvalid,
    /// A passkey confirmation came with a command that takes none.
    StepUpUnexpected,
    /// Too few deputies are present for the sitting to decide.
    NoQuorum,
    /// A document names content (by its hash) that was never uploaded.
    NoSuchBlob,
    /// A document's size or media type is not what its uploaded content is.
    BlobMismatch,
    /// The speaker's delegation has used its speaking time on this agenda item.
    BudgetExhausted,
}

impl Code {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotPermitted => "not_permitted",
            Code::UnknownActor => "unknown_actor",
            Code::NotPresent => "not_present",
            Code::AlreadyPresent => "already_present",
            Code::WrongPhase => "wrong_phase",
            Code::AlreadyCreated => "already_created",
            Code::NotCreated => "not_created",
            Code::NoSuchItem => "no_such_item",
            Code::NoCurrentItem => "no_current_item",
            Code::NoSuchRequest => "no_such_request",
            Code::AlreadyRequested => "already_requested",
            Code::NoFloor => "no_floor",
            Code::NoSuchVote => "no_such_vote",
            Code::VoteInProgress => "vote_in_progress",
            Code::VoteClosed => "vote_closed",
            Code::BallotFinal => "ballot_final",
            Code::VoteOpen => "vote_open",
            Code::NotVoided => "not_voided",
            Code::AlreadyVoided => "already_voided",
            Code::NoSuchDocument => "no_such_document",
            Code::NoAccess => "no_access",
            Code::AlreadyAcknowledged => "already_acknowledged",
            Code::Invalid => "invalid",
            Code::StepUpRequired => "step_up_required",
            Code::StepUpMismatch => "step_up_mismatch",
            Code::StepUpUsed => "step_up_used",
            Code::StepUpExpired => "step_up_expired",
            Code::StepUpInvalid => "step_up_invalid",
            Code::StepUpUnexpected => "step_up_unexpected",
            Code::NoQuorum => "no_quorum",
            Code::NoSuchBlob => "no_such_blob",
            Code::BlobMismatch => "blob_mismatch",
            Code::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {detail}", code.as_str())]
pub struct Rejection {
    /// Stable code.
    pub code: Code,
    /// Human-readable detail (English; clients translate by code).
    pub detail: String,
}

impl Rejection {
    /// A rejection with this code and detail.
    pub fn new(code: Code, detail: impl Into<String>) -> Rejection {
        Rejection {
            code,
            detail: detail.into(),
        }
    }
}
