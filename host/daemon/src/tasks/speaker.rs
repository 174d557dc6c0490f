//! The speaker: carries out control commands (and, through the same path, plugin route
//! requests) by turning them into route changes for the neighbor tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::rib::{AdjRibOut, Interner, SourceId};
use wasmbgp_bgp::words::RouteSpec;

use wasmbgp_runtime::{Health, OnFailure, PluginEvent};

use super::critical::CriticalTasks;
use super::exporters::{self, ExportHub, ExporterLink};
pub use super::limits::FAMILY_COUNT;
use super::listener::Inbound;
use super::messages::SpeakerMsg;
use super::messages::{Carried, Farewell, NeighborEvent, NeighborId, NeighborMsg, Running};
use super::neighbor::{self, NeighborHandle, Shared};
use super::plugins::{self, PluginSlot};
use super::ribs::{self, NeighborRibs, PolicyLink};
use super::sources;
use crate::config::diff::{ReloadPlan, ReloadSummary};
use crate::config::{Degraded, Globals, NeighborConfig, RouteGroup};
use crate::ctl::command::{Command, PanicTarget, PluginAction, Show};
use crate::ctl::json::{NeighborStatus, Reply, RouteRow};
use crate::metrics::Metrics;

/// A cloneable handle on the speaker task.
#[derive(Debug, Clone)]
pub struct SpeakerHandle {
    tx: mpsc::Sender<SpeakerMsg>,
}

/// Requests waiting for the speaker: when full, a control client or a reload waits for
/// room (each waits on its own answer anyway).
pub const SPEAKER_QUEUE: usize = 64;

impl SpeakerHandle {
    /// A handle and the mailbox the speaker will read (so that what needs the handle,
    /// such as the plugin file watcher, can exist before the speaker runs).
    pub fn channel() -> (Self, mpsc::Receiver<SpeakerMsg>) {
        let (tx, rx) = mpsc::channel(SPEAKER_QUEUE);
        (SpeakerHandle { tx }, rx)
    }

    /// Runs commands; `None` once the speaker has stopped.
    pub async fn execute(&self, batch: Vec<Result<Command, String>>) -> Option<Vec<Reply>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(SpeakerMsg::Batch(batch, tx)).await.ok()?;
        rx.await.ok()
    }

    /// What runs now; `None` once the speaker has stopped.
    pub async fn running(&self) -> Option<Running> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(SpeakerMsg::Running(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Records a plugin's new spec once its new instance serves.
    pub async fn plugin_swapped(&self, spec: wasmbgp_runtime::PluginSpec) {
        let _ = self.tx.send(SpeakerMsg::PluginSwapped(spec)).await;
    }

    /// Applies a reload's plan; `None` once the speaker has stopped.
    pub async fn apply(&self, plan: ReloadPlan) -> Option<ReloadSummary> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(SpeakerMsg::Apply(Box::new(plan), tx))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Shuts every session down as `farewell` says and waits for what goes to the
    /// peers to leave.
    pub async fn shutdown(&self, farewell: Farewell) {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(SpeakerMsg::Shutdown(farewell, tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

/// The most plugin events applied in one go before their routes are sent.
const MAX_PLUGIN_EVENTS_PER_TURN: usize = 4096;
/// The most neighbor events taken in one go before their import policies run.
const MAX_EVENTS_PER_JUDGEMENT: usize = 1024;
/// The most received routes staged before their import policies run.
const MAX_ROUTES_PER_JUDGEMENT: usize = 4 * ribs::CHUNK;

/// What a speaker is made of.
pub struct SpeakerParts {
    /// The settings a reload cannot change.
    pub globals: Globals,
    /// The shutdown communication, if configured.
    pub shutdown_message: Option<String>,
    /// The plugin runtime, to start plugins a reload adds.
    pub runtime: wasmbgp_runtime::Runtime,
    /// Names of route sources.
    pub sources: sources::Sources,
    /// The neighbors, in file order.
    pub neighbors: Vec<NeighborConfig>,
    /// The static routes and route files.
    pub routes: Vec<RouteGroup>,
    /// What every neighbor task shares.
    pub shared: Shared,
    /// Where neighbor tasks are started and watched.
    pub critical: CriticalTasks,
    /// The listeners' map of peers to neighbor tasks.
    pub inbound: Inbound,
    /// The running plugins.
    pub plugins: Vec<PluginSlot>,
    /// Where plugins' events go (for plugins a reload adds).
    pub plugin_events: wasmbgp_runtime::EventSender,
    /// The watcher of the plugins' files.
    pub watcher: Option<plugins::FileWatcher>,
    /// Counters and gauges.
    pub metrics: Arc<Metrics>,
    /// `ctl debug panic` is allowed.
    pub fault_injection: bool,
}

/// The speaker's state.
pub struct Speaker {
    globals: Globals,
    shutdown_message: Option<String>,
    runtime: wasmbgp_runtime::Runtime,
    sources: sources::Sources,
    /// The neighbor tasks, in file order.
    neighbors: Vec<NeighborHandle>,
    /// The routes of each neighbor, in the order of `neighbors`.
    ribs: Vec<NeighborRibs>,
    /// Each neighbor's session state, as last reported (for exporters' snapshots).
    session_states: Vec<wasmbgp_bgp::session::State>,
    /// Where a neighbor task's id is in those lists.
    index: HashMap<NeighborId, usize>,
    next_id: u64,
    shared: Shared,
    critical: CriticalTasks,
    inbound: Inbound,
    plugins: Vec<PluginSlot>,
    plugin_events: wasmbgp_runtime::EventSender,
    watcher: Option<plugins::FileWatcher>,
    interner: Interner,
    metrics: Arc<Metrics>,
    /// `ctl debug panic` is allowed (`WASMBGP_FAULT_INJECTION=1`).
    fault_injection: bool,
    /// The exporters' feed.
    hub: ExportHub,
}

impl Speaker {
    /// A speaker over the given neighbors, their routes and the running plugins; starts
    /// the neighbor tasks (their sessions wait for [`run`](Self::spawn)).
    pub fn new(parts: SpeakerParts) -> Self {
        let mut speaker = Speaker {
            hub: ExportHub::default(),
            globals: parts.globals,
            shutdown_message: parts.shutdown_message,
            runtime: parts.runtime,
            sources: parts.sources,
            neighbors: Vec::new(),
            ribs: Vec::new(),
            session_states: Vec::new(),
            index: HashMap::new(),
            next_id: 0,
            shared: parts.shared,
            critical: parts.critical,
            inbound: parts.inbound,
            plugins: parts.plugins,
            plugin_events: parts.plugin_events,
            watcher: parts.watcher,
            interner: Interner::new(),
            metrics: parts.metrics,
            fault_injection: parts.fault_injection,
        };
        speaker.relink_exporters();
        for config in parts.neighbors {
            let mut originated = AdjRibOut::new();
            originated.load(config_routes(&config, &parts.routes), sources::CONFIG);
            speaker.add_neighbor(config, originated, None, true);
        }
        let total: usize = parts.routes.iter().map(|g| g.routes.len()).sum();
        speaker.metrics.source_routes("config", total as i64);
        speaker
    }

    /// Starts the speaker as a critical task, reading `rx` (from
    /// [`SpeakerHandle::channel`]); plugin events arrive on `events`, what the
    /// neighbors receive on `from_neighbors`. It first gives every neighbor its initial
    /// Adj-RIB-Out (after export policy), which starts their sessions.
    pub fn spawn(
        self,
        rx: mpsc::Receiver<SpeakerMsg>,
        events: mpsc::Receiver<PluginEvent>,
        from_neighbors: mpsc::Receiver<NeighborEvent>,
    ) {
        let tasks = self.critical.clone();
        tasks.spawn("speaker", self.run(rx, events, from_neighbors));
    }

    /// Feeds every exporter plugin (after a reload added or removed some), and has the
    /// neighbors' received routes recorded as they want.
    fn relink_exporters(&mut self) {
        let links: Vec<ExporterLink> = self
            .plugins
            .iter()
            .filter_map(|p| {
                Some(ExporterLink {
                    client: p.handle.exporter()?.clone(),
                    subscription: p
                        .config
                        .subscription
                        .unwrap_or(crate::config::Subscription::ALL),
                })
            })
            .collect();
        self.hub.flush();
        self.hub = ExportHub::new(links);
        let wanted = self.hub.wanted();
        for ribs in &mut self.ribs {
            ribs.set_recording(wanted.received_pre, wanted.received_post);
        }
    }

    /// Starts a neighbor's task with the routes it is to be sent; its session starts
    /// when it is given its Adj-RIB-Out after export policy
    /// ([`start_neighbor`](Self::start_neighbor)).
    fn add_neighbor(
        &mut self,
        config: NeighborConfig,
        originated: AdjRibOut,
        predecessor: Option<oneshot::Receiver<Carried>>,
        restarted: bool,
    ) -> usize {
        let id = NeighborId(self.next_id);
        self.next_id += 1;
        let mut ribs = NeighborRibs::new(originated, !config.import_policy.is_empty());
        let wanted = self.hub.wanted();
        ribs.set_recording(wanted.received_pre, wanted.received_post);
        self.metrics
            .max_prefixes(&config.address.to_string(), &limits_of(&config));
        let handle = neighbor::spawn(
            config,
            id,
            self.shared.clone(),
            predecessor,
            restarted,
            &self.critical,
        );
        self.inbound.insert(
            handle.config.address,
            handle.tx.clone(),
            handle.config.md5.as_ref(),
        );
        self.neighbors.push(handle);
        self.ribs.push(ribs);
        self.session_states.push(wasmbgp_bgp::session::State::Idle);
        self.index.insert(id, self.neighbors.len() - 1);
        self.neighbors.len() - 1
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<SpeakerMsg>,
        mut events: mpsc::Receiver<PluginEvent>,
        mut from_neighbors: mpsc::Receiver<NeighborEvent>,
    ) {
        // With graceful restart, the peers may hold our routes from before a restart
        // and drop those we have not sent again at our End-of-RIB: it must come after
        // the routes the health checks control, or the peers drop them then and get
        // them again a check later. So the End-of-RIBs wait (boundedly) for the
        // checks' first verdicts; the sessions and the rest of the table do not.
        let mut hold = self.first_verdicts_deadline();
        if let Some(deadline) = hold {
            info!(
                within_ms = deadline
                    .saturating_duration_since(std::time::Instant::now())
                    .as_millis() as u64,
                "graceful restart: the End-of-RIBs wait for every health check's first verdict"
            );
        }
        for i in 0..self.neighbors.len() {
            self.start_neighbor(i, hold.is_some()).await;
        }
        loop {
            // What the last turn produced goes to the exporters (never waits).
            self.hub.flush();
            if hold.is_some() && self.first_verdicts_in() {
                info!("every health check has given its first verdict: sending the End-of-RIBs");
                hold = None;
                self.release_end_of_rib().await;
            }
            let msg = tokio::select! {
                biased;
                // Control requests first: an operator's `show` is answered between
                // batches of a large import or of a plugin's announcements, never
                // after them.
                msg = rx.recv() => match msg {
                    Some(m) => m,
                    None => return,
                },
                _ = tokio::time::sleep_until(hold.unwrap_or_else(std::time::Instant::now).into()), if hold.is_some() => {
                    warn!("not every health check has given a verdict in time: sending the End-of-RIBs anyway");
                    hold = None;
                    self.release_end_of_rib().await;
                    continue;
                }
                Some(ev) = events.recv() => {
                    let since = std::time::Instant::now();
                    self.on_plugin_event(ev).await;
                    // Take the events already queued before sending, so a burst becomes
                    // one flush; bounded, so that a plugin announcing in a loop cannot
                    // hold the speaker.
                    for _ in 0..MAX_PLUGIN_EVENTS_PER_TURN {
                        match events.try_recv() {
                            Ok(ev) => self.on_plugin_event(ev).await,
                            Err(_) => break,
                        }
                    }
                    self.publish(Some(since)).await;
                    continue;
                }
                Some(ev) = from_neighbors.recv() => {
                    let started = std::time::Instant::now();
                    let mut staged = self.on_neighbor_event(ev).await;
                    // UPDATEs queued together are judged together (a few policy calls
                    // per neighbor rather than one per UPDATE), up to a bound that
                    // keeps the staged lists small.
                    for _ in 0..MAX_EVENTS_PER_JUDGEMENT {
                        if staged >= MAX_ROUTES_PER_JUDGEMENT {
                            break;
                        }
                        match from_neighbors.try_recv() {
                            Ok(ev) => staged += self.on_neighbor_event(ev).await,
                            Err(_) => break,
                        }
                    }
                    self.judge_received().await;
                    self.record_received();
                    self.check_prefix_limits().await;
                    self.metrics.update_processing(started.elapsed());
                    continue;
                }
            };
            match msg {
                SpeakerMsg::Batch(batch, reply) => {
                    let replies = self.execute(batch).await;
                    let _ = reply.send(replies);
                }
                SpeakerMsg::Running(reply) => {
                    let _ = reply.send(self.running());
                }
                SpeakerMsg::PluginSwapped(spec) => self.plugin_swapped(spec),
                SpeakerMsg::Apply(plan, reply) => {
                    let summary = self.apply(*plan).await;
                    let _ = reply.send(summary);
                }
                SpeakerMsg::Shutdown(farewell, done) => {
                    for p in self.plugins.drain(..) {
                        p.handle.stop().await;
                    }
                    // No shutdown communication unless one is configured or given:
                    // some peers (ExaBGP 4.2) cannot parse one.
                    let notification = match farewell {
                        Farewell::GracefulRestart => None,
                        Farewell::Cease(message) => Some(match message.or(self.shutdown_message.clone()) {
                            Some(m) => wasmbgp_bgp::packet::Notification::administrative_shutdown(&m),
                            None => wasmbgp_bgp::packet::Notification::cease(
                                wasmbgp_bgp::packet::notification::cease_sub::ADMINISTRATIVE_SHUTDOWN,
                            ),
                        }),
                    };
                    let mut waits = Vec::new();
                    for n in &self.neighbors {
                        let (tx, rx) = oneshot::channel();
                        if n.tx
                            .send(NeighborMsg::Shutdown(notification.clone(), tx))
                            .await
                            .is_ok()
                        {
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
        for cmd in batch {
            let reply = match cmd {
                Err(e) => Reply::err(e),
                Ok(Command::Announce { neighbors, route }) => {
                    self.announce(neighbors.as_deref(), route, sources::CTL)
                }
                Ok(Command::Withdraw { neighbors, prefix }) => {
                    self.withdraw(neighbors.as_deref(), prefix, sources::CTL)
                }
                Ok(Command::Show { what, json }) => {
                    self.publish(None).await;
                    self.show(what, json).await
                }
                Ok(Command::Plugin { action, name }) => self.plugin_action(action, &name).await,
                // Prepared off the speaker: the control server carries these out.
                Ok(
                    Command::Reload { .. } | Command::PluginReload { .. } | Command::Shutdown(_),
                ) => Reply::err("reloads are carried out by the control server"),
                Ok(Command::PolicyReevaluate(name)) => {
                    self.publish(None).await;
                    match self.plugin(&name) {
                        Err(r) => r,
                        Ok(slot) if slot.handle.policy().is_none() => {
                            Reply::err(format!("plugin {name} is not a policy"))
                        }
                        Ok(_) => {
                            let changed = self.reevaluate(&name).await;
                            Reply::ok(format!("{changed} export decisions sent"))
                        }
                    }
                }
                Ok(Command::DebugPanic(target)) => self.debug_panic(target),
            };
            replies.push(reply);
        }
        self.publish(None).await;
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
                        let _ = n.tx.try_send(NeighborMsg::Panic);
                        Reply::ok("")
                    }
                    None => Reply::err(format!("{address} is not a configured neighbor")),
                }
            }
        }
    }

    /// The policies of a chain, by name (names were checked against the config).
    fn chain(&self, names: &[String]) -> Vec<PolicyLink> {
        names
            .iter()
            .filter_map(|name| {
                let slot = self.plugins.iter().find(|p| &p.config.spec.name == name)?;
                Some(PolicyLink {
                    client: slot.handle.policy()?.clone(),
                    on_failure: slot.config.spec.on_failure,
                })
            })
            .collect()
    }

    fn policy_session(&self, i: usize) -> wasmbgp_runtime::PolicySession {
        let c = &self.neighbors[i].config;
        ribs::session(c.address, c.peer_as, self.globals.local_as)
    }

    /// When the End-of-RIBs go at the latest if they wait for the health checks' first
    /// verdicts: with graceful restart and health checks that control routes, half
    /// the restart time (at most 30 s); else `None`, they go with the table.
    fn first_verdicts_deadline(&self) -> Option<std::time::Instant> {
        let waits = self.globals.graceful_restart > 0
            && self.plugins.iter().any(|p| !p.config.routes.is_empty());
        waits.then(|| {
            let half = Duration::from_secs(u64::from(self.globals.graceful_restart) / 2);
            std::time::Instant::now() + half.min(Duration::from_secs(30))
        })
    }

    /// Every health check that controls routes has given a verdict or failed.
    fn first_verdicts_in(&self) -> bool {
        self.plugins
            .iter()
            .all(|p| p.config.routes.is_empty() || p.settled)
    }

    /// Has every neighbor send the End-of-RIBs it holds back.
    async fn release_end_of_rib(&mut self) {
        for n in &self.neighbors {
            let _ = n.tx.send(NeighborMsg::EndOfRib).await;
        }
    }

    /// Gives a neighbor its initial Adj-RIB-Out (after export policy); this starts its
    /// session. With `end_of_rib_held` its End-of-RIBs wait for
    /// [`release_end_of_rib`](Self::release_end_of_rib).
    async fn start_neighbor(&mut self, i: usize, end_of_rib_held: bool) {
        let chain = self.chain(&self.neighbors[i].config.export_policy);
        let session = self.policy_session(i);
        let started = std::time::Instant::now();
        let table = self.ribs[i]
            .export_table(&chain, session, &mut self.interner)
            .await;
        if !chain.is_empty() {
            info!(
                neighbor = %self.neighbors[i].config.address,
                routes = self.ribs[i].originated.len(),
                accepted = table.len(),
                ms = started.elapsed().as_millis() as u64,
                "export policy applied to the initial Adj-RIB-Out"
            );
        }
        self.ribs[i].originated.clear_pending();
        self.record_sent_table(i, &table);
        let _ = self.neighbors[i]
            .tx
            .send(NeighborMsg::Start {
                table: Box::new(table),
                end_of_rib_held,
            })
            .await;
    }

    /// Sends every neighbor the changes of its originated routes, through its export
    /// policy.
    async fn publish(&mut self, since: Option<std::time::Instant>) {
        for i in 0..self.neighbors.len() {
            if !self.ribs[i].originated.has_pending() {
                continue;
            }
            let chain = self.chain(&self.neighbors[i].config.export_policy);
            let session = self.policy_session(i);
            let changes = self.ribs[i]
                .export_changes(&chain, session, &mut self.interner)
                .await;
            if self.hub.wanted().sent {
                let s = self.export_session(i);
                self.hub.routes(
                    s,
                    wasmbgp_runtime::export::RouteDirection::Sent,
                    changes
                        .iter()
                        .map(|c| (c.prefix.clone(), c.route.as_ref().map(|(a, _)| a))),
                );
            }
            if !changes.is_empty() {
                let _ = self.neighbors[i]
                    .tx
                    .send(NeighborMsg::Routes { changes, since })
                    .await;
            }
        }
    }

    /// Judges again every route `policy` filters, in both directions; the neighbor
    /// tasks send only what changed. Returns the number of export decisions sent.
    async fn reevaluate(&mut self, policy: &str) -> usize {
        let mut sent = 0;
        for i in 0..self.neighbors.len() {
            let config = &self.neighbors[i].config;
            let export = config.export_policy.iter().any(|p| p == policy);
            let import = config.import_policy.iter().any(|p| p == policy);
            if export {
                sent += self.ribs[i].originated.len();
            }
            self.judge_again(i, export, import).await;
            if export || import {
                info!(%policy, neighbor = %self.neighbors[i].config.address, export, import, "routes judged again");
            }
        }
        // The attribute sets of the old verdicts are no longer used.
        self.interner.prune();
        sent
    }

    /// Judges neighbor `i`'s routes again through its chains as they are now: what it
    /// is sent (`export`; its task sends only what differs) and what it sent (`import`).
    async fn judge_again(&mut self, i: usize, export: bool, import: bool) {
        let session = self.policy_session(i);
        if export {
            let chain = self.chain(&self.neighbors[i].config.export_policy);
            let table = self.ribs[i]
                .export_table(&chain, session, &mut self.interner)
                .await;
            self.record_sent_table(i, &table);
            let _ = self.neighbors[i]
                .tx
                .send(NeighborMsg::Replace(Box::new(table)))
                .await;
        }
        if import {
            let chain = self.chain(&self.neighbors[i].config.import_policy);
            self.ribs[i].set_import_policy(!chain.is_empty());
            self.ribs[i]
                .import_all(&chain, session, &mut self.interner)
                .await;
            self.count_received(i);
            self.record_received();
        }
    }

    /// Applies what a neighbor reported; returns the routes it staged for the import
    /// policy. Exporters see events in the order they happened: before a session,
    /// NOTIFICATION or End-of-RIB event, the routes received before it are judged and
    /// recorded.
    async fn on_neighbor_event(&mut self, event: NeighborEvent) -> usize {
        match event {
            NeighborEvent::Update { neighbor, update } => {
                // A task a reload stopped may still report; what it says is moot.
                let Some(i) = self.index_of(neighbor) else {
                    return 0;
                };
                let eor = update.end_of_rib_family();
                let ebgp = self.neighbors[i].config.peer_as != self.globals.local_as;
                let before = self.ribs[i].unjudged();
                let counts = self.ribs[i].receive(&update, ebgp, self.globals.local_as);
                self.metrics.routes_received(
                    &self.neighbors[i].config.address.to_string(),
                    counts.announced,
                    counts.withdrawn,
                );
                if self.ribs[i].unjudged() == 0 {
                    self.count_received(i);
                }
                if let Some(family) = eor
                    && !self.hub.is_empty()
                {
                    self.catch_up_received().await;
                    let s = self.export_session(i);
                    self.hub.end_of_rib(s, family);
                    return 0;
                }
                self.ribs[i].unjudged() - before
            }
            NeighborEvent::Down { neighbor, stale } => {
                let Some(i) = self.index_of(neighbor) else {
                    return 0;
                };
                self.catch_up_received().await;
                self.ribs[i].session_down(&stale);
                self.count_received(i);
                self.record_received();
                0
            }
            NeighborEvent::StaleEnd { neighbor, families } => {
                let Some(i) = self.index_of(neighbor) else {
                    return 0;
                };
                // What arrived before the End-of-RIB is applied first: a route sent
                // again is no longer stale, and exporters never see it withdrawn.
                self.catch_up_received().await;
                let swept = self.ribs[i].end_stale(&families);
                info!(neighbor = %self.neighbors[i].config.address, routes = swept, "stale routes removed");
                self.count_received(i);
                self.record_received();
                0
            }
            NeighborEvent::State {
                neighbor,
                old,
                new,
                reason,
            } => {
                let Some(i) = self.index_of(neighbor) else {
                    return 0;
                };
                self.session_states[i] = new;
                if !self.hub.is_empty() {
                    self.catch_up_received().await;
                    let s = self.export_session(i);
                    self.hub.session_state(s, old, new, reason);
                }
                0
            }
            NeighborEvent::Notification {
                neighbor,
                sent,
                notification,
            } => {
                let Some(i) = self.index_of(neighbor) else {
                    return 0;
                };
                if !self.hub.is_empty() {
                    self.catch_up_received().await;
                    let s = self.export_session(i);
                    self.hub.notification(s, sent, &notification);
                }
                0
            }
        }
    }

    /// Judges what waits for import policy and hands every recorded change to the
    /// exporters' feed, so that the next event comes after them.
    async fn catch_up_received(&mut self) {
        if self.ribs.iter().any(|r| r.unjudged() > 0) {
            self.judge_received().await;
        }
        self.record_received();
    }

    /// Hands the received changes recorded since the last call to the exporters' feed.
    fn record_received(&mut self) {
        use wasmbgp_runtime::export::RouteDirection;
        for i in 0..self.ribs.len() {
            if !self.ribs[i].has_recorded() {
                continue;
            }
            let (pre, post) = self.ribs[i].take_recorded();
            let s = self.export_session(i);
            self.hub
                .received(s, RouteDirection::ReceivedPrePolicy, &pre);
            self.hub.received(s, RouteDirection::Received, &post);
        }
    }

    /// A whole Adj-RIB-Out handed to a neighbor, as routes sent (for exporters).
    fn record_sent_table(&mut self, i: usize, table: &wasmbgp_bgp::rib::AdjRibOut) {
        if self.hub.wanted().sent {
            let s = self.export_session(i);
            self.hub.routes(
                s,
                wasmbgp_runtime::export::RouteDirection::Sent,
                table.routes().map(|(p, a, _)| (p, Some(a))),
            );
        }
    }

    /// A neighbor's session, for exporters.
    fn export_session(&self, i: usize) -> wasmbgp_runtime::export::Session {
        let c = &self.neighbors[i].config;
        exporters::session(c.address, c.peer_as, self.globals.local_as)
    }

    /// Builds the snapshot an exporter's new instance starts from: every session in its
    /// state, and (if it receives routes) each session's received routes; everything
    /// recorded before is delivered first, so the snapshot follows it exactly.
    async fn snapshot_for(&mut self, plugin: &str) {
        use wasmbgp_runtime::export::{ExportEvent, RouteDirection};
        let Some(subscription) = self.hub.link(plugin).map(|l| l.subscription) else {
            return;
        };
        self.catch_up_received().await;
        self.hub.flush();
        let started = std::time::Instant::now();
        let mut events = Vec::new();
        for i in 0..self.neighbors.len() {
            let s = self.export_session(i);
            let state = self.session_states[i];
            if subscription.sessions {
                let state = exporters::state_of(state);
                events.push(Arc::new(ExportEvent::Session {
                    session: s,
                    old: state,
                    new: state,
                    reason: "snapshot".into(),
                }));
            }
            if subscription.routes_received {
                let (direction, routes): (_, Box<dyn Iterator<Item = _>>) =
                    if subscription.pre_policy {
                        (
                            RouteDirection::ReceivedPrePolicy,
                            Box::new(self.ribs[i].adj_in.routes()),
                        )
                    } else {
                        (
                            RouteDirection::Received,
                            Box::new(self.ribs[i].adj_in.accepted_routes()),
                        )
                    };
                let routes = routes.map(|(p, a)| (p, Some(a)));
                events.extend(
                    exporters::route_events(s, direction, routes)
                        .into_iter()
                        .map(|e| Arc::new(ExportEvent::Routes(e))),
                );
            }
        }
        if let Some(link) = self.hub.link(plugin) {
            let count = events.len();
            link.client.snapshot(events);
            tracing::debug!(%plugin, events = count, ms = started.elapsed().as_millis() as u64, "exporter snapshot taken");
        }
    }

    /// Runs the import policies on what the neighbors sent since they last ran.
    async fn judge_received(&mut self) {
        for i in 0..self.neighbors.len() {
            if self.ribs[i].unjudged() == 0 {
                continue;
            }
            let chain = self.chain(&self.neighbors[i].config.import_policy);
            let session = self.policy_session(i);
            self.ribs[i]
                .judge_received(&chain, session, &mut self.interner)
                .await;
            self.count_received(i);
        }
    }

    fn count_received(&self, i: usize) {
        let label = self.neighbors[i].config.address.to_string();
        self.metrics
            .prefixes_received(&label, self.ribs[i].adj_in.accepted_len() as i64);
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
    ) -> Reply {
        match self.targets(filter, &route.prefix) {
            Err(e) => Reply::err(e),
            Ok(targets) => {
                let attrs = self.interner.intern(route.attrs);
                let family = route.prefix.family();
                let mut capped = Vec::new();
                for i in targets {
                    let originated = &mut self.ribs[i].originated;
                    // The cap counts prefixes: a new one past it is refused, a change
                    // to one already there is not.
                    let cap = self.neighbors[i].config.max_advertise.get(family);
                    if let Some(cap) = cap
                        && originated.get(&route.prefix).is_none()
                        && originated.len_family(family) >= cap as usize
                    {
                        let address = self.neighbors[i].config.address;
                        self.metrics.route_refused(&address.to_string(), family);
                        capped.push(format!("{address} (max-advertise {cap})"));
                        continue;
                    }
                    originated.announce(route.prefix.clone(), attrs.clone(), source);
                }
                if capped.is_empty() {
                    Reply::ok("")
                } else {
                    Reply::err(format!(
                        "{} not announced to {}: the {family} cap is reached",
                        route.prefix,
                        capped.join(", ")
                    ))
                }
            }
        }
    }

    /// Withdraws `source`'s route (for ctl: whichever source holds the prefix).
    pub fn withdraw(
        &mut self,
        filter: Option<&[IpAddr]>,
        prefix: Prefix,
        source: SourceId,
    ) -> Reply {
        match self.targets(filter, &prefix) {
            Err(e) => Reply::err(e),
            Ok(targets) => {
                for i in targets {
                    let table = &mut self.ribs[i].originated;
                    if !table.withdraw(prefix.clone(), source)
                        && source == sources::CTL
                        && let Some((_, holder)) = table.get(&prefix)
                    {
                        table.withdraw(prefix.clone(), holder);
                    }
                }
                Reply::ok("")
            }
        }
    }

    async fn show(&self, what: Show, json: bool) -> Reply {
        match what {
            Show::Neighbors => {
                let mut list: Vec<NeighborStatus> = Vec::new();
                for (n, ribs) in self.neighbors.iter().zip(&self.ribs) {
                    let (tx, rx) = oneshot::channel();
                    if n.tx.send(NeighborMsg::Status(tx)).await.is_ok()
                        && let Ok(mut s) = rx.await
                    {
                        s.prefixes_received = ribs.adj_in.accepted_len();
                        s.stale_routes = ribs.adj_in.stale_len();
                        let limit = &n.config.max_prefixes;
                        let counts = ribs.received_counts();
                        for (family, received) in super::limits::FAMILIES.into_iter().zip(counts) {
                            if let Some(max) = limit.limits.get(family)
                                && n.config.families.contains(&family)
                            {
                                s.prefix_limits.push(crate::ctl::json::PrefixLimitStatus {
                                    family: family.name(),
                                    received,
                                    limit: max,
                                    action: match limit.action {
                                        crate::config::LimitAction::Cease => "cease",
                                        crate::config::LimitAction::Warn => "warn",
                                    }
                                    .into(),
                                });
                            }
                        }
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
                            "{:<20} AS{:<10} {:<12} {:<16} sent {:<8} received {:<8}{}{}",
                            s.address,
                            s.peer_as,
                            s.state,
                            up.unwrap_or_default(),
                            s.prefixes_sent,
                            s.prefixes_received,
                            if s.stale_routes > 0 {
                                format!(" stale {}", s.stale_routes)
                            } else {
                                String::new()
                            } + &s
                                .md5
                                .as_deref()
                                .map(|m| format!(" md5: {m}"))
                                .unwrap_or_default()
                                + &s.prefix_limits
                                    .iter()
                                    .map(|l| {
                                        format!(
                                            " max-prefixes {} {}/{} ({})",
                                            l.family, l.received, l.limit, l.action
                                        )
                                    })
                                    .collect::<String>(),
                            s.last_error
                                .as_deref()
                                .map(|e| format!(" last error: {e}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                Reply::ok(lines.join("\n"))
            }
            Show::AdjRibOut {
                neighbor,
                pre_policy,
            }
            | Show::AdjRibIn {
                neighbor,
                pre_policy,
            } => {
                if let Some(f) = neighbor
                    && !self.neighbors.iter().any(|n| n.config.address == f)
                {
                    return Reply::err(format!("{f} is not a configured neighbor"));
                }
                let out = matches!(what, Show::AdjRibOut { .. });
                let names = self.sources.snapshot();
                let mut rows: Vec<RouteRow> = Vec::new();
                for (n, ribs) in self
                    .neighbors
                    .iter()
                    .zip(&self.ribs)
                    .filter(|(n, _)| neighbor.is_none_or(|f| f == n.config.address))
                {
                    let address = n.config.address;
                    match (out, pre_policy) {
                        // After export policy: what the neighbor task holds and sends.
                        (true, false) => {
                            let (tx, rx) = oneshot::channel();
                            if n.tx.send(NeighborMsg::AdjRibOut(tx)).await.is_ok()
                                && let Ok(r) = rx.await
                            {
                                rows.extend(r);
                            }
                        }
                        (true, true) => rows.extend(ribs.originated.routes().map(|(p, a, s)| {
                            RouteRow::new(address, p, a, names.get(s as usize).cloned())
                        })),
                        // The Adj-RIB-In is a hash table: shown in prefix order.
                        (false, pre) => {
                            let mut routes: Vec<_> = if pre {
                                ribs.adj_in.routes().collect()
                            } else {
                                ribs.adj_in.accepted_routes().collect()
                            };
                            routes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                            rows.extend(
                                routes
                                    .into_iter()
                                    .map(|(p, a)| RouteRow::new(address, p, a, None)),
                            );
                        }
                    }
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

    async fn plugin_action(&self, action: PluginAction, name: &str) -> Reply {
        let slot = match self.plugin(name) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let result = match action {
            PluginAction::Disable => slot.handle.disable(),
            PluginAction::Enable => slot.handle.enable(),
        };
        match result {
            Ok(()) => Reply::ok(""),
            Err(e) => Reply::err(format!("plugin {name}: {e:#}")),
        }
    }

    /// Puts plugin `i`'s health routes where its last verdict says. Announcing what a
    /// neighbor already has changes nothing (attributes are interned), so this also
    /// serves a reload that changed the routes or added a neighbor.
    fn apply_health(&mut self, i: usize) {
        let Some(health) = self.plugins[i].health else {
            return;
        };
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
                ),
                None => self.withdraw(route.neighbors.as_deref(), route.prefix, source),
            };
        }
    }

    /// Max-prefixes: warns at the configured percentage, and past a limit ends the
    /// session with Cease/Maximum Number of Prefixes Reached (or only warns).
    async fn check_prefix_limits(&mut self) {
        use super::limits::Crossing;
        for i in 0..self.neighbors.len() {
            let limit = &self.neighbors[i].config.max_prefixes;
            if limit.limits.is_empty() {
                continue;
            }
            let counts = self.ribs[i].received_counts();
            let crossings = self.ribs[i].limits.check(limit, counts);
            let address = self.neighbors[i].config.address;
            let label = address.to_string();
            for crossing in crossings {
                match crossing {
                    Crossing::Warning {
                        family,
                        count,
                        limit: max,
                    } => {
                        warn!(neighbor = %address, %family, count, limit = max, percent = limit.warning_percent, "prefixes received near max-prefixes");
                        self.metrics.prefix_limit(&label, family, "warning");
                    }
                    Crossing::Exceeded {
                        family,
                        count,
                        limit: max,
                    } => {
                        let action = match limit.action {
                            crate::config::LimitAction::Cease => "cease",
                            crate::config::LimitAction::Warn => "warn",
                        };
                        match limit.action {
                            crate::config::LimitAction::Cease => {
                                tracing::error!(neighbor = %address, %family, count, limit = max, action, restart_in = ?limit.restart, "max-prefixes exceeded")
                            }
                            crate::config::LimitAction::Warn => {
                                tracing::error!(neighbor = %address, %family, count, limit = max, action, "max-prefixes exceeded")
                            }
                        }
                        self.metrics.prefix_limit(&label, family, action);
                        if limit.action == crate::config::LimitAction::Cease {
                            let notification =
                                wasmbgp_bgp::packet::Notification::max_prefixes(family, max);
                            let _ = self.neighbors[i]
                                .tx
                                .send(NeighborMsg::Cease {
                                    notification,
                                    restart: limit.restart,
                                })
                                .await;
                            // One Cease per session: the other family's crossing
                            // would only repeat it.
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Where a neighbor task is in the lists, if it still runs.
    fn index_of(&self, id: NeighborId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// What runs now, for a reload.
    fn running(&self) -> Running {
        Running {
            globals: self.globals.clone(),
            neighbors: self.neighbors.iter().map(|n| n.config.clone()).collect(),
            plugins: self
                .plugins
                .iter()
                .map(|p| (p.config.clone(), p.handle.reloader()))
                .collect(),
        }
    }

    /// A plugin's new instance serves with `spec`.
    fn plugin_swapped(&mut self, spec: wasmbgp_runtime::PluginSpec) {
        if let Some(slot) = self
            .plugins
            .iter_mut()
            .find(|p| p.config.spec.name == spec.name)
        {
            info!(plugin = %spec.name, component = %spec.component.display(), "plugin reloaded in place");
            slot.config.spec = spec;
        }
    }

    /// Applies a checked config's difference with what runs: only what changed moves.
    /// Plugins to swap were swapped before (off the speaker); their new specs are
    /// recorded here with the rest.
    async fn apply(&mut self, plan: ReloadPlan) -> ReloadSummary {
        use wasmbgp_bgp::packet::Notification;
        use wasmbgp_bgp::packet::notification::cease_sub;
        let started = std::time::Instant::now();
        // What arrived so far is judged, recorded and sent under the old config.
        self.catch_up_received().await;
        self.publish(None).await;
        let mut summary = ReloadSummary {
            neighbors_added: plan.added.clone(),
            neighbors_removed: plan.removed.clone(),
            neighbors_reset: plan.reset.iter().map(|r| r.0).collect(),
            neighbors_changed: plan.changed.clone(),
            plugins_added: plan.plugins_added.clone(),
            plugins_removed: plan.plugins_removed.clone(),
            plugins_swapped: plan.plugins_swapped.clone(),
            plugins_reconfigured: plan.plugins_reconfigured.clone(),
            ..ReloadSummary::default()
        };
        // 1. Plugins removed: stopped, their routes withdrawn.
        for name in &plan.plugins_removed {
            if let Some(pos) = self
                .plugins
                .iter()
                .position(|p| &p.config.spec.name == name)
            {
                let slot = self.plugins.remove(pos);
                for ribs in &mut self.ribs {
                    ribs.originated.withdraw_source(slot.source);
                }
                slot.handle.stop().await;
                self.metrics.source_routes(&format!("plugin:{name}"), 0);
                info!(plugin = %name, "plugin removed by the config reload");
            }
        }
        // 2. Neighbors removed, and those whose session must be new: the old tasks stop.
        for address in &plan.removed {
            self.remove_neighbor(*address, Notification::cease(cease_sub::PEER_DECONFIGURED))
                .await;
            info!(neighbor = %address, "neighbor removed by the config reload");
        }
        let mut kept_tables = HashMap::new();
        for (address, why) in &plan.reset {
            let notification = Notification::cease(cease_sub::OTHER_CONFIGURATION_CHANGE);
            if let Some((ribs, carried)) = self.remove_neighbor(*address, notification).await {
                kept_tables.insert(*address, (ribs.originated, carried));
            }
            info!(neighbor = %address, setting = why, "neighbor reset by the config reload: a new session");
        }
        // 3. Plugins added; the others take their new config (swapped ones their spec).
        let mut exporters_changed = false;
        for config in &plan.plugins {
            let name = &config.spec.name;
            match self
                .plugins
                .iter()
                .position(|p| &p.config.spec.name == name)
            {
                None => match plugins::start(
                    &self.runtime,
                    vec![config.clone()],
                    &self.sources,
                    &self.plugin_events,
                ) {
                    Ok(slots) => {
                        exporters_changed |= config.spec.world == wasmbgp_runtime::World::Exporter;
                        self.plugins.extend(slots);
                    }
                    Err(e) => summary.errors.push(format!("{e:#}")),
                },
                Some(pos) if self.plugins[pos].config != *config => {
                    let old = std::mem::replace(&mut self.plugins[pos].config, config.clone());
                    exporters_changed |= old.subscription != config.subscription;
                    let source = self.plugins[pos].source;
                    for route in old.routes.iter().filter(|r| !config.routes.contains(r)) {
                        let _ =
                            self.withdraw(route.neighbors.as_deref(), route.prefix.clone(), source);
                    }
                    self.apply_health(pos);
                }
                Some(_) => {}
            }
        }
        exporters_changed |= !plan.plugins_removed.is_empty();
        self.metrics.watch_plugins(
            self.plugins
                .iter()
                .map(|p| p.handle.status_source())
                .collect(),
        );
        if exporters_changed {
            self.relink_exporters();
        }
        if let Some(w) = &mut self.watcher {
            w.set(plugins::watched_files(&plan.plugins));
        }
        // 4. Neighbors: settings applied live, new ones started with their routes.
        let mut lists = RouteLists::new(&plan.routes);
        let mut reevaluate = Vec::new();
        for config in &plan.neighbors {
            let address = config.address;
            match self
                .neighbors
                .iter()
                .position(|n| n.config.address == address)
            {
                Some(i) => {
                    if self.neighbors[i].config == *config {
                        continue;
                    }
                    let old = std::mem::replace(&mut self.neighbors[i].config, config.clone());
                    self.metrics
                        .max_prefixes(&address.to_string(), &limits_of(config));
                    let _ = self.neighbors[i]
                        .tx
                        .send(NeighborMsg::Reconfigure(Box::new(config.clone())))
                        .await;
                    reevaluate.push((
                        i,
                        old.export_policy != config.export_policy,
                        old.import_policy != config.import_policy,
                    ));
                }
                None => {
                    let (mut originated, predecessor) = match kept_tables.remove(&address) {
                        Some((table, carried)) => (table, Some(carried)),
                        None => (AdjRibOut::new(), None),
                    };
                    originated.sync_source(sources::CONFIG, lists.of(config));
                    originated.clear_pending();
                    let i = self.add_neighbor(config.clone(), originated, predecessor, false);
                    for p in 0..self.plugins.len() {
                        self.apply_health(p);
                    }
                    self.ribs[i].originated.clear_pending();
                    self.start_neighbor(i, false).await;
                }
            }
        }
        // 5. Static routes and route files: only the prefixes that differ.
        let added: Vec<IpAddr> = plan
            .added
            .iter()
            .chain(plan.reset.iter().map(|r| &r.0))
            .copied()
            .collect();
        for i in 0..self.neighbors.len() {
            if added.contains(&self.neighbors[i].config.address) {
                continue;
            }
            let routes = lists.of(&self.neighbors[i].config);
            let stats = self.ribs[i].originated.sync_source(sources::CONFIG, routes);
            summary.routes_announced += stats.announced;
            summary.routes_withdrawn += stats.withdrawn;
        }
        let total: usize = plan.routes.iter().map(|g| g.routes.len()).sum();
        self.metrics.source_routes("config", total as i64);
        self.shutdown_message = plan.shutdown_message;
        self.publish(None).await;
        // 6. Changed policy chains: judged again; only differences reach the wire.
        for (i, export, import) in reevaluate {
            self.judge_again(i, export, import).await;
        }
        self.interner.prune();
        summary.ms = started.elapsed().as_secs_f64() * 1e3;
        summary
    }

    /// Stops a neighbor's task with `notification` and forgets it: exporters see its
    /// received routes go and its session end. Returns its routes, and what a task
    /// replacing it waits for.
    async fn remove_neighbor(
        &mut self,
        address: IpAddr,
        notification: wasmbgp_bgp::packet::Notification,
    ) -> Option<(NeighborRibs, oneshot::Receiver<Carried>)> {
        use wasmbgp_runtime::export::RouteDirection;
        let i = self
            .neighbors
            .iter()
            .position(|n| n.config.address == address)?;
        let session = self.export_session(i);
        let handle = self.neighbors.remove(i);
        let mut ribs = self.ribs.remove(i);
        let state = self.session_states.remove(i);
        self.index = self
            .neighbors
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id, i))
            .collect();
        self.inbound.remove(&address);
        let (successor, carried) = oneshot::channel();
        let _ = handle
            .tx
            .send(NeighborMsg::Stop(notification, successor))
            .await;
        ribs.session_down(&[]);
        let (pre, post) = ribs.take_recorded();
        self.hub
            .received(session, RouteDirection::ReceivedPrePolicy, &pre);
        self.hub.received(session, RouteDirection::Received, &post);
        self.hub.session_state(
            session,
            state,
            wasmbgp_bgp::session::State::Idle,
            "removed from the config".into(),
        );
        let label = address.to_string();
        self.metrics.prefixes_received(&label, 0);
        self.metrics
            .session_state(&label, self.globals.local_as, handle.config.peer_as, false);
        Some((ribs, carried))
    }

    async fn on_plugin_event(&mut self, ev: PluginEvent) {
        let routes_of = match &ev {
            PluginEvent::Health { plugin, .. }
            | PluginEvent::Failed { plugin, .. }
            | PluginEvent::Announce { plugin, .. }
            | PluginEvent::Withdraw { plugin, .. } => Some(plugin.clone()),
            _ => None,
        };
        self.apply_plugin_event(ev).await;
        if let Some(plugin) = routes_of {
            self.count_plugin_routes(&plugin);
        }
    }

    /// `wasmbgp_active_routes{source="plugin:NAME"}`: the health check's routes it
    /// currently announces, and the prefixes it owns through `routes`.
    fn count_plugin_routes(&self, plugin: &str) {
        let Some(slot) = self.plugins.iter().find(|p| p.config.spec.name == plugin) else {
            return;
        };
        let announced = |how: Degraded| matches!(how, Degraded::Med(_));
        let health_routes = slot
            .config
            .routes
            .iter()
            .filter(|r| match slot.health {
                Some(Health::Up) => true,
                Some(Health::Down) => announced(r.down),
                Some(Health::Disabled) => announced(r.disabled),
                None => false,
            })
            .count() as u64;
        let owned = slot.handle.status().routes_owned;
        self.metrics
            .source_routes(&format!("plugin:{plugin}"), (health_routes + owned) as i64);
    }

    async fn apply_plugin_event(&mut self, ev: PluginEvent) {
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
                self.hub
                    .event(wasmbgp_runtime::export::ExportEvent::Health {
                        plugin: plugin.clone(),
                        health,
                        reason: reason.clone(),
                    });
                self.plugins[i].health = Some(health);
                self.plugins[i].settled = true;
                self.apply_health(i);
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
                // A fault is an outcome too: `on-failure` decides its routes.
                slot.settled = true;
                self.hub
                    .event(wasmbgp_runtime::export::ExportEvent::Plugin {
                        plugin: plugin.clone(),
                        change: wasmbgp_runtime::export::PluginChange::Faulted,
                        detail: error.clone(),
                    });
                if on_failure == OnFailure::Withdraw {
                    slot.health = None;
                    let source = slot.source;
                    for ribs in &mut self.ribs {
                        ribs.originated.withdraw_source(source);
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
                let r = self.announce(filter.as_deref(), route, source);
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
                let _ = self.withdraw(filter.as_deref(), prefix, source);
            }
            PluginEvent::Lifecycle {
                plugin,
                change,
                detail,
            } => {
                self.hub
                    .event(wasmbgp_runtime::export::ExportEvent::Plugin {
                        plugin,
                        change,
                        detail,
                    });
            }
            PluginEvent::SnapshotWanted { plugin } => self.snapshot_for(&plugin).await,
            PluginEvent::PolicyChanged { plugin } => {
                // Changes queued so far go out judged by the old verdicts' successor too.
                self.publish(None).await;
                let sent = self.reevaluate(&plugin).await;
                tracing::info!(%plugin, export_decisions = sent, "policy changed: routes judged again");
            }
        }
    }
}

/// The static routes each neighbor is sent, sorted for
/// [`AdjRibOut::sync_source`]: built once per distinct set (the blocks that apply, the
/// families), however many neighbors share it.
struct RouteLists<'a> {
    groups: &'a [RouteGroup],
    built: Vec<((Vec<bool>, Vec<wasmbgp_bgp::Family>), Vec<RouteEntry>)>,
}

/// A route as the tables hold it.
type RouteEntry = (Prefix, Arc<wasmbgp_bgp::PathAttributes>);

impl<'a> RouteLists<'a> {
    fn new(groups: &'a [RouteGroup]) -> Self {
        RouteLists {
            groups,
            built: Vec::new(),
        }
    }

    fn of(&mut self, neighbor: &NeighborConfig) -> &[RouteEntry] {
        let key = (
            self.groups
                .iter()
                .map(|g| g.applies_to(&neighbor.address))
                .collect::<Vec<bool>>(),
            neighbor.families.clone(),
        );
        let at = match self.built.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let list = AdjRibOut::sorted_routes(config_routes(neighbor, self.groups));
                self.built.push((key, list));
                self.built.len() - 1
            }
        };
        &self.built[at].1
    }
}

/// A neighbor's max-prefixes per unicast family it carries (for the metrics).
fn limits_of(neighbor: &NeighborConfig) -> [(wasmbgp_bgp::Family, Option<u32>); FAMILY_COUNT] {
    super::limits::FAMILIES.map(|f| {
        let carried = neighbor.families.contains(&f);
        (f, neighbor.max_prefixes.limits.get(f).filter(|_| carried))
    })
}

/// The static routes (and route files' routes) `neighbor` is sent: the blocks that
/// apply to it, of the families it carries.
fn config_routes<'a>(
    neighbor: &'a NeighborConfig,
    groups: &'a [RouteGroup],
) -> impl Iterator<Item = (Prefix, Arc<wasmbgp_bgp::PathAttributes>)> + 'a {
    groups
        .iter()
        .filter(|g| g.applies_to(&neighbor.address))
        .flat_map(|g| g.routes.iter())
        .filter(|(p, _)| neighbor.families.contains(&p.family()))
        .cloned()
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
