//! The web client in a real browser, in two tests that run one after the other.
//!
//! A whole sitting (`tests/browser/sitting.mjs`): every role in its own browser context,
//! everything done by clicking and typing, the 495 other deputies driven by `dienhong-load
//! --crowd`; see that script for the steps.
//!
//! The deputy app over HTTPS from the server's development certificate
//! (`tests/browser/tls.mjs`): refused by a browser told nothing, a secure context in one that
//! trusts the key, with its WebSocket opened by ticket.
//!
//! Ballots confirmed with passkeys (`tests/browser/passkey.mjs`), over the same HTTPS, in
//! Chromium's virtual authenticator: registration, a stepped-up vote, and the refusals of a
//! ballot without an assertion, with one for another vote or choice, or replayed.
//!
//! The media plane end to end: headless Chromium with a fake camera and
//! microphone publishes through the SFU from the room app (`/room`, WHIP) and the hall
//! display (`/display`, WHEP) must decode the pictures (`framesDecoded` in its own WebRTC
//! stats); a room app whose token the server refuses must fall back to its login form. The
//! real binary and Chromium run in a network namespace of their own with only loopback,
//! driven by playwright-core from `tests/browser/media.mjs` (on the harness in
//! `tests/browser/harness.mjs`), which also photographs both pages and checks them with
//! axe-core.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `unshare` flags that give a new network namespace here, if any do. A PID namespace
/// too where possible: killing `unshare` then takes the server and Chromium with it.
fn namespace_flags() -> Option<&'static [&'static str]> {
    [
        &["-n", "-p", "-f", "--kill-child"][..],
        &["-r", "-n", "-p", "-f", "--kill-child"][..],
        &["-n"][..],
        &["-r", "-n"][..],
    ]
    .into_iter()
    .find(|flags| {
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

/// One browser test at a time: each starts a server and a browser on a two-core machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `tests/browser/<script>` with node in a network namespace with only loopback, with
/// `args`; returns its result line, or None when the browser tools are missing (allowed
/// only without DIENHONG_REQUIRE_BROWSER).
fn run_script(script: &str, args: &[&str], limit: Duration) -> Option<serde_json::Value> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    let flags = namespace_flags();
    let ready = flags.is_some()
        && available("chromium", &["--version"])
        && available(
            "node",
            &[
                "-e",
                "process.exit(+process.versions.node.split('.')[0] >= 20 ? 0 : 1)",
            ],
        )
        && std::path::Path::new(dir)
            .join("node_modules/playwright-core/package.json")
            .exists();
    if !ready {
        assert!(
            std::env::var_os("DIENHONG_REQUIRE_BROWSER").is_none(),
            "DIENHONG_REQUIRE_BROWSER is set but chromium, node 20 or newer, tests/browser/node_modules (npm ci) or a network namespace is missing (scripts/test-deps.sh installs the first three)"
        );
        eprintln!(
            "skipped: chromium, node 20+, tests/browser/node_modules or unshare is not available"
        );
        return None;
    }
    let script = format!("{dir}/{script}");
    let mut child = Command::new("unshare")
        .args(flags.unwrap_or_default())
        .args(["sh", "-c", "ip link set lo up && exec node \"$@\"", "sh"])
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare");
    // Read the output as it comes, so a full pipe never stalls the script.
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = reader.join().expect("output");
    let result: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("no result line ({e}): {out}"));
    println!("{result}");
    assert!(status.success(), "{result}");
    assert_eq!(result["ok"], true, "{result}");
    Some(result)
}

#[test]
fn chromium_publishes_through_the_sfu_and_the_hall_display_decodes_the_pictures() {
    let bin = env!("CARGO_BIN_EXE_dienhong");
    let Some(result) = run_script(
        "media.mjs",
        &["--bin", bin, "--seconds", "40"],
        Duration::from_secs(180),
    ) else {
        return;
    };
    assert_eq!(result["room_state"], "live", "{result}");
    assert!(
        result["frames_decoded"].as_u64().unwrap_or(0) > 0,
        "the display decoded no frame: {result}"
    );
    assert!(
        result["invalid_token"]["login_shown_after_ms"].is_u64(),
        "the room app with a refused token did not show its login form: {result}"
    );
}

#[test]
fn the_deputy_app_runs_over_https_from_the_dev_certificate_as_a_secure_context() {
    let bin = env!("CARGO_BIN_EXE_dienhong");
    let Some(result) = run_script("tls.mjs", &["--bin", bin], Duration::from_secs(120)) else {
        return;
    };
    assert_eq!(result["secure"], true, "{result}");
    assert!(
        result["refusal"]
            .as_str()
            .is_some_and(|r| r.contains("ERR_CERT")),
        "{result}"
    );
}

#[test]
fn ballots_are_confirmed_with_a_passkey_in_chromiums_virtual_authenticator() {
    let bin = env!("CARGO_BIN_EXE_dienhong");
    let Some(result) = run_script("passkey.mjs", &["--bin", bin], Duration::from_secs(180)) else {
        return;
    };
    let refusals = &result["refusals"];
    assert_eq!(refusals["without"], "step_up_required", "{result}");
    assert_eq!(refusals["otherChoice"], "step_up_mismatch", "{result}");
    assert_eq!(refusals["otherVote"], "step_up_mismatch", "{result}");
    assert_eq!(refusals["replayed"], "step_up_used", "{result}");
    assert_eq!(
        refusals["resent"][0], refusals["resent"][1],
        "a resent command gets its first outcome: {result}"
    );
    assert_eq!(
        result["second_passkey_without_step_up"], "step_up_required",
        "{result}"
    );
    assert_eq!(result["enrol_replayed"], "step_up_used", "{result}");
    assert!(
        result["sign_count"].as_u64().is_some_and(|n| n >= 1),
        "{result}"
    );
    for lang in ["vi", "en"] {
        assert!(
            result["minutes"][lang]["bytes"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "no {lang} minutes downloaded: {result}"
        );
    }
}

#[test]
fn a_deputy_the_sfu_has_no_room_for_is_told_so_and_asks_again_after_retry_after() {
    let bin = env!("CARGO_BIN_EXE_dienhong");
    let Some(result) = run_script("overload.mjs", &["--bin", bin], Duration::from_secs(120)) else {
        return;
    };
    assert!(
        result["retry_gap_ms"].as_u64().is_some_and(|g| g >= 5_000),
        "{result}"
    );
}

#[test]
fn a_whole_sitting_runs_from_the_browsers_with_a_full_chamber() {
    let bin = env!("CARGO_BIN_EXE_dienhong");
    let load = env!("CARGO_BIN_EXE_dienhong-load");
    let Some(result) = run_script(
        "sitting.mjs",
        &["--bin", bin, "--load-bin", load],
        Duration::from_secs(420),
    ) else {
        return;
    };
    assert_eq!(result["present"], 500, "{result}");
    assert_eq!(result["ballots"], 500, "{result}");
    assert!(
        result["timings"]["grant_to_first_frame_ms"].is_u64(),
        "the display showed no picture after the grant: {result}"
    );
}
