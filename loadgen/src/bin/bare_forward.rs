//! `bare-forward`: the bare str0m forwarding loop (see `dienhong_media_load::bare`), the
//! yardstick the SFU is compared with. Prints `listening on http://ADDR` once ready.

use anyhow::Context;
use clap::Parser;
use dienhong_media_load::{bare, cpu};
use std::net::{SocketAddr, TcpListener, UdpSocket};

/// Forwards every RTP packet of a WHIP publisher to every WHEP receiver: one UDP socket,
/// one thread, no authentication.
#[derive(Debug, Parser)]
#[command(name = "bare-forward", version)]
struct Args {
    /// HTTP address for login, WHIP and WHEP.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The media socket's address.
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
    let http = TcpListener::bind(a.listen).context("HTTP listener")?;
    let udp = UdpSocket::bind(a.udp).context("media socket")?;
    eprintln!("media on udp {}", udp.local_addr()?);
    eprintln!("listening on http://{}", http.local_addr()?);
    bare::serve(http, udp)?;
    Ok(())
}
