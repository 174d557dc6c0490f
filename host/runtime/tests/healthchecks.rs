//! The real health-check plugins (Rust, Python and JavaScript) against real loopback
//! services: transitions after rise/fall, silence in steady states,
//! disable/enable, reload.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmbgp_runtime::{Health, PluginState};

const T: Duration = Duration::from_secs(5);

/// Up after `rise` checks, silent while steady, down after `fall` checks
/// once the listener closes, up again when it returns.
async fn tcp_up_down(component_name: &str) {
    let runtime = runtime();
    let listener = Listener::bind("127.0.0.1:0").await;
    let addr = listener.addr.to_string();
    let mut spec = spec(
        "web",
        component_name,
        &[("address", &addr), ("timeout", "200ms")],
    );
    spec.grants.tcp = vec![addr.clone()];
    // Before the start: the driver may check once before `start` returns.
    let started = Instant::now();
    let mut p = start(&runtime, spec);

    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Up, "{reason}");
    assert!(reason.contains(&addr), "{reason}");
    // rise = 2 at the 50 ms fast interval: the second check is ≥ 50 ms after the start.
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(p.handle.status().calls >= 3, "init + 2 checks");
    p.silent(Duration::from_millis(400)).await;

    let calls_before = p.handle.status().calls;
    let down_since = Instant::now();
    listener.close().await;
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(reason.contains("refused"), "{reason}");
    // fall = 2: interval to the first failure, fast interval to the second.
    assert!(
        down_since.elapsed() < Duration::from_millis(100 + 50 + 300),
        "{:?}",
        down_since.elapsed()
    );
    assert!(p.handle.status().calls - calls_before >= 2);
    p.silent(Duration::from_millis(400)).await;

    let listener = Listener::bind(&addr).await;
    let (health, _) = p.health(T).await;
    assert_eq!(health, Health::Up);
    eventually(T, "the listener to see the checks", || {
        listener.count() >= 2
    })
    .await;

    let status = p.handle.status();
    eprintln!(
        "{component_name}: {} calls, call time incl. the TCP probe p50 {} µs, p99 {} µs",
        status.calls, status.p50_us, status.p99_us
    );
    assert_eq!(status.state, PluginState::Running);
    assert_eq!(status.health, Some(Health::Up));
    assert_eq!(status.restarts, 0);
    assert!(
        status.p50_us > 0 && status.p99_us >= status.p50_us,
        "{status:?}"
    );
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_up_down() {
    tcp_up_down("tcp-check").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_python_twin_up_down() {
    tcp_up_down("tcp-check-py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_javascript_twin_up_down() {
    tcp_up_down("tcp-check-js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_c_twin_up_down() {
    tcp_up_down("tcp-check-c").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_enable() {
    let runtime = runtime();
    let listener = Listener::bind("127.0.0.1:0").await;
    let addr = listener.addr.to_string();
    let mut spec = spec("maint", "tcp-check", &[("address", &addr)]);
    spec.grants.tcp = vec![addr.clone()];
    let mut p = start(&runtime, spec);
    assert_eq!(p.health(T).await.0, Health::Up);

    p.handle.disable().unwrap();
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Disabled);
    assert!(reason.contains("operator"));
    assert_eq!(p.handle.status().state, PluginState::Disabled);
    let calls = p.handle.status().calls;
    p.silent(Duration::from_millis(300)).await;
    assert_eq!(p.handle.status().calls, calls, "no checks while disabled");

    p.handle.enable().unwrap();
    assert_eq!(p.health(T).await.0, Health::Up);
    assert_eq!(p.handle.status().state, PluginState::Running);
    p.handle.stop().await;
}

/// A tiny HTTP/1.0 server answering every request with `status`.
async fn http_server(status: Arc<AtomicU16>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let status = status.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16384 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = if status == 200 { "healthy\n" } else { "sick\n" };
                let response = format!(
                    "HTTP/1.0 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_expects_a_status() {
    let runtime = runtime();
    let status = Arc::new(AtomicU16::new(200));
    let addr = http_server(status.clone()).await;
    let url = format!("http://{addr}/health");
    let mut spec = spec(
        "api",
        "http-check",
        &[
            ("url", &url),
            ("expect-status", "200"),
            ("expect-body", "healthy"),
        ],
    );
    spec.grants.http = vec![format!("http://{addr}")];
    let mut p = start(&runtime, spec);

    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Up, "{reason}");
    assert!(reason.contains("answered 200"), "{reason}");

    status.store(503, Ordering::SeqCst);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(reason.contains("503"), "{reason}");

    status.store(200, Ordering::SeqCst);
    assert_eq!(p.health(T).await.0, Health::Up);
    p.handle.stop().await;
}

/// dnsmasq on loopback, answering svc.test with 192.0.2.10.
struct Dnsmasq {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Dnsmasq {
    async fn start() -> Dnsmasq {
        let port = free_udp_port();
        let child = std::process::Command::new("dnsmasq")
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--address=/svc.test/192.0.2.10",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--user=root",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian dnsmasq-base) is installed");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Ready when it answers (bounded: 5 s).
        let start = Instant::now();
        loop {
            let q = wasmbgp_runtime::probes::dns_query(
                addr,
                "svc.test",
                wasmbgp_runtime::probes::RecordKind::A,
                Duration::from_millis(100),
            )
            .await;
            if q.is_ok() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "dnsmasq did not answer: {q:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Dnsmasq { child, addr }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_check_against_dnsmasq() {
    let runtime = runtime();
    let mut dns = Dnsmasq::start().await;
    let server = dns.addr.to_string();
    let mut spec = spec(
        "resolver",
        "dns-check",
        &[
            ("server", &server),
            ("name", "svc.test"),
            ("expect", "192.0.2.10"),
            ("timeout", "200ms"),
        ],
    );
    spec.grants.dns = vec![server.clone()];
    let mut p = start(&runtime, spec.clone());
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Up, "{reason}");
    assert!(reason.contains("192.0.2.10"), "{reason}");

    // A name the server does not know: NXDOMAIN-like answer → down.
    let mut wrong = spec.clone();
    wrong.name = "resolver-wrong".into();
    wrong.settings = vec![
        ("server".into(), server.clone()),
        ("name".into(), "svc.test".into()),
        ("expect".into(), "192.0.2.99".into()),
    ];
    let mut q = start(&runtime, wrong);
    let (health, reason) = q.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(reason.contains("lacks 192.0.2.99"), "{reason}");
    q.handle.stop().await;

    // The server dies: timeouts → down.
    dns.stop();
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(
        reason.contains("timed out") || reason.contains("refused"),
        "{reason}"
    );
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_health_silently() {
    let runtime = runtime();
    let listener = Listener::bind("127.0.0.1:0").await;
    let addr = listener.addr.to_string();
    let mut spec = spec("swap", "tcp-check", &[("address", &addr)]);
    spec.grants.tcp = vec![addr.clone()];
    let mut p = start(&runtime, spec.clone());
    assert_eq!(p.health(T).await.0, Health::Up);

    // Swap to the Python twin: same health, so no event.
    let mut python = spec.clone();
    python.component = component("tcp-check-py");
    tokio::task::block_in_place(|| p.handle.reload(python))
        .unwrap()
        .outcome()
        .await
        .unwrap();
    let calls = p.handle.status().calls;
    p.silent(Duration::from_millis(600)).await;
    assert!(
        p.handle.status().calls > calls + 2,
        "the new component is checking"
    );
    assert_eq!(p.handle.status().health, Some(Health::Up));

    // A broken reload changes nothing.
    let mut broken = spec.clone();
    broken.component = common::root().join("Cargo.toml");
    assert!(p.handle.reload(broken).is_err());
    let mut renamed = spec.clone();
    renamed.name = "other".into();
    assert!(p.handle.reload(renamed).is_err());
    // Settings its init refuses: refused once an instance tried them; the running
    // plugin keeps checking.
    let mut refused = spec.clone();
    refused.settings.push(("colour".into(), "red".into()));
    let err = p
        .handle
        .reload(refused)
        .unwrap()
        .outcome()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("init refused the settings"),
        "{err}"
    );
    assert_eq!(p.handle.status().restarts, 0);
    p.silent(Duration::from_millis(200)).await;
    p.handle.stop().await;
}
