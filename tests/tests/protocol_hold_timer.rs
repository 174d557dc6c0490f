//! Hold timer expiry against a real peer (issue "Robustness").
//!
//! `hold_timer_bird` (block 30) and `hold_timer_gobgp` (block 31) run the same
//! scenario: wasmbgp (AS 65001, `127.0.N.1`) peers over eBGP with the daemon
//! (`127.0.N.2`), both proposing a 3 s hold time (keepalives every second), IPv4 and
//! IPv6 unicast. wasmbgp sends 1001 + 1001 routes (a route file per family and one
//! static route each), the peer its three routes; wasmbgp serves `/metrics` on
//! `127.0.N.1`, port `10000 + 10 N + 3`.
//!
//! 1. Session up at both ends, the full tables both ways; the session then stays up
//!    (no flap) for two hold times: keepalives flow both ways.
//! 2. The peer daemon (found as this test's child by its config path) gets SIGSTOP:
//!    its kernel keeps the TCP connection open, but no keepalive comes any more.
//!    Within the hold time plus [`MARGIN`] of the signal, and not before the hold time
//!    less one keepalive interval and [`EARLY_SLACK`], wasmbgp must leave Established;
//!    `/metrics` must count exactly one more NOTIFICATION sent to that neighbor, code 4
//!    subcode 0 (Hold Timer Expired), and none received; `show neighbors` must give
//!    `last-error` "hold timer expired"; its log must say `sending NOTIFICATION` with
//!    `Hold Timer Expired` and `session down` with that reason; `show adj-rib-in`
//!    must be empty and `prefixes-received` 0 (in `show neighbors` and in
//!    `/metrics`). While the peer stays stopped the session must not come back (it
//!    cannot: the peer answers nothing). The peer's own tools are not called while it
//!    is stopped (they would hang).
//! 3. SIGCONT: the session must be Established again at both ends within
//!    [`RECOVER`] (wasmbgp's `established-count` one more), the peer must hold
//!    wasmbgp's full table again, `/metrics` must count the whole table announced
//!    once more per family (the table was re-sent, not left over), wasmbgp's
//!    Adj-RIB-In must hold the peer's three routes again; then the session must stay
//!    up (no second flap) for two hold times.
//!
//! Kill and restart of a peer (the session back within 10 s of the SIGKILL) is not
//! repeated here: `scenario::wasmbgp_interop` step 5 does it for BIRD (eBGP and iBGP),
//! GoBGP, FRR and ExaBGP (`interop_*.rs`, bound `scenario::RECONNECT_BOUND`).
//!
//! Every wait and sampling loop is bounded in time and in count; every peer tool call
//! must succeed (a failing `birdc`/`gobgp` is an error, never "no route").

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use wasmbgp_e2e::peers::bird::Bird;
use wasmbgp_e2e::peers::gobgp::GoBgp;
use wasmbgp_e2e::peers::prometheus::scrape;
use wasmbgp_e2e::peers::{Peer, PeerSpec};
use wasmbgp_e2e::plugin_support::strip_ansi;
use wasmbgp_e2e::route::{Family, Route, canonical_prefix, count_families};
use wasmbgp_e2e::scenario::{
    BULK_ROUTES, Block, DOCUMENTATION_NEXT_HOP4, PeerFactory, WASMBGP_AS, WASMBGP_NEXT_HOP6,
    bulk_prefixes, peer_spec,
};
use wasmbgp_e2e::step;
use wasmbgp_e2e::wait::wait_for;
use wasmbgp_e2e::wasmbgp::{Config, Launch, NeighborConfig, RouteAttrs, RouteFile, WasmBgp};
use wasmbgp_e2e::workdir::WorkDir;

/// Hold time proposed by both ends, in seconds (keepalives every second).
const HOLD: u16 = 3;
/// Keepalive interval that goes with [`HOLD`].
const KEEPALIVE: Duration = Duration::from_secs(1);
/// How late after the hold time wasmbgp may notice its expiry.
const MARGIN: Duration = Duration::from_secs(2);
/// How much earlier than hold time less one keepalive interval the session may end
/// (poll and scheduling jitter): an earlier end is not the hold timer.
const EARLY_SLACK: Duration = Duration::from_millis(500);
/// Bound for the session to be back after SIGCONT.
const RECOVER: Duration = Duration::from_secs(30);
/// Bound for sessions to come up and tables to converge at the start.
const UP: Duration = Duration::from_secs(30);
/// Bound for a full table to arrive.
const TABLE: Duration = Duration::from_secs(60);
/// Sampling interval of the state loops.
const SAMPLE: Duration = Duration::from_millis(50);

fn bird(spec: PeerSpec) -> Box<dyn Peer> {
    Box::new(Bird::new(spec))
}

fn gobgp(spec: PeerSpec) -> Box<dyn Peer> {
    Box::new(GoBgp::new(spec))
}

/// Hold timer expiry, cleanup and recovery against BIRD 2.
#[test]
fn hold_timer_bird() {
    run("hold-timer-bird", Block(30), bird);
}

/// Hold timer expiry, cleanup and recovery against GoBGP.
#[test]
fn hold_timer_gobgp() {
    run("hold-timer-gobgp", Block(31), gobgp);
}

// ---------------------------------------------------------------------------
// Support: the peer's process, /metrics samples, logs.

/// The pid of the one child of this test process whose command line mentions
/// `dir` (the peer's own work directory, where its config file is).
fn child_pid_in(dir: &Path) -> Result<libc::pid_t> {
    let me = std::process::id().to_string();
    let marker = format!("{}/", dir.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let entry = entry.context("cannot list /proc")?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // A process may exit while we look: skip what cannot be read.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let ppid = stat_fields(&stat).and_then(|f| f.get(1).map(|s| s.to_string()));
        if ppid.as_deref() == Some(me.as_str())
            && String::from_utf8_lossy(&cmdline)
                .split('\0')
                .any(|arg| arg.starts_with(&marker))
        {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => bail!("no child process of this test runs from {marker}"),
        many => bail!("several child processes run from {marker}: {many:?}"),
    }
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid, ...
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// The state letter of process `pid` (`T`: stopped by a signal).
fn process_state(pid: libc::pid_t) -> Result<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    stat_fields(&stat)
        .and_then(|f| f.first().and_then(|s| s.chars().next()))
        .with_context(|| format!("bad /proc/{pid}/stat: {stat:?}"))
}

/// Sends `signal` to `pid` (our own child).
fn send_signal(pid: libc::pid_t, signal: libc::c_int) -> Result<()> {
    // SAFETY: kill(2) on the pid of a child of this process, found above.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot send signal {signal} to {pid}"));
    }
    Ok(())
}

/// Waits (at most 2 s, 40 looks) until `pid` is stopped (`stopped`) or running again.
fn wait_process_stopped(pid: libc::pid_t, stopped: bool) -> Result<()> {
    let mut last = '?';
    for _ in 0..40 {
        last = process_state(pid)?;
        if (last == 'T') == stopped {
            return Ok(());
        }
        std::thread::sleep(SAMPLE);
    }
    bail!("process {pid} is in state {last:?}, expecting it stopped: {stopped}")
}

/// SIGCONTs the peer when dropped (a failing test never leaves it stopped; its
/// driver kills it afterwards).
struct Frozen(libc::pid_t);

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = send_signal(self.0, libc::SIGCONT);
    }
}

/// The sum of the samples of metric `name` whose labels include every one of
/// `labels` (0 when there is none).
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
        if matches {
            sum += value
                .parse::<f64>()
                .with_context(|| format!("bad sample {line:?}"))?;
        }
    }
    Ok(sum)
}

/// What `/metrics` says about the neighbor.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counters {
    /// NOTIFICATIONs sent with code 4, subcode 0.
    hold_sent: f64,
    /// NOTIFICATIONs sent, any code.
    sent: f64,
    /// NOTIFICATIONs received, any code.
    received: f64,
    /// Prefixes announced to the neighbor: IPv4, IPv6.
    announced: (f64, f64),
    /// The neighbor's Adj-RIB-In size.
    prefixes_received: f64,
}

fn counters(metrics: SocketAddr, neighbor: &str) -> Result<Counters> {
    let text = scrape(metrics)?;
    let n = ("neighbor", neighbor);
    let notifications = "wasmbgp_notifications_total";
    ensure!(
        text.contains("wasmbgp_routes_announced_total"),
        "/metrics has no wasmbgp_routes_announced_total:\n{text}"
    );
    Ok(Counters {
        hold_sent: metric(
            &text,
            notifications,
            &[n, ("direction", "sent"), ("code", "4"), ("subcode", "0")],
        )?,
        sent: metric(&text, notifications, &[n, ("direction", "sent")])?,
        received: metric(&text, notifications, &[n, ("direction", "received")])?,
        announced: (
            metric(
                &text,
                "wasmbgp_routes_announced_total",
                &[n, ("family", "ipv4-unicast")],
            )?,
            metric(
                &text,
                "wasmbgp_routes_announced_total",
                &[n, ("family", "ipv6-unicast")],
            )?,
        ),
        prefixes_received: metric(&text, "wasmbgp_prefixes_received", &[n])?,
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The prefixes of `routes`, canonical.
fn prefixes(routes: &[Route]) -> Result<BTreeSet<String>> {
    routes.iter().map(|r| canonical_prefix(&r.prefix)).collect()
}

// ---------------------------------------------------------------------------
// The scenario.

fn run(test: &str, block: Block, make_peer: PeerFactory) {
    let started = Instant::now();
    let work = WorkDir::new(test).unwrap_or_else(|e| panic!("[{test}] {e:?}"));
    if let Err(error) = hold_timer(test, &work, block, make_peer) {
        // The peer and wasmbgp are dropped (killed) by now; their logs stay.
        for (name, path) in [
            ("wasmbgp", work.path().join("wasmbgp/wasmbgp.log")),
            ("bird", work.path().join("peer/bird.log")),
            ("gobgpd", work.path().join("peer/gobgpd.log")),
        ] {
            if let Ok(text) = std::fs::read_to_string(&path) {
                eprintln!(
                    "----- {name} log {} (last 40 lines) -----\n{}",
                    path.display(),
                    tail(&strip_ansi(&text), 40)
                );
            }
        }
        panic!("[{test}] failed after {:.1?}: {error:?}", started.elapsed());
    }
    step(test, format!("passed in {:.1?}", started.elapsed()));
}

/// Samples wasmbgp's view of the session for `window` (bounded in count): it must
/// stay Established with `established-count` `count` at every sample, and the peer
/// must say Established at the end.
fn watch_stable(
    wasmbgp: &WasmBgp,
    peer: &dyn Peer,
    neighbor: &str,
    count: u64,
    window: Duration,
) -> Result<()> {
    let poll = Duration::from_millis(250);
    let most = window.as_millis() / poll.as_millis() + 2;
    let start = Instant::now();
    for _ in 0..most {
        let status = wasmbgp.neighbor(neighbor)?;
        ensure!(
            status.state == "established" && status.established_count == count,
            "the session flapped {:.1?} into a {window:?} watch: state {}, established-count {} (expecting {count}), last error {:?}",
            start.elapsed(),
            status.state,
            status.established_count,
            status.last_error
        );
        if start.elapsed() >= window {
            break;
        }
        std::thread::sleep(poll);
    }
    ensure!(
        start.elapsed() >= window,
        "watched the session for {:.1?} only",
        start.elapsed()
    );
    ensure!(
        peer.session_established()?,
        "{} reports the session down after a {window:?} watch",
        peer.kind()
    );
    Ok(())
}

/// Waits until the peer holds exactly `full` (IPv4, IPv6) routes from wasmbgp.
fn wait_full_table(peer: &dyn Peer, full: (usize, usize), what: &str) -> Result<Duration> {
    let start = Instant::now();
    wait_for(what, TABLE, || {
        let counts = count_families(&peer.received_routes()?);
        if counts == full {
            Ok(Some(()))
        } else {
            bail!(
                "{} has (IPv4, IPv6) = {counts:?}, expecting {full:?}",
                peer.kind()
            )
        }
    })?;
    Ok(start.elapsed())
}

/// Waits until wasmbgp's Adj-RIB-In of `neighbor` holds exactly `expected`.
fn wait_adj_rib_in(
    wasmbgp: &WasmBgp,
    neighbor: &str,
    expected: &BTreeSet<String>,
    what: &str,
    bound: Duration,
) -> Result<()> {
    wait_for(what, bound, || {
        let held = prefixes(&wasmbgp.adj_rib_in(neighbor)?)?;
        let received = wasmbgp.neighbor(neighbor)?.prefixes_received;
        if &held == expected && received == expected.len() as u64 {
            Ok(Some(()))
        } else {
            bail!("adj-rib-in holds {held:?}, prefixes-received {received}, expecting {expected:?}")
        }
    })
}

fn hold_timer(test: &str, work: &WorkDir, block: Block, make_peer: PeerFactory) -> Result<()> {
    let peer_as = 65100 + u32::from(block.0);
    let mut spec = peer_spec(&work.subdir("peer")?, block, peer_as, WASMBGP_AS);
    spec.hold_time = HOLD;
    let peer_dir = spec.dir.clone();
    let mut peer = make_peer(spec);
    let local = block.local().to_string();
    let neighbor = block.peer().to_string();
    let metrics = SocketAddr::new(block.local().into(), block.port(3));

    let config = Config {
        router_id: local.clone(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(HOLD),
            families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
            connect_retry_max: Some("2s".into()),
            ..NeighborConfig::new(&neighbor, block.port(1), peer_as, &local)
        }],
        routes: vec![
            (
                "198.18.0.0/24".into(),
                RouteAttrs {
                    next_hop: Some(DOCUMENTATION_NEXT_HOP4.into()),
                    med: Some(100),
                    ..RouteAttrs::default()
                },
            ),
            (
                "2001:db8:ffff::/48".into(),
                RouteAttrs {
                    next_hop: Some(WASMBGP_NEXT_HOP6.into()),
                    med: Some(50),
                    ..RouteAttrs::default()
                },
            ),
        ],
        route_files: vec![
            RouteFile {
                name: "routes-v4.txt".into(),
                lines: bulk_prefixes(Family::Ipv4),
                defaults: RouteAttrs {
                    next_hop: Some(DOCUMENTATION_NEXT_HOP4.into()),
                    ..RouteAttrs::default()
                },
            },
            RouteFile {
                name: "routes-v6.txt".into(),
                lines: bulk_prefixes(Family::Ipv6),
                defaults: RouteAttrs {
                    next_hop: Some(WASMBGP_NEXT_HOP6.into()),
                    ..RouteAttrs::default()
                },
            },
        ],
    };
    let full = (BULK_ROUTES + 1, BULK_ROUTES + 1);
    let peer_routes = prefixes(&peer.spec().originate)?;

    // -----------------------------------------------------------------------
    step(
        test,
        format!(
            "1. {} (AS {peer_as}) and wasmbgp, hold time {HOLD} s at both ends",
            peer.kind()
        ),
    );
    peer.start()?;
    let wasmbgp_dir = work.subdir("wasmbgp")?;
    let text = config.render_with_metrics(&WasmBgp::socket_in(&wasmbgp_dir), metrics);
    let mut wasmbgp =
        WasmBgp::start_text(&wasmbgp_dir, &text, &config.route_files, &Launch::default())?;
    wait_for("wasmbgp's /metrics to answer", UP, || {
        scrape(metrics).map(Some)
    })?;
    wait_for("wasmbgp to report the session established", UP, || {
        let status = wasmbgp.neighbor(&neighbor)?;
        Ok((status.state == "established").then_some(()))
    })?;
    peer.wait_established(UP)?;
    let negotiated = wasmbgp.neighbor(&neighbor)?.raw;
    step(test, format!("   wasmbgp's neighbor: {negotiated}"));
    let took = wait_full_table(&*peer, full, "wasmbgp's full table at the peer")?;
    step(
        test,
        format!("   {} holds {full:?} routes after {took:.1?}", peer.kind()),
    );
    wait_adj_rib_in(
        &wasmbgp,
        &neighbor,
        &peer_routes,
        "the peer's routes in wasmbgp's adj-rib-in",
        UP,
    )?;
    let first = wasmbgp.neighbor(&neighbor)?;
    ensure!(
        first.established_count == 1,
        "established-count {} before the test began",
        first.established_count
    );
    let before = counters(metrics, &neighbor)?;
    ensure!(
        before.sent == 0.0 && before.received == 0.0,
        "NOTIFICATIONs before the stop: {before:?}"
    );
    ensure!(
        before.announced.0 >= full.0 as f64 && before.announced.1 >= full.1 as f64,
        "/metrics counts {:?} routes announced, expecting at least {full:?}",
        before.announced
    );
    step(test, format!("   /metrics: {before:?}"));
    step(
        test,
        format!("   no flap for two hold times ({} s)", 2 * HOLD),
    );
    watch_stable(
        &wasmbgp,
        &*peer,
        &neighbor,
        1,
        Duration::from_secs(2 * u64::from(HOLD)),
    )?;

    // -----------------------------------------------------------------------
    step(test, format!("2. SIGSTOP to {}", peer.kind()));
    let pid = child_pid_in(&peer_dir)?;
    let stopped_at = Instant::now();
    send_signal(pid, libc::SIGSTOP)?;
    let frozen = Frozen(pid);
    wait_process_stopped(pid, true)?;
    // Sampled fast for a precise time; at most (hold + margin) / SAMPLE samples.
    let bound = Duration::from_secs(u64::from(HOLD)) + MARGIN;
    let most = bound.as_millis() / SAMPLE.as_millis() + 2;
    let mut down = None;
    let mut last = None;
    for _ in 0..most {
        let status = wasmbgp.neighbor(&neighbor)?;
        let at = stopped_at.elapsed();
        if status.state != "established" {
            down = Some((at, status));
            break;
        }
        last = Some(status);
        if at >= bound {
            break;
        }
        std::thread::sleep(SAMPLE);
    }
    let Some((down_after, status)) = down else {
        bail!(
            "wasmbgp still reports the session after {:.1?} of a stopped peer (hold time {HOLD} s + {MARGIN:?}): {:?}",
            stopped_at.elapsed(),
            last.map(|s| s.raw)
        );
    };
    step(
        test,
        format!(
            "   wasmbgp left Established {down_after:.2?} after SIGSTOP: state {}, last error {:?}",
            status.state, status.last_error
        ),
    );
    let earliest = Duration::from_secs(u64::from(HOLD)) - KEEPALIVE - EARLY_SLACK;
    ensure!(
        down_after >= earliest,
        "the session ended {down_after:.2?} after SIGSTOP, before the hold time could expire (at least {earliest:?})"
    );
    ensure!(
        status.established_count == 1,
        "established-count {} after the expiry",
        status.established_count
    );
    let last_error = status.last_error.clone().unwrap_or_default();
    ensure!(
        last_error.contains("hold timer expired"),
        "show neighbors: last-error {last_error:?}, expecting \"hold timer expired\""
    );
    let after = wait_for(
        "/metrics to count the Hold Timer Expired NOTIFICATION",
        Duration::from_secs(2),
        || {
            let now = counters(metrics, &neighbor)?;
            Ok((now.hold_sent > before.hold_sent).then_some(now))
        },
    )?;
    step(test, format!("   /metrics: {after:?}"));
    ensure!(
        after.hold_sent == before.hold_sent + 1.0 && after.sent == before.sent + 1.0,
        "/metrics: NOTIFICATIONs sent 4/0 {} → {}, all codes {} → {}: expecting exactly one more, a 4/0",
        before.hold_sent,
        after.hold_sent,
        before.sent,
        after.sent
    );
    ensure!(
        after.received == before.received,
        "/metrics: NOTIFICATIONs received {} → {} from a stopped peer",
        before.received,
        after.received
    );
    let log = strip_ansi(&wasmbgp.log()?);
    ensure!(
        log.lines()
            .any(|l| l.contains("sending NOTIFICATION") && l.contains("Hold Timer Expired")),
        "wasmbgp's log has no `sending NOTIFICATION` of Hold Timer Expired:\n{}",
        tail(&log, 20)
    );
    ensure!(
        log.lines()
            .any(|l| l.contains("session down") && l.contains("hold timer expired")),
        "wasmbgp's log has no `session down` for the hold timer:\n{}",
        tail(&log, 20)
    );
    wait_adj_rib_in(
        &wasmbgp,
        &neighbor,
        &BTreeSet::new(),
        "wasmbgp's adj-rib-in of the stopped peer to be empty",
        Duration::from_secs(2),
    )?;
    let gauge = counters(metrics, &neighbor)?.prefixes_received;
    ensure!(
        gauge == 0.0,
        "/metrics: wasmbgp_prefixes_received {gauge} after the session ended"
    );
    step(
        test,
        "   adj-rib-in empty, prefixes-received 0; the session stays down while the peer is stopped",
    );
    let window = Duration::from_secs(2);
    let start = Instant::now();
    for _ in 0..(window.as_millis() / 250 + 2) {
        let status = wasmbgp.neighbor(&neighbor)?;
        ensure!(
            status.state != "established" && status.established_count == 1,
            "the session came back with the peer stopped: {}",
            status.raw
        );
        if start.elapsed() >= window {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // -----------------------------------------------------------------------
    step(test, format!("3. SIGCONT to {}", peer.kind()));
    let continued_at = Instant::now();
    send_signal(pid, libc::SIGCONT)?;
    drop(frozen);
    wait_process_stopped(pid, false)?;
    wait_for(
        "wasmbgp to report the session established again",
        RECOVER,
        || {
            let status = wasmbgp.neighbor(&neighbor)?;
            Ok((status.state == "established" && status.established_count >= 2).then_some(()))
        },
    )?;
    let wasmbgp_up = continued_at.elapsed();
    peer.wait_established(RECOVER.saturating_sub(continued_at.elapsed()))
        .context("the peer's view after SIGCONT")?;
    step(
        test,
        format!(
            "   Established again {wasmbgp_up:.2?} after SIGCONT (wasmbgp), {:.2?} (both ends)",
            continued_at.elapsed()
        ),
    );
    let took = wait_full_table(&*peer, full, "wasmbgp's full table at the peer again")?;
    step(
        test,
        format!(
            "   {} holds {full:?} routes again, {:.1?} after SIGCONT (table wait {took:.1?})",
            peer.kind(),
            continued_at.elapsed()
        ),
    );
    let resent = wait_for(
        "/metrics to count the table announced again",
        Duration::from_secs(5),
        || {
            let now = counters(metrics, &neighbor)?;
            Ok((now.announced.0 >= after.announced.0 + full.0 as f64
                && now.announced.1 >= after.announced.1 + full.1 as f64)
                .then_some(now))
        },
    )
    .context("the table was not re-sent on the new session")?;
    step(
        test,
        format!(
            "   /metrics: announced {:?} → {:?} (table re-sent)",
            after.announced, resent.announced
        ),
    );
    wait_adj_rib_in(
        &wasmbgp,
        &neighbor,
        &peer_routes,
        "the peer's routes in wasmbgp's adj-rib-in again",
        UP,
    )?;
    let gauge = counters(metrics, &neighbor)?.prefixes_received;
    ensure!(
        gauge == peer_routes.len() as f64,
        "/metrics: wasmbgp_prefixes_received {gauge}, expecting {}",
        peer_routes.len()
    );
    step(
        test,
        format!(
            "   wasmbgp's adj-rib-in holds the peer's {} routes again; no flap for two hold times",
            peer_routes.len()
        ),
    );
    watch_stable(
        &wasmbgp,
        &*peer,
        &neighbor,
        2,
        Duration::from_secs(2 * u64::from(HOLD)),
    )?;
    let peer_log = peer.log()?;
    let peer_saw: Vec<&str> = peer_log
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("hold timer"))
        .collect();
    step(
        test,
        format!(
            "   {}'s log about the hold timer (information): {peer_saw:?}",
            peer.kind()
        ),
    );

    peer.stop()?;
    let status = wasmbgp.terminate()?;
    ensure!(status.success(), "wasmbgp exited with {status}");
    Ok(())
}
