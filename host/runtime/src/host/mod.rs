//! The host side of the WIT package (`wit/`): generated bindings for each world, the
//! per-store data ([`PluginCtx`]) with its sandboxed WASI context, and one module per
//! host interface a plugin may import, each with its own small context (what that
//! interface may touch, and nothing else), linked to its field of the store data:
//!
//! - [`routes`]: originating routes (grants, `max-routes`, validation);
//! - [`probe`]: TCP, DNS and HTTP probes (grants);
//! - [`log`]: `log`, `clock`, and the guest's stdout/stderr;
//! - [`state`]: the per-plugin key/value store;
//! - [`metrics`]: the plugin's own metrics, capped by `max-series`;
//! - [`output`]: appending to granted files;
//! - [`feed`]: an exporter's requests (resync);
//! - [`http`]: `wasi:http` outgoing requests, checked against `grants.http-out`;
//! - [`convert`]: routes and events between the WIT types and the BGP core's.
//!
//! `wasi:sockets` TCP streams are standard WASI, allowed only to `grants.tcp-out`.

mod convert;
mod feed;
mod http;
mod log;
mod metrics;
mod output;
mod probe;
mod routes;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

#[cfg(test)]
pub(crate) use convert::flow_rule_in;
pub(crate) use convert::{address_out, attributes_in, attributes_out, events_out, flow_rule_out};
use feed::FeedCtx;
use http::HttpCtx;
use log::{ClockCtx, LogCtx};
pub(crate) use metrics::MetricStore;
use metrics::MetricsCtx;
pub use metrics::{MetricValue, PluginMetric, PluginMetricKind, RESERVED as RESERVED_METRICS};
use output::OutputCtx;
use probe::ProbeCtx;
use routes::RoutesCtx;
pub use state::KvStore;
use state::StateCtx;

use crate::grants::CheckedGrants;
use crate::supervisor::Shared;
use log::LogStream;

/// Bindings generated from `wit/`, one module per world. The interfaces a world shares
/// with `healthcheck` (types, log, state) are generated once, there, so that every world
/// uses the same Rust types and host implementations. Probes are async on the host, and
/// so are route requests (they wait for room in the queue to the daemon); everything
/// else is a quick synchronous call.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "healthcheck",
        imports: {
            "wasmbgp:plugin/probe": async,
            "wasmbgp:plugin/routes": async,
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
                "wasmbgp:plugin/metrics": super::wasmbgp::plugin::metrics,
            },
        });
    }

    /// The `exporter` world.
    pub(crate) mod exporter {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "exporter",
            imports: { default: tracing },
            exports: { default: async },
            with: {
                "wasmbgp:plugin/types": super::wasmbgp::plugin::types,
                "wasmbgp:plugin/log": super::wasmbgp::plugin::log,
                "wasmbgp:plugin/clock": super::wasmbgp::plugin::clock,
                "wasmbgp:plugin/state": super::wasmbgp::plugin::state,
                "wasmbgp:plugin/metrics": super::wasmbgp::plugin::metrics,
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

/// Links every host interface of the package into `linker`, each to its own context
/// in [`PluginCtx`] (the `healthcheck` world imports all of them; the other worlds
/// import a subset).
pub(crate) fn add_to_linker(linker: &mut Linker<PluginCtx>) -> anyhow::Result<()> {
    use bindings::exporter::wasmbgp::plugin::{feed, output};
    use bindings::wasmbgp::plugin::{clock, log, metrics, probe, routes, state};
    let error = crate::engine::wasmtime_error;
    types::add_to_linker::<PluginCtx, HasSelf<ClockCtx>>(linker, |c| &mut c.clock)
        .map_err(error)?;
    log::add_to_linker::<PluginCtx, HasSelf<LogCtx>>(linker, |c| &mut c.log).map_err(error)?;
    clock::add_to_linker::<PluginCtx, HasSelf<ClockCtx>>(linker, |c| &mut c.clock)
        .map_err(error)?;
    state::add_to_linker::<PluginCtx, HasSelf<StateCtx>>(linker, |c| &mut c.state)
        .map_err(error)?;
    probe::add_to_linker::<PluginCtx, HasSelf<ProbeCtx>>(linker, |c| &mut c.probe)
        .map_err(error)?;
    routes::add_to_linker::<PluginCtx, HasSelf<RoutesCtx>>(linker, |c| &mut c.routes)
        .map_err(error)?;
    metrics::add_to_linker::<PluginCtx, HasSelf<MetricsCtx>>(linker, |c| &mut c.metrics)
        .map_err(error)?;
    output::add_to_linker::<PluginCtx, HasSelf<OutputCtx>>(linker, |c| &mut c.output)
        .map_err(error)?;
    feed::add_to_linker::<PluginCtx, HasSelf<FeedCtx>>(linker, |c| &mut c.feed).map_err(error)?;
    // Any world may use wasi:http; every request is checked against grants.http-out.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker).map_err(error)?;
    Ok(())
}

/// The call in progress, read by the epoch callback.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallClock {
    /// When the call started.
    pub started: Instant,
    /// Guest time allowed.
    pub deadline: Duration,
}

/// The data of one plugin instance's `Store`: the sandboxed WASI context, the limits,
/// the call in progress, and one small context per host interface, holding only what
/// that interface may touch.
pub(crate) struct PluginCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory and instance limits (wired into the store's limiter).
    pub limits: StoreLimits,
    /// The call in progress.
    pub call: CallClock,
    log: LogCtx,
    clock: ClockCtx,
    state: StateCtx,
    probe: ProbeCtx,
    routes: RoutesCtx,
    metrics: MetricsCtx,
    output: OutputCtx,
    feed: FeedCtx,
    http: HttpCtx,
}

impl PluginCtx {
    /// A context with a sandboxed WASI: no preopens, environment,
    /// arguments, network or name lookups; stdout/stderr go to the log.
    pub fn new(
        shared: Arc<Shared>,
        grants: Arc<CheckedGrants>,
        events: crate::EventSender,
    ) -> Self {
        let name: Arc<str> = Arc::from(shared.name.as_str());
        let mut wasi = WasiCtx::builder();
        wasi.stdout(LogStream {
            plugin: name.clone(),
            shared: shared.clone(),
            stream: "stdout",
        })
        .stderr(LogStream {
            plugin: name.clone(),
            shared: shared.clone(),
            stream: "stderr",
        })
        .allow_tcp(!grants.tcp_out.is_empty())
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        if !grants.tcp_out.is_empty() {
            let (allowed, shared) = (grants.clone(), shared.clone());
            wasi.socket_addr_check(move |addr, usage| {
                use wasmtime_wasi::sockets::SocketAddrUse;
                let ok = match usage {
                    // connect() binds implicitly to the wildcard address first.
                    SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                    SocketAddrUse::TcpConnect => allowed.tcp_out.contains(&addr),
                    _ => false,
                };
                if !ok {
                    shared.denied(&format!("TCP {usage:?} {addr}: not in grants.tcp-out"));
                }
                Box::pin(std::future::ready(ok))
            });
        }
        let wasi = wasi.build();
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
            wasi,
            table: ResourceTable::new(),
            limits,
            call: CallClock {
                started: Instant::now(),
                deadline: Duration::from_secs(1),
            },
            log: LogCtx {
                plugin: name.clone(),
                shared: shared.clone(),
            },
            clock: ClockCtx { born: shared.born },
            state: StateCtx {
                shared: shared.clone(),
            },
            probe: ProbeCtx {
                plugin: name.clone(),
                shared: shared.clone(),
                grants: grants.clone(),
                host_time: Duration::ZERO,
            },
            routes: RoutesCtx {
                plugin: name.clone(),
                shared: shared.clone(),
                grants: grants.clone(),
                events,
                waited: Duration::ZERO,
            },
            metrics: MetricsCtx {
                plugin: name.clone(),
                shared: shared.clone(),
                max_series: grants.max_series,
            },
            output: OutputCtx {
                plugin: name.clone(),
                shared: shared.clone(),
                grants: grants.clone(),
            },
            feed: FeedCtx::default(),
            http: HttpCtx::new(name, shared, grants),
        }
    }

    /// The plugin's data that outlives this instance.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.state.shared
    }

    /// Whether the exporter asked for a resync since the last call (and forget it).
    pub fn take_resync(&mut self) -> bool {
        std::mem::take(&mut self.feed.resync)
    }

    /// Starts timing a call with `deadline` of guest time.
    pub fn start_call(&mut self, deadline: Duration) {
        self.call = CallClock {
            started: Instant::now(),
            deadline,
        };
        self.probe.host_time = Duration::ZERO;
        self.routes.waited = Duration::ZERO;
    }

    /// Guest time used by the call so far: its time minus what the host spent in probes
    /// and waiting for the daemon to take route requests.
    pub fn guest_time(&self) -> Duration {
        self.call
            .started
            .elapsed()
            .saturating_sub(self.probe.host_time + self.routes.waited)
    }
}

impl types::Host for ClockCtx {}

impl WasiView for PluginCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for PluginCtx {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        let (ctx, hooks) = self.http.parts();
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx,
            table: &mut self.table,
            hooks,
        }
    }
}
