//! `dienhong-media-load`: the command line of the independent media load generator (see
//! the library's documentation). Prints the report as a table, then as one JSON line.

use anyhow::Context;
use clap::Parser;
use dienhong_media_load::{cpu, publisher, report, run};
use std::net::IpAddr;
use std::time::Duration;

/// Publishes synthetic audio and video over WHIP as the chamber (and, with `--floor`, as a
/// deputy given the floor) and pulls the programme with N WHEP receivers, each on its own
/// socket; reports throughput, loss, latency, set-up time and what it cost the server.
#[derive(Debug, Parser)]
#[command(name = "dienhong-media-load", version)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Receivers (WHEP sessions).
    #[arg(long, short = 'n', default_value_t = 32)]
    receivers: usize,
    /// The account that publishes (the chamber's programme account).
    #[arg(long, default_value = "CHAMBER")]
    publisher: String,
    /// A deputy to give the floor to before the receivers join (the chair opens the sitting
    /// if needed, sets the current item and gives the floor, over the REST commands); the
    /// deputy publishes too, and the receivers get the speaker. Left out of the receivers'
    /// accounts.
    #[arg(long)]
    floor: Option<String>,
    /// The chair's account, which gives the floor.
    #[arg(long, default_value = "CHAIR")]
    chair: String,
    /// The sitting in which the floor is given.
    #[arg(long, default_value = "demo-2026-11")]
    sitting: String,
    /// Receiver accounts, comma-separated (default: DB001, DB002, … as many as needed).
    #[arg(long, value_delimiter = ',')]
    accounts: Vec<String>,
    /// WHEP sessions per receiver account (the server's media.max_legs_per_actor must
    /// allow it).
    #[arg(long, default_value_t = 250)]
    legs_per_account: usize,
    #[arg(long, default_value = "demo")]
    password: String,
    /// Receiver I/O threads (default: the CPUs the generator may use).
    #[arg(long)]
    threads: Option<usize>,
    /// Parallel WHEP requests.
    #[arg(long, default_value_t = 16)]
    signal_threads: usize,
    /// Pin the generator to these CPUs (comma-separated).
    #[arg(long, value_delimiter = ',')]
    cpu: Vec<usize>,
    /// The server's process id, for its CPU time per forwarded packet.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds to wait for the receivers' first media after the last WHEP answer.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,
    /// Seconds during which receivers refused with 503 ask again, each time after the
    /// server's Retry-After, as a client should (0: a refusal is final).
    #[arg(long, default_value_t = 0.0)]
    retry_refused: f64,
    /// Seconds of warm-up before the window.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Seconds of the measuring window.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Opus payload bytes (50 packets/s).
    #[arg(long, default_value_t = 120)]
    audio_size: usize,
    /// VP8 pictures per second.
    #[arg(long, default_value_t = 25)]
    video_fps: u32,
    /// VP8 packets per picture (default 9: 225 packets/s, 275 in all with audio).
    #[arg(long, default_value_t = 9)]
    video_packets: u32,
    /// VP8 payload bytes per packet.
    #[arg(long, default_value_t = 1100)]
    video_size: usize,
    /// Seconds between keyframes.
    #[arg(long, default_value_t = 2.0)]
    keyframe_every: f64,
    /// Local address of the generator's sockets.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// A name for this run in the report.
    #[arg(long, default_value = "server")]
    label: String,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if !a.cpu.is_empty() {
        cpu::pin(&a.cpu).with_context(|| format!("pinning to CPUs {:?}", a.cpu))?;
    }
    let accounts = if a.accounts.is_empty() {
        run::default_accounts(a.receivers, a.legs_per_account, a.floor.as_deref())
    } else {
        a.accounts.clone()
    };
    let options = run::Options {
        url: a.url.clone(),
        label: a.label.clone(),
        publisher: a.publisher.clone(),
        floor: a.floor.clone(),
        chair: a.chair.clone(),
        sitting: a.sitting.clone(),
        password: a.password.clone(),
        receivers: a.receivers,
        accounts,
        legs_per_account: a.legs_per_account,
        io_threads: a.threads.unwrap_or_else(cpu::allowed_cpus).max(1),
        signal_threads: a.signal_threads,
        connect_timeout: secs(a.connect_timeout),
        retry_refused: secs(a.retry_refused),
        warmup: secs(a.warmup),
        window: secs(a.seconds),
        media: publisher::Config {
            audio_size: a.audio_size,
            video_fps: a.video_fps.max(1),
            video_packets: a.video_packets.max(1),
            video_size: a.video_size,
            keyframe_every: secs(a.keyframe_every),
        },
        server_pid: a.server_pid,
        bind: a.bind,
        http_timeout: Duration::from_secs(30),
    };
    match run::run(&options) {
        Ok(r) => {
            println!("{}", report::table(&r));
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Err(e) => {
            let line = serde_json::json!({
                "label": a.label,
                "asked": a.receivers,
                "error": format!("{e:#}"),
            });
            println!("{line}");
            Err(e)
        }
    }
}
