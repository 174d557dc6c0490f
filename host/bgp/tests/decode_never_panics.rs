//! Property tests: decoding never panics on any input, and what the encoder writes the
//! decoder reads back unchanged.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use wasmbgp_bgp::packet::attributes::{
    AsPath, ExtendedCommunity, LargeCommunity, NextHop, Origin, PathAttributes,
};
use wasmbgp_bgp::packet::{self, Context, Message, MpNlri, MpReach, Update, UpdatePacker};
use wasmbgp_bgp::{Family, Ipv4Prefix, Ipv6Prefix};

fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()).min(u16::MAX as usize) as u16).to_be_bytes());
    v.push(kind);
    v.extend_from_slice(body);
    v
}

fn ctx() -> impl Strategy<Value = Context> {
    any::<bool>().prop_map(|four_octet_as| Context { four_octet_as })
}

fn v4() -> impl Strategy<Value = Ipv4Prefix> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Prefix::new(Ipv4Addr::from(a), l).unwrap())
}

fn v6() -> impl Strategy<Value = Ipv6Prefix> {
    (any::<u128>(), 0u8..=128).prop_map(|(a, l)| Ipv6Prefix::new(Ipv6Addr::from(a), l).unwrap())
}

fn attrs() -> impl Strategy<Value = PathAttributes> {
    (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        proptest::collection::vec(1u32..u32::MAX, 0..8),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(any::<u32>(), 0..5),
        proptest::collection::vec(any::<[u32; 3]>(), 0..3),
        proptest::collection::vec(any::<[u8; 8]>(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(origin, path, med, local_pref, communities, large, ext, atomic)| PathAttributes {
                origin,
                as_path: AsPath::from_sequence(path),
                next_hop: None,
                med,
                local_pref,
                atomic_aggregate: atomic,
                aggregator: None,
                communities,
                large_communities: large.into_iter().map(LargeCommunity).collect(),
                extended_communities: ext.into_iter().map(ExtendedCommunity).collect(),
                unknown: vec![],
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_never_panic(kind in 1u8..=5, body in proptest::collection::vec(any::<u8>(), 0..600), c in ctx()) {
        let _ = packet::decode(&framed(kind, &body), &c);
    }

    #[test]
    fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), c in ctx()) {
        if let Ok(Some(len)) = packet::frame_len(&bytes) {
            if len <= bytes.len() {
                let _ = packet::decode(&bytes[..len], &c);
            }
        }
    }

    #[test]
    fn mutated_updates_never_panic(a in attrs(), p in proptest::collection::vec(v4(), 1..20), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), c in ctx()) {
        let mut a = a;
        a.next_hop = Some(NextHop::Addr("192.0.2.1".parse().unwrap()));
        let mut bytes = Message::Update(Update { attributes: a, nlri: p, ..Update::default() }).to_bytes(&c);
        for (at, val) in flips {
            let i = 19 + at % (bytes.len() - 19);
            bytes[i] = val;
        }
        let _ = packet::decode(&bytes, &c);
    }

    #[test]
    fn ipv4_updates_round_trip(a in attrs(), p in proptest::collection::vec(v4(), 1..50), c in ctx()) {
        let mut a = a;
        a.next_hop = Some(NextHop::Addr("192.0.2.1".parse().unwrap()));
        let u = Update { attributes: a, nlri: p, ..Update::default() };
        let bytes = Message::Update(u.clone()).to_bytes(&c);
        prop_assert_eq!(packet::decode(&bytes, &c).unwrap(), Message::Update(u));
    }

    #[test]
    fn ipv6_updates_round_trip(a in attrs(), p in proptest::collection::vec(v6(), 1..50), c in ctx()) {
        let nh = "2001:db8::1".parse().unwrap();
        let mut a = a;
        a.next_hop = Some(NextHop::Addr(nh));
        let u = Update {
            attributes: a,
            mp_reach: Some(MpReach { family: Family::IPV6_UNICAST, next_hop: vec![nh], nlri: MpNlri::Ipv6(p) }),
            ..Update::default()
        };
        let bytes = Message::Update(u.clone()).to_bytes(&c);
        prop_assert_eq!(packet::decode(&bytes, &c).unwrap(), Message::Update(u));
    }

    #[test]
    fn packer_output_decodes_to_the_same_prefixes(a in attrs(), p in proptest::collection::vec(v4(), 1..3000), c in ctx()) {
        let packer = UpdatePacker::new(c);
        let enc = packer.encode_attributes(&a, Some("192.0.2.1".parse().unwrap()));
        let mut out = Vec::new();
        packer.announce_ipv4(&enc, &p, &mut out);
        let mut back = Vec::new();
        let mut buf = &out[..];
        while let Some(len) = packet::frame_len(buf).unwrap() {
            prop_assert!(len <= packet::MAX_MESSAGE_LEN);
            let Message::Update(u) = packet::decode(&buf[..len], &c).unwrap() else { panic!() };
            back.extend(u.nlri);
            buf = &buf[len..];
        }
        prop_assert_eq!(back, p);
    }
}

/// An UPDATE whose MP_REACH (or MP_UNREACH) carries `nlri` as FlowSpec NLRI of `afi`.
fn flow_update(afi: u16, unreach: bool, nlri: &[u8]) -> Vec<u8> {
    let mut mp = afi.to_be_bytes().to_vec();
    mp.push(133);
    if !unreach {
        mp.extend_from_slice(&[0, 0]); // no next hop, reserved
    }
    mp.extend_from_slice(nlri);
    let mut attrs = vec![0x40, 0x01, 0x01, 0x00, 0x40, 0x02, 0x00];
    attrs.extend_from_slice(&[0x90, if unreach { 0x0f } else { 0x0e }]);
    attrs.extend_from_slice(&(mp.len().min(u16::MAX as usize) as u16).to_be_bytes());
    attrs.extend_from_slice(&mp);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len().min(u16::MAX as usize) as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    framed(2, &body)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// FlowSpec NLRI of random bytes, framed right, never panics the UPDATE decoder:
    /// it decodes, is treated as withdraw, or is a session error.
    #[test]
    fn arbitrary_flowspec_nlri_never_panics(
        afi in prop_oneof![Just(1u16), Just(2u16)],
        unreach in any::<bool>(),
        nlri in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(Message::Update(u)) = packet::decode(&flow_update(afi, unreach, &nlri), &Context::default()) {
            // What was decoded encodes again without panicking.
            let _ = Message::Update(u).to_bytes(&Context::default());
        }
    }
}
