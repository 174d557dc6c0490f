//! Communities in their usual text forms, and the error of every text
//! parser of the SDK.
//!
//! The WIT package carries a standard community as a `u32`
//! (65001:100 is `(65001 << 16) | 100`), a large community as three `u32`s
//! and an extended community as its 8 octets in a big-endian `u64`. The
//! newtypes here parse and print the notation of the config and `ctl`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Text that did not parse: what it should have been, the input (at most
/// its first 48 characters) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    input: String,
    reason: String,
}

impl ParseError {
    /// An error for `input`, which should have been a `what`.
    pub fn new(what: &'static str, input: &str, reason: &str) -> Self {
        // Quote a bounded prefix: inputs may come from large data files.
        let input = match input.char_indices().nth(48) {
            Some((cut, _)) => format!("{}...", &input[..cut]),
            None => input.to_string(),
        };
        ParseError {
            what,
            input,
            reason: reason.to_string(),
        }
    }

    /// Why the input was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.what, self.input, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parses a decimal number made of ASCII digits only (`str::parse` would
/// take a leading '+').
fn number<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses an AS number: "65001", "AS65001" (any case) or asdot "1.10".
pub fn parse_asn(text: &str) -> Result<u32, ParseError> {
    let trimmed = text.trim();
    let digits = trimmed
        .strip_prefix("AS")
        .or_else(|| trimmed.strip_prefix("as"))
        .or_else(|| trimmed.strip_prefix("As"))
        .unwrap_or(trimmed);
    if let Some((high, low)) = digits.split_once('.') {
        if let (Some(high), Some(low)) = (number::<u16>(high), number::<u16>(low)) {
            return Ok((u32::from(high) << 16) | u32::from(low));
        }
    } else if let Some(asn) = number::<u32>(digits) {
        return Ok(asn);
    }
    Err(ParseError::new(
        "AS number",
        text,
        "expected a number from 0 to 4294967295 (or AS65001, or asdot 1.10)",
    ))
}

/// An AS number that parses from "65001", "AS65001" or asdot "1.10" and
/// prints as a plain number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asn(pub u32);

impl FromStr for Asn {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        parse_asn(text).map(Asn)
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<Asn> for u32 {
    fn from(asn: Asn) -> u32 {
        asn.0
    }
}

/// A standard community (RFC 1997): `ASN:VALUE` with 16-bit parts, or a
/// well-known name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT (65535:65281).
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// NO_ADVERTISE (65535:65282).
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    /// NO_EXPORT_SUBCONFED (65535:65283).
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// GRACEFUL_SHUTDOWN (65535:0, RFC 8326).
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// BLACKHOLE (65535:666, RFC 7999).
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);

    /// The names accepted and printed for well-known communities.
    const NAMES: [(&'static str, Community); 5] = [
        ("no-export", Community::NO_EXPORT),
        ("no-advertise", Community::NO_ADVERTISE),
        ("no-export-subconfed", Community::NO_EXPORT_SUBCONFED),
        ("graceful-shutdown", Community::GRACEFUL_SHUTDOWN),
        ("blackhole", Community::BLACKHOLE),
    ];

    /// `asn:value`.
    pub const fn new(asn: u16, value: u16) -> Self {
        Community(((asn as u32) << 16) | value as u32)
    }

    /// The high 16 bits (by convention the AS).
    pub const fn asn(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The low 16 bits.
    pub const fn value(self) -> u16 {
        self.0 as u16
    }
}

impl From<Community> for u32 {
    fn from(community: Community) -> u32 {
        community.0
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Community::NAMES.iter().find(|(_, c)| c == self) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}:{}", self.asn(), self.value()),
        }
    }
}

impl FromStr for Community {
    type Err = ParseError;

    /// Parses "65001:100", "no-export", "no-advertise",
    /// "no-export-subconfed", "graceful-shutdown" or "blackhole".
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let trimmed = text.trim();
        if let Some((_, community)) = Community::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
        {
            return Ok(*community);
        }
        trimmed
            .split_once(':')
            .and_then(|(asn, value)| Some(Community::new(number(asn)?, number(value)?)))
            .ok_or_else(|| {
                ParseError::new(
                    "community",
                    text,
                    "expected ASN:VALUE with 16-bit parts (65001:100) or no-export, no-advertise, no-export-subconfed, graceful-shutdown, blackhole",
                )
            })
    }
}

/// A large community (RFC 8092): `GLOBAL:LOCAL1:LOCAL2`, 32 bits each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// The global administrator (by convention the AS).
    pub global: u32,
    /// The first local data part.
    pub local1: u32,
    /// The second local data part.
    pub local2: u32,
}

impl LargeCommunity {
    /// `global:local1:local2`.
    pub const fn new(global: u32, local1: u32, local2: u32) -> Self {
        LargeCommunity {
            global,
            local1,
            local2,
        }
    }
}

impl From<(u32, u32, u32)> for LargeCommunity {
    fn from((global, local1, local2): (u32, u32, u32)) -> Self {
        LargeCommunity {
            global,
            local1,
            local2,
        }
    }
}

impl From<LargeCommunity> for (u32, u32, u32) {
    fn from(c: LargeCommunity) -> Self {
        (c.global, c.local1, c.local2)
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl FromStr for LargeCommunity {
    type Err = ParseError;

    /// Parses "65001:1:2".
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let mut parts = text.trim().split(':');
        if let (Some(a), Some(b), Some(c), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
            && let (Some(a), Some(b), Some(c)) = (number(a), number(b), number(c))
        {
            return Ok(LargeCommunity::new(a, b, c));
        }
        Err(ParseError::new(
            "large community",
            text,
            "expected GLOBAL:LOCAL1:LOCAL2 with 32-bit parts (65001:1:2)",
        ))
    }
}

/// An extended community (RFC 4360): its 8 octets as a big-endian `u64`.
///
/// Text: `target:ASN:N` and `origin:ASN:N` (route target and route origin;
/// the ASN may be an IPv4 address, or a 4-octet AS written `ASNL`), or 16
/// hex digits `0x...` for any other kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub u64);

impl From<ExtendedCommunity> for u64 {
    fn from(c: ExtendedCommunity) -> u64 {
        c.0
    }
}

impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.to_be_bytes();
        let kind = match b[1] {
            0x02 => "target",
            0x03 => "origin",
            _ => return write!(f, "0x{:016x}", self.0),
        };
        let as2 = u16::from_be_bytes([b[2], b[3]]);
        let low4 = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let high4 = u32::from_be_bytes([b[2], b[3], b[4], b[5]]);
        let low2 = u16::from_be_bytes([b[6], b[7]]);
        match b[0] {
            0x00 => write!(f, "{kind}:{as2}:{low4}"),
            0x01 => write!(f, "{kind}:{}:{low2}", Ipv4Addr::from(high4)),
            0x02 => write!(f, "{kind}:{high4}L:{low2}"),
            _ => write!(f, "0x{:016x}", self.0),
        }
    }
}

impl FromStr for ExtendedCommunity {
    type Err = ParseError;

    /// Parses "target:65001:7", "origin:192.0.2.1:5", "target:4200000000L:9"
    /// or "0x0002fde800000007".
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let trimmed = text.trim();
        let error = || {
            ParseError::new(
                "extended community",
                text,
                "expected target:ASN:N, origin:ASN:N or 0x followed by 16 hex digits",
            )
        };
        if let Some(hex) = trimmed.strip_prefix("0x") {
            // Byte-wise check first: from_str_radix would take a '+'.
            if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(error());
            }
            return u64::from_str_radix(hex, 16)
                .map(ExtendedCommunity)
                .map_err(|_| error());
        }
        let (kind, rest) = trimmed.split_once(':').ok_or_else(error)?;
        let subtype: u64 = match kind {
            "target" => 0x02,
            "origin" => 0x03,
            _ => return Err(error()),
        };
        let (admin, assigned) = rest.rsplit_once(':').ok_or_else(error)?;
        let value = if let Ok(ip) = admin.parse::<Ipv4Addr>() {
            let n: u16 = number(assigned).ok_or_else(error)?;
            (0x01 << 56) | (u64::from(u32::from(ip)) << 16) | u64::from(n)
        } else if let Some(as4) = admin.strip_suffix('L') {
            let asn: u32 = number(as4).ok_or_else(error)?;
            let n: u16 = number(assigned).ok_or_else(error)?;
            (0x02 << 56) | (u64::from(asn) << 16) | u64::from(n)
        } else {
            let asn: u16 = number(admin).ok_or_else(error)?;
            let n: u32 = number(assigned).ok_or_else(error)?;
            (u64::from(asn) << 32) | u64::from(n)
        };
        Ok(ExtendedCommunity(value | (subtype << 48)))
    }
}

/// Appends `text` to `out` as a JSON string, quotes included (`"`, `\\`
/// and control characters escaped): for exporters writing JSON lines
/// without a serializer.
pub fn push_json_string(out: &mut String, text: &str) {
    use std::fmt::Write;
    out.reserve(text.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_communities() {
        let c: Community = "65001:100".parse().unwrap();
        assert_eq!(c.0, (65001 << 16) | 100);
        assert_eq!(c, Community::new(65001, 100));
        assert_eq!(c.to_string(), "65001:100");
        for (text, value) in [
            ("no-export", 0xFFFF_FF01u32),
            ("no-advertise", 0xFFFF_FF02),
            ("no-export-subconfed", 0xFFFF_FF03),
            ("blackhole", 0xFFFF_029A),
            ("graceful-shutdown", 0xFFFF_0000),
        ] {
            let c: Community = text.parse().unwrap();
            assert_eq!(c.0, value, "{text}");
            assert_eq!(c.to_string(), text);
        }
        assert_eq!(
            "NO-EXPORT".parse::<Community>().unwrap(),
            Community::NO_EXPORT
        );
        assert_eq!(
            "65535:65281".parse::<Community>().unwrap().to_string(),
            "no-export"
        );
        for bad in ["70000:1", "1:70000", "1", "1:2:3", "+1:2", "a:b", ""] {
            let e = bad.parse::<Community>().unwrap_err().to_string();
            assert!(e.contains("ASN:VALUE"), "{bad}: {e}");
        }
    }

    #[test]
    fn large_communities() {
        let c: LargeCommunity = "65001:1:2".parse().unwrap();
        assert_eq!(<(u32, u32, u32)>::from(c), (65001, 1, 2));
        assert_eq!(c.to_string(), "65001:1:2");
        assert_eq!(
            "4294967295:0:4294967295"
                .parse::<LargeCommunity>()
                .unwrap()
                .global,
            u32::MAX
        );
        for bad in ["1:2", "1:2:3:4", "1:2:4294967296", "a:1:2"] {
            assert!(bad.parse::<LargeCommunity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn extended_communities() {
        for (text, value) in [
            ("target:65001:7", 0x0002_fde9_0000_0007u64),
            ("origin:65001:7", 0x0003_fde9_0000_0007),
            ("origin:192.0.2.1:5", 0x0103_c000_0201_0005),
            ("target:4200000000L:9", 0x0202_fa56_ea00_0009),
            ("0x8006000000000000", 0x8006_0000_0000_0000),
        ] {
            let c: ExtendedCommunity = text.parse().unwrap();
            assert_eq!(c.0, value, "{text}");
            assert_eq!(c.to_string(), text);
        }
        for bad in [
            "0x0é0000000000000",
            "0x+000000000000000",
            "0x",
            "target:1",
            "color:1:2",
            "target:70000:1",
        ] {
            assert!(bad.parse::<ExtendedCommunity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn asns() {
        assert_eq!(parse_asn("65001").unwrap(), 65001);
        assert_eq!(parse_asn("AS65001").unwrap(), 65001);
        assert_eq!(parse_asn("as4200000000").unwrap(), 4_200_000_000);
        assert_eq!(parse_asn("1.10").unwrap(), 65546);
        assert_eq!("AS65001".parse::<Asn>().unwrap(), Asn(65001));
        assert_eq!(Asn(65001).to_string(), "65001");
        for bad in ["", "AS", "-1", "+1", "4294967296", "1.70000"] {
            assert!(parse_asn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_quote_a_bounded_input() {
        let long = "9".repeat(1000);
        let e = long.parse::<Community>().unwrap_err().to_string();
        assert!(e.len() < 300, "{e}");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }
}
