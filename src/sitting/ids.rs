//! Identifier newtypes and the time type of the procedure core.
//!
//! Identifiers are small validated newtypes so that a deputy id can never be passed where a
//! vote id is expected. Time is milliseconds since the Unix epoch, passed in by the caller:
//! the core never reads a clock.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch. The only notion of time in the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// This instant plus a number of seconds, saturating instead of overflowing.
    pub fn plus_secs(self, secs: u32) -> Millis {
        Millis(self.0.saturating_add(i64::from(secs) * 1000))
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps a string as this identifier.
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

string_id!(
    /// A person or system that issues commands: a deputy code ("DB0001") or a staff code.
    ActorId
);
string_id!(
    /// A delegation code: the two-digit statistics office code, or the chamber's code.
    DelegationCode
);
string_id!(
    /// A sitting, e.g. "2026-11-kh10-s1".
    SittingId
);
number_id!(
    /// An agenda item, numbered from 1 in the order items were created.
    ItemId
);
number_id!(
    /// A request to speak, numbered from 1.
    RequestId
);
number_id!(
    /// A vote, numbered from 1; a re-run is a new vote.
    VoteId
);
number_id!(
    /// A document; its versions share the id.
    DocumentId
);

impl ActorId {
    /// The reserved actor for commands that come from the server itself (creation, clock ticks).
    pub fn system() -> ActorId {
        ActorId("system".to_owned())
    }
    /// Whether this is the reserved system actor.
    pub fn is_system(&self) -> bool {
        self.0 == "system"
    }
}

/// Where a deputy sits while present: it decides whose microphone carries them when they
/// are given the floor.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// In the chamber: heard through the chamber's programme (the hall's own sound).
    Hall,
    /// In their delegation's meeting room: heard through the room's microphone, unless
    /// their own device publishes one.
    Site,
    /// Alone, on their own phone or laptop: heard only through it.
    Remote,
}
