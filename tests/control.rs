//! The WebSocket control plane against the real server on port 0, with real WebSocket
//! clients: login, the handshake checks, a full sitting across roles, resume without gap or
//! duplicate, idempotent retries, the permission matrix, and hostile input.

use dienhong::auth::{Claims, TokenKey, new_jti};
mod support;

use dienhong::sitting::{self, ActorId, Command, Millis, Role};
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use support::ws::{Client, Server, start, start_with};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn a_sitting_runs_across_chair_deputies_and_clerk_and_everyone_sees_every_event() {
    let s = start().await;
    let mut chair = s.client("CHAIR").await;
    let mut d1 = s.client("DB001").await;
    let mut d2 = s.client("DB002").await;
    let mut clerk = s.client("CLERK1").await;

    assert_eq!(
        d1.command(json!({"command": "open_sitting"})).await["code"],
        "not_permitted"
    );
    chair.ok(json!({"command": "open_sitting"})).await;
    d1.ok(json!({"command": "check_in", "deputy": "DB001"}))
        .await;
    d2.ok(json!({"command": "check_in", "deputy": "DB002"}))
        .await;
    clerk
        .ok(json!({"command": "check_in", "deputy": "DB003"}))
        .await;
    assert_eq!(
        d1.command(json!({"command": "check_in", "deputy": "DB004"}))
            .await["code"],
        "not_permitted"
    );
    chair
        .ok(json!({"command": "set_current_item", "item": 3}))
        .await;
    d1.ok(json!({"command": "request_floor", "kind": "discussion"}))
        .await;
    chair
        .ok(json!({"command": "grant_floor", "request": 1}))
        .await;
    chair.ok(json!({"command": "revoke_floor"})).await;
    chair
        .ok(json!({"command": "open_vote", "question": "Thông qua Nghị quyết?", "method": "named", "rule": null, "window_secs": 300, "allow_change": null, "rerun_of": null}))
        .await;
    d1.ok(json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}))
        .await;
    d2.ok(json!({"command": "cast_ballot", "vote": 1, "choice": "no"}))
        .await;
    assert_eq!(
        d1.command(json!({"command": "cast_ballot", "vote": 1, "choice": "bogus"}))
            .await["code"],
        "invalid_message"
    );
    clerk
        .ok(json!({"command": "record_ballot", "vote": 1, "deputy": "DB003", "choice": "abstain", "reason": "thiết bị hỏng"}))
        .await;
    let last = chair.ok(json!({"command": "close_vote", "vote": 1})).await;

    for c in [&mut chair, &mut d1, &mut d2, &mut clerk] {
        c.until_seq(last).await;
        c.assert_in_order_without_gaps();
    }
    // The snapshot of a newcomer shows the result.
    let mut late = s.client("DB010").await;
    let snap_seq = *late.seen.last().expect("seq");
    assert_eq!(snap_seq, last);
    let snap = s
        .app
        .sittings()
        .into_iter()
        .next()
        .expect("sitting")
        .snapshot()
        .await
        .expect("snapshot");
    let vote = &snap.state.votes[&sitting::VoteId(1)];
    assert_eq!(
        (vote.tally.yes, vote.tally.no, vote.tally.abstain),
        (1, 1, 1)
    );
    late.ws.close(None).await.ok();
    s.stop().await;
}

#[tokio::test]
async fn a_dropped_client_resumes_with_exactly_the_events_it_missed() {
    let s = start().await;
    let mut chair = s.client("CHAIR").await;
    let mut clerk = s.client("CLERK2").await;
    let mut d = s.client("DB005").await;
    let first = chair.ok(json!({"command": "open_sitting"})).await;
    d.until_seq(first).await;
    let last_seen = *d.seen.last().expect("seen");
    let (token, epoch) = (d.token.clone(), d.epoch.clone());
    drop(d);
    let mut missed = Vec::new();
    for n in 20..30 {
        missed.push(
            clerk
                .ok(json!({"command": "check_in", "deputy": format!("DB0{n}")}))
                .await,
        );
    }
    let mut d = Client {
        ws: s.connect_with(&token).await,
        seen: vec![last_seen],
        token,
        epoch,
        n: 100,
        version: 1,
        frames: 0,
        batches: Vec::new(),
    };
    assert_eq!(d.next().await["type"], "welcome");
    d.subscribe(Some(last_seen)).await;
    let more = clerk
        .ok(json!({"command": "check_in", "deputy": "DB040"}))
        .await;
    d.until_seq(more).await;
    d.assert_in_order_without_gaps();
    assert_eq!(d.seen.first(), Some(&last_seen));
    assert_eq!(d.seen.last(), Some(&more));

    // A resume from another epoch (or too far back) gets a snapshot instead.
    let mut e = Client {
        ws: s.connect_with(&d.token).await,
        seen: Vec::new(),
        token: d.token.clone(),
        epoch: "other".into(),
        n: 0,
        version: 1,
        frames: 0,
        batches: Vec::new(),
    };
    assert_eq!(e.next().await["type"], "welcome");
    e.subscribe(Some(1)).await;
    let m = e.next().await;
    assert_eq!(m["type"], "snapshot", "{m}");
    assert_eq!(m["seq"].as_u64(), Some(more));
    s.stop().await;
}

#[tokio::test]
async fn a_version_2_client_gets_each_commit_in_one_message_and_a_version_1_client_one_per_event() {
    let s = start().await;
    let mut chair = s.client("CHAIR").await;
    let mut clerk = s.client("CLERK2").await;
    let mut new = s.client_speaking("DB005", 2).await;
    let mut old = s.client_speaking("DB006", 1).await;
    chair.ok(json!({"command": "open_sitting"})).await;
    // 40 check-ins sent at once: the writer commits them in a few groups.
    for n in 10..50 {
        clerk
            .send(
                json!({"type": "command", "v": 2, "command_id": format!("k{n}"),
                "command": {"command": "check_in", "deputy": format!("DB0{n}")}}),
            )
            .await;
    }
    let mut last = 0;
    let mut acks = 0;
    while acks < 40 {
        let m = clerk.next().await;
        if m["type"] == "ack" {
            acks += 1;
            last = last.max(m["seq"].as_u64().expect("seq"));
        }
        assert_ne!(m["type"], "error", "{m}");
    }
    let (new_before, old_before) = (new.frames, old.frames);
    new.until_seq(last).await;
    old.until_seq(last).await;
    new.assert_in_order_without_gaps();
    old.assert_in_order_without_gaps();
    assert_eq!(new.seen, old.seen, "the same events in the same order");
    let (new_frames, old_frames) = (new.frames - new_before, old.frames - old_before);
    assert!(old_frames >= 40, "one message per event: {old_frames}");
    assert!(
        new_frames < old_frames / 2,
        "a message per commit: {new_frames} for {old_frames} events"
    );

    // A version-2 client that was away gets what it missed from the log, still batched.
    let last_seen = *new.seen.last().expect("seen");
    let (token, epoch) = (new.token.clone(), new.epoch.clone());
    drop(new);
    // (The clerk's rate limit refills first.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in 50..65 {
        clerk
            .ok(json!({"command": "check_in", "deputy": format!("DB0{n}")}))
            .await;
    }
    let mut back = Client {
        ws: s.connect_with(&token).await,
        seen: vec![last_seen],
        token,
        epoch,
        n: 100,
        version: 2,
        frames: 0,
        batches: Vec::new(),
    };
    assert_eq!(back.next().await["type"], "welcome");
    back.subscribe(Some(last_seen)).await;
    let more = clerk
        .ok(json!({"command": "check_in", "deputy": "DB090"}))
        .await;
    back.until_seq(more).await;
    back.assert_in_order_without_gaps();
    assert!(back.seen.len() >= 17, "{:?}", back.seen);
    assert!(
        back.frames <= 3,
        "the log in one message, then the new commit: {}",
        back.frames
    );

    // A version the server does not speak is refused with a typed code.
    back.send(json!({"type": "ping", "v": 3})).await;
    let m = back.next().await;
    assert_eq!(m["code"], "unsupported_version", "{m}");
    s.stop().await;
}

/// The chair opens the sitting, a clerk checks DB007 in, and the chair opens a named vote
/// (vote 1) on item 3; returns the chair's and the clerk's clients.
async fn named_vote_open_for_db007(s: &Server) -> (Client, Client) {
    let mut chair = s.client("CHAIR").await;
    chair.ok(json!({"command": "open_sitting"})).await;
    let mut clerk = s.client("CLERK1").await;
    clerk
        .ok(json!({"command": "check_in", "deputy": "DB007"}))
        .await;
    chair
        .ok(json!({"command": "set_current_item", "item": 3}))
        .await;
    chair
        .ok(json!({"command": "open_vote", "question": "Q", "method": "named", "rule": null, "window_secs": 300, "allow_change": true, "rerun_of": null}))
        .await;
    (chair, clerk)
}

#[tokio::test]
async fn a_retried_ballot_returns_the_original_outcome_and_counts_once() {
    let s = start().await;
    let (_chair, _clerk) = named_vote_open_for_db007(&s).await;
    let mut d = s.client("DB007").await;
    let first = d
        .command_with_id(
            "ballot-1",
            json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}),
        )
        .await;
    assert_eq!(first["type"], "ack");
    // The connection drops; the client retries the same command id on a new connection,
    // even with a different body: the original outcome comes back and nothing is applied.
    drop(d);
    let mut d = s.client("DB007").await;
    let retry = d
        .command_with_id(
            "ballot-1",
            json!({"command": "cast_ballot", "vote": 1, "choice": "no"}),
        )
        .await;
    assert_eq!(retry["type"], "ack");
    assert_eq!(retry["seq"], first["seq"]);
    let snap = s
        .app
        .sittings()
        .into_iter()
        .next()
        .expect("sitting")
        .snapshot()
        .await
        .expect("snapshot");
    let vote = &snap.state.votes[&sitting::VoteId(1)];
    assert_eq!((vote.tally.yes, vote.tally.no), (1, 0));
    assert_eq!(vote.ballots[&ActorId::new("DB007")].changes, 0);
    // A rejection is remembered too.
    let bad = d
        .command_with_id("x-1", json!({"command": "close_vote", "vote": 1}))
        .await;
    assert_eq!(bad["code"], "not_permitted");
    assert_eq!(
        d.command_with_id("x-1", json!({"command": "close_vote", "vote": 1}))
            .await["code"],
        "not_permitted"
    );
    s.stop().await;
}

#[tokio::test]
async fn every_role_and_command_pair_follows_the_permission_matrix() {
    let s = start().await;
    let sitting_id = dienhong::sitting::SittingId::new(s.sitting());
    let roster = s
        .app
        .sitting(&sitting_id)
        .expect("sitting")
        .roster()
        .clone();
    let commands: Vec<Command> = vec![
        Command::OpenSitting,
        Command::SuspendSitting { reason: "r".into() },
        Command::ResumeSitting,
        Command::CloseSitting,
        Command::CheckIn {
            deputy: ActorId::new("DB050"),
            location: None,
        },
        Command::CheckOut {
            deputy: ActorId::new("DB050"),
        },
        Command::AddAgendaItem {
            title: "t".into(),
            position: None,
        },
        Command::ReorderAgenda { order: vec![] },
        Command::SetCurrentItem {
            item: sitting::ItemId(1),
        },
        Command::RequestFloor {
            kind: sitting::SpeechKind::Question,
        },
        Command::WithdrawRequest {
            request: sitting::RequestId(99),
        },
        Command::ReorderQueue { order: vec![] },
        Command::GrantFloor {
            request: sitting::RequestId(99),
        },
        Command::GiveFloor {
            deputy: ActorId::new("DB050"),
            kind: sitting::SpeechKind::Question,
        },
        Command::ExtendFloor { secs: 10 },
        Command::RevokeFloor,
        Command::YieldFloor,
        Command::OpenVote {
            question: "q".into(),
            method: sitting::Method::Named,
            rule: None,
            window_secs: None,
            allow_change: None,
            rerun_of: None,
            step_up: None,
        },
        Command::CastBallot {
            vote: sitting::VoteId(1),
            choice: sitting::Choice::Yes,
        },
        Command::RecordBallot {
            vote: sitting::VoteId(1),
            deputy: ActorId::new("DB050"),
            choice: sitting::Choice::Yes,
            reason: "r".into(),
        },
        Command::CloseVote {
            vote: sitting::VoteId(1),
        },
        Command::VoidVote {
            vote: sitting::VoteId(1),
            reason: "r".into(),
        },
        Command::PublishDocument {
            item: sitting::ItemId(1),
            title: "t".into(),
            media_type: "a/b".into(),
            size: 1,
            sha256: "0".repeat(64),
            file_name: None,
            access: sitting::Access::Public,
        },
        Command::SupersedeDocument {
            document: sitting::DocumentId(9),
            title: "t".into(),
            media_type: "a/b".into(),
            size: 1,
            sha256: "0".repeat(64),
            file_name: None,
        },
        Command::AcknowledgeDocument {
            document: sitting::DocumentId(9),
            version: 1,
            ack: sitting::Acknowledgement::Read,
        },
        Command::Tick,
    ];
    // One account per role (CHAIR also holds Deputy; VICE1 too).
    let accounts = [
        ("CHAIR", Role::Chair),
        ("VICE1", Role::ViceChair),
        ("CLERK1", Role::Clerk),
        ("DB050", Role::Deputy),
        ("SITE01", Role::SiteOperator),
        ("OBSERVER", Role::Observer),
    ];
    let mut pairs = 0;
    for (code, role) in accounts {
        let actor = roster
            .actor(&ActorId::new(code))
            .expect("in roster")
            .clone();
        assert!(actor.has(role));
        let mut c = s.client(code).await;
        for cmd in &commands {
            let r = c.command(serde_json::to_value(cmd).expect("json")).await;
            let refused_for_role = r["code"] == "not_permitted";
            if !sitting::role_permits(&actor, cmd) {
                assert!(refused_for_role, "{code} {cmd:?} must be refused: {r}");
            } else if refused_for_role {
                // Permitted by role, refused for who the actor is: only self-only rules.
                let self_only = matches!(
                    cmd,
                    Command::CheckIn { .. }
                        | Command::CheckOut { .. }
                        | Command::WithdrawRequest { .. }
                        | Command::YieldFloor
                        | Command::RecordBallot { .. }
                );
                assert!(
                    self_only,
                    "{code} {cmd:?} refused though the role permits it: {r}"
                );
            }
            pairs += 1;
        }
    }
    assert_eq!(pairs, accounts.len() * commands.len());
    s.stop().await;
}

async fn handshake_status(s: &Server, token: Option<&str>, origin: Option<&str>) -> u16 {
    let mut req = match token {
        Some(t) => support::ws::bearer_request(s.addr, t),
        None => format!("ws://{}/ws", s.addr)
            .into_client_request()
            .expect("request"),
    };
    if let Some(o) = origin {
        req.headers_mut()
            .insert("Origin", o.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected handshake error {e}"),
    }
}

#[tokio::test]
async fn the_handshake_refuses_foreign_origins_missing_expired_and_revoked_tokens() {
    let s = start().await;
    let token = s.login("DB001").await;
    assert_eq!(handshake_status(&s, Some(&token), None).await, 101);
    assert_eq!(
        handshake_status(&s, Some(&token), Some("http://127.0.0.1:8080")).await,
        101
    );
    assert_eq!(
        handshake_status(&s, Some(&token), Some("https://evil.example")).await,
        403
    );
    assert_eq!(handshake_status(&s, None, None).await, 401);
    assert_eq!(handshake_status(&s, Some("garbage.token"), None).await, 401);
    // A correctly signed token whose time is up.
    let key = s
        .app
        .store()
        .setting("token_key")
        .await
        .expect("store")
        .expect("key");
    let key = TokenKey::from_bytes(key.try_into().expect("32 bytes"));
    let expired = key.sign(&Claims {
        sub: ActorId::new("DB001"),
        roles: vec![Role::Deputy],
        iat: Millis(0),
        exp: Millis(1),
        jti: new_jti(),
    });
    assert_eq!(handshake_status(&s, Some(&expired), None).await, 401);
    // Wrong password.
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/login", s.addr))
        .json(&json!({"code": "DB001", "password": "nope"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 401);

    // Logout revokes the token and closes that actor's open sockets within a second.
    let mut open = s.client("DB001").await;
    let out = reqwest::Client::new()
        .post(format!("http://{}/api/logout", s.addr))
        .bearer_auth(&open.token)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);
    let closed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let m = open.next().await;
            if m["type"] == "closed" {
                return m;
            }
        }
    })
    .await
    .expect("socket closed within a second");
    assert_eq!(closed["code"], 1008);
    assert_eq!(handshake_status(&s, Some(&open.token), None).await, 401);
    s.stop().await;
}

/// The status and `code` of a handshake made with `query` (`?ticket=…` or `?token=…`).
async fn handshake_with_query(s: &Server, query: &str) -> (u16, String) {
    let req = format!("ws://{}/ws?{query}", s.addr)
        .into_client_request()
        .expect("request");
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => (101, String::new()),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body: serde_json::Value = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            (
                resp.status().as_u16(),
                body["code"].as_str().unwrap_or_default().to_owned(),
            )
        }
        Err(e) => panic!("unexpected handshake error {e}"),
    }
}

async fn ticket_for(s: &Server, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{}/api/ws-ticket", s.addr))
        .bearer_auth(token)
        .send()
        .await
        .expect("ticket request")
}

#[tokio::test]
async fn a_browser_opens_the_websocket_with_a_single_use_ticket_never_a_token_in_the_url() {
    let s = start_with(&[("DIENHONG__CONTROL__WS_TICKET_SECS", "1")]).await;
    let token = s.login("DB001").await;
    // A token in the URL is refused outright, even a valid one.
    assert_eq!(
        handshake_with_query(&s, &format!("token={token}")).await,
        (400, "token_in_url".to_owned())
    );
    // A ticket needs a valid token.
    assert_eq!(ticket_for(&s, "garbage.token").await.status(), 401);
    let r: serde_json::Value = ticket_for(&s, &token).await.json().await.expect("json");
    assert_eq!(r["expires_in_ms"], 1000);
    let ticket = r["ticket"].as_str().expect("ticket").to_owned();
    // It opens one connection, as the token's actor.
    let req = format!("ws://{}/ws?ticket={ticket}", s.addr)
        .into_client_request()
        .expect("request");
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("opens");
    let welcome = loop {
        if let Some(Ok(Message::Text(t))) = futures_util::StreamExt::next(&mut ws).await {
            break serde_json::from_str::<serde_json::Value>(&t).expect("json");
        }
    };
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["actor"], "DB001");
    // Used once: refused the second time; an unknown one too.
    assert_eq!(
        handshake_with_query(&s, &format!("ticket={ticket}")).await,
        (401, "invalid_ticket".to_owned())
    );
    assert_eq!(
        handshake_with_query(&s, "ticket=made-up").await,
        (401, "invalid_ticket".to_owned())
    );
    // Past its lifetime.
    let late: serde_json::Value = ticket_for(&s, &token).await.json().await.expect("json");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        handshake_with_query(
            &s,
            &format!("ticket={}", late["ticket"].as_str().expect("t"))
        )
        .await,
        (401, "invalid_ticket".to_owned())
    );
    // Issued, then the token is logged out before the ticket is used: refused.
    let pending: serde_json::Value = ticket_for(&s, &token).await.json().await.expect("json");
    let out = reqwest::Client::new()
        .post(format!("http://{}/api/logout", s.addr))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);
    assert_eq!(
        handshake_with_query(
            &s,
            &format!("ticket={}", pending["ticket"].as_str().expect("t"))
        )
        .await,
        (401, "token_revoked".to_owned())
    );
    s.stop().await;
}

#[tokio::test]
async fn closing_a_vote_signs_a_checkpoint_and_verify_checks_the_log_against_it() {
    let s = start().await;
    let base = format!("http://{}/api/sittings/demo-2026-11/checkpoints", s.addr);
    let (mut chair, clerk) = named_vote_open_for_db007(&s).await;
    let mut d = s.client("DB007").await;
    d.ok(json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}))
        .await;
    let closed = chair.ok(json!({"command": "close_vote", "vote": 1})).await;
    // Signed after the answers and the fan-out: it shows up shortly after the ack.
    let mut list = serde_json::Value::Null;
    for _ in 0..100 {
        list = reqwest::get(&base)
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cps: Vec<dienhong::checkpoint::Checkpoint> =
        serde_json::from_value(list.clone()).expect("checkpoints");
    assert_eq!(cps.len(), 1, "{list}");
    assert_eq!(cps[0].seq, closed);
    assert_eq!(list[0]["reason"], json!({"kind": "vote_closed", "vote": 1}));
    assert!(cps[0].signature_holds());
    assert_eq!(cps[0].public_key, s.app.signer().public_key());

    // On demand: not for a deputy; for a clerk.
    let ask = |token: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(&base)
                .bearer_auth(token)
                .send()
                .await
                .expect("post")
        }
    };
    let refused = ask(d.token.clone()).await;
    assert_eq!(refused.status(), 403);
    let made = ask(clerk.token.clone()).await;
    assert_eq!(made.status(), 201);
    let made: serde_json::Value = made.json().await.expect("json");
    assert_eq!(made["reason"]["kind"], "on_demand");
    let all: serde_json::Value = reqwest::get(&base)
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(all.as_array().map(Vec::len), Some(2));

    // The operator's check, from a copy kept elsewhere, with the key printed at start.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("checkpoints.json");
    std::fs::write(&file, all.to_string()).expect("write");
    let url = s.database_url();
    let key = s.app.signer().public_key().to_owned();
    let verify = |key: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dienhong"))
            .args(["verify", "--database", &url, "--checkpoint"])
            .arg(&file)
            .args(["--public-key", key])
            .output()
            .expect("verify runs")
    };
    let out = verify(&key);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches(": ok").count(), 2, "{text}");
    let (other, _) = dienhong::checkpoint::Signer::generate().expect("key");
    let out = verify(other.public_key());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("not by the expected key"), "{text}");
    s.stop().await;
}

/// Every access level of a document against an observer, a deputy, a clerk and the public
/// status: in live events, in the snapshot, in the events read back from the log on resume,
/// and in the public summary.
#[tokio::test]
async fn each_role_sees_only_the_documents_it_may_read() {
    let s = start().await;
    // Three who only follow, and a clerk and a deputy who act.
    let mut observer = s.client_speaking("OBSERVER", 2).await;
    let mut deputy_follows = s.client_speaking("DB002", 2).await;
    let mut clerk_follows = s.client_speaking("CLERK2", 2).await;
    let mut deputy = s.client_speaking("DB001", 2).await;
    let mut clerk = s.client_speaking("CLERK1", 2).await;
    let mut uploads = std::collections::HashMap::new();
    for c in ["a", "b", "c"] {
        uploads.insert(c, s.upload_pdf("CLERK1", c).await);
    }
    let sha = |c: &str| uploads[c].0.clone();
    let publish = |title: &str, hash: String, access: serde_json::Value| json!({"command": "publish_document", "item": 1, "title": title, "media_type": "application/pdf", "size": uploads.values().find(|(h, _)| *h == hash).map_or(0, |u| u.1), "sha256": hash, "access": access});
    clerk
        .ok(publish("Công khai", sha("a"), json!({"level": "public"})))
        .await;
    clerk
        .ok(publish(
            "Cho đại biểu",
            sha("b"),
            json!({"level": "deputies"}),
        ))
        .await;
    let last = clerk
        .ok(publish(
            "Mật",
            sha("c"),
            json!({"level": "restricted", "roles": ["clerk"]}),
        ))
        .await;
    // The deputy acknowledges the one for deputies: only those who may read it hear of it.
    let acked = deputy
        .ok(json!({"command": "acknowledge_document", "document": 2, "version": 1, "ack": "read"}))
        .await;
    assert_eq!(acked, last + 1);

    /// The text of every `events` message until `seq`, and the withheld entries in them.
    async fn live(c: &mut Client, seq: u64) -> (String, usize) {
        let mut text = String::new();
        let mut withheld = 0;
        while c.seen.last().copied().unwrap_or(0) < seq {
            let m = c.next().await;
            if m["type"] == "events" {
                withheld += m["events"]
                    .as_array()
                    .map(|es| {
                        es.iter()
                            .filter(|e| e["event"]["type"] == "withheld")
                            .count()
                    })
                    .unwrap_or(0);
                text.push_str(&m.to_string());
            }
        }
        (text, withheld)
    }
    let (seen, withheld) = live(&mut observer, acked).await;
    assert_eq!(withheld, 3, "{seen}");
    assert!(seen.contains("Công khai"));
    for secret in ["Cho đại biểu", "Mật", &sha("b"), &sha("c")] {
        assert!(!seen.contains(secret), "the observer saw {secret}: {seen}");
    }
    let (seen, withheld) = live(&mut deputy_follows, acked).await;
    assert_eq!(withheld, 1, "{seen}");
    assert!(seen.contains("Cho đại biểu") && !seen.contains("Mật") && !seen.contains(&sha("c")));
    let (seen, withheld) = live(&mut clerk_follows, acked).await;
    assert_eq!(withheld, 0, "{seen}");
    assert!(seen.contains("Mật"));
    for c in [&observer, &deputy_follows, &clerk_follows] {
        c.assert_in_order_without_gaps();
    }

    // Snapshots: the documents each may read, and no count of the others.
    for (code, titles) in [
        ("OBSERVER", vec!["Công khai"]),
        ("DB003", vec!["Công khai", "Cho đại biểu"]),
        ("CLERK2", vec!["Công khai", "Cho đại biểu", "Mật"]),
    ] {
        let mut c = s.client_speaking(code, 2).await;
        let snap = c.subscribe(None).await;
        let docs = snap["state"]["documents"].as_object().expect("documents");
        let mut got: Vec<&str> = docs
            .values()
            .filter_map(|d| d["versions"][0]["title"].as_str())
            .collect();
        got.sort_unstable();
        let mut want = titles.clone();
        want.sort_unstable();
        assert_eq!(got, want, "{code}");
        assert_eq!(
            snap["state"]["last_ids"]["document"],
            json!(
                docs.keys()
                    .filter_map(|k| k.parse::<u32>().ok())
                    .max()
                    .unwrap_or(0)
            ),
            "{code}"
        );
    }

    // Resumed from the log: the same holds back.
    let token = s.login("OBSERVER").await;
    let mut late = Client {
        ws: s.connect_with(&token).await,
        seen: Vec::new(),
        token,
        epoch: observer.epoch.clone(),
        n: 0,
        version: 2,
        frames: 0,
        batches: Vec::new(),
    };
    assert_eq!(late.next().await["type"], "welcome");
    late.subscribe(Some(last - 3)).await;
    let (seen, withheld) = live(&mut late, acked).await;
    assert_eq!(withheld, 3, "{seen}");
    assert!(
        !seen.contains("Mật") && !seen.contains("Cho đại biểu"),
        "{seen}"
    );

    // The public summary counts the public document only.
    let summary: serde_json::Value =
        reqwest::get(format!("http://{}/api/sittings/demo-2026-11", s.addr))
            .await
            .expect("summary")
            .json()
            .await
            .expect("json");
    assert_eq!(summary["documents"], 1, "{summary}");
    s.stop().await;
}

#[tokio::test]
async fn hostile_input_gets_typed_errors_or_closes_while_another_client_keeps_working() {
    let s = start().await;
    let mut good = s.client("CHAIR").await;
    let mut bad = s.client("DB001").await;

    bad.ws.send(Message::text("{not json")).await.expect("send");
    assert_eq!(bad.next().await["code"], "malformed_json");
    bad.send(json!({"type": "teleport", "v": 1})).await;
    assert_eq!(bad.next().await["code"], "invalid_message");
    bad.send(json!({"type": "command", "v": 1, "command": {"command": "open_sitting"}}))
        .await;
    assert_eq!(
        bad.next().await["code"],
        "invalid_message",
        "missing command_id"
    );
    bad.send(json!({"type": "ping", "v": 7})).await;
    assert_eq!(bad.next().await["code"], "unsupported_version");
    bad.send(json!({"type": "command", "v": 1, "command_id": "", "command": {"command": "tick"}}))
        .await;
    assert_eq!(bad.next().await["code"], "invalid_command_id");
    bad.send(json!({"type": "command", "v": 1, "command_id": "where",
        "command": {"command": "check_in", "deputy": "DB001", "location": "moon"}}))
        .await;
    assert_eq!(
        bad.next().await["code"],
        "invalid_message",
        "a location that is not hall, site or remote"
    );
    bad.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(bad.next().await["type"], "pong");

    // Oversize: closed with 1009.
    let huge = format!(
        "{{\"type\":\"ping\",\"v\":1,\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    bad.ws.send(Message::text(huge)).await.expect("send");
    let m = bad.next().await;
    assert_eq!(m["code"], 1009, "{m}");

    // Invalid UTF-8 in a text frame: closed with 1007.
    let mut utf = s.client("DB002").await;
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![0x7b, 0xff, 0xfe, 0x7d],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    utf.ws.send(Message::Frame(frame)).await.expect("send");
    let m = utf.next().await;
    assert!(m["code"] == 1007 || m["type"] == "error", "{m}");

    // Flood: rate-limit errors, then a 1008 close.
    let mut flood = s.client("DB003").await;
    for i in 0..200 {
        flood.send(json!({"type": "command", "v": 1, "command_id": format!("f{i}"), "command": {"command": "tick"}})).await;
    }
    let mut limited = 0;
    let close = loop {
        let m = flood.next().await;
        if m["code"] == "rate_limited" {
            limited += 1;
        }
        if m["type"] == "closed" {
            break m;
        }
    };
    assert!(limited > 0);
    assert_eq!(close["code"], 1008);

    // Meanwhile the chair's connection works as before.
    good.ok(json!({"command": "open_sitting"})).await;
    good.send(json!({"type": "ping", "v": 1})).await;
    loop {
        if good.next().await["type"] == "pong" {
            break;
        }
    }
    assert!(s.app.is_ready());
    s.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let s = start_with(&[
        ("DIENHONG__CONTROL__PING_SECS", "1"),
        ("DIENHONG__CONTROL__IDLE_TIMEOUT_SECS", "2"),
    ])
    .await;
    let mut c = s.client("DB001").await;
    // Not reading means not answering the server's pings: nothing arrives from us.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let closed = loop {
        let m = c.next().await;
        if m["type"] == "closed" {
            break m;
        }
    };
    assert_eq!(closed["code"], 1001);
    // A connection that keeps talking stays open past the timeout.
    let mut alive = s.client("DB002").await;
    for _ in 0..4 {
        alive.send(json!({"type": "ping", "v": 1})).await;
        loop {
            if alive.next().await["type"] == "pong" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_told_to_resync_and_others_are_not_held_back() {
    // 3,000 events behind is beyond this server's resume gap.
    let Stopped {
        saw_resync,
        snapshot_seq,
        after,
        last,
        ..
    } = a_client_stops_reading("500", "256", 1).await;
    assert!(saw_resync, "the slow client was told to resync");
    let from = snapshot_seq.expect("a snapshot followed the resync");
    let expected: Vec<u64> = (from + 1..=last).collect();
    assert_eq!(after, expected);
}

#[tokio::test]
async fn a_client_that_stops_reading_a_while_gets_every_event_from_the_log_in_order() {
    // 3,000 events behind is within the default resume gap (20,000), and beyond what the
    // fan-out queues in memory (256 messages): read back from the log, nothing lost.
    let Stopped {
        saw_resync,
        snapshot_seq,
        after,
        last,
        ..
    } = a_client_stops_reading("20000", "256", 1).await;
    assert!(
        !saw_resync,
        "a reader within the resume gap is not resynced"
    );
    let from = snapshot_seq.expect("the subscription's snapshot");
    assert!(from < last, "the events came after the snapshot");
    let expected: Vec<u64> = (from + 1..=last).collect();
    assert_eq!(after, expected);
}

#[tokio::test]
async fn a_client_behind_by_less_than_the_queue_gets_the_commits_as_they_were_made() {
    // The fan-out queues up to 5,000 messages for a full socket: the 3,000 events (in
    // fewer commits) wait in memory, and the slow client gets the very messages a client
    // reading all along got, one per commit. Served from the log, they would come in pages
    // of up to 250 events, cut elsewhere.
    let stopped = a_client_stops_reading("20000", "5000", 2).await;
    assert!(!stopped.saw_resync);
    let from = stopped.snapshot_seq.expect("the subscription's snapshot");
    let expected: Vec<u64> = (from + 1..=stopped.last).collect();
    assert_eq!(stopped.after, expected);
    let first = stopped
        .clerk_batches
        .first()
        .expect("the clerk got batches")
        .0;
    let slow: Vec<(u64, u64)> = stopped
        .slow_batches
        .iter()
        .copied()
        .filter(|(f, _)| *f >= first)
        .collect();
    assert_eq!(slow, stopped.clerk_batches);
}

/// What a client that stopped reading got, and what a client reading all along got.
struct Stopped {
    /// Whether the slow one was told to resync.
    saw_resync: bool,
    /// The sequence number of the last snapshot it got.
    snapshot_seq: Option<u64>,
    /// The events it got after that snapshot.
    after: Vec<u64>,
    /// The last event committed.
    last: u64,
    /// The first and last event of each `events` message the slow one got (protocol 2).
    slow_batches: Vec<(u64, u64)>,
    /// The same for the client reading all along.
    clerk_batches: Vec<(u64, u64)>,
}

/// A client with a tiny receive buffer subscribes and stops reading while 3,000 events
/// (about 6 MB) are committed, then reads everything; both clients speak `version`.
/// Checks that a client reading all along was never held back nor resynced.
async fn a_client_stops_reading(max_resume_gap: &str, fanout_queue: &str, version: u32) -> Stopped {
    let s = start_with(&[
        ("DIENHONG__CONTROL__FANOUT_BUFFER", "16"),
        ("DIENHONG__CONTROL__FANOUT_QUEUE", fanout_queue),
        ("DIENHONG__CONTROL__MAX_RESUME_GAP", max_resume_gap),
        ("DIENHONG__CONTROL__COMMANDS_PER_SEC", "10000"),
        ("DIENHONG__CONTROL__COMMAND_BURST", "10000"),
    ])
    .await;
    let token = s.login("DB009").await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("rcvbuf");
    let stream = socket.connect(s.addr).await.expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(
        support::ws::bearer_request(s.addr, &token),
        MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("handshake");
    let mut slow = Client {
        ws,
        seen: Vec::new(),
        token,
        epoch: String::new(),
        n: 0,
        version,
        frames: 0,
        batches: Vec::new(),
    };
    assert_eq!(slow.next().await["type"], "welcome");
    let first_snapshot = slow.subscribe(None).await["seq"].as_u64();

    let mut clerk = s.client_speaking("CLERK1", version).await;
    // About 6 MB of events in 3,000 commits: more than the kernel buffers on the way to the
    // slow client can hold, so its socket fills and the fan-out hands it back to its session.
    let title = "𝕋".repeat(490);
    let (sha, size) = s.upload_pdf("CLERK1", "slow").await;
    let mut last = 0;
    for wave in 0..60 {
        for i in 0..50 {
            clerk
                .send(json!({"type": "command", "v": 1, "command_id": format!("w{wave}-{i}"), "command": {"command": "publish_document", "item": 1, "title": format!("{title}{i}"), "media_type": "application/pdf", "size": size, "sha256": sha, "access": {"level": "public"}}}))
                .await;
        }
        let mut replies = 0;
        while replies < 50 {
            let m = clerk.next().await;
            if m["type"] == "ack" {
                replies += 1;
                last = last.max(m["seq"].as_u64().expect("seq"));
            }
            assert_ne!(m["type"], "error", "{m}");
        }
    }
    // The clerk, reading all along, was never held back nor resynced.
    clerk.until_seq(last).await;
    clerk.assert_in_order_without_gaps();

    // The slow one reads now, to the last event.
    let mut saw_resync = false;
    let mut after_snapshot: Vec<u64> = Vec::new();
    let mut snapshot_seq = first_snapshot;
    loop {
        let m = slow.next().await;
        match m["type"].as_str() {
            Some("resync") => saw_resync = true,
            Some("snapshot") => {
                snapshot_seq = m["seq"].as_u64();
                after_snapshot.clear();
                if snapshot_seq >= Some(last) {
                    break;
                }
            }
            Some("event") => {
                let seq = m["seq"].as_u64().expect("seq");
                after_snapshot.push(seq);
                if seq == last {
                    break;
                }
            }
            Some("events") => {
                let events = m["events"].as_array().expect("events");
                after_snapshot.extend(events.iter().filter_map(|e| e["seq"].as_u64()));
                if after_snapshot.last() == Some(&last) {
                    break;
                }
            }
            _ => {}
        }
    }
    s.stop().await;
    Stopped {
        saw_resync,
        snapshot_seq,
        after: after_snapshot,
        last,
        slow_batches: slow.batches,
        clerk_batches: clerk.batches,
    }
}

#[tokio::test]
async fn an_open_secret_vote_shows_who_took_part_but_no_counts_until_it_closes() {
    let s = start().await;
    let mut chair = s.client("CHAIR").await;
    let mut clerk = s.client("CLERK1").await;
    chair.ok(json!({"command": "open_sitting"})).await;
    for d in ["DB011", "DB012", "DB013"] {
        clerk.ok(json!({"command": "check_in", "deputy": d})).await;
    }
    chair
        .ok(json!({"command": "set_current_item", "item": 3}))
        .await;
    chair
        .ok(json!({"command": "open_vote", "question": "Bầu", "method": "secret", "rule": null, "window_secs": 300, "allow_change": null, "rerun_of": null}))
        .await;
    let mut voters = Vec::new();
    for (d, choice) in [("DB011", "yes"), ("DB012", "no")] {
        let mut c = s.client(d).await;
        c.ok(json!({"command": "cast_ballot", "vote": 1, "choice": choice}))
            .await;
        voters.push(c);
    }
    let mut watcher = s.client("OBSERVER").await;
    let snap = watcher.subscribe(None).await;
    let vote = &snap["state"]["votes"]["1"];
    assert_eq!(vote["participants"], json!(["DB011", "DB012"]));
    assert!(vote["tally"].is_null(), "live secret counts leaked: {vote}");
    assert!(!snap.to_string().contains("\"choice\""), "{snap}");
    chair.ok(json!({"command": "close_vote", "vote": 1})).await;
    let snap = watcher.subscribe(None).await;
    assert_eq!(
        snap["state"]["votes"]["1"]["tally"],
        json!({"yes": 1, "no": 1, "abstain": 0})
    );
    s.stop().await;
}

#[tokio::test]
async fn api_me_names_the_bearer_and_refuses_missing_malformed_and_revoked_tokens() {
    let s = start().await;
    let http = reqwest::Client::new();
    let me = |token: Option<String>| {
        let mut r = http.get(format!("http://{}/api/me", s.addr));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.send()
    };
    let r = me(None).await.expect("me");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["code"],
        "missing_token"
    );
    let r = me(Some("not-a-token".into())).await.expect("me");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["code"],
        "invalid_token"
    );
    let token = s.login("DB001").await;
    let r = me(Some(token.clone())).await.expect("me");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["actor"], "DB001");
    assert_eq!(body["roles"], json!(["deputy"]));
    assert!(body.get("token").is_none(), "{body}");
    let out = http
        .post(format!("http://{}/api/logout", s.addr))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);
    let r = me(Some(token)).await.expect("me");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["code"],
        "token_revoked"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_vote_below_the_quorum_is_refused_with_its_code_where_the_rules_need_one() {
    let s = start_with(&[
        ("DIENHONG__DEMO__VOTE_WITHOUT_QUORUM", "false"),
        // The clerk checks 334 deputies in, faster than a person would.
        ("DIENHONG__CONTROL__COMMANDS_PER_SEC", "10000"),
        ("DIENHONG__CONTROL__COMMAND_BURST", "10000"),
    ])
    .await;
    let mut chair = s.client("CHAIR").await;
    chair.ok(json!({"command": "open_sitting"})).await;
    chair
        .ok(json!({"command": "set_current_item", "item": 2}))
        .await;
    let open = json!({"command": "open_vote", "question": "Q", "method": "named", "rule": null, "window_secs": 300, "allow_change": null, "rerun_of": null});
    let refused = chair.command(open.clone()).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "no_quorum", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("0 of 500")),
        "{refused}"
    );
    // 334 of 500 (two thirds) checked in by the clerk: the vote opens.
    let mut clerk = s.client("CLERK1").await;
    for n in 1..=334 {
        clerk
            .ok(json!({"command": "check_in", "deputy": format!("DB{n:03}")}))
            .await;
    }
    let seq = chair.ok(open).await;
    assert!(seq > 0);
    s.stop().await;
}
