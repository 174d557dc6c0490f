//! The `healthcheck` world's driver: checks on the hysteresis' schedule, reports health
//! transitions, contains faults and restarts the instance with backoff.

use std::time::Instant;

use wasmtime::Store;

use tokio::sync::oneshot;

use super::{
    Control, DriverCore, Fault, LastCheck, PluginState, Prepared, WorldPre, hysteresis_config,
    setup_deadline, sleep_until, timed_call,
};
use crate::events::PluginEvent;
use crate::healthcheck::{Health, Hysteresis};
use crate::host::PluginCtx;
use crate::host::bindings::Healthcheck;
use crate::restart::{RestartPolicy, Restarts};

/// Runs a health check until it is stopped.
pub(crate) async fn run(core: DriverCore, restart: RestartPolicy) {
    let driver = Driver {
        hysteresis: Hysteresis::new(hysteresis_config(&core.prepared.spec)),
        restarts: Restarts::new(restart),
        core,
        instance: None,
        wake_at: tokio::time::Instant::now(),
    };
    driver.run().await
}

/// A live instance.
pub(super) struct Instance {
    store: Store<PluginCtx>,
    bindings: Healthcheck,
}

struct Driver {
    core: DriverCore,
    hysteresis: Hysteresis,
    restarts: Restarts,
    instance: Option<Instance>,
    /// When the next check (or restart) is due.
    wake_at: tokio::time::Instant,
}

impl Driver {
    async fn run(mut self) {
        tracing::info!(plugin = %self.core.shared.name, component = %self.core.prepared.spec.component.display(), "plugin started");
        loop {
            let wake = (!self.hysteresis.is_disabled()).then_some(self.wake_at);
            tokio::select! {
                biased;
                message = self.core.control.recv() => match message {
                    None | Some(Control::Stop) => break,
                    Some(Control::Disable) => self.disable(),
                    Some(Control::Enable) => self.enable(),
                    Some(Control::Reload(prepared, reply)) => self.reload(*prepared, reply).await,
                },
                () = sleep_until(wake) => self.tick().await,
            }
        }
        self.instance = None;
        self.core.shared.update(|s| s.state = PluginState::Stopped);
        tracing::info!(plugin = %self.core.shared.name, "plugin stopped");
    }

    fn name(&self) -> String {
        self.core.shared.name.clone()
    }

    fn emit_health(&self, health: Health, reason: String) {
        let reason = self.core.shared.redact(&reason);
        tracing::info!(plugin = %self.core.shared.name, %health, %reason, "health transition");
        self.core.shared.update(|s| s.health = Some(health));
        self.core.events.notify(PluginEvent::Health {
            plugin: self.name(),
            health,
            reason,
        });
    }

    fn disable(&mut self) {
        self.core.shared.update(|s| s.state = PluginState::Disabled);
        if let Some(health) = self.hysteresis.disable() {
            self.emit_health(health, "disabled by operator".into());
        }
    }

    fn enable(&mut self) {
        if self.hysteresis.is_disabled() {
            self.hysteresis.enable();
            self.core.shared.update(|s| s.state = PluginState::Running);
            self.wake_at = tokio::time::Instant::now();
            tracing::info!(plugin = %self.core.shared.name, "enabled by operator");
        }
    }

    async fn reload(&mut self, prepared: Prepared, reply: oneshot::Sender<Result<(), String>>) {
        tracing::info!(plugin = %self.core.shared.name, component = %prepared.spec.component.display(), "reloading");
        let instance = match instantiate(&self.core, &prepared).await {
            Ok(instance) => instance,
            Err(fault) => return self.core.refuse_reload(reply, fault),
        };
        self.hysteresis
            .set_config(hysteresis_config(&prepared.spec));
        self.instance = Some(instance);
        self.restarts.clear();
        self.core.take_over(prepared, reply);
        if !self.hysteresis.is_disabled() {
            self.core.shared.update(|s| s.state = PluginState::Running);
        }
        self.wake_at = tokio::time::Instant::now();
    }

    /// One scheduled step: make sure there is an instance, then check.
    async fn tick(&mut self) {
        if self.instance.is_none() {
            match instantiate(&self.core, &self.core.prepared).await {
                Ok(instance) => {
                    self.instance = Some(instance);
                    self.core.started();
                }
                Err(fault) => return self.fail(fault),
            }
        }
        match self.call_check().await {
            Ok(result) => {
                self.restarts.success();
                self.core.shared.update(|s| {
                    if s.state != PluginState::Disabled {
                        s.state = PluginState::Running;
                    }
                });
                let (passed, message) = match result {
                    Ok(detail) => (true, detail),
                    Err(reason) => (false, reason),
                };
                tracing::debug!(plugin = %self.core.shared.name, passed, %message, "check");
                let detail = self.core.shared.redact(&message);
                self.core.shared.update(|s| {
                    s.checks += 1;
                    s.last_check = Some(LastCheck { passed, detail });
                });
                if let Some(health) = self.hysteresis.record(passed) {
                    self.emit_health(health, message);
                }
                let delay = self
                    .hysteresis
                    .next_delay()
                    .unwrap_or(self.core.prepared.spec.interval);
                self.wake_at = tokio::time::Instant::now() + delay;
            }
            Err(fault) => {
                self.instance = None;
                self.fail(fault);
            }
        }
    }

    fn fail(&mut self, fault: Fault) {
        let error = self.core.fault_text(fault);
        let decision = self.restarts.failure(Instant::now());
        let state = if decision.failed {
            PluginState::Failed
        } else {
            PluginState::Backoff
        };
        tracing::error!(
            plugin = %self.core.shared.name,
            error = %error,
            restart_in = ?decision.delay,
            failed = decision.failed,
            "plugin fault; restarting with backoff"
        );
        let total = self.restarts.total();
        self.core.shared.update(|s| {
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
        let on_failure = self.core.prepared.spec.on_failure;
        self.core.events.notify(PluginEvent::Failed {
            plugin: self.name(),
            error,
            on_failure,
        });
        self.wake_at = tokio::time::Instant::now() + decision.delay;
    }

    async fn call_check(&mut self) -> Result<Result<String, String>, Fault> {
        let deadline = self.core.prepared.grants.deadline;
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
        self.core.shared.record_call(start.elapsed());
        result.map_err(|e| Fault::Died(format!("check: {e}")))
    }
}

/// Instantiates `prepared` and runs its `init`.
pub(super) async fn instantiate(core: &DriverCore, prepared: &Prepared) -> Result<Instance, Fault> {
    let mut store = core.new_store(prepared);
    let deadline = setup_deadline(prepared);
    let WorldPre::Healthcheck(pre) = prepared.pre.clone() else {
        return Err(Fault::Died("not a health check".into()));
    };
    let bindings = timed_call(&mut store, deadline, async |store| {
        pre.instantiate_async(&mut *store).await
    })
    .await
    .map_err(|e| Fault::Died(format!("instantiation failed: {e}")))?;
    let settings = prepared.spec.settings.clone();
    let start = Instant::now();
    let result = timed_call(&mut store, deadline, async |store| {
        bindings
            .wasmbgp_plugin_health_check()
            .call_init(&mut *store, &settings)
            .await
    })
    .await;
    core.shared.record_call(start.elapsed());
    match result {
        Ok(Ok(())) => Ok(Instance { store, bindings }),
        Ok(Err(message)) => Err(Fault::Config(message)),
        Err(e) => Err(Fault::Died(format!("init: {e}"))),
    }
}
