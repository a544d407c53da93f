//! The SFU's sans-IO core: every leg, the router and the load governor, driven by what the
//! caller hands it: datagrams ([`Core::handle_datagram`], sent together by
//! [`Core::send_outbox`] when a batch read together is handled), commands ([`Core::handle_command`]) and
//! the time ([`Core::handle_timeout`]), each with `now`. It reads no clock and owns no
//! socket: what it sends goes to a [`Wire`] in batches (the sockets in `io`, or a simulated
//! network in the tests). This file keeps the legs' table and life cycle, commands and
//! input and output; signalling is in `signal`, forwarding in `fanout`.

use super::engine;
use super::legs::{Leg, LegKind, MAX_REMOTE_CANDIDATES};
use super::meter::Meter;
use super::port::{Lane, SEND_BATCH};
use super::shard::{Decoded, Outgoing, Place, Relay, leg_id};
use super::wire::{is_picture, sdp_ufrag, stun_target_ufrag};
use super::{Cmd, DriverError, LegEvent, LegId, Level, Stats, rtc_err};
use crate::routing::{self, Action, Kind, Layer, Media, ParticipantId, Router, TrackId, Tuning};
use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where the core's datagrams go.
pub(super) trait Wire: Send {
    /// Sends `datagrams` from `lane`'s address, in order, and empties the list.
    fn send(&mut self, lane: Lane, datagrams: &mut Vec<(BytesMut, SocketAddr)>);
}

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handled {
    /// It may have given legs something to send.
    Changed,
    /// It answered without changing anything.
    Unchanged,
    /// The core is to stop.
    Stop,
}

pub(super) struct Core {
    /// Which shard this core is (the home shard holds the publishers), and what it has to
    /// tell the others.
    pub(super) place: Place,
    pub(super) outgoing: Outgoing,
    pub(super) events: tokio::sync::broadcast::Sender<LegEvent>,
    /// The thread's own load, and the governor deciding what to shed and whom to admit.
    pub(super) meter: Meter,
    /// The counter of the next leg id ([`Core::next_leg_id`]), and where each live leg is
    /// in `legs`.
    pub(super) next_id: u64,
    pub(super) ids: HashMap<LegId, usize>,
    /// Where datagrams go (the sockets, or a simulated network).
    pub(super) wire: Box<dyn Wire>,
    /// For each lane ([`Lane::index`]): the datagrams waiting to be sent, in order, handed
    /// to the wire together ([`Core::send_outbox`]) once the packet or command that made
    /// them is handled, or as soon as a batch is full.
    pub(super) outbox: [Vec<(BytesMut, SocketAddr)>; 2],
    /// Legs written to by the fan-out whose datagrams are not yet taken out: each is
    /// drained once before the outbox is sent ([`Core::send_outbox`]), however many
    /// packets were written to it meanwhile (`pending_mark`, by index, says which).
    pub(super) pending: Vec<usize>,
    pub(super) pending_mark: Vec<bool>,
    /// For each lane: the address bound, and the one peers are told.
    pub(super) local: [SocketAddr; 2],
    pub(super) advertised: [SocketAddr; 2],
    /// When the core started, and the time of what it is handling now (given by the
    /// caller: the core reads no clock).
    pub(super) t0: Instant,
    pub(super) now: Instant,
    pub(super) router: Router,
    pub(super) joined: HashMap<ParticipantId, Kind>,
    pub(super) legs: Vec<Option<Leg>>,
    /// Slots of `legs` freed by departures, reused first so the table does not grow.
    pub(super) free: Vec<usize>,
    pub(super) by_addr: HashMap<(Lane, SocketAddr), usize>,
    pub(super) by_ufrag: HashMap<String, usize>,
    /// For each track, the legs (and their slot) it is forwarded to now.
    pub(super) fanout: HashMap<TrackId, Vec<usize>>,
    pub(super) next_track: u32,
    pub(super) stats: Stats,
    /// Legs whose connection failed (ICE consent lost, DTLS failed), to close.
    pub(super) failed: Vec<usize>,
    /// Subscriber legs that just connected: they start receiving, with a keyframe.
    pub(super) connected: Vec<usize>,
    /// Router decisions not yet carried out (keyframe requests; forwarding changes are
    /// applied by `rebuild_fanout`).
    pub(super) actions: Vec<Action>,
    /// The publisher's SSRC of each track and layer, learned from its packets.
    pub(super) ssrc_of: HashMap<(TrackId, Layer), u32>,
    /// The loudest level (−dBov) and any voice activity of each microphone since last read.
    pub(super) levels: HashMap<ParticipantId, (u8, bool)>,
}

impl Core {
    /// A core with no legs, at `now`, sending on `wire` from the addresses of `lanes`
    /// (bound, advertised), [`Lane::Priority`] first; shard `place`.
    pub(super) fn new(
        place: Place,
        wire: Box<dyn Wire>,
        lanes: [(SocketAddr, SocketAddr); 2],
        tuning: Tuning,
        meter: Meter,
        events: tokio::sync::broadcast::Sender<LegEvent>,
        now: Instant,
    ) -> Core {
        Core {
            place,
            outgoing: Outgoing::default(),
            meter,
            events,
            next_id: 1,
            ids: HashMap::new(),
            wire,
            outbox: [Vec::new(), Vec::new()],
            pending: Vec::new(),
            pending_mark: Vec::new(),
            local: lanes.map(|(local, _)| local),
            advertised: lanes.map(|(_, advertised)| advertised),
            t0: now,
            now,
            router: Router::new(tuning),
            joined: HashMap::new(),
            legs: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            fanout: HashMap::new(),
            next_track: 1,
            stats: Stats::default(),
            failed: Vec::new(),
            connected: Vec::new(),
            actions: Vec::new(),
            ssrc_of: HashMap::new(),
            levels: HashMap::new(),
        }
    }

    pub(super) fn now_ms(&self) -> routing::Millis {
        u64::try_from(self.now.saturating_duration_since(self.t0).as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn add_host_candidate(
        &self,
        pc: &mut RTCPeerConnection,
        lane: Lane,
    ) -> Result<(), DriverError> {
        engine::add_host_candidate(pc, self.advertised[lane.index()])
    }

    pub(super) fn join(&mut self, who: &ParticipantId, kind: Kind, presiding: bool) {
        if !self.joined.contains_key(who) {
            self.joined.insert(who.clone(), kind);
            let now = self.now_ms();
            let a = self.router.join(who.clone(), kind, presiding, now);
            self.actions.extend(a);
        }
    }

    /// Where the live leg `leg` is.
    pub(super) fn index_of(&self, leg: LegId) -> Result<usize, DriverError> {
        self.ids.get(&leg).copied().ok_or(DriverError::NoSuchPeer)
    }

    /// The id of the leg at `idx`.
    pub(super) fn id_at(&self, idx: usize) -> LegId {
        self.legs
            .get(idx)
            .and_then(Option::as_ref)
            .map_or(LegId(0), |l| l.id)
    }

    pub(super) fn next_leg_index(&self) -> usize {
        self.free.last().copied().unwrap_or(self.legs.len())
    }

    /// The id the next leg made will have (its shard in the low byte).
    pub(super) fn next_leg_id(&self) -> u64 {
        leg_id(self.next_id, self.place.index)
    }

    pub(super) fn add_leg(&mut self, mut leg: Leg) -> usize {
        let idx = self.next_leg_index();
        leg.id = LegId(self.next_leg_id());
        self.next_id += 1;
        self.ids.insert(leg.id, idx);
        if let Some(u) = leg.pc.local_description().and_then(|d| sdp_ufrag(&d.sdp)) {
            self.by_ufrag.insert(u, idx);
        }
        if idx == self.legs.len() {
            self.legs.push(Some(leg));
        } else {
            self.free.pop();
            self.legs[idx] = Some(leg);
        }
        idx
    }

    /// The live leg `leg`.
    pub(super) fn leg_mut(&mut self, leg: LegId) -> Result<&mut Leg, DriverError> {
        let i = self.index_of(leg)?;
        self.legs
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(DriverError::NoSuchPeer)
    }

    pub(super) fn add_candidate(
        &mut self,
        leg: LegId,
        candidate: String,
    ) -> Result<(), DriverError> {
        let l = self.leg_mut(leg)?;
        if candidate.trim().is_empty() {
            return Ok(());
        }
        // Where the peer's packets come from is learned only from its own ICE checks (STUN
        // naming this leg), never from a signalled address: an account could otherwise name
        // another peer's address and take its packets.
        if l.remote_candidates >= MAX_REMOTE_CANDIDATES {
            return Err(DriverError::Rtc(format!(
                "more than {MAX_REMOTE_CANDIDATES} trickled candidates"
            )));
        }
        l.remote_candidates += 1;
        l.pc.add_remote_candidate(RTCIceCandidateInit {
            candidate,
            ..Default::default()
        })
        .map_err(rtc_err)
    }

    pub(super) fn close_leg(&mut self, leg: LegId) -> Result<(), DriverError> {
        let i = self.index_of(leg)?;
        self.close_index(i)
    }

    /// Takes the leg at `i` out of the table: closed (its goodbye sent), its slot free,
    /// nothing left pointing at it, no longer load to come.
    fn take_leg(&mut self, i: usize) -> Option<Leg> {
        let mut l = self.legs.get_mut(i).and_then(Option::take)?;
        let _ = l.pc.close();
        self.flush_closed(&mut l);
        self.free.push(i);
        self.ids.remove(&l.id);
        self.failed.retain(|f| *f != i);
        self.connected.retain(|c| *c != i);
        self.by_addr.retain(|_, v| *v != i);
        self.by_ufrag.retain(|_, v| *v != i);
        self.meter.release(l.id.0);
        Some(l)
    }

    pub(super) fn close_index(&mut self, i: usize) -> Result<(), DriverError> {
        let l = self.take_leg(i).ok_or(DriverError::NoSuchPeer)?;
        let now = self.now_ms();
        if let LegKind::Publisher { audio, video, .. } = l.kind {
            for t in [audio, video].into_iter().flatten() {
                self.tell_others(Relay::Unpublished(t));
                self.withdraw(t, now);
            }
        }
        // On a shard other than the home one, a publisher (on the home shard) is still here
        // by its tracks when its last receiving leg here closes.
        let still_here = self.legs.iter().flatten().any(|x| x.owner == l.owner)
            || (!self.place.home() && self.stats.tracks.contains_key(&l.owner));
        if still_here {
            self.rebuild_fanout();
        } else {
            self.leave(&l.owner);
        }
        Ok(())
    }

    /// A track is withdrawn (its publisher's leg closed, here or on the home shard): the
    /// router and the counters forget it.
    pub(super) fn withdraw(&mut self, track: TrackId, now: routing::Millis) {
        let a = self.router.unpublish(track, now);
        self.actions.extend(a);
        self.stats.received.remove(&track);
        self.stats.forwarded.remove(&track);
        for list in self.stats.tracks.values_mut() {
            list.retain(|(t, _)| *t != track);
        }
    }

    /// Queues `relay` for the other shards, if there are any.
    pub(super) fn tell_others(&mut self, relay: Relay) {
        if self.place.shared() {
            self.outgoing.relays.push(relay);
        }
    }

    pub(super) fn leave(&mut self, who: &ParticipantId) {
        for i in 0..self.legs.len() {
            if self.legs[i].as_ref().is_some_and(|l| &l.owner == who) {
                self.take_leg(i);
            }
        }
        self.joined.remove(who);
        self.stats.estimates.remove(who);
        if let Some(tracks) = self.stats.tracks.remove(who) {
            for (t, _) in tracks {
                if self.place.home() {
                    self.tell_others(Relay::Unpublished(t));
                }
                self.stats.received.remove(&t);
                self.stats.forwarded.remove(&t);
            }
        }
        let now = self.now_ms();
        let a = self.router.leave(who, now);
        self.actions.extend(a);
        self.rebuild_fanout();
    }

    /// Carries out a command from the [`super::Driver`] handle at `now`, then sends what it
    /// made; false once told to stop. A command that changed nothing (a receiver refused
    /// for load, a question) sends nothing: emptying every leg after each of a wave of
    /// refusals took the thread's time from forwarding exactly when it had none to spare.
    pub(super) fn handle_command(&mut self, cmd: Cmd, now: Instant) -> bool {
        self.now = now;
        match self.command(cmd) {
            Handled::Stop => return false,
            Handled::Unchanged => return true,
            Handled::Changed => {}
        }
        for i in 0..self.legs.len() {
            self.flush(i);
        }
        self.send_outbox();
        true
    }

    pub(super) fn command(&mut self, cmd: Cmd) -> Handled {
        let outcome = |r: &Result<_, DriverError>| {
            if matches!(r, Err(DriverError::Overloaded { .. })) {
                Handled::Unchanged
            } else {
                Handled::Changed
            }
        };
        match cmd {
            Cmd::Publish(who, kind, presiding, offer, reply) => {
                let _ = reply.send(self.publish(who, kind, presiding, offer));
            }
            Cmd::SubscribeOffer(who, kind, presiding, offer, reply) => {
                let r = self.subscribe_with_offer(who, kind, presiding, offer);
                let handled = outcome(&r);
                let _ = reply.send(r);
                return handled;
            }
            Cmd::Candidate(leg, candidate, reply) => {
                let _ = reply.send(self.add_candidate(leg, candidate));
            }
            Cmd::CloseLeg(leg, reply) => {
                let _ = reply.send(self.close_leg(leg));
            }
            Cmd::PendingOffer(leg, reply) => {
                let offer = self.index_of(leg).map(|i| match self.legs.get(i) {
                    Some(Some(Leg {
                        pc,
                        kind:
                            LegKind::Subscriber {
                                awaiting_answer: true,
                                ..
                            },
                        ..
                    })) => pc.local_description().map(|d| d.sdp),
                    _ => None,
                });
                let _ = reply.send(offer);
                return Handled::Unchanged;
            }
            Cmd::Speaker(deputy, site, reply) => {
                let now = self.now_ms();
                let a = self.router.set_speaker(deputy, site, now);
                self.actions.extend(a);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Subscribe(who, kind, presiding, reply) => {
                let r = self.subscribe(who, kind, presiding);
                let handled = outcome(&r);
                let _ = reply.send(r);
                return handled;
            }
            Cmd::Answer(leg, answer, reply) => {
                let _ = reply.send(self.answer(leg, answer));
            }
            Cmd::Floor(speaker, reply) => {
                let now = self.now_ms();
                let a = self.router.set_floor(speaker, now);
                self.actions.extend(a);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Mute(who, muted, reply) => {
                let now = self.now_ms();
                let a = self.router.set_muted(&who, muted, now);
                self.actions.extend(a);
                self.rebuild_fanout();
                let _ = reply.send(Ok(()));
            }
            Cmd::Leave(who, reply) => {
                self.leave(&who);
                let _ = reply.send(Ok(()));
            }
            Cmd::Levels(reply) => {
                let mut levels: Vec<Level> = self
                    .levels
                    .drain()
                    .map(|(participant, (dbov, voice))| Level {
                        participant,
                        dbov,
                        voice,
                    })
                    .collect();
                levels.sort_by(|a, b| a.participant.cmp(&b.participant));
                let _ = reply.send(levels);
                return Handled::Unchanged;
            }
            Cmd::Stats(reply) => {
                let mut stats = self.stats.clone();
                for (_, f) in self.router.forwarded() {
                    if let crate::routing::Forward::Video(layer) = f {
                        *stats.layers.entry(*layer).or_default() += 1;
                    }
                }
                let _ = reply.send(stats);
                return Handled::Unchanged;
            }
            Cmd::Stop => return Handled::Stop,
        }
        Handled::Changed
    }

    /// Sends what a closing leg still has to say (DTLS close_notify).
    pub(super) fn flush_closed(&mut self, leg: &mut Leg) {
        let lane = leg.lane;
        let out = &mut self.outbox[lane.index()];
        while let Some(msg) = leg.pc.poll_write() {
            out.push((msg.message, msg.transport.peer_addr));
        }
        self.wire.send(lane, out);
    }

    /// Marks a leg the fan-out wrote to: drained before the outbox is sent.
    pub(super) fn mark_pending(&mut self, idx: usize) {
        if self.pending_mark.len() <= idx {
            self.pending_mark.resize(idx + 1, false);
        }
        if !std::mem::replace(&mut self.pending_mark[idx], true) {
            self.pending.push(idx);
        }
    }

    /// Takes what a leg has to send into the outbox (a full batch goes at once).
    ///
    /// Each call runs the whole of webrtc-rs's pipeline for the leg, however little it
    /// holds, and once more to find it empty: what is written to one leg while a batch of
    /// datagrams is handled is taken out together, once ([`Core::mark_pending`]).
    fn drain(&mut self, idx: usize) {
        let Some(Some(leg)) = self.legs.get_mut(idx) else {
            return;
        };
        let lane = leg.lane;
        let out = &mut self.outbox[lane.index()];
        while let Some(msg) = leg.pc.poll_write() {
            out.push((msg.message, msg.transport.peer_addr));
        }
        if out.len() >= SEND_BATCH {
            // A full batch goes at once: the first subscribers need not wait for the last.
            self.wire.send(lane, out);
        }
    }

    /// Drains every leg the fan-out wrote to since the last time.
    fn drain_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for &i in &pending {
            if let Some(m) = self.pending_mark.get_mut(i) {
                *m = false;
            }
            self.drain(i);
        }
        // The list's allocation is kept for the next batch.
        self.pending = pending;
        self.pending.clear();
    }

    /// Takes what a leg has to send into the outbox, and acts on its events.
    pub(super) fn flush(&mut self, idx: usize) {
        self.drain(idx);
        let Some(Some(leg)) = self.legs.get_mut(idx) else {
            return;
        };
        while let Some(event) = leg.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Failed,
                ) => {
                    tracing::info!(leg = idx, owner = %leg.owner.0, "media connection failed");
                    self.failed.push(idx);
                }
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Connected,
                ) => {
                    tracing::debug!(leg = idx, owner = %leg.owner.0, "media connected");
                    self.connected.push(idx);
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    // A simulcast layer's SSRC is bound to its rid: remember its layer.
                    if let LegKind::Publisher { rids, layers, .. } = &mut leg.kind
                        && let Some(rid) = init.rid.as_deref()
                        && let Some((_, layer)) = rids.iter().find(|(r, _)| r == rid)
                    {
                        tracing::debug!(
                            leg = idx,
                            rid,
                            ssrc = init.ssrc,
                            ?layer,
                            "simulcast layer"
                        );
                        layers.insert(init.ssrc, *layer);
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends what waits on both sockets, the publishers' first, after taking out what the
    /// fan-out wrote to its legs.
    pub(super) fn send_outbox(&mut self) {
        self.drain_pending();
        for lane in [Lane::Priority, Lane::General] {
            self.wire.send(lane, &mut self.outbox[lane.index()]);
        }
    }

    /// Hands one datagram, arrived at `now` on `lane` from `from`, to the leg it is for
    /// (known by its address, or by the ICE user fragment its STUN check names), then
    /// forwards what the leg decoded; what that writes to receivers waits for
    /// [`Core::send_outbox`], so that datagrams read together are sent together. Returns
    /// whether it came from a publisher: forwarding work, whose time the caller reports
    /// with [`Core::record_forwarding`].
    pub(super) fn handle_datagram(
        &mut self,
        lane: Lane,
        datagram: BytesMut,
        from: SocketAddr,
        now: Instant,
    ) -> bool {
        self.now = now;
        let idx = self.by_addr.get(&(lane, from)).copied().or_else(|| {
            let i = stun_target_ufrag(&datagram).and_then(|u| self.by_ufrag.get(&u).copied())?;
            // A leg answers on its own socket only.
            if self.legs.get(i)?.as_ref()?.lane != lane {
                return None;
            }
            self.by_addr.insert((lane, from), i);
            Some(i)
        });
        let local = self.local[lane.index()];
        if let Some(i) = idx
            && let Some(Some(leg)) = self.legs.get_mut(i)
        {
            let publisher = matches!(leg.kind, LegKind::Publisher { .. });
            let msg = TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: datagram,
            };
            if let Err(e) = leg.pc.handle_read(msg) {
                tracing::debug!(error = %e, "media packet refused");
            }
            self.forward(i);
            if let Some(Some(leg)) = self.legs.get_mut(i) {
                while leg.pc.poll_read().is_some() {}
            }
            self.flush(i);
            return publisher;
        }
        false
    }

    /// Control from another shard, at `now`; then sends what it made.
    pub(super) fn receive_relay(&mut self, relay: Relay, now: Instant) {
        self.now = now;
        self.relayed(relay);
        for i in 0..self.legs.len() {
            self.flush(i);
        }
        self.send_outbox();
    }

    /// Publisher packets decoded on the home shard, at `now`: written to this shard's
    /// receivers and sent.
    pub(super) fn receive_packets(&mut self, batch: &[Decoded], now: Instant) {
        self.now = now;
        self.fan_out_relayed(batch);
        self.send_outbox();
    }

    /// Ends a load interval; sheds or restores forwarding when the governor says so.
    pub(super) fn sample_load(&mut self, now: Instant) {
        let speaker = self.router.speaker().cloned();
        let programme: HashMap<TrackId, Media> = self
            .stats
            .tracks
            .iter()
            .filter(|(owner, _)| {
                self.joined.get(*owner) == Some(&Kind::Chamber) || speaker.as_ref() == Some(*owner)
            })
            .flat_map(|(_, tracks)| tracks.iter().copied())
            .collect();
        let sheddable = self.router.shedding_order().len();
        let at = self.now_ms();
        if let Some(shed) = self
            .meter
            .sample(now, at, |t| programme.get(&t).copied(), sheddable)
        {
            tracing::warn!(
                low_layers = shed.low_layers,
                video_off = shed.video_off,
                "media load: shedding changed"
            );
            let a = self.router.set_shed(shed, at);
            self.actions.extend(a);
            self.rebuild_fanout();
        }
    }

    /// Runs what is due at `now`: the legs' timers (ICE consent, DTLS and RTCP), the
    /// release of failed legs, new subscribers' first keyframes, the load interval and the
    /// router's timers; then sends what they made.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for i in 0..self.legs.len() {
            if let Some(Some(leg)) = self.legs.get_mut(i)
                && leg.pc.poll_timeout().is_some_and(|t| t <= now)
            {
                let _ = leg.pc.handle_timeout(now);
                self.flush(i);
            }
        }
        // Release what failed (a peer gone without a goodbye loses ICE consent).
        while let Some(i) = self.failed.pop() {
            if let Some(Some(l)) = self.legs.get(i) {
                let _ = self.events.send(LegEvent::Closed {
                    leg: l.id,
                    owner: l.owner.clone(),
                });
            }
            let _ = self.close_index(i);
        }
        self.keyframes_for_connected();
        if self.meter.due(now) {
            self.sample_load(now);
        }
        let a = self.router.tick(self.now_ms());
        // A try one layer up started or ended: the slots take their new targets.
        let moved = a
            .iter()
            .any(|x| !matches!(x, Action::RequestKeyframe { .. }));
        self.actions.extend(a);
        if moved {
            self.rebuild_fanout();
        }
        self.carry_out();
        self.send_outbox();
    }

    /// Whether `datagram`, arrived on `lane` from `from`, is a publisher's picture packet
    /// (read after sound and control).
    pub(super) fn is_picture(&self, lane: Lane, datagram: &[u8], from: SocketAddr) -> bool {
        match self
            .by_addr
            .get(&(lane, from))
            .and_then(|i| self.legs.get(*i))
        {
            Some(Some(Leg {
                kind: LegKind::Publisher { payload_types, .. },
                ..
            })) => is_picture(datagram, payload_types),
            _ => false,
        }
    }

    /// Time the caller spent working for the core rather than waiting.
    pub(super) fn record_busy(&mut self, d: Duration) {
        self.meter.busy(d);
    }

    /// Of that, time spent on a publisher's packet ([`Core::handle_datagram`] said so) and
    /// on sending what it made.
    pub(super) fn record_forwarding(&mut self, d: Duration) {
        self.meter.forwarding(d);
    }
}
