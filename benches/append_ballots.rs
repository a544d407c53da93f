//! Appending a 500-ballot named vote to the event log, each ballot acknowledged only after
//! its commit.
//!
//! Two paths, on SQLite (a file, WAL, synchronous=FULL) and on PostgreSQL (if reachable at
//! `DIENHONG_TEST_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/test; a fresh
//! database is created and dropped):
//! - `sequential`: one ballot per transaction, one after another (the worst case: no two
//!   deputies press at the same moment);
//! - `writer`: 500 deputies press at once through the sitting writer, which group-commits
//!   what is waiting; each deputy's latency is from submit to acknowledgement.
//!
//! Besides criterion's timings, prints ballots/s and p50/p99/max per-ballot latency.
//! Run: `cargo bench --bench append_ballots`.

use criterion::{Criterion, criterion_group, criterion_main};
use dienhong::config::Config;
use dienhong::demo;
use dienhong::sitting::{
    self, ActorId, Choice, Command, ItemId, Method, Millis, SittingId, SittingState, VoteId,
};
use dienhong::store::{Head, Recorded, Store};
use dienhong::writer::{self, WriterSettings};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEPUTIES: u32 = 500;

/// One run: its wall time and each ballot's latency.
type Run = (Duration, Vec<Duration>);

struct Fixture {
    store: Store,
    sitting: SittingId,
    state: SittingState,
    head: Head,
    now: Millis,
    ids: Vec<ActorId>,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Fixture {
    async fn apply(&mut self, actor: &ActorId, commands: Vec<Command>) {
        let mut all = Vec::new();
        for c in commands {
            all.push(sitting::execute(&mut self.state, actor, &c, self.now).expect("accepted"));
        }
        let recs: Vec<Recorded<'_>> = all
            .iter()
            .map(|events| Recorded {
                at: self.now,
                actor,
                command_id: None,
                events,
            })
            .collect();
        let (head, _) = self
            .store
            .append(&self.sitting, &self.head, &recs)
            .await
            .expect("append");
        self.head = head;
    }

    /// A sitting with every deputy present and a named vote open on item 3.
    async fn new(
        url: String,
        dir: Option<tempfile::TempDir>,
        pg: Option<(String, String)>,
    ) -> Fixture {
        let store = Store::open(&url).await.expect("open");
        let config = Config::load_with_env(None, Vec::new()).expect("config");
        let delegations = config.delegations().expect("delegations");
        let sitting = SittingId::new("bench");
        let create =
            demo::create_command(&sitting, &delegations, DEPUTIES, 1, config.rules.clone())
                .expect("roster");
        store
            .create_sitting(&sitting, Millis(0))
            .await
            .expect("create");
        let mut f = Fixture {
            store,
            sitting,
            state: SittingState::default(),
            head: Head::EMPTY,
            now: Millis(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
            ),
            ids: Vec::new(),
            _dir: dir,
            pg,
        };
        f.apply(&ActorId::system(), vec![create]).await;
        f.ids = f
            .state
            .roster
            .actors
            .values()
            .filter(|a| a.has(sitting::Role::Deputy))
            .map(|a| a.id.clone())
            .collect();
        let chair = ActorId::new(demo::CHAIR);
        f.apply(
            &chair,
            vec![
                Command::OpenSitting,
                Command::SetCurrentItem { item: ItemId(3) },
            ],
        )
        .await;
        let clerk = ActorId::new(demo::CLERK1);
        let checkins = f
            .ids
            .iter()
            .map(|d| Command::CheckIn {
                deputy: d.clone(),
                location: None,
            })
            .collect();
        f.apply(&clerk, checkins).await;
        f
    }

    async fn open_vote(&mut self) -> VoteId {
        let chair = ActorId::new(demo::CHAIR);
        if let Some(v) = self.state.open_vote {
            self.apply(&chair, vec![Command::CloseVote { vote: v }])
                .await;
        }
        self.apply(
            &chair,
            vec![Command::OpenVote {
                question: "Bench".into(),
                method: Method::Named,
                rule: None,
                window_secs: Some(24 * 3600),
                allow_change: Some(false),
                rerun_of: None,
                step_up: None,
            }],
        )
        .await;
        self.state.open_vote.expect("open vote")
    }

    async fn drop_db(&self) {
        self.store.close().await;
        if let Some((base, name)) = &self.pg
            && let Ok(admin) = sqlx::PgPool::connect(base).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
        }
    }
}

async fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    Fixture::new(url, Some(dir), None).await
}

async fn postgres_fixture() -> Option<Fixture> {
    let base = std::env::var("DIENHONG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin = sqlx::PgPool::connect(&base).await.ok()?;
    let name = format!("dh_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .ok()?;
    let (prefix, _) = base.rsplit_once('/')?;
    let url = format!("{prefix}/{name}");
    Some(Fixture::new(url, None, Some((base, name))).await)
}

/// One ballot per transaction, sequentially. Returns per-ballot latencies.
async fn sequential(f: &mut Fixture) -> Vec<Duration> {
    let vote = f.open_vote().await;
    let mut lat = Vec::with_capacity(DEPUTIES as usize);
    for d in f.ids.clone() {
        let start = Instant::now();
        f.apply(
            &d,
            vec![Command::CastBallot {
                vote,
                choice: Choice::Yes,
            }],
        )
        .await;
        lat.push(start.elapsed());
    }
    lat
}

/// All deputies at once through the writer (group commit). Returns per-ballot latencies.
async fn through_writer(f: &mut Fixture) -> Vec<Duration> {
    let vote = f.open_vote().await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (handle, task) = writer::start(
        f.store.clone(),
        f.sitting.clone(),
        WriterSettings {
            max_batch: 64,
            tick: Duration::from_secs(3600),
            fanout_buffer: 1024,
        },
        None,
        stop_rx,
    )
    .await
    .expect("writer starts");
    let mut joins = Vec::new();
    for d in f.ids.clone() {
        let h = handle.clone();
        joins.push(tokio::spawn(async move {
            let start = Instant::now();
            h.submit(
                d,
                Command::CastBallot {
                    vote,
                    choice: Choice::No,
                },
            )
            .await
            .expect("acknowledged");
            start.elapsed()
        }));
    }
    let mut lat = Vec::new();
    for j in joins {
        lat.push(j.await.expect("join"));
    }
    stop.send_replace(true);
    let _ = task.await;
    // The writer moved the log on: pick up its state and head for the next round.
    let (state, head) = f.store.replay(&f.sitting).await.expect("replay");
    f.state = state;
    f.head = head;
    lat
}

fn report(name: &str, runs: &[Run]) {
    let mut all: Vec<Duration> = runs.iter().flat_map(|(_, l)| l.iter().copied()).collect();
    if all.is_empty() {
        return;
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    let total: Duration = runs.iter().map(|(t, _)| *t).sum();
    let rate = (runs.len() as f64 * f64::from(DEPUTIES)) / total.as_secs_f64();
    eprintln!(
        "RESULT {name}: {rate:.0} ballots/s over {} runs; per-ballot ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        runs.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all[all.len() - 1].as_secs_f64() * 1e3,
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("append_500_ballots");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));

    let mut backends: Vec<(&str, Fixture)> = vec![("sqlite", rt.block_on(sqlite_fixture()))];
    match rt.block_on(postgres_fixture()) {
        Some(f) => backends.push(("postgres", f)),
        None => eprintln!("postgres unreachable: benchmarking SQLite only"),
    }
    for (name, mut f) in backends {
        for (mode, writer_path) in [("sequential", false), ("writer", true)] {
            let runs: Arc<Mutex<Vec<Run>>> = Arc::default();
            let runs2 = runs.clone();
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let lat = rt.block_on(async {
                            if writer_path {
                                through_writer(&mut f).await
                            } else {
                                sequential(&mut f).await
                            }
                        });
                        // The writer run also starts the writer and replays the log
                        // afterwards; count only until the last acknowledgement.
                        let took = if writer_path {
                            lat.iter().max().copied().unwrap_or_default()
                        } else {
                            start.elapsed()
                        };
                        total += took;
                        if let Ok(mut r) = runs2.lock() {
                            r.push((took, lat));
                        }
                    }
                    total
                })
            });
            if let Ok(r) = runs.lock() {
                report(&format!("{name}/{mode}"), &r);
            }
        }
        rt.block_on(f.drop_db());
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
