//! Forwarding decisions as pure code.
//!
//! The [`Router`] knows the participants (with what they are: the chamber, a delegation
//! site, a remote deputy, a chair console, a display or broadcast pull), the tracks they
//! publish, who holds the floor, which microphones the chair muted, and each subscriber's
//! bandwidth estimate. From that it derives, for every subscriber, which tracks it receives
//! and at which simulcast layer, and reports the changes as [`Action`]s for the I/O layer:
//! start, switch layer, stop, and keyframe requests (throttled per track and layer).
//!
//! Who receives what:
//! - the chamber's programme (video and hall audio) goes to every other participant;
//! - the floor holder's microphone and camera go to every other participant (the chamber
//!   included: the hall hears a remote speaker); a deputy who speaks from a delegation site
//!   is carried by that site's room microphone and camera, unless they publish a microphone
//!   of their own (a deputy's own device takes precedence over the room);
//! - the microphones of presiding participants (chair, vice-chair) always go to everyone;
//! - any other microphone goes only to chair consoles, and not even there if the chair
//!   muted it; its owner's camera goes to chair consoles as a thumbnail;
//! - video is sent at the best layer the subscriber's bandwidth allows (thumbnails always at
//!   the lowest): the best until an estimate says otherwise, upgraded only with headroom,
//!   downgraded at once;
//! - a subscriber whose estimate cannot climb by itself (a receiver's REMB grows only with
//!   what it receives) and that has been held below the best layer for a while is tried one
//!   layer up for a while ([`Router::set_probing`]); kept if its estimate follows, dropped at
//!   once if the estimate falls, with the wait before the next try doubled.
//!
//! Under overload ([`Router::set_shed`], decided from measured load by [`crate::load`]) the
//! SFU sheds by priority: first ordinary receivers get the lowest layer of the main picture,
//! then the least important receivers get no picture at all (sound is always kept). Never
//! shed: the chamber, presiding participants, chair consoles, the floor holder and the site
//! that carries them. Among the rest, displays and pulls go first, then remote deputies,
//! then delegation rooms; within each, the latest to join first.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Milliseconds on the caller's clock (virtual in tests).
pub type Millis = u64;

/// A participant: a peer connection (the chamber encoder, a site room app, a deputy's
/// device, a chair console, a display or broadcast pull).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParticipantId(pub String);

/// A published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TrackId(pub u32);

/// What a participant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// The main chamber: publishes the programme.
    Chamber,
    /// A delegation site's meeting room.
    Site,
    /// A deputy alone on a phone or laptop.
    RemoteDeputy,
    /// The chair's console: sees every site, hears who is ready.
    ChairConsole,
    /// A hall display, the public livestream or a WHEP pull: receives only.
    Display,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Media {
    /// A microphone or the hall mix.
    Audio,
    /// A camera or the programme picture.
    Video,
}

/// A simulcast layer, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Layer {
    /// Thumbnail quality.
    Low,
    /// Medium.
    Mid,
    /// Full quality.
    High,
}

/// A published track and its simulcast layers' bitrates (bits/s), lowest first. A track
/// without simulcast has one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Publisher.
    pub owner: ParticipantId,
    /// Audio or video.
    pub media: Media,
    /// Layers offered and their bitrates.
    pub layers: Vec<(Layer, u64)>,
}

/// How a subscriber receives a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Audio.
    Audio,
    /// Video at this layer.
    Video(Layer),
}

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start sending `track` to `to`.
    Start {
        /// Track.
        track: TrackId,
        /// Subscriber.
        to: ParticipantId,
        /// How.
        forward: Forward,
    },
    /// Send another layer of `track` to `to` (from its next keyframe).
    Switch {
        /// Track.
        track: TrackId,
        /// Subscriber.
        to: ParticipantId,
        /// New layer.
        layer: Layer,
    },
    /// Stop sending `track` to `to`.
    Stop {
        /// Track.
        track: TrackId,
        /// Subscriber.
        to: ParticipantId,
    },
    /// Ask the publisher of `track` for a keyframe of `layer` (PLI/FIR).
    RequestKeyframe {
        /// Track.
        track: TrackId,
        /// Layer.
        layer: Layer,
    },
}

/// How much forwarding is shed under overload, in the priority order of the module header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shed {
    /// Ordinary receivers get the lowest layer of the main picture.
    pub low_layers: bool,
    /// How many of the least important receivers get no picture (sound kept).
    pub video_off: usize,
}

impl Shed {
    /// Whether anything is shed.
    pub fn active(&self) -> bool {
        self.low_layers || self.video_off > 0
    }
}

#[derive(Debug, Clone)]
struct Participant {
    kind: Kind,
    presiding: bool,
    /// Order of arrival: among equals, the latest is shed first.
    arrival: u64,
    /// Bandwidth estimate for what it receives (TWCC/REMB), bits/s.
    estimate: Option<u64>,
    probing: Probing,
}

/// Which programme line of its kind a slot is: see [`Router::programme_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgrammeLine {
    /// The only line of its kind: the speaker, else the chamber.
    Only,
    /// The first of two: the chamber.
    First,
    /// The second of two: the speaker.
    Second,
}

/// Trying a subscriber held low by its estimate one layer up.
#[derive(Debug, Clone, Default)]
struct Probing {
    enabled: bool,
    trial: Option<Trial>,
    /// When the next trial may start.
    next: Millis,
    /// The wait between trials, doubled by each that fails.
    backoff: Millis,
}

/// A trial in progress: until when, and the estimate it started from.
#[derive(Debug, Clone, Copy)]
struct Trial {
    until: Millis,
    base: u64,
}

/// Tuning of layer choice and keyframe requests.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Upgrade only when the estimate exceeds the next layer's bitrate by this factor.
    pub upgrade_headroom: f64,
    /// Least time between two keyframe requests for the same track and layer.
    pub keyframe_interval: Millis,
    /// Share of a subscriber's estimate given to its main video (the rest: audio and
    /// thumbnails).
    pub main_video_share: f64,
    /// How long a subscriber is held below the best layer before it is tried one up, and
    /// the first wait between tries.
    pub probe_after: Millis,
    /// How long a try lasts: long enough for a receiver's estimate to grow into the layer.
    pub probe_window: Millis,
    /// The longest wait between tries.
    pub probe_backoff_max: Millis,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            upgrade_headroom: 1.25,
            keyframe_interval: 500,
            main_video_share: 0.85,
            probe_after: 10_000,
            probe_window: 12_000,
            probe_backoff_max: 120_000,
        }
    }
}

/// The routing state and decisions.
#[derive(Debug, Clone, Default)]
pub struct Router {
    tuning: Tuning,
    participants: BTreeMap<ParticipantId, Participant>,
    tracks: BTreeMap<TrackId, Track>,
    floor: Option<ParticipantId>,
    /// The delegation site the floor holder sits at, which carries them when they publish
    /// no microphone of their own.
    floor_site: Option<ParticipantId>,
    muted: BTreeSet<ParticipantId>,
    /// What is being forwarded now.
    current: BTreeMap<(TrackId, ParticipantId), Forward>,
    /// Last keyframe request per (track, layer).
    keyframes: BTreeMap<(TrackId, Layer), Millis>,
    /// Keyframe requests held back by the throttle, to send when it allows.
    pending_keyframes: BTreeSet<(TrackId, Layer)>,
    /// What is shed now, and the receivers it takes the picture from.
    shed: Shed,
    video_off: BTreeSet<ParticipantId>,
    arrivals: u64,
}

impl Router {
    /// A router with this tuning.
    pub fn new(tuning: Tuning) -> Router {
        Router {
            tuning,
            ..Router::default()
        }
    }

    /// A participant connected.
    pub fn join(
        &mut self,
        id: ParticipantId,
        kind: Kind,
        presiding: bool,
        now: Millis,
    ) -> Vec<Action> {
        self.arrivals += 1;
        self.participants.insert(
            id,
            Participant {
                kind,
                presiding,
                arrival: self.arrivals,
                estimate: None,
                probing: Probing::default(),
            },
        );
        self.reconcile(now)
    }

    /// A participant left (or timed out, or was removed): everything it sent or received stops.
    pub fn leave(&mut self, id: &ParticipantId, now: Millis) -> Vec<Action> {
        self.participants.remove(id);
        self.tracks.retain(|_, t| &t.owner != id);
        self.muted.remove(id);
        self.reconcile(now)
    }

    /// A participant published a track.
    pub fn publish(&mut self, track: TrackId, info: Track, now: Millis) -> Vec<Action> {
        self.tracks.insert(track, info);
        self.reconcile(now)
    }

    /// A track ended.
    pub fn unpublish(&mut self, track: TrackId, now: Millis) -> Vec<Action> {
        self.tracks.remove(&track);
        self.reconcile(now)
    }

    /// The floor moved (granted, revoked, expired): `speaker` is the participant whose
    /// microphone and camera carry the speaker, or none.
    pub fn set_floor(&mut self, speaker: Option<ParticipantId>, now: Millis) -> Vec<Action> {
        self.set_speaker(speaker, None, now)
    }

    /// The floor moved to `deputy`, who sits at delegation site `site` (if any): the
    /// deputy's own microphone and camera are forwarded when they publish one, the site's
    /// room otherwise.
    pub fn set_speaker(
        &mut self,
        deputy: Option<ParticipantId>,
        site: Option<ParticipantId>,
        now: Millis,
    ) -> Vec<Action> {
        self.floor_site = deputy.as_ref().and(site);
        self.floor = deputy;
        self.reconcile(now)
    }

    /// The participant whose microphone and camera carry the speaker now, if any.
    pub fn speaker(&self) -> Option<&ParticipantId> {
        let deputy = self.floor.as_ref()?;
        let own_microphone = self
            .tracks
            .values()
            .any(|t| &t.owner == deputy && t.media == Media::Audio);
        match &self.floor_site {
            Some(site) if !own_microphone => Some(site),
            _ => Some(deputy),
        }
    }

    /// The chair muted or unmuted a microphone's preview on the console.
    pub fn set_muted(&mut self, id: &ParticipantId, muted: bool, now: Millis) -> Vec<Action> {
        if muted {
            self.muted.insert(id.clone());
        } else {
            self.muted.remove(id);
        }
        self.reconcile(now)
    }

    /// A new bandwidth estimate for what `id` receives.
    pub fn set_estimate(&mut self, id: &ParticipantId, bps: u64, now: Millis) -> Vec<Action> {
        let tuning = self.tuning;
        if let Some(p) = self.participants.get_mut(id) {
            let probing = &mut p.probing;
            if let Some(trial) = probing.trial {
                if (bps as f64) < trial.base as f64 * 0.85 {
                    // The try overloaded the path: back down now, wait longer next time.
                    probing.trial = None;
                    probing.backoff = (probing.backoff * 2).min(tuning.probe_backoff_max);
                    probing.next = now + probing.backoff;
                }
            } else if probing.enabled && p.estimate.is_some_and(|e| (bps as f64) < e as f64 * 0.9) {
                // Congestion: the quiet time before a try starts again.
                probing.next = now + probing.backoff;
            }
            p.estimate = Some(bps);
        }
        // Only this subscriber's layers can change.
        self.reconcile_scope(Some(id), now)
    }

    /// Whether `id`'s estimate needs trying one layer up now and then to climb: true for a
    /// receiver's own estimate (REMB grows only with what arrives), false for one that
    /// rises by itself on a clean path (the SFU's own, from transport-wide feedback).
    pub fn set_probing(&mut self, id: &ParticipantId, on: bool, now: Millis) -> Vec<Action> {
        let tuning = self.tuning;
        let Some(p) = self.participants.get_mut(id) else {
            return Vec::new();
        };
        if p.probing.enabled == on {
            return Vec::new();
        }
        p.probing = Probing {
            enabled: on,
            trial: None,
            next: now + tuning.probe_after,
            backoff: tuning.probe_after,
        };
        self.reconcile_scope(Some(id), now)
    }

    /// Sheds forwarding under overload (or restores it): see the module header.
    pub fn set_shed(&mut self, shed: Shed, now: Millis) -> Vec<Action> {
        if shed == self.shed {
            return Vec::new();
        }
        self.shed = shed;
        self.reconcile(now)
    }

    /// What is shed now.
    pub fn shed(&self) -> Shed {
        self.shed
    }

    /// Whether `id` is never shed, nor refused for lack of room: the chamber, presiding
    /// participants, chair consoles, the floor holder and the site carrying them.
    pub fn protected(&self, id: &ParticipantId) -> bool {
        let Some(p) = self.participants.get(id) else {
            return false;
        };
        matches!(p.kind, Kind::Chamber | Kind::ChairConsole)
            || p.presiding
            || self.floor.as_ref() == Some(id)
            || self.floor_site.as_ref() == Some(id)
    }

    /// Receivers that may be shed, the first to shed first.
    pub fn shedding_order(&self) -> Vec<ParticipantId> {
        let rank = |k: Kind| match k {
            Kind::Display => 0,
            Kind::RemoteDeputy => 1,
            _ => 2,
        };
        let mut order: Vec<(u8, std::cmp::Reverse<u64>, &ParticipantId)> = self
            .participants
            .iter()
            .filter(|(id, _)| !self.protected(id))
            .map(|(id, p)| (rank(p.kind), std::cmp::Reverse(p.arrival), id))
            .collect();
        order.sort();
        order.into_iter().map(|(_, _, id)| id.clone()).collect()
    }

    /// Whether `id` receives a main picture below its best layer.
    fn held_low(&self, id: &ParticipantId) -> bool {
        let speaker = self.speaker();
        self.tracks.iter().any(|(t, track)| {
            let main = speaker == Some(&track.owner)
                || self
                    .participants
                    .get(&track.owner)
                    .is_some_and(|o| o.kind == Kind::Chamber);
            main && matches!(
                self.current.get(&(*t, id.clone())),
                Some(Forward::Video(l)) if *l < highest(track)
            )
        })
    }

    /// Starts and ends the tries of subscribers held low (see [`Router::set_probing`]).
    fn probe(&mut self, now: Millis, out: &mut Vec<Action>) {
        let tuning = self.tuning;
        let due: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| {
                p.probing.enabled
                    && p.estimate.is_some()
                    && match p.probing.trial {
                        Some(t) => now >= t.until,
                        None => now >= p.probing.next,
                    }
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let held = self.held_low(&id);
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            if p.probing.trial.take().is_some() {
                // The try ends: kept if the estimate now carries the layer (nothing goes
                // down), else back down and wait longer.
                let actions = self.reconcile_scope(Some(&id), now);
                let fell = actions.iter().any(|a| matches!(a, Action::Switch { .. }));
                if let Some(p) = self.participants.get_mut(&id) {
                    p.probing.backoff = if fell {
                        (p.probing.backoff * 2).min(tuning.probe_backoff_max)
                    } else {
                        tuning.probe_after
                    };
                    p.probing.next = now + p.probing.backoff;
                }
                out.extend(actions);
            } else if held {
                p.probing.trial = p.estimate.map(|base| Trial {
                    until: now + tuning.probe_window,
                    base,
                });
                out.extend(self.reconcile_scope(Some(&id), now));
            } else {
                p.probing.next = now + tuning.probe_after;
            }
        }
    }

    /// Sends keyframe requests the throttle held back, once it allows them, and starts and
    /// ends tries of subscribers held low.
    pub fn tick(&mut self, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        self.probe(now, &mut out);
        let pending: Vec<(TrackId, Layer)> = self.pending_keyframes.iter().copied().collect();
        for (track, layer) in pending {
            if self.tracks.contains_key(&track) {
                self.keyframe(track, layer, now, &mut out);
            } else {
                self.pending_keyframes.remove(&(track, layer));
            }
        }
        out
    }

    /// A subscriber asked for a keyframe of `track` (PLI/FIR), or has just connected: asks
    /// the publisher for one of the layer `to` receives, through the throttle.
    pub fn request_keyframe(
        &mut self,
        track: TrackId,
        to: &ParticipantId,
        now: Millis,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(Forward::Video(layer)) = self.forwarding(track, to) {
            self.keyframe(track, layer, now, &mut out);
        }
        out
    }

    /// How `track` is forwarded to `to` now, if at all.
    pub fn forwarding(&self, track: TrackId, to: &ParticipantId) -> Option<Forward> {
        self.current.get(&(track, to.clone())).copied()
    }

    /// Every (track, subscriber) pair forwarded now.
    pub fn forwarded(&self) -> impl Iterator<Item = (&(TrackId, ParticipantId), &Forward)> {
        self.current.iter()
    }

    /// What feeds a programme line of `media` on `to`'s connection (a receiver that offered
    /// fixed m-lines, WHEP), among the tracks forwarded to it:
    /// - [`ProgrammeLine::Only`]: the speaker's track of this kind, else the chamber's, else
    ///   the newest;
    /// - [`ProgrammeLine::First`] (a second line of the kind follows): the chamber's, else the
    ///   newest that is not the speaker's;
    /// - [`ProgrammeLine::Second`]: the speaker's, unless the chamber itself is speaking.
    pub fn programme_source(
        &self,
        to: &ParticipantId,
        media: Media,
        line: ProgrammeLine,
    ) -> Option<(TrackId, Forward)> {
        let speaker = self.speaker();
        let speaking = |o: &ParticipantId| speaker == Some(o);
        let chamber = |o: &ParticipantId| {
            self.participants
                .get(o)
                .is_some_and(|p| p.kind == Kind::Chamber)
        };
        let candidates = self
            .current
            .iter()
            .filter(|((_, r), _)| r == to)
            .filter_map(|((t, _), f)| {
                let track = self.tracks.get(t)?;
                (track.media == media).then_some((*t, &track.owner, *f))
            });
        let best = match line {
            ProgrammeLine::Second => candidates
                .filter(|(_, o, _)| speaking(o) && !chamber(o))
                .max_by_key(|(t, _, _)| *t),
            ProgrammeLine::First => candidates
                .filter(|(_, o, _)| !speaking(o) || chamber(o))
                .max_by_key(|(t, o, _)| (chamber(o), *t)),
            ProgrammeLine::Only => candidates.max_by_key(|(t, o, _)| (speaking(o), chamber(o), *t)),
        };
        best.map(|(t, _, f)| (t, f))
    }

    /// Whether `to` should receive `track` at all, and as what.
    fn desired(
        &self,
        track_id: TrackId,
        track: &Track,
        to: &ParticipantId,
        sub: &Participant,
        speaker: Option<&ParticipantId>,
    ) -> Option<Forward> {
        if &track.owner == to {
            return None;
        }
        let owner = self.participants.get(&track.owner)?;
        let speaking = speaker == Some(&track.owner);
        let console = sub.kind == Kind::ChairConsole;
        match track.media {
            Media::Audio => {
                let public = owner.kind == Kind::Chamber || speaking || owner.presiding;
                let preview = console && !self.muted.contains(&track.owner);
                (public || preview).then_some(Forward::Audio)
            }
            Media::Video => {
                let main = owner.kind == Kind::Chamber || speaking;
                if self.video_off.contains(to) {
                    None
                } else if main && self.shed.low_layers && !self.protected(to) {
                    Some(Forward::Video(lowest(track)))
                } else if main {
                    Some(Forward::Video(self.main_layer(track_id, track, to, sub)))
                } else if console && owner.kind != Kind::ChairConsole {
                    Some(Forward::Video(lowest(track)))
                } else {
                    None
                }
            }
        }
    }

    /// The best layer the subscriber's estimate allows, with headroom to go up.
    fn main_layer(
        &self,
        track_id: TrackId,
        track: &Track,
        to: &ParticipantId,
        sub: &Participant,
    ) -> Layer {
        let Some(estimate) = sub.estimate else {
            // No estimate yet: the best layer. Receivers' estimates (REMB) grow only with
            // what they receive, so a subscriber started low would never be raised; one
            // started high is lowered at once if its estimate says so.
            return highest(track);
        };
        let budget = estimate as f64 * self.tuning.main_video_share;
        let current = self
            .current
            .get(&(track_id, to.clone()))
            .and_then(|f| match f {
                Forward::Video(l) => Some(*l),
                Forward::Audio => None,
            });
        let allowed = |budget: f64| {
            let mut best = lowest(track);
            for (layer, bitrate) in &track.layers {
                let needed = if current.is_some_and(|c| *layer <= c) {
                    // Staying at (or going down to) a layer needs only its own bitrate.
                    *bitrate as f64
                } else {
                    *bitrate as f64 * self.tuning.upgrade_headroom
                };
                if budget >= needed {
                    best = best.max(*layer);
                }
            }
            best
        };
        let best = allowed(budget);
        match sub.probing.trial {
            // On trial: one layer above what the estimate the try started from allowed.
            Some(trial) => {
                let from = allowed(trial.base as f64 * self.tuning.main_video_share);
                let above = track
                    .layers
                    .iter()
                    .map(|(l, _)| *l)
                    .filter(|l| *l > from)
                    .min()
                    .unwrap_or(from);
                best.max(above)
            }
            None => best,
        }
    }

    fn keyframe(&mut self, track: TrackId, layer: Layer, now: Millis, out: &mut Vec<Action>) {
        let last = self.keyframes.get(&(track, layer)).copied();
        if last.is_some_and(|t| now < t + self.tuning.keyframe_interval) {
            self.pending_keyframes.insert((track, layer));
            return;
        }
        self.pending_keyframes.remove(&(track, layer));
        self.keyframes.insert((track, layer), now);
        out.push(Action::RequestKeyframe { track, layer });
    }

    /// Derives the wanted forwarding from scratch and reports the differences.
    fn reconcile(&mut self, now: Millis) -> Vec<Action> {
        self.reconcile_scope(None, now)
    }

    /// As `reconcile`, for one subscriber only (or all).
    ///
    /// For one subscriber (a new estimate, which may come several times a second from each
    /// of hundreds) the cost is one pass over the tracks, not over every forwarding.
    fn reconcile_scope(&mut self, only: Option<&ParticipantId>, now: Millis) -> Vec<Action> {
        if only.is_none() {
            // Who is shed changes only with who is here, the floor and the shed level: all
            // of which reconcile everyone.
            self.video_off = self
                .shedding_order()
                .into_iter()
                .take(self.shed.video_off)
                .collect();
        }
        let mut wanted: BTreeMap<(TrackId, ParticipantId), Forward> = BTreeMap::new();
        let speaker = self.speaker();
        let subscribers: Vec<(&ParticipantId, &Participant)> = match only {
            Some(id) => self.participants.get_key_value(id).into_iter().collect(),
            None => self.participants.iter().collect(),
        };
        for (tid, track) in &self.tracks {
            for (pid, sub) in &subscribers {
                if let Some(f) = self.desired(*tid, track, pid, sub, speaker) {
                    wanted.insert((*tid, (*pid).clone()), f);
                }
            }
        }
        // What is forwarded now within the scope. A scoped pass looks only at tracks still
        // published: a track's end is reconciled for everyone when it happens.
        let old: Vec<((TrackId, ParticipantId), Forward)> = match only {
            Some(id) => self
                .tracks
                .keys()
                .filter_map(|t| {
                    let key = (*t, id.clone());
                    self.current.get(&key).map(|f| (key, *f))
                })
                .collect(),
            None => self.current.iter().map(|(k, f)| (k.clone(), *f)).collect(),
        };
        let mut out = Vec::new();
        let mut keyframes: BTreeSet<(TrackId, Layer)> = BTreeSet::new();
        for (key, old) in &old {
            if !wanted.contains_key(key) {
                out.push(Action::Stop {
                    track: key.0,
                    to: key.1.clone(),
                });
            } else if let (Forward::Video(a), Some(Forward::Video(b))) = (old, wanted.get(key))
                && a != b
            {
                out.push(Action::Switch {
                    track: key.0,
                    to: key.1.clone(),
                    layer: *b,
                });
                keyframes.insert((key.0, *b));
            }
        }
        for (key, f) in &wanted {
            if !self.current.contains_key(key) {
                out.push(Action::Start {
                    track: key.0,
                    to: key.1.clone(),
                    forward: *f,
                });
                if let Forward::Video(l) = f {
                    keyframes.insert((key.0, *l));
                }
            }
        }
        match only {
            Some(_) => {
                for (key, _) in &old {
                    self.current.remove(key);
                }
            }
            None => self.current.clear(),
        }
        self.current.extend(wanted);
        for (track, layer) in keyframes {
            self.keyframe(track, layer, now, &mut out);
        }
        out
    }
}

fn highest(track: &Track) -> Layer {
    track
        .layers
        .iter()
        .map(|(l, _)| *l)
        .max()
        .unwrap_or(Layer::High)
}

fn lowest(track: &Track) -> Layer {
    track
        .layers
        .iter()
        .map(|(l, _)| *l)
        .min()
        .unwrap_or(Layer::Low)
}

#[cfg(test)]
mod tests;
