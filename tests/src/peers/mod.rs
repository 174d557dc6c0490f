//! Drivers for the real BGP daemons the tests peer with.
//!
//! Each driver renders its daemon's configuration from a [`PeerSpec`],
//! starts the daemon in the foreground from a [`crate::workdir::WorkDir`]
//! (private control socket, pid file and log), and reads the daemon's view
//! of the session and of the routes through the daemon's own tool.

pub mod bird;
pub mod exabgp;
pub mod frr;
pub mod gobgp;
pub mod prometheus;
pub mod recorder;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::route::Route;
use crate::wait::{DEFAULT_TIMEOUT, wait_until};

/// The remote end of a peer's single BGP session.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Remote address (the session's far end).
    pub address: Ipv4Addr,
    /// Port the remote end listens on.
    pub port: u16,
    /// Remote AS.
    pub asn: u32,
}

/// Everything a driver needs to configure its daemon for one session.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// Work directory holding config, sockets, pid file and logs.
    pub dir: PathBuf,
    /// Router id and source/listen address of the daemon (a loopback address).
    pub address: Ipv4Addr,
    /// TCP port the daemon listens on for BGP.
    pub port: u16,
    /// The daemon's AS.
    pub asn: u32,
    /// The session's far end.
    pub remote: Remote,
    /// Hold time proposed by the daemon, in seconds.
    pub hold_time: u16,
    /// Next hop the daemon puts on the IPv4 routes it originates.
    pub next_hop4: Ipv4Addr,
    /// Next hop the daemon puts on the IPv6 routes it originates.
    pub next_hop6: Ipv6Addr,
    /// Routes the daemon originates toward the remote end. Only prefix,
    /// origin, MED, communities and large communities are used; next hops
    /// are `next_hop4`/`next_hop6`.
    pub originate: Vec<Route>,
    /// Extra TCP port for a daemon's control API, when it has one (GoBGP).
    pub api_port: u16,
}

impl PeerSpec {
    /// Whether the session is iBGP.
    pub fn is_ibgp(&self) -> bool {
        self.asn == self.remote.asn
    }
}

/// A real BGP daemon with one session toward [`PeerSpec::remote`].
pub trait Peer {
    /// Short daemon name, e.g. `bird`.
    fn kind(&self) -> &'static str;

    /// The spec the daemon was configured from.
    fn spec(&self) -> &PeerSpec;

    /// Writes the configuration (first time) and starts the daemon; returns
    /// once its control interface answers. Routes to originate that cannot
    /// be configured statically are injected here too.
    fn start(&mut self) -> Result<()>;

    /// Whether the daemon reports its session to the remote as Established.
    fn session_established(&self) -> Result<bool>;

    /// All routes the daemon learned from the remote (both families).
    fn received_routes(&self) -> Result<Vec<Route>>;

    /// One learned route with full attributes. The default looks it up in
    /// [`Peer::received_routes`]; drivers whose bulk listing is abridged
    /// override it.
    fn received_route(&self, prefix: &str) -> Result<Option<Route>> {
        let prefix = crate::route::canonical_prefix(prefix)?;
        Ok(self
            .received_routes()?
            .into_iter()
            .find(|route| route.prefix == prefix))
    }

    /// SIGKILLs the daemon (no NOTIFICATION is sent).
    fn kill(&mut self) -> Result<()>;

    /// Stops the daemon gracefully (SIGTERM, bounded wait, then SIGKILL).
    fn stop(&mut self) -> Result<()>;

    /// The daemon's logs (and event output) so far.
    fn log(&self) -> Result<String>;

    /// How this daemon logs a received Cease/Administrative Shutdown.
    fn cease_log_pattern(&self) -> &'static str;

    /// Whether the log shows a received Cease/Administrative Shutdown.
    fn received_cease(&self) -> Result<bool> {
        Ok(self.log()?.contains(self.cease_log_pattern()))
    }

    /// Whether the daemon drops IPv4 routes whose next hop is a loopback
    /// address (GoBGP does).
    fn rejects_loopback_next_hop(&self) -> bool {
        false
    }

    /// Kills and starts the daemon again with the same configuration.
    fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.start()
    }

    /// Waits until [`Peer::session_established`].
    fn wait_established(&self, timeout: Duration) -> Result<()> {
        wait_until(
            &format!(
                "{} session to {} to be Established",
                self.kind(),
                self.spec().remote.address
            ),
            timeout,
            || self.session_established(),
        )
    }
}

/// [`DEFAULT_TIMEOUT`] re-exported for driver code.
pub const TIMEOUT: Duration = DEFAULT_TIMEOUT;

/// Reads a file that may not exist yet as an empty string.
pub(crate) fn read_optional(path: &std::path::Path) -> Result<String> {
    use anyhow::Context;
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}
