//! `probe`: TCP, DNS and HTTP(S) probes, each target checked against the plugin's grants
//! before anything touches the network; probe time is charged to the host, not the
//! guest's deadline. HTTPS trusts what the grants' [`TlsTrust`](crate::probes::TlsTrust)
//! holds (Mozilla's roots and `grants.http-ca`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::wasmbgp::plugin::probe;
use super::{DEFAULT_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT, STATE_MAX_TOTAL};
use crate::grants::{CheckedGrants, ProbeKind};
use crate::probes::{self, ProbeFailure, RecordKind};
use crate::supervisor::Shared;

/// What `probe` may touch: the grants it checks, the counter of denials, and the time
/// the call in progress spent waiting on probes (not charged to the guest's deadline).
pub(crate) struct ProbeCtx {
    pub plugin: Arc<str>,
    pub shared: Arc<Shared>,
    pub grants: Arc<CheckedGrants>,
    pub host_time: Duration,
}

impl ProbeCtx {
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
        tracing::warn!(plugin = %self.plugin, probe = %kind, target = %addr, "denied: target outside grants.{kind}");
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
        self.host_time += start.elapsed();
        out
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

impl probe::Host for ProbeCtx {
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
        self.http_fetch(probe::HttpRequest {
            url,
            server_name: None,
            timeout_ms,
            max_body,
        })
        .await
    }

    async fn http_fetch(
        &mut self,
        request: probe::HttpRequest,
    ) -> Result<probe::HttpResponse, probe::ProbeError> {
        let mut url = probes::parse_http_url(&request.url)?;
        if let Some(name) = &request.server_name {
            url = url.with_server_name(name)?;
        }
        self.authorize_addr(ProbeKind::Http, url.addr)?;
        let timeout = self.probe_timeout(request.timeout_ms);
        let max_body = usize::try_from(request.max_body)
            .unwrap_or(usize::MAX)
            .min(STATE_MAX_TOTAL);
        let trust = self.grants.tls.clone();
        let r = self
            .timed(probes::http_get(&url, &trust, timeout, max_body))
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
