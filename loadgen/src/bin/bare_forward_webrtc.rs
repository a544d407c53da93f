//! `bare-forward-webrtc`: the bare forwarding loop on webrtc-rs 0.21's async layer (see
//! `dienhong_media_load::bare_webrtc`), the yardstick of a straightforward webrtc-rs SFU.
//! Same command line as `bare-forward`; prints `listening on http://ADDR` once ready.

use anyhow::bail;
use clap::Parser;
use dienhong_media_load::bare_cli::BareArgs;
use dienhong_media_load::bare_webrtc;

/// Forwards every RTP packet of a WHIP publisher to every WHEP receiver: webrtc-rs peer
/// connections, one tokio thread, no authentication.
#[derive(Debug, Parser)]
#[command(name = "bare-forward-webrtc", version)]
struct Args {
    #[command(flatten)]
    bare: BareArgs,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse().bare;
    if a.udp.port() != 0 {
        bail!(
            "--udp {}: webrtc-rs 0.21 binds one socket per peer connection and cannot share a port; give port 0",
            a.udp
        );
    }
    let http = a.start()?;
    eprintln!(
        "media on udp {}:0 (a socket per peer connection)",
        a.udp.ip()
    );
    eprintln!("listening on http://{}", http.local_addr()?);
    bare_webrtc::serve(http, a.udp.ip())?;
    Ok(())
}
