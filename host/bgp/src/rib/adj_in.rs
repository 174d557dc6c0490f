use std::collections::BTreeMap;
use std::sync::Arc;

use crate::packet::attributes::PathAttributes;
use crate::packet::prefix::{Family, Ipv4Prefix, Ipv6Prefix, Prefix};
use crate::packet::{MpNlri, Update};

/// What applying one UPDATE changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InChange {
    /// Prefixes added or replaced.
    pub announced: usize,
    /// Prefixes removed (that were present).
    pub withdrawn: usize,
    /// Announcements refused because our AS is in their path (loop, RFC 4271 §9.1.2).
    pub looped: usize,
}

/// The routes one neighbor sent us, after RFC 7606 handling, attributes shared per UPDATE.
#[derive(Debug, Default)]
pub struct AdjRibIn {
    v4: BTreeMap<Ipv4Prefix, Arc<PathAttributes>>,
    v6: BTreeMap<Ipv6Prefix, Arc<PathAttributes>>,
}

impl AdjRibIn {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies an UPDATE. From an eBGP neighbor, LOCAL_PREF is discarded (RFC 7606 §7.5);
    /// a route whose AS_PATH holds `local_as` is a loop and replaces nothing but is
    /// dropped (an earlier route for the prefix is withdrawn).
    pub fn apply(&mut self, update: &Update, ebgp: bool, local_as: u32) -> InChange {
        self.apply_and_list(update, ebgp, local_as, &mut Vec::new())
    }

    /// [`apply`](Self::apply), also listing in `changed` every prefix the UPDATE
    /// announced or withdrew (present before or not), for the import policy to follow.
    pub fn apply_and_list(
        &mut self,
        update: &Update,
        ebgp: bool,
        local_as: u32,
        changed: &mut Vec<Prefix>,
    ) -> InChange {
        let mut change = InChange::default();
        let mut withdraw = |rib: &mut Self, p: Prefix, change: &mut InChange| {
            change.withdrawn += rib.remove(&p) as usize;
            changed.push(p);
        };
        for p in &update.withdrawn {
            withdraw(self, Prefix::V4(*p), &mut change);
        }
        if let Some(u) = &update.mp_unreach {
            match &u.withdrawn {
                MpNlri::Ipv4(v) => v
                    .iter()
                    .for_each(|p| withdraw(self, Prefix::V4(*p), &mut change)),
                MpNlri::Ipv6(v) => v
                    .iter()
                    .for_each(|p| withdraw(self, Prefix::V6(*p), &mut change)),
                MpNlri::Other(_) => {}
            }
        }
        let reach = update.mp_reach.as_ref().map(|m| &m.nlri);
        if update.nlri.is_empty() && reach.is_none_or(MpNlri::is_empty) {
            return change;
        }
        let announced = update
            .nlri
            .iter()
            .map(|p| Prefix::V4(*p))
            .chain(match reach {
                Some(MpNlri::Ipv4(v)) => v.iter().map(|p| Prefix::V4(*p)).collect::<Vec<_>>(),
                Some(MpNlri::Ipv6(v)) => v.iter().map(|p| Prefix::V6(*p)).collect(),
                _ => Vec::new(),
            });
        if update.attributes.as_path.asns().any(|a| a == local_as) {
            let mut dropped = 0;
            for p in announced {
                dropped += 1;
                withdraw(self, p, &mut change);
            }
            change.looped = dropped;
            return change;
        }
        let mut attrs = update.attributes.clone();
        if ebgp {
            attrs.local_pref = None;
        }
        let attrs = Arc::new(attrs);
        for p in announced {
            self.insert(p, attrs.clone());
            changed.push(p);
            change.announced += 1;
        }
        change
    }

    /// The route for `prefix`, if any.
    pub fn get(&self, prefix: &Prefix) -> Option<&Arc<PathAttributes>> {
        match prefix {
            Prefix::V4(p) => self.v4.get(p),
            Prefix::V6(p) => self.v6.get(p),
        }
    }

    /// Adds or replaces the route for `prefix`.
    pub fn insert(&mut self, prefix: Prefix, attrs: Arc<PathAttributes>) {
        match prefix {
            Prefix::V4(p) => self.v4.insert(p, attrs),
            Prefix::V6(p) => self.v6.insert(p, attrs),
        };
    }

    /// Removes the route for `prefix`; false if there was none.
    pub fn remove(&mut self, prefix: &Prefix) -> bool {
        match prefix {
            Prefix::V4(p) => self.v4.remove(p).is_some(),
            Prefix::V6(p) => self.v6.remove(p).is_some(),
        }
    }

    /// Forgets everything (the session went down).
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    /// Every route: prefix and attributes, IPv4 first, in prefix order.
    pub fn routes(&self) -> impl Iterator<Item = (Prefix, &Arc<PathAttributes>)> {
        let v4 = self.v4.iter().map(|(p, a)| (Prefix::V4(*p), a));
        let v6 = self.v6.iter().map(|(p, a)| (Prefix::V6(*p), a));
        v4.chain(v6)
    }

    /// Number of routes of a unicast family.
    pub fn len_family(&self, family: Family) -> usize {
        match family {
            Family::IPV4_UNICAST => self.v4.len(),
            Family::IPV6_UNICAST => self.v6.len(),
            _ => 0,
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::MpUnreach;

    #[test]
    fn apply_announce_and_withdraw() {
        let mut rib = AdjRibIn::new();
        let u = Update {
            nlri: vec![
                "10.0.0.0/24".parse().unwrap(),
                "10.0.1.0/24".parse().unwrap(),
            ],
            attributes: PathAttributes {
                local_pref: Some(300),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            rib.apply(&u, true, 65001),
            InChange {
                announced: 2,
                withdrawn: 0,
                looped: 0
            }
        );
        assert_eq!(
            rib.routes().next().unwrap().1.local_pref,
            None,
            "eBGP LOCAL_PREF discarded"
        );
        let w = Update {
            withdrawn: vec![
                "10.0.0.0/24".parse().unwrap(),
                "10.9.0.0/24".parse().unwrap(),
            ],
            ..Default::default()
        };
        assert_eq!(
            rib.apply(&w, true, 65001),
            InChange {
                announced: 0,
                withdrawn: 1,
                looped: 0
            }
        );
        let w6 = Update {
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: MpNlri::Ipv6(vec![]),
            }),
            ..Default::default()
        };
        assert_eq!(rib.apply(&w6, true, 65001), InChange::default());
        assert_eq!(rib.len(), 1);
        // Our own AS in the path: a loop, and it replaces the earlier route.
        let looped = Update {
            nlri: vec!["10.0.1.0/24".parse().unwrap()],
            attributes: PathAttributes {
                as_path: crate::AsPath::from_sequence(vec![65000, 65001]),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            rib.apply(&looped, true, 65001),
            InChange {
                announced: 0,
                withdrawn: 1,
                looped: 1
            }
        );
        assert!(rib.is_empty());
    }

    #[test]
    fn changes_are_listed() {
        let mut rib = AdjRibIn::new();
        let mut changed = Vec::new();
        let u = Update {
            nlri: vec!["10.0.0.0/24".parse().unwrap()],
            withdrawn: vec!["10.9.0.0/24".parse().unwrap()],
            ..Default::default()
        };
        rib.apply_and_list(&u, false, 65001, &mut changed);
        assert_eq!(
            changed,
            vec![
                Prefix::V4("10.9.0.0/24".parse().unwrap()),
                Prefix::V4("10.0.0.0/24".parse().unwrap())
            ]
        );
        assert!(rib.get(&changed[1]).is_some());
    }
}
