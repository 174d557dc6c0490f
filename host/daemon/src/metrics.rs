//! Prometheus metrics for everything an operator alerts on: session state, flaps,
//! NOTIFICATIONs, route counts and update rates, and each plugin's calls, faults and
//! (for policies) verdicts, read from the plugin at every scrape.

#[cfg(feature = "engine")]
use std::sync::{Arc, Mutex};

#[cfg(feature = "engine")]
use prometheus_client::collector::Collector;
#[cfg(feature = "engine")]
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
#[cfg(feature = "engine")]
use prometheus_client::metrics::counter::ConstCounter;
#[cfg(feature = "engine")]
use prometheus_client::metrics::gauge::ConstGauge;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NeighborLabel {
    neighbor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabel {
    neighbor: String,
    direction: &'static str,
    r#type: &'static str,
}

/// The daemon's metrics registry.
pub struct Metrics {
    registry: Registry,
    session_up: Family<NeighborLabel, Gauge>,
    established: Family<NeighborLabel, Gauge>,
    messages: Family<MessageLabel, Counter>,
    notifications: Family<MessageLabel, Counter>,
    announced: Family<NeighborLabel, Counter>,
    withdrawn: Family<NeighborLabel, Counter>,
    received: Family<NeighborLabel, Gauge>,
    treat_as_withdraw: Family<NeighborLabel, Counter>,
    /// Routes currently held per source, set by the speaker.
    source_routes: Family<SourceLabel, Gauge>,
    verdict_to_wire: Histogram,
    ctl_replies: Family<ResultLabel, Counter>,
    ctl_connection_errors: Counter,
    #[cfg(feature = "engine")]
    plugins: Arc<PluginCollector>,
}

/// The plugins' own counters, encoded at scrape time.
#[cfg(feature = "engine")]
#[derive(Debug, Default)]
struct PluginCollector {
    sources: Mutex<Vec<wasmbgp_runtime::StatusSource>>,
}

#[cfg(feature = "engine")]
impl Collector for PluginCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let statuses: Vec<_> = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.status())
            .collect();
        if statuses.is_empty() {
            return Ok(());
        }
        type Read = fn(&wasmbgp_runtime::PluginStatus) -> u64;
        let counters: [(&str, &str, Read); 4] = [
            (
                "plugin_calls",
                "Calls into the plugin (init, check, evaluate)",
                |s| s.calls,
            ),
            (
                "plugin_restarts",
                "Restarts of the plugin after faults",
                |s| s.restarts,
            ),
            (
                "plugin_denied",
                "Requests the plugin's grants denied",
                |s| s.denied,
            ),
            (
                "plugin_invalid",
                "Route requests refused as malformed",
                |s| s.invalid,
            ),
        ];
        for (name, help, read) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for s in &statuses {
                let labels = [("plugin", s.name.as_str()), ("world", s.world.name())];
                ConstCounter::new(read(s)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut up = encoder.encode_descriptor(
            "plugin_up",
            "1 while the plugin runs (0 in backoff, failed, disabled or stopped)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for s in &statuses {
            let labels = [("plugin", s.name.as_str()), ("world", s.world.name())];
            let running = i64::from(s.state == wasmbgp_runtime::PluginState::Running);
            ConstGauge::new(running).encode(up.encode_family(&labels)?)?;
        }
        let mut verdicts = encoder.encode_descriptor(
            "policy_routes",
            "Routes judged by a policy, by verdict (unjudged: fault or backoff, given on-failure)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for s in statuses
            .iter()
            .filter(|s| s.world == wasmbgp_runtime::World::Policy)
        {
            for (verdict, n) in [
                ("accepted", s.routes_accepted),
                ("rejected", s.routes_rejected),
                ("modified", s.routes_modified),
                ("unjudged", s.routes_unjudged),
            ] {
                let labels = [("plugin", s.name.as_str()), ("verdict", verdict)];
                ConstCounter::new(n).encode(verdicts.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every wasmbgp metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wasmbgp");
        let m = Metrics {
            session_up: Family::default(),
            established: Family::default(),
            messages: Family::default(),
            notifications: Family::default(),
            announced: Family::default(),
            withdrawn: Family::default(),
            received: Family::default(),
            treat_as_withdraw: Family::default(),
            source_routes: Family::default(),
            verdict_to_wire: Histogram::new(exponential_buckets(10e-6, 2.0, 18)),
            ctl_replies: Family::default(),
            ctl_connection_errors: Counter::default(),
            #[cfg(feature = "engine")]
            plugins: Arc::default(),
            registry: Registry::default(),
        };
        registry.register(
            "bgp_session_up",
            "1 while the BGP session is Established",
            m.session_up.clone(),
        );
        registry.register(
            "bgp_session_established",
            "Times the session reached Established (flaps)",
            m.established.clone(),
        );
        registry.register(
            "bgp_messages",
            "BGP messages by direction and type",
            m.messages.clone(),
        );
        registry.register(
            "notifications",
            "NOTIFICATION messages by direction",
            m.notifications.clone(),
        );
        registry.register(
            "routes_announced",
            "Prefixes announced to the neighbor",
            m.announced.clone(),
        );
        registry.register(
            "routes_withdrawn",
            "Prefixes withdrawn from the neighbor",
            m.withdrawn.clone(),
        );
        #[cfg(feature = "engine")]
        registry.register_collector(Box::new(m.plugins.clone()));
        registry.register(
            "prefixes_received",
            "Prefixes in the neighbor's Adj-RIB-In (after import policy)",
            m.received.clone(),
        );
        registry.register(
            "treat_as_withdraw",
            "Malformed UPDATEs handled as withdraw (RFC 7606)",
            m.treat_as_withdraw.clone(),
        );
        registry.register(
            "active_routes",
            "Routes announced by each source",
            m.source_routes.clone(),
        );
        registry.register(
            "ctl_replies",
            "Control commands answered, by result (ok, error)",
            m.ctl_replies.clone(),
        );
        registry.register(
            "ctl_connection_errors",
            "Control connections that ended on an I/O error before every answer was written",
            m.ctl_connection_errors.clone(),
        );
        registry.register(
            "plugin_verdict_to_wire_seconds",
            "From a plugin's health verdict to its UPDATE written to a peer's socket",
            m.verdict_to_wire.clone(),
        );
        Metrics { registry, ..m }
    }

    fn n(neighbor: &str) -> NeighborLabel {
        NeighborLabel {
            neighbor: neighbor.to_string(),
        }
    }

    /// Session state change; `count` is the number of times it reached Established.
    pub fn session_state(&self, neighbor: &str, up: bool, count: u64) {
        self.session_up
            .get_or_create(&Self::n(neighbor))
            .set(up as i64);
        if up {
            self.established
                .get_or_create(&Self::n(neighbor))
                .set(count as i64);
        }
    }

    /// A message was received.
    pub fn message_received(&self, neighbor: &str, kind: &'static str) {
        self.message(neighbor, "received", kind);
    }

    /// A message was sent.
    pub fn message_sent(&self, neighbor: &str, kind: &'static str) {
        self.message(neighbor, "sent", kind);
    }

    fn message(&self, neighbor: &str, direction: &'static str, kind: &'static str) {
        let label = MessageLabel {
            neighbor: neighbor.to_string(),
            direction,
            r#type: kind,
        };
        if kind == "notification" {
            self.notifications.get_or_create(&label).inc();
        }
        self.messages.get_or_create(&label).inc();
    }

    /// UPDATEs were sent.
    pub fn updates_sent(&self, neighbor: &str, messages: u64, announced: u64, withdrawn: u64) {
        let label = MessageLabel {
            neighbor: neighbor.to_string(),
            direction: "sent",
            r#type: "update",
        };
        self.messages.get_or_create(&label).inc_by(messages);
        self.announced
            .get_or_create(&Self::n(neighbor))
            .inc_by(announced);
        self.withdrawn
            .get_or_create(&Self::n(neighbor))
            .inc_by(withdrawn);
    }

    /// The Adj-RIB-In size changed.
    pub fn prefixes_received(&self, neighbor: &str, count: i64) {
        self.received.get_or_create(&Self::n(neighbor)).set(count);
    }

    /// A malformed UPDATE was treated as withdraw.
    pub fn treat_as_withdraw(&self, neighbor: &str) {
        self.treat_as_withdraw
            .get_or_create(&Self::n(neighbor))
            .inc();
    }

    /// Routes a source currently announces.
    pub fn source_routes(&self, source: &str, count: i64) {
        self.source_routes
            .get_or_create(&SourceLabel {
                source: source.to_string(),
            })
            .set(count);
    }

    /// A plugin verdict reached the wire after `d`.
    pub fn verdict_to_wire(&self, d: std::time::Duration) {
        self.verdict_to_wire.observe(d.as_secs_f64());
    }

    /// A control command was answered.
    pub fn ctl_reply(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.ctl_replies
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// A control connection failed.
    pub fn ctl_connection_error(&self) {
        self.ctl_connection_errors.inc();
    }

    /// Serves these plugins' counters (replacing any before).
    #[cfg(feature = "engine")]
    pub fn watch_plugins(&self, sources: Vec<wasmbgp_runtime::StatusSource>) {
        *self
            .plugins
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = sources;
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
