//! The minutes built from a small sitting run through the procedure core on a virtual clock,
//! and their renderings: what they say, and that the same log gives the same bytes.

use super::render::{self, Lang, Table};
use super::*;
use crate::sitting::{
    Actor, Assurance, Command, Delegation, DelegationCode, DelegationKind, Role, Rules, SittingId,
    SittingState, apply, decide_assured,
};
use std::collections::BTreeSet;

/// 2025-12-02 09:00:00 in Hanoi (02:00 UTC).
const T0: i64 = 1_764_640_800_000;

fn id(s: &str) -> ActorId {
    ActorId::new(s)
}

fn roster() -> Roster {
    let d = |code: &str, name: &str| Delegation {
        code: DelegationCode::new(code),
        name: name.to_owned(),
        kind: DelegationKind::Municipality,
        region: String::new(),
    };
    let a = |code: &str, name: &str, del: Option<&str>, roles: &[Role]| Actor {
        id: id(code),
        name: name.to_owned(),
        delegation: del.map(DelegationCode::new),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
    };
    Roster::new(
        vec![d("01", "Hà Nội"), d("79", "Thành phố Hồ Chí Minh")],
        vec![
            a("CHAIR", "Chủ tọa", Some("01"), &[Role::Chair, Role::Deputy]),
            a("CLERK", "Thư ký", None, &[Role::Clerk]),
            a("D1", "Nguyễn Văn <An>", Some("01"), &[Role::Deputy]),
            a("D2", "Trần Thị Bình", Some("79"), &[Role::Deputy]),
            a("D3", "Lê Văn Cường", Some("79"), &[Role::Deputy]),
        ],
    )
    .expect("roster")
}

/// Runs commands as the writer would, keeping each event with its time and actor.
struct Log {
    state: SittingState,
    events: Vec<StoredEvent>,
    now: i64,
}

impl Log {
    fn new() -> Log {
        let mut log = Log {
            state: SittingState::default(),
            events: Vec::new(),
            now: T0,
        };
        log.run(
            "system",
            Command::CreateSitting {
                sitting: SittingId::new("kh10"),
                title: "Kỳ họp thứ 10 — phiên <thử>".into(),
                roster: roster(),
                rules: Rules::default(),
                agenda: vec!["Khai mạc".into(), "Luật Chuyển đổi số".into()],
            },
        );
        log
    }

    fn at(&mut self, secs: i64) -> &mut Log {
        self.now += secs * 1000;
        self
    }

    fn run(&mut self, actor: &str, c: Command) -> &mut Log {
        self.run_assured(actor, c, Assurance::NONE)
    }

    fn run_assured(&mut self, actor: &str, c: Command, a: Assurance) -> &mut Log {
        let now = Millis(self.now);
        let events = decide_assured(&self.state, &id(actor), &c, a, now)
            .unwrap_or_else(|r| panic!("{actor} {c:?}: {r}"));
        for e in events {
            apply(&mut self.state, &e);
            if e.is_sealed() {
                continue;
            }
            self.events.push(StoredEvent {
                seq: self.events.len() as u64 + 1,
                at: now,
                actor: id(actor),
                command_id: None,
                event: e,
                hash: [0; 32],
            });
        }
        self
    }

    fn minutes(&self, generated: i64) -> Minutes {
        build(
            "epoch-1",
            &self.events,
            Head {
                seq: self.events.len() as u64,
                hash: "ab".repeat(32),
            },
            Vec::new(),
            Millis(generated),
        )
        .expect("minutes")
    }
}

fn check_in(deputy: &str, location: Option<Location>) -> Command {
    Command::CheckIn {
        deputy: id(deputy),
        location,
    }
}

fn open_vote(method: Method, step_up: bool) -> Command {
    Command::OpenVote {
        question: "Thông qua?".into(),
        method,
        rule: None,
        window_secs: Some(600),
        allow_change: Some(true),
        rerun_of: None,
        step_up: Some(step_up),
    }
}

fn cast(vote: u32, choice: Choice) -> Command {
    Command::CastBallot {
        vote: VoteId(vote),
        choice,
    }
}

/// A sitting with attendance, a speech, a named vote (a changed ballot, a clerk's entry, a
/// passkey), a secret vote, a document in two versions, a suspension, and the close.
fn sitting() -> Log {
    let mut log = Log::new();
    log.at(60).run("CHAIR", Command::OpenSitting);
    log.at(5)
        .run("CHAIR", check_in("CHAIR", Some(Location::Hall)))
        .run("D1", check_in("D1", Some(Location::Remote)))
        .run("CLERK", check_in("D2", None))
        .run("D3", check_in("D3", Some(Location::Site)));
    log.run("CHAIR", Command::SetCurrentItem { item: ItemId(2) });
    log.at(10).run(
        "CHAIR",
        Command::GiveFloor {
            deputy: id("D1"),
            kind: SpeechKind::Discussion,
        },
    );
    log.at(30).run("CHAIR", Command::ExtendFloor { secs: 60 });
    log.at(95).run("D1", Command::YieldFloor);
    log.at(5).run("CHAIR", open_vote(Method::Named, true));
    log.run_assured("D1", cast(1, Choice::Yes), Assurance::STEPPED_UP)
        .run_assured("D1", cast(1, Choice::No), Assurance::STEPPED_UP)
        .run_assured("D3", cast(1, Choice::Yes), Assurance::STEPPED_UP)
        .run_assured(
            "CLERK",
            Command::RecordBallot {
                vote: VoteId(1),
                deputy: id("D2"),
                choice: Choice::Yes,
                reason: "Máy hỏng".into(),
            },
            Assurance::STEPPED_UP,
        );
    log.at(20)
        .run("CHAIR", Command::CloseVote { vote: VoteId(1) });
    log.run("CHAIR", open_vote(Method::Secret, false))
        .run("D2", cast(2, Choice::No))
        .run("D3", cast(2, Choice::Yes));
    log.at(10)
        .run("CHAIR", Command::CloseVote { vote: VoteId(2) });
    let publish = |title: &str| Command::PublishDocument {
        item: ItemId(2),
        title: title.into(),
        media_type: "application/pdf".into(),
        size: 1000,
        sha256: "cd".repeat(32),
        file_name: None,
        access: Access::Deputies,
    };
    log.run("CLERK", publish("Tờ trình"));
    log.run(
        "CLERK",
        Command::SupersedeDocument {
            document: DocumentId(1),
            title: "Tờ trình (sửa)".into(),
            media_type: "application/pdf".into(),
            size: 2000,
            sha256: "ef".repeat(32),
            file_name: None,
        },
    );
    log.at(30).run(
        "CHAIR",
        Command::SuspendSitting {
            reason: "Giải lao".into(),
        },
    );
    log.at(900).run("CHAIR", Command::ResumeSitting);
    log.run("D3", Command::CheckOut { deputy: id("D3") });
    log.at(60).run("CHAIR", Command::CloseSitting);
    log
}

#[test]
fn the_minutes_say_who_came_who_spoke_how_each_voted_and_what_was_published() {
    let log = sitting();
    let m = log.minutes(T0 + 3_600_000);
    assert_eq!(m.title, "Kỳ họp thứ 10 — phiên <thử>");
    assert_eq!(m.members, 4);
    assert_eq!(m.opened_at, Some(Millis(T0 + 60_000)));
    assert!(m.closed_at.is_some());
    assert_eq!(m.suspensions.len(), 1);
    assert_eq!(m.suspensions[0].reason, "Giải lao");
    assert!(m.suspensions[0].resumed_at.is_some());

    // Attendance: four check-ins, one on a clerk's entry, one who left.
    assert_eq!(m.attendance.len(), 4);
    let d2 = m
        .attendance
        .iter()
        .find(|a| a.deputy.id == id("D2"))
        .expect("D2");
    assert_eq!(d2.by_clerk, Some(id("CLERK")));
    assert_eq!(
        d2.deputy.delegation.as_deref(),
        Some("Thành phố Hồ Chí Minh")
    );
    let d3 = m
        .attendance
        .iter()
        .find(|a| a.deputy.id == id("D3"))
        .expect("D3");
    assert!(d3.checked_out_at.is_some());
    assert_eq!(m.present_at_end, 3);

    // The speech: on item 2, 125 seconds, extended once, yielded.
    assert_eq!(m.items.len(), 2);
    let item = &m.items[1];
    assert_eq!(item.speeches.len(), 1);
    let s = &item.speeches[0];
    assert_eq!(s.deputy.id, id("D1"));
    assert_eq!(s.duration_secs, 125);
    assert_eq!(s.extensions, 1);
    assert_eq!(s.ended, Some(FloorEndReason::Yielded));
    assert_eq!(item.votes, vec![VoteId(1), VoteId(2)]);

    // The named vote: the last choice, the change, the clerk's entry with its reason, the
    // passkey; the result against the whole membership.
    let named = &m.votes[0];
    assert!(named.step_up);
    let line = |d: &str| {
        named
            .roll_call
            .iter()
            .find(|r| r.deputy.id == id(d))
            .expect(d)
    };
    assert_eq!(line("D1").choice, Choice::No);
    assert_eq!(line("D1").changes, 1);
    assert!(line("D1").step_up);
    let clerk = line("D2").on_behalf.as_ref().expect("on behalf");
    assert_eq!(
        (clerk.clerk.as_str(), clerk.reason.as_str()),
        ("CLERK", "Máy hỏng")
    );
    match &named.outcome {
        VoteOutcome::Closed { result, .. } => {
            assert_eq!((result.tally.yes, result.tally.no), (2, 1));
            assert_eq!(result.members, 4);
            // 2 of 4 is not more than half of the membership.
            assert!(!result.passed, "{result:?}");
        }
        other => panic!("{other:?}"),
    }

    // The secret vote: who took part, never a choice.
    let secret = &m.votes[1];
    assert!(secret.roll_call.is_empty());
    let took: Vec<&str> = secret.took_part.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(took, vec!["D2", "D3"]);

    // The document with both versions.
    assert_eq!(m.documents.len(), 1);
    let versions: Vec<(u32, &str)> = m.documents[0]
        .versions
        .iter()
        .map(|v| (v.version, v.title.as_str()))
        .collect();
    assert_eq!(versions, vec![(1, "Tờ trình"), (2, "Tờ trình (sửa)")]);
}

#[test]
fn the_same_log_gives_the_same_bytes_apart_from_the_generation_stamp() {
    let log = sitting();
    let (a, b) = (log.minutes(T0 + 10), log.minutes(T0 + 10));
    let later = log.minutes(T0 + 7_200_000);
    for lang in [Lang::Vi, Lang::En] {
        assert_eq!(render::html(&a, lang), render::html(&b, lang));
        assert_ne!(render::html(&a, lang), render::html(&later, lang));
        for table in [Table::Attendance, Table::Speeches, Table::RollCall] {
            assert_eq!(
                render::csv(&a, table, lang).expect("csv"),
                render::csv(&later, table, lang).expect("csv"),
                "a CSV table carries no generation stamp"
            );
        }
    }
    assert_eq!(
        render::json(&a).expect("json"),
        render::json(&b).expect("json")
    );
}

#[test]
fn the_html_escapes_what_people_typed_and_shows_hanoi_time() {
    let m = sitting().minutes(T0);
    let page = String::from_utf8(render::html(&m, Lang::Vi)).expect("utf-8");
    assert!(page.contains("phiên &lt;thử&gt;"));
    assert!(page.contains("Nguyễn Văn &lt;An&gt;"));
    assert!(!page.contains("<An>"));
    assert!(!page.contains("<script"));
    // Opened at T0 + 60 s: 09:01 in Hanoi.
    assert!(page.contains("2025-12-02 09:01:00"), "{page}");
    assert!(page.contains("Máy hỏng"));
    let en = String::from_utf8(render::html(&m, Lang::En)).expect("utf-8");
    assert!(en.contains("<html lang=\"en\">") && en.contains("Roll call"));
}

#[test]
fn csv_tables_open_in_a_spreadsheet_with_the_vietnamese_intact() {
    let m = sitting().minutes(T0);
    let bytes = render::csv(&m, Table::RollCall, Lang::Vi).expect("csv");
    assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF], "a byte-order mark first");
    let mut reader = ::csv::Reader::from_reader(&bytes[3..]);
    let rows: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    // Three named ballots and two secret participants.
    assert_eq!(rows.len(), 5);
    let d2 = rows
        .iter()
        .find(|r| &r[2] == "D2" && &r[0] == "1")
        .expect("D2");
    assert_eq!(&d2[3], "Trần Thị Bình");
    assert_eq!(&d2[5], "Tán thành");
    assert_eq!((&d2[7], &d2[8]), ("CLERK", "Máy hỏng"));
    let secret = rows.iter().filter(|r| &r[0] == "2").count();
    assert_eq!(secret, 2);
    assert!(
        rows.iter()
            .filter(|r| &r[0] == "2")
            .all(|r| r[5].is_empty())
    );
    let attendance = render::csv(&m, Table::Attendance, Lang::En).expect("csv");
    let text = String::from_utf8(attendance[3..].to_vec()).expect("utf-8");
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("Remote"));
}

#[test]
fn a_log_that_does_not_start_with_the_sittings_creation_has_no_minutes() {
    let log = sitting();
    let err = build(
        "e",
        &log.events[1..],
        Head {
            seq: 0,
            hash: String::new(),
        },
        Vec::new(),
        Millis(0),
    );
    assert!(matches!(err, Err(MinutesError::NotCreated)));
}
