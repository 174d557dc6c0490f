//! Support for the config reload tests (`tests/reload_config.rs`): one BIRD 2 with a
//! passive `protocol bgp` per wasmbgp neighbor (each on its own loopback address of
//! the block), queried strictly (a failing `birdc` is an error, never "no route");
//! a wasmbgp config written from parts so that it can be rewritten between reloads;
//! and a `wasmbgp run` that takes SIGHUP and logs its health checks' details.
//!
//! Addresses follow the interop blocks: block `N` uses `127.0.N.x` and ports
//! `10000 + 10 N + k` (`k < 10`); wasmbgp is `127.0.N.1`, BIRD's protocols
//! `127.0.N.2`, `127.0.N.3`, ...

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::peers::bird::parse_show_route_all;
use crate::plugin_support::{
    BIRD_AS, Plugin, WASMBGP_AS, plugin_log_lines, same_since, strip_ansi,
};
use crate::policy_support::{BirdCounters, tail};
use crate::process::Daemon;
use crate::route::Route;
use crate::run_command;
use crate::wait::{DEFAULT_TIMEOUT, wait_until};
use crate::wasmbgp::binary;

/// A test block: `127.0.N.x`, ports `10000 + 10 N + k`.
#[derive(Debug, Clone, Copy)]
pub struct Block(pub u8);

impl Block {
    /// `127.0.N.host`.
    pub fn addr(self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, self.0, host)
    }

    /// Port `k` (0..10) of the block.
    pub fn port(self, k: u16) -> u16 {
        assert!(k < 10, "a block has 10 ports");
        10000 + 10 * u16::from(self.0) + k
    }
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| toml_str(i)).collect();
    format!("[{}]", quoted.join(", "))
}

// ---------------------------------------------------------------------------
// The wasmbgp config, from parts.

/// One `[[neighbor]]` (IPv4 unicast, active, toward one BIRD protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The BIRD protocol's address.
    pub address: Ipv4Addr,
    /// The BIRD protocol's port.
    pub port: u16,
    /// `local-address` (wasmbgp's address).
    pub local_address: Ipv4Addr,
    /// `description`.
    pub description: Option<String>,
    /// `hold-time` (wasmbgp's default when `None`).
    pub hold_time: Option<u16>,
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// Prefix (written as given: a test may make it invalid).
    pub prefix: String,
    /// `med`.
    pub med: Option<u32>,
    /// `communities`.
    pub communities: Vec<String>,
    /// `neighbors` (empty: every neighbor).
    pub neighbors: Vec<Ipv4Addr>,
}

impl StaticRoute {
    /// A route to every neighbor, MED `med`.
    pub fn new(prefix: &str, med: u32) -> Self {
        Self {
            prefix: prefix.to_owned(),
            med: Some(med),
            communities: Vec::new(),
            neighbors: Vec::new(),
        }
    }

    /// Only to `neighbors`.
    pub fn to(mut self, neighbors: &[Ipv4Addr]) -> Self {
        self.neighbors = neighbors.to_vec();
        self
    }

    /// With these communities.
    pub fn communities(mut self, communities: &[&str]) -> Self {
        self.communities = communities.iter().map(|c| (*c).to_owned()).collect();
        self
    }
}

/// A whole wasmbgp config.
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// `router-id`.
    pub router_id: Ipv4Addr,
    /// `local-as`.
    pub local_as: u32,
    /// `[control] socket`.
    pub socket: PathBuf,
    /// The neighbors, in order.
    pub neighbors: Vec<Neighbor>,
    /// The routes, in order.
    pub routes: Vec<StaticRoute>,
    /// Health-check plugins.
    pub plugins: Vec<Plugin>,
}

impl ReloadConfig {
    /// The TOML text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "router-id = \"{}\"", self.router_id);
        let _ = writeln!(out, "local-as = {}", self.local_as);
        let _ = writeln!(
            out,
            "\n[control]\nsocket = {}",
            toml_str(&self.socket.display().to_string())
        );
        for n in &self.neighbors {
            let _ = writeln!(out, "\n[[neighbor]]\naddress = \"{}\"", n.address);
            let _ = writeln!(out, "port = {}\npeer-as = {BIRD_AS}", n.port);
            let _ = writeln!(out, "local-address = \"{}\"", n.local_address);
            out.push_str("connect-retry = \"1s\"\nconnect-retry-max = \"2s\"\n");
            out.push_str("families = [\"ipv4-unicast\"]\n");
            if let Some(d) = &n.description {
                let _ = writeln!(out, "description = {}", toml_str(d));
            }
            if let Some(hold) = n.hold_time {
                let _ = writeln!(out, "hold-time = {hold}");
            }
        }
        for r in &self.routes {
            let _ = writeln!(out, "\n[[route]]\nprefix = {}", toml_str(&r.prefix));
            if let Some(med) = r.med {
                let _ = writeln!(out, "med = {med}");
            }
            if !r.communities.is_empty() {
                let _ = writeln!(out, "communities = {}", toml_list(&r.communities));
            }
            if !r.neighbors.is_empty() {
                let names: Vec<String> = r.neighbors.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "neighbors = {}", toml_list(&names));
            }
        }
        for p in &self.plugins {
            out.push_str(&p.render());
        }
        out
    }
}

/// `FILE:LINE:COL` of the first occurrence of `needle` in `text` (1-based, columns in
/// characters), with `file` as given.
pub fn position(file: &Path, text: &str, needle: &str) -> Result<String> {
    for (i, line) in text.lines().enumerate() {
        if let Some(at) = line.find(needle) {
            return Ok(format!(
                "{}:{}:{}",
                file.display(),
                i + 1,
                line[..at].chars().count() + 1
            ));
        }
    }
    bail!("{needle:?} is not in the config")
}

// ---------------------------------------------------------------------------
// BIRD: one passive `protocol bgp` per neighbor.

/// One `protocol bgp` of a [`ReloadBird`]: BIRD listens on `address:port`
/// (passive: it never connects, so what it logs is what wasmbgp did).
#[derive(Debug, Clone)]
pub struct BirdProtocol {
    /// Protocol name.
    pub name: String,
    /// BIRD's address for this session.
    pub address: Ipv4Addr,
    /// BIRD's port for this session.
    pub port: u16,
    /// The port BIRD's config gives wasmbgp. BIRD never dials it (passive), but
    /// protocols toward the same address and port take turns (one object lock), so
    /// each protocol needs its own.
    pub remote_port: u16,
}

/// The `show protocols all NAME` view of one protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolView {
    /// `Established`, `Active`, `Idle`, ...
    pub info: String,
    /// The time of the last state change (`HH:MM:SS.mmm`).
    pub since: String,
    /// `Last error:`, if any.
    pub last_error: Option<String>,
    /// Route counters.
    pub counters: BirdCounters,
}

impl ProtocolView {
    /// Whether `other` is the same session (same state, `since` within BIRD's
    /// clock jitter) with the same counters.
    pub fn untouched(&self, other: &ProtocolView) -> bool {
        self.info == other.info
            && same_since(&self.since, &other.since)
            && self.counters == other.counters
    }
}

/// A BIRD 2 with one passive BGP protocol per wasmbgp neighbor, importing
/// everything, exporting nothing.
#[derive(Debug)]
pub struct ReloadBird {
    dir: PathBuf,
    /// The protocols.
    pub protocols: Vec<BirdProtocol>,
    daemon: Option<Daemon>,
}

impl ReloadBird {
    /// Writes the config, validates it, starts BIRD (router id `router_id`, AS
    /// `BIRD_AS`, every session toward `remote` as `WASMBGP_AS`) and waits for `birdc`.
    pub fn start(
        dir: &Path,
        router_id: Ipv4Addr,
        remote: Ipv4Addr,
        protocols: &[BirdProtocol],
    ) -> Result<Self> {
        let mut conf = String::new();
        let _ = writeln!(conf, "router id {router_id};");
        let _ = writeln!(conf, "log \"{}\" all;", dir.join("bird.log").display());
        conf.push_str("protocol device {}\n");
        for p in protocols {
            let _ = writeln!(conf, "protocol bgp {} {{", p.name);
            let _ = writeln!(conf, "  local {} port {} as {BIRD_AS};", p.address, p.port);
            let _ = writeln!(
                conf,
                "  neighbor {remote} port {} as {WASMBGP_AS};",
                p.remote_port
            );
            conf.push_str("  passive on;\n  multihop;\n  hold time 30;\n");
            // State changes and events (such as "Neighbor graceful restart detected")
            // in the log, beside the NOTIFICATIONs BIRD always logs.
            conf.push_str("  debug { states, events };\n");
            conf.push_str("  error wait time 1, 2;\n");
            conf.push_str("  ipv4 { import all; export none; };\n}\n");
        }
        let conf_path = dir.join("bird.conf");
        std::fs::write(&conf_path, conf)
            .with_context(|| format!("cannot write {}", conf_path.display()))?;
        run_command(Command::new("bird").arg("-p").arg("-c").arg(&conf_path))
            .context("BIRD rejected its configuration")?;
        let mut cmd = Command::new("bird");
        cmd.arg("-f")
            .arg("-c")
            .arg(&conf_path)
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let daemon = Daemon::spawn("bird", cmd, &dir.join("bird.stdout"))?;
        let bird = Self {
            dir: dir.to_path_buf(),
            protocols: protocols.to_vec(),
            daemon: Some(daemon),
        };
        wait_until("birdc to answer", DEFAULT_TIMEOUT, || {
            Ok(bird
                .birdc(&["show", "status"])
                .is_ok_and(|out| out.contains("Daemon is up")))
        })?;
        Ok(bird)
    }

    /// `birdc -s SOCK ARGS`, which must exit 0 and reach BIRD.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let out = run_command(
            Command::new("birdc")
                .arg("-s")
                .arg(self.dir.join("bird.ctl"))
                .args(args),
        )?;
        if out.lines().any(|l| l.starts_with("Unable to connect")) {
            bail!("birdc cannot connect: {out}");
        }
        Ok(out)
    }

    /// `show protocols all NAME`: state, since, last error and route counters.
    pub fn view(&self, name: &str) -> Result<ProtocolView> {
        let out = self.birdc(&["show", "protocols", "all", name])?;
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .with_context(|| format!("no protocol {name} in {out:?}"))?;
        // name proto table state since info...
        let words: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            words.get(1) == Some(&"BGP"),
            "protocol {name} is not BGP: {line:?}"
        );
        let since = words
            .get(4)
            .with_context(|| format!("no since in {line:?}"))?
            .to_string();
        let info = words.get(5..).map(|w| w.join(" ")).unwrap_or_default();
        let number = |rest: &str, i: usize, line: &str| -> Result<u64> {
            rest.split_whitespace()
                .nth(i)
                .and_then(|w| w.parse().ok())
                .with_context(|| format!("bad counter line {line:?}"))
        };
        let mut counters = BirdCounters::default();
        let mut last_error = None;
        for l in out.lines() {
            let t = l.trim();
            if let Some(rest) = t.strip_prefix("Import updates:") {
                counters.import_updates += number(rest, 0, t)?;
            } else if let Some(rest) = t.strip_prefix("Import withdraws:") {
                counters.import_withdraws += number(rest, 0, t)?;
            } else if let Some(rest) = t.strip_prefix("Export updates:") {
                counters.export_updates += number(rest, 4, t)?;
            } else if let Some(rest) = t.strip_prefix("Last error:") {
                last_error = Some(rest.trim().to_owned());
            }
        }
        Ok(ProtocolView {
            info,
            since,
            last_error,
            counters,
        })
    }

    /// Every protocol's view, in order.
    pub fn views(&self) -> Result<Vec<ProtocolView>> {
        self.protocols.iter().map(|p| self.view(&p.name)).collect()
    }

    /// Whether protocol `name` is Established.
    pub fn established(&self, name: &str) -> Result<bool> {
        Ok(self.view(name)?.info.starts_with("Established"))
    }

    /// Every route BIRD learned through protocol `name`, with attributes.
    pub fn routes(&self, name: &str) -> Result<Vec<Route>> {
        let out = self.birdc(&["show", "route", "all", "protocol", name])?;
        let mut routes = parse_show_route_all(&out)?;
        routes.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Ok(routes)
    }

    /// How many routes BIRD holds from protocol `name` (`show route protocol NAME
    /// count`, which must answer).
    pub fn count(&self, name: &str) -> Result<u64> {
        let out = self.birdc(&["show", "route", "protocol", name, "count"])?;
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

    /// BIRD's log so far.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["bird.log", "bird.stdout"] {
            if let Ok(text) = std::fs::read_to_string(self.dir.join(name)) {
                out.push_str(&text);
            }
        }
        out
    }
}

impl Drop for ReloadBird {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
        }
    }
}

// ---------------------------------------------------------------------------
// wasmbgp with a rewritable config.

/// The log filter: info, plus each health check's result (`check ... count=N`).
pub const LOG_LEVEL: &str = "info,wasmbgp_runtime::supervisor::healthcheck=debug";

/// `wasmbgp run CONFIG` whose config file the test rewrites.
#[derive(Debug)]
pub struct ReloadSpeaker {
    dir: PathBuf,
    socket: PathBuf,
    config_path: PathBuf,
    daemon: Daemon,
}

impl ReloadSpeaker {
    /// Where the config must put its control socket.
    pub fn socket_in(dir: &Path) -> PathBuf {
        dir.join("wasmbgp.sock")
    }

    /// Writes `config` to `dir/wasmbgp.toml`, runs `wasmbgp check`, starts `wasmbgp run`
    /// (text log, [`LOG_LEVEL`]) and waits for the control socket.
    pub fn start(dir: &Path, config: &str) -> Result<Self> {
        let binary = binary()?;
        let config_path = dir.join("wasmbgp.toml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        run_command(Command::new(&binary).arg("check").arg(&config_path))
            .context("`wasmbgp check` rejected the test configuration")?;
        let mut cmd = Command::new(&binary);
        cmd.arg("run")
            .arg(&config_path)
            .args(["--log-format", "text", "--log-level", LOG_LEVEL]);
        let daemon = Daemon::spawn("wasmbgp", cmd, &dir.join("wasmbgp.log"))?;
        let mut speaker = Self {
            dir: dir.to_path_buf(),
            socket: Self::socket_in(dir),
            config_path,
            daemon,
        };
        wait_until("wasmbgp control socket to answer", DEFAULT_TIMEOUT, || {
            if !speaker.daemon.is_running() {
                bail!("wasmbgp exited");
            }
            Ok(speaker.socket.exists() && speaker.ctl(&["show", "neighbors", "--json"]).is_ok())
        })
        .with_context(|| format!("wasmbgp did not start; log:\n{}", tail(&speaker.log(), 40)))?;
        Ok(speaker)
    }

    /// The config file (absolute, as given to `wasmbgp run`).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Replaces the config file's contents (write beside it, then rename, as an
    /// editor or a config manager does).
    pub fn write_config(&self, text: &str) -> Result<()> {
        let tmp = self.config_path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.config_path)
            .with_context(|| format!("cannot rename onto {}", self.config_path.display()))
    }

    /// `wasmbgp check` on the current config file: `(exit code, stdout + stderr)`.
    pub fn check(&self) -> Result<(Option<i32>, String)> {
        let out = Command::new(binary()?)
            .arg("check")
            .arg(&self.config_path)
            .output()
            .context("cannot run wasmbgp check")?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ))
    }

    /// `wasmbgp ctl --socket SOCK ARGS...`, which must succeed.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        run_command(
            Command::new(binary()?)
                .arg("ctl")
                .arg("--socket")
                .arg(&self.socket)
                .args(args),
        )
    }

    /// `wasmbgp ctl --socket SOCK ARGS...` whatever its exit status.
    pub fn ctl_output(&self, args: &[&str]) -> Result<Output> {
        Command::new(binary()?)
            .arg("ctl")
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .context("cannot run wasmbgp ctl")
    }

    /// `wasmbgp ctl ARGS` whose output is JSON.
    pub fn ctl_json(&self, args: &[&str]) -> Result<Value> {
        let out = self.ctl(args)?;
        serde_json::from_str(&out)
            .with_context(|| format!("`wasmbgp ctl {}` printed bad JSON: {out}", args.join(" ")))
    }

    /// `show neighbors --json`.
    pub fn neighbors(&self) -> Result<Vec<Value>> {
        let json = self.ctl_json(&["show", "neighbors", "--json"])?;
        json.as_array()
            .cloned()
            .with_context(|| format!("show neighbors --json is not an array: {json}"))
    }

    /// The `show neighbors --json` entry of `address`.
    pub fn neighbor(&self, address: Ipv4Addr) -> Result<Value> {
        let want = address.to_string();
        self.neighbors()?
            .into_iter()
            .find(|n| n["address"].as_str() == Some(want.as_str()))
            .with_context(|| format!("neighbor {address} missing from show neighbors"))
    }

    /// `show plugins --json`, entry `name`.
    pub fn plugin(&self, name: &str) -> Result<Value> {
        let json = self.ctl_json(&["show", "plugins", "--json"])?;
        json.as_array()
            .context("show plugins --json is not an array")?
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .cloned()
            .with_context(|| format!("no plugin {name} in {json}"))
    }

    /// Sends SIGHUP to the daemon.
    pub fn sighup(&self) -> Result<()> {
        self.daemon.signal(libc::SIGHUP)
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("wasmbgp.log")).unwrap_or_default()
    }

    /// The `count=N` details of health check `plugin`, in log order (from the
    /// `fixture-faulty` plugin in `counter` mode, logged at debug level).
    pub fn check_counts(&self, plugin: &str) -> Result<Vec<u64>> {
        plugin_log_lines(&self.log(), plugin, "count=")
            .iter()
            // The check's own line, not a health transition quoting its reason.
            .filter(|line| line.contains(": check "))
            .map(|line| {
                let at = line
                    .find("count=")
                    .with_context(|| format!("no count in {line:?}"))?;
                line[at + "count=".len()..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
                    .with_context(|| format!("bad count in {line:?}"))
            })
            .collect()
    }
}

impl Drop for ReloadSpeaker {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
    }
}

/// wasmbgp's text log as records: colours stripped, a record's continuation lines
/// (a multi-line message, such as a refused config's diagnostics) joined to it with
/// `\n`.
pub fn log_records(log: &str) -> Vec<String> {
    let mut records: Vec<String> = Vec::new();
    for line in strip_ansi(log).lines() {
        // Records start with a timestamp such as `2026-11-24T15:53:26.96Z`.
        let starts = line.len() > 4 && line[..4].bytes().all(|b| b.is_ascii_digit());
        match records.last_mut() {
            Some(last) if !starts => {
                last.push('\n');
                last.push_str(line);
            }
            _ => records.push(line.to_owned()),
        }
    }
    records
}

/// The value of ` key=VALUE` in a log record (empty when nothing follows the `=`).
pub fn record_field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    let at = record.find(&format!(" {key}="))?;
    let rest = &record[at + key.len() + 2..];
    Some(rest.split(char::is_whitespace).next().unwrap_or_default())
}

/// Waits, polling every `every` for at most `timeout`, for `probe` to hold; a
/// probe error ends the wait at once (BIRD and wasmbgp are up: an error is a
/// failure, not "not yet").
pub fn wait_strict(
    what: &str,
    every: Duration,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = std::time::Instant::now();
    loop {
        if probe().with_context(|| format!("while waiting for {what}"))? {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every);
    }
}
