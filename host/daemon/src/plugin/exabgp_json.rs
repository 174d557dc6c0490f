//! Recorded feeds for `wasmbgp plugin test --events`: the JSON lines of ExaBGP 4's API
//! encoder (`"exabgp": "4.0.1"`), as ExaBGP's `api { receive { parsed; update; } }`
//! writes them to its processes and as the `exabgp-json` exporter appends them to a
//! file. A feed recorded from a running ExaBGP or wasmbgp replays into any exporter.
//!
//! Read: `state` (up, down, connected), `update` (announce and withdraw of IPv4 and
//! IPv6 unicast, with ExaBGP's attributes; `eor`) and `notification`. Other lines
//! (`open`, `keepalive`, `refresh`, `negotiated`, FlowSpec) have no event of their own
//! here and are skipped.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;
use wasmbgp_bgp::Family;
use wasmbgp_bgp::packet::attributes::{
    Aggregator, AsPath, AsSegment, ExtendedCommunity, LargeCommunity, NextHop, Origin,
    PathAttributes, SegmentKind,
};
use wasmbgp_bgp::packet::notification::Notification;
use wasmbgp_bgp::words;
use wasmbgp_runtime::export::{
    ExportEvent, MessageDirection, RouteDirection, RouteEvent, Session, SessionState,
};

/// Reads the events of one line; `Ok(None)` for a line with no event of its own.
/// `states` remembers each session's last state (the `old` of the next change).
pub fn parse_line(
    line: &str,
    states: &mut Vec<(IpAddr, SessionState)>,
) -> Result<Vec<ExportEvent>, String> {
    let json: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if json.get("exabgp").is_none() {
        return Err("not an ExaBGP JSON line (no \"exabgp\" key)".into());
    }
    let neighbor = &json["neighbor"];
    let session = session(neighbor)?;
    let kind = json["type"].as_str().unwrap_or_default();
    match kind {
        "state" => {
            let (new, reason) = match neighbor["state"].as_str() {
                Some("up") => (SessionState::Established, String::new()),
                Some("connected") => (SessionState::OpenSent, String::new()),
                Some("down") => (
                    SessionState::Idle,
                    neighbor["reason"].as_str().unwrap_or_default().to_string(),
                ),
                other => return Err(format!("unknown state {other:?}")),
            };
            let old = match states.iter_mut().find(|(a, _)| *a == session.neighbor) {
                Some((_, state)) => std::mem::replace(state, new),
                None => {
                    states.push((session.neighbor, new));
                    SessionState::Idle
                }
            };
            Ok(vec![ExportEvent::Session {
                session,
                old,
                new,
                reason,
            }])
        }
        "update" => update(session, neighbor),
        "notification" => {
            let n = &neighbor["notification"];
            let number = |key: &str| {
                n[key]
                    .as_u64()
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or_else(|| format!("notification without a {key}"))
            };
            let data = n["data"].as_str().unwrap_or_default();
            let data = hex(data.trim_start_matches("0x"))?;
            let notification = Notification {
                code: number("code")?,
                subcode: number("subcode")?,
                data,
            };
            let direction = match neighbor["direction"].as_str() {
                Some("send") => MessageDirection::Sent,
                _ => MessageDirection::Received,
            };
            Ok(vec![ExportEvent::Notification {
                session,
                direction,
                code: notification.code,
                subcode: notification.subcode,
                description: notification.describe(),
                data: notification.data,
            }])
        }
        _ => Ok(Vec::new()),
    }
}

fn session(neighbor: &Value) -> Result<Session, String> {
    let peer = neighbor["address"]["peer"]
        .as_str()
        .ok_or("no neighbor.address.peer")?;
    let asn = |key: &str| {
        neighbor["asn"][key]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("no neighbor.asn.{key}"))
    };
    Ok(Session {
        neighbor: peer
            .parse()
            .map_err(|_| format!("{peer:?} is not an IP address"))?,
        peer_as: asn("peer")?,
        local_as: asn("local")?,
    })
}

fn update(session: Session, neighbor: &Value) -> Result<Vec<ExportEvent>, String> {
    let direction = match neighbor["direction"].as_str() {
        Some("send") => RouteDirection::Sent,
        _ => RouteDirection::Received,
    };
    let message = &neighbor["message"];
    if let Some(eor) = message.get("eor") {
        let family: Family = format!(
            "{}-{}",
            eor["afi"].as_str().unwrap_or_default(),
            eor["safi"].as_str().unwrap_or_default()
        )
        .parse()?;
        return Ok(vec![ExportEvent::EndOfRib {
            session,
            afi: family.afi,
            safi: family.safi,
        }]);
    }
    let update = &message["update"];
    let attrs = attributes(&update["attribute"])?;
    let mut event = RouteEvent {
        session,
        direction,
        announced: Vec::new(),
        withdrawn: Vec::new(),
    };
    if let Some(families) = update["withdraw"].as_object() {
        for (family, list) in families.iter().filter(|(f, _)| unicast(f)) {
            for entry in list
                .as_array()
                .ok_or(format!("withdraw {family}: not a list"))?
            {
                event.withdrawn.push(nlri(entry)?);
            }
        }
    }
    if let Some(families) = update["announce"].as_object() {
        for (family, by_next_hop) in families.iter().filter(|(f, _)| unicast(f)) {
            let by_next_hop = by_next_hop
                .as_object()
                .ok_or(format!("announce {family}: not an object"))?;
            for (next_hop, list) in by_next_hop {
                let mut attrs = attrs.clone();
                attrs.next_hop =
                    Some(NextHop::Addr(next_hop.parse().map_err(|_| {
                        format!("next hop {next_hop:?} is not an address")
                    })?));
                let attrs = Arc::new(attrs);
                for entry in list
                    .as_array()
                    .ok_or(format!("announce {family}: not a list"))?
                {
                    event.announced.push((nlri(entry)?, attrs.clone()));
                }
            }
        }
    }
    Ok(vec![ExportEvent::Routes(event)])
}

fn unicast(family: &str) -> bool {
    matches!(family, "ipv4 unicast" | "ipv6 unicast")
}

fn nlri(entry: &Value) -> Result<wasmbgp_bgp::Prefix, String> {
    let text = entry["nlri"].as_str().ok_or("an entry without \"nlri\"")?;
    words::parse_prefix(text)
}

/// ExaBGP's attribute object, as `exabgp-json` writes it.
fn attributes(json: &Value) -> Result<PathAttributes, String> {
    let mut attrs = PathAttributes::default();
    if json.is_null() {
        return Ok(attrs);
    }
    if let Some(origin) = json["origin"].as_str() {
        attrs.origin = match origin {
            "igp" => Origin::Igp,
            "egp" => Origin::Egp,
            _ => Origin::Incomplete,
        };
    }
    let mut segments = Vec::new();
    for (key, kind) in [
        ("confederation-path", SegmentKind::ConfedSequence),
        ("confederation-set", SegmentKind::ConfedSet),
        ("as-path", SegmentKind::Sequence),
        ("as-set", SegmentKind::Set),
    ] {
        let asns = u32s(&json[key], key)?;
        if !asns.is_empty() {
            segments.push(AsSegment { kind, asns });
        }
    }
    attrs.as_path = AsPath { segments };
    attrs.med = opt_u32(&json["med"], "med")?;
    attrs.local_pref = opt_u32(&json["local-preference"], "local-preference")?;
    attrs.atomic_aggregate = json.get("atomic-aggregate").is_some();
    if let Some(aggregator) = json["aggregator"].as_str() {
        let (asn, address) = aggregator
            .split_once(':')
            .ok_or(format!("aggregator {aggregator:?}"))?;
        attrs.aggregator = Some(Aggregator {
            asn: asn
                .parse()
                .map_err(|_| format!("aggregator {aggregator:?}"))?,
            address: address
                .parse()
                .map_err(|_| format!("aggregator {aggregator:?}"))?,
        });
    }
    for pair in json["community"].as_array().into_iter().flatten() {
        let [high, low] = u32s(pair, "community")?[..] else {
            return Err(format!("community {pair}"));
        };
        attrs.communities.push((high << 16) | (low & 0xffff));
    }
    for triple in json["large-community"].as_array().into_iter().flatten() {
        let [a, b, c] = u32s(triple, "large-community")?[..] else {
            return Err(format!("large-community {triple}"));
        };
        attrs.large_communities.push(LargeCommunity([a, b, c]));
    }
    for community in json["extended-community"].as_array().into_iter().flatten() {
        let value = community["value"]
            .as_u64()
            .ok_or(format!("extended-community {community}"))?;
        attrs
            .extended_communities
            .push(ExtendedCommunity(value.to_be_bytes()));
    }
    Ok(attrs)
}

fn u32s(json: &Value, key: &str) -> Result<Vec<u32>, String> {
    json.as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("{key}: {v} is not a 32-bit number"))
        })
        .collect()
}

fn opt_u32(json: &Value, key: &str) -> Result<Option<u32>, String> {
    match json {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{key}: {v} is not a 32-bit number")),
    }
}

fn hex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return Err(format!("notification data {text:?} is not hex"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .map_err(|_| format!("notification data {text:?} is not hex"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines ExaBGP 4.2.21's own encoder printed (the exabgp-json plugin's reference).
    const REFERENCE: &str =
        include_str!("../../../../plugins/exabgp-json/reference/exabgp-4.2.21.jsonl");

    #[test]
    fn exabgp_s_own_lines_are_read() {
        let mut states = Vec::new();
        let mut events = Vec::new();
        for (i, line) in REFERENCE.lines().enumerate() {
            events.extend(
                parse_line(line, &mut states).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)),
            );
        }
        assert!(matches!(
            &events[0],
            ExportEvent::Session {
                new: SessionState::Established,
                old: SessionState::Idle,
                ..
            }
        ));
        assert!(matches!(
            &events[2],
            ExportEvent::Session { new: SessionState::Idle, old: SessionState::OpenSent, reason, .. }
                if reason.starts_with("peer reset")
        ));
        let ExportEvent::Routes(update) = &events[3] else {
            panic!("{:?}", events[3]);
        };
        assert_eq!(update.direction, RouteDirection::Received);
        let prefixes: Vec<String> = update
            .announced
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(prefixes, ["10.0.0.0/24", "10.0.1.0/24", "2001:db8::/32"]);
        let withdrawn: Vec<String> = update.withdrawn.iter().map(|p| p.to_string()).collect();
        assert_eq!(withdrawn, ["10.9.0.0/16", "2001:db8:1::/48"]);
        let attrs = &update.announced[0].1;
        assert_eq!(attrs.as_path.asns().collect::<Vec<_>>(), [65001, 65002]);
        assert_eq!((attrs.med, attrs.local_pref), (Some(5), Some(100)));
        assert_eq!(attrs.communities, [(65001 << 16) | 1, 0xffff_ff01]);
        assert_eq!(attrs.large_communities, [LargeCommunity([65001, 1, 2])]);
        assert_eq!(attrs.extended_communities[0].to_string(), "target:65001:7");
        assert_eq!(
            attrs.next_hop,
            Some(NextHop::Addr("192.0.2.1".parse().unwrap()))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ExportEvent::EndOfRib { .. }))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ExportEvent::Notification { .. }))
        );
    }

    #[test]
    fn other_text_is_refused() {
        let mut states = Vec::new();
        assert!(parse_line("{\"type\": \"state\"}", &mut states).is_err());
        assert!(parse_line("state established", &mut states).is_err());
    }
}
