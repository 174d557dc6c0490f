//! Path attributes (RFC 4271 §5, 1997, 4360, 6793, 8092) with RFC 7606 error handling.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::notification::{code, update_sub};
use super::update::{MpReach, MpUnreach};
use super::{Context, DecodeError, Reader};

/// Attribute flag bits.
pub mod flag {
    /// Optional.
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial.
    pub const PARTIAL: u8 = 0x20;
    /// Extended Length.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA).
pub mod attr_code {
    /// ORIGIN.
    pub const ORIGIN: u8 = 1;
    /// AS_PATH.
    pub const AS_PATH: u8 = 2;
    /// NEXT_HOP.
    pub const NEXT_HOP: u8 = 3;
    /// MULTI_EXIT_DISC.
    pub const MED: u8 = 4;
    /// LOCAL_PREF.
    pub const LOCAL_PREF: u8 = 5;
    /// ATOMIC_AGGREGATE.
    pub const ATOMIC_AGGREGATE: u8 = 6;
    /// AGGREGATOR.
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES.
    pub const COMMUNITIES: u8 = 8;
    /// MP_REACH_NLRI.
    pub const MP_REACH: u8 = 14;
    /// MP_UNREACH_NLRI.
    pub const MP_UNREACH: u8 = 15;
    /// EXTENDED_COMMUNITIES.
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    /// AS4_PATH.
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR.
    pub const AS4_AGGREGATOR: u8 = 18;
    /// LARGE_COMMUNITY.
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// ORIGIN values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Origin {
    /// Learned from an interior protocol.
    #[default]
    Igp,
    /// Learned from EGP.
    Egp,
    /// Learned some other way.
    Incomplete,
}

impl Origin {
    /// The ExaBGP word for the origin.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Igp => "igp",
            Origin::Egp => "egp",
            Origin::Incomplete => "incomplete",
        }
    }
}

/// AS_PATH segment types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentKind {
    /// AS_SET (1).
    Set,
    /// AS_SEQUENCE (2).
    Sequence,
    /// AS_CONFED_SEQUENCE (3).
    ConfedSequence,
    /// AS_CONFED_SET (4).
    ConfedSet,
}

impl SegmentKind {
    fn code(self) -> u8 {
        match self {
            SegmentKind::Set => 1,
            SegmentKind::Sequence => 2,
            SegmentKind::ConfedSequence => 3,
            SegmentKind::ConfedSet => 4,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            _ => return None,
        })
    }
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsSegment {
    /// Segment type.
    pub kind: SegmentKind,
    /// The ASNs, as 4-octet numbers.
    pub asns: Vec<u32>,
}

/// An AS_PATH, always held with 4-octet ASNs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct AsPath {
    /// The segments in wire order.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (empty if `asns` is).
    pub fn from_sequence(asns: Vec<u32>) -> Self {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns,
            }],
        }
    }

    /// Puts `asn` in front, as an eBGP speaker does on export (RFC 4271 §5.1.2).
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentKind::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![asn],
                },
            ),
        }
    }

    /// Every ASN in order, sets flattened.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    /// Path length for best-path purposes: a set counts one, confederation segments none.
    pub fn hop_count(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentKind::Sequence => s.asns.len(),
                SegmentKind::Set => 1,
                _ => 0,
            })
            .sum()
    }

    fn needs_four_octets(&self) -> bool {
        self.asns().any(|a| a > u16::MAX as u32)
    }

    fn encode(&self, four_octet: bool, out: &mut Vec<u8>) {
        for s in &self.segments {
            for chunk in s.asns.chunks(255) {
                out.push(s.kind.code());
                out.push(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let two = u16::try_from(asn).unwrap_or(super::open::AS_TRANS);
                        out.extend_from_slice(&two.to_be_bytes());
                    }
                }
            }
        }
    }

    fn decode(buf: &[u8], four_octet: bool) -> Result<Self, String> {
        let width = if four_octet { 4 } else { 2 };
        let mut r = Reader::new(buf);
        let mut segments = Vec::new();
        while !r.is_empty() {
            let (Some(kind), Some(count)) = (r.u8(), r.u8()) else {
                return Err("truncated AS_PATH segment header".into());
            };
            let kind = SegmentKind::from_code(kind)
                .ok_or_else(|| format!("unknown AS_PATH segment type {kind}"))?;
            if count == 0 {
                return Err("empty AS_PATH segment".into());
            }
            let raw = r
                .take(count as usize * width)
                .ok_or_else(|| "AS_PATH segment overruns the attribute".to_string())?;
            let asns = raw
                .chunks_exact(width)
                .map(|c| {
                    if four_octet {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]]) as u32
                    }
                })
                .collect();
            segments.push(AsSegment { kind, asns });
        }
        Ok(AsPath { segments })
    }

    /// Rebuilds the true path from a 2-octet AS_PATH and an AS4_PATH (RFC 6793 §4.2.3).
    fn merge_as4(self, as4: AsPath) -> AsPath {
        let (n, m) = (self.hop_count(), as4.hop_count());
        if n < m {
            return self;
        }
        let mut keep = n - m;
        let mut segments = Vec::new();
        for s in self.segments {
            if keep == 0 {
                break;
            }
            match s.kind {
                SegmentKind::Sequence if s.asns.len() > keep => {
                    segments.push(AsSegment {
                        kind: s.kind,
                        asns: s.asns[..keep].to_vec(),
                    });
                    keep = 0;
                }
                SegmentKind::Sequence => {
                    keep -= s.asns.len();
                    segments.push(s);
                }
                SegmentKind::Set => {
                    keep -= 1;
                    segments.push(s);
                }
                _ => segments.push(s),
            }
        }
        let mut as4 = as4.segments.into_iter();
        // The kept AS_PATH numbers and the AS4_PATH are one path: an AS_SEQUENCE on
        // both sides of the seam is one segment, as it was on the wire.
        if let Some(first) = as4.next() {
            match segments.last_mut() {
                Some(last)
                    if last.kind == SegmentKind::Sequence
                        && first.kind == SegmentKind::Sequence
                        && last.asns.len() + first.asns.len() <= 255 =>
                {
                    last.asns.extend(first.asns)
                }
                _ => segments.push(first),
            }
        }
        segments.extend(as4);
        AsPath { segments }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.segments {
            let (open, close) = match s.kind {
                SegmentKind::Sequence => ("", ""),
                SegmentKind::Set => ("{ ", " }"),
                SegmentKind::ConfedSequence => ("( ", " )"),
                SegmentKind::ConfedSet => ("[ ", " ]"),
            };
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(open)?;
            let asns: Vec<String> = s.asns.iter().map(u32::to_string).collect();
            f.write_str(&asns.join(" "))?;
            f.write_str(close)?;
        }
        Ok(())
    }
}

/// Where a route's traffic should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    /// `next-hop self`: the local address of each session, filled in on export.
    Local,
    /// A fixed address.
    Addr(IpAddr),
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::Local => f.write_str("self"),
            NextHop::Addr(a) => a.fmt(f),
        }
    }
}

/// AGGREGATOR (held with a 4-octet ASN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregator {
    /// The aggregating AS.
    pub asn: u32,
    /// The aggregating speaker's BGP identifier.
    pub address: Ipv4Addr,
}

/// A large community (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity(pub [u32; 3]);

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.0[0], self.0[1], self.0[2])
    }
}

/// An extended community (RFC 4360), kept as its 8 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

/// `target:ASN:N` and `origin:ASN:N` forms, FlowSpec traffic actions as
/// [`TrafficAction::community_text`](super::flowspec::TrafficAction::community_text)
/// writes them (`rate-limit:9600`, `redirect:65001:999`, `mark:10`...), else 16 hex
/// digits: always text that `words::parse_extended_community` reads back.
impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(action) = super::flowspec::TrafficAction::community_text(self) {
            return f.write_str(&action);
        }
        let b = &self.0;
        let as2 = u16::from_be_bytes([b[2], b[3]]);
        let v4 = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let as4 = u32::from_be_bytes([b[2], b[3], b[4], b[5]]);
        let v2 = u16::from_be_bytes([b[6], b[7]]);
        let ip = Ipv4Addr::new(b[2], b[3], b[4], b[5]);
        match (b[0], b[1]) {
            (0x00, 0x02) => write!(f, "target:{as2}:{v4}"),
            (0x00, 0x03) => write!(f, "origin:{as2}:{v4}"),
            (0x02, 0x02) => write!(f, "target:{as4}L:{v2}"),
            (0x02, 0x03) => write!(f, "origin:{as4}L:{v2}"),
            (0x01, 0x02) => write!(f, "target:{ip}:{v2}"),
            (0x01, 0x03) => write!(f, "origin:{ip}:{v2}"),
            _ => write!(
                f,
                "0x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        }
    }
}

/// Formats a standard community as `ASN:VALUE` (or its well-known name).
pub fn community_to_string(c: u32) -> String {
    match c {
        0xFFFF_FF01 => "no-export".into(),
        0xFFFF_FF02 => "no-advertise".into(),
        0xFFFF_FF03 => "no-export-subconfed".into(),
        0xFFFF_0000 => "graceful-shutdown".into(),
        0xFFFF_029A => "blackhole".into(),
        _ => format!("{}:{}", c >> 16, c & 0xffff),
    }
}

/// An attribute this speaker does not interpret, kept to pass on (optional transitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawAttribute {
    /// Flags as received (the partial bit is set when passed on).
    pub flags: u8,
    /// Type code.
    pub code: u8,
    /// Value octets.
    pub value: Vec<u8>,
}

/// The path attributes of a route, other than the MP_(UN)REACH carriers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct PathAttributes {
    /// ORIGIN.
    pub origin: Origin,
    /// AS_PATH (AS4_PATH already merged in).
    pub as_path: AsPath,
    /// NEXT_HOP, or the MP_REACH next hop for other families.
    pub next_hop: Option<NextHop>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE.
    pub atomic_aggregate: bool,
    /// AGGREGATOR.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITY.
    pub large_communities: Vec<LargeCommunity>,
    /// EXTENDED_COMMUNITIES.
    pub extended_communities: Vec<ExtendedCommunity>,
    /// Optional transitive attributes passed on untouched.
    pub unknown: Vec<RawAttribute>,
}

fn put_attr(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.push(flags | flag::EXTENDED_LENGTH);
        out.push(code);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.push(flags & !flag::EXTENDED_LENGTH);
        out.push(code);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
}

/// Writes an attribute header for a value of `len` octets to be appended by the caller.
pub(crate) fn put_attr_header(out: &mut Vec<u8>, flags: u8, code: u8, len: usize) {
    out.push(flags | flag::EXTENDED_LENGTH);
    out.push(code);
    out.extend_from_slice(&(len as u16).to_be_bytes());
}

impl PathAttributes {
    /// Appends the encoded attributes. The NEXT_HOP attribute is written only when
    /// `ipv4_next_hop` is set (IPv4 unicast NLRI); other families carry it in MP_REACH.
    pub fn encode(&self, ctx: &Context, ipv4_next_hop: Option<Ipv4Addr>, out: &mut Vec<u8>) {
        use attr_code::*;
        use flag::*;
        put_attr(out, TRANSITIVE, ORIGIN, &[self.origin as u8]);
        let mut path = Vec::with_capacity(2 + 4 * self.as_path.hop_count());
        self.as_path.encode(ctx.four_octet_as, &mut path);
        put_attr(out, TRANSITIVE, AS_PATH, &path);
        if let Some(nh) = ipv4_next_hop {
            put_attr(out, TRANSITIVE, NEXT_HOP, &nh.octets());
        }
        if let Some(med) = self.med {
            put_attr(out, OPTIONAL, MED, &med.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            put_attr(out, TRANSITIVE, LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            put_attr(out, TRANSITIVE, ATOMIC_AGGREGATE, &[]);
        }
        if let Some(agg) = self.aggregator {
            let mut v = Vec::with_capacity(8);
            if ctx.four_octet_as {
                v.extend_from_slice(&agg.asn.to_be_bytes());
            } else {
                v.extend_from_slice(
                    &u16::try_from(agg.asn)
                        .unwrap_or(super::open::AS_TRANS)
                        .to_be_bytes(),
                );
            }
            v.extend_from_slice(&agg.address.octets());
            put_attr(out, OPTIONAL | TRANSITIVE, AGGREGATOR, &v);
            if !ctx.four_octet_as && agg.asn > u16::MAX as u32 {
                let mut v = agg.asn.to_be_bytes().to_vec();
                v.extend_from_slice(&agg.address.octets());
                put_attr(out, OPTIONAL | TRANSITIVE, AS4_AGGREGATOR, &v);
            }
        }
        if !self.communities.is_empty() {
            let v: Vec<u8> = self
                .communities
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect();
            put_attr(out, OPTIONAL | TRANSITIVE, COMMUNITIES, &v);
        }
        if !self.extended_communities.is_empty() {
            let v: Vec<u8> = self.extended_communities.iter().flat_map(|c| c.0).collect();
            put_attr(out, OPTIONAL | TRANSITIVE, EXTENDED_COMMUNITIES, &v);
        }
        if !ctx.four_octet_as && self.as_path.needs_four_octets() {
            let mut v = Vec::new();
            self.as_path.encode(true, &mut v);
            put_attr(out, OPTIONAL | TRANSITIVE, AS4_PATH, &v);
        }
        if !self.large_communities.is_empty() {
            let v: Vec<u8> = self
                .large_communities
                .iter()
                .flat_map(|c| c.0.iter().flat_map(|x| x.to_be_bytes()))
                .collect();
            put_attr(out, OPTIONAL | TRANSITIVE, LARGE_COMMUNITIES, &v);
        }
        for raw in &self.unknown {
            put_attr(out, raw.flags | PARTIAL, raw.code, &raw.value);
        }
    }
}

/// The outcome of decoding an UPDATE's path attribute field.
#[derive(Debug, Default)]
pub(crate) struct DecodedAttributes {
    pub attrs: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// Set when RFC 7606 says the UPDATE's NLRI must be treated as withdrawn.
    pub treat_as_withdraw: Option<String>,
    /// Attributes discarded under RFC 7606, for logs.
    pub discarded: Vec<String>,
    pub has_origin: bool,
    pub has_as_path: bool,
    pub has_next_hop: bool,
}

/// Expected (optional, transitive) bits of the attributes this speaker knows.
fn expected_flags(code: u8) -> Option<u8> {
    use attr_code::*;
    use flag::*;
    Some(match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => TRANSITIVE,
        MED | MP_REACH | MP_UNREACH => OPTIONAL,
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITIES => OPTIONAL | TRANSITIVE,
        _ => return None,
    })
}

/// Decodes the path attribute field of an UPDATE.
pub(crate) fn decode_attributes(
    buf: &[u8],
    ctx: &Context,
) -> Result<DecodedAttributes, DecodeError> {
    use attr_code::*;
    let mut d = DecodedAttributes::default();
    let mut seen = [false; 256];
    let mut as4_path: Option<AsPath> = None;
    let mut as4_aggregator: Option<Aggregator> = None;
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let header_start = r.rest();
        let (Some(flags), Some(code)) = (r.u8(), r.u8()) else {
            d.treat_as_withdraw = Some("truncated attribute header".into());
            break;
        };
        let len = if flags & flag::EXTENDED_LENGTH != 0 {
            r.u16().map(usize::from)
        } else {
            r.u8().map(usize::from)
        };
        let Some(value) = len.and_then(|len| r.take(len)) else {
            // RFC 7606 §4: an attribute overrunning the field.
            if seen[MP_REACH as usize] || code == MP_REACH || code == MP_UNREACH {
                return Err(DecodeError::new(
                    code::UPDATE_MESSAGE,
                    update_sub::MALFORMED_ATTRIBUTE_LIST,
                    [],
                    format!("attribute {code} overruns the attribute field"),
                ));
            }
            d.treat_as_withdraw = Some(format!("attribute {code} overruns the attribute field"));
            break;
        };
        let whole = &header_start[..header_start.len() - r.remaining()];
        if seen[code as usize] {
            if code == MP_REACH || code == MP_UNREACH {
                return Err(DecodeError::new(
                    code::UPDATE_MESSAGE,
                    update_sub::MALFORMED_ATTRIBUTE_LIST,
                    [],
                    format!("duplicate MP attribute {code}"),
                ));
            }
            d.discarded.push(format!("duplicate attribute {code}"));
            continue;
        }
        seen[code as usize] = true;
        let Some(expected) = expected_flags(code) else {
            if flags & flag::OPTIONAL == 0 {
                return Err(DecodeError::new(
                    code::UPDATE_MESSAGE,
                    update_sub::UNRECOGNIZED_WELL_KNOWN,
                    whole.to_vec(),
                    format!("unrecognized well-known attribute {code}"),
                ));
            }
            if flags & flag::TRANSITIVE != 0 {
                d.attrs.unknown.push(RawAttribute {
                    flags: flags & !flag::EXTENDED_LENGTH,
                    code,
                    value: value.to_vec(),
                });
            }
            continue;
        };
        if flags & (flag::OPTIONAL | flag::TRANSITIVE) != expected {
            if code == MP_REACH || code == MP_UNREACH {
                return Err(DecodeError::new(
                    code::UPDATE_MESSAGE,
                    update_sub::ATTRIBUTE_FLAGS,
                    whole.to_vec(),
                    format!("bad flags {flags:#04x} on MP attribute {code}"),
                ));
            }
            d.treat_as_withdraw = Some(format!("bad flags {flags:#04x} on attribute {code}"));
            continue;
        }
        let mut withdraw = |why: String| {
            if d.treat_as_withdraw.is_none() {
                d.treat_as_withdraw = Some(why);
            }
        };
        match code {
            ORIGIN => match value {
                [0] => d.attrs.origin = Origin::Igp,
                [1] => d.attrs.origin = Origin::Egp,
                [2] => d.attrs.origin = Origin::Incomplete,
                _ => withdraw(format!("invalid ORIGIN {value:?}")),
            },
            AS_PATH => match AsPath::decode(value, ctx.four_octet_as) {
                Ok(p) => d.attrs.as_path = p,
                Err(e) => withdraw(format!("malformed AS_PATH: {e}")),
            },
            NEXT_HOP => match value {
                [a, b, c, e] => {
                    let nh = Ipv4Addr::new(*a, *b, *c, *e);
                    if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() {
                        withdraw(format!("invalid NEXT_HOP {nh}"));
                    } else {
                        d.attrs.next_hop = Some(NextHop::Addr(nh.into()));
                    }
                }
                _ => withdraw(format!("NEXT_HOP of {} octets", value.len())),
            },
            MED | LOCAL_PREF => match <[u8; 4]>::try_from(value) {
                Ok(v) if code == MED => d.attrs.med = Some(u32::from_be_bytes(v)),
                Ok(v) => d.attrs.local_pref = Some(u32::from_be_bytes(v)),
                Err(_) => withdraw(format!("attribute {code} of {} octets", value.len())),
            },
            ATOMIC_AGGREGATE => {
                if value.is_empty() {
                    d.attrs.atomic_aggregate = true;
                } else {
                    d.discarded.push("ATOMIC_AGGREGATE with a value".into());
                }
            }
            AGGREGATOR => {
                let want = if ctx.four_octet_as { 8 } else { 6 };
                if value.len() == want {
                    let (asn, ip) = if ctx.four_octet_as {
                        (
                            u32::from_be_bytes([value[0], value[1], value[2], value[3]]),
                            &value[4..8],
                        )
                    } else {
                        (
                            u16::from_be_bytes([value[0], value[1]]) as u32,
                            &value[2..6],
                        )
                    };
                    d.attrs.aggregator = Some(Aggregator {
                        asn,
                        address: Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
                    });
                } else {
                    d.discarded
                        .push(format!("AGGREGATOR of {} octets", value.len()));
                }
            }
            AS4_AGGREGATOR => {
                if let (false, [a, b, c, e, w, x, y, z]) = (ctx.four_octet_as, value) {
                    as4_aggregator = Some(Aggregator {
                        asn: u32::from_be_bytes([*a, *b, *c, *e]),
                        address: Ipv4Addr::new(*w, *x, *y, *z),
                    });
                }
            }
            COMMUNITIES => {
                if value.len() % 4 == 0 {
                    d.attrs.communities = value
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                } else {
                    withdraw(format!("COMMUNITIES of {} octets", value.len()));
                }
            }
            EXTENDED_COMMUNITIES => {
                if value.len() % 8 == 0 {
                    d.attrs.extended_communities = value
                        .chunks_exact(8)
                        .map(|c| ExtendedCommunity(c.try_into().unwrap_or_default()))
                        .collect();
                } else {
                    withdraw(format!("EXTENDED_COMMUNITIES of {} octets", value.len()));
                }
            }
            LARGE_COMMUNITIES => {
                if value.len() % 12 == 0 && !value.is_empty() {
                    d.attrs.large_communities = value
                        .chunks_exact(12)
                        .map(|c| {
                            let w =
                                |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                            LargeCommunity([w(0), w(4), w(8)])
                        })
                        .collect();
                } else {
                    withdraw(format!("LARGE_COMMUNITY of {} octets", value.len()));
                }
            }
            AS4_PATH => {
                // Only meaningful from a 2-octet speaker; malformed ones are discarded.
                if !ctx.four_octet_as {
                    match AsPath::decode(value, true) {
                        Ok(p) => as4_path = Some(p),
                        Err(e) => d.discarded.push(format!("malformed AS4_PATH: {e}")),
                    }
                }
            }
            MP_REACH => {
                let (reach, malformed) = MpReach::decode(value)?;
                if let Some(why) = malformed {
                    withdraw(why);
                }
                d.mp_reach = Some(reach);
            }
            MP_UNREACH => d.mp_unreach = Some(MpUnreach::decode(value)?),
            _ => {}
        }
    }
    if let Some(as4) = as4_path {
        d.attrs.as_path = std::mem::take(&mut d.attrs.as_path).merge_as4(as4);
    }
    if let (Some(agg4), Some(agg)) = (as4_aggregator, d.attrs.aggregator)
        && agg.asn == super::open::AS_TRANS as u32
    {
        d.attrs.aggregator = Some(agg4);
    }
    d.has_origin = seen[ORIGIN as usize];
    d.has_as_path = seen[AS_PATH as usize];
    d.has_next_hop = seen[NEXT_HOP as usize];
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_path_prepend_and_display() {
        let mut p = AsPath::from_sequence(vec![65010, 65020]);
        p.prepend(65001);
        assert_eq!(p.to_string(), "65001 65010 65020");
        assert_eq!(p.hop_count(), 3);
        let mut empty = AsPath::default();
        empty.prepend(65001);
        assert_eq!(empty.asns().collect::<Vec<_>>(), vec![65001]);
    }

    #[test]
    fn as4_path_merge() {
        let two = AsPath::from_sequence(vec![65001, 23456, 23456]);
        let four = AsPath::from_sequence(vec![4_200_000_001, 4_200_000_002]);
        assert_eq!(
            two.merge_as4(four).asns().collect::<Vec<_>>(),
            vec![65001, 4_200_000_001, 4_200_000_002]
        );
        // A shorter AS4_PATH: the leading 2-octet numbers join it in one sequence.
        let two = AsPath::from_sequence(vec![65010, 65001, 23456]);
        let four = AsPath::from_sequence(vec![65001, 4_200_000_001]);
        assert_eq!(
            two.merge_as4(four),
            AsPath::from_sequence(vec![65010, 65001, 4_200_000_001])
        );
    }

    #[test]
    fn extended_community_display() {
        assert_eq!(
            ExtendedCommunity([0, 2, 0xfd, 0xe8, 0, 0, 0, 1]).to_string(),
            "target:65000:1"
        );
        // FlowSpec traffic-rate 0 (RFC 8955 §7.1); unknown types show as hex.
        assert_eq!(
            ExtendedCommunity([0x80, 6, 0, 0, 0, 0, 0, 0]).to_string(),
            "discard"
        );
        assert_eq!(
            ExtendedCommunity([0x43, 0x01, 0, 0, 0, 0, 0, 1]).to_string(),
            "0x4301000000000001"
        );
        assert_eq!(community_to_string(0xFFFF_FF01), "no-export");
        assert_eq!(community_to_string((65000 << 16) | 7), "65000:7");
    }
}
