//! Webhooks against a real HTTP receiver that refuses some requests and answers others too
//! late: the server is killed with SIGKILL in the middle of the deliveries and restarted,
//! and every event still arrives, at least once, in order, signed; a second endpoint gets
//! only the kind it asked for; the delivery log shows the failures; a replay delivers a
//! range again.

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::rest::Rest;

const SITTING: &str = "demo-2026-11";
const SECRET: &str = "a-receivers-secret-0123456789";

/// One delivery as the receiver took it.
#[derive(Debug, Clone)]
struct Got {
    endpoint: String,
    seq: u64,
    kind: String,
    replay: bool,
}

#[derive(Default)]
struct Receiver {
    /// Requests seen, to choose which to refuse.
    requests: u64,
    /// Deliveries answered 200, in the order they arrived.
    taken: Vec<Got>,
    /// Requests whose signature did not check out.
    bad_signatures: u64,
}

type Shared = Arc<Mutex<Receiver>>;

async fn hook(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = {
        let mut g = r.lock().expect("lock");
        g.requests += 1;
        g.requests
    };
    // Every fifth request is refused; every seventh is answered after the server gave up
    // waiting (its timeout is one second): as good as dropped.
    if n % 5 == 0 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if n % 7 == 0 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        return StatusCode::OK;
    }
    if n % 3 == 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sig = headers
        .get("dienhong-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut g = r.lock().expect("lock");
    if dienhong::webhooks::sign::verify(SECRET.as_bytes(), sig, &body, now, 300).is_err() {
        g.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let v: Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(v["sitting"], SITTING);
    assert_eq!(
        headers.get("dienhong-event").and_then(|h| h.to_str().ok()),
        v["event"]["type"].as_str()
    );
    g.taken.push(Got {
        endpoint: v["endpoint"].as_str().unwrap_or_default().to_owned(),
        seq: v["seq"].as_u64().expect("seq"),
        kind: v["event"]["type"].as_str().unwrap_or_default().to_owned(),
        replay: v["replay"].as_bool().expect("replay"),
    });
    StatusCode::OK
}

async fn start_receiver() -> (Shared, String) {
    let shared = Shared::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (shared, format!("http://{addr}/hook"))
}

async fn head(api: &Rest) -> u64 {
    api.get(&format!("/api/sittings/{SITTING}"), None).await["seq"]
        .as_u64()
        .expect("seq")
}

/// The first arrival of each sequence number at `endpoint`, in arrival order.
fn first_arrivals(taken: &[Got], endpoint: &str) -> Vec<u64> {
    let mut seen = std::collections::BTreeSet::new();
    taken
        .iter()
        .filter(|g| g.endpoint == endpoint && !g.replay && seen.insert(g.seq))
        .map(|g| g.seq)
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn every_event_reaches_a_flaky_receiver_in_order_across_a_kill_9_on_sqlite() {
    let db = support::TestDb::sqlite();
    flaky_receiver_kill_9_and_replay(&db.url).await;
}

#[tokio::test]
async fn every_event_reaches_a_flaky_receiver_in_order_across_a_kill_9_on_postgres() {
    let Some(db) = support::TestDb::postgres().await else {
        return;
    };
    flaky_receiver_kill_9_and_replay(&db.url).await;
    db.drop_db().await;
}

/// Every event reaches a receiver that refuses and times out, in order, across a kill -9;
/// a second endpoint gets only its kind; the log shows the failures; a replay resends a
/// range.
async fn flaky_receiver_kill_9_and_replay(db: &str) {
    let (receiver, url) = start_receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hooks.toml");
    std::fs::write(
        &config,
        format!(
            r#"[webhooks]
retry_min_secs = 1
retry_max_secs = 2
timeout_secs = 1
[[webhooks.endpoints]]
id = "archive"
url = "{url}"
secret = "{SECRET}"
[[webhooks.endpoints]]
id = "results"
url = "{url}"
secret = "{SECRET}"
events = ["vote_closed"]
[documents]
store = "file://{files}"
index_dir = "{files}/index"
[trust]
checkpoint_key = "{files}/checkpoint.key"
"#,
            files = dir.path().display()
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let args = [
        "--config",
        &config,
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--database",
        db,
    ];
    let (mut server, addr) = support::spawn_binary(&args);
    let api = Rest::new(addr, SITTING);
    let chair = api.login("CHAIR").await;
    let clerk = api.login("CLERK1").await;
    api.open_with(&chair, &clerk, 20, 1).await;
    // Killed while deliveries are under way (some delivered, most not yet).
    wait_for("the first deliveries", || {
        receiver.lock().expect("lock").taken.len() >= 4
    })
    .await;
    let before = first_arrivals(&receiver.lock().expect("lock").taken, "archive").len() as u64;
    server.kill().expect("kill -9");
    let _ = server.wait();
    // The sitting created, opened, 20 check-ins, the item: 23 events.
    let written = 23;
    assert!(
        before < written,
        "the kill came before every event was delivered ({before})"
    );

    let (mut server, addr) = support::spawn_binary(&args);
    let api = Rest::new(addr, SITTING);
    let (http, addr) = (&api.http, &api.addr);
    let chair = api.login("CHAIR").await;
    api.open_named_vote(&chair, "Thông qua?").await;
    for n in 1..=3 {
        let d = format!("DB{n:03}");
        let t = api.login(&d).await;
        api.ok(
            &t,
            "ballot",
            json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}),
        )
        .await;
    }
    api.ok(&chair, "close", json!({"command": "close_vote", "vote": 1}))
        .await;
    let last = head(&api).await;

    wait_for("every event at the archive", || {
        first_arrivals(&receiver.lock().expect("lock").taken, "archive").len() as u64 == last
    })
    .await;
    let (taken, bad) = {
        let g = receiver.lock().expect("lock");
        (g.taken.clone(), g.bad_signatures)
    };
    assert_eq!(
        bad, 0,
        "every delivery is signed with the endpoint's secret"
    );
    assert_eq!(
        first_arrivals(&taken, "archive"),
        (1..=last).collect::<Vec<_>>(),
        "each event arrives first in the order of the log"
    );
    // Each endpoint's deliveries come in order: a repeat is only ever of the one before.
    let archive: Vec<u64> = taken
        .iter()
        .filter(|g| g.endpoint == "archive")
        .map(|g| g.seq)
        .collect();
    for pair in archive.windows(2) {
        assert!(
            pair[1] >= pair[0],
            "out of order at the archive: {archive:?}"
        );
    }
    wait_for("the vote's result at the results endpoint", || {
        !first_arrivals(&receiver.lock().expect("lock").taken, "results").is_empty()
    })
    .await;
    let taken = receiver.lock().expect("lock").taken.clone();
    let results: Vec<&Got> = taken.iter().filter(|g| g.endpoint == "results").collect();
    assert!(
        results.iter().all(|g| g.kind == "vote_closed"),
        "an endpoint gets only the kinds it asked for: {results:?}"
    );

    // The delivery log has the failures and the successes; the state says all is delivered.
    let clerk = api.login("CLERK1").await;
    let log: Vec<Value> = http
        .get(format!(
            "http://{addr}/api/webhooks/archive/attempts?limit=5000"
        ))
        .bearer_auth(&clerk)
        .send()
        .await
        .expect("attempts")
        .json()
        .await
        .expect("json");
    assert!(
        log.iter().any(|a| a["status"] == 503),
        "a refused attempt is logged"
    );
    assert!(
        log.iter().any(|a| a["error"] == "timed out"),
        "a timed-out attempt is logged"
    );
    assert!(
        log.iter()
            .any(|a| a["status"] == 200 && a["error"].is_null())
    );
    let status: Value = http
        .get(format!("http://{addr}/api/webhooks"))
        .bearer_auth(&clerk)
        .send()
        .await
        .expect("webhooks")
        .json()
        .await
        .expect("json");
    let archive = status
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == "archive"))
        .expect("archive listed");
    assert_eq!(archive["delivered"][SITTING], last, "{archive}");
    let deputy = api.login("DB004").await;
    let refused = http
        .get(format!("http://{addr}/api/webhooks"))
        .bearer_auth(&deputy)
        .send()
        .await
        .expect("webhooks");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);

    // A replay of 2..=4 comes again, marked, in order.
    let r = http
        .post(format!("http://{addr}/api/webhooks/archive/replays"))
        .bearer_auth(&clerk)
        .json(&json!({"sitting": SITTING, "first": 2, "last": 4}))
        .send()
        .await
        .expect("replay");
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let replayed = || -> Vec<u64> {
        let g = receiver.lock().expect("lock");
        let mut seen = std::collections::BTreeSet::new();
        g.taken
            .iter()
            .filter(|t| t.replay && seen.insert(t.seq))
            .map(|t| t.seq)
            .collect()
    };
    wait_for("the replay", || replayed().len() == 3).await;
    assert_eq!(replayed(), vec![2, 3, 4]);
    server.kill().ok();
    let _ = server.wait();
}

/// The delivery log keeps what is younger than the cut and drops the rest, on both backends.
async fn prune_keeps_the_recent_attempts(url: &str) {
    use dienhong::sitting::Millis;
    use dienhong::store::{Attempt, Store};
    let store = Store::open(url).await.expect("store");
    for (seq, at) in [(1, 1_000), (2, 2_000), (3, 3_000)] {
        store
            .add_webhook_attempt(&Attempt {
                id: 0,
                endpoint: "archive".into(),
                sitting: SITTING.into(),
                seq,
                kind: "checked_in".into(),
                replay: false,
                attempt: 1,
                at: Millis(at),
                status: Some(200),
                error: None,
                millis: 3,
            })
            .await
            .expect("attempt");
    }
    assert_eq!(
        store
            .prune_webhook_attempts(Millis(2_000))
            .await
            .expect("prune"),
        1
    );
    let left: Vec<u64> = store
        .webhook_attempts("archive", 0, 10)
        .await
        .expect("attempts")
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(left, vec![2, 3]);
    store.close().await;
}

#[tokio::test]
async fn old_attempts_leave_the_delivery_log_on_sqlite() {
    let db = support::TestDb::sqlite();
    prune_keeps_the_recent_attempts(&db.url).await;
}

#[tokio::test]
async fn old_attempts_leave_the_delivery_log_on_postgres() {
    let Some(db) = support::TestDb::postgres().await else {
        return;
    };
    prune_keeps_the_recent_attempts(&db.url).await;
    db.drop_db().await;
}
