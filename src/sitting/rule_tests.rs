//! Unit tests of each procedure rule, on a small roster and a virtual clock.

use super::*;
use std::collections::BTreeSet;

const T0: Millis = Millis(1_000_000);

fn id(s: &str) -> ActorId {
    ActorId::new(s)
}

fn roster() -> Roster {
    let d = |code: &str, kind| Delegation {
        code: DelegationCode::new(code),
        name: code.to_owned(),
        kind,
        region: String::new(),
    };
    let a = |name: &str, del: Option<&str>, roles: &[Role]| Actor {
        id: id(name),
        name: name.to_owned(),
        delegation: del.map(DelegationCode::new),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
    };
    let mut actors = vec![
        a("CHAIR", Some("01"), &[Role::Chair, Role::Deputy]),
        a("VICE", Some("01"), &[Role::ViceChair, Role::Deputy]),
        a("CLERK", None, &[Role::Clerk]),
        a("OBS", None, &[Role::Observer]),
        a("SITE01", Some("01"), &[Role::SiteOperator]),
    ];
    for n in 1..=7 {
        let del = if n % 2 == 0 { "01" } else { "79" };
        actors.push(a(&format!("D{n}"), Some(del), &[Role::Deputy]));
    }
    Roster::new(
        vec![
            d("00", DelegationKind::Chamber),
            d("01", DelegationKind::Municipality),
            d("79", DelegationKind::Municipality),
        ],
        actors,
    )
    .expect("valid roster")
}

struct S {
    state: SittingState,
    now: Millis,
}

impl S {
    fn created() -> S {
        let mut s = S {
            state: SittingState::default(),
            now: T0,
        };
        s.ok(
            "system",
            Command::CreateSitting {
                sitting: SittingId::new("t"),
                title: "Phiên".into(),
                roster: roster(),
                rules: Rules::default(),
                agenda: vec!["A".into(), "B".into()],
            },
        );
        s
    }

    /// Open, everyone (9 deputies) present, current item 1.
    fn sitting() -> S {
        let mut s = S::created();
        s.ok("CHAIR", Command::OpenSitting);
        for d in ["CHAIR", "VICE", "D1", "D2", "D3", "D4", "D5", "D6", "D7"] {
            s.ok(
                d,
                Command::CheckIn {
                    deputy: id(d),
                    location: None,
                },
            );
        }
        s.ok("CHAIR", Command::SetCurrentItem { item: ItemId(1) });
        s
    }

    fn run(&mut self, actor: &str, c: Command) -> Result<Vec<Event>, Rejection> {
        execute(&mut self.state, &id(actor), &c, self.now)
    }

    /// As `run`, with what the server checked about the command (a passkey step-up).
    fn run_assured(
        &mut self,
        actor: &str,
        c: Command,
        assurance: Assurance,
    ) -> Result<Vec<Event>, Rejection> {
        let events = decide_assured(&self.state, &id(actor), &c, assurance, self.now)?;
        for e in &events {
            apply(&mut self.state, e);
        }
        Ok(events)
    }

    fn ok(&mut self, actor: &str, c: Command) -> Vec<Event> {
        let name = format!("{c:?}");
        self.run(actor, c)
            .unwrap_or_else(|r| panic!("{actor} {name}: {r}"))
    }

    fn code(&mut self, actor: &str, c: Command) -> Code {
        match self.run(actor, c) {
            Ok(e) => panic!("expected a rejection, got {e:?}"),
            Err(r) => r.code,
        }
    }

    fn advance(&mut self, secs: i64) {
        self.now = Millis(self.now.0 + secs * 1000);
    }

    fn open_vote(&mut self, method: Method, rule: PassRule, allow: Option<bool>) -> VoteId {
        let events = self.ok(
            "CHAIR",
            Command::OpenVote {
                question: "Thông qua?".into(),
                method,
                rule: Some(rule),
                window_secs: Some(60),
                allow_change: allow,
                rerun_of: None,
                step_up: None,
            },
        );
        match events.as_slice() {
            [Event::VoteOpened { vote, .. }] => *vote,
            other => panic!("{other:?}"),
        }
    }

    fn cast(&mut self, who: &str, vote: VoteId, choice: Choice) -> Result<Vec<Event>, Rejection> {
        self.run(who, Command::CastBallot { vote, choice })
    }
}

// ---- creation and lifecycle ----

#[test]
fn only_the_server_creates_a_sitting_and_only_once() {
    let mut s = S::created();
    assert_eq!(s.state.phase, Phase::Scheduled);
    assert_eq!(s.state.agenda.len(), 2);
    let again = Command::CreateSitting {
        sitting: SittingId::new("t"),
        title: "x".into(),
        roster: roster(),
        rules: Rules::default(),
        agenda: vec![],
    };
    assert_eq!(s.code("system", again.clone()), Code::AlreadyCreated);
    let mut empty = S {
        state: SittingState::default(),
        now: T0,
    };
    assert_eq!(empty.code("CHAIR", again), Code::NotPermitted);
    assert_eq!(empty.code("CHAIR", Command::OpenSitting), Code::NotCreated);
}

#[test]
fn only_the_chair_moves_the_sitting_through_its_lifecycle() {
    let mut s = S::created();
    assert_eq!(s.code("VICE", Command::OpenSitting), Code::NotPermitted);
    assert_eq!(s.code("D1", Command::OpenSitting), Code::NotPermitted);
    assert_eq!(s.code("GHOST", Command::OpenSitting), Code::UnknownActor);
    assert_eq!(s.code("CHAIR", Command::ResumeSitting), Code::WrongPhase);
    s.ok("CHAIR", Command::OpenSitting);
    assert_eq!(s.code("CHAIR", Command::OpenSitting), Code::WrongPhase);
    s.ok(
        "CHAIR",
        Command::SuspendSitting {
            reason: "Nghỉ giải lao".into(),
        },
    );
    assert_eq!(s.state.phase, Phase::Suspended);
    s.ok("CHAIR", Command::ResumeSitting);
    assert_eq!(s.state.phase, Phase::Open);
    s.ok("CHAIR", Command::CloseSitting);
    assert_eq!(s.state.phase, Phase::Closed);
    assert_eq!(s.code("CHAIR", Command::ResumeSitting), Code::WrongPhase);
    assert_eq!(
        s.code(
            "D1",
            Command::CheckIn {
                deputy: id("D1"),
                location: None
            }
        ),
        Code::WrongPhase
    );
}

#[test]
fn the_sitting_cannot_be_suspended_or_closed_during_a_vote() {
    let mut s = S::sitting();
    s.open_vote(Method::Named, PassRule::MajorityOfMembers, None);
    assert_eq!(
        s.code(
            "CHAIR",
            Command::SuspendSitting {
                reason: String::new()
            }
        ),
        Code::VoteInProgress
    );
    assert_eq!(s.code("CHAIR", Command::CloseSitting), Code::VoteInProgress);
}

#[test]
fn suspending_ends_the_floor() {
    let mut s = S::sitting();
    s.ok(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D1"),
            kind: SpeechKind::Discussion,
        },
    );
    let events = s.ok("CHAIR", Command::SuspendSitting { reason: "x".into() });
    assert!(matches!(
        events[0],
        Event::FloorEnded {
            reason: FloorEndReason::SittingInterrupted,
            ..
        }
    ));
    assert!(s.state.floor.is_none());
}

// ---- attendance and quorum ----

#[test]
fn where_a_deputy_sits_is_recorded_at_check_in_and_forgotten_at_check_out() {
    let mut s = S::created();
    assert_eq!(
        s.ok(
            "D1",
            Command::CheckIn {
                deputy: id("D1"),
                location: Some(Location::Hall),
            }
        ),
        vec![Event::CheckedIn {
            deputy: id("D1"),
            by_clerk: None,
            location: Some(Location::Hall),
        }]
    );
    assert_eq!(s.state.locations.get(&id("D1")), Some(&Location::Hall));
    s.ok("D1", Command::CheckOut { deputy: id("D1") });
    assert_eq!(s.state.locations.get(&id("D1")), None);
    // Back without saying where: nothing is assumed.
    s.ok(
        "D1",
        Command::CheckIn {
            deputy: id("D1"),
            location: None,
        },
    );
    assert_eq!(s.state.locations.get(&id("D1")), None);
}

#[test]
fn a_check_in_recorded_before_locations_existed_reads_and_writes_the_same_bytes() {
    // An event as recorded before check-in took a location: no such key.
    let old = r#"{"type":"checked_in","deputy":"D1","by_clerk":null}"#;
    let event: Event = serde_json::from_str(old).expect("an old event reads");
    assert_eq!(
        event,
        Event::CheckedIn {
            deputy: id("D1"),
            by_clerk: None,
            location: None,
        }
    );
    assert_eq!(serde_json::to_string(&event).expect("json"), old);
    let new = Event::CheckedIn {
        deputy: id("D1"),
        by_clerk: None,
        location: Some(Location::Remote),
    };
    let json = serde_json::to_string(&new).expect("json");
    assert!(json.contains(r#""location":"remote""#), "{json}");
    let command: Command =
        serde_json::from_str(r#"{"command":"check_in","deputy":"D1","location":"site"}"#)
            .expect("a check-in with a location");
    assert_eq!(
        command,
        Command::CheckIn {
            deputy: id("D1"),
            location: Some(Location::Site),
        }
    );
}

#[test]
fn a_deputy_checks_in_themself_and_a_clerk_on_their_behalf_is_recorded() {
    let mut s = S::created();
    assert_eq!(
        s.ok(
            "D1",
            Command::CheckIn {
                deputy: id("D1"),
                location: None
            }
        ),
        vec![Event::CheckedIn {
            deputy: id("D1"),
            by_clerk: None,
            location: None,
        }]
    );
    assert_eq!(
        s.ok(
            "CLERK",
            Command::CheckIn {
                deputy: id("D2"),
                location: None
            }
        ),
        vec![Event::CheckedIn {
            deputy: id("D2"),
            by_clerk: Some(id("CLERK")),
            location: None,
        }]
    );
    assert_eq!(s.state.present.get(&id("D2")), Some(&Some(id("CLERK"))));
    assert_eq!(
        s.code(
            "D1",
            Command::CheckIn {
                deputy: id("D3"),
                location: None
            }
        ),
        Code::NotPermitted
    );
    assert_eq!(
        s.code(
            "D1",
            Command::CheckIn {
                deputy: id("D1"),
                location: None
            }
        ),
        Code::AlreadyPresent
    );
    assert_eq!(
        s.code(
            "CLERK",
            Command::CheckIn {
                deputy: id("OBS"),
                location: None
            }
        ),
        Code::Invalid
    );
    assert_eq!(
        s.code(
            "OBS",
            Command::CheckIn {
                deputy: id("OBS"),
                location: None
            }
        ),
        Code::NotPermitted
    );
    assert_eq!(
        s.code("D3", Command::CheckOut { deputy: id("D3") }),
        Code::NotPresent
    );
    s.ok("D1", Command::CheckOut { deputy: id("D1") });
    assert!(!s.state.is_present(&id("D1")));
}

#[test]
fn quorum_is_at_least_two_thirds_of_all_deputies_by_default() {
    let mut s = S::created();
    // 9 deputies: 6 present is exactly two thirds.
    for d in ["D1", "D2", "D3", "D4", "D5"] {
        s.ok(
            d,
            Command::CheckIn {
                deputy: id(d),
                location: None,
            },
        );
    }
    assert!(!s.state.quorum_met());
    s.ok(
        "D6",
        Command::CheckIn {
            deputy: id("D6"),
            location: None,
        },
    );
    assert!(s.state.quorum_met());
    let strict = Quorum {
        numerator: 2,
        denominator: 3,
        strict: true,
    };
    assert!(!strict.met(6, 9));
    assert!(strict.met(7, 9));
}

#[test]
fn checking_out_withdraws_a_pending_request_and_ends_ones_own_floor() {
    let mut s = S::sitting();
    s.ok(
        "D1",
        Command::RequestFloor {
            kind: SpeechKind::Discussion,
        },
    );
    s.ok(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D2"),
            kind: SpeechKind::Question,
        },
    );
    s.ok("D1", Command::CheckOut { deputy: id("D1") });
    assert!(s.state.queue.is_empty());
    s.ok("D2", Command::CheckOut { deputy: id("D2") });
    assert!(s.state.floor.is_none());
}

// ---- agenda ----

#[test]
fn the_chair_adds_inserts_reorders_and_moves_through_the_agenda() {
    let mut s = S::sitting();
    s.ok(
        "CHAIR",
        Command::AddAgendaItem {
            title: "C".into(),
            position: None,
        },
    );
    s.ok(
        "VICE",
        Command::AddAgendaItem {
            title: "Z".into(),
            position: Some(0),
        },
    );
    let titles: Vec<&str> = s.state.agenda.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Z", "A", "B", "C"]);
    assert_eq!(
        s.code(
            "CHAIR",
            Command::AddAgendaItem {
                title: "X".into(),
                position: Some(9)
            }
        ),
        Code::Invalid
    );
    assert_eq!(
        s.code(
            "D1",
            Command::AddAgendaItem {
                title: "X".into(),
                position: None
            }
        ),
        Code::NotPermitted
    );
    let order = vec![ItemId(1), ItemId(2), ItemId(3), ItemId(4)];
    s.ok(
        "CHAIR",
        Command::ReorderAgenda {
            order: order.clone(),
        },
    );
    assert_eq!(
        s.state.agenda.iter().map(|i| i.id).collect::<Vec<_>>(),
        order
    );
    assert_eq!(
        s.code(
            "CHAIR",
            Command::ReorderAgenda {
                order: vec![ItemId(1), ItemId(1), ItemId(2), ItemId(3)]
            }
        ),
        Code::Invalid
    );
    assert_eq!(
        s.code("CHAIR", Command::SetCurrentItem { item: ItemId(9) }),
        Code::NoSuchItem
    );
    s.ok("CHAIR", Command::SetCurrentItem { item: ItemId(4) });
    assert_eq!(s.state.current_item, Some(ItemId(4)));
}

// ---- floor ----

#[test]
fn a_deputy_must_be_present_and_may_have_one_pending_request() {
    let mut s = S::sitting();
    s.ok("D7", Command::CheckOut { deputy: id("D7") });
    assert_eq!(
        s.code(
            "D7",
            Command::RequestFloor {
                kind: SpeechKind::Debate
            }
        ),
        Code::NotPresent
    );
    s.ok(
        "D1",
        Command::RequestFloor {
            kind: SpeechKind::Discussion,
        },
    );
    assert_eq!(
        s.code(
            "D1",
            Command::RequestFloor {
                kind: SpeechKind::Question
            }
        ),
        Code::AlreadyRequested
    );
    assert_eq!(
        s.code(
            "CLERK",
            Command::RequestFloor {
                kind: SpeechKind::Question
            }
        ),
        Code::NotPermitted
    );
}

#[test]
fn a_point_of_order_goes_to_the_head_behind_earlier_points_of_order() {
    let mut s = S::sitting();
    s.ok(
        "D1",
        Command::RequestFloor {
            kind: SpeechKind::Discussion,
        },
    );
    s.ok(
        "D2",
        Command::RequestFloor {
            kind: SpeechKind::Question,
        },
    );
    s.ok(
        "D3",
        Command::RequestFloor {
            kind: SpeechKind::PointOfOrder,
        },
    );
    s.ok(
        "D4",
        Command::RequestFloor {
            kind: SpeechKind::PointOfOrder,
        },
    );
    let who: Vec<&str> = s
        .state
        .queue
        .iter()
        .map(|r| s.state.requests[r].deputy.as_str())
        .collect();
    assert_eq!(who, ["D3", "D4", "D1", "D2"]);
}

#[test]
fn requests_are_withdrawn_by_their_deputy_or_the_chair_and_reordered_by_the_chair() {
    let mut s = S::sitting();
    s.ok(
        "D1",
        Command::RequestFloor {
            kind: SpeechKind::Discussion,
        },
    );
    s.ok(
        "D2",
        Command::RequestFloor {
            kind: SpeechKind::Discussion,
        },
    );
    s.ok(
        "D3",
        Command::RequestFloor {
            kind: SpeechKind::Discussion,
        },
    );
    assert_eq!(
        s.code(
            "D2",
            Command::WithdrawRequest {
                request: RequestId(1)
            }
        ),
        Code::NotPermitted
    );
    s.ok(
        "D1",
        Command::WithdrawRequest {
            request: RequestId(1),
        },
    );
    assert_eq!(
        s.ok(
            "CHAIR",
            Command::WithdrawRequest {
                request: RequestId(2)
            }
        ),
        vec![Event::FloorRequestWithdrawn {
            request: RequestId(2),
            by_chair: Some(id("CHAIR"))
        }]
    );
    s.ok(
        "D4",
        Command::RequestFloor {
            kind: SpeechKind::Debate,
        },
    );
    s.ok(
        "CHAIR",
        Command::ReorderQueue {
            order: vec![RequestId(4), RequestId(3)],
        },
    );
    assert_eq!(s.state.queue, vec![RequestId(4), RequestId(3)]);
    assert_eq!(
        s.code(
            "CHAIR",
            Command::ReorderQueue {
                order: vec![RequestId(4)]
            }
        ),
        Code::Invalid
    );
    assert_eq!(
        s.code(
            "D3",
            Command::ReorderQueue {
                order: vec![RequestId(3), RequestId(4)]
            }
        ),
        Code::NotPermitted
    );
    assert_eq!(
        s.code(
            "D1",
            Command::WithdrawRequest {
                request: RequestId(1)
            }
        ),
        Code::NoSuchRequest
    );
}

#[test]
fn the_floor_is_granted_with_the_time_limit_of_its_kind() {
    for (kind, secs) in [
        (SpeechKind::Discussion, 420),
        (SpeechKind::Debate, 180),
        (SpeechKind::PointOfOrder, 60),
        (SpeechKind::Question, 60),
    ] {
        let mut s = S::sitting();
        s.ok("D1", Command::RequestFloor { kind });
        assert_eq!(
            s.code(
                "D1",
                Command::GrantFloor {
                    request: RequestId(1)
                }
            ),
            Code::NotPermitted
        );
        s.ok(
            "CHAIR",
            Command::GrantFloor {
                request: RequestId(1),
            },
        );
        let f = s.state.floor.clone().expect("floor");
        assert_eq!(f.deputy, id("D1"));
        assert_eq!(f.deadline, T0.plus_secs(secs));
        assert!(
            s.state.queue.is_empty(),
            "the granted request leaves the queue"
        );
    }
}

#[test]
fn granting_the_floor_while_someone_speaks_ends_that_speech_first() {
    let mut s = S::sitting();
    s.ok(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D1"),
            kind: SpeechKind::Discussion,
        },
    );
    s.advance(30);
    let events = s.ok(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D2"),
            kind: SpeechKind::Debate,
        },
    );
    assert!(
        matches!(&events[0], Event::FloorEnded { deputy, reason: FloorEndReason::Superseded, .. } if deputy == &id("D1"))
    );
    assert_eq!(s.state.speeches.len(), 1);
    assert_eq!(
        s.state.speeches[0].to.0 - s.state.speeches[0].from.0,
        30_000
    );
    assert_eq!(
        s.state.floor.as_ref().map(|f| f.deputy.clone()),
        Some(id("D2"))
    );
}

#[test]
fn the_chair_extends_and_revokes_and_only_the_speaker_yields() {
    let mut s = S::sitting();
    assert_eq!(s.code("CHAIR", Command::RevokeFloor), Code::NoFloor);
    s.ok(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D1"),
            kind: SpeechKind::Question,
        },
    );
    s.ok("CHAIR", Command::ExtendFloor { secs: 30 });
    assert_eq!(
        s.state.floor.as_ref().map(|f| f.deadline),
        Some(T0.plus_secs(90))
    );
    assert_eq!(
        s.code("CHAIR", Command::ExtendFloor { secs: 0 }),
        Code::Invalid
    );
    assert_eq!(
        s.code("CHAIR", Command::ExtendFloor { secs: 99_999 }),
        Code::Invalid
    );
    assert_eq!(s.code("D2", Command::YieldFloor), Code::NotPermitted);
    s.ok("D1", Command::YieldFloor);
    assert!(s.state.floor.is_none());
    s.ok(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D3"),
            kind: SpeechKind::Question,
        },
    );
    let events = s.ok("CHAIR", Command::RevokeFloor);
    assert!(matches!(
        events[0],
        Event::FloorEnded {
            reason: FloorEndReason::Revoked,
            ..
        }
    ));
}

#[test]
fn the_floor_expires_only_when_a_tick_comes_at_or_after_the_deadline() {
    let mut s = S::sitting();
    s.ok(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D1"),
            kind: SpeechKind::Debate,
        },
    );
    s.advance(179);
    assert!(s.ok("system", Command::Tick).is_empty());
    s.advance(1);
    let events = s.ok("system", Command::Tick);
    assert!(matches!(
        events[0],
        Event::FloorEnded {
            reason: FloorEndReason::Expired,
            ..
        }
    ));
    assert!(s.state.floor.is_none());
}

#[test]
fn the_floor_is_given_only_to_present_deputies() {
    let mut s = S::sitting();
    s.ok("D5", Command::CheckOut { deputy: id("D5") });
    assert_eq!(
        s.code(
            "CHAIR",
            Command::GiveFloor {
                deputy: id("D5"),
                kind: SpeechKind::Discussion
            }
        ),
        Code::NotPresent
    );
    assert_eq!(
        s.code(
            "CHAIR",
            Command::GiveFloor {
                deputy: id("CLERK"),
                kind: SpeechKind::Discussion
            }
        ),
        Code::Invalid
    );
}

// ---- voting ----

#[test]
fn a_vote_needs_an_open_sitting_a_current_item_and_no_other_open_vote() {
    let mut s = S::created();
    s.ok("CHAIR", Command::OpenSitting);
    let open = Command::OpenVote {
        question: "Q".into(),
        method: Method::Named,
        rule: None,
        window_secs: None,
        allow_change: None,
        rerun_of: None,
        step_up: None,
    };
    assert_eq!(s.code("CHAIR", open.clone()), Code::NoCurrentItem);
    s.ok("CHAIR", Command::SetCurrentItem { item: ItemId(1) });
    assert_eq!(s.code("D1", open.clone()), Code::NotPermitted);
    for d in ["CHAIR", "VICE", "D1", "D2", "D3", "D4"] {
        s.ok(
            d,
            Command::CheckIn {
                deputy: id(d),
                location: None,
            },
        );
    }
    s.ok("VICE", open.clone());
    assert_eq!(s.code("CHAIR", open), Code::VoteInProgress);
    assert_eq!(
        s.code("CHAIR", Command::SetCurrentItem { item: ItemId(2) }),
        Code::VoteInProgress
    );
    let v = &s.state.votes[&VoteId(1)];
    assert_eq!(
        v.deadline,
        T0.plus_secs(60),
        "default window from the rules"
    );
    assert_eq!(v.rule, PassRule::MajorityOfMembers);
}

#[test]
fn only_present_deputies_vote() {
    let mut s = S::sitting();
    s.ok("D7", Command::CheckOut { deputy: id("D7") });
    let v = s.open_vote(Method::Named, PassRule::MajorityOfMembers, None);
    assert_eq!(
        s.cast("D7", v, Choice::Yes).map_err(|r| r.code),
        Err(Code::NotPresent)
    );
    assert_eq!(
        s.cast("CLERK", v, Choice::Yes).map_err(|r| r.code),
        Err(Code::NotPermitted)
    );
    assert_eq!(
        s.cast("D1", VoteId(9), Choice::Yes).map_err(|r| r.code),
        Err(Code::NoSuchVote)
    );
}

#[test]
fn a_named_ballot_may_change_until_the_close_and_counts_once() {
    let mut s = S::sitting();
    let v = s.open_vote(Method::Named, PassRule::MajorityOfMembers, None);
    s.cast("D1", v, Choice::Yes).expect("cast");
    s.cast("D1", v, Choice::No).expect("change");
    assert!(
        s.cast("D1", v, Choice::No).expect("retry").is_empty(),
        "same ballot again records nothing"
    );
    let vote = &s.state.votes[&v];
    assert_eq!(
        vote.tally,
        Tally {
            yes: 0,
            no: 1,
            abstain: 0
        }
    );
    assert_eq!(vote.ballots[&id("D1")].changes, 1);
}

#[test]
fn a_named_ballot_is_final_when_changes_are_not_allowed() {
    let mut s = S::sitting();
    let v = s.open_vote(Method::Named, PassRule::MajorityOfMembers, Some(false));
    s.cast("D1", v, Choice::Yes).expect("cast");
    assert_eq!(
        s.cast("D1", v, Choice::No).map_err(|r| r.code),
        Err(Code::BallotFinal)
    );
}

#[test]
fn a_clerk_records_a_named_ballot_on_behalf_with_the_reason() {
    let mut s = S::sitting();
    let v = s.open_vote(Method::Named, PassRule::MajorityOfMembers, None);
    let events = s.ok(
        "CLERK",
        Command::RecordBallot {
            vote: v,
            deputy: id("D2"),
            choice: Choice::Yes,
            reason: "máy hỏng".into(),
        },
    );
    assert_eq!(
        events,
        vec![Event::BallotCast {
            vote: v,
            deputy: id("D2"),
            choice: Choice::Yes,
            on_behalf: Some(OnBehalf {
                clerk: id("CLERK"),
                reason: "máy hỏng".into()
            }),
            step_up: false,
        }]
    );
    assert_eq!(
        s.code(
            "CLERK",
            Command::RecordBallot {
                vote: v,
                deputy: id("D3"),
                choice: Choice::Yes,
                reason: " ".into()
            }
        ),
        Code::Invalid
    );
    assert_eq!(
        s.code(
            "D1",
            Command::RecordBallot {
                vote: v,
                deputy: id("D3"),
                choice: Choice::Yes,
                reason: "x".into()
            }
        ),
        Code::NotPermitted
    );
}

#[test]
fn a_vote_opens_only_with_the_quorum_present_and_a_departure_during_it_does_not_stop_it() {
    let mut s = S::created();
    s.ok("CHAIR", Command::OpenSitting);
    s.ok("CHAIR", Command::SetCurrentItem { item: ItemId(1) });
    let check_in = |d: &str| Command::CheckIn {
        deputy: id(d),
        location: None,
    };
    // 9 deputies; two thirds is 6. Five present: one below.
    for d in ["CHAIR", "D1", "D2", "D3", "D4"] {
        s.ok(d, check_in(d));
    }
    let open = || Command::OpenVote {
        question: "Thông qua?".into(),
        method: Method::Named,
        rule: Some(PassRule::MajorityOfPresent),
        window_secs: Some(60),
        allow_change: None,
        rerun_of: None,
        step_up: None,
    };
    assert_eq!(s.code("CHAIR", open()), Code::NoQuorum);
    assert!(s.state.open_vote.is_none());
    // Exactly at the quorum: six of nine.
    s.ok("D5", check_in("D5"));
    let v = s.open_vote(Method::Named, PassRule::MajorityOfPresent, None);
    for d in ["D1", "D2", "D3", "D4"] {
        s.cast(d, v, Choice::Yes).expect("ballot");
    }
    // A deputy leaves during the vote: it goes on, and the result counts who is there at
    // the close.
    s.ok("D5", Command::CheckOut { deputy: id("D5") });
    assert!(!s.state.quorum_met());
    let closed = s.ok("CHAIR", Command::CloseVote { vote: v });
    match closed.as_slice() {
        [Event::VoteClosed { result, .. }] => {
            assert_eq!(result.present, 5);
            assert_eq!(result.members, 9);
            assert!(result.passed, "4 of 5 present: {result:?}");
        }
        other => panic!("{other:?}"),
    }
    // Below the quorum again, no new vote; unless the rules say a vote needs none.
    assert_eq!(s.code("CHAIR", open()), Code::NoQuorum);
    s.state.rules.vote_needs_quorum = false;
    s.ok("CHAIR", open());
}

#[test]
fn rules_without_the_quorum_rule_read_as_needing_it_and_write_the_same_bytes() {
    let before: Rules = serde_json::from_str(r#"{"allow_ballot_change": true}"#).expect("rules");
    assert!(before.vote_needs_quorum);
    let bytes = serde_json::to_string(&Rules::default()).expect("json");
    assert!(!bytes.contains("vote_needs_quorum"), "{bytes}");
    let off = Rules {
        vote_needs_quorum: false,
        ..Rules::default()
    };
    let bytes = serde_json::to_string(&off).expect("json");
    assert!(bytes.contains("\"vote_needs_quorum\":false"), "{bytes}");
}

#[test]
fn a_vote_opened_with_step_up_takes_ballots_only_with_a_passkey_confirmation() {
    let mut s = S::sitting();
    let opened = s.ok(
        "CHAIR",
        Command::OpenVote {
            question: "Thông qua?".into(),
            method: Method::Named,
            rule: None,
            window_secs: Some(60),
            allow_change: Some(true),
            rerun_of: None,
            step_up: Some(true),
        },
    );
    let v = match opened.as_slice() {
        [Event::VoteOpened { vote, step_up, .. }] => {
            assert!(
                step_up,
                "the event records that the vote asks for a step-up"
            );
            *vote
        }
        other => panic!("{other:?}"),
    };
    // Without a confirmation: refused, nothing counted.
    assert_eq!(
        s.cast("D1", v, Choice::Yes).map_err(|r| r.code),
        Err(Code::StepUpRequired)
    );
    let clerk_entry = Command::RecordBallot {
        vote: v,
        deputy: id("D2"),
        choice: Choice::No,
        reason: "máy hỏng".into(),
    };
    assert_eq!(s.code("CLERK", clerk_entry.clone()), Code::StepUpRequired);
    assert_eq!(s.state.votes[&v].tally.total(), 0);
    // With one: accepted, and the event says so; the clerk's own step-up counts for an
    // entry on a deputy's behalf.
    let cast = Command::CastBallot {
        vote: v,
        choice: Choice::Yes,
    };
    let events = s
        .run_assured("D1", cast, Assurance::STEPPED_UP)
        .expect("stepped-up ballot");
    assert!(matches!(
        events.as_slice(),
        [Event::BallotCast { step_up: true, .. }]
    ));
    let events = s
        .run_assured("CLERK", clerk_entry, Assurance::STEPPED_UP)
        .expect("stepped-up clerk entry");
    assert!(matches!(
        events.as_slice(),
        [Event::BallotCast {
            step_up: true,
            on_behalf: Some(_),
            ..
        }]
    ));
    assert_eq!(s.state.votes[&v].tally.total(), 2);
    // The rules' default applies when the chair says nothing; a vote without step-up takes
    // ballots either way and records which had one.
    let closed = s.ok("CHAIR", Command::CloseVote { vote: v });
    assert!(!closed.is_empty());
    s.state.rules.step_up_ballots = true;
    let secret = s.ok(
        "CHAIR",
        Command::OpenVote {
            question: "Bầu?".into(),
            method: Method::Secret,
            rule: None,
            window_secs: Some(60),
            allow_change: None,
            rerun_of: None,
            step_up: None,
        },
    );
    let v2 = match secret.as_slice() {
        [
            Event::VoteOpened {
                vote,
                step_up: true,
                ..
            },
        ] => *vote,
        other => panic!("the rules' default was not applied: {other:?}"),
    };
    assert_eq!(
        s.cast("D3", v2, Choice::No).map_err(|r| r.code),
        Err(Code::StepUpRequired)
    );
    let events = s
        .run_assured(
            "D3",
            Command::CastBallot {
                vote: v2,
                choice: Choice::No,
            },
            Assurance::STEPPED_UP,
        )
        .expect("stepped-up secret ballot");
    assert!(matches!(
        events.as_slice(),
        [
            Event::SecretBallotTaken { step_up: true, .. },
            Event::SecretChoice { .. }
        ]
    ));
    s.ok("CHAIR", Command::CloseVote { vote: v2 });
    s.state.rules.step_up_ballots = false;
    let plain = s.open_vote(Method::Named, PassRule::MajorityOfMembers, None);
    let events = s.cast("D4", plain, Choice::Yes).expect("no step-up needed");
    assert!(matches!(
        events.as_slice(),
        [Event::BallotCast { step_up: false, .. }]
    ));
}

#[test]
fn ballots_after_the_deadline_are_refused_and_a_tick_closes_the_vote_with_its_result() {
    let mut s = S::sitting();
    let v = s.open_vote(Method::Named, PassRule::MajorityOfMembers, None);
    for d in ["D1", "D2", "D3", "D4", "D5"] {
        s.cast(d, v, Choice::Yes).expect("yes");
    }
    s.cast("D6", v, Choice::No).expect("no");
    s.cast("D7", v, Choice::Abstain).expect("abstain");
    s.advance(60);
    assert_eq!(
        s.cast("CHAIR", v, Choice::Yes).map_err(|r| r.code),
        Err(Code::VoteClosed)
    );
    let events = s.ok("system", Command::Tick);
    let Event::VoteClosed { result, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        result.tally,
        Tally {
            yes: 5,
            no: 1,
            abstain: 1
        }
    );
    assert_eq!(result.participants, 7);
    assert_eq!(result.members, 9);
    assert_eq!(result.present, 9);
    assert_eq!(result.yes_bp_of_members, 5556);
    assert!(result.passed, "5 of 9 members is more than half");
    assert!(s.state.open_vote.is_none());
    assert_eq!(
        s.cast("D1", v, Choice::No).map_err(|r| r.code),
        Err(Code::VoteClosed)
    );
}

#[test]
fn each_pass_rule_decides_on_its_own_basis() {
    // 5 yes of 9 members, all present.
    for (rule, passed) in [
        (PassRule::MajorityOfMembers, true),
        (PassRule::TwoThirdsOfMembers, false),
        (PassRule::MajorityOfPresent, true),
    ] {
        let mut s = S::sitting();
        let v = s.open_vote(Method::Named, rule, None);
        for d in ["D1", "D2", "D3", "D4", "D5"] {
            s.cast(d, v, Choice::Yes).expect("yes");
        }
        let events = s.ok("CHAIR", Command::CloseVote { vote: v });
        let Event::VoteClosed { result, .. } = &events[0] else {
            panic!()
        };
        assert_eq!(result.passed, passed, "{rule:?}");
    }
}

#[test]
fn a_voided_vote_can_be_re_run_and_a_valid_one_cannot() {
    let mut s = S::sitting();
    let v = s.open_vote(Method::Named, PassRule::MajorityOfMembers, None);
    s.cast("D1", v, Choice::Yes).expect("cast");
    s.ok("CHAIR", Command::CloseVote { vote: v });
    let rerun = |of| Command::OpenVote {
        question: "Q".into(),
        method: Method::Named,
        rule: None,
        window_secs: Some(30),
        allow_change: None,
        rerun_of: Some(of),
        step_up: None,
    };
    assert_eq!(s.code("CHAIR", rerun(v)), Code::NotVoided);
    assert_eq!(
        s.code(
            "CHAIR",
            Command::VoidVote {
                vote: v,
                reason: "".into()
            }
        ),
        Code::Invalid
    );
    s.ok(
        "CHAIR",
        Command::VoidVote {
            vote: v,
            reason: "lỗi hệ thống".into(),
        },
    );
    assert!(matches!(
        &s.state.votes[&v].status,
        VoteStatus::Voided {
            result: Some(_),
            ..
        }
    ));
    assert_eq!(
        s.code(
            "CHAIR",
            Command::VoidVote {
                vote: v,
                reason: "x".into()
            }
        ),
        Code::AlreadyVoided
    );
    s.ok("CHAIR", rerun(v));
    assert_eq!(s.state.votes[&VoteId(2)].rerun_of, Some(v));
}

#[test]
fn a_secret_ballot_records_who_took_part_apart_from_what_they_chose() {
    let mut s = S::sitting();
    let v = s.open_vote(Method::Secret, PassRule::MajorityOfMembers, Some(true));
    let events = s.cast("D1", v, Choice::No).expect("cast");
    assert_eq!(
        events,
        vec![
            Event::SecretBallotTaken {
                vote: v,
                deputy: id("D1"),
                step_up: false,
            },
            Event::SecretChoice {
                vote: v,
                choice: Choice::No
            },
        ]
    );
    assert!(events[1].is_sealed() && !events[0].is_sealed());
    assert_eq!(
        s.cast("D1", v, Choice::Yes).map_err(|r| r.code),
        Err(Code::BallotFinal)
    );
    assert_eq!(
        s.code(
            "CLERK",
            Command::RecordBallot {
                vote: v,
                deputy: id("D2"),
                choice: Choice::Yes,
                reason: "x".into()
            }
        ),
        Code::NotPermitted
    );
    let vote = &s.state.votes[&v];
    assert!(vote.ballots.is_empty());
    assert!(
        !vote.allow_change,
        "secret ballots are final whatever was asked"
    );
    let json = serde_json::to_string(vote).expect("json");
    assert!(
        !json.contains("choice"),
        "the state holds no choice by name: {json}"
    );
}

// ---- documents ----

fn publish(access: Access) -> Command {
    Command::PublishDocument {
        item: ItemId(1),
        title: "Dự thảo".into(),
        media_type: "application/pdf".into(),
        size: 2048,
        sha256: "0f".repeat(32),
        file_name: None,
        access,
    }
}

#[test]
fn a_clerk_publishes_and_supersedes_documents() {
    let mut s = S::sitting();
    assert_eq!(s.code("CHAIR", publish(Access::Public)), Code::NotPermitted);
    s.ok("CLERK", publish(Access::Deputies));
    s.ok(
        "CLERK",
        Command::SupersedeDocument {
            document: DocumentId(1),
            title: "Dự thảo (sửa)".into(),
            media_type: "application/pdf".into(),
            size: 4096,
            sha256: "1f".repeat(32),
            file_name: None,
        },
    );
    let doc = &s.state.documents[&DocumentId(1)];
    assert_eq!(doc.latest(), 2);
    assert_eq!(doc.versions[1].size, 4096);
}

#[test]
fn document_fields_are_validated() {
    let mut s = S::sitting();
    let bad = |f: &dyn Fn(&mut Command)| {
        let mut c = publish(Access::Public);
        f(&mut c);
        c
    };
    let cases: Vec<Command> = vec![
        bad(&|c| {
            if let Command::PublishDocument { sha256, .. } = c {
                *sha256 = "AB".repeat(32)
            }
        }),
        bad(&|c| {
            if let Command::PublishDocument { sha256, .. } = c {
                *sha256 = "ab".into()
            }
        }),
        bad(&|c| {
            if let Command::PublishDocument { media_type, .. } = c {
                *media_type = "pdf".into()
            }
        }),
        bad(&|c| {
            if let Command::PublishDocument { size, .. } = c {
                *size = 0
            }
        }),
        bad(&|c| {
            if let Command::PublishDocument { title, .. } = c {
                *title = "x".repeat(MAX_TITLE_CHARS + 1)
            }
        }),
        bad(&|c| {
            if let Command::PublishDocument { title, .. } = c {
                *title = "a\u{0007}b".into()
            }
        }),
        publish(Access::Restricted(BTreeSet::new())),
    ];
    for c in cases {
        assert_eq!(s.code("CLERK", c.clone()), Code::Invalid, "{c:?}");
    }
}

#[test]
fn deputies_acknowledge_what_they_may_read_once_per_level() {
    let mut s = S::sitting();
    s.ok("CLERK", publish(Access::Deputies));
    s.ok(
        "CLERK",
        publish(Access::Restricted(BTreeSet::from([Role::Chair]))),
    );
    let ack = |document, ack| Command::AcknowledgeDocument {
        document: DocumentId(document),
        version: 1,
        ack,
    };
    s.ok("D1", ack(1, Acknowledgement::Received));
    assert_eq!(
        s.code("D1", ack(1, Acknowledgement::Received)),
        Code::AlreadyAcknowledged
    );
    s.ok("D1", ack(1, Acknowledgement::Read));
    assert_eq!(
        s.code("D1", ack(1, Acknowledgement::Received)),
        Code::AlreadyAcknowledged
    );
    assert_eq!(s.code("D1", ack(2, Acknowledgement::Read)), Code::NoAccess);
    s.ok("CHAIR", ack(2, Acknowledgement::Read));
    assert_eq!(
        s.code("OBS", ack(1, Acknowledgement::Read)),
        Code::NotPermitted
    );
    assert_eq!(
        s.code(
            "D1",
            Command::AcknowledgeDocument {
                document: DocumentId(1),
                version: 2,
                ack: Acknowledgement::Read
            }
        ),
        Code::NoSuchDocument
    );
}

// ---- roles ----

#[test]
fn every_command_is_refused_to_roles_the_matrix_denies() {
    let s = S::sitting();
    let commands = vec![
        Command::OpenSitting,
        Command::CheckIn {
            deputy: id("D1"),
            location: None,
        },
        Command::AddAgendaItem {
            title: "x".into(),
            position: None,
        },
        Command::RequestFloor {
            kind: SpeechKind::Question,
        },
        Command::GrantFloor {
            request: RequestId(1),
        },
        Command::OpenVote {
            question: "q".into(),
            method: Method::Named,
            rule: None,
            window_secs: None,
            allow_change: None,
            rerun_of: None,
            step_up: None,
        },
        Command::CastBallot {
            vote: VoteId(1),
            choice: Choice::Yes,
        },
        Command::RecordBallot {
            vote: VoteId(1),
            deputy: id("D1"),
            choice: Choice::Yes,
            reason: "x".into(),
        },
        Command::PublishDocument {
            item: ItemId(1),
            title: "x".into(),
            media_type: "a/b".into(),
            size: 1,
            sha256: "0".repeat(64),
            file_name: None,
            access: Access::Public,
        },
        Command::AcknowledgeDocument {
            document: DocumentId(1),
            version: 1,
            ack: Acknowledgement::Read,
        },
    ];
    for actor in s.state.roster.actors.values() {
        for c in &commands {
            if !role_permits(actor, c) {
                let r = decide(&s.state, &actor.id, c, s.now).expect_err("denied");
                assert_eq!(r.code, Code::NotPermitted, "{} {c:?}", actor.id);
            }
        }
    }
    let obs = &s.state.roster.actors[&id("OBS")];
    assert!(
        commands.iter().all(|c| !role_permits(obs, c)),
        "an observer may only follow"
    );
}

#[test]
fn roster_validation_refuses_bad_ids_and_unknown_delegations() {
    let del = Delegation {
        code: DelegationCode::new("01"),
        name: "x".into(),
        kind: DelegationKind::Province,
        region: String::new(),
    };
    let actor = |id: &str, d: Option<&str>| Actor {
        id: ActorId::new(id),
        name: id.into(),
        delegation: d.map(DelegationCode::new),
        roles: BTreeSet::from([Role::Deputy]),
    };
    assert!(matches!(
        Roster::new(vec![del.clone()], vec![actor("system", Some("01"))]),
        Err(RosterError::InvalidId(_))
    ));
    assert!(matches!(
        Roster::new(vec![del.clone()], vec![actor("a b", Some("01"))]),
        Err(RosterError::InvalidId(_))
    ));
    assert!(matches!(
        Roster::new(vec![del.clone()], vec![actor("D1", Some("99"))]),
        Err(RosterError::UnknownDelegation(..))
    ));
    assert!(matches!(
        Roster::new(vec![del.clone()], vec![actor("D1", None)]),
        Err(RosterError::UnknownDelegation(..))
    ));
    assert!(matches!(
        Roster::new(
            vec![del.clone()],
            vec![actor("D1", Some("01")), actor("D1", Some("01"))]
        ),
        Err(RosterError::Duplicate(_))
    ));
    assert!(matches!(
        Roster::new(vec![del], vec![]),
        Err(RosterError::NoDeputies)
    ));
}

fn give(deputy: &str, kind: SpeechKind) -> Command {
    Command::GiveFloor {
        deputy: id(deputy),
        kind,
    }
}

fn deadline(s: &S) -> i64 {
    s.state
        .floor
        .as_ref()
        .map(|f| f.deadline.0 - s.now.0)
        .expect("a speaker")
}

#[test]
fn a_delegation_speaks_on_an_item_only_within_its_budget() {
    let mut s = S::sitting();
    // Delegation 79 (D1, D3, D5, D7) may speak 600 s on an item; a discussion turn is 420 s.
    s.state.rules.delegation_budget_secs = Some(600);
    s.ok("CHAIR", give("D1", SpeechKind::Discussion));
    assert_eq!(deadline(&s), 420_000, "the kind's limit, within the budget");
    s.advance(400);
    // Superseded after 400 s: the next deputy of 79 gets the 200 s left, not 420.
    s.ok("CHAIR", give("D3", SpeechKind::Discussion));
    assert_eq!(deadline(&s), 200_000);
    // An extension past the budget is refused; one within it is given.
    assert_eq!(
        s.code("CHAIR", Command::ExtendFloor { secs: 1 }),
        Code::BudgetExhausted
    );
    s.advance(150);
    s.ok("CHAIR", Command::RevokeFloor);
    // 50 s left: granted for 50 s; then exactly at the budget, nothing more.
    s.ok("CHAIR", give("D5", SpeechKind::Debate));
    assert_eq!(deadline(&s), 50_000);
    s.advance(50);
    s.ok("D5", Command::YieldFloor);
    assert_eq!(
        spoken_ms(&s.state, &DelegationCode::new("79"), ItemId(1), s.now),
        600_000
    );
    assert_eq!(
        s.code("CHAIR", give("D7", SpeechKind::Question)),
        Code::BudgetExhausted
    );
    // Points of order do not count, another delegation has its own budget, and the next item
    // starts afresh.
    s.ok("CHAIR", give("D7", SpeechKind::PointOfOrder));
    assert_eq!(deadline(&s), 60_000);
    s.ok("CHAIR", give("D2", SpeechKind::Discussion));
    assert_eq!(deadline(&s), 420_000, "delegation 01 has spoken nothing");
    s.ok("CHAIR", Command::RevokeFloor);
    s.ok("CHAIR", Command::SetCurrentItem { item: ItemId(2) });
    s.ok("CHAIR", give("D1", SpeechKind::Discussion));
    assert_eq!(deadline(&s), 420_000, "a new item, a new budget");
}

#[test]
fn without_a_budget_speeches_get_their_kinds_limit_and_extensions_are_not_capped() {
    let mut s = S::sitting();
    assert_eq!(s.state.rules.delegation_budget_secs, None);
    for _ in 0..3 {
        s.ok("CHAIR", give("D1", SpeechKind::Discussion));
        assert_eq!(deadline(&s), 420_000);
        s.advance(420);
        s.ok("CHAIR", Command::ExtendFloor { secs: 600 });
        s.advance(600);
        s.ok("CHAIR", Command::RevokeFloor);
    }
    // Rules written out without the budget read back the same (old sittings' bytes).
    let text = serde_json::to_string(&s.state.rules).expect("json");
    assert!(!text.contains("delegation_budget_secs"), "{text}");
    let mut with = s.state.rules.clone();
    with.delegation_budget_secs = Some(900);
    let back: Rules =
        serde_json::from_str(&serde_json::to_string(&with).expect("json")).expect("parse");
    assert_eq!(back.delegation_budget_secs, Some(900));
}
