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
use wasmbgp_bgp::packet::prefix::SAFI_UNICAST;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NeighborLabel {
    neighbor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabel {
    neighbor: String,
    local_as: String,
    peer_as: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabel {
    neighbor: String,
    family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    neighbor: String,
    family: &'static str,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabel {
    neighbor: String,
    direction: &'static str,
    code: String,
    subcode: String,
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
    session_up: Family<SessionLabel, Gauge>,
    established: Family<NeighborLabel, Counter>,
    messages: Family<MessageLabel, Counter>,
    notifications: Family<NotificationLabel, Counter>,
    announced: Family<FamilyLabel, Counter>,
    withdrawn: Family<FamilyLabel, Counter>,
    routes_received: Family<FamilyLabel, Counter>,
    withdrawals_received: Family<FamilyLabel, Counter>,
    update_processing: Histogram,
    received: Family<NeighborLabel, Gauge>,
    treat_as_withdraw: Family<NeighborLabel, Counter>,
    /// Routes currently held per source, set by the speaker.
    source_routes: Family<SourceLabel, Gauge>,
    verdict_to_wire: Histogram,
    ctl_replies: Family<ResultLabel, Counter>,
    ctl_connection_errors: Counter,
    unknown_peer_connections: Counter,
    prefix_limit_events: Family<LimitLabel, Counter>,
    max_prefixes: Family<FamilyLabel, Gauge>,
    routes_refused: Family<FamilyLabel, Counter>,
    config_reloads: Family<ResultLabel, Counter>,
    config_reload_seconds: Histogram,
    config_last_reload_ok: Gauge,
    config_last_reload_success: Gauge<f64, std::sync::atomic::AtomicU64>,
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
        let counters: [(&str, &str, Read); 7] = [
            (
                "plugin_calls",
                "Calls into the plugin (init, check, evaluate, on-events)",
                |s| s.calls,
            ),
            (
                "plugin_restarts",
                "Restarts of the plugin after faults",
                |s| s.restarts,
            ),
            (
                "plugin_denied",
                "Requests the plugin's grants denied (probes, routes, HTTP, TCP, files)",
                |s| s.denied,
            ),
            (
                "plugin_invalid",
                "Route requests refused as malformed",
                |s| s.invalid,
            ),
            (
                "plugin_deadline_hits",
                "Calls interrupted at the plugin's deadline",
                |s| s.faults[1],
            ),
            (
                "plugin_events_delivered",
                "Exporter: events handed to the plugin (a route counts one)",
                |s| s.events_delivered,
            ),
            (
                "plugin_events_dropped",
                "Exporter: events dropped because the plugin fell behind",
                |s| s.events_dropped,
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
        let mut faults = encoder.encode_descriptor(
            "plugin_faults",
            "Faults that ended an instance, by kind (trap, deadline, memory, hung, host)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for s in &statuses {
            for (kind, n) in wasmbgp_runtime::FaultKind::ALL.iter().zip(s.faults) {
                let labels = [
                    ("plugin", s.name.as_str()),
                    ("world", s.world.name()),
                    ("kind", kind.name()),
                ];
                ConstCounter::new(n).encode(faults.encode_family(&labels)?)?;
            }
        }
        let mut reloads = encoder.encode_descriptor(
            "plugin_reloads",
            "Reloads, by result (ok: took over; refused: the running instance kept running)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for s in &statuses {
            for (result, n) in [("ok", s.reloads), ("refused", s.reloads_refused)] {
                let labels = [
                    ("plugin", s.name.as_str()),
                    ("world", s.world.name()),
                    ("result", result),
                ];
                ConstCounter::new(n).encode(reloads.encode_family(&labels)?)?;
            }
        }
        let mut durations = encoder.encode_descriptor(
            "plugin_call_duration_seconds",
            "Duration of calls into the plugin",
            None,
            prometheus_client::metrics::MetricType::Histogram,
        )?;
        for s in &statuses {
            let labels = [("plugin", s.name.as_str()), ("world", s.world.name())];
            let (counts, sum) = s.call_seconds;
            let buckets: Vec<(f64, u64)> = wasmbgp_runtime::CALL_BUCKETS
                .iter()
                .copied()
                .chain([f64::MAX])
                .zip(counts)
                .collect();
            ConstHistogram {
                sum,
                count: counts.iter().sum(),
                buckets,
            }
            .encode(durations.encode_family(&labels)?)?;
        }
        let mut series = encoder.encode_descriptor(
            "plugin_series",
            "Metric series the plugin created (capped by grants.max-series)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for s in &statuses {
            let labels = [("plugin", s.name.as_str()), ("world", s.world.name())];
            ConstGauge::new(s.metric_series as i64).encode(series.encode_family(&labels)?)?;
        }
        let mut refused = encoder.encode_descriptor(
            "plugin_series_refused",
            "Metric updates refused because they would exceed grants.max-series",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for s in &statuses {
            let labels = [("plugin", s.name.as_str()), ("world", s.world.name())];
            ConstCounter::new(s.metric_series_refused).encode(refused.encode_family(&labels)?)?;
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
        drop(verdicts);
        self.encode_plugin_metrics(&mut encoder)
    }
}

#[cfg(feature = "engine")]
impl PluginCollector {
    /// The metrics plugins registered, as `wasmbgp_plugin_<name>{plugin="...", ...}`.
    /// Plugins that register the same name share the family (with the same kind and
    /// labels; a clash keeps the first plugin's).
    fn encode_plugin_metrics(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::collections::BTreeMap;
        use wasmbgp_runtime::{MetricValue, PluginMetric, PluginMetricKind};
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut families: BTreeMap<String, Vec<(String, PluginMetric)>> = BTreeMap::new();
        for source in &sources {
            let plugin = source.status().name;
            for metric in source.metrics() {
                families
                    .entry(metric.name.clone())
                    .or_default()
                    .push((plugin.clone(), metric));
            }
        }
        for (name, members) in families {
            let first = &members[0].1;
            let (kind, shape) = (
                first.kind,
                (first.label_names.clone(), first.buckets.clone()),
            );
            let metric_type = match kind {
                PluginMetricKind::Counter => prometheus_client::metrics::MetricType::Counter,
                PluginMetricKind::Gauge => prometheus_client::metrics::MetricType::Gauge,
                PluginMetricKind::Histogram => prometheus_client::metrics::MetricType::Histogram,
            };
            // The encoder adds `_total` to counters.
            let base = format!("plugin_{}", name.strip_suffix("_total").unwrap_or(&name));
            let mut family = encoder.encode_descriptor(&base, &first.help, None, metric_type)?;
            for (plugin, metric) in &members {
                if metric.kind != kind
                    || (metric.label_names.clone(), metric.buckets.clone()) != shape
                {
                    continue;
                }
                for (values, value) in &metric.series {
                    let labels: Vec<(String, String)> =
                        std::iter::once(("plugin".to_string(), plugin.clone()))
                            .chain(
                                metric
                                    .label_names
                                    .iter()
                                    .cloned()
                                    .zip(values.iter().cloned()),
                            )
                            .collect();
                    let at = family.encode_family(&labels)?;
                    match value {
                        MetricValue::Number(n) if kind == PluginMetricKind::Counter => {
                            ConstCounter::new(*n).encode(at)?
                        }
                        MetricValue::Number(n) => ConstGauge::new(*n).encode(at)?,
                        MetricValue::Histogram { counts, sum, count } => ConstHistogram {
                            sum: *sum,
                            count: *count,
                            buckets: metric
                                .buckets
                                .iter()
                                .copied()
                                .chain([f64::MAX])
                                .zip(counts.iter().copied())
                                .collect(),
                        }
                        .encode(at)?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// A histogram read at scrape time: per-bucket (not cumulative) counts, the last for
/// +Inf (`f64::MAX`).
#[cfg(feature = "engine")]
#[derive(Debug)]
struct ConstHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

#[cfg(feature = "engine")]
impl EncodeMetric for ConstHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
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
            routes_received: Family::default(),
            withdrawals_received: Family::default(),
            update_processing: Histogram::new(exponential_buckets(10e-6, 2.0, 18)),
            received: Family::default(),
            treat_as_withdraw: Family::default(),
            source_routes: Family::default(),
            verdict_to_wire: Histogram::new(exponential_buckets(10e-6, 2.0, 18)),
            ctl_replies: Family::default(),
            ctl_connection_errors: Counter::default(),
            unknown_peer_connections: Counter::default(),
            prefix_limit_events: Family::default(),
            max_prefixes: Family::default(),
            routes_refused: Family::default(),
            config_reloads: Family::default(),
            config_reload_seconds: Histogram::new(exponential_buckets(1e-3, 2.0, 14)),
            config_last_reload_ok: Gauge::default(),
            config_last_reload_success: Gauge::default(),
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
            "NOTIFICATION messages by direction, code and subcode",
            m.notifications.clone(),
        );
        registry.register(
            "routes_announced",
            "Prefixes announced to the neighbor, by family",
            m.announced.clone(),
        );
        registry.register(
            "routes_withdrawn",
            "Prefixes withdrawn from the neighbor, by family",
            m.withdrawn.clone(),
        );
        registry.register(
            "routes_received",
            "Prefixes announced by the neighbor (before import policy), by family",
            m.routes_received.clone(),
        );
        registry.register(
            "withdrawals_received",
            "Prefixes withdrawn by the neighbor, by family",
            m.withdrawals_received.clone(),
        );
        registry.register(
            "update_processing_seconds",
            "Time to apply a batch of received UPDATEs to the Adj-RIB-In, import policies included",
            m.update_processing.clone(),
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
            "bgp_prefix_limit_events",
            "max-prefixes crossings by neighbor and family: warning (the warning percentage reached), cease (session ended), warn (exceeded, only logged)",
            m.prefix_limit_events.clone(),
        );
        registry.register(
            "bgp_max_prefixes",
            "The max-prefixes limit of a neighbor and family",
            m.max_prefixes.clone(),
        );
        registry.register(
            "bgp_routes_refused_max_advertise",
            "Routes not announced to a neighbor because its max-advertise cap for the family was reached",
            m.routes_refused.clone(),
        );
        registry.register(
            "config_reloads",
            "Config reloads (SIGHUP, ctl reload), by result: ok, or refused (the running config kept)",
            m.config_reloads.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 if the last config reload (or the start) applied the file, 0 if it was refused: what runs is not what the file says",
            m.config_last_reload_ok.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the config file was last applied (start or reload), Unix time",
            m.config_last_reload_success.clone(),
        );
        registry.register(
            "config_reload_duration_seconds",
            "Time to apply a config reload's difference, once checked",
            m.config_reload_seconds.clone(),
        );
        registry.register(
            "bgp_unknown_peer_connections",
            "Connections to a BGP listener from addresses that are not neighbors, refused (the log says so once per 10 s)",
            m.unknown_peer_connections.clone(),
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

    /// The session reached Established (`up`) or left it.
    pub fn session_state(&self, neighbor: &str, local_as: u32, peer_as: u32, up: bool) {
        let label = SessionLabel {
            neighbor: neighbor.to_string(),
            local_as: local_as.to_string(),
            peer_as: peer_as.to_string(),
        };
        self.session_up.get_or_create(&label).set(up as i64);
        if up {
            self.established.get_or_create(&Self::n(neighbor)).inc();
        }
    }

    /// A NOTIFICATION was sent or received.
    pub fn notification(&self, neighbor: &str, sent: bool, code: u8, subcode: u8) {
        self.notifications
            .get_or_create(&NotificationLabel {
                neighbor: neighbor.to_string(),
                direction: if sent { "sent" } else { "received" },
                code: code.to_string(),
                subcode: subcode.to_string(),
            })
            .inc();
    }

    /// Routes received from a neighbor: announced and withdrawn IPv4 and IPv6 prefixes.
    pub fn routes_received(&self, neighbor: &str, announced: [u64; 4], withdrawn: [u64; 4]) {
        for (i, family) in wasmbgp_bgp::Family::CARRIED.into_iter().enumerate() {
            if announced[i] == 0 && withdrawn[i] == 0 && family.safi != SAFI_UNICAST {
                continue; // FlowSpec series appear once a rule does
            }
            let label = FamilyLabel {
                neighbor: neighbor.to_string(),
                family: family_name(family),
            };
            self.routes_received
                .get_or_create(&label)
                .inc_by(announced[i]);
            self.withdrawals_received
                .get_or_create(&label)
                .inc_by(withdrawn[i]);
        }
    }

    /// A batch of received UPDATEs was applied in `d`.
    pub fn update_processing(&self, d: std::time::Duration) {
        self.update_processing.observe(d.as_secs_f64());
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
        self.messages.get_or_create(&label).inc();
    }

    /// UPDATEs were sent.
    pub fn updates_sent(&self, neighbor: &str, stats: &wasmbgp_bgp::rib::FlushStats) {
        let label = MessageLabel {
            neighbor: neighbor.to_string(),
            direction: "sent",
            r#type: "update",
        };
        self.messages
            .get_or_create(&label)
            .inc_by(stats.messages as u64);
        for (i, family) in wasmbgp_bgp::Family::CARRIED.into_iter().enumerate() {
            let (announced, withdrawn) =
                (stats.announced_by_family[i], stats.withdrawn_by_family[i]);
            if announced == 0 && withdrawn == 0 && family.safi != SAFI_UNICAST {
                continue; // FlowSpec series appear once a rule does
            }
            let label = FamilyLabel {
                neighbor: neighbor.to_string(),
                family: family_name(family),
            };
            self.announced
                .get_or_create(&label)
                .inc_by(announced as u64);
            self.withdrawn
                .get_or_create(&label)
                .inc_by(withdrawn as u64);
        }
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

    /// A max-prefixes crossing (`event`: warning, cease or warn).
    pub fn prefix_limit(&self, neighbor: &str, family: wasmbgp_bgp::Family, event: &'static str) {
        self.prefix_limit_events
            .get_or_create(&LimitLabel {
                neighbor: neighbor.to_string(),
                family: family_name(family),
                event,
            })
            .inc();
    }

    /// A neighbor's max-prefixes limits (a family without one is not shown).
    pub fn max_prefixes(&self, neighbor: &str, limits: &[(wasmbgp_bgp::Family, Option<u32>)]) {
        for (family, limit) in limits {
            let label = FamilyLabel {
                neighbor: neighbor.to_string(),
                family: family_name(*family),
            };
            match limit {
                Some(n) => {
                    self.max_prefixes.get_or_create(&label).set(i64::from(*n));
                }
                None => {
                    self.max_prefixes.remove(&label);
                }
            }
        }
    }

    /// A route not announced to `neighbor`: its max-advertise cap is reached.
    pub fn route_refused(&self, neighbor: &str, family: wasmbgp_bgp::Family) {
        self.routes_refused
            .get_or_create(&FamilyLabel {
                neighbor: neighbor.to_string(),
                family: family_name(family),
            })
            .inc();
    }

    /// A config reload was applied (`ok`) or refused; `applied`: how long applying took.
    pub fn config_reload(&self, ok: bool, applied: Option<std::time::Duration>) {
        let result = if ok { "ok" } else { "refused" };
        self.config_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
        if let Some(d) = applied {
            self.config_reload_seconds.observe(d.as_secs_f64());
        }
        self.config_last_reload_ok.set(i64::from(ok));
        if ok {
            self.config_applied();
        }
    }

    /// The config file was applied (at start, or by a reload).
    pub fn config_applied(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.config_last_reload_ok.set(1);
        self.config_last_reload_success.set(now.as_secs_f64());
    }

    /// A BGP listener refused a connection from an address that is no neighbor.
    pub fn unknown_peer_connection(&self) {
        self.unknown_peer_connections.inc();
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

/// A unicast family's label value.
fn family_name(family: wasmbgp_bgp::Family) -> &'static str {
    match family {
        wasmbgp_bgp::Family::IPV6_UNICAST => "ipv6-unicast",
        wasmbgp_bgp::Family::IPV4_UNICAST => "ipv4-unicast",
        wasmbgp_bgp::Family::IPV4_FLOWSPEC => "ipv4-flowspec",
        wasmbgp_bgp::Family::IPV6_FLOWSPEC => "ipv6-flowspec",
        _ => "other",
    }
}
