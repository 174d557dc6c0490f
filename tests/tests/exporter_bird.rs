//! Exporter plugins end to end against a real BIRD 2 on loopback:
//! route-stats over 100,000 routes and a session flap seen by the
//! fixture-exporter, webhook-alert posting to a loopback server (and denied
//! outside its grant), bmp feeding pmacct's pmbmpd, a stuck exporter that
//! does not slow ingestion and whose replayed file matches `adj-rib-in`
//! after a reload, and exabgp-json's lines.
//!
//! Blocks 240–246 (`plugin_support::PluginBlock`); helpers in
//! `src/exporter_support.rs`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use wasmbgp_e2e::exporter_support::{
    ExporterPlugin, ExporterRig, HttpRecorder, Pmbmpd, edit_config, kind, read_records, replay,
    rib_view, slash24_groups, table_diff,
};
use wasmbgp_e2e::plugin_support::{PluginBlock, wait_fast};
use wasmbgp_e2e::policy_support::StaticGroup;
use wasmbgp_e2e::workdir::WorkDir;

const ROUTES: u32 = 100_000;
const DROPPED: u32 = 10_000;
const POLL: Duration = Duration::from_millis(250);

fn base() -> Ipv4Addr {
    Ipv4Addr::new(30, 0, 0, 0)
}

/// 90,000 routes in group `keep`, 10,000 in group `drop`.
fn groups_100k() -> Vec<StaticGroup> {
    slash24_groups(base(), &[("keep", ROUTES - DROPPED), ("drop", DROPPED)])
}

/// The records of the fixture's file (sessions as `old->new`, notifications
/// with code and subcode, other kinds by name), in order, for messages.
fn session_story(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| match kind(r) {
            "session" => format!(
                "{}->{}",
                r["old"].as_str().unwrap_or("?"),
                r["new"].as_str().unwrap_or("?")
            ),
            "notification" => format!(
                "notification {} {}/{}",
                r["direction"].as_str().unwrap_or("?"),
                r["code"],
                r["subcode"]
            ),
            other => other.to_owned(),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. route-stats over 100,000 routes, and a session flap.

/// BIRD sends 100,000 routes: route-stats' `routes_active` reads 100000 on
/// `/metrics`; BIRD withdraws 10,000: 90000. `birdc disable` then `enable`
/// of BIRD's session: the fixture-exporter (sessions and notifications)
/// records established, the Cease NOTIFICATION from BIRD (6/2) and the
/// session leaving established, then established again, in this order; the
/// gauge reads 90000 again afterwards.
#[test]
fn exporter_route_stats_100k_and_flap() {
    let rig = ExporterRig::start(
        "exporter-route-stats",
        PluginBlock(240),
        &groups_100k(),
        |out| {
            let mut stats = ExporterPlugin::new("stats", "route-stats")?
                .subscribe(&["sessions", "routes-received"]);
            stats.max_series = Some(64);
            Ok(vec![
                stats,
                ExporterPlugin::fixture("events", &out.join("events.jsonl"))?
                    .subscribe(&["sessions", "notifications"]),
            ])
        },
    )
    .expect("rig");
    rig.run(|rig| {
        rig.wait_established(Duration::from_secs(30))?;
        let n = rig.neighbor();
        let labels = [("plugin", "stats"), ("neighbor", n.as_str())];
        let active = || rig.speaker.metric("wasmbgp_plugin_routes_active", &labels);
        let took = wait_fast(
            "routes_active = 100000",
            POLL,
            Duration::from_secs(60),
            || Ok(active()? == Some(f64::from(ROUTES))),
        )?;
        let exposition = rig.speaker.scrape()?;
        let own: Vec<&str> = exposition
            .lines()
            .filter(|l| l.starts_with("wasmbgp_plugin_routes_"))
            .collect();
        rig.step(format!("routes_active 100000 after {took:?}: {own:?}"));
        let received = rig.speaker.session()?.2;
        ensure!(
            received == u64::from(ROUTES),
            "wasmbgp counts {received} prefixes received"
        );

        // BIRD withdraws 10,000.
        rig.bird.set_group("drop", false)?;
        let took = wait_fast(
            "routes_active = 90000",
            POLL,
            Duration::from_secs(60),
            || Ok(active()? == Some(f64::from(ROUTES - DROPPED))),
        )?;
        let withdrawn = rig
            .speaker
            .metric("wasmbgp_plugin_routes_withdrawn_total", &labels)?;
        let dropped = rig.speaker.plugin("stats")?["events-dropped"].as_u64();
        rig.step(format!(
            "10,000 withdrawn: routes_active 90000 after {took:?}, routes_withdrawn_total {withdrawn:?}, events dropped {dropped:?}"
        ));
        if dropped == Some(0) {
            ensure!(
                withdrawn == Some(f64::from(DROPPED)),
                "routes_withdrawn_total {withdrawn:?}, expected {DROPPED}"
            );
        }

        // A flap.
        let path = rig.out().join("events.jsonl");
        let before = read_records(&path)?.len();
        rig.birdc_expect(&["disable", &rig.bird.protocol], "disabled")?;
        wait_fast(
            "wasmbgp to see the session down",
            Duration::from_millis(100),
            Duration::from_secs(30),
            || Ok(rig.speaker.session()?.0 != "established"),
        )?;
        let down = wait_fast(
            "routes_active = 0 while the session is down",
            POLL,
            Duration::from_secs(30),
            || Ok(active()? == Some(0.0)),
        );
        rig.birdc_expect(&["enable", &rig.bird.protocol], "enabled")?;
        rig.wait_established(Duration::from_secs(60))?;
        let (_, count, _) = rig.speaker.session()?;
        ensure!(count == 2, "established-count {count} after one flap");
        wait_fast(
            "routes_active = 90000 after the flap",
            POLL,
            Duration::from_secs(60),
            || Ok(active()? == Some(f64::from(ROUTES - DROPPED))),
        )?;
        down.context("route-stats during the flap")?;

        // The fixture's story, in order.
        let records = wait_for_records(&path, Duration::from_secs(20), |records| {
            records[before..]
                .iter()
                .any(|r| kind(r) == "session" && r["new"] == "established")
        })?;
        let story = session_story(&records);
        rig.step(format!("fixture recorded: {story:?}"));
        let first_up = records
            .iter()
            .position(|r| kind(r) == "session" && r["new"] == "established")
            .context("no session reaching established")?;
        ensure!(first_up < before, "the first established came after the flap: {story:?}");
        let left = records
            .iter()
            .enumerate()
            .skip(first_up + 1)
            .find(|(_, r)| kind(r) == "session" && r["old"] == "established")
            .map(|(i, _)| i)
            .with_context(|| format!("no session leaving established: {story:?}"))?;
        let notification = records
            .iter()
            .enumerate()
            .skip(first_up + 1)
            .find(|(_, r)| kind(r) == "notification" && r["direction"] == "received")
            .with_context(|| format!("no NOTIFICATION received: {story:?}"))?;
        ensure!(
            notification.1["code"] == 6 && notification.1["subcode"] == 2,
            "BIRD's NOTIFICATION is {}, expected Cease/Administrative Shutdown (6/2)",
            notification.1
        );
        ensure!(
            notification.1["neighbor"] == n.as_str(),
            "NOTIFICATION names {}",
            notification.1["neighbor"]
        );
        let up_again = records
            .iter()
            .enumerate()
            .skip(left + 1)
            .find(|(_, r)| kind(r) == "session" && r["new"] == "established")
            .map(|(i, _)| i)
            .with_context(|| format!("no established after the flap: {story:?}"))?;
        ensure!(
            notification.0 < up_again,
            "the NOTIFICATION came after the session was back: {story:?}"
        );
        // Every transition starts where the previous one ended.
        let transitions: Vec<&Value> = records
            .iter()
            .filter(|r| kind(r) == "session" && r["old"] != r["new"])
            .collect();
        for pair in transitions.windows(2) {
            ensure!(
                pair[0]["new"] == pair[1]["old"],
                "state events out of order: {} then {}: {story:?}",
                pair[0],
                pair[1]
            );
        }
        // Delivery never waits for an exporter: under load route-stats may
        // lag (and resync), which the gauge above survived.
        let stats = rig.speaker.plugin("stats")?;
        rig.step(format!(
            "route-stats: {} events delivered, {} dropped",
            stats["events-delivered"], stats["events-dropped"]
        ));
        Ok(())
    });
}

/// Polls the fixture's file until `done` holds for its records.
fn wait_for_records(
    path: &Path,
    timeout: Duration,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let start = Instant::now();
    loop {
        let records = read_records(path)?;
        if done(&records) {
            return Ok(records);
        }
        ensure!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {}; it has {:?}",
            path.display(),
            session_story(&records)
                .into_iter()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------
// 2. webhook-alert.

/// Two webhook-alert instances: `hook` posts to a loopback server inside its
/// grant, `denied` has a URL outside its `http-out`. BIRD shuts down: the
/// server receives a POST whose JSON names BIRD; `denied` is refused
/// (`wasmbgp_plugin_denied_total` ≥ 1) and its URL never gets a connection.
#[test]
fn exporter_webhook_alert() {
    let block = PluginBlock(241);
    let hook_addr = block.sock(1, 3);
    let denied_addr = block.sock(1, 4);
    let hook_url = format!("http://{hook_addr}/hook");
    let denied_url = format!("http://{denied_addr}/hook");
    let server = HttpRecorder::start(&hook_addr).expect("hook server");
    let trap = HttpRecorder::start(&denied_addr).expect("denied server");
    let groups = [StaticGroup::new("few", ["20.0.0.0/24"])];
    let rig = ExporterRig::start("exporter-webhook", block, &groups, |_| {
        let mut hook = ExporterPlugin::new("hook", "webhook-alert")?
            .subscribe(&["sessions", "notifications"])
            .setting("url", &hook_url);
        hook.http_out = vec![hook_url.clone()];
        hook.deadline = Some("100ms".into());
        let mut denied = ExporterPlugin::new("denied", "webhook-alert")?
            .subscribe(&["sessions", "notifications"])
            .setting("url", &denied_url);
        denied.http_out = vec![format!("http://{hook_addr}/other")];
        denied.deadline = Some("100ms".into());
        Ok(vec![hook, denied])
    })
    .expect("rig");
    rig.run(|rig| {
        rig.wait_established(Duration::from_secs(30))?;
        let n = rig.neighbor();
        // Nothing while the session came up (session-up alerts are off).
        std::thread::sleep(Duration::from_millis(500));
        ensure!(
            server.requests().is_empty(),
            "alerts before anything went down: {:?}",
            server.requests()
        );
        rig.bird.birdc(&["down"])?;
        rig.step("birdc down: BIRD shuts down");
        let took = wait_fast(
            "a session-down POST naming BIRD",
            Duration::from_millis(100),
            Duration::from_secs(30),
            || {
                Ok(server.requests().iter().any(|r| {
                    r.method == "POST"
                        && r.target == "/hook"
                        && serde_json::from_slice::<Value>(&r.body).is_ok_and(|j| {
                            j["event"] == "session-down" && j["neighbor"] == n.as_str()
                        })
                }))
            },
        )?;
        let bodies: Vec<String> = server
            .requests()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        rig.step(format!("POSTs after {took:?}: {bodies:?}"));
        for r in server.requests() {
            let content_type = r
                .headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.as_str());
            ensure!(
                content_type.is_some_and(|v| v.starts_with("application/json")),
                "content-type {content_type:?}"
            );
        }
        let denied = || {
            rig.speaker
                .metric("wasmbgp_plugin_denied_total", &[("plugin", "denied")])
        };
        wait_fast(
            "wasmbgp_plugin_denied_total{plugin=\"denied\"} >= 1",
            Duration::from_millis(100),
            Duration::from_secs(20),
            || Ok(denied()?.is_some_and(|v| v >= 1.0)),
        )?;
        let status = rig.speaker.plugin("denied")?;
        ensure!(
            status["denied"].as_u64().is_some_and(|d| d >= 1),
            "show plugins: {status}"
        );
        let hook_denied = rig
            .speaker
            .metric("wasmbgp_plugin_denied_total", &[("plugin", "hook")])?;
        ensure!(
            hook_denied.unwrap_or(0.0) == 0.0,
            "the granted hook was denied: {hook_denied:?}"
        );
        // Retries of the denied alert would come at 0.5 s, 1 s ...
        std::thread::sleep(Duration::from_secs(2));
        ensure!(
            trap.connections() == 0,
            "the URL outside the grant got {} connection(s)",
            trap.connections()
        );
        rig.step(format!(
            "denied: {:?}, connections to its URL: 0",
            denied()?
        ));
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 3. bmp into pmbmpd.

/// Counts pmbmpd's messages: (peer ups, peer downs, distinct route-monitoring
/// prefixes announced) for `peer`.
fn bmp_counts(messages: &[Value], peer: &str) -> (usize, usize, usize) {
    let of_peer = |m: &&Value| m["peer_ip"] == peer;
    let ups = messages
        .iter()
        .filter(of_peer)
        .filter(|m| m["bmp_msg_type"] == "peer_up")
        .count();
    let downs = messages
        .iter()
        .filter(of_peer)
        .filter(|m| m["bmp_msg_type"] == "peer_down")
        .count();
    let prefixes: BTreeSet<&str> = messages
        .iter()
        .filter(of_peer)
        .filter(|m| m["bmp_msg_type"] == "route_monitor" && m["log_type"] == "update")
        .filter_map(|m| m["ip_prefix"].as_str())
        .collect();
    (ups, downs, prefixes.len())
}

/// bmp feeds pmbmpd: a Peer Up for BIRD, Route Monitoring with its 100,000
/// prefixes; `birdc restart` of the session: a Peer Down, then a Peer Up.
#[test]
fn exporter_bmp_pmbmpd() {
    let block = PluginBlock(242);
    let collector: SocketAddr = block.sock(1, 3).parse().expect("address");
    let dir = WorkDir::new("exporter-bmp-collector").expect("collector directory");
    let pmbmpd = Pmbmpd::start(dir.path(), collector).expect("pmbmpd");
    let rig = ExporterRig::start("exporter-bmp", block, &groups_100k(), |_| {
        let mut bmp = ExporterPlugin::new("bmp", "bmp")?
            .subscribe(&["sessions", "routes-received", "end-of-rib", "notifications"])
            .setting("collector", &collector.to_string())
            .setting("stats-interval", "0");
        bmp.tcp_out = vec![collector.to_string()];
        bmp.deadline = Some("100ms".into());
        Ok(vec![bmp])
    })
    .expect("rig");
    rig.run(|rig| {
        rig.wait_established(Duration::from_secs(30))?;
        let n = rig.neighbor();
        let counts =
            || -> Result<(usize, usize, usize)> { Ok(bmp_counts(&pmbmpd.messages()?, &n)) };
        let took = wait_fast(
            "a Peer Up and 100,000 prefixes at pmbmpd",
            Duration::from_secs(1),
            Duration::from_secs(90),
            || {
                let (ups, _, prefixes) = counts()?;
                Ok(ups >= 1 && prefixes == ROUTES as usize)
            },
        )
        .with_context(|| format!("pmbmpd has {:?}; its log: {}", counts(), pmbmpd.log_text()))?;
        let (ups, downs, prefixes) = counts()?;
        rig.step(format!(
            "pmbmpd: {ups} peer up, {downs} peer down, {prefixes} prefixes after {took:?}"
        ));
        ensure!(ups == 1 && downs == 0, "{ups} peer ups, {downs} peer downs");
        let messages = pmbmpd.messages()?;
        ensure!(
            messages.iter().any(|m| m["bmp_msg_type"] == "init"),
            "no Initiation at pmbmpd"
        );

        rig.birdc_expect(&["restart", &rig.bird.protocol], "restarted")?;
        let took = wait_fast(
            "a Peer Down, then a Peer Up at pmbmpd",
            Duration::from_millis(500),
            Duration::from_secs(60),
            || {
                let (ups, downs, _) = counts()?;
                Ok(downs >= 1 && ups >= 2)
            },
        )
        .with_context(|| format!("pmbmpd has {:?}", counts()))?;
        let messages = pmbmpd.messages()?;
        let down = messages
            .iter()
            .find(|m| m["bmp_msg_type"] == "peer_down")
            .context("checked above")?;
        rig.step(format!("after the reset ({took:?}): {down}"));
        let order: Vec<&str> = messages
            .iter()
            .filter_map(|m| m["bmp_msg_type"].as_str())
            .filter(|t| t.starts_with("peer_"))
            .collect();
        ensure!(
            order == ["peer_up", "peer_down", "peer_up"],
            "peer messages in order {order:?}"
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 4. A stuck exporter.

/// How long the stuck exporter busy-waits in each call (its deadline is
/// 500 ms more).
const STUCK_MS: u64 = 1500;

/// How long wasmbgp takes, from Established, to receive BIRD's 100,000 routes.
fn time_to_100k(rig: &ExporterRig) -> Result<Duration> {
    wait_fast(
        "wasmbgp session Established",
        Duration::from_millis(50),
        Duration::from_secs(30),
        || Ok(rig.speaker.session()?.0 == "established"),
    )?;
    wait_fast(
        "100,000 routes received",
        Duration::from_millis(100),
        Duration::from_secs(90),
        || Ok(rig.speaker.session()?.2 == u64::from(ROUTES)),
    )
}

/// A fixture-exporter stuck 1.5 s per call (deadline 2 s, queue 4) does
/// not slow the ingestion of 100,000 routes (< 2× a run without it); it
/// loses events (`wasmbgp_plugin_events_dropped_total` > 0, a `lagged`
/// line). Set back to `record` and reloaded, its file replayed (the last
/// snapshot, then the changes) is exactly `adj-rib-in`, also after BIRD
/// withdraws 10,000 routes.
#[test]
fn exporter_stuck_does_not_slow_ingestion() {
    let baseline = {
        let rig = ExporterRig::start(
            "exporter-stuck-baseline",
            PluginBlock(244),
            &groups_100k(),
            |_| Ok(Vec::new()),
        )
        .expect("baseline rig");
        let mut took = None;
        rig.run(|rig| {
            took = Some(time_to_100k(rig)?);
            Ok(())
        });
        took.expect("baseline time")
    };
    let rig = ExporterRig::start("exporter-stuck", PluginBlock(243), &groups_100k(), |out| {
        let mut slow = ExporterPlugin::fixture("slow", &out.join("slow.jsonl"))?
            .subscribe(&["sessions", "routes-received"])
            .setting("mode", "stuck")
            .setting("stuck-ms", &STUCK_MS.to_string());
        slow.queue = Some(4);
        // Recording a large batch (the snapshot after the reload: 100,000
        // routes) takes time of its own: the deadline leaves room for it.
        slow.deadline = Some(format!("{}ms", STUCK_MS + 500));
        Ok(vec![slow])
    })
    .expect("rig");
    rig.run(|rig| {
        let stuck = time_to_100k(rig)?;
        rig.step(format!(
            "100,000 routes received in {stuck:?} with the stuck exporter, {baseline:?} without"
        ));
        ensure!(
            stuck < baseline * 2 + Duration::from_secs(1),
            "ingestion with a stuck exporter took {stuck:?}, without {baseline:?}"
        );
        let n = rig.neighbor();
        let path = rig.out().join("slow.jsonl");
        let dropped = || {
            rig.speaker
                .metric("wasmbgp_plugin_events_dropped_total", &[("plugin", "slow")])
        };
        wait_fast(
            "events dropped and a lagged line",
            Duration::from_millis(500),
            Duration::from_secs(30),
            || {
                Ok(dropped()?.is_some_and(|d| d > 0.0)
                    && read_records(&path)?.iter().any(|r| kind(r) == "lagged"))
            },
        )?;
        let status = rig.speaker.plugin("slow")?;
        rig.step(format!(
            "stuck: dropped {:?}; show plugins: {status}",
            dropped()?
        ));
        ensure!(
            status["events-dropped"].as_u64().is_some_and(|d| d > 0),
            "show plugins: {status}"
        );
        ensure!(
            rig.speaker.session()?.1 == 1,
            "the session reset while the exporter was stuck"
        );

        // Back to normal.
        let snapshots = |records: &[Value]| {
            records
                .iter()
                .filter(|r| kind(r) == "end-of-snapshot")
                .count()
        };
        let before = snapshots(&read_records(&path)?);
        edit_config(
            rig.speaker.config_path(),
            "mode = \"stuck\"\n",
            "mode = \"record\"\n",
        )?;
        rig.speaker.ctl(&["plugin", "reload", "slow"])?;
        let started = Instant::now();
        let records = wait_for_records(&path, Duration::from_secs(60), |r| snapshots(r) > before)?;
        rig.step(format!(
            "reloaded: a new end-of-snapshot after {:?} ({} lines in the file)",
            started.elapsed(),
            records.len()
        ));
        let compare = |what: &str| -> Result<()> {
            let start = Instant::now();
            loop {
                let rib = rib_view(&rig.speaker, &n)?;
                let (view, _) = replay(&read_records(&path)?, &n)?;
                match table_diff(&view, &rib) {
                    None => {
                        rig.step(format!(
                            "{what}: the replayed file matches adj-rib-in ({} routes)",
                            rib.len()
                        ));
                        return Ok(());
                    }
                    Some(diff) => ensure!(
                        start.elapsed() < Duration::from_secs(30),
                        "{what}: the replayed file differs from adj-rib-in: {diff}"
                    ),
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        };
        compare("after the reload")?;
        let records = read_records(&path)?;
        let (_, end) = replay(&records, &n)?;
        let lagged_after = records[end..]
            .iter()
            .filter(|r| kind(r) == "lagged")
            .count();
        ensure!(
            lagged_after == 0,
            "{lagged_after} lagged after the reload's snapshot"
        );

        rig.bird.set_group("drop", false)?;
        wait_fast(
            "wasmbgp to hold 90,000 routes",
            POLL,
            Duration::from_secs(60),
            || Ok(rig.speaker.session()?.2 == u64::from(ROUTES - DROPPED)),
        )?;
        compare("after BIRD withdrew 10,000")?;
        let records = read_records(&path)?;
        ensure!(
            records.iter().filter(|r| kind(r) == "withdraw").count() >= DROPPED as usize,
            "fewer than {DROPPED} withdraw lines"
        );
        let status = rig.speaker.plugin("slow")?;
        ensure!(status["state"] == "running", "show plugins: {status}");
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 5. exabgp-json.

/// Every value under `key` anywhere in `value`.
fn find_key<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    out.push(v);
                }
                find_key(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| find_key(v, key, out)),
        _ => {}
    }
}

/// exabgp-json writes lines a consumer parses: an `update` line announcing
/// one of BIRD's routes and a `state` line with `up`.
#[test]
fn exporter_exabgp_json() {
    let prefixes = ["20.0.0.0/24", "20.0.1.0/24", "20.0.2.0/24"];
    let groups = [StaticGroup::new("few", prefixes)];
    let rig = ExporterRig::start("exporter-exabgp-json", PluginBlock(245), &groups, |out| {
        let path = out.join("exabgp.jsonl");
        Ok(vec![
            ExporterPlugin::new("exa", "exabgp-json")?
                .subscribe(&["sessions", "routes-received", "end-of-rib", "notifications"])
                .setting("path", &path.display().to_string())
                .setting("host", "e2e")
                .append_file(&path),
        ])
    })
    .expect("rig");
    rig.run(|rig| {
        rig.wait_established(Duration::from_secs(30))?;
        let n = rig.neighbor();
        let path = rig.out().join("exabgp.jsonl");
        let announced = |line: &Value| -> BTreeSet<String> {
            let mut nlri = Vec::new();
            find_key(
                &line["neighbor"]["message"]["update"]["announce"],
                "nlri",
                &mut nlri,
            );
            nlri.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let lines = wait_for_records(&path, Duration::from_secs(30), |lines| {
            let all: BTreeSet<String> = lines
                .iter()
                .filter(|l| l["type"] == "update")
                .flat_map(&announced)
                .collect();
            prefixes.iter().all(|p| all.contains(*p))
        })?;
        let update = lines
            .iter()
            .find(|l| l["type"] == "update" && announced(l).contains(prefixes[0]))
            .context("checked above")?;
        rig.step(format!("update line: {update}"));
        ensure!(
            update["neighbor"]["address"]["peer"] == n.as_str(),
            "update names peer {}",
            update["neighbor"]["address"]["peer"]
        );
        ensure!(update["host"] == "e2e", "host {}", update["host"]);
        let state = lines
            .iter()
            .find(|l| {
                let mut states = Vec::new();
                find_key(l, "state", &mut states);
                l["type"] == "state" && states.iter().any(|s| *s == "up")
            })
            .with_context(|| format!("no state up line in {lines:?}"))?;
        rig.step(format!("state line: {state}"));
        ensure!(
            state["neighbor"]["address"]["peer"] == n.as_str(),
            "state names peer {}",
            state["neighbor"]["address"]["peer"]
        );
        Ok(())
    });
}
