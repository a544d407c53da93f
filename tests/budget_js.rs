//! The chair console's speaking-time budgets (`budgetsLeft` in web-client/js/state.js) are
//! the server's (`sitting::budget_left_ms`): a sitting with speeches of two delegations, a
//! point of order and a speech going on, folded by the core, is handed to Node, and every
//! delegation's time left must match to the millisecond.

mod support;

use dienhong::sitting::{
    ActorId, Command, DelegationCode, ItemId, Millis, Rules, SittingId, SittingState, SpeechKind,
    budget_left_ms, execute,
};
use serde_json::{Value, json};
use std::process::Command as Process;

#[test]
fn the_console_counts_each_delegations_time_left_as_the_server_does() {
    if Process::new("node").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("DIENHONG_REQUIRE_BROWSER").is_none(),
            "DIENHONG_REQUIRE_BROWSER is set but node is missing"
        );
        eprintln!("skipped: node is not installed");
        return;
    }
    let mut state = SittingState::default();
    let mut now = Millis(1_000_000);
    let system = ActorId::system();
    let chair = ActorId::new(support::CHAIR);
    let rules = Rules {
        delegation_budget_secs: Some(900),
        ..Rules::default()
    };
    let run = |state: &mut SittingState, actor: &ActorId, c: Command, now: Millis| {
        execute(state, actor, &c, now).unwrap_or_else(|r| panic!("{c:?}: {r}"));
    };
    let Command::CreateSitting { roster, agenda, .. } = support::create(&SittingId::new("b"), 6)
    else {
        unreachable!()
    };
    run(
        &mut state,
        &system,
        Command::CreateSitting {
            sitting: SittingId::new("b"),
            title: "Phiên".into(),
            roster,
            rules,
            agenda,
        },
        now,
    );
    run(&mut state, &chair, Command::OpenSitting, now);
    for n in 1..=6 {
        let d = support::deputy(n);
        run(
            &mut state,
            &d,
            Command::CheckIn {
                deputy: d.clone(),
                location: None,
            },
            now,
        );
    }
    run(
        &mut state,
        &chair,
        Command::SetCurrentItem { item: ItemId(1) },
        now,
    );
    let give = |n: u32, kind| Command::GiveFloor {
        deputy: support::deputy(n),
        kind,
    };
    // D01 (79) 300 s, D02 (01) 120 s, a point of order by D04 (01), D03 (79) speaking 45 s.
    for (n, kind, secs) in [
        (1, SpeechKind::Discussion, 300),
        (2, SpeechKind::Debate, 120),
        (4, SpeechKind::PointOfOrder, 30),
    ] {
        run(&mut state, &chair, give(n, kind), now);
        now = Millis(now.0 + secs * 1000);
        run(&mut state, &chair, Command::RevokeFloor, now);
    }
    run(&mut state, &chair, give(3, SpeechKind::Discussion), now);
    now = Millis(now.0 + 45_000);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("budget.json");
    std::fs::write(
        &file,
        json!({"state": state, "roster": state.roster, "now": now.0}).to_string(),
    )
    .expect("write");
    let out = Process::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/budget_js.mjs"))
        .arg(&file)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let js: Value = serde_json::from_slice(&out.stdout).expect("json");
    for (delegation, speaker, spoken) in [("79", 3, 345_000), ("01", 2, 120_000)] {
        let server = budget_left_ms(
            &state,
            &support::deputy(speaker),
            SpeechKind::Discussion,
            now,
        )
        .expect("a budget applies");
        assert_eq!(
            server,
            900_000 - spoken,
            "the server's arithmetic for {delegation}"
        );
        assert_eq!(
            js[delegation].as_i64(),
            Some(server),
            "delegation {delegation}: the console says {js}"
        );
    }
    assert_eq!(
        dienhong::sitting::spoken_ms(&state, &DelegationCode::new("01"), ItemId(1), now),
        120_000,
        "a point of order does not count"
    );
}
