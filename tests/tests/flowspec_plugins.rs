//! FlowSpec routes go through import policy plugins and reach exporter plugins like
//! any route (issue 12).
//!
//! GoBGP (AS 65282) originates three rules of [`wasmbgp_e2e::flowspec_support`]: the
//! IPv4 DDoS rule (no destination; redirect to 65001:999), the IPv4 rate-limit rule
//! (destination 192.0.2.0/24) and the IPv6 rate-limit rule (destination
//! 2001:db8:2::/64), and one unicast route. wasmbgp's import policy is the
//! `fixture-policy` with `reject-flows-to = "192.0.2.0/24"` (rejects the IPv4
//! rate-limit rule) and `flow-mark = 10` (adds the action `mark 10` to the other
//! rules). Two `fixture-exporter`s record what wasmbgp receives, one before import
//! policy (`received-routes = "pre-policy"`), one after it.
//!
//! - `show adj-rib-in NEIGHBOR --json` lists the two accepted rules, each with
//!   `mark 10` beside its own action, and not the rejected one; the unicast route is
//!   there as before.
//! - The pre-policy exporter saw the three rules as GoBGP sent them
//!   (`received-pre-policy`); the post-policy one saw the two accepted rules as
//!   rewritten (`received`) and the rejected one only as withdrawn (a route the
//!   import policy rejects is reported withdrawn, `exporter.wit`).
//! - GoBGP withdraws the three rules: adj-rib-in keeps the unicast route only, and
//!   both exporters saw the three withdrawals (withdrawals pass on as received, the
//!   rejected rule's included, as for unicast routes).
//!
//! Block 282 ([`LimitBlock`]: `127.1.26.x`, ports 12820-12829): wasmbgp on `.1`
//! listening on port 0, GoBGP on `.2` port 1 (its API on port 2).

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use wasmbgp_e2e::exporter_support::{ExporterPlugin, kind, read_records};
use wasmbgp_e2e::flowspec_support::{
    FlowFamily, FlowRoute, ddos_rule, parse_wasmbgp_flow, parse_wasmbgp_routes, rate_limit_rule,
    wait_flow_routes,
};
use wasmbgp_e2e::limits_support::LimitBlock;
use wasmbgp_e2e::peers::gobgp::GoBgp;
use wasmbgp_e2e::peers::{Peer, PeerSpec, Remote};
use wasmbgp_e2e::policy_support::{PolicyPlugin, tail};
use wasmbgp_e2e::route::Route;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wait::{DEFAULT_TIMEOUT, wait_for};
use wasmbgp_e2e::wasmbgp::{Config, Launch, NeighborConfig, WasmBgp};
use wasmbgp_e2e::workdir::run_in_workdir;

/// wasmbgp's AS.
const WASMBGP_AS: u32 = 65001;
/// GoBGP's AS (block 282).
const GOBGP_AS: u32 = 65282;
/// The unicast route GoBGP also sends.
const UNICAST: &str = "100.64.0.0/24";

/// GoBGP's spec: `.2` port 1 (API port 2), toward wasmbgp on `.1` port 0, originating
/// [`UNICAST`].
fn peer_spec(dir: &Path, block: LimitBlock) -> PeerSpec {
    PeerSpec {
        dir: dir.to_path_buf(),
        address: block.addr(2),
        port: block.port(1),
        asn: GOBGP_AS,
        remote: Remote {
            address: block.addr(1),
            port: block.port(0),
            asn: WASMBGP_AS,
        },
        hold_time: 30,
        next_hop4: Ipv4Addr::new(192, 0, 2, 1),
        next_hop6: "2001:db8::1".parse().expect("an IPv6 address"),
        originate: vec![Route::new(UNICAST).expect("a prefix")],
        api_port: block.port(2),
    }
}

/// wasmbgp's config: the neighbor with every family and the import policy, the policy
/// and the two recorders.
fn config_text(dir: &Path, block: LimitBlock, pre: &Path, post: &Path) -> Result<String> {
    let local = block.addr(1).to_string();
    let config = Config {
        router_id: local.clone(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(30),
            families: [
                "ipv4-unicast",
                "ipv6-unicast",
                "ipv4-flowspec",
                "ipv6-flowspec",
            ]
            .map(str::to_owned)
            .to_vec(),
            import_policy: vec!["flows".to_owned()],
            ..NeighborConfig::new(block.addr(2), block.port(1), GOBGP_AS, &local)
        }],
        routes: Vec::new(),
        route_files: Vec::new(),
    };
    let policy = PolicyPlugin::new("flows", "fixture-policy")?
        .setting("mode", "accept")
        .setting("reject-flows-to", "192.0.2.0/24")
        .setting("flow-mark", "10");
    let mut pre_recorder = ExporterPlugin::fixture("pre", pre)?;
    pre_recorder.received_routes = Some("pre-policy".to_owned());
    let post_recorder = ExporterPlugin::fixture("post", post)?;
    Ok(config.render(&WasmBgp::socket_in(dir))
        + &policy.render()
        + &pre_recorder.render()
        + &post_recorder.render())
}

/// The flow records of a recorder's file from `neighbor`, as (type, direction, rule
/// with the actions the record lists), in order.
fn flow_records(path: &Path, neighbor: Ipv4Addr) -> Result<Vec<(String, String, FlowRoute)>> {
    let mut out = Vec::new();
    for record in read_records(path)? {
        let kind = kind(&record);
        if !matches!(kind, "announce-flow" | "withdraw-flow")
            || record["neighbor"].as_str() != Some(&neighbor.to_string())
        {
            continue;
        }
        let family = match record["family"].as_str() {
            Some("ipv4-flowspec") => FlowFamily::Ipv4,
            Some("ipv6-flowspec") => FlowFamily::Ipv6,
            other => anyhow::bail!("a record of family {other:?}: {record}"),
        };
        let rule = record["rule"].as_str().context("a record without rule")?;
        let mut route = parse_wasmbgp_flow(family, rule)
            .with_context(|| format!("the recorder's rule {rule:?}"))?;
        for action in record["actions"].as_array().into_iter().flatten() {
            let action = action.as_str().context("an action that is not text")?;
            route = route
                .try_then(action)
                .with_context(|| format!("the recorder's action {action:?}"))?;
        }
        let direction = record["direction"].as_str().unwrap_or_default();
        out.push((kind.to_owned(), direction.to_owned(), route));
    }
    Ok(out)
}

/// Waits until the recorder's file at `path` holds exactly `expected` flow records
/// (sorted: the order of rules within an update is wasmbgp's).
fn wait_records(
    what: &str,
    path: &Path,
    neighbor: Ipv4Addr,
    expected: &[(&str, &str, FlowRoute)],
) -> Result<()> {
    let mut want: Vec<(String, String, FlowRoute)> = expected
        .iter()
        .map(|(k, d, r)| ((*k).to_owned(), (*d).to_owned(), r.clone()))
        .collect();
    want.sort();
    wait_for(what, DEFAULT_TIMEOUT, || {
        let mut got = flow_records(path, neighbor)?;
        got.sort();
        ensure!(got == want, "got {got:#?}\nwant {want:#?}");
        Ok(Some(()))
    })
}

/// `show adj-rib-in NEIGHBOR --json`.
fn rib_json(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<Value> {
    let out = wasmbgp.ctl(&["show", "adj-rib-in", &neighbor.to_string(), "--json"])?;
    serde_json::from_str(&out).with_context(|| format!("show adj-rib-in --json printed {out}"))
}

/// The unicast prefixes of `show adj-rib-in NEIGHBOR --json`.
fn unicast_prefixes(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<Vec<String>> {
    let json = rib_json(wasmbgp, neighbor)?;
    Ok(json
        .as_array()
        .context("show adj-rib-in --json is not an array")?
        .iter()
        .filter(|r| r["family"] == "ipv4-unicast")
        .filter_map(|r| r["prefix"].as_str().map(str::to_owned))
        .collect())
}

/// `result`, with the tails of wasmbgp's and GoBGP's logs after its error.
fn with_logs(result: Result<()>, wasmbgp: &WasmBgp, gobgp: &GoBgp) -> Result<()> {
    result.map_err(|error| {
        let wasmbgp_log = wasmbgp.log().unwrap_or_else(|e| format!("(no log: {e:#})"));
        let gobgp_log = gobgp.log().unwrap_or_else(|e| format!("(no log: {e:#})"));
        error.context(format!(
            "\n--- wasmbgp log tail ---\n{}\n--- gobgp log tail ---\n{}",
            tail(&wasmbgp_log, 40),
            tail(&gobgp_log, 20)
        ))
    })
}

#[test]
fn flow_routes_go_through_import_policy_and_reach_exporters() {
    let test = "flowspec_plugins";
    run_in_workdir(test, |work| {
        let block = LimitBlock(282);
        let neighbor = block.addr(2);
        let dir = work.subdir("wasmbgp")?;
        let pre = dir.join("pre-policy.jsonl");
        let post = dir.join("post-policy.jsonl");
        let text = config_text(&dir, block, &pre, &post)?;
        let mut wasmbgp = WasmBgp::start_text(&dir, &text, &[], &Launch::default())?;
        let mut gobgp = GoBgp::new(peer_spec(&work.subdir("gobgp")?, block)).with_flowspec();
        gobgp.start()?;
        let result = (|| {
            gobgp.wait_established(DEFAULT_TIMEOUT)?;
            wait_for("wasmbgp's session", DEFAULT_TIMEOUT, || {
                Ok(wasmbgp.is_established(&neighbor.to_string())?.then_some(()))
            })?;
            let ddos = ddos_rule(FlowFamily::Ipv4);
            let rejected = rate_limit_rule(FlowFamily::Ipv4);
            let limit6 = rate_limit_rule(FlowFamily::Ipv6);
            for rule in [&ddos, &rejected, &limit6] {
                gobgp.add_flow_route(rule)?;
            }
            step(
                test,
                format!("GoBGP originates {ddos}, {rejected}, {limit6}"),
            );

            let accepted = [ddos.clone().then("mark 10"), limit6.clone().then("mark 10")];
            wait_flow_routes(
                "adj-rib-in to hold the accepted rules, marked",
                DEFAULT_TIMEOUT,
                || parse_wasmbgp_routes(&rib_json(&wasmbgp, neighbor)?, &neighbor.to_string()),
                &accepted,
            )?;
            ensure!(
                unicast_prefixes(&wasmbgp, neighbor)? == [UNICAST],
                "the unicast route is not in adj-rib-in alone: {:?}",
                unicast_prefixes(&wasmbgp, neighbor)?
            );
            step(
                test,
                "adj-rib-in: the two accepted rules with mark 10, not the rejected one",
            );

            let announced_pre = [
                ("announce-flow", "received-pre-policy", ddos.clone()),
                ("announce-flow", "received-pre-policy", rejected.clone()),
                ("announce-flow", "received-pre-policy", limit6.clone()),
            ];
            wait_records(
                "the pre-policy exporter to see the three rules as sent",
                &pre,
                neighbor,
                &announced_pre,
            )?;
            // A route the import policy rejects is reported withdrawn (events.wit).
            let announced_post = [
                ("announce-flow", "received", accepted[0].clone()),
                ("withdraw-flow", "received", rejected.rule()),
                ("announce-flow", "received", accepted[1].clone()),
            ];
            wait_records(
                "the post-policy exporter to see the accepted rules, marked, and the rejected one withdrawn",
                &post,
                neighbor,
                &announced_post,
            )?;
            step(
                test,
                "exporters: three rules before policy, the two accepted ones after it",
            );

            for rule in [&ddos, &rejected, &limit6] {
                gobgp.del_flow_route(rule)?;
            }
            step(test, "GoBGP withdraws the three rules");
            wait_flow_routes(
                "adj-rib-in to hold no rule",
                DEFAULT_TIMEOUT,
                || parse_wasmbgp_routes(&rib_json(&wasmbgp, neighbor)?, &neighbor.to_string()),
                &[],
            )?;
            let mut withdrawn_pre = announced_pre.to_vec();
            withdrawn_pre.extend(
                [&ddos, &rejected, &limit6]
                    .map(|r| ("withdraw-flow", "received-pre-policy", r.rule())),
            );
            wait_records(
                "the pre-policy exporter to see the three withdrawals",
                &pre,
                neighbor,
                &withdrawn_pre,
            )?;
            let mut withdrawn_post = announced_post.to_vec();
            // GoBGP's withdrawals pass on as they come, the rejected rule's too.
            withdrawn_post.extend(
                [&ddos, &rejected, &limit6].map(|r| ("withdraw-flow", "received", r.rule())),
            );
            wait_records(
                "the post-policy exporter to see the three withdrawals",
                &post,
                neighbor,
                &withdrawn_post,
            )?;
            ensure!(
                unicast_prefixes(&wasmbgp, neighbor)? == [UNICAST],
                "the unicast route left adj-rib-in"
            );
            let unicast_post = read_records(&post)?
                .iter()
                .filter(|r| kind(r) == "announce" && r["prefix"] == UNICAST)
                .count();
            ensure!(
                unicast_post == 1,
                "the post-policy exporter saw {UNICAST} {unicast_post} times"
            );
            step(
                test,
                "withdrawals: adj-rib-in and both exporters follow; the unicast route stays",
            );
            gobgp.stop()?;
            let status = wasmbgp.terminate()?;
            ensure!(status.success(), "wasmbgp exited with {status}");
            Ok(())
        })();
        with_logs(result, &wasmbgp, &gobgp)
    });
}
