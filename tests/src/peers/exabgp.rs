//! ExaBGP 4.2 driver: `exabgp CONF` in the foreground, configured through
//! `exabgp.*` environment variables; a `process` receives every event as
//! JSON (`api { receive { parsed; packets; update; notification; } neighbor-changes; }`)
//! and appends it to `events.json`, which is replayed to know the session
//! state and the routes received.
//!
//! Quirks: the API process must keep its stdout open (a shell running `cat`,
//! not `exec cat >> file`), otherwise ExaBGP counts it as dead, respawns it
//! and gives up with "Too many death for receiver". ExaBGP does not prepend
//! its AS to the AS_PATH given in a static route. A received Cease shows as
//! a JSON `"type": "notification"` event with code 6, subcode 2, followed by
//! a state change `"reason": "peer reset, message (notification received
//! (6,2)) error(Cease / Administrative Shutdown)"`. ExaBGP 4.2.21 cannot
//! parse a Cease/Administrative Shutdown that carries an RFC 9003 Shutdown
//! Communication (a Python 3 bytes/str formatting bug in
//! `Notification.__init__`): it answers with NOTIFICATION 1/0 `can not decode
//! update message of type "3"`. The driver therefore also asks for raw
//! packets (`packets;`) and recognises the Cease by its raw body `0602...`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use super::{Peer, PeerSpec, read_optional};
use crate::flowspec_support::{self, FlowRoute};
use crate::process::Daemon;
use crate::route::{Family, Origin, Route, canonical_addr};

/// An ExaBGP instance with one neighbor.
#[derive(Debug)]
pub struct ExaBgp {
    spec: PeerSpec,
    daemon: Option<Daemon>,
    /// Length of `events.json` when the current instance started.
    events_offset: usize,
    /// Whether the session also negotiates `ipv4 flow` and `ipv6 flow`.
    flowspec: bool,
}

/// The session state and routes reconstructed from ExaBGP's JSON events.
#[derive(Debug, Default)]
pub struct Replay {
    /// Last reported neighbor state (`connected`, `up`, `down`, ...).
    pub state: Option<String>,
    /// Routes currently announced by the neighbor, by prefix.
    pub routes: BTreeMap<String, Route>,
    /// Whether a Cease/Administrative Shutdown NOTIFICATION was received.
    pub cease_received: bool,
}

impl ExaBgp {
    /// A driver for `spec`; nothing runs until [`Peer::start`].
    pub fn new(spec: PeerSpec) -> Self {
        Self {
            spec,
            daemon: None,
            events_offset: 0,
            flowspec: false,
        }
    }

    /// The same driver with the families `ipv4 flow` and `ipv6 flow` (ExaBGP keeps no
    /// RIB and validates nothing).
    pub fn with_flowspec(mut self) -> Self {
        self.flowspec = true;
        self
    }

    /// The flow routes currently announced by the neighbor, replayed from the JSON
    /// events of the current instance.
    pub fn flow_routes(&self) -> Result<Vec<FlowRoute>> {
        let events = read_optional(&self.path("events.json"))?;
        let current = events.get(self.events_offset..).unwrap_or_default();
        flowspec_support::replay_exabgp_flows(current)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.spec.dir.join(name)
    }

    fn config(&self) -> String {
        let spec = &self.spec;
        let mut conf = String::new();
        let _ = writeln!(
            conf,
            "process receiver {{\n  run {};\n  encoder json;\n}}",
            self.path("receiver.sh").display()
        );
        let _ = writeln!(conf, "neighbor {} {{", spec.remote.address);
        let _ = writeln!(
            conf,
            "  router-id {};\n  local-address {};",
            spec.address, spec.address
        );
        let _ = writeln!(
            conf,
            "  local-as {};\n  peer-as {};",
            spec.asn, spec.remote.asn
        );
        let _ = writeln!(
            conf,
            "  hold-time {};\n  passive false;\n  connect {};",
            spec.hold_time, spec.remote.port
        );
        if self.flowspec {
            conf.push_str(
                "  family {\n    ipv4 unicast;\n    ipv6 unicast;\n    ipv4 flow;\n    ipv6 flow;\n  }\n",
            );
        } else {
            conf.push_str("  family {\n    ipv4 unicast;\n    ipv6 unicast;\n  }\n");
        }
        conf.push_str("  api {\n    processes [ receiver ];\n    receive { parsed; packets; update; notification; }\n    neighbor-changes;\n  }\n");
        conf.push_str("  static {\n");
        for route in &spec.originate {
            let next_hop = match route.family() {
                Family::Ipv4 => spec.next_hop4.to_string(),
                Family::Ipv6 => spec.next_hop6.to_string(),
            };
            let _ = write!(conf, "    route {} next-hop {next_hop}", route.prefix);
            if let Some(origin) = route.origin {
                let _ = write!(conf, " origin {}", origin.keyword());
            }
            if let Some(med) = route.med {
                let _ = write!(conf, " med {med}");
            }
            if let Some(pref) = route.local_pref {
                let _ = write!(conf, " local-preference {pref}");
            }
            if !spec.is_ibgp() {
                // ExaBGP sends the AS_PATH as configured: prepend our AS.
                let _ = write!(conf, " as-path [ {} ]", spec.asn);
            }
            if !route.communities.is_empty() {
                let _ = write!(conf, " community [ {} ]", route.communities.join(" "));
            }
            if !route.large_communities.is_empty() {
                let _ = write!(
                    conf,
                    " large-community [ {} ]",
                    route.large_communities.join(" ")
                );
            }
            conf.push_str(";\n");
        }
        conf.push_str("  }\n}\n");
        conf
    }

    /// Replays the events of the current instance.
    pub fn replay(&self) -> Result<Replay> {
        let events = read_optional(&self.path("events.json"))?;
        let current = events.get(self.events_offset..).unwrap_or_default();
        replay_events(current)
    }
}

impl Peer for ExaBgp {
    fn kind(&self) -> &'static str {
        "exabgp"
    }

    fn spec(&self) -> &PeerSpec {
        &self.spec
    }

    fn start(&mut self) -> Result<()> {
        let conf_path = self.path("exabgp.conf");
        std::fs::write(&conf_path, self.config())
            .with_context(|| format!("cannot write {}", conf_path.display()))?;
        let receiver = self.path("receiver.sh");
        let events = self.path("events.json");
        // No `exec`: the shell keeps ExaBGP's stdout pipe open.
        std::fs::write(
            &receiver,
            format!("#!/bin/sh\ncat >> '{}'\n", events.display()),
        )
        .with_context(|| format!("cannot write {}", receiver.display()))?;
        std::fs::set_permissions(&receiver, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot chmod {}", receiver.display()))?;
        self.events_offset = read_optional(&events)?.len();
        let mut cmd = Command::new("exabgp");
        cmd.arg(&conf_path)
            .env("exabgp.daemon.daemonize", "false")
            .env("exabgp.daemon.user", whoami())
            .env("exabgp.daemon.drop", "false")
            .env("exabgp.log.destination", self.path("exabgp.log"))
            .env("exabgp.log.level", "INFO")
            .env("exabgp.api.cli", "false")
            .env("exabgp.api.respawn", "false")
            .env("exabgp.tcp.bind", self.spec.address.to_string())
            .env("exabgp.tcp.port", self.spec.port.to_string());
        self.daemon = Some(Daemon::spawn("exabgp", cmd, &self.path("exabgp.stdout"))?);
        // ExaBGP has no query interface: it is ready once it runs.
        std::thread::sleep(Duration::from_millis(200));
        let running = self.daemon.as_mut().is_some_and(Daemon::is_running);
        if !running {
            anyhow::bail!("exabgp exited at start; log:\n{}", self.log()?);
        }
        Ok(())
    }

    fn session_established(&self) -> Result<bool> {
        Ok(self.replay()?.state.as_deref() == Some("up"))
    }

    fn received_routes(&self) -> Result<Vec<Route>> {
        Ok(self.replay()?.routes.into_values().collect())
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill()?;
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.terminate(Duration::from_secs(10))?;
        }
        Ok(())
    }

    fn log(&self) -> Result<String> {
        Ok(read_optional(&self.path("exabgp.log"))?
            + &read_optional(&self.path("exabgp.stdout"))?
            + &read_optional(&self.path("events.json"))?)
    }

    fn cease_log_pattern(&self) -> &'static str {
        "Cease / Administrative Shutdown"
    }

    fn received_cease(&self) -> Result<bool> {
        let events = read_optional(&self.path("events.json"))?;
        Ok(replay_events(&events)?.cease_received)
    }
}

fn whoami() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        "root".to_owned()
    } else {
        std::env::var("USER").unwrap_or_else(|_| "nobody".to_owned())
    }
}

/// Replays ExaBGP JSON events (one object per line).
pub fn replay_events(events: &str) -> Result<Replay> {
    let mut replay = Replay::default();
    for line in events
        .lines()
        .filter(|line| line.trim_start().starts_with('{'))
    {
        let event: Value = match serde_json::from_str(line) {
            Ok(event) => event,
            // The last line may still be being written.
            Err(_) => continue,
        };
        match event["type"].as_str() {
            Some("state") => {
                replay.state = event["neighbor"]["state"].as_str().map(str::to_owned);
                replay.routes.clear();
            }
            Some("notification") if event["neighbor"]["direction"].as_str() == Some("receive") => {
                // Parsed form, or the raw packet (`packets;`): ExaBGP 4.2.21
                // fails to parse a Cease that carries a Shutdown Communication
                // (RFC 9003) and only the raw body shows what arrived.
                let parsed = &event["neighbor"]["notification"];
                let raw_body = event["neighbor"]["message"]["body"]
                    .as_str()
                    .unwrap_or_default();
                let raw_body = raw_body.trim_start_matches("0x").to_ascii_uppercase();
                if (parsed["code"].as_u64() == Some(6) && parsed["subcode"].as_u64() == Some(2))
                    || raw_body.starts_with("0602")
                {
                    replay.cease_received = true;
                }
            }
            Some("update") => {
                apply_update(&mut replay.routes, &event["neighbor"]["message"]["update"])
                    .with_context(|| format!("bad ExaBGP update {line}"))?
            }
            _ => {}
        }
    }
    Ok(replay)
}

fn apply_update(routes: &mut BTreeMap<String, Route>, update: &Value) -> Result<()> {
    let attrs = &update["attribute"];
    let number = |value: &Value| value.as_u64().and_then(|n| u32::try_from(n).ok());
    let tuples = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|tuple| {
                tuple
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .collect()
    };
    for families in update["withdraw"].as_object().into_iter() {
        for nlris in families.values() {
            for nlri in nlris.as_array().into_iter().flatten() {
                if let Some(prefix) = nlri["nlri"].as_str() {
                    routes.remove(&crate::route::canonical_prefix(prefix)?);
                }
            }
        }
    }
    for families in update["announce"].as_object().into_iter() {
        for by_next_hop in families.values() {
            for (next_hop, nlris) in by_next_hop.as_object().into_iter().flatten() {
                for nlri in nlris.as_array().into_iter().flatten() {
                    let Some(prefix) = nlri["nlri"].as_str() else {
                        continue;
                    };
                    let mut route = Route::new(prefix)?;
                    route.next_hop = Some(canonical_addr(next_hop)?);
                    route.origin = attrs["origin"].as_str().map(Origin::parse).transpose()?;
                    route.as_path = attrs["as-path"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(number)
                        .collect();
                    route.med = number(&attrs["med"]);
                    route.local_pref = number(&attrs["local-preference"]);
                    route.communities = tuples(&attrs["community"]);
                    route.large_communities = tuples(&attrs["large-community"]);
                    route.extended_communities = attrs["extended-community"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["string"].as_str().map(crate::route::ext_community))
                        .collect();
                    routes.insert(route.prefix.clone(), route);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_events() {
        let events = r#"{ "type": "state", "neighbor": { "state": "up" } }
{ "type": "update", "neighbor": { "direction": "receive", "message": { "update": { "attribute": { "origin": "igp", "as-path": [ 65008 ], "med": 5, "community": [ [ 65008, 7 ] ], "large-community": [ [ 65008, 1 , 2 ] ], "extended-community": [ { "value": 842127122628615, "string": "target:65001:7" } ] }, "announce": { "ipv4 unicast": { "192.0.2.8": [ { "nlri": "203.0.118.0/24" }, { "nlri": "203.0.119.0/24" } ] } } } } } }
{ "type": "update", "neighbor": { "direction": "receive", "message": { "update": { "withdraw": { "ipv4 unicast": [ { "nlri": "203.0.119.0/24" } ] } } } } }
{ "type": "notification", "neighbor": { "direction": "receive", "notification": { "code": 6, "subcode": 2, "data": "0x" } } }
"#;
        let raw = r#"{ "type": "notification", "neighbor": { "direction": "receive", "message": { "category": 3, "header": "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF001603", "body": "0x0602" } } }"#;
        assert!(replay_events(raw).unwrap().cease_received);
        let replay = replay_events(events).unwrap();
        assert_eq!(replay.state.as_deref(), Some("up"));
        assert!(replay.cease_received);
        assert_eq!(replay.routes.len(), 1);
        let route = &replay.routes["203.0.118.0/24"];
        assert_eq!(route.communities, vec!["65008:7"]);
        assert_eq!(route.large_communities, vec!["65008:1:2"]);
        assert_eq!(route.med, Some(5));
        assert_eq!(route.extended_communities, vec!["target:65001:7"]);
        assert_eq!(route.next_hop.as_deref(), Some("192.0.2.8"));
    }
}
