//! What the runtime tells the daemon.

use std::net::IpAddr;

use serde::Serialize;

use crate::healthcheck::Health;
use crate::spec::OnFailure;

/// The BGP ORIGIN attribute of a [`PluginRoute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// IGP (the default).
    #[default]
    Igp,
    /// EGP.
    Egp,
    /// INCOMPLETE.
    Incomplete,
}

/// A route requested by a plugin through the `routes` interface; the
/// prefix is validated and canonical, the rest is as the plugin gave it
/// (the daemon parses the communities).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginRoute {
    /// Canonical CIDR text, e.g. "100.10.0.100/32".
    pub prefix: String,
    /// NEXT_HOP; `None` means self.
    pub next_hop: Option<IpAddr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ORIGIN.
    pub origin: Origin,
    /// AS numbers to prepend, leftmost first.
    pub as_path: Vec<u32>,
    /// Standard communities, "65000:100" or well-known names.
    pub communities: Vec<String>,
    /// Large communities, "65000:1:2".
    pub large_communities: Vec<String>,
    /// Extended communities, "target:65000:100".
    pub extended_communities: Vec<String>,
}

/// An event from a running plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginEvent {
    /// A health transition after hysteresis (never a steady state).
    /// After a [`PluginEvent::Failed`], the next verdict is always sent,
    /// even if it equals the one before the fault.
    Health {
        /// The plugin's name.
        plugin: String,
        /// The new health.
        health: Health,
        /// The last check's message (or "disabled by operator").
        reason: String,
    },
    /// The plugin's instance died (trap, deadline, memory cap, panic, init
    /// error) and will be restarted with backoff; the daemon applies
    /// `on_failure` to its routes.
    Failed {
        /// The plugin's name.
        plugin: String,
        /// What happened.
        error: String,
        /// The plugin's `on-failure` setting.
        on_failure: OnFailure,
    },
    /// A route announced through the `routes` interface (already checked
    /// against the grants and `max-routes`).
    Announce {
        /// The plugin's name.
        plugin: String,
        /// The route.
        route: PluginRoute,
        /// The neighbors to send it to (granted ones only, never empty).
        neighbors: Vec<IpAddr>,
    },
    /// A withdrawal through the `routes` interface.
    Withdraw {
        /// The plugin's name.
        plugin: String,
        /// Canonical CIDR text.
        prefix: String,
        /// The neighbors to withdraw it from (never empty).
        neighbors: Vec<IpAddr>,
    },
}

/// Parses and canonicalises a CIDR prefix ("192.0.2.1/32"); host bits must
/// be zero.
pub fn parse_prefix(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| format!("prefix {text:?} lacks /LENGTH"))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("prefix {text:?}: bad address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("prefix {text:?}: bad length"))?;
    let (bits, max) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32u8),
        IpAddr::V6(v6) => (u128::from(v6), 128u8),
    };
    if len > max {
        return Err(format!("prefix {text:?}: length above {max}"));
    }
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    if bits & !mask != 0 {
        return Err(format!("prefix {text:?} has host bits set"));
    }
    Ok(format!("{ip}/{len}"))
}

#[cfg(test)]
mod tests {
    use super::parse_prefix;

    #[test]
    fn prefixes() {
        assert_eq!(parse_prefix("100.10.0.100/32").unwrap(), "100.10.0.100/32");
        assert_eq!(parse_prefix("2001:0db8::/32").unwrap(), "2001:db8::/32");
        assert!(parse_prefix("10.0.0.1/24").is_err());
        assert!(parse_prefix("10.0.0.0/33").is_err());
        assert!(parse_prefix("10.0.0.0").is_err());
        assert_eq!(parse_prefix("0.0.0.0/0").unwrap(), "0.0.0.0/0");
    }
}
