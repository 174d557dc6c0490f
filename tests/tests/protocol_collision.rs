//! Protocol paths that need a real peer on the other end (issue "Robustness"):
//!
//! - connection collision (RFC 4271 §6.8) with two live connections, in both orders of
//!   the BGP identifiers, against BIRD: the connection initiated by the speaker with the
//!   higher identifier is the one that carries the session, the other is closed with
//!   Cease/Connection Collision Resolution (6/7), and nothing flaps afterwards; and a
//!   late bare connection from an Established peer leaves the session alone;
//! - ROUTE-REFRESH (RFC 2918) sent by the peer (`birdc reload in`, FRR's `clear bgp ADDR
//!   soft in`): wasmbgp sends its whole Adj-RIB-Out again, without resetting the
//!   session. (GoBGP cannot drive this: with 3.10, `gobgp neighbor ADDR softresetin`
//!   only logs "Neighbor soft reset in" and no ROUTE-REFRESH reaches wasmbgp.)
//!
//! Blocks (see [`wasmbgp_e2e::scenario`]): 35 and 36 the collisions, 37 the late
//! connection, 38 and 39 the route refreshes.
//!
//! How the collision is made deterministic: wasmbgp's neighbor port is a hold, a relay in
//! the test that accepts wasmbgp's connection ("A"), keeps its OPEN and answers nothing,
//! so wasmbgp waits in OpenSent. BIRD then starts and connects to wasmbgp ("B", after
//! its `connect delay time`); its OPEN on B reaches wasmbgp while A is open: wasmbgp
//! must settle the collision by BGP identifier. When A wins, the hold connects to BIRD
//! from wasmbgp's address and relays A both ways (BIRD takes it for wasmbgp's
//! connection); when B wins, A must be closed by wasmbgp with a Cease 6/7, which the
//! hold sees. Which TCP connection carries the session in the end is read from `ss`:
//! wasmbgp's end of B is its listening port, A's far end the hold's port.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use socket2::{Domain, Socket, Type};
use wasmbgp_e2e::peers::Peer;
use wasmbgp_e2e::peers::bird::{self, Bird};
use wasmbgp_e2e::peers::frr::Frr;
use wasmbgp_e2e::process::Worker;
use wasmbgp_e2e::route::{Family, count_families};
use wasmbgp_e2e::scenario::{
    BULK_ROUTES, Block, DOCUMENTATION_NEXT_HOP4, WASMBGP_AS, WASMBGP_NEXT_HOP6, bulk_prefixes,
    peer_spec,
};
use wasmbgp_e2e::wait::{DEFAULT_TIMEOUT, bind_retrying, wait_for, wait_until};
use wasmbgp_e2e::wasmbgp::{Config, NeighborConfig, RouteAttrs, RouteFile, WasmBgp};
use wasmbgp_e2e::workdir::{WorkDir, run_in_workdir};
use wasmbgp_e2e::{run_bounded, step};

/// Bound on one `ss` run.
const SS_TIMEOUT: Duration = Duration::from_secs(10);
/// BIRD's `connect delay time` (and retry time) in the collision tests, in seconds.
const BIRD_CONNECT_DELAY: u64 = 2;
/// How long a settled session is watched for flaps.
const STABLE_FOR: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// What `ss` shows.

/// One established TCP connection of wasmbgp toward its peer, seen from wasmbgp's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tcp {
    /// wasmbgp's address and port.
    local: SocketAddr,
    /// The far end's address and port.
    remote: SocketAddr,
}

/// The established TCP connections with a local end on wasmbgp's address of `block` and
/// a far end on the peer's (`ss -Htn state established src A dst B`, which must
/// succeed).
fn established_tcp(block: Block) -> Result<Vec<Tcp>> {
    let out = run_bounded(
        Command::new("ss").args([
            "-Htn",
            "state",
            "established",
            "src",
            &block.local().to_string(),
            "dst",
            &block.peer().to_string(),
        ]),
        SS_TIMEOUT,
    )?;
    out.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            ensure!(words.len() >= 4, "unexpected ss line {line:?}");
            let local: SocketAddr = words[words.len() - 2]
                .parse()
                .with_context(|| format!("bad local address in ss line {line:?}"))?;
            let remote: SocketAddr = words[words.len() - 1]
                .parse()
                .with_context(|| format!("bad peer address in ss line {line:?}"))?;
            Ok(Tcp { local, remote })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// A relay that holds wasmbgp's connection.

/// Port `k` of a block where the [`Hold`] of a collision test listens.
const HOLD_PORT: u16 = 3;
/// The longest a [`Hold`] thread runs.
const HOLD_LIFETIME: Duration = Duration::from_secs(300);
/// How long a [`Hold`] read waits before looking at its flags again.
const HOLD_TICK: Duration = Duration::from_millis(20);

/// What a [`Hold`] has seen.
#[derive(Debug, Clone, Default)]
struct HoldState {
    /// wasmbgp's end of the held connection, once accepted.
    accepted: Option<SocketAddr>,
    /// Everything wasmbgp sent before the release.
    held: Vec<u8>,
    /// wasmbgp closed the connection before the release.
    closed_early: bool,
    /// The relay's own connection to the peer, once released.
    forwarded: Option<SocketAddr>,
    /// What went wrong, if anything.
    error: Option<String>,
}

/// A TCP relay standing between wasmbgp and its peer for one connection: it accepts
/// wasmbgp's connection on `listen`, keeps what wasmbgp sends (its OPEN) without
/// answering, and only when released connects to the peer from wasmbgp's own address
/// (so the peer takes it for wasmbgp's) and relays both ways. It never accepts a second
/// connection.
struct Hold {
    state: Arc<Mutex<HoldState>>,
    release: Arc<AtomicBool>,
    _worker: Worker,
}

impl Hold {
    fn start(listen: SocketAddr, source: Ipv4Addr, target: SocketAddr) -> Result<Self> {
        let listener = bind_retrying(listen)?;
        listener.set_nonblocking(true)?;
        let state = Arc::new(Mutex::new(HoldState::default()));
        let release = Arc::new(AtomicBool::new(false));
        let worker = {
            let state = state.clone();
            let release = release.clone();
            Worker::spawn(move |stop| {
                if let Err(e) = hold_body(&listener, source, target, &state, &release, stop) {
                    lock(&state).error = Some(format!("{e:#}"));
                }
            })
        };
        Ok(Self {
            state,
            release,
            _worker: worker,
        })
    }

    fn state(&self) -> HoldState {
        lock(&self.state).clone()
    }

    fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }
}

fn lock(state: &Mutex<HoldState>) -> std::sync::MutexGuard<'_, HoldState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn hold_body(
    listener: &TcpListener,
    source: Ipv4Addr,
    target: SocketAddr,
    state: &Mutex<HoldState>,
    release: &AtomicBool,
    stop: &AtomicBool,
) -> Result<()> {
    let deadline = Instant::now() + HOLD_LIFETIME;
    let running = || !stop.load(Ordering::SeqCst) && Instant::now() < deadline;
    let client = loop {
        if !running() {
            return Ok(());
        }
        match listener.accept() {
            Ok((stream, from)) => {
                lock(state).accepted = Some(from);
                break stream;
            }
            Err(e) if is_timeout(&e) => std::thread::sleep(HOLD_TICK),
            Err(e) => return Err(e).context("accept"),
        }
    };
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(HOLD_TICK))?;
    let mut buf = vec![0u8; 64 * 1024];
    // Hold: keep what wasmbgp sends until released.
    while !release.load(Ordering::SeqCst) {
        if !running() {
            return Ok(());
        }
        match (&client).read(&mut buf) {
            Ok(0) => {
                lock(state).closed_early = true;
                return Ok(());
            }
            Ok(n) => lock(state).held.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e).context("read from wasmbgp"),
        }
    }
    // Released: connect to the peer from wasmbgp's address and relay.
    let server = connect_from(source, target)?;
    lock(state).forwarded = Some(server.local_addr()?);
    let held = lock(state).held.clone();
    (&server).write_all(&held)?;
    server.set_read_timeout(Some(HOLD_TICK))?;
    while running() {
        for (mut from, mut to) in [(&client, &server), (&server, &client)] {
            match from.read(&mut buf) {
                Ok(0) => {
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    return Ok(());
                }
                Ok(n) => to.write_all(&buf[..n])?,
                Err(e) if is_timeout(&e) => {}
                Err(e) => {
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    return Err(e).context("relay");
                }
            }
        }
    }
    Ok(())
}

/// The (type, first two body bytes) of each BGP message in `bytes`.
fn message_types(bytes: &[u8]) -> Vec<(u8, Option<(u8, u8)>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 19 {
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        if len < 19 || len > rest.len() {
            break;
        }
        let body = &rest[19..len];
        out.push((rest[18], (body.len() >= 2).then(|| (body[0], body[1]))));
        rest = &rest[len..];
    }
    out
}

// ---------------------------------------------------------------------------
// Connection collision against BIRD.

/// The BIRD side of a collision test: one eBGP session toward wasmbgp, active, first
/// connection after [`BIRD_CONNECT_DELAY`]; it originates 203.0.113.0/24 and logs states
/// and events.
fn bird_collision_conf(dir: &Path, block: Block, router_id: Ipv4Addr, asn: u32) -> String {
    let mut conf = bird::config_head(dir, router_id);
    conf.push_str("protocol static originate4 {\n  ipv4;\n  route 203.0.113.0/24 blackhole;\n}\n");
    conf.push_str(&format!(
        "protocol bgp {proto} {{\n  local {local} port {port} as {asn};\n  neighbor {peer} port {peer_port} as {WASMBGP_AS};\n  multihop;\n  hold time 30;\n  connect delay time {BIRD_CONNECT_DELAY};\n  connect retry time {BIRD_CONNECT_DELAY};\n  error wait time 1, 5;\n  debug {{ states, events }};\n  ipv4 {{\n    import all;\n    export where proto = \"originate4\";\n    gateway recursive;\n    igp table master4;\n  }};\n}}\n",
        proto = bird::PROTOCOL,
        local = block.peer(),
        port = block.port(1),
        peer = block.local(),
        peer_port = block.port(0),
    ));
    conf
}

/// The line of BIRD's session in `birdc show protocols`.
fn bird_session(dir: &Path) -> Result<bird::ProtocolLine> {
    let out = bird::birdc(dir, &["show", "protocols", bird::PROTOCOL])?;
    bird::protocol_line(&out, bird::PROTOCOL)
}

/// Lines of `log` containing `needle`, without terminal colours.
/// BIRD's `since` of the Established session once it has settled: BIRD stamps the
/// protocol again a moment after it comes up (its channels following it, a millisecond
/// later here), so a baseline read at once can differ from every later read without any
/// reset. Two reads 300 ms apart must agree (at most 10 tries).
fn settled_since(dir: &Path) -> Result<String> {
    let mut last = bird_session(dir)?.since;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        let now = bird_session(dir)?.since;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    anyhow::bail!("BIRD's session kept changing (since {last})")
}

fn lines_with(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(needle))
        .map(strip_ansi)
        .collect()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

const KEEP_EXISTING: &str = "connection collision: keeping the existing connection";
const KEEP_PEERS: &str = "connection collision: keeping the peer's connection";

/// Two live connections collide between wasmbgp and BIRD; `wasmbgp_higher` says whose
/// BGP identifier is higher. See the module docs for how the collision is made.
fn bird_collision(test: &str, work: &WorkDir, block: Block, wasmbgp_higher: bool) -> Result<()> {
    let n = block.0;
    let high = Ipv4Addr::new(10, n, 0, 200);
    let low = Ipv4Addr::new(10, n, 0, 100);
    let (wasmbgp_id, bird_id) = if wasmbgp_higher {
        (high, low)
    } else {
        (low, high)
    };
    let peer_as = 65100 + u32::from(n);
    let neighbor = block.peer().to_string();
    let bird_dir = work.subdir("bird")?;
    let our_route = format!("198.18.{n}.0/24");
    let hold_port = block.port(HOLD_PORT);
    // wasmbgp's connections: A to the hold, B from BIRD to wasmbgp's listening port (the
    // hold's own connection to BIRD also starts at wasmbgp's address: not wasmbgp's).
    let wasmbgp_tcp = || -> Result<Vec<Tcp>> {
        Ok(established_tcp(block)?
            .into_iter()
            .filter(|c| c.local.port() == block.port(0) || c.remote.port() == hold_port)
            .collect())
    };

    step(
        test,
        format!(
            "1. wasmbgp (router id {wasmbgp_id}) connects through a hold that keeps its OPEN: OpenSent on A"
        ),
    );
    let hold = Hold::start(
        SocketAddr::from((block.peer(), hold_port)),
        block.local(),
        SocketAddr::from((block.peer(), block.port(1))),
    )?;
    let local = block.local().to_string();
    let config = Config {
        router_id: wasmbgp_id.to_string(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(30),
            ..NeighborConfig::new(&neighbor, hold_port, peer_as, &local)
        }],
        routes: vec![(
            our_route.clone(),
            RouteAttrs {
                next_hop: Some(DOCUMENTATION_NEXT_HOP4.into()),
                ..RouteAttrs::default()
            },
        )],
        route_files: Vec::new(),
    };
    let wasmbgp = WasmBgp::start(&work.subdir("wasmbgp")?, &config)?;
    wait_until("wasmbgp in OpenSent", DEFAULT_TIMEOUT, || {
        Ok(wasmbgp.neighbor(&neighbor)?.state == "opensent")
    })?;
    let connection_a = wait_for("the hold to have wasmbgp's OPEN", DEFAULT_TIMEOUT, || {
        let state = hold.state();
        let opens = message_types(&state.held)
            .iter()
            .filter(|(kind, _)| *kind == 1)
            .count();
        Ok(state.accepted.filter(|_| opens == 1))
    })?;
    step(
        test,
        format!("   connection A: {connection_a} -> {hold_port}"),
    );

    step(
        test,
        format!(
            "2. BIRD (router id {bird_id}) starts and connects to wasmbgp: connection B collides with A"
        ),
    );
    let bird_daemon = bird::start_daemon(
        &bird_dir,
        &bird_collision_conf(&bird_dir, block, bird_id, peer_as),
    )?;
    bird::wait_daemon_up(&bird_dir, DEFAULT_TIMEOUT)?;
    let decision = wait_for(
        "wasmbgp to settle the collision",
        Duration::from_secs(BIRD_CONNECT_DELAY) + DEFAULT_TIMEOUT,
        || {
            let log = wasmbgp.log()?;
            Ok(if log.contains(KEEP_EXISTING) {
                Some(KEEP_EXISTING)
            } else if log.contains(KEEP_PEERS) {
                Some(KEEP_PEERS)
            } else {
                None
            })
        },
    )?;
    if wasmbgp_higher {
        // wasmbgp's A wins: the hold lets it through now.
        hold.release();
    }
    step(test, format!("   wasmbgp: {decision:?}"));
    let expected = if wasmbgp_higher {
        KEEP_EXISTING
    } else {
        KEEP_PEERS
    };
    ensure!(
        decision == expected,
        "wasmbgp (router id {wasmbgp_id}) against BIRD (router id {bird_id}) decided {decision:?}, expecting {expected:?}"
    );

    step(test, "3. exactly one session, on the right connection");
    wait_until(
        "wasmbgp to report the session established",
        DEFAULT_TIMEOUT,
        || wasmbgp.is_established(&neighbor),
    )?;
    wait_until(
        "BIRD to report the session established",
        DEFAULT_TIMEOUT,
        || Ok(bird_session(&bird_dir)?.info.contains("Established")),
    )?;
    let survivor = wait_for(
        "wasmbgp to have a single established connection",
        DEFAULT_TIMEOUT,
        || {
            let conns = wasmbgp_tcp()?;
            if conns.len() == 1 {
                Ok(Some(conns[0]))
            } else {
                bail!("ss shows {conns:?}")
            }
        },
    )?;
    let initiated_by_wasmbgp = survivor.remote.port() == hold_port;
    ensure!(
        initiated_by_wasmbgp == wasmbgp_higher,
        "the surviving connection {survivor:?} was initiated by {}, expecting the one of the higher router id {high}",
        if initiated_by_wasmbgp {
            "wasmbgp"
        } else {
            "BIRD"
        },
    );
    if wasmbgp_higher {
        ensure!(
            survivor.local == connection_a,
            "the survivor {survivor:?} is not connection A ({connection_a})"
        );
    }

    step(
        test,
        "4. the losing connection was closed with Cease/Connection Collision Resolution",
    );
    let bird_log = bird::read_log(&bird_dir);
    if wasmbgp_higher {
        // On B, BIRD got wasmbgp's NOTIFICATION instead of an OPEN.
        wait_until(
            "BIRD to log the Cease it received on B",
            DEFAULT_TIMEOUT,
            || {
                Ok(bird::read_log(&bird_dir)
                    .lines()
                    .any(|l| l.contains("Received: Connection collision resolution")))
            },
        )?;
        let state = hold.state();
        ensure!(
            state.forwarded.is_some() && !state.closed_early,
            "the hold did not relay A: {state:?}"
        );
    } else {
        // wasmbgp closed A: the hold saw its OPEN, then the NOTIFICATION, then the end.
        let state = wait_for("wasmbgp to close A", DEFAULT_TIMEOUT, || {
            let state = hold.state();
            Ok(state.closed_early.then_some(state))
        })?;
        let messages = message_types(&state.held);
        let kinds: Vec<u8> = messages.iter().map(|(kind, _)| *kind).collect();
        ensure!(
            kinds == [1, 3] && messages[1].1 == Some((6, 7)),
            "wasmbgp sent {messages:?} on A, expecting an OPEN and a NOTIFICATION 6/7"
        );
        ensure!(
            state.forwarded.is_none(),
            "the hold relayed A although BIRD's B won: {state:?}"
        );
    }
    step(
        test,
        format!(
            "   survivor {} -> {}; BIRD: {:?}",
            survivor.local,
            survivor.remote,
            lines_with(&bird_log, "ollision")
        ),
    );

    step(test, "5. routes flow both ways on the survivor");
    wait_until(&format!("{our_route} at BIRD"), DEFAULT_TIMEOUT, || {
        let out = bird::birdc(
            &bird_dir,
            &["show", "route", "protocol", bird::PROTOCOL, "count"],
        )?;
        Ok(bird::parse_count(&out)? == 1)
    })?;
    wait_until(
        "203.0.113.0/24 in wasmbgp's adj-rib-in",
        DEFAULT_TIMEOUT,
        || {
            Ok(wasmbgp
                .adj_rib_in(&neighbor)?
                .iter()
                .any(|route| route.prefix == "203.0.113.0/24"))
        },
    )?;

    step(
        test,
        format!("6. no flap for {STABLE_FOR:?}: same connection, same session"),
    );
    watch_stable(&wasmbgp, &neighbor, &bird_dir, || {
        let conns = wasmbgp_tcp()?;
        ensure!(
            conns == [survivor],
            "the connections changed: ss shows {conns:?}, expecting only {survivor:?}"
        );
        Ok(())
    })?;
    drop(bird_daemon);
    Ok(())
}

/// For [`STABLE_FOR`], every 500 ms: wasmbgp's session with `neighbor` is established and
/// was established once, BIRD's (files in `bird_dir`) is Established since the same
/// time, and `also` holds.
fn watch_stable(
    wasmbgp: &WasmBgp,
    neighbor: &str,
    bird_dir: &Path,
    mut also: impl FnMut() -> Result<()>,
) -> Result<()> {
    let since = settled_since(bird_dir)?;
    let deadline = Instant::now() + STABLE_FOR;
    let mut polls = 0;
    while Instant::now() < deadline && polls < 100 {
        polls += 1;
        let status = wasmbgp.neighbor(neighbor)?;
        ensure!(
            status.state == "established" && status.established_count == 1,
            "wasmbgp's session flapped: state {}, established-count {}, last error {:?}",
            status.state,
            status.established_count,
            status.last_error
        );
        let line = bird_session(bird_dir)?;
        ensure!(
            line.info.contains("Established") && line.since == since,
            "BIRD's session flapped: {line:?} (Established since {since})"
        );
        also()?;
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// wasmbgp has the higher BGP identifier: its own connection survives, BIRD's gets a
/// Cease/Connection Collision Resolution.
#[test]
fn collision_bird_wasmbgp_id_higher() {
    let test = "collision-bird-higher";
    run_in_workdir(test, |work| bird_collision(test, work, Block(35), true));
}

/// wasmbgp has the lower BGP identifier: BIRD's connection survives, wasmbgp closes its
/// own with a Cease/Connection Collision Resolution.
#[test]
fn collision_bird_wasmbgp_id_lower() {
    let test = "collision-bird-lower";
    run_in_workdir(test, |work| bird_collision(test, work, Block(36), false));
}

/// A late second connection from the peer while the session is Established (what is
/// left of a collision the peer settled on its side: its own connect attempt that raced
/// the session coming up, as BIRD does when it accepts wasmbgp's connection and connects
/// at the same time). The Established session must stay up, graceful restart negotiated
/// or not: a bare connection is no sign of a restart, and one whose OPEN does not say the
/// peer restarted (no Restart State bit, the session not silent) is a collision with an
/// Established connection, which closes the new one (RFC 4271 §6.8) with a Cease 6/7.
fn stray_connection(test: &str, work: &WorkDir, block: Block) -> Result<()> {
    let peer_as = 65100 + u32::from(block.0);
    let mut spec = peer_spec(&work.subdir("bird")?, block, peer_as, WASMBGP_AS);
    spec.originate.truncate(1);
    let bird_dir = spec.dir.clone();
    let mut peer = Bird::new(spec);
    let neighbor = block.peer().to_string();
    let local = block.local().to_string();
    let config = Config {
        router_id: local.clone(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(30),
            ..NeighborConfig::new(&neighbor, block.port(1), peer_as, &local)
        }],
        routes: vec![(
            "198.18.0.0/24".into(),
            RouteAttrs {
                next_hop: Some(DOCUMENTATION_NEXT_HOP4.into()),
                ..RouteAttrs::default()
            },
        )],
        route_files: Vec::new(),
    };

    step(
        test,
        "1. wasmbgp and BIRD (graceful restart aware) established",
    );
    peer.start()?;
    let wasmbgp = WasmBgp::start(&work.subdir("wasmbgp")?, &config)?;
    wait_until("wasmbgp established", DEFAULT_TIMEOUT, || {
        wasmbgp.is_established(&neighbor)
    })?;
    peer.wait_established(DEFAULT_TIMEOUT)?;
    wait_until("the route at BIRD", DEFAULT_TIMEOUT, || {
        Ok(peer.received_route("198.18.0.0/24")?.is_some())
    })?;
    let before = established_tcp(block)?;
    ensure!(before.len() == 1, "ss shows {before:?}");
    // The premise: graceful restart negotiated (both sides advertised it), so a second
    // connection may be a restart and wasmbgp must look at its OPEN.
    let all = bird::birdc(&bird_dir, &["show", "protocols", "all", bird::PROTOCOL])?;
    let gr_lines = lines_with(&all, "Graceful restart");
    step(test, format!("   BIRD capabilities: {gr_lines:?}"));
    ensure!(
        gr_lines.len() >= 2,
        "graceful restart is not advertised by both sides:\n{all}"
    );

    let since = settled_since(&bird_dir)?;

    step(
        test,
        "2. a second connection from the peer's address, without OPEN, then closed",
    );
    let stray = connect_from(
        block.peer(),
        SocketAddr::from((block.local(), block.port(0))),
    )?;
    std::thread::sleep(Duration::from_secs(1));
    drop(stray);
    std::thread::sleep(Duration::from_millis(500));
    let status = wasmbgp.neighbor(&neighbor)?;
    ensure!(
        status.state == "established" && status.established_count == 1,
        "the bare connection took the session down: state {}, established-count {}, last error {:?}",
        status.state,
        status.established_count,
        status.last_error
    );
    let line = bird_session(&bird_dir)?;
    ensure!(
        line.info.contains("Established") && line.since == since,
        "BIRD's session went down after the bare connection: {line:?} (Established since {since})"
    );

    step(
        test,
        "3. another, with an OPEN (BIRD's identifier, not restarting): answered with a Cease 6/7",
    );
    let stray = connect_from(
        block.peer(),
        SocketAddr::from((block.local(), block.port(0))),
    )?;
    let open = plain_open(u16::try_from(peer_as)?, 30, block.peer());
    (&stray).write_all(&open)?;
    stray.set_read_timeout(Some(HOLD_TICK))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = loop {
        if Instant::now() >= deadline {
            break false;
        }
        match (&stray).read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            // A reset after the NOTIFICATION is a close too.
            Err(_) => break true,
        }
    };
    let messages = message_types(&answer);
    ensure!(
        closed && messages == [(3, Some((6, 7)))],
        "wasmbgp answered the second OPEN with {messages:?} (closed: {closed}), expecting one NOTIFICATION 6/7 and the end"
    );
    drop(stray);

    step(
        test,
        format!("4. no flap for {STABLE_FOR:?}: the session on the first connection stays"),
    );
    watch_stable(&wasmbgp, &neighbor, &bird_dir, || {
        let conns = established_tcp(block)?;
        ensure!(
            conns == before,
            "the connections changed: ss shows {conns:?}, expecting {before:?}"
        );
        Ok(())
    })
    .with_context(|| {
        format!(
            "wasmbgp: {:?}",
            lines_with(&wasmbgp.log().unwrap_or_default(), "neighbor=")
        )
    })?;
    peer.stop()?;
    Ok(())
}

/// A TCP connection to `target` from `source` (any port).
fn connect_from(source: Ipv4Addr, target: SocketAddr) -> Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket
        .connect_timeout(&target.into(), Duration::from_secs(5))
        .with_context(|| format!("connect to {target} from {source}"))?;
    Ok(socket.into())
}

/// A BGP OPEN without optional parameters (no capabilities).
fn plain_open(asn: u16, hold_time: u16, bgp_id: Ipv4Addr) -> Vec<u8> {
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&29u16.to_be_bytes());
    msg.push(1);
    msg.push(4);
    msg.extend_from_slice(&asn.to_be_bytes());
    msg.extend_from_slice(&hold_time.to_be_bytes());
    msg.extend_from_slice(&bgp_id.octets());
    msg.push(0);
    msg
}

/// A second connection from an Established, graceful-restart-capable peer (bare, then
/// with an OPEN that does not say the peer restarted) does not take the session down.
#[test]
fn stray_connection_while_established() {
    let test = "collision-stray";
    run_in_workdir(test, |work| stray_connection(test, work, Block(37)));
}

// ---------------------------------------------------------------------------
// ROUTE-REFRESH from the peer.

/// The wasmbgp side of a refresh test: eBGP toward the peer of `block`, both families,
/// [`BULK_ROUTES`] routes of each from route files.
fn refresh_config(block: Block, peer_as: u32) -> Config {
    let local = block.local().to_string();
    Config {
        router_id: local.clone(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(30),
            families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
            ..NeighborConfig::new(block.peer(), block.port(1), peer_as, &local)
        }],
        routes: Vec::new(),
        route_files: vec![
            RouteFile {
                name: "routes-v4.txt".into(),
                lines: bulk_prefixes(Family::Ipv4),
                defaults: RouteAttrs {
                    next_hop: Some(DOCUMENTATION_NEXT_HOP4.into()),
                    med: Some(10),
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
    }
}

/// The full table a refresh test's peer must hold: (IPv4, IPv6).
const FULL_TABLE: (usize, usize) = (BULK_ROUTES, BULK_ROUTES);

/// Waits until `peer` holds exactly [`FULL_TABLE`].
fn wait_full_table(peer: &dyn Peer, what: &str) -> Result<()> {
    wait_for(what, Duration::from_secs(60), || {
        let counts = count_families(&peer.received_routes()?);
        if counts == FULL_TABLE {
            Ok(Some(()))
        } else {
            bail!("peer has (IPv4, IPv6) = {counts:?}, expecting {FULL_TABLE:?}")
        }
    })
}

/// How many times wasmbgp logged a ROUTE-REFRESH request.
fn refresh_requests(wasmbgp: &WasmBgp) -> Result<usize> {
    Ok(lines_with(&wasmbgp.log()?, "route refresh requested").len())
}

/// BIRD's counters of its session (`birdc show protocols all session`).
fn bird_counters(bird: &Bird) -> Result<bird::BirdCounters> {
    let out = bird.birdc(&["show", "protocols", "all", bird::PROTOCOL])?;
    bird::parse_counters(&out)?.with_context(|| format!("no counters in {out}"))
}

/// `birdc reload in session` twice: each time wasmbgp gets one ROUTE-REFRESH per family
/// and BIRD's "Import updates: received" grows by exactly the table size.
fn bird_refresh(test: &str, work: &WorkDir, block: Block) -> Result<()> {
    let peer_as = 65100 + u32::from(block.0);
    let mut spec = peer_spec(&work.subdir("bird")?, block, peer_as, WASMBGP_AS);
    spec.originate.clear();
    let mut peer = Bird::new(spec);
    let neighbor = block.peer().to_string();
    let table = (2 * BULK_ROUTES) as u64;

    step(
        test,
        format!("1. BIRD and wasmbgp ({BULK_ROUTES} IPv4 + {BULK_ROUTES} IPv6 routes)"),
    );
    peer.start()?;
    let wasmbgp = WasmBgp::start(&work.subdir("wasmbgp")?, &refresh_config(block, peer_as))?;
    wait_until("wasmbgp established", DEFAULT_TIMEOUT, || {
        wasmbgp.is_established(&neighbor)
    })?;
    peer.wait_established(DEFAULT_TIMEOUT)?;
    wait_full_table(&peer, "the full table at BIRD")?;
    let first = wait_for(
        "BIRD's import counter to reach the table size",
        DEFAULT_TIMEOUT,
        || {
            let counters = bird_counters(&peer)?;
            if counters.import_updates == table {
                Ok(Some(counters))
            } else {
                bail!("BIRD counters {counters:?}")
            }
        },
    )?;
    let since = settled_since(&peer.spec().dir)?;
    let status = wasmbgp.neighbor(&neighbor)?;
    ensure!(
        status.established_count == 1,
        "session reset before the refresh"
    );
    ensure!(
        refresh_requests(&wasmbgp)? == 0,
        "wasmbgp logged a refresh nobody asked for"
    );
    let mut expected_updates = first.import_updates;
    let mut sent_before = updates_sent(&wasmbgp, &neighbor)?;

    for round in 1..=2u64 {
        step(
            test,
            format!("2.{round} birdc reload in {}", bird::PROTOCOL),
        );
        let started = Instant::now();
        let out = peer.birdc(&["reload", "in", bird::PROTOCOL])?;
        ensure!(
            out.to_lowercase().contains("reload"),
            "birdc reload in answered {out:?}"
        );
        expected_updates += table;
        let counters = wait_for(
            "BIRD's import counter to grow by the table size",
            DEFAULT_TIMEOUT,
            || {
                let counters = bird_counters(&peer)?;
                if counters.import_updates >= expected_updates {
                    Ok(Some(counters))
                } else {
                    bail!("BIRD counters {counters:?}, expecting {expected_updates} import updates")
                }
            },
        )?;
        let took = started.elapsed();
        // Nothing more trickles in: exactly one copy of every route.
        std::thread::sleep(Duration::from_secs(1));
        let settled = bird_counters(&peer)?;
        ensure!(
            settled == counters && settled.import_updates == expected_updates,
            "after refresh {round}, BIRD counted {settled:?}, expecting exactly {expected_updates} import updates"
        );
        ensure!(
            settled.import_withdraws == first.import_withdraws,
            "the refresh withdrew routes: {settled:?}"
        );
        ensure!(
            refresh_requests(&wasmbgp)? == 2 * round as usize,
            "wasmbgp logged {} ROUTE-REFRESH requests after {round} reload(s), expecting one per family",
            refresh_requests(&wasmbgp)?
        );
        let status = wasmbgp.neighbor(&neighbor)?;
        let sent_now = updates_sent(&wasmbgp, &neighbor)?;
        ensure!(
            status.state == "established" && status.established_count == 1,
            "the session was reset by the refresh: {:?}",
            status.raw
        );
        ensure!(
            sent_now > sent_before,
            "wasmbgp's updates-sent did not grow ({sent_before} -> {sent_now})"
        );
        let line = bird_session(&peer.spec().dir)?;
        ensure!(
            line.info.contains("Established") && line.since == since,
            "BIRD's session was reset: {line:?} (Established since {since})"
        );
        wait_full_table(&peer, "the full table at BIRD after the refresh")?;
        step(
            test,
            format!(
                "   +{table} import updates in {took:.1?}; wasmbgp sent {} UPDATE messages",
                sent_now - sent_before
            ),
        );
        sent_before = sent_now;
    }
    peer.stop()?;
    Ok(())
}

/// `birdc reload in`: BIRD sends ROUTE-REFRESH, wasmbgp resends its Adj-RIB-Out.
#[test]
fn route_refresh_from_bird() {
    let test = "refresh-bird";
    run_in_workdir(test, |work| bird_refresh(test, work, Block(38)));
}

/// FRR's view of its session with wasmbgp (`show bgp neighbors ADDR json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrrCounters {
    /// UPDATE messages received.
    updates_received: u64,
    /// ROUTE-REFRESH messages sent.
    refreshes_sent: u64,
    /// Times the session came up.
    established: u64,
    /// Times it went down.
    dropped: u64,
}

fn frr_counters(peer: &Frr, wasmbgp_addr: &str) -> Result<FrrCounters> {
    let out = peer.vtysh(&format!("show bgp neighbors {wasmbgp_addr} json"))?;
    let json: Value = serde_json::from_str(&out)
        .with_context(|| format!("show bgp neighbors printed bad JSON: {out}"))?;
    let neighbor = &json[wasmbgp_addr];
    let number = |value: &Value, what: &str| -> Result<u64> {
        value
            .as_u64()
            .with_context(|| format!("no {what} in {out}"))
    };
    ensure!(
        neighbor["bgpState"].as_str() == Some("Established"),
        "FRR's session is {:?}",
        neighbor["bgpState"]
    );
    Ok(FrrCounters {
        updates_received: number(&neighbor["messageStats"]["updatesRecv"], "updatesRecv")?,
        refreshes_sent: number(
            &neighbor["messageStats"]["routeRefreshSent"],
            "routeRefreshSent",
        )?,
        established: number(
            &neighbor["connectionsEstablished"],
            "connectionsEstablished",
        )?,
        dropped: number(&neighbor["connectionsDropped"], "connectionsDropped")?,
    })
}

/// wasmbgp's `updates-sent` for `neighbor`.
fn updates_sent(wasmbgp: &WasmBgp, neighbor: &str) -> Result<u64> {
    wasmbgp.neighbor(neighbor)?.raw["updates-sent"]
        .as_u64()
        .context("no updates-sent in show neighbors")
}

/// `clear bgp ADDR soft in` twice: FRR sends a ROUTE-REFRESH per family, and the UPDATE
/// messages it receives grow by exactly what wasmbgp sent for the first full table.
fn frr_refresh(test: &str, work: &WorkDir, block: Block) -> Result<()> {
    let peer_as = 65100 + u32::from(block.0);
    let mut spec = peer_spec(&work.subdir("frr")?, block, peer_as, WASMBGP_AS);
    spec.originate.clear();
    let mut peer = Frr::new(spec);
    let neighbor = block.peer().to_string();
    let wasmbgp_addr = block.local().to_string();

    step(
        test,
        format!("1. FRR and wasmbgp ({BULK_ROUTES} IPv4 + {BULK_ROUTES} IPv6 routes)"),
    );
    peer.start()?;
    let wasmbgp = WasmBgp::start(&work.subdir("wasmbgp")?, &refresh_config(block, peer_as))?;
    wait_until("wasmbgp established", DEFAULT_TIMEOUT, || {
        wasmbgp.is_established(&neighbor)
    })?;
    peer.wait_established(DEFAULT_TIMEOUT)?;
    wait_full_table(&peer, "the full table at FRR")?;
    // Settled: FRR counted every UPDATE wasmbgp sent.
    let mut counters = wait_for(
        "FRR's UPDATE counter to match wasmbgp's",
        DEFAULT_TIMEOUT,
        || {
            let counters = frr_counters(&peer, &wasmbgp_addr)?;
            let sent = updates_sent(&wasmbgp, &neighbor)?;
            if counters.updates_received == sent && sent > 0 {
                Ok(Some(counters))
            } else {
                bail!("FRR counters {counters:?}, wasmbgp updates-sent {sent}")
            }
        },
    )?;
    let first = counters;
    ensure!(
        first.refreshes_sent == 0 && first.established == 1,
        "before any refresh: {first:?}"
    );
    ensure!(
        refresh_requests(&wasmbgp)? == 0,
        "wasmbgp logged a refresh nobody asked for"
    );

    for round in 1..=2u64 {
        step(test, format!("2.{round} clear bgp {wasmbgp_addr} soft in"));
        let started = Instant::now();
        peer.vtysh(&format!("clear bgp {wasmbgp_addr} soft in"))?;
        wait_until(
            "wasmbgp to log a ROUTE-REFRESH per family",
            DEFAULT_TIMEOUT,
            || Ok(refresh_requests(&wasmbgp)? >= 2 * round as usize),
        )?;
        let before = counters;
        let now = wait_for(
            "FRR to count the UPDATEs of the refresh",
            DEFAULT_TIMEOUT,
            || {
                let now = frr_counters(&peer, &wasmbgp_addr)?;
                let sent = updates_sent(&wasmbgp, &neighbor)?;
                if now.updates_received >= before.updates_received + first.updates_received
                    && now.updates_received == sent
                {
                    Ok(Some(now))
                } else {
                    bail!("FRR counters {now:?}, wasmbgp updates-sent {sent}")
                }
            },
        )?;
        let took = started.elapsed();
        // Nothing more trickles in.
        std::thread::sleep(Duration::from_secs(1));
        let settled = frr_counters(&peer, &wasmbgp_addr)?;
        let resent = settled.updates_received - before.updates_received;
        ensure!(
            settled == now && resent == first.updates_received,
            "refresh {round} took {resent} UPDATE messages ({settled:?}), the first full table {}",
            first.updates_received
        );
        ensure!(
            refresh_requests(&wasmbgp)? == 2 * round as usize,
            "wasmbgp logged {} ROUTE-REFRESH requests after {round} soft clear(s), expecting one per family",
            refresh_requests(&wasmbgp)?
        );
        ensure!(
            settled.refreshes_sent == before.refreshes_sent + 2,
            "FRR sent {} ROUTE-REFRESH, expecting 2",
            settled.refreshes_sent - before.refreshes_sent
        );
        ensure!(
            settled.established == 1 && settled.dropped == 0,
            "FRR's session was reset: {settled:?}"
        );
        let status = wasmbgp.neighbor(&neighbor)?;
        ensure!(
            status.state == "established" && status.established_count == 1,
            "wasmbgp's session was reset: {:?}",
            status.raw
        );
        wait_full_table(&peer, "the full table at FRR after the refresh")?;
        step(
            test,
            format!("   FRR received {resent} more UPDATE messages in {took:.1?}"),
        );
        counters = settled;
    }
    peer.stop()?;
    Ok(())
}

/// `clear bgp ADDR soft in`: FRR sends ROUTE-REFRESH, wasmbgp resends its Adj-RIB-Out.
#[test]
fn route_refresh_from_frr() {
    let test = "refresh-frr";
    run_in_workdir(test, |work| frr_refresh(test, work, Block(39)));
}
