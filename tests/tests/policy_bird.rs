//! Policy plugins end to end against a real BIRD 2 on loopback: an export
//! chain (as-path-filter → community-tagger → fixture MED), the bogon filter
//! on import (Rust, Python, JavaScript and C), RPKI origin validation on import and export
//! with VRP files replaced under a running daemon, a policy that traps
//! (fail closed and fail open), and a settings change applied by
//! `ctl plugin reload` to 100,000 routes. BIRD is asked through `birdc`,
//! whose failures are errors, never "no route"; sessions never reset.
//!
//! Blocks 209, 211–218, 221 and 222 (`plugin_support::PluginBlock`); 210 is GoBGP's.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use wasmbgp_e2e::plugin_support::{PluginBlock, plugin_log_lines, wait_fast};
use wasmbgp_e2e::policy_support::{
    PolicyPlugin, PolicyRig, RibRow, RigSpec, StaticGroup, Vrp, cover_slash24s, export_chain,
    find_row, metric_value, slash24, wait_stable, write_vrps,
};
use wasmbgp_e2e::route::Route;
use wasmbgp_e2e::wasmbgp::{RouteAttrs, RouteFile};

const POLL: Duration = Duration::from_millis(100);

fn prefixes(rows: &[RibRow]) -> BTreeSet<String> {
    rows.iter().map(|r| r.route.prefix.clone()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------
// 1. Export chain.

/// Config routes go to BIRD through `deny` → `tagger` → `setmed`: BIRD has
/// the routes without the denied AS, tagged inside 20.1.0.0/16 only, every
/// MED rewritten to 500; `show adj-rib-out --pre-policy` has every route as
/// configured, `show adj-rib-out` what the chain made of them.
#[test]
fn policy_export_chain_bird() {
    let rig = PolicyRig::start("policy-export-chain-bird", PluginBlock(209), |_| {
        Ok(RigSpec {
            plugins: export_chain::plugins()?,
            export_policy: export_chain::chain(),
            routes: export_chain::routes(None),
            ..RigSpec::default()
        })
    })
    .expect("rig");
    rig.run(|rig| {
        let sent = export_chain::cases().iter().filter(|c| c.sent).count() as u64;
        wait_fast(
            "BIRD to hold the routes let through",
            POLL,
            Duration::from_secs(20),
            || Ok(rig.bird.count(None)? == sent),
        )?;
        // Past the last UPDATE: nothing else arrives.
        std::thread::sleep(Duration::from_millis(500));
        let received = rig.bird.routes()?;
        export_chain::check_peer(&received)?;
        rig.step(format!("BIRD holds {received:?}"));
        export_chain::check_tables(&rig.adj_rib_out(true)?, &rig.adj_rib_out(false)?)?;
        let counters = rig.bird.counters()?;
        ensure!(
            counters.import_updates == sent && counters.import_withdraws == 0,
            "BIRD counted {counters:?}, expected {sent} updates and no withdraw"
        );
        let k = export_chain::check_counters(&rig.speaker)?;
        ensure!(
            k == 1,
            "the chain judged the routes {k} times for one session"
        );

        // Judged again with the same verdicts: nothing reaches the wire.
        let reply = rig.speaker.ctl(&["policy", "reevaluate", "tagger"])?;
        let all = export_chain::cases().len();
        ensure!(
            reply.trim() == format!("{all} export decisions sent"),
            "policy reevaluate answered {reply:?}"
        );
        let after = wait_stable(
            "BIRD's counters",
            POLL,
            Duration::from_secs(1),
            Duration::from_secs(10),
            || rig.bird.counters(),
        )?;
        ensure!(
            after == counters,
            "unchanged verdicts reached BIRD: {counters:?} → {after:?}"
        );
        export_chain::check_peer(&rig.bird.routes()?)?;
        let k = export_chain::check_counters(&rig.speaker)?;
        ensure!(
            k == 2,
            "after one reevaluate the chain judged the routes {k} times"
        );
        rig.step(format!(
            "policy reevaluate: {reply:?}, BIRD counters unchanged {after:?}"
        ));

        // Routes announced and withdrawn through ctl take the same chain;
        // what the chain rejected is never sent, nor withdrawn.
        let (denied, tagged) = ("20.1.9.0/24", "20.1.8.0/24");
        let settle = |what: &str| {
            wait_stable(
                what,
                POLL,
                Duration::from_secs(1),
                Duration::from_secs(10),
                || rig.bird.counters(),
            )
        };
        rig.ctl_line(&format!(
            "announce route {denied} next-hop self as-path [ {} ]",
            export_chain::DENIED_AS
        ))?;
        rig.ctl_line(&format!("announce route {tagged} next-hop self med 7"))?;
        wait_fast(
            "the announced route at BIRD",
            POLL,
            Duration::from_secs(10),
            || Ok(rig.bird.route(tagged)?.is_some()),
        )?;
        let announced = settle("BIRD's counters after ctl announce")?;
        let route = rig.bird.route(tagged)?.context("checked above")?;
        ensure!(
            route.med == Some(export_chain::MED)
                && export_chain::TAGS
                    .iter()
                    .all(|t| route.communities.iter().any(|c| c == t)),
            "{tagged} at BIRD: {route:?}"
        );
        ensure!(rig.bird.route(denied)?.is_none(), "{denied} reached BIRD");
        ensure!(
            announced.import_updates == after.import_updates + 1
                && announced.import_withdraws == after.import_withdraws,
            "two announcements, one denied: BIRD counted {after:?} → {announced:?}"
        );
        rig.ctl_line(&format!("withdraw route {denied}"))?;
        rig.ctl_line(&format!("withdraw route {tagged}"))?;
        wait_fast(
            "the withdrawn route gone from BIRD",
            POLL,
            Duration::from_secs(10),
            || Ok(rig.bird.route(tagged)?.is_none()),
        )?;
        let withdrawn = settle("BIRD's counters after ctl withdraw")?;
        ensure!(
            withdrawn.import_updates == announced.import_updates
                && withdrawn.import_withdraws == announced.import_withdraws + 1,
            "two withdrawals, one of a route never sent: BIRD counted {announced:?} → {withdrawn:?}"
        );
        export_chain::check_peer(&rig.bird.routes()?)?;
        rig.step("ctl announce/withdraw through the chain: only the accepted route reached BIRD");
        rig.assert_session_untouched()
    });
}

// ---------------------------------------------------------------------------
// 2. Bogons on import.

/// What BIRD sends that the filter must reject. BIRD itself refuses to
/// originate loopback, multicast and link-local prefixes (it logs "Ignoring
/// bogus route"), so 127/8, 224/4 and fe80::/10 are not among them.
const BOGONS: &[&str] = &[
    "0.0.0.0/8",
    "10.1.0.0/16",
    "100.64.1.0/24",
    "169.254.0.0/16",
    "172.16.5.0/24",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.1.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    // Longer than /24.
    "20.0.0.0/25",
    "45.1.2.4/32",
    "2001:db8:1::/48",
    "fc00:1::/48",
    "4000::/16",
    // Longer than /48.
    "2a00:1450:4001::/56",
];

const GOOD: &[&str] = &[
    "20.0.0.0/24",
    "45.10.0.0/16",
    "11.0.0.0/8",
    "8.8.8.0/24",
    // Next to (or containing) a bogon block, not inside one.
    "192.0.0.0/8",
    "100.128.0.0/10",
    "172.32.0.0/16",
    "198.20.0.0/16",
    "2a00:1450::/32",
    "2600:1f00::/24",
    "2001:db9::/32",
    "2a01:4f8:1::/48",
];

fn bogons(test: &str, block: PluginBlock, component: &str) {
    let rig = PolicyRig::start(test, block, |_| {
        Ok(RigSpec {
            plugins: vec![PolicyPlugin::new("bogons", component)?],
            import_policy: vec!["bogons".into()],
            bird_groups: vec![
                StaticGroup::new("bogon", BOGONS.iter().copied()),
                StaticGroup::new("good", GOOD.iter().copied()).path(&[65010]),
            ],
            ipv6: true,
            ..RigSpec::default()
        })
    })
    .expect("rig");
    rig.run(|rig| {
        let all: BTreeSet<String> = BOGONS.iter().chain(GOOD).map(|s| (*s).to_owned()).collect();
        let good = set(GOOD);
        wait_fast(
            "every route BIRD sends in the pre-policy Adj-RIB-In",
            POLL,
            Duration::from_secs(20),
            || Ok(prefixes(&rig.adj_rib_in(true)?) == all),
        )?;
        // The policy judged them in the same speaker step: no wait needed,
        // but a late UPDATE would show here.
        std::thread::sleep(Duration::from_millis(300));
        let pre = rig.adj_rib_in(true)?;
        let post = rig.adj_rib_in(false)?;
        ensure!(prefixes(&pre) == all, "pre-policy: {:?}", prefixes(&pre));
        ensure!(
            prefixes(&post) == good,
            "after the bogon filter: {:?}\nexpected {good:?}",
            prefixes(&post)
        );
        // Accepted unchanged.
        for row in &post {
            let before = find_row(&pre, &row.route.prefix).context("in pre")?;
            ensure!(
                row.route == before.route,
                "{:?} changed: {:?}",
                before.route,
                row.route
            );
            ensure!(row.route.as_path == vec![65000, 65010], "{:?}", row.route);
        }
        let received = rig.neighbor_json()?["prefixes-received"].as_u64();
        ensure!(
            received == Some(GOOD.len() as u64),
            "show neighbors prefixes-received {received:?}, expected {}",
            GOOD.len()
        );
        let s = rig.speaker.plugin("bogons")?;
        rig.step(format!("show plugins: {}", s.raw));
        ensure!(
            s.routes_rejected >= BOGONS.len() as u64
                && s.routes_rejected > 0
                && s.routes_accepted >= GOOD.len() as u64
                && s.routes_modified == 0
                && s.routes_unjudged == 0
                && s.restarts == 0,
            "show plugins: {}",
            s.raw
        );
        rig.assert_session_untouched()
    });
}

/// BIRD sends bogons and good routes; the Rust bogon filter keeps the good
/// ones only; `--pre-policy` shows everything received.
#[test]
fn policy_bogons_rust() {
    bogons("policy-bogons-rust", PluginBlock(211), "bogon-filter");
}

/// The same with the Python twin.
#[test]
fn policy_bogons_python() {
    bogons("policy-bogons-py", PluginBlock(212), "bogon-filter-py");
}

/// The same with the JavaScript twin (componentize-qjs).
#[test]
fn policy_bogons_js() {
    bogons("policy-bogons-js", PluginBlock(221), "bogon-filter-js");
}

/// The same with the C twin (clang, wasi-libc, `wit-bindgen c`).
#[test]
fn policy_bogons_c() {
    bogons("policy-bogons-c", PluginBlock(222), "bogon-filter-c");
}

// ---------------------------------------------------------------------------
// 3. RPKI route origin validation.

/// Tag community for invalid routes.
const INVALID_TAG: &str = "65001:666";

/// `(prefix, AS path after BIRD's 65000, valid?)`; the origin is the last
/// AS (65000 when the path is empty).
const ROV_ROUTES: &[(&str, &[u32], Rov)] = &[
    ("20.10.1.0/24", &[65010], Rov::Valid),
    // Prepended: only the last AS is the origin.
    ("20.10.3.0/24", &[65030, 65010], Rov::Valid),
    ("20.10.4.0/24", &[65010, 65030], Rov::Invalid),
    ("20.10.2.0/24", &[65099], Rov::Invalid),
    // Exactly the VRP's prefix, at its maxLength.
    ("20.20.0.0/16", &[65020], Rov::Valid),
    // The right origin, longer than maxLength 16.
    ("20.20.1.0/24", &[65020], Rov::Invalid),
    ("20.30.1.0/24", &[65030], Rov::NotFound),
    // BIRD's own route: origin 65000.
    ("20.50.1.0/24", &[], Rov::Valid),
    ("20.40.0.0/24", &[], Rov::NotFound),
];

/// The route whose state the second VRP file changes (invalid → valid).
const ROV_CHANGED: &str = "20.10.2.0/24";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rov {
    Valid,
    Invalid,
    NotFound,
}

fn rov_vrps() -> Vec<Vrp> {
    vec![
        Vrp::new(65010, "20.10.0.0/16", 24),
        Vrp::new(65020, "20.20.0.0/16", 16),
        Vrp::new(65000, "20.50.0.0/16", 24),
    ]
}

fn rov_groups() -> Vec<StaticGroup> {
    ROV_ROUTES
        .iter()
        .enumerate()
        .map(|(i, (prefix, path, _))| StaticGroup::new(&format!("r{i}"), [*prefix]).path(path))
        .collect()
}

/// The import case: BIRD sends routes of every RFC 6811 state; with
/// `invalid = reject` the invalid ones are absent after policy (present
/// before), with `tag` every route is there and the invalid ones carry the
/// tag. Then the VRP file is replaced (write + rename) so that one invalid
/// route becomes valid: it appears (reject) or loses its tag (tag), nothing
/// else changes, and the session is not reset. Last, BIRD withdraws a valid
/// and an invalid route and announces them again: both tables follow.
fn rov_import(test: &str, block: PluginBlock, tag: bool) {
    let mut vrp_file = PathBuf::new();
    let rig = PolicyRig::start(test, block, |data| {
        vrp_file = data.join("vrps.json");
        write_vrps(&vrp_file, &rov_vrps())?;
        let path = vrp_file.display().to_string();
        let mut rov = PolicyPlugin::new("rov", "rpki-rov")?
            .setting("vrps", &path)
            .file(&vrp_file);
        if tag {
            rov = rov
                .setting("invalid", "tag")
                .setting("tag-community", INVALID_TAG);
        }
        Ok(RigSpec {
            plugins: vec![rov],
            import_policy: vec!["rov".into()],
            bird_groups: rov_groups(),
            ..RigSpec::default()
        })
    })
    .expect("rig");
    rig.run(|rig| {
        let all: BTreeSet<String> = ROV_ROUTES.iter().map(|r| r.0.to_owned()).collect();
        // Whether wasmbgp's tables are what BIRD sends (`sent`) and the
        // policy makes of it, given each route's state.
        let check_sent = |sent: &BTreeSet<String>, state: &dyn Fn(&str) -> Rov| -> Result<bool> {
            let pre = rig.adj_rib_in(true)?;
            if prefixes(&pre) != *sent {
                return Ok(false);
            }
            let post = rig.adj_rib_in(false)?;
            let mut expected = 0;
            for prefix in sent {
                let invalid = state(prefix) == Rov::Invalid;
                let row = find_row(&post, prefix);
                let ok = match (tag, invalid, row) {
                    (false, true, None) => true,
                    (false, true, Some(_)) | (_, _, None) => false,
                    (_, _, Some(row)) => {
                        expected += 1;
                        let tagged = row.route.communities.iter().any(|c| c == INVALID_TAG);
                        let before = find_row(&pre, prefix).context("in pre")?;
                        tagged == invalid && row.route.as_path == before.route.as_path
                    }
                };
                if !ok {
                    return Ok(false);
                }
            }
            Ok(post.len() == expected)
        };
        let check = |state: &dyn Fn(&str) -> Rov| check_sent(&all, state);
        let initial = |p: &str| {
            ROV_ROUTES
                .iter()
                .find(|r| r.0 == p)
                .map(|r| r.2)
                .unwrap_or(Rov::NotFound)
        };
        let took = wait_fast(
            "the table after route origin validation",
            POLL,
            Duration::from_secs(20),
            || check(&initial),
        )
        .with_context(|| {
            format!(
                "post-policy: {:?}",
                rig.adj_rib_in(false).map(|t| prefixes(&t))
            )
        })?;
        rig.step(format!(
            "after policy ({}): {:?} ({took:?})",
            if tag { "tag" } else { "reject" },
            prefixes(&rig.adj_rib_in(false)?)
        ));
        let s = rig.speaker.plugin("rov")?;
        let invalid = ROV_ROUTES.iter().filter(|r| r.2 == Rov::Invalid).count() as u64;
        if tag {
            ensure!(
                s.routes_modified >= invalid && s.routes_rejected == 0,
                "{}",
                s.raw
            );
        } else {
            ensure!(
                s.routes_rejected >= invalid && s.routes_modified == 0,
                "{}",
                s.raw
            );
        }
        ensure!(s.routes_unjudged == 0 && s.restarts == 0, "{}", s.raw);

        // The validator's new output: AS65099 may now originate 20.10.2.0/24.
        let mut vrps = rov_vrps();
        vrps.push(Vrp::new(65099, ROV_CHANGED, 24));
        write_vrps(&vrp_file, &vrps)?;
        let changed = |p: &str| {
            if p == ROV_CHANGED {
                Rov::Valid
            } else {
                initial(p)
            }
        };
        let took = wait_fast(
            "the VRP change to apply",
            POLL,
            Duration::from_secs(15),
            || check(&changed),
        )
        .with_context(|| {
            format!(
                "post-policy: {:?}",
                rig.adj_rib_in(false).map(|t| prefixes(&t))
            )
        })?;
        rig.step(format!(
            "VRP file replaced: {ROV_CHANGED} valid after {took:?}"
        ));
        // Nothing else moves afterwards.
        std::thread::sleep(Duration::from_millis(500));
        ensure!(
            check(&changed)?,
            "the table changed again: {:?}",
            rig.adj_rib_in(false)?
        );
        let s = rig.speaker.plugin("rov")?;
        ensure!(s.state == "running" && s.routes_unjudged == 0, "{}", s.raw);
        let received = rig.neighbor_json()?["prefixes-received"].as_u64();
        let expected = if tag {
            all.len()
        } else {
            all.len() - invalid as usize + 1
        };
        ensure!(
            received == Some(expected as u64),
            "prefixes-received {received:?}, expected {expected}"
        );

        // BIRD withdraws a valid and an invalid route, then announces them
        // again: gone from both tables, then judged again on their return.
        let moved = ["20.10.1.0/24", "20.20.1.0/24"];
        let groups: Vec<String> = moved
            .iter()
            .map(|p| {
                format!(
                    "r{}",
                    ROV_ROUTES.iter().position(|r| r.0 == *p).unwrap_or(0)
                )
            })
            .collect();
        for group in &groups {
            rig.bird.set_group(group, false)?;
        }
        let fewer: BTreeSet<String> = all
            .iter()
            .filter(|p| !moved.contains(&p.as_str()))
            .cloned()
            .collect();
        wait_fast(
            "BIRD's withdrawals in both tables",
            POLL,
            Duration::from_secs(10),
            || check_sent(&fewer, &changed),
        )
        .with_context(|| {
            format!(
                "post-policy: {:?}",
                rig.adj_rib_in(false).map(|t| prefixes(&t))
            )
        })?;
        for group in &groups {
            rig.bird.set_group(group, true)?;
        }
        wait_fast(
            "BIRD's announcements judged again",
            POLL,
            Duration::from_secs(10),
            || check(&changed),
        )
        .with_context(|| {
            format!(
                "post-policy: {:?}",
                rig.adj_rib_in(false).map(|t| prefixes(&t))
            )
        })?;
        rig.step(format!(
            "{moved:?} withdrawn and announced again by BIRD: tables follow"
        ));
        rig.assert_session_untouched()
    });
}

/// RFC 6811 on import, `invalid = "reject"`.
#[test]
fn policy_rov_import_reject() {
    rov_import("policy-rov-import-reject", PluginBlock(213), false);
}

/// RFC 6811 on import, `invalid = "tag"`.
#[test]
fn policy_rov_import_tag() {
    rov_import("policy-rov-import-tag", PluginBlock(214), true);
}

/// Export side: config routes to BIRD through rpki-rov (origin: the last AS
/// of the configured path, our own AS for an empty one), 1,000 valid bulk
/// routes beside them. Replacing the VRP file turns one sent route invalid
/// and one rejected route valid: BIRD receives exactly one withdraw and one
/// update, nothing for the 1,003 unchanged routes.
#[test]
fn policy_rov_export() {
    // (prefix, configured AS path, sent with the first VRPs, sent with the second)
    let routes: &[(&str, &[u32], bool, bool)] = &[
        ("20.50.1.0/24", &[], true, true),
        ("20.50.2.0/24", &[65099], false, false),
        ("20.60.1.0/24", &[65070, 65060], true, false),
        ("20.60.2.0/24", &[65060, 65070], false, true),
        ("20.70.1.0/24", &[65070], true, true),
    ];
    let first = vec![
        Vrp::new(65001, "20.50.0.0/16", 24),
        Vrp::new(65060, "20.60.0.0/16", 24),
        Vrp::new(65001, "21.0.0.0/8", 24),
    ];
    let second = vec![
        Vrp::new(65001, "20.50.0.0/16", 24),
        Vrp::new(65070, "20.60.0.0/16", 24),
        Vrp::new(65001, "21.0.0.0/8", 24),
    ];
    const BULK: u32 = 1000;
    let bulk_base = Ipv4Addr::new(21, 0, 0, 0);
    let mut vrp_file = PathBuf::new();
    let rig = PolicyRig::start("policy-rov-export", PluginBlock(215), |data: &Path| {
        vrp_file = data.join("vrps.json");
        write_vrps(&vrp_file, &first)?;
        Ok(RigSpec {
            plugins: vec![
                PolicyPlugin::new("rov", "rpki-rov")?
                    .setting("vrps", &vrp_file.display().to_string())
                    .file(&vrp_file),
            ],
            export_policy: vec!["rov".into()],
            routes: routes
                .iter()
                .map(|(p, path, _, _)| {
                    (
                        (*p).to_owned(),
                        RouteAttrs {
                            as_path: path.to_vec(),
                            ..RouteAttrs::default()
                        },
                    )
                })
                .collect(),
            route_files: vec![RouteFile {
                name: "bulk.routes".into(),
                lines: (0..BULK).map(|i| slash24(bulk_base, i)).collect(),
                defaults: RouteAttrs::default(),
            }],
            ..RigSpec::default()
        })
    })
    .expect("rig");
    rig.run(|rig| {
        let expect = |second: bool| -> BTreeSet<String> {
            routes
                .iter()
                .filter(|r| if second { r.3 } else { r.2 })
                .map(|r| r.0.to_owned())
                .collect()
        };
        let at_bird = |routes: &[Route]| -> BTreeSet<String> {
            routes
                .iter()
                .filter(|r| !r.prefix.starts_with("21."))
                .map(|r| r.prefix.clone())
                .collect()
        };
        let total = BULK as u64 + expect(false).len() as u64;
        wait_fast("BIRD to hold the valid and not-found routes", POLL, Duration::from_secs(20), || {
            Ok(rig.bird.count(None)? == total)
        })?;
        let got = at_bird(&rig.bird.routes()?);
        ensure!(got == expect(false), "BIRD has {got:?}, expected {:?}", expect(false));
        let pre = rig.adj_rib_out(true)?;
        ensure!(pre.len() == BULK as usize + routes.len(), "{} routes before export policy", pre.len());
        let before = wait_stable("BIRD's counters", POLL, Duration::from_secs(1), Duration::from_secs(15), || {
            rig.bird.counters()
        })?;
        ensure!(
            before.import_updates == total && before.import_withdraws == 0,
            "BIRD counted {before:?} for {total} routes"
        );
        rig.step(format!("BIRD holds {got:?} + {BULK} bulk routes; counters {before:?}"));

        write_vrps(&vrp_file, &second)?;
        let took = wait_fast("the VRP change to reach BIRD", POLL, Duration::from_secs(15), || {
            Ok(at_bird(&rig.bird.routes()?) == expect(true))
        })?;
        let after = wait_stable("BIRD's counters", POLL, Duration::from_millis(1500), Duration::from_secs(15), || {
            rig.bird.counters()
        })?;
        rig.step(format!("VRP file replaced: BIRD has {:?} after {took:?}; counters {after:?}", expect(true)));
        ensure!(
            after.import_updates - before.import_updates == 1
                && after.import_withdraws - before.import_withdraws == 1,
            "BIRD received {} updates and {} withdraws for one route becoming valid and one invalid",
            after.import_updates - before.import_updates,
            after.import_withdraws - before.import_withdraws
        );
        ensure!(rig.bird.count(None)? == total, "BIRD holds {} routes", rig.bird.count(None)?);
        let post = rig.adj_rib_out(false)?;
        ensure!(post.len() == total as usize, "{} routes after export policy", post.len());
        ensure!(find_row(&post, "20.60.2.0/24").is_some() && find_row(&post, "20.60.1.0/24").is_none());
        rig.assert_session_untouched()
    });
}

// ---------------------------------------------------------------------------
// 4. A policy that traps.

const TRAP_ROUTES: u32 = 5000;

/// fixture-policy `trap-every` n = 1000 on the import of 5,000 routes: every
/// instance panics at its 1000th route, so each re-judging of the 5,000
/// after a restart traps again, until the restart burst marks the plugin
/// failed. Meanwhile every route gets the on-failure treatment: absent with
/// `reject`, present unchanged with `accept`; the counters add up (nothing
/// rejected or modified by the policy itself, at most 999 routes accepted
/// per instance); the session is never touched. A reload with a larger `n`
/// brings the plugin back and it judges every route again.
fn trap(test: &str, block: PluginBlock, on_failure: &str) {
    let base = Ipv4Addr::new(40, 0, 0, 0);
    let routes: Vec<String> = (0..TRAP_ROUTES).map(|i| slash24(base, i)).collect();
    let rig = PolicyRig::start(test, block, |_| {
        Ok(RigSpec {
            plugins: vec![
                PolicyPlugin::new("trap", "fixture-policy")?
                    .setting("mode", "trap-every")
                    .setting("n", "1000")
                    .on_failure(on_failure),
            ],
            import_policy: vec!["trap".into()],
            bird_groups: vec![StaticGroup::new("bulk", routes.iter().cloned()).path(&[65010])],
            ..RigSpec::default()
        })
    })
    .expect("rig");
    let accept = on_failure == "accept";
    rig.run(|rig| {
        wait_fast("the 5,000 routes in the pre-policy Adj-RIB-In", POLL, Duration::from_secs(20), || {
            Ok(rig.adj_rib_in(true)?.len() == TRAP_ROUTES as usize)
        })?;
        let took = wait_fast("the trapping policy to be marked failed", POLL, Duration::from_secs(20), || {
            Ok(rig.speaker.plugin("trap")?.state == "failed")
        })?;
        let s = rig.speaker.plugin("trap")?;
        rig.step(format!("failed after {took:?}: {}", s.raw));
        let last = s.last_error.clone().unwrap_or_default();
        ensure!(s.restarts >= 1, "{}", s.raw);
        ensure!(
            last.contains("evaluate") && (last.contains("unreachable") || last.contains("panic")),
            "last error {last:?} does not name the trap in evaluate"
        );
        ensure!(s.routes_rejected == 0 && s.routes_modified == 0, "the fixture never rejects nor modifies: {}", s.raw);
        ensure!(
            s.routes_unjudged >= TRAP_ROUTES as u64,
            "the last re-judging alone leaves {TRAP_ROUTES} routes unjudged: {}",
            s.raw
        );
        // One pass over the routes as they arrived, then one per restarted
        // instance (the last fault's restart is still pending): every pass
        // judges each route once, accepted or unjudged.
        ensure!(
            s.routes_accepted + s.routes_unjudged <= u64::from(TRAP_ROUTES) * s.restarts,
            "more verdicts than {} passes over {TRAP_ROUTES} routes: {}",
            s.restarts,
            s.raw
        );
        ensure!(
            s.routes_accepted <= 999 * (s.restarts + 1),
            "{} instances cannot accept {} routes (at most 999 each): {}",
            s.restarts + 1,
            s.routes_accepted,
            s.raw
        );
        // Every fault is the fixture's panic, logged with its message.
        let panics = plugin_log_lines(&rig.speaker.log(), "trap", "trap-every fixture panics at route 1000").len();
        ensure!(
            panics as u64 == s.restarts,
            "{panics} panics of the fixture logged for {} restarts",
            s.restarts
        );
        let metrics = rig.speaker.ctl(&["show", "metrics"])?;
        let metric = |name: &str, labels: &[(&str, &str)]| metric_value(&metrics, name, labels);
        ensure!(
            metric("wasmbgp_plugin_restarts_total", &[("plugin", "trap"), ("world", "policy")]) == Some(s.restarts as f64),
            "restart metric disagrees with show plugins ({})",
            s.restarts
        );
        ensure!(
            metric("wasmbgp_policy_routes_total", &[("plugin", "trap"), ("verdict", "unjudged")]) == Some(s.routes_unjudged as f64),
            "unjudged metric disagrees with show plugins ({})",
            s.routes_unjudged
        );
        ensure!(metric("wasmbgp_plugin_up", &[("plugin", "trap")]) == Some(0.0), "wasmbgp_plugin_up while failed");

        // The treatment, in a steady state (failed: no restart for a while).
        let pre = rig.adj_rib_in(true)?;
        let post = rig.adj_rib_in(false)?;
        ensure!(pre.len() == TRAP_ROUTES as usize, "{} routes received", pre.len());
        if accept {
            ensure!(post.len() == pre.len(), "fail-open kept {} of {} routes", post.len(), pre.len());
            for row in &post {
                let before = find_row(&pre, &row.route.prefix).context("in pre")?;
                ensure!(row.route == before.route, "{:?} changed to {:?}", before.route, row.route);
            }
        } else {
            ensure!(post.is_empty(), "fail-closed kept {} routes", post.len());
        }
        let received = rig.neighbor_json()?["prefixes-received"].as_u64();
        ensure!(received == Some(post.len() as u64), "prefixes-received {received:?}");
        std::thread::sleep(Duration::from_secs(2));
        let later = rig.speaker.plugin("trap")?;
        ensure!(
            later.state == "failed" && later.restarts == s.restarts && later.routes_unjudged == s.routes_unjudged,
            "a failed policy changed within its longest backoff: {} → {}",
            s.raw,
            later.raw
        );
        ensure!(rig.adj_rib_in(false)?.len() == post.len(), "the table moved while failed");
        rig.assert_session_untouched()?;
        rig.step(format!(
            "on-failure = {on_failure}: {} of {TRAP_ROUTES} routes kept, restarts {}, unjudged {}, accepted {}",
            post.len(),
            s.restarts,
            s.routes_unjudged,
            s.routes_accepted
        ));

        // Back: n beyond the number of routes; the reload judges them all again.
        let config = rig.speaker.config_path();
        let text = std::fs::read_to_string(config)?;
        ensure!(text.matches("n = \"1000\"\n").count() == 1, "setting n not found in {text}");
        std::fs::write(config, text.replace("n = \"1000\"\n", "n = \"1000000000\"\n"))?;
        rig.speaker.ctl(&["plugin", "reload", "trap"])?;
        let took = wait_fast("every route accepted after the reload", POLL, Duration::from_secs(20), || {
            let s = rig.speaker.plugin("trap")?;
            Ok(s.state == "running" && rig.adj_rib_in(false)?.len() == TRAP_ROUTES as usize)
        })?;
        let back = rig.speaker.plugin("trap")?;
        rig.step(format!("reloaded with n = 10^9: every route accepted after {took:?}: {}", back.raw));
        ensure!(
            back.routes_accepted >= later.routes_accepted + TRAP_ROUTES as u64
                && back.routes_unjudged == later.routes_unjudged,
            "after the reload: {} (before: {})",
            back.raw,
            later.raw
        );
        rig.assert_session_untouched()
    });
}

/// The trapping policy with `on-failure = "reject"`.
#[test]
fn policy_trap_fail_closed() {
    trap("policy-trap-reject", PluginBlock(216), "reject");
}

/// The trapping policy with `on-failure = "accept"`.
#[test]
fn policy_trap_fail_open() {
    trap("policy-trap-accept", PluginBlock(217), "accept");
}

// ---------------------------------------------------------------------------
// 5. A settings change on 100,000 routes.

/// 100,000 config routes go to BIRD through community-tagger, 10 % of them
/// tagged. The config file is edited so that the tagger covers 10 % more,
/// and `ctl plugin reload tagger` applies it: BIRD receives exactly the
/// 10,000 newly tagged routes (no withdraw, nothing else), and the session
/// is not reset.
#[test]
fn policy_settings_reload_100k() {
    const ROUTES: u32 = 100_000;
    const STEP: u32 = ROUTES / 10;
    let base = Ipv4Addr::new(30, 0, 0, 0);
    let cover = |n: u32| cover_slash24s(base, 0, n).join(",");
    let rig = PolicyRig::start("policy-settings-reload", PluginBlock(218), |_| {
        Ok(RigSpec {
            plugins: vec![
                PolicyPlugin::new("tagger", "community-tagger")?
                    .setting("prefixes", &cover(STEP))
                    .setting("communities", "65001:100"),
            ],
            export_policy: vec!["tagger".into()],
            route_files: vec![RouteFile {
                name: "table.routes".into(),
                lines: (0..ROUTES).map(|i| slash24(base, i)).collect(),
                defaults: RouteAttrs::default(),
            }],
            ..RigSpec::default()
        })
    })
    .expect("rig");
    rig.run(|rig| {
        let tagged = || rig.bird.count(Some("bgp_community ~ [(65001,100)]"));
        let took = wait_fast("BIRD to hold the 100,000 routes", Duration::from_millis(250), Duration::from_secs(40), || {
            Ok(rig.bird.count(None)? == u64::from(ROUTES))
        })?;
        let before = wait_stable("BIRD's counters", POLL, Duration::from_secs(1), Duration::from_secs(20), || {
            rig.bird.counters()
        })?;
        ensure!(tagged()? == u64::from(STEP), "{} routes tagged at BIRD, expected {STEP}", tagged()?);
        ensure!(
            before.import_updates == u64::from(ROUTES) && before.import_withdraws == 0,
            "BIRD counted {before:?} for {ROUTES} routes"
        );
        rig.step(format!("BIRD holds {ROUTES} routes, {STEP} tagged, after {took:?}"));

        let config = rig.speaker.config_path();
        let text = std::fs::read_to_string(config)?;
        let old = format!("prefixes = \"{}\"\n", cover(STEP));
        ensure!(text.matches(&old).count() == 1, "tagger prefixes not found in the config");
        std::fs::write(config, text.replace(&old, &format!("prefixes = \"{}\"\n", cover(2 * STEP))))?;
        rig.speaker.ctl(&["plugin", "reload", "tagger"])?;
        let took = wait_fast("the newly tagged routes at BIRD", Duration::from_millis(250), Duration::from_secs(30), || {
            Ok(tagged()? == u64::from(2 * STEP))
        })?;
        let after = wait_stable("BIRD's counters", POLL, Duration::from_millis(1500), Duration::from_secs(20), || {
            rig.bird.counters()
        })?;
        let (updates, withdraws) = (
            after.import_updates - before.import_updates,
            after.import_withdraws - before.import_withdraws,
        );
        rig.step(format!(
            "reload: {} tagged after {took:?}; BIRD received {updates} updates, {withdraws} withdraws",
            2 * STEP
        ));
        ensure!(
            updates == u64::from(STEP) && withdraws == 0,
            "BIRD received {updates} updates and {withdraws} withdraws, expected {STEP} and 0"
        );
        ensure!(rig.bird.count(None)? == u64::from(ROUTES));
        // The first and last newly tagged routes, and the first untagged one.
        let routes = rig.bird.routes_for(&[
            slash24(base, STEP),
            slash24(base, 2 * STEP - 1),
            slash24(base, 2 * STEP),
        ])?;
        for (i, (prefix, route)) in routes.iter().enumerate() {
            let route = route.as_ref().with_context(|| format!("{prefix} not at BIRD"))?;
            let has = route.communities.iter().any(|c| c == "65001:100");
            ensure!(has == (i < 2), "{prefix}: communities {:?}", route.communities);
        }
        let s = rig.speaker.plugin("tagger")?;
        ensure!(s.state == "running" && s.restarts == 0 && s.routes_unjudged == 0, "{}", s.raw);
        rig.assert_session_untouched()
    });
}
