//! Support for the exporter end-to-end tests (`tests/exporter_*.rs`):
//! `world = "exporter"` `[[plugin]]` blocks, a wasmbgp serving `/metrics`,
//! a rig of one BIRD originating static routes and one wasmbgp with
//! exporters, the fixture-exporter's file read back and replayed into a
//! table, a loopback HTTP server that records requests, and pmacct's
//! `pmbmpd` as a BMP collector.
//!
//! Blocks 240–249 ([`PluginBlock`]): BIRD on `127.0.B.2` port 0, wasmbgp on
//! `127.0.B.1` port 1, `/metrics` on port 2, listeners of the test on ports
//! 3 and up.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::peers::prometheus::scrape;
use crate::plugin_support::{PluginBlock, PluginSpeaker, component, plugin_entry};
use crate::policy_support::{PolicyBird, StaticGroup, metric_value, tail};
use crate::process::{Daemon, Worker};
use crate::wait::wait_until;
use crate::wasmbgp::{Config, binary, read_log, spawn_checked, toml_list, toml_str, wait_started};
use crate::workdir::WorkDir;

// ---------------------------------------------------------------------------
// Exporter blocks.

/// One `[[plugin]]` block with `world = "exporter"`.
#[derive(Debug, Clone)]
pub struct ExporterPlugin {
    /// Unique name.
    pub name: String,
    /// Component file.
    pub component: PathBuf,
    /// `subscribe` (None: the default, everything).
    pub subscribe: Option<Vec<String>>,
    /// `received-routes`.
    pub received_routes: Option<String>,
    /// `queue`.
    pub queue: Option<u32>,
    /// `[plugin.settings]`, in order.
    pub settings: Vec<(String, String)>,
    /// `grants.max-series`.
    pub max_series: Option<u32>,
    /// `grants.http-out`.
    pub http_out: Vec<String>,
    /// `grants.tcp-out`.
    pub tcp_out: Vec<String>,
    /// `grants.append-files`.
    pub append_files: Vec<PathBuf>,
    /// `grants.deadline`.
    pub deadline: Option<String>,
    /// `grants.memory`.
    pub memory: Option<String>,
}

impl ExporterPlugin {
    /// An exporter running `target/plugins/COMPONENT.wasm` (built if needed).
    pub fn new(name: &str, component_name: &str) -> Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            component: component(component_name)?,
            subscribe: None,
            received_routes: None,
            queue: None,
            settings: Vec::new(),
            max_series: None,
            http_out: Vec::new(),
            tcp_out: Vec::new(),
            append_files: Vec::new(),
            deadline: None,
            memory: None,
        })
    }

    /// The fixture-exporter recording into `path` (granted), mode `record`.
    pub fn fixture(name: &str, path: &Path) -> Result<Self> {
        Ok(Self::new(name, "fixture-exporter")?
            .setting("path", &path.display().to_string())
            .append_file(path))
    }

    /// Sets `subscribe`.
    pub fn subscribe(mut self, kinds: &[&str]) -> Self {
        self.subscribe = Some(kinds.iter().map(|k| (*k).to_owned()).collect());
        self
    }

    /// Adds (or replaces) a setting.
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.retain(|(k, _)| k != key);
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Grants an append file.
    pub fn append_file(mut self, path: &Path) -> Self {
        self.append_files.push(path.to_path_buf());
        self
    }

    /// The TOML block.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n[[plugin]]\nname = {}", toml_str(&self.name));
        out.push_str("world = \"exporter\"\n");
        let _ = writeln!(
            out,
            "component = {}",
            toml_str(&self.component.display().to_string())
        );
        if let Some(kinds) = &self.subscribe {
            let _ = writeln!(out, "subscribe = {}", toml_list(kinds));
        }
        if let Some(r) = &self.received_routes {
            let _ = writeln!(out, "received-routes = {}", toml_str(r));
        }
        if let Some(q) = self.queue {
            let _ = writeln!(out, "queue = {q}");
        }
        out.push_str("[plugin.grants]\n");
        if let Some(n) = self.max_series {
            let _ = writeln!(out, "max-series = {n}");
        }
        if !self.http_out.is_empty() {
            let _ = writeln!(out, "http-out = {}", toml_list(&self.http_out));
        }
        if !self.tcp_out.is_empty() {
            let _ = writeln!(out, "tcp-out = {}", toml_list(&self.tcp_out));
        }
        if !self.append_files.is_empty() {
            let files: Vec<String> = self
                .append_files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            let _ = writeln!(out, "append-files = {}", toml_list(&files));
        }
        if let Some(d) = &self.deadline {
            let _ = writeln!(out, "deadline = {}", toml_str(d));
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(out, "memory = {}", toml_str(m));
        }
        out.push_str("[plugin.settings]\n");
        for (k, v) in &self.settings {
            let _ = writeln!(out, "{k} = {}", toml_str(v));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// wasmbgp with /metrics.

/// A wasmbgp daemon with `metrics = ADDR` and exporter blocks; killed on drop.
#[derive(Debug)]
pub struct ExporterSpeaker {
    dir: PathBuf,
    socket: PathBuf,
    config_path: PathBuf,
    metrics: SocketAddr,
    daemon: Daemon,
    /// When `wasmbgp run` was started.
    pub started: Instant,
}

impl ExporterSpeaker {
    /// Writes `config` with `metrics` (a top-level key, before the first
    /// table) and `extra` appended, runs `wasmbgp check`, starts
    /// `wasmbgp run` and waits for the control socket and `/metrics`.
    pub fn start(dir: &Path, config: &Config, metrics: SocketAddr, extra: &str) -> Result<Self> {
        let socket = dir.join("wasmbgp.sock");
        let text = config.render_with_metrics(&socket, metrics) + extra;
        let (config_path, mut daemon) = spawn_checked(dir, &text, &config.route_files, "info")?;
        let started = Instant::now();
        wait_started(
            &mut daemon,
            "wasmbgp control socket and /metrics to answer",
            || {
                Ok(socket.exists()
                    && bounded_ctl(&socket, &["show", "neighbors", "--json"]).is_ok()
                    && scrape(metrics).is_ok())
            },
        )
        .with_context(|| format!("wasmbgp did not start; log:\n{}", tail(&read_log(dir), 40)))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            config_path,
            metrics,
            daemon,
            started,
        })
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// `wasmbgp ctl --socket SOCK ARGS...` (must exit 0 within
    /// [`CTL_TIMEOUT`]: a daemon that stops answering is an error, not a hang).
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        bounded_ctl(&self.socket, args)
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// `wasmbgp ctl ARGS` whose output is JSON.
    pub fn ctl_json(&self, args: &[&str]) -> Result<Value> {
        let out = self.ctl(args)?;
        serde_json::from_str(&out)
            .with_context(|| format!("`wasmbgp ctl {}` printed bad JSON", args.join(" ")))
    }

    /// `GET /metrics` (status 200 required).
    pub fn scrape(&self) -> Result<String> {
        scrape(self.metrics)
    }

    /// One sample of `/metrics` (None: no such series).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<Option<f64>> {
        Ok(metric_value(&self.scrape()?, name, labels))
    }

    /// `show plugins --json`, the entry of `name`.
    pub fn plugin(&self, name: &str) -> Result<Value> {
        plugin_entry(&self.ctl_json(&["show", "plugins", "--json"])?, name).cloned()
    }

    /// `show neighbors --json`, the (single) neighbor's entry.
    pub fn neighbor(&self) -> Result<Value> {
        let json = self.ctl_json(&["show", "neighbors", "--json"])?;
        json.as_array()
            .and_then(|a| a.first())
            .cloned()
            .with_context(|| format!("no neighbor in {json}"))
    }

    /// `(state, established-count, prefixes-received)` of the neighbor.
    pub fn session(&self) -> Result<(String, u64, u64)> {
        let n = self.neighbor()?;
        Ok((
            n["state"].as_str().unwrap_or_default().to_owned(),
            n["established-count"].as_u64().unwrap_or_default(),
            n["prefixes-received"].as_u64().unwrap_or_default(),
        ))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }
}

pub use crate::wasmbgp::CTL_TIMEOUT;

/// `wasmbgp ctl --socket SOCKET ARGS...`, which must exit 0 within [`CTL_TIMEOUT`].
fn bounded_ctl(socket: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(binary()?);
    cmd.arg("ctl").arg("--socket").arg(socket).args(args);
    run_bounded(&mut cmd, CTL_TIMEOUT)
}

pub use crate::run_bounded;

/// The kernel's view of each thread of process `pid` (name, state, wait
/// channel), for a daemon that stopped answering.
pub fn threads_of(pid: u32) -> String {
    let mut out = String::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("no /proc/{pid}/task");
    };
    for task in tasks.flatten() {
        let p = task.path();
        let read = |f: &str| {
            std::fs::read_to_string(p.join(f))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let stat = read("stat");
        let state = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("?").to_owned())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {} state={} wchan={} syscall={}",
            task.file_name().to_string_lossy(),
            read("comm"),
            state,
            read("wchan"),
            read("syscall")
        );
    }
    out
}

// ---------------------------------------------------------------------------
// The rig.

/// One BIRD (`127.0.B.2`, port 0) originating static groups and one wasmbgp
/// (`127.0.B.1`, port 1, `/metrics` on port 2) with exporters.
pub struct ExporterRig {
    /// Test name.
    pub test: String,
    /// The block.
    pub block: PluginBlock,
    /// wasmbgp.
    pub speaker: ExporterSpeaker,
    /// BIRD.
    pub bird: PolicyBird,
    /// The work directory (dropped last).
    pub dir: WorkDir,
}

impl ExporterRig {
    /// Starts BIRD with `groups`, then wasmbgp with the exporters `build`
    /// makes (given the directory `out` for their files); does not wait for
    /// the session.
    pub fn start(
        test: &str,
        block: PluginBlock,
        groups: &[StaticGroup],
        build: impl FnOnce(&Path) -> Result<Vec<ExporterPlugin>>,
    ) -> Result<Self> {
        let dir = WorkDir::new(test)?;
        let plugins = build(&dir.subdir("out")?)?;
        let bird = PolicyBird::start(
            &dir.subdir("bird")?,
            (block.addr(2), block.port(0)),
            (block.addr(1), block.port(1)),
            groups,
            false,
        )?;
        let config =
            PluginSpeaker::base_config(block.addr(1), block.port(1), block.addr(2), block.port(0));
        let extra: String = plugins.iter().map(ExporterPlugin::render).collect();
        let metrics = SocketAddr::new(block.addr(1).into(), block.port(2));
        let speaker =
            match ExporterSpeaker::start(&dir.subdir("wasmbgp")?, &config, metrics, &extra) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("[{test}] --- BIRD log ---\n{}", tail(&bird.log(), 40));
                    return Err(e);
                }
            };
        Ok(Self {
            test: test.to_owned(),
            block,
            speaker,
            bird,
            dir,
        })
    }

    /// The neighbor's (BIRD's) address.
    pub fn neighbor(&self) -> String {
        self.block.addr(2).to_string()
    }

    /// The directory of the exporters' files.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Waits until both sides have the session Established.
    pub fn wait_established(&self, timeout: Duration) -> Result<()> {
        wait_until("BIRD session Established", timeout, || {
            self.bird.established()
        })?;
        wait_until("wasmbgp session Established", timeout, || {
            Ok(self.speaker.session()?.0 == "established")
        })
    }

    /// Progress line.
    pub fn step(&self, message: impl std::fmt::Display) {
        crate::step(&self.test, message);
    }

    /// Prints both daemons' log tails (and wasmbgp's threads).
    pub fn dump(&self) {
        if let Some(pid) = self.speaker.pid() {
            eprintln!(
                "[{}] --- wasmbgp threads ---\n{}",
                self.test,
                threads_of(pid)
            );
        }
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

    /// Runs a `birdc` command that must succeed and answer with `expect`.
    pub fn birdc_expect(&self, args: &[&str], expect: &str) -> Result<String> {
        let out = self.bird.birdc(args)?;
        ensure!(
            out.contains(expect),
            "birdc {} answered {out:?}, expected {expect:?}",
            args.join(" ")
        );
        Ok(out)
    }
}

/// The `i`-th of `n` /24s from `base`, split into groups `names[k]` of
/// `sizes[k]` prefixes each.
pub fn slash24_groups(base: Ipv4Addr, sizes: &[(&str, u32)]) -> Vec<StaticGroup> {
    let mut at = 0u32;
    sizes
        .iter()
        .map(|&(name, n)| {
            let prefixes: Vec<String> = (at..at + n)
                .map(|i| crate::policy_support::slash24(base, i))
                .collect();
            at += n;
            StaticGroup::new(name, prefixes)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The fixture-exporter's file.

/// The complete lines of the fixture's file, parsed (a trailing line
/// without its newline, still being written, is left out). A missing file
/// is empty.
pub fn read_records(path: &Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(at) => &text[..=at],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {}: bad JSON {line:?}", path.display(), i + 1))
        })
        .collect()
}

/// The `"type"` of a record.
pub fn kind(record: &Value) -> &str {
    record["type"].as_str().unwrap_or_default()
}

/// Whether a record is a session event of a snapshot (`old` equals `new`).
pub fn is_snapshot_session(record: &Value) -> bool {
    kind(record) == "session" && record["old"] == record["new"]
}

/// The attributes compared between the fixture's view and `adj-rib-in`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteView {
    /// Next hop.
    pub next_hop: Option<String>,
    /// AS path (flattened).
    pub as_path: Vec<u32>,
    /// MED.
    pub med: Option<u32>,
    /// Standard communities, sorted.
    pub communities: BTreeSet<String>,
}

fn record_view(record: &Value) -> RouteView {
    let number = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    RouteView {
        next_hop: record["next_hop"].as_str().map(str::to_owned),
        as_path: record["as_path"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(number)
            .collect(),
        med: number(&record["med"]),
        communities: record["communities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect(),
    }
}

/// The table of one neighbor's received routes as `adj-rib-in --json` has
/// it: prefix → attributes.
pub fn rib_view(speaker: &ExporterSpeaker, neighbor: &str) -> Result<BTreeMap<String, RouteView>> {
    let json = speaker.ctl_json(&["show", "adj-rib-in", neighbor, "--json"])?;
    let routes = crate::wasmbgp::parse_rib(&json)?;
    Ok(routes
        .into_iter()
        .map(|r| {
            (
                r.prefix,
                RouteView {
                    next_hop: r.next_hop,
                    as_path: r.as_path,
                    med: r.med,
                    communities: r.communities.into_iter().collect(),
                },
            )
        })
        .collect())
}

/// What an exporter knows after the last snapshot in `records` and the
/// changes after it: the routes received from `neighbor` (direction
/// `received`), prefix → attributes. Also returns the index of the
/// snapshot's `end-of-snapshot`.
///
/// The snapshot is the run of snapshot session events and announcements
/// just before the last `end-of-snapshot`, starting at its first session
/// event. A session leaving established clears the neighbor's routes.
pub fn replay(records: &[Value], neighbor: &str) -> Result<(BTreeMap<String, RouteView>, usize)> {
    let end = records
        .iter()
        .rposition(|r| kind(r) == "end-of-snapshot")
        .context("no end-of-snapshot in the file")?;
    let mut start = None;
    let mut i = end;
    while i > 0 {
        i -= 1;
        let r = &records[i];
        if is_snapshot_session(r) {
            start = Some(i);
        } else if kind(r) != "announce" {
            break;
        }
    }
    let start = start.with_context(|| {
        format!(
            "the snapshot ending at line {} has no session event",
            end + 1
        )
    })?;
    let mut table = BTreeMap::new();
    for r in &records[start..] {
        if r["neighbor"].as_str() != Some(neighbor) {
            continue;
        }
        match kind(r) {
            "announce" if r["direction"] == "received" => {
                let prefix = r["prefix"].as_str().context("announce without prefix")?;
                table.insert(prefix.to_owned(), record_view(r));
            }
            "withdraw" if r["direction"] == "received" => {
                let prefix = r["prefix"].as_str().context("withdraw without prefix")?;
                table.remove(prefix);
            }
            "session" if r["new"] != "established" => table.clear(),
            _ => {}
        }
    }
    Ok((table, end))
}

/// Describes the difference of two tables (at most a few examples).
pub fn table_diff(
    got: &BTreeMap<String, RouteView>,
    want: &BTreeMap<String, RouteView>,
) -> Option<String> {
    if got == want {
        return None;
    }
    let missing: Vec<&String> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<&String> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    let differ: Vec<String> = want
        .iter()
        .filter_map(|(k, v)| match got.get(k) {
            Some(g) if g != v => Some(format!("{k}: {g:?} vs {v:?}")),
            _ => None,
        })
        .take(3)
        .collect();
    Some(format!(
        "{} routes vs {} expected; missing e.g. {missing:?}; extra e.g. {extra:?}; different e.g. {differ:?}",
        got.len(),
        want.len()
    ))
}

/// Replaces the single occurrence of `old` in the config file by `new`.
pub fn edit_config(path: &Path, old: &str, new: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(
        text.matches(old).count() == 1,
        "{old:?} is not exactly once in {}",
        path.display()
    );
    std::fs::write(path, text.replace(old, new))
        .with_context(|| format!("cannot write {}", path.display()))
}

// ---------------------------------------------------------------------------
// An HTTP server that records requests.

/// One request the [`HttpRecorder`] received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Target (path).
    pub target: String,
    /// Header lines.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding decoded).
    pub body: Vec<u8>,
}

/// A loopback HTTP/1.1 server in a thread: records every request, answers
/// `200` with an empty body and closes the connection; counts connections.
pub struct HttpRecorder {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
    connections: Arc<AtomicUsize>,
    /// Stopped on drop.
    _worker: Worker,
}

impl HttpRecorder {
    /// Listens on `addr`.
    pub fn start(addr: &str) -> Result<Self> {
        let listener =
            TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (requests, connections) = (requests.clone(), connections.clone());
            Worker::spawn(move |stop| {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            connections.fetch_add(1, Ordering::Relaxed);
                            if let Ok(Some(request)) = serve(stream)
                                && let Ok(mut list) = requests.lock()
                            {
                                list.push(request);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(Self {
            addr,
            requests,
            connections,
            _worker: worker,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Reads one request (bounded: 5 s per read, 1 MiB) and answers 200.
fn serve(stream: TcpStream) -> Result<Option<HttpRequest>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(1 << 20));
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        for _ in 0..10_000 {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .context("bad chunk size")?;
            if size == 0 {
                let mut trailer = String::new();
                reader.read_line(&mut trailer)?;
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            reader.read_line(&mut crlf)?;
        }
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; n.min(1 << 20)];
        reader.read_exact(&mut body)?;
    }
    let mut stream = stream;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let _ = stream.flush();
    Ok(Some(HttpRequest {
        method,
        target,
        headers,
        body,
    }))
}

// ---------------------------------------------------------------------------
// pmacct's pmbmpd.

/// pmbmpd listening on `addr`, logging every BMP message as JSON into its
/// msglog file; killed on drop.
pub struct Pmbmpd {
    msglog: PathBuf,
    log: PathBuf,
    _daemon: Daemon,
}

impl Pmbmpd {
    /// Starts pmbmpd in `dir` on `addr` and waits until it listens.
    pub fn start(dir: &Path, addr: SocketAddr) -> Result<Self> {
        let msglog = dir.join("bmp.json");
        let conf = dir.join("pmbmpd.conf");
        let log = dir.join("pmbmpd.log");
        std::fs::write(
            &conf,
            format!(
                "bmp_daemon_ip: {}\nbmp_daemon_port: {}\nbmp_daemon_msglog_file: {}\nbmp_daemon_msglog_output: json\n",
                addr.ip(),
                addr.port(),
                msglog.display()
            ),
        )?;
        let mut cmd = Command::new("pmbmpd");
        cmd.arg("-f").arg(&conf);
        let daemon = Daemon::spawn("pmbmpd", cmd, &log)?;
        let this = Self {
            msglog,
            log,
            _daemon: daemon,
        };
        // Listening: a connection is accepted (and closed at once; pmbmpd
        // drops a BMP peer that sends nothing).
        wait_until("pmbmpd to listen", Duration::from_secs(15), || {
            Ok(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
        })
        .with_context(|| format!("pmbmpd did not start: {}", this.log_text()))?;
        Ok(this)
    }

    /// The JSON messages logged so far (complete lines).
    pub fn messages(&self) -> Result<Vec<Value>> {
        read_records(&self.msglog)
    }

    /// pmbmpd's own output.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
