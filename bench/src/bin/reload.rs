//! wasmbgp reload benchmark (issue 10, "Must show" 5; not a test): prints a results table.
//!
//! 1. **Plugin swap, in process** (`wasmbgp_runtime` public API, a 2-worker tokio runtime):
//!    one health check (tcp-check, Rust; tcp-check-py, Python) swapped back and forth
//!    between two components, `A` and `B`: copies of the built component, each with a
//!    custom section of its own appended (same code, different bytes: two distinct
//!    compiled components, as for a new version). The memory cache is warmed with one
//!    reload of each; then `--swaps` (100) reloads, each timed from calling
//!    `PluginHandle::reload(spec)` to `Reload::outcome()` returning `Ok` (the new
//!    instance passed `init`; the driver's next call goes to it). `reload()` alone (the
//!    synchronous part: spec validation, stat, memory-cache hit, `instantiate_pre`) is
//!    reported beside.
//! 2. **Plugin swap through the daemon**: `wasmbgp run` with that one health check
//!    (no peer: one passive neighbor that never connects); `plugin reload NAME PATH`
//!    alternating A and B, timed from writing the command on the control socket to its
//!    answer (`--swaps`), and the same through a `wasmbgp ctl` process (spawn → exit).
//!    Both components are in the disk cache beforehand (`wasmbgp check`), and one warm-up
//!    swap of each goes first. If the daemon refuses the PATH form, the config's
//!    `component` is rewritten before each `plugin reload NAME` instead (not timed), and
//!    the results say so.
//! 3. **Config reload, 1 % of 1M routes**: wasmbgp with a `[[route-file]]` of `--routes`
//!    (1,000,000) IPv4 /24s (the main benchmark's table) toward a BIRD 2 receiver; once
//!    BIRD holds all, `ctl reload --json` with the file unchanged (a baseline: nothing
//!    may be sent), then with every 100th line (`--changed`, 10,000) given `med 50`
//!    (file replaced by rename), then the file restored and SIGHUP. Per reload: command
//!    → reply (apply time), the daemon's own figures from the reply, reply → BIRD's
//!    `Import updates: received` grown by the number of changed routes (polled every
//!    2 ms), the deltas of wasmbgp's UPDATE messages and prefixes announced/withdrawn
//!    (`show neighbors --json`, `show metrics`) and of BIRD's import counters, which
//!    must be exactly the changed routes and no withdrawal. SIGHUP: signal → the
//!    daemon's `config reloaded` log line.
//!
//! Loopback only (127.81.0.1, .2, .10, ephemeral ports), a fresh
//! /tmp/wasmbgp-bench-reload.PID, every wait bounded in time and count, every process
//! started here stopped at the end (also on error; PR_SET_PDEATHSIG if this dies).

#[path = "../harness.rs"]
#[macro_use]
mod harness;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use harness::*;
use wasmbgp_runtime::{Health, PluginEvent, PluginSpec, Runtime, RuntimeOptions, World};

const W: Ipv4Addr = Ipv4Addr::new(127, 81, 0, 1);
const RX: Ipv4Addr = Ipv4Addr::new(127, 81, 0, 2);
const T: Ipv4Addr = Ipv4Addr::new(127, 81, 0, 10);
/// Other processes using more than this share of one CPU during a phase make it "busy".
const BUSY_SHARE: f64 = 0.25;
const PLUGIN: &str = "swap";
/// The MED given to the changed routes.
const NEW_MED: u32 = 50;

struct Opts {
    wasmbgp: PathBuf,
    plugins_dir: PathBuf,
    bird: String,
    runs: usize,
    swaps: usize,
    gap: Duration,
    routes: u32,
    every: u32,
    /// Passive neighbors that never connect, each with its own Adj-RIB-Out of the table.
    extra_neighbors: u32,
    python: bool,
    runtime: bool,
    daemon: bool,
    config: bool,
    sighup: bool,
    keep: bool,
    results: Option<PathBuf>,
    /// Profile one extra run of each phase (not reported) with `perf record`, into here.
    perf: Option<PathBuf>,
    /// Every timed sample as CSV (phase,plugin,run,swap,ms).
    samples: Option<PathBuf>,
    /// HEAD and whether host/ or Cargo.lock had uncommitted changes, at the start.
    tree_at_start: (String, bool),
}

fn parse_opts() -> Result<Opts> {
    let root = root();
    let mut o = Opts {
        wasmbgp: root.join("target/release/wasmbgp"),
        plugins_dir: root.join("target/plugins"),
        bird: "bird".into(),
        runs: 3,
        swaps: 100,
        gap: Duration::from_millis(20),
        routes: 1_000_000,
        every: 100,
        extra_neighbors: 0,
        python: true,
        runtime: true,
        daemon: true,
        config: true,
        sighup: true,
        keep: false,
        results: Some(root.join("bench/results-reload.md")),
        perf: None,
        samples: None,
        tree_at_start: tree_state(sh),
    };
    let mut args = cli_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--wasmbgp" => o.wasmbgp = args.val("--wasmbgp")?.into(),
            "--plugins-dir" => o.plugins_dir = args.val("--plugins-dir")?.into(),
            "--bird" => o.bird = args.val("--bird")?,
            "--runs" => o.runs = args.num("--runs")? as usize,
            "--swaps" => o.swaps = args.num("--swaps")? as usize,
            "--gap-ms" => o.gap = Duration::from_millis(args.num("--gap-ms")?),
            "--routes" => o.routes = args.num("--routes")? as u32,
            "--every" => o.every = args.num("--every")? as u32,
            "--extra-neighbors" => o.extra_neighbors = args.num("--extra-neighbors")? as u32,
            "--no-python" => o.python = false,
            "--no-runtime" => o.runtime = false,
            "--no-daemon" => o.daemon = false,
            "--no-config" => o.config = false,
            "--only-config" => (o.runtime, o.daemon) = (false, false),
            "--no-sighup" => o.sighup = false,
            "--results" => o.results = Some(args.val("--results")?.into()),
            "--no-results" => o.results = None,
            "--perf" => o.perf = Some(args.val("--perf")?.into()),
            "--samples" => o.samples = Some(args.val("--samples")?.into()),
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!(
                    "usage: wasmbgp-bench-reload [--runs N (3)] [--swaps N (100)] [--gap-ms MS (20)]\n\
                     \x20   [--routes N (1000000)] [--every K (100: every K-th route changes, 1 %)]\n\
                     \x20   [--extra-neighbors N (0): passive neighbors that never connect, each an Adj-RIB-Out more]\n\
                     \x20   [--no-python] [--no-runtime] [--no-daemon] [--no-config | --only-config] [--no-sighup]\n\
                     \x20   [--wasmbgp PATH] [--plugins-dir DIR] [--bird PATH] [--results FILE | --no-results] [--keep]\n\
                     \x20   [--samples FILE: every timed swap as CSV phase,plugin,run,swap,ms]\n\
                     \x20   [--perf DIR: one more run of each phase under `perf record` (not in the results);\n\
                     \x20    DIR/NAME.perf.data and flat / inclusive reports DIR/NAME.{{flat,children}}.txt]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.runs == 0
        || o.runs > 50
        || o.swaps < 2
        || o.swaps > 100_000
        || o.gap > Duration::from_secs(10)
        || o.routes < 100
        || o.routes > 1_000_000
        || o.every < 2
        || o.every > o.routes
        || o.extra_neighbors > 16
    {
        bail!(
            "--runs 1..=50, --swaps 2..=100000, --gap-ms ..=10000, --routes 100..=1000000, --every 2..=routes, --extra-neighbors ..=16"
        );
    }
    if !o.wasmbgp.is_file() && (o.daemon || o.config) {
        bail!(
            "{} not found: run `cargo build --release -p wasmbgp` first",
            o.wasmbgp.display()
        );
    }
    for k in kinds(&o) {
        let f = o.plugins_dir.join(format!("{}.wasm", k.file));
        if !f.is_file() {
            bail!(
                "{} not found: run scripts/build-plugins.sh first",
                f.display()
            );
        }
    }
    Ok(o)
}

/// A plugin swapped back and forth.
#[derive(Clone)]
struct Kind {
    key: &'static str,
    label: &'static str,
    file: &'static str,
    /// p99 target of a swap, ms.
    target_ms: f64,
}

fn kinds(o: &Opts) -> Vec<Kind> {
    let mut v = vec![Kind {
        key: "rust",
        label: "tcp-check (Rust)",
        file: "tcp-check",
        target_ms: 2.0,
    }];
    if o.python {
        v.push(Kind {
            key: "python",
            label: "tcp-check-py (Python)",
            file: "tcp-check-py",
            target_ms: 20.0,
        });
    }
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A copy of `src` with a custom section `wasmbgp-bench-variant` holding `tag` appended:
/// the same code with different bytes (another hash, so another compiled component).
fn variant(src: &Path, dst: &Path, tag: &str) -> Result<()> {
    let mut bytes = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let name = b"wasmbgp-bench-variant";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    bytes.push(0); // custom section id
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    std::fs::write(dst, bytes).map_err(|e| format!("{}: {e}", dst.display()))
}

/// The A and B components of a kind, made once.
fn components(o: &Opts, dir: &Path, k: &Kind) -> Result<[PathBuf; 2]> {
    let d = dir.join("components");
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let src = o.plugins_dir.join(format!("{}.wasm", k.file));
    let mut out = Vec::new();
    for tag in ["a", "b"] {
        let p = d.join(format!("{}-{tag}.wasm", k.file));
        if !p.exists() {
            variant(&src, &p, tag)?;
        }
        out.push(p);
    }
    Ok([out[0].clone(), out[1].clone()])
}

/// A listener on T that accepts and drops connections (the health checks' target),
/// drained every 5 ms by a thread until dropped.
struct Target {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    fn start() -> Result<Target> {
        let l = TcpListener::bind((T, 0)).map_err(|e| e.to_string())?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = l.local_addr().map_err(|e| e.to_string())?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(7200);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                for _ in 0..1000 {
                    if l.accept().is_err() {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Ok(Target {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. In process

#[derive(Default, Clone)]
struct Swaps {
    /// First reload of B then A (disk cache or compile → memory), ms.
    warm: Vec<f64>,
    /// `reload()` returning, ms.
    prepare: Vec<f64>,
    /// `reload()` → `outcome()` Ok, ms.
    total: Vec<f64>,
    others: f64,
    busy: bool,
    note: String,
}

fn rt_spec(name: &str, component: &Path, target: &str) -> PluginSpec {
    let mut s = PluginSpec::new(name, World::Healthcheck, component.to_path_buf());
    s.settings = vec![
        ("address".into(), target.into()),
        ("timeout".into(), "200ms".into()),
    ];
    s.grants.tcp = vec![target.into()];
    // Checks only right after each swap (the driver checks at once after a reload).
    s.interval = Duration::from_secs(3600);
    s.fast_interval = Duration::from_secs(3600);
    s.rise = 1;
    s.fall = 1;
    s
}

fn runtime_run(
    o: &Opts,
    dir: &Path,
    k: &Kind,
    comps: &[PathBuf; 2],
    tokio: &tokio::runtime::Runtime,
    target: &str,
    perf: Option<&str>,
) -> Result<Swaps> {
    let rt = Runtime::with_options(RuntimeOptions {
        cache_dir: Some(dir.join("cache-runtime")),
        ..Default::default()
    })
    .map_err(|e| format!("{e:#}"))?;
    let specs = [
        rt_spec(PLUGIN, &comps[0], target),
        rt_spec(PLUGIN, &comps[1], target),
    ];
    let _guard = tokio.enter();
    let (tx, mut rx) = wasmbgp_runtime::EventSender::channel();
    let h = rt
        .start(specs[0].clone(), tx)
        .map_err(|e| format!("{e:#}"))?;
    let first = tokio.block_on(tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match rx.recv().await {
                Some(PluginEvent::Lifecycle { .. }) => continue,
                other => break other,
            }
        }
    }));
    match first {
        Ok(Some(PluginEvent::Health {
            health: Health::Up, ..
        })) => {}
        other => {
            let e = format!(
                "{}: first event {:?}",
                k.file,
                other.map(|e| format!("{e:?}"))
            );
            tokio.block_on(h.stop());
            bail!("{e}");
        }
    }
    let mut sw = Swaps::default();
    let reload = |spec: &PluginSpec, timeout: Duration| -> Result<(f64, f64)> {
        let spec = spec.clone();
        let t0 = Instant::now();
        let r = h.reload(spec).map_err(|e| format!("reload: {e:#}"))?;
        let t1 = Instant::now();
        tokio
            .block_on(tokio::time::timeout(timeout, r.outcome()))
            .map_err(|_| format!("reload outcome not within {timeout:?}"))?
            .map_err(|e| format!("reload refused: {e:#}"))?;
        Ok((ms(t1 - t0), ms(t0.elapsed())))
    };
    // Warm-up: B (from the disk cache, compiled on the first run), then A (memory).
    for s in [&specs[1], &specs[0]] {
        sw.warm.push(reload(s, Duration::from_secs(300))?.1);
        std::thread::sleep(o.gap.max(Duration::from_millis(20)));
    }
    let st0 = h.status();
    // A profiled run makes many more swaps, closer together (more samples).
    let (swaps, gap) = swaps_gap(o, perf);
    let others = Others::start(&[]);
    let profile = perf_start(o, std::process::id(), perf)?;
    for i in 0..swaps {
        let (p, t) = reload(&specs[(i + 1) % 2], Duration::from_secs(30))
            .map_err(|e| format!("{} swap {i}: {e}", k.file))?;
        sw.prepare.push(p);
        sw.total.push(t);
        while let Ok(ev) = rx.try_recv() {
            if let PluginEvent::Failed { error, .. } = ev {
                bail!("{} swap {i}: plugin fault: {error}", k.file);
            }
        }
        std::thread::sleep(gap);
    }
    (sw.others, sw.busy) = others.end();
    perf_stop(profile);
    // The last swap's check is done within the gap; give it a moment more.
    std::thread::sleep(Duration::from_millis(50));
    let st = h.status();
    tokio.block_on(h.stop());
    let reloads = st.reloads - st0.reloads;
    // Each reload makes two calls: the new instance's init and its first check.
    let calls = st.calls - st0.calls;
    if reloads != swaps as u64
        || st.restarts != 0
        || st.health != Some(Health::Up)
        || calls < checks(swaps, gap)
    {
        bail!(
            "{}: after {} swaps: reloads +{reloads}, calls +{calls}, restarts {}, health {:?}, error {:?}",
            k.file,
            swaps,
            st.restarts,
            st.health,
            st.last_error
        );
    }
    sw.note = format!("reloads +{reloads}, calls +{calls}, restarts 0, health up");
    Ok(sw)
}

// ---------------------------------------------------------------------------------------
// wasmbgp processes

/// `wasmbgp run --log-format json`, its log followed (every line kept, so that the
/// benchmark can wait for messages it does not know exactly).
struct Daemon {
    proc: Proc,
    log: Receiver<LogLine>,
    seen: Vec<LogLine>,
    sock: PathBuf,
}

impl Daemon {
    fn start(o: &Opts, conf: &Path, cache: &Path, d: &Path) -> Result<Daemon> {
        let (proc, _, log) = spawn_json_daemon(&o.wasmbgp, conf, cache, &d.join("wasmbgp.log"))?;
        Ok(Daemon {
            proc,
            log,
            seen: Vec::new(),
            sock: d.join("wasmbgp.sock"),
        })
    }

    fn drain(&mut self) {
        while let Ok((ts, v)) = self.log.try_recv() {
            if v["level"] == "ERROR" || v["level"] == "WARN" {
                eprintln!("bench: wasmbgp: {}", v["fields"]);
            }
            self.seen.push((ts, v));
        }
    }

    fn warnings(&mut self) -> usize {
        self.drain();
        self.seen
            .iter()
            .filter(|(_, v)| v["level"] == "ERROR" || v["level"] == "WARN")
            .count()
    }

    /// Waits (bounded) for a log line after line `from` whose message satisfies `hit`.
    fn wait_log(
        &mut self,
        from: usize,
        what: &str,
        hit: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<LogLine> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if let Some(x) = self.seen[from.min(self.seen.len())..]
                .iter()
                .find(|(_, v)| v["fields"]["message"].as_str().is_some_and(&hit))
            {
                return Ok(x.clone());
            }
            if let Some(e) = self.proc.exited() {
                bail!("{e} while waiting for {what}");
            }
            if Instant::now() > deadline {
                bail!("no {what} from wasmbgp within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn lines(&mut self) -> usize {
        self.drain();
        self.seen.len()
    }

    fn ctl(&self, reply_timeout: Duration) -> Result<Ctl> {
        Ctl::connect(&self.sock, Duration::from_secs(10), reply_timeout)
    }
}

/// Calls expected from `swaps` reloads: each new instance's `init`, and its first check,
/// which the driver runs on its next timer tick (≤ 1 ms) unless the next reload comes
/// first (a gap under 10 ms may skip a few).
fn checks(swaps: usize, gap: Duration) -> u64 {
    let n = swaps as u64;
    if gap >= Duration::from_millis(10) {
        2 * n
    } else {
        n
    }
}

/// Swaps and the gap between them: a profiled run (`--perf`) makes at least 2,000, 2 ms
/// apart, for enough samples.
fn swaps_gap(o: &Opts, perf: Option<&str>) -> (usize, Duration) {
    match perf {
        Some(_) => (o.swaps.max(2000), Duration::from_millis(2)),
        None => (o.swaps, o.gap),
    }
}

/// `perf record` of a process (`--perf`), to be ended with [`perf_stop`].
struct Perf {
    proc: Proc,
    data: PathBuf,
}

fn perf_start(o: &Opts, pid: u32, name: Option<&str>) -> Result<Option<Perf>> {
    let (Some(dir), Some(name)) = (&o.perf, name) else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let data = dir.join(format!("{name}.perf.data"));
    let log =
        std::fs::File::create(dir.join(format!("{name}.perf.log"))).map_err(|e| e.to_string())?;
    let proc = Proc::spawn(
        "perf record",
        Command::new("perf")
            .args(["record", "-F", "4000", "--call-graph", "dwarf,16384", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log),
    )?;
    // perf needs a moment to attach to every thread.
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("bench: perf record -p {pid} → {}", data.display());
    Ok(Some(Perf { proc, data }))
}

/// Ends `perf record` (SIGINT) and writes its flat and inclusive reports beside the data.
fn perf_stop(p: Option<Perf>) {
    let Some(mut p) = p else { return };
    unsafe {
        libc::kill(p.proc.pid() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.proc.exited().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    p.proc.stop();
    for (suffix, children) in [("flat", "--no-children"), ("children", "--children")] {
        let out = p
            .data
            .with_extension("")
            .with_extension(format!("{suffix}.txt"));
        let Ok(file) = std::fs::File::create(&out) else {
            continue;
        };
        let mut report = Command::new("timeout");
        report
            .args([
                "600",
                "perf",
                "report",
                // Without it perf runs addr2line over the cached .cwasm: minutes.
                "--no-inline",
                children,
                "--sort",
                "sym",
                "-g",
                "none",
                "--stdio",
                "-i",
            ])
            .arg(&p.data)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null());
        match report.status() {
            Ok(st) if st.success() => eprintln!("bench: perf report → {}", out.display()),
            other => eprintln!("bench: perf report for {}: {other:?}", out.display()),
        }
    }
}

/// One control command on a fresh connection: `Ok(output)` or `Err(error)` from the
/// daemon; `Err` of the outer result for I/O trouble.
fn ctl_try(ctl: &mut Ctl, line: &str) -> Result<std::result::Result<String, String>> {
    match ctl.cmd(line) {
        Ok(out) => Ok(Ok(out)),
        Err(e) if e.starts_with(&format!("{line:?}: ")) => Ok(Err(e
            [format!("{line:?}: ").len()..]
            .trim_matches('"')
            .to_string())),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// 2. Swaps through the daemon

#[derive(Default, Clone)]
struct DaemonSwaps {
    /// How the component was chosen: `plugin reload NAME PATH`, or config rewrite.
    form: String,
    socket: Vec<f64>,
    process: Vec<f64>,
    warm: Vec<f64>,
    others: f64,
    busy: bool,
    note: String,
}

fn swap_conf(d: &Path, listen: u16, peer_port: u16, comp: &Path, target: &str) -> String {
    format!(
        "router-id = \"{W}\"\nlocal-as = 65001\nlisten = \"{W}:{listen}\"\n\
         [control]\nsocket = \"{sock}\"\n\
         [[neighbor]]\naddress = \"{RX}\"\nport = {peer_port}\npeer-as = 65000\nlocal-address = \"{W}\"\n\
         passive = true\nfamilies = [\"ipv4-unicast\"]\n\
         [[plugin]]\nname = \"{PLUGIN}\"\nworld = \"healthcheck\"\ncomponent = \"{comp}\"\n\
         interval = \"1h\"\nfast-interval = \"1h\"\nrise = 1\nfall = 1\n\
         [plugin.settings]\naddress = \"{target}\"\ntimeout = \"200ms\"\n\
         [plugin.grants]\ntcp = [\"{target}\"]\n\
         [[plugin.route]]\nprefix = \"100.64.0.1/32\"\nnext-hop = \"self\"\n",
        sock = d.join("wasmbgp.sock").display(),
        comp = comp.display()
    )
}

fn daemon_run(
    o: &Opts,
    dir: &Path,
    k: &Kind,
    comps: &[PathBuf; 2],
    run: usize,
    target: &str,
    perf: Option<&str>,
) -> Result<DaemonSwaps> {
    let d = dir.join(format!("daemon-{}-{run}", k.key));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let cache = dir.join("cache-daemon");
    let (wp, pp) = (free_port(W)?, free_port(RX)?);
    let conf = d.join("wasmbgp.toml");
    // Both components in the disk cache (the daemon loads them from there).
    for (i, c) in comps.iter().enumerate() {
        let f = d.join(format!("check-{i}.toml"));
        std::fs::write(&f, swap_conf(&d, wp, pp, c, target)).map_err(|e| e.to_string())?;
        wasmbgp_check(&o.wasmbgp, &f, &cache)?;
    }
    let write_conf = |c: &Path| {
        std::fs::write(&conf, swap_conf(&d, wp, pp, c, target)).map_err(|e| e.to_string())
    };
    write_conf(&comps[0])?;
    let mut w = Daemon::start(o, &conf, &cache, &d)?;
    w.wait_log(
        0,
        "\"wasmbgp started\"",
        |m| m == "wasmbgp started",
        Duration::from_secs(120),
    )?;
    let mut ctl = w.ctl(Duration::from_secs(300))?;
    // Which form works: PATH, or the config's component.
    let mut sw = DaemonSwaps::default();
    let by_path = |c: &Path| format!("plugin reload {PLUGIN} {}", c.display());
    let t = Instant::now();
    let first = ctl_try(&mut ctl, &by_path(&comps[1]))?;
    let path_form = match first {
        Ok(_) => {
            sw.warm.push(ms(t.elapsed()));
            sw.form = "`plugin reload NAME PATH`".into();
            true
        }
        Err(e) => {
            eprintln!(
                "bench: daemon swaps: `plugin reload NAME PATH` refused ({e}); rewriting the config's component instead"
            );
            sw.form = format!(
                "config `component` rewritten (not timed), then `plugin reload NAME` (the PATH form was refused: {e})"
            );
            write_conf(&comps[1])?;
            let t = Instant::now();
            ctl.cmd(&format!("plugin reload {PLUGIN}"))?;
            sw.warm.push(ms(t.elapsed()));
            false
        }
    };
    let command = |c: &Path| -> Result<String> {
        if path_form {
            Ok(by_path(c))
        } else {
            write_conf(c)?;
            Ok(format!("plugin reload {PLUGIN}"))
        }
    };
    std::thread::sleep(o.gap.max(Duration::from_millis(20)));
    let line = command(&comps[0])?;
    let t = Instant::now();
    ctl.cmd(&line)?;
    sw.warm.push(ms(t.elapsed()));
    std::thread::sleep(o.gap.max(Duration::from_millis(20)));
    let before = plugin_json(&mut ctl)?;
    let (swaps, gap) = swaps_gap(o, perf);
    let others = Others::start(&[w.proc.pid()]);
    let profile = perf_start(o, w.proc.pid(), perf)?;
    // Over the socket.
    for i in 0..swaps {
        let line = command(&comps[(i + 1) % 2])?;
        let t = Instant::now();
        ctl.cmd(&line)
            .map_err(|e| format!("socket swap {i}: {e}"))?;
        sw.socket.push(ms(t.elapsed()));
        std::thread::sleep(gap);
    }
    perf_stop(profile);
    // Through a `wasmbgp ctl` process each (spawn, connect, command, answer, exit).
    for i in 0..o.swaps {
        let line = command(&comps[(i + 1) % 2])?;
        let t = Instant::now();
        let out = Command::new(&o.wasmbgp)
            .arg("ctl")
            .arg("--socket")
            .arg(&w.sock)
            .args(line.split(' '))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let took = ms(t.elapsed());
        if !out.status.success() {
            bail!(
                "wasmbgp ctl {line}: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        sw.process.push(took);
        std::thread::sleep(o.gap);
    }
    (sw.others, sw.busy) = others.end();
    std::thread::sleep(Duration::from_millis(50));
    let after = plugin_json(&mut ctl)?;
    let num = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let reloads = num(&after, "reloads") - num(&before, "reloads");
    let refused = num(&after, "reloads-refused");
    let restarts = num(&after, "restarts");
    let calls = num(&after, "calls") - num(&before, "calls");
    let warnings = w.warnings();
    w.proc.stop();
    if reloads != (swaps + o.swaps) as u64
        || refused != 0
        || restarts != 0
        || after["health"] != "up"
        || warnings != 0
    {
        bail!(
            "daemon {}: reloads +{reloads} (expected {}), refused {refused}, restarts {restarts}, health {}, {warnings} warnings",
            k.file,
            swaps + o.swaps,
            after["health"]
        );
    }
    sw.note = format!("reloads +{reloads}, calls +{calls}, refused 0, restarts 0, health up");
    Ok(sw)
}

/// The swapped plugin in `show plugins --json`.
fn plugin_json(ctl: &mut Ctl) -> Result<serde_json::Value> {
    let v = ctl.json("show plugins --json")?;
    v.as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == PLUGIN))
        .cloned()
        .ok_or_else(|| format!("no plugin {PLUGIN} in show plugins --json: {v}"))
}

// ---------------------------------------------------------------------------------------
// 3. Config reload of 1 % of 1M routes

/// BIRD's import counters of a protocol (`show protocols all NAME`).
#[derive(Default, Clone, Copy, Debug)]
struct BirdCounts {
    imported: u64,
    upd_received: u64,
    upd_ignored: u64,
    upd_accepted: u64,
    wd_received: u64,
}

fn bird_counts(b: &mut Birdc, proto: &str) -> Result<BirdCounts> {
    let r = b.cmd(&format!("show protocols all {proto}"))?;
    let mut c = BirdCounts::default();
    let nums = |rest: &str| -> Vec<u64> {
        rest.split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect()
    };
    for l in r.lines() {
        let l = l
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
            .trim();
        if let Some(rest) = l.strip_prefix("Routes:") {
            c.imported = nums(rest).first().copied().unwrap_or(0);
        } else if let Some(rest) = l.strip_prefix("Import updates:") {
            let n = nums(rest);
            // received rejected filtered ignored accepted
            c.upd_received = n.first().copied().unwrap_or(0);
            c.upd_ignored = n.get(3).copied().unwrap_or(0);
            c.upd_accepted = n.get(4).copied().unwrap_or(0);
        } else if let Some(rest) = l.strip_prefix("Import withdraws:") {
            c.wd_received = nums(rest).first().copied().unwrap_or(0);
        }
    }
    Ok(c)
}

/// wasmbgp's send counters toward the one neighbor.
#[derive(Default, Clone, Copy, Debug)]
struct SentCounts {
    updates: u64,
    announced: u64,
    withdrawn: u64,
}

fn sent_counts(ctl: &mut Ctl) -> Result<SentCounts> {
    let n = ctl.json("show neighbors --json")?;
    let n = n
        .as_array()
        .and_then(|l| l.first())
        .cloned()
        .unwrap_or_default();
    let updates = n["updates-sent"]
        .as_u64()
        .or_else(|| n["updates_sent"].as_u64())
        .ok_or_else(|| format!("no updates-sent in show neighbors --json: {n}"))?;
    let m = ctl.cmd("show metrics")?;
    let sum = |name: &str| -> u64 {
        m.lines()
            .filter(|l| {
                l.starts_with(name)
                    && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next().and_then(|x| x.parse::<f64>().ok()))
            .sum::<f64>() as u64
    };
    Ok(SentCounts {
        updates,
        announced: sum("wasmbgp_routes_announced_total"),
        withdrawn: sum("wasmbgp_routes_withdrawn_total"),
    })
}

fn route_line(i: u32, changed: bool) -> String {
    if changed {
        format!("{}/24 med {NEW_MED}\n", table_prefix(i))
    } else {
        format!("{}/24\n", table_prefix(i))
    }
}

/// Writes the route file (every `every`-th route with `med 50` if `changed`) beside and
/// renames it over `path` (a reload never reads a half-written file).
fn write_routes(o: &Opts, path: &Path, changed: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write_lines(&tmp, o.routes, |i| {
        route_line(i, changed && i % o.every == 0)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// One config reload, measured.
#[derive(Default, Clone, Debug)]
struct Apply {
    /// Command (or signal) → reply (or the `config reloaded` log line), ms.
    apply_ms: f64,
    /// The daemon's own duration, ms (reply's `ms` or the log line's).
    daemon_ms: Option<f64>,
    /// The daemon's own figures: routes announced / withdrawn (reply).
    daemon_announced: Option<u64>,
    daemon_withdrawn: Option<u64>,
    /// Command → BIRD's import updates grown by the expected count, ms.
    to_bird_ms: Option<f64>,
    sent: SentCounts,
    bird: BirdCounts,
    /// The reply (or log line) as printed.
    reply: String,
    ok: bool,
    problems: Vec<String>,
}

#[derive(Default, Clone)]
struct ConfigRun {
    load_s: f64,
    unchanged: Option<Apply>,
    changed: Option<Apply>,
    sighup: Option<Apply>,
    unsupported: Option<String>,
    others: f64,
    busy: bool,
    hwm: u64,
}

/// A JSON object on one line without its empty fields (`[]`, `""`, `{}`, null).
fn compact(v: &serde_json::Value) -> String {
    match v.as_object() {
        Some(m) => {
            let kept: serde_json::Map<String, serde_json::Value> = m
                .iter()
                .filter(|(_, x)| {
                    !(x.is_null()
                        || x.as_array().is_some_and(|a| a.is_empty())
                        || x.as_str().is_some_and(str::is_empty)
                        || x.as_object().is_some_and(|o| o.is_empty()))
                })
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect();
            serde_json::Value::Object(kept).to_string()
        }
        None => v.to_string(),
    }
}

fn field_u64(v: &serde_json::Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| v[*k].as_u64())
}

fn field_f64(v: &serde_json::Value, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| {
        v[*k].as_f64().or_else(|| {
            // "12.3ms" or "1.2s" (a Debug duration in a log field)
            v[*k].as_str().and_then(|s| {
                if let Some(x) = s.strip_suffix("ms") {
                    x.parse().ok()
                } else if let Some(x) = s.strip_suffix("µs") {
                    x.parse::<f64>().ok().map(|x| x / 1e3)
                } else if let Some(x) = s.strip_suffix('s') {
                    x.parse::<f64>().ok().map(|x| x * 1e3)
                } else {
                    None
                }
            })
        })
    })
}

const MS_KEYS: &[&str] = &[
    "ms",
    "apply_ms",
    "duration_ms",
    "elapsed_ms",
    "took_ms",
    "duration",
    "elapsed",
];
const ANN_KEYS: &[&str] = &["routes_announced", "routes-announced", "announced"];
const WD_KEYS: &[&str] = &["routes_withdrawn", "routes-withdrawn", "withdrawn"];

/// After a reload was triggered at `t0`: polls BIRD (every 2 ms) until its import
/// updates grew by `expect` (if > 0), then waits `settle` for stragglers, and compares
/// every counter with what was expected.
#[allow(clippy::too_many_arguments)]
fn observe(
    bird: &mut Bird,
    ctl: &mut Ctl,
    t0: Instant,
    b0: BirdCounts,
    s0: SentCounts,
    expect: u64,
    n: u64,
    ribs: u64,
    a: &mut Apply,
) -> Result<()> {
    if expect > 0 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = bird_counts(&mut bird.ctl, "wasm")?;
            if c.upd_received - b0.upd_received >= expect {
                a.to_bird_ms = Some(ms(t0.elapsed()));
                break;
            }
            if Instant::now() > deadline {
                a.problems.push(format!(
                    "BIRD received {} updates in 60 s, not {expect}",
                    c.upd_received - b0.upd_received
                ));
                break;
            }
            if let Some(e) = bird.proc.exited() {
                bail!("{e}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Anything more would be an UPDATE too many.
    std::thread::sleep(Duration::from_millis(1000));
    let b1 = bird_counts(&mut bird.ctl, "wasm")?;
    let s1 = sent_counts(ctl)?;
    a.bird = BirdCounts {
        imported: b1.imported,
        upd_received: b1.upd_received - b0.upd_received,
        upd_ignored: b1.upd_ignored - b0.upd_ignored,
        upd_accepted: b1.upd_accepted - b0.upd_accepted,
        wd_received: b1.wd_received - b0.wd_received,
    };
    a.sent = SentCounts {
        updates: s1.updates - s0.updates,
        announced: s1.announced - s0.announced,
        withdrawn: s1.withdrawn - s0.withdrawn,
    };
    if a.bird.upd_received != expect {
        a.problems.push(format!(
            "BIRD import updates received +{}, expected +{expect}",
            a.bird.upd_received
        ));
    }
    if a.bird.wd_received != 0 || a.sent.withdrawn != 0 {
        a.problems.push(format!(
            "withdrawals: BIRD +{}, wasmbgp +{}",
            a.bird.wd_received, a.sent.withdrawn
        ));
    }
    if a.sent.announced != expect {
        a.problems.push(format!(
            "wasmbgp announced +{} prefixes, expected +{expect}",
            a.sent.announced
        ));
    }
    if b1.imported != n {
        a.problems
            .push(format!("BIRD holds {} routes, not {n}", b1.imported));
    }
    // The daemon counts each Adj-RIB-Out's changes (one per neighbor).
    if let Some(x) = a.daemon_announced
        && x != expect * ribs
    {
        a.problems.push(format!(
            "the daemon says {x} routes announced, expected {}",
            expect * ribs
        ));
    }
    a.ok = a.problems.is_empty();
    Ok(())
}

/// BIRD's MED of one prefix (`None`: no MED; `Err`: no route).
fn bird_med(bird: &mut Bird, p: Ipv4Addr) -> Result<Option<u64>> {
    let r = bird.ctl.cmd(&format!("show route {p}/24 all"))?;
    if !r.contains(&format!("{p}/24")) {
        bail!("BIRD has no {p}/24: {}", r.trim());
    }
    Ok(r.lines().find_map(|l| {
        l.split_once("BGP.med:")
            .and_then(|(_, v)| v.trim().parse().ok())
    }))
}

fn check_meds(o: &Opts, bird: &mut Bird, changed: bool, a: &mut Apply) -> Result<()> {
    let last_changed = (o.routes - 1) / o.every * o.every;
    for (i, is_changed) in [
        (0, true),
        (1, false),
        (o.every, true),
        (o.every + 1, false),
        (last_changed, true),
        (o.routes - 1, o.routes - 1 == last_changed),
    ] {
        let want = (changed && is_changed).then_some(NEW_MED as u64);
        let got = bird_med(bird, table_prefix(i))?;
        if got != want {
            a.problems.push(format!(
                "BIRD: {}/24 MED {got:?}, expected {want:?}",
                table_prefix(i)
            ));
            a.ok = false;
        }
    }
    Ok(())
}

fn config_conf(o: &Opts, d: &Path, listen: u16, peer_port: u16) -> String {
    let mut s = format!(
        "router-id = \"{W}\"\nlocal-as = 65001\nlisten = \"{W}:{listen}\"\n\
         [control]\nsocket = \"{sock}\"\n\
         [[neighbor]]\naddress = \"{RX}\"\nport = {peer_port}\npeer-as = 65000\nlocal-address = \"{W}\"\n\
         families = [\"ipv4-unicast\"]\nconnect-retry = \"1s\"\n\
         [[route-file]]\npath = \"routes.txt\"\nnext-hop = \"self\"\n",
        sock = d.join("wasmbgp.sock").display()
    );
    for i in 0..o.extra_neighbors {
        s += &format!(
            "[[neighbor]]\naddress = \"127.81.1.{}\"\npeer-as = 65000\npassive = true\n\
             families = [\"ipv4-unicast\"]\n",
            i + 1
        );
    }
    s
}

fn ctl_reload(ctl: &mut Ctl, a: &mut Apply) -> Result<std::result::Result<(), String>> {
    let t = Instant::now();
    let r = ctl_try(ctl, "reload --json")?;
    a.apply_ms = ms(t.elapsed());
    match r {
        Ok(out) => {
            a.reply = out.trim().to_string();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&a.reply) {
                a.reply = compact(&v);
                a.daemon_ms = field_f64(&v, MS_KEYS);
                a.daemon_announced = field_u64(&v, ANN_KEYS);
                a.daemon_withdrawn = field_u64(&v, WD_KEYS);
            }
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(e)),
    }
}

fn config_run(o: &Opts, dir: &Path, run: usize, perf: Option<&str>) -> Result<ConfigRun> {
    let d = dir.join(format!("config-{run}"));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let n = o.routes as u64;
    let expect = (o.routes - 1) as u64 / o.every as u64 + 1;
    let ribs = 1 + o.extra_neighbors as u64;
    let routes = d.join("routes.txt");
    write_routes(o, &routes, false)?;
    let (mut bird, wp, rp) = start_bird_receiver(&o.bird, &d.join("bird"), RX, W)?;
    let conf = d.join("wasmbgp.toml");
    std::fs::write(&conf, config_conf(o, &d, wp, rp)).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut w = Daemon::start(o, &conf, &dir.join("cache-config"), &d)?;
    w.wait_log(
        0,
        "\"session established\"",
        |m| m == "session established",
        Duration::from_secs(120),
    )?;
    if let Err(e) = bird.wait_imported(
        "wasm",
        n,
        Duration::from_millis(20),
        Duration::from_secs(300),
    ) {
        bail!("{e}; {}", w.proc.exited().unwrap_or_default());
    }
    let mut r = ConfigRun {
        load_s: t0.elapsed().as_secs_f64(),
        ..Default::default()
    };
    eprintln!(
        "bench: config run {run}: BIRD holds {n} routes {:.1} s after spawn",
        r.load_s
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut ctl = w.ctl(Duration::from_secs(120))?;
    let others = Others::start(&[w.proc.pid(), bird.proc.pid()]);
    let profile = perf_start(o, w.proc.pid(), perf)?;

    // The file unchanged.
    let mut a = Apply::default();
    let b0 = bird_counts(&mut bird.ctl, "wasm")?;
    let s0 = sent_counts(&mut ctl)?;
    let t = Instant::now();
    if let Err(e) = ctl_reload(&mut ctl, &mut a)? {
        eprintln!("bench: config run {run}: `ctl reload --json` refused: {e}");
        r.unsupported = Some(e);
        w.proc.stop();
        return Ok(r);
    }
    observe(&mut bird, &mut ctl, t, b0, s0, 0, n, ribs, &mut a)?;
    eprintln!(
        "bench: config run {run}: unchanged file: {:.1} ms, {:?}",
        a.apply_ms, a.problems
    );
    r.unchanged = Some(a);

    // 1 % changed.
    write_routes(o, &routes, true)?;
    let mut a = Apply::default();
    let b0 = bird_counts(&mut bird.ctl, "wasm")?;
    let s0 = sent_counts(&mut ctl)?;
    let t = Instant::now();
    if let Err(e) = ctl_reload(&mut ctl, &mut a)? {
        bail!("config run {run}: `ctl reload --json` with {expect} changed routes refused: {e}");
    }
    observe(&mut bird, &mut ctl, t, b0, s0, expect, n, ribs, &mut a)?;
    check_meds(o, &mut bird, true, &mut a)?;
    eprintln!(
        "bench: config run {run}: {expect} changed: apply {:.1} ms, BIRD has all {:?} ms, UPDATEs {}, {:?}",
        a.apply_ms, a.to_bird_ms, a.sent.updates, a.problems
    );
    r.changed = Some(a);

    perf_stop(profile);

    // Restored, by SIGHUP.
    if o.sighup {
        write_routes(o, &routes, false)?;
        let mut a = Apply::default();
        let b0 = bird_counts(&mut bird.ctl, "wasm")?;
        let s0 = sent_counts(&mut ctl)?;
        let from = w.lines();
        let t = Instant::now();
        let sent_at = now();
        unsafe {
            libc::kill(w.proc.pid() as libc::pid_t, libc::SIGHUP);
        }
        match w.wait_log(
            from,
            "\"config reloaded\" log line",
            |m| m.starts_with("config reload"),
            Duration::from_secs(60),
        ) {
            Ok((ts, v)) => {
                a.apply_ms = (ts - sent_at) * 1e3;
                a.reply = compact(&v["fields"]);
                a.daemon_ms = field_f64(&v["fields"], MS_KEYS);
                a.daemon_announced = field_u64(&v["fields"], ANN_KEYS);
                a.daemon_withdrawn = field_u64(&v["fields"], WD_KEYS);
                if v["fields"]["message"] != "config reloaded" {
                    a.problems.push(format!("log: {}", v["fields"]));
                }
                observe(&mut bird, &mut ctl, t, b0, s0, expect, n, ribs, &mut a)?;
                check_meds(o, &mut bird, false, &mut a)?;
                eprintln!(
                    "bench: config run {run}: SIGHUP: log line after {:.1} ms, BIRD has all {:?} ms, UPDATEs {}, {:?}",
                    a.apply_ms, a.to_bird_ms, a.sent.updates, a.problems
                );
            }
            Err(e) => {
                a.problems.push(e);
                a.reply = "—".into();
            }
        }
        r.sighup = Some(a);
    }
    (r.others, r.busy) = others.end();
    r.hwm = vm_status(w.proc.pid(), "VmHWM:").unwrap_or(0);
    w.warnings();
    w.proc.stop();
    bird.proc.stop();
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Report

fn yes(ok: bool) -> &'static str {
    if ok { "**yes**" } else { "**no**" }
}

fn f2(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

/// p50 / p99 / max of samples.
fn q(v: &[f64]) -> [f64; 3] {
    [pct(v, 0.5), pct(v, 0.99), pct(v, 1.0)]
}

/// Median over runs of each run's p50 / p99 / max.
fn med_q(runs: &[Vec<f64>]) -> [f64; 3] {
    let per: Vec<[f64; 3]> = runs.iter().map(|v| q(v)).collect();
    std::array::from_fn(|i| median(&per.iter().map(|x| x[i]).collect::<Vec<_>>()))
}

struct Results {
    runtime: Vec<(Kind, Vec<Swaps>)>,
    daemon: Vec<(Kind, Vec<DaemonSwaps>)>,
    config: Vec<ConfigRun>,
}

fn header(o: &Opts) -> String {
    let tree = tree_since(&o.tree_at_start, sh);
    let when = sh(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let built = sh(Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
        .arg(&o.wasmbgp));
    let bench_built = std::env::current_exe()
        .map(|p| {
            sh(Command::new("date")
                .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
                .arg(p))
        })
        .unwrap_or_default();
    let bird = sh(Command::new(&o.bird).arg("--version"));
    let bird = if bird.is_empty() {
        Command::new(&o.bird)
            .arg("--version")
            .output()
            .map(|x| String::from_utf8_lossy(&x.stderr).trim().to_string())
            .unwrap_or_default()
    } else {
        bird
    };
    let cpu = cpu_model();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "wasmbgp reload benchmark — HEAD {tree}; wasmbgp built {built}, benchmark (runtime in process) built {bench_built}; \
         {bird}; {cpus} CPUs ({cpu}); {when}; load average at the end: {}\n\n",
        load_average(),
    )
}

fn is_busy(b: (f64, bool)) -> bool {
    b.1 || b.0 > BUSY_SHARE
}

/// The runs medians are taken over: the quiet ones if there are any, else all; and
/// how to say so.
fn pick_runs(busy: &[(f64, bool)]) -> (Vec<usize>, String) {
    let quiet: Vec<usize> = (0..busy.len()).filter(|i| !is_busy(busy[*i])).collect();
    match quiet.len() {
        0 => (
            (0..busy.len()).collect(),
            format!("median of {} runs, all busy", busy.len()),
        ),
        n if n == busy.len() => (quiet, format!("median of {n} runs")),
        n => (
            quiet,
            format!("median of the {n} quiet runs of {}", busy.len()),
        ),
    }
}

/// Each run's p99, busy runs marked `*`.
fn per_run_marked(runs: &[Vec<f64>], busy: &[(f64, bool)]) -> String {
    runs.iter()
        .zip(busy)
        .map(|(v, b)| format!("{}{}", f2(q(v)[1]), if is_busy(*b) { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn busy_cell(busy: &[(f64, bool)]) -> String {
    let max = busy.iter().map(|x| x.0).fold(0.0, f64::max);
    let rustc = busy.iter().any(|x| x.1);
    let n = busy.iter().filter(|x| x.1 || x.0 > BUSY_SHARE).count();
    if n == 0 {
        format!("quiet (others ≤ {:.0} % of a CPU)", max * 100.0)
    } else {
        format!(
            "**{n} of {} runs busy** (others up to {:.0} % of a CPU{})",
            busy.len(),
            max * 100.0,
            if rustc { "; a rustc/cargo ran" } else { "" }
        )
    }
}

/// What the in-process and the daemon swap runs share, for the report.
trait SwapRun {
    /// Others' CPU share and whether a rustc/cargo ran.
    fn machine(&self) -> (f64, bool);
    fn warm(&self) -> &[f64];
    fn note(&self) -> &str;
}

impl SwapRun for Swaps {
    fn machine(&self) -> (f64, bool) {
        (self.others, self.busy)
    }
    fn warm(&self) -> &[f64] {
        &self.warm
    }
    fn note(&self) -> &str {
        &self.note
    }
}

impl SwapRun for DaemonSwaps {
    fn machine(&self) -> (f64, bool) {
        (self.others, self.busy)
    }
    fn warm(&self) -> &[f64] {
        &self.warm
    }
    fn note(&self) -> &str {
        &self.note
    }
}

/// One plugin's swap-table figures.
struct RowStats {
    /// The machine during each run.
    busy: Vec<(f64, bool)>,
    /// Which runs the medians are taken over.
    how: String,
    /// Every run's main samples.
    all: Vec<Vec<f64>>,
    /// Median p50 / p99 / max of the main samples over the chosen runs.
    m: [f64; 3],
    /// The same of the second samples.
    p: [f64; 3],
    /// Each run's warm-up reloads, ms.
    warm: String,
}

impl RowStats {
    /// `p50 / **p99** / max ms (which runs)` of the main samples.
    fn main_cell(&self) -> String {
        let m = self.m;
        format!(
            "{} / **{}** / {} ms ({})",
            f2(m[0]),
            f2(m[1]),
            f2(m[2]),
            self.how
        )
    }

    /// Each run's p99 of the main samples, busy runs marked `*`.
    fn per_run(&self) -> String {
        per_run_marked(&self.all, &self.busy)
    }

    /// Whether the median p99 meets `target_ms`.
    fn met(&self, target_ms: f64) -> &'static str {
        yes(self.m[1] <= target_ms)
    }

    fn machine(&self) -> String {
        busy_cell(&self.busy)
    }
}

fn row_stats<T: SwapRun>(
    runs: &[T],
    main: impl Fn(&T) -> &Vec<f64>,
    second: impl Fn(&T) -> &Vec<f64>,
) -> RowStats {
    let busy: Vec<(f64, bool)> = runs.iter().map(|x| x.machine()).collect();
    let (sel, how) = pick_runs(&busy);
    let all: Vec<Vec<f64>> = runs.iter().map(|x| main(x).clone()).collect();
    let sel_all: Vec<Vec<f64>> = sel.iter().map(|i| all[*i].clone()).collect();
    let sel_second: Vec<Vec<f64>> = sel.iter().map(|i| second(&runs[*i]).clone()).collect();
    let warm = runs
        .iter()
        .map(|x| {
            x.warm()
                .iter()
                .map(|w| f2(*w))
                .collect::<Vec<_>>()
                .join(" / ")
        })
        .collect::<Vec<_>>()
        .join("; ");
    RowStats {
        busy,
        how,
        m: med_q(&sel_all),
        p: med_q(&sel_second),
        all,
        warm,
    }
}

/// Each plugin's first-run note: `file: note; …`.
fn run_notes<T: SwapRun>(rows: &[(Kind, Vec<T>)]) -> String {
    rows.iter()
        .map(|(k, runs)| {
            format!(
                "{}: {}",
                k.file,
                runs.first().map(|x| x.note()).unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn report(o: &Opts, r: &Results) -> String {
    let mut s = header(o);
    if !r.runtime.is_empty() {
        s += &format!(
            "### Plugin swap, in process (`PluginHandle::reload` → `Reload::outcome()` Ok), {} swaps per run, {} runs\n\n",
            o.swaps, o.runs
        );
        s += "| Plugin | p50 / p99 / max | p99 per run (* busy) | target p99 | met | `reload()` call alone, p50 / p99 | warm-up: first reload of B, of A | machine |\n|---|---|---|---|---|---|---|---|\n";
        for (k, runs) in &r.runtime {
            let st = row_stats(runs, |x| &x.total, |x| &x.prepare);
            s += &format!(
                "| {} | {} | {} ms | {} ms | {} | {} / {} ms | {} ms | {} |\n",
                k.label,
                st.main_cell(),
                st.per_run(),
                k.target_ms,
                st.met(k.target_ms),
                f2(st.p[0]),
                f2(st.p[1]),
                st.warm,
                st.machine(),
            );
        }
        s += &format!(
            "\nA and B are copies of the built component with a custom section of their own appended (same code, \
             different bytes: two compiled components in the cache). Warm-up = one reload of each before the timed \
             swaps (the first run compiles B and A into an empty disk cache; later runs load them from it). \
             `reload()` alone = the synchronous part (spec validation, stat of the file, memory-cache hit, \
             `instantiate_pre`); the rest is the driver's new `Store`, instantiation and `init`, and the answer. \
             {} ms between swaps (the driver checks right after a reload: a TCP connect to a local listener), \
             interval otherwise 1 h; each run's checks: {}.\n\n",
            o.gap.as_millis(),
            run_notes(&r.runtime)
        );
    }
    if !r.daemon.is_empty() {
        let form = r
            .daemon
            .first()
            .and_then(|(_, runs)| runs.first())
            .map(|x| x.form.clone())
            .unwrap_or_default();
        s += &format!(
            "### Plugin swap through the daemon ({form}), {} swaps per run and way, {} runs\n\n",
            o.swaps, o.runs
        );
        s += "| Plugin | control socket: command → answer, p50 / p99 / max | p99 per run (* busy) | `wasmbgp ctl` process (spawn → exit), p50 / p99 / max | target p99 | met (socket) | warm-up | machine |\n|---|---|---|---|---|---|---|---|\n";
        for (k, runs) in &r.daemon {
            let st = row_stats(runs, |x| &x.socket, |x| &x.process);
            s += &format!(
                "| {} | {} | {} ms | {} / {} / {} ms | {} ms | {} | {} ms | {} |\n",
                k.label,
                st.main_cell(),
                st.per_run(),
                f2(st.p[0]),
                f2(st.p[1]),
                f2(st.p[2]),
                k.target_ms,
                st.met(k.target_ms),
                st.warm,
                st.machine(),
            );
        }
        s += &format!(
            "\n`wasmbgp run` with the one health check (`interval = \"1h\"`; it checks once right after each \
             reload), no session (one passive neighbor that never connects). Both components were compiled \
             into the daemon's disk cache by `wasmbgp check` beforehand; warm-up = one swap to B and back to A \
             (disk → memory cache). {} ms between commands. Per run: {}.\n\n",
            o.gap.as_millis(),
            run_notes(&r.daemon)
        );
    }
    if o.config {
        s += &config_report(o, &r.config);
    }
    s
}

fn med_of(runs: &[ConfigRun], pick: impl Fn(&ConfigRun) -> Option<f64>) -> f64 {
    let v: Vec<f64> = runs.iter().filter_map(&pick).collect();
    median(&v)
}

fn list_of(runs: &[ConfigRun], pick: impl Fn(&ConfigRun) -> Option<String>) -> String {
    runs.iter()
        .map(|r| pick(r).unwrap_or_else(|| "—".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn config_report(o: &Opts, runs: &[ConfigRun]) -> String {
    let expect = (o.routes - 1) as u64 / o.every as u64 + 1;
    let mut s = format!(
        "### Config reload: {expect} of {} `[[route-file]]` routes change (every {}th line gets `med {NEW_MED}`), wasmbgp → BIRD 2{}, {} runs\n\n",
        o.routes,
        o.every,
        match o.extra_neighbors {
            0 => String::new(),
            n => format!(
                " (+ {n} passive neighbors that never connect, each holding an Adj-RIB-Out of the table)"
            ),
        },
        runs.len()
    );
    if let Some(e) = runs.iter().find_map(|r| r.unsupported.clone()) {
        s += &format!(
            "**Not measured: the daemon refused `ctl reload --json`: {e}.** (`ctl reload` is the config-reload \
             command this benchmark is written for; rerun once it is in the daemon.)\n\n"
        );
        return s;
    }
    type Pick = fn(&ConfigRun) -> Option<&Apply>;
    let kinds: [(&str, Pick); 3] = [
        ("`ctl reload --json`, file unchanged", |r| {
            r.unchanged.as_ref()
        }),
        ("`ctl reload --json`, 1 % changed", |r| r.changed.as_ref()),
        ("SIGHUP, the 1 % restored", |r| r.sighup.as_ref()),
    ];
    s += "| Reload | apply: trigger → answer | daemon's own `ms` | trigger → BIRD has every change | UPDATE messages sent | prefixes announced / withdrawn (wasmbgp) | BIRD import updates received / withdraws | daemon's reply (first run) | correct | target apply ≤ 1 s |\n|---|---|---|---|---|---|---|---|---|---|\n";
    for (label, pick) in kinds {
        let with: Vec<&ConfigRun> = runs.iter().filter(|r| pick(r).is_some()).collect();
        if with.is_empty() {
            continue;
        }
        let rs: Vec<ConfigRun> = with.iter().map(|r| (*r).clone()).collect();
        let busy: Vec<(f64, bool)> = rs.iter().map(|r| (r.others, r.busy)).collect();
        let (sel, how) = pick_runs(&busy);
        let rsel: Vec<ConfigRun> = sel.iter().map(|i| rs[*i].clone()).collect();
        let apply = med_of(&rsel, |r| pick(r).map(|a| a.apply_ms));
        let daemon = med_of(&rsel, |r| pick(r).and_then(|a| a.daemon_ms));
        let bird = med_of(&rsel, |r| pick(r).and_then(|a| a.to_bird_ms));
        let mark = |r: &ConfigRun| if is_busy((r.others, r.busy)) { "*" } else { "" };
        let ok = rs.iter().all(|r| pick(r).is_some_and(|a| a.ok));
        let problems: Vec<String> = rs
            .iter()
            .flat_map(|r| pick(r).map(|a| a.problems.clone()).unwrap_or_default())
            .collect();
        let is_sighup = label.starts_with("SIGHUP");
        s += &format!(
            "| {label} | **{} ms** ({how}; per run, * busy: {}) | {} ms | {} | {} | {} | {} | `{}` | {} | {} |\n",
            f2(apply),
            list_of(&rs, |r| pick(r).map(|a| format!(
                "{}{}",
                f2(a.apply_ms),
                mark(r)
            ))),
            f2(daemon),
            if bird.is_nan() {
                "—".into()
            } else {
                format!(
                    "{} ms ({})",
                    f2(bird),
                    list_of(&rs, |r| pick(r).and_then(|a| a.to_bird_ms).map(f2))
                )
            },
            list_of(&rs, |r| pick(r).map(|a| a.sent.updates.to_string())),
            list_of(&rs, |r| pick(r)
                .map(|a| format!("{} / {}", a.sent.announced, a.sent.withdrawn))),
            list_of(&rs, |r| pick(r).map(|a| format!(
                "{} / {}",
                a.bird.upd_received, a.bird.wd_received
            ))),
            rs.first()
                .and_then(|r| pick(r))
                .map(|a| a
                    .reply
                    .chars()
                    .take(300)
                    .collect::<String>()
                    .replace('|', "\\|"))
                .unwrap_or_default(),
            if ok {
                "**yes**".to_string()
            } else {
                format!("**no**: {}", problems.join("; "))
            },
            if is_sighup {
                format!("{} (signal → log line)", yes(apply <= 1000.0))
            } else {
                yes(apply <= 1000.0).to_string()
            }
        );
    }
    let load = med_of(runs, |r| Some(r.load_s));
    let hwm = median(&runs.iter().map(|r| r.hwm as f64).collect::<Vec<_>>());
    s += &format!(
        "\nPer run: a fresh BIRD 2 receiver and a fresh wasmbgp (spawn → BIRD holds all {} routes: {:.1} s \
         median; VmHWM at the end {}); 1 s of quiet, then the three reloads in this order on the same session. \
         The route file is replaced by a rename before each reload (not timed). Apply = the command written on \
         the control socket → its answer (SIGHUP: the signal → the timestamp of the daemon's `config reloaded` \
         JSON log line). BIRD is polled every 2 ms (`show protocols all`: `Import updates: received`; BIRD counts \
         prefixes, not messages), then 1 s more to catch anything sent late, before every counter is read; \
         wasmbgp's UPDATE messages are `updates-sent` of `show neighbors --json`, its prefixes \
         `wasmbgp_routes_announced_total` / `_withdrawn_total` (`show metrics`). Correct = exactly the changed \
         routes announced (BIRD and wasmbgp), no withdrawal, BIRD still holds every route, and the MED of 6 \
         sampled prefixes at BIRD (`show route P all`) is as the file says. Machine during the reloads: {}.\n",
        o.routes,
        load,
        mib(hwm as u64),
        busy_cell(&runs.iter().map(|r| (r.others, r.busy)).collect::<Vec<_>>())
    );
    s
}

/// Every timed swap and reload as CSV: phase,plugin,run,swap,ms.
fn write_samples(path: &Path, r: &Results) -> Result<()> {
    let mut out = String::from("phase,plugin,run,swap,ms\n");
    let mut put = |phase: &str, plugin: &str, run: usize, v: &[f64]| {
        for (i, x) in v.iter().enumerate() {
            out += &format!("{phase},{plugin},{run},{i},{x:.4}\n");
        }
    };
    for (k, runs) in &r.runtime {
        for (i, sw) in runs.iter().enumerate() {
            put("runtime", k.file, i, &sw.total);
            put("runtime-reload-call", k.file, i, &sw.prepare);
        }
    }
    for (k, runs) in &r.daemon {
        for (i, sw) in runs.iter().enumerate() {
            put("daemon-socket", k.file, i, &sw.socket);
            put("daemon-ctl-process", k.file, i, &sw.process);
        }
    }
    for (i, c) in r.config.iter().enumerate() {
        for (phase, a) in [
            ("config-unchanged", &c.unchanged),
            ("config-changed", &c.changed),
            ("config-sighup", &c.sighup),
        ] {
            if let Some(a) = a {
                put(phase, "-", i, &[a.apply_ms]);
            }
        }
    }
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(o: &Opts, dir: &Path) -> Result<String> {
    let mut res = Results {
        runtime: Vec::new(),
        daemon: Vec::new(),
        config: Vec::new(),
    };
    let ks = kinds(o);
    let target = Target::start()?;
    // With --perf, one more run of each phase, profiled and left out of the results.
    let total = o.runs + o.perf.is_some() as usize;
    let profiled = |i: usize, name: String| (i == o.runs).then_some(name);
    let comps: Vec<[PathBuf; 2]> = ks
        .iter()
        .map(|k| components(o, dir, k))
        .collect::<Result<_>>()?;
    if o.runtime {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        for (k, c) in ks.iter().zip(&comps) {
            let mut runs = Vec::new();
            for i in 0..total {
                eprintln!("bench: runtime swaps, {}, run {}", k.file, i + 1);
                let perf = profiled(i, format!("runtime-{}", k.key));
                let sw = runtime_run(o, dir, k, c, &tokio, &target.addr, perf.as_deref())?;
                let m = q(&sw.total);
                eprintln!(
                    "bench:   p50 {:.3} p99 {:.3} max {:.3} ms (warm-up {:?} ms)",
                    m[0], m[1], m[2], sw.warm
                );
                if perf.is_none() {
                    runs.push(sw);
                }
            }
            res.runtime.push((k.clone(), runs));
        }
        tokio.shutdown_timeout(Duration::from_secs(3));
    }
    if o.daemon {
        for (k, c) in ks.iter().zip(&comps) {
            let mut runs = Vec::new();
            for i in 0..total {
                eprintln!("bench: daemon swaps, {}, run {}", k.file, i + 1);
                let perf = profiled(i, format!("daemon-{}", k.key));
                let sw = daemon_run(o, dir, k, c, i, &target.addr, perf.as_deref())?;
                let m = q(&sw.socket);
                let p = q(&sw.process);
                eprintln!(
                    "bench:   socket p50 {:.3} p99 {:.3} max {:.3} ms; ctl process p50 {:.3} p99 {:.3} max {:.3} ms",
                    m[0], m[1], m[2], p[0], p[1], p[2]
                );
                if perf.is_none() {
                    runs.push(sw);
                }
            }
            res.daemon.push((k.clone(), runs));
        }
    }
    drop(target);
    if o.config {
        for i in 0..total {
            eprintln!("bench: config reload, run {}", i + 1);
            let perf = profiled(i, "config".to_string());
            let r = config_run(o, dir, i, perf.as_deref())?;
            let unsupported = r.unsupported.is_some();
            if perf.is_none() {
                res.config.push(r);
            }
            if unsupported {
                break;
            }
        }
    }
    if let Some(f) = &o.samples {
        write_samples(f, &res)?;
    }
    let _ = std::io::stderr().flush();
    Ok(report(o, &res))
}

fn main() {
    let o = opts_or_exit("wasmbgp-bench-reload", parse_opts());
    bench_main(
        "wasmbgp-bench-reload",
        "wasmbgp reload benchmark results",
        "bench/run-reload.sh",
        o.keep,
        o.results.as_deref(),
        |dir| run(&o, dir),
    );
}
