//! The audit trail through the real server: log-ins (failed and succeeded), a refused
//! command, a clerk's entry, a checkpoint asked for and a logout are kept, in order, apart
//! from the sitting's log; the chair and clerks may read it, a deputy may not; no password
//! or token is in it; `dienhong verify` checks its chain and names an edited row.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::raw_execute;
use support::ws::start;

#[tokio::test]
async fn access_is_audited_apart_from_the_sitting_and_verify_checks_the_trail() {
    let s = start().await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", s.addr);
    let wrong = "sai-mat-khau-123";
    let failed = http
        .post(format!("{base}/api/login"))
        .json(&json!({"code": "DB001", "password": wrong}))
        .send()
        .await
        .expect("login");
    assert_eq!(failed.status(), 401);
    let mut deputy = s.client("DB001").await;
    let refused = deputy.command(json!({"command": "open_sitting"})).await;
    assert_eq!(refused["code"], "not_permitted");
    let mut clerk = s.client("CLERK1").await;
    let entry = clerk
        .ok(json!({"command": "check_in", "deputy": "DB007"}))
        .await;
    let asked = http
        .post(format!("{base}/api/sittings/demo-2026-11/checkpoints"))
        .bearer_auth(&clerk.token)
        .send()
        .await
        .expect("checkpoint");
    assert_eq!(asked.status(), 201);
    let out = http
        .post(format!("{base}/api/logout"))
        .bearer_auth(&deputy.token)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);

    // The clerk reads it (entries are written by a task of their own: shortly).
    let read = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/api/audit"))
                .bearer_auth(token)
                .send()
                .await
                .expect("audit")
        }
    };
    let mut trail = Value::Null;
    for _ in 0..100 {
        trail = read(clerk.token.clone()).await.json().await.expect("json");
        if trail
            .as_array()
            .is_some_and(|t| t.iter().any(|e| e["entry"]["kind"] == "logged_out"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entries = trail.as_array().expect("a list");
    let kinds: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["entry"]["kind"].as_str())
        .collect();
    for want in [
        "login_failed",
        "logged_in",
        "refused",
        "clerk_entry",
        "checkpoint_asked",
        "logged_out",
    ] {
        assert!(kinds.contains(&want), "{want} missing from {trail}");
    }
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], json!(i + 1), "{trail}");
    }
    let refusal = entries
        .iter()
        .find(|e| e["entry"]["kind"] == "refused")
        .expect("refusal");
    assert_eq!(refusal["entry"]["actor"], "DB001");
    assert_eq!(refusal["entry"]["command"], "open_sitting");
    let clerk_entry = entries
        .iter()
        .find(|e| e["entry"]["kind"] == "clerk_entry")
        .expect("clerk entry");
    assert_eq!(clerk_entry["entry"]["command"], "check_in");
    assert_eq!(clerk_entry["entry"]["seq"], json!(entry));
    let failure = entries
        .iter()
        .find(|e| e["entry"]["kind"] == "login_failed")
        .expect("failure");
    assert_eq!(failure["entry"]["code"], "DB001");

    // Not for a deputy; not without a token.
    let other = s.login("DB002").await;
    assert_eq!(read(other).await.status(), 403);
    let anonymous = http
        .get(format!("{base}/api/audit"))
        .send()
        .await
        .expect("audit");
    assert_eq!(anonymous.status(), 401);

    // Nothing secret in the stored rows.
    let url = s.database_url();
    let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
    let bodies: Vec<(String,)> = sqlx::query_as("SELECT body FROM audit")
        .fetch_all(&pool)
        .await
        .expect("rows");
    pool.close().await;
    assert!(!bodies.is_empty());
    for (body,) in &bodies {
        for secret in [wrong, "\"demo\"", &deputy.token, &clerk.token] {
            assert!(!body.contains(secret), "{secret} stored in {body}");
        }
    }

    // verify walks the trail, and names an edited row.
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dienhong"))
            .args(["verify", "--database", &url])
            .output()
            .expect("verify runs")
    };
    let ok = verify();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("audit trail ok"), "{text}");
    let n = raw_execute(
        &url,
        "UPDATE audit SET body = replace(body, 'DB001', 'DB999') WHERE seq = 1",
        &[],
    )
    .await;
    assert_eq!(n, 1);
    let bad = verify();
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{text}");
    assert!(text.contains("audit trail broken at seq 1"), "{text}");
    s.stop().await;
}
