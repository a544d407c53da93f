//! The load tool's full sitting (500 deputies, 63 sites, chair, clerk; votes, floor,
//! documents, then every client reconnecting at once) against the real server binary, on
//! SQLite and on PostgreSQL: no event lost, duplicated or reordered for any client.

mod support;

use std::process::Command as Process;
use support::TestDb;

const LOAD: &str = env!("CARGO_BIN_EXE_dienhong-load");

async fn run_sitting_against(db: String) {
    let report = tokio::task::spawn_blocking(move || {
        let (mut server, addr) =
            support::spawn_binary(&["demo", "--listen", "127.0.0.1:0", "--database", &db]);
        let out = Process::new(LOAD)
            .args(["--url", &format!("http://{addr}")])
            .env("RUST_LOG", "warn")
            .output()
            .expect("load tool runs");
        let _ = server.kill();
        let _ = server.wait();
        out
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&report.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&report.stderr));
    assert!(report.status.success(), "load tool failed");
    assert!(text.contains("clients: 564"), "{text}");
    assert!(
        text.contains("lost events: 0; duplicated events: 0; resumes answered with a snapshot: 0"),
        "{text}"
    );
    assert!(text.contains("(errors: 0)"), "{text}");
}

#[tokio::test]
async fn the_full_sitting_loses_nothing_on_sqlite() {
    let db = TestDb::sqlite();
    run_sitting_against(db.url.clone()).await;
}

#[tokio::test]
async fn the_full_sitting_loses_nothing_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    run_sitting_against(db.url.clone()).await;
    db.drop_db().await;
}
