//! Running one plugin: the driver task that instantiates the component,
//! schedules its checks through the hysteresis, contains its faults and
//! restarts it with backoff; and the [`PluginHandle`] the daemon holds.
//!
//! Each plugin runs in its own tokio task with its own `Store`. A guest
//! that computes yields to tokio at every epoch tick and is interrupted
//! when its guest-time deadline passes; probes are async. Nothing here
//! blocks the daemon's tasks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde::Serialize;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use wasmbgp_bgp::Prefix;
use wasmtime::{Store, UpdateDeadline};

use crate::engine::EngineShared;
use crate::events::PluginEvent;
use crate::grants::CheckedGrants;
use crate::healthcheck::{Health, Hysteresis, HysteresisConfig};
use crate::host::bindings::{Healthcheck, HealthcheckPre};
use crate::host::{CallClock, KvStore, PluginCtx};
use crate::restart::{RestartPolicy, Restarts};
use crate::spec::{OnFailure, PluginSpec, World};

/// Extra wall-clock time a call may spend awaiting host probes beyond its
/// guest deadline before it is abandoned as hung.
pub const MAX_HOST_TIME_PER_CALL: Duration = Duration::from_secs(30);
/// Setup calls (instantiation and `init`) get at least this much guest time.
pub const MIN_SETUP_DEADLINE: Duration = Duration::from_secs(1);
/// Call durations kept for the percentiles in [`PluginStatus`].
const TIMING_WINDOW: usize = 1024;

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
    status: Mutex<StatusInner>,
}

struct StatusInner {
    state: PluginState,
    health: Option<Health>,
    restarts: u64,
    last_error: Option<String>,
    calls: u64,
    times_us: VecDeque<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn new(name: String, world: World) -> Self {
        Shared {
            name,
            born: Instant::now(),
            world,
            state: Mutex::new(KvStore::default()),
            owned: Mutex::new(BTreeSet::new()),
            denied: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            status: Mutex::new(StatusInner {
                state: PluginState::Running,
                health: None,
                restarts: 0,
                last_error: None,
                calls: 0,
                times_us: VecDeque::with_capacity(TIMING_WINDOW),
            }),
        }
    }

    /// The plugin's `state` store.
    pub fn state(&self) -> MutexGuard<'_, KvStore> {
        lock(&self.state)
    }

    /// Counts a denied attempt.
    pub fn count_denied(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused as malformed.
    pub fn count_invalid(&self) {
        self.invalid.fetch_add(1, Ordering::Relaxed);
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
    }

    fn update(&self, f: impl FnOnce(&mut StatusInner)) {
        f(&mut lock(&self.status));
    }

    fn snapshot(&self) -> PluginStatus {
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
            last_error: s.last_error.clone(),
            calls: s.calls,
            p50_us: pct(50),
            p99_us: pct(99),
            denied: self.denied.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            routes_owned: lock(&self.owned).len() as u64,
        }
    }
}

/// A component compiled, linked and checked against its spec: ready to
/// instantiate.
pub(crate) struct Prepared {
    pub spec: PluginSpec,
    pub grants: Arc<CheckedGrants>,
    pub pre: HealthcheckPre<PluginCtx>,
}

enum Control {
    Disable,
    Enable,
    Reload(Box<Prepared>),
    Stop,
}

/// The daemon's handle on a running plugin. Dropping it stops the plugin.
pub struct PluginHandle {
    name: String,
    engine: Arc<EngineShared>,
    shared: Arc<Shared>,
    control: UnboundedSender<Control>,
    task: Option<JoinHandle<()>>,
}

impl PluginHandle {
    /// Starts the driver task of a prepared plugin on the current tokio runtime.
    pub(crate) fn spawn(
        engine: Arc<EngineShared>,
        prepared: Prepared,
        policy: RestartPolicy,
        events: UnboundedSender<PluginEvent>,
    ) -> Self {
        let name = prepared.spec.name.clone();
        let shared = Arc::new(Shared::new(name.clone(), prepared.spec.world));
        let (control, rx) = unbounded_channel();
        let driver = Driver {
            hysteresis: Hysteresis::new(hysteresis_config(&prepared.spec)),
            restarts: Restarts::new(policy),
            engine: engine.clone(),
            prepared,
            shared: shared.clone(),
            events,
            control: rx,
            instance: None,
            wake_at: tokio::time::Instant::now(),
        };
        let task = tokio::spawn(driver.run());
        PluginHandle {
            name,
            engine,
            shared,
            control,
            task: Some(task),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Operator maintenance switch: stops checking and reports
    /// [`Health::Disabled`] (the daemon withdraws or re-MEDs the routes).
    pub fn disable(&self) {
        let _ = self.control.send(Control::Disable);
    }

    /// Ends maintenance: checks resume and the next verdict is reported.
    pub fn enable(&self) {
        let _ = self.control.send(Control::Enable);
    }

    /// Hot swap to a new spec (new component, settings, grants, intervals).
    /// The new component is compiled and checked first: on error nothing
    /// changes. The state store, the health and the owned routes are kept;
    /// no Health event is sent unless the health changes. The name and
    /// world must stay the same. Compiles synchronously (seconds for a
    /// Python component unless cached): call it from a blocking context.
    pub fn reload(&self, spec: PluginSpec) -> anyhow::Result<()> {
        if spec.name != self.name {
            anyhow::bail!("reload of {} cannot rename it to {}", self.name, spec.name);
        }
        if spec.world != self.shared.world {
            anyhow::bail!("reload of {} cannot change its world", self.name);
        }
        let prepared = prepare(&self.engine, spec)?;
        self.control
            .send(Control::Reload(Box::new(prepared)))
            .map_err(|_| anyhow::anyhow!("plugin {} has stopped", self.name))
    }

    /// A snapshot of the plugin's status.
    pub fn status(&self) -> PluginStatus {
        self.shared.snapshot()
    }

    /// A copy of the plugin's `state` store (for diagnostics).
    pub fn state(&self) -> BTreeMap<String, Vec<u8>> {
        self.shared.state().snapshot()
    }

    /// Stops the plugin: waits for a call in progress to end (bounded by its
    /// deadline; abandoned after 2 s) and drops its instance. Routes are the
    /// daemon's to clean up.
    pub async fn stop(mut self) {
        let _ = self.control.send(Control::Stop);
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
            let _ = self.control.send(Control::Stop);
        }
    }
}

pub(crate) fn hysteresis_config(spec: &PluginSpec) -> HysteresisConfig {
    HysteresisConfig {
        interval: spec.interval,
        fast_interval: spec.fast_interval,
        rise: spec.rise,
        fall: spec.fall,
    }
}

/// Validates a spec and compiles, links and type-checks its component.
pub(crate) fn prepare(engine: &EngineShared, spec: PluginSpec) -> anyhow::Result<Prepared> {
    spec.validate()?;
    let grants = Arc::new(
        CheckedGrants::new(&spec.grants).map_err(|e| e.context(format!("plugin {}", spec.name)))?,
    );
    let component = engine.load(&spec.component)?;
    let export = spec.world.export_interface();
    if component
        .component_type()
        .get_export(&engine.engine, export)
        .is_none()
    {
        anyhow::bail!(
            "{} does not export {export}: it is not a {} plugin",
            spec.component.display(),
            spec.world
        );
    }
    let pre = engine
        .linker
        .instantiate_pre(&component)
        .and_then(HealthcheckPre::new)
        .map_err(crate::engine::wasmtime_error)
        .map_err(|e| {
            e.context(format!(
                "{} does not fit world {}",
                spec.component.display(),
                spec.world
            ))
        })?;
    Ok(Prepared { spec, grants, pre })
}

/// A live instance.
struct Instance {
    store: Store<PluginCtx>,
    bindings: Healthcheck,
}

/// Why a call did not complete.
enum Fault {
    /// A trap, deadline, memory cap or hung host call: the instance is dead.
    Died(String),
    /// `init` refused the settings.
    Config(String),
}

struct Driver {
    engine: Arc<EngineShared>,
    prepared: Prepared,
    shared: Arc<Shared>,
    events: UnboundedSender<PluginEvent>,
    control: UnboundedReceiver<Control>,
    hysteresis: Hysteresis,
    restarts: Restarts,
    instance: Option<Instance>,
    /// When the next check (or restart) is due.
    wake_at: tokio::time::Instant,
}

impl Driver {
    async fn run(mut self) {
        tracing::info!(plugin = %self.shared.name, component = %self.prepared.spec.component.display(), "plugin started");
        loop {
            let wake = (!self.hysteresis.is_disabled()).then_some(self.wake_at);
            tokio::select! {
                biased;
                message = self.control.recv() => match message {
                    None | Some(Control::Stop) => break,
                    Some(Control::Disable) => self.disable(),
                    Some(Control::Enable) => self.enable(),
                    Some(Control::Reload(prepared)) => self.reload(*prepared),
                },
                () = sleep_until(wake) => self.tick().await,
            }
        }
        self.instance = None;
        self.shared.update(|s| s.state = PluginState::Stopped);
        tracing::info!(plugin = %self.shared.name, "plugin stopped");
    }

    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn emit_health(&self, health: Health, reason: String) {
        tracing::info!(plugin = %self.shared.name, %health, %reason, "health transition");
        self.shared.update(|s| s.health = Some(health));
        let _ = self.events.send(PluginEvent::Health {
            plugin: self.name(),
            health,
            reason,
        });
    }

    fn disable(&mut self) {
        self.shared.update(|s| s.state = PluginState::Disabled);
        if let Some(health) = self.hysteresis.disable() {
            self.emit_health(health, "disabled by operator".into());
        }
    }

    fn enable(&mut self) {
        if self.hysteresis.is_disabled() {
            self.hysteresis.enable();
            self.shared.update(|s| s.state = PluginState::Running);
            self.wake_at = tokio::time::Instant::now();
            tracing::info!(plugin = %self.shared.name, "enabled by operator");
        }
    }

    fn reload(&mut self, prepared: Prepared) {
        tracing::info!(plugin = %self.shared.name, component = %prepared.spec.component.display(), "reloading");
        self.hysteresis
            .set_config(hysteresis_config(&prepared.spec));
        self.prepared = prepared;
        self.instance = None;
        self.restarts.clear();
        if !self.hysteresis.is_disabled() {
            self.shared.update(|s| s.state = PluginState::Running);
        }
        self.wake_at = tokio::time::Instant::now();
    }

    /// One scheduled step: make sure there is an instance, then check.
    async fn tick(&mut self) {
        if self.instance.is_none() {
            match self.instantiate().await {
                Ok(instance) => self.instance = Some(instance),
                Err(fault) => return self.fail(fault),
            }
        }
        match self.call_check().await {
            Ok(result) => {
                self.restarts.success();
                self.shared.update(|s| {
                    if s.state != PluginState::Disabled {
                        s.state = PluginState::Running;
                    }
                });
                let (passed, message) = match result {
                    Ok(detail) => (true, detail),
                    Err(reason) => (false, reason),
                };
                tracing::debug!(plugin = %self.shared.name, passed, %message, "check");
                if let Some(health) = self.hysteresis.record(passed) {
                    self.emit_health(health, message);
                }
                let delay = self
                    .hysteresis
                    .next_delay()
                    .unwrap_or(self.prepared.spec.interval);
                self.wake_at = tokio::time::Instant::now() + delay;
            }
            Err(fault) => {
                self.instance = None;
                self.fail(fault);
            }
        }
    }

    fn fail(&mut self, fault: Fault) {
        let error = match fault {
            Fault::Died(e) => e,
            Fault::Config(e) => format!("init refused the settings: {e}"),
        };
        let decision = self.restarts.failure(Instant::now());
        let state = if decision.failed {
            PluginState::Failed
        } else {
            PluginState::Backoff
        };
        tracing::error!(
            plugin = %self.shared.name,
            error = %error,
            restart_in = ?decision.delay,
            failed = decision.failed,
            "plugin fault; restarting with backoff"
        );
        let total = self.restarts.total();
        self.shared.update(|s| {
            s.restarts = total;
            s.last_error = Some(error.clone());
            // The verdict is forgotten (see `Hysteresis::reset`).
            if s.health != Some(Health::Disabled) {
                s.health = None;
            }
            if s.state != PluginState::Disabled {
                s.state = state;
            }
        });
        // The daemon applies on-failure; the next verdict is re-stated.
        self.hysteresis.reset();
        let on_failure: OnFailure = self.prepared.spec.on_failure;
        let _ = self.events.send(PluginEvent::Failed {
            plugin: self.name(),
            error,
            on_failure,
        });
        self.wake_at = tokio::time::Instant::now() + decision.delay;
    }

    fn new_store(&self) -> Store<PluginCtx> {
        let ctx = PluginCtx::new(
            self.shared.clone(),
            self.prepared.grants.clone(),
            self.events.clone(),
        );
        let mut store = Store::new(&self.engine.engine, ctx);
        store.limiter(|ctx| &mut ctx.limits);
        // Every tick: yield to tokio, or interrupt once the call's guest
        // time is spent.
        store.epoch_deadline_callback(|ctx| {
            if ctx.data().call.guest_time() >= ctx.data().call.deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    async fn instantiate(&mut self) -> Result<Instance, Fault> {
        let mut store = self.new_store();
        let deadline = self.prepared.grants.deadline.max(MIN_SETUP_DEADLINE);
        let pre = self.prepared.pre.clone();
        let bindings = timed_call(&mut store, deadline, async |store| {
            pre.instantiate_async(&mut *store).await
        })
        .await
        .map_err(|e| Fault::Died(format!("instantiation failed: {e}")))?;
        let settings = self.prepared.spec.settings.clone();
        let start = Instant::now();
        let result = timed_call(&mut store, deadline, async |store| {
            bindings
                .wasmbgp_plugin_health_check()
                .call_init(&mut *store, &settings)
                .await
        })
        .await;
        self.shared.record_call(start.elapsed());
        match result {
            Ok(Ok(())) => Ok(Instance { store, bindings }),
            Ok(Err(message)) => Err(Fault::Config(message)),
            Err(e) => Err(Fault::Died(format!("init: {e}"))),
        }
    }

    async fn call_check(&mut self) -> Result<Result<String, String>, Fault> {
        let deadline = self.prepared.grants.deadline;
        let Some(instance) = self.instance.as_mut() else {
            return Err(Fault::Died("no instance".into()));
        };
        let bindings = &instance.bindings;
        let start = Instant::now();
        let result = timed_call(&mut instance.store, deadline, async |store| {
            bindings
                .wasmbgp_plugin_health_check()
                .call_check(&mut *store)
                .await
        })
        .await;
        self.shared.record_call(start.elapsed());
        result.map_err(|e| Fault::Died(format!("check: {e}")))
    }
}

/// Runs one call with a guest-time `deadline` (enforced by the epoch
/// callback) and a wall-clock cap for hung host calls; describes faults.
async fn timed_call<T>(
    store: &mut Store<PluginCtx>,
    deadline: Duration,
    call: impl AsyncFnOnce(&mut Store<PluginCtx>) -> wasmtime::Result<T>,
) -> Result<T, String> {
    store.data_mut().call = CallClock::start(deadline);
    store.set_epoch_deadline(1);
    let wall = deadline + MAX_HOST_TIME_PER_CALL;
    // A panic in a host function (a wasmbgp bug that this plugin's input reached) is
    // this plugin's fault like a trap: the instance is dropped and restarted with
    // backoff, instead of the plugin's driver task dying unnoticed.
    let call = std::panic::AssertUnwindSafe(call(store)).catch_unwind();
    match tokio::time::timeout(wall, call).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(describe_fault(&e, deadline)),
        Ok(Err(panic)) => Err(format!(
            "host fault: a wasmbgp host function panicked during the call: {}",
            panic_message(panic.as_ref())
        )),
        Err(_) => Err(format!("call hung for more than {wall:?}")),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Names the usual faults plainly.
fn describe_fault(error: &wasmtime::Error, deadline: Duration) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            format!("deadline of {deadline:?} exceeded (interrupted)")
        }
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            format!("trap: unreachable (a panic or an out-of-memory abort): {error:#}")
        }
        Some(trap) => format!("trap: {trap}: {error:#}"),
        None => format!("{error:#}"),
    }
}

async fn sleep_until(when: Option<tokio::time::Instant>) {
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
        let shared = Arc::new(Shared::new("p".into(), World::Healthcheck));
        let (events, _rx) = unbounded_channel();
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
