//! # wasmbgp-runtime
//!
//! The plugin runtime of wasmbgp: runs the operator's plugins, WebAssembly
//! components built against the `wasmbgp:plugin@0.1.0` WIT package (`wit/`),
//! each sandboxed with only the capabilities its config grants.
//!
//! ```ignore
//! let runtime = Runtime::new()?;
//! let mut spec = PluginSpec::new("web", World::Healthcheck, "target/plugins/tcp-check.wasm");
//! spec.settings = vec![("address".into(), "127.0.0.1:8080".into())];
//! spec.grants.tcp = vec!["127.0.0.1:8080".into()];
//! runtime.check(&spec)?;                        // `wasmbgp check`
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let handle = runtime.start(spec, tx)?;        // inside a tokio runtime
//! while let Some(event) = rx.recv().await { /* PluginEvent::Health { .. } */ }
//! ```
//!
//! Modules, one per concern:
//! - [`engine`]: the wasmtime engine, epoch ticker and compiled-component cache;
//! - [`grants`]: capability grants and their checks;
//! - [`probes`]: the TCP, DNS and HTTP probes;
//! - [`healthcheck`]: the rise/fall hysteresis (pure);
//! - [`restart`]: the restart backoff policy (pure);
//! - `host`: bindings and host interface implementations;
//! - `supervisor`: the per-plugin driver task and [`PluginHandle`].

#![warn(missing_docs)]

pub mod engine;
pub mod events;
pub mod grants;
pub mod healthcheck;
mod host;
pub mod probes;
pub mod restart;
pub mod spec;
mod supervisor;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

pub use events::PluginEvent;
pub use healthcheck::Health;
pub use host::KvStore;
pub use restart::RestartPolicy;
pub use spec::{Grants, OnFailure, PluginSpec, World, parse_size};
pub use supervisor::{PluginHandle, PluginState, PluginStatus};

/// Converts a wasmtime error (its own type in wasmtime 48, not anyhow's)
/// into an anyhow error, keeping its message chain.
pub(crate) fn wasmtime_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(error.into_boxed_dyn_error())
}

/// Options of a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached as `.cwasm` files (created if
    /// missing; keep it private to the daemon). `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// The restart backoff after faults.
    pub restart: RestartPolicy,
}

/// The plugin runtime: one wasmtime engine with epoch interruption, a
/// 10 ms epoch ticker thread, the host linker and the component cache.
/// Cheap to clone; plugins keep what they need alive.
#[derive(Clone)]
pub struct Runtime {
    engine: Arc<engine::EngineShared>,
    options: RuntimeOptions,
}

impl Runtime {
    /// A runtime with default options (memory-only component cache).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_options(RuntimeOptions::default())
    }

    /// A runtime with `options`.
    pub fn with_options(options: RuntimeOptions) -> anyhow::Result<Self> {
        Ok(Runtime {
            engine: Arc::new(engine::EngineShared::new(options.cache_dir.clone())?),
            options,
        })
    }

    /// Validates a spec without running anything: name, intervals and
    /// counts, grants (addresses parse, memory and deadline in range), the
    /// component (exists, is a component, exports the world's interface and
    /// imports nothing the host lacks). Compiles the component (cached).
    pub fn check(&self, spec: &PluginSpec) -> anyhow::Result<()> {
        supervisor::prepare(&self.engine, spec.clone()).map(drop)
    }

    /// Checks and starts a plugin on the current tokio runtime; its events go
    /// to `events`. Compiles synchronously (cached): for a large component
    /// not yet cached, call it from a blocking context. Must be called within
    /// a tokio runtime.
    pub fn start(
        &self,
        spec: PluginSpec,
        events: UnboundedSender<PluginEvent>,
    ) -> anyhow::Result<PluginHandle> {
        if tokio::runtime::Handle::try_current().is_err() {
            anyhow::bail!("Runtime::start must be called within a tokio runtime");
        }
        let prepared = supervisor::prepare(&self.engine, spec)?;
        Ok(PluginHandle::spawn(
            self.engine.clone(),
            prepared,
            self.options.restart,
            events,
        ))
    }
}
