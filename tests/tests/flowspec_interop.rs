//! FlowSpec rules announced by wasmbgp reach GoBGP, BIRD, FRR and ExaBGP with identical
//! components and actions, IPv4 and IPv6 (issue 12, "Must show" 2), and withdrawing
//! removes them at each.
//!
//! wasmbgp (AS 65001) has one eBGP neighbor negotiating ipv4/ipv6 unicast and flowspec.
//! Its config holds one `[[flow]]` rule ([`rich_rule`] IPv4: every component, several
//! actions) and a `[[flow-file]]` with an IPv6 rule in flat words; `wasmbgp ctl` announces the seed's DDoS rule (source prefix, destination
//! port, protocol → redirect to route target 65001:999) and a rate-limit rule in both
//! families and the IPv6 rich rule, in ExaBGP's block syntax, one of them through a
//! `ctl -` batch. Each peer's reader ([`wasmbgp_e2e::flowspec_support`]) must then return
//! exactly those eight rules, as that peer can show them ([`FlowRoute::as_seen_by`]:
//! FRR prints less than it receives); `show adj-rib-out` lists them, readably and in
//! JSON. `ctl withdraw flow route` (the rule alone, no actions) removes those from the
//! peer, and the config's rules stay.
//!
//! With GoBGP, the neighbor also has `max-advertise = { ipv4-flowspec = 3 }`: a fourth
//! IPv4 rule is refused with the cap's reason and never reaches GoBGP, while IPv6 rules
//! are not counted against it.
//!
//! Blocks ([`LimitBlock`]): 274 GoBGP, 275 BIRD, 276 FRR, 277 ExaBGP. The peer is on
//! `.1` (BGP port 1, GoBGP's API port 3), wasmbgp on `.2` (port 2).

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use wasmbgp_e2e::flowspec_support::{
    Component, FlowFamily, FlowRoute, ddos_rule, rate_limit_rule, rich_rule, wait_flow_routes,
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
use wasmbgp_e2e::wasmbgp::{Config, Launch, NeighborConfig, WasmBgp};
use wasmbgp_e2e::workdir::run_in_workdir;

/// wasmbgp's AS.
const WASMBGP_AS: u32 = 65001;
/// The peer's AS.
const PEER_AS: u32 = 65274;

/// The peer's spec in `block`, facing wasmbgp.
fn peer_spec(dir: &std::path::Path, block: LimitBlock) -> Result<PeerSpec> {
    let dir = dir.join("peer");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(PeerSpec {
        dir,
        address: block.addr(1),
        port: block.port(1),
        asn: PEER_AS,
        remote: Remote {
            address: block.addr(2),
            port: block.port(2),
            asn: WASMBGP_AS,
        },
        hold_time: 30,
        next_hop4: Ipv4Addr::new(192, 0, 2, 1),
        next_hop6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        originate: Vec::new(),
        api_port: block.port(3),
    })
}

/// `route` in ExaBGP's block syntax, as wasmbgp's `announce flow route` reads it.
fn exabgp_words(route: &FlowRoute) -> String {
    let mut out = String::from("{ match {");
    for (component, text) in &route.matches {
        let text = match text.split_once(" offset ") {
            Some((prefix, offset)) => format!("{prefix}/{offset}"),
            None => text.clone(),
        };
        let value = match text.contains(' ') {
            true => format!("[ {text} ]"),
            false => text,
        };
        out += &format!(" {component} {value};");
    }
    out += " } then {";
    for action in &route.actions {
        out += &format!(" {action};");
    }
    out + " } }"
}

/// The rule of the `[[flow-file]]`.
fn file_rule() -> FlowRoute {
    FlowRoute::new(FlowFamily::Ipv6)
        .matching(Component::Destination, "2001:db8:77::/64")
        .matching(Component::Protocol, "=17")
        .matching(Component::DestinationPort, "=123")
        .then("discard")
}

/// `route` in flat words, a line of a flow file.
fn flat_words(route: &FlowRoute) -> String {
    exabgp_words(route)
        .replace(['{', '}', ';'], " ")
        .replace(" match ", " ")
        .replace(" then ", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The wasmbgp config: one neighbor with every family, `extra` neighbor keys, the
/// `[[flow]]` rule, and a `[[flow-file]]` (`ddos.flows`).
fn wasmbgp_config(
    dir: &std::path::Path,
    block: LimitBlock,
    extra: &str,
    flow: &FlowRoute,
) -> String {
    let mut neighbor = NeighborConfig::new(block.addr(1), block.port(1), PEER_AS, block.addr(2));
    neighbor.families = [
        "ipv4-unicast",
        "ipv6-unicast",
        "ipv4-flowspec",
        "ipv6-flowspec",
    ]
    .map(str::to_owned)
    .to_vec();
    let config = Config {
        router_id: block.addr(2).to_string(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{}:{}", block.addr(2), block.port(2))),
        neighbors: vec![neighbor],
        routes: Vec::new(),
        route_files: Vec::new(),
    };
    let mut text = config.render(&WasmBgp::socket_in(dir));
    if !extra.is_empty() {
        // The neighbor's table is the last one rendered before any route.
        text.push_str(extra);
        text.push('\n');
    }
    let words = exabgp_words(flow);
    let (rule, actions) = words
        .trim_start_matches("{ match {")
        .trim_end_matches("} }")
        .split_once("} then {")
        .expect("rendered rule");
    text + &format!(
        "\n[[flow]]\nmatch = \"{}\"\nthen = \"{}\"\n\n[[flow-file]]\npath = \"ddos.flows\"\n",
        rule.trim(),
        actions.trim()
    )
}

/// The routes `show adj-rib-out --json` lists as flow routes, as (family, rule words,
/// actions).
fn adj_rib_out_flows(speaker: &WasmBgp) -> Result<Vec<(String, String, Vec<String>)>> {
    let json: Value = serde_json::from_str(&speaker.ctl(&["show", "adj-rib-out", "--json"])?)
        .context("show adj-rib-out --json")?;
    let rows = json.as_array().context("adj-rib-out JSON is not a list")?;
    Ok(rows
        .iter()
        .filter(|r| {
            r["family"]
                .as_str()
                .is_some_and(|f| f.ends_with("flowspec"))
        })
        .map(|r| {
            let actions = r["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            (
                r["family"].as_str().unwrap_or_default().to_owned(),
                r["prefix"].as_str().unwrap_or_default().to_owned(),
                actions,
            )
        })
        .collect())
}

/// Runs the exchange with the peer `make` builds, whose flow routes `read` returns.
fn run<P: Peer>(
    test: &str,
    block: LimitBlock,
    make: impl FnOnce(PeerSpec) -> P,
    read: fn(&P) -> Result<Vec<FlowRoute>>,
) {
    run_in_workdir(test, |work| {
        let mut peer = make(peer_spec(work.path(), block)?);
        let kind = peer.kind();
        let configured = vec![rich_rule(FlowFamily::Ipv4), file_rule()];
        let extra = match kind {
            "gobgp" => "max-advertise = { ipv4-flowspec = 3 }",
            _ => "",
        };
        let dir = work.path().join("wasmbgp");
        std::fs::create_dir_all(&dir)?;
        let text = wasmbgp_config(&dir, block, extra, &configured[0]);
        std::fs::write(
            dir.join("ddos.flows"),
            format!(
                "# one rule per line, flat words\n{}\n",
                flat_words(&configured[1])
            ),
        )?;
        peer.start()?;
        let speaker = WasmBgp::start_text(&dir, &text, &[], &Launch::default())?;
        let result = exchange(test, &peer, || read(&peer), &speaker, &configured);
        result.map_err(|error| {
            let peer_log = peer.log().unwrap_or_else(|e| format!("(no log: {e:#})"));
            error.context(format!(
                "\n--- {kind} log tail ---\n{}\n--- wasmbgp log tail ---\n{}",
                tail(&peer_log, 30),
                tail(&speaker.log().unwrap_or_default(), 30)
            ))
        })
    });
}

fn exchange(
    test: &str,
    peer: &dyn Peer,
    read: impl Fn() -> Result<Vec<FlowRoute>>,
    speaker: &WasmBgp,
    configured: &[FlowRoute],
) -> Result<()> {
    let kind = peer.kind();
    peer.wait_established(DEFAULT_TIMEOUT)?;
    let seen = |routes: &[FlowRoute]| -> Vec<FlowRoute> {
        routes.iter().map(|r| r.as_seen_by(kind)).collect()
    };
    step(
        test,
        format!("{kind} Established; waiting for the [[flow]] rule"),
    );
    wait_flow_routes(
        &format!("the configured rules at {kind}"),
        DEFAULT_TIMEOUT,
        &read,
        &seen(configured),
    )?;

    let announced = vec![
        ddos_rule(FlowFamily::Ipv4),
        rate_limit_rule(FlowFamily::Ipv4),
        ddos_rule(FlowFamily::Ipv6),
        rate_limit_rule(FlowFamily::Ipv6),
        rich_rule(FlowFamily::Ipv6),
    ];
    for rule in &announced[..announced.len() - 1] {
        let line = format!("announce flow route {}", exabgp_words(rule));
        speaker
            .ctl_line(&line)
            .with_context(|| format!("ctl {line}"))?;
    }
    let batch = format!("announce flow route {}", exabgp_words(&announced[4]));
    let answers = speaker.ctl_batch(&[batch.as_str()])?;
    ensure!(answers == ["ok"], "ctl - answered {answers:?}");
    let mut all = announced.clone();
    all.extend(configured.iter().cloned());
    wait_flow_routes(
        &format!("the {} rules at {kind}", all.len()),
        DEFAULT_TIMEOUT,
        &read,
        &seen(&all),
    )?;
    for route in read()? {
        step(test, format!("{kind} holds {route}"));
    }

    // What wasmbgp says it sends, readably and in JSON.
    let rows = adj_rib_out_flows(speaker)?;
    ensure!(rows.len() == all.len(), "adj-rib-out flows: {rows:?}");
    let ddos4 = rows
        .iter()
        .find(|(family, rule, _)| {
            family == "ipv4-flowspec" && rule.starts_with("source 10.0.0.0/24")
        })
        .context("the DDoS rule is not in show adj-rib-out --json")?;
    ensure!(
        ddos4.1 == "source 10.0.0.0/24 protocol =tcp destination-port =80"
            && ddos4.2 == ["redirect 65001:999"],
        "{ddos4:?}"
    );
    let text = speaker.ctl(&["show", "adj-rib-out"])?;
    ensure!(
        text.contains(
            "flow route source 10.0.0.0/24 protocol =tcp destination-port =80 then redirect 65001:999"
        ),
        "show adj-rib-out:\n{text}"
    );

    if kind == "gobgp" {
        // max-advertise: three IPv4 rules are held, a fourth is refused; IPv6 is apart.
        let extra = FlowRoute::new(FlowFamily::Ipv4)
            .matching(Component::Destination, "198.51.100.99/32")
            .then("discard");
        let line = format!("announce flow route {}", exabgp_words(&extra));
        let refused = speaker.ctl_line(&line);
        let error = format!(
            "{:#}",
            refused.expect_err("a fourth IPv4 rule must be refused")
        );
        ensure!(
            error.contains("ipv4-flowspec cap is reached"),
            "refusal: {error}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        ensure!(
            read()?.len() == all.len(),
            "the refused rule reached GoBGP: {:?}",
            read()?
        );
        step(test, "a fourth IPv4 rule is refused by max-advertise (3)");
        // Counted in their own families: 3 IPv4 rules, 4 IPv6 rules sent.
        let metrics = speaker.ctl(&["show", "metrics"])?;
        for (family, sent) in [("ipv4-flowspec", 3), ("ipv6-flowspec", 4)] {
            let line = metrics
                .lines()
                .find(|l| {
                    l.starts_with("wasmbgp_routes_announced_total")
                        && l.contains(&format!("family=\"{family}\""))
                })
                .with_context(|| format!("no {family} announcements in the metrics:\n{metrics}"))?;
            ensure!(line.ends_with(&format!(" {sent}")), "{line}");
        }
    }

    for rule in &announced {
        // The rule identifies the route: actions are not needed to withdraw it.
        let words = exabgp_words(&rule.rule());
        let line = format!("withdraw flow route {words}");
        speaker
            .ctl_line(&line)
            .with_context(|| format!("ctl {line}"))?;
    }
    wait_flow_routes(
        &format!("{kind} to keep only the configured rules"),
        DEFAULT_TIMEOUT,
        &read,
        &seen(configured),
    )?;
    ensure!(
        speaker.is_established(&peer.spec().address.to_string())?,
        "the session went down"
    );
    step(
        test,
        format!("{kind}: every rule arrived as sent and went when withdrawn"),
    );
    Ok(())
}

#[test]
fn flowspec_to_gobgp() {
    run(
        "flowspec_to_gobgp",
        LimitBlock(274),
        |spec| GoBgp::new(spec).with_flowspec(),
        GoBgp::flow_routes,
    );
}

#[test]
fn flowspec_to_bird() {
    run(
        "flowspec_to_bird",
        LimitBlock(275),
        |spec| Bird::new(spec).with_flowspec(),
        Bird::flow_routes,
    );
}

#[test]
fn flowspec_to_frr() {
    run(
        "flowspec_to_frr",
        LimitBlock(276),
        |spec| Frr::new(spec).with_flowspec(),
        Frr::flow_routes,
    );
}

#[test]
fn flowspec_to_exabgp() {
    run(
        "flowspec_to_exabgp",
        LimitBlock(277),
        |spec| ExaBgp::new(spec).with_flowspec(),
        ExaBgp::flow_routes,
    );
}
