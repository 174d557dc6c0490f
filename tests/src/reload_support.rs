//! Support for the config reload tests (`tests/reload_config.rs`): one BIRD 2 with a
//! passive `protocol bgp` per wasmbgp neighbor (each on its own loopback address of
//! the block), queried strictly (a failing `birdc` is an error, never "no route");
//! a wasmbgp config written from parts so that it can be rewritten between reloads;
//! and the log filter ([`LOG_LEVEL`]) under which the test's
//! [`crate::plugin_support::PluginSpeaker`] logs its health checks' details.
//!
//! Addresses follow the interop blocks ([`crate::scenario::Block`]): block `N` uses
//! `127.0.N.x` and ports `10000 + 10 N + k` (`k < 10`); wasmbgp is `127.0.N.1`,
//! BIRD's protocols `127.0.N.2`, `127.0.N.3`, ...

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::check::line_col;
use crate::peers::bird::{self, BirdCounters, parse_show_route_all};
use crate::plugin_support::{BIRD_AS, Plugin, WASMBGP_AS, same_since};
use crate::process::Daemon;
use crate::route::Route;
use crate::wait::DEFAULT_TIMEOUT;
use crate::wasmbgp::Config;

// ---------------------------------------------------------------------------
// The wasmbgp config, from parts.

/// A whole wasmbgp config: [`Config`] (its neighbors and routes), the control socket
/// and health-check plugins.
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// Router id, AS, neighbors, routes.
    pub config: Config,
    /// `[control] socket`.
    pub socket: PathBuf,
    /// Health-check plugins.
    pub plugins: Vec<Plugin>,
}

impl ReloadConfig {
    /// The TOML text.
    pub fn render(&self) -> String {
        let mut out = self.config.render(&self.socket);
        for p in &self.plugins {
            out.push_str(&p.render());
        }
        out
    }
}

/// `FILE:LINE:COL` of the first occurrence of `needle` in `text` (1-based, columns in
/// characters), with `file` as given.
pub fn position(file: &Path, text: &str, needle: &str) -> Result<String> {
    let (line, col) =
        line_col(text, needle).with_context(|| format!("{needle:?} is not in the config"))?;
    Ok(format!("{}:{line}:{col}", file.display()))
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
    /// Killed on drop.
    _daemon: Daemon,
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
        let mut conf = bird::config_head(dir, router_id);
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
        let daemon = bird::start_daemon(dir, &conf)?;
        let bird = Self {
            dir: dir.to_path_buf(),
            protocols: protocols.to_vec(),
            _daemon: daemon,
        };
        bird::wait_daemon_up(dir, DEFAULT_TIMEOUT)?;
        Ok(bird)
    }

    /// `birdc -s SOCK ARGS`, which must exit 0 and reach BIRD.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        bird::birdc(&self.dir, args)
    }

    /// `show protocols all NAME`: state, since, last error and route counters.
    pub fn view(&self, name: &str) -> Result<ProtocolView> {
        let out = self.birdc(&["show", "protocols", "all", name])?;
        let line = bird::protocol_line(&out, name)?;
        ensure!(line.proto == "BGP", "protocol {name} is not BGP: {line:?}");
        ensure!(!line.since.is_empty(), "no since in {line:?}");
        let last_error = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Last error:"))
            .next_back()
            .map(|rest| rest.trim().to_owned());
        Ok(ProtocolView {
            info: line.info,
            since: line.since,
            last_error,
            // None shown: all zero.
            counters: bird::parse_counters(&out)?.unwrap_or_default(),
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
        bird::parse_count(&self.birdc(&["show", "route", "protocol", name, "count"])?)
    }

    /// BIRD's log so far.
    pub fn log(&self) -> String {
        bird::read_log(&self.dir)
    }
}

// ---------------------------------------------------------------------------
// wasmbgp with a rewritable config: a [`crate::plugin_support::PluginSpeaker`].

/// Its log filter: info, plus each health check's result (`check ... count=N`).
pub const LOG_LEVEL: &str = "info,wasmbgp_runtime::supervisor::healthcheck=debug";

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
