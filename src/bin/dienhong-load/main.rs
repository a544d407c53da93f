//! `dienhong-load`: drives a real server over real WebSockets and checks that nothing is
//! lost, duplicated or reordered.
//!
//! Default (`sitting` mode): 500 deputies + 63 delegation sites + a chair + a clerk log in,
//! subscribe, check in, file 50 requests to speak; the chair grants and revokes the floor;
//! a named vote of 500 ballots with 5% changed, a secret vote, a document push; then every
//! client drops its connection at once and resumes. Every client must see every event
//! exactly once and in order. Prints p50/p99/max of command acknowledgement and of event
//! fan-out (from the event's commit time to its arrival), errors, lost and duplicated
//! events; exits 1 if any event was lost or duplicated or a command failed unexpectedly.
//!
//! `--connections N` (`fanout` mode): N connections follow the sitting, the chair makes
//! `--events` changes, and the tool reports how long each event took to reach all of them,
//! and the server's memory per connection when `--server-pid` is given.
//!
//! `--crowd` (`crowd` mode): the deputies a sitting run from the browsers does not drive
//! (all but `--skip`) follow it, check in once it opens and vote in each vote; prints one
//! JSON line with what they did and the acknowledgement times.
//!
//! Run against a freshly seeded demo server: `dienhong demo --database sqlite:/tmp/load.db`.

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

mod crowd;

#[derive(Parser, Clone)]
#[command(about = "Load and correctness tool for a dienhong server")]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Sitting to drive.
    #[arg(long, default_value = "demo-2026-11")]
    sitting: String,
    /// Password of the accounts (the demo password).
    #[arg(long, default_value = "demo")]
    password: String,
    /// Fan-out mode: this many connections follow the sitting.
    #[arg(long)]
    connections: Option<usize>,
    /// Fan-out mode: events to measure.
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Fan-out mode: the server's pid, to report its memory per connection.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Crowd mode: every deputy of the roster but those in `--skip` follows the sitting
    /// someone else runs (from the browser), checks in once it is open, and votes in every
    /// vote that opens.
    #[arg(long)]
    crowd: bool,
    /// Crowd mode: deputies the crowd leaves alone (comma-separated codes).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Crowd mode: stop after this many votes closed.
    #[arg(long, default_value_t = 1)]
    votes: usize,
    /// Crowd mode: stop after this many seconds in any case.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// The protocol version the clients speak: 2 gets each commit's events in one message,
    /// 1 one message per event (to measure the difference).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=2))]
    protocol: u32,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What the tool reads of a server message: only what it measures. The events' bodies and
/// the snapshot's state are skipped, not built, so that the tool's own parsing (on the
/// same cores as the server) takes as little as it can from what is measured.
#[derive(serde::Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    seq: Option<u64>,
    at: Option<i64>,
    #[serde(borrow)]
    epoch: Option<Cow<'a, str>>,
    #[serde(borrow)]
    command_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    events: Option<Vec<Entry<'a>>>,
    #[serde(borrow)]
    event: Option<EventHead<'a>>,
}

/// One event: its number, its commit time and its type.
#[derive(serde::Deserialize)]
struct Entry<'a> {
    seq: u64,
    at: i64,
    #[serde(borrow)]
    event: EventHead<'a>,
}

#[derive(serde::Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    vote: Option<u64>,
}

/// What one client connection saw.
#[derive(Default)]
struct Seen {
    /// Sequence number of the snapshot (or resume point) the stream started from.
    start: Option<u64>,
    /// Event sequence numbers in arrival order.
    seqs: Vec<u64>,
    /// Fan-out latencies in ms (arrival − commit time).
    fanout_ms: Vec<i64>,
    /// Commands waiting for their ack or error, by command id: each is told the reply and
    /// when it arrived (taken as it is read, not when its sender next looks).
    replies: HashMap<String, oneshot::Sender<(Value, Instant)>>,
    epoch: String,
    /// When each event arrived, kept only where asked for (fan-out mode).
    arrivals: Option<Vec<(u64, Instant)>>,
    /// The last vote opened.
    vote_opened: Option<u64>,
}

struct Client {
    code: String,
    token: String,
    seen: Arc<Mutex<Seen>>,
    tx: Option<mpsc::UnboundedSender<Message>>,
    task: Option<tokio::task::JoinHandle<()>>,
    n: AtomicU64,
}

fn ws_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = 8 * 1024;
    c.write_buffer_size = 0;
    c
}

/// The WebSocket request of a native client: the token goes in the `Authorization` header,
/// never in the URL.
fn ws_request(
    args: &Args,
    token: &str,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let ws_url = args.url.replacen("http", "ws", 1);
    let mut req = format!("{ws_url}/ws").into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

async fn login(http: &reqwest::Client, args: &Args, code: &str) -> Result<String> {
    let r: Value = http
        .post(format!("{}/api/login", args.url))
        .json(&json!({"code": code, "password": args.password}))
        .send()
        .await?
        .json()
        .await?;
    r["token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("login of {code} failed: {r}"))
}

impl Client {
    /// Connects and subscribes (fresh, or resuming from what was seen).
    async fn connect(&mut self, args: &Args, resume: bool) -> Result<()> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(
            ws_request(args, &self.token)?,
            Some(ws_config()),
            // Without Nagle's algorithm, as a browser's WebSocket.
            true,
        )
        .await
        .with_context(|| format!("connect {}", self.code))?;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let mut sub = json!({"type": "subscribe", "v": args.protocol, "sitting": args.sitting});
        {
            let seen = self.seen.lock().await;
            if resume {
                sub["resume_from"] = json!(seen.seqs.last().copied().or(seen.start).unwrap_or(0));
                sub["epoch"] = json!(seen.epoch);
            }
        }
        sink.send(Message::text(sub.to_string())).await?;
        let seen = self.seen.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = rx.recv() => match out {
                        Some(m) => { if sink.send(m).await.is_err() { break; } }
                        None => { let _ = sink.close().await; break; }
                    },
                    msg = stream.next() => {
                        let Some(Ok(msg)) = msg else { break };
                        let Message::Text(t) = msg else { continue };
                        let (arrived, instant) = (now_ms(), Instant::now());
                        let Ok(m) = serde_json::from_str::<Incoming<'_>>(&t) else { continue };
                        let mut s = seen.lock().await;
                        match m.kind.as_ref() {
                            "snapshot" => {
                                s.start = m.seq;
                                s.epoch = m.epoch.map(|e| e.into_owned()).unwrap_or_default();
                                if !s.seqs.is_empty() {
                                    // A snapshot after a resume request means the resume was refused.
                                    s.seqs.push(u64::MAX);
                                }
                            }
                            "event" | "events" => {
                                // One event (version 1), or a commit's events (version 2).
                                let one = m.seq.zip(m.at).zip(m.event).map(|((seq, at), event)| Entry { seq, at, event });
                                for e in m.events.unwrap_or_default().into_iter().chain(one) {
                                    s.seqs.push(e.seq);
                                    if let Some(a) = s.arrivals.as_mut() { a.push((e.seq, instant)); }
                                    s.fanout_ms.push(arrived - e.at);
                                    if e.event.kind == "vote_opened" { s.vote_opened = e.event.vote; }
                                }
                            }
                            "ack" | "error" => {
                                if let (Some(waiting), Ok(v)) = (m.command_id.and_then(|id| s.replies.remove(id.as_ref())), serde_json::from_str::<Value>(&t)) {
                                    let _ = waiting.send((v, instant));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
        self.tx = Some(tx);
        self.task = Some(task);
        Ok(())
    }

    async fn disconnect(&mut self) {
        self.tx = None;
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// Sends a command; resolves with the reply and the time it took.
    async fn command(&self, command: Value) -> Result<(Value, Duration)> {
        let id = format!("{}-{}", self.code, self.n.fetch_add(1, Ordering::Relaxed));
        let msg = json!({"type": "command", "v": 1, "command_id": id, "command": command});
        let (tell, reply) = oneshot::channel();
        self.seen.lock().await.replies.insert(id.clone(), tell);
        let start = Instant::now();
        self.tx
            .as_ref()
            .context("not connected")?
            .send(Message::text(msg.to_string()))
            .context("connection closed")?;
        match tokio::time::timeout(Duration::from_secs(60), reply).await {
            Ok(Ok((r, arrived))) => Ok((r, arrived.saturating_duration_since(start))),
            Ok(Err(_)) => bail!("the connection closed before the reply to {id}"),
            Err(_) => {
                self.seen.lock().await.replies.remove(&id);
                bail!("no reply to {id} within 60 s")
            }
        }
    }

    async fn last_seq(&self) -> u64 {
        let s = self.seen.lock().await;
        s.seqs.last().copied().or(s.start).unwrap_or(0)
    }
}

#[derive(Default)]
struct Stats {
    ack: Vec<Duration>,
    /// Acks of the named vote's ballots (cast all at once).
    ballots: Vec<Duration>,
    errors: Vec<String>,
}

impl Stats {
    fn record(&mut self, what: &str, r: Result<(Value, Duration)>, expect_ok: bool) {
        match r {
            Ok((v, d)) => {
                self.ack.push(d);
                if what == "ballot" {
                    self.ballots.push(d);
                }
                if expect_ok && v["type"] != "ack" {
                    self.errors.push(format!("{what}: {v}"));
                }
            }
            Err(e) => self.errors.push(format!("{what}: {e:#}")),
        }
    }
}

fn pct<T: Copy + Ord>(v: &mut [T], p: f64) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[((v.len() as f64 - 1.0) * p).round() as usize])
}

async fn run_all<F, Fut>(clients: &[Arc<Client>], f: F) -> Vec<Result<(Value, Duration)>>
where
    F: Fn(Arc<Client>) -> Fut,
    Fut: std::future::Future<Output = Result<(Value, Duration)>> + Send + 'static,
{
    let tasks: Vec<_> = clients.iter().map(|c| tokio::spawn(f(c.clone()))).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(
            t.await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("task: {e}"))),
        );
    }
    out
}

async fn connect_all(args: &Args, codes: &[String]) -> Result<Vec<Client>> {
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for chunk in codes.chunks(16) {
        let logins = chunk.iter().map(|c| login(&http, args, c));
        for (code, token) in chunk
            .iter()
            .zip(futures_util::future::join_all(logins).await)
        {
            clients.push(Client {
                code: code.clone(),
                token: token?,
                seen: Arc::default(),
                tx: None,
                task: None,
                n: AtomicU64::new(0),
            });
        }
    }
    for c in clients.iter_mut() {
        c.connect(args, false).await?;
    }
    Ok(clients)
}

async fn wait_all_seen(clients: &[Arc<Client>], seq: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    for c in clients {
        while c.last_seq().await < seq {
            if Instant::now() > deadline {
                bail!("{} stopped at {} < {seq}", c.code, c.last_seq().await);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(())
}

async fn sitting_mode(args: &Args) -> Result<bool> {
    let mut codes: Vec<String> = vec!["CHAIR".into(), "CLERK1".into()];
    codes.push("VICE1".into());
    codes.extend((1..=498).map(|n| format!("DB{n:03}")));
    let sites = reqwest::Client::new()
        .get(format!("{}/api/sittings/{}", args.url, args.sitting))
        .send()
        .await?
        .json::<Value>()
        .await?;
    if sites["phase"] != "scheduled" {
        bail!(
            "the sitting must be freshly seeded (phase is {}): start the server on a new database",
            sites["phase"]
        );
    }
    let site_codes: Vec<String> = (1..=96).map(|n| format!("SITE{n:02}")).collect();
    let t0 = Instant::now();
    let http = reqwest::Client::new();
    let mut site_ok = Vec::new();
    for c in site_codes {
        if login(&http, args, &c).await.is_ok() {
            site_ok.push(c);
        }
    }
    codes.extend(site_ok);
    tracing::info!(clients = codes.len(), "logging in and connecting");
    let mut clients = connect_all(args, &codes).await?;
    tracing::info!(
        secs = t0.elapsed().as_secs_f64(),
        "all connected and subscribed"
    );
    let arcs: Vec<Arc<Client>> = clients.drain(..).map(Arc::new).collect();
    let chair = arcs[0].clone();
    let clerk = arcs[1].clone();
    let deputies: Vec<Arc<Client>> = arcs
        .iter()
        .filter(|c| c.code == "CHAIR" || c.code == "VICE1" || c.code.starts_with("DB"))
        .cloned()
        .collect();
    let mut st = Stats::default();

    st.record(
        "open",
        chair.command(json!({"command": "open_sitting"})).await,
        true,
    );
    for r in run_all(&deputies, |c| async move {
        let code = c.code.clone();
        c.command(json!({"command": "check_in", "deputy": code}))
            .await
    })
    .await
    {
        st.record("check_in", r, true);
    }
    st.record(
        "item",
        chair
            .command(json!({"command": "set_current_item", "item": 2}))
            .await,
        true,
    );
    for r in run_all(&deputies[..50], |c| async move {
        c.command(json!({"command": "request_floor", "kind": "discussion"}))
            .await
    })
    .await
    {
        st.record("request_floor", r, true);
    }
    for request in 1..=10 {
        st.record(
            "grant",
            chair
                .command(json!({"command": "grant_floor", "request": request}))
                .await,
            true,
        );
        st.record(
            "revoke",
            chair.command(json!({"command": "revoke_floor"})).await,
            true,
        );
    }
    st.record(
        "item3",
        chair
            .command(json!({"command": "set_current_item", "item": 3}))
            .await,
        true,
    );
    st.record(
        "open_vote",
        chair
            .command(json!({"command": "open_vote", "question": "Thông qua Nghị quyết", "method": "named", "rule": null, "window_secs": 600, "allow_change": true, "rerun_of": null}))
            .await,
        true,
    );
    let stages_before = stage_counts(args).await;
    for r in run_all(&deputies, |c| async move {
        c.command(json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}))
            .await
    })
    .await
    {
        st.record("ballot", r, true);
    }
    for r in run_all(&deputies[..25], |c| async move {
        c.command(json!({"command": "cast_ballot", "vote": 1, "choice": "no"}))
            .await
    })
    .await
    {
        st.record("changed ballot", r, true);
    }
    let close = chair
        .command(json!({"command": "close_vote", "vote": 1}))
        .await;
    let closed = close
        .as_ref()
        .ok()
        .and_then(|(v, _)| v["seq"].as_u64())
        .unwrap_or(0);
    st.record("close", close, true);
    // The vote's events reach every connection, then the server's stage times are read.
    wait_all_seen(&arcs, closed).await?;
    let stages_after = stage_counts(args).await;
    st.record(
        "open_secret",
        chair
            .command(json!({"command": "open_vote", "question": "Bỏ phiếu kín", "method": "secret", "rule": null, "window_secs": 600, "allow_change": null, "rerun_of": null}))
            .await,
        true,
    );
    for r in run_all(&deputies, |c| async move {
        let choice = if c.code.ends_with('7') { "no" } else { "yes" };
        c.command(json!({"command": "cast_ballot", "vote": 2, "choice": choice}))
            .await
    })
    .await
    {
        st.record("secret ballot", r, true);
    }
    st.record(
        "close_secret",
        chair
            .command(json!({"command": "close_vote", "vote": 2}))
            .await,
        true,
    );
    // The resolution's file is uploaded first, as a clerk station does.
    let clerk_token = login(&http, args, "CLERK1").await?;
    let uploaded: Value = http
        .post(format!(
            "{}/api/sittings/{}/uploads",
            args.url, args.sitting
        ))
        .bearer_auth(&clerk_token)
        .body(b"%PDF-1.4\n% Nghi quyet (ban cuoi)\n%%EOF\n".to_vec())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let (doc, _) = clerk
        .command(json!({"command": "publish_document", "item": 3, "title": "Nghị quyết (bản cuối)", "media_type": uploaded["media_type"], "size": uploaded["size"], "sha256": uploaded["sha256"], "access": {"level": "deputies"}}))
        .await?;
    if doc["type"] != "ack" {
        st.errors.push(format!("document: {doc}"));
    }
    let before_drop = doc["seq"].as_u64().unwrap_or(0);
    wait_all_seen(&arcs, before_drop).await?;
    tracing::info!("sitting done; every client drops and resumes at once");

    // Everyone drops at once, then everyone resumes from the last event it saw.
    drop((chair, clerk, deputies));
    let mut owned: Vec<Client> = arcs
        .into_iter()
        .map(|a| Arc::try_unwrap(a).map_err(|_| anyhow::anyhow!("client still shared")))
        .collect::<Result<_>>()?;
    for c in owned.iter_mut() {
        c.disconnect().await;
    }
    let reconnect = Instant::now();
    let mut tasks = Vec::new();
    for mut c in owned {
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let r = c.connect(&args, true).await;
            (c, r)
        }));
    }
    let mut owned = Vec::new();
    for t in tasks {
        let (c, r) = t.await?;
        if let Err(e) = r {
            st.errors.push(format!("reconnect {}: {e:#}", c.code));
        }
        owned.push(c);
    }
    let reconnect_secs = reconnect.elapsed().as_secs_f64();
    let arcs: Vec<Arc<Client>> = owned.into_iter().map(Arc::new).collect();
    let (last, _) = arcs[0]
        .command(json!({"command": "add_agenda_item", "title": "Mục bổ sung", "position": null}))
        .await?;
    let last = last["seq"].as_u64().unwrap_or(0);
    wait_all_seen(&arcs, last).await?;

    // Every client: one continuous run start+1 ..= last, each exactly once.
    let (mut lost, mut dup, mut refused_resume) = (0u64, 0u64, 0u64);
    let mut fanout = Vec::new();
    for c in &arcs {
        let s = c.seen.lock().await;
        let start = s.start.unwrap_or(0);
        if s.seqs.contains(&u64::MAX) {
            refused_resume += 1;
        }
        let got: Vec<u64> = s.seqs.iter().copied().filter(|x| *x != u64::MAX).collect();
        let mut expected = start + 1;
        for seq in &got {
            if *seq < expected {
                dup += 1;
            } else {
                lost += seq - expected;
                expected = seq + 1;
            }
        }
        lost += (last + 1).saturating_sub(expected);
        fanout.extend(s.fanout_ms.iter().copied());
    }
    let mut ack = st.ack.clone();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let mut out = std::io::stdout().lock();
    writeln!(out, "clients: {}", arcs.len())?;
    writeln!(
        out,
        "commands: {} (errors: {})",
        st.ack.len(),
        st.errors.len()
    )?;
    writeln!(
        out,
        "ack latency ms: p50 {:.2} p99 {:.2} max {:.2}",
        ms(pct(&mut ack, 0.5)),
        ms(pct(&mut ack, 0.99)),
        ms(pct(&mut ack, 1.0))
    )?;
    let mut ballots = st.ballots.clone();
    writeln!(
        out,
        "named vote, {} ballots at once (protocol {}), ack ms: p50 {:.2} p99 {:.2} max {:.2}",
        ballots.len(),
        args.protocol,
        ms(pct(&mut ballots, 0.5)),
        ms(pct(&mut ballots, 0.99)),
        ms(pct(&mut ballots, 1.0))
    )?;
    for line in stage_report(stages_before.as_ref(), stages_after.as_ref(), "the vote") {
        writeln!(out, "  {line}")?;
    }
    writeln!(
        out,
        "fan-out latency ms (commit to arrival, {} deliveries): p50 {} p99 {} max {}",
        fanout.len(),
        pct(&mut fanout, 0.5).unwrap_or(0),
        pct(&mut fanout, 0.99).unwrap_or(0),
        pct(&mut fanout, 1.0).unwrap_or(0)
    )?;
    writeln!(
        out,
        "events in the log: {last}; reconnect of all clients: {reconnect_secs:.2} s"
    )?;
    writeln!(
        out,
        "lost events: {lost}; duplicated events: {dup}; resumes answered with a snapshot: {refused_resume}"
    )?;
    for e in st.errors.iter().take(10) {
        writeln!(out, "error: {e}")?;
    }
    Ok(lost == 0 && dup == 0 && st.errors.is_empty() && refused_resume == 0)
}

/// The server's cumulative stage times (`GET /healthz/stages`), if it serves them.
async fn stage_counts(args: &Args) -> Option<Value> {
    reqwest::get(format!("{}/healthz/stages", args.url))
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Per stage, what happened between two readings of the server's stage times: count and
/// p50 / p99 / max (the lower bounds of the server's buckets, within 25 %).
fn stage_report(before: Option<&Value>, after: Option<&Value>, during: &str) -> Vec<String> {
    let (Some(before), Some(after)) = (before, after) else {
        return vec!["(the server serves no stage times)".into()];
    };
    let buckets = |v: &Value, stage: &str| -> HashMap<u64, u64> {
        v["stages"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["stage"] == stage))
            .and_then(|s| s["buckets"].as_array())
            .map(|b| {
                b.iter()
                    .filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let floor_ms = |b: u64| 2f64.powi((b / 4) as i32) * (1.0 + (b % 4) as f64 / 4.0) / 1e3;
    let mut lines = vec![format!(
        "server stage times (ms) in {during}: count, p50, p99, max"
    )];
    for stage in after["stages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["stage"].as_str())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        let old = buckets(before, stage);
        let mut delta: Vec<(u64, u64)> = buckets(after, stage)
            .into_iter()
            .map(|(b, n)| (b, n - old.get(&b).copied().unwrap_or(0).min(n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        delta.sort_unstable();
        let count: u64 = delta.iter().map(|(_, n)| n).sum();
        let at = |p: f64| {
            let want = ((count as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            delta
                .iter()
                .find(|(_, n)| {
                    seen += n;
                    seen >= want
                })
                .map_or(0.0, |(b, _)| floor_ms(*b))
        };
        lines.push(format!(
            "{stage:<9} {count:>8}  {:>9.3} {:>9.3} {:>9.3}",
            at(0.5),
            at(0.99),
            at(1.0)
        ));
    }
    lines
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The sitting's phase from its public summary; an error when the sitting is closed, since
/// nothing can then be measured in it.
pub(crate) async fn open_phase(args: &Args) -> Result<String> {
    let summary: Value = reqwest::Client::new()
        .get(format!("{}/api/sittings/{}", args.url, args.sitting))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("the sitting {}", args.sitting))?
        .json()
        .await?;
    let phase = summary["phase"].as_str().unwrap_or_default().to_owned();
    if phase == "closed" {
        bail!(
            "the sitting {} is closed, so nothing can be measured in it: start the server on a fresh database",
            args.sitting
        );
    }
    Ok(phase)
}

async fn fanout_mode(args: &Args, n: usize) -> Result<bool> {
    let phase = open_phase(args).await?;
    let http = reqwest::Client::new();
    let token = login(&http, args, "OBSERVER").await?;
    let chair_token = login(&http, args, "CHAIR").await?;
    let rss_before = args.server_pid.and_then(rss_kib);
    let mut followers = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let mut c = Client {
            code: format!("F{i}"),
            token: token.clone(),
            seen: Arc::new(Mutex::new(Seen {
                arrivals: Some(Vec::new()),
                ..Seen::default()
            })),
            tx: None,
            task: None,
            n: AtomicU64::new(0),
        };
        c.connect(args, false).await?;
        followers.push(c);
        if i % 1000 == 999 {
            tracing::info!(connected = i + 1, "connecting");
        }
    }
    // Let every subscription receive its snapshot.
    for c in &followers {
        while c.seen.lock().await.start.is_none() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    let rss_after = args.server_pid.and_then(rss_kib);
    let mut chair = Client {
        code: "CHAIR".into(),
        token: chair_token,
        seen: Arc::default(),
        tx: None,
        task: None,
        n: AtomicU64::new(0),
    };
    chair.connect(args, false).await?;
    let stages_before = stage_counts(args).await;
    let mut last = 0;
    for i in 0..args.events {
        let (r, _) = chair
            .command(json!({"command": "add_agenda_item", "title": format!("Mục đo {i}"), "position": null}))
            .await?;
        if r["type"] != "ack" {
            bail!(
                "the chair's command was refused ({}: {}); no event was made to measure",
                r["code"],
                r["message"]
            );
        }
        last = r["seq"].as_u64().unwrap_or(last);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arcs: Vec<Arc<Client>> = followers.into_iter().map(Arc::new).collect();
    wait_all_seen(&arcs, last).await?;
    let stages_after = stage_counts(args).await;
    let mut fanout = Vec::new();
    for c in &arcs {
        fanout.extend(c.seen.lock().await.fanout_ms.iter().copied());
    }
    // A vote's result on every screen: from the chair sending `close_vote` to the arrival of
    // `vote_closed` at each connection.
    let result = vote_result_times(&chair, &arcs, &phase).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "connections: {n} (connected and subscribed in {connect_secs:.1} s), protocol {}",
        args.protocol
    )?;
    writeln!(
        out,
        "fan-out of {} events to every connection ({} deliveries), commit to arrival ms: p50 {} p99 {} max {}",
        args.events,
        fanout.len(),
        pct(&mut fanout, 0.5).unwrap_or(0),
        pct(&mut fanout, 0.99).unwrap_or(0),
        pct(&mut fanout, 1.0).unwrap_or(0)
    )?;
    for line in stage_report(
        stages_before.as_ref(),
        stages_after.as_ref(),
        "the fan-out of the events",
    ) {
        writeln!(out, "  {line}")?;
    }
    let mut result_ms: Vec<u64> = result.iter().map(|d| d.as_millis() as u64).collect();
    writeln!(
        out,
        "close_vote to the result on all {} connections, ms: p50 {} p99 {} max {}",
        result_ms.len(),
        pct(&mut result_ms, 0.5).unwrap_or(0),
        pct(&mut result_ms, 0.99).unwrap_or(0),
        pct(&mut result_ms, 1.0).unwrap_or(0)
    )?;
    if let (Some(b), Some(a)) = (rss_before, rss_after) {
        writeln!(
            out,
            "server RSS: {b} KiB before, {a} KiB with {n} connections: {:.1} KiB per connection",
            (a.saturating_sub(b)) as f64 / n as f64
        )?;
    }
    let complete = fanout.len() == n * args.events && result.len() == n;
    if !complete {
        writeln!(
            out,
            "incomplete: {} of {} deliveries arrived, the result at {} of {n} connections",
            fanout.len(),
            n * args.events,
            result.len()
        )?;
    }
    Ok(complete)
}

/// Opens the sitting if it is not, opens a named vote and closes it; returns, for each
/// follower, the time from sending `close_vote` to the arrival of its `vote_closed`.
async fn vote_result_times(
    chair: &Client,
    followers: &[Arc<Client>],
    phase: &str,
) -> Result<Vec<Duration>> {
    let must = |what: &str, r: &Value| -> Result<u64> {
        if r["type"] != "ack" {
            bail!(
                "the chair's {what} was refused ({}: {})",
                r["code"],
                r["message"]
            );
        }
        r["seq"].as_u64().context("an ack without seq")
    };
    if phase != "open" {
        let (r, _) = chair.command(json!({"command": "open_sitting"})).await?;
        must("open_sitting", &r)?;
    }
    // A vote is taken on an agenda item (the one the sitting is on may already be it).
    let (r, _) = chair
        .command(json!({"command": "set_current_item", "item": 1}))
        .await?;
    if r["type"] != "ack" {
        tracing::info!(reply = %r, "the current item was not moved");
    }
    let (r, _) = chair
        .command(json!({"command": "open_vote", "question": "Đo thời gian kết quả", "method": "named", "rule": null, "window_secs": 600, "allow_change": true, "rerun_of": null}))
        .await?;
    let opened = must("open_vote", &r)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while chair.last_seq().await < opened {
        if Instant::now() > deadline {
            bail!("the chair did not see its vote open");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let vote = chair
        .seen
        .lock()
        .await
        .vote_opened
        .context("the chair did not see its vote open")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    let (r, _) = chair
        .command(json!({"command": "close_vote", "vote": vote}))
        .await?;
    let closed = must("close_vote", &r)?;
    wait_all_seen(followers, closed).await?;
    let mut times = Vec::with_capacity(followers.len());
    for c in followers {
        let s = c.seen.lock().await;
        if let Some(at) = s
            .arrivals
            .as_ref()
            .and_then(|a| a.iter().find(|(seq, _)| *seq == closed))
        {
            times.push(at.1.saturating_duration_since(sent));
        }
    }
    Ok(times)
}
#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let args = Args::parse();
    let result = match args.connections {
        Some(n) => fanout_mode(&args, n).await,
        None if args.crowd => crowd::run(&args).await,
        None => sitting_mode(&args).await,
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
