//! An independent media load generator for dienhong's SFU, built on str0m (another WebRTC
//! stack than the SFU's webrtc-rs), and two bare forwarding loops to compare it with: one on
//! str0m, one on webrtc-rs's async layer.
//!
//! The generator (`dienhong-media-load`) publishes synthetic Opus and VP8 over WHIP as the
//! chamber (and, if asked, as a deputy given the floor) and pulls with N WHEP receivers,
//! each on its own UDP socket, decrypting and counting every packet. The bare loop (`bare-forward`) answers the same requests and
//! forwards every packet of the publisher to every receiver on one socket and one thread;
//! `bare-forward-webrtc` does the same with webrtc-rs 0.21 peer connections (a socket per
//! peer) on a one-thread tokio runtime.
//!
//! Modules by concern: [`http`] (a minimal HTTP/1.1 client and server), [`signal`] (login,
//! commands, WHIP, WHEP), [`floor`] (giving a deputy the floor), [`payload`] (synthetic
//! payloads, their source and send time), [`peer`] (str0m configuration and output
//! draining), [`publisher`], [`receivers`], [`stats`] (histograms,
//! kernel and process counters), [`report`], [`cpu`] (pinning and CPU time), [`run`] (the
//! generator's sequence), [`bare`] (the bare str0m loop, and the signalling both loops
//! share) and [`bare_webrtc`] (the bare webrtc-rs loop).

pub mod bare;
pub mod bare_cli;
pub mod bare_webrtc;
pub mod cpu;
pub mod floor;
pub mod http;
pub mod payload;
pub mod peer;
pub mod publisher;
pub mod receivers;
pub mod report;
pub mod run;
pub mod signal;
pub mod stats;
