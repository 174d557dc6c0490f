//! The one place where routes change shape between the WIT types (`types.wit`) and the
//! BGP core's: addresses, prefixes and attribute sets, both ways.
//!
//! Outward (host → guest) conversions cannot fail. Inward ones check what the BGP core
//! relies on (prefix lengths and host bits) and say what is wrong, quoted for the log and
//! the plugin.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wasmbgp_bgp::packet::attributes::{
    Aggregator, AsPath, AsSegment, ExtendedCommunity, LargeCommunity, NextHop, Origin,
    PathAttributes, RawAttribute, SegmentKind,
};
use wasmbgp_bgp::{Ipv4Prefix, Ipv6Prefix, Prefix};

use super::bindings::wasmbgp::plugin::types;

/// An address as WIT carries it.
pub(crate) fn address_out(ip: IpAddr) -> types::IpAddress {
    match ip {
        IpAddr::V4(a) => types::IpAddress::V4(u32::from(a)),
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            types::IpAddress::V6(((bits >> 64) as u64, bits as u64))
        }
    }
}

/// An address from WIT.
pub(crate) fn address_in(ip: &types::IpAddress) -> IpAddr {
    match *ip {
        types::IpAddress::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
        types::IpAddress::V6((hi, lo)) => {
            IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
        }
    }
}

/// A prefix from WIT: the length must fit the family and the host bits must be zero.
pub(crate) fn prefix_in(prefix: &types::Prefix) -> Result<Prefix, String> {
    let bad = || {
        format!(
            "prefix {}/{} is not a valid prefix (length too long or host bits set)",
            address_in(&prefix.address),
            prefix.length
        )
    };
    match address_in(&prefix.address) {
        IpAddr::V4(a) => Ipv4Prefix::new_strict(a, prefix.length)
            .map(Prefix::V4)
            .ok_or_else(bad),
        IpAddr::V6(a) => Ipv6Prefix::new_strict(a, prefix.length)
            .map(Prefix::V6)
            .ok_or_else(bad),
    }
}

/// A prefix as WIT carries it.
#[cfg(test)]
pub(crate) fn prefix_out(prefix: &Prefix) -> types::Prefix {
    types::Prefix {
        address: address_out(prefix.addr()),
        length: prefix.len(),
    }
}

/// An attribute set as WIT carries it. `NextHop::Local` ("self") becomes `none`.
pub(crate) fn attributes_out(a: &PathAttributes) -> types::Attributes {
    types::Attributes {
        origin: match a.origin {
            Origin::Igp => types::Origin::Igp,
            Origin::Egp => types::Origin::Egp,
            Origin::Incomplete => types::Origin::Incomplete,
        },
        as_path: a
            .as_path
            .segments
            .iter()
            .map(|s| types::AsSegment {
                kind: match s.kind {
                    SegmentKind::Sequence => types::SegmentKind::Sequence,
                    SegmentKind::Set => types::SegmentKind::Set,
                    SegmentKind::ConfedSequence => types::SegmentKind::ConfedSequence,
                    SegmentKind::ConfedSet => types::SegmentKind::ConfedSet,
                },
                asns: s.asns.clone(),
            })
            .collect(),
        next_hop: match a.next_hop {
            Some(NextHop::Addr(ip)) => Some(address_out(ip)),
            Some(NextHop::Local) | None => None,
        },
        med: a.med,
        local_pref: a.local_pref,
        atomic_aggregate: a.atomic_aggregate,
        aggregator: a.aggregator.map(|g| types::Aggregator {
            asn: g.asn,
            address: u32::from(g.address),
        }),
        communities: a.communities.clone(),
        large_communities: a
            .large_communities
            .iter()
            .map(|c| (c.0[0], c.0[1], c.0[2]))
            .collect(),
        extended_communities: a
            .extended_communities
            .iter()
            .map(|c| u64::from_be_bytes(c.0))
            .collect(),
        unknown: a
            .unknown
            .iter()
            .map(|u| types::UnknownAttribute {
                flags: u.flags,
                code: u.code,
                value: u.value.clone(),
            })
            .collect(),
    }
}

/// Path attribute type codes the BGP core encodes itself: a plugin may not smuggle them in
/// as "unknown" attributes.
const KNOWN_CODES: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18, 32];

/// An attribute set from WIT. `next-hop: none` is `NextHop::Local` ("self") when
/// `none_is_self`, as on originated routes; otherwise it stays absent.
pub(crate) fn attributes_in(
    a: &types::Attributes,
    none_is_self: bool,
) -> Result<PathAttributes, String> {
    if let Some(u) = a.unknown.iter().find(|u| KNOWN_CODES.contains(&u.code)) {
        return Err(format!(
            "attribute type {} is not unknown: set it through its own field",
            u.code
        ));
    }
    if let Some(u) = a
        .unknown
        .iter()
        .find(|u| u.value.len() > usize::from(u16::MAX))
    {
        return Err(format!(
            "unknown attribute {} is longer than 65535 bytes",
            u.code
        ));
    }
    Ok(PathAttributes {
        origin: match a.origin {
            types::Origin::Igp => Origin::Igp,
            types::Origin::Egp => Origin::Egp,
            types::Origin::Incomplete => Origin::Incomplete,
        },
        as_path: AsPath {
            segments: a
                .as_path
                .iter()
                .filter(|s| !s.asns.is_empty())
                .map(|s| AsSegment {
                    kind: match s.kind {
                        types::SegmentKind::Sequence => SegmentKind::Sequence,
                        types::SegmentKind::Set => SegmentKind::Set,
                        types::SegmentKind::ConfedSequence => SegmentKind::ConfedSequence,
                        types::SegmentKind::ConfedSet => SegmentKind::ConfedSet,
                    },
                    asns: s.asns.clone(),
                })
                .collect(),
        },
        next_hop: match &a.next_hop {
            Some(ip) => Some(NextHop::Addr(address_in(ip))),
            None if none_is_self => Some(NextHop::Local),
            None => None,
        },
        med: a.med,
        local_pref: a.local_pref,
        atomic_aggregate: a.atomic_aggregate,
        aggregator: a.aggregator.map(|g| Aggregator {
            asn: g.asn,
            address: Ipv4Addr::from(g.address),
        }),
        communities: a.communities.clone(),
        large_communities: a
            .large_communities
            .iter()
            .map(|&(g, l1, l2)| LargeCommunity([g, l1, l2]))
            .collect(),
        extended_communities: a
            .extended_communities
            .iter()
            .map(|&c| ExtendedCommunity(c.to_be_bytes()))
            .collect(),
        unknown: a
            .unknown
            .iter()
            .map(|u| RawAttribute {
                flags: u.flags,
                code: u.code,
                value: u.value.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbgp_bgp::words;

    #[test]
    fn addresses_round_trip() {
        for text in ["192.0.2.1", "0.0.0.0", "2001:db8::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(address_in(&address_out(ip)), ip);
        }
        assert!(matches!(
            address_out("192.0.2.1".parse().unwrap()),
            types::IpAddress::V4(0xc000_0201)
        ));
        assert!(matches!(
            address_out("2001:db8::1".parse().unwrap()),
            types::IpAddress::V6((0x2001_0db8_0000_0000, 1))
        ));
    }

    #[test]
    fn prefixes_are_checked() {
        let p = words::parse_prefix("192.0.2.0/24").unwrap();
        assert_eq!(prefix_in(&prefix_out(&p)).unwrap(), p);
        let host_bits = types::Prefix {
            address: types::IpAddress::V4(0xc000_0201),
            length: 24,
        };
        assert!(prefix_in(&host_bits).unwrap_err().contains("192.0.2.1/24"));
        let too_long = types::Prefix {
            address: types::IpAddress::V4(0),
            length: 33,
        };
        assert!(prefix_in(&too_long).is_err());
    }

    #[test]
    fn attributes_round_trip() {
        let line = "10.0.0.0/8 next-hop 192.0.2.1 med 5 local-preference 7 as-path [ 65001 65002 ] community [ 65000:1 no-export ] large-community 1:2:3 extended-community target:65000:100";
        let route = words::parse_route(&words::tokenize(line), &PathAttributes::default()).unwrap();
        let out = attributes_out(&route.attrs);
        assert_eq!(out.communities, vec![(65000 << 16) | 1, 0xffff_ff01]);
        assert_eq!(attributes_in(&out, true).unwrap(), route.attrs);
        let mut local = route.attrs.clone();
        local.next_hop = Some(NextHop::Local);
        let out = attributes_out(&local);
        assert!(out.next_hop.is_none());
        assert_eq!(attributes_in(&out, true).unwrap(), local);
        assert_eq!(attributes_in(&out, false).unwrap().next_hop, None);
    }

    #[test]
    fn known_codes_are_not_unknown() {
        let mut a = attributes_out(&PathAttributes::default());
        a.unknown.push(types::UnknownAttribute {
            flags: 0xc0,
            code: 8,
            value: vec![0; 4],
        });
        assert!(attributes_in(&a, true).is_err());
    }
}
