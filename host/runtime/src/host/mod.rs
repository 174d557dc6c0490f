//! The host side of the WIT package (`wit/`): generated bindings for each world, the
//! per-store data ([`PluginCtx`]) with its sandboxed WASI context, and one module per
//! host interface a plugin may import:
//!
//! - [`routes`]: originating routes (grants, `max-routes`, validation);
//! - [`probe`]: TCP, DNS and HTTP probes (grants);
//! - [`log`]: `log`, `clock`, and the guest's stdout/stderr;
//! - [`state`]: the per-plugin key/value store;
//! - [`convert`]: routes between the WIT types and the BGP core's, both ways.

mod convert;
mod log;
mod probe;
mod routes;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub(crate) use convert::{address_out, attributes_in, attributes_out};
pub use state::KvStore;

use crate::events::PluginEvent;
use crate::grants::CheckedGrants;
use crate::supervisor::Shared;
use log::LogStream;

/// Bindings generated from `wit/`, one module per world. The interfaces a world shares
/// with `healthcheck` (types, log, state) are generated once, there, so that every world
/// uses the same Rust types and host implementations. Probes are async on the host;
/// everything else is a quick synchronous call.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "healthcheck",
        imports: {
            "wasmbgp:plugin/probe": async,
            default: tracing,
        },
        exports: { default: async },
    });

    /// The `policy` world.
    pub(crate) mod policy {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "policy",
            imports: { default: tracing },
            exports: { default: async },
            with: {
                "wasmbgp:plugin/types": super::wasmbgp::plugin::types,
                "wasmbgp:plugin/log": super::wasmbgp::plugin::log,
                "wasmbgp:plugin/state": super::wasmbgp::plugin::state,
            },
        });
    }
}

use bindings::wasmbgp::plugin::types;

/// The longest a single probe may wait, whatever the plugin asks.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The probe timeout when the plugin passes 0.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Limits of the `state` store.
pub const STATE_MAX_KEY: usize = 256;
/// Largest value in the `state` store.
pub const STATE_MAX_VALUE: usize = 64 * 1024;
/// Total bytes (keys and values) of the `state` store.
pub const STATE_MAX_TOTAL: usize = 1 << 20;
/// Longest log line kept (longer ones are cut).
pub const MAX_LOG_LINE: usize = 4096;

/// Links every host interface of the package into `linker` (the `healthcheck` world
/// imports all of them; the other worlds import a subset).
pub(crate) fn add_to_linker(linker: &mut Linker<PluginCtx>) -> anyhow::Result<()> {
    bindings::Healthcheck::add_to_linker::<PluginCtx, HasSelf<PluginCtx>>(linker, |ctx| ctx)
        .map_err(crate::engine::wasmtime_error)
}

/// Time accounting of the call in progress, read by the epoch callback.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallClock {
    /// When the call started.
    pub started: Instant,
    /// Time spent awaiting host probes during the call.
    pub host_time: Duration,
    /// Guest time allowed.
    pub deadline: Duration,
}

impl CallClock {
    /// Starts timing a call with `deadline` of guest time.
    pub fn start(deadline: Duration) -> Self {
        CallClock {
            started: Instant::now(),
            host_time: Duration::ZERO,
            deadline,
        }
    }

    /// Guest time used so far.
    pub fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }
}

/// The data of one plugin instance's `Store`.
pub(crate) struct PluginCtx {
    pub(crate) name: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory and instance limits (wired into the store's limiter).
    pub limits: StoreLimits,
    pub(crate) shared: Arc<Shared>,
    pub(crate) grants: Arc<CheckedGrants>,
    pub(crate) events: UnboundedSender<PluginEvent>,
    /// The call in progress.
    pub call: CallClock,
}

impl PluginCtx {
    /// A context with a sandboxed WASI: no preopens, environment,
    /// arguments, network or name lookups; stdout/stderr go to the log.
    pub fn new(
        shared: Arc<Shared>,
        grants: Arc<CheckedGrants>,
        events: UnboundedSender<PluginEvent>,
    ) -> Self {
        let name: Arc<str> = Arc::from(shared.name.as_str());
        let wasi = WasiCtx::builder()
            .stdout(LogStream {
                plugin: name.clone(),
                stream: "stdout",
            })
            .stderr(LogStream {
                plugin: name.clone(),
                stream: "stderr",
            })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let memory = usize::try_from(grants.memory).unwrap_or(usize::MAX);
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory)
            .instances(64)
            .memories(64)
            .tables(64)
            .table_elements(1 << 20)
            .trap_on_grow_failure(false)
            .build();
        PluginCtx {
            name,
            wasi,
            table: ResourceTable::new(),
            limits,
            shared,
            grants,
            events,
            call: CallClock::start(Duration::from_secs(1)),
        }
    }
}

impl types::Host for PluginCtx {}

impl WasiView for PluginCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
