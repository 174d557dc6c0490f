//! Exporters: the [`Exporter`] trait, typed views of the events, and the
//! glue that hands a batch of events to an exporter.
//!
//! # Events as views
//!
//! The host delivers events in batches (`on-events`). The glue walks a
//! batch and calls [`Exporter::on_event`] once per event with an [`Event`]
//! that borrows the batch: nothing is copied. Routes come in columns like a
//! policy batch (addresses, lengths, an index into the update's distinct
//! attribute sets); [`Routes::announced`] turns a row into a
//! `(Prefix, &Attributes)` pair on the stack and [`Routes::withdrawn`] into
//! a [`Prefix`], so walking a million announced routes allocates nothing
//! and costs a few nanoseconds per route. FlowSpec rules travel beside the
//! prefixes: [`Routes::announced_flows`] gives `(&types::FlowRule,
//! &Attributes)` pairs (the rule prints as ExaBGP's words, the traffic
//! actions are [`Attributes::flow_actions`]) and [`Routes::withdrawn_flows`]
//! the withdrawn rules; [`Routes::announced`] and [`Routes::withdrawn`]
//! never include them.
//!
//! ```ignore
//! use wasmbgp_sdk::exporter::{Event, Exporter};
//! use wasmbgp_sdk::{Error, Settings};
//!
//! struct Count { routes: u64 }
//!
//! impl Exporter for Count {
//!     fn init(settings: &Settings) -> Result<Self, Error> {
//!         settings.only(&[])?;
//!         Ok(Count { routes: 0 })
//!     }
//!     fn on_event(&mut self, event: Event<'_>) {
//!         if let Event::Routes(routes) = event {
//!             for (prefix, attributes) in routes.announced() {
//!                 self.routes += 1;
//!                 let _ = (prefix, attributes.med);
//!             }
//!         }
//!     }
//! }
//!
//! wasmbgp_sdk::export_exporter!(Count);
//! ```
//!
//! # Snapshots
//!
//! Every new, restarted or reloaded instance is first given a snapshot: the
//! sessions (as [`Event::Session`] with `old == new`) and their routes, then
//! [`Event::EndOfSnapshot`]; the events after it are changes. After
//! [`Event::Lagged`] the exporter's view is incomplete until the next
//! snapshot, which [`feed::resync`](crate::feed::resync) asks for.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;

use crate::flow::FlowRule;
use crate::net::{Prefix, join_v6};
use crate::types::{self, Attributes, Health};
use crate::{Error, Settings};

pub use crate::bindings::exporter::exports::wasmbgp::plugin::event_sink::Guest;
pub use crate::bindings::exporter::wasmbgp::plugin::events::{
    EndOfRib, Event as RawEvent, Family, HealthChange, MessageDirection, Notification,
    PluginChange, PluginChangeKind, RouteDirection, RouteUpdate, Session, SessionState,
    StateChange,
};

/// An exporter: the one trait an `exporter` plugin implements.
///
/// The host never waits for an exporter: one that falls behind loses events
/// (reported as [`Event::Lagged`]), so `on_event` should be quick and
/// should not allocate per route.
pub trait Exporter: Sized + 'static {
    /// Builds the exporter from the operator's settings. An error is a
    /// configuration error and is shown to the operator.
    fn init(settings: &Settings) -> Result<Self, Error>;

    /// Handles one event. Events come in the order the speaker saw them.
    fn on_event(&mut self, event: Event<'_>);

    /// Called once per batch (one `on-events` call), before its events,
    /// with their number. Optional.
    fn begin_batch(&mut self, events: usize) {
        let _ = events;
    }

    /// Called once per batch, after its last event: the place to flush what
    /// the batch buffered (one `output::append` per batch, say). Optional.
    fn end_batch(&mut self) {}
}

/// One event, as a view into the batch.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A session changed state (in a snapshot: is in this state, `old ==
    /// new`, reason "snapshot").
    Session(&'a StateChange),
    /// Routes announced or withdrawn.
    Routes(Routes<'a>),
    /// End-of-RIB from a neighbor.
    EndOfRib(&'a EndOfRib),
    /// A NOTIFICATION sent or received.
    Notification(&'a Notification),
    /// A health check's verdict changed.
    Health(&'a HealthChange),
    /// A plugin's lifecycle.
    Plugin(&'a PluginChange),
    /// This many events were dropped before the next one: the view is
    /// incomplete until the next snapshot (see [`crate::feed::resync`]).
    Lagged(u64),
    /// The end of the snapshot: the events after it are changes.
    EndOfSnapshot,
}

impl<'a> Event<'a> {
    /// The view of a WIT event.
    ///
    /// # Panics
    ///
    /// On a route update whose columns break the WIT contract (see
    /// [`Routes::new`]).
    pub fn new(event: &'a RawEvent) -> Self {
        match event {
            RawEvent::Session(change) => Event::Session(change),
            RawEvent::Routes(update) => Event::Routes(Routes::new(update)),
            RawEvent::EndOfRib(eor) => Event::EndOfRib(eor),
            RawEvent::Notification(notification) => Event::Notification(notification),
            RawEvent::Health(change) => Event::Health(change),
            RawEvent::Plugin(change) => Event::Plugin(change),
            RawEvent::Lagged(n) => Event::Lagged(*n),
            RawEvent::EndOfSnapshot => Event::EndOfSnapshot,
        }
    }

    /// The session the event is about, if any.
    pub fn session(&self) -> Option<&'a Session> {
        match self {
            Event::Session(change) => Some(&change.session),
            Event::Routes(routes) => Some(routes.session()),
            Event::EndOfRib(eor) => Some(&eor.session),
            Event::Notification(notification) => Some(&notification.session),
            _ => None,
        }
    }
}

/// A route update as a view over its columns.
#[derive(Clone, Copy)]
pub struct Routes<'a> {
    update: &'a RouteUpdate,
}

impl fmt::Debug for Routes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("session", self.session())
            .field("direction", &self.direction())
            .field("announced", &self.announced_count())
            .field("withdrawn", &self.withdrawn_count())
            .field("announced_flows", &self.announced_flow_count())
            .field("withdrawn_flows", &self.withdrawn_flow_count())
            .finish()
    }
}

impl<'a> Routes<'a> {
    /// The view of `update`.
    ///
    /// # Panics
    ///
    /// When the columns of a family have different lengths (a host bug: a
    /// trap is the clearest report). An attribute index out of range panics
    /// when its route is reached.
    pub fn new(update: &'a RouteUpdate) -> Self {
        let u = update;
        let v4 = u.v4_addresses.len();
        let v6 = u.v6_lengths.len();
        let w6 = u.withdrawn_v6_lengths.len();
        if u.v4_lengths.len() != v4
            || u.v4_attributes.len() != v4
            || u.v6_addresses.len() != 2 * v6
            || u.v6_attributes.len() != v6
            || u.withdrawn_v4_lengths.len() != u.withdrawn_v4_addresses.len()
            || u.withdrawn_v6_addresses.len() != 2 * w6
            || u.flow_attributes.len() != u.flows.len()
        {
            malformed(u);
        }
        Routes { update }
    }

    /// The session: neighbor address, peer AS, local AS.
    #[inline]
    pub fn session(&self) -> &'a Session {
        &self.update.session
    }

    /// Received (pre- or post-policy) or sent.
    #[inline]
    pub fn direction(&self) -> RouteDirection {
        self.update.direction
    }

    /// The distinct attribute sets of the announced routes; the indices of
    /// [`Routes::announced_indexed`] point here.
    #[inline]
    pub fn attribute_sets(&self) -> &'a [Attributes] {
        &self.update.attributes
    }

    /// The WIT record.
    #[inline]
    pub fn raw(&self) -> &'a RouteUpdate {
        self.update
    }

    /// How many prefixes (IPv4 and IPv6 routes) are announced: the length of
    /// [`Routes::announced`]. FlowSpec rules are counted apart
    /// ([`Routes::announced_flow_count`]).
    #[inline]
    pub fn announced_count(&self) -> usize {
        self.update.v4_addresses.len() + self.update.v6_lengths.len()
    }

    /// How many prefixes are withdrawn (FlowSpec rules apart:
    /// [`Routes::withdrawn_flow_count`]).
    #[inline]
    pub fn withdrawn_count(&self) -> usize {
        self.update.withdrawn_v4_addresses.len() + self.update.withdrawn_v6_lengths.len()
    }

    /// How many FlowSpec rules are announced.
    #[inline]
    pub fn announced_flow_count(&self) -> usize {
        self.update.flows.len()
    }

    /// How many FlowSpec rules are withdrawn.
    #[inline]
    pub fn withdrawn_flow_count(&self) -> usize {
        self.update.withdrawn_flows.len()
    }

    /// True when nothing is announced or withdrawn, prefix or FlowSpec rule.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.announced_count() == 0
            && self.withdrawn_count() == 0
            && self.announced_flow_count() == 0
            && self.withdrawn_flow_count() == 0
    }

    /// The announced routes, IPv4 first, as (prefix, attributes) pairs;
    /// routes with the same attribute set share one `&Attributes`.
    #[inline]
    pub fn announced(&self) -> impl ExactSizeIterator<Item = (Prefix, &'a Attributes)> + 'a {
        let sets = self.attribute_sets();
        self.announced_indexed()
            .map(move |(prefix, index)| (prefix, attribute_set(sets, index)))
    }

    /// The announced routes, IPv4 first, as (prefix, index into
    /// [`Routes::attribute_sets`]): equal indices, equal attributes, for a
    /// per-update cache of whatever depends on the attributes alone.
    #[inline]
    pub fn announced_indexed(&self) -> Announced<'a> {
        Announced {
            update: self.update,
            next: 0,
        }
    }

    /// The withdrawn prefixes, IPv4 first.
    #[inline]
    pub fn withdrawn(&self) -> Withdrawn<'a> {
        Withdrawn {
            update: self.update,
            next: 0,
        }
    }

    /// The announced FlowSpec rules (both families, components in the RFC's
    /// order) with their attributes, whose extended communities are the
    /// rules' traffic actions ([`Attributes::flow_actions`]). A rule prints
    /// as ExaBGP's words; [`FlowRule::from_wit`] gives the builder type.
    #[inline]
    pub fn announced_flows(
        &self,
    ) -> impl ExactSizeIterator<Item = (&'a types::FlowRule, &'a Attributes)> + 'a {
        let sets = self.attribute_sets();
        self.announced_flows_indexed()
            .map(move |(rule, index)| (rule, attribute_set(sets, index)))
    }

    /// The announced FlowSpec rules with the index of their attribute set in
    /// [`Routes::attribute_sets`].
    #[inline]
    pub fn announced_flows_indexed(
        &self,
    ) -> impl ExactSizeIterator<Item = (&'a types::FlowRule, u32)> + 'a {
        let u = self.update;
        u.flows.iter().zip(u.flow_attributes.iter().copied())
    }

    /// The withdrawn FlowSpec rules.
    #[inline]
    pub fn withdrawn_flows(&self) -> std::slice::Iter<'a, types::FlowRule> {
        self.update.withdrawn_flows.iter()
    }
}

/// The announced routes of a [`Routes`] as (prefix, attribute-set index).
#[derive(Clone, Debug)]
pub struct Announced<'a> {
    update: &'a RouteUpdate,
    next: usize,
}

impl Iterator for Announced<'_> {
    type Item = (Prefix, u32);

    #[inline]
    fn next(&mut self) -> Option<(Prefix, u32)> {
        let u = self.update;
        let i = self.next;
        let v4 = u.v4_addresses.len();
        if i < v4 {
            self.next += 1;
            return Some((
                Prefix::V4 {
                    addr: u.v4_addresses[i],
                    len: u.v4_lengths[i],
                },
                u.v4_attributes[i],
            ));
        }
        let j = i - v4;
        if j < u.v6_lengths.len() {
            self.next += 1;
            let addr = join_v6((u.v6_addresses[2 * j], u.v6_addresses[2 * j + 1]));
            return Some((
                Prefix::V6 {
                    addr,
                    len: u.v6_lengths[j],
                },
                u.v6_attributes[j],
            ));
        }
        None
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.update.v4_addresses.len() + self.update.v6_lengths.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Announced<'_> {}

/// The withdrawn prefixes of a [`Routes`].
#[derive(Clone, Debug)]
pub struct Withdrawn<'a> {
    update: &'a RouteUpdate,
    next: usize,
}

impl Iterator for Withdrawn<'_> {
    type Item = Prefix;

    #[inline]
    fn next(&mut self) -> Option<Prefix> {
        let u = self.update;
        let i = self.next;
        let v4 = u.withdrawn_v4_addresses.len();
        if i < v4 {
            self.next += 1;
            return Some(Prefix::V4 {
                addr: u.withdrawn_v4_addresses[i],
                len: u.withdrawn_v4_lengths[i],
            });
        }
        let j = i - v4;
        if j < u.withdrawn_v6_lengths.len() {
            self.next += 1;
            let addr = join_v6((
                u.withdrawn_v6_addresses[2 * j],
                u.withdrawn_v6_addresses[2 * j + 1],
            ));
            return Some(Prefix::V6 {
                addr,
                len: u.withdrawn_v6_lengths[j],
            });
        }
        None
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let u = self.update;
        let n = u.withdrawn_v4_addresses.len() + u.withdrawn_v6_lengths.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Withdrawn<'_> {}

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
    panic!(
        "wasmbgp-sdk: malformed route update: attribute index {index} with {sets} attribute sets"
    )
}

#[cold]
#[inline(never)]
fn malformed(u: &RouteUpdate) -> ! {
    panic!(
        "wasmbgp-sdk: malformed route update: announced v4 columns {}/{}/{}, v6 {}/{}/{}, flows {}/{}; withdrawn v4 {}/{}, v6 {}/{}",
        u.v4_addresses.len(),
        u.v4_lengths.len(),
        u.v4_attributes.len(),
        u.v6_addresses.len(),
        u.v6_lengths.len(),
        u.v6_attributes.len(),
        u.flows.len(),
        u.flow_attributes.len(),
        u.withdrawn_v4_addresses.len(),
        u.withdrawn_v4_lengths.len(),
        u.withdrawn_v6_addresses.len(),
        u.withdrawn_v6_lengths.len()
    )
}

impl RouteUpdate {
    /// An empty update for `session` and `direction`, to be filled with
    /// [`RouteUpdate::announce`] and [`RouteUpdate::withdraw`] (tests,
    /// benchmarks).
    pub fn new(session: Session, direction: RouteDirection) -> Self {
        RouteUpdate {
            session,
            direction,
            attributes: Vec::new(),
            v4_addresses: Vec::new(),
            v4_lengths: Vec::new(),
            v4_attributes: Vec::new(),
            v6_addresses: Vec::new(),
            v6_lengths: Vec::new(),
            v6_attributes: Vec::new(),
            flows: Vec::new(),
            flow_attributes: Vec::new(),
            withdrawn_v4_addresses: Vec::new(),
            withdrawn_v4_lengths: Vec::new(),
            withdrawn_v6_addresses: Vec::new(),
            withdrawn_v6_lengths: Vec::new(),
            withdrawn_flows: Vec::new(),
        }
    }

    /// Adds an announced FlowSpec rule (its attribute set shared as in
    /// [`RouteUpdate::announce`]).
    pub fn announce_flow(&mut self, rule: &FlowRule, attributes: &Attributes) -> &mut Self {
        let index = crate::attributes::index_in(&mut self.attributes, attributes);
        self.flows.push(rule.to_wit());
        self.flow_attributes.push(index);
        self
    }

    /// Adds a withdrawn FlowSpec rule.
    pub fn withdraw_flow(&mut self, rule: &FlowRule) -> &mut Self {
        self.withdrawn_flows.push(rule.to_wit());
        self
    }

    /// Adds an announced route; its attribute set is added to the update's
    /// distinct sets unless an equal one is there already.
    pub fn announce(&mut self, prefix: Prefix, attributes: &Attributes) -> &mut Self {
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

    /// Adds a withdrawn prefix.
    pub fn withdraw(&mut self, prefix: Prefix) -> &mut Self {
        match prefix {
            Prefix::V4 { addr, len } => {
                self.withdrawn_v4_addresses.push(addr);
                self.withdrawn_v4_lengths.push(len);
            }
            Prefix::V6 { addr, len } => {
                let (hi, lo) = crate::net::split_v6(addr);
                self.withdrawn_v6_addresses.extend([hi, lo]);
                self.withdrawn_v6_lengths.push(len);
            }
        }
        self
    }
}

impl SessionState {
    /// The state's name: `idle`, `connect`, `active`, `open-sent`,
    /// `open-confirm`, `established`.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Idle => "idle",
            SessionState::Connect => "connect",
            SessionState::Active => "active",
            SessionState::OpenSent => "open-sent",
            SessionState::OpenConfirm => "open-confirm",
            SessionState::Established => "established",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl StateChange {
    /// True for the event of a snapshot (or any event that changes
    /// nothing): `old == new`.
    pub fn is_unchanged(&self) -> bool {
        self.old == self.new
    }

    /// True when the session just came up (`new` is established and `old`
    /// was not).
    pub fn came_up(&self) -> bool {
        self.new == SessionState::Established && self.old != SessionState::Established
    }

    /// True when the session just went down (left established).
    pub fn went_down(&self) -> bool {
        self.old == SessionState::Established && self.new != SessionState::Established
    }
}

impl RouteDirection {
    /// The direction's name: `received-pre-policy`, `received`, `sent`.
    pub fn name(self) -> &'static str {
        match self {
            RouteDirection::ReceivedPrePolicy => "received-pre-policy",
            RouteDirection::Received => "received",
            RouteDirection::Sent => "sent",
        }
    }
}

impl fmt::Display for RouteDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl MessageDirection {
    /// The direction's name: `sent` or `received`.
    pub fn name(self) -> &'static str {
        match self {
            MessageDirection::Sent => "sent",
            MessageDirection::Received => "received",
        }
    }
}

impl fmt::Display for MessageDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PluginChangeKind {
    /// The kind's name: `loaded`, `reloaded`, `restarted`, `faulted`,
    /// `denied`.
    pub fn name(self) -> &'static str {
        match self {
            PluginChangeKind::Loaded => "loaded",
            PluginChangeKind::Reloaded => "reloaded",
            PluginChangeKind::Restarted => "restarted",
            PluginChangeKind::Faulted => "faulted",
            PluginChangeKind::Denied => "denied",
        }
    }
}

impl fmt::Display for PluginChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Health {
    /// The health's name: `up`, `down`, `disabled`.
    pub fn name(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Disabled => "disabled",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Family {
    /// IPv4 unicast, (1, 1).
    pub const IPV4_UNICAST: Family = Family { afi: 1, safi: 1 };
    /// IPv6 unicast, (2, 1).
    pub const IPV6_UNICAST: Family = Family { afi: 2, safi: 1 };
    /// IPv4 FlowSpec (RFC 8955), (1, 133).
    pub const IPV4_FLOWSPEC: Family = Family { afi: 1, safi: 133 };
    /// IPv6 FlowSpec (RFC 8956), (2, 133).
    pub const IPV6_FLOWSPEC: Family = Family { afi: 2, safi: 133 };

    /// The AFI's name (`ipv4`, `ipv6`), if it is one of those.
    pub fn afi_name(&self) -> Option<&'static str> {
        match self.afi {
            1 => Some("ipv4"),
            2 => Some("ipv6"),
            _ => None,
        }
    }

    /// The SAFI's name (`unicast`, `multicast`, `flow` for FlowSpec, as
    /// ExaBGP says), if it is one of those.
    pub fn safi_name(&self) -> Option<&'static str> {
        match self.safi {
            1 => Some("unicast"),
            2 => Some("multicast"),
            133 => Some("flow"),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    /// "ipv4 unicast", "ipv6 unicast", "ipv4 flow" (ExaBGP's words), else
    /// "afi A safi S".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.afi_name(), self.safi_name()) {
            (Some(afi), Some(safi)) => write!(f, "{afi} {safi}"),
            _ => write!(f, "afi {} safi {}", self.afi, self.safi),
        }
    }
}

/// Runs an [`Exporter`] over batches of events: the glue behind
/// [`export_exporter!`](crate::export_exporter), usable directly in tests.
pub struct Dispatcher<T> {
    exporter: T,
}

impl<T: Exporter> Dispatcher<T> {
    /// Wraps an exporter (built with [`Exporter::init`], or by hand).
    pub fn new(exporter: T) -> Self {
        Dispatcher { exporter }
    }

    /// The exporter.
    pub fn exporter(&mut self) -> &mut T {
        &mut self.exporter
    }

    /// Hands every event of `events` to the exporter, in order, between
    /// [`Exporter::begin_batch`] and [`Exporter::end_batch`].
    ///
    /// # Panics
    ///
    /// On a route update that breaks the WIT contract (see [`Routes::new`]).
    pub fn on_events(&mut self, events: &[RawEvent]) {
        self.exporter.begin_batch(events.len());
        for event in events {
            self.exporter.on_event(Event::new(event));
        }
        self.exporter.end_batch();
    }
}

thread_local! {
    /// The exporter instance, created by `init`.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// The glue of `init`: builds `T` and keeps it for [`run_on_events`].
/// Public for plugins that implement [`Guest`] themselves (see
/// [`export_exporter_guest!`](crate::export_exporter_guest)).
pub fn run_init<T: Exporter>(settings: Vec<(String, String)>) -> Result<(), String> {
    let settings = Settings::new(settings);
    let exporter = T::init(&settings).map_err(|e| e.to_string())?;
    INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(Dispatcher::new(exporter))));
    Ok(())
}

/// The glue of `on-events`: hands `events` to the `T` built by [`run_init`].
///
/// # Panics
///
/// Before a successful `init` (the host never does that), or on a malformed
/// route update.
pub fn run_on_events<T: Exporter>(events: Vec<RawEvent>) {
    INSTANCE.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot
            .as_mut()
            .and_then(|b| b.downcast_mut::<Dispatcher<T>>())
        {
            Some(dispatcher) => dispatcher.on_events(&events),
            None => panic!("wasmbgp-sdk: on-events called before a successful init"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::IpAddress;

    fn session() -> Session {
        Session {
            neighbor: IpAddress::V4(0xc000_0201),
            peer_as: 65001,
            local_as: 65000,
        }
    }

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn routes_are_views_over_the_columns() {
        let a = Attributes::new().with_med(5);
        let b = Attributes::new().with_med(6);
        let mut u = RouteUpdate::new(session(), RouteDirection::Received);
        u.announce(p("10.0.0.0/24"), &a)
            .announce(p("2001:db8::/48"), &b)
            .announce(p("10.0.1.0/24"), &b)
            .announce(p("10.0.2.0/24"), &a)
            .withdraw(p("2001:db8:1::/48"))
            .withdraw(p("192.0.2.0/24"));
        assert_eq!(u.attributes.len(), 2);
        let routes = Routes::new(&u);
        assert_eq!(routes.announced_count(), 4);
        assert_eq!(routes.withdrawn_count(), 2);
        assert_eq!(routes.announced().len(), 4);
        let seen: Vec<(String, Option<u32>)> = routes
            .announced()
            .map(|(prefix, attributes)| (prefix.to_string(), attributes.med))
            .collect();
        assert_eq!(
            seen,
            [
                ("10.0.0.0/24".into(), Some(5)),
                ("10.0.1.0/24".into(), Some(6)),
                ("10.0.2.0/24".into(), Some(5)),
                ("2001:db8::/48".into(), Some(6)),
            ]
        );
        let indices: Vec<u32> = routes.announced_indexed().map(|(_, i)| i).collect();
        assert_eq!(indices, [0, 1, 0, 1]);
        let withdrawn: Vec<String> = routes.withdrawn().map(|p| p.to_string()).collect();
        assert_eq!(withdrawn, ["192.0.2.0/24", "2001:db8:1::/48"]);
        // Shared sets are shared references.
        let sets: Vec<*const Attributes> = routes.announced().map(|(_, a)| a as *const _).collect();
        assert_eq!(sets[0], sets[2]);
    }

    #[test]
    fn flow_rules_are_views_beside_the_prefixes() {
        use crate::flow::{Action, Protocol};
        let rule = FlowRule::for_destination(p("192.0.2.10/32")).protocol(Protocol::UDP);
        let rule6 = FlowRule::for_destination(p("2001:db8::1/128"));
        let discard =
            crate::flow::attributes(&rule, &[Action::Discard], &Attributes::new()).unwrap();
        let plain = Attributes::new().with_med(5);
        let mut u = RouteUpdate::new(session(), RouteDirection::ReceivedPrePolicy);
        u.announce(p("10.0.0.0/24"), &plain)
            .announce_flow(&rule, &discard)
            .announce_flow(&rule6, &plain)
            .withdraw_flow(&rule6)
            .withdraw(p("10.0.1.0/24"));
        let routes = Routes::new(&u);
        assert_eq!((routes.announced_count(), routes.withdrawn_count()), (1, 1));
        assert_eq!(
            (routes.announced_flow_count(), routes.withdrawn_flow_count()),
            (2, 1)
        );
        assert_eq!(routes.announced().len(), 1);
        let flows: Vec<(String, Vec<Action>, Option<u32>)> = routes
            .announced_flows()
            .map(|(rule, attributes)| {
                (
                    rule.to_string(),
                    attributes.flow_actions().collect(),
                    attributes.med,
                )
            })
            .collect();
        assert_eq!(
            flows,
            [
                (
                    "destination 192.0.2.10/32 protocol =udp".to_string(),
                    vec![Action::Discard],
                    None
                ),
                ("destination 2001:db8::1/128".to_string(), vec![], Some(5)),
            ]
        );
        let indices: Vec<u32> = routes.announced_flows_indexed().map(|(_, i)| i).collect();
        assert_eq!(indices, [1, 0]);
        let withdrawn: Vec<FlowRule> = routes.withdrawn_flows().map(FlowRule::from_wit).collect();
        assert_eq!(withdrawn, [rule6]);
        assert!(!routes.is_empty());
        // Only rules: not empty either.
        let mut u = RouteUpdate::new(session(), RouteDirection::Sent);
        u.withdraw_flow(&rule);
        assert!(!Routes::new(&u).is_empty());
        assert!(Routes::new(&RouteUpdate::new(session(), RouteDirection::Sent)).is_empty());
        assert_eq!(Family::IPV6_FLOWSPEC.to_string(), "ipv6 flow");
    }

    #[test]
    #[should_panic(expected = "flows 1/0")]
    fn a_flow_without_attributes_is_refused() {
        let mut u = RouteUpdate::new(session(), RouteDirection::Sent);
        u.announce_flow(
            &FlowRule::for_destination(p("192.0.2.1/32")),
            &Attributes::new(),
        );
        u.flow_attributes.clear();
        Routes::new(&u);
    }

    #[test]
    #[should_panic(expected = "malformed route update")]
    fn malformed_columns_are_refused() {
        let mut u = RouteUpdate::new(session(), RouteDirection::Sent);
        u.announce(p("10.0.0.0/24"), &Attributes::new());
        u.v4_lengths.push(8);
        Routes::new(&u);
    }

    #[test]
    #[should_panic(expected = "attribute index 4")]
    fn an_attribute_index_out_of_range_is_refused() {
        let mut u = RouteUpdate::new(session(), RouteDirection::Sent);
        u.announce(p("10.0.0.0/24"), &Attributes::new());
        u.v4_attributes[0] = 4;
        Routes::new(&u).announced().for_each(drop);
    }

    #[test]
    fn names() {
        assert_eq!(SessionState::OpenConfirm.to_string(), "open-confirm");
        assert_eq!(
            RouteDirection::ReceivedPrePolicy.name(),
            "received-pre-policy"
        );
        assert_eq!(MessageDirection::Received.name(), "received");
        assert_eq!(PluginChangeKind::Denied.name(), "denied");
        assert_eq!(Health::Disabled.name(), "disabled");
        assert_eq!(Family::IPV6_UNICAST.to_string(), "ipv6 unicast");
        assert_eq!(Family { afi: 25, safi: 65 }.to_string(), "afi 25 safi 65");
        let change = StateChange {
            session: session(),
            old: SessionState::OpenConfirm,
            new: SessionState::Established,
            reason: String::new(),
        };
        assert!(change.came_up() && !change.went_down() && !change.is_unchanged());
    }

    #[test]
    fn the_dispatcher_hands_over_every_event_between_begin_and_end() {
        #[derive(Default)]
        struct Log(Vec<String>);
        impl Exporter for Log {
            fn init(_: &Settings) -> Result<Self, Error> {
                Ok(Log::default())
            }
            fn begin_batch(&mut self, n: usize) {
                self.0.push(format!("begin {n}"));
            }
            fn on_event(&mut self, event: Event<'_>) {
                let line = match event {
                    Event::Routes(r) => {
                        format!("routes {}+{}", r.announced_count(), r.withdrawn_count())
                    }
                    Event::Lagged(n) => format!("lagged {n}"),
                    Event::EndOfSnapshot => "eos".to_string(),
                    other => format!("{:?}", other.session().map(|s| s.peer_as)),
                };
                self.0.push(line);
            }
            fn end_batch(&mut self) {
                self.0.push("end".into());
            }
        }
        let mut u = RouteUpdate::new(session(), RouteDirection::Received);
        u.announce(p("10.0.0.0/24"), &Attributes::new())
            .withdraw(p("10.0.1.0/24"));
        let events = vec![
            RawEvent::EndOfRib(EndOfRib {
                session: session(),
                family: Family::IPV4_UNICAST,
            }),
            RawEvent::Routes(u),
            RawEvent::Lagged(3),
            RawEvent::EndOfSnapshot,
        ];
        let mut d = Dispatcher::new(Log::default());
        d.on_events(&events);
        assert_eq!(
            d.exporter().0,
            [
                "begin 4",
                "Some(65001)",
                "routes 1+1",
                "lagged 3",
                "eos",
                "end"
            ]
        );
    }

    /// The view's own cost per announced route. Run with
    /// `cargo test --release -p wasmbgp-sdk view_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn view_cost_per_route() {
        let sets: Vec<Attributes> = (0..4).map(|m| Attributes::new().with_med(m)).collect();
        let mut u = RouteUpdate::new(session(), RouteDirection::Received);
        for i in 0..1_000_000u32 {
            u.announce(
                Prefix::V4 {
                    addr: i << 8,
                    len: 24,
                },
                &sets[(i % 4) as usize],
            );
        }
        let mut best = std::time::Duration::MAX;
        for _ in 0..10 {
            let start = std::time::Instant::now();
            let mut sum = 0u64;
            for (prefix, attributes) in Routes::new(&u).announced() {
                sum += u64::from(prefix.length()) + u64::from(attributes.med.unwrap_or(0));
            }
            std::hint::black_box(sum);
            best = best.min(start.elapsed());
        }
        println!("{:.2} ns per announced route", best.as_nanos() as f64 / 1e6);
    }
}
