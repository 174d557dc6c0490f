//! A connection's bytes as messages: framing and decoding in one place, with the context
//! the session negotiated.
//!
//! The context (the ASN width of AS_PATH) is known only once the session has accepted
//! the peer's OPEN. A peer sends UPDATEs only after our KEEPALIVE, which follows that
//! acceptance, so the reader stops after the first OPEN ([`MessageReader::awaits_context`])
//! and goes on once it is given the context ([`MessageReader::negotiated`]): every message
//! is decoded once, with the right context, where it is read.

use super::{Context, DecodeError, Message, decode, frame_len};

/// Cuts a peer's byte stream into messages and decodes each (see the module's
/// documentation). Pure: the caller owns the buffer and the socket.
#[derive(Debug, Clone, Default)]
pub struct MessageReader {
    context: Context,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Decoding with the default context until the peer's OPEN.
    #[default]
    BeforeOpen,
    /// The OPEN went out to the session; nothing more until its context comes back.
    AwaitingContext,
    /// Decoding with the negotiated context.
    Negotiated,
    /// A message failed to decode: the session ends the connection, nothing after it
    /// means anything.
    Failed,
}

impl MessageReader {
    /// A reader for a new connection.
    pub fn new() -> Self {
        MessageReader::default()
    }

    /// Decodes the message at the front of `buf`: `Some(Ok((len, message)))` took `len`
    /// octets; `Some(Err(_))` is the error the session answers (a broken header or
    /// body), after which the reader returns `None` for good; `None` when `buf` holds
    /// no whole message yet, or while the reader awaits the context.
    pub fn next(&mut self, buf: &[u8]) -> Option<Result<(usize, Message), DecodeError>> {
        if matches!(self.phase, Phase::AwaitingContext | Phase::Failed) {
            return None;
        }
        let len = match frame_len(buf) {
            Ok(Some(len)) if len <= buf.len() => len,
            Ok(_) => return None,
            Err(e) => {
                self.phase = Phase::Failed;
                return Some(Err(e));
            }
        };
        match decode(&buf[..len], &self.context) {
            Ok(message) => {
                if self.phase == Phase::BeforeOpen && matches!(message, Message::Open(_)) {
                    self.phase = Phase::AwaitingContext;
                }
                Some(Ok((len, message)))
            }
            Err(e) => {
                self.phase = Phase::Failed;
                Some(Err(e))
            }
        }
    }

    /// True after the peer's OPEN until [`MessageReader::negotiated`].
    pub fn awaits_context(&self) -> bool {
        self.phase == Phase::AwaitingContext
    }

    /// The session accepted the OPEN with this context: decoding goes on with it.
    pub fn negotiated(&mut self, context: Context) {
        if self.phase == Phase::AwaitingContext {
            self.context = context;
            self.phase = Phase::Negotiated;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::attributes::{AsPath, NextHop};
    use crate::packet::prefix::Ipv4Prefix;
    use crate::packet::{Notification, Open, Update};

    fn two_octet() -> Context {
        Context {
            four_octet_as: false,
        }
    }

    fn open() -> Message {
        Message::Open(Open {
            asn: 65001,
            hold_time: 90,
            bgp_id: "192.0.2.9".parse().unwrap(),
            capabilities: Vec::new(),
        })
    }

    /// An UPDATE whose AS_PATH holds one 2-octet ASN: decoded with 4-octet ASNs, its
    /// path segment is too short (a malformed AS_PATH, treat-as-withdraw).
    fn update_2_octet() -> Vec<u8> {
        let mut u = Update::default();
        u.attributes.as_path = AsPath::from_sequence(vec![64512]);
        u.attributes.next_hop = Some(NextHop::Addr("192.0.2.1".parse().unwrap()));
        u.nlri = vec![Ipv4Prefix::new("10.0.0.0".parse().unwrap(), 8).unwrap()];
        Message::Update(u).to_bytes(&two_octet())
    }

    fn all(reader: &mut MessageReader, buf: &[u8]) -> (usize, Vec<Result<Message, DecodeError>>) {
        let mut at = 0;
        let mut out = Vec::new();
        for _ in 0..100 {
            match reader.next(&buf[at..]) {
                Some(Ok((len, m))) => {
                    at += len;
                    out.push(Ok(m));
                }
                Some(Err(e)) => out.push(Err(e)),
                None => break,
            }
        }
        (at, out)
    }

    #[test]
    fn stops_after_the_open_until_the_context_comes() {
        let ctx = Context::default();
        let mut wire = open().to_bytes(&ctx);
        wire.extend(Message::Keepalive.to_bytes(&ctx));
        wire.extend(update_2_octet());
        let mut r = MessageReader::new();
        let (used, got) = all(&mut r, &wire);
        assert_eq!(got, vec![Ok(open())]);
        assert!(r.awaits_context());
        // The rest is decoded with the negotiated 2-octet context.
        r.negotiated(two_octet());
        assert!(!r.awaits_context());
        let (_, got) = all(&mut r, &wire[used..]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(Message::Keepalive));
        let Ok(Message::Update(u)) = &got[1] else {
            panic!("{:?}", got[1])
        };
        assert_eq!(u.treat_as_withdraw, None, "decoded with 2-octet ASNs");
        assert_eq!(u.attributes.as_path, AsPath::from_sequence(vec![64512]));
    }

    #[test]
    fn waits_for_whole_messages() {
        let wire = Message::Keepalive.to_bytes(&Context::default());
        let mut r = MessageReader::new();
        assert_eq!(r.next(&wire[..10]), None);
        assert_eq!(r.next(&wire), Some(Ok((19, Message::Keepalive))));
        assert_eq!(r.next(&[]), None);
    }

    #[test]
    fn nothing_after_an_error() {
        let ctx = Context::default();
        // A broken marker, then a good message: the error, then nothing.
        let mut wire = vec![0u8; 19];
        wire.extend(Message::Keepalive.to_bytes(&ctx));
        let mut r = MessageReader::new();
        let err = r.next(&wire).unwrap().unwrap_err();
        assert_eq!((err.notification.code, err.notification.subcode), (1, 1));
        assert_eq!(r.next(&wire[19..]), None);
        // A body error (a bad OPEN version) ends it the same way.
        let mut bad_open = open().to_bytes(&ctx);
        bad_open[19] = 3;
        let mut r = MessageReader::new();
        let err = r.next(&bad_open).unwrap().unwrap_err();
        assert_eq!(err.notification.code, 2);
        assert_eq!(r.next(&Message::Keepalive.to_bytes(&ctx)), None);
    }

    #[test]
    fn a_notification_before_the_open_is_read() {
        let n = Message::Notification(Notification::cease(2));
        let mut r = MessageReader::new();
        let wire = n.to_bytes(&Context::default());
        assert_eq!(r.next(&wire), Some(Ok((wire.len(), n))));
        assert!(!r.awaits_context());
    }
}
