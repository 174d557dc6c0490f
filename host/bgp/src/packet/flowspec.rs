//! FlowSpec rules (RFC 8955 for IPv4, RFC 8956 for IPv6): the NLRI of SAFI 133, and the
//! traffic actions carried as extended communities.
//!
//! A rule is kept as its validated wire encoding ([`FlowSpec`]): compact, hashable and
//! ordered, the key of a flow route in the RIBs. [`FlowSpec::components`] gives the typed
//! view; [`FlowSpec::new`] builds the canonical encoding from it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::Reader;
use super::attributes::ExtendedCommunity;
use super::prefix::{AFI_IPV4, AFI_IPV6, Family, Ipv4Prefix, Ipv6Prefix};

/// Component type codes (RFC 8955 §4.2.2, RFC 8956 §3).
pub mod component_type {
    /// Destination prefix.
    pub const DESTINATION: u8 = 1;
    /// Source prefix.
    pub const SOURCE: u8 = 2;
    /// IP protocol (IPv4), upper-layer protocol / next header (IPv6).
    pub const PROTOCOL: u8 = 3;
    /// Source or destination port.
    pub const PORT: u8 = 4;
    /// Destination port.
    pub const DESTINATION_PORT: u8 = 5;
    /// Source port.
    pub const SOURCE_PORT: u8 = 6;
    /// ICMP type.
    pub const ICMP_TYPE: u8 = 7;
    /// ICMP code.
    pub const ICMP_CODE: u8 = 8;
    /// TCP flags.
    pub const TCP_FLAGS: u8 = 9;
    /// Packet length.
    pub const PACKET_LENGTH: u8 = 10;
    /// DSCP.
    pub const DSCP: u8 = 11;
    /// Fragment.
    pub const FRAGMENT: u8 = 12;
    /// Flow label (IPv6 only).
    pub const FLOW_LABEL: u8 = 13;
}

/// Why a rule could not be built, decoded or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError(pub String);

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlowError {}

/// A prefix component: IPv4, or IPv6 with the bit offset where matching starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowPrefix {
    /// IPv4 (RFC 8955 §4.2.2.1).
    V4(Ipv4Prefix),
    /// IPv6 (RFC 8956 §3.1): the pattern is bits `offset..prefix.len()` of the prefix.
    V6 {
        /// The prefix.
        prefix: Ipv6Prefix,
        /// The first bit matched.
        offset: u8,
    },
}

/// One numeric operator and its value (RFC 8955 §4.2.1.1). `and` binds it to the
/// previous operator of the component (ignored on the first one); `lt`, `gt` and `eq`
/// together: `lt|eq` is `<=`, none is "false", all three "true".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NumericOp {
    /// AND with the previous operator (else OR).
    pub and: bool,
    /// Less than.
    pub lt: bool,
    /// Greater than.
    pub gt: bool,
    /// Equal.
    pub eq: bool,
    /// The value (encoded in 1, 2, 4 or 8 octets, the fewest that hold it).
    pub value: u64,
}

/// One bitmask operator and its value (RFC 8955 §4.2.1.2): with `matches`, all bits of
/// `value` must be set (else any of them); `not` negates that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BitmaskOp {
    /// AND with the previous operator (else OR).
    pub and: bool,
    /// Negate the result.
    pub not: bool,
    /// All bits must match (else any).
    pub matches: bool,
    /// The bits (encoded in 1, 2, 4 or 8 octets, the fewest that hold them).
    pub value: u64,
}

/// One component of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Component {
    /// Type 1.
    Destination(FlowPrefix),
    /// Type 2.
    Source(FlowPrefix),
    /// Type 3: IP protocol, or IPv6 next header.
    Protocol(Vec<NumericOp>),
    /// Type 4.
    Port(Vec<NumericOp>),
    /// Type 5.
    DestinationPort(Vec<NumericOp>),
    /// Type 6.
    SourcePort(Vec<NumericOp>),
    /// Type 7.
    IcmpType(Vec<NumericOp>),
    /// Type 8.
    IcmpCode(Vec<NumericOp>),
    /// Type 9.
    TcpFlags(Vec<BitmaskOp>),
    /// Type 10.
    PacketLength(Vec<NumericOp>),
    /// Type 11.
    Dscp(Vec<NumericOp>),
    /// Type 12.
    Fragment(Vec<BitmaskOp>),
    /// Type 13 (IPv6 only).
    FlowLabel(Vec<NumericOp>),
}

impl Component {
    /// The component's type code.
    pub fn type_code(&self) -> u8 {
        use component_type::*;
        match self {
            Component::Destination(_) => DESTINATION,
            Component::Source(_) => SOURCE,
            Component::Protocol(_) => PROTOCOL,
            Component::Port(_) => PORT,
            Component::DestinationPort(_) => DESTINATION_PORT,
            Component::SourcePort(_) => SOURCE_PORT,
            Component::IcmpType(_) => ICMP_TYPE,
            Component::IcmpCode(_) => ICMP_CODE,
            Component::TcpFlags(_) => TCP_FLAGS,
            Component::PacketLength(_) => PACKET_LENGTH,
            Component::Dscp(_) => DSCP,
            Component::Fragment(_) => FRAGMENT,
            Component::FlowLabel(_) => FLOW_LABEL,
        }
    }
}

/// The word naming a component type in ExaBGP's syntax (`destination-port`); type 3 is
/// `next-header` in IPv6 rules, as ExaBGP writes it.
pub(crate) fn type_keyword(type_code: u8, afi: u16) -> &'static str {
    use component_type::*;
    match type_code {
        DESTINATION => "destination",
        SOURCE => "source",
        PROTOCOL if afi == AFI_IPV6 => "next-header",
        PROTOCOL => "protocol",
        PORT => "port",
        DESTINATION_PORT => "destination-port",
        SOURCE_PORT => "source-port",
        ICMP_TYPE => "icmp-type",
        ICMP_CODE => "icmp-code",
        TCP_FLAGS => "tcp-flags",
        PACKET_LENGTH => "packet-length",
        DSCP => "dscp",
        FRAGMENT => "fragment",
        FLOW_LABEL => "flow-label",
        _ => "unknown component",
    }
}

/// Operator octet bits (RFC 8955 §4.2.1).
mod op_bit {
    /// End of list: set on the last {op, value} pair.
    pub const END: u8 = 0x80;
    /// AND with the previous pair (else OR).
    pub const AND: u8 = 0x40;
    /// The value length, as `1 << len`.
    pub const LEN_MASK: u8 = 0x30;
    /// Where the length bits start.
    pub const LEN_SHIFT: u8 = 4;
    /// Numeric: less than.
    pub const LT: u8 = 0x04;
    /// Numeric: greater than.
    pub const GT: u8 = 0x02;
    /// Numeric: equal.
    pub const EQ: u8 = 0x01;
    /// Bitmask: negate.
    pub const NOT: u8 = 0x02;
    /// Bitmask: all bits must match.
    pub const MATCH: u8 = 0x01;
}

/// Every value length the operator octet can announce.
const ANY_WIDTH: &[usize] = &[1, 2, 4, 8];

/// What the values of a numeric or bitmask component may be.
struct ValueRule {
    /// Largest value [`FlowSpec::new`] encodes.
    max: u64,
    /// Value lengths a received rule may use: the RFCs say MUST for TCP flags (1 or 2),
    /// DSCP and fragment (1), and only SHOULD for the others, so those take any length.
    widths: &'static [usize],
    /// The bits the component defines; the others are reserved ("MUST be ignored during
    /// decoding", RFC 8955 §4.2.2.12, RFC 8956 §3.6) or "treated as 0" (RFC 8955
    /// §4.2.2.9, §4.2.2.11), so [`FlowSpec::components`] clears them.
    meaningful: u64,
    /// The length `new` always uses, where the RFC asks for one: 4 octets for the flow
    /// label (RFC 8956 §3.7). Else the fewest octets that hold the value.
    fixed_width: Option<usize>,
}

fn value_rule(type_code: u8, afi: u16) -> ValueRule {
    use component_type::*;
    let any = |max| ValueRule {
        max,
        widths: ANY_WIDTH,
        meaningful: u64::MAX,
        fixed_width: None,
    };
    match type_code {
        PROTOCOL | ICMP_TYPE | ICMP_CODE => any(0xff),
        PORT | DESTINATION_PORT | SOURCE_PORT | PACKET_LENGTH => any(0xffff),
        // The 2-octet form spans the TCP data offset, "always treated as 0".
        TCP_FLAGS => ValueRule {
            max: 0x0fff,
            widths: &[1, 2],
            meaningful: 0x0fff,
            fixed_width: None,
        },
        DSCP => ValueRule {
            max: 0x3f,
            widths: &[1],
            meaningful: 0x3f,
            fixed_width: None,
        },
        // IPv6 has no Don't Fragment bit (RFC 8956 §3.6).
        FRAGMENT => {
            let bits = if afi == AFI_IPV6 {
                FRAGMENT_BITS_V6
            } else {
                FRAGMENT_BITS_V4
            };
            ValueRule {
                max: bits,
                widths: &[1],
                meaningful: bits,
                fixed_width: None,
            }
        }
        FLOW_LABEL => ValueRule {
            max: 0x000f_ffff,
            widths: ANY_WIDTH,
            meaningful: u64::MAX,
            fixed_width: Some(4),
        },
        _ => any(0),
    }
}

/// Fragment bits of IPv4: LF FF IsF DF (RFC 8955 §4.2.2.12).
const FRAGMENT_BITS_V4: u64 = 0x0f;
/// Fragment bits of IPv6: LF FF IsF (RFC 8956 §3.6).
const FRAGMENT_BITS_V6: u64 = 0x0e;

/// The fewest of 1, 2, 4 or 8 octets that hold `value`.
fn fewest_octets(value: u64) -> usize {
    match value {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// The operator's `len` bits for a value of `width` octets.
fn width_bits(width: usize) -> u8 {
    let code = match width {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    code << op_bit::LEN_SHIFT
}

/// The AFI's marker, the first stored octet.
fn afi_marker(afi: u16) -> Result<u8, FlowError> {
    match afi {
        AFI_IPV4 => Ok(4),
        AFI_IPV6 => Ok(6),
        other => Err(FlowError(format!(
            "FlowSpec is defined for AFI 1 (IPv4) and 2 (IPv6), not {other}"
        ))),
    }
}

fn family_name(afi: u16) -> &'static str {
    if afi == AFI_IPV6 { "IPv6" } else { "IPv4" }
}

/// Bits `from..` of an address, counted from the most significant (none past 127).
fn bits_from(from: u8) -> u128 {
    u128::MAX.checked_shr(from.into()).unwrap_or(0)
}

/// Octets of an IPv6 pattern: the bits from `offset` to `len` (RFC 8956 §3.1).
fn pattern_octets(len: u8, offset: u8) -> usize {
    usize::from(len.saturating_sub(offset)).div_ceil(8)
}

/// RFC 8956 §3.1: "If length = 0 and offset = 0, this component matches every address;
/// otherwise, length MUST be in the range offset < length < 129".
fn check_offset(len: u8, offset: u8) -> Result<(), FlowError> {
    if len > Ipv6Prefix::MAX_LEN {
        Err(FlowError(format!("IPv6 prefix length {len} exceeds 128")))
    } else if (len == 0 && offset == 0) || offset < len {
        Ok(())
    } else {
        Err(FlowError(format!(
            "IPv6 prefix of length {len} with offset {offset}: the offset must be below the length (RFC 8956 §3.1)"
        )))
    }
}

/// An operator and its value, whichever the kind: the `and` bit, the operator's own low
/// bits (lt/gt/eq or not/match) and the value.
#[derive(Clone, Copy)]
struct OpValue {
    and: bool,
    bits: u8,
    value: u64,
}

impl From<&NumericOp> for OpValue {
    fn from(op: &NumericOp) -> Self {
        let mut bits = 0;
        for (set, bit) in [
            (op.lt, op_bit::LT),
            (op.gt, op_bit::GT),
            (op.eq, op_bit::EQ),
        ] {
            if set {
                bits |= bit;
            }
        }
        OpValue {
            and: op.and,
            bits,
            value: op.value,
        }
    }
}

impl From<&BitmaskOp> for OpValue {
    fn from(op: &BitmaskOp) -> Self {
        let mut bits = 0;
        for (set, bit) in [(op.not, op_bit::NOT), (op.matches, op_bit::MATCH)] {
            if set {
                bits |= bit;
            }
        }
        OpValue {
            and: op.and,
            bits,
            value: op.value,
        }
    }
}

impl OpValue {
    fn numeric(self) -> NumericOp {
        NumericOp {
            and: self.and,
            lt: self.bits & op_bit::LT != 0,
            gt: self.bits & op_bit::GT != 0,
            eq: self.bits & op_bit::EQ != 0,
            value: self.value,
        }
    }

    fn bitmask(self) -> BitmaskOp {
        BitmaskOp {
            and: self.and,
            not: self.bits & op_bit::NOT != 0,
            matches: self.bits & op_bit::MATCH != 0,
            value: self.value,
        }
    }
}

/// The operators of a numeric or bitmask component, in the common form.
fn op_values(c: &Component) -> Option<Vec<OpValue>> {
    use Component::*;
    match c {
        Destination(_) | Source(_) => None,
        TcpFlags(ops) | Fragment(ops) => Some(ops.iter().map(OpValue::from).collect()),
        Protocol(ops) | Port(ops) | DestinationPort(ops) | SourcePort(ops) | IcmpType(ops)
        | IcmpCode(ops) | PacketLength(ops) | Dscp(ops) | FlowLabel(ops) => {
            Some(ops.iter().map(OpValue::from).collect())
        }
    }
}

/// Builds a component from its type and decoded operators.
fn component_of(type_code: u8, ops: Vec<OpValue>) -> Option<Component> {
    use component_type::*;
    let numeric = || ops.iter().map(|o| o.numeric()).collect::<Vec<_>>();
    let bitmask = || ops.iter().map(|o| o.bitmask()).collect::<Vec<_>>();
    Some(match type_code {
        PROTOCOL => Component::Protocol(numeric()),
        PORT => Component::Port(numeric()),
        DESTINATION_PORT => Component::DestinationPort(numeric()),
        SOURCE_PORT => Component::SourcePort(numeric()),
        ICMP_TYPE => Component::IcmpType(numeric()),
        ICMP_CODE => Component::IcmpCode(numeric()),
        TCP_FLAGS => Component::TcpFlags(bitmask()),
        PACKET_LENGTH => Component::PacketLength(numeric()),
        DSCP => Component::Dscp(numeric()),
        FRAGMENT => Component::Fragment(bitmask()),
        FLOW_LABEL => Component::FlowLabel(numeric()),
        _ => return None,
    })
}

/// A FlowSpec rule of one family: its components, validated and encoded as on the wire
/// (the NLRI value, without its length). Cloning shares the bytes.
///
/// Equality, hashing and order are those of the encoding; the order groups IPv4 rules
/// before IPv6 ones. A received rule keeps the octets it was received with (a peer may
/// use a longer value length than [`FlowSpec::new`] would), so that its withdrawal,
/// which carries the same octets, finds it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowSpec {
    /// The AFI marker (4 or 6) followed by the NLRI value.
    bytes: Arc<[u8]>,
}

impl FlowSpec {
    /// Longest NLRI value (RFC 8955 §4.1: the length field holds up to 4095).
    pub const MAX_LEN: usize = 4095;

    /// Builds the canonical encoding of `components` for `afi` ([`AFI_IPV4`] or
    /// [`AFI_IPV6`]): sorted by type, each type at most once, each operator list
    /// non-empty with its end-of-list bit set on the last, values in the fewest octets.
    /// Refuses a component the family does not have (flow label on IPv4, an offset on
    /// IPv4, a prefix of the other family) and an empty rule.
    ///
    /// The `and` bit of the first operator of a list is always encoded unset (RFC 8955
    /// §4.2.1.1). Values must fit their component: protocol, ICMP type and code up to
    /// 255, ports and packet length up to 65535, DSCP up to 63, TCP flags up to 0xfff,
    /// fragment bits LF FF IsF DF (IPv6: no DF), flow label up to 2^20-1 (always in 4
    /// octets, as RFC 8956 §3.7 asks). An IPv6 prefix needs offset < length (or both 0)
    /// and no bit set before its offset: those bits are not carried, so such a prefix
    /// would not come back as given.
    pub fn new(afi: u16, components: &[Component]) -> Result<FlowSpec, FlowError> {
        let marker = afi_marker(afi)?;
        if components.is_empty() {
            return Err(FlowError(
                "a FlowSpec rule needs at least one component".into(),
            ));
        }
        let mut sorted: Vec<&Component> = components.iter().collect();
        sorted.sort_by_key(|c| c.type_code());
        if let Some(pair) = sorted
            .windows(2)
            .find(|pair| pair[0].type_code() == pair[1].type_code())
        {
            return Err(FlowError(format!(
                "{} is given twice: a rule holds each component once (RFC 8955 §4.2)",
                type_keyword(pair[0].type_code(), afi)
            )));
        }
        let mut bytes = vec![marker];
        for c in sorted {
            encode_component(afi, c, &mut bytes)?;
        }
        let len = bytes.len() - 1;
        if len > Self::MAX_LEN {
            return Err(FlowError(format!(
                "the rule encodes to {len} octets, more than the {} a FlowSpec NLRI holds",
                Self::MAX_LEN
            )));
        }
        Ok(FlowSpec {
            bytes: bytes.into(),
        })
    }

    /// Decodes one rule from the front of an NLRI field (length, then value) and
    /// validates it (RFC 8955 §4.2: types in strictly increasing order, known types,
    /// operator and value lengths within the component, prefix lengths and offsets in
    /// range). Returns the rule and the octets read.
    ///
    /// The error says whether the field can still be walked: [`FlowDecodeError::Rule`]
    /// when the length was sound but the rule is malformed (treat-as-withdraw, RFC 7606
    /// §5.3 / RFC 8955 §10), [`FlowDecodeError::Field`] when the length itself overruns.
    ///
    /// Lenient only where the RFCs say so: reserved operator bits and the `and` bit of a
    /// first operator are ignored (RFC 8955 §4.2.1), padding bits of IPv6 patterns too
    /// (RFC 8956 §3.1), and a value may use any length the operator can announce except
    /// where a MUST limits it (TCP flags 1 or 2 octets; DSCP and fragment 1).
    pub fn decode(afi: u16, buf: &[u8]) -> Result<(FlowSpec, usize), FlowDecodeError> {
        let marker = afi_marker(afi).map_err(FlowDecodeError::Field)?;
        let (len, header) = read_length(buf).map_err(FlowDecodeError::Field)?;
        let total = header + len;
        let Some(value) = buf.get(header..total) else {
            return Err(FlowDecodeError::Field(FlowError(format!(
                "FlowSpec rule of {len} octets overruns the {} left in the field",
                buf.len() - header
            ))));
        };
        parse_components(afi, value).map_err(|e| FlowDecodeError::Rule(e, total))?;
        let mut bytes = Vec::with_capacity(1 + len);
        bytes.push(marker);
        bytes.extend_from_slice(value);
        Ok((
            FlowSpec {
                bytes: bytes.into(),
            },
            total,
        ))
    }

    /// Decodes every rule of an NLRI field. Rules that are malformed but whose length is
    /// sound are skipped, and the first such error is returned beside the good rules:
    /// the caller treats the UPDATE as a withdrawal (RFC 8955 §10, RFC 7606 §5.3). A
    /// length that overruns the field is an error for the whole field.
    pub fn decode_all(
        afi: u16,
        mut buf: &[u8],
    ) -> Result<(Vec<FlowSpec>, Option<FlowError>), FlowError> {
        let mut rules = Vec::new();
        let mut first_malformed = None;
        while !buf.is_empty() {
            // Every outcome below consumes at least the length octet, so this ends.
            let read = match FlowSpec::decode(afi, buf) {
                Ok((rule, read)) => {
                    rules.push(rule);
                    read
                }
                Err(FlowDecodeError::Rule(e, read)) => {
                    first_malformed.get_or_insert(e);
                    read
                }
                Err(FlowDecodeError::Field(e)) => return Err(e),
            };
            buf = buf.get(read..).unwrap_or_default();
        }
        Ok((rules, first_malformed))
    }

    /// Appends the NLRI encoding: the length (1 octet below 240, else 2 octets with the
    /// high nibble 0xf), then the value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let value = self.value();
        let len = value.len();
        if len < 0xf0 {
            out.push(len as u8);
        } else {
            // At most MAX_LEN (0xfff), so the length fits the low 12 bits.
            out.extend_from_slice(&(0xf000 | (len as u16 & 0x0fff)).to_be_bytes());
        }
        out.extend_from_slice(value);
    }

    /// Size of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        let len = self.value().len();
        len + if len < 0xf0 { 1 } else { 2 }
    }

    /// The rule's family: IPv4 or IPv6 FlowSpec.
    pub fn family(&self) -> Family {
        if self.bytes.first() == Some(&6) {
            Family::IPV6_FLOWSPEC
        } else {
            Family::IPV4_FLOWSPEC
        }
    }

    /// The AFI of the rule.
    pub fn afi(&self) -> u16 {
        self.family().afi
    }

    /// The NLRI value (without its length).
    pub fn value(&self) -> &[u8] {
        self.bytes.get(1..).unwrap_or_default()
    }

    /// The typed components, in order. Bits the RFCs reserve or say to treat as 0 are
    /// cleared, and the first operator of a list has `and` unset.
    pub fn components(&self) -> Vec<Component> {
        // The value was validated by `new` or `decode`, so this cannot fail.
        parse_components(self.afi(), self.value()).unwrap_or_default()
    }
}

/// Reads the NLRI length field (RFC 8955 §4.1): returns the value length and the octets
/// the field took.
fn read_length(buf: &[u8]) -> Result<(usize, usize), FlowError> {
    let (len, header) = match buf {
        [] => return Err(FlowError("FlowSpec NLRI field ends before a length".into())),
        [first, rest @ ..] if first & 0xf0 == 0xf0 => {
            let Some(second) = rest.first() else {
                return Err(FlowError(
                    "FlowSpec NLRI field ends inside a 2-octet length".into(),
                ));
            };
            (usize::from(first & 0x0f) << 8 | usize::from(*second), 2)
        }
        [first, ..] => (usize::from(*first), 1),
    };
    if len == 0 {
        return Err(FlowError("FlowSpec rule of length 0".into()));
    }
    Ok((len, header))
}

fn encode_component(afi: u16, c: &Component, out: &mut Vec<u8>) -> Result<(), FlowError> {
    let type_code = c.type_code();
    if type_code == component_type::FLOW_LABEL && afi != AFI_IPV6 {
        return Err(FlowError(
            "flow-label is IPv6 only (RFC 8956 §3.7), not in an IPv4 rule".into(),
        ));
    }
    out.push(type_code);
    match c {
        Component::Destination(p) | Component::Source(p) => encode_prefix(afi, type_code, p, out),
        _ => {
            let ops = op_values(c).unwrap_or_default();
            encode_ops(afi, type_code, &ops, out)
        }
    }
}

fn encode_prefix(
    afi: u16,
    type_code: u8,
    prefix: &FlowPrefix,
    out: &mut Vec<u8>,
) -> Result<(), FlowError> {
    let keyword = type_keyword(type_code, afi);
    match (afi, prefix) {
        (AFI_IPV6, FlowPrefix::V6 { prefix, offset }) => {
            let (len, offset) = (prefix.len(), *offset);
            check_offset(len, offset)?;
            let bits = u128::from(prefix.addr());
            if bits & !bits_from(offset) != 0 {
                return Err(FlowError(format!(
                    "{keyword} {prefix} has bits set before offset {offset}, which a rule does not carry"
                )));
            }
            out.extend_from_slice(&[len, offset]);
            let pattern = bits.checked_shl(offset.into()).unwrap_or(0).to_be_bytes();
            let octets = pattern_octets(len, offset);
            out.extend_from_slice(pattern.get(..octets).unwrap_or(&pattern));
            Ok(())
        }
        (AFI_IPV4, FlowPrefix::V4(prefix)) => {
            prefix.encode(out);
            Ok(())
        }
        (_, FlowPrefix::V4(p)) => Err(FlowError(format!("{keyword} {p} is IPv4, in an IPv6 rule"))),
        (_, v6) => Err(FlowError(format!(
            "{keyword} {v6} is IPv6, in an IPv4 rule"
        ))),
    }
}

fn encode_ops(
    afi: u16,
    type_code: u8,
    ops: &[OpValue],
    out: &mut Vec<u8>,
) -> Result<(), FlowError> {
    let keyword = type_keyword(type_code, afi);
    if ops.is_empty() {
        return Err(FlowError(format!("{keyword} needs at least one value")));
    }
    let rule = value_rule(type_code, afi);
    for (i, op) in ops.iter().enumerate() {
        if op.value > rule.max || op.value & !rule.meaningful != 0 {
            return Err(value_error(afi, type_code, op.value, rule.max));
        }
        let width = rule.fixed_width.unwrap_or_else(|| fewest_octets(op.value));
        let mut octet = width_bits(width) | op.bits;
        if i + 1 == ops.len() {
            octet |= op_bit::END;
        }
        if op.and && i > 0 {
            octet |= op_bit::AND;
        }
        out.push(octet);
        out.extend_from_slice(&op.value.to_be_bytes()[8 - width..]);
    }
    Ok(())
}

fn value_error(afi: u16, type_code: u8, value: u64, max: u64) -> FlowError {
    let keyword = type_keyword(type_code, afi);
    if type_code == component_type::FRAGMENT {
        if afi == AFI_IPV6 && value & 0x01 != 0 {
            return FlowError(
                "fragment dont-fragment does not exist in IPv6 (RFC 8956 §3.6)".into(),
            );
        }
        return FlowError(format!(
            "fragment bits {value:#x} are not among {max:#x} (RFC 8955 §4.2.2.12)"
        ));
    }
    FlowError(format!(
        "{keyword} value {value} is out of range (at most {max})"
    ))
}

/// Parses and validates a rule's value into its components.
fn parse_components(afi: u16, value: &[u8]) -> Result<Vec<Component>, FlowError> {
    let mut r = Reader::new(value);
    let mut components = Vec::new();
    let mut previous = 0u8;
    while let Some(type_code) = r.u8() {
        let known_max = if afi == AFI_IPV6 {
            component_type::FLOW_LABEL
        } else {
            component_type::FRAGMENT
        };
        if type_code == 0 || type_code > known_max {
            return Err(FlowError(format!(
                "component type {type_code} is unknown to {} FlowSpec",
                family_name(afi)
            )));
        }
        if type_code <= previous {
            let keyword = type_keyword(type_code, afi);
            return Err(FlowError(if type_code == previous {
                format!("{keyword} (type {type_code}) appears twice")
            } else {
                format!(
                    "{keyword} (type {type_code}) follows type {previous}: types must increase (RFC 8955 §4.2)"
                )
            }));
        }
        previous = type_code;
        let component = match type_code {
            component_type::DESTINATION => Component::Destination(read_prefix(afi, &mut r)?),
            component_type::SOURCE => Component::Source(read_prefix(afi, &mut r)?),
            _ => {
                let ops = read_ops(afi, type_code, &mut r)?;
                component_of(type_code, ops).ok_or_else(|| {
                    FlowError(format!("component type {type_code} has no operators"))
                })?
            }
        };
        components.push(component);
    }
    if components.is_empty() {
        return Err(FlowError("FlowSpec rule without components".into()));
    }
    Ok(components)
}

fn read_prefix(afi: u16, r: &mut Reader<'_>) -> Result<FlowPrefix, FlowError> {
    let truncated = || FlowError("prefix component runs past the end of the rule".into());
    let len = r.u8().ok_or_else(truncated)?;
    if afi == AFI_IPV6 {
        let offset = r.u8().ok_or_else(truncated)?;
        check_offset(len, offset)?;
        let pattern = r.take(pattern_octets(len, offset)).ok_or_else(truncated)?;
        let mut octets = [0u8; 16];
        octets
            .iter_mut()
            .zip(pattern)
            .for_each(|(slot, byte)| *slot = *byte);
        // Padding bits past the pattern "MUST be ignored on decoding" (RFC 8956 §3.1).
        let pattern_bits = u128::from_be_bytes(octets) & !bits_from(len.saturating_sub(offset));
        let bits = pattern_bits.checked_shr(offset.into()).unwrap_or(0);
        let prefix = Ipv6Prefix::new(Ipv6Addr::from(bits), len)
            .ok_or_else(|| FlowError(format!("IPv6 prefix length {len} exceeds 128")))?;
        Ok(FlowPrefix::V6 { prefix, offset })
    } else {
        if len > Ipv4Prefix::MAX_LEN {
            return Err(FlowError(format!("IPv4 prefix length {len} exceeds 32")));
        }
        let octets = r.take(usize::from(len).div_ceil(8)).ok_or_else(truncated)?;
        let mut addr = [0u8; 4];
        addr.iter_mut()
            .zip(octets)
            .for_each(|(slot, byte)| *slot = *byte);
        let prefix = Ipv4Prefix::new(Ipv4Addr::from(addr), len)
            .ok_or_else(|| FlowError(format!("IPv4 prefix length {len} exceeds 32")))?;
        Ok(FlowPrefix::V4(prefix))
    }
}

fn read_ops(afi: u16, type_code: u8, r: &mut Reader<'_>) -> Result<Vec<OpValue>, FlowError> {
    let keyword = type_keyword(type_code, afi);
    let rule = value_rule(type_code, afi);
    let mut ops = Vec::new();
    loop {
        let Some(octet) = r.u8() else {
            return Err(FlowError(format!(
                "{keyword} ends without its end-of-list bit"
            )));
        };
        let width = 1usize << ((octet & op_bit::LEN_MASK) >> op_bit::LEN_SHIFT);
        if !rule.widths.contains(&width) {
            return Err(FlowError(format!(
                "{keyword} value of {width} octets (the RFC allows {})",
                rule.widths
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        let Some(raw) = r.take(width) else {
            return Err(FlowError(format!(
                "{keyword} value runs past the end of the rule"
            )));
        };
        let value = raw.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
        ops.push(OpValue {
            // "MUST be treated as always unset on decoding" on the first operator.
            and: !ops.is_empty() && octet & op_bit::AND != 0,
            // Only the three low bits: bit 3 (and 2 for bitmasks) is reserved.
            bits: octet & (op_bit::LT | op_bit::GT | op_bit::EQ),
            value: value & rule.meaningful,
        });
        if octet & op_bit::END != 0 {
            return Ok(ops);
        }
    }
}

/// Shown in ExaBGP's words, components in order: `destination 10.0.0.0/24 protocol =tcp
/// destination-port =80`, which [`crate::words::flow::parse_flow_route`] reads back.
///
/// An IPv6 rule that no word marks as IPv6 (no IPv6 prefix, `next-header` or
/// `flow-label`) starts with `family ipv6`, so that it reads back as IPv6.
impl fmt::Display for FlowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let afi = self.afi();
        let components = self.components();
        let mut separator = "";
        if afi == AFI_IPV6 && !components.iter().any(marks_ipv6) {
            f.write_str("family ipv6")?;
            separator = " ";
        }
        for c in &components {
            f.write_str(separator)?;
            separator = " ";
            write_component(f, afi, c)?;
        }
        Ok(())
    }
}

/// Whether the text of `c` says its rule is IPv6.
fn marks_ipv6(c: &Component) -> bool {
    matches!(
        c,
        Component::Destination(FlowPrefix::V6 { .. })
            | Component::Source(FlowPrefix::V6 { .. })
            | Component::Protocol(_)
            | Component::FlowLabel(_)
    )
}

fn write_component(f: &mut fmt::Formatter<'_>, afi: u16, c: &Component) -> fmt::Result {
    let type_code = c.type_code();
    write!(f, "{} ", type_keyword(type_code, afi))?;
    match c {
        Component::Destination(p) | Component::Source(p) => fmt::Display::fmt(p, f),
        Component::TcpFlags(ops) | Component::Fragment(ops) => write_ops(
            f,
            ops.iter().map(|op| (op.and, bitmask_term(type_code, op))),
        ),
        Component::Protocol(ops)
        | Component::Port(ops)
        | Component::DestinationPort(ops)
        | Component::SourcePort(ops)
        | Component::IcmpType(ops)
        | Component::IcmpCode(ops)
        | Component::PacketLength(ops)
        | Component::Dscp(ops)
        | Component::FlowLabel(ops) => write_ops(
            f,
            ops.iter()
                .map(|op| (op.and, numeric_term(type_code, afi, op))),
        ),
    }
}

/// Writes an operator list as ExaBGP does: AND-ed operators joined by `&`, OR-ed ones
/// by spaces, and the whole in `[ ]` when there is more than one operator. Takes each
/// operator's `and` bit and text.
fn write_ops(
    f: &mut fmt::Formatter<'_>,
    terms: impl Iterator<Item = (bool, String)>,
) -> fmt::Result {
    let mut text = String::new();
    let mut count = 0;
    for (and, term) in terms {
        if count > 0 {
            text.push_str(if and { "&" } else { " " });
        }
        text.push_str(&term);
        count += 1;
    }
    if count > 1 {
        write!(f, "[ {text} ]")
    } else {
        f.write_str(&text)
    }
}

/// `=80`, `>=1024`, `!=tcp`; `true` and `false` (the value follows only if not 0).
fn numeric_term(type_code: u8, afi: u16, op: &NumericOp) -> String {
    let value = names::numeric_text(type_code, afi, op.value);
    match (op.lt, op.gt, op.eq) {
        (false, false, false) | (true, true, true) => {
            let word = if op.eq { "true" } else { "false" };
            if op.value == 0 {
                word.to_string()
            } else {
                format!("{word}{value}")
            }
        }
        (lt, gt, eq) => {
            let sign = match (lt, gt, eq) {
                (false, false, _) => "=",
                (false, true, false) => ">",
                (false, true, true) => ">=",
                (true, false, false) => "<",
                (true, false, true) => "<=",
                _ => "!=",
            };
            format!("{sign}{value}")
        }
    }
}

/// `syn`, `!rst`, `=syn+ack`, `!=fin`; `not-a-fragment` for `!is-fragment+first-fragment`.
fn bitmask_term(type_code: u8, op: &BitmaskOp) -> String {
    if type_code == component_type::FRAGMENT
        && op.not
        && !op.matches
        && op.value == names::NOT_A_FRAGMENT
    {
        return "not-a-fragment".into();
    }
    let sign = match (op.not, op.matches) {
        (false, false) => "",
        (true, false) => "!",
        (false, true) => "=",
        (true, true) => "!=",
    };
    format!("{sign}{}", names::bitmask_text(type_code, op.value))
}

/// `10.0.0.0/24`, `2001:db8::/32`, and with an offset ExaBGP's `ADDRESS/LENGTH/OFFSET`
/// (`::1234:5678:9a00:0/104/64`: the bits from 64 to 104 of the address).
impl fmt::Display for FlowPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowPrefix::V4(p) => p.fmt(f),
            FlowPrefix::V6 { prefix, offset: 0 } => prefix.fmt(f),
            FlowPrefix::V6 { prefix, offset } => write!(f, "{prefix}/{offset}"),
        }
    }
}

/// The names of values in ExaBGP's words: protocols, ICMP types and codes, TCP flags and
/// fragment bits. Shown by [`FlowSpec`]'s `Display`, read by [`crate::words::flow`].
pub(crate) mod names {
    use super::AFI_IPV6;
    use super::component_type::*;

    /// IP protocols (IANA), ExaBGP's names plus `ipv6-icmp`.
    const PROTOCOLS: &[(&str, u64)] = &[
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
        ("ospf", 89),
        ("ipip", 94),
        ("pim", 103),
        ("sctp", 132),
    ];
    /// Other names read for protocols.
    const PROTOCOL_ALIASES: &[(&str, u64)] = &[("icmpv6", 58)];

    /// ICMP types (IANA), ExaBGP's names.
    const ICMP_TYPES_V4: &[(&str, u64)] = &[
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

    /// ICMPv6 types (RFC 4443, 4861), named as their ICMP counterparts are.
    const ICMP_TYPES_V6: &[(&str, u64)] = &[
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

    /// ICMP codes, ExaBGP's names (read only: codes of different types share numbers,
    /// so codes are shown as numbers).
    const ICMP_CODES_V4: &[(&str, u64)] = &[
        ("network-unreachable", 0),
        ("host-unreachable", 1),
        ("protocol-unreachable", 2),
        ("port-unreachable", 3),
        ("fragmentation-needed", 4),
        ("source-route-failed", 5),
        ("destination-network-unknown", 6),
        ("destination-host-unknown", 7),
        ("source-host-isolated", 8),
        ("destination-network-prohibited", 9),
        ("destination-host-prohibited", 10),
        ("network-unreachable-for-tos", 11),
        ("host-unreachable-for-tos", 12),
        ("communication-prohibited-by-filtering", 13),
        ("host-precedence-violation", 14),
        ("precedence-cutoff-in-effect", 15),
        ("redirect-for-network", 0),
        ("redirect-for-host", 1),
        ("redirect-for-tos-and-net", 2),
        ("redirect-for-tos-and-host", 3),
        ("ttl-eq-zero-during-transit", 0),
        ("ttl-eq-zero-during-reassembly", 1),
        ("required-option-missing", 1),
        ("ip-header-bad", 2),
    ];

    /// TCP flags (RFC 9293, 3168, 3540), ExaBGP's names, in bit order.
    const TCP_FLAGS_BITS: &[(&str, u64)] = &[
        ("fin", 0x01),
        ("syn", 0x02),
        ("rst", 0x04),
        ("push", 0x08),
        ("ack", 0x10),
        ("urg", 0x20),
        ("ece", 0x40),
        ("cwr", 0x80),
        ("ns", 0x100),
    ];
    /// Other names read for TCP flags.
    const TCP_FLAG_ALIASES: &[(&str, u64)] = &[("urgent", 0x20)];

    /// Fragment bits (RFC 8955 §4.2.2.12), ExaBGP's names, in bit order.
    const FRAGMENT_BITS: &[(&str, u64)] = &[
        ("dont-fragment", 0x01),
        ("is-fragment", 0x02),
        ("first-fragment", 0x04),
        ("last-fragment", 0x08),
    ];

    /// `not-a-fragment` is "neither a later nor a first fragment": `!` of these bits.
    pub(crate) const NOT_A_FRAGMENT: u64 = 0x06;

    fn lookup(tables: &[&[(&str, u64)]], text: &str) -> Option<u64> {
        tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, v)| *v)
    }

    fn name_of(table: &[(&'static str, u64)], value: u64) -> Option<&'static str> {
        table
            .iter()
            .find(|(_, v)| *v == value)
            .map(|(name, _)| *name)
    }

    /// A number: decimal digits, or `0x` and hex digits.
    pub(crate) fn number(text: &str) -> Option<u64> {
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            return u64::from_str_radix(hex, 16).ok();
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }

    /// The text of a numeric value: a name where the component has one.
    pub(crate) fn numeric_text(type_code: u8, afi: u16, value: u64) -> String {
        let name = match type_code {
            PROTOCOL => name_of(PROTOCOLS, value),
            ICMP_TYPE if afi == AFI_IPV6 => name_of(ICMP_TYPES_V6, value),
            ICMP_TYPE => name_of(ICMP_TYPES_V4, value),
            _ => None,
        };
        name.map_or_else(|| value.to_string(), str::to_string)
    }

    /// Reads a numeric value: a number, or a name the component knows.
    pub(crate) fn numeric_value(type_code: u8, afi: u16, text: &str) -> Option<u64> {
        number(text).or_else(|| match type_code {
            PROTOCOL => lookup(&[PROTOCOLS, PROTOCOL_ALIASES], text),
            ICMP_TYPE if afi == AFI_IPV6 => lookup(&[ICMP_TYPES_V6], text),
            ICMP_TYPE => lookup(&[ICMP_TYPES_V4], text),
            ICMP_CODE if afi != AFI_IPV6 => lookup(&[ICMP_CODES_V4], text),
            _ => None,
        })
    }

    /// The names a numeric component reads, for error messages.
    pub(crate) fn numeric_names(type_code: u8, afi: u16) -> Vec<&'static str> {
        let table: &[(&str, u64)] = match type_code {
            PROTOCOL => PROTOCOLS,
            ICMP_TYPE if afi == AFI_IPV6 => ICMP_TYPES_V6,
            ICMP_TYPE => ICMP_TYPES_V4,
            _ => &[],
        };
        table.iter().map(|(name, _)| *name).collect()
    }

    fn bit_table(type_code: u8) -> &'static [(&'static str, u64)] {
        if type_code == FRAGMENT {
            FRAGMENT_BITS
        } else {
            TCP_FLAGS_BITS
        }
    }

    /// The text of a bitmask: names joined by `+` (`syn+ack`), bits without a name in
    /// hex, `0` for none.
    pub(crate) fn bitmask_text(type_code: u8, value: u64) -> String {
        let mut parts = Vec::new();
        let mut rest = value;
        for (name, bit) in bit_table(type_code) {
            if value & bit != 0 {
                parts.push((*name).to_string());
                rest &= !bit;
            }
        }
        if rest != 0 || parts.is_empty() {
            parts.push(if rest == 0 {
                "0".to_string()
            } else {
                format!("{rest:#x}")
            });
        }
        parts.join("+")
    }

    /// Reads a bitmask: names or numbers joined by `+`.
    pub(crate) fn bitmask_value(type_code: u8, text: &str) -> Option<u64> {
        let aliases: &[(&str, u64)] = if type_code == FRAGMENT {
            &[]
        } else {
            TCP_FLAG_ALIASES
        };
        text.split('+').try_fold(0u64, |acc, part| {
            number(part)
                .or_else(|| lookup(&[bit_table(type_code), aliases], part))
                .map(|bits| acc | bits)
        })
    }

    /// The names a bitmask component reads, for error messages.
    pub(crate) fn bitmask_names(type_code: u8) -> Vec<&'static str> {
        let mut names: Vec<&str> = bit_table(type_code).iter().map(|(n, _)| *n).collect();
        if type_code == FRAGMENT {
            names.push("not-a-fragment");
        }
        names
    }
}

/// A rule that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowDecodeError {
    /// The rule's length was sound but its content is not (treat-as-withdraw); carries
    /// the octets to skip to the next rule.
    Rule(FlowError, usize),
    /// The length overruns the field: nothing after it can be read.
    Field(FlowError),
}

impl fmt::Debug for FlowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowSpec({} {self})", self.family())
    }
}

/// Extended community type and sub-type of each traffic action (RFC 8955 §7).
mod action_code {
    /// traffic-rate-bytes.
    pub const RATE_BYTES: [u8; 2] = [0x80, 0x06];
    /// traffic-rate-packets.
    pub const RATE_PACKETS: [u8; 2] = [0x80, 0x0c];
    /// traffic-action.
    pub const ACTION: [u8; 2] = [0x80, 0x07];
    /// rt-redirect, 2-octet AS.
    pub const REDIRECT_AS2: [u8; 2] = [0x80, 0x08];
    /// rt-redirect, IPv4 address.
    pub const REDIRECT_IPV4: [u8; 2] = [0x81, 0x08];
    /// rt-redirect, 4-octet AS.
    pub const REDIRECT_AS4: [u8; 2] = [0x82, 0x08];
    /// traffic-marking.
    pub const MARK: [u8; 2] = [0x80, 0x09];
    /// Redirect to IP next hop (draft-simpson-idr-flowspec-redirect).
    pub const REDIRECT_NEXT_HOP: [u8; 2] = [0x08, 0x00];
}

/// traffic-action bits of the last octet (RFC 8955 §7.3): S is bit 46, T bit 47.
const ACTION_SAMPLE: u8 = 0x02;
const ACTION_TERMINAL: u8 = 0x01;
/// The copy flag of redirect to IP: the low bit of the last octet.
const NEXT_HOP_COPY: u8 = 0x01;
/// traffic-marking: the DSCP is the 6 low bits of the last octet (RFC 8955 §7.5).
const MARK_DSCP: u8 = 0x3f;

/// A traffic action (RFC 8955 §7, and redirect to IP as GoBGP and ExaBGP send it), the
/// typed view of an extended community; other communities are not actions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrafficAction {
    /// traffic-rate-bytes (0x8006): bytes per second, 0 discards. The 2 octets before
    /// the rate are an informative AS (RFC 8955 §7.1).
    RateBytes {
        /// Informative AS.
        asn: u16,
        /// Bytes per second (IEEE float).
        rate: f32,
    },
    /// traffic-rate-packets (0x800c, RFC 8955 §7.2): packets per second.
    RatePackets {
        /// Informative AS.
        asn: u16,
        /// Packets per second.
        rate: f32,
    },
    /// traffic-action (0x8007): sample and/or terminal.
    Action {
        /// Sample (log) matching traffic.
        sample: bool,
        /// The T bit. Despite its name, RFC 8955 §7.3 says that when it is set the
        /// filtering engine goes on to evaluate later rules, and when unset it stops.
        terminal: bool,
    },
    /// redirect to a VRF by route target, 2-octet AS form (0x8008).
    RedirectAs2 {
        /// Global administrator.
        asn: u16,
        /// Local administrator.
        value: u32,
    },
    /// redirect, IPv4-address form (0x8108).
    RedirectIpv4 {
        /// Global administrator.
        address: std::net::Ipv4Addr,
        /// Local administrator.
        value: u16,
    },
    /// redirect, 4-octet AS form (0x8208).
    RedirectAs4 {
        /// Global administrator.
        asn: u32,
        /// Local administrator.
        value: u16,
    },
    /// traffic-marking (0x8009): rewrite DSCP.
    Mark {
        /// The DSCP value (6 bits).
        dscp: u8,
    },
    /// redirect to IP, next-hop form (0x0800, draft-simpson-idr-flowspec-redirect): the
    /// traffic goes to the next hop of the route.
    RedirectToNextHop {
        /// The "copy" flag.
        copy: bool,
    },
}

impl TrafficAction {
    /// The action an extended community carries, if it is one. Bits the RFC reserves are
    /// ignored, and a negative rate reads as 0 ("On decoding, negative values MUST be
    /// treated as zero", RFC 8955 §7.1, §7.2).
    pub fn from_community(c: &ExtendedCommunity) -> Option<TrafficAction> {
        let b = c.0;
        let as2 = u16::from_be_bytes([b[2], b[3]]);
        let rate = received_rate(f32::from_be_bytes([b[4], b[5], b[6], b[7]]));
        Some(match [b[0], b[1]] {
            action_code::RATE_BYTES => TrafficAction::RateBytes { asn: as2, rate },
            action_code::RATE_PACKETS => TrafficAction::RatePackets { asn: as2, rate },
            action_code::ACTION => TrafficAction::Action {
                sample: b[7] & ACTION_SAMPLE != 0,
                terminal: b[7] & ACTION_TERMINAL != 0,
            },
            action_code::REDIRECT_AS2 => TrafficAction::RedirectAs2 {
                asn: as2,
                value: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            },
            action_code::REDIRECT_IPV4 => TrafficAction::RedirectIpv4 {
                address: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                value: u16::from_be_bytes([b[6], b[7]]),
            },
            action_code::REDIRECT_AS4 => TrafficAction::RedirectAs4 {
                asn: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                value: u16::from_be_bytes([b[6], b[7]]),
            },
            action_code::MARK => TrafficAction::Mark {
                dscp: b[7] & MARK_DSCP,
            },
            action_code::REDIRECT_NEXT_HOP => TrafficAction::RedirectToNextHop {
                copy: b[7] & NEXT_HOP_COPY != 0,
            },
            _ => return None,
        })
    }

    /// The extended community carrying the action, reserved bits zero.
    pub fn to_community(&self) -> ExtendedCommunity {
        let mut b = [0u8; 8];
        let (code, rest): ([u8; 2], [u8; 6]) = match *self {
            TrafficAction::RateBytes { asn, rate } => {
                (action_code::RATE_BYTES, as_and_rate(asn, rate))
            }
            TrafficAction::RatePackets { asn, rate } => {
                (action_code::RATE_PACKETS, as_and_rate(asn, rate))
            }
            TrafficAction::Action { sample, terminal } => {
                let mut bits = 0;
                if sample {
                    bits |= ACTION_SAMPLE;
                }
                if terminal {
                    bits |= ACTION_TERMINAL;
                }
                (action_code::ACTION, [0, 0, 0, 0, 0, bits])
            }
            TrafficAction::RedirectAs2 { asn, value } => {
                let (a, v) = (asn.to_be_bytes(), value.to_be_bytes());
                (
                    action_code::REDIRECT_AS2,
                    [a[0], a[1], v[0], v[1], v[2], v[3]],
                )
            }
            TrafficAction::RedirectIpv4 { address, value } => {
                let (a, v) = (address.octets(), value.to_be_bytes());
                (
                    action_code::REDIRECT_IPV4,
                    [a[0], a[1], a[2], a[3], v[0], v[1]],
                )
            }
            TrafficAction::RedirectAs4 { asn, value } => {
                let (a, v) = (asn.to_be_bytes(), value.to_be_bytes());
                (
                    action_code::REDIRECT_AS4,
                    [a[0], a[1], a[2], a[3], v[0], v[1]],
                )
            }
            TrafficAction::Mark { dscp } => (action_code::MARK, [0, 0, 0, 0, 0, dscp & MARK_DSCP]),
            TrafficAction::RedirectToNextHop { copy } => (
                action_code::REDIRECT_NEXT_HOP,
                [0, 0, 0, 0, 0, if copy { NEXT_HOP_COPY } else { 0 }],
            ),
        };
        b[..2].copy_from_slice(&code);
        b[2..].copy_from_slice(&rest);
        ExtendedCommunity(b)
    }

    /// The text of `community` in `extended-community` lists, when it is a traffic
    /// action encoded as [`to_community`](Self::to_community) would (else `None`, and
    /// the community shows as hex): `rate-limit:9600`, `rate-limit:65001:9600` (with its
    /// informative AS), `discard`, `rate-limit-packets:100`, `action:sample`,
    /// `action:terminal`, `action:sample-terminal`, `action:none`, `redirect:65001:999`,
    /// `redirect:192.0.2.1:7`, `redirect:4200000000L:7`, `mark:10`,
    /// `redirect-to-nexthop`, `redirect-to-nexthop:copy`.
    /// [`crate::words::parse_extended_community`] reads each back to the same octets.
    pub fn community_text(community: &ExtendedCommunity) -> Option<String> {
        let action = TrafficAction::from_community(community)?;
        if action.to_community() != *community {
            return None;
        }
        Some(match action {
            TrafficAction::RateBytes { asn: 0, rate } if rate.to_bits() == 0 => "discard".into(),
            TrafficAction::RateBytes { asn, rate } => rate_text("rate-limit", asn, rate)?,
            TrafficAction::RatePackets { asn, rate } => rate_text("rate-limit-packets", asn, rate)?,
            TrafficAction::Action { sample, terminal } => {
                format!("action:{}", action_flags_text(sample, terminal))
            }
            TrafficAction::RedirectAs2 { asn, value } => format!("redirect:{asn}:{value}"),
            TrafficAction::RedirectIpv4 { address, value } => format!("redirect:{address}:{value}"),
            TrafficAction::RedirectAs4 { asn, value } => format!("redirect:{asn}L:{value}"),
            TrafficAction::Mark { dscp } => format!("mark:{dscp}"),
            TrafficAction::RedirectToNextHop { copy: false } => "redirect-to-nexthop".into(),
            TrafficAction::RedirectToNextHop { copy: true } => "redirect-to-nexthop:copy".into(),
        })
    }
}

/// A received rate, negative ones as 0 (RFC 8955 §7.1).
fn received_rate(rate: f32) -> f32 {
    if rate.is_sign_negative() && !rate.is_nan() {
        0.0
    } else {
        rate
    }
}

fn as_and_rate(asn: u16, rate: f32) -> [u8; 6] {
    let (a, r) = (asn.to_be_bytes(), rate.to_be_bytes());
    [a[0], a[1], r[0], r[1], r[2], r[3]]
}

/// `rate-limit:9600` or, with an informative AS, `rate-limit:65001:9600`; `None` for a
/// rate the text can not carry (not a finite, non-negative number).
fn rate_text(kind: &str, asn: u16, rate: f32) -> Option<String> {
    if !rate.is_finite() || rate.is_sign_negative() {
        return None;
    }
    Some(if asn == 0 {
        format!("{kind}:{rate}")
    } else {
        format!("{kind}:{asn}:{rate}")
    })
}

/// `sample`, `terminal`, `sample-terminal` or `none`.
pub(crate) fn action_flags_text(sample: bool, terminal: bool) -> &'static str {
    match (sample, terminal) {
        (true, true) => "sample-terminal",
        (true, false) => "sample",
        (false, true) => "terminal",
        (false, false) => "none",
    }
}

/// ExaBGP's words: `rate-limit 9600`, `discard`, `redirect 65001:999`,
/// `redirect 192.0.2.1:7`, `redirect 4200000000:7`, `mark 10`, `action sample`,
/// `redirect-to-nexthop`; and where ExaBGP has no words (or none it reads back),
/// `rate-limit-packets 100` (ExaBGP: `rate-limit 100 packets`), `redirect-to-nexthop
/// copy`, `action none`, and `redirect 100L:7` for a 4-octet-AS redirect to an AS below
/// 65536. [`crate::words::flow::parse_flow_route`] reads each back.
impl fmt::Display for TrafficAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TrafficAction::RateBytes { rate, .. } if rate <= 0.0 => f.write_str("discard"),
            TrafficAction::RateBytes { rate, .. } => write!(f, "rate-limit {rate}"),
            TrafficAction::RatePackets { rate, .. } => write!(f, "rate-limit-packets {rate}"),
            TrafficAction::Action { sample, terminal } => {
                write!(f, "action {}", action_flags_text(sample, terminal))
            }
            TrafficAction::RedirectAs2 { asn, value } => write!(f, "redirect {asn}:{value}"),
            TrafficAction::RedirectIpv4 { address, value } => {
                write!(f, "redirect {address}:{value}")
            }
            TrafficAction::RedirectAs4 { asn, value } if asn > u16::MAX as u32 => {
                write!(f, "redirect {asn}:{value}")
            }
            TrafficAction::RedirectAs4 { asn, value } => write!(f, "redirect {asn}L:{value}"),
            TrafficAction::Mark { dscp } => write!(f, "mark {dscp}"),
            TrafficAction::RedirectToNextHop { copy: false } => f.write_str("redirect-to-nexthop"),
            TrafficAction::RedirectToNextHop { copy: true } => {
                f.write_str("redirect-to-nexthop copy")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(and: bool, lt: bool, gt: bool, eq: bool, value: u64) -> NumericOp {
        NumericOp {
            and,
            lt,
            gt,
            eq,
            value,
        }
    }

    fn eq(value: u64) -> NumericOp {
        op(false, false, false, true, value)
    }

    fn bits(and: bool, not: bool, matches: bool, value: u64) -> BitmaskOp {
        BitmaskOp {
            and,
            not,
            matches,
            value,
        }
    }

    fn v4(text: &str) -> FlowPrefix {
        FlowPrefix::V4(text.parse().unwrap())
    }

    fn v6(text: &str, offset: u8) -> FlowPrefix {
        FlowPrefix::V6 {
            prefix: text.parse().unwrap(),
            offset,
        }
    }

    /// Checks both ways: `components` encode to `nlri` (length and value), and `nlri`
    /// decodes to the same rule and components.
    #[track_caller]
    fn both_ways(afi: u16, components: &[Component], nlri: &[u8]) {
        let rule = FlowSpec::new(afi, components).unwrap();
        let mut out = Vec::new();
        rule.encode(&mut out);
        assert_eq!(out, nlri, "encoding of {components:?}");
        assert_eq!(rule.encoded_len(), nlri.len());
        let (decoded, read) = FlowSpec::decode(afi, nlri).unwrap();
        assert_eq!(read, nlri.len());
        assert_eq!(decoded, rule);
        assert_eq!(decoded.components(), components);
    }

    /// One NLRI of `value` with its 1-octet length.
    fn nlri(value: &[u8]) -> Vec<u8> {
        let mut out = vec![value.len() as u8];
        out.extend_from_slice(value);
        out
    }

    #[track_caller]
    fn rule_error(afi: u16, value: &[u8]) -> String {
        let buf = nlri(value);
        match FlowSpec::decode(afi, &buf) {
            Err(FlowDecodeError::Rule(e, skip)) => {
                assert_eq!(skip, buf.len());
                e.0
            }
            other => panic!("expected a rule error, got {other:?}"),
        }
    }

    #[test]
    fn rfc8955_example_1() {
        // §4.3.1: "all packets to 192.0.2.0/24 and TCP port 25"
        both_ways(
            AFI_IPV4,
            &[
                Component::Destination(v4("192.0.2.0/24")),
                Component::Protocol(vec![eq(6)]),
                Component::Port(vec![eq(25)]),
            ],
            &[
                0x0b, 0x01, 0x18, 0xc0, 0x00, 0x02, 0x03, 0x81, 0x06, 0x04, 0x81, 0x19,
            ],
        );
    }

    #[test]
    fn rfc8955_example_2() {
        // §4.3.2: "all packets to 192.0.2.0/24 from 203.0.113.0/24 and port {range
        // [137, 139] or 8080}"
        both_ways(
            AFI_IPV4,
            &[
                Component::Destination(v4("192.0.2.0/24")),
                Component::Source(v4("203.0.113.0/24")),
                Component::Port(vec![
                    op(false, false, true, true, 137),
                    op(true, true, false, true, 139),
                    eq(8080),
                ]),
            ],
            &[
                0x12, 0x01, 0x18, 0xc0, 0x00, 0x02, 0x02, 0x18, 0xcb, 0x00, 0x71, 0x04, 0x03, 0x89,
                0x45, 0x8b, 0x91, 0x1f, 0x90,
            ],
        );
    }

    #[test]
    fn rfc8955_example_3() {
        // §4.3.3: "all packets to 192.0.2.1/32 and fragment { DF or FF }"
        both_ways(
            AFI_IPV4,
            &[
                Component::Destination(v4("192.0.2.1/32")),
                Component::Fragment(vec![bits(false, false, false, 0x05)]),
            ],
            &[0x09, 0x01, 0x20, 0xc0, 0x00, 0x02, 0x01, 0x0c, 0x80, 0x05],
        );
    }

    #[test]
    fn rfc8956_example_1() {
        // §3.8.1: "packets from ::1234:5678:9a00:0/64-104 to 2001:db8::/32 and
        // upper-layer protocol tcp", as decoded in Table 2.
        let components = [
            Component::Destination(v6("2001:db8::/32", 0)),
            Component::Source(v6("::1234:5678:9a00:0/104", 64)),
            Component::Protocol(vec![eq(6)]),
        ];
        both_ways(
            AFI_IPV6,
            &components,
            &[
                0x12, 0x01, 0x20, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x02, 0x68, 0x40, 0x12, 0x34, 0x56,
                0x78, 0x9a, 0x03, 0x81, 0x06,
            ],
        );
        // Table 1 prints the last destination octet as 0xbb, not the 0xb8 of Table 2 and
        // of 2001:db8::/32 (erratum 7571): those octets are 2001:dbb::/32.
        both_ways(
            AFI_IPV6,
            &[
                Component::Destination(v6("2001:dbb::/32", 0)),
                components[1].clone(),
                components[2].clone(),
            ],
            &[
                0x12, 0x01, 0x20, 0x00, 0x20, 0x01, 0x0d, 0xbb, 0x02, 0x68, 0x40, 0x12, 0x34, 0x56,
                0x78, 0x9a, 0x03, 0x81, 0x06,
            ],
        );
    }

    #[test]
    fn rfc8956_example_2() {
        // §3.8.2: "all packets from ::1234:5678:9a00:0/65-104 to 2001:db8::/32": a
        // 39-bit pattern, shifted to start at bit 65, and one bit of padding.
        both_ways(
            AFI_IPV6,
            &[
                Component::Destination(v6("2001:db8::/32", 0)),
                Component::Source(v6("::1234:5678:9a00:0/104", 65)),
            ],
            &[
                0x0f, 0x01, 0x20, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x02, 0x68, 0x41, 0x24, 0x68, 0xac,
                0xf1, 0x34,
            ],
        );
    }

    #[test]
    fn every_component_type_both_ways() {
        use Component::*;
        let ipv4: Vec<(Component, Vec<u8>)> = vec![
            (Destination(v4("0.0.0.0/0")), vec![1, 0]),
            (Destination(v4("10.0.0.0/8")), vec![1, 8, 10]),
            (Source(v4("172.16.0.0/12")), vec![2, 12, 172, 16]),
            (Source(v4("192.0.2.1/32")), vec![2, 32, 192, 0, 2, 1]),
            (Protocol(vec![eq(17)]), vec![3, 0x81, 17]),
            (Port(vec![eq(443)]), vec![4, 0x91, 0x01, 0xbb]),
            (
                DestinationPort(vec![eq(80), eq(443)]),
                vec![5, 0x01, 80, 0x91, 0x01, 0xbb],
            ),
            (
                SourcePort(vec![op(false, true, false, false, 1024)]),
                vec![6, 0x94, 0x04, 0x00],
            ),
            (IcmpType(vec![eq(8)]), vec![7, 0x81, 8]),
            (IcmpCode(vec![eq(0)]), vec![8, 0x81, 0]),
            (
                TcpFlags(vec![bits(false, false, false, 0x02)]),
                vec![9, 0x80, 0x02],
            ),
            (
                PacketLength(vec![
                    op(false, false, true, false, 200),
                    op(true, true, false, false, 300),
                ]),
                vec![10, 0x02, 200, 0xd4, 0x01, 0x2c],
            ),
            (Dscp(vec![eq(46)]), vec![11, 0x81, 46]),
            (
                Fragment(vec![bits(false, true, false, 0x06)]),
                vec![12, 0x82, 0x06],
            ),
        ];
        for (component, value) in ipv4 {
            both_ways(AFI_IPV4, &[component], &nlri(&value));
        }
        let ipv6: Vec<(Component, Vec<u8>)> = vec![
            (Destination(v6("::/0", 0)), vec![1, 0, 0]),
            (
                Destination(v6("2001:db8:1::/48", 0)),
                vec![1, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01],
            ),
            // the IPv4 address embedded at bit 96 of an IPv6 address
            (
                Source(v6("::c000:201/128", 96)),
                vec![2, 128, 96, 192, 0, 2, 1],
            ),
            (Source(v6("::1/128", 127)), vec![2, 128, 127, 0x80]),
            (Protocol(vec![eq(58)]), vec![3, 0x81, 58]),
            (IcmpType(vec![eq(128)]), vec![7, 0x81, 128]),
            (
                Fragment(vec![bits(false, false, false, 0x0e)]),
                vec![12, 0x80, 0x0e],
            ),
            // RFC 8956 §3.7: flow labels in 4 octets, even when they fit fewer
            (FlowLabel(vec![eq(1234)]), vec![13, 0xa1, 0, 0, 0x04, 0xd2]),
            (
                FlowLabel(vec![eq(0xfffff)]),
                vec![13, 0xa1, 0, 0x0f, 0xff, 0xff],
            ),
        ];
        for (component, value) in ipv6 {
            both_ways(AFI_IPV6, &[component], &nlri(&value));
        }
    }

    #[test]
    fn every_operator_form_both_ways() {
        let numeric: &[(NumericOp, u8)] = &[
            (op(false, false, false, false, 5), 0x80), // false
            (op(false, false, false, true, 5), 0x81),  // ==
            (op(false, false, true, false, 5), 0x82),  // >
            (op(false, false, true, true, 5), 0x83),   // >=
            (op(false, true, false, false, 5), 0x84),  // <
            (op(false, true, false, true, 5), 0x85),   // <=
            (op(false, true, true, false, 5), 0x86),   // !=
            (op(false, true, true, true, 5), 0x87),    // true
        ];
        for (numeric_op, octet) in numeric {
            both_ways(
                AFI_IPV4,
                &[Component::PacketLength(vec![*numeric_op])],
                &nlri(&[10, *octet, 5]),
            );
        }
        let bitmask: &[(BitmaskOp, u8)] = &[
            (bits(false, false, false, 0x12), 0x80), // any of the bits
            (bits(false, false, true, 0x12), 0x81),  // all of them
            (bits(false, true, false, 0x12), 0x82),  // none of them
            (bits(false, true, true, 0x12), 0x83),   // not all of them
        ];
        for (bitmask_op, octet) in bitmask {
            both_ways(
                AFI_IPV4,
                &[Component::TcpFlags(vec![*bitmask_op])],
                &nlri(&[9, *octet, 0x12]),
            );
        }
        // lengths 1, 2 and 4, AND and OR: >=1 & <=0x1_0000 | ==0x100
        both_ways(
            AFI_IPV6,
            &[Component::FlowLabel(vec![
                op(false, false, true, true, 1),
                op(true, true, false, true, 0x1_0000),
                op(false, false, false, true, 0x100),
            ])],
            &nlri(&[13, 0x23, 0, 0, 0, 1, 0x65, 0, 1, 0, 0, 0xa1, 0, 0, 1, 0]),
        );
        // 2-octet TCP flags: syn & !ns
        both_ways(
            AFI_IPV4,
            &[Component::TcpFlags(vec![
                bits(false, false, false, 0x02),
                bits(true, true, false, 0x100),
            ])],
            &nlri(&[9, 0x00, 0x02, 0xd2, 0x01, 0x00]),
        );
    }

    #[test]
    fn new_sorts_components_and_clears_the_first_and() {
        let rule = FlowSpec::new(
            AFI_IPV4,
            &[
                Component::Port(vec![op(true, false, false, true, 25)]),
                Component::Destination(v4("192.0.2.0/24")),
                Component::Protocol(vec![eq(6)]),
            ],
        )
        .unwrap();
        assert_eq!(
            rule.value(),
            [
                0x01, 0x18, 0xc0, 0x00, 0x02, 0x03, 0x81, 0x06, 0x04, 0x81, 0x19
            ]
        );
    }

    #[test]
    fn decode_is_lenient_where_the_rfcs_say() {
        let decoded = |afi, value: &[u8]| FlowSpec::decode(afi, &nlri(value)).unwrap().0;
        // any value length for protocol (a SHOULD): 8 octets, reserved bit 0x08 set
        assert_eq!(
            decoded(AFI_IPV4, &[3, 0xb9, 0, 0, 0, 0, 0, 0, 0, 6]).components(),
            [Component::Protocol(vec![eq(6)])]
        );
        // the AND bit of a first operator reads as unset
        assert_eq!(
            decoded(AFI_IPV4, &[5, 0xc1, 80]).components(),
            [Component::DestinationPort(vec![eq(80)])]
        );
        // reserved bitmask bits 0x0c, and fragment bits outside LF FF IsF DF
        assert_eq!(
            decoded(AFI_IPV4, &[12, 0x8c, 0xf1]).components(),
            [Component::Fragment(vec![bits(false, false, false, 0x01)])]
        );
        // IPv6 has no DF bit: it is reserved there
        assert_eq!(
            decoded(AFI_IPV6, &[12, 0x80, 0x03]).components(),
            [Component::Fragment(vec![bits(false, false, false, 0x02)])]
        );
        // DSCP: "All other bits SHOULD be treated as 0"
        assert_eq!(
            decoded(AFI_IPV4, &[11, 0x81, 0xee]).components(),
            [Component::Dscp(vec![eq(0x2e)])]
        );
        // TCP data offset bits of the 2-octet form: "always treated as 0"
        assert_eq!(
            decoded(AFI_IPV4, &[9, 0x90, 0xf0, 0x02]).components(),
            [Component::TcpFlags(vec![bits(false, false, false, 0x02)])]
        );
        // padding bits of an IPv6 pattern and trailing bits of an IPv4 prefix
        assert_eq!(
            decoded(AFI_IPV6, &[2, 104, 65, 0x24, 0x68, 0xac, 0xf1, 0x35]).components(),
            [Component::Source(v6("::1234:5678:9a00:0/104", 65))]
        );
        assert_eq!(
            decoded(AFI_IPV4, &[1, 7, 0xff]).components(),
            [Component::Destination(v4("254.0.0.0/7"))]
        );
        // the received octets are kept, not made canonical
        let wide = decoded(AFI_IPV4, &[5, 0xa1, 0, 0, 0, 80]);
        assert_eq!(wide.value(), [5, 0xa1, 0, 0, 0, 80]);
        assert_ne!(wide, FlowSpec::new(AFI_IPV4, &wide.components()).unwrap());
        // a 2-octet length below 240
        assert_eq!(
            FlowSpec::decode(AFI_IPV4, &[0xf0, 0x03, 3, 0x81, 6]).unwrap(),
            (decoded(AFI_IPV4, &[3, 0x81, 6]), 5)
        );
    }

    /// A port component of `len` octets: its type, 2 octets per port below 256 and one
    /// port of 3 octets when the rest is odd.
    fn ports_of_length(len: usize) -> Component {
        let wide = (len - 1) % 2;
        let narrow = (len - 1 - 3 * wide) / 2;
        Component::Port(
            std::iter::repeat_n(eq(80), narrow)
                .chain(std::iter::repeat_n(eq(8080), wide))
                .collect(),
        )
    }

    #[test]
    fn long_rules_use_the_two_octet_length() {
        for (len, header) in [
            (239, vec![0xef]),
            (240, vec![0xf0, 0xf0]),
            (1000, vec![0xf3, 0xe8]),
            (4095, vec![0xff, 0xff]),
        ] {
            let rule = FlowSpec::new(AFI_IPV4, &[ports_of_length(len)]).unwrap();
            assert_eq!(rule.value().len(), len);
            let mut out = Vec::new();
            rule.encode(&mut out);
            assert_eq!(out[..header.len()], header, "{len}");
            assert_eq!(rule.encoded_len(), len + header.len());
            assert_eq!(FlowSpec::decode(AFI_IPV4, &out).unwrap(), (rule, out.len()));
        }
        let e = FlowSpec::new(AFI_IPV4, &[ports_of_length(4096)]).unwrap_err();
        assert!(e.0.contains("4095"), "{e}");
    }

    #[test]
    fn decode_refuses_malformed_rules() {
        let cases: &[(u16, &[u8], &str)] = &[
            // out of order: protocol before destination
            (AFI_IPV4, &[3, 0x81, 6, 1, 8, 10], "types must increase"),
            // the same type twice
            (AFI_IPV4, &[5, 0x81, 80, 5, 0x81, 81], "appears twice"),
            // TCP flags in 4 octets (MUST be 1 or 2)
            (AFI_IPV4, &[9, 0xa0, 0, 0, 0, 2], "4 octets"),
            // DSCP and fragment in 2 (MUST be 1)
            (AFI_IPV4, &[11, 0x91, 0, 46], "2 octets"),
            (AFI_IPV4, &[12, 0x90, 0, 1], "2 octets"),
            // a value running past the rule
            (AFI_IPV4, &[5, 0x91, 0], "runs past"),
            // no end-of-list bit
            (AFI_IPV4, &[5, 0x01, 80], "end-of-list"),
            // prefix length 33, and a prefix cut short
            (AFI_IPV4, &[1, 33, 1, 2, 3, 4, 5], "exceeds 32"),
            (AFI_IPV4, &[1, 24, 10, 0], "runs past"),
            (AFI_IPV6, &[1, 129, 0], "exceeds 128"),
            // unknown types, and the flow label in IPv4
            (AFI_IPV4, &[14, 0x81, 1], "unknown"),
            (AFI_IPV6, &[14, 0x81, 1], "unknown"),
            (AFI_IPV4, &[0, 0x81, 1], "unknown"),
            (AFI_IPV4, &[13, 0xa1, 0, 0, 0, 1], "unknown to IPv4"),
            // IPv6 offsets: not below the length, or an offset with length 0
            (AFI_IPV6, &[2, 64, 64], "offset must be below"),
            (AFI_IPV6, &[2, 0, 8], "offset must be below"),
            (AFI_IPV6, &[2, 64, 8, 1, 2, 3, 4, 5, 6], "runs past"),
        ];
        for (afi, value, expected) in cases {
            let e = rule_error(*afi, value);
            assert!(e.contains(expected), "{value:?}: {e}");
        }
    }

    #[test]
    fn decode_refuses_unsound_lengths() {
        let field = |buf: &[u8]| match FlowSpec::decode(AFI_IPV4, buf) {
            Err(FlowDecodeError::Field(e)) => e.0,
            other => panic!("expected a field error for {buf:?}, got {other:?}"),
        };
        assert!(field(&[]).contains("before a length"));
        assert!(field(&[0]).contains("length 0"));
        assert!(field(&[0xf0, 0]).contains("length 0"));
        assert!(field(&[0xf1]).contains("2-octet length"));
        assert!(field(&[5, 3, 0x81, 6]).contains("overruns"));
        assert!(field(&[0xf1, 0x00, 3, 0x81, 6]).contains("overruns"));
        assert!(matches!(
            FlowSpec::decode(3, &[3, 3, 0x81, 6]),
            Err(FlowDecodeError::Field(_))
        ));
    }

    #[test]
    fn decode_all_skips_malformed_rules_and_keeps_the_good_ones() {
        let good = [3, 3, 0x81, 6];
        let bad = [3, 14, 0x81, 1];
        let other = [3, 5, 0x81, 80];
        let buf = [&good[..], &bad, &other].concat();
        let (rules, malformed) = FlowSpec::decode_all(AFI_IPV4, &buf).unwrap();
        assert_eq!(
            rules.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["protocol =tcp", "destination-port =80"]
        );
        assert!(malformed.unwrap().0.contains("unknown"));
        let (rules, malformed) =
            FlowSpec::decode_all(AFI_IPV4, &[&good[..], &other].concat()).unwrap();
        assert_eq!((rules.len(), malformed), (2, None));
        // a length overrunning the field loses the whole field
        assert!(FlowSpec::decode_all(AFI_IPV4, &[&good[..], &[9, 3, 0x81]].concat()).is_err());
        assert_eq!(FlowSpec::decode_all(AFI_IPV4, &[]).unwrap(), (vec![], None));
    }

    #[test]
    fn new_refuses_what_a_rule_can_not_hold() {
        let refused = |afi, components: &[Component], expected: &str| {
            let e = FlowSpec::new(afi, components).unwrap_err().0;
            assert!(e.contains(expected), "{components:?}: {e}");
        };
        refused(AFI_IPV4, &[], "at least one component");
        refused(AFI_IPV4, &[Component::Port(vec![])], "at least one value");
        refused(
            AFI_IPV4,
            &[Component::Port(vec![eq(1)]), Component::Port(vec![eq(2)])],
            "port is given twice",
        );
        refused(AFI_IPV4, &[Component::FlowLabel(vec![eq(1)])], "IPv6 only");
        refused(
            AFI_IPV4,
            &[Component::Source(v6("2001:db8::/32", 0))],
            "is IPv6",
        );
        refused(AFI_IPV6, &[Component::Source(v4("10.0.0.0/8"))], "is IPv4");
        refused(
            AFI_IPV6,
            &[Component::Source(v6("::1:0/112", 112))],
            "offset must be below",
        );
        refused(
            AFI_IPV6,
            &[Component::Source(v6("::/0", 1))],
            "offset must be below",
        );
        refused(
            AFI_IPV6,
            &[Component::Source(v6("2001:db8::1/128", 64))],
            "bits set before offset 64",
        );
        refused(AFI_IPV4, &[Component::Dscp(vec![eq(64)])], "at most 63");
        refused(
            AFI_IPV4,
            &[Component::Protocol(vec![eq(256)])],
            "at most 255",
        );
        refused(
            AFI_IPV4,
            &[Component::Port(vec![eq(65536)])],
            "at most 65535",
        );
        refused(
            AFI_IPV4,
            &[Component::IcmpType(vec![eq(256)])],
            "at most 255",
        );
        refused(
            AFI_IPV4,
            &[Component::PacketLength(vec![eq(70000)])],
            "at most 65535",
        );
        refused(
            AFI_IPV6,
            &[Component::FlowLabel(vec![eq(1 << 20)])],
            "at most 1048575",
        );
        refused(
            AFI_IPV4,
            &[Component::TcpFlags(vec![bits(false, false, false, 0x1000)])],
            "at most 4095",
        );
        refused(
            AFI_IPV4,
            &[Component::Fragment(vec![bits(false, false, false, 0x10)])],
            "fragment bits",
        );
        refused(
            AFI_IPV6,
            &[Component::Fragment(vec![bits(false, false, false, 0x01)])],
            "does not exist in IPv6",
        );
        refused(3, &[Component::Port(vec![eq(1)])], "AFI");
    }

    #[test]
    fn display_in_exabgp_words() {
        let show =
            |afi, components: &[Component]| FlowSpec::new(afi, components).unwrap().to_string();
        assert_eq!(
            show(
                AFI_IPV4,
                &[
                    Component::Destination(v4("10.0.0.0/24")),
                    Component::Source(v4("192.0.2.0/24")),
                    Component::Protocol(vec![eq(6)]),
                    Component::DestinationPort(vec![eq(80)]),
                    Component::TcpFlags(vec![
                        bits(false, false, false, 0x02),
                        bits(true, true, false, 0x10),
                    ]),
                ]
            ),
            "destination 10.0.0.0/24 source 192.0.2.0/24 protocol =tcp destination-port =80 \
             tcp-flags [ syn&!ack ]"
        );
        assert_eq!(
            show(
                AFI_IPV4,
                &[
                    Component::Port(vec![
                        op(false, false, true, true, 137),
                        op(true, true, false, true, 139),
                        eq(8080),
                    ]),
                    Component::IcmpType(vec![eq(8)]),
                    Component::IcmpCode(vec![op(false, true, true, false, 3)]),
                    Component::PacketLength(vec![op(false, true, true, true, 0)]),
                    Component::Dscp(vec![op(false, false, false, false, 0)]),
                    Component::Fragment(vec![
                        bits(false, true, false, 0x06),
                        bits(false, false, true, 0x09),
                    ]),
                ]
            ),
            "port [ >=137&<=139 =8080 ] icmp-type =echo-request icmp-code !=3 \
             packet-length true dscp false fragment [ not-a-fragment =dont-fragment+last-fragment ]"
        );
        assert_eq!(
            show(
                AFI_IPV6,
                &[
                    Component::Source(v6("::1234:5678:9a00:0/104", 64)),
                    Component::Protocol(vec![eq(58)]),
                    Component::IcmpType(vec![eq(128)]),
                    Component::FlowLabel(vec![op(false, true, false, false, 2000)]),
                ]
            ),
            "source ::1234:5678:9a00:0/104/64 next-header =ipv6-icmp icmp-type =echo-request \
             flow-label <2000"
        );
        // nothing else says IPv6
        assert_eq!(
            show(AFI_IPV6, &[Component::DestinationPort(vec![eq(80)])]),
            "family ipv6 destination-port =80"
        );
        // unnamed values and bits
        assert_eq!(
            show(
                AFI_IPV4,
                &[
                    Component::Protocol(vec![op(false, true, true, true, 200)]),
                    Component::TcpFlags(vec![
                        bits(false, false, true, 0x212),
                        bits(false, true, false, 0)
                    ]),
                ]
            ),
            "protocol true200 tcp-flags [ =syn+ack+0x200 !0 ]"
        );
    }

    #[test]
    fn traffic_actions_both_ways() {
        let cases: &[(TrafficAction, [u8; 8], &str)] = &[
            (
                TrafficAction::RateBytes {
                    asn: 0,
                    rate: 9600.0,
                },
                [0x80, 0x06, 0, 0, 0x46, 0x16, 0, 0],
                "rate-limit 9600",
            ),
            (
                TrafficAction::RateBytes {
                    asn: 65001,
                    rate: 0.0,
                },
                [0x80, 0x06, 0xfd, 0xe9, 0, 0, 0, 0],
                "discard",
            ),
            (
                TrafficAction::RatePackets {
                    asn: 0,
                    rate: 100.0,
                },
                [0x80, 0x0c, 0, 0, 0x42, 0xc8, 0, 0],
                "rate-limit-packets 100",
            ),
            (
                TrafficAction::Action {
                    sample: true,
                    terminal: false,
                },
                [0x80, 0x07, 0, 0, 0, 0, 0, 0x02],
                "action sample",
            ),
            (
                TrafficAction::Action {
                    sample: false,
                    terminal: true,
                },
                [0x80, 0x07, 0, 0, 0, 0, 0, 0x01],
                "action terminal",
            ),
            (
                TrafficAction::Action {
                    sample: true,
                    terminal: true,
                },
                [0x80, 0x07, 0, 0, 0, 0, 0, 0x03],
                "action sample-terminal",
            ),
            (
                TrafficAction::RedirectAs2 {
                    asn: 65001,
                    value: 999,
                },
                [0x80, 0x08, 0xfd, 0xe9, 0, 0, 0x03, 0xe7],
                "redirect 65001:999",
            ),
            (
                TrafficAction::RedirectIpv4 {
                    address: Ipv4Addr::new(192, 0, 2, 1),
                    value: 7,
                },
                [0x81, 0x08, 192, 0, 2, 1, 0, 7],
                "redirect 192.0.2.1:7",
            ),
            (
                TrafficAction::RedirectAs4 {
                    asn: 4_200_000_000,
                    value: 7,
                },
                [0x82, 0x08, 0xfa, 0x56, 0xea, 0x00, 0, 7],
                "redirect 4200000000:7",
            ),
            (
                TrafficAction::RedirectAs4 { asn: 100, value: 7 },
                [0x82, 0x08, 0, 0, 0, 100, 0, 7],
                "redirect 100L:7",
            ),
            (
                TrafficAction::Mark { dscp: 10 },
                [0x80, 0x09, 0, 0, 0, 0, 0, 10],
                "mark 10",
            ),
            (
                TrafficAction::RedirectToNextHop { copy: false },
                [0x08, 0x00, 0, 0, 0, 0, 0, 0],
                "redirect-to-nexthop",
            ),
            (
                TrafficAction::RedirectToNextHop { copy: true },
                [0x08, 0x00, 0, 0, 0, 0, 0, 1],
                "redirect-to-nexthop copy",
            ),
        ];
        for (action, octets, text) in cases {
            assert_eq!(action.to_community(), ExtendedCommunity(*octets), "{text}");
            assert_eq!(
                TrafficAction::from_community(&ExtendedCommunity(*octets)),
                Some(*action),
                "{text}"
            );
            assert_eq!(action.to_string(), *text);
        }
    }

    #[test]
    fn traffic_actions_read_as_the_rfc_says() {
        let read = |octets| TrafficAction::from_community(&ExtendedCommunity(octets));
        // negative rates are 0 (RFC 8955 §7.1, §7.2)
        assert_eq!(
            read([0x80, 0x0c, 0, 1, 0xc2, 0xc8, 0, 0]),
            Some(TrafficAction::RatePackets { asn: 1, rate: 0.0 })
        );
        // reserved bits ignored (§7.3, §7.5)
        assert_eq!(
            read([0x80, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]),
            Some(TrafficAction::Action {
                sample: true,
                terminal: false
            })
        );
        assert_eq!(
            read([0x80, 0x09, 0xff, 0, 0, 0, 0, 0xc5]),
            Some(TrafficAction::Mark { dscp: 5 })
        );
        // not actions
        assert_eq!(read([0x00, 0x02, 0, 1, 0, 0, 0, 1]), None);
        assert_eq!(read([0x80, 0x0a, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(read([0x08, 0x01, 0, 0, 0, 0, 0, 0]), None);
    }

    /// Strategies for random valid rules, shared with the text tests.
    pub(crate) mod strategies {
        use super::*;

        fn value(max: u64) -> BoxedStrategy<u64> {
            prop_oneof![0..=max.min(0xff), 0..=max].boxed()
        }

        fn numeric(max: u64) -> BoxedStrategy<Vec<NumericOp>> {
            prop::collection::vec(
                (any::<[bool; 4]>(), value(max)).prop_map(|([and, lt, gt, eq], value)| NumericOp {
                    and,
                    lt,
                    gt,
                    eq,
                    value,
                }),
                1..4,
            )
            .prop_map(first_or)
            .boxed()
        }

        fn bitmask(max: u64, mask: u64) -> BoxedStrategy<Vec<BitmaskOp>> {
            prop::collection::vec(
                (any::<[bool; 3]>(), value(max)).prop_map(move |([and, not, matches], value)| {
                    BitmaskOp {
                        and,
                        not,
                        matches,
                        value: value & mask,
                    }
                }),
                1..4,
            )
            .prop_map(|mut ops| {
                if let Some(first) = ops.first_mut() {
                    first.and = false;
                }
                ops
            })
            .boxed()
        }

        /// The first operator of a list is never AND-ed.
        fn first_or(mut ops: Vec<NumericOp>) -> Vec<NumericOp> {
            if let Some(first) = ops.first_mut() {
                first.and = false;
            }
            ops
        }

        fn prefix(afi: u16) -> BoxedStrategy<FlowPrefix> {
            if afi == AFI_IPV6 {
                (any::<u128>(), 0..=128u8, any::<u8>())
                    .prop_map(|(bits, len, offset)| {
                        let offset = if len == 0 { 0 } else { offset % len };
                        let prefix = Ipv6Prefix::new(Ipv6Addr::from(bits & bits_from(offset)), len)
                            .unwrap_or_else(|| unreachable!("length up to 128"));
                        FlowPrefix::V6 { prefix, offset }
                    })
                    .boxed()
            } else {
                (any::<u32>(), 0..=32u8)
                    .prop_map(|(bits, len)| {
                        FlowPrefix::V4(
                            Ipv4Prefix::new(Ipv4Addr::from(bits), len)
                                .unwrap_or_else(|| unreachable!("length up to 32")),
                        )
                    })
                    .boxed()
            }
        }

        /// A random valid rule: its AFI and its components, sorted by type.
        pub(crate) fn rule() -> impl Strategy<Value = (u16, Vec<Component>)> {
            prop_oneof![Just(AFI_IPV4), Just(AFI_IPV6)]
                .prop_flat_map(|afi| (Just(afi), components(afi)))
        }

        fn components(afi: u16) -> impl Strategy<Value = Vec<Component>> {
            use prop::option::of;
            let fragment = value_rule(component_type::FRAGMENT, afi).max;
            let flow_label = if afi == AFI_IPV6 {
                of(numeric(0xfffff).prop_map(Component::FlowLabel)).boxed()
            } else {
                Just(None).boxed()
            };
            (
                (
                    of(prefix(afi).prop_map(Component::Destination)),
                    of(prefix(afi).prop_map(Component::Source)),
                    of(numeric(0xff).prop_map(Component::Protocol)),
                    of(numeric(0xffff).prop_map(Component::Port)),
                    of(numeric(0xffff).prop_map(Component::DestinationPort)),
                    of(numeric(0xffff).prop_map(Component::SourcePort)),
                    of(numeric(0xff).prop_map(Component::IcmpType)),
                ),
                (
                    of(numeric(0xff).prop_map(Component::IcmpCode)),
                    of(bitmask(0xfff, 0xfff).prop_map(Component::TcpFlags)),
                    of(numeric(0xffff).prop_map(Component::PacketLength)),
                    of(numeric(0x3f).prop_map(Component::Dscp)),
                    of(bitmask(fragment, fragment).prop_map(Component::Fragment)),
                    flow_label,
                ),
            )
                .prop_map(|((a, b, c, d, e, f, g), (h, i, j, k, l, m))| {
                    [a, b, c, d, e, f, g, h, i, j, k, l, m]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                })
                .prop_filter("a rule has a component", |c| !c.is_empty())
        }
    }

    /// Exercises everything a decoded rule offers; none of it may panic.
    fn use_rule(rule: &FlowSpec) {
        let components = rule.components();
        assert!(!components.is_empty());
        let _ = rule.to_string();
        let _ = format!("{rule:?}");
        let mut out = Vec::new();
        rule.encode(&mut out);
        assert_eq!(out.len(), rule.encoded_len());
        assert_eq!(FlowSpec::decode(rule.afi(), &out).unwrap().0, *rule);
        let _ = FlowSpec::new(rule.afi(), &components);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(afi in 0..4u16, bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((rule, read)) = FlowSpec::decode(afi, &bytes) {
                prop_assert!(read <= bytes.len());
                use_rule(&rule);
            }
            if let Ok((rules, _)) = FlowSpec::decode_all(afi, &bytes) {
                rules.iter().for_each(use_rule);
            }
        }

        #[test]
        fn damaged_rules_never_panic(
            (afi, components) in strategies::rule(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut buf = Vec::new();
            FlowSpec::new(afi, &components).unwrap().encode(&mut buf);
            let i = at.index(buf.len());
            buf[i] = byte;
            for bytes in [&buf[..], &buf[..cut.index(buf.len())]] {
                if let Ok((rule, _)) = FlowSpec::decode(afi, bytes) {
                    use_rule(&rule);
                }
                let _ = FlowSpec::decode_all(afi, bytes);
            }
        }

        #[test]
        fn new_encode_decode_round_trip((afi, components) in strategies::rule()) {
            let rule = FlowSpec::new(afi, &components).unwrap();
            prop_assert_eq!(rule.afi(), afi);
            prop_assert_eq!(rule.components(), components);
            let mut buf = Vec::new();
            rule.encode(&mut buf);
            buf.extend_from_slice(&[3, 3, 0x81, 6]);
            let (decoded, read) = FlowSpec::decode(afi, &buf).unwrap();
            prop_assert_eq!(read, rule.encoded_len());
            prop_assert_eq!(&decoded, &rule);
            let (all, malformed) = FlowSpec::decode_all(afi, &buf).unwrap();
            prop_assert_eq!(all.len(), 2);
            prop_assert!(malformed.is_none());
            prop_assert_eq!(&all[0], &rule);
        }

        #[test]
        fn action_communities_round_trip(octets in any::<[u8; 8]>(), kind in 0..9usize) {
            const CODES: [[u8; 2]; 9] = [
                [0x80, 0x06], [0x80, 0x0c], [0x80, 0x07], [0x80, 0x08], [0x81, 0x08],
                [0x82, 0x08], [0x80, 0x09], [0x08, 0x00], [0x00, 0x02],
            ];
            let mut octets = octets;
            octets[..2].copy_from_slice(&CODES[kind]);
            let community = ExtendedCommunity(octets);
            if let Some(action) = TrafficAction::from_community(&community) {
                let again = action.to_community();
                prop_assert_eq!(TrafficAction::from_community(&again).map(|a| a.to_community()), Some(again));
                let _ = action.to_string();
            }
            let text = community.to_string();
            prop_assert_eq!(crate::words::parse_extended_community(&text), Ok(community), "{}", text);
        }
    }
}
