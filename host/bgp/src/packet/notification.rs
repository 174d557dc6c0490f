//! NOTIFICATION (RFC 4271 §4.5, RFC 4486, RFC 8203) and ROUTE-REFRESH (RFC 2918).

use super::prefix::Family;
use super::{DecodeError, Reader};

/// NOTIFICATION error codes (RFC 4271 §4.5).
pub mod code {
    /// Message Header Error.
    pub const MESSAGE_HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN_MESSAGE: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE_MESSAGE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Message Header Error subcodes.
pub mod header_sub {
    /// Connection Not Synchronized.
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    /// Bad Message Length.
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    /// Bad Message Type.
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes.
pub mod open_sub {
    /// Unsupported Version Number.
    pub const UNSUPPORTED_VERSION: u8 = 1;
    /// Bad Peer AS.
    pub const BAD_PEER_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    /// Unsupported Optional Parameter.
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Unacceptable Hold Time.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// Unsupported Capability (RFC 5492).
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// UPDATE Message Error subcodes.
pub mod update_sub {
    /// Malformed Attribute List.
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    /// Unrecognized Well-known Attribute.
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    /// Missing Well-known Attribute.
    pub const MISSING_WELL_KNOWN: u8 = 3;
    /// Attribute Flags Error.
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    /// Attribute Length Error.
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    /// Invalid ORIGIN Attribute.
    pub const INVALID_ORIGIN: u8 = 6;
    /// Invalid NEXT_HOP Attribute.
    pub const INVALID_NEXT_HOP: u8 = 8;
    /// Optional Attribute Error.
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    /// Invalid Network Field.
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    /// Malformed AS_PATH.
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// FSM Error subcodes (RFC 6608).
pub mod fsm_sub {
    /// Unspecified.
    pub const UNSPECIFIED: u8 = 0;
    /// Receive Unexpected Message in OpenSent State.
    pub const UNEXPECTED_IN_OPENSENT: u8 = 1;
    /// Receive Unexpected Message in OpenConfirm State.
    pub const UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    /// Receive Unexpected Message in Established State.
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486).
pub mod cease_sub {
    /// Maximum Number of Prefixes Reached.
    pub const MAX_PREFIXES: u8 = 1;
    /// Administrative Shutdown.
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    /// Peer De-configured.
    pub const PEER_DECONFIGURED: u8 = 3;
    /// Administrative Reset.
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    /// Connection Rejected.
    pub const CONNECTION_REJECTED: u8 = 5;
    /// Other Configuration Change.
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    /// Connection Collision Resolution.
    pub const CONNECTION_COLLISION: u8 = 7;
    /// Out of Resources.
    pub const OUT_OF_RESOURCES: u8 = 8;
}

/// A NOTIFICATION message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Diagnostic data.
    pub data: Vec<u8>,
}

impl Notification {
    /// Cease with a subcode and no data.
    pub fn cease(subcode: u8) -> Self {
        Notification {
            code: code::CEASE,
            subcode,
            data: Vec::new(),
        }
    }

    /// Cease / Maximum Number of Prefixes Reached with the RFC 4486 data: AFI, SAFI and
    /// the limit.
    pub fn max_prefixes(family: crate::Family, limit: u32) -> Self {
        let mut data = Vec::with_capacity(7);
        data.extend_from_slice(&family.afi.to_be_bytes());
        data.push(family.safi);
        data.extend_from_slice(&limit.to_be_bytes());
        Notification {
            code: code::CEASE,
            subcode: cease_sub::MAX_PREFIXES,
            data,
        }
    }

    /// Cease / Administrative Shutdown carrying an RFC 8203 shutdown communication.
    pub fn administrative_shutdown(message: &str) -> Self {
        let mut text = message.as_bytes();
        // The communication is at most 255 octets; cut at a character boundary.
        let mut cut = text.len().min(255);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        text = &text[..cut];
        let mut data = Vec::with_capacity(1 + text.len());
        data.push(text.len() as u8);
        data.extend_from_slice(text);
        Notification {
            code: code::CEASE,
            subcode: cease_sub::ADMINISTRATIVE_SHUTDOWN,
            data,
        }
    }

    /// The RFC 8203/9003 shutdown communication of a Cease/Administrative Shutdown or
    /// Reset: a length octet, then UTF-8. `None` if there is none or it is malformed
    /// (RFC 9003 says to ignore it then).
    pub fn shutdown_communication(&self) -> Option<&str> {
        let carries = self.code == code::CEASE
            && matches!(
                self.subcode,
                cease_sub::ADMINISTRATIVE_SHUTDOWN | cease_sub::ADMINISTRATIVE_RESET
            );
        let (&len, text) = self.data.split_first().filter(|_| carries)?;
        if len == 0 || usize::from(len) != text.len() {
            return None;
        }
        std::str::from_utf8(text).ok()
    }

    /// Human-readable code/subcode, e.g. `Cease/Administrative Shutdown`.
    pub fn describe(&self) -> String {
        let (c, s) = names(self.code, self.subcode);
        format!("{c}/{s}")
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn decode_body(body: &[u8]) -> Self {
        // frame_len guarantees at least two octets.
        Notification {
            code: body.first().copied().unwrap_or(0),
            subcode: body.get(1).copied().unwrap_or(0),
            data: body.get(2..).unwrap_or_default().to_vec(),
        }
    }
}

fn names(code: u8, subcode: u8) -> (&'static str, String) {
    let sub = |names: &[&'static str]| -> String {
        names
            .get(subcode as usize)
            .filter(|n| !n.is_empty())
            .map(|n| n.to_string())
            .unwrap_or_else(|| format!("subcode {subcode}"))
    };
    match code {
        code::MESSAGE_HEADER => (
            "Message Header Error",
            sub(&[
                "Unspecific",
                "Connection Not Synchronized",
                "Bad Message Length",
                "Bad Message Type",
            ]),
        ),
        code::OPEN_MESSAGE => (
            "OPEN Message Error",
            sub(&[
                "Unspecific",
                "Unsupported Version Number",
                "Bad Peer AS",
                "Bad BGP Identifier",
                "Unsupported Optional Parameter",
                "",
                "Unacceptable Hold Time",
                "Unsupported Capability",
            ]),
        ),
        code::UPDATE_MESSAGE => (
            "UPDATE Message Error",
            sub(&[
                "Unspecific",
                "Malformed Attribute List",
                "Unrecognized Well-known Attribute",
                "Missing Well-known Attribute",
                "Attribute Flags Error",
                "Attribute Length Error",
                "Invalid ORIGIN Attribute",
                "",
                "Invalid NEXT_HOP Attribute",
                "Optional Attribute Error",
                "Invalid Network Field",
                "Malformed AS_PATH",
            ]),
        ),
        code::HOLD_TIMER_EXPIRED => ("Hold Timer Expired", sub(&["Unspecific"])),
        code::FSM => (
            "Finite State Machine Error",
            sub(&[
                "Unspecified",
                "Unexpected Message in OpenSent",
                "Unexpected Message in OpenConfirm",
                "Unexpected Message in Established",
            ]),
        ),
        code::CEASE => (
            "Cease",
            sub(&[
                "Unspecific",
                "Maximum Number of Prefixes Reached",
                "Administrative Shutdown",
                "Peer De-configured",
                "Administrative Reset",
                "Connection Rejected",
                "Other Configuration Change",
                "Connection Collision Resolution",
                "Out of Resources",
                "Hard Reset",
            ]),
        ),
        code::ROUTE_REFRESH => (
            "ROUTE-REFRESH Message Error",
            sub(&["Reserved", "Invalid Message Length"]),
        ),
        _ => ("Unknown Error", format!("subcode {subcode}")),
    }
}

/// A ROUTE-REFRESH message (RFC 2918; subtype from RFC 7313).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    /// The family to re-send.
    pub family: Family,
    /// 0 = normal request (RFC 7313 adds 1 = BoRR, 2 = EoRR).
    pub subtype: u8,
}

impl RouteRefresh {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.family.afi.to_be_bytes());
        out.push(self.subtype);
        out.push(self.family.safi);
    }

    pub(crate) fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        match (r.u16(), r.u8(), r.u8(), r.is_empty()) {
            (Some(afi), Some(subtype), Some(safi), true) => Ok(RouteRefresh {
                family: Family { afi, safi },
                subtype,
            }),
            _ => Err(DecodeError::new(
                code::ROUTE_REFRESH,
                1,
                body.to_vec(),
                "ROUTE-REFRESH of invalid length",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Context, Message, decode};
    use super::*;

    /// RFC 4486 §4: AFI (2 octets), SAFI (1), the upper bound (4).
    #[test]
    fn max_prefixes_carries_afi_safi_and_limit() {
        let n = Notification::max_prefixes(crate::Family::IPV6_UNICAST, 10_000);
        assert_eq!((n.code, n.subcode), (6, 1));
        assert_eq!(n.data, vec![0, 2, 1, 0, 0, 0x27, 0x10]);
        assert_eq!(n.describe(), "Cease/Maximum Number of Prefixes Reached");
    }

    #[test]
    fn shutdown_communication_is_read_only_when_well_formed() {
        let n = Notification::administrative_shutdown("maintenance — back at 10:00");
        assert_eq!(
            n.shutdown_communication(),
            Some("maintenance — back at 10:00")
        );
        let mut wrong_length = n.clone();
        wrong_length.data[0] += 1;
        assert_eq!(wrong_length.shutdown_communication(), None);
        let not_utf8 = Notification {
            data: vec![2, 0xff, 0xfe],
            ..n.clone()
        };
        assert_eq!(not_utf8.shutdown_communication(), None);
        assert_eq!(Notification::cease(2).shutdown_communication(), None);
        let other = Notification {
            subcode: cease_sub::PEER_DECONFIGURED,
            ..n
        };
        assert_eq!(other.shutdown_communication(), None);
    }

    fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        v.push(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn notification_vector_both_ways() {
        let n = Notification::administrative_shutdown("bye");
        let bytes = framed(3, &[6, 2, 3, b'b', b'y', b'e']);
        assert_eq!(
            Message::Notification(n.clone()).to_bytes(&Context::default()),
            bytes
        );
        assert_eq!(
            decode(&bytes, &Context::default()).unwrap(),
            Message::Notification(n.clone())
        );
        assert_eq!(n.describe(), "Cease/Administrative Shutdown");
        let hold = Notification {
            code: 4,
            subcode: 0,
            data: vec![],
        };
        assert_eq!(hold.describe(), "Hold Timer Expired/Unspecific");
    }

    #[test]
    fn shutdown_communication_is_capped_at_255_octets() {
        let long = "é".repeat(200);
        let n = Notification::administrative_shutdown(&long);
        assert_eq!(n.data[0] as usize, n.data.len() - 1);
        assert!(n.data.len() - 1 <= 255);
        assert!(std::str::from_utf8(&n.data[1..]).is_ok());
    }

    #[test]
    fn route_refresh_vector_both_ways() {
        let rr = RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: 0,
        };
        let bytes = framed(5, &[0, 2, 0, 1]);
        assert_eq!(
            Message::RouteRefresh(rr).to_bytes(&Context::default()),
            bytes
        );
        assert_eq!(
            decode(&bytes, &Context::default()).unwrap(),
            Message::RouteRefresh(rr)
        );
    }
}
