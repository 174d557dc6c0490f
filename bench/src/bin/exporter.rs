//! wasmbgp exporter benchmark (exporter issue, "Must show" 6; not a test): prints a
//! results table.
//!
//! One BIRD 2 originator (`protocol static`, the 1M-route table of the main benchmark:
//! route `i` = 20.0.0.0/24 + i·256) feeds, one run at a time:
//!
//! - **wasmbgp, no exporter**;
//! - **wasmbgp + route-stats** (Rust exporter, `subscribe` left at its default: every
//!   kind, received routes after import policy; `queue` at its default unless `--queue`;
//!   `deadline = "100ms"`), so that every received route reaches the exporter;
//! - **wasmbgp + route-stats, `received-routes = "pre-policy"`**: the same events are
//!   built, queued and handed to the guest, which skips that direction: the cost of
//!   delivery alone (`--no-pre` leaves it out);
//! - **BIRD 2 receiver** (`import all`), the reference: what BIRD itself spends to take
//!   the same table in.
//!
//! Per run: the receiver's CPU (utime + stime, /proc/PID/stat) from idle, just before
//! the originator's BGP protocol for it is enabled (wasmbgp) or right after the receiver
//! started (BIRD: it connects after its 1 s `connect delay time`), to the moment it
//! holds every route (wasmbgp: `show neighbors --json` `prefixes-received` = N) and,
//! with the exporter, the exporter was handed every route (`show plugins --json`
//! `events-delivered` ≥ N + what it had before). With the exporter also: events
//! dropped, calls, p50/p99 call time, the sum of call times (`show metrics`,
//! `plugin_call_duration_seconds_sum`), route-stats' own `routes_received_total`, and
//! the delivered rate over wall time (from the first poll that saw route events
//! delivered to the first that saw all). Variants are interleaved (none, route-stats,
//! BIRD, none, ...) and medians reported.
//!
//! Loopback only (127.80.0.1, .3, .4, ephemeral ports), a fresh
//! /tmp/wasmbgp-bench-exporter.PID, every wait bounded in time and count, every process
//! started here stopped at the end (also on error; PR_SET_PDEATHSIG if this dies).

#[path = "../harness.rs"]
#[macro_use]
mod harness;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;

/// Other processes using more than this share of one CPU during a run make it "busy".
const BUSY_SHARE: f64 = 0.25;
const PLUGIN: &str = "stats";
const RATE_TARGET: f64 = 2_000_000.0;

const W: Ipv4Addr = Ipv4Addr::new(127, 80, 0, 1);
const ORIG: Ipv4Addr = Ipv4Addr::new(127, 80, 0, 3);
const RX: Ipv4Addr = Ipv4Addr::new(127, 80, 0, 4);

struct Opts {
    routes: u32,
    runs: usize,
    poll: Duration,
    timeout: Duration,
    queue: Option<usize>,
    bird_ref: bool,
    pre: bool,
    /// Run the stuck-exporter variant.
    stuck: bool,
    perf: Option<PathBuf>,
    perf_kind: Kind,
    wasmbgp: PathBuf,
    plugins_dir: PathBuf,
    bird: String,
    keep: bool,
    results: Option<PathBuf>,
}

fn parse_opts() -> Result<Opts> {
    let root = root();
    let mut o = Opts {
        routes: 1_000_000,
        runs: 5,
        poll: Duration::from_millis(10),
        timeout: Duration::from_secs(120),
        queue: None,
        bird_ref: true,
        pre: true,
        stuck: true,
        perf: None,
        perf_kind: Kind::Stats,
        wasmbgp: root.join("target/release/wasmbgp"),
        plugins_dir: root.join("target/plugins"),
        bird: "bird".into(),
        keep: false,
        results: Some(root.join("bench/results-exporter.md")),
    };
    let mut args = cli_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--routes" => o.routes = args.num("--routes")? as u32,
            "--runs" => o.runs = args.num("--runs")? as usize,
            "--poll-ms" => o.poll = Duration::from_millis(args.num("--poll-ms")?),
            "--timeout" => o.timeout = Duration::from_secs(args.num("--timeout")?),
            "--queue" => o.queue = Some(args.num("--queue")? as usize),
            "--no-bird" => o.bird_ref = false,
            "--no-pre" => o.pre = false,
            "--no-stuck" => o.stuck = false,
            "--perf" => o.perf = Some(args.val("--perf")?.into()),
            "--perf-variant" => {
                o.perf_kind = match args.val("--perf-variant")?.as_str() {
                    "none" => Kind::None,
                    "route-stats" => Kind::Stats,
                    "route-stats-pre" => Kind::StatsPre,
                    v => bail!("--perf-variant: none or route-stats, not {v:?}"),
                }
            }
            "--wasmbgp" => o.wasmbgp = args.val("--wasmbgp")?.into(),
            "--plugins-dir" => o.plugins_dir = args.val("--plugins-dir")?.into(),
            "--bird" => o.bird = args.val("--bird")?,
            "--results" => o.results = Some(args.val("--results")?.into()),
            "--no-results" => o.results = None,
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!(
                    "usage: wasmbgp-bench-exporter [--routes N (1000000)] [--runs R (5)] [--poll-ms MS (10)] [--timeout S (120)]\n\
                     \x20   [--queue BATCHES (the daemon's default)] [--no-bird] [--no-pre] [--no-stuck] [--perf REPORT.txt [--perf-variant none|route-stats|route-stats-pre]]\n\
                     \x20   [--wasmbgp PATH] [--plugins-dir DIR] [--bird PATH] [--results FILE | --no-results] [--keep]\n\
                     --perf: one more run (route-stats unless --perf-variant none) under `perf record -g -p PID`\n\
                     \x20   (from idle to all delivered);\n\
                     \x20   `perf report --no-children` is written to REPORT.txt"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.routes == 0 || o.routes > 4_000_000 {
        bail!("--routes must be 1..=4000000");
    }
    if o.runs == 0 || o.runs > 20 {
        bail!("--runs must be 1..=20");
    }
    if o.poll < Duration::from_millis(2) || o.poll > Duration::from_millis(200) {
        bail!("--poll-ms must be 2..=200");
    }
    if o.timeout.is_zero() || o.timeout > Duration::from_secs(3600) {
        bail!("--timeout must be 1..=3600");
    }
    if o.queue.is_some_and(|q| q == 0 || q > 1 << 20) {
        bail!("--queue must be 1..=1048576");
    }
    if !o.wasmbgp.is_file() {
        bail!(
            "{} not found: run `cargo build --release -p wasmbgp` first",
            o.wasmbgp.display()
        );
    }
    let f = o.plugins_dir.join("route-stats.wasm");
    if !f.is_file() {
        bail!(
            "{} not found: run scripts/build-plugins.sh first",
            f.display()
        );
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Configs

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// wasmbgp without exporter.
    None,
    /// wasmbgp with route-stats.
    Stats,
    /// wasmbgp with route-stats given the routes before import policy, which it skips
    /// (it counts `received` only): the cost of delivery without the plugin's own work.
    StatsPre,
    /// wasmbgp with a stuck exporter (fixture-exporter busy most of its deadline in
    /// every call, small queue): how much it slows ingestion.
    Stuck,
    /// A BIRD 2 receiver.
    Bird,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Stats => "route-stats",
            Kind::StatsPre => "route-stats-pre",
            Kind::Stuck => "stuck",
            Kind::Bird => "bird",
        }
    }
}

fn wasmbgp_conf(o: &Opts, d: &Path, port: u16, orig_port: u16, kind: Kind) -> String {
    let mut s = format!(
        "router-id = \"{W}\"\nlocal-as = 65001\nlisten = \"{W}:{port}\"\n[control]\nsocket = \"{}\"\n\
         [[neighbor]]\naddress = \"{ORIG}\"\nport = {orig_port}\npeer-as = 65002\nlocal-address = \"{W}\"\n\
         families = [\"ipv4-unicast\"]\nconnect-retry = \"1s\"\n",
        d.join("wasmbgp.sock").display()
    );
    if matches!(kind, Kind::Stats | Kind::StatsPre) {
        s += &format!(
            "[[plugin]]\nname = \"{PLUGIN}\"\nworld = \"exporter\"\ncomponent = \"{}\"\nreceived-routes = \"{}\"\n",
            o.plugins_dir.join("route-stats.wasm").display(),
            if kind == Kind::Stats {
                "post-policy"
            } else {
                "pre-policy"
            }
        );
        if let Some(q) = o.queue {
            s += &format!("queue = {q}\n");
        }
        s += "[plugin.grants]\ndeadline = \"100ms\"\n";
    }
    if kind == Kind::Stuck {
        let events = d.join("stuck-events.jsonl");
        s += &format!(
            "[[plugin]]\nname = \"{PLUGIN}\"\nworld = \"exporter\"\ncomponent = \"{}\"\n\
             subscribe = [\"sessions\", \"routes-received\"]\nqueue = 4\n\
             [plugin.grants]\ndeadline = \"100ms\"\nappend-files = [\"{e}\"]\n\
             [plugin.settings]\npath = \"{e}\"\nmode = \"sleep\"\nstuck-ms = \"{STUCK_MS}\"\n",
            o.plugins_dir.join("fixture-exporter.wasm").display(),
            e = events.display(),
        );
    }
    s
}

/// How long the stuck exporter sleeps in every call (its deadline is 100 ms).
const STUCK_MS: u64 = 50;

/// The originator: the table in a static protocol, and one passive BGP protocol per
/// receiver (wasmbgp, the BIRD receiver), disabled until a run enables it.
fn originator_conf(statics: &Path, port: u16) -> String {
    let proto = |name: &str, peer: Ipv4Addr, asn: u32| {
        format!(
            "protocol bgp {name} {{ disabled; local {ORIG} port {port} as 65002; neighbor {peer} as {asn}; passive; \
             multihop; hold time 90; error wait time 1, 2; ipv4 {{ import none; export all; }}; }}\n"
        )
    };
    format!(
        "router id {ORIG};\nprotocol device {{}}\nprotocol static orig {{ ipv4;\ninclude \"{}\";\n}}\n{}{}",
        statics.display(),
        proto("feed_w", W, 65001),
        proto("feed_rx", RX, 65003),
    )
}

fn bird_rx_conf(orig_port: u16) -> String {
    format!(
        "router id {RX};\nprotocol device {{}}\n\
         protocol bgp from_orig {{ local {RX} as 65003; neighbor {ORIG} port {orig_port} as 65002; multihop; \
         connect delay time 1; connect retry time 1; debug {{ states }}; ipv4 {{ import all; export none; }}; }}\n"
    )
}

// ---------------------------------------------------------------------------------------
// Measurements

#[derive(Clone, Default, Debug)]
struct ExpStats {
    delivered: u64,
    dropped: u64,
    calls: u64,
    p50_us: u64,
    p99_us: u64,
    restarts: u64,
    state: String,
}

#[derive(Clone, Default, Debug)]
struct Run {
    /// Receiver CPU from idle (before the routes) to holding all (and, with the
    /// exporter, all delivered).
    cpu: f64,
    est_to_all: f64,
    est_to_done: f64,
    hwm: u64,
    exp: Option<ExpStats>,
    /// Events dropped during the run, and before it (at startup, before the first
    /// instance ran: covered by its snapshot).
    dropped: u64,
    dropped_before: u64,
    /// Route events delivered during the run (events-delivered minus before).
    route_events: u64,
    calls: u64,
    /// Sum of the call times during the run (s).
    call_sum: f64,
    /// Delivered route events over wall time, first → last seen (events/s), and that span.
    rate_wall: f64,
    span: f64,
    /// route-stats' routes_received_total for the neighbor.
    stats_received: Option<u64>,
    polls: u64,
    poll_cpu_us: f64,
    warnings: usize,
    others: f64,
    busy: bool,
}

struct Others {
    t0: Instant,
    busy0: f64,
    me0: f64,
    pids: Vec<(u32, f64)>,
}

impl Others {
    fn start(pids: &[u32]) -> Others {
        Others {
            t0: Instant::now(),
            busy0: machine_busy(),
            me0: cpu_seconds(std::process::id()).unwrap_or(0.0),
            pids: pids
                .iter()
                .map(|&p| (p, cpu_seconds(p).unwrap_or(0.0)))
                .collect(),
        }
    }

    /// Share of one CPU that processes other than ours used since `start`, given the
    /// receiver's CPU in the window.
    fn share(&self, receiver: f64) -> f64 {
        let busy = machine_busy() - self.busy0;
        let me = cpu_seconds(std::process::id()).unwrap_or(0.0) - self.me0;
        let ours: f64 = self
            .pids
            .iter()
            .map(|(p, c0)| cpu_seconds(*p).unwrap_or(*c0) - c0)
            .sum();
        ((busy - me - ours - receiver) / self.t0.elapsed().as_secs_f64()).max(0.0)
    }
}

fn exp_stats(ctl: &mut Ctl) -> Result<Option<ExpStats>> {
    let v = ctl.json("show plugins --json")?;
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["plugins"].as_array().cloned())
        .unwrap_or_default();
    let Some(p) = list.iter().find(|p| p["name"] == PLUGIN) else {
        return Ok(None);
    };
    let u = |k: &str| p[k].as_u64().unwrap_or(0);
    Ok(Some(ExpStats {
        delivered: u("events-delivered"),
        dropped: u("events-dropped"),
        calls: u("calls"),
        p50_us: u("p50-us"),
        p99_us: u("p99-us"),
        restarts: u("restarts"),
        state: p["state"].as_str().unwrap_or("?").to_string(),
    }))
}

fn prefixes_received(ctl: &mut Ctl) -> Result<u64> {
    let v = ctl.json("show neighbors --json")?;
    v.as_array()
        .and_then(|l| l.first())
        .and_then(|n| n["prefixes-received"].as_u64())
        .ok_or(format!(
            "no prefixes-received in `show neighbors --json`: {v}"
        ))
}

/// A sample's value in a Prometheus exposition: the first line of metric `name` (with
/// or without the `wasmbgp_` prefix) whose labels contain every one of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let n = l.split(['{', ' ']).next().unwrap_or("");
            (n == name || n.strip_prefix("wasmbgp_") == Some(name))
                && labels.iter().all(|x| l.contains(x))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|x| x.parse().ok())
}

fn call_seconds_sum(ctl: &mut Ctl) -> Result<f64> {
    let m = ctl.cmd("show metrics")?;
    Ok(metric(
        &m,
        "plugin_call_duration_seconds_sum",
        &[&format!("plugin=\"{PLUGIN}\"")],
    )
    .unwrap_or(f64::NAN))
}

/// Starts `perf record -g -p PID` (stopped with SIGINT by [`perf_stop`]).
fn perf_start(pid: u32, out: &Path) -> Result<Proc> {
    let p = Proc::spawn(
        "perf record",
        Command::new("perf")
            .args(["record", "-g", "-o"])
            .arg(out)
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(out.with_extension("stderr")).map_err(|e| e.to_string())?,
            ),
    )?;
    // perf needs a moment to attach to every thread.
    std::thread::sleep(Duration::from_millis(500));
    Ok(p)
}

fn perf_stop(mut p: Proc, data: &Path, report: &Path) -> Result<()> {
    unsafe {
        libc::kill(p.pid() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = p.child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    p.stop();
    let out = Command::new("perf")
        .args([
            "report",
            "--no-children",
            "--stdio",
            "--percent-limit",
            "0.5",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("perf report: {e}"))?;
    std::fs::write(report, &out.stdout).map_err(|e| format!("{}: {e}", report.display()))?;
    // The flat profile too (self time by symbol), easier to read than the call graphs.
    let flat = Command::new("perf")
        .args([
            "report",
            "--no-children",
            "--stdio",
            "-g",
            "none",
            "--percent-limit",
            "0.3",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("perf report: {e}"))?;
    std::fs::write(report.with_extension("flat.txt"), &flat.stdout)
        .map_err(|e| format!("{}: {e}", report.display()))?;
    Ok(())
}

/// One wasmbgp run (with the exporter or not).
#[allow(clippy::too_many_arguments)]
fn wasmbgp_run(
    o: &Opts,
    dir: &Path,
    kind: Kind,
    idx: usize,
    orig: &mut Bird,
    orig_port: u16,
    cache: &Path,
    perf: Option<&Path>,
) -> Result<Run> {
    let n = o.routes as u64;
    let d = dir.join(format!("{}-{idx}", kind.key()));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let conf = d.join("wasmbgp.toml");
    std::fs::write(&conf, wasmbgp_conf(o, &d, free_port(W)?, orig_port, kind))
        .map_err(|e| e.to_string())?;
    let mut w = JsonDaemon::start(&o.wasmbgp, &conf, cache, &d.join("wasmbgp.log"))?;
    let pid = w.proc.pid();
    let mut ctl = Ctl::connect(&d.join("wasmbgp.sock"), Duration::from_secs(30), o.timeout)?;
    let exporter = kind != Kind::None;
    if exporter {
        // The first instance's (empty) snapshot: the plugin is loaded and instantiated.
        w.wait_log("exporter snapshot delivered", Duration::from_secs(60))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let base = exp_stats(&mut ctl)?.unwrap_or_default();
    let sum0 = if exporter {
        call_seconds_sum(&mut ctl)?
    } else {
        0.0
    };
    let perf_proc = match perf {
        Some(p) => Some(perf_start(pid, p)?),
        None => None,
    };
    let busy0 = rustc_running() > 0;
    let others = Others::start(&[orig.proc.pid()]);
    let cpu0 = cpu_seconds(pid)?;
    orig.ctl.cmd("enable feed_w")?;
    let res = (|| -> Result<Run> {
        let (est, _) = w.wait_log("session established", Duration::from_secs(30))?;
        let deadline = Instant::now() + o.timeout;
        let max_polls = o.timeout.as_millis() as u64 / o.poll.as_millis().max(1) as u64 + 10;
        let (mut t_all, mut t_done) = (None, None);
        let mut series: Vec<(f64, u64)> = Vec::new();
        let mut polls = 0;
        let mut last = (0, 0);
        while t_done.is_none() {
            polls += 1;
            if polls > max_polls || Instant::now() > deadline {
                bail!(
                    "{}: {} of {n} routes received, {} events delivered after {:?}",
                    kind.key(),
                    last.0,
                    last.1,
                    o.timeout
                );
            }
            // Wakes the originator (BIRD 2.0 otherwise leaves the last UPDATE of a feed
            // to its next main-loop wake-up, up to 3 s later).
            orig.ctl.cmd("show protocols feed_w")?;
            let got = prefixes_received(&mut ctl)?;
            let e = exp_stats(&mut ctl)?;
            let t = now();
            let delivered = e.as_ref().map_or(0, |e| e.delivered - base.delivered);
            last = (got, delivered);
            if e.is_some() {
                series.push((t, delivered));
            }
            if got >= n && t_all.is_none() {
                t_all = Some(t);
            }
            if got >= n && (e.is_none() || delivered >= n || kind == Kind::Stuck) {
                t_done = Some(t);
                break;
            }
            if let Some(e) = w.proc.exited() {
                bail!("{e}");
            }
            std::thread::sleep(o.poll);
        }
        let cpu = cpu_seconds(pid)? - cpu0;
        let others = others.share(cpu);
        let mut r = Run {
            cpu,
            others,
            est_to_all: t_all.unwrap_or(f64::NAN) - est,
            est_to_done: t_done.unwrap_or(f64::NAN) - est,
            hwm: vm_status(pid, "VmHWM:")?,
            polls,
            busy: busy0,
            ..Default::default()
        };
        if exporter {
            // Let the exporter finish what follows the routes (End-of-RIB), then read.
            std::thread::sleep(Duration::from_millis(100));
            let e = exp_stats(&mut ctl)?.ok_or("route-stats vanished from `show plugins`")?;
            r.route_events = e.delivered - base.delivered;
            r.dropped_before = base.dropped;
            r.dropped = e.dropped - base.dropped;
            r.calls = e.calls - base.calls;
            r.call_sum = call_seconds_sum(&mut ctl)? - sum0;
            let m = ctl.cmd("show metrics")?;
            r.stats_received = metric(
                &m,
                "plugin_routes_received_total",
                &[
                    &format!("plugin=\"{PLUGIN}\""),
                    &format!("neighbor=\"{ORIG}\""),
                ],
            )
            .map(|x| x as u64);
            // Wall-time rate: from the first poll that saw route events delivered to the
            // first that saw (nearly) all of them.
            let first = series.iter().find(|(_, d)| *d > 0);
            let full = series.iter().find(|(_, d)| *d >= n);
            if let (Some(&(t1, d1)), Some(&(t2, d2))) = (first, full)
                && t2 > t1
            {
                r.span = t2 - t1;
                r.rate_wall = (d2 - d1) as f64 / (t2 - t1);
            } else {
                r.rate_wall = f64::NAN;
                r.span = f64::NAN;
            }
            r.exp = Some(e);
        }
        Ok(r)
    })();
    let _ = orig.ctl.cmd("disable feed_w");
    let mut r = res?;
    if let Some(p) = perf_proc {
        perf_stop(
            p,
            perf.expect("perf path"),
            &perf.expect("perf path").with_extension("txt"),
        )?;
    }
    // What one poll costs the daemon: 200 more, back to back, now that it is idle.
    let before = cpu_seconds(pid)?;
    for _ in 0..200 {
        prefixes_received(&mut ctl)?;
        exp_stats(&mut ctl)?;
    }
    r.poll_cpu_us = (cpu_seconds(pid)? - before) * 1e6 / 200.0;
    r.warnings = w.warnings();
    r.busy = r.busy || rustc_running() > 0 || r.others > BUSY_SHARE;
    w.proc.stop();
    Ok(r)
}

/// One run of the BIRD receiver.
fn bird_run(o: &Opts, dir: &Path, idx: usize, orig: &mut Bird, orig_port: u16) -> Result<Run> {
    let n = o.routes as u64;
    let d = dir.join(format!("bird-{idx}"));
    orig.ctl.cmd("enable feed_rx")?;
    let res = (|| -> Result<Run> {
        let mut rx = Bird::start(&o.bird, &d, "bird receiver", &bird_rx_conf(orig_port))?;
        let pid = rx.proc.pid();
        let busy0 = rustc_running() > 0;
        let others = Others::start(&[orig.proc.pid()]);
        // It connects after `connect delay time` (1 s): idle until then.
        let cpu0 = cpu_seconds(pid)?;
        let deadline = Instant::now() + o.timeout;
        let max_polls = o.timeout.as_millis() as u64 / o.poll.as_millis().max(1) as u64 + 10;
        let mut polls = 0;
        let t_all = loop {
            polls += 1;
            if polls > max_polls || Instant::now() > deadline {
                bail!("BIRD receiver: not all {n} routes after {:?}", o.timeout);
            }
            orig.ctl.cmd("show protocols feed_rx")?;
            if rx.ctl.imported("from_orig")? >= n {
                break now();
            }
            if let Some(e) = rx.proc.exited() {
                bail!("{e}");
            }
            std::thread::sleep(o.poll);
        };
        let cpu = cpu_seconds(pid)? - cpu0;
        let others = others.share(cpu);
        let up = bird_log_time(&d.join("bird.log"), "from_orig: State changed to up");
        let before = cpu_seconds(pid)?;
        for _ in 0..200 {
            rx.ctl.imported("from_orig")?;
        }
        let poll_cpu_us = (cpu_seconds(pid)? - before) * 1e6 / 200.0;
        let r = Run {
            cpu,
            others,
            est_to_all: up.map_or(f64::NAN, |u| t_all - u),
            est_to_done: up.map_or(f64::NAN, |u| t_all - u),
            hwm: vm_status(pid, "VmHWM:")?,
            polls,
            poll_cpu_us,
            busy: busy0 || rustc_running() > 0 || others > BUSY_SHARE,
            ..Default::default()
        };
        rx.proc.stop();
        Ok(r)
    })();
    let _ = orig.ctl.cmd("disable feed_rx");
    res
}

// ---------------------------------------------------------------------------------------
// Report

fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(&runs.iter().map(f).collect::<Vec<_>>())
}

/// "median (min–max)".
fn spread(runs: &[Run], f: impl Fn(&Run) -> f64, fmt: impl Fn(f64) -> String) -> String {
    let v: Vec<f64> = runs.iter().map(f).collect();
    format!(
        "{} ({}–{})",
        fmt(median(&v)),
        fmt(pct(&v, 0.0)),
        fmt(pct(&v, 1.0))
    )
}

fn header(o: &Opts, busy: bool, others_max: f64) -> String {
    let (rev, dirty) = tree_state(sh);
    let when = sh(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let built = sh(Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
        .arg(&o.wasmbgp));
    let bird = sh(Command::new(&o.bird).arg("--version"));
    let cpu = cpu_model();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "wasmbgp exporter benchmark — {} IPv4 /24 routes ({}/24 … {}/24) received from a BIRD 2 originator; \
         wasmbgp binary built {built} (HEAD {rev}{}), {bird}, {cpus} CPUs ({cpu}), {when}; load average at the end: {}; \
         other processes during the runs (rustc, cargo, or > {:.0} % of a CPU): {}\n\n",
        o.routes,
        table_prefix(0),
        table_prefix(o.routes - 1),
        if dirty {
            ", host/ with uncommitted changes"
        } else {
            ""
        },
        load_average(),
        BUSY_SHARE * 100.0,
        if busy {
            format!(
                "**yes (timings not trustworthy; others used up to {:.0} % of a CPU in a run)**",
                others_max * 100.0
            )
        } else {
            format!(
                "none (others used at most {:.0} % of a CPU in any run)",
                others_max * 100.0
            )
        }
    )
}

fn report(o: &Opts, res: &[(Kind, Vec<Run>)]) -> String {
    let n = o.routes as f64;
    let all: Vec<&Run> = res.iter().flat_map(|(_, r)| r).collect();
    let busy = all.iter().any(|r| r.busy);
    let others_max = all.iter().map(|r| r.others).fold(0.0, f64::max);
    let mut s = header(o, busy, others_max);
    let get = |k: Kind| res.iter().find(|(x, _)| *x == k).map(|(_, r)| r.as_slice());
    let ns = |x: f64| format!("{:.0} ns", x);
    let secs = |x: f64| format!("{x:.3} s");
    let bird_cpu = get(Kind::Bird).map(|r| med(r, |r| r.cpu));
    let none_cpu = get(Kind::None).map(|r| med(r, |r| r.cpu));

    s += "### (a) CPU per received route\n\n\
          | receiver | runs | CPU, idle → holds all (and exporter handed all), median (min–max) | CPU per route | Δ per route vs no exporter | vs BIRD receiver | Established → holds all | Established → exporter handed all | peak RSS |\n\
          |---|---|---|---|---|---|---|---|---|\n";
    for (k, runs) in res {
        if runs.is_empty() {
            continue;
        }
        let label = match k {
            Kind::None => "wasmbgp, no exporter".to_string(),
            Kind::Stats => format!(
                "wasmbgp + route-stats (Rust exporter; every kind, routes after import policy; queue {})",
                o.queue.map_or("default (256 batches)".into(), |q| q.to_string())
            ),
            Kind::StatsPre => "wasmbgp + route-stats given the routes before import policy (`received-routes = \"pre-policy\"`), which it skips: delivery without the plugin's own work".to_string(),
            Kind::Stuck => format!("wasmbgp + a stuck exporter (fixture-exporter sleeping {STUCK_MS} ms in every call, queue 4: it drops most events)"),
            Kind::Bird => "BIRD 2 receiver (`import all`), reference".to_string(),
        };
        let cpu = med(runs, |r| r.cpu);
        let delta = match (k, none_cpu) {
            (Kind::Stats | Kind::StatsPre, Some(b)) => format!("**{}**", ns((cpu - b) * 1e9 / n)),
            _ => "—".into(),
        };
        let vs_bird = match (k, bird_cpu) {
            (Kind::None | Kind::Stats | Kind::StatsPre, Some(b)) if b > 0.0 => format!(
                "{:.2}× ({})",
                cpu / b,
                if cpu <= b {
                    "**≤ BIRD: yes**"
                } else {
                    "**≤ BIRD: no**"
                }
            ),
            _ => "—".into(),
        };
        s += &format!(
            "| {label} | {} | {} | **{}** | {delta} | {vs_bird} | {} | {} | {} |\n",
            runs.len(),
            spread(runs, |r| r.cpu, secs),
            ns(cpu * 1e9 / n),
            spread(runs, |r| r.est_to_all, secs),
            if matches!(k, Kind::Stats | Kind::StatsPre) {
                spread(runs, |r| r.est_to_done, secs)
            } else {
                "—".into()
            },
            mib(med(runs, |r| r.hwm as f64) as u64),
        );
    }
    if let (Some(stuck), Some(none)) = (get(Kind::Stuck), get(Kind::None))
        && !stuck.is_empty()
        && !none.is_empty()
    {
        let (t_stuck, t_none) = (med(stuck, |r| r.est_to_all), med(none, |r| r.est_to_all));
        let slower = (t_stuck / t_none - 1.0) * 100.0;
        s += &format!(
            "\nA stuck exporter slows ingestion (Established → wasmbgp holds every route, medians) \
             from {t_none:.3} s to {t_stuck:.3} s: **{slower:+.1} %** (target ≤ +10 %: **{}**); \
             it dropped {} events per run (median), reported to it as `lagged`.\n",
            if slower <= 10.0 { "yes" } else { "no" },
            med(stuck, |r| r.dropped as f64) as u64,
        );
    }

    for (kind, runs) in res
        .iter()
        .filter(|(k, r)| matches!(k, Kind::Stats | Kind::StatsPre) && !r.is_empty())
    {
        let e = |f: fn(&ExpStats) -> u64| {
            move |r: &Run| r.exp.as_ref().map_or(f64::NAN, |e| f(e) as f64)
        };
        let dropped_max = runs.iter().map(|r| r.dropped).max().unwrap_or(0);
        let dropped_startup = runs.iter().map(|r| r.dropped_before).max().unwrap_or(0);
        let restarts_max = runs
            .iter()
            .filter_map(|r| r.exp.as_ref())
            .map(|e| e.restarts)
            .max()
            .unwrap_or(0);
        // route-stats counts routes of direction `received` only.
        let expect = if *kind == Kind::Stats {
            o.routes as u64
        } else {
            0
        };
        let counted_ok = runs.iter().all(|r| r.stats_received.unwrap_or(0) == expect);
        let busy_rate = med(runs, |r| r.route_events as f64 / r.call_sum);
        let wall_rate = med(runs, |r| r.rate_wall);
        let per_call = med(runs, |r| r.route_events as f64 / r.calls.max(1) as f64);
        s += &format!(
            "\n### (b) Events delivered to {}\n\n\
             | | median (min–max) | target |\n|---|---|---|\n\
             | route events delivered per run (`events-delivered`, minus before) | {} | {} |\n\
             | events dropped during the ingestion (`events-dropped`, minus before), worst run | **{dropped_max}** | 0 |\n\
             | events dropped at startup, before the first instance ran (covered by its snapshot), worst run | {dropped_startup} | |\n\
             | route-stats' own `routes_received_total` = {expect} in every run | {} | |\n\
             | restarts, worst run | {restarts_max} | 0 |\n\
             | delivered rate over wall time, first → last poll seeing route events delivered | {} | ≥ {:.0} events/s: **{}** |\n\
             | … over a span of | {} | |\n\
             | delivered rate while the exporter is called (route events / sum of `on-events` call times) | {} | ≥ {:.0} events/s: **{}** |\n\
             | `on-events` calls per run | {} | |\n\
             | route events per call | {per_call:.0} | |\n\
             | call time p50 / p99 (`show plugins --json`, last 1024 calls) | {} / {} µs | |\n\
             | call time per route event (sum of call times / route events) | {} | |\n",
            if *kind == Kind::Stats {
                "route-stats (routes after import policy: counted)"
            } else {
                "route-stats given the routes before import policy (skipped by the plugin)"
            },
            spread(runs, |r| r.route_events as f64, |x| format!("{x:.0}")),
            o.routes,
            if counted_ok { "yes" } else { "**no**" },
            spread(runs, |r| r.rate_wall, |x| format!("{:.2} M/s", x / 1e6)),
            RATE_TARGET,
            if wall_rate >= RATE_TARGET {
                "yes"
            } else {
                "no"
            },
            spread(runs, |r| r.span, secs),
            spread(
                runs,
                |r| r.route_events as f64 / r.call_sum,
                |x| format!("{:.2} M/s", x / 1e6)
            ),
            RATE_TARGET,
            if busy_rate >= RATE_TARGET {
                "yes"
            } else {
                "no"
            },
            spread(runs, |r| r.calls as f64, |x| format!("{x:.0}")),
            spread(runs, e(|e| e.p50_us), |x| format!("{x:.0}")),
            spread(runs, e(|e| e.p99_us), |x| format!("{x:.0}")),
            spread(
                runs,
                |r| r.call_sum * 1e9 / r.route_events.max(1) as f64,
                ns
            ),
        );
    }

    let wpolls: Vec<&Run> = res
        .iter()
        .filter(|(k, _)| *k != Kind::Bird)
        .flat_map(|(_, r)| r)
        .collect();
    let poll_cost = median(&wpolls.iter().map(|r| r.poll_cpu_us).collect::<Vec<_>>());
    let polls_max = wpolls.iter().map(|r| r.polls).max().unwrap_or(0);
    s += &format!(
        "\nMedians over the runs (min–max in parentheses); the variants' runs interleaved (no exporter, route-stats, BIRD, …, \
         repeated), each with a fresh receiver; one BIRD originator serves every run (`protocol static` with the table, one \
         passive BGP protocol per receiver, enabled for a run and disabled after it). CPU = utime + stime of the receiving \
         process (all its threads; 10 ms ticks, i.e. ±{:.0} ns per route per reading) from /proc/PID/stat: for wasmbgp from \
         idle (started, its exporter instantiated and given its first, empty snapshot, then 300 ms) just before the \
         originator's protocol is enabled (wasmbgp connects within its 1 s `connect-retry`), for BIRD from right after \
         it started (it connects after its 1 s `connect delay time`), to the first poll that sees it holding all {} routes \
         (wasmbgp: `show neighbors --json` `prefixes-received`; BIRD: `show protocols all` `Routes: N imported`) and, with \
         the exporter, `events-delivered` grown by ≥ {} (a route counts one event). Polls every {} ms; each also sends the \
         originator a `show protocols` command (BIRD 2.0.12 otherwise holds the last UPDATE of a feed up to 3 s). One \
         wasmbgp poll (`show neighbors --json` + `show plugins --json`) costs it ≈ {:.0} µs of CPU (median, 200 timed after \
         each run) and a run made at most {polls_max} polls: ≤ {:.0} ns per route of the figures above, in both wasmbgp \
         variants. The originator's CPU is not counted. route-stats: `deadline = \"100ms\"`, memory cap default (64 MiB), \
         component loaded from the `.cwasm` disk cache (filled by `wasmbgp check` beforehand). Call times are wall times \
         of `on-events` measured by the host around the call (lowering the events into the guest included).\n",
        1e7 / n,
        o.routes,
        o.routes,
        o.poll.as_millis(),
        poll_cost,
        poll_cost * 1e3 * polls_max as f64 / n,
    );

    s += "\n<details><summary>Per run</summary>\n\n\
          | receiver | run | CPU | Established → all | → exporter handed all | route events | dropped | calls | p50 / p99 µs | sum of call times | wall rate | route-stats routes_received_total | restarts / state | peak RSS | polls (CPU each) | WARN/ERROR log lines | others' CPU | busy |\n\
          |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (k, runs) in res {
        for (i, r) in runs.iter().enumerate() {
            let e = r.exp.clone();
            s += &format!(
                "| {} | {} | {:.2} s | {:.3} s | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({:.0} µs) | {} | {:.0} % | {} |\n",
                k.key(),
                i + 1,
                r.cpu,
                r.est_to_all,
                if r.exp.is_some() {
                    format!("{:.3} s", r.est_to_done)
                } else {
                    "—".into()
                },
                if e.is_some() {
                    r.route_events.to_string()
                } else {
                    "—".into()
                },
                if e.is_some() {
                    format!("{} (+{} at startup)", r.dropped, r.dropped_before)
                } else {
                    "—".into()
                },
                if e.is_some() {
                    r.calls.to_string()
                } else {
                    "—".into()
                },
                e.as_ref()
                    .map_or("—".into(), |e| format!("{} / {}", e.p50_us, e.p99_us)),
                if e.is_some() {
                    format!("{:.3} s", r.call_sum)
                } else {
                    "—".into()
                },
                if e.is_some() {
                    format!("{:.2} M/s", r.rate_wall / 1e6)
                } else {
                    "—".into()
                },
                r.stats_received.map_or("—".into(), |x| x.to_string()),
                e.as_ref()
                    .map_or("—".into(), |e| format!("{} / {}", e.restarts, e.state)),
                mib(r.hwm),
                r.polls,
                r.poll_cpu_us,
                r.warnings,
                r.others * 100.0,
                if r.busy { "yes" } else { "no" },
            );
        }
    }
    s += "\n</details>\n";
    s
}

// ---------------------------------------------------------------------------------------

fn run(o: &Opts, dir: &Path) -> Result<String> {
    let n = o.routes as u64;
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    // Compile route-stats into the cache first (as an operator's `check` would).
    let cd = dir.join("check");
    std::fs::create_dir_all(&cd).map_err(|e| e.to_string())?;
    let conf = cd.join("wasmbgp.toml");
    std::fs::write(&conf, wasmbgp_conf(o, &cd, 179, 179, Kind::Stats))
        .map_err(|e| e.to_string())?;
    eprintln!("bench: compiling route-stats into the cache");
    wasmbgp_check(&o.wasmbgp, &conf, &cache)?;

    eprintln!("bench: BIRD originator (static, {} routes)", o.routes);
    let od = dir.join("orig");
    std::fs::create_dir_all(&od).map_err(|e| e.to_string())?;
    let statics = od.join("static.conf");
    write_lines(&statics, o.routes, |i| {
        format!("route {}/24 unreachable;\n", table_prefix(i))
    })?;
    let op = free_port(ORIG)?;
    let mut orig = Bird::start_within(
        &o.bird,
        &od,
        "bird originator",
        &originator_conf(&statics, op),
        Duration::from_secs(180),
    )?;
    orig.wait_imported(
        "orig",
        n,
        Duration::from_millis(50),
        Duration::from_secs(180),
    )?;

    let mut kinds = vec![Kind::None, Kind::Stats];
    if o.pre {
        kinds.push(Kind::StatsPre);
    }
    if o.stuck {
        kinds.push(Kind::Stuck);
    }
    if o.bird_ref {
        kinds.push(Kind::Bird);
    }
    let mut res: Vec<(Kind, Vec<Run>)> = kinds.iter().map(|k| (*k, Vec::new())).collect();
    for i in 0..o.runs {
        for (k, runs) in res.iter_mut() {
            eprintln!("bench: {} run {}/{}", k.key(), i + 1, o.runs);
            let r = match k {
                Kind::Bird => bird_run(o, dir, i, &mut orig, op)?,
                _ => wasmbgp_run(o, dir, *k, i, &mut orig, op, &cache, None)?,
            };
            eprintln!(
                "bench:   CPU {:.2} s, Established → all {:.3} s{}",
                r.cpu,
                r.est_to_all,
                r.exp
                    .as_ref()
                    .map(|e| format!(
                        ", → handed all {:.3} s, delivered {} dropped {} calls {} p50/p99 {}/{} µs, wall rate {:.2} M/s",
                        r.est_to_done, r.route_events, r.dropped, r.calls, e.p50_us, e.p99_us, r.rate_wall / 1e6
                    ))
                    .unwrap_or_default()
            );
            runs.push(r);
        }
    }
    if let Some(report_path) = &o.perf {
        let data = dir.join("perf.data");
        eprintln!("bench: {} run under perf record", o.perf_kind.key());
        let r = wasmbgp_run(
            o,
            dir,
            o.perf_kind,
            o.runs,
            &mut orig,
            op,
            &cache,
            Some(&data),
        )?;
        let txt = data.with_extension("txt");
        std::fs::copy(&txt, report_path).map_err(|e| format!("{}: {e}", report_path.display()))?;
        let flat = report_path.with_extension("flat.txt");
        std::fs::copy(data.with_extension("flat.txt"), &flat)
            .map_err(|e| format!("{}: {e}", flat.display()))?;
        eprintln!(
            "bench: perf run: CPU {:.2} s (perf's own overhead included); report in {} and {}",
            r.cpu,
            report_path.display(),
            flat.display()
        );
    }
    orig.proc.stop();
    Ok(report(o, &res))
}

fn main() {
    let o = opts_or_exit("wasmbgp-bench-exporter", parse_opts());
    if rustc_running() > 0 {
        eprintln!(
            "wasmbgp-bench-exporter: warning: rustc is running on this machine; timings will be disturbed"
        );
    }
    bench_main(
        "wasmbgp-bench-exporter",
        "wasmbgp exporter benchmark results",
        "bench/run-exporter.sh",
        o.keep,
        o.results.as_deref(),
        |dir| run(&o, dir),
    );
}
