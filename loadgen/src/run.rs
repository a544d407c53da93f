//! The generator's sequence: log in, publish as the chamber (and, if asked, give a deputy
//! the floor and publish as them too), open the WHEP receivers in parallel, wait for them
//! to connect, warm up, measure a window (the server's CPU, the kernel's UDP counters and the generator's own CPU read at both ends), end the sessions
//! and build the [`Report`].

use crate::cpu;
use crate::floor;
use crate::payload::Source;
use crate::peer;
use crate::publisher::{self, Publisher};
use crate::receivers::{self, AUDIO, DONE, MEASURE, NewReceiver, Shared, VIDEO};
use crate::report::{PerKind, PublisherState, Report, Spread};
use crate::signal::{self, Posted, Server};
use crate::stats::{self, Histogram};
use anyhow::{Context, bail};
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::media::{Direction, MediaKind};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    pub label: String,
    pub publisher: String,
    /// A deputy to give the floor to, who then publishes too: the receivers get the
    /// speaker's sound and picture, the chamber keeps publishing.
    pub floor: Option<String>,
    /// The chair's account, which gives the floor.
    pub chair: String,
    /// The sitting the floor is given in.
    pub sitting: String,
    pub password: String,
    pub receivers: usize,
    /// Accounts the receivers log in as, in turn, `legs_per_account` each.
    pub accounts: Vec<String>,
    pub legs_per_account: usize,
    pub io_threads: usize,
    pub signal_threads: usize,
    pub connect_timeout: Duration,
    /// How long refused receivers ask again (after Retry-After); zero: never.
    pub retry_refused: Duration,
    pub warmup: Duration,
    pub window: Duration,
    pub media: publisher::Config,
    pub server_pid: Option<u32>,
    pub bind: IpAddr,
    pub http_timeout: Duration,
}

/// What became of one WHEP request.
#[derive(Debug, Clone)]
enum Outcome {
    Created { location: String, account: usize },
    Refused(Option<String>, String),
    Failed(String),
}

/// The accounts `DB001`, `DB002`, … enough for `receivers` at `per_account` each, leaving
/// out `except` (the floor holder's).
pub fn default_accounts(receivers: usize, per_account: usize, except: Option<&str>) -> Vec<String> {
    let n = receivers.div_ceil(per_account.max(1)).max(1);
    (1..)
        .map(|i| format!("DB{i:03}"))
        .filter(|a| Some(a.as_str()) != except)
        .take(n)
        .collect()
}

fn login_all(server: &Server, codes: &[String], password: &str) -> anyhow::Result<Vec<String>> {
    let handles: Vec<_> = codes
        .iter()
        .map(|code| {
            let (server, code, password) = (server.clone(), code.clone(), password.to_owned());
            std::thread::spawn(move || server.login(&code, &password))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("login thread panicked"))?
        })
        .collect()
}

fn set_rcvbuf(socket: &UdpSocket, bytes: i32) {
    // SAFETY: setsockopt reads an int of the given size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        );
    }
}

/// One WHEP receiver: a socket, a str0m offer (recvonly audio and video), the POST.
fn open_receiver(
    server: &Server,
    token: &str,
    bind: IpAddr,
    index: usize,
) -> anyhow::Result<(Outcome, Option<NewReceiver>)> {
    let socket = UdpSocket::bind(SocketAddr::new(bind, 0)).context("receiver socket")?;
    socket.set_nonblocking(true)?;
    set_rcvbuf(&socket, 1 << 20);
    let local = socket.local_addr()?;
    let mut rtc = peer::new_rtc(local, Instant::now())?;
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().context("no offer")?;
    let offer = offer.to_sdp_string();
    let posted_at = Instant::now();
    match server.offer("/whep", token, &offer) {
        Posted::Created { answer, location } => {
            let parsed = str0m::change::SdpAnswer::from_sdp_string(&answer)
                .context("the WHEP answer does not parse")?;
            rtc.sdp_api()
                .accept_answer(pending, parsed)
                .context("the WHEP answer is not acceptable")?;
            let audio_pt = signal::payload_type(&answer, "audio", "opus/48000").unwrap_or(111);
            let video_pt = signal::payload_type(&answer, "video", "VP8/90000").unwrap_or(96);
            Ok((
                Outcome::Created {
                    location,
                    account: 0,
                },
                Some(NewReceiver {
                    index,
                    rtc,
                    socket,
                    posted_at,
                    audio_pt,
                    video_pt,
                }),
            ))
        }
        Posted::Refused {
            retry_after,
            reason,
        } => Ok((Outcome::Refused(retry_after, reason), None)),
        Posted::Failed { status, reason } => {
            Ok((Outcome::Failed(format!("HTTP {status}: {reason}")), None))
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Marks {
    at: Instant,
    server_cpu: Option<Duration>,
    own_cpu: Option<Duration>,
    machine: Option<Duration>,
    udp: Option<stats::UdpCounters>,
    drops: (u64, u64),
    audio_sent: u64,
    video_sent: u64,
    /// Per publisher, by [`Source::index`].
    late: [u64; 2],
}

/// The publishers by [`Source::index`]: the chamber, then the floor holder if any. The
/// programme's publisher is the last (the speaker's while someone holds the floor).
fn marks(o: &Options, publishers: &[&Publisher], ports: &HashSet<u16>) -> Marks {
    use std::sync::atomic::Ordering::Relaxed;
    let p = publishers[publishers.len() - 1];
    let mut late = [0; 2];
    for (l, p) in late.iter_mut().zip(publishers) {
        *l = p.counters.late.load(Relaxed);
    }
    Marks {
        at: Instant::now(),
        server_cpu: o
            .server_pid
            .and_then(|pid| cpu::process_cpu(&pid.to_string())),
        own_cpu: cpu::process_cpu("self"),
        machine: stats::machine_busy(),
        udp: stats::udp_counters(),
        drops: stats::socket_drops(ports),
        audio_sent: p.counters.audio_sent.load(Relaxed),
        video_sent: p.counters.video_sent.load(Relaxed),
        late,
    }
}

/// Waits up to 10 s for a publisher to connect; if it does not, ends its session.
fn wait_connected(
    server: &Server,
    publisher: Publisher,
    token: &str,
    who: &str,
) -> anyhow::Result<Publisher> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !publisher.counters.connected.load(Ordering::Relaxed) {
        if Instant::now() > deadline {
            let status = server.delete(&publisher.location, token);
            publisher.stop();
            bail!("{who} did not connect within 10 s (DELETE answered {status})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{who} connected");
    Ok(publisher)
}

/// A publisher's state at the end of the window; ends its session and stops it.
fn finish(
    server: &Server,
    p: Publisher,
    token: &str,
    late_in_window: u64,
) -> (PublisherState, u64) {
    let c = &p.counters;
    let connected_at_end = c.connected.load(Ordering::Relaxed);
    let dead = c.dead.load(Ordering::Relaxed);
    let whip_delete_status = server.delete(&p.location, token);
    let state = PublisherState {
        connected_at_end,
        ice_disconnects: c.ice_disconnects.load(Ordering::Relaxed),
        lost_at_s: match c.lost_at_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms as f64 / 1e3),
        },
        dead,
        keyframe_requests: c.keyframe_requests.load(Ordering::Relaxed),
        late_in_window,
        whip_delete_status,
    };
    let refused = c.refused_sends.load(Ordering::Relaxed);
    p.stop();
    (state, refused)
}

/// Runs the generator once.
pub fn run(o: &Options) -> anyhow::Result<Report> {
    let server = Server::from_url(&o.url, o.http_timeout)?;
    let started = Instant::now();
    let pub_token = server
        .login(&o.publisher, &o.password)
        .context("publisher login")?;
    let tokens = login_all(&server, &o.accounts, &o.password).context("receiver logins")?;
    if tokens.is_empty() {
        bail!("no receiver accounts");
    }
    eprintln!(
        "logged in {} accounts in {:.1} s",
        tokens.len() + 1,
        started.elapsed().as_secs_f64()
    );

    let publisher = Publisher::start(
        &server,
        &pub_token,
        o.bind,
        o.media.clone(),
        Source::Chamber,
    )
    .context("publishing as the chamber")?;
    let publisher = wait_connected(&server, publisher, &pub_token, "the chamber's publisher")?;
    let floor = match &o.floor {
        Some(deputy) => {
            let token = floor::give(&server, &o.sitting, &o.chair, deputy, &o.password)
                .context("giving the floor")?;
            let p = Publisher::start(&server, &token, o.bind, o.media.clone(), Source::Floor)
                .with_context(|| format!("publishing as {deputy}, holding the floor"));
            let p = match p {
                Ok(p) => wait_connected(&server, p, &token, "the floor holder's publisher"),
                Err(e) => Err(e),
            };
            match p {
                Ok(p) => Some((p, token)),
                Err(e) => {
                    let _ = finish(&server, publisher, &pub_token, 0);
                    return Err(e);
                }
            }
        }
        None => None,
    };
    let mut publishers = vec![&publisher];
    if let Some((p, _)) = &floor {
        publishers.push(p);
    }

    let shared = Arc::new(Shared::default());
    let (senders, handles) = receivers::spawn(o.io_threads, shared.clone())?;
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; o.receivers]);
    let ports: Mutex<HashSet<u16>> = Mutex::new(HashSet::new());
    let signalling = Instant::now();
    // The receivers to ask for: all, then, round after round, those refused with 503, after
    // the longest Retry-After seen, while `retry_refused` lasts.
    let mut todo: Vec<usize> = (0..o.receivers).collect();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..o.signal_threads.max(1) {
                let senders = senders.clone();
                let (server, tokens, outcomes, ports, next, todo) =
                    (&server, &tokens, &outcomes, &ports, &next, &todo);
                scope.spawn(move || {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = todo.get(k) else {
                            break;
                        };
                        let account = (i / o.legs_per_account.max(1)) % tokens.len();
                        let outcome = match open_receiver(server, &tokens[account], o.bind, i) {
                            Ok((Outcome::Created { location, .. }, Some(r))) => {
                                if let Ok(a) = r.socket.local_addr()
                                    && let Ok(mut p) = ports.lock()
                                {
                                    p.insert(a.port());
                                }
                                let _ = senders[i % senders.len()].send(r);
                                Outcome::Created { location, account }
                            }
                            Ok((outcome, _)) => outcome,
                            Err(e) => Outcome::Failed(format!("{e:#}")),
                        };
                        if let Ok(mut all) = outcomes.lock() {
                            all[i] = Some(outcome);
                        }
                    }
                });
            }
        });
        let (refused, wait) = match outcomes.lock() {
            Ok(all) => {
                let refused: Vec<usize> = todo
                    .iter()
                    .copied()
                    .filter(|i| matches!(all[*i], Some(Outcome::Refused(..))))
                    .collect();
                let wait = refused
                    .iter()
                    .filter_map(|i| match &all[*i] {
                        Some(Outcome::Refused(Some(after), _)) => after.trim().parse::<u64>().ok(),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(5);
                (refused, Duration::from_secs(wait))
            }
            Err(_) => (Vec::new(), Duration::ZERO),
        };
        if refused.is_empty() || signalling.elapsed() + wait > o.retry_refused {
            break;
        }
        eprintln!(
            "round {rounds}: {} refused (503); asking again in {} s",
            refused.len(),
            wait.as_secs()
        );
        std::thread::sleep(wait);
        todo = refused;
    }
    drop(senders);
    let outcomes: Vec<Outcome> = outcomes
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Failed("not attempted".into())))
        .collect();
    let ports = ports.into_inner().unwrap_or_default();
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Created { .. }))
        .count();
    eprintln!(
        "{} WHEP requests in {:.1} s: {created} created",
        o.receivers,
        signalling.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + o.connect_timeout;
    while shared.first_media.load(Ordering::Relaxed) < created && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "{} receivers got media after {:.1} s; warming up {:.0} s",
        shared.first_media.load(Ordering::Relaxed),
        signalling.elapsed().as_secs_f64(),
        o.warmup.as_secs_f64()
    );
    std::thread::sleep(o.warmup);

    let m0 = marks(o, &publishers, &ports);
    shared.phase.store(MEASURE, Ordering::Relaxed);
    std::thread::sleep(o.window);
    shared.phase.store(DONE, Ordering::Relaxed);
    let m1 = marks(o, &publishers, &ports);
    std::thread::sleep(Duration::from_millis(100));

    let late = |i: usize| m1.late[i].saturating_sub(m0.late[i]);
    let (floor_state, mut pub_refused) = match floor {
        Some((p, token)) => {
            let (state, refused) = finish(&server, p, &token, late(Source::Floor.index()));
            (Some(state), refused)
        }
        None => (None, 0),
    };
    let chamber_late = late(Source::Chamber.index());
    let (pstate, refused) = finish(&server, publisher, &pub_token, chamber_late);
    pub_refused += refused;
    shared.stop.store(true, Ordering::Relaxed);
    let mut thread_reports = Vec::new();
    for h in handles {
        if let Ok(r) = h.join() {
            thread_reports.push(r);
        }
    }
    // End the receivers' sessions (the server would otherwise wait for consent to expire).
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..o.signal_threads.max(1) {
            let (server, tokens, outcomes, next) = (&server, &tokens, &outcomes, &next);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(outcome) = outcomes.get(i) else {
                        break;
                    };
                    if let Outcome::Created { location, account } = outcome {
                        server.delete(location, &tokens[*account]);
                    }
                }
            });
        }
    });

    Ok(build(
        o,
        &outcomes,
        thread_reports,
        (m0, m1),
        (pstate, floor_state),
        pub_refused,
    ))
}

fn build(
    o: &Options,
    outcomes: &[Outcome],
    threads: Vec<receivers::ThreadReport>,
    (m0, m1): (Marks, Marks),
    (publisher, floor): (PublisherState, Option<PublisherState>),
    pub_refused: u64,
) -> Report {
    let window = m1.at.duration_since(m0.at).as_secs_f64().max(1e-3);
    let mut r = Report {
        label: o.label.clone(),
        asked: o.receivers,
        window_s: window,
        publisher,
        floor,
        ..Default::default()
    };
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut retry: HashSet<String> = HashSet::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Created { .. } => r.created += 1,
            Outcome::Refused(after, reason) => {
                r.refused += 1;
                if let Some(a) = after {
                    retry.insert(a.clone());
                }
                *reasons.entry(format!("refused: {reason}")).or_default() += 1;
            }
            Outcome::Failed(reason) => {
                r.failed += 1;
                *reasons.entry(format!("failed: {reason}")).or_default() += 1;
            }
        }
    }
    r.retry_after = retry.into_iter().collect();
    r.retry_after.sort();

    let mut latency = [Histogram::default(), Histogram::default()];
    let mut setups = Vec::new();
    let mut received = [0u64; 2];
    let mut seq_received = [0u64; 2];
    let mut seq_expected = [0u64; 2];
    let mut refused_sends = pub_refused;
    let mut by_source = [0u64; 2];
    for t in &threads {
        latency[AUDIO].merge(&t.latency[AUDIO]);
        latency[VIDEO].merge(&t.latency[VIDEO]);
        r.unknown_packets += t.unknown;
        for rx in &t.receivers {
            refused_sends += rx.refused_sends;
            by_source[0] += rx.by_source[0];
            by_source[1] += rx.by_source[1];
            r.repeated_packets += rx.repeated;
            r.receiver_ice_disconnects += rx.ice_disconnects;
            r.receivers_dead += usize::from(rx.dead);
            match rx.setup_ms {
                Some(ms) => {
                    r.connected += 1;
                    setups.push(ms);
                }
                None => {
                    r.never_connected += 1;
                    let reached = if rx.dtls_connected {
                        "DTLS up but no media"
                    } else if rx.ice_connected {
                        "ICE connected, DTLS never"
                    } else {
                        "ICE never connected"
                    };
                    *reasons
                        .entry(format!("never connected: {reached}"))
                        .or_default() += 1;
                }
            }
            for k in [AUDIO, VIDEO] {
                let (got, expected) = rx.window[k];
                received[k] += got;
                if got > 0 {
                    seq_received[k] += got.min(expected);
                    seq_expected[k] += expected;
                } else if rx.setup_ms.is_some() {
                    if k == AUDIO {
                        r.starved.audio += 1;
                    } else {
                        r.starved.video += 1;
                    }
                }
            }
        }
    }
    r.reasons = reasons;
    setups.sort_by(f64::total_cmp);
    r.setup_ms = Spread {
        p50: stats::quantile(&setups, 0.5),
        p99: stats::quantile(&setups, 0.99),
        max: setups.last().copied(),
    };
    let spread = |h: &Histogram| Spread {
        p50: h.quantile_ms(0.5),
        p99: h.quantile_ms(0.99),
        max: h.max_ms(),
    };
    r.latency_ms = PerKind {
        audio: spread(&latency[AUDIO]),
        video: spread(&latency[VIDEO]),
    };
    r.received_pps_by_kind = PerKind {
        audio: received[AUDIO] as f64 / window,
        video: received[VIDEO] as f64 / window,
    };
    r.received_pps = (received[AUDIO] + received[VIDEO]) as f64 / window;
    if r.floor.is_some() {
        let all = by_source[0] + by_source[1];
        r.from_floor_pct = (all > 0).then(|| by_source[1] as f64 * 100.0 / all as f64);
    }
    let sent = [m1.audio_sent - m0.audio_sent, m1.video_sent - m0.video_sent];
    r.published_pps = PerKind {
        audio: sent[AUDIO] as f64 / window,
        video: sent[VIDEO] as f64 / window,
    };
    let pct = |num: u64, den: u64| (den > 0).then(|| num as f64 * 100.0 / den as f64);
    let loss = |k: usize| pct(seq_expected[k] - seq_received[k], seq_expected[k]);
    r.loss_pct = PerKind {
        audio: loss(AUDIO),
        video: loss(VIDEO),
    };
    let connected = r.connected as u64;
    r.delivery_pct = PerKind {
        audio: pct(received[AUDIO], sent[AUDIO] * connected),
        video: pct(received[VIDEO], sent[VIDEO] * connected),
    };
    let total = received[AUDIO] + received[VIDEO];
    if let (Some(a), Some(b)) = (m0.server_cpu, m1.server_cpu) {
        let used = b.saturating_sub(a);
        r.server.cpu_pct = Some(used.as_secs_f64() * 100.0 / window);
        r.server.us_per_packet = (total > 0).then(|| used.as_secs_f64() * 1e6 / total as f64);
    }
    r.server.pid = o.server_pid;
    if o.server_pid.is_some() && m1.server_cpu.is_none() {
        r.notes
            .push("the server process was gone at the end of the window".into());
    }
    if let (Some(a), Some(b)) = (m0.udp, m1.udp) {
        r.udp.in_errors = b.in_errors.saturating_sub(a.in_errors);
        r.udp.rcvbuf_errors = b.rcvbuf_errors.saturating_sub(a.rcvbuf_errors);
        r.udp.sndbuf_errors = b.sndbuf_errors.saturating_sub(a.sndbuf_errors);
    }
    if let (Some(a), Some(b), Some(g0), Some(g1)) = (m0.machine, m1.machine, m0.own_cpu, m1.own_cpu)
    {
        let server = match (m0.server_cpu, m1.server_cpu) {
            (Some(s0), Some(s1)) => s1.saturating_sub(s0),
            _ => Duration::ZERO,
        };
        let others = b
            .saturating_sub(a)
            .saturating_sub(g1.saturating_sub(g0))
            .saturating_sub(server);
        r.others_cores = Some(others.as_secs_f64() / window);
    }
    r.load_average = stats::load_average();
    r.udp.at_generator = m1.drops.0.saturating_sub(m0.drops.0);
    r.udp.elsewhere = m1.drops.1.saturating_sub(m0.drops.1);
    let cpus = cpu::allowed_cpus();
    r.generator.cpus = cpus;
    r.generator.io_threads = o.io_threads;
    r.generator.refused_sends = refused_sends;
    if let (Some(a), Some(b)) = (m0.own_cpu, m1.own_cpu) {
        r.generator.cpu_pct = b.saturating_sub(a).as_secs_f64() * 100.0 / window / cpus as f64;
    }
    let publishers_late =
        r.publisher.late_in_window + r.floor.as_ref().map_or(0, |f| f.late_in_window);
    r.generator.saturated =
        r.generator.cpu_pct >= 90.0 || r.udp.at_generator > 0 || publishers_late > 0;
    if r.generator.saturated {
        r.notes.push(format!(
            "the generator is saturated (CPU {:.0} %, {} drops at its sockets, publishers late {} times): loss and throughput may be its own",
            r.generator.cpu_pct, r.udp.at_generator, publishers_late
        ));
    }
    if !r.publisher.connected_at_end {
        r.notes
            .push("the chamber's publisher was not connected at the end".into());
    }
    if r.publisher.whip_delete_status != 200 {
        r.notes.push(format!(
            "DELETE of the publisher's WHIP session answered {}",
            r.publisher.whip_delete_status
        ));
    }
    if let Some(f) = &r.floor {
        if !f.connected_at_end {
            r.notes
                .push("the floor holder's publisher was not connected at the end".into());
        }
        if f.whip_delete_status != 200 {
            r.notes.push(format!(
                "DELETE of the floor holder's WHIP session answered {}",
                f.whip_delete_status
            ));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::default_accounts;

    #[test]
    fn receivers_accounts_leave_out_the_floor_holder() {
        assert_eq!(default_accounts(5, 2, None), ["DB001", "DB002", "DB003"]);
        assert_eq!(
            default_accounts(5, 2, Some("DB002")),
            ["DB001", "DB003", "DB004"]
        );
        assert_eq!(default_accounts(0, 2, Some("DB500")), ["DB001"]);
    }
}
