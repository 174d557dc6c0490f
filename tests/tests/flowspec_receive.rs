//! wasmbgp receives FlowSpec (RFC 8955/8956, SAFI 133) routes (issue 12, item 3): flow
//! routes sent by GoBGP and by BIRD are received, decoded and shown in `show
//! adj-rib-in`; an UPDATE carrying a malformed rule (components out of order, a bad
//! component length) is treated as withdraw, with the session kept.
//!
//! - `gobgp_flow_routes_reach_adj_rib_in`: GoBGP originates the test rules of
//!   [`wasmbgp_e2e::flowspec_support`] ([`ddos_rule`], [`rate_limit_rule`],
//!   [`rich_rule`], IPv4 and IPv6; none is one GoBGP cannot send, the test checks
//!   [`FlowRoute::unsupported_by`]). `ctl show adj-rib-in NEIGHBOR --json` must list
//!   each with the same components and actions (read back into [`FlowRoute`] by
//!   [`parse_wasmbgp_routes`]), the text form must show each as `flow route RULE then
//!   ACTIONS`, and GoBGP's withdrawals (one rule, then the others) must empty it.
//! - `bird_flow_routes_reach_adj_rib_in`: the same with BIRD as the originator (static
//!   flow routes changed by `birdc configure`), adding what GoBGP cannot originate: an
//!   IPv6 rule with offsets (RFC 8956), a numeric `!=`, and the actions
//!   rate-limit-packets, redirect-to-nexthop (and copy), redirect to a 4-octet AS,
//!   `action none`, a non-integer rate and a route target beside the actions.
//! - `malformed_flow_rule_is_treat_as_withdraw`: a recorder
//!   ([`wasmbgp_e2e::peers::recorder`]) is wasmbgp's neighbor and sends UPDATEs built
//!   with wasmbgp's encoder (`FlowSpec::new`, `Message::to_bytes`), only the malformed
//!   rules put together by hand. Two good rules in two UPDATEs are shown; then one of
//!   them is sent again beside a rule whose components are out of order, beside an IPv4
//!   destination of length 33, beside an operator whose value runs past the rule: each
//!   time that UPDATE is treat-as-withdraw (its good rule leaves adj-rib-in, the other
//!   UPDATE's rule stays, the log says why, `wasmbgp_treat_as_withdraw_total`
//!   counts it), wasmbgp sends no NOTIFICATION and the session stays Established (one
//!   OPEN, one Established, watched for a while at the end), and the good rule sent
//!   again is accepted each time. Last, the contrast: a rule length that overruns the
//!   MP_REACH_NLRI cannot be walked past, and that one resets the session with a
//!   NOTIFICATION (UPDATE Message Error).
//!
//! Blocks ([`LimitBlock`]: block `N` is `127.(N / 256).(N % 256).x`, ports
//! `10000 + 10 N + k`): 278 GoBGP, 279 BIRD, 280 the recorder. wasmbgp (AS 65001) is on
//! `.1`, listening on port 0 and connecting to its neighbor on `.2` port 1 (GoBGP's API
//! on port 2). Every wait is bounded, every `gobgp`, `birdc` and `ctl` must exit 0, and
//! the daemons are stopped on drop (stopped explicitly at the end of a passing test,
//! wasmbgp's exit status checked).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use wasmbgp_bgp::packet::notification::code;
use wasmbgp_bgp::packet::{Message, MpNlri, MpReach, Update};
use wasmbgp_bgp::{AsPath, Family, Origin, PathAttributes};
use wasmbgp_e2e::flowspec_support::{
    Component, FlowFamily, FlowRoute, bird_only_rules, ddos_rule, parse_wasmbgp_routes,
    rate_limit_rule, rich_rule, wait_flow_routes,
};
use wasmbgp_e2e::limits_support::LimitBlock;
use wasmbgp_e2e::peers::bird::Bird;
use wasmbgp_e2e::peers::gobgp::GoBgp;
use wasmbgp_e2e::peers::recorder::Recorder;
use wasmbgp_e2e::peers::{Peer, PeerSpec, Remote};
use wasmbgp_e2e::plugin_support::log_records;
use wasmbgp_e2e::policy_support::{metric_value, tail};
use wasmbgp_e2e::step;
use wasmbgp_e2e::wait::{DEFAULT_TIMEOUT, wait_until};
use wasmbgp_e2e::wasmbgp::{Config, NeighborConfig, WasmBgp};
use wasmbgp_e2e::workdir::run_in_workdir;

/// wasmbgp's AS.
const WASMBGP_AS: u32 = 65001;
/// GoBGP's AS (block 278).
const GOBGP_AS: u32 = 65278;
/// BIRD's AS (block 279).
const BIRD_AS: u32 = 65279;
/// The recorder's AS (block 280).
const RECORDER_AS: u32 = 65280;
/// The families of every wasmbgp neighbor here.
const FAMILIES: [&str; 4] = [
    "ipv4-unicast",
    "ipv6-unicast",
    "ipv4-flowspec",
    "ipv6-flowspec",
];
/// What wasmbgp logs for an UPDATE treated as withdraw (`tasks/neighbor/mod.rs`), followed
/// by `reason=...`.
const TREAT_AS_WITHDRAW_LOG: &str = "malformed UPDATE treated as withdraw (RFC 7606)";
/// The counter of those UPDATEs, per neighbor.
const TREAT_AS_WITHDRAW_METRIC: &str = "wasmbgp_treat_as_withdraw_total";
/// How long the session must stay up after the last malformed UPDATE.
const WATCH: Duration = Duration::from_secs(3);

/// Starts wasmbgp in `dir`: AS [`WASMBGP_AS`] on `.1` (listening on port 0), one
/// neighbor on `.2` port 1 of AS `peer_as` negotiating [`FAMILIES`].
fn start_wasmbgp(dir: &Path, block: LimitBlock, peer_as: u32) -> Result<WasmBgp> {
    let local = block.addr(1).to_string();
    let config = Config {
        router_id: local.clone(),
        local_as: WASMBGP_AS,
        listen: Some(format!("{local}:{}", block.port(0))),
        neighbors: vec![NeighborConfig {
            hold_time: Some(30),
            families: FAMILIES.iter().map(|f| f.to_string()).collect(),
            ..NeighborConfig::new(block.addr(2), block.port(1), peer_as, &local)
        }],
        routes: Vec::new(),
        route_files: Vec::new(),
    };
    WasmBgp::start(dir, &config)
}

/// The spec of wasmbgp's neighbor in `block` (GoBGP or BIRD): `.2` port 1 (API port 2),
/// AS `asn`, toward wasmbgp on `.1` port 0; it originates no unicast route.
fn peer_spec(dir: &Path, block: LimitBlock, asn: u32) -> PeerSpec {
    PeerSpec {
        dir: dir.to_path_buf(),
        address: block.addr(2),
        port: block.port(1),
        asn,
        remote: Remote {
            address: block.addr(1),
            port: block.port(0),
            asn: WASMBGP_AS,
        },
        hold_time: 30,
        next_hop4: Ipv4Addr::new(192, 0, 2, 1),
        next_hop6: "2001:db8::1".parse().expect("an IPv6 address"),
        originate: Vec::new(),
        api_port: block.port(2),
    }
}

/// The flow routes wasmbgp holds from `neighbor`: `ctl show adj-rib-in NEIGHBOR --json`
/// read back into the normalized form.
fn adj_rib_in(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<Vec<FlowRoute>> {
    parse_wasmbgp_routes(&rib_json(wasmbgp, neighbor)?, &neighbor.to_string())
}

/// `ctl show adj-rib-in NEIGHBOR --json`.
fn rib_json(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<Value> {
    let out = wasmbgp.ctl(&["show", "adj-rib-in", &neighbor.to_string(), "--json"])?;
    serde_json::from_str(&out).with_context(|| format!("show adj-rib-in --json printed {out}"))
}

/// Waits until wasmbgp's adj-rib-in from `neighbor` holds exactly `expected`.
fn wait_adj_rib_in(
    what: &str,
    wasmbgp: &WasmBgp,
    neighbor: Ipv4Addr,
    expected: &[FlowRoute],
) -> Result<()> {
    wait_flow_routes(
        &format!("wasmbgp's adj-rib-in to hold {what}"),
        DEFAULT_TIMEOUT,
        || adj_rib_in(wasmbgp, neighbor),
        expected,
    )
}

/// The JSON and text forms of `show adj-rib-in NEIGHBOR` agree on the `count` flow
/// routes: each JSON row (family `ipv4-flowspec`/`ipv6-flowspec`, AS path `[peer_as]`)
/// has its text line `neighbor N flow route RULE then ACTIONS ...`. Returns those lines.
fn check_text(
    wasmbgp: &WasmBgp,
    neighbor: Ipv4Addr,
    peer_as: u32,
    count: usize,
) -> Result<Vec<String>> {
    let json = rib_json(wasmbgp, neighbor)?;
    let text = wasmbgp.ctl(&["show", "adj-rib-in", &neighbor.to_string()])?;
    let rows = json
        .as_array()
        .context("show adj-rib-in --json is not an array")?;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" flow route "))
        .collect();
    ensure!(
        rows.len() == count && lines.len() == count,
        "{count} flow routes expected; the JSON has {} rows, the text {} flow lines:\n{text}",
        rows.len(),
        lines.len()
    );
    for row in rows {
        let family = row["family"].as_str().unwrap_or_default();
        ensure!(
            family.ends_with("-flowspec"),
            "a row of family {family:?}: {row}"
        );
        ensure!(
            row["as-path"] == serde_json::json!([peer_as]),
            "a flow route whose AS path is not [{peer_as}]: {row}"
        );
        let prefix = row["prefix"].as_str().context("a row without prefix")?;
        let actions: Vec<&str> = row["actions"]
            .as_array()
            .context("a flow row without actions")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let start = format!(
            "neighbor {neighbor} flow route {prefix} then {} ",
            actions.join(" ")
        );
        ensure!(
            lines.iter().any(|l| l.trim_start().starts_with(&start)),
            "no line starting {start:?} in show adj-rib-in:\n{text}"
        );
    }
    Ok(lines.iter().map(|l| l.trim().to_owned()).collect())
}

/// wasmbgp's state of `neighbor` and its Established count.
fn session(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<(String, u64)> {
    let n = wasmbgp.neighbor(&neighbor.to_string())?;
    Ok((n.state, n.established_count))
}

/// Waits until wasmbgp has `neighbor` Established with both flowspec families
/// negotiated.
fn wait_flowspec_session(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<()> {
    wait_until(
        &format!("wasmbgp's session with {neighbor} to be Established"),
        DEFAULT_TIMEOUT,
        || wasmbgp.is_established(&neighbor.to_string()),
    )?;
    let n = wasmbgp.neighbor(&neighbor.to_string())?;
    let families: Vec<&str> = n.raw["families"]
        .as_array()
        .context("show neighbors --json without families")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        families.contains(&"ipv4-flowspec") && families.contains(&"ipv6-flowspec"),
        "the flowspec families are not negotiated with {neighbor}: {families:?}"
    );
    Ok(())
}

/// SIGTERM to wasmbgp, which must exit 0.
fn stop_wasmbgp(wasmbgp: &mut WasmBgp) -> Result<()> {
    let status = wasmbgp.terminate()?;
    ensure!(
        status.success(),
        "wasmbgp exited with {status} after SIGTERM"
    );
    Ok(())
}

/// `result`, with the tails of wasmbgp's and the peers' logs after its error.
fn with_logs(result: Result<()>, wasmbgp: &WasmBgp, peers: &[&dyn Peer]) -> Result<()> {
    result.map_err(|error| {
        let mut logs = format!(
            "\n--- wasmbgp log tail ---\n{}",
            tail(
                &wasmbgp.log().unwrap_or_else(|e| format!("(no log: {e:#})")),
                40
            )
        );
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

/// The rules of `flowspec_support` in both families.
fn test_rules() -> Vec<FlowRoute> {
    FlowFamily::ALL
        .iter()
        .flat_map(|f| [ddos_rule(*f), rate_limit_rule(*f), rich_rule(*f)])
        .collect()
}

#[test]
fn gobgp_flow_routes_reach_adj_rib_in() {
    let test = "flowspec_receive_gobgp";
    run_in_workdir(test, |work| {
        let block = LimitBlock(278);
        let neighbor = block.addr(2);
        let mut wasmbgp = start_wasmbgp(&work.subdir("wasmbgp")?, block, GOBGP_AS)?;
        let mut gobgp =
            GoBgp::new(peer_spec(&work.subdir("gobgp")?, block, GOBGP_AS)).with_flowspec();
        gobgp.start()?;
        let result = (|| {
            gobgp.wait_established(DEFAULT_TIMEOUT)?;
            wait_flowspec_session(&wasmbgp, neighbor)?;
            let mut rules = Vec::new();
            for rule in test_rules() {
                match rule.unsupported_by("gobgp") {
                    Some(why) => step(test, format!("GoBGP skips {rule}: {why}")),
                    None => rules.push(rule),
                }
            }
            ensure!(rules.len() == 6, "GoBGP should send all six test rules");
            for rule in &rules {
                gobgp.add_flow_route(rule)?;
            }
            step(test, format!("GoBGP originates {} rules", rules.len()));
            wait_adj_rib_in("GoBGP's rules", &wasmbgp, neighbor, &rules)?;
            for line in check_text(&wasmbgp, neighbor, GOBGP_AS, rules.len())? {
                step(test, format!("show adj-rib-in: {line}"));
            }
            step(test, format!("GoBGP withdraws {}", rules[0]));
            gobgp.del_flow_route(&rules[0])?;
            wait_adj_rib_in(
                "all but the withdrawn rule",
                &wasmbgp,
                neighbor,
                &rules[1..],
            )?;
            for rule in &rules[1..] {
                gobgp.del_flow_route(rule)?;
            }
            wait_adj_rib_in("no rule", &wasmbgp, neighbor, &[])?;
            check_text(&wasmbgp, neighbor, GOBGP_AS, 0)?;
            let (state, count) = session(&wasmbgp, neighbor)?;
            ensure!(
                state == "established" && count == 1,
                "the session flapped: {state}, Established {count} times"
            );
            step(
                test,
                "every rule received, shown and withdrawn; one session",
            );
            gobgp.stop()?;
            ensure!(
                gobgp.flow_routes().is_err(),
                "a stopped GoBGP's reader answers"
            );
            stop_wasmbgp(&mut wasmbgp)
        })();
        with_logs(result, &wasmbgp, &[&gobgp])
    });
}

/// What BIRD originates beyond [`test_rules`]: an IPv6 rule with offsets (RFC 8956,
/// which GoBGP 3.10 mis-encodes) and rules with what GoBGP's CLI cannot say (a numeric
/// `!=`, rate-limit-packets, redirect-to-nexthop, `action none`, a non-integer rate, a
/// route target beside the actions) or GoBGP truncates (a redirect to a 4-octet AS).
fn bird_rules() -> Vec<FlowRoute> {
    let mut rules = vec![
        FlowRoute::new(FlowFamily::Ipv6)
            .matching(Component::Destination, "2001:db8:3::/64 offset 8")
            .matching(Component::Source, "2001:db8:4:5::/64 offset 32")
            .matching(Component::Protocol, "=6")
            .matching(Component::DestinationPort, "=443")
            .then("discard"),
    ];
    rules.extend(bird_only_rules());
    rules
}

#[test]
fn bird_flow_routes_reach_adj_rib_in() {
    let test = "flowspec_receive_bird";
    run_in_workdir(test, |work| {
        let block = LimitBlock(279);
        let neighbor = block.addr(2);
        let mut rules = test_rules();
        rules.extend(bird_rules());
        let mut wasmbgp = start_wasmbgp(&work.subdir("wasmbgp")?, block, BIRD_AS)?;
        let spec = peer_spec(&work.subdir("bird")?, block, BIRD_AS);
        let mut bird = Bird::new(spec).with_flow_routes(&rules[..1])?;
        bird.start()?;
        let result = (|| {
            ensure!(
                rules.iter().any(FlowRoute::has_offset)
                    && rules.iter().any(|r| r.gobgp_args().is_err()),
                "the rules should hold an IPv6 offset and what GoBGP's CLI cannot say"
            );
            bird.wait_established(DEFAULT_TIMEOUT)?;
            wait_flowspec_session(&wasmbgp, neighbor)?;
            wait_adj_rib_in(
                "the rule of BIRD's first config",
                &wasmbgp,
                neighbor,
                &rules[..1],
            )?;
            step(
                test,
                format!("BIRD reconfigured to originate {} rules", rules.len()),
            );
            bird.set_flow_routes(&rules)?;
            wait_adj_rib_in("all of BIRD's rules", &wasmbgp, neighbor, &rules)?;
            for line in check_text(&wasmbgp, neighbor, BIRD_AS, rules.len())? {
                step(test, format!("show adj-rib-in: {line}"));
            }
            step(test, "BIRD stops originating the first two rules");
            bird.set_flow_routes(&rules[2..])?;
            wait_adj_rib_in(
                "all but the two withdrawn rules",
                &wasmbgp,
                neighbor,
                &rules[2..],
            )?;
            bird.set_flow_routes(&[])?;
            wait_adj_rib_in("no rule", &wasmbgp, neighbor, &[])?;
            let (state, count) = session(&wasmbgp, neighbor)?;
            ensure!(
                state == "established" && count == 1,
                "the session flapped: {state}, Established {count} times"
            );
            step(
                test,
                "every rule received, shown and withdrawn; one session",
            );
            bird.stop()?;
            ensure!(
                bird.flow_routes().is_err(),
                "a stopped BIRD's reader answers"
            );
            stop_wasmbgp(&mut wasmbgp)
        })();
        with_logs(result, &wasmbgp, &[&bird])
    });
}

// ---------------------------------------------------------------------------
// Crafted UPDATEs.

/// The MP family of `route`.
fn family_of(route: &FlowRoute) -> Family {
    match route.family {
        FlowFamily::Ipv4 => Family::IPV4_FLOWSPEC,
        FlowFamily::Ipv6 => Family::IPV6_FLOWSPEC,
    }
}

/// An UPDATE from the recorder announcing `route` (ORIGIN IGP, AS_PATH
/// [`RECORDER_AS`], its actions as extended communities, MP_REACH_NLRI without next
/// hop), encoded by wasmbgp's codec, with `extra` (NLRI octets) appended to its
/// MP_REACH_NLRI.
fn announce(route: &FlowRoute, extra: &[u8]) -> Result<Vec<u8>> {
    let update = Update {
        attributes: PathAttributes {
            origin: Origin::Igp,
            as_path: AsPath::from_sequence(vec![RECORDER_AS]),
            extended_communities: route.wasmbgp_communities()?,
            ..PathAttributes::default()
        },
        mp_reach: Some(MpReach {
            family: family_of(route),
            next_hop: Vec::new(),
            nlri: MpNlri::Flow(vec![route.wasmbgp_rule()?]),
        }),
        ..Update::default()
    };
    let mut message = Message::Update(update).to_bytes(&Default::default());
    if !extra.is_empty() {
        append_to_mp_reach(&mut message, extra)?;
    }
    Ok(message)
}

/// Appends `extra` to the MP_REACH_NLRI attribute of the UPDATE `message` (which
/// carries it with the extended-length flag, as wasmbgp's encoder writes it) and fixes
/// the attribute's, the path attributes' and the message's lengths.
fn append_to_mp_reach(message: &mut Vec<u8>, extra: &[u8]) -> Result<()> {
    const HEADER: usize = 19;
    let u16_at = |m: &[u8], at: usize| -> Result<usize> {
        let b = m.get(at..at + 2).context("UPDATE too short")?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let withdrawn = u16_at(message, HEADER)?;
    let attrs_len_at = HEADER + 2 + withdrawn;
    let attrs_len = u16_at(message, attrs_len_at)?;
    let attrs_end = attrs_len_at + 2 + attrs_len;
    let mut at = attrs_len_at + 2;
    let (len_at, end) = loop {
        ensure!(at + 3 <= attrs_end, "no MP_REACH_NLRI in the UPDATE");
        let (flags, code) = (message[at], message[at + 1]);
        let extended = flags & 0x10 != 0;
        let (len, header) = if extended {
            (u16_at(message, at + 2)?, 4)
        } else {
            (usize::from(message[at + 2]), 3)
        };
        if code == 14 {
            ensure!(extended, "MP_REACH_NLRI without the extended-length flag");
            break (at + 2, at + header + len);
        }
        at += header + len;
    };
    let mp_len = u16_at(message, len_at)? + extra.len();
    let total = message.len() + extra.len();
    ensure!(total <= 4096, "the crafted UPDATE would be {total} octets");
    message.splice(end..end, extra.iter().copied());
    message[len_at..len_at + 2].copy_from_slice(&(mp_len as u16).to_be_bytes());
    let attrs_len = (attrs_len + extra.len()) as u16;
    message[attrs_len_at..attrs_len_at + 2].copy_from_slice(&attrs_len.to_be_bytes());
    message[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    Ok(())
}

/// A rule's NLRI (1-octet length, then `value`).
fn nlri(value: &[u8]) -> Vec<u8> {
    assert!(value.len() < 0xf0, "a 1-octet NLRI length");
    let mut out = vec![value.len() as u8];
    out.extend_from_slice(value);
    out
}

/// `route`'s components, each encoded by wasmbgp's codec alone, put together in
/// decreasing type order (RFC 8955 §4.2: types must increase).
fn out_of_order(route: &FlowRoute) -> Result<Vec<u8>> {
    let mut value = Vec::new();
    let afi = family_of(route).afi;
    let components = route.wasmbgp_components()?;
    ensure!(components.len() > 1, "{route} has a single component");
    for component in components.iter().rev() {
        let alone =
            wasmbgp_bgp::packet::flowspec::FlowSpec::new(afi, std::slice::from_ref(component))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        value.extend_from_slice(alone.value());
    }
    Ok(nlri(&value))
}

/// An IPv4 rule whose destination prefix is 33 bits long (in 5 octets: the rule's
/// length is sound).
fn prefix_33() -> Vec<u8> {
    nlri(&[0x01, 33, 192, 0, 2, 0, 0])
}

/// An IPv4 rule, destination `198.51.100.0/24` (encoded by wasmbgp's codec), then a
/// protocol operator announcing a 2-octet value (0x91: end of list, length 2, `=`) with
/// one octet left in the rule.
fn value_past_rule() -> Result<Vec<u8>> {
    let destination = FlowRoute::new(FlowFamily::Ipv4)
        .matching(Component::Destination, "198.51.100.0/24")
        .wasmbgp_rule()?;
    let mut value = destination.value().to_vec();
    value.extend_from_slice(&[0x03, 0x91, 0x11]);
    Ok(nlri(&value))
}

/// wasmbgp's log records of an UPDATE from `neighbor` treated as withdraw.
fn treat_as_withdraw_records(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<Vec<String>> {
    let tag = format!("neighbor={neighbor}");
    Ok(log_records(&wasmbgp.log()?)
        .into_iter()
        .filter(|r| r.contains(TREAT_AS_WITHDRAW_LOG) && r.contains(&tag))
        .collect())
}

/// `wasmbgp_treat_as_withdraw_total{neighbor}` (0 while absent).
fn treat_as_withdraw_count(wasmbgp: &WasmBgp, neighbor: Ipv4Addr) -> Result<f64> {
    let metrics = wasmbgp.ctl(&["show", "metrics"])?;
    Ok(metric_value(
        &metrics,
        TREAT_AS_WITHDRAW_METRIC,
        &[("neighbor", &neighbor.to_string())],
    )
    .unwrap_or(0.0))
}

/// The session is whole: wasmbgp Established once, the recorder's one session up,
/// no NOTIFICATION received by the recorder, nothing ended or refused.
fn session_kept(wasmbgp: &WasmBgp, recorder: &Recorder, neighbor: Ipv4Addr) -> Result<()> {
    let (state, count) = session(wasmbgp, neighbor)?;
    ensure!(
        state == "established" && count == 1,
        "wasmbgp's session: {state}, Established {count} times"
    );
    ensure!(
        recorder.established() && recorder.opens() == 1,
        "the recorder's session: established {}, {} OPENs",
        recorder.established(),
        recorder.opens()
    );
    let notifications = recorder.notifications();
    ensure!(
        notifications.is_empty(),
        "wasmbgp sent NOTIFICATIONs: {:?}",
        notifications
            .iter()
            .map(|n| n.describe())
            .collect::<Vec<_>>()
    );
    ensure!(
        recorder.errors().is_empty(),
        "the recorder's session ended or refused something: {:?}",
        recorder.errors()
    );
    Ok(())
}

#[test]
fn malformed_flow_rule_is_treat_as_withdraw() {
    let test = "flowspec_receive_malformed";
    run_in_workdir(test, |work| {
        let block = LimitBlock(280);
        let neighbor = block.addr(2);
        let mut recorder = Recorder::listen(&format!("{neighbor}:{}", block.port(1)), RECORDER_AS)?;
        let mut wasmbgp = start_wasmbgp(&work.subdir("wasmbgp")?, block, RECORDER_AS)?;
        let result = (|| {
            recorder.wait_established(DEFAULT_TIMEOUT)?;
            wait_flowspec_session(&wasmbgp, neighbor)?;
            // `other` comes in its own UPDATE and must outlive every treat-as-withdraw;
            // `good` is sent beside each malformed rule.
            let other = ddos_rule(FlowFamily::Ipv6);
            let good = rate_limit_rule(FlowFamily::Ipv4);
            recorder.send_raw(announce(&other, &[])?);
            recorder.send_raw(announce(&good, &[])?);
            wait_adj_rib_in(
                "the two good rules",
                &wasmbgp,
                neighbor,
                &[other.clone(), good.clone()],
            )?;
            step(test, format!("shown: {other} and {good}"));
            let malformed: [(&str, Vec<u8>, &str); 3] = [
                (
                    "components out of order",
                    out_of_order(&good)?,
                    "types must increase",
                ),
                (
                    "an IPv4 destination of length 33",
                    prefix_33(),
                    "exceeds 32",
                ),
                (
                    "a protocol value running past the rule",
                    value_past_rule()?,
                    "runs past the end of the rule",
                ),
            ];
            for (n, (what, bad, reason)) in malformed.iter().enumerate() {
                let n = n + 1;
                step(test, format!("UPDATE {good} + a rule with {what}"));
                recorder.send_raw(announce(&good, bad)?);
                wait_until(
                    &format!("wasmbgp to log treat-as-withdraw number {n}"),
                    DEFAULT_TIMEOUT,
                    || Ok(treat_as_withdraw_records(&wasmbgp, neighbor)?.len() >= n),
                )?;
                let records = treat_as_withdraw_records(&wasmbgp, neighbor)?;
                ensure!(
                    records.len() == n,
                    "{} treat-as-withdraw records after {n} malformed UPDATEs: {records:#?}",
                    records.len()
                );
                let record = &records[n - 1];
                ensure!(
                    record.contains("malformed ipv4-flowspec rule") && record.contains(reason),
                    "the log does not say {reason:?} of a malformed ipv4-flowspec rule: {record}"
                );
                step(test, format!("wasmbgp logs: {}", record.trim()));
                wait_adj_rib_in(
                    &format!("{other} alone (treat-as-withdraw {n})"),
                    &wasmbgp,
                    neighbor,
                    std::slice::from_ref(&other),
                )?;
                let counted = treat_as_withdraw_count(&wasmbgp, neighbor)?;
                ensure!(
                    counted == n as f64,
                    "{TREAT_AS_WITHDRAW_METRIC} is {counted} after {n} malformed UPDATEs"
                );
                session_kept(&wasmbgp, &recorder, neighbor)?;
                step(
                    test,
                    format!("{good} withdrawn, session kept; sent again alone"),
                );
                recorder.send_raw(announce(&good, &[])?);
                wait_adj_rib_in(
                    &format!("the good rule again (after treat-as-withdraw {n})"),
                    &wasmbgp,
                    neighbor,
                    &[other.clone(), good.clone()],
                )?;
            }
            let watch = Instant::now();
            while watch.elapsed() < WATCH {
                session_kept(&wasmbgp, &recorder, neighbor).with_context(|| {
                    format!("{:.1?} after the last malformed UPDATE", watch.elapsed())
                })?;
                std::thread::sleep(Duration::from_millis(200));
            }
            wait_adj_rib_in(
                "both good rules, still",
                &wasmbgp,
                neighbor,
                &[other.clone(), good.clone()],
            )?;
            step(
                test,
                format!("session kept for {WATCH:?} more, both good rules shown"),
            );

            // The contrast: a rule length overrunning the field cannot be walked past.
            step(
                test,
                format!("UPDATE {good} + a rule length overrunning the MP_REACH_NLRI"),
            );
            recorder.send_raw(announce(&good, &[0x09, 0x01, 0x18])?);
            wait_until("wasmbgp's NOTIFICATION", DEFAULT_TIMEOUT, || {
                Ok(!recorder.notifications().is_empty())
            })?;
            let notifications = recorder.notifications();
            ensure!(
                notifications.len() == 1 && notifications[0].code == code::UPDATE_MESSAGE,
                "expected one UPDATE Message Error, got {:?}",
                notifications
                    .iter()
                    .map(|n| n.describe())
                    .collect::<Vec<_>>()
            );
            step(
                test,
                format!("wasmbgp sent {}", notifications[0].describe()),
            );
            let records = treat_as_withdraw_records(&wasmbgp, neighbor)?;
            ensure!(
                records.len() == malformed.len(),
                "the overrun was logged as treat-as-withdraw: {records:#?}"
            );
            wait_until(
                "wasmbgp to drop the routes of the reset session",
                DEFAULT_TIMEOUT,
                || Ok(adj_rib_in(&wasmbgp, neighbor)?.is_empty()),
            )?;
            recorder.stop();
            stop_wasmbgp(&mut wasmbgp)
        })();
        let result = result.map_err(|e| {
            e.context(format!(
                "recorder: opens {}, notifications {:?}, errors {:?}",
                recorder.opens(),
                recorder
                    .notifications()
                    .iter()
                    .map(|n| n.describe())
                    .collect::<Vec<_>>(),
                recorder.errors()
            ))
        });
        with_logs(result, &wasmbgp, &[])
    });
}
