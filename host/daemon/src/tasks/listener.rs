//! Accepts BGP connections and hands each to its neighbor's task; unknown peers are refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::messages::NeighborMsg;

/// Binds `addr` (failing loudly, e.g. when the port is taken).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    info!(%addr, "listening for BGP connections");
    Ok(l)
}

/// Where each configured peer's connections go: its task's mailbox. The speaker
/// updates it when a reload adds, removes or replaces a neighbor.
#[derive(Debug, Clone, Default)]
pub struct Inbound(Arc<RwLock<HashMap<IpAddr, mpsc::UnboundedSender<NeighborMsg>>>>);

impl Inbound {
    /// Sends `address`'s connections to `mailbox` from now on.
    pub fn insert(&self, address: IpAddr, mailbox: mpsc::UnboundedSender<NeighborMsg>) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address, mailbox);
    }

    /// Refuses `address`'s connections from now on.
    pub fn remove(&self, address: &IpAddr) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(address);
    }

    fn get(&self, address: &IpAddr) -> Option<mpsc::UnboundedSender<NeighborMsg>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .cloned()
    }
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, neighbors: Inbound) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                super::pause_after_accept_error("BGP listener", &e).await;
                continue;
            }
        };
        let ip = match remote.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match neighbors.get(&ip) {
            Some(tx) => {
                let _ = tx.send(NeighborMsg::Inbound(stream));
            }
            None => warn!(%remote, "refused a connection from an unknown peer"),
        }
    }
}
