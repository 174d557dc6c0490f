//! Helpers on the WIT route attributes: a constructor for originated
//! routes, builder methods, and the AS-path questions policies ask.

use std::fmt;

use crate::text::{Community, ExtendedCommunity, LargeCommunity};
use crate::types::{AsSegment, Attributes, IpAddress, Origin, SegmentKind};

/// The index of `attributes` among `sets`, added if new: how the test builders of
/// policy batches and exporter updates share each distinct set, as the host does.
pub(crate) fn index_in(sets: &mut Vec<Attributes>, attributes: &Attributes) -> u32 {
    let i = match sets.iter().position(|a| a == attributes) {
        Some(i) => i,
        None => {
            sets.push(attributes.clone());
            sets.len() - 1
        }
    };
    i as u32
}

impl Default for Attributes {
    /// Same as [`Attributes::new`].
    fn default() -> Self {
        Attributes::new()
    }
}

impl Attributes {
    /// The attributes of a route a plugin originates, with nothing set:
    /// origin IGP, empty AS path (the host prepends the local AS toward eBGP
    /// neighbors), next hop self (`None`), no MED, LOCAL_PREF, communities or
    /// other attributes.
    ///
    /// ```ignore
    /// let attributes = Attributes::new().with_med(100).with_community("65001:100".parse()?);
    /// routes::announce("192.0.2.1/32".parse()?, &attributes, &[])?;
    /// ```
    pub fn new() -> Self {
        Attributes {
            origin: Origin::Igp,
            as_path: Vec::new(),
            next_hop: None,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            extended_communities: Vec::new(),
            unknown: Vec::new(),
        }
    }

    /// With MULTI_EXIT_DISC `med`.
    pub fn with_med(mut self, med: u32) -> Self {
        self.med = Some(med);
        self
    }

    /// With LOCAL_PREF `local_pref` (sent to iBGP neighbors only).
    pub fn with_local_pref(mut self, local_pref: u32) -> Self {
        self.local_pref = Some(local_pref);
        self
    }

    /// With the next hop `addr` instead of self.
    pub fn with_next_hop(mut self, addr: impl Into<IpAddress>) -> Self {
        self.next_hop = Some(addr.into());
        self
    }

    /// With ORIGIN `origin`.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// With an AS path of any segments, leftmost first: `&[(SegmentKind::Sequence,
    /// &[65001, 65002]), (SegmentKind::Set, &[65010, 65011])]`.
    pub fn with_segments(mut self, segments: &[(SegmentKind, &[u32])]) -> Self {
        self.as_path = segments
            .iter()
            .map(|(kind, asns)| AsSegment {
                kind: *kind,
                asns: asns.to_vec(),
            })
            .collect();
        self
    }

    /// With the AS path `asns` (one AS_SEQUENCE, leftmost first; for an
    /// originated route, what comes after the local AS).
    pub fn with_as_path(mut self, asns: &[u32]) -> Self {
        self.as_path = if asns.is_empty() {
            Vec::new()
        } else {
            vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns: asns.to_vec(),
            }]
        };
        self
    }

    /// With the standard community `community` added (once).
    pub fn with_community(mut self, community: Community) -> Self {
        if !self.communities.contains(&community.0) {
            self.communities.push(community.0);
        }
        self
    }

    /// With the large community `community` added (once).
    pub fn with_large_community(mut self, community: LargeCommunity) -> Self {
        let value = community.into();
        if !self.large_communities.contains(&value) {
            self.large_communities.push(value);
        }
        self
    }

    /// With the extended community `community` added (once).
    pub fn with_extended_community(mut self, community: ExtendedCommunity) -> Self {
        if !self.extended_communities.contains(&community.0) {
            self.extended_communities.push(community.0);
        }
        self
    }

    /// True when the route carries the standard community `community`.
    pub fn has_community(&self, community: Community) -> bool {
        self.communities.contains(&community.0)
    }

    /// True when the route carries the large community `community`.
    pub fn has_large_community(&self, community: LargeCommunity) -> bool {
        self.large_communities.contains(&community.into())
    }

    /// True when the route carries the extended community `community`.
    pub fn has_extended_community(&self, community: ExtendedCommunity) -> bool {
        self.extended_communities.contains(&community.0)
    }

    /// The AS path length as the BGP decision process counts it (RFC 4271,
    /// 9.1.2.2 a): every ASN of an AS_SEQUENCE counts 1, an AS_SET counts 1
    /// whatever its size, confederation segments count 0 (RFC 5065).
    pub fn as_path_length(&self) -> u32 {
        self.as_path
            .iter()
            .map(|segment| match segment.kind {
                SegmentKind::Sequence => u32::try_from(segment.asns.len()).unwrap_or(u32::MAX),
                SegmentKind::Set => u32::from(!segment.asns.is_empty()),
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => 0,
            })
            .fold(0, u32::saturating_add)
    }

    /// True when `asn` appears anywhere in the AS path (any segment kind).
    pub fn as_path_contains(&self, asn: u32) -> bool {
        self.as_path
            .iter()
            .any(|segment| segment.asns.contains(&asn))
    }

    /// The origin AS (RFC 6811, 2): the last ASN of the path when the last
    /// segment, confederation segments aside, is an AS_SEQUENCE;
    /// [`OriginAs::Set`] when it is an AS_SET (the origin is NONE: no VRP
    /// can match); [`OriginAs::Empty`] when there is no such segment (a
    /// route originated in the local AS or confederation).
    pub fn origin_as(&self) -> OriginAs {
        let last = self.as_path.iter().rev().find(|s| {
            matches!(s.kind, SegmentKind::Sequence | SegmentKind::Set) && !s.asns.is_empty()
        });
        match last {
            None => OriginAs::Empty,
            Some(AsSegment {
                kind: SegmentKind::Set,
                ..
            }) => OriginAs::Set,
            Some(segment) => segment
                .asns
                .last()
                .map_or(OriginAs::Empty, |&asn| OriginAs::Asn(asn)),
        }
    }
}

/// The origin AS of a route's AS path; see [`Attributes::origin_as`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OriginAs {
    /// The path ends in an AS_SEQUENCE whose last ASN is this one.
    Asn(u32),
    /// The path ends in an AS_SET: the origin is NONE.
    Set,
    /// No AS_SEQUENCE or AS_SET at all (empty path, or confederation
    /// segments only).
    Empty,
}

impl fmt::Display for Origin {
    /// "igp", "egp" or "incomplete", as in the config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Igp => "igp",
            Origin::Egp => "egp",
            Origin::Incomplete => "incomplete",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segments: &[(SegmentKind, &[u32])]) -> Attributes {
        Attributes::new().with_segments(segments)
    }

    #[test]
    fn path_length_follows_rfc_4271() {
        use SegmentKind::*;
        assert_eq!(Attributes::new().as_path_length(), 0);
        assert_eq!(path(&[(Sequence, &[1, 2, 3])]).as_path_length(), 3);
        assert_eq!(
            path(&[(Sequence, &[1, 2]), (Set, &[3, 4, 5])]).as_path_length(),
            3
        );
        assert_eq!(
            path(&[
                (ConfedSequence, &[9, 9]),
                (Sequence, &[1]),
                (ConfedSet, &[7])
            ])
            .as_path_length(),
            1
        );
    }

    #[test]
    fn origin_as_follows_rfc_6811() {
        use SegmentKind::*;
        assert_eq!(Attributes::new().origin_as(), OriginAs::Empty);
        assert_eq!(
            path(&[(Sequence, &[1, 2, 3])]).origin_as(),
            OriginAs::Asn(3)
        );
        assert_eq!(
            path(&[(Sequence, &[1, 2]), (Set, &[3, 4])]).origin_as(),
            OriginAs::Set
        );
        assert_eq!(
            path(&[(Set, &[3, 4]), (Sequence, &[1, 2])]).origin_as(),
            OriginAs::Asn(2)
        );
        assert_eq!(
            path(&[(Sequence, &[1]), (ConfedSequence, &[9])]).origin_as(),
            OriginAs::Asn(1)
        );
        assert_eq!(path(&[(ConfedSequence, &[9])]).origin_as(), OriginAs::Empty);
    }

    #[test]
    fn builders() {
        let a = Attributes::new()
            .with_med(5)
            .with_community(Community::NO_EXPORT)
            .with_community(Community::NO_EXPORT)
            .with_as_path(&[65010]);
        assert_eq!(a.med, Some(5));
        assert_eq!(a.communities, vec![0xFFFF_FF01]);
        assert!(a.has_community(Community::NO_EXPORT));
        assert!(a.as_path_contains(65010));
        assert_eq!(a.next_hop, None);
    }
}
