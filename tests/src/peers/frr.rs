//! FRR driver: `bgpd` alone (no zebra), queried with
//! `vtysh --vty_socket DIR -d bgpd -c CMD`.
//!
//! Flags: `-Z -n` (no zebra, no kernel), `-S` (skip the user/group switch:
//! as root, `-u root -g root` fails with "user(root) is not part of vty group
//! specified(frrvty)"), `-i PIDFILE`, `--vty_socket DIR`, `-p PORT`, `-l ADDR`.
//! Config needs `no bgp ebgp-requires-policy` (FRR 8 refuses to exchange eBGP
//! routes without policy), `bgp allow-martian-nexthop`, and outbound
//! route-maps setting the next hops, since without zebra bgpd knows no IPv6
//! address and would send `::`. Neighbor events are only logged with
//! `bgp log-neighbor-changes`; a received Cease reads
//! `%NOTIFICATION: received from neighbor ADDR 6/2 (Cease/Administrative Shutdown)`.
//! FRR sends a neighbor's routes back to it (prepending its own AS), so the
//! outbound route-maps only permit locally originated routes (`^$`).
//! The bulk `show bgp ... json` omits communities, so single routes are read
//! with the per-prefix JSON.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use super::{Peer, PeerSpec, TIMEOUT, read_optional};
use crate::flowspec_support::{self, FlowFamily, FlowRoute};
use crate::process::Daemon;
use crate::route::{Family, Origin, Route, canonical_addr, canonical_prefix, ext_community};
use crate::run_command;
use crate::wait::wait_until;

/// An FRR bgpd instance with one neighbor.
#[derive(Debug)]
pub struct Frr {
    spec: PeerSpec,
    daemon: Option<Daemon>,
    /// Whether the session also negotiates IPv4 and IPv6 flowspec.
    flowspec: bool,
}

impl Frr {
    /// A driver for `spec`; nothing runs until [`Peer::start`].
    pub fn new(spec: PeerSpec) -> Self {
        Self {
            spec,
            daemon: None,
            flowspec: false,
        }
    }

    /// The same driver with `address-family ipv4 flowspec` and `ipv6 flowspec` activated
    /// for the neighbor. FRR 8.4 does not validate flow routes (RFC 8955 §6): nothing to
    /// turn off. It would send the neighbor's flow routes back to it: route-map
    /// `FLOW_OUT_NONE` denies every flow route out (FRR cannot originate any).
    pub fn with_flowspec(mut self) -> Self {
        self.flowspec = true;
        self
    }

    /// The flow routes of both families learned from the neighbor (`show bgp ipv4
    /// flowspec json` for the paths from it, `... detail json` for their actions: see
    /// [`crate::flowspec_support`] for what FRR cannot show); fails when vtysh fails.
    pub fn flow_routes(&self) -> Result<Vec<FlowRoute>> {
        let neighbor = self.spec.remote.address.to_string();
        let mut routes = Vec::new();
        for (family, name) in [(FlowFamily::Ipv4, "ipv4"), (FlowFamily::Ipv6, "ipv6")] {
            let table = self.vtysh(&format!("show bgp {name} flowspec json"))?;
            let detail = self.vtysh(&format!("show bgp {name} flowspec detail json"))?;
            routes.extend(flowspec_support::parse_frr_routes(
                &table, &detail, family, &neighbor,
            )?);
        }
        routes.sort();
        Ok(routes)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.spec.dir.join(name)
    }

    /// Runs one vtysh command against this bgpd.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        run_command(
            Command::new("vtysh")
                .arg("--vty_socket")
                .arg(&self.spec.dir)
                .arg("-d")
                .arg("bgpd")
                .arg("-c")
                .arg(command),
        )
    }

    fn vtysh_json(&self, command: &str) -> Result<Value> {
        let out = self.vtysh(command)?;
        serde_json::from_str(&out)
            .with_context(|| format!("vtysh {command:?} printed bad JSON: {out}"))
    }

    fn config(&self) -> String {
        let spec = &self.spec;
        let remote = spec.remote.address;
        let mut conf = String::new();
        conf.push_str("frr defaults traditional\nhostname wasmbgp-e2e-frr\n");
        let _ = writeln!(
            conf,
            "log file {} informational\n!",
            self.path("bgpd.log").display()
        );
        let _ = writeln!(conf, "router bgp {}", spec.asn);
        let _ = writeln!(conf, " bgp router-id {}", spec.address);
        conf.push_str(" no bgp ebgp-requires-policy\n no bgp network import-check\n");
        conf.push_str(" bgp allow-martian-nexthop\n bgp log-neighbor-changes\n");
        let _ = writeln!(conf, " neighbor {remote} remote-as {}", spec.remote.asn);
        let _ = writeln!(conf, " neighbor {remote} port {}", spec.remote.port);
        let _ = writeln!(conf, " neighbor {remote} update-source {}", spec.address);
        let _ = writeln!(conf, " neighbor {remote} timers connect 1");
        let _ = writeln!(
            conf,
            " neighbor {remote} timers {} {}",
            (spec.hold_time / 3).max(1),
            spec.hold_time
        );
        if !spec.is_ibgp() {
            let _ = writeln!(conf, " neighbor {remote} ebgp-multihop 255");
        }
        let mut route_maps = String::new();
        for (index, route) in spec.originate.iter().enumerate() {
            let _ = writeln!(route_maps, "route-map ORIGINATE_{index} permit 10");
            if let Some(origin) = route.origin {
                let _ = writeln!(route_maps, " set origin {}", origin.keyword());
            }
            if let Some(med) = route.med {
                let _ = writeln!(route_maps, " set metric {med}");
            }
            if let Some(pref) = route.local_pref {
                let _ = writeln!(route_maps, " set local-preference {pref}");
            }
            if !route.communities.is_empty() {
                let _ = writeln!(route_maps, " set community {}", route.communities.join(" "));
            }
            if !route.large_communities.is_empty() {
                let _ = writeln!(
                    route_maps,
                    " set large-community {}",
                    route.large_communities.join(" ")
                );
            }
            route_maps.push_str("!\n");
        }
        for (family, name) in [(Family::Ipv4, "ipv4"), (Family::Ipv6, "ipv6")] {
            let _ = writeln!(conf, " address-family {name} unicast");
            for (index, route) in spec.originate.iter().enumerate() {
                if route.family() == family {
                    let _ = writeln!(
                        conf,
                        "  network {} route-map ORIGINATE_{index}",
                        route.prefix
                    );
                }
            }
            let _ = writeln!(conf, "  neighbor {remote} activate");
            let _ = writeln!(conf, "  neighbor {remote} route-map OUT_{name} out");
            conf.push_str(" exit-address-family\n");
        }
        if self.flowspec {
            for name in ["ipv4", "ipv6"] {
                let _ = writeln!(conf, " address-family {name} flowspec");
                let _ = writeln!(conf, "  neighbor {remote} activate");
                let _ = writeln!(conf, "  neighbor {remote} route-map FLOW_OUT_NONE out");
                conf.push_str(" exit-address-family\n");
            }
        }
        conf.push_str("!\n");
        conf.push_str(&route_maps);
        if self.flowspec {
            conf.push_str("route-map FLOW_OUT_NONE deny 10\n!\n");
        }
        // Announce only what this bgpd originates (FRR would otherwise send
        // the remote's own routes back to it).
        conf.push_str("bgp as-path access-list LOCAL_ONLY seq 5 permit ^$\n!\n");
        let _ = writeln!(
            conf,
            "route-map OUT_ipv4 permit 10\n match as-path LOCAL_ONLY\n set ip next-hop {}\n!",
            spec.next_hop4
        );
        let _ = writeln!(
            conf,
            "route-map OUT_ipv6 permit 10\n match as-path LOCAL_ONLY\n set ipv6 next-hop global {}\n!",
            spec.next_hop6
        );
        conf
    }

    fn table(&self, family: &str) -> Result<Vec<Route>> {
        let json = self.vtysh_json(&format!("show bgp {family} unicast json"))?;
        parse_table_json(&json, &self.spec.remote.address.to_string())
    }
}

impl Peer for Frr {
    fn kind(&self) -> &'static str {
        "frr"
    }

    fn spec(&self) -> &PeerSpec {
        &self.spec
    }

    fn start(&mut self) -> Result<()> {
        let conf_path = self.path("bgpd.conf");
        std::fs::write(&conf_path, self.config())
            .with_context(|| format!("cannot write {}", conf_path.display()))?;
        let mut cmd = Command::new("/usr/lib/frr/bgpd");
        cmd.arg("-f")
            .arg(&conf_path)
            .args(["-Z", "-n", "-S"])
            .arg("-i")
            .arg(self.path("bgpd.pid"))
            .arg("--vty_socket")
            .arg(&self.spec.dir)
            .arg("-p")
            .arg(self.spec.port.to_string())
            .arg("-l")
            .arg(self.spec.address.to_string());
        self.daemon = Some(Daemon::spawn("bgpd", cmd, &self.path("bgpd.stdout"))?);
        wait_until("vtysh to reach bgpd", TIMEOUT, || {
            Ok(self.vtysh("show bgp summary json").is_ok())
        })
    }

    fn session_established(&self) -> Result<bool> {
        let remote = self.spec.remote.address.to_string();
        let json = self.vtysh_json(&format!("show bgp neighbors {remote} json"))?;
        Ok(json[&remote]["bgpState"].as_str() == Some("Established"))
    }

    fn received_routes(&self) -> Result<Vec<Route>> {
        let mut routes = self.table("ipv4")?;
        routes.extend(self.table("ipv6")?);
        Ok(routes)
    }

    fn received_route(&self, prefix: &str) -> Result<Option<Route>> {
        let prefix = canonical_prefix(prefix)?;
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let json = self.vtysh_json(&format!("show bgp {family} unicast {prefix} json"))?;
        parse_prefix_json(&json, &prefix, &self.spec.remote.address.to_string())
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
        Ok(read_optional(&self.path("bgpd.log"))? + &read_optional(&self.path("bgpd.stdout"))?)
    }

    fn cease_log_pattern(&self) -> &'static str {
        "6/2 (Cease/Administrative Shutdown)"
    }

    fn received_cease(&self) -> Result<bool> {
        let log = self.log()?;
        let received = format!("received from neighbor {}", self.spec.remote.address);
        Ok(log
            .lines()
            .any(|line| line.contains(&received) && line.contains(self.cease_log_pattern())))
    }
}

fn json_u32(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn next_hop_of(path: &Value) -> Result<Option<String>> {
    let hops = path["nexthops"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let hop = hops
        .iter()
        .find(|hop| hop["scope"].as_str() != Some("link-local"))
        .or_else(|| hops.first());
    hop.and_then(|hop| hop["ip"].as_str())
        .map(canonical_addr)
        .transpose()
}

/// Parses `show bgp FAMILY unicast json`, keeping paths from `neighbor`.
/// Communities are not part of this output.
pub fn parse_table_json(json: &Value, neighbor: &str) -> Result<Vec<Route>> {
    let mut routes = Vec::new();
    let Some(table) = json["routes"].as_object() else {
        return Ok(routes);
    };
    for (prefix, paths) in table {
        for path in paths.as_array().context("paths is not an array")? {
            if path["peerId"].as_str() != Some(neighbor) {
                continue;
            }
            let mut route = Route::new(prefix)?;
            route.next_hop = next_hop_of(path)?;
            route.origin = path["origin"].as_str().map(Origin::parse).transpose()?;
            route.as_path = path["path"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .map(|asn| {
                    asn.parse()
                        .with_context(|| format!("bad AS path {}", path["path"]))
                })
                .collect::<Result<_>>()?;
            route.med = json_u32(&path["metric"]);
            route.local_pref = json_u32(&path["locPrf"]);
            routes.push(route);
        }
    }
    Ok(routes)
}

/// Parses `show bgp FAMILY unicast PREFIX json` for the path from `neighbor`.
pub fn parse_prefix_json(json: &Value, prefix: &str, neighbor: &str) -> Result<Option<Route>> {
    match json["prefix"].as_str() {
        Some(found) if canonical_prefix(found)? == prefix => {}
        _ => return Ok(None),
    }
    let Some(path) = json["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|path| path["peer"]["peerId"].as_str() == Some(neighbor))
    else {
        return Ok(None);
    };
    let mut route = Route::new(prefix)?;
    route.next_hop = next_hop_of(path)?;
    route.origin = path["origin"].as_str().map(Origin::parse).transpose()?;
    for segment in path["aspath"]["segments"].as_array().into_iter().flatten() {
        for asn in segment["list"].as_array().into_iter().flatten() {
            route.as_path.push(json_u32(asn).context("bad AS number")?);
        }
    }
    route.med = json_u32(&path["metric"]);
    route.local_pref = json_u32(&path["locPrf"]);
    let words = |value: &Value| -> Vec<String> {
        value["string"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    route.communities = words(&path["community"]);
    route.large_communities = words(&path["largeCommunity"]);
    route.extended_communities = words(&path["extendedCommunity"])
        .iter()
        .map(|c| ext_community(c))
        .collect();
    Ok(Some(route))
}
