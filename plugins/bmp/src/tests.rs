//! Byte-for-byte tests of the encoders against the RFC 7854 and RFC 4271
//! layouts, and of the feed's state machine.

use wasmbgp_sdk::types::{
    Aggregator, AsSegment, Attributes, IpAddress, Origin, SegmentKind, UnknownAttribute,
};

use crate::bgp;
use crate::feed::{Direction, Event, Feed, Options, Routes, Session, State};
use crate::msg::{self, DownReason, Peer, Timestamp};

const T: Timestamp = Timestamp {
    seconds: 0x01020304,
    micros: 0x0a0b0c,
};

fn marker() -> Vec<u8> {
    vec![0xff; 16]
}

fn attrs() -> Attributes {
    Attributes {
        origin: Origin::Igp,
        as_path: vec![AsSegment {
            kind: SegmentKind::Sequence,
            asns: vec![65001, 4200000000],
        }],
        next_hop: Some(IpAddress::V4(0xc0000201)),
        med: None,
        local_pref: None,
        atomic_aggregate: false,
        aggregator: None,
        communities: vec![],
        large_communities: vec![],
        extended_communities: vec![],
        unknown: vec![],
    }
}

fn peer_header(flags: u8) -> Vec<u8> {
    let mut h = vec![0, flags];
    h.extend([0; 8]);
    h.extend([0; 12]);
    h.extend([192, 0, 2, 1]);
    h.extend(65001u32.to_be_bytes());
    h.extend([192, 0, 2, 1]);
    h.extend([1, 2, 3, 4]);
    h.extend([0, 0x0a, 0x0b, 0x0c]);
    h
}

#[test]
fn open_with_a_two_octet_as() {
    let mut out = Vec::new();
    bgp::open(&mut out, 65001, 0xc0000201);
    let mut want = marker();
    want.extend([0, 49, 1, 4]);
    want.extend(65001u16.to_be_bytes());
    want.extend([0, 90, 192, 0, 2, 1, 20, 2, 18]);
    want.extend([1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1, 65, 4]);
    want.extend(65001u32.to_be_bytes());
    assert_eq!(out, want);
    assert_eq!(out.len(), 49);
}

#[test]
fn open_with_a_four_octet_as_sends_as_trans() {
    let mut out = Vec::new();
    bgp::open(&mut out, 4200000000, 0);
    assert_eq!(&out[20..22], &23456u16.to_be_bytes());
    assert_eq!(&out[45..49], &4200000000u32.to_be_bytes());
}

#[test]
fn common_and_per_peer_headers() {
    let peer = Peer::v4(0xc0000201, 65001);
    let mut out = Vec::new();
    msg::route_monitoring(&mut out, &peer, msg::FLAG_L, T, &[0xaa, 0xbb]);
    let mut want = vec![3, 0, 0, 0, 6 + 42 + 2, 0];
    want.extend(peer_header(0x40));
    want.extend([0xaa, 0xbb]);
    assert_eq!(out, want);

    let v6 = Peer::v6(0x2001_0db8_0000_0000_0000_0000_0000_0001, 65002);
    let mut out = Vec::new();
    msg::route_monitoring(&mut out, &v6, 0, T, &[]);
    assert_eq!(out.len(), 48);
    assert_eq!(out[7], 0x80, "V flag");
    assert_eq!(
        &out[16..32],
        &0x2001_0db8_0000_0000_0000_0000_0000_0001u128.to_be_bytes()
    );
    assert_eq!(&out[32..36], &65002u32.to_be_bytes());
    assert_eq!(&out[36..40], &1u32.to_be_bytes(), "BGP ID from the address");
}

#[test]
fn initiation_and_termination() {
    let mut out = Vec::new();
    msg::initiation(&mut out, "r1", "wasmbgp");
    let mut want = vec![3, 0, 0, 0, 6 + 4 + 7 + 4 + 2, 4];
    want.extend([0, 1, 0, 7]);
    want.extend(b"wasmbgp");
    want.extend([0, 2, 0, 2]);
    want.extend(b"r1");
    assert_eq!(out, want);

    let mut out = Vec::new();
    msg::termination(&mut out, 1, "x");
    assert_eq!(
        out,
        vec![3, 0, 0, 0, 6 + 5 + 6, 5, 0, 0, 0, 1, b'x', 0, 1, 0, 2, 0, 1]
    );
}

#[test]
fn peer_up_carries_both_opens() {
    let peer = Peer::v4(0xc0000201, 65001);
    let mut out = Vec::new();
    msg::peer_up(&mut out, &peer, 65000, 0, T);
    let mut want = vec![3, 0, 0, 0, 0, 3];
    want.extend(peer_header(0));
    want.extend([0; 20]); // local address and ports
    bgp::open(&mut want, 65000, 0);
    bgp::open(&mut want, 65001, 0xc0000201);
    let len = want.len() as u32;
    want[1..5].copy_from_slice(&len.to_be_bytes());
    assert_eq!(out, want);
    assert_eq!(len, 6 + 42 + 20 + 49 + 49);
}

#[test]
fn peer_down_reasons() {
    let peer = Peer::v4(0xc0000201, 65001);
    let mut out = Vec::new();
    msg::peer_down(&mut out, &peer, &DownReason::RemoteClosed, T);
    let mut want = vec![3, 0, 0, 0, 49, 2];
    want.extend(peer_header(0));
    want.push(4);
    assert_eq!(out, want);

    let mut out = Vec::new();
    msg::peer_down(
        &mut out,
        &peer,
        &DownReason::RemoteNotification(6, 2, vec![0x01]),
        T,
    );
    let mut want = vec![3, 0, 0, 0, 49 + 22, 2];
    want.extend(peer_header(0));
    want.push(3);
    want.extend(marker());
    want.extend([0, 22, 3, 6, 2, 1]);
    assert_eq!(out, want);

    let mut out = Vec::new();
    msg::peer_down(
        &mut out,
        &peer,
        &DownReason::LocalNotification(6, 4, vec![]),
        T,
    );
    assert_eq!(out[48], 1);
    assert_eq!(&out[49 + 18..], &[3, 6, 4]);
}

#[test]
fn statistics_report() {
    let peer = Peer::v4(0xc0000201, 65001);
    let mut out = Vec::new();
    msg::statistics(&mut out, &peer, msg::FLAG_L, T, 3, &[(1, 1, 2), (2, 1, 1)]);
    let mut want = vec![3, 0, 0, 0, 0, 1];
    want.extend(peer_header(0x40));
    want.extend([0, 0, 0, 3]);
    want.extend([0, 7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3]);
    want.extend([0, 8, 0, 11, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
    want.extend([0, 8, 0, 11, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    let len = want.len() as u32;
    want[1..5].copy_from_slice(&len.to_be_bytes());
    assert_eq!(out, want);
}

fn collect(f: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    f(&mut |m: &[u8]| messages.push(m.to_vec()));
    messages
}

#[test]
fn update_with_every_attribute() {
    let mut a = attrs();
    a.origin = Origin::Incomplete;
    a.med = Some(5);
    a.local_pref = Some(200);
    a.atomic_aggregate = true;
    a.aggregator = Some(Aggregator {
        asn: 65001,
        address: 0x0a000001,
    });
    a.communities = vec![(65001 << 16) | 100];
    a.large_communities = vec![(65001, 1, 2)];
    a.extended_communities = vec![0x0002_fde9_0000_0007];
    a.unknown = vec![UnknownAttribute {
        flags: 0xc0,
        code: 99,
        value: vec![1, 2],
    }];
    let messages = collect(|emit| bgp::announce_v4(&a, &[(0x0a000000, 8), (0xc0000200, 24)], emit));
    assert_eq!(messages.len(), 1);
    let mut attrs = vec![0x40, 1, 1, 2];
    attrs.extend([0x40, 2, 10, 2, 2]);
    attrs.extend(65001u32.to_be_bytes());
    attrs.extend(4200000000u32.to_be_bytes());
    attrs.extend([0x40, 3, 4, 192, 0, 2, 1]);
    attrs.extend([0x80, 4, 4, 0, 0, 0, 5]);
    attrs.extend([0x40, 5, 4, 0, 0, 0, 200]);
    attrs.extend([0x40, 6, 0]);
    attrs.extend([0xc0, 7, 8, 0, 0, 0xfd, 0xe9, 10, 0, 0, 1]);
    attrs.extend([0xc0, 8, 4, 0xfd, 0xe9, 0, 100]);
    attrs.extend([0xc0, 16, 8, 0, 2, 0xfd, 0xe9, 0, 0, 0, 7]);
    attrs.extend([0xc0, 32, 12, 0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2]);
    attrs.extend([0xc0, 99, 2, 1, 2]);
    let mut want = marker();
    want.extend([0, 0, 2, 0, 0]);
    want.extend((attrs.len() as u16).to_be_bytes());
    want.extend(&attrs);
    want.extend([8, 10, 24, 192, 0, 2]);
    let len = want.len() as u16;
    want[16..18].copy_from_slice(&len.to_be_bytes());
    assert_eq!(messages[0], want);
}

#[test]
fn ipv6_announce_and_withdraw_use_mp_attributes() {
    let mut a = attrs();
    a.as_path = vec![];
    a.next_hop = Some(IpAddress::V6((0x2001_0db8_0000_0000, 1)));
    let prefix = 0x2001_0db8_0001_0000_0000_0000_0000_0000u128;
    let messages = collect(|emit| bgp::announce_v6(&a, &[(prefix, 48)], emit));
    let mut want = marker();
    want.extend([0, 0, 2, 0, 0]);
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0];
    attrs.extend([0x90, 14, 0, 28, 0, 2, 1, 16]);
    attrs.extend(0x2001_0db8_0000_0000_0000_0000_0000_0001u128.to_be_bytes());
    attrs.extend([0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    want.extend((attrs.len() as u16).to_be_bytes());
    want.extend(&attrs);
    let len = want.len() as u16;
    want[16..18].copy_from_slice(&len.to_be_bytes());
    assert_eq!(messages, vec![want]);

    let messages = collect(|emit| bgp::withdraw_v6(&[(prefix, 48)], emit));
    let mut want = marker();
    want.extend([
        0, 37, 2, 0, 0, 0, 14, 0x90, 15, 0, 10, 0, 2, 1, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1,
    ]);
    assert_eq!(messages, vec![want]);
}

#[test]
fn ipv4_withdraw_and_end_of_rib() {
    let messages = collect(|emit| bgp::withdraw_v4(&[(0x0a000000, 8), (0, 0)], emit));
    let mut want = marker();
    want.extend([0, 26, 2, 0, 3, 8, 10, 0, 0, 0]);
    assert_eq!(messages, vec![want]);

    let mut out = Vec::new();
    bgp::end_of_rib(&mut out, 1, 1);
    let mut want = marker();
    want.extend([0, 23, 2, 0, 0, 0, 0]);
    assert_eq!(out, want);

    let mut out = Vec::new();
    bgp::end_of_rib(&mut out, 2, 1);
    let mut want = marker();
    want.extend([0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
    assert_eq!(out, want);
}

/// Parses the UPDATEs back far enough to count their NLRI and check sizes.
fn nlri_count(update: &[u8]) -> usize {
    assert!(update.len() <= bgp::MAX_MESSAGE);
    assert_eq!(
        u16::from_be_bytes([update[16], update[17]]) as usize,
        update.len()
    );
    let withdrawn = u16::from_be_bytes([update[19], update[20]]) as usize;
    let attrs_at = 21 + withdrawn;
    let attrs_len = u16::from_be_bytes([update[attrs_at], update[attrs_at + 1]]) as usize;
    let mut at = attrs_at + 2 + attrs_len;
    let mut n = 0;
    while at < update.len() {
        at += 1 + (update[at] as usize).div_ceil(8);
        n += 1;
    }
    assert_eq!(at, update.len());
    n
}

#[test]
fn many_prefixes_are_packed_into_full_updates() {
    let prefixes: Vec<(u32, u8)> = (0..2000u32).map(|i| ((10 << 24) | (i << 8), 24)).collect();
    let messages = collect(|emit| bgp::announce_v4(&attrs(), &prefixes, emit));
    assert!(messages.len() >= 2);
    assert_eq!(messages.iter().map(|m| nlri_count(m)).sum::<usize>(), 2000);
    assert!(messages[0].len() > bgp::MAX_MESSAGE - 4);

    let messages = collect(|emit| bgp::withdraw_v4(&prefixes, emit));
    let total: usize = messages
        .iter()
        .map(|m| {
            assert!(m.len() <= bgp::MAX_MESSAGE);
            (u16::from_be_bytes([m[19], m[20]]) as usize) / 4
        })
        .sum();
    assert_eq!(total, 2000);

    let v6: Vec<(u128, u8)> = (0..2000u128)
        .map(|i| ((0x2001_0db8u128 << 96) | (i << 64), 64))
        .collect();
    let messages = collect(|emit| bgp::announce_v6(&attrs(), &v6, emit));
    for m in &messages {
        assert!(m.len() <= bgp::MAX_MESSAGE);
        assert_eq!(u16::from_be_bytes([m[16], m[17]]) as usize, m.len());
    }
    // 9 octets per /64: about 450 per message.
    assert_eq!(
        messages.len(),
        2000usize.div_ceil((4096 - 19 - 4 - 11 - 24) / 9)
    );
}

fn session() -> Session {
    Session {
        neighbor: IpAddress::V4(0xc0000201),
        peer_as: 65001,
        local_as: 65000,
    }
}

fn types(out: &[u8]) -> Vec<u8> {
    let mut kinds = Vec::new();
    let mut at = 0;
    while at < out.len() {
        assert_eq!(out[at], 3);
        let len = u32::from_be_bytes(out[at + 1..at + 5].try_into().unwrap()) as usize;
        kinds.push(out[at + 5]);
        at += len;
    }
    assert_eq!(at, out.len());
    kinds
}

#[test]
fn feed_session_lifecycle() {
    let mut feed = Feed::new(Options {
        sys_name: "r".into(),
        sys_descr: "d".into(),
        monitoring: Direction::PostPolicy,
        stats_interval_ms: 1000,
    });
    let s = session();
    let a = [attrs()];
    let mut out = Vec::new();
    feed.handle(
        &Event::State {
            session: s,
            new: State::Established,
        },
        T,
        &mut out,
    );
    let routes = Routes {
        session: s,
        direction: Direction::PostPolicy,
        attributes: &a,
        v4_addresses: &[0x0a000000, 0x0b000000],
        v4_lengths: &[8, 8],
        v4_attributes: &[0, 0],
        v6_addresses: &[],
        v6_lengths: &[],
        v6_attributes: &[],
        withdrawn_v4_addresses: &[0x0c000000],
        withdrawn_v4_lengths: &[8],
        withdrawn_v6_addresses: &[],
        withdrawn_v6_lengths: &[],
    };
    feed.handle(&Event::Routes(routes), T, &mut out);
    feed.handle(
        &Event::EndOfRib {
            session: s,
            afi: 1,
            safi: 1,
        },
        T,
        &mut out,
    );
    feed.handle(&Event::EndOfSnapshot, T, &mut out);
    assert_eq!(
        types(&out),
        vec![
            msg::PEER_UP,
            msg::ROUTE_MONITORING,
            msg::ROUTE_MONITORING,
            msg::ROUTE_MONITORING
        ]
    );
    // The route monitoring messages carry the L flag.
    assert_eq!(out[6 + 42 + 20 + 49 + 49 + 7], msg::FLAG_L);
    assert_eq!(feed.peers_up(), 1);

    // Statistics: the first call starts the interval, the next one reports.
    out.clear();
    feed.statistics(0, T, &mut out);
    assert!(out.is_empty());
    feed.statistics(1000, T, &mut out);
    assert_eq!(types(&out), vec![msg::STATISTICS_REPORT]);
    assert_eq!(&out[6 + 42 + 4 + 4..6 + 42 + 4 + 12], &2u64.to_be_bytes());

    // A received NOTIFICATION, then the session goes down: reason 3.
    out.clear();
    feed.handle(
        &Event::Notification {
            session: s,
            sent: false,
            code: 6,
            subcode: 2,
            data: &[],
        },
        T,
        &mut out,
    );
    feed.handle(
        &Event::State {
            session: s,
            new: State::Other,
        },
        T,
        &mut out,
    );
    assert_eq!(types(&out), vec![msg::PEER_DOWN]);
    assert_eq!(out[48], msg::DOWN_REMOTE_NOTIFICATION);
    assert_eq!(&out[49 + 19..], &[6, 2]);
    assert_eq!(feed.peers_up(), 0);

    // Up again, then down without a NOTIFICATION: reason 4.
    out.clear();
    feed.handle(
        &Event::State {
            session: s,
            new: State::Established,
        },
        T,
        &mut out,
    );
    feed.handle(
        &Event::State {
            session: s,
            new: State::Other,
        },
        T,
        &mut out,
    );
    assert_eq!(types(&out), vec![msg::PEER_UP, msg::PEER_DOWN]);
    assert_eq!(*out.last().unwrap(), msg::DOWN_REMOTE_NO_NOTIFICATION);

    // A session that was never up going down says nothing.
    out.clear();
    feed.handle(
        &Event::State {
            session: s,
            new: State::Other,
        },
        T,
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(
        feed.handle(&Event::Lagged(3), T, &mut out),
        crate::feed::Next::Resync
    );
}

/// Writes a BMP session (Initiation, Peer Up, Route Monitoring for IPv4 and
/// IPv6, End-of-RIB, Statistics, Peer Down, Termination) to the collector at
/// `$BMP_COLLECTOR` ("IP:PORT"), to check by hand that a real collector
/// decodes it: `BMP_COLLECTOR=127.0.0.1:11019 cargo test ... -- --ignored
/// to_a_collector`.
#[test]
#[ignore]
fn to_a_collector() {
    use std::io::Write;
    let target = std::env::var("BMP_COLLECTOR").expect("set BMP_COLLECTOR=IP:PORT");
    let mut feed = Feed::new(Options {
        sys_name: "wasmbgp-test".into(),
        sys_descr: "wasmbgp BMP exporter test".into(),
        monitoring: Direction::PostPolicy,
        stats_interval_ms: 1,
    });
    let now = Timestamp::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    let s = session();
    let s6 = Session {
        neighbor: IpAddress::V6((0x2001_0db8_0000_0000, 2)),
        peer_as: 4200000001,
        local_as: 65000,
    };
    let mut a = attrs();
    a.med = Some(10);
    a.communities = vec![(65001 << 16) | 100];
    a.large_communities = vec![(65001, 1, 2)];
    let mut a6 = attrs();
    a6.next_hop = Some(IpAddress::V6((0x2001_0db8_0000_0000, 2)));
    let sets = [a, a6];
    let mut out = Vec::new();
    feed.initiation(&mut out);
    for session in [s, s6] {
        feed.handle(
            &Event::State {
                session,
                new: State::Established,
            },
            now,
            &mut out,
        );
    }
    let routes = Routes {
        session: s,
        direction: Direction::PostPolicy,
        attributes: &sets,
        v4_addresses: &[0x0a000000, 0xc6336400],
        v4_lengths: &[8, 24],
        v4_attributes: &[0, 0],
        v6_addresses: &[0x2001_0db8_0001_0000, 0],
        v6_lengths: &[48],
        v6_attributes: &[1],
        withdrawn_v4_addresses: &[],
        withdrawn_v4_lengths: &[],
        withdrawn_v6_addresses: &[],
        withdrawn_v6_lengths: &[],
    };
    feed.handle(&Event::Routes(routes), now, &mut out);
    feed.handle(
        &Event::Routes(Routes {
            session: s6,
            ..routes
        }),
        now,
        &mut out,
    );
    feed.handle(
        &Event::EndOfRib {
            session: s,
            afi: 1,
            safi: 1,
        },
        now,
        &mut out,
    );
    feed.handle(
        &Event::EndOfRib {
            session: s,
            afi: 2,
            safi: 1,
        },
        now,
        &mut out,
    );
    let withdraw = Routes {
        v4_addresses: &[],
        v4_lengths: &[],
        v4_attributes: &[],
        v6_addresses: &[],
        v6_lengths: &[],
        v6_attributes: &[],
        withdrawn_v4_addresses: &[0xc6336400],
        withdrawn_v4_lengths: &[24],
        withdrawn_v6_addresses: &[0x2001_0db8_0001_0000, 0],
        withdrawn_v6_lengths: &[48],
        ..routes
    };
    feed.handle(&Event::Routes(withdraw), now, &mut out);
    feed.statistics(0, now, &mut out);
    feed.statistics(10, now, &mut out);
    feed.handle(
        &Event::Notification {
            session: s,
            sent: false,
            code: 6,
            subcode: 2,
            data: &[],
        },
        now,
        &mut out,
    );
    feed.handle(
        &Event::State {
            session: s,
            new: State::Other,
        },
        now,
        &mut out,
    );
    feed.handle(
        &Event::State {
            session: s6,
            new: State::Other,
        },
        now,
        &mut out,
    );
    msg::termination(&mut out, 0, "done");
    let mut stream = std::net::TcpStream::connect(target).unwrap();
    stream.write_all(&out).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
}
