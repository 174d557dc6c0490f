//! Protocol paths that only show against real peers (issue "Robustness"): IPv6
//! transport, 4-octet ASNs toward a 2-octet peer (RFC 6793), and several neighbors in
//! one daemon (per-neighbor routes, the default IPv4-mapped IPv6 next hop).
//!
//! Blocks (see `wasmbgp_e2e::scenario` for the addressing):
//!
//! - 40 `ipv6_transport`: wasmbgp and one BIRD in a network namespace the test creates
//!   (the host's loopback only has `::1`), on `fd00:40::1` (wasmbgp), `fd00:40::2` (BIRD
//!   protocol `act`, which connects to wasmbgp's `listen`) and `fd00:40::3` (BIRD
//!   protocol `pas`, passive: wasmbgp connects), ports 10400..10409. IPv4 and IPv6
//!   routes go both ways on both sessions; checked with `birdc` and in wasmbgp's
//!   adj-rib-in.
//! - 41 `as4_toward_two_octet_peer`: wasmbgp as AS 4200000001; BIRD `a` (AS 65041,
//!   `enable as4 off` toward wasmbgp) passes routes on to BIRD `b` (AS 65141, 4-octet);
//!   a hand-written 2-octet receiver records the raw OPEN and UPDATEs wasmbgp sends it.
//!   BIRD refuses `neighbor ... as 4200000001` with `enable as4 off` ("AS4 not
//!   available") and reads the peer's AS from its 4-octet capability even then ("Bad peer
//!   AS: 4200000001" with `as 23456`), so its protocol says `external`.
//! - 42 `neighbor_scoped_routes`: one wasmbgp, BIRD `x`, BIRD `y` (its neighbor has
//!   `next-hop-ipv6`) and a recording receiver (wasmbgp-bgp's codec): `[[route]]`
//!   `neighbors = [...]`, `ctl neighbor X announce/withdraw`, and the next hop of IPv6
//!   routes sent over IPv4 sessions. BIRD 2.0.12 refuses the default IPv4-mapped next
//!   hop (`::ffff:127.0.42.1`): it logs "Invalid NEXT_HOP attribute - mismatched address
//!   family (127.0.42.1 for ipv6)" and treats those routes as withdrawn; the test asserts
//!   exactly that, the mapped next hop on the wire (recorder), and that `next-hop-ipv6`
//!   makes BIRD y keep its IPv6 routes.
//!
//! Every peer tool call's exit status is checked (a failing `birdc` is an error, never
//! "route absent"); every wait and every sampling loop is bounded in time and count.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use wasmbgp_bgp::NextHop;
use wasmbgp_bgp::packet::Capability;
use wasmbgp_e2e::netns::Netns;
use wasmbgp_e2e::peers::bird::{self, Bird};
use wasmbgp_e2e::peers::recorder::Recorder;
use wasmbgp_e2e::peers::{Peer, PeerSpec, Remote};
use wasmbgp_e2e::route::{AttrCheck, Route, by_prefix};
use wasmbgp_e2e::scenario::Block;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wait::{bind_retrying, wait_for, wait_until};
use wasmbgp_e2e::wasmbgp::{Config, Launch, NeighborConfig, RouteAttrs, WasmBgp};
use wasmbgp_e2e::workdir::{WorkDir, run_in_workdir as run};

/// Bound for sessions to come up and routes to arrive.
const UP: Duration = Duration::from_secs(30);
/// How long "this route stays away" is sampled.
const ABSENT: Duration = Duration::from_secs(2);
/// Interval of the sampling loops.
const POLL: Duration = Duration::from_millis(200);
/// AS_TRANS (RFC 6793).
const AS_TRANS: u32 = 23456;

// ---------------------------------------------------------------------------
// Shared helpers.

/// The routes BIRD (files in `dir`) learned on protocol `protocol`; a failing `birdc`
/// is an error.
fn bird_routes(dir: &Path, protocol: &str) -> Result<Vec<Route>> {
    let out = bird::birdc(dir, &["show", "route", "all", "protocol", protocol])?;
    bird::parse_show_route_all(&out)
        .with_context(|| format!("cannot parse birdc's routes of {protocol}: {out}"))
}

/// Whether BIRD's protocol `protocol` is Established; a failing `birdc` is an error.
fn bird_established(dir: &Path, protocol: &str) -> Result<bool> {
    let out = bird::birdc(dir, &["show", "protocols", protocol])?;
    Ok(bird::protocol_line(&out, protocol)?
        .info
        .starts_with("Established"))
}

/// Waits until `probe` returns exactly the prefixes `want` (sorted, canonical), then
/// samples it for [`ABSENT`]: no other prefix may show up. Returns the routes.
fn wait_exact(
    what: &str,
    want: &[&str],
    mut probe: impl FnMut() -> Result<Vec<Route>>,
) -> Result<BTreeMap<String, Route>> {
    let want: Vec<String> = want
        .iter()
        .map(|p| wasmbgp_e2e::route::canonical_prefix(p))
        .collect::<Result<_>>()?;
    let mut sorted = want.clone();
    sorted.sort();
    let compare = |routes: Vec<Route>| -> Result<BTreeMap<String, Route>> {
        let got = by_prefix(routes);
        let prefixes: Vec<String> = got.keys().cloned().collect();
        ensure!(
            prefixes == sorted,
            "{what}: prefixes {prefixes:?}, expecting exactly {sorted:?}"
        );
        Ok(got)
    };
    wait_for(what, UP, || compare(probe()?).map(Some))?;
    let deadline = Instant::now() + ABSENT;
    let mut last = compare(probe()?)?;
    for _ in 0..100 {
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
        last = compare(probe()?).context("the set changed while sampled")?;
    }
    Ok(last)
}

/// Fails with every difference between `got` and `want` in the attributes of `check`.
fn check_route(what: &str, got: Option<&Route>, want: &Route, check: &AttrCheck) -> Result<()> {
    let got = got.with_context(|| format!("{what}: route {} missing", want.prefix))?;
    let diffs = got.differences(want, check);
    ensure!(
        diffs.is_empty(),
        "{what}: route {} differs: {} (got {got:?})",
        want.prefix,
        diffs.join("; ")
    );
    Ok(())
}

/// A route with the attributes the tests compare.
fn route(prefix: &str, next_hop: &str, as_path: &[u32], med: Option<u32>) -> Result<Route> {
    Ok(Route {
        next_hop: Some(wasmbgp_e2e::route::canonical_addr(next_hop)?),
        as_path: as_path.to_vec(),
        med,
        ..Route::new(prefix)?
    })
}

/// Next hop, AS path and MED only.
const PATH_CHECK: AttrCheck = AttrCheck {
    next_hop: true,
    origin: false,
    as_path: true,
    med: true,
    local_pref: false,
    communities: false,
    large_communities: false,
    extended_communities: false,
};

/// The tail of a BIRD's log, for error messages.
fn bird_log_tail(dir: &Path) -> String {
    let log = bird::read_log(dir);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// ---------------------------------------------------------------------------
// 1. IPv6 transport.

const V6_WASMBGP: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x40, 0, 0, 0, 0, 0, 1);
const V6_BIRD_ACT: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x40, 0, 0, 0, 0, 0, 2);
const V6_BIRD_PAS: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x40, 0, 0, 0, 0, 0, 3);
const V6_BIRD_AS: u32 = 65140;
const V6_WASMBGP_AS: u32 = 65001;

/// BIRD of block 40: `act` connects to wasmbgp's listener, `pas` waits for wasmbgp;
/// both originate 203.0.113.0/24 (next hop 192.0.2.40, MED 7) and 2001:db8:beef::/48
/// (next hop 2001:db8::40, MED 8).
fn v6_bird_config(dir: &Path, block: Block) -> String {
    let mut conf = bird::config_head(dir, block.addr(2));
    conf.push_str(
        "protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; }\n\
         protocol static s6 { ipv6; route 2001:db8:beef::/48 blackhole; }\n",
    );
    for (name, local, local_port, wasmbgp_port, passive) in [
        ("act", V6_BIRD_ACT, block.port(1), block.port(0), false),
        ("pas", V6_BIRD_PAS, block.port(2), block.port(9), true),
    ] {
        conf.push_str(&format!(
            "protocol bgp {name} {{\n  local {local} port {local_port} as {V6_BIRD_AS};\n  \
             neighbor {V6_WASMBGP} port {wasmbgp_port} as {V6_WASMBGP_AS};\n  multihop;\n{}  \
             hold time 30;\n  connect retry time 1;\n  connect delay time 1;\n  \
             error wait time 1, 5;\n  \
             ipv4 {{ import all; export filter {{ if source != RTS_STATIC then reject; bgp_med = 7; accept; }}; \
             next hop address 192.0.2.40; gateway recursive; igp table master4; }};\n  \
             ipv6 {{ import all; export filter {{ if source != RTS_STATIC then reject; bgp_med = 8; accept; }}; \
             next hop address 2001:db8::40; gateway recursive; igp table master6; }};\n}}\n",
            if passive { "  passive on;\n" } else { "" }
        ));
    }
    conf
}

fn body_ipv6_transport(work: &WorkDir) -> Result<()> {
    const TEST: &str = "ipv6-transport";
    let block = Block(40);
    let ns = Netns::create("v6t")?;
    for addr in [V6_WASMBGP, V6_BIRD_ACT, V6_BIRD_PAS] {
        ns.add_address("lo", &format!("{addr}/128"))?;
    }
    let bird_dir = work.subdir("bird")?;
    let wasmbgp_dir = work.subdir("wasmbgp")?;
    let local = V6_WASMBGP.to_string();
    let act = V6_BIRD_ACT.to_string();
    let pas = V6_BIRD_PAS.to_string();
    let config = Config {
        router_id: block.local().to_string(),
        local_as: V6_WASMBGP_AS,
        listen: Some(format!("[{local}]:{}", block.port(0))),
        neighbors: vec![
            NeighborConfig {
                passive: true,
                families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
                ..NeighborConfig::new(&act, block.port(1), V6_BIRD_AS, &local)
            },
            NeighborConfig {
                families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
                ..NeighborConfig::new(&pas, block.port(2), V6_BIRD_AS, &local)
            },
        ],
        routes: vec![
            (
                "198.51.100.0/24".into(),
                RouteAttrs {
                    next_hop: Some("192.0.2.1".into()),
                    med: Some(40),
                    ..RouteAttrs::default()
                },
            ),
            (
                "2001:db8:40::/48".into(),
                RouteAttrs {
                    next_hop: Some("self".into()),
                    med: Some(41),
                    ..RouteAttrs::default()
                },
            ),
            (
                "2001:db8:41::/48".into(),
                RouteAttrs {
                    next_hop: Some("2001:db8::1".into()),
                    med: Some(42),
                    as_path: vec![65010],
                    ..RouteAttrs::default()
                },
            ),
        ],
        route_files: Vec::new(),
    };
    step(
        TEST,
        "BIRD and wasmbgp in a namespace on fd00:40::1..3, sessions over IPv6",
    );
    let _bird =
        bird::start_daemon_with(&bird_dir, &v6_bird_config(&bird_dir, block), &ns.prefix())?;
    bird::wait_daemon_up(&bird_dir, UP)?;
    let launch = Launch {
        prefix: ns.prefix(),
        ..Launch::default()
    };
    let text = config.render(&WasmBgp::socket_in(&wasmbgp_dir));
    let wasmbgp = WasmBgp::start_text(&wasmbgp_dir, &text, &[], &launch)?;
    for (protocol, neighbor) in [("act", &act), ("pas", &pas)] {
        wait_until(
            &format!("BIRD {protocol} and wasmbgp's {neighbor} to be Established"),
            UP,
            || Ok(bird_established(&bird_dir, protocol)? && wasmbgp.is_established(neighbor)?),
        )
        .with_context(|| format!("BIRD log:\n{}", bird_log_tail(&bird_dir)))?;
    }
    // The sessions really run over IPv6 (BIRD's view of the addresses).
    for (protocol, neighbor) in [("act", &act), ("pas", &pas)] {
        let out = bird::birdc(&bird_dir, &["show", "protocols", "all", protocol])?;
        ensure!(
            out.lines()
                .any(|l| l.trim() == format!("Neighbor address: {local}")),
            "BIRD {protocol} does not show neighbor address {local}: {out}"
        );
        let status = wasmbgp.neighbor(neighbor)?;
        step(TEST, format!("{neighbor}: {}", status.raw));
    }

    step(
        TEST,
        "wasmbgp's IPv4 and IPv6 routes reach BIRD over both IPv6 sessions",
    );
    let want = [
        route("198.51.100.0/24", "192.0.2.1", &[V6_WASMBGP_AS], Some(40))?,
        // next-hop self on an IPv6 session: the session's local address.
        route("2001:db8:40::/48", &local, &[V6_WASMBGP_AS], Some(41))?,
        route(
            "2001:db8:41::/48",
            "2001:db8::1",
            &[V6_WASMBGP_AS, 65010],
            Some(42),
        )?,
    ];
    let prefixes: Vec<&str> = want.iter().map(|r| r.prefix.as_str()).collect();
    for protocol in ["act", "pas"] {
        let got = wait_exact(
            &format!("wasmbgp's routes at BIRD {protocol}"),
            &prefixes,
            || bird_routes(&bird_dir, protocol),
        )?;
        for route in &want {
            check_route(
                &format!("BIRD {protocol}"),
                got.get(&route.prefix),
                route,
                &PATH_CHECK,
            )?;
        }
    }

    step(
        TEST,
        "BIRD's IPv4 and IPv6 routes are in wasmbgp's adj-rib-in of both neighbors",
    );
    let want = [
        route("203.0.113.0/24", "192.0.2.40", &[V6_BIRD_AS], Some(7))?,
        route("2001:db8:beef::/48", "2001:db8::40", &[V6_BIRD_AS], Some(8))?,
    ];
    let prefixes: Vec<&str> = want.iter().map(|r| r.prefix.as_str()).collect();
    for neighbor in [&act, &pas] {
        let got = wait_exact(
            &format!("BIRD's routes in wasmbgp's adj-rib-in {neighbor}"),
            &prefixes,
            || wasmbgp.adj_rib_in(neighbor),
        )?;
        for route in &want {
            check_route(
                &format!("adj-rib-in {neighbor}"),
                got.get(&route.prefix),
                route,
                &PATH_CHECK,
            )?;
        }
        let status = wasmbgp.neighbor(neighbor)?;
        ensure!(
            status.prefixes_received == 2 && status.prefixes_sent == 3,
            "show neighbors {neighbor}: received {}, sent {} (expecting 2 and 3)",
            status.prefixes_received,
            status.prefixes_sent
        );
    }

    step(TEST, "ctl announce/withdraw over IPv6 transport");
    wasmbgp.ctl_line("announce route 2001:db8:42::/48 next-hop self med 43")?;
    wasmbgp.ctl_line("announce route 198.51.101.0/24 next-hop 192.0.2.2 med 44")?;
    let added = [
        route("2001:db8:42::/48", &local, &[V6_WASMBGP_AS], Some(43))?,
        route("198.51.101.0/24", "192.0.2.2", &[V6_WASMBGP_AS], Some(44))?,
    ];
    for protocol in ["act", "pas"] {
        let got = wait_exact(
            &format!("announced routes at BIRD {protocol}"),
            &[
                "198.51.100.0/24",
                "198.51.101.0/24",
                "2001:db8:40::/48",
                "2001:db8:41::/48",
                "2001:db8:42::/48",
            ],
            || bird_routes(&bird_dir, protocol),
        )?;
        for route in &added {
            check_route(
                &format!("BIRD {protocol}"),
                got.get(&route.prefix),
                route,
                &PATH_CHECK,
            )?;
        }
    }
    wasmbgp.ctl(&["withdraw", "route", "2001:db8:42::/48"])?;
    wasmbgp.ctl(&["withdraw", "route", "198.51.100.0/24"])?;
    for protocol in ["act", "pas"] {
        wait_exact(
            &format!("withdrawn routes gone from BIRD {protocol}"),
            &["198.51.101.0/24", "2001:db8:40::/48", "2001:db8:41::/48"],
            || bird_routes(&bird_dir, protocol),
        )?;
    }
    Ok(())
}

/// A session over IPv6 transport (wasmbgp connecting and accepting) carries IPv4 and
/// IPv6 routes both ways.
#[test]
fn ipv6_transport() {
    run("proto-ipv6-transport", body_ipv6_transport);
}

// ---------------------------------------------------------------------------
// 2. 4-octet AS toward a 2-octet peer.

const AS4_WASMBGP: u32 = 4_200_000_001;
const AS4_BIRD_A: u32 = 65041;
const AS4_BIRD_B: u32 = 65141;
const AS4_OLD: u32 = 65043;
/// The 4-octet ASN BIRD `b` puts in the path of the route it originates.
const AS4_FAR: u32 = 4_200_000_099;

/// BIRD `a`: `wasm` toward wasmbgp without the 4-octet capability (passive), `tob`
/// toward BIRD `b` (4-octet). A static route makes every 192.0.2.x next hop resolvable,
/// so routes are exported on.
fn as4_bird_a(dir: &Path, block: Block) -> String {
    let mut conf = bird::config_head(dir, block.addr(2));
    conf.push_str("protocol static nh { ipv4; route 192.0.2.0/24 via \"lo\"; }\n");
    let channels = "  ipv4 { import all; export where source = RTS_BGP; \
                    gateway recursive; igp table master4; };\n";
    conf.push_str(&format!(
        "protocol bgp wasm {{\n  local {} port {} as {AS4_BIRD_A};\n  \
         neighbor {} port {} external;\n  enable as4 off;\n  passive on;\n  multihop;\n  \
         hold time 30;\n  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n{channels}}}\n",
        block.addr(2),
        block.port(1),
        block.addr(1),
        block.port(0),
    ));
    conf.push_str(&format!(
        "protocol bgp tob {{\n  local {} port {} as {AS4_BIRD_A};\n  \
         neighbor {} port {} as {AS4_BIRD_B};\n  multihop;\n  \
         hold time 30;\n  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n{channels}}}\n",
        block.addr(2),
        block.port(2),
        block.addr(3),
        block.port(3),
    ));
    conf
}

/// BIRD `b`: 4-octet, passive toward `a`; originates 203.0.113.0/24 with [`AS4_FAR`]
/// in its path (next hop 192.0.2.141).
fn as4_bird_b(dir: &Path, block: Block) -> String {
    let mut conf = bird::config_head(dir, block.addr(3));
    conf.push_str("protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; }\n");
    conf.push_str(&format!(
        "protocol bgp toa {{\n  local {} port {} as {AS4_BIRD_B};\n  \
         neighbor {} port {} as {AS4_BIRD_A};\n  passive on;\n  multihop;\n  \
         hold time 30;\n  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n  \
         ipv4 {{ import all; export filter {{ if source != RTS_STATIC then reject; \
         bgp_path.prepend({AS4_FAR}); accept; }}; next hop address 192.0.2.141; \
         gateway recursive; igp table master4; }};\n}}\n",
        block.addr(3),
        block.port(3),
        block.addr(2),
        block.port(2),
    ));
    conf
}

fn body_as4_toward_two_octet_peer(work: &WorkDir) -> Result<()> {
    const TEST: &str = "as4-two-octet";
    let block = Block(41);
    let dir_a = work.subdir("bird-a")?;
    let dir_b = work.subdir("bird-b")?;
    let local = block.local().to_string();
    let bird_a = block.addr(2).to_string();
    let old = block.addr(4);
    let old_addr = SocketAddr::new(IpAddr::V4(old), block.port(4));

    step(
        TEST,
        format!(
            "wasmbgp AS {AS4_WASMBGP} → BIRD a (AS {AS4_BIRD_A}, as4 off) → BIRD b (AS {AS4_BIRD_B}); raw 2-octet receiver AS {AS4_OLD}"
        ),
    );
    let old_speaker = OldSpeaker::start(old_addr, AS4_OLD as u16)?;
    let _b = bird::start_daemon(&dir_b, &as4_bird_b(&dir_b, block))?;
    bird::wait_daemon_up(&dir_b, UP)?;
    let _a = bird::start_daemon(&dir_a, &as4_bird_a(&dir_a, block))?;
    bird::wait_daemon_up(&dir_a, UP)?;
    let config = Config {
        router_id: local.clone(),
        local_as: AS4_WASMBGP,
        listen: None,
        neighbors: vec![
            NeighborConfig::new(&bird_a, block.port(1), AS4_BIRD_A, &local),
            NeighborConfig::new(old, block.port(4), AS4_OLD, &local),
        ],
        routes: vec![(
            "198.51.100.0/24".into(),
            RouteAttrs {
                next_hop: Some("192.0.2.41".into()),
                med: Some(41),
                as_path: vec![4_200_000_002, 65010],
                ..RouteAttrs::default()
            },
        )],
        route_files: Vec::new(),
    };
    let wasmbgp = WasmBgp::start(&work.subdir("wasmbgp")?, &config)?;
    for (what, dir, protocol) in [
        ("a-wasmbgp", &dir_a, "wasm"),
        ("a-b", &dir_a, "tob"),
        ("b-a", &dir_b, "toa"),
    ] {
        wait_until(&format!("BIRD session {what}"), UP, || {
            bird_established(dir, protocol)
        })
        .with_context(|| format!("BIRD log:\n{}", bird_log_tail(dir)))?;
    }
    wait_until("wasmbgp's session to BIRD a", UP, || {
        wasmbgp.is_established(&bird_a)
    })?;
    // BIRD a runs the session without the 4-octet capability: wasmbgp offered it, BIRD
    // did not (so the session is 2-octet at both ends).
    let out = bird::birdc(&dir_a, &["show", "protocols", "all", "wasm"])?;
    let (_, caps) = out
        .split_once("Local capabilities")
        .context("no local capabilities in birdc's answer")?;
    let (local_caps, neighbor_caps) = caps
        .split_once("Neighbor capabilities")
        .context("no neighbor capabilities in birdc's answer")?;
    ensure!(
        !local_caps.contains("4-octet AS numbers") && neighbor_caps.contains("4-octet AS numbers"),
        "BIRD a should offer no 4-octet capability and see wasmbgp's: {out}"
    );
    ensure!(
        out.contains(&format!("Neighbor AS:      {AS4_WASMBGP}")),
        "BIRD a does not see wasmbgp as AS {AS4_WASMBGP}: {out}"
    );

    step(
        TEST,
        "the raw receiver: OPEN My AS = AS_TRANS, AS_PATH with AS_TRANS, AS4_PATH with the real path",
    );
    let open = wait_for("wasmbgp's OPEN at the raw receiver", UP, || {
        Ok(old_speaker.open())
    })
    .with_context(|| format!("raw receiver: {:?}", old_speaker.errors()))?;
    let my_as = u16::from_be_bytes([open[20], open[21]]);
    ensure!(
        u32::from(my_as) == AS_TRANS,
        "wasmbgp's OPEN carries My AS {my_as}, expecting AS_TRANS {AS_TRANS}"
    );
    let decoded = wasmbgp_bgp::packet::decode(&open, &wasmbgp_bgp::packet::Context::default())
        .map_err(|e| anyhow::anyhow!("wasmbgp's OPEN does not decode: {}", e.reason))?;
    let wasmbgp_bgp::packet::Message::Open(decoded) = decoded else {
        bail!("the first message is not an OPEN: {decoded:?}");
    };
    ensure!(
        decoded
            .capabilities
            .contains(&Capability::FourOctetAs(AS4_WASMBGP)),
        "wasmbgp's OPEN lacks the 4-octet capability with {AS4_WASMBGP}: {:?}",
        decoded.capabilities
    );
    let update = wait_for(
        "the UPDATE of 198.51.100.0/24 at the raw receiver",
        UP,
        || Ok(old_speaker.update_for("198.51.100.0/24")),
    )
    .with_context(|| format!("raw receiver: {:?}", old_speaker.errors()))?;
    let parsed = parse_update(&update)?;
    let (flags, as_path) = parsed
        .attr(2)
        .context("the UPDATE has no AS_PATH attribute")?;
    ensure!(flags & 0x80 == 0, "AS_PATH flagged optional ({flags:#x})");
    let two = as_path_asns(as_path, 2)?;
    ensure!(
        two == [AS_TRANS, AS_TRANS, 65010],
        "AS_PATH on the 2-octet session is {two:?}, expecting [{AS_TRANS}, {AS_TRANS}, 65010] (raw {as_path:02x?})"
    );
    let (flags, as4_path) = parsed
        .attr(17)
        .context("the UPDATE to the 2-octet peer has no AS4_PATH")?;
    ensure!(
        flags & 0xc0 == 0xc0,
        "AS4_PATH is not optional transitive: flags {flags:#x}"
    );
    let four = as_path_asns(as4_path, 4)?;
    ensure!(
        four == [AS4_WASMBGP, 4_200_000_002, 65010],
        "AS4_PATH is {four:?}, expecting [{AS4_WASMBGP}, 4200000002, 65010]"
    );
    step(
        TEST,
        format!("   OPEN My AS {my_as}; AS_PATH {two:?}; AS4_PATH {four:?}"),
    );

    step(
        TEST,
        "BIRD a (2-octet session) and BIRD b (one more hop) see the real path",
    );
    let want_a = route(
        "198.51.100.0/24",
        "192.0.2.41",
        &[AS4_WASMBGP, 4_200_000_002, 65010],
        Some(41),
    )?;
    let got = wait_exact("wasmbgp's route at BIRD a", &["198.51.100.0/24"], || {
        bird_routes(&dir_a, "wasm")
    })?;
    check_route("BIRD a", got.get(&want_a.prefix), &want_a, &PATH_CHECK)?;
    let raw_a = bird::birdc(&dir_a, &["show", "route", "all", "protocol", "wasm"])?;
    step(TEST, format!("BIRD a shows:\n{raw_a}"));
    let want_b = Route {
        as_path: vec![AS4_BIRD_A, AS4_WASMBGP, 4_200_000_002, 65010],
        ..Route::new("198.51.100.0/24")?
    };
    let got = wait_exact("wasmbgp's route at BIRD b", &["198.51.100.0/24"], || {
        bird_routes(&dir_b, "toa")
    })?;
    check_route(
        "BIRD b",
        got.get(&want_b.prefix),
        &want_b,
        &AttrCheck {
            next_hop: false,
            med: false,
            ..PATH_CHECK
        },
    )?;

    step(
        TEST,
        "the reverse: BIRD b's route with a 4-octet ASN reaches wasmbgp through the 2-octet session, merged",
    );
    let want = Route {
        as_path: vec![AS4_BIRD_A, AS4_BIRD_B, AS4_FAR],
        ..Route::new("203.0.113.0/24")?
    };
    let got = wait_exact(
        "BIRD b's route in wasmbgp's adj-rib-in of BIRD a",
        &["203.0.113.0/24"],
        || wasmbgp.adj_rib_in(&bird_a),
    )?;
    check_route(
        "adj-rib-in",
        got.get(&want.prefix),
        &want,
        &AttrCheck {
            next_hop: false,
            med: false,
            ..PATH_CHECK
        },
    )?;
    let raw = wasmbgp.ctl(&["show", "adj-rib-in", &bird_a, "--json"])?;
    ensure!(
        !raw.contains(&AS_TRANS.to_string()),
        "adj-rib-in still shows AS_TRANS: {raw}"
    );
    ensure!(
        old_speaker.errors().is_empty(),
        "raw receiver: {:?}",
        old_speaker.errors()
    );
    Ok(())
}

/// wasmbgp with a 4-octet AS toward a peer without the 4-octet capability: AS_TRANS in
/// OPEN and AS_PATH, the real path in AS4_PATH; the 2-octet BIRD and the 4-octet BIRD
/// behind it see the real path; a 4-octet path from behind the 2-octet peer is merged
/// back by wasmbgp.
#[test]
fn as4_toward_two_octet_peer() {
    run("proto-as4", body_as4_toward_two_octet_peer);
}

// --- A 2-octet BGP speaker that records what it receives. ---

/// What the raw 2-octet receiver saw.
#[derive(Debug, Default)]
struct OldState {
    open: Option<Vec<u8>>,
    updates: Vec<Vec<u8>>,
    errors: Vec<String>,
}

/// A passive BGP speaker without the 4-octet capability (only multiprotocol IPv4
/// unicast), recording wasmbgp's raw OPEN and UPDATEs; its thread ends on drop or
/// after 5 minutes.
struct OldSpeaker {
    state: Arc<Mutex<OldState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OldSpeaker {
    fn start(addr: SocketAddr, asn: u16) -> Result<Self> {
        let listener = bind_retrying(addr)?;
        listener.set_nonblocking(true)?;
        let state = Arc::new(Mutex::new(OldState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            let id = match addr.ip() {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
            };
            std::thread::spawn(move || old_speaker_loop(&listener, asn, id, &state, &stop))
        };
        Ok(Self {
            state,
            stop,
            thread: Some(thread),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OldState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> Option<Vec<u8>> {
        self.lock().open.clone()
    }

    fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// The last UPDATE announcing `prefix` in its NLRI field.
    fn update_for(&self, prefix: &str) -> Option<Vec<u8>> {
        self.lock()
            .updates
            .iter()
            .rev()
            .find(|u| parse_update(u).is_ok_and(|p| p.nlri.iter().any(|n| n == prefix)))
            .cloned()
    }
}

impl Drop for OldSpeaker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn old_speaker_loop(
    listener: &TcpListener,
    asn: u16,
    id: Ipv4Addr,
    state: &Mutex<OldState>,
    stop: &AtomicBool,
) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let note = |e: String| {
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .errors
            .push(e)
    };
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = old_session(stream, asn, id, state, stop, deadline) {
                    note(format!("{e:#}"));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                note(format!("accept: {e}"));
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn bgp_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

fn old_session(
    mut stream: TcpStream,
    asn: u16,
    id: Ipv4Addr,
    state: &Mutex<OldState>,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    // OPEN: version 4, My AS, hold time 30, BGP id, one capability parameter:
    // multiprotocol IPv4 unicast (no 4-octet AS capability).
    let mut open = vec![4];
    open.extend_from_slice(&asn.to_be_bytes());
    open.extend_from_slice(&30u16.to_be_bytes());
    open.extend_from_slice(&id.octets());
    open.extend_from_slice(&[8, 2, 6, 1, 4, 0, 1, 0, 1]);
    stream.write_all(&bgp_message(1, &open))?;
    let keepalive = bgp_message(4, &[]);
    let mut last_keepalive = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => bail!("wasmbgp closed the connection"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("read"),
        }
        while buf.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
            ensure!((19..=4096).contains(&len), "bad message length {len}");
            if buf.len() < len {
                break;
            }
            let message: Vec<u8> = buf.drain(..len).collect();
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            match message[18] {
                1 => {
                    s.open = Some(message);
                    drop(s);
                    stream.write_all(&keepalive)?;
                    last_keepalive = Instant::now();
                }
                2 => s.updates.push(message),
                3 => bail!("NOTIFICATION from wasmbgp: {:02x?}", &message[19..]),
                _ => {}
            }
        }
        if last_keepalive.elapsed() >= Duration::from_secs(10) {
            stream.write_all(&keepalive)?;
            last_keepalive = Instant::now();
        }
    }
    Ok(())
}

/// An UPDATE as on the wire: attributes (flags, code, value) and IPv4 NLRI.
struct RawUpdate {
    attrs: Vec<(u8, u8, Vec<u8>)>,
    nlri: Vec<String>,
}

impl RawUpdate {
    fn attr(&self, code: u8) -> Option<(u8, &[u8])> {
        self.attrs
            .iter()
            .find(|(_, c, _)| *c == code)
            .map(|(f, _, v)| (*f, v.as_slice()))
    }
}

fn parse_update(message: &[u8]) -> Result<RawUpdate> {
    let body = message.get(19..).context("short UPDATE")?;
    let take =
        |at: usize, n: usize| -> Result<&[u8]> { body.get(at..at + n).context("truncated UPDATE") };
    let withdrawn = usize::from(u16::from_be_bytes(take(0, 2)?.try_into()?));
    let at = 2 + withdrawn;
    let attrs_len = usize::from(u16::from_be_bytes(take(at, 2)?.try_into()?));
    let attrs_bytes = take(at + 2, attrs_len)?;
    let mut attrs = Vec::new();
    let mut i = 0;
    while i < attrs_bytes.len() {
        let head = attrs_bytes.get(i..i + 3).context("truncated attribute")?;
        let (flags, code) = (head[0], head[1]);
        let (len, start) = if flags & 0x10 != 0 {
            let l = attrs_bytes
                .get(i + 2..i + 4)
                .context("truncated attribute")?;
            (usize::from(u16::from_be_bytes([l[0], l[1]])), i + 4)
        } else {
            (usize::from(head[2]), i + 3)
        };
        let value = attrs_bytes
            .get(start..start + len)
            .context("attribute overruns")?;
        attrs.push((flags, code, value.to_vec()));
        i = start + len;
    }
    let mut nlri = Vec::new();
    let mut rest = &body[at + 2 + attrs_len..];
    while let Some((&bits, tail)) = rest.split_first() {
        let n = usize::from(bits).div_ceil(8);
        let bytes = tail.get(..n).context("truncated NLRI")?;
        let mut octets = [0u8; 4];
        octets[..n].copy_from_slice(bytes);
        nlri.push(format!("{}/{bits}", Ipv4Addr::from(octets)));
        rest = &tail[n..];
    }
    Ok(RawUpdate { attrs, nlri })
}

/// The ASNs of an AS_PATH value of `width`-octet numbers (segments flattened).
fn as_path_asns(value: &[u8], width: usize) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let [_, count, tail @ ..] = rest {
        let n = usize::from(*count) * width;
        let asns = tail.get(..n).context("truncated AS path segment")?;
        out.extend(asns.chunks_exact(width).map(|c| {
            if width == 2 {
                u32::from(u16::from_be_bytes([c[0], c[1]]))
            } else {
                u32::from_be_bytes([c[0], c[1], c[2], c[3]])
            }
        }));
        rest = &tail[n..];
    }
    ensure!(rest.is_empty(), "trailing octet in AS path {value:02x?}");
    Ok(out)
}

// ---------------------------------------------------------------------------
// 3. Several neighbors in one daemon.

const MULTI_AS: u32 = 65001;

fn bird_spec(dir: PathBuf, block: Block, host: u8, port: u16, asn: u32) -> PeerSpec {
    PeerSpec {
        dir,
        address: block.addr(host),
        port,
        asn,
        remote: Remote {
            address: block.local(),
            port: block.port(0),
            asn: MULTI_AS,
        },
        hold_time: 30,
        next_hop4: Ipv4Addr::new(192, 0, 2, block.0),
        next_hop6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(block.0)),
        originate: Vec::new(),
        api_port: block.port(9),
    }
}

/// The prefixes `recorder` holds as reachable, as routes with their next hop.
fn recorder_routes(recorder: &Recorder, candidates: &[&str]) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    for prefix in candidates {
        if let Some(record) = recorder.prefix(prefix)?
            && record.reachable
        {
            let next_hop = match record.attributes.as_ref().and_then(|a| a.next_hop) {
                Some(NextHop::Addr(a)) => Some(a.to_string()),
                other => bail!("{prefix} at the recorder with next hop {other:?}"),
            };
            out.push(Route {
                next_hop,
                ..Route::new(prefix)?
            });
        }
    }
    Ok(out)
}

fn body_neighbor_scoped_routes(work: &WorkDir) -> Result<()> {
    const TEST: &str = "neighbor-scoped";
    let block = Block(42);
    let local = block.local().to_string();
    let (x_addr, y_addr, r_addr) = (
        block.addr(2).to_string(),
        block.addr(3).to_string(),
        block.addr(4).to_string(),
    );
    let mut x = Bird::new(bird_spec(
        work.subdir("bird-x")?,
        block,
        2,
        block.port(1),
        65142,
    ));
    let mut y = Bird::new(bird_spec(
        work.subdir("bird-y")?,
        block,
        3,
        block.port(2),
        65242,
    ));
    let recorder = Recorder::listen(&format!("{r_addr}:{}", block.port(3)), 65342)?;
    let both = || vec!["ipv4-unicast".to_owned(), "ipv6-unicast".to_owned()];
    let self_hop = |neighbors: &[&String]| RouteAttrs {
        next_hop: Some("self".into()),
        neighbors: neighbors.iter().map(|s| s.to_string()).collect(),
        ..RouteAttrs::default()
    };
    let config = Config {
        router_id: local.clone(),
        local_as: MULTI_AS,
        listen: None,
        neighbors: vec![
            NeighborConfig {
                families: both(),
                ..NeighborConfig::new(&x_addr, block.port(1), 65142, &local)
            },
            NeighborConfig {
                families: both(),
                ..NeighborConfig::new(&y_addr, block.port(2), 65242, &local)
            },
            NeighborConfig {
                families: both(),
                ..NeighborConfig::new(&r_addr, block.port(3), 65342, &local)
            },
        ],
        routes: vec![
            ("198.51.100.0/24".into(), self_hop(&[])),
            ("198.51.101.0/24".into(), self_hop(&[&x_addr])),
            ("198.51.102.0/24".into(), self_hop(&[&y_addr, &r_addr])),
            ("2001:db8:42::/48".into(), self_hop(&[])),
            ("2001:db8:43::/48".into(), self_hop(&[&x_addr])),
        ],
        route_files: Vec::new(),
    };
    let dir = work.subdir("wasmbgp")?;
    // Neighbor y sets next-hop-ipv6 (no field in the shared writer: added here).
    let needle = format!("address = \"{y_addr}\"\n");
    let text = config.render(&WasmBgp::socket_in(&dir));
    ensure!(text.contains(&needle), "no {needle:?} in {text}");
    let text = text.replace(
        &needle,
        &format!("{needle}next-hop-ipv6 = \"2001:db8::42\"\n"),
    );
    step(
        TEST,
        "wasmbgp with BIRD x, BIRD y (next-hop-ipv6 2001:db8::42) and a recorder",
    );
    x.start()?;
    y.start()?;
    let wasmbgp = WasmBgp::start_text(&dir, &text, &[], &Launch::default())?;
    x.wait_established(UP)?;
    y.wait_established(UP)?;
    recorder.wait_established(UP)?;
    for n in [&x_addr, &y_addr, &r_addr] {
        wait_until(&format!("wasmbgp's session to {n}"), UP, || {
            wasmbgp.is_established(n)
        })?;
    }

    let mapped = Ipv4Addr::new(127, 0, 42, 1).to_ipv6_mapped().to_string();
    step(
        TEST,
        format!(
            "[[route]] neighbors = [...] reach only those neighbors; IPv6 next hop self = {mapped} (y: 2001:db8::42)"
        ),
    );
    let all: &[&str] = &[
        "198.51.100.0/24",
        "198.51.101.0/24",
        "198.51.102.0/24",
        "198.51.103.0/24",
        "198.51.104.0/24",
        "198.51.105.0/24",
        "2001:db8:42::/48",
        "2001:db8:43::/48",
        "2001:db8:44::/48",
    ];
    let hops = |prefixes: &[&str], v6: &str| -> Result<Vec<Route>> {
        prefixes
            .iter()
            .map(|p| {
                let hop = if p.contains(':') { v6 } else { local.as_str() };
                route(p, hop, &[MULTI_AS], None)
            })
            .collect()
    };
    let hop_check = AttrCheck {
        med: false,
        ..PATH_CHECK
    };
    let expect = |x_set: &[&str], y_set: &[&str], r_set: &[&str]| -> Result<()> {
        for (name, set, v6, probe) in [
            (
                "BIRD x",
                x_set,
                mapped.as_str(),
                Box::new(|| x.received_routes()) as Box<dyn Fn() -> Result<Vec<Route>>>,
            ),
            (
                "BIRD y",
                y_set,
                "2001:db8::42",
                Box::new(|| y.received_routes()),
            ),
            (
                "the recorder",
                r_set,
                mapped.as_str(),
                Box::new(|| recorder_routes(&recorder, all)),
            ),
        ] {
            // BIRD 2.0.12 reads an IPv4-mapped IPv6 next hop as an IPv4 address and
            // treats the route as withdrawn ("mismatched address family"): BIRD x,
            // whose neighbor has no next-hop-ipv6, holds none of its IPv6 routes.
            let shown: Vec<&str> = if name == "BIRD x" {
                set.iter().copied().filter(|p| !p.contains(':')).collect()
            } else {
                set.to_vec()
            };
            let got = wait_exact(&format!("routes at {name}"), &shown, probe)?;
            for want in hops(&shown, v6)? {
                let check = if name == "the recorder" {
                    AttrCheck {
                        as_path: false,
                        ..hop_check
                    }
                } else {
                    hop_check
                };
                check_route(name, got.get(&want.prefix), &want, &check)?;
            }
        }
        for prefix in x_set.iter().filter(|p| p.contains(':')) {
            let line = format!("Invalid route {prefix} withdrawn");
            wait_until(&format!("BIRD x to log {line:?}"), UP, || {
                Ok(x.log()?.contains(&line))
            })?;
        }
        // wasmbgp's own view agrees (what it sent, whatever the peer kept).
        for (n, set) in [(&x_addr, x_set), (&y_addr, y_set), (&r_addr, r_set)] {
            let out = by_prefix(wasmbgp.adj_rib_out(n)?);
            let mut want: Vec<String> = set
                .iter()
                .map(|p| wasmbgp_e2e::route::canonical_prefix(p))
                .collect::<Result<_>>()?;
            want.sort();
            let got: Vec<String> = out.keys().cloned().collect();
            ensure!(got == want, "adj-rib-out {n}: {got:?}, expecting {want:?}");
        }
        Ok(())
    };
    expect(
        &[
            "198.51.100.0/24",
            "198.51.101.0/24",
            "2001:db8:42::/48",
            "2001:db8:43::/48",
        ],
        &["198.51.100.0/24", "198.51.102.0/24", "2001:db8:42::/48"],
        &["198.51.100.0/24", "198.51.102.0/24", "2001:db8:42::/48"],
    )?;
    let why = format!("mismatched address family ({local} for ipv6)");
    ensure!(
        x.log()?.contains(&why),
        "BIRD x did not refuse the IPv4-mapped next hop with {why:?}: {}",
        x.log()?
    );
    // The raw next hop wasmbgp put in MP_REACH toward the recorder.
    let record = recorder
        .prefix("2001:db8:42::/48")?
        .context("2001:db8:42::/48 never reached the recorder")?;
    let hop = record.attributes.as_ref().and_then(|a| a.next_hop);
    ensure!(
        hop == Some(NextHop::Addr(IpAddr::V6(
            Ipv4Addr::new(127, 0, 42, 1).to_ipv6_mapped()
        ))),
        "MP_REACH next hop toward the recorder is {hop:?}, expecting {mapped}"
    );

    step(
        TEST,
        "ctl neighbor Y announce: only Y; neighbor X,R announce: only X and R; then a route to all",
    );
    let answers = wasmbgp.ctl_batch(&[
        &format!("neighbor {y_addr} announce route 198.51.103.0/24 next-hop self"),
        &format!("neighbor {x_addr},{r_addr} announce route 198.51.104.0/24 next-hop self"),
        &format!("neighbor {r_addr} announce route 2001:db8:44::/48 next-hop self"),
        "announce route 198.51.105.0/24 next-hop self",
    ])?;
    ensure!(
        answers.iter().all(|a| a == "ok"),
        "ctl answered {answers:?}"
    );
    expect(
        &[
            "198.51.100.0/24",
            "198.51.101.0/24",
            "198.51.104.0/24",
            "198.51.105.0/24",
            "2001:db8:42::/48",
            "2001:db8:43::/48",
        ],
        &[
            "198.51.100.0/24",
            "198.51.102.0/24",
            "198.51.103.0/24",
            "198.51.105.0/24",
            "2001:db8:42::/48",
        ],
        &[
            "198.51.100.0/24",
            "198.51.102.0/24",
            "198.51.104.0/24",
            "198.51.105.0/24",
            "2001:db8:42::/48",
            "2001:db8:44::/48",
        ],
    )?;

    step(
        TEST,
        "ctl neighbor X withdraw of a route X has: gone from X only",
    );
    let answers = wasmbgp.ctl_batch(&[
        &format!("neighbor {x_addr} withdraw route 198.51.104.0/24"),
        &format!("neighbor {y_addr} withdraw route 198.51.103.0/24"),
    ])?;
    ensure!(
        answers.iter().all(|a| a == "ok"),
        "ctl answered {answers:?}"
    );
    expect(
        &[
            "198.51.100.0/24",
            "198.51.101.0/24",
            "198.51.105.0/24",
            "2001:db8:42::/48",
            "2001:db8:43::/48",
        ],
        &[
            "198.51.100.0/24",
            "198.51.102.0/24",
            "198.51.105.0/24",
            "2001:db8:42::/48",
        ],
        &[
            "198.51.100.0/24",
            "198.51.102.0/24",
            "198.51.104.0/24",
            "198.51.105.0/24",
            "2001:db8:42::/48",
            "2001:db8:44::/48",
        ],
    )?;
    ensure!(
        recorder.errors().is_empty(),
        "recorder: {:?}",
        recorder.errors()
    );
    x.stop()?;
    y.stop()?;
    Ok(())
}

/// Several neighbors in one daemon: `neighbors = [...]` and `ctl neighbor X` scope routes
/// to those neighbors only, and an IPv6 route with next-hop self over an IPv4 session
/// goes with the IPv4-mapped local address unless `next-hop-ipv6` says otherwise.
#[test]
fn neighbor_scoped_routes() {
    run("proto-neighbors", body_neighbor_scoped_routes);
}
