//! BMP messages (RFC 7854, with the Adj-RIB-Out flag of RFC 8671): the
//! common header, the per-peer header, and each message type the plugin
//! sends.

use crate::bgp;

/// BMP version.
pub const VERSION: u8 = 3;

/// Message types.
pub const ROUTE_MONITORING: u8 = 0;
pub const STATISTICS_REPORT: u8 = 1;
pub const PEER_DOWN: u8 = 2;
pub const PEER_UP: u8 = 3;
pub const INITIATION: u8 = 4;
pub const TERMINATION: u8 = 5;

/// Per-peer header flags.
pub const FLAG_V: u8 = 0x80; // IPv6 peer address
pub const FLAG_L: u8 = 0x40; // post-policy
pub const FLAG_O: u8 = 0x10; // Adj-RIB-Out (RFC 8671)

/// Peer Down reasons.
pub const DOWN_LOCAL_NOTIFICATION: u8 = 1;
pub const DOWN_REMOTE_NOTIFICATION: u8 = 3;
pub const DOWN_REMOTE_NO_NOTIFICATION: u8 = 4;

/// Statistics types (RFC 7854 section 4.8).
pub const STAT_ADJ_RIB_IN: u16 = 7;
pub const STAT_PER_AFI_ADJ_RIB_IN: u16 = 8;

/// What the per-peer header says about a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer's address: IPv4 in the last 4 octets when not `ipv6`.
    pub address: [u8; 16],
    pub ipv6: bool,
    pub asn: u32,
    pub bgp_id: u32,
}

impl Peer {
    /// A peer with an IPv4 address.
    pub fn v4(address: u32, asn: u32) -> Peer {
        let mut octets = [0u8; 16];
        octets[12..].copy_from_slice(&address.to_be_bytes());
        Peer {
            address: octets,
            ipv6: false,
            asn,
            bgp_id: address,
        }
    }

    /// A peer with an IPv6 address; its BGP identifier, which the event does
    /// not carry, is taken from the address's last 32 bits.
    pub fn v6(address: u128, asn: u32) -> Peer {
        Peer {
            address: address.to_be_bytes(),
            ipv6: true,
            asn,
            bgp_id: address as u32,
        }
    }
}

/// A message's time: seconds and microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: u32,
    pub micros: u32,
}

impl Timestamp {
    pub fn from_millis(ms: u64) -> Timestamp {
        Timestamp {
            seconds: (ms / 1000) as u32,
            micros: ((ms % 1000) * 1000) as u32,
        }
    }
}

/// Appends a common header and returns where the message starts.
fn begin(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.push(VERSION);
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    start
}

/// Writes the length of the message that starts at `start`.
fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

fn peer_header(out: &mut Vec<u8>, peer: &Peer, flags: u8, time: Timestamp) {
    out.push(0); // global instance peer
    out.push(flags | if peer.ipv6 { FLAG_V } else { 0 });
    out.extend_from_slice(&[0; 8]); // peer distinguisher
    out.extend_from_slice(&peer.address);
    out.extend_from_slice(&peer.asn.to_be_bytes());
    out.extend_from_slice(&peer.bgp_id.to_be_bytes());
    out.extend_from_slice(&time.seconds.to_be_bytes());
    out.extend_from_slice(&time.micros.to_be_bytes());
}

fn tlv(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let value = &value[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// Initiation: sysDescr (type 1) and sysName (type 2).
pub fn initiation(out: &mut Vec<u8>, sys_name: &str, sys_descr: &str) {
    let start = begin(out, INITIATION);
    tlv(out, 1, sys_descr.as_bytes());
    tlv(out, 2, sys_name.as_bytes());
    finish(out, start);
}

/// Termination with a reason (type 1; 0 = administratively closed) and a
/// string (type 0).
pub fn termination(out: &mut Vec<u8>, reason: u16, text: &str) {
    let start = begin(out, TERMINATION);
    tlv(out, 0, text.as_bytes());
    tlv(out, 1, &reason.to_be_bytes());
    finish(out, start);
}

/// Peer Up: the local address and ports unknown (zero), and the OPENs
/// synthesized from the session (ours with identifier `local_id`).
pub fn peer_up(out: &mut Vec<u8>, peer: &Peer, local_as: u32, local_id: u32, time: Timestamp) {
    let start = begin(out, PEER_UP);
    peer_header(out, peer, 0, time);
    out.extend_from_slice(&[0; 16]); // local address
    out.extend_from_slice(&[0; 2]); // local port
    out.extend_from_slice(&[0; 2]); // remote port
    bgp::open(out, local_as, local_id);
    bgp::open(out, peer.asn, peer.bgp_id);
    finish(out, start);
}

/// Why a peer went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION (code, subcode, data).
    LocalNotification(u8, u8, Vec<u8>),
    /// The peer sent this NOTIFICATION.
    RemoteNotification(u8, u8, Vec<u8>),
    /// The session closed without a NOTIFICATION.
    RemoteClosed,
}

/// Peer Down.
pub fn peer_down(out: &mut Vec<u8>, peer: &Peer, reason: &DownReason, time: Timestamp) {
    let start = begin(out, PEER_DOWN);
    peer_header(out, peer, 0, time);
    match reason {
        DownReason::LocalNotification(code, subcode, data) => {
            out.push(DOWN_LOCAL_NOTIFICATION);
            bgp::notification(out, *code, *subcode, data);
        }
        DownReason::RemoteNotification(code, subcode, data) => {
            out.push(DOWN_REMOTE_NOTIFICATION);
            bgp::notification(out, *code, *subcode, data);
        }
        DownReason::RemoteClosed => out.push(DOWN_REMOTE_NO_NOTIFICATION),
    }
    finish(out, start);
}

/// Route Monitoring carrying one BGP UPDATE.
pub fn route_monitoring(out: &mut Vec<u8>, peer: &Peer, flags: u8, time: Timestamp, update: &[u8]) {
    let start = begin(out, ROUTE_MONITORING);
    peer_header(out, peer, flags, time);
    out.extend_from_slice(update);
    finish(out, start);
}

/// Statistics Report: routes in the Adj-RIB-In (type 7) and per address
/// family (type 8), as 64-bit gauges.
pub fn statistics(
    out: &mut Vec<u8>,
    peer: &Peer,
    flags: u8,
    time: Timestamp,
    total: u64,
    per_family: &[(u16, u8, u64)],
) {
    let start = begin(out, STATISTICS_REPORT);
    peer_header(out, peer, flags, time);
    out.extend_from_slice(&(1 + per_family.len() as u32).to_be_bytes());
    tlv(out, STAT_ADJ_RIB_IN, &total.to_be_bytes());
    for &(afi, safi, count) in per_family {
        let mut value = [0u8; 11];
        value[..2].copy_from_slice(&afi.to_be_bytes());
        value[2] = safi;
        value[3..].copy_from_slice(&count.to_be_bytes());
        tlv(out, STAT_PER_AFI_ADJ_RIB_IN, &value);
    }
    finish(out, start);
}
