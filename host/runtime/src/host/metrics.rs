//! `metrics`: counters, gauges and histograms a plugin registers, kept by the host
//! (they outlive the plugin's instances) and served on `/metrics` as
//! `wasmbgp_plugin_<name>{plugin="..."}`. The series a plugin may create are capped
//! by `grants.max-series`, so that no plugin can blow up the scrape's cardinality.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::bindings::wasmbgp::plugin::metrics::{self, MetricError, MetricKind};
use crate::supervisor::Shared;

/// The host's own per-plugin metric names (under `wasmbgp_plugin_`): a plugin may not
/// register these.
pub const RESERVED: &[&str] = &[
    "up",
    "calls_total",
    "call_duration_seconds",
    "faults_total",
    "restarts_total",
    "reloads_total",
    "deadline_hits_total",
    "denied_total",
    "invalid_total",
    "events_dropped_total",
    "events_delivered_total",
    "series",
    "series_refused_total",
    "verdict_to_wire_seconds",
];
/// Metric families one plugin may register.
pub const MAX_FAMILIES: usize = 64;
/// Labels per metric.
pub const MAX_LABELS: usize = 8;
/// Longest name, label name or label value.
pub const MAX_TEXT: usize = 256;
/// Buckets per histogram.
pub const MAX_BUCKETS: usize = 64;

/// What a metric's series holds.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A counter or gauge.
    Number(f64),
    /// A histogram: per-bucket counts (not cumulative), the sum and the count.
    Histogram {
        /// Observations per bucket, the last one for +Inf.
        counts: Vec<u64>,
        /// Sum of the observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
}

/// A plugin's metric, as read at a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginMetric {
    /// The plugin's name for it (counters end in `_total`).
    pub name: String,
    /// Its help text.
    pub help: String,
    /// Counter, gauge or histogram.
    pub kind: PluginMetricKind,
    /// Its label names, in order.
    pub label_names: Vec<String>,
    /// Histogram bucket upper bounds (ascending; +Inf implied).
    pub buckets: Vec<f64>,
    /// Each series: label values and value, sorted by label values.
    pub series: Vec<(Vec<String>, MetricValue)>,
}

/// The kind of a plugin metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginMetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: PluginMetricKind,
    label_names: Vec<String>,
    buckets: Vec<f64>,
    series: HashMap<Vec<String>, MetricValue>,
}

/// The metrics of one plugin (inside its [`Shared`], so they survive restarts).
#[derive(Debug, Default)]
pub(crate) struct MetricStore {
    families: BTreeMap<String, Family>,
    series: usize,
    refused: u64,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TEXT
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl MetricStore {
    /// Series created so far, and updates refused by the series cap.
    pub fn counts(&self) -> (usize, u64) {
        (self.series, self.refused)
    }

    /// Every metric, for a scrape.
    pub fn read(&self) -> Vec<PluginMetric> {
        self.families
            .iter()
            .map(|(name, f)| {
                let mut series: Vec<_> = f
                    .series
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.sort_by(|a, b| a.0.cmp(&b.0));
                PluginMetric {
                    name: name.clone(),
                    help: f.help.clone(),
                    kind: f.kind,
                    label_names: f.label_names.clone(),
                    buckets: f.buckets.clone(),
                    series,
                }
            })
            .collect()
    }

    fn register(
        &mut self,
        name: String,
        help: String,
        kind: PluginMetricKind,
        label_names: Vec<String>,
        buckets: Vec<f64>,
    ) -> Result<(), MetricError> {
        let invalid = |why: String| Err(MetricError::Invalid(why));
        if !valid_name(&name) {
            return invalid(format!("metric name {name:?} is not [a-z_][a-z0-9_]*"));
        }
        if RESERVED.contains(&name.as_str()) {
            return invalid(format!("metric name {name:?} is one of the host's own"));
        }
        if (kind == PluginMetricKind::Counter) != name.ends_with("_total") {
            return invalid(format!(
                "metric {name:?}: counter names, and only counter names, end in _total"
            ));
        }
        if label_names.len() > MAX_LABELS {
            return invalid(format!("metric {name:?}: more than {MAX_LABELS} labels"));
        }
        for (i, label) in label_names.iter().enumerate() {
            if !valid_name(label) || label.starts_with("__") || label == "plugin" || label == "le" {
                return invalid(format!(
                    "metric {name:?}: label name {label:?} is not allowed"
                ));
            }
            if label_names[..i].contains(label) {
                return invalid(format!("metric {name:?}: label {label:?} given twice"));
            }
        }
        let buckets = match kind {
            PluginMetricKind::Histogram => {
                if buckets.is_empty() || buckets.len() > MAX_BUCKETS {
                    return invalid(format!(
                        "histogram {name:?} needs 1 to {MAX_BUCKETS} buckets"
                    ));
                }
                if buckets.iter().any(|b| !b.is_finite())
                    || buckets.windows(2).any(|w| w[0] >= w[1])
                {
                    return invalid(format!(
                        "histogram {name:?}: buckets must be finite and ascending"
                    ));
                }
                buckets
            }
            _ if !buckets.is_empty() => {
                return invalid(format!("metric {name:?}: buckets are for histograms"));
            }
            _ => buckets,
        };
        if let Some(existing) = self.families.get(&name) {
            // Registering again after a restart or reload: fine if nothing changed.
            if existing.kind == kind
                && existing.label_names == label_names
                && existing.buckets == buckets
            {
                return Ok(());
            }
            return invalid(format!(
                "metric {name:?} is already registered with another kind, labels or buckets"
            ));
        }
        if self.families.len() >= MAX_FAMILIES {
            return invalid(format!(
                "a plugin may register at most {MAX_FAMILIES} metrics"
            ));
        }
        self.families.insert(
            name,
            Family {
                help: help.chars().take(1024).collect(),
                kind,
                label_names,
                buckets,
                series: HashMap::new(),
            },
        );
        Ok(())
    }

    /// The series of `name` with `values`, created if the cap allows.
    fn series(
        &mut self,
        name: &str,
        values: Vec<String>,
        max_series: u32,
    ) -> Result<(&mut MetricValue, PluginMetricKind), MetricError> {
        let Some(family) = self.families.get_mut(name) else {
            return Err(MetricError::Invalid(format!(
                "metric {name:?} is not registered"
            )));
        };
        if values.len() != family.label_names.len() {
            return Err(MetricError::Invalid(format!(
                "metric {name:?} has {} labels, {} values given",
                family.label_names.len(),
                values.len()
            )));
        }
        if let Some(v) = values.iter().find(|v| v.len() > MAX_TEXT) {
            return Err(MetricError::Invalid(format!(
                "metric {name:?}: a label value is longer than {MAX_TEXT} bytes ({} bytes)",
                v.len()
            )));
        }
        let kind = family.kind;
        if !family.series.contains_key(&values) {
            if self.series >= max_series as usize {
                self.refused += 1;
                return Err(MetricError::SeriesLimit(format!(
                    "metric {name:?}: the plugin has {} series, its grants.max-series",
                    self.series
                )));
            }
            self.series += 1;
            let zero = match kind {
                PluginMetricKind::Histogram => MetricValue::Histogram {
                    counts: vec![0; family.buckets.len() + 1],
                    sum: 0.0,
                    count: 0,
                },
                _ => MetricValue::Number(0.0),
            };
            family.series.insert(values.clone(), zero);
        }
        let value = family.series.get_mut(&values).expect("inserted above");
        Ok((value, kind))
    }

    fn remove(&mut self, name: &str, values: &[String]) {
        if let Some(family) = self.families.get_mut(name)
            && family.series.remove(values).is_some()
        {
            self.series -= 1;
        }
    }

    fn bucket_of(&self, name: &str, value: f64) -> usize {
        self.families.get(name).map_or(0, |f| {
            f.buckets
                .iter()
                .position(|&b| value <= b)
                .unwrap_or(f.buckets.len())
        })
    }
}

/// What `metrics` may touch: the plugin's metric store and its series cap.
pub(crate) struct MetricsCtx {
    pub plugin: Arc<str>,
    pub shared: Arc<Shared>,
    pub max_series: u32,
}

impl MetricsCtx {
    fn refused(&self, e: MetricError) -> MetricError {
        if let MetricError::SeriesLimit(why) = &e {
            tracing::warn!(plugin = %self.plugin, "metric series refused: {why}");
        }
        e
    }
}

fn number(value: f64) -> Result<f64, MetricError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(MetricError::Invalid(format!(
            "{value} is not a finite number"
        )))
    }
}

impl metrics::Host for MetricsCtx {
    fn register(
        &mut self,
        name: String,
        help: String,
        kind: MetricKind,
        label_names: Vec<String>,
        buckets: Vec<f64>,
    ) -> Result<(), MetricError> {
        let kind = match kind {
            MetricKind::Counter => PluginMetricKind::Counter,
            MetricKind::Gauge => PluginMetricKind::Gauge,
            MetricKind::Histogram => PluginMetricKind::Histogram,
        };
        self.shared
            .metrics()
            .register(name, help, kind, label_names, buckets)
    }

    fn add(
        &mut self,
        name: String,
        label_values: Vec<String>,
        value: f64,
    ) -> Result<(), MetricError> {
        let value = number(value)?;
        let mut store = self.shared.metrics();
        let (series, kind) = store
            .series(&name, label_values, self.max_series)
            .map_err(|e| self.refused(e))?;
        match (kind, series) {
            (PluginMetricKind::Counter, _) if value < 0.0 => Err(MetricError::Invalid(format!(
                "counter {name:?} cannot go down ({value})"
            ))),
            (PluginMetricKind::Histogram, _) => Err(MetricError::Invalid(format!(
                "{name:?} is a histogram: use observe"
            ))),
            (_, MetricValue::Number(n)) => {
                *n += value;
                Ok(())
            }
            (_, MetricValue::Histogram { .. }) => unreachable!("numbers for counters and gauges"),
        }
    }

    fn set(
        &mut self,
        name: String,
        label_values: Vec<String>,
        value: f64,
    ) -> Result<(), MetricError> {
        let value = number(value)?;
        let mut store = self.shared.metrics();
        let (series, kind) = store
            .series(&name, label_values, self.max_series)
            .map_err(|e| self.refused(e))?;
        match (kind, series) {
            (PluginMetricKind::Gauge, MetricValue::Number(n)) => {
                *n = value;
                Ok(())
            }
            _ => Err(MetricError::Invalid(format!("{name:?} is not a gauge"))),
        }
    }

    fn observe(
        &mut self,
        name: String,
        label_values: Vec<String>,
        value: f64,
    ) -> Result<(), MetricError> {
        let value = number(value)?;
        let mut store = self.shared.metrics();
        let bucket = store.bucket_of(&name, value);
        let (series, _) = store
            .series(&name, label_values, self.max_series)
            .map_err(|e| self.refused(e))?;
        match series {
            MetricValue::Histogram { counts, sum, count } => {
                counts[bucket] += 1;
                *sum += value;
                *count += 1;
                Ok(())
            }
            MetricValue::Number(_) => {
                Err(MetricError::Invalid(format!("{name:?} is not a histogram")))
            }
        }
    }

    fn remove(&mut self, name: String, label_values: Vec<String>) {
        self.shared.metrics().remove(&name, &label_values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        let mut s = MetricStore::default();
        let c = PluginMetricKind::Counter;
        let g = PluginMetricKind::Gauge;
        assert!(
            s.register(
                "routes_total".into(),
                "".into(),
                c,
                vec!["neighbor".into()],
                vec![]
            )
            .is_ok()
        );
        // Again, same shape: fine (a restart registers again).
        assert!(
            s.register(
                "routes_total".into(),
                "".into(),
                c,
                vec!["neighbor".into()],
                vec![]
            )
            .is_ok()
        );
        assert!(
            s.register("routes_total".into(), "".into(), c, vec![], vec![])
                .is_err()
        );
        assert!(
            s.register("routes".into(), "".into(), c, vec![], vec![])
                .is_err()
        );
        assert!(
            s.register("active_total".into(), "".into(), g, vec![], vec![])
                .is_err()
        );
        assert!(
            s.register("calls_total".into(), "".into(), c, vec![], vec![])
                .is_err()
        );
        assert!(
            s.register("Bad".into(), "".into(), g, vec![], vec![])
                .is_err()
        );
        assert!(
            s.register("g".into(), "".into(), g, vec!["plugin".into()], vec![])
                .is_err()
        );
        assert!(
            s.register(
                "h".into(),
                "".into(),
                PluginMetricKind::Histogram,
                vec![],
                vec![2.0, 1.0]
            )
            .is_err()
        );
    }

    #[test]
    fn series_are_capped() {
        let mut s = MetricStore::default();
        s.register(
            "a".into(),
            "".into(),
            PluginMetricKind::Gauge,
            vec!["n".into()],
            vec![],
        )
        .unwrap();
        for i in 0..3 {
            s.series("a", vec![i.to_string()], 3).unwrap();
        }
        assert!(matches!(
            s.series("a", vec!["x".into()], 3),
            Err(MetricError::SeriesLimit(_))
        ));
        // Existing series still update.
        assert!(s.series("a", vec!["1".into()], 3).is_ok());
        s.remove("a", &["1".into()]);
        assert!(s.series("a", vec!["x".into()], 3).is_ok());
        assert_eq!(s.counts(), (3, 1));
    }
}
