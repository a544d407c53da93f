//! The minutes of a sitting through the real server and the real binary: made from the log
//! of a sitting run by WebSocket clients, served to the secretariat only, as JSON, HTML and
//! CSV, with the signed checkpoints of the log; `dienhong export` gives the same minutes.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::ws::start;

#[tokio::test]
async fn the_minutes_carry_the_roll_call_and_the_signed_checkpoints_for_the_secretariat_only() {
    let s = start().await;
    let sitting = s.sitting();
    let mut chair = s.client("CHAIR").await;
    chair.ok(json!({"command": "open_sitting"})).await;
    let mut clerk = s.client("CLERK1").await;
    let mut d = s.client("DB007").await;
    d.ok(json!({"command": "check_in", "deputy": "DB007", "location": "hall"}))
        .await;
    clerk
        .ok(json!({"command": "check_in", "deputy": "DB008"}))
        .await;
    chair
        .ok(json!({"command": "set_current_item", "item": 2}))
        .await;
    chair
        .ok(json!({"command": "open_vote", "question": "Thông qua Luật <Chuyển đổi số>?", "method": "named", "rule": null, "window_secs": 300, "allow_change": true, "rerun_of": null}))
        .await;
    d.ok(json!({"command": "cast_ballot", "vote": 1, "choice": "yes"}))
        .await;
    clerk
        .ok(json!({"command": "record_ballot", "vote": 1, "deputy": "DB008", "choice": "no", "reason": "Thiết bị hỏng"}))
        .await;
    // A document for the chair's eyes only, published by the clerk.
    let (sha, size) = s.upload_pdf("CLERK1", "bao-cao").await;
    clerk
        .ok(json!({"command": "publish_document", "item": 2, "title": "Báo cáo mật", "media_type": "application/pdf", "size": size, "sha256": sha, "access": {"level": "restricted", "roles": ["chair"]}}))
        .await;
    let closed = chair.ok(json!({"command": "close_vote", "vote": 1})).await;

    let url = |q: &str| format!("http://{}/api/sittings/{sitting}/minutes?{q}", s.addr);
    let http = reqwest::Client::new();
    let get = |q: &str, token: Option<&str>| {
        let req = http.get(url(q));
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move { req.send().await.expect("get") }
    };
    // Not for a deputy, not without a token, not in an unknown format.
    assert_eq!(get("format=json", None).await.status(), 401);
    assert_eq!(get("format=json", Some(&d.token)).await.status(), 403);
    let bad = get("format=pdfx", Some(&clerk.token)).await;
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.expect("json");
    assert_eq!(bad["code"], "invalid_request");

    // The checkpoint of the vote's close is signed shortly after the ack.
    let mut minutes = Value::Null;
    for _ in 0..100 {
        minutes = get("format=json", Some(&clerk.token))
            .await
            .json()
            .await
            .expect("json");
        if minutes["checkpoints"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let checkpoints: Vec<dienhong::checkpoint::Checkpoint> =
        serde_json::from_value(minutes["checkpoints"].clone()).expect("checkpoints");
    assert_eq!(checkpoints.len(), 1, "{minutes:#}");
    assert_eq!(checkpoints[0].seq, closed);
    assert!(checkpoints[0].signature_holds());
    assert_eq!(checkpoints[0].public_key, s.app.signer().public_key());
    assert!(minutes["head"]["seq"].as_u64().is_some_and(|h| h >= closed));

    // The roll call: the deputy's own ballot and the clerk's entry with its reason.
    let vote = &minutes["votes"][0];
    assert_eq!(vote["question"], "Thông qua Luật <Chuyển đổi số>?");
    assert_eq!(vote["outcome"]["status"], "closed");
    let roll = vote["roll_call"].as_array().expect("roll call");
    let line = |code: &str| {
        roll.iter()
            .find(|r| r["deputy"]["id"] == code)
            .unwrap_or_else(|| panic!("{code} in {roll:?}"))
    };
    assert_eq!(line("DB007")["choice"], "yes");
    assert_eq!(line("DB007")["on_behalf"], Value::Null);
    assert_eq!(line("DB008")["choice"], "no");
    assert_eq!(line("DB008")["on_behalf"]["clerk"], "CLERK1");
    assert_eq!(line("DB008")["on_behalf"]["reason"], "Thiết bị hỏng");
    let attendance = minutes["attendance"].as_array().expect("attendance");
    assert_eq!(attendance.len(), 2);
    assert!(
        attendance
            .iter()
            .any(|a| a["deputy"]["id"] == "DB008" && a["by_clerk"] == "CLERK1")
    );

    // HTML: escaped, with its own policy (no script), as a download.
    let page = get("format=html&lang=en", Some(&chair.token)).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        page.headers()["content-disposition"]
            .to_str()
            .expect("disposition")
            .contains(".html")
    );
    let page = page.text().await.expect("text");
    assert!(page.contains("Roll call") && page.contains("Thiết bị hỏng"));
    assert!(page.contains("Luật &lt;Chuyển đổi số&gt;"));
    assert!(page.contains(&checkpoints[0].signature));

    // PDF: the Vietnamese text comes back out intact, and its counts are the JSON's.
    let pdf = get("format=pdf", Some(&chair.token)).await;
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf = pdf.bytes().await.expect("pdf").to_vec();
    let text = pdf_text(&pdf);
    for want in [
        "Thông qua Luật <Chuyển đổi số>?",
        "Thiết bị hỏng",
        "Danh sách biểu quyết",
        "Báo cáo mật",
        &checkpoints[0].head,
    ] {
        assert!(
            text.contains(want),
            "{want:?} not in the PDF's text: {text}"
        );
    }
    let tally = &vote["outcome"]["result"]["tally"];
    for (label, choice) in [
        ("Tán thành", "yes"),
        ("Không tán thành", "no"),
        ("Không biểu quyết", "abstain"),
    ] {
        let line = format!("{label}: {} (", tally[choice]);
        assert!(
            text.contains(&line),
            "{line:?} not in the PDF's text: {text}"
        );
    }
    let csv_roll = get("format=csv&table=roll_call", Some(&clerk.token))
        .await
        .text()
        .await
        .expect("csv");
    let yes_rows = csv_roll.lines().filter(|l| l.contains("Tán thành")).count();
    assert_eq!(Some(yes_rows as u64), tally["yes"].as_u64(), "{csv_roll}");
    write_first_page(&pdf);

    // CSV: UTF-8 with a byte-order mark, one row per check-in.
    let csv = get("format=csv&table=attendance", Some(&clerk.token))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&csv[..3], b"\xEF\xBB\xBF");
    assert_eq!(String::from_utf8_lossy(&csv[3..]).lines().count(), 3);

    // Each copy leaves out what its reader may not read: the clerk's has no restricted
    // document, the chair's has it.
    assert_eq!(minutes["documents"], json!([]), "{minutes:#}");
    let full: Value = get("format=json", Some(&chair.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(full["documents"][0]["versions"][0]["title"], "Báo cáo mật");

    // The CLI (the operator's copy, everything) gives the chair's minutes, apart from when
    // they were made.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dienhong"))
        .args(["export", "--sitting", &sitting, "--format", "json"])
        .args(["--database", &s.database_url()])
        .output()
        .expect("export runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cli: Value = serde_json::from_slice(&out.stdout).expect("json");
    cli["generated_at"] = full["generated_at"].clone();
    assert_eq!(cli, full);

    // The JSON minutes are a copy of the checkpoints that `verify` checks the log against.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("minutes.json");
    std::fs::write(&file, &out.stdout).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dienhong"))
        .args(["verify", "--database", &s.database_url(), "--checkpoint"])
        .arg(&file)
        .args(["--public-key", s.app.signer().public_key()])
        .output()
        .expect("verify runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(": ok").count(), 1, "{text}");
    s.stop().await;
}

/// The text of a PDF as poppler's `pdftotext` reads it (installed by `scripts/test-deps.sh`),
/// or as the server's own extractor does where poppler is missing; composed (NFC).
fn pdf_text(pdf: &[u8]) -> String {
    use unicode_normalization::UnicodeNormalization;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bien-ban.pdf");
    std::fs::write(&file, pdf).expect("write");
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            assert!(
                std::env::var_os("DIENHONG_REQUIRE_POPPLER").is_none(),
                "pdftotext (poppler-utils) is required here"
            );
            dienhong::documents::extract::text(
                dienhong::documents::sniff::Kind::Pdf,
                pdf,
                usize::MAX,
            )
        }
    };
    text.nfc().collect()
}

/// The PDF's first page as a picture (poppler's `pdftoppm`), beside the pages' screenshots.
fn write_first_page(pdf: &[u8]) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots folder");
    let file = dir.join("minutes.pdf");
    std::fs::write(&file, pdf).expect("write");
    let made = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&file)
        .arg(dir.join("minutes-page1"))
        .status();
    if std::env::var_os("DIENHONG_REQUIRE_POPPLER").is_some() {
        assert!(
            made.is_ok_and(|s| s.success()),
            "pdftoppm (poppler-utils) is required here"
        );
    }
}
