use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::packet::attributes::{NextHop, PathAttributes};

/// How routes change on their way to one neighbor (RFC 4271 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPolicy {
    /// Our AS, prepended toward eBGP neighbors.
    pub local_as: u32,
    /// True when the neighbor is in another AS.
    pub ebgp: bool,
    /// The address `next-hop self` stands for on IPv4 routes.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The address `next-hop self` stands for on IPv6 routes.
    pub next_hop_v6: Option<Ipv6Addr>,
}

impl ExportPolicy {
    /// The attributes as sent to this neighbor for a route of the given family
    /// (`ipv6`): AS prepended and LOCAL_PREF dropped for eBGP, LOCAL_PREF 100 by default for
    /// iBGP, and `self` resolved to the session's local address.
    pub fn apply(&self, attrs: &PathAttributes, ipv6: bool) -> PathAttributes {
        let mut out = attrs.clone();
        if self.ebgp {
            out.as_path.prepend(self.local_as);
            out.local_pref = None;
        } else if out.local_pref.is_none() {
            out.local_pref = Some(100);
        }
        out.next_hop = match (attrs.next_hop, ipv6) {
            (Some(NextHop::Addr(a)), _) => Some(NextHop::Addr(a)),
            (_, false) => self.next_hop_v4.map(|a| NextHop::Addr(IpAddr::V4(a))),
            (_, true) => self.next_hop_v6.map(|a| NextHop::Addr(IpAddr::V6(a))),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::attributes::AsPath;

    fn policy(ebgp: bool) -> ExportPolicy {
        ExportPolicy {
            local_as: 65001,
            ebgp,
            next_hop_v4: Some("127.0.0.1".parse().unwrap()),
            next_hop_v6: Some("::ffff:127.0.0.1".parse().unwrap()),
        }
    }

    #[test]
    fn ebgp_prepends_and_drops_local_pref() {
        let attrs = PathAttributes {
            next_hop: Some(NextHop::Local),
            local_pref: Some(200),
            as_path: AsPath::from_sequence(vec![65010]),
            ..Default::default()
        };
        let out = policy(true).apply(&attrs, false);
        assert_eq!(out.as_path.to_string(), "65001 65010");
        assert_eq!(out.local_pref, None);
        assert_eq!(
            out.next_hop,
            Some(NextHop::Addr("127.0.0.1".parse().unwrap()))
        );
        let out6 = policy(true).apply(&attrs, true);
        assert_eq!(
            out6.next_hop,
            Some(NextHop::Addr("::ffff:127.0.0.1".parse().unwrap()))
        );
    }

    #[test]
    fn ibgp_keeps_path_and_defaults_local_pref() {
        let attrs = PathAttributes {
            next_hop: Some(NextHop::Addr("192.0.2.1".parse().unwrap())),
            ..Default::default()
        };
        let out = policy(false).apply(&attrs, false);
        assert!(out.as_path.segments.is_empty());
        assert_eq!(out.local_pref, Some(100));
        assert_eq!(out.next_hop, attrs.next_hop);
    }
}
