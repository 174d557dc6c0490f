//! Support for the plugin end-to-end tests (`tests/plugins_*.rs`): built
//! components, a local TCP service that can go down and up, a BIRD with
//! several BGP sessions, and a `wasmbgp` started with `[[plugin]]` blocks.
//!
//! Addresses: plugin test block `B` (200..=254) uses `127.0.B.0/24`: BIRD on
//! `127.0.B.2`, wasmbgp instances on `127.0.B.1` and `127.0.B.3`, services
//! on `127.0.B.1x`; ports `20000 + 20 (B - 200) + k`. Nothing collides with
//! the interop blocks (`127.0.N.x` for small N, ports `10000 + 10 N + k`).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::check::check_file;
use crate::peers::bird;
use crate::process::{Daemon, Worker};
use crate::wait::{DEFAULT_TIMEOUT, bind_retrying, wait_until};
use crate::wasmbgp::{
    Config, NeighborConfig, RouteFile, binary, ctl, ctl_json, read_log, spawn_checked, wait_socket,
};
use crate::{run_command, workspace_root};

/// BIRD's AS in every plugin test.
pub const BIRD_AS: u32 = 65000;
/// wasmbgp's AS (both instances of the primary/backup test share it, so
/// BIRD compares their MEDs).
pub const WASMBGP_AS: u32 = 65001;

/// The built components directory, `target/plugins`. Runs
/// `scripts/build-plugins.sh` (idempotent, flock-protected) once per process.
pub fn plugins_dir() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            run_command(Command::new("bash").arg(root.join("scripts/build-plugins.sh")))
                .map(|_| root.join("target/plugins"))
                .map_err(|e| format!("scripts/build-plugins.sh failed: {e:#}"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// `target/plugins/NAME.wasm`, built if needed.
pub fn component(name: &str) -> Result<PathBuf> {
    let path = plugins_dir()?.join(format!("{name}.wasm"));
    if !path.is_file() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}

/// A plugin test block: `127.0.B.x` and its own ports.
#[derive(Debug, Clone, Copy)]
pub struct PluginBlock(pub u8);

impl PluginBlock {
    /// `127.0.B.host`.
    pub fn addr(self, host: u8) -> Ipv4Addr {
        assert!(self.0 >= 200, "plugin blocks are 200..=254");
        Ipv4Addr::new(127, 0, self.0, host)
    }

    /// Port `k` (0..20) of the block.
    pub fn port(self, k: u16) -> u16 {
        assert!(k < 20);
        20000 + 20 * u16::from(self.0 - 200) + k
    }

    /// `127.0.B.host:port(k)`.
    pub fn sock(self, host: u8, k: u16) -> String {
        format!("{}:{}", self.addr(host), self.port(k))
    }

    /// `100.B.n.0`-style VIP: `100.10.B.n/32`.
    pub fn vip(self, n: u8) -> String {
        format!("100.10.{}.{n}/32", self.0)
    }
}

// ---------------------------------------------------------------------------
// A TCP service that can be stopped and started again on the same address.

/// A TCP listener on a fixed address with an accept loop in a thread; counts
/// the connections it accepted. Dropped or [`TcpService::stop`]ped, the
/// listening socket is closed (connections are then refused).
#[derive(Debug)]
pub struct TcpService {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    worker: Worker,
}

impl TcpService {
    /// Listens on `addr` (retrying for up to 5 s while the address is busy).
    pub fn start(addr: &str) -> Result<Self> {
        Self::start_counting(addr, Arc::new(AtomicUsize::new(0)))
    }

    fn start_counting(addr: &str, accepted: Arc<AtomicUsize>) -> Result<Self> {
        let addr: SocketAddr = addr.parse().context("bad service address")?;
        let listener = bind_retrying(addr)?;
        listener.set_nonblocking(true)?;
        let worker = {
            let accepted = accepted.clone();
            Worker::spawn(move |stop| {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            drop(stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                // The listener is dropped here: the port now refuses.
            })
        };
        Ok(Self {
            addr,
            accepted,
            worker,
        })
    }

    /// Connections accepted so far (over every restart).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listening socket and waits for it to be closed.
    pub fn stop(&mut self) {
        self.worker.stop();
    }

    /// Listens again on the same address.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let fresh = Self::start_counting(&self.addr.to_string(), self.accepted.clone())?;
        *self = fresh;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// BIRD with several BGP sessions.

/// One `protocol bgp` of a [`MultiBird`].
#[derive(Debug, Clone)]
pub struct BirdSession {
    /// Protocol name (shown in `show route` as the path's source).
    pub name: String,
    /// BIRD's local address and port.
    pub local: (Ipv4Addr, u16),
    /// The wasmbgp instance: address, listen port, AS.
    pub remote: (Ipv4Addr, u16, u32),
}

/// One path of a prefix in `birdc show route PREFIX all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdPath {
    /// The protocol it came from.
    pub protocol: String,
    /// Whether BIRD selected it as best (`*`).
    pub best: bool,
    /// BGP.med, if any.
    pub med: Option<u32>,
}

/// A BIRD 2 peering with one or more wasmbgp instances.
#[derive(Debug)]
pub struct MultiBird {
    dir: PathBuf,
    daemon: Option<Daemon>,
}

impl MultiBird {
    /// Writes the config into `dir`, validates it and starts BIRD.
    pub fn start(dir: &Path, router_id: Ipv4Addr, sessions: &[BirdSession]) -> Result<Self> {
        let mut conf = bird::config_head(dir, router_id);
        for s in sessions {
            let _ = writeln!(conf, "protocol bgp {} {{", s.name);
            let _ = writeln!(
                conf,
                "  local {} port {} as {BIRD_AS};",
                s.local.0, s.local.1
            );
            let _ = writeln!(
                conf,
                "  neighbor {} port {} as {};",
                s.remote.0, s.remote.1, s.remote.2
            );
            conf.push_str("  multihop;\n  hold time 30;\n");
            conf.push_str(
                "  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n",
            );
            conf.push_str("  ipv4 { import all; export none; };\n}\n");
        }
        let daemon = bird::start_daemon(dir, &conf)?;
        let bird = Self {
            dir: dir.to_path_buf(),
            daemon: Some(daemon),
        };
        bird::wait_daemon_up(dir, DEFAULT_TIMEOUT)?;
        Ok(bird)
    }

    /// `birdc -s SOCK ARGS` (whatever its exit status: it exits 1 when a
    /// route is not found).
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .args(args)
            .output()
            .context("cannot run birdc")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("Unable to connect") {
            bail!("birdc cannot connect: {text}");
        }
        Ok(text)
    }

    /// The `show protocols NAME` line: `(state, since)` such as
    /// `("Established", "15:49:01.123")`.
    pub fn protocol(&self, name: &str) -> Result<(String, String)> {
        let line = bird::protocol_line(&self.birdc(&["show", "protocols", name])?, name)?;
        Ok((line.info, line.since))
    }

    /// Whether protocol `name` is Established.
    pub fn established(&self, name: &str) -> Result<bool> {
        Ok(self.protocol(name)?.0.starts_with("Established"))
    }

    /// Waits until every named protocol is Established.
    pub fn wait_established(&self, names: &[&str]) -> Result<()> {
        wait_until(
            &format!("BIRD sessions {names:?} to be Established"),
            DEFAULT_TIMEOUT,
            || {
                for name in names {
                    if !self.established(name)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
    }

    /// Every path BIRD has for exactly `prefix`.
    pub fn paths(&self, prefix: &str) -> Result<Vec<BirdPath>> {
        let out = self.birdc(&["show", "route", prefix, "all"])?;
        let mut paths: Vec<BirdPath> = Vec::new();
        for line in out.lines() {
            if line.starts_with("BIRD ") || line.starts_with("Table ") || line.is_empty() {
                continue;
            }
            if let Some(attr) = line.strip_prefix('\t') {
                if let Some(med) = attr.trim().strip_prefix("BGP.med:")
                    && let Some(path) = paths.last_mut()
                {
                    path.med = Some(med.trim().parse().context("bad BGP.med")?);
                }
                continue;
            }
            // `PREFIX  unreachable [PROTO HH:MM:SS.mmm from ADDR] * (100) [AS65001i]`
            // or, for a further path, the same with leading blanks.
            let Some(open) = line.find('[') else { continue };
            let protocol = line[open + 1..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            let after = line[open..].split_once(']').map(|(_, r)| r).unwrap_or("");
            paths.push(BirdPath {
                protocol,
                best: after.trim_start().starts_with('*'),
                med: None,
            });
        }
        Ok(paths)
    }

    /// Whether BIRD has any path for `prefix`.
    pub fn has_route(&self, prefix: &str) -> Result<bool> {
        Ok(!self.paths(prefix)?.is_empty())
    }

    /// BIRD's best path for `prefix`.
    pub fn best(&self, prefix: &str) -> Result<Option<BirdPath>> {
        Ok(self.paths(prefix)?.into_iter().find(|p| p.best))
    }

    /// BIRD's log so far.
    pub fn log(&self) -> String {
        bird::read_log(&self.dir)
    }
}

impl Drop for MultiBird {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
        }
    }
}

// ---------------------------------------------------------------------------
// `[[plugin]]` blocks and a wasmbgp that runs them.

/// One `[[plugin]]` block with its routes.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Unique name.
    pub name: String,
    /// Component file.
    pub component: PathBuf,
    /// `interval`.
    pub interval: String,
    /// `rise`.
    pub rise: u32,
    /// `fall`.
    pub fall: u32,
    /// `on-failure`.
    pub on_failure: String,
    /// `med-down`.
    pub med_down: Option<u32>,
    /// `med-disabled`.
    pub med_disabled: Option<u32>,
    /// `[plugin.settings]`.
    pub settings: Vec<(String, String)>,
    /// `grants.tcp`.
    pub tcp: Vec<String>,
    /// `grants.dns`.
    pub dns: Vec<String>,
    /// `grants.neighbors` (for the `routes` interface).
    pub neighbors: Vec<String>,
    /// `grants.max-routes`.
    pub max_routes: Option<u32>,
    /// `grants.memory`.
    pub memory: Option<String>,
    /// `grants.deadline`.
    pub deadline: Option<String>,
    /// `[[plugin.route]]`s: prefix and MED while up.
    pub routes: Vec<(String, u32)>,
}

impl Plugin {
    /// A health check running `component` that controls `prefix` (MED 100); interval
    /// 1 s, rise 1, fall 1, withdraw; no settings, no grants.
    pub fn healthcheck(name: &str, component: PathBuf, prefix: &str) -> Self {
        Self {
            name: name.to_owned(),
            component,
            interval: "1s".to_owned(),
            rise: 1,
            fall: 1,
            on_failure: "withdraw".to_owned(),
            med_down: None,
            med_disabled: None,
            settings: Vec::new(),
            tcp: Vec::new(),
            dns: Vec::new(),
            neighbors: Vec::new(),
            max_routes: None,
            memory: None,
            deadline: None,
            routes: vec![(prefix.to_owned(), 100)],
        }
    }

    /// A `tcp-check`-like plugin: checks `address` (granted), controls
    /// `prefix` with MED `med`; interval 1 s, rise 2, fall 2, withdraw.
    pub fn tcp(name: &str, component: PathBuf, address: &str, prefix: &str, med: u32) -> Self {
        Self {
            rise: 2,
            fall: 2,
            settings: vec![("address".to_owned(), address.to_owned())],
            tcp: vec![address.to_owned()],
            routes: vec![(prefix.to_owned(), med)],
            ..Self::healthcheck(name, component, prefix)
        }
    }

    /// A `dns-check` plugin: resolves `name` through `server` (granted),
    /// expecting `expect`; controls `prefix` with MED `med`; interval 1 s,
    /// rise 2, fall 2, withdraw.
    pub fn dns(
        name: &str,
        server: &str,
        query: &str,
        expect: &str,
        prefix: &str,
        med: u32,
    ) -> Result<Self> {
        let mut p = Self::tcp(name, component("dns-check")?, server, prefix, med);
        p.tcp.clear();
        p.dns = vec![server.to_owned()];
        p.settings = vec![
            ("server".to_owned(), server.to_owned()),
            ("name".to_owned(), query.to_owned()),
            ("expect".to_owned(), expect.to_owned()),
            ("timeout".to_owned(), "300ms".to_owned()),
        ];
        Ok(p)
    }

    /// A `fixture-faulty` plugin in `mode` with extra settings; rise 1,
    /// fall 1, controlling `prefix` (MED 100).
    pub fn faulty(name: &str, mode: &str, extra: &[(&str, &str)], prefix: &str) -> Result<Self> {
        let mut settings = vec![("mode".to_owned(), mode.to_owned())];
        settings.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Ok(Self {
            settings,
            ..Self::healthcheck(name, component("fixture-faulty")?, prefix)
        })
    }

    /// The TOML block.
    pub fn render(&self) -> String {
        let quoted = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = String::new();
        let _ = writeln!(out, "\n[[plugin]]\nname = \"{}\"", self.name);
        let _ = writeln!(out, "world = \"healthcheck\"");
        let _ = writeln!(out, "component = \"{}\"", self.component.display());
        let _ = writeln!(out, "interval = \"{}\"", self.interval);
        let _ = writeln!(out, "rise = {}\nfall = {}", self.rise, self.fall);
        let _ = writeln!(out, "on-failure = \"{}\"", self.on_failure);
        if let Some(med) = self.med_down {
            let _ = writeln!(out, "med-down = {med}");
        }
        if let Some(med) = self.med_disabled {
            let _ = writeln!(out, "med-disabled = {med}");
        }
        out.push_str("[plugin.settings]\n");
        for (k, v) in &self.settings {
            let _ = writeln!(out, "{k} = \"{v}\"");
        }
        out.push_str("[plugin.grants]\n");
        let _ = writeln!(out, "tcp = [{}]", quoted(&self.tcp));
        if !self.dns.is_empty() {
            let _ = writeln!(out, "dns = [{}]", quoted(&self.dns));
        }
        if !self.neighbors.is_empty() {
            let _ = writeln!(out, "neighbors = [{}]", quoted(&self.neighbors));
        }
        if let Some(max) = self.max_routes {
            let _ = writeln!(out, "max-routes = {max}");
        }
        if let Some(memory) = &self.memory {
            let _ = writeln!(out, "memory = \"{memory}\"");
        }
        if let Some(deadline) = &self.deadline {
            let _ = writeln!(out, "deadline = \"{deadline}\"");
        }
        for (prefix, med) in &self.routes {
            let _ = writeln!(
                out,
                "[[plugin.route]]\nprefix = \"{prefix}\"\nnext-hop = \"self\"\nmed = {med}"
            );
        }
        out
    }
}

/// Whether two of BIRD's `show protocols` "since" times (`HH:MM:SS.mmm`) name the same
/// state change. BIRD keeps that time on its monotonic clock and prints it converted to
/// wall-clock time at each query, so the printed value moves by milliseconds between
/// queries (seen here: 1 ms backwards, 25 ms forwards on a loaded machine) while the
/// session stays up; a reset moves it by the seconds the test has run since.
pub fn same_since(a: &str, b: &str) -> bool {
    fn millis(t: &str) -> Option<i64> {
        let (hms, ms) = t.split_once('.')?;
        let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
        let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
        Some(((h * 60 + m) * 60 + s) * 1000 + ms.parse::<i64>().ok()?)
    }
    match (millis(a), millis(b)) {
        (Some(a), Some(b)) => (a - b).abs() <= 250,
        _ => a == b,
    }
}

/// dnsmasq on loopback answering `name` with `address`, killed on drop.
pub struct Dnsmasq {
    child: std::process::Child,
    args: Vec<String>,
}

impl Dnsmasq {
    /// Starts it on `listen` (`IP:PORT`).
    pub fn start(listen: &str, name: &str, address: &str) -> Result<Self> {
        let (ip, port) = listen.rsplit_once(':').context("listen is IP:PORT")?;
        let args = vec![
            "--no-daemon".to_owned(),
            format!("--port={port}"),
            format!("--listen-address={ip}"),
            "--bind-interfaces".to_owned(),
            "--no-resolv".to_owned(),
            "--no-hosts".to_owned(),
            format!("--address=/{name}/{address}"),
            "--conf-file=/dev/null".to_owned(),
            "--pid-file=".to_owned(),
            "--user=root".to_owned(),
        ];
        let child = Self::spawn(&args)?;
        Ok(Self { child, args })
    }

    fn spawn(args: &[String]) -> Result<std::process::Child> {
        std::process::Command::new("dnsmasq")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("dnsmasq (Debian dnsmasq-base) is installed")
    }

    /// Kills it (the check then times out).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again with the same arguments.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.child = Self::spawn(&self.args)?;
        Ok(())
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One entry of `ctl show plugins --json`.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// `running|backoff|failed|disabled|stopped`.
    pub state: String,
    /// `up|down|disabled`, or None before the first verdict.
    pub health: Option<String>,
    /// Restarts after faults.
    pub restarts: u64,
    /// Last error.
    pub last_error: Option<String>,
    /// Calls into the component.
    pub calls: u64,
    /// Median call time.
    pub p50_us: u64,
    /// p99 call time.
    pub p99_us: u64,
    /// Denied attempts.
    pub denied: u64,
    /// Route requests refused as malformed.
    pub invalid: u64,
    /// Routes owned.
    pub routes_owned: u64,
    /// `healthcheck` or `policy`.
    pub world: String,
    /// Policy: routes accepted unchanged.
    pub routes_accepted: u64,
    /// Policy: routes rejected.
    pub routes_rejected: u64,
    /// Policy: routes accepted with changed attributes.
    pub routes_modified: u64,
    /// Policy: routes given the `on-failure` treatment (fault or backoff).
    pub routes_unjudged: u64,
    /// The raw JSON.
    pub raw: Value,
}

/// The entry of plugin `name` in `show plugins --json`.
pub fn plugin_entry<'a>(json: &'a Value, name: &str) -> Result<&'a Value> {
    json.as_array()
        .context("show plugins --json is not an array")?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .with_context(|| format!("no plugin {name} in {json}"))
}

/// A wasmbgp daemon (`wasmbgp run`) with plugins, whose session(s) go to a
/// BIRD at `neighbor`.
#[derive(Debug)]
pub struct PluginSpeaker {
    dir: PathBuf,
    socket: PathBuf,
    config_path: PathBuf,
    daemon: Daemon,
}

impl PluginSpeaker {
    /// The base config of one instance: router id and source `local`,
    /// listening on `local:listen_port`, one neighbor BIRD at
    /// `bird:bird_port`.
    pub fn base_config(
        local: Ipv4Addr,
        listen_port: u16,
        bird: Ipv4Addr,
        bird_port: u16,
    ) -> Config {
        Config {
            router_id: local.to_string(),
            local_as: WASMBGP_AS,
            listen: Some(format!("{local}:{listen_port}")),
            neighbors: vec![NeighborConfig::new(bird, bird_port, BIRD_AS, local)],
            routes: Vec::new(),
            route_files: Vec::new(),
        }
    }

    /// Writes `config` plus `plugins` into `dir` (its own subdirectory per
    /// instance), runs `wasmbgp check`, starts `wasmbgp run` and waits for the
    /// control socket.
    pub fn start(dir: &Path, config: &Config, plugins: &[Plugin]) -> Result<Self> {
        let extra: String = plugins.iter().map(Plugin::render).collect();
        Self::start_with(dir, config, &extra)
    }

    /// Like [`PluginSpeaker::start`], with `extra` TOML (such as policy
    /// `[[plugin]]` blocks) appended to the rendered `config`; the config's
    /// route files are written beside it.
    pub fn start_with(dir: &Path, config: &Config, extra: &str) -> Result<Self> {
        let mut text = config.render(&Self::socket_in(dir));
        text.push_str(extra);
        Self::start_text(dir, &text, &config.route_files, "info")
    }

    /// Writes the config `text` (control socket at [`PluginSpeaker::socket_in`]) and
    /// `route_files` into `dir`, runs `wasmbgp check`, starts `wasmbgp run` (text log at
    /// `log_level`) and waits for the control socket.
    pub fn start_text(
        dir: &Path,
        text: &str,
        route_files: &[RouteFile],
        log_level: &str,
    ) -> Result<Self> {
        let socket = Self::socket_in(dir);
        let (config_path, mut daemon) = spawn_checked(dir, text, route_files, log_level)?;
        wait_socket(&mut daemon, dir, &socket)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            config_path,
            daemon,
        })
    }

    /// Where the config of an instance in `dir` puts its control socket.
    pub fn socket_in(dir: &Path) -> PathBuf {
        dir.join("wasmbgp.sock")
    }

    /// The config file (absolute, as given to `wasmbgp run`).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
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
        let out = check_file(&self.config_path)?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ))
    }

    /// Sends SIGHUP to the daemon.
    pub fn sighup(&self) -> Result<()> {
        self.daemon.signal(libc::SIGHUP)
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    /// `wasmbgp ctl --socket SOCK ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        ctl(&self.socket, args)
    }

    /// `wasmbgp ctl --socket SOCK ARGS...` whatever its exit status.
    pub fn ctl_output(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new(binary()?)
            .arg("ctl")
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .context("cannot run wasmbgp ctl")
    }

    /// `wasmbgp ctl --socket SOCK -` with `input` on standard input, whatever its exit
    /// status (the caller checks it).
    pub fn ctl_stream(&self, input: &[u8]) -> Result<std::process::Output> {
        use std::io::Write as _;
        let mut child = Command::new(binary()?)
            .arg("ctl")
            .arg("--socket")
            .arg(&self.socket)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("cannot run wasmbgp ctl -")?;
        let mut stdin = child.stdin.take().context("no stdin")?;
        let input = input.to_vec();
        // Written from a thread: the answers are read while the commands are sent.
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().context("wasmbgp ctl -")?;
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("stdin writer panicked"))?
            .context("writing to wasmbgp ctl -")?;
        Ok(output)
    }

    /// `wasmbgp ctl ARGS` whose output is JSON.
    pub fn ctl_json(&self, args: &[&str]) -> Result<Value> {
        ctl_json(&self.socket, args)
    }

    /// `show plugins --json`, entry `name`.
    pub fn plugin(&self, name: &str) -> Result<PluginStatus> {
        let json = self.ctl_json(&["show", "plugins", "--json"])?;
        let entry = plugin_entry(&json, name)?;
        let n = |key: &str| entry[key].as_u64().unwrap_or_default();
        Ok(PluginStatus {
            state: entry["state"].as_str().unwrap_or_default().to_owned(),
            health: entry["health"].as_str().map(str::to_owned),
            restarts: n("restarts"),
            last_error: entry["last-error"].as_str().map(str::to_owned),
            calls: n("calls"),
            p50_us: n("p50-us"),
            p99_us: n("p99-us"),
            denied: n("denied"),
            invalid: n("invalid"),
            routes_owned: n("routes-owned"),
            world: entry["world"].as_str().unwrap_or_default().to_owned(),
            routes_accepted: n("routes-accepted"),
            routes_rejected: n("routes-rejected"),
            routes_modified: n("routes-modified"),
            routes_unjudged: n("routes-unjudged"),
            raw: entry.clone(),
        })
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

    /// `(state, established-count)` of the (single) neighbor.
    pub fn session(&self) -> Result<(String, u64)> {
        let json = self.ctl_json(&["show", "neighbors", "--json"])?;
        let entry = json
            .as_array()
            .and_then(|a| a.first())
            .with_context(|| format!("no neighbor in {json}"))?;
        Ok((
            entry["state"].as_str().unwrap_or_default().to_owned(),
            entry["established-count"].as_u64().unwrap_or_default(),
        ))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// The `count=N` details of health check `plugin`, in log order (from the
    /// `fixture-faulty` plugin in `counter` mode, logged at debug level: see
    /// [`crate::reload_support::LOG_LEVEL`]).
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

impl Drop for PluginSpeaker {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
    }
}

// ---------------------------------------------------------------------------
// Polling helpers.

/// Polls `probe` every `every` until it holds, for at most `timeout`;
/// returns the time it took.
pub fn wait_fast(
    what: &str,
    every: Duration,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match probe() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(e) => last_error = Some(e),
        }
        if start.elapsed() >= timeout {
            match last_error {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        std::thread::sleep(every);
    }
}

/// Samples `probe` every `every` for `duration`; returns every sample (an
/// error counts as a failed sample and is kept as text).
pub fn sample<T>(
    every: Duration,
    duration: Duration,
    mut probe: impl FnMut() -> Result<T>,
) -> Vec<std::result::Result<T, String>> {
    let start = Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < duration {
        out.push(probe().map_err(|e| format!("{e:#}")));
        std::thread::sleep(every);
    }
    out
}

/// Samples of a [`RouteWatch`]: `(time, presence per prefix)`.
pub type RouteSamples = Vec<(Duration, Vec<bool>)>;

/// A background sampler of BIRD routes: records, every ~50 ms, whether each
/// prefix is present, until stopped.
pub struct RouteWatch {
    samples: Arc<Mutex<RouteSamples>>,
    worker: Worker,
}

impl RouteWatch {
    /// Starts sampling `prefixes` at `bird_dir`'s BIRD.
    pub fn start(bird: &MultiBird, prefixes: &[String]) -> Self {
        let dir = bird.dir.clone();
        let prefixes = prefixes.to_vec();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let samples = samples.clone();
            Worker::spawn(move |stop| {
                // A view on the same BIRD, not owning the daemon.
                let view = MultiBird { dir, daemon: None };
                let start = Instant::now();
                // Bounded: at most 10 minutes of samples.
                while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(600) {
                    let present = prefixes
                        .iter()
                        .map(|p| view.has_route(p).unwrap_or(false))
                        .collect();
                    samples.lock().unwrap().push((start.elapsed(), present));
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self { samples, worker }
    }

    /// Stops sampling; returns `(time, presence per prefix)` samples.
    pub fn finish(mut self) -> RouteSamples {
        self.worker.stop();
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

/// Prints both daemons' log tails (for a failing test's output).
pub fn dump_logs(test: &str, bird: &MultiBird, speakers: &[&PluginSpeaker]) {
    let tail = |text: &str, n: usize| {
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    };
    eprintln!("[{test}] --- BIRD log tail ---\n{}", tail(&bird.log(), 40));
    for (i, s) in speakers.iter().enumerate() {
        eprintln!(
            "[{test}] --- wasmbgp #{i} log tail ---\n{}",
            tail(&s.log(), 60)
        );
    }
}

// ---------------------------------------------------------------------------
// The usual rig: one BIRD, one wasmbgp with plugins, one session.

/// BIRD's protocol name toward the single wasmbgp of a [`Rig`].
pub const RIG_PROTOCOL: &str = "wasm";

/// One BIRD (`127.0.B.2`, port 0 of the block) and one wasmbgp
/// (`127.0.B.1`, port 1) running `plugins`, session Established.
pub struct Rig {
    /// Test name (for progress lines).
    pub test: String,
    /// The block.
    pub block: PluginBlock,
    /// wasmbgp.
    pub speaker: PluginSpeaker,
    /// BIRD.
    pub bird: MultiBird,
    /// BIRD's `since` of the session once Established.
    pub bird_since: String,
    /// The work directory (dropped last: kept when the test panics).
    pub dir: crate::workdir::WorkDir,
}

impl Rig {
    /// Starts BIRD and wasmbgp and waits for the session on both sides.
    pub fn start(test: &str, block: PluginBlock, plugins: &[Plugin]) -> Result<Self> {
        let dir = crate::workdir::WorkDir::new(test)?;
        let bird = MultiBird::start(
            &dir.subdir("bird")?,
            block.addr(2),
            &[BirdSession {
                name: RIG_PROTOCOL.to_owned(),
                local: (block.addr(2), block.port(0)),
                remote: (block.addr(1), block.port(1), WASMBGP_AS),
            }],
        )?;
        let config =
            PluginSpeaker::base_config(block.addr(1), block.port(1), block.addr(2), block.port(0));
        let speaker = PluginSpeaker::start(&dir.subdir("wasmbgp")?, &config, plugins)?;
        bird.wait_established(&[RIG_PROTOCOL])?;
        wait_until("wasmbgp session Established", DEFAULT_TIMEOUT, || {
            Ok(speaker.session()?.0 == "established")
        })?;
        let bird_since = bird.protocol(RIG_PROTOCOL)?.1;
        crate::step(test, format!("session up (BIRD since {bird_since})"));
        Ok(Self {
            test: test.to_owned(),
            block,
            speaker,
            bird,
            bird_since,
            dir,
        })
    }

    /// Progress line.
    pub fn step(&self, message: impl std::fmt::Display) {
        crate::step(&self.test, message);
    }

    /// The session never reset: Established on both sides, wasmbgp's
    /// `established-count` still 1 and BIRD's `since` unchanged.
    pub fn assert_session_untouched(&self) -> Result<()> {
        let (state, count) = self.speaker.session()?;
        let (bird_state, since) = self.bird.protocol(RIG_PROTOCOL)?;
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

    /// Prints the log tails.
    pub fn dump(&self) {
        dump_logs(&self.test, &self.bird, &[&self.speaker]);
    }
}

// ---------------------------------------------------------------------------
// wasmbgp's text log.

/// `text` without ANSI colour sequences (`ESC [ ... m`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// wasmbgp's text log as records: colours stripped, a record's continuation lines (a
/// multi-line message, such as a refused config's diagnostics or a wasm backtrace)
/// joined to it with `\n`.
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

/// The log records ([`log_records`], each on one line: its continuation lines trimmed
/// and joined to it with a blank) that mention `plugin=NAME` and contain `needle`.
pub fn plugin_log_lines(log: &str, plugin: &str, needle: &str) -> Vec<String> {
    let tag = format!("plugin={plugin}");
    log_records(log)
        .into_iter()
        .map(|record| {
            let mut lines = record.split('\n');
            let mut joined = lines.next().unwrap_or_default().to_owned();
            for line in lines {
                joined.push(' ');
                joined.push_str(line.trim());
            }
            joined
        })
        .filter(|r| r.split_whitespace().any(|w| w == tag) && r.contains(needle))
        .collect()
}

/// The value of `key=VALUE` in a log line.
pub fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))?;
    line[at + key.len() + 2..].split_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::{log_records, plugin_log_lines, same_since};

    #[test]
    fn log_records_join_continuation_lines() {
        let log = "2026-11-24T15:53:26.96Z  WARN refused plugin=a x=1\n  first\n\tsecond\n2026-11-24T15:53:27.00Z  INFO ok plugin=b\n";
        assert_eq!(
            log_records(log),
            vec![
                "2026-11-24T15:53:26.96Z  WARN refused plugin=a x=1\n  first\n\tsecond",
                "2026-11-24T15:53:27.00Z  INFO ok plugin=b",
            ]
        );
        assert_eq!(
            plugin_log_lines(log, "a", "refused"),
            vec!["2026-11-24T15:53:26.96Z  WARN refused plugin=a x=1 first second"]
        );
        assert!(plugin_log_lines(log, "b", "refused").is_empty());
    }

    #[test]
    fn bird_since_jitter_is_the_same_change() {
        assert!(same_since("17:18:59.245", "17:18:59.246"));
        assert!(same_since("17:11:18.353", "17:11:18.328"));
        assert!(!same_since("17:11:19.353", "17:11:18.328"));
        assert!(!same_since("17:11:18.328", "Established"));
    }
}
