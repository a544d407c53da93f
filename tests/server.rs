//! The server end to end: the real binary and `run()` on port 0 against a real SQLite file.

mod support;

use dienhong::config::Config;
use dienhong::demo;
use dienhong::sitting::{ActorId, Choice, Code, Command, Method, Phase, SittingId, VoteId};
use dienhong::writer::SubmitError;
use std::process::{Command as Process, Stdio};
use support::{InProcess, sigterm, spawn_binary};

const BIN: &str = env!("CARGO_BIN_EXE_dienhong");

fn config_for(db: &std::path::Path) -> Config {
    support::config_for(db, &[])
}

async fn start(config: &Config) -> InProcess {
    InProcess::start(config).await
}

fn sitting_id(config: &Config) -> SittingId {
    SittingId::new(&config.demo.sitting)
}

fn actor(s: &str) -> ActorId {
    ActorId::new(s)
}

#[tokio::test]
async fn a_newcomer_gets_health_readiness_and_the_seeded_demo_sitting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(&dir.path().join("d.db"));
    let running = start(&config).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let list: serde_json::Value = client
        .get(format!("{base}/api/sittings"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["members"], 500);
    assert_eq!(list[0]["phase"], "scheduled");
    assert_eq!(list[0]["agenda"].as_array().map(Vec::len), Some(4));
    let missing = client
        .get(format!("{base}/api/sittings/nope"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.expect("json error");
    assert_eq!(body["code"], "no_such_sitting");
    let page = client.get(&base).send().await.expect("index");
    let page = page.text().await.expect("text");
    assert!(page.contains("<html lang=\"vi\""), "{page}");
    assert!(
        page.contains("href=\"/login\""),
        "the public page leads to the log-in: {page}"
    );
    for path in ["/login", "/deputy", "/chair", "/clerk", "/room", "/display"] {
        let r = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect(path);
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/html")),
            "{path}"
        );
    }
    let script = client
        .get(format!("{base}/js/core.js"))
        .send()
        .await
        .expect("core.js");
    assert_eq!(script.status(), 200);
    let etag = script.headers()["etag"].clone();
    let again = client
        .get(format!("{base}/js/core.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("core.js again");
    assert_eq!(
        again.status(),
        304,
        "a script the browser has is not sent again"
    );
    let outside = client
        .get(format!("{base}/js/..%2f..%2fCargo.toml"))
        .send()
        .await
        .expect("outside");
    assert_eq!(outside.status(), 404);
    running.stop().await;
}

#[tokio::test]
async fn a_sitting_runs_through_the_writer_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(&dir.path().join("d.db"));
    let id = sitting_id(&config);
    let running = start(&config).await;
    let h = running.app.sitting(&id).expect("demo sitting").clone();
    h.submit(actor(demo::CHAIR), Command::OpenSitting)
        .await
        .expect("open");
    let refused = h.submit(actor("DB001"), Command::OpenSitting).await;
    assert!(matches!(refused, Err(SubmitError::Rejected(r)) if r.code == Code::NotPermitted));
    for n in 1..=400 {
        h.submit(
            demo::deputy_id(n),
            Command::CheckIn {
                deputy: demo::deputy_id(n),
                location: None,
            },
        )
        .await
        .expect("check in");
    }
    h.submit(
        actor(demo::CHAIR),
        Command::SetCurrentItem {
            item: dienhong::sitting::ItemId(3),
        },
    )
    .await
    .expect("item");
    h.submit(
        actor(demo::CHAIR),
        Command::OpenVote {
            question: "Thông qua Nghị quyết".into(),
            method: Method::Named,
            rule: None,
            window_secs: Some(600),
            allow_change: None,
            rerun_of: None,
            step_up: None,
        },
    )
    .await
    .expect("vote opens");
    // 300 ballots submitted concurrently: group commit, every one acknowledged after commit.
    let mut tasks = Vec::new();
    for n in 1..=300u32 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let choice = if n % 10 == 0 { Choice::No } else { Choice::Yes };
            h.submit(
                demo::deputy_id(n),
                Command::CastBallot {
                    vote: VoteId(1),
                    choice,
                },
            )
            .await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("join").expect("ballot acknowledged").seq);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 300, "every ballot has its own sequence number");
    let before = h.summary();
    assert_eq!(before.present, 400);
    assert_eq!(before.open_vote.as_ref().map(|v| v.participants), Some(300));
    running.stop().await;

    let again = start(&config).await;
    let h2 = again.app.sitting(&id).expect("sitting after restart");
    assert_eq!(
        *h2.summary(),
        *before,
        "replay rebuilds exactly what was acknowledged"
    );
    let closed = h2
        .submit(actor(demo::CHAIR), Command::CloseVote { vote: VoteId(1) })
        .await;
    assert!(closed.is_ok());
    let (state, _) = again.app.store().replay(&id).await.expect("replay");
    let vote = &state.votes[&VoteId(1)];
    assert_eq!(vote.tally.yes, 270);
    assert_eq!(vote.tally.no, 30);
    assert_eq!(state.phase, Phase::Open);
    again.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_every_command_already_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_for(&dir.path().join("d.db"));
    let id = sitting_id(&config);
    let running = start(&config).await;
    let h = running.app.sitting(&id).expect("sitting").clone();
    let mut tasks = Vec::new();
    for n in 1..=200 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.submit(
                demo::deputy_id(n),
                Command::CheckIn {
                    deputy: demo::deputy_id(n),
                    location: None,
                },
            )
            .await
        }));
    }
    tokio::task::yield_now().await;
    running.stop().await;
    let mut acked = Vec::new();
    for (n, t) in tasks.into_iter().enumerate() {
        match t.await.expect("join") {
            Ok(_) => acked.push(demo::deputy_id(u32::try_from(n + 1).expect("small"))),
            Err(SubmitError::Unavailable) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    let again = start(&config).await;
    let (state, _) = again.app.store().replay(&id).await.expect("replay");
    for d in &acked {
        assert!(state.is_present(d), "acknowledged check-in of {d} was lost");
    }
    assert_eq!(
        state.present.len(),
        acked.len(),
        "nothing unacknowledged was applied"
    );
    again.stop().await;
}

#[tokio::test]
async fn the_binary_serves_the_demo_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("bin.db").display());
    let (mut child, addr) = spawn_binary(&["demo", "--listen", "127.0.0.1:0", "--database", &db]);
    let body = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .expect("readyz")
        .text()
        .await
        .expect("text");
    assert_eq!(body, "ready");
    sigterm(&child);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let out = Process::new(BIN)
        .args(["verify", "--database", &db])
        .output()
        .expect("verify runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ok 1 events"));
    // The audit trail: nobody logged in.
    assert_eq!(lines.next(), Some("audit trail ok 0 entries"));
}

async fn login_status(addr: &str, code: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/login"))
        .json(&serde_json::json!({"code": code, "password": password}))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_operator_sets_a_password_and_only_the_new_one_logs_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("pw.db").display());
    let (mut child, addr) = spawn_binary(&["demo", "--listen", "127.0.0.1:0", "--database", &db]);
    assert_eq!(login_status(&addr, "DB001", "demo").await, 200);
    sigterm(&child);
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;

    let set = |password: &'static str| {
        let mut p = Process::new(BIN)
            .args(["passwd", "DB001", "--database", &db])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("passwd runs");
        use std::io::Write;
        p.stdin
            .take()
            .expect("stdin")
            .write_all(password.as_bytes())
            .expect("write");
        p.wait().expect("wait")
    };
    assert!(!set("short\n").success(), "short passwords are refused");
    assert!(set("một mật khẩu dài\n").success());

    let (mut child, addr) = spawn_binary(&["demo", "--listen", "127.0.0.1:0", "--database", &db]);
    assert_eq!(login_status(&addr, "DB001", "một mật khẩu dài").await, 200);
    assert_eq!(login_status(&addr, "DB001", "demo").await, 401);
    assert_eq!(login_status(&addr, "DB002", "demo").await, 200);
    assert_eq!(login_status(&addr, "NOBODY", "demo").await, 401);
    sigterm(&child);
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
}

#[tokio::test]
async fn an_operator_creates_a_real_sitting_from_a_roster_and_an_agenda() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("real.db").display());
    let roster = dir.path().join("roster.tsv");
    let agenda = dir.path().join("agenda.txt");
    std::fs::write(
        &roster,
        "code\tname\tdelegation\troles\nCT\tChủ tịch\t01\tchair,deputy\nD1\tĐại biểu Một\t79\tdeputy\nD2\tĐại biểu Hai\t02\tdeputy\nTK\tThư ký\t\tclerk\n",
    )
    .expect("roster");
    std::fs::write(&agenda, "Khai mạc\n\nThảo luận\nBế mạc\n").expect("agenda");
    let create = |roster: &std::path::Path| {
        Process::new(BIN)
            .args([
                "create-sitting",
                "--id",
                "kh10-p1",
                "--title",
                "Phiên thứ nhất",
            ])
            .arg("--roster")
            .arg(roster)
            .arg("--agenda")
            .arg(&agenda)
            .args(["--database", &db])
            .output()
            .expect("runs")
    };
    assert!(create(&roster).status.success());
    assert!(
        !create(&roster).status.success(),
        "the same id twice is refused"
    );
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "code\tname\tdelegation\troles\nX\tY\t99\tdeputy\n").expect("bad");
    let out = Process::new(BIN)
        .args(["create-sitting", "--id", "other", "--title", "T"])
        .arg("--roster")
        .arg(&bad)
        .arg("--agenda")
        .arg(&agenda)
        .args(["--database", &db])
        .output()
        .expect("runs");
    assert!(
        !out.status.success(),
        "a deputy of an unknown delegation is refused"
    );

    let (child, addr) = spawn_binary(&["serve", "--listen", "127.0.0.1:0", "--database", &db]);
    let list: serde_json::Value = reqwest::get(format!("http://{addr}/api/sittings"))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["sitting"], "kh10-p1");
    assert_eq!(list[0]["members"], 3);
    assert_eq!(list[0]["agenda"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        login_status(&addr, "CT", "demo").await,
        401,
        "no password until set"
    );
    sigterm(&child);
}
