//! `bare-forward-webrtc`: the bare forwarding loop on webrtc-rs 0.21's async layer (see
//! `dienhong_media_load::bare_webrtc`), the yardstick of a straightforward webrtc-rs SFU.
//! Same command line as `bare-forward`; prints `listening on http://ADDR` once ready.

use anyhow::{Context, bail};
use clap::Parser;
use dienhong_media_load::{bare_webrtc, cpu};
use std::net::{SocketAddr, TcpListener};

/// Forwards every RTP packet of a WHIP publisher to every WHEP receiver: webrtc-rs peer
/// connections, one tokio thread, no authentication.
#[derive(Debug, Parser)]
#[command(name = "bare-forward-webrtc", version)]
struct Args {
    /// HTTP address for login, WHIP and WHEP.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The media address: webrtc-rs 0.21 binds a socket per peer connection, so only its IP
    /// is used and the port must be 0 (ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    udp: SocketAddr,
    /// Pin to these CPUs (comma-separated).
    #[arg(long, value_delimiter = ',')]
    cpu: Vec<usize>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if !a.cpu.is_empty() {
        cpu::pin(&a.cpu).with_context(|| format!("pinning to CPUs {:?}", a.cpu))?;
    }
    if a.udp.port() != 0 {
        bail!(
            "--udp {}: webrtc-rs 0.21 binds one socket per peer connection and cannot share a port; give port 0",
            a.udp
        );
    }
    let http = TcpListener::bind(a.listen).context("HTTP listener")?;
    eprintln!(
        "media on udp {}:0 (a socket per peer connection)",
        a.udp.ip()
    );
    eprintln!("listening on http://{}", http.local_addr()?);
    bare_webrtc::serve(http, a.udp.ip())?;
    Ok(())
}
