//! # wasmbgp-runtime
//!
//! The plugin runtime of wasmbgp: runs the operator's plugins, WebAssembly
//! components built against the `wasmbgp:plugin@0.2.0` WIT package (`wit/`),
//! each sandboxed with only the capabilities its config grants.
//!
//! ```ignore
//! let runtime = Runtime::new()?;
//! let mut spec = PluginSpec::new("web", World::Healthcheck, "target/plugins/tcp-check.wasm");
//! spec.settings = vec![("address".into(), "127.0.0.1:8080".into())];
//! spec.grants.tcp = vec!["127.0.0.1:8080".into()];
//! runtime.check(&spec)?;                        // `wasmbgp check`
//! let (tx, mut rx) = EventSender::channel();
//! let handle = runtime.start(spec, tx)?;        // inside a tokio runtime
//! while let Some(event) = rx.recv().await { /* PluginEvent::Health { .. } */ }
//! ```
//!
//! Modules, one per concern:
//! - [`engine`]: the [`Runtime`]: the wasmtime engine, epoch ticker and
//!   compiled-component cache;
//! - [`grants`]: capability grants and their checks;
//! - [`probes`]: the TCP, DNS and HTTP probes;
//! - [`healthcheck`]: the rise/fall hysteresis (pure);
//! - [`restart`]: the restart backoff policy (pure);
//! - `host`: bindings, and one module per host interface;
//! - `supervisor`: what every world shares (instances, faults, [`PluginHandle`]) and
//!   one driver per world: health checks on a schedule, policies on request through a
//!   [`PolicyClient`].

#![warn(missing_docs)]

#[cfg(feature = "engine")]
pub mod engine;
pub mod events;
pub mod export;
pub mod grants;
pub mod healthcheck;
#[cfg(feature = "engine")]
mod host;
pub mod probes;
pub mod restart;
pub mod spec;
#[cfg(feature = "engine")]
mod supervisor;

#[cfg(feature = "engine")]
pub use engine::{Inspection, Runtime, RuntimeOptions};
pub use events::{EventSender, PluginEvent};
pub use healthcheck::Health;
#[cfg(feature = "engine")]
pub use host::KvStore;
#[cfg(feature = "engine")]
pub use host::{MetricValue, PluginMetric, PluginMetricKind, RESERVED_METRICS};
pub use restart::RestartPolicy;
pub use spec::{GrantedFile, Grants, OnFailure, PluginSpec, World, parse_size};
#[cfg(feature = "engine")]
pub use supervisor::policy::{Direction, MAX_BATCH};
#[cfg(feature = "engine")]
pub use supervisor::{
    CALL_BUCKETS, CONTROL_QUEUE, ExporterClient, FaultKind, LastCheck, PluginHandle, PluginState,
    PluginStatus, PolicyClient, PolicySession, PolicyUnavailable, Reload, Reloader, StatusSource,
    Verdict, Verdicts,
};
