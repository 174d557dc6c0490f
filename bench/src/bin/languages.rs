//! wasmbgp per-language plugin benchmark (not a test): the same health check (tcp-check)
//! and the same policy (bogon-filter) written in Rust, Python (componentize-py),
//! JavaScript (componentize-qjs) and C (wasi-libc), measured in process through
//! `wasmbgp_runtime`'s public API; prints one table row per language.
//!
//! Per component: size; compile, cold (`Runtime::check` with a fresh, empty disk cache);
//! cached load (`check` on a new `Runtime` over the filled cache: `.cwasm` deserialize);
//! `start()` -> first verdict (health check) or first answer to a 1-route batch (policy).
//! Health check: `check` p50/p99 (`PluginHandle::status()`, incl. its TCP probe of a local
//! listener). Policy: a 1-route `PolicyClient::evaluate` round trip p50; ns per route of a
//! 4096-route batch (mixed IPv4/IPv6, a quarter of them bogons; the verdicts are checked);
//! memory per instance: PSS growth of this process (/proc/self/smaps_rollup) over N
//! more live instances of the policy, divided by N.
//!
//! Loopback only (127.83.0.10, an ephemeral port), no other process, every loop bounded
//! in count and time, a fresh /tmp/languages.PID (removed unless --keep).

#[path = "../harness.rs"]
#[macro_use]
mod harness;

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use harness::*;
use wasmbgp_runtime::{
    Direction, EventSender, Health, PluginEvent, PluginSpec, PolicySession, Runtime,
    RuntimeOptions, Verdict, World,
};

/// The health checks' target (a listener of this process that accepts and drops).
const TARGET: Ipv4Addr = Ipv4Addr::new(127, 83, 0, 10);
/// The session the policy batches claim to come from (no packet is sent).
const NEIGHBOR: Ipv4Addr = Ipv4Addr::new(127, 83, 0, 2);
/// Routes in a policy batch (the runtime's `MAX_BATCH`: one guest call).
const BATCH: usize = wasmbgp_runtime::MAX_BATCH;
/// Bound on any single wait for a plugin (a start, a verdict, an answer).
const WAIT: Duration = Duration::from_secs(20);

struct Lang {
    key: &'static str,
    label: &'static str,
    check: &'static str,
    policy: &'static str,
}

const LANGS: [Lang; 4] = [
    Lang {
        key: "rust",
        label: "Rust",
        check: "tcp-check",
        policy: "bogon-filter",
    },
    Lang {
        key: "python",
        label: "Python (componentize-py)",
        check: "tcp-check-py",
        policy: "bogon-filter-py",
    },
    Lang {
        key: "js",
        label: "JavaScript (componentize-qjs)",
        check: "tcp-check-js",
        policy: "bogon-filter-js",
    },
    Lang {
        key: "c",
        label: "C (clang, wasi-libc)",
        check: "tcp-check-c",
        policy: "bogon-filter-c",
    },
];

impl Lang {
    fn python(&self) -> bool {
        self.key == "python"
    }
}

struct Opts {
    plugins_dir: PathBuf,
    langs: Vec<&'static Lang>,
    starts: usize,
    calls: usize,
    batches: usize,
    instances: usize,
    keep: bool,
    results: Option<PathBuf>,
}

fn parse_opts() -> Result<Opts> {
    let root = root();
    let mut o = Opts {
        plugins_dir: root.join("target/plugins"),
        langs: LANGS.iter().collect(),
        starts: 50,
        calls: 2000,
        batches: 100,
        instances: 20,
        keep: false,
        results: Some(root.join("bench/results-languages.md")),
    };
    let mut args = cli_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plugins-dir" => o.plugins_dir = args.val("--plugins-dir")?.into(),
            "--languages" => {
                let v = args.val("--languages")?;
                o.langs = Vec::new();
                for k in v.split(',') {
                    let l = LANGS
                        .iter()
                        .find(|l| l.key == k.trim())
                        .ok_or(format!("--languages: unknown {k:?} (rust,python,js,c)"))?;
                    o.langs.push(l);
                }
            }
            "--starts" => o.starts = args.num("--starts")? as usize,
            "--calls" => o.calls = args.num("--calls")? as usize,
            "--batches" => o.batches = args.num("--batches")? as usize,
            "--instances" => o.instances = args.num("--instances")? as usize,
            "--results" => o.results = Some(args.val("--results")?.into()),
            "--no-results" => o.results = None,
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!(
                    "usage: languages [--languages rust,python,js,c] [--starts N (50; Python 20)]\n\
                     \x20   [--calls N (2000 one-route policy calls)] [--batches N (100 of 4096 routes)]\n\
                     \x20   [--instances N (20, memory)] [--plugins-dir DIR]\n\
                     \x20   [--results FILE | --no-results] [--keep]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.langs.is_empty()
        || !(1..=500).contains(&o.starts)
        || !(100..=100_000).contains(&o.calls)
        || !(50..=10_000).contains(&o.batches)
        || !(1..=200).contains(&o.instances)
    {
        bail!(
            "--languages not empty, --starts 1..=500, --calls 100..=100000, --batches 50..=10000, --instances 1..=200"
        );
    }
    let mut missing = Vec::new();
    for l in &o.langs {
        for p in [l.check, l.policy] {
            let f = o.plugins_dir.join(format!("{p}.wasm"));
            if !f.is_file() {
                missing.push(f.display().to_string());
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "missing: {} (run scripts/build-plugins.sh, or bench/run-languages.sh)",
            missing.join(", ")
        );
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Measurements

/// What every component gets: size, compile, cached load and start -> first result.
#[derive(Default)]
struct Load {
    size: u64,
    /// Cold compiles (ms), each into a fresh disk cache.
    compile: Vec<f64>,
    /// Loads from the `.cwasm` disk cache by a new runtime (ms).
    cached: Vec<f64>,
    /// The synchronous `Runtime::start` call (ms; memory-cache hit).
    start_call: Vec<f64>,
    /// `start()` -> first verdict / first answer (ms).
    first: Vec<f64>,
}

#[derive(Default)]
struct CheckRes {
    load: Load,
    calls: u64,
    p50_us: u64,
    p99_us: u64,
}

#[derive(Default)]
struct PolicyRes {
    load: Load,
    /// 1-route `evaluate` round trips (µs, caller's view).
    one_us: Vec<f64>,
    /// The guest call alone for 1 route (driver's `status()` p50, whole µs).
    one_guest_p50_us: u64,
    /// 4096-route batches: ns per route (caller's view).
    route_ns: Vec<f64>,
    /// The guest call alone for a batch (`status()` p50 over the batch plugin's calls, µs).
    batch_guest_p50_us: u64,
    /// Process PSS / RSS growth per extra live instance (bytes), and N.
    pss_per: f64,
    rss_per: f64,
    instances: usize,
}

struct LangRes {
    lang: &'static Lang,
    check: CheckRes,
    policy: PolicyRes,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn new_runtime(cache: &Path) -> Result<Runtime> {
    Runtime::with_options(RuntimeOptions {
        cache_dir: Some(cache.to_path_buf()),
        ..Default::default()
    })
    .map_err(|e| format!("{e:#}"))
}

fn check_spec(o: &Opts, name: &str, file: &str, target: &str, every: Duration) -> PluginSpec {
    let mut s = PluginSpec::new(
        name,
        World::Healthcheck,
        o.plugins_dir.join(format!("{file}.wasm")),
    );
    s.settings = vec![
        ("address".into(), target.into()),
        ("timeout".into(), "200ms".into()),
    ];
    s.grants.tcp = vec![target.into()];
    s.interval = every;
    s.fast_interval = every;
    s.rise = 1;
    s.fall = 1;
    s
}

fn policy_spec(o: &Opts, name: &str, file: &str) -> PluginSpec {
    PluginSpec::new(
        name,
        World::Policy,
        o.plugins_dir.join(format!("{file}.wasm")),
    )
}

/// Size, cold compiles (`cold_runs`, each with a fresh runtime and an empty disk cache),
/// then 5 loads from the filled cache, each by a new runtime. Returns the runtime that
/// filled the cache (its memory cache holds the component) for the rest.
fn load_phase(
    dir: &Path,
    file: &str,
    spec: &PluginSpec,
    cold_runs: usize,
) -> Result<(Load, Runtime)> {
    let mut l = Load {
        size: std::fs::metadata(&spec.component)
            .map(|m| m.len())
            .map_err(|e| format!("{}: {e}", spec.component.display()))?,
        ..Default::default()
    };
    for i in 0..cold_runs {
        let rt = new_runtime(&dir.join(format!("cache-{file}-cold{i}")))?;
        let t = Instant::now();
        rt.check(spec).map_err(|e| format!("{file}: {e:#}"))?;
        l.compile.push(ms(t.elapsed()));
    }
    let cache = dir.join(format!("cache-{file}"));
    let rt = new_runtime(&cache)?;
    rt.check(spec).map_err(|e| format!("{file}: {e:#}"))?; // fills `cache`
    for _ in 0..5 {
        let fresh = new_runtime(&cache)?;
        let t = Instant::now();
        fresh.check(spec).map_err(|e| format!("{file}: {e:#}"))?;
        l.cached.push(ms(t.elapsed()));
    }
    eprintln!(
        "bench: {file}: {} bytes, compile {:?} ms, cached load {:?} ms",
        l.size, l.compile, l.cached
    );
    Ok((l, rt))
}

async fn check_phase(
    o: &Opts,
    rt: &Runtime,
    file: &str,
    target: &str,
    starts: usize,
    res: &mut CheckRes,
) -> Result<()> {
    // start() -> the first event after the lifecycle reports, which must be `Up`.
    for i in 0..starts {
        let (tx, mut rx) = EventSender::channel();
        let s = check_spec(
            o,
            &format!("{file}-s{i}"),
            file,
            target,
            Duration::from_secs(3600),
        );
        let t = Instant::now();
        let h = rt.start(s, tx).map_err(|e| format!("{e:#}"))?;
        res.load.start_call.push(ms(t.elapsed()));
        let ev = tokio::time::timeout(WAIT, async {
            for _ in 0..1000 {
                match rx.recv().await {
                    Some(PluginEvent::Lifecycle { .. }) => continue,
                    other => return other,
                }
            }
            None
        })
        .await;
        let took = t.elapsed();
        h.stop().await;
        match ev {
            Ok(Some(PluginEvent::Health {
                health: Health::Up, ..
            })) => res.load.first.push(ms(took)),
            other => bail!("{file}: first event {:?}", other.map(|e| format!("{e:?}"))),
        }
    }
    // Calls: a check every 2 ms until > 1100 calls (the status window is the last 1024).
    let (tx, mut rx) = EventSender::channel();
    let s = check_spec(
        o,
        &format!("{file}-calls"),
        file,
        target,
        Duration::from_millis(2),
    );
    let h = rt.start(s, tx).map_err(|e| format!("{e:#}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.status().calls < 1100 && Instant::now() < deadline {
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = h.status();
    h.stop().await;
    if st.calls < 1100 || st.last_error.is_some() || st.health != Some(Health::Up) {
        bail!(
            "{file}: {} calls in 60 s, health {:?}, error {:?}",
            st.calls,
            st.health,
            st.last_error
        );
    }
    res.calls = st.calls;
    res.p50_us = st.p50_us;
    res.p99_us = st.p99_us;
    eprintln!(
        "bench: {file}: start -> first verdict p50 {:.3} ms, check p50 {} µs p99 {} µs",
        pct(&res.load.first, 0.5),
        res.p50_us,
        res.p99_us
    );
    Ok(())
}

/// Routes as `PolicyClient::evaluate` takes them, parsed from text. The bench crate does
/// not depend on wasmbgp-bgp (that would change Cargo.lock): the prefix and attribute
/// types (`Prefix`, `PathAttributes`) are inferred from `evaluate`'s signature.
fn parse_routes<'a, P, A>(texts: &[String], attrs: &'a A) -> Result<Vec<(P, &'a A)>>
where
    P: FromStr,
    P::Err: Debug,
{
    texts
        .iter()
        .map(|t| {
            t.parse()
                .map(|p| (p, attrs))
                .map_err(|e| format!("{t}: {e:?}"))
        })
        .collect()
}

/// The batch: route `i` by `i % 8`: 0–4 IPv4 /24s at 20.0.0.0 + i·256; 5 an IPv4 bogon
/// (10/8, 192.168/16, or a /25); 6 an IPv6 /48 in 2a02::/16; 7 an IPv6 bogon
/// (2001:db8::/32, fc00::/7, or a /64). Whether each is a bogon, beside it.
fn batch_texts(n: usize) -> Vec<(String, bool)> {
    (0..n)
        .map(|i| {
            let (hi, lo, alt) = ((i >> 8) & 255, i & 255, (i / 8) % 3);
            match i % 8 {
                0..=4 => (
                    format!("{}/24", Ipv4Addr::from((20u32 << 24) + ((i as u32) << 8))),
                    false,
                ),
                5 => (
                    match alt {
                        0 => format!("10.{hi}.{lo}.0/24"),
                        1 => format!("192.168.{lo}.0/24"),
                        _ => format!("21.{hi}.{lo}.128/25"),
                    },
                    true,
                ),
                6 => (format!("2a02:{i:x}::/48"), false),
                _ => (
                    match alt {
                        0 => format!("2001:db8:{i:x}::/48"),
                        1 => format!("fd00:{i:x}::/48"),
                        _ => format!("2a03:{i:x}::/64"),
                    },
                    true,
                ),
            }
        })
        .collect()
}

async fn policy_phase(
    o: &Opts,
    rt: &Runtime,
    file: &str,
    starts: usize,
    res: &mut PolicyRes,
) -> Result<()> {
    let session = PolicySession {
        neighbor: IpAddr::V4(NEIGHBOR),
        peer_as: 65002,
        local_as: 65001,
    };
    // One attribute set shared by every route (bogon-filter judges prefixes only).
    let attrs = Default::default();
    let one = parse_routes(&["20.1.2.0/24".to_string()], &attrs)?;
    let texts = batch_texts(BATCH);
    let bogon: Vec<bool> = texts.iter().map(|t| t.1).collect();
    let bogons = bogon.iter().filter(|b| **b).count();
    let batch = parse_routes(&texts.into_iter().map(|t| t.0).collect::<Vec<_>>(), &attrs)?;

    // start() -> the first answer to a 1-route batch (Accept).
    for i in 0..starts {
        let (tx, _rx) = EventSender::channel();
        let t = Instant::now();
        let h = rt
            .start(policy_spec(o, &format!("{file}-s{i}"), file), tx)
            .map_err(|e| format!("{e:#}"))?;
        res.load.start_call.push(ms(t.elapsed()));
        let client = h.policy().ok_or("not a policy")?.clone();
        let v = tokio::time::timeout(WAIT, client.evaluate(Direction::Import, session, &one)).await;
        let took = t.elapsed();
        h.stop().await;
        match v {
            Ok(Ok(v)) if v.len() == 1 && v.get(0) == Verdict::Accept => {
                res.load.first.push(ms(took))
            }
            Ok(Ok(v)) => bail!(
                "{file}: 20.1.2.0/24 judged {:?}",
                (0..v.len()).map(|i| v.get(i)).collect::<Vec<_>>()
            ),
            Ok(Err(e)) => bail!("{file}: first batch: {e}"),
            Err(_) => bail!("{file}: no answer to the first batch within {WAIT:?}"),
        }
    }

    // 1-route calls: 100 to warm up, then `o.calls` timed (bounded to 60 s).
    let (tx, _rx) = EventSender::channel();
    let h = rt
        .start(policy_spec(o, &format!("{file}-calls"), file), tx)
        .map_err(|e| format!("{e:#}"))?;
    let client = h.policy().ok_or("not a policy")?.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..100 + o.calls {
        if Instant::now() > deadline {
            break;
        }
        let t = Instant::now();
        let v = tokio::time::timeout(WAIT, client.evaluate(Direction::Import, session, &one))
            .await
            .map_err(|_| format!("{file}: no answer within {WAIT:?}"))?
            .map_err(|e| format!("{file}: {e}"))?;
        let took = t.elapsed();
        if v.len() != 1 || v.get(0) != Verdict::Accept {
            bail!("{file}: 20.1.2.0/24 not accepted");
        }
        if i >= 100 {
            res.one_us.push(took.as_secs_f64() * 1e6);
        }
    }
    let st = h.status();
    h.stop().await;
    if res.one_us.len() < 100 || st.last_error.is_some() {
        bail!(
            "{file}: {} 1-route calls in 60 s, error {:?}",
            res.one_us.len(),
            st.last_error
        );
    }
    res.one_guest_p50_us = st.p50_us;

    // 4096-route batches: 5 to warm up, then `o.batches` timed (bounded to 180 s); each
    // answer checked route by route.
    let (tx, _rx) = EventSender::channel();
    let h = rt
        .start(policy_spec(o, &format!("{file}-batches"), file), tx)
        .map_err(|e| format!("{e:#}"))?;
    let client = h.policy().ok_or("not a policy")?.clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    for i in 0..5 + o.batches {
        if Instant::now() > deadline {
            break;
        }
        let t = Instant::now();
        let v = tokio::time::timeout(WAIT, client.evaluate(Direction::Import, session, &batch))
            .await
            .map_err(|_| format!("{file}: no answer to a batch within {WAIT:?}"))?
            .map_err(|e| format!("{file}: {e}"))?;
        let took = t.elapsed();
        if v.len() != BATCH {
            bail!("{file}: {} verdicts for {BATCH} routes", v.len());
        }
        for (j, b) in bogon.iter().enumerate() {
            let want = if *b { Verdict::Reject } else { Verdict::Accept };
            if v.get(j) != want {
                bail!("{file}: batch route {j}: {:?}, expected {want:?}", v.get(j));
            }
        }
        if i >= 5 {
            res.route_ns.push(took.as_secs_f64() * 1e9 / BATCH as f64);
        }
    }
    let st = h.status();
    h.stop().await;
    if res.route_ns.len() < 50 || st.last_error.is_some() {
        bail!(
            "{file}: {} batches in 180 s, error {:?}",
            res.route_ns.len(),
            st.last_error
        );
    }
    res.batch_guest_p50_us = st.p50_us;
    eprintln!(
        "bench: {file}: start -> first answer p50 {:.3} ms, 1 route p50 {:.1} µs, {BATCH} routes ({bogons} bogons) p50 {:.0} ns/route",
        pct(&res.load.first, 0.5),
        pct(&res.one_us, 0.5),
        pct(&res.route_ns, 0.5)
    );

    // Memory: one warm instance (the component's code paged in), then N more, each
    // having answered one batch; PSS (and RSS) growth of this process / N.
    let (tx, _rx) = EventSender::channel();
    let mut handles = Vec::new();
    let r = async {
        for i in 0..=o.instances {
            let h = rt
                .start(policy_spec(o, &format!("{file}-m{i}"), file), tx.clone())
                .map_err(|e| format!("{e:#}"))?;
            let client = h.policy().ok_or("not a policy")?.clone();
            handles.push(h);
            tokio::time::timeout(WAIT, client.evaluate(Direction::Import, session, &one))
                .await
                .map_err(|_| format!("{file}: instance {i}: no answer within {WAIT:?}"))?
                .map_err(|e| format!("{file}: instance {i}: {e}"))?;
            if i == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                res.pss_per = -(smaps_rollup("Pss:")? as f64);
                res.rss_per = -(smaps_rollup("Rss:")? as f64);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        res.pss_per = (res.pss_per + smaps_rollup("Pss:")? as f64) / o.instances as f64;
        res.rss_per = (res.rss_per + smaps_rollup("Rss:")? as f64) / o.instances as f64;
        res.instances = o.instances;
        Ok::<(), String>(())
    }
    .await;
    for h in handles {
        h.stop().await;
    }
    r?;
    eprintln!(
        "bench: {file}: {} instances: PSS +{:.0} KiB, RSS +{:.0} KiB each",
        o.instances,
        res.pss_per / 1024.0,
        res.rss_per / 1024.0
    );
    Ok(())
}

/// A `kB` line of /proc/self/smaps_rollup, in bytes.
fn smaps_rollup(key: &str) -> Result<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup")
        .map_err(|e| format!("/proc/self/smaps_rollup: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or(format!("no {key} in /proc/self/smaps_rollup"))
}

fn run_lang(
    o: &Opts,
    dir: &Path,
    tokio: &tokio::runtime::Runtime,
    lang: &'static Lang,
    target: &str,
) -> Result<LangRes> {
    let cold = if lang.python() { 1 } else { 3 };
    let starts = if lang.python() {
        o.starts.min(20)
    } else {
        o.starts
    };
    let mut check = CheckRes::default();
    let spec = check_spec(o, lang.check, lang.check, target, Duration::from_secs(3600));
    let (load, rt) = load_phase(dir, lang.check, &spec, cold)?;
    check.load = load;
    tokio.block_on(check_phase(o, &rt, lang.check, target, starts, &mut check))?;
    drop(rt);
    let mut policy = PolicyRes::default();
    let spec = policy_spec(o, lang.policy, lang.policy);
    let (load, rt) = load_phase(dir, lang.policy, &spec, cold)?;
    policy.load = load;
    tokio.block_on(policy_phase(o, &rt, lang.policy, starts, &mut policy))?;
    Ok(LangRes {
        lang,
        check,
        policy,
    })
}

// ---------------------------------------------------------------------------------------
// Report

/// A duration given in ms, in a readable unit.
fn dur(ms: f64) -> String {
    if ms.is_nan() {
        "—".into()
    } else if ms < 1.0 {
        format!("{:.0} µs", ms * 1e3)
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

fn size(b: u64) -> String {
    if b < 1_000_000 {
        format!("{:.1} KB", b as f64 / 1e3)
    } else {
        format!("{:.2} MB", b as f64 / 1e6)
    }
}

fn kib(b: f64) -> String {
    format!("{:.0} KiB", b / 1024.0)
}

/// Instantiate: start() -> first result, minus one warm call (ms).
fn instantiate(first: &[f64], call_ms: f64) -> f64 {
    (median(first) - call_ms).max(0.0)
}

fn list(v: &[f64]) -> String {
    v.iter().map(|x| dur(*x)).collect::<Vec<_>>().join(", ")
}

struct Env {
    rev: String,
    dirty: bool,
    rustc: String,
    load_start: String,
    load_end: String,
    others: f64,
    builds: bool,
    secs: f64,
}

fn report(o: &Opts, res: &[LangRes], env: &Env) -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    let when = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|x| String::from_utf8_lossy(&x.stdout).trim().to_string())
        .unwrap_or_default();
    let mut s = format!(
        "Per-language plugin figures, in process (`wasmbgp_runtime`, wasmtime 48, Cranelift), {when}; \
         HEAD {}{}; {cpus} CPUs ({}), {mem}, Linux {}; {}; load average (1/5/15 min) {} at the start, \
         {} at the end; others' CPU during the run {:.0} % of one CPU{} ({:.0} s).\n\n",
        env.rev,
        if env.dirty {
            " (host/ or Cargo.lock modified)"
        } else {
            ""
        },
        cpu_model(),
        kernel.trim(),
        env.rustc,
        env.load_start,
        env.load_end,
        env.others * 100.0,
        if env.builds {
            ", a rustc/cargo running"
        } else {
            ""
        },
        env.secs,
    );
    s += "| Language | size (check / policy) | compile, cold (check / policy) | cached load (check / policy) \
          | instantiate (check / policy) | health check call p50 / p99 | policy call, 1 route, p50 \
          | per route (4096-route batch, p50) | memory per policy instance (PSS) |\n\
          |---|---|---|---|---|---|---|---|---|\n";
    for r in res {
        let (c, p) = (&r.check, &r.policy);
        let check_ms = c.p50_us as f64 / 1e3;
        let one_ms = pct(&p.one_us, 0.5) / 1e3;
        s += &format!(
            "| {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} µs | {:.1} µs | **{:.0} ns** | **{}** |\n",
            r.lang.label,
            size(c.load.size),
            size(p.load.size),
            dur(median(&c.load.compile)),
            dur(median(&p.load.compile)),
            dur(median(&c.load.cached)),
            dur(median(&p.load.cached)),
            dur(instantiate(&c.load.first, check_ms)),
            dur(instantiate(&p.load.first, one_ms)),
            c.p50_us,
            c.p99_us,
            one_ms * 1e3,
            pct(&p.route_ns, 0.5),
            kib(p.pss_per),
        );
    }
    s += "\nDetails per component (medians unless said; all runs of the cold compile listed):\n\n\
          | Component | compile, cold (runs) | cached load (min–max of 5) | `start()` call | `start()` → first result p50 / p99 (n) | call p50 / p99 | guest call alone p50 | more |\n\
          |---|---|---|---|---|---|---|---|\n";
    for r in res {
        let (c, p) = (&r.check, &r.policy);
        let minmax = |v: &[f64]| {
            format!(
                "{} ({}–{})",
                dur(median(v)),
                dur(pct(v, 0.0)),
                dur(pct(v, 1.0))
            )
        };
        s += &format!(
            "| {} (health check) | {} | {} | {} | {} / {} ({}) | {} / {} µs (last 1024 of {} checks, incl. the TCP probe) | — | — |\n",
            r.lang.check,
            list(&c.load.compile),
            minmax(&c.load.cached),
            dur(median(&c.load.start_call)),
            dur(pct(&c.load.first, 0.5)),
            dur(pct(&c.load.first, 0.99)),
            c.load.first.len(),
            c.p50_us,
            c.p99_us,
            c.calls,
        );
        s += &format!(
            "| {} (policy) | {} | {} | {} | {} / {} ({}) | 1 route: {:.1} / {:.1} µs ({} calls) | 1 route: {} µs; 4096 routes: {} µs ({:.0} ns/route) | 4096 routes: p50 {:.0}, p99 {:.0}, min {:.0} ns/route ({} batches); {} instances: PSS +{} each, RSS +{} each |\n",
            r.lang.policy,
            list(&p.load.compile),
            minmax(&p.load.cached),
            dur(median(&p.load.start_call)),
            dur(pct(&p.load.first, 0.5)),
            dur(pct(&p.load.first, 0.99)),
            p.load.first.len(),
            pct(&p.one_us, 0.5),
            pct(&p.one_us, 0.99),
            p.one_us.len(),
            p.one_guest_p50_us,
            p.batch_guest_p50_us,
            p.batch_guest_p50_us as f64 * 1e3 / BATCH as f64,
            pct(&p.route_ns, 0.5),
            pct(&p.route_ns, 0.99),
            pct(&p.route_ns, 0.0),
            p.route_ns.len(),
            p.instances,
            kib(p.pss_per),
            kib(p.rss_per),
        );
    }
    s += &format!(
        "\nMethod (`bench/src/bin/languages.rs`; one process, a 2-worker tokio runtime, one `Runtime` per component \
         with its own disk cache):\n\n\
         - **size**: the component file in `target/plugins/` (built by `scripts/build-plugins.sh`).\n\
         - **compile, cold**: `Runtime::check` on a new `Runtime` whose disk cache directory is empty: read + hash, \
         Cranelift compile, `.cwasm` written, type-check against the world. Median of 3 runs (Python: 1 run).\n\
         - **cached load**: `Runtime::check` on a new `Runtime` over the filled cache (read + hash of the `.wasm`, \
         `.cwasm` deserialized), median of 5.\n\
         - **instantiate**: `Runtime::start` → first verdict (health check: the first `PluginEvent::Health`, `Up`, \
         interval 1 h so only the first check runs) or → first answer (policy: a 1-route `evaluate`), minus one warm call \
         (the health check's `check` p50, the policy's 1-route p50); median of {} starts ({} for Python), each a fresh \
         plugin on a memory-cache hit. It holds the synchronous `start()` (a memory-cache hit: a `stat` of the \
         file; `instantiate_pre`: the `start()` column above), a new `Store`, instantiation, `init`, the first call's extra cost \
         over a warm one (first touches of memory pages), as in `bench/src/bin/plugins.rs`. A health check's figure also \
         holds tokio's timer granularity, up to 1 ms: its driver's first check waits for a `sleep_until(now)`, which tokio \
         rounds up to its next 1 ms tick. A policy's does not: the first batch is normally queued by the time its driver first \
         polls, and serving it starts the instance at once. So the policy column is the better measure of instantiation \
         itself; the health check column is what an operator waits for a first verdict.\n\
         - **health check call**: one plugin checking every 2 ms until > 1,100 calls, then `PluginHandle::status()` \
         p50/p99 over the last 1,024 calls: wall time of `check` including its host TCP connect probe of a local \
         listener (127.83.0.10, ephemeral port; accepts and drops).\n\
         - **policy call, 1 route**: `PolicyClient::evaluate` of one IPv4 /24 (accepted), as the caller sees it (batch \
         built, queued to the driver task, guest call, verdicts read), p50 of {} calls after 100 warm-up calls; the guest \
         call alone (driver's `status()` p50, whole µs) in the details.\n\
         - **per route**: `evaluate` of {BATCH} routes in one call (`MAX_BATCH`): 5/8 IPv4 /24s, 1/8 IPv6 /48s, 1/8 IPv4 \
         bogons (10/8, 192.168/16, a /25), 1/8 IPv6 bogons (2001:db8::/32, fc00::/7, a /64), one shared attribute set, \
         direction import; wall time / {BATCH}, p50 over {} batches after 5 warm-up ones. Every verdict is checked (the \
         bogons rejected, the rest accepted).\n\
         - **memory per instance**: one policy instance started and answering (its code paged in), then PSS and RSS of \
         this process (`/proc/self/smaps_rollup`); then {} more instances of the same component started, each having \
         answered one 1-route batch; PSS growth / {}. The instances use wasmtime's on-demand allocator: a linear memory \
         costs the pages touched; each instance maps the component's initial memory image copy-on-write, and a page of \
         it that no instance has written is shared by all of them. PSS counts such a page once in all (its size divided \
         among its mappings), RSS once per instance that touched it: PSS is the memory an instance adds, RSS (in the \
         details) overstates it by the shared image pages.\n\n\
         Every wait is bounded (20 s per answer or verdict; 60 s for the call loops, 180 s for the batches). \
         This machine is a shared VM: see the load average and others' CPU above before comparing with other runs.\n",
        o.starts,
        o.starts.min(20),
        o.calls,
        o.batches,
        o.instances,
        o.instances,
    );
    s
}

fn run(o: &Opts, dir: &Path) -> Result<String> {
    let (rev, dirty) = tree_state(sh);
    let rustc = sh(Command::new("rustc").arg("--version"));
    let load_start = load_average();
    let t0 = Instant::now();
    let others = Others::start(&[]);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // A listener that accepts and drops every connection (the health checks' target).
    let std_l = TcpListener::bind((TARGET, 0)).map_err(|e| format!("bind {TARGET}:0: {e}"))?;
    std_l.set_nonblocking(true).map_err(|e| e.to_string())?;
    let target = std_l.local_addr().map_err(|e| e.to_string())?.to_string();
    let acceptor = tokio.spawn(async move {
        let l = tokio::net::TcpListener::from_std(std_l).expect("tokio listener");
        for _ in 0..10_000_000u64 {
            if l.accept().await.is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let mut res = Vec::new();
    let mut failed = None;
    for lang in &o.langs {
        eprintln!("bench: {}", lang.label);
        match run_lang(o, dir, &tokio, lang, &target) {
            Ok(r) => res.push(r),
            Err(e) => {
                failed = Some(format!("{}: {e}", lang.label));
                break;
            }
        }
    }
    acceptor.abort();
    tokio.shutdown_timeout(Duration::from_secs(5));
    if let Some(e) = failed {
        return Err(e);
    }
    let (share, builds) = others.end();
    let env = Env {
        rev,
        dirty,
        rustc,
        load_start,
        load_end: load_average(),
        others: share,
        builds,
        secs: t0.elapsed().as_secs_f64(),
    };
    Ok(report(o, &res, &env))
}

fn main() {
    let o = opts_or_exit("languages", parse_opts());
    bench_main(
        "languages",
        "wasmbgp per-language plugin benchmark results",
        "bench/run-languages.sh",
        o.keep,
        o.results.as_deref(),
        |dir| run(&o, dir),
    );
}
