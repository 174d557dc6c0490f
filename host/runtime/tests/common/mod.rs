//! Helpers for the runtime's integration tests: the built plugin
//! components, a runtime with an on-disk compile cache, event waiting, and
//! loopback services.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc::Receiver;
use wasmbgp_runtime::{
    Health, PluginEvent, PluginHandle, PluginSpec, Runtime, RuntimeOptions, World,
};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The built component `name` (target/plugins/NAME.wasm), building every
/// plugin first with scripts/build-plugins.sh (quiet, incremental).
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/build-plugins.sh"))
            .output()
            .expect("running scripts/build-plugins.sh");
        assert!(
            out.status.success(),
            "scripts/build-plugins.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let path = root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// A runtime whose compiled components are cached under target/ (the
/// Python component takes seconds to compile otherwise).
pub fn runtime() -> Runtime {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("wasmbgp_runtime=debug,info")
        .try_init();
    Runtime::with_options(RuntimeOptions {
        cache_dir: Some(root().join("target/plugin-cache")),
        ..RuntimeOptions::default()
    })
    .unwrap()
}

/// A healthcheck spec for component `name` with fast test timings
/// (interval 100 ms, fast interval 50 ms, rise 2, fall 2).
pub fn spec(plugin: &str, component_name: &str, settings: &[(&str, &str)]) -> PluginSpec {
    let mut spec = PluginSpec::new(plugin, World::Healthcheck, component(component_name));
    spec.settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec.interval = Duration::from_millis(100);
    spec.fast_interval = Duration::from_millis(50);
    spec.rise = 2;
    spec.fall = 2;
    spec
}

/// A started plugin and its event stream.
pub struct Running {
    pub handle: PluginHandle,
    pub events: Receiver<PluginEvent>,
}

/// Starts `spec` on `runtime`.
pub fn start(runtime: &Runtime, spec: PluginSpec) -> Running {
    let (tx, events) = wasmbgp_runtime::EventSender::channel();
    let handle = runtime.start(spec, tx).expect("plugin starts");
    Running { handle, events }
}

impl Running {
    /// The next event (lifecycle reports for exporters aside), or panics after
    /// `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> PluginEvent {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(until, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no event within {timeout:?}; status: {:?}",
                        self.handle.status()
                    )
                })
                .expect("event channel open");
            if !matches!(event, PluginEvent::Lifecycle { .. }) {
                return event;
            }
        }
    }

    /// The next Health event (skipping none: any other event panics).
    pub async fn health(&mut self, timeout: Duration) -> (Health, String) {
        match self.next(timeout).await {
            PluginEvent::Health { health, reason, .. } => (health, reason),
            other => panic!("expected a health event, got {other:?}"),
        }
    }

    /// The next Failed event's error.
    pub async fn failed(&mut self, timeout: Duration) -> String {
        match self.next(timeout).await {
            PluginEvent::Failed { error, .. } => error,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// Asserts that no event (lifecycle reports aside) arrives for `quiet`.
    pub async fn silent(&mut self, quiet: Duration) {
        let until = tokio::time::Instant::now() + quiet;
        while let Ok(Some(event)) = tokio::time::timeout_at(until, self.events.recv()).await {
            if !matches!(event, PluginEvent::Lifecycle { .. }) {
                panic!("expected no event for {quiet:?}, got {event:?}");
            }
        }
    }
}

/// Polls `f` every 10 ms until it is true, or panics after `timeout`.
pub async fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TCP listener on 127.0.0.1 that accepts and counts connections.
pub struct Listener {
    pub addr: std::net::SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Binds `addr` (port 0 for any) and starts accepting.
    pub async fn bind(addr: &str) -> Listener {
        let listener = TcpListener::bind(addr).await.expect("bind listener");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Listener {
            addr,
            accepted,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listening socket.
    pub async fn close(self) -> std::net::SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }
}

/// A loopback UDP port that is free right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
