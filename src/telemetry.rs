//! Metrics for Prometheus (`GET /metrics`), through the `metrics` crate and its Prometheus
//! exporter. What is counted where it happens:
//!
//! - `dienhong_ws_connections` (gauge), `dienhong_ws_messages_received_total` and
//!   `dienhong_ws_messages_sent_total`: the control plane's WebSockets;
//! - `dienhong_commands_total{command, outcome}`: every command a client sent, by its wire
//!   name and outcome (`accepted`, or the refusal's code);
//! - `dienhong_stage_seconds{stage}` (histogram): each stage of a command and an event
//!   ([`crate::stages`]): `commit` is the log's append latency, `fanout` the lag from a
//!   commit to the fan-out writing it to a connection;
//! - `dienhong_commit_commands` (histogram): commands per group commit;
//!   `dienhong_log_events_total`: events appended;
//! - `dienhong_media_*` (gauges, read from the SFU at each scrape): legs open, forwarded
//!   packets per second, utilisation of its I/O thread, receivers it has room for.
//!
//! One recorder per process, installed on first use; a process that runs several servers
//! (tests) shares it.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Bucket bounds of the `*_seconds` histograms: 50 µs to 10 s.
const SECONDS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Bucket bounds of `dienhong_commit_commands`.
const COMMANDS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0];

/// Installs the process's recorder (once); the handle renders the scrape. None if another
/// recorder was installed first (then nothing is exported).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("dienhong_commit_commands".into()),
                        &COMMANDS,
                    )
                })
                .and_then(|b| b.install_recorder());
            match built {
                Ok(h) => {
                    describe();
                    // Histogram samples wait in a queue until folded into their buckets:
                    // fold them every few seconds, scraped or not, so memory stays flat.
                    let upkeep = h.clone();
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP);
                                upkeep.run_upkeep();
                            }
                        });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "no metrics upkeep thread");
                    }
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are not exported");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    metrics::describe_gauge!("dienhong_ws_connections", "WebSocket connections open");
    metrics::describe_counter!(
        "dienhong_ws_messages_received_total",
        "WebSocket text messages received from clients"
    );
    metrics::describe_counter!(
        "dienhong_ws_messages_sent_total",
        "WebSocket messages sent to clients"
    );
    metrics::describe_counter!(
        "dienhong_commands_total",
        "Commands sent by clients, by wire name and outcome (accepted, or the refusal's code)"
    );
    metrics::describe_histogram!(
        "dienhong_commit_commands",
        "Commands per group commit of a sitting's writer"
    );
    metrics::describe_counter!("dienhong_log_events_total", "Events appended to the logs");
    metrics::describe_gauge!("dienhong_media_legs", "Media connections open");
    metrics::describe_gauge!(
        "dienhong_media_forwarded_packets_per_second",
        "RTP packets the SFU forwards per second (smoothed)"
    );
    metrics::describe_gauge!(
        "dienhong_media_utilisation",
        "Busy time over wall time of the SFU's I/O thread, 0 to 1"
    );
    metrics::describe_gauge!(
        "dienhong_media_capacity_receivers",
        "Ordinary receivers the SFU estimates it has room for"
    );
    metrics::describe_counter!(
        "dienhong_media_received_packets_total",
        "RTP packets received from publishers"
    );
    metrics::describe_counter!(
        "dienhong_media_forwarded_packets_total",
        "RTP packets written to receivers"
    );
    metrics::describe_counter!(
        "dienhong_media_forwarded_bytes_total",
        "Bytes of RTP (header and payload, before SRTP) written to receivers"
    );
    metrics::describe_gauge!(
        "dienhong_media_video_forwards",
        "Video tracks forwarded to receivers now, by the simulcast layer chosen"
    );
    metrics::describe_counter!(
        "dienhong_webhook_attempts_total",
        "Webhook delivery attempts, by endpoint and outcome"
    );
}

/// One WebSocket connection opened (`+1`) or closed (`-1`).
pub fn connection(delta: f64) {
    metrics::gauge!("dienhong_ws_connections").increment(delta);
}

/// The handles recorded on every message, looked up once (a lookup per delivery would cost
/// the fan-out to 10,000 connections milliseconds).
struct Hot {
    received: metrics::Counter,
    sent: metrics::Counter,
}

static HOT: OnceLock<Hot> = OnceLock::new();

fn hot() -> &'static Hot {
    HOT.get_or_init(|| {
        // Bound to the recorder installed by then (the server installs it first thing).
        handle();
        Hot {
            received: metrics::counter!("dienhong_ws_messages_received_total"),
            sent: metrics::counter!("dienhong_ws_messages_sent_total"),
        }
    })
}

/// A client's text message received.
pub fn message_received() {
    hot().received.increment(1);
}

/// A message sent to a client.
pub fn message_sent() {
    hot().sent.increment(1);
}

/// A webhook delivery attempt and whether the receiver took it.
pub fn webhook(endpoint: &str, delivered: bool) {
    metrics::counter!(
        "dienhong_webhook_attempts_total",
        "endpoint" => endpoint.to_owned(),
        "outcome" => if delivered { "delivered" } else { "failed" }
    )
    .increment(1);
}

/// A command and how it ended.
pub fn command(name: &'static str, outcome: &'static str) {
    metrics::counter!("dienhong_commands_total", "command" => name, "outcome" => outcome)
        .increment(1);
}

/// `dienhong_stage_seconds` in Prometheus' text format, from the counts [`crate::stages`]
/// keeps anyway (nothing more is recorded per delivery). A stage bucket counts under the
/// first bound at or above its upper end.
pub fn render_stages() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# HELP dienhong_stage_seconds Time per stage of a command or an event (commit: the log's append; fanout: commit to the write to a connection)\n# TYPE dienhong_stage_seconds histogram\n",
    );
    for stage in crate::stages::snapshot() {
        let mut sum = 0.0;
        let mut under = [0u64; SECONDS.len()];
        for (b, n) in &stage.buckets {
            let upper = crate::stages::bucket_floor_us(b + 1) / 1e6;
            sum += crate::stages::bucket_floor_us(*b) / 1e6 * *n as f64;
            if let Some(i) = SECONDS.iter().position(|le| upper <= *le) {
                under[i] += n;
            }
        }
        let mut cumulative = 0;
        for (le, n) in SECONDS.iter().zip(under) {
            cumulative += n;
            let _ = writeln!(
                out,
                "dienhong_stage_seconds_bucket{{stage=\"{}\",le=\"{le}\"}} {cumulative}",
                stage.stage
            );
        }
        let _ = writeln!(
            out,
            "dienhong_stage_seconds_bucket{{stage=\"{0}\",le=\"+Inf\"}} {1}\ndienhong_stage_seconds_sum{{stage=\"{0}\"}} {sum}\ndienhong_stage_seconds_count{{stage=\"{0}\"}} {1}",
            stage.stage, stage.count
        );
    }
    out
}

/// One group commit of `commands` commands making `events` events.
pub fn commit(commands: usize, events: usize) {
    metrics::histogram!("dienhong_commit_commands").record(commands as f64);
    metrics::counter!("dienhong_log_events_total").increment(events as u64);
}

/// The SFU's state, set before a scrape.
pub fn media(
    legs: usize,
    load: &dienhong_sfu::load::LoadReport,
    threads: &[dienhong_sfu::load::LoadReport],
    stats: Option<&dienhong_sfu::driver::Stats>,
) {
    metrics::gauge!("dienhong_media_legs").set(legs as f64);
    if let Some(s) = stats {
        metrics::counter!("dienhong_media_received_packets_total").absolute(s.received_total);
        metrics::counter!("dienhong_media_forwarded_packets_total").absolute(s.forwarded_total);
        metrics::counter!("dienhong_media_forwarded_bytes_total").absolute(s.forwarded_bytes_total);
        metrics::counter!("dienhong_media_relay_dropped_packets_total")
            .absolute(s.relay_dropped_total);
        for (layer, name) in [
            (dienhong_sfu::routing::Layer::Low, "low"),
            (dienhong_sfu::routing::Layer::Mid, "mid"),
            (dienhong_sfu::routing::Layer::High, "high"),
        ] {
            let n = s.layers.get(&layer).copied().unwrap_or(0);
            metrics::gauge!("dienhong_media_video_forwards", "layer" => name).set(n as f64);
        }
    }
    metrics::gauge!("dienhong_media_forwarded_packets_per_second").set(load.forwarded_pps);
    metrics::gauge!("dienhong_media_utilisation").set(load.utilisation);
    for (i, t) in threads.iter().enumerate() {
        metrics::gauge!("dienhong_media_thread_utilisation", "thread" => i.to_string())
            .set(t.utilisation);
    }
    if let Some(n) = load.capacity_receivers {
        metrics::gauge!("dienhong_media_capacity_receivers").set(n as f64);
    }
}
