//! The media plane inside the real server: WebSocket signalling with real webrtc-rs peers,
//! the floor granted and revoked in the sitting deciding which microphone the SFU forwards,
//! WHIP/WHEP refusals and sessions, and an independent WebRTC stack (aiortc) publishing over
//! WHIP and playing back over WHEP with decoded frames counted.

mod support;

#[path = "../sfu/benches/common/mod.rs"]
mod common;

use bytes::{BufMut, Bytes, BytesMut};
use dienhong_sfu::driver::OPUS_PT;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ws::{Client, Server, start_with};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::runtime::Runtime;

/// Any free UDP port for the SFU, so tests run side by side.
const ANY_PORT: [(&str, &str); 2] = [
    ("DIENHONG__MEDIA__UDP_PORT_MIN", "0"),
    ("DIENHONG__MEDIA__UDP_PORT_MAX", "0"),
];

/// Sends a media message and returns the reply that names `request_id`.
async fn media_request(c: &mut Client, msg: Value) -> Value {
    let id = msg["request_id"].clone();
    c.send(msg).await;
    loop {
        let m = c.next().await;
        assert_ne!(m["type"], "closed", "closed while waiting for {id}: {m}");
        if m["request_id"] == id || (m["type"] == "error" && m["command_id"] == id) {
            return m;
        }
    }
}

/// Publishes an Opus track with this SSRC over the control connection; returns the peer
/// (to keep it alive), the track and the media id.
async fn publish_microphone(
    c: &mut Client,
    rt: &Arc<dyn Runtime>,
    ssrc: u32,
) -> (common::Peer, Mic, u64) {
    let mut p = common::peer(rt.clone()).await;
    let track = Arc::new(TrackLocalStaticRTP::new(common::track(
        RtpCodecKind::Audio,
        ssrc,
        &format!("mic{ssrc}"),
    )));
    p.pc.add_track(track.clone()).await.expect("add track");
    let offer = p.pc.create_offer(None).await.expect("offer");
    p.pc.set_local_description(offer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), p.gathered.recv()).await;
    let offer = p.pc.local_description().await.expect("sdp");
    let r = media_request(
        c,
        json!({"type": "media_publish", "v": 1, "request_id": format!("pub{ssrc}"), "sdp": offer.sdp}),
    )
    .await;
    assert_eq!(r["type"], "media_sdp", "{r}");
    assert_eq!(r["sdp_type"], "answer");
    let answer =
        RTCSessionDescription::answer(r["sdp"].as_str().expect("sdp").to_owned()).expect("answer");
    let level_id = dienhong_sfu::forward::extmap_id(
        &answer.sdp,
        "audio",
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    )
    .expect("the SFU takes audio levels");
    p.pc.set_remote_description(answer).await.expect("remote");
    tokio::time::timeout(Duration::from_secs(10), p.connected.recv())
        .await
        .expect("publisher connects");
    let mic = Mic {
        track,
        ssrc,
        level_id,
    };
    (p, mic, r["media"].as_u64().expect("media id"))
}

/// A published microphone: its track, SSRC and the id of its audio-level extension.
struct Mic {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    level_id: u8,
}

type Log = common::Arrivals;

/// Subscribes over the control connection and logs every packet that arrives.
async fn subscribe_and_log(c: &mut Client, rt: &Arc<dyn Runtime>) -> (common::Peer, Log) {
    let r = media_request(
        c,
        json!({"type": "media_subscribe", "v": 1, "request_id": "sub"}),
    )
    .await;
    assert_eq!(r["type"], "media_sdp", "{r}");
    assert_eq!(r["sdp_type"], "offer");
    assert!(r["ice_servers"].is_array());
    let mut p = common::peer(rt.clone()).await;
    answer_offer(c, &mut p, &r, "ans").await;
    tokio::time::timeout(Duration::from_secs(10), p.connected.recv())
        .await
        .expect("subscriber connects");
    let log = common::log_arrivals(&mut p);
    (p, log)
}

/// Applies the SFU's offer (a `media_sdp` message) to `p` and sends the answer.
async fn answer_offer(c: &mut Client, p: &mut common::Peer, offer: &Value, request_id: &str) {
    let media = offer["media"].as_u64().expect("media id");
    let sdp = offer["sdp"].as_str().expect("sdp").to_owned();
    p.pc.set_remote_description(RTCSessionDescription::offer(sdp).expect("offer"))
        .await
        .expect("remote");
    let answer = p.pc.create_answer(None).await.expect("answer");
    p.pc.set_local_description(answer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), p.gathered.recv()).await;
    let answer = p.pc.local_description().await.expect("sdp");
    let r = media_request(
        c,
        json!({"type": "media_answer", "v": 1, "request_id": request_id, "media": media, "sdp": answer.sdp}),
    )
    .await;
    assert_eq!(r["type"], "media_ok", "{r}");
}

/// Reads `c`'s messages until the server offers again by itself (`media_sdp` without a
/// request id).
async fn next_server_offer(c: &mut Client) -> Value {
    loop {
        let m = c.next().await;
        assert_ne!(m["type"], "closed", "{m}");
        if m["type"] == "media_sdp" {
            assert_eq!(m["sdp_type"], "offer", "{m}");
            assert!(m.get("request_id").is_none(), "offered by the server: {m}");
            return m;
        }
    }
}

/// A packet of `mic` whose payload starts with `marker`, at an audio level (RFC 6464 byte:
/// voice flag and −dBov).
fn opus_packet(mic: &Mic, seq: u16, marker: u8, level: u8) -> rtc::rtp::Packet {
    let mut b = BytesMut::with_capacity(100);
    b.put_u8(marker);
    b.put_bytes(0, 99);
    let mut header = rtc::rtp::header::Header {
        version: 2,
        payload_type: OPUS_PT,
        sequence_number: seq,
        timestamp: u32::from(seq) * 960,
        ssrc: mic.ssrc,
        ..Default::default()
    };
    header
        .set_extension(mic.level_id, Bytes::copy_from_slice(&[level]))
        .expect("audio level");
    rtc::rtp::Packet {
        header,
        payload: Bytes::from(b),
    }
}

/// The deputy speaks (voice, −20 dBov); the room is quiet (no voice, −60 dBov).
const DEPUTY_LEVEL: u8 = 0x80 | 20;
const SITE_LEVEL: u8 = 60;

/// Both microphones talk (50 packets/s each) for `d`.
async fn talk(deputy: &Mic, site: &Mic, seq: &mut u16, d: Duration) {
    talking(Some(deputy), site, seq, d).await;
}

/// The room's microphone talks, and the deputy's if there is one, for `d`.
async fn talking(deputy: Option<&Mic>, site: &Mic, seq: &mut u16, d: Duration) {
    let t0 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while t0.elapsed() < d {
        tick.tick().await;
        *seq = seq.wrapping_add(1);
        if let Some(deputy) = deputy {
            let _ = deputy
                .track
                .write_rtp(opus_packet(deputy, *seq, DEPUTY, DEPUTY_LEVEL))
                .await;
        }
        let _ = site
            .track
            .write_rtp(opus_packet(site, *seq, SITE, SITE_LEVEL))
            .await;
    }
}

const DEPUTY: u8 = 1;
const SITE: u8 = 2;

fn heard_after(log: &Log, who: u8, t: Instant) -> usize {
    log.lock()
        .expect("log")
        .iter()
        .filter(|(m, _, at)| *m == who && *at > t)
        .count()
}

/// How long after the floor moved (acknowledged at `t`) the first packet of `who` arrived.
fn first_after(log: &Log, who: u8, t: Instant) -> Option<Duration> {
    log.lock()
        .expect("log")
        .iter()
        .filter(|(m, _, at)| *m == who && *at > t)
        .map(|(_, _, at)| *at - t)
        .min()
}

/// The deputy of the demo roster and the operator account of their delegation's site.
fn deputy_and_site(s: &Server) -> (String, String) {
    let handle = s.app.sittings().into_iter().next().expect("demo sitting");
    let deputy = handle
        .roster()
        .actor(&dienhong::sitting::ActorId::new("DB001"))
        .expect("DB001");
    let code = deputy.delegation.as_ref().expect("a delegation");
    ("DB001".to_owned(), format!("SITE{}", code.as_str()))
}

/// A server with the demo sitting, and the chair, a deputy and their delegation's site
/// connected over the control plane.
struct Hall {
    s: Server,
    rt: Arc<dyn Runtime>,
    chair: Client,
    site: Client,
    deputy: Client,
    deputy_code: String,
    site_code: String,
}

async fn hall() -> Hall {
    let s = start_with(&ANY_PORT).await;
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let (deputy_code, site_code) = deputy_and_site(&s);
    let chair = s.client("CHAIR").await;
    let deputy = s.client(&deputy_code).await;
    let site = s.client(&site_code).await;
    Hall {
        s,
        rt,
        chair,
        site,
        deputy,
        deputy_code,
        site_code,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_granted_in_the_sitting_decides_which_microphone_the_sfu_forwards() {
    let Hall {
        s,
        rt,
        mut chair,
        mut site,
        mut deputy,
        deputy_code,
        site_code,
    } = hall().await;
    let mut viewer = s.client("OBSERVER").await;
    chair.ok(json!({"command": "open_sitting"})).await;
    deputy
        .ok(json!({"command": "check_in", "deputy": deputy_code}))
        .await;
    deputy
        .ok(json!({"command": "request_floor", "kind": "discussion"}))
        .await;

    // The deputy's own microphone and their delegation's room microphone publish; a viewer
    // (the observer account: receive only) subscribes.
    let (_dp, deputy_mic, deputy_media) = publish_microphone(&mut deputy, &rt, 21).await;
    let (_sp, site_mic, _) = publish_microphone(&mut site, &rt, 31).await;
    let (_vp, log) = subscribe_and_log(&mut viewer, &rt).await;
    let (_cp, console) = subscribe_and_log(&mut chair, &rt).await;
    let mut seq = 0u16;

    // Nobody holds the floor: neither microphone is forwarded, but the chair's console
    // hears both, to see who is ready.
    let t = Instant::now();
    talk(&deputy_mic, &site_mic, &mut seq, Duration::from_millis(600)).await;
    assert_eq!(
        heard_after(&log, DEPUTY, t),
        0,
        "a deputy without the floor"
    );
    assert_eq!(heard_after(&log, SITE, t), 0, "a room without the floor");
    assert!(
        heard_after(&console, DEPUTY, t) > 0,
        "the console's preview"
    );
    assert!(heard_after(&console, SITE, t) > 0, "the console's preview");

    // The console is told who is talking, and how loud.
    let levels = loop {
        let m = chair.next().await;
        assert_ne!(m["type"], "closed", "{m}");
        if m["type"] == "media_levels" && m["levels"].as_array().is_some_and(|l| l.len() == 2) {
            break m["levels"].clone();
        }
    };
    let level_of = |who: &str| {
        levels
            .as_array()
            .and_then(|l| l.iter().find(|x| x["participant"] == who))
            .cloned()
            .unwrap_or_else(|| panic!("no level of {who}: {levels}"))
    };
    assert_eq!(level_of(&deputy_code)["dbov"], 20, "{levels}");
    assert_eq!(level_of(&deputy_code)["voice"], true, "{levels}");
    assert_eq!(level_of(&site_code)["dbov"], 60, "{levels}");
    assert_eq!(level_of(&site_code)["voice"], false, "{levels}");

    // The chair mutes the room on the console: it no longer reaches it.
    let r = media_request(
        &mut chair,
        json!({"type": "media_mute", "v": 1, "request_id": "m1", "participant": site_code, "muted": true}),
    )
    .await;
    assert_eq!(r["type"], "media_ok", "{r}");
    assert!(r.get("media").is_none(), "{r}");
    let muted = Instant::now();
    talk(&deputy_mic, &site_mic, &mut seq, Duration::from_millis(600)).await;
    assert_eq!(
        heard_after(&console, SITE, muted + Duration::from_millis(250)),
        0,
        "a muted microphone does not reach the console"
    );
    assert!(heard_after(&console, DEPUTY, muted) > 0);

    // The chair gives the floor: the deputy's own microphone is heard, not the room's.
    chair
        .ok(json!({"command": "grant_floor", "request": 1}))
        .await;
    let granted = Instant::now();
    talk(&deputy_mic, &site_mic, &mut seq, Duration::from_millis(800)).await;
    let delay = first_after(&log, DEPUTY, granted).expect("the speaker is heard");
    assert!(delay < Duration::from_millis(500), "heard after {delay:?}");
    assert_eq!(heard_after(&log, SITE, granted), 0, "the room stays closed");

    // The deputy's device leaves: the room carries the speaker.
    let r = media_request(
        &mut deputy,
        json!({"type": "media_close", "v": 1, "request_id": "bye", "media": deputy_media}),
    )
    .await;
    assert_eq!(r["type"], "media_ok", "{r}");
    let switched = Instant::now();
    talk(&deputy_mic, &site_mic, &mut seq, Duration::from_millis(800)).await;
    assert!(
        first_after(&log, SITE, switched).is_some(),
        "the room microphone carries the speaker"
    );

    // The chair takes the floor back: from then on, nothing of the room reaches the viewer.
    chair.ok(json!({"command": "revoke_floor"})).await;
    let revoked = Instant::now();
    talk(
        &deputy_mic,
        &site_mic,
        &mut seq,
        Duration::from_millis(1000),
    )
    .await;
    let late = heard_after(&log, SITE, revoked + Duration::from_millis(250));
    assert_eq!(
        late, 0,
        "{late} packets of the room after the floor was revoked"
    );
    // For docs/benchmarks.md: acknowledgement of the command to the change at the viewer.
    let last_room = log
        .lock()
        .expect("log")
        .iter()
        .filter(|(m, _, _)| *m == SITE)
        .map(|(_, _, at)| at.saturating_duration_since(revoked))
        .max()
        .unwrap_or_default();
    eprintln!(
        "floor change through the sitting: granted, first packet after {delay:?}; revoked, last packet {last_room:?} after"
    );
    // `/metrics` counts what was forwarded: at least every packet the two receivers logged,
    // no more than the SFU's own count, and every one at least an RTP header in size.
    let logged = log.lock().expect("log").len() + console.lock().expect("log").len();
    let scrape = reqwest::get(format!("http://{}/metrics", s.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let sample = |name: &str| -> f64 {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    let forwarded = sample("dienhong_media_forwarded_packets_total");
    let stats = s
        .app
        .media()
        .expect("media")
        .driver()
        .stats()
        .await
        .expect("stats");
    assert!(
        forwarded >= logged as f64 && forwarded <= stats.forwarded_total as f64,
        "forwarded {forwarded}, logged {logged}, SFU {}",
        stats.forwarded_total
    );
    assert!(sample("dienhong_media_forwarded_bytes_total") >= 12.0 * forwarded);
    assert!(
        sample("dienhong_media_received_packets_total") >= f64::from(seq),
        "every packet sent reached the SFU"
    );
    assert_eq!(
        sample(r#"dienhong_media_video_forwards{layer="high"}"#),
        0.0,
        "sound only: no picture forwarded"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deputy_in_the_hall_given_the_floor_does_not_open_their_delegations_room() {
    let Hall {
        s,
        rt,
        mut chair,
        mut site,
        mut deputy,
        deputy_code,
        ..
    } = hall().await;
    let mut viewer = s.client("OBSERVER").await;
    chair.ok(json!({"command": "open_sitting"})).await;
    deputy
        .ok(json!({"command": "check_in", "deputy": deputy_code, "location": "hall"}))
        .await;
    deputy
        .ok(json!({"command": "request_floor", "kind": "discussion"}))
        .await;
    let (_sp, site_mic, _) = publish_microphone(&mut site, &rt, 31).await;
    let (_vp, log) = subscribe_and_log(&mut viewer, &rt).await;
    let mut seq = 0u16;

    // Given the floor, the deputy is heard through the hall's sound: their province's
    // room stays closed.
    chair
        .ok(json!({"command": "grant_floor", "request": 1}))
        .await;
    let granted = Instant::now();
    talking(None, &site_mic, &mut seq, Duration::from_millis(800)).await;
    assert_eq!(
        heard_after(&log, SITE, granted),
        0,
        "the room of a deputy who sits in the hall"
    );

    // The same deputy, back from their delegation's room, is carried by it.
    deputy
        .ok(json!({"command": "check_out", "deputy": deputy_code}))
        .await;
    deputy
        .ok(json!({"command": "check_in", "deputy": deputy_code, "location": "site"}))
        .await;
    deputy
        .ok(json!({"command": "request_floor", "kind": "discussion"}))
        .await;
    chair
        .ok(json!({"command": "grant_floor", "request": 2}))
        .await;
    let granted = Instant::now();
    talking(None, &site_mic, &mut seq, Duration::from_millis(800)).await;
    assert!(
        heard_after(&log, SITE, granted) > 0,
        "the room carries a deputy who sits there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_came_first_is_offered_what_is_published_later() {
    let Hall {
        s,
        rt,
        mut chair,
        mut site,
        mut deputy,
        ..
    } = hall().await;
    // The chair's console subscribes while the deputy's device already publishes.
    let (_dp, deputy_mic, _) = publish_microphone(&mut deputy, &rt, 21).await;
    let (mut console, log) = subscribe_and_log(&mut chair, &rt).await;
    // Then the site's room comes online: the console is offered its microphone.
    let (_sp, site_mic, _) = publish_microphone(&mut site, &rt, 31).await;
    let offer = next_server_offer(&mut chair).await;
    answer_offer(&mut chair, &mut console, &offer, "re1").await;
    let t = Instant::now();
    let mut seq = 0;
    talk(&deputy_mic, &site_mic, &mut seq, Duration::from_millis(800)).await;
    assert!(
        heard_after(&log, SITE, t) > 0,
        "the new microphone reaches the console"
    );
    assert!(
        heard_after(&log, DEPUTY, t) > 0,
        "and the earlier one still does"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_opened_before_anyone_publishes_receives_what_comes_later() {
    let Hall {
        s,
        rt,
        mut chair,
        mut site,
        mut deputy,
        ..
    } = hall().await;
    // Nothing is published yet: the console's connection starts empty.
    let first = media_request(
        &mut chair,
        json!({"type": "media_subscribe", "v": 1, "request_id": "early"}),
    )
    .await;
    assert_eq!(first["type"], "media_sdp", "{first}");
    let mut console = common::peer(rt.clone()).await;
    answer_offer(&mut chair, &mut console, &first, "a0").await;
    // The room and a deputy come online; each brings a new offer for the console.
    let (_sp, site_mic, _) = publish_microphone(&mut site, &rt, 31).await;
    let (_dp, deputy_mic, _) = publish_microphone(&mut deputy, &rt, 21).await;
    for n in 1..=2 {
        let offer = next_server_offer(&mut chair).await;
        assert_eq!(offer["media"], first["media"]);
        answer_offer(&mut chair, &mut console, &offer, &format!("a{n}")).await;
    }
    tokio::time::timeout(Duration::from_secs(10), console.connected.recv())
        .await
        .expect("the console connects once there is something to receive");
    let log = common::log_arrivals(&mut console);
    let t = Instant::now();
    let mut seq = 0;
    talk(&deputy_mic, &site_mic, &mut seq, Duration::from_millis(800)).await;
    assert!(
        heard_after(&log, SITE, t) > 0,
        "the room reaches the console"
    );
    assert!(
        heard_after(&log, DEPUTY, t) > 0,
        "the deputy reaches the console"
    );
    s.stop().await;
}

#[tokio::test]
async fn media_signalling_refuses_what_an_account_may_not_do_with_typed_errors() {
    let mut config = ANY_PORT.to_vec();
    config.push(("DIENHONG__MEDIA__MAX_SDP_BYTES", "8192"));
    let s = start_with(&config).await;
    let mut viewer = s.client("OBSERVER").await;
    let mut chair = s.client("CHAIR").await;
    let offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
    let r = media_request(
        &mut viewer,
        json!({"type": "media_publish", "v": 1, "request_id": "p1", "sdp": offer}),
    )
    .await;
    assert_eq!(r["code"], "not_permitted", "an observer only receives: {r}");
    let r = media_request(
        &mut viewer,
        json!({"type": "media_mute", "v": 1, "request_id": "m1", "participant": "CHAIR", "muted": true}),
    )
    .await;
    assert_eq!(r["code"], "not_permitted", "only the chair mutes: {r}");
    let r = media_request(
        &mut chair,
        json!({"type": "media_mute", "v": 1, "request_id": "m2", "participant": "NOBODY", "muted": true}),
    )
    .await;
    assert_eq!(r["code"], "not_permitted", "not in the roster: {r}");
    let r = media_request(
        &mut chair,
        json!({"type": "media_publish", "v": 1, "request_id": "p2", "sdp": "hello"}),
    )
    .await;
    assert_eq!(r["code"], "invalid_sdp", "{r}");
    let big = format!("v=0\r\n{}", "a=x\r\n".repeat(2_000));
    let r = media_request(
        &mut chair,
        json!({"type": "media_publish", "v": 1, "request_id": "p3", "sdp": big}),
    )
    .await;
    assert_eq!(r["code"], "invalid_sdp", "larger than max_sdp_bytes: {r}");
    // The viewer's receiving leg cannot be answered or closed by someone else.
    let r = media_request(
        &mut viewer,
        json!({"type": "media_subscribe", "v": 1, "request_id": "s1"}),
    )
    .await;
    let leg = r["media"].as_u64().expect("media id");
    let r = media_request(
        &mut chair,
        json!({"type": "media_close", "v": 1, "request_id": "c1", "media": leg}),
    )
    .await;
    assert_eq!(r["code"], "no_such_media", "{r}");
    let r = media_request(
        &mut chair,
        json!({"type": "media_answer", "v": 1, "request_id": "a1", "media": 99999, "sdp": offer}),
    )
    .await;
    assert_eq!(r["code"], "no_such_media", "{r}");
    chair
        .send(json!({"type": "media_subscribe", "v": 1, "request_id": ""}))
        .await;
    let r = chair.next().await;
    assert_eq!(r["code"], "invalid_request_id", "{r}");
    // The connection still works.
    let r = media_request(
        &mut viewer,
        json!({"type": "media_close", "v": 1, "request_id": "c2", "media": leg}),
    )
    .await;
    assert_eq!(r["type"], "media_ok", "{r}");
    s.stop().await;
}

async fn whip_post(
    s: &Server,
    path: &str,
    token: Option<&str>,
    ct: &str,
    body: String,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("http://{}{path}", s.addr))
        .header("content-type", ct)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_the_sfu_has_no_room_for_gets_503_with_retry_after_and_the_chair_still_gets_in()
{
    // An admission ceiling of 0: no room for anyone ordinary, whatever the measured load.
    let mut config = ANY_PORT.to_vec();
    config.push(("DIENHONG__MEDIA__ADMIT_CEILING", "0"));
    // Two I/O threads: the receiver is refused by both.
    config.push(("DIENHONG__MEDIA__IO_THREADS", "2"));
    let s = start_with(&config).await;
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    // A receive-only offer, as a WHEP player makes.
    let mut p = common::peer(rt.clone()).await;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        p.pc.add_transceiver_from_kind(kind, None)
            .await
            .expect("recvonly");
    }
    let offer = p.pc.create_offer(None).await.expect("offer");
    p.pc.set_local_description(offer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), p.gathered.recv()).await;
    let offer = p.pc.local_description().await.expect("sdp").sdp;

    let observer = s.login("OBSERVER").await;
    let r = whip_post(
        &s,
        "/whep",
        Some(&observer),
        "application/sdp",
        offer.clone(),
    )
    .await;
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.expect("json error");
    assert_eq!(body["code"], "media_overloaded", "{body}");
    // Over the WebSocket, the same typed refusal.
    let mut deputy = s.client("DB002").await;
    let r = media_request(
        &mut deputy,
        json!({"type": "media_subscribe", "v": 1, "request_id": "s1"}),
    )
    .await;
    assert_eq!(r["code"], "media_overloaded", "{r}");
    // The chair presides: always admitted.
    let chair = s.login("CHAIR").await;
    let r = whip_post(&s, "/whep", Some(&chair), "application/sdp", offer).await;
    assert_eq!(r.status().as_u16(), 201);
    // The load is there for operators.
    let health: Value = reqwest::get(format!("http://{}/healthz/media", s.addr))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["legs"], 1, "{health}");
    assert!(
        health["load"]["capacity_pps"]
            .as_f64()
            .is_some_and(|c| c > 0.0),
        "{health}"
    );
    assert_eq!(health["load"]["shed"]["video_off"], 0, "{health}");
    let threads = health["threads"].as_array().expect("each thread's load");
    assert_eq!(threads.len(), 2, "{health}");
    assert!(
        threads
            .iter()
            .all(|t| t["capacity_pps"].as_f64().is_some_and(|c| c > 0.0)),
        "{health}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publishes_a_webrtc_peer_and_refuses_bad_requests() {
    let s = start_with(&ANY_PORT).await;
    let rt: Arc<dyn Runtime> = webrtc::runtime::default_runtime().expect("runtime");
    let chamber = s.login("CHAMBER").await;
    let observer = s.login("OBSERVER").await;

    let mut p = common::peer(rt.clone()).await;
    let video = Arc::new(TrackLocalStaticRTP::new(common::track(
        RtpCodecKind::Video,
        41,
        "programme",
    )));
    p.pc.add_track(video).await.expect("track");
    let offer = p.pc.create_offer(None).await.expect("offer");
    p.pc.set_local_description(offer).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), p.gathered.recv()).await;
    let offer = p.pc.local_description().await.expect("sdp").sdp;
    let offer_ufrag = offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:").map(str::to_owned))
        .expect("ufrag");

    let status = |r: &reqwest::Response| r.status().as_u16();
    let r = whip_post(&s, "/whip", None, "application/sdp", offer.clone()).await;
    assert_eq!(status(&r), 401, "no token");
    let r = whip_post(
        &s,
        "/whip",
        Some("forged"),
        "application/sdp",
        offer.clone(),
    )
    .await;
    assert_eq!(status(&r), 401, "bad token");
    let r = whip_post(
        &s,
        "/whip",
        Some(&observer),
        "application/sdp",
        offer.clone(),
    )
    .await;
    assert_eq!(status(&r), 403, "an observer may not publish");
    let r = whip_post(&s, "/whip", Some(&chamber), "text/plain", offer.clone()).await;
    assert_eq!(status(&r), 415, "not application/sdp");
    let r = whip_post(
        &s,
        "/whip",
        Some(&chamber),
        "application/sdp",
        "v=0\r\ngarbage".into(),
    )
    .await;
    assert_eq!(status(&r), 400, "not a usable SDP");
    let body: Value = r.json().await.expect("json error");
    assert_eq!(body["code"], "invalid_sdp");
    let r = whip_post(
        &s,
        "/whip",
        Some(&chamber),
        "application/sdp",
        "x".repeat(70_000),
    )
    .await;
    assert_eq!(status(&r), 413, "over the size limit");

    let offer_again = offer.clone();
    let r = whip_post(&s, "/whip", Some(&chamber), "application/sdp", offer).await;
    assert_eq!(status(&r), 201);
    assert_eq!(r.headers()["content-type"], "application/sdp");
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.starts_with("/whip/"), "{location}");
    let answer = r.text().await.expect("answer");
    p.pc.set_remote_description(RTCSessionDescription::answer(answer).expect("answer"))
        .await
        .expect("remote");
    tokio::time::timeout(Duration::from_secs(10), p.connected.recv())
        .await
        .expect("the encoder connects");
    let media = s.app.media().expect("media plane");
    let stats = media.driver().stats().await.expect("stats");
    assert!(
        stats
            .tracks
            .contains_key(&dienhong_sfu::routing::ParticipantId("CHAMBER".into()))
    );

    let http = reqwest::Client::new();
    let url = format!("http://{}{location}", s.addr);
    let ufrag = offer_ufrag.clone();
    let patch = |frag: String| {
        http.patch(&url)
            .bearer_auth(&chamber)
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(frag)
            .send()
    };
    let r = patch(format!(
        "a=ice-ufrag:{ufrag}\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    ))
    .await
    .expect("patch");
    assert_eq!(status(&r), 204, "trickled candidates are taken");
    let flood: String = (0..40)
        .map(|n| {
            format!(
                "a=candidate:{n} 1 udp 2130706431 127.0.0.1 {} typ host\r\n",
                1000 + n
            )
        })
        .collect();
    let r = patch(format!("a=ice-ufrag:{ufrag}\r\n{flood}"))
        .await
        .expect("patch");
    assert_eq!(
        status(&r),
        400,
        "more candidates than a session may trickle"
    );
    let r = patch("a=ice-ufrag:another\r\na=ice-pwd:anotherpasswordanotherpass\r\n".into())
        .await
        .expect("patch");
    assert_eq!(status(&r), 422, "an ICE restart is refused");
    let r = http
        .delete(&url)
        .bearer_auth(&observer)
        .send()
        .await
        .expect("delete");
    assert_eq!(status(&r), 404, "someone else's session");
    let r = http
        .delete(&url)
        .bearer_auth(&chamber)
        .send()
        .await
        .expect("delete");
    assert_eq!(status(&r), 200);
    let r = http
        .delete(&url)
        .bearer_auth(&chamber)
        .send()
        .await
        .expect("delete");
    assert_eq!(status(&r), 404, "already ended");
    let stats = media.driver().stats().await.expect("stats");
    assert!(
        !stats
            .tracks
            .contains_key(&dienhong_sfu::routing::ParticipantId("CHAMBER".into())),
        "its tracks are gone"
    );

    // Logging out ends the account's WHIP sessions too.
    let r = whip_post(&s, "/whip", Some(&chamber), "application/sdp", offer_again).await;
    assert_eq!(status(&r), 201);
    let stats = media.driver().stats().await.expect("stats");
    assert!(
        stats
            .tracks
            .contains_key(&dienhong_sfu::routing::ParticipantId("CHAMBER".into()))
    );
    let r = http
        .post(format!("http://{}/api/logout", s.addr))
        .bearer_auth(&chamber)
        .send()
        .await
        .expect("logout");
    assert_eq!(status(&r), 204);
    let stats = media.driver().stats().await.expect("stats");
    assert!(
        !stats
            .tracks
            .contains_key(&dienhong_sfu::routing::ParticipantId("CHAMBER".into())),
        "the session ended with the login"
    );
    s.stop().await;
}

/// Whether python3 with aiortc (and numpy, to look at decoded pixels) is here.
fn aiortc_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import aiortc, numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_webrtc_stack_publishes_over_whip_and_plays_back_over_whep() {
    if !aiortc_available() {
        assert!(
            std::env::var_os("DIENHONG_REQUIRE_INTEROP").is_none(),
            "DIENHONG_REQUIRE_INTEROP is set but python3 cannot import aiortc and numpy (scripts/test-deps.sh installs them)"
        );
        eprintln!("skipped: python3 with aiortc and numpy is not installed (scripts/test-deps.sh)");
        return;
    }
    let s = start_with(&ANY_PORT).await;
    let chamber = s.login("CHAMBER").await;
    let observer = s.login("OBSERVER").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/whip_whep.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .args(["--base", &format!("http://{}", s.addr)])
        .args(["--publish-token", &chamber, "--pull-token", &observer])
        .args(["--seconds", "4"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut stdout = child.stdout.take().expect("stdout");
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the interop check ends within a minute")
        .expect("exit status");
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
        .await
        .expect("output");
    let result: Value = serde_json::from_str(out.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("no result line ({e}): {out}"));
    assert!(
        result["video_frames"].as_u64().unwrap_or(0) >= 30,
        "{result}"
    );
    assert!(
        result["audio_frames"].as_u64().unwrap_or(0) >= 50,
        "{result}"
    );
    assert_eq!(result["sizes"], json!([[320, 240]]), "{result}");
    assert!(
        result["distinct_bar_positions"].as_u64().unwrap_or(0) >= 5,
        "the picture moves: {result}"
    );
    assert_eq!(result["delete_status"], json!([200, 200]));
    assert!(status.success(), "{result}");
    s.stop().await;
}
