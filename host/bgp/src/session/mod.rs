//! Where a session decides: the RFC 4271 §8 finite state machine of one neighbor.
//!
//! [`Session`] owns no socket and reads no clock. The daemon feeds it [`Event`]s with the
//! current time and carries out the [`Action`]s it returns; [`Session::poll`] fires the
//! timers whose deadline has passed and [`Session::next_deadline`] says when to call again.
//! Connection collisions are settled by the daemon with [`collision_keeps_existing`].
//!
//! Graceful restart (RFC 4724) is decided here too, in both roles. As the restarting
//! speaker, the first OPEN after [`SessionConfig::restarted`] carries the Restart State
//! bit. As the receiving speaker, a session that ends without a NOTIFICATION (the
//! peer's process died, its TCP connection closed or was replaced) keeps the peer's
//! routes of the families it preserves as stale ([`Action::Down`]); they are removed
//! ([`Action::StaleEnd`]) family by family at its End-of-RIB, when the peer comes back
//! without preserving a family, or when the restart time (then
//! [`STALE_ROUTES_TIME`]) runs out.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::packet::notification::{cease_sub, code, fsm_sub, open_sub};
use crate::packet::open::{Capability, GracefulRestart};
use crate::packet::prefix::Family;
use crate::packet::{Context, DecodeError, Message, Notification, Open, Update};

/// Hold time used while waiting for the peer's OPEN (RFC 4271 §8: "a large value", 4 min).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// How long stale routes wait for the peer's End-of-RIB once its session is back (the
/// restart time bounds the wait before that). FRR's default `stalepath-time`.
pub const STALE_ROUTES_TIME: Duration = Duration::from_secs(360);

/// The per-family Forwarding State flag of the graceful-restart capability.
pub const GR_FORWARDING: u8 = 0x80;

/// The FSM states (RFC 4271 §8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not trying; refuses connections.
    Idle,
    /// Connecting out.
    Connect,
    /// Waiting to connect again, or for the peer to connect.
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for KEEPALIVE.
    OpenConfirm,
    /// Up: UPDATEs flow.
    Established,
}

impl State {
    /// Lower-case name, as shown by `ctl show neighbors`.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connect => "connect",
            State::Active => "active",
            State::OpenSent => "opensent",
            State::OpenConfirm => "openconfirm",
            State::Established => "established",
        }
    }

    /// True while a transport connection is in use.
    pub fn connected(self) -> bool {
        matches!(
            self,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }
}

/// What this side of the session is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS.
    pub local_as: u32,
    /// The AS the peer must have.
    pub peer_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0 disables keepalives, else ≥ 3).
    pub hold_time: u16,
    /// Only wait for the peer to connect.
    pub passive: bool,
    /// First delay before connecting again after a failure; doubles on each failure.
    pub connect_retry: Duration,
    /// Cap of the reconnect delay.
    pub connect_retry_max: Duration,
    /// Families to negotiate.
    pub families: Vec<Family>,
    /// Graceful-restart time to advertise (RFC 4724), if any.
    pub graceful_restart: Option<u16>,
    /// This speaker has just started (its process, not the session): the OPENs set the
    /// Restart State bit until a session is established, so that a peer keeping our
    /// routes as stale waits for our End-of-RIB.
    pub restarted: bool,
}

/// What the two OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Hold time in seconds (0: no keepalives).
    pub hold_time: u16,
    /// Families both sides support.
    pub families: Vec<Family>,
    /// Wire-format context (4-octet ASNs).
    pub context: Context,
    /// The peer accepts ROUTE-REFRESH.
    pub route_refresh: bool,
    /// The peer's BGP identifier.
    pub peer_id: Ipv4Addr,
    /// The peer's AS.
    pub peer_as: u32,
    /// The peer's graceful-restart capability.
    pub graceful_restart: Option<GracefulRestart>,
}

/// Inputs to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start the session (ManualStart / AutomaticStart).
    Start,
    /// Stop it (ManualStop): send this NOTIFICATION if connected, and stay idle.
    Stop(Notification),
    /// A transport connection is up (outbound connected, or an accepted inbound one). In
    /// OpenSent/OpenConfirm this means the daemon replaced the connection after a collision.
    TcpConnected,
    /// The transport failed or closed.
    TcpFailed(String),
    /// A message arrived.
    Message(Message),
    /// Bytes arrived that do not decode.
    DecodeError(DecodeError),
    /// The daemon found a local reason to reset the session (e.g. the peer sent more
    /// prefixes than allowed): send this NOTIFICATION and reconnect after backoff.
    Reset(Notification, String),
}

/// Outputs of the state machine, carried out by the daemon in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open an outbound connection.
    Connect,
    /// Send a message.
    Send(Message),
    /// Close the connection.
    Disconnect,
    /// The session is up: send the whole Adj-RIB-Out for these capabilities.
    Established(Negotiated),
    /// The session left Established: forget the peer's routes, except those of the
    /// families in `stale`, kept until a [`StaleEnd`](Action::StaleEnd) (graceful
    /// restart, receiving side).
    Down {
        /// Why.
        reason: String,
        /// Families whose routes stay, marked stale.
        stale: Vec<Family>,
    },
    /// Remove the routes still marked stale in these families (their End-of-RIB
    /// arrived, the peer came back without preserving them, or time ran out).
    StaleEnd(Vec<Family>),
    /// Apply an UPDATE to the Adj-RIB-In.
    Update(Update),
    /// The peer asked for the family again (ROUTE-REFRESH).
    Refresh(Family),
}

/// The state machine of one neighbor.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    negotiated: Option<Negotiated>,
    backoff: Duration,
    connect_retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    last_error: Option<String>,
    /// The Restart State bit for the next OPENs (cleared once established).
    restarting: bool,
    /// Families whose routes the peer left stale, waiting for its End-of-RIB.
    stale: Vec<Family>,
    /// When the stale routes go even without an End-of-RIB.
    stale_until: Option<Instant>,
}

impl Session {
    /// A stopped session.
    pub fn new(config: SessionConfig) -> Self {
        let backoff = config.connect_retry;
        Session {
            state: State::Idle,
            negotiated: None,
            backoff,
            connect_retry_at: None,
            hold_at: None,
            keepalive_at: None,
            last_error: None,
            restarting: config.restarted,
            stale: Vec::new(),
            stale_until: None,
            config,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// New reconnect delays, used from the next failure on: they are not negotiated,
    /// so changing them needs no new session.
    pub fn set_connect_retry(&mut self, first: Duration, max: Duration) {
        self.config.connect_retry = first;
        self.config.connect_retry_max = max.max(first);
        self.backoff = self.backoff.clamp(first, self.config.connect_retry_max);
    }

    /// What was negotiated, while in OpenConfirm or Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Why the session last went down.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The earliest timer deadline, if any timer runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.connect_retry_at,
            self.hold_at,
            self.keepalive_at,
            self.stale_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The OPEN this side sends.
    pub fn open_message(&self) -> Open {
        let mut capabilities: Vec<Capability> = self
            .config
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(self.config.local_as));
        if let Some(time) = self.config.graceful_restart {
            // Forwarding State set for every family: what our routes stand for (the
            // services behind the addresses) lives outside this process and goes on
            // while it restarts. Peers flush our stale routes without it.
            capabilities.push(Capability::GracefulRestart(GracefulRestart {
                restarting: self.restarting,
                restart_time: time.min(0x0fff),
                families: self
                    .config
                    .families
                    .iter()
                    .map(|f| (*f, GR_FORWARDING))
                    .collect(),
            }));
        }
        Open {
            asn: self.config.local_as,
            hold_time: self.config.hold_time,
            bgp_id: self.config.router_id,
            capabilities,
        }
    }

    /// Handles one event at time `now`.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, event) {
            (State::Idle, Event::Start) => self.start(now, &mut out),
            (_, Event::Start) => {}
            (state, Event::Stop(n)) => {
                if state.connected() {
                    out.push(Action::Send(Message::Notification(n.clone())));
                    out.push(Action::Disconnect);
                } else if state == State::Connect {
                    out.push(Action::Disconnect);
                }
                let reason = format!("stopped: {}", n.describe());
                self.leave(now, state, reason, false, &mut out);
                self.end_stale(&mut out);
                self.state = State::Idle;
                self.clear_timers();
                self.backoff = self.config.connect_retry;
            }
            (State::Idle, Event::TcpConnected) => out.push(Action::Disconnect),
            (
                State::Connect | State::Active | State::OpenSent | State::OpenConfirm,
                Event::TcpConnected,
            ) => {
                self.negotiated = None;
                self.connect_retry_at = None;
                self.keepalive_at = None;
                self.hold_at = Some(now + OPEN_HOLD_TIME);
                self.state = State::OpenSent;
                out.push(Action::Send(Message::Open(self.open_message())));
            }
            (State::Established, Event::TcpConnected) => {}
            (State::Idle | State::Active, Event::TcpFailed(_)) => {}
            (state, Event::TcpFailed(why)) => {
                let reason = format!("connection lost: {why}");
                self.fail(now, state, reason, Ending::Silent, &mut out)
            }
            (
                State::Idle | State::Connect | State::Active,
                Event::Message(_) | Event::DecodeError(_) | Event::Reset(..),
            ) => {}
            (state, Event::Reset(n, why)) => {
                self.fail(now, state, why, Ending::Notify(n), &mut out)
            }
            (state, Event::DecodeError(e)) => {
                let reason = format!("malformed message: {}", e.reason);
                self.fail(now, state, reason, Ending::Notify(e.notification), &mut out)
            }
            (state, Event::Message(Message::Notification(n))) => self.fail(
                now,
                state,
                format!("peer sent NOTIFICATION {}", n.describe()),
                Ending::Notified,
                &mut out,
            ),
            (State::OpenSent, Event::Message(Message::Open(open))) => {
                self.receive_open(now, open, &mut out)
            }
            (State::OpenConfirm, Event::Message(Message::Keepalive)) => {
                self.state = State::Established;
                self.backoff = self.config.connect_retry;
                self.last_error = None;
                self.restarting = false;
                self.restart_hold(now);
                if let Some(n) = &self.negotiated {
                    out.push(Action::Established(n.clone()));
                }
                self.established_with_stale(now, &mut out);
            }
            (State::Established, Event::Message(msg)) => {
                self.restart_hold(now);
                match msg {
                    Message::Keepalive => {}
                    Message::Update(u) => {
                        let eor = u.end_of_rib_family();
                        out.push(Action::Update(u));
                        if let Some(family) = eor {
                            self.end_of_rib(family, &mut out);
                        }
                    }
                    Message::RouteRefresh(rr) => {
                        let known = self
                            .negotiated
                            .as_ref()
                            .is_some_and(|n| n.families.contains(&rr.family));
                        if known && rr.subtype == 0 {
                            out.push(Action::Refresh(rr.family));
                        }
                    }
                    Message::Open(_) => {
                        let n = Notification {
                            code: code::FSM,
                            subcode: fsm_sub::UNEXPECTED_IN_ESTABLISHED,
                            data: vec![],
                        };
                        self.fail(
                            now,
                            State::Established,
                            "unexpected OPEN in Established".into(),
                            Ending::Notify(n),
                            &mut out,
                        );
                    }
                    Message::Notification(_) => {}
                }
            }
            (state @ (State::OpenSent | State::OpenConfirm), Event::Message(msg)) => {
                let subcode = if state == State::OpenSent {
                    fsm_sub::UNEXPECTED_IN_OPENSENT
                } else {
                    fsm_sub::UNEXPECTED_IN_OPENCONFIRM
                };
                let n = Notification {
                    code: code::FSM,
                    subcode,
                    data: vec![],
                };
                let why = format!("unexpected {} in {}", msg.kind(), state.name());
                self.fail(now, state, why, Ending::Notify(n), &mut out);
            }
        }
        out
    }

    /// Fires the timers due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.hold_at) {
            let n = Notification {
                code: code::HOLD_TIMER_EXPIRED,
                subcode: 0,
                data: vec![],
            };
            let state = self.state;
            let why = "hold timer expired".into();
            self.fail(now, state, why, Ending::Notify(n), &mut out);
        }
        if due(self.stale_until) {
            self.end_stale(&mut out);
        }
        if due(self.keepalive_at) {
            out.push(Action::Send(Message::Keepalive));
            self.keepalive_at = self.keepalive_interval().map(|k| now + k);
        }
        if due(self.connect_retry_at) {
            self.connect_retry_at = None;
            match self.state {
                State::Active if !self.config.passive => {
                    self.state = State::Connect;
                    self.connect_retry_at = Some(now + self.connect_timeout());
                    out.push(Action::Connect);
                }
                State::Connect => {
                    // The attempt hangs: drop it and wait before the next one.
                    out.push(Action::Disconnect);
                    self.state = State::Active;
                    self.schedule_retry(now);
                }
                _ => {}
            }
        }
        out
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            self.connect_retry_at = Some(now + self.connect_timeout());
            out.push(Action::Connect);
        }
    }

    /// How long one outbound attempt may take before it is abandoned.
    fn connect_timeout(&self) -> Duration {
        self.backoff.max(Duration::from_secs(5))
    }

    fn schedule_retry(&mut self, now: Instant) {
        if !self.config.passive {
            self.connect_retry_at = Some(now + self.backoff);
        }
        self.backoff = (self.backoff * 2).min(self.config.connect_retry_max);
    }

    fn keepalive_interval(&self) -> Option<Duration> {
        let hold = self.negotiated.as_ref()?.hold_time;
        (hold > 0).then(|| Duration::from_secs(hold as u64) / 3)
    }

    fn restart_hold(&mut self, now: Instant) {
        self.hold_at = self
            .negotiated
            .as_ref()
            .filter(|n| n.hold_time > 0)
            .map(|n| now + Duration::from_secs(n.hold_time as u64));
    }

    fn clear_timers(&mut self) {
        self.connect_retry_at = None;
        self.hold_at = None;
        self.keepalive_at = None;
    }

    /// Leaves `from` for `reason`. A session that was established and ends `silent`ly
    /// (no NOTIFICATION either way) with graceful restart negotiated keeps the peer's
    /// routes of the families it preserves, as stale, for its restart time.
    fn leave(
        &mut self,
        now: Instant,
        from: State,
        reason: String,
        silent: bool,
        out: &mut Vec<Action>,
    ) {
        if from == State::Established {
            let stale = match (silent, self.graceful_restart()) {
                (true, Some((gr, families))) if gr.restart_time > 0 => families,
                _ => Vec::new(),
            };
            self.stale_until = self
                .graceful_restart()
                .filter(|_| !stale.is_empty())
                .map(|(gr, _)| now + Duration::from_secs(u64::from(gr.restart_time)));
            self.stale.clone_from(&stale);
            out.push(Action::Down {
                reason: reason.clone(),
                stale,
            });
        }
        self.negotiated = None;
        self.last_error = Some(reason);
    }

    /// The peer's graceful-restart capability and the negotiated families it lists,
    /// when both sides advertised the capability.
    fn graceful_restart(&self) -> Option<(&GracefulRestart, Vec<Family>)> {
        self.config.graceful_restart?;
        let n = self.negotiated.as_ref()?;
        let gr = n.graceful_restart.as_ref()?;
        let families = n
            .families
            .iter()
            .copied()
            .filter(|f| gr.families.iter().any(|(g, _)| g == f))
            .collect();
        Some((gr, families))
    }

    /// True when both sides advertised graceful restart in the session in progress: a
    /// new connection from the peer may then mean it restarted (RFC 4724 §4.2; see
    /// [`peer_restarted`](Self::peer_restarted)).
    pub fn graceful_restart_negotiated(&self) -> bool {
        self.graceful_restart().is_some()
    }

    /// An OPEN arrived on a new connection from the peer while this session is
    /// Established: true when it means the peer restarted (RFC 4724 §4.2) and replaces
    /// the session, false when it is a collision with the established session (RFC 4271
    /// §6.8: the new connection is closed). Only with graceful restart negotiated, and
    /// then when the peer says so (the Restart State bit) or the established connection
    /// has been silent for a keepalive interval (a peer that restarted without saying
    /// so, its old connection not yet seen dead). Both sides reconnecting at once after
    /// a reset is what this tells apart: the peer's second connection then carries an
    /// OPEN without the bit while the session is alive.
    pub fn peer_restarted(&self, now: Instant, open: &Open) -> bool {
        if self.state != State::Established || !self.graceful_restart_negotiated() {
            return false;
        }
        if open.graceful_restart().is_some_and(|gr| gr.restarting) {
            return true;
        }
        let (Some(hold_at), Some(keepalive)) = (self.hold_at, self.keepalive_interval()) else {
            return false;
        };
        let hold = keepalive * 3;
        let silent = hold.saturating_sub(hold_at.saturating_duration_since(now));
        silent >= keepalive
    }

    /// Families whose stale routes are waiting for an End-of-RIB.
    pub fn stale_families(&self) -> &[Family] {
        &self.stale
    }

    /// Removes every stale route that is left.
    fn end_stale(&mut self, out: &mut Vec<Action>) {
        self.stale_until = None;
        if !self.stale.is_empty() {
            out.push(Action::StaleEnd(std::mem::take(&mut self.stale)));
        }
    }

    /// The session is back: the families the peer no longer preserves lose their stale
    /// routes now (RFC 4724 §4.2); the others wait for their End-of-RIB.
    fn established_with_stale(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.stale.is_empty() {
            return;
        }
        let preserved = |f: &Family| {
            self.negotiated.as_ref().is_some_and(|n| {
                n.families.contains(f)
                    && n.graceful_restart.as_ref().is_some_and(|gr| {
                        gr.families
                            .iter()
                            .any(|(g, flags)| g == f && flags & GR_FORWARDING != 0)
                    })
            })
        };
        let (kept, ended): (Vec<Family>, Vec<Family>) =
            self.stale.iter().partition(|f| preserved(f));
        if !ended.is_empty() {
            out.push(Action::StaleEnd(ended));
        }
        self.stale = kept;
        self.stale_until = (!self.stale.is_empty()).then(|| now + STALE_ROUTES_TIME);
    }

    /// An End-of-RIB arrived: that family's stale routes go.
    fn end_of_rib(&mut self, family: Family, out: &mut Vec<Action>) {
        if let Some(i) = self.stale.iter().position(|f| *f == family) {
            self.stale.remove(i);
            out.push(Action::StaleEnd(vec![family]));
            if self.stale.is_empty() {
                self.stale_until = None;
            }
        }
    }

    /// Any error: optionally notify, close, and wait (with backoff) before reconnecting.
    fn fail(
        &mut self,
        now: Instant,
        from: State,
        reason: String,
        ending: Ending,
        out: &mut Vec<Action>,
    ) {
        let silent = matches!(ending, Ending::Silent);
        if let Ending::Notify(n) = ending {
            out.push(Action::Send(Message::Notification(n)));
        }
        out.push(Action::Disconnect);
        self.leave(now, from, reason, silent, out);
        self.clear_timers();
        self.state = State::Active;
        self.schedule_retry(now);
    }

    fn receive_open(&mut self, now: Instant, open: Open, out: &mut Vec<Action>) {
        let reject = |subcode: u8, data: Vec<u8>| Notification {
            code: code::OPEN_MESSAGE,
            subcode,
            data,
        };
        if open.asn != self.config.peer_as {
            let data = u16::try_from(open.asn)
                .unwrap_or(crate::packet::open::AS_TRANS)
                .to_be_bytes()
                .to_vec();
            let why = format!(
                "peer AS {} is not the configured {}",
                open.asn, self.config.peer_as
            );
            return self.fail(
                now,
                State::OpenSent,
                why,
                Ending::Notify(reject(open_sub::BAD_PEER_AS, data)),
                out,
            );
        }
        if open.bgp_id == self.config.router_id && self.config.peer_as == self.config.local_as {
            let why = format!("peer BGP identifier {} equals ours", open.bgp_id);
            return self.fail(
                now,
                State::OpenSent,
                why,
                Ending::Notify(reject(open_sub::BAD_BGP_IDENTIFIER, vec![])),
                out,
            );
        }
        let peer_families: Vec<Family> = open.families().collect();
        // RFC 4760 §8: a peer without the capability speaks IPv4 unicast only.
        let peer_families = if peer_families.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            peer_families
        };
        let families: Vec<Family> = self
            .config
            .families
            .iter()
            .copied()
            .filter(|f| peer_families.contains(f))
            .collect();
        let hold_time = self.config.hold_time.min(open.hold_time);
        self.negotiated = Some(Negotiated {
            hold_time,
            families,
            context: Context {
                four_octet_as: open.four_octet_as(),
            },
            route_refresh: open.route_refresh(),
            peer_id: open.bgp_id,
            peer_as: open.asn,
            graceful_restart: open.graceful_restart().cloned(),
        });
        self.state = State::OpenConfirm;
        out.push(Action::Send(Message::Keepalive));
        self.restart_hold(now);
        self.keepalive_at = self.keepalive_interval().map(|k| now + k);
    }
}

/// How a session ends, for graceful restart.
enum Ending {
    /// The connection closed without a NOTIFICATION.
    Silent,
    /// The peer sent a NOTIFICATION.
    Notified,
    /// We send this NOTIFICATION.
    Notify(Notification),
}

/// Connection collision (RFC 4271 §6.8): true if the connection already in use is kept and
/// the new one closed with Cease/Connection Collision Resolution. The connection initiated
/// by the speaker with the higher BGP identifier survives.
pub fn collision_keeps_existing(
    local_id: Ipv4Addr,
    remote_id: Ipv4Addr,
    existing_is_outbound: bool,
) -> bool {
    let local_wins = u32::from(local_id) > u32::from(remote_id);
    local_wins == existing_is_outbound
}

/// The Cease sent to the connection that loses a collision.
pub fn collision_notification() -> Notification {
    Notification::cease(cease_sub::CONNECTION_COLLISION)
}

#[cfg(test)]
mod tests;
