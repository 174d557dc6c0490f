//! The `message` target: bytes from a peer through the framing and [`packet::decode`],
//! with every decoded message encoded and decoded again.
//!
//! The first octet picks how the rest is read:
//!
//! - bit 0: the negotiated context, 4-octet ASNs when set (RFC 6793), else 2-octet
//!   (AS4_PATH and AS4_AGGREGATOR are then read and merged). The codec's [`Context`]
//!   holds nothing else: every family (IPv4/IPv6 unicast, FlowSpec, others kept raw) is
//!   decoded whatever was negotiated, and there is no extended message length (RFC 8654)
//!   to negotiate.
//! - bit 1 unset: the rest is a TCP stream, cut into messages as the connection reader
//!   does (`frame_len` until a message is incomplete or the header is bad);
//! - bit 1 set: the rest is a message type and a body; the harness writes the header
//!   (marker and the right length), so that mutations of the body are not wasted on a
//!   length that no longer matches.
//!
//! A message fails the target when decoding panics, when a decode error carries a
//! NOTIFICATION the RFCs do not prescribe for that message, when a decoded UPDATE breaks
//! the promises of [`Update`] (treat-as-withdraw applied, prefixes canonical), or when its
//! round trip breaks: the message encoded again must decode, to what the encoder is
//! documented to send ([`as_sent`]), and encode to the same octets a second time (an
//! UPDATE that no longer fits 4096 octets once encoded again is only checked to be
//! refused by the framing).

use std::net::IpAddr;

use wasmbgp_bgp::packet::attributes::{NextHop, PathAttributes, flag};
use wasmbgp_bgp::packet::flowspec::FlowSpec;
use wasmbgp_bgp::packet::notification::{code, header_sub};
use wasmbgp_bgp::packet::{
    self, Context, DecodeError, HEADER_LEN, MAX_MESSAGE_LEN, Message, MpNlri, Update, msg_type,
};
use wasmbgp_bgp::{Ipv4Prefix, Ipv6Prefix};

/// See the module documentation.
pub fn message(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ctx = Context {
        four_octet_as: mode & 1 != 0,
    };
    if mode & 2 == 0 {
        stream(rest, &ctx);
        return;
    }
    let Some((&kind, body)) = rest.split_first() else {
        return;
    };
    let body = &body[..body.len().min(usize::from(u16::MAX) - HEADER_LEN)];
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    msg.push(kind);
    msg.extend_from_slice(body);
    match packet::frame_len(&msg) {
        Ok(Some(len)) if len == msg.len() => one(&msg, &ctx),
        Ok(_) => unreachable!("the header says the message's own length"),
        Err(e) => {
            check_header_error(&e, &msg);
            // decode checks the header the same way.
            assert_eq!(
                packet::decode(&msg, &ctx).map_err(|e| e.notification),
                Err(e.notification),
                "decode and frame_len disagree on the header"
            );
        }
    }
}

/// Cuts `buf` into messages as the daemon's connection reader does, and decodes each.
pub(crate) fn stream(mut buf: &[u8], ctx: &Context) {
    loop {
        match packet::frame_len(buf) {
            Ok(Some(len)) if len <= buf.len() => {
                assert!(len >= HEADER_LEN, "frame_len gave {len}");
                let (msg, rest) = buf.split_at(len);
                one(msg, ctx);
                buf = rest;
            }
            // Incomplete: the reader waits for more.
            Ok(_) => return,
            // The reader reports the error and stops reading.
            Err(e) => return check_header_error(&e, buf),
        }
    }
}

/// One whole message, as delimited by `frame_len`.
fn one(msg: &[u8], ctx: &Context) {
    match packet::decode(msg, ctx) {
        Ok(m) => {
            if let Message::Update(u) = &m {
                check_update(u);
            }
            round_trip(&m, ctx);
        }
        Err(e) => check_body_error(&e, msg[18]),
    }
}

/// The message encoded again decodes to what the encoder sends for it, and that encodes
/// to the same octets.
fn round_trip(m: &Message, ctx: &Context) {
    let bytes = m.to_bytes(ctx);
    if bytes.len() > MAX_MESSAGE_LEN {
        // An UPDATE may come out longer than it came in: for a 2-octet peer the merged
        // path goes out whole in AS4_PATH (RFC 6793 §4.2.2), and ORIGIN and AS_PATH are
        // written even where the UPDATE carried none. Without the extended message
        // capability, such an UPDATE cannot be sent again as one message.
        assert!(
            matches!(m, Message::Update(_)),
            "a decoded {} encodes to {} octets, more than a message holds",
            m.kind(),
            bytes.len()
        );
        let e = packet::decode(&bytes, ctx).expect_err("a message longer than 4096 octets");
        assert_eq!(
            (e.notification.code, e.notification.subcode),
            (code::MESSAGE_HEADER, header_sub::BAD_MESSAGE_LENGTH)
        );
        return;
    }
    let again = packet::decode(&bytes, ctx)
        .unwrap_or_else(|e| panic!("{m:?} encodes to {bytes:02x?}, which does not decode: {e}"));
    assert_eq!(
        again,
        as_sent(m),
        "round trip of {m:?} through {bytes:02x?}"
    );
    assert_eq!(again.to_bytes(ctx), bytes, "second encoding of {again:?}");
}

/// What the encoder is documented to send for a decoded message: the outcome of RFC 7606
/// handling (the treat-as-withdraw reason, discarded attributes) is not sent; attributes
/// go only with routes to carry them; an unrecognized transitive attribute passed on has
/// its Partial bit set (RFC 4271 §5); and the NEXT_HOP attribute goes only with IPv4
/// unicast NLRI (other families carry theirs in MP_REACH_NLRI).
pub fn as_sent(m: &Message) -> Message {
    let mut m = m.clone();
    if let Message::Update(u) = &mut m {
        u.treat_as_withdraw = None;
        u.discarded.clear();
        if u.nlri.is_empty() && u.mp_reach.is_none() {
            u.attributes = PathAttributes::default();
        }
        for raw in &mut u.attributes.unknown {
            raw.flags |= flag::PARTIAL;
        }
        if u.nlri.is_empty() {
            let mp_hop = u.mp_reach.as_ref().and_then(|r| r.next_hop.first());
            u.attributes.next_hop = mp_hop.map(|a| NextHop::Addr(*a));
        }
    }
    m
}

/// What [`Update`] promises once decoded.
fn check_update(u: &Update) {
    if let Some(why) = &u.treat_as_withdraw {
        assert!(
            u.nlri.is_empty() && u.mp_reach.is_none(),
            "treat-as-withdraw ({why}) left routes announced: {u:?}"
        );
        assert_eq!(
            u.attributes,
            PathAttributes::default(),
            "treat-as-withdraw ({why}) kept attributes"
        );
    }
    if !u.nlri.is_empty() {
        assert!(
            matches!(u.attributes.next_hop, Some(NextHop::Addr(IpAddr::V4(_)))),
            "IPv4 routes without an IPv4 next hop: {u:?}"
        );
    }
    for p in u.withdrawn.iter().chain(&u.nlri) {
        assert_eq!(Ipv4Prefix::new(p.addr(), p.len()), Some(*p), "{p:?}");
    }
    let families = [
        u.mp_reach.as_ref().map(|r| (r.family, &r.nlri)),
        u.mp_unreach.as_ref().map(|r| (r.family, &r.withdrawn)),
    ];
    for (family, nlri) in families.into_iter().flatten() {
        match nlri {
            MpNlri::Ipv4(v) => {
                for p in v {
                    assert_eq!(Ipv4Prefix::new(p.addr(), p.len()), Some(*p), "{p:?}");
                }
            }
            MpNlri::Ipv6(v) => {
                for p in v {
                    assert_eq!(Ipv6Prefix::new(p.addr(), p.len()), Some(*p), "{p:?}");
                }
            }
            MpNlri::Flow(rules) => {
                for rule in rules {
                    assert_eq!(rule.family(), family, "{rule:?} in {family}");
                    check_flow_rule(rule);
                }
            }
            MpNlri::Other(_) => {}
        }
    }
}

/// A received rule's components, built into a rule again, give the same components
/// (the canonical encoding may differ from the received one; a received value wider
/// than its component allows cannot be rebuilt, which is fine).
fn check_flow_rule(rule: &FlowSpec) {
    let components = rule.components();
    assert!(!components.is_empty(), "a decoded rule without components");
    if let Ok(again) = FlowSpec::new(rule.afi(), &components) {
        assert_eq!(again.components(), components, "rebuilding {rule:?}");
    }
}

/// Valid (code, subcodes) of the NOTIFICATIONs a decoder sends (RFC 4271 §4.5 and §6,
/// RFC 5492, RFC 7313; subcodes 2/5 and 3/7 are deprecated).
fn valid_subcodes(code: u8) -> &'static [u8] {
    match code {
        code::MESSAGE_HEADER => &[1, 2, 3],
        code::OPEN_MESSAGE => &[0, 1, 2, 3, 4, 6, 7],
        code::UPDATE_MESSAGE => &[1, 2, 3, 4, 5, 6, 8, 9, 10, 11],
        code::ROUTE_REFRESH => &[1],
        _ => &[],
    }
}

fn check_notification(e: &DecodeError) {
    let n = &e.notification;
    assert!(
        valid_subcodes(n.code).contains(&n.subcode),
        "decode error with NOTIFICATION {}/{}: {e}",
        n.code,
        n.subcode
    );
    let described = n.describe();
    assert!(
        !described.contains("subcode") && !described.contains("Unknown"),
        "{described}"
    );
    assert!(!e.reason.is_empty(), "an error without a reason: {n:?}");
}

/// A framing error: a Message Header Error, with the data RFC 4271 §6.1 asks for.
fn check_header_error(e: &DecodeError, buf: &[u8]) {
    check_notification(e);
    let n = &e.notification;
    assert_eq!(n.code, code::MESSAGE_HEADER, "framing error {e}");
    match n.subcode {
        header_sub::CONNECTION_NOT_SYNCHRONIZED => {
            assert!(buf[..16].iter().any(|&b| b != 0xff), "{e}: {buf:02x?}");
        }
        header_sub::BAD_MESSAGE_LENGTH => assert_eq!(n.data, buf[16..18], "{e}"),
        _ => assert_eq!(n.data, [buf[18]], "{e}"),
    }
}

/// An error decoding a message whose header was sound: that message type's error code
/// (RFC 4271 §6.2, §6.3; RFC 7313 §5), and the data the RFC asks for.
fn check_body_error(e: &DecodeError, kind: u8) {
    check_notification(e);
    let n = &e.notification;
    let code = match kind {
        msg_type::OPEN => code::OPEN_MESSAGE,
        msg_type::UPDATE => code::UPDATE_MESSAGE,
        msg_type::ROUTE_REFRESH => code::ROUTE_REFRESH,
        other => panic!("a message of type {other} failed to decode: {e}"),
    };
    assert_eq!(n.code, code, "type {kind}: {e}");
    match (n.code, n.subcode) {
        // The largest supported version.
        (code::OPEN_MESSAGE, 1) => assert_eq!(n.data, [0, 4], "{e}"),
        // Unrecognized well-known attribute, attribute flags error: the attribute.
        (code::UPDATE_MESSAGE, 2 | 4) => {
            let header = if n
                .data
                .first()
                .is_some_and(|f| f & flag::EXTENDED_LENGTH != 0)
            {
                4
            } else {
                3
            };
            assert!(n.data.len() >= header, "{e}: data {:02x?}", n.data);
            let len = if header == 4 {
                usize::from(u16::from_be_bytes([n.data[2], n.data[3]]))
            } else {
                usize::from(n.data[2])
            };
            assert_eq!(len, n.data.len() - header, "{e}: data {:02x?}", n.data);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keepalive_in_both_modes() {
        let keepalive = Message::Keepalive.to_bytes(&Context::default());
        message(&[[1].as_slice(), &keepalive, &keepalive].concat());
        message(&[2, msg_type::KEEPALIVE]);
        message(&[3, 9, 1, 2]);
    }

    /// A 2-octet peer's path of 1000 ASNs ending in a 4-octet one: valid, but written
    /// out again for a 2-octet peer its AS4_PATH alone takes 4000 octets.
    #[test]
    fn an_update_too_long_to_send_again() {
        let mut path = Vec::new();
        for count in [255u16, 255, 255, 235] {
            path.extend_from_slice(&[2, count as u8]);
            for asn in 0..count {
                path.extend_from_slice(&(1000 + asn).to_be_bytes());
            }
        }
        let mut attrs = vec![0x40, 1, 1, 0, 0x50, 2];
        attrs.extend_from_slice(&(path.len() as u16).to_be_bytes());
        attrs.extend_from_slice(&path);
        attrs.extend_from_slice(&[0xc0, 17, 6, 2, 1, 0, 1, 0x11, 0x70]);
        attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 1]);
        let mut input = vec![2, msg_type::UPDATE, 0, 0];
        input.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        input.extend_from_slice(&attrs);
        input.extend_from_slice(&[24, 10, 0, 0]);
        let body = &input[2..];
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
        msg.push(msg_type::UPDATE);
        msg.extend_from_slice(body);
        let ctx = Context {
            four_octet_as: false,
        };
        let m = packet::decode(&msg, &ctx).unwrap();
        assert!(m.to_bytes(&ctx).len() > MAX_MESSAGE_LEN);
        message(&input);
    }
}
