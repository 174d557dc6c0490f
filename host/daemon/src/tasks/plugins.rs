//! Where plugins meet the speaker: starting them with their grants, turning their route
//! records into routes, and swapping a component in place when its file changes.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{info, warn};
use wasmbgp_bgp::rib::SourceId;
use wasmbgp_runtime::{Health, PluginHandle, PluginStatus, Runtime, World};

use super::reload::Reloads;
use super::sources::Sources;
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
    /// It has given a verdict or failed since it started: what the sessions wait for
    /// at a (graceful) restart.
    pub settled: bool,
}

/// Starts every configured plugin.
pub fn start(
    runtime: &Runtime,
    configs: Vec<PluginConfig>,
    sources: &Sources,
    events: &wasmbgp_runtime::EventSender,
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
            settled: false,
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
                    "health {:<9} denied {} invalid {} routes {}{}",
                    s.health
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "-".into()),
                    s.denied,
                    s.invalid,
                    s.routes_owned,
                    // Why it is up or down: the last answer, before hysteresis.
                    s.last_check
                        .as_ref()
                        .map(|c| format!(
                            " last check: {}: {}",
                            if c.passed { "ok" } else { "failed" },
                            c.detail
                        ))
                        .unwrap_or_default(),
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

/// The files whose change reloads a plugin: its component, and a policy's granted data
/// files.
pub fn watched_files(configs: &[PluginConfig]) -> Vec<(String, PathBuf)> {
    configs
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
        .collect()
}

/// Watches the plugins' files: a changed one reloads its plugin in place (after a short
/// settle time, so that a file being copied is not read half-written).
pub struct FileWatcher {
    watcher: notify::RecommendedWatcher,
    /// Plugin names by canonical file path (read by the task that reloads).
    by_path: Arc<Mutex<HashMap<PathBuf, Vec<String>>>>,
    dirs: HashSet<PathBuf>,
}

impl FileWatcher {
    /// Starts watching `files` (plugin name, path); changes go to `reloads`.
    pub fn start(files: Vec<(String, PathBuf)>, reloads: Reloads) -> anyhow::Result<Self> {
        // Bounded: a burst of file events beyond it is dropped, which loses nothing
        // (the settle window gathers a burst, and one event per file is enough).
        let (tx, mut rx) = mpsc::channel::<PathBuf>(1024);
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && (ev.kind.is_modify() || ev.kind.is_create())
            {
                for p in ev.paths {
                    let _ = tx.try_send(p);
                }
            }
        })?;
        let by_path: Arc<Mutex<HashMap<PathBuf, Vec<String>>>> = Arc::default();
        let names = by_path.clone();
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
                let mut plugins: Vec<(String, PathBuf)> = Vec::new();
                for p in changed {
                    let p = p.canonicalize().unwrap_or(p);
                    let map = names.lock().unwrap_or_else(|e| e.into_inner());
                    for name in map.get(&p).into_iter().flatten() {
                        if !plugins.iter().any(|(n, _)| n == name) {
                            plugins.push((name.clone(), p.clone()));
                        }
                    }
                }
                for (name, file) in plugins {
                    info!(plugin = %name, file = %file.display(), "component file changed: reloading");
                    let reply = reloads.plugin(&name, None).await;
                    if !reply.ok {
                        tracing::error!(plugin = %name, error = %reply.error, "reload refused; the running plugin keeps running");
                    }
                }
            }
            warn!("plugin file watcher stopped");
        });
        let mut w = FileWatcher {
            watcher,
            by_path,
            dirs: HashSet::new(),
        };
        w.set(files);
        Ok(w)
    }

    /// Watches these files from now on (after a config reload).
    pub fn set(&mut self, files: Vec<(String, PathBuf)>) {
        let mut map: HashMap<PathBuf, Vec<String>> = HashMap::new();
        for (name, path) in files {
            let path = path.canonicalize().unwrap_or(path);
            if let Some(dir) = path.parent()
                && !self.dirs.contains(dir)
            {
                match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.dirs.insert(dir.to_path_buf());
                    }
                    Err(e) => {
                        warn!(dir = %dir.display(), error = %e, "cannot watch plugin files here: changes need `ctl plugin reload`")
                    }
                }
            }
            map.entry(path).or_default().push(name);
        }
        *self.by_path.lock().unwrap_or_else(|e| e.into_inner()) = map;
    }
}
