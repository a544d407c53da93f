//! One WebSocket connection: parse and limit what the client sends, authorize and submit
//! its commands, and stream the sitting to it in order.
//!
//! Ordering without gaps or duplicates: the session sends the snapshot (or the log from
//! `resume_from`), then gives the connection to the sitting's fan-out
//! ([`super::fanout`]), which writes the new commits to it. When the fan-out hands it
//! back (a full socket, a gap), the session sends what was missed from the log, a page at
//! a time, and gives it back once caught up. A connection more than `max_resume_gap`
//! events behind is told to resync and gets a fresh snapshot, so a slow client never
//! holds back the others or grows memory.

use super::commands::valid_client_id;
use super::fanout::{CatchUp, Conn, catch_up_step};
use super::protocol::{
    ClientMessage, IceServer, MAX_COMMAND_ID_BYTES, MicLevel, OLDEST_VERSION, PROTOCOL_VERSION,
    ServerMessage,
};
use super::{Host, Limits, TokenBucket};
use crate::auth::Claims;
use crate::clock::now_millis;
use crate::sitting::{ActorId, SittingId};
use crate::stages::{self, Stage};
use crate::telemetry;
use crate::writer::{SittingHandle, SubmitError, event_message_of, events_frame, visible_entry};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use dienhong_sfu::driver::{LegEvent, LegId, Level};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How long one write to a client may take before the connection is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Events read from the log per query when resuming or filling a hole.
const LOG_PAGE: u32 = 1000;
/// Most events in one `events` message sent from the log.
const FRAME_EVENTS: usize = 250;

/// A command submitted: its id, its outcome, and when the writer answered.
/// A command on its way through the writer: its id, its outcome, when the writer answered
/// and when its message was read.
type Pending =
    Pin<Box<dyn Future<Output = (String, Result<u64, SubmitError>, Instant, Instant)> + Send>>;

/// Why the session ends.
enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer went away or the socket failed: nothing more to send.
    Gone,
}

struct Session {
    host: Arc<dyn Host>,
    claims: Claims,
    limits: Limits,
    /// The socket, shared with the sitting's fan-out, and where the events stand.
    conn: Arc<Conn>,
    handle: Option<SittingHandle>,
    bucket: TokenBucket,
    violations: u32,
    in_flight: FuturesUnordered<Pending>,
    /// Media connections opened over this connection, closed with it.
    media_legs: Vec<LegId>,
    /// New offers of the SFU (tracks published since), for the connections above.
    media_offers: Option<broadcast::Receiver<LegEvent>>,
    /// Microphone levels, for a presiding account receiving media.
    media_levels: Option<tokio::sync::watch::Receiver<Arc<Vec<Level>>>>,
}

/// Runs a connection until it closes.
pub async fn run(socket: WebSocket, host: Arc<dyn Host>, claims: Claims, limits: Limits) {
    // This task's waker: the fan-out wakes the session with it.
    let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
    let conn = Conn::new(socket, claims.roles.clone(), waker, limits.fanout_queue);
    let actor = claims.sub.clone();
    let mut kicked = host.kicked(&actor);
    let expires_in =
        Duration::from_millis(u64::try_from(claims.exp.0 - now_millis().0).unwrap_or(0));
    let mut s = Session {
        bucket: TokenBucket::new(
            limits.commands_per_sec,
            limits.command_burst,
            Instant::now(),
        ),
        host,
        claims,
        limits,
        conn,
        handle: None,
        violations: 0,
        in_flight: FuturesUnordered::new(),
        media_legs: Vec::new(),
        media_offers: None,
        media_levels: None,
    };
    tracing::debug!(actor = %actor, "connection open");
    telemetry::connection(1.0);
    let welcome = ServerMessage::Welcome {
        v: PROTOCOL_VERSION,
        actor: actor.clone(),
        roles: s.claims.roles.clone(),
        now: now_millis(),
    };
    let end = match s.send(&welcome).await {
        Err(end) => end,
        Ok(()) => s.main_loop(&mut kicked, expires_in).await,
    };
    s.conn.lock().leave_direct();
    if let End::Close(code, reason) = end {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = s.send_raw(Message::Close(Some(frame))).await;
        // Finish the closing handshake: read (and drop) what the client still sends until
        // its Close, so the socket is not reset with our Close frame unread.
        let conn = s.conn.clone();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = poll_fn(|cx| conn.poll_next(cx)).await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    s.conn.close();
    if let Some(media) = s.host.media()
        && !s.media_legs.is_empty()
    {
        media.close_all(&actor, &s.media_legs).await;
    }
    tracing::debug!(actor = %actor, "connection closed");
    telemetry::connection(-1.0);
}

async fn next_offer(
    rx: &mut Option<broadcast::Receiver<LegEvent>>,
) -> Result<LegEvent, broadcast::error::RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_levels(
    rx: &mut Option<tokio::sync::watch::Receiver<Arc<Vec<Level>>>>,
) -> Option<Arc<Vec<Level>>> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(r.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

impl Session {
    async fn main_loop(
        &mut self,
        kicked: &mut tokio::sync::watch::Receiver<u64>,
        expires_in: Duration,
    ) -> End {
        let mut ping = tokio::time::interval(self.limits.ping);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let expiry = tokio::time::sleep(expires_in);
        tokio::pin!(expiry);
        // One idle timer for the whole connection, moved on when the client is heard from,
        // rather than a new one each time round the loop.
        let idle = tokio::time::sleep(self.limits.idle_timeout);
        tokio::pin!(idle);
        loop {
            let step = tokio::select! {
                biased;
                _ = kicked.changed() => Err(End::Close(close_code::POLICY, "logged out")),
                _ = &mut expiry => Err(End::Close(close_code::POLICY, "token expired")),
                Some((command_id, outcome, answered, read)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    let sent = self.answer(command_id, outcome).await;
                    stages::record(Stage::Ack, answered.elapsed());
                    stages::record(Stage::Command, read.elapsed());
                    sent
                }
                () = poll_fn(|_| self.conn.poll_needs_session()) => self.on_fanout().await,
                offer = next_offer(&mut self.media_offers) => self.on_offer(offer).await,
                levels = next_levels(&mut self.media_levels) => self.on_levels(levels).await,
                incoming = poll_fn(|cx| self.conn.poll_next(cx)) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + self.limits.idle_timeout);
                    match incoming {
                        None => Err(End::Gone),
                        Some(Err(e)) => Err(classify_transport_error(&e)),
                        Some(Ok(Message::Text(text))) => {
                            telemetry::message_received();
                            self.on_text(text.as_str()).await
                        }
                        Some(Ok(Message::Binary(_))) => {
                            Err(End::Close(close_code::UNSUPPORTED, "binary frames are not supported"))
                        }
                        Some(Ok(Message::Close(_))) => Err(End::Gone),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    }
                }
                _ = ping.tick() => self.send_raw(Message::Ping(Default::default())).await,
                _ = &mut idle => {
                    Err(End::Close(close_code::AWAY, "idle timeout"))
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn send_raw(&mut self, msg: Message) -> Result<(), End> {
        self.write(Some(msg)).await?;
        telemetry::message_sent();
        Ok(())
    }

    /// Writes `msg` (if any), then the fan-out's queue, and flushes what the socket holds.
    /// The peer is gone when the socket takes nothing for [`SEND_TIMEOUT`]: a reader that
    /// is slow but takes the queue message by message is not cut off.
    async fn write(&mut self, mut msg: Option<Message>) -> Result<(), End> {
        let conn = &self.conn;
        let mut drained = conn.lock().drained();
        loop {
            match tokio::time::timeout(SEND_TIMEOUT, poll_fn(|cx| conn.poll_send(&mut msg, cx)))
                .await
            {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => return Err(End::Gone),
                Err(_) => {
                    let now = conn.lock().drained();
                    if msg.is_some() || now == drained {
                        return Err(End::Gone);
                    }
                    drained = now;
                }
            }
        }
    }

    async fn send(&mut self, msg: &ServerMessage) -> Result<(), End> {
        let text = serde_json::to_string(msg).unwrap_or_default();
        self.send_raw(Message::Text(text.into())).await
    }

    async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), End> {
        self.send_raw(Message::Text(text.into())).await
    }

    async fn error(
        &mut self,
        command_id: Option<String>,
        code: &str,
        message: String,
    ) -> Result<(), End> {
        self.send(&ServerMessage::Error {
            v: PROTOCOL_VERSION,
            command_id,
            code: code.to_owned(),
            message,
        })
        .await
    }

    async fn on_text(&mut self, text: &str) -> Result<(), End> {
        if text.len() > self.limits.max_message_bytes {
            return Err(End::Close(close_code::SIZE, "message too large"));
        }
        let parsing = Instant::now();
        let parsed = serde_json::from_str::<ClientMessage>(text);
        stages::record(Stage::Parse, parsing.elapsed());
        let msg: ClientMessage = match parsed {
            Ok(m) => m,
            Err(e) => {
                let code = if e.is_data() {
                    "invalid_message"
                } else {
                    "malformed_json"
                };
                let mut detail = e.to_string();
                detail.truncate(300);
                // Name the command the error answers, if its id can be read at all.
                let command_id = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| {
                        v.get("command_id")
                            .and_then(|c| c.as_str())
                            .map(str::to_owned)
                    })
                    .filter(|c| c.len() <= MAX_COMMAND_ID_BYTES);
                return self.error(command_id, code, detail).await;
            }
        };
        if !(OLDEST_VERSION..=PROTOCOL_VERSION).contains(&msg.version()) {
            return self
                .error(
                    None,
                    "unsupported_version",
                    format!("this server speaks versions {OLDEST_VERSION} to {PROTOCOL_VERSION}"),
                )
                .await;
        }
        match msg {
            ClientMessage::Ping { .. } => {
                self.send(&ServerMessage::Pong {
                    v: PROTOCOL_VERSION,
                    now: now_millis(),
                })
                .await
            }
            ClientMessage::Subscribe {
                v,
                sitting,
                resume_from,
                epoch,
            } => self.subscribe(&sitting, resume_from, epoch, v >= 2).await,
            ClientMessage::MediaPublish { .. }
            | ClientMessage::MediaSubscribe { .. }
            | ClientMessage::MediaAnswer { .. }
            | ClientMessage::MediaCandidate { .. }
            | ClientMessage::MediaMute { .. }
            | ClientMessage::MediaClose { .. } => self.on_media(msg).await,
            ClientMessage::Command {
                command_id,
                command,
                step_up,
                ..
            } => {
                let cid = Some(command_id.clone());
                if !valid_client_id(&command_id) {
                    return self
                        .error(cid, "invalid_command_id", format!("command_id must be 1 to {MAX_COMMAND_ID_BYTES} printable ASCII characters"))
                        .await;
                }
                if let Some(over) = self.over_rate_limit(cid.clone()).await {
                    return over;
                }
                let Some(handle) = self.handle.clone() else {
                    return self
                        .error(cid, "not_subscribed", "subscribe to a sitting first".into())
                        .await;
                };
                if self.in_flight.len() >= self.limits.max_in_flight {
                    return self
                        .error(
                            cid,
                            "too_many_in_flight",
                            "wait for acknowledgements before sending more".into(),
                        )
                        .await;
                }
                let actor = self.claims.sub.clone();
                let host = self.host.clone();
                self.in_flight.push(Box::pin(async move {
                    let (outcome, answered) = super::commands::execute(
                        &*host,
                        &handle,
                        &actor,
                        &command_id,
                        command,
                        step_up.map(|b| *b),
                    )
                    .await;
                    (command_id, outcome.map(|ack| ack.seq), answered, parsing)
                }));
                Ok(())
            }
        }
    }

    /// Takes one token of the connection's rate limit. Over it: `Some` of an error reply
    /// naming `id`, or of the close once the client keeps on.
    async fn over_rate_limit(&mut self, id: Option<String>) -> Option<Result<(), End>> {
        if self.bucket.take(Instant::now()) {
            return None;
        }
        self.violations += 1;
        if self.violations > self.limits.max_rate_violations {
            return Some(Err(End::Close(close_code::POLICY, "rate limit exceeded")));
        }
        Some(
            self.error(id, "rate_limited", "too many requests; slow down".into())
                .await,
        )
    }

    /// Media signalling: rate-limited like commands, answered with `media_sdp`/`media_ok`
    /// or an `error` naming the request.
    async fn on_media(&mut self, msg: ClientMessage) -> Result<(), End> {
        let request_id = match &msg {
            ClientMessage::MediaPublish { request_id, .. }
            | ClientMessage::MediaSubscribe { request_id, .. }
            | ClientMessage::MediaAnswer { request_id, .. }
            | ClientMessage::MediaMute { request_id, .. }
            | ClientMessage::MediaClose { request_id, .. } => Some(request_id.clone()),
            _ => None,
        };
        if let Some(r) = &request_id
            && !valid_client_id(r)
        {
            return self
                .error(
                    None,
                    "invalid_request_id",
                    format!(
                        "request_id must be 1 to {MAX_COMMAND_ID_BYTES} printable ASCII characters"
                    ),
                )
                .await;
        }
        if let Some(over) = self.over_rate_limit(request_id.clone()).await {
            return over;
        }
        let Some(media) = self.host.media().cloned() else {
            return self
                .error(
                    request_id,
                    "media_disabled",
                    "the media plane is not running".into(),
                )
                .await;
        };
        let actor = self.claims.sub.clone();
        let leg = LegId;
        let outcome = match msg {
            ClientMessage::MediaPublish {
                request_id, sdp, ..
            } => media
                .publish(&actor, sdp)
                .await
                .map(|(l, sdp)| (request_id, Some(l), Some(("answer", sdp)))),
            ClientMessage::MediaSubscribe { request_id, .. } => media
                .subscribe(&actor)
                .await
                .map(|(l, sdp)| (request_id, Some(l), Some(("offer", sdp)))),
            ClientMessage::MediaAnswer {
                request_id,
                media: m,
                sdp,
                ..
            } => media
                .answer(&actor, leg(m), sdp)
                .await
                .map(|()| (request_id, Some(leg(m)), None)),
            ClientMessage::MediaClose {
                request_id,
                media: m,
                ..
            } => media.close(&actor, leg(m)).await.map(|()| {
                self.media_legs.retain(|l| *l != leg(m));
                (request_id, Some(leg(m)), None)
            }),
            ClientMessage::MediaMute {
                request_id,
                participant,
                muted,
                ..
            } => media
                .mute(&actor, &ActorId::new(&participant), muted)
                .await
                .map(|()| (request_id, None, None)),
            ClientMessage::MediaCandidate {
                media: m,
                candidate,
                ..
            } => {
                return match media.candidate(&actor, leg(m), candidate).await {
                    Ok(()) => Ok(()),
                    Err(e) => self.error(None, e.code(), e.to_string()).await,
                };
            }
            _ => return Ok(()),
        };
        match outcome {
            Ok((request_id, Some(l), Some((sdp_type, sdp)))) => {
                self.media_legs.push(l);
                if self.media_offers.is_none() {
                    self.media_offers = Some(media.driver().events());
                }
                if sdp_type == "offer"
                    && self.media_levels.is_none()
                    && media.presides(&self.claims.sub)
                {
                    self.media_levels = Some(media.levels());
                }
                self.send(&ServerMessage::MediaSdp {
                    v: PROTOCOL_VERSION,
                    request_id: Some(request_id),
                    media: l.0,
                    sdp_type: sdp_type.to_owned(),
                    sdp,
                    ice_servers: media.ice_servers().iter().map(IceServer::from).collect(),
                })
                .await
            }
            Ok((request_id, l, _)) => {
                self.send(&ServerMessage::MediaOk {
                    v: PROTOCOL_VERSION,
                    request_id,
                    media: l.map(|l| l.0),
                })
                .await
            }
            Err(e) => self.error(request_id, e.code(), e.to_string()).await,
        }
    }

    /// Who is talking, to a chair console.
    async fn on_levels(&mut self, levels: Option<Arc<Vec<Level>>>) -> Result<(), End> {
        let Some(levels) = levels else {
            self.media_levels = None;
            return Ok(());
        };
        self.send(&ServerMessage::MediaLevels {
            v: PROTOCOL_VERSION,
            levels: levels.iter().map(MicLevel::from).collect(),
        })
        .await
    }

    /// What the SFU did by itself to this connection's media: a new offer (tracks were
    /// published since), or a connection that ended (its peer vanished).
    async fn on_offer(
        &mut self,
        event: Result<LegEvent, broadcast::error::RecvError>,
    ) -> Result<(), End> {
        match event {
            Ok(LegEvent::Offer(o))
                if self.media_legs.contains(&o.leg) && o.owner.0 == self.claims.sub.0 =>
            {
                self.send_offer(o.leg, o.sdp).await
            }
            Ok(LegEvent::Closed { leg, .. }) if self.media_legs.contains(&leg) => {
                self.media_legs.retain(|l| *l != leg);
                self.send(&ServerMessage::MediaClosed {
                    v: PROTOCOL_VERSION,
                    media: leg.0,
                })
                .await
            }
            Ok(_) => Ok(()),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Offers may have been missed: send again what still waits for an answer.
                tracing::warn!(actor = %self.claims.sub, skipped = n, "media events missed");
                let Some(media) = self.host.media().cloned() else {
                    return Ok(());
                };
                for leg in self.media_legs.clone() {
                    if let Ok(Some(sdp)) = media.driver().pending_offer(leg).await {
                        self.send_offer(leg, sdp).await?;
                    }
                }
                Ok(())
            }
            Err(broadcast::error::RecvError::Closed) => {
                self.media_offers = None;
                Ok(())
            }
        }
    }

    async fn send_offer(&mut self, leg: LegId, sdp: String) -> Result<(), End> {
        let ice_servers = self
            .host
            .media()
            .map(|m| m.ice_servers().iter().map(IceServer::from).collect())
            .unwrap_or_default();
        self.send(&ServerMessage::MediaSdp {
            v: PROTOCOL_VERSION,
            request_id: None,
            media: leg.0,
            sdp_type: "offer".to_owned(),
            sdp,
            ice_servers,
        })
        .await
    }

    async fn answer(
        &mut self,
        command_id: String,
        outcome: Result<u64, SubmitError>,
    ) -> Result<(), End> {
        match outcome {
            Ok(seq) => {
                self.send(&ServerMessage::Ack {
                    v: PROTOCOL_VERSION,
                    command_id,
                    seq,
                })
                .await
            }
            Err(SubmitError::Rejected(r)) => {
                self.error(Some(command_id), r.code.as_str(), r.detail)
                    .await
            }
            Err(SubmitError::Storage) => {
                self.error(
                    Some(command_id),
                    "storage_unavailable",
                    "not recorded; retry with the same command_id".into(),
                )
                .await
            }
            Err(SubmitError::Unavailable) => {
                self.error(
                    Some(command_id),
                    "unavailable",
                    "the sitting is not available; retry later".into(),
                )
                .await
            }
        }
    }

    /// Starts a new subscription on this connection: the share of an earlier one lets go.
    fn subscribe_as(&mut self, batched: bool) {
        let mut st = self.conn.lock();
        st.leave_direct();
        st.clear_queue();
        st.subscription += 1;
        st.batched = batched;
        st.attention = false;
        st.resync = false;
    }

    async fn subscribe(
        &mut self,
        sitting: &str,
        resume_from: Option<u64>,
        epoch: Option<String>,
        batched: bool,
    ) -> Result<(), End> {
        let Some(handle) = self.host.sitting(&SittingId::new(sitting)) else {
            return self
                .error(None, "no_such_sitting", format!("no sitting {sitting:?}"))
                .await;
        };
        if handle.roster().actor(&self.claims.sub).is_none() {
            return self
                .error(
                    None,
                    "not_permitted",
                    format!("{} is not in the roster of this sitting", self.claims.sub),
                )
                .await;
        }
        self.subscribe_as(batched);
        self.handle = Some(handle.clone());
        let head = handle.summary().seq;
        let resumable = match (resume_from, epoch.as_deref()) {
            (Some(n), Some(e)) => {
                e == handle.epoch() && n <= head && head - n <= self.limits.max_resume_gap
            }
            _ => false,
        };
        match resume_from {
            Some(n) if resumable => {
                self.set_last_sent(n);
                self.fill_from_log().await?;
            }
            _ => self.send_snapshot().await?,
        }
        // From here the sitting's fan-out writes the new events, once it holds the
        // connection and the session has caught up with what was committed meanwhile.
        let subscription = self.conn.lock().subscription;
        handle
            .fanout(self.limits.fanout_tasks)
            .join(self.conn.clone(), subscription);
        Ok(())
    }

    fn last_sent(&self) -> u64 {
        self.conn.lock().last_sent
    }

    fn set_last_sent(&self, seq: u64) {
        self.conn.lock().last_sent = seq;
    }

    /// What the fan-out asked of the session: end (the peer is gone or the writer
    /// stopped), finish a write the socket did not take at once, or catch up.
    async fn on_fanout(&mut self) -> Result<(), End> {
        let (gone, ended, unflushed) = {
            let st = self.conn.lock();
            (st.gone, st.ended, st.unflushed)
        };
        if gone {
            return Err(End::Gone);
        }
        if ended {
            return Err(End::Close(close_code::RESTART, "server restarting"));
        }
        if unflushed {
            self.write(None).await?;
        }
        self.catch_up().await
    }

    /// Sends what was committed since the last event sent (from the log, or a snapshot
    /// when too far behind), then hands the connection to the fan-out
    /// ([`super::fanout`] says why nothing is lost or sent twice).
    async fn catch_up(&mut self) -> Result<(), End> {
        let Some(handle) = self.handle.clone() else {
            self.conn.lock().attention = false;
            return Ok(());
        };
        loop {
            let step = {
                let mut st = self.conn.lock();
                st.attention = false;
                if st.is_direct() {
                    // Woken only to finish a write: the fan-out still holds the connection.
                    return Ok(());
                }
                if st.has_queued() && !st.resync {
                    // What the share queued comes before anything read from the log.
                    None
                } else {
                    let step = catch_up_step(
                        st.resync,
                        handle.summary().seq,
                        st.last_sent,
                        self.limits.max_resume_gap,
                        st.joined(),
                    );
                    match step {
                        CatchUp::Direct => st.go_direct(),
                        CatchUp::Resync => {
                            // The snapshot replaces whatever waited.
                            st.resync = false;
                            st.clear_queue();
                        }
                        CatchUp::ReadLog | CatchUp::WaitForShare => {}
                    }
                    Some(step)
                }
            };
            let Some(step) = step else {
                self.write(None).await?;
                continue;
            };
            match step {
                CatchUp::Direct | CatchUp::WaitForShare => return Ok(()),
                // A page at a time, so that a reader falling further behind is resynced.
                CatchUp::ReadLog => {
                    if !self.send_log_page().await? {
                        // The head is published after the commit, so the log has it; should
                        // a read still come back empty, try again shortly, not at once.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                CatchUp::Resync => {
                    tracing::info!(actor = %self.claims.sub, "slow connection told to resync");
                    self.send(&ServerMessage::Resync {
                        v: PROTOCOL_VERSION,
                        reason: "too far behind".into(),
                    })
                    .await?;
                    self.send_snapshot().await?;
                }
            }
        }
    }

    async fn send_snapshot(&mut self) -> Result<(), End> {
        let Some(handle) = self.handle.clone() else {
            return Ok(());
        };
        let (seq, text) = match handle.snapshot_message(&self.claims.roles).await {
            Ok(s) => s,
            Err(_) => return Err(End::Close(close_code::RESTART, "sitting unavailable")),
        };
        self.set_last_sent(seq);
        self.send_text(&*text).await
    }

    /// Sends the events in the log after the last one sent, to its end.
    async fn fill_from_log(&mut self) -> Result<(), End> {
        while self.send_log_page().await? {}
        Ok(())
    }

    /// Sends the next page of events from the log after the last one sent; false when
    /// there was none.
    async fn send_log_page(&mut self) -> Result<bool, End> {
        let Some(handle) = self.handle.clone() else {
            return Ok(false);
        };
        let reading = std::time::Instant::now();
        let read = self
            .host
            .store()
            .events_after(handle.id(), self.last_sent(), LOG_PAGE)
            .await;
        stages::record(Stage::LogRead, reading.elapsed());
        let page = match read {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reading the log for a client failed");
                return Err(End::Close(close_code::ERROR, "log unavailable"));
            }
        };
        if page.is_empty() {
            return Ok(false);
        }
        let access = handle.document_access();
        let roles = &self.claims.roles;
        let entries: Vec<(u64, Arc<str>)> = page
            .iter()
            .map(|e| (e.seq, visible_entry(e, roles, &access)))
            .collect();
        self.send_entries(&entries).await?;
        Ok(true)
    }

    /// Sends events after the last one sent, in order: in `events` messages of at most
    /// [`FRAME_EVENTS`] on a batched connection, one `event` message each otherwise.
    async fn send_entries(&mut self, entries: &[(u64, Arc<str>)]) -> Result<(), End> {
        if self.conn.lock().batched {
            for chunk in entries.chunks(FRAME_EVENTS) {
                let Some(&(last, _)) = chunk.last() else {
                    continue;
                };
                self.send_text(events_frame(chunk.iter().map(|(_, e)| &**e)))
                    .await?;
                self.set_last_sent(last);
            }
        } else {
            for (seq, entry) in entries {
                self.send_text(event_message_of(entry)).await?;
                self.set_last_sent(*seq);
            }
        }
        Ok(())
    }
}

fn classify_transport_error(e: &axum::Error) -> End {
    let text = e.to_string();
    if text.contains("UTF-8") || text.contains("utf-8") || text.contains("Utf8") {
        End::Close(close_code::INVALID, "invalid UTF-8")
    } else if text.contains("too long") || text.contains("Space limit") || text.contains("capacity")
    {
        End::Close(close_code::SIZE, "message too large")
    } else {
        End::Gone
    }
}
