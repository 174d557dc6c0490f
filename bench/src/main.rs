//! wasmbgp benchmark (not a test): prints a results table.
//!
//! Everything runs on loopback (127.77.0.0/24 addresses, ephemeral ports), every wait is
//! bounded in time and iterations, and every daemon started here is stopped at the end,
//! also on error or panic (guards below) and if this process dies (PR_SET_PDEATHSIG).
//!
//! Phases:
//! 1. generate N distinct /24s into a `[[route-file]]`, time `wasmbgp check` on it;
//! 2. baseline: wasmbgp with an empty route file against a BIRD receiver, peak RSS;
//! 3. wasmbgp with the N-route file against a BIRD receiver: load time, Established ->
//!    99 % / 100 % at BIRD, peak RSS; then M `announce route` lines piped into
//!    `wasmbgp ctl -` -> all M at BIRD;
//! 4. a BIRD originator (`protocol static`, same N routes) to a BIRD receiver: same timings.

use std::io::{BufWriter, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

macro_rules! bail {
    ($($t:tt)*) => { return Err(format!($($t)*)) };
}

// ---------------------------------------------------------------------------------------
// Options

struct Opts {
    routes: u32,
    ctl_routes: u32,
    wasmbgp: PathBuf,
    bird: String,
    keep: bool,
    results: Option<PathBuf>,
    check_runs: usize,
}

fn parse_opts() -> Result<Opts> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut o = Opts {
        routes: 1_000_000,
        ctl_routes: 100_000,
        wasmbgp: root.join("target/release/wasmbgp"),
        bird: "bird".into(),
        keep: false,
        results: Some(root.join("bench/results.md")),
        check_runs: 3,
    };
    let mut args = cli_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--routes" => {
                o.routes = args
                    .val("--routes")?
                    .parse()
                    .map_err(|e| format!("--routes: {e}"))?
            }
            "--ctl-routes" => {
                o.ctl_routes = args
                    .val("--ctl-routes")?
                    .parse()
                    .map_err(|e| format!("--ctl-routes: {e}"))?
            }
            "--wasmbgp" => o.wasmbgp = args.val("--wasmbgp")?.into(),
            "--bird" => o.bird = args.val("--bird")?,
            "--results" => o.results = Some(args.val("--results")?.into()),
            "--no-results" => o.results = None,
            "--check-runs" => {
                o.check_runs = args
                    .val("--check-runs")?
                    .parse()
                    .map_err(|e| format!("--check-runs: {e}"))?
            }
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!(
                    "usage: wasmbgp-bench [--routes N (1000000)] [--ctl-routes M (100000)] [--wasmbgp PATH]\n\
                     \x20                    [--bird PATH] [--results FILE | --no-results] [--check-runs K] [--keep]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.routes == 0 || o.routes > 4_000_000 || o.ctl_routes > 1_000_000 {
        bail!("--routes must be 1..=4000000 and --ctl-routes ..=1000000");
    }
    if !o.wasmbgp.is_file() {
        bail!(
            "{} not found: run `cargo build --release -p wasmbgp` first",
            o.wasmbgp.display()
        );
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Time helpers (wall clock, epoch seconds, to compare with the daemons' log timestamps)

fn secs(x: f64) -> String {
    format!("{x:.3} s")
}

// ---------------------------------------------------------------------------------------
// Processes: every child is killed when its guard drops, and when this process dies.

/// Peak resident set size (VmHWM) of a process, in bytes.
fn vm_hwm(pid: u32) -> Result<u64> {
    vm_status(pid, "VmHWM:")
}

/// A BIRD process in its own directory with its own socket, pid file and log.
struct Bird {
    proc: Proc,
    ctl: Birdc,
    log: PathBuf,
}

impl Bird {
    fn start(bird: &str, dir: &Path, name: &str, conf: &str) -> Result<Bird> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let log = dir.join("bird.log");
        let full = format!(
            "log \"{}\" all;\ntimeformat log \"%s.%6f\";\n{conf}",
            log.display()
        );
        let conf_path = dir.join("bird.conf");
        std::fs::write(&conf_path, full).map_err(|e| e.to_string())?;
        let sock = dir.join("bird.ctl");
        let proc = Proc::spawn(
            name,
            Command::new(bird)
                .arg("-c")
                .arg(&conf_path)
                .arg("-s")
                .arg(&sock)
                .arg("-P")
                .arg(dir.join("bird.pid"))
                .arg("-f")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("bird.stderr")).map_err(|e| e.to_string())?),
        )?;
        // A 1M-line config takes BIRD a few seconds to parse; it opens its socket after that.
        let mut proc = proc;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !sock.exists() && Instant::now() < deadline {
            if let Some(e) = proc.exited() {
                let err = std::fs::read_to_string(dir.join("bird.stderr")).unwrap_or_default();
                bail!("{e}: {}", err.trim());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let ctl = Birdc::connect(&sock, Duration::from_secs(5))?;
        Ok(Bird { proc, ctl, log })
    }

    /// Time BIRD logged `NAME: State changed to up` (epoch seconds).
    fn up_at(&self, proto: &str) -> Option<f64> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let needle = format!("{proto}: State changed to up");
        text.lines()
            .find(|l| l.contains(&needle))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Polls a protocol's imported count until it reaches each threshold; returns the wall
    /// time each was first seen. Bounded by `timeout` (and so by a number of polls).
    fn wait_counts(
        &mut self,
        proto: &str,
        thresholds: &[u64],
        timeout: Duration,
    ) -> Result<Vec<f64>> {
        let deadline = Instant::now() + timeout;
        let mut seen = vec![None; thresholds.len()];
        let mut last = 0;
        let max_polls = timeout.as_millis() as u64 / 5 + 10;
        for _ in 0..max_polls {
            let n = self.ctl.imported(proto)?;
            let t = now();
            last = n;
            for (i, th) in thresholds.iter().enumerate() {
                if seen[i].is_none() && n >= *th {
                    seen[i] = Some(t);
                }
            }
            if seen.iter().all(Option::is_some) {
                return Ok(seen.into_iter().flatten().collect());
            }
            if let Some(e) = self.proc.exited() {
                bail!("{e}");
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{proto}: only {last} of {:?} routes after {timeout:?}",
            thresholds.last()
        )
    }
}

// ---------------------------------------------------------------------------------------
// wasmbgp

struct Wasmbgp {
    proc: Proc,
    spawned_at: f64,
    log: mpsc::Receiver<(f64, serde_json::Value)>,
    seen: Vec<(f64, serde_json::Value)>,
    sock: PathBuf,
}

impl Wasmbgp {
    fn start(bin: &Path, conf: &Path, sock: &Path, log_copy: &Path) -> Result<Wasmbgp> {
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg(conf)
            .args(["--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let spawned_at = now();
        let mut proc = Proc::spawn("wasmbgp", &mut cmd)?;
        let rx = harness::follow_json_log(&mut proc, log_copy)?;
        Ok(Wasmbgp {
            proc,
            spawned_at,
            log: rx,
            seen: Vec::new(),
            sock: sock.to_path_buf(),
        })
    }

    /// Waits for a log line with this message; returns its timestamp and fields.
    fn wait_log(&mut self, message: &str, timeout: Duration) -> Result<(f64, serde_json::Value)> {
        if let Some(x) = self
            .seen
            .iter()
            .find(|(_, v)| v["fields"]["message"] == message)
        {
            return Ok(x.clone());
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.log.recv_timeout(Duration::from_millis(50)) {
                Ok((ts, v)) => {
                    let hit = v["fields"]["message"] == message;
                    if v["level"] == "ERROR" || v["level"] == "WARN" {
                        eprintln!("bench: wasmbgp: {}", v["fields"]);
                    }
                    self.seen.push((ts, v.clone()));
                    if hit {
                        return Ok((ts, v));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(e) = self.proc.exited() {
                        bail!("{e} while waiting for {message:?}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("wasmbgp closed its log before {message:?}")
                }
            }
        }
        bail!("no {message:?} from wasmbgp within {timeout:?}")
    }
}

fn wasmbgp_config(
    dir: &Path,
    me: Ipv4Addr,
    my_port: u16,
    peer: Ipv4Addr,
    peer_port: u16,
    routes: &str,
) -> String {
    format!(
        r#"router-id = "{me}"
local-as = 65001
listen = "{me}:{my_port}"
[control]
socket = "{sock}"
[[neighbor]]
address = "{peer}"
port = {peer_port}
peer-as = 65000
local-address = "{me}"
families = ["ipv4-unicast"]
connect-retry = "1s"
[[route-file]]
path = "{routes}"
next-hop = "self"
"#,
        sock = dir.join("wasmbgp.sock").display()
    )
}

fn bird_receiver_conf(
    me: Ipv4Addr,
    my_port: u16,
    peer: Ipv4Addr,
    peer_port: u16,
    peer_as: u32,
    proto: &str,
) -> String {
    format!(
        "router id {me};\nprotocol device {{}}\n\
         protocol bgp {proto} {{ local {me} port {my_port} as 65000; neighbor {peer} port {peer_port} as {peer_as}; \
         multihop; connect delay time 1; connect retry time 1; debug {{ states }}; ipv4 {{ import all; export none; }}; }}\n"
    )
}

// ---------------------------------------------------------------------------------------
// Route tables

fn table_prefix(i: u32) -> Ipv4Addr {
    Ipv4Addr::from((20u32 << 24) + (i << 8)) // 20.0.0.0/24 .. (1M -> 35.66.63.0/24)
}

fn ctl_prefix(i: u32) -> Ipv4Addr {
    Ipv4Addr::from((100u32 << 24) + (i << 8)) // 100.0.0.0/24 .. (100k -> 101.134.159.0/24)
}

fn write_lines(path: &Path, n: u32, f: impl Fn(u32) -> String) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for i in 0..n {
        w.write_all(f(i).as_bytes()).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// Phases

#[derive(Default)]
struct Results {
    routes: u32,
    ctl_routes: u32,
    check_1m: Vec<f64>,
    check_empty: Vec<f64>,
    load_1m: f64,
    load_empty: f64,
    w_established_to_first: Option<f64>,
    w_99: f64,
    w_100: f64,
    w_100_receiver_clock: f64,
    w_encode_ms: f64,
    w_bytes: u64,
    hwm_empty: u64,
    hwm_1m: u64,
    rss_1m: u64,
    hwm_after_ctl: u64,
    ctl_all: f64,
    ctl_answers: f64,
    ctl_errors: u64,
    /// Bad-input batch: time until all answers were back, and whether they were
    /// three errors then `ok`, with exit 1 and the good route at BIRD.
    bad_answers: f64,
    bad_as_expected: bool,
    b_load: f64,
    b_99: f64,
    b_100: f64,
    b_100_receiver_clock: f64,
    b_hwm: u64,
}

fn time_check(o: &Opts, conf: &Path) -> Result<f64> {
    let t = Instant::now();
    let out = Command::new(&o.wasmbgp)
        .arg("check")
        .arg(conf)
        .output()
        .map_err(|e| e.to_string())?;
    let el = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "wasmbgp check {} failed: {}",
            conf.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(el)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn run(o: &Opts, dir: &Path) -> Result<Results> {
    let mut r = Results {
        routes: o.routes,
        ctl_routes: o.ctl_routes,
        ..Default::default()
    };
    let n = o.routes as u64;

    eprintln!("bench: generating {} routes in {}", o.routes, dir.display());
    write_lines(&dir.join("routes.txt"), o.routes, |i| {
        format!("{}/24\n", table_prefix(i))
    })?;
    write_lines(&dir.join("empty.txt"), 0, |_| String::new())?;
    write_lines(&dir.join("ctl.txt"), o.ctl_routes, |i| {
        format!("announce route {}/24 next-hop self\n", ctl_prefix(i))
    })?;

    let (w_addr, r1_addr) = (Ipv4Addr::new(127, 77, 0, 1), Ipv4Addr::new(127, 77, 0, 2));
    let (o_addr, r2_addr) = (Ipv4Addr::new(127, 77, 0, 3), Ipv4Addr::new(127, 77, 0, 4));

    // 1. wasmbgp check
    for (name, routes) in [("full", "routes.txt"), ("empty", "empty.txt")] {
        let d = dir.join(format!("check-{name}"));
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        let conf = d.join("wasmbgp.toml");
        std::fs::write(
            &conf,
            wasmbgp_config(&d, w_addr, 179, r1_addr, 179, &format!("../{routes}")),
        )
        .map_err(|e| e.to_string())?;
        for _ in 0..o.check_runs.max(1) {
            let t = time_check(o, &conf)?;
            if name == "full" {
                r.check_1m.push(t)
            } else {
                r.check_empty.push(t)
            }
        }
    }
    eprintln!(
        "bench: wasmbgp check: {:?} (full) {:?} (empty)",
        r.check_1m, r.check_empty
    );

    // 2 + 3. wasmbgp -> BIRD, first with the empty table (baseline RSS), then the full one.
    for (name, routes) in [("empty", "empty.txt"), ("full", "routes.txt")] {
        let d = dir.join(format!("wasmbgp-{name}"));
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        let (wp, rp) = (free_port(w_addr)?, free_port(r1_addr)?);
        let mut rx = Bird::start(
            &o.bird,
            &d.join("bird"),
            "bird receiver",
            &bird_receiver_conf(r1_addr, rp, w_addr, wp, 65001, "wasm"),
        )?;
        let conf = d.join("wasmbgp.toml");
        std::fs::write(
            &conf,
            wasmbgp_config(&d, w_addr, wp, r1_addr, rp, &format!("../{routes}")),
        )
        .map_err(|e| e.to_string())?;
        eprintln!("bench: wasmbgp ({name} table) -> BIRD");
        let mut w = Wasmbgp::start(
            &o.wasmbgp,
            &conf,
            &d.join("wasmbgp.sock"),
            &d.join("wasmbgp.log"),
        )?;
        let (started, _) = w.wait_log("wasmbgp started", Duration::from_secs(60))?;
        let load = started - w.spawned_at;
        let (est, _) = w.wait_log("session established", Duration::from_secs(30))?;
        if name == "empty" {
            r.load_empty = load;
            rx.wait_counts("wasm", &[0], Duration::from_secs(5))?;
            std::thread::sleep(Duration::from_millis(300));
            r.hwm_empty = vm_hwm(w.proc.pid())?;
            w.proc.stop();
            rx.proc.stop();
            continue;
        }
        r.load_1m = load;
        let times = rx.wait_counts("wasm", &[1, n * 99 / 100, n], Duration::from_secs(60))?;
        let (_, sent) = w.wait_log("sent the Adj-RIB-Out", Duration::from_secs(5))?;
        r.w_encode_ms = sent["fields"]["encode_ms"].as_f64().unwrap_or(f64::NAN);
        r.w_bytes = sent["fields"]["bytes"].as_u64().unwrap_or(0);
        r.w_established_to_first = Some(times[0] - est);
        r.w_99 = times[1] - est;
        r.w_100 = times[2] - est;
        r.w_100_receiver_clock = rx.up_at("wasm").map(|u| times[2] - u).unwrap_or(f64::NAN);
        std::thread::sleep(Duration::from_millis(200));
        r.hwm_1m = vm_hwm(w.proc.pid())?;
        r.rss_1m = vm_status(w.proc.pid(), "VmRSS:")?;

        // 4. ctl: M announcements piped into `wasmbgp ctl -`.
        if o.ctl_routes > 0 {
            let lines = std::fs::read(dir.join("ctl.txt")).map_err(|e| e.to_string())?;
            let mut ctl = Proc::spawn(
                "wasmbgp ctl",
                Command::new(&o.wasmbgp)
                    .args(["ctl", "--socket"])
                    .arg(&w.sock)
                    .arg("-")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit()),
            )?;
            let mut stdin = ctl.child.stdin.take().ok_or("no ctl stdin")?;
            let mut stdout = ctl.child.stdout.take().ok_or("no ctl stdout")?;
            let reader = std::thread::spawn(move || {
                let mut buf = String::new();
                let _ = stdout.read_to_string(&mut buf);
                let errors = buf.lines().filter(|l| *l != "ok").count() as u64;
                (now(), buf.lines().count() as u64, errors)
            });
            let t0 = now();
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(&lines);
                drop(stdin);
            });
            let times =
                rx.wait_counts("wasm", &[n + o.ctl_routes as u64], Duration::from_secs(60))?;
            r.ctl_all = times[0] - t0;
            let _ = writer.join();
            let deadline = Instant::now() + Duration::from_secs(30);
            while ctl.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            ctl.stop();
            let (t_answers, answers, errors) = reader.join().map_err(|_| "ctl reader panicked")?;
            r.ctl_answers = t_answers - t0;
            r.ctl_errors = errors + (o.ctl_routes as u64).saturating_sub(answers);
            std::thread::sleep(Duration::from_millis(200));
            r.hwm_after_ctl = vm_hwm(w.proc.pid())?;

            // 4b. Bad input (issue 7): the extended community that once panicked the
            // parser, a line that is not UTF-8, a 100 KB line, then a good command.
            let mut batch = b"announce route 102.0.0.0/24 next-hop self extended-community 0x0\xc3\xa90000000000000\n\
                              announce route \xff\xfe next-hop self\nannounce route "
                .to_vec();
            batch.extend(std::iter::repeat_n(b'7', 100_000));
            batch.extend_from_slice(b"\nannounce route 102.0.1.0/24 next-hop self\n");
            let t0 = now();
            let mut ctl = Command::new(&o.wasmbgp)
                .args(["ctl", "--socket"])
                .arg(&w.sock)
                .arg("-")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("wasmbgp ctl: {e}"))?;
            let mut stdin = ctl.stdin.take().ok_or("no ctl stdin")?;
            let writer = std::thread::spawn(move || stdin.write_all(&batch));
            let out = ctl
                .wait_with_output()
                .map_err(|e| format!("wasmbgp ctl: {e}"))?;
            r.bad_answers = now() - t0;
            let _ = writer.join();
            let answers = String::from_utf8_lossy(&out.stdout);
            let kinds: Vec<bool> = answers.lines().map(|l| l.starts_with("error: ")).collect();
            let delivered = rx
                .wait_counts(
                    "wasm",
                    &[n + o.ctl_routes as u64 + 1],
                    Duration::from_secs(10),
                )
                .is_ok();
            r.bad_as_expected =
                kinds == [true, true, true, false] && out.status.code() == Some(1) && delivered;
        }
        w.proc.stop();
        rx.proc.stop();
    }

    // 5. BIRD static -> BIRD.
    eprintln!(
        "bench: BIRD originator (static, {} routes) -> BIRD",
        o.routes
    );
    let d = dir.join("bird-bird");
    std::fs::create_dir_all(d.join("orig")).map_err(|e| e.to_string())?;
    let (op, rp) = (free_port(o_addr)?, free_port(r2_addr)?);
    let mut rx = Bird::start(
        &o.bird,
        &d.join("recv"),
        "bird receiver",
        &bird_receiver_conf(r2_addr, rp, o_addr, op, 65002, "feed"),
    )?;
    let statics = d.join("orig/static.conf");
    write_lines(&statics, o.routes, |i| {
        format!("route {}/24 unreachable;\n", table_prefix(i))
    })?;
    let oconf = format!(
        "router id {o_addr};\nprotocol device {{}}\nprotocol static orig {{ ipv4;\ninclude \"{}\";\n}}\n\
         protocol bgp feed {{ disabled; local {o_addr} port {op} as 65002; neighbor {r2_addr} port {rp} as 65000; \
         multihop; connect delay time 1; connect retry time 1; debug {{ states }}; ipv4 {{ import none; export all; }}; }}\n",
        statics.display()
    );
    let t_spawn = now();
    let mut orig = Bird::start(&o.bird, &d.join("orig"), "bird originator", &oconf)?;
    let loaded = orig.wait_counts("orig", &[n], Duration::from_secs(120))?;
    r.b_load = loaded[0] - t_spawn;
    orig.ctl.cmd("enable feed")?;
    let times = rx.wait_counts("feed", &[n * 99 / 100, n], Duration::from_secs(60))?;
    let up = orig
        .up_at("feed")
        .ok_or("the originator never logged `feed: State changed to up`")?;
    r.b_99 = times[0] - up;
    r.b_100 = times[1] - up;
    r.b_100_receiver_clock = rx.up_at("feed").map(|u| times[1] - u).unwrap_or(f64::NAN);
    r.b_hwm = vm_hwm(orig.proc.pid())?;
    orig.proc.stop();
    rx.proc.stop();
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Report

fn yes(ok: bool) -> &'static str {
    if ok { "**yes**" } else { "**no**" }
}

fn report(o: &Opts, r: &Results) -> String {
    let n = r.routes as f64;
    let per_route = (r.hwm_1m as f64 - r.hwm_empty as f64) / n;
    let check = median(&r.check_1m);
    let mut s = String::new();
    let rev = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let bird_version = Command::new(&o.bird)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(if o.stdout.is_empty() {
                &o.stderr
            } else {
                &o.stdout
            })
            .trim()
            .to_string()
        })
        .unwrap_or_default();
    let built = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
        .arg(&o.wasmbgp)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let when = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    s += &format!(
        "wasmbgp benchmark — {} IPv4 /24 routes, {} ctl announcements; wasmbgp binary built {built} (HEAD {rev}), {bird_version}, {cpus} CPUs, {when}\n\n",
        r.routes, r.ctl_routes
    );
    s += "| Measure | wasmbgp | BIRD | Target | Met |\n|---|---|---|---|---|\n";
    s += &format!(
        "| Load the {}-route config: `wasmbgp check` wall time (median of {}; empty config: {}) | {} | — | ≤ 1 s | {} |\n",
        r.routes,
        r.check_1m.len(),
        secs(median(&r.check_empty)),
        secs(check),
        yes(check <= 1.0)
    );
    s += &format!(
        "| Daemon start → ready (wasmbgp: \"wasmbgp started\" log line, empty config {}; BIRD: static protocol holds all routes) | {} | {} | ≤ 1 s | {} |\n",
        secs(r.load_empty),
        secs(r.load_1m),
        secs(r.b_load),
        yes(r.load_1m <= 1.0)
    );
    s += &format!(
        "| Established → receiver BIRD holds 99 % | {} | {} | — (BIRD ref. ~0.6 s) | |\n",
        secs(r.w_99),
        secs(r.b_99)
    );
    s += &format!(
        "| Established → receiver BIRD holds 100 % | {} | {} | ≤ 1.0 s (BIRD ref. ~3.6 s) | {} |\n",
        secs(r.w_100),
        secs(r.b_100),
        yes(r.w_100 <= 1.0)
    );
    s += &format!(
        "| Peak RSS (VmHWM), {} routes / empty config | {} / {} | {} (originator) | — | |\n",
        r.routes,
        mib(r.hwm_1m),
        mib(r.hwm_empty),
        mib(r.b_hwm)
    );
    s += &format!(
        "| Peak RSS growth per route | {per_route:.0} B | — | ≤ 100 B | {} |\n",
        yes(per_route <= 100.0)
    );
    if r.ctl_routes > 0 {
        s += &format!(
            "| {} `announce route … next-hop self` into `wasmbgp ctl -` → all at BIRD (ctl answers back: {}; errors: {}) | {} | — | ≤ 0.5 s | {} |\n",
            r.ctl_routes,
            secs(r.ctl_answers),
            r.ctl_errors,
            secs(r.ctl_all),
            yes(r.ctl_all <= 0.5 && r.ctl_errors == 0)
        );
        s += &format!(
            "| `wasmbgp ctl -` batch of bad input (the issue-7 extended community, a line not UTF-8, a 100 KB line) then a good announce → every answer back (3 errors, ok, exit 1, route at BIRD: {}) | {} | — | ≤ 1 s | {} |\n",
            if r.bad_as_expected { "yes" } else { "NO" },
            secs(r.bad_answers),
            yes(r.bad_answers <= 1.0 && r.bad_as_expected)
        );
    }
    s += &format!(
        "\nDetails: Established is the sender's own log line (wasmbgp \"session established\"; the originating BIRD's \
         \"State changed to up\"); measured from the receiver's \"State changed to up\" instead, 100 % took {} (wasmbgp) and {} (BIRD). \
         First route at BIRD {} after Established. wasmbgp encoded the Adj-RIB-Out in {:.1} ms ({:.1} MB of UPDATEs). \
         Current RSS (VmRSS) once all routes were delivered: {}; peak RSS after the ctl announcements: {}. Receiver counts are polled every 20 ms over BIRD's control socket \
         (`show protocols all NAME`), so times carry up to ~20 ms of polling granularity.\n",
        secs(r.w_100_receiver_clock),
        secs(r.b_100_receiver_clock),
        r.w_established_to_first.map(secs).unwrap_or_default(),
        r.w_encode_ms,
        r.w_bytes as f64 / 1e6,
        mib(r.rss_1m),
        mib(r.hwm_after_ctl),
    );
    s
}

mod harness;

use harness::{Birdc, Proc, cli_args, free_port, mib, now, vm_status};

fn main() {
    let o = harness::opts_or_exit("wasmbgp-bench", parse_opts());
    harness::bench_main(
        "wasmbgp-bench",
        "wasmbgp benchmark results",
        "bench/run.sh",
        o.keep,
        o.results.as_deref(),
        |dir| run(&o, dir).map(|r| report(&o, &r)),
    );
}
