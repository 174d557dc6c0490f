//! Accepts BGP connections and hands each to its neighbor's task; unknown peers are refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::messages::NeighborMsg;
use crate::config::Md5Key;

/// Binds `addr` (failing loudly, e.g. when the port is taken).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    info!(%addr, "listening for BGP connections");
    Ok(l)
}

/// Where each configured peer's connections go: its task's mailbox; and the listening
/// sockets, which carry each peer's TCP-MD5 key (the kernel checks it on the SYN). The
/// speaker updates it when a reload adds, removes or replaces a neighbor.
#[derive(Debug, Clone, Default)]
pub struct Inbound(Arc<RwLock<Peers>>);

#[derive(Debug, Default)]
struct Peers {
    mailboxes: HashMap<IpAddr, mpsc::Sender<NeighborMsg>>,
    listeners: Vec<Arc<TcpListener>>,
}

impl Inbound {
    /// Listens on `listener` too (before any peer is inserted). Its SYNs are kept, for
    /// GTSM to check before reading anything.
    pub fn add_listener(&self, listener: Arc<TcpListener>) {
        if let Err(e) = super::sockopt::save_syn(listener.as_ref()) {
            warn!(error = %e, "cannot keep SYNs on a listening socket: ttl-security cannot check peers that connect");
        }
        self.write().listeners.push(listener);
    }

    /// Sends `address`'s connections to `mailbox` from now on, checked with `md5`.
    pub fn insert(
        &self,
        address: IpAddr,
        mailbox: mpsc::Sender<NeighborMsg>,
        md5: Option<&Md5Key>,
    ) {
        let mut peers = self.write();
        if let Some(key) = md5 {
            for l in &peers.listeners {
                // An IPv6 peer never connects to an IPv4 listener: nothing to set there.
                let ipv4_listener = l.local_addr().is_ok_and(|a| a.is_ipv4());
                if address.is_ipv6() && ipv4_listener {
                    continue;
                }
                if let Err(e) = super::sockopt::set_md5(l.as_ref(), address, Some(key.bytes())) {
                    // The config was checked; this is the kernel refusing (no TCP-MD5
                    // support): the session cannot come up, and the log says why.
                    warn!(neighbor = %address, error = %e, "cannot set the TCP-MD5 key on a listening socket");
                }
            }
        }
        peers.mailboxes.insert(address, mailbox);
    }

    /// Refuses `address`'s connections from now on.
    pub fn remove(&self, address: &IpAddr) {
        let mut peers = self.write();
        for l in &peers.listeners {
            let _ = super::sockopt::set_md5(l.as_ref(), *address, None);
        }
        peers.mailboxes.remove(address);
    }

    fn get(&self, address: &IpAddr) -> Option<mpsc::Sender<NeighborMsg>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .mailboxes
            .get(address)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Peers> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Accepts connections forever.
pub async fn serve(
    listener: Arc<TcpListener>,
    neighbors: Inbound,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut refusals = RefusalLog::default();
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
                if let Err(mpsc::error::TrySendError::Full(_)) =
                    tx.try_send(NeighborMsg::Inbound(stream))
                {
                    // Its task has a full mailbox: the peer will connect again.
                    warn!(%remote, "dropped a connection: the neighbor's task is busy");
                }
            }
            None => {
                metrics.unknown_peer_connection();
                if let Some(summary) = refusals.refused(std::time::Instant::now()) {
                    match summary {
                        Refusal::First => {
                            warn!(%remote, "refused a connection from an unknown peer")
                        }
                        Refusal::Since(n) => {
                            warn!(%remote, refused_since_last_line = n, "refused a connection from an unknown peer (more were refused; a scan logs one line per interval)")
                        }
                    }
                }
            }
        }
    }
}

/// How often at most a refused connection is logged: a scan of the BGP port must not
/// flood the journal.
const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Rate-limits the log of refused connections: the first of an interval is logged with
/// the number refused since the last line.
#[derive(Debug, Default)]
struct RefusalLog {
    last_line: Option<std::time::Instant>,
    unlogged: u64,
}

/// What to log for a refused connection.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The first in a while.
    First,
    /// This one, after `n` refused without a line.
    Since(u64),
}

impl RefusalLog {
    fn refused(&mut self, now: std::time::Instant) -> Option<Refusal> {
        match self.last_line {
            Some(t) if now.duration_since(t) < REFUSAL_LOG_INTERVAL => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last_line = Some(now);
                let n = std::mem::take(&mut self.unlogged);
                Some(if n == 0 {
                    Refusal::First
                } else {
                    Refusal::Since(n)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 500 refusals within a second make one line; the next interval's first line says
    /// how many went unlogged.
    #[test]
    fn a_scan_is_logged_once_per_interval() {
        let mut log = RefusalLog::default();
        let start = std::time::Instant::now();
        let lines: Vec<Refusal> = (0..500)
            .filter_map(|i| log.refused(start + std::time::Duration::from_millis(i * 2)))
            .collect();
        assert_eq!(lines, vec![Refusal::First]);
        assert_eq!(
            log.refused(start + REFUSAL_LOG_INTERVAL + std::time::Duration::from_secs(1)),
            Some(Refusal::Since(499))
        );
        assert_eq!(
            log.refused(start + 3 * REFUSAL_LOG_INTERVAL),
            Some(Refusal::First)
        );
    }
}
