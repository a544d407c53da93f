//! Property tests over random command sequences from random actors, through the pure core
//! and into a real SQLite log:
//! - at most one counted ballot per deputy per vote, and every tally equals the final
//!   ballots;
//! - a deputy who is not present never gets a ballot accepted;
//! - replaying the stored events reproduces the state exactly, and the chain verifies;
//! - for secret votes, no stored byte links a deputy to a choice;
//! - `decide` never panics, whatever the input.

mod support;

use dienhong::sitting::{
    self, ActorId, Choice, Command, Event, ItemId, Method, Millis, PassRule, RequestId,
    SittingState, SpeechKind, VoteId,
};
use dienhong::store::{Store, Verification};
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::{CHAIR, CLERK, Log, OBSERVER, TestDb, deputy, raw_dump};

const DEPUTIES: u32 = 6;

fn actor() -> impl Strategy<Value = ActorId> {
    prop_oneof![
        3 => Just(ActorId::new(CHAIR)),
        2 => Just(ActorId::new(CLERK)),
        1 => Just(ActorId::new(OBSERVER)),
        1 => Just(ActorId::new("GHOST")),
        1 => Just(ActorId::system()),
        10 => (1..=DEPUTIES).prop_map(deputy),
    ]
}

fn some_deputy() -> impl Strategy<Value = ActorId> {
    prop_oneof![4 => (1..=DEPUTIES).prop_map(deputy), 1 => Just(ActorId::new(CHAIR)), 1 => Just(ActorId::new(CLERK))]
}

fn choice() -> impl Strategy<Value = Choice> {
    prop::sample::select(Choice::ALL.to_vec())
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => Just(Command::OpenSitting),
        4 => some_deputy().prop_map(|deputy| Command::CheckIn { deputy, location: None }),
        1 => some_deputy().prop_map(|deputy| Command::CheckOut { deputy }),
        2 => (1u32..=3).prop_map(|i| Command::SetCurrentItem { item: ItemId(i) }),
        3 => (prop::bool::ANY, 5u32..120, prop::option::of(prop::bool::ANY)).prop_map(|(secret, w, allow)| Command::OpenVote {
            question: "Q".into(),
            method: if secret { Method::Secret } else { Method::Named },
            rule: Some(PassRule::MajorityOfMembers),
            window_secs: Some(w),
            allow_change: allow,
            rerun_of: None,
            step_up: None,
        }),
        14 => (1u32..=2, choice()).prop_map(|(v, choice)| Command::CastBallot { vote: VoteId(v), choice }),
        2 => (1u32..=3, some_deputy(), choice()).prop_map(|(v, deputy, choice)| Command::RecordBallot {
            vote: VoteId(v), deputy, choice, reason: "device".into()
        }),
        2 => (1u32..=3).prop_map(|v| Command::CloseVote { vote: VoteId(v) }),
        1 => (1u32..=3).prop_map(|v| Command::VoidVote { vote: VoteId(v), reason: "error".into() }),
        2 => prop::sample::select(SpeechKind::ALL.to_vec()).prop_map(|kind| Command::RequestFloor { kind }),
        1 => (1u32..=5).prop_map(|r| Command::GrantFloor { request: RequestId(r) }),
        1 => Just(Command::RevokeFloor),
        3 => Just(Command::Tick),
    ]
}

/// The actor who would normally issue this command.
fn natural_actor(command: &Command, n: u32) -> ActorId {
    match command {
        Command::CastBallot { .. } | Command::RequestFloor { .. } => deputy(n % DEPUTIES + 1),
        Command::CheckIn { deputy, .. } | Command::CheckOut { deputy } => deputy.clone(),
        Command::RecordBallot { .. } => ActorId::new(CLERK),
        Command::Tick => ActorId::system(),
        _ => ActorId::new(CHAIR),
    }
}

/// Steps: mostly the natural actor for the command (so votes really happen), sometimes
/// anyone at all (so permissions are exercised).
fn steps() -> impl Strategy<Value = Vec<(ActorId, Command, i64)>> {
    prop::collection::vec(
        (actor(), command(), 0i64..4_000, 0u32..100, 0u32..1000),
        1..80,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(random, command, dt, p, n)| {
                let who = if p < 75 {
                    natural_actor(&command, n)
                } else {
                    random
                };
                (who, command, dt)
            })
            .collect()
    })
}

fn check_invariants(state: &SittingState) -> Result<(), TestCaseError> {
    for (id, v) in &state.votes {
        prop_assert_eq!(
            v.participants.len() as u32,
            v.tally.total(),
            "vote {}: one counted ballot per participant",
            id
        );
        match v.method {
            Method::Named => {
                prop_assert_eq!(v.ballots.len(), v.participants.len());
                let mut t = sitting::Tally::default();
                for b in v.ballots.values() {
                    t.add(b.choice);
                }
                prop_assert_eq!(t, v.tally, "vote {}: tally equals the final ballots", id);
            }
            Method::Secret => prop_assert!(
                v.ballots.is_empty(),
                "secret vote {} holds named ballots",
                id
            ),
        }
    }
    let open = state.votes.values().filter(|v| v.is_open()).count();
    prop_assert!(open <= 1);
    prop_assert_eq!(state.queue.len(), state.requests.len());
    Ok(())
}

async fn run_case(steps: Vec<(ActorId, Command, i64)>) -> Result<(), TestCaseError> {
    let db = TestDb::sqlite();
    let store = Store::open(&db.url).await.expect("open");
    let mut log = Log::new(store.clone(), "p", DEPUTIES).await;
    // Start most cases in an open sitting with some deputies present, so votes happen.
    log.ok(CHAIR, Command::OpenSitting).await;
    for n in 1..=DEPUTIES - 1 {
        log.ok(
            deputy(n).as_str(),
            Command::CheckIn {
                deputy: deputy(n),
                location: None,
            },
        )
        .await;
    }
    log.ok(CHAIR, Command::SetCurrentItem { item: ItemId(1) })
        .await;
    let mut secret_votes: BTreeMap<VoteId, ()> = BTreeMap::new();
    for (actor, command, dt) in steps {
        log.now = Millis(log.now.0 + dt);
        let before = log.state.clone();
        match log.run(&actor, command).await {
            Ok(events) => {
                for e in &events {
                    match e {
                        Event::BallotCast { deputy, .. }
                        | Event::SecretBallotTaken { deputy, .. } => {
                            prop_assert!(
                                before.is_present(deputy),
                                "{} voted while absent",
                                deputy
                            );
                        }
                        Event::VoteOpened {
                            vote,
                            method: Method::Secret,
                            ..
                        } => {
                            secret_votes.insert(*vote, ());
                        }
                        _ => {}
                    }
                }
            }
            Err(r) => prop_assert_eq!(&log.state, &before, "a rejection ({}) changed the state", r),
        }
        check_invariants(&log.state)?;
    }
    let (replayed, head) = store.replay(&log.sitting).await.expect("replay");
    prop_assert_eq!(&replayed, &log.state, "replay reproduces the state");
    prop_assert_eq!(head, log.head);
    prop_assert_eq!(
        store.verify(&log.sitting).await.expect("verify"),
        Verification::Ok { events: head.seq }
    );
    store.close().await;

    let (bodies, box_rows, box_cols) = raw_dump(&db.url).await;
    prop_assert_eq!(box_cols, vec!["sitting", "token", "vote", "choice"]);
    let actors: Vec<String> = log
        .state
        .roster
        .actors
        .keys()
        .map(|a| a.0.clone())
        .collect();
    for row in &box_rows {
        for cell in row {
            prop_assert!(!actors.iter().any(|a| cell.contains(a.as_str())));
        }
    }
    for body in &bodies {
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        let event = &v["event"];
        prop_assert_ne!(&event["type"], "secret_choice");
        if let Some(vote) = event["vote"].as_u64()
            && secret_votes.contains_key(&VoteId(vote as u32))
        {
            prop_assert!(
                event.get("choice").is_none(),
                "chain row ties a choice to a secret vote: {}",
                body
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_sittings_keep_every_invariant_in_memory_and_in_the_log(steps in steps()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run_case(steps))?;
    }

    #[test]
    fn decide_never_panics_and_rejections_change_nothing(steps in steps()) {
        let mut state = SittingState::default();
        let sid = dienhong::sitting::SittingId::new("x");
        sitting::execute(&mut state, &ActorId::system(), &support::create(&sid, DEPUTIES), Millis(0)).expect("created");
        let mut now = Millis(0);
        for (actor, command, dt) in steps {
            now = Millis(now.0 + dt);
            let before = state.clone();
            if sitting::execute(&mut state, &actor, &command, now).is_err() {
                prop_assert_eq!(&state, &before);
            }
            check_invariants(&state)?;
        }
    }
}
