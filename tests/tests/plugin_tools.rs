//! `wasmbgp plugin test` against the daemon: the verdicts it prints for a policy on a
//! 100,000-route file are the routes the daemon sends BIRD with that policy as its
//! export policy, from the same file (issue 13, "Must show" 3). Two policies, so that
//! every verdict appears: community-tagger (accept / modify) and as-path-filter
//! (accept / reject). Also `plugin inspect` on components of each world and language,
//! and `plugin test`'s exit status and recorded feeds.
//!
//! Blocks 223 and 224 (`plugin_support::PluginBlock`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use wasmbgp_e2e::plugin_support::{PluginBlock, component, wait_fast};
use wasmbgp_e2e::policy_support::{
    PolicyPlugin, PolicyRig, RigSpec, cover_slash24s, slash24, wait_stable,
};
use wasmbgp_e2e::wasmbgp::{RouteAttrs, RouteFile, binary};
use wasmbgp_e2e::workdir::WorkDir;

const ROUTES: u32 = 100_000;
const POLL: Duration = Duration::from_millis(250);

/// What `plugin test` printed: per prefix, the verdict word and the route's text.
fn plugin_test_verdicts(args: &[String]) -> Result<BTreeMap<String, (String, String)>> {
    let started = Instant::now();
    let out = Command::new(binary()?)
        .args(["plugin", "test"])
        .args(args)
        .output()
        .context("running wasmbgp plugin test")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "wasmbgp plugin test {args:?} exited {}:\n{}\n{stderr}",
        out.status,
        stdout.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    eprintln!(
        "wasmbgp plugin test: {} lines in {:?}; {}",
        stdout.lines().count(),
        started.elapsed(),
        stderr.trim()
    );
    let mut verdicts = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.starts_with("metric ")) {
        let mut words = line.splitn(3, ' ');
        let (Some(word), Some(prefix)) = (words.next(), words.next()) else {
            anyhow::bail!("unexpected line {line:?}");
        };
        ensure!(
            matches!(word, "accept" | "reject" | "modify"),
            "unexpected line {line:?}"
        );
        verdicts.insert(prefix.to_owned(), (word.to_owned(), line.to_owned()));
    }
    Ok(verdicts)
}

/// Starts wasmbgp with `plugin` as BIRD's export policy on `lines`, runs `plugin test`
/// on the same component, settings and route file, and compares: BIRD holds exactly the
/// accepted and modified routes, and a route carries `tag` at BIRD exactly when the
/// verdict was `modify`. Returns the verdict counts (accept, reject, modify).
fn daemon_and_plugin_test_agree(
    test: &str,
    block: PluginBlock,
    plugin: &str,
    settings: &[(&str, &str)],
    lines: Vec<String>,
    tag: Option<&str>,
) -> [usize; 3] {
    let rig = PolicyRig::start(test, block, |_| {
        let mut policy = PolicyPlugin::new("policy", plugin)?;
        for (k, v) in settings {
            policy = policy.setting(k, v);
        }
        Ok(RigSpec {
            plugins: vec![policy],
            export_policy: vec!["policy".into()],
            route_files: vec![RouteFile {
                name: "table.routes".into(),
                lines,
                defaults: RouteAttrs::default(),
            }],
            ..RigSpec::default()
        })
    })
    .expect("rig");
    let mut counts = [0; 3];
    rig.run(|rig| {
        let route_file = rig
            .speaker
            .config_path()
            .parent()
            .context("config has a folder")?
            .join("table.routes");
        let mut args = vec![
            component(plugin)?.display().to_string(),
            "--world".into(),
            "policy".into(),
            "--direction".into(),
            "export".into(),
            "--routes".into(),
            route_file.display().to_string(),
        ];
        for (k, v) in settings {
            args.push("--setting".into());
            args.push(format!("{k}={v}"));
        }
        let verdicts = plugin_test_verdicts(&args)?;
        ensure!(
            verdicts.len() == ROUTES as usize,
            "plugin test judged {} routes, the file has {ROUTES}",
            verdicts.len()
        );
        for (word, _) in verdicts.values() {
            counts[match word.as_str() {
                "accept" => 0,
                "reject" => 1,
                _ => 2,
            }] += 1;
        }
        let expected: BTreeSet<&str> = verdicts
            .iter()
            .filter(|(_, (word, _))| word != "reject")
            .map(|(prefix, _)| prefix.as_str())
            .collect();
        let took = wait_fast(
            "BIRD to hold the accepted routes",
            POLL,
            Duration::from_secs(60),
            || Ok(rig.bird.count(None)? == expected.len() as u64),
        )?;
        wait_stable(
            "BIRD's route count",
            POLL,
            Duration::from_secs(1),
            Duration::from_secs(20),
            || rig.bird.count(None),
        )?;
        rig.step(format!(
            "plugin test: {} accept, {} reject, {} modify; BIRD holds {} routes after {took:?}",
            counts[0],
            counts[1],
            counts[2],
            expected.len()
        ));
        let at_bird = rig.bird.routes()?;
        let held: BTreeSet<&str> = at_bird.iter().map(|r| r.prefix.as_str()).collect();
        let missing: Vec<_> = expected.difference(&held).take(5).collect();
        let extra: Vec<_> = held.difference(&expected).take(5).collect();
        ensure!(
            missing.is_empty() && extra.is_empty(),
            "BIRD differs from plugin test: missing {missing:?}, extra {extra:?}"
        );
        if let Some(tag) = tag {
            for route in &at_bird {
                let modified = verdicts[&route.prefix].0 == "modify";
                let tagged = route.communities.iter().any(|c| c == tag);
                ensure!(
                    modified == tagged,
                    "{}: plugin test said {:?}, BIRD has communities {:?}",
                    route.prefix,
                    verdicts[&route.prefix].1,
                    route.communities
                );
            }
        }
        rig.step(format!(
            "all {} routes at BIRD are the ones plugin test accepted or modified, tags alike",
            at_bird.len()
        ));
        rig.assert_session_untouched()
    });
    counts
}

/// community-tagger tags the first 30,000 of 100,000 /24s: `modify` for those,
/// `accept` for the rest, and BIRD receives the tag on exactly the modified ones.
#[test]
fn plugin_test_tagger_verdicts_are_what_bird_receives() {
    let base = Ipv4Addr::new(30, 0, 0, 0);
    let lines = (0..ROUTES)
        .map(|i| format!("{} next-hop self", slash24(base, i)))
        .collect();
    let counts = daemon_and_plugin_test_agree(
        "plugin-test-tagger",
        PluginBlock(223),
        "community-tagger",
        &[
            ("prefixes", &cover_slash24s(base, 0, 30_000).join(",")),
            ("communities", "65001:100"),
        ],
        lines,
        Some("65001:100"),
    );
    assert_eq!(counts, [70_000, 0, 30_000]);
}

/// as-path-filter rejects every seventh route (its AS path holds a denied AS) and
/// every route whose path is longer than 3: `reject` for those, and BIRD never
/// receives them.
#[test]
fn plugin_test_as_path_filter_verdicts_are_what_bird_receives() {
    let base = Ipv4Addr::new(40, 0, 0, 0);
    let lines = (0..ROUTES)
        .map(|i| {
            let path = match i % 7 {
                0 => "64666 65010",
                3 => "65010 65011 65012 65013",
                _ => "65010",
            };
            format!("{} next-hop self as-path [ {path} ]", slash24(base, i))
        })
        .collect();
    let counts = daemon_and_plugin_test_agree(
        "plugin-test-as-path",
        PluginBlock(224),
        "as-path-filter",
        &[("deny-asns", "64666"), ("max-length", "3")],
        lines,
        None,
    );
    let rejected = (0..ROUTES).filter(|i| matches!(i % 7, 0 | 3)).count();
    assert_eq!(counts, [ROUTES as usize - rejected, rejected, 0]);
}

/// `plugin inspect` names the world of a component in each language, says it fits, and
/// refuses a file that is not a component with exit status 1.
#[test]
fn plugin_inspect_names_world_and_fit() -> Result<()> {
    for (name, world) in [
        ("tcp-check", "healthcheck"),
        ("tcp-check-py", "healthcheck"),
        ("tcp-check-js", "healthcheck"),
        ("tcp-check-c", "healthcheck"),
        ("bogon-filter-c", "policy"),
        ("route-stats-js", "exporter"),
    ] {
        let out = Command::new(binary()?)
            .args(["plugin", "inspect"])
            .arg(component(name)?)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(out.status.success(), "inspect {name}: {text}");
        ensure!(
            text.contains(&format!("world: {world}\n")) && text.contains("fits: yes"),
            "inspect {name}: {text}"
        );
    }
    let dir = WorkDir::new("plugin-inspect")?;
    let not_a_component = dir.path().join("junk.wasm");
    std::fs::write(&not_a_component, b"\0asm junk")?;
    let out = Command::new(binary()?)
        .args(["plugin", "inspect"])
        .arg(&not_a_component)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(1) && text.contains("not a component this host can load"),
        "inspect junk: {:?} {text}",
        out.status
    );
    Ok(())
}

/// `plugin test` with its exit status as a plugin's CI reads it: a feed recorded by the
/// `exabgp-json` exporter (ExaBGP's JSON lines) replays into `route-stats` and its
/// JavaScript twin with the metrics of the original events; a probe outside the grants
/// is denied and misses `--expect up` (exit 1); a policy past its deadline faults (exit
/// 1); a route file with a bad line is an input error (exit 2).
#[test]
fn plugin_test_replays_recorded_feeds_and_fails_as_ci_expects() -> Result<()> {
    let dir = WorkDir::new("plugin-test-exit")?;
    let run = |args: &[&str]| -> Result<(Option<i32>, String)> {
        let out = Command::new(binary()?)
            .args(["plugin", "test"])
            .args(args)
            .output()?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ))
    };
    let path = |p: &std::path::Path| p.display().to_string();
    let events = dir.path().join("events.txt");
    std::fs::write(
        &events,
        "neighbor 192.0.2.1 peer-as 65001 local-as 65000\n\
         state established\n\
         received announce 10.0.0.0/24 next-hop 192.0.2.1 as-path [ 65001 ] community [ 65001:1 ]\n\
         received announce 200.0.1.0/24 next-hop 192.0.2.1\n\
         received announce 2001:db8:1::/48 next-hop 2001:db8::1\n\
         received withdraw 10.0.0.0/24\n\
         end-of-rib ipv4-unicast\n",
    )?;
    let recorded = dir.path().join("feed.jsonl");
    std::fs::write(&recorded, "")?;
    let (code, text) = run(&[
        &path(&component("exabgp-json")?),
        "--world",
        "exporter",
        "--events",
        &path(&events),
        "--setting",
        &format!("path={}", path(&recorded)),
        "--grant",
        &format!("append-files={}", path(&recorded)),
    ])?;
    ensure!(code == Some(0), "recording: {text}");
    let metrics = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("metric "))
            .map(str::to_owned)
            .collect()
    };
    let (code, direct) = run(&[
        &path(&component("route-stats")?),
        "--world",
        "exporter",
        "--events",
        &path(&events),
    ])?;
    ensure!(code == Some(0) && !metrics(&direct).is_empty(), "{direct}");
    for exporter in ["route-stats", "route-stats-js"] {
        let (code, replayed) = run(&[
            &path(&component(exporter)?),
            "--world",
            "exporter",
            "--events",
            &path(&recorded),
        ])?;
        ensure!(code == Some(0), "{exporter}: {replayed}");
        ensure!(
            metrics(&replayed) == metrics(&direct),
            "{exporter} on the recorded feed: {:?}, on the events: {:?}",
            metrics(&replayed),
            metrics(&direct)
        );
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    let (code, text) = run(&[
        &path(&component("tcp-check-c")?),
        "--world",
        "healthcheck",
        "--setting",
        &format!("address={address}"),
        "--checks",
        "1",
        "--interval",
        "100ms",
        "--expect",
        "up",
    ])?;
    ensure!(
        code == Some(1) && text.contains("check 1: down: denied:"),
        "an ungranted probe: {code:?} {text}"
    );

    let routes = dir.path().join("routes.txt");
    std::fs::write(&routes, "10.0.0.0/24 next-hop 192.0.2.1\n")?;
    let (code, text) = run(&[
        &path(&component("fixture-policy")?),
        "--world",
        "policy",
        "--routes",
        &path(&routes),
        "--setting",
        "mode=loop",
        "--grant",
        "deadline=20ms",
    ])?;
    ensure!(
        code == Some(1) && text.contains("deadline of 20ms exceeded"),
        "a runaway policy: {code:?} {text}"
    );
    std::fs::write(&routes, "10.0.0.0/24 next-hop 192.0.2.1\n10.0.0.0/33\n")?;
    let (code, text) = run(&[
        &path(&component("bogon-filter")?),
        "--world",
        "policy",
        "--routes",
        &path(&routes),
    ])?;
    ensure!(
        code == Some(2) && text.contains("routes.txt:2:"),
        "a bad route file: {code:?} {text}"
    );
    Ok(())
}
