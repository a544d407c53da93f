//! The I/O thread's own load, measured: busy time (and how much of it went to forwarding),
//! packets forwarded and packets received per track over short intervals, turned into
//! [`Sample`]s for the pure [`Governor`], whose latest report is shared with the
//! [`super::Driver`] handle (health and metrics read it without a round trip through the
//! busy thread).

use crate::load::{Admission, Governor, LoadReport, LoadTuning, Sample};
use crate::routing::{Media, Millis, Shed, TrackId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the load is sampled.
const INTERVAL: Duration = Duration::from_millis(250);

pub(super) struct Meter {
    governor: Governor,
    started: Instant,
    busy: Duration,
    forwarding: Duration,
    forwarded: u64,
    received: HashMap<TrackId, u64>,
    shared: Arc<Mutex<LoadReport>>,
}

impl Meter {
    /// A meter whose first interval starts at `now`.
    pub(super) fn new(tuning: LoadTuning, shared: Arc<Mutex<LoadReport>>, now: Instant) -> Meter {
        let governor = Governor::new(tuning);
        if let Ok(mut r) = shared.lock() {
            *r = governor.report();
        }
        Meter {
            governor,
            started: now,
            busy: Duration::ZERO,
            forwarding: Duration::ZERO,
            forwarded: 0,
            received: HashMap::new(),
            shared,
        }
    }

    /// Time the thread spent working rather than waiting.
    pub(super) fn busy(&mut self, d: Duration) {
        self.busy += d;
    }

    /// Of the busy time, time spent forwarding a publisher's packet.
    pub(super) fn forwarding(&mut self, d: Duration) {
        self.forwarding += d;
    }

    /// A packet written to a receiver.
    pub(super) fn forwarded(&mut self) {
        self.forwarded += 1;
    }

    /// A packet of `track` received from its publisher.
    pub(super) fn received(&mut self, track: TrackId) {
        *self.received.entry(track).or_default() += 1;
    }

    /// Whether the interval is over.
    pub(super) fn due(&self, now: Instant) -> bool {
        now >= self.started + INTERVAL
    }

    /// Ends the interval: `programme` tells which tracks an ordinary receiver gets (the
    /// chamber's, the speaker's) and what they carry; `sheddable` counts the receivers the
    /// router may shed. Returns what to shed when that changes.
    pub(super) fn sample(
        &mut self,
        now: Instant,
        at: Millis,
        programme: impl Fn(TrackId) -> Option<Media>,
        sheddable: usize,
    ) -> Option<Shed> {
        let elapsed = now.duration_since(self.started);
        let secs = elapsed.as_secs_f64().max(1e-6);
        let (mut all, mut video) = (0.0, 0.0);
        for (track, n) in self.received.drain() {
            match programme(track) {
                Some(Media::Video) => {
                    all += n as f64 / secs;
                    video += n as f64 / secs;
                }
                Some(Media::Audio) => all += n as f64 / secs,
                None => {}
            }
        }
        let sample = Sample {
            at,
            busy_us: u64::try_from(self.busy.as_micros()).unwrap_or(u64::MAX),
            forwarding_us: u64::try_from(self.forwarding.as_micros()).unwrap_or(u64::MAX),
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            forwarded: self.forwarded,
            receiver_pps: all,
            receiver_video_pps: video,
            sheddable,
        };
        self.started = now;
        self.busy = Duration::ZERO;
        self.forwarding = Duration::ZERO;
        self.forwarded = 0;
        let shed = self.governor.sample(&sample);
        self.publish();
        shed
    }

    /// Whether a new receiver, to be known as `key`, may join now (see
    /// [`Governor::admit`]).
    pub(super) fn admit(&mut self, at: Millis, key: u64, protected: bool) -> Admission {
        let pps = self.governor.receiver_cost();
        let admission = self.governor.admit(at, key, protected, pps);
        self.publish();
        admission
    }

    /// The receiver `key` connected.
    pub(super) fn connected(&mut self, key: u64, at: Millis) {
        self.governor.connected(key, at);
    }

    /// The receiver `key` has gone (or was never made).
    pub(super) fn release(&mut self, key: u64) {
        self.governor.release(key);
    }

    fn publish(&self) {
        if let Ok(mut r) = self.shared.lock() {
            *r = self.governor.report();
        }
    }
}
