//! wasmbgp policy benchmark (policy issue, "Must show" 6; not a test): prints a results
//! table.
//!
//! The cost per route of a policy plugin, measured side by side with the same run
//! without policy, in both directions, over the 1M-route table of the main benchmark
//! (route `i` = 20.0.0.0/24 + i·256, non-bogon):
//!
//! - **Export.** wasmbgp with the table as a `[[route-file]]` → a BIRD 2 receiver; no
//!   policy vs `export-policy = ["tagger"]` (community-tagger, Rust: its `prefixes` are
//!   the aligned blocks covering exactly the first half of the table, so it adds
//!   65001:100 to half the routes). Per run: wasmbgp's CPU (utime+stime of the process,
//!   sampled when BIRD holds all routes), spawn → BIRD holds 100 %, peak RSS, the
//!   plugin's calls and p50/p99, and at BIRD the number of routes carrying the community
//!   plus a few sampled with `show route PREFIX all`.
//! - **Import.** A BIRD 2 originator (`protocol static`, the same table, started once)
//!   → wasmbgp; no policy vs `import-policy` = community-tagger (Rust, modifies half),
//!   bogon-filter (Rust, accepts all of this table) and bogon-filter-py (Python, same).
//!   Per run: wasmbgp's CPU when it holds all routes, wasmbgp's Established → `show
//!   neighbors --json` prefixes-received = N (polled over the control socket), peak RSS,
//!   the plugin's figures.
//!
//! Runs of the variants are interleaved (none, policy, none, policy, ...) and the
//! medians reported; Δ per route = (median with policy − median without) / N.
//!
//! Loopback only (127.79.0.1–3, ephemeral ports), a fresh /tmp/wasmbgp-bench-policy.PID,
//! every wait bounded in time and count, every process started here stopped at the end
//! (also on error; PR_SET_PDEATHSIG if this dies).

#[path = "../harness.rs"]
#[macro_use]
mod harness;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::*;

const TARGET_NS: f64 = 100.0;
/// Other processes using more than this share of one CPU during a run make it "busy".
/// Kernel work not charged to a process (softirq, kernel threads such as kdamond) counts
/// as "others": on an idle machine that is 0–15 % during an export run.
const BUSY_SHARE: f64 = 0.25;
const COMMUNITY: &str = "65001:100";
const COMMUNITY_BIRD: &str = "(65001,100)";

struct Opts {
    routes: u32,
    runs: usize,
    python_runs: usize,
    rust_bogon: bool,
    poll: Duration,
    timeout: Duration,
    python_timeout: Duration,
    wasmbgp: PathBuf,
    plugins_dir: PathBuf,
    bird: String,
    keep: bool,
    results: Option<PathBuf>,
    export: bool,
    import: bool,
}

fn parse_opts() -> Result<Opts> {
    let root = root();
    let mut o = Opts {
        routes: 1_000_000,
        runs: 3,
        python_runs: 3,
        rust_bogon: true,
        poll: Duration::from_millis(20),
        timeout: Duration::from_secs(120),
        python_timeout: Duration::from_secs(900),
        wasmbgp: root.join("target/release/wasmbgp"),
        plugins_dir: root.join("target/plugins"),
        bird: "bird".into(),
        keep: false,
        results: Some(root.join("bench/results-policy.md")),
        export: true,
        import: true,
    };
    let mut args = cli_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--routes" => o.routes = args.num("--routes")? as u32,
            "--runs" => o.runs = args.num("--runs")? as usize,
            "--python-runs" => o.python_runs = args.num("--python-runs")? as usize,
            "--no-python" => o.python_runs = 0,
            "--no-rust-bogon" => o.rust_bogon = false,
            "--poll-ms" => o.poll = Duration::from_millis(args.num("--poll-ms")?),
            "--timeout" => o.timeout = Duration::from_secs(args.num("--timeout")?),
            "--python-timeout" => {
                o.python_timeout = Duration::from_secs(args.num("--python-timeout")?)
            }
            "--export-only" => o.import = false,
            "--import-only" => o.export = false,
            "--wasmbgp" => o.wasmbgp = args.val("--wasmbgp")?.into(),
            "--plugins-dir" => o.plugins_dir = args.val("--plugins-dir")?.into(),
            "--bird" => o.bird = args.val("--bird")?,
            "--results" => o.results = Some(args.val("--results")?.into()),
            "--no-results" => o.results = None,
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!(
                    "usage: wasmbgp-bench-policy [--routes N (1000000, even)] [--runs R (3)] [--python-runs P (3) | --no-python]\n\
                     \x20   [--no-rust-bogon] [--export-only | --import-only] [--poll-ms MS (20)] [--timeout S (120)]\n\
                     \x20   [--python-timeout S (900)] [--wasmbgp PATH] [--plugins-dir DIR] [--bird PATH]\n\
                     \x20   [--results FILE | --no-results] [--keep]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.routes < 2 || o.routes > 4_000_000 || !o.routes.is_multiple_of(2) {
        bail!("--routes must be even, 2..=4000000");
    }
    if o.runs == 0 || o.runs > 20 || o.python_runs > 20 {
        bail!("--runs must be 1..=20, --python-runs ..=20");
    }
    if o.poll < Duration::from_millis(5) || o.poll > Duration::from_millis(200) {
        bail!("--poll-ms must be 5..=200");
    }
    if o.timeout.is_zero()
        || o.timeout > Duration::from_secs(3600)
        || o.python_timeout > Duration::from_secs(3600)
    {
        bail!("--timeout / --python-timeout must be 1..=3600");
    }
    if !o.export && !o.import {
        bail!("--export-only and --import-only exclude each other");
    }
    if !o.wasmbgp.is_file() {
        bail!(
            "{} not found: run `cargo build --release -p wasmbgp` first",
            o.wasmbgp.display()
        );
    }
    let mut need = vec!["community-tagger"];
    if o.import && o.rust_bogon {
        need.push("bogon-filter");
    }
    if o.import && o.python_runs > 0 {
        need.push("bogon-filter-py");
    }
    for p in need {
        let f = o.plugins_dir.join(format!("{p}.wasm"));
        if !f.is_file() {
            bail!(
                "{} not found: run scripts/build-plugins.sh first",
                f.display()
            );
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// The table and the tagger's prefixes

/// The fewest aligned prefixes covering exactly routes `0..count` of the table (route
/// `i` is the /24 number `(20 << 16) + i`): the binary decomposition of the range.
fn cover(count: u32) -> Vec<(Ipv4Addr, u8)> {
    let mut start = (20u32 << 16) as u64; // in /24 units
    let mut left = count as u64;
    let mut out = Vec::new();
    while left > 0 {
        let mut k = 0u32; // block of 2^k /24s
        while k < 24 && start.is_multiple_of(1u64 << (k + 1)) && (1u64 << (k + 1)) <= left {
            k += 1;
        }
        out.push((Ipv4Addr::from((start << 8) as u32), (24 - k) as u8));
        start += 1 << k;
        left -= 1 << k;
    }
    out
}

fn cover_text(c: &[(Ipv4Addr, u8)]) -> String {
    c.iter()
        .map(|(a, l)| format!("{a}/{l}"))
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------
// Variants and configs

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    Export,
    Import,
}

#[derive(Clone)]
struct Variant {
    key: &'static str,
    label: String,
    /// Plugin file stem and settings; `None` = no policy.
    plugin: Option<(&'static str, Vec<(String, String)>)>,
    python: bool,
    runs: usize,
    timeout: Duration,
    /// Expected verdicts (accepted unchanged, modified, rejected), for the check.
    expect: Option<(u64, u64, u64)>,
}

fn plugin_block(o: &Opts, name: &str, file: &str, settings: &[(String, String)]) -> String {
    let mut s = format!(
        "[[plugin]]\nname = \"{name}\"\nworld = \"policy\"\ncomponent = \"{}\"\n",
        o.plugins_dir.join(format!("{file}.wasm")).display()
    );
    if !settings.is_empty() {
        s += "[plugin.settings]\n";
        for (k, v) in settings {
            s += &format!("{k} = \"{v}\"\n");
        }
    }
    s += "[plugin.grants]\ndeadline = \"5s\"\nmemory = \"256MiB\"\n";
    s
}

struct Addrs {
    w: Ipv4Addr,
    rx: Ipv4Addr,
    orig: Ipv4Addr,
}

const ADDRS: Addrs = Addrs {
    w: Ipv4Addr::new(127, 79, 0, 1),
    rx: Ipv4Addr::new(127, 79, 0, 2),
    orig: Ipv4Addr::new(127, 79, 0, 3),
};

/// wasmbgp's config: one neighbor, optionally the route file and one policy.
#[allow(clippy::too_many_arguments)]
fn wasmbgp_conf(
    o: &Opts,
    d: &Path,
    listen_port: u16,
    peer: Ipv4Addr,
    peer_port: u16,
    peer_as: u32,
    routes: Option<&Path>,
    policy: Option<(Dir, &Variant)>,
) -> String {
    let mut s = format!(
        "router-id = \"{me}\"\nlocal-as = 65001\nlisten = \"{me}:{listen_port}\"\n[control]\nsocket = \"{sock}\"\n\
         [[neighbor]]\naddress = \"{peer}\"\nport = {peer_port}\npeer-as = {peer_as}\nlocal-address = \"{me}\"\n\
         families = [\"ipv4-unicast\"]\nconnect-retry = \"1s\"\n",
        me = ADDRS.w,
        sock = d.join("wasmbgp.sock").display()
    );
    let mut plugin = String::new();
    if let Some((dir, v)) = policy
        && let Some((file, settings)) = &v.plugin
    {
        s += &format!(
            "{} = [\"{}\"]\n",
            match dir {
                Dir::Export => "export-policy",
                Dir::Import => "import-policy",
            },
            v.key
        );
        plugin = plugin_block(o, v.key, file, settings);
    }
    if let Some(r) = routes {
        s += &format!(
            "[[route-file]]\npath = \"{}\"\nnext-hop = \"self\"\n",
            r.display()
        );
    }
    s + &plugin
}

/// Compiles the policy's component into the cache dir (`wasmbgp check`, bounded to 5
/// minutes), so that runs load it from the on-disk cache instead of compiling it.
fn warm_cache(o: &Opts, conf: &Path, cache: &Path) -> Result<()> {
    let out = conf.with_extension("check.out");
    let file = std::fs::File::create(&out).map_err(|e| e.to_string())?;
    let mut p = Proc::spawn(
        "wasmbgp check",
        Command::new(&o.wasmbgp)
            .arg("check")
            .arg(conf)
            .arg("--cache-dir")
            .arg(cache)
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file),
    )?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Ok(Some(st)) = p.child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            bail!("wasmbgp check {} took more than 5 minutes", conf.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!(
            "wasmbgp check {} failed: {}",
            conf.display(),
            std::fs::read_to_string(&out).unwrap_or_default().trim()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Measurements

#[derive(Clone, Default, Debug)]
struct PluginStats {
    calls: u64,
    p50_us: u64,
    p99_us: u64,
    accepted: u64,
    rejected: u64,
    modified: u64,
    unjudged: u64,
    restarts: u64,
}

#[derive(Clone, Default, Debug)]
struct Run {
    /// utime+stime of wasmbgp when the receiving side held every route.
    cpu: f64,
    /// ... and at Established.
    cpu_at_est: f64,
    spawn_to_est: f64,
    spawn_to_all: f64,
    est_to_99: f64,
    est_to_all: f64,
    hwm: u64,
    plugin: Option<PluginStats>,
    /// Export: the daemon's "export policy applied" log line, ms.
    policy_ms: Option<f64>,
    /// Export: routes at BIRD carrying the community, and whether the samples matched.
    tagged: Option<(u64, bool)>,
    warnings: usize,
    /// Other compilers running when the run started or ended.
    busy: bool,
    /// Import: `show neighbors` polls until all routes were in, and the daemon CPU one
    /// costs (measured after the run).
    polls: u64,
    poll_cpu_us: f64,
    /// Share of one CPU that other processes used during the run.
    others: f64,
}

/// Processes named rustc, cargo or cargo-nextest (someone else's build or tests compete
/// for the CPUs).
fn rustc_running() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .map(|c| matches!(c.trim(), "rustc" | "cargo" | "cargo-nextest"))
                .unwrap_or(false)
        })
        .count()
}

/// CPU seconds the whole machine spent busy (/proc/stat, every CPU, all but idle and iowait).
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(l) = stat.lines().next() else {
        return 0.0;
    };
    let f: Vec<u64> = l
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user)
    let busy: u64 = f
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    busy as f64 / tck
}

/// Everybody else's CPU over a run: the machine's busy time minus wasmbgp's, the BIRD's
/// and this process's.
struct Others {
    t0: Instant,
    busy0: f64,
    me0: f64,
    bird0: f64,
    bird: u32,
}

impl Others {
    fn start(bird: u32) -> Others {
        Others {
            t0: Instant::now(),
            busy0: machine_busy(),
            me0: cpu_seconds(std::process::id()).unwrap_or(0.0),
            bird0: cpu_seconds(bird).unwrap_or(0.0),
            bird,
        }
    }

    /// Share of one CPU the others used since `start`, given wasmbgp's CPU in the window.
    fn share(&self, wasmbgp: f64) -> f64 {
        let busy = machine_busy() - self.busy0;
        let me = cpu_seconds(std::process::id()).unwrap_or(0.0) - self.me0;
        let bird = cpu_seconds(self.bird).unwrap_or(0.0) - self.bird0;
        ((busy - me - bird - wasmbgp) / self.t0.elapsed().as_secs_f64()).max(0.0)
    }
}

/// Polls `count` every `poll` until it reaches each threshold (ascending); returns the
/// epoch time each was first seen and the number of polls. Bounded by `timeout` and a
/// number of polls; `alive` reports a dead process.
fn poll_until(
    thresholds: &[u64],
    poll: Duration,
    timeout: Duration,
    mut count: impl FnMut() -> Result<u64>,
    mut alive: impl FnMut() -> Option<String>,
) -> Result<(Vec<f64>, u64)> {
    let deadline = Instant::now() + timeout;
    let max_polls = timeout.as_millis() as u64 / poll.as_millis().max(1) as u64 + 10;
    let mut seen = vec![None; thresholds.len()];
    let mut last = 0;
    for polls in 1..=max_polls {
        let n = count()?;
        let t = now();
        last = n;
        for (i, th) in thresholds.iter().enumerate() {
            if seen[i].is_none() && n >= *th {
                seen[i] = Some(t);
            }
        }
        if seen.iter().all(Option::is_some) {
            return Ok((seen.into_iter().flatten().collect(), polls));
        }
        if let Some(e) = alive() {
            bail!("{e}");
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(poll);
    }
    bail!(
        "only {last} of {:?} routes after {timeout:?}",
        thresholds.last()
    )
}

fn plugin_stats(ctl: &mut Ctl, name: &str) -> Result<PluginStats> {
    let v = ctl.json("show plugins --json")?;
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["plugins"].as_array().cloned())
        .unwrap_or_default();
    let p = list
        .iter()
        .find(|p| p["name"] == name)
        .ok_or(format!("plugin {name} not in `show plugins --json`: {v}"))?;
    let u = |k: &str| p[k].as_u64().unwrap_or(0);
    Ok(PluginStats {
        calls: u("calls"),
        p50_us: u("p50-us"),
        p99_us: u("p99-us"),
        accepted: u("routes-accepted"),
        rejected: u("routes-rejected"),
        modified: u("routes-modified"),
        unjudged: u("routes-unjudged"),
        restarts: u("restarts"),
    })
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

/// BIRD's answer to `show route PREFIX all` carries the community?
fn bird_has_community(bird: &mut Bird, prefix: Ipv4Addr) -> Result<bool> {
    let r = bird.ctl.cmd(&format!("show route {prefix}/24 all"))?;
    if !r.contains(&format!("{prefix}/24")) {
        bail!("BIRD has no route for {prefix}/24: {}", r.trim());
    }
    Ok(r.lines()
        .any(|l| l.contains("BGP.community") && l.contains(COMMUNITY_BIRD)))
}

/// Routes at BIRD carrying the community (walks the table once).
fn bird_count_community(bird: &mut Bird) -> Result<u64> {
    let r = bird.ctl.cmd(&format!(
        "show route where {COMMUNITY_BIRD} ~ bgp_community count"
    ))?;
    // "0014-1000 of 1000 routes for 1000 networks in table master4"
    for l in r.lines() {
        // Strip the reply code ("0014-" / "0014 "), not the count after it.
        let b = l.as_bytes();
        let l = if b.len() >= 5
            && b[..4].iter().all(u8::is_ascii_digit)
            && (b[4] == b'-' || b[4] == b' ')
        {
            &l[5..]
        } else {
            l
        }
        .trim();
        if l.contains(" of ") && l.contains("routes") {
            return l
                .split_whitespace()
                .next()
                .unwrap_or("")
                .parse()
                .map_err(|e| format!("BIRD count {l:?}: {e}"));
        }
    }
    bail!("no count in BIRD's answer: {}", r.trim())
}

fn export_run(
    o: &Opts,
    dir: &Path,
    v: &Variant,
    idx: usize,
    routes: &Path,
    cache: &Path,
) -> Result<Run> {
    let n = o.routes as u64;
    let d = dir.join(format!("export-{}-{idx}", v.key));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let (mut bird, wp, rp) = start_bird_receiver(&o.bird, &d.join("bird"), ADDRS.rx, ADDRS.w)?;
    let conf = d.join("wasmbgp.toml");
    std::fs::write(
        &conf,
        wasmbgp_conf(
            o,
            &d,
            wp,
            ADDRS.rx,
            rp,
            65000,
            Some(routes),
            Some((Dir::Export, v)),
        ),
    )
    .map_err(|e| e.to_string())?;
    let busy0 = rustc_running() > 0;
    let others = Others::start(bird.proc.pid());
    let mut w = JsonDaemon::start(&o.wasmbgp, &conf, cache, &d.join("wasmbgp.log"))?;
    let (est, _) = w.wait_log("session established", v.timeout)?;
    let (times, _) = poll_until(
        &[n * 99 / 100, n],
        o.poll,
        v.timeout,
        || bird.ctl.imported("wasm"),
        || w.proc.exited().or_else(|| bird.proc.exited()),
    )
    .map_err(|e| format!("export {}: BIRD: {e}", v.key))?;
    let pid = w.proc.pid();
    let cpu = cpu_seconds(pid)?;
    let others = others.share(cpu);
    let mut r = Run {
        cpu,
        others,
        cpu_at_est: f64::NAN,
        spawn_to_est: est - w.spawned_at,
        spawn_to_all: times[1] - w.spawned_at,
        est_to_99: times[0] - est,
        est_to_all: times[1] - est,
        hwm: vm_status(pid, "VmHWM:")?,
        ..Default::default()
    };
    r.policy_ms = w
        .logged("export policy applied to the initial Adj-RIB-Out")
        .and_then(|(_, l)| l["fields"]["ms"].as_f64());
    if v.plugin.is_some() {
        let mut ctl = Ctl::connect(
            &d.join("wasmbgp.sock"),
            Duration::from_secs(5),
            Duration::from_secs(30),
        )?;
        r.plugin = Some(plugin_stats(&mut ctl, v.key)?);
    }
    // The community: half the routes (the first half of the table) with a policy, none without.
    let tagging = v.key == "tagger";
    let mut samples_ok = true;
    for i in [
        0,
        1,
        o.routes / 4,
        o.routes / 2 - 1,
        o.routes / 2,
        o.routes / 2 + 1,
        o.routes * 3 / 4,
        o.routes - 1,
    ] {
        let has = bird_has_community(&mut bird, table_prefix(i))?;
        if has != (tagging && i < o.routes / 2) {
            eprintln!(
                "bench: export {}: {}/24 community {COMMUNITY}: {has}, expected {}",
                v.key,
                table_prefix(i),
                !has
            );
            samples_ok = false;
        }
    }
    r.tagged = Some((bird_count_community(&mut bird)?, samples_ok));
    r.warnings = w.warnings();
    r.busy = busy0 || rustc_running() > 0 || r.others > BUSY_SHARE;
    w.proc.stop();
    bird.proc.stop();
    Ok(r)
}

fn import_run(
    o: &Opts,
    dir: &Path,
    v: &Variant,
    idx: usize,
    orig: &mut Bird,
    orig_port: u16,
    cache: &Path,
) -> Result<Run> {
    let n = o.routes as u64;
    let d = dir.join(format!("import-{}-{idx}", v.key));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let wp = free_port(ADDRS.w)?;
    let conf = d.join("wasmbgp.toml");
    std::fs::write(
        &conf,
        wasmbgp_conf(
            o,
            &d,
            wp,
            ADDRS.orig,
            orig_port,
            65002,
            None,
            Some((Dir::Import, v)),
        ),
    )
    .map_err(|e| e.to_string())?;
    orig.ctl.cmd("enable feed")?;
    let busy0 = rustc_running() > 0;
    let others = Others::start(orig.proc.pid());
    let res = (|| -> Result<Run> {
        let mut w = JsonDaemon::start(&o.wasmbgp, &conf, cache, &d.join("wasmbgp.log"))?;
        let (est, _) = w.wait_log("session established", Duration::from_secs(60))?;
        let pid = w.proc.pid();
        let cpu_at_est = cpu_seconds(pid)?;
        let mut ctl = Ctl::connect(&d.join("wasmbgp.sock"), Duration::from_secs(5), v.timeout)?;
        let mut dead = || w.proc.exited();
        // Each poll also asks the originator something: BIRD 2.0 leaves its last UPDATE
        // of a feed to its next main-loop wake-up (up to its 3 s poll timeout) unless
        // something wakes it; the receiver of the export runs is woken by its own polls.
        let (times, polls) = poll_until(
            &[n * 99 / 100, n],
            o.poll,
            v.timeout,
            || {
                orig.ctl.cmd("show protocols feed")?;
                prefixes_received(&mut ctl)
            },
            &mut dead,
        )
        .map_err(|e| format!("import {}: wasmbgp: {e}", v.key))?;
        let cpu = cpu_seconds(pid)?;
        let others = others.share(cpu);
        let mut r = Run {
            cpu,
            others,
            cpu_at_est,
            spawn_to_est: est - w.spawned_at,
            spawn_to_all: times[1] - w.spawned_at,
            est_to_99: times[0] - est,
            est_to_all: times[1] - est,
            hwm: vm_status(pid, "VmHWM:")?,
            ..Default::default()
        };
        if v.plugin.is_some() {
            r.plugin = Some(plugin_stats(&mut ctl, v.key)?);
        }
        // What the polling cost the daemon: 200 more polls, back to back, now that it is idle.
        r.polls = polls;
        let before = cpu_seconds(pid)?;
        for _ in 0..200 {
            prefixes_received(&mut ctl)?;
        }
        r.poll_cpu_us = (cpu_seconds(pid)? - before) * 1e6 / 200.0;
        r.warnings = w.warnings();
        w.proc.stop();
        Ok(r)
    })();
    // Down before the next run, whatever happened (its routes leave BIRD's export queue).
    let _ = orig.ctl.cmd("disable feed");
    let mut r = res?;
    r.busy = busy0 || rustc_running() > 0 || r.others > BUSY_SHARE;
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Report

struct Outcome {
    dir: Dir,
    variant: Variant,
    runs: Vec<Run>,
    note: Option<String>,
}

fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(&runs.iter().map(f).collect::<Vec<_>>())
}

fn yes(ok: bool) -> &'static str {
    if ok { "**yes**" } else { "**no**" }
}

fn ns(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{x:.0} ns")
    }
}

fn plugin_cell(runs: &[Run]) -> String {
    let ps: Vec<&PluginStats> = runs.iter().filter_map(|r| r.plugin.as_ref()).collect();
    if ps.is_empty() {
        return "—".into();
    }
    let m = |f: &dyn Fn(&PluginStats) -> u64| {
        median(&ps.iter().map(|p| f(p) as f64).collect::<Vec<_>>())
    };
    let (calls, p50, p99) = (m(&|p| p.calls), m(&|p| p.p50_us), m(&|p| p.p99_us));
    let judged = m(&|p| p.accepted + p.rejected + p.modified);
    let per_call = judged / calls.max(1.0);
    format!(
        "{calls:.0} calls ({per_call:.0} routes/call), p50 {p50:.0} µs / p99 {p99:.0} µs per call (p50 ≈ {:.0} ns/route)",
        p50 * 1000.0 / per_call.max(1.0)
    )
}

fn verdict_cell(runs: &[Run]) -> String {
    let Some(p) = runs.iter().rev().find_map(|r| r.plugin.as_ref()) else {
        return "—".into();
    };
    let same = runs
        .iter()
        .filter_map(|r| r.plugin.as_ref())
        .all(|q| (q.accepted, q.modified, q.rejected) == (p.accepted, p.modified, p.rejected));
    format!(
        "{} / {} / {}{}{}",
        p.accepted,
        p.modified,
        p.rejected,
        if p.unjudged > 0 {
            format!(", unjudged {}", p.unjudged)
        } else {
            String::new()
        },
        if same { "" } else { " (varied between runs)" }
    )
}

/// Did the verdicts (and the community at BIRD) come out as intended in every run?
fn correct(oc: &Outcome) -> bool {
    oc.runs.iter().all(|r| {
        let verdicts = match (&oc.variant.expect, &r.plugin) {
            (Some((a, m, j)), Some(p)) => {
                (p.accepted, p.modified, p.rejected, p.unjudged, p.restarts) == (*a, *m, *j, 0, 0)
            }
            (None, None) => true,
            _ => false,
        };
        let tags = match r.tagged {
            Some((count, samples)) => {
                samples
                    && count
                        == match &oc.variant.expect {
                            Some((_, m, _)) => *m,
                            None => 0,
                        }
            }
            None => true,
        };
        verdicts && tags
    })
}

fn header(o: &Opts, busy: bool, others_max: f64) -> String {
    let rev = sh(Command::new("git").args([
        "-C",
        env!("CARGO_MANIFEST_DIR"),
        "rev-parse",
        "--short",
        "HEAD",
    ]));
    let dirty = !sh(Command::new("git").args([
        "-C",
        env!("CARGO_MANIFEST_DIR"),
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_empty();
    let when = sh(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let built = sh(Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
        .arg(&o.wasmbgp));
    let bird = sh(Command::new(&o.bird).arg("--version"));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "wasmbgp policy benchmark — {} IPv4 /24 routes ({}/24 … {}/24); wasmbgp binary built {built} (HEAD {rev}{}), {bird}, {cpus} CPUs, {when}; \
         load average at the end: {}; other processes during the runs (rustc, cargo, or > {:.0} % of a CPU): {}\n\n",
        o.routes,
        table_prefix(0),
        table_prefix(o.routes - 1),
        if dirty {
            ", work tree with uncommitted changes"
        } else {
            ""
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
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

fn report(o: &Opts, outcomes: &[Outcome], tagger_cover: &[(Ipv4Addr, u8)]) -> String {
    let n = o.routes as f64;
    let busy = outcomes.iter().flat_map(|oc| &oc.runs).any(|r| r.busy);
    let others_max = outcomes
        .iter()
        .flat_map(|oc| &oc.runs)
        .map(|r| r.others)
        .fold(0.0, f64::max);
    let mut s = header(o, busy, others_max);
    let per_route = |x: f64, base: f64| (x - base) * 1e9 / n;
    for dir in [Dir::Export, Dir::Import] {
        let ocs: Vec<&Outcome> = outcomes.iter().filter(|oc| oc.dir == dir).collect();
        let Some(base) = ocs.iter().find(|oc| oc.variant.plugin.is_none()) else {
            continue;
        };
        // Export: CPU and time from spawn (the export policy runs on the whole Adj-RIB-Out
        // before the session starts). Import: from Established (the routes arrive after it).
        type Measure = fn(&Run) -> f64;
        let (cpu_of, time_of): (Measure, Measure) = match dir {
            Dir::Export => (|r| r.cpu, |r| r.spawn_to_all),
            Dir::Import => (|r| r.cpu - r.cpu_at_est, |r| r.est_to_all),
        };
        let (b_cpu, b_time, b_total) = (
            med(&base.runs, cpu_of),
            med(&base.runs, time_of),
            med(&base.runs, |r| r.cpu),
        );
        match dir {
            Dir::Export => {
                s += &format!(
                    "### Export: wasmbgp `[[route-file]]` ({} routes) → export policy → BIRD 2 receiver\n\n",
                    o.routes
                );
                s += "| wasmbgp | runs | wasmbgp CPU, spawn → BIRD holds all | Δ CPU per route | spawn → BIRD holds 100 % | Δ time per route | export-policy pass (daemon log) | Established → BIRD holds 100 % | policy calls; time per call | verdicts accepted / modified / rejected | routes at BIRD with 65001:100 | peak RSS | Target | Met (CPU / time) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
            }
            Dir::Import => {
                s += &format!(
                    "\n### Import: BIRD 2 originator (`protocol static`, {} routes) → wasmbgp import policy\n\n",
                    o.routes
                );
                s += "| wasmbgp | runs | wasmbgp CPU, Established → holds all | Δ CPU per route | Established → wasmbgp holds 100 % (`prefixes-received`) | Δ time per route | wasmbgp CPU, spawn → holds all (Δ per route) | Established → 99 % | policy calls; time per call | verdicts accepted / modified / rejected | peak RSS | Target | Met (CPU / time) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
            }
        }
        for oc in &ocs {
            let v = &oc.variant;
            let runs = &oc.runs;
            let note = oc
                .note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            if runs.is_empty() {
                s += &format!("| {}{note} | 0 | | | | | | | | | | | |\n", v.label);
                continue;
            }
            let is_base = v.plugin.is_none();
            let (cpu, time, total) = (med(runs, cpu_of), med(runs, time_of), med(runs, |r| r.cpu));
            let (d_cpu, d_time, d_total) = if is_base {
                (f64::NAN, f64::NAN, f64::NAN)
            } else {
                (
                    per_route(cpu, b_cpu),
                    per_route(time, b_time),
                    per_route(total, b_total),
                )
            };
            let bold = |x: f64| {
                if x.is_nan() {
                    "—".to_string()
                } else {
                    format!("**{}**", ns(x))
                }
            };
            let ok = correct(oc);
            let (target, met) = if is_base {
                (String::new(), String::new())
            } else if v.python {
                ("— (reported)".to_string(), String::new())
            } else {
                (
                    format!("≤ {TARGET_NS:.0} ns per route"),
                    format!(
                        "{} / {}{}",
                        yes(d_cpu <= TARGET_NS && ok),
                        yes(d_time <= TARGET_NS && ok),
                        if ok { "" } else { " (verdicts wrong)" }
                    ),
                )
            };
            let rss = mib(med(runs, |r| r.hwm as f64) as u64);
            match dir {
                Dir::Export => {
                    let pass = median(&runs.iter().filter_map(|r| r.policy_ms).collect::<Vec<_>>());
                    let tags = runs
                        .iter()
                        .rev()
                        .find_map(|r| r.tagged)
                        .map(|(c, ok)| {
                            format!(
                                "{c}{}",
                                if ok {
                                    " (samples ok)"
                                } else {
                                    " (**samples wrong**)"
                                }
                            )
                        })
                        .unwrap_or_default();
                    s += &format!(
                        "| {}{note} | {} | {cpu:.3} s | {} | {time:.3} s | {} | {} | {:.3} s | {} | {} | {tags} | {rss} | {target} | {met} |\n",
                        v.label,
                        runs.len(),
                        bold(d_cpu),
                        bold(d_time),
                        if pass.is_nan() {
                            "—".into()
                        } else {
                            format!("{pass:.0} ms ({:.0} ns per route)", pass * 1e6 / n)
                        },
                        med(runs, |r| r.est_to_all),
                        plugin_cell(runs),
                        verdict_cell(runs),
                    );
                }
                Dir::Import => {
                    s += &format!(
                        "| {}{note} | {} | {cpu:.3} s | {} | {time:.3} s | {} | {total:.3} s{} | {:.3} s | {} | {} | {rss} | {target} | {met} |\n",
                        v.label,
                        runs.len(),
                        bold(d_cpu),
                        bold(d_time),
                        if is_base {
                            String::new()
                        } else {
                            format!(" ({})", ns(d_total))
                        },
                        med(runs, |r| r.est_to_99),
                        plugin_cell(runs),
                        verdict_cell(runs),
                    );
                }
            }
        }
    }
    let import_runs: Vec<&Run> = outcomes
        .iter()
        .filter(|oc| oc.dir == Dir::Import)
        .flat_map(|oc| &oc.runs)
        .collect();
    let poll_note = if import_runs.is_empty() {
        String::new()
    } else {
        let polls: Vec<f64> = import_runs.iter().map(|r| r.polls as f64).collect();
        let cost: Vec<f64> = import_runs.iter().map(|r| r.poll_cpu_us).collect();
        format!(
            " On import each poll costs wasmbgp ≈ {:.0} µs of CPU (median; 200 polls timed after each run, 10 ms ticks) and a run \
             made {:.0}–{:.0} polls, so polling adds at most ≈ {:.0} ns per route to a run's CPU (and less to a Δ: both sides poll).",
            median(&cost),
            pct(&polls, 0.0),
            pct(&polls, 1.0),
            median(&cost) * 1e3 * pct(&polls, 1.0) / n
        )
    };
    s += &format!(
        "\nMedians over the runs; the variants' runs interleaved (no policy, policy, …, repeated), each with a fresh wasmbgp \
         (and, on export, a fresh BIRD receiver; on import one BIRD originator serves every run, its BGP protocol enabled \
         for a run and disabled after it). Δ per route = (median with the policy − median without) / {}. \
         CPU = utime + stime of the wasmbgp process (all its threads; 10 ms ticks, i.e. ±{:.0} ns per route per reading) \
         from /proc/PID/stat, read as soon as the receiving side was seen holding every route; BIRD's CPU is not counted. \
         Export: CPU and times run from spawning wasmbgp, because the export policy judges the whole Adj-RIB-Out before the \
         session starts (so CPU includes loading the {}-route file, the same in both runs, and the plugin's load from the \
         `.cwasm` disk cache, warmed by `wasmbgp check` beforehand, and instantiation); \"export-policy pass\" is the daemon's \
         own \"export policy applied to the initial Adj-RIB-Out\" log line. Import: from wasmbgp's \"session established\" log \
         line and its CPU at that moment (the plugin is loaded and instantiated before), the total from spawn given beside. \
         Counts are polled every {} ms (BIRD: `show protocols all`; wasmbgp: `show neighbors --json` over its control \
         socket), so each time carries up to one poll interval (±{} ns per route). On import every poll also sends the \
         originating BIRD a `show protocols` command: BIRD 2.0.12 otherwise holds the last UPDATE and the End-of-RIB of \
         a feed until its main loop wakes by itself, up to 3 s later (its poll timeout; see bench/README.md).{poll_note} \
         community-tagger's `prefixes` = `{}` ({} aligned blocks covering exactly routes 0 … {} of the table), \
         `communities` = \"{COMMUNITY}\"; at BIRD the routes with the community are counted with \
         `show route where {COMMUNITY_BIRD} ~ bgp_community count`, and 8 routes on both sides of the boundary are checked \
         with `show route PREFIX all`. Plugin grants: deadline 5 s, memory 256 MiB. Time per call = `show plugins --json` \
         p50/p99 (wall time of one call, over the last 1024 calls), ns per route = p50 / (routes judged / calls).\n",
        o.routes,
        1e7 / n,
        o.routes,
        o.poll.as_millis(),
        o.poll.as_nanos() as f64 / n,
        cover_text(tagger_cover),
        tagger_cover.len(),
        o.routes / 2 - 1,
    );
    s += "\n<details><summary>Per run</summary>\n\n| direction | wasmbgp | run | CPU at the end | CPU at Established | spawn → Established | Established → 99 % | Established → 100 % | spawn → 100 % | export-policy pass (log) | calls | p50 / p99 µs | acc / mod / rej / unjudged | peak RSS | polls (CPU each) | WARN/ERROR log lines | others' CPU | busy |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for oc in outcomes {
        for (i, r) in oc.runs.iter().enumerate() {
            let p = r.plugin.clone().unwrap_or_default();
            s += &format!(
                "| {:?} | {} | {} | {:.2} s | {} | {:.3} s | {:.3} s | {:.3} s | {:.3} s | {} | {} | {} / {} | {} / {} / {} / {} | {} | {} | {} | {:.0} % | {} |\n",
                oc.dir,
                oc.variant.key,
                i + 1,
                r.cpu,
                if r.cpu_at_est.is_nan() {
                    "—".into()
                } else {
                    format!("{:.2} s", r.cpu_at_est)
                },
                r.spawn_to_est,
                r.est_to_99,
                r.est_to_all,
                r.spawn_to_all,
                r.policy_ms
                    .map(|m| format!("{m:.0} ms"))
                    .unwrap_or("—".into()),
                p.calls,
                p.p50_us,
                p.p99_us,
                p.accepted,
                p.modified,
                p.rejected,
                p.unjudged,
                mib(r.hwm),
                if r.polls > 0 {
                    format!("{} ({:.0} µs)", r.polls, r.poll_cpu_us)
                } else {
                    "—".into()
                },
                r.warnings,
                r.others * 100.0,
                if r.busy { "yes" } else { "no" }
            );
        }
    }
    s += "\n</details>\n";
    s
}

// ---------------------------------------------------------------------------------------

fn run(o: &Opts, dir: &Path) -> Result<String> {
    let n = o.routes as u64;
    let half = o.routes / 2;
    let tagger_cover = cover(half);
    let tagger = |label: &str| Variant {
        key: "tagger",
        label: label.to_string(),
        plugin: Some((
            "community-tagger",
            vec![
                ("prefixes".into(), cover_text(&tagger_cover)),
                ("communities".into(), COMMUNITY.into()),
            ],
        )),
        python: false,
        runs: o.runs,
        timeout: o.timeout,
        expect: Some((n - half as u64, half as u64, 0)),
    };
    let none = Variant {
        key: "none",
        label: "no policy".into(),
        plugin: None,
        python: false,
        runs: o.runs,
        timeout: o.timeout,
        expect: None,
    };

    eprintln!("bench: generating {} routes in {}", o.routes, dir.display());
    let routes = dir.join("routes.txt");
    write_lines(&routes, o.routes, |i| format!("{}/24\n", table_prefix(i)))?;
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let mut outcomes = Vec::new();

    if o.export {
        let variants = vec![
            none.clone(),
            tagger("`export-policy = [\"tagger\"]` (community-tagger, Rust; modifies half)"),
        ];
        // Compile the component into the cache first (as an operator's `check` would).
        let d = dir.join("export-check");
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        let conf = d.join("wasmbgp.toml");
        std::fs::write(
            &conf,
            wasmbgp_conf(
                o,
                &d,
                179,
                ADDRS.rx,
                179,
                65000,
                Some(&routes),
                Some((Dir::Export, &variants[1])),
            ),
        )
        .map_err(|e| e.to_string())?;
        warm_cache(o, &conf, &cache)?;
        let mut res: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
        for i in 0..o.runs {
            for (k, v) in variants.iter().enumerate() {
                eprintln!("bench: export {} run {}/{}", v.key, i + 1, o.runs);
                let r = export_run(o, dir, v, i, &routes, &cache)?;
                eprintln!(
                    "bench:   CPU {:.2} s, spawn → all {:.3} s (Established → all {:.3} s), calls {:?}, tagged {:?}",
                    r.cpu,
                    r.spawn_to_all,
                    r.est_to_all,
                    r.plugin.as_ref().map(|p| p.calls),
                    r.tagged
                );
                res[k].push(r);
            }
        }
        for (v, runs) in variants.into_iter().zip(res) {
            outcomes.push(Outcome {
                dir: Dir::Export,
                variant: v,
                runs,
                note: None,
            });
        }
    }

    if o.import {
        let mut variants = vec![
            none.clone(),
            tagger("`import-policy = [\"tagger\"]` (community-tagger, Rust; modifies half)"),
        ];
        if o.rust_bogon {
            variants.push(Variant {
                key: "bogons",
                label:
                    "`import-policy = [\"bogons\"]` (bogon-filter, Rust; accepts all of this table)"
                        .into(),
                plugin: Some(("bogon-filter", vec![])),
                python: false,
                runs: o.runs,
                timeout: o.timeout,
                expect: Some((n, 0, 0)),
            });
        }
        if o.python_runs > 0 {
            variants.push(Variant {
                key: "bogons-py",
                label: "`import-policy = [\"bogons-py\"]` (bogon-filter-py, **Python**; accepts all of this table)".into(),
                plugin: Some(("bogon-filter-py", vec![])),
                python: true,
                runs: o.python_runs,
                timeout: o.python_timeout,
                expect: Some((n, 0, 0)),
            });
        }
        let d = dir.join("import-check");
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        for v in variants.iter().filter(|v| v.plugin.is_some()) {
            let conf = d.join(format!("{}.toml", v.key));
            std::fs::write(
                &conf,
                wasmbgp_conf(
                    o,
                    &d,
                    179,
                    ADDRS.orig,
                    179,
                    65002,
                    None,
                    Some((Dir::Import, v)),
                ),
            )
            .map_err(|e| e.to_string())?;
            eprintln!("bench: compiling {} into the cache", v.key);
            warm_cache(o, &conf, &cache)?;
        }

        eprintln!("bench: BIRD originator (static, {} routes)", o.routes);
        let od = dir.join("orig");
        std::fs::create_dir_all(&od).map_err(|e| e.to_string())?;
        let statics = od.join("static.conf");
        write_lines(&statics, o.routes, |i| {
            format!("route {}/24 unreachable;\n", table_prefix(i))
        })?;
        let op = free_port(ADDRS.orig)?;
        // Passive: each run's wasmbgp connects to it; `feed` is enabled for a run and
        // disabled after it.
        let oconf = format!(
            "router id {o_addr};\nprotocol device {{}}\nprotocol static orig {{ ipv4;\ninclude \"{}\";\n}}\n\
             protocol bgp feed {{ disabled; local {o_addr} port {op} as 65002; neighbor {w_addr} as 65001; passive; \
             multihop; hold time 90; error wait time 1, 2; debug {{ states }}; ipv4 {{ import none; export all; }}; }}\n",
            statics.display(),
            o_addr = ADDRS.orig,
            w_addr = ADDRS.w,
        );
        let mut orig = Bird::start_within(
            &o.bird,
            &od,
            "bird originator",
            &oconf,
            Duration::from_secs(180),
        )?;
        orig.wait_imported(
            "orig",
            n,
            Duration::from_millis(50),
            Duration::from_secs(180),
        )?;

        let mut res: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
        let mut notes: Vec<Option<String>> = vec![None; variants.len()];
        for i in 0..o.runs.max(o.python_runs) {
            for (k, v) in variants.iter().enumerate() {
                if i >= v.runs || notes[k].is_some() {
                    continue;
                }
                eprintln!("bench: import {} run {}/{}", v.key, i + 1, v.runs);
                let started = Instant::now();
                let r = import_run(o, dir, v, i, &mut orig, op, &cache)?;
                eprintln!(
                    "bench:   CPU {:.2} s (transfer {:.2} s), Established → all {:.3} s, calls {:?}",
                    r.cpu,
                    r.cpu - r.cpu_at_est,
                    r.est_to_all,
                    r.plugin.as_ref().map(|p| (p.calls, p.p50_us, p.p99_us))
                );
                res[k].push(r);
                // A slow (Python) policy: one run of more than 2 minutes is enough.
                if v.python && started.elapsed() > Duration::from_secs(120) && i + 1 < v.runs {
                    notes[k] = Some(format!(
                        "{} run(s) only: each took more than 2 minutes",
                        i + 1
                    ));
                }
            }
        }
        orig.proc.stop();
        for ((v, runs), note) in variants.into_iter().zip(res).zip(notes) {
            outcomes.push(Outcome {
                dir: Dir::Import,
                variant: v,
                runs,
                note,
            });
        }
    }
    Ok(report(o, &outcomes, &tagger_cover))
}

fn main() {
    let o = opts_or_exit("wasmbgp-bench-policy", parse_opts());
    if rustc_running() > 0 {
        eprintln!(
            "wasmbgp-bench-policy: warning: rustc is running on this machine; timings will be disturbed"
        );
    }
    bench_main(
        "wasmbgp-bench-policy",
        "wasmbgp policy benchmark results",
        "bench/run-policy.sh",
        o.keep,
        o.results.as_deref(),
        |dir| run(&o, dir),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_is_exact_and_aligned() {
        for count in [1u32, 2, 3, 5000, 500_000, 2_000_000] {
            let c = cover(count);
            let total: u64 = c.iter().map(|(_, l)| 1u64 << (24 - l)).sum();
            assert_eq!(total, count as u64);
            for (a, l) in &c {
                let mask = if *l == 0 { 0 } else { u32::MAX << (32 - l) };
                assert_eq!(u32::from(*a) & !mask, 0, "{a}/{l}");
            }
            // Contiguous from the table's first route up to route count-1.
            assert_eq!(c[0].0, table_prefix(0));
            let (a, l) = c.last().unwrap();
            assert_eq!(
                u32::from(*a) + (1u32 << (32 - l)),
                u32::from(table_prefix(count - 1)) + 256
            );
        }
        assert_eq!(
            cover_text(&cover(500_000)),
            "20.0.0.0/6,24.0.0.0/7,26.0.0.0/8,27.0.0.0/9,27.128.0.0/11,27.160.0.0/16,27.161.0.0/19"
        );
    }
}
