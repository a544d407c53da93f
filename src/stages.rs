//! Where a command's and an event's time goes, per stage, measured in the running server:
//! parsing a client's message, waiting for the writer, deciding, committing (and within it,
//! waiting for a database connection), serializing a commit, the wait of an answer and of a
//! commit for the fan-out to reach a connection, writing to the socket, and the log reads of
//! connections catching up; and a command's whole time in the server, from its message read
//! to its ack written. Each stage is a histogram of durations in fixed buckets (each power of two
//! of microseconds cut in four, so within 25 %), counted with atomics from any task.
//! `GET /healthz/stages` serves the cumulative counts; a measuring tool reads them before
//! and after a run and takes the difference.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A stage of the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A client's text frame parsed and checked.
    Parse,
    /// A command waiting in the writer's channel, from submission to being taken.
    Queue,
    /// The writer deciding a batch against the procedure rules.
    Decide,
    /// Appending a batch's events durably (the transaction).
    Commit,
    /// Within the commit: waiting for a database connection and the transaction to begin.
    Begin,
    /// Serializing a commit's events for every connection.
    Serialize,
    /// From the writer's answer to the ack written to the client's socket.
    Ack,
    /// From a commit's broadcast to the fan-out writing it to a connection.
    Fanout,
    /// Writing a connection's new events to its socket (one write for the commits that
    /// arrived together).
    Write,
    /// A command in the server as a whole: from its message read from the socket to its
    /// ack written to it.
    Command,
    /// A connection behind the fan-out reading a page of the log to catch up (or to
    /// resume): how many there were, and how long each read took.
    LogRead,
}

impl Stage {
    /// Every stage, in the order a command goes through them.
    pub const ALL: [Stage; 11] = [
        Stage::Parse,
        Stage::Queue,
        Stage::Decide,
        Stage::Begin,
        Stage::Commit,
        Stage::Serialize,
        Stage::Ack,
        Stage::Fanout,
        Stage::Write,
        Stage::LogRead,
        Stage::Command,
    ];

    /// The stage's name, as served and exported.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Queue => "queue",
            Stage::Decide => "decide",
            Stage::Begin => "begin",
            Stage::Commit => "commit",
            Stage::Serialize => "serialize",
            Stage::Ack => "ack",
            Stage::Fanout => "fanout",
            Stage::Write => "write",
            Stage::LogRead => "log_read",
            Stage::Command => "command",
        }
    }
}

/// Buckets per stage: bucket `4t + f` holds durations from `2^t × (1 + f/4)` µs up to the
/// next bucket's start; the last holds the rest (over about an hour).
const BUCKETS: usize = 128;

static COUNTS: [[AtomicU64; BUCKETS]; Stage::ALL.len()] =
    [const { [const { AtomicU64::new(0) }; BUCKETS] }; Stage::ALL.len()];

/// The bucket of `us` microseconds.
fn bucket(us: u64) -> usize {
    if us == 0 {
        return 0;
    }
    // The top bit's position, and the two bits under it.
    let top = 63 - us.leading_zeros() as usize;
    let frac = if top >= 2 {
        ((us >> (top - 2)) & 0b11) as usize
    } else {
        ((us << (2 - top)) & 0b11) as usize
    };
    (top * 4 + frac).min(BUCKETS - 1)
}

/// The smallest duration in bucket `b`, µs.
pub fn bucket_floor_us(b: usize) -> f64 {
    2f64.powi((b / 4) as i32) * (1.0 + (b % 4) as f64 / 4.0)
}

/// Counts one duration of `stage`.
pub fn record(stage: Stage, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let i = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
    COUNTS[i][bucket(us)].fetch_add(1, Ordering::Relaxed);
}

/// The cumulative counts of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageCounts {
    /// The stage's name.
    pub stage: &'static str,
    /// Durations counted.
    pub count: u64,
    /// (bucket, count) of the buckets that hold any; bucket `4t + f` starts at
    /// `2^t × (1 + f/4)` µs.
    pub buckets: Vec<(usize, u64)>,
}

/// The counts of every stage since the server started.
pub fn snapshot() -> Vec<StageCounts> {
    Stage::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let buckets: Vec<(usize, u64)> = COUNTS[i]
                .iter()
                .enumerate()
                .map(|(b, c)| (b, c.load(Ordering::Relaxed)))
                .filter(|(_, c)| *c > 0)
                .collect();
            StageCounts {
                stage: s.name(),
                count: buckets.iter().map(|(_, c)| c).sum(),
                buckets,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_grow_by_a_quarter_power_of_two_and_hold_their_floor() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 0);
        assert_eq!(bucket(2), 4);
        assert_eq!(bucket(4), 8);
        assert_eq!(bucket(1_000), 39);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for us in [1u64, 3, 17, 250, 1_000, 1_229, 25_000, 1_000_000] {
            let b = bucket(us);
            assert!(bucket_floor_us(b) <= us as f64 * 1.001, "{us} in {b}");
            assert!(bucket_floor_us(b + 1) > us as f64, "{us} in {b}");
        }
    }

    #[test]
    fn recorded_durations_show_in_the_snapshot() {
        let before = snapshot();
        record(Stage::Serialize, Duration::from_micros(1_000));
        record(Stage::Serialize, Duration::from_micros(1_000));
        let after = snapshot();
        let count = |s: &[StageCounts]| {
            s.iter()
                .find(|c| c.stage == "serialize")
                .map_or(0, |c| c.count)
        };
        assert!(count(&after) >= count(&before) + 2);
        let serialize = after
            .iter()
            .find(|c| c.stage == "serialize")
            .expect("stage");
        assert!(serialize.buckets.iter().any(|(b, n)| *b == 39 && *n >= 2));
    }
}
