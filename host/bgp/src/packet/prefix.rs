//! Prefixes and address families, and their NLRI encoding (RFC 4271 §4.3, RFC 4760 §5).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::flowspec::FlowSpec;
use crate::text::quote;

/// Address Family Identifier (IANA).
pub const AFI_IPV4: u16 = 1;
/// Address Family Identifier (IANA).
pub const AFI_IPV6: u16 = 2;
/// Subsequent AFI: unicast.
pub const SAFI_UNICAST: u8 = 1;
/// Subsequent AFI: flow specification (RFC 8955).
pub const SAFI_FLOWSPEC: u8 = 133;

/// An AFI/SAFI pair, as carried in the multiprotocol capability and MP_(UN)REACH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    /// Address family identifier.
    pub afi: u16,
    /// Subsequent address family identifier.
    pub safi: u8,
}

impl Family {
    /// IPv4 unicast.
    pub const IPV4_UNICAST: Family = Family {
        afi: AFI_IPV4,
        safi: SAFI_UNICAST,
    };
    /// IPv6 unicast.
    pub const IPV6_UNICAST: Family = Family {
        afi: AFI_IPV6,
        safi: SAFI_UNICAST,
    };
    /// IPv4 FlowSpec.
    pub const IPV4_FLOWSPEC: Family = Family {
        afi: AFI_IPV4,
        safi: SAFI_FLOWSPEC,
    };
    /// IPv6 FlowSpec.
    pub const IPV6_FLOWSPEC: Family = Family {
        afi: AFI_IPV6,
        safi: SAFI_FLOWSPEC,
    };

    /// The families wasmbgp carries, in the order per-family counters keep them.
    pub const CARRIED: [Family; 4] = [
        Family::IPV4_UNICAST,
        Family::IPV6_UNICAST,
        Family::IPV4_FLOWSPEC,
        Family::IPV6_FLOWSPEC,
    ];

    /// Where the family is in [`CARRIED`](Self::CARRIED), if it is carried.
    pub fn carried_index(self) -> Option<usize> {
        Family::CARRIED.iter().position(|f| *f == self)
    }

    /// The operator's name of the family, as used in configs (`ipv4-unicast`).
    pub fn name(self) -> String {
        let afi = match self.afi {
            AFI_IPV4 => "ipv4".to_string(),
            AFI_IPV6 => "ipv6".to_string(),
            other => format!("afi{other}"),
        };
        let safi = match self.safi {
            SAFI_UNICAST => "unicast".to_string(),
            SAFI_FLOWSPEC => "flowspec".to_string(),
            other => format!("safi{other}"),
        };
        format!("{afi}-{safi}")
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ipv4-unicast" => Ok(Family::IPV4_UNICAST),
            "ipv6-unicast" => Ok(Family::IPV6_UNICAST),
            "ipv4-flowspec" => Ok(Family::IPV4_FLOWSPEC),
            "ipv6-flowspec" => Ok(Family::IPV6_FLOWSPEC),
            _ => Err(format!(
                "unknown family {} (expected ipv4-unicast, ipv6-unicast, ipv4-flowspec or ipv6-flowspec)",
                quote(s)
            )),
        }
    }
}

/// Why a prefix could not be parsed or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixError(pub String);

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrefixError {}

macro_rules! prefix_type {
    ($name:ident, $addr:ty, $bytes:expr, $max:expr, $doc:expr) => {
        #[doc = $doc]
        ///
        /// Host bits are always zero; the layout is packed (no padding) to keep RIBs small.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            addr: [u8; $bytes],
            len: u8,
        }

        impl $name {
            /// Longest prefix length of the family.
            pub const MAX_LEN: u8 = $max;

            /// Builds a prefix, clearing host bits; `None` if `len` is too long.
            pub fn new(addr: $addr, len: u8) -> Option<Self> {
                if len > $max {
                    return None;
                }
                let mut bytes = addr.octets();
                mask_host_bits(&mut bytes, len);
                Some(Self { addr: bytes, len })
            }

            /// Builds a prefix, refusing an address with host bits set.
            pub fn new_strict(addr: $addr, len: u8) -> Option<Self> {
                let p = Self::new(addr, len)?;
                (p.addr == addr.octets()).then_some(p)
            }

            /// The network address.
            pub fn addr(&self) -> $addr {
                <$addr>::from(self.addr)
            }

            /// The prefix length in bits.
            pub fn len(&self) -> u8 {
                self.len
            }

            /// True for the default route (length 0).
            pub fn is_empty(&self) -> bool {
                self.len == 0
            }

            /// Appends the NLRI encoding: length octet, then the significant octets.
            pub fn encode(&self, out: &mut Vec<u8>) {
                out.push(self.len);
                out.extend_from_slice(&self.addr[..nlri_octets(self.len)]);
            }

            /// Size of the NLRI encoding in octets.
            pub fn encoded_len(&self) -> usize {
                1 + nlri_octets(self.len)
            }

            /// Decodes one NLRI from the front of `buf`, returning it and the octets read.
            pub fn decode(buf: &[u8]) -> Result<(Self, usize), PrefixError> {
                let Some(&len) = buf.first() else {
                    return Err(PrefixError("empty NLRI".into()));
                };
                if len > $max {
                    return Err(PrefixError(format!("prefix length {len} exceeds {}", $max)));
                }
                let n = nlri_octets(len);
                let Some(octets) = buf.get(1..1 + n) else {
                    return Err(PrefixError(format!("NLRI of length {len} truncated")));
                };
                let mut addr = [0u8; $bytes];
                addr[..n].copy_from_slice(octets);
                // RFC 4271 does not forbid trailing bits; normalise rather than refuse.
                mask_host_bits(&mut addr, len);
                Ok((Self { addr, len }, 1 + n))
            }

            /// Decodes a whole NLRI field.
            pub fn decode_all(mut buf: &[u8]) -> Result<Vec<Self>, PrefixError> {
                let mut out = Vec::with_capacity(buf.len() / 4);
                while !buf.is_empty() {
                    let (p, n) = Self::decode(buf)?;
                    out.push(p);
                    buf = &buf[n..];
                }
                Ok(out)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}/{}", self.addr(), self.len)
            }
        }

        impl FromStr for $name {
            type Err = PrefixError;
            fn from_str(s: &str) -> Result<Self, PrefixError> {
                let (addr, len) = match s.split_once('/') {
                    Some((a, l)) => (a, Some(l)),
                    None => (s, None),
                };
                let addr: $addr = addr
                    .parse()
                    .map_err(|_| PrefixError(format!("invalid address in prefix {}", quote(s))))?;
                let len = match len {
                    Some(l) => l.parse::<u8>().map_err(|_| {
                        PrefixError(format!("invalid length in prefix {}", quote(s)))
                    })?,
                    None => $max,
                };
                if len > $max {
                    return Err(PrefixError(format!(
                        "prefix length {len} exceeds {} in {}",
                        $max,
                        quote(s)
                    )));
                }
                Self::new_strict(addr, len)
                    .ok_or_else(|| PrefixError(format!("prefix {} has host bits set", quote(s))))
            }
        }
    };
}

prefix_type!(Ipv4Prefix, Ipv4Addr, 4, 32, "An IPv4 prefix.");
prefix_type!(Ipv6Prefix, Ipv6Addr, 16, 128, "An IPv6 prefix.");

fn nlri_octets(len: u8) -> usize {
    (len as usize).div_ceil(8)
}

fn mask_host_bits(bytes: &mut [u8], len: u8) {
    let len = len as usize;
    for (i, b) in bytes.iter_mut().enumerate() {
        let keep = len.saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
}

/// What a route is for, the key of the RIBs: a unicast prefix of either family, or a
/// FlowSpec rule (RFC 8955/8956), which BGP carries the same way.
///
/// Not `Copy`: a rule shares its encoding, and cloning one is a reference count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// IPv4.
    V4(Ipv4Prefix),
    /// IPv6.
    V6(Ipv6Prefix),
    /// A FlowSpec rule of either family.
    Flow(FlowSpec),
}

impl Prefix {
    /// The family of the route.
    pub fn family(&self) -> Family {
        match self {
            Prefix::V4(_) => Family::IPV4_UNICAST,
            Prefix::V6(_) => Family::IPV6_UNICAST,
            Prefix::Flow(f) => f.family(),
        }
    }

    /// True for an IPv6 prefix or an IPv6 FlowSpec rule.
    pub fn is_ipv6(&self) -> bool {
        self.family().afi == AFI_IPV6
    }

    /// The unicast prefix, if it is one.
    pub fn unicast(&self) -> Option<(IpAddr, u8)> {
        match self {
            Prefix::V4(p) => Some((p.addr().into(), p.len())),
            Prefix::V6(p) => Some((p.addr().into(), p.len())),
            Prefix::Flow(_) => None,
        }
    }

    /// The network address (unspecified for a FlowSpec rule).
    pub fn addr(&self) -> IpAddr {
        match self {
            Prefix::V4(p) => p.addr().into(),
            Prefix::V6(p) => p.addr().into(),
            Prefix::Flow(f) if f.afi() == AFI_IPV6 => Ipv6Addr::UNSPECIFIED.into(),
            Prefix::Flow(_) => Ipv4Addr::UNSPECIFIED.into(),
        }
    }

    /// The prefix length (0 for a FlowSpec rule).
    pub fn len(&self) -> u8 {
        match self {
            Prefix::V4(p) => p.len(),
            Prefix::V6(p) => p.len(),
            Prefix::Flow(_) => 0,
        }
    }

    /// True for a default route (never for a FlowSpec rule).
    pub fn is_empty(&self) -> bool {
        self.unicast().is_some_and(|(_, len)| len == 0)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prefix::V4(p) => p.fmt(f),
            Prefix::V6(p) => p.fmt(f),
            Prefix::Flow(rule) => write!(f, "flow {rule}"),
        }
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        if s.contains(':') {
            s.parse().map(Prefix::V6)
        } else {
            s.parse().map(Prefix::V4)
        }
    }
}

impl From<Ipv4Prefix> for Prefix {
    fn from(p: Ipv4Prefix) -> Self {
        Prefix::V4(p)
    }
}

impl From<Ipv6Prefix> for Prefix {
    fn from(p: Ipv6Prefix) -> Self {
        Prefix::V6(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let p: Prefix = "100.10.0.0/24".parse().unwrap();
        assert_eq!(p.to_string(), "100.10.0.0/24");
        let p: Prefix = "2001:db8::/32".parse().unwrap();
        assert_eq!(p.to_string(), "2001:db8::/32");
        let p: Prefix = "192.0.2.1".parse().unwrap();
        assert_eq!(p.len(), 32);
        assert!("10.0.0.1/24".parse::<Prefix>().is_err(), "host bits set");
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("10.0.0/8".parse::<Prefix>().is_err());
    }

    #[test]
    fn nlri_vectors_both_ways() {
        let cases: &[(&str, &[u8])] = &[
            ("0.0.0.0/0", &[0]),
            ("10.0.0.0/8", &[8, 10]),
            ("100.10.0.0/24", &[24, 100, 10, 0]),
            ("192.0.2.1/32", &[32, 192, 0, 2, 1]),
            ("172.16.0.0/12", &[12, 172, 16]),
        ];
        for (text, bytes) in cases {
            let p: Ipv4Prefix = text.parse().unwrap();
            let mut out = Vec::new();
            p.encode(&mut out);
            assert_eq!(&out, bytes, "{text}");
            assert_eq!(Ipv4Prefix::decode(bytes).unwrap(), (p, bytes.len()));
        }
        let p: Ipv6Prefix = "2001:db8:1::/48".parse().unwrap();
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out, [48, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01]);
    }

    #[test]
    fn decode_rejects_bad_lengths() {
        assert!(Ipv4Prefix::decode(&[33, 1, 2, 3, 4, 5]).is_err());
        assert!(Ipv4Prefix::decode(&[24, 1, 2]).is_err());
        assert!(Ipv6Prefix::decode(&[129]).is_err());
        // trailing host bits are masked, not refused
        assert_eq!(
            Ipv4Prefix::decode(&[8, 0xff]).unwrap().0.to_string(),
            "255.0.0.0/8"
        );
        assert_eq!(
            Ipv4Prefix::decode(&[7, 0xff]).unwrap().0.to_string(),
            "254.0.0.0/7"
        );
    }

    /// A FlowSpec rule is a route key like a prefix: its family, no address, never a
    /// default route, shown as `flow RULE`; and the key stays small.
    #[test]
    fn flow_rules_as_route_keys() {
        use crate::packet::flowspec::{Component, FlowPrefix};
        let c = [Component::Destination(FlowPrefix::V4(
            "192.0.2.0/24".parse().unwrap(),
        ))];
        let rule = Prefix::Flow(FlowSpec::new(AFI_IPV4, &c).unwrap());
        assert_eq!(rule.family(), Family::IPV4_FLOWSPEC);
        assert_eq!(rule.unicast(), None);
        assert!(!rule.is_empty() && !rule.is_ipv6());
        assert_eq!(rule.to_string(), "flow destination 192.0.2.0/24");
        assert!("0.0.0.0/0".parse::<Prefix>().unwrap().is_empty());
        assert_eq!(std::mem::size_of::<Prefix>(), 24);
    }

    #[test]
    fn packed_layout() {
        assert_eq!(std::mem::size_of::<Ipv4Prefix>(), 5);
        assert_eq!(std::mem::size_of::<Ipv6Prefix>(), 17);
    }
}
