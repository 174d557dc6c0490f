//! `exabgp-json`: writes ExaBGP 4's API JSON (encoder version 4.0.1, as
//! ExaBGP 4.2 prints it) for sessions, updates, End-of-RIB and
//! NOTIFICATIONs, one object per line, appended to a granted file, so that
//! consumers of ExaBGP's JSON keep working during a migration.
//!
//! Settings: `path` (required; the file, in `grants.append-files`), `host`
//! (the "host" field, default "wasmbgp"). See the README for what differs
//! from ExaBGP.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;

use wasmbgp_sdk::exporter::{
    EndOfRib, Event, Exporter, MessageDirection, Notification, RouteDirection, Routes, Session,
    SessionState, StateChange,
};
use wasmbgp_sdk::types::{Attributes, Origin, SegmentKind};
use wasmbgp_sdk::{
    Error, ExtendedCommunity, Prefix, Settings, clock, log, output, push_json_string,
};

/// The version of ExaBGP's JSON encoder written in the "exabgp" field.
pub const JSON_VERSION: &str = "4.0.1";

/// The encoder: everything but the file.
pub struct Encoder {
    host: String,
    /// Messages per neighbor, as ExaBGP's "counter".
    counters: HashMap<IpAddr, u64>,
}

impl Encoder {
    /// An encoder writing `host` in the "host" field.
    pub fn new(host: &str) -> Self {
        Encoder {
            host: host.to_string(),
            counters: HashMap::new(),
        }
    }

    /// Appends the line(s) of `event` at time `now_ms` to `out`.
    pub fn event(&mut self, out: &mut String, event: &Event<'_>, now_ms: u64) {
        match event {
            Event::Session(change) => self.state(out, change, now_ms),
            Event::Routes(routes) => self.routes(out, routes, now_ms),
            Event::EndOfRib(eor) => self.eor(out, eor, now_ms),
            Event::Notification(n) => self.notification(out, n, now_ms),
            // No ExaBGP equivalent.
            _ => {}
        }
    }

    /// `{ "exabgp": ..., "type": "TYPE", "neighbor": { address, asn` (the
    /// neighbor object left open).
    fn header(&mut self, out: &mut String, session: &Session, kind: &str, now_ms: u64) {
        let counter = self.counters.entry(session.neighbor.to_std()).or_insert(0);
        *counter += 1;
        let _ = write!(
            out,
            "{{ \"exabgp\": \"{JSON_VERSION}\", \"time\": {}.{:03}, \"host\" : ",
            now_ms / 1000,
            now_ms % 1000
        );
        push_json_string(out, &self.host);
        let _ = write!(
            out,
            ", \"pid\" : 0, \"ppid\" : 0, \"counter\": {counter}, \"type\": \"{kind}\", \"neighbor\": {{ \"address\": {{ \"local\": \"None\", \"peer\": \"{}\" }}, \"asn\": {{ \"local\": {}, \"peer\": {} }} ",
            session.neighbor, session.local_as, session.peer_as
        );
    }

    fn state(&mut self, out: &mut String, change: &StateChange, now_ms: u64) {
        use SessionState::*;
        let state = match (change.old, change.new) {
            (Established, Established) => "up", // a snapshot: it is up
            (_, Established) => "up",
            (Established, _) => "down",
            (Idle | Connect | Active, OpenSent) => "connected",
            _ => return,
        };
        self.header(out, &change.session, "state", now_ms);
        let _ = write!(out, ", \"state\": \"{state}\"");
        if state == "down" {
            // ExaBGP's own escaping of the reason, brackets to parentheses.
            let reason: String = change
                .reason
                .chars()
                .map(|c| match c {
                    '[' | '{' => '(',
                    ']' | '}' => ')',
                    c => c,
                })
                .collect();
            out.push_str(", \"reason\": ");
            push_json_string(out, &reason);
        }
        out.push_str(" } }\n");
    }

    fn eor(&mut self, out: &mut String, eor: &EndOfRib, now_ms: u64) {
        self.header(out, &eor.session, "update", now_ms);
        let afi = eor
            .family
            .afi_name()
            .map_or_else(|| eor.family.afi.to_string(), str::to_string);
        let safi = eor
            .family
            .safi_name()
            .map_or_else(|| eor.family.safi.to_string(), str::to_string);
        let _ = writeln!(
            out,
            ", \"direction\": \"receive\", \"message\": {{ \"eor\": {{ \"afi\" : \"{afi}\", \"safi\" : \"{safi}\" }} }} }} }}"
        );
    }

    fn notification(&mut self, out: &mut String, n: &Notification, now_ms: u64) {
        self.header(out, &n.session, "notification", now_ms);
        let direction = match n.direction {
            MessageDirection::Sent => "send",
            MessageDirection::Received => "receive",
        };
        let _ = write!(
            out,
            ", \"direction\": \"{direction}\", \"notification\": {{ \"code\": {}, \"subcode\": {}, \"data\": \"0x",
            n.code, n.subcode
        );
        for b in &n.data {
            let _ = write!(out, "{b:02X}");
        }
        out.push_str("\" }  } }\n");
    }

    /// One line per attribute set with its announcements (an ExaBGP update
    /// carries one attribute set); the withdrawals go with the first, or on
    /// a line of their own when nothing is announced.
    fn routes(&mut self, out: &mut String, routes: &Routes<'_>, now_ms: u64) {
        let direction = match routes.direction() {
            RouteDirection::Sent => "send",
            RouteDirection::Received | RouteDirection::ReceivedPrePolicy => "receive",
        };
        let session = routes.session();
        let mut withdraw = String::new();
        if routes.withdrawn_count() > 0 {
            withdraw.push_str("\"withdraw\": { ");
            let (v4, v6): (Vec<Prefix>, Vec<Prefix>) =
                routes.withdrawn().partition(Prefix::is_ipv4);
            let mut first = true;
            for (family, prefixes) in [("ipv4 unicast", &v4), ("ipv6 unicast", &v6)] {
                if prefixes.is_empty() {
                    continue;
                }
                if !first {
                    withdraw.push_str(", ");
                }
                first = false;
                let _ = write!(withdraw, "\"{family}\": [ ");
                nlris(&mut withdraw, prefixes);
                withdraw.push_str(" ]");
            }
            withdraw.push_str(" }");
        }
        if routes.announced_count() == 0 {
            if !withdraw.is_empty() {
                self.header(out, session, "update", now_ms);
                let _ = writeln!(
                    out,
                    ", \"direction\": \"{direction}\", \"message\": {{ \"update\": {{ {withdraw} }} }} }} }}"
                );
            }
            return;
        }
        // The announced prefixes per attribute set, in order of appearance.
        let sets = routes.attribute_sets();
        let mut by_set: Vec<(Vec<Prefix>, Vec<Prefix>)> =
            vec![(Vec::new(), Vec::new()); sets.len()];
        let mut order = Vec::new();
        for (prefix, index) in routes.announced_indexed() {
            let Some(slot) = by_set.get_mut(index as usize) else {
                continue;
            };
            if slot.0.is_empty() && slot.1.is_empty() {
                order.push(index as usize);
            }
            if prefix.is_ipv4() {
                &mut slot.0
            } else {
                &mut slot.1
            }
            .push(prefix);
        }
        for index in order {
            let attributes = &sets[index];
            let (v4, v6) = &by_set[index];
            self.header(out, session, "update", now_ms);
            let _ = write!(
                out,
                ", \"direction\": \"{direction}\", \"message\": {{ \"update\": {{ \"attribute\": {{ "
            );
            attribute_json(out, attributes);
            out.push_str(" }, \"announce\": { ");
            let next_hop = attributes
                .next_hop
                .map_or_else(|| "null".to_string(), |hop| hop.to_string());
            let mut first = true;
            for (family, prefixes) in [("ipv4 unicast", v4), ("ipv6 unicast", v6)] {
                if prefixes.is_empty() {
                    continue;
                }
                if !first {
                    out.push_str(", ");
                }
                first = false;
                let _ = write!(out, "\"{family}\": {{ \"{next_hop}\": [ ");
                nlris(out, prefixes);
                out.push_str(" ] }");
            }
            out.push_str(" }");
            if !withdraw.is_empty() {
                out.push_str(", ");
                out.push_str(&withdraw);
                withdraw.clear();
            }
            out.push_str(" } } } }\n");
        }
    }
}

fn nlris(out: &mut String, prefixes: &[Prefix]) {
    for (i, prefix) in prefixes.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{{ \"nlri\": \"{prefix}\" }}");
    }
}

fn asn_list(out: &mut String, asns: &[u32]) {
    out.push_str("[ ");
    for (i, asn) in asns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{asn}");
    }
    out.push_str(" ]");
}

/// The members of ExaBGP's "attribute" object, in attribute code order.
pub fn attribute_json(out: &mut String, a: &Attributes) {
    let mut parts: Vec<(u8, String)> = Vec::new();
    let origin = match a.origin {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    };
    parts.push((1, format!("\"origin\": \"{origin}\"")));
    let mut kinds: [Vec<u32>; 4] = Default::default();
    for segment in &a.as_path {
        let k = match segment.kind {
            SegmentKind::Sequence => 0,
            SegmentKind::Set => 1,
            SegmentKind::ConfedSequence => 2,
            SegmentKind::ConfedSet => 3,
        };
        kinds[k].extend_from_slice(&segment.asns);
    }
    let mut path = String::new();
    for (k, name) in [
        "as-path",
        "as-set",
        "confederation-path",
        "confederation-set",
    ]
    .iter()
    .enumerate()
    {
        if kinds[k].is_empty() {
            // ExaBGP writes empty sequences as [] and leaves out empty sets.
            if k % 2 == 0 {
                if !path.is_empty() {
                    path.push_str(", ");
                }
                let _ = write!(path, "\"{name}\": []");
            }
            continue;
        }
        if !path.is_empty() {
            path.push_str(", ");
        }
        let _ = write!(path, "\"{name}\": ");
        asn_list(&mut path, &kinds[k]);
    }
    parts.push((2, path));
    if let Some(med) = a.med {
        parts.push((4, format!("\"med\": {med}")));
    }
    if let Some(lp) = a.local_pref {
        parts.push((5, format!("\"local-preference\": {lp}")));
    }
    if a.atomic_aggregate {
        parts.push((6, "\"atomic-aggregate\": true".to_string()));
    }
    if let Some(ag) = a.aggregator {
        let ip = std::net::Ipv4Addr::from(ag.address);
        parts.push((7, format!("\"aggregator\": \"{}:{ip}\"", ag.asn)));
    }
    if !a.communities.is_empty() {
        let list: Vec<String> = a
            .communities
            .iter()
            .map(|c| format!("[ {}, {} ]", c >> 16, c & 0xffff))
            .collect();
        parts.push((8, format!("\"community\": [ {} ]", list.join(", "))));
    }
    if !a.extended_communities.is_empty() {
        let list: Vec<String> = a
            .extended_communities
            .iter()
            .map(|&value| {
                let text = ExtendedCommunity(value).to_string();
                // ExaBGP names route targets and origins, and leaves the
                // rest unnamed.
                let text = if text.starts_with("target:") || text.starts_with("origin:") {
                    text
                } else {
                    String::new()
                };
                format!("{{ \"value\": {value}, \"string\": \"{text}\" }}")
            })
            .collect();
        parts.push((
            16,
            format!("\"extended-community\": [ {} ]", list.join(", ")),
        ));
    }
    if !a.large_communities.is_empty() {
        let list: Vec<String> = a
            .large_communities
            .iter()
            .map(|(g, l1, l2)| format!("[ {g}, {l1} , {l2} ]"))
            .collect();
        parts.push((32, format!("\"large-community\": [ {} ]", list.join(", "))));
    }
    for u in &a.unknown {
        let mut value = String::from("0x");
        for b in &u.value {
            let _ = write!(value, "{b:02X}");
        }
        parts.push((
            u.code,
            format!(
                "\"attribute-0x{:02X}-0x{:02X}\": \"{value}\"",
                u.code, u.flags
            ),
        ));
    }
    parts.sort_by_key(|p| p.0);
    for (i, (_, part)) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(part);
    }
}

/// The exporter: the encoder and the file.
pub struct ExabgpJson {
    path: String,
    encoder: Encoder,
    lines: String,
    now_ms: u64,
}

impl Exporter for ExabgpJson {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&["path", "host"])?;
        Ok(ExabgpJson {
            path: settings.required("path")?.to_string(),
            encoder: Encoder::new(settings.get_or("host", "wasmbgp")),
            lines: String::new(),
            now_ms: 0,
        })
    }

    fn begin_batch(&mut self, _events: usize) {
        self.lines.clear();
        self.now_ms = clock::now_ms();
    }

    fn on_event(&mut self, event: Event<'_>) {
        self.encoder.event(&mut self.lines, &event, self.now_ms);
    }

    fn end_batch(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        if let Err(e) = output::append(&self.path, self.lines.as_bytes()) {
            log::warn(&format!("exabgp-json: {e}"));
        }
    }
}

wasmbgp_sdk::export_exporter!(ExabgpJson);

#[cfg(test)]
mod tests;
