//! The load tool's full sitting (500 deputies, 63 sites, chair, clerk; votes, floor,
//! documents, then every client reconnecting at once) against the real server binary, on
//! SQLite and on PostgreSQL: no event lost, duplicated or reordered for any client.

use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

const SERVER: &str = env!("CARGO_BIN_EXE_dienhong");
const LOAD: &str = env!("CARGO_BIN_EXE_dienhong-load");

fn run_sitting_against(db: &str) {
    let mut server = Process::new(SERVER)
        .args(["demo", "--listen", "127.0.0.1:0", "--database", db])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let stderr = server.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server reports its address");
    let out = Process::new(LOAD)
        .args(["--url", &format!("http://{addr}")])
        .env("RUST_LOG", "warn")
        .output()
        .expect("load tool runs");
    let _ = server.kill();
    let _ = server.wait();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "load tool failed");
    assert!(report.contains("clients: 564"), "{report}");
    assert!(
        report
            .contains("lost events: 0; duplicated events: 0; resumes answered with a snapshot: 0"),
        "{report}"
    );
    assert!(report.contains("(errors: 0)"), "{report}");
}

#[test]
fn the_full_sitting_loses_nothing_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_sitting_against(&format!("sqlite:{}", dir.path().join("load.db").display()));
}

#[test]
fn the_full_sitting_loses_nothing_on_postgres() {
    let base = std::env::var("DIENHONG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let required = std::env::var("DIENHONG_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let admin = match rt.block_on(sqlx::PgPool::connect(&base)) {
        Ok(p) => p,
        Err(e) => {
            assert!(
                !required,
                "PostgreSQL required but unreachable at {base}: {e}"
            );
            eprintln!("skipping postgres: {base} unreachable: {e}");
            return;
        }
    };
    let name = format!("dh_load_{}", uuid::Uuid::new_v4().simple());
    rt.block_on(sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin))
        .expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("url has a database");
    run_sitting_against(&format!("{prefix}/{name}"));
    let _ = rt.block_on(
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin),
    );
}
