//! The event log: durable, hash-chained, on sqlx (SQLite by default, PostgreSQL by URL).
//!
//! Each sitting has its own chain. Every accepted command's events are appended in one
//! transaction (several commands may share one: group commit) before anyone is told. A row
//! carries its sequence number, time, actor, the client's command id, the canonical JSON
//! body and `hash = sha256(prev_hash ‖ body)`, where the body is the serialization of
//! `{seq, at, actor, command_id, event}` (fields in that order), so sequence, time and actor
//! are covered by the hash too. The first row's `prev_hash` is 32 zero bytes.
//!
//! Secret ballots: a `SecretChoice` event is never a chain row. It goes, in the same
//! transaction, into `ballot_box` as `(sitting, token, vote, choice)` with a random 16-byte
//! token as key: no actor, no time, no sequence number. On SQLite the table is `WITHOUT
//! ROWID`, so rows are stored in token order, not arrival order. The chain records only who
//! took part (`SecretBallotTaken`). Residual physical-level caveats, outside what the tables
//! hold: until a checkpoint, SQLite's WAL keeps page images per transaction; PostgreSQL's
//! heap keeps rows in insertion order with the inserting transaction id (`xmin`). An
//! operator with raw file access during a vote could correlate those with the chain; a
//! deployment that must resist its own database administrators needs a cryptographic
//! ballot scheme on top.
//!
//! Replay folds the chain through `sitting::apply`, checking every hash, then applies the
//! ballot box (tallies commute, so order does not matter). `verify` reports the first row
//! that does not check, and whether each secret vote's ballot box matches its record.

use crate::checkpoint::{Checkpoint, LogFacts};
use crate::sitting::{self, ActorId, Choice, Event, Millis, SittingId, SittingState, VoteId};
use crate::stages::{self, Stage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

/// A store error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An event could not be encoded.
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// Another writer moved the head: the append was not made.
    #[error("sitting {sitting}: the log head is no longer at {expected}")]
    Conflict {
        /// The sitting.
        sitting: String,
        /// The head the writer expected.
        expected: u64,
    },
    /// No such sitting.
    #[error("no sitting {0}")]
    UnknownSitting(String),
    /// The sitting exists already.
    #[error("sitting {0} already exists")]
    AlreadyExists(String),
    /// The chain does not verify.
    #[error("the log is corrupt at seq {seq}: {reason}")]
    Corrupt {
        /// First bad sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The database URL is not understood.
    #[error("unsupported database URL {0:?} (use sqlite:PATH or postgres://…)")]
    InvalidUrl(String),
}

/// The end of a chain: its last sequence number and hash (0 and zeros when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Last sequence number.
    pub seq: u64,
    /// Last hash.
    pub hash: [u8; 32],
}

impl Head {
    /// The head of an empty chain.
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: [0; 32],
    };
}

/// A sitting as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SittingMeta {
    /// Id.
    pub sitting: SittingId,
    /// Random id of this log, so clients notice a log that was replaced.
    pub epoch: String,
    /// When it was created.
    pub created_at: Millis,
}

/// The events of one accepted command.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    /// When it was decided.
    pub at: Millis,
    /// Who issued it.
    pub actor: &'a ActorId,
    /// The client's command id, for idempotent retries.
    pub command_id: Option<&'a str>,
    /// Its events (sealed ones go to the ballot box).
    pub events: &'a [Event],
}

/// One chain event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Sequence number.
    pub seq: u64,
    /// When.
    pub at: Millis,
    /// Who.
    pub actor: ActorId,
    /// The client's command id.
    pub command_id: Option<String>,
    /// The event.
    pub event: Event,
    /// Its hash.
    pub hash: [u8; 32],
}

/// The outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every row checks.
    Ok {
        /// Number of chain events.
        events: u64,
    },
    /// The first row that does not check.
    Broken {
        /// Its sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct ChainRecord {
    seq: u64,
    at: Millis,
    actor: ActorId,
    command_id: Option<String>,
    event: Event,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The event store. Cheap to clone (pool handles).
///
/// Appends to the log have connections of their own ([`APPEND_CONNECTIONS`]), apart from
/// the pool every other query shares: a writer about to commit a vote never queues behind
/// readers (connections catching up from the log, exports, the minutes).
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    appends: Backend,
}

/// Connections kept for the log's appends: one per sitting writing at the same moment is
/// enough, and on SQLite only one transaction writes at a time anyway.
pub const APPEND_CONNECTIONS: u32 = 2;

/// Connections every other query shares, on SQLite.
const SHARED_CONNECTIONS_SQLITE: u32 = 4;

/// Connections every other query shares, on PostgreSQL.
const SHARED_CONNECTIONS_POSTGRES: u32 = 8;

/// Events per `INSERT` statement: 9 bound values each, well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound values per statement.
const EVENT_ROWS_PER_INSERT: usize = 1000;

/// Expands `$body` once per backend with `$pool` bound to the concrete pool of `$backend`,
/// so each query is written once and runs on both databases (`$1` placeholders work on
/// both).
macro_rules! with_backend {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// [`with_backend!`] on the pool every query but the log's appends shares.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        with_backend!(&$store.backend, $pool => $body)
    };
}

/// [`with_backend!`] on the connections kept for the log's appends.
macro_rules! with_append_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        with_backend!(&$store.appends, $pool => $body)
    };
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so that a transaction that reads first and then writes waits for
/// another writer (the audit trail, another sitting) under the busy timeout, instead of
/// failing when that writer committed after its read began.
async fn begin_write<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
    if DB::NAME == "SQLite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

fn hash_of(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn choice_name(c: Choice) -> &'static str {
    match c {
        Choice::Yes => "yes",
        Choice::No => "no",
        Choice::Abstain => "abstain",
    }
}

fn parse_choice(s: &str) -> Option<Choice> {
    match s {
        "yes" => Some(Choice::Yes),
        "no" => Some(Choice::No),
        "abstain" => Some(Choice::Abstain),
        _ => None,
    }
}

/// A chain row ready to insert: seq, at, actor, kind, command id, body, prev hash, hash.
type ChainRow<'a> = (
    u64,
    i64,
    &'a str,
    &'static str,
    Option<&'a str>,
    String,
    [u8; 32],
    [u8; 32],
);

/// A raw chain row.
struct Row0 {
    seq: i64,
    body: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// Checks a row's place in a hash chain (a sitting's log or the audit trail): its sequence
/// number follows, it links to the previous row, and its hash covers its body.
fn check_link(row: &Row0, expect_seq: u64, prev: &[u8; 32]) -> Result<(), String> {
    if to_u64(row.seq) != expect_seq {
        return Err(format!("expected seq {expect_seq}, found {}", row.seq));
    }
    if row.prev_hash.as_slice() != prev {
        return Err("prev_hash does not match the previous row's hash".into());
    }
    if hash_of(prev, row.body.as_bytes()).as_slice() != row.hash.as_slice() {
        return Err("hash does not match sha256(prev_hash ‖ body)".into());
    }
    Ok(())
}

/// Parses stored JSON bodies, each with the seq it is kept at; a body that does not parse is
/// the store's corruption at that seq.
fn parse_bodies<T: serde::de::DeserializeOwned>(
    rows: Vec<(i64, String)>,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter()
        .map(|(seq, body)| {
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                seq: to_u64(seq),
                reason: format!("{what} does not parse: {e}"),
            })
        })
        .collect()
}

/// Checks one raw row against the running chain; returns the parsed record.
fn check_row(row: &Row0, expect_seq: u64, prev: &[u8; 32]) -> Result<ChainRecord, String> {
    check_link(row, expect_seq, prev)?;
    let record: ChainRecord =
        serde_json::from_str(&row.body).map_err(|e| format!("body does not parse: {e}"))?;
    if record.seq != expect_seq {
        return Err(format!("body names seq {}", record.seq));
    }
    if record.event.is_sealed() {
        return Err("a sealed event is in the chain".into());
    }
    Ok(record)
}

impl Store {
    /// Opens (and creates, for SQLite) the database at `url` and runs the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let (backend, appends) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let pool = |n: u32| {
                    PgPoolOptions::new()
                        .max_connections(n)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect(url)
                };
                let shared = pool(SHARED_CONNECTIONS_POSTGRES).await?;
                sqlx::migrate!("src/store/migrations/postgres")
                    .run(&shared)
                    .await?;
                let appends = pool(APPEND_CONNECTIONS).await?;
                (Backend::Postgres(shared), Backend::Postgres(appends))
            } else if url.starts_with("sqlite:") {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                let pool = |n: u32| {
                    SqlitePoolOptions::new()
                        .max_connections(n)
                        .connect_with(options.clone())
                };
                let shared = pool(SHARED_CONNECTIONS_SQLITE).await?;
                sqlx::migrate!("src/store/migrations/sqlite")
                    .run(&shared)
                    .await?;
                let appends = pool(APPEND_CONNECTIONS).await?;
                (Backend::Sqlite(shared), Backend::Sqlite(appends))
            } else {
                return Err(StoreError::InvalidUrl(url.to_owned()));
            };
        Ok(Store { backend, appends })
    }

    /// "sqlite" or "postgres".
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes the pools, waiting for connections in use.
    pub async fn close(&self) {
        with_append_pool!(self, pool => pool.close().await);
        with_pool!(self, pool => pool.close().await)
    }

    /// Registers a new sitting with a fresh random epoch.
    pub async fn create_sitting(
        &self,
        sitting: &SittingId,
        now: Millis,
    ) -> Result<SittingMeta, StoreError> {
        let epoch = uuid::Uuid::new_v4().simple().to_string();
        let done = with_pool!(self, pool => sqlx::query(
            "INSERT INTO sittings (sitting, epoch, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (sitting) DO NOTHING",
        )
        .bind(sitting.as_str())
        .bind(&epoch)
        .bind(now.0)
        .execute(pool)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(StoreError::AlreadyExists(sitting.0.clone()));
        }
        Ok(SittingMeta {
            sitting: sitting.clone(),
            epoch,
            created_at: now,
        })
    }

    /// Every sitting, oldest first.
    pub async fn sittings(&self) -> Result<Vec<SittingMeta>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT sitting, epoch, created_at_ms FROM sittings ORDER BY created_at_ms, sitting",
        )
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(s, epoch, at)| SittingMeta {
                sitting: SittingId(s),
                epoch,
                created_at: Millis(at),
            })
            .collect())
    }

    /// One sitting.
    pub async fn sitting(&self, sitting: &SittingId) -> Result<SittingMeta, StoreError> {
        self.sittings()
            .await?
            .into_iter()
            .find(|m| &m.sitting == sitting)
            .ok_or_else(|| StoreError::UnknownSitting(sitting.0.clone()))
    }

    /// The head of a sitting's chain.
    pub async fn head(&self, sitting: &SittingId) -> Result<Head, StoreError> {
        let row: Option<(i64, Vec<u8>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT seq, hash FROM events WHERE sitting = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(sitting.as_str())
        .fetch_optional(pool)
        .await?);
        Ok(match row {
            None => Head::EMPTY,
            Some((seq, hash)) => Head {
                seq: to_u64(seq),
                hash: hash.try_into().map_err(|_| StoreError::Corrupt {
                    seq: to_u64(seq),
                    reason: "hash is not 32 bytes".into(),
                })?,
            },
        })
    }

    /// Appends the events of several commands in one transaction. Returns the new head and,
    /// per command, the sequence number of its last chain event (the previous head's if it
    /// had none). Fails with `Conflict`, writing nothing, if `expected` is not the head.
    pub async fn append(
        &self,
        sitting: &SittingId,
        expected: &Head,
        batch: &[Recorded<'_>],
    ) -> Result<(Head, Vec<u64>), StoreError> {
        // Encode everything before touching the database.
        let mut rows: Vec<ChainRow<'_>> = Vec::new();
        let mut sealed: Vec<([u8; 16], u32, &'static str)> = Vec::new();
        let mut last_seqs = Vec::with_capacity(batch.len());
        let mut head = *expected;
        for rec in batch {
            for event in rec.events {
                if let Event::SecretChoice { vote, choice } = event {
                    sealed.push((
                        *uuid::Uuid::new_v4().as_bytes(),
                        vote.0,
                        choice_name(*choice),
                    ));
                    continue;
                }
                let seq = head.seq + 1;
                let body = serde_json::to_string(&ChainRecord {
                    seq,
                    at: rec.at,
                    actor: rec.actor.clone(),
                    command_id: rec.command_id.map(str::to_owned),
                    event: event.clone(),
                })?;
                let hash = hash_of(&head.hash, body.as_bytes());
                rows.push((
                    seq,
                    rec.at.0,
                    rec.actor.as_str(),
                    event.kind(),
                    rec.command_id,
                    body,
                    head.hash,
                    hash,
                ));
                head = Head { seq, hash };
            }
            last_seqs.push(head.seq);
        }
        let conflict = || StoreError::Conflict {
            sitting: sitting.0.clone(),
            expected: expected.seq,
        };
        with_append_pool!(self, pool => {
            let beginning = std::time::Instant::now();
            let mut tx = begin_write(pool).await?;
            stages::record(Stage::Begin, beginning.elapsed());
            let current: Option<(i64,)> = sqlx::query_as(
                "SELECT seq FROM events WHERE sitting = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(sitting.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if current.map_or(0, |(s,)| to_u64(s)) != expected.seq {
                return Err(conflict());
            }
            // The commit's events in as few statements as the bind limits allow (one for
            // any usual commit): one round trip to the database, not one per event.
            for chunk in rows.chunks(EVENT_ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO events (sitting, seq, at_ms, actor, kind, command_id, body, prev_hash, hash) ",
                );
                insert.push_values(chunk, |mut row, (seq, at, actor, kind, command_id, body, prev, hash)| {
                    row.push_bind(sitting.as_str())
                        .push_bind(to_i64(*seq))
                        .push_bind(*at)
                        .push_bind(*actor)
                        .push_bind(*kind)
                        .push_bind(*command_id)
                        .push_bind(body.as_str())
                        .push_bind(prev.as_slice())
                        .push_bind(hash.as_slice());
                });
                let inserted = insert.build().execute(&mut *tx).await;
                match inserted {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(conflict()),
                    Err(e) => return Err(e.into()),
                }
            }
            for (token, vote, choice) in &sealed {
                sqlx::query(
                    "INSERT INTO ballot_box (sitting, token, vote, choice) VALUES ($1, $2, $3, $4)",
                )
                .bind(sitting.as_str())
                .bind(token.as_slice())
                .bind(i64::from(*vote))
                .bind(*choice)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok((head, last_seqs))
    }

    async fn raw_rows(
        &self,
        sitting: &SittingId,
        after: u64,
        limit: i64,
    ) -> Result<Vec<Row0>, StoreError> {
        let rows = with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT seq, body, prev_hash, hash FROM events \
                 WHERE sitting = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(sitting.as_str())
            .bind(to_i64(after))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Row0 {
                        seq: r.try_get("seq")?,
                        body: r.try_get("body")?,
                        prev_hash: r.try_get("prev_hash")?,
                        hash: r.try_get("hash")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Chain events after `after`, at most `limit`, in order.
    pub async fn events_after(
        &self,
        sitting: &SittingId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self.raw_rows(sitting, after, i64::from(limit)).await?;
        rows.into_iter()
            .map(|r| {
                let seq = to_u64(r.seq);
                let record: ChainRecord =
                    serde_json::from_str(&r.body).map_err(|e| StoreError::Corrupt {
                        seq,
                        reason: format!("body does not parse: {e}"),
                    })?;
                Ok(StoredEvent {
                    seq,
                    at: record.at,
                    actor: record.actor,
                    command_id: record.command_id,
                    event: record.event,
                    hash: r.hash.try_into().unwrap_or([0; 32]),
                })
            })
            .collect()
    }

    /// The ballot box of a sitting: (vote, choice) rows, in token order.
    pub async fn ballot_box(
        &self,
        sitting: &SittingId,
    ) -> Result<Vec<(VoteId, Choice)>, StoreError> {
        let rows: Vec<(i64, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT vote, choice FROM ballot_box WHERE sitting = $1 ORDER BY token",
        )
        .bind(sitting.as_str())
        .fetch_all(pool)
        .await?);
        rows.into_iter()
            .map(|(vote, choice)| {
                let vote = u32::try_from(vote).map_err(|_| StoreError::Corrupt {
                    seq: 0,
                    reason: format!("ballot box names vote {vote}"),
                })?;
                let choice = parse_choice(&choice).ok_or_else(|| StoreError::Corrupt {
                    seq: 0,
                    reason: format!("ballot box holds choice {choice:?}"),
                })?;
                Ok((VoteId(vote), choice))
            })
            .collect()
    }

    /// Walks the whole chain in pages, calling `f` for each checked record.
    async fn walk(
        &self,
        sitting: &SittingId,
        mut f: impl FnMut(u64, ChainRecord, &[u8; 32]),
    ) -> Result<Result<Head, (u64, String)>, StoreError> {
        const PAGE: i64 = 2000;
        let mut head = Head::EMPTY;
        loop {
            let rows = self.raw_rows(sitting, head.seq, PAGE).await?;
            let n = rows.len();
            for row in rows {
                let seq = head.seq + 1;
                match check_row(&row, seq, &head.hash) {
                    Ok(record) => {
                        let hash = row.hash.as_slice().try_into().unwrap_or([0; 32]);
                        f(seq, record, &hash);
                        head = Head { seq, hash };
                    }
                    Err(reason) => return Ok(Err((seq, reason))),
                }
            }
            if (n as i64) < PAGE {
                return Ok(Ok(head));
            }
        }
    }

    /// Rebuilds a sitting's state from its log, checking the chain.
    pub async fn replay(&self, sitting: &SittingId) -> Result<(SittingState, Head), StoreError> {
        let mut state = SittingState::default();
        let head = match self
            .walk(sitting, |_, record, _| {
                sitting::apply(&mut state, &record.event)
            })
            .await?
        {
            Ok(head) => head,
            Err((seq, reason)) => return Err(StoreError::Corrupt { seq, reason }),
        };
        for (vote, choice) in self.ballot_box(sitting).await? {
            sitting::apply(&mut state, &Event::SecretChoice { vote, choice });
        }
        Ok((state, head))
    }

    /// Checks the chain and the ballot box of every secret vote.
    pub async fn verify(&self, sitting: &SittingId) -> Result<Verification, StoreError> {
        let mut taken: BTreeMap<VoteId, u32> = BTreeMap::new();
        let mut closed: BTreeMap<VoteId, (u64, sitting::Tally)> = BTreeMap::new();
        let walked = self
            .walk(sitting, |seq, record, _| match record.event {
                Event::SecretBallotTaken { vote, .. } => *taken.entry(vote).or_default() += 1,
                Event::VoteClosed { vote, result, .. } => {
                    closed.insert(vote, (seq, result.tally));
                }
                _ => {}
            })
            .await?;
        let head = match walked {
            Ok(head) => head,
            Err((seq, reason)) => return Ok(Verification::Broken { seq, reason }),
        };
        let mut boxes: BTreeMap<VoteId, sitting::Tally> = BTreeMap::new();
        let ballots = match self.ballot_box(sitting).await {
            Ok(b) => b,
            Err(StoreError::Corrupt { reason, .. }) => {
                return Ok(Verification::Broken {
                    seq: head.seq,
                    reason: format!("ballot box: {reason}"),
                });
            }
            Err(e) => return Err(e),
        };
        for (vote, choice) in ballots {
            boxes.entry(vote).or_default().add(choice);
        }
        for (vote, tally) in &boxes {
            if !taken.contains_key(vote) {
                return Ok(Verification::Broken {
                    seq: head.seq,
                    reason: format!(
                        "ballot box holds ballots for vote {vote}, which had no secret ballot"
                    ),
                });
            }
            let _ = tally;
        }
        for (vote, n) in &taken {
            let tally = boxes.get(vote).copied().unwrap_or_default();
            let (seq, recorded) = closed.get(vote).copied().unwrap_or((head.seq, tally));
            if tally.total() != *n {
                return Ok(Verification::Broken {
                    seq,
                    reason: format!(
                        "vote {vote}: {n} deputies took part but the ballot box holds {}",
                        tally.total()
                    ),
                });
            }
            if recorded != tally {
                return Ok(Verification::Broken {
                    seq,
                    reason: format!(
                        "vote {vote}: the ballot box does not match the recorded result"
                    ),
                });
            }
        }
        Ok(Verification::Ok { events: head.seq })
    }

    /// The last sequence number of every accepted command that carried a client id, as
    /// (actor, command id, seq): what a retry of that id must be answered with.
    pub async fn command_outcomes(
        &self,
        sitting: &SittingId,
    ) -> Result<Vec<(ActorId, String, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT actor, command_id, MAX(seq) FROM events \
             WHERE sitting = $1 AND command_id IS NOT NULL GROUP BY actor, command_id",
        )
        .bind(sitting.as_str())
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(a, c, s)| (ActorId(a), c, to_u64(s)))
            .collect())
    }

    /// The password hash (PHC string) of an actor, if one is set.
    pub async fn credential(&self, actor: &ActorId) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT phc FROM credentials WHERE actor = $1",
        )
        .bind(actor.as_str())
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(p,)| p))
    }

    /// Sets the password hashes of several actors (replacing existing ones), in one
    /// transaction.
    pub async fn set_credentials(&self, entries: &[(ActorId, String)]) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = begin_write(pool).await?;
            for (actor, phc) in entries {
                sqlx::query(
                    "INSERT INTO credentials (actor, phc) VALUES ($1, $2) \
                     ON CONFLICT (actor) DO UPDATE SET phc = excluded.phc",
                )
                .bind(actor.as_str())
                .bind(phc.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a revoked token until its expiry.
    pub async fn revoke_token(&self, jti: &str, exp: Millis) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO revoked_tokens (jti, exp_ms) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(exp.0)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Revoked tokens that have not expired at `now` (older ones are deleted).
    pub async fn revoked_tokens(&self, now: Millis) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query("DELETE FROM revoked_tokens WHERE exp_ms <= $1")
                .bind(now.0)
                .execute(pool)
                .await?;
            sqlx::query_as("SELECT jti FROM revoked_tokens")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(j,)| j).collect())
    }

    /// A named setting's value (e.g. the token key).
    pub async fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT value FROM settings WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(v,)| v))
    }

    /// Stores a setting if it is not set yet; returns the value now stored.
    pub async fn setting_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(self.setting(name).await?.unwrap_or_else(|| value.to_vec()))
    }

    /// Keeps a signed checkpoint.
    pub async fn add_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let body = serde_json::to_string(cp).map_err(|e| StoreError::Corrupt {
            seq: cp.seq,
            reason: format!("checkpoint does not serialize: {e}"),
        })?;
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO checkpoints (sitting, seq, body) VALUES ($1, $2, $3)",
        )
        .bind(cp.sitting.as_str())
        .bind(to_i64(cp.seq))
        .bind(&body)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The checkpoints kept for a sitting, oldest first.
    pub async fn checkpoints(&self, sitting: &SittingId) -> Result<Vec<Checkpoint>, StoreError> {
        let rows: Vec<(i64, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT seq, body FROM checkpoints WHERE sitting = $1 ORDER BY id",
        )
        .bind(sitting.as_str())
        .fetch_all(pool)
        .await?);
        parse_bodies(rows, "checkpoint")
    }

    /// What the log says for judging it against a checkpoint at `seq`
    /// ([`crate::checkpoint::judge`]): its epoch, the chain checked from the start, its last
    /// sequence number, and the hash at `seq`.
    pub async fn log_facts(&self, sitting: &SittingId, seq: u64) -> Result<LogFacts, StoreError> {
        let epoch = match self.sitting(sitting).await {
            Ok(meta) => Some(meta.epoch),
            Err(StoreError::UnknownSitting(_)) => None,
            Err(e) => return Err(e),
        };
        if epoch.is_none() {
            return Ok(LogFacts {
                epoch,
                broken: None,
                last_seq: 0,
                hash_at_checkpoint: None,
            });
        }
        let mut at = None;
        let walked = self
            .walk(sitting, |s, _, hash| {
                if s == seq {
                    at = Some(hex::encode(hash));
                }
            })
            .await?;
        Ok(match walked {
            Ok(head) => LogFacts {
                epoch,
                broken: None,
                last_seq: head.seq,
                hash_at_checkpoint: at,
            },
            Err((bad, reason)) => LogFacts {
                epoch,
                broken: Some((bad, reason)),
                last_seq: bad.saturating_sub(1),
                hash_at_checkpoint: at,
            },
        })
    }
}

mod audit;
mod blobs;
mod passkeys;
mod webhooks;
pub use blobs::BlobRecord;
pub use passkeys::StoredPasskey;
pub use webhooks::{Attempt, Replay};
