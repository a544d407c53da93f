//! The browser's copy of `apply` (web-client/js/state.js) is held in lockstep with the
//! server's: a sitting that produces every kind of event clients receive runs through the
//! real server; a clerk (who may see every document) records the events; Node folds them
//! with the page's reducer;
//! at several points the folded state must equal, field for field, the snapshot the server
//! sends a client that subscribes at that point.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;
use support::ws::{Server, start};

/// The snapshot a fresh subscriber gets now: (seq, state).
async fn snapshot(s: &Server) -> (u64, Value) {
    let mut c = s.client("CLERK2").await;
    let snap = c.subscribe(None).await;
    let seq = snap["seq"].as_u64().expect("seq");
    (seq, snap["state"].clone())
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_page_reducer_folds_every_event_into_exactly_the_servers_snapshot() {
    if !node_available() {
        assert!(
            std::env::var_os("DIENHONG_REQUIRE_BROWSER").is_none(),
            "DIENHONG_REQUIRE_BROWSER is set but node is missing"
        );
        eprintln!("skipped: node is not installed");
        return;
    }
    let s = start().await;
    let mut observer = s.client("CLERK2").await;
    let initial = observer.subscribe(None).await;
    let mut chair = s.client("CHAIR").await;
    let mut clerk = s.client("CLERK1").await;
    let mut d = Vec::new();
    for code in ["DB001", "DB002", "DB003", "DB004"] {
        d.push(s.client(code).await);
    }
    let mut checkpoints: BTreeMap<u64, Value> = BTreeMap::new();
    macro_rules! checkpoint {
        () => {{
            let (seq, state) = snapshot(&s).await;
            checkpoints.insert(seq, state);
        }};
    }

    // Opening, attendance with and without a location, on behalf, leaving.
    chair.ok(json!({"command": "open_sitting"})).await;
    d[0].ok(json!({"command": "check_in", "deputy": "DB001", "location": "hall"}))
        .await;
    d[1].ok(json!({"command": "check_in", "deputy": "DB002", "location": "remote"}))
        .await;
    d[2].ok(json!({"command": "check_in", "deputy": "DB003"}))
        .await;
    clerk
        .ok(json!({"command": "check_in", "deputy": "DB004", "location": "site"}))
        .await;
    d[2].ok(json!({"command": "check_out", "deputy": "DB003"}))
        .await;
    d[2].ok(json!({"command": "check_in", "deputy": "DB003", "location": "site"}))
        .await;
    checkpoint!();

    // The agenda.
    chair
        .ok(json!({"command": "add_agenda_item", "title": "Mục bổ sung", "position": 1}))
        .await;
    chair
        .ok(json!({"command": "add_agenda_item", "title": "Cuối", "position": null}))
        .await;
    let agenda: Vec<u64> = snapshot(&s).await.1["agenda"]
        .as_array()
        .expect("agenda")
        .iter()
        .map(|i| i["id"].as_u64().expect("id"))
        .rev()
        .collect();
    chair
        .ok(json!({"command": "reorder_agenda", "order": agenda}))
        .await;
    chair
        .ok(json!({"command": "set_current_item", "item": 2}))
        .await;
    checkpoint!();

    // The floor: requests of each kind, reordering, withdrawal, grant, extension, revocation,
    // giving the floor directly, yielding.
    for (i, kind) in ["discussion", "debate", "question", "point_of_order"]
        .iter()
        .enumerate()
    {
        d[i].ok(json!({"command": "request_floor", "kind": kind}))
            .await;
    }
    chair
        .ok(json!({"command": "reorder_queue", "order": [3, 1, 4, 2]}))
        .await;
    d[3].ok(json!({"command": "withdraw_request", "request": 4}))
        .await;
    chair
        .ok(json!({"command": "withdraw_request", "request": 2}))
        .await;
    checkpoint!();
    chair
        .ok(json!({"command": "grant_floor", "request": 3}))
        .await;
    chair
        .ok(json!({"command": "extend_floor", "secs": 60}))
        .await;
    checkpoint!();
    chair.ok(json!({"command": "revoke_floor"})).await;
    chair
        .ok(json!({"command": "give_floor", "deputy": "DB004", "kind": "debate"}))
        .await;
    chair
        .ok(json!({"command": "grant_floor", "request": 1}))
        .await;
    d[0].ok(json!({"command": "yield_floor"})).await;
    checkpoint!();

    // A named vote with a changed ballot and one on behalf, closed, voided, run again.
    chair
        .ok(json!({"command": "open_vote", "question": "Thông qua?", "method": "named", "rule": null, "window_secs": 300, "allow_change": true, "rerun_of": null}))
        .await;
    d[0].ok(json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}))
        .await;
    d[1].ok(json!({"command": "cast_ballot", "vote": 1, "choice": "no"}))
        .await;
    d[1].ok(json!({"command": "cast_ballot", "vote": 1, "choice": "abstain"}))
        .await;
    clerk
        .ok(json!({"command": "record_ballot", "vote": 1, "deputy": "DB003", "choice": "yes", "reason": "thiết bị hỏng"}))
        .await;
    checkpoint!();
    chair.ok(json!({"command": "close_vote", "vote": 1})).await;
    chair
        .ok(json!({"command": "void_vote", "vote": 1, "reason": "nhầm câu hỏi"}))
        .await;
    chair
        .ok(json!({"command": "open_vote", "question": "Thông qua (lần 2)?", "method": "named", "rule": "two_thirds_of_members", "window_secs": 300, "allow_change": false, "rerun_of": 1}))
        .await;
    d[0].ok(json!({"command": "cast_ballot", "vote": 2, "choice": "yes"}))
        .await;
    chair.ok(json!({"command": "close_vote", "vote": 2})).await;
    checkpoint!();

    // Secret votes: one closed (counts appear with the result), one voided while open
    // (its counts never appear).
    chair
        .ok(json!({"command": "open_vote", "question": "Bầu", "method": "secret", "rule": "majority_of_present", "window_secs": 300, "allow_change": null, "rerun_of": null}))
        .await;
    d[0].ok(json!({"command": "cast_ballot", "vote": 3, "choice": "yes"}))
        .await;
    d[1].ok(json!({"command": "cast_ballot", "vote": 3, "choice": "no"}))
        .await;
    checkpoint!();
    chair.ok(json!({"command": "close_vote", "vote": 3})).await;
    chair
        .ok(json!({"command": "open_vote", "question": "Bầu lại", "method": "secret", "rule": null, "window_secs": 300, "allow_change": null, "rerun_of": null}))
        .await;
    d[2].ok(json!({"command": "cast_ballot", "vote": 4, "choice": "abstain"}))
        .await;
    chair
        .ok(json!({"command": "void_vote", "vote": 4, "reason": "sự cố"}))
        .await;
    checkpoint!();

    // Documents: published, superseded, acknowledged.
    let (sha, size) = s.upload_pdf("CLERK1", "to-trinh").await;
    let (sha2, size2) = s.upload_pdf("CLERK1", "to-trinh-sua").await;
    clerk
        .ok(json!({"command": "publish_document", "item": 2, "title": "Tờ trình", "media_type": "application/pdf", "size": size, "sha256": sha, "file_name": "to-trinh.pdf", "access": {"level": "deputies"}}))
        .await;
    clerk
        .ok(json!({"command": "publish_document", "item": 2, "title": "Báo cáo mật", "media_type": "application/pdf", "size": size, "sha256": sha, "access": {"level": "restricted", "roles": ["chair", "clerk"]}}))
        .await;
    d[0].ok(
        json!({"command": "acknowledge_document", "document": 1, "version": 1, "ack": "received"}),
    )
    .await;
    d[0].ok(json!({"command": "acknowledge_document", "document": 1, "version": 1, "ack": "read"}))
        .await;
    clerk
        .ok(json!({"command": "supersede_document", "document": 1, "title": "Tờ trình (sửa)", "media_type": "application/pdf", "size": size2, "sha256": sha2}))
        .await;
    d[1].ok(json!({"command": "acknowledge_document", "document": 1, "version": 2, "ack": "read"}))
        .await;
    checkpoint!();

    // Recess and the end.
    chair
        .ok(json!({"command": "give_floor", "deputy": "DB002", "kind": "discussion"}))
        .await;
    chair
        .ok(json!({"command": "suspend_sitting", "reason": "nghỉ giải lao"}))
        .await;
    chair.ok(json!({"command": "resume_sitting"})).await;
    checkpoint!();
    chair.ok(json!({"command": "close_sitting"})).await;
    checkpoint!();

    // Everything the observer received, in order.
    let head = *checkpoints.keys().last().expect("checkpoints");
    let mut events = Vec::new();
    while events
        .last()
        .and_then(|e: &Value| e["seq"].as_u64())
        .unwrap_or(0)
        < head
    {
        let m = observer.next().await;
        assert_ne!(m["type"], "closed", "{m}");
        if m["type"] == "event" {
            events.push(m);
        }
    }
    let kinds: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["event"]["type"].as_str())
        .collect();
    assert!(
        kinds.len() >= 21,
        "the scenario misses event kinds: {kinds:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("events.json");
    let initial = json!({"seq": initial["seq"], "state": initial["state"]});
    let at: Vec<u64> = checkpoints.keys().copied().collect();
    std::fs::write(
        &input,
        json!({"initial": initial, "events": events, "at": at}).to_string(),
    )
    .expect("write");
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/client_state.mjs"
        ))
        .arg(&input)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folded: Value = serde_json::from_slice(&out.stdout).expect("node prints JSON");
    for (seq, server) in &checkpoints {
        let client = &folded[seq.to_string()];
        if client != server {
            let fields: Vec<String> = server
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| &client[k.as_str()] != *v)
                .map(|(k, v)| format!("{k}: server {v} / page {}", client[k.as_str()]))
                .collect();
            panic!("at seq {seq} the page's state differs: {fields:#?}");
        }
    }
    drop(d);
    s.stop().await;
}
