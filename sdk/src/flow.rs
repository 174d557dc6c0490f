//! FlowSpec rules (RFC 8955 for IPv4, RFC 8956 for IPv6) and their traffic
//! actions, for health checks that announce them (`healthcheck` world; needs
//! `grants.neighbors`).
//!
//! A [`FlowRule`] says which packets match; a list of [`Action`]s says what
//! routers do with them. The actions travel as extended communities of the
//! route ([`Action::community`]); [`announce`] and [`withdraw`] check both
//! locally and call the WIT `routes.announce-flow` / `routes.withdraw-flow`.
//!
//! ```
//! use wasmbgp_sdk::Attributes;
//! use wasmbgp_sdk::flow::{self, Action, BitmaskMatch, FlowRule, NumericMatch, Protocol, tcp_flags};
//! # fn main() -> Result<(), wasmbgp_sdk::Error> {
//!
//! // UDP from 198.51.100.0/24 to port 53 of 192.0.2.10, limited to 9600 bytes/s.
//! let rule = FlowRule::ipv4()
//!     .destination("192.0.2.10/32".parse()?)
//!     .source("198.51.100.0/24".parse()?)
//!     .protocol(Protocol::UDP)
//!     .destination_port(53);
//! let limit = Action::RateLimit { bytes_per_second: 9600.0 };
//! assert_eq!(limit.community(), 0x8006_0000_4616_0000);
//! flow::announce(&rule, &[limit], &Attributes::new(), &[])?;
//!
//! // TCP SYNs to the high ports of 2001:db8::1, dropped and sampled.
//! let rule = FlowRule::for_destination("2001:db8::1/128".parse()?)
//!     .protocol(Protocol::TCP)
//!     .destination_ports(NumericMatch::range(1024, 65535))
//!     .tcp_flags(BitmaskMatch::all(tcp_flags::SYN).and(BitmaskMatch::none(tcp_flags::ACK)));
//! assert_eq!(
//!     rule.to_string(),
//!     "destination 2001:db8::1/128 next-header =tcp destination-port [ >=1024&<=65535 ] tcp-flags [ =0x2&!0x10 ]"
//! );
//! flow::announce(&rule, &[Action::Discard, Action::Sample], &Attributes::new(), &[])?;
//! flow::withdraw(&rule, &[])?;
//! # Ok(())
//! # }
//! ```
//!
//! Outside a component, [`announce`] and [`withdraw`] go to [`testing`], a
//! stand-in of the host's table, so plugin logic built on them runs in
//! `cargo test`.
//!
//! Operator lists follow RFC 8955 §4.2.1: a [`NumericMatch`] or
//! [`BitmaskMatch`] is an OR of ANDs of comparisons, and its `and` / `or`
//! combinators keep that meaning (AND binds tighter than OR on the wire, so
//! `and` distributes over the alternatives it is given).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;
use crate::Prefix;
use crate::routes::RouteError;
use crate::text::{ParseError, parse_asn};
use crate::types::{self, Attributes, IpAddress};

// ---------------------------------------------------------------------------
// Numeric and bitmask operator lists
// ---------------------------------------------------------------------------

/// One numeric comparison: the RFC's lt / gt / eq bits against `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Comparison {
    less: bool,
    greater: bool,
    equal: bool,
    value: u64,
}

impl Comparison {
    const fn new(less: bool, greater: bool, equal: bool, value: u64) -> Self {
        Comparison {
            less,
            greater,
            equal,
            value,
        }
    }
}

impl Comparison {
    /// `=80`, `>=1024`, `!=6` with the value written as `value`; `true` and
    /// `false` for the degenerate forms.
    fn write(&self, f: &mut fmt::Formatter<'_>, value: &dyn fmt::Display) -> fmt::Result {
        let sign = match (self.less, self.greater, self.equal) {
            (false, false, false) => return f.write_str("false"),
            (true, true, true) => return f.write_str("true"),
            (false, false, true) => "=",
            (false, true, false) => ">",
            (false, true, true) => ">=",
            (true, false, false) => "<",
            (true, false, true) => "<=",
            (true, true, false) => "!=",
        };
        write!(f, "{sign}{value}")
    }
}

/// Writes alternatives the way ExaBGP does (and the host's `show` does):
/// ANDed terms joined by `&`, alternatives by spaces, `[ ]` around more than
/// one term.
fn write_alternatives<T>(
    f: &mut fmt::Formatter<'_>,
    alternatives: &[Vec<T>],
    write_term: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    let terms: usize = alternatives.iter().map(Vec::len).sum();
    if terms > 1 {
        f.write_str("[ ")?;
    }
    for (i, conjunction) in alternatives.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        for (j, term) in conjunction.iter().enumerate() {
            if j > 0 {
                f.write_str("&")?;
            }
            write_term(f, term)?;
        }
    }
    if terms > 1 {
        f.write_str(" ]")?;
    }
    Ok(())
}

/// The product of two ORs of ANDs: `(a | b) & (c | d)` is
/// `a&c | a&d | b&c | b&d`, which the wire's "AND before OR" can carry.
fn distribute<T: Clone>(left: Vec<Vec<T>>, right: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut product = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in right {
            let mut both = l.clone();
            both.extend(r.iter().cloned());
            product.push(both);
        }
    }
    product
}

/// A numeric component's test (protocol, ports, ICMP type and code, packet
/// length, DSCP, flow label): an OR of alternatives, each an AND of
/// comparisons (RFC 8955 §4.2.1.1).
///
/// ```ignore
/// NumericMatch::equal(80).or(NumericMatch::equal(443));     // [ =80 =443 ]
/// NumericMatch::range(1024, 65535);                         // [ >=1024&<=65535 ]
/// NumericMatch::any_of([53, 853]);                          // [ =53 =853 ]
/// NumericMatch::above(1400).and(NumericMatch::not_equal(1500));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumericMatch {
    alternatives: Vec<Vec<Comparison>>,
}

impl NumericMatch {
    fn single(comparison: Comparison) -> Self {
        NumericMatch {
            alternatives: vec![vec![comparison]],
        }
    }

    /// `=value`.
    pub fn equal(value: u64) -> Self {
        Self::single(Comparison::new(false, false, true, value))
    }

    /// `!=value`.
    pub fn not_equal(value: u64) -> Self {
        Self::single(Comparison::new(true, true, false, value))
    }

    /// `<value`.
    pub fn below(value: u64) -> Self {
        Self::single(Comparison::new(true, false, false, value))
    }

    /// `<=value`.
    pub fn at_most(value: u64) -> Self {
        Self::single(Comparison::new(true, false, true, value))
    }

    /// `>value`.
    pub fn above(value: u64) -> Self {
        Self::single(Comparison::new(false, true, false, value))
    }

    /// `>=value`.
    pub fn at_least(value: u64) -> Self {
        Self::single(Comparison::new(false, true, true, value))
    }

    /// From `low` to `high`, both included: `>=low&<=high` (`=low` when they
    /// are equal). A reversed range (`low > high`) matches nothing, as on
    /// the wire.
    pub fn range(low: u64, high: u64) -> Self {
        if low == high {
            Self::equal(low)
        } else {
            Self::at_least(low).and(Self::at_most(high))
        }
    }

    /// Any of `values`: `=a | =b | ...`. With no value, an empty list, which
    /// [`FlowRule::check`] refuses.
    pub fn any_of(values: impl IntoIterator<Item = u64>) -> Self {
        NumericMatch {
            alternatives: values
                .into_iter()
                .map(|v| vec![Comparison::new(false, false, true, v)])
                .collect(),
        }
    }

    /// This test or `other`.
    pub fn or(mut self, other: NumericMatch) -> Self {
        self.alternatives.extend(other.alternatives);
        self
    }

    /// This test and `other` (distributed over the alternatives of both, so
    /// that the meaning holds whatever they hold).
    pub fn and(self, other: NumericMatch) -> Self {
        NumericMatch {
            alternatives: distribute(self.alternatives, &other.alternatives),
        }
    }

    /// The WIT operator list: each alternative's first operator ORed with
    /// what precedes it, the others ANDed.
    pub fn to_ops(&self) -> Vec<types::NumericOp> {
        self.alternatives
            .iter()
            .flat_map(|conjunction| {
                conjunction
                    .iter()
                    .enumerate()
                    .map(|(i, c)| types::NumericOp {
                        and_previous: i > 0,
                        less: c.less,
                        greater: c.greater,
                        equal: c.equal,
                        value: c.value,
                    })
            })
            .collect()
    }

    /// Reads a WIT operator list (the `and-previous` bit of the first
    /// operator is ignored, as the RFC says).
    pub fn from_ops(ops: &[types::NumericOp]) -> Self {
        let mut alternatives: Vec<Vec<Comparison>> = Vec::new();
        for op in ops {
            let comparison = Comparison::new(op.less, op.greater, op.equal, op.value);
            match alternatives.last_mut() {
                Some(conjunction) if op.and_previous => conjunction.push(comparison),
                _ => alternatives.push(vec![comparison]),
            }
        }
        NumericMatch { alternatives }
    }

    /// The largest value compared (0 for an empty list).
    fn max_value(&self) -> u64 {
        self.alternatives
            .iter()
            .flatten()
            .map(|c| c.value)
            .max()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.alternatives.is_empty()
    }
}

impl fmt::Display for NumericMatch {
    /// ExaBGP's words: `=80`, `[ =53 =853 ]`, `[ >=1024&<=65535 ]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_alternatives(f, &self.alternatives, |f, c| c.write(f, &c.value))
    }
}

/// One bitmask test: with `all_bits`, every bit of `value` set in the packet
/// (else any of them); `negate` inverts the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct BitTest {
    negate: bool,
    all_bits: bool,
    value: u64,
}

impl fmt::Display for BitTest {
    /// `0x2` (any), `=0x12` (all), `!0x10` (none), `!=0x12` (not all).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match (self.negate, self.all_bits) {
            (false, false) => "",
            (false, true) => "=",
            (true, false) => "!",
            (true, true) => "!=",
        };
        write!(f, "{sign}{:#x}", self.value)
    }
}

/// The bits of the TCP flags octet, for [`BitmaskMatch`] on
/// [`FlowRule::tcp_flags`].
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u64 = 0x01;
    /// SYN.
    pub const SYN: u64 = 0x02;
    /// RST.
    pub const RST: u64 = 0x04;
    /// PSH.
    pub const PUSH: u64 = 0x08;
    /// ACK.
    pub const ACK: u64 = 0x10;
    /// URG.
    pub const URGENT: u64 = 0x20;
    /// ECE.
    pub const ECE: u64 = 0x40;
    /// CWR.
    pub const CWR: u64 = 0x80;
}

/// The bits of the fragment component (RFC 8955 §4.2.2.12), for
/// [`BitmaskMatch`] on [`FlowRule::fragment`].
pub mod fragment_flags {
    /// Don't Fragment (IPv4 only: IPv6 has no such bit, RFC 8956 §3.6).
    pub const DONT_FRAGMENT: u64 = 0x01;
    /// Is a fragment (other than the first).
    pub const IS_FRAGMENT: u64 = 0x02;
    /// First fragment.
    pub const FIRST_FRAGMENT: u64 = 0x04;
    /// Last fragment.
    pub const LAST_FRAGMENT: u64 = 0x08;
}

/// A bitmask component's test (TCP flags, fragment): an OR of alternatives,
/// each an AND of bit tests (RFC 8955 §4.2.1.2).
///
/// ```ignore
/// // SYN set and ACK clear: the first packet of a TCP handshake.
/// BitmaskMatch::all(tcp_flags::SYN).and(BitmaskMatch::none(tcp_flags::ACK));
/// BitmaskMatch::any(fragment_flags::IS_FRAGMENT | fragment_flags::FIRST_FRAGMENT);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BitmaskMatch {
    alternatives: Vec<Vec<BitTest>>,
}

impl BitmaskMatch {
    fn single(negate: bool, all_bits: bool, value: u64) -> Self {
        BitmaskMatch {
            alternatives: vec![vec![BitTest {
                negate,
                all_bits,
                value,
            }]],
        }
    }

    /// Every bit of `bits` is set.
    pub fn all(bits: u64) -> Self {
        Self::single(false, true, bits)
    }

    /// At least one bit of `bits` is set.
    pub fn any(bits: u64) -> Self {
        Self::single(false, false, bits)
    }

    /// No bit of `bits` is set.
    pub fn none(bits: u64) -> Self {
        Self::single(true, false, bits)
    }

    /// Not every bit of `bits` is set.
    pub fn not_all(bits: u64) -> Self {
        Self::single(true, true, bits)
    }

    /// This test or `other`.
    pub fn or(mut self, other: BitmaskMatch) -> Self {
        self.alternatives.extend(other.alternatives);
        self
    }

    /// This test and `other` (distributed over the alternatives of both).
    pub fn and(self, other: BitmaskMatch) -> Self {
        BitmaskMatch {
            alternatives: distribute(self.alternatives, &other.alternatives),
        }
    }

    /// The WIT operator list.
    pub fn to_ops(&self) -> Vec<types::BitmaskOp> {
        self.alternatives
            .iter()
            .flat_map(|conjunction| {
                conjunction
                    .iter()
                    .enumerate()
                    .map(|(i, t)| types::BitmaskOp {
                        and_previous: i > 0,
                        negate: t.negate,
                        all_bits: t.all_bits,
                        value: t.value,
                    })
            })
            .collect()
    }

    /// Reads a WIT operator list (the first `and-previous` is ignored).
    pub fn from_ops(ops: &[types::BitmaskOp]) -> Self {
        let mut alternatives: Vec<Vec<BitTest>> = Vec::new();
        for op in ops {
            let test = BitTest {
                negate: op.negate,
                all_bits: op.all_bits,
                value: op.value,
            };
            match alternatives.last_mut() {
                Some(conjunction) if op.and_previous => conjunction.push(test),
                _ => alternatives.push(vec![test]),
            }
        }
        BitmaskMatch { alternatives }
    }

    /// Every bit any test looks at.
    fn bits_used(&self) -> u64 {
        self.alternatives
            .iter()
            .flatten()
            .fold(0, |bits, t| bits | t.value)
    }

    fn is_empty(&self) -> bool {
        self.alternatives.is_empty()
    }
}

impl fmt::Display for BitmaskMatch {
    /// `=0x2`, `[ =0x2&!0x10 ]` (bits in hex).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_alternatives(f, &self.alternatives, |f, t| t.fmt(f))
    }
}

// ---------------------------------------------------------------------------
// Protocols
// ---------------------------------------------------------------------------

/// An IP protocol number (the IPv6 next header on IPv6 rules). Parses and
/// prints the usual names ("tcp", "udp", "icmp", "ipv6-icmp"...) or a
/// number from 0 to 255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP (1).
    pub const ICMP: Protocol = Protocol(1);
    /// IGMP (2).
    pub const IGMP: Protocol = Protocol(2);
    /// TCP (6).
    pub const TCP: Protocol = Protocol(6);
    /// UDP (17).
    pub const UDP: Protocol = Protocol(17);
    /// GRE (47).
    pub const GRE: Protocol = Protocol(47);
    /// ESP (50).
    pub const ESP: Protocol = Protocol(50);
    /// AH (51).
    pub const AH: Protocol = Protocol(51);
    /// ICMPv6 (58).
    pub const ICMPV6: Protocol = Protocol(58);
    /// SCTP (132).
    pub const SCTP: Protocol = Protocol(132);

    /// The names printed (the first for each number) and read.
    const NAMES: [(&'static str, Protocol); 10] = [
        ("icmp", Protocol::ICMP),
        ("igmp", Protocol::IGMP),
        ("tcp", Protocol::TCP),
        ("udp", Protocol::UDP),
        ("gre", Protocol::GRE),
        ("esp", Protocol::ESP),
        ("ah", Protocol::AH),
        ("ipv6-icmp", Protocol::ICMPV6),
        ("icmpv6", Protocol::ICMPV6),
        ("sctp", Protocol::SCTP),
    ];
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Protocol::NAMES.iter().find(|(_, p)| p == self) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Protocol {
    type Err = ParseError;

    /// Parses "tcp", "UDP", "ipv6-icmp", "icmpv6" or "17".
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let trimmed = text.trim();
        if let Some((_, protocol)) = Protocol::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
        {
            return Ok(*protocol);
        }
        if !trimmed.is_empty()
            && trimmed.bytes().all(|b| b.is_ascii_digit())
            && let Ok(number) = trimmed.parse::<u8>()
        {
            return Ok(Protocol(number));
        }
        Err(ParseError::new(
            "protocol",
            text,
            "expected tcp, udp, icmp, ipv6-icmp, gre, esp, ah, igmp, sctp or a number from 0 to 255",
        ))
    }
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

/// A prefix component with its IPv6 bit offset (RFC 8956 §3.1; 0 on IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RulePrefix {
    prefix: Prefix,
    offset: u8,
}

impl RulePrefix {
    fn to_wit(self) -> types::FlowPrefix {
        types::FlowPrefix {
            prefix: self.prefix.into(),
            offset: self.offset,
        }
    }
}

impl fmt::Display for RulePrefix {
    /// `192.0.2.0/24`, and with an offset ExaBGP's `ADDRESS/LENGTH/OFFSET`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.offset == 0 {
            self.prefix.fmt(f)
        } else {
            write!(f, "{}/{}", self.prefix, self.offset)
        }
    }
}

/// A FlowSpec rule: which packets match. Build one with [`FlowRule::ipv4`],
/// [`FlowRule::ipv6`] or [`FlowRule::for_destination`] and the builder
/// methods; each kind of component is held once, and setting it again
/// replaces it. The host puts the components in the RFC's order.
///
/// Ordered and hashable, so plugins can key their tables by the rule, which
/// is also what identifies a flow route to the host. [`FlowRule::check`]
/// says whether the host would accept it; [`announce`] calls it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowRule {
    ipv6: bool,
    destination: Option<RulePrefix>,
    source: Option<RulePrefix>,
    protocol: Option<NumericMatch>,
    port: Option<NumericMatch>,
    destination_port: Option<NumericMatch>,
    source_port: Option<NumericMatch>,
    icmp_type: Option<NumericMatch>,
    icmp_code: Option<NumericMatch>,
    tcp_flags: Option<BitmaskMatch>,
    packet_length: Option<NumericMatch>,
    dscp: Option<NumericMatch>,
    fragment: Option<BitmaskMatch>,
    flow_label: Option<NumericMatch>,
}

impl FlowRule {
    fn empty(ipv6: bool) -> Self {
        FlowRule {
            ipv6,
            destination: None,
            source: None,
            protocol: None,
            port: None,
            destination_port: None,
            source_port: None,
            icmp_type: None,
            icmp_code: None,
            tcp_flags: None,
            packet_length: None,
            dscp: None,
            fragment: None,
            flow_label: None,
        }
    }

    /// An IPv4 rule (RFC 8955) with no component yet.
    pub fn ipv4() -> Self {
        Self::empty(false)
    }

    /// An IPv6 rule (RFC 8956) with no component yet.
    pub fn ipv6() -> Self {
        Self::empty(true)
    }

    /// A rule of `destination`'s family matching packets to `destination`.
    pub fn for_destination(destination: Prefix) -> Self {
        Self::empty(!destination.is_ipv4()).destination(destination)
    }

    /// True for an IPv6 rule.
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// The destination prefix, if the rule has one.
    pub fn destination_prefix(&self) -> Option<Prefix> {
        self.destination.map(|d| d.prefix)
    }

    /// Packets to `prefix` (of the rule's family).
    pub fn destination(self, prefix: Prefix) -> Self {
        self.destination_from_bit(prefix, 0)
    }

    /// IPv6: packets whose destination address matches bits `offset` to
    /// `prefix.length()` of `prefix` (RFC 8956 §3.1).
    pub fn destination_from_bit(mut self, prefix: Prefix, offset: u8) -> Self {
        self.destination = Some(RulePrefix { prefix, offset });
        self
    }

    /// Packets from `prefix` (of the rule's family).
    pub fn source(self, prefix: Prefix) -> Self {
        self.source_from_bit(prefix, 0)
    }

    /// IPv6: packets whose source address matches bits `offset` to
    /// `prefix.length()` of `prefix`.
    pub fn source_from_bit(mut self, prefix: Prefix, offset: u8) -> Self {
        self.source = Some(RulePrefix { prefix, offset });
        self
    }

    /// Packets of IP protocol `protocol` (on IPv6, next header).
    pub fn protocol(self, protocol: Protocol) -> Self {
        self.protocols(NumericMatch::equal(protocol.0.into()))
    }

    /// Packets whose protocol passes `test` (values up to 255).
    pub fn protocols(mut self, test: NumericMatch) -> Self {
        self.protocol = Some(test);
        self
    }

    /// TCP or UDP packets from or to port `port`.
    pub fn port(self, port: u16) -> Self {
        self.ports(NumericMatch::equal(port.into()))
    }

    /// TCP or UDP packets whose source or destination port passes `test`.
    pub fn ports(mut self, test: NumericMatch) -> Self {
        self.port = Some(test);
        self
    }

    /// TCP or UDP packets to port `port`.
    pub fn destination_port(self, port: u16) -> Self {
        self.destination_ports(NumericMatch::equal(port.into()))
    }

    /// TCP or UDP packets whose destination port passes `test`.
    pub fn destination_ports(mut self, test: NumericMatch) -> Self {
        self.destination_port = Some(test);
        self
    }

    /// TCP or UDP packets from port `port`.
    pub fn source_port(self, port: u16) -> Self {
        self.source_ports(NumericMatch::equal(port.into()))
    }

    /// TCP or UDP packets whose source port passes `test`.
    pub fn source_ports(mut self, test: NumericMatch) -> Self {
        self.source_port = Some(test);
        self
    }

    /// ICMP packets of type `icmp_type`.
    pub fn icmp_type(self, icmp_type: u8) -> Self {
        self.icmp_types(NumericMatch::equal(icmp_type.into()))
    }

    /// ICMP packets whose type passes `test`.
    pub fn icmp_types(mut self, test: NumericMatch) -> Self {
        self.icmp_type = Some(test);
        self
    }

    /// ICMP packets of code `code`.
    pub fn icmp_code(self, code: u8) -> Self {
        self.icmp_codes(NumericMatch::equal(code.into()))
    }

    /// ICMP packets whose code passes `test`.
    pub fn icmp_codes(mut self, test: NumericMatch) -> Self {
        self.icmp_code = Some(test);
        self
    }

    /// TCP packets whose flags pass `test` (bits in [`tcp_flags`]).
    pub fn tcp_flags(mut self, test: BitmaskMatch) -> Self {
        self.tcp_flags = Some(test);
        self
    }

    /// Packets whose total length (IPv4) or payload length (IPv6) passes
    /// `test`.
    pub fn packet_length(mut self, test: NumericMatch) -> Self {
        self.packet_length = Some(test);
        self
    }

    /// Packets with DSCP `dscp` (0 to 63).
    pub fn dscp(self, dscp: u8) -> Self {
        self.dscps(NumericMatch::equal(dscp.into()))
    }

    /// Packets whose DSCP passes `test`.
    pub fn dscps(mut self, test: NumericMatch) -> Self {
        self.dscp = Some(test);
        self
    }

    /// Packets whose fragment bits pass `test` (bits in [`fragment_flags`]).
    pub fn fragment(mut self, test: BitmaskMatch) -> Self {
        self.fragment = Some(test);
        self
    }

    /// IPv6 packets whose flow label passes `test` (20 bits).
    pub fn flow_label(mut self, test: NumericMatch) -> Self {
        self.flow_label = Some(test);
        self
    }

    /// The numeric components with their names and largest values, in the
    /// RFC's order.
    fn numeric_components(&self) -> [(&'static str, &Option<NumericMatch>, u64); 9] {
        [
            ("protocol", &self.protocol, 0xff),
            ("port", &self.port, 0xffff),
            ("destination-port", &self.destination_port, 0xffff),
            ("source-port", &self.source_port, 0xffff),
            ("icmp-type", &self.icmp_type, 0xff),
            ("icmp-code", &self.icmp_code, 0xff),
            ("packet-length", &self.packet_length, 0xffff),
            ("dscp", &self.dscp, 0x3f),
            ("flow-label", &self.flow_label, 0x000f_ffff),
        ]
    }

    /// Why the host would refuse this rule, if it would: a prefix of the
    /// other family, an IPv6 offset not below the length (or any offset on
    /// IPv4), a value too large for its component, an empty operator list,
    /// a flow label or Don't Fragment bit on IPv4... A rule with no
    /// component at all is refused too: it would match every packet, which a
    /// plugin surely did not mean.
    pub fn check(&self) -> Result<(), Error> {
        let family = if self.ipv6 { "IPv6" } else { "IPv4" };
        for (name, prefix) in [("destination", self.destination), ("source", self.source)] {
            let Some(RulePrefix { prefix, offset }) = prefix else {
                continue;
            };
            if prefix.is_ipv4() == self.ipv6 {
                return Err(format!("{name} {prefix} is not an {family} prefix").into());
            }
            if !self.ipv6 && offset != 0 {
                return Err(format!("{name} {prefix}: an offset is for IPv6 rules only").into());
            }
            let length = prefix.length();
            if offset != 0 && offset >= length {
                return Err(format!(
                    "{name} {prefix} from bit {offset}: the offset must be below the length (RFC 8956 §3.1)"
                )
                .into());
            }
        }
        for (name, test, max) in self.numeric_components() {
            let Some(test) = test else { continue };
            if test.is_empty() {
                return Err(format!("{name}: the operator list is empty").into());
            }
            if test.max_value() > max {
                return Err(format!(
                    "{name}: {} is above {max}, the largest value",
                    test.max_value()
                )
                .into());
            }
        }
        if self.flow_label.is_some() && !self.ipv6 {
            return Err("flow-label: IPv4 packets have no flow label".into());
        }
        if let Some(flags) = &self.tcp_flags {
            if flags.is_empty() {
                return Err("tcp-flags: the operator list is empty".into());
            }
            // The 2-octet form reaches into the TCP data offset (RFC 8955 §4.2.2.9).
            if flags.bits_used() > 0x0fff {
                return Err(format!(
                    "tcp-flags: bits {:#x} are outside the 12 flag bits",
                    flags.bits_used() & !0x0fff
                )
                .into());
            }
        }
        if let Some(fragment) = &self.fragment {
            if fragment.is_empty() {
                return Err("fragment: the operator list is empty".into());
            }
            let defined = if self.ipv6 { 0x0e } else { 0x0f };
            if fragment.bits_used() & !defined != 0 {
                return Err(format!(
                    "fragment: bits {:#x} are not defined for {family} (dont-fragment 0x1 is IPv4 only; is-fragment 0x2, first 0x4, last 0x8)",
                    fragment.bits_used() & !defined
                )
                .into());
            }
        }
        if self == &Self::empty(self.ipv6) {
            return Err(
                "a rule needs at least one component (else it matches every packet)".into(),
            );
        }
        Ok(())
    }

    /// The WIT record, components in the RFC's order.
    pub fn to_wit(&self) -> types::FlowRule {
        use types::FlowComponent as C;
        let mut components = Vec::new();
        let numeric = |test: &Option<NumericMatch>| test.as_ref().map(NumericMatch::to_ops);
        let bitmask = |test: &Option<BitmaskMatch>| test.as_ref().map(BitmaskMatch::to_ops);
        components.extend(self.destination.map(|p| C::Destination(p.to_wit())));
        components.extend(self.source.map(|p| C::Source(p.to_wit())));
        components.extend(numeric(&self.protocol).map(C::Protocol));
        components.extend(numeric(&self.port).map(C::Port));
        components.extend(numeric(&self.destination_port).map(C::DestinationPort));
        components.extend(numeric(&self.source_port).map(C::SourcePort));
        components.extend(numeric(&self.icmp_type).map(C::IcmpType));
        components.extend(numeric(&self.icmp_code).map(C::IcmpCode));
        components.extend(bitmask(&self.tcp_flags).map(C::TcpFlags));
        components.extend(numeric(&self.packet_length).map(C::PacketLength));
        components.extend(numeric(&self.dscp).map(C::Dscp));
        components.extend(bitmask(&self.fragment).map(C::Fragment));
        components.extend(numeric(&self.flow_label).map(C::FlowLabel));
        types::FlowRule {
            ipv6: self.ipv6,
            components,
        }
    }
}

impl From<&FlowRule> for types::FlowRule {
    fn from(rule: &FlowRule) -> Self {
        rule.to_wit()
    }
}

impl fmt::Display for FlowRule {
    /// In the words of ExaBGP and of the host's `show`, components in the
    /// RFC's order: `destination 192.0.2.10/32 protocol =udp
    /// destination-port =53`. An IPv6 rule without an IPv6 prefix starts
    /// with `family ipv6`; its protocol is `next-header`. Bitmasks are in
    /// hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        let has_ipv6_prefix = [self.destination, self.source]
            .iter()
            .flatten()
            .any(|p| !p.prefix.is_ipv4());
        if self.ipv6 && !has_ipv6_prefix {
            words.push("family ipv6".into());
        }
        let mut word = |keyword: &str, text: Option<String>| {
            if let Some(text) = text {
                words.push(format!("{keyword} {text}"));
            }
        };
        let numeric = |test: &Option<NumericMatch>| test.as_ref().map(NumericMatch::to_string);
        let bitmask = |test: &Option<BitmaskMatch>| test.as_ref().map(BitmaskMatch::to_string);
        word("destination", self.destination.map(|p| p.to_string()));
        word("source", self.source.map(|p| p.to_string()));
        word(
            if self.ipv6 { "next-header" } else { "protocol" },
            self.protocol.as_ref().map(|p| ProtocolTest(p).to_string()),
        );
        word("port", numeric(&self.port));
        word("destination-port", numeric(&self.destination_port));
        word("source-port", numeric(&self.source_port));
        word("icmp-type", numeric(&self.icmp_type));
        word("icmp-code", numeric(&self.icmp_code));
        word("tcp-flags", bitmask(&self.tcp_flags));
        word("packet-length", numeric(&self.packet_length));
        word("dscp", numeric(&self.dscp));
        word("fragment", bitmask(&self.fragment));
        word("flow-label", numeric(&self.flow_label));
        f.write_str(&words.join(" "))
    }
}

/// A protocol test written with names for the numbers: `[ =tcp =udp ]`.
struct ProtocolTest<'a>(&'a NumericMatch);

impl fmt::Display for ProtocolTest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_alternatives(f, &self.0.alternatives, |f, c| {
            match u8::try_from(c.value) {
                Ok(number) => c.write(f, &Protocol(number)),
                Err(_) => c.write(f, &c.value),
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------

/// A route target naming the VRF that [`Action::Redirect`] sends traffic to,
/// in one of the three forms of RFC 8955 §7.4.
///
/// Parses "65001:999" (2-octet AS, 32-bit value), "192.0.2.1:7" (IPv4
/// address, 16-bit value) and "4200000000:7" (4-octet AS, 16-bit value);
/// "65001L:7" forces the 4-octet form for a small AS. The AS may be written
/// "AS65001" or asdot "1.10".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// 2-octet AS and a 4-octet value (community 0x8008).
    As2 {
        /// The AS.
        asn: u16,
        /// The value.
        value: u32,
    },
    /// IPv4 address and a 2-octet value (community 0x8108).
    Ipv4 {
        /// The address.
        address: Ipv4Addr,
        /// The value.
        value: u16,
    },
    /// 4-octet AS and a 2-octet value (community 0x8208).
    As4 {
        /// The AS.
        asn: u32,
        /// The value.
        value: u16,
    },
}

impl fmt::Display for RouteTarget {
    /// The text [`RouteTarget::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RouteTarget::As2 { asn, value } => write!(f, "{asn}:{value}"),
            RouteTarget::Ipv4 { address, value } => write!(f, "{address}:{value}"),
            RouteTarget::As4 { asn, value } if asn <= 0xffff => write!(f, "{asn}L:{value}"),
            RouteTarget::As4 { asn, value } => write!(f, "{asn}:{value}"),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        let error = |reason: &str| ParseError::new("route target", text, reason);
        let (admin, value) = text.trim().rsplit_once(':').ok_or_else(|| {
            error("expected AS:VALUE (65001:999), IPv4:VALUE (192.0.2.1:7) or AS4:VALUE (4200000000:7)")
        })?;
        let number = |digits: &str| -> Option<u64> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()
        };
        let value = number(value).ok_or_else(|| error("the value after ':' is not a number"))?;
        let small_value = || {
            u16::try_from(value).map_err(|_| {
                error("with an IPv4 address or a 4-octet AS, the value is at most 65535")
            })
        };
        if let Ok(address) = admin.parse::<Ipv4Addr>() {
            return Ok(RouteTarget::Ipv4 {
                address,
                value: small_value()?,
            });
        }
        let (admin, four_octets) = match admin.strip_suffix('L') {
            Some(asn) => (asn, true),
            None => (admin, false),
        };
        let asn = parse_asn(admin).map_err(|e| error(e.reason()))?;
        match u16::try_from(asn) {
            Ok(asn) if !four_octets => Ok(RouteTarget::As2 {
                asn,
                value: u32::try_from(value)
                    .map_err(|_| error("with a 2-octet AS, the value is at most 4294967295"))?,
            }),
            _ => Ok(RouteTarget::As4 {
                asn,
                value: small_value()?,
            }),
        }
    }
}

/// The type and sub-type octets of each traffic action's extended community
/// (RFC 8955 §7, Table 8; redirect to IP next hop from
/// draft-simpson-idr-flowspec-redirect, as GoBGP and ExaBGP send it).
pub mod community_type {
    /// traffic-rate-bytes (§7.1): 2-octet informative AS, IEEE-754 f32
    /// bytes per second; 0 discards.
    pub const TRAFFIC_RATE_BYTES: u16 = 0x8006;
    /// traffic-rate-packets (§7.2): 2-octet informative AS, f32 packets per
    /// second.
    pub const TRAFFIC_RATE_PACKETS: u16 = 0x800c;
    /// traffic-action (§7.3): bits of the last octet.
    pub const TRAFFIC_ACTION: u16 = 0x8007;
    /// rt-redirect, 2-octet AS form (§7.4).
    pub const REDIRECT_AS2: u16 = 0x8008;
    /// rt-redirect, IPv4 address form (§7.4).
    pub const REDIRECT_IPV4: u16 = 0x8108;
    /// rt-redirect, 4-octet AS form (§7.4).
    pub const REDIRECT_AS4: u16 = 0x8208;
    /// traffic-marking (§7.5): DSCP in the 6 low bits of the last octet.
    pub const TRAFFIC_MARKING: u16 = 0x8009;
    /// Redirect to the route's next hop (draft-simpson-idr-flowspec-redirect).
    pub const REDIRECT_TO_NEXT_HOP: u16 = 0x0800;
}

/// traffic-action's sample bit (S, bit 46: 0x02 of the last octet).
const ACTION_SAMPLE: u64 = 0x02;
/// traffic-action's T bit ("Terminal Action", bit 47: 0x01 of the last octet).
const ACTION_CONTINUE: u64 = 0x01;
/// Redirect to next hop's copy bit (0x01 of the last octet).
const NEXT_HOP_COPY: u64 = 0x01;

/// An extended community of type/sub-type `kind` with the 6-octet `value`.
const fn community(kind: u16, value: u64) -> u64 {
    ((kind as u64) << 48) | (value & 0xffff_ffff_ffff)
}

/// What routers do with the packets a rule matches (RFC 8955 §7). Several
/// actions may go with one rule (a rate limit and a marking, say); see
/// [`attributes`] for which ones conflict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Limit the matching traffic to this many bytes per second
    /// (traffic-rate-bytes; a finite number ≥ 0, 0 discards).
    RateLimit {
        /// The rate, in bytes per second.
        bytes_per_second: f32,
    },
    /// Limit the matching traffic to this many packets per second
    /// (traffic-rate-packets; a finite number ≥ 0).
    RateLimitPackets {
        /// The rate, in packets per second.
        packets_per_second: f32,
    },
    /// Drop the matching traffic (traffic-rate-bytes at 0).
    Discard,
    /// Sample and log the matching traffic (traffic-action, S bit).
    Sample,
    /// Go on evaluating the rules that follow this one (traffic-action, T
    /// bit). RFC 8955 §7.3 calls this bit "Terminal Action", yet when it is
    /// set the router *continues* with later rules, and when it is unset
    /// (the default) evaluation stops at this rule.
    #[doc(alias = "Terminal")]
    Continue,
    /// Send the matching traffic into the VRF importing this route target
    /// (rt-redirect).
    Redirect(RouteTarget),
    /// Rewrite the DSCP of the matching packets (traffic-marking; 0 to 63).
    Mark(u8),
    /// Send the matching traffic to `address` instead: the route's next hop
    /// becomes `address` and the redirect-to-next-hop community is added
    /// (its address must be of the rule's family).
    RedirectToIp(IpAddress),
    /// As [`Action::RedirectToIp`], but send a copy of the traffic there and
    /// forward it as usual (the community's copy bit).
    CopyToIp(IpAddress),
}

impl Action {
    /// The extended community carrying this action, its 8 octets as a
    /// big-endian `u64`. [`Action::RedirectToIp`] and [`Action::CopyToIp`]
    /// also need the next hop, which [`attributes`] sets.
    ///
    /// `RateLimit { bytes_per_second: 9600.0 }` is `0x8006_0000_4616_0000`
    /// (informative AS 0, then 9600 as an f32); `Discard`
    /// `0x8006_0000_0000_0000`; `Redirect("65001:999")`
    /// `0x8008_fde9_0000_03e7`; `Mark(46)` `0x8009_0000_0000_002e`.
    pub fn community(&self) -> u64 {
        use community_type::*;
        match *self {
            // The 2 octets before the rate are an informative AS: 0, as
            // GoBGP and ExaBGP send.
            Action::RateLimit { bytes_per_second } => {
                community(TRAFFIC_RATE_BYTES, u64::from(bytes_per_second.to_bits()))
            }
            Action::RateLimitPackets { packets_per_second } => community(
                TRAFFIC_RATE_PACKETS,
                u64::from(packets_per_second.to_bits()),
            ),
            Action::Discard => community(TRAFFIC_RATE_BYTES, 0),
            Action::Sample => community(TRAFFIC_ACTION, ACTION_SAMPLE),
            Action::Continue => community(TRAFFIC_ACTION, ACTION_CONTINUE),
            Action::Redirect(RouteTarget::As2 { asn, value }) => {
                community(REDIRECT_AS2, (u64::from(asn) << 32) | u64::from(value))
            }
            Action::Redirect(RouteTarget::Ipv4 { address, value }) => community(
                REDIRECT_IPV4,
                (u64::from(u32::from(address)) << 16) | u64::from(value),
            ),
            Action::Redirect(RouteTarget::As4 { asn, value }) => {
                community(REDIRECT_AS4, (u64::from(asn) << 16) | u64::from(value))
            }
            Action::Mark(dscp) => community(TRAFFIC_MARKING, u64::from(dscp & 0x3f)),
            Action::RedirectToIp(_) => community(REDIRECT_TO_NEXT_HOP, 0),
            Action::CopyToIp(_) => community(REDIRECT_TO_NEXT_HOP, NEXT_HOP_COPY),
        }
    }

    /// Why the action cannot be sent as it is, if so: a rate that is
    /// negative, infinite or not a number, a DSCP above 63.
    pub fn check(&self) -> Result<(), Error> {
        let rate = |rate: f32, unit: &str| {
            if rate.is_finite() && rate.is_sign_positive() {
                Ok(())
            } else {
                Err(Error::new(format!(
                    "a rate of {rate} {unit} per second: expected a finite number, 0 or more"
                )))
            }
        };
        match *self {
            Action::RateLimit { bytes_per_second } => rate(bytes_per_second, "bytes"),
            Action::RateLimitPackets { packets_per_second } => rate(packets_per_second, "packets"),
            Action::Mark(dscp) if dscp > 0x3f => {
                Err(Error::new(format!("DSCP {dscp}: expected 0 to 63")))
            }
            _ => Ok(()),
        }
    }

    /// Which actions exclude each other: at most one of each slot per rule
    /// (two different rates, markings or redirects would leave routers to
    /// pick one; RFC 8955 §7.7 makes every redirect exclusive of the others).
    fn slot(&self) -> &'static str {
        match self {
            Action::RateLimit { .. } | Action::Discard => "rate in bytes",
            Action::RateLimitPackets { .. } => "rate in packets",
            // Two bits of one community: they combine.
            Action::Sample => "sample",
            Action::Continue => "continue",
            Action::Redirect(_) | Action::RedirectToIp(_) | Action::CopyToIp(_) => "redirect",
            Action::Mark(_) => "marking",
        }
    }
}

impl fmt::Display for Action {
    /// ExaBGP's words: `rate-limit 9600`, `discard`, `redirect 65001:999`,
    /// `mark 46`...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::RateLimit { bytes_per_second } => write!(f, "rate-limit {bytes_per_second}"),
            Action::RateLimitPackets { packets_per_second } => {
                write!(f, "rate-limit-packets {packets_per_second}")
            }
            Action::Discard => f.write_str("discard"),
            Action::Sample => f.write_str("action sample"),
            Action::Continue => f.write_str("action terminal"),
            Action::Redirect(target) => write!(f, "redirect {target}"),
            Action::Mark(dscp) => write!(f, "mark {dscp}"),
            Action::RedirectToIp(address) => write!(f, "redirect-to-nexthop {address}"),
            Action::CopyToIp(address) => write!(f, "copy-to-nexthop {address}"),
        }
    }
}

/// The attributes to announce `rule` with: `base` plus the communities of
/// `actions` (sample and continue share one traffic-action community) and,
/// for a redirect to IP, its address as the next hop. Fails on an action
/// [`Action::check`] refuses, on two different actions of one kind (two
/// rates in bytes, two markings, two redirects of any form) and on a redirect
/// address of the other family than the rule. The extended communities of
/// `base` are kept as they are, and an action's community is not added twice.
pub fn attributes(
    rule: &FlowRule,
    actions: &[Action],
    base: &Attributes,
) -> Result<Attributes, Error> {
    let mut attributes = base.clone();
    let mut taken: Vec<&Action> = Vec::new();
    let mut traffic_action_bits = 0;
    for action in actions {
        action.check()?;
        if let Some(other) = taken.iter().find(|a| a.slot() == action.slot()) {
            if *other != action {
                return Err(format!(
                    "conflicting actions `{other}` and `{action}`: one {} per rule",
                    action.slot()
                )
                .into());
            }
            continue;
        }
        taken.push(action);
        match action {
            Action::Sample => traffic_action_bits |= ACTION_SAMPLE,
            Action::Continue => traffic_action_bits |= ACTION_CONTINUE,
            Action::RedirectToIp(address) | Action::CopyToIp(address) => {
                if address.is_ipv4() == rule.is_ipv6() {
                    return Err(format!(
                        "`{action}`: the address must be {} like the rule",
                        if rule.is_ipv6() { "IPv6" } else { "IPv4" }
                    )
                    .into());
                }
                attributes.next_hop = Some(*address);
                push_once(&mut attributes.extended_communities, action.community());
            }
            other => push_once(&mut attributes.extended_communities, other.community()),
        }
    }
    // Sample and continue are two bits of one community.
    if traffic_action_bits != 0 {
        push_once(
            &mut attributes.extended_communities,
            community(community_type::TRAFFIC_ACTION, traffic_action_bits),
        );
    }
    Ok(attributes)
}

fn push_once(communities: &mut Vec<u64>, community: u64) {
    if !communities.contains(&community) {
        communities.push(community);
    }
}

// ---------------------------------------------------------------------------
// Announcing
// ---------------------------------------------------------------------------

/// Announces `rule` with `actions` to `neighbors` (empty: every granted
/// neighbor of the rule's family), on top of `base` (usually
/// `&Attributes::new()`; its `next-hop` is sent only when set, as for a
/// redirect to IP). Announcing a rule again replaces its actions. The rule
/// and the actions are checked here first ([`FlowRule::check`],
/// [`attributes`]) and refused as [`RouteError::Invalid`], like the host
/// would.
pub fn announce(
    rule: &FlowRule,
    actions: &[Action],
    base: &Attributes,
    neighbors: &[IpAddress],
) -> Result<(), RouteError> {
    let invalid = |e: Error| RouteError::Invalid(e.to_string());
    rule.check().map_err(invalid)?;
    let attributes = attributes(rule, actions, base).map_err(invalid)?;
    host_announce(&rule.to_wit(), &attributes, neighbors)
}

/// Withdraws `rule` from `neighbors` (empty: every granted neighbor).
/// Withdrawing a rule never announced is no error.
pub fn withdraw(rule: &FlowRule, neighbors: &[IpAddress]) -> Result<(), RouteError> {
    host_withdraw(&rule.to_wit(), neighbors)
}

#[cfg(target_arch = "wasm32")]
fn host_announce(
    rule: &types::FlowRule,
    attributes: &Attributes,
    neighbors: &[IpAddress],
) -> Result<(), RouteError> {
    crate::routes::raw::announce_flow(rule, attributes, neighbors)
}

#[cfg(target_arch = "wasm32")]
fn host_withdraw(rule: &types::FlowRule, neighbors: &[IpAddress]) -> Result<(), RouteError> {
    crate::routes::raw::withdraw_flow(rule, neighbors)
}

#[cfg(not(target_arch = "wasm32"))]
fn host_announce(
    rule: &types::FlowRule,
    attributes: &Attributes,
    _neighbors: &[IpAddress],
) -> Result<(), RouteError> {
    testing::announce(rule, attributes)
}

#[cfg(not(target_arch = "wasm32"))]
fn host_withdraw(rule: &types::FlowRule, _neighbors: &[IpAddress]) -> Result<(), RouteError> {
    testing::withdraw(rule)
}

/// Outside a component (unit tests on the host), [`announce`] and
/// [`withdraw`] go to this per-thread stand-in of the host's flow table
/// instead of the WIT imports. Neighbors are not tracked.
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default)]
    struct Table {
        /// Announced rules and their attributes, in order of first
        /// announcement.
        rules: Vec<(types::FlowRule, Attributes)>,
        /// The answer to every following call, when set.
        refusal: Option<RouteError>,
    }

    thread_local! {
        static TABLE: RefCell<Table> = RefCell::new(Table::default());
    }

    /// Forgets every rule and refusal of this thread.
    pub fn reset() {
        TABLE.with(|t| *t.borrow_mut() = Table::default());
    }

    /// The rules announced and not withdrawn, with their attributes.
    pub fn announced() -> Vec<(types::FlowRule, Attributes)> {
        TABLE.with(|t| t.borrow().rules.clone())
    }

    /// Makes every following announce and withdraw fail with `error`
    /// (`None`: succeed again).
    pub fn refuse_with(error: Option<RouteError>) {
        TABLE.with(|t| t.borrow_mut().refusal = error);
    }

    pub(super) fn announce(
        rule: &types::FlowRule,
        attributes: &Attributes,
    ) -> Result<(), RouteError> {
        TABLE.with(|t| {
            let mut t = t.borrow_mut();
            if let Some(error) = &t.refusal {
                return Err(error.clone());
            }
            match t.rules.iter_mut().find(|(r, _)| r == rule) {
                Some((_, existing)) => *existing = attributes.clone(),
                None => t.rules.push((rule.clone(), attributes.clone())),
            }
            Ok(())
        })
    }

    pub(super) fn withdraw(rule: &types::FlowRule) -> Result<(), RouteError> {
        TABLE.with(|t| {
            let mut t = t.borrow_mut();
            if let Some(error) = &t.refusal {
                return Err(error.clone());
            }
            t.rules.retain(|(r, _)| r != rule);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    fn target(text: &str) -> RouteTarget {
        text.parse().unwrap()
    }

    #[test]
    fn action_communities_match_rfc_8955() {
        let address: IpAddress = "192.0.2.1".parse().unwrap();
        for (action, expected) in [
            // 9600.0 as an IEEE-754 f32 is 0x4616_0000.
            (
                Action::RateLimit {
                    bytes_per_second: 9600.0,
                },
                0x8006_0000_4616_0000u64,
            ),
            (
                Action::RateLimit {
                    bytes_per_second: 0.0,
                },
                0x8006_0000_0000_0000,
            ),
            (Action::Discard, 0x8006_0000_0000_0000),
            // 100.0 is 0x42c8_0000.
            (
                Action::RateLimitPackets {
                    packets_per_second: 100.0,
                },
                0x800c_0000_42c8_0000,
            ),
            (Action::Sample, 0x8007_0000_0000_0002),
            (Action::Continue, 0x8007_0000_0000_0001),
            (Action::Redirect(target("65001:999")), 0x8008_fde9_0000_03e7),
            (
                Action::Redirect(target("192.0.2.1:7")),
                0x8108_c000_0201_0007,
            ),
            (
                Action::Redirect(target("4200000000:7")),
                0x8208_fa56_ea00_0007,
            ),
            (Action::Mark(46), 0x8009_0000_0000_002e),
            (Action::RedirectToIp(address), 0x0800_0000_0000_0000),
            (Action::CopyToIp(address), 0x0800_0000_0000_0001),
        ] {
            assert_eq!(action.community(), expected, "{action}");
        }
    }

    #[test]
    fn route_targets_parse_in_three_forms() {
        assert_eq!(
            target("65001:999"),
            RouteTarget::As2 {
                asn: 65001,
                value: 999
            }
        );
        assert_eq!(
            target("65001:4294967295"),
            RouteTarget::As2 {
                asn: 65001,
                value: u32::MAX
            }
        );
        assert_eq!(
            target("192.0.2.1:7"),
            RouteTarget::Ipv4 {
                address: Ipv4Addr::new(192, 0, 2, 1),
                value: 7
            }
        );
        assert_eq!(
            target("4200000000:7"),
            RouteTarget::As4 {
                asn: 4_200_000_000,
                value: 7
            }
        );
        assert_eq!(
            target("65001L:7"),
            RouteTarget::As4 {
                asn: 65001,
                value: 7
            }
        );
        assert_eq!(
            target("AS65001:1"),
            RouteTarget::As2 {
                asn: 65001,
                value: 1
            }
        );
        for text in ["65001:999", "192.0.2.1:7", "4200000000:7", "65001L:7"] {
            assert_eq!(target(text).to_string(), text);
        }
        for bad in [
            "",
            "65001",
            "65001:",
            ":7",
            "65001:x",
            "65001:4294967296",
            "192.0.2.1:65536",
            "4200000000:65536",
            "4294967296:1",
            "65001:+1",
        ] {
            let e = bad.parse::<RouteTarget>().unwrap_err().to_string();
            assert!(e.contains("route target"), "{bad}: {e}");
        }
    }

    #[test]
    fn builder_puts_components_in_rfc_order() {
        let rule = FlowRule::ipv4()
            .destination_port(53)
            .protocol(Protocol::UDP)
            .source(prefix("198.51.100.0/24"))
            .destination(prefix("192.0.2.10/32"));
        assert!(rule.check().is_ok());
        let wit = rule.to_wit();
        assert!(!wit.ipv6);
        let eq = |value| types::NumericOp {
            and_previous: false,
            less: false,
            greater: false,
            equal: true,
            value,
        };
        assert_eq!(
            wit.components,
            vec![
                types::FlowComponent::Destination(types::FlowPrefix {
                    prefix: prefix("192.0.2.10/32").into(),
                    offset: 0
                }),
                types::FlowComponent::Source(types::FlowPrefix {
                    prefix: prefix("198.51.100.0/24").into(),
                    offset: 0
                }),
                types::FlowComponent::Protocol(vec![eq(17)]),
                types::FlowComponent::DestinationPort(vec![eq(53)]),
            ]
        );
        assert_eq!(
            rule.to_string(),
            "destination 192.0.2.10/32 source 198.51.100.0/24 protocol =udp destination-port =53"
        );
        // Setting a component again replaces it.
        let rule = rule.destination_port(80);
        assert!(rule.to_string().ends_with("destination-port =80"), "{rule}");
    }

    #[test]
    fn numeric_lists_keep_and_before_or() {
        let range = NumericMatch::range(1024, 65535);
        let ops = range.to_ops();
        assert_eq!(ops.len(), 2);
        assert!(!ops[0].and_previous && ops[0].greater && ops[0].equal && !ops[0].less);
        assert!(ops[1].and_previous && ops[1].less && ops[1].equal && !ops[1].greater);
        assert_eq!(range.to_string(), "[ >=1024&<=65535 ]");
        assert_eq!(NumericMatch::range(7, 7).to_string(), "=7");

        let list = NumericMatch::any_of([53, 853]);
        assert_eq!(list.to_string(), "[ =53 =853 ]");
        assert!(list.to_ops().iter().all(|op| !op.and_previous));

        // (=53 | =853) & >0 distributes: =53&>0 | =853&>0.
        let both = list.clone().and(NumericMatch::above(0));
        assert_eq!(both.to_string(), "[ =53&>0 =853&>0 ]");
        assert_eq!(NumericMatch::from_ops(&both.to_ops()), both);
        assert_eq!(NumericMatch::not_equal(6).to_string(), "!=6");
        assert_eq!(
            NumericMatch::below(6)
                .or(NumericMatch::at_most(9))
                .to_string(),
            "[ <6 <=9 ]"
        );
    }

    #[test]
    fn bitmask_lists() {
        let syn_only = BitmaskMatch::all(tcp_flags::SYN).and(BitmaskMatch::none(tcp_flags::ACK));
        let ops = syn_only.to_ops();
        assert_eq!(ops.len(), 2);
        assert!(ops[0].all_bits && !ops[0].negate && ops[0].value == 0x02 && !ops[0].and_previous);
        assert!(!ops[1].all_bits && ops[1].negate && ops[1].value == 0x10 && ops[1].and_previous);
        assert_eq!(syn_only.to_string(), "[ =0x2&!0x10 ]");
        assert_eq!(BitmaskMatch::from_ops(&ops), syn_only);
        let rule = FlowRule::for_destination(prefix("192.0.2.1/32"))
            .packet_length(NumericMatch::above(1000))
            .tcp_flags(syn_only)
            .fragment(BitmaskMatch::any(fragment_flags::IS_FRAGMENT));
        assert!(rule.check().is_ok());
        assert_eq!(
            rule.to_string(),
            "destination 192.0.2.1/32 tcp-flags [ =0x2&!0x10 ] packet-length >1000 fragment 0x2"
        );
        let kinds: Vec<_> = rule
            .to_wit()
            .components
            .iter()
            .map(|c| match c {
                types::FlowComponent::Destination(_) => 1,
                types::FlowComponent::TcpFlags(_) => 9,
                types::FlowComponent::PacketLength(_) => 10,
                types::FlowComponent::Fragment(_) => 12,
                _ => 0,
            })
            .collect();
        assert_eq!(kinds, [1, 9, 10, 12]);
    }

    #[test]
    fn ipv6_rules() {
        let rule = FlowRule::for_destination(prefix("2001:db8::1/128"))
            .protocol(Protocol::TCP)
            .flow_label(NumericMatch::equal(0x12345));
        assert!(rule.is_ipv6());
        assert!(rule.check().is_ok());
        assert_eq!(
            rule.to_string(),
            "destination 2001:db8::1/128 next-header =tcp flow-label =74565"
        );
        assert!(rule.to_wit().ipv6);
        let offset = FlowRule::ipv6().source_from_bit(prefix("::1234:0:0/96"), 64);
        assert!(offset.check().is_ok());
        assert_eq!(offset.to_string(), "source ::1234:0:0/96/64");
        let no_prefix = FlowRule::ipv6().protocol(Protocol::ICMPV6);
        assert_eq!(no_prefix.to_string(), "family ipv6 next-header =ipv6-icmp");
        let e = FlowRule::ipv6()
            .source_from_bit(prefix("::/64"), 64)
            .check()
            .unwrap_err();
        assert!(e.message().contains("offset"), "{e}");
    }

    #[test]
    fn checks_catch_what_the_host_refuses() {
        let bad = |rule: FlowRule, needle: &str| {
            let e = rule.check().unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        };
        bad(FlowRule::ipv4(), "at least one component");
        bad(
            FlowRule::ipv4().destination(prefix("2001:db8::/32")),
            "not an IPv4 prefix",
        );
        bad(
            FlowRule::ipv6().source(prefix("192.0.2.0/24")),
            "not an IPv6 prefix",
        );
        bad(
            FlowRule::ipv4().destination_from_bit(prefix("192.0.2.0/24"), 8),
            "IPv6 rules only",
        );
        bad(
            FlowRule::ipv4().protocols(NumericMatch::equal(256)),
            "protocol: 256",
        );
        bad(
            FlowRule::ipv4().ports(NumericMatch::at_least(70000)),
            "port: 70000",
        );
        bad(FlowRule::ipv4().dscps(NumericMatch::equal(64)), "dscp: 64");
        bad(
            FlowRule::ipv4().packet_length(NumericMatch::any_of([])),
            "empty",
        );
        bad(
            FlowRule::ipv4().flow_label(NumericMatch::equal(1)),
            "no flow label",
        );
        bad(
            FlowRule::ipv6().flow_label(NumericMatch::equal(0x10_0000)),
            "flow-label",
        );
        bad(
            FlowRule::ipv4().tcp_flags(BitmaskMatch::any(0x1000)),
            "tcp-flags",
        );
        bad(
            FlowRule::ipv6().fragment(BitmaskMatch::any(fragment_flags::DONT_FRAGMENT)),
            "fragment",
        );
        assert!(
            FlowRule::ipv4()
                .fragment(BitmaskMatch::any(fragment_flags::DONT_FRAGMENT))
                .check()
                .is_ok()
        );
    }

    #[test]
    fn protocols_parse_and_print() {
        assert_eq!("tcp".parse::<Protocol>().unwrap(), Protocol::TCP);
        assert_eq!("UDP".parse::<Protocol>().unwrap(), Protocol(17));
        assert_eq!("icmpv6".parse::<Protocol>().unwrap(), Protocol::ICMPV6);
        assert_eq!("132".parse::<Protocol>().unwrap(), Protocol::SCTP);
        assert_eq!(Protocol::ICMPV6.to_string(), "ipv6-icmp");
        assert_eq!(Protocol(200).to_string(), "200");
        for bad in ["", "256", "+6", "tcpp"] {
            assert!(bad.parse::<Protocol>().is_err(), "{bad}");
        }
        // =1 and =17 are rewritten as whole numbers only.
        let rule = FlowRule::ipv4().protocols(NumericMatch::any_of([1, 17, 200]));
        assert_eq!(rule.to_string(), "protocol [ =icmp =udp =200 ]");
    }

    #[test]
    fn attributes_merge_and_refuse_conflicts() {
        let rule = FlowRule::for_destination(prefix("192.0.2.10/32"));
        let base = Attributes::new().with_med(5);
        let a = attributes(
            &rule,
            &[
                Action::RateLimit {
                    bytes_per_second: 9600.0,
                },
                Action::Sample,
                Action::Continue,
                Action::Mark(10),
            ],
            &base,
        )
        .unwrap();
        assert_eq!(a.med, Some(5));
        assert_eq!(a.next_hop, None);
        assert_eq!(
            a.extended_communities,
            [
                0x8006_0000_4616_0000,
                0x8009_0000_0000_000a,
                0x8007_0000_0000_0003
            ]
        );
        // The same action twice is sent once.
        let a = attributes(&rule, &[Action::Discard, Action::Discard], &base).unwrap();
        assert_eq!(a.extended_communities, [0x8006_0000_0000_0000]);

        let hop: IpAddress = "192.0.2.254".parse().unwrap();
        let a = attributes(&rule, &[Action::RedirectToIp(hop)], &base).unwrap();
        assert_eq!(a.next_hop, Some(hop));
        assert_eq!(a.extended_communities, [0x0800_0000_0000_0000]);

        let refused = |actions: &[Action], needle: &str| {
            let e = attributes(&rule, actions, &base).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        };
        refused(
            &[
                Action::Discard,
                Action::RateLimit {
                    bytes_per_second: 1.0,
                },
            ],
            "conflicting",
        );
        refused(
            &[
                Action::Redirect(target("65001:1")),
                Action::RedirectToIp(hop),
            ],
            "one redirect",
        );
        refused(&[Action::Mark(1), Action::Mark(2)], "one marking");
        refused(&[Action::Mark(64)], "DSCP 64");
        refused(
            &[Action::RateLimit {
                bytes_per_second: -1.0,
            }],
            "finite number",
        );
        refused(
            &[Action::RateLimit {
                bytes_per_second: f32::NAN,
            }],
            "finite number",
        );
        refused(
            &[Action::RateLimitPackets {
                packets_per_second: f32::INFINITY,
            }],
            "finite number",
        );
        refused(
            &[Action::RedirectToIp("2001:db8::1".parse().unwrap())],
            "IPv4 like the rule",
        );
    }

    #[test]
    fn announce_and_withdraw_reach_the_stand_in() {
        testing::reset();
        let rule = FlowRule::for_destination(prefix("192.0.2.10/32")).protocol(Protocol::UDP);
        announce(&rule, &[Action::Discard], &Attributes::new(), &[]).unwrap();
        announce(&rule, &[Action::Mark(1)], &Attributes::new(), &[]).unwrap();
        let table = testing::announced();
        assert_eq!(table.len(), 1);
        assert_eq!(table[0].0, rule.to_wit());
        assert_eq!(table[0].1.extended_communities, [0x8009_0000_0000_0001]);

        // Refused locally, as the host would.
        let e = announce(&FlowRule::ipv4(), &[], &Attributes::new(), &[]).unwrap_err();
        assert!(matches!(e, RouteError::Invalid(_)), "{e:?}");
        let e = announce(&rule, &[Action::Mark(99)], &Attributes::new(), &[]).unwrap_err();
        assert!(matches!(e, RouteError::Invalid(_)), "{e:?}");

        testing::refuse_with(Some(RouteError::LimitExceeded("max-routes 1".into())));
        assert!(withdraw(&rule, &[]).is_err());
        testing::refuse_with(None);
        withdraw(&rule, &[]).unwrap();
        assert!(testing::announced().is_empty());
    }
}
