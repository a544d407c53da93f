//! Nothing acknowledged is lost: `kill -9` of the real server in the middle of a vote, a
//! restart on the same SQLite file, and every acknowledged ballot is there exactly once,
//! with the hash chain intact.

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
