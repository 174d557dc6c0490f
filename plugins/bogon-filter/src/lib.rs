//! `bogon-filter`: on import, rejects prefixes that should never appear in
//! the global routing table; on export, accepts everything (the routes a
//! speaker originates are the operator's choice, and test setups announce
//! documentation prefixes on purpose).
//!
//! Rejected on import:
//! - IPv4 inside a special-purpose block (RFC 6890 and its successors):
//!   0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16,
//!   172.16.0.0/12, 192.0.0.0/24, 192.0.2.0/24, 192.168.0.0/16,
//!   198.18.0.0/15, 198.51.100.0/24, 203.0.113.0/24, 224.0.0.0/4,
//!   240.0.0.0/4;
//! - IPv6 outside 2000::/3 (global unicast), or inside ::/8, 100::/64,
//!   2001:db8::/32, fc00::/7, fe80::/10, fec0::/10, ff00::/8;
//! - IPv4 longer than /24 and IPv6 longer than /48.
//!
//! A prefix that merely contains a bogon (192.0.0.0/8) is not one. No
//! settings.

use wasmbgp_sdk::{
    DataFile, Direction, Error, Policy, Prefix, PrefixSet, Route, Settings, Verdict,
};

/// The IPv4 special-purpose blocks.
const V4_BOGONS: [&str; 14] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// The IPv6 special-purpose blocks. All but 2001:db8::/32 lie outside
/// 2000::/3 and are rejected by that rule already; they are listed so that
/// the list reads as the documentation says.
const V6_BOGONS: [&str; 7] = [
    "::/8",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// The longest IPv4 prefix accepted.
const MAX_V4_LENGTH: u8 = 24;
/// The longest IPv6 prefix accepted.
const MAX_V6_LENGTH: u8 = 48;

/// The policy: the bogon blocks, and the IPv6 global unicast block.
pub struct BogonFilter {
    bogons: PrefixSet,
    global_unicast: Prefix,
}

impl BogonFilter {
    /// True when `prefix` must not be accepted from a neighbor.
    pub fn is_bogon(&self, prefix: &Prefix) -> bool {
        let too_long = match prefix {
            Prefix::V4 { len, .. } => *len > MAX_V4_LENGTH,
            Prefix::V6 { len, .. } => *len > MAX_V6_LENGTH || !self.global_unicast.contains(prefix),
        };
        too_long || self.bogons.covers(prefix)
    }
}

impl Policy for BogonFilter {
    fn init(settings: &Settings, _files: &[DataFile]) -> Result<Self, Error> {
        settings.only(&[])?;
        let bogons = V4_BOGONS
            .iter()
            .chain(V6_BOGONS.iter())
            .map(|text| text.parse::<Prefix>())
            .collect::<Result<PrefixSet, _>>()?;
        Ok(BogonFilter {
            bogons,
            global_unicast: "2000::/3".parse()?,
        })
    }

    #[inline]
    fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
        if route.direction() == Direction::Import && self.is_bogon(&route.prefix()) {
            Verdict::Reject
        } else {
            Verdict::Accept
        }
    }
}

wasmbgp_sdk::export_policy!(BogonFilter);

#[cfg(test)]
mod tests {
    use wasmbgp_sdk::{Attributes, IpAddress, Session};

    use super::*;

    fn verdict(direction: Direction, prefix: &str) -> bool {
        let mut filter = BogonFilter::init(&Settings::default(), &[]).unwrap();
        let session = Session {
            neighbor: IpAddress::V4(0x7f00_0002),
            peer_as: 65000,
            local_as: 65001,
        };
        let attributes = Attributes::new();
        let route = Route::new(direction, &session, prefix.parse().unwrap(), &attributes);
        matches!(filter.evaluate(&route), Verdict::Accept)
    }

    #[test]
    fn rejects_bogons_on_import() {
        for bogon in V4_BOGONS.iter().chain(V6_BOGONS.iter()) {
            assert!(!verdict(Direction::Import, bogon), "{bogon}");
        }
        for bogon in [
            "10.1.2.0/24",
            "192.0.2.0/25",
            "8.8.8.0/25",
            "2001:db8:1::/48",
            "3000::/49",
            "4000::/16",
            "::/0",
            "fd00::/8",
        ] {
            assert!(!verdict(Direction::Import, bogon), "{bogon}");
        }
    }

    #[test]
    fn accepts_the_rest() {
        for good in [
            "8.8.8.0/24",
            "192.0.0.0/8",
            "0.0.0.0/0",
            "11.0.0.0/8",
            "2001:db9::/32",
            "2a00::/12",
            "2000::/3",
        ] {
            assert!(verdict(Direction::Import, good), "{good}");
        }
    }

    #[test]
    fn accepts_everything_on_export() {
        for prefix in [
            "192.0.2.0/24",
            "10.0.0.0/8",
            "2001:db8::/32",
            "192.0.2.1/32",
        ] {
            assert!(verdict(Direction::Export, prefix), "{prefix}");
        }
    }

    #[test]
    fn refuses_settings() {
        let settings = Settings::new(vec![("strict".into(), "yes".into())]);
        let error = BogonFilter::init(&settings, &[]).err().unwrap().to_string();
        assert!(error.contains("unknown setting(s): strict"), "{error}");
    }
}
