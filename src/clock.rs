//! The wall clock, read in one place. The procedure core never reads it: the writer, the
//! sessions, the HTTP routes, the media glue and the webhooks read it here and hand the time
//! to what they call.

use crate::sitting::Millis;

/// The wall clock in milliseconds since the Unix epoch (0 before it, saturated far after).
pub fn now_millis() -> Millis {
    Millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}
