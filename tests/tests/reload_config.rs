//! Config reload end to end against a real BIRD 2 on loopback (block 250): `wasmbgp ctl
//! reload` and SIGHUP apply only the difference between the running config and the
//! file, and refuse a file that fails `wasmbgp check` (or changes what needs a restart)
//! without touching anything.
//!
//! One BIRD has a passive `protocol bgp` per wasmbgp neighbor (`n1`..`n4` on
//! `127.0.250.2`..`.5`, ports 12500..12503), so every session, UPDATE and NOTIFICATION
//! it sees is wasmbgp's doing. wasmbgp (`127.0.250.1`) starts with `n1`..`n3`, static
//! routes (some to one neighbor only) and a health check (`fixture-faulty` in `counter`
//! mode, which counts its checks in its `state` store) announcing a VIP. Then:
//!
//! 1. a reload (`ctl reload --json`) adds `n4`, changes one route's MED toward `n2`
//!    only, `n1`'s description and the health check's interval and settings: the
//!    summary says exactly that (the health check is swapped: new settings, new
//!    instance), `n4` comes up with its routes, `n2`'s BIRD counts exactly one more
//!    update (the new MED), `n1` and `n3` see nothing (same session, same counters),
//!    and the health check's count goes on from where it was (state carried over);
//! 2. a file with a bad prefix is refused by `ctl reload` and by SIGHUP, and a change of
//!    `local-as` by `ctl reload`, each with `FILE:LINE:COL` (the bad prefix: the same
//!    diagnostic as `wasmbgp check`) in the answer and the log; a reload of the running
//!    config changes nothing; no session or counter moves;
//! 3. SIGHUP with `n3` removed: BIRD's `n3` receives Cease/Peer De-configured and loses
//!    its routes, the others see nothing;
//! 4. `wasmbgp_config_reloads_total` counts 3 reloads `ok` and 3 `refused`;
//! 5. a change of `n4`'s hold time resets `n4` only: BIRD reads Cease/Other
//!    Configuration Change, then a new session brings its routes back.
//!
//! BIRD is asked through `birdc`, whose failures are errors; every wait is bounded.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use wasmbgp_e2e::peers::bird::BirdCounters;
use wasmbgp_e2e::plugin_support::{BIRD_AS, Plugin, PluginSpeaker, WASMBGP_AS, log_records};
use wasmbgp_e2e::policy_support::{metric_value, tail, wait_stable};
use wasmbgp_e2e::reload_support::{
    BirdProtocol, LOG_LEVEL, ProtocolView, ReloadBird, ReloadConfig, position, record_field,
    wait_strict,
};
use wasmbgp_e2e::scenario::Block;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wasmbgp::{Config, NeighborConfig, RouteAttrs};
use wasmbgp_e2e::workdir::WorkDir;

const TEST: &str = "reload-config";
const BLOCK: Block = Block(250);
const POLL: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(20);
/// How long counters must stay still before they are compared.
const SETTLE: Duration = Duration::from_millis(1500);

/// The health check and its VIP.
const PLUGIN: &str = "vip";
const VIP: &str = "100.10.250.1/32";

/// The routes (prefix, MED).
const ALL: (&str, u32) = ("30.250.0.0/24", 10);
const ONLY1: (&str, u32) = ("30.250.1.0/24", 11);
const ONLY2: (&str, u32) = ("30.250.2.0/24", 20);
/// ONLY2's MED after the first reload.
const ONLY2_MED: u32 = 21;
const TWO_THREE: (&str, u32) = ("30.250.3.0/24", 30);
const ONLY3: (&str, u32) = ("30.250.4.0/24", 40);
/// A prefix no parser takes, for the refused file.
const BAD_PREFIX: &str = "30.250.300.0/24";

/// wasmbgp's address.
fn speaker_addr() -> Ipv4Addr {
    BLOCK.addr(1)
}

/// Neighbor `i` (1..=4): BIRD's protocol `n{i}` on `127.0.250.{i+1}`, port `i - 1`
/// of the block (ports 5..=8 name wasmbgp's side in BIRD's config, never dialed).
fn protocol(i: u8) -> BirdProtocol {
    BirdProtocol {
        name: format!("n{i}"),
        address: BLOCK.addr(i + 1),
        port: BLOCK.port(u16::from(i) - 1),
        remote_port: BLOCK.port(u16::from(i) + 4),
    }
}

fn addr(i: u8) -> Ipv4Addr {
    protocol(i).address
}

/// wasmbgp's neighbor `i` (active, toward BIRD's protocol `n{i}`; reconnecting after
/// 1 s, then every 2 s at most).
fn neighbor(i: u8, description: &str) -> NeighborConfig {
    let p = protocol(i);
    NeighborConfig {
        connect_retry_max: Some("2s".to_owned()),
        description: Some(description.to_owned()),
        ..NeighborConfig::new(p.address, p.port, BIRD_AS, speaker_addr())
    }
}

/// A `[[route]]`: `(prefix, MED)` to the neighbors `to` (every neighbor when empty).
fn route((prefix, med): (&str, u32), to: &[Ipv4Addr]) -> (String, RouteAttrs) {
    let attrs = RouteAttrs {
        med: Some(med),
        neighbors: to.iter().map(ToString::to_string).collect(),
        ..RouteAttrs::default()
    };
    (prefix.to_owned(), attrs)
}

/// The attributes of the `[[route]]` of `prefix` in `config`.
fn route_mut<'a>(config: &'a mut ReloadConfig, prefix: &str) -> Result<&'a mut RouteAttrs> {
    config
        .config
        .routes
        .iter_mut()
        .find(|(p, _)| p == prefix)
        .map(|(_, attrs)| attrs)
        .with_context(|| format!("no route {prefix}"))
}

/// The first config: `n1`..`n3`, the routes, the health check (interval 1 s).
fn initial_config(socket: std::path::PathBuf) -> Result<ReloadConfig> {
    let mut plugin = Plugin::faulty(PLUGIN, "counter", &[], VIP)?;
    plugin.interval = "1s".to_owned();
    let mut only1 = route(ONLY1, &[addr(1)]);
    only1.1.communities = vec!["65001:1".to_owned()];
    Ok(ReloadConfig {
        config: Config {
            router_id: speaker_addr().to_string(),
            local_as: WASMBGP_AS,
            listen: None,
            neighbors: vec![
                neighbor(1, "edge one"),
                neighbor(2, "edge two"),
                neighbor(3, "edge three"),
            ],
            routes: vec![
                route(ALL, &[]),
                only1,
                route(ONLY2, &[addr(2)]),
                route(TWO_THREE, &[addr(2), addr(3)]),
                route(ONLY3, &[addr(3)]),
            ],
            route_files: Vec::new(),
        },
        socket,
        plugins: vec![plugin],
    })
}

/// The routes (prefix → MED) `config` sends neighbor `n`: its static routes and the VIP.
fn expected(config: &ReloadConfig, n: Ipv4Addr) -> BTreeMap<String, Option<u32>> {
    let n = n.to_string();
    let mut out: BTreeMap<String, Option<u32>> = config
        .config
        .routes
        .iter()
        .filter(|(_, r)| r.neighbors.is_empty() || r.neighbors.contains(&n))
        .map(|(prefix, r)| (prefix.clone(), r.med))
        .collect();
    for p in &config.plugins {
        for (prefix, med) in &p.routes {
            out.insert(prefix.clone(), Some(*med));
        }
    }
    out
}

/// Whether BIRD's protocol `i` holds exactly what `config` sends it, with our AS
/// path and ONLY1's community.
fn holds(bird: &ReloadBird, config: &ReloadConfig, i: u8) -> Result<bool> {
    let routes = bird.routes(&format!("n{i}"))?;
    let got: BTreeMap<String, Option<u32>> =
        routes.iter().map(|r| (r.prefix.clone(), r.med)).collect();
    if got != expected(config, addr(i)) {
        return Ok(false);
    }
    for r in &routes {
        ensure!(
            r.as_path == vec![WASMBGP_AS],
            "n{i}: {} has AS path {:?}",
            r.prefix,
            r.as_path
        );
        let want: Vec<String> = if r.prefix == ONLY1.0 {
            vec!["65001:1".to_owned()]
        } else {
            Vec::new()
        };
        ensure!(
            r.communities == want,
            "n{i}: {} has communities {:?}",
            r.prefix,
            r.communities
        );
    }
    Ok(true)
}

/// A string list of the reload summary.
fn list(summary: &Value, key: &str) -> Result<Vec<String>> {
    summary[key]
        .as_array()
        .with_context(|| format!("{key} is not a list in {summary}"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .with_context(|| format!("{key} holds a non-string in {summary}"))
        })
        .collect()
}

fn number(summary: &Value, key: &str) -> Result<u64> {
    summary[key]
        .as_u64()
        .with_context(|| format!("{key} is not a number in {summary}"))
}

/// The lists of a reload summary.
const LISTS: [&str; 9] = [
    "neighbors_added",
    "neighbors_removed",
    "neighbors_reset",
    "neighbors_changed",
    "plugins_added",
    "plugins_removed",
    "plugins_swapped",
    "plugins_reconfigured",
    "errors",
];

/// Checks a `ctl reload --json` summary: the lists named in `lists` hold exactly the
/// names given, the others are empty; `routes` (`why` it is so) is
/// `(routes_announced, routes_withdrawn)`.
fn check_summary(
    summary: &Value,
    lists: &[(&str, Vec<String>)],
    routes: (u64, u64),
    why: &str,
) -> Result<()> {
    for (key, _) in lists {
        ensure!(LISTS.contains(key), "{key} is not a list of the summary");
    }
    for key in LISTS {
        let want = lists
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, names)| names.clone())
            .unwrap_or_default();
        ensure!(
            list(summary, key)? == want,
            "{key}: expected {want:?} in {summary}"
        );
    }
    let got = (
        number(summary, "routes_announced")?,
        number(summary, "routes_withdrawn")?,
    );
    ensure!(got == routes, "{why} expected: {summary}");
    Ok(())
}

/// The log records that report a refused reload with `diagnostic`.
fn refusals(speaker: &PluginSpeaker, diagnostic: &str) -> usize {
    log_records(&speaker.log())
        .iter()
        .filter(|r| {
            // The record's last line ends with its fields (` config=PATH`).
            r.contains("refused")
                && r.lines().any(|l| {
                    l.trim_end() == diagnostic
                        || l.strip_prefix(diagnostic)
                            .is_some_and(|f| f.starts_with(' '))
                })
        })
        .count()
}

/// The log records of applied reloads.
fn reloads(speaker: &PluginSpeaker) -> Vec<String> {
    log_records(&speaker.log())
        .into_iter()
        .filter(|r| r.contains("config reloaded"))
        .collect()
}

/// wasmbgp's view of neighbor `i`: `(state, established-count, uptime-secs)`.
fn session(speaker: &PluginSpeaker, i: u8) -> Result<(String, u64, f64)> {
    let n = speaker.neighbor(addr(i))?;
    Ok((
        n["state"].as_str().unwrap_or_default().to_owned(),
        n["established-count"]
            .as_u64()
            .with_context(|| format!("no established-count in {n}"))?,
        n["uptime-secs"].as_f64().unwrap_or(-1.0),
    ))
}

struct Run {
    bird: ReloadBird,
    speaker: PluginSpeaker,
    config: ReloadConfig,
    /// Drop last: kept when the test fails.
    _dir: WorkDir,
}

impl Run {
    fn start() -> Result<Run> {
        let dir = WorkDir::new(TEST)?;
        let bird = ReloadBird::start(
            &dir.subdir("bird")?,
            BLOCK.addr(2),
            speaker_addr(),
            &(1..=4).map(protocol).collect::<Vec<_>>(),
        )?;
        let wdir = dir.subdir("wasmbgp")?;
        let config = initial_config(PluginSpeaker::socket_in(&wdir))?;
        let speaker = PluginSpeaker::start_text(&wdir, &config.render(), &[], LOG_LEVEL)?;
        Ok(Run {
            bird,
            speaker,
            config,
            _dir: dir,
        })
    }

    /// Writes `next` and applies it with `ctl reload --json`; the summary.
    fn reload_json(&mut self, next: ReloadConfig) -> Result<Value> {
        self.speaker.write_config(&next.render())?;
        let summary = self.speaker.ctl_json(&["reload", "--json"])?;
        self.config = next;
        step(TEST, format!("ctl reload --json: {summary}"));
        Ok(summary)
    }

    /// Writes `config` without applying it and runs `wasmbgp check` on it: the text,
    /// check's exit code and output.
    fn write_unapplied(&self, config: &ReloadConfig) -> Result<(String, Option<i32>, String)> {
        let text = config.render();
        self.speaker.write_config(&text)?;
        let (code, check) = self.speaker.check()?;
        Ok((text, code, check))
    }

    fn dump(&self) {
        eprintln!(
            "[{TEST}] --- BIRD log tail ---\n{}",
            tail(&self.bird.log(), 40)
        );
        eprintln!(
            "[{TEST}] --- wasmbgp log tail ---\n{}",
            tail(&self.speaker.log(), 80)
        );
    }

    /// Every protocol's view once the counters have stopped moving.
    fn settled_views(&self) -> Result<Vec<ProtocolView>> {
        // State and counters only: BIRD's printed `since` wobbles by milliseconds
        // between queries (see `same_since`).
        let moving = |views: &[ProtocolView]| -> Vec<(String, BirdCounters)> {
            views.iter().map(|v| (v.info.clone(), v.counters)).collect()
        };
        let settled = wait_stable("BIRD's protocols", POLL, SETTLE, WAIT, || {
            Ok(moving(&self.bird.views()?))
        })?;
        let views = self.bird.views()?;
        ensure!(
            moving(&views) == settled,
            "BIRD's protocols moved after settling: {settled:?} → {views:?}"
        );
        Ok(views)
    }

    /// Waits for the sessions with `neighbors` to be up on both sides and BIRD to hold
    /// what the config sends each of them.
    fn wait_converged(&self, neighbors: &[u8]) -> Result<()> {
        for &i in neighbors {
            wait_strict(&format!("n{i} up with its routes"), POLL, WAIT, || {
                Ok(self.bird.established(&format!("n{i}"))?
                    && session(&self.speaker, i)?.0 == "established"
                    && holds(&self.bird, &self.config, i)?)
            })?;
        }
        Ok(())
    }

    /// Sessions `neighbors` still the ones of `before` (same BIRD `since`, same
    /// counters; wasmbgp established once, uptime not gone back).
    fn assert_untouched(
        &self,
        neighbors: &[u8],
        before: &[ProtocolView],
        after: &[ProtocolView],
        uptimes: &BTreeMap<u8, f64>,
    ) -> Result<()> {
        for &i in neighbors {
            let (b, a) = (&before[usize::from(i) - 1], &after[usize::from(i) - 1]);
            ensure!(
                a.untouched(b) && a.info.starts_with("Established"),
                "n{i} was touched: BIRD {b:?} → {a:?}"
            );
            let (state, count, uptime) = session(&self.speaker, i)?;
            ensure!(
                state == "established" && count == 1,
                "n{i} at wasmbgp: {state}, established-count {count}"
            );
            if let Some(&was) = uptimes.get(&i) {
                ensure!(
                    uptime >= was,
                    "n{i}'s uptime went back from {was} to {uptime} s"
                );
            }
        }
        Ok(())
    }

    fn uptimes(&self, neighbors: &[u8]) -> Result<BTreeMap<u8, f64>> {
        neighbors
            .iter()
            .map(|&i| Ok((i, session(&self.speaker, i)?.2)))
            .collect()
    }

    /// A reload that must be refused: the answer's error, which must start with
    /// "config refused".
    fn refused_reload(&self) -> Result<String> {
        let out = self.speaker.ctl_output(&["reload"])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ensure!(
            !out.status.success(),
            "ctl reload of a refused config succeeded: {stdout}{stderr}"
        );
        let error = stderr
            .strip_prefix("error: ")
            .with_context(|| format!("ctl reload failed without an error: {stdout}{stderr}"))?;
        ensure!(
            error.starts_with("config refused"),
            "the refusal does not start with \"config refused\": {error}"
        );
        Ok(error.to_owned())
    }
}

#[test]
fn reload_config_applies_only_the_difference() {
    let started = Instant::now();
    let mut run = Run::start().expect("rig");
    let result = scenario(&mut run);
    match result {
        Ok(()) => step(TEST, format!("passed after {:?}", started.elapsed())),
        Err(e) => {
            run.dump();
            panic!("[{TEST}] {e:#}");
        }
    }
}

fn scenario(run: &mut Run) -> Result<()> {
    // -- 1. Three sessions up, the routes and the VIP at BIRD.
    run.wait_converged(&[1, 2, 3])?;
    let views = run.settled_views()?;
    for i in 1..=3u8 {
        let v = &views[usize::from(i) - 1];
        let sent = expected(&run.config, addr(i)).len() as u64;
        ensure!(
            v.counters.import_updates == sent && v.counters.import_withdraws == 0,
            "n{i}: BIRD counted {:?}, expected {sent} updates and no withdraw",
            v.counters
        );
    }
    ensure!(
        !views[3].info.starts_with("Established"),
        "n4 is up before it is configured: {:?}",
        views[3]
    );
    let uptimes = run.uptimes(&[1, 2, 3])?;
    step(
        TEST,
        format!("n1..n3 up with their routes; BIRD {views:?}; wasmbgp uptimes {uptimes:?}"),
    );

    // -- 2. Reload: n4 added, ONLY2's MED changed (n2 only), n1's description changed,
    // the health check reconfigured.
    let counts_before = run.speaker.check_counts(PLUGIN)?;
    ensure!(
        !counts_before.is_empty(),
        "no `count=` in the log: is the health check's debug line there?"
    );
    let mut next = run.config.clone();
    next.config.neighbors.push(neighbor(4, "edge four"));
    route_mut(&mut next, ONLY2.0)?.med = Some(ONLY2_MED);
    next.config.neighbors[0].description = Some("edge one, rack 7".to_owned());
    {
        let p = &mut next.plugins[0];
        p.interval = "500ms".to_owned();
        p.settings
            .push(("target".to_owned(), "127.0.0.1:7".to_owned()));
    }
    let summary = run.reload_json(next)?;
    let n1 = addr(1).to_string();
    let n4 = addr(4).to_string();
    // A health check whose settings or schedule change gets a new instance beside the
    // running one (swapped; `reconfigured` is for a change of its routes only).
    check_summary(
        &summary,
        &[
            ("neighbors_added", vec![n4.clone()]),
            ("neighbors_changed", vec![n1.clone()]),
            ("plugins_swapped", vec![PLUGIN.to_owned()]),
        ],
        (1, 0),
        "one prefix decision (ONLY2's MED toward n2)",
    )?;
    ensure!(
        summary["ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "no ms in {summary}"
    );

    run.wait_converged(&[4])?;
    wait_strict("n2 to get ONLY2's new MED", POLL, WAIT, || {
        holds(&run.bird, &run.config, 2)
    })?;
    let after = run.settled_views()?;
    let (b2, a2) = (&views[1], &after[1]);
    ensure!(
        a2.counters.import_updates == b2.counters.import_updates + 1
            && a2.counters.import_withdraws == b2.counters.import_withdraws,
        "n2: BIRD counted {:?} → {:?}, expected exactly one more update",
        b2.counters,
        a2.counters
    );
    let med = run
        .bird
        .routes("n2")?
        .into_iter()
        .find(|r| r.prefix == ONLY2.0)
        .and_then(|r| r.med);
    ensure!(med == Some(ONLY2_MED), "n2: {} has MED {med:?}", ONLY2.0);
    // n2's session itself is untouched too: only its counter moved.
    ensure!(
        a2.info.starts_with("Established")
            && wasmbgp_e2e::plugin_support::same_since(&a2.since, &b2.since),
        "n2 was reset: {b2:?} → {a2:?}"
    );
    run.assert_untouched(&[1, 3], &views, &after, &uptimes)?;
    let (state, count, _) = session(&run.speaker, 2)?;
    ensure!(
        state == "established" && count == 1,
        "n2 at wasmbgp: {state}, established-count {count}"
    );
    let v4 = &after[3];
    let sent4 = expected(&run.config, addr(4)).len() as u64;
    ensure!(
        v4.counters.import_updates == sent4 && v4.counters.import_withdraws == 0,
        "n4: BIRD counted {:?}, expected {sent4} updates",
        v4.counters
    );
    let (state, count, _) = session(&run.speaker, 4)?;
    ensure!(
        state == "established" && count == 1,
        "n4 at wasmbgp: {state}, established-count {count}"
    );
    let description = run.speaker.neighbor(addr(1))?["description"].clone();
    ensure!(
        description.as_str() == Some("edge one, rack 7"),
        "n1's description is {description} after the reload"
    );
    step(
        TEST,
        format!(
            "n4 up, n2 +1 update ({:?}), n1 and n3 untouched",
            a2.counters
        ),
    );

    // The health check goes on counting: its state was carried over.
    let last_before = *counts_before.last().context("checked above")?;
    wait_strict(
        "two checks of the reconfigured health check",
        POLL,
        WAIT,
        || {
            let counts = run.speaker.check_counts(PLUGIN)?;
            Ok(counts.len() >= counts_before.len() + 2)
        },
    )?;
    let counts = run.speaker.check_counts(PLUGIN)?;
    let consecutive: Vec<u64> = (1..=counts.len() as u64).collect();
    ensure!(
        counts == consecutive,
        "the health check's counts are not 1, 2, 3, ... (state lost on reload?): {counts:?}"
    );
    let plugin = run.speaker.plugin(PLUGIN)?.raw;
    ensure!(
        plugin["state"] == "running"
            && plugin["health"] == "up"
            && plugin["restarts"].as_u64() == Some(0),
        "the health check after its reconfiguration: {plugin}"
    );
    step(
        TEST,
        format!(
            "health check counted {last_before} before the reload, {} now",
            counts.len()
        ),
    );
    let uptimes = run.uptimes(&[1, 2, 3, 4])?;
    let views = after;

    // -- 3. Refusals: a bad prefix (ctl reload, then SIGHUP), a local-as change.
    let path = run.speaker.config_path().to_path_buf();
    let mut bad = run.config.clone();
    bad.config.routes.push(route((BAD_PREFIX, 50), &[]));
    let (bad_text, code, check) = run.write_unapplied(&bad)?;
    ensure!(
        code == Some(1),
        "wasmbgp check passed the bad prefix: {check}"
    );
    let at = position(&path, &bad_text, &format!("\"{BAD_PREFIX}\""))?;
    let diagnostics: Vec<&str> = check.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(
        diagnostics.len() == 1 && diagnostics[0].starts_with(&format!("{at}: ")),
        "wasmbgp check should name {at} only: {check}"
    );
    let error = run.refused_reload()?;
    ensure!(
        error.lines().any(|l| l.trim() == diagnostics[0]),
        "ctl reload's refusal lacks check's diagnostic {:?}: {error}",
        diagnostics[0]
    );
    ensure!(
        refusals(&run.speaker, diagnostics[0]) == 1,
        "the log does not show the refusal with {:?}",
        diagnostics[0]
    );
    step(TEST, format!("ctl reload refused: {error}"));

    let mut restart_only = run.config.clone();
    restart_only.config.local_as = WASMBGP_AS + 1;
    let (text, code, check) = run.write_unapplied(&restart_only)?;
    ensure!(
        code == Some(0),
        "the local-as change alone is a valid config: {check}"
    );
    let error = run.refused_reload()?;
    let local_as = position(&path, &text, "local-as")?;
    let diagnostic = error
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{local_as}: ")))
        .with_context(|| {
            format!("the refusal of a local-as change does not name {local_as}: {error}")
        })?
        .to_owned();
    ensure!(
        diagnostic.contains("local-as") && diagnostic.contains("restart"),
        "the refusal of a local-as change: {diagnostic}"
    );
    ensure!(
        refusals(&run.speaker, &diagnostic) == 1,
        "the log does not show the refusal with {diagnostic:?}"
    );
    step(TEST, format!("local-as change refused: {error}"));

    run.speaker.write_config(&bad_text)?;
    run.speaker.sighup()?;
    wait_strict("the SIGHUP reload to be refused (log)", POLL, WAIT, || {
        Ok(refusals(&run.speaker, diagnostics[0]) == 2)
    })?;
    ensure!(run.speaker.is_running(), "wasmbgp exited after SIGHUP");
    // Still answering, with the running config.
    ensure!(
        run.speaker.neighbors()?.len() == 4,
        "show neighbors after the refused SIGHUP: {:?}",
        run.speaker.neighbors()?
    );
    let metrics = run.speaker.ctl(&["show", "metrics"])?;
    let last = metric_value(&metrics, "wasmbgp_config_last_reload_successful", &[]);
    ensure!(
        last == Some(0.0),
        "wasmbgp_config_last_reload_successful {last:?} after a refused reload"
    );
    step(TEST, "SIGHUP with the bad file refused; wasmbgp runs on");

    // A reload of the running config is a no-op.
    run.speaker.write_config(&run.config.render())?;
    let reply = run.speaker.ctl(&["reload"])?;
    let rest = reply
        .trim()
        .strip_prefix("config reloaded in ")
        .and_then(|r| r.split_once(" ms: "))
        .filter(|(ms, _)| ms.parse::<u64>().is_ok())
        .map(|(_, r)| r)
        .with_context(|| format!("ctl reload answered {reply:?}"))?;
    ensure!(
        rest == "neighbors +0 -0 reset 0 changed 0; routes announced 0 withdrawn 0; plugins +0 -0 swapped 0 reconfigured 0",
        "a reload of the running config changed something: {reply:?}"
    );
    let after = run.settled_views()?;
    run.assert_untouched(&[1, 2, 3, 4], &views, &after, &uptimes)?;
    for i in 1..=4 {
        ensure!(
            holds(&run.bird, &run.config, i)?,
            "n{i}'s routes changed at BIRD"
        );
    }
    step(
        TEST,
        format!("no-op reload {reply:?}; refusals changed nothing"),
    );

    // -- 4. SIGHUP with n3 removed.
    let mut next = run.config.clone();
    next.config
        .neighbors
        .retain(|n| n.address != addr(3).to_string());
    next.config.routes.retain(|(prefix, _)| prefix != ONLY3.0);
    route_mut(&mut next, TWO_THREE.0)?.neighbors = vec![addr(2).to_string()];
    run.speaker.write_config(&next.render())?;
    let before = reloads(&run.speaker).len();
    run.speaker.sighup()?;
    wait_strict("the SIGHUP reload (log)", POLL, WAIT, || {
        Ok(reloads(&run.speaker).len() > before)
    })?;
    run.config = next;
    let line = reloads(&run.speaker)
        .into_iter()
        .nth(before)
        .context("counted above")?;
    let n3 = addr(3).to_string();
    for (key, value) in [
        ("neighbors_added", ""),
        ("neighbors_removed", n3.as_str()),
        ("neighbors_reset", ""),
        ("neighbors_changed", ""),
        ("plugins_added", ""),
        ("plugins_removed", ""),
        ("plugins_swapped", ""),
        ("plugins_reconfigured", ""),
        // n2 keeps TWO_THREE as it was: nothing to send the kept neighbors.
        ("routes_announced", "0"),
        ("routes_withdrawn", "0"),
    ] {
        ensure!(
            record_field(&line, key) == Some(value),
            "the SIGHUP reload's {key} should be {value:?}: {line}"
        );
    }
    let cease = "<RMT> n3: Received: Peer de-configured";
    wait_strict(
        "BIRD's n3 to receive Cease/Peer De-configured",
        POLL,
        WAIT,
        || Ok(run.bird.log().contains(cease)),
    )?;
    wait_strict("n3's routes gone from BIRD", POLL, WAIT, || {
        Ok(run.bird.count("n3")? == 0)
    })?;
    let v3 = run.bird.view("n3")?;
    ensure!(
        !v3.info.starts_with("Established")
            && v3.last_error.as_deref() == Some("Received: Peer de-configured"),
        "n3 at BIRD: {v3:?}"
    );
    let bird_log = run.bird.log();
    for wrong in [
        "n3: Received: Other configuration change",
        "n3: Received: Administrative shutdown",
    ] {
        ensure!(!bird_log.contains(wrong), "BIRD logged {wrong:?}");
    }
    ensure!(
        run.speaker.neighbor(addr(3)).is_err(),
        "n3 is still in show neighbors: {:?}",
        run.speaker.neighbors()?
    );
    let after = run.settled_views()?;
    run.assert_untouched(&[1, 2, 4], &views, &after, &uptimes)?;
    for i in [1, 2, 4] {
        ensure!(
            holds(&run.bird, &run.config, i)?,
            "n{i}'s routes changed at BIRD"
        );
    }
    step(
        TEST,
        format!("n3 removed by SIGHUP: {line}; BIRD n3 {v3:?}"),
    );

    // -- 5. The reloads counted.
    let metrics = run.speaker.ctl(&["show", "metrics"])?;
    let ok = metric_value(
        &metrics,
        "wasmbgp_config_reloads_total",
        &[("result", "ok")],
    );
    let refused = metric_value(
        &metrics,
        "wasmbgp_config_reloads_total",
        &[("result", "refused")],
    );
    let last = metric_value(&metrics, "wasmbgp_config_last_reload_successful", &[]);
    if ok != Some(3.0) || refused != Some(3.0) || last != Some(1.0) {
        bail!(
            "wasmbgp_config_reloads_total ok {ok:?} refused {refused:?}, expected 3 and 3; \
             wasmbgp_config_last_reload_successful {last:?}, expected 1:\n{}",
            metrics
                .lines()
                .filter(|l| l.contains("config_"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // -- 6. A change that needs a new session (n4's hold time): Cease/Other
    // Configuration Change, a new session with its routes; n1 and n2 see nothing.
    let n4_before = run.bird.view("n4")?;
    let mut next = run.config.clone();
    next.config
        .neighbors
        .iter_mut()
        .find(|n| n.address == n4)
        .context("n4")?
        .hold_time = Some(60);
    let summary = run.reload_json(next)?;
    check_summary(
        &summary,
        &[("neighbors_reset", vec![n4.clone()])],
        (0, 0),
        "no route changed",
    )?;
    // A new session at BIRD (not the same `since`), Established.
    wait_strict("n4's new session at BIRD", POLL, WAIT, || {
        let v = run.bird.view("n4")?;
        Ok(v.info.starts_with("Established")
            && !wasmbgp_e2e::plugin_support::same_since(&v.since, &n4_before.since))
    })?;
    // The NOTIFICATION went out before the new session: BIRD must have read it.
    let reset = "<RMT> n4: Received: Other configuration change";
    if !run.bird.log().contains(reset) {
        let n4_log: Vec<String> = run
            .bird
            .log()
            .lines()
            .filter(|l| l.contains(" n4: ") || l.contains(" n4."))
            .map(str::to_owned)
            .collect();
        bail!(
            "BIRD's n4 never received Cease/Other Configuration Change; its log:\n{}",
            tail(&n4_log.join("\n"), 12)
        );
    }
    run.wait_converged(&[4])?;
    let after = run.settled_views()?;
    let v4 = &after[3];
    // Both of wasmbgp's counts of n4's sessions say 2.
    let (state, count, _) = session(&run.speaker, 4)?;
    let metrics = run.speaker.ctl(&["show", "metrics"])?;
    let total = metric_value(
        &metrics,
        "wasmbgp_bgp_session_established_total",
        &[("neighbor", n4.as_str())],
    );
    ensure!(
        state == "established" && count == 2 && total == Some(2.0),
        "n4 at wasmbgp after its reset: {state}, established-count {count} \
         (show neighbors), wasmbgp_bgp_session_established_total {total:?}; expected 2 and 2"
    );
    run.assert_untouched(&[1, 2], &views, &after, &uptimes)?;
    step(TEST, format!("n4 reset for its hold time: BIRD {v4:?}"));

    let metrics = run.speaker.ctl(&["show", "metrics"])?;
    let ok = metric_value(
        &metrics,
        "wasmbgp_config_reloads_total",
        &[("result", "ok")],
    );
    ensure!(
        ok == Some(4.0),
        "wasmbgp_config_reloads_total ok {ok:?}, expected 4"
    );
    ensure!(run.speaker.is_running(), "wasmbgp exited");
    Ok(())
}
