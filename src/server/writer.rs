//! The writer of one sitting: the only task that changes its state.
//!
//! Commands arrive on a bounded channel. The writer takes what is waiting (up to
//! `max_batch`), decides each against the state, appends all accepted events in one
//! transaction (group commit), and only then answers each sender and publishes the new
//! summary. A failed commit answers every accepted command with a storage error and rebuilds
//! the state from the log, so memory never runs ahead of what is durable. A periodic check
//! issues `Tick` when the floor or the open vote has run out.

use crate::sitting::{self, ActorId, Command, Event, Millis, Rejection, SittingId, SittingState};
use crate::store::{Head, Recorded, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::summary::Summary;

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

/// Events made durable by one commit, in order, for fan-out.
#[derive(Debug, Clone)]
pub struct Committed {
    /// (sequence number, actor, event) of each chain event.
    pub events: Vec<(u64, ActorId, Event)>,
}

struct Submission {
    actor: ActorId,
    command: Command,
    reply: oneshot::Sender<Result<Ack, SubmitError>>,
}

/// A handle to a running sitting writer.
#[derive(Clone)]
pub struct SittingHandle {
    id: SittingId,
    tx: mpsc::Sender<Submission>,
    summary: watch::Receiver<Arc<Summary>>,
    committed: broadcast::Sender<Arc<Committed>>,
}

impl SittingHandle {
    /// The sitting id.
    pub fn id(&self) -> &SittingId {
        &self.id
    }

    /// Submits a command; resolves once it is durable (or refused).
    pub async fn submit(&self, actor: ActorId, command: Command) -> Result<Ack, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Submission {
                actor,
                command,
                reply,
            })
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        rx.await.map_err(|_| SubmitError::Unavailable)?
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

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Group commit size.
    pub max_batch: usize,
    /// Clock check period.
    pub tick: Duration,
}

/// Starts the writer of a sitting whose state and head were just replayed.
pub fn spawn(
    store: Store,
    id: SittingId,
    state: SittingState,
    head: Head,
    settings: WriterSettings,
    shutdown: watch::Receiver<bool>,
) -> (SittingHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.max_batch.max(1) * 16);
    let (summary_tx, summary_rx) = watch::channel(Arc::new(Summary::of(&state, head.seq)));
    let (committed, _) = broadcast::channel(1024);
    let handle = SittingHandle {
        id: id.clone(),
        tx,
        summary: summary_rx,
        committed: committed.clone(),
    };
    let writer = Writer {
        store,
        id,
        state,
        head,
        settings,
        summary: summary_tx,
        committed,
        last_now: Millis(0),
    };
    let task = tokio::spawn(writer.run(rx, shutdown));
    (handle, task)
}

struct Writer {
    store: Store,
    id: SittingId,
    state: SittingState,
    head: Head,
    settings: WriterSettings,
    summary: watch::Sender<Arc<Summary>>,
    committed: broadcast::Sender<Arc<Committed>>,
    last_now: Millis,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Submission>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(sitting = %self.id, seq = self.head.seq, "writer started");
        loop {
            tokio::select! {
                biased;
                msg = rx.recv() => {
                    let Some(first) = msg else { break };
                    let mut batch = vec![first];
                    while batch.len() < self.settings.max_batch {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    if !self.process(batch).await {
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
                            if !self.process(vec![m]).await {
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
            let _ = m.reply.send(Err(SubmitError::Unavailable));
        }
        tracing::info!(sitting = %self.id, seq = self.head.seq, "writer stopped");
    }

    fn now(&mut self) -> Millis {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        // Never let time run backwards inside a sitting, even if the wall clock does.
        self.last_now = Millis(wall.max(self.last_now.0));
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
            command: Command::Tick,
            reply,
        }])
        .await
    }

    /// Decides, commits and answers one batch. Returns false if the writer must stop.
    async fn process(&mut self, batch: Vec<Submission>) -> bool {
        let now = self.now();
        let mut decided: Vec<(Submission, Result<Vec<Event>, Rejection>)> =
            Vec::with_capacity(batch.len());
        for sub in batch {
            let outcome = sitting::decide(&self.state, &sub.actor, &sub.command, now);
            if let Ok(events) = &outcome {
                for e in events {
                    sitting::apply(&mut self.state, e);
                }
            }
            decided.push((sub, outcome));
        }
        let accepted: Vec<Recorded<'_>> = decided
            .iter()
            .filter_map(|(sub, o)| match o {
                Ok(events) if !events.is_empty() => Some(Recorded {
                    at: now,
                    actor: &sub.actor,
                    command_id: None,
                    events,
                }),
                _ => None,
            })
            .collect();
        if accepted.is_empty() {
            for (sub, outcome) in decided {
                let reply = outcome.map(|_| Ack {
                    seq: self.head.seq,
                    events: 0,
                });
                let _ = sub.reply.send(reply.map_err(SubmitError::from));
            }
            return true;
        }
        let appended = self.store.append(&self.id, &self.head, &accepted).await;
        drop(accepted);
        match appended {
            Ok((new_head, seqs)) => {
                let mut committed = Vec::new();
                let mut seq = self.head.seq;
                let mut seqs = seqs.into_iter();
                for (sub, outcome) in decided {
                    let reply = match outcome {
                        Ok(events) if !events.is_empty() => {
                            let last = seqs.next().unwrap_or(new_head.seq);
                            let chain: Vec<Event> =
                                events.into_iter().filter(|e| !e.is_sealed()).collect();
                            let n = chain.len();
                            for e in chain {
                                seq += 1;
                                committed.push((seq, sub.actor.clone(), e));
                            }
                            Ok(Ack {
                                seq: last,
                                events: n,
                            })
                        }
                        Ok(_) => Ok(Ack { seq, events: 0 }),
                        Err(r) => Err(SubmitError::Rejected(r)),
                    };
                    let _ = sub.reply.send(reply);
                }
                self.head = new_head;
                self.summary
                    .send_replace(Arc::new(Summary::of(&self.state, self.head.seq)));
                let _ = self
                    .committed
                    .send(Arc::new(Committed { events: committed }));
                true
            }
            Err(e) => {
                tracing::error!(sitting = %self.id, error = %e, "append failed; rebuilding state from the log");
                for (sub, outcome) in decided {
                    let reply = match outcome {
                        Err(r) => Err(SubmitError::Rejected(r)),
                        Ok(_) => Err(SubmitError::Storage),
                    };
                    let _ = sub.reply.send(reply);
                }
                match self.store.replay(&self.id).await {
                    Ok((state, head)) => {
                        self.state = state;
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
