//! The JSON shapes of `ctl show ... --json` (a stable interface: external checks parse it).

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::{PathAttributes, community_to_string};
use wasmbgp_bgp::packet::flowspec::TrafficAction;
use wasmbgp_bgp::words;

/// One neighbor in `show neighbors --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NeighborStatus {
    /// Peer address.
    pub address: IpAddr,
    /// Peer port.
    pub port: u16,
    /// Peer AS.
    pub peer_as: u32,
    /// Our AS.
    pub local_as: u32,
    /// Operator's description.
    pub description: Option<String>,
    /// FSM state: idle, connect, active, opensent, openconfirm, established.
    pub state: String,
    /// Seconds since Established, while up.
    pub uptime_secs: Option<f64>,
    /// Times the session reached Established.
    pub established_count: u64,
    /// Routes in the Adj-RIB-In.
    pub prefixes_received: usize,
    /// Of those, routes kept from a session that ended gracefully, until the peer
    /// sends them again (graceful restart).
    #[serde(default)]
    pub stale_routes: usize,
    /// Routes advertised on the current session.
    pub prefixes_sent: usize,
    /// Routes in the Adj-RIB-Out (advertised or waiting for the session).
    pub adj_rib_out: usize,
    /// UPDATE messages received.
    pub updates_received: u64,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// Why the session last went down.
    pub last_error: Option<String>,
    /// Negotiated families.
    pub families: Vec<String>,
    /// The peer's BGP identifier, once known.
    pub peer_id: Option<String>,
    /// TCP-MD5: `set` (where the key comes from is in the config; the key never
    /// appears), or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Max-prefixes per family, with the routes received (before import policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_limits: Vec<PrefixLimitStatus>,
}

/// One family's max-prefixes in `show neighbors`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct PrefixLimitStatus {
    /// The family.
    pub family: String,
    /// Routes received, before import policy.
    pub received: usize,
    /// The limit.
    pub limit: u32,
    /// `cease` or `warn`.
    pub action: String,
}

/// One route in `show adj-rib-in/out --json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct RouteRow {
    /// The neighbor the route is sent to or came from.
    pub neighbor: IpAddr,
    /// The prefix, or for a FlowSpec route its rule in ExaBGP's words.
    pub prefix: String,
    /// `ipv4-unicast`, `ipv6-unicast`, `ipv4-flowspec` or `ipv6-flowspec`.
    #[serde(default)]
    pub family: String,
    /// A FlowSpec route's traffic actions in ExaBGP's words (`rate-limit 9600`,
    /// `redirect 65001:999`), read from its extended communities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// Next hop (`self` for next-hop self before export).
    pub next_hop: Option<String>,
    /// igp, egp or incomplete.
    pub origin: String,
    /// The AS path, flattened.
    pub as_path: Vec<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// Standard communities, `A:B`.
    pub communities: Vec<String>,
    /// Large communities, `A:B:C`.
    pub large_communities: Vec<String>,
    /// Extended communities, e.g. `target:A:B`.
    pub extended_communities: Vec<String>,
    /// Where the route came from (Adj-RIB-Out only): config, ctl, plugin:NAME.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl RouteRow {
    /// A row for a route.
    pub fn new(
        neighbor: IpAddr,
        prefix: Prefix,
        attrs: &Arc<PathAttributes>,
        source: Option<String>,
    ) -> Self {
        let (prefix_text, actions) = match &prefix {
            Prefix::Flow(rule) => (
                rule.to_string(),
                attrs
                    .extended_communities
                    .iter()
                    .filter_map(TrafficAction::from_community)
                    .map(|a| a.to_string())
                    .collect(),
            ),
            unicast => (unicast.to_string(), Vec::new()),
        };
        RouteRow {
            neighbor,
            prefix: prefix_text,
            family: prefix.family().name(),
            actions,
            next_hop: attrs.next_hop.map(|n| n.to_string()),
            origin: attrs.origin.name().to_string(),
            as_path: attrs.as_path.asns().collect(),
            med: attrs.med,
            local_pref: attrs.local_pref,
            communities: attrs
                .communities
                .iter()
                .map(|c| community_to_string(*c))
                .collect(),
            large_communities: attrs
                .large_communities
                .iter()
                .map(ToString::to_string)
                .collect(),
            extended_communities: attrs
                .extended_communities
                .iter()
                .map(ToString::to_string)
                .collect(),
            source,
        }
    }

    /// ExaBGP-style text: `neighbor N PREFIX next-hop X med N ...` (see
    /// [`RouteRow::route_text`]).
    pub fn to_text(&self) -> String {
        format!("neighbor {} {}", self.neighbor, self.route_text())
    }

    /// The route in ExaBGP's words, as a route file or `announce route` takes them:
    /// `PREFIX next-hop X med N ...`; a FlowSpec route is `flow route RULE then ACTIONS
    /// ...`, its actions left out of the extended communities.
    pub fn route_text(&self) -> String {
        let flow = self.family.ends_with("flowspec");
        let mut s = match flow {
            false => self.prefix.clone(),
            true => format!("flow route {}", self.prefix),
        };
        if !self.actions.is_empty() {
            s += &format!(" then {}", self.actions.join(" "));
        }
        if let Some(nh) = &self.next_hop {
            s += &format!(" next-hop {nh}");
        }
        s += &format!(" origin {}", self.origin);
        if !self.as_path.is_empty() {
            let p: Vec<String> = self.as_path.iter().map(u32::to_string).collect();
            s += &format!(" as-path [ {} ]", p.join(" "));
        }
        if let Some(m) = self.med {
            s += &format!(" med {m}");
        }
        if let Some(l) = self.local_pref {
            s += &format!(" local-preference {l}");
        }
        let extended: Vec<String> = match flow {
            false => self.extended_communities.clone(),
            true => self
                .extended_communities
                .iter()
                .filter(|c| {
                    words::parse_extended_community(c)
                        .ok()
                        .and_then(|c| TrafficAction::from_community(&c))
                        .is_none()
                })
                .cloned()
                .collect(),
        };
        for (word, list) in [
            ("community", &self.communities),
            ("large-community", &self.large_communities),
            ("extended-community", &extended),
        ] {
            if !list.is_empty() {
                s += &format!(" {word} [ {} ]", list.join(" "));
            }
        }
        if let Some(src) = &self.source {
            s += &format!(" # {src}");
        }
        s
    }
}

/// A reply line on the control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// True on success.
    pub ok: bool,
    /// The command's output (success).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// What went wrong (failure).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Reply {
    /// A success.
    pub fn ok(output: impl Into<String>) -> Self {
        Reply {
            ok: true,
            output: output.into(),
            error: String::new(),
        }
    }

    /// A failure.
    pub fn err(error: impl Into<String>) -> Self {
        Reply {
            ok: false,
            output: String::new(),
            error: error.into(),
        }
    }
}
