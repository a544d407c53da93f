//! The control plane: the WebSocket protocol (`protocol`), one task per connection
//! (`session`), the tasks writing each sitting's commits to its connections (`fanout`), the
//! path every command takes whatever brought it (`commands`, shared with
//! the REST API), and the settings they use.
//!
//! A connection is authenticated at the handshake (bearer token, allowed Origin), then
//! subscribes to a sitting: it gets a snapshot or the events after the sequence number it
//! resumes from, then every committed event in order, with no gap and no duplicate. Commands
//! carry a client id and are acknowledged only once durable.
//!
//! What the control plane uses of the rest of the server (the running sittings, the log,
//! logouts, media, documents, passkeys, the audit trail) is handed to it as a [`Host`]: it
//! never reaches up into the module that composes it.

pub mod commands;
pub mod fanout;
pub mod protocol;
pub mod session;

use crate::audit::AuditEntry;
use crate::auth::passkey::Passkeys;
use crate::config::ControlConfig;
use crate::documents::Documents;
use crate::media::Media;
use crate::sitting::{ActorId, SittingId};
use crate::store::Store;
use crate::writer::SittingHandle;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the control plane needs of the server that runs it, implemented by the server and
/// handed to each session and to the path of every command.
pub trait Host: Send + Sync {
    /// The running sitting `id`, if there is one.
    fn sitting(&self, id: &SittingId) -> Option<SittingHandle>;
    /// The event log, which a connection catching up reads.
    fn store(&self) -> &Store;
    /// Changes when `actor` logs out everywhere: their connections close.
    fn kicked(&self, actor: &ActorId) -> watch::Receiver<u64>;
    /// The media plane, when it runs.
    fn media(&self) -> Option<&Arc<Media>>;
    /// The document store, which checks the upload a command names.
    fn documents(&self) -> &Documents;
    /// The passkeys, which check a ballot's confirmation.
    fn passkeys(&self) -> &Passkeys;
    /// Puts an entry in the audit trail.
    fn audit(&self, entry: AuditEntry);
}

/// Limits of one connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest client message, bytes.
    pub max_message_bytes: usize,
    /// Sustained commands per second.
    pub commands_per_sec: u32,
    /// Burst above the rate.
    pub command_burst: u32,
    /// Rate-limit errors tolerated before closing.
    pub max_rate_violations: u32,
    /// Commands awaiting durability at once.
    pub max_in_flight: usize,
    /// Ping period.
    pub ping: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Largest resume gap served from the log.
    pub max_resume_gap: u64,
    /// Tasks writing each sitting's commits to its connections (0: one per core).
    pub fanout_tasks: usize,
    /// Messages queued in memory for a connection whose socket is full, before it is
    /// served from the log.
    pub fanout_queue: usize,
}

impl From<&ControlConfig> for Limits {
    fn from(c: &ControlConfig) -> Limits {
        Limits {
            max_message_bytes: c.max_message_bytes,
            commands_per_sec: c.commands_per_sec,
            command_burst: c.command_burst,
            max_rate_violations: c.max_rate_violations,
            max_in_flight: c.max_in_flight,
            ping: Duration::from_secs(c.ping_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            max_resume_gap: c.max_resume_gap,
            fanout_tasks: c.fanout_tasks,
            fanout_queue: c.fanout_queue,
        }
    }
}

/// A token bucket: `rate` tokens per second up to `burst`. Time is passed in.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: std::time::Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: std::time::Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..8).filter(|_| b.take(t0)).count(), 5);
        assert!(!b.take(t0));
        assert!(
            b.take(t0 + Duration::from_millis(100)),
            "one token per 100 ms"
        );
        assert!(!b.take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..8).filter(|_| b.take(later)).count(),
            5,
            "never more than the burst"
        );
    }
}
