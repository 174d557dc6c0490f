//! The `policy` world through the runtime alone (no daemon): verdicts come back in the
//! caller's order, faults fail the batch in hand and the plugin restarts, and a policy
//! that is back, reloaded or fed new data files reports `PolicyChanged`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{component, runtime, start};
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::{Prefix, words};
use wasmbgp_runtime::{
    Direction, GrantedFile, PluginEvent, PluginSpec, PluginState, PolicySession, Verdict, World,
};

const T: Duration = Duration::from_secs(10);

fn policy(name: &str, component_name: &str, settings: &[(&str, &str)]) -> PluginSpec {
    let mut spec = PluginSpec::new(name, World::Policy, component(component_name));
    spec.settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec
}

fn session() -> PolicySession {
    PolicySession {
        neighbor: "127.0.0.2".parse().unwrap(),
        peer_as: 65002,
        local_as: 65001,
    }
}

/// The borrowed form `evaluate` takes.
fn refs(routes: &[(Prefix, Arc<PathAttributes>)]) -> Vec<(Prefix, &PathAttributes)> {
    routes.iter().map(|(p, a)| (p.clone(), &**a)).collect()
}

fn routes(lines: &[&str]) -> Vec<(Prefix, Arc<PathAttributes>)> {
    lines
        .iter()
        .map(|line| {
            let r = words::parse_route(&words::tokenize(line), &PathAttributes::default()).unwrap();
            (r.prefix, Arc::new(r.attrs))
        })
        .collect()
}

/// `n` distinct /24s sharing one attribute set.
fn many(n: u32) -> Vec<(Prefix, Arc<PathAttributes>)> {
    let attrs = Arc::new(PathAttributes::default());
    (0..n)
        .map(|i| {
            let p: Prefix = format!("20.{}.{}.0/24", i >> 8, i & 0xff).parse().unwrap();
            (p, attrs.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_come_back_in_the_callers_order() {
    let runtime = runtime();
    let p = start(
        &runtime,
        policy(
            "tagger",
            "community-tagger",
            &[
                ("prefixes", "10.0.0.0/8, 2001:db8::/32"),
                ("communities", "65001:7"),
            ],
        ),
    );
    let client = p.handle.policy().expect("a policy client").clone();
    // IPv6 first: the columns put IPv4 first, the verdicts must not.
    let input = routes(&[
        "2001:db8:1::/48 next-hop 2001:db8::1",
        "11.0.0.0/8",
        "10.1.0.0/16 med 5",
        "2001:db9::/32 next-hop 2001:db8::1",
    ]);
    let v = client
        .evaluate(Direction::Export, session(), &refs(&input))
        .await
        .unwrap();
    assert_eq!(v.len(), 4);
    let tagged = |i: usize| match v.get(i) {
        Verdict::Replace(a) => a.communities.contains(&((65001 << 16) | 7)),
        _ => false,
    };
    assert!(tagged(0) && tagged(2), "{v:?}");
    assert_eq!(v.get(1), Verdict::Accept);
    assert_eq!(v.get(3), Verdict::Accept);
    if let Verdict::Replace(a) = v.get(2) {
        assert_eq!(a.med, Some(5), "the rest of the attributes is kept");
    }
    let status = p.handle.status();
    assert_eq!((status.routes_modified, status.routes_accepted), (2, 2));
    assert_eq!(status.state, PluginState::Running);
}

/// FlowSpec routes in ExaBGP's words (`flow route` without the keywords).
fn flows(lines: &[&str]) -> Vec<(Prefix, Arc<PathAttributes>)> {
    lines
        .iter()
        .map(|line| {
            let f =
                words::flow::parse_flow_route(&words::tokenize(line), &PathAttributes::default())
                    .unwrap();
            (Prefix::Flow(f.rule), Arc::new(f.attrs))
        })
        .collect()
}

/// The traffic actions of an attribute set, in the host's words.
fn actions(attrs: &PathAttributes) -> Vec<String> {
    attrs
        .extended_communities
        .iter()
        .filter_map(wasmbgp_bgp::packet::flowspec::TrafficAction::from_community)
        .map(|a| a.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_routes_are_judged_like_any_route() {
    let runtime = runtime();
    // Rules to 192.0.2.0/24 rejected, the other rules marked DSCP 10, prefixes accepted.
    let p = start(
        &runtime,
        policy(
            "flows",
            "fixture-policy",
            &[
                ("mode", "accept"),
                ("reject-flows-to", "192.0.2.0/24"),
                ("flow-mark", "10"),
            ],
        ),
    );
    let client = p.handle.policy().unwrap().clone();
    let mut input = flows(&[
        "destination 192.0.2.10/32 protocol udp destination-port =53 discard",
        "destination 198.51.100.0/24 protocol tcp rate-limit 9600",
    ]);
    input.insert(1, routes(&["10.0.0.0/8 med 5"]).remove(0));
    input.extend(flows(&[
        "destination 2001:db8::1/128 next-header tcp discard",
    ]));
    input.extend(routes(&["2001:db8::/32 next-hop 2001:db8::1"]));
    for direction in [Direction::Import, Direction::Export] {
        let v = client
            .evaluate(direction, session(), &refs(&input))
            .await
            .unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(
            v.get(0),
            Verdict::Reject,
            "{direction:?}: the rule to 192.0.2.10"
        );
        assert_eq!(v.get(1), Verdict::Accept, "{direction:?}: 10.0.0.0/8");
        assert_eq!(v.get(4), Verdict::Accept, "{direction:?}: 2001:db8::/32");
        for (i, own) in [(2, "rate-limit 9600"), (3, "discard")] {
            let Verdict::Replace(a) = v.get(i) else {
                panic!("{direction:?}: route {i} is not rewritten: {v:?}")
            };
            assert_eq!(actions(a), [own, "mark 10"], "{direction:?}: route {i}");
            assert_eq!(a.next_hop, None, "{direction:?}: a rule has no next hop");
        }
    }
    let status = p.handle.status();
    assert_eq!(
        (
            status.routes_accepted,
            status.routes_rejected,
            status.routes_modified
        ),
        (4, 2, 4)
    );

    // A policy written for prefixes (community-tagger) accepts rules unchanged, and the
    // Python and JavaScript bogon filters answer for them too.
    let tagger = start(
        &runtime,
        policy(
            "tagger",
            "community-tagger",
            &[("prefixes", "0.0.0.0/0, ::/0"), ("communities", "65001:7")],
        ),
    );
    let client = tagger.handle.policy().unwrap().clone();
    let v = client
        .evaluate(Direction::Export, session(), &refs(&input))
        .await
        .unwrap();
    let got: Vec<bool> = (0..5)
        .map(|i| matches!(v.get(i), Verdict::Replace(_)))
        .collect();
    assert_eq!(got, [false, true, false, false, true], "{v:?}");
    assert_eq!(v.get(0), Verdict::Accept);

    for twin in ["bogon-filter-py", "bogon-filter-js", "bogon-filter-c"] {
        let bogons = start(&runtime, policy("bogons", twin, &[]));
        let client = bogons.handle.policy().unwrap().clone();
        let v = client
            .evaluate(Direction::Import, session(), &refs(&input))
            .await
            .unwrap();
        let got: Vec<Verdict> = (0..5).map(|i| v.get(i)).collect();
        assert_eq!(
            got,
            [
                Verdict::Accept,
                Verdict::Reject, // 10.0.0.0/8
                Verdict::Accept,
                Verdict::Accept,
                Verdict::Reject, // 2001:db8::/32, documentation
            ],
            "{twin}"
        );
        // A full batch of prefixes that are no bogons.
        let full = many(4096);
        let started = std::time::Instant::now();
        let v = client
            .evaluate(Direction::Import, session(), &refs(&full))
            .await
            .unwrap();
        eprintln!("{twin}: 4,096 routes on import in {:?}", started.elapsed());
        assert!((0..v.len()).all(|i| v.get(i) == Verdict::Accept), "{twin}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_larger_than_one_call_are_split() {
    let runtime = runtime();
    let p = start(
        &runtime,
        policy("med", "fixture-policy", &[("mode", "med"), ("med", "42")]),
    );
    let client = p.handle.policy().unwrap().clone();
    let input = many(10_000);
    let v = client
        .evaluate(Direction::Import, session(), &refs(&input))
        .await
        .unwrap();
    assert_eq!(v.len(), 10_000);
    assert!((0..v.len()).all(|i| matches!(v.get(i), Verdict::Replace(a) if a.med == Some(42))));
    assert!(p.handle.status().calls >= 4, "{:?}", p.handle.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_fails_the_batch_and_the_policy_comes_back() {
    let runtime = runtime();
    let mut p = start(
        &runtime,
        policy(
            "trap",
            "fixture-policy",
            &[("mode", "trap-every"), ("n", "1000")],
        ),
    );
    let client = p.handle.policy().unwrap().clone();
    // 600 routes: fine; 600 more cross 1000: the batch traps.
    let first = client
        .evaluate(Direction::Import, session(), &refs(&many(600)))
        .await;
    assert!(first.is_ok());
    let second = client
        .evaluate(Direction::Import, session(), &refs(&many(600)))
        .await
        .unwrap_err();
    assert!(second.0.contains("evaluate"), "{second}");
    match p.next(T).await {
        PluginEvent::Failed { error, .. } => assert!(
            error.contains("trap") || error.contains("unreachable"),
            "{error}"
        ),
        other => panic!("expected the fault, got {other:?}"),
    }
    // Back after the backoff, with a fresh count, and it says so.
    match p.next(T).await {
        PluginEvent::PolicyChanged { plugin } => assert_eq!(plugin, "trap"),
        other => panic!("expected PolicyChanged, got {other:?}"),
    }
    assert!(
        client
            .evaluate(Direction::Import, session(), &refs(&many(600)))
            .await
            .is_ok()
    );
    let status = p.handle.status();
    assert_eq!(status.restarts, 1);
    assert_eq!(status.routes_unjudged, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonsense_and_runaway_guests_are_faults() {
    let runtime = runtime();
    let p = start(
        &runtime,
        policy("bad", "fixture-policy", &[("mode", "bad-verdicts")]),
    );
    let client = p.handle.policy().unwrap().clone();
    let err = client
        .evaluate(Direction::Export, session(), &refs(&many(10)))
        .await
        .unwrap_err();
    assert!(err.0.contains("9 verdicts for 10 routes"), "{err}");

    let mut spec = policy("spin", "fixture-policy", &[("mode", "loop")]);
    spec.grants.deadline = Duration::from_millis(50);
    let mut spin = start(&runtime, spec);
    let client = spin.handle.policy().unwrap().clone();
    let err = client
        .evaluate(Direction::Export, session(), &refs(&many(10)))
        .await
        .unwrap_err();
    assert!(err.0.contains("deadline"), "{err}");
    assert!(matches!(spin.next(T).await, PluginEvent::Failed { .. }));
    // While it waits to restart, batches are answered at once.
    let started = std::time::Instant::now();
    assert!(
        client
            .evaluate(Direction::Export, session(), &refs(&many(10)))
            .await
            .is_err()
    );
    assert!(started.elapsed() < Duration::from_millis(40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_reach_init_under_the_name_granted() {
    let runtime = runtime();
    let dir = tempdir();
    let file = dir.join("vrps.json");
    std::fs::write(
        &file,
        r#"{"roas": [{"asn": "AS65010", "prefix": "20.0.0.0/16", "maxLength": 24}]}"#,
    )
    .unwrap();
    let name = file.display().to_string();
    let mut spec = policy("rov", "rpki-rov", &[("vrps", &name)]);
    spec.grants.files = vec![GrantedFile {
        name: name.clone(),
        path: file.clone(),
    }];
    let mut p = start(&runtime, spec.clone());
    let client = p.handle.policy().unwrap().clone();
    let input = routes(&[
        "20.0.1.0/24 as-path [ 65002 65010 ]", // valid
        "20.0.2.0/24 as-path [ 65002 65011 ]", // invalid: origin
        "20.0.0.0/25 as-path [ 65002 65010 ]", // invalid: longer than maxLength
        "30.0.0.0/24 as-path [ 65002 65011 ]", // not found
    ]);
    let v = client
        .evaluate(Direction::Import, session(), &refs(&input))
        .await
        .unwrap();
    let got: Vec<Verdict> = (0..4).map(|i| v.get(i)).collect();
    assert_eq!(
        got,
        vec![
            Verdict::Accept,
            Verdict::Reject,
            Verdict::Reject,
            Verdict::Accept
        ]
    );

    // New contents on reload: the policy reports the change and judges by them.
    std::fs::write(
        &file,
        r#"{"roas": [{"asn": "AS65011", "prefix": "20.0.0.0/16", "maxLength": 25}]}"#,
    )
    .unwrap();
    tokio::task::block_in_place(|| p.handle.reload(spec.clone()))
        .unwrap()
        .outcome()
        .await
        .unwrap();
    loop {
        if let PluginEvent::PolicyChanged { .. } = p.next(T).await {
            break;
        }
    }
    let v = client
        .evaluate(Direction::Import, session(), &refs(&input))
        .await
        .unwrap();
    let got: Vec<Verdict> = (0..4).map(|i| v.get(i)).collect();
    assert_eq!(
        got,
        vec![
            Verdict::Reject,
            Verdict::Accept,
            Verdict::Reject,
            Verdict::Accept
        ]
    );

    // A broken file is refused at reload: the running instance keeps its verdicts,
    // and a later restart would still start from the last good contents.
    std::fs::write(&file, r#"{"roas": [ broken"#).unwrap();
    let err = tokio::task::block_in_place(|| p.handle.reload(spec))
        .unwrap()
        .outcome()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("init refused"), "{err}");
    let v = client
        .evaluate(Direction::Import, session(), &refs(&input))
        .await
        .unwrap();
    assert_eq!(v.get(1), Verdict::Accept);
    assert_eq!(p.handle.status().state, PluginState::Running);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_data_file_or_a_healthcheck_component_is_refused() {
    let runtime = runtime();
    let mut spec = policy("rov", "rpki-rov", &[("vrps", "/nonexistent/vrps.json")]);
    spec.grants.files = vec![GrantedFile {
        name: "/nonexistent/vrps.json".into(),
        path: "/nonexistent/vrps.json".into(),
    }];
    let err = runtime.check(&spec).unwrap_err();
    assert!(
        format!("{err:#}").contains("/nonexistent/vrps.json"),
        "{err:#}"
    );
    let wrong = policy("p", "tcp-check", &[]);
    let err = runtime.check(&wrong).unwrap_err();
    assert!(
        format!("{err:#}").contains("not a policy plugin"),
        "{err:#}"
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wasmbgp-policies-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
