//! The FlowSpec helpers of [`wasmbgp_e2e::flowspec_support`] work peer to peer (no
//! wasmbgp): GoBGP originates the test rules ([`ddos_rule`], [`rate_limit_rule`],
//! [`rich_rule`], IPv4 and IPv6) toward BIRD, FRR and ExaBGP, each reader returns them
//! in the normalized form (FRR: [`FlowRoute::as_seen_by`]), and GoBGP's withdrawals
//! remove them; BIRD originates them and rules with every other action toward GoBGP,
//! whose reader sees them, and its reconfiguration withdraws them. Once a daemon is
//! stopped, its reader fails (it never reads as "no route").
//!
//! Blocks ([`LimitBlock`]), one pair of daemons each: 270 GoBGP → BIRD, 271 GoBGP → FRR,
//! 272 GoBGP → ExaBGP, 273 BIRD → GoBGP. GoBGP (AS 65270) is on `.1` (BGP port 1, API
//! port 2), its neighbor (AS 65001, standing in for wasmbgp) on `.2` (port 3).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use anyhow::{Context, Result, ensure};
use wasmbgp_e2e::flowspec_support::{
    FlowFamily, FlowRoute, bird_only_rules, ddos_rule, rate_limit_rule, rich_rule, wait_flow_routes,
};
use wasmbgp_e2e::limits_support::LimitBlock;
use wasmbgp_e2e::peers::bird::Bird;
use wasmbgp_e2e::peers::exabgp::ExaBgp;
use wasmbgp_e2e::peers::frr::Frr;
use wasmbgp_e2e::peers::gobgp::GoBgp;
use wasmbgp_e2e::peers::{Peer, PeerSpec, Remote};
use wasmbgp_e2e::policy_support::tail;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wait::DEFAULT_TIMEOUT;
use wasmbgp_e2e::workdir::run_in_workdir;

/// GoBGP's AS.
const GOBGP_AS: u32 = 65270;
/// The neighbor's AS (wasmbgp's in the tests to come).
const NEIGHBOR_AS: u32 = 65001;

/// The specs of GoBGP and of its neighbor in `block`.
fn specs(dir: &Path, block: LimitBlock) -> Result<(PeerSpec, PeerSpec)> {
    let spec = |name: &str, address, port, asn, remote| -> Result<PeerSpec> {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(PeerSpec {
            dir,
            address,
            port,
            asn,
            remote,
            hold_time: 30,
            next_hop4: Ipv4Addr::new(192, 0, 2, 1),
            next_hop6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            originate: Vec::new(),
            api_port: block.port(2),
        })
    };
    let gobgp = spec(
        "gobgp",
        block.addr(1),
        block.port(1),
        GOBGP_AS,
        Remote {
            address: block.addr(2),
            port: block.port(3),
            asn: NEIGHBOR_AS,
        },
    )?;
    let neighbor = spec(
        "neighbor",
        block.addr(2),
        block.port(3),
        NEIGHBOR_AS,
        Remote {
            address: block.addr(1),
            port: block.port(1),
            asn: GOBGP_AS,
        },
    )?;
    Ok((gobgp, neighbor))
}

/// The rules GoBGP originates: the two of the tests to come and the rich one, both
/// families.
fn test_rules() -> Vec<FlowRoute> {
    FlowFamily::ALL
        .iter()
        .flat_map(|f| [ddos_rule(*f), rate_limit_rule(*f), rich_rule(*f)])
        .collect()
}

/// The logs of `peers` after `result`'s error.
fn with_logs(result: Result<()>, peers: &[&dyn Peer]) -> Result<()> {
    result.map_err(|error| {
        let mut logs = String::new();
        for peer in peers {
            let log = peer.log().unwrap_or_else(|e| format!("(no log: {e:#})"));
            logs.push_str(&format!(
                "\n--- {} log tail ---\n{}",
                peer.kind(),
                tail(&log, 30)
            ));
        }
        error.context(logs)
    })
}

/// GoBGP originates [`test_rules`]; `read` (the neighbor's reader) returns them as
/// `kind` sees them; GoBGP withdraws one, then the others.
fn gobgp_originates(
    test: &str,
    gobgp: &GoBgp,
    kind: &str,
    read: impl Fn() -> Result<Vec<FlowRoute>>,
) -> Result<()> {
    let rules = test_rules();
    for rule in &rules {
        ensure!(
            rule.unsupported_by(kind).is_none(),
            "{rule} is not for {kind}: {:?}",
            rule.unsupported_by(kind)
        );
        gobgp.add_flow_route(rule)?;
    }
    let seen: Vec<FlowRoute> = rules.iter().map(|r| r.as_seen_by(kind)).collect();
    step(
        test,
        format!(
            "{} rules originated by GoBGP, waiting for {kind}",
            rules.len()
        ),
    );
    wait_flow_routes(
        &format!("the {} rules at {kind}", rules.len()),
        DEFAULT_TIMEOUT,
        &read,
        &seen,
    )?;
    for route in read()? {
        step(test, format!("{kind} reads {route}"));
    }
    step(test, format!("GoBGP withdraws {}", rules[0]));
    gobgp.del_flow_route(&rules[0])?;
    wait_flow_routes(
        &format!("{kind} to lose the withdrawn rule only"),
        DEFAULT_TIMEOUT,
        &read,
        &seen[1..],
    )?;
    for rule in &rules[1..] {
        gobgp.del_flow_route(rule)?;
    }
    wait_flow_routes(
        &format!("{kind} to lose every rule"),
        DEFAULT_TIMEOUT,
        &read,
        &[],
    )?;
    step(
        test,
        format!("{kind} saw every announcement and withdrawal"),
    );
    Ok(())
}

fn start_gobgp(spec: PeerSpec) -> Result<GoBgp> {
    let mut gobgp = GoBgp::new(spec).with_flowspec();
    gobgp.start()?;
    Ok(gobgp)
}

#[test]
fn gobgp_originates_toward_bird() {
    let test = "flowspec_gobgp_bird";
    run_in_workdir(test, |work| {
        let (gobgp_spec, bird_spec) = specs(work.path(), LimitBlock(270))?;
        let mut bird = Bird::new(bird_spec).with_flowspec();
        bird.start()?;
        let gobgp = start_gobgp(gobgp_spec)?;
        let result = (|| {
            gobgp.wait_established(DEFAULT_TIMEOUT)?;
            bird.wait_established(DEFAULT_TIMEOUT)?;
            gobgp_originates(test, &gobgp, "bird", || bird.flow_routes())?;
            // The unicast reader ignores the flow tables.
            ensure!(
                bird.received_routes()?.is_empty(),
                "BIRD shows unicast routes"
            );
            Ok(())
        })();
        let result = result.and_then(|()| {
            bird.stop()?;
            ensure!(
                bird.flow_routes().is_err(),
                "a stopped BIRD's reader answers"
            );
            Ok(())
        });
        with_logs(result, &[&gobgp, &bird])
    });
}

#[test]
fn gobgp_originates_toward_frr() {
    let test = "flowspec_gobgp_frr";
    run_in_workdir(test, |work| {
        let (gobgp_spec, frr_spec) = specs(work.path(), LimitBlock(271))?;
        let mut frr = Frr::new(frr_spec).with_flowspec();
        frr.start()?;
        let gobgp = start_gobgp(gobgp_spec)?;
        let result = (|| {
            gobgp.wait_established(DEFAULT_TIMEOUT)?;
            frr.wait_established(DEFAULT_TIMEOUT)?;
            gobgp_originates(test, &gobgp, "frr", || frr.flow_routes())?;
            // FRR sends no flow route back (route-map FLOW_OUT_NONE).
            ensure!(
                gobgp.flow_routes()?.is_empty(),
                "FRR sent flow routes to GoBGP"
            );
            Ok(())
        })();
        let result = result.and_then(|()| {
            frr.stop()?;
            ensure!(frr.flow_routes().is_err(), "a stopped FRR's reader answers");
            Ok(())
        });
        with_logs(result, &[&gobgp, &frr])
    });
}

#[test]
fn gobgp_originates_toward_exabgp() {
    let test = "flowspec_gobgp_exabgp";
    run_in_workdir(test, |work| {
        let (gobgp_spec, exabgp_spec) = specs(work.path(), LimitBlock(272))?;
        let mut exabgp = ExaBgp::new(exabgp_spec).with_flowspec();
        exabgp.start()?;
        let gobgp = start_gobgp(gobgp_spec)?;
        let result = (|| {
            gobgp.wait_established(DEFAULT_TIMEOUT)?;
            exabgp.wait_established(DEFAULT_TIMEOUT)?;
            gobgp_originates(test, &gobgp, "exabgp", || exabgp.flow_routes())
        })();
        with_logs(result, &[&gobgp, &exabgp])
    });
}

#[test]
fn bird_originates_toward_gobgp() {
    let test = "flowspec_bird_gobgp";
    run_in_workdir(test, |work| {
        let (gobgp_spec, bird_spec) = specs(work.path(), LimitBlock(273))?;
        let mut rules = test_rules();
        rules.extend(bird_only_rules());
        let mut bird = Bird::new(bird_spec).with_flow_routes(&rules[..1])?;
        bird.start()?;
        let mut gobgp = start_gobgp(gobgp_spec)?;
        let result = (|| {
            gobgp.wait_established(DEFAULT_TIMEOUT)?;
            bird.wait_established(DEFAULT_TIMEOUT)?;
            wait_flow_routes(
                "the rule of BIRD's first config at GoBGP",
                DEFAULT_TIMEOUT,
                || gobgp.flow_routes(),
                &rules[..1],
            )?;
            step(
                test,
                format!("BIRD reconfigured to originate {} rules", rules.len()),
            );
            bird.set_flow_routes(&rules)?;
            wait_flow_routes(
                &format!("the {} rules of BIRD at GoBGP", rules.len()),
                DEFAULT_TIMEOUT,
                || gobgp.flow_routes(),
                &rules,
            )?;
            for route in gobgp.flow_routes()? {
                step(test, format!("GoBGP reads {route}"));
            }
            bird.set_flow_routes(&rules[2..])?;
            wait_flow_routes(
                "GoBGP to lose the two rules BIRD no longer originates",
                DEFAULT_TIMEOUT,
                || gobgp.flow_routes(),
                &rules[2..],
            )?;
            bird.set_flow_routes(&[])?;
            wait_flow_routes(
                "GoBGP to lose every rule",
                DEFAULT_TIMEOUT,
                || gobgp.flow_routes(),
                &[],
            )?;
            Ok(())
        })();
        let result = result.and_then(|()| {
            gobgp.stop()?;
            ensure!(
                gobgp.flow_routes().is_err(),
                "a stopped GoBGP's reader answers"
            );
            Ok(())
        });
        with_logs(result, &[&gobgp, &bird])
    });
}
