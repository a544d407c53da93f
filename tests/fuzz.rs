//! Property-based fuzzing, bounded so that it runs in CI: seed inputs kept in
//! `tests/fuzz/<target>/`, mutated by proptest (characters flipped, inserted, deleted,
//! repeated, the input cut short) and mixed with arbitrary text, fed to
//! - the WebSocket message parser, through a real server: every input gets a typed answer
//!   or a clean close, and the server keeps serving;
//! - SDP offers, through WHEP on the real server: a typed HTTP answer, never a server error;
//! - the roster and agenda files of `create-sitting`, through to the core's `CreateSitting`;
//! - the configuration file.
//!
//! `DIENHONG_FUZZ_CASES` sets the cases per target (1,000 by default). A failing case is
//! shrunk and kept by proptest in `tests/fuzz.proptest-regressions`, which is committed: it
//! runs first from then on, as a regression test.

mod support;

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use proptest::test_runner::{Config as RunnerConfig, FileFailurePersistence, TestRunner};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::Duration;
use support::ws::{Server, Ws, start_with};
use tokio_tungstenite::tungstenite::Message;

fn cases() -> u32 {
    std::env::var("DIENHONG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn runner() -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        ..RunnerConfig::default()
    })
}

/// The seed inputs of a target.
fn corpus(target: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    let seeds: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("seed"))
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, char),
    Delete(usize, usize),
    Repeat(usize, usize),
    Truncate(usize),
}

fn wild_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            '"', '{', '}', '[', ']', ':', ',', '\\', '\n', '\r', '\t', ' ', '0', '9', '-',
            '=', 'a', 'z', 'đ', 'ệ', '\u{0}', '\u{7f}', '\u{feff}', '\u{10ffff}',
        ]),
        1 => any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), wild_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), wild_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Repeat(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut c: Vec<char> = seed.chars().collect();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *e {
            Edit::Replace(i, ch) if !c.is_empty() => {
                let i = at(i, c.len());
                c[i] = ch;
            }
            Edit::Insert(i, ch) => {
                let i = at(i, c.len() + 1);
                c.insert(i, ch);
            }
            Edit::Delete(i, n) if !c.is_empty() => {
                let i = at(i, c.len());
                let end = (i + n).min(c.len());
                c.drain(i..end);
            }
            Edit::Repeat(i, n) if !c.is_empty() => {
                let i = at(i, c.len());
                let end = (i + n).min(c.len());
                let piece: Vec<char> = c[i..end].to_vec();
                for (k, ch) in piece.into_iter().enumerate() {
                    c.insert(end + k, ch);
                }
            }
            Edit::Truncate(i) => {
                let i = at(i, c.len() + 1);
                c.truncate(i);
            }
            _ => {}
        }
    }
    c.into_iter().collect()
}

/// A seed with a few edits, or (one in eight) arbitrary text.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        7 => (prop::sample::select(seeds), prop::collection::vec(edit(), 0..6))
            .prop_map(|(seed, edits)| apply(&seed, &edits)),
        1 => ".{0,300}",
    ]
}

// ---------------------------------------------------------------------------------------
// The WebSocket message parser, through the server

async fn open(s: &Server, token: &str) -> Ws {
    let mut ws = s.connect_with(token).await;
    // The welcome.
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    ws
}

/// What became of one message: the server answered the ping that followed it, or closed the
/// connection with this code.
async fn exchange(ws: &mut Ws, text: &str) -> Result<(), Option<u16>> {
    if ws.send(Message::text(text.to_owned())).await.is_err() {
        return Err(None);
    }
    if ws
        .send(Message::text(json!({"type": "ping", "v": 2}).to_string()))
        .await
        .is_err()
    {
        return Err(None);
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).expect("the server sends JSON");
                if v["type"] == "error" {
                    assert!(
                        v["code"].as_str().is_some_and(|c| !c.is_empty()),
                        "an error without a code: {v}"
                    );
                }
                if v["type"] == "pong" {
                    return Ok(());
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => return Err(frame.map(|f| u16::from(f.code))),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return Err(None),
            Err(_) => panic!("no answer within 10 s to {text:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_answers_every_mutated_message_and_keeps_serving() {
    let s = start_with(&[
        ("DIENHONG__CONTROL__COMMANDS_PER_SEC", "100000"),
        ("DIENHONG__CONTROL__COMMAND_BURST", "100000"),
        ("DIENHONG__CONTROL__MAX_MESSAGE_BYTES", "4096"),
    ])
    .await;
    let token = s.login("DB001").await;
    let handle = tokio::runtime::Handle::current();
    let ws = RefCell::new(Some(open(&s, &token).await));
    let closes = RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let answered = Cell::new(0u32);
    let strategy = mutated(corpus("ws"));
    let result = tokio::task::block_in_place(|| {
        runner().run(&strategy, |text| {
            handle.block_on(async {
                let taken = ws.borrow_mut().take();
                let mut conn = match taken {
                    Some(c) => c,
                    None => open(&s, &token).await,
                };
                match exchange(&mut conn, &text).await {
                    Ok(()) => {
                        answered.set(answered.get() + 1);
                        *ws.borrow_mut() = Some(conn);
                    }
                    Err(code) => {
                        // A close must carry a code from the protocol's list.
                        let code = code.unwrap_or(0);
                        prop_assert!(
                            [1003, 1007, 1008, 1009].contains(&code),
                            "closed with {code} after {text:?}"
                        );
                        *closes.borrow_mut().entry(code).or_default() += 1;
                    }
                }
                Ok(())
            })
        })
    });
    result.unwrap_or_else(|e| panic!("{e}"));
    let answered = answered.get();
    println!("ws fuzz: {answered} answered, closes {:?}", closes.borrow());
    // Still serving: a fresh client subscribes and gets its snapshot.
    let mut c = s.client("DB002").await;
    assert_eq!(c.subscribe(None).await["type"], "snapshot");
    assert!(answered > 0);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// SDP offers, through WHEP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_answers_every_mutated_offer_with_a_typed_status() {
    let s = start_with(&[]).await;
    let token = s.login("DB001").await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/whep", s.addr);
    // The seed itself is a usable offer.
    let seed = corpus("sdp").remove(0);
    let first = http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/sdp")
        .body(seed)
        .send()
        .await
        .expect("whep");
    assert_eq!(first.status(), 201, "{:?}", first.text().await);
    if let Some(loc) = first
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
    {
        let _ = http
            .delete(format!("http://{}{loc}", s.addr))
            .bearer_auth(&token)
            .send()
            .await;
    }
    let handle = tokio::runtime::Handle::current();
    let statuses = RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let strategy = mutated(corpus("sdp"));
    let result = tokio::task::block_in_place(|| {
        runner().run(&strategy, |offer| {
            handle.block_on(async {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/sdp")
                    .body(offer.clone())
                    .send()
                    .await;
                let r = r.map_err(|e| {
                    TestCaseError::fail(format!("the connection failed: {e} for {offer:?}"))
                })?;
                let status = r.status().as_u16();
                *statuses.borrow_mut().entry(status).or_default() += 1;
                prop_assert!(
                    status == 201 || (400..500).contains(&status) || status == 503,
                    "status {status} for {offer:?}"
                );
                if status == 201 {
                    if let Some(loc) = r.headers().get("location").and_then(|l| l.to_str().ok()) {
                        let _ = http
                            .delete(format!("http://{}{loc}", s.addr))
                            .bearer_auth(&token)
                            .send()
                            .await;
                    }
                } else {
                    let body: Value = r.json().await.unwrap_or_default();
                    prop_assert!(
                        body["code"].as_str().is_some_and(|c| !c.is_empty()),
                        "status {status} without a code: {body}"
                    );
                }
                Ok(())
            })
        })
    });
    result.unwrap_or_else(|e| panic!("{e}"));
    println!("sdp fuzz: statuses {:?}", statuses.borrow());
    let health = http
        .get(format!("http://{}/healthz/media", s.addr))
        .send()
        .await
        .expect("media health");
    assert_eq!(health.status(), 200);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// The roster and agenda files, and the configuration

#[test]
fn roster_and_agenda_files_are_parsed_or_refused_never_crash() {
    use dienhong::sitting::{self, ActorId, Command, Millis, SittingId, SittingState};
    let config = dienhong::config::Config::load_with_env(None, Vec::new()).expect("defaults");
    let delegations = config.delegations().expect("delegations");
    let seeds = corpus("roster");
    // The seeds themselves make a sitting.
    let actors = dienhong::config::parse_roster(&seeds[1]).expect("seed roster parses");
    assert!(sitting::Roster::new(delegations.clone(), actors).is_ok());
    let strategy = (mutated(seeds), mutated(corpus("agenda")));
    let made = Cell::new(0u32);
    runner()
        .run(&strategy, |(roster, agenda)| {
            let actors = match dienhong::config::parse_roster(&roster) {
                Ok(a) => a,
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("line"), "an error without its line: {text}");
                    return Ok(());
                }
            };
            let Ok(roster) = sitting::Roster::new(delegations.clone(), actors) else {
                return Ok(());
            };
            let command = Command::CreateSitting {
                sitting: SittingId::new("fuzz"),
                title: "Phiên thử".into(),
                roster,
                rules: config.rules.clone(),
                agenda: dienhong::config::parse_agenda(&agenda),
            };
            if sitting::decide(
                &SittingState::default(),
                &ActorId::system(),
                &command,
                Millis(1),
            )
            .is_ok()
            {
                made.set(made.get() + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!("roster fuzz: {} sittings made", made.get());
}

#[test]
fn configuration_files_load_or_are_refused_never_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fuzz.toml");
    let loaded = Cell::new(0u32);
    runner()
        .run(&mutated(corpus("config")), |text| {
            std::fs::write(&path, &text).expect("write");
            if dienhong::config::Config::load_with_env(Some(&path), Vec::new()).is_ok() {
                loaded.set(loaded.get() + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The seeds themselves load.
    for seed in corpus("config") {
        std::fs::write(&path, &seed).expect("write");
        dienhong::config::Config::load_with_env(Some(&path), Vec::new())
            .unwrap_or_else(|e| panic!("seed does not load: {e}\n{seed}"));
    }
    println!("config fuzz: {} loaded", loaded.get());
}
