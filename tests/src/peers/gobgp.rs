//! GoBGP driver: `gobgpd -f CONF -p --api-hosts ADDR:PORT`, queried with
//! `gobgp -u ADDR -p PORT ... -j`.
//!
//! Quirks: GoBGP 3.10 treats an UPDATE whose IPv4 next hop is a loopback
//! address as a withdraw ("invalid nexthop address"), so routes sent to it
//! need a non-loopback next hop. Its config file has no static routes: the
//! routes it originates are added with `gobgp global rib add` after every
//! start. `idle-hold-time-after-reset` defaults to 30 s and is set to 1 s.
//! A received Cease is logged as `Reason="notification-received code 6(cease)
//! subcode 2(administrative shutdown)"`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Peer, PeerSpec, TIMEOUT, read_optional};
use crate::flowspec_support::{self, FlowFamily, FlowRoute};
use crate::process::Daemon;
use crate::route::{Family, Origin, Route, canonical_addr, canonical_prefix};
use crate::run_command;
use crate::wait::wait_until;

/// `session_state` value of an established session in GoBGP's API.
const ESTABLISHED: u64 = 6;

/// A gobgpd instance with one neighbor.
#[derive(Debug)]
pub struct GoBgp {
    spec: PeerSpec,
    daemon: Option<Daemon>,
    /// Whether the session also negotiates ipv4-flowspec and ipv6-flowspec.
    flowspec: bool,
}

impl GoBgp {
    /// A driver for `spec`; nothing runs until [`Peer::start`].
    pub fn new(spec: PeerSpec) -> Self {
        Self {
            spec,
            daemon: None,
            flowspec: false,
        }
    }

    /// The same driver with ipv4-flowspec and ipv6-flowspec negotiated too (see
    /// [`crate::flowspec_support`]: GoBGP 3.10 does not validate flow routes, nothing
    /// to turn off).
    pub fn with_flowspec(mut self) -> Self {
        self.flowspec = true;
        self
    }

    /// The flow routes of both families learned from the neighbor (`gobgp global rib -a
    /// ipv4-flowspec -j`, paths whose `neighbor-ip` is the neighbor's); fails when
    /// `gobgp` fails or a path could not be decoded.
    pub fn flow_routes(&self) -> Result<Vec<FlowRoute>> {
        let neighbor = self.spec.remote.address.to_string();
        let mut routes = Vec::new();
        for family in FlowFamily::ALL {
            let out = self.gobgp(&["global", "rib", "-a", family.name(), "-j"])?;
            routes.extend(flowspec_support::parse_gobgp_rib(&out, family, &neighbor)?);
        }
        routes.sort();
        Ok(routes)
    }

    /// Originates `route` (`gobgp global rib -a FAMILY add match ... then ...`).
    pub fn add_flow_route(&self, route: &FlowRoute) -> Result<()> {
        let mut args = vec!["global".to_owned(), "rib".into(), "-a".into()];
        args.push(route.family.name().into());
        args.push("add".into());
        args.extend(route.gobgp_args()?);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.gobgp(&args)
            .map(|_| ())
            .with_context(|| format!("cannot add {route} to gobgpd"))
    }

    /// Withdraws the originated `route` (`gobgp global rib -a FAMILY del match ...`).
    pub fn del_flow_route(&self, route: &FlowRoute) -> Result<()> {
        let mut args = vec!["global".to_owned(), "rib".into(), "-a".into()];
        args.push(route.family.name().into());
        args.push("del".into());
        args.extend(route.gobgp_match_args()?);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.gobgp(&args)
            .map(|_| ())
            .with_context(|| format!("cannot delete {route} from gobgpd"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.spec.dir.join(name)
    }

    /// Runs the `gobgp` client against this instance's API.
    pub fn gobgp(&self, args: &[&str]) -> Result<String> {
        run_command(
            Command::new("gobgp")
                .arg("-u")
                .arg(self.spec.address.to_string())
                .arg("-p")
                .arg(self.spec.api_port.to_string())
                .args(args),
        )
    }

    fn config(&self) -> String {
        let spec = &self.spec;
        let mut conf = String::new();
        let _ = write!(
            conf,
            "[global.config]\n  as = {}\n  router-id = \"{}\"\n  port = {}\n  local-address-list = [\"{}\"]\n\n",
            spec.asn, spec.address, spec.port, spec.address
        );
        let _ = write!(
            conf,
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n",
            spec.remote.address, spec.remote.asn
        );
        let _ = write!(
            conf,
            "  [neighbors.transport.config]\n    remote-port = {}\n    local-address = \"{}\"\n",
            spec.remote.port, spec.address
        );
        let _ = write!(
            conf,
            "  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = {}\n    keepalive-interval = {}\n    idle-hold-time-after-reset = 1\n",
            spec.hold_time,
            (spec.hold_time / 3).max(1)
        );
        if !spec.is_ibgp() {
            conf.push_str(
                "  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = 255\n",
            );
        }
        let flow_families: &[&str] = if self.flowspec {
            &["ipv4-flowspec", "ipv6-flowspec"]
        } else {
            &[]
        };
        for family in ["ipv4-unicast", "ipv6-unicast"].iter().chain(flow_families) {
            let _ = write!(
                conf,
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n"
            );
        }
        conf
    }

    /// Adds `route` to GoBGP's global RIB (advertised to the neighbor).
    pub fn add_route(&self, route: &Route) -> Result<()> {
        let (family, next_hop) = match route.family() {
            Family::Ipv4 => ("ipv4", self.spec.next_hop4.to_string()),
            Family::Ipv6 => ("ipv6", self.spec.next_hop6.to_string()),
        };
        let mut args = vec![
            "global".to_owned(),
            "rib".into(),
            "add".into(),
            route.prefix.clone(),
        ];
        args.extend(["nexthop".into(), next_hop]);
        if let Some(origin) = route.origin {
            args.extend(["origin".into(), origin.keyword().into()]);
        }
        if let Some(med) = route.med {
            args.extend(["med".into(), med.to_string()]);
        }
        if let Some(pref) = route.local_pref {
            args.extend(["local-pref".into(), pref.to_string()]);
        }
        if !route.communities.is_empty() {
            args.extend(["community".into(), route.communities.join(",")]);
        }
        if !route.large_communities.is_empty() {
            args.extend(["large-community".into(), route.large_communities.join(",")]);
        }
        args.extend(["-a".into(), family.into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.gobgp(&args).map(|_| ())
    }

    fn rib(&self, family: &str) -> Result<Vec<Route>> {
        let out = self.gobgp(&["global", "rib", "-a", family, "-j"])?;
        parse_rib_json(&out, &self.spec.remote.address.to_string())
    }
}

impl Peer for GoBgp {
    fn kind(&self) -> &'static str {
        "gobgp"
    }

    fn spec(&self) -> &PeerSpec {
        &self.spec
    }

    fn start(&mut self) -> Result<()> {
        let conf_path = self.path("gobgpd.toml");
        std::fs::write(&conf_path, self.config())
            .with_context(|| format!("cannot write {}", conf_path.display()))?;
        let mut cmd = Command::new("gobgpd");
        cmd.arg("-f")
            .arg(&conf_path)
            .arg("-t")
            .arg("toml")
            .arg("-p")
            .arg("-l")
            .arg("info")
            .arg("--pprof-disable")
            .arg("--api-hosts")
            .arg(format!("{}:{}", self.spec.address, self.spec.api_port));
        self.daemon = Some(Daemon::spawn("gobgpd", cmd, &self.path("gobgpd.log"))?);
        wait_until("gobgpd API to answer", TIMEOUT, || {
            Ok(self.gobgp(&["global", "-j"]).is_ok())
        })?;
        for route in &self.spec.originate {
            self.add_route(route)
                .with_context(|| format!("cannot inject {} into gobgpd", route.prefix))?;
        }
        Ok(())
    }

    fn session_established(&self) -> Result<bool> {
        let out = self.gobgp(&["neighbor", &self.spec.remote.address.to_string(), "-j"])?;
        let json: Value =
            serde_json::from_str(&out).context("gobgp neighbor -j printed bad JSON")?;
        Ok(json["state"]["session_state"].as_u64() == Some(ESTABLISHED))
    }

    fn received_routes(&self) -> Result<Vec<Route>> {
        let mut routes = self.rib("ipv4")?;
        routes.extend(self.rib("ipv6")?);
        Ok(routes)
    }

    fn received_route(&self, prefix: &str) -> Result<Option<Route>> {
        let prefix = canonical_prefix(prefix)?;
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        Ok(self
            .rib(family)?
            .into_iter()
            .find(|route| route.prefix == prefix))
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
        read_optional(&self.path("gobgpd.log"))
    }

    fn cease_log_pattern(&self) -> &'static str {
        "code 6(cease) subcode 2(administrative shutdown)"
    }

    fn rejects_loopback_next_hop(&self) -> bool {
        true
    }
}

/// Parses `gobgp global rib -j` output, keeping paths learned from `neighbor`.
pub fn parse_rib_json(out: &str, neighbor: &str) -> Result<Vec<Route>> {
    let out = out.trim();
    if out.is_empty() {
        return Ok(Vec::new());
    }
    let json: Value = serde_json::from_str(out).context("gobgp rib -j printed bad JSON")?;
    let table = json.as_object().context("gobgp rib -j is not an object")?;
    let mut routes = Vec::new();
    for (prefix, paths) in table {
        for path in paths.as_array().context("paths is not an array")? {
            if path["neighbor-ip"].as_str() != Some(neighbor) {
                continue;
            }
            let mut route = Route::new(prefix)?;
            for attr in path["attrs"].as_array().context("attrs is not an array")? {
                parse_attr(&mut route, attr)
                    .with_context(|| format!("bad gobgp attribute {attr}"))?;
            }
            routes.push(route);
        }
    }
    Ok(routes)
}

fn parse_attr(route: &mut Route, attr: &Value) -> Result<()> {
    let number = |value: &Value| {
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .context("not a u32")
    };
    match attr["type"].as_u64() {
        Some(1) => route.origin = Some(Origin::parse(&attr["value"].to_string())?),
        Some(2) => {
            route.as_path.clear();
            for segment in attr["as_paths"].as_array().into_iter().flatten() {
                for asn in segment["asns"].as_array().into_iter().flatten() {
                    route.as_path.push(number(asn)?);
                }
            }
        }
        Some(3) | Some(14) => {
            let next_hop = attr["nexthop"]
                .as_str()
                .context("next hop is not a string")?;
            route.next_hop = Some(canonical_addr(next_hop)?);
        }
        Some(4) => route.med = Some(number(&attr["metric"])?),
        Some(5) => route.local_pref = Some(number(&attr["value"])?),
        Some(8) => {
            route.communities = attr["communities"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| number(c).map(|c| format!("{}:{}", c >> 16, c & 0xffff)))
                .collect::<Result<_>>()?;
        }
        Some(16) => {
            route.extended_communities = attr["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let value = c["value"].as_str().unwrap_or_default();
                    match c["subtype"].as_u64() {
                        Some(2) => format!("target:{value}"),
                        Some(3) => format!("origin:{value}"),
                        _ => format!("{}:{}:{value}", c["type"], c["subtype"]),
                    }
                })
                .collect();
        }
        Some(32) => {
            route.large_communities = attr["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    Ok(format!(
                        "{}:{}:{}",
                        number(&c["ASN"])?,
                        number(&c["LocalData1"])?,
                        number(&c["LocalData2"])?
                    ))
                })
                .collect::<Result<_>>()?;
        }
        Some(_) => {}
        None => bail!("attribute without type"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rib_json() {
        let out = r#"{"198.51.100.0/24":[{"nlri":{"prefix":"198.51.100.0/24"},"age":1,"best":true,"attrs":[{"type":1,"value":1},{"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[65001,65010]}]},{"type":4,"metric":20},{"type":5,"value":150},{"type":8,"communities":[4259905541,4259905542]},{"type":32,"value":[{"ASN":65001,"LocalData1":1,"LocalData2":1}]},{"type":16,"value":[{"type":0,"subtype":2,"value":"65001:7"}]},{"type":3,"nexthop":"192.0.2.1"}],"stale":false,"neighbor-ip":"127.0.2.1"}],
            "10.0.0.0/8":[{"nlri":{"prefix":"10.0.0.0/8"},"attrs":[],"stale":false}]}"#;
        let routes = parse_rib_json(out, "127.0.2.1").unwrap();
        assert_eq!(routes.len(), 1);
        let route = &routes[0];
        assert_eq!(route.origin, Some(Origin::Egp));
        assert_eq!(route.as_path, vec![65001, 65010]);
        assert_eq!(route.med, Some(20));
        assert_eq!(route.local_pref, Some(150));
        assert_eq!(route.communities, vec!["65001:5", "65001:6"]);
        assert_eq!(route.large_communities, vec!["65001:1:1"]);
        assert_eq!(route.next_hop.as_deref(), Some("192.0.2.1"));
        assert_eq!(route.extended_communities, vec!["target:65001:7"]);
    }
}
