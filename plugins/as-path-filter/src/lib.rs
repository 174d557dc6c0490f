//! `as-path-filter`: rejects routes whose AS path contains a denied AS or
//! is too long, in both directions; accepts the rest unchanged.
//!
//! Settings (at least one of them):
//! - `deny-asns`: comma-separated AS numbers ("64512, AS65010, 1.10"); a
//!   route is rejected when any segment of its AS path (sequence, set or
//!   confederation segment) holds one of them.
//! - `max-length`: a route is rejected when its AS path is longer than this
//!   many hops, counted as the BGP decision process counts them (RFC 4271,
//!   9.1.2.2): each ASN of an AS_SEQUENCE is one hop, an AS_SET is one hop
//!   whatever its size, confederation segments count nothing.
//!
//! The verdict depends on the attributes only, so it is computed once per
//! distinct attribute set of a batch and looked up for every other route.

use wasmbgp_sdk::{Asn, Attributes, BatchInfo, DataFile, Error, Policy, Route, Settings, Verdict};

/// The policy.
pub struct AsPathFilter {
    /// Denied ASNs, sorted, for binary search.
    deny: Vec<u32>,
    max_length: Option<u32>,
    /// Per attribute set of the current batch: `Some(reject?)` once known.
    cache: Vec<Option<bool>>,
}

impl AsPathFilter {
    /// True when a route with `attributes` must be rejected.
    pub fn rejects(&self, attributes: &Attributes) -> bool {
        if self
            .max_length
            .is_some_and(|max| attributes.as_path_length() > max)
        {
            return true;
        }
        !self.deny.is_empty()
            && attributes
                .as_path
                .iter()
                .flat_map(|segment| segment.asns.iter())
                .any(|asn| self.deny.binary_search(asn).is_ok())
    }
}

impl Policy for AsPathFilter {
    fn init(settings: &Settings, _files: &[DataFile]) -> Result<Self, Error> {
        settings.only(&["deny-asns", "max-length"])?;
        let mut deny: Vec<u32> = settings
            .parse_list::<Asn>("deny-asns")?
            .into_iter()
            .map(u32::from)
            .collect();
        if settings.get("deny-asns").is_some() && deny.is_empty() {
            return Err("setting `deny-asns` lists no AS number".into());
        }
        let max_length: Option<u32> = settings.parse("max-length")?;
        if deny.is_empty() && max_length.is_none() {
            return Err(
                "set `deny-asns`, `max-length` or both: with neither, the filter would do nothing"
                    .into(),
            );
        }
        deny.sort_unstable();
        deny.dedup();
        Ok(AsPathFilter {
            deny,
            max_length,
            cache: Vec::new(),
        })
    }

    fn begin_batch(&mut self, batch: &BatchInfo<'_>) {
        self.cache.clear();
        self.cache.resize(batch.attribute_sets.len(), None);
    }

    #[inline]
    fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
        let reject = match self.cache.get(route.attributes_index() as usize) {
            Some(&Some(known)) => known,
            Some(None) => {
                let reject = self.rejects(route.attributes());
                self.cache[route.attributes_index() as usize] = Some(reject);
                reject
            }
            // A route outside a batch (a unit test): no cache.
            None => self.rejects(route.attributes()),
        };
        if reject {
            Verdict::Reject
        } else {
            Verdict::Accept
        }
    }
}

wasmbgp_sdk::export_policy!(AsPathFilter);

#[cfg(test)]
mod tests {
    use wasmbgp_sdk::types::SegmentKind;

    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> Result<AsPathFilter, Error> {
        AsPathFilter::init(
            &Settings::new(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            &[],
        )
    }

    fn path(segments: &[(SegmentKind, &[u32])]) -> Attributes {
        Attributes::new().with_segments(segments)
    }

    #[test]
    fn denies_listed_asns_anywhere_in_the_path() {
        use SegmentKind::*;
        let f = filter(&[("deny-asns", "64512, AS65010")]).unwrap();
        assert!(f.rejects(&path(&[(Sequence, &[65000, 64512])])));
        assert!(f.rejects(&path(&[(Sequence, &[65000]), (Set, &[1, 65010])])));
        assert!(f.rejects(&path(&[(ConfedSequence, &[64512]), (Sequence, &[65000])])));
        assert!(!f.rejects(&path(&[(Sequence, &[65000, 65001])])));
        assert!(!f.rejects(&Attributes::new()));
    }

    #[test]
    fn counts_length_as_rfc_4271() {
        use SegmentKind::*;
        let f = filter(&[("max-length", "3")]).unwrap();
        assert!(!f.rejects(&path(&[(Sequence, &[1, 2, 3])])));
        assert!(f.rejects(&path(&[(Sequence, &[1, 2, 3, 4])])));
        assert!(!f.rejects(&path(&[(Sequence, &[1, 2]), (Set, &[3, 4, 5, 6])])));
        assert!(f.rejects(&path(&[(Sequence, &[1, 2, 3]), (Set, &[4])])));
        assert!(!f.rejects(&path(&[
            (ConfedSequence, &[7, 8, 9]),
            (Sequence, &[1, 2, 3])
        ])));
    }

    #[test]
    fn settings_errors_are_clear() {
        assert!(
            filter(&[])
                .err()
                .unwrap()
                .to_string()
                .contains("set `deny-asns`, `max-length` or both")
        );
        assert!(
            filter(&[("deny-asns", "")])
                .err()
                .unwrap()
                .to_string()
                .contains("lists no AS")
        );
        assert!(
            filter(&[("deny-asns", "65001, x")])
                .err()
                .unwrap()
                .to_string()
                .contains("`deny-asns`")
        );
        assert!(
            filter(&[("max-length", "-1")])
                .err()
                .unwrap()
                .to_string()
                .contains("`max-length`")
        );
        assert!(
            filter(&[("max-len", "3")])
                .err()
                .unwrap()
                .to_string()
                .contains("unknown setting")
        );
    }
}
