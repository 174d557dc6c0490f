//! Metrics a plugin registers and updates, from any world: served on the
//! host's `/metrics` as `wasmbgp_plugin_` + the name, with a `plugin` label
//! added. Values live in the host and survive restarts and reloads.
//!
//! ```ignore
//! use wasmbgp_sdk::metrics::{Counter, Gauge};
//!
//! let received = Counter::register("routes_received_total", "Routes received.", &["neighbor"])?;
//! let active = Gauge::register("routes_active", "Active routes.", &["neighbor"])?;
//! received.add(&["192.0.2.1"], 10.0)?;
//! active.set(&["192.0.2.1"], 7.0)?;
//! // On a hot path, keep a series: its label values are converted once.
//! let series = received.series(&["192.0.2.1"]);
//! series.add(1.0)?;
//! ```
//!
//! Names and label names are checked here as the host checks them
//! (`[a-z_][a-z0-9_]*`, counters end in `_total`, no `plugin` label), so a
//! typo fails at `register`, in `init`, with a clear message. Past the
//! plugin's `grants.max-series`, an update that would create a series fails
//! with [`MetricError::SeriesLimit`].
//!
//! Outside a component (unit tests on the host), the calls go to a
//! thread-local stand-in of the host that [`crate::testing`] reads.

pub use crate::bindings::wasmbgp::plugin::metrics::{MetricError, MetricKind};

/// The raw WIT functions (no local checks).
#[cfg(target_arch = "wasm32")]
pub use crate::bindings::wasmbgp::plugin::metrics as raw;

/// A one-line description of a metric error, for logs and `init` errors
/// (the error's `Display` is the generated one, which prints the variant).
pub fn describe(error: &MetricError) -> String {
    match error {
        MetricError::Invalid(why) => format!("invalid metric call: {why}"),
        MetricError::SeriesLimit(why) => format!("metric series limit (grants.max-series): {why}"),
    }
}

impl From<MetricError> for crate::Error {
    fn from(error: MetricError) -> Self {
        crate::Error::new(describe(&error))
    }
}

impl MetricKind {
    /// The kind's name: `counter`, `gauge` or `histogram`.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// True for `[a-z_][a-z0-9_]*`.
fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// Checks a metric's shape as the host does: `Ok` or the reason.
pub fn check_shape(
    name: &str,
    kind: MetricKind,
    label_names: &[&str],
    buckets: &[f64],
) -> Result<(), MetricError> {
    let invalid = |why: String| Err(MetricError::Invalid(why));
    if !is_name(name) {
        return invalid(format!("metric name {name:?}: expected [a-z_][a-z0-9_]*"));
    }
    if kind == MetricKind::Counter && !name.ends_with("_total") {
        return invalid(format!(
            "counter {name:?}: a counter's name must end in _total"
        ));
    }
    for (i, label) in label_names.iter().enumerate() {
        if !is_name(label) {
            return invalid(format!(
                "metric {name:?}: label name {label:?}: expected [a-z_][a-z0-9_]*"
            ));
        }
        if *label == "plugin" {
            return invalid(format!(
                "metric {name:?}: the label `plugin` is the host's (it names the plugin)"
            ));
        }
        if label_names[..i].contains(label) {
            return invalid(format!("metric {name:?}: label {label:?} twice"));
        }
    }
    if kind == MetricKind::Histogram {
        if buckets.is_empty() {
            return invalid(format!("histogram {name:?}: no buckets"));
        }
        if buckets.iter().any(|b| b.is_nan()) || buckets.windows(2).any(|w| w[0] >= w[1]) {
            return invalid(format!(
                "histogram {name:?}: buckets must be ascending numbers"
            ));
        }
    } else if !buckets.is_empty() {
        return invalid(format!(
            "{} {name:?}: buckets are for histograms",
            kind.name()
        ));
    }
    Ok(())
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// One registered metric of any kind: the shared part of [`Counter`],
/// [`Gauge`] and [`Histogram`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Metric {
    name: String,
    kind: MetricKind,
    labels: usize,
}

impl Metric {
    fn register(
        name: &str,
        help: &str,
        kind: MetricKind,
        label_names: &[&str],
        buckets: &[f64],
    ) -> Result<Metric, MetricError> {
        check_shape(name, kind, label_names, buckets)?;
        host::register(name, help, kind, &owned(label_names), buckets)?;
        Ok(Metric {
            name: name.to_string(),
            kind,
            labels: label_names.len(),
        })
    }

    fn series(&self, label_values: &[&str]) -> Series {
        Series {
            name: self.name.clone(),
            kind: self.kind,
            labels: owned(label_values),
        }
    }
}

/// A counter: only goes up; its name ends in `_total`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter(Metric);

impl Counter {
    /// Declares the counter `name` (ending in `_total`) with `label_names`.
    /// Declaring it again with the same shape (after a restart) is no error.
    pub fn register(name: &str, help: &str, label_names: &[&str]) -> Result<Self, MetricError> {
        Metric::register(name, help, MetricKind::Counter, label_names, &[]).map(Counter)
    }

    /// The metric's name (without the host's `wasmbgp_plugin_` prefix).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Adds `value` (≥ 0) to the series `label_values` (in the order of the
    /// label names).
    pub fn add(&self, label_values: &[&str], value: f64) -> Result<(), MetricError> {
        host::add(&self.0.name, &owned(label_values), value)
    }

    /// Adds 1.
    pub fn inc(&self, label_values: &[&str]) -> Result<(), MetricError> {
        self.add(label_values, 1.0)
    }

    /// Removes the series `label_values` (no error if there is none).
    pub fn remove(&self, label_values: &[&str]) {
        host::remove(&self.0.name, &owned(label_values))
    }

    /// A handle on one series, its label values converted once.
    pub fn series(&self, label_values: &[&str]) -> Series {
        self.0.series(label_values)
    }
}

/// A gauge: goes up and down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gauge(Metric);

impl Gauge {
    /// Declares the gauge `name` with `label_names`.
    pub fn register(name: &str, help: &str, label_names: &[&str]) -> Result<Self, MetricError> {
        Metric::register(name, help, MetricKind::Gauge, label_names, &[]).map(Gauge)
    }

    /// The metric's name (without the host's `wasmbgp_plugin_` prefix).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Sets the series `label_values` to `value`.
    pub fn set(&self, label_values: &[&str], value: f64) -> Result<(), MetricError> {
        host::set(&self.0.name, &owned(label_values), value)
    }

    /// Adds `value` (may be negative) to the series `label_values`.
    pub fn add(&self, label_values: &[&str], value: f64) -> Result<(), MetricError> {
        host::add(&self.0.name, &owned(label_values), value)
    }

    /// Removes the series `label_values` (no error if there is none).
    pub fn remove(&self, label_values: &[&str]) {
        host::remove(&self.0.name, &owned(label_values))
    }

    /// A handle on one series, its label values converted once.
    pub fn series(&self, label_values: &[&str]) -> Series {
        self.0.series(label_values)
    }
}

/// A histogram: observations counted into buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram(Metric);

impl Histogram {
    /// Declares the histogram `name` with `label_names` and `buckets`
    /// (upper bounds, ascending; the host adds `+Inf`).
    pub fn register(
        name: &str,
        help: &str,
        label_names: &[&str],
        buckets: &[f64],
    ) -> Result<Self, MetricError> {
        Metric::register(name, help, MetricKind::Histogram, label_names, buckets).map(Histogram)
    }

    /// The metric's name (without the host's `wasmbgp_plugin_` prefix).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Records one observation in the series `label_values`.
    pub fn observe(&self, label_values: &[&str], value: f64) -> Result<(), MetricError> {
        host::observe(&self.0.name, &owned(label_values), value)
    }

    /// Removes the series `label_values` (no error if there is none).
    pub fn remove(&self, label_values: &[&str]) {
        host::remove(&self.0.name, &owned(label_values))
    }

    /// A handle on one series, its label values converted once.
    pub fn series(&self, label_values: &[&str]) -> Series {
        self.0.series(label_values)
    }
}

/// One series of a metric (the metric and its label values), for hot
/// paths: an update passes the label values as they are, with no
/// conversion or allocation in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    name: String,
    kind: MetricKind,
    labels: Vec<String>,
}

impl Series {
    /// The metric's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The label values.
    pub fn label_values(&self) -> &[String] {
        &self.labels
    }

    /// Adds `value` (counter or gauge).
    pub fn add(&self, value: f64) -> Result<(), MetricError> {
        host::add(&self.name, &self.labels, value)
    }

    /// Sets the value (gauge).
    pub fn set(&self, value: f64) -> Result<(), MetricError> {
        host::set(&self.name, &self.labels, value)
    }

    /// Records one observation (histogram).
    pub fn observe(&self, value: f64) -> Result<(), MetricError> {
        host::observe(&self.name, &self.labels, value)
    }

    /// Removes the series (no error if there is none).
    pub fn remove(&self) {
        host::remove(&self.name, &self.labels)
    }

    /// The metric's kind.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }
}

/// The calls: the host's inside a component, the stand-in of
/// [`crate::testing`] outside.
#[cfg(target_arch = "wasm32")]
mod host {
    pub use super::raw::{add, observe, register, remove, set};
}

#[cfg(not(target_arch = "wasm32"))]
mod host {
    pub use crate::testing::metrics_host::{add, observe, register, remove, set};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn shapes_are_checked_locally() {
        let bad = |name, kind, labels: &[&str], buckets: &[f64]| {
            describe(&check_shape(name, kind, labels, buckets).unwrap_err())
        };
        assert!(bad("routes", MetricKind::Counter, &[], &[]).contains("_total"));
        assert!(bad("Routes_total", MetricKind::Counter, &[], &[]).contains("[a-z_]"));
        assert!(bad("9_total", MetricKind::Counter, &[], &[]).contains("[a-z_]"));
        assert!(bad("up", MetricKind::Gauge, &["plugin"], &[]).contains("plugin"));
        assert!(bad("up", MetricKind::Gauge, &["a", "a"], &[]).contains("twice"));
        assert!(bad("up", MetricKind::Gauge, &["a-b"], &[]).contains("label name"));
        assert!(bad("up", MetricKind::Gauge, &[], &[1.0]).contains("histograms"));
        assert!(bad("t", MetricKind::Histogram, &[], &[]).contains("no buckets"));
        assert!(bad("t", MetricKind::Histogram, &[], &[2.0, 1.0]).contains("ascending"));
        check_shape("routes_total", MetricKind::Counter, &["neighbor"], &[]).unwrap();
        check_shape("_x9", MetricKind::Gauge, &[], &[]).unwrap();
        check_shape("t", MetricKind::Histogram, &["le_x"], &[0.1, 1.0]).unwrap();
    }

    #[test]
    fn updates_reach_the_host() {
        testing::reset();
        let c = Counter::register("seen_total", "Seen.", &["neighbor"]).unwrap();
        c.add(&["a"], 2.0).unwrap();
        c.inc(&["a"]).unwrap();
        c.series(&["b"]).add(5.0).unwrap();
        let g = Gauge::register("active", "Active.", &["neighbor"]).unwrap();
        g.set(&["a"], 7.0).unwrap();
        g.add(&["a"], -2.0).unwrap();
        let h = Histogram::register("batch", "Batch sizes.", &[], &[1.0, 10.0]).unwrap();
        h.observe(&[], 3.0).unwrap();
        h.observe(&[], 30.0).unwrap();
        assert_eq!(testing::metric("seen_total", &["a"]), Some(3.0));
        assert_eq!(testing::metric("seen_total", &["b"]), Some(5.0));
        assert_eq!(testing::metric("active", &["a"]), Some(5.0));
        assert_eq!(testing::metric("batch", &[]), Some(33.0));
        assert_eq!(testing::observations("batch", &[]), 2);
        g.remove(&["a"]);
        assert_eq!(testing::metric("active", &["a"]), None);
        // The stand-in refuses what the host refuses.
        assert!(c.add(&["a"], -1.0).is_err());
        assert!(c.add(&["a", "b"], 1.0).is_err());
        assert!(Gauge::register("seen_total", "", &["neighbor"]).is_err());
        assert!(Counter::register("seen_total", "again", &["neighbor"]).is_ok());
    }
}
