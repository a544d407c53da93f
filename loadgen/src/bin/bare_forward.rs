//! `bare-forward`: the bare str0m forwarding loop (see `dienhong_media_load::bare`), the
//! yardstick the SFU is compared with. Prints `listening on http://ADDR` once ready.

use anyhow::Context;
use clap::Parser;
use dienhong_media_load::bare;
use dienhong_media_load::bare_cli::BareArgs;
use std::net::UdpSocket;

/// Forwards every RTP packet of a WHIP publisher to every WHEP receiver: one UDP socket,
/// one thread, no authentication.
#[derive(Debug, Parser)]
#[command(name = "bare-forward", version)]
struct Args {
    #[command(flatten)]
    bare: BareArgs,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse().bare;
    let http = a.start()?;
    let udp = UdpSocket::bind(a.udp).context("media socket")?;
    eprintln!("media on udp {}", udp.local_addr()?);
    eprintln!("listening on http://{}", http.local_addr()?);
    bare::serve(http, udp)?;
    Ok(())
}
