//! What the collector is told: the plugin's view of the sessions (which
//! peers are up, the last NOTIFICATION, route counts) and the BMP messages
//! each event becomes. Pure: events in, bytes out.

use std::collections::{HashMap, HashSet};

use wasmbgp_sdk::types::{Attributes, IpAddress};

use crate::bgp;
use crate::msg::{self, DownReason, Peer, Timestamp};

/// A BGP session as the events name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub neighbor: IpAddress,
    pub peer_as: u32,
    pub local_as: u32,
}

/// Whether a session is established (the only state BMP cares about).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Established,
    Other,
}

/// Which routes a route update carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received, before import policy (BMP pre-policy Adj-RIB-In).
    PrePolicy,
    /// Received, after import policy (BMP post-policy Adj-RIB-In).
    PostPolicy,
    /// Sent, after export policy (RFC 8671 post-policy Adj-RIB-Out).
    Sent,
}

impl Direction {
    /// The per-peer header flags of a message about these routes.
    pub fn flags(self) -> u8 {
        match self {
            Direction::PrePolicy => 0,
            Direction::PostPolicy => msg::FLAG_L,
            Direction::Sent => msg::FLAG_L | msg::FLAG_O,
        }
    }
}

/// Routes announced and withdrawn, in the columns of the WIT `route-update`.
#[derive(Clone, Copy, Debug)]
pub struct Routes<'a> {
    pub session: Session,
    pub direction: Direction,
    pub attributes: &'a [Attributes],
    pub v4_addresses: &'a [u32],
    pub v4_lengths: &'a [u8],
    pub v4_attributes: &'a [u32],
    pub v6_addresses: &'a [u64],
    pub v6_lengths: &'a [u8],
    pub v6_attributes: &'a [u32],
    pub withdrawn_v4_addresses: &'a [u32],
    pub withdrawn_v4_lengths: &'a [u8],
    pub withdrawn_v6_addresses: &'a [u64],
    pub withdrawn_v6_lengths: &'a [u8],
}

/// One event, as far as BMP is concerned.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    State {
        session: Session,
        new: State,
    },
    Routes(Routes<'a>),
    EndOfRib {
        session: Session,
        afi: u16,
        safi: u8,
    },
    Notification {
        session: Session,
        sent: bool,
        code: u8,
        subcode: u8,
        data: &'a [u8],
    },
    Lagged(u64),
    EndOfSnapshot,
    /// Health and plugin changes: nothing for BMP.
    Ignored,
}

/// What the caller must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// The view is incomplete (`lagged`): start over with a fresh snapshot.
    Resync,
}

/// Distinct prefixes per family, to count routes for the statistics.
#[derive(Default, Debug)]
struct Table {
    v4: HashSet<(u32, u8)>,
    v6: HashSet<(u128, u8)>,
}

#[derive(Debug)]
struct PeerState {
    peer: Peer,
    local_as: u32,
    up: bool,
    /// The last NOTIFICATION seen on the session since its last state change.
    notification: Option<DownReason>,
    tables: HashMap<Direction, Table>,
}

/// Settings of the feed.
#[derive(Clone, Debug)]
pub struct Options {
    pub sys_name: String,
    pub sys_descr: String,
    /// The direction End-of-RIB markers and statistics are reported for.
    pub monitoring: Direction,
    /// Statistics Reports every this many milliseconds (0: none).
    pub stats_interval_ms: u64,
}

/// The plugin's view of the sessions, and the encoder of events.
pub struct Feed {
    options: Options,
    peers: HashMap<u128, PeerState>,
    last_stats_ms: Option<u64>,
}

/// A key for a neighbor address (IPv4 ones mapped apart from IPv6 ones).
fn key(address: &IpAddress) -> u128 {
    match *address {
        IpAddress::V4(v4) => (1u128 << 127) | v4 as u128,
        IpAddress::V6((high, low)) => ((high as u128) << 64) | low as u128,
    }
}

fn join(high: u64, low: u64) -> u128 {
    ((high as u128) << 64) | low as u128
}

fn peer_of(session: &Session) -> Peer {
    match session.neighbor {
        IpAddress::V4(v4) => Peer::v4(v4, session.peer_as),
        IpAddress::V6((high, low)) => Peer::v6(join(high, low), session.peer_as),
    }
}

impl Feed {
    pub fn new(options: Options) -> Feed {
        Feed {
            options,
            peers: HashMap::new(),
            last_stats_ms: None,
        }
    }

    /// Forgets every session (the collector lost them, or a snapshot
    /// follows).
    pub fn reset(&mut self) {
        self.peers.clear();
    }

    /// The Initiation message that opens a BMP session.
    pub fn initiation(&self, out: &mut Vec<u8>) {
        msg::initiation(out, &self.options.sys_name, &self.options.sys_descr);
    }

    /// The peers the collector was told are up.
    #[cfg(test)]
    pub fn peers_up(&self) -> usize {
        self.peers.values().filter(|p| p.up).count()
    }

    fn state(&mut self, session: &Session) -> &mut PeerState {
        self.peers
            .entry(key(&session.neighbor))
            .or_insert_with(|| PeerState {
                peer: peer_of(session),
                local_as: session.local_as,
                up: false,
                notification: None,
                tables: HashMap::new(),
            })
    }

    /// Sends a Peer Up for `session` unless the collector has one already.
    fn ensure_up(&mut self, session: &Session, time: Timestamp, out: &mut Vec<u8>) {
        let state = self.state(session);
        if !state.up {
            state.up = true;
            state.peer = peer_of(session);
            state.local_as = session.local_as;
            msg::peer_up(out, &state.peer, state.local_as, 0, time);
        }
    }

    /// Appends the BMP messages for `event` to `out`.
    pub fn handle(&mut self, event: &Event<'_>, time: Timestamp, out: &mut Vec<u8>) -> Next {
        match event {
            Event::State { session, new } => {
                if *new == State::Established {
                    self.ensure_up(session, time, out);
                    self.state(session).notification = None;
                } else if let Some(state) = self.peers.remove(&key(&session.neighbor))
                    && state.up
                {
                    let reason = state.notification.unwrap_or(DownReason::RemoteClosed);
                    msg::peer_down(out, &state.peer, &reason, time);
                }
            }
            Event::Routes(routes) => {
                self.ensure_up(&routes.session, time, out);
                self.routes(routes, time, out);
            }
            Event::EndOfRib { session, afi, safi } => {
                self.ensure_up(session, time, out);
                let peer = self.state(session).peer.clone();
                let mut update = Vec::new();
                bgp::end_of_rib(&mut update, *afi, *safi);
                msg::route_monitoring(out, &peer, self.options.monitoring.flags(), time, &update);
            }
            Event::Notification {
                session,
                sent,
                code,
                subcode,
                data,
            } => {
                let reason = if *sent {
                    DownReason::LocalNotification(*code, *subcode, data.to_vec())
                } else {
                    DownReason::RemoteNotification(*code, *subcode, data.to_vec())
                };
                self.state(session).notification = Some(reason);
            }
            Event::Lagged(_) => return Next::Resync,
            Event::EndOfSnapshot | Event::Ignored => {}
        }
        Next::Continue
    }

    fn routes(&mut self, routes: &Routes<'_>, time: Timestamp, out: &mut Vec<u8>) {
        let counting = self.options.stats_interval_ms > 0;
        let state = self.state(&routes.session);
        let peer = state.peer.clone();
        let flags = routes.direction.flags();
        let mut emit = |update: &[u8]| msg::route_monitoring(out, &peer, flags, time, update);

        // Withdrawals first: an update may withdraw a prefix and announce
        // another; the announcements are the newer news.
        let withdrawn_v4: Vec<bgp::V4Prefix> = routes
            .withdrawn_v4_addresses
            .iter()
            .zip(routes.withdrawn_v4_lengths)
            .map(|(&a, &l)| (a, l))
            .collect();
        if !withdrawn_v4.is_empty() {
            bgp::withdraw_v4(&withdrawn_v4, &mut emit);
        }
        let withdrawn_v6: Vec<bgp::V6Prefix> = routes
            .withdrawn_v6_addresses
            .chunks_exact(2)
            .zip(routes.withdrawn_v6_lengths)
            .map(|(a, &l)| (join(a[0], a[1]), l))
            .collect();
        if !withdrawn_v6.is_empty() {
            bgp::withdraw_v6(&withdrawn_v6, &mut emit);
        }

        // Announcements grouped by attribute set, in the order the sets
        // first appear.
        let mut v4_groups: Vec<Vec<bgp::V4Prefix>> = vec![Vec::new(); routes.attributes.len()];
        for ((&a, &l), &i) in routes
            .v4_addresses
            .iter()
            .zip(routes.v4_lengths)
            .zip(routes.v4_attributes)
        {
            if let Some(group) = v4_groups.get_mut(i as usize) {
                group.push((a, l));
            }
        }
        let mut v6_groups: Vec<Vec<bgp::V6Prefix>> = vec![Vec::new(); routes.attributes.len()];
        for ((a, &l), &i) in routes
            .v6_addresses
            .chunks_exact(2)
            .zip(routes.v6_lengths)
            .zip(routes.v6_attributes)
        {
            if let Some(group) = v6_groups.get_mut(i as usize) {
                group.push((join(a[0], a[1]), l));
            }
        }
        for (attributes, group) in routes.attributes.iter().zip(&v4_groups) {
            if !group.is_empty() {
                bgp::announce_v4(attributes, group, &mut emit);
            }
        }
        for (attributes, group) in routes.attributes.iter().zip(&v6_groups) {
            if !group.is_empty() {
                bgp::announce_v6(attributes, group, &mut emit);
            }
        }

        if counting {
            let table = state.tables.entry(routes.direction).or_default();
            for prefix in &withdrawn_v4 {
                table.v4.remove(prefix);
            }
            for prefix in &withdrawn_v6 {
                table.v6.remove(prefix);
            }
            for group in &v4_groups {
                table.v4.extend(group.iter().copied());
            }
            for group in &v6_groups {
                table.v6.extend(group.iter().copied());
            }
        }
    }

    /// Appends a Statistics Report per established peer when the interval
    /// has passed since the last ones.
    pub fn statistics(&mut self, now_ms: u64, time: Timestamp, out: &mut Vec<u8>) {
        let interval = self.options.stats_interval_ms;
        if interval == 0 {
            return;
        }
        match self.last_stats_ms {
            None => {
                // The first report one interval after start.
                self.last_stats_ms = Some(now_ms);
                return;
            }
            Some(last) if now_ms.saturating_sub(last) < interval => return,
            Some(_) => self.last_stats_ms = Some(now_ms),
        }
        let direction = self.options.monitoring;
        let mut peers: Vec<&PeerState> = self.peers.values().filter(|p| p.up).collect();
        peers.sort_by_key(|p| (p.peer.ipv6, p.peer.address));
        for state in peers {
            let (v4, v6) = state
                .tables
                .get(&direction)
                .map(|t| (t.v4.len() as u64, t.v6.len() as u64))
                .unwrap_or((0, 0));
            msg::statistics(
                out,
                &state.peer,
                direction.flags(),
                time,
                v4 + v6,
                // Per-family counts (type 8) are left out: pmacct 1.7.7
                // misreads them and the counters after them.
                &[],
            );
        }
    }
}
