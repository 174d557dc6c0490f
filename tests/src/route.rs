//! The route representation every peer driver parses its daemon's RIB into.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use anyhow::{Context, Result, bail};

/// BGP ORIGIN attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// IGP (0).
    Igp,
    /// EGP (1).
    Egp,
    /// INCOMPLETE (2).
    Incomplete,
}

impl Origin {
    /// Parses the usual spellings: `igp`, `IGP`, `i`, `egp`, `incomplete`, `?`, 0/1/2.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "igp" | "i" | "0" => Self::Igp,
            "egp" | "e" | "1" => Self::Egp,
            "incomplete" | "?" | "2" => Self::Incomplete,
            other => bail!("unknown origin {other:?}"),
        })
    }

    /// The lowercase keyword used by wasmbgp's config and ctl.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Igp => "igp",
            Self::Egp => "egp",
            Self::Incomplete => "incomplete",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// Address family of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

/// One route with the path attributes the interop tests compare.
///
/// Absent attributes are `None` or empty. Communities are `"ASN:VALUE"`,
/// large communities `"GLOBAL:LOCAL1:LOCAL2"`, prefixes and next hops in
/// canonical Rust `IpAddr` formatting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Canonical prefix, e.g. `10.0.0.0/24` or `2001:db8::/48`.
    pub prefix: String,
    /// Next hop address.
    pub next_hop: Option<String>,
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH flattened to a list of AS numbers (sets are not used here).
    pub as_path: Vec<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// Standard communities.
    pub communities: Vec<String>,
    /// Large communities.
    pub large_communities: Vec<String>,
    /// Extended communities in wasmbgp's spelling: `target:65001:7`,
    /// `origin:65001:7` (see [`ext_community`]).
    pub extended_communities: Vec<String>,
}

impl Route {
    /// A route for `prefix` (canonicalised) without attributes.
    pub fn new(prefix: &str) -> Result<Self> {
        Ok(Self {
            prefix: canonical_prefix(prefix)?,
            ..Self::default()
        })
    }

    /// The route's address family.
    pub fn family(&self) -> Family {
        family_of(&self.prefix)
    }

    /// Compares the attributes listed in `check` against `expected` and
    /// returns a description of every difference.
    pub fn differences(&self, expected: &Route, check: &AttrCheck) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut compare = |name: &str, enabled: bool, got: String, want: String| {
            if enabled && got != want {
                diffs.push(format!("{name}: got {got}, expected {want}"));
            }
        };
        compare("prefix", true, self.prefix.clone(), expected.prefix.clone());
        compare(
            "next hop",
            check.next_hop,
            format!("{:?}", self.next_hop),
            format!("{:?}", expected.next_hop),
        );
        compare(
            "origin",
            check.origin,
            format!("{:?}", self.origin),
            format!("{:?}", expected.origin),
        );
        compare(
            "as-path",
            check.as_path,
            format!("{:?}", self.as_path),
            format!("{:?}", expected.as_path),
        );
        compare(
            "med",
            check.med,
            format!("{:?}", self.med),
            format!("{:?}", expected.med),
        );
        compare(
            "local-pref",
            check.local_pref,
            format!("{:?}", self.local_pref),
            format!("{:?}", expected.local_pref),
        );
        compare(
            "communities",
            check.communities,
            format!("{:?}", sorted(&self.communities)),
            format!("{:?}", sorted(&expected.communities)),
        );
        compare(
            "large communities",
            check.large_communities,
            format!("{:?}", sorted(&self.large_communities)),
            format!("{:?}", sorted(&expected.large_communities)),
        );
        compare(
            "extended communities",
            check.extended_communities,
            format!("{:?}", sorted(&self.extended_communities)),
            format!("{:?}", sorted(&expected.extended_communities)),
        );
        diffs
    }
}

/// Which attributes [`Route::differences`] compares.
#[derive(Debug, Clone, Copy)]
pub struct AttrCheck {
    /// Compare the next hop.
    pub next_hop: bool,
    /// Compare ORIGIN.
    pub origin: bool,
    /// Compare AS_PATH.
    pub as_path: bool,
    /// Compare MED.
    pub med: bool,
    /// Compare LOCAL_PREF (only meaningful on iBGP sessions).
    pub local_pref: bool,
    /// Compare standard communities.
    pub communities: bool,
    /// Compare large communities.
    pub large_communities: bool,
    /// Compare extended communities.
    pub extended_communities: bool,
}

impl AttrCheck {
    /// Every attribute.
    pub const ALL: Self = Self {
        next_hop: true,
        origin: true,
        as_path: true,
        med: true,
        local_pref: true,
        communities: true,
        large_communities: true,
        extended_communities: true,
    };
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// Canonicalises `addr/len` (also accepts a bare address as a host route).
pub fn canonical_prefix(text: &str) -> Result<String> {
    let text = text.trim();
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .with_context(|| format!("bad prefix address in {text:?}"))?;
    let len: u8 = match len {
        Some(len) => len
            .parse()
            .with_context(|| format!("bad prefix length in {text:?}"))?,
        None if addr.is_ipv4() => 32,
        None => 128,
    };
    Ok(format!("{addr}/{len}"))
}

/// Canonicalises an address.
pub fn canonical_addr(text: &str) -> Result<String> {
    let addr: IpAddr = text
        .trim()
        .parse()
        .with_context(|| format!("bad address {text:?}"))?;
    Ok(addr.to_string())
}

/// The family of a canonical prefix or address.
pub fn family_of(prefix: &str) -> Family {
    if prefix.contains(':') {
        Family::Ipv6
    } else {
        Family::Ipv4
    }
}

/// Indexes routes by prefix; a later route for the same prefix wins.
pub fn by_prefix(routes: impl IntoIterator<Item = Route>) -> BTreeMap<String, Route> {
    routes
        .into_iter()
        .map(|route| (route.prefix.clone(), route))
        .collect()
}

/// Counts the routes of each family.
pub fn count_families(routes: &[Route]) -> (usize, usize) {
    let v4 = routes
        .iter()
        .filter(|route| route.family() == Family::Ipv4)
        .count();
    (v4, routes.len() - v4)
}

/// Normalises a route-target/route-origin extended community from the
/// daemons' spellings (`rt, 65001, 7`, `RT:65001:7`, `SoO:...`, `ro:...`) to
/// `target:65001:7` / `origin:65001:7`; anything else is kept as given.
pub fn ext_community(text: &str) -> String {
    let parts: Vec<&str> = text.split([',', ':']).map(str::trim).collect();
    match parts.as_slice() {
        [kind, rest @ ..] if !rest.is_empty() => {
            let kind = match kind.to_ascii_lowercase().as_str() {
                "rt" | "target" => "target".to_owned(),
                "ro" | "soo" | "origin" => "origin".to_owned(),
                other => other.to_owned(),
            };
            format!("{kind}:{}", rest.join(":"))
        }
        _ => text.trim().to_owned(),
    }
}
