//! The path every command takes, whichever transport brought it (a WebSocket `command`
//! message or `POST /api/sittings/{id}/commands`): a ballot's passkey confirmation, a
//! document's upload, then the writer; and the metrics and audit trail of its outcome.
//!
//! The transports own their framing, limits and answers; what a command *does* and how its
//! outcome is recorded is decided here once.

use super::Host;
use crate::audit::AuditEntry;
use crate::auth::passkey::{BallotPurpose, StepUpProof, Verified};
use crate::sitting::{self, ActorId, Role, SittingId};
use crate::telemetry;
use crate::writer::{Ack, SittingHandle, SubmitError};
use std::time::Instant;

/// A client-chosen id (`command_id`, `request_id`, `Idempotency-Key`): 1 to 64 printable
/// ASCII characters.
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= super::protocol::MAX_COMMAND_ID_BYTES
        && id.chars().all(|c| c.is_ascii_graphic())
}

/// Runs `command` from `actor` with the client's `command_id` (a repeated id answers the
/// first outcome): its passkey confirmation checked if it is a ballot that carries one, a
/// document's upload checked, then submitted; resolves once it is durable or refused, with
/// when the writer answered.
pub async fn execute(
    host: &dyn Host,
    handle: &SittingHandle,
    actor: &ActorId,
    command_id: &str,
    command: sitting::Command,
    step_up: Option<StepUpProof>,
) -> (Result<Ack, SubmitError>, Instant) {
    let name = command.kind();
    let refuse = |r: sitting::Rejection| {
        telemetry::command(name, r.code.as_str());
        (Err(SubmitError::Rejected(r)), Instant::now())
    };
    let purpose = ballot_purpose(handle.id(), actor, &command);
    if step_up.is_some() && purpose.is_none() {
        return refuse(sitting::Rejection::new(
            sitting::Code::StepUpUnexpected,
            "only a ballot takes a passkey confirmation",
        ));
    }
    // A command the actor may not give at all is refused by the rules, with no passkey check
    // (nor its audit entry) first.
    let permitted = handle
        .roster()
        .actor(actor)
        .is_some_and(|a| sitting::role_permits(a, &command));
    let assurance = match (step_up, purpose) {
        (Some(proof), Some(purpose)) if permitted => {
            match check_step_up(host, actor, &purpose, &proof, command_id).await {
                Ok(a) => a,
                Err(r) => return refuse(r),
            }
        }
        _ => sitting::Assurance::NONE,
    };
    // A document must name content that was uploaded, as it is.
    if permitted {
        match host.documents().check_command(&command).await {
            Ok(()) => {}
            Err(Ok(r)) => return refuse(r),
            Err(Err(e)) => {
                tracing::error!(error = %e, "checking a document's upload failed");
                return (Err(SubmitError::Storage), Instant::now());
            }
        }
    }
    let clerk = handle
        .roster()
        .actor(actor)
        .is_some_and(|a| a.roles.contains(&Role::Clerk));
    let (outcome, answered) = handle
        .submit_timed(
            actor.clone(),
            Some(command_id.to_owned()),
            command,
            assurance,
        )
        .await;
    telemetry::command(name, outcome_code(&outcome));
    audit_outcome(host, actor, handle.id(), name, clerk, &outcome);
    (outcome, answered)
}

/// The code an outcome is known by on the wire and in the metrics.
pub fn outcome_code(outcome: &Result<Ack, SubmitError>) -> &'static str {
    match outcome {
        Ok(_) => "accepted",
        Err(SubmitError::Rejected(r)) => r.code.as_str(),
        Err(SubmitError::Storage) => "storage_unavailable",
        Err(SubmitError::Unavailable) => "unavailable",
    }
}

/// What a ballot command enters, for matching against its passkey confirmation.
fn ballot_purpose(
    sitting: &SittingId,
    actor: &ActorId,
    command: &sitting::Command,
) -> Option<BallotPurpose> {
    let (vote, deputy, choice) = match command {
        sitting::Command::CastBallot { vote, choice } => (*vote, actor.clone(), *choice),
        sitting::Command::RecordBallot {
            vote,
            deputy,
            choice,
            ..
        } => (*vote, deputy.clone(), *choice),
        _ => return None,
    };
    Some(BallotPurpose {
        sitting: sitting.clone(),
        vote,
        deputy,
        choice,
    })
}

/// Checks a ballot's passkey confirmation, and records the check in the audit trail.
async fn check_step_up(
    host: &dyn Host,
    actor: &ActorId,
    purpose: &BallotPurpose,
    proof: &StepUpProof,
    command_id: &str,
) -> Result<sitting::Assurance, sitting::Rejection> {
    let checked = host
        .passkeys()
        .verify(
            actor,
            purpose,
            proof,
            command_id,
            crate::clock::now_millis(),
        )
        .await;
    let outcome = match &checked {
        Ok(Verified::Fresh) => "given",
        Ok(Verified::Retry) => "retry",
        Err(r) => r.code.as_str(),
    };
    host.audit(AuditEntry::StepUp {
        actor: actor.clone(),
        sitting: purpose.sitting.clone(),
        vote: purpose.vote.0,
        deputy: purpose.deputy.clone(),
        outcome: outcome.to_owned(),
        credential: checked.is_ok().then(|| proof.credential.id.clone()),
    });
    checked.map(|_| sitting::Assurance::STEPPED_UP)
}

/// Puts what the audit trail keeps of a command's outcome there: a refusal as not
/// permitted, and every command a clerk got accepted.
fn audit_outcome(
    host: &dyn Host,
    actor: &ActorId,
    sitting: &SittingId,
    command: &str,
    clerk: bool,
    outcome: &Result<Ack, SubmitError>,
) {
    match outcome {
        Err(SubmitError::Rejected(r)) if r.code == sitting::Code::NotPermitted => {
            host.audit(AuditEntry::Refused {
                actor: actor.clone(),
                sitting: sitting.clone(),
                command: command.to_owned(),
                code: r.code.as_str().to_owned(),
            });
        }
        Ok(ack) if clerk => host.audit(AuditEntry::ClerkEntry {
            actor: actor.clone(),
            sitting: sitting.clone(),
            command: command.to_owned(),
            seq: ack.seq,
        }),
        _ => {}
    }
}
