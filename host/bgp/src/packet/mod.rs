//! Where bytes become BGP messages and back.
//!
//! Decoding never panics: every malformed input maps to the NOTIFICATION that RFC 4271 §6
//! prescribes ([`DecodeError`]), or, for UPDATE attribute errors, to the RFC 7606 outcome
//! (treat-as-withdraw or attribute discard, recorded on the decoded [`Update`]).

pub mod attributes;
pub mod flowspec;
pub mod notification;
pub mod open;
pub mod prefix;
pub mod stream;
pub mod update;

pub use notification::{Notification, RouteRefresh};
pub use open::{Capability, GracefulRestart, Open};
pub use stream::MessageReader;
pub use update::{MpNlri, MpReach, MpUnreach, Update, UpdatePacker};

use std::fmt;

/// Length of the fixed header: marker (16), length (2), type (1).
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended-message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Message type codes (RFC 4271 §4.1, RFC 2918).
pub mod msg_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// A decoded BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN (RFC 4271 §4.2).
    Open(Open),
    /// UPDATE (RFC 4271 §4.3).
    Update(Update),
    /// NOTIFICATION (RFC 4271 §4.5).
    Notification(Notification),
    /// KEEPALIVE (RFC 4271 §4.4).
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918).
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// Short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Open(_) => "open",
            Message::Update(_) => "update",
            Message::Notification(_) => "notification",
            Message::Keepalive => "keepalive",
            Message::RouteRefresh(_) => "route-refresh",
        }
    }

    /// Appends the whole message, header included.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) {
        let start = begin_message(out);
        let kind = match self {
            Message::Open(m) => {
                m.encode_body(out);
                msg_type::OPEN
            }
            Message::Update(m) => {
                m.encode_body(ctx, out);
                msg_type::UPDATE
            }
            Message::Notification(m) => {
                m.encode_body(out);
                msg_type::NOTIFICATION
            }
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(m) => {
                m.encode_body(out);
                msg_type::ROUTE_REFRESH
            }
        };
        finish_message(out, start, kind);
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, ctx: &Context) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(ctx, &mut out);
        out
    }
}

/// What the two ends negotiated that changes the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Both ends announced the 4-octet AS capability (RFC 6793): AS_PATH carries 4-octet ASNs.
    pub four_octet_as: bool,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            four_octet_as: true,
        }
    }
}

/// Writes a header with a placeholder length and type; returns where the message starts.
pub(crate) fn begin_message(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, 0]);
    start
}

/// Fills in the length and type of the message begun at `start`.
pub(crate) fn finish_message(out: &mut [u8], start: usize, kind: u8) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
    out[start + 18] = kind;
}

/// A protocol error found while decoding: the NOTIFICATION to send, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The NOTIFICATION to send to the peer.
    pub notification: Notification,
    /// A human-readable reason for logs.
    pub reason: String,
}

impl DecodeError {
    /// Builds an error with the given NOTIFICATION code, subcode and data.
    pub fn new(code: u8, subcode: u8, data: impl Into<Vec<u8>>, reason: impl Into<String>) -> Self {
        DecodeError {
            notification: Notification {
                code,
                subcode,
                data: data.into(),
            },
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.notification.describe())
    }
}

impl std::error::Error for DecodeError {}

/// Checks the header at the front of `buf`. Returns the whole message's length once the
/// header is complete (`None` while fewer than 19 octets have arrived).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    use notification::{code, header_sub};
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::new(
            code::MESSAGE_HEADER,
            header_sub::CONNECTION_NOT_SYNCHRONIZED,
            [],
            "marker is not all ones",
        ));
    }
    let len = u16::from_be_bytes([buf[16], buf[17]]) as usize;
    let kind = buf[18];
    let min = match kind {
        msg_type::OPEN => 29,
        msg_type::UPDATE => 23,
        msg_type::NOTIFICATION => 21,
        msg_type::KEEPALIVE => 19,
        msg_type::ROUTE_REFRESH => 23,
        _ => {
            return Err(DecodeError::new(
                code::MESSAGE_HEADER,
                header_sub::BAD_MESSAGE_TYPE,
                [kind],
                format!("unknown message type {kind}"),
            ));
        }
    };
    let bad_len = len < min
        || len > MAX_MESSAGE_LEN
        || (kind == msg_type::KEEPALIVE && len != HEADER_LEN)
        || (kind == msg_type::ROUTE_REFRESH && len != 23);
    if bad_len {
        return Err(DecodeError::new(
            code::MESSAGE_HEADER,
            header_sub::BAD_MESSAGE_LENGTH,
            (len as u16).to_be_bytes(),
            format!("bad length {len} for message type {kind}"),
        ));
    }
    Ok(Some(len))
}

/// Decodes one whole message (header included, as delimited by [`frame_len`]).
pub fn decode(msg: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
    let len = match frame_len(msg)? {
        Some(len) if len == msg.len() => len,
        _ => {
            return Err(DecodeError::new(
                notification::code::MESSAGE_HEADER,
                notification::header_sub::BAD_MESSAGE_LENGTH,
                [],
                "message length does not match its header",
            ));
        }
    };
    let body = &msg[HEADER_LEN..len];
    match msg[18] {
        msg_type::OPEN => Open::decode_body(body).map(Message::Open),
        msg_type::UPDATE => Update::decode_body(body, ctx).map(Message::Update),
        msg_type::NOTIFICATION => Ok(Message::Notification(Notification::decode_body(body))),
        msg_type::KEEPALIVE => Ok(Message::Keepalive),
        msg_type::ROUTE_REFRESH => RouteRefresh::decode_body(body).map(Message::RouteRefresh),
        // frame_len already refused every other type.
        other => Err(DecodeError::new(
            notification::code::MESSAGE_HEADER,
            notification::header_sub::BAD_MESSAGE_TYPE,
            [other],
            "unknown message type",
        )),
    }
}

/// A cursor over a byte slice whose reads fail instead of panicking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_both_ways() {
        let bytes = Message::Keepalive.to_bytes(&Context::default());
        let mut want = vec![0xff; 16];
        want.extend_from_slice(&[0, 19, 4]);
        assert_eq!(bytes, want);
        assert_eq!(
            decode(&bytes, &Context::default()).unwrap(),
            Message::Keepalive
        );
    }

    #[test]
    fn header_errors_map_to_rfc_notifications() {
        let mut bad_marker = vec![0xff; 16];
        bad_marker[3] = 0;
        bad_marker.extend_from_slice(&[0, 19, 4]);
        let e = frame_len(&bad_marker).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (1, 1));

        let mut bad_len = vec![0xff; 16];
        bad_len.extend_from_slice(&[0x10, 0x01, 2]);
        let e = frame_len(&bad_len).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (1, 2));
        assert_eq!(e.notification.data, vec![0x10, 0x01]);

        let mut long_keepalive = vec![0xff; 16];
        long_keepalive.extend_from_slice(&[0, 20, 4, 0]);
        assert_eq!(
            frame_len(&long_keepalive).unwrap_err().notification.subcode,
            2
        );

        let mut bad_type = vec![0xff; 16];
        bad_type.extend_from_slice(&[0, 19, 9]);
        let e = frame_len(&bad_type).unwrap_err();
        assert_eq!(
            (
                e.notification.code,
                e.notification.subcode,
                e.notification.data
            ),
            (1, 3, vec![9])
        );

        assert_eq!(frame_len(&[0xff; 10]).unwrap(), None);
    }
}
