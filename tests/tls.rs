//! TLS end to end with the real binary: `dev-cert` writes an authority and a certificate,
//! `serve` uses them for HTTPS and WSS (checked by rustls clients that trust only that
//! authority), every response carries the security headers, SIGHUP swaps the certificate
//! without dropping an open connection, and plain HTTP on a reachable address is refused.

mod support;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::{sigterm, spawn_binary_env};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_dienhong");

/// Runs `dienhong dev-cert --out dir`; returns its stdout.
fn dev_cert(dir: &Path) -> String {
    let out = std::process::Command::new(BIN)
        .args(["dev-cert", "--out"])
        .arg(dir)
        .args(["--name", "dienhong.test"])
        .output()
        .expect("dev-cert runs");
    assert!(
        out.status.success(),
        "dev-cert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ca_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("dev-ca.pem")).expect("dev-ca.pem")
}

/// An HTTPS client that trusts `ca` and nothing else.
fn https_trusting(ca: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("ca"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A rustls client configuration that trusts `ca` and nothing else.
fn rustls_trusting(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

async fn readyz(client: &reqwest::Client, port: u16) -> Result<reqwest::Response, reqwest::Error> {
    client
        .get(format!("https://localhost:{port}/readyz"))
        .send()
        .await
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).expect("json"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no message: {other:?}"),
        }
    }
}

#[tokio::test]
async fn https_and_wss_from_the_dev_certificate_with_security_headers_and_reload_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let printed = dev_cert(&certs);
    assert!(printed.contains("dienhong.test"), "{printed}");
    assert!(printed.contains("SPKI"), "{printed}");
    let ca1 = ca_of(&certs);
    let db = format!("sqlite:{}", dir.path().join("tls.db").display());
    let cert = certs.join("dev-cert.pem");
    let key = certs.join("dev-key.pem");
    let (child, addr, log) = spawn_binary_env(
        &[
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
        ],
        &[
            ("DIENHONG__SERVER__TLS_CERT", &cert.display().to_string()),
            ("DIENHONG__SERVER__TLS_KEY", &key.display().to_string()),
        ],
    );
    let port: u16 = addr
        .strip_prefix("https://")
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the server says it listens on https: {addr}"));

    // A client trusting the development authority gets the page, with the headers.
    let trusting = https_trusting(&ca1);
    let r = readyz(&trusting, port).await.expect("https works");
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // The pages too.
    let page = trusting
        .get(format!("https://localhost:{port}/deputy"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("content-security-policy"));

    // Real verification: a client that does not trust the authority is refused, and so is
    // plain HTTP on the TLS port.
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    assert!(readyz(&stranger, port).await.is_err());
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // Log in over HTTPS, take a ticket, open WSS with it.
    let login: Value = trusting
        .post(format!("https://localhost:{port}/api/login"))
        .json(&json!({"code": "DB001", "password": "demo"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["token"].as_str().expect("token").to_owned();
    let ticket: Value = trusting
        .post(format!("https://localhost:{port}/api/ws-ticket"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("ticket")
        .json()
        .await
        .expect("json");
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!(
            "wss://localhost:{port}/ws?ticket={}",
            ticket["ticket"].as_str().expect("ticket")
        ),
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(rustls_trusting(&ca1))),
    )
    .await
    .expect("wss opens");
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["actor"], "DB001");

    // A new authority and certificate in place of the old files, then SIGHUP.
    let second = dir.path().join("second");
    dev_cert(&second);
    let ca2 = ca_of(&second);
    assert_ne!(ca1, ca2);
    for f in ["dev-cert.pem", "dev-key.pem"] {
        std::fs::copy(second.join(f), certs.join(f)).expect("copy");
    }
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    let said = |needle: &str| {
        log.lock()
            .map(|l| l.iter().any(|x| x.contains(needle)))
            .unwrap_or(false)
    };
    for _ in 0..100 {
        if said("read again") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(said("read again"), "the reload was logged");
    // New connections get the new certificate: trusted by the new authority only.
    let r = readyz(&https_trusting(&ca2), port)
        .await
        .expect("new certificate served");
    assert_eq!(r.status(), 200);
    assert!(readyz(&https_trusting(&ca1), port).await.is_err());
    // The connection opened before the reload is still there.
    ws.send(Message::text(json!({"type": "ping", "v": 2}).to_string()))
        .await
        .expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    // Broken files: the reload fails, the certificate in use stays.
    std::fs::write(certs.join("dev-key.pem"), "not a key").expect("write");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    for _ in 0..100 {
        if said("stays") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(said("stays"), "the failed reload was logged");
    assert_eq!(
        readyz(&https_trusting(&ca2), port)
            .await
            .expect("still served")
            .status(),
        200
    );

    sigterm(&child);
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[test]
fn plain_http_on_a_reachable_address_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite:{}", dir.path().join("plain.db").display());
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--database", &db])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing plain HTTP"), "{err}");
    assert!(err.contains("tls_cert"), "{err}");
    // Nothing was started: no database was made.
    assert!(!dir.path().join("plain.db").exists());
}

#[test]
fn a_certificate_that_cannot_be_read_stops_the_start_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let db = format!("sqlite:{}", dir.path().join("x.db").display());
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .env("DIENHONG__SERVER__TLS_CERT", &missing)
        .env("DIENHONG__SERVER__TLS_KEY", &missing)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
}
