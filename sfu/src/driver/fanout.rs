//! Forwarding on the core: a publisher's packets written to every subscriber slot the
//! router allows, at its layer (`crate::forward` rewrites them); which legs each track goes
//! to (rebuilt from the router); subscribers' feedback (keyframe requests, estimates) and
//! the keyframes asked of publishers.

use super::core::Core;
use super::legs::{Leg, LegKind};
use super::shard::{Decoded, Relay};
use crate::feedback::{self, Request, SenderEstimate};
use crate::forward::{audio_level, strip_extensions, vp8_ids, vp8_keyframe};
use crate::routing::{self, Action, Forward, Layer, Media, ParticipantId, ProgrammeLine, TrackId};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use std::collections::HashMap;
use std::sync::Arc;

impl Core {
    /// Recomputes, from the router, which legs each track is written to and at which
    /// layer; slots no longer forwarded stop.
    pub(super) fn rebuild_fanout(&mut self) {
        self.fanout.clear();
        let forwarded: HashMap<(TrackId, ParticipantId), Forward> = self
            .router
            .forwarded()
            .map(|(k, f)| (k.clone(), *f))
            .collect();
        let target = |f: &Forward| match f {
            Forward::Video(layer) => *layer,
            Forward::Audio => Layer::High,
        };
        let mut keyframes = Vec::new();
        for (i, l) in self.legs.iter_mut().enumerate() {
            let Some(Leg {
                owner,
                kind:
                    LegKind::Subscriber {
                        slots,
                        programme,
                        ready,
                        ..
                    },
                ..
            }) = l
            else {
                continue;
            };
            for (track, slot) in slots.iter_mut() {
                match forwarded.get(&(*track, owner.clone())) {
                    Some(f) if *ready => {
                        slot.state.target = Some(target(f));
                        self.fanout.entry(*track).or_default().push(i);
                    }
                    _ => slot.state.stop(),
                }
            }
            let seconds: Vec<Media> = programme
                .iter()
                .filter(|p| p.second)
                .map(|p| p.media)
                .collect();
            for p in programme.iter_mut() {
                let line = if p.second {
                    ProgrammeLine::Second
                } else if seconds.contains(&p.media) {
                    ProgrammeLine::First
                } else {
                    ProgrammeLine::Only
                };
                let best = self.router.programme_source(owner, p.media, line);
                let source = best.map(|(t, _)| t);
                if source != p.source {
                    p.source = source;
                    p.slot.state.change_source(p.media == Media::Video);
                    if let (Some((t, f)), Media::Video) = (best, p.media) {
                        keyframes.push(Action::RequestKeyframe {
                            track: t,
                            layer: target(&f),
                        });
                    }
                }
                match best {
                    Some((t, f)) if *ready => {
                        p.slot.state.target = Some(target(&f));
                        self.fanout.entry(t).or_default().push(i);
                    }
                    _ => p.slot.state.stop(),
                }
            }
        }
        self.actions.extend(keyframes);
    }

    /// A subscriber that just connected starts receiving (nothing is written to it before:
    /// it could not be encrypted), with a keyframe of every picture.
    pub(super) fn keyframes_for_connected(&mut self) {
        let now = self.now_ms();
        let mut changed = false;
        while let Some(i) = self.connected.pop() {
            let Some(Some(Leg {
                id, owner, kind, ..
            })) = self.legs.get_mut(i)
            else {
                continue;
            };
            let LegKind::Subscriber { ready, .. } = kind else {
                continue;
            };
            *ready = true;
            self.meter.connected(id.0, now);
            changed = true;
            let owner = owner.clone();
            // The programme slots get their sources in the fan-out: rebuild it first.
            self.rebuild_fanout();
            let tracks: Vec<TrackId> = match self.legs.get(i) {
                Some(Some(l)) => l.kind.received().into_iter().map(|(t, _)| t).collect(),
                _ => Vec::new(),
            };
            for t in tracks {
                let a = self.router.request_keyframe(t, &owner, now);
                self.actions.extend(a);
            }
        }
        if changed {
            self.rebuild_fanout();
        }
    }

    /// Carries out the router's keyframe requests: a PLI to the publisher of the track.
    pub(super) fn carry_out(&mut self) {
        for action in std::mem::take(&mut self.actions) {
            let routing::Action::RequestKeyframe { track, layer } = action else {
                continue;
            };
            if !self.place.home() {
                // Publishers are on the home shard.
                self.tell_others(Relay::Keyframe { track, layer });
                continue;
            }
            let Some(&media_ssrc) = self.ssrc_of.get(&(track, layer)) else {
                continue;
            };
            let publisher = self.legs.iter().position(|l| {
                matches!(l, Some(Leg { kind: LegKind::Publisher { video: Some(v), .. }, .. }) if *v == track)
            });
            let Some(i) = publisher else { continue };
            if let Some(Some(leg)) = self.legs.get_mut(i) {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                let msg = TaggedRTCMessage {
                    now: self.now,
                    message: RTCMessage::RtcpPacket(String::new(), vec![Box::new(pli)]),
                };
                match leg.pc.handle_write(msg) {
                    Ok(()) => self.stats.keyframe_requests_total += 1,
                    Err(e) => tracing::debug!(error = %e, "keyframe request not sent"),
                }
            }
            self.flush(i);
        }
    }

    /// A subscriber's keyframe requests go to the publisher (through the router's
    /// throttle); its bandwidth estimate chooses its layers.
    pub(super) fn on_feedback(&mut self, from: usize, requests: Vec<Request>, sender: Option<u64>) {
        let now = self.now_ms();
        let Some(Some(Leg {
            owner,
            kind,
            estimates,
            ..
        })) = self.legs.get_mut(from)
        else {
            return;
        };
        if !matches!(kind, LegKind::Subscriber { .. }) {
            return;
        }
        let owner = owner.clone();
        let received = kind.received();
        let mut new_estimate = false;
        if let Some(bps) = sender {
            estimates.sender = Some(bps);
            new_estimate = true;
        }
        for r in &requests {
            if let Request::Estimate(bps) = r {
                estimates.remb = Some((*bps, now));
                new_estimate = true;
            }
        }
        let estimate = estimates.effective(now).filter(|_| new_estimate);
        // Only a receiver's own estimate needs tries one layer up to climb again.
        let remb_only = estimates.sender.is_none();
        for r in requests {
            if let Request::Keyframe(ssrc) = r {
                let track = received.iter().find(|(_, s)| *s == ssrc).map(|(t, _)| *t);
                if let Some(track) = track {
                    let a = self.router.request_keyframe(track, &owner, now);
                    self.actions.extend(a);
                }
            }
        }
        if let Some(bps) = estimate {
            self.stats.estimates.insert(owner.clone(), bps);
            let mut a = self.router.set_probing(&owner, remb_only, now);
            a.extend(self.router.set_estimate(&owner, bps, now));
            let changed = a
                .iter()
                .any(|x| !matches!(x, Action::RequestKeyframe { .. }));
            self.actions.extend(a);
            if changed {
                self.rebuild_fanout();
            }
        }
        self.carry_out();
    }

    /// Writes what a publisher leg decoded to every subscriber leg allowed to receive it,
    /// each at the layer its slot carries.
    pub(super) fn forward(&mut self, from: usize) {
        // Events first: a simulcast layer is bound by the packet that is about to be read.
        self.flush(from);
        let mut packets = Vec::new();
        let mut requests = Vec::new();
        let Some(Some(leg)) = self.legs.get_mut(from) else {
            return;
        };
        while let Some(TaggedRTCMessage { message, .. }) = leg.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(_, pkt) => packets.push(pkt),
                RTCMessage::RtcpPacket(_, rtcp) => requests.extend(feedback::requests(&rtcp)),
                _ => {}
            }
        }
        let sender = leg.sender_estimate.as_ref().and_then(SenderEstimate::take);
        if !requests.is_empty() || sender.is_some() {
            self.on_feedback(from, requests, sender);
        }
        let Some(Some(leg)) = self.legs.get(from) else {
            return;
        };
        let LegKind::Publisher {
            audio,
            video,
            payload_types,
            rids,
            layers,
            audio_level_id,
        } = &leg.kind
        else {
            return;
        };
        let simulcast = !rids.is_empty();
        // How loud the publisher's microphone is, for the chair's view of who is talking.
        if let Some(id) = audio_level_id {
            for p in &packets {
                if payload_types.get(&p.header.payload_type) == Some(&Media::Audio)
                    && let Some((level, voice)) =
                        p.header.get_extension(*id).and_then(|e| audio_level(&e))
                {
                    let entry = self
                        .levels
                        .entry(leg.owner.clone())
                        .or_insert((level, voice));
                    *entry = (entry.0.min(level), entry.1 || voice);
                }
            }
        }
        // (track, layer, gated, video) of each packet; simulcast layers not yet bound are
        // dropped.
        let packets: Vec<(TrackId, Layer, bool, bool, rtc::rtp::Packet)> = packets
            .into_iter()
            .filter_map(|p| match payload_types.get(&p.header.payload_type) {
                Some(Media::Audio) => Some(((*audio)?, Layer::High, false, false, p)),
                Some(Media::Video) if simulcast => {
                    let layer = *layers.get(&p.header.ssrc)?;
                    Some(((*video)?, layer, true, true, p))
                }
                Some(Media::Video) => Some(((*video)?, Layer::High, false, true, p)),
                None => None,
            })
            .collect();
        let mut decoded = Vec::with_capacity(packets.len());
        for (track, layer, gated, video, mut packet) in packets {
            *self.stats.received.entry(track).or_default() += 1;
            self.stats.received_total += 1;
            self.meter.received(track);
            self.ssrc_of.insert((track, layer), packet.header.ssrc);
            // Extensions are negotiated per leg: none are carried over.
            strip_extensions(&mut packet.header);
            let keyframe = video && vp8_keyframe(&packet.payload);
            let ids = if video {
                vp8_ids(&packet.payload)
            } else {
                None
            };
            decoded.push(Decoded {
                track,
                layer,
                gated,
                video,
                keyframe,
                ids,
                packet,
            });
        }
        for d in &decoded {
            self.fan_out(d);
        }
        if self.place.shared() && !decoded.is_empty() {
            // Once for every other shard, shared.
            self.outgoing.packets.push(Arc::from(decoded));
        }
    }

    /// Writes publisher packets decoded on the home shard to this shard's receivers.
    pub(super) fn fan_out_relayed(&mut self, batch: &[Decoded]) {
        for d in batch {
            self.meter.received(d.track);
            self.fan_out(d);
        }
    }

    /// Writes one decoded packet to every subscriber leg its track goes to, each at the
    /// layer its slot carries.
    fn fan_out(&mut self, d: &Decoded) {
        let (track, layer, video, pkt) = (d.track, d.layer, d.video, &d.packet);
        let now = self.now;
        let now_ms = self.now_ms();
        // Taken out for the loop (nothing in it changes the fan-out) and put back.
        let targets = self.fanout.remove(&track).unwrap_or_default();
        for &i in &targets {
            let Some(Some(sub)) = self.legs.get_mut(i) else {
                continue;
            };
            let Some(slot) = sub.kind.slot_mut(track) else {
                continue;
            };
            let Some((seq, ts)) = slot.state.admit(
                layer,
                pkt.header.sequence_number,
                pkt.header.timestamp,
                d.keyframe,
                d.gated,
                now_ms,
            ) else {
                continue;
            };
            let mut p = pkt.clone();
            if video && let Some(payload) = slot.state.vp8_payload(&pkt.payload, d.ids) {
                p.payload = payload.into();
            }
            p.header.ssrc = slot.ssrc;
            p.header.payload_type = slot.payload_type;
            p.header.sequence_number = seq;
            p.header.timestamp = ts;
            let sender = slot.sender;
            // RTP header (no extensions: stripped) and payload.
            let bytes = 12 + 4 * p.header.csrc.len() + p.payload.len();
            if let Some(mut tx) = sub.pc.rtp_sender(sender)
                && tx.write_rtp(now, p).is_ok()
            {
                *self.stats.forwarded.entry(track).or_default() += 1;
                self.stats.forwarded_total += 1;
                self.stats.forwarded_bytes_total += bytes as u64;
                self.meter.forwarded();
            }
            self.mark_pending(i);
        }
        if !targets.is_empty() {
            self.fanout.insert(track, targets);
        }
    }

    /// Control from another shard: a publisher joined, a track published or withdrawn
    /// (on the home shard), a keyframe asked for (by another shard's receivers).
    pub(super) fn relayed(&mut self, relay: Relay) {
        let now = self.now_ms();
        match relay {
            Relay::Joined {
                who,
                kind,
                presiding,
            } => self.join(&who, kind, presiding),
            Relay::Published { id, track } => {
                self.add_track(id, track, now);
                self.rebuild_fanout();
                self.renegotiate_subscribers();
            }
            Relay::Unpublished(track) => {
                self.withdraw(track, now);
                // A publisher with nothing left is no longer here by its tracks.
                self.stats.tracks.retain(|_, list| !list.is_empty());
                self.rebuild_fanout();
            }
            Relay::Keyframe { track, layer } => {
                self.actions.push(Action::RequestKeyframe { track, layer });
            }
        }
        self.carry_out();
    }
}
