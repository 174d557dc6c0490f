//! BGP-4 messages as BMP carries them (RFC 4271, RFC 4760, RFC 6793): OPEN,
//! UPDATE (with 4-octet AS numbers in AS_PATH and AGGREGATOR), End-of-RIB
//! and NOTIFICATION. Encoding only.

use wasmbgp_sdk::types::{Attributes, IpAddress, Origin, SegmentKind};

/// The largest BGP message (RFC 4271 without RFC 8654 extended messages).
pub const MAX_MESSAGE: usize = 4096;
/// Marker, length and type.
pub const HEADER: usize = 19;

/// BGP message types.
pub const OPEN: u8 = 1;
pub const UPDATE: u8 = 2;
pub const NOTIFICATION: u8 = 3;

/// AS_TRANS (RFC 6793), in the 2-octet field of an OPEN for larger ASNs.
pub const AS_TRANS: u16 = 23456;

/// Address families (AFI) and the unicast SAFI.
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;

// Path attribute flags and type codes.
const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const EXTENDED_LENGTH: u8 = 0x10;
const ATTR_ORIGIN: u8 = 1;
const ATTR_AS_PATH: u8 = 2;
const ATTR_NEXT_HOP: u8 = 3;
const ATTR_MED: u8 = 4;
const ATTR_LOCAL_PREF: u8 = 5;
const ATTR_ATOMIC_AGGREGATE: u8 = 6;
const ATTR_AGGREGATOR: u8 = 7;
const ATTR_COMMUNITIES: u8 = 8;
const ATTR_MP_REACH: u8 = 14;
const ATTR_MP_UNREACH: u8 = 15;
const ATTR_EXTENDED_COMMUNITIES: u8 = 16;
const ATTR_LARGE_COMMUNITIES: u8 = 32;

/// Appends a BGP header (marker, length, type) and returns where the message
/// starts, for [`finish`].
fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0]);
    out.push(kind);
    start
}

/// Writes the length of the message that starts at `start`.
fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}

/// A BGP OPEN with hold time 90, the multiprotocol capabilities for IPv4
/// and IPv6 unicast and the 4-octet AS capability.
pub fn open(out: &mut Vec<u8>, asn: u32, bgp_id: u32) {
    let start = begin(out, OPEN);
    out.push(4);
    let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
    out.extend_from_slice(&my_as.to_be_bytes());
    out.extend_from_slice(&90u16.to_be_bytes());
    out.extend_from_slice(&bgp_id.to_be_bytes());
    // One optional parameter (capabilities), 3 capabilities, 18 octets.
    let capabilities: [u8; 18] = {
        let [a, b, c, d] = asn.to_be_bytes();
        [
            1, 4, 0, 1, 0, 1, // multiprotocol IPv4 unicast
            1, 4, 0, 2, 0, 1, // multiprotocol IPv6 unicast
            65, 4, a, b, c, d, // 4-octet AS
        ]
    };
    out.push(2 + capabilities.len() as u8);
    out.push(2);
    out.push(capabilities.len() as u8);
    out.extend_from_slice(&capabilities);
    finish(out, start);
}

/// A BGP NOTIFICATION.
pub fn notification(out: &mut Vec<u8>, code: u8, subcode: u8, data: &[u8]) {
    let start = begin(out, NOTIFICATION);
    out.push(code);
    out.push(subcode);
    // Keep the message within the maximum size.
    let room = MAX_MESSAGE - HEADER - 2;
    out.extend_from_slice(&data[..data.len().min(room)]);
    finish(out, start);
}

/// An End-of-RIB marker (RFC 4724): an empty UPDATE for IPv4 unicast, an
/// UPDATE with an empty MP_UNREACH_NLRI otherwise.
pub fn end_of_rib(out: &mut Vec<u8>, afi: u16, safi: u8) {
    let start = begin(out, UPDATE);
    out.extend_from_slice(&[0, 0]); // withdrawn routes length
    if afi == AFI_IPV4 && safi == SAFI_UNICAST {
        out.extend_from_slice(&[0, 0]);
    } else {
        out.extend_from_slice(&6u16.to_be_bytes());
        out.extend_from_slice(&[OPTIONAL, ATTR_MP_UNREACH, 3]);
        out.extend_from_slice(&afi.to_be_bytes());
        out.push(safi);
    }
    finish(out, start);
}

/// One path attribute: flags (the extended-length bit is set when needed),
/// code and value.
fn attribute(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.push((flags & !EXTENDED_LENGTH) | EXTENDED_LENGTH);
        out.push(code);
        out.extend_from_slice(&(value.len().min(u16::MAX as usize) as u16).to_be_bytes());
    } else {
        out.push(flags & !EXTENDED_LENGTH);
        out.push(code);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(&value[..value.len().min(u16::MAX as usize)]);
}

fn segment_type(kind: SegmentKind) -> u8 {
    match kind {
        SegmentKind::Set => 1,
        SegmentKind::Sequence => 2,
        SegmentKind::ConfedSequence => 3,
        SegmentKind::ConfedSet => 4,
    }
}

/// The 16 octets of an IPv6 next hop (an IPv4 one as IPv4-mapped).
fn ipv6_octets(address: &IpAddress) -> [u8; 16] {
    match *address {
        IpAddress::V4(v4) => {
            let mut octets = [0u8; 16];
            octets[10] = 0xff;
            octets[11] = 0xff;
            octets[12..].copy_from_slice(&v4.to_be_bytes());
            octets
        }
        IpAddress::V6((high, low)) => (((high as u128) << 64) | low as u128).to_be_bytes(),
    }
}

/// The path attributes of `attributes`, without MP_REACH_NLRI, sorted by type
/// code. `ipv4_next_hop`: include NEXT_HOP (IPv4 routes with an IPv4 next
/// hop).
pub fn path_attributes(attributes: &Attributes, ipv4_next_hop: bool) -> Vec<u8> {
    // (code, encoded attribute), sorted by code at the end.
    let mut parts: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut add = |flags: u8, code: u8, value: &[u8]| {
        let mut encoded = Vec::with_capacity(value.len() + 4);
        attribute(&mut encoded, flags, code, value);
        parts.push((code, encoded));
    };
    let origin = match attributes.origin {
        Origin::Igp => 0,
        Origin::Egp => 1,
        Origin::Incomplete => 2,
    };
    add(TRANSITIVE, ATTR_ORIGIN, &[origin]);

    let mut path = Vec::new();
    for segment in &attributes.as_path {
        // A segment holds at most 255 ASNs: longer ones are split.
        for chunk in segment.asns.chunks(255) {
            path.push(segment_type(segment.kind));
            path.push(chunk.len() as u8);
            for asn in chunk {
                path.extend_from_slice(&asn.to_be_bytes());
            }
        }
    }
    add(TRANSITIVE, ATTR_AS_PATH, &path);

    if ipv4_next_hop && let Some(IpAddress::V4(next_hop)) = attributes.next_hop {
        add(TRANSITIVE, ATTR_NEXT_HOP, &next_hop.to_be_bytes());
    }
    if let Some(med) = attributes.med {
        add(OPTIONAL, ATTR_MED, &med.to_be_bytes());
    }
    if let Some(local_pref) = attributes.local_pref {
        add(TRANSITIVE, ATTR_LOCAL_PREF, &local_pref.to_be_bytes());
    }
    if attributes.atomic_aggregate {
        add(TRANSITIVE, ATTR_ATOMIC_AGGREGATE, &[]);
    }
    if let Some(aggregator) = &attributes.aggregator {
        let mut value = [0u8; 8];
        value[..4].copy_from_slice(&aggregator.asn.to_be_bytes());
        value[4..].copy_from_slice(&aggregator.address.to_be_bytes());
        add(OPTIONAL | TRANSITIVE, ATTR_AGGREGATOR, &value);
    }
    if !attributes.communities.is_empty() {
        let value: Vec<u8> = attributes
            .communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        add(OPTIONAL | TRANSITIVE, ATTR_COMMUNITIES, &value);
    }
    if !attributes.extended_communities.is_empty() {
        let value: Vec<u8> = attributes
            .extended_communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        add(OPTIONAL | TRANSITIVE, ATTR_EXTENDED_COMMUNITIES, &value);
    }
    if !attributes.large_communities.is_empty() {
        let value: Vec<u8> = attributes
            .large_communities
            .iter()
            .flat_map(|&(a, b, c)| {
                let mut v = [0u8; 12];
                v[..4].copy_from_slice(&a.to_be_bytes());
                v[4..8].copy_from_slice(&b.to_be_bytes());
                v[8..].copy_from_slice(&c.to_be_bytes());
                v
            })
            .collect();
        add(OPTIONAL | TRANSITIVE, ATTR_LARGE_COMMUNITIES, &value);
    }
    for unknown in &attributes.unknown {
        // The ones this encoder writes itself, or the multiprotocol ones
        // (they belong to the NLRI), are not repeated.
        if matches!(
            unknown.code,
            ATTR_ORIGIN
                ..=ATTR_COMMUNITIES
                    | ATTR_MP_REACH
                    | ATTR_MP_UNREACH
                    | ATTR_EXTENDED_COMMUNITIES
                    | ATTR_LARGE_COMMUNITIES
        ) {
            continue;
        }
        add(unknown.flags, unknown.code, &unknown.value);
    }
    parts.sort_by_key(|(code, _)| *code);
    parts.into_iter().flat_map(|(_, bytes)| bytes).collect()
}

/// A prefix in NLRI form: the length, then the significant octets.
fn push_prefix(out: &mut Vec<u8>, address: &[u8], length: u8) {
    let octets = (length as usize).div_ceil(8).min(address.len());
    out.push(length);
    out.extend_from_slice(&address[..octets]);
}

fn prefix_size(length: u8) -> usize {
    1 + (length as usize).div_ceil(8)
}

/// A prefix: the address octets (4 or 16) and the length.
pub type V4Prefix = (u32, u8);
pub type V6Prefix = (u128, u8);

/// Packs IPv4 prefixes announced with one attribute set into UPDATEs of at
/// most [`MAX_MESSAGE`] octets; calls `emit` with each complete message.
pub fn announce_v4(attributes: &Attributes, prefixes: &[V4Prefix], emit: &mut dyn FnMut(&[u8])) {
    if let Some(IpAddress::V6(_)) = attributes.next_hop {
        // An IPv4 route with an IPv6 next hop (RFC 8950) goes in MP_REACH.
        let wide: Vec<V6Prefix> = prefixes
            .iter()
            .map(|&(a, l)| ((a as u128) << 96, l))
            .collect();
        mp_reach(attributes, AFI_IPV4, &wide, emit);
        return;
    }
    let attrs = path_attributes(attributes, true);
    let mut out = Vec::with_capacity(MAX_MESSAGE);
    for &(address, length) in prefixes {
        if !out.is_empty() && out.len() + prefix_size(length) > MAX_MESSAGE {
            finish(&mut out, 0);
            emit(&out);
            out.clear();
        }
        if out.is_empty() {
            begin(&mut out, UPDATE);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            out.extend_from_slice(&attrs);
        }
        push_prefix(&mut out, &address.to_be_bytes(), length);
    }
    if !out.is_empty() {
        finish(&mut out, 0);
        emit(&out);
    }
}

/// Packs IPv6 prefixes announced with one attribute set into UPDATEs with
/// MP_REACH_NLRI.
pub fn announce_v6(attributes: &Attributes, prefixes: &[V6Prefix], emit: &mut dyn FnMut(&[u8])) {
    mp_reach(attributes, AFI_IPV6, prefixes, emit);
}

/// The address octets of a prefix of `afi` (IPv4 ones are the top 32 bits).
fn octets(afi: u16, address: u128) -> ([u8; 16], usize) {
    (address.to_be_bytes(), if afi == AFI_IPV4 { 4 } else { 16 })
}

/// UPDATEs whose NLRI travel in MP_REACH_NLRI (always written with an
/// extended length).
fn mp_reach(attributes: &Attributes, afi: u16, prefixes: &[V6Prefix], emit: &mut dyn FnMut(&[u8])) {
    let attrs = path_attributes(attributes, false);
    let next_hop = attributes
        .next_hop
        .map(|a| ipv6_octets(&a))
        .unwrap_or([0; 16]);
    let mut out = Vec::with_capacity(MAX_MESSAGE);
    let mut mp_start = 0;
    let flush = |out: &mut Vec<u8>, mp_start: usize, emit: &mut dyn FnMut(&[u8])| {
        let mp_len = (out.len() - mp_start - 4) as u16;
        out[mp_start + 2..mp_start + 4].copy_from_slice(&mp_len.to_be_bytes());
        let total = (out.len() - HEADER - 4) as u16;
        out[HEADER + 2..HEADER + 4].copy_from_slice(&total.to_be_bytes());
        finish(out, 0);
        emit(out);
        out.clear();
    };
    for &(address, length) in prefixes {
        if !out.is_empty() && out.len() + prefix_size(length) > MAX_MESSAGE {
            flush(&mut out, mp_start, emit);
        }
        if out.is_empty() {
            begin(&mut out, UPDATE);
            out.extend_from_slice(&[0, 0, 0, 0]); // withdrawn length, attributes length
            out.extend_from_slice(&attrs);
            mp_start = out.len();
            out.extend_from_slice(&[OPTIONAL | EXTENDED_LENGTH, ATTR_MP_REACH, 0, 0]);
            out.extend_from_slice(&afi.to_be_bytes());
            out.push(SAFI_UNICAST);
            out.push(16);
            out.extend_from_slice(&next_hop);
            out.push(0); // reserved
        }
        let (bytes, width) = octets(afi, address);
        push_prefix(&mut out, &bytes[..width], length);
    }
    if !out.is_empty() {
        flush(&mut out, mp_start, emit);
    }
}

/// Packs withdrawn IPv4 prefixes into UPDATEs (the withdrawn routes field).
pub fn withdraw_v4(prefixes: &[V4Prefix], emit: &mut dyn FnMut(&[u8])) {
    let mut out = Vec::with_capacity(MAX_MESSAGE);
    let flush = |out: &mut Vec<u8>, emit: &mut dyn FnMut(&[u8])| {
        let withdrawn = (out.len() - HEADER - 2) as u16;
        out[HEADER..HEADER + 2].copy_from_slice(&withdrawn.to_be_bytes());
        out.extend_from_slice(&[0, 0]); // no path attributes
        finish(out, 0);
        emit(out);
        out.clear();
    };
    for &(address, length) in prefixes {
        // Room for the path attributes length at the end.
        if !out.is_empty() && out.len() + prefix_size(length) + 2 > MAX_MESSAGE {
            flush(&mut out, emit);
        }
        if out.is_empty() {
            begin(&mut out, UPDATE);
            out.extend_from_slice(&[0, 0]);
        }
        push_prefix(&mut out, &address.to_be_bytes(), length);
    }
    if !out.is_empty() {
        flush(&mut out, emit);
    }
}

/// Packs withdrawn IPv6 prefixes into UPDATEs with MP_UNREACH_NLRI.
pub fn withdraw_v6(prefixes: &[V6Prefix], emit: &mut dyn FnMut(&[u8])) {
    let mut out = Vec::with_capacity(MAX_MESSAGE);
    let flush = |out: &mut Vec<u8>, emit: &mut dyn FnMut(&[u8])| {
        let mp_len = (out.len() - HEADER - 4 - 4) as u16;
        out[HEADER + 6..HEADER + 8].copy_from_slice(&mp_len.to_be_bytes());
        let total = (out.len() - HEADER - 4) as u16;
        out[HEADER + 2..HEADER + 4].copy_from_slice(&total.to_be_bytes());
        finish(out, 0);
        emit(out);
        out.clear();
    };
    for &(address, length) in prefixes {
        if !out.is_empty() && out.len() + prefix_size(length) > MAX_MESSAGE {
            flush(&mut out, emit);
        }
        if out.is_empty() {
            begin(&mut out, UPDATE);
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(&[OPTIONAL | EXTENDED_LENGTH, ATTR_MP_UNREACH, 0, 0]);
            out.extend_from_slice(&AFI_IPV6.to_be_bytes());
            out.push(SAFI_UNICAST);
        }
        push_prefix(&mut out, &address.to_be_bytes(), length);
    }
    if !out.is_empty() {
        flush(&mut out, emit);
    }
}
