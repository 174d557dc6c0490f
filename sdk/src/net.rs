//! Addresses and prefixes: the binary WIT forms, `std::net` and text.
//!
//! The WIT package carries an IPv4 address as a `u32` (192.0.2.1 is
//! `0xc000_0201`) and an IPv6 address as two `u64` halves, high then low.
//! [`Prefix`] is the SDK's prefix: an enum over `u32` / `u128` that is cheap
//! to build from a policy batch and to compare, with `std::net` accessors
//! and text conversions.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::text::ParseError;
use crate::types::{self, IpAddress};

/// Joins the two WIT halves of an IPv6 address (high, low) into one `u128`.
#[inline]
pub const fn join_v6(halves: (u64, u64)) -> u128 {
    ((halves.0 as u128) << 64) | halves.1 as u128
}

/// Splits an IPv6 address held as a `u128` into the WIT halves (high, low).
#[inline]
pub const fn split_v6(addr: u128) -> (u64, u64) {
    ((addr >> 64) as u64, addr as u64)
}

impl From<Ipv4Addr> for IpAddress {
    fn from(addr: Ipv4Addr) -> Self {
        IpAddress::V4(u32::from(addr))
    }
}

impl From<Ipv6Addr> for IpAddress {
    fn from(addr: Ipv6Addr) -> Self {
        IpAddress::V6(split_v6(u128::from(addr)))
    }
}

impl From<IpAddr> for IpAddress {
    fn from(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => v4.into(),
            IpAddr::V6(v6) => v6.into(),
        }
    }
}

impl From<IpAddress> for IpAddr {
    fn from(addr: IpAddress) -> Self {
        match addr {
            IpAddress::V4(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            IpAddress::V6(halves) => IpAddr::V6(Ipv6Addr::from(join_v6(halves))),
        }
    }
}

impl IpAddress {
    /// The address as a `std::net` address.
    pub fn to_std(self) -> IpAddr {
        self.into()
    }

    /// True for an IPv4 address.
    pub fn is_ipv4(self) -> bool {
        matches!(self, IpAddress::V4(_))
    }
}

impl FromStr for IpAddress {
    type Err = ParseError;

    /// Parses "192.0.2.1" or "2001:db8::1".
    fn from_str(text: &str) -> Result<Self, ParseError> {
        text.trim()
            .parse::<IpAddr>()
            .map(IpAddress::from)
            .map_err(|_| {
                ParseError::new(
                    "IP address",
                    text,
                    "expected an address such as 192.0.2.1 or 2001:db8::1",
                )
            })
    }
}

impl fmt::Display for IpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        IpAddr::from(*self).fmt(f)
    }
}

/// An IP prefix, as the SDK hands it to policies: the address as one
/// integer (host bits zero) and the prefix length.
///
/// Built from text with [`str::parse`] ("192.0.2.0/24", "2001:db8::/32"),
/// from `std::net` with [`Prefix::new`], and from the WIT record with
/// [`TryFrom`]; those constructors refuse host bits and over-long lengths.
/// The variants can also be written out directly (a policy batch is turned
/// into them without checks: the host sends only valid prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// An IPv4 prefix: `addr` as in `types::IpAddress::V4`, `len` ≤ 32.
    V4 {
        /// The network address (192.0.2.0 is `0xc000_0200`).
        addr: u32,
        /// The prefix length.
        len: u8,
    },
    /// An IPv6 prefix: `addr` is the address as one big-endian number,
    /// `len` ≤ 128.
    V6 {
        /// The network address.
        addr: u128,
        /// The prefix length.
        len: u8,
    },
}

/// The netmask of an IPv4 prefix of length `len` (0 for /0, saturating
/// above 32).
#[inline]
pub const fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else if len >= 32 {
        u32::MAX
    } else {
        u32::MAX << (32 - len)
    }
}

/// The netmask of an IPv6 prefix of length `len` (0 for /0, saturating
/// above 128).
#[inline]
pub const fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else if len >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - len)
    }
}

impl Prefix {
    /// The prefix `addr/len`; fails when `len` is too long for the family or
    /// `addr` has host bits set (say 192.0.2.1/24: the error names
    /// 192.0.2.0/24).
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, ParseError> {
        let prefix = match addr {
            IpAddr::V4(v4) => Prefix::V4 {
                addr: u32::from(v4),
                len,
            },
            IpAddr::V6(v6) => Prefix::V6 {
                addr: u128::from(v6),
                len,
            },
        };
        prefix
            .check()
            .map_err(|reason| ParseError::new("prefix", &format!("{addr}/{len}"), &reason))?;
        Ok(prefix)
    }

    /// Why this prefix is malformed, if it is.
    fn check(&self) -> Result<(), String> {
        if self.length() > self.max_length() {
            return Err(format!(
                "the length is above {} for an {} prefix",
                self.max_length(),
                if self.is_ipv4() { "IPv4" } else { "IPv6" }
            ));
        }
        if self.network() != *self {
            return Err(format!(
                "host bits are set (the network is {})",
                self.network()
            ));
        }
        Ok(())
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        match *self {
            Prefix::V4 { addr, .. } => IpAddr::V4(Ipv4Addr::from(addr)),
            Prefix::V6 { addr, .. } => IpAddr::V6(Ipv6Addr::from(addr)),
        }
    }

    /// The prefix length.
    #[inline]
    pub fn length(&self) -> u8 {
        match *self {
            Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => len,
        }
    }

    /// 32 for IPv4, 128 for IPv6.
    #[inline]
    pub fn max_length(&self) -> u8 {
        if self.is_ipv4() { 32 } else { 128 }
    }

    /// True for an IPv4 prefix.
    #[inline]
    pub fn is_ipv4(&self) -> bool {
        matches!(self, Prefix::V4 { .. })
    }

    /// The same prefix with any host bits cleared.
    #[inline]
    pub fn network(&self) -> Prefix {
        match *self {
            Prefix::V4 { addr, len } => Prefix::V4 {
                addr: addr & mask_v4(len),
                len,
            },
            Prefix::V6 { addr, len } => Prefix::V6 {
                addr: addr & mask_v6(len),
                len,
            },
        }
    }

    /// True when `other` equals this prefix or lies inside it (same family,
    /// at least as long, same leading bits).
    #[inline]
    pub fn contains(&self, other: &Prefix) -> bool {
        match (*self, *other) {
            (
                Prefix::V4 { addr, len },
                Prefix::V4 {
                    addr: inner,
                    len: inner_len,
                },
            ) => len <= inner_len && (addr ^ inner) & mask_v4(len) == 0,
            (
                Prefix::V6 { addr, len },
                Prefix::V6 {
                    addr: inner,
                    len: inner_len,
                },
            ) => len <= inner_len && (addr ^ inner) & mask_v6(len) == 0,
            _ => false,
        }
    }

    /// True when the address `addr` lies inside this prefix.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        let host = match addr {
            IpAddr::V4(v4) => Prefix::V4 {
                addr: u32::from(v4),
                len: 32,
            },
            IpAddr::V6(v6) => Prefix::V6 {
                addr: u128::from(v6),
                len: 128,
            },
        };
        self.contains(&host)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.length())
    }
}

impl FromStr for Prefix {
    type Err = ParseError;

    /// Parses "ADDRESS/LENGTH": "192.0.2.0/24", "2001:db8::/32". Host bits
    /// must be zero: "192.0.2.1/24" is refused rather than silently turned
    /// into 192.0.2.0/24, since it is usually a typo.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let trimmed = text.trim();
        let error = |reason: &str| ParseError::new("prefix", text, reason);
        let (addr, len) = trimmed.split_once('/').ok_or_else(|| {
            error("expected ADDRESS/LENGTH such as 192.0.2.0/24 or 2001:db8::/32")
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| error("the address is not an IPv4 or IPv6 address"))?;
        // u8::from_str would take a leading '+'; the length is digits only.
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("the length is not a number"));
        }
        let len: u8 = len.parse().map_err(|_| error("the length is above 128"))?;
        let prefix = match addr {
            IpAddr::V4(v4) => Prefix::V4 {
                addr: u32::from(v4),
                len,
            },
            IpAddr::V6(v6) => Prefix::V6 {
                addr: u128::from(v6),
                len,
            },
        };
        prefix.check().map_err(|reason| error(&reason))?;
        Ok(prefix)
    }
}

impl From<Prefix> for types::Prefix {
    fn from(prefix: Prefix) -> Self {
        match prefix {
            Prefix::V4 { addr, len } => types::Prefix {
                address: IpAddress::V4(addr),
                length: len,
            },
            Prefix::V6 { addr, len } => types::Prefix {
                address: IpAddress::V6(split_v6(addr)),
                length: len,
            },
        }
    }
}

impl TryFrom<types::Prefix> for Prefix {
    type Error = ParseError;

    /// Checks the length and the host bits of a WIT prefix.
    fn try_from(prefix: types::Prefix) -> Result<Self, ParseError> {
        Prefix::new(prefix.address.into(), prefix.length)
    }
}

impl fmt::Display for types::Prefix {
    /// "ADDRESS/LENGTH", as given (even when malformed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

impl FromStr for types::Prefix {
    type Err = ParseError;

    /// Parses and checks like [`Prefix`]'s `FromStr`.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        text.parse::<Prefix>().map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_both_ways() {
        let addr: Ipv4Addr = "192.0.2.1".parse().unwrap();
        assert_eq!(IpAddress::from(addr), IpAddress::V4(0xc000_0201));
        assert_eq!(IpAddr::from(IpAddress::V4(0xc000_0201)), IpAddr::V4(addr));
        assert_eq!(
            "192.0.2.1".parse::<IpAddress>().unwrap(),
            IpAddress::V4(0xc000_0201)
        );
        assert_eq!(IpAddress::V4(0xc000_0201).to_string(), "192.0.2.1");
    }

    #[test]
    fn ipv6_both_ways() {
        let addr: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let wit = IpAddress::V6((0x2001_0db8_0000_0000, 1));
        assert_eq!(IpAddress::from(addr), wit);
        assert_eq!(IpAddr::from(wit), IpAddr::V6(addr));
        assert_eq!(wit.to_string(), "2001:db8::1");
        let every_bit: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        assert_eq!(join_v6(split_v6(every_bit)), every_bit);
        assert_eq!(
            split_v6(every_bit),
            (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)
        );
        assert!("banana".parse::<IpAddress>().is_err());
    }

    #[test]
    fn prefixes_parse_and_print() {
        let p: Prefix = "192.0.2.0/24".parse().unwrap();
        assert_eq!(
            p,
            Prefix::V4 {
                addr: 0xc000_0200,
                len: 24
            }
        );
        assert_eq!(p.to_string(), "192.0.2.0/24");
        let p: Prefix = "2001:db8::/32".parse().unwrap();
        assert_eq!(
            p,
            Prefix::V6 {
                addr: 0x2001_0db8 << 96,
                len: 32
            }
        );
        assert_eq!(p.to_string(), "2001:db8::/32");
        assert_eq!(
            "0.0.0.0/0".parse::<Prefix>().unwrap(),
            Prefix::V4 { addr: 0, len: 0 }
        );
        assert_eq!("::/0".parse::<Prefix>().unwrap().length(), 0);
        assert_eq!(
            "::1/128".parse::<Prefix>().unwrap(),
            Prefix::V6 { addr: 1, len: 128 }
        );
    }

    #[test]
    fn prefix_errors_are_clear() {
        let host_bits = "192.0.2.1/24".parse::<Prefix>().unwrap_err().to_string();
        assert!(
            host_bits.contains("host bits") && host_bits.contains("192.0.2.0/24"),
            "{host_bits}"
        );
        assert!(
            "192.0.2.0/33"
                .parse::<Prefix>()
                .unwrap_err()
                .to_string()
                .contains("above 32")
        );
        assert!(
            "2001:db8::/129"
                .parse::<Prefix>()
                .unwrap_err()
                .to_string()
                .contains("above 128")
        );
        assert!(
            "192.0.2.0"
                .parse::<Prefix>()
                .unwrap_err()
                .to_string()
                .contains("ADDRESS/LENGTH")
        );
        for bad in [
            "192.0.2.0/+24",
            "192.0.2.0/",
            "x/é",
            "192.0.2.0/2a",
            "192.0.2.0/1000",
        ] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn containment() {
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        assert!(p("10.0.0.0/8").contains(&p("10.1.0.0/16")));
        assert!(p("10.0.0.0/8").contains(&p("10.0.0.0/8")));
        assert!(!p("10.1.0.0/16").contains(&p("10.0.0.0/8")));
        assert!(!p("10.0.0.0/8").contains(&p("11.0.0.0/16")));
        assert!(p("0.0.0.0/0").contains(&p("203.0.113.0/24")));
        assert!(!p("0.0.0.0/0").contains(&p("::/0")));
        assert!(p("2001:db8::/32").contains(&p("2001:db8:1::/48")));
        assert!(!p("2001:db8::/32").contains(&p("2001:db9::/48")));
        assert!(p("2001:db8::/32").contains_addr("2001:db8::1".parse().unwrap()));
        assert!(!p("2001:db8::/32").contains_addr("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn wit_prefix_both_ways() {
        let wit: types::Prefix = "2001:db8::/32".parse().unwrap();
        assert_eq!(
            wit,
            types::Prefix {
                address: IpAddress::V6((0x2001_0db8_0000_0000, 0)),
                length: 32
            }
        );
        assert_eq!(Prefix::try_from(wit).unwrap().to_string(), "2001:db8::/32");
        let bad = types::Prefix {
            address: IpAddress::V4(0xc000_0201),
            length: 24,
        };
        assert_eq!(bad.to_string(), "192.0.2.1/24");
        assert!(Prefix::try_from(bad).is_err());
        assert!(
            Prefix::try_from(types::Prefix {
                address: IpAddress::V4(0),
                length: 33
            })
            .is_err()
        );
    }
}
