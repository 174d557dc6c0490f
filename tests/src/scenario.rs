//! The checks shared by the `interop_*` test files.
//!
//! Blocks in use: 1-2 BIRD, 3 GoBGP, 4 FRR, 5 ExaBGP (full scenario);
//! 6-9 the same daemons for [`passive_keepalive`]; 11, 13-15 driver
//! self-tests; 50-53 the codec vector capture (`src/bin/capture-vectors.rs`); plugin
//! tests use 200 and up (`plugin_support`).
//!
//! Addressing: test block `N` (unique per test, so tests run in parallel)
//! uses `127.0.N.1` for wasmbgp (or the stand-in daemon of a driver
//! self-test) and `127.0.N.2` for the peer, with ports `10000 + 10*N + k`
//! (`k` = 0: wasmbgp side, 1: peer, 2: peer control API). Nothing listens on
//! a wildcard address, so port 179 and other tests are never in the way.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::peers::bird::Bird;
use crate::peers::{Peer, PeerSpec, Remote};
use crate::route::{AttrCheck, Family, Origin, Route, count_families};
use crate::step;
use crate::wait::{DEFAULT_TIMEOUT, wait_for, wait_until};
use crate::wasmbgp::{Config, NeighborConfig, RouteAttrs, RouteFile, WasmBgp};
use crate::workdir::WorkDir;

/// Our AS in eBGP scenarios.
pub const WASMBGP_AS: u32 = 65001;
/// Number of bulk routes per family sent from a route file.
pub const BULK_ROUTES: usize = 1000;
/// IPv6 next hop wasmbgp puts on its IPv6 routes.
pub const WASMBGP_NEXT_HOP6: &str = "2001:db8::1";
/// IPv4 next hop used instead of `self` toward peers that drop loopback next hops.
pub const DOCUMENTATION_NEXT_HOP4: &str = "192.0.2.1";
/// Bound for a killed peer to be Established again after its restart.
pub const RECONNECT_BOUND: Duration = Duration::from_secs(10);

/// Builds a driver from a spec.
pub type PeerFactory = fn(PeerSpec) -> Box<dyn Peer>;

/// Waits until `peer` holds exactly `full_table` (IPv4, IPv6) routes.
fn wait_full_table(
    peer: &dyn Peer,
    full_table: (usize, usize),
    what: &str,
    timeout: Duration,
) -> Result<()> {
    wait_for(what, timeout, || {
        let counts = count_families(&peer.received_routes()?);
        if counts == full_table {
            Ok(Some(()))
        } else {
            bail!("peer has (IPv4, IPv6) = {counts:?}, expecting {full_table:?}")
        }
    })
}

/// Addresses and ports of one test block (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Block(pub u8);

impl Block {
    /// `127.0.N.host`.
    pub fn addr(self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, self.0, host)
    }
    /// wasmbgp's (or the stand-in's) address.
    pub fn local(self) -> Ipv4Addr {
        self.addr(1)
    }
    /// The peer's address.
    pub fn peer(self) -> Ipv4Addr {
        self.addr(2)
    }
    /// Port `k` (0..10) of this block.
    pub fn port(self, k: u16) -> u16 {
        assert!(k < 10, "a block has 10 ports");
        10000 + 10 * u16::from(self.0) + k
    }
}

/// The [`BULK_ROUTES`] prefixes of `family` sent in bulk.
pub fn bulk_prefixes(family: Family) -> Vec<String> {
    match family {
        Family::Ipv4 => (0..BULK_ROUTES)
            .map(|i| format!("100.{}.{}.0/24", 64 + i / 256, i % 256))
            .collect(),
        Family::Ipv6 => (0..BULK_ROUTES)
            .map(|i| format!("2001:db8:a:{i:x}::/64"))
            .collect(),
    }
}

/// The routes every peer originates toward wasmbgp (or the stand-in).
pub fn peer_originated_routes(peer_as: u32) -> Vec<Route> {
    let rich4 = Route {
        origin: Some(Origin::Egp),
        med: Some(10),
        communities: vec![format!("{peer_as}:7"), format!("{peer_as}:8")],
        large_communities: vec![format!("{peer_as}:7:7")],
        ..Route::new("203.0.113.0/24").expect("valid prefix")
    };
    // FRR always sends a MED (0) on networks it originates: set one.
    let plain4 = Route {
        origin: Some(Origin::Igp),
        med: Some(5),
        ..Route::new("203.0.113.128/25").expect("valid prefix")
    };
    let rich6 = Route {
        origin: Some(Origin::Igp),
        med: Some(20),
        communities: vec![format!("{peer_as}:66")],
        large_communities: vec![format!("{peer_as}:6:6")],
        ..Route::new("2001:db8:beef::/48").expect("valid prefix")
    };
    vec![rich4, plain4, rich6]
}

/// The spec of the peer of block `block`.
pub fn peer_spec(dir: &std::path::Path, block: Block, peer_as: u32, remote_as: u32) -> PeerSpec {
    PeerSpec {
        dir: dir.to_path_buf(),
        address: block.peer(),
        port: block.port(1),
        asn: peer_as,
        remote: Remote {
            address: block.local(),
            port: block.port(0),
            asn: remote_as,
        },
        hold_time: 30,
        next_hop4: Ipv4Addr::new(192, 0, 2, block.0),
        next_hop6: format!("2001:db8::{:x}", block.0)
            .parse::<Ipv6Addr>()
            .expect("valid address"),
        originate: peer_originated_routes(peer_as),
        api_port: block.port(2),
    }
}

/// What the receiving side should see for a route the peer originated.
fn expected_from_peer(spec: &PeerSpec, route: &Route) -> Route {
    let mut expected = route.clone();
    expected.next_hop = Some(match route.family() {
        Family::Ipv4 => spec.next_hop4.to_string(),
        Family::Ipv6 => spec.next_hop6.to_string(),
    });
    expected.as_path = if spec.is_ibgp() {
        Vec::new()
    } else {
        vec![spec.asn]
    };
    expected
}

fn check_route(what: &str, got: Option<Route>, expected: &Route, check: &AttrCheck) -> Result<()> {
    let got = got.with_context(|| format!("{what}: route {} missing", expected.prefix))?;
    let diffs = got.differences(expected, check);
    ensure!(
        diffs.is_empty(),
        "{what}: route {} differs: {}",
        expected.prefix,
        diffs.join("; ")
    );
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Driver self-test: the driven daemon peers with a BIRD stand-in for
/// wasmbgp. Checks both views of the session, routes in both directions
/// with attributes, restart after SIGKILL, and the Cease log wording.
pub fn peer_selftest(
    test: &str,
    work: &WorkDir,
    block: Block,
    make_peer: PeerFactory,
) -> Result<()> {
    let peer_as = 65100 + u32::from(block.0);
    let mut peer = make_peer(peer_spec(&work.subdir("peer")?, block, peer_as, WASMBGP_AS));

    // The stand-in plays wasmbgp: block.local(), AS 65001, rich routes.
    let rich4 = Route {
        origin: Some(Origin::Egp),
        med: Some(100),
        communities: vec!["65001:100".into(), "65001:200".into()],
        large_communities: vec!["65001:1:2".into()],
        ..Route::new("198.18.0.0/24")?
    };
    let rich6 = Route {
        origin: Some(Origin::Incomplete),
        med: Some(50),
        communities: vec!["65001:600".into()],
        large_communities: vec!["65001:6:6".into()],
        ..Route::new("2001:db8:ffff::/48")?
    };
    let stand_in_spec = PeerSpec {
        dir: work.subdir("stand-in")?,
        address: block.local(),
        port: block.port(0),
        asn: WASMBGP_AS,
        remote: Remote {
            address: block.peer(),
            port: block.port(1),
            asn: peer_as,
        },
        hold_time: 30,
        next_hop4: DOCUMENTATION_NEXT_HOP4.parse()?,
        next_hop6: WASMBGP_NEXT_HOP6.parse()?,
        originate: [rich4.clone(), rich6.clone()]
            .into_iter()
            .chain(
                bulk_prefixes(Family::Ipv4)
                    .iter()
                    .chain(&bulk_prefixes(Family::Ipv6))
                    .map(|p| Route::new(p).expect("valid prefix")),
            )
            .collect(),
        api_port: block.port(2),
    };
    let mut stand_in = Bird::new(stand_in_spec.clone());
    let full_table = (BULK_ROUTES + 1, BULK_ROUTES + 1);

    step(
        test,
        format!("starting {} and a BIRD stand-in", peer.kind()),
    );
    peer.start()?;
    stand_in.start()?;
    peer.wait_established(DEFAULT_TIMEOUT)?;
    stand_in.wait_established(DEFAULT_TIMEOUT)?;

    step(
        test,
        "routes from the stand-in reach the peer with their attributes",
    );
    let check = AttrCheck {
        local_pref: false,
        ..AttrCheck::ALL
    };
    for route in [&rich4, &rich6] {
        let expected = expected_from_peer(&stand_in_spec, route);
        wait_until(
            &format!("{} at {}", route.prefix, peer.kind()),
            DEFAULT_TIMEOUT,
            || Ok(peer.received_route(&route.prefix)?.is_some()),
        )?;
        check_route(
            peer.kind(),
            peer.received_route(&route.prefix)?,
            &expected,
            &check,
        )?;
    }
    wait_full_table(
        &*peer,
        full_table,
        "the full table at the peer",
        DEFAULT_TIMEOUT,
    )?;

    step(
        test,
        "routes from the peer reach the stand-in with their attributes",
    );
    let originated = peer.spec().originate.clone();
    wait_until("peer routes at the stand-in", DEFAULT_TIMEOUT, || {
        Ok(stand_in.received_routes()?.len() == originated.len())
    })?;
    for route in &originated {
        let expected = expected_from_peer(peer.spec(), route);
        check_route(
            "stand-in",
            stand_in.received_route(&route.prefix)?,
            &expected,
            &check,
        )?;
    }

    step(test, "SIGKILL and restart of the peer");
    peer.kill()?;
    peer.start()?;
    peer.wait_established(DEFAULT_TIMEOUT)?;
    stand_in.wait_established(DEFAULT_TIMEOUT)?;
    wait_until(
        "the full table at the restarted peer",
        DEFAULT_TIMEOUT,
        || Ok(count_families(&peer.received_routes()?) == full_table),
    )?;

    step(
        test,
        "administrative shutdown from the stand-in is logged by the peer",
    );
    stand_in.birdc(&["disable", crate::peers::bird::PROTOCOL])?;
    wait_until("the peer to log the Cease", DEFAULT_TIMEOUT, || {
        peer.received_cease()
    })
    .with_context(|| {
        format!(
            "{} log:\n{}",
            peer.kind(),
            tail(&peer.log().unwrap_or_default(), 30)
        )
    })?;
    peer.stop()?;
    stand_in.stop()?;
    Ok(())
}

/// The full wasmbgp interop scenario ("Must show 2") against one peer.
pub fn wasmbgp_interop(
    test: &str,
    work: &WorkDir,
    block: Block,
    ibgp: bool,
    make_peer: PeerFactory,
) -> Result<()> {
    let peer_as = if ibgp {
        WASMBGP_AS
    } else {
        65100 + u32::from(block.0)
    };
    let mut peer = make_peer(peer_spec(&work.subdir("peer")?, block, peer_as, WASMBGP_AS));
    let local = block.local().to_string();
    let neighbor = block.peer().to_string();

    let (next_hop4_config, next_hop4) = if peer.rejects_loopback_next_hop() {
        (
            DOCUMENTATION_NEXT_HOP4.to_owned(),
            DOCUMENTATION_NEXT_HOP4.to_owned(),
        )
    } else {
        ("self".to_owned(), local.clone())
    };
    let own_path = |path: &[u32]| -> Vec<u32> {
        if ibgp {
            path.to_vec()
        } else {
            [&[WASMBGP_AS][..], path].concat()
        }
    };

    // Routes wasmbgp originates.
    let rich4_attrs = RouteAttrs {
        next_hop: Some(next_hop4_config.clone()),
        med: Some(100),
        local_pref: ibgp.then_some(200),
        origin: Some(Origin::Egp),
        as_path: vec![65010, 65011],
        communities: vec!["65001:100".into(), "65001:200".into()],
        large_communities: vec!["65001:1:2".into()],
        extended_communities: vec!["target:65001:7".into()],
        neighbors: vec![neighbor.clone()],
    };
    let rich6_attrs = RouteAttrs {
        next_hop: Some(WASMBGP_NEXT_HOP6.into()),
        med: Some(50),
        origin: Some(Origin::Incomplete),
        communities: vec!["65001:600".into()],
        large_communities: vec!["65001:6:6".into()],
        ..RouteAttrs::default()
    };
    let bulk4 = bulk_prefixes(Family::Ipv4);
    let bulk6 = bulk_prefixes(Family::Ipv6);
    let config = Config {
        router_id: local.clone(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(30),
            families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
            ..NeighborConfig::new(&neighbor, block.port(1), peer_as, &local)
        }],
        routes: vec![
            ("198.18.0.0/24".into(), rich4_attrs.clone()),
            ("2001:db8:ffff::/48".into(), rich6_attrs.clone()),
        ],
        route_files: vec![
            RouteFile {
                name: "routes-v4.txt".into(),
                lines: bulk4.clone(),
                defaults: RouteAttrs {
                    next_hop: Some(next_hop4_config.clone()),
                    med: Some(10),
                    ..RouteAttrs::default()
                },
            },
            RouteFile {
                name: "routes-v6.txt".into(),
                lines: bulk6.clone(),
                defaults: RouteAttrs {
                    next_hop: Some(WASMBGP_NEXT_HOP6.into()),
                    ..RouteAttrs::default()
                },
            },
        ],
    };
    let expected_rich4 = Route {
        next_hop: Some(next_hop4.clone()),
        origin: Some(Origin::Egp),
        as_path: own_path(&[65010, 65011]),
        med: Some(100),
        local_pref: ibgp.then_some(200),
        communities: rich4_attrs.communities.clone(),
        large_communities: rich4_attrs.large_communities.clone(),
        extended_communities: rich4_attrs.extended_communities.clone(),
        ..Route::new("198.18.0.0/24")?
    };
    let expected_rich6 = Route {
        next_hop: Some(WASMBGP_NEXT_HOP6.into()),
        origin: Some(Origin::Incomplete),
        as_path: own_path(&[]),
        med: Some(50),
        // iBGP always carries LOCAL_PREF; the default is 100.
        local_pref: ibgp.then_some(100),
        communities: rich6_attrs.communities.clone(),
        large_communities: rich6_attrs.large_communities.clone(),
        ..Route::new("2001:db8:ffff::/48")?
    };
    let expected_bulk4 = Route {
        next_hop: Some(next_hop4.clone()),
        as_path: own_path(&[]),
        med: Some(10),
        ..Route::new(&bulk4[BULK_ROUTES - 1])?
    };
    let expected_bulk6 = Route {
        next_hop: Some(WASMBGP_NEXT_HOP6.into()),
        as_path: own_path(&[]),
        ..Route::new(&bulk6[BULK_ROUTES / 2])?
    };
    let full_table = (BULK_ROUTES + 1, BULK_ROUTES + 1);
    let check = AttrCheck {
        local_pref: ibgp,
        ..AttrCheck::ALL
    };
    let bulk_check = AttrCheck {
        origin: false,
        local_pref: false,
        communities: false,
        large_communities: false,
        ..AttrCheck::ALL
    };

    step(
        test,
        format!(
            "1. starting {} (AS {peer_as}) and wasmbgp (AS {WASMBGP_AS})",
            peer.kind()
        ),
    );
    peer.start()?;
    let mut wasmbgp = WasmBgp::start(&work.subdir("wasmbgp")?, &config)?;
    wait_until(
        "wasmbgp to report the session established",
        DEFAULT_TIMEOUT,
        || wasmbgp.is_established(&neighbor),
    )
    .context("step 1: session (wasmbgp view)")?;
    peer.wait_established(DEFAULT_TIMEOUT)
        .context("step 1: session (peer view)")?;

    step(
        test,
        format!(
            "2. {} IPv4 + {} IPv6 routes arrive with their attributes",
            BULK_ROUTES + 1,
            BULK_ROUTES + 1
        ),
    );
    wait_full_table(
        &*peer,
        full_table,
        "the full table at the peer",
        Duration::from_secs(60),
    )
    .context("step 2: full table")?;
    check_route(
        "step 2 rich IPv4",
        peer.received_route("198.18.0.0/24")?,
        &expected_rich4,
        &check,
    )?;
    check_route(
        "step 2 rich IPv6",
        peer.received_route("2001:db8:ffff::/48")?,
        &expected_rich6,
        &check,
    )?;
    // Every bulk route, as listed by the peer's bulk view.
    let received = crate::route::by_prefix(peer.received_routes()?);
    for (prefixes, template) in [(&bulk4, &expected_bulk4), (&bulk6, &expected_bulk6)] {
        for prefix in prefixes {
            let expected = Route {
                prefix: crate::route::canonical_prefix(prefix)?,
                ..template.clone()
            };
            check_route(
                "step 2 bulk",
                received.get(&expected.prefix).cloned(),
                &expected,
                &bulk_check,
            )?;
        }
    }
    let adj_out = wasmbgp
        .adj_rib_out(&neighbor)
        .context("step 2: show adj-rib-out")?;
    ensure!(
        count_families(&adj_out) == full_table,
        "step 2: show adj-rib-out {neighbor} has (IPv4, IPv6) = {:?}, expecting {full_table:?}",
        count_families(&adj_out)
    );
    let sent = wasmbgp.neighbor(&neighbor)?.prefixes_sent;
    ensure!(
        sent == 2 * (BULK_ROUTES as u64 + 1),
        "step 2: show neighbors reports prefixes-sent {sent}"
    );

    step(
        test,
        "3. ctl announce adds routes, ctl withdraw removes them",
    );
    let announced4 = Route {
        next_hop: Some(next_hop4.clone()),
        origin: Some(Origin::Igp),
        as_path: own_path(&[]),
        med: Some(300),
        communities: vec!["65001:301".into()],
        large_communities: vec!["65001:3:1".into()],
        ..Route::new("198.18.1.0/24")?
    };
    let announced6 = Route {
        next_hop: Some(WASMBGP_NEXT_HOP6.into()),
        origin: Some(Origin::Igp),
        as_path: own_path(&[]),
        med: Some(7),
        ..Route::new("2001:db8:fffe::/48")?
    };
    wasmbgp.ctl_line(&format!(
        "announce route 198.18.1.0/24 next-hop {next_hop4_config} med 300 origin igp community [ 65001:301 ] large-community [ 65001:3:1 ]"
    ))?;
    wasmbgp.ctl_line(&format!(
        "announce route 2001:db8:fffe::/48 next-hop {WASMBGP_NEXT_HOP6} med 7 origin igp"
    ))?;
    for route in [&announced4, &announced6] {
        wait_until(
            &format!("announced {} at the peer", route.prefix),
            DEFAULT_TIMEOUT,
            || Ok(peer.received_route(&route.prefix)?.is_some()),
        )
        .context("step 3: ctl announce")?;
        check_route(
            "step 3 announced",
            peer.received_route(&route.prefix)?,
            route,
            &AttrCheck {
                local_pref: false,
                ..check
            },
        )?;
    }
    wasmbgp.ctl(&["withdraw", "route", "198.18.1.0/24"])?;
    wasmbgp.ctl(&["withdraw", "route", "2001:db8:fffe::/48"])?;
    wasmbgp.ctl(&["withdraw", "route", &bulk4[0]])?;
    for prefix in ["198.18.1.0/24", "2001:db8:fffe::/48", bulk4[0].as_str()] {
        wait_until(
            &format!("withdrawn {prefix} to leave the peer"),
            DEFAULT_TIMEOUT,
            || Ok(peer.received_route(prefix)?.is_none()),
        )
        .context("step 3: ctl withdraw")?;
    }
    // Put the withdrawn bulk route back so the table is complete again, and
    // exercise `ctl -` (one command per line, one answer per line).
    let answers = wasmbgp.ctl_batch(&[
        &format!(
            "announce route {} next-hop {next_hop4_config} med 10",
            bulk4[0]
        ),
        "no-such-command",
    ])?;
    ensure!(
        answers.len() == 2 && answers[0] == "ok" && answers[1].starts_with("error:"),
        "step 3: ctl - answered {answers:?}, expecting [\"ok\", \"error: ...\"]"
    );
    wait_until(
        "re-announced bulk route at the peer",
        DEFAULT_TIMEOUT,
        || Ok(peer.received_route(&bulk4[0])?.is_some()),
    )
    .context("step 3: re-announce")?;

    step(
        test,
        "4. routes the peer originates are in wasmbgp's adj-rib-in",
    );
    let originated = peer.spec().originate.clone();
    wait_for("peer routes in adj-rib-in", DEFAULT_TIMEOUT, || {
        let routes = wasmbgp.adj_rib_in(&neighbor)?;
        if routes.len() == originated.len() {
            Ok(Some(()))
        } else {
            bail!("adj-rib-in has {} routes: {routes:?}", routes.len())
        }
    })
    .context("step 4: adj-rib-in")?;
    let adj_in = crate::route::by_prefix(wasmbgp.adj_rib_in(&neighbor)?);
    let received_count = wasmbgp.neighbor(&neighbor)?.prefixes_received;
    ensure!(
        received_count == originated.len() as u64,
        "step 4: show neighbors reports prefixes-received {received_count}, expecting {}",
        originated.len()
    );
    for route in &originated {
        let expected = expected_from_peer(peer.spec(), route);
        let check = AttrCheck {
            local_pref: false,
            ..AttrCheck::ALL
        };
        check_route(
            "step 4 adj-rib-in",
            adj_in.get(&route.prefix).cloned(),
            &expected,
            &check,
        )?;
    }

    step(
        test,
        "5. the peer is SIGKILLed and restarted: session back within 10 s, table re-sent",
    );
    let before = wasmbgp.neighbor(&neighbor)?.established_count;
    peer.kill()?;
    let restarted = Instant::now();
    peer.start()?;
    wait_until(
        "session back after restart (peer view)",
        RECONNECT_BOUND,
        || peer.session_established(),
    )
    .context("step 5: reconnect")?;
    wait_until(
        "session back after restart (wasmbgp view)",
        RECONNECT_BOUND,
        || {
            let status = wasmbgp.neighbor(&neighbor)?;
            Ok(status.state == "established" && status.established_count > before)
        },
    )
    .context("step 5: reconnect (wasmbgp)")?;
    step(
        test,
        format!("   re-established after {:?}", restarted.elapsed()),
    );
    // One bound from the kill, the peer's start included (the waits above each had it).
    ensure!(
        restarted.elapsed() <= RECONNECT_BOUND,
        "step 5: re-established {:?} after the kill, more than {RECONNECT_BOUND:?}",
        restarted.elapsed()
    );
    wait_full_table(
        &*peer,
        full_table,
        "the full table at the restarted peer",
        Duration::from_secs(60),
    )
    .context("step 5: table re-sent")?;

    step(
        test,
        "6. SIGTERM to wasmbgp sends Cease/Administrative Shutdown",
    );
    let status = wasmbgp.terminate().context("step 6: wasmbgp exit")?;
    ensure!(
        status.success(),
        "step 6: wasmbgp exited with {status} after SIGTERM"
    );
    wait_until(
        "the peer to log Cease/Administrative Shutdown",
        DEFAULT_TIMEOUT,
        || peer.received_cease(),
    )
    .context("step 6: Cease at the peer")?;
    peer.stop()?;
    Ok(())
}

/// Hold time used by [`passive_keepalive`].
pub const SHORT_HOLD_TIME: u16 = 3;

/// wasmbgp as the passive side with a 3 s hold time: the peer connects to
/// wasmbgp's `listen` address, and the session must stay up (keepalives
/// flowing both ways) for three hold times without being re-established.
pub fn passive_keepalive(
    test: &str,
    work: &WorkDir,
    block: Block,
    make_peer: PeerFactory,
) -> Result<()> {
    let peer_as = 65100 + u32::from(block.0);
    let mut spec = peer_spec(&work.subdir("peer")?, block, peer_as, WASMBGP_AS);
    spec.hold_time = SHORT_HOLD_TIME;
    let mut peer = make_peer(spec);
    let local = block.local().to_string();
    let neighbor = block.peer().to_string();
    let config = Config {
        router_id: local.clone(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(SHORT_HOLD_TIME),
            passive: true,
            families: vec!["ipv4-unicast".into(), "ipv6-unicast".into()],
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
        format!(
            "passive wasmbgp, {} connects, hold time {SHORT_HOLD_TIME} s",
            peer.kind()
        ),
    );
    let wasmbgp = WasmBgp::start(&work.subdir("wasmbgp")?, &config)?;
    peer.start()?;
    wait_until("wasmbgp to accept the session", DEFAULT_TIMEOUT, || {
        wasmbgp.is_established(&neighbor)
    })?;
    peer.wait_established(DEFAULT_TIMEOUT)?;
    wait_until("the route at the peer", DEFAULT_TIMEOUT, || {
        Ok(peer.received_route("198.18.0.0/24")?.is_some())
    })?;

    step(test, "the session survives three hold times");
    let deadline = Instant::now() + Duration::from_secs(3 * u64::from(SHORT_HOLD_TIME));
    while Instant::now() < deadline {
        let status = wasmbgp.neighbor(&neighbor)?;
        ensure!(
            status.state == "established" && status.established_count == 1,
            "session flapped: state {}, established-count {}, last error {:?}",
            status.state,
            status.established_count,
            status.last_error
        );
        ensure!(
            peer.session_established()?,
            "the peer reports the session down"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    peer.stop()?;
    Ok(())
}

/// Runs [`passive_keepalive`] like [`run_wasmbgp_interop`].
pub fn run_passive_keepalive(test: &str, block: Block, make_peer: PeerFactory) {
    run_in_workdir(test, |work| passive_keepalive(test, work, block, make_peer));
}

/// Runs [`wasmbgp_interop`] in a fresh work directory; on failure prints
/// the tails of every log in it (the directory is kept) and panics.
pub fn run_wasmbgp_interop(test: &str, block: Block, ibgp: bool, make_peer: PeerFactory) {
    run_in_workdir(test, |work| {
        wasmbgp_interop(test, work, block, ibgp, make_peer)
    });
}

/// Runs [`peer_selftest`] like [`run_wasmbgp_interop`].
pub fn run_peer_selftest(test: &str, block: Block, make_peer: PeerFactory) {
    run_in_workdir(test, |work| peer_selftest(test, work, block, make_peer));
}

fn run_in_workdir(test: &str, body: impl FnOnce(&WorkDir) -> Result<()>) {
    let work = WorkDir::new(test).unwrap_or_else(|error| panic!("[{test}] {error:?}"));
    if let Err(error) = body(&work) {
        print_logs(work.path());
        panic!("[{test}] {error:?}");
    }
}

/// Prints the last lines of every log file below `dir`.
fn print_logs(dir: &std::path::Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "log" || ext == "stdout" || ext == "json")
            {
                let text = crate::peers::read_optional(&path).unwrap_or_default();
                eprintln!(
                    "----- {} (last 40 lines) -----\n{}",
                    path.display(),
                    tail(&text, 40)
                );
            }
        }
    }
}
