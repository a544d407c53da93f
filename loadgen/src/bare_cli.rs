//! The command line the two bare forwarding loops share (`bare-forward`,
//! `bare-forward-webrtc`): where to listen, where the media goes, which CPUs to run on.

use crate::cpu;
use anyhow::Context;
use std::net::{SocketAddr, TcpListener};

/// Where a bare loop listens and runs.
#[derive(Debug, clap::Args)]
pub struct BareArgs {
    /// HTTP address for login, WHIP and WHEP.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The media address (`bare-forward-webrtc` binds a socket per peer connection: only its
    /// IP is used, and its port must be 0).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub udp: SocketAddr,
    /// Pin to these CPUs (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cpu: Vec<usize>,
}

impl BareArgs {
    /// Pins the process to the CPUs asked for and binds the HTTP listener.
    pub fn start(&self) -> anyhow::Result<TcpListener> {
        if !self.cpu.is_empty() {
            cpu::pin(&self.cpu).with_context(|| format!("pinning to CPUs {:?}", self.cpu))?;
        }
        TcpListener::bind(self.listen).context("HTTP listener")
    }
}
