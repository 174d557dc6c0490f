//! Fault containment and the sandbox, with the fault fixture component
//! (tests/fixtures/plugins/faulty): denied probes, WASI ambient authority,
//! runaway loops, memory caps, panics, restarts with backoff, state that
//! survives restarts and reloads, the routes interface, `Runtime::check`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wasmbgp_bgp::NextHop;
use wasmbgp_runtime::{Health, OnFailure, PluginEvent, PluginState, World};

const T: Duration = Duration::from_secs(5);

fn faulty(name: &str, mode: &str, extra: &[(&str, &str)]) -> wasmbgp_runtime::PluginSpec {
    let mut settings = vec![("mode", mode)];
    settings.extend_from_slice(extra);
    let mut spec = spec(name, "fixture-faulty", &settings);
    spec.rise = 1;
    spec.fall = 1;
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_outside_grant_is_denied_and_never_sent() {
    let runtime = runtime();
    let victim = Listener::bind("127.0.0.1:0").await;
    let granted = Listener::bind("127.0.0.1:0").await;
    let target = victim.addr.to_string();
    let mut spec = faulty("nosy", "probe", &[("target", &target)]);
    spec.grants.tcp = vec![granted.addr.to_string()];
    let mut p = start(&runtime, spec);

    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(reason.contains("denied"), "{reason}");
    eventually(T, "several denied attempts", || {
        p.handle.status().denied >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(victim.count(), 0, "the denied target saw a connection");
    assert_eq!(granted.count(), 0);
    assert_eq!(
        p.handle.status().restarts,
        0,
        "a denial is an answer, not a fault"
    );
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_files_env_and_sockets_yield_nothing() {
    let runtime = runtime();
    let listener = Listener::bind("127.0.0.1:0").await;
    let target = listener.addr.to_string();
    // Even with the target in the tcp grant, raw WASI sockets stay closed.
    let mut spec = faulty("ambient", "wasi", &[("target", &target)]);
    spec.grants.tcp = vec![target.clone()];
    let mut p = start(&runtime, spec);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Up, "the fixture reported a leak: {reason}");
    assert_eq!(reason, "wasi gave nothing");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(listener.count(), 0);
    assert!(!common::root().join("host/runtime/leak.txt").exists());
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_is_interrupted_and_restarted_with_backoff() {
    let runtime = runtime();
    let mut spec = faulty("spin", "loop", &[]);
    spec.grants.deadline = Duration::from_millis(50);
    spec.on_failure = OnFailure::Keep;
    let started = Instant::now();
    let mut p = start(&runtime, spec);

    let mut times = Vec::new();
    for _ in 0..4 {
        match p.next(T).await {
            PluginEvent::Failed {
                error, on_failure, ..
            } => {
                assert!(error.contains("deadline"), "{error}");
                assert_eq!(on_failure, OnFailure::Keep);
            }
            other => panic!("unexpected {other:?}"),
        }
        times.push(started.elapsed());
    }
    // Each runaway call is interrupted once its 50 ms deadline is spent:
    // within a tick or two (10 ms each) of it, with slack for a loaded box.
    let status = p.handle.status();
    eprintln!(
        "runaway check interrupted after {} µs (p99; deadline 50 ms)",
        status.p99_us
    );
    // (Half the calls are the quick `init`s; the p99 is a runaway check.)
    assert!(status.p99_us >= 50_000, "{status:?}");
    assert!(status.p99_us < 50_000 + 100_000, "{status:?}");
    assert!(
        times[0] < Duration::from_millis(50 + 450),
        "first interrupt after {:?}",
        times[0]
    );
    // Backoff doubles: 100, 200, 400 ms between restarts, plus the 50 ms
    // deadline (less some jitter in when this test sees each event).
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("gaps between failures: {gaps:?}");
    assert!(gaps[0] >= Duration::from_millis(100), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(200), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(400), "{gaps:?}");
    assert!(gaps[2] > gaps[0], "{gaps:?}");

    let status = p.handle.status();
    assert_eq!(status.state, PluginState::Backoff);
    assert_eq!(status.restarts, 4);
    assert!(status.last_error.unwrap().contains("deadline"));

    // The fifth failure within a minute marks it failed (retried at 30 s).
    assert!(matches!(p.next(T).await, PluginEvent::Failed { .. }));
    assert_eq!(p.handle.status().state, PluginState::Failed);
    p.silent(Duration::from_millis(1500)).await;
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_past_the_memory_cap_traps() {
    let runtime = runtime();
    let mut spec = faulty("hog", "alloc", &[]);
    spec.grants.memory = 16 << 20;
    spec.grants.deadline = Duration::from_secs(2);
    let mut p = start(&runtime, spec);
    let error = p.failed(T).await;
    assert!(error.contains("trap"), "{error}");
    assert_eq!(p.handle.status().restarts, 1);
    // It is restarted (and fails again).
    let again = p.failed(T).await;
    assert!(again.contains("trap"), "{again}");
    assert_eq!(p.handle.status().restarts, 2);
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_traps_and_restarts() {
    let runtime = runtime();
    let mut p = start(&runtime, faulty("oops", "panic", &[]));
    let error = p.failed(T).await;
    assert!(error.contains("unreachable"), "{error}");
    let again = p.failed(T).await;
    assert!(again.contains("unreachable"), "{again}");
    let status = p.handle.status();
    assert_eq!(status.restarts, 2);
    assert!(matches!(status.state, PluginState::Backoff));
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_errors_reach_the_operator() {
    let runtime = runtime();
    let mut p = start(&runtime, faulty("misconfigured", "init-fail", &[]));
    let error = p.failed(T).await;
    assert!(
        error.contains("init refused the settings: init-fail mode"),
        "{error}"
    );
    let mut q = start(&runtime, spec("nosettings", "tcp-check", &[]));
    let error = q.failed(T).await;
    assert!(error.contains("setting `address` is required"), "{error}");
    p.handle.stop().await;
    q.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_restart_and_reload() {
    let runtime = runtime();
    let spec = faulty("counter", "counter", &[("panic-at", "3")]);
    let mut p = start(&runtime, spec.clone());
    let (health, reason) = p.health(T).await;
    assert_eq!((health, reason.as_str()), (Health::Up, "count=1"));
    // Check 2 passes silently, check 3 panics.
    let error = p.failed(T).await;
    assert!(error.contains("unreachable"), "{error}");
    // After the restart the verdict is re-stated, and the count went on.
    let (health, reason) = p.health(T).await;
    assert_eq!((health, reason.as_str()), (Health::Up, "count=4"));
    assert_eq!(p.handle.status().restarts, 1);

    // Reload (new settings): the state store is kept and, the health being
    // unchanged, no event is sent.
    let mut reloaded = spec.clone();
    reloaded.settings = vec![
        ("mode".into(), "counter".into()),
        ("panic-at".into(), "0".into()),
    ];
    let before = count(&p);
    p.handle.reload(reloaded).unwrap().outcome().await.unwrap();
    p.silent(Duration::from_millis(500)).await;
    let after = count(&p);
    assert!(after > before + 2, "count {before} -> {after}");
    assert_eq!(p.handle.status().health, Some(Health::Up));
    p.handle.stop().await;
}

fn count(p: &Running) -> u64 {
    let state = p.handle.state();
    String::from_utf8(state.get("count").cloned().unwrap_or_default())
        .unwrap()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_only_to_granted_neighbors_within_the_cap() {
    let runtime = runtime();
    let mut spec = faulty("announcer", "announce", &[("prefix", "100.10.0.100/32")]);
    spec.grants.neighbors = vec!["127.0.0.2".parse().unwrap()];
    spec.grants.max_routes = Some(1);
    let mut p = start(&runtime, spec);
    match p.next(T).await {
        PluginEvent::Announce {
            plugin,
            route,
            neighbors,
        } => {
            assert_eq!(plugin, "announcer");
            assert_eq!(route.prefix.to_string(), "100.10.0.100/32");
            assert_eq!(route.attrs.med, Some(100));
            assert_eq!(route.attrs.next_hop, Some(NextHop::Local));
            assert_eq!(route.attrs.communities, vec![(65000 << 16) | 1]);
            assert_eq!(
                neighbors,
                vec!["127.0.0.2".parse::<std::net::IpAddr>().unwrap()]
            );
        }
        other => panic!("expected an announcement, got {other:?}"),
    }
    assert_eq!(p.handle.status().routes_owned, 1);
    p.handle.stop().await;

    // No neighbor granted: denied, counted, nothing announced.
    let mut p = start(
        &runtime,
        faulty("loner", "announce", &[("prefix", "100.10.0.100/32")]),
    );
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down);
    assert!(reason.contains("denied"), "{reason}");
    assert!(p.handle.status().denied >= 1);
    p.handle.stop().await;

    // Over the cap: a second prefix is refused.
    let mut spec = faulty("greedy", "announce", &[("prefix", "100.10.0.101/32")]);
    spec.grants.neighbors = vec!["127.0.0.2".parse().unwrap()];
    spec.grants.max_routes = Some(0);
    let mut p = start(&runtime, spec);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down);
    assert!(reason.contains("limit"), "{reason}");
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_without_running() {
    let runtime = runtime();
    let good = spec("web", "tcp-check", &[("address", "127.0.0.1:1")]);
    runtime.check(&good).unwrap();
    runtime.check(&spec("py", "tcp-check-py", &[])).unwrap();

    let mut missing = good.clone();
    missing.component = "/nonexistent/plugin.wasm".into();
    assert!(
        format!("{:#}", runtime.check(&missing).unwrap_err()).contains("/nonexistent/plugin.wasm")
    );

    let dir = std::env::temp_dir().join(format!("wasmbgp-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let mut not_component = good.clone();
    not_component.component = core;
    let err = format!("{:#}", runtime.check(&not_component).unwrap_err());
    assert!(err.contains("not a WebAssembly component"), "{err}");

    let mut bad_grant = good.clone();
    bad_grant.grants.tcp = vec!["db.example:5432".into()];
    let err = format!("{:#}", runtime.check(&bad_grant).unwrap_err());
    assert!(err.contains("grants.tcp"), "{err}");

    let mut bad_counts = good.clone();
    bad_counts.rise = 0;
    assert!(runtime.check(&bad_counts).is_err());
    assert_eq!(good.world, World::Healthcheck);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_plugin_does_not_disturb_another() {
    let runtime = runtime();
    let listener = Listener::bind("127.0.0.1:0").await;
    let addr = listener.addr.to_string();
    let mut good = spec("steady", "tcp-check", &[("address", &addr)]);
    good.grants.tcp = vec![addr];
    let mut spinner = faulty("spinner", "loop", &[]);
    spinner.grants.deadline = Duration::from_millis(100);
    let mut bad = start(&runtime, spinner);
    let mut p = start(&runtime, good);
    assert_eq!(p.health(T).await.0, Health::Up);
    // While the spinner burns its deadlines, the good plugin keeps checking
    // at its interval.
    let calls = p.handle.status().calls;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let done = p.handle.status().calls - calls;
    assert!(done >= 5, "only {done} checks in 1 s at a 100 ms interval");
    assert!(bad.handle.status().restarts >= 1);
    p.silent(Duration::from_millis(10)).await;
    let _ = bad.failed(T).await;
    p.handle.stop().await;
    bad.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_are_captured_not_inherited() {
    let runtime = runtime();
    let mut p = start(&runtime, faulty("chatty", "print", &[]));
    let (health, reason) = p.health(T).await;
    assert_eq!((health, reason.as_str()), (Health::Up, "printed"));
    p.handle.stop().await;
}

/// Not a benchmark: prints the bare cost of a warm `check` call (a guest
/// that returns at once), for orientation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_call_cost() {
    let runtime = runtime();
    let mut spec = faulty("bare", "ok", &[]);
    spec.interval = Duration::from_millis(1);
    spec.fast_interval = Duration::from_millis(1);
    let p = start(&runtime, spec);
    eventually(T, "200 calls", || p.handle.status().calls >= 200).await;
    let status = p.handle.status();
    eprintln!(
        "bare check call (Rust guest): p50 {} µs, p99 {} µs over {} calls",
        status.p50_us, status.p99_us, status.calls
    );
    assert!(status.p50_us < 1000, "{status:?}");
    assert_eq!(status.restarts, 0);
    p.handle.stop().await;
}

#[test]
fn start_outside_tokio_is_an_error_not_a_panic() {
    let runtime = runtime();
    let (tx, _rx) = wasmbgp_runtime::EventSender::channel();
    let err = runtime
        .start(spec("x", "tcp-check", &[]), tx)
        .err()
        .expect("an error");
    assert!(err.to_string().contains("tokio"), "{err}");
}

/// Issue 7: malformed route requests are answered `invalid` inside the plugin's
/// call and counted; nothing of them reaches the daemon, and the well-formed
/// announcement that follows does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_routes_are_invalid_at_the_boundary() {
    let runtime = runtime();
    let mut spec = faulty("bad", "bad-routes", &[("prefix", "100.10.0.100/32")]);
    spec.grants.neighbors = vec!["127.0.0.2".parse().unwrap()];
    spec.grants.max_routes = Some(1);
    let mut p = start(&runtime, spec);
    // Every check announces (rise = 2): only the good route may arrive before the verdict.
    let (health, reason) = loop {
        match p.next(T).await {
            PluginEvent::Announce { route, .. } => {
                assert_eq!(route.prefix.to_string(), "100.10.0.100/32")
            }
            PluginEvent::Health { health, reason, .. } => break (health, reason),
            other => panic!("expected the good announcement or a verdict, got {other:?}"),
        }
    };
    assert_eq!(health, Health::Up, "{reason}");
    // Seven malformed routes (host bits, lengths, next hops of the other family) are
    // `invalid`; an unconfigured neighbor is `denied`.
    assert!(reason.contains("8 malformed requests refused"), "{reason}");
    let status = p.handle.status();
    assert!(status.invalid >= 7 && status.denied >= 1, "{status:?}");
    // The refused requests took no room under max-routes = 1.
    assert_eq!(status.routes_owned, 1);
    p.handle.stop().await;
}
