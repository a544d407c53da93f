//! Single-use tickets for opening the WebSocket from a browser.
//!
//! A browser cannot set an `Authorization` header on a WebSocket, and a token in the URL
//! ends up in proxy and access logs. So a page asks `POST /api/ws-ticket` with its bearer
//! token and gets a random ticket that opens one connection within a few seconds. The ticket
//! stands for the token it was issued against: redeeming it gives that token back, to be
//! verified again (a logout between issue and use still refuses the connection). A ticket
//! is forgotten when redeemed or expired. Time comes in as an argument; nothing here reads
//! a clock.

use crate::sitting::Millis;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::collections::HashMap;
use std::sync::Mutex;

/// Longest ticket accepted, in bytes (anything longer is not one of ours).
pub const MAX_TICKET_BYTES: usize = 64;

/// Why a ticket was not issued or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Unknown, already used, or expired.
    #[error("unknown, used or expired ticket")]
    Invalid,
    /// Too many tickets outstanding; try again shortly.
    #[error("too many tickets outstanding")]
    Busy,
}

struct Issued {
    token: String,
    expires: Millis,
}

/// The outstanding tickets.
pub struct Tickets {
    ttl_ms: i64,
    capacity: usize,
    issued: Mutex<HashMap<String, Issued>>,
}

impl Tickets {
    /// Tickets that live `ttl_ms`, at most `capacity` outstanding at once.
    pub fn new(ttl_ms: i64, capacity: usize) -> Tickets {
        Tickets {
            ttl_ms,
            capacity,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// How long a ticket lives, in milliseconds.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// Issues a ticket for `token` (already verified by the caller).
    pub fn issue(&self, token: &str, now: Millis) -> Result<String, TicketError> {
        let mut issued = self.issued.lock().map_err(|_| TicketError::Busy)?;
        if issued.len() >= self.capacity {
            issued.retain(|_, t| t.expires.0 > now.0);
            if issued.len() >= self.capacity {
                return Err(TicketError::Busy);
            }
        }
        let mut bytes = [0u8; 24];
        rand::fill(&mut bytes);
        let ticket = B64.encode(bytes);
        issued.insert(
            ticket.clone(),
            Issued {
                token: token.to_owned(),
                expires: Millis(now.0.saturating_add(self.ttl_ms)),
            },
        );
        Ok(ticket)
    }

    /// Redeems a ticket once: the token it was issued for.
    pub fn redeem(&self, ticket: &str, now: Millis) -> Result<String, TicketError> {
        if ticket.is_empty() || ticket.len() > MAX_TICKET_BYTES {
            return Err(TicketError::Invalid);
        }
        let mut issued = self.issued.lock().map_err(|_| TicketError::Invalid)?;
        match issued.remove(ticket) {
            Some(t) if t.expires.0 > now.0 => Ok(t.token),
            _ => Err(TicketError::Invalid),
        }
    }

    /// Tickets outstanding (expired ones included until they are swept).
    pub fn outstanding(&self) -> usize {
        self.issued.lock().map(|i| i.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_once_and_gives_back_its_token() {
        let t = Tickets::new(10_000, 100);
        let ticket = t.issue("tok-1", Millis(1_000)).expect("issued");
        assert_eq!(t.redeem(&ticket, Millis(2_000)), Ok("tok-1".to_owned()));
        assert_eq!(t.redeem(&ticket, Millis(2_001)), Err(TicketError::Invalid));
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_ticket_past_its_lifetime_is_refused() {
        let t = Tickets::new(10_000, 100);
        let ticket = t.issue("tok", Millis(1_000)).expect("issued");
        assert_eq!(t.redeem(&ticket, Millis(11_000)), Err(TicketError::Invalid));
        let ticket = t.issue("tok", Millis(1_000)).expect("issued");
        assert_eq!(t.redeem(&ticket, Millis(10_999)), Ok("tok".to_owned()));
    }

    #[test]
    fn unknown_empty_and_oversize_tickets_are_refused() {
        let t = Tickets::new(10_000, 100);
        let _ = t.issue("tok", Millis(0)).expect("issued");
        assert_eq!(t.redeem("", Millis(1)), Err(TicketError::Invalid));
        assert_eq!(t.redeem("nope", Millis(1)), Err(TicketError::Invalid));
        assert_eq!(
            t.redeem(&"x".repeat(MAX_TICKET_BYTES + 1), Millis(1)),
            Err(TicketError::Invalid)
        );
    }

    #[test]
    fn tickets_are_distinct_and_the_outstanding_number_is_bounded() {
        let t = Tickets::new(1_000, 3);
        let a = t.issue("a", Millis(0)).expect("a");
        let b = t.issue("b", Millis(0)).expect("b");
        let _ = t.issue("c", Millis(0)).expect("c");
        assert_ne!(a, b);
        assert_eq!(t.issue("d", Millis(500)), Err(TicketError::Busy));
        // Once the first three expire they are swept to make room.
        let d = t.issue("d", Millis(1_000)).expect("room after expiry");
        assert_eq!(t.outstanding(), 1);
        assert_eq!(t.redeem(&d, Millis(1_001)), Ok("d".to_owned()));
    }
}
