//! Where I/O happens: the tasks that run sessions, accept connections, serve the control
//! socket, and stop everything cleanly on SIGTERM.

pub mod connection;
pub mod listener;
pub mod metrics_http;
pub mod neighbor;
pub mod plugins;
pub mod sockopt;
pub mod sources;
pub mod speaker;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use wasmbgp_bgp::rib::AdjRibOut;

use crate::config::Config;
use crate::ctl;
use crate::metrics::Metrics;
use neighbor::Shared;
use sources::Sources;

/// Runs the speaker until SIGTERM or SIGINT.
pub async fn run(mut config: Config, runtime: wasmbgp_runtime::Runtime) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let sources = Sources::new();
    let shared = Shared {
        local_as: config.local_as,
        router_id: config.router_id,
        graceful_restart: config.graceful_restart,
        sources: sources.clone(),
        metrics: metrics.clone(),
    };
    // Bind everything first so that a taken port or socket fails before any session starts.
    let mut listeners = Vec::new();
    for addr in &config.listen {
        listeners.push(listener::bind(*addr).await?);
    }
    let control = ctl::server::bind(&config.control.socket, config.control.mode)?;
    if let Some(addr) = config.metrics {
        tokio::spawn(metrics_http::serve(
            metrics_http::bind(addr).await?,
            metrics.clone(),
        ));
    }

    let routes = std::mem::take(&mut config.routes);
    let total: usize = routes.iter().map(|g| g.routes.len()).sum();
    let mut handles = Vec::new();
    for n in &config.neighbors {
        let mut adj_out = AdjRibOut::new();
        for group in routes.iter().filter(|g| g.applies_to(&n.address)) {
            let routes = group
                .routes
                .iter()
                .filter(|(p, _)| n.families.contains(&p.family()))
                .cloned();
            adj_out.load(routes, sources::CONFIG);
        }
        let (handle, _task) = neighbor::spawn(n.clone(), shared.clone(), adj_out);
        handles.push(handle);
    }
    drop(routes);
    metrics.source_routes("config", total as i64);
    info!(neighbors = handles.len(), routes = total, "wasmbgp started");

    let inbound: HashMap<_, _> = handles
        .iter()
        .map(|h| (h.config.address, h.tx.clone()))
        .collect();
    for l in listeners {
        tokio::spawn(listener::serve(l, inbound.clone()));
    }
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let plugin_configs = std::mem::take(&mut config.plugins);
    let watched: Vec<_> = plugin_configs
        .iter()
        .map(|p| (p.spec.name.clone(), p.spec.component.clone()))
        .collect();
    let slots = plugins::start(&runtime, plugin_configs, &sources, &events_tx)?;
    let speaker = speaker::Speaker::new(handles, slots, metrics.clone()).spawn(events_rx);
    let _watcher = if watched.is_empty() {
        None
    } else {
        Some(plugins::watch(watched, speaker.clone(), runtime.clone())?)
    };
    tokio::spawn(ctl::server::serve(
        control,
        speaker.clone(),
        runtime.clone(),
        config.control.socket.clone(),
    ));

    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    speaker.shutdown().await;
    let _ = std::fs::remove_file(&config.control.socket);
    Ok(())
}
