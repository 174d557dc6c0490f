//! The host side of the WIT package: generated bindings, the per-store data
//! ([`PluginCtx`]) and the implementations of the host interfaces (`probe`,
//! `routes`, `log`, `clock`, `state`), plus the sandboxed WASI context.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::UnboundedSender;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use wasmbgp_bgp::packet::attributes::{AsPath, NextHop, Origin, PathAttributes};
use wasmbgp_bgp::words::{self, RouteSpec};

use crate::events::PluginEvent;
use crate::grants::{CheckedGrants, NeighborError, ProbeKind};
use crate::probes::{self, ProbeFailure, RecordKind};
use crate::supervisor::Shared;

/// Bindings generated from `wit/` for the `healthcheck` world. Probes are
/// async on the host; everything else is a quick synchronous call.
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
}

use bindings::wasmbgp::plugin::{clock, log, probe, routes, state, types};

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

/// Links the package's host interfaces into `linker`.
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
    name: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory and instance limits (wired into the store's limiter).
    pub limits: StoreLimits,
    shared: Arc<Shared>,
    grants: Arc<CheckedGrants>,
    events: UnboundedSender<PluginEvent>,
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

    /// Checks a probe target against the grant; a denial is logged,
    /// counted and returned, and nothing reaches the network.
    fn authorize(
        &self,
        kind: ProbeKind,
        target: &str,
    ) -> Result<std::net::SocketAddr, ProbeFailure> {
        let addr = probes::parse_target(target)?;
        self.authorize_addr(kind, addr)
    }

    fn authorize_addr(
        &self,
        kind: ProbeKind,
        addr: std::net::SocketAddr,
    ) -> Result<std::net::SocketAddr, ProbeFailure> {
        if self.grants.allows(kind, &addr) {
            return Ok(addr);
        }
        self.shared.count_denied();
        tracing::warn!(plugin = %self.name, probe = %kind, target = %addr, "denied: target outside grants.{kind}");
        Err(ProbeFailure::Denied(format!(
            "{addr} is not in grants.{kind}"
        )))
    }

    fn probe_timeout(&self, timeout_ms: u32) -> Duration {
        if timeout_ms == 0 {
            DEFAULT_PROBE_TIMEOUT
        } else {
            Duration::from_millis(u64::from(timeout_ms)).min(MAX_PROBE_TIMEOUT)
        }
    }

    /// Awaits a probe, charging its time to the host rather than the guest.
    async fn timed<T>(&mut self, fut: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = fut.await;
        self.call.host_time += start.elapsed();
        out
    }

    fn route_denied(&self, why: String) -> routes::RouteError {
        self.shared.count_denied();
        tracing::warn!(plugin = %self.name, "route request denied: {why}");
        routes::RouteError::Denied(why)
    }

    /// Refuses a malformed route request: logged, counted and answered `invalid`.
    fn route_invalid(&self, why: String) -> routes::RouteError {
        self.shared.count_invalid();
        tracing::warn!(plugin = %self.name, "route request invalid: {why}");
        routes::RouteError::Invalid(why)
    }

    fn neighbors(&self, requested: &[String]) -> Result<Vec<std::net::IpAddr>, routes::RouteError> {
        self.grants.neighbors_for(requested).map_err(|e| match e {
            NeighborError::Denied(why) => self.route_denied(why),
            NeighborError::Invalid(why) => self.route_invalid(why),
        })
    }
}

impl WasiView for PluginCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl From<ProbeFailure> for probe::ProbeError {
    fn from(f: ProbeFailure) -> Self {
        match f {
            ProbeFailure::Denied(s) => probe::ProbeError::Denied(s),
            ProbeFailure::Timeout => probe::ProbeError::Timeout,
            ProbeFailure::Refused(s) => probe::ProbeError::Refused(s),
            ProbeFailure::Invalid(s) => probe::ProbeError::Invalid(s),
            ProbeFailure::Failed(s) => probe::ProbeError::Failed(s),
        }
    }
}

impl types::Host for PluginCtx {}

impl probe::Host for PluginCtx {
    async fn tcp_connect(
        &mut self,
        target: String,
        timeout_ms: u32,
    ) -> Result<u64, probe::ProbeError> {
        let addr = self.authorize(ProbeKind::Tcp, &target)?;
        let timeout = self.probe_timeout(timeout_ms);
        Ok(self.timed(probes::tcp_connect(addr, timeout)).await?)
    }

    async fn dns_query(
        &mut self,
        server: String,
        name: String,
        kind: probe::RecordType,
        timeout_ms: u32,
    ) -> Result<probe::DnsAnswer, probe::ProbeError> {
        let addr = self.authorize(ProbeKind::Dns, &server)?;
        let timeout = self.probe_timeout(timeout_ms);
        let kind = match kind {
            probe::RecordType::A => RecordKind::A,
            probe::RecordType::Aaaa => RecordKind::Aaaa,
        };
        let answer = self
            .timed(probes::dns_query(addr, &name, kind, timeout))
            .await?;
        Ok(probe::DnsAnswer {
            rcode: answer.rcode,
            addresses: answer.addresses.iter().map(ToString::to_string).collect(),
            elapsed_us: answer.elapsed_us,
        })
    }

    async fn http_get(
        &mut self,
        url: String,
        timeout_ms: u32,
        max_body: u32,
    ) -> Result<probe::HttpResponse, probe::ProbeError> {
        let parsed = probes::parse_http_url(&url)?;
        self.authorize_addr(ProbeKind::Http, parsed.addr)?;
        let timeout = self.probe_timeout(timeout_ms);
        let max_body = usize::try_from(max_body)
            .unwrap_or(usize::MAX)
            .min(STATE_MAX_TOTAL);
        let r = self
            .timed(probes::http_get(&parsed, timeout, max_body))
            .await?;
        Ok(probe::HttpResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
            truncated: r.truncated,
            elapsed_us: r.elapsed_us,
        })
    }
}

impl routes::Host for PluginCtx {
    fn announce(
        &mut self,
        route: types::Route,
        neighbors: Vec<String>,
    ) -> Result<(), routes::RouteError> {
        let neighbors = self.neighbors(&neighbors)?;
        let route = route_spec(&route).map_err(|why| self.route_invalid(why))?;
        if !self.shared.own_route(route.prefix, self.grants.max_routes) {
            self.shared.count_denied();
            let cap = self.grants.max_routes.unwrap_or(0);
            tracing::warn!(plugin = %self.name, prefix = %route.prefix, "route refused: max-routes {cap} reached");
            return Err(routes::RouteError::LimitExceeded(format!(
                "max-routes is {cap}"
            )));
        }
        let _ = self.events.send(PluginEvent::Announce {
            plugin: self.name.to_string(),
            route,
            neighbors,
        });
        Ok(())
    }

    fn withdraw(
        &mut self,
        prefix: String,
        neighbors: Vec<String>,
    ) -> Result<(), routes::RouteError> {
        let neighbors = self.neighbors(&neighbors)?;
        let prefix = words::parse_prefix(&prefix).map_err(|why| self.route_invalid(why))?;
        self.shared.disown_route(&prefix);
        let _ = self.events.send(PluginEvent::Withdraw {
            plugin: self.name.to_string(),
            prefix,
            neighbors,
        });
        Ok(())
    }
}

/// A `routes.announce` request in the speaker's terms, parsed with the same route
/// words as the config and the control socket: a route that fails here never leaves
/// the plugin's call.
fn route_spec(route: &types::Route) -> Result<RouteSpec, String> {
    let prefix = words::parse_prefix(&route.prefix)?;
    let next_hop = match &route.next_hop {
        None => NextHop::Local,
        Some(text) => words::parse_next_hop(text)?,
    };
    let attrs = PathAttributes {
        origin: match route.origin {
            None | Some(types::Origin::Igp) => Origin::Igp,
            Some(types::Origin::Egp) => Origin::Egp,
            Some(types::Origin::Incomplete) => Origin::Incomplete,
        },
        as_path: AsPath::from_sequence(route.as_path.clone()),
        next_hop: Some(next_hop),
        med: route.med,
        local_pref: route.local_pref,
        communities: parse_all(&route.communities, words::parse_community)?,
        large_communities: parse_all(&route.large_communities, words::parse_large_community)?,
        extended_communities: parse_all(
            &route.extended_communities,
            words::parse_extended_community,
        )?,
        ..PathAttributes::default()
    };
    words::check_next_hop_family(&prefix, attrs.next_hop.as_ref())?;
    Ok(RouteSpec { prefix, attrs })
}

fn parse_all<T>(items: &[String], parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    items.iter().map(|item| parse(item)).collect()
}

impl log::Host for PluginCtx {
    fn log(&mut self, level: log::Level, message: String) {
        let message = cut(&message, MAX_LOG_LINE);
        let plugin = &*self.name;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl clock::Host for PluginCtx {
    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic_us(&mut self) -> u64 {
        u64::try_from(self.shared.born.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

impl state::Host for PluginCtx {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.shared.state().get(&key).cloned()
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.shared.state().set(key, value)
    }

    fn delete(&mut self, key: String) {
        self.shared.state().delete(&key);
    }

    fn keys(&mut self) -> Vec<String> {
        self.shared.state().map.keys().cloned().collect()
    }
}

/// The `state` store of one plugin (kept across restarts and reloads).
#[derive(Debug, Default, Clone)]
pub struct KvStore {
    map: BTreeMap<String, Vec<u8>>,
    bytes: usize,
}

impl KvStore {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.map.get(key)
    }

    /// Stores a value, enforcing the limits.
    pub fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        if key.len() > STATE_MAX_KEY {
            return Err(format!("state key longer than {STATE_MAX_KEY} bytes"));
        }
        if value.len() > STATE_MAX_VALUE {
            return Err(format!("state value larger than {STATE_MAX_VALUE} bytes"));
        }
        let old = self.map.get(&key).map_or(0, |v| key.len() + v.len());
        let new_total = self.bytes - old + key.len() + value.len();
        if new_total > STATE_MAX_TOTAL {
            return Err(format!("state store would exceed {STATE_MAX_TOTAL} bytes"));
        }
        self.bytes = new_total;
        self.map.insert(key, value);
        Ok(())
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &str) {
        if let Some(v) = self.map.remove(key) {
            self.bytes -= key.len() + v.len();
        }
    }

    /// A copy of every entry.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.clone()
    }
}

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A guest's stdout or stderr, written line by line to the host log.
struct LogStream {
    plugin: Arc<str>,
    stream: &'static str,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            plugin: self.plugin.clone(),
            stream: self.stream,
            line: Vec::new(),
        })
    }
}

/// Buffers bytes into lines and logs each complete line.
struct LineLogger {
    plugin: Arc<str>,
    stream: &'static str,
    line: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        tracing::info!(plugin = %self.plugin, stream = self.stream, "{}", text.trim_end());
        self.line.clear();
    }
}

impl tokio::io::AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        for &b in buf {
            if b == b'\n' || self.line.len() >= MAX_LOG_LINE {
                self.emit();
            }
            if b != b'\n' {
                self.line.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        self.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_limits() {
        let mut kv = KvStore::default();
        kv.set("a".into(), vec![0; 10]).unwrap();
        kv.set("a".into(), vec![0; 20]).unwrap();
        assert_eq!(kv.bytes, 21);
        assert!(kv.set("b".repeat(300), vec![]).is_err());
        assert!(kv.set("b".into(), vec![0; STATE_MAX_VALUE + 1]).is_err());
        for i in 0..15 {
            kv.set(format!("k{i}"), vec![0; STATE_MAX_VALUE]).unwrap();
        }
        assert!(kv.set("last".into(), vec![0; STATE_MAX_VALUE]).is_err());
        kv.delete("a");
        assert_eq!(kv.get("a"), None);
    }

    #[test]
    fn cut_respects_chars() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }
}
