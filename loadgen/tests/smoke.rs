//! The load generator end to end, briefly: against the real server started in-process (the
//! demo sitting, the chamber publishing, and with a deputy given the floor publishing too)
//! and against the bare forwarding loops (str0m and webrtc-rs). Every receiver must get
//! audio and video with little loss, and the publishers must stay up.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs the generator with 4 receivers for a few seconds, with `more` flags; its JSON
/// report.
fn generate(url: &str, more: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_dienhong-media-load"))
        .args(more)
        .args([
            "--url",
            url,
            "--receivers",
            "4",
            "--warmup",
            "1",
            "--seconds",
            "3",
            "--connect-timeout",
            "10",
            "--signal-threads",
            "4",
        ])
        .output()
        .expect("the generator runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON report:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn assert_served(r: &Value) {
    assert!(r.get("error").is_none(), "the run failed: {r}");
    assert_eq!(r["asked"], 4, "{r}");
    assert_eq!(r["connected"], 4, "every receiver gets media: {r}");
    assert_eq!(r["refused"], 0, "{r}");
    assert_eq!(r["failed"], 0, "{r}");
    for kind in ["audio", "video"] {
        assert_eq!(r["starved"][kind], 0, "every receiver gets {kind}: {r}");
        let received = r["received_pps_by_kind"][kind].as_f64().unwrap_or(0.0);
        assert!(received > 0.0, "{kind} arrives: {r}");
        let loss = r["loss_pct"][kind].as_f64().expect("loss measured");
        assert!(loss < 5.0, "{kind} loss {loss} %: {r}");
        assert!(
            r["latency_ms"][kind]["p50"].as_f64().is_some(),
            "{kind} latency measured: {r}"
        );
    }
    assert_eq!(r["unknown_packets"], 0, "{r}");
    assert_eq!(r["publisher"]["connected_at_end"], true, "{r}");
    assert_eq!(r["publisher"]["whip_delete_status"], 200, "{r}");
}

/// Runs the generator with `more` flags against the server started in-process on a new
/// database; its JSON report.
async fn generate_against_the_server(more: &'static [&'static str]) -> Value {
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = [
        (
            "DIENHONG__DATABASE__URL",
            format!("sqlite:{}", dir.path().join("db.sqlite").display()),
        ),
        ("DIENHONG__MEDIA__MAX_LEGS_PER_ACTOR", "1000".into()),
        ("DIENHONG__MEDIA__UDP_PORT_MIN", "0".into()),
        ("DIENHONG__MEDIA__UDP_PORT_MAX", "0".into()),
    ];
    let config = dienhong::config::Config::load_with_env(
        None,
        env.into_iter().map(|(k, v)| (k.to_owned(), v)),
    )
    .expect("config");
    let app = dienhong::server::App::start(&config, true)
        .await
        .expect("the server starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dienhong::server::run(listener, app, async move {
        let _ = stopped.await;
    }));
    let report = tokio::task::spawn_blocking(move || generate(&format!("http://{addr}"), more))
        .await
        .expect("generator thread");
    let _ = stop.send(());
    server.await.expect("join").expect("served");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_of_the_sfu_gets_audio_and_video() {
    let report = generate_against_the_server(&[]).await;
    assert_served(&report);
    assert!(report["floor"].is_null(), "{report}");
    assert!(report["from_floor_pct"].is_null(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_deputy_given_the_floor_the_receivers_get_the_speaker() {
    let report = generate_against_the_server(&["--floor", "DB100"]).await;
    assert_served(&report);
    assert_eq!(report["floor"]["connected_at_end"], true, "{report}");
    assert_eq!(report["floor"]["whip_delete_status"], 200, "{report}");
    let share = report["from_floor_pct"].as_f64().expect("share measured");
    assert!(
        share > 99.0,
        "the programme is the speaker's: {share} % from the floor holder: {report}"
    );
}

/// Kills a bare loop however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a bare loop's binary; the process and the URL it says it listens on.
fn start_bare(exe: &str) -> (Child, String) {
    let mut child = Child(
        Command::new(exe)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{exe} starts: {e}")),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("listening on ").nth(1).map(str::to_owned))
        .unwrap_or_else(|| panic!("{exe} says where it listens"));
    // Keep reading its log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

#[test]
fn every_receiver_of_the_bare_loop_gets_audio_and_video() {
    let (_child, url) = start_bare(env!("CARGO_BIN_EXE_bare-forward"));
    assert_served(&generate(&url, &[]));
}

#[test]
fn every_receiver_of_the_bare_webrtc_loop_gets_audio_and_video() {
    let (_child, url) = start_bare(env!("CARGO_BIN_EXE_bare-forward-webrtc"));
    assert_served(&generate(&url, &[]));
}
