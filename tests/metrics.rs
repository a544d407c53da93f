//! `GET /metrics` scraped after a few commands over real WebSockets: the counts match what the
//! test did. One test in its own binary, since a process has one metrics recorder.

mod support;

use serde_json::json;
use support::ws::start;

/// The value of the sample `name{labels}` (labels as Prometheus writes them), if present.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

#[tokio::test]
async fn the_scrape_counts_connections_commands_by_outcome_and_commits() {
    let s = start().await;
    let scrape = || async {
        reqwest::get(format!("http://{}/metrics", s.addr))
            .await
            .expect("get")
            .text()
            .await
            .expect("text")
    };
    let mut chair = s.client("CHAIR").await;
    let mut deputy = s.client("DB001").await;
    chair.ok(json!({"command": "open_sitting"})).await;
    // A deputy may not open the sitting; nor can it be opened twice.
    let refused = deputy.command(json!({"command": "open_sitting"})).await;
    assert_eq!(refused["code"], "not_permitted");
    let refused = chair.command(json!({"command": "open_sitting"})).await;
    assert_eq!(refused["code"], "wrong_phase");
    deputy
        .ok(json!({"command": "check_in", "deputy": "DB001"}))
        .await;

    let text = scrape().await;
    let count = |series: &str| sample(&text, series).unwrap_or(-1.0);
    assert_eq!(
        count(r#"dienhong_commands_total{command="open_sitting",outcome="accepted"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(r#"dienhong_commands_total{command="open_sitting",outcome="not_permitted"}"#),
        1.0
    );
    assert_eq!(
        count(r#"dienhong_commands_total{command="open_sitting",outcome="wrong_phase"}"#),
        1.0
    );
    assert_eq!(
        count(r#"dienhong_commands_total{command="check_in",outcome="accepted"}"#),
        1.0
    );
    assert_eq!(count("dienhong_ws_connections"), 2.0);
    // Each client sent its subscribe and its commands.
    assert!(
        count("dienhong_ws_messages_received_total") >= 6.0,
        "{text}"
    );
    assert!(count("dienhong_ws_messages_sent_total") >= 6.0);
    // Two commits (the opening and the check-in) at least, each appended and timed.
    assert!(count("dienhong_commit_commands_count") >= 2.0, "{text}");
    assert!(count("dienhong_log_events_total") >= 2.0);
    assert!(count(r#"dienhong_stage_seconds_count{stage="commit"}"#) >= 2.0);
    assert!(text.contains(r#"dienhong_stage_seconds_bucket{stage="fanout",le="0.001"}"#));
    assert!(text.contains("# HELP dienhong_commands_total"));

    // A connection that goes is counted out.
    drop(deputy);
    let mut gone = false;
    for _ in 0..100 {
        if sample(&scrape().await, "dienhong_ws_connections") == Some(1.0) {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "the closed connection is still counted");
    s.stop().await;
}
