//! Signalling on the core: a publisher's offer answered; a subscriber offered every track it
//! may receive (and offered again as tracks are published), or its own offer (WHEP)
//! answered with programme slots; admission of new receivers by the load governor.

use super::core::Core;
use super::engine::{codec, new_pc};
use super::legs::{Leg, LegKind, MAX_SLOTS, Programme, Slot};
use super::port::Lane;
use super::shard::Relay;
use super::wire::{
    nominal_bitrate, sdp_codec_payload_types, sdp_media, sdp_payload_types, stream_id,
};
use super::{DriverError, LegEvent, LegId, OPUS_PT, Offer, VP8_PT, rtc_err};
use crate::feedback::{Estimates, SenderEstimate};
use crate::forward::{SlotState, extmap_id, simulcast_rids};
use crate::load::Admission;
use crate::routing::{Kind, Layer, Media, ParticipantId, Track, TrackId};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::collections::HashMap;

impl Core {
    pub(super) fn publish(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.join(&who, kind, presiding);
        let (has_audio, has_video) = sdp_media(&offer.sdp);
        let payload_types = sdp_payload_types(&offer.sdp);
        let rids = simulcast_rids(&offer.sdp);
        let audio_level_id = extmap_id(&offer.sdp, "audio", rtc::sdp::extmap::AUDIO_LEVEL_URI);
        let (mut pc, _) = new_pc(true, self.now)?;
        pc.set_remote_description(self.now, offer)
            .map_err(rtc_err)?;
        let answer = pc.create_answer(None).map_err(rtc_err)?;
        pc.set_local_description(self.now, answer)
            .map_err(rtc_err)?;
        self.add_host_candidate(&mut pc, Lane::Priority)?;
        let sdp = pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let now = self.now_ms();
        let video_layers: Vec<(Layer, u64)> = if rids.is_empty() {
            vec![(Layer::High, 2_500_000)]
        } else {
            rids.iter()
                .map(|(_, l)| (*l, nominal_bitrate(*l)))
                .collect()
        };
        let new_track = |media: Media, core: &mut Core| {
            let id = TrackId(core.next_track);
            core.next_track += 1;
            let layers = match media {
                Media::Audio => vec![(Layer::High, 40_000)],
                Media::Video => video_layers.clone(),
            };
            let track = Track {
                owner: who.clone(),
                media,
                layers,
            };
            core.tell_others(Relay::Published {
                id,
                track: track.clone(),
            });
            core.add_track(id, track, now);
            id
        };
        self.tell_others(Relay::Joined {
            who: who.clone(),
            kind,
            presiding,
        });
        let audio = has_audio.then(|| new_track(Media::Audio, self));
        let video = has_video.then(|| new_track(Media::Video, self));
        let idx = self.add_leg(Leg {
            id: LegId(0),
            lane: Lane::Priority,
            remote_candidates: 0,
            pc,
            owner: who,
            sender_estimate: None,
            estimates: Estimates::default(),
            kind: LegKind::Publisher {
                audio,
                video,
                payload_types,
                rids,
                layers: HashMap::new(),
                audio_level_id,
            },
        });
        self.rebuild_fanout();
        self.renegotiate_subscribers();
        Ok((self.id_at(idx), sdp))
    }

    /// A track published, here or (relayed) on the home shard: the router and the list of
    /// tracks know it.
    pub(super) fn add_track(&mut self, id: TrackId, track: Track, now: crate::routing::Millis) {
        let (owner, media) = (track.owner.clone(), track.media);
        let a = self.router.publish(id, track, now);
        self.actions.extend(a);
        self.stats
            .tracks
            .entry(owner)
            .or_default()
            .push((id, media));
    }

    /// Who publishes `track`.
    pub(super) fn owner_of(&self, track: TrackId) -> Option<ParticipantId> {
        self.stats
            .tracks
            .iter()
            .find(|(_, ts)| ts.iter().any(|(t, _)| *t == track))
            .map(|(owner, _)| owner.clone())
    }

    /// Published tracks `who` may receive, the chamber's programme first.
    pub(super) fn tracks_for(&self, who: &ParticipantId) -> Vec<(TrackId, Media)> {
        let mut tracks: Vec<(bool, TrackId, Media)> = self
            .stats
            .tracks
            .iter()
            .filter(|(owner, _)| *owner != who)
            .flat_map(|(owner, t)| {
                let programme = self.joined.get(owner) == Some(&Kind::Chamber);
                t.iter().map(move |(id, m)| (!programme, *id, *m))
            })
            .collect();
        // The programme first; among the rest, the newest first (a publisher that came back
        // has a newer track than the one it left behind).
        tracks.sort_by_key(|(later, id, _)| (*later, std::cmp::Reverse(*id)));
        tracks.into_iter().map(|(_, id, m)| (id, m)).collect()
    }

    /// Adds a sending slot for `track` to a subscriber's peer connection.
    /// `fill`: the track takes one of the subscriber's own offered m-lines (WHEP);
    /// otherwise it gets a send-only m-line of its own in the SFU's offer.
    /// The track's stream id is its owner's participant id (the programme's is
    /// `programme`): the receiver tells whose picture is whose, and plays a participant's
    /// audio and video in sync, as one stream.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_slot(
        pc: &mut RTCPeerConnection,
        idx: usize,
        n: usize,
        track: TrackId,
        owner: Option<&ParticipantId>,
        media: Media,
        payload_type: u8,
        fill: bool,
    ) -> Result<Slot, DriverError> {
        let ssrc = 0x1000_0000 + (idx as u32) * 256 + n as u32;
        let k = if media == Media::Audio {
            RtpCodecKind::Audio
        } else {
            RtpCodecKind::Video
        };
        // Pictures get a retransmission stream of their own (used when negotiated).
        let rtx = (media == Media::Video).then(|| RTCRtpRtxParameters {
            ssrc: 0x2000_0000 + (idx as u32) * 256 + n as u32,
        });
        let stream = owner.map_or_else(|| "programme".to_owned(), |o| stream_id(&o.0));
        let t = MediaStreamTrack::new(
            stream,
            format!("t{}-{k}", track.0),
            format!("t{}-{k}", track.0),
            k,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    rtx,
                    ..Default::default()
                },
                codec: codec(k).rtp_codec,
                ..Default::default()
            }],
        );
        let sender = if fill {
            pc.add_track(t).map_err(rtc_err)?
        } else {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            };
            RTCRtpSenderId::from(
                pc.add_transceiver_from_track(t, Some(init))
                    .map_err(rtc_err)?,
            )
        };
        Ok(Slot {
            sender,
            ssrc,
            payload_type,
            owner: owner.cloned(),
            media,
            state: SlotState::default(),
        })
    }

    pub(super) fn subscribe_with_offer(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.admitted(&who.clone(), kind, presiding, |core| {
            core.pull(who, kind, presiding, offer)
        })
    }

    /// [`Core::subscribe_with_offer`] once admitted.
    pub(super) fn pull(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
        offer: RTCSessionDescription,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        let offered_audio = offer
            .sdp
            .lines()
            .filter(|l| l.starts_with("m=audio"))
            .count();
        let offered_video = offer
            .sdp
            .lines()
            .filter(|l| l.starts_with("m=video"))
            .count();
        let (opus_pt, vp8_pt) = sdp_codec_payload_types(&offer.sdp);
        let (mut pc, estimate) = new_pc(false, self.now)?;
        pc.set_remote_description(self.now, offer)
            .map_err(rtc_err)?;
        self.join(&who, kind, presiding);
        let idx = self.next_leg_index();
        // Programme slots: one line of a kind carries the speaker while someone holds the
        // floor and the chamber otherwise; a receiver that offers two lines of a kind (a TV
        // system mixing for itself) gets the chamber on the first and the speaker on the
        // second. Further lines stay empty. Which track feeds each is decided with the
        // fan-out.
        let mut programme = Vec::new();
        let mut n = 0;
        for (media, offered, pt) in [
            (Media::Audio, offered_audio, opus_pt),
            (Media::Video, offered_video, vp8_pt),
        ] {
            let Some(pt) = pt else {
                continue;
            };
            for second in [false, true].into_iter().take(offered.min(2)) {
                let slot = Core::add_slot(&mut pc, idx, n, TrackId(0), None, media, pt, true)?;
                n += 1;
                programme.push(Programme {
                    media,
                    second,
                    source: None,
                    slot,
                });
            }
        }
        let answer = pc.create_answer(None).map_err(rtc_err)?;
        let (idx, sdp) =
            self.keep_subscriber(pc, estimate, answer, who, HashMap::new(), programme, false)?;
        self.rebuild_fanout();
        Ok((self.id_at(idx), sdp))
    }

    /// Refuses a new receiving leg when there is no room for it (measured load), unless
    /// it is the chamber's, a presiding participant's, a chair console's or the floor
    /// holder's.
    pub(super) fn admit(
        &mut self,
        who: &ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(), DriverError> {
        let protected = presiding
            || matches!(kind, Kind::Chamber | Kind::ChairConsole)
            || self.router.protected(who);
        match self
            .meter
            .admit(self.now_ms(), self.next_leg_id(), protected)
        {
            Admission::Admit => Ok(()),
            Admission::Refuse { retry_after_s } => {
                // The handle logs the refusal once every thread it tried has refused.
                tracing::debug!(participant = %who.0, thread = self.place.index, retry_after_s, "no room on this media thread");
                Err(DriverError::Overloaded { retry_after_s })
            }
        }
    }

    /// Makes a receiving leg with `make` once admitted (the governor knows it by the id it
    /// will get); a leg that fails to be made no longer counts as load to come.
    pub(super) fn admitted<T>(
        &mut self,
        who: &ParticipantId,
        kind: Kind,
        presiding: bool,
        make: impl FnOnce(&mut Core) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let key = self.next_leg_id();
        self.admit(who, kind, presiding)?;
        let made = make(self);
        if made.is_err() || self.next_leg_id() == key {
            self.meter.release(key);
        }
        made
    }

    pub(super) fn subscribe(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.admitted(&who.clone(), kind, presiding, |core| {
            core.offer_receiver(who, kind, presiding)
        })
    }

    /// [`Core::subscribe`] once admitted.
    pub(super) fn offer_receiver(
        &mut self,
        who: ParticipantId,
        kind: Kind,
        presiding: bool,
    ) -> Result<(LegId, RTCSessionDescription), DriverError> {
        self.join(&who, kind, presiding);
        let (mut pc, estimate) = new_pc(false, self.now)?;
        let idx = self.next_leg_index();
        let mut slots = HashMap::new();
        for (n, (track, media)) in self.tracks_for(&who).into_iter().enumerate() {
            let pt = if media == Media::Audio {
                OPUS_PT
            } else {
                VP8_PT
            };
            slots.insert(
                track,
                Core::add_slot(
                    &mut pc,
                    idx,
                    n,
                    track,
                    self.owner_of(track).as_ref(),
                    media,
                    pt,
                    false,
                )?,
            );
        }
        if slots.is_empty() {
            // Nothing is published yet: an offer needs one m-section to carry the transport
            // (ICE, DTLS). The core offers only receive-only sections without a track; it stays
            // empty (tracks get send-only sections of their own), and whatever a subscriber
            // might send on it is never forwarded.
            pc.add_transceiver_from_kind(RtpCodecKind::Audio, None)
                .map_err(rtc_err)?;
        }
        let offer = pc.create_offer(None).map_err(rtc_err)?;
        let (idx, sdp) = self.keep_subscriber(pc, estimate, offer, who, slots, Vec::new(), true)?;
        Ok((self.id_at(idx), sdp))
    }

    /// Sets `local` (the SFU's offer, or its answer to a WHEP offer) on a subscriber's new
    /// connection, adds the SFU's candidate, and keeps the leg; returns its index and the
    /// description to send.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn keep_subscriber(
        &mut self,
        mut pc: RTCPeerConnection,
        sender_estimate: Option<SenderEstimate>,
        local: RTCSessionDescription,
        who: ParticipantId,
        slots: HashMap<TrackId, Slot>,
        programme: Vec<Programme>,
        sfu_offered: bool,
    ) -> Result<(usize, RTCSessionDescription), DriverError> {
        pc.set_local_description(self.now, local).map_err(rtc_err)?;
        // The protected receive on the publishers' socket (the home shard's).
        let lane = if self.place.home() && self.router.protected(&who) {
            Lane::Priority
        } else {
            Lane::General
        };
        self.add_host_candidate(&mut pc, lane)?;
        let sdp = pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let idx = self.add_leg(Leg {
            id: LegId(0),
            lane,
            remote_candidates: 0,
            pc,
            owner: who,
            sender_estimate,
            estimates: Estimates::default(),
            kind: LegKind::Subscriber {
                slots,
                programme,
                ready: false,
                renegotiable: sfu_offered,
                awaiting_answer: sfu_offered,
                stale: false,
            },
        });
        Ok((idx, sdp))
    }

    /// Offers every subscriber that the SFU negotiated with the tracks published since,
    /// as a new offer on its existing connection (sent through [`Driver::offers`]).
    pub(super) fn renegotiate_subscribers(&mut self) {
        let mut reused = false;
        for i in 0..self.legs.len() {
            let Some(Some(Leg {
                owner,
                kind:
                    LegKind::Subscriber {
                        slots,
                        renegotiable: true,
                        ..
                    },
                ..
            })) = self.legs.get(i)
            else {
                continue;
            };
            // Tracks that ended keep their (silent) m-line; a connection stops growing at
            // MAX_SLOTS m-lines.
            let room = MAX_SLOTS.saturating_sub(slots.len());
            let missing: Vec<(TrackId, Media)> = self
                .tracks_for(owner)
                .into_iter()
                .filter(|(t, _)| !slots.contains_key(t))
                .take(room)
                .collect();
            if missing.is_empty() {
                continue;
            }
            match self.offer_again(i, missing) {
                Ok(true) => reused = true,
                Ok(false) => {}
                Err(e) => tracing::warn!(leg = i, error = %e, "renegotiation failed"),
            }
        }
        if reused {
            self.rebuild_fanout();
        }
    }

    /// Gives a subscriber's connection the tracks it lacks: a track of a publisher that came
    /// back takes the m-line its ended track had (same stream, same SSRC, numbering
    /// continued, from a keyframe), so the connection does not grow with every reconnection
    /// and needs no new offer; any other gets a new m-line, offered again. Returns whether an
    /// m-line was taken over.
    pub(super) fn offer_again(
        &mut self,
        i: usize,
        missing: Vec<(TrackId, Media)>,
    ) -> Result<bool, DriverError> {
        let live: std::collections::HashSet<TrackId> = self
            .stats
            .tracks
            .values()
            .flatten()
            .map(|(t, _)| *t)
            .collect();
        let missing: Vec<(TrackId, Media, Option<ParticipantId>)> = missing
            .into_iter()
            .map(|(t, m)| (t, m, self.owner_of(t)))
            .collect();
        let Some(Some(leg)) = self.legs.get_mut(i) else {
            return Ok(false);
        };
        let LegKind::Subscriber {
            slots,
            awaiting_answer,
            stale,
            ..
        } = &mut leg.kind
        else {
            return Ok(false);
        };
        let mut reused = false;
        let mut new = Vec::new();
        for (track, media, owner) in missing {
            let ended = slots
                .iter()
                .find(|(t, s)| {
                    !live.contains(t) && s.media == media && owner.is_some() && s.owner == owner
                })
                .map(|(t, _)| *t);
            match ended.and_then(|t| slots.remove(&t)) {
                Some(mut slot) => {
                    slot.state.stop();
                    slot.state.change_source(media == Media::Video);
                    slots.insert(track, slot);
                    reused = true;
                }
                None => new.push((track, media, owner)),
            }
        }
        if new.is_empty() {
            return Ok(reused);
        }
        if *awaiting_answer {
            *stale = true;
            return Ok(reused);
        }
        for (track, media, owner) in new {
            let pt = if media == Media::Audio {
                OPUS_PT
            } else {
                VP8_PT
            };
            let n = slots.len();
            slots.insert(
                track,
                Core::add_slot(&mut leg.pc, i, n, track, owner.as_ref(), media, pt, false)?,
            );
        }
        let offer = leg.pc.create_offer(None).map_err(rtc_err)?;
        leg.pc
            .set_local_description(self.now, offer)
            .map_err(rtc_err)?;
        *awaiting_answer = true;
        let sdp = leg
            .pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let _ = self.events.send(LegEvent::Offer(Offer {
            leg: leg.id,
            owner: leg.owner.clone(),
            sdp: sdp.sdp,
        }));
        Ok(reused)
    }

    pub(super) fn answer(
        &mut self,
        leg: LegId,
        answer: RTCSessionDescription,
    ) -> Result<(), DriverError> {
        let now = self.now;
        let l = self.leg_mut(leg)?;
        l.pc.set_remote_description(now, answer).map_err(rtc_err)?;
        let mut again = false;
        if let LegKind::Subscriber {
            awaiting_answer,
            stale,
            ..
        } = &mut l.kind
        {
            *awaiting_answer = false;
            again = std::mem::take(stale);
        }
        self.rebuild_fanout();
        if again {
            self.renegotiate_subscribers();
        }
        Ok(())
    }
}
