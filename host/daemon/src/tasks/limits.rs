//! Max-prefixes: what a neighbor's received route counts mean against its limits. Pure;
//! the speaker feeds it the counts after each batch of UPDATEs and acts on its answers.

use wasmbgp_bgp::Family;

use crate::config::PrefixLimit;

/// How many families are counted.
pub const FAMILY_COUNT: usize = Family::CARRIED.len();

/// The families counted, in the order of the counts given to [`LimitWatch`].
pub const FAMILIES: [Family; FAMILY_COUNT] = Family::CARRIED;

/// Where `family` is in [`FAMILIES`] (every family a session negotiates is there).
pub fn family_index(family: Family) -> usize {
    family.carried_index().unwrap_or(0)
}

/// A limit crossed upwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// The warning percentage of the limit was reached.
    Warning {
        /// The family.
        family: Family,
        /// Routes received.
        count: usize,
        /// The limit.
        limit: u32,
    },
    /// More routes than the limit.
    Exceeded {
        /// The family.
        family: Family,
        /// Routes received.
        count: usize,
        /// The limit.
        limit: u32,
    },
}

/// Which limits a neighbor is past, so that each crossing is reported once (and again
/// only after the count fell back below). A count that jumps past the limit in one
/// batch is reported exceeded only: the warning would come with the Cease.
#[derive(Debug, Default, Clone)]
pub struct LimitWatch {
    warned: [bool; FAMILY_COUNT],
    exceeded: [bool; FAMILY_COUNT],
}

impl LimitWatch {
    /// The crossings since the last check, given the routes received per family.
    pub fn check(&mut self, limit: &PrefixLimit, counts: [usize; FAMILY_COUNT]) -> Vec<Crossing> {
        let mut out = Vec::new();
        for (i, family) in FAMILIES.into_iter().enumerate() {
            let Some(max) = limit.limits.get(family) else {
                continue;
            };
            let count = counts[i];
            let warn_at = (u64::from(max) * u64::from(limit.warning_percent)).div_ceil(100);
            let warned = count as u64 >= warn_at.max(1);
            if warned && !self.warned[i] && count <= max as usize {
                out.push(Crossing::Warning {
                    family,
                    count,
                    limit: max,
                });
            }
            self.warned[i] = warned;
            let exceeded = count > max as usize;
            if exceeded && !self.exceeded[i] {
                out.push(Crossing::Exceeded {
                    family,
                    count,
                    limit: max,
                });
            }
            self.exceeded[i] = exceeded;
        }
        out
    }

    /// The session went down: the counts start again.
    pub fn reset(&mut self) {
        *self = LimitWatch::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FamilyLimits, LimitAction};

    fn limit(all: Option<u32>, families: Vec<(Family, u32)>) -> PrefixLimit {
        PrefixLimit {
            limits: FamilyLimits { all, families },
            action: LimitAction::Cease,
            restart: None,
            warning_percent: 90,
        }
    }

    #[test]
    fn each_crossing_is_reported_once() {
        let l = limit(Some(10), vec![]);
        let mut w = LimitWatch::default();
        assert_eq!(w.check(&l, [8, 0, 0, 0]), vec![]);
        let warn = Crossing::Warning {
            family: Family::IPV4_UNICAST,
            count: 9,
            limit: 10,
        };
        assert_eq!(w.check(&l, [9, 0, 0, 0]), vec![warn]);
        assert_eq!(w.check(&l, [10, 0, 0, 0]), vec![]);
        let over = Crossing::Exceeded {
            family: Family::IPV4_UNICAST,
            count: 11,
            limit: 10,
        };
        assert_eq!(w.check(&l, [11, 0, 0, 0]), vec![over]);
        assert_eq!(w.check(&l, [12, 0, 0, 0]), vec![]);
        // Back below, then over again: reported again.
        assert_eq!(w.check(&l, [5, 0, 0, 0]), vec![]);
        assert_eq!(
            w.check(&l, [11, 0, 0, 0]),
            vec![Crossing::Exceeded {
                family: Family::IPV4_UNICAST,
                count: 11,
                limit: 10
            }]
        );
        w.reset();
        assert_eq!(w.check(&l, [11, 0, 0, 0]).len(), 1);
    }

    #[test]
    fn per_family_limits_override_the_common_one() {
        let l = limit(Some(100), vec![(Family::IPV6_UNICAST, 2)]);
        let mut w = LimitWatch::default();
        let got = w.check(&l, [50, 3, 0, 0]);
        assert_eq!(
            got,
            vec![Crossing::Exceeded {
                family: Family::IPV6_UNICAST,
                count: 3,
                limit: 2
            }]
        );
        let none = limit(None, vec![(Family::IPV6_UNICAST, 2)]);
        assert_eq!(
            LimitWatch::default().check(&none, [1_000_000, 0, 0, 0]),
            vec![]
        );
    }
}
