//! The event files `wasmbgp plugin test` feeds an exporter: one event per line, the
//! session set by a `neighbor` line and kept for the lines after it; route lines in
//! ExaBGP's route words, as in a route file.
//!
//! ```text
//! # a comment
//! neighbor 127.0.0.2 peer-as 65001 local-as 65000
//! state established
//! received announce 10.0.0.0/24 next-hop 192.0.2.1 as-path [ 65001 ]
//! received-pre-policy announce 10.0.1.0/24 next-hop 192.0.2.1
//! sent announce 198.51.100.0/24 next-hop 127.0.0.1
//! received withdraw 10.0.0.0/24
//! end-of-rib ipv4-unicast
//! notification received 6 2
//! state idle hold timer expired
//! ```
//!
//! A line that starts with `{` is a line of a recorded ExaBGP JSON feed instead (ExaBGP's
//! API encoder, or the `exabgp-json` exporter's file: see `exabgp_json`), so a feed
//! recorded from a running ExaBGP or wasmbgp replays as it is.

use std::sync::Arc;

use wasmbgp_bgp::Family;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::packet::notification::Notification;
use wasmbgp_bgp::words;
use wasmbgp_runtime::export::{
    ExportEvent, MessageDirection, RouteDirection, RouteEvent, Session, SessionState,
};

/// The events of a file, in order; `Err((line, why))` at the first bad line.
pub fn parse(text: &str) -> Result<Vec<ExportEvent>, (usize, String)> {
    let mut session: Option<Session> = None;
    let mut state = SessionState::Idle;
    let mut events = Vec::new();
    let defaults = PathAttributes::default();
    let mut json_states = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let at = |e: String| (i + 1, e);
        // A line of a recorded ExaBGP JSON feed (see `exabgp_json`).
        if raw.trim_start().starts_with('{') {
            events.extend(super::exabgp_json::parse_line(raw, &mut json_states).map_err(at)?);
            continue;
        }
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let tokens = words::tokenize(line);
        let (first, rest) = tokens.split_first().expect("a non-empty line has a word");
        if first == "neighbor" {
            session = Some(parse_session(rest).map_err(at)?);
            state = SessionState::Idle;
            continue;
        }
        let session = session.ok_or_else(|| {
            at("no session yet: start with `neighbor ADDRESS peer-as N local-as N`".into())
        })?;
        let event = match first.as_str() {
            "state" => {
                let (name, reason) = rest.split_first().ok_or_else(|| {
                    at(
                        "state what? (idle, connect, active, opensent, openconfirm, established)"
                            .into(),
                    )
                })?;
                let new = parse_state(name).map_err(at)?;
                let old = std::mem::replace(&mut state, new);
                ExportEvent::Session {
                    session,
                    old,
                    new,
                    reason: reason.join(" "),
                }
            }
            "received" | "received-pre-policy" | "sent" => {
                let direction = match first.as_str() {
                    "received" => RouteDirection::Received,
                    "received-pre-policy" => RouteDirection::ReceivedPrePolicy,
                    _ => RouteDirection::Sent,
                };
                let (verb, route) = rest.split_first().ok_or_else(|| {
                    at(format!("{first} what? (announce ROUTE, withdraw PREFIX)"))
                })?;
                let mut event = RouteEvent {
                    session,
                    direction,
                    announced: Vec::new(),
                    withdrawn: Vec::new(),
                };
                match verb.as_str() {
                    "announce" => {
                        let spec = words::parse_route(route, &defaults).map_err(at)?;
                        event.announced.push((spec.prefix, Arc::new(spec.attrs)));
                    }
                    "withdraw" => match route {
                        [prefix] => event
                            .withdrawn
                            .push(words::parse_prefix(prefix).map_err(at)?),
                        _ => return Err(at("withdraw takes one prefix".into())),
                    },
                    other => {
                        return Err(at(format!(
                            "{first} {other}? (announce ROUTE, withdraw PREFIX)"
                        )));
                    }
                }
                ExportEvent::Routes(event)
            }
            "end-of-rib" => {
                let family: Family = match rest {
                    [family] => family.parse().map_err(at)?,
                    _ => return Err(at("end-of-rib takes a family (ipv4-unicast...)".into())),
                };
                ExportEvent::EndOfRib {
                    session,
                    afi: family.afi,
                    safi: family.safi,
                }
            }
            "notification" => {
                let [direction, code, subcode] = rest else {
                    return Err(at("notification takes sent|received CODE SUBCODE".into()));
                };
                let direction = match direction.as_str() {
                    "sent" => MessageDirection::Sent,
                    "received" => MessageDirection::Received,
                    other => return Err(at(format!("notification {other}? (sent, received)"))),
                };
                let number = |v: &str| {
                    v.parse::<u8>()
                        .map_err(|_| at(format!("{v} is not a code (0-255)")))
                };
                let notification = Notification {
                    code: number(code)?,
                    subcode: number(subcode)?,
                    data: Vec::new(),
                };
                ExportEvent::Notification {
                    session,
                    direction,
                    code: notification.code,
                    subcode: notification.subcode,
                    description: notification.describe(),
                    data: notification.data,
                }
            }
            other => {
                return Err(at(format!(
                    "unknown event {other:?} (neighbor, state, received, received-pre-policy, sent, end-of-rib, notification)"
                )));
            }
        };
        events.push(event);
    }
    Ok(events)
}

fn parse_session(words: &[String]) -> Result<Session, String> {
    let [address, k1, v1, k2, v2] = words else {
        return Err("neighbor ADDRESS peer-as N local-as N".into());
    };
    if k1 != "peer-as" || k2 != "local-as" {
        return Err("neighbor ADDRESS peer-as N local-as N".into());
    }
    Ok(Session {
        neighbor: address
            .parse()
            .map_err(|_| format!("{address} is not an IP address"))?,
        peer_as: words::parse_asn(v1)?,
        local_as: words::parse_asn(v2)?,
    })
}

fn parse_state(name: &str) -> Result<SessionState, String> {
    Ok(match name {
        "idle" => SessionState::Idle,
        "connect" => SessionState::Connect,
        "active" => SessionState::Active,
        "opensent" => SessionState::OpenSent,
        "openconfirm" => SessionState::OpenConfirm,
        "established" => SessionState::Established,
        other => {
            return Err(format!(
                "unknown state {other:?} (idle, connect, active, opensent, openconfirm, established)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_every_kind_of_line() {
        let text = "# header\n\
            neighbor 127.0.0.2 peer-as 65001 local-as 65000\n\
            state established\n\
            received announce 10.0.0.0/24 next-hop 192.0.2.1 as-path [ 65001 ]\n\
            received-pre-policy announce 10.0.1.0/24 next-hop 192.0.2.1\n\
            sent withdraw 198.51.100.0/24\n\
            end-of-rib ipv6-unicast\n\
            notification received 6 2\n\
            state idle hold timer expired # why\n";
        let events = parse(text).unwrap();
        assert_eq!(events.len(), 7);
        match &events[0] {
            ExportEvent::Session { old, new, .. } => {
                assert_eq!(
                    (*old, *new),
                    (SessionState::Idle, SessionState::Established)
                );
            }
            e => panic!("{e:?}"),
        }
        match &events[1] {
            ExportEvent::Routes(r) => {
                assert_eq!(r.direction, RouteDirection::Received);
                assert_eq!(r.announced[0].0.to_string(), "10.0.0.0/24");
                assert_eq!(r.announced[0].1.as_path.asns().collect::<Vec<_>>(), [65001]);
            }
            e => panic!("{e:?}"),
        }
        match &events[6] {
            ExportEvent::Session { old, reason, .. } => {
                assert_eq!(*old, SessionState::Established);
                assert_eq!(reason, "hold timer expired");
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            &events[5],
            ExportEvent::Notification { code: 6, subcode: 2, description, .. } if description.starts_with("Cease")
        ));
    }

    #[test]
    fn errors_name_their_line() {
        assert_eq!(parse("state established").unwrap_err().0, 1);
        let e = parse("neighbor 127.0.0.2 peer-as 1 local-as 2\n\nreceived announce 10.0.0.0/33")
            .unwrap_err();
        assert_eq!(e.0, 3);
        assert!(parse("neighbor 127.0.0.2 peer-as 1 local-as 2\nbogus").is_err());
    }
}
