//! Running plugins. What every world shares lives here: preparing a component against
//! its world, the per-plugin [`Shared`] data that outlives instances (state store,
//! counters, status), new stores with their limits and deadline, calls that turn traps,
//! deadlines and host panics into faults, and the [`PluginHandle`] the daemon holds.
//! One driver per world runs the plugin's task:
//!
//! - [`healthcheck`]: checks on a schedule through the hysteresis;
//! - [`policy`]: judges batches of routes on request.
//!
//! Each plugin runs in its own tokio task with its own `Store`. A guest
//! that computes yields to tokio at every epoch tick and is interrupted
//! when its guest-time deadline passes; probes are async. Nothing here
//! blocks the daemon's tasks.

pub mod exporter;
mod healthcheck;
pub mod policy;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde::Serialize;
use tokio::sync::mpsc::{Receiver, Sender, channel};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmbgp_bgp::Prefix;
use wasmtime::{Store, UpdateDeadline};

use crate::engine::EngineShared;
use crate::events::{EventSender, PluginEvent};
use crate::export::PluginChange;
use crate::grants::CheckedGrants;
use crate::healthcheck::{Health, HysteresisConfig};
use crate::host::bindings::HealthcheckPre;
use crate::host::bindings::exporter::ExporterPre;
use crate::host::bindings::policy::PolicyPre;
use crate::host::{KvStore, MetricStore, PluginCtx, PluginMetric};
use crate::restart::RestartPolicy;
use crate::spec::{PluginSpec, World};
pub use exporter::ExporterClient;
pub use policy::{PolicyClient, PolicySession, PolicyUnavailable, Verdict, Verdicts};

/// Extra wall-clock time a call may spend awaiting host probes beyond its
/// guest deadline before it is abandoned as hung.
pub const MAX_HOST_TIME_PER_CALL: Duration = Duration::from_secs(30);
/// Setup calls (instantiation and `init`) get at least this much guest time.
pub const MIN_SETUP_DEADLINE: Duration = Duration::from_secs(1);
/// Call durations kept for the percentiles in [`PluginStatus`].
const TIMING_WINDOW: usize = 1024;
/// Upper bounds (seconds) of the call-duration histogram's buckets.
pub const CALL_BUCKETS: [f64; 12] = [
    25e-6, 100e-6, 250e-6, 1e-3, 2.5e-3, 10e-3, 25e-3, 100e-3, 250e-3, 1.0, 2.5, 10.0,
];
/// Denied attempts are reported to exporters at most this often per plugin (all are
/// counted).
const DENIED_EVENT_EVERY: Duration = Duration::from_secs(1);

/// Why an instance died, for `wasmbgp_plugin_faults_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A trap (a panic, unreachable, a bad memory access...).
    Trap,
    /// The per-call guest-time deadline passed.
    Deadline,
    /// A memory allocation beyond the cap.
    Memory,
    /// A host call hung past its wall-clock bound.
    Hung,
    /// A wasmbgp host function panicked.
    Host,
}

impl FaultKind {
    /// Every kind, in the order of [`PluginStatus::faults`].
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Trap,
        FaultKind::Deadline,
        FaultKind::Memory,
        FaultKind::Hung,
        FaultKind::Host,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Deadline => "deadline",
            FaultKind::Memory => "memory",
            FaultKind::Hung => "hung",
            FaultKind::Host => "host",
        }
    }
}

/// The lifecycle state of a plugin, as shown by `ctl show plugins`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginState {
    /// Instantiated (or about to be) and checking.
    Running,
    /// Waiting to restart after a fault.
    Backoff,
    /// Failed too often; retried only at the longest backoff.
    Failed,
    /// Switched off by the operator.
    Disabled,
    /// Stopped for good.
    Stopped,
}

/// A snapshot of a plugin for `ctl show plugins [--json]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// Its world.
    pub world: World,
    /// Lifecycle state.
    pub state: PluginState,
    /// Health after hysteresis (`None` before the first verdict, and again
    /// after a fault until the restarted plugin's first verdict).
    pub health: Option<Health>,
    /// Restarts after faults so far.
    pub restarts: u64,
    /// The last fault or configuration error.
    pub last_error: Option<String>,
    /// Calls made into the plugin (`init` and `check`).
    pub calls: u64,
    /// Health check: checks answered (faults not counted).
    pub checks: u64,
    /// Health check: the last answer, before hysteresis (why it is up or down).
    pub last_check: Option<LastCheck>,
    /// Median call time over the last calls, µs.
    pub p50_us: u64,
    /// 99th percentile call time over the last calls, µs.
    pub p99_us: u64,
    /// Probe or route requests denied by the grants.
    pub denied: u64,
    /// Route requests refused as malformed (answered `invalid`).
    pub invalid: u64,
    /// Prefixes the plugin owns through the `routes` interface.
    pub routes_owned: u64,
    /// Policy: routes judged "accept unchanged" so far.
    pub routes_accepted: u64,
    /// Policy: routes judged "reject".
    pub routes_rejected: u64,
    /// Policy: routes accepted with changed attributes.
    pub routes_modified: u64,
    /// Policy: routes given the `on-failure` treatment because the plugin could not
    /// judge them (a fault, or down in backoff).
    pub routes_unjudged: u64,
    /// Faults by kind, in the order of [`FaultKind::ALL`].
    pub faults: [u64; 5],
    /// Reloads that took over.
    pub reloads: u64,
    /// Reloads refused (the running instance kept running).
    pub reloads_refused: u64,
    /// Call durations: per-bucket counts of [`CALL_BUCKETS`] (+Inf last), sum in
    /// seconds.
    #[serde(skip)]
    pub call_seconds: ([u64; CALL_BUCKETS.len() + 1], f64),
    /// Exporter: events handed to the plugin.
    pub events_delivered: u64,
    /// Exporter: events dropped because it fell behind.
    pub events_dropped: u64,
    /// Metric series the plugin created through `metrics`.
    pub metric_series: u64,
    /// Metric updates refused by `grants.max-series`.
    pub metric_series_refused: u64,
}

/// A health check's answer to one `check` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastCheck {
    /// `ok` (true) or `err` (false).
    pub passed: bool,
    /// The plugin's detail (ok) or reason (err), secrets redacted.
    pub detail: String,
}

/// Per-plugin data that outlives instances: state store, owned routes,
/// counters and status.
pub(crate) struct Shared {
    pub name: String,
    pub born: Instant,
    world: World,
    state: Mutex<KvStore>,
    owned: Mutex<BTreeSet<Prefix>>,
    denied: AtomicU64,
    invalid: AtomicU64,
    /// Policy verdict counters: accepted, rejected, modified, unjudged.
    verdicts: [AtomicU64; 4],
    faults: [AtomicU64; 5],
    reloads: [AtomicU64; 2],
    events_delivered: AtomicU64,
    events_dropped: AtomicU64,
    metrics: Mutex<MetricStore>,
    /// Where lifecycle events go (none for a trial instance).
    events: Option<EventSender>,
    last_denied_event: Mutex<Option<Instant>>,
    /// An instance has started once (the next start is a restart).
    started_once: std::sync::atomic::AtomicBool,
    /// Values of secret settings, never printed.
    secrets: Mutex<Vec<String>>,
    status: Mutex<StatusInner>,
}

struct StatusInner {
    state: PluginState,
    health: Option<Health>,
    restarts: u64,
    last_error: Option<String>,
    calls: u64,
    checks: u64,
    last_check: Option<LastCheck>,
    times_us: VecDeque<u64>,
    call_seconds: ([u64; CALL_BUCKETS.len() + 1], f64),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn new(name: String, world: World, events: Option<EventSender>) -> Self {
        Shared {
            name,
            born: Instant::now(),
            world,
            state: Mutex::new(KvStore::default()),
            owned: Mutex::new(BTreeSet::new()),
            denied: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            verdicts: Default::default(),
            faults: Default::default(),
            reloads: Default::default(),
            events_delivered: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            metrics: Mutex::new(MetricStore::default()),
            events,
            last_denied_event: Mutex::new(None),
            started_once: std::sync::atomic::AtomicBool::new(false),
            secrets: Mutex::new(Vec::new()),
            status: Mutex::new(StatusInner {
                state: PluginState::Running,
                health: None,
                restarts: 0,
                last_error: None,
                calls: 0,
                checks: 0,
                last_check: None,
                times_us: VecDeque::with_capacity(TIMING_WINDOW),
                call_seconds: Default::default(),
            }),
        }
    }

    /// `text` with every secret setting's value replaced by `<secret>`: what the host
    /// prints of anything a plugin or its settings may have put in it.
    pub fn redact(&self, text: &str) -> String {
        let secrets = lock(&self.secrets);
        let mut out = text.to_string();
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "<secret>");
            }
        }
        out
    }

    /// The values to redact from now on (at start and at each reload).
    pub fn set_secrets(&self, values: Vec<String>) {
        *lock(&self.secrets) = values;
    }

    /// The plugin's `state` store.
    pub fn state(&self) -> MutexGuard<'_, KvStore> {
        lock(&self.state)
    }

    /// Counts a denied attempt.
    pub fn count_denied(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a denied attempt and reports it to exporters (at most one report per
    /// [`DENIED_EVENT_EVERY`]; every attempt is counted).
    pub fn denied(&self, why: &str) {
        self.count_denied();
        tracing::warn!(plugin = %self.name, "denied: {why}");
        let mut last = lock(&self.last_denied_event);
        if last.is_some_and(|t| t.elapsed() < DENIED_EVENT_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        self.lifecycle(PluginChange::Denied, why.to_string());
    }

    /// Tells the daemon (and so the exporters) what happened to the plugin.
    pub fn lifecycle(&self, change: PluginChange, detail: String) {
        if let Some(events) = &self.events {
            events.notify(PluginEvent::Lifecycle {
                plugin: self.name.clone(),
                change,
                detail: self.redact(&detail),
            });
        }
    }

    /// Counts a fault.
    pub fn count_fault(&self, kind: FaultKind) {
        let i = FaultKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.faults[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reload that took over (`true`) or was refused.
    pub fn count_reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts events delivered to an exporter, or dropped.
    pub fn count_events(&self, delivered: u64, dropped: u64) {
        self.events_delivered
            .fetch_add(delivered, Ordering::Relaxed);
        self.events_dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// The plugin's metric store.
    pub fn metrics(&self) -> MutexGuard<'_, MetricStore> {
        lock(&self.metrics)
    }

    /// Counts a request refused as malformed.
    pub fn count_invalid(&self) {
        self.invalid.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a policy's verdicts: accepted, rejected, modified, unjudged.
    pub fn count_verdicts(&self, counts: [u64; 4]) {
        for (counter, n) in self.verdicts.iter().zip(counts) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records ownership of `prefix`; false when it would exceed `max`.
    pub fn own_route(&self, prefix: Prefix, max: Option<u32>) -> bool {
        let mut owned = lock(&self.owned);
        if owned.contains(&prefix) {
            return true;
        }
        if max.is_some_and(|max| owned.len() >= max as usize) {
            return false;
        }
        owned.insert(prefix);
        true
    }

    /// Forgets ownership of `prefix`.
    pub fn disown_route(&self, prefix: &Prefix) {
        lock(&self.owned).remove(prefix);
    }

    fn record_call(&self, took: Duration) {
        let mut s = lock(&self.status);
        s.calls += 1;
        if s.times_us.len() == TIMING_WINDOW {
            s.times_us.pop_front();
        }
        s.times_us
            .push_back(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        let seconds = took.as_secs_f64();
        let bucket = CALL_BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(CALL_BUCKETS.len());
        s.call_seconds.0[bucket] += 1;
        s.call_seconds.1 += seconds;
    }

    fn update(&self, f: impl FnOnce(&mut StatusInner)) {
        f(&mut lock(&self.status));
    }

    fn snapshot(&self) -> PluginStatus {
        // Before the status lock: one lock at a time.
        let (metric_series, metric_series_refused) = self.metrics().counts();
        let s = lock(&self.status);
        let mut times: Vec<u64> = s.times_us.iter().copied().collect();
        times.sort_unstable();
        let pct = |p: usize| {
            if times.is_empty() {
                0
            } else {
                times[((times.len() - 1) * p) / 100]
            }
        };
        PluginStatus {
            name: self.name.clone(),
            world: self.world,
            state: s.state,
            health: s.health,
            restarts: s.restarts,
            last_error: s.last_error.as_deref().map(|e| self.redact(e)),
            calls: s.calls,
            checks: s.checks,
            last_check: s.last_check.clone(),
            p50_us: pct(50),
            p99_us: pct(99),
            denied: self.denied.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            routes_owned: lock(&self.owned).len() as u64,
            routes_accepted: self.verdicts[0].load(Ordering::Relaxed),
            routes_rejected: self.verdicts[1].load(Ordering::Relaxed),
            routes_modified: self.verdicts[2].load(Ordering::Relaxed),
            routes_unjudged: self.verdicts[3].load(Ordering::Relaxed),
            faults: std::array::from_fn(|i| self.faults[i].load(Ordering::Relaxed)),
            reloads: self.reloads[0].load(Ordering::Relaxed),
            reloads_refused: self.reloads[1].load(Ordering::Relaxed),
            call_seconds: s.call_seconds,
            events_delivered: self.events_delivered.load(Ordering::Relaxed),
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
            metric_series: metric_series as u64,
            metric_series_refused,
        }
    }
}

/// A reload in progress; see [`PluginHandle::reload`].
#[must_use = "a reload can still be refused: await its outcome"]
pub struct Reload(oneshot::Receiver<Result<(), String>>);

impl Reload {
    /// Whether the new component, settings and files took over.
    pub async fn outcome(self) -> anyhow::Result<()> {
        match self.0.await {
            Ok(result) => result.map_err(anyhow::Error::msg),
            Err(_) => anyhow::bail!("the plugin stopped during the reload"),
        }
    }
}

/// Swaps a running plugin's instance; see [`PluginHandle::reloader`].
#[derive(Clone)]
pub struct Reloader {
    engine: Arc<EngineShared>,
    shared: Arc<Shared>,
    control: Sender<Control>,
}

impl Reloader {
    /// Hot swap to a new spec (new component, settings, grants, intervals), and for a
    /// policy a fresh read of its data files. The new component is compiled and
    /// checked here, then the driver starts an instance of it (`init` with the new
    /// settings and files) beside the running one: only if that succeeds does it take
    /// over, and calls from then on go to it (a call in progress finishes on the old
    /// one). On any error nothing changes and the running plugin keeps running; await
    /// [`Reload::outcome`] to learn which. Every refusal is logged and counted. The state
    /// store, the health and the owned routes are kept; no Health event is sent unless
    /// the health changes; a policy reports [`PluginEvent::PolicyChanged`]. The name and
    /// world must stay the same. Compiles synchronously (seconds for a Python component
    /// unless cached): call it from a blocking context.
    pub fn reload(&self, spec: PluginSpec) -> anyhow::Result<Reload> {
        let name = &self.shared.name;
        let prepared = (|| {
            if spec.name != *name {
                anyhow::bail!("reload of {name} cannot rename it to {}", spec.name);
            }
            if spec.world != self.shared.world {
                anyhow::bail!(
                    "reload of {name} cannot change its world ({} → {})",
                    self.shared.world,
                    spec.world
                );
            }
            prepare(&self.engine, spec)
        })()
        .inspect_err(|e| {
            let error = self.shared.redact(&format!("{e:#}"));
            tracing::error!(plugin = %name, %error, "reload refused; the running plugin keeps running");
            self.shared.count_reload(false);
        })?;
        let (reply, outcome) = oneshot::channel();
        send_control(
            &self.control,
            &name,
            Control::Reload(Box::new(prepared), reply),
        )?;
        Ok(Reload(outcome))
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Reloader").field(&self.shared.name).finish()
    }
}

/// Reads a plugin's status; see [`PluginHandle::status_source`].
#[derive(Clone)]
pub struct StatusSource(Arc<Shared>);

impl StatusSource {
    /// A snapshot of the plugin's status.
    pub fn status(&self) -> PluginStatus {
        self.0.snapshot()
    }

    /// The metrics the plugin registered through the `metrics` interface.
    pub fn metrics(&self) -> Vec<PluginMetric> {
        self.0.metrics().read()
    }
}

impl std::fmt::Debug for StatusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StatusSource").field(&self.0.name).finish()
    }
}

/// A component instantiable for its world.
#[derive(Clone)]
pub(crate) enum WorldPre {
    Healthcheck(HealthcheckPre<PluginCtx>),
    Policy(PolicyPre<PluginCtx>),
    Exporter(ExporterPre<PluginCtx>),
}

/// A component compiled, linked and checked against its spec: ready to
/// instantiate.
pub(crate) struct Prepared {
    pub spec: PluginSpec,
    pub grants: Arc<CheckedGrants>,
    pub pre: WorldPre,
    /// The granted data files as read when prepared: instances restarted after a
    /// fault get these same contents, whatever the files hold by then.
    pub files: Vec<(String, Vec<u8>)>,
}

/// What the daemon asks of a plugin's driver.
pub(crate) enum Control {
    /// Health check: stop checking; report disabled.
    Disable,
    /// Health check: resume.
    Enable,
    /// Swap in a new component, settings or grants (and data files) once an instance
    /// of it has started; the answer says whether it did.
    Reload(Box<Prepared>, oneshot::Sender<Result<(), String>>),
    /// Stop for good.
    Stop,
}

/// Commands waiting for a plugin's driver (it takes them between calls, so at most a
/// call's deadline apart): more are refused as busy rather than queued.
pub const CONTROL_QUEUE: usize = 16;

/// Queues a command for a plugin's driver, without waiting.
fn send_control(control: &Sender<Control>, name: &str, command: Control) -> anyhow::Result<()> {
    use tokio::sync::mpsc::error::TrySendError;
    match control.try_send(command) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => {
            anyhow::bail!("plugin {name} is busy: {CONTROL_QUEUE} commands wait for it; try again")
        }
        Err(TrySendError::Closed(_)) => anyhow::bail!("plugin {name} has stopped"),
    }
}

/// The daemon's handle on a running plugin. Dropping it stops the plugin.
pub struct PluginHandle {
    name: String,
    engine: Arc<EngineShared>,
    shared: Arc<Shared>,
    control: Sender<Control>,
    policy: Option<PolicyClient>,
    exporter: Option<ExporterClient>,
    task: Option<JoinHandle<()>>,
}

impl PluginHandle {
    /// Starts the driver task of a prepared plugin on the current tokio runtime.
    pub(crate) fn spawn(
        engine: Arc<EngineShared>,
        prepared: Prepared,
        restart: RestartPolicy,
        events: EventSender,
    ) -> Self {
        let name = prepared.spec.name.clone();
        let shared = Arc::new(Shared::new(
            name.clone(),
            prepared.spec.world,
            Some(events.clone()),
        ));
        shared.set_secrets(prepared.spec.secret_values());
        let (control, rx) = channel(CONTROL_QUEUE);
        let core = DriverCore {
            engine: engine.clone(),
            prepared,
            shared: shared.clone(),
            events,
            control: rx,
        };
        let (mut policy, mut exporter) = (None, None);
        let task = match core.prepared.pre {
            WorldPre::Healthcheck(_) => tokio::spawn(healthcheck::run(core, restart)),
            WorldPre::Policy(_) => {
                let (client, task) = policy::spawn(core, restart);
                policy = Some(client);
                task
            }
            WorldPre::Exporter(_) => {
                let (client, task) = exporter::spawn(core, restart);
                exporter = Some(client);
                task
            }
        };
        PluginHandle {
            name,
            engine,
            shared,
            control,
            policy,
            exporter,
            task: Some(task),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's world.
    pub fn world(&self) -> World {
        self.shared.world
    }

    /// A policy plugin's client, through which routes are judged; `None` for other
    /// worlds.
    pub fn policy(&self) -> Option<&PolicyClient> {
        self.policy.as_ref()
    }

    /// An exporter's client, through which events are delivered; `None` for other
    /// worlds.
    pub fn exporter(&self) -> Option<&ExporterClient> {
        self.exporter.as_ref()
    }

    /// Operator maintenance switch of a health check: stops checking and reports
    /// [`Health::Disabled`] (the daemon withdraws or re-MEDs the routes).
    pub fn disable(&self) -> anyhow::Result<()> {
        self.health_check_only("disable")?;
        send_control(&self.control, &self.name, Control::Disable)
    }

    /// Ends a health check's maintenance: checks resume and the next verdict is reported.
    pub fn enable(&self) -> anyhow::Result<()> {
        self.health_check_only("enable")?;
        send_control(&self.control, &self.name, Control::Enable)
    }

    fn health_check_only(&self, what: &str) -> anyhow::Result<()> {
        if self.shared.world != World::Healthcheck {
            anyhow::bail!(
                "{what} is for health checks; {} is a {} plugin",
                self.name,
                self.shared.world
            );
        }
        Ok(())
    }

    /// Hot swap to a new spec; see [`Reloader::reload`].
    pub fn reload(&self, spec: PluginSpec) -> anyhow::Result<Reload> {
        self.reloader().reload(spec)
    }

    /// A handle that swaps this plugin's instance from anywhere (a blocking thread: a
    /// swap compiles on a cache miss), without borrowing the plugin.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            engine: self.engine.clone(),
            shared: self.shared.clone(),
            control: self.control.clone(),
        }
    }

    /// A snapshot of the plugin's status.
    pub fn status(&self) -> PluginStatus {
        self.shared.snapshot()
    }

    /// A reader of the plugin's status that outlives borrowing the handle (for the
    /// metrics endpoint, which reads it at every scrape).
    pub fn status_source(&self) -> StatusSource {
        StatusSource(self.shared.clone())
    }

    /// A copy of the plugin's `state` store (for diagnostics).
    pub fn state(&self) -> BTreeMap<String, Vec<u8>> {
        self.shared.state().snapshot()
    }

    /// Stops the plugin: waits for a call in progress to end (bounded by its
    /// deadline; abandoned after 2 s) and drops its instance. Routes are the
    /// daemon's to clean up.
    pub async fn stop(mut self) {
        let _ = self.control.send(Control::Stop).await;
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
        self.shared.update(|s| s.state = PluginState::Stopped);
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        // The driver exits when its control channel closes; a call in
        // progress is abandoned.
        if self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            let _ = self.control.try_send(Control::Stop);
        }
    }
}

/// What every world's driver holds: the engine, the prepared component, the plugin's
/// shared data, where events go, and the daemon's control messages.
pub(crate) struct DriverCore {
    pub engine: Arc<EngineShared>,
    pub prepared: Prepared,
    pub shared: Arc<Shared>,
    pub events: EventSender,
    pub control: Receiver<Control>,
}

impl DriverCore {
    /// A new store for an instance of `prepared`: the plugin's context, memory cap
    /// and deadline.
    pub fn new_store(&self, prepared: &Prepared) -> Store<PluginCtx> {
        let ctx = PluginCtx::new(
            self.shared.clone(),
            prepared.grants.clone(),
            self.events.clone(),
        );
        let mut store = Store::new(&self.engine.engine, ctx);
        store.limiter(|ctx| &mut ctx.limits);
        // Every tick: yield to tokio, or interrupt once the call's guest
        // time is spent.
        store.epoch_deadline_callback(|ctx| {
            if ctx.data().guest_time() >= ctx.data().call.deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// What to print of a fault: its text, secrets redacted.
    pub fn fault_text(&self, fault: Fault) -> String {
        let text = match fault {
            Fault::Died(e) => e,
            Fault::Config(e) => format!("init refused the settings: {e}"),
        };
        self.shared.redact(&text)
    }

    /// A fault took the instance down: decides the restart with `restarts`, logs it
    /// (`consequence`: what it means for the plugin's routes or events), records it in
    /// the status and tells the daemon. Returns when to restart.
    pub fn record_fault(
        &self,
        restarts: &mut crate::restart::Restarts,
        fault: Fault,
        consequence: &str,
    ) -> tokio::time::Instant {
        let error = self.fault_text(fault);
        let decision = restarts.failure(Instant::now());
        tracing::error!(
            plugin = %self.shared.name,
            error = %error,
            restart_in = ?decision.delay,
            failed = decision.failed,
            "{} fault; {consequence}",
            self.shared.world
        );
        let total = restarts.total();
        let state = if decision.failed {
            PluginState::Failed
        } else {
            PluginState::Backoff
        };
        self.shared.update(|s| {
            s.restarts = total;
            s.last_error = Some(error.clone());
            s.state = state;
        });
        self.events.notify(PluginEvent::Failed {
            plugin: self.shared.name.clone(),
            error,
            on_failure: self.prepared.spec.on_failure,
        });
        tokio::time::Instant::now() + decision.delay
    }

    /// Logs and answers a refused reload; the running plugin keeps running.
    pub fn refuse_reload(&self, reply: oneshot::Sender<Result<(), String>>, fault: Fault) {
        let error = self.fault_text(fault);
        tracing::error!(plugin = %self.shared.name, %error, "reload refused; the running plugin keeps running");
        self.shared.count_reload(false);
        let _ = reply.send(Err(error));
    }

    /// Reports an instance started by the driver: the first is `loaded`, later ones
    /// (after a fault) `restarted`. (Faults reach exporters through
    /// [`PluginEvent::Failed`].)
    pub fn started(&self) {
        let first = !self
            .shared
            .started_once
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        let change = if first {
            PluginChange::Loaded
        } else {
            PluginChange::Restarted
        };
        self.shared
            .lifecycle(change, self.prepared.spec.component.display().to_string());
    }

    /// A reload's new instance passed `init`: its spec (and secrets) replace the old,
    /// the reload is counted and reported, and the caller is answered. The driver
    /// swaps in the instance itself.
    pub fn take_over(&mut self, prepared: Prepared, reply: oneshot::Sender<Result<(), String>>) {
        self.shared.set_secrets(prepared.spec.secret_values());
        self.prepared = prepared;
        self.reloaded();
        let _ = reply.send(Ok(()));
    }

    /// Counts and reports a reload that took over.
    fn reloaded(&self) {
        self.shared.count_reload(true);
        self.shared.lifecycle(
            PluginChange::Reloaded,
            self.prepared.spec.component.display().to_string(),
        );
    }
}

/// The guest time allowed to instantiation and `init`.
pub(crate) fn setup_deadline(prepared: &Prepared) -> Duration {
    prepared.grants.deadline.max(MIN_SETUP_DEADLINE)
}

impl DriverCore {}

pub(crate) fn hysteresis_config(spec: &PluginSpec) -> HysteresisConfig {
    HysteresisConfig {
        interval: spec.interval,
        fast_interval: spec.fast_interval,
        rise: spec.rise,
        fall: spec.fall,
    }
}

/// Starts one instance of `prepared` and runs its `init`, on a runtime of its own (for
/// [`Runtime::check_init`](crate::Runtime::check_init)); the instance is dropped.
pub(crate) fn trial_init(engine: Arc<EngineShared>, prepared: Prepared) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let world = prepared.spec.world;
    let name = prepared.spec.name.clone();
    let (events, _) = EventSender::channel();
    let (_, control) = channel(CONTROL_QUEUE);
    let shared = Arc::new(Shared::new(name.clone(), world, None));
    shared.set_secrets(prepared.spec.secret_values());
    let core = DriverCore {
        engine,
        shared: shared.clone(),
        prepared,
        events,
        control,
    };
    let outcome = runtime.block_on(async {
        match world {
            World::Healthcheck => healthcheck::instantiate(&core, &core.prepared)
                .await
                .map(drop),
            World::Policy => policy::instantiate(&core, &core.prepared).await.map(drop),
            World::Exporter => exporter::instantiate(&core, &core.prepared).await.map(drop),
        }
    });
    outcome.map_err(|fault| {
        let text = match fault {
            Fault::Died(e) => e,
            Fault::Config(e) => format!("init refused the settings: {e}"),
        };
        anyhow::anyhow!("plugin {name}: {}", shared.redact(&text))
    })
}

/// Validates a spec and compiles, links and type-checks its component against its
/// world; a policy's data files must be readable.
pub(crate) fn prepare(engine: &EngineShared, spec: PluginSpec) -> anyhow::Result<Prepared> {
    spec.validate()?;
    let grants = Arc::new(
        CheckedGrants::new(&spec.grants).map_err(|e| e.context(format!("plugin {}", spec.name)))?,
    );
    let files = grants
        .read_files()
        .map_err(|e| e.context(format!("plugin {}", spec.name)))?;
    let component = engine.load(&spec.component)?;
    let export = spec.world.export_interface();
    if component
        .component_type()
        .get_export(&engine.engine, export)
        .is_none()
    {
        anyhow::bail!(
            "{} does not export {export}: it is not a {} plugin (for wasmbgp:plugin@0.2.0)",
            spec.component.display(),
            spec.world
        );
    }
    let pre = engine
        .linker
        .instantiate_pre(&component)
        .and_then(|pre| {
            Ok(match spec.world {
                World::Healthcheck => WorldPre::Healthcheck(HealthcheckPre::new(pre)?),
                World::Policy => WorldPre::Policy(PolicyPre::new(pre)?),
                World::Exporter => WorldPre::Exporter(ExporterPre::new(pre)?),
            })
        })
        .map_err(crate::engine::wasmtime_error)
        .map_err(|e| {
            e.context(format!(
                "{} does not fit world {}",
                spec.component.display(),
                spec.world
            ))
        })?;
    Ok(Prepared {
        spec,
        grants,
        pre,
        files,
    })
}

/// Why a call did not complete.
pub(crate) enum Fault {
    /// A trap, deadline, memory cap or hung host call: the instance is dead.
    Died(String),
    /// `init` refused the settings.
    Config(String),
}

/// Runs one call with a guest-time `deadline` (enforced by the epoch
/// callback) and a wall-clock cap for hung host calls; describes faults.
pub(crate) async fn timed_call<T>(
    store: &mut Store<PluginCtx>,
    deadline: Duration,
    call: impl AsyncFnOnce(&mut Store<PluginCtx>) -> wasmtime::Result<T>,
) -> Result<T, String> {
    store.data_mut().start_call(deadline);
    store.set_epoch_deadline(1);
    let wall = deadline + MAX_HOST_TIME_PER_CALL;
    // A panic in a host function (a wasmbgp bug that this plugin's input reached) is
    // this plugin's fault like a trap: the instance is dropped and restarted with
    // backoff, instead of the plugin's driver task dying unnoticed.
    let shared = store.data().shared().clone();
    let call = std::panic::AssertUnwindSafe(call(store)).catch_unwind();
    let (kind, message) = match tokio::time::timeout(wall, call).await {
        Ok(Ok(Ok(value))) => return Ok(value),
        Ok(Ok(Err(e))) => describe_fault(&e, deadline),
        Ok(Err(panic)) => (
            FaultKind::Host,
            format!(
                "host fault: a wasmbgp host function panicked during the call: {}",
                panic_message(panic.as_ref())
            ),
        ),
        Err(_) => (FaultKind::Hung, format!("call hung for more than {wall:?}")),
    };
    shared.count_fault(kind);
    Err(message)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Names the usual faults plainly, with their kind.
fn describe_fault(error: &wasmtime::Error, deadline: Duration) -> (FaultKind, String) {
    let text = format!("{error:#}");
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => (
            FaultKind::Deadline,
            format!("deadline of {deadline:?} exceeded (interrupted)"),
        ),
        // A guest that cannot grow its memory past the cap aborts: Rust's allocator
        // reports "memory allocation of N bytes failed" before the unreachable.
        Some(wasmtime::Trap::UnreachableCodeReached) => (
            if text.contains("memory allocation") || text.contains("out of memory") {
                FaultKind::Memory
            } else {
                FaultKind::Trap
            },
            format!("trap: unreachable (a panic or an out-of-memory abort): {text}"),
        ),
        Some(trap) => (FaultKind::Trap, format!("trap: {trap}: {text}")),
        None if text.contains("memory") && text.contains("limit") => (FaultKind::Memory, text),
        None => (FaultKind::Trap, text),
    }
}

pub(crate) async fn sleep_until(when: Option<tokio::time::Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_panic_during_a_call_is_a_fault_not_a_dead_task() {
        let engine = EngineShared::new(None).unwrap();
        let shared = Arc::new(Shared::new("p".into(), World::Healthcheck, None));
        let (events, _rx) = EventSender::channel();
        let ctx = PluginCtx::new(shared, Arc::new(CheckedGrants::default()), events);
        let mut store = Store::new(&engine.engine, ctx);
        let fault = timed_call(
            &mut store,
            Duration::from_millis(50),
            async |_store| -> wasmtime::Result<()> { panic!("host bug {}", 42) },
        )
        .await
        .unwrap_err();
        assert!(
            fault.ends_with("host function panicked during the call: host bug 42"),
            "{fault}"
        );
    }
}
