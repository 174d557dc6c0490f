//! Support for the graceful-restart tests (`tests/hardening_graceful_restart.rs`): a
//! BIRD 2 with `graceful restart on` that can be killed and started again in recovery
//! (`bird -R`), a wasmbgp with `graceful-restart` set that can be killed and started
//! again, and a sampler that reads a count every 50 ms on its own thread while the test
//! kills and restarts daemons.
//!
//! Addresses: block `N` ([`LimitBlock`]) as in the other hardening tests, BIRD on `.2`
//! port 0, wasmbgp on `.1` port 1.
//!
//! Every query is strict: a failing `birdc` or `ctl` is an error, never "no route".

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::limits_support::{BIRD_AS, LimitBlock, WASMBGP_AS};
use crate::peers::bird;
use crate::process::{Daemon, Worker};
use crate::wait::DEFAULT_TIMEOUT;
use crate::wasmbgp::{
    Config, NeighborConfig, RouteFile, ctl, ctl_json, spawn_checked, wait_socket,
};

/// The restart time wasmbgp advertises in these tests (seconds).
pub const RESTART_TIME: u16 = 120;
/// How often the samplers read.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The longest a sampler runs, whatever the test does.
const SAMPLE_LIMIT: Duration = Duration::from_secs(300);

/// A BIRD 2 whose one `protocol bgp wasm` peers with wasmbgp with graceful restart
/// on, importing everything and exporting the routes of its static protocols (one per
/// named group of /24s).
pub struct GrBird {
    dir: PathBuf,
    block: LimitBlock,
    daemon: Option<Daemon>,
}

/// The BGP protocol's name in [`GrBird`]'s config.
pub const BIRD_PROTOCOL: &str = "wasm";

impl GrBird {
    /// Writes the config with `groups` (name, prefixes), starts BIRD and waits for
    /// `birdc`. `recovering` starts it with `-R` (graceful restart recovery: its OPEN
    /// sets the Restart State bit and Forwarding State per family).
    pub fn start(
        dir: &Path,
        block: LimitBlock,
        groups: &[(&str, Vec<String>)],
        recovering: bool,
    ) -> Result<Self> {
        let conf = Self::config(dir, block, groups);
        let args: &[&str] = if recovering { &["-R"] } else { &[] };
        let daemon = bird::start_daemon_args(dir, &conf, &[], args)?;
        bird::wait_daemon_up(dir, DEFAULT_TIMEOUT)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            block,
            daemon: Some(daemon),
        })
    }

    fn config(dir: &Path, block: LimitBlock, groups: &[(&str, Vec<String>)]) -> String {
        let mut conf = bird::config_head(dir, block.addr(2));
        for (name, prefixes) in groups {
            let _ = writeln!(conf, "protocol static {name} {{\n  ipv4;");
            for p in prefixes {
                let _ = writeln!(conf, "  route {p} blackhole;");
            }
            conf.push_str("}\n");
        }
        let _ = writeln!(conf, "protocol bgp {BIRD_PROTOCOL} {{");
        let _ = writeln!(
            conf,
            "  local {} port {} as {BIRD_AS};\n  neighbor {} port {} as {WASMBGP_AS};",
            block.addr(2),
            block.port(0),
            block.addr(1),
            block.port(1)
        );
        conf.push_str("  multihop;\n  hold time 30;\n  graceful restart on;\n");
        conf.push_str(
            "  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n",
        );
        conf.push_str(
            "  ipv4 {\n    import all;\n    export where source = RTS_STATIC;\n  };\n}\n",
        );
        conf
    }

    /// `birdc ARGS` (must exit 0).
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        bird::birdc(&self.dir, args)
    }

    /// Routes imported from wasmbgp (`show route protocol wasm count`).
    pub fn imported(&self) -> Result<u64> {
        bird::parse_count(&self.birdc(&["show", "route", "protocol", BIRD_PROTOCOL, "count"])?)
    }

    /// The prefixes of the routes from wasmbgp (`show route protocol wasm`).
    pub fn prefixes(&self) -> Result<std::collections::BTreeSet<String>> {
        let out = self.birdc(&["show", "route", "protocol", BIRD_PROTOCOL])?;
        Ok(out
            .lines()
            .filter(|l| l.contains(&format!("[{BIRD_PROTOCOL} ")))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect())
    }

    /// BIRD keeps wasmbgp's routes stale, waiting for its return and End-of-RIB
    /// (`show protocols all`: "Neighbor graceful restart active"; BIRD 2.0 marks
    /// only long-lived stale routes in `show route`).
    pub fn graceful_restart_active(&self) -> Result<bool> {
        let out = self.birdc(&["show", "protocols", "all", BIRD_PROTOCOL])?;
        Ok(out.contains("Neighbor graceful restart active"))
    }

    /// Waits for BIRD to see wasmbgp's session end, then fails unless it is in
    /// graceful restart for it (keeping its routes).
    pub fn wait_graceful_restart(&self) -> Result<()> {
        crate::wait::wait_until(
            "BIRD to see the session end",
            Duration::from_secs(30),
            || Ok(!self.established()?),
        )?;
        ensure!(
            self.graceful_restart_active()?,
            "BIRD is not in graceful restart for wasmbgp"
        );
        Ok(())
    }

    /// The import counters of the BGP channel.
    pub fn counters(&self) -> Result<bird::BirdCounters> {
        let out = self.birdc(&["show", "protocols", "all", BIRD_PROTOCOL])?;
        bird::parse_counters(&out)?.context("no channel counters in `show protocols all`")
    }

    /// The session is up (`show protocols`: `Established`).
    pub fn established(&self) -> Result<bool> {
        let out = self.birdc(&["show", "protocols", BIRD_PROTOCOL])?;
        Ok(bird::protocol_line(&out, BIRD_PROTOCOL)?.info == "Established")
    }

    /// SIGKILLs BIRD (no NOTIFICATION leaves; the kernel closes its connections).
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut d) = self.daemon.take() {
            d.kill()?;
        }
        Ok(())
    }

    /// Starts a killed BIRD again on the same directory, with `groups`, in recovery.
    pub fn restart(&mut self, groups: &[(&str, Vec<String>)]) -> Result<()> {
        ensure!(self.daemon.is_none(), "BIRD still runs");
        *self = Self::start(&self.dir.clone(), self.block, groups, true)?;
        Ok(())
    }

    /// BIRD's log.
    pub fn log(&self) -> String {
        bird::read_log(&self.dir)
    }
}

/// A wasmbgp with `graceful-restart` set, one neighbor (the BIRD of `block`), `routes`
/// from a route file and `extra` TOML (plugin blocks) appended.
pub struct GrSpeaker {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Option<Daemon>,
}

impl GrSpeaker {
    /// Runs `wasmbgp check` and `wasmbgp run` in `dir` and waits for the socket.
    pub fn start(dir: &Path, block: LimitBlock, routes: &[String], extra: &str) -> Result<Self> {
        let mut config = bird_neighbor_config(block);
        if !routes.is_empty() {
            config.route_files = vec![RouteFile {
                name: "table.routes".into(),
                lines: routes.to_vec(),
                defaults: Default::default(),
            }];
        }
        let socket = dir.join("wasmbgp.sock");
        // A top-level key goes before the first table.
        let text = config.render(&socket).replacen(
            '\n',
            &format!("\ngraceful-restart = {RESTART_TIME}\n"),
            1,
        ) + extra;
        let (_, mut daemon) = spawn_checked(dir, &text, &config.route_files, "info")?;
        wait_socket(&mut daemon, dir, &socket)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            daemon: Some(daemon),
        })
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `wasmbgp ctl ARGS` (must exit 0).
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        ctl(&self.socket, args)
    }

    /// `(state, prefixes-received, stale-routes, established-count)` of the neighbor.
    pub fn neighbor(&self) -> Result<(String, u64, u64, u64)> {
        neighbor_of(&self.socket)
    }

    /// SIGKILLs wasmbgp, as a crash would.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut d) = self.daemon.take() {
            d.kill()?;
        }
        Ok(())
    }

    /// Waits for wasmbgp to exit (after `ctl shutdown`); fails unless it exits 0.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<()> {
        let mut daemon = self.daemon.take().context("wasmbgp is not running")?;
        let status = daemon.wait_exit(timeout)?;
        ensure!(status.success(), "wasmbgp exited with {status}");
        Ok(())
    }

    /// wasmbgp's log.
    pub fn log(&self) -> String {
        crate::wasmbgp::read_log(&self.dir)
    }
}

/// wasmbgp on `.1` (listening on port 1) with one neighbor, the BIRD of `block` (`.2`,
/// port 0), and nothing else.
pub fn bird_neighbor_config(block: LimitBlock) -> Config {
    let local = block.addr(1);
    Config {
        router_id: local.to_string(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(1))),
        neighbors: vec![NeighborConfig::new(
            block.addr(2),
            block.port(0),
            BIRD_AS,
            local,
        )],
        routes: Vec::new(),
        route_files: Vec::new(),
    }
}

/// `(state, prefixes-received, stale-routes, established-count)` of the one neighbor of
/// the wasmbgp at `socket`.
pub fn neighbor_of(socket: &Path) -> Result<(String, u64, u64, u64)> {
    let json: Value = ctl_json(socket, &["show", "neighbors", "--json"])?;
    let n = json
        .as_array()
        .and_then(|a| a.first())
        .with_context(|| format!("no neighbor in {json}"))?;
    let number = |key: &str| n[key].as_u64().with_context(|| format!("no {key} in {n}"));
    Ok((
        n["state"].as_str().unwrap_or_default().to_owned(),
        number("prefixes-received")?,
        number("stale-routes")?,
        number("established-count")?,
    ))
}

/// `count` /24s from `base`.
pub fn slash24s(base: Ipv4Addr, count: u32) -> Vec<String> {
    (0..count)
        .map(|i| crate::policy_support::slash24(base, i))
        .collect()
}

/// What a [`Sampler`] read: each sample's time since the start and value, or the
/// error of a read that failed.
#[derive(Debug)]
pub struct Samples<T> {
    /// In order.
    pub values: Vec<(Duration, T)>,
    /// Reads that failed, with when.
    pub errors: Vec<(Duration, String)>,
}

impl<T> Default for Samples<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl<T> Samples<T> {
    /// The longest time between two successful reads.
    pub fn longest_gap(&self) -> Duration {
        self.values
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap_or_default()
    }
}

/// Reads a value every [`SAMPLE_EVERY`] on its own thread until stopped (at most
/// [`SAMPLE_LIMIT`]).
pub struct Sampler<T> {
    samples: Arc<Mutex<Samples<T>>>,
    worker: Worker,
}

impl<T: Send + 'static> Sampler<T> {
    /// Starts reading with `read`.
    pub fn start(mut read: impl FnMut() -> Result<T> + Send + 'static) -> Self {
        let samples = Arc::new(Mutex::new(Samples::default()));
        let worker = {
            let samples = samples.clone();
            Worker::spawn(move |stop| {
                let start = Instant::now();
                let limit = (SAMPLE_LIMIT.as_millis() / SAMPLE_EVERY.as_millis()) as usize;
                for _ in 0..limit {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let at = start.elapsed();
                    let read = read();
                    {
                        let mut s = samples.lock().expect("sampler lock");
                        match read {
                            Ok(v) => s.values.push((at, v)),
                            Err(e) => s.errors.push((at, format!("{e:#}"))),
                        }
                    }
                    let next = start + at + SAMPLE_EVERY;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            })
        };
        Self { samples, worker }
    }

    /// Stops and returns what was read.
    pub fn finish(mut self) -> Samples<T> {
        self.worker.stop();
        std::mem::take(&mut *self.samples.lock().expect("sampler lock"))
    }
}
