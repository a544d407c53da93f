//! dienhong-sfu: the media plane of the hybrid sitting.
//!
//! - [`routing`]: pure forwarding decisions. Who receives which track, which simulcast
//!   layer, when to ask a publisher for a keyframe, with the floor enforced: a microphone
//!   whose owner does not hold the floor reaches nobody but the chair console. Driven by
//!   events (joins, tracks, floor changes, bandwidth estimates, mutes) with the time passed
//!   in; no sockets, no clock, so every rule is tested with tables and a virtual clock.
//! - [`forward`]: per-subscriber forwarding state as pure code: simulcast layer switching
//!   at keyframes, sequence number and timestamp rewriting.
//! - [`feedback`]: the RTCP the SFU acts on (keyframe requests, REMB estimates) and the
//!   interceptors of each leg (NACK, reports, transport-wide feedback).
//! - [`load`]: how loaded the I/O thread is, as pure code: capacity estimated from measured
//!   load, what to shed past it, and whether a new receiver is admitted.
//! - [`driver`]: the I/O driver that applies them to real peers: every peer connection on
//!   one UDP socket, one thread driving webrtc-rs's sans-IO core (the architecture chosen
//!   from the forwarding benchmark, `docs/benchmarks.md`).

pub mod driver;
pub mod feedback;
pub mod forward;
pub mod load;
pub mod routing;
