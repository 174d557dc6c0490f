use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::ExportPolicy;
use super::{flow_family_slot, flow_slot};
use crate::packet::UpdatePacker;
use crate::packet::attributes::{NextHop, PathAttributes};
use crate::packet::flowspec::FlowSpec;
use crate::packet::prefix::{Family, Ipv4Prefix, Ipv6Prefix, Prefix};

/// Identifies where a route came from (config, control socket, a plugin); the daemon keeps
/// the names.
pub type SourceId = u16;

/// An advertised route's attributes and source.
pub type Advertised = (Arc<PathAttributes>, SourceId);

#[derive(Debug, Clone)]
struct Entry {
    attrs: Arc<PathAttributes>,
    source: SourceId,
}

/// What one flush put on the wire.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// UPDATE messages written.
    pub messages: usize,
    /// Prefixes announced.
    pub announced: usize,
    /// Prefixes withdrawn.
    pub withdrawn: usize,
    /// Prefixes that could not be sent (no usable next hop for the family).
    pub skipped: usize,
    /// Of `announced`, per family in [`Family::CARRIED`] order.
    pub announced_by_family: [usize; 4],
    /// Of `withdrawn`, per family in the same order.
    pub withdrawn_by_family: [usize; 4],
}

impl FlushStats {
    fn count_announced(&mut self, family: Family, n: usize) {
        self.announced += n;
        if let Some(i) = family.carried_index() {
            self.announced_by_family[i] += n;
        }
    }

    fn count_withdrawn(&mut self, family: Family, n: usize) {
        self.withdrawn += n;
        if let Some(i) = family.carried_index() {
            self.withdrawn_by_family[i] += n;
        }
    }
}

/// What [`AdjRibOut::sync_source`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    /// Prefixes announced (new, or other attributes).
    pub announced: usize,
    /// Prefixes withdrawn.
    pub withdrawn: usize,
}

/// The routes one neighbor is to be sent, each remembering its source, with the set of
/// prefixes changed since the last flush.
///
/// When two sources announce the same prefix, the latest announcement is advertised and
/// the other is kept aside, to come back if the advertised one is withdrawn.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    v4: BTreeMap<Ipv4Prefix, Entry>,
    v6: BTreeMap<Ipv6Prefix, Entry>,
    /// Routes of other sources waiting behind the advertised one, by prefix then source.
    shadowed: BTreeMap<(Prefix, SourceId), Arc<PathAttributes>>,
    dirty_v4: BTreeSet<Ipv4Prefix>,
    dirty_v6: BTreeSet<Ipv6Prefix>,
    /// FlowSpec rules, one table per family ([`flow_slot`]).
    flow: [BTreeMap<FlowSpec, Entry>; 2],
    dirty_flow: [BTreeSet<FlowSpec>; 2],
}

/// Runs `$body` on the table and pending set of `$prefix`'s family, with `$key` the
/// owned key in that table.
macro_rules! by_family {
    ($self:ident, $prefix:expr, |$map:ident, $dirty:ident, $key:ident| $body:expr) => {
        match $prefix {
            Prefix::V4($key) => {
                let ($map, $dirty) = (&mut $self.v4, &mut $self.dirty_v4);
                $body
            }
            Prefix::V6($key) => {
                let ($map, $dirty) = (&mut $self.v6, &mut $self.dirty_v6);
                $body
            }
            Prefix::Flow($key) => {
                let i = flow_slot(&$key);
                let ($map, $dirty) = (&mut $self.flow[i], &mut $self.dirty_flow[i]);
                $body
            }
        }
    };
}

impl AdjRibOut {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads routes into an empty table without marking them changed (the whole table is
    /// sent when a session comes up). Later duplicates of a prefix replace earlier ones.
    pub fn load(
        &mut self,
        routes: impl IntoIterator<Item = (Prefix, Arc<PathAttributes>)>,
        source: SourceId,
    ) {
        for (prefix, attrs) in routes {
            let entry = Entry { attrs, source };
            match prefix {
                Prefix::V4(p) => self.v4.insert(p, entry),
                Prefix::V6(p) => self.v6.insert(p, entry),
                Prefix::Flow(f) => self.flow[flow_slot(&f)].insert(f, entry),
            };
        }
    }

    /// Announces `prefix` from `source`. Returns false if nothing changed.
    pub fn announce(
        &mut self,
        prefix: Prefix,
        attrs: Arc<PathAttributes>,
        source: SourceId,
    ) -> bool {
        if let Some((held, holder)) = self.get(&prefix)
            && holder == source
            && Arc::ptr_eq(held, &attrs)
        {
            return false;
        }
        let new = Entry { attrs, source };
        let old = by_family!(self, prefix.clone(), |map, dirty, key| {
            replace_entry(map, dirty, key, Some(new))
        });
        if let Some(old) = old.filter(|old| old.source != source) {
            self.shadowed.remove(&(prefix.clone(), source));
            self.shadowed.insert((prefix, old.source), old.attrs);
        }
        true
    }

    /// Withdraws `source`'s route for `prefix`. Returns false if it had none.
    pub fn withdraw(&mut self, prefix: Prefix, source: SourceId) -> bool {
        if self.shadowed.remove(&(prefix.clone(), source)).is_some() {
            return true;
        }
        let holder = self.get(&prefix).map(|(_, s)| s);
        if holder != Some(source) {
            return false;
        }
        let promoted = self
            .shadowed
            .range((prefix.clone(), SourceId::MIN)..=(prefix.clone(), SourceId::MAX))
            .next()
            .map(|(k, _)| k.clone());
        let promoted = promoted.and_then(|k| {
            let attrs = self.shadowed.remove(&k)?;
            Some(Entry { attrs, source: k.1 })
        });
        by_family!(self, prefix, |map, dirty, key| {
            replace_entry(map, dirty, key, promoted)
        });
        true
    }

    /// Makes `route` (attributes and source) the advertised route for `prefix`, or
    /// removes it with `None`, whatever source held it and without keeping anything
    /// aside: for a table whose content is decided elsewhere (what the speaker gives a
    /// neighbor). Returns false, marking nothing, if nothing changed.
    pub fn set(&mut self, prefix: Prefix, route: Option<Advertised>) -> bool {
        let new = route.map(|(attrs, source)| Entry { attrs, source });
        by_family!(self, prefix, |map, dirty, key| {
            set_entry(map, dirty, key, new)
        })
    }

    /// The changes since they were last taken (or flushed): each changed prefix with
    /// its advertised route now, `None` if it has none. Forgets them.
    pub fn take_changes(&mut self) -> Vec<(Prefix, Option<Advertised>)> {
        let dirty_v4 = std::mem::take(&mut self.dirty_v4);
        let dirty_v6 = std::mem::take(&mut self.dirty_v6);
        let dirty_flow = std::mem::take(&mut self.dirty_flow);
        let v4 = dirty_v4.into_iter().map(|p| {
            let route = self.v4.get(&p).map(|e| (e.attrs.clone(), e.source));
            (Prefix::V4(p), route)
        });
        let v6 = dirty_v6.into_iter().map(|p| {
            let route = self.v6.get(&p).map(|e| (e.attrs.clone(), e.source));
            (Prefix::V6(p), route)
        });
        let flow = dirty_flow.into_iter().flatten().map(|f| {
            let route = self.flow[flow_slot(&f)].get(&f);
            let route = route.map(|e| (e.attrs.clone(), e.source));
            (Prefix::Flow(f), route)
        });
        v4.chain(v6).chain(flow).collect()
    }

    /// A copy of the advertised routes only (nothing aside, nothing pending).
    pub fn advertised(&self) -> AdjRibOut {
        AdjRibOut {
            v4: self.v4.clone(),
            v6: self.v6.clone(),
            flow: self.flow.clone(),
            ..AdjRibOut::default()
        }
    }

    /// Keeps the advertised routes for which `judge` returns true, in table order (IPv4
    /// first, then IPv6, each by prefix), letting it change their attributes; marks
    /// nothing pending. One pass, no lookups: how a whole table goes through a policy.
    pub fn retain_routes(
        &mut self,
        mut judge: impl FnMut(Prefix, &mut Arc<PathAttributes>) -> bool,
    ) {
        self.v4.retain(|p, e| judge(Prefix::V4(*p), &mut e.attrs));
        self.v6.retain(|p, e| judge(Prefix::V6(*p), &mut e.attrs));
        for table in &mut self.flow {
            table.retain(|f, e| judge(Prefix::Flow(f.clone()), &mut e.attrs));
        }
    }

    /// Becomes `new` (advertised routes only), marking pending exactly the prefixes
    /// whose route changed (added, removed, other attributes or source): after a policy
    /// changed, only the differences go out. A merge of the two sorted tables.
    pub fn replace_with(&mut self, new: AdjRibOut) {
        fn diff<P: Ord + Clone>(
            old: &BTreeMap<P, Entry>,
            new: &BTreeMap<P, Entry>,
            dirty: &mut BTreeSet<P>,
        ) {
            let same =
                |a: &Entry, b: &Entry| a.source == b.source && Arc::ptr_eq(&a.attrs, &b.attrs);
            let (mut o, mut n) = (old.iter().peekable(), new.iter().peekable());
            loop {
                match (o.peek(), n.peek()) {
                    (None, None) => break,
                    (Some((p, _)), None) => {
                        dirty.insert((*p).clone());
                        o.next();
                    }
                    (None, Some((p, _))) => {
                        dirty.insert((*p).clone());
                        n.next();
                    }
                    (Some((po, eo)), Some((pn, en))) => match po.cmp(pn) {
                        std::cmp::Ordering::Less => {
                            dirty.insert((*po).clone());
                            o.next();
                        }
                        std::cmp::Ordering::Greater => {
                            dirty.insert((*pn).clone());
                            n.next();
                        }
                        std::cmp::Ordering::Equal => {
                            if !same(eo, en) {
                                dirty.insert((*po).clone());
                            }
                            o.next();
                            n.next();
                        }
                    },
                }
            }
        }
        diff(&self.v4, &new.v4, &mut self.dirty_v4);
        diff(&self.v6, &new.v6, &mut self.dirty_v6);
        for i in 0..2 {
            diff(&self.flow[i], &new.flow[i], &mut self.dirty_flow[i]);
        }
        self.v4 = new.v4;
        self.v6 = new.v6;
        self.flow = new.flow;
        self.shadowed.clear();
    }

    /// Withdraws every route of `source`; returns how many.
    pub fn withdraw_source(&mut self, source: SourceId) -> usize {
        let owned: Vec<Prefix> = self
            .routes()
            .filter(|r| r.2 == source)
            .map(|r| r.0)
            .collect();
        let shadow: Vec<Prefix> = self
            .shadowed
            .keys()
            .filter(|k| k.1 == source)
            .map(|k| k.0.clone())
            .collect();
        let n = owned.len() + shadow.len();
        for p in shadow.into_iter().chain(owned) {
            self.withdraw(p, source);
        }
        n
    }

    /// Sorts routes by prefix keeping the last of each prefix (as [`load`](Self::load)
    /// would): the form [`sync_source`](Self::sync_source) takes. One sorted list can
    /// serve every table that gets the same routes.
    pub fn sorted_routes(
        routes: impl IntoIterator<Item = (Prefix, Arc<PathAttributes>)>,
    ) -> Vec<(Prefix, Arc<PathAttributes>)> {
        let mut sorted: Vec<(Prefix, Arc<PathAttributes>)> = routes.into_iter().collect();
        // Stable, then keep the last of each prefix.
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.reverse();
        sorted.dedup_by(|a, b| a.0 == b.0);
        sorted.reverse();
        sorted
    }

    /// Makes `source`'s routes exactly `routes` (sorted by prefix, one per prefix:
    /// [`sorted_routes`](Self::sorted_routes)): announces the prefixes it did not have or
    /// whose attributes differ in value, withdraws those it no longer lists, and leaves
    /// alone a route equal in value to the one it has (a config reload reads its
    /// attributes anew; only what changed may reach the wire). A route of `source`
    /// waiting behind another source's stays behind it. Returns how many prefixes were
    /// announced and withdrawn. One walk of the table beside the list, nothing copied:
    /// a million routes per neighbor at a reload.
    pub fn sync_source(
        &mut self,
        source: SourceId,
        routes: &[(Prefix, Arc<PathAttributes>)],
    ) -> SyncStats {
        debug_assert!(routes.windows(2).all(|w| w[0].0 < w[1].0));
        // New attribute sets are few and shared by many routes (a route file's lines):
        // remember the last pair compared instead of comparing every route's fields.
        let mut last: Option<(*const PathAttributes, *const PathAttributes, bool)> = None;
        let mut same = |a: &Arc<PathAttributes>, b: &Arc<PathAttributes>| {
            if Arc::ptr_eq(a, b) {
                return true;
            }
            let key = (Arc::as_ptr(a), Arc::as_ptr(b));
            match last {
                Some((x, y, eq)) if (x, y) == key => eq,
                _ => {
                    let eq = a == b;
                    last = Some((key.0, key.1, eq));
                    eq
                }
            }
        };
        let mut announce: Vec<(Prefix, Arc<PathAttributes>)> = Vec::new();
        let mut withdraw: Vec<Prefix> = Vec::new();
        // The source's advertised routes, in prefix order, merged with the new list.
        {
            let advertised = self.routes().filter(|r| r.2 == source);
            let mut old = advertised.peekable();
            let mut new = routes.iter().peekable();
            loop {
                match (old.peek(), new.peek()) {
                    (None, None) => break,
                    (Some(o), None) => {
                        withdraw.push(o.0.clone());
                        old.next();
                    }
                    (None, Some(_)) => {
                        let (p, a) = new.next().expect("peeked");
                        self.consider_behind(source, p.clone(), a, &mut same, &mut announce);
                    }
                    (Some(o), Some(n)) => match o.0.cmp(&n.0) {
                        std::cmp::Ordering::Less => {
                            withdraw.push(o.0.clone());
                            old.next();
                        }
                        std::cmp::Ordering::Greater => {
                            let (p, a) = new.next().expect("peeked");
                            self.consider_behind(source, p.clone(), a, &mut same, &mut announce);
                        }
                        std::cmp::Ordering::Equal => {
                            if !same(o.1, &n.1) {
                                announce.push((n.0.clone(), n.1.clone()));
                            }
                            old.next();
                            new.next();
                        }
                    },
                }
            }
        }
        // The source's routes waiting behind others that the list no longer has.
        for (prefix, _) in self.shadowed.keys().filter(|k| k.1 == source) {
            if routes.binary_search_by(|r| r.0.cmp(prefix)).is_err() {
                withdraw.push(prefix.clone());
            }
        }
        let stats = SyncStats {
            announced: announce.len(),
            withdrawn: withdraw.len(),
        };
        for prefix in withdraw {
            self.withdraw(prefix, source);
        }
        for (prefix, attrs) in announce {
            // Behind another source's route it stays behind: a reload displaces nothing.
            match self.get(&prefix) {
                Some((_, holder)) if holder != source => {
                    self.shadowed.insert((prefix, source), attrs);
                }
                _ => {
                    self.announce(prefix, attrs, source);
                }
            }
        }
        stats
    }

    /// A listed route `source` does not advertise: new, unless it waits behind another
    /// source's with the same attributes.
    fn consider_behind(
        &self,
        source: SourceId,
        prefix: Prefix,
        attrs: &Arc<PathAttributes>,
        same: &mut impl FnMut(&Arc<PathAttributes>, &Arc<PathAttributes>) -> bool,
        announce: &mut Vec<(Prefix, Arc<PathAttributes>)>,
    ) {
        match self.shadowed.get(&(prefix.clone(), source)) {
            Some(waiting) if same(waiting, attrs) => {}
            _ => announce.push((prefix, attrs.clone())),
        }
    }

    /// The advertised route for `prefix`, if any.
    pub fn get(&self, prefix: &Prefix) -> Option<(&Arc<PathAttributes>, SourceId)> {
        let e = match prefix {
            Prefix::V4(p) => self.v4.get(p),
            Prefix::V6(p) => self.v6.get(p),
            Prefix::Flow(f) => self.flow[flow_slot(f)].get(f),
        };
        e.map(|e| (&e.attrs, e.source))
    }

    /// Every advertised route: prefix, attributes, source; IPv4 first, in prefix order.
    pub fn routes(&self) -> impl Iterator<Item = (Prefix, &Arc<PathAttributes>, SourceId)> {
        let v4 = self
            .v4
            .iter()
            .map(|(p, e)| (Prefix::V4(*p), &e.attrs, e.source));
        let v6 = self
            .v6
            .iter()
            .map(|(p, e)| (Prefix::V6(*p), &e.attrs, e.source));
        let flow = self.flow.iter().flatten();
        let flow = flow.map(|(f, e)| (Prefix::Flow(f.clone()), &e.attrs, e.source));
        v4.chain(v6).chain(flow)
    }

    /// Number of advertised routes of `family`.
    pub fn len_family(&self, family: Family) -> usize {
        match family {
            Family::IPV4_UNICAST => self.v4.len(),
            Family::IPV6_UNICAST => self.v6.len(),
            _ => flow_family_slot(family).map_or(0, |i| self.flow[i].len()),
        }
    }

    /// Number of advertised routes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.flow[0].len() + self.flow[1].len()
    }

    /// True if no route is advertised.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if changes wait to be sent.
    pub fn has_pending(&self) -> bool {
        !self.dirty_v4.is_empty()
            || !self.dirty_v6.is_empty()
            || self.dirty_flow.iter().any(|d| !d.is_empty())
    }

    /// Forgets pending changes (the session is down; the whole table goes out when it is up).
    pub fn clear_pending(&mut self) {
        self.dirty_v4.clear();
        self.dirty_v6.clear();
        self.dirty_flow.iter_mut().for_each(BTreeSet::clear);
    }

    /// Appends UPDATEs for the changes since the last flush, for the `families` the session
    /// negotiated, and forgets them.
    pub fn flush_pending(
        &mut self,
        packer: &UpdatePacker,
        policy: &ExportPolicy,
        families: &[Family],
        out: &mut Vec<u8>,
    ) -> FlushStats {
        let mut stats = FlushStats::default();
        let dirty_v4 = std::mem::take(&mut self.dirty_v4);
        let dirty_v6 = std::mem::take(&mut self.dirty_v6);
        if families.contains(&Family::IPV4_UNICAST) {
            let (withdrawn, groups) = split_changes(&dirty_v4, &self.v4);
            stats.count_withdrawn(Family::IPV4_UNICAST, withdrawn.len());
            stats.messages += packer.withdraw_ipv4(&withdrawn, out);
            send_v4(packer, policy, groups, out, &mut stats);
        }
        if families.contains(&Family::IPV6_UNICAST) {
            let (withdrawn, groups) = split_changes(&dirty_v6, &self.v6);
            stats.count_withdrawn(Family::IPV6_UNICAST, withdrawn.len());
            stats.messages += packer.withdraw_ipv6(&withdrawn, out);
            send_v6(packer, policy, groups, out, &mut stats);
        }
        let dirty_flow = std::mem::take(&mut self.dirty_flow);
        for (i, family) in [Family::IPV4_FLOWSPEC, Family::IPV6_FLOWSPEC]
            .into_iter()
            .enumerate()
        {
            if !families.contains(&family) {
                continue;
            }
            let (withdrawn, groups) = split_changes(&dirty_flow[i], &self.flow[i]);
            stats.count_withdrawn(family, withdrawn.len());
            stats.messages += packer.withdraw_flow(family, &withdrawn, out);
            send_flow(packer, policy, family, groups, out, &mut stats);
        }
        stats
    }

    /// Appends the whole table for the negotiated `families`, each followed by its
    /// End-of-RIB unless `end_of_rib` holds them back (a restarting speaker with more
    /// to send first), and forgets pending changes (they are included).
    pub fn encode_full(
        &mut self,
        packer: &UpdatePacker,
        policy: &ExportPolicy,
        families: &[Family],
        end_of_rib: EndOfRib,
        out: &mut Vec<u8>,
    ) -> FlushStats {
        self.clear_pending();
        let mut stats = FlushStats::default();
        for &family in families {
            match family {
                Family::IPV4_UNICAST => send_v4(
                    packer,
                    policy,
                    group(self.v4.iter().map(|(p, e)| (*p, &e.attrs))),
                    out,
                    &mut stats,
                ),
                Family::IPV6_UNICAST => send_v6(
                    packer,
                    policy,
                    group(self.v6.iter().map(|(p, e)| (*p, &e.attrs))),
                    out,
                    &mut stats,
                ),
                Family::IPV4_FLOWSPEC | Family::IPV6_FLOWSPEC => {
                    let rules = flow_family_slot(family).map(|i| &self.flow[i]);
                    let rules = rules.into_iter().flatten();
                    let groups = group(rules.map(|(f, e)| (f.clone(), &e.attrs)));
                    send_flow(packer, policy, family, groups, out, &mut stats);
                }
                _ => {}
            }
            if end_of_rib == EndOfRib::Send {
                packer.end_of_rib(family, out);
                stats.messages += 1;
            }
        }
        stats
    }
}

/// Whether [`AdjRibOut::encode_full`] ends each family with its End-of-RIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOfRib {
    /// After each family's routes.
    Send,
    /// Not yet: the speaker sends it later.
    Hold,
}

type Groups<'a, P> = Vec<(&'a Arc<PathAttributes>, Vec<P>)>;

/// Splits changed prefixes into those gone (withdrawals) and those present, grouped by
/// attributes (announcements).
/// Puts `new` (or nothing) at `key`, marking it pending; returns what was there.
fn replace_entry<K: Ord + Clone>(
    map: &mut BTreeMap<K, Entry>,
    dirty: &mut BTreeSet<K>,
    key: K,
    new: Option<Entry>,
) -> Option<Entry> {
    dirty.insert(key.clone());
    match new {
        Some(e) => map.insert(key, e),
        None => map.remove(&key),
    }
}

/// Puts `new` (or nothing) at `key`, marking it pending only if that changed anything;
/// returns whether it did.
fn set_entry<K: Ord + Clone>(
    map: &mut BTreeMap<K, Entry>,
    dirty: &mut BTreeSet<K>,
    key: K,
    new: Option<Entry>,
) -> bool {
    let same = |a: &Entry, b: &Entry| a.source == b.source && Arc::ptr_eq(&a.attrs, &b.attrs);
    let changed = match (map.get(&key), &new) {
        (Some(old), Some(new)) => !same(old, new),
        (None, None) => false,
        _ => true,
    };
    if changed {
        replace_entry(map, dirty, key, new);
    }
    changed
}

fn split_changes<'a, 'd, P: Ord + Clone + 'd>(
    dirty: impl IntoIterator<Item = &'d P>,
    table: &'a BTreeMap<P, Entry>,
) -> (Vec<P>, Groups<'a, P>) {
    let mut withdrawn = Vec::new();
    let groups = group(dirty.into_iter().filter_map(|p| match table.get(p) {
        Some(e) => Some((p.clone(), &e.attrs)),
        None => {
            withdrawn.push(p.clone());
            None
        }
    }));
    (withdrawn, groups)
}

/// Groups prefixes by their (interned) attribute set, keeping first-seen order.
fn group<'a, P>(routes: impl Iterator<Item = (P, &'a Arc<PathAttributes>)>) -> Groups<'a, P> {
    let mut index: HashMap<*const PathAttributes, usize> = HashMap::new();
    let mut groups: Groups<'a, P> = Vec::new();
    let mut last: Option<(*const PathAttributes, usize)> = None;
    for (p, attrs) in routes {
        let key = Arc::as_ptr(attrs);
        // Runs of equal attributes are the common case: skip the hash lookup for them.
        let i = match last {
            Some((k, i)) if k == key => i,
            _ => *index.entry(key).or_insert_with(|| {
                groups.push((attrs, Vec::new()));
                groups.len() - 1
            }),
        };
        last = Some((key, i));
        groups[i].1.push(p);
    }
    groups
}

fn send_v4(
    packer: &UpdatePacker,
    policy: &ExportPolicy,
    groups: Groups<'_, Ipv4Prefix>,
    out: &mut Vec<u8>,
    stats: &mut FlushStats,
) {
    for (attrs, prefixes) in groups {
        let exported = policy.apply(attrs, false);
        let Some(NextHop::Addr(IpAddr::V4(nh))) = exported.next_hop else {
            stats.skipped += prefixes.len();
            continue;
        };
        let enc = packer.encode_attributes(&exported, Some(nh));
        stats.messages += packer.announce_ipv4(&enc, &prefixes, out);
        stats.count_announced(Family::IPV4_UNICAST, prefixes.len());
    }
}

fn send_v6(
    packer: &UpdatePacker,
    policy: &ExportPolicy,
    groups: Groups<'_, Ipv6Prefix>,
    out: &mut Vec<u8>,
    stats: &mut FlushStats,
) {
    for (attrs, prefixes) in groups {
        let exported = policy.apply(attrs, true);
        let nh: Ipv6Addr = match exported.next_hop {
            Some(NextHop::Addr(IpAddr::V6(a))) => a,
            Some(NextHop::Addr(IpAddr::V4(a))) => a.to_ipv6_mapped(),
            _ => {
                stats.skipped += prefixes.len();
                continue;
            }
        };
        let enc = packer.encode_attributes(&exported, None);
        stats.messages += packer.announce_ipv6(&enc, &[nh], &prefixes, out);
        stats.count_announced(Family::IPV6_UNICAST, prefixes.len());
    }
}

/// FlowSpec rules carry no next hop (RFC 8955 §4: length 0), unless one was set for
/// redirect-to-IP, which then goes as is.
fn send_flow(
    packer: &UpdatePacker,
    policy: &ExportPolicy,
    family: Family,
    groups: Groups<'_, FlowSpec>,
    out: &mut Vec<u8>,
    stats: &mut FlushStats,
) {
    for (attrs, rules) in groups {
        let mut exported = policy.apply(attrs, family.afi == crate::packet::prefix::AFI_IPV6);
        exported.next_hop = match attrs.next_hop {
            Some(NextHop::Addr(a)) => Some(NextHop::Addr(a)),
            _ => None,
        };
        let next_hop = match exported.next_hop {
            Some(NextHop::Addr(a)) => Some(a),
            _ => None,
        };
        let enc = packer.encode_attributes(&exported, None);
        stats.messages += packer.announce_flow(&enc, family, next_hop, &rules, out);
        stats.count_announced(family, rules.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Context, Message, Update, decode, frame_len};
    use crate::rib::Interner;

    fn policy() -> ExportPolicy {
        ExportPolicy {
            local_as: 65001,
            ebgp: true,
            next_hop_v4: Some("127.0.0.1".parse().unwrap()),
            next_hop_v6: Some("2001:db8::1".parse().unwrap()),
        }
    }

    fn updates(bytes: &[u8]) -> Vec<Update> {
        let mut v = Vec::new();
        let mut buf = bytes;
        while let Some(len) = frame_len(buf).unwrap() {
            let Message::Update(u) = decode(&buf[..len], &Context::default()).unwrap() else {
                panic!()
            };
            v.push(u);
            buf = &buf[len..];
        }
        v
    }

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    const BOTH: &[Family] = &[Family::IPV4_UNICAST, Family::IPV6_UNICAST];

    /// A reload reads every attribute set anew (other `Arc`s, equal values): only the
    /// prefixes whose routes differ in value are marked, and another source's route in
    /// front of the synced one is left where it is.
    #[test]
    fn sync_source_marks_only_what_differs_in_value() {
        let attrs = |med: u32| {
            Arc::new(PathAttributes {
                next_hop: Some(NextHop::Local),
                med: Some(med),
                ..Default::default()
            })
        };
        let mut rib = AdjRibOut::new();
        rib.load(
            vec![
                (p("10.0.0.0/24"), attrs(1)),
                (p("10.0.1.0/24"), attrs(1)),
                (p("10.0.2.0/24"), attrs(1)),
                (p("2001:db8::/48"), attrs(1)),
            ],
            0,
        );
        // Source 1 (ctl, say) holds 10.0.2.0/24 in front of the config's route.
        rib.announce(p("10.0.2.0/24"), attrs(9), 1);
        rib.take_changes();
        let stats = rib.sync_source(
            0,
            &AdjRibOut::sorted_routes(vec![
                (p("2001:db8::/48"), attrs(1)),
                (p("10.0.1.0/24"), attrs(5)),
                (p("10.0.1.0/24"), attrs(2)), // the later duplicate wins
                (p("10.0.2.0/24"), attrs(3)),
                (p("10.0.3.0/24"), attrs(1)),
            ]),
        );
        assert_eq!(
            stats,
            SyncStats {
                announced: 3,
                withdrawn: 1
            }
        );
        let changed: Vec<Prefix> = rib.take_changes().into_iter().map(|c| c.0).collect();
        // 10.0.2.0/24: source 1's route stays advertised; the config's waits behind it.
        assert_eq!(
            changed,
            vec![p("10.0.0.0/24"), p("10.0.1.0/24"), p("10.0.3.0/24")]
        );
        assert_eq!(rib.get(&p("10.0.0.0/24")), None);
        assert_eq!(rib.get(&p("10.0.1.0/24")).map(|r| r.0.med), Some(Some(2)));
        assert_eq!(rib.get(&p("10.0.2.0/24")).map(|r| r.1), Some(1));
        rib.withdraw(p("10.0.2.0/24"), 1);
        assert_eq!(rib.get(&p("10.0.2.0/24")).map(|r| r.0.med), Some(Some(3)));
        // The same routes again: nothing.
        rib.take_changes();
        let again = rib.sync_source(
            0,
            &AdjRibOut::sorted_routes(vec![
                (p("2001:db8::/48"), attrs(1)),
                (p("10.0.1.0/24"), attrs(2)),
                (p("10.0.2.0/24"), attrs(3)),
                (p("10.0.3.0/24"), attrs(1)),
            ]),
        );
        assert_eq!(again, SyncStats::default());
        assert!(!rib.has_pending());
        // Behind source 1 again, then dropped from the list: withdrawn from where it waits.
        rib.announce(p("10.0.3.0/24"), attrs(9), 1);
        rib.take_changes();
        let dropped = rib.sync_source(
            0,
            &AdjRibOut::sorted_routes(vec![
                (p("2001:db8::/48"), attrs(1)),
                (p("10.0.1.0/24"), attrs(2)),
                (p("10.0.2.0/24"), attrs(3)),
            ]),
        );
        assert_eq!(dropped.withdrawn, 1);
        assert!(!rib.has_pending(), "source 1 still holds 10.0.3.0/24");
        rib.withdraw(p("10.0.3.0/24"), 1);
        assert_eq!(rib.get(&p("10.0.3.0/24")), None);
    }

    #[test]
    fn full_table_then_incremental_changes() {
        let mut interner = Interner::new();
        let a = interner.intern(PathAttributes {
            next_hop: Some(NextHop::Local),
            med: Some(100),
            ..Default::default()
        });
        let b = interner.intern(PathAttributes {
            next_hop: Some(NextHop::Local),
            med: Some(200),
            ..Default::default()
        });
        let mut rib = AdjRibOut::new();
        rib.load(
            vec![
                (p("10.0.0.0/24"), a.clone()),
                (p("10.0.1.0/24"), b.clone()),
                (p("2001:db8::/48"), a.clone()),
            ],
            0,
        );
        assert!(!rib.has_pending());
        let packer = UpdatePacker::new(Context::default());
        let mut out = Vec::new();
        let stats = rib.encode_full(&packer, &policy(), BOTH, EndOfRib::Send, &mut out);
        assert_eq!((stats.announced, stats.messages), (3, 5)); // 2 v4 groups + 1 v6 + 2 EoR
        let u = updates(&out);
        assert_eq!(u[0].nlri, vec!["10.0.0.0/24".parse().unwrap()]);
        assert_eq!(u[0].attributes.as_path.to_string(), "65001");
        assert_eq!(u[2].end_of_rib_family(), Some(Family::IPV4_UNICAST));
        assert_eq!(u[4].end_of_rib_family(), Some(Family::IPV6_UNICAST));
        // The same table with its End-of-RIBs held back (a restarting speaker).
        let mut held = Vec::new();
        let stats = rib.encode_full(&packer, &policy(), BOTH, EndOfRib::Hold, &mut held);
        assert_eq!((stats.announced, stats.messages), (3, 3));
        let h = updates(&held);
        assert!(h.iter().all(|u| u.end_of_rib_family().is_none()));
        assert_eq!(h, [u[0].clone(), u[1].clone(), u[3].clone()]);

        // Same route again: no change. New MED: one update. Withdraw: one withdrawal.
        assert!(!rib.announce(p("10.0.0.0/24"), a.clone(), 0));
        assert!(rib.announce(p("10.0.0.0/24"), b.clone(), 0));
        assert!(rib.withdraw(p("10.0.1.0/24"), 0));
        assert!(!rib.withdraw(p("10.9.0.0/24"), 0));
        let mut out = Vec::new();
        let stats = rib.flush_pending(&packer, &policy(), BOTH, &mut out);
        assert_eq!(
            (stats.announced, stats.withdrawn, stats.messages),
            (1, 1, 2)
        );
        let u = updates(&out);
        assert_eq!(u[0].withdrawn, vec!["10.0.1.0/24".parse().unwrap()]);
        assert_eq!(u[1].attributes.med, Some(200));
        assert!(!rib.has_pending());
    }

    #[test]
    fn sources_shadow_each_other() {
        let a = Arc::new(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let b = Arc::new(PathAttributes {
            med: Some(2),
            ..Default::default()
        });
        let mut rib = AdjRibOut::new();
        rib.announce(p("10.0.0.0/24"), a.clone(), 1);
        rib.announce(p("10.0.0.0/24"), b.clone(), 2);
        assert_eq!(rib.get(&p("10.0.0.0/24")).unwrap().1, 2);
        assert!(rib.withdraw(p("10.0.0.0/24"), 2));
        assert_eq!(
            rib.get(&p("10.0.0.0/24")).unwrap().1,
            1,
            "source 1 comes back"
        );
        rib.announce(p("10.0.1.0/24"), a.clone(), 1);
        assert_eq!(rib.withdraw_source(1), 2);
        assert!(rib.is_empty());
    }

    #[test]
    fn families_not_negotiated_are_not_sent() {
        let a = Arc::new(PathAttributes {
            next_hop: Some(NextHop::Local),
            ..Default::default()
        });
        let mut rib = AdjRibOut::new();
        rib.announce(p("2001:db8::/48"), a, 0);
        let mut out = Vec::new();
        let stats = rib.flush_pending(
            &UpdatePacker::new(Context::default()),
            &policy(),
            &[Family::IPV4_UNICAST],
            &mut out,
        );
        assert_eq!(stats, FlushStats::default());
        assert!(out.is_empty());
    }

    #[test]
    fn set_replaces_without_shadowing_and_changes_are_taken_once() {
        let mut rib = AdjRibOut::new();
        let p: Prefix = "10.0.0.0/8".parse().unwrap();
        let a = Arc::new(PathAttributes::default());
        assert!(rib.set(p.clone(), Some((a.clone(), 1))));
        assert!(
            !rib.set(p.clone(), Some((a.clone(), 1))),
            "same route: no change"
        );
        assert!(
            rib.set(p.clone(), Some((a.clone(), 2))),
            "another source is a change"
        );
        let changes = rib.take_changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].1.as_ref().map(|r| r.1), Some(2));
        assert!(rib.take_changes().is_empty());
        assert!(rib.set(p.clone(), None));
        assert!(!rib.set(p.clone(), None));
        assert_eq!(rib.take_changes(), vec![(p.clone(), None)]);
        assert!(rib.is_empty());
    }

    #[test]
    fn withdraw_promotes_a_shadowed_route_of_the_same_prefix_only() {
        let mut rib = AdjRibOut::new();
        let p: Prefix = "10.0.0.0/8".parse().unwrap();
        let q: Prefix = "10.0.0.0/9".parse().unwrap();
        let a = Arc::new(PathAttributes::default());
        let b = Arc::new(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        rib.announce(q.clone(), a.clone(), 3);
        rib.announce(q.clone(), b.clone(), 4);
        rib.announce(p.clone(), a.clone(), 1);
        rib.announce(p.clone(), b.clone(), 2);
        assert!(rib.withdraw(p.clone(), 2));
        assert_eq!(rib.get(&p).map(|r| r.1), Some(1));
        assert!(rib.withdraw(p.clone(), 1));
        assert_eq!(rib.get(&p), None);
        assert_eq!(rib.get(&q).map(|r| r.1), Some(4));
    }

    #[test]
    fn replace_with_marks_exactly_the_differences() {
        let p = |s: &str| -> Prefix { s.parse().unwrap() };
        let a = Arc::new(PathAttributes::default());
        let b = Arc::new(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let mut old = AdjRibOut::new();
        for (prefix, attrs) in [("10.0.0.0/8", &a), ("10.1.0.0/16", &a), ("10.2.0.0/16", &a)] {
            old.set(p(prefix), Some((attrs.clone(), 1)));
        }
        old.clear_pending();
        let mut new = old.advertised();
        new.retain_routes(|prefix, attrs| {
            if prefix == p("10.1.0.0/16") {
                *attrs = b.clone();
            }
            prefix != p("10.2.0.0/16")
        });
        new.set(p("2001:db8::/32"), Some((a.clone(), 1)));
        old.replace_with(new);
        let changes = old.take_changes();
        let changed: Vec<String> = changes.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(changed, ["10.1.0.0/16", "10.2.0.0/16", "2001:db8::/32"]);
        assert_eq!(changes[1].1, None);
        assert_eq!(old.len(), 3);
    }

    /// Flow rules are kept, flushed and withdrawn like prefixes, in their own family,
    /// with no next hop even when the route says `self`.
    #[test]
    fn flow_rules_flush_in_their_family() {
        use crate::packet::flowspec::{Component, FlowPrefix, NumericOp};
        use crate::packet::prefix::AFI_IPV4;
        let rule = |port| {
            let c = [
                Component::Source(FlowPrefix::V4("10.0.0.0/24".parse().unwrap())),
                Component::DestinationPort(vec![NumericOp {
                    and: false,
                    lt: false,
                    gt: false,
                    eq: true,
                    value: port,
                }]),
            ];
            Prefix::Flow(FlowSpec::new(AFI_IPV4, &c).unwrap())
        };
        let attrs = Arc::new(PathAttributes {
            next_hop: Some(NextHop::Local),
            ..Default::default()
        });
        let mut rib = AdjRibOut::new();
        rib.announce(rule(80), attrs.clone(), 1);
        rib.announce(rule(443), attrs.clone(), 1);
        rib.announce(p("10.9.0.0/16"), attrs.clone(), 1);
        assert_eq!(rib.len_family(Family::IPV4_FLOWSPEC), 2);
        let packer = UpdatePacker::new(Context::default());
        let families = [Family::IPV4_UNICAST, Family::IPV4_FLOWSPEC];
        let mut out = Vec::new();
        let stats = rib.flush_pending(&packer, &policy(), &families, &mut out);
        assert_eq!((stats.announced, stats.messages), (3, 2));
        let sent = updates(&out);
        let flows = sent[1].mp_reach.as_ref().expect("flow UPDATE");
        assert!(flows.next_hop.is_empty());
        assert_eq!(
            flows.nlri.prefixes().collect::<Vec<_>>(),
            vec![rule(80), rule(443)]
        );
        // Not negotiated: nothing sent for the family.
        rib.withdraw(rule(80), 1);
        let mut out = Vec::new();
        let stats = rib.flush_pending(&packer, &policy(), &[Family::IPV4_UNICAST], &mut out);
        assert_eq!(stats.withdrawn, 0);
        rib.withdraw(rule(443), 1);
        let mut out = Vec::new();
        let stats = rib.flush_pending(&packer, &policy(), &families, &mut out);
        assert_eq!(stats.withdrawn, 1);
        let u = &updates(&out)[0];
        assert_eq!(
            u.mp_unreach
                .as_ref()
                .map(|m| m.withdrawn.prefixes().collect::<Vec<_>>()),
            Some(vec![rule(443)])
        );
        assert_eq!(rib.len_family(Family::IPV4_FLOWSPEC), 0);
    }
}
