//! Routing policies: the [`Policy`] trait, the route view, verdicts and
//! modifications, and the glue that runs a policy over a batch.
//!
//! # How a batch is evaluated
//!
//! The host sends routes in columns (addresses, lengths, attribute-set
//! indices) with each distinct attribute set once. [`Evaluator`] walks the
//! columns, builds a [`Route`] per row (a few words on the stack: the
//! prefix and references to the session and to the row's attribute set),
//! calls [`Policy::evaluate`] and writes one `u32` per route: 0 accept,
//! 1 reject, 2 + i for "accept with the new attribute set i".
//!
//! FlowSpec rules come after the IPv4 and IPv6 routes, as a [`FlowRoute`]
//! view each, to [`Policy::evaluate_flow`]: a policy that does not
//! implement it accepts every rule unchanged, as before the host sent rules
//! to policies. Their verdicts are the same [`Verdict`]s (the traffic
//! actions are extended communities, which a [`Modification`] changes).
//!
//! A modification is applied once per distinct (input attribute set,
//! modification) pair of a batch, and every other route with the same pair
//! reuses the resulting set's index: a tagger that modifies 500,000 routes
//! sharing three attribute sets sends back three new sets. The pair is
//! keyed cheaply:
//!
//! - [`Verdict::Modify`] borrows a [`Modification`] the plugin prepared
//!   (typically in `init`). Every modification carries an id, fresh from a
//!   global counter whenever its contents are built or changed (its fields
//!   are private and every builder method takes a new id), so equal ids mean
//!   equal contents and the key is (set index, id). The previous route's key
//!   is remembered, so the common run of routes with the same set and
//!   modification costs one comparison and no hashing; other keys cost one
//!   lookup in a hash map. Keying by address instead would be unsound: a
//!   plugin may change a modification in place between two routes.
//! - [`Verdict::ModifyOwned`] hands over a modification built for this
//!   route; it is keyed by (set index, contents), hashed. Built from scalar
//!   changes (MED, LOCAL_PREF, next hop, origin) it allocates nothing.
//!
//! A modification that leaves a set unchanged (adding a community the route
//! already has) yields 0, accept unchanged. Accept, reject and a prepared
//! modification allocate nothing per route; the glue's maps and the verdict
//! column are allocated per batch and reused.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::flow::{Action, FlowRule};
use crate::hash::BuildWordHasher;
use crate::net::{Prefix, join_v6};
use crate::text::{Community, ExtendedCommunity, LargeCommunity};
use crate::types::{self, AsSegment, Attributes, IpAddress, Origin, SegmentKind, UnknownAttribute};
use crate::{Error, Settings};

pub use crate::bindings::policy::exports::wasmbgp::plugin::route_policy::{
    DataFile, Direction, Guest, RouteBatch, Session, Verdicts,
};

/// The verdict code "accept unchanged".
pub const ACCEPT: u32 = 0;
/// The verdict code "reject".
pub const REJECT: u32 = 1;
/// The verdict code of `attributes[0]`; `attributes[i]` is `MODIFIED + i`.
pub const MODIFIED: u32 = 2;

/// A routing policy: the one trait a `policy` plugin implements.
///
/// ```ignore
/// struct Tagger { prefixes: PrefixSet, tag: Modification }
///
/// impl Policy for Tagger {
///     fn init(settings: &Settings, _files: &[DataFile]) -> Result<Self, Error> {
///         settings.only(&["prefixes", "community"])?;
///         let community: Community = settings.parse_required("community")?;
///         Ok(Tagger {
///             prefixes: settings.parse_list::<Prefix>("prefixes")?.into_iter().collect(),
///             tag: Modification::new().add_community(community),
///         })
///     }
///     fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
///         if self.prefixes.covers(&route.prefix()) { Verdict::Modify(&self.tag) } else { Verdict::Accept }
///     }
/// }
///
/// wasmbgp_sdk::export_policy!(Tagger);
/// ```
pub trait Policy: Sized + 'static {
    /// Builds the policy from the operator's settings and the granted data
    /// files (see [`find_file`]). An error is a configuration error and is
    /// shown to the operator.
    fn init(settings: &Settings, files: &[DataFile]) -> Result<Self, Error>;

    /// Judges one route. Runs for every route, so it should not allocate:
    /// return [`Verdict::Modify`] with a modification prepared in `init`
    /// when you can.
    fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_>;

    /// Judges one FlowSpec rule (RFC 8955, RFC 8956), after the batch's IPv4
    /// and IPv6 routes. Optional: by default every rule is accepted
    /// unchanged, so a policy written for prefixes lets rules through as it
    /// did before rules reached policies; implement it to filter or rewrite
    /// them (the rule's traffic actions are its extended communities:
    /// [`FlowRoute::actions`], [`Modification::add_action`]).
    ///
    /// ```ignore
    /// fn evaluate_flow(&mut self, route: &FlowRoute<'_>) -> Verdict<'_> {
    ///     match route.destination() {
    ///         Some(d) if self.protected.covers(&d) => Verdict::Accept,
    ///         _ => Verdict::Reject,
    ///     }
    /// }
    /// ```
    fn evaluate_flow(&mut self, route: &FlowRoute<'_>) -> Verdict<'_> {
        let _ = route;
        Verdict::Accept
    }

    /// Called once per batch, before its routes. Optional: for per-batch
    /// work such as caching a decision per attribute set (see
    /// [`Route::attributes_index`]) or counting.
    fn begin_batch(&mut self, batch: &BatchInfo<'_>) {
        let _ = batch;
    }
}

/// What [`Policy::begin_batch`] learns about a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchInfo<'a> {
    /// Import (from the neighbor) or export (to it).
    pub direction: Direction,
    /// The session of every route of the batch.
    pub session: &'a Session,
    /// The distinct attribute sets; [`Route::attributes_index`] points here.
    pub attribute_sets: &'a [Attributes],
    /// How many IPv4 routes the batch holds.
    pub v4_routes: usize,
    /// How many IPv6 routes the batch holds.
    pub v6_routes: usize,
    /// How many FlowSpec rules the batch holds (both families).
    pub flow_routes: usize,
}

impl BatchInfo<'_> {
    /// How many routes the batch holds, FlowSpec rules included.
    pub fn routes(&self) -> usize {
        self.v4_routes + self.v6_routes + self.flow_routes
    }
}

/// One route of a batch, as a view: no allocation, no copy of attributes.
#[derive(Clone, Copy, Debug)]
pub struct Route<'a> {
    direction: Direction,
    session: &'a Session,
    prefix: Prefix,
    attributes: &'a Attributes,
    attributes_index: u32,
}

impl<'a> Route<'a> {
    /// A route view, for testing a policy outside a batch (the attribute
    /// set index is 0).
    pub fn new(
        direction: Direction,
        session: &'a Session,
        prefix: Prefix,
        attributes: &'a Attributes,
    ) -> Self {
        Route {
            direction,
            session,
            prefix,
            attributes,
            attributes_index: 0,
        }
    }

    /// Import (received from the neighbor) or export (about to be sent).
    #[inline]
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The session: neighbor address, peer AS, local AS.
    #[inline]
    pub fn session(&self) -> &'a Session {
        self.session
    }

    /// The destination prefix.
    #[inline]
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The route's path attributes (shared with every route of the batch
    /// that has the same index).
    #[inline]
    pub fn attributes(&self) -> &'a Attributes {
        self.attributes
    }

    /// The index of the route's attribute set in the batch
    /// ([`BatchInfo::attribute_sets`]): routes with equal indices have equal
    /// attributes, so a decision that depends on attributes alone can be
    /// cached per index for the batch.
    #[inline]
    pub fn attributes_index(&self) -> u32 {
        self.attributes_index
    }
}

/// One FlowSpec rule of a batch, as a view: the rule as the host sent it
/// (components in the RFC's order) and its attribute set, whose extended
/// communities are the rule's traffic actions. Nothing is copied.
#[derive(Clone, Copy, Debug)]
pub struct FlowRoute<'a> {
    direction: Direction,
    session: &'a Session,
    rule: &'a types::FlowRule,
    attributes: &'a Attributes,
    attributes_index: u32,
}

impl<'a> FlowRoute<'a> {
    /// A rule's view, for testing a policy outside a batch (the attribute
    /// set index is 0).
    pub fn new(
        direction: Direction,
        session: &'a Session,
        rule: &'a types::FlowRule,
        attributes: &'a Attributes,
    ) -> Self {
        FlowRoute {
            direction,
            session,
            rule,
            attributes,
            attributes_index: 0,
        }
    }

    /// Import (received from the neighbor) or export (about to be sent).
    #[inline]
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The session: neighbor address, peer AS, local AS.
    #[inline]
    pub fn session(&self) -> &'a Session {
        self.session
    }

    /// The rule as WIT carries it (its components; `to_string()` gives
    /// ExaBGP's words).
    #[inline]
    pub fn rule(&self) -> &'a types::FlowRule {
        self.rule
    }

    /// True for an IPv6 rule (RFC 8956).
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.rule.ipv6
    }

    /// The rule's destination prefix, if it has one.
    #[inline]
    pub fn destination(&self) -> Option<Prefix> {
        self.rule.destination()
    }

    /// The rule's source prefix, if it has one.
    #[inline]
    pub fn source(&self) -> Option<Prefix> {
        self.rule.source()
    }

    /// The rule as the SDK's [`FlowRule`] (ordered and hashable, to key a
    /// table by it). Allocates.
    pub fn to_rule(&self) -> FlowRule {
        FlowRule::from_wit(self.rule)
    }

    /// The traffic actions (see [`Attributes::flow_actions`]).
    #[inline]
    pub fn actions(&self) -> impl Iterator<Item = Action> + 'a {
        self.attributes.flow_actions()
    }

    /// The rule's path attributes (shared with every route of the batch
    /// that has the same index).
    #[inline]
    pub fn attributes(&self) -> &'a Attributes {
        self.attributes
    }

    /// The index of the attribute set in the batch
    /// ([`BatchInfo::attribute_sets`]; see [`Route::attributes_index`]).
    #[inline]
    pub fn attributes_index(&self) -> u32 {
        self.attributes_index
    }
}

/// What to do with a route.
///
/// `ModifyOwned` makes the enum large, on purpose: a modification built per
/// route from scalar changes then needs no allocation. A verdict is built
/// and consumed in place by the glue's loop, so its size costs nothing on
/// the accept, reject and `Modify` paths.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Verdict<'a> {
    /// Accept unchanged.
    Accept,
    /// Reject (filter out).
    Reject,
    /// Accept with the attributes changed by a modification the plugin
    /// keeps (prepared once, typically in `init`): the cheap way.
    Modify(&'a Modification),
    /// Accept with the attributes changed by a modification built for this
    /// route; deduplicated by contents.
    ModifyOwned(Modification),
}

impl<'a> From<&'a Modification> for Verdict<'a> {
    fn from(modification: &'a Modification) -> Self {
        Verdict::Modify(modification)
    }
}

/// Where fresh modification ids come from; 0 is never handed out.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn fresh_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Changes to a route's attributes, built with chained methods:
///
/// ```ignore
/// let tag = Modification::new().add_community("65001:100".parse()?).set_med(10);
/// ```
///
/// Applied in this order: MED, LOCAL_PREF, next hop, origin, AS-path
/// prepend, then for each community kind replace, remove, add (calls made
/// later override earlier ones on the same community: `add(c)` after
/// `remove(c)` adds it), then unknown attributes. Adding a community the
/// route has already carries it once.
#[derive(Clone, Debug)]
#[must_use = "a modification does nothing until it is returned in a Verdict"]
pub struct Modification {
    /// Equal ids imply equal `changes` (see the module documentation).
    id: u64,
    changes: Changes,
}

/// The contents of a modification: hashed and compared for
/// [`Verdict::ModifyOwned`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Changes {
    med: Option<Option<u32>>,
    local_pref: Option<Option<u32>>,
    next_hop: Option<Option<IpAddress>>,
    origin: Option<Origin>,
    prepend: Vec<u32>,
    communities: ListChange<u32>,
    large_communities: ListChange<(u32, u32, u32)>,
    extended_communities: ListChange<u64>,
    set_unknown: Vec<UnknownAttribute>,
    remove_unknown: Vec<u8>,
}

/// Changes to one list of communities.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ListChange<T> {
    replace: Option<Vec<T>>,
    remove: Vec<T>,
    add: Vec<T>,
}

impl<T> Default for ListChange<T> {
    fn default() -> Self {
        ListChange {
            replace: None,
            remove: Vec::new(),
            add: Vec::new(),
        }
    }
}

impl<T: PartialEq + Clone> ListChange<T> {
    fn add(&mut self, item: T) {
        self.remove.retain(|r| *r != item);
        if !self.add.contains(&item) {
            self.add.push(item);
        }
    }

    fn remove(&mut self, item: T) {
        self.add.retain(|a| *a != item);
        if let Some(replace) = &mut self.replace {
            replace.retain(|r| *r != item);
        }
        if !self.remove.contains(&item) {
            self.remove.push(item);
        }
    }

    fn replace(&mut self, items: Vec<T>) {
        self.replace = Some(items);
        self.remove.clear();
        self.add.clear();
    }

    fn apply(&self, list: &mut Vec<T>) {
        if let Some(replace) = &self.replace {
            list.clear();
            for item in replace {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
        if !self.remove.is_empty() {
            list.retain(|item| !self.remove.contains(item));
        }
        for item in &self.add {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
    }
}

impl Default for Modification {
    fn default() -> Self {
        Modification::new()
    }
}

impl Modification {
    /// A modification that changes nothing (yet).
    pub fn new() -> Self {
        Modification {
            id: fresh_id(),
            changes: Changes::default(),
        }
    }

    /// Changes the contents under a fresh id.
    fn change(mut self, f: impl FnOnce(&mut Changes)) -> Self {
        f(&mut self.changes);
        self.id = fresh_id();
        self
    }

    /// True when the modification changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes == Changes::default()
    }

    /// Sets MULTI_EXIT_DISC.
    pub fn set_med(self, med: u32) -> Self {
        self.change(|c| c.med = Some(Some(med)))
    }

    /// Removes MULTI_EXIT_DISC.
    pub fn remove_med(self) -> Self {
        self.change(|c| c.med = Some(None))
    }

    /// Sets LOCAL_PREF (the host sends it to iBGP neighbors only).
    pub fn set_local_pref(self, local_pref: u32) -> Self {
        self.change(|c| c.local_pref = Some(Some(local_pref)))
    }

    /// Removes LOCAL_PREF.
    pub fn remove_local_pref(self) -> Self {
        self.change(|c| c.local_pref = Some(None))
    }

    /// Sets the next hop.
    pub fn set_next_hop(self, addr: impl Into<IpAddress>) -> Self {
        let addr = addr.into();
        self.change(|c| c.next_hop = Some(Some(addr)))
    }

    /// Sets the next hop to "self" (`none`: the local address of each
    /// session; meaningful on export).
    pub fn set_next_hop_self(self) -> Self {
        self.change(|c| c.next_hop = Some(None))
    }

    /// Sets ORIGIN.
    pub fn set_origin(self, origin: Origin) -> Self {
        self.change(|c| c.origin = Some(origin))
    }

    /// Puts `asns` (leftmost first) in front of the AS path; a later call
    /// puts its ASNs in front of an earlier call's. `&[65001; 3]` prepends
    /// 65001 three times.
    pub fn prepend(self, asns: &[u32]) -> Self {
        self.change(|c| {
            c.prepend.splice(0..0, asns.iter().copied());
        })
    }

    /// Adds a standard community.
    pub fn add_community(self, community: Community) -> Self {
        self.change(|c| c.communities.add(community.0))
    }

    /// Removes a standard community.
    pub fn remove_community(self, community: Community) -> Self {
        self.change(|c| c.communities.remove(community.0))
    }

    /// Replaces every standard community with `communities`.
    pub fn replace_communities(self, communities: impl IntoIterator<Item = Community>) -> Self {
        let list = communities.into_iter().map(|c| c.0).collect();
        self.change(|c| c.communities.replace(list))
    }

    /// Adds a large community.
    pub fn add_large_community(self, community: LargeCommunity) -> Self {
        self.change(|c| c.large_communities.add(community.into()))
    }

    /// Removes a large community.
    pub fn remove_large_community(self, community: LargeCommunity) -> Self {
        self.change(|c| c.large_communities.remove(community.into()))
    }

    /// Replaces every large community with `communities`.
    pub fn replace_large_communities(
        self,
        communities: impl IntoIterator<Item = LargeCommunity>,
    ) -> Self {
        let list = communities.into_iter().map(Into::into).collect();
        self.change(|c| c.large_communities.replace(list))
    }

    /// Adds an extended community.
    pub fn add_extended_community(self, community: ExtendedCommunity) -> Self {
        self.change(|c| c.extended_communities.add(community.0))
    }

    /// Removes an extended community.
    pub fn remove_extended_community(self, community: ExtendedCommunity) -> Self {
        self.change(|c| c.extended_communities.remove(community.0))
    }

    /// Replaces every extended community with `communities`.
    pub fn replace_extended_communities(
        self,
        communities: impl IntoIterator<Item = ExtendedCommunity>,
    ) -> Self {
        let list = communities.into_iter().map(|c| c.0).collect();
        self.change(|c| c.extended_communities.replace(list))
    }

    /// Adds a FlowSpec traffic action: its extended community
    /// ([`Action::community`]) and, for [`Action::RedirectToIp`] and
    /// [`Action::CopyToIp`], the next hop. Actions of one kind are not
    /// replaced: remove the old one (say a [`Action::RateLimit`] before
    /// adding [`Action::Discard`]). [`Action::Sample`] and
    /// [`Action::Continue`] are two bits of one community: a rule gets
    /// both by adding the community `0x8007_0000_0000_0003`.
    pub fn add_action(self, action: Action) -> Self {
        let with_community = self.add_extended_community(ExtendedCommunity(action.community()));
        match action {
            Action::RedirectToIp(address) | Action::CopyToIp(address) => {
                with_community.set_next_hop(address)
            }
            _ => with_community,
        }
    }

    /// Removes a FlowSpec traffic action: its extended community as
    /// [`Action::community`] gives it (a rate must be equal to the bit).
    pub fn remove_action(self, action: Action) -> Self {
        self.remove_extended_community(ExtendedCommunity(action.community()))
    }

    /// Sets an attribute wasmbgp does not interpret (replacing one with the
    /// same type code): `flags` as on the wire (optional, transitive,
    /// partial), `code` the type code, `value` the bytes.
    pub fn set_unknown(self, flags: u8, code: u8, value: Vec<u8>) -> Self {
        self.change(|c| {
            c.remove_unknown.retain(|&r| r != code);
            c.set_unknown.retain(|u| u.code != code);
            c.set_unknown.push(UnknownAttribute { flags, code, value });
        })
    }

    /// Removes the uninterpreted attribute with type code `code`.
    pub fn remove_unknown(self, code: u8) -> Self {
        self.change(|c| {
            c.set_unknown.retain(|u| u.code != code);
            if !c.remove_unknown.contains(&code) {
                c.remove_unknown.push(code);
            }
        })
    }

    /// `attributes` with the changes applied.
    pub fn apply(&self, attributes: &Attributes) -> Attributes {
        self.changes.apply(attributes)
    }
}

impl Changes {
    fn apply(&self, input: &Attributes) -> Attributes {
        let mut out = input.clone();
        if let Some(med) = self.med {
            out.med = med;
        }
        if let Some(local_pref) = self.local_pref {
            out.local_pref = local_pref;
        }
        if let Some(next_hop) = self.next_hop {
            out.next_hop = next_hop;
        }
        if let Some(origin) = self.origin {
            out.origin = origin;
        }
        if !self.prepend.is_empty() {
            prepend(&mut out.as_path, &self.prepend);
        }
        self.communities.apply(&mut out.communities);
        self.large_communities.apply(&mut out.large_communities);
        self.extended_communities
            .apply(&mut out.extended_communities);
        if !self.remove_unknown.is_empty() {
            out.unknown
                .retain(|u| !self.remove_unknown.contains(&u.code));
        }
        for set in &self.set_unknown {
            match out.unknown.iter_mut().find(|u| u.code == set.code) {
                Some(existing) => *existing = set.clone(),
                None => out.unknown.push(set.clone()),
            }
        }
        out
    }
}

/// The most ASNs an AS_PATH segment holds (its length is one octet).
const MAX_SEGMENT: usize = 255;

/// Puts `asns` in front of `path`: into its first segment while that is an
/// AS_SEQUENCE with room, then in new AS_SEQUENCE segments.
fn prepend(path: &mut Vec<AsSegment>, asns: &[u32]) {
    let mut rest = asns;
    if let Some(first) = path.first_mut()
        && first.kind == SegmentKind::Sequence
    {
        let take = MAX_SEGMENT.saturating_sub(first.asns.len()).min(rest.len());
        let (head, tail) = rest.split_at(rest.len() - take);
        first.asns.splice(0..0, tail.iter().copied());
        rest = head;
    }
    while !rest.is_empty() {
        let take = rest.len().min(MAX_SEGMENT);
        let (head, tail) = rest.split_at(rest.len() - take);
        path.insert(
            0,
            AsSegment {
                kind: SegmentKind::Sequence,
                asns: tail.to_vec(),
            },
        );
        rest = head;
    }
}

/// The granted data file with exactly `path` (as written in the grant),
/// or an error naming the granted paths.
pub fn find_file<'f>(files: &'f [DataFile], path: &str) -> Result<&'f DataFile, Error> {
    files.iter().find(|f| f.path == path).ok_or_else(|| {
        let granted: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        Error::new(format!(
            "no granted data file {path:?} (grant it in grants.files; granted: {})",
            if granted.is_empty() {
                "none".to_string()
            } else {
                granted.join(", ")
            }
        ))
    })
}

impl DataFile {
    /// The contents as UTF-8 text, or an error naming the file.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.contents)
            .map_err(|e| Error::new(format!("data file {:?} is not UTF-8 text: {e}", self.path)))
    }
}

/// The per-batch dedup maps, kept between batches for their capacity.
#[derive(Default)]
struct Scratch {
    by_id: HashMap<(u32, u64), u32, BuildWordHasher>,
    by_contents: HashMap<(u32, Changes), u32, BuildWordHasher>,
}

/// Runs a [`Policy`] over route batches: the glue behind
/// [`export_policy!`](crate::export_policy), usable directly in tests.
pub struct Evaluator<T> {
    policy: T,
    scratch: Scratch,
}

impl<T: Policy> Evaluator<T> {
    /// Wraps a policy (built with [`Policy::init`], or by hand in tests).
    pub fn new(policy: T) -> Self {
        Evaluator {
            policy,
            scratch: Scratch::default(),
        }
    }

    /// The policy.
    pub fn policy(&mut self) -> &mut T {
        &mut self.policy
    }

    /// Judges every route of `batch`: one verdict per route (IPv4, then
    /// IPv6, then FlowSpec rules), and the new attribute sets.
    ///
    /// # Panics
    ///
    /// When the batch breaks the WIT contract (columns of different
    /// lengths, an attribute index out of range): that is a host bug, and a
    /// trap is the clearest report.
    pub fn evaluate(&mut self, batch: &RouteBatch) -> Verdicts {
        let (v4_routes, v6_routes, flow_routes) = route_counts(batch);
        let sets = batch.attributes.as_slice();
        let direction = batch.direction;
        let session = &batch.session;
        self.policy.begin_batch(&BatchInfo {
            direction,
            session,
            attribute_sets: sets,
            v4_routes,
            v6_routes,
            flow_routes,
        });

        self.scratch.by_id.clear();
        self.scratch.by_contents.clear();
        let mut book = Book {
            sets,
            new_sets: Vec::new(),
            scratch: &mut self.scratch,
            last: None,
        };
        let mut routes = Vec::with_capacity(v4_routes + v6_routes + flow_routes);

        let v4 = batch
            .v4_addresses
            .iter()
            .zip(&batch.v4_lengths)
            .zip(&batch.v4_attributes);
        for ((&addr, &len), &index) in v4 {
            let route = Route {
                direction,
                session,
                prefix: Prefix::V4 { addr, len },
                attributes: attribute_set(sets, index),
                attributes_index: index,
            };
            let verdict = self.policy.evaluate(&route);
            routes.push(book.code(verdict, index));
        }
        let v6 = batch
            .v6_addresses
            .chunks_exact(2)
            .zip(&batch.v6_lengths)
            .zip(&batch.v6_attributes);
        for ((halves, &len), &index) in v6 {
            let route = Route {
                direction,
                session,
                prefix: Prefix::V6 {
                    addr: join_v6((halves[0], halves[1])),
                    len,
                },
                attributes: attribute_set(sets, index),
                attributes_index: index,
            };
            let verdict = self.policy.evaluate(&route);
            routes.push(book.code(verdict, index));
        }
        for (rule, &index) in batch.flows.iter().zip(&batch.flow_attributes) {
            let route = FlowRoute {
                direction,
                session,
                rule,
                attributes: attribute_set(sets, index),
                attributes_index: index,
            };
            let verdict = self.policy.evaluate_flow(&route);
            routes.push(book.code(verdict, index));
        }
        Verdicts {
            routes,
            attributes: book.new_sets,
        }
    }
}

/// The number of IPv4 routes, IPv6 routes and FlowSpec rules of `batch`.
///
/// # Panics
///
/// When the columns of a family have different lengths.
fn route_counts(batch: &RouteBatch) -> (usize, usize, usize) {
    let v4_routes = batch.v4_addresses.len();
    let v6_routes = batch.v6_lengths.len();
    let flow_routes = batch.flows.len();
    if batch.v4_lengths.len() != v4_routes
        || batch.v4_attributes.len() != v4_routes
        || batch.v6_attributes.len() != v6_routes
        || batch.v6_addresses.len() != 2 * v6_routes
        || batch.flow_attributes.len() != flow_routes
    {
        panic!(
            "wasmbgp-sdk: malformed route batch: v4 columns {}/{}/{}, v6 columns {}/{}/{}, flow columns {}/{}",
            batch.v4_addresses.len(),
            batch.v4_lengths.len(),
            batch.v4_attributes.len(),
            batch.v6_addresses.len(),
            batch.v6_lengths.len(),
            batch.v6_attributes.len(),
            batch.flows.len(),
            batch.flow_attributes.len()
        );
    }
    (v4_routes, v6_routes, flow_routes)
}

/// The FlowSpec rules of `batch` as views, in verdict order (they come
/// after the IPv4 and IPv6 routes of [`views`]): for code that implements
/// [`Guest`] itself, which must answer them too.
///
/// # Panics
///
/// When the batch breaks the WIT contract (see [`Evaluator::evaluate`]).
pub fn flow_views(batch: &RouteBatch) -> impl Iterator<Item = FlowRoute<'_>> {
    route_counts(batch);
    let (direction, session, sets) = (batch.direction, &batch.session, batch.attributes.as_slice());
    batch
        .flows
        .iter()
        .zip(&batch.flow_attributes)
        .map(move |(rule, &index)| FlowRoute {
            direction,
            session,
            rule,
            attributes: attribute_set(sets, index),
            attributes_index: index,
        })
}

/// The IPv4 and IPv6 routes of `batch` as views, IPv4 first, in verdict
/// order: for code that implements [`Guest`] itself. The batch's FlowSpec
/// rules follow them in the verdict list ([`flow_views`]). [`Evaluator`]
/// does the same walk.
///
/// # Panics
///
/// When the batch breaks the WIT contract (see [`Evaluator::evaluate`]).
pub fn views(batch: &RouteBatch) -> impl Iterator<Item = Route<'_>> {
    route_counts(batch);
    let (direction, session, sets) = (batch.direction, &batch.session, batch.attributes.as_slice());
    let v4 = batch
        .v4_addresses
        .iter()
        .zip(&batch.v4_lengths)
        .zip(&batch.v4_attributes)
        .map(move |((&addr, &len), &index)| Route {
            direction,
            session,
            prefix: Prefix::V4 { addr, len },
            attributes: attribute_set(sets, index),
            attributes_index: index,
        });
    let v6 = batch
        .v6_addresses
        .chunks_exact(2)
        .zip(&batch.v6_lengths)
        .zip(&batch.v6_attributes)
        .map(move |((halves, &len), &index)| Route {
            direction,
            session,
            prefix: Prefix::V6 {
                addr: join_v6((halves[0], halves[1])),
                len,
            },
            attributes: attribute_set(sets, index),
            attributes_index: index,
        });
    v4.chain(v6)
}

impl RouteBatch {
    /// An empty batch for `direction` and `session`, to be filled with
    /// [`RouteBatch::add`] and [`RouteBatch::add_flow`] (tests, benchmarks).
    pub fn new(direction: Direction, session: Session) -> Self {
        RouteBatch {
            direction,
            session,
            attributes: Vec::new(),
            v4_addresses: Vec::new(),
            v4_lengths: Vec::new(),
            v4_attributes: Vec::new(),
            v6_addresses: Vec::new(),
            v6_lengths: Vec::new(),
            v6_attributes: Vec::new(),
            flows: Vec::new(),
            flow_attributes: Vec::new(),
        }
    }

    /// Adds a route; its attribute set is added to the batch's distinct
    /// sets unless an equal one is there already.
    pub fn add(&mut self, prefix: Prefix, attributes: &Attributes) -> &mut Self {
        let index = crate::attributes::index_in(&mut self.attributes, attributes);
        match prefix {
            Prefix::V4 { addr, len } => {
                self.v4_addresses.push(addr);
                self.v4_lengths.push(len);
                self.v4_attributes.push(index);
            }
            Prefix::V6 { addr, len } => {
                let (hi, lo) = crate::net::split_v6(addr);
                self.v6_addresses.extend([hi, lo]);
                self.v6_lengths.push(len);
                self.v6_attributes.push(index);
            }
        }
        self
    }

    /// Adds a FlowSpec rule with its attributes (actions among the extended
    /// communities: [`crate::flow::attributes`] builds them).
    pub fn add_flow(&mut self, rule: &FlowRule, attributes: &Attributes) -> &mut Self {
        let index = crate::attributes::index_in(&mut self.attributes, attributes);
        self.flows.push(rule.to_wit());
        self.flow_attributes.push(index);
        self
    }
}

#[inline(always)]
fn attribute_set(sets: &[Attributes], index: u32) -> &Attributes {
    match sets.get(index as usize) {
        Some(set) => set,
        None => bad_index(index, sets.len()),
    }
}

#[cold]
#[inline(never)]
fn bad_index(index: u32, sets: usize) -> ! {
    panic!("wasmbgp-sdk: malformed route batch: attribute index {index} with {sets} attribute sets")
}

/// The verdict bookkeeping of one batch.
struct Book<'b> {
    sets: &'b [Attributes],
    new_sets: Vec<Attributes>,
    scratch: &'b mut Scratch,
    /// The previous prepared modification's key (set index, id) and code.
    last: Option<(u32, u64, u32)>,
}

impl Book<'_> {
    /// The verdict code of `verdict` for a route with attribute set `set`.
    #[inline(always)]
    fn code(&mut self, verdict: Verdict<'_>, set: u32) -> u32 {
        match verdict {
            Verdict::Accept => ACCEPT,
            Verdict::Reject => REJECT,
            Verdict::Modify(modification) => match self.last {
                Some((last_set, last_id, code))
                    if last_set == set && last_id == modification.id =>
                {
                    code
                }
                _ => self.prepared(set, modification),
            },
            Verdict::ModifyOwned(modification) => self.owned(set, modification),
        }
    }

    #[inline(never)]
    fn prepared(&mut self, set: u32, modification: &Modification) -> u32 {
        let code = match self.scratch.by_id.get(&(set, modification.id)) {
            Some(&code) => code,
            None => {
                let code = self.apply(set, &modification.changes);
                self.scratch.by_id.insert((set, modification.id), code);
                code
            }
        };
        self.last = Some((set, modification.id, code));
        code
    }

    #[inline(never)]
    fn owned(&mut self, set: u32, modification: Modification) -> u32 {
        // Split borrows: the entry holds the map, apply needs the sets.
        let (sets, new_sets) = (self.sets, &mut self.new_sets);
        match self.scratch.by_contents.entry((set, modification.changes)) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => {
                let code = apply(sets, new_sets, set, &entry.key().1);
                *entry.insert(code)
            }
        }
    }

    fn apply(&mut self, set: u32, changes: &Changes) -> u32 {
        apply(self.sets, &mut self.new_sets, set, changes)
    }
}

/// Applies `changes` to attribute set `set`: ACCEPT when nothing changes,
/// else the code of a new set.
fn apply(sets: &[Attributes], new_sets: &mut Vec<Attributes>, set: u32, changes: &Changes) -> u32 {
    let input = attribute_set(sets, set);
    let output = changes.apply(input);
    if output == *input {
        return ACCEPT;
    }
    new_sets.push(output);
    // Fewer new sets than routes, and routes are counted in u32 by the WIT.
    MODIFIED + (new_sets.len() - 1) as u32
}

thread_local! {
    /// The policy instance, created by `init`.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// The glue of `init`: builds `T` and keeps it for [`run_evaluate`]. Public
/// for plugins that implement [`Guest`] themselves (see
/// [`export_policy_guest!`](crate::export_policy_guest)).
pub fn run_init<T: Policy>(
    settings: Vec<(String, String)>,
    files: Vec<DataFile>,
) -> Result<(), String> {
    let settings = Settings::new(settings);
    let policy = T::init(&settings, &files).map_err(|e| e.to_string())?;
    INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(Evaluator::new(policy))));
    Ok(())
}

/// The glue of `evaluate`: runs the `T` built by [`run_init`] over `batch`.
///
/// # Panics
///
/// Before a successful `init` (the host never does that), or on a malformed
/// batch (see [`Evaluator::evaluate`]).
pub fn run_evaluate<T: Policy>(batch: RouteBatch) -> Verdicts {
    INSTANCE.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot.as_mut().and_then(|b| b.downcast_mut::<Evaluator<T>>()) {
            Some(evaluator) => evaluator.evaluate(&batch),
            None => panic!("wasmbgp-sdk: evaluate called before a successful init"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Aggregator;

    fn session() -> Session {
        Session {
            neighbor: IpAddress::V4(0x7f00_0002),
            peer_as: 65000,
            local_as: 65001,
        }
    }

    fn set(med: u32) -> Attributes {
        Attributes::new().with_med(med).with_as_path(&[65000])
    }

    fn batch(sets: Vec<Attributes>, v4: &[(&str, u32)], v6: &[(&str, u32)]) -> RouteBatch {
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        let mut b = RouteBatch {
            direction: Direction::Import,
            session: session(),
            attributes: sets,
            v4_addresses: vec![],
            v4_lengths: vec![],
            v4_attributes: vec![],
            v6_addresses: vec![],
            v6_lengths: vec![],
            v6_attributes: vec![],
            flows: vec![],
            flow_attributes: vec![],
        };
        for &(prefix, index) in v4 {
            let Prefix::V4 { addr, len } = p(prefix) else {
                panic!()
            };
            b.v4_addresses.push(addr);
            b.v4_lengths.push(len);
            b.v4_attributes.push(index);
        }
        for &(prefix, index) in v6 {
            let Prefix::V6 { addr, len } = p(prefix) else {
                panic!()
            };
            let (hi, lo) = crate::net::split_v6(addr);
            b.v6_addresses.extend([hi, lo]);
            b.v6_lengths.push(len);
            b.v6_attributes.push(index);
        }
        b
    }

    /// Tags 10/8, rejects 192.168/16, sets MED per route (owned) on
    /// 172.16/12, accepts the rest.
    struct Test {
        tag: Modification,
        seen: Vec<String>,
    }

    impl Policy for Test {
        fn init(_: &Settings, _: &[DataFile]) -> Result<Self, Error> {
            Ok(Test {
                tag: Modification::new().add_community(Community::new(65001, 1)),
                seen: vec![],
            })
        }
        fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
            self.seen.push(route.prefix().to_string());
            let p = route.prefix();
            if "10.0.0.0/8".parse::<Prefix>().unwrap().contains(&p)
                || "2001:db8::/32".parse::<Prefix>().unwrap().contains(&p)
            {
                Verdict::Modify(&self.tag)
            } else if "192.168.0.0/16".parse::<Prefix>().unwrap().contains(&p) {
                Verdict::Reject
            } else if "172.16.0.0/12".parse::<Prefix>().unwrap().contains(&p) {
                Verdict::ModifyOwned(Modification::new().set_med(7))
            } else {
                Verdict::Accept
            }
        }
    }

    #[test]
    fn verdicts_are_deduplicated_per_set_and_modification() {
        let mut evaluator = Evaluator::new(Test::init(&Settings::default(), &[]).unwrap());
        let b = batch(
            vec![set(1), set(2), set(7)],
            &[
                ("10.0.0.0/24", 0),
                ("10.0.1.0/24", 0),
                ("10.0.2.0/24", 1),
                ("10.0.3.0/24", 0),
                ("192.168.0.0/24", 0),
                ("8.8.8.0/24", 1),
                ("172.16.0.0/24", 0),
                ("172.16.1.0/24", 0),
                ("172.16.2.0/24", 2),
            ],
            &[("2001:db8::/48", 1), ("2001:db9::/48", 1)],
        );
        let v = evaluator.evaluate(&b);
        assert_eq!(v.routes, [2, 2, 3, 2, 1, 0, 4, 4, 0, 3, 0]);
        assert_eq!(v.attributes.len(), 3);
        assert_eq!(v.attributes[0].communities, [(65001 << 16) | 1]);
        assert_eq!(v.attributes[0].med, Some(1));
        assert_eq!(v.attributes[1].med, Some(2));
        assert_eq!(v.attributes[2].med, Some(7));
        assert!(v.attributes[2].communities.is_empty());
        assert_eq!(evaluator.policy().seen.len(), 11);
        assert_eq!(evaluator.policy().seen[9], "2001:db8::/48");
        // The next batch starts afresh (indices are per batch).
        let v = evaluator.evaluate(&batch(vec![set(5)], &[("10.0.0.0/24", 0)], &[]));
        assert_eq!(v.routes, [2]);
        assert_eq!(v.attributes[0].med, Some(5));
    }

    #[test]
    fn views_walk_the_batch_in_verdict_order() {
        let b = batch(
            vec![set(1), set(2)],
            &[("10.0.0.0/24", 1), ("10.0.1.0/24", 0)],
            &[("2001:db8::/48", 1)],
        );
        let seen: Vec<(String, u32, Option<u32>)> = views(&b)
            .map(|r| {
                (
                    r.prefix().to_string(),
                    r.attributes_index(),
                    r.attributes().med,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("10.0.0.0/24".into(), 1, Some(2)),
                ("10.0.1.0/24".into(), 0, Some(1)),
                ("2001:db8::/48".into(), 1, Some(2))
            ]
        );
    }

    #[test]
    #[should_panic(expected = "malformed route batch")]
    fn a_malformed_batch_is_refused() {
        let mut b = batch(vec![set(1)], &[("10.0.0.0/24", 0)], &[]);
        b.v4_lengths.push(24);
        Evaluator::new(Test::init(&Settings::default(), &[]).unwrap()).evaluate(&b);
    }

    #[test]
    #[should_panic(expected = "attribute index 3")]
    fn an_attribute_index_out_of_range_is_refused() {
        let b = batch(vec![set(1)], &[("10.0.0.0/24", 3)], &[]);
        Evaluator::new(Test::init(&Settings::default(), &[]).unwrap()).evaluate(&b);
    }

    #[test]
    fn a_changed_modification_is_not_mistaken_for_the_old_one() {
        struct Counter {
            m: Modification,
            n: u32,
        }
        impl Policy for Counter {
            fn init(_: &Settings, _: &[DataFile]) -> Result<Self, Error> {
                Ok(Counter {
                    m: Modification::new(),
                    n: 0,
                })
            }
            fn evaluate(&mut self, _: &Route<'_>) -> Verdict<'_> {
                self.n += 1;
                // Rebuilt in place at the same address: must get a new id.
                self.m = std::mem::take(&mut self.m).set_med(self.n);
                Verdict::Modify(&self.m)
            }
        }
        let mut evaluator = Evaluator::new(Counter::init(&Settings::default(), &[]).unwrap());
        let v = evaluator.evaluate(&batch(
            vec![set(0)],
            &[("10.0.0.0/24", 0), ("10.0.1.0/24", 0)],
            &[],
        ));
        assert_eq!(v.routes, [2, 3]);
        assert_eq!(v.attributes[1].med, Some(2));
    }

    #[test]
    fn unchanged_sets_are_accepted_as_they_are() {
        let set = Attributes::new().with_community(Community::NO_EXPORT);
        let add = Modification::new().add_community(Community::NO_EXPORT);
        assert_eq!(add.apply(&set), set);
        let mut book_scratch = Scratch::default();
        let sets = [set];
        let mut book = Book {
            sets: &sets,
            new_sets: vec![],
            scratch: &mut book_scratch,
            last: None,
        };
        assert_eq!(book.code(Verdict::Modify(&add), 0), ACCEPT);
        assert_eq!(book.code(Verdict::ModifyOwned(add.clone()), 0), ACCEPT);
        assert!(book.new_sets.is_empty());
    }

    #[test]
    fn modifications_apply_every_change() {
        let input = Attributes {
            communities: vec![1, 2, 3],
            large_communities: vec![(1, 2, 3)],
            extended_communities: vec![9],
            aggregator: Some(Aggregator { asn: 1, address: 2 }),
            unknown: vec![UnknownAttribute {
                flags: 0xc0,
                code: 99,
                value: vec![1],
            }],
            ..set(10)
        };
        let m = Modification::new()
            .remove_med()
            .set_local_pref(200)
            .set_next_hop("192.0.2.1".parse::<IpAddress>().unwrap())
            .set_origin(Origin::Incomplete)
            .prepend(&[65001, 65001])
            .add_community(Community(4))
            .remove_community(Community(2))
            .add_large_community(LargeCommunity::new(7, 8, 9))
            .replace_extended_communities([ExtendedCommunity(5)])
            .remove_unknown(99)
            .set_unknown(0xc0, 100, vec![2]);
        let out = m.apply(&input);
        assert_eq!(out.med, None);
        assert_eq!(out.local_pref, Some(200));
        assert_eq!(out.next_hop, Some(IpAddress::V4(0xc000_0201)));
        assert_eq!(out.origin, Origin::Incomplete);
        assert_eq!(
            out.as_path,
            vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns: vec![65001, 65001, 65000]
            }]
        );
        assert_eq!(out.communities, [1, 3, 4]);
        assert_eq!(out.large_communities, [(1, 2, 3), (7, 8, 9)]);
        assert_eq!(out.extended_communities, [5]);
        assert_eq!(
            out.unknown,
            [UnknownAttribute {
                flags: 0xc0,
                code: 100,
                value: vec![2]
            }]
        );
        assert_eq!(out.aggregator, input.aggregator);
        // Later calls win on the same community.
        let m = Modification::new()
            .remove_community(Community(1))
            .add_community(Community(1));
        assert_eq!(m.apply(&input).communities, [1, 2, 3]);
        assert!(Modification::new().is_empty());
    }

    #[test]
    fn prepending_respects_segment_sizes() {
        let mut path = vec![AsSegment {
            kind: SegmentKind::Set,
            asns: vec![1, 2],
        }];
        prepend(&mut path, &[7; 300]);
        assert_eq!(
            path.iter().map(|s| s.asns.len()).collect::<Vec<_>>(),
            [45, 255, 2]
        );
        let mut path = vec![AsSegment {
            kind: SegmentKind::Sequence,
            asns: vec![1; 250],
        }];
        prepend(&mut path, &[5, 6, 7, 8, 9, 10]);
        assert_eq!(path[0].asns, [5]);
        assert_eq!(path[1].asns.len(), 255);
        assert_eq!(&path[1].asns[..5], &[6, 7, 8, 9, 10]);
    }

    /// This thread's CPU time in nanoseconds (the machines running the
    /// benchmarks are shared: wall time would measure the neighbors).
    #[cfg(target_os = "linux")]
    fn cpu_ns() -> u128 {
        #[repr(C)]
        struct Timespec {
            secs: i64,
            nanos: i64,
        }
        unsafe extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { secs: 0, nanos: 0 };
        // SAFETY: clock_gettime writes one timespec, which `ts` is.
        unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.secs as u128 * 1_000_000_000 + ts.nanos as u128
    }

    /// The glue's own cost per route: 1M IPv4 routes over 4 attribute
    /// sets, with a policy that accepts, rejects or applies a prepared
    /// modification by the route's position. Run with
    /// `cargo test --release -p wasmbgp-sdk glue_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn glue_cost_per_route() {
        struct ByPosition {
            tag: Modification,
            verdict: u32,
        }
        impl Policy for ByPosition {
            fn init(_: &Settings, _: &[DataFile]) -> Result<Self, Error> {
                Ok(ByPosition {
                    tag: Modification::new().add_community(Community(1)),
                    verdict: 0,
                })
            }
            fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
                let Prefix::V4 { addr, .. } = route.prefix() else {
                    return Verdict::Accept;
                };
                match (addr >> 8) % 4 {
                    _ if self.verdict == 0 => Verdict::Accept,
                    0 | 1 => Verdict::Modify(&self.tag),
                    2 => Verdict::Reject,
                    _ => Verdict::Accept,
                }
            }
        }
        let mut b = batch((0..4).map(set).collect(), &[], &[]);
        for i in 0..1_000_000u32 {
            b.v4_addresses.push(i << 8);
            b.v4_lengths.push(24);
            b.v4_attributes.push(i / 250_000);
        }
        for mode in [0, 1] {
            let mut evaluator =
                Evaluator::new(ByPosition::init(&Settings::default(), &[]).unwrap());
            evaluator.policy().verdict = mode;
            let mut best = u128::MAX;
            for _ in 0..10 {
                let start = cpu_ns();
                std::hint::black_box(evaluator.evaluate(&b));
                best = best.min(cpu_ns() - start);
            }
            let name = if mode == 0 {
                "accept-all"
            } else {
                "accept/reject/modify"
            };
            println!(
                "{name}: {:.1} ns per route (CPU time, best of 10)",
                best as f64 / 1e6
            );
        }
    }

    /// A policy written for prefixes only: rules go to the default.
    struct PrefixesOnly;

    impl Policy for PrefixesOnly {
        fn init(_: &Settings, _: &[DataFile]) -> Result<Self, Error> {
            Ok(PrefixesOnly)
        }
        fn evaluate(&mut self, _: &Route<'_>) -> Verdict<'_> {
            Verdict::Reject
        }
    }

    /// Rejects rules to 192.0.2.0/24, turns discards into a 9600 bytes/s
    /// rate limit, tags IPv6 rules, accepts the rest.
    struct Flows {
        protected: Prefix,
        soften: Modification,
        tag: Modification,
        seen: Vec<(String, Vec<Action>, u32)>,
    }

    impl Policy for Flows {
        fn init(_: &Settings, _: &[DataFile]) -> Result<Self, Error> {
            Ok(Flows {
                protected: "192.0.2.0/24".parse().unwrap(),
                soften: Modification::new()
                    .remove_action(Action::Discard)
                    .add_action(Action::RateLimit {
                        bytes_per_second: 9600.0,
                    }),
                tag: Modification::new().add_community(Community::new(65001, 6)),
                seen: vec![],
            })
        }
        fn evaluate(&mut self, _: &Route<'_>) -> Verdict<'_> {
            Verdict::Accept
        }
        fn evaluate_flow(&mut self, route: &FlowRoute<'_>) -> Verdict<'_> {
            self.seen.push((
                route.rule().to_string(),
                route.actions().collect(),
                route.attributes_index(),
            ));
            if route
                .destination()
                .is_some_and(|d| self.protected.contains(&d))
            {
                Verdict::Reject
            } else if route.actions().any(|a| a == Action::Discard) {
                Verdict::Modify(&self.soften)
            } else if route.is_ipv6() {
                Verdict::Modify(&self.tag)
            } else {
                Verdict::Accept
            }
        }
    }

    fn flow_batch() -> RouteBatch {
        use crate::flow::Protocol;
        let discard =
            crate::flow::attributes(&FlowRule::ipv4(), &[Action::Discard], &Attributes::new())
                .unwrap();
        let mut b = RouteBatch::new(Direction::Import, session());
        b.add_flow(
            &FlowRule::for_destination("192.0.2.10/32".parse().unwrap()).protocol(Protocol::UDP),
            &discard,
        )
        .add("10.0.0.0/8".parse().unwrap(), &set(1))
        .add_flow(
            &FlowRule::for_destination("198.51.100.0/24".parse().unwrap()),
            &discard,
        )
        .add_flow(
            &FlowRule::for_destination("2001:db8::/32".parse().unwrap()),
            &Attributes::new(),
        )
        .add("2001:db8::/48".parse().unwrap(), &set(1));
        b
    }

    #[test]
    fn a_policy_that_ignores_flows_accepts_them_unchanged() {
        let b = flow_batch();
        let v = Evaluator::new(PrefixesOnly).evaluate(&b);
        // IPv4, IPv6, then the three rules.
        assert_eq!(v.routes, [REJECT, REJECT, ACCEPT, ACCEPT, ACCEPT]);
        assert!(v.attributes.is_empty());
    }

    #[test]
    fn flow_rules_are_judged_after_the_prefixes() {
        let b = flow_batch();
        assert_eq!(b.attributes.len(), 3);
        let mut evaluator = Evaluator::new(Flows::init(&Settings::default(), &[]).unwrap());
        let v = evaluator.evaluate(&b);
        assert_eq!(v.routes, [ACCEPT, ACCEPT, REJECT, MODIFIED, MODIFIED + 1]);
        assert_eq!(
            v.attributes[0].flow_actions().collect::<Vec<_>>(),
            [Action::RateLimit {
                bytes_per_second: 9600.0
            }]
        );
        assert_eq!(v.attributes[1].communities, [(65001 << 16) | 6]);
        let seen = &evaluator.policy().seen;
        assert_eq!(
            seen[0],
            (
                "destination 192.0.2.10/32 protocol =udp".to_string(),
                vec![Action::Discard],
                0
            )
        );
        assert_eq!(seen[2].0, "destination 2001:db8::/32");
        assert!(seen[2].1.is_empty());

        // The views walk the same rules; BatchInfo counts them.
        let rules: Vec<String> = flow_views(&b).map(|r| r.to_rule().to_string()).collect();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[1], "destination 198.51.100.0/24");
        assert_eq!(views(&b).count(), 2);
        struct Count(usize, usize);
        impl Policy for Count {
            fn init(_: &Settings, _: &[DataFile]) -> Result<Self, Error> {
                Ok(Count(0, 0))
            }
            fn begin_batch(&mut self, batch: &BatchInfo<'_>) {
                (self.0, self.1) = (batch.flow_routes, batch.routes());
            }
            fn evaluate(&mut self, _: &Route<'_>) -> Verdict<'_> {
                Verdict::Accept
            }
        }
        let mut count = Evaluator::new(Count(0, 0));
        count.evaluate(&b);
        assert_eq!((count.policy().0, count.policy().1), (3, 5));
    }

    #[test]
    #[should_panic(expected = "flow columns 1/0")]
    fn a_flow_without_attributes_is_refused() {
        let mut b = flow_batch();
        b.flow_attributes.clear();
        b.flows.truncate(1);
        Evaluator::new(PrefixesOnly).evaluate(&b);
    }

    #[test]
    fn actions_are_added_and_removed_as_communities() {
        let hop: IpAddress = "192.0.2.254".parse().unwrap();
        let m = Modification::new()
            .add_action(Action::Mark(10))
            .add_action(Action::RedirectToIp(hop))
            .remove_action(Action::Sample);
        let input = Attributes::new()
            .with_extended_community(ExtendedCommunity(Action::Sample.community()));
        let out = m.apply(&input);
        assert_eq!(out.next_hop, Some(hop));
        assert_eq!(
            out.flow_actions().collect::<Vec<_>>(),
            [Action::Mark(10), Action::RedirectToIp(hop)]
        );
    }

    #[test]
    fn data_files_are_found_by_path() {
        let files = vec![DataFile {
            path: "/etc/vrps.json".into(),
            contents: b"{}".to_vec(),
        }];
        assert_eq!(
            find_file(&files, "/etc/vrps.json").unwrap().text().unwrap(),
            "{}"
        );
        let e = find_file(&files, "vrps.json").unwrap_err().to_string();
        assert!(
            e.contains("/etc/vrps.json") && e.contains("grants.files"),
            "{e}"
        );
    }
}
