//! The REST API: commands with an `Idempotency-Key` answered after durability with the
//! WebSocket's codes, idempotent across a `kill -9` and a restart; the state and the log's
//! pages read back; and the OpenAPI description checked against the routes the server
//! really serves.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::rest::Rest;

const SITTING: &str = "demo-2026-11";

/// Every event of the log, read a page at a time through the API.
async fn all_events(api: &Rest, token: &str, limit: u32) -> Vec<Value> {
    let mut after = 0;
    let mut events = Vec::new();
    loop {
        let page = api
            .get(
                &format!("/api/sittings/{SITTING}/events?after={after}&limit={limit}"),
                Some(token),
            )
            .await;
        let got = page["events"].as_array().expect("events").clone();
        assert!(
            got.len() <= limit as usize,
            "a page holds at most the limit"
        );
        events.extend(got);
        match page["next_after"].as_u64() {
            Some(n) => after = n,
            None => {
                assert_eq!(
                    events.last().and_then(|e| e["seq"].as_u64()),
                    page["head"].as_u64(),
                    "the last page ends at the head"
                );
                return events;
            }
        }
    }
}

#[tokio::test]
async fn a_command_sent_again_with_its_idempotency_key_after_kill_9_counts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("r.db").display());
    let (mut server, addr) =
        support::spawn_binary(&["demo", "--listen", "127.0.0.1:0", "--database", &db]);
    let api = Rest::new(addr, SITTING);
    let chair = api.login("CHAIR").await;
    let clerk = api.login("CLERK1").await;
    let deputy = api.login("DB001").await;

    api.open_with(&chair, &clerk, 3, 1).await;
    api.open_named_vote(&chair, "Thông qua?").await;
    let ballot =
        |choice: &str| json!({"command": {"command": "cast_ballot", "vote": 1, "choice": choice}});
    let (status, first) = api.command(&deputy, Some("ballot-1"), ballot("yes")).await;
    assert_eq!(status, StatusCode::OK, "{first}");

    // The same key again before the restart: the first outcome, nothing new.
    let (status, again) = api.command(&deputy, Some("ballot-1"), ballot("no")).await;
    assert_eq!((status, &again["seq"]), (StatusCode::OK, &first["seq"]));

    server.kill().expect("kill -9");
    let _ = server.wait();
    let (mut server, addr) =
        support::spawn_binary(&["demo", "--listen", "127.0.0.1:0", "--database", &db]);
    let api = Rest::new(addr, SITTING);
    let deputy = api.login("DB001").await;
    let (status, after) = api.command(&deputy, Some("ballot-1"), ballot("no")).await;
    assert_eq!(
        (status, &after["seq"]),
        (StatusCode::OK, &first["seq"]),
        "after the restart the key still answers the first outcome: {after}"
    );
    // Another key is another command: a second ballot is refused by the rules.
    let (status, refused) = api.command(&deputy, Some("ballot-2"), ballot("no")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], "ballot_final");

    // The state and the log agree: one ballot, yes.
    let state = api
        .get(&format!("/api/sittings/{SITTING}/state"), Some(&deputy))
        .await;
    assert_eq!(state["type"], "snapshot");
    let vote = &state["state"]["votes"]["1"];
    assert_eq!(
        vote["ballots"].as_object().map(|b| b.len()),
        Some(1),
        "{vote}"
    );
    assert_eq!(vote["ballots"]["DB001"]["choice"], "yes", "{vote}");
    let events = all_events(&api, &deputy, 3).await;
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let expected: Vec<u64> = (1..=state["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, expected, "every event once, in order, across pages");
    let ballots = events
        .iter()
        .filter(|e| e["event"]["type"] == "ballot_cast")
        .count();
    assert_eq!(ballots, 1, "the ballot is in the log once");
    server.kill().ok();
    let _ = server.wait();
}

#[tokio::test]
async fn bad_rest_commands_get_the_websockets_codes_and_change_nothing() {
    let s = support::ws::start_with(&[
        ("DIENHONG__CONTROL__COMMANDS_PER_SEC", "1"),
        ("DIENHONG__CONTROL__COMMAND_BURST", "4"),
    ])
    .await;
    let api = Rest::new(s.addr, SITTING);
    let (http, addr) = (&api.http, &api.addr);
    let chair = s.login("CHAIR").await;
    let deputy = s.login("DB002").await;
    let open = json!({"command": {"command": "open_sitting"}});

    let cases: Vec<(&str, StatusCode, &str, (StatusCode, Value))> = vec![
        (
            "no token",
            StatusCode::UNAUTHORIZED,
            "missing_token",
            api.command("", Some("k1"), open.clone()).await,
        ),
        (
            "no key",
            StatusCode::BAD_REQUEST,
            "invalid_command_id",
            api.command(&chair, None, open.clone()).await,
        ),
        (
            "a key with a space",
            StatusCode::BAD_REQUEST,
            "invalid_command_id",
            api.command(&chair, Some("a b"), open.clone()).await,
        ),
        (
            "an unknown command",
            StatusCode::BAD_REQUEST,
            "invalid_request",
            api.command(
                &chair,
                Some("k2"),
                json!({"command": {"command": "dissolve"}}),
            )
            .await,
        ),
        (
            "a deputy opening the sitting",
            StatusCode::FORBIDDEN,
            "not_permitted",
            api.command(&deputy, Some("k3"), open.clone()).await,
        ),
        (
            "a vote before the sitting opens",
            StatusCode::CONFLICT,
            "wrong_phase",
            api.command(
                &chair,
                Some("k4"),
                json!({"command": {"command": "open_vote", "question": "Q", "method": "named",
                       "rule": null, "window_secs": 60, "allow_change": false, "rerun_of": null}}),
            )
            .await,
        ),
    ];
    for (what, status, code, (got, body)) in cases {
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
    let (status, _) = api
        .to("nope")
        .command(&chair, Some("k5"), open.clone())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let big = "x".repeat(64 * 1024);
    let (status, _) = api
        .command(
            &chair,
            Some("k6"),
            json!({"command": {"command": "suspend_sitting", "reason": big}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "an oversize body is refused"
    );

    // Nothing refused reached the log; the rate limit answers 429 with Retry-After.
    let summary = api.get(&format!("/api/sittings/{SITTING}"), None).await;
    assert_eq!(summary["phase"], "scheduled", "{summary}");
    let mut limited = None;
    for i in 0..10 {
        let r = http
            .post(format!("http://{addr}/api/sittings/{SITTING}/commands"))
            .bearer_auth(&deputy)
            .header("Idempotency-Key", format!("r{i}"))
            .json(&json!({"command": {"command": "request_floor", "kind": "discussion"}}))
            .send()
            .await
            .expect("sent");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = r.headers().get("retry-after").cloned();
            break;
        }
    }
    assert!(
        limited.is_some(),
        "a burst past the limit is refused with Retry-After"
    );
    s.stop().await;
}

/// A value for a path parameter of the demo server.
fn fill(path: &str) -> String {
    path.replace("{id}", SITTING)
        .replace("{doc}", "1")
        .replace("{version}", "1")
}

#[tokio::test]
async fn every_operation_in_the_openapi_description_is_served_and_answers_as_described() {
    let s = support::ws::start().await;
    let addr = s.addr;
    let http = reqwest::Client::new();
    let spec: Value = http
        .get(format!("http://{addr}/api/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    assert_eq!(
        spec,
        serde_json::from_str::<Value>(&dienhong::server::openapi_description()).expect("cli's"),
        "the CLI prints what is served"
    );
    // The command body is described variant by variant, as the server reads it.
    let command = spec["components"]["schemas"]["Command"].to_string();
    for needle in ["cast_ballot", "open_vote", "give_floor", "check_in"] {
        assert!(
            command.contains(needle),
            "{needle} in the Command schema: {command}"
        );
    }
    let paths = spec["paths"].as_object().expect("paths");
    for must in [
        "/api/sittings/{id}/commands",
        "/api/sittings/{id}/events",
        "/api/sittings/{id}/state",
        "/api/sittings/{id}/minutes",
        "/api/sittings/{id}/roster",
        "/whep",
        "/metrics",
    ] {
        assert!(paths.contains_key(must), "{must} is described");
    }
    let chair = s.login("CHAIR").await;
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            operations.push((path.clone(), m, op.clone()));
        }
    }
    // Logging out revokes the token the others use: last.
    operations.sort_by_key(|(p, _, _)| p == "/api/logout");
    let mut seen = BTreeSet::new();
    for (path, method, op) in &operations {
        let r = http
            .request(method.clone(), format!("http://{addr}{}", fill(path)))
            .bearer_auth(&chair)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16().to_string();
        let documented = op["responses"].as_object().expect("responses");
        let body = r.text().await.unwrap_or_default();
        assert!(
            documented.contains_key(&status),
            "{method} {path} answered {status}, which its description does not list ({:?}): {body}",
            documented.keys().collect::<Vec<_>>()
        );
        // An error answered by the route itself (not a missing route) names its code.
        if status.starts_with('4') && status != "405" && status != "416" {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert!(v["code"].is_string(), "{method} {path} {status}: {body}");
        }
        seen.insert((path.clone(), method.clone()));
    }
    // And nothing else is served on those paths: another method is not allowed there.
    for path in paths.keys() {
        let methods: Vec<&Method> = seen
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, m)| m)
            .collect();
        if !methods.contains(&&Method::PUT) {
            let r = http
                .put(format!("http://{addr}{}", fill(path)))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "PUT {path}");
        }
    }
    s.stop().await;
}
