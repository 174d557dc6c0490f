//! Support for the policy-plugin end-to-end tests (`tests/policy_*.rs`):
//! `world = "policy"` `[[plugin]]` blocks, a BIRD 2 that originates static
//! routes with per-group AS paths, communities and MEDs and is queried
//! strictly (a failing `birdc` is an error, never "no route"), and a rig of
//! one BIRD and one wasmbgp with import and export chains.
//!
//! Addresses follow [`PluginBlock`]: BIRD on `127.0.B.2` port 0 of the
//! block, wasmbgp on `127.0.B.1` port 1 (a GoBGP peer uses port 2 for its
//! API).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::peers::bird::{self, BirdCounters, parse_show_route_all};
use crate::plugin_support::{
    BIRD_AS, PluginBlock, PluginSpeaker, WASMBGP_AS, component, same_since,
};
use crate::process::Daemon;
use crate::route::Route;
use crate::wait::{DEFAULT_TIMEOUT, wait_until};
use crate::wasmbgp::{RouteAttrs, RouteFile, parse_rib, toml_str};
use crate::workdir::WorkDir;

// ---------------------------------------------------------------------------
// Policy plugin blocks.

/// One `[[plugin]]` block with `world = "policy"`.
#[derive(Debug, Clone)]
pub struct PolicyPlugin {
    /// Unique name (what `import-policy` / `export-policy` refer to).
    pub name: String,
    /// Component file.
    pub component: PathBuf,
    /// `on-failure`: `reject` (the daemon's default when `None`) or `accept`.
    pub on_failure: Option<String>,
    /// `[plugin.settings]`, in order.
    pub settings: Vec<(String, String)>,
    /// `grants.files` (absolute paths).
    pub files: Vec<PathBuf>,
    /// `grants.deadline`.
    pub deadline: Option<String>,
    /// `grants.memory`.
    pub memory: Option<String>,
}

impl PolicyPlugin {
    /// A policy running `target/plugins/COMPONENT.wasm` (built if needed).
    pub fn new(name: &str, component_name: &str) -> Result<Self> {
        Ok(Self::with_component(name, component(component_name)?))
    }

    /// A policy running the component file `path`.
    pub fn with_component(name: &str, path: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            component: path,
            on_failure: None,
            settings: Vec::new(),
            files: Vec::new(),
            deadline: None,
            memory: None,
        }
    }

    /// Adds (or replaces) a setting.
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.retain(|(k, _)| k != key);
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets `on-failure`.
    pub fn on_failure(mut self, value: &str) -> Self {
        self.on_failure = Some(value.to_owned());
        self
    }

    /// Grants a data file.
    pub fn file(mut self, path: &Path) -> Self {
        self.files.push(path.to_path_buf());
        self
    }

    /// The TOML block.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n[[plugin]]\nname = {}", toml_str(&self.name));
        out.push_str("world = \"policy\"\n");
        let _ = writeln!(
            out,
            "component = {}",
            toml_str(&self.component.display().to_string())
        );
        if let Some(on_failure) = &self.on_failure {
            let _ = writeln!(out, "on-failure = {}", toml_str(on_failure));
        }
        out.push_str("[plugin.settings]\n");
        for (k, v) in &self.settings {
            let _ = writeln!(out, "{k} = {}", toml_str(v));
        }
        out.push_str("[plugin.grants]\n");
        if !self.files.is_empty() {
            let files: Vec<String> = self
                .files
                .iter()
                .map(|f| toml_str(&f.display().to_string()))
                .collect();
            let _ = writeln!(out, "files = [{}]", files.join(", "));
        }
        if let Some(deadline) = &self.deadline {
            let _ = writeln!(out, "deadline = {}", toml_str(deadline));
        }
        if let Some(memory) = &self.memory {
            let _ = writeln!(out, "memory = {}", toml_str(memory));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Route and prefix helpers.

/// The `i`-th /24 from `base` (`20.0.0.0` + i → `20.0.i.0/24`, carrying
/// into the higher octets).
pub fn slash24(base: Ipv4Addr, i: u32) -> String {
    let addr = Ipv4Addr::from(u32::from(base) + (i << 8));
    format!("{addr}/24")
}

/// The fewest prefixes that cover exactly the /24s `start..end` counted
/// from `base` (as [`slash24`] numbers them).
pub fn cover_slash24s(base: Ipv4Addr, start: u32, end: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        // The largest aligned block of /24s starting at `at` within the range.
        let mut size = 1u32;
        while size < (1 << 24) && at.is_multiple_of(size * 2) && at + size * 2 <= end {
            size *= 2;
        }
        let len = 24 - size.trailing_zeros();
        let addr = Ipv4Addr::from(u32::from(base) + (at << 8));
        out.push(format!("{addr}/{len}"));
        at += size;
    }
    out
}

/// One VRP of a JSON VRP file.
#[derive(Debug, Clone)]
pub struct Vrp {
    /// Origin AS.
    pub asn: u32,
    /// Prefix.
    pub prefix: String,
    /// `maxLength`.
    pub max_length: u8,
}

impl Vrp {
    /// `AS<asn>` may originate `prefix` and its more-specifics up to `max_length`.
    pub fn new(asn: u32, prefix: &str, max_length: u8) -> Self {
        Self {
            asn,
            prefix: prefix.to_owned(),
            max_length,
        }
    }
}

/// Writes `vrps` as rpki-client's JSON to `path`, atomically (a temporary
/// file beside it, then a rename), as a validator replaces its output.
pub fn write_vrps(path: &Path, vrps: &[Vrp]) -> Result<()> {
    let roas: Vec<Value> = vrps
        .iter()
        .map(|v| {
            serde_json::json!({
                "asn": format!("AS{}", v.asn),
                "prefix": v.prefix,
                "maxLength": v.max_length,
                "ta": "test",
            })
        })
        .collect();
    let json = serde_json::json!({ "metadata": { "generated": 0 }, "roas": roas });
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// The value of the sample `name{labels...}` in a Prometheus exposition
/// (every label pair in `labels` must be present; others may be too).
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_samples(exposition, name, labels).next()
}

/// The values of every sample `name{labels...}` in a Prometheus exposition (every label
/// pair in `labels` present; others may be too), in order.
pub fn metric_samples<'a>(
    exposition: &'a str,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = f64> + 'a {
    exposition.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once('}')?,
            None if rest.starts_with(' ') => ("", rest),
            None => return None,
        };
        let all = labels.iter().all(|(k, v)| {
            label_text
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        });
        if !all {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

// ---------------------------------------------------------------------------
// wasmbgp's tables.

/// One row of `show adj-rib-in/out --json`.
#[derive(Debug, Clone)]
pub struct RibRow {
    /// The route.
    pub route: Route,
    /// `source` (Adj-RIB-Out before export policy): config, ctl, plugin:NAME.
    pub source: Option<String>,
}

/// `show adj-rib-in|adj-rib-out NEIGHBOR [--pre-policy] --json`.
pub fn adj_rib(
    speaker: &PluginSpeaker,
    table: &str,
    neighbor: &str,
    pre_policy: bool,
) -> Result<Vec<RibRow>> {
    let mut args = vec!["show", table, neighbor];
    if pre_policy {
        args.push("--pre-policy");
    }
    args.push("--json");
    let json = speaker.ctl_json(&args)?;
    let routes = parse_rib(&json)?;
    let sources = json
        .as_array()
        .context("RIB JSON is not an array")?
        .iter()
        .map(|entry| entry["source"].as_str().map(str::to_owned));
    Ok(routes
        .into_iter()
        .zip(sources)
        .map(|(route, source)| RibRow { route, source })
        .collect())
}

/// Finds `prefix` among `rows`.
pub fn find_row<'a>(rows: &'a [RibRow], prefix: &str) -> Option<&'a RibRow> {
    rows.iter().find(|r| r.route.prefix == prefix)
}

/// Finds `prefix` among `routes`.
pub fn find_route<'a>(routes: &'a [Route], prefix: &str) -> Option<&'a Route> {
    routes.iter().find(|r| r.prefix == prefix)
}

// ---------------------------------------------------------------------------
// BIRD originating static routes.

/// Static routes BIRD originates toward wasmbgp with the same attributes:
/// one `protocol static` per family, matched by name in the export filter.
#[derive(Debug, Clone)]
pub struct StaticGroup {
    /// Group name (a BIRD symbol: letters, digits, `_`).
    pub name: String,
    /// IPv4 and/or IPv6 prefixes.
    pub prefixes: Vec<String>,
    /// AS numbers after BIRD's own: the path wasmbgp receives is
    /// `65000 path...`, so the origin AS is the last one (BIRD's own AS
    /// when empty).
    pub path: Vec<u32>,
    /// Standard communities `A:B`.
    pub communities: Vec<String>,
    /// MED.
    pub med: Option<u32>,
}

impl StaticGroup {
    /// A group without attributes.
    pub fn new<S: Into<String>>(name: &str, prefixes: impl IntoIterator<Item = S>) -> Self {
        Self {
            name: name.to_owned(),
            prefixes: prefixes.into_iter().map(Into::into).collect(),
            path: Vec::new(),
            communities: Vec::new(),
            med: None,
        }
    }

    /// Sets the AS path after BIRD's own AS.
    pub fn path(mut self, asns: &[u32]) -> Self {
        self.path = asns.to_vec();
        self
    }

    /// Adds communities.
    pub fn communities(mut self, communities: &[&str]) -> Self {
        self.communities
            .extend(communities.iter().map(|c| (*c).to_owned()));
        self
    }
}

/// A BIRD 2 with one BGP session toward a wasmbgp, originating
/// [`StaticGroup`]s and importing everything it is sent.
#[derive(Debug)]
pub struct PolicyBird {
    dir: PathBuf,
    /// The BGP protocol's name.
    pub protocol: String,
    daemon: Option<Daemon>,
}

impl PolicyBird {
    /// Writes the config, validates it, starts BIRD (`local` as `BIRD_AS`,
    /// session to `remote` as `WASMBGP_AS`) and waits for `birdc`.
    pub fn start(
        dir: &Path,
        local: (Ipv4Addr, u16),
        remote: (Ipv4Addr, u16),
        groups: &[StaticGroup],
        ipv6: bool,
    ) -> Result<Self> {
        let protocol = "wasm".to_owned();
        let conf = Self::config(dir, &protocol, local, remote, groups, ipv6)?;
        let daemon = bird::start_daemon(dir, &conf)?;
        let bird = Self {
            dir: dir.to_path_buf(),
            protocol,
            daemon: Some(daemon),
        };
        bird::wait_daemon_up(dir, DEFAULT_TIMEOUT)?;
        Ok(bird)
    }

    fn config(
        dir: &Path,
        protocol: &str,
        local: (Ipv4Addr, u16),
        remote: (Ipv4Addr, u16),
        groups: &[StaticGroup],
        ipv6: bool,
    ) -> Result<String> {
        let mut conf = bird::config_head(dir, local.0);
        // Per family, the static protocols and their filter clauses.
        let mut filters = [String::new(), String::new()];
        for group in groups {
            ensure!(
                group
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "group name {:?} is not a BIRD symbol",
                group.name
            );
            for (f, (family, suffix)) in [("ipv4", "4"), ("ipv6", "6")].into_iter().enumerate() {
                let prefixes: Vec<&String> = group
                    .prefixes
                    .iter()
                    .filter(|p| p.contains(':') == (f == 1))
                    .collect();
                if prefixes.is_empty() {
                    continue;
                }
                ensure!(
                    ipv6 || f == 0,
                    "IPv6 routes in group {} need ipv6",
                    group.name
                );
                let name = format!("{}_{suffix}", group.name);
                let _ = writeln!(conf, "protocol static {name} {{\n  {family};");
                for prefix in prefixes {
                    let _ = writeln!(conf, "  route {prefix} blackhole;");
                }
                conf.push_str("}\n");
                let mut clause = String::new();
                // prepend() puts an AS in front: the last of the path first.
                for asn in group.path.iter().rev() {
                    let _ = write!(clause, " bgp_path.prepend({asn});");
                }
                for community in &group.communities {
                    let (a, b) = community
                        .split_once(':')
                        .with_context(|| format!("bad community {community:?}"))?;
                    let _ = write!(clause, " bgp_community.add(({a},{b}));");
                }
                if let Some(med) = group.med {
                    let _ = write!(clause, " bgp_med = {med};");
                }
                if !clause.is_empty() {
                    let _ = writeln!(filters[f], "      if proto = \"{name}\" then {{{clause} }}");
                }
            }
        }
        let _ = writeln!(conf, "protocol bgp {protocol} {{");
        let _ = writeln!(conf, "  local {} port {} as {BIRD_AS};", local.0, local.1);
        let _ = writeln!(
            conf,
            "  neighbor {} port {} as {WASMBGP_AS};",
            remote.0, remote.1
        );
        conf.push_str("  multihop;\n  hold time 30;\n");
        conf.push_str(
            "  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n",
        );
        let channels: &[(&str, usize)] = if ipv6 {
            &[("ipv4", 0), ("ipv6", 1)]
        } else {
            &[("ipv4", 0)]
        };
        for &(family, f) in channels {
            let _ = writeln!(conf, "  {family} {{\n    import all;\n    export filter {{");
            conf.push_str("      if source != RTS_STATIC then reject;\n");
            conf.push_str(&filters[f]);
            conf.push_str("      accept;\n    };\n");
            if f == 1 {
                conf.push_str("    next hop address 2001:db8::2;\n");
                conf.push_str("    gateway recursive;\n    igp table master6;\n");
            }
            conf.push_str("  };\n");
        }
        conf.push_str("}\n");
        Ok(conf)
    }

    /// `birdc -s SOCK ARGS`, which must exit 0 (a BIRD error, such as
    /// "Network not found" or a syntax error, is an error here).
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        bird::birdc(&self.dir, args)
    }

    /// Disables or enables the static protocols of group `name`: BIRD
    /// withdraws or announces its routes again.
    pub fn set_group(&self, name: &str, enabled: bool) -> Result<()> {
        let verb = if enabled { "enable" } else { "disable" };
        let out = self.birdc(&["show", "protocols"])?;
        let protocols: Vec<String> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|p| *p == format!("{name}_4") || *p == format!("{name}_6"))
            .map(str::to_owned)
            .collect();
        ensure!(
            !protocols.is_empty(),
            "no static protocol for group {name} in {out}"
        );
        for protocol in protocols {
            let answer = self.birdc(&[verb, &protocol])?;
            ensure!(
                answer.contains(&format!("{protocol}: {verb}d")),
                "birdc {verb} {protocol}: {answer}"
            );
        }
        Ok(())
    }

    /// The `show protocols` line of the BGP session: `(info, since)`, such
    /// as `("Established", "15:49:01.123")`.
    pub fn session(&self) -> Result<(String, String)> {
        let out = self.birdc(&["show", "protocols", &self.protocol])?;
        let line = bird::protocol_line(&out, &self.protocol)?;
        Ok((line.info, line.since))
    }

    /// Whether the BGP session is Established.
    pub fn established(&self) -> Result<bool> {
        Ok(self.session()?.0.starts_with("Established"))
    }

    /// Every route BIRD learned from wasmbgp, with its attributes.
    pub fn routes(&self) -> Result<Vec<Route>> {
        let out = self.birdc(&["show", "route", "all", "protocol", &self.protocol])?;
        parse_show_route_all(&out)
    }

    /// The route BIRD learned from wasmbgp for exactly `prefix`, if any
    /// (`birdc` answering "Network not found" is the only "none"; any other
    /// failure is an error).
    pub fn route(&self, prefix: &str) -> Result<Option<Route>> {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .args(["show", "route", prefix, "all", "protocol", &self.protocol])
            .output()
            .context("cannot run birdc")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("BIRD ")).collect();
            if lines == ["Network not found"] {
                return Ok(None);
            }
            bail!(
                "birdc show route {prefix} failed ({}): {text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let canonical = crate::route::canonical_prefix(prefix)?;
        let routes = parse_show_route_all(&text)?;
        ensure!(
            routes.len() == 1 && routes[0].prefix == canonical,
            "birdc show route {prefix}: {text}"
        );
        Ok(routes.into_iter().next())
    }

    /// [`PolicyBird::route`] for each of `prefixes`.
    pub fn routes_for(&self, prefixes: &[String]) -> Result<Vec<(String, Option<Route>)>> {
        prefixes
            .iter()
            .map(|p| Ok((p.clone(), self.route(p)?)))
            .collect()
    }

    /// How many routes BIRD learned from wasmbgp, optionally only those
    /// matching a BIRD filter expression (`bgp_community ~ [(65001,100)]`).
    pub fn count(&self, filter: Option<&str>) -> Result<u64> {
        let mut args = vec!["show", "route", "protocol", self.protocol.as_str()];
        if let Some(filter) = filter {
            args.push("where");
            args.push(filter);
        }
        args.push("count");
        bird::parse_count(&self.birdc(&args)?)
    }

    /// The route counters of the BGP session, summed over its channels.
    pub fn counters(&self) -> Result<BirdCounters> {
        let out = self.birdc(&["show", "protocols", "all", &self.protocol])?;
        bird::parse_counters(&out)?.with_context(|| format!("no route counters in {out:?}"))
    }

    /// BIRD's log so far.
    pub fn log(&self) -> String {
        bird::read_log(&self.dir)
    }
}

impl Drop for PolicyBird {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
        }
    }
}

// ---------------------------------------------------------------------------
// The rig: one BIRD, one wasmbgp with policies.

/// What a [`PolicyRig`] runs.
#[derive(Debug, Clone, Default)]
pub struct RigSpec {
    /// Policy plugins.
    pub plugins: Vec<PolicyPlugin>,
    /// The neighbor's `import-policy`.
    pub import_policy: Vec<String>,
    /// The neighbor's `export-policy`.
    pub export_policy: Vec<String>,
    /// What BIRD originates.
    pub bird_groups: Vec<StaticGroup>,
    /// Both families on the session (else IPv4 only).
    pub ipv6: bool,
    /// wasmbgp's `[[route]]`s.
    pub routes: Vec<(String, RouteAttrs)>,
    /// wasmbgp's `[[route-file]]`s.
    pub route_files: Vec<RouteFile>,
}

/// One BIRD (`127.0.B.2`, port 0) and one wasmbgp (`127.0.B.1`, port 1)
/// with policy plugins, session Established.
pub struct PolicyRig {
    /// Test name (for progress lines).
    pub test: String,
    /// The block.
    pub block: PluginBlock,
    /// wasmbgp.
    pub speaker: PluginSpeaker,
    /// BIRD.
    pub bird: PolicyBird,
    /// BIRD's `since` of the session once Established.
    pub bird_since: String,
    /// The work directory (dropped last: kept when the test panics).
    pub dir: WorkDir,
}

impl PolicyRig {
    /// Creates the work directory, has `build` make the spec (it may write
    /// data files into the directory it is given), starts BIRD and wasmbgp,
    /// and waits for the session on both sides.
    pub fn start(
        test: &str,
        block: PluginBlock,
        build: impl FnOnce(&Path) -> Result<RigSpec>,
    ) -> Result<Self> {
        let dir = WorkDir::new(test)?;
        let spec = build(&dir.subdir("data")?)?;
        let bird = PolicyBird::start(
            &dir.subdir("bird")?,
            (block.addr(2), block.port(0)),
            (block.addr(1), block.port(1)),
            &spec.bird_groups,
            spec.ipv6,
        )?;
        let mut config =
            PluginSpeaker::base_config(block.addr(1), block.port(1), block.addr(2), block.port(0));
        {
            let n = &mut config.neighbors[0];
            if spec.ipv6 {
                n.families.push("ipv6-unicast".to_owned());
            }
            n.import_policy = spec.import_policy.clone();
            n.export_policy = spec.export_policy.clone();
        }
        config.routes = spec.routes.clone();
        config.route_files = spec.route_files.clone();
        let extra: String = spec.plugins.iter().map(PolicyPlugin::render).collect();
        let speaker = PluginSpeaker::start_with(&dir.subdir("wasmbgp")?, &config, &extra)?;
        let rig_dir = dir;
        let result = (|| -> Result<String> {
            wait_until("BIRD session Established", DEFAULT_TIMEOUT, || {
                bird.established()
            })?;
            wait_until("wasmbgp session Established", DEFAULT_TIMEOUT, || {
                Ok(speaker.session()?.0 == "established")
            })?;
            Ok(bird.session()?.1)
        })();
        let bird_since = match result {
            Ok(since) => since,
            Err(e) => {
                eprintln!("[{test}] --- BIRD log ---\n{}", tail(&bird.log(), 40));
                eprintln!("[{test}] --- wasmbgp log ---\n{}", tail(&speaker.log(), 60));
                return Err(e);
            }
        };
        crate::step(test, format!("session up (BIRD since {bird_since})"));
        Ok(Self {
            test: test.to_owned(),
            block,
            speaker,
            bird,
            bird_since,
            dir: rig_dir,
        })
    }

    /// The neighbor's address as wasmbgp's ctl names it (BIRD's).
    pub fn neighbor(&self) -> String {
        self.block.addr(2).to_string()
    }

    /// `show adj-rib-in NEIGHBOR [--pre-policy]`.
    pub fn adj_rib_in(&self, pre_policy: bool) -> Result<Vec<RibRow>> {
        adj_rib(&self.speaker, "adj-rib-in", &self.neighbor(), pre_policy)
    }

    /// `show adj-rib-out NEIGHBOR [--pre-policy]`.
    pub fn adj_rib_out(&self, pre_policy: bool) -> Result<Vec<RibRow>> {
        adj_rib(&self.speaker, "adj-rib-out", &self.neighbor(), pre_policy)
    }

    /// A ctl command given as one line (split on whitespace).
    pub fn ctl_line(&self, line: &str) -> Result<String> {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.speaker.ctl(&args)
    }

    /// `show neighbors --json`, the neighbor's entry.
    pub fn neighbor_json(&self) -> Result<Value> {
        let json = self.speaker.ctl_json(&["show", "neighbors", "--json"])?;
        json.as_array()
            .and_then(|a| a.first())
            .cloned()
            .with_context(|| format!("no neighbor in {json}"))
    }

    /// Progress line.
    pub fn step(&self, message: impl std::fmt::Display) {
        crate::step(&self.test, message);
    }

    /// The session never reset: Established on both sides, wasmbgp's
    /// `established-count` still 1 and BIRD's `since` unchanged.
    pub fn assert_session_untouched(&self) -> Result<()> {
        let (state, count) = self.speaker.session()?;
        let (bird_state, since) = self.bird.session()?;
        if state != "established"
            || count != 1
            || !bird_state.starts_with("Established")
            || !same_since(&since, &self.bird_since)
        {
            bail!(
                "session disturbed: wasmbgp {state} established-count {count}; BIRD {bird_state} since {since} (was {})",
                self.bird_since
            );
        }
        Ok(())
    }

    /// Prints both daemons' log tails.
    pub fn dump(&self) {
        eprintln!(
            "[{}] --- BIRD log tail ---\n{}",
            self.test,
            tail(&self.bird.log(), 40)
        );
        eprintln!(
            "[{}] --- wasmbgp log tail ---\n{}",
            self.test,
            tail(&self.speaker.log(), 80)
        );
    }

    /// Runs `body`; on failure prints the logs and panics with the error.
    pub fn run(self, body: impl FnOnce(&Self) -> Result<()>) {
        let started = Instant::now();
        match body(&self) {
            Ok(()) => self.step(format!("passed after {:?}", started.elapsed())),
            Err(e) => {
                self.dump();
                panic!("[{}] {e:#}", self.test);
            }
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits, polling every `every` for at most `timeout`, until `probe`
/// returns the same value `settle`-long in a row; returns that value. For
/// counters that must stop moving before they are compared.
pub fn wait_stable<T: PartialEq + Clone + std::fmt::Debug>(
    what: &str,
    every: Duration,
    settle: Duration,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T>,
) -> Result<T> {
    let start = Instant::now();
    let mut last: Option<(T, Instant)> = None;
    loop {
        let value = probe()?;
        match &last {
            Some((v, since)) if *v == value => {
                if since.elapsed() >= settle {
                    return Ok(value);
                }
            }
            _ => last = Some((value, Instant::now())),
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what} to settle; last {last:?}");
        }
        std::thread::sleep(every);
    }
}

// ---------------------------------------------------------------------------
// The export chain shared by the BIRD and GoBGP tests.

/// Config routes through the export chain `deny` (as-path-filter) →
/// `tagger` (community-tagger) → `setmed` (fixture-policy, mode med), and
/// what the peer must receive of them.
pub mod export_chain {
    use std::collections::BTreeSet;

    use anyhow::{Context, Result, ensure};

    use super::{PolicyPlugin, RibRow, find_route, find_row};
    use crate::plugin_support::{PluginSpeaker, WASMBGP_AS};
    use crate::route::Route;
    use crate::wasmbgp::RouteAttrs;

    /// The AS the first policy denies.
    pub const DENIED_AS: u32 = 65666;
    /// The tagger's prefixes.
    pub const TAGGED: &str = "20.1.0.0/16";
    /// The communities it adds.
    pub const TAGS: [&str; 2] = ["65001:100", "65001:200"];
    /// The MED the last policy sets.
    pub const MED: u32 = 500;

    /// One config route and its fate.
    #[derive(Debug, Clone)]
    pub struct Case {
        /// Prefix.
        pub prefix: &'static str,
        /// Configured AS path.
        pub as_path: Vec<u32>,
        /// Configured MED.
        pub med: Option<u32>,
        /// Configured communities.
        pub communities: Vec<&'static str>,
        /// Passes the chain (no denied AS in its path).
        pub sent: bool,
        /// Inside [`TAGGED`].
        pub tagged: bool,
    }

    /// The routes.
    pub fn cases() -> Vec<Case> {
        let case =
            |prefix, as_path: &[u32], med, communities: &[&'static str], sent, tagged| Case {
                prefix,
                as_path: as_path.to_vec(),
                med,
                communities: communities.to_vec(),
                sent,
                tagged,
            };
        vec![
            case("20.1.0.0/24", &[65010], Some(10), &[], true, true),
            case("20.1.1.0/24", &[DENIED_AS], None, &[], false, true),
            case("20.2.0.0/24", &[], Some(20), &[], true, false),
            case(
                "20.2.1.0/24",
                &[65020, DENIED_AS],
                Some(30),
                &[],
                false,
                false,
            ),
            case("20.1.2.0/24", &[], None, &["65001:7"], true, true),
            case("20.1.0.0/16", &[65010, 65011], None, &[], true, true),
            case("20.3.0.0/24", &[65030], Some(40), &["65001:7"], true, false),
        ]
    }

    /// The three policies.
    pub fn plugins() -> Result<Vec<PolicyPlugin>> {
        Ok(vec![
            PolicyPlugin::new("deny", "as-path-filter")?
                .setting("deny-asns", &DENIED_AS.to_string()),
            PolicyPlugin::new("tagger", "community-tagger")?
                .setting("prefixes", TAGGED)
                .setting("communities", &TAGS.join(",")),
            PolicyPlugin::new("setmed", "fixture-policy")?
                .setting("mode", "med")
                .setting("med", &MED.to_string()),
        ])
    }

    /// The neighbor's `export-policy`.
    pub fn chain() -> Vec<String> {
        vec!["deny".into(), "tagger".into(), "setmed".into()]
    }

    /// The `[[route]]`s (`next_hop`: `None` for self).
    pub fn routes(next_hop: Option<&str>) -> Vec<(String, RouteAttrs)> {
        cases()
            .into_iter()
            .map(|c| {
                let attrs = RouteAttrs {
                    next_hop: next_hop.map(str::to_owned),
                    med: c.med,
                    as_path: c.as_path.clone(),
                    communities: c.communities.iter().map(|s| (*s).to_owned()).collect(),
                    ..RouteAttrs::default()
                };
                (c.prefix.to_owned(), attrs)
            })
            .collect()
    }

    fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        items.into_iter().map(str::to_owned).collect()
    }

    /// The communities case `c` must have after the chain.
    fn expected_communities(c: &Case) -> BTreeSet<String> {
        let mut out = set(c.communities.iter().copied());
        if c.tagged {
            out.extend(TAGS.iter().map(|t| (*t).to_owned()));
        }
        out
    }

    /// Whether the peer's table (`received`: every route it learned from
    /// wasmbgp) is exactly what the chain lets through: the denied routes
    /// absent, tags on the tagged ones only, every MED rewritten, the AS
    /// path our AS then the configured one.
    pub fn check_peer(received: &[Route]) -> Result<()> {
        let sent: Vec<Case> = cases().into_iter().filter(|c| c.sent).collect();
        let got: BTreeSet<&str> = received.iter().map(|r| r.prefix.as_str()).collect();
        let want: BTreeSet<&str> = sent.iter().map(|c| c.prefix).collect();
        ensure!(got == want, "the peer has {got:?}, expected {want:?}");
        for c in &sent {
            let r = find_route(received, c.prefix).context("checked above")?;
            let mut path = vec![WASMBGP_AS];
            path.extend(&c.as_path);
            ensure!(
                r.as_path == path,
                "{}: AS path {:?}, expected {path:?}",
                c.prefix,
                r.as_path
            );
            ensure!(
                r.med == Some(MED),
                "{}: MED {:?}, expected {MED}",
                c.prefix,
                r.med
            );
            let communities = set(r.communities.iter().map(String::as_str));
            ensure!(
                communities == expected_communities(c),
                "{}: communities {communities:?}, expected {:?}",
                c.prefix,
                expected_communities(c)
            );
        }
        Ok(())
    }

    /// `show adj-rib-out --pre-policy` holds every config route as
    /// configured (source `config`); `show adj-rib-out` what the chain made
    /// of them.
    pub fn check_tables(pre: &[RibRow], post: &[RibRow]) -> Result<()> {
        let all = cases();
        ensure!(
            pre.len() == all.len(),
            "{} routes before export policy, expected {}: {pre:?}",
            pre.len(),
            all.len()
        );
        for c in &all {
            let row = find_row(pre, c.prefix)
                .with_context(|| format!("{} missing before export policy", c.prefix))?;
            ensure!(
                row.source.as_deref() == Some("config"),
                "{}: source {:?}",
                c.prefix,
                row.source
            );
            ensure!(
                row.route.med == c.med,
                "{}: pre-policy MED {:?}, configured {:?}",
                c.prefix,
                row.route.med,
                c.med
            );
            ensure!(
                row.route.as_path == c.as_path,
                "{}: pre-policy AS path {:?}",
                c.prefix,
                row.route.as_path
            );
            ensure!(
                set(row.route.communities.iter().map(String::as_str))
                    == set(c.communities.iter().copied()),
                "{}: pre-policy communities {:?}",
                c.prefix,
                row.route.communities
            );
        }
        let sent: Vec<&Case> = all.iter().filter(|c| c.sent).collect();
        ensure!(
            post.len() == sent.len(),
            "{} routes after export policy, expected {}: {post:?}",
            post.len(),
            sent.len()
        );
        for c in sent {
            let row = find_row(post, c.prefix)
                .with_context(|| format!("{} missing after export policy", c.prefix))?;
            ensure!(
                row.route.med == Some(MED),
                "{}: post-policy MED {:?}",
                c.prefix,
                row.route.med
            );
            ensure!(
                set(row.route.communities.iter().map(String::as_str)) == expected_communities(c),
                "{}: post-policy communities {:?}",
                c.prefix,
                row.route.communities
            );
        }
        Ok(())
    }

    /// The verdict counters of `show plugins` and of the metrics agree, and
    /// count `k ≥ 1` runs of the chain over the routes (once per session
    /// start): `deny` rejected 2 and accepted 5 per run, `tagger` modified
    /// 3 and accepted 2, `setmed` modified 5; nothing unjudged.
    pub fn check_counters(speaker: &PluginSpeaker) -> Result<u64> {
        let deny = speaker.plugin("deny")?;
        let tagger = speaker.plugin("tagger")?;
        let setmed = speaker.plugin("setmed")?;
        let k = deny.routes_rejected / 2;
        ensure!(k >= 1, "deny: {}", deny.raw);
        let expect = [
            (&deny, [5 * k, 2 * k, 0, 0]),
            (&tagger, [2 * k, 0, 3 * k, 0]),
            (&setmed, [0, 0, 5 * k, 0]),
        ];
        let metrics = speaker.ctl(&["show", "metrics"])?;
        for (s, want) in expect {
            let got = [
                s.routes_accepted,
                s.routes_rejected,
                s.routes_modified,
                s.routes_unjudged,
            ];
            ensure!(
                got == want,
                "counters {got:?} (accepted, rejected, modified, unjudged), expected {want:?}: {}",
                s.raw
            );
            ensure!(
                s.world == "policy" && s.state == "running" && s.restarts == 0,
                "{}",
                s.raw
            );
            let name = s.raw["name"].as_str().unwrap_or_default();
            for (verdict, n) in ["accepted", "rejected", "modified", "unjudged"]
                .into_iter()
                .zip(got)
            {
                let m = super::metric_value(
                    &metrics,
                    "wasmbgp_policy_routes_total",
                    &[("plugin", name), ("verdict", verdict)],
                );
                ensure!(
                    m == Some(n as f64),
                    "metric {name}/{verdict} = {m:?}, show plugins says {n}"
                );
            }
            let up = super::metric_value(
                &metrics,
                "wasmbgp_plugin_up",
                &[("plugin", name), ("world", "policy")],
            );
            ensure!(up == Some(1.0), "wasmbgp_plugin_up for {name}: {up:?}");
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_ranges_of_slash24s() {
        let base = Ipv4Addr::new(30, 0, 0, 0);
        assert_eq!(
            cover_slash24s(base, 0, 10_000),
            vec![
                "30.0.0.0/11",
                "30.32.0.0/14",
                "30.36.0.0/15",
                "30.38.0.0/16",
                "30.39.0.0/20"
            ]
        );
        assert_eq!(
            cover_slash24s(base, 1, 3),
            vec!["30.0.1.0/24", "30.0.2.0/24"]
        );
        assert_eq!(slash24(base, 257), "30.1.1.0/24");
    }

    #[test]
    fn reads_metrics() {
        let text = "# TYPE x counter\nwasmbgp_policy_routes_total{plugin=\"a\",verdict=\"rejected\"} 7\nwasmbgp_up 1\n";
        assert_eq!(
            metric_value(
                text,
                "wasmbgp_policy_routes_total",
                &[("plugin", "a"), ("verdict", "rejected")]
            ),
            Some(7.0)
        );
        assert_eq!(
            metric_value(text, "wasmbgp_policy_routes_total", &[("plugin", "b")]),
            None
        );
        assert_eq!(metric_value(text, "wasmbgp_up", &[]), Some(1.0));
    }
}
