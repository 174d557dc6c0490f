//! The seeds of the binary targets, written by the codec's own encoder (and the session
//! machine's own OPEN): `tests/seeds.rs` writes them into `seeds/message/` and
//! `seeds/session/` (`cargo test -p wasmbgp-fuzz --test seeds -- --ignored`), together
//! with the captured peer messages of `host/bgp/tests/vectors/` when that folder exists.

use std::net::Ipv4Addr;

use wasmbgp_bgp::packet::attributes::{
    Aggregator, AsPath, AsSegment, ExtendedCommunity, LargeCommunity, NextHop, Origin,
    PathAttributes, RawAttribute, SegmentKind,
};
use wasmbgp_bgp::packet::{
    Context, Message, MpNlri, MpReach, MpUnreach, Notification, RouteRefresh, Update, msg_type,
};
use wasmbgp_bgp::session::Session;
use wasmbgp_bgp::{Family, words};

use crate::session::{config, op, peer_open, peer_update};

/// A named seed.
pub type Seed = (String, Vec<u8>);

const TWO: Context = Context {
    four_octet_as: false,
};
const FOUR: Context = Context {
    four_octet_as: true,
};

/// The FlowSpec routes of the `words` seeds, as ExaBGP words.
const FLOW_ROUTES: &[&str] = &[
    "match { source 10.0.0.0/24; destination-port =80; protocol tcp; } then { redirect 65001:999; }",
    "match { destination 192.0.2.0/24; protocol udp; source-port =53; } then { rate-limit 9600; }",
    "destination 198.51.100.0/24 source 203.0.113.0/25 protocol [ =6 =17 ] port >=1024&<=2048 icmp-type echo-request icmp-code 0 tcp-flags =syn+ack&!rst packet-length >=64&<=1500 dscp 46 fragment [ is-fragment first-fragment ] discard action sample-terminal mark 10 redirect 192.0.2.1:7",
    "destination 0:db8:1::/64/16 next-header udp flow-label [ =12345 >=1000&<=2000 ] redirect-to-nexthop copy next-hop 2001:db8::1 redirect 4200000000:7 rate-limit-packets 100",
];

/// UPDATEs covering every attribute the codec knows, and each kind of NLRI.
fn updates() -> Vec<(&'static str, Update)> {
    let full = PathAttributes {
        origin: Origin::Egp,
        as_path: AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::ConfedSequence,
                    asns: vec![64512],
                },
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![65002, 4_200_000_002, 65010],
                },
                AsSegment {
                    kind: SegmentKind::Set,
                    asns: vec![65020, 4_200_000_020],
                },
            ],
        },
        next_hop: Some(NextHop::Addr("198.51.100.1".parse().unwrap())),
        med: Some(50),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 4_200_000_002,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![(65002 << 16) | 7, 0xFFFF_FF01],
        large_communities: vec![LargeCommunity([4_200_000_002, 1, 2])],
        extended_communities: vec![ExtendedCommunity([0, 2, 0xfd, 0xea, 0, 0, 0, 9])],
        unknown: vec![RawAttribute {
            flags: 0xc0,
            code: 99,
            value: vec![1, 2, 3],
        }],
    };
    let mut out = vec![
        (
            "all-attributes",
            Update {
                withdrawn: vec!["10.9.0.0/16".parse().unwrap()],
                attributes: full.clone(),
                nlri: vec![
                    "203.0.113.0/24".parse().unwrap(),
                    "0.0.0.0/0".parse().unwrap(),
                ],
                ..Update::default()
            },
        ),
        (
            "ipv6-two-next-hops",
            Update {
                attributes: PathAttributes {
                    next_hop: None,
                    ..full.clone()
                },
                mp_reach: Some(MpReach {
                    family: Family::IPV6_UNICAST,
                    next_hop: vec!["2001:db8::1".parse().unwrap(), "fe80::1".parse().unwrap()],
                    nlri: MpNlri::Ipv6(vec![
                        "2001:db8:1::/48".parse().unwrap(),
                        "::/0".parse().unwrap(),
                        "2001:db8::1/128".parse().unwrap(),
                    ]),
                }),
                mp_unreach: Some(MpUnreach {
                    family: Family::IPV6_UNICAST,
                    withdrawn: MpNlri::Ipv6(vec!["2001:db8:2::/48".parse().unwrap()]),
                }),
                ..Update::default()
            },
        ),
        (
            "ipv4-in-mp-reach",
            Update {
                attributes: PathAttributes {
                    next_hop: None,
                    ..PathAttributes::default()
                },
                mp_reach: Some(MpReach {
                    family: Family::IPV4_UNICAST,
                    next_hop: vec!["192.0.2.7".parse().unwrap()],
                    nlri: MpNlri::Ipv4(vec!["100.64.0.0/10".parse().unwrap()]),
                }),
                ..Update::default()
            },
        ),
        (
            "other-family-raw",
            Update {
                mp_reach: Some(MpReach {
                    family: Family { afi: 25, safi: 65 },
                    next_hop: vec!["192.0.2.7".parse().unwrap()],
                    nlri: MpNlri::Other(vec![0, 8, 1, 2, 3, 4]),
                }),
                ..Update::default()
            },
        ),
    ];
    for (i, line) in FLOW_ROUTES.iter().enumerate() {
        let tokens = words::tokenize(line);
        let route = words::flow::parse_flow_route(&tokens, &PathAttributes::default())
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let family = route.rule.family();
        let name = [
            "flow-redirect",
            "flow-rate-limit",
            "flow-every-v4",
            "flow-every-v6",
        ][i];
        out.push((
            name,
            Update {
                attributes: PathAttributes {
                    next_hop: None,
                    ..route.attrs
                },
                mp_reach: Some(MpReach {
                    family,
                    next_hop: vec![],
                    nlri: MpNlri::Flow(vec![route.rule.clone()]),
                }),
                ..Update::default()
            },
        ));
        if i == 3 {
            out.push((
                "flow-withdraw",
                Update {
                    mp_unreach: Some(MpUnreach {
                        family,
                        withdrawn: MpNlri::Flow(vec![route.rule]),
                    }),
                    ..Update::default()
                },
            ));
        }
    }
    for f in Family::CARRIED {
        let name = match (f.afi, f.safi) {
            (1, 1) => "eor-ipv4",
            (2, 1) => "eor-ipv6",
            (1, _) => "eor-flow4",
            _ => "eor-flow6",
        };
        out.push((name, Update::end_of_rib(f)));
    }
    out.push(("treat-as-withdraw", peer_update(7)));
    out.push(("withdraw-ipv4", peer_update(1)));
    out
}

fn wire(messages: &[Message], ctx: &Context) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        m.encode(ctx, &mut out);
    }
    out
}

/// Seeds of the `message` target (see [`crate::message`] for the first octet).
pub fn message_seeds() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = Vec::new();
    let mut add = |name: String, mode: u8, bytes: &[u8]| {
        seeds.push((name, [&[mode], bytes].concat()));
    };
    let ours = Session::new(config(0x0a)).open_message();
    let opens = [
        ("open-ours", Message::Open(ours)),
        ("open-2-octet", Message::Open(peer_open(&config(0), 0x44))),
        ("open-gr", Message::Open(peer_open(&config(0x40), 0xee))),
    ];
    let others = [
        ("keepalive", Message::Keepalive),
        (
            "notification-shutdown",
            Message::Notification(Notification::administrative_shutdown(
                "maintenance, back at 10:00",
            )),
        ),
        (
            "notification-max-prefixes",
            Message::Notification(Notification::max_prefixes(Family::IPV6_UNICAST, 1000)),
        ),
        (
            "route-refresh",
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV6_UNICAST,
                subtype: 0,
            }),
        ),
    ];
    for (name, m) in opens.iter().chain(&others) {
        add(name.to_string(), 1, &m.to_bytes(&FOUR));
    }
    for (name, u) in updates() {
        let m = Message::Update(u);
        add(format!("update-{name}"), 1, &m.to_bytes(&FOUR));
        let two = m.to_bytes(&TWO);
        add(format!("update-{name}-as2"), 0, &two);
        // Type and body only: the harness writes the header.
        add(
            format!("update-{name}-body"),
            2 | u8::from(name.len() % 2 == 0),
            &[&[msg_type::UPDATE], &two[19..]].concat(),
        );
    }
    let session: Vec<Message> = [opens[0].1.clone(), Message::Keepalive]
        .into_iter()
        .chain(
            updates()
                .into_iter()
                .take(3)
                .map(|(_, u)| Message::Update(u)),
        )
        .chain([others[1].1.clone()])
        .collect();
    add("stream-a-session".into(), 1, &wire(&session, &FOUR));
    let mut bad_marker = Message::Keepalive.to_bytes(&FOUR);
    bad_marker[3] = 0;
    add("bad-marker".into(), 1, &bad_marker);
    add("bad-type".into(), 3, &[9, 1, 2, 3]);
    let mut long = Message::Keepalive.to_bytes(&FOUR);
    long[17] = 20;
    long.push(0);
    add("bad-length".into(), 1, &long);
    seeds
}

/// The steps that establish a session of [`config`] (non-passive) with the peer's OPEN
/// `open` (see [`peer_open`]).
fn establish(open: u8) -> Vec<u8> {
    vec![op::START, op::TCP_CONNECTED, op::OPEN, open, op::KEEPALIVE]
}

/// Seeds of the `session` target (see [`crate::session`]).
pub fn session_seeds() -> Vec<Seed> {
    // The peer's OPEN: 4-octet AS, every family, hold 30 (0x2c); with graceful restart
    // preserving every family (0xec).
    const OPEN: u8 = 0x2c;
    const OPEN_GR: u8 = 0xec;
    let mut seeds: Vec<Seed> = Vec::new();
    let mut add = |name: &str, selector: u8, steps: Vec<u8>| {
        seeds.push((name.to_string(), [vec![selector], steps].concat()));
    };
    let mut routes = establish(OPEN);
    for u in [0, 2, 4, 1, 3, 5, 13, 21, 29, 7] {
        routes.extend([op::UPDATE, u]);
    }
    routes.extend([
        op::ROUTE_REFRESH,
        1,
        op::WAIT,
        10,
        op::WAIT_DEADLINE,
        op::KEEPALIVE,
    ]);
    routes.extend([op::NOTIFICATION, 2, op::WAIT_DEADLINE, op::WAIT_DEADLINE]);
    add("routes", 0x02, routes);

    let mut gr = establish(OPEN_GR);
    gr.extend([
        op::UPDATE,
        0,
        op::TCP_FAILED,
        op::WAIT_DEADLINE,
        op::TCP_CONNECTED,
    ]);
    gr.extend([
        op::OPEN,
        OPEN_GR,
        op::KEEPALIVE,
        op::UPDATE,
        5,
        op::UPDATE,
        13,
    ]);
    gr.extend([op::WAIT, 255, op::WAIT, 255]);
    add("graceful-restart", 0x0a, gr);

    let mut hold = vec![op::START, op::TCP_CONNECTED, op::OPEN, 0x24, op::KEEPALIVE];
    hold.extend([
        op::WAIT,
        9,
        op::WAIT,
        3,
        op::WAIT_DEADLINE,
        op::WAIT_DEADLINE,
    ]);
    add("passive-ibgp-hold-expires", 0x25, hold);

    let mut errors = establish(0x2d); // another AS
    errors.extend([op::WAIT_DEADLINE, op::TCP_CONNECTED, op::OPEN, 0x8c]); // our identifier
    errors.extend([op::START, op::TCP_CONNECTED, op::OPEN, 0x0c]); // 2-octet peer, 4-octet AS
    errors.extend([
        op::TCP_CONNECTED,
        op::KEEPALIVE,
        op::RESET,
        op::STOP,
        op::START,
    ]);
    add("open-errors", 0x40, errors);

    let mut fsm = establish(OPEN);
    fsm.extend([op::TCP_CONNECTED, op::OPEN, OPEN]); // OPEN in Established
    fsm.extend([op::WAIT_DEADLINE, op::TCP_CONNECTED, op::UPDATE, 0]); // UPDATE in OpenSent
    fsm.extend([op::WAIT_DEADLINE, op::TCP_CONNECTED, op::OPEN, 0x2a]); // hold 0
    fsm.extend([op::OPEN, OPEN, op::STOP, op::START, op::WAIT, 6]);
    add("fsm-errors", 0x01, fsm);

    // The peer's messages as raw bytes: OPEN and KEEPALIVE in one read, then an UPDATE
    // cut in two reads (the first half is dropped, as an incomplete message is), then
    // a bad header.
    let config_four = config(0x80);
    let open = Message::Open(peer_open(&config_four, 0x28)).to_bytes(&FOUR);
    let mut raw = vec![op::START, op::TCP_CONNECTED];
    let mut chunk = |bytes: &[u8]| {
        raw.push(op::BYTES);
        raw.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        raw.extend_from_slice(bytes);
    };
    chunk(&[open, Message::Keepalive.to_bytes(&FOUR)].concat());
    let update = Message::Update(peer_update(0)).to_bytes(&FOUR);
    chunk(&update);
    chunk(&update[..30]);
    chunk(&[0xff; 19]);
    add("raw-bytes", 0x80, raw);
    seeds
}

/// Captured messages (`host/bgp/tests/vectors/`) as seeds of the `message` target: a
/// file of raw messages (it starts with the marker), or text holding them in hex
/// (whitespace, `:` and `#` comments ignored), in the context its comments name
/// (`four_octet_as = true` or `false`; both when they name none). Other files are left
/// out.
pub fn vector_seeds(name: &str, content: &[u8]) -> Vec<Seed> {
    let bytes = if content.starts_with(&[0xff; 16]) {
        content.to_vec()
    } else {
        let Ok(text) = std::str::from_utf8(content) else {
            return Vec::new();
        };
        let digits: String = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default())
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        let digits = digits.replace("0x", "");
        if !digits.len().is_multiple_of(2) || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Vec::new();
        }
        let bytes: Vec<u8> = (0..digits.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
            .collect();
        if !bytes.starts_with(&[0xff; 16]) {
            return Vec::new();
        }
        bytes
    };
    // The capture's context when its comments say it, else both.
    let text = String::from_utf8_lossy(content);
    let modes: &[u8] = if text.contains("four_octet_as = false") {
        &[0]
    } else if text.contains("four_octet_as = true") {
        &[1]
    } else {
        &[1, 0]
    };
    modes
        .iter()
        .map(|&mode| {
            let suffix = if modes.len() > 1 && mode == 0 {
                "-as2"
            } else {
                ""
            };
            (
                format!("vector-{name}{suffix}"),
                [&[mode], bytes.as_slice()].concat(),
            )
        })
        .collect()
}

/// A `session` seed from the captured messages of one session (`(number, bytes)` as
/// [`vector_seeds`] reads them), replayed as raw bytes from the peer in order. The
/// captured OPEN (its capabilities as the real peer sent them) is given the AS and
/// identifier the configuration expects; the rest is sent as captured.
pub fn vector_session_seed(name: &str, mut messages: Vec<(u32, Vec<u8>)>) -> Option<Seed> {
    const SELECTOR: u8 = 0x01;
    messages.sort();
    let config = config(SELECTOR);
    let mut steps = vec![op::START, op::TCP_CONNECTED];
    let mut opened = false;
    for (_, bytes) in messages {
        let bytes = match wasmbgp_bgp::packet::decode(&bytes, &FOUR) {
            Ok(Message::Open(mut open)) => {
                opened = true;
                open.asn = config.peer_as;
                open.bgp_id = Ipv4Addr::new(192, 0, 2, 2);
                for c in &mut open.capabilities {
                    if let wasmbgp_bgp::packet::Capability::FourOctetAs(asn) = c {
                        *asn = config.peer_as;
                    }
                }
                Message::Open(open).to_bytes(&FOUR)
            }
            _ => bytes,
        };
        steps.push(op::BYTES);
        steps.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        steps.extend_from_slice(&bytes);
    }
    opened.then(|| (format!("vector-{name}"), [vec![SELECTOR], steps].concat()))
}

/// The number of a captured message in its session (`# Message N of the session`).
pub fn vector_message_number(content: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(content);
    let rest = text.split("Message ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}
