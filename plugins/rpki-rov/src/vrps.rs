//! Validated ROA payloads (VRPs) and RFC 6811 route origin validation,
//! without any host interface (tested natively).
//!
//! The file format is the JSON that rpki-client (`-j`) and Routinator
//! (`--format json`) write:
//!
//! ```json
//! {"metadata": {...}, "roas": [{"asn": "AS65001", "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "ripe"}, ...]}
//! ```
//!
//! `asn` may be "AS65001" or a number; `maxLength` defaults to the prefix
//! length; other fields, here and at the top level, are ignored.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use wasmbgp_sdk::{Prefix, PrefixMap, parse_asn};

/// What a VRP authorizes: origin `asn` for prefixes up to `max_length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Authorization {
    asn: u32,
    max_length: u8,
}

/// The outcome of route origin validation (RFC 6811, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// A VRP covers the prefix with the route's origin AS and a max length
    /// at least the prefix's.
    Valid,
    /// VRPs cover the prefix, none matches.
    Invalid,
    /// No VRP covers the prefix.
    NotFound,
}

/// A VRP set, indexed by prefix.
pub struct Vrps {
    /// Per distinct VRP prefix, the range of its authorizations.
    by_prefix: PrefixMap<(u32, u32)>,
    /// Authorizations, grouped by prefix.
    authorizations: Vec<Authorization>,
}

impl Vrps {
    /// Builds the set from (prefix, origin AS, max length) triples.
    pub fn new(vrps: impl IntoIterator<Item = (Prefix, u32, u8)>) -> Vrps {
        let mut all: Vec<(Prefix, Authorization)> = vrps
            .into_iter()
            .map(|(prefix, asn, max_length)| (prefix, Authorization { asn, max_length }))
            .collect();
        all.sort_unstable();
        all.dedup();
        let mut groups: Vec<(Prefix, (u32, u32))> = Vec::new();
        let mut authorizations = Vec::with_capacity(all.len());
        for (prefix, authorization) in all {
            // Fewer than 2^32 VRPs: a JSON file would be far beyond any
            // memory grant first.
            let index = authorizations.len() as u32;
            match groups.last_mut() {
                Some((last, (_, count))) if *last == prefix => *count += 1,
                _ => groups.push((prefix, (index, 1))),
            }
            authorizations.push(authorization);
        }
        Vrps {
            by_prefix: groups.into_iter().collect(),
            authorizations,
        }
    }

    /// Parses a VRP file (see the module documentation).
    pub fn from_json(json: &[u8]) -> Result<Vrps, String> {
        let file: VrpFile = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        Ok(Vrps::new(file.roas.0))
    }

    /// The number of distinct VRPs.
    pub fn len(&self) -> usize {
        self.authorizations.len()
    }

    /// True when the set holds no VRP.
    pub fn is_empty(&self) -> bool {
        self.authorizations.is_empty()
    }

    /// The number of distinct VRP prefixes.
    pub fn prefixes(&self) -> usize {
        self.by_prefix.len()
    }

    /// Validates a route to `prefix` from origin AS `origin` (`None`: the
    /// path ends in an AS_SET, the origin is NONE and matches no VRP).
    /// A VRP for AS 0 matches nothing (RFC 6483, 4).
    pub fn validate(&self, prefix: &Prefix, origin: Option<u32>) -> Validity {
        let mut covered = false;
        for (_, &(start, count)) in self.by_prefix.covering(prefix) {
            covered = true;
            let Some(origin) = origin else { break };
            let range = start as usize..start as usize + count as usize;
            let authorizations = self.authorizations.get(range).unwrap_or_default();
            if authorizations
                .iter()
                .any(|a| a.asn == origin && a.asn != 0 && prefix.length() <= a.max_length)
            {
                return Validity::Valid;
            }
        }
        if covered {
            Validity::Invalid
        } else {
            Validity::NotFound
        }
    }
}

/// The top level of a VRP file.
#[derive(Deserialize)]
struct VrpFile {
    roas: RoaList,
}

/// The `roas` array, checked and made compact element by element (a
/// global VRP set has most of a million entries: no intermediate tree).
struct RoaList(Vec<(Prefix, u32, u8)>);

impl<'de> Deserialize<'de> for RoaList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(RoaListVisitor)
    }
}

struct RoaListVisitor;

impl<'de> Visitor<'de> for RoaListVisitor {
    type Value = RoaList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of ROAs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RoaList, A::Error> {
        let mut vrps = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(roa) = seq.next_element::<Roa<'de>>()? {
            let vrp = roa
                .check()
                .map_err(|e| de::Error::custom(format!("roas[{}]: {e}", vrps.len())))?;
            vrps.push(vrp);
        }
        Ok(RoaList(vrps))
    }
}

/// One element of `roas`, as written.
#[derive(Deserialize)]
struct Roa<'a> {
    asn: AsnField,
    #[serde(borrow)]
    prefix: Cow<'a, str>,
    #[serde(rename = "maxLength")]
    max_length: Option<u8>,
}

impl Roa<'_> {
    fn check(&self) -> Result<(Prefix, u32, u8), String> {
        let prefix: Prefix = self.prefix.parse().map_err(|e| format!("{e}"))?;
        let max_length = self.max_length.unwrap_or(prefix.length());
        if max_length < prefix.length() || max_length > prefix.max_length() {
            return Err(format!(
                "maxLength {max_length} is outside {}..={} for {prefix}",
                prefix.length(),
                prefix.max_length()
            ));
        }
        Ok((prefix, self.asn.0, max_length))
    }
}

/// `"AS65001"` or `65001`.
struct AsnField(u32);

impl<'de> Deserialize<'de> for AsnField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AsnVisitor)
    }
}

struct AsnVisitor;

impl Visitor<'_> for AsnVisitor {
    type Value = AsnField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AS number (\"AS65001\" or 65001)")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<AsnField, E> {
        u32::try_from(value)
            .map(AsnField)
            .map_err(|_| E::custom(format!("AS number {value} is above 4294967295")))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<AsnField, E> {
        u64::try_from(value)
            .map_err(|_| E::custom(format!("AS number {value} is negative")))
            .and_then(|v| self.visit_u64(v))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<AsnField, E> {
        parse_asn(value).map(AsnField).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    fn vrps() -> Vrps {
        Vrps::from_json(
            br#"{
                "metadata": {"generated": 1700000000},
                "roas": [
                    {"asn": "AS65001", "prefix": "192.0.2.0/24", "maxLength": 24, "ta": "test"},
                    {"asn": 65002, "prefix": "198.51.100.0/22", "maxLength": 24, "expires": 1},
                    {"asn": "AS65003", "prefix": "198.51.100.0/24", "maxLength": 24},
                    {"asn": "AS0", "prefix": "203.0.113.0/24", "maxLength": 32},
                    {"asn": "AS65001", "prefix": "2001:db8::/32", "maxLength": 48},
                    {"asn": "AS65001", "prefix": "2001:db8::/32", "maxLength": 48}
                ]
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn rfc_6811_outcomes() {
        let v = vrps();
        assert_eq!(v.len(), 5, "duplicates count once");
        // Covered, matching origin and length.
        assert_eq!(v.validate(&p("192.0.2.0/24"), Some(65001)), Validity::Valid);
        // Covered, wrong origin.
        assert_eq!(
            v.validate(&p("192.0.2.0/24"), Some(65099)),
            Validity::Invalid
        );
        // Covered, too specific for maxLength.
        assert_eq!(
            v.validate(&p("192.0.2.0/25"), Some(65001)),
            Validity::Invalid
        );
        // Not covered (less specific than the VRP).
        assert_eq!(
            v.validate(&p("192.0.0.0/16"), Some(65001)),
            Validity::NotFound
        );
        assert_eq!(
            v.validate(&p("10.0.0.0/8"), Some(65001)),
            Validity::NotFound
        );
        // Two covering VRPs: either one may match.
        assert_eq!(
            v.validate(&p("198.51.100.0/24"), Some(65002)),
            Validity::Valid
        );
        assert_eq!(
            v.validate(&p("198.51.100.0/24"), Some(65003)),
            Validity::Valid
        );
        assert_eq!(
            v.validate(&p("198.51.101.0/24"), Some(65003)),
            Validity::Invalid
        );
        assert_eq!(
            v.validate(&p("198.51.101.0/24"), Some(65002)),
            Validity::Valid
        );
        // Origin NONE (AS_SET): invalid when covered, not found otherwise.
        assert_eq!(v.validate(&p("192.0.2.0/24"), None), Validity::Invalid);
        assert_eq!(v.validate(&p("10.0.0.0/8"), None), Validity::NotFound);
        // AS0 authorizes no one, not even AS 0.
        assert_eq!(v.validate(&p("203.0.113.0/24"), Some(0)), Validity::Invalid);
        assert_eq!(
            v.validate(&p("203.0.113.0/24"), Some(65001)),
            Validity::Invalid
        );
        // IPv6.
        assert_eq!(
            v.validate(&p("2001:db8:1::/48"), Some(65001)),
            Validity::Valid
        );
        assert_eq!(
            v.validate(&p("2001:db8:1::/49"), Some(65001)),
            Validity::Invalid
        );
        assert_eq!(
            v.validate(&p("2001:db9::/32"), Some(65001)),
            Validity::NotFound
        );
    }

    #[test]
    fn max_length_defaults_to_the_prefix_length() {
        let v = Vrps::from_json(br#"{"roas": [{"asn": 1, "prefix": "10.0.0.0/8"}]}"#).unwrap();
        assert_eq!(v.validate(&p("10.0.0.0/8"), Some(1)), Validity::Valid);
        assert_eq!(v.validate(&p("10.0.0.0/9"), Some(1)), Validity::Invalid);
    }

    /// A global-table-sized file: 700,000 IPv4 and 150,000 IPv6 VRPs. Run
    /// with `cargo test --release -p rpki-rov full_table -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn full_table_cost() {
        use std::fmt::Write;
        let mut json = String::from("{\"metadata\": {\"roas\": 850000}, \"roas\": [\n");
        for i in 0..700_000u32 {
            let addr = std::net::Ipv4Addr::from(0x0100_0000 + (i << 8));
            let _ = writeln!(
                json,
                "{{\"asn\": \"AS{}\", \"prefix\": \"{addr}/24\", \"maxLength\": 24, \"ta\": \"test\"}},",
                64512 + i % 1000
            );
        }
        for i in 0..150_000u32 {
            let addr = std::net::Ipv6Addr::from((0x2a00_0000u128 + u128::from(i)) << 96);
            let _ = writeln!(
                json,
                "{{\"asn\": {}, \"prefix\": \"{addr}/32\", \"maxLength\": 48, \"ta\": \"test\"}},",
                64512 + i % 1000
            );
        }
        json.push_str("{\"asn\": 1, \"prefix\": \"10.0.0.0/8\", \"maxLength\": 8}]}");
        let start = std::time::Instant::now();
        let v = Vrps::from_json(json.as_bytes()).unwrap();
        println!(
            "{} MB of JSON, {} VRPs parsed and indexed in {:?}",
            json.len() / 1_000_000,
            v.len(),
            start.elapsed()
        );
        let start = std::time::Instant::now();
        let mut valid = 0;
        for i in 0..1_000_000u32 {
            let prefix = Prefix::V4 {
                addr: 0x0100_0000 + ((i % 800_000) << 8),
                len: 24,
            };
            valid += usize::from(v.validate(&prefix, Some(64512 + i % 1000)) == Validity::Valid);
        }
        println!("1M validations in {:?} ({valid} valid)", start.elapsed());
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            println!(
                "{}",
                status
                    .lines()
                    .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let error = |json: &str| Vrps::from_json(json.as_bytes()).err().unwrap();
        assert!(error("").contains("EOF"));
        assert!(error("{}").contains("missing field `roas`"));
        let e = error(
            r#"{"roas": [{"asn": 1, "prefix": "10.0.0.0/8"}, {"asn": 1, "prefix": "10.0.0.1/8"}]}"#,
        );
        assert!(e.contains("roas[1]") && e.contains("host bits"), "{e}");
        let e = error(r#"{"roas": [{"asn": 1, "prefix": "10.0.0.0/8", "maxLength": 7}]}"#);
        assert!(e.contains("maxLength 7"), "{e}");
        let e = error(r#"{"roas": [{"asn": 1, "prefix": "10.0.0.0/8", "maxLength": 33}]}"#);
        assert!(e.contains("maxLength 33"), "{e}");
        assert!(
            error(r#"{"roas": [{"asn": "ASx", "prefix": "10.0.0.0/8"}]}"#).contains("AS number")
        );
        assert!(error(r#"{"roas": [{"asn": -1, "prefix": "10.0.0.0/8"}]}"#).contains("negative"));
        assert!(
            error(r#"{"roas": [{"asn": 4294967296, "prefix": "10.0.0.0/8"}]}"#).contains("above")
        );
        assert!(error(r#"{"roas": [{"prefix": "10.0.0.0/8"}]}"#).contains("missing field `asn`"));
    }
}
