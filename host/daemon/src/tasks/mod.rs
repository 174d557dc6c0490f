//! Where I/O happens: the tasks that run sessions, accept connections, serve the control
//! socket, and stop everything cleanly on SIGTERM.

pub mod connection;
pub mod critical;
pub mod exporters;
pub mod listener;
pub mod messages;
pub mod metrics_http;
pub mod neighbor;
pub mod plugins;
pub mod ribs;
pub mod sockopt;
pub mod sources;
pub mod speaker;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use wasmbgp_bgp::rib::AdjRibOut;
use wasmbgp_runtime::World;

use crate::config::Config;
use crate::ctl;
use crate::metrics::Metrics;
use critical::CriticalTasks;
use neighbor::Shared;
use sources::Sources;

/// The environment variable that enables `ctl debug panic` (fault injection for tests).
pub const FAULT_INJECTION_ENV: &str = "WASMBGP_FAULT_INJECTION";

/// Runs the speaker until SIGTERM or SIGINT; fails if a critical task ends before that.
pub async fn run(
    mut config: Config,
    config_path: std::path::PathBuf,
    runtime: wasmbgp_runtime::Runtime,
) -> anyhow::Result<()> {
    let mut critical = CriticalTasks::default();
    let metrics = Arc::new(Metrics::new());
    let sources = Sources::new();
    let (neighbor_events, from_neighbors) = tokio::sync::mpsc::unbounded_channel();
    let shared = Shared {
        local_as: config.local_as,
        router_id: config.router_id,
        graceful_restart: config.graceful_restart,
        sources: sources.clone(),
        metrics: metrics.clone(),
        events: neighbor_events,
    };
    // Bind everything first so that a taken port or socket fails before any session starts.
    let mut listeners = Vec::new();
    for addr in &config.listen {
        listeners.push(listener::bind(*addr).await?);
    }
    let control = ctl::server::bind(&config.control.socket, config.control.mode)?;
    if let Some(addr) = config.metrics {
        critical.spawn(
            format!("metrics server {addr}"),
            metrics_http::serve(metrics_http::bind(addr).await?, metrics.clone()),
        );
    }

    let routes = std::mem::take(&mut config.routes);
    let total: usize = routes.iter().map(|g| g.routes.len()).sum();
    let mut handles = Vec::new();
    let mut ribs = Vec::new();
    for (index, n) in config.neighbors.iter().enumerate() {
        let mut originated = AdjRibOut::new();
        for group in routes.iter().filter(|g| g.applies_to(&n.address)) {
            let routes = group
                .routes
                .iter()
                .filter(|(p, _)| n.families.contains(&p.family()))
                .cloned();
            originated.load(routes, sources::CONFIG);
        }
        ribs.push(ribs::NeighborRibs::new(
            originated,
            !n.import_policy.is_empty(),
        ));
        handles.push(neighbor::spawn(
            n.clone(),
            index,
            shared.clone(),
            &mut critical,
        ));
    }
    drop(routes);
    metrics.source_routes("config", total as i64);
    info!(neighbors = handles.len(), routes = total, "wasmbgp started");

    let inbound: HashMap<_, _> = handles
        .iter()
        .map(|h| (h.config.address, h.tx.clone()))
        .collect();
    for (addr, l) in config.listen.iter().zip(listeners) {
        critical.spawn(
            format!("listener {addr}"),
            listener::serve(l, inbound.clone()),
        );
    }
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let plugin_configs = std::mem::take(&mut config.plugins);
    // A change to a component, or to a data file a policy is granted, reloads the plugin.
    let watched: Vec<_> = plugin_configs
        .iter()
        .flat_map(|p| {
            let files = match p.spec.world {
                World::Policy => p.spec.grants.files.iter().map(|f| f.path.clone()).collect(),
                World::Healthcheck | World::Exporter => Vec::new(),
            };
            std::iter::once(p.spec.component.clone())
                .chain(files)
                .map(|path| (p.spec.name.clone(), path))
        })
        .collect();
    let slots = plugins::start(&runtime, plugin_configs, &sources, &events_tx)?;
    metrics.watch_plugins(slots.iter().map(|s| s.handle.status_source()).collect());
    let fault_injection = std::env::var_os(FAULT_INJECTION_ENV).is_some_and(|v| v == "1");
    if fault_injection {
        tracing::warn!("{FAULT_INJECTION_ENV}=1: `ctl debug panic` can crash this daemon");
    }
    let speaker = speaker::Speaker::new(speaker::SpeakerParts {
        local_as: config.local_as,
        config_path,
        runtime: runtime.clone(),
        sources: sources.clone(),
        neighbors: handles,
        ribs,
        plugins: slots,
        metrics: metrics.clone(),
        fault_injection,
    })
    .spawn(events_rx, from_neighbors, &mut critical);
    let _watcher = if watched.is_empty() {
        None
    } else {
        Some(plugins::watch(watched, speaker.clone(), runtime.clone())?)
    };
    critical.spawn(
        "control socket",
        ctl::server::serve(control, speaker.clone(), runtime.clone(), metrics.clone()),
    );

    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
        why = critical.first_ended() => {
            let _ = std::fs::remove_file(&config.control.socket);
            anyhow::bail!("{why}; exiting so that the service manager restarts wasmbgp");
        }
    }
    speaker.shutdown().await;
    let _ = std::fs::remove_file(&config.control.socket);
    Ok(())
}

/// After a failed `accept` (out of file descriptors, say): log it and pause briefly, so
/// that a persistent error neither spins a core nor floods the log.
pub(crate) async fn pause_after_accept_error(what: &str, error: &std::io::Error) {
    tracing::warn!(error = %error, "{what}: accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}
