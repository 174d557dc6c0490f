//! Where plugins meet the speaker: starting them with their grants, turning their route
//! records into routes, and swapping a component in place when its file changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{info, warn};
use wasmbgp_bgp::rib::SourceId;
use wasmbgp_runtime::{Health, PluginEvent, PluginHandle, PluginStatus, Runtime, World};

use super::sources::Sources;
use super::speaker::SpeakerHandle;
use crate::config::PluginConfig;

/// A running plugin as the speaker sees it.
pub struct PluginSlot {
    /// Its config.
    pub config: PluginConfig,
    /// The runtime's handle.
    pub handle: PluginHandle,
    /// Its route source (`plugin:NAME`).
    pub source: SourceId,
    /// The last verdict applied to its routes.
    pub health: Option<Health>,
}

/// Starts every configured plugin.
pub fn start(
    runtime: &Runtime,
    configs: Vec<PluginConfig>,
    sources: &Sources,
    events: &mpsc::UnboundedSender<PluginEvent>,
) -> anyhow::Result<Vec<PluginSlot>> {
    let mut slots = Vec::new();
    for config in configs {
        let name = config.spec.name.clone();
        let handle = runtime
            .start(config.spec.clone(), events.clone())
            .with_context(|| {
                format!(
                    "plugin {name}: cannot start {}",
                    config.spec.component.display()
                )
            })?;
        let source = sources.register(&format!("plugin:{name}"));
        info!(plugin = %name, world = %config.spec.world, component = %config.spec.component.display(), "plugin started");
        slots.push(PluginSlot {
            config,
            handle,
            source,
            health: None,
        });
    }
    Ok(slots)
}

/// `show plugins` as text.
pub fn status_text(list: &[PluginStatus]) -> String {
    if list.is_empty() {
        return "no plugins".into();
    }
    list.iter()
        .map(|s| {
            let world = match s.world {
                World::Healthcheck => format!(
                    "health {:<9} denied {} invalid {} routes {}",
                    s.health
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "-".into()),
                    s.denied,
                    s.invalid,
                    s.routes_owned,
                ),
                World::Policy => format!(
                    "accepted {} rejected {} modified {} unjudged {}",
                    s.routes_accepted, s.routes_rejected, s.routes_modified, s.routes_unjudged,
                ),
                World::Exporter => format!(
                    "events delivered {} dropped {} denied {} series {}",
                    s.events_delivered, s.events_dropped, s.denied, s.metric_series,
                ),
            };
            format!(
                "{:<16} {:<12} state {:<9} restarts {:<4} calls {:<8} p50 {}µs p99 {}µs {world}{}",
                s.name,
                s.world.name(),
                format!("{:?}", s.state).to_lowercase(),
                s.restarts,
                s.calls,
                s.p50_us,
                s.p99_us,
                s.last_error
                    .as_deref()
                    .map(|e| format!(" last error: {e}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Watches the plugins' component files; a changed file is reloaded in place (after a
/// short settle time, so a file being copied is not read half-written).
pub fn watch(
    components: Vec<(String, PathBuf)>,
    speaker: SpeakerHandle,
    runtime: Runtime,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && (ev.kind.is_modify() || ev.kind.is_create())
        {
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })?;
    let mut by_path: HashMap<PathBuf, Vec<String>> = HashMap::new();
    for (name, path) in components {
        let path = path.canonicalize().unwrap_or(path);
        if let Some(dir) = path.parent() {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
        by_path.entry(path).or_default().push(name);
    }
    tokio::spawn(async move {
        const SETTLE: Duration = Duration::from_millis(300);
        while let Some(first) = rx.recv().await {
            let mut changed = vec![first];
            // Gather the burst of events one copy or rename makes.
            while let Ok(Some(p)) = tokio::time::timeout(SETTLE, rx.recv()).await {
                changed.push(p);
            }
            changed.sort();
            changed.dedup();
            for p in changed {
                let p = p.canonicalize().unwrap_or(p);
                for name in by_path.get(&p).into_iter().flatten() {
                    info!(plugin = %name, file = %p.display(), "component file changed: reloading");
                    speaker.precompile(&runtime, name).await;
                    speaker.reload_plugin(name.clone());
                }
            }
        }
        warn!("plugin file watcher stopped");
    });
    Ok(watcher)
}
