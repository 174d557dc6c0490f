//! Every state transition and timer of the session machine.

use super::*;
use crate::packet::RouteRefresh;

fn config() -> SessionConfig {
    SessionConfig {
        local_as: 65001,
        peer_as: 65000,
        router_id: "127.0.0.1".parse().unwrap(),
        hold_time: 90,
        passive: false,
        connect_retry: Duration::from_secs(1),
        connect_retry_max: Duration::from_secs(8),
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: Some(120),
        restarted: false,
    }
}

fn peer_open(hold: u16) -> Message {
    Message::Open(Open {
        asn: 65000,
        hold_time: hold,
        bgp_id: "127.0.0.2".parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65000),
        ],
    })
}

fn sends(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Send(m) = a {
                Some(m)
            } else {
                None
            }
        })
        .collect()
}

fn notification(actions: &[Action]) -> Option<(u8, u8)> {
    sends(actions).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

/// Drives a session to Established; returns it and the time used.
fn established() -> (Session, Instant) {
    let t = Instant::now();
    let mut s = Session::new(config());
    assert_eq!(s.handle(t, Event::Start), vec![Action::Connect]);
    assert_eq!(s.state(), State::Connect);
    let a = s.handle(t, Event::TcpConnected);
    assert!(matches!(sends(&a)[..], [Message::Open(_)]));
    assert_eq!(s.state(), State::OpenSent);
    let a = s.handle(t, Event::Message(peer_open(30)));
    assert_eq!(a, vec![Action::Send(Message::Keepalive)]);
    assert_eq!(s.state(), State::OpenConfirm);
    let a = s.handle(t, Event::Message(Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    let Action::Established(n) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(
        n.families,
        vec![Family::IPV4_UNICAST],
        "intersection of families"
    );
    assert_eq!(n.hold_time, 30, "smaller hold time wins");
    assert!(n.context.four_octet_as && n.route_refresh);
    (s, t)
}

#[test]
fn idle_to_established_active_side() {
    established();
}

#[test]
fn passive_waits_for_the_peer() {
    let t = Instant::now();
    let mut s = Session::new(SessionConfig {
        passive: true,
        ..config()
    });
    assert!(s.handle(t, Event::Start).is_empty());
    assert_eq!(s.state(), State::Active);
    assert_eq!(s.next_deadline(), None, "passive never connects out");
    s.handle(t, Event::TcpConnected);
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn idle_refuses_connections_and_ignores_messages() {
    let t = Instant::now();
    let mut s = Session::new(config());
    assert_eq!(s.handle(t, Event::TcpConnected), vec![Action::Disconnect]);
    assert!(s.handle(t, Event::Message(Message::Keepalive)).is_empty());
    assert!(s.handle(t, Event::TcpFailed("x".into())).is_empty());
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn open_advertises_capabilities() {
    let s = Session::new(config());
    let open = s.open_message();
    assert_eq!(open.families().collect::<Vec<_>>(), config().families);
    assert!(open.four_octet_as() && open.route_refresh());
    assert_eq!(open.graceful_restart().unwrap().restart_time, 120);
}

#[test]
fn connect_failure_backs_off_exponentially_with_a_cap() {
    let mut t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    let mut delays = Vec::new();
    for _ in 0..6 {
        // The attempt fails: wait for the retry timer, which reconnects.
        s.handle(t, Event::TcpConnected);
        s.handle(t, Event::TcpFailed("refused".into()));
        assert_eq!(s.state(), State::Active);
        let due = s.next_deadline().unwrap();
        delays.push(due - t);
        t = due;
        assert_eq!(s.poll(t), vec![Action::Connect]);
        assert_eq!(s.state(), State::Connect);
    }
    let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, vec![1, 2, 4, 8, 8, 8]);
}

#[test]
fn hanging_connect_is_abandoned() {
    let t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    let due = s.next_deadline().unwrap();
    assert_eq!(due - t, Duration::from_secs(5));
    assert_eq!(s.poll(due), vec![Action::Disconnect]);
    assert_eq!(s.state(), State::Active);
}

#[test]
fn bad_peer_as_is_refused() {
    let t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    s.handle(t, Event::TcpConnected);
    let Message::Open(mut open) = peer_open(90) else {
        panic!()
    };
    open.asn = 65099;
    open.capabilities
        .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    let a = s.handle(t, Event::Message(Message::Open(open)));
    assert_eq!(notification(&a), Some((2, 2)));
    assert!(a.contains(&Action::Disconnect));
    assert_eq!(s.state(), State::Active);
    assert!(s.last_error().unwrap().contains("65099"));
}

#[test]
fn ibgp_with_our_own_identifier_is_refused() {
    let t = Instant::now();
    let mut s = Session::new(SessionConfig {
        peer_as: 65001,
        ..config()
    });
    s.handle(t, Event::Start);
    s.handle(t, Event::TcpConnected);
    let open = Open {
        asn: 65001,
        hold_time: 90,
        bgp_id: "127.0.0.1".parse().unwrap(),
        capabilities: vec![Capability::FourOctetAs(65001)],
    };
    let a = s.handle(t, Event::Message(Message::Open(open)));
    assert_eq!(notification(&a), Some((2, 3)));
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    s.handle(t, Event::TcpConnected);
    let a = s.handle(t, Event::Message(Message::Keepalive));
    assert_eq!(notification(&a), Some((5, 1)));

    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    s.handle(t, Event::TcpConnected);
    s.handle(t, Event::Message(peer_open(90)));
    let a = s.handle(t, Event::Message(Message::Update(Update::default())));
    assert_eq!(notification(&a), Some((5, 2)));

    let (mut s, t) = established();
    let a = s.handle(t, Event::Message(peer_open(90)));
    assert_eq!(notification(&a), Some((5, 3)));
    assert!(matches!(a.last(), Some(Action::Down { .. })));
}

#[test]
fn decode_errors_send_their_notification() {
    let (mut s, t) = established();
    let e = DecodeError::new(3, 1, [], "bad attribute list");
    let a = s.handle(t, Event::DecodeError(e));
    assert_eq!(notification(&a), Some((3, 1)));
    assert!(a.contains(&Action::Disconnect));
    assert!(
        matches!(a.last(), Some(Action::Down { reason: r, .. }) if r.contains("bad attribute list"))
    );
    assert_eq!(s.state(), State::Active);
}

#[test]
fn peer_notification_takes_the_session_down() {
    let (mut s, t) = established();
    let n = Notification::cease(cease_sub::ADMINISTRATIVE_SHUTDOWN);
    let a = s.handle(t, Event::Message(Message::Notification(n)));
    assert_eq!(
        notification(&a),
        None,
        "never answer a NOTIFICATION with one"
    );
    assert!(
        matches!(a.last(), Some(Action::Down { reason: r, .. }) if r.contains("Administrative Shutdown"))
    );
    assert_eq!(s.state(), State::Active);
    // It reconnects after the initial backoff.
    assert_eq!(s.next_deadline().unwrap() - t, Duration::from_secs(1));
}

#[test]
fn updates_and_refresh_in_established() {
    let (mut s, t) = established();
    let a = s.handle(t, Event::Message(Message::Update(Update::default())));
    assert_eq!(a, vec![Action::Update(Update::default())]);
    let rr = |f| {
        Event::Message(Message::RouteRefresh(RouteRefresh {
            family: f,
            subtype: 0,
        }))
    };
    assert_eq!(
        s.handle(t, rr(Family::IPV4_UNICAST)),
        vec![Action::Refresh(Family::IPV4_UNICAST)]
    );
    assert!(
        s.handle(t, rr(Family::IPV6_UNICAST)).is_empty(),
        "not negotiated"
    );
}

#[test]
fn keepalive_timer_fires_at_a_third_of_hold() {
    let (mut s, t) = established();
    // OpenConfirm set the keepalive timer to hold/3 = 10 s.
    assert!(s.poll(t + Duration::from_secs(9)).is_empty());
    assert_eq!(
        s.poll(t + Duration::from_secs(10)),
        vec![Action::Send(Message::Keepalive)]
    );
    assert!(s.poll(t + Duration::from_secs(19)).is_empty());
    assert_eq!(
        s.poll(t + Duration::from_secs(20)),
        vec![Action::Send(Message::Keepalive)]
    );
}

#[test]
fn hold_timer_expiry_and_restart() {
    let (mut s, t) = established();
    // A KEEPALIVE from the peer at 20 s pushes hold expiry to 50 s.
    s.handle(
        t + Duration::from_secs(20),
        Event::Message(Message::Keepalive),
    );
    let a = s.poll(t + Duration::from_secs(49));
    assert_eq!(notification(&a), None);
    let a = s.poll(t + Duration::from_secs(50));
    assert_eq!(notification(&a), Some((4, 0)));
    assert!(
        matches!(a.iter().find(|a| matches!(a, Action::Down { .. })), Some(Action::Down { reason: r, .. }) if r == "hold timer expired")
    );
    assert_eq!(s.state(), State::Active);
}

#[test]
fn hold_timer_runs_in_opensent() {
    let t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    s.handle(t, Event::TcpConnected);
    assert_eq!(s.next_deadline().unwrap() - t, OPEN_HOLD_TIME);
    let a = s.poll(t + OPEN_HOLD_TIME);
    assert_eq!(notification(&a), Some((4, 0)));
    assert!(
        !a.iter().any(|a| matches!(a, Action::Down { .. })),
        "was never up"
    );
}

#[test]
fn zero_hold_time_disables_keepalives() {
    let t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    s.handle(t, Event::TcpConnected);
    s.handle(t, Event::Message(peer_open(0)));
    s.handle(t, Event::Message(Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn stop_sends_cease_and_stays_idle() {
    let (mut s, t) = established();
    let a = s.handle(
        t,
        Event::Stop(Notification::administrative_shutdown("maintenance")),
    );
    assert_eq!(notification(&a), Some((6, 2)));
    assert_eq!(
        &a[1..],
        &[
            Action::Disconnect,
            Action::Down {
                reason: "stopped: Cease/Administrative Shutdown".into(),
                stale: vec![],
            }
        ]
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.next_deadline(), None);
    // Stopping a session that is not connected sends nothing.
    let mut idle = Session::new(config());
    assert!(sends(&idle.handle(t, Event::Stop(Notification::cease(2)))).is_empty());
}

#[test]
fn connection_lost_in_each_connected_state() {
    for steps in 1..=3 {
        let t = Instant::now();
        let mut s = Session::new(config());
        s.handle(t, Event::Start);
        s.handle(t, Event::TcpConnected);
        if steps >= 2 {
            s.handle(t, Event::Message(peer_open(90)));
        }
        if steps >= 3 {
            s.handle(t, Event::Message(Message::Keepalive));
        }
        let a = s.handle(t, Event::TcpFailed("reset".into()));
        assert_eq!(a.first(), Some(&Action::Disconnect));
        assert_eq!(
            a.iter().any(|a| matches!(a, Action::Down { .. })),
            steps == 3
        );
        assert_eq!(s.state(), State::Active);
    }
}

#[test]
fn replaced_connection_restarts_the_open_exchange() {
    let t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    s.handle(t, Event::TcpConnected);
    s.handle(t, Event::Message(peer_open(90)));
    assert_eq!(s.state(), State::OpenConfirm);
    let a = s.handle(t, Event::TcpConnected);
    assert!(matches!(sends(&a)[..], [Message::Open(_)]));
    assert_eq!(s.state(), State::OpenSent);
    assert!(s.negotiated().is_none());
}

#[test]
fn collision_rule() {
    let low: Ipv4Addr = "10.0.0.1".parse().unwrap();
    let high: Ipv4Addr = "10.0.0.2".parse().unwrap();
    // We have the higher id: our outbound connection survives, the peer's inbound does not.
    assert!(collision_keeps_existing(high, low, true));
    assert!(!collision_keeps_existing(high, low, false));
    assert!(!collision_keeps_existing(low, high, true));
    assert!(collision_keeps_existing(low, high, false));
    assert_eq!(
        collision_notification().describe(),
        "Cease/Connection Collision Resolution"
    );
}

#[test]
fn local_reset_sends_its_notification() {
    let (mut s, t) = established();
    let n = Notification::cease(cease_sub::MAX_PREFIXES);
    let a = s.handle(t, Event::Reset(n, "too many prefixes".into()));
    assert_eq!(notification(&a), Some((6, 1)));
    assert!(matches!(a.last(), Some(Action::Down { reason: r, .. }) if r == "too many prefixes"));
    assert_eq!(s.state(), State::Active);
    let mut idle = Session::new(config());
    assert!(
        idle.handle(t, Event::Reset(Notification::cease(1), "x".into()))
            .is_empty()
    );
}

/// A peer OPEN with graceful restart: `restarting`, and these families preserved
/// (Forwarding State set) or merely listed.
fn gr_open(restarting: bool, families: &[(Family, u8)]) -> Message {
    Message::Open(Open {
        asn: 65000,
        hold_time: 90,
        bgp_id: "127.0.0.2".parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::FourOctetAs(65000),
            Capability::GracefulRestart(GracefulRestart {
                restarting,
                restart_time: 30,
                families: families.to_vec(),
            }),
        ],
    })
}

const BOTH: [(Family, u8); 2] = [
    (Family::IPV4_UNICAST, GR_FORWARDING),
    (Family::IPV6_UNICAST, GR_FORWARDING),
];

/// Brings `s` (started) to Established with `open`.
fn establish(s: &mut Session, t: Instant, open: Message) -> Vec<Action> {
    s.handle(t, Event::TcpConnected);
    s.handle(t, Event::Message(open));
    let a = s.handle(t, Event::Message(Message::Keepalive));
    assert_eq!(s.state(), State::Established, "{a:?}");
    a
}

fn gr_established(families: &[(Family, u8)]) -> (Session, Instant) {
    let t = Instant::now();
    let mut s = Session::new(config());
    s.handle(t, Event::Start);
    establish(&mut s, t, gr_open(false, families));
    (s, t)
}

fn down_stale(a: &[Action]) -> Option<&Vec<Family>> {
    a.iter().find_map(|a| match a {
        Action::Down { stale, .. } => Some(stale),
        _ => None,
    })
}

fn stale_ends(a: &[Action]) -> Vec<Vec<Family>> {
    a.iter()
        .filter_map(|a| match a {
            Action::StaleEnd(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn restart_state_bit_until_the_first_session() {
    let t = Instant::now();
    let mut s = Session::new(SessionConfig {
        restarted: true,
        ..config()
    });
    let gr = |s: &Session| s.open_message().graceful_restart().cloned().unwrap();
    assert!(gr(&s).restarting);
    assert_eq!(
        gr(&s).families,
        vec![
            (Family::IPV4_UNICAST, GR_FORWARDING),
            (Family::IPV6_UNICAST, GR_FORWARDING)
        ],
        "forwarding state preserved for every family"
    );
    s.handle(t, Event::Start);
    // A first attempt that fails keeps the bit.
    s.handle(t, Event::TcpConnected);
    s.handle(t, Event::TcpFailed("reset".into()));
    assert!(gr(&s).restarting);
    s.handle(t + Duration::from_secs(9), Event::TcpConnected);
    s.handle(t, Event::Message(gr_open(false, &BOTH)));
    s.handle(t, Event::Message(Message::Keepalive));
    assert!(!gr(&s).restarting, "cleared once established");
    assert!(
        !Session::new(config())
            .open_message()
            .graceful_restart()
            .unwrap()
            .restarting
    );
}

#[test]
fn silent_end_keeps_routes_stale_until_end_of_rib() {
    let (mut s, t) = gr_established(&BOTH);
    assert!(s.graceful_restart_negotiated());
    let a = s.handle(t, Event::TcpFailed("reset".into()));
    assert_eq!(
        down_stale(&a),
        Some(&vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST])
    );
    assert_eq!(s.stale_families().len(), 2);
    // The peer's restart time (30 s) bounds the wait for its return.
    assert!(s.next_deadline().unwrap() <= t + Duration::from_secs(30));
    // Back, preserving both: nothing ends yet.
    let t1 = t + Duration::from_secs(5);
    let a = establish(&mut s, t1, gr_open(true, &BOTH));
    assert!(stale_ends(&a).is_empty(), "{a:?}");
    // IPv6's End-of-RIB ends IPv6's stale routes only, after the UPDATE itself.
    let eor6 = Update::end_of_rib(Family::IPV6_UNICAST);
    let a = s.handle(t1, Event::Message(Message::Update(eor6.clone())));
    assert_eq!(
        a,
        vec![
            Action::Update(eor6),
            Action::StaleEnd(vec![Family::IPV6_UNICAST])
        ]
    );
    let a = s.handle(
        t1,
        Event::Message(Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))),
    );
    assert_eq!(stale_ends(&a), vec![vec![Family::IPV4_UNICAST]]);
    assert!(s.stale_families().is_empty());
    // A second End-of-RIB ends nothing.
    let a = s.handle(
        t1,
        Event::Message(Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))),
    );
    assert!(stale_ends(&a).is_empty());
}

#[test]
fn stale_routes_end_when_the_peer_does_not_come_back() {
    let (mut s, t) = gr_established(&BOTH);
    s.handle(t, Event::TcpFailed("reset".into()));
    // Reconnect attempts fail; the restart time runs out.
    let due = t + Duration::from_secs(30);
    let a = s.poll(due);
    assert_eq!(
        stale_ends(&a),
        vec![vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]]
    );
    assert!(s.stale_families().is_empty());
}

#[test]
fn stale_routes_wait_for_end_of_rib_a_bounded_time() {
    let (mut s, t) = gr_established(&BOTH);
    s.handle(t, Event::TcpFailed("reset".into()));
    let t1 = t + Duration::from_secs(2);
    establish(&mut s, t1, gr_open(true, &BOTH));
    assert!(
        stale_ends(&s.poll(t1 + Duration::from_secs(60))).is_empty(),
        "the restart time no longer applies"
    );
    // Keepalives hold the session up meanwhile.
    for k in 1..=4 {
        s.handle(
            t1 + Duration::from_secs(80 * k),
            Event::Message(Message::Keepalive),
        );
    }
    let a = s.poll(t1 + STALE_ROUTES_TIME);
    assert_eq!(s.state(), State::Established);
    assert_eq!(stale_ends(&a).concat().len(), 2);
}

#[test]
fn families_not_preserved_on_return_end_at_once() {
    let (mut s, t) = gr_established(&BOTH);
    s.handle(t, Event::TcpFailed("reset".into()));
    // Back with IPv4 preserved, IPv6 listed without Forwarding State.
    let a = establish(
        &mut s,
        t,
        gr_open(
            true,
            &[
                (Family::IPV4_UNICAST, GR_FORWARDING),
                (Family::IPV6_UNICAST, 0),
            ],
        ),
    );
    assert_eq!(stale_ends(&a), vec![vec![Family::IPV6_UNICAST]]);
    assert_eq!(s.stale_families(), &[Family::IPV4_UNICAST]);
    // Back without the capability at all: everything ends.
    let (mut s, t) = gr_established(&BOTH);
    s.handle(t, Event::TcpFailed("reset".into()));
    let a = establish(&mut s, t, peer_open(90));
    assert_eq!(stale_ends(&a).concat().len(), 2);
}

#[test]
fn no_stale_routes_after_a_notification_or_without_the_capability() {
    // A NOTIFICATION either way ends everything at once.
    let (mut s, t) = gr_established(&BOTH);
    let n = Notification::cease(cease_sub::ADMINISTRATIVE_SHUTDOWN);
    let a = s.handle(t, Event::Message(Message::Notification(n)));
    assert_eq!(down_stale(&a), Some(&vec![]));
    let (mut s, t) = gr_established(&BOTH);
    let a = s.poll(t + Duration::from_secs(90));
    assert_eq!(notification(&a), Some((4, 0)), "hold timer");
    assert_eq!(down_stale(&a), Some(&vec![]));
    // Only the families the peer lists stay.
    let (mut s, t) = gr_established(&[(Family::IPV6_UNICAST, GR_FORWARDING)]);
    let a = s.handle(t, Event::TcpFailed("reset".into()));
    assert_eq!(down_stale(&a), Some(&vec![Family::IPV6_UNICAST]));
    // Peer without the capability, or we without it.
    let (mut s, t) = established();
    assert!(!s.graceful_restart_negotiated());
    assert_eq!(
        down_stale(&s.handle(t, Event::TcpFailed("reset".into()))),
        Some(&vec![])
    );
    let t = Instant::now();
    let mut s = Session::new(SessionConfig {
        graceful_restart: None,
        ..config()
    });
    s.handle(t, Event::Start);
    establish(&mut s, t, gr_open(false, &BOTH));
    assert_eq!(
        down_stale(&s.handle(t, Event::TcpFailed("reset".into()))),
        Some(&vec![])
    );
}

#[test]
fn stopping_ends_stale_routes() {
    let (mut s, t) = gr_established(&BOTH);
    s.handle(t, Event::TcpFailed("reset".into()));
    let a = s.handle(
        t,
        Event::Stop(Notification::cease(cease_sub::ADMINISTRATIVE_SHUTDOWN)),
    );
    assert_eq!(stale_ends(&a).concat().len(), 2);
    assert_eq!(s.next_deadline(), None);
    // Down again before the End-of-RIB: still stale, the timer starts over.
    let (mut s, t) = gr_established(&BOTH);
    s.handle(t, Event::TcpFailed("reset".into()));
    let t1 = t + Duration::from_secs(3);
    establish(&mut s, t1, gr_open(true, &BOTH));
    let a = s.handle(t1, Event::TcpFailed("reset again".into()));
    assert_eq!(down_stale(&a).map(Vec::len), Some(2));
    assert!(stale_ends(&s.poll(t + Duration::from_secs(31))).is_empty());
    assert_eq!(
        stale_ends(&s.poll(t1 + Duration::from_secs(30)))
            .concat()
            .len(),
        2
    );
}

#[test]
fn a_second_open_while_established_is_a_restart_only_when_the_peer_says_so_or_went_silent() {
    let open = |restarting| match gr_open(restarting, &BOTH) {
        Message::Open(o) => o,
        _ => unreachable!(),
    };
    // Hold time 90 (the peer's) against our config: the keepalive interval is a third.
    let (mut s, t) = gr_established(&BOTH);
    let keepalive = Duration::from_secs(s.negotiated().unwrap().hold_time as u64) / 3;
    // Both sides reconnected at once after a reset: the session is alive, the new OPEN
    // has no Restart State bit: a collision.
    assert!(!s.peer_restarted(t, &open(false)));
    // The peer says it restarted.
    assert!(s.peer_restarted(t, &open(true)));
    // Silent for a keepalive interval: it restarted without saying so.
    assert!(!s.peer_restarted(t + keepalive - Duration::from_millis(1), &open(false)));
    assert!(s.peer_restarted(t + keepalive, &open(false)));
    // A message from the peer on the established connection: alive again.
    s.handle(t + keepalive, Event::Message(Message::Keepalive));
    assert!(!s.peer_restarted(t + keepalive, &open(false)));
    // Without graceful restart a second connection is always a collision.
    let (s, t) = established();
    assert!(!s.peer_restarted(t + Duration::from_secs(60), &open(true)));
}
