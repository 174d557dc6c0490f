//! The `exporter` world through the runtime alone (no daemon): a new instance starts
//! from the snapshot the daemon hands it, followed by the batches delivered after it
//! and none before; a slow exporter loses batches, counted, and is told `lagged`;
//! plugin metrics are capped by `max-series`; HTTP and TCP outside the grants are
//! denied and counted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{component, eventually, runtime, start};
use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_runtime::export::{
    EventBatch, ExportEvent, RouteDirection, RouteEvent, Session, SessionState,
};
use wasmbgp_runtime::{GrantedFile, PluginEvent, PluginSpec, World};

const T: Duration = Duration::from_secs(20);

fn exporter(name: &str, component_name: &str, settings: &[(&str, &str)]) -> PluginSpec {
    let mut spec = PluginSpec::new(name, World::Exporter, component(component_name));
    spec.settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec
}

fn session(last: u8) -> Session {
    Session {
        neighbor: format!("192.0.2.{last}").parse().unwrap(),
        peer_as: 65002,
        local_as: 65001,
    }
}

fn up(s: Session) -> Arc<ExportEvent> {
    Arc::new(ExportEvent::Session {
        session: s,
        old: SessionState::OpenConfirm,
        new: SessionState::Established,
        reason: String::new(),
    })
}

fn routes(s: Session, first: u32, n: u32) -> Arc<ExportEvent> {
    let attrs = Arc::new(PathAttributes::default());
    Arc::new(ExportEvent::Routes(RouteEvent {
        session: s,
        direction: RouteDirection::Received,
        announced: (first..first + n)
            .map(|i| {
                let p: Prefix = format!("20.{}.{}.0/24", i >> 8, i & 0xff).parse().unwrap();
                (p, attrs.clone())
            })
            .collect(),
        withdrawn: Vec::new(),
    }))
}

/// Waits for the exporter's request for a snapshot.
async fn snapshot_wanted(running: &mut common::Running) {
    match running.next(T).await {
        PluginEvent::SnapshotWanted { .. } => {}
        other => panic!("expected SnapshotWanted, got {other:?}"),
    }
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn recorder(dir: &std::path::Path, settings: &[(&str, &str)]) -> (PluginSpec, std::path::PathBuf) {
    let file = dir.join("events.jsonl");
    let path = file.display().to_string();
    let mut all = vec![("path", path.as_str())];
    all.extend_from_slice(settings);
    let mut spec = exporter("rec", "fixture-exporter", &all);
    spec.grants.append_files = vec![GrantedFile {
        name: path.clone(),
        path: file.clone(),
    }];
    (spec, file)
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmbgp-rt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_deltas_with_no_gap_and_no_duplicate() {
    let dir = temp("snapshot");
    let (spec, file) = recorder(&dir, &[]);
    let rt = runtime();
    let mut running = start(&rt, spec);
    snapshot_wanted(&mut running).await;
    let client = running.handle.exporter().expect("an exporter").clone();
    // Delivered before the snapshot was taken: the snapshot covers it.
    assert!(client.deliver(vec![routes(session(1), 0, 3)]));
    let snapshot: EventBatch = vec![up(session(1)), routes(session(1), 0, 5)];
    client.snapshot(snapshot);
    // After it: delivered as changes.
    assert!(client.deliver(vec![routes(session(1), 100, 2)]));
    eventually(T, "the snapshot and the delta", || {
        lines(&file)
            .iter()
            .filter(|l| l["type"] == "announce")
            .count()
            == 7
    })
    .await;
    let got = lines(&file);
    let kinds: Vec<&str> = got.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "session");
    let end = kinds
        .iter()
        .position(|k| *k == "end-of-snapshot")
        .expect("end-of-snapshot");
    assert_eq!(end, 6, "{kinds:?}");
    assert_eq!(got[7]["prefix"], "20.0.100.0/24");
    assert_eq!(running.handle.status().events_delivered, 1 + 5 + 2);
    running.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_announcements_and_withdrawals_reach_the_exporter() {
    use wasmbgp_bgp::words;
    let flow = |line: &str| {
        let f = words::flow::parse_flow_route(&words::tokenize(line), &PathAttributes::default())
            .unwrap();
        (Prefix::Flow(f.rule), Arc::new(f.attrs))
    };
    let discard = flow("destination 192.0.2.10/32 protocol udp destination-port =53 discard");
    let redirect =
        flow("destination 198.51.100.0/24 source 203.0.113.0/24 redirect 65001:999 mark 10");
    let v6 = flow("destination 2001:db8::1/128 next-header tcp rate-limit 9600");
    let unicast: Prefix = "10.0.0.0/8".parse().unwrap();
    let event = |direction, announced: Vec<(Prefix, Arc<PathAttributes>)>, withdrawn| {
        Arc::new(ExportEvent::Routes(RouteEvent {
            session: session(1),
            direction,
            announced,
            withdrawn,
        }))
    };

    let dir = temp("flows");
    let (spec, file) = recorder(&dir, &[]);
    let rt = runtime();
    let mut running = start(&rt, spec);
    snapshot_wanted(&mut running).await;
    let client = running.handle.exporter().unwrap().clone();
    // The snapshot holds a rule already received.
    client.snapshot(vec![
        up(session(1)),
        event(RouteDirection::Received, vec![v6.clone()], vec![]),
    ]);
    let attrs = Arc::new(PathAttributes::default());
    assert!(client.deliver(vec![
        event(
            RouteDirection::ReceivedPrePolicy,
            vec![
                discard.clone(),
                (unicast.clone(), attrs.clone()),
                redirect.clone()
            ],
            vec![],
        ),
        // The import policy rejected the first rule.
        event(
            RouteDirection::Received,
            vec![redirect.clone(), (unicast, attrs)],
            vec![],
        ),
        event(
            RouteDirection::Received,
            vec![],
            vec![redirect.0.clone(), v6.0.clone()],
        ),
    ]));
    eventually(T, "the withdrawals", || {
        lines(&file)
            .iter()
            .filter(|l| l["type"] == "withdraw-flow")
            .count()
            == 2
    })
    .await;
    let got = lines(&file);
    let flows: Vec<(String, String, String, Vec<String>)> = got
        .iter()
        .filter(|l| l["type"] == "announce-flow" || l["type"] == "withdraw-flow")
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_string(),
                l["direction"].as_str().unwrap().to_string(),
                l["rule"].as_str().unwrap().to_string(),
                l["actions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let line = |kind: &str, direction: &str, rule: &str, actions: &[&str]| {
        (
            kind.to_string(),
            direction.to_string(),
            rule.to_string(),
            actions.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        )
    };
    let rule_v6 = "destination 2001:db8::1/128 next-header =tcp";
    let rule_discard = "destination 192.0.2.10/32 protocol =udp destination-port =53";
    let rule_redirect = "destination 198.51.100.0/24 source 203.0.113.0/24";
    assert_eq!(
        flows,
        [
            line("announce-flow", "received", rule_v6, &["rate-limit 9600"]),
            line(
                "announce-flow",
                "received-pre-policy",
                rule_discard,
                &["discard"]
            ),
            line(
                "announce-flow",
                "received-pre-policy",
                rule_redirect,
                &["redirect 65001:999", "mark 10"]
            ),
            line(
                "announce-flow",
                "received",
                rule_redirect,
                &["redirect 65001:999", "mark 10"]
            ),
            line("withdraw-flow", "received", rule_redirect, &[]),
            line("withdraw-flow", "received", rule_v6, &[]),
        ]
    );
    let families: Vec<&str> = got
        .iter()
        .filter(|l| l["type"] == "withdraw-flow")
        .map(|l| l["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["ipv4-flowspec", "ipv6-flowspec"]);
    // The unicast route is still reported as before, beside the rules.
    assert_eq!(
        got.iter()
            .filter(|l| l["type"] == "announce" && l["prefix"] == "10.0.0.0/8")
            .count(),
        2
    );
    // One per route, rules included (the snapshot: the session and one rule).
    assert_eq!(running.handle.status().events_delivered, 2 + 3 + 2 + 2);
    running.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_exporter_loses_batches_counts_them_and_is_told_lagged() {
    let dir = temp("stuck");
    let (mut spec, file) = recorder(&dir, &[("mode", "stuck"), ("stuck-ms", "40")]);
    spec.queue = 1;
    spec.grants.deadline = Duration::from_millis(100);
    let rt = runtime();
    let mut running = start(&rt, spec);
    snapshot_wanted(&mut running).await;
    let client = running.handle.exporter().unwrap().clone();
    client.snapshot(Vec::new());
    // Far faster than 40 ms per call: most of these cannot fit in a queue of one.
    let started = std::time::Instant::now();
    let mut dropped = 0;
    for i in 0..50 {
        if !client.deliver(vec![routes(session(1), i * 10, 10)]) {
            dropped += 1;
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "delivery waited"
    );
    assert!(dropped > 0, "nothing was dropped");
    // One more after a pause carries the count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client.deliver(vec![routes(session(1), 1000, 1)]));
    eventually(T, "a lagged line", || {
        lines(&file).iter().any(|l| l["type"] == "lagged")
    })
    .await;
    let status = running.handle.status();
    assert_eq!(status.events_dropped, dropped * 10, "{status:?}");
    let lost: u64 = lines(&file)
        .iter()
        .filter(|l| l["type"] == "lagged")
        .map(|l| l["lost"].as_u64().unwrap())
        .sum();
    assert_eq!(lost, dropped * 10);
    running.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_metrics_are_served_and_capped_by_max_series() {
    let mut spec = exporter("stats", "route-stats", &[]);
    spec.grants.max_series = 3;
    let rt = runtime();
    let mut running = start(&rt, spec);
    snapshot_wanted(&mut running).await;
    let client = running.handle.exporter().unwrap().clone();
    client.snapshot(Vec::new());
    // Three series per neighbor: the first neighbor fits, the second does not.
    client.deliver(vec![up(session(1)), routes(session(1), 0, 4)]);
    client.deliver(vec![up(session(2)), routes(session(2), 0, 2)]);
    let source = running.handle.status_source();
    eventually(T, "routes_active for the first neighbor", || {
        source.metrics().iter().any(|m| {
            m.name == "routes_active"
                && m.series.iter().any(|(labels, value)| {
                    labels == &["192.0.2.1".to_string()]
                        && *value == wasmbgp_runtime::MetricValue::Number(4.0)
                })
        })
    })
    .await;
    eventually(T, "refused series", || {
        running.handle.status().metric_series_refused > 0
    })
    .await;
    let status = running.handle.status();
    assert_eq!(status.metric_series, 3, "{status:?}");
    let served: usize = source.metrics().iter().map(|m| m.series.len()).sum();
    assert_eq!(served, 3, "the cap let more series through");
    running.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_outside_tcp_out_is_denied_and_counted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let collector = listener.local_addr().unwrap().to_string();
    // Granted another port only.
    let mut spec = exporter("bmp", "bmp", &[("collector", collector.as_str())]);
    spec.grants.tcp_out = vec!["127.0.0.1:9".into()];
    let rt = runtime();
    let mut running = start(&rt, spec);
    snapshot_wanted(&mut running).await;
    let client = running.handle.exporter().unwrap().clone();
    client.snapshot(vec![up(session(1))]);
    for i in 0..20 {
        client.deliver(vec![routes(session(1), i, 1)]);
        if running.handle.status().denied > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        running.handle.status().denied > 0,
        "{:?}",
        running.handle.status()
    );
    assert!(
        listener.accept().is_err(),
        "a denied connection reached the collector"
    );
    running.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_outside_http_out_is_denied_and_counted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let mut spec = exporter("hook", "webhook-alert", &[("url", url.as_str())]);
    spec.grants.http_out = vec![format!("http://{}/other", listener.local_addr().unwrap())];
    let rt = runtime();
    let mut running = start(&rt, spec);
    snapshot_wanted(&mut running).await;
    let client = running.handle.exporter().unwrap().clone();
    client.snapshot(vec![up(session(1))]);
    let down = Arc::new(ExportEvent::Session {
        session: session(1),
        old: SessionState::Established,
        new: SessionState::Idle,
        reason: "test".into(),
    });
    client.deliver(vec![down]);
    for i in 0..30 {
        if running.handle.status().denied > 0 {
            break;
        }
        // Later batches give the plugin a chance to retry.
        client.deliver(vec![routes(session(1), i, 1)]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        running.handle.status().denied > 0,
        "{:?}",
        running.handle.status()
    );
    assert!(
        listener.accept().is_err(),
        "a denied request reached the server"
    );
    running.handle.stop().await;
}
