//! How loaded the SFU's I/O is, and what it does about it, as pure code.
//!
//! The I/O thread reports, a few times a second, how long it was busy and how many packets
//! it forwarded ([`Sample`]). From that the [`Governor`] keeps:
//! - the utilisation of the thread (busy time over wall time, smoothed);
//! - the capacity, in forwarded packets per second at full utilisation, estimated from the
//!   time spent forwarding alone (a starting guess until the first real measurement), so a
//!   burst of handshakes, which costs time but forwards nothing, does not make the thread
//!   look slower at forwarding than it is;
//! - what is shed ([`Shed`]): once the load has stayed above a high-water mark for a while
//!   (so that a passing burst, of handshakes say, which shedding would not relieve, sheds
//!   nothing), it sheds one step at a time, once per settling period (first the lowest
//!   layers for ordinary receivers, then the picture for more and more of the least
//!   important ones: the order is the router's); after a calm period it gives pictures
//!   back, as many as fit under a low-water mark with what they add (as estimated), so it
//!   settles under the high one instead of keeping pictures shed that it could carry;
//! - whether a new receiver is admitted ([`Governor::admit`]): protected participants (the
//!   chamber, the chair, the floor holder) always; others only while no picture is being
//!   shed and the projected load, counting receivers admitted but not yet measured, stays
//!   under a ceiling. It starts from the utilisation averaged over the last 2 s, steadier
//!   than the smoothed one shedding watches, so a round of requests arriving at a passing
//!   peak or dip is not refused or admitted wholesale. The projection costs a receiver at
//!   the thread's whole busy time per
//!   packet forwarded, not the forwarding time alone: a receiver also brings its feedback,
//!   its timers and its handshake, and costed at forwarding alone, receivers were admitted
//!   past the ceiling, then had their pictures shed. A receiver admitted counts as load to come until it has connected and
//!   had time to show in the samples, or until its handshake has plainly failed; one that
//!   leaves first stops counting at once. A refusal says when to try again.
//!
//! No clock and no sockets: the caller passes the time, and the tests drive it with tables.

use crate::routing::{Millis, Shed};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

/// What the server assumes a receiver costs before the programme is measured, packets/s:
/// sound (50) and a picture of about 2 Mbit/s.
pub const UNMEASURED_RECEIVER_PPS: f64 = 300.0;

/// Thresholds and periods of the governor.
#[derive(Debug, Clone, Copy)]
pub struct LoadTuning {
    /// Utilisation at or above which one more step is shed each `settle`.
    pub high: f64,
    /// Utilisation under which, held for `calm`, one step is given back: for pictures, the
    /// utilisation with what the step would add, as estimated; for the lower layers, the
    /// utilisation itself.
    pub low: f64,
    /// Projected utilisation from which new ordinary receivers are refused (0: all are).
    pub admit_ceiling: f64,
    /// How long the load must stay at or above `high` before the first step up.
    pub sustain: Millis,
    /// Least time between two steps up.
    pub settle: Millis,
    /// How long load must stay low before a step is given back (and between two such).
    pub calm: Millis,
    /// Capacity assumed (forwarded packets/s at full utilisation) until one is measured.
    pub initial_capacity_pps: f64,
    /// What a new receiver is assumed to cost, packets/s, while no programme has been
    /// measured in the last few seconds (nothing published yet, or a publisher that has
    /// just started). Costed at nothing (the default here), a burst of receivers arriving
    /// before the programme is all admitted at once, and pictures are shed for most of them
    /// as soon as it starts; the server sets [`UNMEASURED_RECEIVER_PPS`].
    pub unmeasured_receiver_pps: f64,
    /// How long a receiver that connected still counts as load to come (it shows in the
    /// smoothed samples after about this long).
    pub measured_after: Millis,
    /// How long a receiver admitted but never connected counts as load to come.
    pub handshake_timeout: Millis,
    /// What a refused receiver is told to wait, seconds.
    pub retry_after_s: u64,
}

impl Default for LoadTuning {
    fn default() -> Self {
        LoadTuning {
            high: 0.85,
            low: 0.75,
            admit_ceiling: 0.75,
            sustain: 1_000,
            settle: 500,
            calm: 5_000,
            initial_capacity_pps: 30_000.0,
            unmeasured_receiver_pps: 0.0,
            measured_after: 2_000,
            handshake_timeout: 15_000,
            retry_after_s: 5,
        }
    }
}

impl LoadTuning {
    /// A governor that measures but never sheds and never refuses: for measuring something
    /// other than overload.
    pub fn unlimited() -> LoadTuning {
        LoadTuning {
            high: f64::INFINITY,
            low: f64::INFINITY,
            admit_ceiling: f64::INFINITY,
            ..LoadTuning::default()
        }
    }
}

/// What the I/O thread measured over one interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// When the interval ended.
    pub at: Millis,
    /// Time spent working (not waiting for packets), microseconds.
    pub busy_us: u64,
    /// Of which forwarding: handling the publishers' packets and sending them on.
    pub forwarding_us: u64,
    /// Length of the interval, microseconds.
    pub elapsed_us: u64,
    /// Packets forwarded to receivers in the interval.
    pub forwarded: u64,
    /// Packets per second one ordinary receiver of the programme gets (sound and picture).
    pub receiver_pps: f64,
    /// Of which the picture.
    pub receiver_video_pps: f64,
    /// Receivers that may be shed now (the router's order).
    pub sheddable: usize,
}

/// A decision on a new receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// There is room.
    Admit,
    /// There is no room: try again after this many seconds.
    Refuse {
        /// Seconds.
        retry_after_s: u64,
    },
}

/// What is known of the load, for health and metrics output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LoadReport {
    /// Busy time over wall time of the I/O thread, 0–1, smoothed.
    pub utilisation: f64,
    /// Packets forwarded per second, smoothed.
    pub forwarded_pps: f64,
    /// Forwarded packets per second at full utilisation, as estimated from the time spent
    /// forwarding.
    pub capacity_pps: f64,
    /// The same from the whole busy time (with everything else a receiver brings): what
    /// admission projects with.
    pub admission_capacity_pps: f64,
    /// Whether `capacity_pps` comes from a measurement (not the starting guess).
    pub measured: bool,
    /// How many ordinary receivers of the programme fit under the admission ceiling, as
    /// estimated; none while nothing is published.
    pub capacity_receivers: Option<u64>,
    /// Receivers admitted whose load is not measured yet (still connecting, or just
    /// connected).
    pub pending_receivers: usize,
    /// What is shed now.
    pub shed: Shed,
}

impl LoadReport {
    /// Several I/O threads' reports as one: the busiest thread's utilisation (it is the one
    /// that sheds and refuses first), rates, capacities and pending receivers added up,
    /// measured when every thread's capacity is, and the shedding of all (lower layers
    /// when any thread has them, pictures off counted together).
    pub fn combine(reports: &[LoadReport]) -> LoadReport {
        let Some(first) = reports.first() else {
            return LoadReport::default();
        };
        let mut all = *first;
        for r in &reports[1..] {
            all.utilisation = all.utilisation.max(r.utilisation);
            all.forwarded_pps += r.forwarded_pps;
            all.capacity_pps += r.capacity_pps;
            all.admission_capacity_pps += r.admission_capacity_pps;
            all.measured &= r.measured;
            all.capacity_receivers = match (all.capacity_receivers, r.capacity_receivers) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            all.pending_receivers += r.pending_receivers;
            all.shed.low_layers |= r.shed.low_layers;
            all.shed.video_off += r.shed.video_off;
        }
        all
    }
}

/// The load governor: see the module header.
#[derive(Debug, Clone)]
pub struct Governor {
    tuning: LoadTuning,
    utilisation: f64,
    forwarded_pps: f64,
    capacity_pps: f64,
    /// Forwarded packets per second at full utilisation, from the whole busy time.
    busy_capacity_pps: f64,
    measured: bool,
    receiver_pps: f64,
    /// The utilisation of each of the last [`ADMISSION_INTERVALS`] intervals.
    recent_utilisation: VecDeque<f64>,
    /// What one receiver of the programme got in each of the last intervals, newest last
    /// ([`RECEIVER_PEAK_INTERVALS`] at most).
    recent_receiver_pps: VecDeque<f64>,
    shed: Shed,
    last_step: Option<Millis>,
    calm_since: Option<Millis>,
    /// Since when the load has been at or above the high mark without a break.
    high_since: Option<Millis>,
    /// Receivers admitted and not yet measured, by the caller's key.
    pending: HashMap<u64, Pending>,
}

/// A receiver admitted whose load is not in the samples yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    admitted: Millis,
    connected: Option<Millis>,
    /// Packets/s it will add.
    pps: f64,
}

/// Smoothing of each new sample.
const ALPHA: f64 = 0.5;
/// Intervals over which a new receiver is costed at the programme's peak rate (5 s of
/// 250 ms).
pub const RECEIVER_PEAK_INTERVALS: usize = 20;
/// Intervals over which admission averages the utilisation (2 s of 250 ms); a receiver
/// that connected counts as load to come for at least as long
/// ([`LoadTuning::measured_after`]).
pub const ADMISSION_INTERVALS: usize = 8;
/// Least share of time spent forwarding at which capacity is estimated (below it, fixed
/// costs dominate).
const MEASURABLE: f64 = 0.1;

impl Governor {
    /// A governor with nothing measured yet.
    pub fn new(tuning: LoadTuning) -> Governor {
        Governor {
            tuning,
            utilisation: 0.0,
            forwarded_pps: 0.0,
            capacity_pps: tuning.initial_capacity_pps,
            busy_capacity_pps: tuning.initial_capacity_pps,
            measured: false,
            receiver_pps: 0.0,
            recent_utilisation: VecDeque::with_capacity(ADMISSION_INTERVALS),
            recent_receiver_pps: VecDeque::with_capacity(RECEIVER_PEAK_INTERVALS),
            shed: Shed::default(),
            last_step: None,
            calm_since: None,
            high_since: None,
            pending: HashMap::new(),
        }
    }

    /// Takes one interval's measurement; returns what to shed when that changes.
    pub fn sample(&mut self, s: &Sample) -> Option<Shed> {
        if s.elapsed_us == 0 {
            return None;
        }
        let u = (s.busy_us as f64 / s.elapsed_us as f64).clamp(0.0, 1.0);
        let pps = s.forwarded as f64 * 1e6 / s.elapsed_us as f64;
        self.utilisation = ALPHA * u + (1.0 - ALPHA) * self.utilisation;
        if self.recent_utilisation.len() == ADMISSION_INTERVALS {
            self.recent_utilisation.pop_front();
        }
        self.recent_utilisation.push_back(u);
        self.forwarded_pps = ALPHA * pps + (1.0 - ALPHA) * self.forwarded_pps;
        self.receiver_pps = s.receiver_pps;
        if self.recent_receiver_pps.len() == RECEIVER_PEAK_INTERVALS {
            self.recent_receiver_pps.pop_front();
        }
        self.recent_receiver_pps.push_back(s.receiver_pps);
        let forwarding = (s.forwarding_us as f64 / s.elapsed_us as f64).clamp(0.0, 1.0);
        if forwarding >= MEASURABLE && pps > 0.0 {
            let smooth = |old: f64, new: f64| {
                if self.measured {
                    0.8 * old + 0.2 * new
                } else {
                    new
                }
            };
            // Busy time includes the forwarding time, so the second is at most the first.
            self.capacity_pps = smooth(self.capacity_pps, pps / forwarding);
            self.busy_capacity_pps = smooth(self.busy_capacity_pps, pps / u.max(forwarding));
            self.measured = true;
        }
        let (settled, timeout) = (self.tuning.measured_after, self.tuning.handshake_timeout);
        self.pending.retain(|_, p| match p.connected {
            Some(c) => s.at < c + settled,
            None => s.at < p.admitted + timeout,
        });
        let before = self.shed;
        self.shed.video_off = self.shed.video_off.min(s.sheddable);
        let step = (s.sheddable / 8).max(1);
        let since_step =
            |g: &Governor, period: Millis| g.last_step.is_none_or(|t| s.at >= t + period);
        if self.utilisation < self.tuning.high {
            self.high_since = None;
        }
        if self.utilisation >= self.tuning.high {
            self.calm_since = None;
            let since = *self.high_since.get_or_insert(s.at);
            if s.at >= since + self.tuning.sustain && since_step(self, self.tuning.settle) {
                if !self.shed.low_layers {
                    self.shed.low_layers = true;
                } else {
                    self.shed.video_off = (self.shed.video_off + step).min(s.sheddable);
                }
                self.last_step = Some(s.at);
            }
        } else if self.shed.active() {
            // Pictures come back, at most a step at a time, as many as fit under the mark
            // with what they add; the layers (whose cost is not known) once the load itself
            // is under it. Either after a calm period.
            let picture = s.receiver_video_pps / self.capacity_pps;
            let room = self.tuning.low - self.utilisation;
            let fit = if picture > 0.0 {
                (room / picture).floor().max(0.0) as usize
            } else {
                usize::MAX
            };
            let back = step.min(self.shed.video_off).min(fit);
            let fits = if self.shed.video_off > 0 {
                back > 0
            } else {
                room >= 0.0
            };
            if fits {
                let since = *self.calm_since.get_or_insert(s.at);
                if s.at >= since + self.tuning.calm && since_step(self, self.tuning.calm) {
                    if back > 0 {
                        self.shed.video_off -= back;
                    } else {
                        self.shed.low_layers = false;
                    }
                    self.last_step = Some(s.at);
                    self.calm_since = Some(s.at);
                }
            } else {
                self.calm_since = None;
            }
        } else {
            self.calm_since = None;
        }
        (self.shed != before).then_some(self.shed)
    }

    /// What a new receiver of the programme will cost, packets/s: the most one got in any
    /// of the last [`RECEIVER_PEAK_INTERVALS`] intervals. Not the last interval alone: a
    /// thread behind on its reading counts fewer packets from the publishers than they
    /// send, and receivers would look cheapest exactly when it can least afford them. With
    /// no programme in that window, [`LoadTuning::unmeasured_receiver_pps`].
    pub fn receiver_cost(&self) -> f64 {
        let peak = self.recent_receiver_pps.iter().copied().fold(0.0, f64::max);
        if peak > 0.0 {
            peak
        } else {
            self.tuning.unmeasured_receiver_pps
        }
    }

    /// Whether a new receiver getting `receiver_pps` packets/s may join now; `protected`
    /// ones always may. An admitted receiver counts in the projection, under `key`, until
    /// it shows in the samples (see [`Governor::connected`], [`Governor::release`]).
    pub fn admit(
        &mut self,
        now: Millis,
        key: u64,
        protected: bool,
        receiver_pps: f64,
    ) -> Admission {
        let pending = Pending {
            admitted: now,
            connected: None,
            pps: receiver_pps,
        };
        if protected {
            self.pending.insert(key, pending);
            return Admission::Admit;
        }
        let refuse = Admission::Refuse {
            retry_after_s: self.tuning.retry_after_s,
        };
        if self.shed.video_off > 0 {
            return refuse;
        }
        let to_come: f64 = self.pending.values().map(|p| p.pps).sum();
        let now_u = match self.recent_utilisation.len() {
            0 => self.utilisation,
            n => self.recent_utilisation.iter().sum::<f64>() / n as f64,
        };
        let projected = now_u + (to_come + receiver_pps) / self.busy_capacity_pps;
        if projected >= self.tuning.admit_ceiling {
            return refuse;
        }
        self.pending.insert(key, pending);
        Admission::Admit
    }

    /// The receiver admitted under `key` connected: it counts as load to come only until
    /// the samples can show it.
    pub fn connected(&mut self, key: u64, now: Millis) {
        if let Some(p) = self.pending.get_mut(&key) {
            p.connected.get_or_insert(now);
        }
    }

    /// The receiver admitted under `key` left (or never came): it no longer counts as load
    /// to come.
    pub fn release(&mut self, key: u64) {
        self.pending.remove(&key);
    }

    /// How many receivers admitted are not yet in the samples.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What is shed now.
    pub fn shed(&self) -> Shed {
        self.shed
    }

    /// The load as known now.
    pub fn report(&self) -> LoadReport {
        let room = self.tuning.admit_ceiling * self.busy_capacity_pps;
        LoadReport {
            utilisation: self.utilisation,
            forwarded_pps: self.forwarded_pps,
            capacity_pps: self.capacity_pps,
            admission_capacity_pps: self.busy_capacity_pps,
            measured: self.measured,
            capacity_receivers: (self.receiver_pps > 0.0)
                .then(|| (room / self.receiver_pps).floor() as u64),
            pending_receivers: self.pending.len(),
            shed: self.shed,
        }
    }
}

#[cfg(test)]
mod tests;
