//! The generator's report: one struct, printed as a table for people and as one JSON line
//! for scripts.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// p50, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// A figure for audio and one for video.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerKind<T> {
    pub audio: T,
    pub video: T,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub label: String,
    /// WHEP receivers asked for.
    pub asked: usize,
    /// Answered 201.
    pub created: usize,
    /// Answered 503 (admission control), with the `Retry-After` values seen.
    pub refused: usize,
    pub retry_after: Vec<String>,
    /// Anything else, or no answer.
    pub failed: usize,
    /// Got at least one media packet.
    pub connected: usize,
    /// Answered 201 but never got media, by what they reached.
    pub never_connected: usize,
    /// Why receivers were not served, with counts.
    pub reasons: BTreeMap<String, usize>,
    /// WHEP POST → first media packet.
    pub setup_ms: Spread,
    pub window_s: f64,
    /// Packets received by all receivers per second in the window (= forwarded by the
    /// server and delivered).
    pub received_pps: f64,
    pub received_pps_by_kind: PerKind<f64>,
    /// What the programme's publisher (the floor holder if any, else the chamber) sent per
    /// second in the window.
    pub published_pps: PerKind<f64>,
    /// Loss by sequence-number gaps at receivers that got packets of that kind in the
    /// window, in %.
    pub loss_pct: PerKind<Option<f64>>,
    /// Received ÷ (published × connected receivers), in %.
    pub delivery_pct: PerKind<Option<f64>>,
    /// Connected receivers that got nothing of that kind in the window.
    pub starved: PerKind<usize>,
    /// Send → arrival, in the window.
    pub latency_ms: PerKind<Spread>,
    pub server: ServerCost,
    pub udp: UdpDrops,
    pub generator: Generator,
    /// The chamber's publisher.
    pub publisher: PublisherState,
    /// The deputy holding the floor, publishing too (`--floor`).
    pub floor: Option<PublisherState>,
    /// Of the packets received in the window, the share the floor holder sent, in %
    /// (receivers of the programme get the speaker while someone holds the floor).
    pub from_floor_pct: Option<f64>,
    /// ICE disconnections seen by the receivers over the run; receivers str0m gave up on.
    pub receiver_ice_disconnects: u64,
    pub receivers_dead: usize,
    /// The rest of the machine in the window: CPU cores busy with neither the server nor
    /// the generator (other work skews the figures), and the 1-minute load average.
    pub others_cores: Option<f64>,
    pub load_average: Option<f64>,
    /// Packets at or below the highest sequence number a receiver had seen (retransmitted,
    /// duplicated or reordered), over the whole run.
    pub repeated_packets: u64,
    /// Packets of no known payload type or without a send time.
    pub unknown_packets: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCost {
    pub pid: Option<u32>,
    /// CPU (user + system) in the window, as % of one core.
    pub cpu_pct: Option<f64>,
    /// CPU per packet received by the receivers, in µs.
    pub us_per_packet: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UdpDrops {
    /// `/proc/net/snmp` deltas over the window (the whole machine).
    pub in_errors: u64,
    pub rcvbuf_errors: u64,
    pub sndbuf_errors: u64,
    /// `/proc/net/udp` drop deltas: at the generator's sockets, at every other socket.
    pub at_generator: u64,
    pub elsewhere: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Generator {
    pub cpus: usize,
    pub io_threads: usize,
    /// CPU in the window as % of the CPUs it may use.
    pub cpu_pct: f64,
    /// The generator may be the bottleneck: figures are then a lower bound of the server.
    pub saturated: bool,
    /// Datagrams its sockets refused to send.
    pub refused_sends: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PublisherState {
    pub connected_at_end: bool,
    pub ice_disconnects: u64,
    /// Seconds after it started when its ICE first went disconnected.
    pub lost_at_s: Option<f64>,
    pub dead: bool,
    pub keyframe_requests: u64,
    /// Times it fell behind its schedule (in the window).
    pub late_in_window: u64,
    /// Status of the final `DELETE` of its WHIP session (404: the server had dropped it).
    pub whip_delete_status: u16,
}

fn f(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn spread(s: &Spread, digits: usize) -> String {
    format!(
        "{} / {} / {}",
        f(s.p50, digits),
        f(s.p99, digits),
        f(s.max, digits)
    )
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    let mut t = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(t, "  {k:<38} {v}");
    };
    row("target", r.label.clone());
    row(
        "receivers asked / created / connected",
        format!("{} / {} / {}", r.asked, r.created, r.connected),
    );
    row(
        "refused (503) / failed / never connected",
        format!("{} / {} / {}", r.refused, r.failed, r.never_connected),
    );
    for (reason, n) in &r.reasons {
        row("  reason", format!("{n} × {reason}"));
    }
    if !r.retry_after.is_empty() {
        row("  Retry-After seen", r.retry_after.join(", "));
    }
    row("set-up ms p50 / p99 / max", spread(&r.setup_ms, 0));
    row("window s", format!("{:.1}", r.window_s));
    row(
        "received pkt/s total (audio + video)",
        format!(
            "{:.0} ({:.0} + {:.0})",
            r.received_pps, r.received_pps_by_kind.audio, r.received_pps_by_kind.video
        ),
    );
    row(
        "published pkt/s (audio + video)",
        format!(
            "{:.0} + {:.0}",
            r.published_pps.audio, r.published_pps.video
        ),
    );
    row(
        "loss % by seq audio / video",
        format!("{} / {}", f(r.loss_pct.audio, 2), f(r.loss_pct.video, 2)),
    );
    row(
        "delivery % audio / video",
        format!(
            "{} / {}",
            f(r.delivery_pct.audio, 1),
            f(r.delivery_pct.video, 1)
        ),
    );
    row(
        "starved receivers audio / video",
        format!("{} / {}", r.starved.audio, r.starved.video),
    );
    row(
        "latency ms audio p50/p99/max",
        spread(&r.latency_ms.audio, 2),
    );
    row(
        "latency ms video p50/p99/max",
        spread(&r.latency_ms.video, 2),
    );
    row(
        "server CPU % of a core / µs per pkt",
        format!(
            "{} / {}",
            f(r.server.cpu_pct, 0),
            f(r.server.us_per_packet, 2)
        ),
    );
    row(
        "UDP InErrors / RcvbufErrors (machine)",
        format!("{} / {}", r.udp.in_errors, r.udp.rcvbuf_errors),
    );
    row(
        "UDP drops at generator / elsewhere",
        format!("{} / {}", r.udp.at_generator, r.udp.elsewhere),
    );
    row(
        "generator CPU % of its CPUs",
        format!(
            "{:.0} ({} CPU, {} I/O threads){}",
            r.generator.cpu_pct,
            r.generator.cpus,
            r.generator.io_threads,
            if r.generator.saturated {
                " SATURATED: the server's figures are a lower bound"
            } else {
                ""
            }
        ),
    );
    let mut publisher = |who: &str, p: &PublisherState| {
        row(
            &format!("{who} connected at end / lost at"),
            format!(
                "{} / {}",
                p.connected_at_end,
                p.lost_at_s
                    .map_or_else(|| "never".into(), |s| format!("{s:.1} s"))
            ),
        );
        row(
            &format!("{who} ICE disconnects / DELETE"),
            format!("{} / {}", p.ice_disconnects, p.whip_delete_status),
        );
    };
    publisher("chamber", &r.publisher);
    if let Some(floor) = &r.floor {
        publisher("floor holder", floor);
        row("received from the floor holder %", f(r.from_floor_pct, 1));
    }
    row(
        "receiver ICE disconnects / dead",
        format!("{} / {}", r.receiver_ice_disconnects, r.receivers_dead),
    );
    row(
        "repeated (late, resent, duplicate) packets",
        r.repeated_packets.to_string(),
    );
    row(
        "other work on the machine (cores) / load",
        format!("{} / {}", f(r.others_cores, 2), f(r.load_average, 2)),
    );
    for n in &r.notes {
        row("note", n.clone());
    }
    t
}
