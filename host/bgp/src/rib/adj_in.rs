use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{flow_family_slot, flow_slot};
use crate::packet::attributes::PathAttributes;
use crate::packet::flowspec::FlowSpec;
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

/// One route received: its attributes as received, and what the import policy made of
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteIn {
    /// As received (after RFC 7606 handling).
    pub received: Arc<PathAttributes>,
    /// As accepted by import policy (the same `Arc` when unchanged); `None`: rejected.
    pub accepted: Option<Arc<PathAttributes>>,
}

/// A change an UPDATE makes to one prefix: the attributes announced, or `None` for a
/// withdrawal (a looped announcement is one too).
pub type ReceivedChange = (Prefix, Option<Arc<PathAttributes>>);

/// The routes one neighbor sent us, after RFC 7606 handling, attributes shared per
/// UPDATE, each with the import policy's verdict beside it: one table serves both the
/// "as received" and the "accepted" views, so a route received costs one insertion
/// whether or not a policy judges it.
///
/// Hash tables, not B-trees: a route received is one insertion, and at a million
/// routes an ordered insert cost more than everything else wasmbgp does per route
/// (the profile of the exporter benchmark). The hasher is foldhash's, seeded at
/// random per table, so a peer cannot choose prefixes that collide; SipHash cost a
/// tenth of receiving a route. Iteration order is the table's: unspecified, but the
/// same for every walk while the table is unchanged.
#[derive(Debug, Default)]
pub struct AdjRibIn {
    v4: HashMap<Ipv4Prefix, RouteIn, foldhash::fast::RandomState>,
    v6: HashMap<Ipv6Prefix, RouteIn, foldhash::fast::RandomState>,
    /// Routes whose `accepted` is `Some`.
    accepted: usize,
    /// Routes kept from a session that ended gracefully (RFC 4724), until the peer
    /// sends them again or they are swept. Empty (no allocation) the rest of the time.
    stale_v4: HashSet<Ipv4Prefix, foldhash::fast::RandomState>,
    stale_v6: HashSet<Ipv6Prefix, foldhash::fast::RandomState>,
    /// FlowSpec rules, one table per family ([`flow_slot`]): counting or sweeping one
    /// never walks the other.
    flow: [HashMap<FlowSpec, RouteIn, foldhash::fast::RandomState>; 2],
    stale_flow: [HashSet<FlowSpec, foldhash::fast::RandomState>; 2],
}

impl AdjRibIn {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies an UPDATE, accepting every route as received (no import policy). From an
    /// eBGP neighbor, LOCAL_PREF is discarded (RFC 7606 §7.5); a route whose AS_PATH
    /// holds `local_as` is a loop and replaces nothing but is dropped (an earlier route
    /// for the prefix is withdrawn).
    pub fn apply(&mut self, update: &Update, ebgp: bool, local_as: u32) -> InChange {
        let mut changes = Vec::new();
        let mut change = Self::changes(update, ebgp, local_as, &mut changes);
        change.withdrawn = 0;
        for (prefix, announced) in changes {
            match announced {
                Some(attrs) => {
                    self.set(prefix, Some((attrs.clone(), Some(attrs))));
                }
                None => change.withdrawn += self.set(prefix, None) as usize,
            }
        }
        change
    }

    /// What an UPDATE changes, in order, without applying it: withdrawals first, then
    /// the announcements (withdrawals when they loop). `InChange::withdrawn` counts
    /// every withdrawal listed, present or not.
    pub fn changes(
        update: &Update,
        ebgp: bool,
        local_as: u32,
        out: &mut Vec<ReceivedChange>,
    ) -> InChange {
        let mut change = InChange::default();
        let mut withdraw = |p: Prefix, change: &mut InChange| {
            change.withdrawn += 1;
            out.push((p, None));
        };
        for p in &update.withdrawn {
            withdraw(Prefix::V4(*p), &mut change);
        }
        if let Some(u) = &update.mp_unreach {
            u.withdrawn
                .prefixes()
                .for_each(|p| withdraw(p, &mut change));
        }
        let reach = update.mp_reach.as_ref().map(|m| &m.nlri);
        if update.nlri.is_empty() && reach.is_none_or(MpNlri::is_empty) {
            return change;
        }
        let v4 = update.nlri.iter().map(|p| Prefix::V4(*p));
        let mp = reach.into_iter().flat_map(MpNlri::prefixes);
        if update.attributes.as_path.asns().any(|a| a == local_as) {
            for p in v4.chain(mp) {
                change.looped += 1;
                withdraw(p, &mut change);
            }
            return change;
        }
        let mut attrs = update.attributes.clone();
        if ebgp {
            attrs.local_pref = None;
        }
        let attrs = Arc::new(attrs);
        for p in v4.chain(mp) {
            out.push((p, Some(attrs.clone())));
            change.announced += 1;
        }
        change
    }

    /// Sets the route for `prefix` (attributes received, and accepted or not), or
    /// removes it with `None`. Returns true if a route was there before.
    pub fn set(
        &mut self,
        prefix: Prefix,
        route: Option<(Arc<PathAttributes>, Option<Arc<PathAttributes>>)>,
    ) -> bool {
        let new = route.map(|(received, accepted)| RouteIn { received, accepted });
        self.accepted += new.as_ref().is_some_and(|r| r.accepted.is_some()) as usize;
        // Received again (or withdrawn): no longer stale.
        match &prefix {
            Prefix::V4(p) if !self.stale_v4.is_empty() => {
                self.stale_v4.remove(p);
            }
            Prefix::V6(p) if !self.stale_v6.is_empty() => {
                self.stale_v6.remove(p);
            }
            Prefix::Flow(r) if !self.stale_flow[flow_slot(r)].is_empty() => {
                self.stale_flow[flow_slot(r)].remove(r);
            }
            _ => {}
        }
        let old = match (prefix, new) {
            (Prefix::V4(p), Some(r)) => self.v4.insert(p, r),
            (Prefix::V6(p), Some(r)) => self.v6.insert(p, r),
            (Prefix::Flow(f), Some(r)) => self.flow[flow_slot(&f)].insert(f, r),
            (Prefix::V4(p), None) => self.v4.remove(&p),
            (Prefix::V6(p), None) => self.v6.remove(&p),
            (Prefix::Flow(f), None) => self.flow[flow_slot(&f)].remove(&f),
        };
        self.accepted -= old.as_ref().is_some_and(|r| r.accepted.is_some()) as usize;
        old.is_some()
    }

    /// Marks every route of a family stale (its session ended gracefully);
    /// returns how many.
    pub fn mark_stale(&mut self, family: Family) -> usize {
        match family {
            Family::IPV4_UNICAST => {
                self.stale_v4.extend(self.v4.keys().copied());
                self.stale_v4.len()
            }
            Family::IPV6_UNICAST => {
                self.stale_v6.extend(self.v6.keys().copied());
                self.stale_v6.len()
            }
            _ => flow_family_slot(family).map_or(0, |i| {
                self.stale_flow[i].extend(self.flow[i].keys().cloned());
                self.stale_flow[i].len()
            }),
        }
    }

    /// Removes the routes of a family still stale; returns them, for the withdrawals
    /// they mean.
    pub fn sweep_stale(&mut self, family: Family) -> Vec<(Prefix, RouteIn)> {
        let mut gone = Vec::new();
        match family {
            Family::IPV4_UNICAST => {
                for p in std::mem::take(&mut self.stale_v4) {
                    if let Some(r) = self.v4.remove(&p) {
                        gone.push((Prefix::V4(p), r));
                    }
                }
            }
            Family::IPV6_UNICAST => {
                for p in std::mem::take(&mut self.stale_v6) {
                    if let Some(r) = self.v6.remove(&p) {
                        gone.push((Prefix::V6(p), r));
                    }
                }
            }
            _ => {
                if let Some(i) = flow_family_slot(family) {
                    for rule in std::mem::take(&mut self.stale_flow[i]) {
                        if let Some(r) = self.flow[i].remove(&rule) {
                            gone.push((Prefix::Flow(rule), r));
                        }
                    }
                }
            }
        }
        self.accepted -= gone.iter().filter(|(_, r)| r.accepted.is_some()).count();
        gone
    }

    /// Removes every route of a family; returns them.
    pub fn clear_family(&mut self, family: Family) -> Vec<(Prefix, RouteIn)> {
        let gone: Vec<(Prefix, RouteIn)> = match family {
            Family::IPV4_UNICAST => {
                self.stale_v4.clear();
                self.v4.drain().map(|(p, r)| (Prefix::V4(p), r)).collect()
            }
            Family::IPV6_UNICAST => {
                self.stale_v6.clear();
                self.v6.drain().map(|(p, r)| (Prefix::V6(p), r)).collect()
            }
            _ => match flow_family_slot(family) {
                Some(i) => {
                    self.stale_flow[i].clear();
                    let rules = self.flow[i].drain();
                    rules.map(|(f, r)| (Prefix::Flow(f), r)).collect()
                }
                None => Vec::new(),
            },
        };
        self.accepted -= gone.iter().filter(|(_, r)| r.accepted.is_some()).count();
        gone
    }

    /// Whether the route for `prefix` is stale.
    pub fn is_stale(&self, prefix: &Prefix) -> bool {
        match prefix {
            Prefix::V4(p) => self.stale_v4.contains(p),
            Prefix::V6(p) => self.stale_v6.contains(p),
            Prefix::Flow(r) => self.stale_flow[flow_slot(r)].contains(r),
        }
    }

    /// Number of stale routes.
    pub fn stale_len(&self) -> usize {
        let flows: usize = self.stale_flow.iter().map(HashSet::len).sum();
        self.stale_v4.len() + self.stale_v6.len() + flows
    }

    /// The route for `prefix`, if any.
    pub fn get(&self, prefix: &Prefix) -> Option<&RouteIn> {
        match prefix {
            Prefix::V4(p) => self.v4.get(p),
            Prefix::V6(p) => self.v6.get(p),
            Prefix::Flow(r) => self.flow[flow_slot(r)].get(r),
        }
    }

    /// Sets every route's `accepted` from `verdicts`, one per route in [`routes`]
    /// order (after the import policy changed).
    ///
    /// [`routes`]: Self::routes
    pub fn set_accepted(
        &mut self,
        verdicts: impl IntoIterator<Item = Option<Arc<PathAttributes>>>,
    ) {
        let mut verdicts = verdicts.into_iter();
        let mut accepted = 0;
        let routes = self.v4.values_mut().chain(self.v6.values_mut());
        let [flow4, flow6] = &mut self.flow;
        for route in routes.chain(flow4.values_mut()).chain(flow6.values_mut()) {
            route.accepted = verdicts.next().flatten();
            accepted += route.accepted.is_some() as usize;
        }
        self.accepted = accepted;
    }

    /// Forgets everything (the session went down).
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
        self.stale_v4.clear();
        self.stale_v6.clear();
        self.flow.iter_mut().for_each(HashMap::clear);
        self.stale_flow.iter_mut().for_each(HashSet::clear);
        self.accepted = 0;
    }

    /// Every route as received: prefix and attributes, IPv4 first, then IPv6, then
    /// FlowSpec rules, in table order.
    pub fn routes(&self) -> impl Iterator<Item = (Prefix, &Arc<PathAttributes>)> {
        let v4 = self.v4.iter().map(|(p, r)| (Prefix::V4(*p), &r.received));
        let v6 = self.v6.iter().map(|(p, r)| (Prefix::V6(*p), &r.received));
        let flow = self.flow.iter().flatten();
        let flow = flow.map(|(f, r)| (Prefix::Flow(f.clone()), &r.received));
        v4.chain(v6).chain(flow)
    }

    /// Every route accepted by import policy, with its accepted attributes, in the
    /// same order.
    pub fn accepted_routes(&self) -> impl Iterator<Item = (Prefix, &Arc<PathAttributes>)> {
        let v4 = self
            .v4
            .iter()
            .filter_map(|(p, r)| r.accepted.as_ref().map(|a| (Prefix::V4(*p), a)));
        let v6 = self
            .v6
            .iter()
            .filter_map(|(p, r)| r.accepted.as_ref().map(|a| (Prefix::V6(*p), a)));
        let flow = self.flow.iter().flatten();
        let flow =
            flow.filter_map(|(f, r)| r.accepted.as_ref().map(|a| (Prefix::Flow(f.clone()), a)));
        v4.chain(v6).chain(flow)
    }

    /// Number of routes received of a family.
    pub fn len_family(&self, family: Family) -> usize {
        match family {
            Family::IPV4_UNICAST => self.v4.len(),
            Family::IPV6_UNICAST => self.v6.len(),
            _ => flow_family_slot(family).map_or(0, |i| self.flow[i].len()),
        }
    }

    /// Number of routes received.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.flow[0].len() + self.flow[1].len()
    }

    /// Number of routes accepted by import policy.
    pub fn accepted_len(&self) -> usize {
        self.accepted
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
    fn changes_are_listed_in_order_and_verdicts_kept_beside_the_route() {
        let u = Update {
            nlri: vec!["10.0.0.0/24".parse().unwrap()],
            withdrawn: vec!["10.9.0.0/24".parse().unwrap()],
            ..Default::default()
        };
        let mut changes = Vec::new();
        AdjRibIn::changes(&u, false, 65001, &mut changes);
        let p = |s: &str| Prefix::V4(s.parse().unwrap());
        assert_eq!(changes[0], (p("10.9.0.0/24"), None));
        assert_eq!(changes[1].0, p("10.0.0.0/24"));
        let mut rib = AdjRibIn::new();
        let received = changes[1].1.clone().unwrap();
        rib.set(p("10.0.0.0/24"), Some((received.clone(), None)));
        rib.set(
            p("10.1.0.0/24"),
            Some((received.clone(), Some(received.clone()))),
        );
        assert_eq!((rib.len(), rib.accepted_len()), (2, 1));
        assert_eq!(rib.accepted_routes().count(), 1);
        // Verdicts go in the table's own order, whatever it is.
        let first = rib.routes().next().unwrap().0;
        rib.set_accepted([Some(received.clone()), None]);
        let accepted: Vec<Prefix> = rib.accepted_routes().map(|(p, _)| p).collect();
        assert_eq!(accepted, vec![first.clone()]);
        assert!(rib.set(first, None));
        assert_eq!((rib.len(), rib.accepted_len()), (1, 0));
    }

    #[test]
    fn stale_routes_until_received_again_or_swept() {
        let mut rib = AdjRibIn::new();
        let attrs = Arc::new(PathAttributes::default());
        let route = |a: &Arc<PathAttributes>| Some((a.clone(), Some(a.clone())));
        let p = |s: &str| -> Prefix { s.parse().unwrap() };
        for s in ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "2001:db8::/64"] {
            rib.set(p(s), route(&attrs));
        }
        assert_eq!(rib.mark_stale(Family::IPV4_UNICAST), 3);
        assert_eq!(rib.stale_len(), 3);
        assert!(rib.is_stale(&p("10.0.0.0/24")) && !rib.is_stale(&p("2001:db8::/64")));
        // Received again: fresh. Withdrawn: gone, and not swept twice.
        rib.set(p("10.0.0.0/24"), route(&attrs));
        rib.set(p("10.0.1.0/24"), None);
        assert!(!rib.is_stale(&p("10.0.0.0/24")));
        assert_eq!((rib.len(), rib.accepted_len(), rib.stale_len()), (3, 3, 1));
        let gone = rib.sweep_stale(Family::IPV4_UNICAST);
        assert_eq!(
            gone.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
            vec![p("10.0.2.0/24")]
        );
        assert_eq!((rib.len(), rib.accepted_len(), rib.stale_len()), (2, 2, 0));
        assert!(rib.sweep_stale(Family::IPV4_UNICAST).is_empty());
        // A family cleared outright takes its stale marks with it.
        rib.mark_stale(Family::IPV6_UNICAST);
        assert_eq!(rib.clear_family(Family::IPV6_UNICAST).len(), 1);
        assert_eq!((rib.len(), rib.accepted_len(), rib.stale_len()), (1, 1, 0));
    }
}
