//! The `session` target: a whole conversation with the session machine, driven as the
//! daemon drives it (`host/daemon/src/tasks/connection.rs` and `neighbor/`): bytes from
//! the peer go through the connection's [`MessageReader`], which cuts and decodes them and
//! stops after the peer's OPEN until the session has negotiated the context; they are
//! handed over as `Event::Message` or `Event::DecodeError`, and a new connection (TCP up,
//! or any after the session dropped one) gets a new reader. Transport events, stops,
//! resets and the passing of time come in between.
//!
//! The first octet is the configuration ([`config`]); then steps, each an octet and its
//! operands ([`Harness::step`]). Raw bytes from the peer are one step; the others build
//! the usual messages (the peer's OPEN with chosen capabilities, KEEPALIVE, UPDATEs,
//! NOTIFICATION, ROUTE-REFRESH) with the codec and send them through the same bytes
//! path, so that short inputs reach Established.
//!
//! After every call into the machine, [`Harness::check`] asserts what RFC 4271 §8 and
//! the machine's documentation promise (see there); a panic anywhere fails the target.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use wasmbgp_bgp::packet::attributes::{AsPath, NextHop, Origin, PathAttributes};
use wasmbgp_bgp::packet::flowspec::{Component, FlowPrefix};
use wasmbgp_bgp::packet::notification::cease_sub;
use wasmbgp_bgp::packet::{
    self, Capability, Context, GracefulRestart, Message, MessageReader, MpNlri, MpReach, MpUnreach,
    Notification, Open, RouteRefresh, Update,
};
use wasmbgp_bgp::session::{Action, Event, Negotiated, Session, SessionConfig, State};
use wasmbgp_bgp::{Family, Ipv4Prefix, Ipv6Prefix};

/// Our BGP identifier.
const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The peer's.
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// See the module documentation.
pub fn session(data: &[u8]) {
    run(data);
}

/// Runs an input of the target; returns the harness at its end.
pub fn run(data: &[u8]) -> Harness {
    let selector = data.first().copied().unwrap_or(0);
    let mut h = Harness::new(config(selector));
    let mut input = Input(data.get(1..).unwrap_or_default());
    while let Some(op) = input.u8() {
        h.step(op, &mut input);
    }
    h
}

/// The configuration picked by the first octet (families, passive, graceful restart,
/// restarted, iBGP or eBGP, 2- or 4-octet ASNs, hold time).
pub fn config(selector: u8) -> SessionConfig {
    let families = match selector & 3 {
        0 => vec![Family::IPV4_UNICAST],
        1 => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        2 => Family::CARRIED.to_vec(),
        _ => vec![Family::IPV6_UNICAST, Family::IPV6_FLOWSPEC],
    };
    let (local_as, remote_as) = if selector & 0x40 != 0 {
        (4_200_000_001, 4_200_000_002)
    } else {
        (65001, 65002)
    };
    SessionConfig {
        local_as,
        peer_as: if selector & 0x20 != 0 {
            local_as
        } else {
            remote_as
        },
        router_id: ROUTER_ID,
        hold_time: if selector & 0x80 != 0 { 0 } else { 90 },
        passive: selector & 4 != 0,
        connect_retry: Duration::from_secs(1),
        connect_retry_max: Duration::from_secs(8),
        families,
        graceful_restart: (selector & 8 != 0).then_some(120),
        restarted: selector & 0x10 != 0,
    }
}

/// The steps, by their octet modulo 13.
pub mod op {
    /// `Event::Start`.
    pub const START: u8 = 0;
    /// `Event::TcpConnected`.
    pub const TCP_CONNECTED: u8 = 1;
    /// `Event::TcpFailed`.
    pub const TCP_FAILED: u8 = 2;
    /// `Event::Stop` with an administrative shutdown.
    pub const STOP: u8 = 3;
    /// `Event::Reset` with Cease/Maximum Number of Prefixes.
    pub const RESET: u8 = 4;
    /// One operand octet: that many seconds pass, then `poll`.
    pub const WAIT: u8 = 5;
    /// Time runs to the next deadline, then `poll`.
    pub const WAIT_DEADLINE: u8 = 6;
    /// Two operand octets (a length, big-endian), then that many octets from the peer.
    pub const BYTES: u8 = 7;
    /// One operand octet: the peer's OPEN ([`super::peer_open`]).
    pub const OPEN: u8 = 8;
    /// A KEEPALIVE from the peer.
    pub const KEEPALIVE: u8 = 9;
    /// One operand octet: an UPDATE from the peer ([`super::peer_update`]).
    pub const UPDATE: u8 = 10;
    /// One operand octet: a NOTIFICATION from the peer, with that subcode of Cease.
    pub const NOTIFICATION: u8 = 11;
    /// One operand octet: a ROUTE-REFRESH from the peer ([`super::family`], subtype).
    pub const ROUTE_REFRESH: u8 = 12;
    /// How many there are.
    pub const COUNT: u8 = 13;
}

/// The rest of the input.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// A family by an octet: the four this codec carries, and one it keeps raw.
pub fn family(b: u8) -> Family {
    match b % 5 {
        4 => Family { afi: 25, safi: 65 },
        i => Family::CARRIED[usize::from(i)],
    }
}

/// The peer's OPEN. Bits of `b`: 0, another AS than configured; 1-2, hold time 0, 3, 30
/// or 65535; 3, multiprotocol capabilities for the four families (else IPv4 unicast
/// only, 4: none at all); 5, the 4-octet AS capability; 6, graceful restart (restart time
/// 90, forwarding state for every family when bit 7 is also set); 7 without 6, our own
/// BGP identifier.
pub fn peer_open(config: &SessionConfig, b: u8) -> Open {
    let asn = if b & 1 != 0 {
        config.peer_as.wrapping_add(7)
    } else {
        config.peer_as
    };
    let mut capabilities = Vec::new();
    match (b & 8 != 0, b & 0x10 != 0) {
        (true, _) => capabilities.extend(
            Family::CARRIED
                .iter()
                .map(|f| Capability::Multiprotocol(*f)),
        ),
        (false, false) => capabilities.push(Capability::Multiprotocol(Family::IPV4_UNICAST)),
        (false, true) => {}
    }
    capabilities.push(Capability::RouteRefresh);
    if b & 0x20 != 0 {
        capabilities.push(Capability::FourOctetAs(asn));
    }
    if b & 0x40 != 0 {
        let flags = if b & 0x80 != 0 { 0x80 } else { 0 };
        capabilities.push(Capability::GracefulRestart(GracefulRestart {
            restarting: b & 0x10 != 0,
            restart_time: 90,
            families: Family::CARRIED.iter().map(|f| (*f, flags)).collect(),
        }));
    }
    Open {
        // Without the 4-octet capability, the peer's AS is what the 2-octet field says.
        asn: if b & 0x20 != 0 || asn <= 0xffff {
            asn
        } else {
            23456
        },
        hold_time: [0, 3, 30, 65535][usize::from((b >> 1) & 3)],
        bgp_id: if b & 0xc0 == 0x80 { ROUTER_ID } else { PEER_ID },
        capabilities,
    }
}

/// An UPDATE from the peer, by `b % 8`: IPv4 routes, IPv4 withdrawn, IPv6 routes and
/// withdrawn, a FlowSpec rule, each End-of-RIB marker of [`family`] (`b / 8`), a
/// malformed NEXT_HOP (treat-as-withdraw).
pub fn peer_update(b: u8) -> Update {
    let attributes = PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::from_sequence(vec![65002, 4_200_000_002]),
        next_hop: Some(NextHop::Addr("198.51.100.1".parse().unwrap())),
        med: Some(10),
        communities: vec![(65002 << 16) | 1],
        ..PathAttributes::default()
    };
    let v4: Vec<Ipv4Prefix> = ["203.0.113.0/24", "10.0.0.0/8"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let v6: Vec<Ipv6Prefix> = vec!["2001:db8:1::/48".parse().unwrap()];
    match b % 8 {
        0 => Update {
            attributes,
            nlri: v4,
            ..Update::default()
        },
        1 => Update {
            withdrawn: v4,
            ..Update::default()
        },
        2 => Update {
            attributes: PathAttributes {
                next_hop: None,
                ..attributes
            },
            mp_reach: Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: vec!["2001:db8::1".parse().unwrap()],
                nlri: MpNlri::Ipv6(v6),
            }),
            ..Update::default()
        },
        3 => Update {
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: MpNlri::Ipv6(v6),
            }),
            ..Update::default()
        },
        4 => {
            let dst = FlowPrefix::V4("192.0.2.0/24".parse().unwrap());
            let rule = packet::flowspec::FlowSpec::new(1, &[Component::Destination(dst)]).unwrap();
            Update {
                attributes: PathAttributes {
                    next_hop: None,
                    ..attributes
                },
                mp_reach: Some(MpReach {
                    family: Family::IPV4_FLOWSPEC,
                    next_hop: vec![],
                    nlri: MpNlri::Flow(vec![rule]),
                }),
                ..Update::default()
            }
        }
        5 | 6 => Update::end_of_rib(family(b / 8)),
        _ => Update {
            attributes: PathAttributes {
                next_hop: Some(NextHop::Addr("224.0.0.1".parse().unwrap())),
                ..attributes
            },
            nlri: v4,
            ..Update::default()
        },
    }
}

/// The machine, a clock, and what the checks need to remember.
pub struct Harness {
    session: Session,
    /// The reader of the current connection.
    reader: MessageReader,
    now: Instant,
    /// What was negotiated the last time the session was in OpenConfirm or Established.
    last_negotiated: Option<Negotiated>,
    /// How many times the session was established.
    pub established: usize,
    /// How many UPDATEs it handed over.
    pub updates: usize,
}

/// Which kind of call a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// A NOTIFICATION from the peer.
    PeerNotification,
    /// A message from the peer other than a NOTIFICATION, or bytes that do not decode.
    PeerMessage,
    /// The transport closed or failed.
    TcpFailed,
    /// Any other event, or `poll`.
    Other,
}

impl Harness {
    /// A new (Idle) session with `config`.
    pub fn new(config: SessionConfig) -> Self {
        let session = Session::new(config);
        assert_eq!(session.state(), State::Idle);
        assert_eq!(session.next_deadline(), None);
        Harness {
            session,
            reader: MessageReader::new(),
            now: Instant::now(),
            last_negotiated: None,
            established: 0,
            updates: 0,
        }
    }

    /// Runs the step `op` (see [`op`]), reading its operands from `input`.
    pub fn step(&mut self, op: u8, input: &mut Input) {
        match op % op::COUNT {
            op::START => self.event(Event::Start, Call::Other),
            op::TCP_CONNECTED => {
                self.reader = MessageReader::new();
                self.event(Event::TcpConnected, Call::Other)
            }
            op::TCP_FAILED => {
                self.event(Event::TcpFailed("closed by peer".into()), Call::TcpFailed)
            }
            op::STOP => {
                let n = Notification::administrative_shutdown("fuzz");
                self.event(Event::Stop(n), Call::Other)
            }
            op::RESET => {
                let n = Notification::max_prefixes(Family::IPV4_UNICAST, 10);
                self.event(Event::Reset(n, "too many prefixes".into()), Call::Other)
            }
            op::WAIT => {
                let seconds = input.u8().unwrap_or(1);
                self.wait(Duration::from_secs(u64::from(seconds)))
            }
            op::WAIT_DEADLINE => {
                let until = self.session.next_deadline().unwrap_or(self.now);
                self.wait(until.saturating_duration_since(self.now))
            }
            op::BYTES => {
                let hi = input.u8().unwrap_or(0);
                let lo = input.u8().unwrap_or(0);
                let bytes = input.take(usize::from(u16::from_be_bytes([hi, lo])));
                self.bytes(bytes)
            }
            op::OPEN => {
                let open = peer_open(self.session.config(), input.u8().unwrap_or(0));
                self.send(Message::Open(open))
            }
            op::KEEPALIVE => self.send(Message::Keepalive),
            op::UPDATE => self.send(Message::Update(peer_update(input.u8().unwrap_or(0)))),
            op::NOTIFICATION => {
                let subcode = input.u8().unwrap_or(cease_sub::ADMINISTRATIVE_RESET);
                self.send(Message::Notification(Notification::cease(subcode % 10)))
            }
            _ => {
                let b = input.u8().unwrap_or(0);
                let rr = RouteRefresh {
                    family: family(b),
                    subtype: b / 5 % 3,
                };
                self.send(Message::RouteRefresh(rr))
            }
        }
    }

    /// The peer sends `m`, encoded as it would be on this session.
    fn send(&mut self, m: Message) {
        let bytes = m.to_bytes(&self.context());
        self.bytes(&bytes)
    }

    fn context(&self) -> Context {
        self.session
            .negotiated()
            .map(|n| n.context)
            .unwrap_or_default()
    }

    /// Bytes from the peer, as one read of the connection: the messages the reader cuts
    /// from them are handled in turn until the session drops the connection, the reader
    /// fails (it stops after an error, as the daemon's does) or waits for a context the
    /// session has not negotiated.
    fn bytes(&mut self, mut buf: &[u8]) {
        loop {
            // The neighbor task hands the reader the context once the session has it.
            if self.reader.awaits_context()
                && let Some(n) = self.session.negotiated()
            {
                self.reader.negotiated(n.context);
            }
            let event = match self.reader.next(buf) {
                Some(Ok((len, m))) => {
                    buf = &buf[len..];
                    Event::Message(m)
                }
                Some(Err(e)) => Event::DecodeError(e),
                None => return,
            };
            let call = match &event {
                Event::Message(Message::Notification(_)) => Call::PeerNotification,
                _ => Call::PeerMessage,
            };
            if self.handle(event, call) {
                return;
            }
        }
    }

    /// Handles `event`.
    fn event(&mut self, event: Event, call: Call) {
        self.handle(event, call);
    }

    /// Handles `event`; true if the session dropped the connection.
    fn handle(&mut self, event: Event, call: Call) -> bool {
        let before = self.session.state();
        let actions = self.session.handle(self.now, event);
        self.check(before, call, &actions);
        let dropped = actions.contains(&Action::Disconnect);
        if dropped {
            // Whatever connects next is a new connection with a reader of its own.
            self.reader = MessageReader::new();
        }
        dropped
    }

    /// Lets `d` pass, then polls the timers.
    fn wait(&mut self, d: Duration) {
        self.now += d;
        let before = self.session.state();
        let actions = self.session.poll(self.now);
        self.check(before, Call::Other, &actions);
        if let Some(next) = self.session.next_deadline() {
            assert!(
                next > self.now,
                "poll left a timer due: {next:?} <= {:?}",
                self.now
            );
        }
    }

    /// What holds after every call, given the state before it and the actions it returned:
    ///
    /// - the machine never sends an UPDATE (the daemon sends the Adj-RIB-Out after
    ///   `Established`); `Update` and `Refresh` come only in Established; KEEPALIVEs are
    ///   sent only in OpenConfirm and Established, OPENs only on entering OpenSent,
    ///   `Connect` only on entering Connect (never when passive);
    /// - `Established` comes exactly on OpenConfirm → Established, with what was
    ///   negotiated: families among ours, a hold time neither ours exceeded nor 1 or 2;
    ///   `Down` comes exactly when Established is left, keeping stale routes only of
    ///   negotiated families, only with graceful restart, only when the connection ended
    ///   without a NOTIFICATION either way;
    /// - a NOTIFICATION from the peer is never answered with one; while connected, it
    ///   ends the connection (the session goes to Active, to reconnect after backoff);
    /// - every NOTIFICATION sent is followed by `Disconnect` and has a code and subcode
    ///   the RFCs name; every message sent encodes and decodes back unchanged;
    /// - messages and decode errors in Idle, Connect and Active do nothing;
    /// - what was negotiated is known exactly in OpenConfirm and Established; Idle runs
    ///   no timer; OpenSent, OpenConfirm and Established run the hold timer when one was
    ///   agreed; stale families are configured ones, and none without graceful restart.
    fn check(&mut self, before: State, call: Call, actions: &[Action]) {
        let s = &self.session;
        let after = s.state();
        let config = s.config();
        let ctx = self.context();
        let established = before == State::Established && after == State::Established;
        let mut iter = actions.iter().peekable();
        while let Some(a) = iter.next() {
            match a {
                Action::Send(m) => {
                    match m {
                        Message::Update(_) => panic!("the machine sent an UPDATE: {actions:?}"),
                        Message::Keepalive => assert!(
                            matches!(after, State::OpenConfirm | State::Established),
                            "KEEPALIVE sent in {after:?}"
                        ),
                        Message::Open(open) => {
                            assert_eq!(after, State::OpenSent, "OPEN sent in {after:?}");
                            assert_eq!(*open, s.open_message());
                        }
                        Message::Notification(n) => {
                            assert_ne!(
                                call,
                                Call::PeerNotification,
                                "a NOTIFICATION answered with one"
                            );
                            assert!(before.connected(), "NOTIFICATION sent in {before:?}");
                            let described = n.describe();
                            assert!(
                                !described.contains("subcode") && !described.contains("Unknown"),
                                "NOTIFICATION {}/{} sent ({described})",
                                n.code,
                                n.subcode
                            );
                            assert_eq!(
                                iter.peek(),
                                Some(&&Action::Disconnect),
                                "a NOTIFICATION not followed by Disconnect: {actions:?}"
                            );
                        }
                        Message::RouteRefresh(_) => {
                            panic!("the machine sent a ROUTE-REFRESH: {actions:?}")
                        }
                    }
                    let bytes = m.to_bytes(&ctx);
                    let again = packet::decode(&bytes, &ctx);
                    assert_eq!(again.as_ref(), Ok(m), "what the machine sent: {bytes:02x?}");
                }
                Action::Connect => {
                    assert_eq!(after, State::Connect, "Connect in {after:?}");
                    assert!(!config.passive, "a passive session connects");
                }
                Action::Update(_) | Action::Refresh(_) => {
                    assert!(established, "{a:?} from {before:?} to {after:?}");
                    self.updates += usize::from(matches!(a, Action::Update(_)));
                }
                Action::Established(n) => {
                    self.established += 1;
                    assert_eq!((before, after), (State::OpenConfirm, State::Established));
                    assert_eq!(Some(n), s.negotiated());
                    assert!(n.families.iter().all(|f| config.families.contains(f)));
                    assert!(n.hold_time <= config.hold_time && !matches!(n.hold_time, 1 | 2));
                }
                Action::Down { stale, .. } => {
                    assert_eq!(before, State::Established, "Down from {before:?}");
                    assert_ne!(after, State::Established);
                    if !stale.is_empty() {
                        assert!(config.graceful_restart.is_some(), "stale {stale:?}");
                        assert_eq!(call, Call::TcpFailed, "stale routes kept: {actions:?}");
                        let negotiated = self.last_negotiated.as_ref().map(|n| &n.families);
                        assert!(
                            stale
                                .iter()
                                .all(|f| negotiated.is_some_and(|n| n.contains(f))),
                            "stale {stale:?} not negotiated ({negotiated:?})"
                        );
                    }
                }
                Action::StaleEnd(families) => {
                    assert!(!families.is_empty(), "StaleEnd of nothing");
                    assert!(families.iter().all(|f| config.families.contains(f)));
                }
                Action::Disconnect => {}
            }
        }
        let downs = actions
            .iter()
            .filter(|a| matches!(a, Action::Down { .. }))
            .count();
        let left = before == State::Established && after != State::Established;
        assert_eq!(
            downs,
            usize::from(left),
            "{before:?} -> {after:?}: {actions:?}"
        );
        let ups = actions
            .iter()
            .filter(|a| matches!(a, Action::Established(_)))
            .count();
        let entered = before == State::OpenConfirm && after == State::Established;
        assert_eq!(
            ups,
            usize::from(entered),
            "{before:?} -> {after:?}: {actions:?}"
        );
        match call {
            Call::PeerNotification | Call::PeerMessage if !before.connected() => {
                assert!(
                    actions.is_empty(),
                    "{before:?} acted on a message: {actions:?}"
                );
                assert_eq!(after, before);
            }
            Call::PeerNotification => {
                assert_eq!(after, State::Active, "after the peer's NOTIFICATION");
                assert!(actions.contains(&Action::Disconnect));
            }
            _ => {}
        }
        let negotiated = matches!(after, State::OpenConfirm | State::Established);
        assert_eq!(s.negotiated().is_some(), negotiated, "in {after:?}");
        if let Some(n) = s.negotiated() {
            self.last_negotiated = Some(n.clone());
            if n.hold_time > 0 {
                assert!(s.next_deadline().is_some(), "no hold timer in {after:?}");
            }
        }
        match after {
            State::Idle => assert_eq!(s.next_deadline(), None, "a timer runs in Idle"),
            State::OpenSent => assert!(s.next_deadline().is_some(), "no hold timer"),
            _ => {}
        }
        for f in s.stale_families() {
            assert!(config.families.contains(f), "stale {f}");
        }
        if config.graceful_restart.is_none() {
            assert!(s.stale_families().is_empty());
        }
    }
}
