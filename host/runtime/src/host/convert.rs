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
use wasmbgp_bgp::packet::flowspec::{BitmaskOp, Component, FlowPrefix, FlowSpec, NumericOp};
use wasmbgp_bgp::packet::prefix::{AFI_IPV4, AFI_IPV6};
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

/// A FlowSpec rule from WIT, checked and put in canonical order by the BGP core.
pub(crate) fn flow_rule_in(rule: &types::FlowRule) -> Result<FlowSpec, String> {
    let numeric = |ops: &[types::NumericOp]| -> Vec<NumericOp> {
        ops.iter()
            .map(|o| NumericOp {
                and: o.and_previous,
                lt: o.less,
                gt: o.greater,
                eq: o.equal,
                value: o.value,
            })
            .collect()
    };
    let bitmask = |ops: &[types::BitmaskOp]| -> Vec<BitmaskOp> {
        ops.iter()
            .map(|o| BitmaskOp {
                and: o.and_previous,
                not: o.negate,
                matches: o.all_bits,
                value: o.value,
            })
            .collect()
    };
    let prefix = |p: &types::FlowPrefix| -> Result<FlowPrefix, String> {
        match prefix_in(&p.prefix)? {
            Prefix::V4(v4) if p.offset == 0 => Ok(FlowPrefix::V4(v4)),
            Prefix::V4(v4) => Err(format!(
                "IPv4 prefix {v4} has offset {} (IPv4 has none)",
                p.offset
            )),
            Prefix::V6(v6) => Ok(FlowPrefix::V6 {
                prefix: v6,
                offset: p.offset,
            }),
            Prefix::Flow(_) => Err("a flow prefix is a prefix".into()),
        }
    };
    use types::FlowComponent as W;
    let components = rule
        .components
        .iter()
        .map(|c| {
            Ok(match c {
                W::Destination(p) => Component::Destination(prefix(p)?),
                W::Source(p) => Component::Source(prefix(p)?),
                W::Protocol(o) => Component::Protocol(numeric(o)),
                W::Port(o) => Component::Port(numeric(o)),
                W::DestinationPort(o) => Component::DestinationPort(numeric(o)),
                W::SourcePort(o) => Component::SourcePort(numeric(o)),
                W::IcmpType(o) => Component::IcmpType(numeric(o)),
                W::IcmpCode(o) => Component::IcmpCode(numeric(o)),
                W::TcpFlags(o) => Component::TcpFlags(bitmask(o)),
                W::PacketLength(o) => Component::PacketLength(numeric(o)),
                W::Dscp(o) => Component::Dscp(numeric(o)),
                W::Fragment(o) => Component::Fragment(bitmask(o)),
                W::FlowLabel(o) => Component::FlowLabel(numeric(o)),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let afi = if rule.ipv6 { AFI_IPV6 } else { AFI_IPV4 };
    FlowSpec::new(afi, &components).map_err(|e| e.0)
}

/// A FlowSpec rule as WIT carries it, components in the RFC's order (the BGP core's
/// canonical form: `flow_rule_in` of the result is the same rule).
pub(crate) fn flow_rule_out(rule: &FlowSpec) -> types::FlowRule {
    let numeric = |ops: &[NumericOp]| -> Vec<types::NumericOp> {
        ops.iter()
            .map(|o| types::NumericOp {
                and_previous: o.and,
                less: o.lt,
                greater: o.gt,
                equal: o.eq,
                value: o.value,
            })
            .collect()
    };
    let bitmask = |ops: &[BitmaskOp]| -> Vec<types::BitmaskOp> {
        ops.iter()
            .map(|o| types::BitmaskOp {
                and_previous: o.and,
                negate: o.not,
                all_bits: o.matches,
                value: o.value,
            })
            .collect()
    };
    let prefix = |p: &FlowPrefix| -> types::FlowPrefix {
        match *p {
            FlowPrefix::V4(v4) => types::FlowPrefix {
                prefix: types::Prefix {
                    address: address_out(IpAddr::V4(v4.addr())),
                    length: v4.len(),
                },
                offset: 0,
            },
            FlowPrefix::V6 { prefix, offset } => types::FlowPrefix {
                prefix: types::Prefix {
                    address: address_out(IpAddr::V6(prefix.addr())),
                    length: prefix.len(),
                },
                offset,
            },
        }
    };
    use types::FlowComponent as W;
    let components = rule
        .components()
        .iter()
        .map(|c| match c {
            Component::Destination(p) => W::Destination(prefix(p)),
            Component::Source(p) => W::Source(prefix(p)),
            Component::Protocol(o) => W::Protocol(numeric(o)),
            Component::Port(o) => W::Port(numeric(o)),
            Component::DestinationPort(o) => W::DestinationPort(numeric(o)),
            Component::SourcePort(o) => W::SourcePort(numeric(o)),
            Component::IcmpType(o) => W::IcmpType(numeric(o)),
            Component::IcmpCode(o) => W::IcmpCode(numeric(o)),
            Component::TcpFlags(o) => W::TcpFlags(bitmask(o)),
            Component::PacketLength(o) => W::PacketLength(numeric(o)),
            Component::Dscp(o) => W::Dscp(numeric(o)),
            Component::Fragment(o) => W::Fragment(bitmask(o)),
            Component::FlowLabel(o) => W::FlowLabel(numeric(o)),
        })
        .collect();
    types::FlowRule {
        ipv6: rule.afi() == AFI_IPV6,
        components,
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

    fn flow(text: &str) -> (FlowSpec, PathAttributes) {
        let f = words::flow::parse_flow_route(&words::tokenize(text), &PathAttributes::default())
            .unwrap();
        (f.rule, f.attrs)
    }

    #[test]
    fn flow_rules_round_trip() {
        for text in [
            "destination 192.0.2.10/32 source 198.51.100.0/24 protocol udp destination-port =53 discard",
            "destination 10.0.0.0/8 port [ >=1024&<=65535 =80 ] icmp-type 8 icmp-code 0 tcp-flags [ syn&!ack ] packet-length >1000 dscp 46 fragment [ is-fragment ] rate-limit 9600",
            "destination 2001:db8::/32 source 0:db8:1::/64/16 next-header tcp flow-label 74565 source-port 22 mark 10",
        ] {
            let (rule, _) = flow(text);
            let out = flow_rule_out(&rule);
            assert_eq!(out.ipv6, rule.afi() == AFI_IPV6, "{text}");
            assert_eq!(out.components.len(), rule.components().len(), "{text}");
            assert_eq!(flow_rule_in(&out).unwrap(), rule, "{text}");
        }
        let (rule, _) = flow("destination 2001:db8::/32 source 0:db8:1::/64/16 next-header tcp");
        let out = flow_rule_out(&rule);
        assert!(out.ipv6);
        assert!(matches!(
            &out.components[1],
            types::FlowComponent::Source(types::FlowPrefix {
                prefix: types::Prefix { length: 64, .. },
                offset: 16
            })
        ));
        let (rule, _) = flow("destination 192.0.2.0/24 protocol [ =6 =17 ]");
        let out = flow_rule_out(&rule);
        assert!(!out.ipv6);
        let types::FlowComponent::Destination(d) = &out.components[0] else {
            panic!("{out:?}")
        };
        assert!(matches!(
            d.prefix.address,
            types::IpAddress::V4(0xc000_0200)
        ));
        let types::FlowComponent::Protocol(ops) = &out.components[1] else {
            panic!("{out:?}")
        };
        assert_eq!(ops.len(), 2);
        assert!(
            ops.iter()
                .all(|o| o.equal && !o.less && !o.greater && !o.and_previous)
        );
        assert_eq!((ops[0].value, ops[1].value), (6, 17));
    }

    #[test]
    fn route_events_carry_flows_with_their_attribute_sets() {
        use crate::export::{RouteDirection, RouteEvent, Session};
        use std::sync::Arc;
        let (rule, attrs) = flow("destination 192.0.2.10/32 protocol udp discard");
        let (rule6, _) = flow("destination 2001:db8::1/128 next-header tcp");
        let attrs = Arc::new(attrs);
        let unicast = Arc::new(PathAttributes::default());
        let event = RouteEvent {
            session: Session {
                neighbor: "192.0.2.1".parse().unwrap(),
                peer_as: 65002,
                local_as: 65001,
            },
            direction: RouteDirection::Received,
            announced: vec![
                (Prefix::Flow(rule.clone()), attrs.clone()),
                (words::parse_prefix("10.0.0.0/8").unwrap(), unicast),
                (Prefix::Flow(rule6.clone()), attrs.clone()),
            ],
            withdrawn: vec![
                Prefix::Flow(rule6.clone()),
                words::parse_prefix("2001:db8::/32").unwrap(),
            ],
        };
        let out = routes_out(&event);
        assert_eq!(out.attributes.len(), 2);
        assert_eq!(out.v4_attributes, vec![1]);
        let rules = |l: &[types::FlowRule]| -> Vec<FlowSpec> {
            l.iter().map(|r| flow_rule_in(r).unwrap()).collect()
        };
        assert_eq!(rules(&out.flows), vec![rule.clone(), rule6.clone()]);
        assert_eq!(out.flow_attributes, vec![0, 0]);
        assert_eq!(
            out.attributes[0].extended_communities,
            vec![0x8006_0000_0000_0000]
        );
        assert_eq!(rules(&out.withdrawn_flows), vec![rule6]);
        assert_eq!(out.withdrawn_v6_lengths, vec![32]);
        assert!(out.withdrawn_v4_addresses.is_empty());
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

/// Exporter events to the WIT types: each route event's attribute sets once (routes
/// that share an allocation share an index), prefixes in columns.
pub(crate) fn events_out(events: &[std::sync::Arc<ExportEvent>], out: &mut Vec<wit_events::Event>) {
    for event in events {
        out.push(event_out(event));
    }
}

use super::bindings::exporter::wasmbgp::plugin::events as wit_events;
use crate::export::{
    ExportEvent, MessageDirection, PluginChange, RouteDirection, RouteEvent, Session, SessionState,
};

fn session_out(s: &Session) -> wit_events::Session {
    wit_events::Session {
        neighbor: address_out(s.neighbor),
        peer_as: s.peer_as,
        local_as: s.local_as,
    }
}

fn state_out(s: SessionState) -> wit_events::SessionState {
    match s {
        SessionState::Idle => wit_events::SessionState::Idle,
        SessionState::Connect => wit_events::SessionState::Connect,
        SessionState::Active => wit_events::SessionState::Active,
        SessionState::OpenSent => wit_events::SessionState::OpenSent,
        SessionState::OpenConfirm => wit_events::SessionState::OpenConfirm,
        SessionState::Established => wit_events::SessionState::Established,
    }
}

fn event_out(event: &ExportEvent) -> wit_events::Event {
    use wit_events::Event as E;
    match event {
        ExportEvent::Session {
            session,
            old,
            new,
            reason,
        } => E::Session(wit_events::StateChange {
            session: session_out(session),
            old: state_out(*old),
            new: state_out(*new),
            reason: reason.clone(),
        }),
        ExportEvent::Routes(routes) => E::Routes(routes_out(routes)),
        ExportEvent::EndOfRib { session, afi, safi } => E::EndOfRib(wit_events::EndOfRib {
            session: session_out(session),
            family: wit_events::Family {
                afi: *afi,
                safi: *safi,
            },
        }),
        ExportEvent::Notification {
            session,
            direction,
            code,
            subcode,
            data,
            description,
        } => E::Notification(wit_events::Notification {
            session: session_out(session),
            direction: match direction {
                MessageDirection::Sent => wit_events::MessageDirection::Sent,
                MessageDirection::Received => wit_events::MessageDirection::Received,
            },
            code: *code,
            subcode: *subcode,
            data: data.clone(),
            description: description.clone(),
        }),
        ExportEvent::Health {
            plugin,
            health,
            reason,
        } => E::Health(wit_events::HealthChange {
            plugin: plugin.clone(),
            health: match health {
                crate::Health::Up => types::Health::Up,
                crate::Health::Down => types::Health::Down,
                crate::Health::Disabled => types::Health::Disabled,
            },
            reason: reason.clone(),
        }),
        ExportEvent::Plugin {
            plugin,
            change,
            detail,
        } => E::Plugin(wit_events::PluginChange {
            plugin: plugin.clone(),
            kind: match change {
                PluginChange::Loaded => wit_events::PluginChangeKind::Loaded,
                PluginChange::Reloaded => wit_events::PluginChangeKind::Reloaded,
                PluginChange::Restarted => wit_events::PluginChangeKind::Restarted,
                PluginChange::Faulted => wit_events::PluginChangeKind::Faulted,
                PluginChange::Denied => wit_events::PluginChangeKind::Denied,
            },
            detail: detail.clone(),
        }),
    }
}

fn routes_out(r: &RouteEvent) -> wit_events::RouteUpdate {
    let count = |f: fn(&Prefix) -> bool| r.announced.iter().filter(|(p, _)| f(p)).count();
    let v4 = count(|p| matches!(p, Prefix::V4(_)));
    let v6 = count(|p| matches!(p, Prefix::V6(_)));
    let flows = r.announced.len() - v4 - v6;
    let mut out = wit_events::RouteUpdate {
        session: session_out(&r.session),
        direction: match r.direction {
            RouteDirection::ReceivedPrePolicy => wit_events::RouteDirection::ReceivedPrePolicy,
            RouteDirection::Received => wit_events::RouteDirection::Received,
            RouteDirection::Sent => wit_events::RouteDirection::Sent,
        },
        attributes: Vec::new(),
        v4_addresses: Vec::with_capacity(v4),
        v4_lengths: Vec::with_capacity(v4),
        v4_attributes: Vec::with_capacity(v4),
        v6_addresses: Vec::with_capacity(2 * v6),
        v6_lengths: Vec::with_capacity(v6),
        v6_attributes: Vec::with_capacity(v6),
        flows: Vec::with_capacity(flows),
        flow_attributes: Vec::with_capacity(flows),
        withdrawn_v4_addresses: Vec::new(),
        withdrawn_v4_lengths: Vec::new(),
        withdrawn_v6_addresses: Vec::new(),
        withdrawn_v6_lengths: Vec::new(),
        withdrawn_flows: Vec::new(),
    };
    let mut index: std::collections::HashMap<*const PathAttributes, u32> =
        std::collections::HashMap::new();
    // Runs of routes sharing one attribute set are the common case: skip the lookup.
    let mut last: Option<(*const PathAttributes, u32)> = None;
    for (prefix, attrs) in &r.announced {
        let key = std::sync::Arc::as_ptr(attrs);
        let i = match last {
            Some((k, i)) if k == key => i,
            _ => {
                let i = *index.entry(key).or_insert_with(|| {
                    out.attributes.push(attributes_out(attrs));
                    (out.attributes.len() - 1) as u32
                });
                last = Some((key, i));
                i
            }
        };
        match prefix {
            Prefix::V4(p) => {
                out.v4_addresses.push(u32::from(p.addr()));
                out.v4_lengths.push(p.len());
                out.v4_attributes.push(i);
            }
            Prefix::V6(p) => {
                let bits = u128::from(p.addr());
                out.v6_addresses.push((bits >> 64) as u64);
                out.v6_addresses.push(bits as u64);
                out.v6_lengths.push(p.len());
                out.v6_attributes.push(i);
            }
            Prefix::Flow(rule) => {
                out.flows.push(flow_rule_out(rule));
                out.flow_attributes.push(i);
            }
        }
    }
    for prefix in &r.withdrawn {
        match prefix {
            Prefix::V4(p) => {
                out.withdrawn_v4_addresses.push(u32::from(p.addr()));
                out.withdrawn_v4_lengths.push(p.len());
            }
            Prefix::V6(p) => {
                let bits = u128::from(p.addr());
                out.withdrawn_v6_addresses.push((bits >> 64) as u64);
                out.withdrawn_v6_addresses.push(bits as u64);
                out.withdrawn_v6_lengths.push(p.len());
            }
            Prefix::Flow(rule) => out.withdrawn_flows.push(flow_rule_out(rule)),
        }
    }
    out
}
