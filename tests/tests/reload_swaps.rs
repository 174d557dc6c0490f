//! Reload without dropping anything (issue 10, "Must show" 1, 2 and the swap
//! half of 4), end to end on loopback: one wasmbgp announcing 100,000 routes
//! and a health-checked VIP through an export policy to two neighbors, a
//! real BIRD 2 and a recorder (`peers::recorder`) that counts every UPDATE
//! message. The health check and the policy are swapped 100 times each
//! between two builds of one fixture (`fixture-versioned-*-v1`/`-v2`) with
//! `ctl plugin reload NAME PATH`; then corrupt, truncated and wrong-world
//! components are refused while the running ones keep answering.
//!
//! The contract under test: `plugin reload NAME PATH` keeps the plugin's
//! settings and grants and swaps only the component; it answers
//! `{"ok":true}` once the new instance passed `init` and serves, and
//! `{"ok":false,"error":"... reload refused ..."}` (counted in
//! `wasmbgp_plugin_reloads_total{result="refused"}`) when it cannot.
//!
//! Which version answers is read from the fixtures' own metrics on
//! `show metrics` (`wasmbgp_plugin_fixture_*{plugin,version}`; values live in
//! the host across reloads, see `tests/fixtures/plugins/versioned/`).
//! BIRD is asked through `birdc`, whose failures are errors, never "no route".
//!
//! Blocks 246 (the swaps) and 247 (the recorder against wasmbgp) of
//! `plugin_support::PluginBlock`; 248 and 249 are free for more swap tests.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use wasmbgp_e2e::peers::bird::BirdCounters;
use wasmbgp_e2e::peers::recorder::{Counts, Recorder};
use wasmbgp_e2e::plugin_support::{
    Plugin, PluginBlock, PluginSpeaker, component, plugin_log_lines, same_since, strip_ansi,
    wait_fast,
};
use wasmbgp_e2e::policy_support::{
    PolicyBird, PolicyPlugin, metric_value, slash24, tail, wait_stable,
};
use wasmbgp_e2e::wasmbgp::{Config, NeighborConfig, RouteAttrs, RouteFile};
use wasmbgp_e2e::workdir::WorkDir;

/// The swaps' block: wasmbgp `.1`, BIRD `.2`, the recorder `.3`.
const BLOCK: PluginBlock = PluginBlock(246);
/// The recorder test's block: wasmbgp `.1`, recorders `.3` and `.4`.
const RECORDER_BLOCK: PluginBlock = PluginBlock(247);
/// The recorder's AS (eBGP, like BIRD's).
const RECORDER_AS: u32 = 65003;
/// Routes in the route file.
const ROUTES: u32 = 100_000;
/// Swaps of each plugin.
const SWAPS: usize = 100;
/// The health check's and the policy's names.
const CHECK: &str = "hc";
const POLICY: &str = "vpolicy";
/// The MED the policy sets on every route (so that BIRD shows it ran).
const POLICY_MED: u32 = 246;
/// Routes the policy judges in one pass: the route file and the VIP, for
/// each of the two neighbors (their export tables are judged one by one).
const JUDGED_PER_PASS: f64 = 2.0 * (ROUTES as f64 + 1.0);
/// Polling period while waiting for a swap to show.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// The control socket, spoken directly: one connection for the whole test, so
// that a swap's answer time is the daemon's, and the reply is the JSON
// contract itself (`ok`, `output`, `error`) rather than `wasmbgp ctl`'s
// rendering of it.

/// One reply line of the control socket.
#[derive(Debug)]
struct Reply {
    ok: bool,
    output: String,
    error: String,
}

/// A connection to wasmbgp's control socket.
struct Ctl {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Ctl {
    /// Connects; every answer must come within 60 s.
    fn connect(socket: &Path) -> Result<Self> {
        let writer = UnixStream::connect(socket)
            .with_context(|| format!("cannot connect to {}", socket.display()))?;
        writer.set_read_timeout(Some(Duration::from_secs(60)))?;
        writer.set_write_timeout(Some(Duration::from_secs(10)))?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Self { reader, writer })
    }

    /// Sends one command line and reads its reply.
    fn request(&mut self, command: &str) -> Result<Reply> {
        writeln!(self.writer, "{command}").with_context(|| format!("sending {command:?}"))?;
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .with_context(|| format!("reading the reply to {command:?}"))?;
        ensure!(
            n > 0,
            "the daemon closed the control socket after {command:?}"
        );
        let json: Value = serde_json::from_str(&line)
            .with_context(|| format!("the reply to {command:?} is not JSON: {line:?}"))?;
        let text = |key: &str| json[key].as_str().unwrap_or_default().to_owned();
        Ok(Reply {
            ok: json["ok"]
                .as_bool()
                .with_context(|| format!("no `ok` in the reply to {command:?}: {line}"))?,
            output: text("output"),
            error: text("error"),
        })
    }

    /// A command that must succeed; its output.
    fn ok(&mut self, command: &str) -> Result<String> {
        let reply = self.request(command)?;
        ensure!(reply.ok, "`{command}` failed: {}", reply.error);
        Ok(reply.output)
    }

    /// `show metrics`, with accessors for the fixtures' series.
    fn metrics(&mut self) -> Result<Metrics> {
        Ok(Metrics(self.ok("show metrics")?))
    }
}

/// A `show metrics` exposition.
struct Metrics(String);

impl Metrics {
    /// `wasmbgp_plugin_fixture_NAME{plugin, version}`, 0 when absent (a version
    /// that never ran has no series yet).
    fn fixture(&self, name: &str, plugin: &str, version: Version) -> f64 {
        metric_value(
            &self.0,
            &format!("wasmbgp_plugin_fixture_{name}"),
            &[("plugin", plugin), ("version", version.label())],
        )
        .unwrap_or(0.0)
    }

    /// The health check's count, as the last of either version's checks left it.
    fn check_count(&self) -> f64 {
        Version::BOTH
            .iter()
            .map(|&v| self.fixture("count", CHECK, v))
            .fold(0.0, f64::max)
    }

    /// `wasmbgp_plugin_reloads_total{plugin, result}`, 0 when absent.
    fn reloads(&self, plugin: &str, result: &str) -> f64 {
        metric_value(
            &self.0,
            "wasmbgp_plugin_reloads_total",
            &[("plugin", plugin), ("result", result)],
        )
        .unwrap_or(0.0)
    }
}

/// Which build of a versioned fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    const BOTH: [Version; 2] = [Version::V1, Version::V2];

    /// The fixtures' `version` label.
    fn label(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }

    fn other(self) -> Version {
        match self {
            Version::V1 => Version::V2,
            Version::V2 => Version::V1,
        }
    }
}

// ---------------------------------------------------------------------------
// The rig.

/// The components, copied into the test's directory so that nothing
/// rebuilding `target/plugins` meanwhile (another test's build) touches the
/// files the daemon watches, plus the broken ones.
struct Components {
    check: [PathBuf; 2],
    policy: [PathBuf; 2],
    /// 64 KiB of pseudo-random bytes.
    corrupt: PathBuf,
    /// The first half of `check[1]`.
    truncated_check: PathBuf,
    /// The first half of `policy[1]`.
    truncated_policy: PathBuf,
    /// An exporter: a valid component of the wrong world for both plugins.
    exporter: PathBuf,
}

impl Components {
    fn prepare(dir: &Path) -> Result<Self> {
        let copy = |name: &str| -> Result<PathBuf> {
            let to = dir.join(format!("{name}.wasm"));
            std::fs::copy(component(name)?, &to)
                .with_context(|| format!("cannot copy {name} to {}", to.display()))?;
            Ok(to)
        };
        let check = [
            copy("fixture-versioned-check-v1")?,
            copy("fixture-versioned-check-v2")?,
        ];
        let policy = [
            copy("fixture-versioned-policy-v1")?,
            copy("fixture-versioned-policy-v2")?,
        ];
        let exporter = copy("fixture-exporter")?;
        let corrupt = dir.join("corrupt.wasm");
        std::fs::write(&corrupt, pseudo_random_bytes(64 * 1024))?;
        let truncate = |from: &Path, name: &str| -> Result<PathBuf> {
            let bytes = std::fs::read(from)?;
            let to = dir.join(name);
            std::fs::write(&to, &bytes[..bytes.len() / 2])?;
            Ok(to)
        };
        let truncated_check = truncate(&check[1], "truncated-check.wasm")?;
        let truncated_policy = truncate(&policy[1], "truncated-policy.wasm")?;
        Ok(Self {
            check,
            policy,
            corrupt,
            truncated_check,
            truncated_policy,
            exporter,
        })
    }

    fn check(&self, version: Version) -> &Path {
        &self.check[version as usize]
    }

    fn policy(&self, version: Version) -> &Path {
        &self.policy[version as usize]
    }
}

/// `n` bytes of xorshift output (deterministic, so a failure reproduces).
fn pseudo_random_bytes(n: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The versioned health check (v1 at start): checks every 100 ms, rise and
/// fall 1, owns the VIP.
fn check_plugin(component: &Path, vip: &str) -> Plugin {
    Plugin {
        interval: "100ms".to_owned(),
        on_failure: "keep".to_owned(),
        ..Plugin::healthcheck(CHECK, component.to_path_buf(), vip)
    }
}

/// BIRD, the recorder and wasmbgp, everything announced and settled.
struct Rig {
    test: String,
    vip: String,
    components: Components,
    bird: PolicyBird,
    recorder: Recorder,
    speaker: PluginSpeaker,
    /// Dropped last: kept when the test fails.
    _dir: WorkDir,
}

impl Rig {
    fn start(test: &str) -> Result<Self> {
        let dir = WorkDir::new(test)?;
        let components = Components::prepare(&dir.subdir("components")?)?;
        let (local, bird_addr, recorder_addr) = (BLOCK.addr(1), BLOCK.addr(2), BLOCK.addr(3));
        let bird = PolicyBird::start(
            &dir.subdir("bird")?,
            (bird_addr, BLOCK.port(0)),
            (local, BLOCK.port(1)),
            &[],
            false,
        )?;
        let recorder = Recorder::listen(&BLOCK.sock(3, 2), RECORDER_AS)?;
        let mut config = PluginSpeaker::base_config(local, BLOCK.port(1), bird_addr, BLOCK.port(0));
        config.neighbors.push(NeighborConfig::new(
            recorder_addr,
            BLOCK.port(2),
            RECORDER_AS,
            local,
        ));
        for n in &mut config.neighbors {
            n.export_policy = vec![POLICY.to_owned()];
        }
        let base = Ipv4Addr::new(32, 0, 0, 0);
        config.route_files = vec![RouteFile {
            name: "table.routes".into(),
            lines: (0..ROUTES).map(|i| slash24(base, i)).collect(),
            defaults: RouteAttrs::default(),
        }];
        let vip = BLOCK.vip(1);
        let mut extra = check_plugin(components.check(Version::V1), &vip).render();
        extra.push_str(
            &PolicyPlugin::with_component(POLICY, components.policy(Version::V1).to_path_buf())
                .setting("med", &POLICY_MED.to_string())
                .render(),
        );
        let speaker = PluginSpeaker::start_with(&dir.subdir("wasmbgp")?, &config, &extra)?;
        let rig = Self {
            test: test.to_owned(),
            vip,
            components,
            bird,
            recorder,
            speaker,
            _dir: dir,
        };
        Ok(rig)
    }

    fn step(&self, message: impl std::fmt::Display) {
        wasmbgp_e2e::step(&self.test, message);
    }

    /// The control socket.
    fn ctl(&self) -> Result<Ctl> {
        Ctl::connect(self.speaker.socket())
    }

    /// `(address, state, established-count)` of every wasmbgp neighbor.
    fn neighbors(&self) -> Result<Vec<(String, String, u64)>> {
        self.speaker
            .neighbors()?
            .iter()
            .map(|n| {
                Ok((
                    n["address"]
                        .as_str()
                        .context("neighbor without address")?
                        .to_owned(),
                    n["state"].as_str().unwrap_or_default().to_owned(),
                    n["established-count"].as_u64().unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// Both sessions Established once and never again.
    fn assert_sessions_once(&self) -> Result<()> {
        let neighbors = self.neighbors()?;
        ensure!(neighbors.len() == 2, "neighbors: {neighbors:?}");
        for (address, state, count) in &neighbors {
            ensure!(
                state == "established" && *count == 1,
                "wasmbgp's session to {address}: {state}, established {count} times"
            );
        }
        Ok(())
    }

    fn dump(&self) {
        eprintln!(
            "[{}] --- BIRD log tail ---\n{}",
            self.test,
            tail(&self.bird.log(), 30)
        );
        eprintln!(
            "[{}] --- wasmbgp log tail ---\n{}",
            self.test,
            tail(&strip_ansi(&self.speaker.log()), 80)
        );
        eprintln!(
            "[{}] recorder: {:?}; errors {:?}; notifications {:?}",
            self.test,
            self.recorder.counts(),
            self.recorder.errors(),
            self.recorder.notifications()
        );
    }
}

/// What must not move while plugins are swapped.
#[derive(Debug, Clone)]
struct Wire {
    /// BIRD's session: state and `since`.
    bird_session: (String, String),
    /// BIRD's route counters.
    bird_counters: BirdCounters,
    /// The recorder's counters, KEEPALIVEs left out (wasmbgp sends one every
    /// 10 s whatever else happens).
    recorder: Counts,
}

impl Wire {
    fn read(rig: &Rig) -> Result<Self> {
        Ok(Self {
            bird_session: rig.bird.session()?,
            bird_counters: rig.bird.counters()?,
            recorder: Self::recorder_counts(&rig.recorder),
        })
    }

    fn recorder_counts(recorder: &Recorder) -> Counts {
        Counts {
            keepalives: 0,
            ..recorder.counts()
        }
    }

    /// Once the counters stopped moving for a second: after a table went
    /// out, before comparing. (BIRD's `since` is read after, not compared
    /// here: it jitters between queries.)
    fn settled(rig: &Rig) -> Result<Self> {
        let (bird_counters, recorder) = wait_stable(
            "BIRD's and the recorder's counters",
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(20),
            || Ok((rig.bird.counters()?, Self::recorder_counts(&rig.recorder))),
        )?;
        Ok(Self {
            bird_session: rig.bird.session()?,
            bird_counters,
            recorder,
        })
    }

    /// Whether nothing moved since `before` (BIRD's `since` may jitter by
    /// milliseconds between queries: see `same_since`).
    fn unchanged_since(&self, before: &Wire) -> bool {
        self.bird_session.0 == before.bird_session.0
            && same_since(&self.bird_session.1, &before.bird_session.1)
            && self.bird_counters == before.bird_counters
            && self.recorder == before.recorder
    }
}

// ---------------------------------------------------------------------------
// Swaps.

/// Timings of one kind of swap.
#[derive(Default)]
struct Timings(Vec<Duration>);

impl Timings {
    fn summary(&self) -> String {
        let mut sorted = self.0.clone();
        sorted.sort();
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        format!("p50 {:?}, p90 {:?}, max {:?}", at(0.5), at(0.9), at(1.0))
    }
}

/// `plugin reload PLUGIN PATH`, swapping `plugin` to version `to` (its component
/// at `path`), which must be accepted; the reply comes once the new instance passed
/// init, so `to` must have passed init exactly once more than `before` (the metrics
/// before the swap) says. Returns when the request went out, the time to the reply
/// and the metrics after it.
fn swap(
    ctl: &mut Ctl,
    plugin: &str,
    path: &Path,
    to: Version,
    before: &Metrics,
) -> Result<(Instant, Duration, Metrics)> {
    let inits_before = before.fixture("inits_total", plugin, to);
    let started = Instant::now();
    let reply = ctl.request(&format!("plugin reload {plugin} {}", path.display()))?;
    let replied = started.elapsed();
    ensure!(
        reply.ok,
        "swapping {plugin} to {} was refused: {}",
        to.label(),
        reply.error
    );
    let after = ctl.metrics()?;
    let inits = after.fixture("inits_total", plugin, to);
    ensure!(
        inits == inits_before + 1.0,
        "{plugin} {} passed init {} times for one swap",
        to.label(),
        inits - inits_before
    );
    Ok((started, replied, after))
}

/// Swaps the health check to `to` and waits for `to` to check; returns the
/// times to the reply and to the first check by `to`.
fn swap_check(rig: &Rig, ctl: &mut Ctl, to: Version) -> Result<(Duration, Duration)> {
    let before = ctl.metrics()?;
    let count_before = before.check_count();
    // The reply comes once the new instance passed init: it has, once, and it
    // found the count its predecessor left in the state store.
    let (started, replied, after) = swap(ctl, CHECK, rig.components.check(to), to, &before)?;
    let init_count = after.fixture("init_count", CHECK, to);
    ensure!(
        init_count >= count_before,
        "{CHECK} {} started from count {init_count}, below the {count_before} checks before the swap: the state was not carried over",
        to.label()
    );
    let mut seen = 0.0;
    wait_fast(
        &format!("{CHECK} {} to check", to.label()),
        POLL,
        Duration::from_secs(5),
        || {
            seen = ctl.metrics()?.fixture("count", CHECK, to);
            Ok(seen > count_before)
        },
    )
    .with_context(|| {
        format!(
            "count {count_before} before the swap, {seen} after {}'s last check",
            to.label()
        )
    })?;
    Ok((replied, started.elapsed()))
}

/// Waits until `version` of the policy has judged every route once more
/// than `before` says (a reload, or `policy reevaluate`, judges the whole
/// export table of each neighbor), and exactly once.
fn await_judged(ctl: &mut Ctl, version: Version, before: &Metrics) -> Result<()> {
    let routes_before = before.fixture("routes_total", POLICY, version);
    let mut judged = 0.0;
    wait_fast(
        &format!("{POLICY} {} to judge every route", version.label()),
        POLL,
        Duration::from_secs(20),
        || {
            judged = ctl.metrics()?.fixture("routes_total", POLICY, version) - routes_before;
            Ok(judged >= JUDGED_PER_PASS)
        },
    )
    .with_context(|| format!("{judged} routes judged"))?;
    ensure!(
        judged == JUDGED_PER_PASS,
        "{POLICY} {} judged {judged} routes, expected {JUDGED_PER_PASS}",
        version.label()
    );
    Ok(())
}

/// Swaps the policy to `to` and waits for `to` to judge the routes again;
/// returns the times to the reply and until `to` judged every route.
fn swap_policy(rig: &Rig, ctl: &mut Ctl, to: Version) -> Result<(Duration, Duration)> {
    let before = ctl.metrics()?;
    let (started, replied, _) = swap(ctl, POLICY, rig.components.policy(to), to, &before)?;
    // A reloaded policy judges every route again (only differences would
    // reach the wire): the new version does, all of them.
    await_judged(ctl, to, &before)?;
    Ok((replied, started.elapsed()))
}

/// Asks `plugin reload NAME PATH` with a component that must be refused;
/// checks the refusal (it names the file and says `reason`) and that
/// `running` (the version in place) still answers. Returns the error text.
fn refuse(
    ctl: &mut Ctl,
    plugin: &str,
    path: &Path,
    reason: &str,
    running: Version,
) -> Result<String> {
    let before = ctl.metrics()?;
    let reply = ctl.request(&format!("plugin reload {plugin} {}", path.display()))?;
    ensure!(
        !reply.ok,
        "{plugin}: reloading {} was accepted: {:?}",
        path.display(),
        reply.output
    );
    ensure!(
        reply.error.contains("reload refused")
            && reply.error.contains(&path.display().to_string())
            && reply.error.contains(reason),
        "{plugin}: the refusal does not say `reload refused`, name {} and say {reason:?}: {}",
        path.display(),
        reply.error
    );
    // No instance took over: neither version passed init.
    let after = ctl.metrics()?;
    for v in Version::BOTH {
        ensure!(
            after.fixture("inits_total", plugin, v) == before.fixture("inits_total", plugin, v),
            "{plugin}: {} was started by a refused reload",
            v.label()
        );
    }
    // The running version keeps answering.
    if plugin == CHECK {
        let count_before = before.check_count();
        wait_fast(
            &format!("{CHECK} {} to keep checking", running.label()),
            POLL,
            Duration::from_secs(5),
            || Ok(ctl.metrics()?.fixture("count", CHECK, running) > count_before),
        )?;
    } else {
        ctl.ok(&format!("policy reevaluate {plugin}"))?;
        await_judged(ctl, running, &before)?;
    }
    Ok(reply.error)
}

/// "Must show" 1, 2 and the swap half of 4: 100 swaps each of a health check
/// and of an export policy under 100,000 routes leave both sessions and
/// every route untouched (BIRD's counters and `since` unchanged, not one
/// UPDATE at the recorder), each new version answers at once with the
/// state its predecessor left; broken and wrong-world components are
/// refused, counted and logged while the running version keeps answering.
#[test]
fn reload_swaps_keep_the_wire_quiet() {
    let test = "reload-swaps";
    let started = Instant::now();
    let rig = Rig::start(test).expect("rig");
    if let Err(e) = swaps(&rig) {
        rig.dump();
        panic!("[{test}] {e:#}");
    }
    rig.step(format!("passed after {:?}", started.elapsed()));
}

fn swaps(rig: &Rig) -> Result<()> {
    let total = u64::from(ROUTES) + 1; // and the VIP
    // 1. Everything announced, to both neighbors, through the policy.
    let took = wait_fast(
        "BIRD and the recorder to hold every route",
        Duration::from_millis(250),
        Duration::from_secs(60),
        || Ok(rig.recorder.table_len() as u64 == total && rig.bird.count(None)? == total),
    )?;
    // The table is in; the counters must stop moving before they are compared.
    let before = Wire::settled(rig)?;
    rig.step(format!(
        "{total} routes at BIRD and the recorder after {took:?}; {before:?}"
    ));
    ensure!(
        before.bird_session.0.starts_with("Established"),
        "BIRD: {:?}",
        before.bird_session
    );
    ensure!(
        before.recorder.opens == 1 && before.recorder.notifications == 0,
        "recorder: {:?}",
        before.recorder
    );
    ensure!(
        before.bird_counters.import_updates == total && before.bird_counters.import_withdraws == 0,
        "BIRD counted {:?} for {total} routes",
        before.bird_counters
    );
    for prefix in [&rig.vip, &slash24(Ipv4Addr::new(32, 0, 0, 0), ROUTES - 1)] {
        let med = rig.bird.route(prefix)?.and_then(|r| r.med);
        ensure!(med == Some(POLICY_MED), "{prefix} at BIRD: MED {med:?}");
        let med = rig.recorder.med_of(prefix)?;
        ensure!(
            med == Some(POLICY_MED),
            "{prefix} at the recorder: MED {med:?}"
        );
    }
    rig.assert_sessions_once()?;

    // 2. 100 swaps of each, alternating v1 → v2 → v1 ...
    let mut ctl = rig.ctl()?;
    let reloads_before = ctl.metrics()?;
    let (mut check_reply, mut check_first) = (Timings::default(), Timings::default());
    let (mut policy_reply, mut policy_first) = (Timings::default(), Timings::default());
    let mut version = Version::V1;
    let mut counts = vec![ctl.metrics()?.check_count()];
    let swapping = Instant::now();
    for round in 0..SWAPS {
        let to = version.other();
        let (reply, first) = swap_check(rig, &mut ctl, to)
            .with_context(|| format!("health-check swap {} to {}", round + 1, to.label()))?;
        check_reply.0.push(reply);
        check_first.0.push(first);
        let (reply, first) = swap_policy(rig, &mut ctl, to)
            .with_context(|| format!("policy swap {} to {}", round + 1, to.label()))?;
        policy_reply.0.push(reply);
        policy_first.0.push(first);
        version = to;
        counts.push(ctl.metrics()?.check_count());
        // Checked as we go, so that a failure names the swap that caused it.
        let now = Wire::read(rig)?;
        ensure!(
            now.unchanged_since(&before),
            "after swap {}: {now:?}, before the swaps {before:?}",
            round + 1
        );
    }
    rig.step(format!(
        "{SWAPS} swaps of each in {:?}; health check: reply {}, first check by the new version {}; policy: reply {}, every route judged by the new version {}",
        swapping.elapsed(),
        check_reply.summary(),
        check_first.summary(),
        policy_reply.summary(),
        policy_first.summary()
    ));
    ensure!(
        counts.windows(2).all(|w| w[1] > w[0]),
        "the check count went backwards across a swap: {counts:?}"
    );

    // 3. Refusals: the running version (`version`) keeps answering.
    // (plugin, component, what it is, what the refusal must say)
    let components = &rig.components;
    let cases: [(&str, &Path, &str, &str); 6] = [
        (
            CHECK,
            &components.corrupt,
            "random bytes",
            "not a WebAssembly component",
        ),
        (
            CHECK,
            &components.truncated_check,
            "a truncated component",
            "compiling component",
        ),
        (
            CHECK,
            &components.exporter,
            "an exporter",
            "not a healthcheck plugin",
        ),
        (
            CHECK,
            components.policy(Version::V2),
            "a policy",
            "not a healthcheck plugin",
        ),
        (
            POLICY,
            &components.truncated_policy,
            "a truncated component",
            "compiling component",
        ),
        (
            POLICY,
            components.check(Version::V2),
            "a health check",
            "not a policy plugin",
        ),
    ];
    for (plugin, path, what, reason) in cases {
        let error = refuse(&mut ctl, plugin, path, reason, version)
            .with_context(|| format!("{plugin} given {what}"))?;
        rig.step(format!("{plugin} given {what}: {error}"));
    }
    let metrics = ctl.metrics()?;
    for (plugin, refused) in [(CHECK, 4.0), (POLICY, 2.0)] {
        let counted =
            metrics.reloads(plugin, "refused") - reloads_before.reloads(plugin, "refused");
        ensure!(
            counted == refused,
            "wasmbgp_plugin_reloads_total{{plugin=\"{plugin}\",result=\"refused\"}} moved by {counted}, expected {refused}"
        );
        let swapped = metrics.reloads(plugin, "ok") - reloads_before.reloads(plugin, "ok");
        ensure!(
            swapped == SWAPS as f64,
            "wasmbgp_plugin_reloads_total{{plugin=\"{plugin}\",result=\"ok\"}} moved by {swapped}, expected {SWAPS}"
        );
        let logged = plugin_log_lines(&rig.speaker.log(), plugin, "refused").len();
        ensure!(
            logged >= refused as usize,
            "the daemon log has {logged} refusals of {plugin}, expected {refused}"
        );
    }

    // 4. Nothing reached the wire, nothing reset.
    let after = Wire::settled(rig)?;
    ensure!(
        after.unchanged_since(&before),
        "after the swaps and refusals: {after:?}, before {before:?}"
    );
    let errors = rig.recorder.errors();
    ensure!(errors.is_empty(), "the recorder's session: {errors:?}");
    rig.assert_sessions_once()?;
    ensure!(
        rig.bird.count(None)? == total,
        "BIRD holds {} routes",
        rig.bird.count(None)?
    );
    let vip = rig.bird.route(&rig.vip)?;
    ensure!(
        vip.as_ref().and_then(|r| r.med) == Some(POLICY_MED),
        "the VIP at BIRD: {vip:?}"
    );
    for status in [rig.speaker.plugin(CHECK)?, rig.speaker.plugin(POLICY)?] {
        ensure!(
            status.state == "running" && status.restarts == 0 && status.routes_unjudged == 0,
            "{}",
            status.raw
        );
    }
    ensure!(
        rig.speaker.plugin(CHECK)?.health.as_deref() == Some("up"),
        "{}",
        rig.speaker.plugin(CHECK)?.raw
    );
    rig.step(format!(
        "after {SWAPS} swaps each and 6 refusals: BIRD {:?} since {}, recorder {:?}",
        after.bird_counters, after.bird_session.1, after.recorder
    ));
    Ok(())
}

// ---------------------------------------------------------------------------
// The recorder itself, against wasmbgp.

/// The recorder, listening for an active wasmbgp neighbor and connecting to
/// a passive one, records exactly what wasmbgp sends: the config routes of
/// both families with their MED, End-of-RIB per family, then one UPDATE per
/// `ctl announce` and `ctl withdraw`.
#[test]
fn reload_recorder_sees_what_wasmbgp_sends() {
    let test = "reload-recorder";
    let dir = WorkDir::new(test).expect("workdir");
    let block = RECORDER_BLOCK;
    let local = block.addr(1);
    let listening = Recorder::listen(&block.sock(3, 2), RECORDER_AS).expect("recorder");
    let connecting = Recorder::connect(
        IpAddr::V4(block.addr(4)),
        &block.sock(1, 1),
        RECORDER_AS + 1,
    )
    .expect("recorder");
    let mut active = NeighborConfig::new(block.addr(3), block.port(2), RECORDER_AS, local);
    let mut passive = NeighborConfig::new(block.addr(4), block.port(3), RECORDER_AS + 1, local);
    passive.passive = true;
    for n in [&mut active, &mut passive] {
        n.families.push("ipv6-unicast".to_owned());
    }
    let route = |prefix: &str, med: Option<u32>| {
        (
            prefix.to_owned(),
            RouteAttrs {
                med,
                ..RouteAttrs::default()
            },
        )
    };
    let config = Config {
        router_id: local.to_string(),
        local_as: wasmbgp_e2e::plugin_support::WASMBGP_AS,
        listen: Some(block.sock(1, 1)),
        neighbors: vec![active, passive],
        routes: vec![
            route("198.51.100.0/24", Some(10)),
            route("198.51.101.0/24", None),
            route("203.0.113.0/24", Some(30)),
            route("2001:db8:1::/48", Some(40)),
            route("2001:db8:2::/48", None),
        ],
        route_files: Vec::new(),
    };
    let speaker = PluginSpeaker::start_with(&dir.subdir("wasmbgp").expect("dir"), &config, "")
        .expect("wasmbgp");
    let result = (|| -> Result<()> {
        let recorders = [("listening", &listening), ("connecting", &connecting)];
        for (name, r) in recorders {
            wait_fast(
                &format!("the {name} recorder to hold the config routes"),
                Duration::from_millis(50),
                Duration::from_secs(30),
                || Ok(r.table_len() == 5 && r.counts().end_of_ribs == 2),
            )
            .with_context(|| format!("{name}: {:?}, errors {:?}", r.counts(), r.errors()))?;
            let c = r.counts();
            ensure!(
                c.opens == 1 && c.announced == 5 && c.withdrawn == 0 && c.notifications == 0,
                "{name}: {c:?}"
            );
            ensure!(r.med_of("198.51.100.0/24")? == Some(10), "{name}: MED");
            ensure!(r.med_of("2001:db8:1::/48")? == Some(40), "{name}: MED");
            ensure!(r.med_of("198.51.101.0/24")?.is_none(), "{name}: MED");
            r.reset_counts();
        }
        speaker.ctl(&[
            "announce",
            "route",
            "192.0.2.0/24",
            "next-hop",
            "self",
            "med",
            "7",
        ])?;
        for (name, r) in recorders {
            wait_fast(
                &format!("the {name} recorder to see the ctl announcement"),
                Duration::from_millis(50),
                Duration::from_secs(10),
                || Ok(r.med_of("192.0.2.0/24")? == Some(7)),
            )?;
        }
        speaker.ctl(&["withdraw", "route", "192.0.2.0/24"])?;
        for (name, r) in recorders {
            wait_fast(
                &format!("the {name} recorder to see the ctl withdrawal"),
                Duration::from_millis(50),
                Duration::from_secs(10),
                || Ok(r.withdrawals_of("192.0.2.0/24")? == 1),
            )?;
            // A moment for anything else wasmbgp might send.
            std::thread::sleep(Duration::from_millis(300));
            let c = r.counts();
            ensure!(
                c == Counts {
                    updates: 2,
                    announced: 1,
                    withdrawn: 1,
                    keepalives: c.keepalives,
                    ..Counts::default()
                },
                "{name}: {c:?}"
            );
            ensure!(r.table_len() == 5, "{name}: {} prefixes", r.table_len());
            ensure!(r.errors().is_empty(), "{name}: {:?}", r.errors());
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!(
            "[{test}] --- wasmbgp log tail ---\n{}",
            tail(&speaker.log(), 60)
        );
        for r in [&listening, &connecting] {
            eprintln!("[{test}] recorder {:?}: {:?}", r.counts(), r.errors());
        }
        panic!("[{test}] {e:#}");
    }
    wasmbgp_e2e::step(test, "both recorders saw exactly what wasmbgp sent");
    drop(speaker);
}
