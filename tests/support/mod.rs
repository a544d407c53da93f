//! Fixtures shared by the integration tests: a small roster, databases to test against
//! (a SQLite file in a temporary directory; a fresh PostgreSQL database per test).

#![allow(dead_code)]

pub mod rest;
pub mod ws;

use dienhong::sitting::{
    self, Actor, ActorId, Command, Delegation, DelegationCode, DelegationKind, Event, Millis, Role,
    Roster, Rules, SittingId, SittingState,
};
use dienhong::store::{Head, Recorded, Store};
use std::collections::BTreeSet;

/// The chair (also a deputy).
pub const CHAIR: &str = "CHAIR";
/// A clerk.
pub const CLERK: &str = "CLERK";
/// An observer.
pub const OBSERVER: &str = "OBS";

/// Deputy number `n` (1-based) of the small roster.
pub fn deputy(n: u32) -> ActorId {
    ActorId(format!("D{n:02}"))
}

/// A roster of a chamber, two delegations, a chair, a clerk, an observer and `n` deputies.
pub fn small_roster(n: u32) -> Roster {
    let delegation = |code: &str, name: &str, kind| Delegation {
        code: DelegationCode::new(code),
        name: name.to_owned(),
        kind,
        region: String::new(),
    };
    let actor = |id: &str, delegation: Option<&str>, roles: &[Role]| Actor {
        id: ActorId::new(id),
        name: format!("Người {id}"),
        delegation: delegation.map(DelegationCode::new),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
    };
    let mut actors = vec![
        actor(CHAIR, Some("01"), &[Role::Chair, Role::Deputy]),
        actor(CLERK, None, &[Role::Clerk]),
        actor(OBSERVER, None, &[Role::Observer]),
    ];
    for i in 1..=n {
        let code = if i % 2 == 0 { "01" } else { "79" };
        actors.push(actor(deputy(i).as_str(), Some(code), &[Role::Deputy]));
    }
    Roster::new(
        vec![
            delegation("00", "Hội trường", DelegationKind::Chamber),
            delegation("01", "Hà Nội", DelegationKind::Municipality),
            delegation("79", "Hồ Chí Minh", DelegationKind::Municipality),
        ],
        actors,
    )
    .expect("valid roster")
}

/// The command that creates a small test sitting.
pub fn create(sitting: &SittingId, deputies: u32) -> Command {
    Command::CreateSitting {
        sitting: sitting.clone(),
        title: "Phiên thử".into(),
        roster: small_roster(deputies),
        rules: Rules::default(),
        agenda: vec!["Mục 1".into(), "Mục 2".into(), "Mục 3".into()],
    }
}

/// A live sitting backed by a store: executes commands and appends their events.
pub struct Log {
    pub store: Store,
    pub sitting: SittingId,
    pub state: SittingState,
    pub head: Head,
    pub now: Millis,
}

impl Log {
    /// Creates the sitting in the store.
    pub async fn new(store: Store, sitting: &str, deputies: u32) -> Log {
        let sitting = SittingId::new(sitting);
        store
            .create_sitting(&sitting, Millis(1_000))
            .await
            .expect("create sitting");
        let mut log = Log {
            store,
            sitting: sitting.clone(),
            state: SittingState::default(),
            head: Head::EMPTY,
            now: Millis(1_000),
        };
        log.run(&ActorId::system(), create(&sitting, deputies))
            .await
            .expect("sitting created");
        log
    }

    /// Decides, applies and appends one command; returns its events or the rejection.
    pub async fn run(
        &mut self,
        actor: &ActorId,
        command: Command,
    ) -> Result<Vec<Event>, sitting::Rejection> {
        let events = sitting::execute(&mut self.state, actor, &command, self.now)?;
        if !events.is_empty() {
            let (head, _) = self
                .store
                .append(
                    &self.sitting,
                    &self.head,
                    &[Recorded {
                        at: self.now,
                        actor,
                        command_id: None,
                        events: &events,
                    }],
                )
                .await
                .expect("append");
            self.head = head;
        }
        Ok(events)
    }

    /// Runs a command that must be accepted.
    pub async fn ok(&mut self, actor: &str, command: Command) -> Vec<Event> {
        let name = format!("{command:?}");
        self.run(&ActorId::new(actor), command)
            .await
            .unwrap_or_else(|r| panic!("{actor} {name} rejected: {r}"))
    }
}

/// A database to test against; dropped (PostgreSQL) when the test ends.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A SQLite file in a fresh temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("log.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database, or None (with a note) if no server answers and
    /// `DIENHONG_REQUIRE_POSTGRES` is not set.
    pub async fn postgres() -> Option<TestDb> {
        let base = std::env::var("DIENHONG_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let required = std::env::var("DIENHONG_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let admin = match sqlx::PgPool::connect(&base).await {
            Ok(p) => p,
            Err(e) => {
                assert!(
                    !required,
                    "PostgreSQL required but unreachable at {base}: {e}"
                );
                eprintln!("skipping postgres: {base} unreachable: {e}");
                return None;
            }
        };
        let name = format!("dh_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        let (prefix, _) = base.rsplit_once('/').expect("url has a database");
        Some(TestDb {
            url: format!("{prefix}/{name}"),
            _dir: None,
            pg: Some((base, name)),
        })
    }

    /// Drops the PostgreSQL database (call after closing every pool on it).
    pub async fn drop_db(self) {
        if let Some((base, name)) = &self.pg
            && let Ok(admin) = sqlx::PgPool::connect(base).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

/// Runs a raw SQL statement on the test database (to tamper with rows).
pub async fn raw_execute(url: &str, sql: &str, binds: &[&str]) -> u64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        let n = q.execute(&pool).await.expect("raw sql").rows_affected();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        let n = q.execute(&pool).await.expect("raw sql").rows_affected();
        pool.close().await;
        n
    }
}

/// Every chain row body and every ballot-box row (as text) of the test database.
pub async fn raw_dump(url: &str) -> (Vec<String>, Vec<Vec<String>>, Vec<String>) {
    use sqlx::Row;
    macro_rules! dump {
        ($pool:expr, $cols_sql:expr) => {{
            let pool = $pool;
            let bodies: Vec<String> = sqlx::query("SELECT body FROM events ORDER BY sitting, seq")
                .fetch_all(&pool)
                .await
                .expect("bodies")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            let rows: Vec<Vec<String>> = sqlx::query(
                "SELECT sitting, hex_token, CAST(vote AS TEXT), choice FROM (SELECT sitting, vote, choice, token AS hex_token FROM ballot_box) b",
            )
            .fetch_all(&pool)
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        vec![
                            r.get::<String, _>(0),
                            format!("{:?}", r.get::<Vec<u8>, _>(1)),
                            r.get::<String, _>(2),
                            r.get::<String, _>(3),
                        ]
                    })
                    .collect()
            })
            .expect("ballot box");
            let cols: Vec<String> = sqlx::query($cols_sql)
                .fetch_all(&pool)
                .await
                .expect("columns")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            pool.close().await;
            (bodies, rows, cols)
        }};
    }
    if url.starts_with("sqlite:") {
        dump!(
            sqlx::SqlitePool::connect(url).await.expect("sqlite"),
            "SELECT name FROM pragma_table_info('ballot_box') ORDER BY cid"
        )
    } else {
        dump!(
            sqlx::PgPool::connect(url).await.expect("postgres"),
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'ballot_box' ORDER BY ordinal_position"
        )
    }
}

/// The configuration for a SQLite file at `db`, with extra `DIENHONG__…` overrides.
pub fn config_for(db: &std::path::Path, extra: &[(&str, &str)]) -> dienhong::config::Config {
    let mut env = vec![(
        "DIENHONG__DATABASE__URL".to_owned(),
        format!("sqlite:{}", db.display()),
    )];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    dienhong::config::Config::load_with_env(None, env).expect("config")
}

/// The server started in-process with `run()` on port 0, the demo sitting seeded.
pub struct InProcess {
    pub app: std::sync::Arc<dienhong::server::App>,
    pub addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcess {
    /// Starts the app and serves it on 127.0.0.1:0.
    pub async fn start(config: &dienhong::config::Config) -> InProcess {
        let app = dienhong::server::App::start(config, true)
            .await
            .expect("app starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(dienhong::server::run(listener, app.clone(), async move {
            let _ = rx.await;
        }));
        InProcess {
            app,
            addr,
            stop,
            task,
        }
    }

    /// Shuts down as on SIGTERM and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("served");
    }
}

/// Starts the real `dienhong` binary and waits for its "listening on" line.
pub fn spawn_binary(args: &[&str]) -> (std::process::Child, String) {
    let (child, addr, _) = spawn_binary_env(args, &[]);
    (child, addr)
}

/// Every line the binary has written to stderr so far.
pub type Lines = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// As [`spawn_binary`], with `env` set, also keeping every line of its log.
pub fn spawn_binary_env(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String, Lines) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dienhong"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let lines = Lines::default();
    let kept = lines.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
            if let Ok(mut k) = kept.lock() {
                k.push(line);
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "server reports its address; its log: {:?}",
                lines.lock().map(|l| l.clone()).unwrap_or_default()
            )
        });
    (child, addr, lines)
}

/// Sends SIGTERM.
pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}
