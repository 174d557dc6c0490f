//! Reading FlowSpec routes the host hands to policies and exporters: the WIT
//! rule ([`types::FlowRule`]) with accessors and text, its conversion to the
//! [`FlowRule`] builder type, and the traffic [`Action`]s of an attribute set
//! ([`Attributes::flow_actions`]).
//!
//! These are inherent methods and trait impls on the types of
//! [`crate::flow`] and [`crate::types`]; this module has nothing to import.

use std::fmt;
use std::net::Ipv4Addr;

use crate::flow::{Action, BitmaskMatch, FlowRule, NumericMatch, RouteTarget, community_type};
use crate::net::{Prefix, join_v6};
use crate::types::{self, Attributes, FlowComponent, IpAddress};

/// The SDK's prefix of a WIT prefix the host sent (it checked the length and
/// the host bits already).
fn prefix_of(prefix: &types::Prefix) -> Prefix {
    match prefix.address {
        IpAddress::V4(addr) => Prefix::V4 {
            addr,
            len: prefix.length,
        },
        IpAddress::V6(halves) => Prefix::V6 {
            addr: join_v6(halves),
            len: prefix.length,
        },
    }
}

impl types::FlowRule {
    /// The destination prefix, if the rule has one (an IPv6 rule may match
    /// it from a bit offset on: see [`types::FlowRule::components`]).
    pub fn destination(&self) -> Option<Prefix> {
        self.components.iter().find_map(|c| match c {
            FlowComponent::Destination(p) => Some(prefix_of(&p.prefix)),
            _ => None,
        })
    }

    /// The source prefix, if the rule has one.
    pub fn source(&self) -> Option<Prefix> {
        self.components.iter().find_map(|c| match c {
            FlowComponent::Source(p) => Some(prefix_of(&p.prefix)),
            _ => None,
        })
    }

    /// The rule as the SDK's [`FlowRule`] (ordered, hashable, printable,
    /// and buildable further). Allocates: prefer the accessors on a hot path.
    pub fn to_rule(&self) -> FlowRule {
        FlowRule::from_wit(self)
    }
}

impl fmt::Display for types::FlowRule {
    /// ExaBGP's words, as [`FlowRule`] prints them: `destination
    /// 192.0.2.10/32 protocol =udp destination-port =53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_rule().fmt(f)
    }
}

impl FlowRule {
    /// The builder form of a WIT rule (what the host sends policies and
    /// exporters). A rule that went through the host converts back to an
    /// equal WIT record with [`FlowRule::to_wit`].
    pub fn from_wit(rule: &types::FlowRule) -> FlowRule {
        let start = if rule.ipv6 {
            FlowRule::ipv6()
        } else {
            FlowRule::ipv4()
        };
        let numeric = |ops: &[types::NumericOp]| NumericMatch::from_ops(ops);
        let bitmask = |ops: &[types::BitmaskOp]| BitmaskMatch::from_ops(ops);
        rule.components
            .iter()
            .fold(start, |built, component| match component {
                FlowComponent::Destination(p) => {
                    built.destination_from_bit(prefix_of(&p.prefix), p.offset)
                }
                FlowComponent::Source(p) => built.source_from_bit(prefix_of(&p.prefix), p.offset),
                FlowComponent::Protocol(ops) => built.protocols(numeric(ops)),
                FlowComponent::Port(ops) => built.ports(numeric(ops)),
                FlowComponent::DestinationPort(ops) => built.destination_ports(numeric(ops)),
                FlowComponent::SourcePort(ops) => built.source_ports(numeric(ops)),
                FlowComponent::IcmpType(ops) => built.icmp_types(numeric(ops)),
                FlowComponent::IcmpCode(ops) => built.icmp_codes(numeric(ops)),
                FlowComponent::TcpFlags(ops) => built.tcp_flags(bitmask(ops)),
                FlowComponent::PacketLength(ops) => built.packet_length(numeric(ops)),
                FlowComponent::Dscp(ops) => built.dscps(numeric(ops)),
                FlowComponent::Fragment(ops) => built.fragment(bitmask(ops)),
                FlowComponent::FlowLabel(ops) => built.flow_label(numeric(ops)),
            })
    }
}

impl From<&types::FlowRule> for FlowRule {
    fn from(rule: &types::FlowRule) -> Self {
        FlowRule::from_wit(rule)
    }
}

/// The traffic-action community's sample bit (S).
const SAMPLE: u64 = 0x02;
/// The traffic-action community's T bit ([`Action::Continue`]).
const CONTINUE: u64 = 0x01;

/// The actions one extended community carries: none for a community that is
/// not a traffic action, two for a traffic-action community with both bits.
fn actions_of(community: u64, next_hop: Option<IpAddress>) -> [Option<Action>; 2] {
    use community_type::*;
    let kind = (community >> 48) as u16;
    let low32 = community as u32;
    let low16 = community as u16;
    // RFC 8955 §7.1, §7.2: a negative rate reads as 0.
    let rate = |bits: u32| {
        let rate = f32::from_bits(bits);
        if rate.is_sign_negative() && !rate.is_nan() {
            0.0
        } else {
            rate
        }
    };
    let one = |action| [Some(action), None];
    match kind {
        TRAFFIC_RATE_BYTES => {
            let bytes_per_second = rate(low32);
            if bytes_per_second == 0.0 {
                one(Action::Discard)
            } else {
                one(Action::RateLimit { bytes_per_second })
            }
        }
        TRAFFIC_RATE_PACKETS => one(Action::RateLimitPackets {
            packets_per_second: rate(low32),
        }),
        TRAFFIC_ACTION => [
            (community & SAMPLE != 0).then_some(Action::Sample),
            (community & CONTINUE != 0).then_some(Action::Continue),
        ],
        REDIRECT_AS2 => one(Action::Redirect(RouteTarget::As2 {
            asn: (community >> 32) as u16,
            value: low32,
        })),
        REDIRECT_IPV4 => one(Action::Redirect(RouteTarget::Ipv4 {
            address: Ipv4Addr::from((community >> 16) as u32),
            value: low16,
        })),
        REDIRECT_AS4 => one(Action::Redirect(RouteTarget::As4 {
            asn: (community >> 16) as u32,
            value: low16,
        })),
        TRAFFIC_MARKING => one(Action::Mark((community & 0x3f) as u8)),
        REDIRECT_TO_NEXT_HOP => match next_hop {
            Some(address) if community & 0x01 != 0 => one(Action::CopyToIp(address)),
            Some(address) => one(Action::RedirectToIp(address)),
            None => [None, None],
        },
        _ => [None, None],
    }
}

impl Attributes {
    /// The FlowSpec traffic actions among the extended communities (RFC 8955
    /// §7), in their order; other communities are skipped. A rate of 0 in
    /// bytes (or a negative one) reads as [`Action::Discard`]; a
    /// traffic-action community gives [`Action::Sample`] and/or
    /// [`Action::Continue`]; redirect-to-IP gives [`Action::RedirectToIp`] or
    /// [`Action::CopyToIp`] with the next hop, and nothing when there is no
    /// next hop. The informative AS of a rate is not kept. Allocates nothing.
    ///
    /// ```
    /// use wasmbgp_sdk::{Attributes, ExtendedCommunity};
    /// use wasmbgp_sdk::flow::Action;
    ///
    /// let attributes = Attributes::new()
    ///     .with_extended_community(ExtendedCommunity(Action::Mark(46).community()))
    ///     .with_extended_community(ExtendedCommunity(0x8006_0000_0000_0000));
    /// let actions: Vec<Action> = attributes.flow_actions().collect();
    /// assert_eq!(actions, [Action::Mark(46), Action::Discard]);
    /// ```
    pub fn flow_actions(&self) -> impl Iterator<Item = Action> + '_ {
        let next_hop = self.next_hop;
        self.extended_communities
            .iter()
            .flat_map(move |&c| actions_of(c, next_hop))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExtendedCommunity;
    use crate::flow::{Protocol, fragment_flags, tcp_flags};

    fn prefix(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    #[test]
    fn wit_rules_convert_back_to_the_builder() {
        let rules = [
            FlowRule::for_destination(prefix("192.0.2.10/32"))
                .source(prefix("198.51.100.0/24"))
                .protocol(Protocol::UDP)
                .destination_port(53),
            FlowRule::ipv4()
                .ports(NumericMatch::range(1024, 65535).or(NumericMatch::equal(80)))
                .source_ports(NumericMatch::below(10))
                .icmp_type(8)
                .icmp_code(0)
                .tcp_flags(
                    BitmaskMatch::all(tcp_flags::SYN).and(BitmaskMatch::none(tcp_flags::ACK)),
                )
                .packet_length(NumericMatch::above(1000))
                .dscp(46)
                .fragment(BitmaskMatch::any(fragment_flags::IS_FRAGMENT)),
            FlowRule::for_destination(prefix("2001:db8::/32"))
                .source_from_bit(prefix("::1234:0:0/96"), 64)
                .protocol(Protocol::TCP)
                .flow_label(NumericMatch::equal(0x12345)),
            FlowRule::ipv6().protocol(Protocol::ICMPV6),
        ];
        for rule in rules {
            let wit = rule.to_wit();
            let back = FlowRule::from_wit(&wit);
            assert_eq!(back, rule);
            assert_eq!(back.to_wit(), wit);
            assert_eq!(wit.to_string(), rule.to_string());
            assert_eq!(FlowRule::from(&wit), rule);
            assert_eq!(wit.to_rule(), rule);
        }
        let wit = FlowRule::for_destination(prefix("192.0.2.10/32"))
            .source(prefix("198.51.100.0/24"))
            .to_wit();
        assert_eq!(wit.destination(), Some(prefix("192.0.2.10/32")));
        assert_eq!(wit.source(), Some(prefix("198.51.100.0/24")));
        let wit = FlowRule::ipv6()
            .destination_from_bit(prefix("::1234:0:0/96"), 64)
            .to_wit();
        assert_eq!(wit.destination(), Some(prefix("::1234:0:0/96")));
        assert_eq!(wit.source(), None);
    }

    #[test]
    fn actions_are_read_from_the_extended_communities() {
        let hop: IpAddress = "192.0.2.254".parse().unwrap();
        let all = [
            Action::RateLimit {
                bytes_per_second: 9600.0,
            },
            Action::RateLimitPackets {
                packets_per_second: 100.0,
            },
            Action::Discard,
            Action::Sample,
            Action::Continue,
            Action::Redirect("65001:999".parse().unwrap()),
            Action::Redirect("192.0.2.1:7".parse().unwrap()),
            Action::Redirect("4200000000:7".parse().unwrap()),
            Action::Mark(46),
            Action::RedirectToIp(hop),
            Action::CopyToIp(hop),
        ];
        for action in all {
            let attributes = Attributes::new()
                .with_next_hop(hop)
                .with_extended_community(ExtendedCommunity(action.community()));
            let read: Vec<Action> = attributes.flow_actions().collect();
            assert_eq!(read, [action], "{action}");
        }
        // Sample and continue in one community; other communities skipped; a
        // negative rate is a discard; redirect to IP needs a next hop.
        let attributes = Attributes::new()
            .with_extended_community("target:65001:7".parse().unwrap())
            .with_extended_community(ExtendedCommunity(0x8007_0000_0000_0003))
            .with_extended_community(ExtendedCommunity(
                0x8006_0000_0000_0000 | u64::from((-5.0f32).to_bits()),
            ))
            .with_extended_community(ExtendedCommunity(0x0800_0000_0000_0000));
        let read: Vec<Action> = attributes.flow_actions().collect();
        assert_eq!(read, [Action::Sample, Action::Continue, Action::Discard]);
        assert_eq!(Attributes::new().flow_actions().count(), 0);
    }
}
