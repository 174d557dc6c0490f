//! `route-stats`: per-neighbor route counts as metrics, from the routes
//! each neighbor sent (after import policy).
//!
//! Registers, through the `metrics` interface (served as
//! `wasmbgp_plugin_<name>{plugin, neighbor}`):
//!
//! - `routes_active` (gauge): the neighbor's distinct active prefixes;
//! - `routes_received_total` (counter): announced routes, re-announcements
//!   included;
//! - `routes_withdrawn_total` (counter): withdrawn prefixes that were
//!   active.
//!
//! Only routes of direction `received` count. When a session leaves
//! `established` its prefixes are gone and `routes_active` drops to 0.
//! Metric values live in the host and survive restarts, so the snapshot
//! that starts every instance rebuilds the sets and sets the gauge without
//! counting its routes again. After `lagged` the plugin asks for a resync
//! and rebuilds from the fresh snapshot the same way.
//!
//! The sets are hash sets of prefixes with the standard library's keyed
//! hasher (seeded from `wasi:random`, so a peer cannot choose colliding
//! prefixes): a route costs one hash and one probe, where a search in a
//! B-tree of 100,000 prefixes took most of the plugin's time. The metrics
//! are updated once per route update per neighbor, not per route.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use wasmbgp_sdk::exporter::{Event, Exporter, RouteDirection, Routes, SessionState, StateChange};
use wasmbgp_sdk::metrics::{Counter, Gauge, Series};
use wasmbgp_sdk::types::IpAddress;
use wasmbgp_sdk::{Error, Prefix, Settings, feed, log, metrics};

/// The metric names (the contract: docs and dashboards rely on them).
pub const ACTIVE: &str = "routes_active";
/// See [`ACTIVE`].
pub const RECEIVED: &str = "routes_received_total";
/// See [`ACTIVE`].
pub const WITHDRAWN: &str = "routes_withdrawn_total";

/// A neighbor's active prefixes, IPv4 ones packed in a `u64` (address and length):
/// 8 bytes a route rather than the 32 of a `Prefix`, so that a full table fits the
/// default memory grant.
#[derive(Default)]
struct ActiveSet {
    v4: HashSet<u64>,
    v6: HashSet<(u128, u8)>,
}

impl ActiveSet {
    fn insert(&mut self, prefix: Prefix) -> bool {
        match prefix {
            Prefix::V4 { addr, len } => self.v4.insert(u64::from(addr) << 8 | u64::from(len)),
            Prefix::V6 { addr, len } => self.v6.insert((addr, len)),
        }
    }

    fn remove(&mut self, prefix: &Prefix) -> bool {
        match *prefix {
            Prefix::V4 { addr, len } => self.v4.remove(&(u64::from(addr) << 8 | u64::from(len))),
            Prefix::V6 { addr, len } => self.v6.remove(&(addr, len)),
        }
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn clear(&mut self) {
        // Give the memory back: a neighbor that went down may not come back.
        *self = ActiveSet::default();
    }
}

/// One neighbor: its active prefixes and its three series.
struct Neighbor {
    active: ActiveSet,
    active_series: Series,
    received_series: Series,
    withdrawn_series: Series,
    /// Not seen since the resync began: its gauge is zeroed at the end of
    /// the snapshot unless the snapshot mentions it.
    stale: bool,
}

/// The exporter.
pub struct RouteStats {
    active: Gauge,
    received: Counter,
    withdrawn: Counter,
    neighbors: BTreeMap<IpAddr, Neighbor>,
    /// Replaying a snapshot: rebuild, but do not count.
    in_snapshot: bool,
    /// A resync was asked for: the rest of this batch is skipped (the next
    /// batch starts with the fresh snapshot).
    skip_batch: bool,
}

impl RouteStats {
    /// Registers the metrics.
    pub fn new() -> Result<Self, Error> {
        let labels = ["neighbor"];
        Ok(RouteStats {
            active: Gauge::register(
                ACTIVE,
                "Distinct prefixes the neighbor has announced and not withdrawn (after import policy).",
                &labels,
            )?,
            received: Counter::register(
                RECEIVED,
                "Routes announced by the neighbor (after import policy), re-announcements included.",
                &labels,
            )?,
            withdrawn: Counter::register(
                WITHDRAWN,
                "Active prefixes the neighbor withdrew (or import policy rejected).",
                &labels,
            )?,
            neighbors: BTreeMap::new(),
            in_snapshot: true,
            skip_batch: false,
        })
    }

    fn neighbor(&mut self, address: IpAddress) -> &mut Neighbor {
        let (active, received, withdrawn) = (&self.active, &self.received, &self.withdrawn);
        let n = self.neighbors.entry(address.to_std()).or_insert_with(|| {
            let label = address.to_string();
            Neighbor {
                active: ActiveSet::default(),
                active_series: active.series(&[&label]),
                received_series: received.series(&[&label]),
                withdrawn_series: withdrawn.series(&[&label]),
                stale: false,
            }
        });
        n.stale = false;
        n
    }

    fn session(&mut self, change: &StateChange) {
        let in_snapshot = self.in_snapshot;
        let n = self.neighbor(change.session.neighbor);
        // Not established: its routes are gone. Established in a snapshot:
        // its routes follow, from none.
        if change.new != SessionState::Established || in_snapshot {
            n.active.clear();
        }
        report(n.active_series.set(n.active.len() as f64));
    }

    fn routes(&mut self, routes: &Routes<'_>) {
        if routes.direction() != RouteDirection::Received {
            return;
        }
        let in_snapshot = self.in_snapshot;
        let n = self.neighbor(routes.session().neighbor);
        let before = n.active.len();
        for (prefix, _) in routes.announced_indexed() {
            n.active.insert(prefix);
        }
        let mut withdrawn = 0u64;
        for prefix in routes.withdrawn() {
            withdrawn += u64::from(n.active.remove(&prefix));
        }
        if !in_snapshot {
            let announced = routes.announced_count();
            if announced > 0 {
                report(n.received_series.add(announced as f64));
            }
            if withdrawn > 0 {
                report(n.withdrawn_series.add(withdrawn as f64));
            }
        }
        if n.active.len() != before || in_snapshot {
            report(n.active_series.set(n.active.len() as f64));
        }
    }

    fn end_of_snapshot(&mut self) {
        self.in_snapshot = false;
        for n in self.neighbors.values_mut().filter(|n| n.stale) {
            n.active.clear();
            report(n.active_series.set(0.0));
        }
    }

    /// The view was lost: forget it and ask for a fresh snapshot.
    fn lagged(&mut self, lost: u64) {
        log::warn(&format!("route-stats: {lost} events lost; resyncing"));
        for n in self.neighbors.values_mut() {
            n.active.clear();
            n.stale = true;
        }
        self.in_snapshot = true;
        self.skip_batch = true;
        feed::resync();
    }

    /// The number of active prefixes of `neighbor` (tests).
    pub fn active(&self, neighbor: IpAddress) -> usize {
        self.neighbors
            .get(&neighbor.to_std())
            .map_or(0, |n| n.active.len())
    }
}

/// Logs a failed metric update (the host counts it too).
fn report(result: Result<(), metrics::MetricError>) {
    if let Err(e) = result {
        log::warn(&format!("route-stats: {}", metrics::describe(&e)));
    }
}

impl Exporter for RouteStats {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&[])?;
        RouteStats::new()
    }

    fn begin_batch(&mut self, _events: usize) {
        self.skip_batch = false;
    }

    fn on_event(&mut self, event: Event<'_>) {
        if self.skip_batch {
            return;
        }
        match event {
            Event::Session(change) => self.session(change),
            Event::Routes(routes) => self.routes(&routes),
            Event::EndOfSnapshot => self.end_of_snapshot(),
            Event::Lagged(lost) => self.lagged(lost),
            _ => {}
        }
    }
}

wasmbgp_sdk::export_exporter!(RouteStats);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbgp_sdk::Attributes;
    use wasmbgp_sdk::exporter::{Dispatcher, RawEvent, RouteUpdate, Session};
    use wasmbgp_sdk::testing;

    const A: &str = "192.0.2.1";

    fn session() -> Session {
        Session {
            neighbor: A.parse().unwrap(),
            peer_as: 65001,
            local_as: 65000,
        }
    }

    fn state(old: SessionState, new: SessionState) -> RawEvent {
        RawEvent::Session(StateChange {
            session: session(),
            old,
            new,
            reason: String::new(),
        })
    }

    fn update(direction: RouteDirection, announce: &[&str], withdraw: &[&str]) -> RawEvent {
        let mut u = RouteUpdate::new(session(), direction);
        let attributes = Attributes::new().with_med(1);
        for p in announce {
            u.announce(p.parse().unwrap(), &attributes);
        }
        for p in withdraw {
            u.withdraw(p.parse().unwrap());
        }
        RawEvent::Routes(u)
    }

    fn values() -> (Option<f64>, Option<f64>, Option<f64>) {
        (
            testing::metric(ACTIVE, &[A]),
            testing::metric(RECEIVED, &[A]),
            testing::metric(WITHDRAWN, &[A]),
        )
    }

    fn exporter() -> Dispatcher<RouteStats> {
        Dispatcher::new(RouteStats::init(&Settings::default()).unwrap())
    }

    use SessionState::{Active, Established, Idle};

    #[test]
    fn counts_and_active_set() {
        testing::reset();
        let mut d = exporter();
        d.on_events(&[RawEvent::EndOfSnapshot, state(Active, Established)]);
        assert_eq!(values().0, Some(0.0));
        d.on_events(&[update(
            RouteDirection::Received,
            &["10.0.0.0/24", "10.0.1.0/24", "2001:db8::/32"],
            &[],
        )]);
        assert_eq!(values(), (Some(3.0), Some(3.0), None));
        // A re-announcement counts as received but is not a new prefix; a
        // withdrawal of an unknown prefix counts for nothing.
        d.on_events(&[update(
            RouteDirection::Received,
            &["10.0.0.0/24"],
            &["10.0.1.0/24", "10.9.9.0/24"],
        )]);
        assert_eq!(values(), (Some(2.0), Some(4.0), Some(1.0)));
        // Other directions do not count.
        d.on_events(&[
            update(RouteDirection::Sent, &["10.5.0.0/24"], &["10.0.0.0/24"]),
            update(RouteDirection::ReceivedPrePolicy, &["10.5.0.0/24"], &[]),
        ]);
        assert_eq!(values(), (Some(2.0), Some(4.0), Some(1.0)));
        // The session goes down: nothing active.
        d.on_events(&[state(Established, Idle)]);
        assert_eq!(values(), (Some(0.0), Some(4.0), Some(1.0)));
        assert_eq!(d.exporter().active(A.parse().unwrap()), 0);
    }

    #[test]
    fn a_snapshot_rebuilds_without_counting() {
        testing::reset();
        let mut d = exporter();
        d.on_events(&[
            state(Established, Established),
            update(
                RouteDirection::Received,
                &["10.0.0.0/24", "10.0.1.0/24"],
                &[],
            ),
        ]);
        d.on_events(&[
            update(RouteDirection::Received, &["10.0.2.0/24"], &[]),
            RawEvent::EndOfSnapshot,
        ]);
        assert_eq!(values(), (Some(3.0), None, None));
        d.on_events(&[update(
            RouteDirection::Received,
            &["10.0.3.0/24"],
            &["10.0.0.0/24"],
        )]);
        assert_eq!(values(), (Some(3.0), Some(1.0), Some(1.0)));
        // A restart: the host keeps the counters, the new instance's
        // snapshot does not add to them.
        let mut d = exporter();
        d.on_events(&[
            state(Established, Established),
            update(
                RouteDirection::Received,
                &["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"],
                &[],
            ),
            RawEvent::EndOfSnapshot,
        ]);
        assert_eq!(values(), (Some(3.0), Some(1.0), Some(1.0)));
    }

    #[test]
    fn lagged_resyncs_and_rebuilds() {
        testing::reset();
        let mut d = exporter();
        d.on_events(&[
            RawEvent::EndOfSnapshot,
            state(Active, Established),
            update(
                RouteDirection::Received,
                &["10.0.0.0/24", "10.0.1.0/24"],
                &[],
            ),
        ]);
        d.on_events(&[
            RawEvent::Lagged(5),
            // Skipped: the next batch is the fresh snapshot.
            update(RouteDirection::Received, &["10.0.7.0/24"], &[]),
        ]);
        assert_eq!(testing::resyncs(), 1);
        d.on_events(&[
            state(Established, Established),
            update(RouteDirection::Received, &["10.0.0.0/24"], &[]),
            RawEvent::EndOfSnapshot,
        ]);
        assert_eq!(values(), (Some(1.0), Some(2.0), None));
    }

    #[test]
    fn a_hundred_thousand_routes_are_quick() {
        testing::reset();
        let mut d = exporter();
        let mut u = RouteUpdate::new(session(), RouteDirection::Received);
        let attributes = Attributes::new();
        for i in 0..100_000u32 {
            u.announce(
                Prefix::V4 {
                    addr: (10 << 24) | (i << 8),
                    len: 24,
                },
                &attributes,
            );
        }
        let events = [
            RawEvent::EndOfSnapshot,
            state(Active, Established),
            RawEvent::Routes(u),
        ];
        let start = std::time::Instant::now();
        d.on_events(&events);
        let took = start.elapsed();
        assert_eq!(values(), (Some(100_000.0), Some(100_000.0), None));
        assert!(took.as_millis() < 500, "100,000 routes took {took:?}");
    }
}
