//! `decide`: checks one command against the state and the actor's roles and returns the
//! events it causes, or a rejection with a stable code. Pure: no I/O, no clock.

use super::command::Command;
use super::event::{Access, Event, FloorEndReason, NewItem, OnBehalf};
use super::ids::{ActorId, DocumentId, ItemId, Millis, RequestId, VoteId};
use super::rejection::{Code, Rejection};
use super::roster::{Actor, Role};
use super::rules::SpeechKind;
use super::state::{Phase, SittingState, VoteState};
use super::vote::{self, Choice, Method};

/// Longest title (agenda items, documents), in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest vote question, in characters.
pub const MAX_QUESTION_CHARS: usize = 2000;
/// Longest reason (suspension, void, recording on behalf), in characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// Longest voting window, in seconds (one day).
pub const MAX_VOTE_WINDOW_SECS: u32 = 24 * 3600;
/// Longest file name of a document, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Largest document accepted, in bytes (10 GiB).
pub const MAX_DOCUMENT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

type Decision = Result<Vec<Event>, Rejection>;

fn reject<T>(code: Code, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, detail))
}

/// Which roles may issue a command at all, before any check of the state.
///
/// This is the role × command matrix; `decide` applies it first, then the rules that depend
/// on who the actor is (a deputy checks in only themself) and on the state.
pub fn role_permits(actor: &Actor, command: &Command) -> bool {
    let presides = actor.presides();
    match command {
        Command::CreateSitting { .. } => false,
        Command::Tick => true,
        Command::OpenSitting
        | Command::SuspendSitting { .. }
        | Command::ResumeSitting
        | Command::CloseSitting => actor.has(Role::Chair),
        Command::CheckIn { .. } | Command::CheckOut { .. } => {
            actor.has(Role::Deputy) || actor.has(Role::Clerk)
        }
        Command::AddAgendaItem { .. }
        | Command::ReorderAgenda { .. }
        | Command::SetCurrentItem { .. }
        | Command::ReorderQueue { .. }
        | Command::GrantFloor { .. }
        | Command::GiveFloor { .. }
        | Command::ExtendFloor { .. }
        | Command::RevokeFloor
        | Command::OpenVote { .. }
        | Command::CloseVote { .. }
        | Command::VoidVote { .. } => presides,
        Command::RequestFloor { .. }
        | Command::YieldFloor
        | Command::CastBallot { .. }
        | Command::AcknowledgeDocument { .. } => actor.has(Role::Deputy),
        Command::WithdrawRequest { .. } => actor.has(Role::Deputy) || presides,
        Command::RecordBallot { .. }
        | Command::PublishDocument { .. }
        | Command::SupersedeDocument { .. } => actor.has(Role::Clerk),
    }
}

/// What the server checked about one command beyond who sent it. Outside the command, so a
/// client can never claim it: the control plane sets it after checking the proof.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Assurance {
    /// The actor confirmed this ballot, for this vote and choice, with a passkey.
    pub step_up: bool,
}

impl Assurance {
    /// Nothing checked beyond the actor's identity.
    pub const NONE: Assurance = Assurance { step_up: false };
    /// A passkey confirmation was checked.
    pub const STEPPED_UP: Assurance = Assurance { step_up: true };
}

/// Decides one command issued by `actor` at `now`, with nothing checked beyond who they are.
pub fn decide(state: &SittingState, actor: &ActorId, command: &Command, now: Millis) -> Decision {
    decide_assured(state, actor, command, Assurance::NONE, now)
}

/// Decides one command issued by `actor` at `now`, with what the server checked about it.
pub fn decide_assured(
    state: &SittingState,
    actor: &ActorId,
    command: &Command,
    assurance: Assurance,
    now: Millis,
) -> Decision {
    if let Command::CreateSitting {
        sitting,
        title,
        roster,
        rules,
        agenda,
    } = command
    {
        if !actor.is_system() {
            return reject(Code::NotPermitted, "only the server creates a sitting");
        }
        if state.phase != Phase::Uncreated {
            return reject(Code::AlreadyCreated, "the sitting already exists");
        }
        text("title", title, MAX_TITLE_CHARS)?;
        if roster.members() == 0 {
            return reject(Code::Invalid, "the roster has no deputies");
        }
        rules
            .validate()
            .map_err(|e| Rejection::new(Code::Invalid, e))?;
        let mut items = Vec::with_capacity(agenda.len());
        for (n, t) in agenda.iter().enumerate() {
            text("agenda title", t, MAX_TITLE_CHARS)?;
            items.push(NewItem {
                item: ItemId(u32::try_from(n + 1).unwrap_or(u32::MAX)),
                title: t.clone(),
            });
        }
        return Ok(vec![Event::SittingCreated {
            sitting: sitting.clone(),
            title: title.clone(),
            roster: roster.clone(),
            rules: rules.clone(),
            agenda: items,
        }]);
    }
    if state.phase == Phase::Uncreated {
        return reject(Code::NotCreated, "the sitting has not been created");
    }
    if let Command::Tick = command {
        return Ok(tick(state, now));
    }
    let Some(who) = state.roster.actor(actor) else {
        return reject(Code::UnknownActor, format!("{actor} is not in the roster"));
    };
    if !role_permits(who, command) {
        return reject(
            Code::NotPermitted,
            format!("{actor} may not {}", command_name(command)),
        );
    }
    match command {
        Command::CreateSitting { .. } | Command::Tick => Ok(Vec::new()),
        Command::OpenSitting => {
            phase_in(state, &[Phase::Scheduled])?;
            Ok(vec![Event::SittingOpened])
        }
        Command::SuspendSitting { reason } => {
            phase_in(state, &[Phase::Open])?;
            optional_text("reason", reason, MAX_REASON_CHARS)?;
            no_open_vote(state)?;
            let mut events = end_floor(state, FloorEndReason::SittingInterrupted, now);
            events.push(Event::SittingSuspended {
                reason: reason.clone(),
            });
            Ok(events)
        }
        Command::ResumeSitting => {
            phase_in(state, &[Phase::Suspended])?;
            Ok(vec![Event::SittingResumed])
        }
        Command::CloseSitting => {
            phase_in(state, &[Phase::Open, Phase::Suspended])?;
            no_open_vote(state)?;
            let mut events = end_floor(state, FloorEndReason::SittingInterrupted, now);
            events.push(Event::SittingClosed);
            Ok(events)
        }
        Command::CheckIn { deputy, location } => {
            phase_in(state, &[Phase::Scheduled, Phase::Open, Phase::Suspended])?;
            let by_clerk = self_or_clerk(state, who, deputy)?;
            if state.is_present(deputy) {
                return reject(Code::AlreadyPresent, format!("{deputy} is already present"));
            }
            Ok(vec![Event::CheckedIn {
                deputy: deputy.clone(),
                by_clerk,
                location: *location,
            }])
        }
        Command::CheckOut { deputy } => {
            phase_in(state, &[Phase::Scheduled, Phase::Open, Phase::Suspended])?;
            let by_clerk = self_or_clerk(state, who, deputy)?;
            if !state.is_present(deputy) {
                return reject(Code::NotPresent, format!("{deputy} is not present"));
            }
            let mut events = Vec::new();
            if let Some(request) = state.pending_request_of(deputy) {
                events.push(Event::FloorRequestWithdrawn {
                    request,
                    by_chair: None,
                });
            }
            if state.floor.as_ref().is_some_and(|f| &f.deputy == deputy) {
                events.extend(end_floor(state, FloorEndReason::Yielded, now));
            }
            events.push(Event::CheckedOut {
                deputy: deputy.clone(),
                by_clerk,
            });
            Ok(events)
        }
        Command::AddAgendaItem { title, position } => {
            not_closed(state)?;
            text("title", title, MAX_TITLE_CHARS)?;
            let len = u32::try_from(state.agenda.len()).unwrap_or(u32::MAX);
            let position = position.unwrap_or(len);
            if position > len {
                return reject(
                    Code::Invalid,
                    format!("position {position} is past the end ({len} items)"),
                );
            }
            Ok(vec![Event::AgendaItemAdded {
                item: ItemId(state.last_ids.item + 1),
                title: title.clone(),
                position,
            }])
        }
        Command::ReorderAgenda { order } => {
            not_closed(state)?;
            let current: Vec<ItemId> = state.agenda.iter().map(|i| i.id).collect();
            if !is_permutation(order, &current) {
                return reject(
                    Code::Invalid,
                    "the new order must list every agenda item exactly once",
                );
            }
            Ok(vec![Event::AgendaReordered {
                order: order.clone(),
            }])
        }
        Command::SetCurrentItem { item } => {
            not_closed(state)?;
            if !state.agenda.iter().any(|i| i.id == *item) {
                return reject(Code::NoSuchItem, format!("no agenda item {item}"));
            }
            no_open_vote(state)?;
            Ok(vec![Event::CurrentItemSet { item: *item }])
        }
        Command::RequestFloor { kind } => {
            phase_in(state, &[Phase::Open])?;
            must_be_present(state, actor)?;
            if state.pending_request_of(actor).is_some() {
                return reject(
                    Code::AlreadyRequested,
                    "withdraw the pending request before filing another",
                );
            }
            let position = if *kind == SpeechKind::PointOfOrder {
                state
                    .queue
                    .iter()
                    .take_while(|r| {
                        state
                            .requests
                            .get(r)
                            .is_some_and(|q| q.kind == SpeechKind::PointOfOrder)
                    })
                    .count()
            } else {
                state.queue.len()
            };
            Ok(vec![Event::FloorRequested {
                request: RequestId(state.last_ids.request + 1),
                deputy: actor.clone(),
                kind: *kind,
                position: u32::try_from(position).unwrap_or(u32::MAX),
            }])
        }
        Command::WithdrawRequest { request } => {
            let Some(req) = state.requests.get(request) else {
                return reject(Code::NoSuchRequest, format!("no pending request {request}"));
            };
            let by_chair = if &req.deputy == actor {
                None
            } else if who.presides() {
                Some(actor.clone())
            } else {
                return reject(
                    Code::NotPermitted,
                    "only the chair may withdraw another's request",
                );
            };
            Ok(vec![Event::FloorRequestWithdrawn {
                request: *request,
                by_chair,
            }])
        }
        Command::ReorderQueue { order } => {
            if !is_permutation(order, &state.queue) {
                return reject(
                    Code::Invalid,
                    "the new order must list every pending request exactly once",
                );
            }
            Ok(vec![Event::QueueReordered {
                order: order.clone(),
            }])
        }
        Command::GrantFloor { request } => {
            phase_in(state, &[Phase::Open])?;
            let Some(req) = state.requests.get(request) else {
                return reject(Code::NoSuchRequest, format!("no pending request {request}"));
            };
            must_be_present(state, &req.deputy)?;
            let deadline = deadline_within_budget(state, &req.deputy, req.kind, now)?;
            let mut events = end_floor(state, FloorEndReason::Superseded, now);
            events.push(grant(&req.deputy, req.kind, Some(*request), now, deadline));
            Ok(events)
        }
        Command::GiveFloor { deputy, kind } => {
            phase_in(state, &[Phase::Open])?;
            if !state.roster.is_deputy(deputy) {
                return reject(Code::Invalid, format!("{deputy} is not a deputy"));
            }
            must_be_present(state, deputy)?;
            let deadline = deadline_within_budget(state, deputy, *kind, now)?;
            let mut events = end_floor(state, FloorEndReason::Superseded, now);
            // A queued request of the same deputy is answered by this grant.
            let request = state.pending_request_of(deputy);
            if let Some(r) = request {
                events.push(Event::FloorRequestWithdrawn {
                    request: r,
                    by_chair: Some(actor.clone()),
                });
            }
            events.push(grant(deputy, *kind, None, now, deadline));
            Ok(events)
        }
        Command::ExtendFloor { secs } => {
            let Some(floor) = &state.floor else {
                return reject(Code::NoFloor, "nobody has the floor");
            };
            if *secs == 0 || *secs > state.rules.max_extension_secs {
                return reject(
                    Code::Invalid,
                    format!(
                        "an extension must be 1 to {} seconds",
                        state.rules.max_extension_secs
                    ),
                );
            }
            let deadline = floor.deadline.plus_secs(*secs);
            if let Some(left) = super::budget::left_ms(state, &floor.deputy, floor.kind, now)
                && deadline.0 - now.0 > left
            {
                return reject(
                    Code::BudgetExhausted,
                    format!(
                        "the delegation has {} s of speaking time left on this item",
                        left.max(0) / 1000
                    ),
                );
            }
            Ok(vec![Event::FloorExtended { deadline }])
        }
        Command::RevokeFloor => {
            if state.floor.is_none() {
                return reject(Code::NoFloor, "nobody has the floor");
            }
            Ok(end_floor(state, FloorEndReason::Revoked, now))
        }
        Command::YieldFloor => match &state.floor {
            Some(f) if &f.deputy == actor => Ok(end_floor(state, FloorEndReason::Yielded, now)),
            Some(_) => reject(Code::NotPermitted, "only the speaker may yield the floor"),
            None => reject(Code::NoFloor, "nobody has the floor"),
        },
        Command::OpenVote {
            question,
            method,
            rule,
            window_secs,
            allow_change,
            rerun_of,
            step_up,
        } => {
            phase_in(state, &[Phase::Open])?;
            let Some(item) = state.current_item else {
                return reject(Code::NoCurrentItem, "move to an agenda item before voting");
            };
            no_open_vote(state)?;
            if state.rules.vote_needs_quorum && !state.quorum_met() {
                return reject(
                    Code::NoQuorum,
                    format!(
                        "{} of {} deputies present: below the quorum",
                        state.present_count(),
                        state.roster.members()
                    ),
                );
            }
            text("question", question, MAX_QUESTION_CHARS)?;
            let window = window_secs.unwrap_or(state.rules.default_vote_window_secs);
            if window == 0 || window > MAX_VOTE_WINDOW_SECS {
                return reject(
                    Code::Invalid,
                    format!("the window must be 1 to {MAX_VOTE_WINDOW_SECS} seconds"),
                );
            }
            if let Some(prior) = rerun_of {
                match state.votes.get(prior) {
                    None => return reject(Code::NoSuchVote, format!("no vote {prior}")),
                    Some(v) if !matches!(v.status, super::state::VoteStatus::Voided { .. }) => {
                        return reject(
                            Code::NotVoided,
                            format!("vote {prior} must be voided before it is re-run"),
                        );
                    }
                    Some(_) => {}
                }
            }
            let allow_change = match method {
                Method::Named => allow_change.unwrap_or(state.rules.allow_ballot_change),
                // A secret ballot cannot be changed: nothing links the deputy to the first one.
                Method::Secret => false,
            };
            Ok(vec![Event::VoteOpened {
                vote: VoteId(state.last_ids.vote + 1),
                item,
                question: question.clone(),
                method: *method,
                rule: rule.unwrap_or(state.rules.default_pass_rule),
                opened_at: now,
                deadline: now.plus_secs(window),
                allow_change,
                rerun_of: *rerun_of,
                step_up: step_up.unwrap_or(state.rules.step_up_ballots),
            }])
        }
        Command::CastBallot { vote, choice } => {
            let v = open_vote(state, *vote, now)?;
            must_be_present(state, actor)?;
            stepped_up(v, assurance)?;
            ballot(v, *vote, actor, *choice, None, assurance.step_up)
        }
        Command::RecordBallot {
            vote,
            deputy,
            choice,
            reason,
        } => {
            let v = open_vote(state, *vote, now)?;
            if v.method == Method::Secret {
                return reject(
                    Code::NotPermitted,
                    "a secret ballot cannot be recorded on a deputy's behalf",
                );
            }
            if !state.roster.is_deputy(deputy) {
                return reject(Code::Invalid, format!("{deputy} is not a deputy"));
            }
            must_be_present(state, deputy)?;
            text("reason", reason, MAX_REASON_CHARS)?;
            stepped_up(v, assurance)?;
            let on_behalf = OnBehalf {
                clerk: actor.clone(),
                reason: reason.clone(),
            };
            ballot(
                v,
                *vote,
                deputy,
                *choice,
                Some(on_behalf),
                assurance.step_up,
            )
        }
        Command::CloseVote { vote } => {
            let Some(v) = state.votes.get(vote) else {
                return reject(Code::NoSuchVote, format!("no vote {vote}"));
            };
            if !v.is_open() {
                return reject(Code::VoteClosed, format!("vote {vote} is not open"));
            }
            Ok(vec![close(state, *vote, v, now)])
        }
        Command::VoidVote { vote, reason } => {
            let Some(v) = state.votes.get(vote) else {
                return reject(Code::NoSuchVote, format!("no vote {vote}"));
            };
            if matches!(v.status, super::state::VoteStatus::Voided { .. }) {
                return reject(Code::AlreadyVoided, format!("vote {vote} is already void"));
            }
            text("reason", reason, MAX_REASON_CHARS)?;
            Ok(vec![Event::VoteVoided {
                vote: *vote,
                reason: reason.clone(),
            }])
        }
        Command::PublishDocument {
            item,
            title,
            media_type,
            size,
            sha256,
            file_name,
            access,
        } => {
            not_closed(state)?;
            if !state.agenda.iter().any(|i| i.id == *item) {
                return reject(Code::NoSuchItem, format!("no agenda item {item}"));
            }
            document_fields(title, media_type, *size, sha256, file_name.as_deref())?;
            if let Access::Restricted(roles) = access
                && roles.is_empty()
            {
                return reject(Code::Invalid, "a restricted document must name a role");
            }
            Ok(vec![Event::DocumentPublished {
                document: DocumentId(state.last_ids.document + 1),
                version: 1,
                item: *item,
                title: title.clone(),
                media_type: media_type.clone(),
                size: *size,
                sha256: sha256.clone(),
                file_name: file_name.clone(),
                access: access.clone(),
            }])
        }
        Command::SupersedeDocument {
            document,
            title,
            media_type,
            size,
            sha256,
            file_name,
        } => {
            not_closed(state)?;
            let Some(doc) = state.documents.get(document) else {
                return reject(Code::NoSuchDocument, format!("no document {document}"));
            };
            document_fields(title, media_type, *size, sha256, file_name.as_deref())?;
            Ok(vec![Event::DocumentPublished {
                document: *document,
                version: doc.latest() + 1,
                item: doc.item,
                title: title.clone(),
                media_type: media_type.clone(),
                size: *size,
                sha256: sha256.clone(),
                file_name: file_name.clone(),
                access: doc.access.clone(),
            }])
        }
        Command::AcknowledgeDocument {
            document,
            version,
            ack,
        } => {
            let Some(doc) = state.documents.get(document) else {
                return reject(Code::NoSuchDocument, format!("no document {document}"));
            };
            if *version == 0 || *version > doc.latest() {
                return reject(
                    Code::NoSuchDocument,
                    format!("document {document} has no version {version}"),
                );
            }
            if !may_read(who, &doc.access) {
                return reject(
                    Code::NoAccess,
                    format!("{actor} may not read document {document}"),
                );
            }
            let prior = doc.acks.get(actor).and_then(|v| v.get(version));
            if prior.is_some_and(|p| p >= ack) {
                return reject(
                    Code::AlreadyAcknowledged,
                    format!("version {version} of document {document} is already acknowledged"),
                );
            }
            Ok(vec![Event::DocumentAcknowledged {
                document: *document,
                version: *version,
                deputy: actor.clone(),
                ack: *ack,
            }])
        }
    }
}

/// Whether an actor may read a document with this access level.
pub fn may_read(actor: &Actor, access: &Access) -> bool {
    let roles: Vec<Role> = actor.roles.iter().copied().collect();
    super::visibility::readable(access, &roles)
}

/// What the clock makes happen at `now`: the floor and the open vote run out.
fn tick(state: &SittingState, now: Millis) -> Vec<Event> {
    let mut events = Vec::new();
    if state.floor.as_ref().is_some_and(|f| now >= f.deadline) {
        events.extend(end_floor(state, FloorEndReason::Expired, now));
    }
    if let Some(id) = state.open_vote
        && let Some(v) = state.votes.get(&id)
        && v.is_open()
        && now >= v.deadline
    {
        events.push(close(state, id, v, now));
    }
    events
}

fn close(state: &SittingState, id: VoteId, v: &VoteState, now: Millis) -> Event {
    Event::VoteClosed {
        vote: id,
        at: now,
        result: vote::result(
            v.rule,
            v.tally,
            state.roster.members(),
            state.present_count(),
        ),
    }
}

/// A vote that asks for a passkey confirmation takes a ballot only with one.
fn stepped_up(v: &VoteState, assurance: Assurance) -> Result<(), Rejection> {
    if v.step_up && !assurance.step_up {
        return reject(
            Code::StepUpRequired,
            "this vote asks for each ballot to be confirmed with a passkey",
        );
    }
    Ok(())
}

fn ballot(
    v: &VoteState,
    id: VoteId,
    deputy: &ActorId,
    choice: Choice,
    on_behalf: Option<OnBehalf>,
    step_up: bool,
) -> Decision {
    match v.method {
        Method::Named => {
            if let Some(prior) = v.ballots.get(deputy) {
                if !v.allow_change {
                    return reject(Code::BallotFinal, "ballots on this vote cannot be changed");
                }
                if prior.choice == choice && prior.on_behalf == on_behalf {
                    // The same ballot again (a retry): nothing new to record.
                    return Ok(Vec::new());
                }
            }
            Ok(vec![Event::BallotCast {
                vote: id,
                deputy: deputy.clone(),
                choice,
                on_behalf,
                step_up,
            }])
        }
        Method::Secret => {
            if v.participants.contains(deputy) {
                return reject(Code::BallotFinal, "a secret ballot cannot be changed");
            }
            Ok(vec![
                Event::SecretBallotTaken {
                    vote: id,
                    deputy: deputy.clone(),
                    step_up,
                },
                Event::SecretChoice { vote: id, choice },
            ])
        }
    }
}

fn open_vote(state: &SittingState, id: VoteId, now: Millis) -> Result<&VoteState, Rejection> {
    let Some(v) = state.votes.get(&id) else {
        return reject(Code::NoSuchVote, format!("no vote {id}"));
    };
    if !v.is_open() || now >= v.deadline {
        return reject(Code::VoteClosed, format!("vote {id} is closed"));
    }
    Ok(v)
}

fn grant(
    deputy: &ActorId,
    kind: SpeechKind,
    request: Option<RequestId>,
    now: Millis,
    deadline: Millis,
) -> Event {
    Event::FloorGranted {
        deputy: deputy.clone(),
        kind,
        request,
        granted_at: now,
        deadline,
    }
}

/// When a speech of `kind` given to `deputy` at `now` runs out: its kind's limit, or sooner
/// when the deputy's delegation has less of its budget on the item left (refused when it has
/// none, counting the speech being superseded up to now).
fn deadline_within_budget(
    state: &SittingState,
    deputy: &ActorId,
    kind: SpeechKind,
    now: Millis,
) -> Result<Millis, Rejection> {
    let limit_ms = i64::from(state.rules.speaking.for_kind(kind)) * 1000;
    match super::budget::left_ms(state, deputy, kind, now) {
        None => Ok(Millis(now.0.saturating_add(limit_ms))),
        Some(left) if left < 1000 => reject(
            Code::BudgetExhausted,
            "the deputy's delegation has used its speaking time on this item",
        ),
        Some(left) => Ok(Millis(now.0.saturating_add(limit_ms.min(left)))),
    }
}

fn end_floor(state: &SittingState, reason: FloorEndReason, now: Millis) -> Vec<Event> {
    state
        .floor
        .as_ref()
        .map(|f| Event::FloorEnded {
            deputy: f.deputy.clone(),
            reason,
            at: now,
        })
        .into_iter()
        .collect()
}

fn self_or_clerk(
    state: &SittingState,
    who: &Actor,
    deputy: &ActorId,
) -> Result<Option<ActorId>, Rejection> {
    if !state.roster.is_deputy(deputy) {
        return reject(Code::Invalid, format!("{deputy} is not a deputy"));
    }
    if &who.id == deputy {
        Ok(None)
    } else if who.has(Role::Clerk) {
        Ok(Some(who.id.clone()))
    } else {
        reject(
            Code::NotPermitted,
            "a deputy may check in or out only themself",
        )
    }
}

fn must_be_present(state: &SittingState, deputy: &ActorId) -> Result<(), Rejection> {
    if state.is_present(deputy) {
        Ok(())
    } else {
        reject(Code::NotPresent, format!("{deputy} is not checked in"))
    }
}

fn no_open_vote(state: &SittingState) -> Result<(), Rejection> {
    match state.open_vote {
        Some(v) => reject(Code::VoteInProgress, format!("vote {v} is open")),
        None => Ok(()),
    }
}

fn phase_in(state: &SittingState, allowed: &[Phase]) -> Result<(), Rejection> {
    if allowed.contains(&state.phase) {
        Ok(())
    } else {
        reject(
            Code::WrongPhase,
            format!("not allowed while the sitting is {:?}", state.phase).to_lowercase(),
        )
    }
}

fn not_closed(state: &SittingState) -> Result<(), Rejection> {
    phase_in(state, &[Phase::Scheduled, Phase::Open, Phase::Suspended])
}

fn is_permutation<T: Ord + Copy>(order: &[T], current: &[T]) -> bool {
    let mut a = order.to_vec();
    let mut b = current.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Checks a required free-text field: not blank, not too long, no control characters.
fn text(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return reject(Code::Invalid, format!("{field} must not be empty"));
    }
    optional_text(field, value, max)
}

fn optional_text(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    if value.chars().count() > max {
        return reject(
            Code::Invalid,
            format!("{field} is longer than {max} characters"),
        );
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return reject(
            Code::Invalid,
            format!("{field} contains control characters"),
        );
    }
    Ok(())
}

fn document_fields(
    title: &str,
    media_type: &str,
    size: u64,
    sha256: &str,
    file_name: Option<&str>,
) -> Result<(), Rejection> {
    text("title", title, MAX_TITLE_CHARS)?;
    if let Some(name) = file_name {
        let ok = !name.trim().is_empty()
            && name.chars().count() <= MAX_FILE_NAME_CHARS
            && !name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
            && name != "."
            && name != "..";
        if !ok {
            return reject(
                Code::Invalid,
                format!(
                    "file_name must be 1 to {MAX_FILE_NAME_CHARS} characters, with no path or control characters"
                ),
            );
        }
    }
    let mt_ok = media_type.len() <= 127
        && media_type.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && media_type
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
        });
    if !mt_ok {
        return reject(Code::Invalid, format!("{media_type:?} is not a media type"));
    }
    if size == 0 || size > MAX_DOCUMENT_BYTES {
        return reject(Code::Invalid, "size must be 1 byte to 10 GiB");
    }
    if sha256.len() != 64
        || !sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return reject(Code::Invalid, "sha256 must be 64 lowercase hex digits");
    }
    Ok(())
}

/// A short English name of a command, for rejection details and logs.
pub fn command_name(command: &Command) -> &'static str {
    match command {
        Command::CreateSitting { .. } => "create the sitting",
        Command::OpenSitting => "open the sitting",
        Command::SuspendSitting { .. } => "suspend the sitting",
        Command::ResumeSitting => "resume the sitting",
        Command::CloseSitting => "close the sitting",
        Command::CheckIn { .. } => "check in",
        Command::CheckOut { .. } => "check out",
        Command::AddAgendaItem { .. } => "add an agenda item",
        Command::ReorderAgenda { .. } => "reorder the agenda",
        Command::SetCurrentItem { .. } => "set the current item",
        Command::RequestFloor { .. } => "request the floor",
        Command::WithdrawRequest { .. } => "withdraw a request",
        Command::ReorderQueue { .. } => "reorder the queue",
        Command::GrantFloor { .. } => "grant the floor",
        Command::GiveFloor { .. } => "give the floor",
        Command::ExtendFloor { .. } => "extend the floor",
        Command::RevokeFloor => "revoke the floor",
        Command::YieldFloor => "yield the floor",
        Command::OpenVote { .. } => "open a vote",
        Command::CastBallot { .. } => "cast a ballot",
        Command::RecordBallot { .. } => "record a ballot on behalf",
        Command::CloseVote { .. } => "close a vote",
        Command::VoidVote { .. } => "void a vote",
        Command::PublishDocument { .. } => "publish a document",
        Command::SupersedeDocument { .. } => "supersede a document",
        Command::AcknowledgeDocument { .. } => "acknowledge a document",
        Command::Tick => "tick",
    }
}
