//! Nothing acknowledged is lost: `kill -9` of the real server in the middle of a vote, a
//! restart on the same database, and every acknowledged ballot is there exactly once, with
//! the hash chain intact. Once at one moment of a 120-ballot vote with a retry after the
//! restart; then at 20 moments of 500-ballot votes, on SQLite and on PostgreSQL.

mod support;

use dienhong::sitting::{ActorId, Event, SittingId, VoteId};
use dienhong::store::{Store, Verification};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn spawn_server(db: &str) -> (std::process::Child, String) {
    support::spawn_binary(&["demo", "--listen", "127.0.0.1:0", "--database", db])
}

async fn login(addr: &str, code: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("http://{addr}/api/login"))
        .json(&json!({"code": code, "password": "demo"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    r["token"].as_str().expect("token").to_owned()
}

/// Connects, subscribes, sends one command and returns the reply (None if the connection
/// died first).
async fn command(addr: &str, token: &str, id: &str, cmd: Value) -> Option<Value> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/ws").into_client_request().ok()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().ok()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.ok()?;
    ws.send(Message::text(
        json!({"type": "subscribe", "v": 1, "sitting": "demo-2026-11"}).to_string(),
    ))
    .await
    .ok()?;
    ws.send(Message::text(
        json!({"type": "command", "v": 1, "command_id": id, "command": cmd}).to_string(),
    ))
    .await
    .ok()?;
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).ok()?;
            if (v["type"] == "ack" || v["type"] == "error") && v["command_id"] == id {
                return Some(v);
            }
        }
    }
    None
}

#[tokio::test]
async fn every_acknowledged_ballot_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("k.db").display());
    let (mut server, addr) = spawn_server(&db);
    let chair = login(&addr, "CHAIR").await;
    let clerk = login(&addr, "CLERK1").await;
    let ok = |v: Option<Value>| {
        assert_eq!(
            v.as_ref().map(|v| v["type"].clone()),
            Some(json!("ack")),
            "{v:?}"
        )
    };
    ok(command(&addr, &chair, "o", json!({"command": "open_sitting"})).await);
    let deputies: Vec<String> = (1..=120).map(|n| format!("DB{n:03}")).collect();
    for d in &deputies {
        ok(command(
            &addr,
            &clerk,
            &format!("in-{d}"),
            json!({"command": "check_in", "deputy": d}),
        )
        .await);
    }
    ok(command(
        &addr,
        &chair,
        "i",
        json!({"command": "set_current_item", "item": 3}),
    )
    .await);
    ok(command(
        &addr,
        &chair,
        "v",
        json!({"command": "open_vote", "question": "Q", "method": "named", "rule": null, "window_secs": 3600, "allow_change": false, "rerun_of": null}),
    )
    .await);
    let mut tokens = Vec::new();
    for d in &deputies {
        tokens.push((d.clone(), login(&addr, d).await));
    }
    // Every deputy votes at once; the server is killed while the ballots are coming in.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, (d, t)) in tokens.into_iter().enumerate() {
        let (addr, tx) = (addr.clone(), acked_tx.clone());
        tokio::spawn(async move {
            // Spread over about a second, so the kill lands in the middle of the vote.
            tokio::time::sleep(Duration::from_millis(8 * i as u64)).await;
            let reply = command(
                &addr,
                &t,
                "ballot",
                json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}),
            )
            .await;
            if reply.is_some_and(|r| r["type"] == "ack") {
                let _ = tx.send(d);
            }
        });
    }
    drop(acked_tx);
    let mut acked = BTreeSet::new();
    while let Some(d) = acked_rx.recv().await {
        acked.insert(d);
        if acked.len() == 40 {
            server.kill().expect("kill -9");
        }
    }
    let _ = server.wait();
    assert!(acked.len() >= 40, "the kill came after 40 acknowledgements");
    assert!(
        acked.len() < deputies.len(),
        "the kill came before the vote ended"
    );

    let store = Store::open(&db).await.expect("reopen");
    let sitting = SittingId::new("demo-2026-11");
    assert!(matches!(
        store.verify(&sitting).await.expect("verify"),
        Verification::Ok { .. }
    ));
    let (state, head) = store.replay(&sitting).await.expect("replay");
    let vote = &state.votes[&VoteId(1)];
    for d in &acked {
        assert!(
            vote.ballots.contains_key(&ActorId::new(d)),
            "acknowledged ballot of {d} lost"
        );
    }
    let cast_events = store
        .events_after(&sitting, 0, u32::try_from(head.seq).expect("small"))
        .await
        .expect("events")
        .into_iter()
        .filter(|e| matches!(e.event, Event::BallotCast { .. }))
        .count();
    assert_eq!(
        cast_events,
        vote.ballots.len(),
        "each ballot recorded exactly once"
    );
    store.close().await;

    // The restarted server serves the same log, and retrying an acknowledged ballot with
    // its command id returns the original outcome instead of a second ballot.
    let (mut again, addr) = spawn_server(&db);
    let d = acked.iter().next().expect("one acked").clone();
    let t = login(&addr, &d).await;
    let retry = command(
        &addr,
        &t,
        "ballot",
        json!({"command": "cast_ballot", "vote": 1, "choice": "no"}),
    )
    .await;
    assert_eq!(
        retry.as_ref().map(|r| r["type"].clone()),
        Some(json!("ack")),
        "{retry:?}"
    );
    again.kill().ok();
    let _ = again.wait();
}

/// What one backend's run of kills showed.
#[derive(Debug, Default)]
struct Kills {
    /// Kills made (one per vote).
    moments: usize,
    /// Ballots acknowledged to their senders before the kill, over all votes.
    acknowledged: usize,
    /// Ballots found in the log after the restarts, over all votes.
    durable: usize,
    /// Acknowledged ballots missing from the log.
    lost: usize,
    /// Ballots recorded more than once.
    duplicated: usize,
}

/// Mints a token for `code` with the server's key (no password hashing for 500 accounts).
async fn mint(store: &Store, code: &str, roles: Vec<dienhong::sitting::Role>) -> String {
    use dienhong::auth::{Claims, TokenKey, new_jti};
    let key = store
        .setting("token_key")
        .await
        .expect("store")
        .expect("the server made its key");
    let key = TokenKey::from_bytes(key.try_into().expect("32 bytes"));
    let now = dienhong::clock::now_millis();
    key.sign(&Claims {
        sub: ActorId::new(code),
        roles,
        iat: now,
        exp: dienhong::sitting::Millis(now.0 + 3_600_000),
        jti: new_jti(),
    })
}

/// Runs `moments` votes of all 500 deputies at once, killing the server with SIGKILL after a
/// different number of acknowledgements each time (from the first to the last), restarting
/// it, and checking the log after each kill.
async fn kill_at_moments(db: &str, moments: usize) -> Kills {
    use dienhong::sitting::Role;
    let voters: Vec<String> = (1..=498)
        .map(|n| format!("DB{n:03}"))
        .chain(["CHAIR".to_owned(), "VICE1".to_owned()])
        .collect();
    let (mut server, mut addr) = spawn_server(db);
    let store = Store::open(db).await.expect("open");
    let chair = mint(&store, "CHAIR", vec![Role::Chair, Role::Deputy]).await;
    let clerk = mint(&store, "CLERK1", vec![Role::Clerk]).await;
    let mut tokens = Vec::new();
    for v in &voters {
        tokens.push(mint(&store, v, vec![Role::Deputy]).await);
    }
    store.close().await;
    let ok = |what: &str, v: Option<Value>| {
        assert_eq!(
            v.as_ref().map(|v| v["type"].clone()),
            Some(json!("ack")),
            "{what}: {v:?}"
        )
    };
    ok(
        "open",
        command(&addr, &chair, "open", json!({"command": "open_sitting"})).await,
    );
    for chunk in voters.chunks(50) {
        let ids: Vec<String> = chunk.iter().map(|v| format!("in-{v}")).collect();
        let replies = futures_util::future::join_all(chunk.iter().zip(&ids).map(|(v, id)| {
            command(
                &addr,
                &clerk,
                id,
                json!({"command": "check_in", "deputy": v}),
            )
        }))
        .await;
        for r in replies {
            ok("check in", r);
        }
    }
    ok(
        "item",
        command(
            &addr,
            &chair,
            "item",
            json!({"command": "set_current_item", "item": 3}),
        )
        .await,
    );
    let sitting = SittingId::new("demo-2026-11");
    let mut kills = Kills::default();
    for round in 0..moments {
        let vote = u32::try_from(round + 1).expect("small");
        if round > 0 {
            (server, addr) = spawn_server(db);
            // The vote the kill interrupted is still open after the restart: close it.
            ok(
                "close",
                command(
                    &addr,
                    &chair,
                    &format!("close-{}", vote - 1),
                    json!({"command": "close_vote", "vote": vote - 1}),
                )
                .await,
            );
        }
        ok(
            "open vote",
            command(
                &addr,
                &chair,
                &format!("vote-{vote}"),
                json!({"command": "open_vote", "question": format!("Lần {vote}"), "method": "named", "rule": null, "window_secs": 3600, "allow_change": false, "rerun_of": null}),
            )
            .await,
        );
        // The kill lands after 1, 1 + 500/moments, … acknowledgements: from the start of the
        // vote to its end.
        let kill_after = 1 + round * voters.len() / moments;
        let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, (v, t)) in voters.iter().zip(&tokens).enumerate() {
            let (addr, tx, v, t) = (addr.clone(), acked_tx.clone(), v.clone(), t.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2 * i as u64)).await;
                let reply = command(
                    &addr,
                    &t,
                    &format!("ballot-{vote}"),
                    json!({"command": "cast_ballot", "vote": vote, "choice": "yes"}),
                )
                .await;
                if reply.is_some_and(|r| r["type"] == "ack") {
                    let _ = tx.send(v);
                }
            });
        }
        drop(acked_tx);
        let mut acked = BTreeSet::new();
        while let Some(v) = acked_rx.recv().await {
            acked.insert(v);
            if acked.len() == kill_after {
                server.kill().expect("kill -9");
            }
        }
        server.kill().ok();
        let _ = server.wait();

        let store = Store::open(db).await.expect("reopen");
        assert!(
            matches!(
                store.verify(&sitting).await.expect("verify"),
                Verification::Ok { .. }
            ),
            "the chain verifies after kill {round}"
        );
        let (state, head) = store.replay(&sitting).await.expect("replay");
        let ballots = &state.votes[&VoteId(vote)].ballots;
        let recorded = store
            .events_after(&sitting, 0, u32::try_from(head.seq).expect("small"))
            .await
            .expect("events")
            .into_iter()
            .filter(|e| matches!(e.event, Event::BallotCast { vote: v, .. } if v == VoteId(vote)))
            .count();
        store.close().await;
        kills.moments += 1;
        kills.acknowledged += acked.len();
        kills.durable += ballots.len();
        kills.lost += acked
            .iter()
            .filter(|v| !ballots.contains_key(&ActorId::new(v.as_str())))
            .count();
        kills.duplicated += recorded.saturating_sub(ballots.len());
    }
    kills
}

async fn check_kills(db: &str, backend: &str) {
    let kills = kill_at_moments(db, 20).await;
    println!("kill -9 on {backend}: {kills:?}");
    assert_eq!(kills.moments, 20);
    assert_eq!(
        kills.lost, 0,
        "acknowledged ballots lost on {backend}: {kills:?}"
    );
    assert_eq!(
        kills.duplicated, 0,
        "ballots recorded twice on {backend}: {kills:?}"
    );
    assert!(kills.durable >= kills.acknowledged, "{kills:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_ballots_survive_kill_9_at_20_moments_of_500_ballot_votes_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("k20.db").display());
    check_kills(&db, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_ballots_survive_kill_9_at_20_moments_of_500_ballot_votes_on_postgres() {
    let Some(db) = support::TestDb::postgres().await else {
        return;
    };
    check_kills(&db.url, "PostgreSQL").await;
    db.drop_db().await;
}
