//! The alerts and their JSON.

use std::fmt::Write;

/// One alert, ready to be posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    /// A session left established.
    SessionDown {
        neighbor: String,
        peer_as: u32,
        old: String,
        new: String,
        reason: String,
        time_ms: u64,
    },
    /// A session reached established (only with `session-up = true`).
    SessionUp {
        neighbor: String,
        peer_as: u32,
        old: String,
        new: String,
        reason: String,
        time_ms: u64,
    },
    /// A NOTIFICATION was received (or, with `sent-notifications = true`, sent).
    Notification {
        neighbor: String,
        peer_as: u32,
        direction: String,
        code: u8,
        subcode: u8,
        description: String,
        time_ms: u64,
    },
}

/// Appends `text` as a JSON string (RFC 8259 escapes).
fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Alert {
    /// The `event` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Alert::SessionDown { .. } => "session-down",
            Alert::SessionUp { .. } => "session-up",
            Alert::Notification { .. } => "notification",
        }
    }

    /// A one-line summary for the log.
    pub fn summary(&self) -> String {
        match self {
            Alert::SessionDown {
                neighbor, reason, ..
            }
            | Alert::SessionUp {
                neighbor, reason, ..
            } => {
                format!("{} {neighbor} ({reason})", self.kind())
            }
            Alert::Notification {
                neighbor,
                direction,
                description,
                ..
            } => {
                format!("notification {direction} {neighbor} ({description})")
            }
        }
    }

    /// The JSON body: one object, keys in a fixed order.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("{\"event\":");
        string(&mut out, self.kind());
        match self {
            Alert::SessionDown {
                neighbor,
                peer_as,
                old,
                new,
                reason,
                time_ms,
            }
            | Alert::SessionUp {
                neighbor,
                peer_as,
                old,
                new,
                reason,
                time_ms,
            } => {
                out.push_str(",\"neighbor\":");
                string(&mut out, neighbor);
                let _ = write!(out, ",\"peer_as\":{peer_as},\"old\":");
                string(&mut out, old);
                out.push_str(",\"new\":");
                string(&mut out, new);
                out.push_str(",\"reason\":");
                string(&mut out, reason);
                let _ = write!(out, ",\"time\":{time_ms}");
            }
            Alert::Notification {
                neighbor,
                peer_as,
                direction,
                code,
                subcode,
                description,
                time_ms,
            } => {
                out.push_str(",\"neighbor\":");
                string(&mut out, neighbor);
                let _ = write!(out, ",\"peer_as\":{peer_as},\"direction\":");
                string(&mut out, direction);
                let _ = write!(
                    out,
                    ",\"code\":{code},\"subcode\":{subcode},\"description\":"
                );
                string(&mut out, description);
                let _ = write!(out, ",\"time\":{time_ms}");
            }
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_down_json() {
        let alert = Alert::SessionDown {
            neighbor: "192.0.2.1".into(),
            peer_as: 65001,
            old: "established".into(),
            new: "idle".into(),
            reason: "hold timer expired \"x\"\n\u{1}".into(),
            time_ms: 1700000000123,
        };
        assert_eq!(
            alert.to_json(),
            r#"{"event":"session-down","neighbor":"192.0.2.1","peer_as":65001,"old":"established","new":"idle","reason":"hold timer expired \"x\"\n\u0001","time":1700000000123}"#
        );
        assert_eq!(
            alert.summary(),
            "session-down 192.0.2.1 (hold timer expired \"x\"\n\u{1})"
        );
    }

    #[test]
    fn notification_json() {
        let alert = Alert::Notification {
            neighbor: "2001:db8::1".into(),
            peer_as: 4200000000,
            direction: "received".into(),
            code: 6,
            subcode: 2,
            description: "Cease/Administrative Shutdown: bye".into(),
            time_ms: 5,
        };
        assert_eq!(
            alert.to_json(),
            r#"{"event":"notification","neighbor":"2001:db8::1","peer_as":4200000000,"direction":"received","code":6,"subcode":2,"description":"Cease/Administrative Shutdown: bye","time":5}"#
        );
    }
}
