//! BIRD 2 driver: `bird -f -c CONF -s SOCK -P PID`, queried with `birdc -s SOCK`.
//!
//! Quirks: the session is configured `multihop` with `gateway recursive`, so
//! routes whose next hop BIRD cannot resolve (every next hop on loopback
//! tests) stay in the table as `unreachable` with their BGP attributes intact.
//! MED on eBGP is only sent when set by the export filter, so every
//! attribute of originated routes is set there. BIRD logs a received Cease
//! as `<RMT> NAME: Received: Administrative shutdown`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use super::{Peer, PeerSpec, TIMEOUT, read_optional};
use crate::flowspec_support::{self, FlowRoute};
use crate::process::Daemon;
use crate::route::{Family, Origin, Route, canonical_addr, canonical_prefix, ext_community};
use crate::run_command;
use crate::wait::wait_until;

/// Name of the BGP protocol toward the remote in BIRD's config.
pub const PROTOCOL: &str = "session";

/// A BIRD 2 instance with one BGP session.
#[derive(Debug)]
pub struct Bird {
    spec: PeerSpec,
    daemon: Option<Daemon>,
    /// Whether the session also has `flow4` and `flow6` channels.
    flowspec: bool,
    /// The `route flow4 {...}` lines of the flow routes BIRD originates.
    flow_lines: Vec<String>,
}

impl Bird {
    /// A driver for `spec`; nothing runs until [`Peer::start`].
    pub fn new(spec: PeerSpec) -> Self {
        Self {
            spec,
            daemon: None,
            flowspec: false,
            flow_lines: Vec::new(),
        }
    }

    /// The same driver with `flow4` and `flow6` channels on the session (tables
    /// [`FLOW_TABLE4`] and [`FLOW_TABLE6`], `validate no`: no RFC 8955 §6 check, import
    /// all, export the static flow routes of [`Bird::with_flow_routes`]).
    pub fn with_flowspec(mut self) -> Self {
        self.flowspec = true;
        self
    }

    /// The same driver originating `routes` (static protocols `originate_flow4` and
    /// `originate_flow6`); fails on a route BIRD's config cannot say.
    pub fn with_flow_routes(mut self, routes: &[FlowRoute]) -> Result<Self> {
        self.flowspec = true;
        self.flow_lines = flow_lines(routes)?;
        Ok(self)
    }

    /// Originates `routes` instead of the flow routes so far: rewrites the config and
    /// has the running BIRD load it (`birdc configure`).
    pub fn set_flow_routes(&mut self, routes: &[FlowRoute]) -> Result<()> {
        ensure!(self.flowspec, "BIRD was configured without flowspec");
        self.flow_lines = flow_lines(routes)?;
        reconfigure(&self.spec.dir, &self.config())
    }

    /// The flow routes of both families learned on the session (`birdc show route table
    /// flowtab4 all protocol session`, and `flowtab6`); fails when birdc fails.
    pub fn flow_routes(&self) -> Result<Vec<FlowRoute>> {
        let mut routes = Vec::new();
        for table in [FLOW_TABLE4, FLOW_TABLE6] {
            let out =
                match self.birdc(&["show", "route", "table", table, "all", "protocol", PROTOCOL]) {
                    Ok(out) => out,
                    Err(error) if format!("{error:#}").contains("Network not found") => continue,
                    Err(error) => return Err(error),
                };
            routes.extend(flowspec_support::parse_bird_routes(&out)?);
        }
        routes.sort();
        Ok(routes)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.spec.dir.join(name)
    }

    /// Runs `birdc` with `args` and returns its output.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        birdc(&self.spec.dir, args)
    }

    fn config(&self) -> String {
        let spec = &self.spec;
        let mut conf = String::new();
        let _ = writeln!(conf, "router id {};", spec.address);
        let _ = writeln!(conf, "log \"{}\" all;", self.path("bird.log").display());
        conf.push_str("protocol device { scan time 10; }\n");
        for (family, channel) in [(Family::Ipv4, "ipv4"), (Family::Ipv6, "ipv6")] {
            let routes: Vec<&Route> = spec
                .originate
                .iter()
                .filter(|r| r.family() == family)
                .collect();
            if routes.is_empty() {
                continue;
            }
            let _ = writeln!(conf, "protocol static originate_{channel} {{\n  {channel};");
            for route in routes {
                let _ = writeln!(conf, "  route {} blackhole;", route.prefix);
            }
            conf.push_str("}\n");
        }
        if self.flowspec {
            let _ = writeln!(
                conf,
                "flow4 table {FLOW_TABLE4};\nflow6 table {FLOW_TABLE6};"
            );
            for (channel, table) in [("flow4", FLOW_TABLE4), ("flow6", FLOW_TABLE6)] {
                let _ = writeln!(
                    conf,
                    "protocol static originate_{channel} {{\n  {channel} {{ table {table}; }};"
                );
                for line in self
                    .flow_lines
                    .iter()
                    .filter(|l| l.starts_with(&format!("route {channel} ")))
                {
                    let _ = writeln!(conf, "  {line}");
                }
                conf.push_str("}\n");
            }
        }
        let _ = writeln!(conf, "protocol bgp {PROTOCOL} {{");
        let _ = writeln!(
            conf,
            "  local {} port {} as {};",
            spec.address, spec.port, spec.asn
        );
        let _ = writeln!(
            conf,
            "  neighbor {} port {} as {};",
            spec.remote.address, spec.remote.port, spec.remote.asn
        );
        conf.push_str("  multihop;\n");
        let _ = writeln!(conf, "  hold time {};", spec.hold_time);
        conf.push_str(
            "  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n",
        );
        for (family, channel, next_hop) in [
            (Family::Ipv4, "ipv4", spec.next_hop4.to_string()),
            (Family::Ipv6, "ipv6", spec.next_hop6.to_string()),
        ] {
            let _ = writeln!(
                conf,
                "  {channel} {{\n    import all;\n    export filter {{"
            );
            conf.push_str("      if source != RTS_STATIC then reject;\n");
            let with_attributes = |route: &&Route| {
                route.origin.is_some()
                    || route.med.is_some()
                    || route.local_pref.is_some()
                    || !route.communities.is_empty()
                    || !route.large_communities.is_empty()
            };
            for route in spec
                .originate
                .iter()
                .filter(|r| r.family() == family)
                .filter(with_attributes)
            {
                let _ = writeln!(conf, "      if net = {} then {{", route.prefix);
                if let Some(origin) = route.origin {
                    let name = match origin {
                        Origin::Igp => "ORIGIN_IGP",
                        Origin::Egp => "ORIGIN_EGP",
                        Origin::Incomplete => "ORIGIN_INCOMPLETE",
                    };
                    let _ = writeln!(conf, "        bgp_origin = {name};");
                }
                if let Some(med) = route.med {
                    let _ = writeln!(conf, "        bgp_med = {med};");
                }
                if let Some(pref) = route.local_pref {
                    let _ = writeln!(conf, "        bgp_local_pref = {pref};");
                }
                for community in &route.communities {
                    let _ = writeln!(
                        conf,
                        "        bgp_community.add(({}));",
                        community.replace(':', ",")
                    );
                }
                for community in &route.large_communities {
                    let _ = writeln!(
                        conf,
                        "        bgp_large_community.add(({}));",
                        community.replace(':', ",")
                    );
                }
                conf.push_str("      }\n");
            }
            conf.push_str("      accept;\n    };\n");
            let _ = writeln!(conf, "    next hop address {next_hop};");
            let _ = writeln!(
                conf,
                "    gateway recursive;\n    igp table master{};\n  }};",
                &channel[3..]
            );
        }
        if self.flowspec {
            for (channel, table) in [("flow4", FLOW_TABLE4), ("flow6", FLOW_TABLE6)] {
                let _ = writeln!(
                    conf,
                    "  {channel} {{\n    table {table};\n    validate no;\n    import all;\n    export where proto = \"originate_{channel}\";\n  }};"
                );
            }
        }
        conf.push_str("}\n");
        conf
    }
}

/// BIRD's table of IPv4 flow routes (`flow4 table flowtab4;`).
pub const FLOW_TABLE4: &str = "flowtab4";
/// BIRD's table of IPv6 flow routes.
pub const FLOW_TABLE6: &str = "flowtab6";

fn flow_lines(routes: &[FlowRoute]) -> Result<Vec<String>> {
    routes.iter().map(FlowRoute::bird_static_route).collect()
}

impl Peer for Bird {
    fn kind(&self) -> &'static str {
        "bird"
    }

    fn spec(&self) -> &PeerSpec {
        &self.spec
    }

    fn start(&mut self) -> Result<()> {
        self.daemon = Some(start_daemon(&self.spec.dir, &self.config())?);
        wait_daemon_up(&self.spec.dir, TIMEOUT)
    }

    fn session_established(&self) -> Result<bool> {
        let out = self.birdc(&["show", "protocols", PROTOCOL])?;
        Ok(out
            .lines()
            .any(|line| line.starts_with(PROTOCOL) && line.contains("Established")))
    }

    fn received_routes(&self) -> Result<Vec<Route>> {
        let out = self.birdc(&["show", "route", "all", "protocol", PROTOCOL])?;
        parse_show_route_all(&out)
    }

    fn received_route(&self, prefix: &str) -> Result<Option<Route>> {
        let prefix = canonical_prefix(prefix)?;
        let out = match self.birdc(&["show", "route", "for", &prefix, "all", "protocol", PROTOCOL])
        {
            Ok(out) => out,
            // birdc exits 1 when nothing matches.
            Err(error) if format!("{error:#}").contains("Network not found") => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok(parse_show_route_all(&out)?
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
        Ok(read_optional(&self.path("bird.log"))? + &read_optional(&self.path("bird.stdout"))?)
    }

    fn cease_log_pattern(&self) -> &'static str {
        "Received: Administrative shutdown"
    }
}

// ---------------------------------------------------------------------------
// Shared by every BIRD the tests start (this driver's and the plugin, policy and
// reload rigs'): each keeps its files in one directory `DIR` (`bird.conf`, control
// socket `bird.ctl`, `bird.pid`, `bird.log`, output in `bird.stdout`).

/// `birdc -s DIR/bird.ctl ARGS`, which must exit 0 and reach BIRD: a BIRD error
/// (such as "Network not found" or a syntax error) is an error here.
pub fn birdc(dir: &Path, args: &[&str]) -> Result<String> {
    let out = run_command(
        Command::new("birdc")
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .args(args),
    )?;
    if out
        .lines()
        .any(|line| line.starts_with("Unable to connect"))
    {
        bail!("birdc cannot connect: {out}");
    }
    Ok(out)
}

/// The first lines of a BIRD config: router id, log into `DIR/bird.log`, `protocol
/// device`.
pub fn config_head(dir: &Path, router_id: impl std::fmt::Display) -> String {
    let mut conf = String::new();
    let _ = writeln!(conf, "router id {router_id};");
    let _ = writeln!(conf, "log \"{}\" all;", dir.join("bird.log").display());
    conf.push_str("protocol device {}\n");
    conf
}

/// Writes `conf` as `DIR/bird.conf`, has `bird -p` accept it and starts `bird -f` on
/// it (socket `DIR/bird.ctl`, pid file `DIR/bird.pid`, output into `DIR/bird.stdout`).
pub fn start_daemon(dir: &Path, conf: &str) -> Result<Daemon> {
    start_daemon_with(dir, conf, &[])
}

/// [`start_daemon`], with `prefix` (such as `ip netns exec NS`, see
/// [`crate::netns::Netns::prefix`]) before `bird -f ...`.
pub fn start_daemon_with(dir: &Path, conf: &str, prefix: &[String]) -> Result<Daemon> {
    start_daemon_args(dir, conf, prefix, &[])
}

/// [`start_daemon_with`], with `args` added to BIRD's own (such as `-R`, graceful
/// restart recovery).
pub fn start_daemon_args(
    dir: &Path,
    conf: &str,
    prefix: &[String],
    args: &[&str],
) -> Result<Daemon> {
    let conf_path = dir.join("bird.conf");
    std::fs::write(&conf_path, conf)
        .with_context(|| format!("cannot write {}", conf_path.display()))?;
    run_command(Command::new("bird").arg("-p").arg("-c").arg(&conf_path))
        .context("BIRD rejected its configuration")?;
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg("bird");
            cmd
        }
        None => Command::new("bird"),
    };
    cmd.arg("-f")
        .args(args)
        .arg("-c")
        .arg(&conf_path)
        .arg("-s")
        .arg(dir.join("bird.ctl"))
        .arg("-P")
        .arg(dir.join("bird.pid"));
    Daemon::spawn("bird", cmd, &dir.join("bird.stdout"))
}

/// Writes `conf` as `DIR/bird.conf`, has `bird -p` accept it and the running BIRD of
/// `dir` load it (`birdc configure`, which must answer `Reconfigured` or
/// `Reconfiguration in progress`).
pub fn reconfigure(dir: &Path, conf: &str) -> Result<()> {
    let conf_path = dir.join("bird.conf");
    std::fs::write(&conf_path, conf)
        .with_context(|| format!("cannot write {}", conf_path.display()))?;
    run_command(Command::new("bird").arg("-p").arg("-c").arg(&conf_path))
        .context("BIRD rejected its new configuration")?;
    let out = birdc(dir, &["configure"])?;
    ensure!(
        out.lines().any(|line| line.starts_with("Reconfigured")
            || line.starts_with("Reconfiguration in progress")),
        "birdc configure did not reconfigure: {out}"
    );
    Ok(())
}

/// One `protocol bgp` of a config written session by session (the hardening tests:
/// TCP-MD5 with `password`, GTSM with `ttl security`), importing everything and
/// exporting nothing; its channel is `ipv4` or `ipv6` as the neighbor's address.
#[derive(Debug, Clone)]
pub struct BgpProtocol {
    /// Protocol name (not a BIRD keyword such as `out`).
    pub name: String,
    /// BIRD's address for the session.
    pub local: IpAddr,
    /// BIRD's port for the session.
    pub port: u16,
    /// BIRD's AS.
    pub asn: u32,
    /// The neighbor's address.
    pub neighbor: IpAddr,
    /// The neighbor's port (BIRD dials it unless `passive`). Protocols toward the same
    /// address and port take turns (one object lock): give each its own.
    pub neighbor_port: u16,
    /// The neighbor's AS.
    pub neighbor_as: u32,
    /// `passive on`: BIRD never connects.
    pub passive: bool,
    /// `multihop N`; `None`: a direct session (the neighbor on a connected network).
    pub multihop: Option<u8>,
    /// `password "..."`: TCP-MD5 (RFC 2385).
    pub password: Option<String>,
    /// `ttl security on`: GTSM (RFC 5082), expecting TTL 256 - hops (1 when direct).
    pub ttl_security: bool,
}

impl BgpProtocol {
    /// An active session `name` from `local:port` (AS `asn`) to
    /// `neighbor:neighbor_port` (AS `neighbor_as`), `multihop 64` (loopback), without
    /// password or GTSM.
    pub fn new(
        name: &str,
        (local, port, asn): (IpAddr, u16, u32),
        (neighbor, neighbor_port, neighbor_as): (IpAddr, u16, u32),
    ) -> Self {
        Self {
            name: name.to_owned(),
            local,
            port,
            asn,
            neighbor,
            neighbor_port,
            neighbor_as,
            passive: false,
            multihop: Some(64),
            password: None,
            ttl_security: false,
        }
    }

    /// The `protocol bgp NAME { ... }` block; state changes and events are logged.
    pub fn render(&self) -> Result<String> {
        let mut conf = String::new();
        let _ = writeln!(conf, "protocol bgp {} {{", self.name);
        let _ = writeln!(
            conf,
            "  local {} port {} as {};",
            self.local, self.port, self.asn
        );
        let _ = writeln!(
            conf,
            "  neighbor {} port {} as {};",
            self.neighbor, self.neighbor_port, self.neighbor_as
        );
        if self.passive {
            conf.push_str("  passive on;\n");
        }
        if let Some(hops) = self.multihop {
            let _ = writeln!(conf, "  multihop {hops};");
        }
        if let Some(password) = &self.password {
            ensure!(
                !password.contains(['"', '\\']),
                "protocol {}: a BIRD password here has no quote or backslash",
                self.name
            );
            let _ = writeln!(conf, "  password \"{password}\";");
        }
        if self.ttl_security {
            conf.push_str("  ttl security on;\n");
        }
        conf.push_str("  hold time 30;\n");
        conf.push_str(
            "  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 2;\n",
        );
        conf.push_str("  debug { states, events };\n");
        let channel = if self.neighbor.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let _ = writeln!(conf, "  {channel} {{ import all; export none; }};\n}}");
        Ok(conf)
    }
}

/// Waits up to `timeout` for the BIRD of `dir` to answer `birdc show status`.
pub fn wait_daemon_up(dir: &Path, timeout: Duration) -> Result<()> {
    wait_until("birdc to answer", timeout, || {
        Ok(birdc(dir, &["show", "status"]).is_ok_and(|out| out.contains("Daemon is up")))
    })
}

/// The log of the BIRD of `dir` so far: `bird.log`, then `bird.stdout` (a file
/// missing or unreadable: nothing).
pub fn read_log(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["bird.log", "bird.stdout"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            out.push_str(&text);
        }
    }
    out
}

/// One protocol's line of `birdc show protocols [all] NAME`:
/// `NAME PROTO TABLE STATE SINCE INFO...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolLine {
    /// `BGP`, `Static`, ...
    pub proto: String,
    /// The time of the last state change (`HH:MM:SS.mmm`; empty when the line ends
    /// before it).
    pub since: String,
    /// `Established`, `Active`, ... with any detail.
    pub info: String,
}

/// The line of protocol `name` in a `birdc show protocols [all]` answer.
pub fn protocol_line(out: &str, name: &str) -> Result<ProtocolLine> {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .with_context(|| format!("no protocol {name} in {out:?}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Ok(ProtocolLine {
        proto: words.get(1).copied().unwrap_or_default().to_owned(),
        since: words.get(4).copied().unwrap_or_default().to_owned(),
        info: words.get(5..).map(|w| w.join(" ")).unwrap_or_default(),
    })
}

/// The route counters of `birdc show protocols all NAME`, summed over its channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BirdCounters {
    /// "Import updates: received" (one per prefix announced to BIRD).
    pub import_updates: u64,
    /// "Import withdraws: received".
    pub import_withdraws: u64,
    /// "Export updates: accepted" (routes BIRD sent).
    pub export_updates: u64,
}

/// The route counters in a `birdc show protocols all NAME` answer, summed over its
/// channels; `None` when it shows none (no `Import updates:` line).
pub fn parse_counters(out: &str) -> Result<Option<BirdCounters>> {
    let number = |rest: &str, i: usize, line: &str| -> Result<u64> {
        rest.split_whitespace()
            .nth(i)
            .and_then(|w| w.parse().ok())
            .with_context(|| format!("bad counter line {line:?}"))
    };
    let mut counters = BirdCounters::default();
    let mut channels = 0;
    for line in out.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Import updates:") {
            counters.import_updates += number(rest, 0, line)?;
            channels += 1;
        } else if let Some(rest) = line.strip_prefix("Import withdraws:") {
            counters.import_withdraws += number(rest, 0, line)?;
        } else if let Some(rest) = line.strip_prefix("Export updates:") {
            counters.export_updates += number(rest, 4, line)?;
        }
    }
    Ok((channels > 0).then_some(counters))
}

/// The number of routes in a `birdc show route ... count` answer
/// (`N of M routes for K networks in table T`, one line per table), summed over its
/// tables; an answer without such a line is an error.
pub fn parse_count(out: &str) -> Result<u64> {
    let mut total = 0u64;
    let mut tables = 0;
    for line in out.lines() {
        if line.contains(" routes for ") && line.contains(" in table ") {
            total += line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .with_context(|| format!("bad count line {line:?}"))?;
            tables += 1;
        }
    }
    ensure!(tables > 0, "no count in birdc's answer {out:?}");
    Ok(total)
}

/// Parses `birdc show route all` output (any number of tables).
pub fn parse_show_route_all(out: &str) -> Result<Vec<Route>> {
    let mut routes: Vec<Route> = Vec::new();
    let mut current_prefix: Option<String> = None;
    for line in out.lines() {
        if line.is_empty() || line.starts_with("BIRD ") || line.starts_with("Table ") {
            continue;
        }
        if let Some(attr) = line.strip_prefix('\t') {
            let route = routes
                .last_mut()
                .context("attribute line before any route")?;
            parse_attribute(route, attr.trim())
                .with_context(|| format!("bad BIRD line {line:?}"))?;
        } else if line.starts_with(' ') {
            // Another route for the same prefix (from an alternative path).
            let prefix = current_prefix
                .clone()
                .context("continuation line before any route")?;
            routes.push(Route::new(&prefix)?);
        } else {
            let prefix = line.split_whitespace().next().context("empty route line")?;
            let route =
                Route::new(prefix).with_context(|| format!("bad BIRD route line {line:?}"))?;
            current_prefix = Some(route.prefix.clone());
            routes.push(route);
        }
    }
    Ok(routes)
}

fn parse_attribute(route: &mut Route, attr: &str) -> Result<()> {
    let Some((name, value)) = attr.split_once(':') else {
        return Ok(());
    };
    let value = value.trim();
    match name {
        "BGP.origin" => route.origin = Some(Origin::parse(value)?),
        "BGP.as_path" => {
            route.as_path = value
                .split_whitespace()
                .map(|asn| {
                    asn.trim_matches(|c| c == '{' || c == '}')
                        .parse()
                        .context("bad AS number")
                })
                .collect::<Result<_>>()?;
        }
        "BGP.next_hop" => {
            // IPv6 next hops may come with a link-local second address.
            let first = value.split_whitespace().next().context("empty next hop")?;
            route.next_hop = Some(canonical_addr(first)?);
        }
        "BGP.med" => route.med = Some(value.parse().context("bad MED")?),
        "BGP.local_pref" => route.local_pref = Some(value.parse().context("bad local pref")?),
        "BGP.community" => route.communities = parse_tuples(value),
        "BGP.large_community" => route.large_communities = parse_tuples(value),
        "BGP.ext_community" => {
            route.extended_communities = parse_tuples(value)
                .iter()
                .map(|c| ext_community(c))
                .collect();
        }
        _ => {}
    }
    Ok(())
}

/// `(65000,1) (65000,2)` or `(65000, 1, 2)` → `["65000:1", ...]`.
fn parse_tuples(value: &str) -> Vec<String> {
    value
        .split(')')
        .filter_map(|chunk| chunk.trim().strip_prefix('('))
        .map(|tuple| {
            tuple
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(":")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_route_all() {
        let out = "BIRD 2.0.12 ready.\nTable master4:\n198.51.100.0/24      unreachable [remote 15:19:49.383 from 127.0.9.1] * (100) [AS65011e]\n\tType: BGP univ\n\tBGP.origin: EGP\n\tBGP.as_path: 65001 65010 65011\n\tBGP.next_hop: 192.0.2.1\n\tBGP.med: 20\n\tBGP.local_pref: 100\n\tBGP.community: (65001,5) (65001,6)\n\tBGP.large_community: (65001, 1, 1)\n\tBGP.ext_community: (rt, 65001, 7)\n\nTable master6:\n2001:db8:5::/48      unreachable [remote 15:19:49.388 from 127.0.9.1] * (100) [AS65001?]\n\tType: BGP univ\n\tBGP.origin: Incomplete\n\tBGP.as_path: 65001\n\tBGP.next_hop: 2001:db8::1 fe80::1\n";
        let routes = parse_show_route_all(out).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].as_path, vec![65001, 65010, 65011]);
        assert_eq!(routes[0].communities, vec!["65001:5", "65001:6"]);
        assert_eq!(routes[0].large_communities, vec!["65001:1:1"]);
        assert_eq!(routes[0].med, Some(20));
        assert_eq!(routes[0].extended_communities, vec!["target:65001:7"]);
        assert_eq!(routes[1].prefix, "2001:db8:5::/48");
        assert_eq!(routes[1].next_hop.as_deref(), Some("2001:db8::1"));
        assert_eq!(routes[1].origin, Some(Origin::Incomplete));
    }

    #[test]
    fn parses_protocols_and_counts() {
        let out = "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\nn1         BGP        ---        up     17:18:59.245  Established   \n  BGP state:          Established\n  Channel ipv4\n    Route change stats:     received   rejected   filtered    ignored   accepted\n      Import updates:              5          0          0          0          5\n      Import withdraws:            1          0        ---          0          1\n      Export updates:              3          0          0        ---          2\n    Last error:       Received: Peer de-configured\n";
        let line = protocol_line(out, "n1").unwrap();
        assert_eq!(line.proto, "BGP");
        assert_eq!(line.since, "17:18:59.245");
        assert_eq!(line.info, "Established");
        assert!(protocol_line(out, "n2").is_err());
        assert_eq!(
            parse_counters(out).unwrap(),
            Some(BirdCounters {
                import_updates: 5,
                import_withdraws: 1,
                export_updates: 2,
            })
        );
        assert_eq!(parse_counters("BIRD 2.0.12 ready.\n").unwrap(), None);
        let count = "BIRD 2.0.12 ready.\n3 of 3 routes for 3 networks in table master4\n1 of 1 routes for 1 networks in table master6\n";
        assert_eq!(parse_count(count).unwrap(), 4);
        assert!(parse_count("BIRD 2.0.12 ready.\n").is_err());
    }
}
