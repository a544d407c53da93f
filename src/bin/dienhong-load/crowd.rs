//! Crowd mode: the deputies a sitting run from the browsers leaves alone. Each follows the
//! sitting over its own WebSocket as a deputy's app would, checks in once the sitting is
//! open (most at their delegation's site, every tenth in the hall), and casts one ballot in
//! every vote that opens (a choice fixed by the deputy's code, so a run is reproducible).
//! It stops after `--votes` votes it saw closed or when the sitting closes, and fails when
//! `--seconds` pass first (nothing was measured); it prints one JSON line: how many checked in, the ballots by choice, the
//! acknowledgement times, and every refusal.

use super::{Args, login, pct, ws_config, ws_request};
use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What one deputy did.
#[derive(Debug, Default)]
struct Outcome {
    checked_in: bool,
    /// Stopped by `--seconds` before its votes closed or the sitting closed.
    timed_out: bool,
    ballots: Vec<&'static str>,
    ack: Vec<Duration>,
    errors: Vec<String>,
}

/// The ballot a deputy casts: seven in ten yes, two no, one abstains.
fn choice_of(code: &str) -> &'static str {
    let n: u32 = code
        .bytes()
        .map(u32::from)
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b));
    match n % 10 {
        0..=6 => "yes",
        7 | 8 => "no",
        _ => "abstain",
    }
}

/// Where a deputy sits: every tenth in the hall, the others at their delegation's site.
fn location_of(index: usize) -> &'static str {
    if index.is_multiple_of(10) {
        "hall"
    } else {
        "site"
    }
}

/// The deputies of the sitting's roster, less those skipped.
async fn deputies(args: &Args) -> Result<Vec<String>> {
    let roster: Value = reqwest::Client::new()
        .get(format!("{}/api/sittings/{}/roster", args.url, args.sitting))
        .send()
        .await?
        .error_for_status()
        .context("the roster")?
        .json()
        .await?;
    let mut codes: Vec<String> = roster["actors"]
        .as_object()
        .context("the roster has no actors")?
        .values()
        .filter(|a| {
            a["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == "deputy"))
        })
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .filter(|c| !args.skip.contains(c))
        .collect();
    codes.sort();
    Ok(codes)
}

/// One deputy following the sitting until the crowd is done.
async fn follow(args: Args, code: String, token: String, index: usize) -> Outcome {
    let mut out = Outcome::default();
    if let Err(e) = follow_inner(&args, &code, &token, index, &mut out).await {
        out.errors.push(format!("{code}: {e:#}"));
    }
    out
}

async fn follow_inner(
    args: &Args,
    code: &str,
    token: &str,
    index: usize,
    out: &mut Outcome,
) -> Result<()> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(
        ws_request(args, token)?,
        Some(ws_config()),
        // Without Nagle's algorithm, as a browser's WebSocket.
        true,
    )
    .await
    .with_context(|| format!("connect {code}"))?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(Message::text(m)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let send = |v: Value| tx.send(v.to_string()).ok();
    send(json!({"type": "subscribe", "v": args.protocol, "sitting": args.sitting}));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut phase = String::new();
    let mut present = false;
    let mut asked_check_in = false;
    let mut voted: Vec<u64> = Vec::new();
    let mut closed_votes = 0usize;
    let mut pending: std::collections::HashMap<String, (Instant, &'static str)> =
        std::collections::HashMap::new();
    let mut n = 0u32;
    loop {
        if closed_votes >= args.votes || phase == "closed" {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, stream.next()).await else {
            out.timed_out = true;
            break;
        };
        let Some(msg) = next else {
            out.errors
                .push(format!("{code}: the server closed the connection"));
            break;
        };
        let Message::Text(text) = msg.context("the connection")? else {
            continue;
        };
        let v: Value = serde_json::from_str(&text)?;
        let mut open_vote: Option<u64> = None;
        match v["type"].as_str() {
            Some("snapshot") => {
                let st = &v["state"];
                phase = st["phase"].as_str().unwrap_or_default().to_owned();
                present = st["present"].get(code).is_some();
                open_vote = st["open_vote"].as_u64();
            }
            Some("event") | Some("events") => {
                // One event (version 1), or a commit's events in order (version 2).
                let one = [v.clone()];
                let events = v["events"].as_array().map_or(&one[..], Vec::as_slice);
                for entry in events {
                    let e = &entry["event"];
                    match e["type"].as_str() {
                        Some("sitting_opened") | Some("sitting_resumed") => phase = "open".into(),
                        Some("sitting_suspended") => phase = "suspended".into(),
                        Some("sitting_closed") => phase = "closed".into(),
                        Some("checked_in") if e["deputy"] == code => present = true,
                        Some("checked_out") if e["deputy"] == code => present = false,
                        Some("vote_opened") => open_vote = e["vote"].as_u64(),
                        Some("vote_closed") | Some("vote_voided")
                            if e["vote"].as_u64().is_some_and(|x| voted.contains(&x)) =>
                        {
                            closed_votes += 1;
                        }
                        _ => {}
                    }
                }
            }
            Some("ack") | Some("error") => {
                if let Some((t0, what)) = v["command_id"].as_str().and_then(|id| pending.remove(id))
                {
                    out.ack.push(t0.elapsed());
                    if v["type"] == "error" {
                        out.errors.push(format!("{code} {what}: {}", v["code"]));
                    } else if what == "check_in" {
                        out.checked_in = true;
                    }
                }
            }
            _ => {}
        }
        let mut command = |what: &'static str, c: Value| {
            n += 1;
            let id = format!("{code}-crowd-{n}");
            pending.insert(id.clone(), (Instant::now(), what));
            send(json!({"type": "command", "v": 1, "command_id": id, "command": c}));
        };
        if phase == "open" && !present && !asked_check_in {
            asked_check_in = true;
            command(
                "check_in",
                json!({"command": "check_in", "deputy": code, "location": location_of(index)}),
            );
        }
        if let Some(vote) = open_vote
            && !voted.contains(&vote)
            && (present || asked_check_in)
        {
            voted.push(vote);
            let choice = choice_of(code);
            out.ballots.push(choice);
            command(
                "ballot",
                json!({"command": "cast_ballot", "vote": vote, "choice": choice}),
            );
        }
    }
    // Wait for what is still unanswered, briefly.
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    for (id, (_, what)) in pending {
        out.errors.push(format!("{code} {what}: no answer to {id}"));
    }
    Ok(())
}

/// Runs the crowd; Ok(false) when any command was refused or left unanswered.
pub async fn run(args: &Args) -> Result<bool> {
    super::open_phase(args).await?;
    let codes = deputies(args).await?;
    let http = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(codes.len());
    for chunk in codes.chunks(16) {
        let logins = chunk.iter().map(|c| login(&http, args, c));
        for t in futures_util::future::join_all(logins).await {
            tokens.push(t?);
        }
    }
    tracing::info!(deputies = codes.len(), "the crowd follows the sitting");
    let tasks: Vec<_> = codes
        .iter()
        .zip(tokens)
        .enumerate()
        .map(|(i, (c, t))| tokio::spawn(follow(args.clone(), c.clone(), t, i)))
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap_or_else(|e| Outcome {
            errors: vec![format!("task: {e}")],
            ..Outcome::default()
        }));
    }
    let mut ack: Vec<Duration> = outcomes
        .iter()
        .flat_map(|o| o.ack.iter().copied())
        .collect();
    let errors: Vec<&String> = outcomes.iter().flat_map(|o| o.errors.iter()).collect();
    let count = |c: &str| {
        outcomes
            .iter()
            .flat_map(|o| o.ballots.iter())
            .filter(|b| **b == c)
            .count()
    };
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let report = json!({
        "deputies": codes.len(),
        "checked_in": outcomes.iter().filter(|o| o.checked_in).count(),
        "ballots": {"yes": count("yes"), "no": count("no"), "abstain": count("abstain")},
        "ack_ms": {"p50": ms(pct(&mut ack, 0.5)), "p99": ms(pct(&mut ack, 0.99)), "max": ms(pct(&mut ack, 1.0))},
        "timed_out": outcomes.iter().filter(|o| o.timed_out).count(),
        "errors": errors.len(),
        "first_errors": errors.iter().take(10).collect::<Vec<_>>(),
    });
    println!("{report}");
    let timed_out = outcomes.iter().filter(|o| o.timed_out).count();
    if timed_out > 0 {
        // Not a measurement of anything: say why instead of reporting zeros as a result.
        tracing::error!(
            timed_out,
            votes = args.votes,
            "deputies gave up after --seconds before {} vote(s) closed (was the sitting opened, and a vote opened and closed?)",
            args.votes
        );
    }
    Ok(errors.is_empty() && timed_out == 0)
}

#[cfg(test)]
mod tests {
    use super::{choice_of, location_of};

    #[test]
    fn choices_are_fixed_by_the_code_and_mostly_yes() {
        let codes: Vec<String> = (1..=500).map(|n| format!("DB{n:03}")).collect();
        let yes = codes.iter().filter(|c| choice_of(c) == "yes").count();
        assert!((300..=400).contains(&yes), "{yes} of 500 yes");
        assert_eq!(choice_of("DB123"), choice_of("DB123"));
        assert!(codes.iter().any(|c| choice_of(c) == "abstain"));
        assert_eq!(location_of(0), "hall");
        assert_eq!(location_of(3), "site");
    }
}
