//! ExaBGP's route syntax: `PREFIX [next-hop self|ADDR] [med N] [local-preference N]
//! [origin igp|egp|incomplete] [as-path [ ASN... ]] [community [ A:B... ]]
//! [large-community [ A:B:C... ]] [extended-community [ target:A:B... ]] [atomic-aggregate]`.
//!
//! One parser serves the config (`[[route]]` values and `[[route-file]]` lines), the
//! control socket (`announce route ...`) and plugins, so the words mean the same everywhere.
//! Every input is outside input: the parsers return errors, never panic (fuzzed in
//! `fuzz/`), and errors quote at most a short prefix of what they were given.

pub mod flow;

use std::net::{IpAddr, Ipv4Addr};

use crate::packet::attributes::{
    AsPath, ExtendedCommunity, LargeCommunity, NextHop, Origin, PathAttributes,
};
use crate::packet::prefix::Prefix;
use crate::text::quote;

/// A route as an operator writes it: a prefix and the attributes to announce it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The announced prefix.
    pub prefix: Prefix,
    /// Its attributes; `next_hop` may be [`NextHop::Local`] (`self`).
    pub attrs: PathAttributes,
}

impl From<flow::FlowRouteSpec> for RouteSpec {
    fn from(f: flow::FlowRouteSpec) -> Self {
        RouteSpec {
            prefix: Prefix::Flow(f.rule),
            attrs: f.attrs,
        }
    }
}

/// Splits a line into words, with `[`, `]`, `{`, `}` and `;` standing alone even when
/// written against a word: ExaBGP writes lists `[65010 65020]` and flow routes
/// `match { source 10.0.0.0/24; }`.
pub fn tokenize(line: &str) -> Vec<String> {
    // Slices of the line, copied once each (every line of a ctl batch and every
    // `[[flow]]` table comes through here).
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        let alone = matches!(c, '[' | ']' | '{' | '}' | ';');
        if alone || c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push(line[s..i].to_string());
            }
            if alone {
                words.push(c.to_string());
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(line[s..].to_string());
    }
    words
}

/// Parses `PREFIX attribute-words...`, starting from `defaults` for every attribute not given.
pub fn parse_route<W: AsRef<str>>(
    words: &[W],
    defaults: &PathAttributes,
) -> Result<RouteSpec, String> {
    let (first, rest) = words.split_first().ok_or("missing prefix")?;
    let prefix = parse_prefix(first.as_ref())?;
    let mut attrs = defaults.clone();
    apply_words(&mut attrs, rest)?;
    check_next_hop_family(&prefix, attrs.next_hop.as_ref())?;
    Ok(RouteSpec { prefix, attrs })
}

/// Parses a prefix (`192.0.2.0/24`, `2001:db8::/32`; a bare address is a host route).
pub fn parse_prefix(v: &str) -> Result<Prefix, String> {
    v.parse()
        .map_err(|e: crate::packet::prefix::PrefixError| e.0)
}

/// Refuses an explicit next hop of the other address family than the prefix.
pub fn check_next_hop_family(prefix: &Prefix, next_hop: Option<&NextHop>) -> Result<(), String> {
    match (prefix, next_hop) {
        (Prefix::V4(_), Some(NextHop::Addr(IpAddr::V6(a)))) => {
            Err(format!("next-hop {a} is IPv6 but prefix {prefix} is IPv4"))
        }
        (Prefix::V6(_), Some(NextHop::Addr(IpAddr::V4(a)))) => {
            Err(format!("next-hop {a} is IPv4 but prefix {prefix} is IPv6"))
        }
        _ => Ok(()),
    }
}

/// Applies attribute words (everything after the prefix) to `attrs`.
pub fn apply_words<W: AsRef<str>>(attrs: &mut PathAttributes, words: &[W]) -> Result<(), String> {
    let mut it = words.iter().map(AsRef::as_ref);
    while let Some(word) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{word} needs a value"));
        match word {
            "next-hop" => attrs.next_hop = Some(parse_next_hop(value()?)?),
            "med" => attrs.med = Some(parse_u32(word, value()?)?),
            "local-preference" => attrs.local_pref = Some(parse_u32(word, value()?)?),
            "origin" => attrs.origin = parse_origin(value()?)?,
            "atomic-aggregate" => attrs.atomic_aggregate = true,
            "as-path" | "community" | "large-community" | "extended-community" => {
                let items = list(word, &mut it)?;
                match word {
                    "as-path" => {
                        let asns = items
                            .iter()
                            .map(|a| parse_asn(a))
                            .collect::<Result<Vec<_>, _>>()?;
                        attrs.as_path = AsPath::from_sequence(asns);
                    }
                    "community" => {
                        attrs.communities = items
                            .iter()
                            .map(|c| parse_community(c))
                            .collect::<Result<_, _>>()?;
                    }
                    "large-community" => {
                        attrs.large_communities = items
                            .iter()
                            .map(|c| parse_large_community(c))
                            .collect::<Result<_, _>>()?;
                    }
                    _ => {
                        attrs.extended_communities = items
                            .iter()
                            .map(|c| parse_extended_community(c))
                            .collect::<Result<_, _>>()?;
                    }
                }
            }
            other => return Err(format!("unknown attribute word {}", quote(other))),
        }
    }
    Ok(())
}

/// Reads `[ a b c ]` or a single item.
fn list<'a>(word: &str, it: &mut impl Iterator<Item = &'a str>) -> Result<Vec<&'a str>, String> {
    match it.next() {
        None => Err(format!("{word} needs a value")),
        Some("[") => {
            let mut items = Vec::new();
            for w in it.by_ref() {
                if w == "]" {
                    return Ok(items);
                }
                items.push(w);
            }
            Err(format!("{word} list is missing its closing ]"))
        }
        Some(single) => Ok(vec![single]),
    }
}

fn parse_u32(word: &str, v: &str) -> Result<u32, String> {
    v.parse().map_err(|_| {
        format!(
            "{word} must be a number from 0 to 4294967295, not {}",
            quote(v)
        )
    })
}

/// Parses `self` or an address.
pub fn parse_next_hop(v: &str) -> Result<NextHop, String> {
    if v == "self" {
        return Ok(NextHop::Local);
    }
    v.parse::<IpAddr>()
        .map(NextHop::Addr)
        .map_err(|_| format!("next-hop must be \"self\" or an address, not {}", quote(v)))
}

/// Parses `igp`, `egp` or `incomplete`.
pub fn parse_origin(v: &str) -> Result<Origin, String> {
    match v.to_ascii_lowercase().as_str() {
        "igp" => Ok(Origin::Igp),
        "egp" => Ok(Origin::Egp),
        "incomplete" => Ok(Origin::Incomplete),
        _ => Err(format!(
            "origin must be igp, egp or incomplete, not {}",
            quote(v)
        )),
    }
}

/// Parses an ASN (`65001` or asdot `1.10`).
pub fn parse_asn(v: &str) -> Result<u32, String> {
    if let Some((hi, lo)) = v.split_once('.') {
        if let (Ok(hi), Ok(lo)) = (hi.parse::<u16>(), lo.parse::<u16>()) {
            return Ok(((hi as u32) << 16) | lo as u32);
        }
    }
    v.parse()
        .map_err(|_| format!("invalid AS number {}", quote(v)))
}

/// Parses a standard community `ASN:VALUE` or a well-known name.
pub fn parse_community(v: &str) -> Result<u32, String> {
    match v {
        "no-export" => return Ok(0xFFFF_FF01),
        "no-advertise" => return Ok(0xFFFF_FF02),
        "no-export-subconfed" => return Ok(0xFFFF_FF03),
        "graceful-shutdown" => return Ok(0xFFFF_0000),
        "blackhole" => return Ok(0xFFFF_029A),
        _ => {}
    }
    let err = || {
        format!(
            "community must be ASN:VALUE with 16-bit parts, not {}",
            quote(v)
        )
    };
    let (a, b) = v.split_once(':').ok_or_else(err)?;
    let (a, b) = (
        a.parse::<u16>().map_err(|_| err())?,
        b.parse::<u16>().map_err(|_| err())?,
    );
    Ok(((a as u32) << 16) | b as u32)
}

/// Parses a large community `A:B:C`.
pub fn parse_large_community(v: &str) -> Result<LargeCommunity, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let err = || {
        format!(
            "large-community must be A:B:C with 32-bit parts, not {}",
            quote(v)
        )
    };
    let [a, b, c] = parts.as_slice() else {
        return Err(err());
    };
    Ok(LargeCommunity([
        a.parse().map_err(|_| err())?,
        b.parse().map_err(|_| err())?,
        c.parse().map_err(|_| err())?,
    ]))
}

/// Parses an extended community: `target:ASN:N`, `origin:ASN:N` (an IPv4 address or an
/// `ASNL` 4-octet ASN may stand for the ASN), a FlowSpec traffic action (`discard`,
/// `rate-limit:9600`, `rate-limit:65001:9600`, `rate-limit-packets:100`,
/// `action:sample|terminal|sample-terminal|none`, `redirect:65001:999`,
/// `redirect:192.0.2.1:7`, `redirect:4200000000L:7`, `mark:10`, `redirect-to-nexthop`,
/// `redirect-to-nexthop:copy`), or 16 hex digits `0x...`. Every form is what
/// `ExtendedCommunity`'s `Display` prints.
pub fn parse_extended_community(v: &str) -> Result<ExtendedCommunity, String> {
    let err = || {
        format!(
            "extended-community must be target:ASN:N, origin:ASN:N, a flow action \
             (rate-limit:N, redirect:ASN:N...) or 0x<16 hex digits>, not {}",
            quote(v)
        )
    };
    if let Some(hex) = v.strip_prefix("0x") {
        // Checked byte by byte first: a length of 16 bytes may still hold multi-byte
        // characters, and from_str_radix alone would take a leading '+'.
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let value = u64::from_str_radix(hex, 16).map_err(|_| err())?;
        return Ok(ExtendedCommunity(value.to_be_bytes()));
    }
    if let Some(action) = flow::parse_action_community(v) {
        return action.map(|a| a.to_community());
    }
    let (kind, rest) = v.split_once(':').ok_or_else(err)?;
    let sub = match kind {
        "target" => 0x02,
        "origin" => 0x03,
        _ => return Err(err()),
    };
    let (admin, num) = rest.rsplit_once(':').ok_or_else(err)?;
    let mut b = [0u8; 8];
    b[1] = sub;
    if let Ok(ip) = admin.parse::<Ipv4Addr>() {
        b[0] = 0x01;
        b[2..6].copy_from_slice(&ip.octets());
        b[6..8].copy_from_slice(&num.parse::<u16>().map_err(|_| err())?.to_be_bytes());
    } else if let Some(as4) = admin.strip_suffix('L') {
        b[0] = 0x02;
        b[2..6].copy_from_slice(&parse_asn(as4)?.to_be_bytes());
        b[6..8].copy_from_slice(&num.parse::<u16>().map_err(|_| err())?.to_be_bytes());
    } else {
        b[2..4].copy_from_slice(&admin.parse::<u16>().map_err(|_| err())?.to_be_bytes());
        b[4..8].copy_from_slice(&num.parse::<u32>().map_err(|_| err())?.to_be_bytes());
    }
    Ok(ExtendedCommunity(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(line: &str) -> Result<RouteSpec, String> {
        parse_route(&tokenize(line), &PathAttributes::default())
    }

    #[test]
    fn exabgp_words() {
        let r = route(
            "100.10.0.100/32 next-hop self med 100 local-preference 200 origin egp as-path [65010 65020] \
             community [ 65001:100 no-export ] large-community [65001:1:2] extended-community target:65001:7",
        )
        .unwrap();
        assert_eq!(r.prefix.to_string(), "100.10.0.100/32");
        assert_eq!(r.attrs.next_hop, Some(NextHop::Local));
        assert_eq!(
            (r.attrs.med, r.attrs.local_pref, r.attrs.origin),
            (Some(100), Some(200), Origin::Egp)
        );
        assert_eq!(r.attrs.as_path.to_string(), "65010 65020");
        assert_eq!(r.attrs.communities, vec![(65001 << 16) | 100, 0xFFFF_FF01]);
        assert_eq!(r.attrs.large_communities[0].to_string(), "65001:1:2");
        assert_eq!(
            r.attrs.extended_communities[0].to_string(),
            "target:65001:7"
        );
    }

    #[test]
    fn clear_errors() {
        assert_eq!(route("10.0.0.0/8 med").unwrap_err(), "med needs a value");
        assert!(
            route("10.0.0.0/8 med x")
                .unwrap_err()
                .contains("med must be a number")
        );
        assert!(
            route("10.0.0.0/8 colour blue")
                .unwrap_err()
                .contains("unknown attribute word")
        );
        assert!(
            route("10.0.0.0/8 community [ 1:2")
                .unwrap_err()
                .contains("closing ]")
        );
        assert!(
            route("10.0.0.0/8 next-hop 2001:db8::1")
                .unwrap_err()
                .contains("is IPv6")
        );
        assert!(route("10.0.0.1/8").unwrap_err().contains("host bits"));
        assert!(parse_community("70000:1").is_err());
    }

    /// Found by fuzzing (issue 7): 16 bytes after `0x` holding a two-byte character
    /// made the hex slicing panic.
    #[test]
    fn extended_community_hex_with_multibyte_character_is_an_error() {
        let e = parse_extended_community("0x0é0000000000000").unwrap_err();
        assert!(e.contains("0x<16 hex digits>"), "{e}");
        for bad in [
            "0x+000000000000000",
            "0x00000000000000",
            "0x000000000000000g",
            "0x",
        ] {
            assert!(parse_extended_community(bad).is_err(), "{bad}");
        }
        assert!(
            route("10.0.0.0/8 next-hop self extended-community [ 0x0é0000000000000 ]").is_err()
        );
    }

    #[test]
    fn errors_quote_a_short_prefix_of_long_input() {
        let long = "7".repeat(100_000);
        for e in [
            route(&format!("10.0.0.0/8 med {long}")).unwrap_err(),
            route(&format!("10.0.0.0/8 {long}")).unwrap_err(),
            route(&format!("{long}/8")).unwrap_err(),
            parse_extended_community(&long).unwrap_err(),
        ] {
            assert!(e.len() < 200, "{} bytes: {}", e.len(), &e[..200]);
        }
    }

    #[test]
    fn extended_community_forms_round_trip() {
        for text in [
            "target:65001:7",
            "origin:192.0.2.1:5",
            "target:4200000000L:9",
            "0x0601000000000000",
            // FlowSpec traffic actions (RFC 8955 §7, draft-simpson-idr-flowspec-redirect)
            "discard",
            "rate-limit:9600",
            "rate-limit:1.5",
            "rate-limit:65001:9600",
            "rate-limit:65001:0",
            "rate-limit-packets:100",
            "rate-limit-packets:7:0",
            "action:sample",
            "action:terminal",
            "action:sample-terminal",
            "action:none",
            "redirect:65001:999",
            "redirect:192.0.2.1:7",
            "redirect:4200000000L:7",
            "redirect:100L:7",
            "mark:10",
            "redirect-to-nexthop",
            "redirect-to-nexthop:copy",
        ] {
            assert_eq!(parse_extended_community(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn traffic_action_communities_are_their_octets() {
        let cases: &[(&str, [u8; 8])] = &[
            ("discard", [0x80, 0x06, 0, 0, 0, 0, 0, 0]),
            ("rate-limit:0", [0x80, 0x06, 0, 0, 0, 0, 0, 0]),
            ("rate-limit:9600", [0x80, 0x06, 0, 0, 0x46, 0x16, 0, 0]),
            (
                "rate-limit-packets:100",
                [0x80, 0x0c, 0, 0, 0x42, 0xc8, 0, 0],
            ),
            ("action:sample", [0x80, 0x07, 0, 0, 0, 0, 0, 0x02]),
            ("action:terminal", [0x80, 0x07, 0, 0, 0, 0, 0, 0x01]),
            (
                "redirect:65001:999",
                [0x80, 0x08, 0xfd, 0xe9, 0, 0, 0x03, 0xe7],
            ),
            // an AS above 65535 takes the 4-octet form, as ExaBGP does
            (
                "redirect:4200000000:7",
                [0x82, 0x08, 0xfa, 0x56, 0xea, 0, 0, 7],
            ),
            // and so does a value above 65535... only for a 2-octet AS
            (
                "redirect:65001:70000",
                [0x80, 0x08, 0xfd, 0xe9, 0, 1, 0x11, 0x70],
            ),
            ("redirect:192.0.2.1:7", [0x81, 0x08, 192, 0, 2, 1, 0, 7]),
            ("mark:46", [0x80, 0x09, 0, 0, 0, 0, 0, 46]),
            ("redirect-to-nexthop:copy", [0x08, 0x00, 0, 0, 0, 0, 0, 1]),
        ];
        for (text, octets) in cases {
            assert_eq!(
                parse_extended_community(text),
                Ok(ExtendedCommunity(*octets)),
                "{text}"
            );
        }
    }

    #[test]
    fn traffic_action_community_errors() {
        for bad in [
            "mark:64",
            "mark:-1",
            "rate-limit:-5",
            "rate-limit:1e9",
            "rate-limit:inf",
            "rate-limit:NaN",
            "rate-limit:+5",
            "rate-limit:.5",
            "rate-limit:5.",
            "rate-limit:70000:5",
            "rate-limit",
            "action:sample+terminal",
            "redirect:4200000000:70000",
            "redirect:192.0.2.1:70000",
            "redirect:65001",
            "redirect-to-nexthop:nope",
            "discard:1",
        ] {
            assert!(parse_extended_community(bad).is_err(), "{bad}");
        }
        let long = format!("rate-limit:{}", "9".repeat(100_000));
        let e = parse_extended_community(&long).unwrap_err();
        assert!(e.len() < 200, "{e}");
    }

    /// Traffic actions that the text can not carry exactly show as hex, so what is
    /// printed always reads back to the same octets.
    #[test]
    fn non_canonical_traffic_actions_show_as_hex() {
        for octets in [
            [0x80, 0x06, 0, 0, 0xc0, 0, 0, 0],    // a negative rate
            [0x80, 0x06, 0, 0, 0x80, 0, 0, 0],    // -0
            [0x80, 0x06, 0, 0, 0x7f, 0xc0, 0, 0], // NaN
            [0x80, 0x07, 0, 0, 0, 0, 0, 0x04],    // a reserved action bit
            [0x80, 0x09, 0, 0, 0, 0, 0, 0xc0],    // reserved mark bits
            [0x08, 0x00, 0, 0, 0, 1, 0, 0],       // a reserved redirect bit
        ] {
            let c = ExtendedCommunity(octets);
            let text = c.to_string();
            assert!(text.starts_with("0x"), "{text}");
            assert_eq!(parse_extended_community(&text), Ok(c));
        }
    }

    #[test]
    fn tokenize_makes_braces_and_semicolons_words() {
        assert_eq!(
            tokenize("{ match {source 10.0.0.0/24;destination-port [=80 =443];} then{discard;}}"),
            [
                "{",
                "match",
                "{",
                "source",
                "10.0.0.0/24",
                ";",
                "destination-port",
                "[",
                "=80",
                "=443",
                "]",
                ";",
                "}",
                "then",
                "{",
                "discard",
                ";",
                "}",
                "}"
            ]
        );
        assert_eq!(
            tokenize("10.0.0.0/8 as-path [65010 65020]"),
            ["10.0.0.0/8", "as-path", "[", "65010", "65020", "]"]
        );
        assert!(tokenize("  \t ").is_empty());
        // Any Unicode white space separates words, as str::split_whitespace does.
        assert_eq!(
            tokenize("a\u{a0}b\u{3000}[c]d;"),
            ["a", "b", "[", "c", "]", "d", ";"]
        );
        assert_eq!(tokenize("é{"), ["é", "{"]);
    }
}
