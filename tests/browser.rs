//! The media plane end to end in a real browser: headless Chromium with a fake camera and
//! microphone publishes through the SFU from the room app (`/room`, WHIP) and the hall
//! display (`/display`, WHEP) must decode the pictures (`framesDecoded > 0` in its own
//! WebRTC stats). The real binary and Chromium run in a network namespace of their own with
//! only loopback, driven over the DevTools protocol by `tests/browser/e2e.py`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `unshare` flags that give a new network namespace here, if any do.
fn namespace_flags() -> Option<&'static [&'static str]> {
    [&["-n"][..], &["-r", "-n"][..]].into_iter().find(|flags| {
        Command::new("unshare")
            .args(*flags)
            .arg("true")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn chromium_publishes_through_the_sfu_and_the_hall_display_decodes_the_pictures() {
    let flags = namespace_flags();
    let ready = flags.is_some()
        && available("chromium", &["--version"])
        && available("python3", &["-c", "import websockets"]);
    if !ready {
        assert!(
            std::env::var_os("DIENHONG_REQUIRE_BROWSER").is_none(),
            "DIENHONG_REQUIRE_BROWSER is set but chromium, python3 with websockets, or a network namespace is missing (scripts/test-deps.sh installs the first two)"
        );
        eprintln!("skipped: chromium, python3 websockets or unshare is not available");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/e2e.py");
    let bin = env!("CARGO_BIN_EXE_dienhong");
    let mut child = Command::new("unshare")
        .args(flags.unwrap_or_default())
        .args([
            "sh",
            "-c",
            "ip link set lo up && exec python3 \"$0\" --bin \"$1\" --seconds 40",
        ])
        .args([script, bin])
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the browser check did not end within two minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut out).expect("output");
    }
    let result: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("no result line ({e}): {out}"));
    assert_eq!(result["room_state"], "live", "{result}");
    assert!(
        result["frames_decoded"].as_u64().unwrap_or(0) > 0,
        "the display decoded no frame: {result}"
    );
    assert!(status.success(), "{result}");
}
