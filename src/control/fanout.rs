//! The fan-out of a sitting's commits to its connections. A few tasks per sitting (one per
//! core by default), each holding a share of the connections, write every commit straight
//! into the sockets of their share: a commit wakes one task per share, not one per
//! connection, and several commits that arrive together go to a socket in one write.
//!
//! Each connection's socket sits in a [`Conn`], shared by its session (which reads the
//! client, answers its commands and sends everything else) and by the share it joined.
//! A connection is either *direct* (its share writes each commit to it) or *catching up*
//! (its session sends what it missed, from the log or a snapshot, and then asks to be
//! direct again). The hand-over keeps every connection's events in order, without a gap or
//! a duplicate:
//!
//! - the writer publishes a commit's head (the sitting's summary) before it broadcasts
//!   the commit;
//! - a share writes a commit to a connection only if it is direct and the commit starts
//!   right after the last event sent; when the socket is full it queues the commit's
//!   messages (shared, not copied) behind what the socket holds, and the session writes
//!   them as the socket drains; on a gap, a full queue ([`Conn::new`]) or a share that
//!   fell behind the broadcast, it hands the connection back to its session
//!   ([`ConnState::attention`]), which writes the queue before it reads the log;
//! - a session makes its connection direct only under the connection's lock, once the
//!   share has taken the connection in and the published head is no further than the last
//!   event it sent. A commit the share passed over before that has a head the session
//!   sees, so it reads it from the log first; one after it, the share writes.
//!
//! The decisions are pure ([`route`], [`catch_up_step`]) and table-tested.

use crate::sitting::Role;
use crate::stages::{self, Stage};
use crate::telemetry;
use crate::writer::Committed;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{Sink, Stream};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc};

/// How long a share writes before it lets other tasks run. Not a count of connections: a
/// yield waits behind every task ready to run (during a vote, hundreds of sessions
/// answering their ballots), so yielding every few dozen connections made a 564-connection
/// commit take tens of milliseconds.
const YIELD_AFTER: std::time::Duration = std::time::Duration::from_millis(2);

/// What the fan-out does with a commit of events `first..=last` for a direct connection
/// that last sent `last_sent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Already sent (the connection caught up past it from the log).
    Skip,
    /// The next events: write them.
    Send,
    /// Events are missing before it: the session must read them from the log.
    Gap,
}

/// Decides [`Route`] (pure).
pub fn route(last_sent: u64, first: u64, last: u64) -> Route {
    if last <= last_sent {
        Route::Skip
    } else if first == last_sent + 1 {
        Route::Send
    } else {
        Route::Gap
    }
}

/// The next step of a session catching up (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Too far behind, or its share fell behind the broadcast: a `resync` and a snapshot.
    Resync,
    /// Events were committed since the last one sent: read them from the log.
    ReadLog,
    /// Up to date: the share may write from here on.
    Direct,
    /// Up to date, but the share has not taken the connection in yet: it will call again.
    WaitForShare,
}

/// Decides [`CatchUp`] from what the session knows: whether a resync was asked for, the
/// published head, the last event sent, the longest gap served from the log, and whether
/// its share holds it.
pub fn catch_up_step(
    resync: bool,
    head: u64,
    last_sent: u64,
    max_gap: u64,
    joined: bool,
) -> CatchUp {
    if resync || head.saturating_sub(last_sent) > max_gap {
        CatchUp::Resync
    } else if head > last_sent {
        CatchUp::ReadLog
    } else if joined {
        CatchUp::Direct
    } else {
        CatchUp::WaitForShare
    }
}

/// A connection's socket and where its stream of events stands, shared by its session and
/// its share of the fan-out.
pub struct Conn {
    state: Mutex<ConnState>,
    /// Wakes the session's task: when the share hands the connection back, and when the
    /// socket can take more after a write the share left unfinished.
    waker: Waker,
    /// The roles of the connection's account (what it may see).
    roles: Vec<Role>,
    /// How many messages the share queues when the socket is full before it hands the
    /// connection back to its session to be served from the log. The queue holds the
    /// commits' shared frames, not copies: a burst (a vote's ballots) waits in memory for
    /// a reader that is only briefly behind, and the log serves those that stay behind.
    max_queued: usize,
}

/// The part of a [`Conn`] that changes, behind its lock.
pub struct ConnState {
    /// The WebSocket (None once the session ended: dropped then, not when the share next
    /// looks at the connection).
    ws: Option<WebSocket>,
    /// The sequence number of the last event sent.
    pub last_sent: u64,
    /// Events go in `events` messages, a commit's in one (protocol 2); else one `event`
    /// message each.
    pub batched: bool,
    /// The current subscription (counts up with each `subscribe`).
    pub subscription: u64,
    /// The subscription the share has taken in, if any.
    joined: Option<u64>,
    /// The share writes each commit to the connection.
    direct: bool,
    /// The session must catch up (read the log) and ask to be direct again.
    pub attention: bool,
    /// The share fell behind the broadcast: the session must send `resync` and a snapshot.
    pub resync: bool,
    /// The share wrote and the socket did not take it all yet, or it queued messages: the
    /// session must write the queue and flush.
    pub unflushed: bool,
    /// Messages for the connection that its socket could not take yet, in order, after
    /// what the socket holds (at most [`Conn::max_queued`]); `last_sent` counts them as
    /// sent.
    queued: VecDeque<Utf8Bytes>,
    /// Messages taken from the queue by the socket so far (a slow reader's progress).
    drained: u64,
    /// A write failed: the peer is gone.
    pub gone: bool,
    /// The sitting's writer stopped.
    pub ended: bool,
    /// The session ended: the share forgets the connection.
    pub closed: bool,
}

impl ConnState {
    /// Whether the session has something to do that the share asked of it.
    pub fn needs_session(&self) -> bool {
        self.attention || self.unflushed || self.gone || self.ended
    }

    /// Whether the share holds the current subscription.
    pub fn joined(&self) -> bool {
        self.joined == Some(self.subscription)
    }

    /// Whether the share writes the commits to the connection.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Makes the connection direct (see the module's rule: only when caught up and joined).
    pub fn go_direct(&mut self) {
        self.direct = true;
    }

    /// Takes the connection back from its share (a new subscription, a session's own catch
    /// up).
    pub fn leave_direct(&mut self) {
        self.direct = false;
    }

    /// Whether messages wait in the queue, to be written before anything else of the
    /// stream of events.
    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// How many queued messages the socket has taken so far.
    pub fn drained(&self) -> u64 {
        self.drained
    }

    /// Forgets the queue (a new subscription, or a snapshot that replaces what it held).
    pub fn clear_queue(&mut self) {
        self.queued.clear();
    }
}

impl Conn {
    /// A connection around `ws`, whose session runs in the task `waker` wakes, queueing
    /// up to `max_queued` messages when its socket is full.
    pub fn new(ws: WebSocket, roles: Vec<Role>, waker: Waker, max_queued: usize) -> Arc<Conn> {
        Arc::new(Conn {
            state: Mutex::new(ConnState {
                ws: Some(ws),
                last_sent: 0,
                batched: false,
                subscription: 0,
                joined: None,
                direct: false,
                attention: false,
                resync: false,
                unflushed: false,
                queued: VecDeque::new(),
                drained: 0,
                gone: false,
                ended: false,
                closed: false,
            }),
            waker,
            roles,
            max_queued,
        })
    }

    /// The connection's state, locked. Held only for non-blocking work (a poll, a flag).
    pub fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls the socket for the client's next message.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, axum::Error>>> {
        match self.lock().ws.as_mut() {
            Some(ws) => Pin::new(ws).poll_next(cx),
            None => Poll::Ready(None),
        }
    }

    /// Ends the connection: the share forgets it and the socket is closed now.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.direct = false;
        st.queued.clear();
        st.ws = None;
    }

    /// Polls sending `msg` (taken on the first poll that finds room), then the queue, and
    /// flushing them. The session's own message goes before the queued events: an answer
    /// never waits behind other people's events.
    pub fn poll_send(
        &self,
        msg: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), axum::Error>> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(ws) = st.ws.as_mut() else {
            return Poll::Ready(Err(axum::Error::new(std::io::Error::from(
                std::io::ErrorKind::NotConnected,
            ))));
        };
        if let Some(m) = msg.take() {
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => Pin::new(&mut *ws).start_send(m)?,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    *msg = Some(m);
                    return Poll::Pending;
                }
            }
        }
        while !st.queued.is_empty() {
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    if let Some(text) = st.queued.pop_front() {
                        Pin::new(&mut *ws).start_send(Message::Text(text))?;
                        st.drained += 1;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Flush what was taken, so the peer reads on while the socket drains.
                Poll::Pending => {
                    let _ = Pin::new(&mut *ws).poll_flush(cx);
                    return Poll::Pending;
                }
            }
        }
        let flushed = Pin::new(ws).poll_flush(cx);
        if flushed.is_ready() {
            st.unflushed = false;
        }
        flushed
    }

    /// Polls for something the share asked of the session. Registers nothing: the share
    /// wakes the session's task after it sets a flag.
    pub fn poll_needs_session(&self) -> Poll<()> {
        if self.lock().needs_session() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Writes `commits` (in order) to the connection if it is direct. Returns false when
    /// the share should forget it (closed, or subscribed elsewhere).
    fn deliver(&self, subscription: u64, commits: &[Arc<Committed>], views: &mut Views) -> bool {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.closed || st.subscription != subscription {
            return false;
        }
        if !st.direct {
            return true;
        }
        let Some(ws) = st.ws.as_mut() else {
            return false;
        };
        let mut cx = Context::from_waker(&self.waker);
        let writing = Instant::now();
        let mut wrote = false;
        let mut queued = false;
        for commit in commits {
            let commit = views.of(commit, &self.roles);
            let (Some(&(first, _)), Some(&(last, _))) =
                (commit.entries.first(), commit.entries.last())
            else {
                continue;
            };
            match route(st.last_sent, first, last) {
                Route::Skip => continue,
                Route::Gap => {
                    self.hand_back(&mut st.direct, &mut st.attention);
                    break;
                }
                Route::Send => {}
            }
            stages::record(Stage::Fanout, commit.at.elapsed());
            let single: [(u64, Utf8Bytes); 1];
            let messages: &[(u64, Utf8Bytes)] = if st.batched {
                single = [(last, commit.frame.clone())];
                &single
            } else {
                &commit.events
            };
            for (seq, text) in messages {
                let ready = if st.queued.is_empty() {
                    Pin::new(&mut *ws).poll_ready(&mut cx)
                } else {
                    Poll::Pending
                };
                match ready {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => {
                        st.gone = true;
                        self.waker.wake_by_ref();
                        return true;
                    }
                    // The socket is full: the message waits in the queue, which the session
                    // writes as the socket drains; a full queue, and the session goes on from
                    // the log at its reader's pace.
                    Poll::Pending if st.queued.len() < self.max_queued => {
                        st.queued.push_back(text.clone());
                        st.last_sent = *seq;
                        queued = true;
                        continue;
                    }
                    Poll::Pending => {
                        self.hand_back(&mut st.direct, &mut st.attention);
                        break;
                    }
                }
                if Pin::new(&mut *ws)
                    .start_send(Message::Text(text.clone()))
                    .is_err()
                {
                    st.gone = true;
                    self.waker.wake_by_ref();
                    return true;
                }
                telemetry::message_sent();
                st.last_sent = *seq;
                wrote = true;
            }
            if !st.direct {
                break;
            }
        }
        if queued {
            st.unflushed = true;
            self.waker.wake_by_ref();
        }
        if wrote {
            match Pin::new(ws).poll_flush(&mut cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => {
                    st.gone = true;
                    self.waker.wake_by_ref();
                }
                // The socket's readiness wakes the session, which finishes the write.
                Poll::Pending => st.unflushed = true,
            }
            stages::record(Stage::Write, writing.elapsed());
        }
        true
    }

    /// Hands the connection back to its session to catch up.
    fn hand_back(&self, direct: &mut bool, attention: &mut bool) {
        *direct = false;
        *attention = true;
        self.waker.wake_by_ref();
    }

    /// Takes the connection into a share: the session may now ask to be direct.
    fn joined_by_share(&self, subscription: u64) -> bool {
        let mut st = self.lock();
        if st.closed || st.subscription != subscription {
            return false;
        }
        st.joined = Some(subscription);
        st.attention = true;
        self.waker.wake_by_ref();
        true
    }

    /// The share fell behind (`resync`) or the writer stopped (`ended`).
    fn tell(&self, resync: bool, ended: bool) {
        let mut st = self.lock();
        st.direct = false;
        st.attention = true;
        st.resync |= resync;
        st.ended |= ended;
        self.waker.wake_by_ref();
    }
}

/// A commit as each set of roles may see it, computed once per commit and set of roles
/// (only commits about documents not everyone may read differ).
#[derive(Default)]
struct Views {
    redacted: HashMap<(usize, Vec<Role>), Arc<Committed>>,
}

impl Views {
    fn of(&mut self, commit: &Arc<Committed>, roles: &[Role]) -> Arc<Committed> {
        if commit.limited.is_empty() {
            return commit.clone();
        }
        let key = (Arc::as_ptr(commit) as usize, roles.to_vec());
        self.redacted
            .entry(key)
            .or_insert_with(|| match commit.for_roles(roles) {
                Some(view) => Arc::new(view),
                None => commit.clone(),
            })
            .clone()
    }
}

/// The fan-out of one sitting: its shares.
pub struct Hub {
    shares: Vec<mpsc::UnboundedSender<(Arc<Conn>, u64)>>,
    next: AtomicUsize,
}

impl Hub {
    /// Starts `shares` tasks (at least one), each following the commits from its own
    /// receiver made by `subscribe`.
    pub fn start(
        shares: usize,
        subscribe: impl Fn() -> broadcast::Receiver<Arc<Committed>>,
    ) -> Hub {
        let shares = (0..shares.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_share(subscribe(), rx));
                tx
            })
            .collect();
        Hub {
            shares,
            next: AtomicUsize::new(0),
        }
    }

    /// Gives the connection's `subscription` to a share (in turn). The share tells the
    /// session when it holds it (`attention`).
    pub fn join(&self, conn: Arc<Conn>, subscription: u64) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.shares.len();
        if let Some(share) = self.shares.get(i)
            && share.send((conn.clone(), subscription)).is_err()
        {
            conn.tell(false, true);
        }
    }
}

/// One share: takes connections in, and writes each commit (or each run of commits that
/// arrived together) to every direct connection it holds.
async fn run_share(
    mut commits: broadcast::Receiver<Arc<Committed>>,
    mut joins: mpsc::UnboundedReceiver<(Arc<Conn>, u64)>,
) {
    let mut conns: Vec<(Arc<Conn>, u64)> = Vec::new();
    loop {
        tokio::select! {
            biased;
            joined = joins.recv() => match joined {
                Some((conn, subscription)) => {
                    if conn.joined_by_share(subscription) {
                        conns.push((conn, subscription));
                        // Connections that ended are forgotten at each commit; between
                        // commits, now and then as others join.
                        if conns.len().is_multiple_of(1024) {
                            conns.retain(|(c, s)| {
                                let st = c.lock();
                                !st.closed && st.subscription == *s
                            });
                        }
                    }
                }
                None => return,
            },
            first = commits.recv() => {
                let mut run = Vec::new();
                let mut lagged = false;
                let mut ended = false;
                match first {
                    Ok(c) => run.push(c),
                    Err(broadcast::error::RecvError::Lagged(_)) => lagged = true,
                    Err(broadcast::error::RecvError::Closed) => ended = true,
                }
                loop {
                    match commits.try_recv() {
                        Ok(c) => run.push(c),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                        Err(broadcast::error::TryRecvError::Closed) => ended = true,
                        Err(broadcast::error::TryRecvError::Empty) => break,
                    }
                    if ended {
                        break;
                    }
                }
                if lagged || ended {
                    tracing::info!(connections = conns.len(), lagged, ended, "fan-out share hands its connections back");
                    for (conn, _) in conns.drain(..) {
                        conn.tell(lagged, ended);
                    }
                    if ended {
                        return;
                    }
                    continue;
                }
                let mut views = Views::default();
                let mut kept = Vec::with_capacity(conns.len());
                let mut since_yield = Instant::now();
                for (conn, subscription) in std::mem::take(&mut conns) {
                    if conn.deliver(subscription, &run, &mut views) {
                        kept.push((conn, subscription));
                    }
                    if since_yield.elapsed() >= YIELD_AFTER {
                        tokio::task::yield_now().await;
                        since_yield = Instant::now();
                    }
                }
                conns = kept;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_is_sent_only_right_after_the_last_event_sent() {
        // (last_sent, first, last, route)
        let table = [
            (0, 1, 1, Route::Send),
            (10, 11, 14, Route::Send),
            (10, 5, 10, Route::Skip),
            (10, 10, 10, Route::Skip),
            (14, 11, 14, Route::Skip),
            (10, 12, 12, Route::Gap),
            (10, 13, 20, Route::Gap),
            // Overlapping what was sent (cannot come from whole commits): never resent.
            (12, 11, 14, Route::Gap),
        ];
        for (last_sent, first, last, want) in table {
            assert_eq!(
                route(last_sent, first, last),
                want,
                "last sent {last_sent}, commit {first}..={last}"
            );
        }
    }

    #[test]
    fn a_session_goes_direct_only_when_caught_up_and_held_by_its_share() {
        // (resync, head, last_sent, max_gap, joined, step)
        let table = [
            (false, 10, 10, 100, true, CatchUp::Direct),
            (false, 10, 10, 100, false, CatchUp::WaitForShare),
            (false, 12, 10, 100, true, CatchUp::ReadLog),
            (false, 12, 10, 100, false, CatchUp::ReadLog),
            (false, 200, 10, 100, true, CatchUp::Resync),
            (false, 110, 10, 100, true, CatchUp::ReadLog),
            (false, 111, 10, 100, true, CatchUp::Resync),
            (true, 10, 10, 100, true, CatchUp::Resync),
            // A snapshot may be ahead of the summary it was read after.
            (false, 9, 10, 100, true, CatchUp::Direct),
        ];
        for (resync, head, last_sent, max_gap, joined, want) in table {
            assert_eq!(
                catch_up_step(resync, head, last_sent, max_gap, joined),
                want,
                "resync {resync}, head {head}, last sent {last_sent}, joined {joined}"
            );
        }
    }
}
