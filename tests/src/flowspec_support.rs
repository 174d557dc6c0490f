//! FlowSpec (RFC 8955 for IPv4, RFC 8956 for IPv6, SAFI 133) support for the e2e tests:
//! one normalized form of a flow route ([`FlowRoute`]) that every peer's reader parses
//! into, the renderings that make GoBGP and BIRD originate a [`FlowRoute`], and the
//! parsers of each peer's output (tested below on captured outputs). The drivers call
//! them: `GoBgp::{with_flowspec, flow_routes, add_flow_route, del_flow_route}`,
//! `Bird::{with_flowspec, with_flow_routes, set_flow_routes, flow_routes}`,
//! `Frr::{with_flowspec, flow_routes}`, `ExaBgp::{with_flowspec, flow_routes}`.
//!
//! # The normalized form
//!
//! A [`FlowRoute`] is its family (`ipv4-flowspec` / `ipv6-flowspec`), its components by
//! type ([`Component`], named in ExaBGP's words, which are wasmbgp's) with a canonical
//! text each, and its traffic actions as sorted canonical texts. Two routes are the same
//! rule with the same actions exactly when they compare equal.
//!
//! - Prefixes: `10.0.0.0/24`; IPv6 `2001:db8:1::/48`, with an offset (RFC 8956)
//!   `1:db8:3::/64 offset 8`: the address keeps only the bits `offset..len` (bits before
//!   the offset match anything; BIRD prints them cleared too).
//! - Numeric components (protocol/next-header, ports, ICMP type and code, packet length,
//!   DSCP, flow label): operators `=`, `>`, `>=`, `<`, `<=`, `!=` before a decimal value,
//!   `true` and `false` alone; a term ANDed to the previous one starts with `&`, OR-ed
//!   terms are separated by a space: `=6 =17`, `>=1024&<=2048`, `<1000 >2000`. Protocol
//!   and ICMP type are numbers (the readers translate the names GoBGP and ExaBGP print).
//! - Bitmask components (tcp-flags, fragment): `!` (not), `=` (match: all bits) and the
//!   bits by name joined with `+`: TCP `fin syn rst push ack urg ece cwr` (ExaBGP's names),
//!   fragment `dont-fragment is-fragment first-fragment last-fragment`, other bits `0x..`;
//!   `&` and space as for numbers: `=syn&!ack`, `!=syn+ack`, `is-fragment`. For a single
//!   bit, "all bits" and "any bit" are the same test: the match flag is dropped there
//!   (BIRD prints `!is_fragment` for both), so `is-fragment` is op 0x00 or 0x01.
//! - Actions (the FlowSpec extended communities, RFC 8955 §7): `rate-limit 9600`
//!   (traffic-rate-bytes, the informative AS dropped), `discard` (rate 0),
//!   `rate-limit-packets 100` (0x800c), `action sample` / `action terminal` /
//!   `action sample-terminal` / `action none` (0x8007), `redirect 65001:999` (0x8008,
//!   AS-2), `redirect 192.0.2.1:7` (0x8108, IPv4), `redirect 4200000000:7` (0x8208, AS-4;
//!   the same text as AS-2 when the AS fits 16 bits), `mark 10` (0x8009),
//!   `redirect-to-nexthop` / `redirect-to-nexthop copy` (0x0800,
//!   draft-simpson-idr-flowspec-redirect), anything else `ext 0x<16 hex digits>`.
//!
//! Build expected routes with [`FlowRoute::new`], [`FlowRoute::matching`] and
//! [`FlowRoute::then`] (which canonicalize: `protocol tcp` reads as `=6`), or take the
//! rules of the tests: [`ddos_rule`], [`rate_limit_rule`], [`rich_rule`]. Compare a
//! peer's reader with [`FlowRoute::as_seen_by`] of the expected routes (FRR prints less
//! than it receives) and wait with [`wait_flow_routes`].
//!
//! # What each peer does (Debian: GoBGP 3.10, BIRD 2.0.12, FRR 8.4.4, ExaBGP 4.2.21)
//!
//! Validation (RFC 8955 §6 / RFC 9117: a rule is only feasible when its originator is
//! the best unicast route's for the destination): none of the four applies it here.
//! GoBGP 3.10 has no such check (it accepted rules from an eBGP neighbor for
//! destinations it had no unicast route to). BIRD's flow channels have `validate`
//! (default off); the config says `validate no` anyway. FRR 8.4 does not implement it
//! (every received path is `"valid": true`). ExaBGP keeps no RIB. So no unicast routes
//! are needed and any originator AS is accepted: wasmbgp (AS 65001 in the tests, eBGP)
//! can announce rules for any destination. Tested in `tests/flowspec_peers.rs`
//! (GoBGP AS 65270 toward a neighbor of AS 65001, and back from BIRD).
//!
//! Every reader fails when its tool does (`gobgp`, `birdc`, `vtysh` exit non-zero when
//! the daemon is gone, also checked by the test); ExaBGP's reader replays the events
//! file, so it reads the routes of the last session state it logged (a `state` event,
//! session down, clears them) and cannot tell that ExaBGP itself died.
//!
//! GoBGP (`gobgp global rib -a ipv4-flowspec -j`, paths from the neighbor have its
//! `neighbor-ip`): the JSON carries each component's raw operator bytes and values
//! (`{"type":5,"value":[{"op":145,"value":443}]}`, prefixes as `{"prefix":..}` plus
//! `"offset"` for IPv6) and typed actions (`{"type":128,"subtype":6,"as":0,"rate":9600}`,
//! `subtype 7` `terminal`/`sample`, `subtype 8` `"value":"65001:999"`, type 129
//! `"192.0.2.1:7"`, type 130 asdot `"64086.59904:7"`, `subtype 9` `"value":10`); unknown
//! communities (0x0800, 0x800c) as type, subtype and the 7 octets after the type in
//! base64. Lossless. Its CLI writes `==80` for equality, `tcp-flags =S&!A`, `fragment
//! is-fragment`, `label` for the flow label, `redirect A:V` (AS-4 only in asdot
//! `64086.59904:7`: `4200000000:7` is silently truncated to `65535:7`), `rate-limit N`,
//! `discard`, `mark N`, `action sample|terminal|sample-terminal`; no redirect-to-nexthop
//! nor rate-limit-packets. GoBGP sends no next hop (length 0). Quirks: IPv6 prefixes
//! with a non-zero offset are broken both ways: it encodes the whole prefix instead of
//! bits offset..len (BIRD answers NOTIFICATION 3/1 "Malformed attribute list", the
//! session resets) and decodes a correct encoding into garbage (`"nlri":null`, and the
//! text `gobgp global rib` panics with SIGSEGV); the reader fails on such a path.
//!
//! BIRD (`birdc show route table flowtab4 all protocol session`): `flow4 { dst
//! 192.0.2.0/24; proto 17; sport 53; }`, IPv6 `flow6 { src 2001:db8:1::/48; next header 6;
//! dport 80; }`; names `dst src proto|next header port dport sport icmp type icmp code
//! tcp flags length dscp fragment label`; numbers: `=` shown bare, `1024..2048` for
//! `>=1024&<=2048`, `> 1023`, AND ` && `, OR `,` (after `=`/`<=` before `=`/`>=`) or
//! ` || `; bitmasks as value/mask with `!`: `tcp flags 0x2/0x2 && 0x0/0x10` (=syn&!ack),
//! fragments by name `is_fragment` (match), `!!is_fragment` (no flag), `!is_fragment`
//! (not); offsets `dst 1:db8:3::/64 offset 8` (bits before the offset cleared). Actions
//! only as `BGP.ext_community: (generic, 0x80060000, 0x46160000)` (high and low 32 bits,
//! hex without leading zeros). Lossless. A flow route from the BGP session shows as long
//! as it is received; a withdrawal removes it. BIRD originates flow routes from a static
//! protocol (`route flow4 { ... } { bgp_ext_community.add((generic, ..)); };`), changed
//! with `birdc configure`. It sends flow routes without next hop and logs "Missing next
//! hop address" when receiving them (harmless). It is the only one of the four that
//! encodes and decodes IPv6 offsets as RFC 8956 says.
//!
//! FRR (`show bgp ipv4 flowspec json` for the paths and their `peerId`, `show bgp ipv4
//! flowspec detail json` for the actions, one JSON array per path, joined on the
//! component texts): `"to":"192.0.2.0/24"`, `"from"`, `"proto":"= 6 , = 17 "`,
//! `"port"`, `"dstp"`, `"srcp"`, `"type"`, `"code"`, `"tcp":"= 2,&∋ ! 16"`, `"pktlen"`,
//! `"dscp"`, `"pktfrag":"∋ 2"`, `"flwlbl"`; IPv6 prefixes `"2001:db8:2::/64/off 0"`;
//! `"ecomlist":"FS:rate 9600.000000 FS:redirect VRF RT:65001:999 FS:marking 10"`. Lossy:
//! numeric terms are joined by `,` whether AND or OR (the reader writes
//! `>=1024,<=2048`); the traffic-action flags are read from the wrong octet, always
//! "FS:action eval stops" (the reader writes `action ?`); unknown communities print
//! "UNK:128, 12" (the reader writes `ext 128:12`); redirect AS-2 and AS-4 print alike
//! (`RT:4200000000:7`), redirect-to-nexthop `FS:redirect IP 0x0` (the copy octet).
//! [`FlowRoute::as_seen_by`] (`"frr"`) turns an expected route into that view. FRR
//! resets the session (NOTIFICATION 3/9, "Error parsing NLRI") on a numeric `!=` or
//! `true` operator (it refuses lt and gt together) and on IPv6 prefixes with a
//! non-zero offset. It sends received flow routes on to its other neighbors, back to
//! the sender too (prepending its AS): the config denies every flow route out
//! (route-map `FLOW_OUT_NONE`), FRR cannot originate flow routes anyway.
//!
//! ExaBGP (its JSON API, `receive { parsed; update; }`): `"announce": { "ipv4 flow": {
//! "no-nexthop": [ { "destination-ipv4": [ "192.0.2.0/24" ], "protocol": [ "=udp" ],
//! ..., "string": "flow destination-ipv4 192.0.2.0/24 protocol =udp source-port =53" }
//! ] } }`; withdrawals as `"withdraw": { "ipv4 flow": [ { ... } ] }`, the same objects.
//! The reader parses the `string` (ExaBGP's config syntax): the per-component JSON lists
//! split multi-bit bitmasks into one string per bit, losing the difference between
//! `=syn+ack` and `=syn =ack`. Names: `destination-ipv4|ipv6`, `source-ipv4|ipv6`,
//! `protocol` (IPv6 `next-header`), `port`, `destination-port`, `source-port`,
//! `icmp-type`, `icmp-code`, `tcp-flags`, `packet-length`, `dscp` (IPv6
//! `traffic-class`), `fragment`, `flow-label`; IPv6 prefixes `2001:db8:2::/64/0`
//! (len/offset); protocols and ICMP types by name, `=unknown protocol type 58` and
//! `=unknown icmp type type 128` otherwise. Actions from each extended community's
//! `"value"` (the 8 octets as an integer: lossless; its `"string"` is empty for
//! redirect IPv4 and 0x800c). Quirks: an UPDATE carrying a redirect AS-4 community
//! (0x8208) kills the session without NOTIFICATION (ExaBGP drops the TCP connection,
//! every time it is resent); an IPv6 prefix with a non-zero offset is silently
//! ignored (no JSON event).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::wait::wait_for;

// ---------------------------------------------------------------------------
// The normalized form.

/// A FlowSpec family (SAFI 133).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowFamily {
    /// AFI 1, `ipv4-flowspec`.
    Ipv4,
    /// AFI 2, `ipv6-flowspec`.
    Ipv6,
}

impl FlowFamily {
    /// Both families.
    pub const ALL: [FlowFamily; 2] = [FlowFamily::Ipv4, FlowFamily::Ipv6];

    /// `ipv4-flowspec` or `ipv6-flowspec` (GoBGP's family names too).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4-flowspec",
            Self::Ipv6 => "ipv6-flowspec",
        }
    }

    /// Whether this is the IPv6 family.
    pub fn is_ipv6(self) -> bool {
        self == Self::Ipv6
    }
}

impl fmt::Display for FlowFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A component type (RFC 8955 §4.2.2, RFC 8956 §3), ordered by type code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// 1.
    Destination,
    /// 2.
    Source,
    /// 3: IP protocol (IPv6: next header).
    Protocol,
    /// 4.
    Port,
    /// 5.
    DestinationPort,
    /// 6.
    SourcePort,
    /// 7.
    IcmpType,
    /// 8.
    IcmpCode,
    /// 9.
    TcpFlags,
    /// 10.
    PacketLength,
    /// 11.
    Dscp,
    /// 12.
    Fragment,
    /// 13 (IPv6 only).
    FlowLabel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prefix,
    Numeric,
    Bitmask,
}

impl Component {
    /// Every component, in type-code order.
    pub const ALL: [Component; 13] = [
        Component::Destination,
        Component::Source,
        Component::Protocol,
        Component::Port,
        Component::DestinationPort,
        Component::SourcePort,
        Component::IcmpType,
        Component::IcmpCode,
        Component::TcpFlags,
        Component::PacketLength,
        Component::Dscp,
        Component::Fragment,
        Component::FlowLabel,
    ];

    /// The type code.
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0) as u8 + 1
    }

    /// The component of type `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// ExaBGP's (and wasmbgp's) name: `destination`, `destination-port`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Destination => "destination",
            Self::Source => "source",
            Self::Protocol => "protocol",
            Self::Port => "port",
            Self::DestinationPort => "destination-port",
            Self::SourcePort => "source-port",
            Self::IcmpType => "icmp-type",
            Self::IcmpCode => "icmp-code",
            Self::TcpFlags => "tcp-flags",
            Self::PacketLength => "packet-length",
            Self::Dscp => "dscp",
            Self::Fragment => "fragment",
            Self::FlowLabel => "flow-label",
        }
    }

    /// The component named `name` in ExaBGP's words, with its family variants
    /// (`destination-ipv4`, `next-header`, `traffic-class`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "destination" | "destination-ipv4" | "destination-ipv6" => Self::Destination,
            "source" | "source-ipv4" | "source-ipv6" => Self::Source,
            "protocol" | "next-header" => Self::Protocol,
            "port" => Self::Port,
            "destination-port" => Self::DestinationPort,
            "source-port" => Self::SourcePort,
            "icmp-type" => Self::IcmpType,
            "icmp-code" => Self::IcmpCode,
            "tcp-flags" => Self::TcpFlags,
            "packet-length" => Self::PacketLength,
            "dscp" | "traffic-class" => Self::Dscp,
            "fragment" => Self::Fragment,
            "flow-label" => Self::FlowLabel,
            _ => return None,
        })
    }

    fn kind(self) -> Kind {
        match self {
            Self::Destination | Self::Source => Kind::Prefix,
            Self::TcpFlags | Self::Fragment => Kind::Bitmask,
            _ => Kind::Numeric,
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One flow route in the normalized form (see the module docs): equal routes are the
/// same rule with the same actions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowRoute {
    /// The family.
    pub family: FlowFamily,
    /// Canonical text of each component present.
    pub matches: BTreeMap<Component, String>,
    /// Canonical texts of the actions, sorted.
    pub actions: Vec<String>,
}

impl FlowRoute {
    /// A rule of `family` without components nor actions.
    pub fn new(family: FlowFamily) -> Self {
        Self {
            family,
            matches: BTreeMap::new(),
            actions: Vec::new(),
        }
    }

    /// Adds (or replaces) `component` with `value` canonicalized (`tcp` → `=6`, `=80`,
    /// `>=1024&<=2048`, `=syn&!ack`, `2001:db8::/64 offset 8`, ...); panics on a value
    /// it cannot read (test data).
    pub fn matching(self, component: Component, value: &str) -> Self {
        self.try_matching(component, value)
            .unwrap_or_else(|e| panic!("bad {component} value {value:?}: {e:#}"))
    }

    /// [`FlowRoute::matching`], failing instead of panicking.
    pub fn try_matching(mut self, component: Component, value: &str) -> Result<Self> {
        let text = canonical_component(self.family, component, value)?;
        self.matches.insert(component, text);
        Ok(self)
    }

    /// Adds the action `action` canonicalized (`rate-limit 9600`, `discard`, `redirect
    /// 65001:999`, `mark 10`, `action sample`, ...); panics on an unknown one.
    pub fn then(self, action: &str) -> Self {
        self.try_then(action)
            .unwrap_or_else(|e| panic!("bad action {action:?}: {e:#}"))
    }

    /// [`FlowRoute::then`], failing instead of panicking.
    pub fn try_then(mut self, action: &str) -> Result<Self> {
        let text = Action::parse(action)?.to_string();
        self.actions.push(text);
        self.actions.sort();
        Ok(self)
    }

    /// The same rule without actions (to compare rules only).
    pub fn rule(&self) -> FlowRoute {
        FlowRoute {
            actions: Vec::new(),
            ..self.clone()
        }
    }

    /// Whether a prefix component has a non-zero IPv6 offset.
    pub fn has_offset(&self) -> bool {
        [Component::Destination, Component::Source]
            .iter()
            .filter_map(|c| self.matches.get(c))
            .any(|text| text.contains(" offset "))
    }

    /// Why `peer` (`gobgp`, `bird`, `frr`, `exabgp`) cannot receive this route intact,
    /// if it cannot (see the module docs); `None` when it can.
    pub fn unsupported_by(&self, peer: &str) -> Option<&'static str> {
        let numeric_neq_or_true = self.matches.iter().any(|(c, text)| {
            c.kind() == Kind::Numeric
                && text
                    .split([' ', '&'])
                    .any(|term| term.starts_with("!=") || term == "true")
        });
        let as4 = self.actions.iter().any(
            |a| matches!(Action::parse(a), Ok(Action::RedirectAs4 { asn, .. }) if asn > 0xffff),
        );
        match peer {
            "gobgp" if self.has_offset() => Some("GoBGP 3.10 mis-decodes IPv6 offsets"),
            "frr" if self.has_offset() => Some("FRR 8.4 resets the session on IPv6 offsets"),
            "frr" if numeric_neq_or_true => {
                Some("FRR 8.4 resets the session on a != or true operator")
            }
            "exabgp" if self.has_offset() => Some("ExaBGP 4.2 ignores IPv6 offsets"),
            "exabgp" if as4 => Some("ExaBGP 4.2 drops the session on a redirect AS-4"),
            _ => None,
        }
    }

    /// What `peer`'s reader returns for this route when it receives it: the route
    /// itself, except for FRR (`frr`), which joins numeric terms with `,` whether AND
    /// or OR, shows traffic-action flags as `action ?` and unknown communities as
    /// `ext TYPE:SUBTYPE` (rate-limit-packets: `ext 128:12`).
    pub fn as_seen_by(&self, peer: &str) -> FlowRoute {
        if peer != "frr" {
            return self.clone();
        }
        let mut route = self.clone();
        for (component, text) in route.matches.iter_mut() {
            if component.kind() == Kind::Numeric {
                *text = text.replace(['&', ' '], ",");
            }
        }
        route.actions = self
            .actions
            .iter()
            .map(|a| match Action::parse(a) {
                Ok(Action::TrafficAction { .. }) => "action ?".to_owned(),
                Ok(Action::RatePackets { .. }) => "ext 128:12".to_owned(),
                Ok(Action::Other(v)) if !is_target(v) => {
                    format!("ext {}:{}", v >> 56, (v >> 48) & 0xff)
                }
                _ => a.clone(),
            })
            .collect();
        route.actions.sort();
        route
    }

    /// The arguments after `gobgp global rib -a FAMILY add`: `match ... then ...`
    /// (`then accept` without actions). Fails on what GoBGP's CLI cannot say
    /// (rate-limit-packets, redirect-to-nexthop, `true`/`false`, multi-bit fragments).
    pub fn gobgp_args(&self) -> Result<Vec<String>> {
        let mut args = self.gobgp_match_args()?;
        args.push("then".into());
        if self.actions.is_empty() {
            args.push("accept".into());
        }
        for action in &self.actions {
            args.extend(Action::parse(action)?.gobgp_words()?);
        }
        Ok(args)
    }

    /// The arguments after `gobgp global rib -a FAMILY del`: `match ...`.
    pub fn gobgp_match_args(&self) -> Result<Vec<String>> {
        let mut args = vec!["match".to_owned()];
        for (component, text) in &self.matches {
            let name = match component {
                Component::FlowLabel => "label",
                other => other.name(),
            };
            args.push(name.into());
            match component.kind() {
                Kind::Prefix => {
                    let prefix = FlowPrefix::parse(self.family, text)?;
                    args.push(format!("{}/{}", prefix.addr, prefix.len));
                    if prefix.offset > 0 {
                        args.push(prefix.offset.to_string());
                    }
                }
                Kind::Numeric => {
                    for group in or_groups(&parse_numeric(*component, text)?) {
                        let mut arg = String::new();
                        for term in group {
                            if term.and {
                                arg.push('&');
                            }
                            let op = match (term.lt, term.gt, term.eq) {
                                (false, false, true) => "==",
                                (false, true, false) => ">",
                                (false, true, true) => ">=",
                                (true, false, false) => "<",
                                (true, false, true) => "<=",
                                (true, true, false) => "!=",
                                _ => bail!("GoBGP's CLI has no true/false operator"),
                            };
                            arg.push_str(&format!("{op}{}", term.value));
                        }
                        args.push(arg);
                    }
                }
                Kind::Bitmask => {
                    for group in or_groups(&parse_bitmask(*component, text)?) {
                        let mut arg = String::new();
                        for term in group {
                            if term.and {
                                arg.push('&');
                            }
                            arg.push_str(match (term.not, term.matches) {
                                (true, true) => "!=",
                                (true, false) => "!",
                                (false, true) => "=",
                                (false, false) => "",
                            });
                            arg.push_str(&gobgp_bits(*component, term.value)?);
                        }
                        args.push(arg);
                    }
                }
            }
        }
        Ok(args)
    }

    /// One `route flow4 { ... } { bgp_ext_community.add(...); };` line of a BIRD static
    /// protocol on a `flow4`/`flow6` channel.
    pub fn bird_static_route(&self) -> Result<String> {
        let mut out = format!(
            "route {} {{ ",
            if self.family.is_ipv6() {
                "flow6"
            } else {
                "flow4"
            }
        );
        for (component, text) in &self.matches {
            let name = match component {
                Component::Destination => "dst",
                Component::Source => "src",
                Component::Protocol if self.family.is_ipv6() => "next header",
                Component::Protocol => "proto",
                Component::Port => "port",
                Component::DestinationPort => "dport",
                Component::SourcePort => "sport",
                Component::IcmpType => "icmp type",
                Component::IcmpCode => "icmp code",
                Component::TcpFlags => "tcp flags",
                Component::PacketLength => "length",
                Component::Dscp => "dscp",
                Component::Fragment => "fragment",
                Component::FlowLabel => "label",
            };
            let value = match component.kind() {
                Kind::Prefix => {
                    let prefix = FlowPrefix::parse(self.family, text)?;
                    if prefix.offset > 0 {
                        format!("{}/{} offset {}", prefix.addr, prefix.len, prefix.offset)
                    } else {
                        format!("{}/{}", prefix.addr, prefix.len)
                    }
                }
                Kind::Numeric => {
                    let mut value = String::new();
                    for (i, term) in parse_numeric(*component, text)?.iter().enumerate() {
                        if i > 0 {
                            value.push_str(if term.and { " && " } else { " || " });
                        }
                        let op = match (term.lt, term.gt, term.eq) {
                            (false, false, true) => "=",
                            (false, true, false) => ">",
                            (false, true, true) => ">=",
                            (true, false, false) => "<",
                            (true, false, true) => "<=",
                            (true, true, false) => "!=",
                            _ => bail!("BIRD's config has no true/false operator"),
                        };
                        value.push_str(&format!("{op} {}", term.value));
                    }
                    value
                }
                Kind::Bitmask => {
                    let mut value = String::new();
                    for (i, term) in parse_bitmask(*component, text)?.iter().enumerate() {
                        if i > 0 {
                            value.push_str(if term.and { " && " } else { " || " });
                        }
                        let single = term.value.count_ones() == 1;
                        if *component == Component::Fragment && single {
                            // BIRD: `name` is match, `!name` is not (without match).
                            if term.not {
                                value.push('!');
                            }
                            value.push_str(&bits_text(*component, term.value).replace('-', "_"));
                        } else {
                            let v = term.value;
                            value.push_str(&match (term.not, term.matches) {
                                (false, true) => format!("0x{v:x}/0x{v:x}"),
                                (true, true) => format!("!0x{v:x}/0x{v:x}"),
                                (true, false) => format!("0x0/0x{v:x}"),
                                (false, false) => format!("!0x0/0x{v:x}"),
                            });
                        }
                    }
                    value
                }
            };
            out.push_str(&format!("{name} {value}; "));
        }
        out.push('}');
        if !self.actions.is_empty() {
            out.push_str(" {");
            for action in &self.actions {
                let c = Action::parse(action)?.to_community();
                out.push_str(&format!(
                    " bgp_ext_community.add((generic, 0x{:08x}, 0x{:08x}));",
                    c >> 32,
                    c & 0xffff_ffff
                ));
            }
            out.push_str(" }");
        }
        out.push(';');
        Ok(out)
    }
}

/// `ipv4-flowspec { source 10.0.0.0/24; protocol =6; } then { redirect 65001:999; }`.
impl fmt::Display for FlowRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {{", self.family)?;
        for (component, text) in &self.matches {
            write!(f, " {component} {text};")?;
        }
        f.write_str(" } then {")?;
        for action in &self.actions {
            write!(f, " {action};")?;
        }
        f.write_str(" }")
    }
}

/// The DDoS rule of the tests: source `10.0.0.0/24` (IPv6 `2001:db8:1::/48`),
/// destination-port `=80`, protocol tcp → redirect to route target `65001:999`.
pub fn ddos_rule(family: FlowFamily) -> FlowRoute {
    let source = match family {
        FlowFamily::Ipv4 => "10.0.0.0/24",
        FlowFamily::Ipv6 => "2001:db8:1::/48",
    };
    FlowRoute::new(family)
        .matching(Component::Source, source)
        .matching(Component::DestinationPort, "=80")
        .matching(Component::Protocol, "=tcp")
        .then("redirect 65001:999")
}

/// The rate-limit rule of the tests: destination `192.0.2.0/24` (IPv6
/// `2001:db8:2::/64`), protocol udp, source-port `=53` → rate-limit 9600 bytes/s.
pub fn rate_limit_rule(family: FlowFamily) -> FlowRoute {
    let destination = match family {
        FlowFamily::Ipv4 => "192.0.2.0/24",
        FlowFamily::Ipv6 => "2001:db8:2::/64",
    };
    FlowRoute::new(family)
        .matching(Component::Destination, destination)
        .matching(Component::Protocol, "=udp")
        .matching(Component::SourcePort, "=53")
        .then("rate-limit 9600")
}

/// A rule with every component of its family (IPv6 adds the flow label, without
/// offsets) and several actions, all of which GoBGP, BIRD, FRR and ExaBGP receive
/// (no `!=`, no redirect AS-4); GoBGP's CLI can originate it.
pub fn rich_rule(family: FlowFamily) -> FlowRoute {
    let route = match family {
        FlowFamily::Ipv4 => FlowRoute::new(family)
            .matching(Component::Destination, "198.51.100.0/24")
            .matching(Component::Source, "203.0.113.0/25")
            .matching(Component::Protocol, "=6 =17")
            .matching(Component::IcmpType, "=8")
            .then("discard")
            .then("action sample-terminal"),
        FlowFamily::Ipv6 => FlowRoute::new(family)
            .matching(Component::Destination, "2001:db8:3::/64")
            .matching(Component::Source, "2001:db8:4::/56")
            .matching(Component::Protocol, "=58")
            .matching(Component::IcmpType, "=128")
            .matching(Component::FlowLabel, "=12345 >=1000&<=2000")
            .then("rate-limit 1000")
            .then("action terminal"),
    };
    route
        .matching(Component::Port, ">=1024&<=2048")
        .matching(Component::DestinationPort, "=443 =8443")
        .matching(Component::SourcePort, ">1023")
        .matching(Component::IcmpCode, "=0")
        .matching(Component::TcpFlags, "=syn+ack&!rst")
        .matching(Component::PacketLength, ">=64&<=1500")
        .matching(Component::Dscp, "=46")
        .matching(Component::Fragment, "is-fragment")
        .then("redirect 192.0.2.1:7")
        .then("mark 10")
}

/// Rules with the actions GoBGP's CLI cannot originate and operators FRR refuses, which
/// BIRD originates toward GoBGP (no IPv6 offset: GoBGP cannot decode it).
pub fn bird_only_rules() -> Vec<FlowRoute> {
    vec![
        FlowRoute::new(FlowFamily::Ipv4)
            .matching(Component::Destination, "198.51.100.8/29")
            .matching(Component::DestinationPort, "!=80&<1000 >2000")
            .matching(Component::TcpFlags, "!=syn+ack")
            .matching(Component::Fragment, "!first-fragment")
            .then("rate-limit-packets 100")
            .then("redirect-to-nexthop")
            .then("redirect 4200000000:7")
            .then("action none"),
        FlowRoute::new(FlowFamily::Ipv6)
            .matching(Component::Destination, "2001:db8:5::/64")
            .matching(Component::Dscp, "=10")
            .matching(Component::FlowLabel, "=12345 >=1000&<=2000")
            .then("redirect-to-nexthop copy")
            .then("rate-limit 1000.5")
            .then("ext 0x0002fde900000007"),
    ]
}

/// Waits up to `timeout` until `read` returns exactly `expected` (in any order); the
/// timeout error shows the last routes read (or the reader's last error).
pub fn wait_flow_routes(
    what: &str,
    timeout: Duration,
    read: impl Fn() -> Result<Vec<FlowRoute>>,
    expected: &[FlowRoute],
) -> Result<()> {
    let mut want = expected.to_vec();
    want.sort();
    wait_for(what, timeout, || {
        let mut got = read()?;
        got.sort();
        if got == want {
            Ok(Some(()))
        } else {
            bail!("{}", describe_difference(&got, &want))
        }
    })
}

/// The routes in `got` and not in `want` and the other way round, one per line.
pub fn describe_difference(got: &[FlowRoute], want: &[FlowRoute]) -> String {
    let mut text = String::new();
    for route in got.iter().filter(|r| !want.contains(r)) {
        text.push_str(&format!("\n  unexpected: {route}"));
    }
    for route in want.iter().filter(|r| !got.contains(r)) {
        text.push_str(&format!("\n  missing:    {route}"));
    }
    if text.is_empty() {
        text = format!(
            "\n  (duplicates) got {} routes, want {}",
            got.len(),
            want.len()
        );
    }
    text
}

// ---------------------------------------------------------------------------
// Typed views of the canonical texts.

/// One numeric operator and value (RFC 8955 §4.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumTerm {
    and: bool,
    lt: bool,
    gt: bool,
    eq: bool,
    value: u64,
}

impl NumTerm {
    fn from_op(op: u8, value: u64) -> Self {
        Self {
            and: op & 0x40 != 0,
            lt: op & 0x04 != 0,
            gt: op & 0x02 != 0,
            eq: op & 0x01 != 0,
            value,
        }
    }

    fn op_text(self) -> &'static str {
        match (self.lt, self.gt, self.eq) {
            (false, false, true) => "=",
            (false, true, false) => ">",
            (false, true, true) => ">=",
            (true, false, false) => "<",
            (true, false, true) => "<=",
            (true, true, false) => "!=",
            (true, true, true) => "true",
            (false, false, false) => "false",
        }
    }
}

/// One bitmask operator and value (RFC 8955 §4.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BitTerm {
    and: bool,
    not: bool,
    matches: bool,
    value: u64,
}

impl BitTerm {
    fn from_op(op: u8, value: u64) -> Self {
        Self {
            and: op & 0x40 != 0,
            not: op & 0x02 != 0,
            matches: op & 0x01 != 0,
            value,
        }
    }
}

fn or_groups<T: Copy + HasAnd>(terms: &[T]) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    for term in terms {
        match groups.last_mut() {
            Some(group) if term.and_bit() => group.push(*term),
            _ => groups.push(vec![*term]),
        }
    }
    groups
}

trait HasAnd {
    fn and_bit(&self) -> bool;
}

impl HasAnd for NumTerm {
    fn and_bit(&self) -> bool {
        self.and
    }
}

impl HasAnd for BitTerm {
    fn and_bit(&self) -> bool {
        self.and
    }
}

fn numeric_text(terms: &[NumTerm]) -> String {
    let mut text = String::new();
    for (i, term) in terms.iter().enumerate() {
        if i > 0 {
            text.push_str(if term.and { "&" } else { " " });
        }
        text.push_str(term.op_text());
        if !matches!(term.op_text(), "true" | "false") {
            text.push_str(&term.value.to_string());
        }
    }
    text
}

fn bitmask_text(component: Component, terms: &[BitTerm]) -> String {
    let mut text = String::new();
    for (i, term) in terms.iter().enumerate() {
        if i > 0 {
            text.push_str(if term.and { "&" } else { " " });
        }
        if term.not {
            text.push('!');
        }
        // One bit: "all bits" and "any bit" are the same test.
        if term.matches && term.value.count_ones() != 1 {
            text.push('=');
        }
        text.push_str(&bits_text(component, term.value));
    }
    text
}

const TCP_FLAGS: [(u64, &str); 8] = [
    (0x01, "fin"),
    (0x02, "syn"),
    (0x04, "rst"),
    (0x08, "push"),
    (0x10, "ack"),
    (0x20, "urg"),
    (0x40, "ece"),
    (0x80, "cwr"),
];

const FRAGMENT_FLAGS: [(u64, &str); 4] = [
    (0x01, "dont-fragment"),
    (0x02, "is-fragment"),
    (0x04, "first-fragment"),
    (0x08, "last-fragment"),
];

fn flag_names(component: Component) -> &'static [(u64, &'static str)] {
    if component == Component::TcpFlags {
        &TCP_FLAGS
    } else {
        &FRAGMENT_FLAGS
    }
}

fn bits_text(component: Component, value: u64) -> String {
    if value == 0 {
        return "0".into();
    }
    let mut names = Vec::new();
    let mut rest = value;
    for (bit, name) in flag_names(component) {
        if value & bit != 0 {
            names.push((*name).to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("0x{rest:x}"));
    }
    names.join("+")
}

fn parse_bits(component: Component, text: &str) -> Result<u64> {
    let mut value = 0;
    for name in text.split('+') {
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        value |= if let Some((bit, _)) = flag_names(component).iter().find(|(_, n)| *n == name) {
            *bit
        } else if name == "urgent" {
            0x20
        } else if name == "not-a-fragment" {
            0
        } else {
            parse_number(&name).with_context(|| format!("unknown {component} bit {name:?}"))?
        };
    }
    Ok(value)
}

fn gobgp_bits(component: Component, value: u64) -> Result<String> {
    if component == Component::TcpFlags {
        ensure!(value <= 0xff, "GoBGP has no TCP flag above cwr");
        let letters = ["F", "S", "R", "P", "A", "U", "E", "C"];
        Ok((0..8)
            .filter(|i| value & (1 << i) != 0)
            .map(|i| letters[i])
            .collect())
    } else {
        ensure!(
            value.count_ones() == 1 && value <= 8,
            "GoBGP's CLI takes one fragment flag per term"
        );
        Ok(bits_text(component, value))
    }
}

fn parse_number(text: &str) -> Result<u64> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).with_context(|| format!("bad number {text:?}"))
    } else {
        text.parse().with_context(|| format!("bad number {text:?}"))
    }
}

/// Protocol names of GoBGP and ExaBGP.
const PROTOCOLS: [(&str, u64); 17] = [
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("igp", 9),
    ("udp", 17),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ospf", 89),
    ("pim", 103),
    ("sctp", 132),
    ("unknown", 255),
];

/// ICMP type names of ExaBGP.
const ICMP_TYPES: [(&str, u64); 21] = [
    ("echo-reply", 0),
    ("unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicit", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp", 13),
    ("timestamp-reply", 14),
    ("info-request", 15),
    ("info-reply", 16),
    ("mask-request", 17),
    ("mask-reply", 18),
    ("traceroute", 30),
    ("experimental-mobility", 41),
    ("extended-echo-request", 42),
    ("extended-echo-reply", 43),
    ("experimental-one", 253),
    ("experimental-two", 254),
];

fn numeric_value(component: Component, text: &str) -> Result<u64> {
    let text = text.trim();
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_number(text);
    }
    let names: &[(&str, u64)] = match component {
        Component::Protocol => &PROTOCOLS,
        Component::IcmpType => &ICMP_TYPES,
        _ => &[],
    };
    names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, v)| *v)
        .with_context(|| format!("unknown {component} value {text:?}"))
}

/// Parses the canonical numeric text (also `==`, bare numbers and names).
fn parse_numeric(component: Component, text: &str) -> Result<Vec<NumTerm>> {
    let mut terms = Vec::new();
    for group in text.split_whitespace() {
        for (i, term) in group.split('&').enumerate() {
            if term.is_empty() {
                continue;
            }
            let and = i > 0;
            let (op, rest) = [
                ("true", (true, true, true)),
                ("false", (false, false, false)),
                (">=", (false, true, true)),
                ("<=", (true, false, true)),
                ("!=", (true, true, false)),
                ("==", (false, false, true)),
                ("=", (false, false, true)),
                (">", (false, true, false)),
                ("<", (true, false, false)),
            ]
            .iter()
            .find_map(|(op, bits)| term.strip_prefix(op).map(|rest| (*bits, rest)))
            .unwrap_or(((false, false, true), term));
            let value =
                if rest.is_empty() && matches!(op, (true, true, true) | (false, false, false)) {
                    0
                } else {
                    numeric_value(component, rest)?
                };
            terms.push(NumTerm {
                and: and && !terms.is_empty(),
                lt: op.0,
                gt: op.1,
                eq: op.2,
                value,
            });
        }
    }
    ensure!(!terms.is_empty(), "empty {component} value");
    Ok(terms)
}

/// Parses the canonical bitmask text (`!`, `=` in either order, names or numbers).
fn parse_bitmask(component: Component, text: &str) -> Result<Vec<BitTerm>> {
    let mut terms = Vec::new();
    for group in text.split_whitespace() {
        for (i, term) in group.split('&').enumerate() {
            if term.is_empty() {
                continue;
            }
            let mut rest = term;
            let (mut not, mut matches) = (false, false);
            loop {
                if let Some(r) = rest.strip_prefix('!') {
                    not = true;
                    rest = r;
                } else if let Some(r) = rest.strip_prefix('=') {
                    matches = true;
                    rest = r;
                } else {
                    break;
                }
            }
            let value = parse_bits(component, rest)?;
            terms.push(BitTerm {
                and: i > 0 && !terms.is_empty(),
                not,
                matches,
                value,
            });
        }
    }
    ensure!(!terms.is_empty(), "empty {component} value");
    Ok(terms)
}

/// A prefix component: address (bits outside `offset..len` cleared), length, offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowPrefix {
    addr: IpAddr,
    len: u8,
    offset: u8,
}

impl FlowPrefix {
    fn new(family: FlowFamily, addr: IpAddr, len: u8, offset: u8) -> Result<Self> {
        match (family, addr) {
            (FlowFamily::Ipv4, IpAddr::V4(a)) => {
                ensure!(len <= 32 && offset == 0, "bad IPv4 flow prefix {a}/{len}");
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                Ok(Self {
                    addr: Ipv4Addr::from(u32::from(a) & mask).into(),
                    len,
                    offset,
                })
            }
            (FlowFamily::Ipv6, IpAddr::V6(a)) => {
                ensure!(
                    len <= 128 && offset <= len,
                    "bad IPv6 flow prefix {a}/{len} offset {offset}"
                );
                let keep_len = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                let keep_offset = u128::MAX.checked_shr(u32::from(offset)).unwrap_or(0);
                Ok(Self {
                    addr: Ipv6Addr::from(u128::from(a) & keep_len & keep_offset).into(),
                    len,
                    offset,
                })
            }
            _ => bail!("prefix {addr}/{len} is not of family {family}"),
        }
    }

    /// `ADDR/LEN`, `ADDR/LEN offset N`, `ADDR/LEN/OFFSET` (GoBGP, ExaBGP) or
    /// `ADDR/LEN/off N` (FRR).
    fn parse(family: FlowFamily, text: &str) -> Result<Self> {
        let text = text.trim();
        let (prefix, offset) = if let Some((p, o)) = text.split_once(" offset ") {
            (p, Some(o))
        } else if let Some((p, o)) = text.split_once("/off ") {
            (p, Some(o))
        } else if text.matches('/').count() == 2 {
            let (p, o) = text.rsplit_once('/').context("unreachable")?;
            (p, Some(o))
        } else {
            (text, None)
        };
        let (addr, len) = prefix
            .trim()
            .split_once('/')
            .with_context(|| format!("bad flow prefix {text:?}"))?;
        let addr: IpAddr = addr
            .parse()
            .with_context(|| format!("bad flow prefix {text:?}"))?;
        let len: u8 = len
            .parse()
            .with_context(|| format!("bad flow prefix {text:?}"))?;
        let offset: u8 = match offset {
            Some(o) => o
                .trim()
                .parse()
                .with_context(|| format!("bad offset in {text:?}"))?,
            None => 0,
        };
        Self::new(family, addr, len, offset)
    }
}

impl fmt::Display for FlowPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)?;
        if self.offset > 0 {
            write!(f, " offset {}", self.offset)?;
        }
        Ok(())
    }
}

/// The canonical text of `value` for `component` of `family`.
pub fn canonical_component(
    family: FlowFamily,
    component: Component,
    value: &str,
) -> Result<String> {
    if component == Component::FlowLabel {
        ensure!(family.is_ipv6(), "flow-label is IPv6 only");
    }
    Ok(match component.kind() {
        Kind::Prefix => FlowPrefix::parse(family, value)?.to_string(),
        Kind::Numeric => numeric_text(&parse_numeric(component, value)?),
        Kind::Bitmask => bitmask_text(component, &parse_bitmask(component, value)?),
    })
}

// ---------------------------------------------------------------------------
// Actions.

/// A traffic action, the typed view of one extended community (RFC 8955 §7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// 0x8006 traffic-rate-bytes.
    RateBytes {
        /// Informative AS.
        asn: u16,
        /// Bytes per second.
        rate: f32,
    },
    /// 0x800c traffic-rate-packets.
    RatePackets {
        /// Informative AS.
        asn: u16,
        /// Packets per second.
        rate: f32,
    },
    /// 0x8007 traffic-action.
    TrafficAction {
        /// S flag.
        sample: bool,
        /// T flag.
        terminal: bool,
    },
    /// 0x8008 redirect, AS-2 form.
    RedirectAs2 {
        /// Global administrator.
        asn: u16,
        /// Local administrator.
        value: u32,
    },
    /// 0x8108 redirect, IPv4 form.
    RedirectIpv4 {
        /// Global administrator.
        addr: Ipv4Addr,
        /// Local administrator.
        value: u16,
    },
    /// 0x8208 redirect, AS-4 form.
    RedirectAs4 {
        /// Global administrator.
        asn: u32,
        /// Local administrator.
        value: u16,
    },
    /// 0x8009 traffic-marking.
    Mark(u8),
    /// 0x0800 redirect to the next hop.
    RedirectToNextHop {
        /// C flag.
        copy: bool,
    },
    /// Any other extended community.
    Other(u64),
}

fn rate_text(rate: f32) -> String {
    if rate.fract() == 0.0 && rate.abs() < 1e15 {
        format!("{}", rate as i64)
    } else {
        format!("{rate}")
    }
}

impl Action {
    /// The action of the extended community `c` (its 8 octets, big-endian).
    pub fn from_community(c: u64) -> Action {
        let b = c.to_be_bytes();
        let (ty, sub) = (b[0], b[1]);
        let as2 = u16::from_be_bytes([b[2], b[3]]);
        let low32 = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let low16 = u16::from_be_bytes([b[6], b[7]]);
        match (ty, sub) {
            (0x80, 0x06) => Action::RateBytes {
                asn: as2,
                rate: f32::from_bits(low32),
            },
            (0x80, 0x0c) => Action::RatePackets {
                asn: as2,
                rate: f32::from_bits(low32),
            },
            (0x80, 0x07) => Action::TrafficAction {
                sample: b[7] & 0x02 != 0,
                terminal: b[7] & 0x01 != 0,
            },
            (0x80, 0x08) => Action::RedirectAs2 {
                asn: as2,
                value: low32,
            },
            (0x81, 0x08) => Action::RedirectIpv4 {
                addr: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                value: low16,
            },
            (0x82, 0x08) => Action::RedirectAs4 {
                asn: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                value: low16,
            },
            (0x80, 0x09) => Action::Mark(b[7] & 0x3f),
            (0x08, 0x00) => Action::RedirectToNextHop {
                copy: b[7] & 0x01 != 0,
            },
            _ => Action::Other(c),
        }
    }

    /// The extended community carrying the action.
    pub fn to_community(self) -> u64 {
        let bytes: [u8; 8] = match self {
            Action::RateBytes { asn, rate } => {
                let [a, b] = asn.to_be_bytes();
                let [c, d, e, f] = rate.to_bits().to_be_bytes();
                [0x80, 0x06, a, b, c, d, e, f]
            }
            Action::RatePackets { asn, rate } => {
                let [a, b] = asn.to_be_bytes();
                let [c, d, e, f] = rate.to_bits().to_be_bytes();
                [0x80, 0x0c, a, b, c, d, e, f]
            }
            Action::TrafficAction { sample, terminal } => [
                0x80,
                0x07,
                0,
                0,
                0,
                0,
                0,
                (u8::from(sample) << 1) | u8::from(terminal),
            ],
            Action::RedirectAs2 { asn, value } => {
                let [a, b] = asn.to_be_bytes();
                let [c, d, e, f] = value.to_be_bytes();
                [0x80, 0x08, a, b, c, d, e, f]
            }
            Action::RedirectIpv4 { addr, value } => {
                let [a, b, c, d] = addr.octets();
                let [e, f] = value.to_be_bytes();
                [0x81, 0x08, a, b, c, d, e, f]
            }
            Action::RedirectAs4 { asn, value } => {
                let [a, b, c, d] = asn.to_be_bytes();
                let [e, f] = value.to_be_bytes();
                [0x82, 0x08, a, b, c, d, e, f]
            }
            Action::Mark(dscp) => [0x80, 0x09, 0, 0, 0, 0, 0, dscp],
            Action::RedirectToNextHop { copy } => [0x08, 0, 0, 0, 0, 0, 0, u8::from(copy)],
            Action::Other(c) => return c,
        };
        u64::from_be_bytes(bytes)
    }

    /// Reads the canonical text (see the module docs; `rate-limit 9600 as 65001` keeps
    /// the AS, the canonical text drops it).
    pub fn parse(text: &str) -> Result<Action> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let rate =
            |w: &str| -> Result<f32> { w.parse().with_context(|| format!("bad rate {w:?}")) };
        let asn = |words: &[&str]| -> Result<u16> {
            match words {
                [] => Ok(0),
                ["as", asn] => asn.parse().with_context(|| format!("bad AS {asn:?}")),
                _ => bail!("bad action {text:?}"),
            }
        };
        Ok(match words.as_slice() {
            ["discard"] => Action::RateBytes { asn: 0, rate: 0.0 },
            ["rate-limit", r, rest @ ..] => Action::RateBytes {
                asn: asn(rest)?,
                rate: rate(r)?,
            },
            ["rate-limit-packets", r, rest @ ..] => Action::RatePackets {
                asn: asn(rest)?,
                rate: rate(r)?,
            },
            ["action", flags] => {
                let (sample, terminal) = match *flags {
                    "sample" => (true, false),
                    "terminal" => (false, true),
                    "sample-terminal" | "terminal-sample" => (true, true),
                    "none" => (false, false),
                    _ => bail!("bad action {text:?}"),
                };
                Action::TrafficAction { sample, terminal }
            }
            ["mark", dscp] => {
                Action::Mark(dscp.parse().with_context(|| format!("bad mark {dscp:?}"))?)
            }
            ["redirect-to-nexthop"] => Action::RedirectToNextHop { copy: false },
            ["redirect-to-nexthop", "copy"] => Action::RedirectToNextHop { copy: true },
            ["redirect", target] => {
                let (global, local) = target
                    .rsplit_once(':')
                    .with_context(|| format!("bad redirect {target:?}"))?;
                if let Ok(addr) = global.parse::<Ipv4Addr>() {
                    Action::RedirectIpv4 {
                        addr,
                        value: local
                            .parse()
                            .with_context(|| format!("bad redirect {target:?}"))?,
                    }
                } else {
                    let asn: u32 = match global.split_once('.') {
                        Some((hi, lo)) => (hi.parse::<u32>()? << 16) | lo.parse::<u32>()?,
                        None => global
                            .parse()
                            .with_context(|| format!("bad redirect {target:?}"))?,
                    };
                    match u16::try_from(asn) {
                        Ok(asn) => Action::RedirectAs2 {
                            asn,
                            value: local
                                .parse()
                                .with_context(|| format!("bad redirect {target:?}"))?,
                        },
                        Err(_) => Action::RedirectAs4 {
                            asn,
                            value: local
                                .parse()
                                .with_context(|| format!("bad redirect {target:?}"))?,
                        },
                    }
                }
            }
            ["ext", hex] if hex.starts_with("0x") => Action::Other(
                u64::from_str_radix(&hex[2..], 16)
                    .with_context(|| format!("bad community {hex}"))?,
            ),
            _ => bail!("unknown action {text:?}"),
        })
    }

    /// The words of GoBGP's CLI after `then`.
    fn gobgp_words(self) -> Result<Vec<String>> {
        Ok(match self {
            Action::RateBytes { rate: 0.0, .. } => vec!["discard".into()],
            Action::RateBytes { asn, rate } => {
                let mut words = vec!["rate-limit".into(), rate_text(rate)];
                if asn != 0 {
                    words.extend(["as".into(), asn.to_string()]);
                }
                words
            }
            Action::TrafficAction { sample, terminal } => vec![
                "action".into(),
                match (sample, terminal) {
                    (true, true) => "sample-terminal",
                    (true, false) => "sample",
                    (false, true) => "terminal",
                    (false, false) => bail!("GoBGP's CLI has no action without flags"),
                }
                .into(),
            ],
            Action::RedirectAs2 { asn, value } => vec!["redirect".into(), format!("{asn}:{value}")],
            Action::RedirectIpv4 { addr, value } => {
                vec!["redirect".into(), format!("{addr}:{value}")]
            }
            // GoBGP truncates a plain 4-octet AS to 65535: asdot.
            Action::RedirectAs4 { asn, value } => {
                vec![
                    "redirect".into(),
                    format!("{}.{}:{value}", asn >> 16, asn & 0xffff),
                ]
            }
            Action::Mark(dscp) => vec!["mark".into(), dscp.to_string()],
            other => bail!("GoBGP's CLI cannot originate {other}"),
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::RateBytes { rate: 0.0, .. } => f.write_str("discard"),
            Action::RateBytes { rate, .. } => write!(f, "rate-limit {}", rate_text(rate)),
            Action::RatePackets { rate, .. } => write!(f, "rate-limit-packets {}", rate_text(rate)),
            Action::TrafficAction { sample, terminal } => f.write_str(match (sample, terminal) {
                (true, true) => "action sample-terminal",
                (true, false) => "action sample",
                (false, true) => "action terminal",
                (false, false) => "action none",
            }),
            Action::RedirectAs2 { asn, value } => write!(f, "redirect {asn}:{value}"),
            Action::RedirectIpv4 { addr, value } => write!(f, "redirect {addr}:{value}"),
            Action::RedirectAs4 { asn, value } => write!(f, "redirect {asn}:{value}"),
            Action::Mark(dscp) => write!(f, "mark {dscp}"),
            Action::RedirectToNextHop { copy: false } => f.write_str("redirect-to-nexthop"),
            Action::RedirectToNextHop { copy: true } => f.write_str("redirect-to-nexthop copy"),
            Action::Other(c) => write!(f, "ext 0x{c:016x}"),
        }
    }
}

/// A route target (subtype 2) or route origin (subtype 3) of the transitive two-octet
/// AS (type 0), IPv4 (type 1) or four-octet AS (type 2) form: `global:local`, the form
/// chosen by `ty` or, when `None`, by the global part (an address, an AS above 65535).
fn target_community(ty: Option<u8>, subtype: u8, global: &str, local: &str) -> Option<u64> {
    let ty = match ty {
        Some(ty) => ty,
        None if global.parse::<Ipv4Addr>().is_ok() => 1,
        None if global.parse::<u32>().ok()? > 0xffff => 2,
        None => 0,
    };
    let head = (u64::from(ty) << 56) | (u64::from(subtype) << 48);
    Some(match ty {
        0 => head | (global.parse::<u64>().ok()? << 32) | local.parse::<u32>().ok()? as u64,
        1 => {
            head | (u64::from(u32::from(global.parse::<Ipv4Addr>().ok()?)) << 16)
                | u64::from(local.parse::<u16>().ok()?)
        }
        2 => {
            head | (u64::from(global.parse::<u32>().ok()?) << 16)
                | u64::from(local.parse::<u16>().ok()?)
        }
        _ => return None,
    })
}

fn is_target(c: u64) -> bool {
    (c >> 56) <= 2 && matches!((c >> 48) & 0xff, 2 | 3)
}

fn sorted_actions(mut actions: Vec<String>) -> Vec<String> {
    actions.sort();
    actions
}

// ---------------------------------------------------------------------------
// GoBGP.

/// Parses `gobgp global rib -a FAMILY -j`, keeping the paths learned from `neighbor`
/// (an empty answer is an empty table). A path GoBGP could not decode (`"nlri":null`:
/// an IPv6 offset) is an error.
pub fn parse_gobgp_rib(out: &str, family: FlowFamily, neighbor: &str) -> Result<Vec<FlowRoute>> {
    let out = out.trim();
    if out.is_empty() || out == "null" {
        return Ok(Vec::new());
    }
    let json: Value = serde_json::from_str(out).context("gobgp rib -j printed bad JSON")?;
    let table = json.as_object().context("gobgp rib -j is not an object")?;
    let mut routes = Vec::new();
    for (key, paths) in table {
        for path in paths.as_array().context("paths is not an array")? {
            if path["neighbor-ip"].as_str() != Some(neighbor) {
                continue;
            }
            let route = gobgp_path(family, path)
                .with_context(|| format!("GoBGP path {key} from {neighbor}: {path}"))?;
            routes.push(route);
        }
    }
    routes.sort();
    Ok(routes)
}

fn gobgp_path(family: FlowFamily, path: &Value) -> Result<FlowRoute> {
    let components = path["nlri"]["value"]
        .as_array()
        .context("GoBGP could not decode the rule (no nlri.value)")?;
    let mut route = FlowRoute::new(family);
    for item in components {
        let code = item["type"].as_u64().context("component without type")?;
        let component = u8::try_from(code)
            .ok()
            .and_then(Component::from_code)
            .with_context(|| format!("unknown component type {code}"))?;
        let text = match component.kind() {
            Kind::Prefix => {
                let prefix = item["value"]["prefix"]
                    .as_str()
                    .context("prefix not a string")?;
                let offset = item["offset"].as_u64().unwrap_or(0);
                let offset = u8::try_from(offset).context("bad offset")?;
                let (addr, len) = prefix.split_once('/').context("bad prefix")?;
                FlowPrefix::new(family, addr.parse()?, len.parse()?, offset)?.to_string()
            }
            Kind::Numeric | Kind::Bitmask => {
                let mut num = Vec::new();
                let mut bits = Vec::new();
                for op in item["value"].as_array().context("operators not an array")? {
                    let byte = op["op"].as_u64().context("op not a number")?;
                    let byte = u8::try_from(byte).context("op not an octet")?;
                    let value = op["value"].as_u64().context("value not a number")?;
                    num.push(NumTerm::from_op(byte, value));
                    bits.push(BitTerm::from_op(byte, value));
                }
                if component.kind() == Kind::Numeric {
                    numeric_text(&num)
                } else {
                    bitmask_text(component, &bits)
                }
            }
        };
        route.matches.insert(component, text);
    }
    for attr in path["attrs"].as_array().into_iter().flatten() {
        if attr["type"].as_u64() != Some(16) {
            continue;
        }
        for c in attr["value"].as_array().into_iter().flatten() {
            route.actions.push(gobgp_ext_community(c)?);
        }
    }
    route.actions = sorted_actions(route.actions);
    Ok(route)
}

fn gobgp_ext_community(c: &Value) -> Result<String> {
    let ty = c["type"].as_u64().context("community without type")?;
    let sub = c["subtype"].as_u64().context("community without subtype")?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let action = match (ty, sub) {
        (128, 6) => Some(Action::RateBytes {
            asn: c["as"].as_u64().unwrap_or(0) as u16,
            rate: c["rate"].as_f64().context("rate not a number")? as f32,
        }),
        (128, 7) => Some(Action::TrafficAction {
            sample: c["sample"].as_bool().unwrap_or(false),
            terminal: c["terminal"].as_bool().unwrap_or(false),
        }),
        (128, 9) => Some(Action::Mark(
            c["value"].as_u64().context("mark not a number")? as u8,
        )),
        (128..=130, 8) => {
            let target = text(&c["value"]).context("redirect not a string")?;
            let parsed = Action::parse(&format!("redirect {target}"))?;
            // The form is the community type's, not the text's.
            Some(match (ty, parsed) {
                (130, Action::RedirectAs2 { asn, value }) => Action::RedirectAs4 {
                    asn: u32::from(asn),
                    value: u16::try_from(value).context("AS-4 redirect value")?,
                },
                (_, parsed) => parsed,
            })
        }
        _ => None,
    };
    if let Some(action) = action {
        return Ok(action.to_string());
    }
    let value = text(&c["value"]);
    if ty <= 2
        && matches!(sub, 2 | 3)
        && let Some((global, local)) = value.as_deref().and_then(|v| v.rsplit_once(':'))
        && let Some(raw) = target_community(Some(ty as u8), sub as u8, global, local)
    {
        return Ok(Action::Other(raw).to_string());
    }
    // Unknown to GoBGP: the 7 octets after the type, in base64.
    if let Some(raw) = value.as_deref().and_then(base64_decode)
        && raw.len() == 7
    {
        let mut bytes = [0u8; 8];
        bytes[0] = ty as u8;
        bytes[1..].copy_from_slice(&raw);
        return Ok(Action::from_community(u64::from_be_bytes(bytes)).to_string());
    }
    Ok(format!("ext gobgp {c}"))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for ch in text.bytes() {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'a'..=b'z' => ch - b'a' + 26,
            b'0'..=b'9' => ch - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// BIRD.

/// Parses `birdc show route table TABLE all ...` of a flow table (any number of
/// routes; alternative paths too).
pub fn parse_bird_routes(out: &str) -> Result<Vec<FlowRoute>> {
    let mut routes: Vec<FlowRoute> = Vec::new();
    for line in out.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || line.starts_with("BIRD ") || line.starts_with("Table ") {
            continue;
        }
        if let Some(rest) = trimmed
            .strip_prefix("flow4 {")
            .map(|r| (FlowFamily::Ipv4, r))
            .or_else(|| {
                trimmed
                    .strip_prefix("flow6 {")
                    .map(|r| (FlowFamily::Ipv6, r))
            })
        {
            let (family, rest) = rest;
            let body = rest
                .split_once('}')
                .with_context(|| format!("unterminated BIRD flow {line:?}"))?
                .0;
            routes
                .push(bird_flow(family, body).with_context(|| format!("bad BIRD flow {line:?}"))?);
        } else if line.starts_with(char::is_whitespace) && !line.starts_with('\t') {
            // An alternative path of the same rule: same components.
            let last = routes.last().context("alternative path before any route")?;
            routes.push(last.rule());
        } else if let Some(attr) = trimmed.strip_prefix("BGP.ext_community:") {
            let route = routes.last_mut().context("attribute before any route")?;
            route.actions = sorted_actions(bird_ext_communities(attr)?);
        } else if line.starts_with('\t') {
            continue;
        } else {
            bail!("unexpected BIRD line {line:?}");
        }
    }
    routes.sort();
    Ok(routes)
}

const BIRD_NAMES: [(&str, Component); 14] = [
    ("dst", Component::Destination),
    ("src", Component::Source),
    ("proto", Component::Protocol),
    ("next header", Component::Protocol),
    ("port", Component::Port),
    ("dport", Component::DestinationPort),
    ("sport", Component::SourcePort),
    ("icmp type", Component::IcmpType),
    ("icmp code", Component::IcmpCode),
    ("tcp flags", Component::TcpFlags),
    ("length", Component::PacketLength),
    ("dscp", Component::Dscp),
    ("fragment", Component::Fragment),
    ("label", Component::FlowLabel),
];

fn bird_flow(family: FlowFamily, body: &str) -> Result<FlowRoute> {
    let mut route = FlowRoute::new(family);
    for part in body.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (component, value) = BIRD_NAMES
            .iter()
            .filter_map(|(name, c)| {
                part.strip_prefix(name)
                    .filter(|rest| rest.starts_with(' '))
                    .map(|rest| (*c, rest.trim()))
            })
            .next()
            .with_context(|| format!("unknown BIRD component {part:?}"))?;
        let text = match component.kind() {
            Kind::Prefix => FlowPrefix::parse(family, value)?.to_string(),
            Kind::Numeric => numeric_text(&bird_numeric(value)?),
            Kind::Bitmask => bitmask_text(component, &bird_bitmask(component, value)?),
        };
        route.matches.insert(component, text);
    }
    Ok(route)
}

/// `6,17`, `1024..2048`, `> 1023`, `< 1000 || > 2000`, `!= 80 && < 1000`.
fn bird_numeric(value: &str) -> Result<Vec<NumTerm>> {
    let spaced = value.replace(',', " || ");
    let mut tokens = spaced.split_whitespace().peekable();
    let mut terms = Vec::new();
    let mut and = false;
    while let Some(token) = tokens.next() {
        match token {
            "&&" => and = true,
            "||" => and = false,
            _ => {
                let first = terms.is_empty();
                if let Some((lo, hi)) = token.split_once("..") {
                    terms.push(NumTerm::from_op(
                        if and && !first { 0x43 } else { 0x03 },
                        parse_number(lo)?,
                    ));
                    terms.push(NumTerm::from_op(0x45, parse_number(hi)?));
                } else if token.starts_with(|c: char| c.is_ascii_digit()) {
                    terms.push(NumTerm::from_op(
                        if and && !first { 0x41 } else { 0x01 },
                        parse_number(token)?,
                    ));
                } else {
                    let op: u8 = match token {
                        "=" => 1,
                        ">" => 2,
                        ">=" => 3,
                        "<" => 4,
                        "<=" => 5,
                        "!=" => 6,
                        "true" => 7,
                        "false" => 0,
                        _ => bail!("unknown BIRD operator {token:?} in {value:?}"),
                    };
                    let number = tokens
                        .next()
                        .with_context(|| format!("no value in {value:?}"))?;
                    let and_bit = if and && !first { 0x40 } else { 0 };
                    terms.push(NumTerm::from_op(op | and_bit, parse_number(number)?));
                }
                and = false;
            }
        }
    }
    ensure!(!terms.is_empty(), "empty BIRD value");
    Ok(terms)
}

/// `0x2/0x2 && 0x0/0x10`, `!0x12/0x12`, `is_fragment`, `!!is_fragment`, `!first_fragment`.
fn bird_bitmask(component: Component, value: &str) -> Result<Vec<BitTerm>> {
    let mut terms = Vec::new();
    let mut and = false;
    for token in value.split_whitespace() {
        match token {
            "&&" => and = true,
            "||" => and = false,
            _ => {
                let bangs = token.len() - token.trim_start_matches('!').len();
                let rest = token.trim_start_matches('!');
                let (not, matches, bits) = if let Some((v, m)) = rest.split_once('/') {
                    let (v, m) = (parse_number(v)?, parse_number(m)?);
                    // BIRD: `!` when not == match; the value shown is the mask when match.
                    let matches = v == m && m != 0;
                    let not = (bangs == 1) == matches;
                    (not, matches, m)
                } else {
                    // Names: `name` match, `!!name` neither, `!name` not.
                    let bits = parse_bits(component, rest)?;
                    match bangs {
                        0 => (false, true, bits),
                        1 => (true, true, bits),
                        _ => (false, false, bits),
                    }
                };
                terms.push(BitTerm {
                    and: and && !terms.is_empty(),
                    not,
                    matches,
                    value: bits,
                });
                and = false;
            }
        }
    }
    ensure!(!terms.is_empty(), "empty BIRD value");
    Ok(terms)
}

/// `(generic, 0x80060000, 0x46160000) (rt, 65001, 7)`.
fn bird_ext_communities(value: &str) -> Result<Vec<String>> {
    let mut actions = Vec::new();
    for tuple in value
        .split(')')
        .filter_map(|chunk| chunk.trim().strip_prefix('('))
    {
        let parts: Vec<&str> = tuple.split(',').map(str::trim).collect();
        match parts.as_slice() {
            ["generic", hi, lo] => {
                let c = (parse_number(hi)? << 32) | parse_number(lo)?;
                actions.push(Action::from_community(c).to_string());
            }
            [kind @ ("rt" | "ro"), global, local] => {
                let subtype = if *kind == "rt" { 2 } else { 3 };
                match target_community(None, subtype, global, local) {
                    Some(c) => actions.push(Action::Other(c).to_string()),
                    None => actions.push(format!("ext ({tuple})")),
                }
            }
            _ => actions.push(format!("ext ({tuple})")),
        }
    }
    Ok(actions)
}

// ---------------------------------------------------------------------------
// FRR.

const FRR_KEYS: [(&str, Component); 13] = [
    ("to", Component::Destination),
    ("from", Component::Source),
    ("proto", Component::Protocol),
    ("port", Component::Port),
    ("dstp", Component::DestinationPort),
    ("srcp", Component::SourcePort),
    ("type", Component::IcmpType),
    ("code", Component::IcmpCode),
    ("tcp", Component::TcpFlags),
    ("pktlen", Component::PacketLength),
    ("dscp", Component::Dscp),
    ("pktfrag", Component::Fragment),
    ("flwlbl", Component::FlowLabel),
];

fn frr_components(family: FlowFamily, object: &Value) -> Result<FlowRoute> {
    let mut route = FlowRoute::new(family);
    for (key, component) in FRR_KEYS {
        let Some(value) = object.get(key) else {
            continue;
        };
        let value = value
            .as_str()
            .with_context(|| format!("FRR {key} is not a string"))?;
        let text = match component.kind() {
            Kind::Prefix => FlowPrefix::parse(family, value)?.to_string(),
            Kind::Numeric => frr_numeric(value)?,
            Kind::Bitmask => bitmask_text(component, &frr_bitmask(value)?),
        };
        route.matches.insert(component, text);
    }
    ensure!(
        !route.matches.is_empty(),
        "FRR path without components: {object}"
    );
    Ok(route)
}

/// `= 6 , = 17 `, `>= 1024 , <= 2048 `: FRR does not say AND from OR; the terms are
/// joined with `,` (see [`FlowRoute::as_seen_by`]).
fn frr_numeric(value: &str) -> Result<String> {
    let mut terms = Vec::new();
    for term in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let ops: String = term.chars().take_while(|c| "<>=".contains(*c)).collect();
        let number = parse_number(term[ops.len()..].trim())?;
        let term = NumTerm {
            and: false,
            lt: ops.contains('<'),
            gt: ops.contains('>'),
            eq: ops.contains('='),
            value: number,
        };
        let op = term.op_text();
        terms.push(if matches!(op, "true" | "false") {
            op.to_owned()
        } else {
            format!("{op}{number}")
        });
    }
    ensure!(!terms.is_empty(), "empty FRR value {value:?}");
    Ok(terms.join(","))
}

/// `= 2,&∋ ! 16`: `=` match, `∋` any, `!` not, `,&` AND, `,|` OR.
fn frr_bitmask(value: &str) -> Result<Vec<BitTerm>> {
    let mut terms = Vec::new();
    for (i, term) in value.split(',').enumerate() {
        let term = term.trim();
        let and = i > 0 && term.starts_with('&');
        let body = term.trim_start_matches(['&', '|']);
        let number: String = body.chars().filter(|c| c.is_ascii_digit()).collect();
        terms.push(BitTerm {
            and,
            not: body.contains('!'),
            matches: body.trim_start().starts_with('='),
            value: parse_number(&number).with_context(|| format!("bad FRR bitmask {value:?}"))?,
        });
    }
    Ok(terms)
}

/// `FS:rate 9600.000000 FS:action eval stops FS:redirect VRF RT:65001:999 FS:marking 10
/// FS:redirect IP 0x0 UNK:128, 12`.
fn frr_ecomlist(list: &str) -> Result<Vec<String>> {
    let words: Vec<&str> = list.split_whitespace().collect();
    let mut actions = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        i += 1;
        match word {
            "FS:rate" => {
                let rate: f32 = words
                    .get(i)
                    .context("FS:rate without value")?
                    .parse()
                    .context("bad FS:rate")?;
                i += 1;
                actions.push(Action::RateBytes { asn: 0, rate }.to_string());
            }
            "FS:action" => {
                // `eval stops` or `terminate (apply)`, maybe `, sample`.
                while i < words.len() && !words[i].contains(':') {
                    i += 1;
                }
                actions.push("action ?".into());
            }
            "FS:marking" => {
                let dscp = words.get(i).context("FS:marking without value")?;
                i += 1;
                actions.push(format!("mark {dscp}"));
            }
            "FS:redirect" => match words.get(i).copied() {
                Some("VRF") => {
                    let target = words.get(i + 1).context("redirect VRF without target")?;
                    i += 2;
                    let target = target.strip_prefix("RT:").unwrap_or(target);
                    actions.push(Action::parse(&format!("redirect {target}"))?.to_string());
                }
                Some("IP") => {
                    let flag = words.get(i + 1).context("redirect IP without flag")?;
                    i += 2;
                    let copy = parse_number(flag)? & 1 != 0;
                    actions.push(Action::RedirectToNextHop { copy }.to_string());
                }
                other => bail!("unknown FRR redirect {other:?} in {list:?}"),
            },
            w if w.starts_with("UNK:") => {
                let ty = w.trim_start_matches("UNK:").trim_end_matches(',');
                let sub = words.get(i).context("UNK without subtype")?;
                i += 1;
                actions.push(format!("ext {ty}:{sub}"));
            }
            other => {
                let target = other
                    .strip_prefix("RT:")
                    .map(|t| (2, t))
                    .or_else(|| other.strip_prefix("SoO:").map(|t| (3, t)))
                    .and_then(|(subtype, t)| {
                        let (global, local) = t.rsplit_once(':')?;
                        target_community(None, subtype, global, local)
                    });
                match target {
                    Some(c) => actions.push(Action::Other(c).to_string()),
                    None => actions.push(format!("ext {other}")),
                }
            }
        }
    }
    Ok(actions)
}

/// Parses FRR's `show bgp FAMILY flowspec json` (`table`: the paths and their peers)
/// and `show bgp FAMILY flowspec detail json` (`detail`: one JSON array per path, the
/// components then `ecomlist`), keeping the paths from `neighbor`.
pub fn parse_frr_routes(
    table: &str,
    detail: &str,
    family: FlowFamily,
    neighbor: &str,
) -> Result<Vec<FlowRoute>> {
    let mut from_neighbor = Vec::new();
    if !table.trim().is_empty() {
        let json: Value = serde_json::from_str(table).context("FRR flowspec json is bad JSON")?;
        for (key, paths) in json["routes"].as_object().into_iter().flatten() {
            for path in paths.as_array().context("FRR paths not an array")? {
                if path["peerId"].as_str() == Some(neighbor) {
                    from_neighbor.push(
                        frr_components(family, path)
                            .with_context(|| format!("FRR flow route {key}"))?,
                    );
                }
            }
        }
    }
    let mut routes = Vec::new();
    for entry in serde_json::Deserializer::from_str(detail).into_iter::<Value>() {
        let entry = entry.context("FRR flowspec detail json is bad JSON")?;
        let parts = entry
            .as_array()
            .context("FRR detail entry is not an array")?;
        let first = parts.first().context("empty FRR detail entry")?;
        let mut route = frr_components(family, first)?;
        let Some(index) = from_neighbor
            .iter()
            .position(|r| r.matches == route.matches)
        else {
            continue;
        };
        from_neighbor.remove(index);
        for part in parts {
            if let Some(list) = part["ecomlist"].as_str() {
                route.actions = sorted_actions(frr_ecomlist(list)?);
            }
        }
        routes.push(route);
    }
    ensure!(
        from_neighbor.is_empty(),
        "FRR paths without detail: {from_neighbor:?}"
    );
    routes.sort();
    Ok(routes)
}

// ---------------------------------------------------------------------------
// ExaBGP.

/// Parses ExaBGP's words for a rule: `flow destination-ipv4 192.0.2.0/24 protocol =udp
/// source-port [ =53 =54 ] tcp-flags [ =syn&!ack ] ...` (the JSON `string`; the leading
/// `flow` is optional; names and `=unknown protocol type 58` are read).
pub fn parse_exabgp_flow(family: FlowFamily, text: &str) -> Result<FlowRoute> {
    // Rejoin `=unknown protocol type 58` (and `... icmp type type 128`) to `=58`.
    let mut tokens: Vec<String> = Vec::new();
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        let mut word = word.to_owned();
        while let Some(prefix) = word.strip_suffix("unknown") {
            let prefix = prefix.to_owned();
            let number = words
                .by_ref()
                .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
                .with_context(|| format!("unterminated unknown value in {text:?}"))?;
            word = format!("{prefix}{number}");
        }
        tokens.push(word);
    }
    let mut route = FlowRoute::new(family);
    let mut i = usize::from(tokens.first().map(String::as_str) == Some("flow"));
    while i < tokens.len() {
        let name = &tokens[i];
        let component = Component::from_name(name)
            .with_context(|| format!("unknown component {name:?} in {text:?}"))?;
        i += 1;
        let mut values = Vec::new();
        if tokens.get(i).map(String::as_str) == Some("[") {
            i += 1;
            while i < tokens.len() && tokens[i] != "]" {
                values.push(tokens[i].clone());
                i += 1;
            }
            i += 1;
        } else {
            values.push(
                tokens
                    .get(i)
                    .with_context(|| format!("{name} without value"))?
                    .clone(),
            );
            i += 1;
        }
        let value = values.join(" ");
        route = route
            .try_matching(component, &value)
            .with_context(|| format!("ExaBGP {name} {value:?}"))?;
    }
    Ok(route)
}

/// The flow routes currently announced in ExaBGP's JSON events (one object per line;
/// a state change clears them, as in [`crate::peers::exabgp::replay_events`]).
pub fn replay_exabgp_flows(events: &str) -> Result<Vec<FlowRoute>> {
    let mut routes: BTreeMap<FlowRoute, FlowRoute> = BTreeMap::new();
    for line in events.lines().filter(|l| l.trim_start().starts_with('{')) {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            // The last line may still be being written.
            continue;
        };
        match event["type"].as_str() {
            Some("state") => routes.clear(),
            Some("update") => {
                let update = &event["neighbor"]["message"]["update"];
                exabgp_update(&mut routes, update)
                    .with_context(|| format!("bad ExaBGP update {line}"))?;
            }
            _ => {}
        }
    }
    Ok(routes.into_values().collect())
}

fn exabgp_family(key: &str) -> Option<FlowFamily> {
    match key {
        "ipv4 flow" => Some(FlowFamily::Ipv4),
        "ipv6 flow" => Some(FlowFamily::Ipv6),
        _ => None,
    }
}

fn exabgp_rule(family: FlowFamily, nlri: &Value) -> Result<FlowRoute> {
    let text = nlri["string"]
        .as_str()
        .with_context(|| format!("flow without string: {nlri}"))?;
    parse_exabgp_flow(family, text)
}

fn exabgp_update(routes: &mut BTreeMap<FlowRoute, FlowRoute>, update: &Value) -> Result<()> {
    for (key, nlris) in update["withdraw"].as_object().into_iter().flatten() {
        let Some(family) = exabgp_family(key) else {
            continue;
        };
        for nlri in nlris.as_array().into_iter().flatten() {
            routes.remove(&exabgp_rule(family, nlri)?);
        }
    }
    let mut actions = Vec::new();
    for c in update["attribute"]["extended-community"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let value = c["value"]
            .as_u64()
            .with_context(|| format!("extended community without value: {c}"))?;
        actions.push(Action::from_community(value).to_string());
    }
    let actions = sorted_actions(actions);
    for (key, by_next_hop) in update["announce"].as_object().into_iter().flatten() {
        let Some(family) = exabgp_family(key) else {
            continue;
        };
        for nlris in by_next_hop
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| v)
        {
            for nlri in nlris.as_array().into_iter().flatten() {
                let rule = exabgp_rule(family, nlri)?;
                let route = FlowRoute {
                    actions: actions.clone(),
                    ..rule.clone()
                };
                routes.insert(rule, route);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// wasmbgp: its `show adj-rib-in|adj-rib-out --json` rows, and rules built with its codec.

/// IP protocol names wasmbgp prints (IANA numbers; its `ipip` is 94, not GoBGP's 4).
const WASMBGP_PROTOCOLS: [(&str, u64); 15] = [
    ("icmp", 1),
    ("igmp", 2),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ospf", 89),
    ("ipip", 94),
    ("pim", 103),
    ("sctp", 132),
];

/// ICMP type names wasmbgp prints in IPv4 rules.
const WASMBGP_ICMP_TYPES_V4: [(&str, u64); 16] = [
    ("echo-reply", 0),
    ("unreachable", 3),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicit", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp", 13),
    ("timestamp-reply", 14),
    ("photuris", 40),
    ("experimental-mobility", 41),
    ("extended-echo-request", 42),
    ("extended-echo-reply", 43),
    ("experimental-one", 253),
    ("experimental-two", 254),
];

/// ICMPv6 type names wasmbgp prints in IPv6 rules (RFC 4443, 4861: `echo-request` is
/// 128 there, not 8).
const WASMBGP_ICMP_TYPES_V6: [(&str, u64); 11] = [
    ("unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("router-solicit", 133),
    ("router-advertisement", 134),
    ("neighbor-solicit", 135),
    ("neighbor-advertisement", 136),
    ("redirect", 137),
];

/// One numeric or bitmask term of wasmbgp's words with the names it prints turned into
/// what [`canonical_component`] reads: `=tcp` → `=6`, IPv6 `=echo-request` → `=128`,
/// `not-a-fragment` → `!is-fragment+first-fragment`, TCP flag `ns` → `0x100`.
fn wasmbgp_term(family: FlowFamily, component: Component, term: &str) -> Result<String> {
    match component.kind() {
        Kind::Prefix => Ok(term.to_owned()),
        Kind::Numeric => {
            let (op, rest) = ["true", "false", "!=", ">=", "<=", "=", ">", "<"]
                .iter()
                .find_map(|op| term.strip_prefix(op).map(|rest| (*op, rest)))
                .with_context(|| format!("{component} term {term:?} without operator"))?;
            if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_digit()) {
                return Ok(term.to_owned());
            }
            let names: &[(&str, u64)] = match (component, family) {
                (Component::Protocol, _) => &WASMBGP_PROTOCOLS,
                (Component::IcmpType, FlowFamily::Ipv4) => &WASMBGP_ICMP_TYPES_V4,
                (Component::IcmpType, FlowFamily::Ipv6) => &WASMBGP_ICMP_TYPES_V6,
                _ => &[],
            };
            let value = names
                .iter()
                .find(|(name, _)| *name == rest)
                .map(|(_, v)| *v)
                .with_context(|| format!("unknown {family} {component} name {rest:?}"))?;
            Ok(format!("{op}{value}"))
        }
        Kind::Bitmask => {
            if component == Component::Fragment && term == "not-a-fragment" {
                return Ok("!is-fragment+first-fragment".to_owned());
            }
            let flags = term.trim_start_matches(['!', '=']);
            let signs = &term[..term.len() - flags.len()];
            let bits: Vec<&str> = flags
                .split('+')
                .map(|bit| match (component, bit) {
                    (Component::TcpFlags, "ns") => "0x100",
                    (_, bit) => bit,
                })
                .collect();
            Ok(format!("{signs}{}", bits.join("+")))
        }
    }
}

/// Parses wasmbgp's words for a rule (the `prefix` of a flow route in `show
/// adj-rib-in --json`, ExaBGP's vocabulary): `destination 192.0.2.0/24 protocol =udp
/// source-port =53`, lists in `[ ]` (`destination-port [ =443 =8443 ]`), IPv6 offsets
/// as `ADDR/LEN/OFFSET`, a leading `family ipv6` on IPv6 rules without an IPv6 word, and
/// the names wasmbgp prints for protocols, ICMP and ICMPv6 types, fragments and flags.
pub fn parse_wasmbgp_flow(family: FlowFamily, text: &str) -> Result<FlowRoute> {
    let mut tokens = text.split_whitespace().peekable();
    if tokens.peek() == Some(&"family") {
        tokens.next();
        let named = tokens.next().unwrap_or_default();
        ensure!(
            named == "ipv6" && family.is_ipv6(),
            "rule {text:?} names family {named:?} in a {family} row"
        );
    }
    let mut route = FlowRoute::new(family);
    while let Some(name) = tokens.next() {
        let component = Component::from_name(name)
            .with_context(|| format!("unknown component {name:?} in {text:?}"))?;
        ensure!(
            !route.matches.contains_key(&component),
            "{component} twice in {text:?}"
        );
        let mut values = Vec::new();
        match tokens.next() {
            Some("[") => loop {
                match tokens.next() {
                    Some("]") => break,
                    Some(value) => values.push(value),
                    None => bail!("unclosed [ in {text:?}"),
                }
            },
            Some(value) => values.push(value),
            None => bail!("{name} without value in {text:?}"),
        }
        ensure!(!values.is_empty(), "{name} with an empty list in {text:?}");
        let mut canonical = Vec::new();
        for value in values {
            let terms = value
                .split('&')
                .map(|term| wasmbgp_term(family, component, term))
                .collect::<Result<Vec<_>>>()?;
            canonical.push(terms.join("&"));
        }
        route = route
            .try_matching(component, &canonical.join(" "))
            .with_context(|| format!("wasmbgp {name} in {text:?}"))?;
    }
    ensure!(
        !route.matches.is_empty(),
        "a rule without components: {text:?}"
    );
    Ok(route)
}

/// One of wasmbgp's `actions` (`rate-limit 9600`, `redirect 65001:999`, ...) in the
/// canonical text; its `redirect 100L:7` (AS-4 form, AS below 65536) is `redirect 100:7`.
fn wasmbgp_action(text: &str) -> Result<String> {
    let text = match text.strip_prefix("redirect ") {
        Some(target) => match target.split_once("L:") {
            Some((asn, value)) => format!("redirect {asn}:{value}"),
            None => text.to_owned(),
        },
        None => text.to_owned(),
    };
    Ok(Action::parse(&text)?.to_string())
}

/// One of wasmbgp's `extended-communities` as an `ext 0x...` action when it is not a
/// traffic action (a route target or origin, an unknown community); `None` for the
/// traffic actions, which the row's `actions` list.
fn wasmbgp_other_community(text: &str) -> Result<Option<String>> {
    if let Some(hex) = text.strip_prefix("0x") {
        let value =
            u64::from_str_radix(hex, 16).with_context(|| format!("bad community {text:?}"))?;
        return Ok(match Action::from_community(value) {
            Action::Other(v) => Some(Action::Other(v).to_string()),
            _ => None,
        });
    }
    let subtype = if text.starts_with("target:") {
        2
    } else if text.starts_with("origin:") {
        3
    } else {
        // A traffic action in its community form (`rate-limit:9600`, `discard`, ...).
        return Ok(None);
    };
    let rest = &text[7..];
    let (global, local) = rest
        .rsplit_once(':')
        .with_context(|| format!("bad community {text:?}"))?;
    let (ty, global) = match global.strip_suffix('L') {
        Some(asn) => (2, asn),
        None if global.parse::<Ipv4Addr>().is_ok() => (1, global),
        None => (0, global),
    };
    let value = target_community(Some(ty), subtype, global, local)
        .with_context(|| format!("bad community {text:?}"))?;
    Ok(Some(Action::Other(value).to_string()))
}

/// One row of wasmbgp's `show adj-rib-in|adj-rib-out --json` as a flow route: the rule
/// from `prefix` ([`parse_wasmbgp_flow`]), the family from `family`, the actions from
/// `actions` plus, as `ext 0x...`, the `extended-communities` that are not traffic
/// actions. `None` for a unicast row.
pub fn wasmbgp_flow_row(row: &Value) -> Result<Option<FlowRoute>> {
    let family = match row["family"].as_str() {
        Some("ipv4-flowspec") => FlowFamily::Ipv4,
        Some("ipv6-flowspec") => FlowFamily::Ipv6,
        Some("ipv4-unicast" | "ipv6-unicast") => return Ok(None),
        other => bail!("row with family {other:?}: {row}"),
    };
    let prefix = row["prefix"]
        .as_str()
        .with_context(|| format!("row without prefix: {row}"))?;
    let mut route = parse_wasmbgp_flow(family, prefix)?;
    let strings = |key: &str| -> Result<Vec<&str>> {
        match &row[key] {
            // wasmbgp leaves out an empty `actions`.
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().with_context(|| format!("{key} holds {v}")))
                .collect(),
            other => bail!("{key} is {other}"),
        }
    };
    for action in strings("actions")? {
        route.actions.push(wasmbgp_action(action)?);
    }
    for community in strings("extended-communities")? {
        if let Some(action) = wasmbgp_other_community(community)? {
            route.actions.push(action);
        }
    }
    route.actions.sort();
    Ok(Some(route))
}

/// The flow routes of `neighbor` in wasmbgp's `show adj-rib-in|adj-rib-out [NEIGHBOR]
/// --json` (an array of rows; unicast rows are left out), sorted. A flow row it cannot
/// read is an error.
pub fn parse_wasmbgp_routes(json: &Value, neighbor: &str) -> Result<Vec<FlowRoute>> {
    let rows = json
        .as_array()
        .with_context(|| format!("the RIB JSON is not an array: {json}"))?;
    let mut routes = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r["neighbor"].as_str() == Some(neighbor))
    {
        if let Some(route) = wasmbgp_flow_row(row).with_context(|| format!("bad row {row}"))? {
            routes.push(route);
        }
    }
    routes.sort();
    Ok(routes)
}

impl FlowRoute {
    /// The components of this rule as wasmbgp's codec types them, for
    /// `wasmbgp_bgp::packet::flowspec::FlowSpec::new` (tests that put rules on the wire
    /// themselves).
    pub fn wasmbgp_components(&self) -> Result<Vec<wasmbgp_bgp::packet::flowspec::Component>> {
        use wasmbgp_bgp::packet::flowspec::{
            BitmaskOp, Component as C, FlowPrefix as P, NumericOp,
        };
        let mut components = Vec::new();
        for (component, text) in &self.matches {
            let prefix = || -> Result<P> {
                let p = FlowPrefix::parse(self.family, text)?;
                Ok(match p.addr {
                    IpAddr::V4(a) => P::V4(
                        wasmbgp_bgp::Ipv4Prefix::new(a, p.len)
                            .with_context(|| format!("bad prefix {text:?}"))?,
                    ),
                    IpAddr::V6(a) => P::V6 {
                        prefix: wasmbgp_bgp::Ipv6Prefix::new(a, p.len)
                            .with_context(|| format!("bad prefix {text:?}"))?,
                        offset: p.offset,
                    },
                })
            };
            let numeric = || -> Result<Vec<NumericOp>> {
                Ok(parse_numeric(*component, text)?
                    .iter()
                    .map(|t| NumericOp {
                        and: t.and,
                        lt: t.lt,
                        gt: t.gt,
                        eq: t.eq,
                        value: t.value,
                    })
                    .collect())
            };
            let bitmask = || -> Result<Vec<BitmaskOp>> {
                Ok(parse_bitmask(*component, text)?
                    .iter()
                    .map(|t| BitmaskOp {
                        and: t.and,
                        not: t.not,
                        matches: t.matches,
                        value: t.value,
                    })
                    .collect())
            };
            components.push(match component {
                Component::Destination => C::Destination(prefix()?),
                Component::Source => C::Source(prefix()?),
                Component::Protocol => C::Protocol(numeric()?),
                Component::Port => C::Port(numeric()?),
                Component::DestinationPort => C::DestinationPort(numeric()?),
                Component::SourcePort => C::SourcePort(numeric()?),
                Component::IcmpType => C::IcmpType(numeric()?),
                Component::IcmpCode => C::IcmpCode(numeric()?),
                Component::TcpFlags => C::TcpFlags(bitmask()?),
                Component::PacketLength => C::PacketLength(numeric()?),
                Component::Dscp => C::Dscp(numeric()?),
                Component::Fragment => C::Fragment(bitmask()?),
                Component::FlowLabel => C::FlowLabel(numeric()?),
            });
        }
        Ok(components)
    }

    /// The rule encoded by wasmbgp's codec (`FlowSpec::new` of
    /// [`FlowRoute::wasmbgp_components`]).
    pub fn wasmbgp_rule(&self) -> Result<wasmbgp_bgp::packet::flowspec::FlowSpec> {
        let afi = match self.family {
            FlowFamily::Ipv4 => wasmbgp_bgp::packet::prefix::AFI_IPV4,
            FlowFamily::Ipv6 => wasmbgp_bgp::packet::prefix::AFI_IPV6,
        };
        wasmbgp_bgp::packet::flowspec::FlowSpec::new(afi, &self.wasmbgp_components()?)
            .map_err(|e| anyhow::anyhow!("wasmbgp's codec refuses {self}: {e}"))
    }

    /// The extended communities carrying the actions (encoded here, from the canonical
    /// texts: not by wasmbgp's codec).
    pub fn wasmbgp_communities(
        &self,
    ) -> Result<Vec<wasmbgp_bgp::packet::attributes::ExtendedCommunity>> {
        self.actions
            .iter()
            .map(|a| {
                Ok(wasmbgp_bgp::packet::attributes::ExtendedCommunity(
                    Action::parse(a)?.to_community().to_be_bytes(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_texts() {
        let ddos = ddos_rule(FlowFamily::Ipv4);
        assert_eq!(
            ddos.to_string(),
            "ipv4-flowspec { source 10.0.0.0/24; protocol =6; destination-port =80; } then { redirect 65001:999; }"
        );
        let c = |comp, v| canonical_component(FlowFamily::Ipv6, comp, v).unwrap();
        assert_eq!(
            c(Component::Destination, "2001:db8:3::/64 offset 8"),
            "1:db8:3::/64 offset 8"
        );
        assert_eq!(
            c(Component::Destination, "2001:db8:3::/64/0"),
            "2001:db8:3::/64"
        );
        assert_eq!(
            c(
                Component::Protocol,
                "[ =tcp ==17 ]".trim_matches(['[', ']', ' '])
            ),
            "=6 =17"
        );
        assert_eq!(c(Component::Port, ">=1024&<=2048 =80"), ">=1024&<=2048 =80");
        assert_eq!(c(Component::TcpFlags, "=syn&!ack"), "syn&!ack");
        assert_eq!(c(Component::TcpFlags, "!=syn+ack"), "!=syn+ack");
        assert_eq!(c(Component::Fragment, "=is-fragment"), "is-fragment");
        for action in [
            "rate-limit 9600",
            "discard",
            "redirect 65001:999",
            "redirect 192.0.2.1:7",
            "redirect 4200000000:7",
            "mark 10",
            "action sample-terminal",
            "redirect-to-nexthop",
            "rate-limit-packets 100",
            "ext 0x0102030405060708",
        ] {
            let parsed = Action::parse(action).unwrap();
            assert_eq!(parsed.to_string(), action);
            assert_eq!(Action::from_community(parsed.to_community()), parsed);
        }
        assert_eq!(
            Action::parse("rate-limit 9600").unwrap().to_community(),
            0x8006_0000_4616_0000
        );
        assert_eq!(
            rich_rule(FlowFamily::Ipv4).as_seen_by("frr").matches[&Component::Port],
            ">=1024,<=2048"
        );
        assert!(rich_rule(FlowFamily::Ipv6).unsupported_by("frr").is_none());
        assert!(
            FlowRoute::new(FlowFamily::Ipv4)
                .matching(Component::Port, "!=80")
                .unsupported_by("frr")
                .is_some()
        );
    }

    #[test]
    fn renders_gobgp_and_bird() {
        let route = rate_limit_rule(FlowFamily::Ipv4);
        assert_eq!(
            route.gobgp_args().unwrap().join(" "),
            "match destination 192.0.2.0/24 protocol ==17 source-port ==53 then rate-limit 9600"
        );
        assert_eq!(
            route.bird_static_route().unwrap(),
            "route flow4 { dst 192.0.2.0/24; proto = 17; sport = 53; } { bgp_ext_community.add((generic, 0x80060000, 0x46160000)); };"
        );
        let rich = rich_rule(FlowFamily::Ipv4);
        let args = rich.gobgp_args().unwrap().join(" ");
        assert!(args.contains("tcp-flags =SA&!R"), "{args}");
        assert!(args.contains("port >=1024&<=2048"), "{args}");
        let bird = rich.bird_static_route().unwrap();
        assert!(bird.contains("tcp flags 0x12/0x12 && 0x0/0x4;"), "{bird}");
        assert!(bird.contains("fragment is_fragment;"), "{bird}");
    }

    #[test]
    fn parses_gobgp() {
        let out = r#"{"[destination: 192.0.2.0/24][protocol: ==udp][source-port: ==53]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"192.0.2.0/24"}},{"type":3,"value":[{"op":129,"value":17}]},{"type":6,"value":[{"op":129,"value":53}]}]},"age":1,"best":true,"attrs":[{"type":1,"value":2},{"type":16,"value":[{"type":128,"subtype":6,"as":0,"rate":9600}]}],"stale":false,"neighbor-ip":"127.1.14.2"}],
        "[destination: 198.51.100.8/29]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"198.51.100.8/29"}},{"type":9,"value":[{"op":1,"value":2},{"op":194,"value":16}]},{"type":12,"value":[{"op":128,"value":2}]}]},"attrs":[{"type":16,"value":[{"type":8,"subtype":0,"value":"AAAAAAAAAA=="},{"type":128,"subtype":7,"terminal":false,"sample":true},{"type":128,"subtype":12,"value":"DP3pQsgAAA=="},{"type":130,"subtype":8,"value":"64086.59904:7"},{"type":129,"subtype":8,"value":"192.0.2.1:7"}]}],"neighbor-ip":"127.1.14.2"}],
        "[destination: 10.0.0.0/8]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"10.0.0.0/8"}}]},"attrs":[]}]}"#;
        let routes = parse_gobgp_rib(out, FlowFamily::Ipv4, "127.1.14.2").unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0], rate_limit_rule(FlowFamily::Ipv4));
        assert_eq!(routes[1].matches[&Component::TcpFlags], "syn&!ack");
        assert_eq!(routes[1].matches[&Component::Fragment], "is-fragment");
        assert_eq!(
            routes[1].actions,
            vec![
                "action sample",
                "rate-limit-packets 100",
                "redirect 192.0.2.1:7",
                "redirect 4200000000:7",
                "redirect-to-nexthop",
            ]
        );
        let broken = r#"{"[destination: 10d:b800:300:2::/64/8][unknown:[56]]":[{"nlri":null,"attrs":null,"neighbor-ip":"127.1.14.2"}]}"#;
        assert!(parse_gobgp_rib(broken, FlowFamily::Ipv6, "127.1.14.2").is_err());
    }

    #[test]
    fn parses_bird() {
        let out = "BIRD 2.0.12 ready.\nTable flowtab4:\nflow4 { dst 198.51.100.0/24; src 203.0.113.0/25; proto 6,17; port 1024..2048; dport 443; sport > 1023; icmp type 8; icmp code 0; tcp flags 0x2/0x2 && 0x0/0x10; length 64..1500; dscp 46; fragment !!is_fragment; }  [session 05:39:50.843 from 127.1.14.1] * (100) [AS65270?]\n\tType: BGP univ\n\tBGP.origin: Incomplete\n\tBGP.as_path: 65270\n\tBGP.local_pref: 100\n\tBGP.ext_community: (generic, 0x80060000, 0x0) (generic, 0x8008fde9, 0x3e7) (generic, 0x80090000, 0xa) (generic, 0x80070000, 0x3) (generic, 0x8000000, 0x0)\nflow4 { dst 198.51.100.4/30; dport < 1000 || > 2000; tcp flags !0x12/0x12; fragment !first_fragment; }  [session 05:45:31.999 from 127.1.14.1] * (100) [AS65271i]\n\tBGP.ext_community: (generic, 0x8208fa56, 0xea000007)\n";
        let routes = parse_bird_routes(out).unwrap();
        assert_eq!(routes.len(), 2);
        let big = routes.iter().find(|r| r.matches.len() > 4).unwrap();
        assert_eq!(big.matches[&Component::Protocol], "=6 =17");
        assert_eq!(big.matches[&Component::Port], ">=1024&<=2048");
        assert_eq!(big.matches[&Component::SourcePort], ">1023");
        assert_eq!(big.matches[&Component::TcpFlags], "syn&!ack");
        assert_eq!(big.matches[&Component::Fragment], "is-fragment");
        assert_eq!(
            big.actions,
            vec![
                "action sample-terminal",
                "discard",
                "mark 10",
                "redirect 65001:999",
                "redirect-to-nexthop"
            ]
        );
        let small = routes.iter().find(|r| r.matches.len() == 4).unwrap();
        assert_eq!(small.matches[&Component::DestinationPort], "<1000 >2000");
        assert_eq!(small.matches[&Component::TcpFlags], "!=syn+ack");
        assert_eq!(small.matches[&Component::Fragment], "!first-fragment");
        assert_eq!(small.actions, vec!["redirect 4200000000:7"]);
        let rt = parse_bird_routes("flow4 { dst 10.0.0.0/8; }  [x]\n\tBGP.ext_community: (rt, 65001, 7) (ro, 192.0.2.1, 8)\n").unwrap();
        assert_eq!(
            rt[0].actions,
            vec!["ext 0x0002fde900000007", "ext 0x0103c00002010008"]
        );
        let v6 =
            "flow6 { dst 1:db8:3::/64 offset 8; next header 58; label 12345,1000..2000; }  [x]\n";
        let routes = parse_bird_routes(v6).unwrap();
        assert_eq!(
            routes[0].matches[&Component::Destination],
            "1:db8:3::/64 offset 8"
        );
        assert_eq!(
            routes[0].matches[&Component::FlowLabel],
            "=12345 >=1000&<=2000"
        );
    }

    #[test]
    fn parses_frr() {
        let table = r#"{"vrfId":0,"routes":{"to 198.51.100.0/24 ...":[{"valid":true,"to":"198.51.100.0/24","proto":"= 6 , = 17 ","port":">= 1024 , <= 2048 ","tcp":"= 2,&∋ ! 16","pktfrag":"∋ 2","peerId":"127.1.14.1"}],
            "to 198.51.100.8/29":[{"to":"198.51.100.8/29","peerId":"127.1.15.1"}]}}"#;
        let detail = "[\n  {\n    \"to\":\"198.51.100.0/24\",\"proto\":\"= 6 , = 17 \",\"port\":\">= 1024 , <= 2048 \",\"tcp\":\"= 2,&∋ ! 16\",\"pktfrag\":\"∋ 2\"\n  },\n  {\n    \"ecomlist\":\"FS:rate 0.000000 FS:action eval stops FS:redirect VRF RT:65001:999 FS:marking 10 FS:redirect IP 0x0 UNK:128, 12\"\n  },\n  {\n    \"time\":\"00:00:04\"\n  }\n]\n[\n  {\"to\":\"198.51.100.8/29\"}\n]\n";
        let routes = parse_frr_routes(table, detail, FlowFamily::Ipv4, "127.1.14.1").unwrap();
        assert_eq!(routes.len(), 1);
        let r = &routes[0];
        assert_eq!(r.matches[&Component::Protocol], "=6,=17");
        assert_eq!(r.matches[&Component::Port], ">=1024,<=2048");
        assert_eq!(r.matches[&Component::TcpFlags], "syn&!ack");
        assert_eq!(r.matches[&Component::Fragment], "is-fragment");
        assert_eq!(
            r.actions,
            vec![
                "action ?",
                "discard",
                "ext 128:12",
                "mark 10",
                "redirect 65001:999",
                "redirect-to-nexthop"
            ]
        );
        assert!(
            parse_frr_routes("", "", FlowFamily::Ipv4, "x")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn replays_exabgp() {
        let events = r#"{ "type": "state", "neighbor": { "state": "up" } }
{ "type": "update", "neighbor": { "direction": "receive", "message": { "update": { "attribute": { "origin": "incomplete", "extended-community": [ { "value": 9225060886715039744, "string": "rate-limit:0" }, { "value": 9225903013837669351, "string": "redirect:65001:999" }, { "value": 9225905311645171722, "string": "mark 10" }, { "value": 9225342361691750403, "string": "action sample-terminal" }, { "value": 9297892536972541959, "string": "" } ] }, "announce": { "ipv4 flow": { "no-nexthop": [ { "destination-ipv4": [ "198.51.100.0/24" ], "string": "flow destination-ipv4 198.51.100.0/24 source-ipv4 203.0.113.0/25 protocol [ =tcp =udp ] port [ >=1024&<=2048 ] destination-port =443 source-port >1023 icmp-type =echo-request icmp-code =0 tcp-flags [ =syn&!ack ] packet-length [ >=64&<=1500 ] dscp =46 fragment is-fragment" } ] } } } } } }
{ "type": "update", "neighbor": { "message": { "update": { "attribute": { "extended-community": [ { "value": 9225905311645171722, "string": "mark 10" } ] }, "announce": { "ipv6 flow": { "no-nexthop": [ { "string": "flow destination-ipv6 2001:db8:3::/64/0 next-header =unknown protocol type 58 icmp-type =unknown icmp type type 128 tcp-flags !=syn+ack traffic-class =46 flow-label [ =12345 >=1000&<=2000 ]" } ] } } } } } }
{ "type": "update", "neighbor": { "message": { "update": { "attribute": {}, "announce": { "ipv4 flow": { "no-nexthop": [ { "string": "flow destination-ipv4 192.0.2.0/24 protocol =udp source-port =53" } ] } } } } } }
{ "type": "update", "neighbor": { "message": { "update": { "withdraw": { "ipv4 flow": [ { "destination-ipv4": [ "192.0.2.0/24" ], "string": "flow destination-ipv4 192.0.2.0/24 protocol =udp source-port =53" } ] } } } } }
"#;
        let routes = replay_exabgp_flows(events).unwrap();
        assert_eq!(routes.len(), 2);
        let v4 = &routes[0];
        assert_eq!(v4.family, FlowFamily::Ipv4);
        assert_eq!(v4.matches[&Component::Protocol], "=6 =17");
        assert_eq!(v4.matches[&Component::IcmpType], "=8");
        assert_eq!(v4.matches[&Component::TcpFlags], "syn&!ack");
        assert_eq!(
            v4.actions,
            vec![
                "action sample-terminal",
                "discard",
                "mark 10",
                "redirect 192.0.2.1:7",
                "redirect 65001:999"
            ]
        );
        let v6 = &routes[1];
        assert_eq!(v6.matches[&Component::Protocol], "=58");
        assert_eq!(v6.matches[&Component::IcmpType], "=128");
        assert_eq!(v6.matches[&Component::TcpFlags], "!=syn+ack");
        assert_eq!(v6.matches[&Component::FlowLabel], "=12345 >=1000&<=2000");
        assert!(
            replay_exabgp_flows("{ \"type\": \"state\" }\n")
                .unwrap()
                .is_empty()
        );
    }
}

#[cfg(test)]
mod wasmbgp_tests {
    use super::*;

    /// Rows of wasmbgp's `show adj-rib-in 127.1.23.2 --json` captured with BIRD as the
    /// originator (`tests/flowspec_receive.rs`), plus a unicast row, a row of another
    /// neighbor and rows with the rarer words.
    #[test]
    fn parses_wasmbgp_rows() {
        let json: Value = serde_json::from_str(r#"[
{"actions": ["discard", "action sample-terminal", "mark 10", "redirect 192.0.2.1:7"], "as-path": [65279], "communities": [], "extended-communities": ["discard", "action:sample-terminal", "mark:10", "redirect:192.0.2.1:7"], "family": "ipv4-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": null, "origin": "igp", "prefix": "destination 198.51.100.0/24 source 203.0.113.0/25 protocol [ =tcp =udp ] port [ >=1024&<=2048 ] destination-port [ =443 =8443 ] source-port >1023 icmp-type =echo-request icmp-code =0 tcp-flags [ =syn+ack&!rst ] packet-length [ >=64&<=1500 ] dscp =46 fragment =is-fragment"},
{"actions": ["redirect-to-nexthop", "action none", "rate-limit-packets 100", "redirect 4200000000:7"], "as-path": [65279], "communities": [], "extended-communities": ["redirect-to-nexthop", "action:none", "rate-limit-packets:100", "redirect:4200000000L:7"], "family": "ipv4-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": null, "origin": "igp", "prefix": "destination 198.51.100.8/29 destination-port [ !=80&<1000 >2000 ] tcp-flags !=syn+ack fragment !first-fragment"},
{"actions": ["rate-limit 1000", "action terminal", "mark 10", "redirect 192.0.2.1:7"], "as-path": [65279], "communities": [], "extended-communities": ["rate-limit:1000", "action:terminal", "mark:10", "redirect:192.0.2.1:7"], "family": "ipv6-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": null, "origin": "igp", "prefix": "destination 2001:db8:3::/64 source 2001:db8:4::/56 next-header =ipv6-icmp port [ >=1024&<=2048 ] destination-port [ =443 =8443 ] source-port >1023 icmp-type =echo-request icmp-code =0 tcp-flags [ =syn+ack&!rst ] packet-length [ >=64&<=1500 ] dscp =46 fragment =is-fragment flow-label [ =12345 >=1000&<=2000 ]"},
{"actions": ["redirect-to-nexthop copy", "rate-limit 1000.5"], "as-path": [65279], "communities": [], "extended-communities": ["target:65001:7", "redirect-to-nexthop:copy", "rate-limit:1000.5"], "family": "ipv6-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": null, "origin": "igp", "prefix": "destination 2001:db8:5::/64 dscp =10 flow-label [ =12345 >=1000&<=2000 ]"},
{"actions": ["discard"], "as-path": [65279], "communities": [], "extended-communities": ["discard"], "family": "ipv6-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": null, "origin": "igp", "prefix": "destination 1:db8:3::/64/8 source 0:0:4:5::/64/32 next-header =tcp destination-port =443"},
{"as-path": [65279], "communities": [], "extended-communities": ["origin:192.0.2.1:8", "target:4200000000L:9", "0x0102030405060708", "0x8006000000000001"], "family": "ipv6-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": null, "origin": "igp", "prefix": "family ipv6 dscp =10 fragment not-a-fragment"},
{"actions": ["redirect 100L:7"], "as-path": [65279], "communities": [], "extended-communities": ["redirect:100L:7"], "family": "ipv4-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": null, "origin": "igp", "prefix": "protocol [ =ipip =pim ] tcp-flags ns+fin"},
{"as-path": [65279], "communities": [], "extended-communities": [], "family": "ipv4-unicast", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.2", "next-hop": "192.0.2.1", "origin": "igp", "prefix": "203.0.113.0/24"},
{"actions": ["redirect 65001:999"], "as-path": [65279], "communities": [], "extended-communities": ["redirect:65001:999"], "family": "ipv4-flowspec", "large-communities": [], "local-pref": null, "med": null, "neighbor": "127.1.23.3", "next-hop": null, "origin": "igp", "prefix": "source 10.0.0.0/24 protocol =tcp destination-port =80"}
]"#).unwrap();
        let routes = parse_wasmbgp_routes(&json, "127.1.23.2").unwrap();
        let mut want = vec![
            rich_rule(FlowFamily::Ipv4),
            bird_only_rules()[0].clone(),
            rich_rule(FlowFamily::Ipv6),
            bird_only_rules()[1].clone(),
            FlowRoute::new(FlowFamily::Ipv6)
                .matching(Component::Destination, "2001:db8:3::/64 offset 8")
                .matching(Component::Source, "2001:db8:4:5::/64 offset 32")
                .matching(Component::Protocol, "=6")
                .matching(Component::DestinationPort, "=443")
                .then("discard"),
            FlowRoute::new(FlowFamily::Ipv6)
                .matching(Component::Dscp, "=10")
                .matching(Component::Fragment, "!is-fragment+first-fragment")
                .then("ext 0x0103c00002010008")
                .then("ext 0x0202fa56ea000009")
                .then("ext 0x0102030405060708"),
            FlowRoute::new(FlowFamily::Ipv4)
                .matching(Component::Protocol, "=94 =103")
                .matching(Component::TcpFlags, "fin+0x100")
                .then("redirect 100:7"),
        ];
        want.sort();
        assert_eq!(routes, want, "{}", describe_difference(&routes, &want));
        // ICMP names by family: echo-request is 8 in IPv4, 128 in IPv6.
        assert_eq!(
            routes
                .iter()
                .filter(|r| r
                    .matches
                    .get(&Component::IcmpType)
                    .is_some_and(|t| t == "=128"))
                .count(),
            1
        );
        assert!(
            parse_wasmbgp_routes(&json, "127.1.23.3").unwrap()[0] == ddos_rule(FlowFamily::Ipv4)
        );
        assert!(parse_wasmbgp_flow(FlowFamily::Ipv4, "protocol =no-such").is_err());
        assert!(parse_wasmbgp_flow(FlowFamily::Ipv4, "family ipv6 dscp =10").is_err());
        assert!(parse_wasmbgp_flow(FlowFamily::Ipv4, "destination-port [ =80").is_err());
        assert!(parse_wasmbgp_flow(FlowFamily::Ipv4, "").is_err());
        assert!(parse_wasmbgp_routes(&serde_json::json!({}), "x").is_err());
    }

    /// The rules built with wasmbgp's codec come back the same through its words.
    #[test]
    fn builds_wasmbgp_rules() {
        let mut rules: Vec<FlowRoute> = FlowFamily::ALL
            .iter()
            .flat_map(|f| [ddos_rule(*f), rate_limit_rule(*f), rich_rule(*f)])
            .collect();
        rules.push(
            FlowRoute::new(FlowFamily::Ipv6)
                .matching(Component::Destination, "2001:db8:3::/64 offset 8")
                .matching(Component::Fragment, "!first-fragment")
                .then("discard"),
        );
        for rule in &rules {
            let encoded = rule.wasmbgp_rule().unwrap();
            let back = parse_wasmbgp_flow(rule.family, &encoded.to_string()).unwrap();
            assert_eq!(back, rule.rule(), "{encoded}");
            let communities = rule.wasmbgp_communities().unwrap();
            assert_eq!(communities.len(), rule.actions.len());
        }
        assert_eq!(
            rate_limit_rule(FlowFamily::Ipv4)
                .wasmbgp_communities()
                .unwrap()[0]
                .0,
            [0x80, 0x06, 0, 0, 0x46, 0x16, 0, 0]
        );
    }
}
