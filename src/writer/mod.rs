//! The writer of one sitting: the only task that changes its state.
//!
//! Commands arrive on a bounded channel. The writer takes what is waiting (up to
//! `max_batch`), decides each against the state, appends all accepted events in one
//! transaction (group commit), and only then answers each sender, publishes the new summary
//! and fans the events out, serialized once for every connection ([`Committed`]: one
//! `events` message for the commit, and an `event` message per event for version-1
//! clients). A failed commit answers every accepted command with a storage
//! error and rebuilds the state from the log, so memory never runs ahead of what is
//! durable. A periodic check issues `Tick` when the floor or the open vote has run out.
//!
//! Commands may carry a client-chosen id: the writer remembers the outcome per (actor, id)
//! (rebuilt from the log at start for accepted ones), so a retry gets the original answer
//! and is never applied twice.
//!
//! After a commit that closed a vote or the sitting, the writer signs a checkpoint of the
//! new head ([`crate::checkpoint`]) and keeps it in the store, after the answers and the
//! fan-out.
//!
//! Snapshots are answered in order with the other requests, so a snapshot at `seq` holds
//! exactly the events up to `seq`. The state is shared copy-on-write: a snapshot costs one
//! clone at the next change, not one per batch.
//!
//! The WebSocket sessions, the REST commands and the media glue reach a sitting through its
//! [`SittingHandle`]; `server` starts the writers and hands the handles out.

pub mod summary;

use crate::checkpoint::{Reason, Signer};
use crate::control::protocol::{EventEntry, PROTOCOL_VERSION};
use crate::sitting::{
    self, Access, ActorId, Command, DocumentId, Event, Millis, Rejection, Role, SittingId,
    SittingState,
};
use crate::stages::{self, Stage};
use crate::store::{Head, Recorded, Store, StoreError};
use axum::extract::ws::Utf8Bytes;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use summary::Summary;

/// The outcome of an accepted command: durable at `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Sequence number of the command's last event (the head, if it caused none).
    pub seq: u64,
    /// Number of chain events it caused.
    pub events: usize,
}

/// Why a command was not applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// The procedure rules refused it.
    #[error("rejected: {0}")]
    Rejected(#[from] Rejection),
    /// The log could not be written; nothing was applied. Safe to retry.
    #[error("storage unavailable")]
    Storage,
    /// The server is shutting down or the writer stopped.
    #[error("sitting unavailable")]
    Unavailable,
}

/// Events made durable by one commit, in order, serialized once for every connection.
#[derive(Debug, Clone)]
pub struct Committed {
    /// When it was made (to measure how long connections take to send it).
    pub at: Instant,
    /// (sequence number, JSON text of the entry: `seq`, `at`, `actor`, `event`) of each
    /// chain event.
    pub entries: Vec<(u64, Arc<str>)>,
    /// The same as version-1 `event` messages, one per event.
    pub events: Vec<(u64, Utf8Bytes)>,
    /// All of them as one version-2 `events` message (shared, not copied, by every
    /// connection it is written to).
    pub frame: Utf8Bytes,
    /// The entries about documents not everyone may read: (index in `entries`, when, the
    /// access level). Empty in the usual case.
    pub limited: Vec<(usize, Millis, Access)>,
}

impl Committed {
    /// A commit of these entries (in order, from [`event_entry`]), none limited.
    pub fn of(entries: Vec<(u64, Arc<str>)>) -> Committed {
        Committed::limited(entries, Vec::new())
    }

    /// A commit of these entries, some of which only some roles may see.
    pub fn limited(
        entries: Vec<(u64, Arc<str>)>,
        limited: Vec<(usize, Millis, Access)>,
    ) -> Committed {
        let events = entries
            .iter()
            .map(|(seq, e)| (*seq, event_message_of(e)))
            .collect();
        let frame = events_frame(entries.iter().map(|(_, e)| &**e));
        Committed {
            at: Instant::now(),
            entries,
            events,
            frame,
            limited,
        }
    }

    /// The commit as holders of `roles` may see it: None when they may see all of it (use
    /// it as it is), else a copy with what they may not see replaced by `withheld` entries
    /// (same sequence numbers, nothing else).
    pub fn for_roles(&self, roles: &[Role]) -> Option<Committed> {
        let hidden: Vec<(usize, Millis)> = self
            .limited
            .iter()
            .filter(|(_, _, access)| !sitting::readable(access, roles))
            .map(|(i, at, _)| (*i, *at))
            .collect();
        if hidden.is_empty() {
            return None;
        }
        let mut entries = self.entries.clone();
        for (i, at) in hidden {
            if let Some(entry) = entries.get_mut(i) {
                entry.1 = withheld_entry(entry.0, at);
            }
        }
        Some(Committed {
            at: self.at,
            ..Committed::of(entries)
        })
    }
}

/// The entry of an event read from the log as holders of `roles` may see it: the event, or
/// a `withheld` entry in its place (same number and time) when it is about a document they
/// may not read. `access` is [`SittingHandle::document_access`].
pub fn visible_entry(
    e: &crate::store::StoredEvent,
    roles: &[Role],
    access: &BTreeMap<DocumentId, Access>,
) -> Arc<str> {
    if sitting::visible(&e.event, roles, access) {
        event_entry(e.seq, e.at, &e.actor, &e.event)
    } else {
        withheld_entry(e.seq, e.at)
    }
}

/// The entry sent in place of an event its receiver may not see: its number and time only.
pub fn withheld_entry(seq: u64, at: Millis) -> Arc<str> {
    Arc::from(format!(
        r#"{{"seq":{seq},"at":{},"actor":"","event":{{"type":"withheld"}}}}"#,
        at.0
    ))
}

/// A consistent view of the sitting at a sequence number.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The log's epoch.
    pub epoch: Arc<str>,
    /// Sequence number the state includes.
    pub seq: u64,
    /// The state.
    pub state: Arc<SittingState>,
}

enum Request {
    Submit {
        actor: ActorId,
        command_id: Option<String>,
        command: Box<Command>,
        /// What the control plane checked about it (a ballot's passkey confirmation).
        assurance: sitting::Assurance,
        /// When it was submitted.
        at: Instant,
        reply: oneshot::Sender<Answer>,
    },
    Snapshot {
        reply: oneshot::Sender<Snapshot>,
    },
    Head {
        reply: oneshot::Sender<Head>,
    },
}

/// A serialized snapshot message and the sequence number it is at.
type SnapshotText = (u64, Arc<str>);

/// A handle to a running sitting writer.
#[derive(Clone)]
pub struct SittingHandle {
    id: SittingId,
    epoch: Arc<str>,
    tx: mpsc::Sender<Request>,
    summary: watch::Receiver<Arc<Summary>>,
    committed: broadcast::Sender<Arc<Committed>>,
    roster: Arc<sitting::Roster>,
    /// The latest snapshot message per set of withheld documents (empty: the full view).
    snapshot_json: Arc<std::sync::Mutex<HashMap<Vec<DocumentId>, SnapshotText>>>,
    document_access: watch::Receiver<Arc<BTreeMap<DocumentId, Access>>>,
    /// The tasks writing the commits to the connections, started by the first subscriber.
    fanout: Arc<std::sync::OnceLock<crate::control::fanout::Hub>>,
}

impl SittingHandle {
    /// The sitting's fan-out, started on first use with `tasks` tasks (0: one per core of
    /// the runtime).
    pub fn fanout(&self, tasks: usize) -> &crate::control::fanout::Hub {
        self.fanout.get_or_init(|| {
            let tasks = if tasks == 0 {
                tokio::runtime::Handle::current().metrics().num_workers()
            } else {
                tasks
            };
            let committed = self.committed.clone();
            crate::control::fanout::Hub::start(tasks, || committed.subscribe())
        })
    }

    /// The roster (fixed at creation).
    pub fn roster(&self) -> &sitting::Roster {
        &self.roster
    }

    /// Asks the writer something it answers in order with the commands.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(request(reply))
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        rx.await.map_err(|_| SubmitError::Unavailable)
    }

    /// The head of the log: its last sequence number and hash, as committed.
    pub async fn head(&self) -> Result<Head, SubmitError> {
        self.ask(|reply| Request::Head { reply }).await
    }

    /// The sitting id.
    pub fn id(&self) -> &SittingId {
        &self.id
    }

    /// The log's epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Submits a command; resolves once it is durable (or refused).
    pub async fn submit(&self, actor: ActorId, command: Command) -> Result<Ack, SubmitError> {
        self.submit_with_id(actor, None, command).await
    }

    /// Submits a command with the client's id; a repeated id returns the first outcome.
    pub async fn submit_with_id(
        &self,
        actor: ActorId,
        command_id: Option<String>,
        command: Command,
    ) -> Result<Ack, SubmitError> {
        self.submit_timed(actor, command_id, command, sitting::Assurance::NONE)
            .await
            .0
    }

    /// As [`SittingHandle::submit_with_id`], with when the writer answered (to measure what
    /// the answer waits for afterwards).
    pub async fn submit_timed(
        &self,
        actor: ActorId,
        command_id: Option<String>,
        command: Command,
        assurance: sitting::Assurance,
    ) -> (Result<Ack, SubmitError>, Instant) {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Request::Submit {
                actor,
                command_id,
                command: Box::new(command),
                assurance,
                at: Instant::now(),
                reply,
            })
            .await;
        if sent.is_err() {
            return (Err(SubmitError::Unavailable), Instant::now());
        }
        rx.await
            .unwrap_or_else(|_| (Err(SubmitError::Unavailable), Instant::now()))
    }

    /// The state at the current head, taken in order with the commands.
    pub async fn snapshot(&self) -> Result<Snapshot, SubmitError> {
        self.ask(|reply| Request::Snapshot { reply }).await
    }

    /// The `snapshot` message at the current head as JSON text. Serialized once per
    /// sequence number and shared, so a thousand clients reconnecting at once cost one
    /// serialization, not a thousand.
    pub async fn snapshot_message(&self, roles: &[Role]) -> Result<(u64, Arc<str>), SubmitError> {
        let snap = self.snapshot().await?;
        let withheld = sitting::withheld_documents(&snap.state, roles);
        if let Ok(cache) = self.snapshot_json.lock()
            && let Some((seq, text)) = cache.get(&withheld)
            && *seq == snap.seq
        {
            return Ok((*seq, text.clone()));
        }
        // The roster is fixed for the sitting and large (every actor); clients fetch it once
        // from `GET /api/sittings/{id}/roster` instead of with every snapshot.
        let mut state = serde_json::to_value(&*snap.state).unwrap_or_default();
        if let Some(obj) = state.as_object_mut() {
            obj.remove("roster");
            if let Some(docs) = obj
                .get_mut("documents")
                .and_then(serde_json::Value::as_object_mut)
            {
                for id in &withheld {
                    docs.remove(&id.0.to_string());
                }
            }
            // Nor how many there are: the last document id this view has seen.
            if !withheld.is_empty() {
                let last_seen = snap
                    .state
                    .documents
                    .keys()
                    .filter(|id| !withheld.contains(id))
                    .map(|id| id.0)
                    .max()
                    .unwrap_or(0);
                if let Some(ids) = obj
                    .get_mut("last_ids")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    ids.insert("document".into(), serde_json::json!(last_seen));
                }
            }
        }
        hide_open_secret_tallies(&mut state, &snap.state);
        let text: Arc<str> = Arc::from(
            serde_json::to_string(&SnapshotMessage {
                kind: "snapshot",
                v: PROTOCOL_VERSION,
                sitting: self.id.as_str(),
                epoch: &snap.epoch,
                seq: snap.seq,
                state: &state,
            })
            .unwrap_or_default(),
        );
        if let Ok(mut cache) = self.snapshot_json.lock() {
            // Only the views at the newest seq are worth keeping.
            cache.retain(|_, (seq, _)| *seq == snap.seq);
            cache.insert(withheld, (snap.seq, text.clone()));
        }
        Ok((snap.seq, text))
    }

    /// Every document's access level (to hold back, from events read from the log, what a
    /// connection may not see).
    pub fn document_access(&self) -> Arc<BTreeMap<DocumentId, Access>> {
        self.document_access.borrow().clone()
    }

    /// The latest summary.
    pub fn summary(&self) -> Arc<Summary> {
        self.summary.borrow().clone()
    }

    /// Subscribes to committed events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.committed.subscribe()
    }
}

/// The `snapshot` message, serialized from a borrowed state (same shape as
/// `ServerMessage::Snapshot`).
#[derive(serde::Serialize)]
struct SnapshotMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    v: u32,
    sitting: &'a str,
    epoch: &'a str,
    seq: u64,
    state: &'a serde_json::Value,
}

/// Blanks the counts of secret votes that have no result: those still open, and those
/// voided before they closed. Participation is public as it happens
/// (`secret_ballot_taken`); live counts beside it would let anyone who asks for snapshots
/// often enough tie a choice to the deputy who just took part. The counts become public
/// with the result, at the close, and only then; so a client folding the events it receives
/// arrives at exactly this state.
fn hide_open_secret_tallies(json: &mut serde_json::Value, state: &SittingState) {
    for (id, vote) in &state.votes {
        let has_result = matches!(
            vote.status,
            sitting::VoteStatus::Closed { .. }
                | sitting::VoteStatus::Voided {
                    result: Some(_),
                    ..
                }
        );
        if vote.method == sitting::Method::Secret
            && !has_result
            && let Some(v) = json
                .get_mut("votes")
                .and_then(|votes| votes.get_mut(id.0.to_string()))
        {
            v["tally"] = serde_json::Value::Null;
        }
    }
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Group commit size.
    pub max_batch: usize,
    /// Clock check period.
    pub tick: Duration,
    /// Committed batches kept for slow readers before they must resync.
    pub fanout_buffer: usize,
}

/// Why an event calls for a checkpoint, if it does: a vote or the sitting closed.
fn checkpoint_reason(event: &Event) -> Option<Reason> {
    match event {
        Event::VoteClosed { vote, .. } => Some(Reason::VoteClosed { vote: *vote }),
        Event::SittingClosed => Some(Reason::SittingClosed),
        _ => None,
    }
}

/// Serializes a stored or committed event as an entry of an `events` message (the fields of
/// an `event` message but `type` and `v`).
pub fn event_entry(seq: u64, at: Millis, actor: &ActorId, event: &Event) -> Arc<str> {
    let entry = EventEntry {
        seq,
        at,
        actor: actor.clone(),
        event: Box::new(event.clone()),
    };
    Arc::from(serde_json::to_string(&entry).unwrap_or_default())
}

/// The `event` message (version 1) of an entry: the entry's fields after `type` and `v`.
pub fn event_message_of(entry: &str) -> Utf8Bytes {
    let fields = entry.strip_prefix('{').unwrap_or(entry);
    Utf8Bytes::from(format!(
        r#"{{"type":"event","v":{PROTOCOL_VERSION},{fields}"#
    ))
}

/// Serializes a stored or committed event as the version-1 `event` message.
pub fn event_message(seq: u64, at: Millis, actor: &ActorId, event: &Event) -> Utf8Bytes {
    event_message_of(&event_entry(seq, at, actor, event))
}

/// One version-2 `events` message of entries, in order.
pub fn events_frame<'a>(entries: impl IntoIterator<Item = &'a str>) -> Utf8Bytes {
    let mut frame = format!(r#"{{"type":"events","v":{PROTOCOL_VERSION},"events":["#);
    for (i, e) in entries.into_iter().enumerate() {
        if i > 0 {
            frame.push(',');
        }
        frame.push_str(e);
    }
    frame.push_str("]}");
    Utf8Bytes::from(frame)
}

/// Starts the writer of a sitting from the store: replays its log and its command ids.
pub async fn start(
    store: Store,
    id: SittingId,
    settings: WriterSettings,
    signer: Option<Arc<Signer>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(SittingHandle, tokio::task::JoinHandle<()>), StoreError> {
    let meta = store.sitting(&id).await?;
    let (state, head) = store.replay(&id).await?;
    let outcomes = store.command_outcomes(&id).await?;
    Ok(spawn(
        store, id, meta.epoch, state, head, outcomes, settings, signer, shutdown,
    ))
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    store: Store,
    id: SittingId,
    epoch: String,
    state: SittingState,
    head: Head,
    outcomes: Vec<(ActorId, String, u64)>,
    settings: WriterSettings,
    signer: Option<Arc<Signer>>,
    shutdown: watch::Receiver<bool>,
) -> (SittingHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.max_batch.max(1) * 16);
    let (summary_tx, summary_rx) = watch::channel(Arc::new(Summary::of(&state, head.seq)));
    let (committed, _) = broadcast::channel(settings.fanout_buffer.max(16));
    let epoch: Arc<str> = Arc::from(epoch);
    let (access_tx, access_rx) = watch::channel(Arc::new(sitting::document_access(&state)));
    let handle = SittingHandle {
        document_access: access_rx,
        id: id.clone(),
        epoch: epoch.clone(),
        tx,
        summary: summary_rx,
        committed: committed.clone(),
        roster: Arc::new(state.roster.clone()),
        snapshot_json: Arc::default(),
        fanout: Arc::default(),
    };
    let dedup = outcomes
        .into_iter()
        .map(|(actor, cid, seq)| ((actor, cid), Ok(Ack { seq, events: 0 })))
        .collect();
    let writer = Writer {
        store,
        id,
        epoch,
        state: Arc::new(state),
        head,
        settings,
        summary: summary_tx,
        committed,
        last_now: Millis(0),
        dedup,
        signer,
        document_access: access_tx,
    };
    let task = tokio::spawn(writer.run(rx, shutdown));
    (handle, task)
}

type Outcome = Result<Ack, Rejection>;

struct Writer {
    store: Store,
    id: SittingId,
    epoch: Arc<str>,
    state: Arc<SittingState>,
    head: Head,
    settings: WriterSettings,
    summary: watch::Sender<Arc<Summary>>,
    committed: broadcast::Sender<Arc<Committed>>,
    last_now: Millis,
    dedup: HashMap<(ActorId, String), Outcome>,
    signer: Option<Arc<Signer>>,
    document_access: watch::Sender<Arc<BTreeMap<DocumentId, Access>>>,
}

/// Most remembered command outcomes per sitting; beyond it the oldest are not evicted but
/// new rejections are no longer remembered (accepted ones always are, in the log).
const MAX_REMEMBERED: usize = 1_000_000;

struct Submission {
    actor: ActorId,
    command_id: Option<String>,
    command: Command,
    assurance: sitting::Assurance,
    reply: oneshot::Sender<Answer>,
}

/// What the writer answers a submission, and when it answered.
type Answer = (Result<Ack, SubmitError>, Instant);

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(sitting = %self.id, seq = self.head.seq, "writer started");
        loop {
            tokio::select! {
                biased;
                msg = rx.recv() => {
                    let Some(first) = msg else { break };
                    let mut batch = Vec::new();
                    self.take(first, &mut batch);
                    while batch.len() < self.settings.max_batch {
                        match rx.try_recv() {
                            Ok(m) => self.take(m, &mut batch),
                            Err(_) => break,
                        }
                    }
                    if !batch.is_empty() && !self.process(batch).await {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    if !self.tick().await {
                        break;
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        // Refuse new commands, finish the ones already queued.
                        rx.close();
                        while let Some(m) = rx.recv().await {
                            let mut batch = Vec::new();
                            self.take(m, &mut batch);
                            if !batch.is_empty() && !self.process(batch).await {
                                break;
                            }
                        }
                        break;
                    }
                }
            }
        }
        rx.close();
        while let Ok(m) = rx.try_recv() {
            if let Request::Submit { reply, .. } = m {
                let _ = reply.send((Err(SubmitError::Unavailable), Instant::now()));
            }
        }
        tracing::info!(sitting = %self.id, seq = self.head.seq, "writer stopped");
    }

    /// Answers snapshots at once; queues submissions for the batch.
    fn take(&mut self, request: Request, batch: &mut Vec<Submission>) {
        match request {
            Request::Snapshot { reply } => {
                let _ = reply.send(Snapshot {
                    epoch: self.epoch.clone(),
                    seq: self.head.seq,
                    state: self.state.clone(),
                });
            }
            Request::Head { reply } => {
                let _ = reply.send(self.head);
            }
            Request::Submit {
                actor,
                command_id,
                command,
                assurance,
                at,
                reply,
            } => {
                stages::record(Stage::Queue, at.elapsed());
                batch.push(Submission {
                    actor,
                    command_id,
                    command: *command,
                    assurance,
                    reply,
                })
            }
        }
    }

    fn now(&mut self) -> Millis {
        let wall = crate::clock::now_millis();
        // Never let time run backwards inside a sitting, even if the wall clock does.
        self.last_now = Millis(wall.0.max(self.last_now.0));
        self.last_now
    }

    async fn tick(&mut self) -> bool {
        let now = self.now();
        let due = self.state.floor.as_ref().is_some_and(|f| now >= f.deadline)
            || self
                .state
                .open_vote
                .and_then(|v| self.state.votes.get(&v))
                .is_some_and(|v| now >= v.deadline);
        if !due {
            return true;
        }
        let (reply, _rx) = oneshot::channel();
        self.process(vec![Submission {
            actor: ActorId::system(),
            command_id: None,
            command: Command::Tick,
            assurance: sitting::Assurance::NONE,
            reply,
        }])
        .await
    }

    /// Signs and keeps a checkpoint of the head for each reason. A failure is logged, never
    /// undoes the commit (a checkpoint can be made again on demand).
    async fn sign_checkpoints(&self, reasons: Vec<Reason>, now: Millis) {
        let Some(signer) = &self.signer else { return };
        for reason in reasons {
            let cp = signer.sign(
                &self.id,
                &self.epoch,
                self.head.seq,
                &self.head.hash,
                now,
                reason,
            );
            match self.store.add_checkpoint(&cp).await {
                Ok(()) => {
                    tracing::info!(sitting = %self.id, seq = cp.seq, reason = ?cp.reason, "checkpoint signed")
                }
                Err(e) => {
                    tracing::error!(sitting = %self.id, seq = cp.seq, error = %e, "checkpoint signed but not kept")
                }
            }
        }
    }

    /// Decides, commits and answers one batch. Returns false if the writer must stop.
    async fn process(&mut self, batch: Vec<Submission>) -> bool {
        enum Decided {
            /// Answered from memory: a retry of a known command id.
            Known(Outcome),
            /// Same id as an earlier submission in this batch.
            SameAs(usize),
            Fresh(Result<Vec<Event>, Rejection>),
        }
        let now = self.now();
        let deciding = Instant::now();
        let mut decided: Vec<(Submission, Decided)> = Vec::with_capacity(batch.len());
        let mut in_batch: HashMap<(ActorId, String), usize> = HashMap::new();
        for sub in batch {
            let key = sub.command_id.clone().map(|c| (sub.actor.clone(), c));
            if let Some(k) = &key {
                if let Some(known) = self.dedup.get(k) {
                    decided.push((sub, Decided::Known(known.clone())));
                    continue;
                }
                if let Some(first) = in_batch.get(k) {
                    let first = *first;
                    decided.push((sub, Decided::SameAs(first)));
                    continue;
                }
                in_batch.insert(k.clone(), decided.len());
            }
            let state = Arc::make_mut(&mut self.state);
            let outcome =
                sitting::decide_assured(state, &sub.actor, &sub.command, sub.assurance, now);
            if let Ok(events) = &outcome {
                for e in events {
                    sitting::apply(state, e);
                }
            }
            decided.push((sub, Decided::Fresh(outcome)));
        }
        let accepted: Vec<Recorded<'_>> = decided
            .iter()
            .filter_map(|(sub, d)| match d {
                Decided::Fresh(Ok(events)) if !events.is_empty() => Some(Recorded {
                    at: now,
                    actor: &sub.actor,
                    command_id: sub.command_id.as_deref(),
                    events,
                }),
                _ => None,
            })
            .collect();
        stages::record(Stage::Decide, deciding.elapsed());
        let appended = if accepted.is_empty() {
            Ok((self.head, Vec::new()))
        } else {
            let committing = Instant::now();
            let appended = self.store.append(&self.id, &self.head, &accepted).await;
            stages::record(Stage::Commit, committing.elapsed());
            if appended.is_ok() {
                crate::telemetry::commit(
                    accepted.len(),
                    accepted.iter().map(|r| r.events.len()).sum(),
                );
            }
            appended
        };
        drop(accepted);
        match appended {
            Ok((new_head, seqs)) => {
                let mut committed = Vec::new();
                let mut seq = self.head.seq;
                let mut seqs = seqs.into_iter();
                let mut outcomes: Vec<Outcome> = Vec::with_capacity(decided.len());
                let mut checkpoints: Vec<Reason> = Vec::new();
                let mut limited: Vec<(usize, Millis, Access)> = Vec::new();
                // Every document's access level, rebuilt only when this commit published
                // one (the state already holds it).
                let published = decided.iter().any(|(_, d)| {
                    matches!(d, Decided::Fresh(Ok(events))
                        if events.iter().any(|e| matches!(e, Event::DocumentPublished { .. })))
                });
                let access = if published {
                    Arc::new(sitting::document_access(&self.state))
                } else {
                    self.document_access.borrow().clone()
                };
                for (sub, d) in &decided {
                    let outcome = match d {
                        Decided::Known(o) => o.clone(),
                        Decided::SameAs(i) => outcomes
                            .get(*i)
                            .cloned()
                            .unwrap_or(Ok(Ack { seq, events: 0 })),
                        Decided::Fresh(Ok(events)) if !events.is_empty() => {
                            let last = seqs.next().unwrap_or(new_head.seq);
                            checkpoints.extend(events.iter().filter_map(checkpoint_reason));
                            let mut n = 0;
                            for e in events.iter().filter(|e| !e.is_sealed()) {
                                seq += 1;
                                n += 1;
                                if let Some(a) =
                                    sitting::access_of(e, &access).filter(|a| **a != Access::Public)
                                {
                                    limited.push((committed.len(), now, a.clone()));
                                }
                                committed.push((seq, event_entry(seq, now, &sub.actor, e)));
                            }
                            Ok(Ack {
                                seq: last,
                                events: n,
                            })
                        }
                        Decided::Fresh(Ok(_)) => Ok(Ack { seq, events: 0 }),
                        Decided::Fresh(Err(r)) => Err(r.clone()),
                    };
                    if let (Some(cid), Decided::Fresh(_)) = (&sub.command_id, d)
                        && (outcome.is_ok() || self.dedup.len() < MAX_REMEMBERED)
                    {
                        self.dedup
                            .insert((sub.actor.clone(), cid.clone()), outcome.clone());
                    }
                    outcomes.push(outcome);
                }
                self.head = new_head;
                // The answers first: an ack never waits behind the fan-out of its own
                // commit (a client may see its ack before the events it caused).
                for ((sub, _), outcome) in decided.into_iter().zip(outcomes) {
                    let _ = sub
                        .reply
                        .send((outcome.map_err(SubmitError::Rejected), Instant::now()));
                }
                if !committed.is_empty() {
                    self.summary
                        .send_replace(Arc::new(Summary::of(&self.state, self.head.seq)));
                    if published {
                        self.document_access.send_replace(access);
                    }
                    let serializing = Instant::now();
                    let commit = Committed::limited(committed, limited);
                    stages::record(Stage::Serialize, serializing.elapsed());
                    let _ = self.committed.send(Arc::new(commit));
                }
                self.sign_checkpoints(checkpoints, now).await;
                true
            }
            Err(e) => {
                tracing::error!(sitting = %self.id, error = %e, "append failed; rebuilding state from the log");
                for (sub, d) in decided {
                    let reply = match d {
                        Decided::Known(o) => o.map_err(SubmitError::Rejected),
                        Decided::Fresh(Err(r)) => Err(SubmitError::Rejected(r)),
                        _ => Err(SubmitError::Storage),
                    };
                    let _ = sub.reply.send((reply, Instant::now()));
                }
                match self.store.replay(&self.id).await {
                    Ok((state, head)) => {
                        self.state = Arc::new(state);
                        self.head = head;
                        true
                    }
                    Err(e) => {
                        tracing::error!(sitting = %self.id, error = %e, "cannot rebuild state; stopping the writer");
                        false
                    }
                }
            }
        }
    }
}
