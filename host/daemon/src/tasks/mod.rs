//! Where I/O happens: the tasks that run sessions, accept connections, serve the control
//! socket, and stop everything cleanly on SIGTERM.

pub mod connection;
pub mod critical;
pub mod exporters;
pub mod limits;
pub mod listener;
pub mod messages;
pub mod metrics_http;
pub mod neighbor;
pub mod plugins;
pub mod reload;
pub mod ribs;
pub mod sockopt;
pub mod sources;
pub mod speaker;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::config::Config;
use crate::ctl;
use crate::metrics::Metrics;
use critical::CriticalTasks;
use messages::Farewell;
use neighbor::Shared;
use sources::Sources;

/// The environment variable that enables `ctl debug panic` (fault injection for tests).
pub const FAULT_INJECTION_ENV: &str = "WASMBGP_FAULT_INJECTION";

/// Runs the speaker until SIGTERM or SIGINT (SIGHUP reloads the config); fails if a
/// critical task ends before that.
pub async fn run(
    mut config: Config,
    config_path: std::path::PathBuf,
    runtime: wasmbgp_runtime::Runtime,
) -> anyhow::Result<()> {
    let critical = CriticalTasks::default();
    let metrics = Arc::new(Metrics::new());
    metrics.config_applied();
    let sources = Sources::new();
    let (neighbor_events, from_neighbors) =
        tokio::sync::mpsc::channel(neighbor::NEIGHBOR_EVENT_QUEUE);
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
    let inbound = listener::Inbound::default();
    let listeners: Vec<_> = config
        .listen
        .iter()
        .zip(listeners)
        .map(|(addr, l)| {
            let l = Arc::new(l);
            inbound.add_listener(l.clone());
            (*addr, l)
        })
        .collect();
    let (events_tx, events_rx) = wasmbgp_runtime::EventSender::channel();
    let plugin_configs = std::mem::take(&mut config.plugins);
    let watched = plugins::watched_files(&plugin_configs);
    let slots = plugins::start(&runtime, plugin_configs, &sources, &events_tx)?;
    metrics.watch_plugins(slots.iter().map(|s| s.handle.status_source()).collect());
    let fault_injection = std::env::var_os(FAULT_INJECTION_ENV).is_some_and(|v| v == "1");
    if fault_injection {
        tracing::warn!("{FAULT_INJECTION_ENV}=1: `ctl debug panic` can crash this daemon");
    }
    let (speaker, speaker_rx) = speaker::SpeakerHandle::channel();
    let reloads = reload::Reloads::new(
        speaker.clone(),
        runtime.clone(),
        config_path,
        metrics.clone(),
    );
    // A change to a component, or to a data file a policy is granted, reloads the plugin.
    let watcher = plugins::FileWatcher::start(watched, reloads.clone())?;
    let neighbors = config.neighbors.len();
    let total: usize = config.routes.iter().map(|g| g.routes.len()).sum();
    speaker::Speaker::new(speaker::SpeakerParts {
        globals: config.globals(),
        shutdown_message: config.shutdown_message.clone(),
        runtime: runtime.clone(),
        sources: sources.clone(),
        neighbors: std::mem::take(&mut config.neighbors),
        routes: std::mem::take(&mut config.routes),
        shared,
        critical: critical.clone(),
        inbound: inbound.clone(),
        plugins: slots,
        plugin_events: events_tx,
        watcher: Some(watcher),
        metrics: metrics.clone(),
        fault_injection,
    })
    .spawn(speaker_rx, events_rx, from_neighbors);
    // Accepting starts once the speaker knows every configured neighbor: a peer that
    // connects while it builds their Adj-RIB-Outs (100,000 rules: tens of ms) waits in
    // the backlog rather than being refused as an unknown peer.
    for (addr, l) in listeners {
        critical.spawn(
            format!("listener {addr}"),
            listener::serve(l, inbound.clone(), metrics.clone()),
        );
    }
    info!(neighbors, routes = total, "wasmbgp started");
    critical.spawn(
        "control socket",
        ctl::server::serve(control, speaker.clone(), reloads.clone(), metrics.clone()),
    );

    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let farewell = loop {
        tokio::select! {
            _ = term.recv() => {
                info!("SIGTERM: shutting down");
                break Farewell::Cease(None);
            }
            _ = int.recv() => {
                info!("SIGINT: shutting down");
                break Farewell::Cease(None);
            }
            farewell = reloads.stop().requested() => {
                info!(?farewell, "ctl shutdown: shutting down");
                break farewell;
            }
            _ = hup.recv() => {
                info!("SIGHUP: reloading the config");
                let reloads = reloads.clone();
                // Logged by the reload itself; SIGHUPs queue behind each other.
                tokio::spawn(async move { reloads.config(false).await });
            }
            why = critical.first_ended() => {
                let _ = std::fs::remove_file(&config.control.socket);
                anyhow::bail!("{why}; exiting so that the service manager restarts wasmbgp");
            }
        }
    };
    speaker.shutdown(farewell).await;
    let _ = std::fs::remove_file(&config.control.socket);
    Ok(())
}

/// After a failed `accept` (out of file descriptors, say): log it and pause briefly, so
/// that a persistent error neither spins a core nor floods the log.
pub(crate) async fn pause_after_accept_error(what: &str, error: &std::io::Error) {
    tracing::warn!(error = %error, "{what}: accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}
