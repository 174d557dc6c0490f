//! Reloads, prepared off the speaker: the config file re-read and checked as
//! `wasmbgp check` does, compared with what runs, plugin instances swapped (compiled on a
//! blocking thread, `init` run beside the running instance); the speaker is handed only
//! the outcome to apply. One reload at a time (SIGHUP, `ctl reload`, `ctl plugin
//! reload`, a component file changed): they queue on a lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tracing::{error, info};
use wasmbgp_runtime::{PluginSpec, Runtime};

use super::messages::{Farewell, Running};
use super::speaker::SpeakerHandle;
use crate::config::diff::{self, ReloadSummary};
use crate::config::{Config, Diagnostics};
use crate::ctl::json::Reply;
use crate::metrics::Metrics;

/// Carries out reloads; cheap to clone.
#[derive(Clone)]
pub struct Reloads {
    speaker: SpeakerHandle,
    runtime: Runtime,
    config_path: PathBuf,
    metrics: Arc<Metrics>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    stop: Arc<StopRequest>,
}

/// `ctl shutdown`: asks the main task to stop wasmbgp, leaving the peers as asked.
#[derive(Debug, Default)]
pub struct StopRequest {
    wanted: tokio::sync::Notify,
    farewell: std::sync::Mutex<Option<Farewell>>,
}

impl StopRequest {
    /// Asks for the stop.
    pub fn request(&self, farewell: Farewell) {
        *self.farewell.lock().unwrap_or_else(|p| p.into_inner()) = Some(farewell);
        self.wanted.notify_one();
    }

    /// Waits for a request; returns how to leave the peers.
    pub async fn requested(&self) -> Farewell {
        self.wanted.notified().await;
        self.farewell
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or(Farewell::Cease(None))
    }
}

impl Reloads {
    /// Reloads of the daemon run by `speaker` from `config_path`.
    pub fn new(
        speaker: SpeakerHandle,
        runtime: Runtime,
        config_path: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reloads {
            speaker,
            runtime,
            config_path,
            metrics,
            one_at_a_time: Arc::default(),
            stop: Arc::default(),
        }
    }

    /// Where `ctl shutdown` is asked for (the main task waits on it).
    pub fn stop(&self) -> &StopRequest {
        &self.stop
    }

    /// Re-reads the config file and applies its difference with what runs (`json`: the
    /// summary as JSON). A config that does not check is refused whole, with its
    /// FILE:LINE:COL diagnostics, and the running one keeps running.
    pub async fn config(&self, json: bool) -> Reply {
        let _turn = self.one_at_a_time.lock().await;
        let started = Instant::now();
        let Some(running) = self.speaker.running().await else {
            return stopped();
        };
        let (plan, running) = match self.checked_plan(running).await {
            Ok(x) => x,
            Err(diagnostics) => {
                self.metrics.config_reload(false, None);
                error!(config = %self.config_path.display(), "config reload refused; the running config keeps running:\n{diagnostics}");
                return Reply::err(format!(
                    "config refused, the running one keeps running:\n{diagnostics}"
                ));
            }
        };
        let mut plan = plan;
        // Swaps first, each beside its running instance: a refusal keeps the old one
        // (and its old spec, so the speaker does not record one that is not running).
        let mut errors = Vec::new();
        for name in std::mem::take(&mut plan.plugins_swapped) {
            let Some(new) = plan.plugins.iter_mut().find(|p| p.spec.name == name) else {
                continue;
            };
            let Some((old, reloader)) = running.plugins.iter().find(|p| p.0.spec.name == name)
            else {
                continue;
            };
            match swap(reloader, new.spec.clone()).await {
                Ok(()) => plan.plugins_swapped.push(name),
                Err(e) => {
                    errors.push(format!("plugin {name}: {e}"));
                    new.spec = old.spec.clone();
                }
            }
        }
        let Some(mut summary) = self.speaker.apply(plan).await else {
            return stopped();
        };
        summary.errors.extend(errors);
        summary.ms = started.elapsed().as_secs_f64() * 1e3;
        self.metrics
            .config_reload(summary.errors.is_empty(), Some(started.elapsed()));
        log_summary(&summary);
        if !summary.errors.is_empty() {
            return Reply::err(summary.to_text());
        }
        if json {
            return match serde_json::to_string_pretty(&summary) {
                Ok(s) => Reply::ok(s),
                Err(e) => Reply::err(format!("cannot encode JSON: {e}")),
            };
        }
        Reply::ok(summary.to_text())
    }

    /// Swaps plugin `name` to the component at `path` (settings and grants as they
    /// run), or without `path` to its `[[plugin]]` block as the config file says now.
    /// The answer comes once the new instance serves, or says why the running one
    /// keeps running.
    pub async fn plugin(&self, name: &str, path: Option<PathBuf>) -> Reply {
        let _turn = self.one_at_a_time.lock().await;
        let started = Instant::now();
        let Some(running) = self.speaker.running().await else {
            return stopped();
        };
        let Some((config, reloader)) = running.plugins.iter().find(|p| p.0.spec.name == name)
        else {
            let known: Vec<&str> = running
                .plugins
                .iter()
                .map(|p| p.0.spec.name.as_str())
                .collect();
            return Reply::err(format!(
                "no plugin named {name:?} (configured: {})",
                known.join(", ")
            ));
        };
        let spec = match path {
            Some(path) => PluginSpec {
                component: self.resolve(&path),
                ..config.spec.clone()
            },
            None => match self.spec_in_file(name, &running).await {
                Ok(spec) => spec,
                Err(e) => {
                    return Reply::err(format!(
                        "plugin {name}: reload refused, the running one keeps running: {e}"
                    ));
                }
            },
        };
        match swap(reloader, spec.clone()).await {
            Ok(()) => {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                info!(plugin = %name, component = %spec.component.display(), ms, "plugin swapped");
                self.speaker.plugin_swapped(spec).await;
                Reply::ok(format!("plugin {name} reloaded in {ms:.1} ms"))
            }
            Err(e) => Reply::err(format!(
                "plugin {name}: reload refused, the running one keeps running: {e}"
            )),
        }
    }

    /// A component path given to `ctl`: relative paths are taken from the config
    /// file's directory, as in the config.
    fn resolve(&self, path: &Path) -> PathBuf {
        match self.config_path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// The config file read and checked (plugins whose spec is unchanged are only
    /// linked again: they run already; changed or new ones also run `init` once, as
    /// `check` does), and compared with what runs.
    async fn checked_plan(
        &self,
        running: Running,
    ) -> Result<(diff::ReloadPlan, Running), Diagnostics> {
        let runtime = self.runtime.clone();
        let path = self.config_path.clone();
        let running_specs: Vec<PluginSpec> =
            running.plugins.iter().map(|p| p.0.spec.clone()).collect();
        let loaded = tokio::task::spawn_blocking(move || {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| Diagnostics {
                file: file.clone(),
                items: vec![crate::config::Diagnostic {
                    line: 1,
                    col: 1,
                    message: format!("cannot read: {e}"),
                }],
            })?;
            let check = |spec: &PluginSpec| {
                if running_specs.contains(spec) {
                    runtime.check(spec)
                } else {
                    runtime.check_init(spec)
                }
            };
            let config = Config::parse_with(&text, &path, &check)?;
            Ok::<_, Diagnostics>((config, text, file))
        })
        .await
        .map_err(|e| Diagnostics {
            file: self.config_path.display().to_string(),
            items: vec![crate::config::Diagnostic {
                line: 1,
                col: 1,
                message: format!("the config check failed: {e}"),
            }],
        })?;
        let (config, text, file) = loaded?;
        let old: Vec<_> = running.plugins.iter().map(|p| p.0.clone()).collect();
        let plan = diff::plan(
            &running.globals,
            &running.neighbors,
            &old,
            config,
            &file,
            &text,
        )?;
        Ok((plan, running))
    }

    /// A plugin's block as the config file says now.
    async fn spec_in_file(&self, name: &str, running: &Running) -> Result<PluginSpec, String> {
        let runtime = self.runtime.clone();
        let path = self.config_path.clone();
        let config = tokio::task::spawn_blocking(move || {
            Config::load_with(&path, &|spec| runtime.check(spec)).map_err(|d| d.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let spec = config
            .plugins
            .into_iter()
            .find(|p| p.spec.name == name)
            .map(|p| p.spec)
            .ok_or_else(|| format!("{} no longer configures it", self.config_path.display()))?;
        let world = running
            .plugins
            .iter()
            .find(|p| p.0.spec.name == name)
            .map(|p| p.0.spec.world);
        if world.is_some_and(|w| w != spec.world) {
            return Err(format!(
                "the config makes it a {} plugin; a reload cannot change the world",
                spec.world
            ));
        }
        Ok(spec)
    }
}

/// Swaps a plugin's instance: compiled and linked on a blocking thread, then `init`
/// beside the running instance; returns once the new one serves.
async fn swap(reloader: &wasmbgp_runtime::Reloader, spec: PluginSpec) -> Result<(), String> {
    let reloader = reloader.clone();
    let reload = tokio::task::spawn_blocking(move || reloader.reload(spec))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e:#}"))?;
    reload.outcome().await.map_err(|e| format!("{e:#}"))
}

fn stopped() -> Reply {
    Reply::err("the speaker has stopped; wasmbgp is exiting")
}

fn log_summary(summary: &ReloadSummary) {
    let list = |v: &[std::net::IpAddr]| {
        v.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    info!(
        ms = summary.ms,
        neighbors_added = %list(&summary.neighbors_added),
        neighbors_removed = %list(&summary.neighbors_removed),
        neighbors_reset = %list(&summary.neighbors_reset),
        neighbors_changed = %list(&summary.neighbors_changed),
        routes_announced = summary.routes_announced,
        routes_withdrawn = summary.routes_withdrawn,
        plugins_added = %summary.plugins_added.join(","),
        plugins_removed = %summary.plugins_removed.join(","),
        plugins_swapped = %summary.plugins_swapped.join(","),
        plugins_reconfigured = %summary.plugins_reconfigured.join(","),
        "config reloaded"
    );
    for e in &summary.errors {
        error!(error = %e, "config reload: not applied");
    }
}
