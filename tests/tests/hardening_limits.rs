//! Prefix limits and the Cease at shutdown, end to end against real BIRD 2 and ExaBGP
//! 4.2 (issue 11): `max-prefixes` (cease with RFC 4486 data and restart, per family,
//! warn), `max-advertise`, and what a stopping wasmbgp sends.
//!
//! Blocks ([`LimitBlock`]: block `N` is `127.(N / 256).(N % 256).x`, ports
//! `10000 + 10 N + k`); each BIRD is passive (`passive on`), one protocol per wasmbgp
//! neighbor, so every session is one wasmbgp opened:
//!
//! | test | block | hosts, ports |
//! |---|---|---|
//! | `max_prefixes_cease_and_restart` | 258 | .1 wasmbgp, .2 `over`, .3 `exact`; 0-1, 5-6 |
//! | `max_prefixes_per_family` | 259 | .1 wasmbgp, .2 `mixed`, .3 `fits`; 0-1, 5-6 |
//! | `max_prefixes_warn` | 260 | .1 wasmbgp, .2 `warned`; 0, 5 |
//! | `max_advertise_caps_announcements` | 260 | .11 wasmbgp, .12 `capped`, .13 `open`; 2-3, 6-7 |
//! | `max_advertise_check_refuses` | none | `wasmbgp check` only |
//! | `shutdown_exabgp_gets_a_plain_cease` | 261 | .1 wasmbgp, .2 ExaBGP; 0-1 |
//! | `shutdown_ctl_message_reaches_bird` | 261 | .11 wasmbgp, .12 `edge`; 2-3 |
//! | `shutdown_config_message_reaches_bird` | 261 | .21/.23 wasmbgp, .22 `cfg`, .24 `plain`; 4-7 |
//!
//! What each asserts is in its doc comment. BIRD is asked through `birdc` and wasmbgp
//! through `ctl`, whose failures are errors; every wait and sampling loop is bounded.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use wasmbgp_e2e::check::{check, line_col};
use wasmbgp_e2e::limits_support::{
    BIRD_AS, LimitBird, LimitBlock, LimitSession, LimitSpeaker, WASMBGP_AS, ensure_exit_0,
    render_config, shutdown_message_line, v4_prefixes, v6_prefixes,
};
use wasmbgp_e2e::peers::exabgp::ExaBgp;
use wasmbgp_e2e::peers::{Peer, PeerSpec, Remote};
use wasmbgp_e2e::plugin_support::{log_records, same_since};
use wasmbgp_e2e::policy_support::wait_stable;
use wasmbgp_e2e::reload_support::wait_strict;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wasmbgp::{Config, NeighborConfig, RouteAttrs};
use wasmbgp_e2e::workdir::{WorkDir, run_in_workdir};

/// How often a state is polled.
const POLL: Duration = Duration::from_millis(100);
/// Bound for sessions to come up (and a first Cease to arrive).
const UP: Duration = Duration::from_secs(20);
/// wasmbgp's restart delay after a max-prefixes Cease.
const RESTART: Duration = Duration::from_secs(3);
/// What the tests tolerate between an event and its observation by polling.
const SLACK: Duration = Duration::from_millis(500);
/// How long a session that must stay up is watched.
const WATCH: Duration = Duration::from_secs(4);
/// Bound for wasmbgp to exit after SIGTERM or `ctl shutdown`.
const EXIT: Duration = Duration::from_secs(15);

const METRIC_EVENTS: &str = "wasmbgp_bgp_prefix_limit_events_total";
const METRIC_LIMIT: &str = "wasmbgp_bgp_max_prefixes";
const METRIC_REFUSED: &str = "wasmbgp_bgp_routes_refused_max_advertise_total";

/// What BIRD logs for a received Cease/Maximum Number of Prefixes Reached, without its
/// data (`: AFI SAFI LIMIT` in hex follows).
const BIRD_MAX_PREFIXES: &str = "Received: Maximum number of prefixes reached";

/// Runs `body` in a fresh [`WorkDir`]; an error fails the test with the directory kept
/// (configs and daemon logs).
fn run(test: &str, body: impl FnOnce(&str, &WorkDir) -> Result<()>) {
    run_in_workdir(test, |work| body(test, work));
}

/// Starts a wasmbgp in `dir` (log level `info`) with a config from `router_id`, `top`
/// lines and `neighbors` (each: address, BIRD's port, families, raw lines such as
/// `max-prefixes = 10`), sessions opened from `router_id`.
fn start_limited(
    dir: &Path,
    router_id: Ipv4Addr,
    top: &[String],
    neighbors: &[(Ipv4Addr, u16, &[&str], Vec<String>)],
) -> Result<LimitSpeaker> {
    let config = Config {
        router_id: router_id.to_string(),
        local_as: WASMBGP_AS,
        listen: None,
        neighbors: neighbors
            .iter()
            .map(|(address, port, families, _)| NeighborConfig {
                hold_time: Some(30),
                families: families.iter().map(|f| f.to_string()).collect(),
                ..NeighborConfig::new(address, *port, BIRD_AS, router_id)
            })
            .collect(),
        routes: Vec::new(),
        route_files: Vec::new(),
    };
    let extra: Vec<(String, Vec<String>)> = neighbors
        .iter()
        .map(|(address, _, _, lines)| (address.to_string(), lines.clone()))
        .collect();
    let text = render_config(&config, &LimitSpeaker::socket_in(dir), top, &extra)?;
    LimitSpeaker::start(dir, &text, "info")
}

/// Waits until BIRD's protocol `name` and wasmbgp's neighbor `address` are both
/// Established; BIRD's `since` of the session.
fn wait_up(
    bird: &LimitBird,
    wasmbgp: &LimitSpeaker,
    name: &str,
    address: Ipv4Addr,
) -> Result<String> {
    wait_strict(&format!("session {name} up at both ends"), POLL, UP, || {
        Ok(bird.established(name)? && wasmbgp.session(address)?.0 == "established")
    })?;
    Ok(bird.line(name)?.since)
}

/// `prefix-limits` of `show neighbors --json` for `address`, as `family → (received,
/// limit, action)`.
fn prefix_limits(
    wasmbgp: &LimitSpeaker,
    address: Ipv4Addr,
) -> Result<Vec<(String, u64, u64, String)>> {
    let n = wasmbgp.neighbor(address)?;
    let Some(list) = n.get("prefix-limits") else {
        return Ok(Vec::new());
    };
    list.as_array()
        .with_context(|| format!("prefix-limits is not a list: {n}"))?
        .iter()
        .map(|l| {
            Ok((
                l["family"].as_str().context("no family")?.to_owned(),
                l["received"].as_u64().context("no received")?,
                l["limit"].as_u64().context("no limit")?,
                l["action"].as_str().context("no action")?.to_owned(),
            ))
        })
        .collect::<Result<_>>()
        .with_context(|| format!("bad prefix-limits in {n}"))
}

/// wasmbgp's log records containing `needle` and the word `neighbor=ADDRESS`.
fn records(wasmbgp: &LimitSpeaker, needle: &str, address: Ipv4Addr) -> Result<Vec<String>> {
    let tag = format!("neighbor={address}");
    Ok(log_records(&wasmbgp.log()?)
        .into_iter()
        .filter(|r| r.contains(needle) && r.split_whitespace().any(|w| w == tag))
        .collect())
}

/// The value of `METRIC_EVENTS{neighbor, family, event}`, 0 when the series is absent.
fn events(wasmbgp: &LimitSpeaker, address: Ipv4Addr, family: &str, event: &str) -> Result<f64> {
    let neighbor = address.to_string();
    Ok(wasmbgp
        .metric(
            METRIC_EVENTS,
            &[
                ("neighbor", &neighbor),
                ("family", family),
                ("event", event),
            ],
        )?
        .unwrap_or(0.0))
}

/// Waits for the `n`-th Cease/Maximum Number of Prefixes in BIRD's log for protocol
/// `name`; every NOTIFICATION BIRD logged for `name` so far must be exactly `expected`.
fn wait_ceases(
    bird: &LimitBird,
    name: &str,
    n: usize,
    expected: &str,
    timeout: Duration,
) -> Result<Instant> {
    wait_strict(
        &format!("Cease number {n} at BIRD's {name}"),
        POLL,
        timeout,
        || {
            let lines = bird.received(name)?;
            if let Some(other) = lines.iter().find(|l| l.as_str() != expected) {
                bail!("BIRD's {name} logged {other:?}, not {expected:?}");
            }
            Ok(lines.len() >= n)
        },
    )?;
    Ok(Instant::now())
}

/// In BIRD's log of protocol `name`: the first two sessions and what ended them must be
/// `BGP session established`, `expected`, `BGP session established`, `expected`; the
/// second session must start between 2.9 s (the 3 s restart delay, less BIRD's cached
/// clock) and 8 s after the first Cease. Returns that delay in milliseconds.
fn restart_delay(bird: &LimitBird, name: &str, expected: &str) -> Result<i64> {
    const UP_LINE: &str = "BGP session established";
    let lines: Vec<_> = bird
        .protocol_log(name)?
        .into_iter()
        .filter(|l| l.text == UP_LINE || l.text.starts_with("Received: "))
        .take(4)
        .collect();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    ensure!(
        texts == [UP_LINE, expected, UP_LINE, expected],
        "BIRD's {name}: sessions and NOTIFICATIONs {texts:?}"
    );
    let delay = lines[2].millis - lines[1].millis;
    ensure!(
        (2900..=8000).contains(&delay),
        "BIRD's {name}: the new session came {delay} ms after the Cease, not after the 3 s restart delay"
    );
    Ok(delay)
}

/// Waits for BIRD's protocol `name` to log the Cease `expected`, then (after the step
/// `second_step`, when given) for a new session after the restart delay, Ceased again
/// ([`restart_delay`]).
fn ceased_twice(
    test: &str,
    bird: &LimitBird,
    name: &str,
    expected: &str,
    second_step: Option<&str>,
) -> Result<()> {
    let first = wait_ceases(bird, name, 1, expected, UP)?;
    step(test, format!("   BIRD: <RMT> {name}: {expected}"));
    if let Some(second_step) = second_step {
        step(test, second_step);
    }
    let second = wait_ceases(bird, name, 2, expected, RESTART + Duration::from_secs(10))?;
    ensure!(
        second - first >= RESTART - SLACK,
        "the second Cease was seen {:?} after the first: wasmbgp did not wait the 3 s restart delay",
        second - first
    );
    let delay = restart_delay(bird, name, expected)?;
    step(
        test,
        format!("   BIRD's log: Cease, {delay} ms later a new session, Ceased again"),
    );
    Ok(())
}

/// Fails unless BIRD's protocol `name` is still the session that came up at `since`
/// and wasmbgp's neighbor `address` is Established for the first time.
fn same_session(
    bird: &LimitBird,
    wasmbgp: &LimitSpeaker,
    name: &str,
    address: Ipv4Addr,
    since: &str,
) -> Result<()> {
    let line = bird.line(name)?;
    ensure!(
        line.info.starts_with("Established") && same_since(&line.since, since),
        "BIRD's {name} is {line:?}, since {since} when it came up"
    );
    let session = wasmbgp.session(address)?;
    ensure!(
        session == ("established".to_owned(), 1),
        "wasmbgp's {name} is {}, established {} times",
        session.0,
        session.1
    );
    Ok(())
}

/// Fails unless BIRD's protocol `name` has received no NOTIFICATION.
fn none_received(bird: &LimitBird, name: &str) -> Result<()> {
    let received = bird.received(name)?;
    ensure!(received.is_empty(), "BIRD's {name} received {received:?}");
    Ok(())
}

/// Fails unless BIRD's protocol `name` has received exactly one NOTIFICATION,
/// `expected`.
fn received_only(bird: &LimitBird, name: &str, expected: &str) -> Result<()> {
    let received = bird.received(name)?;
    ensure!(
        received == vec![expected.to_owned()],
        "BIRD's {name} logged {received:?}, not [{expected:?}]"
    );
    Ok(())
}

/// Starts BIRD (in `WORK/bird`, router id `bird_id`, `sessions` toward `local`) and a
/// wasmbgp ([`start_limited`] in `WORK/wasmbgp` from `local` with `neighbors`) and runs
/// `body` on them; its error comes with both daemons' views.
fn with_daemons(
    work: &WorkDir,
    bird_id: Ipv4Addr,
    local: Ipv4Addr,
    sessions: Vec<LimitSession>,
    neighbors: &[(Ipv4Addr, u16, &[&str], Vec<String>)],
    body: impl FnOnce(&LimitBird, &mut LimitSpeaker) -> Result<()>,
) -> Result<()> {
    let bird = LimitBird::start(&work.subdir("bird")?, bird_id, local, sessions)?;
    let mut wasmbgp = start_limited(&work.subdir("wasmbgp")?, local, &[], neighbors)?;
    let result = body(&bird, &mut wasmbgp);
    with_diagnostics(result, &bird, &wasmbgp)
}

/// Fails with both daemons' views when `result` is an error.
fn with_diagnostics<T>(result: Result<T>, bird: &LimitBird, wasmbgp: &LimitSpeaker) -> Result<T> {
    result.map_err(|e| e.context(format!("{}{}", bird.diagnostics(), wasmbgp.diagnostics())))
}

// ---------------------------------------------------------------------------
// max-prefixes: cease, restart, exactly at the limit.

/// Block 258. BIRD sends 11 IPv4 routes on `over` (wasmbgp: `max-prefixes = 10`,
/// `max-prefixes-restart = "3s"`) and 10 on `exact` (same limit):
///
/// - BIRD's log shows `Received: Maximum number of prefixes reached: 0001010000000a`
///   (AFI 1, SAFI 1, limit 10) for `over`, and no other NOTIFICATION; in BIRD's log
///   (its timestamps) the session, the Cease, a new session 2.9 to 8 s after the Cease
///   (the 3 s restart delay), and the same Cease again; wasmbgp's `established-count`
///   is 2 or more.
/// - `wasmbgp_bgp_prefix_limit_events_total{event="cease"}` for `over` lies between
///   BIRD's count of those Ceases before and after the scrape (+1 in flight), and is at
///   least 2; `wasmbgp_notifications_total` counts the sent Cease/1 alike; each Cease
///   has its `max-prefixes exceeded` log record; `wasmbgp_bgp_max_prefixes` is 10.
/// - `exact` (limit + 0) never triggers: one session all along (BIRD's `since`
///   unchanged, `established-count` 1), no NOTIFICATION at BIRD, no `cease`/`warn`
///   event, exactly one `warning` event (10 ≥ 90 % of 10), and `show neighbors` says
///   `max-prefixes ipv4-unicast 10/10 (cease)` (JSON alike).
#[test]
fn max_prefixes_cease_and_restart() {
    run("limits-cease", |test, work| {
        let block = LimitBlock(258);
        let local = block.addr(1);
        let (over, exact) = (block.addr(2), block.addr(3));
        let limit = || {
            vec![
                "max-prefixes = 10".to_owned(),
                "max-prefixes-restart = \"3s\"".to_owned(),
            ]
        };
        with_daemons(
            work,
            over,
            local,
            vec![
                LimitSession {
                    routes4: v4_prefixes(0, 11),
                    ..LimitSession::new("over", over, block.port(0), block.port(5))
                },
                LimitSession {
                    routes4: v4_prefixes(1, 10),
                    ..LimitSession::new("exact", exact, block.port(1), block.port(6))
                },
            ],
            &[
                (over, block.port(0), &["ipv4-unicast"], limit()),
                (exact, block.port(1), &["ipv4-unicast"], limit()),
            ],
            |bird, wasmbgp| cease_and_restart(test, bird, wasmbgp, over, exact),
        )
    });
}

fn cease_and_restart(
    test: &str,
    bird: &LimitBird,
    wasmbgp: &LimitSpeaker,
    over: Ipv4Addr,
    exact: Ipv4Addr,
) -> Result<()> {
    let expected = format!("{BIRD_MAX_PREFIXES}: 0001010000000a");
    step(
        test,
        "1. exact (10 routes) comes up; over (11 routes) is Ceased",
    );
    let exact_since = wait_up(bird, wasmbgp, "exact", exact)?;
    ceased_twice(
        test,
        bird,
        "over",
        &expected,
        Some("2. a new session after the 3 s restart delay, Ceased again"),
    )?;
    let (_, established) = wasmbgp.session(over)?;
    ensure!(
        established >= 2,
        "wasmbgp's established-count for over is {established} after two Ceases"
    );

    step(test, "3. metrics and log count the Ceases");
    let over_label = over.to_string();
    let before = bird.received("over")?.len() as f64;
    let metrics = wasmbgp.metrics()?;
    let after = bird.received("over")?.len() as f64;
    let value = |name: &str, labels: &[(&str, &str)]| {
        wasmbgp_e2e::policy_support::metric_value(&metrics, name, labels).unwrap_or(0.0)
    };
    let ceases = value(
        METRIC_EVENTS,
        &[
            ("neighbor", &over_label),
            ("family", "ipv4-unicast"),
            ("event", "cease"),
        ],
    );
    ensure!(
        ceases >= 2.0 && before <= ceases && ceases <= after + 1.0,
        "{METRIC_EVENTS} cease for over is {ceases}; BIRD logged {before} then {after} Ceases"
    );
    let sent = value(
        "wasmbgp_notifications_total",
        &[("neighbor", &over_label), ("code", "6"), ("subcode", "1")],
    );
    // The same scrape: the Cease counted and not yet sent at most.
    ensure!(
        sent == ceases || sent + 1.0 == ceases,
        "wasmbgp_notifications_total for Cease/1 to over is {sent}, the cease events {ceases}:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("notifications"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let warns = value(
        METRIC_EVENTS,
        &[
            ("neighbor", &over_label),
            ("family", "ipv4-unicast"),
            ("event", "warn"),
        ],
    );
    ensure!(warns == 0.0, "{METRIC_EVENTS} warn for over is {warns}");
    for address in [over, exact] {
        let label = address.to_string();
        let limit = value(
            METRIC_LIMIT,
            &[("neighbor", &label), ("family", "ipv4-unicast")],
        );
        ensure!(limit == 10.0, "{METRIC_LIMIT} of {address} is {limit}");
    }
    let logged = records(wasmbgp, "max-prefixes exceeded", over)?;
    ensure!(
        logged.len() as f64 >= ceases - 1.0 && logged.iter().all(|r| r.contains("cease")),
        "{} `max-prefixes exceeded` records for over ({ceases} ceases): {logged:#?}",
        logged.len()
    );
    step(
        test,
        format!(
            "   {ceases} cease events, {sent} Cease/1 sent; {}",
            logged[0]
        ),
    );

    step(
        test,
        "4. exact (limit + 0): one session all along, only the warning",
    );
    none_received(bird, "exact")?;
    same_session(bird, wasmbgp, "exact", exact, &exact_since)?;
    for (event, want) in [("cease", 0.0), ("warn", 0.0), ("warning", 1.0)] {
        let v = events(wasmbgp, exact, "ipv4-unicast", event)?;
        ensure!(
            v == want,
            "{METRIC_EVENTS} {event} for exact is {v}, not {want}"
        );
    }
    ensure!(
        records(wasmbgp, "max-prefixes exceeded", exact)?.is_empty(),
        "wasmbgp logged max-prefixes exceeded for exact"
    );
    let warned = records(wasmbgp, "prefixes received near max-prefixes", exact)?;
    ensure!(warned.len() == 1, "warning records for exact: {warned:#?}");
    let text = wasmbgp.neighbor_line(exact)?;
    ensure!(
        text.contains(" max-prefixes ipv4-unicast 10/10 (cease)"),
        "show neighbors for exact: {text}"
    );
    let limits = prefix_limits(wasmbgp, exact)?;
    ensure!(
        limits == vec![("ipv4-unicast".to_owned(), 10, 10, "cease".to_owned())],
        "prefix-limits of exact: {limits:?}"
    );
    let over_limits = prefix_limits(wasmbgp, over)?;
    ensure!(
        over_limits.len() == 1 && over_limits[0].2 == 10 && over_limits[0].3 == "cease",
        "prefix-limits of over: {over_limits:?}"
    );
    step(test, format!("   {}", text.trim()));
    Ok(())
}

// ---------------------------------------------------------------------------
// max-prefixes per family.

/// Block 259. One IPv4 session carrying both families; wasmbgp
/// `max-prefixes = { ipv4-unicast = 10, ipv6-unicast = 5 }`, restart 3 s. BIRD sends 10
/// IPv4 + 6 IPv6 routes on `mixed` and 10 + 5 on `fits`:
///
/// - `mixed` is Ceased with `Maximum number of prefixes reached: 00020100000005`
///   (AFI 2, SAFI 1, limit 5), and again in a new session 2.9 to 8 s later; the events count `cease` for
///   ipv6-unicast only (none for ipv4-unicast, which is at its limit);
///   `wasmbgp_bgp_max_prefixes` is 10 and 5.
/// - `fits` stays up (same `since`, `established-count` 1, no NOTIFICATION) and `show
///   neighbors` says `10/10` and `5/5` for its two families.
#[test]
fn max_prefixes_per_family() {
    run("limits-family", |test, work| {
        let block = LimitBlock(259);
        let local = block.addr(1);
        let (mixed, fits) = (block.addr(2), block.addr(3));
        let limit = || {
            vec![
                "max-prefixes = { ipv4-unicast = 10, ipv6-unicast = 5 }".to_owned(),
                "max-prefixes-restart = \"3s\"".to_owned(),
            ]
        };
        let both: &[&str] = &["ipv4-unicast", "ipv6-unicast"];
        with_daemons(
            work,
            mixed,
            local,
            vec![
                LimitSession {
                    routes4: v4_prefixes(0, 10),
                    routes6: v6_prefixes(0, 6),
                    ..LimitSession::new("mixed", mixed, block.port(0), block.port(5))
                },
                LimitSession {
                    routes4: v4_prefixes(1, 10),
                    routes6: v6_prefixes(1, 5),
                    ..LimitSession::new("fits", fits, block.port(1), block.port(6))
                },
            ],
            &[
                (mixed, block.port(0), both, limit()),
                (fits, block.port(1), both, limit()),
            ],
            |bird, wasmbgp| per_family(test, bird, wasmbgp, mixed, fits),
        )
    });
}

fn per_family(
    test: &str,
    bird: &LimitBird,
    wasmbgp: &LimitSpeaker,
    mixed: Ipv4Addr,
    fits: Ipv4Addr,
) -> Result<()> {
    let expected = format!("{BIRD_MAX_PREFIXES}: 00020100000005");
    step(test, "1. fits (10 + 5) comes up and holds both families");
    let fits_since = wait_up(bird, wasmbgp, "fits", fits)?;
    wait_strict("fits' routes counted at wasmbgp", POLL, UP, || {
        Ok(prefix_limits(wasmbgp, fits)?
            .iter()
            .map(|l| l.1)
            .collect::<Vec<_>>()
            == vec![10, 5])
    })?;

    step(
        test,
        "2. mixed (10 + 6): Cease with AFI 2 SAFI 1 limit 5, twice",
    );
    ceased_twice(test, bird, "mixed", &expected, None)?;
    let before = bird.received("mixed")?.len() as f64;
    let v6 = events(wasmbgp, mixed, "ipv6-unicast", "cease")?;
    let after = bird.received("mixed")?.len() as f64;
    ensure!(
        v6 >= 2.0 && before <= v6 && v6 <= after + 1.0,
        "{METRIC_EVENTS} ipv6-unicast cease for mixed is {v6}; BIRD logged {before} then {after}"
    );
    for event in ["cease", "warn"] {
        let v4 = events(wasmbgp, mixed, "ipv4-unicast", event)?;
        ensure!(
            v4 == 0.0,
            "{METRIC_EVENTS} ipv4-unicast {event} for mixed is {v4}"
        );
    }
    let logged = records(wasmbgp, "max-prefixes exceeded", mixed)?;
    ensure!(
        !logged.is_empty()
            && logged
                .iter()
                .all(|r| r.contains("family=ipv6-unicast") && r.contains("limit=5")),
        "max-prefixes exceeded records for mixed: {logged:#?}"
    );
    let mixed_label = mixed.to_string();
    for (family, want) in [("ipv4-unicast", 10.0), ("ipv6-unicast", 5.0)] {
        let v = wasmbgp.metric(
            METRIC_LIMIT,
            &[("neighbor", &mixed_label), ("family", family)],
        )?;
        ensure!(v == Some(want), "{METRIC_LIMIT} {family} of mixed is {v:?}");
    }
    step(
        test,
        format!("   {v6} ipv6-unicast cease events, none for ipv4-unicast"),
    );

    step(test, "3. fits stayed up");
    none_received(bird, "fits")?;
    same_session(bird, wasmbgp, "fits", fits, &fits_since)?;
    for family in ["ipv4-unicast", "ipv6-unicast"] {
        for event in ["cease", "warn"] {
            let v = events(wasmbgp, fits, family, event)?;
            ensure!(v == 0.0, "{METRIC_EVENTS} {family} {event} for fits is {v}");
        }
    }
    let text = wasmbgp.neighbor_line(fits)?;
    ensure!(
        text.contains(
            " max-prefixes ipv4-unicast 10/10 (cease) max-prefixes ipv6-unicast 5/5 (cease)"
        ),
        "show neighbors for fits: {text}"
    );
    step(test, format!("   {}", text.trim()));
    Ok(())
}

// ---------------------------------------------------------------------------
// max-prefixes-action = "warn".

/// Block 260 (.1, .2). `max-prefixes = 10`, `max-prefixes-action = "warn"`,
/// `max-prefixes-warning = 50`. BIRD sends 7 routes, then (`birdc enable warned_l4`) 5
/// more:
///
/// - at 7: one `warning` event and one `prefixes received near max-prefixes` record;
/// - at 12: one `warn` event and one `max-prefixes exceeded` record (`action="warn"`),
///   no `cease`, the warning not repeated; wasmbgp holds all 12 routes and `show
///   neighbors` says `max-prefixes ipv4-unicast 12/10 (warn)`;
/// - the session stays as it was, watched for 4 s after: BIRD's `since` unchanged and no
///   NOTIFICATION at BIRD, `established-count` 1, and wasmbgp's `uptime-secs` grew by
///   the time that passed (the same session).
#[test]
fn max_prefixes_warn() {
    run("limits-warn", |test, work| {
        let block = LimitBlock(260);
        let local = block.addr(1);
        let peer = block.addr(2);
        with_daemons(
            work,
            peer,
            local,
            vec![LimitSession {
                routes4: v4_prefixes(0, 7),
                later4: v4_prefixes(1, 5),
                ..LimitSession::new("warned", peer, block.port(0), block.port(5))
            }],
            &[(
                peer,
                block.port(0),
                &["ipv4-unicast"],
                vec![
                    "max-prefixes = 10".to_owned(),
                    "max-prefixes-action = \"warn\"".to_owned(),
                    "max-prefixes-warning = 50".to_owned(),
                ],
            )],
            |bird, wasmbgp| warn_only(test, bird, wasmbgp, peer),
        )
    });
}

fn warn_only(test: &str, bird: &LimitBird, wasmbgp: &LimitSpeaker, peer: Ipv4Addr) -> Result<()> {
    step(test, "1. 7 routes of 10: the 50 % warning, once");
    let since = wait_up(bird, wasmbgp, "warned", peer)?;
    wait_strict("7 routes counted", POLL, UP, || {
        Ok(prefix_limits(wasmbgp, peer)?.first().map(|l| l.1) == Some(7))
    })?;
    wait_strict("the warning event", POLL, Duration::from_secs(5), || {
        Ok(events(wasmbgp, peer, "ipv4-unicast", "warning")? >= 1.0)
    })?;
    let warned = records(wasmbgp, "prefixes received near max-prefixes", peer)?;
    ensure!(warned.len() == 1, "warning records: {warned:#?}");
    step(test, format!("   {}", warned[0]));

    step(test, "2. 12 routes of 10: warned, not Ceased");
    bird.enable("warned_l4")?;
    wait_strict("12 routes counted", POLL, UP, || {
        Ok(prefix_limits(wasmbgp, peer)?.first().map(|l| l.1) == Some(12))
    })?;
    wait_strict("the warn event", POLL, Duration::from_secs(5), || {
        Ok(events(wasmbgp, peer, "ipv4-unicast", "warn")? >= 1.0)
    })?;
    let uptime = |n: &Value| {
        n["uptime-secs"]
            .as_f64()
            .with_context(|| format!("no uptime-secs in {n}"))
    };
    let start_uptime = uptime(&wasmbgp.neighbor(peer)?)?;
    let started = Instant::now();

    step(test, format!("3. the session is watched for {WATCH:?}"));
    let mut samples = 0;
    while started.elapsed() < WATCH {
        same_session(bird, wasmbgp, "warned", peer, &since)?;
        samples += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let n = wasmbgp.neighbor(peer)?;
    let grown = uptime(&n)? - start_uptime;
    let elapsed = started.elapsed().as_secs_f64();
    ensure!(
        (grown - elapsed).abs() <= 1.5,
        "uptime-secs grew by {grown:.1} s in {elapsed:.1} s: not the same session"
    );
    ensure!(
        n["prefixes-received"].as_u64() == Some(12),
        "wasmbgp holds {} routes, not the 12 sent",
        n["prefixes-received"]
    );
    none_received(bird, "warned")?;
    for (event, want) in [("warning", 1.0), ("warn", 1.0), ("cease", 0.0)] {
        let v = events(wasmbgp, peer, "ipv4-unicast", event)?;
        ensure!(v == want, "{METRIC_EVENTS} {event} is {v}, not {want}");
    }
    let exceeded = records(wasmbgp, "max-prefixes exceeded", peer)?;
    ensure!(
        exceeded.len() == 1 && exceeded[0].contains("warn") && exceeded[0].contains("count=12"),
        "max-prefixes exceeded records: {exceeded:#?}"
    );
    let warned = records(wasmbgp, "prefixes received near max-prefixes", peer)?;
    ensure!(warned.len() == 1, "warning records: {warned:#?}");
    let text = wasmbgp.neighbor_line(peer)?;
    ensure!(
        text.contains(" max-prefixes ipv4-unicast 12/10 (warn)"),
        "show neighbors: {text}"
    );
    step(
        test,
        format!(
            "   {samples} samples: one session; {}; {}",
            exceeded[0],
            text.trim()
        ),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// max-advertise.

/// Block 260 (.11-.13). wasmbgp has `max-advertise = 100` toward BIRD's `capped` and no
/// cap toward `open`. One `ctl -` batch announces 1,000 new prefixes:
///
/// - the first 100 answers are `ok`, the other 900 exactly `error: P not announced to
///   127.1.4.12 (max-advertise 100): the ipv4-unicast cap is reached`;
/// - BIRD's `capped` holds exactly the first 100 prefixes, `open` all 1,000;
///   `wasmbgp_bgp_routes_refused_max_advertise_total` is 900 for `capped` (no series
///   for `open`);
/// - announcing one of the 100 again with MED 77 is accepted and reaches BIRD (still
///   100 routes, the counter still 900);
/// - after withdrawing one of the 100, a refused prefix is accepted in its place.
#[test]
fn max_advertise_caps_announcements() {
    run("limits-advertise", |test, work| {
        let block = LimitBlock(260);
        let local = block.addr(11);
        let (capped, open) = (block.addr(12), block.addr(13));
        with_daemons(
            work,
            capped,
            local,
            vec![
                LimitSession::new("capped", capped, block.port(2), block.port(6)),
                LimitSession::new("open", open, block.port(3), block.port(7)),
            ],
            &[
                (
                    capped,
                    block.port(2),
                    &["ipv4-unicast"],
                    vec!["max-advertise = 100".to_owned()],
                ),
                (open, block.port(3), &["ipv4-unicast"], Vec::new()),
            ],
            |bird, wasmbgp| advertise(test, bird, wasmbgp, capped, open),
        )
    });
}

fn advertise(
    test: &str,
    bird: &LimitBird,
    wasmbgp: &LimitSpeaker,
    capped: Ipv4Addr,
    open: Ipv4Addr,
) -> Result<()> {
    const CAP: usize = 100;
    const ANNOUNCED: u32 = 1000;
    wait_up(bird, wasmbgp, "capped", capped)?;
    wait_up(bird, wasmbgp, "open", open)?;

    step(
        test,
        format!("1. one ctl batch announces {ANNOUNCED} new prefixes"),
    );
    let prefixes = v4_prefixes(0, ANNOUNCED);
    let commands: Vec<String> = prefixes
        .iter()
        .map(|p| format!("announce route {p} next-hop self"))
        .collect();
    let (answers, status) = wasmbgp.ctl_batch(&commands)?;
    ensure!(
        status.code() == Some(1),
        "ctl - with refused commands exited with {status}"
    );
    for (i, (prefix, answer)) in prefixes.iter().zip(&answers).enumerate() {
        let want = if i < CAP {
            "ok".to_owned()
        } else {
            format!(
                "error: {prefix} not announced to {capped} (max-advertise {CAP}): the ipv4-unicast cap is reached"
            )
        };
        ensure!(
            *answer == want,
            "answer {i} to `{}` is {answer:?}, not {want:?}",
            commands[i]
        );
    }
    step(
        test,
        format!(
            "   {CAP} ok, {} refused: {}",
            answers.len() - CAP,
            answers[CAP]
        ),
    );

    step(test, "2. BIRD: capped holds the first 100, open all 1,000");
    let settle = Duration::from_secs(1);
    let counts = wait_stable("BIRD's route counts", POLL, settle, UP, || {
        Ok((bird.count("capped")?, bird.count("open")?))
    })?;
    ensure!(
        counts == (CAP as u64, u64::from(ANNOUNCED)),
        "BIRD holds {counts:?} routes (capped, open)"
    );
    let mut first: Vec<String> = prefixes[..CAP].to_vec();
    first.sort();
    ensure!(
        bird.prefixes("capped")? == first,
        "capped holds other prefixes than the first 100"
    );
    let refused = |address: Ipv4Addr| -> Result<Option<f64>> {
        wasmbgp.metric(
            METRIC_REFUSED,
            &[
                ("neighbor", &address.to_string()),
                ("family", "ipv4-unicast"),
            ],
        )
    };
    ensure!(
        refused(capped)? == Some(900.0),
        "{METRIC_REFUSED} for capped is {:?}",
        refused(capped)?
    );
    ensure!(
        refused(open)?.is_none(),
        "{METRIC_REFUSED} for open is {:?}",
        refused(open)?
    );
    let sent = wasmbgp.neighbor(capped)?["prefixes-sent"].as_u64();
    ensure!(
        sent == Some(CAP as u64),
        "show neighbors: prefixes-sent to capped is {sent:?}"
    );

    step(test, "3. one of the 100 again with MED 77: accepted");
    let changed = &prefixes[5];
    let answer = wasmbgp.ctl(&[
        "announce", "route", changed, "next-hop", "self", "med", "77",
    ])?;
    ensure!(
        answer.trim() == "ok" || answer.trim().is_empty(),
        "answer {answer:?}"
    );
    wait_strict(
        "the new MED at BIRD's capped and open",
        POLL,
        Duration::from_secs(10),
        || Ok(bird.med("capped", changed)? == Some(77) && bird.med("open", changed)? == Some(77)),
    )?;
    ensure!(
        bird.count("capped")? == CAP as u64,
        "capped holds {} routes",
        bird.count("capped")?
    );
    ensure!(
        refused(capped)? == Some(900.0),
        "{METRIC_REFUSED} moved: {:?}",
        refused(capped)?
    );

    step(test, "4. a withdrawal frees a place for a refused prefix");
    let (gone, newcomer) = (&prefixes[0], &prefixes[CAP]);
    wasmbgp.ctl(&["withdraw", "route", gone])?;
    wasmbgp.ctl(&["announce", "route", newcomer, "next-hop", "self"])?;
    wait_strict(
        "the swap at BIRD's capped",
        POLL,
        Duration::from_secs(10),
        || {
            let held = bird.prefixes("capped")?;
            Ok(held.len() == CAP && held.contains(newcomer) && !held.contains(gone))
        },
    )?;
    ensure!(
        refused(capped)? == Some(900.0),
        "{METRIC_REFUSED} moved: {:?}",
        refused(capped)?
    );
    step(
        test,
        format!("   {gone} out, {newcomer} in; still {CAP} routes"),
    );
    Ok(())
}

/// No daemon. `wasmbgp check` refuses static routes beyond a neighbor's cap, on the
/// second of two neighbors: three IPv4 `[[route]]`s against `max-advertise = 2`; two
/// IPv6 `[[route]]`s against `max-advertise = { ipv6-unicast = 1 }` (the three IPv4
/// ones being uncapped there); three lines of a `[[route-file]]` against
/// `max-advertise = { ipv4-unicast = 2 }`. Each: exit 1 and exactly one
/// `CONFIG:LINE:COL: neighbor ADDR: its static routes hold N FAMILY prefixes, more than
/// its max-advertise CAP`, at the line of that neighbor's `max-advertise` (every case
/// is checked before the test fails on a position). Caps equal to the static routes
/// pass.
#[test]
fn max_advertise_check_refuses() {
    run("limits-check", |test, work| {
        let head = "router-id = \"127.1.4.21\"\nlocal-as = 65001\n\n[control]\nsocket = \"/nonexistent/wasmbgp.sock\"\n\n[[neighbor]]\naddress = \"127.1.4.22\"\npeer-as = 65300\nfamilies = [\"ipv4-unicast\", \"ipv6-unicast\"]\n\n[[neighbor]]\naddress = \"127.1.4.23\"\npeer-as = 65300\nfamilies = [\"ipv4-unicast\", \"ipv6-unicast\"]\n";
        let routes = "\n[[route]]\nprefix = \"100.64.0.0/24\"\n\n[[route]]\nprefix = \"100.64.1.0/24\"\n\n[[route]]\nprefix = \"100.64.2.0/24\"\n\n[[route]]\nprefix = \"2001:db8:100::/64\"\n\n[[route]]\nprefix = \"2001:db8:100:1::/64\"\n";
        let file = "\n[[route-file]]\npath = \"table.routes\"\n";
        let cases = [
            (
                "max-advertise = 2",
                routes,
                "3 ipv4-unicast prefixes, more than its max-advertise 2",
            ),
            (
                "max-advertise = { ipv6-unicast = 1 }",
                routes,
                "2 ipv6-unicast prefixes, more than its max-advertise 1",
            ),
            (
                "max-advertise = { ipv4-unicast = 2 }",
                file,
                "3 ipv4-unicast prefixes, more than its max-advertise 2",
            ),
        ];
        let mut misplaced = Vec::new();
        for (i, (cap, tail, message)) in cases.iter().enumerate() {
            let config = format!("{head}{cap}\n{tail}");
            let dir = work.subdir(&format!("case{i}"))?;
            std::fs::write(
                dir.join("table.routes"),
                "100.64.0.0/24\n100.64.1.0/24\n100.64.2.0/24\n",
            )?;
            let (code, out) = check(&dir, &config);
            let (line, _) = line_col(&config, cap).context("cap line")?;
            step(
                test,
                format!("`{cap}` (line {line}): exit {code:?}: {}", out.trim()),
            );
            ensure!(
                code == Some(1),
                "wasmbgp check exited {code:?} on `{cap}`: {out}"
            );
            let diagnostics: Vec<&str> = out.lines().filter(|l| l.starts_with("CONFIG:")).collect();
            let want = format!(": neighbor 127.1.4.23: its static routes hold {message}");
            ensure!(
                diagnostics.len() == 1 && diagnostics[0].ends_with(&want),
                "`{cap}`: diagnostics {diagnostics:?}, wanted one ending with {want:?}"
            );
            let at: Vec<&str> = diagnostics[0].splitn(4, ':').collect();
            ensure!(
                at.len() == 4 && at[1].parse::<usize>().is_ok() && at[2].parse::<usize>().is_ok(),
                "no LINE:COL in {:?}",
                diagnostics[0]
            );
            if at[1] != line.to_string() {
                misplaced.push(format!(
                    "`{cap}` is on line {line} but refused at {}:{}",
                    at[1], at[2]
                ));
            }
        }
        let config =
            format!("{head}max-advertise = {{ ipv4-unicast = 3, ipv6-unicast = 2 }}\n{routes}");
        let (code, out) = check(&work.subdir("at-cap")?, &config);
        ensure!(
            code == Some(0),
            "caps equal to the static routes: exit {code:?}: {out}"
        );
        ensure!(
            misplaced.is_empty(),
            "the diagnostics do not point at the capped neighbor's max-advertise: {}",
            misplaced.join("; ")
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// The Cease at shutdown.

/// Block 261 (.1 wasmbgp listening on port 0, .2 ExaBGP on port 1; both connect).
/// ExaBGP 4.2 cannot parse a Cease carrying a shutdown communication (it answers
/// NOTIFICATION 1/0, see `peers/exabgp.rs`). wasmbgp without `shutdown-message`, once
/// the session is up (a static route reached ExaBGP), gets SIGTERM and exits 0;
/// ExaBGP's events show the NOTIFICATION received parsed as code 6 subcode 2 with no
/// data (the only one) and the session ending with `notification received (6,2))
/// error(Cease / Administrative Shutdown)`; no event says ExaBGP sent a NOTIFICATION
/// (`notification sent (1,0)) ... can not decode update message of type "3"` is what a
/// shutdown communication gets), its log has no decoding failure, and
/// wasmbgp's log has no `received NOTIFICATION` and one `sending NOTIFICATION
/// notification=Cease/Administrative Shutdown`. (wasmbgp closes right after its Cease,
/// so ExaBGP's side is the evidence that nothing failed to parse.)
#[test]
fn shutdown_exabgp_gets_a_plain_cease() {
    run("limits-exabgp", |test, work| {
        let block = LimitBlock(261);
        let (local, peer) = (block.addr(1), block.addr(2));
        let mut exabgp = ExaBgp::new(PeerSpec {
            dir: work.subdir("exabgp")?,
            address: peer,
            port: block.port(1),
            asn: BIRD_AS,
            remote: Remote {
                address: local,
                port: block.port(0),
                asn: WASMBGP_AS,
            },
            hold_time: 30,
            next_hop4: peer,
            next_hop6: Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2),
            originate: Vec::new(),
            api_port: 0,
        });
        let dir = work.subdir("wasmbgp")?;
        let config = Config {
            router_id: local.to_string(),
            local_as: WASMBGP_AS,
            listen: Some(format!("{local}:{}", block.port(0))),
            neighbors: vec![NeighborConfig {
                hold_time: Some(30),
                families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
                ..NeighborConfig::new(peer, block.port(1), BIRD_AS, local)
            }],
            routes: vec![("198.18.7.0/24".into(), RouteAttrs::default())],
            route_files: Vec::new(),
        };
        let text = config.render(&LimitSpeaker::socket_in(&dir));
        exabgp.start()?;
        let mut wasmbgp = LimitSpeaker::start(&dir, &text, "info")?;
        let result = exabgp_cease(test, &exabgp, &mut wasmbgp, peer);
        result.map_err(|e| {
            e.context(format!(
                "--- ExaBGP:\n{}\n{}",
                wasmbgp_e2e::policy_support::tail(&exabgp.log().unwrap_or_default(), 40),
                wasmbgp.diagnostics()
            ))
        })
    });
}

fn exabgp_cease(
    test: &str,
    exabgp: &ExaBgp,
    wasmbgp: &mut LimitSpeaker,
    peer: Ipv4Addr,
) -> Result<()> {
    step(
        test,
        "1. session up at both ends, wasmbgp's route at ExaBGP",
    );
    wait_strict("the session at both ends", POLL, UP, || {
        Ok(exabgp.session_established()? && wasmbgp.session(peer)?.0 == "established")
    })?;
    wait_strict("198.18.7.0/24 at ExaBGP", POLL, UP, || {
        Ok(exabgp.received_route("198.18.7.0/24")?.is_some())
    })?;

    step(test, "2. SIGTERM: wasmbgp exits 0");
    wasmbgp.signal(libc::SIGTERM)?;
    ensure_exit_0(wasmbgp.wait_exit(EXIT)?, "after SIGTERM")?;

    step(
        test,
        "3. ExaBGP parsed a Cease/Administrative Shutdown without data",
    );
    let dir = exabgp.spec().dir.clone();
    let parsed = wait_strict(
        "the parsed Cease in ExaBGP's events",
        POLL,
        Duration::from_secs(10),
        || Ok(!received_notifications(&exabgp_events(&dir)?).is_empty()),
    );
    let events = exabgp_events(&dir)?;
    let notifications = received_notifications(&events);
    parsed.with_context(|| format!("ExaBGP's received notifications: {notifications:?}"))?;
    ensure!(
        notifications == vec![(6, 2, String::new())],
        "ExaBGP received {notifications:?}, not one Cease/Administrative Shutdown without data"
    );
    // The session's end as ExaBGP reports it: the first `down` after `up`.
    let up = events
        .iter()
        .position(|e| e["type"] == json!("state") && e["neighbor"]["state"] == json!("up"))
        .context("no `up` state in ExaBGP's events")?;
    let reason = events[up..]
        .iter()
        .find(|e| e["type"] == json!("state") && e["neighbor"]["state"] == json!("down"))
        .and_then(|e| e["neighbor"]["reason"].as_str())
        .context("no `down` state after `up` in ExaBGP's events")?;
    ensure!(
        reason
            == "peer reset, message (notification received (6,2)) error(Cease / Administrative Shutdown)",
        "ExaBGP says the session ended with {reason:?}"
    );
    // With a shutdown communication, ExaBGP 4.2 ends it with `notification sent (1,0))
    // error(Message header error / Unspecific / can not decode update message of type "3")`.
    let sent_by_exabgp: Vec<&str> = events
        .iter()
        .filter_map(|e| e["neighbor"]["reason"].as_str())
        .filter(|r| r.contains("notification sent") || r.contains("can not decode"))
        .collect();
    ensure!(
        sent_by_exabgp.is_empty(),
        "ExaBGP answered with a NOTIFICATION: {sent_by_exabgp:?}"
    );
    let log = std::fs::read_to_string(dir.join("exabgp.log")).context("ExaBGP's log")?
        + &std::fs::read_to_string(dir.join("exabgp.stdout")).context("ExaBGP's output")?;
    for bad in ["can not decode", "could not decode", "Traceback"] {
        ensure!(!log.contains(bad), "ExaBGP's log shows {bad:?}");
    }
    let wlog = wasmbgp.log()?;
    ensure!(
        !wlog.contains("received NOTIFICATION"),
        "wasmbgp received a NOTIFICATION: {:?}",
        wlog.lines()
            .filter(|l| l.contains("received NOTIFICATION"))
            .collect::<Vec<_>>()
    );
    let sent: Vec<String> = log_records(&wlog)
        .into_iter()
        .filter(|r| r.contains("sending NOTIFICATION"))
        .collect();
    ensure!(
        sent.len() == 1 && sent[0].contains("notification=Cease/Administrative Shutdown"),
        "wasmbgp's sending NOTIFICATION records: {sent:#?}"
    );
    step(test, format!("   ExaBGP: down, {reason}"));
    Ok(())
}

/// ExaBGP's JSON events so far (`DIR/events.json`; a line still being written is
/// skipped).
fn exabgp_events(dir: &Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(dir.join("events.json")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).context("ExaBGP's events.json"),
    };
    Ok(text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The NOTIFICATIONs ExaBGP's `events` show received in parsed form: `(code, subcode,
/// data)`, data in hex without `0x`.
fn received_notifications(events: &[Value]) -> Vec<(u64, u64, String)> {
    events
        .iter()
        .filter(|e| e["type"] == json!("notification"))
        .map(|e| &e["neighbor"])
        .filter(|n| n["direction"] == json!("receive"))
        .filter_map(|n| {
            let parsed = &n["notification"];
            let data = parsed["data"].as_str().unwrap_or_default();
            Some((
                parsed["code"].as_u64()?,
                parsed["subcode"].as_u64()?,
                data.trim_start_matches("0x").to_owned(),
            ))
        })
        .collect()
}

/// Block 261 (.11 wasmbgp, BIRD's `edge` at .12). `ctl shutdown --message planned
/// maintenance` is answered, wasmbgp exits 0, and BIRD logs exactly `Received:
/// Administrative shutdown: "planned maintenance"`.
#[test]
fn shutdown_ctl_message_reaches_bird() {
    run("limits-ctl-shutdown", |test, work| {
        let block = LimitBlock(261);
        let (local, peer) = (block.addr(11), block.addr(12));
        with_daemons(
            work,
            peer,
            local,
            vec![LimitSession::new(
                "edge",
                peer,
                block.port(2),
                block.port(3),
            )],
            &[(peer, block.port(2), &["ipv4-unicast"], Vec::new())],
            |bird, wasmbgp| {
                wait_up(bird, wasmbgp, "edge", peer)?;
                step(test, "1. ctl shutdown --message planned maintenance");
                let answer = wasmbgp.ctl(&["shutdown", "--message", "planned maintenance"])?;
                step(test, format!("   answer: {}", answer.trim()));
                ensure_exit_0(wasmbgp.wait_exit(EXIT)?, "after ctl shutdown")?;
                step(test, "2. BIRD logs the shutdown communication");
                let expected = "Received: Administrative shutdown: \"planned maintenance\"";
                wait_strict("the Cease at BIRD", POLL, Duration::from_secs(10), || {
                    Ok(!bird.received("edge")?.is_empty())
                })?;
                received_only(bird, "edge", expected)?;
                step(test, format!("   BIRD: <RMT> edge: {expected}"));
                Ok(())
            },
        )
    });
}

/// Block 261 (.21 and .23: two wasmbgps; BIRD's `cfg` at .22 toward .21 and `plain` at
/// .24 toward .23). The first wasmbgp has `shutdown-message = "cfg text"`, the second
/// none; each gets SIGTERM and exits 0. BIRD logs exactly `Received: Administrative
/// shutdown: "cfg text"` on `cfg` and `Received: Administrative shutdown` (no data) on
/// `plain`.
#[test]
fn shutdown_config_message_reaches_bird() {
    run("limits-cfg-shutdown", |test, work| {
        let block = LimitBlock(261);
        let (with_message, cfg) = (block.addr(21), block.addr(22));
        let (without, plain) = (block.addr(23), block.addr(24));
        let bird = LimitBird::start(
            &work.subdir("bird")?,
            cfg,
            with_message,
            vec![
                LimitSession::new("cfg", cfg, block.port(4), block.port(5)),
                LimitSession {
                    remote: Some(without),
                    ..LimitSession::new("plain", plain, block.port(6), block.port(7))
                },
            ],
        )?;
        let mut speakers = Vec::new();
        for (name, local, peer, port, top) in [
            (
                "with",
                with_message,
                cfg,
                block.port(4),
                vec![shutdown_message_line("cfg text")],
            ),
            ("without", without, plain, block.port(6), Vec::new()),
        ] {
            let speaker = start_limited(
                &work.subdir(name)?,
                local,
                &top,
                &[(peer, port, &["ipv4-unicast"], Vec::new())],
            )?;
            speakers.push((speaker, peer));
        }
        let result = (|| -> Result<()> {
            wait_up(&bird, &speakers[0].0, "cfg", cfg)?;
            wait_up(&bird, &speakers[1].0, "plain", plain)?;
            step(test, "1. SIGTERM to both wasmbgps");
            for (speaker, _) in &speakers {
                speaker.signal(libc::SIGTERM)?;
            }
            for (speaker, _) in &mut speakers {
                ensure_exit_0(speaker.wait_exit(EXIT)?, "after SIGTERM")?;
            }
            step(
                test,
                "2. BIRD logs the configured text, and no data from the other",
            );
            wait_strict("both Ceases at BIRD", POLL, Duration::from_secs(10), || {
                Ok(!bird.received("cfg")?.is_empty() && !bird.received("plain")?.is_empty())
            })?;
            for (name, expected) in [
                ("cfg", "Received: Administrative shutdown: \"cfg text\""),
                ("plain", "Received: Administrative shutdown"),
            ] {
                received_only(&bird, name, expected)?;
                step(test, format!("   BIRD: <RMT> {name}: {expected}"));
            }
            Ok(())
        })();
        result.map_err(|e| {
            let mut text = bird.diagnostics();
            for (speaker, _) in &speakers {
                text.push_str(&speaker.diagnostics());
            }
            e.context(text)
        })
    });
}
