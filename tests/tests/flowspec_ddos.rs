//! `ddos-flowspec` against a detector endpoint served by the test (issue 12, item 4):
//! wasmbgp runs the plugin (interval 1 s, `max-rules` 50, `ttl` 3 s, `grants.max-routes`
//! 64, the detector's `IP:PORT` in `grants.http`, GoBGP in `grants.neighbors`) and peers
//! with GoBGP over ipv4-flowspec and ipv6-flowspec; the test changes the detector's JSON
//! document and reads the rules with `gobgp global rib -a ipv4-flowspec|ipv6-flowspec -j`.
//! It shows that:
//!
//! 1. an attack appears → its rule is at GoBGP, with the right components and action,
//!    within 2 intervals of the document's change: IPv4 (destination 192.0.2.10/32, udp,
//!    destination port 53, rate-limit 9600), then IPv6 (2001:db8::80/128, tcp, ports
//!    1024-65535, no action: `default-action` discard), then a redirect (source
//!    203.0.113.0/24 → VRF route target 65001:999); a changed rate replaces the action;
//! 2. an attack disappears → its rule is withdrawn at GoBGP within 2 intervals, the
//!    others stay; the list emptied → every rule withdrawn;
//! 3. a flood of 1,000 distinct attacks stops at the cap: GoBGP holds exactly the first
//!    50 rules (list order), never more, across further polls; the plugin says the rest
//!    were skipped (`flowspec_attacks_skipped_total{reason="max-rules"}` grows by 950 a
//!    poll, the log line "950 attacks over max-rules 50 not announced", the verdict),
//!    `flowspec_rules` and `routes-owned` are 50, the plugin stays healthy (it did what
//!    the cap allows) with no restart, and the session never resets; the list cleared →
//!    all 50 withdrawn;
//! 4. the TTL: when the detector serves garbage, and again when it is unreachable
//!    (connection refused), the rule stays at GoBGP while the plugin reports down, and is
//!    withdrawn once 3 s have passed since the last answer that listed its attack (not
//!    before, and within 2 intervals after); when the detector answers again the plugin
//!    is up and announces what it lists.
//!
//! Timing: each change is timed from the moment the document changed to the `gobgp`
//! query that saw the result (an upper bound: GoBGP is queried back to back, 20 ms
//! apart), and split by the detector's request times into the wait for the plugin's
//! next poll and what follows (fetch → announce → UPDATE → GoBGP). Each change is made
//! as soon as the previous one was seen, a few tens of ms after a poll, so the wait for
//! the next poll is close to a whole interval: the figures are near the worst case. They
//! are printed (`[flowspec_ddos] ...`) and summed up at the end.
//!
//! Block 281 ([`LimitBlock`]): `127.1.25.x`, ports 12810-12819.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;
use wasmbgp_e2e::ddos_support::{DdosPlugin, DdosRig, attack, ddos_component, holds_for, ms};
use wasmbgp_e2e::detector::attacks_json;
use wasmbgp_e2e::flowspec_support::{Component, FlowFamily, FlowRoute};
use wasmbgp_e2e::limits_support::LimitBlock;

const TEST: &str = "flowspec_ddos";
/// The plugin's `interval`.
const INTERVAL: Duration = Duration::from_secs(1);
/// `max-rules`.
const MAX_RULES: usize = 50;
/// `grants.max-routes` (at least `max-rules`, as the README asks).
const MAX_ROUTES: u32 = 64;
/// `ttl`.
const TTL: Duration = Duration::from_secs(3);
/// The attacks of the flood.
const FLOOD: usize = 1000;
/// How long any one change may take before the test gives up (the assertion is
/// tighter: 2 intervals).
const GIVE_UP: Duration = Duration::from_secs(15);
/// Slack under the TTL for the clocks (the plugin stamps a listing when its check
/// starts, the detector when it takes the document: a few ms apart).
const TTL_SLACK: Duration = Duration::from_millis(250);

const V4: &[FlowFamily] = &[FlowFamily::Ipv4];
const V6: &[FlowFamily] = &[FlowFamily::Ipv6];
const BOTH: &[FlowFamily] = &[FlowFamily::Ipv4, FlowFamily::Ipv6];

// ---------------------------------------------------------------------------
// The attacks and the rules GoBGP should hold for them.

/// a1: IPv4, destination 192.0.2.10/32, udp, destination port 53, rate-limit `rate`.
fn a1(rate: u32) -> String {
    attack(&[
        ("id", json!("a1")),
        ("destination", json!("192.0.2.10/32")),
        ("protocol", json!("udp")),
        ("destination-port", json!(53)),
        ("source-port", json!(null)),
        ("action", json!("rate-limit")),
        ("rate", json!(rate)),
    ])
}

fn rule_a1(rate: u32) -> FlowRoute {
    FlowRoute::new(FlowFamily::Ipv4)
        .matching(Component::Destination, "192.0.2.10/32")
        .matching(Component::Protocol, "=udp")
        .matching(Component::DestinationPort, "=53")
        .then(&format!("rate-limit {rate}"))
}

/// a2: IPv6, destination 2001:db8::80/128, tcp, destination ports 1024-65535, no action
/// (the `default-action`, discard).
fn a2() -> String {
    attack(&[
        ("id", json!("a2")),
        ("destination", json!("2001:db8::80/128")),
        ("protocol", json!("tcp")),
        ("destination-port", json!("1024-65535")),
    ])
}

fn rule_a2() -> FlowRoute {
    FlowRoute::new(FlowFamily::Ipv6)
        .matching(Component::Destination, "2001:db8::80/128")
        .matching(Component::Protocol, "=tcp")
        .matching(Component::DestinationPort, ">=1024&<=65535")
        .then("discard")
}

/// a3: IPv4, source 203.0.113.0/24, redirect to the VRF of route target 65001:999.
fn a3() -> String {
    attack(&[
        ("id", json!(3)),
        ("source", json!("203.0.113.0/24")),
        ("action", json!("redirect")),
        ("redirect", json!("65001:999")),
    ])
}

fn rule_a3() -> FlowRoute {
    FlowRoute::new(FlowFamily::Ipv4)
        .matching(Component::Source, "203.0.113.0/24")
        .then("redirect 65001:999")
}

/// Flood attack `i`: destination 198.18.(i / 256).(i % 256)/32, udp, discard.
fn flood_attack(i: usize) -> String {
    attack(&[
        ("id", json!(format!("f{i}"))),
        (
            "destination",
            json!(format!("198.18.{}.{}/32", i / 256, i % 256)),
        ),
        ("protocol", json!("udp")),
        ("action", json!("discard")),
    ])
}

fn flood_rule(i: usize) -> FlowRoute {
    FlowRoute::new(FlowFamily::Ipv4)
        .matching(
            Component::Destination,
            &format!("198.18.{}.{}/32", i / 256, i % 256),
        )
        .matching(Component::Protocol, "=udp")
        .then("discard")
}

// ---------------------------------------------------------------------------
// Timed changes.

/// How long a change of the document took to show at GoBGP.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// From the document's change to the `gobgp` query that saw the result.
    total: Duration,
    /// From the change to the plugin's next request (the detector's time).
    poll: Duration,
    /// From that request to the `gobgp` query that saw the result.
    after_poll: Duration,
    /// Requests the detector answered in between (1: the first poll did it).
    polls: usize,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (next poll after {}, then {} to GoBGP; {} poll{})",
            ms(self.total),
            ms(self.poll),
            ms(self.after_poll),
            self.polls,
            if self.polls == 1 { "" } else { "s" }
        )
    }
}

/// Serves `body` and waits until GoBGP's `families` hold exactly `want`; fails when it
/// took more than 2 intervals.
fn change(
    rig: &DdosRig,
    what: &str,
    body: &str,
    families: &[FlowFamily],
    want: &[FlowRoute],
) -> Result<Timing> {
    let since = rig.serve(body)?;
    let total = rig.wait_routes(what, since, families, want, GIVE_UP)?;
    let timing = timing(rig, since, total)?;
    rig.step(format!("{what}: {timing}"));
    ensure!(
        timing.total <= 2 * INTERVAL,
        "{what}: took {}, more than 2 intervals ({})",
        ms(timing.total),
        ms(2 * INTERVAL)
    );
    // Nothing else changed, in either family.
    rig.expect_routes(want)?;
    Ok(timing)
}

/// The split of `total` (measured from `since`) by the detector's request times.
fn timing(rig: &DdosRig, since: Instant, total: Duration) -> Result<Timing> {
    let seen = since + total;
    let times = rig.detector()?.request_times();
    let first = times
        .iter()
        .copied()
        .find(|t| *t >= since)
        .context("the result showed without a request to the detector")?;
    ensure!(
        first <= seen,
        "the result showed before the plugin asked the detector"
    );
    Ok(Timing {
        total,
        poll: first - since,
        after_poll: seen - first,
        polls: times.iter().filter(|t| **t >= since && **t <= seen).count(),
    })
}

/// The plugin's health from `show plugins --json`.
fn health(rig: &DdosRig) -> Result<String> {
    Ok(rig.plugin()?.health.unwrap_or_else(|| "-".to_owned()))
}

/// What [`ttl_expiry`] measured.
struct Expiry {
    /// From the last answer listing the attack to the withdrawal seen at GoBGP.
    gone: Duration,
    /// From the failure to the plugin's health down.
    down: Duration,
    /// GoBGP samples that showed the rule while the detector failed.
    samples: usize,
}

/// The detector failed at `failed`, its last answer listing `held` (GoBGP's only
/// IPv4 rule) taken at `last_listed`: the rule stays at GoBGP, the plugin reports down,
/// and the rule goes once [`TTL`] has passed since `last_listed`, not before and within 2
/// intervals after.
fn ttl_expiry(
    rig: &DdosRig,
    what: &str,
    held: &FlowRoute,
    last_listed: Instant,
    failed: Instant,
) -> Result<Expiry> {
    let mut down = None;
    let mut samples = 0;
    let gone = loop {
        let routes = rig.flow_routes_of(FlowFamily::Ipv4)?;
        let at = last_listed.elapsed();
        if routes.is_empty() {
            break at;
        }
        ensure!(
            routes.as_slice() == std::slice::from_ref(held),
            "{what}: GoBGP holds {routes:?} while the rule should stay as it is"
        );
        samples += 1;
        if down.is_none() && health(rig)? == "down" {
            down = Some(failed.elapsed());
            let status = rig.plugin()?;
            ensure!(
                status.routes_owned == 1 && status.restarts == 0,
                "{what}: show plugins: {:?}",
                status.raw
            );
        }
        if at > TTL + GIVE_UP {
            bail!("{what}: the rule is still at GoBGP {at:?} after its last listing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let down = down.with_context(|| format!("{what}: the plugin never reported down"))?;
    rig.step(format!(
        "{what}: plugin down {} after the failure; rule kept ({samples} GoBGP samples), withdrawn {} after the last answer listing it (ttl {})",
        ms(down),
        ms(gone),
        ms(TTL)
    ));
    ensure!(
        gone + TTL_SLACK >= TTL,
        "{what}: withdrawn {} after its last listing, before the TTL ({})",
        ms(gone),
        ms(TTL)
    );
    ensure!(
        gone <= TTL + 2 * INTERVAL,
        "{what}: withdrawn {} after its last listing, more than TTL + 2 intervals",
        ms(gone)
    );
    ensure!(
        down <= 2 * INTERVAL,
        "{what}: the plugin reported down only {} after the failure",
        ms(down)
    );
    rig.expect_routes(&[])?;
    Ok(Expiry {
        gone,
        down,
        samples,
    })
}

/// A counter's value (0 when the series is not there yet).
fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    DdosRig::plugin_metric(text, name, labels).unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// The test.

#[test]
fn ddos_flowspec_against_a_detector() {
    let started = Instant::now();
    let plugin = DdosPlugin {
        component: ddos_component().expect("the ddos-flowspec component"),
        interval: INTERVAL,
        settings: [
            ("ttl", format!("{}s", TTL.as_secs())),
            ("max-rules", MAX_RULES.to_string()),
            ("default-action", "discard".to_owned()),
            ("timeout", "500ms".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        max_routes: MAX_ROUTES,
    };
    let mut rig = DdosRig::start(TEST, LimitBlock(281), &plugin, &attacks_json(&[]))
        .expect("GoBGP, wasmbgp and the detector");
    match scenario(&mut rig) {
        Ok(figures) => {
            eprintln!("[{TEST}] figures:");
            for line in &figures {
                eprintln!("[{TEST}]   {line}");
            }
            eprintln!("[{TEST}] passed in {:.1?}", started.elapsed());
        }
        Err(e) => panic!(
            "[{TEST}] failed after {:.1?}: {e:#}\n{}",
            started.elapsed(),
            rig.logs()
        ),
    }
}

fn scenario(rig: &mut DdosRig) -> Result<Vec<String>> {
    let mut figures = Vec::new();

    // 0. No attack: the first checks are healthy, GoBGP holds no flow route.
    wait("the plugin up on an empty list", || {
        Ok(health(rig)? == "up" && rig.detector()?.requests() >= 3)
    })?;
    rig.expect_routes(&[])?;
    let times = rig.detector()?.request_times();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<Duration>() / gaps.len().max(1) as u32;
    rig.step(format!(
        "empty list: plugin up, no flow route at GoBGP; polls every {} on average ({} requests)",
        ms(mean),
        times.len()
    ));
    figures.push(format!(
        "poll period: {} on average (interval {})",
        ms(mean),
        ms(INTERVAL)
    ));

    // 1. Attacks appear: each rule arrives within 2 intervals.
    let t = change(
        rig,
        "IPv4 rate-limit attack a1 appears",
        &attacks_json(&[a1(9600)]),
        V4,
        &[rule_a1(9600)],
    )?;
    figures.push(format!("a1 (IPv4 rate-limit 9600) at GoBGP after {t}"));
    let t = change(
        rig,
        "IPv6 attack a2 appears (default-action discard)",
        &attacks_json(&[a1(9600), a2()]),
        V6,
        &[rule_a1(9600), rule_a2()],
    )?;
    figures.push(format!("a2 (IPv6 discard) at GoBGP after {t}"));
    let t = change(
        rig,
        "redirect attack 3 appears",
        &attacks_json(&[a1(9600), a2(), a3()]),
        V4,
        &[rule_a1(9600), rule_a2(), rule_a3()],
    )?;
    figures.push(format!("a3 (IPv4 redirect 65001:999) at GoBGP after {t}"));
    for route in rig.flow_routes()? {
        rig.step(format!("GoBGP holds {route}"));
    }
    let status = rig.plugin()?;
    ensure!(
        status.routes_owned == 3 && status.health.as_deref() == Some("up"),
        "show plugins: {:?}",
        status.raw
    );

    // The detector changes a1's rate: the rule's action is replaced.
    let t = change(
        rig,
        "a1's rate changes to 4800",
        &attacks_json(&[a1(4800), a2(), a3()]),
        V4,
        &[rule_a1(4800), rule_a2(), rule_a3()],
    )?;
    figures.push(format!("a1's new rate (4800) at GoBGP after {t}"));

    // 2. Attacks disappear: withdrawn within 2 intervals, the others stay.
    let t = change(
        rig,
        "a1 disappears",
        &attacks_json(&[a2(), a3()]),
        V4,
        &[rule_a2(), rule_a3()],
    )?;
    figures.push(format!("a1 withdrawn at GoBGP after {t}"));
    let t = change(
        rig,
        "every attack disappears",
        &attacks_json(&[]),
        BOTH,
        &[],
    )?;
    figures.push(format!(
        "a2 and a3 (both families) withdrawn at GoBGP after {t}"
    ));

    // 3. A flood of 1,000 attacks stops at the cap.
    let before = rig.scrape()?;
    let skipped_before = counter(
        &before,
        "flowspec_attacks_skipped_total",
        &[("reason", "max-rules")],
    );
    let failures_before = counter(&before, "flowspec_detector_failures_total", &[]);
    let flood: Vec<String> = (0..FLOOD).map(flood_attack).collect();
    let body = attacks_json(&flood);
    // The first `max-rules` of the list, sorted as the readers return them.
    let mut capped: Vec<FlowRoute> = (0..MAX_RULES).map(flood_rule).collect();
    capped.sort();
    let since = rig.serve(&body)?;
    let mut most = 0;
    let mut polled = 0;
    let took = loop {
        let routes = rig.flow_routes_of(FlowFamily::Ipv4)?;
        let at = since.elapsed();
        polled += 1;
        most = most.max(routes.len());
        ensure!(
            routes.len() <= MAX_RULES,
            "GoBGP holds {} flood rules, more than max-rules {MAX_RULES}",
            routes.len()
        );
        if routes == capped {
            break at;
        }
        if at > GIVE_UP {
            bail!(
                "GoBGP holds {} of the {MAX_RULES} first flood rules after {at:?}",
                routes.iter().filter(|r| capped.contains(r)).count()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let t = timing(rig, since, took)?;
    rig.step(format!(
        "flood of {FLOOD} attacks ({} KiB): GoBGP holds the first {MAX_RULES} after {t}; at most {most} seen in {polled} samples",
        body.len() / 1024
    ));
    ensure!(
        took <= 2 * INTERVAL,
        "the capped flood took {}, more than 2 intervals",
        ms(took)
    );
    figures.push(format!(
        "flood of {FLOOD}: the first {MAX_RULES} rules at GoBGP after {t}"
    ));
    // Further polls of the same flood change nothing: never more than the cap.
    let polls_before = rig.detector()?.requests();
    let samples = holds_for(
        "exactly the capped rules at GoBGP",
        Duration::from_millis(200),
        3 * INTERVAL,
        || {
            let routes = rig.flow_routes_of(FlowFamily::Ipv4)?;
            Ok(if routes == capped {
                Ok(())
            } else {
                Err(format!("{} rules", routes.len()))
            })
        },
    )?;
    let polls = rig.detector()?.requests() - polls_before;
    ensure!(polls >= 2, "only {polls} polls in 3 intervals of the flood");
    rig.expect_routes(&capped)?;
    rig.step(format!(
        "the cap holds: exactly {MAX_RULES} rules at GoBGP in {samples} samples over {} more polls of the flood",
        polls
    ));
    // The plugin says the rest were skipped.
    let after = rig.scrape()?;
    let rules_gauge = DdosRig::plugin_metric(&after, "flowspec_rules", &[]);
    let skipped = counter(
        &after,
        "flowspec_attacks_skipped_total",
        &[("reason", "max-rules")],
    ) - skipped_before;
    let over = (FLOOD - MAX_RULES) as f64;
    ensure!(
        rules_gauge == Some(MAX_RULES as f64),
        "wasmbgp_plugin_flowspec_rules = {rules_gauge:?}, not {MAX_RULES}"
    );
    ensure!(
        skipped >= 2.0 * over && skipped % over == 0.0,
        "flowspec_attacks_skipped_total{{reason=\"max-rules\"}} grew by {skipped}: not {over} per poll"
    );
    ensure!(
        counter(&after, "flowspec_detector_failures_total", &[]) == failures_before,
        "detector failures counted during the flood"
    );
    let warned = rig.plugin_log(&format!(
        "{} attacks over max-rules {MAX_RULES} not announced",
        FLOOD - MAX_RULES
    ));
    let warning = warned
        .first()
        .context("no log line about the attacks over max-rules")?;
    ensure!(
        warning.contains("WARN") && warning.contains("f50, f51, f52, f53, f54, and 945 more"),
        "log: {warning}"
    );
    let verdict = rig
        .plugin_log(&format!("detector listed {FLOOD} attacks"))
        .last()
        .cloned()
        .context("no verdict for the flood in the log")?;
    ensure!(
        verdict.contains(&format!(
            "{MAX_RULES} rules in force (0 announced, 0 withdrawn); {} over max-rules {MAX_RULES}",
            FLOOD - MAX_RULES
        )),
        "the last verdict: {verdict}"
    );
    let status = rig.plugin()?;
    ensure!(
        status.health.as_deref() == Some("up")
            && status.state == "running"
            && status.restarts == 0
            && status.routes_owned == MAX_RULES as u64
            && status.denied == 0
            && status.invalid == 0,
        "show plugins: {:?}",
        status.raw
    );
    rig.assert_session_untouched()?;
    rig.step(format!(
        "skipped: metric +{skipped} ({} polls × {over}), flowspec_rules {MAX_RULES}, routes-owned {}, health up, restarts 0, check p50 {} µs p99 {} µs",
        skipped / over,
        status.routes_owned,
        status.p50_us,
        status.p99_us
    ));
    rig.step(format!("log: {}", message(warning)));
    rig.step(format!("verdict: {}", message(&verdict)));
    figures.push(format!(
        "flood: exactly {MAX_RULES} rules held over {polls} further polls; skipped_total{{max-rules}} +{skipped} ({over} a poll); health up; check p99 {} µs",
        status.p99_us
    ));
    let t = change(rig, "the flood is cleared", &attacks_json(&[]), BOTH, &[])?;
    figures.push(format!("the {MAX_RULES} flood rules withdrawn after {t}"));
    wait("flowspec_rules and routes-owned back to 0", || {
        let text = rig.scrape()?;
        Ok(
            DdosRig::plugin_metric(&text, "flowspec_rules", &[]) == Some(0.0)
                && rig.plugin()?.routes_owned == 0,
        )
    })?;

    // 4. The TTL: the detector serves garbage, then is unreachable.
    change(
        rig,
        "a1 listed again",
        &attacks_json(&[a1(9600)]),
        V4,
        &[rule_a1(9600)],
    )?;
    let failures_before = counter(&rig.scrape()?, "flowspec_detector_failures_total", &[]);
    let before_garbage = Instant::now();
    let failed = rig.serve("<html>502 Bad Gateway</html>")?;
    let last_listed = rig
        .detector()?
        .last_request_before(before_garbage)
        .context("no request listed a1")?;
    let expiry = ttl_expiry(
        rig,
        "detector serving garbage",
        &rule_a1(9600),
        last_listed,
        failed,
    )?;
    let failures =
        counter(&rig.scrape()?, "flowspec_detector_failures_total", &[]) - failures_before;
    ensure!(
        failures >= 3.0,
        "flowspec_detector_failures_total grew by {failures}"
    );
    let kept = rig.plugin_log("the answer is not JSON");
    ensure!(
        kept.iter()
            .any(|l| l.contains("WARN") && l.contains("keeping 1 rule until their TTL")),
        "no warning about the garbage: {kept:?}"
    );
    let expiring = rig
        .plugin_log("keeping 1 rule until their TTL (the first in")
        .into_iter()
        .find(|l| l.contains("passed=false"))
        .context("no verdict keeping the rule")?;
    rig.step(format!("verdict: {}", message(&expiring)));
    figures.push(format!(
        "garbage from the detector: down after {}, rule kept, withdrawn {} after the last listing (ttl {}; {} GoBGP samples showed it meanwhile); failures_total +{failures}",
        ms(expiry.down),
        ms(expiry.gone),
        ms(TTL),
        expiry.samples
    ));
    let t = change(
        rig,
        "the detector answers again, listing a1",
        &attacks_json(&[a1(9600)]),
        V4,
        &[rule_a1(9600)],
    )?;
    wait("the plugin up again", || Ok(health(rig)? == "up"))?;
    ensure!(
        !rig.plugin_log("detector answers again").is_empty(),
        "no log line about the detector answering again"
    );
    figures.push(format!("a1 back after the detector recovered: {t}"));

    let last_listed = *rig
        .detector()?
        .request_times()
        .last()
        .context("no request")?;
    let failed = rig.stop_detector();
    let expiry = ttl_expiry(
        rig,
        "detector unreachable",
        &rule_a1(9600),
        last_listed,
        failed,
    )?;
    let refused = rig.plugin_log("keeping 1 rule until their TTL");
    ensure!(
        refused
            .iter()
            .any(|l| l.contains("WARN") && !l.contains("not JSON")),
        "no warning about the unreachable detector: {refused:?}"
    );
    figures.push(format!(
        "detector unreachable: down after {}, rule withdrawn {} after the last listing (ttl {})",
        ms(expiry.down),
        ms(expiry.gone),
        ms(TTL)
    ));
    rig.restart_detector(&attacks_json(&[]))?;
    wait("the plugin up once the detector is back", || {
        Ok(health(rig)? == "up")
    })?;

    // Through it all: one session, no restart of the plugin, no panic.
    rig.expect_routes(&[])?;
    rig.assert_session_untouched()?;
    let status = rig.plugin()?;
    ensure!(
        status.restarts == 0 && status.state == "running" && status.denied == 0,
        "show plugins: {:?}",
        status.raw
    );
    ensure!(
        !rig.speaker.log().contains("panicked"),
        "wasmbgp's log shows a panic"
    );
    rig.step(format!(
        "session Established once throughout; plugin {} calls, 0 restarts",
        status.calls
    ));
    Ok(figures)
}

/// Waits (at most [`GIVE_UP`]) for `probe`.
fn wait(what: &str, probe: impl FnMut() -> Result<bool>) -> Result<()> {
    wasmbgp_e2e::wait::wait_until(what, GIVE_UP, probe)
}

/// A log record without its timestamp, level and target, for quoting.
fn message(record: &str) -> String {
    let mut words = record.split_whitespace().skip(2).peekable();
    if words
        .peek()
        .is_some_and(|w| w.ends_with(':') && w.contains("::"))
    {
        words.next();
    }
    words.collect::<Vec<_>>().join(" ")
}
