//! The speaker: carries out control commands (and, through the same path, plugin route
//! requests) by turning them into route changes for the neighbor tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::info;
use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::rib::{Interner, SourceId};
use wasmbgp_bgp::words::RouteSpec;

use wasmbgp_runtime::{Health, OnFailure, PluginEvent};

use super::critical::CriticalTasks;
use super::neighbor::{NeighborHandle, NeighborMsg, RouteOp};
use super::plugins::{self, PluginSlot};
use super::sources;
use crate::config::Degraded;
use crate::ctl::command::{Command, PanicTarget, PluginAction, Show};
use crate::ctl::json::{NeighborStatus, Reply, RouteRow};
use crate::metrics::Metrics;

/// Requests to the speaker.
#[derive(Debug)]
pub enum SpeakerMsg {
    /// Control commands (or their parse errors), answered in order.
    Batch(Vec<Result<Command, String>>, oneshot::Sender<Vec<Reply>>),
    /// A plugin's component file changed: swap it in place.
    ReloadPlugin(String),
    /// A plugin's spec, to compile its component off the speaker before a reload.
    PluginSpec(String, oneshot::Sender<Option<wasmbgp_runtime::PluginSpec>>),
    /// Stop every session with Cease/Administrative Shutdown.
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable handle on the speaker task.
#[derive(Debug, Clone)]
pub struct SpeakerHandle {
    tx: mpsc::UnboundedSender<SpeakerMsg>,
}

impl SpeakerHandle {
    /// Runs commands; `None` once the speaker has stopped.
    pub async fn execute(&self, batch: Vec<Result<Command, String>>) -> Option<Vec<Reply>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(SpeakerMsg::Batch(batch, tx)).ok()?;
        rx.await.ok()
    }

    /// The spec of a plugin, if it exists.
    pub async fn plugin_spec(&self, name: &str) -> Option<wasmbgp_runtime::PluginSpec> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(SpeakerMsg::PluginSpec(name.to_string(), tx))
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Compiles a plugin's component on a blocking thread, into the runtime's cache, so
    /// that the reload that follows does not stall the speaker. Errors are left for the
    /// reload to report.
    pub async fn precompile(&self, runtime: &wasmbgp_runtime::Runtime, name: &str) {
        if let Some(spec) = self.plugin_spec(name).await {
            let runtime = runtime.clone();
            let _ = tokio::task::spawn_blocking(move || runtime.check(&spec)).await;
        }
    }

    /// Asks for a plugin's component to be reloaded.
    pub fn reload_plugin(&self, name: String) {
        let _ = self.tx.send(SpeakerMsg::ReloadPlugin(name));
    }

    /// Shuts every session down and waits for the NOTIFICATIONs to be sent.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(SpeakerMsg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The speaker's state.
pub struct Speaker {
    neighbors: Vec<NeighborHandle>,
    plugins: Vec<PluginSlot>,
    interner: Interner,
    metrics: Arc<Metrics>,
    commands_since_prune: usize,
    /// `ctl debug panic` is allowed (`WASMBGP_FAULT_INJECTION=1`).
    fault_injection: bool,
}

impl Speaker {
    /// A speaker over the given neighbor tasks.
    pub fn new(
        neighbors: Vec<NeighborHandle>,
        plugins: Vec<PluginSlot>,
        metrics: Arc<Metrics>,
        fault_injection: bool,
    ) -> Self {
        Speaker {
            neighbors,
            plugins,
            interner: Interner::new(),
            metrics,
            commands_since_prune: 0,
            fault_injection,
        }
    }

    /// Starts the speaker as a critical task; plugin events arrive on `events`.
    pub fn spawn(
        self,
        events: mpsc::UnboundedReceiver<PluginEvent>,
        tasks: &mut CriticalTasks,
    ) -> SpeakerHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.spawn("speaker", self.run(rx, events));
        SpeakerHandle { tx }
    }

    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<SpeakerMsg>,
        mut events: mpsc::UnboundedReceiver<PluginEvent>,
    ) {
        loop {
            let msg = tokio::select! {
                biased;
                Some(ev) = events.recv() => {
                    let since = std::time::Instant::now();
                    let mut ops = HashMap::new();
                    self.on_plugin_event(ev, &mut ops);
                    // Take every event already queued before sending, so a burst becomes one flush.
                    while let Ok(ev) = events.try_recv() {
                        self.on_plugin_event(ev, &mut ops);
                    }
                    self.send_ops(&mut ops, Some(since));
                    continue;
                }
                msg = rx.recv() => match msg {
                    Some(m) => m,
                    None => return,
                },
            };
            match msg {
                SpeakerMsg::Batch(batch, reply) => {
                    let replies = self.execute(batch).await;
                    let _ = reply.send(replies);
                }
                SpeakerMsg::PluginSpec(name, reply) => {
                    let spec = self
                        .plugins
                        .iter()
                        .find(|p| p.config.spec.name == name)
                        .map(|p| p.config.spec.clone());
                    let _ = reply.send(spec);
                }
                SpeakerMsg::ReloadPlugin(name) => {
                    let reply = self.plugin_action(PluginAction::Reload, &name);
                    if !reply.ok {
                        tracing::error!(plugin = %name, error = %reply.error, "reload refused; the running component keeps running");
                    }
                }
                SpeakerMsg::Shutdown(done) => {
                    for p in self.plugins.drain(..) {
                        p.handle.stop().await;
                    }
                    let mut waits = Vec::new();
                    for n in &self.neighbors {
                        let (tx, rx) = oneshot::channel();
                        if n.tx.send(NeighborMsg::Shutdown(tx)).is_ok() {
                            waits.push(rx);
                        }
                    }
                    for w in waits {
                        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
                    }
                    info!("all sessions stopped");
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    async fn execute(&mut self, batch: Vec<Result<Command, String>>) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(batch.len());
        let mut ops: HashMap<usize, Vec<RouteOp>> = HashMap::new();
        for cmd in batch {
            let reply = match cmd {
                Err(e) => Reply::err(e),
                Ok(Command::Announce { neighbors, route }) => {
                    self.announce(neighbors.as_deref(), route, sources::CTL, &mut ops)
                }
                Ok(Command::Withdraw { neighbors, prefix }) => {
                    self.withdraw(neighbors.as_deref(), prefix, sources::CTL, &mut ops)
                }
                Ok(Command::Show { what, json }) => {
                    self.send_ops(&mut ops, None);
                    self.show(what, json).await
                }
                Ok(Command::Plugin { action, name }) => self.plugin_action(action, &name),
                Ok(Command::DebugPanic(target)) => self.debug_panic(target),
            };
            replies.push(reply);
        }
        self.send_ops(&mut ops, None);
        self.commands_since_prune += replies.len();
        if self.commands_since_prune > 100_000 {
            self.interner.prune();
            self.commands_since_prune = 0;
        }
        replies
    }

    /// Fault injection for the tests of the task supervision.
    fn debug_panic(&self, target: PanicTarget) -> Reply {
        if !self.fault_injection {
            return Reply::err(
                "debug commands are off (they need WASMBGP_FAULT_INJECTION=1 in wasmbgp's environment)",
            );
        }
        match target {
            PanicTarget::Speaker => panic!("fault injection: `ctl debug panic speaker`"),
            PanicTarget::Neighbor(address) => {
                match self.neighbors.iter().find(|n| n.config.address == address) {
                    Some(n) => {
                        let _ = n.tx.send(NeighborMsg::Panic);
                        Reply::ok("")
                    }
                    None => Reply::err(format!("{address} is not a configured neighbor")),
                }
            }
        }
    }

    fn send_ops(&self, ops: &mut HashMap<usize, Vec<RouteOp>>, since: Option<std::time::Instant>) {
        for (i, list) in ops.drain() {
            let _ = self.neighbors[i]
                .tx
                .send(NeighborMsg::Routes { ops: list, since });
        }
    }

    /// Indices of the neighbors a command targets, or an error naming an unknown one.
    fn targets(&self, filter: Option<&[IpAddr]>, prefix: &Prefix) -> Result<Vec<usize>, String> {
        if let Some(list) = filter {
            if let Some(unknown) = list
                .iter()
                .find(|a| !self.neighbors.iter().any(|n| n.config.address == **a))
            {
                return Err(format!("{unknown} is not a configured neighbor"));
            }
        }
        let family = prefix.family();
        let found: Vec<usize> = self
            .neighbors
            .iter()
            .enumerate()
            .filter(|(_, n)| filter.is_none_or(|f| f.contains(&n.config.address)))
            .filter(|(_, n)| n.config.families.contains(&family))
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(format!("no neighbor carries {family} for {prefix}"));
        }
        Ok(found)
    }

    /// Announces a route from `source` to the targeted neighbors.
    pub fn announce(
        &mut self,
        filter: Option<&[IpAddr]>,
        route: RouteSpec,
        source: SourceId,
        ops: &mut HashMap<usize, Vec<RouteOp>>,
    ) -> Reply {
        match self.targets(filter, &route.prefix) {
            Err(e) => Reply::err(e),
            Ok(targets) => {
                let attrs = self.interner.intern(route.attrs);
                for i in targets {
                    ops.entry(i).or_default().push(RouteOp::Announce(
                        route.prefix,
                        attrs.clone(),
                        source,
                    ));
                }
                Reply::ok("")
            }
        }
    }

    /// Withdraws `source`'s route (for ctl: whichever source holds the prefix).
    pub fn withdraw(
        &mut self,
        filter: Option<&[IpAddr]>,
        prefix: Prefix,
        source: SourceId,
        ops: &mut HashMap<usize, Vec<RouteOp>>,
    ) -> Reply {
        match self.targets(filter, &prefix) {
            Err(e) => Reply::err(e),
            Ok(targets) => {
                for i in targets {
                    ops.entry(i).or_default().push(RouteOp::Withdraw {
                        prefix,
                        source,
                        any: source == sources::CTL,
                    });
                }
                Reply::ok("")
            }
        }
    }

    async fn show(&self, what: Show, json: bool) -> Reply {
        match what {
            Show::Neighbors => {
                let mut list: Vec<NeighborStatus> = Vec::new();
                for n in &self.neighbors {
                    let (tx, rx) = oneshot::channel();
                    if n.tx.send(NeighborMsg::Status(tx)).is_ok()
                        && let Ok(s) = rx.await
                    {
                        list.push(s);
                    }
                }
                if json {
                    return json_reply(&list);
                }
                let lines: Vec<String> = list
                    .iter()
                    .map(|s| {
                        let up = s.uptime_secs.map(|u| {
                            format!(
                                "up {}",
                                humantime::format_duration(Duration::from_secs(u as u64))
                            )
                        });
                        format!(
                            "{:<20} AS{:<10} {:<12} {:<16} sent {:<8} received {:<8}{}",
                            s.address,
                            s.peer_as,
                            s.state,
                            up.unwrap_or_default(),
                            s.prefixes_sent,
                            s.prefixes_received,
                            s.last_error
                                .as_deref()
                                .map(|e| format!(" last error: {e}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                Reply::ok(lines.join("\n"))
            }
            Show::AdjRibOut(filter) | Show::AdjRibIn(filter) => {
                let out = matches!(what, Show::AdjRibOut(_));
                let mut rows: Vec<RouteRow> = Vec::new();
                for n in self
                    .neighbors
                    .iter()
                    .filter(|n| filter.is_none_or(|f| f == n.config.address))
                {
                    let (tx, rx) = oneshot::channel();
                    let msg = if out {
                        NeighborMsg::AdjRibOut(tx)
                    } else {
                        NeighborMsg::AdjRibIn(tx)
                    };
                    if n.tx.send(msg).is_ok()
                        && let Ok(r) = rx.await
                    {
                        rows.extend(r);
                    }
                }
                if let Some(f) = filter
                    && !self.neighbors.iter().any(|n| n.config.address == f)
                {
                    return Reply::err(format!("{f} is not a configured neighbor"));
                }
                if json {
                    return json_reply(&rows);
                }
                Reply::ok(
                    rows.iter()
                        .map(RouteRow::to_text)
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            }
            Show::Metrics => Reply::ok(self.metrics.encode()),
            Show::Plugins => {
                let list: Vec<_> = self.plugins.iter().map(|p| p.handle.status()).collect();
                if json {
                    return json_reply(&list);
                }
                Reply::ok(plugins::status_text(&list))
            }
        }
    }

    fn plugin(&self, name: &str) -> Result<&PluginSlot, Reply> {
        self.plugins
            .iter()
            .find(|p| p.config.spec.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .plugins
                    .iter()
                    .map(|p| p.config.spec.name.as_str())
                    .collect();
                Reply::err(format!(
                    "no plugin named {name:?} (configured: {})",
                    known.join(", ")
                ))
            })
    }

    /// The route source of a running plugin.
    fn plugin_source(&self, name: &str) -> Option<SourceId> {
        self.plugins
            .iter()
            .find(|p| p.config.spec.name == name)
            .map(|p| p.source)
    }

    fn plugin_action(&mut self, action: PluginAction, name: &str) -> Reply {
        let slot = match self.plugin(name) {
            Ok(s) => s,
            Err(r) => return r,
        };
        match action {
            PluginAction::Disable => slot.handle.disable(),
            PluginAction::Enable => slot.handle.enable(),
            PluginAction::Reload => {
                if let Err(e) = slot.handle.reload(slot.config.spec.clone()) {
                    return Reply::err(format!("plugin {name}: reload refused: {e:#}"));
                }
                info!(plugin = %name, "plugin reloaded in place");
            }
        }
        Reply::ok("")
    }

    fn on_plugin_event(&mut self, ev: PluginEvent, ops: &mut HashMap<usize, Vec<RouteOp>>) {
        match ev {
            PluginEvent::Health {
                plugin,
                health,
                reason,
            } => {
                let Some(i) = self
                    .plugins
                    .iter()
                    .position(|p| p.config.spec.name == plugin)
                else {
                    return;
                };
                tracing::debug!(%plugin, %health, %reason, "applying health to routes");
                self.plugins[i].health = Some(health);
                let source = self.plugins[i].source;
                for route in self.plugins[i].config.routes.clone() {
                    let action = match health {
                        Health::Up => Some((*route.up).clone()),
                        Health::Down => degraded_attrs(&route.up, route.down),
                        Health::Disabled => degraded_attrs(&route.up, route.disabled),
                    };
                    let _ = match action {
                        Some(attrs) => self.announce(
                            route.neighbors.as_deref(),
                            RouteSpec {
                                prefix: route.prefix,
                                attrs,
                            },
                            source,
                            ops,
                        ),
                        None => {
                            self.withdraw(route.neighbors.as_deref(), route.prefix, source, ops)
                        }
                    };
                }
            }
            PluginEvent::Failed {
                plugin,
                error,
                on_failure,
            } => {
                let Some(slot) = self
                    .plugins
                    .iter_mut()
                    .find(|p| p.config.spec.name == plugin)
                else {
                    return;
                };
                tracing::warn!(%plugin, %error, ?on_failure, "plugin failed; BGP sessions are unaffected");
                if on_failure == OnFailure::Withdraw {
                    slot.health = None;
                    let source = slot.source;
                    for i in 0..self.neighbors.len() {
                        ops.entry(i)
                            .or_default()
                            .push(RouteOp::WithdrawSource(source));
                    }
                }
            }
            PluginEvent::Announce {
                plugin,
                route,
                neighbors,
            } => {
                let Some(source) = self.plugin_source(&plugin) else {
                    return;
                };
                let filter = (!neighbors.is_empty()).then_some(neighbors);
                let r = self.announce(filter.as_deref(), route, source, ops);
                if !r.ok {
                    tracing::warn!(%plugin, error = %r.error, "plugin route not announced");
                }
            }
            PluginEvent::Withdraw {
                plugin,
                prefix,
                neighbors,
            } => {
                let Some(source) = self.plugin_source(&plugin) else {
                    return;
                };
                let filter = (!neighbors.is_empty()).then_some(neighbors);
                let _ = self.withdraw(filter.as_deref(), prefix, source, ops);
            }
        }
    }
}

/// The attributes of a health route while down or disabled; `None` means withdraw.
fn degraded_attrs(
    up: &wasmbgp_bgp::PathAttributes,
    how: Degraded,
) -> Option<wasmbgp_bgp::PathAttributes> {
    match how {
        Degraded::Withdraw => None,
        Degraded::Med(m) => Some(wasmbgp_bgp::PathAttributes {
            med: Some(m),
            ..up.clone()
        }),
    }
}

fn json_reply<T: serde::Serialize>(value: &T) -> Reply {
    match serde_json::to_string_pretty(value) {
        Ok(s) => Reply::ok(s),
        Err(e) => Reply::err(format!("cannot encode JSON: {e}")),
    }
}
