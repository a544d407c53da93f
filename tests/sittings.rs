//! A sitting created while the server runs: a clerk sends a roster and an agenda, and with
//! no restart the sitting is listed, opened, voted in over REST and the WebSocket, followed
//! by the media plane once it is in session, and its minutes exported.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use support::rest::Rest;

const NEW: &str = "kh15-k10-p2";

/// The roster: the demo's chair and six of its deputies, a clerk and a site; the same codes
/// as the demo's, so their passwords work.
const ROSTER: &str = "code\tname\tdelegation\troles
CHAIR\tChủ tọa\t01\tchair,deputy
DB001\tĐại biểu Một\t01\tdeputy
DB002\tĐại biểu Hai\t79\tdeputy
DB003\tĐại biểu Ba\t79\tdeputy
DB004\tĐại biểu Bốn\t02\tdeputy
DB005\tĐại biểu Năm\t02\tdeputy
DB006\tĐại biểu Sáu\t01\tdeputy
CLERK1\tThư ký\t\tclerk
";

async fn create(api: &Rest, token: &str, body: Value) -> (StatusCode, Value) {
    let r = api
        .http
        .post(format!("http://{}/api/sittings", api.addr))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_sitting_created_while_running_opens_votes_and_exports_its_minutes_without_a_restart() {
    let s = support::ws::start().await;
    let api = Rest::new(s.addr, NEW);
    let (http, addr) = (&api.http, &api.addr);
    let clerk = s.login("CLERK1").await;
    let deputy = s.login("DB010").await;
    let request = json!({"id": NEW, "title": "Phiên thứ hai", "roster": ROSTER,
                         "agenda": "Khai mạc\n\nBiểu quyết dự án luật\nBế mạc\n"});

    // Refusals first: nothing is created by them.
    let (status, body) = create(&api, &deputy, request.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_permitted"))
    );
    let mut bad = request.clone();
    bad["roster"] = json!("code\tname\tdelegation\troles\nX\tY\t99\tdeputy\n");
    let (status, body) = create(&api, &clerk, bad).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an unknown delegation: {body}"
    );
    let mut bad = request.clone();
    bad["id"] = json!("có dấu");
    let (status, _) = create(&api, &clerk, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an id must be plain");

    let (status, summary) = create(&api, &clerk, request.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{summary}");
    assert_eq!(summary["sitting"], NEW);
    assert_eq!(summary["phase"], "scheduled");
    assert_eq!(summary["members"], 7);
    let (status, body) = create(&api, &clerk, request).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_created"))
    );
    let list = api.get("/api/sittings", None).await;
    let ids: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["sitting"].as_str())
        .collect();
    assert_eq!(ids, vec!["demo-2026-11", NEW], "both sittings are listed");

    // The chair's token was issued before the sitting existed; a new login carries the roles
    // of every sitting, and commands are checked against the new roster anyway.
    let chair = s.login("CHAIR").await;
    api.open_with(&chair, &clerk, 6, 2).await;
    api.open_named_vote(&chair, "Thông qua dự án luật?").await;
    // Ballots over REST and over the WebSocket.
    for (n, choice) in [(1, "yes"), (2, "yes"), (3, "no")] {
        let t = s.login(&format!("DB{n:03}")).await;
        api.ok(
            &t,
            "ballot",
            json!({"command": "cast_ballot", "vote": 1, "choice": choice}),
        )
        .await;
    }
    let mut ws = s.client("DB004").await;
    let snap = ws.subscribe_to(NEW, None).await;
    assert_eq!(snap["sitting"], NEW);
    let reply = ws
        .command(json!({"command": "cast_ballot", "vote": 1, "choice": "abstain"}))
        .await;
    assert_eq!(reply["type"], "ack", "{reply}");
    // A deputy of the demo sitting only is not in this one.
    let (status, _) = api
        .command(
            &deputy,
            Some("ballot"),
            json!({"command": {"command": "cast_ballot", "vote": 1, "choice": "yes"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    api.ok(&chair, "close", json!({"command": "close_vote", "vote": 1}))
        .await;

    // The media plane follows the sitting in session.
    let mut followed = Value::Null;
    for _ in 0..50 {
        followed = api.get("/healthz/media", None).await;
        if followed["sitting"] == NEW {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(followed["sitting"], NEW, "{followed}");

    // The minutes, from the new sitting's log.
    let minutes = api
        .get(
            &format!("/api/sittings/{NEW}/minutes?format=json"),
            Some(&clerk),
        )
        .await;
    let vote = &minutes["votes"][0];
    assert_eq!(vote["question"], "Thông qua dự án luật?", "{vote}");
    assert_eq!(vote["outcome"]["status"], "closed", "{vote}");
    let counts = &vote["outcome"]["result"]["tally"];
    assert_eq!(vote["outcome"]["result"]["present"], 6, "{vote}");
    assert_eq!(
        (&counts["yes"], &counts["no"], &counts["abstain"]),
        (&json!(2), &json!(1), &json!(1)),
        "{vote}"
    );
    let pdf = http
        .get(format!(
            "http://{addr}/api/sittings/{NEW}/minutes?format=pdf"
        ))
        .bearer_auth(&clerk)
        .send()
        .await
        .expect("pdf");
    assert_eq!(pdf.status(), StatusCode::OK);
    assert!(pdf.bytes().await.expect("bytes").starts_with(b"%PDF"));
    s.stop().await;
}
